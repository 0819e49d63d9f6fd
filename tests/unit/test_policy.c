/*
 * test_policy — the sharing policy (lib/policy.c): the default in
 * docs/sharing-policy.ini loads and says what its comments say; lists take
 * spaces and tabs but no empty items; every kind of mistake stops the load
 * with the file, the line and the word at fault; lengths are bounded;
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
	char err[512], line[512];

	(void)state;
	if (ehx_policy_load("docs/sharing-policy.ini", &p, err,
	    sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_string_equal(p.id, "anytown-isa-2026");
	assert_string_equal(p.name,
	    "Anytown early help information sharing agreement 2026");
	/* Schools see that health is involved and whom to contact, not a
	 * mental-health note (nor its level). */
	assert_int_equal(ehx_policy_view(&p, T("school"), C("mental_health")),
	    SEE | CONTACT);
	assert_int_equal(ehx_policy_view(&p, T("school"),
	    C("substance_misuse")), SEE | CONTACT);
	assert_int_equal(ehx_policy_view(&p, T("school"), C("domestic_abuse")),
	    SEE | CONTACT);
	assert_int_equal(ehx_policy_view(&p, T("school"),
	    C("school_attendance")), SEE | LEVEL | CONTACT);
	/* Health sees clinical notes where they bear on health only. */
	assert_int_equal(ehx_policy_view(&p, T("health"), C("mental_health")),
	    SEE | LEVEL | CONTACT | NOTE);
	assert_int_equal(ehx_policy_view(&p, T("health"),
	    C("physical_health")), SEE | LEVEL | CONTACT | NOTE);
	assert_int_equal(ehx_policy_view(&p, T("health"), C("domestic_abuse")),
	    SEE | LEVEL | CONTACT);
	assert_int_equal(ehx_policy_view(&p, T("health"), C("offending")),
	    SEE | LEVEL | CONTACT);
	/* Police: level and contact, never a note. */
	for (int c = 1; c <= EHX_POLICY_CATEGORIES; c++)
		assert_int_equal(ehx_policy_view(&p, T("police"), c),
		    SEE | LEVEL | CONTACT);
	/* Housing sees four categories, whom to contact; the rest not at
	 * all. */
	assert_int_equal(ehx_policy_view(&p, T("housing"), C("housing")),
	    SEE | CONTACT);
	assert_int_equal(ehx_policy_view(&p, T("housing"),
	    C("anti_social_behaviour")), SEE | CONTACT);
	assert_int_equal(ehx_policy_view(&p, T("housing"), C("mental_health")),
	    0);
	assert_int_equal(ehx_policy_view(&p, T("housing"), C("worklessness")),
	    0);
	/* The early help hub sees everything. */
	assert_int_equal(ehx_policy_view(&p, T("local_authority"),
	    C("substance_misuse")), SEE | LEVEL | CONTACT | NOTE);
	assert_int_equal(ehx_policy_view(&p, T("voluntary"), C("parenting")),
	    SEE | CONTACT);
	assert_int_equal(ehx_policy_view(&p, T("voluntary"),
	    C("domestic_abuse")), 0);
	/* Consent is the basis of every whole picture. */
	for (int t = 1; t <= EHX_POLICY_TYPES; t++)
		assert_int_equal(ehx_policy_picture_basis(&p, t),
		    EHX__LAWFUL_BASIS__LAWFUL_BASIS_CONSENT);
	/* Operation Encompass: schools hear of domestic abuse by law. */
	assert_int_equal(ehx_policy_notify_basis(&p, C("domestic_abuse"),
	    T("school")), EHX__LAWFUL_BASIS__LAWFUL_BASIS_LEGAL_OBLIGATION);
	assert_int_equal(ehx_policy_notify_basis(&p, C("domestic_abuse"),
	    T("health")), EHX__LAWFUL_BASIS__LAWFUL_BASIS_CONSENT);
	assert_int_equal(ehx_policy_notify_basis(&p, C("domestic_abuse"),
	    T("housing")), 0);
	assert_int_equal(ehx_policy_notify_basis(&p, C("exploitation_risk"),
	    T("police")), EHX__LAWFUL_BASIS__LAWFUL_BASIS_PUBLIC_TASK);
	assert_int_equal(ehx_policy_notify_basis(&p, C("missing_episodes"),
	    T("police")), EHX__LAWFUL_BASIS__LAWFUL_BASIS_PUBLIC_TASK);
	assert_int_equal(ehx_policy_notify_basis(&p, C("housing"),
	    T("local_authority")), EHX__LAWFUL_BASIS__LAWFUL_BASIS_CONSENT);
	assert_int_equal(ehx_policy_notify_basis(&p, C("send"), T("school")),
	    0);
	/* The one-line summaries. */
	assert_int_equal(ehx_policy_describe(&p, T("school"), line,
	    sizeof(line)), 0);
	assert_string_equal(line, "school: 20 categories; level, contact; "
	    "domestic_abuse: contact; substance_misuse: contact; "
	    "mental_health: contact; radicalisation: contact");
	assert_int_equal(ehx_policy_describe(&p, T("housing"), line,
	    sizeof(line)), 0);
	assert_string_equal(line, "housing: 4 categories (domestic_abuse, "
	    "housing, exploitation_risk, anti_social_behaviour); contact");
	assert_int_equal(ehx_policy_describe(&p, T("local_authority"), line,
	    sizeof(line)), 0);
	assert_string_equal(line, "local_authority: 20 categories; level, "
	    "contact, note");
}

