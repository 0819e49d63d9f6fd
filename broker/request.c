/*
 * request.c — what handlers share to answer a request (request.h), so that
 * no handler calls back into the pipeline that called it.
 */
#include "ehx/arena.h"
#include "ehx/err.h"
#include "request.h"

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
