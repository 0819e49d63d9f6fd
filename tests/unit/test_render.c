/*
 * test_render — agent/cli/render.c, what `ehx` prints: the picture as a table
 * (agencies, levels, practitioners, lead marker, notes, close reasons, the
 * truncation notice) and as JSON that parses back; consent records with
 * their state and history; acks; errors on stderr or as JSON; the
 * information governance answers (audit pages as a table, RFC 4180 CSV and
 * JSON lines, break-glass alerts, disclosures, the subject access export,
 * the agent's own check of the audit log); the outbox and inbox (acks with
 * unchanged, queued changes, ehx status, the inbox list and
 * one notification, and notice.c's document a hook receives); and hostile
 * text (cut UTF-8, escape sequences, C1 controls, bidirectional overrides)
 * printed safely everywhere, JSON included.
 */
#include "testutil.h"

#include <json-c/json.h>

#include "../../agent/cli/render.h"
#include "../../agent/notice.h"
#include "ehx/err.h"
#include "ehx/util.h"

static char out[16384];

/* Render into out. */
static void
render(const Ehx__Body *b, bool json, const char *nhs)
{
	FILE *f = fmemopen(out, sizeof(out) - 1, "w");

	assert_non_null(f);
	memset(out, 0, sizeof(out));
	render_reply(f, b, json, nhs);
	fclose(f);
}

static Ehx__Practitioner pr1 = EHX__PRACTITIONER__INIT, pr2 = EHX__PRACTITIONER__INIT;
static Ehx__FlagView f1 = EHX__FLAG_VIEW__INIT, f2 = EHX__FLAG_VIEW__INIT;
static Ehx__FlagView *fl1[1] = { &f1 }, *fl2[1] = { &f2 };
static Ehx__AgencyInvolvement i1 = EHX__AGENCY_INVOLVEMENT__INIT,
    i2 = EHX__AGENCY_INVOLVEMENT__INIT;
static Ehx__AgencyInvolvement *invs[2] = { &i1, &i2 };
static Ehx__PictureResult pic = EHX__PICTURE_RESULT__INIT;
static unsigned char child[32] = { 0xab, 0xcd };

static void
picture(Ehx__Body *b)
{
	pr1.name = "Alex Patel";
	pr1.role = "school nurse";
	pr1.contact = "alex@nhs.example";
	pr2.name = "PC Sam Jones";
	pr2.contact = "101 ext 4455";
	f1.ref = "hv-1";
	f1.category = EHX__CATEGORY__CATEGORY_MENTAL_HEALTH;
	f1.level = 2;
	f1.status = EHX__FLAG_STATUS__FLAG_STATUS_OPEN;
	f1.opened_at = 1767225600000LL;
	f1.practitioner = &pr1;
	f1.lead = 1;
	f1.note = "Weekly sessions";
	f2.ref = "inc-7";
	f2.category = EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE;
	f2.level = 3;
	f2.status = EHX__FLAG_STATUS__FLAG_STATUS_CLOSED;
	f2.opened_at = 1767225600000LL;
	f2.closed_at = 1767312000000LL;
	f2.practitioner = &pr2;
	f2.close_reason = "no further incidents";
	i1.agency = "health";
	i1.agency_type = EHX__AGENCY_TYPE__AGENCY_TYPE_HEALTH;
	i1.flags = fl1;
	i1.n_flags = 1;
	i2.agency = "police";
	i2.agency_type = EHX__AGENCY_TYPE__AGENCY_TYPE_POLICE;
	i2.flags = fl2;
	i2.n_flags = 1;
	pic.child.data = child;
	pic.child.len = 32;
	pic.consent_id = "c-0123456789abcdef";
	pic.highest_open_level = 2;
	pic.involvements = invs;
	pic.n_involvements = 2;
	ehx__body__init(b);
	b->payload_case = EHX__BODY__PAYLOAD_PICTURE;
	b->picture = &pic;
}

static void
test_picture_table(void **state)
{
	Ehx__Body b;

	(void)state;
	picture(&b);
	render(&b, false, "9434765919");
	assert_non_null(strstr(out, "Whole picture of child 943 476 5919 "
	    "(pseudonym abcd00000000…), shared under consent c-0123456789abcdef"));
	assert_non_null(strstr(out, "Highest open level of need: 2 (additional)"));
	assert_non_null(strstr(out, "health         health    Mental health        "
	    "2 additional open   2026-01-01 -          Alex Patel (school nurse)"));
	assert_non_null(strstr(out, "alex@nhs.example         yes\n"));
	assert_non_null(strstr(out, "police         police    Domestic abuse       "
	    "3 complex    closed 2026-01-01 2026-01-02 PC Sam Jones"));
	assert_non_null(strstr(out, "  health/hv-1: Weekly sessions\n"));
	assert_non_null(strstr(out, "  police/inc-7 closed: no further incidents\n"));
	assert_null(strstr(out, "More flags exist"));
	pic.truncated = 1;
	render(&b, false, "9434765919");
	assert_non_null(strstr(out, "More flags exist"));
	pic.truncated = 0;
	/* Nothing open, nobody involved. */
	pic.highest_open_level = 0;
	pic.n_involvements = 0;
	render(&b, false, NULL);
	assert_non_null(strstr(out, "Highest open level of need: none open"));
	assert_non_null(strstr(out, "No agency has recorded an involvement."));
}

static void
test_picture_json(void **state)
{
	Ehx__Body b;
	json_object *o, *inv, *flag;

	(void)state;
	picture(&b);
	render(&b, true, NULL);
	assert_non_null(o = json_tokener_parse(out));
	assert_true(json_object_get_boolean(json_object_object_get(o, "ok")));
	assert_int_equal(json_object_get_int(json_object_object_get(o,
	    "highest_open_level")), 2);
	assert_string_equal(json_object_get_string(json_object_object_get(o,
	    "consent_id")), "c-0123456789abcdef");
	assert_int_equal(strlen(json_object_get_string(json_object_object_get(o,
	    "child"))), 64);
	inv = json_object_object_get(o, "involvements");
	assert_int_equal(json_object_array_length(inv), 2);
	flag = json_object_array_get_idx(json_object_object_get(
	    json_object_array_get_idx(inv, 1), "flags"), 0);
	assert_string_equal(json_object_get_string(json_object_object_get(flag,
	    "category")), "domestic_abuse");
	assert_string_equal(json_object_get_string(json_object_object_get(flag,
	    "status")), "closed");
	assert_string_equal(json_object_get_string(json_object_object_get(flag,
	    "closed_at")), "2026-01-02T00:00:00.000Z");
	assert_string_equal(json_object_get_string(json_object_object_get(flag,
	    "close_reason")), "no further incidents");
	json_object_put(o);
}