static void
test_format(void **state)
{
	struct ehx_policy p;
	char err[512], path[PATH_MAX], line[256];

	(void)state;
	/* Spaces and tabs around items, none at all, inline comments; a
	 * list goes on over indented lines. */
	if (load("; a policy\n# another comment\n"
	    "[agreement]\nid = t-1   ; the id\n"
	    "name = Test agreement\n"
	    "[view police]\ncategories =  housing ,send,\tparenting\t\n"
	    "    offending\n"
	    "details=level\n"
	    "details.send = none\n"
	    "details.parenting =contact\n"
	    "\tnote\n"
	    "picture_basis = public_task\n"
	    "\n"
	    "[view school]\ncategories = none\n"
	    "[view voluntary]\ncategories = all\ndetails = none\n"
	    "[view housing]\ncategories = send, housing\ndetails = level\n"
	    "details.send = note\n"
	    "[notify send]\nhousing = consent\npolice=vital_interests\n",
	    &p, err, sizeof(err), path, sizeof(path)) != 0)
		fail_msg("%s", err);
	assert_string_equal(p.id, "t-1");
	assert_string_equal(p.name, "Test agreement");
	assert_int_equal(ehx_policy_view(&p, T("police"), C("housing")),
	    SEE | LEVEL);
	assert_int_equal(ehx_policy_view(&p, T("police"), C("offending")),
	    SEE | LEVEL);
	assert_int_equal(ehx_policy_view(&p, T("police"), C("send")), SEE);
	assert_int_equal(ehx_policy_view(&p, T("police"), C("parenting")),
	    SEE | CONTACT | NOTE);
	assert_int_equal(ehx_policy_view(&p, T("police"), C("mental_health")),
	    0);
	assert_int_equal(ehx_policy_view(&p, T("school"), C("housing")), 0);
	assert_int_equal(ehx_policy_view(&p, T("voluntary"), C("housing")),
	    SEE);
	/* No section: nothing; consent. */
	assert_int_equal(ehx_policy_view(&p, T("health"), C("housing")), 0);
	assert_false(p.view_present[T("health")]);
	assert_int_equal(ehx_policy_picture_basis(&p, T("health")),
	    EHX__LAWFUL_BASIS__LAWFUL_BASIS_CONSENT);
	assert_int_equal(ehx_policy_picture_basis(&p, T("police")),
	    EHX__LAWFUL_BASIS__LAWFUL_BASIS_PUBLIC_TASK);
	assert_int_equal(ehx_policy_notify_basis(&p, C("send"), T("housing")),
	    EHX__LAWFUL_BASIS__LAWFUL_BASIS_CONSENT);
	assert_int_equal(ehx_policy_notify_basis(&p, C("send"), T("police")),
	    EHX__LAWFUL_BASIS__LAWFUL_BASIS_VITAL_INTERESTS);
	/* Summaries: a short list is named; the details most categories
	 * share come first, then the rest; a basis other than consent. */
	assert_int_equal(ehx_policy_describe(&p, T("police"), line,
	    sizeof(line)), 0);
	assert_string_equal(line, "police: 4 categories (housing, parenting, "
	    "offending, send); level; parenting: contact, note; send: no "
	    "details; picture_basis public_task");
	assert_int_equal(ehx_policy_describe(&p, T("school"), line,
	    sizeof(line)), 0);
	assert_string_equal(line, "school: 0 categories");
	assert_int_equal(ehx_policy_describe(&p, T("voluntary"), line,
	    sizeof(line)), 0);
	assert_string_equal(line, "voluntary: 20 categories; no details");
	/* A tie: the details of the first category in category order. */
	assert_int_equal(ehx_policy_describe(&p, T("housing"), line,
	    sizeof(line)), 0);
	assert_string_equal(line, "housing: 2 categories (housing, send); "
	    "level; send: note");
	assert_int_equal(ehx_policy_describe(&p, T("health"), line,
	    sizeof(line)), 0);
	assert_string_equal(line, "health: sees nothing of other agencies");
	/* Cut short: an error, and still a string. */
	assert_int_equal(ehx_policy_describe(&p, T("police"), line, 12),
	    EHX_ERR_TOO_LARGE);
	assert_string_equal(line, "police: 4 c");
	assert_int_equal(ehx_policy_describe(&p, T("police"), line, 0),
	    EHX_ERR_TOO_LARGE);
	/* Outside the tables: nothing, never a read past them. */
	assert_int_equal(ehx_policy_view(&p, 0, 1), 0);
	assert_int_equal(ehx_policy_view(&p, 99, 1), 0);
	assert_int_equal(ehx_policy_view(&p, -1, 1), 0);
	assert_int_equal(ehx_policy_view(&p, 1, 0), 0);
	assert_int_equal(ehx_policy_view(&p, 1, -1), 0);
	assert_int_equal(ehx_policy_view(&p, 1, 21), 0);
	assert_int_equal(ehx_policy_picture_basis(&p, 0),
	    EHX__LAWFUL_BASIS__LAWFUL_BASIS_CONSENT);
	assert_int_equal(ehx_policy_picture_basis(&p, -3),
	    EHX__LAWFUL_BASIS__LAWFUL_BASIS_CONSENT);
	assert_int_equal(ehx_policy_picture_basis(&p, 7),
	    EHX__LAWFUL_BASIS__LAWFUL_BASIS_CONSENT);
	assert_int_equal(ehx_policy_notify_basis(&p, 0, 1), 0);
	assert_int_equal(ehx_policy_notify_basis(&p, 500, 1), 0);
	assert_int_equal(ehx_policy_notify_basis(&p, C("send"), 0), 0);
	assert_int_equal(ehx_policy_notify_basis(&p, C("send"), 7), 0);
	assert_int_equal(ehx_policy_describe(&p, 7, line, sizeof(line)), 0);
	assert_string_equal(line, "unknown: sees nothing of other agencies");
}

