/*
 * crypto.c — Ed25519 keys and certificates with OpenSSL, verification with
 * libsodium, CURVE keys from PEM, and child pseudonyms.
 *
 * Keys are read through ehx_file_read(), which refuses private files that
 * group or others can read, and every buffer that held a secret is wiped.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <sodium.h>

#include "ehx/crypto.h"
#include "ehx/err.h"
#include "ehx/util.h"

struct ehx_cert {
	X509 *x509;
	unsigned char fpr[EHX_FPR_LEN];
	unsigned char pub[EHX_KEY_LEN];
	char cn[EHX_MAX_NAME + 1];
	char ou[EHX_MAX_NAME + 1];
	int64_t not_before, not_after;
};

/*
 * The private key is read with OpenSSL (PEM, PKCS#8) and kept only as
 * libsodium's expanded Ed25519 secret key, in sodium_malloc'd memory
 * (guarded, locked, wiped when freed): libsodium signs about twice as fast
 * as OpenSSL 3.0, and Ed25519 signatures are deterministic, so both make
 * the same bytes (tests/unit/test_crypto.c checks it).
 */
struct ehx_signer {
	unsigned char *sk;              /* crypto_sign_SECRETKEYBYTES */
	struct ehx_cert *cert;
};

struct ehx_ca {
	X509_STORE *store;
	X509 *cert;                     /* the CA's own, for its CRLs */
};

struct ehx_crl {
	X509_CRL *crl;
	int64_t this_update, next_update;
	size_t n;
};

struct ehx_pseudokey {
	unsigned char key[32];
	/* HMAC-SHA256 keyed once: its inner and outer pads already hashed,
	 * which halves the work of each short token (ehx_keyed_hash) */
	crypto_auth_hmacsha256_state keyed;
};

static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;

static void
sodium_start(void)
{
	if (sodium_init() < 0)
		abort();	/* libsodium cannot run at all: nothing is safe */
}

void
ehx_sha256(const void *in, size_t len, unsigned char out[32])
{
	EVP_Digest(in, len, out, NULL, EVP_sha256(), NULL);
}

/* Parse a PEM object held in a private or public file. */
static EVP_PKEY *
read_pkey(const char *path, int private, int *err)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	EVP_PKEY *k = NULL;
	BIO *bio = NULL;
	int r;

	if ((r = ehx_file_read(path, private, EHX_MAX_KEY_FILE, &buf,
	    &len)) != 0) {
		*err = r;
		return NULL;
	}
	if ((bio = BIO_new_mem_buf(buf, (int)len)) == NULL)
		goto out;
	k = private ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) :
	    PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
out:
	BIO_free(bio);
	ehx_free_secret(buf, len);
	*err = k != NULL ? 0 : EHX_ERR_CRYPTO;
	return k;
}

static int
name_field(X509_NAME *name, int nid, char *out, size_t outsz)
{
	const ASN1_STRING *s;
	unsigned char *utf8 = NULL;
	int i, n;

	if ((i = X509_NAME_get_index_by_NID(name, nid, -1)) < 0)
		return EHX_ERR_CRYPTO;
	/* Exactly one of each, or the name is ambiguous. */
	if (X509_NAME_get_index_by_NID(name, nid, i) >= 0)
		return EHX_ERR_CRYPTO;
	s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
	if ((n = ASN1_STRING_to_UTF8(&utf8, s)) < 0)
		return EHX_ERR_CRYPTO;
	if ((size_t)n >= outsz || memchr(utf8, '\0', (size_t)n) != NULL) {
		OPENSSL_free(utf8);
		return EHX_ERR_CRYPTO;
	}
	memcpy(out, utf8, (size_t)n);
	out[n] = '\0';
	OPENSSL_free(utf8);
	return ehx_text_ok(out, 1, outsz - 1) ? 0 : EHX_ERR_CRYPTO;
}

static int64_t
asn1_ms(const ASN1_TIME *t)
{
	struct tm tm;

	if (ASN1_TIME_to_tm(t, &tm) != 1)
		return -1;
	return (int64_t)timegm(&tm) * 1000;
}

