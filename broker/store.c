/*
 * store.c — the broker's one LMDB environment and its named databases:
 *
 *   flags        child ‖ agency ‖ 0 ‖ ref     → StoredFlag
 *   consent      child ‖ consent id ‖ 0       → StoredConsent (as recorded)
 *                child ‖ consent id ‖ 1       → StoredWithdrawal
 *   audit        seq (8 bytes, big-endian)    → AuditRecord (leaf seq - 1)
 *   tree         last leaf (8, BE) ‖ level (1) → SHA-256 of the complete subtree
 *                                               at that level ending at that
 *                                               leaf (appended: tree_key)
 *   checkpoints  size (8, BE)                 → Checkpoint (signed, immutable)
 *   cosign       size (8, BE) ‖ agency        → Cosignature
 *   evidence     seq (8, BE)                  → the envelope that audit record
 *                                               seq names, sealed (its SHA-256
 *                                               in the AD): appended, not
 *                                               written all over the tree
 *   audit_child  child ‖ seq (8, BE)          → (empty): one child's records
 *   alerts       seq (8, BE) ‖ 0              → Alert (a break-glass event)
 *                seq (8, BE) ‖ 1              → StoredReview (its review)
 *   disclosures  owner agency ‖ 0 ‖ seq (8, BE) → Disclosure
 *   replay       sender ‖ 0 ‖ message id      → ReplayEntry (the reply)
 *   replay_time  received (8, BE) ‖ replay key → (empty), for pruning
 *   notify       agency ‖ 0 ‖ seq (8, BE)     → its message id (16) ‖ its signed
 *                                               envelope, sealed like evidence (it
 *                                               names a child; the id is in the AD)
 *   streams      agency ‖ 0 ‖ stream (16)     → the last number applied (8, BE) ‖
 *                                               the message ids of the last 64
 *                                               applied (16 each, at number % 64)
 *   idnode, idindex, idmember                 → identities: broker/identity.c
 *   involvement  child ‖ agency ‖ 0 ‖ kind    → StoredInvolvement: who serves
 *                                               the child (handle_involvement.c)
 *   child_locality  child                     → the locality last published for it
 *   locality_index  locality ‖ 0 ‖ child      → its NHS number, sealed like
 *                                               evidence (the child in the AD):
 *                                               a list must name its children
 *   certs        SHA-256 of a certificate     → the certificate (PEM): every one
 *                                               the broker and its registry have
 *                                               used, kept after rotation so old
 *                                               envelopes stay verifiable
 *   meta         "format"                     → the layout (8, BE): migrate.c
 *                "audit_size"                 → records in the audit (8, BE)
 *                "notify:" agency             → the last notification seq given it (8, BE)
 *                "notified:" agency           → the last seq it acknowledged (8, BE) ‖
 *                                               that notification's message id (16)
 *                "nplan:" record seq (8, BE)  → a publish's NotifyPlan, sealed like
 *                                               evidence: signed and queued
 *                                               within moments (notify_flush)
 *
 * The audit log is an RFC 9162 Merkle tree: leaf = SHA-256(0 ‖ record
 * bytes); the tree database keeps every complete subtree's hash, so roots
 * and proofs are a few reads (lib/merkle.c).
 *
 * Children are keyed by their 32-byte pseudonym, so all of one child's
 * records sit together and a picture is one range scan. LMDB's default
 * durability (fsync at commit) is kept: the broker replies only after the
 * commit returns.
 */
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "ehx/err.h"
#include "ehx/log.h"
#include "ehx/merkle.h"
#include "ehx/util.h"
#include "migrate.h"
#include "store.h"

#define REPLAY_KEY_MAX (EHX_MAX_ID + 1 + EHX_MSGID_LEN)
#define PRUNE_BATCH 64

void
put_be64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (unsigned char)v;
		v >>= 8;
	}
}

