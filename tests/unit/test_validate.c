/*
 * test_validate — the field rules of every request payload
 * (lib/validate.c). Each case starts from a valid request, breaks one rule
 * and checks the code and that a sentence was given. Bodies go through a
 * pack/unpack round trip first, so fields look exactly as they do after
 * decoding (empty strings, not NULL).
 */
#include "testutil.h"

#include "ehx.pb-c.h"
#include "ehx/err.h"
#include "ehx/limits.h"
#include "ehx/validate.h"

#define NOW 1767225600000LL             /* 2026-01-01T00:00:00Z */
#define DAY 86400000LL

/* Pack and unpack b, then validate; the decoded Body is what the broker
 * checks. Returns the code; why gets the sentence. */
static int
check(const Ehx__Body *b, char *why, size_t whysz)
{
	size_t n = ehx__body__get_packed_size(b);
	unsigned char *buf = malloc(n ? n : 1);
	Ehx__Body *d;
	int r;

	assert_non_null(buf);
	ehx__body__pack(b, buf);
	d = ehx__body__unpack(NULL, n, buf);
	assert_non_null(d);
	why[0] = 'x';
	why[1] = '\0';
	r = ehx_validate_request(d, NOW, why, whysz);
	if (r == 0)
		assert_string_equal(why, "");
	else
		assert_true(strlen(why) > 5);
	/* The NHS number the request is about (governance queries other
	 * than subject access may have none). */
	switch (d->payload_case) {
	case EHX__BODY__PAYLOAD_QUERY_AUDIT:
	case EHX__BODY__PAYLOAD_QUERY_ALERTS:
	case EHX__BODY__PAYLOAD_REVIEW_ALERT:
	case EHX__BODY__PAYLOAD_QUERY_DISCLOSURES:
	case EHX__BODY__PAYLOAD_EXPORT_AUDIT:
	case EHX__BODY__PAYLOAD_QUERY_PROOF:
	case EHX__BODY__PAYLOAD_COSIGN_CHECKPOINT:
	case EHX__BODY__PAYLOAD_QUERY_EARLY_HELP_LIST:
		break;
	default:
		if (r != EHX_ERR_MALFORMED)
			assert_non_null(ehx_request_nhs(d));
	}
	ehx__body__free_unpacked(d, NULL);
	free(buf);
	return r;
}

#define OK(b)      do { char w_[256]; int r_ = check((b), w_, sizeof(w_)); \
	if (r_ != 0) fail_msg("refused (%d): %s", r_, w_); } while (0)
#define BAD(b, code) do { char w_[256]; int r_ = check((b), w_, sizeof(w_)); \
	if (r_ != (code)) fail_msg("got %d (%s), want %d", r_, w_, (code)); \
	} while (0)

/* ---- publish and close ---------------------------------------------------- */

struct pub {
	Ehx__Body body;
	Ehx__PublishFlag pf;
	Ehx__Practitioner pr;
};

static void
pub_init(struct pub *p)
{
	ehx__body__init(&p->body);
	ehx__publish_flag__init(&p->pf);
	ehx__practitioner__init(&p->pr);
	p->pr.name = "Jo Brown";
	p->pr.role = "school nurse";
	p->pr.contact = "jo.brown@example.org";
	p->pf.nhs_number = "9434765919";
	p->pf.ref = "CASE-2026/001";
	p->pf.category = EHX__CATEGORY__CATEGORY_MENTAL_HEALTH;
	p->pf.level = 2;
	p->pf.practitioner = &p->pr;
	p->pf.note = "seen at school";
	p->body.payload_case = EHX__BODY__PAYLOAD_PUBLISH_FLAG;
	p->body.publish_flag = &p->pf;
}

