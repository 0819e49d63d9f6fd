/*
 * crypto.h — keys, certificates and the primitives EHX uses.
 *
 * Ed25519 signatures (OpenSSL signs; libsodium verifies on the hot path —
 * the same algorithm, and about twice as fast here), X.509 certificates from
 * the partnership CA, X25519 keys for CURVE, and the keyed pseudonym of a
 * child's NHS number (HMAC-SHA256). Private material is wiped when freed.
 */
#ifndef EHX_CRYPTO_H
#define EHX_CRYPTO_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#include "ehx/limits.h"

struct ehx_signer;      /* an Ed25519 private key and its certificate */
struct ehx_cert;        /* a parsed certificate */
struct ehx_ca;          /* the partnership CA, to verify chains */
struct ehx_pseudokey;   /* the HMAC key for child pseudonyms */

/*
 * Load a PEM Ed25519 private key (refused if group or others can read it)
 * and the PEM certificate that carries its public key; fails with
 * EHX_ERR_CRYPTO if they do not match. The caller frees *out.
 */
int ehx_signer_load(const char *key_path, const char *cert_path,
    struct ehx_signer **out);
void ehx_signer_free(struct ehx_signer *s);

/* Sign len bytes into sig. Returns 0 or EHX_ERR_CRYPTO. */
int ehx_signer_sign(const struct ehx_signer *s, const void *msg, size_t len,
    unsigned char sig[EHX_SIG_LEN]);

/* The signer certificate's SHA-256 fingerprint; owned by s. */
const unsigned char *ehx_signer_fpr(const struct ehx_signer *s);

/* The signer's certificate; owned by s. */
const struct ehx_cert *ehx_signer_cert(const struct ehx_signer *s);

/*
 * Load one PEM certificate holding an Ed25519 key. Its subject's CN and OU
 * (agency id and agency type) must be plain text without embedded NULs.
 * Returns 0, EHX_ERR_SYSTEM, EHX_ERR_CRYPTO (not a certificate, not
 * Ed25519, bad names). The caller frees *out.
 */
int ehx_cert_load(const char *path, struct ehx_cert **out);
/* The same from PEM text in memory (at most EHX_MAX_KEY_FILE bytes). */
int ehx_cert_parse(const void *pem, size_t len, struct ehx_cert **out);
/* The certificate as PEM text, in a new buffer the caller frees. */
int ehx_cert_pem(const struct ehx_cert *c, char **pem, size_t *len);
void ehx_cert_free(struct ehx_cert *c);

const unsigned char *ehx_cert_fpr(const struct ehx_cert *c);    /* 32 bytes */
const unsigned char *ehx_cert_pubkey(const struct ehx_cert *c); /* 32 bytes */
const char *ehx_cert_cn(const struct ehx_cert *c);
const char *ehx_cert_ou(const struct ehx_cert *c);
int64_t ehx_cert_not_before(const struct ehx_cert *c);          /* ms */
int64_t ehx_cert_not_after(const struct ehx_cert *c);           /* ms */

/* 0 while now is within the certificate's dates, else
 * EHX_ERR_CERTIFICATE_NOT_YET_VALID or EHX_ERR_CERTIFICATE_EXPIRED. */
int ehx_cert_check_time(const struct ehx_cert *c, int64_t now_ms);

/* Load the CA certificate (PEM). The caller frees *out. */
int ehx_ca_load(const char *path, struct ehx_ca **out);
void ehx_ca_free(struct ehx_ca *ca);

/*
 * Verify that c is issued by the CA (signature, extensions, purpose) without
 * looking at dates — those are checked per message. Returns 0 or
 * EHX_ERR_UNKNOWN_CERTIFICATE with OpenSSL's reason in why.
 */
int ehx_ca_verify(const struct ehx_ca *ca, const struct ehx_cert *c,
    char *why, size_t whysz);

/*
 * The partnership CA's certificate revocation list (PEM or DER, at most
 * 4 MiB): issued by the CA and signed with its key, or refused (why says
 * so). *out is freed with ehx_crl_free.
 */
struct ehx_crl;
int ehx_crl_load(const char *path, const struct ehx_ca *ca,
    struct ehx_crl **out, char *why, size_t whysz);
void ehx_crl_free(struct ehx_crl *crl);
/* Whether the CRL lists c (by the CA's serial number). */
bool ehx_crl_revoked(const struct ehx_crl *crl, const struct ehx_cert *c);
size_t ehx_crl_count(const struct ehx_crl *crl);        /* certificates listed */
int64_t ehx_crl_next_update(const struct ehx_crl *crl); /* ms; 0: none given */
int64_t ehx_crl_this_update(const struct ehx_crl *crl); /* ms */

/* Ed25519 verification. Returns 0 or EHX_ERR_BAD_SIGNATURE. */
int ehx_ed25519_verify(const unsigned char pub[EHX_KEY_LEN], const void *msg,
    size_t len, const unsigned char sig[EHX_SIG_LEN]);

/*
 * Read an X25519 key pair for CURVE from a PEM private key (refused if
 * others can read it), or a public key from a PEM public key.
 */
int ehx_curve_load_secret(const char *path, unsigned char secret[EHX_KEY_LEN],
    unsigned char pub[EHX_KEY_LEN]);
int ehx_curve_load_public(const char *path, unsigned char pub[EHX_KEY_LEN]);

/*
 * Load the pseudonym key: a private file holding 64 hex digits (32 bytes).
 * The caller frees *out, which wipes the key.
 */
int ehx_pseudokey_load(const char *path, struct ehx_pseudokey **out);
void ehx_pseudokey_free(struct ehx_pseudokey *k);
/* The same from 32 bytes in memory (tests and fuzzers). */
int ehx_pseudokey_raw(const unsigned char raw[32], struct ehx_pseudokey **out);

/* HMAC-SHA256(key, the 10 digits) into out. Returns 0 or EHX_ERR_CRYPTO. */
int ehx_pseudonym(const struct ehx_pseudokey *k, const char *nhs,
    unsigned char out[EHX_PSEUDONYM_LEN]);

/* HMAC-SHA256(key, len bytes) into out: the matching tokens (identity.h)
 * are made with this under the matching key, a file like the pseudonym
 * key. Returns 0. */
int ehx_keyed_hash(const struct ehx_pseudokey *k, const void *in, size_t len,
    unsigned char out[32]);

/* SHA-256 of len bytes. */
void ehx_sha256(const void *in, size_t len, unsigned char out[32]);

/*
 * Evidence at rest: the broker keeps signed envelopes (which name children
 * by NHS number) sealed with XChaCha20-Poly1305 under a key derived from
 * the pseudonym key, which lives outside the LMDB file, and bound to the
 * envelope's SHA-256 (ad). *out is a new buffer the caller frees.
 * EHX_ERR_CRYPTO when the sealed bytes were changed or the key differs.
 */
int ehx_evidence_seal(const struct ehx_pseudokey *k, const unsigned char ad[32],
    const void *in, size_t len, unsigned char **out, size_t *outlen);
int ehx_evidence_open(const struct ehx_pseudokey *k, const unsigned char ad[32],
    const void *in, size_t len, unsigned char **out, size_t *outlen);

#endif
