/*
 * request.h — one request as the pipeline (pipeline.c) hands it to its
 * handler, and the helpers handlers share to answer it (request.c). The
 * pipeline and the handlers both include this; handlers never include
 * pipeline.h, so calls run one way: the pipeline calls handlers, handlers
 * call these.
 */
#ifndef EHX_BROKER_REQUEST_H
#define EHX_BROKER_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lmdb.h>

#include "broker.h"
#include "ehx.pb-c.h"
#include "ehx/limits.h"

struct notify_plan;

/* One request as it goes through the pipeline (pipeline.c), as its
 * handler sees it. */
struct request {
	struct broker *b;
	const struct agency *conn;      /* bound to the CURVE key */
	const struct agency *agency;    /* the verified signer */
	Ehx__Body *body;                /* the verified body */
	int64_t now;
	MDB_txn *txn;                   /* the child transaction for effects */
	unsigned char child[EHX_PSEUDONYM_LEN];
	bool has_child;
	bool child_from_identity;       /* named by a ChildIdentity */
	bool child_known;               /* by the agency's own record */
	char basis[64];                 /* recorded in the audit record */
	char consent_id[32];            /* the consent a decision rested on */
	bool break_glass;               /* answered by break-glass */
	/* An alert for IG review the answer raises (audit.c): its kind
	 * ("break_glass", "self_consent") and reason; NULL: none. */
	const char *alert_kind;
	const char *alert_reason;
	bool unaudited;                 /* proofs and cosignatures: no record */
	bool ephemeral;                 /* fetches: no replay entry either */
	uint64_t audit_seq;             /* the decision's record, once written */
	struct notify_plan *notify;     /* planned by a publish (notify.c) */
	size_t nnotify;
	int notify_event;               /* NotifyEvent */
	/* The notifications emitted, for the publish's audit record. */
	Ehx__Notified **notified;
	size_t nnotified;
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
 * The child an identity names (identity.c), found or made in rq's
 * transaction, into rq->child; node gets the sender's record of it. With
 * node NULL (a close) only the agency's own record is looked up: nothing
 * is made or matched, and EHX_ERR_NOT_FOUND when it has none. 0,
 * EHX_ERR_INVALID_IDENTITY (with a sentence: no matching key, or an NHS
 * number changed on a record), or a storage error.
 */
int request_child(struct request *rq, const Ehx__ChildIdentity *id,
    unsigned char node[EHX_PSEUDONYM_LEN], char *why, size_t whysz);

/* Answer rq with an Ack naming id (which must outlive the request) and
 * rq->basis. Returns 0 or EHX_ERR_NOMEM. */
int request_ack(struct request *rq, const char *id);

#endif