static void
test_publish(void **state)
{
	struct pub p;
	char note[EHX_MAX_NOTE + 2], name[EHX_MAX_NAME + 2];

	(void)state;
	pub_init(&p);
	OK(&p.body);
	p.pf.nhs_number = "9434765918";
	BAD(&p.body, EHX_ERR_INVALID_NHS_NUMBER);
	p.pf.nhs_number = "943 476 5919";   /* the broker takes digits only */
	BAD(&p.body, EHX_ERR_INVALID_NHS_NUMBER);
	p.pf.nhs_number = "";
	BAD(&p.body, EHX_ERR_INVALID_NHS_NUMBER);
	/* The NHS number is checked first. */
	p.pf.ref = "bad ref";
	BAD(&p.body, EHX_ERR_INVALID_NHS_NUMBER);

	pub_init(&p);
	p.pf.category = 0;
	BAD(&p.body, EHX_ERR_INVALID_FIELD);
	p.pf.category = 999;
	BAD(&p.body, EHX_ERR_INVALID_FIELD);
	p.pf.category = 21;
	BAD(&p.body, EHX_ERR_INVALID_FIELD);
	p.pf.category = 20;
	OK(&p.body);
	p.pf.category = 1;
	OK(&p.body);

	pub_init(&p);
	for (unsigned l = 1; l <= 4; l++) {
		p.pf.level = l;
		OK(&p.body);
	}
	p.pf.level = 0;
	BAD(&p.body, EHX_ERR_INVALID_FIELD);
	p.pf.level = 5;
	BAD(&p.body, EHX_ERR_INVALID_FIELD);

	pub_init(&p);
	p.pf.practitioner = NULL;
	BAD(&p.body, EHX_ERR_INVALID_FIELD);
	pub_init(&p);
	p.pr.name = "";
	BAD(&p.body, EHX_ERR_INVALID_FIELD);
	memset(name, 'n', EHX_MAX_NAME);
	name[EHX_MAX_NAME] = '\0';
	p.pr.name = name;
	OK(&p.body);
	name[EHX_MAX_NAME] = 'n';
	name[EHX_MAX_NAME + 1] = '\0';
	BAD(&p.body, EHX_ERR_INVALID_FIELD);
	pub_init(&p);
	p.pr.role = "";
	p.pr.contact = "";
	OK(&p.body);
	p.pr.contact = "tel:\n123";
	BAD(&p.body, EHX_ERR_INVALID_FIELD);

	/* The note: 0..280 bytes. */
	pub_init(&p);
	p.pf.note = "";
	OK(&p.body);
	memset(note, 'a', EHX_MAX_NOTE);
	note[EHX_MAX_NOTE] = '\0';
	p.pf.note = note;
	OK(&p.body);
	note[EHX_MAX_NOTE] = 'a';
	note[EHX_MAX_NOTE + 1] = '\0';
	BAD(&p.body, EHX_ERR_INVALID_FIELD);
	p.pf.note = "line one\nline two";
	BAD(&p.body, EHX_ERR_INVALID_FIELD);
	p.pf.note = "bad \xc0\xaf utf-8";
	BAD(&p.body, EHX_ERR_INVALID_FIELD);

	/* The ref. */
	pub_init(&p);
	p.pf.ref = "CASE 1";
	BAD(&p.body, EHX_ERR_INVALID_FIELD);
	p.pf.ref = "";
	BAD(&p.body, EHX_ERR_INVALID_FIELD);
	p.pf.ref = "case#1";
	BAD(&p.body, EHX_ERR_INVALID_FIELD);
	p.pf.ref = "a.b_c:d/e-F9";
	OK(&p.body);
}

static void
test_close(void **state)
{
	Ehx__Body b = EHX__BODY__INIT;
	Ehx__CloseFlag c = EHX__CLOSE_FLAG__INIT;
	char reason[EHX_MAX_REASON + 2];

	(void)state;
	c.nhs_number = "9992914173";
	c.ref = "CASE-1";
	c.reason = "no further concerns";
	b.payload_case = EHX__BODY__PAYLOAD_CLOSE_FLAG;
	b.close_flag = &c;
	OK(&b);
	c.reason = "";
	OK(&b);
	memset(reason, 'r', EHX_MAX_REASON);
	reason[EHX_MAX_REASON] = '\0';
	c.reason = reason;
	OK(&b);
	reason[EHX_MAX_REASON] = 'r';
	reason[EHX_MAX_REASON + 1] = '\0';
	BAD(&b, EHX_ERR_INVALID_FIELD);
	c.reason = "";
	c.ref = "has space";
	BAD(&b, EHX_ERR_INVALID_FIELD);
	c.ref = "CASE-1";
	c.nhs_number = "9992914174";
	BAD(&b, EHX_ERR_INVALID_NHS_NUMBER);
}

