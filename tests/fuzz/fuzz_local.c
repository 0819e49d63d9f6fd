/*
 * fuzz_local — the agent's local socket: a LocalRequest from any local
 * caller (decode, payload check, validation), and the command line's
 * decoding of a LocalReply.
 */
#include <stdint.h>
#include <stddef.h>

#include "ehx/validate.h"
#include "ehx/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Ehx__LocalRequest *rq;
	Ehx__LocalReply *rp;
	char why[256];

	if ((rq = ehx__local_request__unpack(NULL, size, data)) != NULL) {
		if (rq->body != NULL &&
		    ehx_payload_is_request(rq->body->payload_case))
			(void)ehx_validate_request(rq->body, 1767225600000LL, why,
			    sizeof(why));
		ehx__local_request__free_unpacked(rq, NULL);
	}
	if ((rp = ehx__local_reply__unpack(NULL, size, data)) != NULL)
		ehx__local_reply__free_unpacked(rp, NULL);
	return 0;
}
