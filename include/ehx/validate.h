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

/*
 * Check the acting person: user id, name, a known role. Returns 0 or
 * EHX_ERR_INVALID_FIELD with why filled in.
 */
int ehx_validate_person(const Ehx__Person *p, char *why, size_t whysz);

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
