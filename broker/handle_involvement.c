/*
 * handle_involvement.c — record_involvement: that an agency serves a
 * child — a school that has the child on its roll, a GP practice that
 * registers them, a health visitor's or school nurse's caseload, a
 * household's tenancy. These universal (level 1) involvements are what
 * earn an agency notifications about a child (notify.c), beside its own
 * flags: the school hears of the police's domestic abuse flag because
 * the child is on its roll, not because it made up a flag.
 *
 * One involvement of each kind per agency and child, kept as it was last
 * recorded; recording it again as it stands changes nothing (a nightly
 * roll), an end date ends it. Each kind belongs to the agency types that
 * hold such a relationship.
 */
#include <stdio.h>
#include <string.h>

#include "ehx/err.h"
#include "ehx/names.h"
#include "handle.h"
#include "store.h"

/* The agency types that may record each kind (bit 1 << type). */
static unsigned
kind_types(int kind)
{
	switch (kind) {
	case EHX__INVOLVEMENT_KIND__INVOLVEMENT_KIND_ENROLLED:
		return 1u << EHX__AGENCY_TYPE__AGENCY_TYPE_SCHOOL;
	case EHX__INVOLVEMENT_KIND__INVOLVEMENT_KIND_REGISTERED:
	case EHX__INVOLVEMENT_KIND__INVOLVEMENT_KIND_CASELOAD:
		return 1u << EHX__AGENCY_TYPE__AGENCY_TYPE_HEALTH;
	case EHX__INVOLVEMENT_KIND__INVOLVEMENT_KIND_TENANCY:
		return 1u << EHX__AGENCY_TYPE__AGENCY_TYPE_HOUSING;
	default:
		return 0;
	}
}

static bool
same_text(const char *a, const char *b)
{
	return strcmp(a != NULL ? a : "", b != NULL ? b : "") == 0;
}

int
handle_record_involvement(struct request *rq, char *why, size_t whysz)
{
	const Ehx__RecordInvolvement *m = rq->body->record_involvement;
	Ehx__StoredInvolvement si = EHX__STORED_INVOLVEMENT__INIT, *old = NULL;
	unsigned char key[STORE_KEY_MAX], node[EHX_PSEUDONYM_LEN];
	size_t n = strlen(rq->agency->id), klen;
	MDB_val k, v;
	int rc, r;

	if (!(kind_types(m->kind) & (1u << rq->agency->type))) {
		snprintf(why, whysz, "%s agencies do not record a child as %s",
		    ehx_agency_type_name(rq->agency->type),
		    ehx_involvement_kind_name(m->kind));
		return EHX_ERR_NOT_PERMITTED;
	}
	if ((r = request_child(rq, m->child, node, why, whysz)) != 0)
		return r;
	memcpy(key, rq->child, EHX_PSEUDONYM_LEN);
	memcpy(key + EHX_PSEUDONYM_LEN, rq->agency->id, n);
	key[EHX_PSEUDONYM_LEN + n] = '\0';
	key[EHX_PSEUDONYM_LEN + n + 1] = (unsigned char)m->kind;
	klen = EHX_PSEUDONYM_LEN + n + 2;
	k = (MDB_val){ klen, key };
	if ((rc = mdb_get(rq->txn, rq->b->store.involvement, &k, &v)) == 0) {
		if ((r = store_read(&ehx__stored_involvement__descriptor,
		    rq->b->arena, &v, &old)) != 0)
			return r;
	} else if (rc != MDB_NOTFOUND)
		return store_err(rc);
	if ((r = request_ack(rq, ehx_involvement_kind_name(m->kind))) != 0)
		return r;
	/* the earlier start is kept: a roll loaded nightly says "from
	 * today" of a pupil on roll since September */
	si.starts_on = m->starts_on;
	if (old != NULL && old->starts_on != NULL &&
	    strcmp(old->starts_on, m->starts_on) < 0)
		si.starts_on = old->starts_on;
	if (old != NULL && same_text(old->starts_on, si.starts_on) &&
	    same_text(old->ends_on, m->ends_on) &&
	    (m->child == NULL || rq->child_known)) {
		rq->reply.ack->unchanged = true;
		return 0;
	}
	si.kind = m->kind;
	si.ends_on = m->ends_on;
	si.origin.data = node;
	si.origin.len = EHX_PSEUDONYM_LEN;
	si.source_message = rq->body->message_id;
	si.recorded_at = rq->now;
	return store_put_msg(rq->txn, rq->b->store.involvement, key, klen,
	    &si.base, rq->b->arena);
}
