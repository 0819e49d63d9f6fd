/*
 * watch.h — the agent's watch over the broker's audit log.
 *
 * The agent keeps the newest checkpoint it has checked (in its state file,
 * so a restart forgets nothing) and holds the broker to it in four ways
 * (docs/PROTOCOL.md §14.4):
 *
 *  - Consistency. A checkpoint a reply carries, and the broker's newest,
 *    which the agent asks for every audit_poll_seconds whether or not
 *    replies carry one, must extend the one it holds (an RFC 9162
 *    consistency proof); then it adopts and cosigns it.
 *  - Its own decisions. A reply names the audit record of its decision
 *    (Body.audit_seq). The agent keeps every break-glass decision and a
 *    sample of the others (one a poll), and once a checkpoint holds one it
 *    asks for that record with an inclusion proof: the record must be
 *    this agency's, for that request.
 *  - Coverage. A decision the broker has not put under a checkpoint
 *    within audit_deadline_seconds of answering is withheld.
 *  - Agreement. cosign_quorum other agencies must have cosigned a
 *    checkpoint that extends one this agent checked, within the deadline:
 *    else the broker may be showing agencies different logs.
 *
 * A proof that fails (a rewound, forked or changed log; a decision not in
 * it) makes the watch inconsistent: logged as an error, kept in the state
 * file, a warning on every local answer until an operator has looked into
 * it and moved the state file aside. A deadline missed (withheld,
 * unconfirmed) is a warning that lasts while it is so.
 */
#ifndef EHX_AGENT_WATCH_H
#define EHX_AGENT_WATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "ehx.pb-c.h"
#include "ehx/crypto.h"
#include "ehx/limits.h"

/* Decisions kept to check; more drop the oldest not a break-glass. */
#define WATCH_MAX_PENDING EHX_MAX_PENDING_DECISIONS

/* One request the agent makes on its own behalf. */
struct ireq {
	bool busy;
	unsigned char id[EHX_MSGID_LEN];
	unsigned char *env;
	size_t envlen;
	int64_t deadline, next_send;
};

struct watch {
	char path[1024];                /* the state file */
	const char *agency, *broker_id;
	const struct ehx_cert *broker_cert;
	const struct ehx_signer *signer;
	const struct ehx_ca *ca;        /* for other agencies' certificates */
	int64_t timeout_ms;
	int64_t poll_ms;                /* 0: pull nothing, sample nothing */
	int64_t deadline_ms;            /* 0: no deadlines */
	unsigned quorum;                /* 0: no agreement asked for */
	Ehx__AgentState *state;         /* malloc'd; state->checkpoint may be NULL */
	struct ireq proof, cosign, incl, agree;
	uint64_t proof_from;            /* the size proof asked from (0: none) */
	uint64_t incl_seq, incl_size;   /* the decision incl asks about, in */
	Ehx__Checkpoint *target;        /* the checkpoint agree is about */
	int64_t target_since;
	int64_t next_poll, next_incl, next_agree, next_deadline;
	int64_t answered_since;         /* answered without a break since */
	int64_t last_sample;            /* the last decision kept, not glass */
	char withheld[300], unconfirmed[300];
	size_t agreed;                  /* how many agreed at the last answer */
	char agreed_by[256];            /* who */
};

/* Load (or start) the state file path. 0, or an error with err set. */
int watch_open(struct watch *w, const char *path, char *err, size_t errsz);
void watch_free(struct watch *w);

/* A verified broker reply carried cp: check it against what we know. */
void watch_seen(struct watch *w, const Ehx__Checkpoint *cp, int64_t now);

/* A verified broker reply to one of this agency's requests: keep its
 * decision to check (every break-glass; others one a poll). env_hash is
 * SHA-256 of the envelope sent, or NULL when not known. */
void watch_decision(struct watch *w, const Ehx__Body *reply,
    const unsigned char *env_hash, bool break_glass, int64_t now);

/* A verified broker reply: true when it answers one of the watch's own
 * requests (and was handled here). */
bool watch_reply(struct watch *w, const Ehx__Body *b, int64_t now);

/* Any verified reply from the broker: it is answering. Deadlines count
 * only time in which it answers. */
void watch_answered(struct watch *w, int64_t now);

/* The connection to the broker dropped: deadlines count from the next
 * answer. */
void watch_disconnected(struct watch *w);

/* Send or re-send the watch's requests on dealer; lower *next to when it
 * next needs to run. */
void watch_tick(struct watch *w, void *dealer, int64_t now, int64_t *next);

/* A sentence for every local answer while the log is inconsistent, or a
 * check is overdue; NULL when all is well. */
const char *watch_warning(const struct watch *w);

#endif