static void
test_consent(void **state)
{
	Ehx__Body b;
	Ehx__GivenBy gb = EHX__GIVEN_BY__INIT;
	Ehx__Person p = EHX__PERSON__INIT;
	Ehx__ConsentScope sc = EHX__CONSENT_SCOPE__INIT;
	Ehx__ConsentRecord r1 = EHX__CONSENT_RECORD__INIT, r2;
	Ehx__ConsentRecord *recs[2] = { &r1, &r2 };
	Ehx__ConsentResult res = EHX__CONSENT_RESULT__INIT;
	Ehx__AgencyType types[2] = { EHX__AGENCY_TYPE__AGENCY_TYPE_SCHOOL,
	    EHX__AGENCY_TYPE__AGENCY_TYPE_HEALTH };
	Ehx__Purpose purposes[2] = { EHX__PURPOSE__PURPOSE_WHOLE_PICTURE,
	    EHX__PURPOSE__PURPOSE_NOTIFICATIONS };
	char *agencies[1] = { "police" };
	int64_t now = ehx_now_ms();
	json_object *o;

	(void)state;
	gb.relation = EHX__RELATION__RELATION_PARENT;
	gb.name = "Jane Doe";
	p.name = "Alex Patel";
	p.role = EHX__ROLE__ROLE_PRACTITIONER;
	sc.agency_types = types;
	sc.n_agency_types = 2;
	sc.agencies = agencies;
	sc.n_agencies = 1;
	sc.purposes = purposes;
	sc.n_purposes = 2;
	r1.id = "c-0123456789abcdef";
	r1.given_by = &gb;
	r1.recorded_by_agency = "health";
	r1.recorded_by = &p;
	r1.scope = &sc;
	r1.basis = EHX__LAWFUL_BASIS__LAWFUL_BASIS_CONSENT;
	r1.recorded_at = r1.starts_at = now - 1000;
	r1.expires_at = now + 86400000;
	r2 = r1;
	r2.id = "c-fedcba9876543210";
	r2.withdrawn_at = now;
	r2.withdrawn_by = "Jane Doe";
	r2.withdrawn_reason = "changed her mind";
	r2.withdrawn_by_agency = "school";
	r2.withdrawn_recorded_by = &p;
	res.records = recs;
	res.n_records = 2;
	ehx__body__init(&b);
	b.payload_case = EHX__BODY__PAYLOAD_CONSENT;
	b.consent = &res;
	render(&b, false, "9434765919");
	assert_non_null(strstr(out, "Consent for child 943 476 5919 (2 records)"));
	assert_non_null(strstr(out, "c-0123456789abcdef  ACTIVE\n"));
	assert_non_null(strstr(out, "c-fedcba9876543210  WITHDRAWN\n"));
	assert_non_null(strstr(out, "  given by      parent Jane Doe\n"));
	assert_non_null(strstr(out, "  scope         agency types: school, "
	    "health; agencies: police\n"));
	assert_non_null(strstr(out, "  purposes      whole_picture, notifications\n"));
	assert_non_null(strstr(out, "by school (Alex Patel), asked by Jane Doe: "
	    "changed her mind\n"));
	render(&b, true, NULL);
	assert_non_null(o = json_tokener_parse(out));
	assert_int_equal(json_object_array_length(json_object_object_get(o,
	    "records")), 2);
	assert_string_equal(json_object_get_string(json_object_object_get(
	    json_object_array_get_idx(json_object_object_get(o, "records"), 1),
	    "state")), "withdrawn");
	json_object_put(o);
	/* Expired and not yet started. */
	r1.expires_at = now - 1;
	r2.withdrawn_at = 0;
	r2.starts_at = now + 3600000;
	render(&b, false, NULL);
	assert_non_null(strstr(out, "c-0123456789abcdef  EXPIRED\n"));
	assert_non_null(strstr(out, "c-fedcba9876543210  NOT YET STARTED\n"));
	res.n_records = 0;
	render(&b, false, "9434765919");
	assert_non_null(strstr(out, "No consent for child 943 476 5919"));
}

static void
test_ack_json(void **state)
{
	Ehx__Body b;
	Ehx__Ack ack = EHX__ACK__INIT;
	json_object *o;

	(void)state;
	ehx__body__init(&b);
	ack.id = "hv-1";
	ack.basis = "role:practitioner";
	b.payload_case = EHX__BODY__PAYLOAD_ACK;
	b.ack = &ack;
	render(&b, true, NULL);
	assert_non_null(o = json_tokener_parse(out));
	assert_string_equal(json_object_get_string(json_object_object_get(o,
	    "id")), "hv-1");
	assert_string_equal(json_object_get_string(json_object_object_get(o,
	    "basis")), "role:practitioner");
	json_object_put(o);
}

static void
test_unsafe_text(void **state)
{
	Ehx__Body b;

	(void)state;
	picture(&b);
	/* A cut UTF-8 sequence and a control byte in a cell: printed as '?'. */
	pr1.name = "Al\xc3";
	pr1.contact = "a\x1b[2Jb";
	render(&b, false, NULL);
	assert_non_null(strstr(out, "Al? (school nurse)"));
	assert_non_null(strstr(out, "a?[2Jb"));
	assert_null(strchr(out, '\x1b'));
	/* And free text outside the table. */
	f1.note = "line\nbreak \x1b]0;title\x07";
	render(&b, false, NULL);
	assert_non_null(strstr(out, "  health/hv-1: line?break ?]0;title?\n"));
	assert_null(strchr(out, '\x1b'));
}

/* ---- information governance ------------------------------------------------ */

/* A memory stream over out, emptied. Close it with fclose() before reading. */
static FILE *
out_open(void)
{
	FILE *f;

	memset(out, 0, sizeof(out));
	assert_non_null(f = fmemopen(out, sizeof(out) - 1, "w"));
	return f;
}

/* No byte of out could drive a terminal: no C0 control but \n and \r, no
 * DEL, no C1 control as UTF-8 and no bidirectional override. */
static void
assert_terminal_safe(void)
{
	for (const unsigned char *p = (const unsigned char *)out; *p; p++) {
		if (*p < 0x20)
			assert_true(*p == '\n' || *p == '\r');
		assert_int_not_equal(*p, 0x7f);
		if (p[0] == 0xc2)
			assert_false(p[1] >= 0x80 && p[1] <= 0x9f);
		if (p[0] == 0xe2 && p[1] == 0x80)
			assert_false(p[2] >= 0xaa && p[2] <= 0xae);
	}
}

/* Every line of out that is not empty parsed as JSON, into objs. */
static size_t
json_lines(json_object **objs, size_t max)
{
	size_t n = 0;
	char *save = NULL, *copy = strdup(out);

	assert_non_null(copy);
	for (char *l = strtok_r(copy, "\n", &save); l != NULL;
	    l = strtok_r(NULL, "\n", &save)) {
		assert_true(n < max);
		objs[n] = json_tokener_parse(l);
		assert_non_null(objs[n]);
		n++;
	}
	free(copy);
	return n;
}

static const char *
jget(json_object *o, const char *key)
{
	json_object *v = json_object_object_get(o, key);

	assert_non_null(v);
	return json_object_get_string(v);
}

static char hostile[] = "Eve, \"the\" \x1b[31mred\nline\xc2\x9b" "2J"
    "\xe2\x80\xae" "gnp.exe";

static void
test_safe_filter(void **state)
{
	(void)state;
	assert_string_equal(render_safe("plain café ✓"), "plain café ✓");
	assert_string_equal(render_safe(NULL), "");
	/* C0, DEL, C1 CSI (U+009B), a right-to-left override, an isolate. */
	assert_string_equal(render_safe("a\x1b[2Jb\x7f"), "a?[2Jb?");
	assert_string_equal(render_safe("x\xc2\x9b" "31m"), "x??31m");
	assert_string_equal(render_safe("l\xe2\x80\xaer"), "l???r");
	assert_string_equal(render_safe("l\xe2\x81\xa6r"), "l???r");
	/* Overlong '/' and ESC, a surrogate, beyond U+10FFFF, lone bytes. */
	assert_string_equal(render_safe("\xc0\xaf\xc1\x9b"), "????");
	assert_string_equal(render_safe("\xed\xa0\x80"), "???");
	assert_string_equal(render_safe("\xf4\x90\x80\x80"), "????");
	assert_string_equal(render_safe("\xff\x80\x80\x80z"), "????z");
	/* A cut sequence at the end. */
	assert_string_equal(render_safe("ok\xe2\x82"), "ok??");
	/* Four-byte characters pass. */
	assert_string_equal(render_safe("\xf0\x9f\x98\x80"), "\xf0\x9f\x98\x80");
}

