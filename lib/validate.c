/*
 * validate.c — field rules for every request payload (docs/PROTOCOL.md §5).
 * The first rule broken decides the error code and the sentence.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ehx/checkpoint.h"
#include "ehx/err.h"
#include "ehx/identity.h"
#include "ehx/limits.h"
#include "ehx/log.h"
#include "ehx/names.h"
#include "ehx/nhs.h"
#include "ehx/util.h"
#include "ehx/validate.h"

static int fail(int code, char *why, size_t whysz, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
fail(int code, char *why, size_t whysz, const char *fmt, ...)
{
	va_list ap;

	if (whysz > 0) {
		va_start(ap, fmt);
		vsnprintf(why, whysz, fmt, ap);
		va_end(ap);
	}
	return code;
}

#define BAD(...) fail(EHX_ERR_INVALID_FIELD, why, whysz, __VA_ARGS__)

static int
check_text(const char *s, size_t min, size_t max, const char *what,
    char *why, size_t whysz)
{
	if (!ehx_text_ok(s, min, max)) {
		if (min > 0 && (s == NULL || s[0] == '\0'))
			return BAD("%s is required", what);
		return BAD("%s must be %s%zu bytes of printable UTF-8", what,
		    min > 0 ? "1.." : "at most ", max);
	}
	return 0;
}

int
ehx_validate_person(const Ehx__Person *p, char *why, size_t whysz)
{
	int r;

	if (p == NULL)
		return BAD("the acting person is missing");
	if ((r = check_text(p->user_id, 1, EHX_MAX_USER_ID, "person.user_id",
	    why, whysz)) != 0 ||
	    (r = check_text(p->name, 1, EHX_MAX_NAME, "person.name", why,
	    whysz)) != 0)
		return r;
	if (p->role <= EHX__ROLE__ROLE_UNSPECIFIED || p->role > EHX__ROLE__ROLE_ADMIN)
		return BAD("person.role is not a known role");
	return 0;
}

const Ehx__Person *
ehx_audit_person(const Ehx__Person *p, struct ehx_audit_person *out)
{
	char why[8];

	if (p == NULL || ehx_validate_person(p, why, sizeof(why)) == 0)
		return p;
	ehx__person__init(&out->p);
	out->p.user_id = ehx_log_escape(out->user_id, sizeof(out->user_id),
	    p->user_id != NULL ? p->user_id : "", p->user_id != NULL ?
	    strlen(p->user_id) : 0);
	out->p.name = ehx_log_escape(out->name, sizeof(out->name),
	    p->name != NULL ? p->name : "", p->name != NULL ? strlen(p->name) :
	    0);
	out->p.role = p->role;
	return &out->p;
}

static int
check_nhs(const char *nhs, char *why, size_t whysz)
{
	if (!ehx_nhs_valid(nhs))
		return fail(EHX_ERR_INVALID_NHS_NUMBER, why, whysz,
		    "the NHS number is not valid (10 digits with a "
		    "modulus-11 check digit)");
	return 0;
}

/* The child of a change: an NHS number, or an identity (§10.3), not both. */
static int
check_child(const char *nhs, const Ehx__ChildIdentity *child, int64_t now,
    char *why, size_t whysz)
{
	if (child == NULL)
		return check_nhs(nhs, why, whysz);
	if (nhs != NULL && nhs[0] != '\0')
		return BAD("name the child by nhs_number or by child, not both "
		    "(an NHS number goes in child.nhs_number)");
	return ehx_validate_identity(child, now, why, whysz);
}

static int
check_practitioner(const Ehx__Practitioner *p, char *why, size_t whysz)
{
	int r;

	if (p == NULL)
		return BAD("practitioner is required");
	if ((r = check_text(p->name, 1, EHX_MAX_NAME, "practitioner.name",
	    why, whysz)) != 0 ||
	    (r = check_text(p->role, 0, EHX_MAX_JOB, "practitioner.role",
	    why, whysz)) != 0 ||
	    (r = check_text(p->contact, 0, EHX_MAX_CONTACT,
	    "practitioner.contact", why, whysz)) != 0)
		return r;
	return 0;
}