uint64_t
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
	/* since: the layout that brought the database */
	static const struct {
		const char *name;
		size_t off;
		int since;
	} dbs[] = {
		{ "flags", offsetof(struct store, flags), 5 },
		{ "consent", offsetof(struct store, consent), 5 },
		{ "audit", offsetof(struct store, audit), 5 },
		{ "replay", offsetof(struct store, replay), 5 },
		{ "replay_time", offsetof(struct store, replay_time), 5 },
		{ "meta", offsetof(struct store, meta), 5 },
		{ "tree", offsetof(struct store, tree), 5 },
		{ "checkpoints", offsetof(struct store, checkpoints), 5 },
		{ "cosign", offsetof(struct store, cosign), 5 },
		{ "evidence", offsetof(struct store, evidence), 5 },
		{ "audit_child", offsetof(struct store, audit_child), 5 },
		{ "alerts", offsetof(struct store, alerts), 5 },
		{ "disclosures", offsetof(struct store, disclosures), 5 },
		{ "notify", offsetof(struct store, notify), 5 },
		{ "streams", offsetof(struct store, streams), 5 },
		{ "certs", offsetof(struct store, certs), 5 },
		{ "child_locality", offsetof(struct store, child_locality), 5 },
		{ "locality_index", offsetof(struct store, locality_index), 5 },
		{ "idnode", offsetof(struct store, idnode), 6 },
		{ "idindex", offsetof(struct store, idindex), 6 },
		{ "idmember", offsetof(struct store, idmember), 6 },
		{ "involvement", offsetof(struct store, involvement), 6 },
	};
	MDB_txn *txn = NULL;
	char why[256];
	uint64_t layout = 0;
	int rc;

	memset(s, 0, sizeof(*s));
	if (!readonly && mkdir(dir, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errsz, "%s: %s", dir, strerror(errno));
		return EHX_ERR_STORAGE;
	}
	if ((rc = mdb_env_create(&s->env)) != 0 ||
	    (rc = mdb_env_set_maxdbs(s->env, 32)) != 0 ||
	    (rc = mdb_env_set_mapsize(s->env, map_size)) != 0 ||
	    (rc = mdb_env_set_maxreaders(s->env, 126)) != 0 ||
	    (rc = mdb_env_open(s->env, dir, MDB_NOTLS |
	    (readonly ? MDB_RDONLY : 0), 0600)) != 0)
		goto fail;
	if ((rc = mdb_txn_begin(s->env, NULL, readonly ? MDB_RDONLY : 0,
	    &txn)) != 0)
		goto fail;
	s->identity = true;
	for (size_t i = 0; i < sizeof(dbs) / sizeof(dbs[0]); i++) {
		rc = mdb_dbi_open(txn, dbs[i].name, readonly ? 0 : MDB_CREATE,
		    (MDB_dbi *)((char *)s + dbs[i].off));
		/* read-only, a store not yet migrated lacks the newer ones */
		if (rc == MDB_NOTFOUND && readonly && dbs[i].since > MIGRATE_OLDEST) {
			s->identity = false;
			continue;
		}
		if (rc != 0)
			goto fail;
	}
	if (migrate_check(txn, s->meta, s->audit, readonly, &layout, why,
	    sizeof(why)) != 0 ||
	    (!readonly && migrate_run(txn, s->meta, layout, why,
	    sizeof(why)) != 0)) {
		snprintf(err, errsz, "%s: %s", dir, why);
		mdb_txn_abort(txn);
		mdb_env_close(s->env);
		s->env = NULL;
		return EHX_ERR_STORAGE;
	}
	if ((rc = mdb_txn_commit(txn)) != 0) {
		txn = NULL;
		goto fail;
	}
	if (!readonly && layout < MIGRATE_LAYOUT)
		log_info("%s: store migrated from layout %llu to %d", dir,
		    (unsigned long long)layout, MIGRATE_LAYOUT);
	s->layout = readonly ? (int)layout : MIGRATE_LAYOUT;
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
	return store_read(&ehx__replay_entry__descriptor, a, &val, entry);
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

/* The heap, through protobuf-c, remembering whether malloc failed. */
static _Thread_local bool heap_failed;

