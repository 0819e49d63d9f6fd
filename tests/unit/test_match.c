/*
 * test_match — comparing identities by their tokens (lib/match.c): each
 * field's levels, the weights and what they add up to, the rules that bar
 * an automatic link (twins above all), the outcome against thresholds,
 * and the blocking keys that bring a slipped record to its child.
 */
#include "testutil.h"

#include <math.h>

#include "ehx/crypto.h"
#include "ehx/identity.h"
#include "ehx/match.h"

static struct ehx_pseudokey *key;
static const struct ehx_match_thresholds th = { EHX_MATCH_LINK_DEFAULT,
    EHX_MATCH_REVIEW_DEFAULT };

static int
setup(void **state)
{
	static const unsigned char raw[32] = { 7, 7, 7 };

	(void)state;
	return ehx_pseudokey_raw(raw, &key);
}

static int
teardown(void **state)
{
	(void)state;
	ehx_pseudokey_free(key);
	return 0;
}

/* Amelia Rose Hart, born 4 March 2016, at YO31 0AB: the school's record. */
static Ehx__ChildIdentity
amelia(void)
{
	Ehx__ChildIdentity id;

	ehx__child_identity__init(&id);
	id.given_name = "Amelia Rose";
	id.family_name = "Hart";
	id.date_of_birth = "2016-03-04";
	id.sex = EHX__SEX__SEX_FEMALE;
	id.postcode = "YO31 0AB";
	id.uprn = "10023118876";
	return id;
}

static struct ehx_tokens ta, tb;

static void
compare(const Ehx__ChildIdentity *a, const Ehx__ChildIdentity *b,
    struct ehx_match_result *r)
{
	struct ehx_match_result back;

	assert_int_equal(ehx_identity_tokens(key, "school", a, &ta), 0);
	assert_int_equal(ehx_identity_tokens(key, "police", b, &tb), 0);
	ehx_match_compare(&ta, &tb, r);
	ehx_match_compare(&tb, &ta, &back);     /* symmetric */
	assert_memory_equal(r->level, back.level, sizeof(r->level));
	assert_true(fabs(r->score - back.score) < 1e-9);
	assert_int_equal(r->bars, back.bars);
}

static enum ehx_match_outcome
outcome(const Ehx__ChildIdentity *b, struct ehx_match_result *r)
{
	Ehx__ChildIdentity a = amelia();

	compare(&a, b, r);
	return ehx_match_decide(r, &th);
}

static void
test_weights(void **state)
{
	double m, u, sm, su;

	(void)state;
	/* each field's m and u are distributions over its levels */
	for (int f = 0; f < EHX_M_COUNT; f++) {
		sm = su = 0;
		for (int l = EHX_L_DIFFERENT; l < EHX_L_COUNT; l++) {
			(void)ehx_match_weight(f, l, &m, &u);
			sm += m;
			su += u;
		}
		if (fabs(sm - 1) > 1e-6 || fabs(su - 1) > 1e-3)
			fail_msg("%s: m sums to %f, u to %f",
			    ehx_match_field_name(f), sm, su);
		assert_true(ehx_match_weight(f, EHX_L_SAME, NULL, NULL) > 0);
		assert_true(ehx_match_weight(f, EHX_L_DIFFERENT, NULL, NULL) < 0);
		assert_true(ehx_match_weight(f, EHX_L_MISSING, NULL, NULL) == 0);
	}
	assert_true(fabs(ehx_match_weight(EHX_M_DOB, EHX_L_SAME, NULL, NULL) -
	    log2(0.93 / 0.00016)) < 1e-9);
	/* a partial agreement weighs less than a full one */
	assert_true(ehx_match_weight(EHX_M_GIVEN, EHX_L_SLIP, NULL, NULL) <
	    ehx_match_weight(EHX_M_GIVEN, EHX_L_SAME, NULL, NULL));
	assert_true(ehx_match_weight(EHX_M_POSTCODE, EHX_L_SECTOR, NULL, NULL) <
	    ehx_match_weight(EHX_M_POSTCODE, EHX_L_SAME, NULL, NULL));
	assert_int_equal(ehx_match_weight(EHX_M_SEX, EHX_L_SLIP, &m, &u), 0);
	assert_true(m == 0 && u == 0);
}