static void
test_queries(void **state)
{
	Ehx__Body b = EHX__BODY__INIT;
	Ehx__QueryPicture qp = EHX__QUERY_PICTURE__INIT;
	Ehx__QueryConsent qc = EHX__QUERY_CONSENT__INIT;

	(void)state;
	qp.nhs_number = "9997763173";
	b.payload_case = EHX__BODY__PAYLOAD_QUERY_PICTURE;
	b.query_picture = &qp;
	OK(&b);
	qp.nhs_number = "9997763174";
	BAD(&b, EHX_ERR_INVALID_NHS_NUMBER);
	qc.nhs_number = "9990669074";
	b.payload_case = EHX__BODY__PAYLOAD_QUERY_CONSENT;
	b.query_consent = &qc;
	OK(&b);
	qc.nhs_number = "999066907";
	BAD(&b, EHX_ERR_INVALID_NHS_NUMBER);
}

/* Right early help lists, and a publish's locality. */
static void
test_lists(void **state)
{
	Ehx__Body b = EHX__BODY__INIT;
	Ehx__QueryEarlyHelpList q = EHX__QUERY_EARLY_HELP_LIST__INIT;
	unsigned char after[EHX_PSEUDONYM_LEN + 1] = { 0 };
	char loc[EHX_MAX_ID + 2];
	struct pub p;

	(void)state;
	q.list = EHX__EARLY_HELP_LIST__EARLY_HELP_LIST_KNOWN_TO_SEVERAL;
	q.locality = "east";
	b.payload_case = EHX__BODY__PAYLOAD_QUERY_EARLY_HELP_LIST;
	b.query_early_help_list = &q;
	OK(&b);
	q.list = EHX__EARLY_HELP_LIST__EARLY_HELP_LIST_TROUBLED_FAMILIES;
	OK(&b);
	q.list = 0;
	BAD(&b, EHX_ERR_INVALID_FIELD);
	q.list = 3;
	BAD(&b, EHX_ERR_INVALID_FIELD);
	q.list = 1;
	q.locality = "";
	BAD(&b, EHX_ERR_INVALID_FIELD);
	q.locality = "East";
	BAD(&b, EHX_ERR_INVALID_FIELD);
	q.locality = "east side";
	BAD(&b, EHX_ERR_INVALID_FIELD);
	memset(loc, 'a', sizeof(loc) - 1);
	loc[EHX_MAX_ID] = '\0';
	q.locality = loc;
	OK(&b);
	loc[EHX_MAX_ID] = 'a';
	loc[EHX_MAX_ID + 1] = '\0';
	BAD(&b, EHX_ERR_INVALID_FIELD);
	q.locality = "east";
	q.after.data = after;
	q.after.len = EHX_PSEUDONYM_LEN;
	OK(&b);
	q.after.len = EHX_PSEUDONYM_LEN + 1;
	BAD(&b, EHX_ERR_INVALID_FIELD);
	q.after.len = 16;
	BAD(&b, EHX_ERR_INVALID_FIELD);
	q.after.len = 0;
	q.limit = EHX_MAX_AUDIT_PAGE;
	OK(&b);
	q.limit = EHX_MAX_AUDIT_PAGE + 1;
	BAD(&b, EHX_ERR_INVALID_FIELD);

	pub_init(&p);
	p.pf.locality = "west";
	OK(&p.body);
	p.pf.locality = "West";
	BAD(&p.body, EHX_ERR_INVALID_FIELD);
	p.pf.locality = "-";
	BAD(&p.body, EHX_ERR_INVALID_FIELD);
}

