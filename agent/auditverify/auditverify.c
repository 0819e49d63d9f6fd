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
#include "ehx/checkpoint.h"
#include "ehx/err.h"
#include "ehx/util.h"

#define MAX_EXPORT (4LL * 1024 * 1024 * 1024)
#define MAX_STATE 16384

static const char help[] =
"usage: ehx-auditverify FILE --ca CA_CERT [--expect SIZE:ROOT]\n"
"                       [--state AGENT_STATE_FILE] [--json]\n"
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
"A broker could hand over an export of a log it has cut short or rewound:\n"
"it would hold together. Hold it to what an agency has seen:\n"
"  --expect SIZE:ROOT  an agency's checkpoint (ehx audit checkpoint): the\n"
"              export must reach SIZE records and give ROOT (64 hex\n"
"              digits) there\n"
"  --state FILE  an agent's state file (state_file in agent.conf): its\n"
"              checkpoint, as --expect, and the agency's own decisions\n"
"              the agent has not yet checked, each of which must be in\n"
"              the export as that agency's record of that request\n"
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
		{ "expect", required_argument, NULL, 'e' },
		{ "state", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ehx_auditverify_report rep;
	struct ehx_auditverify_expect exp, *x = NULL;
	Ehx__AgentState *st = NULL;
	struct ehx_ca *ca = NULL;
	const char *ca_path = NULL, *expect = NULL, *state = NULL;
	unsigned char *data = NULL;
	size_t len = 0;
	char why[512] = "";
	bool json = false;
	int c, r;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1)
		switch (c) {
		case 'c': ca_path = optarg; break;
		case 'j': json = true; break;
		case 'e': expect = optarg; break;
		case 's': state = optarg; break;
		case 'h': fputs(help, stdout); return 0;
		default: fputs(help, stderr); return 2;
		}
	if (optind + 1 != argc || ca_path == NULL) {
		fprintf(stderr, "ehx-auditverify: give one export FILE and "
		    "--ca CA_CERT\n");
		return 2;
	}
	if (expect != NULL && state != NULL) {
		fprintf(stderr, "ehx-auditverify: give --expect or --state, "
		    "not both\n");
		return 2;
	}
	memset(&exp, 0, sizeof(exp));
	if (expect != NULL) {
		char *end;
		const char *colon = strchr(expect, ':');
		unsigned long long size;

		errno = 0;
		size = strtoull(expect, &end, 10);
		if (colon == NULL || end != colon || errno != 0 || size == 0 ||
		    size > EHX_MAX_SEQ || *expect < '0' || *expect > '9' ||
		    strlen(colon + 1) != 64 ||
		    ehx_unhex(exp.root, sizeof(exp.root), colon + 1) != 0) {
			fprintf(stderr, "ehx-auditverify: --expect must be "
			    "SIZE:ROOT, a number of records and 64 hex digits, "
			    "as ehx audit checkpoint shows them\n");
			return 2;
		}
		exp.size = size;
		x = &exp;
	}
	if (state != NULL) {
		unsigned char *buf = NULL;
		size_t blen = 0;

		if ((r = ehx_file_read(state, false, MAX_STATE, &buf,
		    &blen)) != 0) {
			fprintf(stderr, "ehx-auditverify: %s: %s\n", state,
			    r == EHX_ERR_SYSTEM ? strerror(errno) :
			    ehx_strerror(r));
			return 2;
		}
		st = ehx__agent_state__unpack(NULL, blen, buf);
		free(buf);
		if (st == NULL || (st->checkpoint != NULL &&
		    ehx_checkpoint_check(st->checkpoint) != 0) ||
		    (st->n_pending > 0 && !ehx_id_ok(st->agency)) ||
		    !ehx_pending_decisions_ok(st)) {
			fprintf(stderr, "ehx-auditverify: %s: not an agent "
			    "state file\n", state);
			if (st != NULL)
				ehx__agent_state__free_unpacked(st, NULL);
			return 2;
		}
		if (st->checkpoint != NULL) {
			exp.size = st->checkpoint->size;
			memcpy(exp.root, st->checkpoint->root.data, 32);
		}
		exp.agency = st->agency;
		exp.pending = st->pending;
		exp.npending = st->n_pending;
		x = &exp;
	}
	if ((r = ehx_ca_load(ca_path, &ca)) != 0) {
		fprintf(stderr, "ehx-auditverify: %s: cannot load the CA "
		    "certificate: %s\n", ca_path, r == EHX_ERR_SYSTEM ?
		    strerror(errno) : ehx_strerror(r));
		if (st != NULL)
			ehx__agent_state__free_unpacked(st, NULL);
		return 2;
	}
	if ((r = ehx_file_read(argv[optind], false, (size_t)MAX_EXPORT, &data,
	    &len)) != 0) {
		fprintf(stderr, "ehx-auditverify: %s: %s\n", argv[optind],
		    r == EHX_ERR_SYSTEM ? strerror(errno) : ehx_strerror(r));
		ehx_ca_free(ca);
		if (st != NULL)
			ehx__agent_state__free_unpacked(st, NULL);
		return 2;
	}
	r = ehx_auditverify_against(data, len, ca, x, &rep, why, sizeof(why));
	free(data);
	ehx_ca_free(ca);
	if (st != NULL)
		ehx__agent_state__free_unpacked(st, NULL);
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
