/*
 * test_vector — the test vectors of docs/PROTOCOL.md §11, recomputed with
 * the code that puts EHX on the wire.
 *
 * The expected bytes are not copied here: they are read from the hex blocks
 * of docs/PROTOCOL.md itself ("```hex NAME" … "```", '#' starts a comment),
 * so the document and the code cannot drift apart. The Body is built with
 * protobuf-c, signed with OpenSSL from the fixed RFC 8032 key, verified with
 * libehx (libsodium), wrapped in an Envelope, and opened again the way the
 * broker opens one. The library's own sealing (ehx_envelope_seal) must give
 * the same signature and the same Body bytes.
 *
 * Run from the repository root (docs/PROTOCOL.md is read relative to it;
 * EHX_PROTOCOL_MD overrides the path). On a mismatch, or with
 * EHX_VECTOR_PRINT=1, the computed values are printed in the document's
 * format.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "ehx.pb-c.h"
#include "ehx/crypto.h"
#include "ehx/err.h"
#include "ehx/identity.h"
#include "ehx/checkpoint.h"
#include "ehx/limits.h"
#include "ehx/merkle.h"
#include "ehx/nhs.h"
#include "ehx/util.h"
#include "ehx/wire.h"

#define DOC_DEFAULT "docs/PROTOCOL.md"
#define DOC_MAX (1024 * 1024)

/* The vector's inputs, as docs/PROTOCOL.md §11 states them in prose. */
static const unsigned char rfc8032_seed[32] = {
	0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4,
	0x92, 0xec, 0x2c, 0xc4, 0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19,
	0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60,
};
static const unsigned char rfc8032_pub[32] = {
	0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3,
	0xc9, 0x64, 0x07, 0x3a, 0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25,
	0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a,
};
static const unsigned char vec_msgid[EHX_MSGID_LEN] = {
	0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
};
#define VEC_SENDER     "police"
#define VEC_RECIPIENT  "broker"
#define VEC_SENT_AT    1767225600000LL   /* 2026-01-01T00:00:00Z */
#define VEC_USER_ID    "pc-101"
#define VEC_NAME       "PC Sam Jones"
#define VEC_NHS        "9434765919"
#define VEC_SIGNER_TEXT "ehx test vector certificate"

/* ---- the document ------------------------------------------------------ */

static char *doc;

static const char *
doc_path(void)
{
	const char *p = getenv("EHX_PROTOCOL_MD");

	return p != NULL && p[0] != '\0' ? p : DOC_DEFAULT;
}

static int
load_doc(void **state)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	int r;

	(void)state;
	if ((r = ehx_file_read(doc_path(), false, DOC_MAX, &buf, &len)) != 0) {
		fprintf(stderr, "test_vector: cannot read %s (%s); run from the "
		    "repository root\n", doc_path(), r == EHX_ERR_SYSTEM ?
		    strerror(errno) : ehx_strerror(r));
		return -1;
	}
	doc = (char *)buf;
	return 0;
}

static int
free_doc(void **state)
{
	(void)state;
	free(doc);
	doc = NULL;
	return 0;
}

static int
hexdigit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * The bytes of the block "```hex NAME" … "```" of the document: hex digits,
 * with spaces ignored and '#' starting a comment to the end of the line.
 * Returns a new buffer (the caller frees it) or NULL, with the reason
 * printed, if the block is missing or holds anything else.
 */
static unsigned char *
doc_hex(const char *name, size_t *outlen)
{
	char open[64];
	const char *p, *line;
	unsigned char *out;
	size_t n = 0, cap;
	int hi = -1;

	*outlen = 0;
	snprintf(open, sizeof(open), "```hex %s\n", name);
	for (p = doc; p != NULL; p = strchr(p, '\n')) {
		if (*p == '\n')
			p++;
		if (strncmp(p, open, strlen(open)) == 0)
			break;
	}
	if (p == NULL) {
		fprintf(stderr, "%s: no block \"```hex %s\"\n", doc_path(), name);
		return NULL;
	}
	line = p + strlen(open);
	cap = strlen(line) / 2 + 1;
	if ((out = malloc(cap)) == NULL)
		return NULL;
	for (p = line; *p != '\0'; p++) {
		int d;

		if (p == line || p[-1] == '\n') {
			if (strncmp(p, "```", 3) == 0)
				break;
		}
		if (*p == '#') {
			while (*p != '\0' && *p != '\n')
				p++;
			if (*p == '\0')
				break;
			continue;
		}
		if (*p == ' ' || *p == '\t' || *p == '\n')
			continue;
		if ((d = hexdigit((unsigned char)*p)) < 0) {
			fprintf(stderr, "%s: block %s: '%c' is not a hex digit\n",
			    doc_path(), name, *p);
			free(out);
			return NULL;
		}
		if (hi < 0)
			hi = d;
		else {
			out[n++] = (unsigned char)(hi << 4 | d);
			hi = -1;
		}
	}
	if (*p == '\0' || hi >= 0 || n == 0) {
		fprintf(stderr, "%s: block %s is %s\n", doc_path(), name,
		    *p == '\0' ? "not closed" : hi >= 0 ? "an odd number of "
		    "hex digits" : "empty");
		free(out);
		return NULL;
	}
	*outlen = n;
	return out;
}

