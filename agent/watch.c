/*
 * watch.c — see watch.h.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "ehx/auditverify.h"
#include "ehx/checkpoint.h"
#include "ehx/err.h"
#include "ehx/log.h"
#include "ehx/merkle.h"
#include "ehx/names.h"
#include "ehx/util.h"
#include "ehx/wire.h"
#include "watch.h"

/* A checkpoint, 64 pending decisions of about 60 bytes, sentences. */
#define STATE_MAX 16384
#define RESEND_MS 3000

static Ehx__Checkpoint *
copy_checkpoint(const Ehx__Checkpoint *cp)
{
	Ehx__Checkpoint c = *cp;
	unsigned char *buf;
	size_t n;
	Ehx__Checkpoint *out;

	c.n_cosignatures = 0;
	c.cosignatures = NULL;
	n = ehx__checkpoint__get_packed_size(&c);
	if ((buf = malloc(n)) == NULL)
		return NULL;
	ehx__checkpoint__pack(&c, buf);
	out = ehx__checkpoint__unpack(NULL, n, buf);
	free(buf);
	return out;
}

static void
save(struct watch *w)
{
	size_t n = ehx__agent_state__get_packed_size(w->state);
	unsigned char *buf;
	int r;

	if ((buf = malloc(n)) == NULL)
		return;
	ehx__agent_state__pack(w->state, buf);
	if ((r = ehx_file_write_atomic(w->path, buf, n, 0600)) != 0)
		log_error("%s: cannot save the audit checkpoint: %s", w->path,
		    r == EHX_ERR_SYSTEM ? strerror(errno) : ehx_strerror(r));
	free(buf);
}

static void
set_state_string(char **field, const char *s)
{
	char *d = strdup(s);

	if (d == NULL)
		return;
	if (*field != NULL && *field != protobuf_c_empty_string)
		free(*field);
	*field = d;
}

/* The log cannot be trusted: say so loudly, remember it, keep saying it. */
static void
inconsistent(struct watch *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
inconsistent(struct watch *w, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_error("AUDIT LOG INCONSISTENT: %s", why);
	if (!w->state->consistent && w->state->problem[0] != '\0')
		return;                 /* keep the first problem found */
	w->state->consistent = false;
	set_state_string(&w->state->problem, why);
	w->state->checked_at = ehx_now_ms();
	save(w);
}

int
watch_open(struct watch *w, const char *path, char *err, size_t errsz)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	int r;

	if ((size_t)snprintf(w->path, sizeof(w->path), "%s", path) >=
	    sizeof(w->path)) {
		snprintf(err, errsz, "%s: path too long", path);
		return EHX_ERR_CONFIG;
	}
	r = ehx_file_read(path, true, STATE_MAX, &buf, &len);
	if (r == EHX_ERR_SYSTEM && errno == ENOENT) {
		if ((w->state = calloc(1, sizeof(*w->state))) == NULL)
			return EHX_ERR_NOMEM;
		ehx__agent_state__init(w->state);
		w->state->consistent = true;
		return 0;
	}
	if (r != 0) {
		snprintf(err, errsz, "%s: %s", path, r == EHX_ERR_SYSTEM ?
		    strerror(errno) : ehx_strerror(r));
		return r;
	}
	w->state = ehx__agent_state__unpack(NULL, len, buf);
	free(buf);
	if (w->state == NULL || (w->state->checkpoint != NULL &&
	    ehx_checkpoint_check(w->state->checkpoint) != 0) ||
	    (w->state->confirmed != NULL &&
	    ehx_checkpoint_check(w->state->confirmed) != 0) ||
	    !ehx_pending_decisions_ok(w->state)) {
		snprintf(err, errsz, "%s: not an agent state file (move it "
		    "aside to start afresh)", path);
		if (w->state != NULL)
			ehx__agent_state__free_unpacked(w->state, NULL);
		w->state = NULL;
		return EHX_ERR_CONFIG;
	}
	if (!w->state->consistent)
		log_error("AUDIT LOG INCONSISTENT (found earlier): %s",
		    w->state->problem);
	/* A warning in force when the agent stopped stays until its
	 * condition is seen to be over. */
	snprintf(w->withheld, sizeof(w->withheld), "%s", w->state->withheld);
	snprintf(w->unconfirmed, sizeof(w->unconfirmed), "%s",
	    w->state->unconfirmed);
	return 0;
}

