/*
 * fuzz_text — the small parsers of what people type and what peers send as
 * text: NHS numbers, dates, UTF-8 checks, ids, references and the names of
 * enums.
 */
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "ehx/names.h"
#include "ehx/nhs.h"
#include "ehx/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s, nhs[EHX_NHS_LEN + 1], pretty[13];
	int64_t t;

	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (ehx_nhs_normalise(s, nhs) == 0)
		ehx_nhs_format(pretty, nhs);
	(void)ehx_nhs_valid(s);
	(void)ehx_parse_time(s, 1767225600000LL, &t);
	(void)ehx_text_ok(s, 0, 280);
	(void)ehx_id_ok(s);
	(void)ehx_ref_ok(s);
	(void)ehx_category_parse(s);
	(void)ehx_role_parse(s);
	(void)ehx_agency_type_parse(s);
	free(s);
	return 0;
}