static void
test_consent_history(void **state)
{
	Ehx__Body b;
	Ehx__Person p = EHX__PERSON__INIT;
	Ehx__ConsentEvent e1 = EHX__CONSENT_EVENT__INIT, e2, e3;
	Ehx__ConsentEvent *ev[3] = { &e1, &e2, &e3 };
	Ehx__ConsentResult res = EHX__CONSENT_RESULT__INIT;
	json_object *o, *h;

	(void)state;
	p.name = "Alex Patel";
	p.role = EHX__ROLE__ROLE_PRACTITIONER;
	e1.consent_id = "c-0123456789abcdef";
	e1.state = EHX__CONSENT_STATE__CONSENT_STATE_RECORDED;
	e1.at = 1767225600000LL;
	e1.agency = "health";
	e1.person = &p;
	e2 = e1;
	e2.state = EHX__CONSENT_STATE__CONSENT_STATE_WITHDRAWN;
	e2.at = 1767312000000LL;
	e2.reason = "changed her mind";
	e2.by = "Jane Doe";
	e3 = e1;
	e3.state = EHX__CONSENT_STATE__CONSENT_STATE_EXPIRED;
	e3.at = 1767398400000LL;
	e3.agency = "";
	e3.person = NULL;
	res.history = ev;
	res.n_history = 3;
	ehx__body__init(&b);
	b.payload_case = EHX__BODY__PAYLOAD_CONSENT;
	b.consent = &res;
	render(&b, false, "9434765919");
	assert_non_null(strstr(out, "History, oldest first:"));
	assert_non_null(strstr(out, "TIME (UTC)       CONSENT            STATE     "
	    "AGENCY         PERSON                   DETAIL\n"));
	assert_non_null(strstr(out, "2026-01-01 00:00 c-0123456789abcdef recorded  "
	    "health         Alex Patel               \n"));
	assert_non_null(strstr(out, "2026-01-02 00:00 c-0123456789abcdef withdrawn "
	    "health         Alex Patel               changed her mind (asked by "
	    "Jane Doe)\n"));
	assert_non_null(strstr(out, "2026-01-03 00:00 c-0123456789abcdef expired   "
	    "-              -"));
	/* Oldest first, as the broker sent them. */
	assert_true(strstr(out, "recorded ") < strstr(out, "withdrawn "));
	assert_true(strstr(out, "withdrawn ") < strstr(out, "expired "));
	render(&b, true, NULL);
	assert_non_null(o = json_tokener_parse(out));
	h = json_object_object_get(o, "history");
	assert_int_equal(json_object_array_length(h), 3);
	assert_string_equal(jget(json_object_array_get_idx(h, 1), "state"),
	    "withdrawn");
	assert_string_equal(jget(json_object_array_get_idx(h, 1), "by"),
	    "Jane Doe");
	assert_string_equal(jget(json_object_array_get_idx(h, 1), "reason"),
	    "changed her mind");
	assert_string_equal(jget(json_object_array_get_idx(h, 0), "person"),
	    "Alex Patel");
	assert_string_equal(jget(json_object_array_get_idx(h, 0), "at"),
	    "2026-01-01T00:00:00.000Z");
	assert_string_equal(jget(json_object_array_get_idx(h, 2), "state"),
	    "expired");
	json_object_put(o);
	/* A hostile reason is neutralised in the table and in JSON. */
	e2.reason = hostile;
	render(&b, false, NULL);
	assert_null(strchr(out, '\x1b'));
	assert_terminal_safe();
	render(&b, true, NULL);
	assert_terminal_safe();
	assert_non_null(o = json_tokener_parse(out));
	json_object_put(o);
}

static unsigned char msgid[16] = { 0x01, 0x02 }, envhash[32] = { 0xee };
static Ehx__Person actor = EHX__PERSON__INIT;
static Ehx__AuditRecord ar1 = EHX__AUDIT_RECORD__INIT, ar2;
static Ehx__AuditRecord *ars[2] = { &ar1, &ar2 };
static Ehx__AuditResult audit = EHX__AUDIT_RESULT__INIT;

/* Two audit records: a break-glass answer and a denial. */
static void
audit_fixture(void)
{
	actor.user_id = "u-17";
	actor.name = "Sam Lee";
	actor.role = EHX__ROLE__ROLE_PRACTITIONER;
	ar1.seq = 7;
	ar1.time = 1767225600000LL;
	ar1.agency = "school";
	ar1.person = &actor;
	ar1.role = EHX__ROLE__ROLE_PRACTITIONER;
	ar1.action = "query_picture";
	ar1.child.data = child;
	ar1.child.len = 32;
	ar1.decision = EHX__DECISION__DECISION_ALLOW;
	ar1.basis = "break-glass";
	ar1.break_glass = 1;
	ar1.message_id.data = msgid;
	ar1.message_id.len = 16;
	ar1.envelope_hash.data = envhash;
	ar1.envelope_hash.len = 32;
	ar2 = ar1;
	ar2.seq = 8;
	ar2.time = 1767225660000LL;
	ar2.decision = EHX__DECISION__DECISION_DENY;
	ar2.error = (Ehx__ErrorCode)ehx_err_to_wire(EHX_ERR_NO_CONSENT);
	ar2.basis = "";
	ar2.break_glass = 0;
	ar2.consent_id = "c-0123456789abcdef";
	audit.records = ars;
	audit.n_records = 2;
}

static void
test_audit_table(void **state)
{
	FILE *f;

	(void)state;
	audit_fixture();
	f = out_open();
	render_audit_page(f, &audit, RENDER_TABLE, true);
	fclose(f);
	assert_non_null(strstr(out, "SEQ    TIME (UTC)       AGENCY       PERSON"));
	assert_non_null(strstr(out, "7      2026-01-01 00:00 school       Sam Lee "
	    "(practitioner)         query_picture     abcd00000000 allow    "
	    "break-glass BREAK-GLASS\n"));
	assert_non_null(strstr(out, "8      2026-01-01 00:01 school       Sam Lee "
	    "(practitioner)         query_picture     abcd00000000 deny     "
	    "no_consent\n"));
	/* A later page: no header again. */
	f = out_open();
	render_audit_page(f, &audit, RENDER_TABLE, false);
	fclose(f);
	assert_null(strstr(out, "SEQ "));
	/* Hostile text from another agency cannot drive the terminal. */
	actor.name = hostile;
	ar1.basis = "role:\x1b]0;owned\x07";
	f = out_open();
	render_audit_page(f, &audit, RENDER_TABLE, true);
	fclose(f);
	assert_null(strchr(out, '\x1b'));
	assert_non_null(strstr(out, "role:?]0;owned? BREAK-GLASS\n"));
	assert_terminal_safe();
	actor.name = "Sam Lee";
	ar1.basis = "break-glass";
}