static void
print_hex(const char *name, const unsigned char *b, size_t len)
{
	fprintf(stderr, "computed (%zu bytes):\n```hex %s\n", len, name);
	for (size_t i = 0; i < len; i++)
		fprintf(stderr, "%02x%s", b[i], i % 32 == 31 || i + 1 == len ?
		    "\n" : "");
	fprintf(stderr, "```\n");
}

/* Fail unless the document's block NAME holds exactly these bytes. */
static void
expect_doc(const char *name, const unsigned char *b, size_t len)
{
	unsigned char *want;
	size_t wlen;
	const char *env = getenv("EHX_VECTOR_PRINT");
	bool same;

	want = doc_hex(name, &wlen);
	same = want != NULL && wlen == len && memcmp(want, b, len) == 0;
	if (!same || (env != NULL && strcmp(env, "1") == 0)) {
		if (!same)
			fprintf(stderr, "%s: block %s differs from what the code "
			    "computes\n", doc_path(), name);
		print_hex(name, b, len);
	}
	free(want);
	if (!same)
		fail_msg("docs/PROTOCOL.md vector %s is wrong", name);
}

/* ---- building the vector ------------------------------------------------- */

struct vector {
	unsigned char pub[EHX_KEY_LEN];
	unsigned char *body;
	size_t body_len;
	unsigned char *msg;             /* context ‖ body */
	size_t msg_len;
	unsigned char sig[EHX_SIG_LEN];
	unsigned char signer[EHX_FPR_LEN];
	unsigned char *env;
	size_t env_len;
};

static EVP_PKEY *
vector_key(void)
{
	EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL,
	    rfc8032_seed, sizeof(rfc8032_seed));

	assert_non_null(k);
	return k;
}

static void
vector_body_init(Ehx__Body *b, Ehx__Person *p, Ehx__QueryPicture *q)
{
	ehx__body__init(b);
	ehx__person__init(p);
	ehx__query_picture__init(q);
	p->user_id = (char *)VEC_USER_ID;
	p->name = (char *)VEC_NAME;
	p->role = EHX__ROLE__ROLE_PRACTITIONER;
	q->nhs_number = (char *)VEC_NHS;
	b->message_id.data = (uint8_t *)vec_msgid;
	b->message_id.len = sizeof(vec_msgid);
	b->sender = (char *)VEC_SENDER;
	b->recipient = (char *)VEC_RECIPIENT;
	b->sent_at = VEC_SENT_AT;
	b->person = p;
	b->payload_case = EHX__BODY__PAYLOAD_QUERY_PICTURE;
	b->query_picture = q;
}

static void
vector_build(struct vector *v)
{
	Ehx__Body b;
	Ehx__Person p;
	Ehx__QueryPicture q;
	Ehx__Envelope e = EHX__ENVELOPE__INIT;
	EVP_PKEY *k = vector_key();
	EVP_MD_CTX *ctx;
	size_t len = EHX_KEY_LEN;

	memset(v, 0, sizeof(*v));
	assert_int_equal(EVP_PKEY_get_raw_public_key(k, v->pub, &len), 1);
	assert_int_equal(len, EHX_KEY_LEN);

	vector_body_init(&b, &p, &q);
	v->body_len = ehx__body__get_packed_size(&b);
	assert_non_null(v->body = malloc(v->body_len));
	assert_int_equal(ehx__body__pack(&b, v->body), v->body_len);

	v->msg_len = EHX_SIGN_CONTEXT_LEN + v->body_len;
	assert_non_null(v->msg = malloc(v->msg_len));
	memcpy(v->msg, EHX_SIGN_CONTEXT, EHX_SIGN_CONTEXT_LEN);
	memcpy(v->msg + EHX_SIGN_CONTEXT_LEN, v->body, v->body_len);

	/* Pure Ed25519 (RFC 8032), no pre-hash: no digest in the init. */
	assert_non_null(ctx = EVP_MD_CTX_new());
	len = sizeof(v->sig);
	assert_int_equal(EVP_DigestSignInit(ctx, NULL, NULL, NULL, k), 1);
	assert_int_equal(EVP_DigestSign(ctx, v->sig, &len, v->msg,
	    v->msg_len), 1);
	assert_int_equal(len, EHX_SIG_LEN);
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(k);

	ehx_sha256(VEC_SIGNER_TEXT, strlen(VEC_SIGNER_TEXT), v->signer);

	e.version = EHX_PROTOCOL_VERSION;
	e.body.data = v->body;
	e.body.len = v->body_len;
	e.signer.data = v->signer;
	e.signer.len = sizeof(v->signer);
	e.signature.data = v->sig;
	e.signature.len = sizeof(v->sig);
	v->env_len = ehx__envelope__get_packed_size(&e);
	assert_non_null(v->env = malloc(v->env_len));
	assert_int_equal(ehx__envelope__pack(&e, v->env), v->env_len);
}

