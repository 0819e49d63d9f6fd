/*
 * test_wire — the Envelope (lib/wire.c): sealing with a real agency key
 * from certs/ehx-pki, and opening exact bytes the way the broker does:
 * size, decode, field sizes, signature over context ‖ body, then the Body's
 * own rules.
 */
#include "testutil.h"

#include "ehx.pb-c.h"
#include "ehx/crypto.h"
#include "ehx/err.h"
#include "ehx/limits.h"
#include "ehx/util.h"
#include "ehx/wire.h"

static char dir[PATH_MAX];
static struct ehx_signer *police, *health;

static int
setup_inner(void **state)
{
	const char *pki;
	char key[PATH_MAX], crt[PATH_MAX];

	(void)state;
	if ((pki = tu_pki()) == NULL || tu_mkdtemp(dir, sizeof(dir), "wire") != 0)
		return -1;
	if (tu_sh("'%s' ca '%s' >/dev/null && '%s' agency '%s' police police "
	    ">/dev/null && '%s' agency '%s' health health >/dev/null", pki, dir,
	    pki, dir, pki, dir) != 0)
		return -1;
	snprintf(key, sizeof(key), "%s/agencies/police/police.key", dir);
	snprintf(crt, sizeof(crt), "%s/agencies/police/police.crt", dir);
	if (ehx_signer_load(key, crt, &police) != 0)
		return -1;
	snprintf(key, sizeof(key), "%s/agencies/health/health.key", dir);
	snprintf(crt, sizeof(crt), "%s/agencies/health/health.crt", dir);
	if (ehx_signer_load(key, crt, &health) != 0)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	ehx_signer_free(police);
	ehx_signer_free(health);
	tu_rmtree(dir);
	return 0;
}

static const unsigned char msgid[EHX_MSGID_LEN] = {
	0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
	0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
};

/* The parts of a publish request, filled into caller-owned structs. */
struct req {
	Ehx__Body body;
	Ehx__Person person;
	Ehx__PublishFlag pf;
	Ehx__Practitioner pr;
};

static void
req_init(struct req *r)
{
	ehx__body__init(&r->body);
	ehx__person__init(&r->person);
	ehx__publish_flag__init(&r->pf);
	ehx__practitioner__init(&r->pr);
	r->body.message_id.data = (uint8_t *)msgid;
	r->body.message_id.len = sizeof(msgid);
	r->body.sender = "police";
	r->body.recipient = "broker";
	r->body.sent_at = 1767225600000LL;
	r->person.user_id = "pc-101";
	r->person.name = "PC Sam Jones";
	r->person.role = EHX__ROLE__ROLE_PRACTITIONER;
	r->body.person = &r->person;
	r->pr.name = "PC Sam Jones";
	r->pf.nhs_number = "9434765919";
	r->pf.ref = "CASE-1";
	r->pf.category = EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE;
	r->pf.level = 3;
	r->pf.practitioner = &r->pr;
	r->pf.note = "note";
	r->body.payload_case = EHX__BODY__PAYLOAD_PUBLISH_FLAG;
	r->body.publish_flag = &r->pf;
}

/* Pack any Envelope given by its fields. The caller frees *out. */
static size_t
pack_envelope(uint32_t version, const void *body, size_t blen,
    const void *signer, size_t slen, const void *sig, size_t siglen,
    unsigned char **out)
{
	Ehx__Envelope e = EHX__ENVELOPE__INIT;
	size_t n;

	e.version = version;
	e.body.data = (uint8_t *)body;
	e.body.len = blen;
	e.signer.data = (uint8_t *)signer;
	e.signer.len = slen;
	e.signature.data = (uint8_t *)sig;
	e.signature.len = siglen;
	n = ehx__envelope__get_packed_size(&e);
	*out = malloc(n ? n : 1);
	assert_non_null(*out);
	ehx__envelope__pack(&e, *out);
	return n;
}

/* Pack a Body. The caller frees *out. */
static size_t
pack_body(const Ehx__Body *b, unsigned char **out)
{
	size_t n = ehx__body__get_packed_size(b);

	*out = malloc(n ? n : 1);
	assert_non_null(*out);
	ehx__body__pack(b, *out);
	return n;
}