int
ehx_cert_parse(const void *pem, size_t len, struct ehx_cert **out)
{
	struct ehx_cert *c = NULL;
	size_t publen = EHX_KEY_LEN;
	unsigned int fprlen = 0;
	EVP_PKEY *pk;
	BIO *bio = NULL;
	int r;

	*out = NULL;
	if (len == 0 || len > EHX_MAX_KEY_FILE)
		return EHX_ERR_CRYPTO;
	r = EHX_ERR_NOMEM;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		goto out;
	r = EHX_ERR_CRYPTO;
	if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL ||
	    (c->x509 = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL)
		goto out;
	if ((pk = X509_get0_pubkey(c->x509)) == NULL ||
	    EVP_PKEY_get_id(pk) != EVP_PKEY_ED25519 ||
	    EVP_PKEY_get_raw_public_key(pk, c->pub, &publen) != 1 ||
	    publen != EHX_KEY_LEN)
		goto out;
	if (X509_digest(c->x509, EVP_sha256(), c->fpr, &fprlen) != 1 ||
	    fprlen != EHX_FPR_LEN)
		goto out;
	if (name_field(X509_get_subject_name(c->x509), NID_commonName, c->cn,
	    sizeof(c->cn)) != 0 ||
	    name_field(X509_get_subject_name(c->x509),
	    NID_organizationalUnitName, c->ou, sizeof(c->ou)) != 0)
		goto out;
	if ((c->not_before = asn1_ms(X509_get0_notBefore(c->x509))) < 0 ||
	    (c->not_after = asn1_ms(X509_get0_notAfter(c->x509))) < 0)
		goto out;
	*out = c;
	c = NULL;
	r = 0;
out:
	BIO_free(bio);
	ehx_cert_free(c);
	return r;
}

int
ehx_cert_load(const char *path, struct ehx_cert **out)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	int r;

	*out = NULL;
	if ((r = ehx_file_read(path, 0, EHX_MAX_KEY_FILE, &buf, &len)) != 0)
		return r;
	r = ehx_cert_parse(buf, len, out);
	free(buf);
	return r;
}

int
ehx_cert_pem(const struct ehx_cert *c, char **pem, size_t *len)
{
	BIO *bio;
	char *p;
	long n;
	int r = EHX_ERR_CRYPTO;

	*pem = NULL;
	*len = 0;
	if ((bio = BIO_new(BIO_s_mem())) == NULL)
		return EHX_ERR_NOMEM;
	if (PEM_write_bio_X509(bio, c->x509) == 1 &&
	    (n = BIO_get_mem_data(bio, &p)) > 0) {
		if ((*pem = malloc((size_t)n)) == NULL)
			r = EHX_ERR_NOMEM;
		else {
			memcpy(*pem, p, (size_t)n);
			*len = (size_t)n;
			r = 0;
		}
	}
	BIO_free(bio);
	return r;
}

void
ehx_cert_free(struct ehx_cert *c)
{
	if (c == NULL)
		return;
	X509_free(c->x509);
	free(c);
}

const unsigned char *ehx_cert_fpr(const struct ehx_cert *c) { return c->fpr; }
const unsigned char *ehx_cert_pubkey(const struct ehx_cert *c) { return c->pub; }
const char *ehx_cert_cn(const struct ehx_cert *c) { return c->cn; }
const char *ehx_cert_ou(const struct ehx_cert *c) { return c->ou; }
int64_t ehx_cert_not_before(const struct ehx_cert *c) { return c->not_before; }
int64_t ehx_cert_not_after(const struct ehx_cert *c) { return c->not_after; }

int
ehx_cert_check_time(const struct ehx_cert *c, int64_t now_ms)
{
	if (now_ms < c->not_before)
		return EHX_ERR_CERTIFICATE_NOT_YET_VALID;
	if (now_ms > c->not_after)
		return EHX_ERR_CERTIFICATE_EXPIRED;
	return 0;
}

int
ehx_signer_load(const char *key_path, const char *cert_path,
    struct ehx_signer **out)
{
	struct ehx_signer *s = NULL;
	EVP_PKEY *key = NULL;
	unsigned char pub[EHX_KEY_LEN], seed[crypto_sign_SEEDBYTES];
	size_t publen = sizeof(pub), seedlen = sizeof(seed);
	int r;

	*out = NULL;
	pthread_once(&sodium_once, sodium_start);
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return EHX_ERR_NOMEM;
	if ((key = read_pkey(key_path, 1, &r)) == NULL)
		goto out;
	r = EHX_ERR_CRYPTO;
	if (EVP_PKEY_get_id(key) != EVP_PKEY_ED25519)
		goto out;
	if ((r = ehx_cert_load(cert_path, &s->cert)) != 0)
		goto out;
	r = EHX_ERR_NOMEM;
	if ((s->sk = sodium_malloc(crypto_sign_SECRETKEYBYTES)) == NULL)
		goto out;
	r = EHX_ERR_CRYPTO;
	if (EVP_PKEY_get_raw_private_key(key, seed, &seedlen) != 1 ||
	    seedlen != sizeof(seed) ||
	    crypto_sign_seed_keypair(pub, s->sk, seed) != 0 ||
	    !ehx_ct_eq(pub, s->cert->pub, publen))
		goto out;
	*out = s;
	s = NULL;
	r = 0;
out:
	OPENSSL_cleanse(seed, sizeof(seed));
	EVP_PKEY_free(key);	/* OpenSSL clears private key material */
	ehx_signer_free(s);
	return r;
}