static void
ireq_clear(struct ireq *q)
{
	free(q->env);
	memset(q, 0, sizeof(*q));
}

void
watch_free(struct watch *w)
{
	if (w->state != NULL)
		ehx__agent_state__free_unpacked(w->state, NULL);
	if (w->target != NULL)
		ehx__checkpoint__free_unpacked(w->target, NULL);
	ireq_clear(&w->proof);
	ireq_clear(&w->cosign);
	ireq_clear(&w->incl);
	ireq_clear(&w->agree);
	w->state = NULL;
	w->target = NULL;
}

/* Seal a request of the agent's own into q. */
static int
ireq_start(struct watch *w, struct ireq *q, Ehx__Body *body, int64_t now)
{
	static Ehx__Person self = EHX__PERSON__INIT;

	self.user_id = (char *)"ehx-agent";
	self.name = (char *)"EHX agent";
	self.role = EHX__ROLE__ROLE_SYSTEM;
	ireq_clear(q);
	if (ehx_message_id(q->id) != 0)
		return EHX_ERR_INTERNAL;
	body->message_id.data = q->id;
	body->message_id.len = sizeof(q->id);
	body->sender = (char *)w->agency;
	body->recipient = (char *)w->broker_id;
	body->sent_at = now;
	body->person = &self;
	if (ehx_envelope_seal(w->signer, body, &q->env, &q->envlen) != 0)
		return EHX_ERR_INTERNAL;
	q->busy = true;
	q->deadline = now + w->timeout_ms;
	q->next_send = now;
	return 0;
}

static int
ask_proof(struct watch *w, struct ireq *q, const Ehx__QueryProof *qp,
    int64_t now)
{
	Ehx__Body body = EHX__BODY__INIT;

	body.payload_case = EHX__BODY__PAYLOAD_QUERY_PROOF;
	body.query_proof = (Ehx__QueryProof *)qp;
	return ireq_start(w, q, &body, now);
}

static bool
same_checkpoint(const Ehx__Checkpoint *a, const Ehx__Checkpoint *b)
{
	return a->size == b->size && a->root.len == b->root.len &&
	    memcmp(a->root.data, b->root.data, a->root.len) == 0;
}

/* The broker signed cp, under its own id. */
static bool
broker_signed(const struct watch *w, const Ehx__Checkpoint *cp)
{
	return cp != NULL && strcmp(cp->origin, w->broker_id) == 0 &&
	    ehx_checkpoint_verify(cp, ehx_cert_pubkey(w->broker_cert)) == 0;
}

/* Copy a proof's hashes into path: false when there are too many or one
 * is not 32 bytes. */
static bool
proof_path(const ProtobufCBinaryData *h, size_t n,
    unsigned char path[][EHX_HASH_LEN])
{
	if (n > EHX_MERKLE_MAX_PROOF)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (h[i].len != EHX_HASH_LEN)
			return false;
		memcpy(path[i], h[i].data, EHX_HASH_LEN);
	}
	return true;
}

/* newer (size ≥ older's) extends older by the consistency proof h[n]. */
static bool
extends(const Ehx__Checkpoint *older, const Ehx__Checkpoint *newer,
    const ProtobufCBinaryData *h, size_t n)
{
	unsigned char path[EHX_MERKLE_MAX_PROOF][EHX_HASH_LEN];

	if (newer->size == older->size)
		return same_checkpoint(older, newer);
	return newer->size > older->size && proof_path(h, n, path) &&
	    ehx_merkle_verify_consistency(older->size, newer->size,
	    older->root.data, newer->root.data,
	    (const unsigned char (*)[EHX_HASH_LEN])path, n) == 0;
}