static void *
heap_alloc(void *data, size_t n)
{
	void *p = malloc(n);

	(void)data;
	if (p == NULL)
		heap_failed = true;
	return p;
}

static void
heap_free(void *data, void *p)
{
	(void)data;
	free(p);
}

static ProtobufCAllocator heap = { heap_alloc, heap_free, NULL };
static _Thread_local uint64_t reads;

uint64_t
store_reads(void)
{
	return reads;
}

int
store_read(const ProtobufCMessageDescriptor *d, struct ehx_arena *a,
    const MDB_val *v, void *out)
{
	size_t refused = a != NULL ? ehx_arena_failures(a) : 0;
	ProtobufCMessage *m;

	heap_failed = false;
	reads++;
	m = protobuf_c_message_unpack(d, a != NULL ? ehx_arena_allocator(a) :
	    &heap, v->mv_size, v->mv_data);
	memcpy(out, &m, sizeof(m));
	if (m != NULL)
		return 0;
	if (a != NULL ? ehx_arena_failures(a) != refused : heap_failed)
		return EHX_ERR_NOMEM;
	return EHX_ERR_STORAGE;
}

int
store_keep(struct ehx_arena *a, const ProtobufCMessage *m, void *out)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	ProtobufCMessage *copy = NULL;
	unsigned char *buf;

	if ((buf = ehx_arena_alloc(a, n)) != NULL) {
		protobuf_c_message_pack(m, buf);
		copy = protobuf_c_message_unpack(m->descriptor,
		    ehx_arena_allocator(a), n, buf);
	}
	memcpy(out, &copy, sizeof(copy));
	return copy != NULL ? 0 : EHX_ERR_NOMEM;
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

static const char size_key[] = "audit_size";

int
store_audit_size(struct store *s, MDB_txn *txn, uint64_t *size)
{
	MDB_val key = { sizeof(size_key) - 1, (void *)size_key }, val;
	int rc;

	*size = 0;
	if ((rc = mdb_get(txn, s->meta, &key, &val)) != 0)
		return rc == MDB_NOTFOUND ? 0 : store_err(rc);
	if (val.mv_size != 8)
		return EHX_ERR_STORAGE;
	*size = get_be64(val.mv_data);
	return 0;
}

struct tree_ctx {
	struct store *s;
	MDB_txn *txn;
};

/*
 * The key of the complete subtree at level and index: the last leaf it
 * covers ((index + 1) * 2^level - 1, 8 bytes BE), then its level. So the
 * nodes one append makes (the leaf and the subtrees it completes) are
 * written together at the end of the database, not one at the end of each
 * level's range. False if it cannot be a node of a log of 2^64 leaves.
 */
static bool
tree_key(unsigned char k[9], unsigned level, uint64_t index)
{
	if (level > 63 || index > (UINT64_MAX >> level) - 1)
		return false;
	put_be64(k, ((index + 1) << level) - 1);
	k[8] = (unsigned char)level;
	return true;
}

static int
tree_get(void *ctx, unsigned level, uint64_t index,
    unsigned char out[EHX_HASH_LEN])
{
	struct tree_ctx *t = ctx;
	unsigned char k[9];
	MDB_val key = { sizeof(k), k }, val;
	int rc;

	if (!tree_key(k, level, index))
		return EHX_ERR_STORAGE;
	if ((rc = mdb_get(t->txn, t->s->tree, &key, &val)) != 0)
		return rc == MDB_NOTFOUND ? EHX_ERR_STORAGE : store_err(rc);
	if (val.mv_size != EHX_HASH_LEN)
		return EHX_ERR_STORAGE;
	memcpy(out, val.mv_data, EHX_HASH_LEN);
	return 0;
}

static int
tree_put(void *ctx, unsigned level, uint64_t index,
    const unsigned char hash[EHX_HASH_LEN])
{
	struct tree_ctx *t = ctx;
	unsigned char k[9];
	MDB_val key = { sizeof(k), k }, val = { EHX_HASH_LEN, (void *)hash };

	if (!tree_key(k, level, index))
		return EHX_ERR_STORAGE;
	/* lib/merkle.c puts a leaf, then the subtrees it completes, level by
	 * level: each key is past every other. */
	return store_err(mdb_put(t->txn, t->s->tree, &key, &val, MDB_APPEND));
}

