/*
 * match.c — comparing two identities by their tokens (match.h;
 * docs/PROTOCOL.md §10.6).
 *
 * Fellegi and Sunter (1969): each field agrees at some level; the level's
 * weight is log2(m / u), m its probability among pairs of records of one
 * child and u among pairs of different children; the weights add up to
 * the log-likelihood ratio that the two are one child. The m and u below
 * are our estimates for English children's records from several
 * agencies; `make bench` measures what they give on a synthetic
 * population with the errors real extracts have.
 */
#include <math.h>
#include <string.h>

#include "ehx/crypto.h"
#include "ehx/match.h"

struct mu {
	double m, u;
};

/* Per field, per level: m and u. A level a field cannot have is {0, 0}.
 * Each field's m (and u) add up to 1 over the levels it has. */
static const struct mu table[EHX_M_COUNT][EHX_L_COUNT] = {
	[EHX_M_GIVEN] = {
		[EHX_L_SAME] = { 0.86, 0.006 },
		[EHX_L_SWAPPED] = { 0.01, 0.0001 },
		[EHX_L_USUAL] = { 0.03, 0.002 },
		[EHX_L_SLIP] = { 0.04, 0.003 },
		[EHX_L_SOUNDS] = { 0.02, 0.01 },
		[EHX_L_DIFFERENT] = { 0.04, 0.9789 },
	},
	[EHX_M_FAMILY] = {
		[EHX_L_SAME] = { 0.85, 0.004 },
		[EHX_L_SWAPPED] = { 0.01, 0.0001 },
		[EHX_L_SLIP] = { 0.04, 0.002 },
		[EHX_L_SOUNDS] = { 0.02, 0.008 },
		[EHX_L_DIFFERENT] = { 0.08, 0.9859 },
	},
	[EHX_M_DOB] = {
		[EHX_L_SAME] = { 0.93, 0.00016 },
		[EHX_L_SWAPPED] = { 0.01, 0.00016 },
		[EHX_L_ONE_WRONG] = { 0.05, 0.009 },
		[EHX_L_DIFFERENT] = { 0.01, 0.99068 },
	},
	[EHX_M_SEX] = {
		[EHX_L_SAME] = { 0.98, 0.5 },
		[EHX_L_DIFFERENT] = { 0.02, 0.5 },
	},
	[EHX_M_POSTCODE] = {
		[EHX_L_SAME] = { 0.75, 0.0004 },
		[EHX_L_SECTOR] = { 0.10, 0.015 },
		[EHX_L_DIFFERENT] = { 0.15, 0.9846 },
	},
	[EHX_M_UPRN] = {
		[EHX_L_SAME] = { 0.70, 0.0003 },
		[EHX_L_DIFFERENT] = { 0.30, 0.9997 },
	},
};

double
ehx_match_weight(enum ehx_match_field f, enum ehx_match_level l, double *m,
    double *u)
{
	const struct mu *p;

	if (m != NULL)
		*m = 0;
	if (u != NULL)
		*u = 0;
	if ((unsigned)f >= EHX_M_COUNT || (unsigned)l >= EHX_L_COUNT)
		return 0;
	p = &table[f][l];
	if (m != NULL)
		*m = p->m;
	if (u != NULL)
		*u = p->u;
	if (p->m <= 0 || p->u <= 0)
		return 0;
	return log2(p->m / p->u);
}

const char *
ehx_match_field_name(enum ehx_match_field f)
{
	static const char *const n[EHX_M_COUNT] = { "given name",
	    "family name", "date of birth", "sex", "postcode", "UPRN" };

	return (unsigned)f < EHX_M_COUNT ? n[f] : "?";
}

const char *
ehx_match_level_name(enum ehx_match_level l)
{
	static const char *const n[EHX_L_COUNT] = { "missing", "different",
	    "same", "swapped", "usual form", "one slip", "sounds alike",
	    "one part wrong", "same sector" };

	return (unsigned)l < EHX_L_COUNT ? n[l] : "?";
}

/* Does any token of a's feature fa equal one of b's fb? */
static bool
meet(const struct ehx_tokens *a, enum ehx_feature fa,
    const struct ehx_tokens *b, enum ehx_feature fb)
{
	for (size_t i = 0; i < a->n[fa]; i++)
		for (size_t j = 0; j < b->n[fb]; j++)
			if (memcmp(a->tok[fa][i], b->tok[fb][j],
			    EHX_TOKEN_LEN) == 0)
				return true;
	return false;
}