/* Adopt cp as the newest checked checkpoint, save, and cosign it. */
static void
adopt(struct watch *w, const Ehx__Checkpoint *cp, int64_t now)
{
	Ehx__Body body = EHX__BODY__INIT;
	Ehx__CosignCheckpoint cc = EHX__COSIGN_CHECKPOINT__INIT;
	Ehx__Cosignature cs;
	Ehx__Checkpoint *copy;
	unsigned char sig[EHX_SIG_LEN];

	if ((copy = copy_checkpoint(cp)) == NULL)
		return;
	if (w->state->checkpoint != NULL)
		ehx__checkpoint__free_unpacked(w->state->checkpoint, NULL);
	w->state->checkpoint = copy;
	w->state->checked_at = now;
	save(w);
	log_info("audit checkpoint of %llu records checked",
	    (unsigned long long)copy->size);
	if (ehx_cosign(w->signer, w->agency, copy, now, &cs, sig) != 0)
		return;
	cc.checkpoint = copy;
	cc.cosignature = &cs;
	body.payload_case = EHX__BODY__PAYLOAD_COSIGN_CHECKPOINT;
	body.cosign_checkpoint = &cc;
	if (ireq_start(w, &w->cosign, &body, now) != 0)
		log_warn("could not cosign the checkpoint");
}

/* Ask the broker for its newest checkpoint with a consistency proof from
 * the one we hold (none: just the newest); check_proof decides. */
static void
ask_newest(struct watch *w, int64_t now)
{
	Ehx__QueryProof qp = EHX__QUERY_PROOF__INIT;

	if (w->proof.busy)
		return;                 /* one check at a time */
	qp.old_size = w->proof_from = w->state->checkpoint != NULL ?
	    w->state->checkpoint->size : 0;
	(void)ask_proof(w, &w->proof, &qp, now);
}

void
watch_seen(struct watch *w, const Ehx__Checkpoint *cp, int64_t now)
{
	const Ehx__Checkpoint *known = w->state->checkpoint;

	if (!broker_signed(w, cp)) {
		inconsistent(w, "a checkpoint of %llu records is not signed "
		    "by the broker", (unsigned long long)cp->size);
		return;
	}
	if (known == NULL) {
		/* The first checkpoint is taken on trust, as the one the
		 * agency's next checks build on. */
		adopt(w, cp, now);
		return;
	}
	if (cp->size == known->size) {
		if (!same_checkpoint(cp, known))
			inconsistent(w, "two different logs of %llu records: "
			    "the broker's history forked",
			    (unsigned long long)cp->size);
		return;
	}
	/* Newer: prove it extends ours. Older: perhaps a retried request's
	 * stored reply, perhaps a rewound log — the broker's newest
	 * checkpoint tells which. */
	ask_newest(w, now);
}

/* ---- warnings that last while a deadline is missed ---------------------- */

static void
set_warning(struct watch *w)
{
	char buf[sizeof(w->withheld) + sizeof(w->unconfirmed) + 4];
	const char *was = w->state->warning != NULL ? w->state->warning : "";

	snprintf(buf, sizeof(buf), "%s%s%s", w->withheld,
	    w->withheld[0] && w->unconfirmed[0] ? "; " : "", w->unconfirmed);
	if (strcmp(was, buf) == 0)
		return;
	set_state_string(&w->state->warning, buf);
	set_state_string(&w->state->withheld, w->withheld);
	set_state_string(&w->state->unconfirmed, w->unconfirmed);
	save(w);
}

/* When does a deadline that started at t run out, counting only time the
 * broker has been answering? */
static int64_t
due(const struct watch *w, int64_t t)
{
	return (t > w->answered_since ? t : w->answered_since) +
	    w->deadline_ms;
}

/* A decision the broker answered and has not put under a checkpoint
 * within the deadline, while answering all along: withheld. */
static void
check_withheld(struct watch *w, int64_t now)
{
	const Ehx__Checkpoint *known = w->state->checkpoint;
	char was[sizeof(w->withheld)];

	memcpy(was, w->withheld, sizeof(was));
	w->withheld[0] = '\0';
	for (size_t i = 0; i < w->state->n_pending && w->deadline_ms > 0 &&
	    w->answered_since > 0; i++) {
		const Ehx__PendingDecision *d = w->state->pending[i];
		bool covered = known != NULL && d->seq <= known->size;
		char t[40];

		if (now < due(w, d->decided_at))
			continue;
		/* Under a checkpoint, its proof is asked at once: a broker
		 * that will not show it is withholding it too. */
		snprintf(w->withheld, sizeof(w->withheld), "AUDIT LOG "
		    "WITHHELD: the broker has %s this agency's decision %llu "
		    "(of %s) in %lld s of answering", covered ? "not shown, "
		    "with its proof, the record of" : "signed no checkpoint "
		    "holding", (unsigned long long)d->seq,
		    ehx_fmt_time(t, sizeof(t), d->decided_at),
		    (long long)(w->deadline_ms / 1000));
		break;
	}
	if (strcmp(was, w->withheld) != 0) {
		if (w->withheld[0] != '\0')
			log_error("%s", w->withheld);
		else if (was[0] != '\0')
			log_info("the broker's checkpoints hold this agency's "
			    "decisions again");
	}
	set_warning(w);
}