int
store_audit_append(struct store *s, MDB_txn *txn, Ehx__AuditRecord *rec)
{
	struct tree_ctx t = { s, txn };
	unsigned char k[8], ck[EHX_PSEUDONYM_LEN + 8], leaf[EHX_HASH_LEN];
	MDB_val key, val, empty = { 0, NULL };
	uint64_t size;
	size_t len;
	int rc;

	if ((rc = store_audit_size(s, txn, &size)) != 0)
		return rc;
	rec->seq = size + 1;
	len = ehx__audit_record__get_packed_size(rec);
	put_be64(k, rec->seq);
	key.mv_data = k;
	key.mv_size = sizeof(k);
	val.mv_size = len;
	if ((rc = mdb_put(txn, s->audit, &key, &val,
	    MDB_RESERVE | MDB_APPEND)) != 0)
		return store_err(rc);
	ehx__audit_record__pack(rec, val.mv_data);
	ehx_merkle_leaf_hash(val.mv_data, len, leaf);
	if ((rc = ehx_merkle_append(tree_get, tree_put, &t, size, leaf)) != 0)
		return rc;
	if (rec->child.len == EHX_PSEUDONYM_LEN) {
		memcpy(ck, rec->child.data, EHX_PSEUDONYM_LEN);
		put_be64(ck + EHX_PSEUDONYM_LEN, rec->seq);
		key.mv_data = ck;
		key.mv_size = sizeof(ck);
		if ((rc = mdb_put(txn, s->audit_child, &key, &empty, 0)) != 0)
			return store_err(rc);
	}
	key.mv_data = (void *)size_key;
	key.mv_size = sizeof(size_key) - 1;
	val.mv_data = k;
	val.mv_size = sizeof(k);
	return store_err(mdb_put(txn, s->meta, &key, &val, 0));
}

int
store_audit_get(struct store *s, MDB_txn *txn, uint64_t seq, MDB_val *val)
{
	unsigned char k[8];
	MDB_val key = { sizeof(k), k };

	put_be64(k, seq);
	return store_err(mdb_get(txn, s->audit, &key, val));
}

int
store_audit_leaf(struct store *s, MDB_txn *txn, uint64_t seq,
    unsigned char out[EHX_HASH_LEN])
{
	struct tree_ctx t = { s, txn };

	if (seq == 0)
		return EHX_ERR_NOT_FOUND;
	return tree_get(&t, 0, seq - 1, out);
}

int
store_audit_root(struct store *s, MDB_txn *txn, uint64_t size,
    unsigned char root[EHX_HASH_LEN])
{
	struct tree_ctx t = { s, txn };

	return ehx_merkle_root(tree_get, &t, size, root);
}

int
store_audit_inclusion(struct store *s, MDB_txn *txn, uint64_t seq,
    uint64_t size, unsigned char (*path)[EHX_HASH_LEN], size_t *n)
{
	struct tree_ctx t = { s, txn };

	if (seq == 0)
		return EHX_ERR_INVALID_FIELD;
	return ehx_merkle_inclusion_proof(tree_get, &t, seq - 1, size, path,
	    EHX_MERKLE_MAX_PROOF, n);
}

int
store_audit_consistency(struct store *s, MDB_txn *txn, uint64_t old_size,
    uint64_t new_size, unsigned char (*path)[EHX_HASH_LEN], size_t *n)
{
	struct tree_ctx t = { s, txn };

	return ehx_merkle_consistency_proof(tree_get, &t, old_size, new_size,
	    path, EHX_MERKLE_MAX_PROOF, n);
}

int
store_checkpoint_get(struct store *s, MDB_txn *txn, uint64_t size,
    struct ehx_arena *a, Ehx__Checkpoint **cp)
{
	MDB_cursor *cur;
	unsigned char k[8];
	MDB_val key = { sizeof(k), k }, val;
	int rc;

