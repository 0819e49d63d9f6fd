/*
 * match.h — whether two identities are one child, from their tokens alone
 * (identity.h): the comparison of each field at graded levels, Fellegi–
 * Sunter weights, the rules that bar an automatic link, the outcome
 * against the sharing policy's thresholds, and the blocking keys under
 * which the broker finds the candidates worth comparing
 * (docs/PROTOCOL.md §10.6).
 */
#ifndef EHX_MATCH_H
#define EHX_MATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ehx/identity.h"

enum ehx_match_field {
	EHX_M_GIVEN,
	EHX_M_FAMILY,
	EHX_M_DOB,
	EHX_M_SEX,
	EHX_M_POSTCODE,
	EHX_M_UPRN,
	EHX_M_COUNT
};

/* How one field compares: MISSING when either side lacks it. */
enum ehx_match_level {
	EHX_L_MISSING,
	EHX_L_DIFFERENT,
	EHX_L_SAME,
	EHX_L_SWAPPED,     /* names the wrong way round; day and month */
	EHX_L_USUAL,       /* given: the same usual form (BILL, WILLIAM) */
	EHX_L_SLIP,        /* names: one typing slip apart */
	EHX_L_SOUNDS,      /* names: the same NYSIIS */
	EHX_L_ONE_WRONG,   /* date: one of day, month and year differs */
	EHX_L_SECTOR,      /* postcode: the same sector */
	EHX_L_COUNT
};

/* Why a pair may not be linked automatically (bits). */
#define EHX_BAR_GIVEN   0x01u  /* given names differ: never the same (twins) */
#define EHX_BAR_DOB     0x02u  /* dates of birth differ: review at most */
#define EHX_BAR_SEX     0x04u  /* sexes differ: review at most */
#define EHX_BAR_ID      0x08u  /* NHS numbers or UPNs differ: never */

struct ehx_match_result {
	uint8_t level[EHX_M_COUNT];   /* enum ehx_match_level */
	double score;                 /* bits: log2 of the likelihood ratio */
	unsigned bars;                /* EHX_BAR_* */
};

enum ehx_match_outcome {
	EHX_MATCH_NEW,       /* not this child */
	EHX_MATCH_REVIEW,    /* a person decides */
	EHX_MATCH_LINK,      /* the same child */
};

/* The sharing policy's thresholds, in bits (policy.h reads them). */
struct ehx_match_thresholds {
	double link;    /* at or above, and nothing bars it: linked */
	double review;  /* at or above (below link): to review */
};
#define EHX_MATCH_LINK_DEFAULT    25.0
#define EHX_MATCH_REVIEW_DEFAULT  17.0
/* The lowest a partnership may set them: below these, a name and a date
 * of birth shared by chance would link children (PROTOCOL §10.6). */
#define EHX_MATCH_LINK_MIN        20.0
#define EHX_MATCH_REVIEW_MIN      10.0

/* Compare a with b (either order gives the same result). */
void ehx_match_compare(const struct ehx_tokens *a, const struct ehx_tokens *b,
    struct ehx_match_result *out);

/* The outcome of one comparison under th. */
enum ehx_match_outcome ehx_match_decide(const struct ehx_match_result *r,
    const struct ehx_match_thresholds *th);

/* The weight in bits a field adds at a level (0 for a level the field
 * does not have); m and u, when not NULL, get the probabilities it comes
 * from: of the level among pairs of one child, and among others. */
double ehx_match_weight(enum ehx_match_field f, enum ehx_match_level l,
    double *m, double *u);

const char *ehx_match_field_name(enum ehx_match_field f);
const char *ehx_match_level_name(enum ehx_match_level l);

/*
 * The blocking keys of t, EHX_TOKEN_LEN bytes each, into out (room for
 * max): an identity is compared only with those sharing at least one. A
 * stored identity is indexed under its keys (lookup false); one being
 * matched also looks under the keys its likely slips would have
 * (lookup true: the swapped date, the names the other way round).
 * Returns how many were written.
 */
#define EHX_MAX_BLOCKS 64
size_t ehx_match_blocks(const struct ehx_tokens *t, bool lookup,
    unsigned char (*out)[EHX_TOKEN_LEN], size_t max);

#endif