static void
test_round_trip(void **state)
{
	struct req r;
	unsigned char *frame = NULL, *copy;
	size_t len = 0;
	Ehx__Envelope *e = NULL;
	Ehx__Body *b = NULL;
	char why[128];

	(void)state;
	req_init(&r);
	assert_int_equal(ehx_envelope_seal(police, &r.body, &frame, &len), 0);
	assert_true(len > 0 && len <= EHX_MAX_MESSAGE);
	/* Decode from a copy we then destroy: nothing points into it. */
	copy = malloc(len);
	memcpy(copy, frame, len);
	assert_int_equal(ehx_envelope_decode(copy, len, &e), 0);
	memset(copy, 0xa5, len);
	free(copy);
	assert_int_equal(e->version, EHX_PROTOCOL_VERSION);
	assert_int_equal(e->signer.len, EHX_FPR_LEN);
	assert_memory_equal(e->signer.data, ehx_signer_fpr(police), EHX_FPR_LEN);
	assert_int_equal(e->signature.len, EHX_SIG_LEN);
	assert_int_equal(ehx_envelope_verify(e,
	    ehx_cert_pubkey(ehx_signer_cert(police))), 0);
	/* The signature is over "EHX-ENVELOPE-V1\0" ‖ body, exactly. */
	{
		unsigned char *m = malloc(EHX_SIGN_CONTEXT_LEN + e->body.len);

		memcpy(m, "EHX-ENVELOPE-V1", 16);
		memcpy(m + 16, e->body.data, e->body.len);
		assert_int_equal(ehx_ed25519_verify(ehx_cert_pubkey(
		    ehx_signer_cert(police)), m, 16 + e->body.len,
		    e->signature.data), 0);
		/* Without the context it does not verify. */
		assert_int_equal(ehx_ed25519_verify(ehx_cert_pubkey(
		    ehx_signer_cert(police)), m + 16, e->body.len,
		    e->signature.data), EHX_ERR_BAD_SIGNATURE);
		free(m);
	}
	/* The Body bytes are the ones ehx__body__pack gives. */
	{
		unsigned char *bb;
		size_t bl = pack_body(&r.body, &bb);

		assert_int_equal(e->body.len, bl);
		assert_memory_equal(e->body.data, bb, bl);
		free(bb);
	}
	assert_int_equal(ehx_body_decode(e->body.data, e->body.len, &b, why,
	    sizeof(why)), 0);
	assert_string_equal(why, "");
	assert_memory_equal(b->message_id.data, msgid, EHX_MSGID_LEN);
	assert_string_equal(b->sender, "police");
	assert_string_equal(b->recipient, "broker");
	assert_int_equal(b->sent_at, 1767225600000LL);
	assert_int_equal(b->in_reply_to.len, 0);
	assert_non_null(b->person);
	assert_string_equal(b->person->user_id, "pc-101");
	assert_int_equal(b->person->role, EHX__ROLE__ROLE_PRACTITIONER);
	assert_int_equal(b->payload_case, EHX__BODY__PAYLOAD_PUBLISH_FLAG);
	assert_string_equal(b->publish_flag->nhs_number, "9434765919");
	assert_string_equal(b->publish_flag->ref, "CASE-1");
	assert_int_equal(b->publish_flag->level, 3);
	assert_string_equal(b->publish_flag->practitioner->name, "PC Sam Jones");
	assert_string_equal(b->publish_flag->note, "note");
	ehx_body_free(b);
	/* Another agency's key does not verify it. */
	assert_int_equal(ehx_envelope_verify(e,
	    ehx_cert_pubkey(ehx_signer_cert(health))), EHX_ERR_BAD_SIGNATURE);
	ehx_envelope_free(e);
	free(frame);
	ehx_envelope_free(NULL);
	ehx_body_free(NULL);
}

