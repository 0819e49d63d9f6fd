/*
 * store.h — the broker's LMDB environment (store.c): its named databases,
 * the audit log and its Merkle tree, checkpoints, evidence sealed at rest,
 * the replay store, and the keys of the child-prefixed databases.
 */
#ifndef EHX_BROKER_STORE_H
#define EHX_BROKER_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lmdb.h>

#include "ehx.pb-c.h"
#include "ehx/arena.h"
#include "ehx/crypto.h"
#include "ehx/limits.h"
#include "ehx/merkle.h"
#include "registry.h"

struct store {
	MDB_env *env;
	MDB_dbi flags, consent, audit, replay, replay_time, meta;
	MDB_dbi tree, checkpoints, cosign, evidence, audit_child, alerts;
	MDB_dbi disclosures, notify, streams, certs;
	/* right early help lists: child -> its locality, and locality 0x00
	 * child -> the child's NHS number sealed (ehx_evidence_seal, the
	 * pseudonym as associated data) */
	MDB_dbi child_locality, locality_index;
	/* identities (identity.c): nodes, their index, each child's nodes */
	MDB_dbi idnode, idindex, idmember;
	/* involvement: child ‖ agency ‖ 0 ‖ kind (1) → StoredInvolvement */
	MDB_dbi involvement;
	bool identity;          /* those are there (a read-only open of a
	                         * store of layout 5 lacks them) */
	int layout;             /* the store's layout */
	bool failed;            /* a fatal storage error: refuse writes */
};

/* Open (creating) the environment in dir with the given map size. */
int store_open(struct store *s, const char *dir, size_t map_size,
    bool readonly, char *err, size_t errsz);
void store_close(struct store *s);

/* Map an LMDB return code to an EHX code (MDB_MAP_FULL → STORAGE_FULL). */
int store_err(int mdb_rc);

/*
 * The reply stored for (sender, message id), if any. On 0, *entry is
 * unpacked in arena a (valid until it is reset). EHX_ERR_NOT_FOUND if none.
 */
int store_replay_get(struct store *s, MDB_txn *txn, const char *sender,
    const unsigned char id[EHX_MSGID_LEN], struct ehx_arena *a,
    Ehx__ReplayEntry **entry);

/* Remember the reply to (sender, id) and drop entries older than horizon. */
int store_replay_put(struct store *s, MDB_txn *txn, const char *sender,
    const unsigned char id[EHX_MSGID_LEN], const Ehx__ReplayEntry *entry,
    int64_t horizon_ms);

/* Records in the audit log (0 when empty). */
int store_audit_size(struct store *s, MDB_txn *txn, uint64_t *size);
/* The map is full for changes: only reads (and their audit) may write. */
#define STORE_RESERVE (256 * 1024)
/* pending: bytes a write transaction still open may add (a group commit's
 * requests so far), counted as if already stored. */
bool store_nearly_full(struct store *s, size_t pending);
/* Keep the broker's certificate and every one in the registry in the certs
 * database, for exports long after rotation. */
int store_keep_certs(struct store *s, const struct ehx_cert *own,
    const struct registry *reg);

/* Append rec to the audit log and its Merkle tree; rec->seq is set (the
 * record is leaf seq - 1). Indexes it by child when it names one. */
int store_audit_append(struct store *s, MDB_txn *txn, Ehx__AuditRecord *rec);

/* The stored bytes of record seq (valid until the transaction ends). */
int store_audit_get(struct store *s, MDB_txn *txn, uint64_t seq, MDB_val *val);

/* The leaf hash the tree holds for record seq. */
int store_audit_leaf(struct store *s, MDB_txn *txn, uint64_t seq,
    unsigned char out[EHX_HASH_LEN]);

/* Root of the first size records; proofs (at most EHX_MERKLE_MAX_PROOF). */
int store_audit_root(struct store *s, MDB_txn *txn, uint64_t size,
    unsigned char root[EHX_HASH_LEN]);
int store_audit_inclusion(struct store *s, MDB_txn *txn, uint64_t seq,
    uint64_t size, unsigned char (*path)[EHX_HASH_LEN], size_t *n);
int store_audit_consistency(struct store *s, MDB_txn *txn, uint64_t old_size,
    uint64_t new_size, unsigned char (*path)[EHX_HASH_LEN], size_t *n);