/* Break-glass reasons, and the governance queries' filters and pages. */
static void
test_governance(void **state)
{
	Ehx__Body b = EHX__BODY__INIT;
	Ehx__QueryPicture qp = EHX__QUERY_PICTURE__INIT;
	Ehx__QueryAudit qa = EHX__QUERY_AUDIT__INIT;
	Ehx__QueryAlerts ql = EHX__QUERY_ALERTS__INIT;
	Ehx__ReviewAlert rv = EHX__REVIEW_ALERT__INIT;
	Ehx__QueryProof pf = EHX__QUERY_PROOF__INIT;
	Ehx__ExportAudit ex = EHX__EXPORT_AUDIT__INIT;

	(void)state;
	qp.nhs_number = "9997763173";
	b.payload_case = EHX__BODY__PAYLOAD_QUERY_PICTURE;
	b.query_picture = &qp;
	qp.break_glass_reason = "child disclosed harm at school today";
	OK(&b);
	qp.break_glass_reason = "worried";
	BAD(&b, EHX_ERR_INVALID_FIELD);
	qp.break_glass_reason = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
	BAD(&b, EHX_ERR_INVALID_FIELD);         /* one token, not a reason */
	qp.break_glass_reason = "child disclosed\nharm at school today";
	BAD(&b, EHX_ERR_INVALID_FIELD);

	b.payload_case = EHX__BODY__PAYLOAD_QUERY_AUDIT;
	b.query_audit = &qa;
	OK(&b);
	qa.nhs_number = "9997763174";
	BAD(&b, EHX_ERR_INVALID_NHS_NUMBER);
	qa.nhs_number = "9997763173";
	qa.agency = "Not An Id";
	BAD(&b, EHX_ERR_INVALID_FIELD);
	qa.agency = "police";
	qa.from_time = 2000;
	qa.to_time = 1000;
	BAD(&b, EHX_ERR_INVALID_FIELD);
	qa.to_time = 0;
	qa.decision = 7;
	BAD(&b, EHX_ERR_INVALID_FIELD);
	qa.decision = EHX__DECISION__DECISION_DENY;
	qa.limit = EHX_MAX_AUDIT_PAGE + 1;
	BAD(&b, EHX_ERR_INVALID_FIELD);
	qa.limit = EHX_MAX_AUDIT_PAGE;
	qa.after_seq = UINT64_MAX;              /* would wrap to the start */
	BAD(&b, EHX_ERR_INVALID_FIELD);
	qa.after_seq = 12;
	OK(&b);

	b.payload_case = EHX__BODY__PAYLOAD_QUERY_ALERTS;
	b.query_alerts = &ql;
	ql.after_seq = EHX_MAX_SEQ + 1;
	BAD(&b, EHX_ERR_INVALID_FIELD);
	b.payload_case = EHX__BODY__PAYLOAD_EXPORT_AUDIT;
	b.export_audit = &ex;
	ex.after_seq = UINT64_MAX;
	BAD(&b, EHX_ERR_INVALID_FIELD);

	b.payload_case = EHX__BODY__PAYLOAD_REVIEW_ALERT;
	b.review_alert = &rv;
	BAD(&b, EHX_ERR_INVALID_FIELD);
	rv.alert = 3;
	rv.outcome = EHX__REVIEW_OUTCOME__REVIEW_OUTCOME_JUSTIFIED;
	BAD(&b, EHX_ERR_INVALID_FIELD);         /* no note */
	rv.note = "confirmed with the safeguarding lead";
	OK(&b);
	rv.outcome = 9;
	BAD(&b, EHX_ERR_INVALID_FIELD);

	b.payload_case = EHX__BODY__PAYLOAD_QUERY_PROOF;
	b.query_proof = &pf;
	pf.old_size = 10;
	pf.new_size = 5;
	BAD(&b, EHX_ERR_INVALID_FIELD);
	pf.new_size = 0;
	OK(&b);
	pf.seq = UINT64_MAX;
	BAD(&b, EHX_ERR_INVALID_FIELD);
}