#define A "[agreement]\nid = x\n"

static void
test_errors(void **state)
{
	static const struct {
		const char *text;
		int line;               /* 0: no line */
		const char *words;
	} cases[] = {
		/* Unknown words, each named. */
		{ A "[view wizard]\ncategories = all\n", 4,
		    "unknown agency type \"wizard\" in [view wizard]" },
		{ A "[view  school]\ncategories = all\n", 4,
		    "unknown agency type \" school\"" },
		{ A "[view school]\ncategories = send, spells\n", 4,
		    "unknown category \"spells\"" },
		{ A "[view school]\ncategories = Housing\n", 4,
		    "unknown category \"Housing\"" },
		{ A "[view school]\ncategories = all\n"
		    "details = level, gossip\n", 5, "unknown detail \"gossip\"" },
		{ A "[view school]\ncategories = all\n"
		    "details.weather = level\n", 5,
		    "unknown category \"weather\"" },
		{ A "[view school]\ncategories = all\n"
		    "picture_basis = whim\n", 5,
		    "unknown lawful basis \"whim\"" },
		{ A "[notify housing]\nschool = maybe\n", 4,
		    "unknown lawful basis \"maybe\"" },
		{ A "[notify weather]\nschool = consent\n", 4,
		    "unknown category \"weather\" in [notify weather]" },
		{ A "[notify housing]\nwizard = consent\n", 4,
		    "unknown agency type \"wizard\" in [notify housing]" },
		{ A "[rules]\nall = yes\n", 4, "unknown section [rules]" },
		{ A "[view]\ncategories = all\n", 4, "unknown section [view]" },
		{ A "[view school]\ncolour = blue\n", 4,
		    "unknown key \"colour\" in [view school]" },
		{ A "secret = yes\n", 3, "unknown key \"secret\" in [agreement]" },
		{ "id = x\n", 1, "unknown section []" },
		/* Given twice: keys, sections; only a list goes on, and only
		 * right after its key. */
		{ A "id = y\n", 3, "id is given twice in [agreement]" },
		{ A "name = One\nname = Two\n", 4, "name is given twice" },
		{ A "name = One\n    Two\n", 4, "name is given twice" },
		{ A "[view school]\ncategories = send\ndetails = level\n"
		    "categories = housing\n", 6,
		    "categories is given twice in [view school]" },
		{ A "[view school]\ncategories = all\ndetails = level\n"
		    "picture_basis = consent\ndetails = note\n", 7,
		    "details is given twice" },
		{ A "[view school]\ncategories = all\ndetails.send = level\n"
		    "details.housing = note\ndetails.send = note\n", 7,
		    "details.send is given twice" },
		{ A "[view school]\ncategories = all\npicture_basis = consent\n"
		    "    public_task\n", 6, "picture_basis is given twice" },
		/* ...and what it continues with must fit what came before. */
		{ A "[view school]\ncategories = all\ncategories = none\n", 5,
		    "\"none\" stands alone in categories" },
		{ A "[view school]\ncategories = send\n    all\n", 5,
		    "\"all\" stands alone in categories" },
		{ A "[view school]\ncategories = send, housing\n    send\n", 5,
		    "\"send\" is listed twice" },
		{ A "[view school]\ncategories = all\ndetails = level, contact\n"
		    "details = contact\n", 6, "\"contact\" is listed twice" },
		{ A "[view school]\ncategories = all\ndetails = note\n"
		    "    none\n", 6, "\"none\" stands alone in a list of details" },
		{ A "[view school]\ncategories = all\n"
		    "picture_basis = consent\npicture_basis = public_task\n", 6,
		    "picture_basis is given twice" },
		{ A "[notify housing]\nschool = consent\n"
		    "school = public_task\n", 5,
		    "school is given twice in [notify housing]" },
		{ A "[view school]\ncategories = all\n[view police]\n"
		    "categories = all\n[view school]\ncategories = none\n", 8,
		    "[view school] is given twice" },
		{ A "[notify send]\nschool = consent\n[agreement]\n"
		    "name = Late\n", 6, "[agreement] is given twice" },
		{ A "[notify send]\nschool = consent\n[notify housing]\n"
		    "school = consent\n[notify send]\npolice = consent\n", 8,
		    "[notify send] is given twice" },
		/* Values that are not words of a list. */
		{ "[agreement]\nid = Not An Id\n", 2,
		    "id \"Not An Id\" is not" },
		{ A "[view school]\ncategories = all, none\n", 4,
		    "\"none\" stands alone" },
		{ A "[view school]\ncategories = all, send\n", 4,
		    "\"all\" stands alone" },
		{ A "[view school]\ncategories = send, none\n", 4,
		    "\"none\" stands alone" },
		{ A "[view school]\ncategories = all\n"
		    "details = none, note\n", 5, "\"none\" stands alone" },
		{ A "[view school]\ncategories = all\n"
		    "details = all\n", 5, "unknown detail \"all\"" },
		/* Empty lists and items. */
		{ A "[view school]\ncategories =\n", 4,
		    "the list of categories is empty" },
		{ A "[view school]\ncategories = all\ndetails = \n", 5,
		    "the list of details is empty" },
		{ A "[view school]\ncategories = ,\n", 4, "an empty item" },
		{ A "[view school]\ncategories = send,\n", 4, "an empty item" },
		{ A "[view school]\ncategories = ,send\n", 4, "an empty item" },
		{ A "[view school]\ncategories = send, ,housing\n", 4,
		    "an empty item" },
		{ A "[view school]\ncategories = all\n"
		    "details.send = level,,note\n", 5, "an empty item" },
		/* Details for a category the view does not show. */
		{ A "[view school]\ncategories = send\n"
		    "details.housing = level\n", 5,
		    "details.housing is given, but housing is not in the "
		    "categories of [view school]" },
		{ A "[view school]\ndetails.housing = level\n"
		    "categories = send, housing\n", 4,
		    "details.housing comes before categories" },
		{ A "[view school]\ncategories = none\n"
		    "details.housing = level\n", 5, "housing is not in the" },
		/* A notification to a type that may not see the category. */
		{ A "[view school]\ncategories = send\n[notify housing]\n"
		    "school = consent\n", 0, "[notify housing] school: the "
		    "view for school does not show housing" },
		{ A "[notify housing]\nschool = consent\n", 0,
		    "[notify housing] school: the view for school" },
		/* Required. */
		{ A "[view school]\ndetails = level\n", 0,
		    "[view school] categories is required" },
		{ "[view school]\ncategories = all\n", 0,
		    "[agreement] id is required" },
		{ "[agreement]\nname = Nameless\n", 0,
		    "[agreement] id is required" },
		{ "", 0, "[agreement] id is required" },
		/* Not INI at all. */
		{ A "[view school]\ncategories all\n", 4,
		    "not a \"key = value\"" },
	};
	struct ehx_policy p;
	char err[512], path[PATH_MAX], want[PATH_MAX + 64];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&p, 0x5a, sizeof(p));
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
		assert_false(p.view_present[T("school")]);
		assert_int_equal(p.view[T("school")][C("send")], 0);
	}
	/* A missing file. */
	tu_join(path, sizeof(path), dir, "nowhere.ini");
	assert_int_equal(ehx_policy_load(path, &p, err, sizeof(err)),
	    EHX_ERR_CONFIG);
	assert_non_null(strstr(err, "nowhere.ini"));
}

