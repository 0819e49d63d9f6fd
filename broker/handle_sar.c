/*
 * handle_sar.c — query_sar: everything the broker holds about one child,
 * for a subject access request answered by an IG officer.
 *
 * Every agency's flags in full, except those carrying a withhold marker
 * (disclosure to a parent would not be in the child's interests): those
 * are left out and counted. Then every consent record with its history,
 * and, from the child's audit, every disclosure of the child: each whole
 * picture and subject access answered about it, each right early help
 * list that named it, each agency notified of its flags. Each part has
 * its own share of one message; a cut answer says truncated.
 *
 * Subject access is a partnership function: only the IG officers of the
 * agency types the sharing policy names (subject_access) may ask, and
 * every answer is a disclosure of each other agency's flags it shows, in
 * that agency's disclosures like a whole picture.
 */
#include <stdio.h>
#include <string.h>

#include "consent.h"
#include "ehx/err.h"
#include "ehx/names.h"
#include "ehx/policy.h"
#include "handle.h"
#include "store.h"

#define SAR_FLAG_BUDGET        20000
#define SAR_CONSENT_BUDGET     20000
#define SAR_DISCLOSURE_BUDGET  14000

static int
sar_flags(struct request *rq, Ehx__SarResult *res)
{
	struct ehx_arena *a = rq->b->arena;
	Ehx__AgencyInvolvement *cur = NULL;
	Ehx__StoredFlag *sf, *heap;
	MDB_cursor *c;
	MDB_val k = { EHX_PSEUDONYM_LEN, rq->child }, v;
	size_t used = 0, nflags = 0;
	int rc, r = 0;

	if ((res->involvements = ehx_arena_alloc(a, EHX_MAX_PICTURE_FLAGS *
	    sizeof(*res->involvements))) == NULL ||
	    (rq->disclosed = ehx_arena_alloc(a, EHX_MAX_PICTURE_FLAGS *
	    sizeof(*rq->disclosed))) == NULL)
		return EHX_ERR_NOMEM;
	if ((rc = mdb_cursor_open(rq->txn, rq->b->store.flags, &c)) != 0)
		return store_err(rc);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
	    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (k.mv_size < EHX_PSEUDONYM_LEN ||
		    memcmp(k.mv_data, rq->child, EHX_PSEUDONYM_LEN) != 0)
			break;
		/* Read on the heap; only what is answered is kept in the
		 * arena, however many flags the child has. */
		if ((r = store_read(&ehx__stored_flag__descriptor, NULL, &v,
		    &heap)) != 0)
			break;
		if (heap->flag == NULL) {
			ehx__stored_flag__free_unpacked(heap, NULL);
			r = EHX_ERR_STORAGE;
			break;
		}
		if (heap->flag->withhold || nflags == EHX_MAX_PICTURE_FLAGS ||
		    used + v.mv_size + 64 > SAR_FLAG_BUDGET) {
			if (heap->flag->withhold)
				res->withheld++;
			else
				res->truncated = true;  /* count the withheld */
			ehx__stored_flag__free_unpacked(heap, NULL);
			continue;
		}
		r = store_keep(a, &heap->base, &sf);
		ehx__stored_flag__free_unpacked(heap, NULL);
		if (r != 0)
			break;
		if (cur == NULL || strcmp(cur->agency, sf->agency) != 0) {
			Ehx__FlagView **fl;

			if ((cur = ehx_arena_alloc(a, sizeof(*cur))) == NULL ||
			    (fl = ehx_arena_alloc(a, EHX_MAX_PICTURE_FLAGS *
			    sizeof(*fl))) == NULL) {
				r = EHX_ERR_NOMEM;
				break;
			}
			ehx__agency_involvement__init(cur);
			cur->flags = fl;
			cur->agency = sf->agency;
			cur->agency_type = sf->agency_type;
			res->involvements[res->n_involvements++] = cur;
		}
		cur->flags[cur->n_flags++] = sf->flag;
		nflags++;
		used += v.mv_size + 64;
		/* Shown to the asking agency: a disclosure of its owner's. */
		if (strcmp(sf->agency, rq->agency->id) != 0) {
			if (rq->ndisclosed == 0 || strcmp(rq->disclosed[
			    rq->ndisclosed - 1].owner, sf->agency) != 0) {
				rq->disclosed[rq->ndisclosed].owner =
				    sf->agency;
				rq->disclosed[rq->ndisclosed++].flags = 0;
			}
			rq->disclosed[rq->ndisclosed - 1].flags++;
		}
	}
	mdb_cursor_close(c);
	if (r == 0 && rc != 0 && rc != MDB_NOTFOUND)
		r = store_err(rc);
	return r;
}

