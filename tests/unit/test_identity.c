/*
 * test_identity — a child's identity (lib/identity.c): UPN check letters
 * (DfE's published examples and the rule computed here independently),
 * postcodes, dates, names and their normal forms, NYSIIS, the nickname
 * table, the rules of a whole identity with the sentence each breach
 * gives, and the matching tokens, whose bytes are checked against the
 * openssl command's HMAC.
 */
#include "testutil.h"

#include <time.h>

#include "ehx/crypto.h"
#include "ehx/err.h"
#include "ehx/identity.h"
#include "ehx/util.h"

/* 2026-12-08 12:00 UTC */
#define NOW_MS 1796731200000LL

/* ---- UPN -------------------------------------------------------------- */

/* The rule, written out again: weights 2..13, modulo 23, a letter table
 * without I, O and S; a temporary UPN's last letter counts as its place
 * in that table. */
static char
check_letter(const char *twelve)
{
	static const char t[] = "ABCDEFGHJKLMNPQRTUVWXYZ";
	int sum = 0;

	for (int i = 0; i < 12; i++) {
		int v = twelve[i] >= '0' && twelve[i] <= '9' ? twelve[i] - '0' :
		    (int)(strchr(t, twelve[i]) - t);

		sum += v * (i + 2);
	}
	return t[sum % 23];
}

static void
test_upn(void **state)
{
	char out[EHX_UPN_LEN + 1], u[EHX_UPN_LEN + 1];

	(void)state;
	/* python-stdnum's examples; and one schools' census guidance works
	 * by hand (its sum is 266, not the 267 it prints: 13, which is P) */
	assert_true(ehx_upn_valid("B801200005001"));
	assert_false(ehx_upn_valid("A801200005001"));
	assert_true(ehx_upn_valid("P207000016049"));
	assert_false(ehx_upn_valid("B207000016049"));
	assert_int_equal(ehx_upn_check_letter("207000016049"), 'P');
	/* every serial of one school's year, and temporary ones */
	for (int s = 0; s < 1000; s += 7) {
		snprintf(u, sizeof(u), "816200120%03d", s);
		assert_int_equal(ehx_upn_check_letter(u), check_letter(u));
	}
	u[0] = check_letter("81620012012A");
	memcpy(u + 1, "81620012012A", 13);
	assert_true(ehx_upn_valid(u));
	/* a temporary UPN's letter is never I, O or S; the middle is digits */
	assert_int_equal(ehx_upn_check_letter("81620012012I"), '\0');
	assert_int_equal(ehx_upn_check_letter("81620A120100"), '\0');
	assert_false(ehx_upn_valid("B80120000500"));
	assert_false(ehx_upn_valid("B8012000050011"));
	assert_false(ehx_upn_valid("b801200005001"));
	assert_false(ehx_upn_valid(""));
	assert_false(ehx_upn_valid(NULL));
	/* what people type */
	assert_int_equal(ehx_upn_normalise("b801 2000 05001", out), 0);
	assert_string_equal(out, "B801200005001");
	assert_int_equal(ehx_upn_normalise("B801-2000-05001", out), 0);
	assert_int_equal(ehx_upn_normalise("A801200005001", out),
	    EHX_ERR_INVALID_IDENTITY);
	assert_string_equal(out, "");
	assert_int_equal(ehx_upn_normalise("B8012000050010000000000000000000000",
	    out), EHX_ERR_INVALID_IDENTITY);
}

/* ---- postcodes ----------------------------------------------------------- */