static void
test_same_child(void **state)
{
	Ehx__ChildIdentity b = amelia();
	struct ehx_match_result r;
	double all = 0;

	(void)state;
	assert_int_equal(outcome(&b, &r), EHX_MATCH_LINK);
	for (int f = 0; f < EHX_M_COUNT; f++) {
		assert_int_equal(r.level[f], EHX_L_SAME);
		all += ehx_match_weight(f, EHX_L_SAME, NULL, NULL);
	}
	assert_true(fabs(r.score - all) < 1e-9);
	assert_int_equal(r.bars, 0);
	/* the police's record: her usual name, no middle name, no UPRN */
	b = amelia();
	b.given_name = "AMELIA";
	b.uprn = "";
	assert_int_equal(outcome(&b, &r), EHX_MATCH_LINK);
	assert_int_equal(r.level[EHX_M_UPRN], EHX_L_MISSING);
	/* known by her middle name */
	b.given_name = "Rose";
	assert_int_equal(outcome(&b, &r), EHX_MATCH_LINK);
}

static void
test_slips(void **state)
{
	Ehx__ChildIdentity b;
	struct ehx_match_result r;

	(void)state;
	/* a typing slip in each name */
	b = amelia();
	b.given_name = "Amelai";
	b.family_name = "Harte";
	b.uprn = "";
	assert_int_equal(outcome(&b, &r), EHX_MATCH_LINK);
	assert_int_equal(r.level[EHX_M_GIVEN], EHX_L_SLIP);
	assert_int_equal(r.level[EHX_M_FAMILY], EHX_L_SLIP);
	/* names the wrong way round */
	b = amelia();
	b.given_name = "Hart";
	b.family_name = "Amelia";
	assert_int_equal(outcome(&b, &r), EHX_MATCH_LINK);
	assert_int_equal(r.level[EHX_M_GIVEN], EHX_L_SWAPPED);
	assert_int_equal(r.level[EHX_M_FAMILY], EHX_L_SWAPPED);
	/* day and month swapped */
	b = amelia();
	b.date_of_birth = "2016-04-03";
	assert_int_equal(outcome(&b, &r), EHX_MATCH_LINK);
	assert_int_equal(r.level[EHX_M_DOB], EHX_L_SWAPPED);
	/* one part of the date wrong, and a house move within the sector:
	 * not enough alone to link, enough to ask */
	b = amelia();
	b.date_of_birth = "2016-03-14";
	b.postcode = "YO31 0XY";
	b.uprn = "";
	assert_int_equal(outcome(&b, &r), EHX_MATCH_REVIEW);
	assert_int_equal(r.level[EHX_M_DOB], EHX_L_ONE_WRONG);
	assert_int_equal(r.level[EHX_M_POSTCODE], EHX_L_SECTOR);
	/* a new surname (mother's remarriage) recorded as another name */
	{
		char *other[1] = { "Hart" };

		b = amelia();
		b.family_name = "Smith";
		b.other_names = other;
		b.n_other_names = 1;
		assert_int_equal(outcome(&b, &r), EHX_MATCH_LINK);
		assert_int_equal(r.level[EHX_M_FAMILY], EHX_L_SAME);
	}
	/* a nickname */
	{
		Ehx__ChildIdentity a = amelia();

		a.given_name = "William";
		a.sex = EHX__SEX__SEX_MALE;
		b = a;
		b.given_name = "Billy";
		compare(&a, &b, &r);
		assert_int_equal(r.level[EHX_M_GIVEN], EHX_L_USUAL);
		assert_int_equal(ehx_match_decide(&r, &th), EHX_MATCH_LINK);
	}
}