void
ehx_signer_free(struct ehx_signer *s)
{
	if (s == NULL)
		return;
	sodium_free(s->sk);	/* wipes it */
	ehx_cert_free(s->cert);
	free(s);
}

const unsigned char *ehx_signer_fpr(const struct ehx_signer *s) { return s->cert->fpr; }
const struct ehx_cert *ehx_signer_cert(const struct ehx_signer *s) { return s->cert; }

int
ehx_signer_sign(const struct ehx_signer *s, const void *msg, size_t len,
    unsigned char sig[EHX_SIG_LEN])
{
	if (crypto_sign_detached(sig, NULL, msg, len, s->sk) != 0)
		return EHX_ERR_CRYPTO;
	return 0;
}

int
ehx_ed25519_verify(const unsigned char pub[EHX_KEY_LEN], const void *msg,
    size_t len, const unsigned char sig[EHX_SIG_LEN])
{
	pthread_once(&sodium_once, sodium_start);
	if (crypto_sign_verify_detached(sig, msg, len, pub) != 0)
		return EHX_ERR_BAD_SIGNATURE;
	return 0;
}

int
ehx_ca_load(const char *path, struct ehx_ca **out)
{
	struct ehx_ca *ca = NULL;
	struct ehx_cert *c = NULL;
	int r;

	*out = NULL;
	if ((r = ehx_cert_load(path, &c)) != 0)
		return r;
	r = EHX_ERR_NOMEM;
	if ((ca = calloc(1, sizeof(*ca))) == NULL ||
	    (ca->store = X509_STORE_new()) == NULL)
		goto out;
	r = EHX_ERR_CRYPTO;
	if (X509_STORE_add_cert(ca->store, c->x509) != 1 ||
	    X509_up_ref(c->x509) != 1)
		goto out;
	ca->cert = c->x509;
	*out = ca;
	ca = NULL;
	r = 0;
out:
	ehx_cert_free(c);
	ehx_ca_free(ca);
	return r;
}

void
ehx_ca_free(struct ehx_ca *ca)
{
	if (ca == NULL)
		return;
	X509_STORE_free(ca->store);
	X509_free(ca->cert);
	free(ca);
}

#define CRL_MAX (4 * 1024 * 1024)

int
ehx_crl_load(const char *path, const struct ehx_ca *ca, struct ehx_crl **out,
    char *why, size_t whysz)
{
	struct ehx_crl *c = NULL;
	unsigned char *buf = NULL;
	const unsigned char *p;
	EVP_PKEY *capub;
	BIO *bio = NULL;
	size_t len = 0;
	int r;

	*out = NULL;
	if ((r = ehx_file_read(path, false, CRL_MAX, &buf, &len)) != 0) {
		snprintf(why, whysz, "%s", r == EHX_ERR_TOO_LARGE ? "larger "
		    "than 4 MiB" : r == EHX_ERR_SYSTEM ? strerror(errno) :
		    ehx_strerror(r));
		return r;
	}
	r = EHX_ERR_NOMEM;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		goto out;
	r = EHX_ERR_CRYPTO;
	if (len > INT32_MAX ||
	    (bio = BIO_new_mem_buf(buf, (int)len)) == NULL)
		goto out;
	if ((c->crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL)) == NULL) {
		p = buf;
		c->crl = d2i_X509_CRL(NULL, &p, (long)len);
	}
	if (c->crl == NULL) {
		snprintf(why, whysz, "not a certificate revocation list (PEM "
		    "or DER)");
		goto out;
	}
	if (X509_NAME_cmp(X509_CRL_get_issuer(c->crl),
	    X509_get_subject_name(ca->cert)) != 0) {
		snprintf(why, whysz, "issued by someone other than the "
		    "partnership CA");
		goto out;
	}
	if ((capub = X509_get0_pubkey(ca->cert)) == NULL ||
	    X509_CRL_verify(c->crl, capub) != 1) {
		snprintf(why, whysz, "its signature is not the partnership "
		    "CA's");
		goto out;
	}
	if (X509_CRL_get0_lastUpdate(c->crl) == NULL ||
	    (c->this_update = asn1_ms(X509_CRL_get0_lastUpdate(c->crl))) < 0 ||
	    (X509_CRL_get0_nextUpdate(c->crl) != NULL &&
	    (c->next_update = asn1_ms(X509_CRL_get0_nextUpdate(c->crl))) < 0)) {
		snprintf(why, whysz, "its dates cannot be read");
		goto out;
	}
	{
		/* -1 when the CRL lists nobody (no stack at all). */
		int num = sk_X509_REVOKED_num(X509_CRL_get_REVOKED(c->crl));

		c->n = num > 0 ? (size_t)num : 0;
	}
	*out = c;
	c = NULL;
	r = 0;
