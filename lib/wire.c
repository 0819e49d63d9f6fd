/*
 * wire.c — sealing and opening Envelopes. Opening follows the broker's
 * order: size, decode, field sizes; then the caller looks up the signer's
 * certificate and calls ehx_envelope_verify(); only verified Body bytes are
 * decoded with ehx_body_decode().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "ehx/err.h"
#include "ehx/limits.h"
#include "ehx/util.h"
#include "ehx/wire.h"

/* ctx || body into a new buffer. */
static unsigned char *
signed_bytes(const void *body, size_t len, size_t *outlen)
{
	unsigned char *m;

	if (len > EHX_MAX_BODY ||
	    (m = malloc(EHX_SIGN_CONTEXT_LEN + len)) == NULL)
		return NULL;
	memcpy(m, EHX_SIGN_CONTEXT, EHX_SIGN_CONTEXT_LEN);
	if (len > 0)
		memcpy(m + EHX_SIGN_CONTEXT_LEN, body, len);
	*outlen = EHX_SIGN_CONTEXT_LEN + len;
	return m;
}

int
ehx_envelope_seal_bytes(const struct ehx_signer *s, const void *body,
    size_t body_len, unsigned char **out, size_t *outlen)
{
	Ehx__Envelope env = EHX__ENVELOPE__INIT;
	unsigned char sig[EHX_SIG_LEN], *m = NULL, *buf = NULL;
	size_t mlen = 0, n;
	int r;

	*out = NULL;
	*outlen = 0;
	if (body_len > EHX_MAX_BODY)
		return EHX_ERR_TOO_LARGE;
	if ((m = signed_bytes(body, body_len, &mlen)) == NULL)
		return EHX_ERR_NOMEM;
	if ((r = ehx_signer_sign(s, m, mlen, sig)) != 0)
		goto out;
	env.version = EHX_PROTOCOL_VERSION;
	env.body.data = (uint8_t *)body;
	env.body.len = body_len;
	env.signer.data = (uint8_t *)ehx_signer_fpr(s);
	env.signer.len = EHX_FPR_LEN;
	env.signature.data = sig;
	env.signature.len = EHX_SIG_LEN;
	n = ehx__envelope__get_packed_size(&env);
	r = EHX_ERR_NOMEM;
	if ((buf = malloc(n)) == NULL)
		goto out;
	ehx__envelope__pack(&env, buf);
	*out = buf;
	*outlen = n;
	r = 0;
out:
	free(m);
	return r;
}

int
ehx_envelope_seal(const struct ehx_signer *s, const Ehx__Body *body,
    unsigned char **out, size_t *outlen)
{
	unsigned char *b;
	size_t n = ehx__body__get_packed_size(body);
	int r;

	*out = NULL;
	*outlen = 0;
	if (n > EHX_MAX_BODY)
		return EHX_ERR_TOO_LARGE;
	if ((b = malloc(n ? n : 1)) == NULL)
		return EHX_ERR_NOMEM;
	ehx__body__pack(body, b);
	r = ehx_envelope_seal_bytes(s, b, n, out, outlen);
	free(b);
	return r;
}

int
ehx_envelope_decode(const void *buf, size_t len, Ehx__Envelope **out)
{
	Ehx__Envelope *e;

	*out = NULL;
	if (len > EHX_MAX_MESSAGE)
		return EHX_ERR_TOO_LARGE;
	if (len == 0 ||
	    (e = ehx__envelope__unpack(NULL, len, buf)) == NULL)
		return EHX_ERR_MALFORMED;
	if (e->version != EHX_PROTOCOL_VERSION) {
		ehx_envelope_free(e);
		return EHX_ERR_BAD_VERSION;
	}
	/* A field version 1 does not define is refused, not passed over:
	 * what a peer meant by it cannot be known. */
	if (e->base.n_unknown_fields > 0) {
		ehx_envelope_free(e);
		return EHX_ERR_MALFORMED;
	}
	if (e->body.len > EHX_MAX_BODY) {
		ehx_envelope_free(e);
		return EHX_ERR_TOO_LARGE;
	}
	if (e->body.len == 0 || e->signer.len != EHX_FPR_LEN ||
	    e->signature.len != EHX_SIG_LEN) {
		ehx_envelope_free(e);
		return EHX_ERR_MALFORMED;
	}
	*out = e;
	return 0;
}

void
ehx_envelope_free(Ehx__Envelope *e)
{
	if (e != NULL)
		ehx__envelope__free_unpacked(e, NULL);
}