/* ---- the broker's newest checkpoint ------------------------------------- */

static void
check_proof(struct watch *w, const Ehx__ProofResult *p, int64_t now)
{
	const Ehx__Checkpoint *known = w->state->checkpoint, *cp = p->checkpoint;

	if (!broker_signed(w, cp)) {
		inconsistent(w, "the broker answered a proof with a checkpoint "
		    "it did not sign");
		return;
	}
	if (known == NULL) {
		adopt(w, cp, now);
		return;
	}
	if (known->size != w->proof_from) {
		/* We adopted another while it was asked: its proof is from a
		 * size we no longer hold. Ask again, at the next tick. */
		w->next_poll = now;
		return;
	}
	if (cp->size < known->size) {
		inconsistent(w, "the broker's log went back from %llu to %llu "
		    "records: it was rewound or replaced",
		    (unsigned long long)known->size,
		    (unsigned long long)cp->size);
		return;
	}
	if (cp->size == known->size) {
		if (!same_checkpoint(cp, known))
			inconsistent(w, "two different logs of %llu records: "
			    "the broker's history forked",
			    (unsigned long long)cp->size);
		return;                 /* the older one was a stored reply */
	}
	if (!extends(known, cp, p->consistency, p->n_consistency)) {
		inconsistent(w, "the broker's log of %llu records does not "
		    "extend the log of %llu records this agent checked: "
		    "records were changed or removed",
		    (unsigned long long)cp->size,
		    (unsigned long long)known->size);
		return;
	}
	adopt(w, cp, now);
}

/* ---- this agency's own decisions ----------------------------------------- */

static void
drop_pending(struct watch *w, size_t i)
{
	ehx__pending_decision__free_unpacked(w->state->pending[i], NULL);
	memmove(&w->state->pending[i], &w->state->pending[i + 1],
	    (w->state->n_pending - i - 1) * sizeof(w->state->pending[0]));
	w->state->n_pending--;
}

/* A reply that answers a decision the broker audits (an allowed proof,
 * cosignature or fetch, a duplicate of a sequenced request and every
 * refusal may name none). */
static bool
is_decision_reply(const Ehx__Body *b)
{
	switch (b->payload_case) {
	case EHX__BODY__PAYLOAD_ERROR:
	case EHX__BODY__PAYLOAD_PROOF:
	case EHX__BODY__PAYLOAD_NOTIFICATIONS:
	case EHX__BODY__PAYLOAD_NOTIFICATION:
		return false;
	case EHX__BODY__PAYLOAD_ACK:
		/* A cosignature's acknowledgement is basis "public". */
		return b->ack != NULL && !b->ack->duplicate &&
		    strcmp(b->ack->basis, "public") != 0;
	default:
		return true;
	}
}

