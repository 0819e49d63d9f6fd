/*
 * test_render — agent/render.c, what `ehx` prints: the picture as a table
 * (agencies, levels, practitioners, lead marker, notes, close reasons, the
 * truncation notice) and as JSON that parses back; consent records with
 * their state; acks; errors on stderr or as JSON; and text that is not
 * valid UTF-8 printed safely.
 */
#include "testutil.h"

#include <json-c/json.h>

#include "../../agent/agent.h"
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_picture_table),
		cmocka_unit_test(test_picture_json),
		cmocka_unit_test(test_consent),
		cmocka_unit_test(test_ack_json),
		cmocka_unit_test(test_unsafe_text),
	};

	return cmocka_run_group_tests_name("test_render", tests, NULL, NULL);
}
