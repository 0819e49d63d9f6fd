/*
 * test_store — the broker's LMDB store (broker/store.c) in real
 * environments under a temporary directory: opening, the replay store and
 * its pruning, the hash-chained audit log, the key layouts, the mapping of
 * LMDB codes, and a map that fills up.
 */
#include "testutil.h"

#include "../../broker/broker.h"
#include "../../broker/registry.h"
#include "../../broker/store.h"
#include "ehx/crypto.h"
#include "ehx/err.h"

static char tmpdir[PATH_MAX];

static int
setup(void **state)
{
	(void)state;
	return tu_mkdtemp(tmpdir, sizeof(tmpdir), "store");
}

static int
teardown(void **state)
{
	(void)state;
	tu_rmtree(tmpdir);
	return 0;
}

#define MiB (1024 * 1024)

/* Open DIR/name (a new environment for each test). */
static void
open_store(struct store *s, const char *name, size_t map, char *path,
    size_t pathsz)
{
	char err[512];

	tu_join(path, pathsz, tmpdir, name);
	if (store_open(s, path, map, false, err, sizeof(err)) != 0)
		fail_msg("store_open: %s", err);
}

static size_t
entries(struct store *s, MDB_dbi dbi)
{
	MDB_txn *txn;
	MDB_stat st;

	assert_int_equal(mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(mdb_stat(txn, dbi, &st), 0);
	mdb_txn_abort(txn);
	return st.ms_entries;
}

static void
test_open(void **state)
{
	struct store s, ro;
	struct stat st;
	char path[PATH_MAX], file[PATH_MAX], err[512];

	(void)state;
	open_store(&s, "open", 16 * MiB, path, sizeof(path));
	assert_non_null(s.env);
	assert_false(s.failed);
	/* A private directory and a private data file. */
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	tu_join(file, sizeof(file), path, "data.mdb");
	assert_int_equal(stat(file, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* Every database is there and empty. */
	assert_int_equal(entries(&s, s.flags), 0);
	assert_int_equal(entries(&s, s.consent), 0);
	assert_int_equal(entries(&s, s.audit), 0);
	assert_int_equal(entries(&s, s.replay), 0);
	assert_int_equal(entries(&s, s.replay_time), 0);
	assert_int_equal(entries(&s, s.meta), 1);     /* its layout: "format" */
	/* Read-only alongside the writer (the audit tool does this). */
	assert_int_equal(store_open(&ro, path, 16 * MiB, true, err,
	    sizeof(err)), 0);
	assert_int_equal(entries(&ro, ro.audit), 0);
	store_close(&ro);
	store_close(&s);
	assert_null(s.env);
	store_close(&s);            /* twice is harmless */
	/* Reopening an existing environment. */
	assert_int_equal(store_open(&s, path, 16 * MiB, false, err,
	    sizeof(err)), 0);
	store_close(&s);
	/* A store of another layout is refused, naming it; so is one with
	 * records and no layout stamp (made before stamping). Nothing in it
	 * is changed. */
	{
		MDB_txn *txn;
		unsigned char v[8] = { 0, 0, 0, 0, 0, 0, 0, 2 };
		MDB_val k = { 6, (void *)"format" }, d = { 8, v };
		MDB_val ak = { 8, v }, ad = { 1, (void *)"x" };

		assert_int_equal(store_open(&s, path, 16 * MiB, false, err,
		    sizeof(err)), 0);
		assert_int_equal(mdb_txn_begin(s.env, NULL, 0, &txn), 0);
		assert_int_equal(mdb_put(txn, s.meta, &k, &d, 0), 0);
		assert_int_equal(mdb_txn_commit(txn), 0);
		store_close(&s);
		assert_int_equal(store_open(&s, path, 16 * MiB, false, err,
		    sizeof(err)), EHX_ERR_STORAGE);
		assert_non_null(strstr(err, "this store has layout 2; this "
		    "ehx-broker reads layouts 5 to 6 only"));
		assert_true(strncmp(err, path, strlen(path)) == 0);
		assert_null(s.env);
		assert_int_equal(store_open(&s, path, 16 * MiB, true, err,
		    sizeof(err)), EHX_ERR_STORAGE);
		/* Unstamped, with an audit record. */
		assert_int_equal(mdb_env_create(&s.env), 0);
		assert_int_equal(mdb_env_set_maxdbs(s.env, 16), 0);
		assert_int_equal(mdb_env_open(s.env, path, 0, 0600), 0);
		assert_int_equal(mdb_txn_begin(s.env, NULL, 0, &txn), 0);
		assert_int_equal(mdb_dbi_open(txn, "meta", 0, &s.meta), 0);
		assert_int_equal(mdb_dbi_open(txn, "audit", 0, &s.audit), 0);
		assert_int_equal(mdb_del(txn, s.meta, &k, NULL), 0);
		assert_int_equal(mdb_put(txn, s.audit, &ak, &ad, 0), 0);
		assert_int_equal(mdb_txn_commit(txn), 0);
		mdb_env_close(s.env);
		s.env = NULL;
		assert_int_equal(store_open(&s, path, 16 * MiB, false, err,
		    sizeof(err)), EHX_ERR_STORAGE);
		assert_non_null(strstr(err, "made by an earlier ehx-broker"));
		assert_null(s.env);
	}
	/* Read-only on nothing: an error naming the directory. */
	tu_join(path, sizeof(path), tmpdir, "never-created");
	assert_int_equal(store_open(&s, path, 16 * MiB, true, err,
	    sizeof(err)), EHX_ERR_STORAGE);
	assert_true(strncmp(err, path, strlen(path)) == 0);
	assert_null(s.env);
	assert_int_not_equal(access(path, F_OK), 0);
	/* A parent that does not exist. */
	tu_join(path, sizeof(path), tmpdir, "no/such/dir");
	assert_int_equal(store_open(&s, path, 16 * MiB, false, err,
	    sizeof(err)), EHX_ERR_STORAGE);
	assert_true(strncmp(err, path, strlen(path)) == 0);
}

/* The layout a store is stamped with (0: none). */
static uint64_t
layout_of(struct store *s)
{
	MDB_txn *txn;
	MDB_val k = { 6, (void *)"format" }, d;
	uint64_t v = 0;

	assert_int_equal(mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn), 0);
	if (mdb_get(txn, s->meta, &k, &d) == 0 && d.mv_size == 8)
		v = get_be64(d.mv_data);
	mdb_txn_abort(txn);
	return v;
}

/*
 * A store of layout 5 (as the broker of issue 16 left it: no identity
 * databases) opens read-only as it is, and for writing is brought to
 * layout 6: the identity databases made, empty, and nothing else changed.
 */
static void
test_migrate_5_to_6(void **state)
{
	char path[PATH_MAX], err[512];
	struct store s;
	MDB_txn *txn;
	MDB_dbi dbi;
	unsigned char v5[8] = { 0, 0, 0, 0, 0, 0, 0, 5 };
	MDB_val k = { 6, (void *)"format" }, d = { 8, v5 };
	MDB_val fk = { 5, (void *)"flag1" }, fv = { 3, (void *)"abc" }, got;

	(void)state;
	tu_join(path, sizeof(path), tmpdir, "layout5");
	assert_int_equal(store_open(&s, path, 16 * MiB, false, err,
	    sizeof(err)), 0);
	assert_int_equal(layout_of(&s), 6);
	assert_true(s.identity);
	/* make it a layout-5 store holding a record */
	assert_int_equal(mdb_txn_begin(s.env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_put(txn, s.flags, &fk, &fv, 0), 0);
	assert_int_equal(mdb_drop(txn, s.idnode, 1), 0);
	assert_int_equal(mdb_drop(txn, s.idindex, 1), 0);
	assert_int_equal(mdb_drop(txn, s.idmember, 1), 0);
	assert_int_equal(mdb_put(txn, s.meta, &k, &d, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	store_close(&s);
	/* read-only: as it is, without the identity databases */
	assert_int_equal(store_open(&s, path, 16 * MiB, true, err,
	    sizeof(err)), 0);
	assert_int_equal(s.layout, 5);
	assert_false(s.identity);
	assert_int_equal(layout_of(&s), 5);
	assert_int_equal(mdb_txn_begin(s.env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "idnode", 0, &dbi), MDB_NOTFOUND);
	mdb_txn_abort(txn);
	store_close(&s);
	/* for writing: migrated */
	assert_int_equal(store_open(&s, path, 16 * MiB, false, err,
	    sizeof(err)), 0);
	assert_int_equal(s.layout, 6);
	assert_true(s.identity);
	assert_int_equal(layout_of(&s), 6);
	assert_int_equal(entries(&s, s.idnode), 0);
	assert_int_equal(entries(&s, s.idindex), 0);
	assert_int_equal(entries(&s, s.idmember), 0);
	assert_int_equal(mdb_txn_begin(s.env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(mdb_get(txn, s.flags, &fk, &got), 0);
	assert_int_equal(got.mv_size, 3);
	assert_memory_equal(got.mv_data, "abc", 3);
	mdb_txn_abort(txn);
	assert_int_equal(entries(&s, s.flags), 1);
	store_close(&s);
	/* and again: nothing more to do */
	assert_int_equal(store_open(&s, path, 16 * MiB, true, err,
	    sizeof(err)), 0);
	assert_int_equal(s.layout, 6);
	assert_true(s.identity);
	store_close(&s);
}

static void
test_store_err(void **state)
{
	(void)state;
	assert_int_equal(store_err(MDB_SUCCESS), 0);
	assert_int_equal(store_err(MDB_NOTFOUND), EHX_ERR_NOT_FOUND);
	assert_int_equal(store_err(MDB_MAP_FULL), EHX_ERR_STORAGE_FULL);
	assert_int_equal(store_err(MDB_TXN_FULL), EHX_ERR_STORAGE_FULL);
	assert_int_equal(store_err(MDB_CORRUPTED), EHX_ERR_STORAGE);
	assert_int_equal(store_err(MDB_PANIC), EHX_ERR_STORAGE);
	assert_int_equal(store_err(MDB_KEYEXIST), EHX_ERR_STORAGE);
	assert_int_equal(store_err(MDB_BAD_TXN), EHX_ERR_STORAGE);
	assert_int_equal(store_err(EIO), EHX_ERR_STORAGE);
	assert_int_equal(store_err(ENOSPC), EHX_ERR_STORAGE);
}

/* ---- replay ---------------------------------------------------------------- */

static void
make_id(unsigned char id[EHX_MSGID_LEN], int n)
{
	memset(id, 0, EHX_MSGID_LEN);
	id[0] = 0xee;
	id[14] = (unsigned char)(n >> 8);
	id[15] = (unsigned char)n;
}

static int
put_replay(struct store *s, const char *sender, int n, int64_t at,
    int64_t horizon)
{
	Ehx__ReplayEntry e = EHX__REPLAY_ENTRY__INIT;
	unsigned char id[EHX_MSGID_LEN], hash[32], reply[40];
	MDB_txn *txn;
	int r;

	make_id(id, n);
	memset(hash, n & 0xff, sizeof(hash));
	snprintf((char *)reply, sizeof(reply), "reply %d to %s", n, sender);
	e.received_at = at;
	e.envelope_hash.data = hash;
	e.envelope_hash.len = sizeof(hash);
	e.reply.data = reply;
	e.reply.len = strlen((char *)reply);
	assert_int_equal(mdb_txn_begin(s->env, NULL, 0, &txn), 0);
	if ((r = store_replay_put(s, txn, sender, id, &e, horizon)) != 0) {
		mdb_txn_abort(txn);
		return r;
	}
	return store_err(mdb_txn_commit(txn));
}

/* 0 and the entry's time, or the error. */
static int
get_replay(struct store *s, struct ehx_arena *a, const char *sender, int n,
    int64_t *at)
{
	Ehx__ReplayEntry *e = NULL;
	unsigned char id[EHX_MSGID_LEN];
	char want[40];
	MDB_txn *txn;
	int r;

	make_id(id, n);
	ehx_arena_reset(a);
	assert_int_equal(mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn), 0);
	r = store_replay_get(s, txn, sender, id, a, &e);
	if (r == 0) {
		assert_non_null(e);
		*at = e->received_at;
		assert_int_equal(e->envelope_hash.len, 32);
		assert_int_equal(e->envelope_hash.data[31], n & 0xff);
		snprintf(want, sizeof(want), "reply %d to %s", n, sender);
		assert_int_equal(e->reply.len, strlen(want));
		assert_memory_equal(e->reply.data, want, strlen(want));
	} else
		assert_null(e);
	mdb_txn_abort(txn);
	return r;
}

static void
test_replay_round_trip(void **state)
{
	struct store s;
	struct ehx_arena *a = ehx_arena_new(MiB);
	char path[PATH_MAX];
	int64_t at = 0;

	(void)state;
	open_store(&s, "replay", 16 * MiB, path, sizeof(path));
	assert_int_equal(get_replay(&s, a, "police", 1, &at), EHX_ERR_NOT_FOUND);
	assert_int_equal(put_replay(&s, "police", 1, 5000, 0), 0);
	assert_int_equal(get_replay(&s, a, "police", 1, &at), 0);
	assert_int_equal(at, 5000);
	/* Keyed by sender and id: another sender's same id is another key. */
	assert_int_equal(get_replay(&s, a, "health", 1, &at), EHX_ERR_NOT_FOUND);
	assert_int_equal(get_replay(&s, a, "police", 2, &at), EHX_ERR_NOT_FOUND);
	/* "police" is not a prefix match of "police-north". */
	assert_int_equal(get_replay(&s, a, "police-north", 1, &at),
	    EHX_ERR_NOT_FOUND);
	assert_int_equal(put_replay(&s, "health", 1, 6000, 0), 0);
	assert_int_equal(get_replay(&s, a, "health", 1, &at), 0);
	assert_int_equal(at, 6000);
	assert_int_equal(get_replay(&s, a, "police", 1, &at), 0);
	assert_int_equal(at, 5000);
	assert_int_equal(entries(&s, s.replay), 2);
	assert_int_equal(entries(&s, s.replay_time), 2);
	/* It survives closing and reopening. */
	store_close(&s);
	open_store(&s, "replay", 16 * MiB, path, sizeof(path));
	assert_int_equal(get_replay(&s, a, "police", 1, &at), 0);
	store_close(&s);
	ehx_arena_free(a);
}

static void
test_replay_prune(void **state)
{
	struct store s;
	struct ehx_arena *a = ehx_arena_new(MiB);
	char path[PATH_MAX];
	int64_t at;

	(void)state;
	open_store(&s, "prune", 16 * MiB, path, sizeof(path));
	assert_int_equal(put_replay(&s, "police", 1, 1000, 0), 0);
	assert_int_equal(put_replay(&s, "police", 2, 2000, 0), 0);
	assert_int_equal(put_replay(&s, "health", 3, 3000, 0), 0);
	assert_int_equal(entries(&s, s.replay), 3);
	/* A put with horizon 2500 drops what was received before it. */
	assert_int_equal(put_replay(&s, "police", 4, 4000, 2500), 0);
	assert_int_equal(get_replay(&s, a, "police", 1, &at), EHX_ERR_NOT_FOUND);
	assert_int_equal(get_replay(&s, a, "police", 2, &at), EHX_ERR_NOT_FOUND);
	assert_int_equal(get_replay(&s, a, "health", 3, &at), 0);
	assert_int_equal(get_replay(&s, a, "police", 4, &at), 0);
	assert_int_equal(entries(&s, s.replay), 2);
	assert_int_equal(entries(&s, s.replay_time), 2);
	/* The horizon itself is kept (older than, not at). */
	assert_int_equal(put_replay(&s, "police", 5, 5000, 3000), 0);
	assert_int_equal(get_replay(&s, a, "health", 3, &at), 0);
	assert_int_equal(put_replay(&s, "police", 6, 6000, 3001), 0);
	assert_int_equal(get_replay(&s, a, "health", 3, &at), EHX_ERR_NOT_FOUND);
	store_close(&s);

	/* Many old entries go a batch at a time, never all at once. */
	open_store(&s, "prune-many", 64 * MiB, path, sizeof(path));
	for (int i = 0; i < 300; i++)
		assert_int_equal(put_replay(&s, "police", i, 1000 + i, 0), 0);
	assert_int_equal(entries(&s, s.replay), 300);
	assert_int_equal(put_replay(&s, "police", 1000, 100000, 50000), 0);
	{
		size_t left = entries(&s, s.replay);

		assert_true(left > 1 && left < 301);
	}
	for (int i = 0; i < 10; i++)
		assert_int_equal(put_replay(&s, "police", 1001 + i, 100000,
		    50000), 0);
	assert_int_equal(entries(&s, s.replay), 11);
	assert_int_equal(entries(&s, s.replay_time), 11);
	assert_int_equal(get_replay(&s, a, "police", 299, &at),
	    EHX_ERR_NOT_FOUND);
	store_close(&s);
	ehx_arena_free(a);
}

/* ---- audit -------------------------------------------------------------- */

static int
append(struct store *s, MDB_txn *txn, const char *action, uint64_t *seq)
{
	Ehx__AuditRecord rec = EHX__AUDIT_RECORD__INIT;
	unsigned char msg[16] = { 9, 9, 9 };
	int r;

	rec.time = 1767225600000LL;
	rec.agency = "police";
	rec.action = (char *)action;
	rec.decision = EHX__DECISION__DECISION_ALLOW;
	rec.basis = "role:practitioner";
	rec.message_id.data = msg;
	rec.message_id.len = sizeof(msg);
	r = store_audit_append(s, txn, &rec);
	if (r == 0)
		*seq = rec.seq;
	return r;
}

static int
append_one(struct store *s, const char *action, uint64_t *seq)
{
	MDB_txn *txn;
	int r;

	assert_int_equal(mdb_txn_begin(s->env, NULL, 0, &txn), 0);
	if ((r = append(s, txn, action, seq)) != 0) {
		mdb_txn_abort(txn);
		return r;
	}
	return store_err(mdb_txn_commit(txn));
}

/* RFC 9162's MTH straight from its definition, over leaf hashes. */
static void
naive_mth(unsigned char (*leaves)[32], size_t n, unsigned char out[32])
{
	unsigned char l[32], r[32], buf[65];
	size_t k = 1;

	if (n == 0) {
		ehx_sha256("", 0, out);
		return;
	}
	if (n == 1) {
		memcpy(out, leaves[0], 32);
		return;
	}
	while (k * 2 < n)
		k *= 2;
	naive_mth(leaves, k, l);
	naive_mth(leaves + k, n - k, r);
	buf[0] = 1;
	memcpy(buf + 1, l, 32);
	memcpy(buf + 33, r, 32);
	ehx_sha256(buf, sizeof(buf), out);
}

/*
 * Walk the audit log: keys 1..n (8 bytes, big-endian), seq i; each
 * record's stored leaf is SHA-256(0 ‖ its bytes); the store's root is the
 * naive MTH of those leaves; meta "audit_size" is n. Returns n.
 */
static size_t
check_chain(struct store *s)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v, hk = { 10, "audit_size" };
	static unsigned char leaves[8192][32];
	unsigned char leaf[32], buf[4096], want[32], got[32];
	size_t n = 0;
	uint64_t size;
	int rc;

	assert_int_equal(mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(mdb_cursor_open(txn, s->audit, &cur), 0);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		Ehx__AuditRecord *r;
		uint64_t key = 0;

		n++;
		assert_true(n <= 8192 && v.mv_size < sizeof(buf));
		assert_int_equal(k.mv_size, 8);
		for (int i = 0; i < 8; i++)
			key = key << 8 | ((unsigned char *)k.mv_data)[i];
		assert_int_equal(key, n);
		r = ehx__audit_record__unpack(NULL, v.mv_size, v.mv_data);
		assert_non_null(r);
		assert_int_equal(r->seq, n);
		ehx__audit_record__free_unpacked(r, NULL);
		buf[0] = 0;
		memcpy(buf + 1, v.mv_data, v.mv_size);
		ehx_sha256(buf, v.mv_size + 1, leaves[n - 1]);
		assert_int_equal(store_audit_leaf(s, txn, n, leaf), 0);
		assert_memory_equal(leaf, leaves[n - 1], 32);
	}
	assert_int_equal(rc, MDB_NOTFOUND);
	mdb_cursor_close(cur);
	assert_int_equal(store_audit_size(s, txn, &size), 0);
	assert_int_equal(size, n);
	rc = mdb_get(txn, s->meta, &hk, &v);
	assert_int_equal(rc, n == 0 ? MDB_NOTFOUND : 0);
	naive_mth(leaves, n, want);
	assert_int_equal(store_audit_root(s, txn, n, got), 0);
	assert_memory_equal(got, want, 32);
	mdb_txn_abort(txn);
	return n;
}

static void
test_audit_chain(void **state)
{
	struct store s;
	MDB_txn *txn;
	char path[PATH_MAX];
	uint64_t seq = 0;

	(void)state;
	open_store(&s, "audit", 16 * MiB, path, sizeof(path));
	assert_int_equal(check_chain(&s), 0);
	assert_int_equal(append_one(&s, "publish_flag", &seq), 0);
	assert_int_equal(seq, 1);
	assert_int_equal(append_one(&s, "close_flag", &seq), 0);
	assert_int_equal(seq, 2);
	assert_int_equal(append_one(&s, "query_picture", &seq), 0);
	assert_int_equal(seq, 3);
	assert_int_equal(check_chain(&s), 3);

	/* Two in one transaction chain to each other. */
	assert_int_equal(mdb_txn_begin(s.env, NULL, 0, &txn), 0);
	assert_int_equal(append(&s, txn, "a", &seq), 0);
	assert_int_equal(seq, 4);
	assert_int_equal(append(&s, txn, "b", &seq), 0);
	assert_int_equal(seq, 5);
	assert_int_equal(mdb_txn_commit(txn), 0);
	assert_int_equal(check_chain(&s), 5);

	/* An aborted append leaves no gap. */
	assert_int_equal(mdb_txn_begin(s.env, NULL, 0, &txn), 0);
	assert_int_equal(append(&s, txn, "aborted", &seq), 0);
	assert_int_equal(seq, 6);
	mdb_txn_abort(txn);
	assert_int_equal(append_one(&s, "after", &seq), 0);
	assert_int_equal(seq, 6);
	assert_int_equal(check_chain(&s), 6);

	/* The chain goes on across a reopen. */
	store_close(&s);
	open_store(&s, "audit", 16 * MiB, path, sizeof(path));
	assert_int_equal(append_one(&s, "reopened", &seq), 0);
	assert_int_equal(seq, 7);
	assert_int_equal(check_chain(&s), 7);
	assert_int_equal(append_one(&s, "eighth", &seq), 0);
	assert_int_equal(check_chain(&s), 8);

	/* The tree's nodes are keyed last leaf ‖ level, so an append writes
	 * at the end: 8 leaves hold 15 nodes, in the order they were made. */
	{
		static const unsigned char want[][2] = {
			{ 0, 0 }, { 1, 0 }, { 1, 1 }, { 2, 0 }, { 3, 0 }, { 3, 1 },
			{ 3, 2 }, { 4, 0 }, { 5, 0 }, { 5, 1 }, { 6, 0 }, { 7, 0 },
			{ 7, 1 }, { 7, 2 }, { 7, 3 },
		};
		MDB_cursor *cur;
		MDB_val k, v;
		size_t n = 0;
		int rc;

		assert_int_equal(mdb_txn_begin(s.env, NULL, MDB_RDONLY, &txn), 0);
		assert_int_equal(mdb_cursor_open(txn, s.tree, &cur), 0);
		while ((rc = mdb_cursor_get(cur, &k, &v, n == 0 ? MDB_FIRST :
		    MDB_NEXT)) == 0) {
			assert_true(n < sizeof(want) / sizeof(want[0]));
			assert_int_equal(k.mv_size, 9);
			assert_int_equal(get_be64(k.mv_data), want[n][0]);
			assert_int_equal(((unsigned char *)k.mv_data)[8],
			    want[n][1]);
			assert_int_equal(v.mv_size, EHX_HASH_LEN);
			n++;
		}
		assert_int_equal(rc, MDB_NOTFOUND);
		assert_int_equal(n, 15);
		mdb_cursor_close(cur);
		mdb_txn_abort(txn);
	}

	/* A damaged size is refused, not silently restarted. */
	{
		MDB_val hk = { 10, "audit_size" }, hv = { 3, "bad" };

		assert_int_equal(mdb_txn_begin(s.env, NULL, 0, &txn), 0);
		assert_int_equal(mdb_put(txn, s.meta, &hk, &hv, 0), 0);
		assert_int_equal(append(&s, txn, "x", &seq), EHX_ERR_STORAGE);
		mdb_txn_abort(txn);
	}
	store_close(&s);
}

/* ---- keys and stored messages -------------------------------------------- */

static void
test_keys(void **state)
{
	unsigned char child[EHX_PSEUDONYM_LEN], key[STORE_KEY_MAX];
	char agency[EHX_MAX_ID + 1], ref[EHX_MAX_REF + 1];
	size_t n;

	(void)state;
	for (int i = 0; i < EHX_PSEUDONYM_LEN; i++)
		child[i] = (unsigned char)(0xc0 + i);
	n = store_flag_key(key, child, "police", "CASE-1");
	assert_int_equal(n, 32 + 6 + 1 + 6);
	assert_memory_equal(key, child, 32);
	assert_memory_equal(key + 32, "police\0CASE-1", 13);
	n = store_consent_key(key, child, "c-0123456789abcdef",
	    STORE_CONSENT_WITHDRAWAL);
	assert_int_equal(n, 32 + 18 + 1);
	assert_memory_equal(key, child, 32);
	assert_memory_equal(key + 32, "c-0123456789abcdef\001", 19);
	/* The longest agency id and ref fit STORE_KEY_MAX. */
	memset(agency, 'a', EHX_MAX_ID);
	agency[EHX_MAX_ID] = '\0';
	memset(ref, 'r', EHX_MAX_REF);
	ref[EHX_MAX_REF] = '\0';
	n = store_flag_key(key, child, agency, ref);
	assert_int_equal(n, 32 + EHX_MAX_ID + 1 + EHX_MAX_REF);
	assert_true(n <= STORE_KEY_MAX);
	/* The separator keeps ("ab", "c") and ("a", "bc") apart. */
	{
		unsigned char k2[STORE_KEY_MAX];
		size_t n1 = store_flag_key(key, child, "ab", "c");
		size_t n2 = store_flag_key(k2, child, "a", "bc");

		assert_int_equal(n1, n2);
		assert_memory_not_equal(key, k2, n1);
	}
}

static void
test_put_msg(void **state)
{
	struct store s;
	struct ehx_arena *a = ehx_arena_new(MiB);
	Ehx__StoredFlag sf = EHX__STORED_FLAG__INIT, *back;
	Ehx__FlagView fv = EHX__FLAG_VIEW__INIT;
	unsigned char child[EHX_PSEUDONYM_LEN] = { 1 }, other[EHX_PSEUDONYM_LEN]
	    = { 2 }, key[STORE_KEY_MAX];
	char path[PATH_MAX];
	MDB_txn *txn;
	MDB_val k, v;
	size_t klen;

	(void)state;
	open_store(&s, "putmsg", 16 * MiB, path, sizeof(path));
	fv.ref = "CASE-1";
	fv.level = 2;
	sf.agency = "police";
	sf.flag = &fv;
	assert_int_equal(mdb_txn_begin(s.env, NULL, 0, &txn), 0);
	klen = store_flag_key(key, child, "police", "CASE-1");
	assert_int_equal(store_put_msg(txn, s.flags, key, klen, &sf.base, a), 0);
	klen = store_flag_key(key, child, "police", "CASE-2");
	assert_int_equal(store_put_msg(txn, s.flags, key, klen, &sf.base, a), 0);
	klen = store_flag_key(key, other, "police", "CASE-1");
	assert_int_equal(store_put_msg(txn, s.flags, key, klen, &sf.base, a), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	assert_int_equal(entries(&s, s.flags), 3);

	/* A child's records are one range starting at its pseudonym. */
	assert_int_equal(mdb_txn_begin(s.env, NULL, MDB_RDONLY, &txn), 0);
	{
		MDB_cursor *cur;
		int rc, n = 0;

		k.mv_data = child;
		k.mv_size = sizeof(child);
		assert_int_equal(mdb_cursor_open(txn, s.flags, &cur), 0);
		for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0 &&
		    memcmp(k.mv_data, child, 32) == 0;
		    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
			back = ehx__stored_flag__unpack(ehx_arena_allocator(a),
			    v.mv_size, v.mv_data);
			assert_non_null(back);
			assert_string_equal(back->agency, "police");
			assert_string_equal(back->flag->ref, "CASE-1");
			n++;
		}
		mdb_cursor_close(cur);
		assert_int_equal(n, 2);
	}
	mdb_txn_abort(txn);
	store_close(&s);
	ehx_arena_free(a);
}

/* ---- a full map ------------------------------------------------------------ */

static void
test_map_full(void **state)
{
	struct store s;
	char path[PATH_MAX], err[512];
	uint64_t seq = 0;
	int r = 0, i;

	(void)state;
	open_store(&s, "tiny", 128 * 1024, path, sizeof(path));
	for (i = 0; i < 100000; i++)
		if ((r = append_one(&s, "publish_flag: a somewhat long action "
		    "name to fill the pages quickly", &seq)) != 0)
			break;
	assert_int_equal(r, EHX_ERR_STORAGE_FULL);
	assert_true(i > 10);
	/* The map fills at the put or at the commit. */
	assert_true(seq == (uint64_t)i || seq == (uint64_t)i + 1);
	/* Still readable, and the chain holds every committed record. */
	assert_int_equal(check_chain(&s), (size_t)i);
	/* The same write again: the same code, and nothing changes. */
	assert_int_equal(append_one(&s, "publish_flag: a somewhat long action "
	    "name to fill the pages quickly", &seq), EHX_ERR_STORAGE_FULL);
	assert_int_equal(check_chain(&s), (size_t)i);
	/* Whatever else is tried either fits whole or leaves no trace. */
	for (int k = 0; k < 5000; k++) {
		size_t before = entries(&s, s.replay);

		r = put_replay(&s, "police", k, 1000, 0);
		assert_true(r == 0 || r == EHX_ERR_STORAGE_FULL);
		assert_int_equal(entries(&s, s.replay), before + (r == 0));
		assert_int_equal(entries(&s, s.replay_time), before + (r == 0));
		if (r != 0)
			break;
	}
	assert_int_equal(r, EHX_ERR_STORAGE_FULL);
	while (append_one(&s, "x", &seq) == 0)
		i++;
	assert_int_equal(check_chain(&s), (size_t)i);
	store_close(&s);
	/* And it reopens, read-only and read-write. */
	assert_int_equal(store_open(&s, path, 128 * 1024, true, err, sizeof(err)),
	    0);
	assert_int_equal(check_chain(&s), (size_t)i);
	store_close(&s);
	open_store(&s, "tiny", 128 * 1024, path, sizeof(path));
	assert_int_equal(check_chain(&s), (size_t)i);
	/* A bigger map on reopen makes room again. */
	store_close(&s);
	open_store(&s, "tiny", 1 * MiB, path, sizeof(path));
	assert_int_equal(append_one(&s, "room again", &seq), 0);
	assert_int_equal(seq, (uint64_t)i + 1);
	assert_int_equal(check_chain(&s), (size_t)i + 1);
	store_close(&s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open),
		cmocka_unit_test(test_migrate_5_to_6),
		cmocka_unit_test(test_store_err),
		cmocka_unit_test(test_replay_round_trip),
		cmocka_unit_test(test_replay_prune),
		cmocka_unit_test(test_audit_chain),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_put_msg),
		cmocka_unit_test(test_map_full),
	};

	return cmocka_run_group_tests_name("test_store", tests, setup, teardown);
}