void
watch_decision(struct watch *w, const Ehx__Body *reply,
    const unsigned char *env_hash, bool break_glass, int64_t now)
{
	Ehx__PendingDecision *d, **grown;
	size_t victim = 0;

	if (w->poll_ms == 0 || reply->in_reply_to.len != EHX_MSGID_LEN)
		return;
	if (reply->audit_seq == 0) {
		/* A broker that names its decisions' records and names none
		 * for this one does not mean to keep it. */
		if (w->state->names_decisions && is_decision_reply(reply)) {
			char hex[2 * EHX_MSGID_LEN + 1];

			inconsistent(w, "the broker answered request %s (%s) "
			    "without naming its audit record: a decision it "
			    "does not mean to keep", ehx_hex(hex,
			    reply->in_reply_to.data, EHX_MSGID_LEN),
			    ehx_payload_name(reply->payload_case));
		}
		return;
	}
	if (!w->state->names_decisions) {
		w->state->names_decisions = true;
		save(w);
	}
	if (!break_glass && now - w->last_sample < w->poll_ms)
		return;
	if (w->state->n_pending == WATCH_MAX_PENDING) {
		/* Every break-glass is checked: a sample never pushes one
		 * out (only a newer break-glass the oldest, when all are). */
		while (victim < WATCH_MAX_PENDING &&
		    w->state->pending[victim]->break_glass)
			victim++;
		if (victim == WATCH_MAX_PENDING && !break_glass)
			return;
		if (victim == WATCH_MAX_PENDING)
			victim = 0;
		log_warn("more than %d of this agency's decisions wait to be "
		    "checked in the audit log: not checking %llu",
		    WATCH_MAX_PENDING,
		    (unsigned long long)w->state->pending[victim]->seq);
		drop_pending(w, victim);
	}
	if ((d = malloc(sizeof(*d))) == NULL ||
	    (grown = realloc(w->state->pending, (w->state->n_pending + 1) *
	    sizeof(*grown))) == NULL) {
		free(d);
		return;
	}
	w->state->pending = grown;
	ehx__pending_decision__init(d);
	d->seq = reply->audit_seq;
	d->decided_at = now;
	d->break_glass = break_glass;
	if ((d->message_id.data = malloc(EHX_MSGID_LEN)) == NULL ||
	    (env_hash != NULL && (d->envelope_hash.data = malloc(32)) ==
	    NULL)) {
		ehx__pending_decision__free_unpacked(d, NULL);
		return;
	}
	memcpy(d->message_id.data, reply->in_reply_to.data, EHX_MSGID_LEN);
	d->message_id.len = EHX_MSGID_LEN;
	if (env_hash != NULL) {
		memcpy(d->envelope_hash.data, env_hash, 32);
		d->envelope_hash.len = 32;
	}
	w->state->pending[w->state->n_pending++] = d;
	if (!break_glass)
		w->last_sample = now;
	save(w);
}

/* The record of an inclusion answer is decision d of this agency. */
static bool
is_decision(const struct watch *w, const Ehx__PendingDecision *d,
    const ProtobufCBinaryData *bytes, char *why, size_t whysz)
{
	Ehx__AuditRecord *rec;
	bool ok = false;

	if (bytes->len == 0) {
		snprintf(why, whysz, "the broker would not show it as this "
		    "agency's");
		return false;
	}
	if ((rec = ehx__audit_record__unpack(NULL, bytes->len,
	    bytes->data)) == NULL)
		snprintf(why, whysz, "it is not an audit record");
	else if (rec->seq != d->seq || strcmp(rec->agency, w->agency) != 0)
		snprintf(why, whysz, "it is record %llu of %s",
		    (unsigned long long)rec->seq, rec->agency);
	else if (rec->message_id.len != EHX_MSGID_LEN || memcmp(
	    rec->message_id.data, d->message_id.data, EHX_MSGID_LEN) != 0)
		snprintf(why, whysz, "it answers another request");
	else if (d->envelope_hash.len == 32 && (rec->envelope_hash.len != 32 ||
	    memcmp(rec->envelope_hash.data, d->envelope_hash.data, 32) != 0))
		snprintf(why, whysz, "it holds another envelope");
	else
		ok = true;
	if (rec != NULL)
		ehx__audit_record__free_unpacked(rec, NULL);
	return ok;
}

static void
check_inclusion(struct watch *w, const Ehx__ProofResult *p)
{
	const Ehx__Checkpoint *known = w->state->checkpoint, *cp = p->checkpoint;
	unsigned char path[EHX_MERKLE_MAX_PROOF][EHX_HASH_LEN], leaf[32];
	char why[128], hex[2 * EHX_MSGID_LEN + 1];
	const Ehx__PendingDecision *d = NULL;
	size_t i;

	for (i = 0; i < w->state->n_pending && d == NULL; i++)
		if (w->state->pending[i]->seq == w->incl_seq)
			d = w->state->pending[i];
	if (d == NULL || known == NULL || known->size != w->incl_size)
		return;                 /* asked of another: asked again */
	i--;
	if (!broker_signed(w, cp) || !same_checkpoint(cp, known)) {
		inconsistent(w, "asked for the checkpoint of %llu records this "
		    "agent checked, the broker answered with another",
		    (unsigned long long)known->size);
		return;
	}
	ehx_hex(hex, d->message_id.data, EHX_MSGID_LEN);
	if (!is_decision(w, d, &p->record, why, sizeof(why))) {
		inconsistent(w, "record %llu of the log is not this agency's "
		    "decision on request %s that the broker answered (%s): "
		    "the log lost or changed it", (unsigned long long)d->seq,
		    hex, why);
		drop_pending(w, i);     /* found: the problem names it */
		save(w);
		return;
	}
	ehx_merkle_leaf_hash(p->record.data, p->record.len, leaf);
	if (!proof_path(p->inclusion, p->n_inclusion, path) ||
	    ehx_merkle_verify_inclusion(leaf, d->seq - 1, cp->size,
	    (const unsigned char (*)[EHX_HASH_LEN])path, p->n_inclusion,
	    cp->root.data) != 0) {
		inconsistent(w, "this agency's decision %llu (request %s) is "
		    "not in the log of %llu records the broker signed",
		    (unsigned long long)d->seq, hex,
		    (unsigned long long)cp->size);
		drop_pending(w, i);
		save(w);
		return;
	}
	log_debug("decision %llu is in the audit log", (unsigned long long)
	    d->seq);
	drop_pending(w, i);
	save(w);
}

