/*
 * test_crypto — lib/crypto.c against a real partnership PKI made by
 * certs/ehx-pki (which runs the openssl command) in a temporary directory:
 * signers, certificates and their names, fingerprints and dates, the CA
 * chain, CURVE keys and the pseudonym key. Where it can, the expected
 * values come from the openssl command rather than from libehx.
 */
#include "testutil.h"

#include <sodium.h>

#include "ehx/crypto.h"
#include "ehx/err.h"
#include "ehx/util.h"

static char dir[PATH_MAX];      /* the partnership */
static char other[PATH_MAX];    /* a second, unrelated CA */

#define P(buf, rel) tu_join((buf), sizeof(buf), dir, (rel))

static int
setup(void **state)
{
	const char *pki;

	(void)state;
	if ((pki = tu_pki()) == NULL ||
	    tu_mkdtemp(dir, sizeof(dir), "crypto") != 0)
		return -1;
	snprintf(other, sizeof(other), "%s/other", dir);
	if (tu_sh("'%s' ca '%s' >/dev/null && '%s' broker '%s' >/dev/null && "
	    "'%s' agency '%s' police police >/dev/null && "
	    "'%s' agency '%s' health health >/dev/null && "
	    "'%s' agency '%s' old police --start 20200101000000Z "
	    "--end 20210101000000Z >/dev/null && "
	    "'%s' agency '%s' future school --start 20990101000000Z "
	    "--end 20991231235959Z >/dev/null && "
	    "'%s' ca '%s' >/dev/null && '%s' agency '%s' police police >/dev/null",
	    pki, dir, pki, dir, pki, dir, pki, dir, pki, dir, pki, dir,
	    pki, other, pki, other) != 0) {
		fprintf(stderr, "test_crypto: certs/ehx-pki failed\n");
		tu_rmtree(dir);
		return -1;
	}
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	tu_rmtree(dir);
	return 0;
}

/* Hex (with or without colons, any case) into out; returns the length. */
static size_t
from_hex(unsigned char *out, size_t outsz, const char *s)
{
	size_t n = 0;
	int hi = -1;

	for (; *s; s++) {
		int v;

		if (*s >= '0' && *s <= '9')
			v = *s - '0';
		else if (*s >= 'a' && *s <= 'f')
			v = *s - 'a' + 10;
		else if (*s >= 'A' && *s <= 'F')
			v = *s - 'A' + 10;
		else
			continue;
		if (hi < 0)
			hi = v;
		else {
			if (n == outsz)
				return 0;
			out[n++] = (unsigned char)(hi << 4 | v);
			hi = -1;
		}
	}
	return n;
}

/* ---- signers -------------------------------------------------------------- */

static void
test_signer_load(void **state)
{
	struct ehx_signer *s = NULL;
	struct ehx_cert *c = NULL;
	char key[PATH_MAX], crt[PATH_MAX], line[256];
	unsigned char pub[64];

	(void)state;
	P(key, "agencies/police/police.key");
	P(crt, "agencies/police/police.crt");
	assert_int_equal(ehx_signer_load(key, crt, &s), 0);
	assert_non_null(s);
	assert_string_equal(ehx_cert_cn(ehx_signer_cert(s)), "police");
	assert_string_equal(ehx_cert_ou(ehx_signer_cert(s)), "police");
	assert_int_equal(ehx_cert_load(crt, &c), 0);
	assert_memory_equal(ehx_signer_fpr(s), ehx_cert_fpr(c), EHX_FPR_LEN);
	/* The certificate's key is the private key's public half, as openssl
	 * says (the raw key is the last 32 bytes of the DER SPKI). */
	assert_int_equal(tu_sh_line(line, sizeof(line), "openssl pkey -in '%s' "
	    "-pubout -outform DER | tail -c 32 | od -An -tx1 | tr -d ' \\n'",
	    key), 0);
	assert_int_equal(from_hex(pub, sizeof(pub), line), EHX_KEY_LEN);
	assert_memory_equal(ehx_cert_pubkey(c), pub, EHX_KEY_LEN);
	ehx_cert_free(c);
	ehx_signer_free(s);
	ehx_signer_free(NULL);
	ehx_cert_free(NULL);
}