static void
test_not_a_request(void **state)
{
	Ehx__Body b = EHX__BODY__INIT;
	Ehx__Ack ack = EHX__ACK__INIT;
	char why[128];

	(void)state;
	BAD(&b, EHX_ERR_MALFORMED);
	assert_null(ehx_request_nhs(&b));
	b.payload_case = EHX__BODY__PAYLOAD_ACK;
	b.ack = &ack;
	BAD(&b, EHX_ERR_MALFORMED);
	assert_null(ehx_request_nhs(&b));
	/* why may be left out. */
	assert_int_equal(ehx_validate_request(&b, NOW, why, 0),
	    EHX_ERR_MALFORMED);
}

/* ---- consent -------------------------------------------------------------- */

struct rc {
	Ehx__Body body;
	Ehx__RecordConsent m;
	Ehx__GivenBy gb;
	Ehx__ConsentScope scope;
	char *agencies[EHX_MAX_SCOPE_AGENCIES + 2];
	Ehx__AgencyType types[EHX_MAX_SCOPE_TYPES + 2];
	Ehx__Purpose purposes[EHX_MAX_PURPOSES + 2];
	char names[EHX_MAX_SCOPE_AGENCIES + 2][16];
};

static void
rc_init(struct rc *c)
{
	memset(c, 0, sizeof(*c));
	ehx__body__init(&c->body);
	ehx__record_consent__init(&c->m);
	ehx__given_by__init(&c->gb);
	ehx__consent_scope__init(&c->scope);
	for (size_t i = 0; i < EHX_MAX_SCOPE_AGENCIES + 2; i++) {
		snprintf(c->names[i], sizeof(c->names[i]), "agency-%zu", i);
		c->agencies[i] = c->names[i];
	}
	c->gb.relation = EHX__RELATION__RELATION_PARENT;
	c->gb.name = "Pat Doe";
	c->types[0] = EHX__AGENCY_TYPE__AGENCY_TYPE_HEALTH;
	c->purposes[0] = EHX__PURPOSE__PURPOSE_WHOLE_PICTURE;
	c->scope.agencies = c->agencies;
	c->scope.n_agencies = 1;
	c->scope.agency_types = c->types;
	c->scope.n_agency_types = 1;
	c->scope.purposes = c->purposes;
	c->scope.n_purposes = 1;
	c->m.nhs_number = "9434765919";
	c->m.given_by = &c->gb;
	c->m.scope = &c->scope;
	c->m.basis = EHX__LAWFUL_BASIS__LAWFUL_BASIS_CONSENT;
	c->m.starts_at = 0;
	c->m.expires_at = NOW + 365 * DAY;
	c->m.evidence_ref = "FORM-2026-0042";
	c->body.payload_case = EHX__BODY__PAYLOAD_RECORD_CONSENT;
	c->body.record_consent = &c->m;
}

static void
test_consent_people(void **state)
{
	struct rc c;

	(void)state;
	rc_init(&c);
	OK(&c.body);
	c.m.nhs_number = "1234567890";
	BAD(&c.body, EHX_ERR_INVALID_NHS_NUMBER);

	rc_init(&c);
	c.m.given_by = NULL;
	BAD(&c.body, EHX_ERR_INVALID_FIELD);
	rc_init(&c);
	c.gb.relation = 0;
	BAD(&c.body, EHX_ERR_INVALID_FIELD);
	c.gb.relation = 4;
	BAD(&c.body, EHX_ERR_INVALID_FIELD);
	for (int r = 1; r <= 3; r++) {
		c.gb.relation = r;
		OK(&c.body);
	}
	c.gb.name = "";
	BAD(&c.body, EHX_ERR_INVALID_FIELD);

	/* Issue 16: what it rests on, always: 1..64 bytes of text. */
	rc_init(&c);
	c.m.evidence_ref = "";
	BAD(&c.body, EHX_ERR_INVALID_FIELD);
	c.m.evidence_ref = "F\x01RM";
	BAD(&c.body, EHX_ERR_INVALID_FIELD);
	c.m.evidence_ref = "0123456789012345678901234567890123456789012345678901234567890123";
	OK(&c.body);
	c.m.evidence_ref = "0123456789012345678901234567890123456789012345678901234567890123x";
	BAD(&c.body, EHX_ERR_INVALID_FIELD);
}