static void
vector_free(struct vector *v)
{
	free(v->body);
	free(v->msg);
	free(v->env);
	memset(v, 0, sizeof(*v));
}

/* ---- the tests ----------------------------------------------------------- */

static void
test_key(void **state)
{
	struct vector v;

	(void)state;
	vector_build(&v);
	expect_doc("seed", rfc8032_seed, sizeof(rfc8032_seed));
	assert_memory_equal(v.pub, rfc8032_pub, sizeof(rfc8032_pub));
	expect_doc("public_key", v.pub, sizeof(v.pub));
	vector_free(&v);
}

static void
test_body(void **state)
{
	struct vector v;
	Ehx__Body *b = NULL;
	char why[128];

	(void)state;
	vector_build(&v);
	expect_doc("body", v.body, v.body_len);

	/* It is a Body the broker accepts as such. */
	assert_int_equal(ehx_body_decode(v.body, v.body_len, &b, why,
	    sizeof(why)), 0);
	assert_memory_equal(b->message_id.data, vec_msgid, EHX_MSGID_LEN);
	assert_string_equal(b->sender, VEC_SENDER);
	assert_string_equal(b->recipient, VEC_RECIPIENT);
	assert_true(b->sent_at == VEC_SENT_AT);
	assert_non_null(b->person);
	assert_string_equal(b->person->user_id, VEC_USER_ID);
	assert_string_equal(b->person->name, VEC_NAME);
	assert_int_equal(b->person->role, EHX__ROLE__ROLE_PRACTITIONER);
	assert_int_equal(b->in_reply_to.len, 0);
	assert_int_equal(b->payload_case, EHX__BODY__PAYLOAD_QUERY_PICTURE);
	assert_string_equal(b->query_picture->nhs_number, VEC_NHS);
	ehx_body_free(b);
	vector_free(&v);
}

static void
test_signed_message(void **state)
{
	static const unsigned char ctx[16] = "EHX-ENVELOPE-V1";
	struct vector v;

	(void)state;
	vector_build(&v);
	/* 15 ASCII characters and one zero byte. */
	assert_int_equal(EHX_SIGN_CONTEXT_LEN, 16);
	assert_int_equal(ctx[15], 0);
	assert_memory_equal(EHX_SIGN_CONTEXT, ctx, sizeof(ctx));
	expect_doc("context", ctx, sizeof(ctx));
	expect_doc("signed_message", v.msg, v.msg_len);
	vector_free(&v);
}

static void
test_signature(void **state)
{
	struct vector v;

	(void)state;
	vector_build(&v);
	expect_doc("signature", v.sig, sizeof(v.sig));
	assert_int_equal(ehx_ed25519_verify(v.pub, v.msg, v.msg_len, v.sig), 0);

	/* Any flipped bit of the message or the signature fails. */
	for (size_t i = 0; i < v.msg_len; i++) {
		v.msg[i] ^= 0x01;
		assert_int_equal(ehx_ed25519_verify(v.pub, v.msg, v.msg_len,
		    v.sig), EHX_ERR_BAD_SIGNATURE);
		v.msg[i] ^= 0x01;
	}
	for (size_t i = 0; i < sizeof(v.sig); i++) {
		v.sig[i] ^= 0x80;
		assert_int_equal(ehx_ed25519_verify(v.pub, v.msg, v.msg_len,
		    v.sig), EHX_ERR_BAD_SIGNATURE);
		v.sig[i] ^= 0x80;
	}
	/* The body alone, or with the context but not its zero byte, fails. */
	assert_int_equal(ehx_ed25519_verify(v.pub, v.body, v.body_len, v.sig),
	    EHX_ERR_BAD_SIGNATURE);
	{
		unsigned char *m = malloc(v.msg_len - 1);

		assert_non_null(m);
		memcpy(m, v.msg, 15);
		memcpy(m + 15, v.body, v.body_len);
		assert_int_equal(ehx_ed25519_verify(v.pub, m, v.msg_len - 1,
		    v.sig), EHX_ERR_BAD_SIGNATURE);
		free(m);
	}
	/* Another key fails. */
	v.pub[0] ^= 0x01;
	assert_int_equal(ehx_ed25519_verify(v.pub, v.msg, v.msg_len, v.sig),
	    EHX_ERR_BAD_SIGNATURE);
	vector_free(&v);
}

