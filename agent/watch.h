/*
 * watch.h — the agent's watch over the broker's audit log.
 *
 * Every broker reply carries the broker's newest signed checkpoint (a
 * retried request's stored reply, the one newest when it was first
 * answered). The agent keeps the newest one it has checked (in its state
 * file, so a restart forgets nothing). For a checkpoint of another size it
 * asks the broker for its newest checkpoint with a consistency proof from
 * its own; when the proof holds it adopts the new checkpoint and cosigns
 * it. A newest checkpoint smaller than ours (a rewound log), one of the
 * same size with another root (a fork), or a proof that does not hold
 * makes the watch inconsistent: the agent logs it as an error, keeps the
 * problem in its state file, and every local answer carries a warning
 * until an operator has looked into it and removed the state file.
 */
#ifndef EHX_AGENT_WATCH_H
#define EHX_AGENT_WATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "ehx.pb-c.h"
#include "ehx/crypto.h"
#include "ehx/limits.h"

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
	int64_t timeout_ms;
	Ehx__AgentState *state;         /* malloc'd; state->checkpoint may be NULL */
	struct ireq proof, cosign;
};

/* Load (or start) the state file path. 0, or an error with err set. */
int watch_open(struct watch *w, const char *path, char *err, size_t errsz);
void watch_free(struct watch *w);

/* A verified broker reply carried cp: check it against what we know. */
void watch_seen(struct watch *w, const Ehx__Checkpoint *cp, int64_t now);

/* A verified broker reply: true when it answers one of the watch's own
 * requests (and was handled here). */
bool watch_reply(struct watch *w, const Ehx__Body *b, int64_t now);

/* Send or re-send the watch's requests on dealer; lower *next to when it
 * next needs to run. */
void watch_tick(struct watch *w, void *dealer, int64_t now, int64_t *next);

/* A sentence for every local answer while the log is inconsistent. */
const char *watch_warning(const struct watch *w);

#endif
