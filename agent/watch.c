/*
 * watch.c — see watch.h.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "ehx/checkpoint.h"
#include "ehx/err.h"
#include "ehx/log.h"
#include "ehx/merkle.h"
#include "ehx/util.h"
#include "ehx/wire.h"
#include "watch.h"

#define STATE_MAX 4096
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
	    ehx_checkpoint_check(w->state->checkpoint) != 0)) {
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
	ireq_clear(&w->proof);
	ireq_clear(&w->cosign);
	w->state = NULL;
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

static bool
same_checkpoint(const Ehx__Checkpoint *a, const Ehx__Checkpoint *b)
{
	return a->size == b->size && a->root.len == b->root.len &&
	    memcmp(a->root.data, b->root.data, a->root.len) == 0;
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
 * the one we hold; check_proof decides. */
static void
ask_newest(struct watch *w, int64_t now)
{
	Ehx__Body body = EHX__BODY__INIT;
	Ehx__QueryProof qp = EHX__QUERY_PROOF__INIT;

	if (w->proof.busy)
		return;                 /* one check at a time */
	qp.old_size = w->state->checkpoint->size;
	qp.new_size = 0;
	body.payload_case = EHX__BODY__PAYLOAD_QUERY_PROOF;
	body.query_proof = &qp;
	(void)ireq_start(w, &w->proof, &body, now);
}

void
watch_seen(struct watch *w, const Ehx__Checkpoint *cp, int64_t now)
{
	const Ehx__Checkpoint *known = w->state->checkpoint;

	if (strcmp(cp->origin, w->broker_id) != 0 ||
	    ehx_checkpoint_verify(cp, ehx_cert_pubkey(w->broker_cert)) != 0) {
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

static void
check_proof(struct watch *w, const Ehx__ProofResult *p, int64_t now)
{
	const Ehx__Checkpoint *known = w->state->checkpoint, *cp = p->checkpoint;
	unsigned char path[EHX_MERKLE_MAX_PROOF][EHX_HASH_LEN];
	size_t i;

	if (cp == NULL || strcmp(cp->origin, w->broker_id) != 0 ||
	    ehx_checkpoint_verify(cp, ehx_cert_pubkey(w->broker_cert)) != 0) {
		inconsistent(w, "the broker answered a proof with a checkpoint "
		    "it did not sign");
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
	if (p->n_consistency > EHX_MERKLE_MAX_PROOF) {
		inconsistent(w, "the consistency proof is too long");
		return;
	}
	for (i = 0; i < p->n_consistency; i++) {
		if (p->consistency[i].len != EHX_HASH_LEN) {
			inconsistent(w, "the consistency proof is malformed");
			return;
		}
		memcpy(path[i], p->consistency[i].data, EHX_HASH_LEN);
	}
	if (ehx_merkle_verify_consistency(known->size, cp->size,
	    known->root.data, cp->root.data,
	    (const unsigned char (*)[EHX_HASH_LEN])path,
	    p->n_consistency) != 0) {
		inconsistent(w, "the broker's log of %llu records does not "
		    "extend the log of %llu records this agent checked: "
		    "records were changed or removed",
		    (unsigned long long)cp->size,
		    (unsigned long long)known->size);
		return;
	}
	adopt(w, cp, now);
}

bool
watch_reply(struct watch *w, const Ehx__Body *b, int64_t now)
{
	struct ireq *q = NULL;

	if (w->proof.busy && memcmp(b->in_reply_to.data, w->proof.id,
	    EHX_MSGID_LEN) == 0)
		q = &w->proof;
	else if (w->cosign.busy && memcmp(b->in_reply_to.data, w->cosign.id,
	    EHX_MSGID_LEN) == 0)
		q = &w->cosign;
	if (q == NULL)
		return false;
	if (b->payload_case == EHX__BODY__PAYLOAD_ERROR && b->error != NULL) {
		int code = ehx_err_from_wire(b->error->code);

		/* The broker has no checkpoint as large as ours, or none at
		 * all: its log went back. */
		if (q == &w->proof && w->state->checkpoint != NULL &&
		    (code == EHX_ERR_INVALID_FIELD || code == EHX_ERR_NOT_FOUND))
			inconsistent(w, "the broker's log went back from %llu "
			    "records: its newest checkpoint is older than the "
			    "one this agent checked (rewound or replaced)",
			    (unsigned long long)w->state->checkpoint->size);
		else
			log_warn("%s refused: %s", q == &w->proof ?
			    "audit proof" : "cosignature", ehx_errname(code));
	} else if (q == &w->proof && b->payload_case ==
	    EHX__BODY__PAYLOAD_PROOF && w->state->checkpoint != NULL)
		check_proof(w, b->proof, now);
	ireq_clear(q);
	return true;
}

static void
tick_one(struct watch *w, struct ireq *q, void *dealer, int64_t now,
    int64_t *next)
{
	if (!q->busy)
		return;
	if (now >= q->deadline) {
		log_warn("the broker did not answer the agent's %s in time",
		    q == &w->proof ? "audit proof request" : "cosignature");
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
	tick_one(w, &w->proof, dealer, now, next);
	tick_one(w, &w->cosign, dealer, now, next);
}

const char *
watch_warning(const struct watch *w)
{
	static char buf[400];

	if (w->state == NULL || w->state->consistent)
		return NULL;
	snprintf(buf, sizeof(buf), "WARNING: this agent found the broker's "
	    "audit log inconsistent: %s. Tell your information governance "
	    "officer; see `ehx audit checkpoint`.", w->state->problem);
	return buf;
}