/*
 * How an allowed audit record disclosed the child, or NULL: a whole
 * picture, a subject access answer, a list that named it, or (a publish
 * that notified, or a record of one notification kept before issue 16)
 * the agencies told of its flag.
 */
static const char *
disclosed_via(const Ehx__AuditRecord *rec)
{
	static const struct {
		const char *action, *via;
	} via[] = {
		{ "query_picture", "picture" },
		{ "query_sar", "subject_access" },
		{ "early_help_list_entry", "list" },
		{ "notify", "notification" },
		{ "publish_flag", "notification" },
	};

	if (rec->decision != EHX__DECISION__DECISION_ALLOW)
		return NULL;
	for (size_t i = 0; i < sizeof(via) / sizeof(via[0]); i++)
		if (strcmp(rec->action, via[i].action) == 0)
			return strcmp(via[i].action, "publish_flag") == 0 &&
			    rec->n_notified == 0 ? NULL : via[i].via;
	return NULL;
}

/* One more disclosure of the child in res (room is checked before); NULL
 * when out of memory. */
static Ehx__Disclosure *
sar_add(struct ehx_arena *a, Ehx__SarResult *res, size_t max,
    const Ehx__AuditRecord *rec, const char *via)
{
	Ehx__Disclosure *d;

	if (res->n_disclosures == max ||
	    (d = ehx_arena_alloc(a, sizeof(*d))) == NULL)
		return NULL;
	ehx__disclosure__init(d);
	d->seq = rec->seq;
	d->time = rec->time;
	d->to_agency = rec->agency;
	d->to_person = rec->person;
	d->child = rec->child;
	d->basis = rec->basis;
	d->via = (char *)via;
	res->disclosures[res->n_disclosures++] = d;
	return d;
}

/*
 * Every disclosure of the child, from its audit, oldest first. A publish's
 * record gives one for each agency it notified (to that agency, on the
 * basis that allowed telling it: "consent:<id>" or "policy:<basis word>").
 */