static int
check_publish(const Ehx__PublishFlag *m, int64_t now, char *why,
    size_t whysz)
{
	int r;

	if ((r = check_child(m->nhs_number, m->child, now, why, whysz)) != 0)
		return r;
	if (!ehx_ref_ok(m->ref))
		return BAD("ref must be 1..%d of A-Z a-z 0-9 . _ : / -",
		    EHX_MAX_REF);
	if (!ehx_category_valid((int)m->category))
		return BAD("category %d is not a known category", m->category);
	if (m->level < 1 || m->level > 4)
		return BAD("level of need must be 1..4, not %u", m->level);
	if ((r = check_practitioner(m->practitioner, why, whysz)) != 0)
		return r;
	if (m->locality[0] != '\0' && !ehx_id_ok(m->locality))
		return BAD("locality must be 1..%d of a-z 0-9 _ -", EHX_MAX_ID);
	return check_text(m->note, 0, EHX_MAX_NOTE, "note", why, whysz);
}

static int
check_involvement(const Ehx__RecordInvolvement *m, int64_t now, char *why,
    size_t whysz)
{
	int y, mo, d, r;
	int64_t start, end, today = now / 86400000;

	if (m->child == NULL)
		return fail(EHX_ERR_INVALID_IDENTITY, why, whysz, "the child is "
		    "not named: record_involvement needs child");
	if ((r = ehx_validate_identity(m->child, now, why, whysz)) != 0)
		return r;
	if (m->kind < EHX__INVOLVEMENT_KIND__INVOLVEMENT_KIND_ENROLLED ||
	    m->kind > EHX__INVOLVEMENT_KIND__INVOLVEMENT_KIND_TENANCY)
		return BAD("kind must be enrolled, registered, caseload or "
		    "tenancy");
	if (ehx_date_parse(m->starts_on, &y, &mo, &d) != 0)
		return BAD("starts_on must be a date written YYYY-MM-DD");
	start = ehx_days_from_civil(y, mo, d);
	if (start > today + 1)
		return BAD("starts_on %s is in the future", m->starts_on);
	if (m->ends_on[0] == '\0')
		return 0;
	if (ehx_date_parse(m->ends_on, &y, &mo, &d) != 0)
		return BAD("ends_on must be empty or a date written YYYY-MM-DD");
	end = ehx_days_from_civil(y, mo, d);
	if (end < start)
		return BAD("ends_on %s is before starts_on %s", m->ends_on,
		    m->starts_on);
	return 0;
}

static int
check_list(const Ehx__QueryEarlyHelpList *m, char *why, size_t whysz)
{
	if (m->list != EHX__EARLY_HELP_LIST__EARLY_HELP_LIST_KNOWN_TO_SEVERAL &&
	    m->list != EHX__EARLY_HELP_LIST__EARLY_HELP_LIST_TROUBLED_FAMILIES)
		return BAD("list must be known_to_several or troubled_families");
	if (!ehx_id_ok(m->locality))
		return BAD("locality must be 1..%d of a-z 0-9 _ -", EHX_MAX_ID);
	if (m->after.len != 0 && m->after.len != EHX_PSEUDONYM_LEN)
		return BAD("after must be empty or a previous answer's next");
	if (m->limit > EHX_MAX_AUDIT_PAGE)
		return BAD("limit must be 0..%d", EHX_MAX_AUDIT_PAGE);
	return 0;
}

static int
check_close(const Ehx__CloseFlag *m, int64_t now, char *why, size_t whysz)
{
	int r;

	if ((r = check_child(m->nhs_number, m->child, now, why, whysz)) != 0)
		return r;
	if (!ehx_ref_ok(m->ref))
		return BAD("ref must be 1..%d of A-Z a-z 0-9 . _ : / -",
		    EHX_MAX_REF);
	return check_text(m->reason, 0, EHX_MAX_REASON, "reason", why, whysz);
}

