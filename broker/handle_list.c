/*
 * handle_list.c — query_early_help_list: a locality's "right early help
 * list" for an Information Officer (DOMAIN.md): the children known to two
 * or more agencies with open flags, or the children whose open flags meet
 * at least two of the six Troubled Families headline criteria
 * (ehx_family_criteria).
 *
 * A list names children nobody was asked about, so it never rests on
 * consent: only on the lawful basis the sharing policy names for it
 * ([list NAME] basis), and only for the agency types the policy names
 * there. The answer's basis is "policy:ID:BASIS"; the request's audit
 * record carries it, and so does one further record for each child the
 * answer names (action "early_help_list_entry", that child's pseudonym),
 * so that an audit search or a subject access request for a child shows
 * each list it appeared on.
 *
 * What a list shows of a child is its NHS number, the agencies with an
 * open flag, the highest open level and the criteria met: enough to
 * decide whom to look at, and no category, note or contact (the whole
 * picture, on its own basis, is the way to those). Children are read in
 * pseudonym order from the locality's index; one answer examines at most
 * EHX_MAX_AUDIT_SCAN children and holds at most limit, and next says where
 * to go on.
 *
 * EHX knows children, not households: a "family" here is the child's own
 * flags. Linking brothers and sisters would need a family identifier the
 * partnership does not share.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ehx/crypto.h"
#include "ehx/err.h"
#include "ehx/names.h"
#include "ehx/nhs.h"
#include "handle.h"
#include "store.h"

#define LIST_BUDGET (EHX_MAX_BODY - 4096)
#define LIST_AGENCIES 32                /* agencies named for one child */

/* What one child's open flags show (agency ids copied: nothing of it
 * points into the store or the arena). */
struct child_view {
	char agencies[LIST_AGENCIES][EHX_MAX_ID + 1];
	size_t nagencies;
	unsigned level;
	unsigned criteria;              /* bit (1 << FamilyCriterion) */
};

/* One child's open flags. Each flag is unpacked on the heap and freed at
 * once: a page reads up to EHX_MAX_AUDIT_SCAN children, and the request's
 * arena is kept for the answer. */
static int
read_child(MDB_cursor *fc, const unsigned char *child, struct child_view *cv)
{
	MDB_val k = { EHX_PSEUDONYM_LEN, (void *)child }, v;
	int rc;

	memset(cv, 0, sizeof(*cv));
	for (rc = mdb_cursor_get(fc, &k, &v, MDB_SET_RANGE); rc == 0;
	    rc = mdb_cursor_get(fc, &k, &v, MDB_NEXT)) {
		Ehx__StoredFlag *sf;
		bool known = false;

		if (k.mv_size < EHX_PSEUDONYM_LEN ||
		    memcmp(k.mv_data, child, EHX_PSEUDONYM_LEN) != 0)
			break;
		if ((rc = store_read(&ehx__stored_flag__descriptor, NULL, &v,
		    &sf)) != 0)
			return rc;
		if (sf->flag == NULL) {
			ehx__stored_flag__free_unpacked(sf, NULL);
			return EHX_ERR_STORAGE;
		}
		if (sf->flag->status == EHX__FLAG_STATUS__FLAG_STATUS_OPEN) {
			if (sf->flag->level > cv->level && sf->flag->level <= 4)
				cv->level = sf->flag->level;
			cv->criteria |= ehx_family_criteria(sf->flag->category,
			    sf->flag->level);
			for (size_t i = 0; i < cv->nagencies && !known; i++)
				known = strcmp(cv->agencies[i], sf->agency) == 0;
			if (!known && cv->nagencies < LIST_AGENCIES &&
			    strlen(sf->agency) <= EHX_MAX_ID)
				snprintf(cv->agencies[cv->nagencies++],
				    EHX_MAX_ID + 1, "%s", sf->agency);
		}
		ehx__stored_flag__free_unpacked(sf, NULL);
	}
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : store_err(rc);
}

