/*
 * test_err — the one table of error codes (lib/err.c): every code has its
 * own name and a sentence, wire codes travel unchanged both ways, local
 * codes never reach the wire, and unknown codes have a safe answer.
 */
#include "testutil.h"

#include "ehx.pb-c.h"
#include "ehx/err.h"

/* Every code the table defines. */
static int
all_codes(int *out)
{
	int n = 0;

	for (int c = 0; c >= EHX_ERR_WIRE_LAST; c--)
		out[n++] = c;
	for (int c = EHX_ERR_SYSTEM; c >= EHX_ERR_LOCAL_LAST; c--)
		out[n++] = c;
	return n;
}

static void
test_names_distinct_and_sentences(void **state)
{
	int codes[64], n = all_codes(codes);

	(void)state;
	assert_int_equal(n, 25 + 7);
	for (int i = 0; i < n; i++) {
		const char *name = ehx_errname(codes[i]);
		const char *text = ehx_strerror(codes[i]);

		assert_non_null(name);
		assert_non_null(text);
		assert_string_not_equal(name, "unknown");
		assert_string_not_equal(text, "unknown error");
		/* A name is a lower-case word; a sentence has some words. */
		assert_true(strlen(name) > 1);
		for (const char *p = name; *p; p++)
			assert_true((*p >= 'a' && *p <= 'z') || *p == '_');
		assert_true(strlen(text) >= 5);
		for (int j = 0; j < i; j++) {
			assert_string_not_equal(name, ehx_errname(codes[j]));
			assert_string_not_equal(text, ehx_strerror(codes[j]));
		}
	}
}

static void
test_known_names(void **state)
{
	(void)state;
	assert_string_equal(ehx_errname(EHX_OK), "ok");
	assert_string_equal(ehx_errname(EHX_ERR_BAD_SIGNATURE), "bad_signature");
	assert_string_equal(ehx_errname(EHX_ERR_REPLAY), "replay");
	assert_string_equal(ehx_errname(EHX_ERR_INVALID_NHS_NUMBER),
	    "invalid_nhs_number");
	assert_string_equal(ehx_errname(EHX_ERR_STORAGE_FULL), "storage_full");
	assert_string_equal(ehx_errname(EHX_ERR_SYSTEM), "system");
	assert_string_equal(ehx_errname(EHX_ERR_KEY_PERMISSIONS),
	    "key_permissions");
	assert_string_equal(ehx_errname(EHX_ERR_USAGE), "usage");
}

/* The wire's ErrorCode and the local codes are the same numbers. */
static void
test_wire_enum_matches(void **state)
{
	(void)state;
	assert_int_equal(-EHX_ERR_BAD_SIGNATURE, EHX__ERROR_CODE__ERROR_BAD_SIGNATURE);
	assert_int_equal(-EHX_ERR_UNKNOWN_CERTIFICATE,
	    EHX__ERROR_CODE__ERROR_UNKNOWN_CERTIFICATE);
	assert_int_equal(-EHX_ERR_STALE, EHX__ERROR_CODE__ERROR_STALE);
	assert_int_equal(-EHX_ERR_REPLAY, EHX__ERROR_CODE__ERROR_REPLAY);
	assert_int_equal(-EHX_ERR_NO_CONSENT, EHX__ERROR_CODE__ERROR_NO_CONSENT);
	assert_int_equal(-EHX_ERR_INTERNAL, EHX__ERROR_CODE__ERROR_INTERNAL);
	assert_int_equal(-EHX_ERR_BAD_VERSION, EHX__ERROR_CODE__ERROR_BAD_VERSION);
	assert_int_equal(-EHX_ERR_STORAGE_FULL,
	    EHX__ERROR_CODE__ERROR_STORAGE_FULL);
	/* Every wire value has a name in the schema. */
	for (int w = 0; w <= -EHX_ERR_WIRE_LAST; w++)
		assert_non_null(protobuf_c_enum_descriptor_get_value(
		    &ehx__error_code__descriptor, w));
	assert_null(protobuf_c_enum_descriptor_get_value(
	    &ehx__error_code__descriptor, -EHX_ERR_WIRE_LAST + 1));
}

static void
test_wire_round_trip(void **state)
{
	(void)state;
	assert_int_equal(ehx_err_to_wire(0), 0);
	assert_int_equal(ehx_err_from_wire(0), 0);
	for (int c = -1; c >= -23; c--) {
		int w = ehx_err_to_wire(c);

		assert_int_equal(w, -c);
		assert_int_equal(ehx_err_from_wire(w), c);
	}
}

static void
test_local_codes_are_internal_on_wire(void **state)
{
	(void)state;
	for (int c = EHX_ERR_SYSTEM; c >= EHX_ERR_LOCAL_LAST; c--)
		assert_int_equal(ehx_err_to_wire(c), EHX__ERROR_CODE__ERROR_INTERNAL);
	/* Undefined codes too: nothing but a wire code goes out. */
	assert_int_equal(ehx_err_to_wire(-25), EHX__ERROR_CODE__ERROR_INTERNAL);
	assert_int_equal(ehx_err_to_wire(-99), EHX__ERROR_CODE__ERROR_INTERNAL);
	assert_int_equal(ehx_err_to_wire(-1000), EHX__ERROR_CODE__ERROR_INTERNAL);
	assert_int_equal(ehx_err_to_wire(1), EHX__ERROR_CODE__ERROR_INTERNAL);
	assert_int_equal(ehx_err_to_wire(5), EHX__ERROR_CODE__ERROR_INTERNAL);
}

static void
test_unknown_codes(void **state)
{
	static const int unknown[] = { 1, 7, 1000, -25, -50, -99, -107, -200,
	    -100000, INT32_MIN + 1, INT32_MAX };

	(void)state;
	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		assert_string_equal(ehx_errname(unknown[i]), "unknown");
		assert_string_equal(ehx_strerror(unknown[i]), "unknown error");
	}
	/* Unknown wire values become INTERNAL, never a local code. */
	assert_int_equal(ehx_err_from_wire(25), EHX_ERR_INTERNAL);
	assert_int_equal(ehx_err_from_wire(100), EHX_ERR_INTERNAL);
	assert_int_equal(ehx_err_from_wire(-1), EHX_ERR_INTERNAL);
	assert_int_equal(ehx_err_from_wire(INT32_MAX), EHX_ERR_INTERNAL);
	assert_int_equal(ehx_err_from_wire(INT32_MIN), EHX_ERR_INTERNAL);
}

/*
 * lib/err.c lookup() negates the code before range-checking it, so
 * INT_MIN overflows a signed int (undefined behaviour; UBSan aborts).
 */
static void
test_int_min_code(void **state)
{
	(void)state;
	assert_string_equal(ehx_errname(INT32_MIN), "unknown");
	assert_string_equal(ehx_strerror(INT32_MIN), "unknown error");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names_distinct_and_sentences),
		cmocka_unit_test(test_known_names),
		cmocka_unit_test(test_wire_enum_matches),
		cmocka_unit_test(test_wire_round_trip),
		cmocka_unit_test(test_local_codes_are_internal_on_wire),
		cmocka_unit_test(test_unknown_codes),
		cmocka_unit_test(test_int_min_code),
	};

	return cmocka_run_group_tests_name("test_err", tests, NULL, NULL);
}