static int
check_scope(const Ehx__ConsentScope *s, char *why, size_t whysz)
{
	unsigned seen = 0;

	if (s == NULL)
		return BAD("scope is required");
	if (s->n_agencies > EHX_MAX_SCOPE_AGENCIES)
		return BAD("scope names more than %d agencies",
		    EHX_MAX_SCOPE_AGENCIES);
	if (s->n_agency_types > EHX_MAX_SCOPE_TYPES)
		return BAD("scope names more than %d agency types",
		    EHX_MAX_SCOPE_TYPES);
	if (s->n_agencies + s->n_agency_types == 0)
		return BAD("scope must name at least one agency or agency type");
	for (size_t i = 0; i < s->n_agencies; i++)
		if (!ehx_id_ok(s->agencies[i]))
			return BAD("scope agency %zu is not a valid agency id",
			    i + 1);
	for (size_t i = 0; i < s->n_agency_types; i++)
		if (s->agency_types[i] <= EHX__AGENCY_TYPE__AGENCY_TYPE_UNSPECIFIED ||
		    s->agency_types[i] > EHX__AGENCY_TYPE__AGENCY_TYPE_VOLUNTARY)
			return BAD("scope agency type %d is not known",
			    s->agency_types[i]);
	if (s->n_purposes == 0 || s->n_purposes > EHX_MAX_PURPOSES)
		return BAD("scope must name 1..%d purposes", EHX_MAX_PURPOSES);
	for (size_t i = 0; i < s->n_purposes; i++) {
		int p = s->purposes[i];

		if (p <= EHX__PURPOSE__PURPOSE_UNSPECIFIED ||
		    p > EHX__PURPOSE__PURPOSE_ASSESSMENT)
			return BAD("purpose %d is not known", p);
		if (seen & (1u << p))
			return BAD("purpose %s is named twice",
			    ehx_purpose_name(p));
		seen |= 1u << p;
	}
	return 0;
}

static int
check_record_consent(const Ehx__RecordConsent *m, int64_t now, char *why,
    size_t whysz)
{
	int64_t start;
	int r;

	if ((r = check_nhs(m->nhs_number, why, whysz)) != 0)
		return r;
	if (m->given_by == NULL)
		return BAD("given_by is required");
	if (m->given_by->relation <= EHX__RELATION__RELATION_UNSPECIFIED ||
	    m->given_by->relation > EHX__RELATION__RELATION_CARER)
		return BAD("given_by.relation must be young_person, parent "
		    "or carer");
	if ((r = check_text(m->given_by->name, 1, EHX_MAX_NAME,
	    "given_by.name", why, whysz)) != 0)
		return r;
	if ((r = check_scope(m->scope, why, whysz)) != 0)
		return r;
	if (m->basis <= EHX__LAWFUL_BASIS__LAWFUL_BASIS_UNSPECIFIED ||
	    m->basis > EHX__LAWFUL_BASIS__LAWFUL_BASIS_VITAL_INTERESTS)
		return BAD("basis is not a known lawful basis");
	if (m->starts_at < 0 || m->starts_at > now + 366LL * 86400000)
		return BAD("starts_at must be 0 (now) or within a year");
	start = m->starts_at > 0 ? m->starts_at : now;
	if (m->expires_at <= start + EHX_MIN_EXPIRY_MS ||
	    m->expires_at <= now + EHX_MIN_EXPIRY_MS)
		return BAD("expires_at must be in the future and after "
		    "starts_at");
	if (m->expires_at - start > EHX_MAX_CONSENT_MS)
		return BAD("a consent may last at most three years");
	/* What it rests on: a signed form, a case record. */
	return check_text(m->evidence_ref, 1, EHX_MAX_EVIDENCE_REF,
	    "evidence_ref (the consent form's or record's reference)", why,
	    whysz);
}