/* One further audit record: this child was named in the answer. */
static int
audit_entry(struct request *rq, const unsigned char *child)
{
	Ehx__AuditRecord rec = EHX__AUDIT_RECORD__INIT;

	rec.time = rq->now;
	rec.agency = (char *)rq->conn->id;
	rec.person = rq->body->person;
	rec.role = rq->body->person != NULL ? rq->body->person->role : 0;
	rec.action = (char *)"early_help_list_entry";
	rec.child.data = (unsigned char *)child;
	rec.child.len = EHX_PSEUDONYM_LEN;
	rec.decision = EHX__DECISION__DECISION_ALLOW;
	rec.basis = rq->basis;
	rec.message_id = rq->body->message_id;
	rec.envelope_hash.data = rq->envelope_hash;
	rec.envelope_hash.len = sizeof(rq->envelope_hash);
	return store_audit_append(&rq->b->store, rq->txn, &rec);
}

/* The child's NHS number, unsealed into the arena: empty for a child
 * the agencies named without one (PROTOCOL §10.6). */
static char *
child_nhs(struct request *rq, const unsigned char *child, const MDB_val *v)
{
	unsigned char *plain = NULL;
	size_t n = 0;
	char *out = NULL;

	if (ehx_evidence_open(rq->b->pkey, child, v->mv_data, v->mv_size,
	    &plain, &n) == 0 && (n == EHX_NHS_LEN || n == 0) &&
	    (out = ehx_arena_alloc(rq->b->arena, n + 1)) != NULL) {
		memcpy(out, plain, n);
		out[n] = '\0';
		if (n > 0 && !ehx_nhs_valid(out))
			out = NULL;
	}
	free(plain);
	return out;
}