static void
test_twins_and_bars(void **state)
{
	Ehx__ChildIdentity b;
	struct ehx_match_result r;

	(void)state;
	/* her twin: everything the same but the given name */
	b = amelia();
	b.given_name = "Isla";
	assert_int_equal(outcome(&b, &r), EHX_MATCH_NEW);
	assert_true(r.bars & EHX_BAR_GIVEN);
	assert_true(r.score > th.link);         /* the rule, not the score */
	b.sex = EHX__SEX__SEX_MALE;
	b.given_name = "Oscar";
	assert_int_equal(outcome(&b, &r), EHX_MATCH_NEW);
	/* another NHS number is another child, whatever else agrees */
	{
		Ehx__ChildIdentity a = amelia();

		a.nhs_number = "9434765919";
		b = amelia();
		b.nhs_number = "9992914173";
		compare(&a, &b, &r);
		assert_true(r.bars & EHX_BAR_ID);
		assert_int_equal(ehx_match_decide(&r, &th), EHX_MATCH_NEW);
		/* so is another UPN; one side without one bars nothing */
		b.nhs_number = "";
		b.upn = "B801200005001";
		a.upn = "P207000016049";
		compare(&a, &b, &r);
		assert_true(r.bars & EHX_BAR_ID);
		a.upn = "";
		compare(&a, &b, &r);
		assert_int_equal(r.bars, 0);
		assert_int_equal(ehx_match_decide(&r, &th), EHX_MATCH_LINK);
	}
	/* a different date of birth, or sex, is at most for review */
	b = amelia();
	b.date_of_birth = "2017-09-21";
	assert_int_equal(outcome(&b, &r), EHX_MATCH_REVIEW);
	assert_true(r.bars & EHX_BAR_DOB);
	b = amelia();
	b.sex = EHX__SEX__SEX_MALE;
	assert_int_equal(outcome(&b, &r), EHX_MATCH_REVIEW);
	assert_true(r.bars & EHX_BAR_SEX);
	/* a stranger with her surname and postcode: a sibling */
	b = amelia();
	b.given_name = "Jack";
	b.date_of_birth = "2013-07-19";
	b.sex = EHX__SEX__SEX_MALE;
	assert_int_equal(outcome(&b, &r), EHX_MATCH_NEW);
	/* a family name and a date alone: a person should look */
	ehx__child_identity__init(&b);
	b.family_name = "Hart";
	b.date_of_birth = "2016-03-04";
	assert_int_equal(outcome(&b, &r), EHX_MATCH_REVIEW);
	assert_int_equal(r.level[EHX_M_GIVEN], EHX_L_MISSING);
	/* a family name alone: nothing */
	b.date_of_birth = "";
	assert_int_equal(outcome(&b, &r), EHX_MATCH_NEW);
}

/* Do a (indexed) and b (looking) share a blocking key? */
static bool
blocked_together(const Ehx__ChildIdentity *a, const Ehx__ChildIdentity *b)
{
	unsigned char ka[EHX_MAX_BLOCKS][EHX_TOKEN_LEN];
	unsigned char kb[EHX_MAX_BLOCKS][EHX_TOKEN_LEN];
	size_t na, nb;

	assert_int_equal(ehx_identity_tokens(key, "school", a, &ta), 0);
	assert_int_equal(ehx_identity_tokens(key, "police", b, &tb), 0);
	na = ehx_match_blocks(&ta, false, ka, EHX_MAX_BLOCKS);
	nb = ehx_match_blocks(&tb, true, kb, EHX_MAX_BLOCKS);
	assert_true(na > 0 && na <= EHX_MAX_BLOCKS);
	assert_true(nb >= na || nb > 0);
	for (size_t i = 0; i < na; i++)
		for (size_t j = 0; j < nb; j++)
			if (memcmp(ka[i], kb[j], EHX_TOKEN_LEN) == 0)
				return true;
	return false;
}