static void
test_audit_csv(void **state)
{
	FILE *f;
	char *second, *third;

	(void)state;
	audit_fixture();
	actor.name = "Lee, Sam \"Sammy\"";
	ar2.consent_id = "c-1\nc-2";
	f = out_open();
	render_audit_page(f, &audit, RENDER_CSV, true);
	fclose(f);
	/* The header, then one CRLF-ended record per line. */
	assert_ptr_equal(strstr(out, "seq,time,agency,user_id,person,role,"
	    "action,child,decision,error,basis,consent_id,break_glass,"
	    "message_id,envelope_hash\r\n"), out);
	assert_non_null(second = strstr(out, "\r\n7,"));
	assert_non_null(third = strstr(out, "\r\n8,"));
	assert_non_null(strstr(second, "7,2026-01-01T00:00:00.000Z,school,u-17,"
	    "\"Lee, Sam \"\"Sammy\"\"\",practitioner,query_picture,abcd"));
	assert_non_null(strstr(second, ",allow,,break-glass,,true,0102"
	    "0000000000000000000000000000,ee"));
	/* A newline in a field cannot start a record of its own. */
	assert_non_null(strstr(third, ",deny,no_consent,,c-1?c-2,false,"));
	assert_null(strstr(out, "\n\n"));
	for (const char *p = out; (p = strchr(p, '\n')) != NULL; p++)
		assert_int_equal(p[-1], '\r');
	/* No header on later pages; hostile text neutralised. */
	actor.name = hostile;
	f = out_open();
	render_audit_page(f, &audit, RENDER_CSV, false);
	fclose(f);
	assert_int_equal(strncmp(out, "7,", 2), 0);
	assert_non_null(strstr(out, ",\"Eve, \"\"the\"\" ?[31mred?line??2J???"
	    "gnp.exe\","));
	assert_terminal_safe();
	/* A cell a spreadsheet would run as a formula is defused. */
	actor.name = "=HYPERLINK(\"http://evil.example\",\"x\")";
	actor.user_id = "+1-2";
	f = out_open();
	render_audit_page(f, &audit, RENDER_CSV, false);
	fclose(f);
	assert_non_null(strstr(out, ",\"'+1-2\",\"'=HYPERLINK(\"\"http://evil"));
	assert_null(strstr(out, ",=HYPERLINK"));
	actor.user_id = "u-17";
	actor.name = "Sam Lee";
	ar2.consent_id = "c-0123456789abcdef";
}

static void
test_audit_json(void **state)
{
	json_object *o[4];
	FILE *f;

	(void)state;
	audit_fixture();
	actor.name = hostile;
	f = out_open();
	render_audit_page(f, &audit, RENDER_JSON, true);
	fclose(f);
	assert_terminal_safe();
	assert_int_equal(json_lines(o, 4), 2);
	assert_int_equal(json_object_get_uint64(json_object_object_get(o[0],
	    "seq")), 7);
	assert_string_equal(jget(o[0], "time"), "2026-01-01T00:00:00.000Z");
	assert_string_equal(jget(o[0], "agency"), "school");
	assert_string_equal(jget(o[0], "user_id"), "u-17");
	assert_null(strchr(jget(o[0], "person"), '\x1b'));
	assert_string_equal(jget(o[0], "role"), "practitioner");
	assert_string_equal(jget(o[0], "action"), "query_picture");
	assert_int_equal(strlen(jget(o[0], "child")), 64);
	assert_int_equal(strncmp(jget(o[0], "child"), "abcd00", 6), 0);
	assert_string_equal(jget(o[0], "decision"), "allow");
	assert_string_equal(jget(o[0], "error"), "");
	assert_string_equal(jget(o[0], "basis"), "break-glass");
	assert_true(json_object_get_boolean(json_object_object_get(o[0],
	    "break_glass")));
	assert_string_equal(jget(o[0], "message_id"),
	    "01020000000000000000000000000000");
	assert_int_equal(strlen(jget(o[0], "envelope_hash")), 64);
	assert_string_equal(jget(o[1], "decision"), "deny");
	assert_string_equal(jget(o[1], "error"), "no_consent");
	assert_string_equal(jget(o[1], "consent_id"), "c-0123456789abcdef");
	assert_false(json_object_get_boolean(json_object_object_get(o[1],
	    "break_glass")));
	json_object_put(o[0]);
	json_object_put(o[1]);
	actor.name = "Sam Lee";
}

static void
test_alerts(void **state)
{
	Ehx__Person who = EHX__PERSON__INIT, ig = EHX__PERSON__INIT;
	Ehx__Alert a1 = EHX__ALERT__INIT, a2;
	Ehx__Alert *as[2] = { &a1, &a2 };
	Ehx__AlertResult res = EHX__ALERT_RESULT__INIT;
	json_object *o[4];
	FILE *f;

	(void)state;
	who.user_id = "u-17";
	who.name = "Sam Lee";
	who.role = EHX__ROLE__ROLE_PRACTITIONER;
	ig.name = "Pat Quinn";
	ig.role = EHX__ROLE__ROLE_IG_OFFICER;
	a1.seq = 41;
	a1.time = 1767225600000LL;
	a1.agency = "school";
	a1.person = &who;
	a1.child.data = child;
	a1.child.len = 32;
	a1.reason = "Bruising seen and the child is afraid to go home";
	a2 = a1;
	a2.seq = 42;
	a2.reviewed_at = 1767312000000LL;
	a2.reviewed_by_agency = "health";
	a2.reviewed_by = &ig;
	a2.outcome = EHX__REVIEW_OUTCOME__REVIEW_OUTCOME_JUSTIFIED;
	a2.note = "Safeguarding lead confirmed";
	res.alerts = as;
	res.n_alerts = 2;
	f = out_open();
	render_alerts_page(f, &res, false, true);
	fclose(f);
	assert_non_null(strstr(out, "ALERT  TIME (UTC)       AGENCY       PERSON"
	    "                         CHILD        REASON"));
	assert_non_null(strstr(out, "41     2026-01-01 00:00 school       Sam Lee "
	    "(practitioner)         abcd00000000 Bruising seen and the child is "
	    "afraid t~ OPEN\n"));
	assert_non_null(strstr(out, "42     2026-01-01 00:00 school       "));
	assert_non_null(strstr(out, " justified by health/Pat Quinn 2026-01-02 "
	    "00:00: Safeguarding lead confirmed\n"));
	f = out_open();
	render_alerts_page(f, &res, true, true);
	fclose(f);
	assert_int_equal(json_lines(o, 4), 2);
	assert_int_equal(json_object_get_uint64(json_object_object_get(o[0],
	    "seq")), 41);
	assert_string_equal(jget(o[0], "person"), "Sam Lee");
	assert_string_equal(jget(o[0], "role"), "practitioner");
	assert_string_equal(jget(o[0], "reason"),
	    "Bruising seen and the child is afraid to go home");
	assert_string_equal(jget(o[0], "outcome"), "");
	assert_null(json_object_object_get(o[0], "reviewed_at"));
	assert_string_equal(jget(o[1], "outcome"), "justified");
	assert_string_equal(jget(o[1], "reviewed_by"), "Pat Quinn");
	assert_string_equal(jget(o[1], "reviewed_by_agency"), "health");
	assert_string_equal(jget(o[1], "note"), "Safeguarding lead confirmed");
	assert_string_equal(jget(o[1], "reviewed_at"), "2026-01-02T00:00:00.000Z");
	json_object_put(o[0]);
	json_object_put(o[1]);
	/* Hostile reason and note; a missing person. */
	a1.reason = hostile;
	a1.person = NULL;
	a2.note = hostile;
	f = out_open();
	render_alerts_page(f, &res, false, false);
	fclose(f);
	assert_null(strstr(out, "ALERT "));
	assert_non_null(strstr(out, "- (-)"));
	assert_terminal_safe();
	f = out_open();
	render_alerts_page(f, &res, true, false);
	fclose(f);
	assert_terminal_safe();
	assert_int_equal(json_lines(o, 4), 2);
	json_object_put(o[0]);
	json_object_put(o[1]);
}