/* The oldest kept decision a checkpoint we hold covers: ask for it. */
static void
ask_inclusion(struct watch *w, int64_t now)
{
	Ehx__QueryProof qp = EHX__QUERY_PROOF__INIT;
	const Ehx__Checkpoint *known = w->state->checkpoint;

	if (w->incl.busy || known == NULL || now < w->next_incl)
		return;
	for (size_t i = 0; i < w->state->n_pending; i++)
		if (w->state->pending[i]->seq <= known->size) {
			qp.new_size = w->incl_size = known->size;
			qp.seq = w->incl_seq = w->state->pending[i]->seq;
			(void)ask_proof(w, &w->incl, &qp, now);
			return;
		}
}

/* ---- other agencies' agreement ------------------------------------------- */

/* c is another agency's valid cosignature of a log that extends the
 * target; its agency in *who. False (why says) when it is not. */
static bool
agreeing(const struct watch *w, const Ehx__Cosigned *c, const char **who,
    char *why, size_t whysz)
{
	const Ehx__Checkpoint *cp = c->checkpoint;
	const Ehx__Cosignature *cs;
	struct ehx_cert *cert = NULL;
	char reason[128];
	bool ok = false;

	*who = NULL;
	if (cp == NULL || cp->n_cosignatures != 1 || !broker_signed(w, cp)) {
		snprintf(why, whysz, "a checkpoint the broker did not sign");
		return false;
	}
	cs = cp->cosignatures[0];
	*who = cs->agency;
	if (strcmp(cs->agency, w->agency) == 0 ||
	    strcmp(cs->agency, w->broker_id) == 0)
		snprintf(why, whysz, "%s's own", cs->agency);
	else if (ehx_cert_parse(c->certificate.data, c->certificate.len,
	    &cert) != 0 || ehx_ca_verify(w->ca, cert, reason,
	    sizeof(reason)) != 0 || strcmp(ehx_cert_cn(cert), cs->agency) != 0 ||
	    ehx_agency_type_parse(ehx_cert_ou(cert)) < 0 ||
	    cs->signer.len != EHX_FPR_LEN || memcmp(ehx_cert_fpr(cert),
	    cs->signer.data, EHX_FPR_LEN) != 0)
		snprintf(why, whysz, "%s's certificate is not one the "
		    "partnership CA issued to it", cs->agency);
	else if (ehx_cosign_verify(cp, cs, ehx_cert_pubkey(cert)) != 0)
		snprintf(why, whysz, "%s's cosignature does not verify",
		    cs->agency);
	else
		ok = true;
	ehx_cert_free(cert);
	return ok;
}

/* A target not confirmed within the deadline of the broker answering —
 * whatever it answered the agreement checks, or if it answered them at
 * all — is a warning. */
static void
check_unconfirmed(struct watch *w, int64_t now)
{
	if (w->target == NULL || w->quorum == 0 || w->answered_since == 0 ||
	    now < due(w, w->target_since) || w->unconfirmed[0] != '\0')
		return;
	snprintf(w->unconfirmed, sizeof(w->unconfirmed), "AUDIT LOG NOT "
	    "CONFIRMED: %zu of the %u other agencies needed (%s) have "
	    "cosigned a log that extends the %llu records this agent "
	    "checked, in %lld s: the broker may be showing agencies "
	    "different logs (a split view)", w->agreed, w->quorum,
	    w->agreed > 0 ? w->agreed_by : "none",
	    (unsigned long long)w->target->size,
	    (long long)(w->deadline_ms / 1000));
	log_error("%s", w->unconfirmed);
	set_warning(w);
}

