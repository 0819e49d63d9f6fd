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
	long long skew_ms;
	long long map_size;
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

/* The audit log's head: the newest record's seq and SHA-256 (0 and zeros
 * when empty, with EHX_ERR_NOT_FOUND). 0, NOT_FOUND or a storage error. */
int store_audit_head(struct store *s, MDB_txn *txn, uint64_t *seq,
    unsigned char hash[32]);

/* Append rec (seq and prev_hash are filled in) to the audit log. */
int store_audit_append(struct store *s, MDB_txn *txn, Ehx__AuditRecord *rec);

/* Key helpers for the child-prefixed databases. */
#define STORE_KEY_MAX (EHX_PSEUDONYM_LEN + EHX_MAX_ID + 1 + EHX_MAX_REF + 1)
size_t store_flag_key(unsigned char *out, const unsigned char *child,
    const char *agency, const char *ref);
size_t store_consent_key(unsigned char *out, const unsigned char *child,
    const char *consent_id);

/* Serialize msg into the arena and put it under key. */
int store_put_msg(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t klen,
    const ProtobufCMessage *msg, struct ehx_arena *a);

/* ---- the broker -------------------------------------------------------- */

struct broker {
	struct broker_config cfg;
	struct registry reg;
	struct ehx_ca *ca;
	struct ehx_signer *signer;
	struct ehx_pseudokey *pkey;
	struct store store;
	struct ehx_arena *arena;
	unsigned char curve_secret[EHX_KEY_LEN];  /* wiped once set on the socket */
	void *zctx, *router, *zap;
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

/* Handlers: validate what is left, act within rq->txn, set rq->reply. They
 * return 0 or an EHX_ERR_* with a sentence in why. */
int handle_publish_flag(struct request *rq, char *why, size_t whysz);
int handle_close_flag(struct request *rq, char *why, size_t whysz);
int handle_record_consent(struct request *rq, char *why, size_t whysz);
int handle_withdraw_consent(struct request *rq, char *why, size_t whysz);
int handle_query_consent(struct request *rq, char *why, size_t whysz);
int handle_query_picture(struct request *rq, char *why, size_t whysz);

/* Answer rq with an Ack naming id (which must outlive the request) and
 * rq->basis. Returns 0 or EHX_ERR_NOMEM. */
int request_ack(struct request *rq, const char *id);

/* The active consent of rq's child that covers rq's agency for purpose, if
 * any: 0 and its id in id_out, or EHX_ERR_NO_CONSENT. */
int consent_find_active(struct request *rq, int purpose, char *id_out,
    size_t idsz);

/* ---- audit_tool.c: the operator's view of the audit log ----------------- */

/* Print the last `tail` audit records (0: all) and check the hash chain
 * from the first record. Returns 0, or EHX_ERR_STORAGE if the chain breaks. */
int audit_tool(struct store *s, unsigned long tail, bool json);

/* ---- zap.c ---------------------------------------------------------------- */

/* Answer one pending ZAP request on the broker's ZAP socket. */
void zap_handle(struct broker *b);

#endif
