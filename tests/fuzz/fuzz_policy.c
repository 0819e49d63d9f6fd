/*
 * fuzz_policy — the sharing policy loader (lib/policy.c over inih): any
 * file either loads into a policy whose lookups and summaries stay in
 * bounds, or is refused with a sentence. The input is written to a temporary file
 * because the broker reads a file.
 */
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "ehx/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[64];
	struct ehx_policy p;
	char err[512], line[600];
	FILE *f;

	if (path[0] == '\0') {
		int fd;

		snprintf(path, sizeof(path), "/tmp/ehx-fuzz-policy.XXXXXX");
		if ((fd = mkstemp(path)) < 0)
			abort();
		close(fd);
	}
	if ((f = fopen(path, "w")) == NULL)
		return 0;
	fwrite(data, 1, size, f);
	fclose(f);
	if (ehx_policy_load(path, &p, err, sizeof(err)) == 0) {
		for (int t = -1; t <= EHX_POLICY_TYPES + 1; t++) {
			(void)ehx_policy_picture_basis(&p, t);
			(void)ehx_policy_describe(&p, t, line, sizeof(line));
			(void)ehx_policy_describe(&p, t, line, 1 + (size & 63));
			for (int c = -1; c <= EHX_POLICY_CATEGORIES + 1; c++) {
				(void)ehx_policy_view(&p, t, c);
				(void)ehx_policy_notify_basis(&p, c, t);
			}
			for (int l = -1; l <= EHX_POLICY_LISTS + 1; l++)
				(void)ehx_policy_list_basis(&p, l, t);
		}
		(void)ehx_policy_locality_ok(&p, "east");
	}
	return 0;
}