static void
test_seal_limits(void **state)
{
	unsigned char *big, *out = (unsigned char *)1;
	size_t outlen = 7;
	Ehx__Envelope *e = NULL;

	(void)state;
	big = calloc(1, EHX_MAX_BODY + 1);
	assert_non_null(big);
	assert_int_equal(ehx_envelope_seal_bytes(police, big, EHX_MAX_BODY + 1,
	    &out, &outlen), EHX_ERR_TOO_LARGE);
	assert_null(out);
	assert_int_equal(outlen, 0);
	/* The largest body seals into a frame within the limit, and opens. */
	memset(big, 'x', EHX_MAX_BODY);
	assert_int_equal(ehx_envelope_seal_bytes(police, big, EHX_MAX_BODY,
	    &out, &outlen), 0);
	assert_true(outlen <= EHX_MAX_MESSAGE);
	assert_int_equal(ehx_envelope_decode(out, outlen, &e), 0);
	assert_int_equal(e->body.len, EHX_MAX_BODY);
	assert_int_equal(ehx_envelope_verify(e,
	    ehx_cert_pubkey(ehx_signer_cert(police))), 0);
	ehx_envelope_free(e);
	free(out);
	/* A Body that packs too large is refused by seal too. */
	{
		struct req r;

		req_init(&r);
		memset(big, 'n', EHX_MAX_BODY);
		big[EHX_MAX_BODY] = '\0';
		r.pf.note = (char *)big;
		assert_int_equal(ehx_envelope_seal(police, &r.body, &out,
		    &outlen), EHX_ERR_TOO_LARGE);
		assert_null(out);
	}
	free(big);
}

static void
test_decode_sizes(void **state)
{
	unsigned char *buf, *frame;
	unsigned char fpr[EHX_FPR_LEN + 1] = { 0 }, sig[EHX_SIG_LEN + 1] = { 0 };
	Ehx__Envelope *e = (Ehx__Envelope *)1;
	size_t n;

	(void)state;
	/* One byte over the limit, whatever it holds, is not even decoded. */
	buf = calloc(1, EHX_MAX_MESSAGE + 1);
	assert_int_equal(ehx_envelope_decode(buf, EHX_MAX_MESSAGE + 1, &e),
	    EHX_ERR_TOO_LARGE);
	assert_null(e);
	assert_int_equal(ehx_envelope_decode(buf, SIZE_MAX, &e),
	    EHX_ERR_TOO_LARGE);
	free(buf);
	/* Nothing at all. */
	assert_int_equal(ehx_envelope_decode("", 0, &e), EHX_ERR_MALFORMED);
	/* A frame within the limit carrying a body over EHX_MAX_BODY. */
	buf = calloc(1, EHX_MAX_BODY + 1);
	n = pack_envelope(1, buf, EHX_MAX_BODY + 1, fpr, EHX_FPR_LEN, sig,
	    EHX_SIG_LEN, &frame);
	assert_true(n <= EHX_MAX_MESSAGE);
	assert_int_equal(ehx_envelope_decode(frame, n, &e), EHX_ERR_TOO_LARGE);
	assert_null(e);
	free(frame);
	free(buf);
	/* Wrong field sizes. */
	static const size_t bad[][3] = {
		/* body, signer, signature */
		{ 0, EHX_FPR_LEN, EHX_SIG_LEN },
		{ 5, 0, EHX_SIG_LEN },
		{ 5, EHX_FPR_LEN - 1, EHX_SIG_LEN },
		{ 5, EHX_FPR_LEN + 1, EHX_SIG_LEN },
		{ 5, EHX_FPR_LEN, 0 },
		{ 5, EHX_FPR_LEN, EHX_SIG_LEN - 1 },
		{ 5, EHX_FPR_LEN, EHX_SIG_LEN + 1 },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		n = pack_envelope(1, "hello", bad[i][0], fpr, bad[i][1], sig,
		    bad[i][2], &frame);
		if (ehx_envelope_decode(frame, n, &e) != EHX_ERR_MALFORMED)
			fail_msg("sizes %zu/%zu/%zu accepted", bad[i][0],
			    bad[i][1], bad[i][2]);
		assert_null(e);
		free(frame);
	}
	/* The right sizes decode. */
	n = pack_envelope(1, "hello", 5, fpr, EHX_FPR_LEN, sig, EHX_SIG_LEN,
	    &frame);
	assert_int_equal(ehx_envelope_decode(frame, n, &e), 0);
	assert_memory_equal(e->body.data, "hello", 5);
	/* ... but a signature of zeros does not verify. */
	assert_int_equal(ehx_envelope_verify(e,
	    ehx_cert_pubkey(ehx_signer_cert(police))), EHX_ERR_BAD_SIGNATURE);
	ehx_envelope_free(e);
	free(frame);
}

