/*
 * test_auditverify — the offline check of an audit export
 * (lib/auditverify.c) on a real export made by a sandbox partnership
 * (tests/fuzz/corpus/export/seed-00, with its CA's certificate in
 * tests/fuzz/export-ca.crt): it holds; one changed byte in a record, a
 * checkpoint, a cosignature or an envelope is named; a cut file, another
 * CA, and junk are refused; held to what an agency saw (its checkpoint,
 * its decisions) a cut or changed export is named; and no single flipped
 * byte anywhere crashes it.
 */
#include "testutil.h"

#include "ehx/auditverify.h"
#include "ehx/crypto.h"
#include "ehx/err.h"
#include "ehx/util.h"

static unsigned char *data;
static size_t len;
static struct ehx_ca *ca;

static int
setup(void **state)
{
	(void)state;
	if (ehx_file_read("tests/fuzz/corpus/export/seed-00", false, 1 << 20,
	    &data, &len) != 0 ||
	    ehx_ca_load("tests/fuzz/export-ca.crt", &ca) != 0)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	free(data);
	ehx_ca_free(ca);
	return 0;
}

/* Flip one bit at the first occurrence of needle (after from). */
static int
verify_flipped(const void *needle, size_t nlen, size_t skip, char *why,
    size_t whysz)
{
	struct ehx_auditverify_report rep;
	unsigned char *copy = malloc(len);
	unsigned char *at;
	int r;

	assert_non_null(copy);
	memcpy(copy, data, len);
	at = memmem(copy, len, needle, nlen);
	assert_non_null(at);
	at[skip] ^= 0x01;
	r = ehx_auditverify(copy, len, ca, &rep, why, whysz);
	free(copy);
	return r;
}

static void
test_holds(void **state)
{
	struct ehx_auditverify_report rep;
	char why[512] = "";

	(void)state;
	assert_int_equal(ehx_auditverify(data, len, ca, &rep, why,
	    sizeof(why)), 0);
	assert_int_equal(rep.records, 7);
	assert_true(rep.checkpoints >= 1);
	assert_true(rep.cosignatures >= 3);
	assert_int_equal(rep.envelopes, 7);
	assert_non_null(strstr(rep.agencies, "police"));
}

static void
test_changes_named(void **state)
{
	char why[512];

	(void)state;
	/* The first record's action, "publish_flag", in the record. */
	assert_int_equal(verify_flipped("publish_flag", 12, 3, why,
	    sizeof(why)), EHX_ERR_BAD_SIGNATURE);
	assert_non_null(strstr(why, "record 1: changed since the broker "
	    "committed to it"));
	/* The break-glass reason inside the school's signed envelope. */
	assert_int_equal(verify_flipped("seed break glass", 16, 2, why,
	    sizeof(why)), EHX_ERR_BAD_SIGNATURE);
	assert_non_null(strstr(why, "is not the one any record names"));
	/* A checkpoint's origin. */
	assert_int_not_equal(verify_flipped("\x0a\x06" "broker\x10", 9, 3, why,
	    sizeof(why)), 0);
	assert_non_null(strstr(why, "checkpoint"));
}

static void
test_refused(void **state)
{
	struct ehx_auditverify_report rep;
	struct ehx_ca *other = NULL;
	char why[512], dir[PATH_MAX], path[PATH_MAX];

	(void)state;
	assert_int_equal(ehx_auditverify((const unsigned char *)"junk", 4, ca,
	    &rep, why, sizeof(why)), EHX_ERR_MALFORMED);
	assert_int_equal(ehx_auditverify(data, 19, ca, &rep, why, sizeof(why)),
	    EHX_ERR_MALFORMED);
	assert_non_null(strstr(why, "empty"));
	assert_int_equal(ehx_auditverify(data, len - 10, ca, &rep, why,
	    sizeof(why)), EHX_ERR_MALFORMED);
	assert_non_null(strstr(why, "cut short"));
	/* Another partnership's CA. */
	assert_int_equal(tu_mkdtemp(dir, sizeof(dir), "av"), 0);
	assert_int_equal(tu_sh("'%s' ca '%s' >/dev/null", tu_pki(), dir), 0);
	snprintf(path, sizeof(path), "%s/ca/ca.crt", dir);
	assert_int_equal(ehx_ca_load(path, &other), 0);
	assert_int_equal(ehx_auditverify(data, len, other, &rep, why,
	    sizeof(why)), EHX_ERR_UNKNOWN_CERTIFICATE);
	ehx_ca_free(other);
	tu_rmtree(dir);
}