static int
sar_disclosures(struct request *rq, Ehx__SarResult *res)
{
	struct ehx_arena *a = rq->b->arena;
	struct store *s = &rq->b->store;
	unsigned char k[EHX_PSEUDONYM_LEN + 8];
	MDB_cursor *c;
	MDB_val key = { sizeof(k), k }, val;
	Ehx__AuditRecord *rec, *heap;
	Ehx__Disclosure *d;
	const char *via;
	size_t used = 0, max = EHX_MAX_AUDIT_PAGE, scanned = 0;
	int rc, r = 0;

	if ((res->disclosures = ehx_arena_alloc(a, max *
	    sizeof(*res->disclosures))) == NULL)
		return EHX_ERR_NOMEM;
	memcpy(k, rq->child, EHX_PSEUDONYM_LEN);
	memset(k + EHX_PSEUDONYM_LEN, 0, 8);
	if ((rc = mdb_cursor_open(rq->txn, s->audit_child, &c)) != 0)
		return store_err(rc);
	for (rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE); rc == 0;
	    rc = mdb_cursor_get(c, &key, &val, MDB_NEXT)) {
		size_t n;

		if (key.mv_size != sizeof(k) ||
		    memcmp(key.mv_data, rq->child, EHX_PSEUDONYM_LEN) != 0)
			break;
		if (++scanned > EHX_MAX_AUDIT_SCAN) {
			res->truncated = true;
			break;
		}
		if ((r = store_audit_get(s, rq->txn, get_be64((unsigned char *)
		    key.mv_data + EHX_PSEUDONYM_LEN), &val)) != 0)
			break;
		/* Read on the heap: a child's audit may be long, and only
		 * its disclosures are answered. */
		if ((r = store_read(&ehx__audit_record__descriptor, NULL, &val,
		    &heap)) != 0)
			break;
		if ((via = disclosed_via(heap)) == NULL) {
			ehx__audit_record__free_unpacked(heap, NULL);
			continue;
		}
		n = heap->n_notified > 0 ? heap->n_notified : 1;
		if (res->n_disclosures + n > max ||
		    used + val.mv_size > SAR_DISCLOSURE_BUDGET) {
			ehx__audit_record__free_unpacked(heap, NULL);
			res->truncated = true;
			break;
		}
		r = store_keep(a, &heap->base, &rec);
		ehx__audit_record__free_unpacked(heap, NULL);
		if (r != 0)
			break;
		used += val.mv_size;
		if (rec->n_notified == 0) {
			if (sar_add(a, res, max, rec, via) == NULL)
				r = EHX_ERR_NOMEM;
			if (r != 0)
				break;
			continue;
		}
		for (size_t i = 0; i < rec->n_notified && r == 0; i++) {
			const Ehx__Notified *nd = rec->notified[i];
			char *basis;

			if ((d = sar_add(a, res, max, rec, via)) == NULL ||
			    (basis = ehx_arena_alloc(a, 64 +
			    strlen(nd->consent_id))) == NULL) {
				r = EHX_ERR_NOMEM;
				break;
			}
			if (nd->consent_id[0] != '\0')
				sprintf(basis, "consent:%s", nd->consent_id);
			else
				sprintf(basis, "policy:%s",
				    ehx_basis_name(nd->basis));
			d->to_agency = nd->agency;
			d->to_person = NULL;
			d->basis = basis;
			d->flags = 1;
		}
		if (r != 0)
			break;
	}
	mdb_cursor_close(c);
	if (r == 0 && rc != 0 && rc != MDB_NOTFOUND)
		r = store_err(rc);
	return r;
}

int
handle_query_sar(struct request *rq, char *why, size_t whysz)
{
	Ehx__SarResult *res;
	Ehx__ConsentResult *cr;
	int r;

	if (!ehx_policy_subject_access(&rq->b->policy, rq->agency->type)) {
		snprintf(why, whysz, "subject access is answered for the "
		    "partnership by the IG officers the sharing policy names "
		    "(subject_access), not %s's",
		    ehx_agency_type_name(rq->agency->type));
		return EHX_ERR_NOT_PERMITTED;
	}
	if ((res = ehx_arena_alloc(rq->b->arena, sizeof(*res))) == NULL)
		return EHX_ERR_NOMEM;
	ehx__sar_result__init(res);
	res->child.data = rq->child;
	res->child.len = EHX_PSEUDONYM_LEN;
	if ((r = sar_flags(rq, res)) != 0 ||
	    (r = consent_list(rq, true, true, SAR_CONSENT_BUDGET, &cr)) != 0 ||
	    (r = sar_disclosures(rq, res)) != 0)
		return r;
	res->consents = cr->records;
	res->n_consents = cr->n_records;
	res->history = cr->history;
	res->n_history = cr->n_history;
	res->truncated = res->truncated || cr->truncated;
	snprintf(rq->basis, sizeof(rq->basis), "subject-access");
	rq->reply.payload_case = EHX__BODY__PAYLOAD_SAR;
	rq->reply.sar = res;
	return 0;
}