static void
test_signer_key_permissions(void **state)
{
	struct ehx_signer *s = (struct ehx_signer *)1;
	char key[PATH_MAX], crt[PATH_MAX], copy[PATH_MAX];

	(void)state;
	P(key, "agencies/police/police.key");
	P(crt, "agencies/police/police.crt");
	P(copy, "police-copy.key");
	assert_int_equal(tu_sh("cp '%s' '%s'", key, copy), 0);
	assert_int_equal(chmod(copy, 0644), 0);
	assert_int_equal(ehx_signer_load(copy, crt, &s), EHX_ERR_KEY_PERMISSIONS);
	assert_null(s);
	assert_int_equal(chmod(copy, 0640), 0);
	assert_int_equal(ehx_signer_load(copy, crt, &s), EHX_ERR_KEY_PERMISSIONS);
	assert_int_equal(chmod(copy, 0600), 0);
	assert_int_equal(ehx_signer_load(copy, crt, &s), 0);
	ehx_signer_free(s);
	unlink(copy);
}

static void
test_signer_mismatch(void **state)
{
	struct ehx_signer *s = (struct ehx_signer *)1;
	char key[PATH_MAX], crt[PATH_MAX], path[PATH_MAX];

	(void)state;
	/* Agency A's key with agency B's certificate. */
	P(key, "agencies/police/police.key");
	P(crt, "agencies/health/health.crt");
	assert_int_equal(ehx_signer_load(key, crt, &s), EHX_ERR_CRYPTO);
	assert_null(s);
	/* The same agency id under another CA: another key. */
	tu_join(crt, sizeof(crt), other, "agencies/police/police.crt");
	assert_int_equal(ehx_signer_load(key, crt, &s), EHX_ERR_CRYPTO);
	/* An X25519 key is not a signing key. */
	P(path, "agencies/police/curve.key");
	P(crt, "agencies/police/police.crt");
	assert_int_equal(ehx_signer_load(path, crt, &s), EHX_ERR_CRYPTO);
	/* A certificate where the key should be, and the reverse. */
	assert_int_equal(chmod(crt, 0600), 0);
	assert_int_equal(ehx_signer_load(crt, crt, &s), EHX_ERR_CRYPTO);
	assert_int_equal(chmod(crt, 0644), 0);
	assert_int_equal(ehx_signer_load(key, key, &s), EHX_ERR_CRYPTO);
	/* Missing files. */
	P(path, "agencies/police/nope.key");
	assert_int_equal(ehx_signer_load(path, crt, &s), EHX_ERR_SYSTEM);
	P(path, "agencies/police/nope.crt");
	assert_int_equal(ehx_signer_load(key, path, &s), EHX_ERR_SYSTEM);
	assert_null(s);
}

