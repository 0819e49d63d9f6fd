/*
 * pipeline.c — the request pipeline. Every Envelope an agency sends goes
 * through these steps in this order (PROTOCOL.md §7.1), each a function
 * with one job; the first that does not go on decides:
 *
 *  2a within the agency's request rate      RATE_LIMITED,   broker_rate_take
 *                                            unaudited       over_rate
 *  broker_precheck (steps 1-5; any thread, it only reads the registry):
 *   1 size limit, before any decoding       TOO_LARGE    ehx_envelope_decode
 *   2 decode the Envelope                   MALFORMED, BAD_VERSION
 *   3 signer certificate registered         UNKNOWN_CERTIFICATE
 *   4 signature over context ‖ body bytes   BAD_SIGNATURE  ehx_envelope_verify
 *   5 decode the signed Body                MALFORMED      ehx_body_decode
 *  broker_process_checked (stages[], in the serving thread, in order):
 *   6 certificate not revoked               REVOKED_CERTIFICATE  check_revoked
 *     and within its dates    CERTIFICATE_NOT_YET_VALID, _EXPIRED  check_dates
 *   7 signer is the connection's agency     WRONG_SENDER     check_sender
 *   8 recipient is this broker              WRONG_RECIPIENT  check_recipient
 *     no storage failure so far             INTERNAL         check_store
 *     a sequence, if any, well formed       MALFORMED        check_sequence
 *   9 (the request's transaction opens)                      open_effects
 *     a sequenced request past the number   OUT_OF_ORDER,    check_order
 *     due                                   unaudited
 *     the very same envelope seen before?   its first reply  check_seen
 *     a sequenced request whose number was  an ack marked    check_applied
 *     applied: under its own id, else       duplicate; OUT_OF_ORDER
 *  10 send time within the skew window      STALE            check_time
 *  11 message id not seen in the window     REPLAY           check_replay
 *  12 a request payload, a valid person, a role allowed the  decide
 *     action, valid fields; then the payload's handler
 *                            MALFORMED, INVALID_FIELD, NOT_PERMITTED,
 *                            INVALID_NHS_NUMBER, NO_CONSENT …
 *     the decision, allowed or not, stored with its reply    keep
 *
 * A refusal at steps 1-11 is audited on its own (refuse); nothing is
 * stored under its message id, so sending it again is checked afresh.
 * The dispatch table (actions[]) names each payload's handler (handle.h);
 * handlers answer with request.h's helpers and never call back in here.
 *
 * Certificates were chained to the CA when the registry was loaded; their
 * dates are checked here because time moves. From step 9 on, the decision
 * is stored with the reply under the message id, in the same LMDB
 * transaction as the effect and the audit record: a retry can never cause
 * a second effect, and a crash before the commit leaves no trace but the
 * retry. Every decision, allowed or denied, appends an audit record.
 *
 * Sequenced requests also advance their stream's number in that same
 * transaction, so a request re-signed after a long wait (a new send time,
 * the same number) is still recognised after its replay entry has gone:
 * an outbox is applied in order and exactly once, however late it drains.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "ehx/err.h"
#include "ehx/log.h"
#include "ehx/names.h"
#include "ehx/nhs.h"
#include "ehx/util.h"
#include "ehx/validate.h"
#include "ehx/wire.h"
#include "handle.h"
#include "notify.h"
#include "pipeline.h"
#include "registry.h"
#include "request.h"
#include "store.h"

/* What handles each request; who may ask is ehx_payload_roles(). */
static const struct {
	int payload;
	int (*handle)(struct request *, char *, size_t);
} actions[] = {
	{ EHX__BODY__PAYLOAD_PUBLISH_FLAG, handle_publish_flag },
	{ EHX__BODY__PAYLOAD_CLOSE_FLAG, handle_close_flag },
	{ EHX__BODY__PAYLOAD_RECORD_CONSENT, handle_record_consent },
	{ EHX__BODY__PAYLOAD_WITHDRAW_CONSENT, handle_withdraw_consent },
	{ EHX__BODY__PAYLOAD_QUERY_PICTURE, handle_query_picture },
	{ EHX__BODY__PAYLOAD_QUERY_EARLY_HELP_LIST,
	    handle_query_early_help_list },
	{ EHX__BODY__PAYLOAD_QUERY_CONSENT, handle_query_consent },
	{ EHX__BODY__PAYLOAD_QUERY_AUDIT, handle_query_audit },
	{ EHX__BODY__PAYLOAD_QUERY_ALERTS, handle_query_alerts },
	{ EHX__BODY__PAYLOAD_REVIEW_ALERT, handle_review_alert },
	{ EHX__BODY__PAYLOAD_QUERY_DISCLOSURES, handle_query_disclosures },
	{ EHX__BODY__PAYLOAD_QUERY_SAR, handle_query_sar },
	{ EHX__BODY__PAYLOAD_EXPORT_AUDIT, handle_export_audit },
	{ EHX__BODY__PAYLOAD_QUERY_PROOF, handle_query_proof },
	{ EHX__BODY__PAYLOAD_COSIGN_CHECKPOINT, handle_cosign_checkpoint },
	{ EHX__BODY__PAYLOAD_FETCH_NOTIFICATIONS, handle_fetch_notifications },
	{ EHX__BODY__PAYLOAD_RECORD_INVOLVEMENT, handle_record_involvement },
};

/* A request that changes flags or consent (not only the audit). */
static bool
is_change(int c)
{
	return c == EHX__BODY__PAYLOAD_PUBLISH_FLAG ||
	    c == EHX__BODY__PAYLOAD_CLOSE_FLAG ||
	    c == EHX__BODY__PAYLOAD_RECORD_CONSENT ||
	    c == EHX__BODY__PAYLOAD_WITHDRAW_CONSENT ||
	    c == EHX__BODY__PAYLOAD_RECORD_INVOLVEMENT;
}

/* ---- outbox streams ------------------------------------------------------ */

#define STREAM_KEY_MAX (EHX_MAX_ID + 1 + EHX_STREAM_LEN)

static size_t
stream_key(unsigned char *k, const char *agency, const Ehx__Sequence *sq)
{
	size_t n = strlen(agency);

	memcpy(k, agency, n);
	k[n] = 0;
	memcpy(k + n + 1, sq->stream.data, EHX_STREAM_LEN);
	return n + 1 + EHX_STREAM_LEN;
}