	*cp = NULL;
	if ((rc = mdb_cursor_open(txn, s->checkpoints, &cur)) != 0)
		return store_err(rc);
	if (size == 0)
		rc = mdb_cursor_get(cur, &key, &val, MDB_LAST);
	else {
		put_be64(k, size);
		rc = mdb_cursor_get(cur, &key, &val, MDB_SET_KEY);
	}
	mdb_cursor_close(cur);
	if (rc != 0)
		return store_err(rc);
	return store_read(&ehx__checkpoint__descriptor, a, &val, cp);
}

int
store_checkpoint_put(struct store *s, MDB_txn *txn, const Ehx__Checkpoint *cp,
    struct ehx_arena *a)
{
	unsigned char k[8];

	put_be64(k, cp->size);
	return store_put_msg(txn, s->checkpoints, k, sizeof(k), &cp->base, a);
}

int
store_evidence_put(struct store *s, MDB_txn *txn,
    const struct ehx_pseudokey *pk, uint64_t seq, const unsigned char hash[32],
    const void *env, size_t len)
{
	unsigned char k[8], *sealed;
	MDB_val key = { sizeof(k), k }, val;
	size_t n;
	int rc;

	put_be64(k, seq);
	if ((rc = ehx_evidence_seal(pk, hash, env, len, &sealed, &n)) != 0)
		return rc == EHX_ERR_NOMEM ? rc : EHX_ERR_INTERNAL;
	val.mv_data = sealed;
	val.mv_size = n;
	rc = mdb_put(txn, s->evidence, &key, &val, MDB_APPEND);
	free(sealed);
	return store_err(rc);
}

int
store_evidence_get(struct store *s, MDB_txn *txn,
    const struct ehx_pseudokey *pk, uint64_t seq, const unsigned char hash[32],
    unsigned char **env, size_t *len)
{
	unsigned char k[8];
	MDB_val key = { sizeof(k), k }, val;
	int rc;

	*env = NULL;
	*len = 0;
	put_be64(k, seq);
	if ((rc = mdb_get(txn, s->evidence, &key, &val)) != 0)
		return store_err(rc);
	if (ehx_evidence_open(pk, hash, val.mv_data, val.mv_size, env,
	    len) != 0)
		return EHX_ERR_STORAGE;
	return 0;
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
    const char *consent_id, int kind)
{
	size_t n = strlen(consent_id);

	memcpy(out, child, EHX_PSEUDONYM_LEN);
	memcpy(out + EHX_PSEUDONYM_LEN, consent_id, n);
	out[EHX_PSEUDONYM_LEN + n] = (unsigned char)kind;
	return EHX_PSEUDONYM_LEN + n + 1;
}

size_t
store_locality_key(unsigned char *out, const void *locality, size_t len,
    const unsigned char *child)
{
	memcpy(out, locality, len);
	out[len] = '\0';
	if (child == NULL)
		return len + 1;
	memcpy(out + len + 1, child, EHX_PSEUDONYM_LEN);
	return len + 1 + EHX_PSEUDONYM_LEN;
}

/* Keep cert in the certs database (once, under its fingerprint). */
static int
keep_cert(struct store *s, MDB_txn *txn, const struct ehx_cert *cert)
{
	MDB_val k = { EHX_FPR_LEN, (void *)ehx_cert_fpr(cert) }, v;
	char *pem;
	size_t len;
	int rc, r;

	if ((rc = mdb_get(txn, s->certs, &k, &v)) == 0)
		return 0;
	if (rc != MDB_NOTFOUND)
		return store_err(rc);
	if ((r = ehx_cert_pem(cert, &pem, &len)) != 0)
		return r;
	v = (MDB_val){ len, pem };
	r = store_err(mdb_put(txn, s->certs, &k, &v, 0));
	free(pem);
	return r;
}