static Ehx__Person viewer = EHX__PERSON__INIT;
static Ehx__Disclosure d1 = EHX__DISCLOSURE__INIT, d2;
static Ehx__Disclosure *ds[2] = { &d1, &d2 };

static void
disclosure_fixture(void)
{
	viewer.user_id = "t-3";
	viewer.name = "Kim Ode";
	viewer.role = EHX__ROLE__ROLE_PRACTITIONER;
	d1.seq = 12;
	d1.time = 1767225600000LL;
	d1.to_agency = "school";
	d1.to_person = &viewer;
	d1.child.data = child;
	d1.child.len = 32;
	d1.basis = "consent:c-0123456789abcdef";
	d1.flags = 2;
	d2 = d1;
	d2.seq = 13;
	d2.basis = "break-glass";
	d2.flags = 1;
}

static void
test_disclosures(void **state)
{
	Ehx__DisclosureResult res = EHX__DISCLOSURE_RESULT__INIT;
	json_object *o[4];
	FILE *f;

	(void)state;
	disclosure_fixture();
	res.disclosures = ds;
	res.n_disclosures = 2;
	f = out_open();
	render_disclosures_page(f, &res, false, true);
	fclose(f);
	assert_non_null(strstr(out, "WHEN (UTC)       TO AGENCY    TO PERSON"
	    "                      CHILD        BASIS                        "
	    "FLAGS\n"));
	assert_non_null(strstr(out, "2026-01-01 00:00 school       Kim Ode "
	    "(practitioner)         abcd00000000 consent:c-0123456789abcdef   "
	    "2\n"));
	assert_non_null(strstr(out, " break-glass                  1\n"));
	f = out_open();
	render_disclosures_page(f, &res, true, true);
	fclose(f);
	assert_int_equal(json_lines(o, 4), 2);
	assert_int_equal(json_object_get_uint64(json_object_object_get(o[0],
	    "seq")), 12);
	assert_string_equal(jget(o[0], "to_agency"), "school");
	assert_string_equal(jget(o[0], "to_person"), "Kim Ode");
	assert_string_equal(jget(o[0], "to_user_id"), "t-3");
	assert_string_equal(jget(o[0], "basis"), "consent:c-0123456789abcdef");
	assert_int_equal(json_object_get_int(json_object_object_get(o[0],
	    "flags")), 2);
	assert_string_equal(jget(o[1], "time"), "2026-01-01T00:00:00.000Z");
	json_object_put(o[0]);
	json_object_put(o[1]);
	viewer.name = hostile;
	f = out_open();
	render_disclosures_page(f, &res, false, false);
	fclose(f);
	assert_null(strstr(out, "WHEN"));
	assert_terminal_safe();
	viewer.name = "Kim Ode";
}

static void
test_sar(void **state)
{
	Ehx__Body b;
	Ehx__SarResult sar = EHX__SAR_RESULT__INIT;
	Ehx__ConsentRecord cr = EHX__CONSENT_RECORD__INIT;
	Ehx__ConsentRecord *crs[1] = { &cr };
	Ehx__ConsentEvent ev = EHX__CONSENT_EVENT__INIT;
	Ehx__ConsentEvent *evs[1] = { &ev };
	json_object *o, *inv, *v;
	FILE *f;

	(void)state;
	picture(&b);
	disclosure_fixture();
	cr.id = "c-0123456789abcdef";
	cr.starts_at = cr.recorded_at = 1767225600000LL;
	cr.expires_at = 1767225600000LL + 86400000LL;
	ev.consent_id = cr.id;
	ev.state = EHX__CONSENT_STATE__CONSENT_STATE_RECORDED;
	ev.at = cr.recorded_at;
	sar.child.data = child;
	sar.child.len = 32;
	sar.involvements = invs;
	sar.n_involvements = 2;
	sar.withheld = 1;
	sar.consents = crs;
	sar.n_consents = 1;
	sar.history = evs;
	sar.n_history = 1;
	sar.disclosures = ds;
	sar.n_disclosures = 2;
	f = out_open();
	render_sar(f, &sar);
	fclose(f);
	assert_non_null(o = json_tokener_parse(out));
	assert_int_equal(strncmp(jget(o, "child"), "abcd0000", 8), 0);
	assert_int_equal(strlen(jget(o, "child")), 64);
	inv = json_object_object_get(o, "involvements");
	assert_int_equal(json_object_array_length(inv), 2);
	assert_string_equal(jget(json_object_array_get_idx(inv, 0), "agency"),
	    "health");
	v = json_object_array_get_idx(json_object_object_get(
	    json_object_array_get_idx(inv, 0), "flags"), 0);
	assert_string_equal(jget(v, "ref"), "hv-1");
	assert_string_equal(jget(v, "note"), "Weekly sessions");
	assert_string_equal(jget(v, "category"), "mental_health");
	assert_true(json_object_get_boolean(json_object_object_get(v, "lead")));
	assert_non_null(json_object_object_get(v, "practitioner"));
	assert_int_equal(json_object_get_int(json_object_object_get(o,
	    "withheld")), 1);
	assert_non_null(strstr(jget(o, "withheld_note"), "1 flag is left out"));
	assert_non_null(strstr(jget(o, "withheld_note"), "child's interests"));
	v = json_object_array_get_idx(json_object_object_get(o, "consents"), 0);
	assert_string_equal(jget(v, "id"), "c-0123456789abcdef");
	assert_string_equal(jget(v, "state"), "expired");
	assert_int_equal(json_object_array_length(json_object_object_get(o,
	    "history")), 1);
	assert_int_equal(json_object_array_length(json_object_object_get(o,
	    "disclosures")), 2);
	assert_false(json_object_get_boolean(json_object_object_get(o,
	    "truncated")));
	json_object_put(o);
	/* None withheld; cut; hostile text stays valid, safe JSON. */
	sar.withheld = 0;
	sar.truncated = 1;
	f1.note = hostile;
	ehx__body__init(&b);
	b.payload_case = EHX__BODY__PAYLOAD_SAR;
	b.sar = &sar;
	render(&b, false, NULL);	/* always JSON */
	assert_terminal_safe();
	assert_non_null(o = json_tokener_parse(out));
	assert_string_equal(jget(o, "withheld_note"), "No flag was withheld.");
	assert_true(json_object_get_boolean(json_object_object_get(o,
	    "truncated")));
	json_object_put(o);
	f1.note = "Weekly sessions";
}