/* The checkpoint of size (0: the newest), unpacked in a (NULL: malloc,
 * free with ehx__checkpoint__free_unpacked). EHX_ERR_NOT_FOUND if none. */
int store_checkpoint_get(struct store *s, MDB_txn *txn, uint64_t size,
    struct ehx_arena *a, Ehx__Checkpoint **cp);
int store_checkpoint_put(struct store *s, MDB_txn *txn,
    const Ehx__Checkpoint *cp, struct ehx_arena *a);

/* Keep the envelope (its SHA-256 hash) that audit record seq names, the
 * newest record, as evidence sealed under the key derived from pk: a
 * copied store does not list children. */
int store_evidence_put(struct store *s, MDB_txn *txn,
    const struct ehx_pseudokey *pk, uint64_t seq, const unsigned char hash[32],
    const void *env, size_t len);
/* The envelope kept for record seq, opened with its hash (*env malloc'd).
 * NOT_FOUND if none; EHX_ERR_STORAGE if it does not open (changed, moved,
 * or another key). */
int store_evidence_get(struct store *s, MDB_txn *txn,
    const struct ehx_pseudokey *pk, uint64_t seq, const unsigned char hash[32],
    unsigned char **env, size_t *len);

void put_be64(unsigned char *p, uint64_t v);
uint64_t get_be64(const unsigned char *p);

/* Key helpers for the child-prefixed databases. */
#define STORE_KEY_MAX (EHX_PSEUDONYM_LEN + EHX_MAX_ID + 1 + EHX_MAX_REF + 1)
size_t store_flag_key(unsigned char *out, const unsigned char *child,
    const char *agency, const char *ref);
#define STORE_CONSENT_RECORD 0
#define STORE_CONSENT_WITHDRAWAL 1
size_t store_consent_key(unsigned char *out, const unsigned char *child,
    const char *consent_id, int kind);
/* locality_index: locality (len bytes, 1..EHX_MAX_ID) ‖ 0 ‖ child (NULL:
 * the locality's prefix alone). Returns the key's length. */
#define STORE_LOCALITY_KEY_MAX (EHX_MAX_ID + 1 + EHX_PSEUDONYM_LEN)
size_t store_locality_key(unsigned char *out, const void *locality,
    size_t len, const unsigned char *child);

/* Whether an involvement is in force on today ("YYYY-MM-DD"): from
 * starts_on to ends_on, both included; no end, ongoing. */
bool store_in_force(const Ehx__StoredInvolvement *si, const char *today);

/*
 * When two children are found to be one (identity.c): every record kept
 * under from's key moves to into's — flags (each keeping the record it
 * came from, StoredFlag.origin), relationships, consents, and the
 * locality (re-sealed under the new key). Where into holds the same
 * (agency, ref) already, the one changed last is kept. The audit's
 * records keep naming the key they were made under. 0 or an error.
 */
int store_move_child(struct store *s, MDB_txn *txn,
    const struct ehx_pseudokey *pk, const unsigned char from[32],
    const unsigned char into[32]);

/* Serialize msg into the arena and put it under key. */
int store_put_msg(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t klen,
    const ProtobufCMessage *msg, struct ehx_arena *a);

/*
 * Read a stored value of message type d into *out (a pointer to a
 * pointer of that type). With an arena it is unpacked there, valid until
 * the arena is reset. With a NULL it is unpacked on the heap, for a scan
 * that reads many values and answers with few: free it with
 * protobuf_c_message_free_unpacked(m, NULL), and copy what the answer
 * keeps into the arena with store_keep, so that the request's memory is
 * bounded by its answer, not by what the store holds. Returns 0;
 * EHX_ERR_NOMEM when memory ran out (one request refused, the broker goes
 * on); EHX_ERR_STORAGE only when the bytes do not parse: a damaged store.
 */
int store_read(const ProtobufCMessageDescriptor *d, struct ehx_arena *a,
    const MDB_val *v, void *out);

/* How many values store_read has read in this thread so far: the
 * pipeline charges a request's reads to its agency's rate. */
uint64_t store_reads(void);

/* A deep copy of m in arena a into *out (as for store_read): 0 or
 * EHX_ERR_NOMEM. */
int store_keep(struct ehx_arena *a, const ProtobufCMessage *m, void *out);

#endif
