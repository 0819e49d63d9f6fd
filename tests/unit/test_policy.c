/*
 * test_policy — the sharing policy (lib/policy.c): the default in
 * docs/sharing-policy.ini loads and says what the docs say; every kind of
 * mistake stops the load with the file, the line and the word at fault;
 * lookups outside the tables are safe.
 */
#include "testutil.h"

#include "ehx.pb-c.h"
#include "ehx/err.h"
#include "ehx/names.h"
#include "ehx/policy.h"

#define SEE EHX_POLICY_SEE
#define LEVEL EHX_POLICY_LEVEL
#define CONTACT EHX_POLICY_CONTACT
#define NOTE EHX_POLICY_NOTE

static char dir[PATH_MAX];

static int
setup(void **state)
{
	(void)state;
	return tu_mkdtemp(dir, sizeof(dir), "policy");
}

static int
teardown(void **state)
{
	(void)state;
	tu_rmtree(dir);
	return 0;
}

static int
load(const char *text, struct ehx_policy *p, char *err, size_t errsz,
    char *path, size_t pathsz)
{
	tu_join(path, pathsz, dir, "policy.ini");
	assert_int_equal(tu_write(path, text, strlen(text), 0644), 0);
	err[0] = '\0';
	return ehx_policy_load(path, p, err, errsz);
}

static int
T(const char *s)
{
	return ehx_agency_type_parse(s);
}

static int
C(const char *s)
{
	return ehx_category_parse(s);
}