static void
test_sign_verify(void **state)
{
	struct ehx_signer *s = NULL, *h = NULL;
	char key[PATH_MAX], crt[PATH_MAX], mpath[PATH_MAX], spath[PATH_MAX];
	char pubpem[PATH_MAX], line[256];
	const unsigned char *pub;
	unsigned char msg[100], sig[EHX_SIG_LEN], sig2[EHX_SIG_LEN];
	unsigned char osig[EHX_SIG_LEN + 1];

	(void)state;
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (unsigned char)(i * 31 + 7);
	P(key, "agencies/police/police.key");
	P(crt, "agencies/police/police.crt");
	assert_int_equal(ehx_signer_load(key, crt, &s), 0);
	pub = ehx_cert_pubkey(ehx_signer_cert(s));
	assert_int_equal(ehx_signer_sign(s, msg, sizeof(msg), sig), 0);
	assert_int_equal(ehx_ed25519_verify(pub, msg, sizeof(msg), sig), 0);
	/* Ed25519 is deterministic. */
	assert_int_equal(ehx_signer_sign(s, msg, sizeof(msg), sig2), 0);
	assert_memory_equal(sig, sig2, EHX_SIG_LEN);
	/* Any flipped bit of the message or the signature fails. */
	for (size_t i = 0; i < sizeof(msg) * 8; i += 13) {
		msg[i / 8] ^= (unsigned char)(1u << (i % 8));
		assert_int_equal(ehx_ed25519_verify(pub, msg, sizeof(msg), sig),
		    EHX_ERR_BAD_SIGNATURE);
		msg[i / 8] ^= (unsigned char)(1u << (i % 8));
	}
	for (size_t i = 0; i < EHX_SIG_LEN * 8; i += 5) {
		sig[i / 8] ^= (unsigned char)(1u << (i % 8));
		assert_int_equal(ehx_ed25519_verify(pub, msg, sizeof(msg), sig),
		    EHX_ERR_BAD_SIGNATURE);
		sig[i / 8] ^= (unsigned char)(1u << (i % 8));
	}
	assert_int_equal(ehx_ed25519_verify(pub, msg, sizeof(msg) - 1, sig),
	    EHX_ERR_BAD_SIGNATURE);
	/* Another agency's key does not verify it. */
	P(key, "agencies/health/health.key");
	P(crt, "agencies/health/health.crt");
	assert_int_equal(ehx_signer_load(key, crt, &h), 0);
	assert_int_equal(ehx_ed25519_verify(ehx_cert_pubkey(ehx_signer_cert(h)),
	    msg, sizeof(msg), sig), EHX_ERR_BAD_SIGNATURE);
	/* The openssl command agrees, both ways. */
	P(mpath, "msg.bin");
	P(spath, "msg.sig");
	P(pubpem, "police.pub.pem");
	assert_int_equal(tu_write(mpath, msg, sizeof(msg), 0644), 0);
	assert_int_equal(tu_write(spath, sig, sizeof(sig), 0644), 0);
	P(crt, "agencies/police/police.crt");
	assert_int_equal(tu_sh("openssl x509 -in '%s' -pubkey -noout >'%s'",
	    crt, pubpem), 0);
	assert_int_equal(tu_sh("openssl pkeyutl -verify -pubin -inkey '%s' "
	    "-rawin -in '%s' -sigfile '%s' >/dev/null", pubpem, mpath, spath), 0);
	P(key, "agencies/police/police.key");
	assert_int_equal(tu_sh_line(line, sizeof(line), "openssl pkeyutl -sign "
	    "-inkey '%s' -rawin -in '%s' | od -An -tx1 | tr -d ' \\n'", key,
	    mpath), 0);
	assert_int_equal(from_hex(osig, sizeof(osig), line), EHX_SIG_LEN);
	assert_memory_equal(osig, sig, EHX_SIG_LEN);
	/* Empty messages sign and verify too. */
	assert_int_equal(ehx_signer_sign(s, "", 0, sig), 0);
	assert_int_equal(ehx_ed25519_verify(pub, "", 0, sig), 0);
	ehx_signer_free(h);
	ehx_signer_free(s);
}

/* ---- certificates ---------------------------------------------------------- */

static void
test_cert_names_and_fingerprint(void **state)
{
	static const char *const certs[][3] = {
		{ "agencies/police/police.crt", "police", "police" },
		{ "agencies/health/health.crt", "health", "health" },
		{ "agencies/future/future.crt", "future", "school" },
		{ "broker/broker.crt", "broker", "broker" },
	};
	struct ehx_cert *c = NULL;
	char crt[PATH_MAX], line[256];
	unsigned char fpr[64];

	(void)state;
	for (size_t i = 0; i < sizeof(certs) / sizeof(certs[0]); i++) {
		P(crt, certs[i][0]);
		assert_int_equal(ehx_cert_load(crt, &c), 0);
		assert_string_equal(ehx_cert_cn(c), certs[i][1]);
		assert_string_equal(ehx_cert_ou(c), certs[i][2]);
		assert_int_equal(tu_sh_line(line, sizeof(line), "openssl x509 "
		    "-in '%s' -noout -fingerprint -sha256 | sed 's/^.*=//'", crt),
		    0);
		assert_int_equal(from_hex(fpr, sizeof(fpr), line), EHX_FPR_LEN);
		assert_memory_equal(ehx_cert_fpr(c), fpr, EHX_FPR_LEN);
		ehx_cert_free(c);
		c = NULL;
	}
	/* The same agency id under the other CA is another certificate. */
	{
		struct ehx_cert *a = NULL, *b = NULL;

		P(crt, "agencies/police/police.crt");
		assert_int_equal(ehx_cert_load(crt, &a), 0);
		tu_join(crt, sizeof(crt), other, "agencies/police/police.crt");
		assert_int_equal(ehx_cert_load(crt, &b), 0);
		assert_string_equal(ehx_cert_cn(a), ehx_cert_cn(b));
		assert_memory_not_equal(ehx_cert_fpr(a), ehx_cert_fpr(b),
		    EHX_FPR_LEN);
		assert_memory_not_equal(ehx_cert_pubkey(a), ehx_cert_pubkey(b),
		    EHX_KEY_LEN);
		ehx_cert_free(a);
		ehx_cert_free(b);
	}
}