static void
test_postcode(void **state)
{
	static const char *const good[][2] = {
		{ "YO1 7HH", "YO1 7HH" }, { "yo17hh", "YO1 7HH" },
		{ "YO30 4XF", "YO30 4XF" }, { "SW1A 1AA", "SW1A 1AA" },
		{ "ec1a1bb", "EC1A 1BB" }, { "M1 1AE", "M1 1AE" },
		{ "B33 8TH", "B33 8TH" }, { "W1A 0AX", "W1A 0AX" },
		{ "DN55 1PT", "DN55 1PT" }, { "GIR 0AA", "GIR 0AA" },
	};
	static const char *const bad[] = {
		"", "YO1 7H", "YO1  7HH", "YO17 HH", " YO17HH", "YO1 7CH",
		"Q1 1AA", "1YO 7HH", "YI1 7HH", "YO1 AHH", "YO1I 7HH",
		"YOYO1 7HH", "YO1 7HHH", "Y 1AA", "YO1 7H!", "YO1 7HH ",
		"SW1A 1AAAAAAAAAAA",
	};
	char out[EHX_POSTCODE_LEN + 1];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(ehx_postcode_normalise(good[i][0], out), 0);
		assert_string_equal(out, good[i][1]);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (ehx_postcode_normalise(bad[i], out) == 0)
			fail_msg("accepted \"%s\" as %s", bad[i], out);
		assert_string_equal(out, "");
	}
}

/* ---- dates ------------------------------------------------------------- */

static void
test_dates(void **state)
{
	int y, m, d;

	(void)state;
	assert_int_equal(ehx_date_parse("2024-02-29", &y, &m, &d), 0);
	assert_int_equal(y * 10000 + m * 100 + d, 20240229);
	assert_int_not_equal(ehx_date_parse("2023-02-29", &y, &m, &d), 0);
	assert_int_not_equal(ehx_date_parse("1900-02-29", &y, &m, &d), 0);
	assert_int_equal(ehx_date_parse("2000-02-29", &y, &m, &d), 0);
	assert_int_not_equal(ehx_date_parse("2020-13-01", &y, &m, &d), 0);
	assert_int_not_equal(ehx_date_parse("2020-04-31", &y, &m, &d), 0);
	assert_int_not_equal(ehx_date_parse("2020-1-01", &y, &m, &d), 0);
	assert_int_not_equal(ehx_date_parse("2020/01/01", &y, &m, &d), 0);
	assert_int_not_equal(ehx_date_parse("20200101", &y, &m, &d), 0);
	assert_int_not_equal(ehx_date_parse("2020-01-0a", &y, &m, &d), 0);
	assert_int_not_equal(ehx_date_parse("1899-12-31", &y, &m, &d), 0);
	/* the day count agrees with the C library's */
	for (int yy = 1970; yy < 2040; yy += 3)
		for (int mm = 1; mm <= 12; mm++) {
			struct tm tm = { .tm_year = yy - 1900, .tm_mon = mm - 1,
			    .tm_mday = 17 };

			assert_int_equal(ehx_days_from_civil(yy, mm, 17),
			    (int64_t)timegm(&tm) / 86400);
		}
}

/* ---- names -------------------------------------------------------------- */

/* The words of a name joined by '|', or "-" when it is not a name. */
static const char *
words(const char *in)
{
	static char joined[256];
	char w[2 * EHX_MAX_PERSON_NAME + 1];
	const char *p = w;
	int n;

	if ((n = ehx_name_words(in, w, sizeof(w))) < 0)
		return "-";
	joined[0] = '\0';
	for (int i = 0; i < n; i++, p += strlen(p) + 1) {
		if (i > 0)
			strcat(joined, "|");
		strcat(joined, p);
	}
	return joined;
}