int
ehx_envelope_verify(const Ehx__Envelope *e,
    const unsigned char pub[EHX_KEY_LEN])
{
	unsigned char *m;
	size_t mlen = 0;
	int r;

	if (e->signature.len != EHX_SIG_LEN)
		return EHX_ERR_BAD_SIGNATURE;
	if ((m = signed_bytes(e->body.data, e->body.len, &mlen)) == NULL)
		return EHX_ERR_NOMEM;
	r = ehx_ed25519_verify(pub, m, mlen, e->signature.data);
	free(m);
	return r;
}

static bool
has_unknown(const ProtobufCMessage *m, int depth)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	const char *base = (const char *)m;

	/* The schema nests four deep; protobuf-c bounds what it decodes. */
	if (m->n_unknown_fields > 0 || depth > 16)
		return true;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];

		if (f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			int which;

			memcpy(&which, base + f->quantifier_offset, sizeof(which));
			if ((uint32_t)which != f->id)
				continue;
		}
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			ProtobufCMessage *const *arr;
			size_t n;

			memcpy(&n, base + f->quantifier_offset, sizeof(n));
			memcpy(&arr, base + f->offset, sizeof(arr));
			for (size_t k = 0; k < n; k++)
				if (arr[k] != NULL && has_unknown(arr[k], depth + 1))
					return true;
		} else {
			const ProtobufCMessage *sub;

			memcpy(&sub, base + f->offset, sizeof(sub));
			if (sub != NULL && has_unknown(sub, depth + 1))
				return true;
		}
	}
	return false;
}

bool
ehx_message_has_unknown(const ProtobufCMessage *m)
{
	return has_unknown(m, 0);
}

/*
 * How many of the Body's payload fields (its oneof) the encoded bytes
 * carry at the top level, counting one given twice as two; -1 if the
 * bytes do not parse as fields. protobuf-c keeps only the last of them,
 * so two would be a request read otherwise than its sender meant.
 */