static bool
both(const struct ehx_tokens *a, const struct ehx_tokens *b,
    enum ehx_feature f)
{
	return a->n[f] > 0 && b->n[f] > 0;
}

static enum ehx_match_level
given(const struct ehx_tokens *a, const struct ehx_tokens *b, bool swapped)
{
	if (!both(a, b, EHX_F_GIVEN))
		return EHX_L_MISSING;
	if (meet(a, EHX_F_GIVEN, b, EHX_F_GIVEN))
		return EHX_L_SAME;
	if (meet(a, EHX_F_GIVEN_CANON, b, EHX_F_GIVEN_CANON))
		return EHX_L_USUAL;
	if (meet(a, EHX_F_GIVEN_DEL, b, EHX_F_GIVEN_DEL))
		return EHX_L_SLIP;
	if (meet(a, EHX_F_GIVEN_PH, b, EHX_F_GIVEN_PH))
		return EHX_L_SOUNDS;
	return swapped ? EHX_L_SWAPPED : EHX_L_DIFFERENT;
}

static enum ehx_match_level
family(const struct ehx_tokens *a, const struct ehx_tokens *b, bool swapped)
{
	if (!both(a, b, EHX_F_FAMILY))
		return EHX_L_MISSING;
	if (meet(a, EHX_F_FAMILY, b, EHX_F_FAMILY))
		return EHX_L_SAME;
	if (meet(a, EHX_F_FAMILY_DEL, b, EHX_F_FAMILY_DEL))
		return EHX_L_SLIP;
	if (meet(a, EHX_F_FAMILY_PH, b, EHX_F_FAMILY_PH))
		return EHX_L_SOUNDS;
	return swapped ? EHX_L_SWAPPED : EHX_L_DIFFERENT;
}

static enum ehx_match_level
dob(const struct ehx_tokens *a, const struct ehx_tokens *b)
{
	if (!both(a, b, EHX_F_DOB))
		return EHX_L_MISSING;
	if (meet(a, EHX_F_DOB, b, EHX_F_DOB))
		return EHX_L_SAME;
	if ((a->has_dob_swapped && memcmp(a->dob_swapped, b->tok[EHX_F_DOB][0],
	    EHX_TOKEN_LEN) == 0) || (b->has_dob_swapped &&
	    memcmp(b->dob_swapped, a->tok[EHX_F_DOB][0], EHX_TOKEN_LEN) == 0))
		return EHX_L_SWAPPED;
	if (meet(a, EHX_F_DOB_YM, b, EHX_F_DOB_YM) ||
	    meet(a, EHX_F_DOB_YD, b, EHX_F_DOB_YD) ||
	    meet(a, EHX_F_DOB_MD, b, EHX_F_DOB_MD))
		return EHX_L_ONE_WRONG;
	return EHX_L_DIFFERENT;
}

/* A field with one token: same, different or missing. */
static enum ehx_match_level
simple(const struct ehx_tokens *a, const struct ehx_tokens *b,
    enum ehx_feature f)
{
	if (!both(a, b, f))
		return EHX_L_MISSING;
	return meet(a, f, b, f) ? EHX_L_SAME : EHX_L_DIFFERENT;
}

void
ehx_match_compare(const struct ehx_tokens *a, const struct ehx_tokens *b,
    struct ehx_match_result *out)
{
	bool swapped;

	memset(out, 0, sizeof(*out));
	/* names the wrong way round: each one's given is the other's family */
	swapped = both(a, b, EHX_F_GIVEN) && both(a, b, EHX_F_FAMILY) &&
	    meet(a, EHX_F_GIVEN, b, EHX_F_FAMILY) &&
	    meet(a, EHX_F_FAMILY, b, EHX_F_GIVEN);
	out->level[EHX_M_GIVEN] = (uint8_t)given(a, b, swapped);
	out->level[EHX_M_FAMILY] = (uint8_t)family(a, b, swapped);
	out->level[EHX_M_DOB] = (uint8_t)dob(a, b);
	out->level[EHX_M_SEX] = (uint8_t)simple(a, b, EHX_F_SEX);
	out->level[EHX_M_POSTCODE] = (uint8_t)simple(a, b, EHX_F_POSTCODE);
	if (out->level[EHX_M_POSTCODE] == EHX_L_DIFFERENT &&
	    meet(a, EHX_F_SECTOR, b, EHX_F_SECTOR))
		out->level[EHX_M_POSTCODE] = EHX_L_SECTOR;
	out->level[EHX_M_UPRN] = (uint8_t)simple(a, b, EHX_F_UPRN);
	for (int f = 0; f < EHX_M_COUNT; f++)
		out->score += ehx_match_weight(f, out->level[f], NULL, NULL);
	if ((both(a, b, EHX_F_NHS) && !meet(a, EHX_F_NHS, b, EHX_F_NHS)) ||
	    (both(a, b, EHX_F_UPN) && !meet(a, EHX_F_UPN, b, EHX_F_UPN)))
		out->bars |= EHX_BAR_ID;
	if (out->level[EHX_M_GIVEN] == EHX_L_DIFFERENT)
		out->bars |= EHX_BAR_GIVEN;
	if (out->level[EHX_M_DOB] == EHX_L_DIFFERENT)
		out->bars |= EHX_BAR_DOB;
	if (out->level[EHX_M_SEX] == EHX_L_DIFFERENT)
		out->bars |= EHX_BAR_SEX;
}

