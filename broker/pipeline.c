/*
 * pipeline.c — the pipeline every Envelope goes through, in this order:
 *
 *   1 size limit, before any decoding          EHX_ERR_TOO_LARGE
 *   2 decode the Envelope                      MALFORMED, BAD_VERSION
 *   3 signer certificate registered            UNKNOWN_CERTIFICATE
 *   4 signature over context ‖ body bytes      BAD_SIGNATURE
 *   5 decode the signed Body                   MALFORMED
 *   6 certificate within its dates             CERTIFICATE_NOT_YET_VALID / _EXPIRED
 *   7 signer is the connection's agency        WRONG_SENDER
 *   8 recipient is this broker                 WRONG_RECIPIENT
 *   9 the very same envelope seen before?      its stored first reply, again
 *     a sequenced request (from an outbox) whose number was applied:
 *     its first reply if still kept, else an ack marked duplicate;
 *     one beyond the next number due:          OUT_OF_ORDER (not audited)
 *  10 send time within the skew window         STALE
 *  11 message id not seen in the window        REPLAY
 *  12 a request payload, a valid person, a role allowed the action, valid
 *     fields; then the payload's handler       MALFORMED, INVALID_FIELD,
 *                                               NOT_PERMITTED, INVALID_NHS_NUMBER …
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
};

/* A request that changes flags or consent (not only the audit). */
static bool
is_change(int c)
{
	return c == EHX__BODY__PAYLOAD_PUBLISH_FLAG ||
	    c == EHX__BODY__PAYLOAD_CLOSE_FLAG ||
	    c == EHX__BODY__PAYLOAD_RECORD_CONSENT ||
	    c == EHX__BODY__PAYLOAD_WITHDRAW_CONSENT;
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
	r->checkpoint = b->cp;
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

static void
audit_fill(struct request *rq, Ehx__AuditRecord *rec, Ehx__Person *person,
    const char *action, int code)
{
	const Ehx__Body *body = rq->body;

	rec->time = rq->now;
	rec->agency = (char *)rq->conn->id;
	if (body != NULL && body->person != NULL) {
		*person = *body->person;
		rec->person = person;
	}
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
 * After a storage error that is not a full map, the store may be damaged:
 * refuse all further work (STYLE.md: LMDB's sticky MDB_PANIC) rather than
 * limp on. The operator restarts the broker once the cause is fixed.
 */
static void
note_storage_failure(struct broker *b, int code)
{
	if (code == EHX_ERR_STORAGE && !b->store.failed) {
		b->store.failed = true;
		log_error("storage failure: refusing all further requests "
		    "until the broker is restarted");
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
	Ehx__Person person;
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
	return commit_with_checkpoint(rq->b, txn);
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

/* Run the payload's checks and handler in a child transaction. */
static int
decide(struct request *rq, MDB_txn *parent, char *why, size_t whysz)
{
	const Ehx__Body *body = rq->body;
	const char *nhs;
	size_t i;
	int r, rc;

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
	if ((rc = mdb_txn_begin(rq->b->store.env, parent, 0, &rq->txn)) != 0)
		return store_err(rc);
	snprintf(rq->basis, sizeof(rq->basis), "role:%s",
	    ehx_role_name(body->person->role));
	if ((r = actions[i].handle(rq, why, whysz)) != 0) {
		mdb_txn_abort(rq->txn);
		rq->txn = NULL;
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

int
broker_process_checked(struct broker *b, const struct agency *conn,
    const void *frame, size_t len, struct precheck *pc, unsigned char **out,
    size_t *outlen)
{
	struct request rq;
	Ehx__Envelope *env = NULL;
	Ehx__Body *body = NULL, *peek = NULL;
	Ehx__ReplayEntry *seen = NULL, entry = EHX__REPLAY_ENTRY__INIT;
	Ehx__AuditRecord rec = EHX__AUDIT_RECORD__INIT;
	Ehx__Person person;
	const struct ehx_cert *cert = NULL;
	const unsigned char *reply_to = NULL;
	const char *action = "envelope";
	unsigned char *hash = rq.envelope_hash, *sealed = NULL;
	size_t sealedlen = 0;
	bool evidence = false, sequenced = false, ephemeral;
	char why[256] = "", hexid[2 * EHX_MSGID_LEN + 1];
	size_t push_mark = b->npush;
	uint64_t applied = 0;
	unsigned char ring[STREAM_RING * EHX_MSGID_LEN];
	MDB_txn *txn = NULL;
	int code, rc;

	*out = NULL;
	*outlen = 0;
	memset(&rq, 0, sizeof(rq));
	ehx__body__init(&rq.reply);
	rq.b = b;
	rq.conn = conn;
	rq.now = ehx_now_ms();
	ehx_arena_reset(b->arena);

	if (pc == NULL) {
		/* Over its rate: answered at once, before anything is decoded
		 * beyond its message id, any signature checked or anything
		 * stored, and not audited — a flood (of requests or of junk)
		 * costs the others next to nothing. */
		if (ehx_envelope_decode(frame, len, &env) == 0)
			reply_to = peek_id(env, &peek);
		snprintf(why, sizeof(why), "more than %lld requests a second "
		    "(burst %lld) from %s; send again shortly",
		    b->cfg.rate_per_second, b->cfg.rate_burst, conn->id);
		if (conn->refilled - conn->tokens_logged >= 10000) {
			((struct agency *)conn)->tokens_logged = conn->refilled;
			log_warn("%s is over its request rate: refusing "
			    "rate_limited", conn->id);
		}
		if (seal_reply(&rq, reply_to, EHX_ERR_RATE_LIMITED, why, out,
		    outlen) != 0)
			goto internal;
		goto done;
	}
	/* Decoded, its signature checked and its body decoded already
	 * (broker_precheck, perhaps in another thread): ours to free now. */
	memcpy(hash, pc->hash, sizeof(rq.envelope_hash));
	env = pc->env;
	body = pc->body;
	pc->env = NULL;
	pc->body = NULL;
	rq.agency = pc->agency;
	cert = pc->cert;
	if ((code = pc->code) != 0) {
		snprintf(why, sizeof(why), "%s", pc->why);
		if (env != NULL)
			reply_to = peek_id(env, &peek);
		goto refuse;
	}
	rq.body = body;
	reply_to = body->message_id.data;
	/* Signed by the connection's own agency and well formed: worth
	 * keeping as evidence of who asked for what, when it is of a sane
	 * size. (The audit record names the connection's agency; another
	 * agency's envelope on it is refused below and not kept.) */
	evidence = len <= EHX_MAX_EVIDENCE && rq.agency == conn;
	action = ehx_payload_name(body->payload_case);
	if (b->crl != NULL && ehx_crl_revoked(b->crl, cert)) {
		snprintf(why, sizeof(why), "the certificate that signed this "
		    "was revoked by the partnership CA");
		code = EHX_ERR_REVOKED_CERTIFICATE;
		goto refuse;
	}
	if ((code = ehx_cert_check_time(cert, rq.now)) != 0)
		goto refuse;
	if (rq.agency != conn || strcmp(body->sender, conn->id) != 0) {
		snprintf(why, sizeof(why), "signed by %s, sent by %s on the "
		    "connection of %s", rq.agency->id, body->sender, conn->id);
		code = EHX_ERR_WRONG_SENDER;
		goto refuse;
	}
	if (strcmp(body->recipient, b->cfg.id) != 0) {
		code = EHX_ERR_WRONG_RECIPIENT;
		goto refuse;
	}
	/* From here on the decision is stored under the message id. The
	 * same envelope again gets its stored reply even when its send time
	 * has since left the window: it is a retry, not a new request. */
	if (b->store.failed) {
		code = EHX_ERR_INTERNAL;
		goto refuse;
	}
	ephemeral = body->payload_case == EHX__BODY__PAYLOAD_FETCH_NOTIFICATIONS;
	if (body->sequence != NULL && (ephemeral ||
	    body->sequence->stream.len != EHX_STREAM_LEN ||
	    body->sequence->number == 0 ||
	    body->sequence->number > EHX_MAX_SEQ)) {
		snprintf(why, sizeof(why), "%s", ephemeral ? "a fetch is not "
		    "sequenced" : "sequence: the stream must be 16 bytes and "
		    "the number 1..2^62");
		code = EHX_ERR_MALFORMED;
		goto refuse;
	}
	if ((rc = mdb_txn_begin(b->store.env, b->batch, 0, &txn)) != 0) {
		code = store_err(rc);
		goto refuse;
	}
	if (body->sequence != NULL) {
		if ((code = stream_applied(b, txn, conn->id, body->sequence,
		    &applied, ring)) != 0) {
			mdb_txn_abort(txn);
			txn = NULL;
			note_storage_failure(b, code);
			goto refuse;
		}
		if (body->sequence->number > applied + 1) {
			/* An earlier one is missing: it had no effect and it
			 * is not audited; the agent sends from the gap. */
			mdb_txn_abort(txn);
			txn = NULL;
			snprintf(why, sizeof(why), "number %llu of this outbox "
			    "stream is due, not %llu",
			    (unsigned long long)applied + 1,
			    (unsigned long long)body->sequence->number);
			code = EHX_ERR_OUT_OF_ORDER;
			ehx__body__init(&rq.reply);
			rq.expected = applied + 1;
			if (seal_reply(&rq, reply_to, code, why, out,
			    outlen) != 0)
				goto internal;
			goto done;
		}
		sequenced = body->sequence->number == applied + 1;
	}
	code = ephemeral ? EHX_ERR_NOT_FOUND : store_replay_get(&b->store, txn,
	    conn->id, body->message_id.data, b->arena, &seen);
	if (code == 0 && seen->envelope_hash.len == 32 && (memcmp(
	    seen->envelope_hash.data, hash, 32) == 0 ||
	    body->sequence != NULL)) {
		/* The same envelope again, or the same outbox request signed
		 * afresh: its first reply. That holds too for a request due
		 * next in its stream (an agent that numbered what it held in
		 * a new stream, its answers lost): the stream moves on past
		 * it, and it has no second effect. */
		if (seen->sealed) {
			if (ehx_evidence_open(b->pkey, seen->envelope_hash.data,
			    seen->reply.data, seen->reply.len, out,
			    outlen) != 0)
				*out = NULL;
		} else if ((*out = malloc(seen->reply.len)) != NULL) {
			memcpy(*out, seen->reply.data, seen->reply.len);
			*outlen = seen->reply.len;
		}
		if (*out != NULL && sequenced) {
			if ((rc = stream_advance(b, txn, conn->id,
			    body->sequence, ring, body->message_id.data)) == 0)
				rc = store_err(mdb_txn_commit(txn));
			else
				mdb_txn_abort(txn);
			txn = NULL;
			if (rc != 0) {
				free(*out);
				*out = NULL;
				note_storage_failure(b, rc);
				code = rc;
				goto refuse;
			}
		}
		if (txn != NULL)
			mdb_txn_abort(txn);
		txn = NULL;
		if (*out == NULL) {
			code = EHX_ERR_INTERNAL;
			goto refuse;
		}
		log_debug("msg %s: retry answered from the replay store",
		    ehx_hex(hexid, reply_to, EHX_MSGID_LEN));
		goto done;
	}
	if (code != 0 && code != EHX_ERR_NOT_FOUND) {
		mdb_txn_abort(txn);
		txn = NULL;
		note_storage_failure(b, code);
		goto refuse;
	}
	if (body->sequence != NULL && !sequenced &&
	    !stream_had(ring, applied, body->sequence->number,
	    body->message_id.data)) {
		/* Another request under a number applied before: the
		 * agent's outbox went back (restored from a backup, or
		 * copied). Its stream is spent: expected 0 tells it to
		 * number what it holds in a new one. Nothing is applied. */
		mdb_txn_abort(txn);
		txn = NULL;
		log_warn("msg %s from %s: outbox number %llu of this stream "
		    "was applied to another request (its outbox was restored "
		    "or copied?): told to start a new stream",
		    ehx_hex(hexid, reply_to, EHX_MSGID_LEN), conn->id,
		    (unsigned long long)body->sequence->number);
		snprintf(why, sizeof(why), "number %llu of this outbox stream "
		    "was applied to another request; number what is queued "
		    "in a new stream", (unsigned long long)
		    body->sequence->number);
		code = EHX_ERR_OUT_OF_ORDER;
		ehx__body__init(&rq.reply);
		rq.expected = 0;
		if (seal_reply(&rq, reply_to, code, why, out, outlen) != 0)
			goto internal;
		goto done;
	}
	if (body->sequence != NULL && !sequenced) {
		/* Applied before under this id, and its reply is no longer
		 * kept. */
		mdb_txn_abort(txn);
		txn = NULL;
		ehx__body__init(&rq.reply);
		if (request_ack(&rq, "") != 0)
			goto internal;
		rq.reply.ack->duplicate = true;
		if (seal_reply(&rq, reply_to, 0, NULL, out, outlen) != 0)
			goto internal;
		log_debug("msg %s: outbox number %llu applied before",
		    ehx_hex(hexid, reply_to, EHX_MSGID_LEN),
		    (unsigned long long)body->sequence->number);
		goto done;
	}
	if (body->sent_at < rq.now - b->cfg.skew_ms ||
	    body->sent_at > rq.now + b->cfg.skew_ms) {
		snprintf(why, sizeof(why), "the send time is %lld s %s the "
		    "broker's clock; the window is %lld s",
		    (long long)(llabs(body->sent_at - rq.now) / 1000),
		    body->sent_at < rq.now ? "behind" : "ahead of",
		    (long long)(b->cfg.skew_ms / 1000));
		mdb_txn_abort(txn);
		txn = NULL;
		code = EHX_ERR_STALE;
		goto refuse;
	}
	if (code == 0) {
		mdb_txn_abort(txn);
		txn = NULL;
		code = EHX_ERR_REPLAY;
		goto refuse;
	}

	code = decide(&rq, txn, why, sizeof(why));
	if (code == EHX_ERR_STORAGE_FULL || code == EHX_ERR_STORAGE ||
	    code == EHX_ERR_NOMEM) {
		/* Nothing can be stored: answer, keep no record, let it retry. */
		log_error("msg %s: storage: %s", ehx_hex(hexid, reply_to,
		    EHX_MSGID_LEN), ehx_strerror(code));
		mdb_txn_abort(txn);
		txn = NULL;
		note_storage_failure(b, code);
		if (code != EHX_ERR_STORAGE_FULL) {
			code = EHX_ERR_INTERNAL;
			why[0] = '\0';
		}
		goto refuse;
	}
	if (code != 0)
		rq.basis[0] = '\0';
	if ((rc = seal_reply(&rq, reply_to, code, why, out, outlen)) != 0) {
		/* An answer too large to sign (or no memory): nothing is
		 * stored, and the caller hears so in a signed error. */
		log_error("msg %s: the reply could not be signed: %s",
		    ehx_hex(hexid, reply_to, EHX_MSGID_LEN), ehx_strerror(rc));
		mdb_txn_abort(txn);
		txn = NULL;
		code = EHX_ERR_INTERNAL;
		why[0] = '\0';
		goto refuse;
	}
	audit_fill(&rq, &rec, &person, action, code);
	entry.received_at = rq.now;
	entry.envelope_hash.data = hash;
	entry.envelope_hash.len = 32;
	entry.reply.data = *out;
	entry.reply.len = *outlen;
	/* An export carries the agencies' envelopes, which name children:
	 * kept for a retry only sealed, like the evidence itself. */
	if (code == 0 && body->payload_case ==
	    EHX__BODY__PAYLOAD_EXPORT_AUDIT) {
		if ((rc = ehx_evidence_seal(b->pkey, hash, *out, *outlen,
		    &sealed, &sealedlen)) != 0) {
			rc = rc == EHX_ERR_NOMEM ? rc : EHX_ERR_INTERNAL;
			goto storage;
		}
		entry.reply.data = sealed;
		entry.reply.len = sealedlen;
		entry.sealed = true;
	}
	if (!rq.unaudited || code != 0) {
		if ((rc = store_audit_append(&b->store, txn, &rec)) != 0 ||
		    (code == 0 && (rc = audit_side_records(&rq, txn,
		    rec.seq)) != 0) ||
		    (evidence && (rc = store_evidence_put(&b->store, txn,
		    b->pkey, rec.seq, hash, frame, len)) != 0) ||
		    (code == 0 && (rc = notify_emit(&rq, txn)) != 0))
			goto storage;
	}
	if ((!ephemeral && (rc = store_replay_put(&b->store, txn, conn->id,
	    body->message_id.data, &entry, rq.now - 2 * b->cfg.skew_ms)) != 0) ||
	    (sequenced && (rc = stream_advance(b, txn, conn->id,
	    body->sequence, ring, body->message_id.data)) != 0))
		goto storage;
	rc = commit_with_checkpoint(b, txn);
	txn = NULL;
	if (rc != 0)
		goto storage;
	/* Fetches come every few seconds from every agent: debug only. */
	ehx_log_(ephemeral && code == 0 ? EHX_LOG_DEBUG : EHX_LOG_INFO,
	    "msg %s from %s: %s %s%s",
	    ehx_hex(hexid, reply_to, EHX_MSGID_LEN), conn->id, action,
	    code == 0 ? "allowed" : "denied: ", code == 0 ? "" :
	    ehx_errname(code));
	goto done;

storage:
	notify_push_drop(b, push_mark);
	log_error("msg %s: storage: %s", ehx_hex(hexid, reply_to,
	    EHX_MSGID_LEN), ehx_strerror(rc));
	if (txn != NULL)
		mdb_txn_abort(txn);
	txn = NULL;
	note_storage_failure(b, rc);
	free(*out);
	*out = NULL;
	ehx__body__init(&rq.reply);
	code = rc == EHX_ERR_STORAGE_FULL ? rc : EHX_ERR_INTERNAL;
	why[0] = '\0';
	rq.basis[0] = '\0';
	if (seal_reply(&rq, reply_to, code, NULL, out, outlen) != 0)
		goto internal;
	goto done;

refuse:
	/* Not stored under the message id: audit the refusal, then answer. */
	rq.basis[0] = '\0';
	/* A change refused for want of space discloses and changes nothing;
	 * auditing it would spend the room kept for the audit of reads. */
	if (code != EHX_ERR_STORAGE_FULL && (rc = audit_only(&rq, action, code,
	    evidence ? frame : NULL, len)) != 0)
		log_error("audit of a refusal failed: %s", ehx_strerror(rc));
	{
		char esc[64];

		log_info("refused %s from %s: %s%s%s", action, conn->id,
		    ehx_errname(code), why[0] ? ": " : "",
		    ehx_log_escape(esc, sizeof(esc), why, strlen(why)));
	}
	ehx__body__init(&rq.reply);
	if (seal_reply(&rq, reply_to, code, why, out, outlen) != 0)
		goto internal;
	goto done;

internal:
	note_answered(b, reply_to, len, 0, 0);
	notify_push_drop(b, push_mark);
	free(sealed);
	log_error("could not sign a reply");
	if (txn != NULL)
		mdb_txn_abort(txn);
	free(*out);
	*out = NULL;
	*outlen = 0;
	ehx_body_free(peek);
	ehx_body_free(body);
	ehx_envelope_free(env);
	return EHX_ERR_INTERNAL;
done:
	note_answered(b, reply_to, len, *outlen + sealedlen,
	    b->npush - push_mark);
	free(sealed);
	ehx_body_free(peek);
	ehx_body_free(body);
	ehx_envelope_free(env);
	return 0;
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