static void
test_envelope(void **state)
{
	static const char text[] = VEC_SIGNER_TEXT;
	struct vector v;
	Ehx__Envelope *e = NULL;
	Ehx__Body *b = NULL;
	char why[128];

	(void)state;
	vector_build(&v);
	expect_doc("signer_input", (const unsigned char *)text,
	    sizeof(text) - 1);
	expect_doc("signer", v.signer, sizeof(v.signer));
	expect_doc("envelope", v.env, v.env_len);

	/* Opened the way the broker opens it. */
	assert_int_equal(ehx_envelope_decode(v.env, v.env_len, &e), 0);
	assert_int_equal(e->version, 1);
	assert_int_equal(e->body.len, v.body_len);
	assert_memory_equal(e->body.data, v.body, v.body_len);
	assert_int_equal(e->signer.len, EHX_FPR_LEN);
	assert_memory_equal(e->signer.data, v.signer, EHX_FPR_LEN);
	assert_int_equal(ehx_envelope_verify(e, v.pub), 0);
	assert_int_equal(ehx_body_decode(e->body.data, e->body.len, &b, why,
	    sizeof(why)), 0);
	assert_string_equal(b->sender, VEC_SENDER);
	assert_string_equal(b->query_picture->nhs_number, VEC_NHS);
	ehx_body_free(b);
	ehx_envelope_free(e);
	vector_free(&v);
}

/* Where the signer's 32 bytes sit in the packed envelope. */
static size_t
signer_offset(const struct vector *v)
{
	for (size_t i = 0; i + EHX_FPR_LEN <= v->env_len; i++)
		if (memcmp(v->env + i, v->signer, EHX_FPR_LEN) == 0)
			return i;
	fail_msg("the signer is not in the envelope");
	return 0;
}

static void
test_envelope_tampered(void **state)
{
	struct vector v;
	Ehx__Envelope *e = NULL;
	size_t soff, body_at = 0, rejected = 0;
	int r;

	(void)state;
	vector_build(&v);
	soff = signer_offset(&v);

	/* A flipped byte inside the body: decodes, but does not verify. */
	for (size_t i = 0; i + v.body_len <= v.env_len; i++)
		if (memcmp(v.env + i, v.body, v.body_len) == 0) {
			body_at = i;
			break;
		}
	assert_true(body_at > 0);
	v.env[body_at + v.body_len - 1] ^= 0x01;	/* the NHS number's last digit */
	assert_int_equal(ehx_envelope_decode(v.env, v.env_len, &e), 0);
	assert_int_equal(ehx_envelope_verify(e, v.pub), EHX_ERR_BAD_SIGNATURE);
	ehx_envelope_free(e);
	e = NULL;
	v.env[body_at + v.body_len - 1] ^= 0x01;

	/*
	 * Every single-bit change anywhere outside the signer field's value is
	 * refused: by the decoder (size, version, layout) or by the signature.
	 * The signer fingerprint is not signed; a changed one names another
	 * certificate (UNKNOWN_CERTIFICATE), or one whose key does not verify.
	 */
	for (size_t i = 0; i < v.env_len; i++)
		for (int bit = 0; bit < 8; bit++) {
			bool in_signer = i >= soff && i < soff + EHX_FPR_LEN;

			v.env[i] ^= (unsigned char)(1u << bit);
			r = ehx_envelope_decode(v.env, v.env_len, &e);
			if (r == 0)
				r = ehx_envelope_verify(e, v.pub);
			if (in_signer)
				assert_int_equal(r, 0);
			else {
				if (r == 0)
					fail_msg("envelope byte %zu bit %d "
					    "changed and still accepted", i, bit);
				rejected++;
			}
			ehx_envelope_free(e);
			e = NULL;
			v.env[i] ^= (unsigned char)(1u << bit);
		}
	assert_int_equal(rejected, 8 * (v.env_len - EHX_FPR_LEN));

	/* Truncated by one byte: refused. */
	r = ehx_envelope_decode(v.env, v.env_len - 1, &e);
	if (r == 0)
		r = ehx_envelope_verify(e, v.pub);
	assert_int_not_equal(r, 0);
	ehx_envelope_free(e);
	vector_free(&v);
}

