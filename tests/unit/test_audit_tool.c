/*
 * test_audit_tool — `ehx-broker audit` (broker/audit_tool.c) over a real
 * LMDB store: it prints the last records as a table or JSON lines, and
 * says when the log does not hold — an edited record, a removed one, the
 * newest ones removed, a checkpoint that does not match or is not the
 * broker's.
 */
#include "testutil.h"

#include "../../broker/audit_tool.h"
#include "../../broker/broker.h"
#include "../../broker/store.h"
#include "ehx/checkpoint.h"
#include "ehx/crypto.h"
#include "ehx/err.h"

static char tmpdir[PATH_MAX];
static const struct ehx_cert *signing_cert;   /* the broker's, when set */

static int
setup(void **state)
{
	(void)state;
	return tu_mkdtemp(tmpdir, sizeof(tmpdir), "audit");
}

static int
teardown(void **state)
{
	(void)state;
	tu_rmtree(tmpdir);
	return 0;
}

/* A store with n audit records, in DIR/name. */
static void
make_log(struct store *s, const char *name, int n)
{
	char path[PATH_MAX], err[512];
	unsigned char child[EHX_PSEUDONYM_LEN], msg[16];
	Ehx__Person person = EHX__PERSON__INIT;

	tu_join(path, sizeof(path), tmpdir, name);
	if (store_open(s, path, 16 * 1024 * 1024, false, err, sizeof(err)) != 0)
		fail_msg("store_open: %s", err);
	person.user_id = "pc-101";
	person.name = "PC Sam Jones";
	person.role = EHX__ROLE__ROLE_PRACTITIONER;
	for (int i = 0; i < n; i++) {
		Ehx__AuditRecord rec = EHX__AUDIT_RECORD__INIT;
		MDB_txn *txn;

		memset(child, 0xc0 + i, sizeof(child));
		memset(msg, i, sizeof(msg));
		rec.time = 1767225600000LL + i * 1000LL;
		rec.agency = "police";
		rec.person = &person;
		rec.action = "publish_flag";
		rec.child.data = child;
		rec.child.len = sizeof(child);
		rec.message_id.data = msg;
		rec.message_id.len = sizeof(msg);
		if (i % 3 == 2) {
			rec.decision = EHX__DECISION__DECISION_DENY;
			rec.error = EHX__ERROR_CODE__ERROR_NO_CONSENT;
		} else {
			rec.decision = EHX__DECISION__DECISION_ALLOW;
			rec.basis = "role:practitioner";
		}
		assert_int_equal(mdb_txn_begin(s->env, NULL, 0, &txn), 0);
		assert_int_equal(store_audit_append(s, txn, &rec), 0);
		assert_int_equal(mdb_txn_commit(txn), 0);
	}
}

/* Run audit_tool with stdout and stderr in files; returns its code. */
static int
run_tool(struct store *s, unsigned long tail, bool json, char *out,
    size_t outsz, char *errout, size_t errsz)
{
	char opath[PATH_MAX], epath[PATH_MAX];
	int saved_out, saved_err, fo, fe, r;
	ssize_t n;

	tu_join(opath, sizeof(opath), tmpdir, "stdout.txt");
	tu_join(epath, sizeof(epath), tmpdir, "stderr.txt");
	fflush(stdout);
	fflush(stderr);
	fo = open(opath, O_RDWR | O_CREAT | O_TRUNC, 0600);
	fe = open(epath, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fo >= 0 && fe >= 0);
	saved_out = dup(1);
	saved_err = dup(2);
	dup2(fo, 1);
	dup2(fe, 2);
	r = audit_tool(s, tail, json, signing_cert);
	fflush(stdout);
	fflush(stderr);
	dup2(saved_out, 1);
	dup2(saved_err, 2);
	close(saved_out);
	close(saved_err);
	n = pread(fo, out, outsz - 1, 0);
	out[n > 0 ? n : 0] = '\0';
	n = pread(fe, errout, errsz - 1, 0);
	errout[n > 0 ? n : 0] = '\0';
	close(fo);
	close(fe);
	return r;
}

