/*
 * handle_picture.c — query_picture: the whole picture of one child.
 *
 * Answered only when an active consent of the child covers the asking
 * agency (or its type) for the whole-picture purpose, or the sharing
 * policy names another lawful basis for the asking agency's type, or the
 * person breaks the glass with a reason. Otherwise the answer is
 * NO_CONSENT and nothing else, and it is the same answer whether or not
 * any agency holds a flag: the flags are not even read.
 *
 * What is shown of other agencies' flags is the sharing policy's view for
 * the asking agency's type: a category it may not see is left out (and
 * does not count towards the highest level), and level, contact and note
 * are blanked unless the view names them. An agency sees its own flags in
 * full. Break-glass lifts the consent gate, never the policy.
 *
 * The child's flags are one LMDB range (child ‖ agency ‖ ref), already
 * grouped by agency, so the answer is built in one pass. It stops adding,
 * marked truncated, before the reply would outgrow one message; the
 * highest open level of need still counts every flag.
 */
#include <stdio.h>
#include <string.h>

#include "consent.h"
#include "ehx/err.h"
#include "ehx/names.h"
#include "handle.h"
#include "store.h"

/* Room kept for the Body's other fields and the Envelope around it. */
#define PICTURE_BUDGET (EHX_MAX_BODY - 2048)

/* Whether the asking agency may see sf at all: its own, or a category its
 * type's view names. */
static bool
visible(const struct request *rq, const Ehx__StoredFlag *sf)
{
	return strcmp(sf->agency, rq->agency->id) == 0 ||
	    (ehx_policy_view(&rq->b->policy, rq->agency->type,
	    sf->flag->category) & EHX_POLICY_SEE) != 0;
}

/*
 * Cut sf (a copy in the arena, visible()) down to what the asking agency
 * may see. The withhold marker concerns subject access only.
 */
static void
apply_policy(const struct request *rq, Ehx__StoredFlag *sf)
{
	Ehx__FlagView *f = sf->flag;
	unsigned view;

	f->withhold = false;
	if (strcmp(sf->agency, rq->agency->id) == 0)
		return;
	view = ehx_policy_view(&rq->b->policy, rq->agency->type, f->category);
	if (!(view & EHX_POLICY_LEVEL))
		f->level = 0;
	if (!(view & EHX_POLICY_CONTACT)) {
		f->practitioner = NULL;
		f->lead = false;
	}
	if (!(view & EHX_POLICY_NOTE)) {
		f->note = (char *)protobuf_c_empty_string;
		f->close_reason = (char *)protobuf_c_empty_string;
	}
}

/*
 * The child's next flag the asking agency may see, from the cursor at v,
 * as a copy in the arena cut by the policy: each is read on the heap and
 * only what is shown takes room in the request's arena, however many
 * flags the child has. 0 with *out, or an error.
 */
static int
next_visible(struct request *rq, const MDB_val *v, Ehx__StoredFlag **out)
{
	Ehx__StoredFlag *sf;
	int r;

	*out = NULL;
	if ((r = store_read(&ehx__stored_flag__descriptor, NULL, v, &sf)) != 0)
		return r;
	if (sf->flag == NULL)
		r = EHX_ERR_STORAGE;
	else if (visible(rq, sf) &&
	    (r = store_keep(rq->b->arena, &sf->base, out)) == 0)
		apply_policy(rq, *out);
	ehx__stored_flag__free_unpacked(sf, NULL);
	return r;
}

/*
 * A consent its own recorder uses at once — the same person of the same
 * agency, within EHX_SELF_CONSENT_MS of recording it — is a way round the
 * consent gate as much as a way through it: the answer is given, and
 * raises an alert for IG review, as break-glass does.
 */
static int
self_consent(struct request *rq, const struct consent_found *f)
{
	char *reason;
	int64_t age = rq->now - f->recorded_at;

	if (strcmp(f->agency, rq->agency->id) != 0 ||
	    strcmp(f->user_id, rq->body->person->user_id) != 0 ||
	    age < 0 || age >= EHX_SELF_CONSENT_MS)
		return 0;
	if ((reason = ehx_arena_alloc(rq->b->arena, EHX_MAX_REASON + 1)) ==
	    NULL)
		return EHX_ERR_NOMEM;
	snprintf(reason, EHX_MAX_REASON + 1, "consent %s (evidence: %s) was "
	    "recorded by the person who used it, %lld min before", f->id,
	    f->evidence_ref[0] != '\0' ? f->evidence_ref : "none given",
	    (long long)(age / 60000));
	rq->alert_kind = "self_consent";
	rq->alert_reason = reason;
	return 0;
}