static int
check_withdraw(const Ehx__WithdrawConsent *m, char *why, size_t whysz)
{
	unsigned char id[8];
	int r;

	if ((r = check_nhs(m->nhs_number, why, whysz)) != 0)
		return r;
	if (strncmp(m->consent_id, "c-", 2) != 0 ||
	    ehx_unhex(id, sizeof(id), m->consent_id + 2) != 0 ||
	    strspn(m->consent_id + 2, "0123456789abcdef") != 2 * sizeof(id))
		return BAD("consent_id must look like c-0123456789abcdef "
		    "(lower-case hex)");
	if ((r = check_text(m->reason, 1, EHX_MAX_REASON, "reason", why,
	    whysz)) != 0)
		return r;
	return check_text(m->withdrawn_by, 0, EHX_MAX_NAME, "withdrawn_by",
	    why, whysz);
}

/* A break-glass reason must say why: 20..280 bytes, at least three words. */
static int
check_break_glass(const char *reason, char *why, size_t whysz)
{
	size_t words = 0;
	bool in = false;

	if (reason[0] == '\0')
		return 0;
	if (!ehx_text_ok(reason, EHX_MIN_BREAK_GLASS, EHX_MAX_REASON))
		return BAD("a break-glass reason must be %d..%d bytes of "
		    "printable UTF-8 saying why the child is at risk",
		    EHX_MIN_BREAK_GLASS, EHX_MAX_REASON);
	for (const char *p = reason; *p != '\0'; p++) {
		bool sp = *p == ' ' || *p == '\t';

		if (!sp && !in)
			words++;
		in = !sp;
	}
	if (words < 3)
		return BAD("a break-glass reason must say why in words, not "
		    "one token");
	return 0;
}

static int
check_optional_nhs(const char *nhs, char *why, size_t whysz)
{
	return nhs[0] == '\0' ? 0 : check_nhs(nhs, why, whysz);
}

static int
check_page(uint64_t after_seq, uint32_t limit, char *why, size_t whysz)
{
	if (after_seq > EHX_MAX_SEQ)
		return BAD("after_seq is beyond any audit record");
	if (limit > EHX_MAX_AUDIT_PAGE)
		return BAD("limit must be 0..%d", EHX_MAX_AUDIT_PAGE);
	return 0;
}

static int
check_query_audit(const Ehx__QueryAudit *m, char *why, size_t whysz)
{
	int r;

	if ((r = check_optional_nhs(m->nhs_number, why, whysz)) != 0)
		return r;
	if (m->agency[0] != '\0' && !ehx_id_ok(m->agency))
		return BAD("agency must be an agency id");
	if ((r = check_text(m->user_id, 0, EHX_MAX_USER_ID, "user_id", why,
	    whysz)) != 0)
		return r;
	if (m->from_time < 0 || m->to_time < 0 ||
	    (m->to_time != 0 && m->to_time <= m->from_time))
		return BAD("the time range is empty or negative");
	if (m->decision != 0 && m->decision != EHX__DECISION__DECISION_ALLOW &&
	    m->decision != EHX__DECISION__DECISION_DENY)
		return BAD("decision must be allow or deny");
	return check_page(m->after_seq, m->limit, why, whysz);
}

static int
check_review(const Ehx__ReviewAlert *m, char *why, size_t whysz)
{
	if (m->alert == 0)
		return BAD("alert must name a break-glass audit record");
	if (m->outcome != EHX__REVIEW_OUTCOME__REVIEW_OUTCOME_JUSTIFIED &&
	    m->outcome != EHX__REVIEW_OUTCOME__REVIEW_OUTCOME_UNJUSTIFIED)
		return BAD("outcome must be justified or unjustified");
	return check_text(m->note, 1, EHX_MAX_REASON, "note", why, whysz);
}

static int
check_cosign(const Ehx__CosignCheckpoint *m, char *why, size_t whysz)
{
	const Ehx__Cosignature *c = m->cosignature;

	if (ehx_checkpoint_check(m->checkpoint) != 0 || m->checkpoint->size == 0)
		return BAD("checkpoint is missing or malformed");
	if (c == NULL || !ehx_id_ok(c->agency) ||
	    c->signer.len != EHX_FPR_LEN || c->signature.len != EHX_SIG_LEN ||
	    c->time < 0)
		return BAD("cosignature is missing or malformed");
	return 0;
}

