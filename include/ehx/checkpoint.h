/*
 * checkpoint.h — the broker's signed tree heads of the audit log and the
 * agencies' cosignatures of them (docs/PROTOCOL.md §14).
 *
 * A checkpoint signs, with the broker's Ed25519 key,
 *
 *   "EHX-CHECKPOINT-V1" 0x00 ‖ origin ‖ 0x00 ‖ size (8, BE) ‖ root (32) ‖
 *   time (8, BE)
 *
 * and a cosignature signs, with an agency's key,
 *
 *   "EHX-COSIGN-V1" 0x00 ‖ the same bytes after the context ‖ time (8, BE)
 *
 * so a cosignature can never be taken for a checkpoint or an envelope.
 */
#ifndef EHX_CHECKPOINT_H
#define EHX_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "ehx.pb-c.h"
#include "ehx/crypto.h"
#include "ehx/limits.h"

/* Check the checkpoint's shape: origin an id, root 32 bytes, signature 64
 * bytes, size and time sane. 0 or EHX_ERR_MALFORMED. */
int ehx_checkpoint_check(const Ehx__Checkpoint *cp);

/* Sign cp (origin, size, root and time set) into sig, and point
 * cp->signature at it. */
int ehx_checkpoint_sign(const struct ehx_signer *s, Ehx__Checkpoint *cp,
    unsigned char sig[EHX_SIG_LEN]);

/* 0 if the broker key pub signed cp; EHX_ERR_MALFORMED or
 * EHX_ERR_BAD_SIGNATURE. */
int ehx_checkpoint_verify(const Ehx__Checkpoint *cp,
    const unsigned char pub[EHX_KEY_LEN]);

/* Cosign cp at time with an agency's key: fills cs (agency, signer, time,
 * signature → sig). */
int ehx_cosign(const struct ehx_signer *s, const char *agency,
    const Ehx__Checkpoint *cp, int64_t time, Ehx__Cosignature *cs,
    unsigned char sig[EHX_SIG_LEN]);

/* 0 if pub cosigned cp in cs; EHX_ERR_MALFORMED or EHX_ERR_BAD_SIGNATURE. */
int ehx_cosign_verify(const Ehx__Checkpoint *cp, const Ehx__Cosignature *cs,
    const unsigned char pub[EHX_KEY_LEN]);

#endif
