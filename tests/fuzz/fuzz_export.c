/*
 * fuzz_export — ehx-auditverify's reading of an audit export file
 * (lib/auditverify.c): pages, records, checkpoints, cosignatures,
 * envelopes and certificates, all outside input. The trust anchor is the
 * throw-away partnership CA that made the seed exports in
 * tests/fuzz/corpus/export (its certificate is tests/fuzz/export-ca.crt;
 * its key was never kept), so mutations reach past the certificates into
 * the records, checkpoints and cosignatures. Run from the repository
 * root, as `make fuzz` does.
 */
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>

#include "ehx/auditverify.h"
#include "ehx/crypto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The CA of the seed exports (tests/fuzz/export-ca.crt, public). */
static struct ehx_ca *
fuzz_ca(void)
{
	static struct ehx_ca *ca;

	if (ca == NULL && ehx_ca_load("tests/fuzz/export-ca.crt", &ca) != 0)
		abort();
	return ca;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ehx_auditverify_report rep;
	char why[512];

	(void)ehx_auditverify(data, size, fuzz_ca(), &rep, why, sizeof(why));
	return 0;
}
