/*
 * test_nhs — NHS numbers (lib/nhs.c): the modulus-11 check, what people
 * type (3-3-4 groups with one kind of separator), and the display form.
 */
#include "testutil.h"

#include "ehx/err.h"
#include "ehx/nhs.h"

static const char *const valid[] = {
	"9434765919", "9992914173", "9997763173", "9990669074", "9990080631",
};

/* The check digit by the rule, independently of the code under test:
 * 0..9, or 10 for a prefix that has no valid number. */
static int
check_digit(const char *nine)
{
	int sum = 0, c;

	for (int i = 0; i < 9; i++)
		sum += (nine[i] - '0') * (10 - i);
	c = 11 - sum % 11;
	return c == 11 ? 0 : c;
}

static void
test_known_valid(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
		assert_true(ehx_nhs_valid(valid[i]));
		assert_int_equal(check_digit(valid[i]), valid[i][9] - '0');
	}
}

static void
test_wrong_check_digit(void **state)
{
	char n[EHX_NHS_LEN + 1];

	(void)state;
	for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++)
		for (int d = 0; d <= 9; d++) {
			memcpy(n, valid[i], sizeof(n));
			n[9] = (char)('0' + d);
			assert_int_equal(ehx_nhs_valid(n), d == valid[i][9] - '0');
		}
	/* A swapped pair of digits is caught by the weights. */
	assert_false(ehx_nhs_valid("4934765919"));
}

/* A prefix whose check digit would be 10 has no valid number at all. */
static void
test_check_digit_ten(void **state)
{
	char n[EHX_NHS_LEN + 1];
	long prefix;
	int found = 0;

	(void)state;
	for (prefix = 100000000; prefix < 100001000 && found < 3; prefix++) {
		snprintf(n, sizeof(n), "%09ld0", prefix);
		if (check_digit(n) != 10)
			continue;
		found++;
		for (int d = 0; d <= 9; d++) {
			n[9] = (char)('0' + d);
			assert_false(ehx_nhs_valid(n));
		}
	}
	assert_int_equal(found, 3);
	/* And one worked by hand: 6 * 2 = 12, 12 % 11 = 1, 11 - 1 = 10. */
	assert_int_equal(check_digit("000000001"), 11 - 2);
	memcpy(n, "0000000060", sizeof(n));
	assert_int_equal(check_digit(n), 10);
	for (int d = 0; d <= 9; d++) {
		n[9] = (char)('0' + d);
		assert_false(ehx_nhs_valid(n));
	}
}

static void
test_check_digit_zero(void **state)
{
	char n[EHX_NHS_LEN + 1];

	(void)state;
	/* sum % 11 == 0 gives check 11, which is written 0. */
	memcpy(n, "0000000000", sizeof(n));
	assert_true(ehx_nhs_valid(n));
	memcpy(n, "0100000010", sizeof(n));   /* 1 * 9 + 1 * 2 = 11 */
	assert_int_equal(check_digit(n), 0);
	assert_true(ehx_nhs_valid(n));
	memcpy(n, "0000000000", sizeof(n));
	n[9] = '1';
	assert_false(ehx_nhs_valid(n));
}

static void
test_bad_shapes(void **state)
{
	(void)state;
	assert_false(ehx_nhs_valid(NULL));
	assert_false(ehx_nhs_valid(""));
	assert_false(ehx_nhs_valid("943476591"));        /* 9 digits */
	assert_false(ehx_nhs_valid("94347659190"));      /* 11 digits */
	assert_false(ehx_nhs_valid("943476591a"));
	assert_false(ehx_nhs_valid("a434765919"));
	assert_false(ehx_nhs_valid("943476591/"));       /* '0' - 1 */
	assert_false(ehx_nhs_valid("943476591:"));       /* '9' + 1 */
	assert_false(ehx_nhs_valid("943 476 5919"));
	assert_false(ehx_nhs_valid("+943476591"));
	assert_false(ehx_nhs_valid("-943476591"));
	assert_false(ehx_nhs_valid(" 943476591"));
	assert_false(ehx_nhs_valid("94347659\xd9\xa1"));  /* Arabic-Indic 1 */
	assert_false(ehx_nhs_valid("9434765919\n"));
}

static void
test_normalise_accepts(void **state)
{
	char out[EHX_NHS_LEN + 1];

	(void)state;
	assert_int_equal(ehx_nhs_normalise("9434765919", out), 0);
	assert_string_equal(out, "9434765919");
	memset(out, 'x', sizeof(out));
	assert_int_equal(ehx_nhs_normalise("943 476 5919", out), 0);
	assert_string_equal(out, "9434765919");
	memset(out, 'x', sizeof(out));
	assert_int_equal(ehx_nhs_normalise("943-476-5919", out), 0);
	assert_string_equal(out, "9434765919");
	assert_int_equal(ehx_nhs_normalise("999 291 4173", out), 0);
	assert_string_equal(out, "9992914173");
}

static void
test_normalise_rejects(void **state)
{
	static const char *const bad[] = {
		"943 476-5919",     /* mixed separators */
		"943-476 5919",
		"9434 76 5919",     /* wrong grouping */
		"94 3476 5919",
		"943 4765 919",
		"9434 765 919",
		"943  4765919",
		" 9434765919",      /* leading / trailing space */
		"9434765919 ",
		" 943 476 5919",
		"943 476 5919 ",
		"943 476 5918",     /* grouped, wrong check digit */
		"9434765918",
		"943_476_5919",     /* other separators */
		"943.476.5919",
		"943\t476\t5919",
		"943 4 6 5919",     /* right length, separators inside groups */
		"943 47a 5919",
		"",
		"943476591",
		"94347659190",
		"943 476 59190",
		"943 476 591",
	};
	char out[EHX_NHS_LEN + 1];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(out, 'x', sizeof(out));
		if (ehx_nhs_normalise(bad[i], out) != EHX_ERR_INVALID_NHS_NUMBER)
			fail_msg("accepted \"%s\"", bad[i]);
		/* Nothing half-normalised is left behind. */
		assert_int_equal(out[0], '\0');
	}
}

static void
test_format(void **state)
{
	char out[13];

	(void)state;
	assert_ptr_equal(ehx_nhs_format(out, "9434765919"), out);
	assert_string_equal(out, "943 476 5919");
	assert_string_equal(ehx_nhs_format(out, "9990080631"), "999 008 0631");
	/* Format, then normalise, gives the digits back. */
	for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
		char back[EHX_NHS_LEN + 1];

		ehx_nhs_format(out, valid[i]);
		assert_int_equal(strlen(out), 12);
		assert_int_equal(ehx_nhs_normalise(out, back), 0);
		assert_string_equal(back, valid[i]);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_valid),
		cmocka_unit_test(test_wrong_check_digit),
		cmocka_unit_test(test_check_digit_ten),
		cmocka_unit_test(test_check_digit_zero),
		cmocka_unit_test(test_bad_shapes),
		cmocka_unit_test(test_normalise_accepts),
		cmocka_unit_test(test_normalise_rejects),
		cmocka_unit_test(test_format),
	};

	return cmocka_run_group_tests_name("test_nhs", tests, NULL, NULL);
}