enum ehx_match_outcome
ehx_match_decide(const struct ehx_match_result *r,
    const struct ehx_match_thresholds *th)
{
	if (r->bars & (EHX_BAR_ID | EHX_BAR_GIVEN))
		return EHX_MATCH_NEW;
	if (r->score >= th->link && r->bars == 0)
		return EHX_MATCH_LINK;
	if (r->score >= th->review)
		return EHX_MATCH_REVIEW;
	return EHX_MATCH_NEW;
}

/* One blocking key: SHA-256("EHX-BLOCK-V1" 0x00 kind ‖ x ‖ y), cut. */
static size_t
block(unsigned char (*out)[EHX_TOKEN_LEN], size_t n, size_t max, char kind,
    const unsigned char *x, const unsigned char *y)
{
	unsigned char in[13 + 1 + 2 * EHX_TOKEN_LEN], h[32];
	size_t len = 0;

	if (n >= max)
		return n;
	memcpy(in, "EHX-BLOCK-V1", 13);
	len = 13;
	in[len++] = (unsigned char)kind;
	memcpy(in + len, x, EHX_TOKEN_LEN);
	len += EHX_TOKEN_LEN;
	if (y != NULL) {
		memcpy(in + len, y, EHX_TOKEN_LEN);
		len += EHX_TOKEN_LEN;
	}
	ehx_sha256(in, len, h);
	for (size_t i = 0; i < n; i++)
		if (memcmp(out[i], h, EHX_TOKEN_LEN) == 0)
			return n;
	memcpy(out[n], h, EHX_TOKEN_LEN);
	return n + 1;
}

size_t
ehx_match_blocks(const struct ehx_tokens *t, bool lookup,
    unsigned char (*out)[EHX_TOKEN_LEN], size_t max)
{
	size_t n = 0;

	/* the date of birth: names changed or mistyped */
	if (t->n[EHX_F_DOB] > 0)
		n = block(out, n, max, 'd', t->tok[EHX_F_DOB][0], NULL);
	if (lookup && t->has_dob_swapped)
		n = block(out, n, max, 'd', t->dob_swapped, NULL);
	/* given and family name: the date wrong */
	if (t->n[EHX_F_GIVEN] > 0)
		for (size_t i = 0; i < t->n[EHX_F_FAMILY]; i++) {
			n = block(out, n, max, 'g', t->tok[EHX_F_GIVEN][0],
			    t->tok[EHX_F_FAMILY][i]);
			if (lookup)
				n = block(out, n, max, 'g',
				    t->tok[EHX_F_FAMILY][i],
				    t->tok[EHX_F_GIVEN][0]);
		}
	/* family name and month of birth: the day and given name wrong */
	if (t->n[EHX_F_DOB_YM] > 0)
		for (size_t i = 0; i < t->n[EHX_F_FAMILY]; i++)
			n = block(out, n, max, 'f', t->tok[EHX_F_FAMILY][i],
			    t->tok[EHX_F_DOB_YM][0]);
	/* the address and given name: a new surname and the date wrong */
	if (t->n[EHX_F_POSTCODE] > 0 && t->n[EHX_F_GIVEN] > 0)
		n = block(out, n, max, 'p', t->tok[EHX_F_POSTCODE][0],
		    t->tok[EHX_F_GIVEN][0]);
	if (t->n[EHX_F_UPRN] > 0)
		n = block(out, n, max, 'u', t->tok[EHX_F_UPRN][0], NULL);
	return n;
}
