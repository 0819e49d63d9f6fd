/*
 * migrate.c — the store's layout and its migrations (migrate.h). A store
 * is stamped with its layout (meta "format", 8 bytes big-endian). A
 * broker reads the layouts from MIGRATE_OLDEST to MIGRATE_LAYOUT, and
 * brings an older one forward the first time it opens it for writing, in
 * the same transaction as the open: all or nothing. Any other layout is
 * refused rather than misread. Layouts before 5 were never released.
 *
 * The steps, each from the layout before:
 *
 *   6  the identity databases (idnode, idindex, idmember) and the
 *      agencies' relationships with children (involvement) are made,
 *      empty (store_open makes them). Every child stored before is a
 *      child named by an NHS number, whose key stays its pseudonym:
 *      nothing stored is rewritten, and the audit log verifies as before.
 *
 * tests/unit/test_store.c (test_migrate_5_to_6) makes a store of the old
 * layout, with a record in it, and opens it read-only and for writing.
 */
#include <stdio.h>

#include "migrate.h"

static const MDB_val format_key = { 6, (void *)"format" };

/* One step: what it changes beyond the databases store_open makes. */
struct step {
	uint64_t to;
	int (*run)(MDB_txn *txn, char *err, size_t errsz);
};

static const struct step steps[] = {
	{ 6, NULL },            /* new databases only */
};

static int
stamp(MDB_txn *txn, MDB_dbi meta, uint64_t layout, char *err, size_t errsz)
{
	unsigned char v[8];
	MDB_val d = { sizeof(v), v };
	int rc;

	for (int i = 7; i >= 0; i--, layout >>= 8)
		v[i] = (unsigned char)layout;
	if ((rc = mdb_put(txn, meta, (MDB_val *)&format_key, &d, 0)) != 0) {
		snprintf(err, errsz, "%s", mdb_strerror(rc));
		return -1;
	}
	return 0;
}

int
migrate_check(MDB_txn *txn, MDB_dbi meta, MDB_dbi audit, bool readonly,
    uint64_t *layout, char *err, size_t errsz)
{
	MDB_val d, any;
	MDB_cursor *c;
	bool empty = true;
	int rc;

	*layout = 0;
	if ((rc = mdb_get(txn, meta, (MDB_val *)&format_key, &d)) == 0) {
		const unsigned char *p = d.mv_data;

		for (size_t i = 0; d.mv_size == 8 && i < 8; i++)
			*layout = *layout << 8 | p[i];
		if (*layout >= MIGRATE_OLDEST && *layout <= MIGRATE_LAYOUT)
			return 0;
		snprintf(err, errsz, "this store has layout %llu; this "
		    "ehx-broker reads layouts %d to %d only",
		    (unsigned long long)*layout, MIGRATE_OLDEST,
		    MIGRATE_LAYOUT);
		return -1;
	}
	if (rc != MDB_NOTFOUND) {
		snprintf(err, errsz, "%s", mdb_strerror(rc));
		return -1;
	}
	if (mdb_cursor_open(txn, audit, &c) == 0) {
		empty = mdb_cursor_get(c, &any, &d, MDB_FIRST) != 0;
		mdb_cursor_close(c);
	}
	if (!empty) {
		snprintf(err, errsz, "this store was made by an earlier "
		    "ehx-broker (layout 1) and this one reads layouts %d to %d "
		    "only; there is no migration from layout 1: start a new "
		    "data_dir (keep the old one for its audit log)",
		    MIGRATE_OLDEST, MIGRATE_LAYOUT);
		return -1;
	}
	*layout = MIGRATE_LAYOUT;
	return readonly ? 0 : stamp(txn, meta, MIGRATE_LAYOUT, err, errsz);
}

int
migrate_run(MDB_txn *txn, MDB_dbi meta, uint64_t layout, char *err,
    size_t errsz)
{
	if (layout >= MIGRATE_LAYOUT)
		return 0;
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
		if (steps[i].to > layout && steps[i].run != NULL &&
		    steps[i].run(txn, err, errsz) != 0)
			return -1;
	return stamp(txn, meta, MIGRATE_LAYOUT, err, errsz);
}