/* ---- the library's own sealing gives the same bytes ---------------------- */

static char tmpdir[512];

static int
write_private_key(const char *path, EVP_PKEY *k)
{
	FILE *f;
	int fd, ok;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0600)) < 0)
		return -1;
	if ((f = fdopen(fd, "w")) == NULL) {
		close(fd);
		return -1;
	}
	ok = PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
	return fclose(f) == 0 && ok == 1 ? 0 : -1;
}

/* A self-signed certificate for the vector key, as an agency's would be. */
static int
write_certificate(const char *path, EVP_PKEY *k)
{
	X509 *x = X509_new();
	X509_NAME *n;
	FILE *f = NULL;
	int ok = 0;

	if (x == NULL)
		return -1;
	n = X509_get_subject_name(x);
	if (X509_set_version(x, 2) == 1 &&
	    ASN1_INTEGER_set(X509_get_serialNumber(x), 1) == 1 &&
	    X509_gmtime_adj(X509_getm_notBefore(x), -3600) != NULL &&
	    X509_gmtime_adj(X509_getm_notAfter(x), 86400) != NULL &&
	    X509_set_pubkey(x, k) == 1 &&
	    X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC,
	    (const unsigned char *)"EHX Partnership", -1, -1, 0) == 1 &&
	    X509_NAME_add_entry_by_txt(n, "OU", MBSTRING_ASC,
	    (const unsigned char *)"police", -1, -1, 0) == 1 &&
	    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
	    (const unsigned char *)VEC_SENDER, -1, -1, 0) == 1 &&
	    X509_set_issuer_name(x, n) == 1 &&
	    X509_sign(x, k, NULL) > 0 &&
	    (f = fopen(path, "w")) != NULL)
		ok = PEM_write_X509(f, x);
	if (f != NULL && fclose(f) != 0)
		ok = 0;
	X509_free(x);
	return ok == 1 ? 0 : -1;
}

static int
make_tmpdir(void **state)
{
	const char *base = getenv("EHX_TEST_TMP");

	(void)state;
	if (base == NULL || base[0] == '\0')
		base = getenv("TMPDIR");
	if (base == NULL || base[0] == '\0')
		base = "/tmp";
	snprintf(tmpdir, sizeof(tmpdir), "%s/ehx-vector.XXXXXX", base);
	return mkdtemp(tmpdir) != NULL ? 0 : -1;
}

static int
remove_tmpdir(void **state)
{
	char p[600];

	(void)state;
	snprintf(p, sizeof(p), "%s/vector.key", tmpdir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/vector.crt", tmpdir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/pseudonym.key", tmpdir);
	unlink(p);
	rmdir(tmpdir);
	return 0;
}

static void
test_library_seal(void **state)
{
	struct vector v;
	struct ehx_signer *s = NULL;
	EVP_PKEY *k;
	Ehx__Body b;
	Ehx__Person p;
	Ehx__QueryPicture q;
	Ehx__Envelope *e = NULL;
	unsigned char *out = NULL, *repacked;
	uint8_t *own;
	size_t outlen = 0, n;
	char keypath[600], certpath[600];

	(void)state;
	vector_build(&v);
	snprintf(keypath, sizeof(keypath), "%s/vector.key", tmpdir);
	snprintf(certpath, sizeof(certpath), "%s/vector.crt", tmpdir);
	k = vector_key();
	assert_int_equal(write_private_key(keypath, k), 0);
	assert_int_equal(write_certificate(certpath, k), 0);
	EVP_PKEY_free(k);
	assert_int_equal(ehx_signer_load(keypath, certpath, &s), 0);

	/* Seal the Body as the agent does: pack, sign, wrap. */
	vector_body_init(&b, &p, &q);
	assert_int_equal(ehx_envelope_seal(s, &b, &out, &outlen), 0);
	assert_int_equal(ehx_envelope_decode(out, outlen, &e), 0);
	assert_int_equal(e->body.len, v.body_len);
	assert_memory_equal(e->body.data, v.body, v.body_len);
	assert_memory_equal(e->signature.data, v.sig, EHX_SIG_LEN);
	assert_memory_equal(e->signer.data, ehx_signer_fpr(s), EHX_FPR_LEN);
	assert_int_equal(ehx_envelope_verify(e, v.pub), 0);

	/* With the vector's signer field instead, it is the vector envelope. */
	own = e->signer.data;
	e->signer.data = v.signer;
	n = ehx__envelope__get_packed_size(e);
	assert_int_equal(n, v.env_len);
	assert_non_null(repacked = malloc(n));
	ehx__envelope__pack(e, repacked);
	assert_memory_equal(repacked, v.env, v.env_len);
	e->signer.data = own;	/* put back what ehx_envelope_free frees */
	free(repacked);
	ehx_envelope_free(e);
	e = NULL;
	free(out);

	/* ehx_envelope_seal_bytes signs the given bytes as they are. */
	assert_int_equal(ehx_envelope_seal_bytes(s, v.body, v.body_len, &out,
	    &outlen), 0);
	assert_int_equal(ehx_envelope_decode(out, outlen, &e), 0);
	assert_memory_equal(e->signature.data, v.sig, EHX_SIG_LEN);
	ehx_envelope_free(e);
	free(out);
	ehx_signer_free(s);
	vector_free(&v);
}

