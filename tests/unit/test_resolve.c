/*
 * test_resolve — which child an identity names (broker/identity.c), in a
 * real LMDB store: an agency's record found again by its own id; NHS
 * numbers and UPNs that join records at once; demographics scored, linked
 * above the threshold, sent to review between, new below; twins kept
 * apart; a provisional child that joins its NHS number's child when the
 * number arrives; a national id that disagrees never joined; an identity
 * close to two children never linked to either; nothing in the clear.
 */
#include "testutil.h"

#include <lmdb.h>

#include "ehx/arena.h"
#include "ehx/crypto.h"
#include "ehx/err.h"
#include "ehx/identity.h"
#include "ehx/match.h"
#include "../../broker/identity.h"
#include "../../broker/store.h"

static char dir[PATH_MAX];
static struct store st;
static struct ehx_pseudokey *pkey, *mkey;
static struct identity_ctx ctx;
static const int64_t now = 1796731200000LL;

static int
setup(void **state)
{
	static const unsigned char p[32] = { 1 }, m[32] = { 2 };
	char path[PATH_MAX], err[256];

	(void)state;
	if (tu_mkdtemp(dir, sizeof(dir), "resolve") != 0 ||
	    ehx_pseudokey_raw(p, &pkey) != 0 ||
	    ehx_pseudokey_raw(m, &mkey) != 0)
		return -1;
	tu_join(path, sizeof(path), dir, "store");
	if (store_open(&st, path, 64 * 1024 * 1024, false, err,
	    sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	ctx.s = &st;
	ctx.pkey = pkey;
	ctx.mkey = mkey;
	ctx.th.link = EHX_MATCH_LINK_DEFAULT;
	ctx.th.review = EHX_MATCH_REVIEW_DEFAULT;
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	store_close(&st);
	ehx_pseudokey_free(pkey);
	ehx_pseudokey_free(mkey);
	tu_rmtree(dir);
	return 0;
}

/* Resolve id from agency in its own committed transaction. */
static enum identity_how
resolve(const char *agency, const Ehx__ChildIdentity *id,
    struct identity_result *out)
{
	MDB_txn *txn;
	char why[256];

	assert_int_equal(ehx_validate_identity(id, now, why, sizeof(why)), 0);
	assert_int_equal(mdb_txn_begin(st.env, NULL, 0, &txn), 0);
	assert_int_equal(identity_resolve(&ctx, txn, agency, id, now, out), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	return out->how;
}

static void
child_of(const unsigned char node[32], unsigned char child[32])
{
	MDB_txn *txn;

	assert_int_equal(mdb_txn_begin(st.env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(identity_child_of(&st, txn, node, child), 0);
	mdb_txn_abort(txn);
}

static size_t
members(const unsigned char child[32])
{
	unsigned char m[16][32];
	MDB_txn *txn;
	size_t n = 0;

	assert_int_equal(mdb_txn_begin(st.env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(identity_members(&st, txn, child, m, 16, &n), 0);
	mdb_txn_abort(txn);
	return n;
}

static Ehx__ChildIdentity
pupil(const char *given, const char *family, const char *dob,
    Ehx__Sex sex, const char *postcode)
{
	Ehx__ChildIdentity id;

	ehx__child_identity__init(&id);
	id.given_name = (char *)given;
	id.family_name = (char *)family;
	id.date_of_birth = (char *)dob;
	id.sex = sex;
	id.postcode = (char *)postcode;
	return id;
}

static void
test_own_id_and_nhs(void **state)
{
	struct identity_result a, b, c;
	Ehx__ChildIdentity id;
	unsigned char p[32], child[32];

	(void)state;
	/* health names a child by NHS number and names */
	id = pupil("Noah", "Finch", "2014-05-06", EHX__SEX__SEX_MALE,
	    "YO24 1AB");
	id.nhs_number = "9434765919";
	id.local_id = "RCB-0001";
	assert_int_equal(resolve("health", &id, &a), IDENTITY_LINKED);
	assert_int_equal(ehx_pseudonym(pkey, "9434765919", p), 0);
	/* its child is the NHS number's: the pseudonym, as before */
	assert_memory_equal(a.child, p, 32);
	assert_memory_not_equal(a.node, p, 32);
	assert_int_equal(members(p), 2);        /* the number's and health's */
	/* the same record again: known, the same node */
	assert_int_equal(resolve("health", &id, &b), IDENTITY_KNOWN);
	assert_memory_equal(b.node, a.node, 32);
	assert_memory_equal(b.child, p, 32);
	/* the same local id from another agency is another record */
	ehx__child_identity__init(&id);
	id.local_id = "RCB-0001";
	assert_int_equal(resolve("police", &id, &c), IDENTITY_NEW);
	assert_memory_not_equal(c.node, a.node, 32);
	assert_memory_equal(c.child, c.node, 32);       /* provisional */
	/* the police name the child by NHS number alone: joined at once */
	ehx__child_identity__init(&id);
	id.nhs_number = "9434765919";
	assert_int_equal(resolve("police", &id, &c), IDENTITY_LINKED);
	assert_memory_equal(c.child, p, 32);
	assert_int_equal(members(p), 3);
	child_of(c.node, child);
	assert_memory_equal(child, p, 32);
	/* a pseudonym no identity ever named is its own child */
	assert_int_equal(ehx_pseudonym(pkey, "9992914173", p), 0);
	child_of(p, child);
	assert_memory_equal(child, p, 32);
	assert_int_equal(members(p), 1);
}

static void
test_scores(void **state)
{
	struct identity_result school, r;
	Ehx__ChildIdentity id;
	char twin[] = "?801200005002";

	(void)state;
	/* the school's roll: UPN and demographics */
	id = pupil("Amelia Rose", "Hart", "2016-03-04", EHX__SEX__SEX_FEMALE,
	    "YO31 0AB");
	id.upn = "B801200005001";
	id.local_id = "ADM-77";
	assert_int_equal(resolve("school", &id, &school), IDENTITY_NEW);
	/* the police: her familiar form, a slip, by demographics */
	id = pupil("Amelia", "Harte", "2016-03-04", EHX__SEX__SEX_UNSPECIFIED,
	    "YO31 0AB");
	id.local_id = "NYP-1";
	assert_int_equal(resolve("police", &id, &r), IDENTITY_LINKED);
	assert_memory_equal(r.child, school.child, 32);
	assert_true(r.compared >= 1);
	assert_int_equal(members(school.child), 2);
	/* a near miss: one part of the date wrong, moved within the sector */
	id = pupil("Amelia", "Hart", "2016-03-14", EHX__SEX__SEX_FEMALE,
	    "YO31 0XY");
	id.local_id = "NYP-2";
	assert_int_equal(resolve("police", &id, &r), IDENTITY_REVIEW);
	assert_memory_equal(r.child, r.node, 32);       /* provisional */
	assert_int_equal(r.n_review, 1);
	assert_memory_equal(r.review[0].child, school.child, 32);
	assert_int_equal(r.review[0].result.level[EHX_M_DOB],
	    EHX_L_ONE_WRONG);
	/* her twin: never her */
	id = pupil("Isla", "Hart", "2016-03-04", EHX__SEX__SEX_FEMALE,
	    "YO31 0AB");
	twin[0] = ehx_upn_check_letter("801200005002");
	id.upn = twin;
	id.local_id = "ADM-78";
	assert_int_equal(resolve("school", &id, &r), IDENTITY_NEW);
	assert_memory_not_equal(r.child, school.child, 32);
	assert_int_equal(members(school.child), 2);
	/* by UPN alone, from another school: joined by the UPN */
	ehx__child_identity__init(&id);
	id.upn = "B801200005001";
	assert_int_equal(resolve("school2", &id, &r), IDENTITY_LINKED);
	assert_memory_equal(r.child, school.child, 32);
}

static void
test_provisional_then_nhs(void **state)
{
	struct identity_result a, b, h;
	Ehx__ChildIdentity id;
	unsigned char p[32], child[32];

	(void)state;
	/* the police know a child only by demographics */
	id = pupil("Tyler", "Quinn", "2012-10-11", EHX__SEX__SEX_MALE,
	    "YO10 3PQ");
	id.local_id = "NYP-40";
	assert_int_equal(resolve("police", &id, &a), IDENTITY_NEW);
	/* health, by NHS number, a hyphenated surname and the date: its
	 * child is the number's; the police's record is close, not enough */
	ehx__child_identity__init(&id);
	id.nhs_number = "9992914173";
	id.family_name = "Quinn-Lowe";
	id.date_of_birth = "2012-10-11";
	assert_int_equal(resolve("health", &id, &h), IDENTITY_LINKED);
	assert_int_equal(ehx_pseudonym(pkey, "9992914173", p), 0);
	assert_memory_equal(h.child, p, 32);
	assert_int_equal(h.n_review, 1);
	assert_memory_equal(h.review[0].child, a.child, 32);
	/* later the police learn the NHS number: the provisional child joins
	 * the number's child, which keeps its key */
	id = pupil("Tyler", "Quinn", "2012-10-11", EHX__SEX__SEX_MALE,
	    "YO10 3PQ");
	id.local_id = "NYP-40";
	id.nhs_number = "9992914173";
	assert_int_equal(resolve("police", &id, &b), IDENTITY_KNOWN);
	assert_memory_equal(b.node, a.node, 32);
	assert_memory_equal(b.child, p, 32);
	child_of(a.node, child);
	assert_memory_equal(child, p, 32);
	assert_int_equal(members(p), 3);        /* number, health, police */
}

static void
test_conflicts(void **state)
{
	struct identity_result a, b, r;
	Ehx__ChildIdentity id;

	(void)state;
	/* a school record with an NHS number */
	id = pupil("Erin", "Walsh", "2011-01-20", EHX__SEX__SEX_FEMALE,
	    "YO26 5TT");
	id.upn = "P207000016049";
	id.nhs_number = "9997763173";
	id.local_id = "ADM-9";
	assert_int_equal(resolve("school", &id, &a), IDENTITY_LINKED);
	/* the same UPN with another NHS number: that number's child, never
	 * joined to the UPN's; the pair for review */
	ehx__child_identity__init(&id);
	id.upn = "P207000016049";
	id.nhs_number = "9990669074";
	assert_int_equal(resolve("health", &id, &b), IDENTITY_LINKED);
	assert_memory_not_equal(b.child, a.child, 32);
	assert_int_equal(b.n_review, 1);
	assert_true(b.review[0].conflict);
	assert_memory_equal(b.review[0].child, a.child, 32);
	/* two children who each match strongly: linked to neither */
	id = pupil("Kai", "Moss", "2018-08-08", EHX__SEX__SEX_MALE, "YO1 7HH");
	id.local_id = "A-1";
	assert_int_equal(resolve("housing", &id, &a), IDENTITY_NEW);
	id = pupil("Kai", "Moss", "2018-08-08", EHX__SEX__SEX_FEMALE,
	    "YO1 7HH");
	id.local_id = "B-1";
	assert_int_equal(resolve("health", &id, &b), IDENTITY_REVIEW);
	assert_memory_not_equal(a.child, b.child, 32);
	id = pupil("Kai", "Moss", "2018-08-08", EHX__SEX__SEX_UNSPECIFIED,
	    "YO1 7HH");
	id.local_id = "C-1";
	assert_int_equal(resolve("police", &id, &r), IDENTITY_REVIEW);
	assert_int_equal(r.n_review, 2);
	assert_memory_equal(r.child, r.node, 32);
}

/* A flag and a relationship under a provisional child, found to be the
 * NHS number's child: both move, the flag keeping where it came from;
 * where both had the same flag, the one changed last stays. */
static void
test_records_follow(void **state)
{
	Ehx__StoredFlag sf = EHX__STORED_FLAG__INIT, *got = NULL;
	Ehx__FlagView fv = EHX__FLAG_VIEW__INIT;
	Ehx__StoredInvolvement si = EHX__STORED_INVOLVEMENT__INIT;
	struct identity_result a, b;
	struct ehx_arena *ar;
	Ehx__ChildIdentity id;
	unsigned char key[STORE_KEY_MAX], p[32];
	size_t klen;
	MDB_txn *txn;
	MDB_val k, v;

	(void)state;
	assert_non_null(ar = ehx_arena_new(1 << 20));
	id = pupil("Ruby", "Stone", "2015-02-02", EHX__SEX__SEX_FEMALE,
	    "YO30 4XF");
	id.local_id = "NYP-77";
	assert_int_equal(resolve("police", &id, &a), IDENTITY_NEW);
	/* the police's flag, and a newer one of the same ref already at the
	 * NHS number's child (published there by number) */
	assert_int_equal(ehx_pseudonym(pkey, "9990080631", p), 0);
	assert_int_equal(mdb_txn_begin(st.env, NULL, 0, &txn), 0);
	fv.ref = "off-1";
	fv.status = EHX__FLAG_STATUS__FLAG_STATUS_OPEN;
	fv.level = 2;
	fv.updated_at = 1000;
	sf.agency = "police";
	sf.flag = &fv;
	klen = store_flag_key(key, a.child, "police", "off-1");
	assert_int_equal(store_put_msg(txn, st.flags, key, klen, &sf.base, ar),
	    0);
	fv.ref = "off-2";
	klen = store_flag_key(key, a.child, "police", "off-2");
	assert_int_equal(store_put_msg(txn, st.flags, key, klen, &sf.base, ar),
	    0);
	fv.ref = "off-2";
	fv.level = 4;
	fv.updated_at = 2000;
	klen = store_flag_key(key, p, "police", "off-2");
	assert_int_equal(store_put_msg(txn, st.flags, key, klen, &sf.base, ar),
	    0);
	si.kind = EHX__INVOLVEMENT_KIND__INVOLVEMENT_KIND_TENANCY;
	si.starts_on = "2020-01-01";
	klen = store_flag_key(key, a.child, "housing", "");
	key[klen++] = (unsigned char)si.kind;
	assert_int_equal(store_put_msg(txn, st.involvement, key, klen,
	    &si.base, ar), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	/* the NHS number arrives */
	id.nhs_number = "9990080631";
	assert_int_equal(resolve("police", &id, &b), IDENTITY_KNOWN);
	assert_memory_equal(b.child, p, 32);
	assert_int_equal(mdb_txn_begin(st.env, NULL, MDB_RDONLY, &txn), 0);
	klen = store_flag_key(key, p, "police", "off-1");
	k = (MDB_val){ klen, key };
	assert_int_equal(mdb_get(txn, st.flags, &k, &v), 0);
	assert_int_equal(store_read(&ehx__stored_flag__descriptor, ar, &v,
	    &got), 0);
	assert_int_equal(got->flag->level, 2);
	assert_int_equal(got->origin.len, 32);          /* where it was */
	assert_memory_equal(got->origin.data, a.child, 32);
	klen = store_flag_key(key, p, "police", "off-2");
	k = (MDB_val){ klen, key };
	assert_int_equal(mdb_get(txn, st.flags, &k, &v), 0);
	assert_int_equal(store_read(&ehx__stored_flag__descriptor, ar, &v,
	    &got), 0);
	assert_int_equal(got->flag->level, 4);          /* the newer kept */
	klen = store_flag_key(key, p, "housing", "");
	key[klen++] = EHX__INVOLVEMENT_KIND__INVOLVEMENT_KIND_TENANCY;
	k = (MDB_val){ klen, key };
	assert_int_equal(mdb_get(txn, st.involvement, &k, &v), 0);
	/* nothing left under the provisional key */
	klen = store_flag_key(key, a.child, "police", "off-1");
	k = (MDB_val){ klen, key };
	assert_int_equal(mdb_get(txn, st.flags, &k, &v), MDB_NOTFOUND);
	k = (MDB_val){ 32, a.child };
	{
		MDB_cursor *c;

		assert_int_equal(mdb_cursor_open(txn, st.flags, &c), 0);
		if (mdb_cursor_get(c, &k, &v, MDB_SET_RANGE) == 0)
			assert_memory_not_equal(k.mv_data, a.child, 32);
		mdb_cursor_close(c);
	}
	mdb_txn_abort(txn);
	ehx_arena_free(ar);
}

/* A UPN that two schools gave with two NHS numbers never makes those two
 * children one, however a third agency names the child; an NHS number is
 * not changed on a known record. */
static void
test_never_two_numbers(void **state)
{
	struct identity_result a, b, c;
	Ehx__ChildIdentity id;
	unsigned char px[32], py[32], cx[32], cy[32];
	MDB_txn *txn;

	(void)state;
	ehx__child_identity__init(&id);
	id.upn = "Q801200005002";
	id.nhs_number = "9992914173";
	id.local_id = "S1-1";
	assert_int_equal(resolve("school1", &id, &a), IDENTITY_LINKED);
	id.nhs_number = "9990669074";
	id.local_id = "S2-1";
	assert_int_equal(resolve("school2", &id, &b), IDENTITY_LINKED);
	assert_memory_not_equal(a.child, b.child, 32);
	ehx__child_identity__init(&id);
	id.upn = "Q801200005002";
	id.local_id = "NYP-5";
	(void)resolve("police", &id, &c);
	assert_int_equal(ehx_pseudonym(pkey, "9992914173", px), 0);
	assert_int_equal(ehx_pseudonym(pkey, "9990669074", py), 0);
	child_of(px, cx);
	child_of(py, cy);
	assert_memory_equal(cx, px, 32);
	assert_memory_equal(cy, py, 32);        /* still two children */
	/* school1 later sends its record with the other number: refused */
	ehx__child_identity__init(&id);
	id.local_id = "S1-1";
	id.nhs_number = "9990669074";
	assert_int_equal(ehx_validate_identity(&id, now, NULL, 0), 0);
	assert_int_equal(mdb_txn_begin(st.env, NULL, 0, &txn), 0);
	assert_int_equal(identity_resolve(&ctx, txn, "school1", &id, now, &c),
	    EHX_ERR_INVALID_IDENTITY);
	mdb_txn_abort(txn);
	child_of(px, cx);
	assert_memory_equal(cx, px, 32);
}

/* An agency with a record of its own is told what it sent, not a number
 * another agency gave; one without is told the NHS number. */
static void
test_known_as(void **state)
{
	struct identity_result g, sc;
	Ehx__ChildIdentity id, *known = NULL;
	unsigned char p[32];
	char nhs[11];
	MDB_txn *txn;

	(void)state;
	id = pupil("Isabella", "Nowak", "2017-07-07", EHX__SEX__SEX_FEMALE,
	    "YO32 9AA");
	id.nhs_number = "4000000004";
	id.local_id = "GP-1";
	assert_int_equal(resolve("gp", &id, &g), IDENTITY_LINKED);
	id.nhs_number = "";
	id.local_id = "ADM-19";
	id.upn = "E801200005003";
	assert_int_equal(resolve("school", &id, &sc), IDENTITY_LINKED);
	assert_int_equal(ehx_pseudonym(pkey, "4000000004", p), 0);
	assert_memory_equal(sc.child, p, 32);
	assert_int_equal(mdb_txn_begin(st.env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(identity_known_as(&st, txn, pkey, p, "school",
	    &known, nhs), 0);
	assert_non_null(known);
	assert_string_equal(known->local_id, "ADM-19");
	assert_string_equal(known->nhs_number, "");
	assert_string_equal(nhs, "");           /* not the GP's number */
	ehx__child_identity__free_unpacked(known, NULL);
	assert_int_equal(identity_known_as(&st, txn, pkey, p, "police",
	    &known, nhs), 0);
	assert_null(known);
	assert_string_equal(nhs, "4000000004");
	mdb_txn_abort(txn);
}

/* No name, date or postcode in the clear anywhere in the store file. */
static void
test_nothing_in_the_clear(void **state)
{
	static const char *const words[] = { "Amelia", "AMELIA", "HART",
	    "Hart", "2016-03-04", "20160304", "YO31 0AB", "B801200005001",
	    "NYP-1", "9434765919", "Quinn", "QUINN" };
	char path[PATH_MAX];
	unsigned char *buf;
	size_t len;
	FILE *f;

	(void)state;
	tu_join(path, sizeof(path), dir, "store/data.mdb");
	assert_non_null(f = fopen(path, "rb"));
	fseek(f, 0, SEEK_END);
	len = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	assert_non_null(buf = malloc(len));
	assert_int_equal(fread(buf, 1, len, f), len);
	fclose(f);
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (memmem(buf, len, words[i], strlen(words[i])) != NULL)
			fail_msg("\"%s\" is in the store in the clear", words[i]);
	free(buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_own_id_and_nhs),
		cmocka_unit_test(test_scores),
		cmocka_unit_test(test_provisional_then_nhs),
		cmocka_unit_test(test_conflicts),
		cmocka_unit_test(test_records_follow),
		cmocka_unit_test(test_never_two_numbers),
		cmocka_unit_test(test_known_as),
		cmocka_unit_test(test_nothing_in_the_clear),
	};

	return cmocka_run_group_tests_name("test_resolve", tests, setup,
	    teardown);
}