static void
test_names(void **state)
{
	(void)state;
	assert_string_equal(words("Smith"), "SMITH");
	assert_string_equal(words("O'Brien"), "OBRIEN");
	assert_string_equal(words("O\xe2\x80\x99" "Brien"), "OBRIEN");
	assert_string_equal(words("Smith-Jones"), "SMITH|JONES");
	assert_string_equal(words("  Jean-Luc  "), "JEAN|LUC");
	assert_string_equal(words("St. John"), "ST|JOHN");
	assert_string_equal(words("Zo\xc3\xab"), "ZOE");                /* Zoë */
	assert_string_equal(words("S\xc3\xb8ren"), "SOREN");            /* Søren */
	assert_string_equal(words("Strau\xc3\x9f"), "STRAUSS");         /* Strauß */
	assert_string_equal(words("\xc3\x86lfric"), "AELFRIC");         /* Ælfric */
	assert_string_equal(words("Wojciech \xc5\x81" "ukasz"),
	    "WOJCIECH|LUKASZ");                                         /* Ł */
	assert_string_equal(words("\xc5\x92none"), "OENONE");           /* Œ */
	assert_string_equal(words("Maria de la Cruz Garcia Lopez"),
	    "MARIA|DE|LA|CRUZ");
	assert_string_equal(words("\xe6\x9d\x8e"), "\xe6\x9d\x8e");     /* 李 */
	assert_string_equal(words("John3"), "-");
	assert_string_equal(words("J@ne"), "-");
	assert_string_equal(words("   "), "-");
	assert_string_equal(words("--"), "-");
	assert_string_equal(words("''"), "-");
	assert_string_equal(words(""), "-");
	assert_string_equal(words("Ann \xc3\x97 2"), "-");              /* × */
	assert_string_equal(words("\xf0\x9f\x98\x80"), "-");            /* 😀 */
	assert_string_equal(words("Bad\nName"), "-");
	assert_string_equal(words("\xc3("), "-");                       /* not UTF-8 */
	assert_string_equal(words("Aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaa"), "-");                            /* 65 bytes */
}

static void
test_phonetic(void **state)
{
	static const char *const v[][2] = {
		{ "JOHNSON", "JANSAN" }, { "WILLIAMS", "WALAN" },
		{ "MACINTOSH", "MCANT" }, { "KNIGHT", "NAGT" },
		{ "PHILLIPS", "FALAP" }, { "CATHERINE", "CATARA" },
		{ "KATHERINE", "CATARA" }, { "SCHMIDT", "SNAD" },
		{ "A", "A" }, { "S", "S" },
	};
	char out[EHX_PHONETIC_LEN + 1];

	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		ehx_phonetic(v[i][0], out);
		if (strcmp(out, v[i][1]) != 0)
			fail_msg("NYSIIS(%s) = %s, not %s", v[i][0], out, v[i][1]);
	}
	ehx_phonetic("\xe6\x9d\x8e", out);
	assert_string_equal(out, "");
	ehx_phonetic("", out);
	assert_string_equal(out, "");
	assert_string_equal(ehx_given_canonical("BILL"), "WILLIAM");
	assert_string_equal(ehx_given_canonical("KATIE"), "KATHERINE");
	assert_string_equal(ehx_given_canonical("ELLIE"), "ELLIE");
}

/* ---- a whole identity ----------------------------------------------------- */

static Ehx__ChildIdentity
child(void)
{
	Ehx__ChildIdentity id;

	ehx__child_identity__init(&id);
	id.given_name = "Amelia";
	id.family_name = "Hart";
	id.date_of_birth = "2016-03-04";
	id.sex = EHX__SEX__SEX_FEMALE;
	id.postcode = "yo31 0ab";
	return id;
}

/* The code id gets, and that the sentence names what. */
static void
expect(const Ehx__ChildIdentity *id, int code, const char *what)
{
	char why[256] = "";
	int r = ehx_validate_identity(id, NOW_MS, why, sizeof(why));

	if (r != code)
		fail_msg("got %d (%s), expected %d", r, why, code);
	if (what != NULL && strstr(why, what) == NULL)
		fail_msg("\"%s\" does not name %s", why, what);
}

