/*
 * test_purge — retention (broker/purge.c) over a real LMDB store: closed
 * flags, ended consents and kept evidence older than the retention go;
 * open flags, recent ones, active consents and recent evidence stay; the
 * audit log and its tree are untouched and still verify; the purge is
 * itself audited, and a second purge finds nothing.
 */
#include "testutil.h"

#include "../../broker/audit_tool.h"
#include "../../broker/broker.h"
#include "../../broker/purge.h"
#include "../../broker/registry.h"
#include "../../broker/store.h"
#include "ehx/crypto.h"
#include "ehx/err.h"

#define DAY (86400LL * 1000)

static char dir[PATH_MAX];
static struct broker b;

static int
setup(void **state)
{
	char path[PATH_MAX], err[512];

	(void)state;
	if (tu_mkdtemp(dir, sizeof(dir), "purge") != 0)
		return -1;
	memset(&b, 0, sizeof(b));
	snprintf(b.cfg.id, sizeof(b.cfg.id), "broker");
	b.cfg.retention_flag_days = 5;
	b.cfg.retention_consent_days = 5;
	b.cfg.retention_evidence_days = 5;
	tu_join(path, sizeof(path), dir, "data");
	if (store_open(&b.store, path, 16 * 1024 * 1024, false, err,
	    sizeof(err)) != 0 || (b.arena = ehx_arena_new(1 << 20)) == NULL)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	store_close(&b.store);
	ehx_arena_free(b.arena);
	tu_rmtree(dir);
	return 0;
}

