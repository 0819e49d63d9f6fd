/*
 * notify.h — notifications (notify.c): a publish plans whom to tell and
 * keeps the plan with its audit record; a later step that many publishes
 * share signs and queues them (so that nothing in the publish's reply,
 * or its timing, depends on who else is involved), and the serving loop
 * pushes them to connected agents.
 */
#ifndef EHX_BROKER_NOTIFY_H
#define EHX_BROKER_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

#include <lmdb.h>

#include "broker.h"
#include "ehx.pb-c.h"
#include "registry.h"
#include "request.h"
#include "store.h"

/* How long after a publish its notifications are signed and queued, all
 * together (notify_flush): 100 to 300 ms, 200 on average. */
#define NOTIFY_FLUSH_MS 200

/* A notification planned by a publish (notify.c). */
struct notify_plan {
	const struct agency *to;
	int basis;                      /* LawfulBasis */
	char consent_id[32];            /* when the basis is consent */
};

/*
 * In handle_publish_flag, within rq->txn: decide whether the change from
 * old (NULL: none) to now is news (new, reopened, level changed) and whom
 * to tell; fills rq->notify. 0 or an EHX_ERR_*.
 */
int notify_plan(struct request *rq, const Ehx__FlagView *old,
    const Ehx__FlagView *now);
/* Before the publish's audit record, in txn: number each planned
 * notification in its agency's queue and list them in rq->notified for
 * that record. */
int notify_defer(struct request *rq, MDB_txn *txn);
/* After that record was appended as record: keep the plan (sealed: it
 * names the child), even one that tells nobody, so that every publish
 * writes alike. Sets b->plans_pending. */
int notify_keep(struct request *rq, MDB_txn *txn, uint64_t record);
/* In txn: sign, seal and queue every kept plan's notifications (their
 * envelopes go to b->push), index each as a disclosure of the
 * publisher's flag, and drop the plans. The serving loop calls it on a
 * timer; a fetch and a disclosures query call it first, in their own
 * transaction. */
int notify_flush(struct broker *b, MDB_txn *txn);
/* The serving loop's timer: notify_flush in a transaction of its own,
 * committed; then b->push holds what to push. Nothing kept is lost on a
 * failure (0 or the error; tried again at the next tick). */
int notify_flush_now(struct broker *b);
/* Forget (free) pushes queued after mark: their transaction failed. */
void notify_push_drop(struct broker *b, size_t mark);
/* The last notification number given to agency (0: none yet). */
int notify_last(struct store *s, MDB_txn *txn, const char *agency,
    uint64_t *last);

#endif