static void
test_validate(void **state)
{
	Ehx__ChildIdentity id;
	char *others[5] = { "Hart-Lee", "Millie", "Jones", "Smith", "Extra" };
	char *bad_other[1] = { "H4rt" };

	(void)state;
	id = child();
	expect(&id, 0, NULL);
	/* each way of naming a child alone */
	ehx__child_identity__init(&id);
	expect(&id, EHX_ERR_INVALID_IDENTITY, "not named");
	id.nhs_number = "9434765919";
	expect(&id, 0, NULL);
	ehx__child_identity__init(&id);
	id.upn = "B801200005001";
	expect(&id, 0, NULL);
	ehx__child_identity__init(&id);
	id.local_id = "NYP/P-001234";
	expect(&id, 0, NULL);
	ehx__child_identity__init(&id);
	id.family_name = "Hart";
	expect(&id, EHX_ERR_INVALID_IDENTITY, "not named");
	id.date_of_birth = "2016-03-04";
	expect(&id, 0, NULL);
	/* each field's rule */
	id = child();
	id.nhs_number = "9434765918";
	expect(&id, EHX_ERR_INVALID_NHS_NUMBER, "nhs_number");
	id = child();
	id.upn = "A801200005001";
	expect(&id, EHX_ERR_INVALID_IDENTITY, "should be B");
	id.upn = "B80120000500";
	expect(&id, EHX_ERR_INVALID_IDENTITY, "child.upn");
	id = child();
	id.local_id = "has space";
	expect(&id, EHX_ERR_INVALID_IDENTITY, "child.local_id");
	id = child();
	id.given_name = "Am3lia";
	expect(&id, EHX_ERR_INVALID_IDENTITY, "child.given_name");
	id = child();
	id.family_name = "H\tart";
	expect(&id, EHX_ERR_INVALID_IDENTITY, "child.family_name");
	id = child();
	id.other_names = others;
	id.n_other_names = 4;
	expect(&id, 0, NULL);
	id.n_other_names = 5;
	expect(&id, EHX_ERR_INVALID_IDENTITY, "at most 4");
	id.other_names = bad_other;
	id.n_other_names = 1;
	expect(&id, EHX_ERR_INVALID_IDENTITY, "child.other_names");
	id = child();
	id.date_of_birth = "2016-02-30";
	expect(&id, EHX_ERR_INVALID_IDENTITY, "YYYY-MM-DD");
	id.date_of_birth = "2026-12-10";
	expect(&id, EHX_ERR_INVALID_IDENTITY, "future");
	id.date_of_birth = "2026-12-09";        /* a day's grace */
	expect(&id, 0, NULL);
	id.date_of_birth = "2000-12-08";        /* 26 years today */
	expect(&id, 0, NULL);
	id.date_of_birth = "2000-12-07";
	expect(&id, EHX_ERR_INVALID_IDENTITY, "26 years");
	id = child();
	id.sex = (Ehx__Sex)7;
	expect(&id, EHX_ERR_INVALID_IDENTITY, "child.sex");
	id = child();
	id.postcode = "YO31 0CB";
	expect(&id, EHX_ERR_INVALID_IDENTITY, "child.postcode");
	id = child();
	id.uprn = "000";
	expect(&id, EHX_ERR_INVALID_IDENTITY, "child.uprn");
	id.uprn = "1234567890123";
	expect(&id, EHX_ERR_INVALID_IDENTITY, "child.uprn");
	id.uprn = "10023118876";
	expect(&id, 0, NULL);
	expect(NULL, EHX_ERR_INVALID_IDENTITY, "not named");
}

/* ---- tokens ------------------------------------------------------------- */

static char dir[PATH_MAX];
static struct ehx_pseudokey *key;
#define KEY_HEX "000102030405060708090a0b0c0d0e0f" \
    "101112131415161718191a1b1c1d1e1f"

static int
setup(void **state)
{
	char path[PATH_MAX];

	(void)state;
	if (tu_mkdtemp(dir, sizeof(dir), "identity") != 0)
		return -1;
	tu_join(path, sizeof(path), dir, "matching.key");
	if (tu_writef(path, 0600, "%s\n", KEY_HEX) != 0 ||
	    ehx_pseudokey_load(path, &key) != 0)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	ehx_pseudokey_free(key);
	tu_rmtree(dir);
	return 0;
}

static bool
has(const struct ehx_tokens *t, enum ehx_feature f, const unsigned char *tok)
{
	for (size_t i = 0; i < t->n[f]; i++)
		if (memcmp(t->tok[f][i], tok, EHX_TOKEN_LEN) == 0)
			return true;
	return false;
}