static void
test_default(void **state)
{
	struct ehx_policy p;
	char err[512];

	(void)state;
	if (ehx_policy_load("docs/sharing-policy.ini", &p, err,
	    sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_string_equal(p.id, "anytown-isa-2026");
	/* Schools see that health is involved and whom to contact, not a
	 * mental-health note (nor its level). */
	assert_int_equal(ehx_policy_view(&p, T("school"), C("mental_health")),
	    SEE | CONTACT);
	assert_int_equal(ehx_policy_view(&p, T("school"), C("school_attendance")),
	    SEE | LEVEL | CONTACT);
	/* Health sees clinical notes where they bear on health only. */
	assert_int_equal(ehx_policy_view(&p, T("health"), C("mental_health")),
	    SEE | LEVEL | CONTACT | NOTE);
	assert_int_equal(ehx_policy_view(&p, T("health"), C("domestic_abuse")),
	    SEE | LEVEL | CONTACT);
	/* Housing sees a few categories; the rest not at all. */
	assert_int_equal(ehx_policy_view(&p, T("housing"), C("housing")),
	    SEE | CONTACT);
	assert_int_equal(ehx_policy_view(&p, T("housing"), C("mental_health")),
	    0);
	assert_int_equal(ehx_policy_view(&p, T("local_authority"),
	    C("substance_misuse")), SEE | LEVEL | CONTACT | NOTE);
	/* Consent is the basis of every whole picture by default. */
	for (int t = 1; t <= EHX_POLICY_TYPES; t++)
		assert_int_equal(ehx_policy_picture_basis(&p, t),
		    EHX__LAWFUL_BASIS__LAWFUL_BASIS_CONSENT);
	/* Operation Encompass: schools hear of domestic abuse by law. */
	assert_int_equal(ehx_policy_notify_basis(&p, C("domestic_abuse"),
	    T("school")), EHX__LAWFUL_BASIS__LAWFUL_BASIS_LEGAL_OBLIGATION);
	assert_int_equal(ehx_policy_notify_basis(&p, C("domestic_abuse"),
	    T("housing")), 0);
}

static void
test_format(void **state)
{
	struct ehx_policy p;
	char err[512], path[PATH_MAX];

	(void)state;
	assert_int_equal(load("; a policy\n[agreement]\nid = t-1\n"
	    "name = Test agreement\n"
	    "[view police]\ncategories =  housing ,send,\tparenting\n"
	    "    offending\n"
	    "details = level\n"
	    "details.send = none\n"
	    "picture_basis = public_task\n"
	    "[view school]\ncategories = none\n"
	    "[notify send]\nschool = consent\n",
	    &p, err, sizeof(err), path, sizeof(path)), 0);
	assert_string_equal(p.name, "Test agreement");
	assert_int_equal(ehx_policy_view(&p, T("police"), C("housing")),
	    SEE | LEVEL);
	assert_int_equal(ehx_policy_view(&p, T("police"), C("offending")),
	    SEE | LEVEL);      /* the continuation line adds */
	assert_int_equal(ehx_policy_view(&p, T("police"), C("send")), SEE);
	assert_int_equal(ehx_policy_view(&p, T("police"), C("mental_health")),
	    0);
	assert_int_equal(ehx_policy_view(&p, T("school"), C("housing")), 0);
	assert_int_equal(ehx_policy_view(&p, T("health"), C("housing")), 0);
	assert_int_equal(ehx_policy_picture_basis(&p, T("police")),
	    EHX__LAWFUL_BASIS__LAWFUL_BASIS_PUBLIC_TASK);
	assert_int_equal(ehx_policy_notify_basis(&p, C("send"), T("school")),
	    EHX__LAWFUL_BASIS__LAWFUL_BASIS_CONSENT);
	/* Outside the tables: nothing, never a read past them. */
	assert_int_equal(ehx_policy_view(&p, 0, 1), 0);
	assert_int_equal(ehx_policy_view(&p, 99, 1), 0);
	assert_int_equal(ehx_policy_view(&p, 1, -1), 0);
	assert_int_equal(ehx_policy_view(&p, 1, 21), 0);
	assert_int_equal(ehx_policy_picture_basis(&p, -3),
	    EHX__LAWFUL_BASIS__LAWFUL_BASIS_CONSENT);
	assert_int_equal(ehx_policy_notify_basis(&p, 500, 1), 0);
}

static void
test_errors(void **state)
{
	static const struct {
		const char *text;
		int line;               /* 0: no line */
		const char *words;
	} cases[] = {
		{ "[agreement]\nid = x\n[view wizard]\ncategories = all\n", 4,
		    "unknown agency type \"wizard\"" },
		{ "[agreement]\nid = x\n[view school]\ncategories = all, spells\n",
		    4, "unknown category \"spells\"" },
		{ "[agreement]\nid = x\n[view school]\ncategories = all\n"
		    "details = level, gossip\n", 5, "unknown detail \"gossip\"" },
		{ "[agreement]\nid = x\n[view school]\ncategories = all\n"
		    "picture_basis = whim\n", 5, "unknown lawful basis \"whim\"" },
		{ "[agreement]\nid = x\n[notify housing]\nschool = maybe\n", 4,
		    "unknown lawful basis \"maybe\"" },
		{ "[agreement]\nid = x\n[notify weather]\nschool = consent\n", 4,
		    "unknown category \"weather\"" },
		{ "[agreement]\nid = x\n[notify housing]\nwizard = consent\n", 4,
		    "unknown agency type \"wizard\"" },
		{ "[agreement]\nid = x\n[notify housing]\nschool = consent\n"
		    "school = public_task\n", 5, "school is given twice" },
		{ "[agreement]\nid = x\n[rules]\nall = yes\n", 4,
		    "unknown section [rules]" },
		{ "[agreement]\nid = x\n[view school]\ncolour = blue\n", 4,
		    "unknown key \"colour\"" },
		{ "[agreement]\nid = x\nid = y\n", 3, "id is given twice" },
		{ "[agreement]\nid = Not An Id\n", 2, "id must be" },
		{ "[agreement]\nid = x\n[view school]\ncategories = all\n"
		    "picture_basis = consent\npicture_basis = public_task\n", 6,
		    "picture_basis is given twice" },
		{ "[agreement]\nid = x\n[view school]\ncategories = all, none\n",
		    4, "\"all\" and \"none\" stand alone" },
		{ "[agreement]\nid = x\n[view school]\ncategories = all\n"
		    "details = none, note\n", 5, "\"none\" stands alone" },
		{ "[agreement]\nid = x\n[view school]\ncategories = ,\n", 4,
		    "an empty item" },
		{ "[agreement]\nid = x\n[view school]\ncategories = send\n"
		    "details.housing = level\n", 0,
		    "gives details of housing, which it does not list" },
		{ "[agreement]\nid = x\n[view school]\ndetails = level\n", 0,
		    "[view school] needs categories" },
		{ "[view school]\ncategories = all\n", 0,
		    "[agreement] id is required" },
		{ "[agreement]\nid = x\n[view school]\ncategories = all\n"
		    "[view police]\ncategories = all\n[view school]\n"
		    "categories = none\n", 8, "[view school] is given twice" },
	};
	struct ehx_policy p;
	char err[512], path[PATH_MAX], want[PATH_MAX + 64];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(load(cases[i].text, &p, err, sizeof(err), path,
		    sizeof(path)), EHX_ERR_CONFIG);
		if (cases[i].line > 0)
			snprintf(want, sizeof(want), "%s:%d: ", path,
			    cases[i].line);
		else
			snprintf(want, sizeof(want), "%s: ", path);
		if (strncmp(err, want, strlen(want)) != 0 ||
		    strstr(err, cases[i].words) == NULL)
			fail_msg("case %zu: got \"%s\", want \"%s...%s\"", i, err,
			    want, cases[i].words);
		/* Nothing half-loaded is left for a caller to use. */
		assert_string_equal(p.id, "");
	}
	/* A missing file. */
	tu_join(path, sizeof(path), dir, "nowhere.ini");
	assert_int_equal(ehx_policy_load(path, &p, err, sizeof(err)),
	    EHX_ERR_CONFIG);
	assert_non_null(strstr(err, "nowhere.ini"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_errors),
	};

	return cmocka_run_group_tests_name("test_policy", tests, setup,
	    teardown);
}