static void
test_cert_load_refuses(void **state)
{
	struct ehx_cert *c = (struct ehx_cert *)1;
	char path[PATH_MAX], key[PATH_MAX];

	(void)state;
	P(key, "agencies/police/police.key");
	/* Not a certificate. */
	P(path, "agencies/police/curve.pub");
	assert_int_equal(ehx_cert_load(path, &c), EHX_ERR_CRYPTO);
	assert_null(c);
	P(path, "garbage.crt");
	assert_int_equal(tu_writef(path, 0644, "-----BEGIN CERTIFICATE-----\n"
	    "bm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"), 0);
	assert_int_equal(ehx_cert_load(path, &c), EHX_ERR_CRYPTO);
	assert_int_equal(tu_write(path, "", 0, 0644), 0);
	assert_int_equal(ehx_cert_load(path, &c), EHX_ERR_CRYPTO);
	/* Missing. */
	P(path, "no-such.crt");
	assert_int_equal(ehx_cert_load(path, &c), EHX_ERR_SYSTEM);
	/* Two CNs: ambiguous. */
	P(path, "two-cn.crt");
	assert_int_equal(tu_sh("openssl req -x509 -new -key '%s' -subj "
	    "'/O=EHX/OU=police/CN=police/CN=health' -days 1 -out '%s' "
	    "2>/dev/null", key, path), 0);
	assert_int_equal(ehx_cert_load(path, &c), EHX_ERR_CRYPTO);
	/* No OU. */
	P(path, "no-ou.crt");
	assert_int_equal(tu_sh("openssl req -x509 -new -key '%s' -subj "
	    "'/O=EHX/CN=police' -days 1 -out '%s' 2>/dev/null", key, path), 0);
	assert_int_equal(ehx_cert_load(path, &c), EHX_ERR_CRYPTO);
	/* A control character in the CN. */
	P(path, "tab-cn.crt");
	assert_int_equal(tu_sh("openssl req -x509 -new -key '%s' -subj "
	    "\"$(printf '/OU=police/CN=pol\\tice')\" -days 1 -out '%s' "
	    "2>/dev/null", key, path), 0);
	assert_int_equal(ehx_cert_load(path, &c), EHX_ERR_CRYPTO);
	/* Not Ed25519. */
	P(path, "ec.crt");
	assert_int_equal(tu_sh("cd '%s' && openssl genpkey -algorithm EC "
	    "-pkeyopt ec_paramgen_curve:P-256 -out ec.key 2>/dev/null && "
	    "openssl req -x509 -new -key ec.key -subj '/OU=police/CN=police' "
	    "-days 1 -out ec.crt 2>/dev/null", dir), 0);
	assert_int_equal(ehx_cert_load(path, &c), EHX_ERR_CRYPTO);
	assert_null(c);
	/* A UTF-8 name is plain text and fine. */
	P(path, "utf8.crt");
	assert_int_equal(tu_sh("openssl req -x509 -new -utf8 -key '%s' -subj "
	    "\"$(printf '/OU=police/CN=caf\\303\\251')\" -days 1 -out '%s' "
	    "2>/dev/null", key, path), 0);
	assert_int_equal(ehx_cert_load(path, &c), 0);
	assert_string_equal(ehx_cert_cn(c), "caf\xc3\xa9");
	ehx_cert_free(c);
}

