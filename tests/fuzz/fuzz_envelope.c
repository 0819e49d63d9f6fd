/*
 * fuzz_envelope — the broker's first steps on bytes from the network:
 * envelope decode, signature check, body decode and request validation.
 */
#include <stdint.h>
#include <stddef.h>

#include "ehx/validate.h"
#include "ehx/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned char pub[EHX_KEY_LEN] = { 1 };
	Ehx__Envelope *e = NULL;
	Ehx__Body *b = NULL;
	char why[256];

	if (ehx_envelope_decode(data, size, &e) != 0)
		return 0;
	(void)ehx_envelope_verify(e, pub);
	/* The broker decodes only verified bodies; decode anyway, to reach
	 * the body decoder from envelope-shaped input too. */
	if (ehx_body_decode(e->body.data, e->body.len, &b, why,
	    sizeof(why)) == 0) {
		(void)ehx_validate_person(b->person, why, sizeof(why));
		(void)ehx_validate_request(b, 1767225600000LL, why, sizeof(why));
		(void)ehx_request_nhs(b);
		ehx_body_free(b);
	}
	ehx_envelope_free(e);
	return 0;
}
