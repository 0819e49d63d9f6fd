/*
 * request.c — what handlers share to answer a request (request.h), so that
 * no handler calls back into the pipeline that called it.
 */
#include <stdio.h>
#include <string.h>

#include "ehx/arena.h"
#include "ehx/err.h"
#include "identity.h"
#include "request.h"

int
request_child(struct request *rq, const Ehx__ChildIdentity *id,
    unsigned char node[EHX_PSEUDONYM_LEN], char *why, size_t whysz)
{
	struct identity_ctx c;
	struct identity_result res;
	int r;

	rq->child_from_identity = true;
	if (rq->b->mkey == NULL) {
		snprintf(why, whysz, "this broker does not match children "
		    "named without an NHS number (no matching_key in its "
		    "configuration): name the child by nhs_number");
		return EHX_ERR_INVALID_IDENTITY;
	}
	c.s = &rq->b->store;
	c.pkey = rq->b->pkey;
	c.mkey = rq->b->mkey;
	c.th = rq->b->policy.match;
	if (node == NULL) {
		/* a close: only the agency's own record of the child */
		if ((r = identity_own(&c, rq->txn, rq->agency->id, id,
		    rq->child)) != 0)
			return r;
		rq->has_child = true;
		rq->child_known = true;
		return 0;
	}
	if ((r = identity_resolve(&c, rq->txn, rq->agency->id, id, rq->now,
	    &res)) != 0) {
		if (r == EHX_ERR_INVALID_IDENTITY)
			snprintf(why, whysz, "this agency's record of the child "
			    "was sent with another NHS number before; an NHS "
			    "number cannot be changed on a record (ask the "
			    "partnership to correct it)");
		return r;
	}
	memcpy(rq->child, res.child, EHX_PSEUDONYM_LEN);
	memcpy(node, res.node, EHX_PSEUDONYM_LEN);
	rq->has_child = true;
	rq->child_known = res.how == IDENTITY_KNOWN;
	return 0;
}

int
request_ack(struct request *rq, const char *id)
{
	Ehx__Ack *a;

	if ((a = ehx_arena_alloc(rq->b->arena, sizeof(*a))) == NULL)
		return EHX_ERR_NOMEM;
	ehx__ack__init(a);
	a->id = (char *)id;
	a->basis = rq->basis;
	rq->reply.payload_case = EHX__BODY__PAYLOAD_ACK;
	rq->reply.ack = a;
	return 0;
}