/* ---- child pseudonyms and NHS numbers ------------------------------------- */

static void
test_pseudonym(void **state)
{
	static const char nhs_text[] = VEC_NHS;
	unsigned char *key, want[EHX_PSEUDONYM_LEN], got[EHX_PSEUDONYM_LEN];
	unsigned int wlen = 0;
	size_t klen;
	struct ehx_pseudokey *pk = NULL;
	char path[600], hex[2 * 32 + 2];
	int fd;

	(void)state;
	key = doc_hex("pseudonym_key", &klen);
	assert_non_null(key);
	assert_int_equal(klen, 32);
	for (size_t i = 0; i < klen; i++)
		assert_int_equal(key[i], i);	/* 00 01 … 1f, as §11 says */
	expect_doc("pseudonym_input", (const unsigned char *)nhs_text,
	    sizeof(nhs_text) - 1);
	assert_non_null(HMAC(EVP_sha256(), key, (int)klen,
	    (const unsigned char *)VEC_NHS, strlen(VEC_NHS), want, &wlen));
	assert_int_equal(wlen, EHX_PSEUDONYM_LEN);
	expect_doc("pseudonym", want, sizeof(want));

	/* The broker's own code, from a key file as the broker reads it. */
	snprintf(path, sizeof(path), "%s/pseudonym.key", tmpdir);
	assert_true((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0600)) >= 0);
	ehx_hex(hex, key, 32);
	strcat(hex, "\n");
	assert_int_equal(write(fd, hex, strlen(hex)), (ssize_t)strlen(hex));
	close(fd);
	assert_int_equal(ehx_pseudokey_load(path, &pk), 0);
	assert_int_equal(ehx_pseudonym(pk, VEC_NHS, got), 0);
	assert_memory_equal(got, want, sizeof(want));
	ehx_pseudokey_free(pk);
	free(key);
}

/* ---- matching tokens (§10.5, §11.9) ---------------------------------------- */