static size_t
count_lines(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void
test_good_log(void **state)
{
	struct store s;
	static char out[65536], err[4096];

	(void)state;
	make_log(&s, "good", 7);
	/* Table, the last 3. */
	assert_int_equal(run_tool(&s, 3, false, out, sizeof(out), err,
	    sizeof(err)), 0);
	assert_int_equal(count_lines(out), 1 + 3);
	assert_non_null(strstr(out, "SEQ"));
	assert_non_null(strstr(out, "PC Sam Jones (practitioner)"));
	assert_non_null(strstr(out, "no_consent"));
	assert_null(strstr(out, "\n     4  "));  /* record 4 is not among them */
	assert_non_null(strstr(out, "     7  2026-01-01 00:00"));
	assert_non_null(strstr(err, "7 audit records; Merkle tree and checkpoints verified"));
	/* All of them. */
	assert_int_equal(run_tool(&s, 0, false, out, sizeof(out), err,
	    sizeof(err)), 0);
	assert_int_equal(count_lines(out), 1 + 7);
	/* JSON lines. */
	assert_int_equal(run_tool(&s, 0, true, out, sizeof(out), err,
	    sizeof(err)), 0);
	assert_int_equal(count_lines(out), 7);
	assert_int_equal(out[0], '{');
	assert_non_null(strstr(out, "\"seq\":1,"));
	assert_non_null(strstr(out, "\"seq\":7,"));
	assert_non_null(strstr(out, "\"decision\":\"deny\""));
	assert_non_null(strstr(out, "\"error\":\"no_consent\""));
	assert_non_null(strstr(out, "\"time\":\"2026-01-01T00:00:06.000Z\""));
	assert_non_null(strstr(out, "\"child\":\"c6c6c6"));
	assert_non_null(strstr(out, "\"message_id\":\"06060606"));
	/* More than there are. */
	assert_int_equal(run_tool(&s, 100, true, out, sizeof(out), err,
	    sizeof(err)), 0);
	assert_int_equal(count_lines(out), 7);
	store_close(&s);
	/* An empty log verifies. */
	make_log(&s, "empty", 0);
	assert_int_equal(run_tool(&s, 0, false, out, sizeof(out), err,
	    sizeof(err)), 0);
	assert_int_equal(count_lines(out), 1);
	assert_non_null(strstr(err, "0 audit records"));
	store_close(&s);
}

static void
key_of(unsigned char k[8], uint64_t seq)
{
	for (int i = 7; i >= 0; i--) {
		k[i] = (unsigned char)seq;
		seq >>= 8;
	}
}

static void
test_edited_record(void **state)
{
	struct store s;
	static char out[65536], err[4096];
	unsigned char k[8], *copy;
	MDB_val key = { 8, k }, v;
	MDB_txn *txn;
	Ehx__AuditRecord *r;

	(void)state;
	make_log(&s, "edited", 6);
	/* Record 3 says "allow" instead of "deny", keeping its own fields. */
	key_of(k, 3);
	assert_int_equal(mdb_txn_begin(s.env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_get(txn, s.audit, &key, &v), 0);
	r = ehx__audit_record__unpack(NULL, v.mv_size, v.mv_data);
	assert_non_null(r);
	assert_int_equal(r->decision, EHX__DECISION__DECISION_DENY);
	r->decision = EHX__DECISION__DECISION_ALLOW;
	r->error = 0;
	v.mv_size = ehx__audit_record__get_packed_size(r);
	copy = malloc(v.mv_size);
	ehx__audit_record__pack(r, copy);
	v.mv_data = copy;
	assert_int_equal(mdb_put(txn, s.audit, &key, &v, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	free(copy);
	ehx__audit_record__free_unpacked(r, NULL);
	assert_int_equal(run_tool(&s, 0, true, out, sizeof(out), err,
	    sizeof(err)), EHX_ERR_STORAGE);
	assert_non_null(strstr(err, "audit record 3 is not the record the tree "
	    "committed to"));
	store_close(&s);
}

static void
test_removed_record(void **state)
{
	struct store s;
	static char out[65536], err[4096];
	unsigned char k[8];
	MDB_val key = { 8, k };
	MDB_txn *txn;

	(void)state;
	make_log(&s, "removed", 6);
	key_of(k, 2);
	assert_int_equal(mdb_txn_begin(s.env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_del(txn, s.audit, &key, NULL), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	assert_int_equal(run_tool(&s, 0, false, out, sizeof(out), err,
	    sizeof(err)), EHX_ERR_STORAGE);
	assert_non_null(strstr(err, "audit record 2 is damaged or out of place"));
	assert_non_null(strstr(err, "BROKEN"));
	store_close(&s);
	/* The first record removed. */
	make_log(&s, "removed-first", 4);
	key_of(k, 1);
	assert_int_equal(mdb_txn_begin(s.env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_del(txn, s.audit, &key, NULL), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	assert_int_equal(run_tool(&s, 0, false, out, sizeof(out), err,
	    sizeof(err)), EHX_ERR_STORAGE);
	assert_non_null(strstr(err, "audit record 1 is damaged or out of place"));
	store_close(&s);
}

/* Removing the newest records leaves a log that is whole from the first
 * record on; the stored size and tree show it. */
static void
test_removed_tail(void **state)
{
	struct store s;
	static char out[65536], err[4096];
	unsigned char k[8];
	MDB_val key = { 8, k };
	MDB_txn *txn;

	(void)state;
	make_log(&s, "tail", 6);
	assert_int_equal(mdb_txn_begin(s.env, NULL, 0, &txn), 0);
	key_of(k, 6);
	assert_int_equal(mdb_del(txn, s.audit, &key, NULL), 0);
	key_of(k, 5);
	assert_int_equal(mdb_del(txn, s.audit, &key, NULL), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	assert_int_equal(run_tool(&s, 0, false, out, sizeof(out), err,
	    sizeof(err)), EHX_ERR_STORAGE);
	assert_non_null(strstr(err, "the log holds 4 records, but the store "
	    "counted a different number"));
	store_close(&s);
}

/* Checkpoints: the right root signed by the broker passes; a root that is
 * not the records', or a signature by someone else, is named. */
static void
test_checkpoints(void **state)
{
	struct store s;
	static char out[65536], err[4096];
	struct ehx_signer *broker = NULL, *other = NULL;
	char path[PATH_MAX], key[PATH_MAX], crt[PATH_MAX];
	Ehx__Checkpoint cp = EHX__CHECKPOINT__INIT;
	unsigned char root[32], sig[64];
	struct ehx_arena *a = ehx_arena_new(1 << 20);
	MDB_txn *txn;

	(void)state;
	tu_join(path, sizeof(path), tmpdir, "pki");
	assert_int_equal(tu_sh("'%s' ca '%s' >/dev/null && '%s' broker '%s' "
	    ">/dev/null && '%s' agency '%s' police police >/dev/null",
	    tu_pki(), path, tu_pki(), path, tu_pki(), path), 0);
	snprintf(key, sizeof(key), "%s/broker/broker.key", path);
	snprintf(crt, sizeof(crt), "%s/broker/broker.crt", path);
	assert_int_equal(ehx_signer_load(key, crt, &broker), 0);
	snprintf(key, sizeof(key), "%s/agencies/police/police.key", path);
	snprintf(crt, sizeof(crt), "%s/agencies/police/police.crt", path);
	assert_int_equal(ehx_signer_load(key, crt, &other), 0);
	make_log(&s, "cp", 5);
	assert_int_equal(mdb_txn_begin(s.env, NULL, 0, &txn), 0);
	assert_int_equal(store_audit_root(&s, txn, 3, root), 0);
	cp.origin = "broker";
	cp.size = 3;
	cp.root.data = root;
	cp.root.len = 32;
	cp.time = 1767225600000LL;
	assert_int_equal(ehx_checkpoint_sign(broker, &cp, sig), 0);
	assert_int_equal(store_checkpoint_put(&s, txn, &cp, a), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	signing_cert = ehx_signer_cert(broker);
	assert_int_equal(run_tool(&s, 0, false, out, sizeof(out), err,
	    sizeof(err)), 0);
	/* The root of 4 records claimed for 3. */
	assert_int_equal(mdb_txn_begin(s.env, NULL, 0, &txn), 0);
	assert_int_equal(store_audit_root(&s, txn, 4, root), 0);
	assert_int_equal(ehx_checkpoint_sign(broker, &cp, sig), 0);
	assert_int_equal(store_checkpoint_put(&s, txn, &cp, a), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	assert_int_equal(run_tool(&s, 0, false, out, sizeof(out), err,
	    sizeof(err)), EHX_ERR_STORAGE);
	assert_non_null(strstr(err, "the checkpoint of 3 records does not "
	    "match the records"));
	/* The right root, signed by an agency's key. */
	assert_int_equal(mdb_txn_begin(s.env, NULL, 0, &txn), 0);
	assert_int_equal(store_audit_root(&s, txn, 3, root), 0);
	assert_int_equal(ehx_checkpoint_sign(other, &cp, sig), 0);
	assert_int_equal(store_checkpoint_put(&s, txn, &cp, a), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	signing_cert = ehx_signer_cert(broker);
	assert_int_equal(run_tool(&s, 0, false, out, sizeof(out), err,
	    sizeof(err)), EHX_ERR_STORAGE);
	assert_non_null(strstr(err, "the checkpoint of 3 records is not signed "
	    "by this broker"));
	signing_cert = NULL;
	store_close(&s);
	ehx_signer_free(broker);
	ehx_signer_free(other);
	ehx_arena_free(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_log),
		cmocka_unit_test(test_edited_record),
		cmocka_unit_test(test_removed_record),
		cmocka_unit_test(test_removed_tail),
		cmocka_unit_test(test_checkpoints),
	};

	return cmocka_run_group_tests_name("test_audit_tool", tests, setup,
	    teardown);
}