static void
test_blocks(void **state)
{
	Ehx__ChildIdentity a = amelia(), b;
	unsigned char k[EHX_MAX_BLOCKS][EHX_TOKEN_LEN];
	char *many[4] = { "Aa Bb Cc Dd", "Ee Ff Gg Hh", "Ii Jj Kk Ll",
	    "Mm Nn Pp Qq" };
	size_t n;

	(void)state;
	b = amelia();
	assert_true(blocked_together(&a, &b));
	/* the date wrong: found by the names */
	b.date_of_birth = "2015-01-01";
	assert_true(blocked_together(&a, &b));
	/* the date swapped and the names swapped */
	b = amelia();
	b.date_of_birth = "2016-04-03";
	b.given_name = "Hart";
	b.family_name = "Amelia";
	b.postcode = "";
	b.uprn = "";
	assert_true(blocked_together(&a, &b));
	/* a new surname and a wrong date: found by the address */
	b = amelia();
	b.family_name = "Smith";
	b.date_of_birth = "2016-03-05";
	b.uprn = "";
	assert_true(blocked_together(&a, &b));
	/* nothing in common */
	b = amelia();
	b.given_name = "Jack";
	b.family_name = "Smith";
	b.date_of_birth = "2012-01-01";
	b.postcode = "YO1 7HH";
	b.uprn = "";
	assert_false(blocked_together(&a, &b));
	/* the most words a name may bring stay within EHX_MAX_BLOCKS */
	b = amelia();
	b.given_name = "Vv Ww Xx Yy";
	b.family_name = "Rr Ss Tt Uu";
	b.other_names = many;
	b.n_other_names = 4;
	assert_int_equal(ehx_identity_tokens(key, "x", &b, &tb), 0);
	assert_int_equal(tb.n[EHX_F_FAMILY], 20);
	n = ehx_match_blocks(&tb, true, k, EHX_MAX_BLOCKS);
	assert_int_equal(n, EHX_MAX_BLOCKS);
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			assert_memory_not_equal(k[i], k[j], EHX_TOKEN_LEN);
	assert_int_equal(ehx_match_blocks(&tb, true, k, 3), 3);
}

/* The scores PROTOCOL §10.6 gives as examples. */
static void
test_documented_examples(void **state)
{
	Ehx__ChildIdentity a = amelia(), b;
	struct ehx_match_result r;

	(void)state;
	a.given_name = "Amelia";
	a.uprn = "";
	b = a;
	compare(&a, &b, &r);
	assert_true(fabs(r.score - 39.2) < 0.1);
	b.postcode = "YO1 7HH";
	compare(&a, &b, &r);
	assert_true(fabs(r.score - 25.6) < 0.1);
	assert_int_equal(ehx_match_decide(&r, &th), EHX_MATCH_LINK);
	b = a;
	b.family_name = "Harte";
	b.sex = EHX__SEX__SEX_UNSPECIFIED;
	compare(&a, &b, &r);
	assert_true(fabs(r.score - 34.9) < 0.1);
	b = a;
	b.date_of_birth = "2016-03-14";
	b.postcode = "YO31 0XY";
	compare(&a, &b, &r);
	assert_true(fabs(r.score - 21.0) < 0.1);
	assert_int_equal(ehx_match_decide(&r, &th), EHX_MATCH_REVIEW);
	ehx__child_identity__init(&b);
	b.family_name = "Hart";
	b.date_of_birth = "2016-03-04";
	compare(&a, &b, &r);
	assert_true(fabs(r.score - 20.2) < 0.1);
	assert_true(th.link == 25.0 && th.review == 17.0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_weights),
		cmocka_unit_test(test_same_child),
		cmocka_unit_test(test_slips),
		cmocka_unit_test(test_twins_and_bars),
		cmocka_unit_test(test_blocks),
		cmocka_unit_test(test_documented_examples),
	};

	return cmocka_run_group_tests_name("test_match", tests, setup,
	    teardown);
}
