/*
 * fuzz_import — the rows of `ehx import`: any bytes as CSV or JSON lines
 * (the first byte chooses, and whether they are a school's roll). Whatever comes in, every row the parser keeps
 * must pass the broker's own validation, the errors must be counted and
 * kept within their bound with rows and lines that exist, and every batch
 * must fit in one request to the agent.
 */
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "../../agent/cli/import.h"
#include "ehx/util.h"
#include "ehx/validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *null;
	static struct import_errors errs;
	struct import_rows rows = { 0 };
	enum import_format fmt;
	size_t lines = 1;
	char why[256];

	if (size < 1)
		return 0;
	if (null == NULL && (null = fopen("/dev/null", "w")) == NULL)
		return 0;
	fmt = data[0] & 1 ? IMPORT_JSONL : IMPORT_CSV;
	rows.roll = (data[0] & 2) != 0;
	data++;
	size--;
	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n' || data[i] == '\r';
	rows.max_rows = 1000;
	(void)import_parse((const char *)data, size, fmt, &rows, &errs);
	if (errs.n > IMPORT_MAX_ERRORS || errs.n > errs.total ||
	    (errs.total > 0 && errs.n == 0))
		abort();
	for (size_t i = 0; i < errs.n; i++)
		if (errs.e[i].line > lines || errs.e[i].row > rows.seen + 1)
			abort();
	for (size_t i = 0; i < rows.n; i++) {
		struct import_msg m;

		import_body(&rows, i, &m);
		/* as the parser checked them: dates are against today */
		if (ehx_validate_request(&m.body, ehx_now_ms(), why,
		    sizeof(why)) != 0 || rows.row[i].line > lines)
			abort();
	}
	for (size_t start = 0; start < rows.n;) {
		size_t end = import_batch_end(&rows, start, IMPORT_BATCH_BYTES);

		if (end <= start || end - start > IMPORT_BATCH)
			abort();
		start = end;
	}
	import_print_errors(null, "fuzz.csv", &errs, errs.total % 2 == 0);
	import_rows_free(&rows);
	return 0;
}
