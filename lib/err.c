/*
 * err.c — the sentence and the name of every EHX error code.
 *
 * One table, indexed by the negated code, so that the broker's reply, the
 * agent's log and the command line's message always agree.
 */
#include "ehx/err.h"

struct errdef {
	const char *name;
	const char *text;
};

static const struct errdef wire_errs[] = {
	[0] = { "ok", "success" },
	[1] = { "bad_signature",
	    "the signature does not match the message (tampered, or signed with another key)" },
	[2] = { "unknown_certificate",
	    "the signing certificate is not registered with this broker" },
	[3] = { "certificate_not_yet_valid",
	    "the signing certificate is not valid yet" },
	[4] = { "certificate_expired", "the signing certificate has expired" },
	[5] = { "revoked_certificate", "the signing certificate has been revoked" },
	[6] = { "wrong_sender",
	    "the message is signed by an agency other than the one on this connection" },
	[7] = { "wrong_recipient", "the message is addressed to someone else" },
	[8] = { "stale",
	    "the message's send time is outside the accepted clock window (check the clock)" },
	[9] = { "replay",
	    "a different message with this message id was already received" },
	[10] = { "malformed", "the message is not a well-formed EHX message" },
	[11] = { "too_large", "the message is larger than the limit" },
	[12] = { "invalid_nhs_number",
	    "the NHS number is not valid (10 digits with a modulus-11 check digit)" },
	[13] = { "invalid_field", "a field is missing, unknown or out of bounds" },
	[14] = { "not_permitted", "the person's role does not allow this action" },
	[15] = { "no_consent",
	    "no active consent or lawful basis covers this request" },
	[16] = { "not_found", "no such record" },
	[17] = { "rate_limited", "too many requests; try again shortly" },
	[18] = { "internal", "internal error; the request had no effect" },
	[19] = { "unavailable", "the broker cannot be reached" },
	[20] = { "timeout", "no answer came in time" },
	[21] = { "bad_version", "the protocol version is not supported" },
	[22] = { "storage_full",
	    "the broker's store is full; nothing was written" },
	[23] = { "out_of_order",
	    "a queued request arrived before the one due first; it had no effect and is sent again" },
	[24] = { "invalid_identity",
	    "the child's identity is not valid, or does not name a child" },
};

static const struct errdef local_errs[] = {
	[0] = { "system", "system error" },
	[1] = { "nomem", "out of memory" },
	[2] = { "config", "configuration error" },
	[3] = { "key_permissions",
	    "a key file is readable by group or others (chmod 600 it)" },
	[4] = { "crypto", "cryptographic operation failed" },
	[5] = { "storage", "storage error" },
	[6] = { "usage", "invalid command-line usage" },
};

static const struct errdef *
lookup(int code)
{
	static const struct errdef unknown = { "unknown", "unknown error" };

	if (code <= 0 && code >= EHX_ERR_WIRE_LAST)
		return &wire_errs[-code];
	if (code <= EHX_ERR_SYSTEM && code >= EHX_ERR_LOCAL_LAST)
		return &local_errs[EHX_ERR_SYSTEM - code];
	return &unknown;
}

const char *
ehx_strerror(int code)
{
	return lookup(code)->text;
}

const char *
ehx_errname(int code)
{
	return lookup(code)->name;
}

int
ehx_err_to_wire(int code)
{
	if (code <= 0 && code >= EHX_ERR_WIRE_LAST)
		return -code;
	return -EHX_ERR_INTERNAL;
}

int
ehx_err_from_wire(int wire)
{
	if (wire >= 0 && wire <= -EHX_ERR_WIRE_LAST)
		return -wire;
	return EHX_ERR_INTERNAL;
}
