/*
 * wire.h — the Envelope: sealing a Body (serialize, sign) and opening one
 * (bounds, decode, verify, decode the signed Body) — docs/PROTOCOL.md §3.
 *
 * What is signed is the 16-byte context EHX_SIGN_CONTEXT ("EHX-ENVELOPE-V1"
 * and a zero byte) followed by the exact Body bytes carried in the Envelope;
 * receivers never re-encode a Body to check it.
 */
#ifndef EHX_WIRE_H
#define EHX_WIRE_H

#include <stdbool.h>
#include <stddef.h>

#include "ehx.pb-c.h"
#include "ehx/crypto.h"

#define EHX_SIGN_CONTEXT     "EHX-ENVELOPE-V1"
#define EHX_SIGN_CONTEXT_LEN 16   /* the text and its terminating zero byte */

/*
 * Sign body_len bytes of Body and wrap them in an Envelope. *out is a new
 * buffer the caller frees. Returns 0, EHX_ERR_TOO_LARGE, EHX_ERR_CRYPTO or
 * EHX_ERR_NOMEM.
 */
int ehx_envelope_seal_bytes(const struct ehx_signer *s, const void *body,
    size_t body_len, unsigned char **out, size_t *outlen);

/* Serialize body, then as ehx_envelope_seal_bytes. */
int ehx_envelope_seal(const struct ehx_signer *s, const Ehx__Body *body,
    unsigned char **out, size_t *outlen);

/*
 * Decode an Envelope frame of len bytes after checking len against
 * EHX_MAX_MESSAGE, and check its fields' sizes. Returns 0,
 * EHX_ERR_TOO_LARGE, EHX_ERR_MALFORMED or EHX_ERR_BAD_VERSION. Free *out
 * with ehx_envelope_free(); it does not point into buf.
 */
int ehx_envelope_decode(const void *buf, size_t len, Ehx__Envelope **out);
void ehx_envelope_free(Ehx__Envelope *e);

/* Verify the envelope's signature with a raw Ed25519 public key.
 * Returns 0 or EHX_ERR_BAD_SIGNATURE. */
int ehx_envelope_verify(const Ehx__Envelope *e,
    const unsigned char pub[EHX_KEY_LEN]);

/*
 * Decode signed Body bytes and check what every Body must hold: a 16-byte
 * message id, valid sender and recipient ids, a send time, an in_reply_to of
 * 0 or 16 bytes and exactly one payload. Returns 0 or EHX_ERR_MALFORMED
 * (why says which). Free *out with ehx_body_free().
 */
int ehx_body_decode(const void *buf, size_t len, Ehx__Body **out,
    char *why, size_t whysz);
void ehx_body_free(Ehx__Body *b);

/*
 * True when msg or any message inside it carries fields the schema does
 * not define. protobuf-c keeps such fields and packs them again, so a Body
 * holding any is refused: nothing unchecked is stored or passed on.
 */
bool ehx_message_has_unknown(const ProtobufCMessage *msg);

/* Is this payload one an agent may send to the broker? */
int ehx_payload_is_request(int payload_case);

/* A short stable name for a payload ("publish_flag"), for audit and logs. */
const char *ehx_payload_name(int payload_case);

#endif