int
store_keep_certs(struct store *s, const struct ehx_cert *own,
    const struct registry *reg)
{
	MDB_txn *txn;
	int rc, r = 0;

	if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0)
		return store_err(rc);
	if (own != NULL)
		r = keep_cert(s, txn, own);
	for (size_t i = 0; i < reg->n && r == 0; i++)
		for (size_t j = 0; j < reg->agencies[i].ncerts && r == 0; j++)
			r = keep_cert(s, txn, reg->agencies[i].certs[j]);
	if (r != 0) {
		mdb_txn_abort(txn);
		return r;
	}
	return store_err(mdb_txn_commit(txn));
}

/*
 * Whether the map is used beyond what changes may take: the last tenth
 * (at least STORE_RESERVE bytes, or a quarter of a smaller map) is kept for
 * the audit records of reads,
 * so that a full store still answers — and accounts for — reads.
 */
bool
store_nearly_full(struct store *s, size_t pending)
{
	MDB_envinfo info;
	MDB_stat st;
	size_t used, reserve;

	if (mdb_env_info(s->env, &info) != 0 || mdb_env_stat(s->env, &st) != 0)
		return false;
	used = (info.me_last_pgno + 1) * (size_t)st.ms_psize + pending;
	reserve = info.me_mapsize / 10;
	if (reserve < STORE_RESERVE)
		reserve = STORE_RESERVE < info.me_mapsize / 4 ? STORE_RESERVE :
		    info.me_mapsize / 4;
	return used + reserve > info.me_mapsize;
}

bool
store_in_force(const Ehx__StoredInvolvement *si, const char *today)
{
	return strcmp(si->starts_on, today) <= 0 &&
	    (si->ends_on[0] == '\0' || strcmp(si->ends_on, today) >= 0);
}

/* ---- moving one child's records to another's key ------------------------ */

/* The records of db under the prefix from, each handed to fn with its key
 * rewritten under into; fn puts what it keeps. The old records are then
 * deleted. */
typedef int (*move_fn)(struct store *, MDB_txn *, MDB_dbi, const MDB_val *,
    const MDB_val *, const unsigned char *, const unsigned char *);

static int
move_prefixed(struct store *s, MDB_txn *txn, MDB_dbi dbi,
    const unsigned char from[32], const unsigned char into[32], move_fn fn)
{
	unsigned char nk[512], ok[512];
	MDB_cursor *c = NULL;
	MDB_val k, v;
	int rc, r = 0;

	if ((rc = mdb_cursor_open(txn, dbi, &c)) != 0)
		return store_err(rc);
	for (;;) {
		MDB_val nkv, okv;

		k = (MDB_val){ 32, (void *)from };
		rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
		if (rc == MDB_NOTFOUND || (rc == 0 && (k.mv_size < 32 ||
		    memcmp(k.mv_data, from, 32) != 0))) {
			rc = 0;
			break;
		}
		if (rc != 0)
			break;
		if (k.mv_size > sizeof(nk)) {
			r = EHX_ERR_STORAGE;
			break;
		}
		memcpy(ok, k.mv_data, k.mv_size);
		okv = (MDB_val){ k.mv_size, ok };
		memcpy(nk, into, 32);
		memcpy(nk + 32, ok + 32, k.mv_size - 32);
		nkv = (MDB_val){ k.mv_size, nk };
		/* the value is read by fn before anything is written */
		if ((r = fn(s, txn, dbi, &nkv, &v, from, into)) != 0)
			break;
		if ((rc = mdb_del(txn, dbi, &okv, NULL)) != 0)
			break;
	}
	mdb_cursor_close(c);
	if (r != 0)
		return r;
	return store_err(rc);
}