/* The token as the openssl command computes it over the same bytes. */
static void
openssl_token(const char *label, const char *value, char hex[33])
{
	char path[PATH_MAX], line[256];
	FILE *f;

	tu_join(path, sizeof(path), dir, "input");
	assert_non_null(f = fopen(path, "wb"));
	fwrite("EHX-MATCH-V1", 1, 13, f);      /* with its NUL */
	fwrite(label, 1, strlen(label) + 1, f);
	fwrite(value, 1, strlen(value), f);
	fclose(f);
	assert_int_equal(tu_sh_line(line, sizeof(line), "openssl dgst -sha256 "
	    "-mac HMAC -macopt hexkey:%s -r '%s'", KEY_HEX, path), 0);
	assert_true(strlen(line) >= 32);
	memcpy(hex, line, 32);
	hex[32] = '\0';
}

static void
test_token_bytes(void **state)
{
	static const char *const v[][2] = {
		{ "name", "HART" }, { "dob", "20160304" },
		{ "postcode", "YO31 0AB" }, { "nhs", "9434765919" },
	};
	static const enum ehx_feature f[] = { EHX_F_FAMILY, EHX_F_DOB,
	    EHX_F_POSTCODE, EHX_F_NHS };
	unsigned char tok[EHX_TOKEN_LEN];
	char hex[33], want[33];

	(void)state;
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		assert_int_equal(ehx_token(key, f[i], v[i][1], strlen(v[i][1]),
		    tok), 0);
		ehx_hex(hex, tok, EHX_TOKEN_LEN);
		openssl_token(v[i][0], v[i][1], want);
		assert_string_equal(hex, want);
	}
	/* given and family names share a label: a swap can be seen */
	assert_int_equal(ehx_token(key, EHX_F_GIVEN, "HART", 4, tok), 0);
	ehx_hex(hex, tok, EHX_TOKEN_LEN);
	openssl_token("name", "HART", want);
	assert_string_equal(hex, want);
}

