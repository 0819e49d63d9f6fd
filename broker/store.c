/*
 * store.c — the broker's one LMDB environment and its named databases:
 *
 *   flags        child ‖ agency ‖ 0 ‖ ref     → StoredFlag
 *   consent      child ‖ consent id           → StoredConsent
 *   audit        seq (8 bytes, big-endian)    → AuditRecord
 *   replay       sender ‖ 0 ‖ message id      → ReplayEntry (the reply)
 *   replay_time  received (8, BE) ‖ replay key → (empty), for pruning
 *   meta         "audit_head"                 → seq (8, BE) ‖ SHA-256
 *
 * Children are keyed by their 32-byte pseudonym, so all of one child's
 * records sit together and a picture is one range scan. LMDB's default
 * durability (fsync at commit) is kept: the broker replies only after the
 * commit returns.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "broker.h"
#include "ehx/err.h"
#include "ehx/log.h"
#include "ehx/util.h"

#define REPLAY_KEY_MAX (EHX_MAX_ID + 1 + EHX_MSGID_LEN)
#define PRUNE_BATCH 64

static void
put_be64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (unsigned char)v;
		v >>= 8;
	}
}

static uint64_t
get_be64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

int
store_err(int rc)
{
	switch (rc) {
	case MDB_SUCCESS:
		return 0;
	case MDB_NOTFOUND:
		return EHX_ERR_NOT_FOUND;
	case MDB_MAP_FULL:
	case MDB_TXN_FULL:
		return EHX_ERR_STORAGE_FULL;
	default:
		return EHX_ERR_STORAGE;
	}
}

int
store_open(struct store *s, const char *dir, size_t map_size, bool readonly,
    char *err, size_t errsz)
{
	static const struct {
		const char *name;
		size_t off;
	} dbs[] = {
		{ "flags", offsetof(struct store, flags) },
		{ "consent", offsetof(struct store, consent) },
		{ "audit", offsetof(struct store, audit) },
		{ "replay", offsetof(struct store, replay) },
		{ "replay_time", offsetof(struct store, replay_time) },
		{ "meta", offsetof(struct store, meta) },
	};
	MDB_txn *txn = NULL;
	int rc;

	memset(s, 0, sizeof(*s));
	if (!readonly && mkdir(dir, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errsz, "%s: %s", dir, strerror(errno));
		return EHX_ERR_STORAGE;
	}
	if ((rc = mdb_env_create(&s->env)) != 0 ||
	    (rc = mdb_env_set_maxdbs(s->env, 8)) != 0 ||
	    (rc = mdb_env_set_mapsize(s->env, map_size)) != 0 ||
	    (rc = mdb_env_set_maxreaders(s->env, 126)) != 0 ||
	    (rc = mdb_env_open(s->env, dir, MDB_NOTLS |
	    (readonly ? MDB_RDONLY : 0), 0600)) != 0)
		goto fail;
	if ((rc = mdb_txn_begin(s->env, NULL, readonly ? MDB_RDONLY : 0,
	    &txn)) != 0)
		goto fail;
	for (size_t i = 0; i < sizeof(dbs) / sizeof(dbs[0]); i++)
		if ((rc = mdb_dbi_open(txn, dbs[i].name,
		    readonly ? 0 : MDB_CREATE,
		    (MDB_dbi *)((char *)s + dbs[i].off))) != 0)
			goto fail;
	if ((rc = mdb_txn_commit(txn)) != 0) {
		txn = NULL;
		goto fail;
	}
	return 0;
fail:
	snprintf(err, errsz, "%s: %s", dir, mdb_strerror(rc));
	if (txn != NULL)
		mdb_txn_abort(txn);
	if (s->env != NULL)
		mdb_env_close(s->env);
	s->env = NULL;
	return store_err(rc) == EHX_ERR_STORAGE_FULL ? EHX_ERR_STORAGE_FULL :
	    EHX_ERR_STORAGE;
}

void
store_close(struct store *s)
{
	if (s->env != NULL)
		mdb_env_close(s->env);
	s->env = NULL;
}

static size_t
replay_key(unsigned char *out, const char *sender,
    const unsigned char id[EHX_MSGID_LEN])
{
	size_t n = strlen(sender);

	memcpy(out, sender, n);
	out[n++] = '\0';
	memcpy(out + n, id, EHX_MSGID_LEN);
	return n + EHX_MSGID_LEN;
}

int
store_replay_get(struct store *s, MDB_txn *txn, const char *sender,
    const unsigned char id[EHX_MSGID_LEN], struct ehx_arena *a,
    Ehx__ReplayEntry **entry)
{
	unsigned char k[REPLAY_KEY_MAX];
	MDB_val key, val;
	int rc;

	*entry = NULL;
	key.mv_data = k;
	key.mv_size = replay_key(k, sender, id);
	if ((rc = mdb_get(txn, s->replay, &key, &val)) != 0)
		return store_err(rc);
	if ((*entry = ehx__replay_entry__unpack(ehx_arena_allocator(a),
	    val.mv_size, val.mv_data)) == NULL)
		return EHX_ERR_STORAGE;
	return 0;
}

int
store_put_msg(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t klen,
    const ProtobufCMessage *msg, struct ehx_arena *a)
{
	MDB_val key = { klen, (void *)k }, val;
	size_t n = protobuf_c_message_get_packed_size(msg);
	unsigned char *buf;

	if ((buf = ehx_arena_alloc(a, n)) == NULL)
		return EHX_ERR_NOMEM;
	protobuf_c_message_pack(msg, buf);
	val.mv_size = n;
	val.mv_data = buf;
	return store_err(mdb_put(txn, dbi, &key, &val, 0));
}

static int
replay_prune(struct store *s, MDB_txn *txn, int64_t horizon)
{
	MDB_cursor *cur = NULL;
	MDB_val key, val, rkey;
	int rc, n = 0;

	if ((rc = mdb_cursor_open(txn, s->replay_time, &cur)) != 0)
		return store_err(rc);
	while (n++ < PRUNE_BATCH &&
	    (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST)) == 0) {
		if (key.mv_size < 8 ||
		    (int64_t)get_be64(key.mv_data) >= horizon)
			break;
		rkey.mv_data = (unsigned char *)key.mv_data + 8;
		rkey.mv_size = key.mv_size - 8;
		if ((rc = mdb_del(txn, s->replay, &rkey, NULL)) != 0 &&
		    rc != MDB_NOTFOUND)
			break;
		if ((rc = mdb_cursor_del(cur, 0)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : store_err(rc);
}

int
store_replay_put(struct store *s, MDB_txn *txn, const char *sender,
    const unsigned char id[EHX_MSGID_LEN], const Ehx__ReplayEntry *entry,
    int64_t horizon)
{
	unsigned char k[REPLAY_KEY_MAX], tk[8 + REPLAY_KEY_MAX];
	size_t n = replay_key(k, sender, id);
	MDB_val key = { n, k }, val, tkey = { 8 + n, tk }, empty = { 0, NULL };
	size_t len = ehx__replay_entry__get_packed_size(entry);
	unsigned char *buf = NULL;
	int rc;

	if ((rc = replay_prune(s, txn, horizon)) != 0)
		return rc;
	put_be64(tk, (uint64_t)entry->received_at);
	memcpy(tk + 8, k, n);
	/* MDB_RESERVE: pack straight into the page LMDB gives us. */
	val.mv_size = len;
	if ((rc = mdb_put(txn, s->replay, &key, &val, MDB_RESERVE)) != 0)
		return store_err(rc);
	buf = val.mv_data;
	ehx__replay_entry__pack(entry, buf);
	return store_err(mdb_put(txn, s->replay_time, &tkey, &empty, 0));
}