/* Every length is bounded: a line, an item of a list, the id, the name. */
static void
test_bounds(void **state)
{
	struct ehx_policy p;
	char err[512], path[PATH_MAX], text[2048], longname[200], *line;
	const char *twelve = "domestic_abuse, substance_misuse, "
	    "mental_health, poor_start, physical_health, housing, "
	    "exploitation_risk, worklessness, school_attendance, parenting, "
	    "offending, young_carer";
	size_t n;

	(void)state;
	/* Twelve categories fit on one line (178 bytes)... */
	snprintf(text, sizeof(text), A "[view school]\ncategories = %s\n",
	    twelve);
	if (load(text, &p, err, sizeof(err), path, sizeof(path)) != 0)
		fail_msg("%s", err);
	assert_int_equal(ehx_policy_view(&p, T("school"), C("young_carer")),
	    SEE);
	assert_int_equal(ehx_policy_view(&p, T("school"), C("send")), 0);
	/* ...all twenty do not (319 bytes): the line is refused, not cut. */
	snprintf(text, sizeof(text), A "[view school]\ncategories = %s, send, "
	    "missing_episodes, anti_social_behaviour, family_resilience, "
	    "transitions, radicalisation, private_fostering, "
	    "returned_from_care\n", twelve);
	assert_int_equal(load(text, &p, err, sizeof(err), path, sizeof(path)),
	    EHX_ERR_CONFIG);
	assert_non_null(strstr(err, ":4: the line is longer than 198 bytes"));
	/* A line of exactly 198 bytes is read, one of 199 is not. */
	n = (size_t)snprintf(text, sizeof(text), A "[view school]\n");
	line = text + n;
	n = (size_t)snprintf(line, sizeof(text) - n, "categories = all ;");
	memset(line + n, 'x', 198 - n);
	memcpy(line + 198, "\n", 2);
	if (load(text, &p, err, sizeof(err), path, sizeof(path)) != 0)
		fail_msg("%s", err);
	memcpy(line + 198, "x\n", 3);
	assert_int_equal(load(text, &p, err, sizeof(err), path, sizeof(path)),
	    EHX_ERR_CONFIG);
	assert_non_null(strstr(err, ":4: the line is longer than 198 bytes"));
	/* An item longer than any name. */
	memset(longname, 'a', 100);
	longname[100] = '\0';
	snprintf(text, sizeof(text), A "[view school]\ncategories = send, "
	    "%s\n", longname);
	assert_int_equal(load(text, &p, err, sizeof(err), path, sizeof(path)),
	    EHX_ERR_CONFIG);
	assert_non_null(strstr(err, ":4: \"aaaaaaaaaaaaaaaaaaaa...\" in the "
	    "list of categories is longer than 64 bytes"));
	/* The id: 32 bytes, not 33. */
	snprintf(text, sizeof(text), "[agreement]\nid = %.32s\n", longname);
	if (load(text, &p, err, sizeof(err), path, sizeof(path)) != 0)
		fail_msg("%s", err);
	assert_int_equal(strlen(p.id), 32);
	snprintf(text, sizeof(text), "[agreement]\nid = %.33s\n", longname);
	assert_int_equal(load(text, &p, err, sizeof(err), path, sizeof(path)),
	    EHX_ERR_CONFIG);
	assert_non_null(strstr(err, ":2: id \"aaaa"));
	/* The name: 128 bytes, not 129. */
	memset(longname, 'n', 129);
	longname[129] = '\0';
	snprintf(text, sizeof(text), A "name = %.128s\n", longname);
	if (load(text, &p, err, sizeof(err), path, sizeof(path)) != 0)
		fail_msg("%s", err);
	assert_int_equal(strlen(p.name), 128);
	snprintf(text, sizeof(text), A "name = %.129s\n", longname);
	assert_int_equal(load(text, &p, err, sizeof(err), path, sizeof(path)),
	    EHX_ERR_CONFIG);
	assert_non_null(strstr(err, ":3: name must be 1..128 bytes"));
}