/*
 * A stream's record: the last number applied, then the message ids of the
 * last STREAM_RING numbers applied (number % STREAM_RING). An agent has at
 * most 32 requests in flight, so a number applied before that it sends
 * again is within the ring; one that is not, or that comes with another
 * message id, is not a retry but another request under a used number.
 */
#define STREAM_RING 64
#define STREAM_VAL (8 + STREAM_RING * EHX_MSGID_LEN)

/* The last number of the stream applied (0: none yet), and its ring. */
static int
stream_applied(struct broker *b, MDB_txn *txn, const char *agency,
    const Ehx__Sequence *sq, uint64_t *applied, unsigned char *ring)
{
	unsigned char k[STREAM_KEY_MAX];
	MDB_val key = { stream_key(k, agency, sq), k }, val;
	int rc;

	*applied = 0;
	memset(ring, 0, STREAM_RING * EHX_MSGID_LEN);
	if ((rc = mdb_get(txn, b->store.streams, &key, &val)) == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return store_err(rc);
	if (val.mv_size != STREAM_VAL)
		return EHX_ERR_STORAGE;
	*applied = get_be64(val.mv_data);
	memcpy(ring, (unsigned char *)val.mv_data + 8,
	    STREAM_RING * EHX_MSGID_LEN);
	return 0;
}

/* Whether number (applied before) was applied under message id. */
static bool
stream_had(const unsigned char *ring, uint64_t applied, uint64_t number,
    const unsigned char *id)
{
	return applied - number < STREAM_RING && memcmp(ring +
	    (number % STREAM_RING) * EHX_MSGID_LEN, id, EHX_MSGID_LEN) == 0;
}

static int
stream_advance(struct broker *b, MDB_txn *txn, const char *agency,
    const Ehx__Sequence *sq, const unsigned char *ring,
    const unsigned char *id)
{
	unsigned char k[STREAM_KEY_MAX];
	MDB_val key = { stream_key(k, agency, sq), k },
	    val = { STREAM_VAL, NULL };
	unsigned char *v;
	int rc;

	if ((rc = mdb_put(txn, b->store.streams, &key, &val,
	    MDB_RESERVE)) != 0)
		return store_err(rc);
	v = val.mv_data;
	put_be64(v, sq->number);
	memcpy(v + 8, ring, STREAM_RING * EHX_MSGID_LEN);
	memcpy(v + 8 + (sq->number % STREAM_RING) * EHX_MSGID_LEN, id,
	    EHX_MSGID_LEN);
	return 0;
}

/*
 * Take one request from agency a's token bucket (rate_per_second refill,
 * rate_burst deep). False when it is empty.
 */
static bool
rate_take(struct broker *b, struct agency *a, int64_t now)
{
	double burst = (double)b->cfg.rate_burst;

	if (b->cfg.rate_per_second <= 0 || b->cfg.rate_burst <= 0)
		return true;            /* no limit set (in-process tests) */
	if (a->refilled == 0 || now < a->refilled)
		a->tokens = burst;
	else
		a->tokens += (double)(now - a->refilled) *
		    (double)b->cfg.rate_per_second / 1000.0;
	if (a->tokens > burst)
		a->tokens = burst;
	a->refilled = now;
	if (a->tokens < 1.0)
		return false;
	a->tokens -= 1.0;
	return true;
}

/*
 * The message id of a Body we refuse before (or instead of) accepting it,
 * read only so that the refusal names the request it answers; NULL if
 * there is none. *peek owns the memory.
 */
static const unsigned char *
peek_id(const Ehx__Envelope *env, Ehx__Body **peek)
{
	*peek = ehx__body__unpack(NULL, env->body.len, env->body.data);
	if (*peek == NULL || (*peek)->message_id.len != EHX_MSGID_LEN)
		return NULL;
	return (*peek)->message_id.data;
}

/* Sign a reply carrying rq->reply's payload, or an Error for code. */
static int
seal_reply(struct request *rq, const unsigned char *in_reply_to, int code,
    const char *why, unsigned char **out, size_t *outlen)
{
	struct broker *b = rq->b;
	Ehx__Error err = EHX__ERROR__INIT;
	unsigned char id[EHX_MSGID_LEN];
	Ehx__Body *r = &rq->reply;
	int rc;

	if ((rc = ehx_message_id(id)) != 0)
		return rc;
	r->message_id.data = id;
	r->message_id.len = sizeof(id);
	r->sender = b->cfg.id;
	r->recipient = (char *)rq->conn->id;
	r->sent_at = ehx_now_ms();
	r->person = NULL;
	r->checkpoint = FAULT("no_checkpoints") ? NULL : b->cp;
	r->audit_seq = FAULT("unnamed_decisions") ? 0 : rq->audit_seq;
	if (in_reply_to != NULL) {
		r->in_reply_to.data = (uint8_t *)in_reply_to;
		r->in_reply_to.len = EHX_MSGID_LEN;
	}
	if (code != 0) {
		err.code = (Ehx__ErrorCode)ehx_err_to_wire(code);
		err.expected = rq->expected;
		err.message = (char *)(why != NULL && why[0] != '\0' ? why :
		    ehx_strerror(code));
		r->payload_case = EHX__BODY__PAYLOAD_ERROR;
		r->error = &err;
	}
	return ehx_envelope_seal(b->signer, r, out, outlen);
}

/*
 * The audit record of rq's decision. The person is kept as checked, or,
 * refused before or for it, bounded and escaped (ehx_audit_person): one
 * request must not be able to make a record no answer can carry.
 */
static void
audit_fill(struct request *rq, Ehx__AuditRecord *rec,
    struct ehx_audit_person *person, const char *action, int code)
{
	const Ehx__Body *body = rq->body;

	rec->time = rq->now;
	rec->agency = (char *)rq->conn->id;
	if (body != NULL && body->person != NULL)
		rec->person = (Ehx__Person *)ehx_audit_person(body->person,
		    person);
	rec->action = (char *)action;
	if (rq->has_child) {
		rec->child.data = rq->child;
		rec->child.len = EHX_PSEUDONYM_LEN;
	}
	rec->decision = code == 0 ? EHX__DECISION__DECISION_ALLOW :
	    EHX__DECISION__DECISION_DENY;
	rec->error = (Ehx__ErrorCode)(code == 0 ? 0 : ehx_err_to_wire(code));
	rec->basis = rq->basis;
	if (body != NULL) {
		rec->message_id = body->message_id;
		if (body->person != NULL)
			rec->role = body->person->role;
	}
	rec->envelope_hash.data = rq->envelope_hash;
	rec->envelope_hash.len = sizeof(rq->envelope_hash);
	rec->break_glass = code == 0 && rq->break_glass;
	if (code == 0 && rq->consent_id[0] != '\0')
		rec->consent_id = rq->consent_id;
}

/*
 * After a storage error (EHX_ERR_STORAGE: LMDB failed, or a stored value
 * did not read back), the store may be damaged: refuse all further work
 * (STYLE.md: LMDB's sticky MDB_PANIC) rather than limp on. Only that: a
 * full map is refused request by request, and running out of memory
 * (EHX_ERR_NOMEM) refuses only the request that did. The operator checks
 * the store and restarts the broker once the cause is fixed.
 */
static void
note_storage_failure(struct broker *b, int code)
{
	if (code == EHX_ERR_STORAGE && !b->store.failed) {
		b->store.failed = true;
		log_error("the store may be damaged (LMDB failed, or a stored "
		    "value did not read back): refusing all further requests "
		    "until the broker is restarted; check the store with "
		    "ehx-broker audit first (docs/OPERATIONS.md)");
	}
}

/* Sign a checkpoint in txn when one is due, commit, and adopt it. */
static int
commit_with_checkpoint(struct broker *b, MDB_txn *txn)
{
	bool made = false;
	int rc;

	if ((rc = checkpoint_maybe(b, txn, false, &made)) != 0) {
		mdb_txn_abort(txn);
		return rc;
	}
	if ((rc = store_err(mdb_txn_commit(txn))) != 0)
		return rc;
	/* In a group commit, txn was a child of the batch: the checkpoint is
	 * read back from the batch, and replies carrying it wait, like every
	 * reply, for the batch to commit. */
	if (made && (rc = checkpoint_adopt_in(b, b->batch)) != 0)
		log_error("the new checkpoint could not be read back: %s",
		    ehx_strerror(rc));
	return 0;
}

/* A refusal before the message id is known to be fresh: audit only. */
static int
audit_only(struct request *rq, const char *action, int code,
    const void *evidence, size_t evlen)
{
	Ehx__AuditRecord rec = EHX__AUDIT_RECORD__INIT;
	struct ehx_audit_person person;
	MDB_txn *txn = NULL;
	int rc;

	if (rq->b->store.failed)
		return EHX_ERR_STORAGE;
	audit_fill(rq, &rec, &person, action, code);
	if ((rc = mdb_txn_begin(rq->b->store.env, rq->b->batch, 0, &txn)) != 0)
		return store_err(rc);
	if ((rc = store_audit_append(&rq->b->store, txn, &rec)) != 0 ||
	    (evidence != NULL && (rc = store_evidence_put(&rq->b->store, txn,
	    rq->b->pkey, rec.seq, rq->envelope_hash, evidence, evlen)) != 0)) {
		mdb_txn_abort(txn);
		return rc;
	}
	/* The reply names the record only when the record names the
	 * request: a body refused before it was verified is not in it. */
	if ((rc = commit_with_checkpoint(rq->b, txn)) == 0 && rq->body != NULL)
		rq->audit_seq = rec.seq;
	return rc;
}

/* Remember whom the reply answers, and count what this request may have
 * added to a group commit still open. */
static void
note_answered(struct broker *b, const unsigned char *id, size_t len,
    size_t replylen, size_t pushes)
{
	b->last_has_id = id != NULL;
	if (id != NULL)
		memcpy(b->last_id, id, EHX_MSGID_LEN);
	/* Twice over: the frame kept as evidence, the reply kept for a
	 * retry (a page of exported audit is most of 64 KiB), each
	 * notification (sealed: about a frame), and the pages its
	 * random-key writes dirty (the flag's and the child index's leaves
	 * and branches). A guess that errs high; a batch that still finds
	 * the map full is decided again request by request (main.c). */
	if (b->batch != NULL)
		b->batch_bytes += 2 * (len + replylen + pushes * 2048) +
		    4 * 4096;
}

typedef int (*handler_fn)(struct request *, char *, size_t);

/*
 * Step 12's checks, before the handler: a request payload, a valid
 * person, a role allowed the action, the payload's fields, and room for
 * a change. The child is named (pseudonym) as soon as the request names
 * a valid NHS number, so that a refusal's audit record names it too.
 */
static int
admit(struct request *rq, handler_fn *handle, char *why, size_t whysz)
{
	const Ehx__Body *body = rq->body;
	const char *nhs;
	size_t i;
	int r;

	if (!ehx_payload_is_request(body->payload_case)) {
		snprintf(why, whysz, "the body does not carry a request");
		return EHX_ERR_MALFORMED;
	}
	if ((r = ehx_validate_person(body->person, why, whysz)) != 0)
		return r;
	for (i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
		if (actions[i].payload == (int)body->payload_case)
			break;
	if (i == sizeof(actions) / sizeof(actions[0]))
		return EHX_ERR_MALFORMED;
	*handle = actions[i].handle;
	rq->unaudited = body->payload_case == EHX__BODY__PAYLOAD_QUERY_PROOF ||
	    body->payload_case == EHX__BODY__PAYLOAD_COSIGN_CHECKPOINT ||
	    body->payload_case == EHX__BODY__PAYLOAD_FETCH_NOTIFICATIONS;
	if ((nhs = ehx_request_nhs(body)) != NULL && ehx_nhs_valid(nhs)) {
		if ((r = ehx_pseudonym(rq->b->pkey, nhs, rq->child)) != 0)
			return EHX_ERR_INTERNAL;
		rq->has_child = true;
	}
	if ((ehx_payload_roles(body->payload_case) &
	    (1u << body->person->role)) == 0) {
		snprintf(why, whysz, "the role %s may not %s",
		    ehx_role_name(body->person->role),
		    ehx_payload_name(body->payload_case));
		return EHX_ERR_NOT_PERMITTED;
	}
	if ((r = ehx_validate_request(body, rq->now, why, whysz)) != 0)
		return r;
	if (is_change(body->payload_case) && store_nearly_full(&rq->b->store,
	    rq->b->batch_bytes)) {
		snprintf(why, whysz, "the broker's store is nearly full: changes "
		    "are refused to keep room for the audit records of reads; "
		    "its operator must raise map_size_mb");
		return EHX_ERR_STORAGE_FULL;
	}
	return 0;
}

/* Run the handler in a child transaction of parent: its effects stay
 * only when it allows the request. */
static int
act(struct request *rq, MDB_txn *parent, handler_fn handle, char *why,
    size_t whysz)
{
	int r, rc;

	if ((rc = mdb_txn_begin(rq->b->store.env, parent, 0, &rq->txn)) != 0)
		return store_err(rc);
	snprintf(rq->basis, sizeof(rq->basis), "role:%s",
	    ehx_role_name(rq->body->person->role));
	if ((r = handle(rq, why, whysz)) != 0) {
		mdb_txn_abort(rq->txn);
		rq->txn = NULL;
		/* a refused request names no child its identity was matched
		 * to: only the agency's own record's (§10.7) */
		if (rq->child_from_identity && !rq->child_known)
			rq->has_child = false;
		return r;
	}
	rc = mdb_txn_commit(rq->txn);
	rq->txn = NULL;
	return store_err(rc);
}

bool
broker_rate_take(struct broker *b, const struct agency *conn)
{
	return rate_take(b, (struct agency *)conn, ehx_now_ms());
}

void
broker_precheck(const struct broker *b, const void *frame, size_t len,
    struct precheck *pc)
{
	memset(pc, 0, sizeof(*pc));
	ehx_sha256(frame, len, pc->hash);
	if ((pc->code = ehx_envelope_decode(frame, len, &pc->env)) != 0)
		return;
	if ((pc->agency = registry_by_fpr(&b->reg, pc->env->signer.data,
	    &pc->cert)) == NULL)
		pc->code = EHX_ERR_UNKNOWN_CERTIFICATE;
	else
		pc->code = ehx_envelope_verify(pc->env,
		    ehx_cert_pubkey(pc->cert));
	if (pc->code == 0)
		pc->code = ehx_body_decode(pc->env->body.data,
		    pc->env->body.len, &pc->body, pc->why, sizeof(pc->why));
}

void
precheck_free(struct precheck *pc)
{
	ehx_body_free(pc->body);
	ehx_envelope_free(pc->env);
	pc->body = NULL;
	pc->env = NULL;
}

int
broker_process(struct broker *b, const struct agency *conn, const void *frame,
    size_t len, unsigned char **out, size_t *outlen)
{
	struct precheck pc;
	bool within = broker_rate_take(b, conn);

	if (within)
		broker_precheck(b, frame, len, &pc);
	return broker_process_checked(b, conn, frame, len, within ? &pc : NULL,
	    out, outlen);
}

/* ---- the stages -------------------------------------------------------- */

/*
 * One request on its way through the pipeline: what its handler sees
 * (rq) and what only the pipeline keeps. The stages below read and fill
 * it in order; pass_end frees it.
 */
struct pass {
	struct request rq;
	const void *frame;
	size_t len;
	Ehx__Envelope *env;             /* ours to free */
	Ehx__Body *body;                /* ours to free; rq.body if verified */
	Ehx__Body *peek;                /* a refused body, read for its id */
	const struct ehx_cert *cert;    /* the signer's */
	const unsigned char *reply_to;  /* the request's message id, or NULL */
	const char *action;             /* its payload's name, or "envelope" */
	bool evidence;                  /* keep the frame as evidence */
	bool sequenced;                 /* the next number of its stream */
	uint64_t applied;               /* its stream's last number applied */
	unsigned char ring[STREAM_RING * EHX_MSGID_LEN];
	MDB_txn *txn;                   /* a child of the batch, from step 9 */
	int lookup;                     /* replay store: 0 seen, or NOT_FOUND */
	int decision;                   /* step 12's: 0 allowed, or why not */
	unsigned char *sealed;          /* an export's reply, kept sealed */
	size_t sealedlen;
	size_t push_mark;               /* notifications queued before it */
	uint64_t reads;                 /* store_reads() before it */
	unsigned char **out;            /* the signed reply */
	size_t *outlen;
	char why[256];                  /* a refusal's sentence */
	char hexid[2 * EHX_MSGID_LEN + 1];
};

/*
 * What a stage returns: 0 to go on to the next; a negative EHX_ERR_* to
 * refuse (audited on its own, nothing stored under the message id); or
 * that it has stopped the request itself, with a reply made (ANSWERED) or
 * none possible (UNANSWERED).
 */
#define ANSWERED 1
#define UNANSWERED 2

static void
pass_begin(struct pass *p, struct broker *b, const struct agency *conn,
    const void *frame, size_t len, unsigned char **out, size_t *outlen)
{
	*out = NULL;
	*outlen = 0;
	memset(p, 0, sizeof(*p));
	ehx__body__init(&p->rq.reply);
	p->rq.b = b;
	p->rq.conn = conn;
	p->rq.now = ehx_now_ms();
	p->frame = frame;
	p->len = len;
	p->action = "envelope";
	p->push_mark = b->npush;
	p->reads = store_reads();
	p->out = out;
	p->outlen = outlen;
	ehx_arena_reset(b->arena);
}

/* The message id as hex, for the log. */
static const char *
hexid(struct pass *p)
{
	return ehx_hex(p->hexid, p->reply_to, EHX_MSGID_LEN);
}

/* Abort the request's transaction, if one is open. */
static void
end_effects(struct pass *p)
{
	if (p->txn != NULL)
		mdb_txn_abort(p->txn);
	p->txn = NULL;
}

/* Sign p's reply: its payload (code 0) or an Error for code. */
static int
answer(struct pass *p, int code, const char *why)
{
	if (seal_reply(&p->rq, p->reply_to, code, why, p->out,
	    p->outlen) != 0)
		return UNANSWERED;
	return ANSWERED;
}

/* An error reply, with nothing else of the request's payload. */
static int
answer_error(struct pass *p, int code, const char *why)
{
	ehx__body__init(&p->rq.reply);
	return answer(p, code, why);
}

/*
 * 2a: over its rate. Answered at once, before anything is decoded beyond
 * its message id, any signature checked or anything stored, and not
 * audited — a flood (of requests or of junk) costs the others next to
 * nothing.
 */
static int
over_rate(struct pass *p)
{
	const struct agency *conn = p->rq.conn;

	if (ehx_envelope_decode(p->frame, p->len, &p->env) == 0)
		p->reply_to = peek_id(p->env, &p->peek);
	snprintf(p->why, sizeof(p->why), "more than %lld requests a second "
	    "(burst %lld) from %s; send again shortly",
	    p->rq.b->cfg.rate_per_second, p->rq.b->cfg.rate_burst, conn->id);
	if (conn->refilled - conn->tokens_logged >= 10000) {
		((struct agency *)conn)->tokens_logged = conn->refilled;
		log_warn("%s is over its request rate: refusing rate_limited",
		    conn->id);
	}
	return answer(p, EHX_ERR_RATE_LIMITED, p->why);
}

/*
 * 1-5: what broker_precheck found (perhaps in another thread): the frame
 * decoded, its signer's certificate found, the signature checked, the
 * Body decoded. Ours to free now.
 */
static int
take_checked(struct pass *p, struct precheck *pc)
{
	memcpy(p->rq.envelope_hash, pc->hash, sizeof(p->rq.envelope_hash));
	p->env = pc->env;
	p->body = pc->body;
	pc->env = NULL;
	pc->body = NULL;
	p->rq.agency = pc->agency;
	p->cert = pc->cert;
	if (pc->code != 0) {
		snprintf(p->why, sizeof(p->why), "%s", pc->why);
		if (p->env != NULL)
			p->reply_to = peek_id(p->env, &p->peek);
		return pc->code;
	}
	p->rq.body = p->body;
	p->reply_to = p->body->message_id.data;
	/* Signed by the connection's own agency and well formed: worth
	 * keeping as evidence of who asked for what, when it is of a sane
	 * size. (The audit record names the connection's agency; another
	 * agency's envelope on it is refused below and not kept.) */
	p->evidence = p->len <= EHX_MAX_EVIDENCE && p->rq.agency == p->rq.conn;
	p->action = ehx_payload_name(p->body->payload_case);
	p->rq.ephemeral = p->body->payload_case ==
	    EHX__BODY__PAYLOAD_FETCH_NOTIFICATIONS;
	if (FAULT("ignore_checks") && p->body->payload_case ==
	    EHX__BODY__PAYLOAD_QUERY_PROOF)
		return UNANSWERED;      /* a test build's dishonesty */
	return 0;
}

/* 6: the signer's certificate is not on the CA's revocation list. */
static int
check_revoked(struct pass *p)
{
	if (p->rq.b->crl == NULL || !ehx_crl_revoked(p->rq.b->crl, p->cert))
		return 0;
	snprintf(p->why, sizeof(p->why), "the certificate that signed this "
	    "was revoked by the partnership CA");
	return EHX_ERR_REVOKED_CERTIFICATE;
}

/* 6: the certificate is within its dates now. */
static int
check_dates(struct pass *p)
{
	return ehx_cert_check_time(p->cert, p->rq.now);
}

/* 7: signed by the connection's agency, and the Body says so too. */
static int
check_sender(struct pass *p)
{
	const struct agency *conn = p->rq.conn;

	if (p->rq.agency == conn && strcmp(p->body->sender, conn->id) == 0)
		return 0;
	snprintf(p->why, sizeof(p->why), "signed by %s, sent by %s on the "
	    "connection of %s", p->rq.agency->id, p->body->sender, conn->id);
	return EHX_ERR_WRONG_SENDER;
}

/* 8: addressed to this broker. */
static int
check_recipient(struct pass *p)
{
	if (strcmp(p->body->recipient, p->rq.b->cfg.id) != 0)
		return EHX_ERR_WRONG_RECIPIENT;
	return 0;
}

/* From here on the decision is stored under the message id: not after a
 * storage failure (note_storage_failure). */
static int
check_store(struct pass *p)
{
	if (!p->rq.b->store.failed)
		return 0;
	snprintf(p->why, sizeof(p->why), "the broker has stopped serving "
	    "after a storage failure; its operator must check its store and "
	    "restart it");
	return EHX_ERR_INTERNAL;
}

/* A sequence, when there is one, is well formed (and a fetch has none). */
static int
check_sequence(struct pass *p)
{
	const Ehx__Sequence *sq = p->body->sequence;

	if (sq == NULL || (!p->rq.ephemeral && sq->stream.len ==
	    EHX_STREAM_LEN && sq->number != 0 && sq->number <= EHX_MAX_SEQ))
		return 0;
	snprintf(p->why, sizeof(p->why), "%s", p->rq.ephemeral ? "a fetch is "
	    "not sequenced" : "sequence: the stream must be 16 bytes and the "
	    "number 1..2^62");
	return EHX_ERR_MALFORMED;
}

/* 9 begins: the transaction (a child of the group commit's) that holds
 * the request's effects, its audit record and its reply, or nothing. */
static int
open_effects(struct pass *p)
{
	struct broker *b = p->rq.b;
	MDB_txn *txn;
	int rc;

	if ((rc = mdb_txn_begin(b->store.env, b->batch, 0, &txn)) != 0)
		return store_err(rc);
	p->txn = txn;
	return 0;
}

/*
 * 9: a sequenced request must not skip a number: an earlier one is
 * missing, had no effect and is not audited; the agent sends again from
 * the gap (OUT_OF_ORDER, naming the number due).
 */
static int
check_order(struct pass *p)
{
	const Ehx__Sequence *sq = p->body->sequence;
	int rc;

	if (sq == NULL)
		return 0;
	if ((rc = stream_applied(p->rq.b, p->txn, p->rq.conn->id, sq,
	    &p->applied, p->ring)) != 0) {
		end_effects(p);
		note_storage_failure(p->rq.b, rc);
		return rc;
	}
	if (sq->number > p->applied + 1) {
		end_effects(p);
		snprintf(p->why, sizeof(p->why), "number %llu of this outbox "
		    "stream is due, not %llu", (unsigned long long)p->applied +
		    1, (unsigned long long)sq->number);
		p->rq.expected = p->applied + 1;
		return answer_error(p, EHX_ERR_OUT_OF_ORDER, p->why);
	}
	p->sequenced = sq->number == p->applied + 1;
	return 0;
}

/* Its first reply, from the replay store, into *p->out (NULL if it
 * cannot be had). */
static void
first_reply(struct pass *p, const Ehx__ReplayEntry *seen)
{
	if (seen->sealed) {
		if (ehx_evidence_open(p->rq.b->pkey, seen->envelope_hash.data,
		    seen->reply.data, seen->reply.len, p->out, p->outlen) != 0)
			*p->out = NULL;
	} else if ((*p->out = malloc(seen->reply.len)) != NULL) {
		memcpy(*p->out, seen->reply.data, seen->reply.len);
		*p->outlen = seen->reply.len;
	}
}

/*
 * 9: the same envelope again, or the same outbox request signed afresh:
 * its first reply, and nothing else. That holds too for a request due
 * next in its stream (an agent that numbered what it held in a new
 * stream, its answers lost): the stream moves on past it, and it has no
 * second effect. The same envelope gets its stored reply even when its
 * send time has since left the window: it is a retry, not a new request.
 */
static int
check_seen(struct pass *p)
{
	struct broker *b = p->rq.b;
	const Ehx__Body *body = p->body;
	Ehx__ReplayEntry *seen = NULL;
	int rc;

	p->lookup = p->rq.ephemeral ? EHX_ERR_NOT_FOUND : store_replay_get(
	    &b->store, p->txn, p->rq.conn->id, body->message_id.data,
	    b->arena, &seen);
	if (p->lookup != 0 && p->lookup != EHX_ERR_NOT_FOUND) {
		end_effects(p);
		note_storage_failure(b, p->lookup);
		return p->lookup;
	}
	if (p->lookup != 0 || seen->envelope_hash.len != 32 ||
	    (memcmp(seen->envelope_hash.data, p->rq.envelope_hash, 32) != 0 &&
	    body->sequence == NULL))
		return 0;
	first_reply(p, seen);
	if (*p->out != NULL && p->sequenced) {
		if ((rc = stream_advance(b, p->txn, p->rq.conn->id,
		    body->sequence, p->ring, body->message_id.data)) == 0)
			rc = store_err(mdb_txn_commit(p->txn));
		else
			mdb_txn_abort(p->txn);
		p->txn = NULL;
		if (rc != 0) {
			free(*p->out);
			*p->out = NULL;
			note_storage_failure(b, rc);
			return rc;
		}
	}
	end_effects(p);
	if (*p->out == NULL)
		return EHX_ERR_INTERNAL;
	log_debug("msg %s: retry answered from the replay store", hexid(p));
	return ANSWERED;
}

/*
 * 9: a sequenced request whose number was applied before. Under its own
 * message id, its reply no longer kept: an ack marked duplicate. Under
 * another: the agent's outbox went back (restored from a backup, or
 * copied), and its stream is spent: OUT_OF_ORDER with expected 0 tells it
 * to number what it holds in a new one. Nothing is applied either way.
 */
static int
check_applied(struct pass *p)
{
	const Ehx__Sequence *sq = p->body->sequence;

	if (sq == NULL || p->sequenced)
		return 0;
	end_effects(p);
	if (!stream_had(p->ring, p->applied, sq->number,
	    p->body->message_id.data)) {
		log_warn("msg %s from %s: outbox number %llu of this stream "
		    "was applied to another request (its outbox was restored "
		    "or copied?): told to start a new stream", hexid(p),
		    p->rq.conn->id, (unsigned long long)sq->number);
		snprintf(p->why, sizeof(p->why), "number %llu of this outbox "
		    "stream was applied to another request; number what is "
		    "queued in a new stream", (unsigned long long)sq->number);
		p->rq.expected = 0;
		return answer_error(p, EHX_ERR_OUT_OF_ORDER, p->why);
	}
	ehx__body__init(&p->rq.reply);
	if (request_ack(&p->rq, "") != 0)
		return UNANSWERED;
	p->rq.reply.ack->duplicate = true;
	if (answer(p, 0, NULL) != ANSWERED)
		return UNANSWERED;
	log_debug("msg %s: outbox number %llu applied before", hexid(p),
	    (unsigned long long)sq->number);
	return ANSWERED;
}

/* 10: the send time is within the skew window of the broker's clock. */
static int
check_time(struct pass *p)
{
	int64_t sent = p->body->sent_at, now = p->rq.now;
	long long skew = p->rq.b->cfg.skew_ms;

	if (sent >= now - skew && sent <= now + skew)
		return 0;
	snprintf(p->why, sizeof(p->why), "the send time is %lld s %s the "
	    "broker's clock; the window is %lld s",
	    (long long)(llabs(sent - now) / 1000),
	    sent < now ? "behind" : "ahead of", skew / 1000);
	end_effects(p);
	return EHX_ERR_STALE;
}

/* 11: the message id was not used in the window by another envelope. */
static int
check_replay(struct pass *p)
{
	if (p->lookup != 0)
		return 0;
	end_effects(p);
	return EHX_ERR_REPLAY;
}

/*
 * 12: the payload's checks, then its handler. Its decision, allowed or
 * not, is stored with its reply (keep); only when nothing can be stored
 * is it refused instead, with no record, so that a retry is decided
 * afresh.
 */
static int
decide(struct pass *p)
{
	handler_fn handle = NULL;
	int code;

	code = admit(&p->rq, &handle, p->why, sizeof(p->why));
	if (code == 0)
		code = act(&p->rq, p->txn, handle, p->why, sizeof(p->why));
	if (code == EHX_ERR_STORAGE_FULL || code == EHX_ERR_STORAGE ||
	    code == EHX_ERR_NOMEM) {
		log_error("msg %s: %s: %s", hexid(p), code == EHX_ERR_NOMEM ?
		    "memory" : "storage", ehx_strerror(code));
		end_effects(p);
		note_storage_failure(p->rq.b, code);
		if (code == EHX_ERR_NOMEM)
			snprintf(p->why, sizeof(p->why), "the answer needed "
			    "more memory than one request may use; nothing "
			    "was stored: ask for less (a smaller page)");
		else if (code != EHX_ERR_STORAGE_FULL)
			p->why[0] = '\0';
		if (code != EHX_ERR_STORAGE_FULL)
			code = EHX_ERR_INTERNAL;
		return code;
	}
	p->decision = code;
	if (code != 0)
		p->rq.basis[0] = '\0';
	return 0;
}

/*
 * The decision could not be stored (rc): nothing of it is, its
 * notifications are forgotten, and the caller hears STORAGE_FULL or
 * INTERNAL in a signed error, unaudited, to send again later.
 */
static int
not_kept(struct pass *p, int rc)
{
	struct broker *b = p->rq.b;

	notify_push_drop(b, p->push_mark);
	p->rq.audit_seq = 0;            /* its record was not kept */
	log_error("msg %s: storage: %s", hexid(p), ehx_strerror(rc));
	end_effects(p);
	note_storage_failure(b, rc);
	free(*p->out);
	*p->out = NULL;
	p->why[0] = '\0';
	p->rq.basis[0] = '\0';
	return answer_error(p, rc == EHX_ERR_STORAGE_FULL ? rc :
	    EHX_ERR_INTERNAL, NULL);
}

/* The reply kept for a retry: an export's (it carries the agencies'
 * envelopes, which name children) only sealed, like the evidence. */
static int
replay_entry(struct pass *p, Ehx__ReplayEntry *entry)
{
	int rc;

	entry->received_at = p->rq.now;
	entry->envelope_hash.data = p->rq.envelope_hash;
	entry->envelope_hash.len = 32;
	entry->reply.data = *p->out;
	entry->reply.len = *p->outlen;
	if (p->decision != 0 || p->body->payload_case !=
	    EHX__BODY__PAYLOAD_EXPORT_AUDIT)
		return 0;
	if ((rc = ehx_evidence_seal(p->rq.b->pkey, p->rq.envelope_hash,
	    *p->out, *p->outlen, &p->sealed, &p->sealedlen)) != 0)
		return rc == EHX_ERR_NOMEM ? rc : EHX_ERR_INTERNAL;
	entry->reply.data = p->sealed;
	entry->reply.len = p->sealedlen;
	entry->sealed = true;
	return 0;
}

/*
 * The decision's audit record, in the request's transaction: its
 * notifications first (a publish's go in its own record: the log grows by
 * one record a request, whoever is told), then the record, what it
 * disclosed and raised, and the envelope as evidence.
 */
static int
record(struct pass *p, Ehx__AuditRecord *rec)
{
	struct broker *b = p->rq.b;
	int rc;

	bool publish = p->decision == 0 && p->body->payload_case ==
	    EHX__BODY__PAYLOAD_PUBLISH_FLAG;

	if (publish) {
		if ((rc = notify_defer(&p->rq, p->txn)) != 0)
			return rc;
		rec->notified = p->rq.notified;
		rec->n_notified = p->rq.nnotified;
	}
	if ((rc = store_audit_append(&b->store, p->txn, rec)) != 0 ||
	    (p->decision == 0 && (rc = audit_side_records(&p->rq, p->txn,
	    rec->seq)) != 0) || (publish && (rc = notify_keep(&p->rq, p->txn,
	    rec->seq)) != 0))
		return rc;
	if (p->evidence && (rc = store_evidence_put(&b->store, p->txn, b->pkey,
	    rec->seq, p->rq.envelope_hash, p->frame, p->len)) != 0)
		return rc;
	return 0;
}

/*
 * After step 12: sign the reply, then store in the request's one
 * transaction its audit record (with what it disclosed, its evidence and
 * its notifications), its reply under the message id, and its stream's
 * new number; commit, with a checkpoint when one is due.
 */
static int
keep(struct pass *p)
{
	struct broker *b = p->rq.b;
	const Ehx__Body *body = p->body;
	Ehx__AuditRecord rec = EHX__AUDIT_RECORD__INIT;
	Ehx__ReplayEntry entry = EHX__REPLAY_ENTRY__INIT;
	struct ehx_audit_person person;
	int code = p->decision, rc;

	/* The record first: the reply names it (Body.audit_seq). */
	audit_fill(&p->rq, &rec, &person, p->action, code);
	if (!p->rq.unaudited || code != 0) {
		if ((rc = record(p, &rec)) != 0)
			return not_kept(p, rc);
		p->rq.audit_seq = rec.seq;
	}
	if ((rc = seal_reply(&p->rq, p->reply_to, code, p->why, p->out,
	    p->outlen)) != 0) {
		/* An answer too large to sign (or no memory): nothing is
		 * stored, and the caller hears so in a signed error. */
		log_error("msg %s: the reply could not be signed: %s",
		    hexid(p), ehx_strerror(rc));
		notify_push_drop(b, p->push_mark);      /* none was stored */
		end_effects(p);
		p->rq.audit_seq = 0;
		p->why[0] = '\0';
		return EHX_ERR_INTERNAL;
	}
	if ((rc = replay_entry(p, &entry)) != 0)
		return not_kept(p, rc);
	if ((!p->rq.ephemeral && (rc = store_replay_put(&b->store, p->txn,
	    p->rq.conn->id, body->message_id.data, &entry, p->rq.now -
	    2 * b->cfg.skew_ms)) != 0) || (p->sequenced &&
	    (rc = stream_advance(b, p->txn, p->rq.conn->id, body->sequence,
	    p->ring, body->message_id.data)) != 0))
		return not_kept(p, rc);
	rc = commit_with_checkpoint(b, p->txn);
	p->txn = NULL;
	if (rc != 0)
		return not_kept(p, rc);
	/* Fetches come every few seconds from every agent: debug only. */
	ehx_log_(p->rq.ephemeral && code == 0 ? EHX_LOG_DEBUG : EHX_LOG_INFO,
	    "msg %s from %s: %s %s%s", hexid(p), p->rq.conn->id, p->action,
	    code == 0 ? "allowed" : "denied: ", code == 0 ? "" :
	    ehx_errname(code));
	return ANSWERED;
}

/* A refusal at steps 1-11 (or a decision that cannot be stored): not
 * stored under the message id; audited on its own, then answered. */
static int
refuse(struct pass *p, int code)
{
	char esc[64];
	int rc;

	end_effects(p);
	p->rq.basis[0] = '\0';
	/* A change refused for want of space discloses and changes nothing;
	 * auditing it would spend the room kept for the audit of reads. */
	if (code != EHX_ERR_STORAGE_FULL && (rc = audit_only(&p->rq, p->action,
	    code, p->evidence ? p->frame : NULL, p->len)) != 0)
		log_error("audit of a refusal failed: %s", ehx_strerror(rc));
	log_info("refused %s from %s: %s%s%s", p->action, p->rq.conn->id,
	    ehx_errname(code), p->why[0] ? ": " : "",
	    ehx_log_escape(esc, sizeof(esc), p->why, strlen(p->why)));
	return answer_error(p, code, p->why);
}

/*
 * A request costs its agency one token of its rate when it arrives
 * (broker_rate_take) and one more for every EHX_READS_PER_TOKEN stored
 * values it read, charged once it is answered: a flood of heavy questions
 * (searches of the whole audit, subject access on a long history) uses up
 * that agency's rate as fast as its work uses the broker, and no other
 * agency's.
 */
static void
charge_reads(struct pass *p)
{
	struct broker *b = p->rq.b;
	struct agency *a = (struct agency *)p->rq.conn;

	if (b->cfg.rate_per_second <= 0 || b->cfg.rate_burst <= 0)
		return;
	a->tokens -= (double)(store_reads() - p->reads) /
	    EHX_READS_PER_TOKEN;
}

/* Free what the request held; count what it added to the batch. */
static int
pass_end(struct pass *p, int r)
{
	struct broker *b = p->rq.b;
	int rc = 0;

	charge_reads(p);
	if (r == ANSWERED)
		note_answered(b, p->reply_to, p->len, *p->outlen +
		    p->sealedlen, b->npush - p->push_mark);
	else {
		note_answered(b, p->reply_to, p->len, 0, 0);
		notify_push_drop(b, p->push_mark);
		log_error("could not sign a reply");
		end_effects(p);
		free(*p->out);
		*p->out = NULL;
		*p->outlen = 0;
		rc = EHX_ERR_INTERNAL;
	}
	free(p->sealed);
	ehx_body_free(p->peek);
	ehx_body_free(p->body);
	ehx_envelope_free(p->env);
	return rc;
}

/*
 * The order of the checks after broker_precheck's (steps 1-5), as this
 * file's opening comment and PROTOCOL.md §7.1 list them; the first that
 * does not go on decides.
 */
static int (*const stages[])(struct pass *) = {
	check_revoked,          /*  6 REVOKED_CERTIFICATE */
	check_dates,            /*  6 CERTIFICATE_NOT_YET_VALID, _EXPIRED */
	check_sender,           /*  7 WRONG_SENDER */
	check_recipient,        /*  8 WRONG_RECIPIENT */
	check_store,            /*    INTERNAL after a storage failure */
	check_sequence,         /*    MALFORMED sequence */
	open_effects,           /*  9 the request's transaction */
	check_order,            /*  9 OUT_OF_ORDER: a number skipped */
	check_seen,             /*  9 the same envelope: its first reply */
	check_applied,          /*  9 a number applied before */
	check_time,             /* 10 STALE */
	check_replay,           /* 11 REPLAY */
	decide,                 /* 12 the payload's checks and handler */
	keep,                   /*    stored with its reply: ANSWERED */
};
#define NSTAGES (sizeof(stages) / sizeof(stages[0]))

int
broker_process_checked(struct broker *b, const struct agency *conn,
    const void *frame, size_t len, struct precheck *pc, unsigned char **out,
    size_t *outlen)
{
	struct pass p;
	int r;

	pass_begin(&p, b, conn, frame, len, out, outlen);
	if (pc == NULL)
		r = over_rate(&p);
	else {
		r = take_checked(&p, pc);
		for (size_t i = 0; r == 0 && i < NSTAGES; i++)
			r = stages[i](&p);
	}
	if (r < 0)
		r = refuse(&p, r);
	return pass_end(&p, r);
}

int
broker_batch_begin(struct broker *b)
{
	int rc;

	b->batch_bytes = 0;
	if (b->store.failed)
		return EHX_ERR_STORAGE;
	if ((rc = mdb_txn_begin(b->store.env, NULL, 0, &b->batch)) != 0) {
		b->batch = NULL;
		return store_err(rc);
	}
	return 0;
}

/* What a batch did outside LMDB, undone when it was not stored: its
 * notifications are dropped, and a checkpoint signed in it is forgotten
 * (replies would carry the root of a log that never was) for the one last
 * committed. */
static void
batch_forget(struct broker *b)
{
	notify_push_drop(b, 0);
	if (b->cp != NULL)
		ehx__checkpoint__free_unpacked(b->cp, NULL);
	b->cp = NULL;
	if (checkpoint_adopt(b) != 0)
		log_error("the checkpoint in force could not be read back");
}

void
broker_batch_abandon(struct broker *b)
{
	if (b->batch == NULL)
		return;
	mdb_txn_abort(b->batch);
	b->batch = NULL;
	b->batch_bytes = 0;
	batch_forget(b);
}

int
broker_batch_commit(struct broker *b)
{
	int rc;

	if (b->batch == NULL)
		return 0;
	rc = store_err(mdb_txn_commit(b->batch));
	b->batch = NULL;
	b->batch_bytes = 0;
	if (rc == 0)
		return 0;
	/* Nothing of the batch was stored: no notification of it may go
	 * out, and the checkpoint in force is the last one committed. */
	log_error("storage: a group commit failed: %s", ehx_strerror(rc));
	note_storage_failure(b, rc);
	batch_forget(b);
	return rc;
}

int
broker_refuse(struct broker *b, const struct agency *conn,
    const unsigned char *id, int code, unsigned char **out, size_t *outlen)
{
	struct request rq;

	memset(&rq, 0, sizeof(rq));
	ehx__body__init(&rq.reply);
	rq.b = b;
	rq.conn = conn;
	rq.now = ehx_now_ms();
	return seal_reply(&rq, id, code, NULL, out, outlen);
}
