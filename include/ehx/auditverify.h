/*
 * auditverify.h — checking an audit export offline, with nothing but the
 * partnership CA's certificate (docs/PROTOCOL.md §14.5).
 *
 * An export file is the line "EHX-AUDIT-EXPORT-1\n" followed by pages,
 * each a 4-byte big-endian length and that many bytes of an ExportResult,
 * exactly as the broker sent them. The first page carries the broker's and
 * the agencies' certificates. The check rebuilds the Merkle tree from the
 * records themselves and holds it against every checkpoint the broker
 * signed and every agency cosigned; each kept envelope must be the one its
 * record names, signed by the agency that record says acted.
 */
#ifndef EHX_AUDITVERIFY_H
#define EHX_AUDITVERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ehx.pb-c.h"
#include "ehx/crypto.h"

#define EHX_EXPORT_MAGIC "EHX-AUDIT-EXPORT-1\n"
#define EHX_MAX_EXPORT_CERTS 4096

struct ehx_auditverify_report {
	uint64_t records;          /* records checked */
	uint64_t checkpoints;      /* checkpoints checked */
	uint64_t last_checkpoint;  /* size of the newest one (0: none) */
	uint64_t cosignatures;     /* cosignatures checked */
	uint64_t envelopes;        /* evidence envelopes checked */
	char agencies[512];        /* who cosigned, comma separated */
};

/*
 * Check an export held in memory. Returns 0 when all of it holds;
 * otherwise EHX_ERR_MALFORMED (the file is not an export),
 * EHX_ERR_BAD_SIGNATURE (a signature, a root or a record does not hold)
 * or EHX_ERR_UNKNOWN_CERTIFICATE, with the first bad record, checkpoint
 * or cosignature named in why.
 */
int ehx_auditverify(const unsigned char *data, size_t len,
    const struct ehx_ca *ca, struct ehx_auditverify_report *rep, char *why,
    size_t whysz);

/*
 * What one agency has seen of the log, that an export must hold (an
 * agent's state file, or --expect): the checkpoint it checked — the export
 * must reach size records and give root there — and the decisions of its
 * own it keeps to check, each of which must be in the export as that
 * agency's record of that request. An export that stops short of them, or
 * does not extend them, is EHX_ERR_BAD_SIGNATURE with why naming it.
 */
struct ehx_auditverify_expect {
	uint64_t size;                  /* 0: no checkpoint to hold to */
	unsigned char root[32];
	const char *agency;             /* whose the pending decisions are */
	Ehx__PendingDecision *const *pending;
	size_t npending;
};

/* An agent state file's decisions are well formed (at most 64; seq, ids
 * and hashes of their lengths; times sane): it is outside input. */
bool ehx_pending_decisions_ok(const Ehx__AgentState *s);

int ehx_auditverify_against(const unsigned char *data, size_t len,
    const struct ehx_ca *ca, const struct ehx_auditverify_expect *exp,
    struct ehx_auditverify_report *rep, char *why, size_t whysz);

#endif