static void
test_consent_scope(void **state)
{
	struct rc c;

	(void)state;
	rc_init(&c);
	c.scope.n_agencies = 0;
	c.scope.n_agency_types = 0;
	BAD(&c.body, EHX_ERR_INVALID_FIELD);          /* empty scope */
	rc_init(&c);
	c.m.scope = NULL;
	BAD(&c.body, EHX_ERR_INVALID_FIELD);
	/* Agencies alone, types alone. */
	rc_init(&c);
	c.scope.n_agency_types = 0;
	OK(&c.body);
	rc_init(&c);
	c.scope.n_agencies = 0;
	OK(&c.body);
	/* 32 agencies, then 33. */
	rc_init(&c);
	c.scope.n_agencies = EHX_MAX_SCOPE_AGENCIES;
	OK(&c.body);
	c.scope.n_agencies = EHX_MAX_SCOPE_AGENCIES + 1;
	BAD(&c.body, EHX_ERR_INVALID_FIELD);
	rc_init(&c);
	c.agencies[0] = "Not An Id";
	BAD(&c.body, EHX_ERR_INVALID_FIELD);
	c.agencies[0] = "";
	BAD(&c.body, EHX_ERR_INVALID_FIELD);
	/* Agency types. */
	rc_init(&c);
	c.types[0] = 99;
	BAD(&c.body, EHX_ERR_INVALID_FIELD);
	c.types[0] = 0;
	BAD(&c.body, EHX_ERR_INVALID_FIELD);
	c.types[0] = 7;
	BAD(&c.body, EHX_ERR_INVALID_FIELD);
	for (int t = 1; t <= 6; t++)
		c.types[t - 1] = t;
	c.types[6] = 1;
	c.types[7] = 2;
	c.scope.n_agency_types = 8;
	OK(&c.body);
	c.types[8] = 3;
	c.scope.n_agency_types = 9;
	BAD(&c.body, EHX_ERR_INVALID_FIELD);
	/* Purposes: 1..3, each known, none twice. */
	rc_init(&c);
	c.scope.n_purposes = 0;
	BAD(&c.body, EHX_ERR_INVALID_FIELD);
	c.purposes[0] = 1;
	c.purposes[1] = 2;
	c.purposes[2] = 3;
	c.scope.n_purposes = 3;
	OK(&c.body);
	c.purposes[2] = 1;
	BAD(&c.body, EHX_ERR_INVALID_FIELD);          /* duplicate */
	c.purposes[1] = 1;
	c.scope.n_purposes = 2;
	BAD(&c.body, EHX_ERR_INVALID_FIELD);
	c.purposes[3] = 3;
	c.purposes[1] = 2;
	c.purposes[2] = 3;
	c.scope.n_purposes = 4;
	BAD(&c.body, EHX_ERR_INVALID_FIELD);          /* four */
	rc_init(&c);
	c.purposes[0] = 0;
	BAD(&c.body, EHX_ERR_INVALID_FIELD);
	c.purposes[0] = 4;
	BAD(&c.body, EHX_ERR_INVALID_FIELD);
	c.purposes[0] = 31;
	BAD(&c.body, EHX_ERR_INVALID_FIELD);
	c.purposes[0] = 32;
	BAD(&c.body, EHX_ERR_INVALID_FIELD);
	c.purposes[0] = -1;
	BAD(&c.body, EHX_ERR_INVALID_FIELD);
}

