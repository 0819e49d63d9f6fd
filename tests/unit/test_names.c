/*
 * test_names — the words for the schema's enums (lib/names.c): every value
 * of each enum in proto/ehx.proto has a name that parses back to it, the
 * names are distinct, unknown words give -1 and values out of range
 * "unknown". The enum descriptors protobuf-c generates are the reference,
 * so a value added to the schema without a name fails here.
 */
#include "testutil.h"

#include "ehx.pb-c.h"
#include "ehx/names.h"

struct table {
	const char *what;
	const ProtobufCEnumDescriptor *desc;
	const char *(*name)(int);
	int (*parse)(const char *);
};

static const char *
level_name(int v)
{
	return ehx_level_name((unsigned)v);
}

static const struct table tables[] = {
	{ "role", &ehx__role__descriptor, ehx_role_name, ehx_role_parse },
	{ "agency type", &ehx__agency_type__descriptor, ehx_agency_type_name,
	    ehx_agency_type_parse },
	{ "category", &ehx__category__descriptor, ehx_category_name,
	    ehx_category_parse },
	{ "purpose", &ehx__purpose__descriptor, ehx_purpose_name,
	    ehx_purpose_parse },
	{ "basis", &ehx__lawful_basis__descriptor, ehx_basis_name,
	    ehx_basis_parse },
	{ "relation", &ehx__relation__descriptor, ehx_relation_name,
	    ehx_relation_parse },
};

/* The largest value the schema defines for an enum. */
static int
max_value(const ProtobufCEnumDescriptor *d)
{
	int m = 0;

	for (unsigned i = 0; i < d->n_values; i++)
		if (d->values[i].value > m)
			m = d->values[i].value;
	return m;
}

static void
test_round_trip(void **state)
{
	(void)state;
	for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++) {
		const struct table *tb = &tables[t];
		int max = max_value(tb->desc);

		assert_true(max >= 3);
		for (int v = 1; v <= max; v++) {
			const char *n = tb->name(v);

			assert_non_null(protobuf_c_enum_descriptor_get_value(
			    tb->desc, v));
			if (strcmp(n, "unknown") == 0)
				fail_msg("%s %d has no name", tb->what, v);
			if (tb->parse(n) != v)
				fail_msg("%s \"%s\" parses to %d, not %d",
				    tb->what, n, tb->parse(n), v);
			for (int w = 1; w < v; w++)
				assert_string_not_equal(n, tb->name(w));
			/* Names are lower-case words: what people type. */
			for (const char *p = n; *p; p++)
				assert_true((*p >= 'a' && *p <= 'z') || *p == '_');
		}
	}
}

static void
test_names_match_schema(void **state)
{
	char want[64];

	(void)state;
	/* The word is the schema's value name without its prefix, lower-case:
	 * CATEGORY_DOMESTIC_ABUSE is "domestic_abuse". */
	for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++) {
		const struct table *tb = &tables[t];

		for (unsigned i = 0; i < tb->desc->n_values; i++) {
			const ProtobufCEnumValue *ev = &tb->desc->values[i];
			const char *p = ev->name;   /* e.g. "CATEGORY_HOUSING" */
			size_t k = 0;

			if (ev->value == 0)
				continue;
			/* Skip the prefix: value 0's name without UNSPECIFIED
			 * ("CATEGORY_"). */
			{
				const char *zero =
				    protobuf_c_enum_descriptor_get_value(tb->desc,
				    0)->name;
				size_t plen = strlen(zero) - strlen("UNSPECIFIED");

				assert_true(strncmp(p, zero, plen) == 0);
				p += plen;
			}
			for (; *p && k + 1 < sizeof(want); p++)
				want[k++] = (char)(*p >= 'A' && *p <= 'Z' ?
				    *p - 'A' + 'a' : *p);
			want[k] = '\0';
			assert_string_equal(tb->name(ev->value), want);
		}
	}
}

static void
test_unknown_words(void **state)
{
	static const char *const words[] = {
		"", "unknown", "unspecified", "Police", "POLICE", " police",
		"police ", "polic", "policee", "ROLE_PRACTITIONER", "0", "1",
		"domestic abuse", "domestic-abuse", "whole picture",
	};

	(void)state;
	for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++)
		for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
			if (tables[t].parse(words[i]) != -1)
				fail_msg("%s accepted \"%s\"", tables[t].what,
				    words[i]);
	/* A word of one enum is not a word of another. */
	assert_int_equal(ehx_role_parse("police"), -1);
	assert_int_equal(ehx_agency_type_parse("practitioner"), -1);
	assert_int_equal(ehx_purpose_parse("consent"), -1);
	assert_int_equal(ehx_basis_parse("parent"), -1);
	/* Some words belong to two enums, each with its own value. */
	assert_int_equal(ehx_agency_type_parse("housing"),
	    EHX__AGENCY_TYPE__AGENCY_TYPE_HOUSING);
	assert_int_equal(ehx_category_parse("housing"),
	    EHX__CATEGORY__CATEGORY_HOUSING);
}

static void
test_out_of_range(void **state)
{
	(void)state;
	for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++) {
		int max = max_value(tables[t].desc);

		assert_string_equal(tables[t].name(0), "unknown");
		assert_string_equal(tables[t].name(-1), "unknown");
		assert_string_equal(tables[t].name(max + 1), "unknown");
		assert_string_equal(tables[t].name(1000), "unknown");
		assert_string_equal(tables[t].name(INT32_MIN), "unknown");
		assert_string_equal(tables[t].name(INT32_MAX), "unknown");
	}
	assert_string_equal(ehx_category_label(0), "unknown");
	assert_string_equal(ehx_category_label(21), "unknown");
	assert_false(ehx_category_valid(0));
	assert_false(ehx_category_valid(-1));
	assert_false(ehx_category_valid(21));
	assert_false(ehx_category_valid(999));
}

static void
test_category_labels_and_list(void **state)
{
	const char *list = ehx_category_list();
	int max = max_value(&ehx__category__descriptor);
	size_t commas = 0;

	(void)state;
	assert_int_equal(max, 20);
	for (int v = 1; v <= max; v++) {
		assert_true(ehx_category_valid(v));
		assert_string_not_equal(ehx_category_label(v), "unknown");
		assert_non_null(strstr(list, ehx_category_name(v)));
	}
	assert_string_equal(ehx_category_label(EHX__CATEGORY__CATEGORY_SEND),
	    "SEND");
	for (const char *p = list; *p; p++)
		commas += *p == ',';
	assert_int_equal(commas, (size_t)max - 1);
	assert_true(strncmp(list, "domestic_abuse, ", 16) == 0);
	/* The list is built once and stays the same. */
	assert_ptr_equal(ehx_category_list(), list);
	assert_int_equal(strlen(ehx_category_list()), strlen(list));
}

static void
test_levels(void **state)
{
	(void)state;
	assert_string_equal(level_name(1), "universal");
	assert_string_equal(level_name(2), "additional");
	assert_string_equal(level_name(3), "complex");
	assert_string_equal(level_name(4), "acute");
	assert_string_equal(level_name(0), "unknown");
	assert_string_equal(level_name(5), "unknown");
	assert_string_equal(ehx_level_name(UINT32_MAX), "unknown");
	assert_string_equal(ehx_level_name(0x80000000u), "unknown");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_names_match_schema),
		cmocka_unit_test(test_unknown_words),
		cmocka_unit_test(test_out_of_range),
		cmocka_unit_test(test_category_labels_and_list),
		cmocka_unit_test(test_levels),
	};

	return cmocka_run_group_tests_name("test_names", tests, NULL, NULL);
}