static void
test_agent_state(void **state)
{
	Ehx__AgentState st = EHX__AGENT_STATE__INIT;
	Ehx__Checkpoint cp = EHX__CHECKPOINT__INIT;
	unsigned char root[32] = { 0x5a, 0xa5 };
	json_object *o;
	FILE *f;

	(void)state;
	cp.size = 1234;
	cp.root.data = root;
	cp.root.len = 32;
	cp.time = 1767225600000LL;
	st.checkpoint = &cp;
	st.consistent = 1;
	st.checked_at = 1767225660000LL;
	f = out_open();
	render_agent_state(f, &st, false);
	fclose(f);
	assert_non_null(strstr(out, "1234 records, root 5aa50000"));
	assert_non_null(strstr(out, "signed 2026-01-01 00:00 UTC, checked "
	    "2026-01-01 00:01 UTC"));
	assert_non_null(strstr(out, "consistent with every checkpoint"));
	st.consistent = 0;
	st.problem = "the log went back from 1234 to 900 records\x1b[2J";
	f = out_open();
	render_agent_state(f, &st, false);
	fclose(f);
	assert_non_null(strstr(out, "INCONSISTENT: the log went back from 1234 "
	    "to 900 records?[2J\n"));
	assert_terminal_safe();
	f = out_open();
	render_agent_state(f, &st, true);
	fclose(f);
	assert_non_null(o = json_tokener_parse(out));
	assert_false(json_object_get_boolean(json_object_object_get(o,
	    "consistent")));
	assert_int_equal(json_object_get_int(json_object_object_get(o, "size")),
	    1234);
	assert_int_equal(strncmp(jget(o, "root"), "5aa5", 4), 0);
	assert_string_equal(jget(o, "time"), "2026-01-01T00:00:00.000Z");
	assert_string_equal(jget(o, "checked_at"), "2026-01-01T00:01:00.000Z");
	assert_non_null(strstr(jget(o, "problem"), "went back from 1234"));
	json_object_put(o);
	/* No checkpoint seen yet. */
	st.checkpoint = NULL;
	st.consistent = 1;
	f = out_open();
	render_agent_state(f, &st, false);
	fclose(f);
	assert_non_null(strstr(out, "not seen a signed checkpoint yet"));
}

/* render_reply knows every governance answer, so run() can print them. */
static void
test_reply_dispatch(void **state)
{
	Ehx__Body b;
	Ehx__AlertResult al = EHX__ALERT_RESULT__INIT;
	Ehx__DisclosureResult dr = EHX__DISCLOSURE_RESULT__INIT;
	Ehx__ExportResult ex = EHX__EXPORT_RESULT__INIT;
	json_object *o;

	(void)state;
	audit_fixture();
	ehx__body__init(&b);
	b.payload_case = EHX__BODY__PAYLOAD_AUDIT;
	b.audit = &audit;
	render(&b, false, NULL);
	assert_non_null(strstr(out, "SEQ "));
	assert_non_null(strstr(out, "no_consent"));
	render(&b, true, NULL);
	assert_non_null(strstr(out, "\"seq\": 8"));
	b.payload_case = EHX__BODY__PAYLOAD_ALERTS;
	b.alerts = &al;
	render(&b, false, NULL);
	assert_non_null(strstr(out, "ALERT "));
	disclosure_fixture();
	dr.disclosures = ds;
	dr.n_disclosures = 1;
	b.payload_case = EHX__BODY__PAYLOAD_DISCLOSURES;
	b.disclosures = &dr;
	render(&b, true, NULL);
	assert_non_null(o = json_tokener_parse(out));
	assert_string_equal(jget(o, "to_agency"), "school");
	json_object_put(o);
	ex.tree_size = 99;
	ex.next_seq = 0;
	b.payload_case = EHX__BODY__PAYLOAD_EXPORT;
	b.export = &ex;
	render(&b, false, NULL);
	assert_non_null(strstr(out, "log of 99 records"));
	assert_null(strstr(out, "unexpected reply"));
	render(&b, true, NULL);
	assert_non_null(o = json_tokener_parse(out));
	assert_int_equal(json_object_get_int(json_object_object_get(o,
	    "tree_size")), 99);
	json_object_put(o);
}


/* ---- the outbox, status and the inbox --------------------------------------- */

static void
test_ack_queued(void **state)
{
	Ehx__Ack ack = EHX__ACK__INIT;
	Ehx__Queued q = EHX__QUEUED__INIT;
	ProtobufCBinaryData id = { 16, msgid };
	json_object *o;
	FILE *f;

	(void)state;
	ack.id = "inc-7";
	ack.basis = "role:practitioner";
	f = out_open();
	render_ack(f, &ack, NULL, false, "Published flag");
	fclose(f);
	assert_string_equal(out, "Published flag inc-7.\n");
	ack.unchanged = 1;
	f = out_open();
	render_ack(f, &ack, NULL, false, "Published flag");
	render_ack(f, &ack, NULL, false, NULL);         /* nothing */
	fclose(f);
	assert_string_equal(out, "Published flag inc-7 (unchanged).\n");
	/* JSON, with where it was queued. */
	q.message_ids = &id;
	q.n_message_ids = 1;
	q.first = q.last = 42;
	f = out_open();
	render_ack(f, &ack, &q, true, "Published flag");
	fclose(f);
	assert_non_null(o = json_tokener_parse(out));
	assert_true(json_object_get_boolean(json_object_object_get(o, "ok")));
	assert_true(json_object_get_boolean(json_object_object_get(o,
	    "unchanged")));
	/* Whom the broker notified is not the publisher's to know. */
	assert_null(json_object_object_get(o, "notified"));
	assert_int_equal(json_object_get_int(json_object_object_get(o,
	    "outbox")), 42);
	assert_string_equal(jget(o, "message_id"),
	    "01020000000000000000000000000000");
	json_object_put(o);
	/* Queued, not waited for. */
	f = out_open();
	render_queued_json(f, &q);
	fclose(f);
	assert_non_null(o = json_tokener_parse(out));
	assert_true(json_object_get_boolean(json_object_object_get(o, "queued")));
	assert_false(json_object_get_boolean(json_object_object_get(o,
	    "still_queued")));
	assert_int_equal(json_object_get_int(json_object_object_get(o,
	    "outbox")), 42);
	assert_string_equal(jget(o, "message_id"),
	    "01020000000000000000000000000000");
	json_object_put(o);
}

static void
test_age(void **state)
{
	char b[24];

	(void)state;
	assert_string_equal(render_age(b, sizeof(b), -5), "0 s");
	assert_string_equal(render_age(b, sizeof(b), 12999), "12 s");
	assert_string_equal(render_age(b, sizeof(b), 3 * 60000 + 5000), "3 min");
	assert_string_equal(render_age(b, sizeof(b), 3600000), "1 h");
	assert_string_equal(render_age(b, sizeof(b), 2 * 3600000 + 5 * 60000),
	    "2 h 5 min");
	assert_string_equal(render_age(b, sizeof(b), 86400000), "1 day");
	assert_string_equal(render_age(b, sizeof(b), 4 * 86400000LL + 5),
	    "4 days");
}

