/*
 * broker.h — the broker's state: its configuration, registry, keys, store,
 * sharing policy, the newest checkpoint, its sockets, the notifications
 * waiting to be pushed, and the group commit in progress. One thread (the
 * serving loop, main.c) owns it; see docs/ARCHITECTURE.md for who does
 * what to it.
 */
#ifndef EHX_BROKER_H
#define EHX_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lmdb.h>

#include "config.h"
#include "ehx.pb-c.h"
#include "ehx/arena.h"
#include "ehx/crypto.h"
#include "ehx/limits.h"
#include "ehx/policy.h"
#include "registry.h"
#include "store.h"

struct broker {
	struct broker_config cfg;
	struct registry reg;
	struct ehx_ca *ca;
	struct ehx_crl *crl;            /* NULL: no CRL configured */
	struct ehx_signer *signer;
	struct ehx_pseudokey *pkey;
	struct ehx_pseudokey *mkey;     /* matching tokens; NULL: none */
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
	/* Publishes' notifications kept, not yet emitted (notify_flush);
	 * true at start, for those a stop left. */
	bool plans_pending;
	int64_t flush_due;
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

/*
 * A dishonest broker, for the tests of the agents' watch (issue 16): only
 * a test build (make's ehx-broker-faulty, -DEHX_FAULTS) has one, and it
 * behaves so when EHX_FAULT names the fault. A release broker never does.
 *   no_checkpoints   sign no checkpoint and attach none to replies
 *   truncate_export  export only the first half of the log, as if it
 *                    were all of it
 *   ignore_checks    answer no query_proof (the agents' checks) at all
 *   unnamed_decisions  name no decision's audit record in a reply
 *   no_flush         never sign and queue the notifications publishes
 *                    kept (a broker stopped before it got round to it)
 */
#ifdef EHX_FAULTS
bool broker_fault(const char *name);
#define FAULT(name) broker_fault(name)
#else
#define FAULT(name) false
#endif

#endif