int
ehx_validate_request(const Ehx__Body *b, int64_t now, char *why, size_t whysz)
{
	if (whysz > 0)
		why[0] = '\0';
	switch (b->payload_case) {
	case EHX__BODY__PAYLOAD_PUBLISH_FLAG:
		return check_publish(b->publish_flag, now, why, whysz);
	case EHX__BODY__PAYLOAD_CLOSE_FLAG:
		return check_close(b->close_flag, now, why, whysz);
	case EHX__BODY__PAYLOAD_RECORD_CONSENT:
		return check_record_consent(b->record_consent, now, why, whysz);
	case EHX__BODY__PAYLOAD_WITHDRAW_CONSENT:
		return check_withdraw(b->withdraw_consent, why, whysz);
	case EHX__BODY__PAYLOAD_QUERY_PICTURE: {
		int r;

		if ((r = check_nhs(b->query_picture->nhs_number, why,
		    whysz)) != 0)
			return r;
		return check_break_glass(b->query_picture->break_glass_reason,
		    why, whysz);
	}
	case EHX__BODY__PAYLOAD_QUERY_CONSENT:
		return check_nhs(b->query_consent->nhs_number, why, whysz);
	case EHX__BODY__PAYLOAD_QUERY_AUDIT:
		return check_query_audit(b->query_audit, why, whysz);
	case EHX__BODY__PAYLOAD_QUERY_ALERTS:
		return check_page(b->query_alerts->after_seq,
		    b->query_alerts->limit, why, whysz);
	case EHX__BODY__PAYLOAD_REVIEW_ALERT:
		return check_review(b->review_alert, why, whysz);
	case EHX__BODY__PAYLOAD_QUERY_DISCLOSURES:
		return check_page(b->query_disclosures->after_seq,
		    b->query_disclosures->limit, why, whysz);
	case EHX__BODY__PAYLOAD_QUERY_SAR:
		return check_nhs(b->query_sar->nhs_number, why, whysz);
	case EHX__BODY__PAYLOAD_EXPORT_AUDIT:
		return check_page(b->export_audit->after_seq,
		    b->export_audit->limit, why, whysz);
	case EHX__BODY__PAYLOAD_QUERY_PROOF:
		if (b->query_proof->new_size != 0 &&
		    b->query_proof->old_size > b->query_proof->new_size)
			return BAD("old_size is larger than new_size");
		if (b->query_proof->old_size > EHX_MAX_SEQ ||
		    b->query_proof->new_size > EHX_MAX_SEQ ||
		    b->query_proof->seq > EHX_MAX_SEQ)
			return BAD("a size is beyond any audit log");
		if (b->query_proof->cosigners > EHX_MAX_COSIGNERS)
			return BAD("cosigners must be 0-8");
		return 0;
	case EHX__BODY__PAYLOAD_COSIGN_CHECKPOINT:
		return check_cosign(b->cosign_checkpoint, why, whysz);
	case EHX__BODY__PAYLOAD_QUERY_EARLY_HELP_LIST:
		return check_list(b->query_early_help_list, why, whysz);
	case EHX__BODY__PAYLOAD_RECORD_INVOLVEMENT:
		return check_involvement(b->record_involvement, now, why, whysz);
	case EHX__BODY__PAYLOAD_FETCH_NOTIFICATIONS:
		if (b->fetch_notifications->limit < 1 ||
		    b->fetch_notifications->limit > EHX_MAX_FETCH)
			return BAD("limit must be 1..64");
		if (b->fetch_notifications->after > EHX_MAX_SEQ)
			return BAD("after is beyond any queue");
		if (b->fetch_notifications->after_id.len !=
		    (b->fetch_notifications->after == 0 ? 0 : EHX_MSGID_LEN))
			return BAD("after_id must be the 16-byte message id of "
			    "notification after (empty when after is 0)");
		return 0;
	default:
		return fail(EHX_ERR_MALFORMED, why, whysz,
		    "the body does not carry a request");
	}
}