/* Right early help lists and localities: the default policy's, then what
 * the file may and may not say. */
static void
test_lists(void **state)
{
	static const struct {
		const char *text;
		const char *words;      /* NULL: loads */
	} cases[] = {
		{ A "locality_from = school, housing\n[list known_to_several]\n"
		    "basis = public_task\ntypes = health, local_authority\n",
		    NULL },
		/* Issue 16: a type that may both name a child's locality and
		 * ask for the list could put any child on it. */
		{ A "[list known_to_several]\nbasis = public_task\n"
		    "types = health, local_authority\n",
		    "health may both name a child's locality (locality_from "
		    "is not given" },
		{ A "locality_from = school, local_authority\n"
		    "[list troubled_families]\nbasis = public_task\n"
		    "types = health, local_authority\n",
		    "local_authority may both name a child's locality" },
		{ A "locality_from = school, local_authority\n"
		    "[list troubled_families]\nbasis = public_task\n"
		    "types = local_authority\noverride = the hub alone holds "
		    "addresses in this partnership\n", NULL },
		{ A "locality_from = school\n[list troubled_families]\n"
		    "basis = public_task\ntypes = health\noverride = because\n",
		    "override must say why" },
		{ A "[list known_to_several]\nbasis = consent\ntypes = health\n",
		    "a list cannot rest on consent" },
		{ A "[list known_to_several]\nbasis = public_task\n",
		    "[list known_to_several] needs basis and types" },
		{ A "[list known_to_several]\ntypes = health\n",
		    "needs basis and types" },
		{ A "[list gossip]\nbasis = public_task\ntypes = health\n",
		    "unknown list \"gossip\"" },
		{ A "[list known_to_several]\nbasis = public_task\n"
		    "types = health, wizard\n", "unknown agency type \"wizard\"" },
		{ A "[list known_to_several]\nbasis = public_task\n"
		    "types = health, health\n", "health is listed twice" },
		{ A "[list known_to_several]\nbasis = public_task\n"
		    "types = health\ncolour = red\n", "unknown key \"colour\"" },
		{ A "[list troubled_families]\nbasis = public_task\ntypes = police\n"
		    "[list troubled_families]\nbasis = public_task\n",
		    "is given twice" },
		{ A "localities = north, east\n", NULL },
		{ A "localities = north, North\n", "locality \"North\" is not" },
		{ A "localities = north, north\n", "north is listed twice" },
		{ A "localities = north,, east\n", "an empty item" },
		{ A "locality_from = school, housing\n", NULL },
		{ A "locality_from = school, wizard\n", "unknown agency type" },
		{ A "subject_access = local_authority, health\n", NULL },
		{ A "subject_access = local_authority, wizard\n",
		    "unknown agency type" },
		{ A "break_glass_review = another_agency\n", NULL },
		{ A "break_glass_review = another_person\n", NULL },
		{ A "break_glass_review = anyone\n",
		    "break_glass_review is another_person or another_agency" },
		{ A "locality_from = school\nname = N\nlocality_from = housing\n",
		    "locality_from is given twice" },
	};
	struct ehx_policy p;
	char err[512], path[PATH_MAX];
	int r;

	(void)state;
	/* The default: both lists for local authority and health, on public
	 * task; the three localities. */
	assert_int_equal(ehx_policy_load("docs/sharing-policy.ini", &p,
	    err, sizeof(err)), 0);
	for (int l = 1; l <= 2; l++) {
		assert_int_equal(ehx_policy_list_basis(&p, l, T("health")),
		    EHX__LAWFUL_BASIS__LAWFUL_BASIS_PUBLIC_TASK);
		assert_int_equal(ehx_policy_list_basis(&p, l,
		    T("local_authority")),
		    EHX__LAWFUL_BASIS__LAWFUL_BASIS_PUBLIC_TASK);
		assert_int_equal(ehx_policy_list_basis(&p, l, T("police")), 0);
		assert_int_equal(ehx_policy_list_basis(&p, l, T("school")), 0);
	}
	assert_int_equal(ehx_policy_list_basis(&p, 0, T("health")), 0);
	assert_int_equal(ehx_policy_list_basis(&p, 3, T("health")), 0);
	assert_int_equal(ehx_policy_list_basis(&p, 1, 0), 0);
	assert_int_equal(ehx_policy_list_basis(&p, 1, 99), 0);
	assert_int_equal(p.nlocalities, 3);
	/* Issue 16: the hub asks for lists, so it does not file children
	 * into localities. */
	assert_false(ehx_policy_locality_from(&p, T("local_authority")));
	assert_true(ehx_policy_subject_access(&p, T("local_authority")));
	assert_true(ehx_policy_subject_access(&p, T("health")));
	assert_false(ehx_policy_subject_access(&p, T("police")));
	assert_false(ehx_policy_subject_access(&p, T("school")));
	assert_false(ehx_policy_subject_access(&p, 0));
	assert_false(ehx_policy_list_overridden(&p, 1, T("local_authority")));
	assert_true(ehx_policy_locality_from(&p, T("school")));
	assert_true(ehx_policy_locality_from(&p, T("housing")));
	assert_false(ehx_policy_locality_from(&p, T("health")));
	assert_false(ehx_policy_locality_from(&p, T("police")));
	assert_false(ehx_policy_locality_from(&p, 0));
	assert_true(ehx_policy_locality_ok(&p, "east"));
	assert_false(ehx_policy_locality_ok(&p, "south"));
	assert_false(ehx_policy_locality_ok(&p, ""));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		r = load(cases[i].text, &p, err, sizeof(err), path, sizeof(path));
		if (cases[i].words == NULL) {
			if (r != 0)
				fail_msg("case %zu: %s", i, err);
			continue;
		}
		if (r != EHX_ERR_CONFIG || strstr(err, cases[i].words) == NULL)
			fail_msg("case %zu: wanted \"%s\", got %d \"%s\"", i,
			    cases[i].words, r, err);
	}
	/* An override: the type may ask, and its answers are marked. */
	assert_int_equal(load(A "locality_from = school, local_authority\n"
	    "[list troubled_families]\nbasis = public_task\n"
	    "types = local_authority, health\noverride = the hub alone holds "
	    "addresses in this partnership\n", &p, err, sizeof(err), path,
	    sizeof(path)), 0);
	assert_true(ehx_policy_list_overridden(&p, 2, T("local_authority")));
	assert_false(ehx_policy_list_overridden(&p, 2, T("health")));
	assert_false(ehx_policy_list_overridden(&p, 1, T("local_authority")));
	/* No localities named: any id is taken. */
	assert_int_equal(load(A, &p, err, sizeof(err), path, sizeof(path)), 0);
	assert_true(ehx_policy_locality_ok(&p, "anywhere"));
	assert_true(ehx_policy_locality_from(&p, T("police")));
	assert_int_equal(ehx_policy_list_basis(&p, 1, T("health")), 0);
}