static void
test_status(void **state)
{
	Ehx__AgentStatus st = EHX__AGENT_STATUS__INIT;
	Ehx__Refusal rf = EHX__REFUSAL__INIT, *rfs[1] = { &rf };
	Ehx__Error e = EHX__ERROR__INIT;
	unsigned char stream[16] = { 0xab };
	int64_t now = 1767225600000LL;
	json_object *o, *a;
	FILE *f;

	(void)state;
	st.connected = 1;
	st.last_contact = now - 3000;
	st.outbox = 3;
	st.in_flight = 1;
	st.oldest_queued = now - 3 * 60000 - 1000;
	st.inbox_new = 2;
	st.notifications = 15;
	st.hook_pending = 1;
	st.oldest_hook_pending = now - 120000;
	st.hook_error = "exit 1";
	st.delivered = 1234;
	st.refused = 2;
	st.last_error = "";
	st.next_number = 1238;
	st.stream.data = stream;
	st.stream.len = 16;
	e.code = (Ehx__ErrorCode)ehx_err_to_wire(EHX_ERR_NOT_PERMITTED);
	e.message = "not \x1b[2J yours";
	rf.number = 17;
	rf.message_id.data = msgid;
	rf.message_id.len = 16;
	rf.what = "publish_flag f-12";
	rf.error = &e;
	rf.at = now - 60000;
	st.recent_refusals = rfs;
	st.n_recent_refusals = 1;
	f = out_open();
	render_status(f, &st, now, false);
	fclose(f);
	assert_non_null(strstr(out, "broker        connected (last answer "
	    "2025-12-31 23:59 UTC, 3 s ago)\n"));
	assert_non_null(strstr(out, "outbox        3 queued, 1 in flight; the "
	    "oldest queued 3 min ago\n"));
	assert_non_null(strstr(out, "delivered     1234, refused 2"));
	assert_non_null(strstr(out, "inbox         2 new of 15 notifications"));
	assert_non_null(strstr(out, "hook          1 waiting, the oldest for "
	    "2 min\n"));
	assert_non_null(strstr(out, "hook failed   exit 1\n"));
	assert_non_null(strstr(out, "stream        ab000000000000000000000000000000"
	    ", next outbox number 1238\n"));
	assert_non_null(strstr(out, "17       2025-12-31 23:59 publish_flag f-12"));
	assert_non_null(strstr(out, "not_permitted: not ?[2J yours\n"));
	assert_null(strstr(out, "last problem"));
	assert_terminal_safe();
	/* JSON. */
	f = out_open();
	render_status(f, &st, now, true);
	fclose(f);
	assert_non_null(o = json_tokener_parse(out));
	assert_true(json_object_get_boolean(json_object_object_get(o,
	    "connected")));
	assert_int_equal(json_object_get_int(json_object_object_get(o,
	    "outbox")), 3);
	assert_int_equal(json_object_get_int(json_object_object_get(o,
	    "oldest_queued_age_s")), 181);
	assert_string_equal(jget(o, "oldest_queued"), "2025-12-31T23:56:59.000Z");
	assert_null(json_object_object_get(o, "last_error"));
	assert_string_equal(jget(o, "hook_error"), "exit 1");
	assert_int_equal(json_object_get_int(json_object_object_get(o,
	    "next_number")), 1238);
	a = json_object_object_get(o, "recent_refusals");
	assert_int_equal(json_object_array_length(a), 1);
	assert_string_equal(jget(json_object_array_get_idx(a, 0), "error"),
	    "not_permitted");
	assert_int_equal(json_object_get_int(json_object_object_get(
	    json_object_array_get_idx(a, 0), "outbox")), 17);
	json_object_put(o);
	/* Never reached, nothing queued. */
	memset(&st, 0, sizeof(st));
	ehx__agent_status__init(&st);
	st.last_error = "the broker cannot be reached";
	f = out_open();
	render_status(f, &st, now, false);
	fclose(f);
	assert_non_null(strstr(out, "broker        NOT CONNECTED (no answer yet)"));
	assert_non_null(strstr(out, "outbox        empty\n"));
	assert_non_null(strstr(out, "last problem  the broker cannot be reached"));
	assert_non_null(strstr(out, "hook          nothing waiting\n"));
	assert_null(strstr(out, "Recent refusals"));
	f = out_open();
	render_status(f, &st, now, true);
	fclose(f);
	assert_non_null(o = json_tokener_parse(out));
	assert_null(json_object_object_get(o, "last_contact"));
	assert_null(json_object_object_get(o, "oldest_queued_age_s"));
	json_object_put(o);
}

static Ehx__Notification note1 = EHX__NOTIFICATION__INIT;
static Ehx__Practitioner contact1 = EHX__PRACTITIONER__INIT;
static Ehx__InboxItem item1 = EHX__INBOX_ITEM__INIT, item2;
static Ehx__InboxItem *items[2] = { &item1, &item2 };

static void
inbox_fixture(void)
{
	contact1.name = "PC Sam Jones";
	contact1.role = "Operation Encompass officer";
	contact1.contact = "101 ext 4455";
	note1.seq = 7;
	note1.nhs_number = "9434765919";
	note1.agency = "police";
	note1.agency_type = EHX__AGENCY_TYPE__AGENCY_TYPE_POLICE;
	note1.category = EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE;
	note1.event = EHX__NOTIFY_EVENT__NOTIFY_EVENT_LEVEL_CHANGED;
	note1.level = 3;
	note1.previous_level = 2;
	note1.contact = &contact1;
	note1.basis = EHX__LAWFUL_BASIS__LAWFUL_BASIS_LEGAL_OBLIGATION;
	note1.consent_id = "";
	note1.agreement = "anytown-isa-2026";
	note1.flagged_at = 1767225600000LL;
	item1.seq = 7;
	item1.received_at = 1767225660000LL;
	item1.notification = &note1;
	item2 = item1;
	item2.seq = 8;
	item2.acked_at = 1767225700000LL;
	item2.hooked_at = 1767225670000LL;
}

/* A broker-signed envelope around a Body with message id msgid. */
static uint8_t *
envelope_of_msgid(size_t *len)
{
	Ehx__Body b = EHX__BODY__INIT;
	Ehx__Envelope e = EHX__ENVELOPE__INIT;
	uint8_t *body, *env;

	b.message_id.data = msgid;
	b.message_id.len = 16;
	b.sender = "broker";
	b.payload_case = EHX__BODY__PAYLOAD_NOTIFICATION;
	b.notification = &note1;
	assert_non_null(body = malloc(ehx__body__get_packed_size(&b)));
	e.body.len = ehx__body__pack(&b, body);
	e.body.data = body;
	e.version = 1;
	assert_non_null(env = malloc(ehx__envelope__get_packed_size(&e)));
	*len = ehx__envelope__pack(&e, env);
	free(body);
	return env;
}

static void
test_notice_json(void **state)
{
	json_object *o, *c;
	uint8_t *env;
	size_t len;

	(void)state;
	inbox_fixture();
	assert_null(notice_json(NULL));
	assert_non_null(o = notice_json(&item1));
	assert_int_equal(json_object_get_int(json_object_object_get(o, "seq")), 7);
	assert_null(json_object_object_get(o, "message_id"));   /* no envelope */
	assert_string_equal(jget(o, "nhs_number"), "9434765919");
	assert_string_equal(jget(o, "agency"), "police");
	assert_string_equal(jget(o, "agency_type"), "police");
	assert_string_equal(jget(o, "category"), "domestic_abuse");
	assert_string_equal(jget(o, "event"), "level_changed");
	assert_int_equal(json_object_get_int(json_object_object_get(o, "level")),
	    3);
	assert_int_equal(json_object_get_int(json_object_object_get(o,
	    "previous_level")), 2);
	c = json_object_object_get(o, "contact");
	assert_string_equal(jget(c, "name"), "PC Sam Jones");
	assert_string_equal(jget(c, "job"), "Operation Encompass officer");
	assert_string_equal(jget(c, "contact"), "101 ext 4455");
	assert_false(json_object_get_boolean(json_object_object_get(o, "lead")));
	assert_string_equal(jget(o, "basis"), "legal_obligation");
	assert_true(json_object_object_get_ex(o, "consent_id", &c));
	assert_null(c);
	assert_string_equal(jget(o, "agreement"), "anytown-isa-2026");
	assert_string_equal(jget(o, "flagged_at"), "2026-01-01T00:00:00.000Z");
	assert_string_equal(jget(o, "received_at"), "2026-01-01T00:01:00.000Z");
	json_object_put(o);
	/* Not shown to this agency: null level and contact; a consent id;
	 * the message id from the stored envelope; hostile text filtered. */
	note1.level = note1.previous_level = 0;
	note1.contact = NULL;
	note1.event = EHX__NOTIFY_EVENT__NOTIFY_EVENT_NEW;
	note1.basis = EHX__LAWFUL_BASIS__LAWFUL_BASIS_CONSENT;
	note1.consent_id = "c-0123456789abcdef";
	note1.agency = "pol\x1b[2Jice\xff";
	env = envelope_of_msgid(&len);
	item1.envelope.data = env;
	item1.envelope.len = len;
	assert_non_null(o = notice_json(&item1));
	assert_true(json_object_object_get_ex(o, "level", &c));
	assert_null(c);
	assert_true(json_object_object_get_ex(o, "previous_level", &c));
	assert_null(c);
	assert_true(json_object_object_get_ex(o, "contact", &c));
	assert_null(c);
	assert_string_equal(jget(o, "event"), "new");
	assert_string_equal(jget(o, "consent_id"), "c-0123456789abcdef");
	assert_string_equal(jget(o, "message_id"),
	    "01020000000000000000000000000000");
	assert_string_equal(jget(o, "agency"), "pol?[2Jice?");
	json_object_put(o);
	/* A broken envelope: no message id, the rest as before. */
	item1.envelope.len = len / 2;
	assert_non_null(o = notice_json(&item1));
	assert_null(json_object_object_get(o, "message_id"));
	json_object_put(o);
	item1.envelope.len = 0;
	item1.envelope.data = NULL;
	free(env);
	assert_string_equal(notice_event_name(99), "unknown");
}