static size_t
entries(MDB_dbi dbi)
{
	MDB_txn *txn;
	MDB_stat st;

	assert_int_equal(mdb_txn_begin(b.store.env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(mdb_stat(txn, dbi, &st), 0);
	mdb_txn_abort(txn);
	return st.ms_entries;
}

static void
put_flag(MDB_txn *txn, const unsigned char *child, const char *ref,
    bool open, int64_t closed_at)
{
	Ehx__StoredFlag sf = EHX__STORED_FLAG__INIT;
	Ehx__FlagView fv = EHX__FLAG_VIEW__INIT;
	unsigned char key[STORE_KEY_MAX];
	size_t n = store_flag_key(key, child, "police", ref);

	fv.ref = (char *)ref;
	fv.category = EHX__CATEGORY__CATEGORY_HOUSING;
	fv.level = 2;
	fv.status = open ? EHX__FLAG_STATUS__FLAG_STATUS_OPEN :
	    EHX__FLAG_STATUS__FLAG_STATUS_CLOSED;
	fv.opened_at = closed_at - 30 * DAY;
	fv.closed_at = open ? 0 : closed_at;
	sf.agency = (char *)"police";
	sf.flag = &fv;
	assert_int_equal(store_put_msg(txn, b.store.flags, key, n, &sf.base,
	    b.arena), 0);
}

static void
put_consent(MDB_txn *txn, const unsigned char *child, const char *id,
    int64_t expires, int64_t withdrawn)
{
	Ehx__StoredConsent sc = EHX__STORED_CONSENT__INIT;
	Ehx__ConsentRecord rec = EHX__CONSENT_RECORD__INIT;
	unsigned char key[STORE_KEY_MAX + 1];
	size_t n = store_consent_key(key, child, id, STORE_CONSENT_RECORD);

	rec.id = (char *)id;
	rec.expires_at = expires;
	sc.record = &rec;
	assert_int_equal(store_put_msg(txn, b.store.consent, key, n, &sc.base,
	    b.arena), 0);
	if (withdrawn != 0) {
		Ehx__StoredWithdrawal sw = EHX__STORED_WITHDRAWAL__INIT;
		Ehx__ConsentEvent ev = EHX__CONSENT_EVENT__INIT;

		ev.consent_id = (char *)id;
		ev.state = EHX__CONSENT_STATE__CONSENT_STATE_WITHDRAWN;
		ev.at = withdrawn;
		sw.event = &ev;
		key[n - 1] = STORE_CONSENT_WITHDRAWAL;
		assert_int_equal(store_put_msg(txn, b.store.consent, key, n,
		    &sw.base, b.arena), 0);
	}
}

static void
put_record(MDB_txn *txn, int64_t time, int i)
{
	Ehx__AuditRecord rec = EHX__AUDIT_RECORD__INIT;
	unsigned char hash[32], env[40], k8[8];
	MDB_val k = { sizeof(k8), k8 }, v = { sizeof(env), env };

	memset(env, i, sizeof(env));
	ehx_sha256(env, sizeof(env), hash);
	rec.time = time;
	rec.agency = (char *)"police";
	rec.action = (char *)"publish_flag";
	rec.envelope_hash.data = hash;
	rec.envelope_hash.len = 32;
	assert_int_equal(store_audit_append(&b.store, txn, &rec), 0);
	/* Evidence where the broker keeps it, under the record's seq (its
	 * bytes sealed there; purge only deletes). */
	put_be64(k8, rec.seq);
	assert_int_equal(mdb_put(txn, b.store.evidence, &k, &v, 0), 0);
}

/* File child under locality, as a publish does (the sealed NHS number
 * stands in as bytes: purge only deletes). */
static void
put_locality(MDB_txn *txn, const unsigned char *child, const char *loc)
{
	unsigned char ik[64];
	size_t n = strlen(loc);
	MDB_val k = { 32, (void *)child }, v = { n, (void *)loc };

	assert_int_equal(mdb_put(txn, b.store.child_locality, &k, &v, 0), 0);
	memcpy(ik, loc, n);
	ik[n] = 0;
	memcpy(ik + n + 1, child, 32);
	k = (MDB_val){ n + 33, ik };
	v = (MDB_val){ 4, (void *)"nhs!" };
	assert_int_equal(mdb_put(txn, b.store.locality_index, &k, &v, 0), 0);
}

static void
test_purge(void **state)
{
	int64_t now = 1790000000000LL;
	unsigned char c1[32], c2[32], c3[32];
	struct purge_counts pc;
	MDB_txn *txn;
	char ref[16];
	MDB_val v;
	Ehx__AuditRecord *last;
	uint64_t size;

	(void)state;
	memset(c1, 0xa1, sizeof(c1));
	memset(c2, 0xb2, sizeof(c2));
	memset(c3, 0xc3, sizeof(c3));
	assert_int_equal(mdb_txn_begin(b.store.env, NULL, 0, &txn), 0);
	/* c3 has only an old closed flag: it leaves the locality index. */
	put_flag(txn, c3, "gone", false, now - 20 * DAY);
	put_locality(txn, c1, "east");
	put_locality(txn, c3, "east");
	/* Five old closed flags side by side, then ones that stay. */
	for (int i = 0; i < 5; i++) {
		snprintf(ref, sizeof(ref), "old-%d", i);
		put_flag(txn, c1, ref, false, now - 10 * DAY);
	}
	put_flag(txn, c1, "recent", false, now - 1 * DAY);
	put_flag(txn, c1, "open-1", true, now - 100 * DAY);
	put_flag(txn, c2, "old-x", false, now - 6 * DAY);
	put_flag(txn, c2, "open-2", true, now - 100 * DAY);
	/* Consents: expired long ago; withdrawn long ago; active; withdrawn
	 * yesterday. */
	put_consent(txn, c1, "c-0000000000000001", now - 10 * DAY, 0);
	put_consent(txn, c1, "c-0000000000000002", now + 10 * DAY,
	    now - 10 * DAY);
	put_consent(txn, c1, "c-0000000000000003", now + 10 * DAY, 0);
	put_consent(txn, c1, "c-0000000000000004", now + 10 * DAY,
	    now - 1 * DAY);
	put_consent(txn, c2, "c-0000000000000005", now - 6 * DAY,
	    now - 7 * DAY);
	/* Audit records: three old, two recent, each with evidence. */
	for (int i = 0; i < 5; i++)
		put_record(txn, i < 3 ? now - 8 * DAY : now - DAY, i);
	assert_int_equal(mdb_txn_commit(txn), 0);
	assert_int_equal(entries(b.store.flags), 10);
	assert_int_equal(entries(b.store.consent), 8);
	assert_int_equal(entries(b.store.locality_index), 2);

	assert_int_equal(broker_purge(&b, now, &pc), 0);
	assert_int_equal(pc.flags, 7);
	/* c1 keeps flags and its place; c3 has none left and leaves. */
	assert_int_equal(entries(b.store.child_locality), 1);
	assert_int_equal(entries(b.store.locality_index), 1);
	assert_int_equal(pc.consents, 3);
	assert_int_equal(pc.envelopes, 3);
	assert_int_equal(entries(b.store.flags), 3);
	assert_int_equal(entries(b.store.consent), 3);  /* 3; 4 and its withdrawal */
	assert_int_equal(entries(b.store.evidence), 2);
	assert_int_equal(entries(b.store.audit), 6);
	/* What stays is what should. */
	assert_int_equal(mdb_txn_begin(b.store.env, NULL, MDB_RDONLY, &txn), 0);
	{
		unsigned char key[STORE_KEY_MAX + 1];
		MDB_val k = { 0, key };

		k.mv_size = store_flag_key(key, c1, "police", "recent");
		assert_int_equal(mdb_get(txn, b.store.flags, &k, &v), 0);
		k.mv_size = store_flag_key(key, c2, "police", "open-2");
		assert_int_equal(mdb_get(txn, b.store.flags, &k, &v), 0);
		k.mv_size = store_consent_key(key, c1, "c-0000000000000004",
		    STORE_CONSENT_WITHDRAWAL);
		assert_int_equal(mdb_get(txn, b.store.consent, &k, &v), 0);
		k.mv_size = store_consent_key(key, c1, "c-0000000000000002",
		    STORE_CONSENT_WITHDRAWAL);
		assert_int_equal(mdb_get(txn, b.store.consent, &k, &v),
		    MDB_NOTFOUND);
	}
	/* The purge is audited, saying how much went. */
	assert_int_equal(store_audit_size(&b.store, txn, &size), 0);
	assert_int_equal(store_audit_get(&b.store, txn, size, &v), 0);
	last = ehx__audit_record__unpack(NULL, v.mv_size, v.mv_data);
	assert_non_null(last);
	assert_string_equal(last->action, "purge");
	assert_string_equal(last->basis, "retention:7/3/3");
	ehx__audit_record__free_unpacked(last, NULL);
	mdb_txn_abort(txn);
	/* The audit log and its tree are whole. */
	{
		FILE *saved = stdout;

		stdout = fopen("/dev/null", "w");
		assert_int_equal(audit_tool(&b.store, 1, false, NULL), 0);
		fclose(stdout);
		stdout = saved;
	}
	/* Again: nothing left to remove; still audited. */
	assert_int_equal(broker_purge(&b, now, &pc), 0);
	assert_int_equal(pc.flags + pc.consents + pc.envelopes, 0);
	assert_int_equal(entries(b.store.audit), 7);
	/* Retention 0 keeps everything. */
	b.cfg.retention_flag_days = 0;
	b.cfg.retention_consent_days = 0;
	b.cfg.retention_evidence_days = 0;
	assert_int_equal(broker_purge(&b, now + 1000 * DAY, &pc), 0);
	assert_int_equal(entries(b.store.flags), 3);
	assert_int_equal(entries(b.store.consent), 3);
	assert_int_equal(entries(b.store.evidence), 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_purge),
	};

	return cmocka_run_group_tests_name("test_purge", tests, setup, teardown);
}