static void
test_decode_version_and_junk(void **state)
{
	static const unsigned char junk[][8] = {
		{ 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff },
		{ 0x12, 0x7f, 0x00 },                 /* body longer than the frame */
		{ 0x0a },                             /* a tag with no value */
		{ 0x08, 0x80 },                       /* a truncated varint */
		{ 0x07, 0x01 },                       /* wire type 7 */
	};
	static const size_t junklen[] = { 8, 3, 1, 2, 2 };
	unsigned char fpr[EHX_FPR_LEN] = { 0 }, sig[EHX_SIG_LEN] = { 0 };
	unsigned char *frame;
	Ehx__Envelope *e = (Ehx__Envelope *)1;
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof(junklen) / sizeof(junklen[0]); i++) {
		if (ehx_envelope_decode(junk[i], junklen[i], &e) !=
		    EHX_ERR_MALFORMED)
			fail_msg("junk #%zu accepted", i);
		assert_null(e);
	}
	n = pack_envelope(2, "hello", 5, fpr, EHX_FPR_LEN, sig, EHX_SIG_LEN,
	    &frame);
	assert_int_equal(ehx_envelope_decode(frame, n, &e), EHX_ERR_BAD_VERSION);
	assert_null(e);
	free(frame);
	n = pack_envelope(0, "hello", 5, fpr, EHX_FPR_LEN, sig, EHX_SIG_LEN,
	    &frame);
	assert_int_equal(ehx_envelope_decode(frame, n, &e), EHX_ERR_BAD_VERSION);
	free(frame);
	/* A real envelope cut short anywhere is refused. */
	{
		struct req r;
		unsigned char *full;
		size_t flen;

		req_init(&r);
		assert_int_equal(ehx_envelope_seal(police, &r.body, &full,
		    &flen), 0);
		for (size_t cut = 1; cut < flen; cut++) {
			int rc = ehx_envelope_decode(full, cut, &e);

			assert_int_not_equal(rc, 0);
			assert_null(e);
		}
		free(full);
	}
}

static void
test_verify_tampered(void **state)
{
	struct req r;
	unsigned char *frame;
	size_t len;
	Ehx__Envelope *e = NULL;
	const unsigned char *pub = ehx_cert_pubkey(ehx_signer_cert(police));

	(void)state;
	req_init(&r);
	assert_int_equal(ehx_envelope_seal(police, &r.body, &frame, &len), 0);
	assert_int_equal(ehx_envelope_decode(frame, len, &e), 0);
	for (size_t i = 0; i < e->body.len; i++) {
		e->body.data[i] ^= 0x01;
		assert_int_equal(ehx_envelope_verify(e, pub),
		    EHX_ERR_BAD_SIGNATURE);
		e->body.data[i] ^= 0x01;
	}
	e->signature.data[10] ^= 0x40;
	assert_int_equal(ehx_envelope_verify(e, pub), EHX_ERR_BAD_SIGNATURE);
	e->signature.data[10] ^= 0x40;
	assert_int_equal(ehx_envelope_verify(e, pub), 0);
	/* A signature field of the wrong size never verifies. */
	e->signature.len = EHX_SIG_LEN - 1;
	assert_int_equal(ehx_envelope_verify(e, pub), EHX_ERR_BAD_SIGNATURE);
	e->signature.len = EHX_SIG_LEN;
	ehx_envelope_free(e);
	free(frame);
}

/* ehx_body_decode on a Body packed from r. */
static int
decode_req(struct req *r, char *why, size_t whysz)
{
	unsigned char *buf;
	size_t n = pack_body(&r->body, &buf);
	Ehx__Body *b = (Ehx__Body *)1;
	int rc = ehx_body_decode(buf, n, &b, why, whysz);

	if (rc != 0)
		assert_null(b);
	ehx_body_free(b);
	free(buf);
	return rc;
}