int
handle_query_picture(struct request *rq, char *why, size_t whysz)
{
	struct ehx_arena *a = rq->b->arena;
	Ehx__PictureResult *res;
	Ehx__AgencyInvolvement *cur = NULL;
	Ehx__StoredFlag *sf;
	MDB_cursor *c = NULL;
	MDB_val k = { EHX_PSEUDONYM_LEN, rq->child }, v;
	char *consent_id;
	struct consent_found found;
	size_t used = 0, nflags = 0;
	int rc, r, basis;

	(void)why;
	(void)whysz;
	if ((consent_id = ehx_arena_alloc(a, 32)) == NULL ||
	    (rq->disclosed = ehx_arena_alloc(a, EHX_MAX_PICTURE_FLAGS *
	    sizeof(*rq->disclosed))) == NULL)
		return EHX_ERR_NOMEM;
	consent_id[0] = '\0';
	if (rq->body->query_picture->break_glass_reason[0] != '\0') {
		rq->break_glass = true;
		rq->alert_kind = "break_glass";
		rq->alert_reason = rq->body->query_picture->break_glass_reason;
		snprintf(rq->basis, sizeof(rq->basis), "break-glass");
	} else if ((basis = ehx_policy_picture_basis(&rq->b->policy,
	    rq->agency->type)) != EHX__LAWFUL_BASIS__LAWFUL_BASIS_CONSENT) {
		snprintf(rq->basis, sizeof(rq->basis), "policy:%s:%s",
		    rq->b->policy.id, ehx_basis_name(basis));
	} else {
		if ((r = consent_find(rq, rq->agency,
		    EHX__PURPOSE__PURPOSE_WHOLE_PICTURE, &found)) != 0)
			return r;
		snprintf(consent_id, 32, "%s", found.id);
		snprintf(rq->basis, sizeof(rq->basis), "consent:%s", consent_id);
		snprintf(rq->consent_id, sizeof(rq->consent_id), "%s",
		    consent_id);
		if ((r = self_consent(rq, &found)) != 0)
			return r;
	}
	if ((res = ehx_arena_alloc(a, sizeof(*res))) == NULL ||
	    (res->involvements = ehx_arena_alloc(a, EHX_MAX_PICTURE_FLAGS *
	    sizeof(*res->involvements))) == NULL)
		return EHX_ERR_NOMEM;
	{
		Ehx__AgencyInvolvement **inv = res->involvements;

		ehx__picture_result__init(res);
		res->involvements = inv;
	}
	res->child.data = rq->child;
	res->child.len = EHX_PSEUDONYM_LEN;
	res->consent_id = consent_id;

	if ((rc = mdb_cursor_open(rq->txn, rq->b->store.flags, &c)) != 0)
		return store_err(rc);
	r = 0;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
	    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		size_t need;

		if (k.mv_size < EHX_PSEUDONYM_LEN ||
		    memcmp(k.mv_data, rq->child, EHX_PSEUDONYM_LEN) != 0)
			break;
		if ((r = next_visible(rq, &v, &sf)) != 0)
			break;
		if (sf == NULL)
			continue;
		if (sf->flag->status == EHX__FLAG_STATUS__FLAG_STATUS_OPEN &&
		    sf->flag->level > res->highest_open_level)
			res->highest_open_level = sf->flag->level;
		need = protobuf_c_message_get_packed_size(&sf->flag->base) + 16;
		if (cur == NULL || strcmp(cur->agency, sf->agency) != 0)
			need += strlen(sf->agency) + 16;
		if (nflags == EHX_MAX_PICTURE_FLAGS ||
		    used + need > PICTURE_BUDGET) {
			res->truncated = true;
			break;
		}
		if (cur == NULL || strcmp(cur->agency, sf->agency) != 0) {
			if ((cur = ehx_arena_alloc(a, sizeof(*cur))) == NULL ||
			    (cur->flags = ehx_arena_alloc(a,
			    EHX_MAX_PICTURE_FLAGS * sizeof(*cur->flags))) == NULL) {
				r = EHX_ERR_NOMEM;
				break;
			}
			{
				Ehx__FlagView **fl = cur->flags;

				ehx__agency_involvement__init(cur);
				cur->flags = fl;
			}
			cur->agency = sf->agency;
			cur->agency_type = sf->agency_type;
			res->involvements[res->n_involvements++] = cur;
		}
		cur->flags[cur->n_flags++] = sf->flag;
		nflags++;
		used += need;
		if (strcmp(sf->agency, rq->agency->id) != 0) {
			if (rq->ndisclosed == 0 || strcmp(rq->disclosed[
			    rq->ndisclosed - 1].owner, sf->agency) != 0) {
				rq->disclosed[rq->ndisclosed].owner = sf->agency;
				rq->disclosed[rq->ndisclosed++].flags = 0;
			}
			rq->disclosed[rq->ndisclosed - 1].flags++;
		}
	}
	/* Cut short: the highest open level still counts every flag. */
	if (res->truncated)
		while ((rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0) {
			if (k.mv_size < EHX_PSEUDONYM_LEN ||
			    memcmp(k.mv_data, rq->child, EHX_PSEUDONYM_LEN) != 0)
				break;
			if ((r = store_read(&ehx__stored_flag__descriptor,
			    NULL, &v, &sf)) != 0)
				break;
			if (sf->flag != NULL && sf->flag->status ==
			    EHX__FLAG_STATUS__FLAG_STATUS_OPEN &&
			    (strcmp(sf->agency, rq->agency->id) == 0 ||
			    (ehx_policy_view(&rq->b->policy, rq->agency->type,
			    sf->flag->category) & (EHX_POLICY_SEE | EHX_POLICY_LEVEL)) ==
			    (EHX_POLICY_SEE | EHX_POLICY_LEVEL)) &&
			    sf->flag->level > res->highest_open_level)
				res->highest_open_level = sf->flag->level;
			ehx__stored_flag__free_unpacked(sf, NULL);
		}
	mdb_cursor_close(c);
	if (r == 0 && rc != 0 && rc != MDB_NOTFOUND)
		r = store_err(rc);
	if (r != 0)
		return r;
	res->basis = rq->basis;
	rq->reply.payload_case = EHX__BODY__PAYLOAD_PICTURE;
	rq->reply.picture = res;
	return 0;
}