int
handle_query_early_help_list(struct request *rq, char *why, size_t whysz)
{
	const Ehx__QueryEarlyHelpList *m = rq->body->query_early_help_list;
	struct broker *b = rq->b;
	struct ehx_arena *a = b->arena;
	Ehx__EarlyHelpListResult *res;
	MDB_cursor *lc = NULL, *fc = NULL;
	unsigned char key[STORE_LOCALITY_KEY_MAX];
	unsigned char last[EHX_PSEUDONYM_LEN], child[EHX_PSEUDONYM_LEN];
	bool more = false, any = false;
	size_t n = strlen(m->locality), limit, scanned = 0, used = 0;
	MDB_val k, v;
	int basis, r = 0, rc;

	if ((basis = ehx_policy_list_basis(&b->policy, m->list,
	    rq->agency->type)) == 0) {
		snprintf(why, whysz, "the sharing policy does not give the %s "
		    "list to %s agencies", ehx_list_name(m->list),
		    ehx_agency_type_name(rq->agency->type));
		return EHX_ERR_NOT_PERMITTED;
	}
	if (!ehx_policy_locality_ok(&b->policy, m->locality)) {
		snprintf(why, whysz, "locality \"%s\" is not one of the sharing "
		    "policy's", m->locality);
		return EHX_ERR_INVALID_FIELD;
	}
	/* A type that may also name localities asks only by the list's
	 * override: its audit records say so. */
	snprintf(rq->basis, sizeof(rq->basis), "policy:%s:%s%s", b->policy.id,
	    ehx_basis_name(basis), ehx_policy_list_overridden(&b->policy,
	    m->list, rq->agency->type) ? ":override" : "");
	limit = m->limit != 0 ? m->limit : EHX_MAX_AUDIT_PAGE;
	if ((res = ehx_arena_alloc(a, sizeof(*res))) == NULL)
		return EHX_ERR_NOMEM;
	ehx__early_help_list_result__init(res);
	if ((res->children = ehx_arena_alloc(a, limit *
	    sizeof(*res->children))) == NULL)
		return EHX_ERR_NOMEM;
	res->list = m->list;
	res->locality = m->locality;
	res->basis = rq->basis;
	k = (MDB_val){ store_locality_key(key, m->locality, n,
	    m->after.len != 0 ? m->after.data : NULL), key };
	if ((rc = mdb_cursor_open(rq->txn, b->store.locality_index, &lc)) != 0 ||
	    (rc = mdb_cursor_open(rq->txn, b->store.flags, &fc)) != 0) {
		r = store_err(rc);
		goto out;
	}
	rc = mdb_cursor_get(lc, &k, &v, MDB_SET_RANGE);
	if (rc == 0 && m->after.len != 0 && k.mv_size == n + 1 +
	    EHX_PSEUDONYM_LEN && memcmp(k.mv_data, key, k.mv_size) == 0)
		rc = mdb_cursor_get(lc, &k, &v, MDB_NEXT);   /* after, not at */
	for (; rc == 0; rc = mdb_cursor_get(lc, &k, &v, MDB_NEXT)) {
		struct child_view cv;
		Ehx__ListedChild *lc_;
		bool match;
		size_t need;

		if (k.mv_size != n + 1 + EHX_PSEUDONYM_LEN ||
		    memcmp(k.mv_data, key, n + 1) != 0)
			break;
		/* Copied: the audit records written below may move pages. */
		memcpy(child, (const unsigned char *)k.mv_data + n + 1,
		    EHX_PSEUDONYM_LEN);
		if (scanned == EHX_MAX_AUDIT_SCAN) {
			more = true;    /* next: go on after the last one read */
			break;
		}
		scanned++;
		if ((r = read_child(fc, child, &cv)) != 0)
			goto out;
		match = m->list ==
		    EHX__EARLY_HELP_LIST__EARLY_HELP_LIST_KNOWN_TO_SEVERAL ?
		    cv.nagencies >= 2 : __builtin_popcount(cv.criteria) >= 2;
		if (match) {
			need = 64 + cv.nagencies * (EHX_MAX_ID + 4);
			if (res->n_children == limit || used + need >
			    LIST_BUDGET) {
				more = true;
				break;
			}
			if ((lc_ = ehx_arena_alloc(a, sizeof(*lc_))) == NULL) {
				r = EHX_ERR_NOMEM;
				goto out;
			}
			ehx__listed_child__init(lc_);
			if ((lc_->nhs_number = child_nhs(rq, child, &v)) == NULL) {
				r = EHX_ERR_STORAGE;
				goto out;
			}
			if ((lc_->agencies = ehx_arena_alloc(a, cv.nagencies *
			    sizeof(*lc_->agencies))) == NULL ||
			    (lc_->criteria = ehx_arena_alloc(a, 6 *
			    sizeof(*lc_->criteria))) == NULL) {
				r = EHX_ERR_NOMEM;
				goto out;
			}
			for (size_t i = 0; i < cv.nagencies; i++)
				if ((lc_->agencies[i] = ehx_arena_alloc(a,
				    strlen(cv.agencies[i]) + 1)) == NULL) {
					r = EHX_ERR_NOMEM;
					goto out;
				} else
					strcpy(lc_->agencies[i],
					    cv.agencies[i]);
			lc_->n_agencies = cv.nagencies;
			lc_->highest_open_level = cv.level;
			for (int c = 1; c <= 6; c++)
				if (cv.criteria & (1u << c))
					lc_->criteria[lc_->n_criteria++] =
					    (Ehx__FamilyCriterion)c;
			if ((r = audit_entry(rq, child)) != 0)
				goto out;
			res->children[res->n_children++] = lc_;
			used += need;
		}
		memcpy(last, child, EHX_PSEUDONYM_LEN);
		any = true;
	}
	if (more && any) {
		/* Stopped early: the next page starts after the last child
		 * this one dealt with. */
		if ((res->next.data = ehx_arena_alloc(a, EHX_PSEUDONYM_LEN)) ==
		    NULL) {
			r = EHX_ERR_NOMEM;
			goto out;
		}
		memcpy(res->next.data, last, EHX_PSEUDONYM_LEN);
		res->next.len = EHX_PSEUDONYM_LEN;
	} else if (!more && rc != 0 && rc != MDB_NOTFOUND) {
		r = store_err(rc);
		goto out;
	}
	rq->reply.payload_case = EHX__BODY__PAYLOAD_EARLY_HELP_LIST;
	rq->reply.early_help_list = res;
out:
	if (fc != NULL)
		mdb_cursor_close(fc);
	if (lc != NULL)
		mdb_cursor_close(lc);
	return r;
}
