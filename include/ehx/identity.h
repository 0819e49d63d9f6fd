/*
 * identity.h — a child as the agencies know them: the identifiers
 * (NHS number, UPN, an agency's own id) and the demographics (names, date
 * of birth, sex, postcode, UPRN), their rules, their normal forms, and the
 * keyed tokens the broker matches on (docs/PROTOCOL.md §10.3–10.5).
 *
 * Nothing here keeps a value: the normal forms are written into the
 * caller's buffers, and the tokens are HMAC-SHA256 under the matching key,
 * cut to EHX_TOKEN_LEN bytes.
 */
#ifndef EHX_IDENTITY_H
#define EHX_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ehx.pb-c.h"
#include "ehx/crypto.h"

#define EHX_UPN_LEN          13
#define EHX_MAX_PERSON_NAME  64   /* bytes of one name */
#define EHX_MAX_OTHER_NAMES  4
#define EHX_MAX_NAME_WORDS   4    /* words kept of one name */
#define EHX_POSTCODE_LEN     8    /* "AA9A 9AA" */
#define EHX_MAX_UPRN         12   /* digits */
#define EHX_MAX_CHILD_AGE_YEARS 26 /* care leavers are supported to 25 */
#define EHX_TOKEN_LEN        16
#define EHX_PHONETIC_LEN     6    /* NYSIIS, cut as its authors did */
#define EHX_DEL_MIN          4    /* letters of a word given its one-letter */
#define EHX_DEL_MAX          16   /* deletions (EHX_F_*_DEL) */

/* True for a unique pupil number: a check letter, then 12 digits, or 11
 * digits and a letter (a temporary UPN); the letters never I, O or S. */
bool ehx_upn_valid(const char *s);
/* The check letter for the 12 characters after it ('\0' if they cannot
 * be a UPN's). */
char ehx_upn_check_letter(const char *s12);
/* Accept what people type ("a801 2000 05001") and write the 13
 * upper-case characters and a NUL into out. 0 or EHX_ERR_INVALID_IDENTITY. */
int ehx_upn_normalise(const char *in, char out[EHX_UPN_LEN + 1]);

/* A UK postcode, any case, with or without its space, into "OUT IN" form
 * (out of EHX_POSTCODE_LEN + 1 bytes). 0 or EHX_ERR_INVALID_IDENTITY. */
int ehx_postcode_normalise(const char *in, char out[EHX_POSTCODE_LEN + 1]);

/* A calendar date "YYYY-MM-DD" (years 1900..2999). 0 or
 * EHX_ERR_INVALID_IDENTITY; *y, *m, *d are set on 0. */
int ehx_date_parse(const char *s, int *y, int *m, int *d);
/* Days since 1970-01-01 of a valid date. */
int64_t ehx_days_from_civil(int y, int m, int d);

/*
 * A name's normal form: its words, upper case, accents folded to their
 * letters (Ø to O, ß to SS), apostrophes and full stops dropped, hyphens
 * and spaces separating words; letters outside Latin kept as they are.
 * Writes at most EHX_MAX_NAME_WORDS words, NUL-separated, into out (at
 * least EHX_MAX_PERSON_NAME * 2 + 1 bytes) and returns how many; -1 if
 * the text is not a name (a digit, a symbol, no letter, too long).
 */
int ehx_name_words(const char *in, char *out, size_t outsz);

/* NYSIIS of one normalised word of A..Z into out (EHX_PHONETIC_LEN + 1);
 * an empty string for a word with letters outside A..Z. */
void ehx_phonetic(const char *word, char out[EHX_PHONETIC_LEN + 1]);

/* The usual given name a familiar form stands for ("BILL" → "WILLIAM");
 * the word itself when the table has none. */
const char *ehx_given_canonical(const char *word);

/*
 * The fields of an identity, against the rules above: every identifier
 * well formed, and enough of them to name a child. now_ms bounds the date
 * of birth. 0, EHX_ERR_INVALID_NHS_NUMBER, or EHX_ERR_INVALID_IDENTITY
 * with a sentence in why.
 */
int ehx_validate_identity(const Ehx__ChildIdentity *id, int64_t now_ms,
    char *why, size_t whysz);

/* What a token is of. The names are part of the protocol (§10.5). */
enum ehx_feature {
	EHX_F_NHS,          /* "nhs": the 10 digits */
	EHX_F_UPN,          /* "upn": the 13 characters */
	EHX_F_LOCAL,        /* "local": agency id ‖ 0x00 ‖ local id */
	EHX_F_GIVEN,        /* "given": the first given name's first word */
	EHX_F_GIVEN_PH,     /* "given_ph": its NYSIIS */
	EHX_F_GIVEN_CANON,  /* "given_canon": its usual form (nicknames) */
	EHX_F_FAMILY,       /* "family": each word of family and other names */
	EHX_F_FAMILY_PH,    /* "family_ph": their NYSIIS */
	EHX_F_DOB,          /* "dob": YYYYMMDD */
	EHX_F_DOB_YM,       /* "dob_ym": YYYYMM */
	EHX_F_DOB_YD,       /* "dob_yd": YYYY--DD */
	EHX_F_DOB_MD,       /* "dob_md": MMDD */
	EHX_F_SEX,          /* "sex": F, M or I */
	EHX_F_POSTCODE,     /* "postcode": "OUT IN" */
	EHX_F_SECTOR,       /* "sector": "OUT D" */
	EHX_F_UPRN,         /* "uprn": digits without leading zeros */
	EHX_F_GIVEN_DEL,    /* "given_del": the first given word of 4..16
	                     * letters A..Z, and it less any one letter */
	EHX_F_FAMILY_DEL,   /* "family_del": the same of the family name's */
	EHX_F_COUNT
};

const char *ehx_feature_name(enum ehx_feature f);

/* At most this many tokens of one feature (the family words of the
 * family name and the other names; a word and its deletions). */
#define EHX_MAX_FEATURE_TOKENS ((1 + EHX_MAX_OTHER_NAMES) * EHX_MAX_NAME_WORDS)
#if EHX_MAX_FEATURE_TOKENS < EHX_DEL_MAX + 1
#error "a word's deletions must fit one feature"
#endif

struct ehx_tokens {
	unsigned char tok[EHX_F_COUNT][EHX_MAX_FEATURE_TOKENS][EHX_TOKEN_LEN];
	uint8_t n[EHX_F_COUNT];
	/* the date of birth with its day and month swapped, when that is a
	 * date too: compared with another identity's "dob" */
	unsigned char dob_swapped[EHX_TOKEN_LEN];
	bool has_dob_swapped;
};

/*
 * The token of one feature value: HMAC-SHA256(key, "EHX-MATCH-V1" ‖ 0x00
 * ‖ name ‖ 0x00 ‖ value) cut to its first EHX_TOKEN_LEN bytes. 0 or
 * EHX_ERR_CRYPTO.
 */
int ehx_token(const struct ehx_pseudokey *key, enum ehx_feature f,
    const void *value, size_t len, unsigned char out[EHX_TOKEN_LEN]);

/*
 * Every token of a valid identity (ehx_validate_identity) sent by agency
 * (for its local id). Repeated values are kept once. 0, EHX_ERR_CRYPTO.
 */
int ehx_identity_tokens(const struct ehx_pseudokey *key, const char *agency,
    const Ehx__ChildIdentity *id, struct ehx_tokens *out);

#endif