static void
test_consent_basis_and_dates(void **state)
{
	struct rc c;

	(void)state;
	rc_init(&c);
	c.m.basis = 0;
	BAD(&c.body, EHX_ERR_INVALID_FIELD);
	c.m.basis = 5;
	BAD(&c.body, EHX_ERR_INVALID_FIELD);
	for (int b = 1; b <= 4; b++) {
		c.m.basis = b;
		OK(&c.body);
	}
	/* Expiry. */
	rc_init(&c);
	c.m.expires_at = NOW - DAY;
	BAD(&c.body, EHX_ERR_INVALID_FIELD);          /* in the past */
	c.m.expires_at = 0;
	BAD(&c.body, EHX_ERR_INVALID_FIELD);
	c.m.expires_at = NOW;
	BAD(&c.body, EHX_ERR_INVALID_FIELD);
	c.m.expires_at = NOW + EHX_MIN_EXPIRY_MS;
	BAD(&c.body, EHX_ERR_INVALID_FIELD);          /* at least a minute */
	c.m.expires_at = NOW + EHX_MIN_EXPIRY_MS + 1;
	OK(&c.body);
	c.m.expires_at = NOW + EHX_MAX_CONSENT_MS;
	OK(&c.body);
	c.m.expires_at = NOW + EHX_MAX_CONSENT_MS + 1;
	BAD(&c.body, EHX_ERR_INVALID_FIELD);          /* over three years */
	c.m.expires_at = NOW + 4 * 366 * DAY;
	BAD(&c.body, EHX_ERR_INVALID_FIELD);
	/* Start dates: 0 (now) or within a year; expiry after the start. */
	rc_init(&c);
	c.m.starts_at = NOW + 30 * DAY;
	c.m.expires_at = NOW + 60 * DAY;
	OK(&c.body);
	c.m.expires_at = NOW + 29 * DAY;
	BAD(&c.body, EHX_ERR_INVALID_FIELD);          /* before the start */
	c.m.starts_at = NOW + 367 * DAY;
	c.m.expires_at = NOW + 400 * DAY;
	BAD(&c.body, EHX_ERR_INVALID_FIELD);
	c.m.starts_at = -1;
	BAD(&c.body, EHX_ERR_INVALID_FIELD);
	/* Three years counted from the start, not from now. */
	c.m.starts_at = NOW + 100 * DAY;
	c.m.expires_at = NOW + 100 * DAY + EHX_MAX_CONSENT_MS;
	OK(&c.body);
	c.m.expires_at++;
	BAD(&c.body, EHX_ERR_INVALID_FIELD);
	/* A start in the past: the expiry must still be in the future. */
	c.m.starts_at = NOW - 10 * DAY;
	c.m.expires_at = NOW - DAY;
	BAD(&c.body, EHX_ERR_INVALID_FIELD);
	c.m.expires_at = NOW + DAY;
	OK(&c.body);
}

static void
test_withdraw(void **state)
{
	Ehx__Body b = EHX__BODY__INIT;
	Ehx__WithdrawConsent w = EHX__WITHDRAW_CONSENT__INIT;
	static const char *const bad_ids[] = {
		"", "c-", "c-0123456789abcde", "c-0123456789abcdef0",
		"c-0123456789ABCDEF", "C-0123456789abcdef", "x-0123456789abcdef",
		"c_0123456789abcdef", "0123456789abcdef", "c-0123456789abcdeg",
		"c-0123456789abcde ", " c-0123456789abcdef", "c--123456789abcdef",
	};
	char reason[EHX_MAX_REASON + 2];

	(void)state;
	w.nhs_number = "9990080631";
	w.consent_id = "c-0123456789abcdef";
	w.reason = "the parent asked";
	w.withdrawn_by = "Pat Doe";
	b.payload_case = EHX__BODY__PAYLOAD_WITHDRAW_CONSENT;
	b.withdraw_consent = &w;
	OK(&b);
	for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
		char why[256];

		w.consent_id = (char *)bad_ids[i];
		if (check(&b, why, sizeof(why)) != EHX_ERR_INVALID_FIELD)
			fail_msg("consent id \"%s\" accepted", bad_ids[i]);
	}
	w.consent_id = "c-0123456789abcdef";
	w.reason = "";
	BAD(&b, EHX_ERR_INVALID_FIELD);
	memset(reason, 'r', EHX_MAX_REASON);
	reason[EHX_MAX_REASON] = '\0';
	w.reason = reason;
	OK(&b);
	reason[EHX_MAX_REASON] = 'r';
	reason[EHX_MAX_REASON + 1] = '\0';
	BAD(&b, EHX_ERR_INVALID_FIELD);
	w.reason = "ok";
	w.withdrawn_by = "";
	OK(&b);
	w.withdrawn_by = "Pat\tDoe";
	BAD(&b, EHX_ERR_INVALID_FIELD);
	w.withdrawn_by = "";
	w.nhs_number = "9990080632";
	BAD(&b, EHX_ERR_INVALID_NHS_NUMBER);
}