static void
check_agreement(struct watch *w, const Ehx__ProofResult *p, int64_t now)
{
	const Ehx__Checkpoint *t = w->target;
	const char *counted[EHX_MAX_COSIGNERS];
	char names[256] = "", why[160];
	size_t n = 0, used = 0;

	if (t == NULL)
		return;
	if (!broker_signed(w, p->checkpoint) ||
	    !same_checkpoint(p->checkpoint, t)) {
		inconsistent(w, "asked for the checkpoint of %llu records this "
		    "agent checked, the broker answered with another",
		    (unsigned long long)t->size);
		return;
	}
	for (size_t i = 0; i < p->n_cosigned; i++) {
		const Ehx__Cosigned *c = p->cosigned[i];
		const char *who;
		bool dup = false;

		if (!agreeing(w, c, &who, why, sizeof(why))) {
			log_warn("a cosignature the broker showed is not "
			    "counted: %s", why);
			continue;
		}
		if (!extends(t, c->checkpoint, c->consistency,
		    c->n_consistency)) {
			inconsistent(w, "split view: %s cosigned a log of %llu "
			    "records that does not extend the log of %llu "
			    "records this agent checked", who,
			    (unsigned long long)c->checkpoint->size,
			    (unsigned long long)t->size);
			return;
		}
		/* Each agency once (only those counted are compared). */
		for (size_t j = 0; j < n && !dup; j++)
			dup = strcmp(counted[j], who) == 0;
		if (dup || n == EHX_MAX_COSIGNERS)
			continue;
		counted[n++] = who;
		if (used < sizeof(names))
			used += (size_t)snprintf(names + used, sizeof(names) -
			    used, "%s%s", n > 1 ? ", " : "", who);
	}
	w->agreed = n;
	snprintf(w->agreed_by, sizeof(w->agreed_by), "%s", names);
	if (n >= w->quorum) {
		Ehx__Checkpoint *copy = copy_checkpoint(t);

		if (copy == NULL)
			return;
		if (w->state->confirmed != NULL)
			ehx__checkpoint__free_unpacked(w->state->confirmed,
			    NULL);
		w->state->confirmed = copy;
		w->state->confirmed_at = now;
		set_state_string(&w->state->confirmed_by, names);
		if (w->unconfirmed[0] != '\0')
			log_info("other agencies agree with this agent's "
			    "audit log again");
		w->unconfirmed[0] = '\0';
		log_debug("checkpoint of %llu records confirmed by %s",
		    (unsigned long long)t->size, names);
		ehx__checkpoint__free_unpacked(w->target, NULL);
		w->target = NULL;
		set_warning(w);         /* saves */
		return;
	}
	check_unconfirmed(w, now);
}

/* Every poll: ask who else has cosigned the checkpoint we aim to confirm
 * (the one we hold, when none is aimed at). */
static void
ask_agreement(struct watch *w, int64_t now)
{
	Ehx__QueryProof qp = EHX__QUERY_PROOF__INIT;

	if (w->quorum == 0 || w->agree.busy || now < w->next_agree ||
	    w->state->checkpoint == NULL)
		return;
	if (w->target == NULL) {
		if ((w->target = copy_checkpoint(w->state->checkpoint)) == NULL)
			return;
		w->target_since = now;
		w->agreed = 0;
		w->agreed_by[0] = '\0';
	}
	w->next_agree = now + w->poll_ms;
	qp.new_size = w->target->size;
	qp.cosigners = EHX_MAX_COSIGNERS;      /* room for ones not counted */
	(void)ask_proof(w, &w->agree, &qp, now);
}

/* ---- replies and timing --------------------------------------------------- */