/* A flag: the one changed last wins; its origin is kept. */
static int
move_flag(struct store *s, MDB_txn *txn, MDB_dbi dbi, const MDB_val *nk,
    const MDB_val *v, const unsigned char *from, const unsigned char *into)
{
	Ehx__StoredFlag *f = NULL, *there = NULL;
	MDB_val old;
	uint8_t *o = NULL;
	int rc, r;

	(void)s;
	(void)into;
	if ((r = store_read(&ehx__stored_flag__descriptor, NULL, v, &f)) != 0)
		return r;
	if ((rc = mdb_get(txn, dbi, (MDB_val *)nk, &old)) == 0) {
		if ((r = store_read(&ehx__stored_flag__descriptor, NULL, &old,
		    &there)) != 0)
			goto out;
		if (there->flag != NULL && f->flag != NULL &&
		    there->flag->updated_at >= f->flag->updated_at)
			goto out;               /* the one there is newer */
	} else if (rc != MDB_NOTFOUND) {
		r = store_err(rc);
		goto out;
	}
	if (f->origin.len == 0) {
		o = f->origin.data;
		f->origin.data = (uint8_t *)from;
		f->origin.len = 32;
	}
	{
		size_t n = ehx__stored_flag__get_packed_size(f);
		MDB_val nv = { n, NULL };

		if ((rc = mdb_put(txn, dbi, (MDB_val *)nk, &nv, MDB_RESERVE)) == 0)
			ehx__stored_flag__pack(f, nv.mv_data);
		r = store_err(rc);
	}
	if (o != NULL || f->origin.data == (uint8_t *)from) {
		f->origin.data = o;
		f->origin.len = 0;
	}
out:
	if (there != NULL)
		ehx__stored_flag__free_unpacked(there, NULL);
	ehx__stored_flag__free_unpacked(f, NULL);
	return r;
}

/* A relationship or a consent withdrawal: as it is, unless one is there. */
static int
move_plain(struct store *s, MDB_txn *txn, MDB_dbi dbi, const MDB_val *nk,
    const MDB_val *v, const unsigned char *from, const unsigned char *into)
{
	MDB_val old;
	unsigned char *copy;
	int rc;

	(void)s;
	(void)from;
	(void)into;
	if ((rc = mdb_get(txn, dbi, (MDB_val *)nk, &old)) == 0)
		return 0;
	if (rc != MDB_NOTFOUND)
		return store_err(rc);
	if ((copy = malloc(v->mv_size ? v->mv_size : 1)) == NULL)
		return EHX_ERR_NOMEM;
	memcpy(copy, v->mv_data, v->mv_size);
	rc = mdb_put(txn, dbi, (MDB_val *)nk, &(MDB_val){ v->mv_size, copy }, 0);
	free(copy);
	return store_err(rc);
}

/* A relationship: the one recorded last wins. */
static int
move_involvement(struct store *s, MDB_txn *txn, MDB_dbi dbi,
    const MDB_val *nk, const MDB_val *v, const unsigned char *from,
    const unsigned char *into)
{
	Ehx__StoredInvolvement *a = NULL, *b = NULL;
	MDB_val old;
	bool newer = true;
	int rc, r;

	if ((rc = mdb_get(txn, dbi, (MDB_val *)nk, &old)) == MDB_NOTFOUND)
		return move_plain(s, txn, dbi, nk, v, from, into);
	if (rc != 0)
		return store_err(rc);
	if ((r = store_read(&ehx__stored_involvement__descriptor, NULL, v,
	    &a)) != 0)
		return r;
	if ((r = store_read(&ehx__stored_involvement__descriptor, NULL, &old,
	    &b)) == 0)
		newer = a->recorded_at > b->recorded_at;
	if (r == 0 && newer) {
		size_t n = ehx__stored_involvement__get_packed_size(a);
		MDB_val nv = { n, NULL };

		if ((rc = mdb_put(txn, dbi, (MDB_val *)nk, &nv, MDB_RESERVE)) == 0)
			ehx__stored_involvement__pack(a, nv.mv_data);
		r = store_err(rc);
	}
	ehx__stored_involvement__free_unpacked(a, NULL);
	if (b != NULL)
		ehx__stored_involvement__free_unpacked(b, NULL);
	return r;
}

