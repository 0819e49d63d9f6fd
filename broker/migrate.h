/*
 * migrate.h — the layout of the broker's store, and bringing an older
 * store forward (migrate.c). store.c calls these as it opens the store.
 */
#ifndef EHX_BROKER_MIGRATE_H
#define EHX_BROKER_MIGRATE_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#include <lmdb.h>

#define MIGRATE_LAYOUT 6        /* what a new store is stamped with */
#define MIGRATE_OLDEST 5        /* the oldest this broker brings forward */

/*
 * The layout the store in txn says it has (meta's "format"), into
 * *layout: MIGRATE_OLDEST..MIGRATE_LAYOUT, or MIGRATE_LAYOUT for a new,
 * empty store (stamped unless readonly). 0, or -1 with a sentence in err
 * for a layout this broker does not read, or an unstamped store with
 * audit records (made before stamping).
 */
int migrate_check(MDB_txn *txn, MDB_dbi meta, MDB_dbi audit, bool readonly,
    uint64_t *layout, char *err, size_t errsz);

/*
 * Bring a store of layout (from migrate_check) to MIGRATE_LAYOUT, in txn,
 * step by step, and stamp it; nothing if it is there already. The
 * databases a step makes are made by store_open before (each database
 * names the layout that brought it). 0, or -1 with a sentence in err.
 */
int migrate_run(MDB_txn *txn, MDB_dbi meta, uint64_t layout, char *err,
    size_t errsz);

#endif
