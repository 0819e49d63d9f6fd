/*
 * test_checkpoint — signed checkpoints and cosignatures (lib/checkpoint.c)
 * with keys made by certs/ehx-pki, and evidence sealed at rest
 * (ehx_evidence_seal/open): each holds as made and fails when any part of
 * it changes; a cosignature can never pass as a checkpoint's signature.
 */
#include "testutil.h"

#include "ehx/checkpoint.h"
#include "ehx/crypto.h"
#include "ehx/err.h"

static char dir[PATH_MAX];
static struct ehx_signer *broker, *police;
static struct ehx_pseudokey *pk, *pk2;

static int
setup(void **state)
{
	char k[PATH_MAX], c[PATH_MAX];
	const char *pki;

	(void)state;
	if ((pki = tu_pki()) == NULL || tu_mkdtemp(dir, sizeof(dir), "cp") != 0)
		return -1;
	if (tu_sh("'%s' ca '%s' >/dev/null && '%s' broker '%s' >/dev/null && "
	    "'%s' agency '%s' police police >/dev/null && "
	    "'%s' ca '%s/o' >/dev/null && '%s' broker '%s/o' >/dev/null", pki,
	    dir, pki, dir, pki, dir, pki, dir, pki, dir) != 0)
		return -1;
	snprintf(k, sizeof(k), "%s/broker/broker.key", dir);
	snprintf(c, sizeof(c), "%s/broker/broker.crt", dir);
	if (ehx_signer_load(k, c, &broker) != 0)
		return -1;
	snprintf(k, sizeof(k), "%s/agencies/police/police.key", dir);
	snprintf(c, sizeof(c), "%s/agencies/police/police.crt", dir);
	if (ehx_signer_load(k, c, &police) != 0)
		return -1;
	snprintf(k, sizeof(k), "%s/broker/pseudonym.key", dir);
	if (ehx_pseudokey_load(k, &pk) != 0)
		return -1;
	snprintf(k, sizeof(k), "%s/o/broker/pseudonym.key", dir);
	return ehx_pseudokey_load(k, &pk2);
}

static int
teardown(void **state)
{
	(void)state;
	ehx_signer_free(broker);
	ehx_signer_free(police);
	ehx_pseudokey_free(pk);
	ehx_pseudokey_free(pk2);
	tu_rmtree(dir);
	return 0;
}

static const unsigned char *
bpub(void)
{
	return ehx_cert_pubkey(ehx_signer_cert(broker));
}

static const unsigned char *
ppub(void)
{
	return ehx_cert_pubkey(ehx_signer_cert(police));
}

static void
test_checkpoint(void **state)
{
	Ehx__Checkpoint cp = EHX__CHECKPOINT__INIT;
	unsigned char root[32], sig[64];

	(void)state;
	memset(root, 0x5a, sizeof(root));
	cp.origin = "broker";
	cp.size = 1234;
	cp.root.data = root;
	cp.root.len = 32;
	cp.time = 1767225600000LL;
	assert_int_equal(ehx_checkpoint_sign(broker, &cp, sig), 0);
	assert_int_equal(ehx_checkpoint_verify(&cp, bpub()), 0);
	/* Any part changed, or another key: refused. */
	cp.size++;
	assert_int_equal(ehx_checkpoint_verify(&cp, bpub()),
	    EHX_ERR_BAD_SIGNATURE);
	cp.size--;
	root[31] ^= 1;
	assert_int_equal(ehx_checkpoint_verify(&cp, bpub()),
	    EHX_ERR_BAD_SIGNATURE);
	root[31] ^= 1;
	cp.time++;
	assert_int_equal(ehx_checkpoint_verify(&cp, bpub()),
	    EHX_ERR_BAD_SIGNATURE);
	cp.time--;
	cp.origin = "brokes";
	assert_int_equal(ehx_checkpoint_verify(&cp, bpub()),
	    EHX_ERR_BAD_SIGNATURE);
	cp.origin = "broker";
	assert_int_equal(ehx_checkpoint_verify(&cp, ppub()),
	    EHX_ERR_BAD_SIGNATURE);
	assert_int_equal(ehx_checkpoint_verify(&cp, bpub()), 0);
	/* Malformed: no refusal by crash. */
	cp.root.len = 31;
	assert_int_equal(ehx_checkpoint_verify(&cp, bpub()), EHX_ERR_MALFORMED);
	cp.root.len = 32;
	cp.signature.len = 63;
	assert_int_equal(ehx_checkpoint_verify(&cp, bpub()), EHX_ERR_MALFORMED);
	cp.signature.len = 64;
	cp.origin = "Not an id";
	assert_int_equal(ehx_checkpoint_verify(&cp, bpub()), EHX_ERR_MALFORMED);
	assert_int_equal(ehx_checkpoint_verify(NULL, bpub()), EHX_ERR_MALFORMED);
}