static void
test_match_tokens(void **state)
{
	static const char input[] = "EHX-MATCH-V1\0name\0OLIVER";
	static const enum ehx_feature order[] = { EHX_F_UPN, EHX_F_LOCAL,
	    EHX_F_GIVEN, EHX_F_GIVEN_PH, EHX_F_GIVEN_CANON, EHX_F_FAMILY,
	    EHX_F_FAMILY_PH, EHX_F_DOB, EHX_F_DOB_YM, EHX_F_DOB_YD,
	    EHX_F_DOB_MD, EHX_F_SEX, EHX_F_POSTCODE, EHX_F_SECTOR, EHX_F_UPRN };
	Ehx__ChildIdentity id;
	struct ehx_tokens *t;
	struct ehx_pseudokey *pk = NULL;
	unsigned char *key, mac[32], got[sizeof(order) / sizeof(order[0]) *
	    EHX_TOKEN_LEN];
	unsigned int mlen = 0;
	size_t klen, n = 0;
	char path[600], hex[2 * 32 + 2], why[128];
	int fd;

	(void)state;
	key = doc_hex("pseudonym_key", &klen);
	assert_non_null(key);
	expect_doc("match_input_given", (const unsigned char *)input,
	    sizeof(input) - 1);
	/* the given name's token, by OpenSSL's HMAC over the input block */
	assert_non_null(HMAC(EVP_sha256(), key, (int)klen,
	    (const unsigned char *)input, sizeof(input) - 1, mac, &mlen));
	snprintf(path, sizeof(path), "%s/matching.key", tmpdir);
	assert_true((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0600)) >= 0);
	ehx_hex(hex, key, 32);
	strcat(hex, "\n");
	assert_int_equal(write(fd, hex, strlen(hex)), (ssize_t)strlen(hex));
	close(fd);
	assert_int_equal(ehx_pseudokey_load(path, &pk), 0);
	ehx__child_identity__init(&id);
	id.upn = "B801200005001";
	id.local_id = "P-1234";
	id.given_name = "Oliver";
	id.family_name = "O'Brien";
	id.date_of_birth = "2016-03-04";
	id.sex = EHX__SEX__SEX_MALE;
	id.postcode = "yo31 0ab";
	id.uprn = "010023118876";
	assert_int_equal(ehx_validate_identity(&id, 1796731200000LL, why,
	    sizeof(why)), 0);
	assert_non_null(t = calloc(1, sizeof(*t)));
	assert_int_equal(ehx_identity_tokens(pk, "nyp-police", &id, t), 0);
	assert_memory_equal(t->tok[EHX_F_GIVEN][0], mac, EHX_TOKEN_LEN);
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		assert_int_equal(t->n[order[i]], 1);
		memcpy(got + n, t->tok[order[i]][0], EHX_TOKEN_LEN);
		n += EHX_TOKEN_LEN;
	}
	assert_int_equal(t->n[EHX_F_NHS], 0);
	expect_doc("match_tokens", got, n);
	assert_int_equal(t->n[EHX_F_GIVEN_DEL], 7);
	expect_doc("match_given_del", t->tok[EHX_F_GIVEN_DEL][0],
	    7 * EHX_TOKEN_LEN);
	assert_int_equal(t->n[EHX_F_FAMILY_DEL], 7);    /* OBRIEN */
	assert_true(t->has_dob_swapped);
	expect_doc("match_dob_swapped", t->dob_swapped, EHX_TOKEN_LEN);
	free(t);
	ehx_pseudokey_free(pk);
	free(key);
}

static void
test_nhs_numbers(void **state)
{
	char n[11];

	(void)state;
	/* 9×10 + 4×9 + 3×8 + 4×7 + 7×6 + 6×5 + 5×4 + 9×3 + 1×2 = 299;
	 * 299 mod 11 = 2; 11 − 2 = 9. */
	assert_true(ehx_nhs_valid("9434765919"));
	assert_false(ehx_nhs_valid("9434765918"));
	/* Remainder 0: 11 − 0 = 11, written 0. */
	assert_true(ehx_nhs_valid("9434765870"));
	/* 1×10 + 2×9 + … + 9×2 = 210, remainder 1, 11 − 1 = 10: no check
	 * digit is possible, so no 123456789x is an NHS number. */
	for (int d = 0; d <= 9; d++) {
		snprintf(n, sizeof(n), "123456789%d", d);
		assert_false(ehx_nhs_valid(n));
	}
	assert_false(ehx_nhs_valid("943476591"));
	assert_false(ehx_nhs_valid("94347659190"));
	assert_false(ehx_nhs_valid("943 476 5919"));
	assert_false(ehx_nhs_valid("943476591a"));
}

/* ---- §14: the Merkle tree, checkpoints and cosignatures ------------------ */

static unsigned char mnodes[4][8][32];

static int
mget(void *ctx, unsigned l, uint64_t i, unsigned char out[32])
{
	(void)ctx;
	if (l >= 4 || i >= 8)
		return EHX_ERR_STORAGE;
	memcpy(out, mnodes[l][i], 32);
	return 0;
}

static int
mput(void *ctx, unsigned l, uint64_t i, const unsigned char h[32])
{
	(void)ctx;
	if (l >= 4 || i >= 8)
		return EHX_ERR_STORAGE;
	memcpy(mnodes[l][i], h, 32);
	return 0;
}

