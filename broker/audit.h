/*
 * audit.h — what the pipeline and the serving loop ask of the audit log
 * beyond appending a record (audit.c): the indexes a decision leaves
 * (disclosures, break-glass alerts) and the signed checkpoints.
 */
#ifndef EHX_BROKER_AUDIT_H
#define EHX_BROKER_AUDIT_H

#include <stdbool.h>
#include <stdint.h>

#include <lmdb.h>

#include "broker.h"
#include "request.h"

/*
 * After rq's audit record was appended as seq (in txn): index what the
 * decision disclosed and raise a break-glass alert. 0 or a storage error.
 */
int audit_side_records(struct request *rq, MDB_txn *txn, uint64_t seq);

/*
 * Sign a checkpoint of the audit log in txn when one is due: every
 * checkpoint_records records, or when `timed` and the log grew since the
 * last. *made is set when one was stored; the caller commits, then calls
 * checkpoint_adopt. 0 or an error.
 */
int checkpoint_maybe(struct broker *b, MDB_txn *txn, bool timed, bool *made);

/* After the commit: make the newest stored checkpoint the one replies carry. */
int checkpoint_adopt(struct broker *b);
/* The same, read in txn (a write transaction still open: a group commit). */
int checkpoint_adopt_in(struct broker *b, MDB_txn *txn);

/* The timer: sign a checkpoint when checkpoint_seconds have passed. */
void checkpoint_tick(struct broker *b);

#endif