static void
test_ca_verify(void **state)
{
	struct ehx_ca *ca = NULL, *ca2 = NULL;
	struct ehx_cert *c = NULL;
	char path[PATH_MAX], why[256];

	(void)state;
	P(path, "ca/ca.crt");
	assert_int_equal(ehx_ca_load(path, &ca), 0);
	static const char *const issued[] = {
		"agencies/police/police.crt", "agencies/health/health.crt",
		"agencies/old/old.crt", "agencies/future/future.crt",
		"broker/broker.crt",
	};
	for (size_t i = 0; i < sizeof(issued) / sizeof(issued[0]); i++) {
		P(path, issued[i]);
		assert_int_equal(ehx_cert_load(path, &c), 0);
		strcpy(why, "stale");
		/* Dates are not looked at: expired and future ones chain. */
		if (ehx_ca_verify(ca, c, why, sizeof(why)) != 0)
			fail_msg("%s does not chain: %s", issued[i], why);
		assert_string_equal(why, "");
		ehx_cert_free(c);
		c = NULL;
	}
	/* A certificate from the second CA. */
	tu_join(path, sizeof(path), other, "agencies/police/police.crt");
	assert_int_equal(ehx_cert_load(path, &c), 0);
	assert_int_equal(ehx_ca_verify(ca, c, why, sizeof(why)),
	    EHX_ERR_UNKNOWN_CERTIFICATE);
	assert_true(strlen(why) > 0);
	assert_int_equal(ehx_ca_verify(ca, c, NULL, 0),
	    EHX_ERR_UNKNOWN_CERTIFICATE);
	/* ... which its own CA accepts, and which is refused the other way. */
	tu_join(path, sizeof(path), other, "ca/ca.crt");
	assert_int_equal(ehx_ca_load(path, &ca2), 0);
	assert_int_equal(ehx_ca_verify(ca2, c, why, sizeof(why)), 0);
	ehx_cert_free(c);
	P(path, "agencies/police/police.crt");
	assert_int_equal(ehx_cert_load(path, &c), 0);
	assert_int_equal(ehx_ca_verify(ca2, c, why, sizeof(why)),
	    EHX_ERR_UNKNOWN_CERTIFICATE);
	ehx_cert_free(c);
	c = NULL;
	/* A self-signed certificate with a good-looking name. */
	P(path, "self.crt");
	assert_int_equal(tu_sh("openssl req -x509 -new -key '%s/agencies/police/"
	    "police.key' -subj '/O=EHX Partnership/OU=police/CN=police' -days 1 "
	    "-out '%s' 2>/dev/null", dir, path), 0);
	assert_int_equal(ehx_cert_load(path, &c), 0);
	assert_int_equal(ehx_ca_verify(ca, c, why, sizeof(why)),
	    EHX_ERR_UNKNOWN_CERTIFICATE);
	ehx_cert_free(c);
	/* CA files that are not one. */
	{
		struct ehx_ca *x = (struct ehx_ca *)1;

		P(path, "no-such-ca.crt");
		assert_int_equal(ehx_ca_load(path, &x), EHX_ERR_SYSTEM);
		assert_null(x);
		P(path, "agencies/police/curve.pub");
		assert_int_equal(ehx_ca_load(path, &x), EHX_ERR_CRYPTO);
		assert_null(x);
	}
	ehx_ca_free(ca2);
	ehx_ca_free(ca);
	ehx_ca_free(NULL);
}

static void
test_cert_time(void **state)
{
	struct ehx_cert *c = NULL;
	char path[PATH_MAX];
	int64_t now = ehx_now_ms();

	(void)state;
	P(path, "agencies/police/police.crt");
	assert_int_equal(ehx_cert_load(path, &c), 0);
	assert_int_equal(ehx_cert_check_time(c, now), 0);
	assert_true(ehx_cert_not_before(c) < ehx_cert_not_after(c));
	ehx_cert_free(c);

	/* Issued with --start 2020-01-01 --end 2021-01-01: expired. */
	P(path, "agencies/old/old.crt");
	assert_int_equal(ehx_cert_load(path, &c), 0);
	assert_int_equal(ehx_cert_not_before(c), 1577836800000LL);
	assert_int_equal(ehx_cert_not_after(c), 1609459200000LL);
	assert_int_equal(ehx_cert_check_time(c, now), EHX_ERR_CERTIFICATE_EXPIRED);
	/* The bounds themselves are inside. */
	assert_int_equal(ehx_cert_check_time(c, 1577836800000LL), 0);
	assert_int_equal(ehx_cert_check_time(c, 1609459200000LL), 0);
	assert_int_equal(ehx_cert_check_time(c, 1609459200001LL),
	    EHX_ERR_CERTIFICATE_EXPIRED);
	assert_int_equal(ehx_cert_check_time(c, 1577836799999LL),
	    EHX_ERR_CERTIFICATE_NOT_YET_VALID);
	ehx_cert_free(c);

	/* Issued for 2099: not yet valid. */
	P(path, "agencies/future/future.crt");
	assert_int_equal(ehx_cert_load(path, &c), 0);
	assert_int_equal(ehx_cert_not_before(c), 4070908800000LL);
	assert_int_equal(ehx_cert_not_after(c), 4102444799000LL);
	assert_int_equal(ehx_cert_check_time(c, now),
	    EHX_ERR_CERTIFICATE_NOT_YET_VALID);
	assert_int_equal(ehx_cert_check_time(c, 4070908800000LL), 0);
	assert_int_equal(ehx_cert_check_time(c, 4102444800000LL),
	    EHX_ERR_CERTIFICATE_EXPIRED);
	ehx_cert_free(c);
}

/* ---- CURVE keys --------------------------------------------------------- */