/* A consent record: it names its child. */
static int
move_consent(struct store *s, MDB_txn *txn, MDB_dbi dbi, const MDB_val *nk,
    const MDB_val *v, const unsigned char *from, const unsigned char *into)
{
	Ehx__StoredConsent *sc = NULL;
	uint8_t *was;
	int rc, r;

	(void)s;
	(void)from;
	if (nk->mv_size < 33 ||
	    ((const unsigned char *)nk->mv_data)[nk->mv_size - 1] !=
	    STORE_CONSENT_RECORD)
		return move_plain(s, txn, dbi, nk, v, from, into);
	if ((r = store_read(&ehx__stored_consent__descriptor, NULL, v, &sc)) != 0)
		return r;
	was = sc->child.data;
	sc->child.data = (uint8_t *)into;
	sc->child.len = 32;
	{
		size_t n = ehx__stored_consent__get_packed_size(sc);
		MDB_val nv = { n, NULL };

		if ((rc = mdb_put(txn, dbi, (MDB_val *)nk, &nv, MDB_RESERVE)) == 0)
			ehx__stored_consent__pack(sc, nv.mv_data);
		r = store_err(rc);
	}
	sc->child.data = was;
	ehx__stored_consent__free_unpacked(sc, NULL);
	return r;
}

/* The locality: into keeps its own; else from's, re-sealed for into. */
static int
move_locality(struct store *s, MDB_txn *txn, const struct ehx_pseudokey *pk,
    const unsigned char from[32], const unsigned char into[32])
{
	unsigned char ik[STORE_LOCALITY_KEY_MAX], *plain = NULL, *sealed = NULL;
	char loc[EHX_MAX_ID + 1];
	size_t n, pn = 0, sn = 0;
	MDB_val k = { 32, (void *)from }, v, iv;
	int rc, r;

	if ((rc = mdb_get(txn, s->child_locality, &k, &v)) == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return store_err(rc);
	if (v.mv_size == 0 || v.mv_size > EHX_MAX_ID)
		return EHX_ERR_STORAGE;
	n = v.mv_size;
	memcpy(loc, v.mv_data, n);
	loc[n] = '\0';
	if ((rc = mdb_del(txn, s->child_locality, &k, NULL)) != 0)
		return store_err(rc);
	k = (MDB_val){ store_locality_key(ik, loc, n, from), ik };
	if ((rc = mdb_get(txn, s->locality_index, &k, &iv)) != 0)
		return rc == MDB_NOTFOUND ? 0 : store_err(rc);
	r = ehx_evidence_open(pk, from, iv.mv_data, iv.mv_size, &plain, &pn);
	if ((rc = mdb_del(txn, s->locality_index, &k, NULL)) != 0) {
		ehx_free_secret(plain, pn);
		return store_err(rc);
	}
	if (r != 0)
		return 0;               /* unreadable: the list loses it */
	k = (MDB_val){ 32, (void *)into };
	if ((rc = mdb_get(txn, s->child_locality, &k, &v)) == 0) {
		ehx_free_secret(plain, pn);
		return 0;               /* into keeps its own */
	}
	r = ehx_evidence_seal(pk, into, plain, pn, &sealed, &sn);
	ehx_free_secret(plain, pn);
	if (r != 0)
		return r == EHX_ERR_NOMEM ? r : EHX_ERR_INTERNAL;
	v = (MDB_val){ n, loc };
	if ((rc = mdb_put(txn, s->child_locality, &k, &v, 0)) == 0) {
		k = (MDB_val){ store_locality_key(ik, loc, n, into), ik };
		v = (MDB_val){ sn, sealed };
		rc = mdb_put(txn, s->locality_index, &k, &v, 0);
	}
	free(sealed);
	return store_err(rc);
}

int
store_move_child(struct store *s, MDB_txn *txn,
    const struct ehx_pseudokey *pk, const unsigned char from[32],
    const unsigned char into[32])
{
	int r;

	if (memcmp(from, into, 32) == 0)
		return 0;
	if ((r = move_prefixed(s, txn, s->flags, from, into, move_flag)) != 0 ||
	    (r = move_prefixed(s, txn, s->involvement, from, into,
	    move_involvement)) != 0 ||
	    (r = move_prefixed(s, txn, s->consent, from, into,
	    move_consent)) != 0)
		return r;
	return move_locality(s, txn, pk, from, into);
}
