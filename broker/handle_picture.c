/*
 * handle_picture.c — query_picture: the whole picture of one child.
 *
 * Answered only when an active consent of the child covers the asking
 * agency (or its type) for the whole-picture purpose. Otherwise the answer
 * is NO_CONSENT and nothing else, and it is the same answer whether or not
 * any agency holds a flag: the flags are not even read.
 *
 * The child's flags are one LMDB range (child ‖ agency ‖ ref), already
 * grouped by agency, so the answer is built in one pass. It stops adding,
 * marked truncated, before the reply would outgrow one message; the
 * highest open level of need still counts every flag.
 */
#include <stdio.h>
#include <string.h>

#include "broker.h"
#include "ehx/err.h"

/* Room kept for the Body's other fields and the Envelope around it. */
#define PICTURE_BUDGET (EHX_MAX_BODY - 2048)

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
	size_t used = 0, nflags = 0;
	int rc, r;

	(void)why;
	(void)whysz;
	if ((consent_id = ehx_arena_alloc(a, 32)) == NULL)
		return EHX_ERR_NOMEM;
	if ((r = consent_find_active(rq, EHX__PURPOSE__PURPOSE_WHOLE_PICTURE,
	    consent_id, 32)) != 0)
		return r;
	snprintf(rq->basis, sizeof(rq->basis), "consent:%s", consent_id);
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
		if ((sf = ehx__stored_flag__unpack(ehx_arena_allocator(a),
		    v.mv_size, v.mv_data)) == NULL || sf->flag == NULL) {
			r = EHX_ERR_STORAGE;
			break;
		}
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
	}
	/* Cut short: the highest open level still counts every flag. */
	if (res->truncated)
		while ((rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0) {
			if (k.mv_size < EHX_PSEUDONYM_LEN ||
			    memcmp(k.mv_data, rq->child, EHX_PSEUDONYM_LEN) != 0)
				break;
			if ((sf = ehx__stored_flag__unpack(NULL, v.mv_size,
			    v.mv_data)) == NULL) {
				r = EHX_ERR_STORAGE;
				break;
			}
			if (sf->flag != NULL && sf->flag->status ==
			    EHX__FLAG_STATUS__FLAG_STATUS_OPEN &&
			    sf->flag->level > res->highest_open_level)
				res->highest_open_level = sf->flag->level;
			ehx__stored_flag__free_unpacked(sf, NULL);
		}
	mdb_cursor_close(c);
	if (r == 0 && rc != 0 && rc != MDB_NOTFOUND)
		r = store_err(rc);
	if (r != 0)
		return r;
	rq->reply.payload_case = EHX__BODY__PAYLOAD_PICTURE;
	rq->reply.picture = res;
	return 0;
}
