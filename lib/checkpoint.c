/*
 * checkpoint.c — signing and checking audit checkpoints and cosignatures.
 */
#include <string.h>

#include "ehx/checkpoint.h"
#include "ehx/err.h"
#include "ehx/util.h"

static const char cp_context[] = "EHX-CHECKPOINT-V1";
static const char cs_context[] = "EHX-COSIGN-V1";

#define TBS_MAX (sizeof(cp_context) + EHX_MAX_ID + 1 + 8 + 32 + 8 + 8)

static void
put_be64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (unsigned char)v;
		v >>= 8;
	}
}

static int
check_fields(const Ehx__Checkpoint *cp)
{
	if (cp == NULL || cp->origin == NULL || !ehx_id_ok(cp->origin) ||
	    cp->root.len != 32 || cp->time < 0)
		return EHX_ERR_MALFORMED;
	return 0;
}

int
ehx_checkpoint_check(const Ehx__Checkpoint *cp)
{
	if (check_fields(cp) != 0 || cp->signature.len != EHX_SIG_LEN)
		return EHX_ERR_MALFORMED;
	return 0;
}

/* context ‖ 0 ‖ origin ‖ 0 ‖ size ‖ root ‖ time; returns the length. */
static size_t
tbs(const char *context, size_t clen, const Ehx__Checkpoint *cp,
    unsigned char *out)
{
	size_t n = strlen(cp->origin);
	unsigned char *p = out;

	memcpy(p, context, clen);
	p += clen;
	*p++ = 0;
	memcpy(p, cp->origin, n);
	p += n;
	*p++ = 0;
	put_be64(p, cp->size);
	p += 8;
	memcpy(p, cp->root.data, 32);
	p += 32;
	put_be64(p, (uint64_t)cp->time);
	p += 8;
	return (size_t)(p - out);
}

int
ehx_checkpoint_sign(const struct ehx_signer *s, Ehx__Checkpoint *cp,
    unsigned char sig[EHX_SIG_LEN])
{
	unsigned char m[TBS_MAX];
	int r;

	if (check_fields(cp) != 0)
		return EHX_ERR_MALFORMED;
	if ((r = ehx_signer_sign(s, m, tbs(cp_context, strlen(cp_context), cp,
	    m), sig)) != 0)
		return r;
	cp->signature.data = sig;
	cp->signature.len = EHX_SIG_LEN;
	return 0;
}

int
ehx_checkpoint_verify(const Ehx__Checkpoint *cp,
    const unsigned char pub[EHX_KEY_LEN])
{
	unsigned char m[TBS_MAX];

	if (ehx_checkpoint_check(cp) != 0)
		return EHX_ERR_MALFORMED;
	return ehx_ed25519_verify(pub, m, tbs(cp_context, strlen(cp_context),
	    cp, m), cp->signature.data);
}

static size_t
cosign_tbs(const Ehx__Checkpoint *cp, int64_t time, unsigned char *m)
{
	size_t n = tbs(cs_context, strlen(cs_context), cp, m);

	put_be64(m + n, (uint64_t)time);
	return n + 8;
}

int
ehx_cosign(const struct ehx_signer *s, const char *agency,
    const Ehx__Checkpoint *cp, int64_t time, Ehx__Cosignature *cs,
    unsigned char sig[EHX_SIG_LEN])
{
	unsigned char m[TBS_MAX];
	int r;

	if (ehx_checkpoint_check(cp) != 0 || time < 0)
		return EHX_ERR_MALFORMED;
	if ((r = ehx_signer_sign(s, m, cosign_tbs(cp, time, m), sig)) != 0)
		return r;
	ehx__cosignature__init(cs);
	cs->agency = (char *)agency;
	cs->signer.data = (uint8_t *)ehx_signer_fpr(s);
	cs->signer.len = EHX_FPR_LEN;
	cs->time = time;
	cs->signature.data = sig;
	cs->signature.len = EHX_SIG_LEN;
	return 0;
}

int
ehx_cosign_verify(const Ehx__Checkpoint *cp, const Ehx__Cosignature *cs,
    const unsigned char pub[EHX_KEY_LEN])
{
	unsigned char m[TBS_MAX];

	if (check_fields(cp) != 0 || cs == NULL || cs->time < 0 ||
	    cs->signature.len != EHX_SIG_LEN)
		return EHX_ERR_MALFORMED;
	return ehx_ed25519_verify(pub, m, cosign_tbs(cp, cs->time, m),
	    cs->signature.data);
}