static void
test_inbox(void **state)
{
	Ehx__InboxList l = EHX__INBOX_LIST__INIT;
	json_object *o, *a;
	FILE *f;

	(void)state;
	inbox_fixture();
	l.items = items;
	l.n_items = 1;
	l.total_new = 1;
	f = out_open();
	render_inbox_list(f, &l, false, false);
	fclose(f);
	assert_non_null(strstr(out, "SEQ    RECEIVED (UTC)   FROM         "
	    "CATEGORY             EVENT         LEVEL        CHILD         ACKED "
	    "HOOKED\n"));
	assert_non_null(strstr(out, "7      2026-01-01 00:01 police       "
	    "Domestic abuse       level changed 3 complex    943 476 5919  -     "
	    "-\n"));
	assert_non_null(strstr(out, "1 new notification.\n"));
	/* --all, with an acknowledged one the hook took. */
	l.n_items = 2;
	f = out_open();
	render_inbox_list(f, &l, true, false);
	fclose(f);
	assert_non_null(strstr(out, "8      2026-01-01 00:01 police       "
	    "Domestic abuse       level changed 3 complex    943 476 5919  yes   "
	    "yes\n"));
	/* More new ones than the list holds. */
	l.n_items = 1;
	l.total_new = 150;
	f = out_open();
	render_inbox_list(f, &l, false, false);
	fclose(f);
	assert_non_null(strstr(out, "The oldest 1 of 150 new notifications"));
	/* Nothing. */
	l.n_items = 0;
	l.total_new = 0;
	f = out_open();
	render_inbox_list(f, &l, false, false);
	render_inbox_list(f, &l, true, false);
	fclose(f);
	assert_string_equal(out, "No new notifications.\nNo notifications.\n");
	/* JSON: the hook's document and the inbox's marks. */
	l.n_items = 2;
	l.total_new = 1;
	f = out_open();
	render_inbox_list(f, &l, true, true);
	fclose(f);
	assert_non_null(o = json_tokener_parse(out));
	assert_int_equal(json_object_get_int(json_object_object_get(o,
	    "total_new")), 1);
	a = json_object_object_get(o, "items");
	assert_int_equal(json_object_array_length(a), 2);
	assert_int_equal(json_object_get_int(json_object_object_get(
	    json_object_array_get_idx(a, 1), "seq")), 8);
	assert_string_equal(jget(json_object_array_get_idx(a, 1), "acked_at"),
	    "2026-01-01T00:01:40.000Z");
	assert_null(json_object_object_get(json_object_array_get_idx(a, 0),
	    "acked_at"));
	assert_string_equal(jget(json_object_array_get_idx(a, 0), "category"),
	    "domestic_abuse");
	json_object_put(o);
}

static void
test_inbox_item(void **state)
{
	json_object *o;
	FILE *f;

	(void)state;
	inbox_fixture();
	f = out_open();
	render_inbox_item(f, &item1, false);
	fclose(f);
	assert_non_null(strstr(out, "Notification 7: level changed from police\n"));
	assert_non_null(strstr(out, "  child          943 476 5919\n"));
	assert_non_null(strstr(out, "  from           police (police)\n"));
	assert_non_null(strstr(out, "  category       Domestic abuse\n"));
	assert_non_null(strstr(out, "  level of need  3 complex (was 2 "
	    "additional)\n"));
	assert_non_null(strstr(out, "  contact        PC Sam Jones (Operation "
	    "Encompass officer), 101 ext 4455\n"));
	assert_non_null(strstr(out, "  lawful basis   legal_obligation\n"));
	assert_non_null(strstr(out, "  agreement      anytown-isa-2026\n"));
	assert_non_null(strstr(out, "  acknowledged   no (ehx inbox ack 7)\n"));
	/* A contact with no job or number: just the name. */
	contact1.role = contact1.contact = "";
	f = out_open();
	render_inbox_item(f, &item1, false);
	fclose(f);
	assert_non_null(strstr(out, "  contact        PC Sam Jones\n"));
	assert_null(strstr(out, "message id"));
	/* What the policy hides is said to be hidden. */
	note1.level = 0;
	note1.contact = NULL;
	f = out_open();
	render_inbox_item(f, &item2, false);
	fclose(f);
	assert_non_null(strstr(out, "  level of need  not shown to this agency\n"));
	assert_non_null(strstr(out, "  contact        not shown to this agency\n"));
	assert_non_null(strstr(out, "  acknowledged   2026-01-01 00:01 UTC\n"));
	assert_non_null(strstr(out, "  hook           took it 2026-01-01 00:01 "
	    "UTC\n"));
	/* --json: exactly the hook's document. */
	f = out_open();
	render_inbox_item(f, &item2, true);
	fclose(f);
	assert_non_null(o = json_tokener_parse(out));
	assert_int_equal(json_object_get_int(json_object_object_get(o, "seq")), 8);
	assert_int_equal(json_object_get_int(json_object_object_get(o,
	    "broker_seq")), (int)item2.notification->seq);
	assert_null(json_object_object_get(o, "acked_at"));
	assert_true(json_object_object_get_ex(o, "child", NULL));
	assert_null(json_object_object_get(o, "child"));   /* by NHS number */
	assert_int_equal(json_object_object_length(o), 18);
	json_object_put(o);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_picture_table),
		cmocka_unit_test(test_picture_json),
		cmocka_unit_test(test_consent),
		cmocka_unit_test(test_ack_json),
		cmocka_unit_test(test_unsafe_text),
		cmocka_unit_test(test_safe_filter),
		cmocka_unit_test(test_consent_history),
		cmocka_unit_test(test_audit_table),
		cmocka_unit_test(test_audit_csv),
		cmocka_unit_test(test_audit_json),
		cmocka_unit_test(test_alerts),
		cmocka_unit_test(test_disclosures),
		cmocka_unit_test(test_sar),
		cmocka_unit_test(test_agent_state),
		cmocka_unit_test(test_reply_dispatch),
		cmocka_unit_test(test_ack_queued),
		cmocka_unit_test(test_age),
		cmocka_unit_test(test_status),
		cmocka_unit_test(test_notice_json),
		cmocka_unit_test(test_inbox),
		cmocka_unit_test(test_inbox_item),
	};

	return cmocka_run_group_tests_name("test_render", tests, NULL, NULL);
}