static void
test_curve_keys(void **state)
{
	unsigned char secret[EHX_KEY_LEN], pub[EHX_KEY_LEN], filepub[EHX_KEY_LEN];
	unsigned char derived[EHX_KEY_LEN], other_pub[EHX_KEY_LEN];
	char path[PATH_MAX], copy[PATH_MAX], line[256];
	unsigned char ossl[64];

	(void)state;
	assert_true(sodium_init() >= 0);
	P(path, "agencies/police/curve.key");
	assert_int_equal(ehx_curve_load_secret(path, secret, pub), 0);
	P(path, "agencies/police/curve.pub");
	assert_int_equal(ehx_curve_load_public(path, filepub), 0);
	assert_memory_equal(pub, filepub, EHX_KEY_LEN);
	/* The public half is derived from the secret. */
	assert_int_equal(crypto_scalarmult_base(derived, secret), 0);
	assert_memory_equal(derived, pub, EHX_KEY_LEN);
	/* And it is what openssl reads from the .pub file. */
	assert_int_equal(tu_sh_line(line, sizeof(line), "openssl pkey -pubin "
	    "-in '%s' -outform DER | tail -c 32 | od -An -tx1 | tr -d ' \\n'",
	    path), 0);
	assert_int_equal(from_hex(ossl, sizeof(ossl), line), EHX_KEY_LEN);
	assert_memory_equal(ossl, filepub, EHX_KEY_LEN);
	/* Each party has its own. */
	P(path, "agencies/health/curve.pub");
	assert_int_equal(ehx_curve_load_public(path, other_pub), 0);
	assert_memory_not_equal(other_pub, pub, EHX_KEY_LEN);
	P(path, "broker/curve.key");
	assert_int_equal(ehx_curve_load_secret(path, secret, other_pub), 0);
	assert_memory_not_equal(other_pub, pub, EHX_KEY_LEN);

	/* A secret others can read is refused. */
	P(path, "agencies/police/curve.key");
	P(copy, "curve-copy.key");
	assert_int_equal(tu_sh("cp '%s' '%s'", path, copy), 0);
	assert_int_equal(chmod(copy, 0644), 0);
	assert_int_equal(ehx_curve_load_secret(copy, secret, pub),
	    EHX_ERR_KEY_PERMISSIONS);
	unlink(copy);
	/* An Ed25519 key is not an X25519 key, either way. */
	P(path, "agencies/police/police.key");
	assert_int_equal(ehx_curve_load_secret(path, secret, pub), EHX_ERR_CRYPTO);
	P(path, "ed.pub");
	assert_int_equal(tu_sh("openssl pkey -in '%s/agencies/police/police.key' "
	    "-pubout -out '%s'", dir, path), 0);
	assert_int_equal(ehx_curve_load_public(path, pub), EHX_ERR_CRYPTO);
	/* A certificate or the private key where a public key belongs. */
	P(path, "agencies/police/police.crt");
	assert_int_equal(ehx_curve_load_public(path, pub), EHX_ERR_CRYPTO);
	P(path, "nope.pub");
	assert_int_equal(ehx_curve_load_public(path, pub), EHX_ERR_SYSTEM);
	assert_int_equal(ehx_curve_load_secret(path, secret, pub),
	    EHX_ERR_SYSTEM);
}

/* ---- the pseudonym key ---------------------------------------------------- */

static void
pseudonym_of(const char *keyfile, const char *nhs,
    unsigned char out[EHX_PSEUDONYM_LEN])
{
	struct ehx_pseudokey *k = NULL;

	assert_int_equal(ehx_pseudokey_load(keyfile, &k), 0);
	assert_int_equal(ehx_pseudonym(k, nhs, out), 0);
	ehx_pseudokey_free(k);
}

