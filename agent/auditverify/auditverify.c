/*
 * auditverify.c — ehx-auditverify: check an audit export (made by `ehx
 * audit export`) offline, with nothing but the partnership CA's
 * certificate. It rebuilds the Merkle tree from the records, checks every
 * checkpoint's root and broker signature, every agency's cosignature, and
 * every kept envelope's signature, and names the first thing that fails.
 *
 * Exit status: 0 the export holds; 1 it does not (the reason is printed);
 * 2 bad usage or an unreadable file.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ehx/auditverify.h"
#include "ehx/err.h"
#include "ehx/util.h"

#define MAX_EXPORT (4LL * 1024 * 1024 * 1024)

static const char help[] =
"usage: ehx-auditverify FILE --ca CA_CERT [--json]\n"
"\n"
"Check an EHX audit export offline. The export (from `ehx audit export`)\n"
"holds the audit records, the broker's signed checkpoints with the\n"
"agencies' cosignatures, the signed envelopes kept as evidence, and the\n"
"certificates of the broker and the agencies. Only the partnership CA's\n"
"certificate is needed from outside.\n"
"\n"
"It rebuilds the RFC 9162 Merkle tree from the records themselves and\n"
"checks that:\n"
"  - every record is the one the broker committed to (its leaf hash),\n"
"  - every checkpoint's root is the root of the records before it, and the\n"
"    broker signed it,\n"
"  - every cosignature is an agency's, over that checkpoint,\n"
"  - every kept envelope is signed by the agency its record names,\n"
"  - every certificate was issued by the CA.\n"
"\n"
"  --ca FILE   the partnership CA's certificate (PEM)\n"
"  --json      print the result as one JSON object\n"
"  -h, --help  this text\n"
"\n"
"Exit status: 0 the export holds; 1 it does not, and the first bad record,\n"
"checkpoint or cosignature is named; 2 bad usage or an unreadable file.\n";

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ca", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ehx_auditverify_report rep;
	struct ehx_ca *ca = NULL;
	const char *ca_path = NULL;
	unsigned char *data = NULL;
	size_t len = 0;
	char why[512] = "";
	bool json = false;
	int c, r;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1)
		switch (c) {
		case 'c': ca_path = optarg; break;
		case 'j': json = true; break;
		case 'h': fputs(help, stdout); return 0;
		default: fputs(help, stderr); return 2;
		}
	if (optind + 1 != argc || ca_path == NULL) {
		fprintf(stderr, "ehx-auditverify: give one export FILE and "
		    "--ca CA_CERT\n");
		return 2;
	}
	if ((r = ehx_ca_load(ca_path, &ca)) != 0) {
		fprintf(stderr, "ehx-auditverify: %s: cannot load the CA "
		    "certificate: %s\n", ca_path, r == EHX_ERR_SYSTEM ?
		    strerror(errno) : ehx_strerror(r));
		return 2;
	}
	if ((r = ehx_file_read(argv[optind], false, (size_t)MAX_EXPORT, &data,
	    &len)) != 0) {
		fprintf(stderr, "ehx-auditverify: %s: %s\n", argv[optind],
		    r == EHX_ERR_SYSTEM ? strerror(errno) : ehx_strerror(r));
		ehx_ca_free(ca);
		return 2;
	}
	r = ehx_auditverify(data, len, ca, &rep, why, sizeof(why));
	free(data);
	ehx_ca_free(ca);
	if (json)
		printf("{\"ok\":%s,\"records\":%llu,\"checkpoints\":%llu,"
		    "\"last_checkpoint\":%llu,\"cosignatures\":%llu,"
		    "\"envelopes\":%llu,\"error\":\"%s\"}\n", r == 0 ? "true" :
		    "false", (unsigned long long)rep.records,
		    (unsigned long long)rep.checkpoints,
		    (unsigned long long)rep.last_checkpoint,
		    (unsigned long long)rep.cosignatures,
		    (unsigned long long)rep.envelopes, r == 0 ? "" :
		    ehx_errname(r));
	if (r != 0) {
		fprintf(stderr, "ehx-auditverify: FAILED: %s\n", why);
		return 1;
	}
	if (!json) {
		printf("ehx-auditverify: OK: %llu records, %llu checkpoints "
		    "(newest at %llu records), %llu cosignatures (%s), %llu "
		    "signed envelopes\n", (unsigned long long)rep.records,
		    (unsigned long long)rep.checkpoints,
		    (unsigned long long)rep.last_checkpoint,
		    (unsigned long long)rep.cosignatures,
		    rep.agencies[0] ? rep.agencies : "none",
		    (unsigned long long)rep.envelopes);
		if (rep.records > rep.last_checkpoint)
			printf("ehx-auditverify: note: records %llu..%llu are "
			    "not yet under a signed checkpoint\n",
			    (unsigned long long)rep.last_checkpoint + 1,
			    (unsigned long long)rep.records);
	}
	return 0;
}