/* The Troubled Families criteria each category and level shows. */
static void
test_criteria(void **state)
{
#define BIT(c) (1u << EHX__FAMILY_CRITERION__FAMILY_CRITERION_##c)
	(void)state;
	assert_int_equal(ehx_family_criteria(C("offending"), 2), BIT(CRIME));
	assert_int_equal(ehx_family_criteria(C("anti_social_behaviour"), 1),
	    BIT(CRIME));
	assert_int_equal(ehx_family_criteria(C("school_attendance"), 2),
	    BIT(SCHOOL));
	assert_int_equal(ehx_family_criteria(C("worklessness"), 3),
	    BIT(WORKLESSNESS));
	assert_int_equal(ehx_family_criteria(C("domestic_abuse"), 4),
	    BIT(DOMESTIC_ABUSE) | BIT(NEEDS_HELP));
	assert_int_equal(ehx_family_criteria(C("mental_health"), 2),
	    BIT(HEALTH));
	assert_int_equal(ehx_family_criteria(C("physical_health"), 2),
	    BIT(HEALTH));
	assert_int_equal(ehx_family_criteria(C("substance_misuse"), 2),
	    BIT(HEALTH));
	assert_int_equal(ehx_family_criteria(C("housing"), 3), 0);
	assert_int_equal(ehx_family_criteria(C("housing"), 4), BIT(NEEDS_HELP));
	assert_int_equal(ehx_family_criteria(0, 0), 0);
	assert_int_equal(ehx_family_criteria(999, 9), 0);
	assert_string_equal(ehx_criterion_name(1), "crime");
	assert_string_equal(ehx_criterion_name(7), "unknown");
	assert_int_equal(ehx_list_parse("troubled_families"), 2);
	assert_int_equal(ehx_list_parse("Troubled_families"), -1);
#undef BIT
}