static int
payload_fields(const unsigned char *p, size_t len)
{
	const ProtobufCMessageDescriptor *d = &ehx__body__descriptor;
	size_t i = 0;
	int n = 0;

	while (i < len) {
		uint64_t key = 0, v = 0;
		unsigned shift = 0;
		uint32_t id;

		do {
			if (i == len || shift > 63)
				return -1;
			key |= (uint64_t)(p[i] & 0x7f) << shift;
			shift += 7;
		} while (p[i++] & 0x80);
		id = (uint32_t)(key >> 3);
		switch (key & 7) {
		case 0:                 /* varint */
			do {
				if (i == len)
					return -1;
			} while (p[i++] & 0x80);
			break;
		case 1:                 /* 64-bit */
			if (len - i < 8)
				return -1;
			i += 8;
			break;
		case 2:                 /* length-delimited */
			shift = 0;
			do {
				if (i == len || shift > 63)
					return -1;
				v |= (uint64_t)(p[i] & 0x7f) << shift;
				shift += 7;
			} while (p[i++] & 0x80);
			if (v > len - i)
				return -1;
			i += (size_t)v;
			break;
		case 5:                 /* 32-bit */
			if (len - i < 4)
				return -1;
			i += 4;
			break;
		default:                /* groups: not in this schema */
			return -1;
		}
		for (unsigned f = 0; f < d->n_fields; f++)
			if (d->fields[f].id == id &&
			    (d->fields[f].flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
				n++;
	}
	return n;
}

static int
malformed(char *why, size_t whysz, const char *what)
{
	if (whysz > 0)
		snprintf(why, whysz, "%s", what);
	return EHX_ERR_MALFORMED;
}

int
ehx_body_decode(const void *buf, size_t len, Ehx__Body **out, char *why,
    size_t whysz)
{
	Ehx__Body *b = NULL;
	int r;

	*out = NULL;
	if (whysz > 0)
		why[0] = '\0';
	if (len == 0 || len > EHX_MAX_BODY ||
	    (b = ehx__body__unpack(NULL, len, buf)) == NULL)
		return malformed(why, whysz, "the body is not a valid Body message");
	if (payload_fields(buf, len) > 1) {
		ehx_body_free(b);
		return malformed(why, whysz, "the body carries more than one "
		    "payload");
	}
	if (ehx_message_has_unknown(&b->base))
		r = malformed(why, whysz, "the body has fields this version "
		    "of the protocol does not define");
	else if (b->message_id.len != EHX_MSGID_LEN)
		r = malformed(why, whysz, "message_id must be 16 bytes");
	else if (!ehx_id_ok(b->sender))
		r = malformed(why, whysz, "sender is not a valid id");
	else if (!ehx_id_ok(b->recipient))
		r = malformed(why, whysz, "recipient is not a valid id");
	else if (b->sent_at <= 0)
		r = malformed(why, whysz, "sent_at is missing");
	else if (b->in_reply_to.len != 0 && b->in_reply_to.len != EHX_MSGID_LEN)
		r = malformed(why, whysz, "in_reply_to must be 0 or 16 bytes");
	else if (b->payload_case == EHX__BODY__PAYLOAD__NOT_SET)
		r = malformed(why, whysz, "the body has no payload");
	else
		r = 0;
	if (r != 0) {
		ehx_body_free(b);
		return r;
	}
	*out = b;
	return 0;
}

void
ehx_body_free(Ehx__Body *b)
{
	if (b != NULL)
		ehx__body__free_unpacked(b, NULL);
}

int
ehx_payload_is_request(int c)
{
	switch (c) {
	case EHX__BODY__PAYLOAD_PUBLISH_FLAG:
	case EHX__BODY__PAYLOAD_CLOSE_FLAG:
	case EHX__BODY__PAYLOAD_RECORD_CONSENT:
	case EHX__BODY__PAYLOAD_WITHDRAW_CONSENT:
	case EHX__BODY__PAYLOAD_QUERY_PICTURE:
	case EHX__BODY__PAYLOAD_QUERY_CONSENT:
	case EHX__BODY__PAYLOAD_QUERY_AUDIT:
	case EHX__BODY__PAYLOAD_QUERY_ALERTS:
	case EHX__BODY__PAYLOAD_REVIEW_ALERT:
	case EHX__BODY__PAYLOAD_QUERY_DISCLOSURES:
	case EHX__BODY__PAYLOAD_QUERY_SAR:
	case EHX__BODY__PAYLOAD_EXPORT_AUDIT:
	case EHX__BODY__PAYLOAD_QUERY_PROOF:
	case EHX__BODY__PAYLOAD_COSIGN_CHECKPOINT:
	case EHX__BODY__PAYLOAD_FETCH_NOTIFICATIONS:
	case EHX__BODY__PAYLOAD_QUERY_EARLY_HELP_LIST:
	case EHX__BODY__PAYLOAD_RECORD_INVOLVEMENT:
		return 1;
	default:
		return 0;
	}
}

const char *
ehx_payload_name(int c)
{
	switch (c) {
	case EHX__BODY__PAYLOAD_PUBLISH_FLAG: return "publish_flag";
	case EHX__BODY__PAYLOAD_CLOSE_FLAG: return "close_flag";
	case EHX__BODY__PAYLOAD_RECORD_CONSENT: return "record_consent";
	case EHX__BODY__PAYLOAD_WITHDRAW_CONSENT: return "withdraw_consent";
	case EHX__BODY__PAYLOAD_QUERY_PICTURE: return "query_picture";
	case EHX__BODY__PAYLOAD_QUERY_CONSENT: return "query_consent";
	case EHX__BODY__PAYLOAD_ACK: return "ack";
	case EHX__BODY__PAYLOAD_ERROR: return "error";
	case EHX__BODY__PAYLOAD_PICTURE: return "picture";
	case EHX__BODY__PAYLOAD_CONSENT: return "consent";
	case EHX__BODY__PAYLOAD_QUERY_AUDIT: return "query_audit";
	case EHX__BODY__PAYLOAD_QUERY_ALERTS: return "query_alerts";
	case EHX__BODY__PAYLOAD_REVIEW_ALERT: return "review_alert";
	case EHX__BODY__PAYLOAD_QUERY_DISCLOSURES: return "query_disclosures";
	case EHX__BODY__PAYLOAD_QUERY_SAR: return "query_sar";
	case EHX__BODY__PAYLOAD_EXPORT_AUDIT: return "export_audit";
	case EHX__BODY__PAYLOAD_QUERY_PROOF: return "query_proof";
	case EHX__BODY__PAYLOAD_COSIGN_CHECKPOINT: return "cosign_checkpoint";
	case EHX__BODY__PAYLOAD_AUDIT: return "audit";
	case EHX__BODY__PAYLOAD_ALERTS: return "alerts";
	case EHX__BODY__PAYLOAD_DISCLOSURES: return "disclosures";
	case EHX__BODY__PAYLOAD_SAR: return "sar";
	case EHX__BODY__PAYLOAD_EXPORT: return "export";
	case EHX__BODY__PAYLOAD_PROOF: return "proof";
	case EHX__BODY__PAYLOAD_FETCH_NOTIFICATIONS: return "fetch_notifications";
	case EHX__BODY__PAYLOAD_NOTIFICATIONS: return "notifications";
	case EHX__BODY__PAYLOAD_NOTIFICATION: return "notification";
	case EHX__BODY__PAYLOAD_QUERY_EARLY_HELP_LIST: return "query_early_help_list";
	case EHX__BODY__PAYLOAD_EARLY_HELP_LIST: return "early_help_list";
	case EHX__BODY__PAYLOAD_RECORD_INVOLVEMENT: return "record_involvement";
	default: return "none";
	}
}