bool
watch_reply(struct watch *w, const Ehx__Body *b, int64_t now)
{
	struct ireq *q = NULL, *all[] = { &w->proof, &w->cosign, &w->incl,
	    &w->agree };
	int code = 0;

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]) && q == NULL; i++)
		if (all[i]->busy && memcmp(b->in_reply_to.data, all[i]->id,
		    EHX_MSGID_LEN) == 0)
			q = all[i];
	if (q == NULL)
		return false;
	if (b->payload_case == EHX__BODY__PAYLOAD_ERROR && b->error != NULL)
		code = ehx_err_from_wire(b->error->code);
	else if (b->payload_case != (q == &w->cosign ?
	    EHX__BODY__PAYLOAD_ACK : EHX__BODY__PAYLOAD_PROOF))
		code = EHX_ERR_MALFORMED;
	if (code == EHX_ERR_INVALID_FIELD || code == EHX_ERR_NOT_FOUND) {
		/* The broker has no checkpoint as large as one we hold, or
		 * none at all: its log went back. (None yet, before we
		 * hold one, is a new broker.) */
		if (q != &w->cosign && w->state->checkpoint != NULL)
			inconsistent(w, "the broker's log went back from %llu "
			    "records: its newest checkpoint is older than the "
			    "one this agent checked (rewound or replaced)",
			    (unsigned long long)w->state->checkpoint->size);
		else if (q == &w->cosign)
			log_warn("cosignature refused: %s",
			    ehx_errname(code));
	} else if (code != 0) {
		log_warn("the broker refused the agent's %s: %s", q ==
		    &w->cosign ? "cosignature" : "audit proof request",
		    ehx_errname(code));
		if (q == &w->incl)
			w->next_incl = now + RESEND_MS;
	} else if (q == &w->proof)
		check_proof(w, b->proof, now);
	else if (q == &w->incl)
		check_inclusion(w, b->proof);
	else if (q == &w->agree)
		check_agreement(w, b->proof, now);
	ireq_clear(q);
	return true;
}

void
watch_answered(struct watch *w, int64_t now)
{
	if (w->answered_since == 0)
		w->answered_since = now;
}

void
watch_disconnected(struct watch *w)
{
	w->answered_since = 0;
}

static void
tick_one(struct watch *w, struct ireq *q, void *dealer, int64_t now,
    int64_t *next)
{
	if (!q->busy)
		return;
	if (now >= q->deadline) {
		log_warn("the broker did not answer the agent's %s in time",
		    q == &w->cosign ? "cosignature" : "audit proof request");
		ireq_clear(q);
		return;
	}
	if (now >= q->next_send) {
		if (zmq_send(dealer, q->env, q->envlen, ZMQ_DONTWAIT) >= 0)
			q->next_send = now + RESEND_MS;
		else
			q->next_send = now + 250;
	}
	if (q->next_send < *next)
		*next = q->next_send;
	if (q->deadline < *next)
		*next = q->deadline;
}

void
watch_tick(struct watch *w, void *dealer, int64_t now, int64_t *next)
{
	if (w->poll_ms > 0) {
		if (now >= w->next_poll && !w->proof.busy) {
			ask_newest(w, now);
			w->next_poll = now + w->poll_ms;
		}
		if (now >= w->next_deadline) {
			/* Whatever the broker answers, or if it does not. */
			check_withheld(w, now);
			check_unconfirmed(w, now);
			w->next_deadline = now + w->poll_ms;
		}
		if (w->next_deadline < *next)
			*next = w->next_deadline;
		ask_inclusion(w, now);
		ask_agreement(w, now);
		if (w->next_poll < *next)
			*next = w->next_poll;
		if (w->quorum > 0 && w->next_agree < *next)
			*next = w->next_agree;
		if (w->next_incl > now && w->next_incl < *next)
			*next = w->next_incl;
	}
	tick_one(w, &w->proof, dealer, now, next);
	tick_one(w, &w->cosign, dealer, now, next);
	tick_one(w, &w->incl, dealer, now, next);
	tick_one(w, &w->agree, dealer, now, next);
}

const char *
watch_warning(const struct watch *w)
{
	static char buf[800];

	if (w->state == NULL)
		return NULL;
	if (!w->state->consistent)
		snprintf(buf, sizeof(buf), "WARNING: this agent found the "
		    "broker's audit log inconsistent: %s. Tell your "
		    "information governance officer; see `ehx audit "
		    "checkpoint`.", w->state->problem);
	else if (w->state->warning != NULL && w->state->warning[0] != '\0')
		snprintf(buf, sizeof(buf), "WARNING: %s. Tell your "
		    "information governance officer; see `ehx audit "
		    "checkpoint`.", w->state->warning);
	else
		return NULL;
	return buf;
}
