/*
 * validate.h — the rules for each request payload's fields, shared by the
 * command line (to refuse early, with the same words) and the broker (which
 * never trusts that anyone else checked).
 */
#ifndef EHX_VALIDATE_H
#define EHX_VALIDATE_H

#include <stddef.h>
#include <stdint.h>

#include "ehx.pb-c.h"
#include "ehx/limits.h"

/*
 * Check the acting person: user id, name, a known role. Returns 0 or
 * EHX_ERR_INVALID_FIELD with why filled in.
 */
int ehx_validate_person(const Ehx__Person *p, char *why, size_t whysz);

/*
 * The person as the audit log may keep and show it (PROTOCOL.md §7.2): p
 * itself when ehx_validate_person accepts it; else a copy in out whose
 * user_id and name are p's as printable ASCII (other bytes as \xHH, see
 * ehx_log_escape), cut to EHX_MAX_USER_ID and EHX_MAX_NAME bytes, so that
 * a refused request's person can neither grow a record past one answer
 * nor carry bytes that are not UTF-8 or that drive a terminal. NULL for
 * no person. The result is valid while p and out are.
 */
struct ehx_audit_person {
	Ehx__Person p;
	char user_id[EHX_MAX_USER_ID + 1];
	char name[EHX_MAX_NAME + 1];
};
const Ehx__Person *ehx_audit_person(const Ehx__Person *p,
    struct ehx_audit_person *out);

/*
 * Check a request payload's fields and bounds: the NHS number
 * (EHX_ERR_INVALID_NHS_NUMBER), then every other field
 * (EHX_ERR_INVALID_FIELD); a Body without a request payload is
 * EHX_ERR_MALFORMED. now_ms bounds the consent dates. why gets a sentence.
 */
int ehx_validate_request(const Ehx__Body *b, int64_t now_ms, char *why,
    size_t whysz);

/* The NHS number a request is about, or NULL if it has none. */
const char *ehx_request_nhs(const Ehx__Body *b);

/*
 * The roles (a bit per Ehx__Role) that may send a request of this payload
 * (DESIGN.md §3, PROTOCOL.md §6.1); 0 for a payload that is not a request.
 * The broker decides by it; the agent refuses early by it.
 */
unsigned ehx_payload_roles(int payload_case);

#endif
