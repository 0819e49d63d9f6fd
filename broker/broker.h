/*
 * broker.h — the broker's state and the seams between its modules:
 * config (config.c), the agency registry (registry.c), the ZAP handler
 * (zap.c), the LMDB store (store.c), the request pipeline (verify.c), and
 * one handler per request payload (handle_*.c).
 */
#ifndef EHX_BROKER_H
#define EHX_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lmdb.h>

#include "ehx.pb-c.h"
#include "ehx/arena.h"
#include "ehx/crypto.h"
#include "ehx/limits.h"
#include "ehx/merkle.h"
#include "ehx/policy.h"

#define BROKER_PATH_MAX 1024
#define BROKER_MAX_CERTS 4   /* per agency: the current one and rotations */

struct broker_config {
	char file[BROKER_PATH_MAX];
	char id[EHX_MAX_ID + 1];
	char listen[256];
	char data_dir[BROKER_PATH_MAX];
	char certificate[BROKER_PATH_MAX];
	char key[BROKER_PATH_MAX];
	char curve_key[BROKER_PATH_MAX];
	char ca[BROKER_PATH_MAX];
	char registry[BROKER_PATH_MAX];
	char pseudonym_key[BROKER_PATH_MAX];
	char endpoint_file[BROKER_PATH_MAX];    /* optional: where to write the bound endpoint */
	char policy[BROKER_PATH_MAX];           /* the sharing policy */
	char crl[BROKER_PATH_MAX];              /* optional: the CA's CRL */
	char user[64];                          /* run as root: drop to this user */
	long long checkpoint_records;           /* sign a checkpoint every N records */
	long long checkpoint_seconds;           /* or T seconds, whichever first */
	long long retention_flag_days;          /* 0: keep closed flags */
	long long retention_consent_days;       /* 0: keep ended consents */
	long long retention_evidence_days;      /* 0: keep envelopes */
	long long skew_ms;
	long long map_size;
	long long rate_per_second;              /* per agency, sustained */
	long long rate_burst;                   /* per agency, at once */
	long long verify_threads;               /* -1: cores - 1 */
	int log_level;
};

/* Read and check the broker's config file. err gets "file:line: reason". */
int broker_config_load(const char *path, struct broker_config *c, char *err,
    size_t errsz);

struct agency {
	char id[EHX_MAX_ID + 1];
	char name[EHX_MAX_NAME + 1];
	int type;                               /* Ehx__AgencyType */
	struct ehx_cert *certs[BROKER_MAX_CERTS];
	size_t ncerts;
	unsigned char curve_pub[EHX_KEY_LEN];
	/* Its token bucket (verify.c): requests it may still send now. */
	double tokens;
	int64_t refilled;                       /* ms; 0: full, not yet used */
	int64_t tokens_logged;                  /* when "over its rate" was logged */
};

struct registry {
	struct agency *agencies;
	size_t n;
};

/*
 * Load the registry file: one [agency-id] section with type, name,
 * certificate (repeatable) and curve_public. Every certificate must chain to
 * the CA and name the section's id (CN) and type (OU); CURVE keys must be
 * unique. Returns 0 or EHX_ERR_CONFIG with err set. Free with registry_free.
 */
int registry_load(const char *path, const struct ehx_ca *ca,
    struct registry *reg, char *err, size_t errsz);
void registry_free(struct registry *reg);

/* Lookups; NULL when absent. Pointers are valid until registry_free. */
const struct agency *registry_by_id(const struct registry *reg,
    const char *id);
const struct agency *registry_by_curve(const struct registry *reg,
    const unsigned char key[EHX_KEY_LEN]);
const struct agency *registry_by_fpr(const struct registry *reg,
    const unsigned char fpr[EHX_FPR_LEN], const struct ehx_cert **cert);

/* ---- store.c: the broker's LMDB environment ---------------------------- */