out:
	BIO_free(bio);
	free(buf);
	ehx_crl_free(c);
	return r;
}

void
ehx_crl_free(struct ehx_crl *c)
{
	if (c == NULL)
		return;
	X509_CRL_free(c->crl);
	free(c);
}

bool
ehx_crl_revoked(const struct ehx_crl *c, const struct ehx_cert *cert)
{
	X509_REVOKED *rev = NULL;

	return c != NULL &&
	    X509_CRL_get0_by_cert(c->crl, &rev, cert->x509) == 1;
}

size_t ehx_crl_count(const struct ehx_crl *c) { return c->n; }
int64_t ehx_crl_next_update(const struct ehx_crl *c) { return c->next_update; }
int64_t ehx_crl_this_update(const struct ehx_crl *c) { return c->this_update; }

int
ehx_ca_verify(const struct ehx_ca *ca, const struct ehx_cert *c, char *why,
    size_t whysz)
{
	X509_STORE_CTX *ctx;
	int r = EHX_ERR_UNKNOWN_CERTIFICATE;

	if (whysz > 0)
		why[0] = '\0';
	if ((ctx = X509_STORE_CTX_new()) == NULL)
		return EHX_ERR_NOMEM;
	if (X509_STORE_CTX_init(ctx, ca->store, c->x509, NULL) != 1)
		goto out;
	X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_NO_CHECK_TIME |
	    X509_V_FLAG_X509_STRICT);
	if (X509_verify_cert(ctx) == 1)
		r = 0;
	else if (whysz > 0)
		snprintf(why, whysz, "%s", X509_verify_cert_error_string(
		    X509_STORE_CTX_get_error(ctx)));
out:
	X509_STORE_CTX_free(ctx);
	return r;
}

int
ehx_curve_load_secret(const char *path, unsigned char secret[EHX_KEY_LEN],
    unsigned char pub[EHX_KEY_LEN])
{
	size_t sl = EHX_KEY_LEN, pl = EHX_KEY_LEN;
	EVP_PKEY *k;
	int r;

	if ((k = read_pkey(path, 1, &r)) == NULL)
		return r;
	r = EHX_ERR_CRYPTO;
	if (EVP_PKEY_get_id(k) == EVP_PKEY_X25519 &&
	    EVP_PKEY_get_raw_private_key(k, secret, &sl) == 1 &&
	    EVP_PKEY_get_raw_public_key(k, pub, &pl) == 1 &&
	    sl == EHX_KEY_LEN && pl == EHX_KEY_LEN)
		r = 0;
	else
		OPENSSL_cleanse(secret, EHX_KEY_LEN);
	EVP_PKEY_free(k);
	return r;
}

int
ehx_curve_load_public(const char *path, unsigned char pub[EHX_KEY_LEN])
{
	size_t pl = EHX_KEY_LEN;
	EVP_PKEY *k;
	int r;

	if ((k = read_pkey(path, 0, &r)) == NULL)
		return r;
	r = EHX_ERR_CRYPTO;
	if (EVP_PKEY_get_id(k) == EVP_PKEY_X25519 &&
	    EVP_PKEY_get_raw_public_key(k, pub, &pl) == 1 && pl == EHX_KEY_LEN)
		r = 0;
	EVP_PKEY_free(k);
	return r;
}

int
ehx_pseudokey_load(const char *path, struct ehx_pseudokey **out)
{
	struct ehx_pseudokey *k = NULL;
	unsigned char *buf = NULL;
	size_t len = 0;
	int r;

	*out = NULL;
	if ((r = ehx_file_read(path, 1, 1024, &buf, &len)) != 0)
		return r;
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		buf[--len] = '\0';
	r = EHX_ERR_NOMEM;
	if ((k = calloc(1, sizeof(*k))) == NULL)
		goto out;
	r = EHX_ERR_CRYPTO;
	if (ehx_unhex(k->key, sizeof(k->key), (char *)buf) != 0)
		goto out;
	pthread_once(&sodium_once, sodium_start);
	crypto_auth_hmacsha256_init(&k->keyed, k->key, sizeof(k->key));
	*out = k;
	k = NULL;
	r = 0;
out:
	ehx_free_secret(buf, len);
	ehx_pseudokey_free(k);
	return r;
}