/* ---- the acting person ---------------------------------------------------- */

static void
test_person(void **state)
{
	Ehx__Person p = EHX__PERSON__INIT;
	char why[256], id[EHX_MAX_USER_ID + 2];

	(void)state;
	p.user_id = "A.Smith";
	p.name = "Alice Smith";
	p.role = EHX__ROLE__ROLE_PRACTITIONER;
	assert_int_equal(ehx_validate_person(&p, why, sizeof(why)), 0);
	for (int r = 1; r <= 5; r++) {
		p.role = r;
		assert_int_equal(ehx_validate_person(&p, why, sizeof(why)), 0);
	}
	p.role = 0;
	assert_int_equal(ehx_validate_person(&p, why, sizeof(why)),
	    EHX_ERR_INVALID_FIELD);
	assert_non_null(strstr(why, "role"));
	p.role = 6;
	assert_int_equal(ehx_validate_person(&p, why, sizeof(why)),
	    EHX_ERR_INVALID_FIELD);
	p.role = -1;
	assert_int_equal(ehx_validate_person(&p, why, sizeof(why)),
	    EHX_ERR_INVALID_FIELD);
	p.role = EHX__ROLE__ROLE_SYSTEM;
	p.user_id = "";
	assert_int_equal(ehx_validate_person(&p, why, sizeof(why)),
	    EHX_ERR_INVALID_FIELD);
	assert_non_null(strstr(why, "user_id"));
	memset(id, 'u', EHX_MAX_USER_ID);
	id[EHX_MAX_USER_ID] = '\0';
	p.user_id = id;
	assert_int_equal(ehx_validate_person(&p, why, sizeof(why)), 0);
	id[EHX_MAX_USER_ID] = 'u';
	id[EHX_MAX_USER_ID + 1] = '\0';
	assert_int_equal(ehx_validate_person(&p, why, sizeof(why)),
	    EHX_ERR_INVALID_FIELD);
	p.user_id = "ok";
	p.name = "";
	assert_int_equal(ehx_validate_person(&p, why, sizeof(why)),
	    EHX_ERR_INVALID_FIELD);
	assert_non_null(strstr(why, "name"));
	p.name = "Alice\x7f";
	assert_int_equal(ehx_validate_person(&p, why, sizeof(why)),
	    EHX_ERR_INVALID_FIELD);
	assert_int_equal(ehx_validate_person(NULL, why, sizeof(why)),
	    EHX_ERR_INVALID_FIELD);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_publish),
		cmocka_unit_test(test_close),
		cmocka_unit_test(test_queries),
		cmocka_unit_test(test_lists),
		cmocka_unit_test(test_governance),
		cmocka_unit_test(test_not_a_request),
		cmocka_unit_test(test_consent_people),
		cmocka_unit_test(test_consent_scope),
		cmocka_unit_test(test_consent_basis_and_dates),
		cmocka_unit_test(test_withdraw),
		cmocka_unit_test(test_person),
	};

	return cmocka_run_group_tests_name("test_validate", tests, NULL, NULL);
}
