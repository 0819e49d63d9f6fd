/*
 * notify.h — notifications (notify.c): a publish plans whom to tell, the
 * pipeline emits them with the publish's audit record, and the serving
 * loop pushes them to connected agents.
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
/* Before the publish's audit record, in txn: number, sign, seal and queue
 * each planned notification (the signed envelopes go to b->push), and
 * list them in rq->notified for that record. */
int notify_emit(struct request *rq, MDB_txn *txn);
/* After that record was appended as seq: each notification is a
 * disclosure of the publisher's flag to the notified agency. */
int notify_disclose(struct request *rq, MDB_txn *txn, uint64_t seq);
/* Forget (free) pushes queued after mark: their transaction failed. */
void notify_push_drop(struct broker *b, size_t mark);
/* The last notification number given to agency (0: none yet). */
int notify_last(struct store *s, MDB_txn *txn, const char *agency,
    uint64_t *last);

#endif