int
ehx_pseudokey_raw(const unsigned char raw[32], struct ehx_pseudokey **out)
{
	if ((*out = calloc(1, sizeof(**out))) == NULL)
		return EHX_ERR_NOMEM;
	memcpy((*out)->key, raw, sizeof((*out)->key));
	pthread_once(&sodium_once, sodium_start);
	crypto_auth_hmacsha256_init(&(*out)->keyed, raw, sizeof((*out)->key));
	return 0;
}

void
ehx_pseudokey_free(struct ehx_pseudokey *k)
{
	if (k == NULL)
		return;
	OPENSSL_cleanse(k, sizeof(*k));
	free(k);
}

int
ehx_pseudonym(const struct ehx_pseudokey *k, const char *nhs,
    unsigned char out[EHX_PSEUDONYM_LEN])
{
	unsigned int len = 0;

	if (HMAC(EVP_sha256(), k->key, (int)sizeof(k->key),
	    (const unsigned char *)nhs, strlen(nhs), out, &len) == NULL ||
	    len != EHX_PSEUDONYM_LEN)
		return EHX_ERR_CRYPTO;
	return 0;
}

int
ehx_keyed_hash(const struct ehx_pseudokey *k, const void *in, size_t len,
    unsigned char out[32])
{
	crypto_auth_hmacsha256_state st = k->keyed;

	crypto_auth_hmacsha256_update(&st, in, len);
	crypto_auth_hmacsha256_final(&st, out);
	OPENSSL_cleanse(&st, sizeof(st));
	return 0;
}

/* The evidence key: HMAC-SHA256(pseudonym key, context), never stored. */
static int
evidence_key(const struct ehx_pseudokey *k, unsigned char key[32])
{
	static const char ctx[] = "EHX-EVIDENCE-KEY-V1";
	unsigned int len = 0;

	if (HMAC(EVP_sha256(), k->key, (int)sizeof(k->key),
	    (const unsigned char *)ctx, sizeof(ctx) - 1, key, &len) == NULL ||
	    len != 32)
		return EHX_ERR_CRYPTO;
	return 0;
}

int
ehx_evidence_seal(const struct ehx_pseudokey *k, const unsigned char ad[32],
    const void *in, size_t len, unsigned char **out, size_t *outlen)
{
	const size_t nb = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
	unsigned char key[32], *buf;
	unsigned long long clen = 0;
	int r;

	*out = NULL;
	*outlen = 0;
	pthread_once(&sodium_once, sodium_start);
	if ((buf = malloc(nb + len +
	    crypto_aead_xchacha20poly1305_ietf_ABYTES)) == NULL)
		return EHX_ERR_NOMEM;
	if ((r = evidence_key(k, key)) != 0) {
		free(buf);
		return r;
	}
	randombytes_buf(buf, nb);
	crypto_aead_xchacha20poly1305_ietf_encrypt(buf + nb, &clen, in, len,
	    ad, 32, NULL, buf, key);
	OPENSSL_cleanse(key, sizeof(key));
	*out = buf;
	*outlen = nb + (size_t)clen;
	return 0;
}

int
ehx_evidence_open(const struct ehx_pseudokey *k, const unsigned char ad[32],
    const void *in, size_t len, unsigned char **out, size_t *outlen)
{
	const size_t nb = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
	const unsigned char *p = in;
	unsigned char key[32], *buf;
	unsigned long long mlen = 0;
	int r;

	*out = NULL;
	*outlen = 0;
	pthread_once(&sodium_once, sodium_start);
	if (len < nb + crypto_aead_xchacha20poly1305_ietf_ABYTES)
		return EHX_ERR_CRYPTO;
	if ((buf = malloc(len)) == NULL)
		return EHX_ERR_NOMEM;
	if ((r = evidence_key(k, key)) != 0) {
		free(buf);
		return r;
	}
	r = crypto_aead_xchacha20poly1305_ietf_decrypt(buf, &mlen, NULL, p + nb,
	    len - nb, ad, 32, p, key) == 0 ? 0 : EHX_ERR_CRYPTO;
	OPENSSL_cleanse(key, sizeof(key));
	if (r != 0) {
		free(buf);
		return r;
	}
	*out = buf;
	*outlen = (size_t)mlen;
	return 0;
}