static void
test_body_rules(void **state)
{
	unsigned char id5[5] = { 1, 2, 3, 4, 5 }, id17[17] = { 0 };
	struct req r;
	char why[128];

	(void)state;
	req_init(&r);
	assert_int_equal(decode_req(&r, why, sizeof(why)), 0);

	r.body.message_id.len = 15;
	assert_int_equal(decode_req(&r, why, sizeof(why)), EHX_ERR_MALFORMED);
	assert_non_null(strstr(why, "message_id"));
	r.body.message_id.data = id17;
	r.body.message_id.len = 17;
	assert_int_equal(decode_req(&r, why, sizeof(why)), EHX_ERR_MALFORMED);
	r.body.message_id.len = 0;
	assert_int_equal(decode_req(&r, why, sizeof(why)), EHX_ERR_MALFORMED);

	static const char *const bad_ids[] = { "", "Police", "police north",
	    "-police", "pol\xc3\xa9", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" };
	for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
		req_init(&r);
		r.body.sender = (char *)bad_ids[i];
		assert_int_equal(decode_req(&r, why, sizeof(why)),
		    EHX_ERR_MALFORMED);
		assert_non_null(strstr(why, "sender"));
		req_init(&r);
		r.body.recipient = (char *)bad_ids[i];
		assert_int_equal(decode_req(&r, why, sizeof(why)),
		    EHX_ERR_MALFORMED);
		assert_non_null(strstr(why, "recipient"));
	}

	req_init(&r);
	r.body.sent_at = 0;
	assert_int_equal(decode_req(&r, why, sizeof(why)), EHX_ERR_MALFORMED);
	assert_non_null(strstr(why, "sent_at"));
	r.body.sent_at = -1;
	assert_int_equal(decode_req(&r, why, sizeof(why)), EHX_ERR_MALFORMED);

	req_init(&r);
	r.body.payload_case = EHX__BODY__PAYLOAD__NOT_SET;
	assert_int_equal(decode_req(&r, why, sizeof(why)), EHX_ERR_MALFORMED);
	assert_non_null(strstr(why, "payload"));

	req_init(&r);
	r.body.in_reply_to.data = id5;
	r.body.in_reply_to.len = 5;
	assert_int_equal(decode_req(&r, why, sizeof(why)), EHX_ERR_MALFORMED);
	assert_non_null(strstr(why, "in_reply_to"));
	r.body.in_reply_to.data = (uint8_t *)msgid;
	r.body.in_reply_to.len = 16;
	assert_int_equal(decode_req(&r, why, sizeof(why)), 0);

	/* A Body without a person still decodes (the pipeline checks it). */
	req_init(&r);
	r.body.person = NULL;
	assert_int_equal(decode_req(&r, why, sizeof(why)), 0);

	/* why may be left out. */
	req_init(&r);
	r.body.sent_at = 0;
	assert_int_equal(decode_req(&r, NULL, 0), EHX_ERR_MALFORMED);
}

static void
test_body_bytes(void **state)
{
	Ehx__Body *b = (Ehx__Body *)1;
	char why[128];
	unsigned char *big;

	(void)state;
	assert_int_equal(ehx_body_decode("", 0, &b, why, sizeof(why)),
	    EHX_ERR_MALFORMED);
	assert_null(b);
	assert_int_equal(ehx_body_decode("\xff\xff\xff", 3, &b, why,
	    sizeof(why)), EHX_ERR_MALFORMED);
	assert_true(strlen(why) > 0);
	big = calloc(1, EHX_MAX_BODY + 1);
	assert_int_equal(ehx_body_decode(big, EHX_MAX_BODY + 1, &b, why,
	    sizeof(why)), EHX_ERR_MALFORMED);
	free(big);
	/* A real Body cut short anywhere is refused. */
	{
		struct req r;
		unsigned char *buf;
		size_t n;

		req_init(&r);
		n = pack_body(&r.body, &buf);
		for (size_t cut = 1; cut < n; cut++) {
			assert_int_not_equal(ehx_body_decode(buf, cut, &b, NULL,
			    0), 0);
			assert_null(b);
		}
		free(buf);
	}
}