static void
test_cosignature(void **state)
{
	Ehx__Checkpoint cp = EHX__CHECKPOINT__INIT, fake;
	Ehx__Cosignature cs;
	unsigned char root[32], sig[64], csig[64];

	(void)state;
	memset(root, 0x11, sizeof(root));
	cp.origin = "broker";
	cp.size = 7;
	cp.root.data = root;
	cp.root.len = 32;
	cp.time = 1767225600000LL;
	assert_int_equal(ehx_checkpoint_sign(broker, &cp, sig), 0);
	assert_int_equal(ehx_cosign(police, "police", &cp, 1767225601000LL, &cs,
	    csig), 0);
	assert_string_equal(cs.agency, "police");
	assert_memory_equal(cs.signer.data,
	    ehx_cert_fpr(ehx_signer_cert(police)), 32);
	assert_int_equal(ehx_cosign_verify(&cp, &cs, ppub()), 0);
	cs.time++;
	assert_int_equal(ehx_cosign_verify(&cp, &cs, ppub()),
	    EHX_ERR_BAD_SIGNATURE);
	cs.time--;
	root[0] ^= 1;
	assert_int_equal(ehx_cosign_verify(&cp, &cs, ppub()),
	    EHX_ERR_BAD_SIGNATURE);
	root[0] ^= 1;
	assert_int_equal(ehx_cosign_verify(&cp, &cs, bpub()),
	    EHX_ERR_BAD_SIGNATURE);
	/* Domain separation: the police's cosignature is no checkpoint
	 * signature, even over the same checkpoint by the same key. */
	fake = cp;
	fake.signature.data = csig;
	fake.signature.len = 64;
	assert_int_equal(ehx_checkpoint_verify(&fake, ppub()),
	    EHX_ERR_BAD_SIGNATURE);
}

static void
test_evidence(void **state)
{
	static const char env[] = "an envelope naming 9434765919";
	unsigned char ad[32], *sealed, *open;
	size_t n, m;

	(void)state;
	memset(ad, 0x42, sizeof(ad));
	assert_int_equal(ehx_evidence_seal(pk, ad, env, sizeof(env), &sealed,
	    &n), 0);
	assert_true(n > sizeof(env));
	/* The stored bytes do not hold the number. */
	assert_null(memmem(sealed, n, "9434765919", 10));
	assert_int_equal(ehx_evidence_open(pk, ad, sealed, n, &open, &m), 0);
	assert_int_equal(m, sizeof(env));
	assert_memory_equal(open, env, m);
	free(open);
	/* Another envelope's hash, another key, a changed byte, a cut. */
	ad[0] ^= 1;
	assert_int_equal(ehx_evidence_open(pk, ad, sealed, n, &open, &m),
	    EHX_ERR_CRYPTO);
	ad[0] ^= 1;
	assert_int_equal(ehx_evidence_open(pk2, ad, sealed, n, &open, &m),
	    EHX_ERR_CRYPTO);
	sealed[n / 2] ^= 1;
	assert_int_equal(ehx_evidence_open(pk, ad, sealed, n, &open, &m),
	    EHX_ERR_CRYPTO);
	assert_int_equal(ehx_evidence_open(pk, ad, sealed, 10, &open, &m),
	    EHX_ERR_CRYPTO);
	assert_null(open);
	free(sealed);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_checkpoint),
		cmocka_unit_test(test_cosignature),
		cmocka_unit_test(test_evidence),
	};

	return cmocka_run_group_tests_name("test_checkpoint", tests, setup,
	    teardown);
}