/* The newest checkpoint of the export's first page. */
static const Ehx__Checkpoint *
first_page_checkpoint(Ehx__ExportResult **page)
{
	size_t off = sizeof(EHX_EXPORT_MAGIC) - 1, n;

	n = (size_t)data[off] << 24 | (size_t)data[off + 1] << 16 |
	    (size_t)data[off + 2] << 8 | data[off + 3];
	*page = ehx__export_result__unpack(NULL, n, data + off + 4);
	assert_non_null(*page);
	assert_true((*page)->n_checkpoints > 0);
	return (*page)->checkpoints[(*page)->n_checkpoints - 1];
}

static void
test_expected(void **state)
{
	struct ehx_auditverify_report rep;
	struct ehx_auditverify_expect x;
	Ehx__ExportResult *page;
	const Ehx__Checkpoint *cp = first_page_checkpoint(&page);
	Ehx__PendingDecision d = EHX__PENDING_DECISION__INIT;
	Ehx__PendingDecision *pd[1] = { &d };
	unsigned char id[16] = { 1, 2, 3 };
	char why[512];

	(void)state;
	memset(&x, 0, sizeof(x));
	x.size = cp->size;
	memcpy(x.root, cp->root.data, 32);
	assert_int_equal(ehx_auditverify_against(data, len, ca, &x, &rep, why,
	    sizeof(why)), 0);
	/* Another root at that size: not the log the agency checked. */
	x.root[0] ^= 1;
	assert_int_equal(ehx_auditverify_against(data, len, ca, &x, &rep, why,
	    sizeof(why)), EHX_ERR_BAD_SIGNATURE);
	assert_non_null(strstr(why, "does not extend the log the agency "
	    "checked"));
	/* The agency saw more than the export holds: it was cut. */
	x.size = 8;                     /* the export holds 7 */
	assert_int_equal(ehx_auditverify_against(data, len, ca, &x, &rep, why,
	    sizeof(why)), EHX_ERR_BAD_SIGNATURE);
	assert_non_null(strstr(why, "short of the checkpoint of"));
	/* A decision of the agency's at record 1 that is not there. */
	x.size = 0;
	x.agency = "police";
	x.pending = pd;
	x.npending = 1;
	d.seq = 1;
	d.message_id.data = id;
	d.message_id.len = sizeof(id);
	assert_int_equal(ehx_auditverify_against(data, len, ca, &x, &rep, why,
	    sizeof(why)), EHX_ERR_BAD_SIGNATURE);
	assert_non_null(strstr(why, "record 1 is not the decision of police"));
	/* One beyond the end: newer than the export (fine), or older than
	 * a checkpoint in it by more than any skew (cut). */
	d.seq = 8;
	d.decided_at = cp->time + 1000;
	assert_int_equal(ehx_auditverify_against(data, len, ca, &x, &rep, why,
	    sizeof(why)), 0);
	d.decided_at = cp->time - 301000;
	assert_int_equal(ehx_auditverify_against(data, len, ca, &x, &rep, why,
	    sizeof(why)), EHX_ERR_BAD_SIGNATURE);
	assert_non_null(strstr(why, "before the decision"));
	ehx__export_result__free_unpacked(page, NULL);
}

static void
test_no_flip_crashes(void **state)
{
	struct ehx_auditverify_report rep;
	unsigned char *copy = malloc(len);
	char why[512];
	size_t caught = 0, tried = 0;

	(void)state;
	assert_non_null(copy);
	for (size_t i = 19; i < len; i += 5) {
		memcpy(copy, data, len);
		copy[i] ^= 0x20;
		tried++;
		caught += ehx_auditverify(copy, len, ca, &rep, why,
		    sizeof(why)) != 0;
	}
	free(copy);
	/* Only the page bookkeeping (next_seq, tree_size) is not signed. */
	assert_true(caught * 100 >= tried * 97);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_holds),
		cmocka_unit_test(test_changes_named),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_expected),
		cmocka_unit_test(test_no_flip_crashes),
	};

	return cmocka_run_group_tests_name("test_auditverify", tests, setup,
	    teardown);
}