static const char head_key[] = "audit_head";

int
store_audit_head(struct store *s, MDB_txn *txn, uint64_t *seq,
    unsigned char hash[32])
{
	MDB_val key = { sizeof(head_key) - 1, (void *)head_key }, val;
	int rc;

	*seq = 0;
	memset(hash, 0, 32);
	if ((rc = mdb_get(txn, s->meta, &key, &val)) != 0)
		return store_err(rc);
	if (val.mv_size != 8 + 32)
		return EHX_ERR_STORAGE;
	*seq = get_be64(val.mv_data);
	memcpy(hash, (unsigned char *)val.mv_data + 8, 32);
	return 0;
}

int
store_audit_append(struct store *s, MDB_txn *txn, Ehx__AuditRecord *rec)
{
	unsigned char prev[32], headbuf[8 + 32], k[8], *buf;
	MDB_val key, val;
	uint64_t seq;
	size_t len;
	int rc;

	if ((rc = store_audit_head(s, txn, &seq, prev)) != 0 &&
	    rc != EHX_ERR_NOT_FOUND)
		return rc;
	rec->seq = ++seq;
	rec->prev_hash.data = prev;
	rec->prev_hash.len = sizeof(prev);
	len = ehx__audit_record__get_packed_size(rec);
	put_be64(k, seq);
	key.mv_data = k;
	key.mv_size = sizeof(k);
	val.mv_size = len;
	if ((rc = mdb_put(txn, s->audit, &key, &val,
	    MDB_RESERVE | MDB_APPEND)) != 0)
		return store_err(rc);
	buf = val.mv_data;
	ehx__audit_record__pack(rec, buf);
	/* The head names this record: the next one chains to its hash. */
	put_be64(headbuf, seq);
	ehx_sha256(buf, len, headbuf + 8);
	rec->prev_hash.data = NULL;
	rec->prev_hash.len = 0;
	key.mv_data = (void *)head_key;
	key.mv_size = sizeof(head_key) - 1;
	val.mv_data = headbuf;
	val.mv_size = sizeof(headbuf);
	return store_err(mdb_put(txn, s->meta, &key, &val, 0));
}

size_t
store_flag_key(unsigned char *out, const unsigned char *child,
    const char *agency, const char *ref)
{
	size_t n = EHX_PSEUDONYM_LEN, a = strlen(agency), r = strlen(ref);

	memcpy(out, child, EHX_PSEUDONYM_LEN);
	memcpy(out + n, agency, a);
	n += a;
	out[n++] = '\0';
	memcpy(out + n, ref, r);
	return n + r;
}

size_t
store_consent_key(unsigned char *out, const unsigned char *child,
    const char *consent_id)
{
	size_t n = strlen(consent_id);

	memcpy(out, child, EHX_PSEUDONYM_LEN);
	memcpy(out + EHX_PSEUDONYM_LEN, consent_id, n);
	return EHX_PSEUDONYM_LEN + n;
}