static void
test_tokens(void **state)
{
	Ehx__ChildIdentity a = child(), b = child();
	struct ehx_tokens *ta, *tb;
	unsigned char tok[EHX_TOKEN_LEN];
	char *other[1] = { "Smith-Hart" };

	(void)state;
	assert_non_null(ta = calloc(1, sizeof(*ta)));
	assert_non_null(tb = calloc(1, sizeof(*tb)));
	a.nhs_number = "9434765919";
	a.local_id = "P-1";
	a.uprn = "010023118876";
	assert_int_equal(ehx_identity_tokens(key, "nyp", &a, ta), 0);
	for (int f = 0; f < EHX_F_COUNT; f++)
		if (f != EHX_F_UPN && f != EHX_F_GIVEN_DEL &&
		    f != EHX_F_FAMILY_DEL && ta->n[f] != 1)
			fail_msg("%s: %u tokens", ehx_feature_name(f), ta->n[f]);
	assert_int_equal(ta->n[EHX_F_GIVEN_DEL], 7);   /* AMELIA and 6 */
	assert_int_equal(ta->n[EHX_F_FAMILY_DEL], 5);  /* HART and 4 */
	assert_int_equal(ta->n[EHX_F_UPN], 0);
	/* the same values from another sender: the same tokens, but the local
	 * id is the sender's own */
	b.nhs_number = "9434765919";
	b.local_id = "P-1";
	b.postcode = "YO31 0AB";
	b.uprn = "10023118876";
	assert_int_equal(ehx_identity_tokens(key, "york-school", &b, tb), 0);
	for (int f = 0; f < EHX_F_COUNT; f++)
		if (f != EHX_F_UPN && f != EHX_F_LOCAL)
			assert_memory_equal(ta->tok[f][0], tb->tok[f][0],
			    EHX_TOKEN_LEN);
	assert_memory_not_equal(ta->tok[EHX_F_LOCAL][0],
	    tb->tok[EHX_F_LOCAL][0], EHX_TOKEN_LEN);
	/* the day and month swapped: one's swap is the other's date */
	assert_true(ta->has_dob_swapped);
	b = child();
	b.date_of_birth = "2016-04-03";
	assert_int_equal(ehx_identity_tokens(key, "nyp", &b, tb), 0);
	assert_memory_equal(ta->dob_swapped, tb->tok[EHX_F_DOB][0],
	    EHX_TOKEN_LEN);
	assert_memory_not_equal(ta->tok[EHX_F_DOB][0], tb->tok[EHX_F_DOB][0],
	    EHX_TOKEN_LEN);
	b.date_of_birth = "2016-04-04";
	assert_int_equal(ehx_identity_tokens(key, "nyp", &b, tb), 0);
	assert_false(tb->has_dob_swapped);      /* the same either way */
	/* a single field wrong still leaves two pairs agreeing */
	b.date_of_birth = "2016-03-05";
	assert_int_equal(ehx_identity_tokens(key, "nyp", &b, tb), 0);
	assert_memory_equal(ta->tok[EHX_F_DOB_YM][0], tb->tok[EHX_F_DOB_YM][0],
	    EHX_TOKEN_LEN);
	assert_memory_not_equal(ta->tok[EHX_F_DOB_MD][0],
	    tb->tok[EHX_F_DOB_MD][0], EHX_TOKEN_LEN);
	/* a changed, hyphenated surname among the other names; a nickname;
	 * a house move within the sector */
	b = child();
	b.given_name = "Millie Amelia";
	b.family_name = "Smith";
	b.other_names = other;
	b.n_other_names = 1;
	b.postcode = "YO31 0XY";
	assert_int_equal(ehx_identity_tokens(key, "nyp", &b, tb), 0);
	assert_int_equal(tb->n[EHX_F_FAMILY], 2);      /* SMITH, HART */
	assert_true(has(tb, EHX_F_FAMILY, ta->tok[EHX_F_FAMILY][0]));
	assert_true(has(tb, EHX_F_GIVEN, ta->tok[EHX_F_GIVEN][0]));
	assert_false(has(tb, EHX_F_POSTCODE, ta->tok[EHX_F_POSTCODE][0]));
	assert_true(has(tb, EHX_F_SECTOR, ta->tok[EHX_F_SECTOR][0]));
	/* names swapped: the given name is the other's family name */
	b = child();
	b.given_name = "Hart";
	b.family_name = "Amelia";
	assert_int_equal(ehx_identity_tokens(key, "nyp", &b, tb), 0);
	assert_true(has(tb, EHX_F_GIVEN, ta->tok[EHX_F_FAMILY][0]));
	/* a typing slip: the deletions meet (AMELA), the words do not */
	b = child();
	b.given_name = "Amelai";
	assert_int_equal(ehx_identity_tokens(key, "nyp", &b, tb), 0);
	assert_false(has(tb, EHX_F_GIVEN, ta->tok[EHX_F_GIVEN][0]));
	{
		int shared = 0;

		for (size_t i = 0; i < ta->n[EHX_F_GIVEN_DEL]; i++)
			shared += has(tb, EHX_F_GIVEN_DEL,
			    ta->tok[EHX_F_GIVEN_DEL][i]);
		assert_int_equal(shared, 2);    /* AMELA and AMELI */
	}
	/* nicknames meet in the usual form */
	a = child();
	a.given_name = "William";
	b = child();
	b.given_name = "Bill";
	assert_int_equal(ehx_identity_tokens(key, "nyp", &a, ta), 0);
	assert_int_equal(ehx_identity_tokens(key, "nyp", &b, tb), 0);
	assert_memory_not_equal(ta->tok[EHX_F_GIVEN][0], tb->tok[EHX_F_GIVEN][0],
	    EHX_TOKEN_LEN);
	assert_memory_equal(ta->tok[EHX_F_GIVEN_CANON][0],
	    tb->tok[EHX_F_GIVEN_CANON][0], EHX_TOKEN_LEN);
	/* the key decides every token */
	assert_int_equal(ehx_token(key, EHX_F_DOB, "20160304", 8, tok), 0);
	assert_memory_equal(tok, ta->tok[EHX_F_DOB][0], EHX_TOKEN_LEN);
	free(ta);
	free(tb);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_upn),
		cmocka_unit_test(test_postcode),
		cmocka_unit_test(test_dates),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_phonetic),
		cmocka_unit_test(test_validate),
		cmocka_unit_test(test_token_bytes),
		cmocka_unit_test(test_tokens),
	};

	return cmocka_run_group_tests_name("test_identity", tests, setup,
	    teardown);
}