struct store {
	MDB_env *env;
	MDB_dbi flags, consent, audit, replay, replay_time, meta;
	MDB_dbi tree, checkpoints, cosign, evidence, audit_child, alerts;
	MDB_dbi disclosures, notify, streams, certs;
	/* right early help lists: child -> its locality, and locality 0x00
	 * child -> the child's NHS number sealed (ehx_evidence_seal, the
	 * pseudonym as associated data) */
	MDB_dbi child_locality, locality_index;
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

/* Serialize msg into the arena and put it under key. */
int store_put_msg(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t klen,
    const ProtobufCMessage *msg, struct ehx_arena *a);

/* ---- the broker -------------------------------------------------------- */

struct broker {
	struct broker_config cfg;
	struct registry reg;
	struct ehx_ca *ca;
	struct ehx_crl *crl;            /* NULL: no CRL configured */
	struct ehx_signer *signer;
	struct ehx_pseudokey *pkey;
	struct store store;
	struct ehx_arena *arena;
	struct ehx_policy policy;
	Ehx__Checkpoint *cp;            /* the newest checkpoint (malloc'd) */
	int64_t cp_due;                 /* when the next timed one is due */
	unsigned char curve_secret[EHX_KEY_LEN];  /* wiped once set on the socket */
	void *zctx, *router, *zap;
	/* Notifications committed and not yet pushed to a connected agent. */
	struct push {
		const struct agency *to;
		unsigned char *env;
		size_t len;
	} *push;
	size_t npush, push_cap;
	/* Group commit (main.c): while batch is open, each request's effects
	 * go into a child transaction of it, and nothing is answered until it
	 * has committed. batch_bytes bounds what it may add to the store. */
	MDB_txn *batch;
	size_t batch_bytes;
	/* The message id the last broker_process answered (for an error to
	 * it when its batch fails to commit). */
	unsigned char last_id[EHX_MSGID_LEN];
	bool last_has_id;
};

/* A notification planned by a publish (notify.c). */
struct notify_plan {
	const struct agency *to;
	int basis;                      /* LawfulBasis */
	char consent_id[32];            /* when the basis is consent */
};

/* One request as it goes through the pipeline (verify.c). */
struct request {
	struct broker *b;
	const struct agency *conn;      /* bound to the CURVE key */
	const struct agency *agency;    /* the verified signer */
	Ehx__Body *body;                /* the verified body */
	int64_t now;
	MDB_txn *txn;                   /* the child transaction for effects */
	unsigned char child[EHX_PSEUDONYM_LEN];
	bool has_child;
	char basis[64];                 /* recorded in the audit record */
	char consent_id[32];            /* the consent a decision rested on */
	bool break_glass;               /* answered by break-glass */
	bool unaudited;                 /* proofs and cosignatures: no record */
	bool ephemeral;                 /* fetches: no replay entry either */
	struct notify_plan *notify;     /* planned by a publish (notify.c) */
	size_t nnotify;
	int notify_event;               /* NotifyEvent */
	uint32_t notify_prev_level;
	uint64_t expected;              /* OUT_OF_ORDER: the number due */
	unsigned char envelope_hash[32];
	/* Whose flags an answer disclosed (handle_picture), for the index. */
	struct disclosed {
		const char *owner;
		uint32_t flags;
	} *disclosed;
	size_t ndisclosed;
	Ehx__Body reply;                /* handlers set the payload */
};

/*
 * Process one Envelope frame that arrived on a connection bound to conn.
 * Returns the signed reply Envelope in *out (a new buffer the caller frees);
 * every error is itself a signed reply. Returns nonzero only when no reply
 * can be made at all.
 */
int broker_process(struct broker *b, const struct agency *conn,
    const void *frame, size_t len, unsigned char **out, size_t *outlen);
/*
 * The same in two steps, so that the costly, stateless first one can run
 * in worker threads: broker_rate_take (the connection's token bucket; in
 * the serving thread, before anything is decoded), then broker_precheck
 * (hash, decode, find the signer's certificate, check the signature, decode
 * the body: it only reads the registry, so it is safe in any thread while
 * the registry is not reloaded), then broker_process_checked in the serving
 * thread, in arrival order. pc NULL: over the rate. It frees what pc holds;
 * precheck_free frees a precheck that is not processed.
 */
struct precheck {
	Ehx__Envelope *env;
	Ehx__Body *body;
	const struct agency *agency;
	const struct ehx_cert *cert;
	int code;
	char why[128];
	unsigned char hash[32];
};
bool broker_rate_take(struct broker *b, const struct agency *conn);
void broker_precheck(const struct broker *b, const void *frame, size_t len,
    struct precheck *pc);
void precheck_free(struct precheck *pc);
int broker_process_checked(struct broker *b, const struct agency *conn,
    const void *frame, size_t len, struct precheck *pc, unsigned char **out,
    size_t *outlen);

/*
 * Group commit. broker_batch_begin opens one write transaction; each
 * broker_process until broker_batch_commit stores its effects in a child of
 * it. The caller must hold every reply until broker_batch_commit returns 0:
 * a reply says its request is stored. On failure nothing of the batch was
 * stored (its notifications are dropped, a checkpoint signed in it is
 * forgotten). After EHX_ERR_STORAGE_FULL, decide each request again alone
 * (main.c); after any other failure, answer each with broker_refuse(...,
 * EHX_ERR_INTERNAL).
 */
int broker_batch_begin(struct broker *b);
int broker_batch_commit(struct broker *b);
/* Abort the open batch, as a failed commit leaves it: nothing of it stored,
 * its notifications dropped, the checkpoint in force the last committed. */
void broker_batch_abandon(struct broker *b);
/* A signed error reply to message id (NULL: none known) on conn. */
int broker_refuse(struct broker *b, const struct agency *conn,
    const unsigned char *id, int code, unsigned char **out, size_t *outlen);
/* Handlers: validate what is left, act within rq->txn, set rq->reply. They
 * return 0 or an EHX_ERR_* with a sentence in why. */
int handle_publish_flag(struct request *rq, char *why, size_t whysz);
int handle_close_flag(struct request *rq, char *why, size_t whysz);
int handle_record_consent(struct request *rq, char *why, size_t whysz);
int handle_withdraw_consent(struct request *rq, char *why, size_t whysz);
int handle_query_consent(struct request *rq, char *why, size_t whysz);
int handle_query_picture(struct request *rq, char *why, size_t whysz);
int handle_query_early_help_list(struct request *rq, char *why,
    size_t whysz);
int handle_query_audit(struct request *rq, char *why, size_t whysz);
int handle_query_alerts(struct request *rq, char *why, size_t whysz);
int handle_review_alert(struct request *rq, char *why, size_t whysz);
int handle_query_disclosures(struct request *rq, char *why, size_t whysz);
int handle_export_audit(struct request *rq, char *why, size_t whysz);
int handle_query_proof(struct request *rq, char *why, size_t whysz);
int handle_cosign_checkpoint(struct request *rq, char *why, size_t whysz);
int handle_query_sar(struct request *rq, char *why, size_t whysz);

/*
 * After rq's audit record was appended as seq (in txn): index what the
 * decision disclosed and raise a break-glass alert. 0 or a storage error.
 */
int audit_side_records(struct request *rq, MDB_txn *txn, uint64_t seq);

/*
 * Sign a checkpoint of the audit log in txn when one is due: every
 * checkpoint_records records, or when `timed` and the log grew since the
 * last. *made is set when one was stored; the caller commits, then calls
 * checkpoint_adopt. 0 or an error.
 */
int checkpoint_maybe(struct broker *b, MDB_txn *txn, bool timed, bool *made);

/* After the commit: make the newest stored checkpoint the one replies carry. */
int checkpoint_adopt(struct broker *b);
/* The same, read in txn (a write transaction still open: a group commit). */
int checkpoint_adopt_in(struct broker *b, MDB_txn *txn);

/* The timer: sign a checkpoint when checkpoint_seconds have passed. */
void checkpoint_tick(struct broker *b);

/* Answer rq with an Ack naming id (which must outlive the request) and
 * rq->basis. Returns 0 or EHX_ERR_NOMEM. */
int request_ack(struct request *rq, const char *id);

/*
 * Call fn for each consent record of rq's child, as it stands now (its
 * withdrawal merged in), until fn returns nonzero (>0 stops quietly). The
 * record is freed after fn returns.
 */
int consent_each(struct request *rq, int (*fn)(struct request *,
    const Ehx__ConsentRecord *, void *), void *arg);

/* Whether agency a may see c: it recorded it or c's scope names it. */
bool consent_concerns(const Ehx__ConsentRecord *c, const struct agency *a);

/* c's state changes up to now (recorded, withdrawn, expired) into ev
 * (at most 3), allocated in arena a; returns how many, or -1 (no memory). */
int consent_events(const Ehx__ConsentRecord *c, int64_t now,
    struct ehx_arena *a, Ehx__ConsentEvent **ev);

/* The child's consent records (all of them, or those concerning rq's
 * agency), with their history when asked, bounded to one answer. */
int consent_list(struct request *rq, bool history, bool all, size_t budget,
    Ehx__ConsentResult **out);

/* The active consent of rq's child that covers rq's agency for purpose, if
 * any: 0 and its id in id_out, or EHX_ERR_NO_CONSENT. */
int consent_find_active(struct request *rq, int purpose, char *id_out,
    size_t idsz);
/* The same for another agency (a notification's recipient). */
int consent_find_active_for(struct request *rq, const struct agency *who,
    int purpose, char *id_out, size_t idsz);

/* ---- notify.c: notifications ------------------------------------------- */

/*
 * In handle_publish_flag, within rq->txn: decide whether the change from
 * old (NULL: none) to now is news (new, reopened, level changed) and whom
 * to tell; fills rq->notify. 0 or an EHX_ERR_*.
 */
int notify_plan(struct request *rq, const Ehx__FlagView *old,
    const Ehx__FlagView *now);
/* After the publish's audit record, in txn: queue, audit and index each
 * planned notification; the signed envelopes go to b->push. */
int notify_emit(struct request *rq, MDB_txn *txn);
/* Forget (free) pushes queued after mark: their transaction failed. */
void notify_push_drop(struct broker *b, size_t mark);
/* The last notification number given to agency (0: none yet). */
int notify_last(struct store *s, MDB_txn *txn, const char *agency,
    uint64_t *last);
int handle_fetch_notifications(struct request *rq, char *why, size_t whysz);

/* ---- audit_tool.c: the operator's view of the audit log ----------------- */

/* Print the last `tail` audit records (0: all) after checking the whole
 * log against its Merkle tree and checkpoints (signatures too, when the
 * broker's certificate is given). 0, or EHX_ERR_STORAGE on any fault. */
int audit_tool(struct store *s, unsigned long tail, bool json,
    const struct ehx_cert *broker);

/* ---- purge.c: retention ------------------------------------------------ */

struct purge_counts {
	uint64_t flags, consents, envelopes;
};

/*
 * Remove the content of closed flags, ended consents and kept evidence
 * older than the configured retention (0 days: keep), as of now, and
 * append one audit record saying how much. The audit log is untouched.
 */
int broker_purge(struct broker *b, int64_t now, struct purge_counts *c);

/* ---- zap.c ---------------------------------------------------------------- */

/* Answer one pending ZAP request on the broker's ZAP socket. */
void zap_handle(struct broker *b);

#endif