static void
test_pseudokey(void **state)
{
	unsigned char a[EHX_PSEUDONYM_LEN], b[EHX_PSEUDONYM_LEN];
	unsigned char ossl[64];
	char key[PATH_MAX], key2[PATH_MAX], line[256];
	struct ehx_pseudokey *k = NULL;

	(void)state;
	P(key, "broker/pseudonym.key");
	pseudonym_of(key, "9434765919", a);
	pseudonym_of(key, "9434765919", b);
	assert_memory_equal(a, b, EHX_PSEUDONYM_LEN);          /* deterministic */
	pseudonym_of(key, "9992914173", b);
	assert_memory_not_equal(a, b, EHX_PSEUDONYM_LEN);      /* per child */
	/* HMAC-SHA256 over the ten digits, as openssl computes it. */
	assert_int_equal(tu_sh_line(line, sizeof(line), "printf 9434765919 | "
	    "openssl dgst -sha256 -mac HMAC -macopt hexkey:$(cat '%s') | "
	    "sed 's/^.*= *//'", key), 0);
	assert_int_equal(from_hex(ossl, sizeof(ossl), line), EHX_PSEUDONYM_LEN);
	assert_memory_equal(a, ossl, EHX_PSEUDONYM_LEN);

	/* Another key, another pseudonym; upper-case hex and CRLF are fine. */
	P(key2, "other-pseudonym.key");
	assert_int_equal(tu_writef(key2, 0600, "%s\r\n",
	    "00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff"), 0);
	pseudonym_of(key2, "9434765919", b);
	assert_memory_not_equal(a, b, EHX_PSEUDONYM_LEN);
	/* Same key as lower case without a newline: same pseudonym. */
	{
		unsigned char c[EHX_PSEUDONYM_LEN];

		assert_int_equal(tu_writef(key2, 0600, "%s",
		    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"),
		    0);
		pseudonym_of(key2, "9434765919", c);
		assert_memory_equal(b, c, EHX_PSEUDONYM_LEN);
	}

	/* Refusals. */
	assert_int_equal(chmod(key2, 0644), 0);
	assert_int_equal(ehx_pseudokey_load(key2, &k), EHX_ERR_KEY_PERMISSIONS);
	assert_null(k);
	assert_int_equal(chmod(key2, 0604), 0);
	assert_int_equal(ehx_pseudokey_load(key2, &k), EHX_ERR_KEY_PERMISSIONS);
	assert_int_equal(tu_writef(key2, 0600, "%s\n",
	    "zz112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"), 0);
	assert_int_equal(ehx_pseudokey_load(key2, &k), EHX_ERR_CRYPTO);
	assert_int_equal(tu_writef(key2, 0600, "%s\n",
	    "0112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"), 0);
	assert_int_equal(ehx_pseudokey_load(key2, &k), EHX_ERR_CRYPTO);  /* 63 */
	assert_int_equal(tu_writef(key2, 0600, "%s\n",
	    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff00"),
	    0);
	assert_int_equal(ehx_pseudokey_load(key2, &k), EHX_ERR_CRYPTO);  /* 66 */
	assert_int_equal(tu_writef(key2, 0600, " %s\n",
	    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"), 0);
	assert_int_equal(ehx_pseudokey_load(key2, &k), EHX_ERR_CRYPTO);
	assert_int_equal(tu_write(key2, "", 0, 0600), 0);
	assert_int_equal(ehx_pseudokey_load(key2, &k), EHX_ERR_CRYPTO);
	assert_null(k);
	unlink(key2);
	assert_int_equal(ehx_pseudokey_load(key2, &k), EHX_ERR_SYSTEM);
	ehx_pseudokey_free(NULL);
}

static void
test_sha256(void **state)
{
	unsigned char out[32], want[32];

	(void)state;
	ehx_sha256("abc", 3, out);
	from_hex(want, sizeof(want), "ba7816bf8f01cfea414140de5dae2223"
	    "b00361a396177a9cb410ff61f20015ad");
	assert_memory_equal(out, want, 32);
	ehx_sha256("", 0, out);
	from_hex(want, sizeof(want), "e3b0c44298fc1c149afbf4c8996fb924"
	    "27ae41e4649b934ca495991b7852b855");
	assert_memory_equal(out, want, 32);
}

/* ---- the CA's revocation list ------------------------------------------- */

static void
test_crl(void **state)
{
	struct ehx_ca *ca = NULL;
	struct ehx_crl *crl = NULL;
	struct ehx_cert *police = NULL, *leaver = NULL;
	char p[PATH_MAX], q[PATH_MAX], why[256];
	const char *pki = tu_pki();
	int64_t now = ehx_now_ms();

	(void)state;
	assert_non_null(pki);
	assert_int_equal(ehx_ca_load(P(p, "ca/ca.crt"), &ca), 0);
	assert_int_equal(ehx_cert_load(P(p, "agencies/police/police.crt"),
	    &police), 0);
	assert_int_equal(tu_sh("'%s' agency '%s' leaver housing >/dev/null && "
	    "'%s' crl '%s' >/dev/null", pki, dir, pki, dir), 0);
	assert_int_equal(ehx_cert_load(P(p, "agencies/leaver/leaver.crt"),
	    &leaver), 0);

	/* Nobody revoked yet; dates as issued (30 days). */
	assert_int_equal(ehx_crl_load(P(p, "ca/crl.pem"), ca, &crl, why,
	    sizeof(why)), 0);
	assert_int_equal(ehx_crl_count(crl), 0);
	assert_false(ehx_crl_revoked(crl, police));
	assert_false(ehx_crl_revoked(crl, leaver));
	assert_true(llabs(ehx_crl_this_update(crl) - now) < 120000);
	assert_true(llabs(ehx_crl_next_update(crl) - (now +
	    30LL * 86400 * 1000)) < 120000);
	ehx_crl_free(crl);

	/* The leaver revoked: listed by serial; the police are not. */
	assert_int_equal(tu_sh("'%s' revoke '%s' '%s' --reason "
	    "cessationOfOperation >/dev/null", pki, dir,
	    P(q, "agencies/leaver/leaver.crt")), 0);
	assert_int_equal(ehx_crl_load(P(p, "ca/crl.pem"), ca, &crl, why,
	    sizeof(why)), 0);
	assert_int_equal(ehx_crl_count(crl), 1);
	assert_true(ehx_crl_revoked(crl, leaver));
	assert_false(ehx_crl_revoked(crl, police));
	ehx_crl_free(crl);
	assert_false(ehx_crl_revoked(NULL, leaver));

	/* The same list as DER, converted by openssl. */
	assert_int_equal(tu_sh("openssl crl -in '%s' -outform DER -out '%s'",
	    P(p, "ca/crl.pem"), P(q, "crl.der")), 0);
	assert_int_equal(ehx_crl_load(q, ca, &crl, why, sizeof(why)), 0);
	assert_true(ehx_crl_revoked(crl, leaver));
	ehx_crl_free(crl);

	/* One byte of its signature changed (every bit flipped, so that it
	 * is a change whatever the byte was): refused. */
	{
		FILE *f = fopen(q, "r+b");
		int ch;

		assert_non_null(f);
		assert_int_equal(fseek(f, -1, SEEK_END), 0);
		assert_true((ch = fgetc(f)) != EOF);
		assert_int_equal(fseek(f, -1, SEEK_END), 0);
		assert_int_equal(fputc(ch ^ 0xff, f), ch ^ 0xff);
		assert_int_equal(fclose(f), 0);
	}
	assert_int_equal(ehx_crl_load(q, ca, &crl, why, sizeof(why)),
	    EHX_ERR_CRYPTO);
	assert_null(crl);
	assert_string_equal(why, "its signature is not the partnership CA's");

	/* Another CA's list (the same name, another key): refused. */
	assert_int_equal(tu_sh("'%s' crl '%s' >/dev/null", pki, other), 0);
	snprintf(q, sizeof(q), "%s/ca/crl.pem", other);
	assert_int_equal(ehx_crl_load(q, ca, &crl, why, sizeof(why)),
	    EHX_ERR_CRYPTO);
	assert_string_equal(why, "its signature is not the partnership CA's");

	/* Not a CRL; no such file. */
	assert_int_equal(tu_writef(P(q, "junk.crl"), 0644, "not a CRL\n"), 0);
	assert_int_equal(ehx_crl_load(q, ca, &crl, why, sizeof(why)),
	    EHX_ERR_CRYPTO);
	assert_string_equal(why, "not a certificate revocation list (PEM or "
	    "DER)");
	assert_int_not_equal(ehx_crl_load(P(q, "no-such.crl"), ca, &crl, why,
	    sizeof(why)), 0);
	assert_null(crl);
	assert_true(strlen(why) > 0);

	ehx_cert_free(police);
	ehx_cert_free(leaver);
	ehx_ca_free(ca);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_signer_load),
		cmocka_unit_test(test_signer_key_permissions),
		cmocka_unit_test(test_signer_mismatch),
		cmocka_unit_test(test_sign_verify),
		cmocka_unit_test(test_cert_names_and_fingerprint),
		cmocka_unit_test(test_cert_load_refuses),
		cmocka_unit_test(test_ca_verify),
		cmocka_unit_test(test_cert_time),
		cmocka_unit_test(test_curve_keys),
		cmocka_unit_test(test_pseudokey),
		cmocka_unit_test(test_sha256),
		cmocka_unit_test(test_crl),
	};

	return cmocka_run_group_tests_name("test_crypto", tests, setup, teardown);
}