/* [matching]: the thresholds, their defaults and their bounds. */
static void
test_matching(void **state)
{
	static const struct {
		const char *text;
		const char *words;
	} bad[] = {
		{ A "[matching]\nlink = high\n", "link is a number of bits from "
		    "20 to 80 (one decimal at most), not \"high\"" },
		{ A "[matching]\nlink = 19.9\n", "not \"19.9\"" },
		{ A "[matching]\nlink = 81\n", "not \"81\"" },
		{ A "[matching]\nlink = 25.55\n", "not \"25.55\"" },
		{ A "[matching]\nlink = -25\n", "not \"-25\"" },
		{ A "[matching]\nlink = 25.\n", "not \"25.\"" },
		{ A "[matching]\nlink = 0025\n", "not \"0025\"" },
		{ A "[matching]\nreview = 9\n", "review is a number of bits "
		    "from 10 to 80" },
		{ A "[matching]\nlink = 25\nlink = 26\n",
		    "link is given twice in [matching]" },
		{ A "[matching]\nlink = 25\n[view school]\ncategories = all\n"
		    "[matching]\nreview = 12\n", "[matching] is given twice" },
		{ A "[matching]\nodds = 3\n", "unknown key \"odds\" in "
		    "[matching] (link, review)" },
		{ A "[matching]\nlink = 30\nreview = 30\n", "review (30.0) "
		    "must be below link (30.0)" },
		{ A "[matching]\nreview = 26\n", "review (26.0) must be below "
		    "link (25.0)" },
	};
	struct ehx_policy p;
	char err[512], path[PATH_MAX];

	(void)state;
	assert_int_equal(load(A, &p, err, sizeof(err), path, sizeof(path)), 0);
	assert_true(p.match.link == EHX_MATCH_LINK_DEFAULT);
	assert_true(p.match.review == EHX_MATCH_REVIEW_DEFAULT);
	assert_int_equal(load(A "[matching]\nlink = 30.5\nreview = 12\n", &p,
	    err, sizeof(err), path, sizeof(path)), 0);
	assert_true(p.match.link == 30.5 && p.match.review == 12);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(load(bad[i].text, &p, err, sizeof(err), path,
		    sizeof(path)), EHX_ERR_CONFIG);
		if (strstr(err, bad[i].words) == NULL)
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err,
			    bad[i].words);
		assert_true(p.match.link == 0);         /* all zero */
	}
	/* the default policy says the defaults aloud */
	assert_int_equal(ehx_policy_load("docs/sharing-policy.ini", &p, err,
	    sizeof(err)), 0);
	assert_true(p.match.link == 25 && p.match.review == 17);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default),
		cmocka_unit_test(test_matching),
		cmocka_unit_test(test_lists),
		cmocka_unit_test(test_criteria),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_bounds),
	};

	return cmocka_run_group_tests_name("test_policy", tests, setup,
	    teardown);
}