static void
test_merkle_vectors(void **state)
{
	static const unsigned char d[] = { 0x00, 0x10, 0x20, 0x21, 0x30, 0x31,
	    0x40, 0x41, 0x42, 0x43, 0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56,
	    0x57, 0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69,
	    0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f };
	static const size_t off[8] = { 0, 0, 1, 2, 4, 6, 10, 18 };
	static const size_t len[8] = { 0, 1, 1, 2, 2, 4, 8, 16 };
	unsigned char leaf[32], root[32], path[EHX_MERKLE_MAX_PROOF][32];
	size_t n;

	(void)state;
	for (uint64_t i = 0; i < 8; i++) {
		ehx_merkle_leaf_hash(d + off[i], len[i], leaf);
		assert_int_equal(ehx_merkle_append(mget, mput, NULL, i, leaf), 0);
	}
	assert_int_equal(ehx_merkle_root(mget, NULL, 8, root), 0);
	expect_doc("merkle_root_8", root, 32);
	assert_int_equal(ehx_merkle_consistency_proof(mget, NULL, 3, 8, path,
	    EHX_MERKLE_MAX_PROOF, &n), 0);
	expect_doc("merkle_consistency_3_8", &path[0][0], n * 32);
	assert_int_equal(ehx_merkle_inclusion_proof(mget, NULL, 2, 8, path,
	    EHX_MERKLE_MAX_PROOF, &n), 0);
	expect_doc("merkle_inclusion_2_8", &path[0][0], n * 32);
}

static void
put64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (unsigned char)v;
		v >>= 8;
	}
}

static void
sign_raw(const unsigned char *m, size_t n, unsigned char sig[64])
{
	EVP_PKEY *k = vector_key();
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	size_t sl = 64;

	assert_non_null(c);
	assert_int_equal(EVP_DigestSignInit(c, NULL, NULL, NULL, k), 1);
	assert_int_equal(EVP_DigestSign(c, sig, &sl, m, n), 1);
	EVP_MD_CTX_free(c);
	EVP_PKEY_free(k);
}

static void
test_checkpoint_vectors(void **state)
{
	Ehx__Checkpoint cp = EHX__CHECKPOINT__INIT;
	Ehx__Cosignature cs = EHX__COSIGNATURE__INIT;
	unsigned char m[128], root[32], sig[64], csig[64], *p;
	size_t n;

	(void)state;
	/* The prose of §14.2: origin "broker", size 8, §14.1's root, time
	 * 1767225600000; cosigned at 1767225601000. */
	test_merkle_vectors(state);
	assert_int_equal(ehx_merkle_root(mget, NULL, 8, root), 0);
	p = m;
	memcpy(p, "EHX-CHECKPOINT-V1", 18);     /* with its 0x00 */
	p += 18;
	memcpy(p, "broker", 7);
	p += 7;
	put64(p, 8);
	p += 8;
	memcpy(p, root, 32);
	p += 32;
	put64(p, 1767225600000ULL);
	p += 8;
	n = (size_t)(p - m);
	expect_doc("checkpoint_signed", m, n);
	sign_raw(m, n, sig);
	expect_doc("checkpoint_signature", sig, 64);
	/* The library signs and checks those very bytes. */
	cp.origin = (char *)"broker";
	cp.size = 8;
	cp.root.data = root;
	cp.root.len = 32;
	cp.time = 1767225600000LL;
	cp.signature.data = sig;
	cp.signature.len = 64;
	assert_int_equal(ehx_checkpoint_verify(&cp, rfc8032_pub), 0);

	p = m;
	memcpy(p, "EHX-COSIGN-V1", 14);
	p += 14;
	memcpy(p, "broker", 7);
	p += 7;
	put64(p, 8);
	p += 8;
	memcpy(p, root, 32);
	p += 32;
	put64(p, 1767225600000ULL);
	p += 8;
	put64(p, 1767225601000ULL);
	p += 8;
	n = (size_t)(p - m);
	expect_doc("cosign_signed", m, n);
	sign_raw(m, n, csig);
	expect_doc("cosign_signature", csig, 64);
	cs.agency = (char *)"police";
	cs.time = 1767225601000LL;
	cs.signature.data = csig;
	cs.signature.len = 64;
	assert_int_equal(ehx_cosign_verify(&cp, &cs, rfc8032_pub), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key),
		cmocka_unit_test(test_body),
		cmocka_unit_test(test_signed_message),
		cmocka_unit_test(test_signature),
		cmocka_unit_test(test_envelope),
		cmocka_unit_test(test_envelope_tampered),
		cmocka_unit_test_setup_teardown(test_library_seal, make_tmpdir,
		    remove_tmpdir),
		cmocka_unit_test_setup_teardown(test_pseudonym, make_tmpdir,
		    remove_tmpdir),
		cmocka_unit_test_setup_teardown(test_match_tokens, make_tmpdir,
		    remove_tmpdir),
		cmocka_unit_test(test_nhs_numbers),
		cmocka_unit_test(test_merkle_vectors),
		cmocka_unit_test(test_checkpoint_vectors),
	};

	return cmocka_run_group_tests_name("test_vector", tests, load_doc,
	    free_doc);
}
