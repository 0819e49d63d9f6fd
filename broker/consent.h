/*
 * consent.h — a child's consent records as they stand (consent.c): which
 * are active, which cover an agency for a purpose, and their history. The
 * consent handlers, the whole picture, subject access and notifications
 * all decide with these.
 */
#ifndef EHX_BROKER_CONSENT_H
#define EHX_BROKER_CONSENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ehx.pb-c.h"
#include "ehx/arena.h"
#include "registry.h"
#include "request.h"

/*
 * Call fn for each consent record of rq's child, as it stands now (its
 * withdrawal merged in), until fn returns nonzero (>0 stops quietly). The
 * record is freed after fn returns.
 */
int consent_each(struct request *rq, int (*fn)(struct request *,
    const Ehx__ConsentRecord *, void *), void *arg);

/*
 * Whether agency a may see c: it recorded it, c's scope names it, or c's
 * scope names its type and a is involved with the child (consent_involved).
 */
bool consent_concerns(const Ehx__ConsentRecord *c, const struct agency *a,
    bool involved);

/* Whether c's scope names agency a by its id. */
bool consent_names(const Ehx__ConsentRecord *c, const struct agency *a);

/* Whether agency a holds an open flag on rq's child (read in rq->txn):
 * only then does a consent scoped to a's type cover a. 0 or an error. */
int consent_involved(struct request *rq, const struct agency *a, bool *yes);

/* c's state changes up to now (recorded, withdrawn, expired) into ev
 * (at most 3), allocated in arena a; returns how many, or -1 (no memory). */
int consent_events(const Ehx__ConsentRecord *c, int64_t now,
    struct ehx_arena *a, Ehx__ConsentEvent **ev);

/* The child's consent records (all of them, or those concerning rq's
 * agency), with their history when asked, bounded to one answer. */
int consent_list(struct request *rq, bool history, bool all, size_t budget,
    Ehx__ConsentResult **out);

/* The active consent that covers an agency, and who recorded it when. */
struct consent_found {
	char id[32];
	char agency[EHX_MAX_ID + 1];            /* recorded by */
	char user_id[EHX_MAX_USER_ID + 1];
	int64_t recorded_at;
	char evidence_ref[EHX_MAX_EVIDENCE_REF + 1];
};

/* The active consent of rq's child that covers who for purpose (the one
 * that expires last): 0 and *out, or EHX_ERR_NO_CONSENT. */
int consent_find(struct request *rq, const struct agency *who, int purpose,
    struct consent_found *out);

/* The active consent of rq's child that covers rq's agency for purpose, if
 * any: 0 and its id in id_out, or EHX_ERR_NO_CONSENT. */
int consent_find_active(struct request *rq, int purpose, char *id_out,
    size_t idsz);
/* The same for another agency (a notification's recipient). */
int consent_find_active_for(struct request *rq, const struct agency *who,
    int purpose, char *id_out, size_t idsz);

#endif