static void
test_payload_names(void **state)
{
	static const struct {
		int c;
		const char *name;
		int request;
	} p[] = {
		{ EHX__BODY__PAYLOAD_PUBLISH_FLAG, "publish_flag", 1 },
		{ EHX__BODY__PAYLOAD_CLOSE_FLAG, "close_flag", 1 },
		{ EHX__BODY__PAYLOAD_RECORD_CONSENT, "record_consent", 1 },
		{ EHX__BODY__PAYLOAD_WITHDRAW_CONSENT, "withdraw_consent", 1 },
		{ EHX__BODY__PAYLOAD_QUERY_PICTURE, "query_picture", 1 },
		{ EHX__BODY__PAYLOAD_QUERY_CONSENT, "query_consent", 1 },
		{ EHX__BODY__PAYLOAD_ACK, "ack", 0 },
		{ EHX__BODY__PAYLOAD_ERROR, "error", 0 },
		{ EHX__BODY__PAYLOAD_PICTURE, "picture", 0 },
		{ EHX__BODY__PAYLOAD_CONSENT, "consent", 0 },
		{ EHX__BODY__PAYLOAD__NOT_SET, "none", 0 },
		{ 99, "none", 0 },
		{ -1, "none", 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(p) / sizeof(p[0]); i++) {
		assert_string_equal(ehx_payload_name(p[i].c), p[i].name);
		assert_int_equal(ehx_payload_is_request(p[i].c), p[i].request);
	}
}

/* A setup that fails half-way leaves nothing behind. */
static int
setup(void **state)
{
	if (setup_inner(state) != 0) {
		teardown(state);
		return -1;
	}
	return 0;
}

/* Fields the schema does not define, anywhere in a Body, are refused. */
static void
test_unknown_fields(void **state)
{
	ProtobufCMessageUnknownField uf;
	uint8_t val[4] = { 3, 'a', 'b', 'c' };  /* the length, then bytes */
	struct req r;
	char why[128];

	(void)state;
	memset(&uf, 0, sizeof(uf));
	uf.tag = 1000;
	uf.wire_type = PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED;
	uf.len = sizeof(val);
	uf.data = val;
	req_init(&r);
	r.body.base.n_unknown_fields = 1;
	r.body.base.unknown_fields = &uf;
	assert_int_equal(decode_req(&r, why, sizeof(why)), EHX_ERR_MALFORMED);
	assert_non_null(strstr(why, "does not define"));
	req_init(&r);
	r.person.base.n_unknown_fields = 1;
	r.person.base.unknown_fields = &uf;
	assert_int_equal(decode_req(&r, why, sizeof(why)), EHX_ERR_MALFORMED);
	req_init(&r);
	r.pr.base.n_unknown_fields = 1;         /* three levels down */
	r.pr.base.unknown_fields = &uf;
	assert_int_equal(decode_req(&r, why, sizeof(why)), EHX_ERR_MALFORMED);
	req_init(&r);
	assert_int_equal(decode_req(&r, why, sizeof(why)), 0);

	/* Inside repeated messages too (a picture's flag views). */
	{
		Ehx__PictureResult pr = EHX__PICTURE_RESULT__INIT, *back;
		Ehx__AgencyInvolvement inv = EHX__AGENCY_INVOLVEMENT__INIT;
		Ehx__AgencyInvolvement *invs[1] = { &inv };
		Ehx__FlagView f1 = EHX__FLAG_VIEW__INIT, f2 = EHX__FLAG_VIEW__INIT;
		Ehx__FlagView *fl[2] = { &f1, &f2 };
		unsigned char buf[256];
		size_t n;

		inv.agency = "police";
		inv.flags = fl;
		inv.n_flags = 2;
		pr.involvements = invs;
		pr.n_involvements = 1;
		f1.ref = "A";
		f2.ref = "B";
		n = ehx__picture_result__pack(&pr, buf);
		back = ehx__picture_result__unpack(NULL, n, buf);
		assert_non_null(back);
		assert_false(ehx_message_has_unknown(&back->base));
		ehx__picture_result__free_unpacked(back, NULL);
		f2.base.n_unknown_fields = 1;
		f2.base.unknown_fields = &uf;
		n = ehx__picture_result__pack(&pr, buf);
		back = ehx__picture_result__unpack(NULL, n, buf);
		assert_non_null(back);
		assert_true(ehx_message_has_unknown(&back->base));
		ehx__picture_result__free_unpacked(back, NULL);
	}
}

/*
 * Two payloads in one Body: protobuf-c keeps the last, so the request
 * would be read otherwise than one of its readers meant. Refused, even
 * when the two are the same field given twice (protobuf would merge
 * them, and a reader that does not merge would see another request).
 */
static void
test_two_payloads(void **state)
{
	struct req r;
	Ehx__Body other = EHX__BODY__INIT;
	Ehx__QueryPicture qp = EHX__QUERY_PICTURE__INIT;
	unsigned char *a, *b, *both;
	size_t na, nb;
	Ehx__Body *out = NULL;
	char why[128];

	(void)state;
	req_init(&r);
	na = pack_body(&r.body, &a);
	assert_int_equal(ehx_body_decode(a, na, &out, why, sizeof(why)), 0);
	ehx_body_free(out);
	/* The same header, a second payload appended as a later field. */
	qp.nhs_number = "9434765919";
	other.payload_case = EHX__BODY__PAYLOAD_QUERY_PICTURE;
	other.query_picture = &qp;
	nb = pack_body(&other, &b);
	both = malloc(na + nb);
	assert_non_null(both);
	memcpy(both, a, na);
	memcpy(both + na, b, nb);
	out = (Ehx__Body *)1;
	assert_int_equal(ehx_body_decode(both, na + nb, &out, why,
	    sizeof(why)), EHX_ERR_MALFORMED);
	assert_null(out);
	assert_non_null(strstr(why, "more than one payload"));
	/* The same payload twice is refused too: two, not one. */
	free(both);
	both = malloc(2 * na);
	assert_non_null(both);
	memcpy(both, a, na);
	memcpy(both + na, a, na);
	assert_int_equal(ehx_body_decode(both, 2 * na, &out, why,
	    sizeof(why)), EHX_ERR_MALFORMED);
	free(a);
	free(b);
	free(both);
}

/* An Envelope field version 1 does not define is refused. */
static void
test_envelope_unknown_field(void **state)
{
	unsigned char fpr[EHX_FPR_LEN] = { 0 }, sig[EHX_SIG_LEN] = { 0 };
	unsigned char *frame, *more;
	/* field 9, length-delimited, 2 bytes */
	static const unsigned char extra[] = { 0x4a, 0x02, 'h', 'i' };
	Ehx__Envelope *e = (Ehx__Envelope *)1;
	size_t n;

	(void)state;
	n = pack_envelope(1, "hello", 5, fpr, EHX_FPR_LEN, sig, EHX_SIG_LEN,
	    &frame);
	assert_int_equal(ehx_envelope_decode(frame, n, &e), 0);
	ehx_envelope_free(e);
	more = malloc(n + sizeof(extra));
	assert_non_null(more);
	memcpy(more, frame, n);
	memcpy(more + n, extra, sizeof(extra));
	e = (Ehx__Envelope *)1;
	assert_int_equal(ehx_envelope_decode(more, n + sizeof(extra), &e),
	    EHX_ERR_MALFORMED);
	assert_null(e);
	free(frame);
	free(more);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_seal_limits),
		cmocka_unit_test(test_decode_sizes),
		cmocka_unit_test(test_decode_version_and_junk),
		cmocka_unit_test(test_verify_tampered),
		cmocka_unit_test(test_body_rules),
		cmocka_unit_test(test_body_bytes),
		cmocka_unit_test(test_unknown_fields),
		cmocka_unit_test(test_payload_names),
		cmocka_unit_test(test_two_payloads),
		cmocka_unit_test(test_envelope_unknown_field),
	};

	return cmocka_run_group_tests_name("test_wire", tests, setup, teardown);
}