const char *
ehx_request_nhs(const Ehx__Body *b)
{
	switch (b->payload_case) {
	case EHX__BODY__PAYLOAD_PUBLISH_FLAG:
		return b->publish_flag->child != NULL ?
		    b->publish_flag->child->nhs_number :
		    b->publish_flag->nhs_number;
	case EHX__BODY__PAYLOAD_CLOSE_FLAG:
		return b->close_flag->child != NULL ?
		    b->close_flag->child->nhs_number : b->close_flag->nhs_number;
	case EHX__BODY__PAYLOAD_RECORD_INVOLVEMENT:
		return b->record_involvement->child != NULL ?
		    b->record_involvement->child->nhs_number : NULL;
	case EHX__BODY__PAYLOAD_RECORD_CONSENT: return b->record_consent->nhs_number;
	case EHX__BODY__PAYLOAD_WITHDRAW_CONSENT: return b->withdraw_consent->nhs_number;
	case EHX__BODY__PAYLOAD_QUERY_PICTURE: return b->query_picture->nhs_number;
	case EHX__BODY__PAYLOAD_QUERY_CONSENT: return b->query_consent->nhs_number;
	case EHX__BODY__PAYLOAD_QUERY_SAR: return b->query_sar->nhs_number;
	case EHX__BODY__PAYLOAD_QUERY_AUDIT:
		return b->query_audit->nhs_number[0] != '\0' ?
		    b->query_audit->nhs_number : NULL;
	default: return NULL;
	}
}

#define ROLE(r) (1u << EHX__ROLE__ROLE_##r)
#define ANY_ROLE (ROLE(SYSTEM) | ROLE(PRACTITIONER) | \
	ROLE(INFORMATION_OFFICER) | ROLE(IG_OFFICER) | ROLE(ADMIN))

unsigned
ehx_payload_roles(int c)
{
	switch (c) {
	case EHX__BODY__PAYLOAD_PUBLISH_FLAG:
	case EHX__BODY__PAYLOAD_CLOSE_FLAG:
		return ROLE(SYSTEM) | ROLE(PRACTITIONER);
	case EHX__BODY__PAYLOAD_RECORD_CONSENT:
	case EHX__BODY__PAYLOAD_WITHDRAW_CONSENT:
		return ROLE(SYSTEM) | ROLE(PRACTITIONER) |
		    ROLE(INFORMATION_OFFICER);
	case EHX__BODY__PAYLOAD_QUERY_PICTURE:
		return ROLE(PRACTITIONER) | ROLE(INFORMATION_OFFICER);
	case EHX__BODY__PAYLOAD_QUERY_CONSENT:
		return ROLE(PRACTITIONER) | ROLE(INFORMATION_OFFICER) |
		    ROLE(IG_OFFICER);
	case EHX__BODY__PAYLOAD_QUERY_AUDIT:
	case EHX__BODY__PAYLOAD_QUERY_ALERTS:
	case EHX__BODY__PAYLOAD_REVIEW_ALERT:
	case EHX__BODY__PAYLOAD_QUERY_DISCLOSURES:
	case EHX__BODY__PAYLOAD_QUERY_SAR:
	case EHX__BODY__PAYLOAD_EXPORT_AUDIT:
		return ROLE(IG_OFFICER);
	case EHX__BODY__PAYLOAD_QUERY_PROOF:
	case EHX__BODY__PAYLOAD_COSIGN_CHECKPOINT:
		return ANY_ROLE;
	case EHX__BODY__PAYLOAD_FETCH_NOTIFICATIONS:
		return ROLE(SYSTEM);
	case EHX__BODY__PAYLOAD_QUERY_EARLY_HELP_LIST:
		return ROLE(INFORMATION_OFFICER);
	case EHX__BODY__PAYLOAD_RECORD_INVOLVEMENT:
		return ROLE(SYSTEM) | ROLE(PRACTITIONER);
	default:
		return 0;
	}
}
