/*
 * fuzz_body — a signed Body's decoder and every payload's validation, and
 * the command line's rendering of whatever a broker reply holds (tables,
 * CSV and JSON, the governance answers included), as an agent would hand
 * it to the caller.
 */
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>

#include "../../agent/cli/render.h"
#include "ehx/validate.h"
#include "ehx/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *null;
	Ehx__Body *b = NULL;
	char why[256];

	if (null == NULL && (null = fopen("/dev/null", "w")) == NULL)
		return 0;
	if (ehx_body_decode(data, size, &b, why, sizeof(why)) != 0)
		return 0;
	(void)ehx_validate_person(b->person, why, sizeof(why));
	(void)ehx_validate_request(b, 1767225600000LL, why, sizeof(why));
	switch (b->payload_case) {
	case EHX__BODY__PAYLOAD_AUDIT:
		for (int fmt = RENDER_TABLE; fmt <= RENDER_JSON; fmt++)
			render_audit_page(null, b->audit, fmt, true);
		break;
	case EHX__BODY__PAYLOAD_ALERTS:
		render_alerts_page(null, b->alerts, false, true);
		render_alerts_page(null, b->alerts, true, false);
		break;
	case EHX__BODY__PAYLOAD_DISCLOSURES:
		render_disclosures_page(null, b->disclosures, false, true);
		render_disclosures_page(null, b->disclosures, true, false);
		break;
	case EHX__BODY__PAYLOAD_SAR:
		render_sar(null, b->sar);
		break;
	case EHX__BODY__PAYLOAD_EARLY_HELP_LIST:
		render_list_page(null, b->early_help_list, false, true);
		render_list_page(null, b->early_help_list, true, false);
		break;
	case EHX__BODY__PAYLOAD_PICTURE:
	case EHX__BODY__PAYLOAD_CONSENT:
	case EHX__BODY__PAYLOAD_ACK:
		render_reply(null, b, false, "9434765919");
		render_reply(null, b, true, NULL);
		break;
	default:
		break;
	}
	ehx_body_free(b);
	return 0;
}
