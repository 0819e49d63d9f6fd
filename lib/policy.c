/*
 * policy.c — see policy.h. Parsed by inih through lib/conf.c; every word
 * is checked against the schema's names, and the first mistake stops the
 * load with the file, the line and the word. Each section and each key of
 * a section may be given once: a policy that says two things about one
 * matter is refused rather than read one way or the other, because a
 * reading the partnership did not mean could share more than it agreed.
 *
 * A list (categories, details, details.CATEGORY) longer than a line goes
 * on over indented lines. inih hands such a line to us as the same key
 * again, with no mark of its own; it is always the key just before, so a
 * list key given again right after itself continues its list, and given
 * again after another key is refused. A word twice in one list, or "all"
 * or "none" beside another word, is refused as well, so "details = level"
 * directly followed by "details = note" cannot quietly mean both.
 *
 * inih calls the handler for keys only, never for a section header, so a
 * mistake in a header is reported on the first key line under it; a
 * section with no keys is not seen at all (it would say nothing), and a
 * section repeated right after itself reads as one (its keys still may
 * not repeat).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ehx.pb-c.h"
#include "ehx/conf.h"
#include "ehx/err.h"
#include "ehx/names.h"
#include "ehx/policy.h"
#include "ehx/util.h"

#define MAX_WORD 64                     /* the longest name is 21 bytes */
#define MAX_SECTION 64                  /* inih's own limit is 50 */
#define MAX_KEY 64                      /* the longest key is 30 bytes */

enum { S_AGREEMENT, S_VIEW, S_NOTIFY, S_LIST, S_MATCHING };

/* Keys of a section, to refuse a key given twice. */
enum { K_ID = 1, K_NAME = 2, K_CATEGORIES = 4, K_DETAILS = 8, K_BASIS = 16,
	K_TYPES = 32, K_LOCALITIES = 64, K_LOCALITY_FROM = 128,
	K_OVERRIDE = 256, K_REVIEW = 512, K_SAR = 1024, K_LINK = 2048,
	K_REVIEW_AT = 4096 };

/* The words of one list, over all of its lines. */
struct words {
	unsigned bits;                  /* details */
	bool cats[EHX_POLICY_CATEGORIES + 1];
	bool all, none;
	int n;
	unsigned types;                 /* agency types */
	struct ehx_policy *policy;      /* localities go straight in */
};

struct parse {
	struct ehx_policy *p;
	char section[MAX_SECTION];      /* the section being read */
	int kind;                       /* S_* */
	int arg;                        /* the view's type or notify's category */
	unsigned given;                 /* K_* given in this section */
	char last[MAX_KEY];             /* the key before, in this section */
	struct words list;              /* the list being read */
	bool seen_agreement, seen_matching;
	bool seen_view[EHX_POLICY_TYPES + 1];
	bool seen_notify[EHX_POLICY_CATEGORIES + 1];
	bool seen_list[EHX_POLICY_LISTS + 1];
	bool categories_given[EHX_POLICY_TYPES + 1];
	unsigned details[EHX_POLICY_TYPES + 1];         /* details = */
	/* details.CATEGORY = */
	bool override[EHX_POLICY_TYPES + 1][EHX_POLICY_CATEGORIES + 1];
	unsigned override_bits[EHX_POLICY_TYPES + 1][EHX_POLICY_CATEGORIES + 1];
};

typedef int (*word_fn)(struct words *, const char *, char *, size_t);

/*
 * Call fn on each comma-separated word of value, spaces and tabs around
 * it removed. An empty list or an empty item (",,", a comma at either
 * end) is refused, and so is a word longer than any name could be.
 */
static int
each_word(const char *value, const char *what, word_fn fn, struct words *ws,
    char *why, size_t whysz)
{
	char w[MAX_WORD + 1];
	const char *p = value, *start, *end;
	size_t len;
	int r;

	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		start = p;
		while (*p != '\0' && *p != ',')
			p++;
		end = p;
		while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		len = (size_t)(end - start);
		if (len == 0 && *p == '\0' && ws->n == 0) {
			snprintf(why, whysz, "the list of %s is empty (write "
			    "none)", what);
			return EHX_ERR_CONFIG;
		}
		if (len == 0) {
			snprintf(why, whysz, "an empty item in the list of %s "
			    "(a comma too many)", what);
			return EHX_ERR_CONFIG;
		}
		if (len > MAX_WORD) {
			snprintf(why, whysz, "\"%.20s...\" in the list of %s is "
			    "longer than %d bytes", start, what, MAX_WORD);
			return EHX_ERR_CONFIG;
		}
		memcpy(w, start, len);
		w[len] = '\0';
		if ((r = fn(ws, w, why, whysz)) != 0)
			return r;
		ws->n++;
		if (*p == '\0')
			return 0;
		p++;                    /* the comma */
	}
}

/* "all" and "none" stand alone: not beside another word, on any line. */
static int
alone(struct words *ws, const char *w, const char *what, char *why,
    size_t whysz)
{
	bool special = strcmp(w, "all") == 0 || strcmp(w, "none") == 0;

	if ((special && ws->n > 0) || ws->all || ws->none) {
		snprintf(why, whysz, "\"%s\" stands alone in %s", special ? w :
		    ws->all ? "all" : "none", what);
		return EHX_ERR_CONFIG;
	}
	return 0;
}

static int
detail_word(struct words *ws, const char *w, char *why, size_t whysz)
{
	static const struct {
		const char *word;
		unsigned bit;
	} d[] = {
		{ "level", EHX_POLICY_LEVEL },
		{ "contact", EHX_POLICY_CONTACT },
		{ "note", EHX_POLICY_NOTE },
	};
	int r;

	if (strcmp(w, "all") != 0 &&
	    (r = alone(ws, w, "a list of details", why, whysz)) != 0)
		return r;
	if (strcmp(w, "none") == 0) {
		ws->none = true;
		return 0;
	}
	for (size_t i = 0; i < sizeof(d) / sizeof(d[0]); i++)
		if (strcmp(w, d[i].word) == 0) {
			if (ws->bits & d[i].bit) {
				snprintf(why, whysz, "\"%s\" is listed twice",
				    w);
				return EHX_ERR_CONFIG;
			}
			ws->bits |= d[i].bit;
			return 0;
		}
	snprintf(why, whysz, "unknown detail \"%.40s\" (level, contact, note "
	    "or none)", w);
	return EHX_ERR_CONFIG;
}

/* A category's value, or 0 (with a sentence naming s) if it has none. */
static int
category_of(const char *s, char *why, size_t whysz)
{
	int c = ehx_category_parse(s);

	if (c < 1 || c > EHX_POLICY_CATEGORIES) {
		snprintf(why, whysz, "unknown category \"%.40s\"", s);
		return 0;
	}
	return c;
}

static int
category_word(struct words *ws, const char *w, char *why, size_t whysz)
{
	int c, r;

	if ((r = alone(ws, w, "categories", why, whysz)) != 0)
		return r;
	if (strcmp(w, "all") == 0)
		ws->all = true;
	else if (strcmp(w, "none") == 0)
		ws->none = true;
	else if ((c = category_of(w, why, whysz)) == 0)
		return EHX_ERR_CONFIG;
	else if (ws->cats[c]) {
		snprintf(why, whysz, "\"%s\" is listed twice", w);
		return EHX_ERR_CONFIG;
	} else
		ws->cats[c] = true;
	return 0;
}

static int
basis_of(const char *value, char *why, size_t whysz)
{
	int b = ehx_basis_parse(value);

	if (b < 1) {
		snprintf(why, whysz, "unknown lawful basis \"%.40s\" (consent, "
		    "public_task, legal_obligation, vital_interests)", value);
		return 0;
	}
	return b;
}

static int
twice(const struct parse *ps, const char *key, char *why, size_t whysz)
{
	snprintf(why, whysz, "%.40s is given twice in [%s] (only a list may "
	    "go on, over indented lines right after its key)", key,
	    ps->section);
	return EHX_ERR_CONFIG;
}

static int
once(struct parse *ps, unsigned bit, const char *key, char *why, size_t whysz)
{
	if (ps->given & bit)
		return twice(ps, key, why, whysz);
	ps->given |= bit;
	return 0;
}

/*
 * Start or continue the list of key, whose mark of having been given in
 * this section is *given: given before, it continues its list if it was
 * the key just before, and is refused otherwise.
 */
static int
list_start(struct parse *ps, bool *given, const char *key, char *why,
    size_t whysz)
{
	if (*given) {
		if (strcmp(ps->last, key) != 0)
			return twice(ps, key, why, whysz);
		return 0;
	}
	*given = true;
	memset(&ps->list, 0, sizeof(ps->list));
	return 0;
}

/*
 * A new section starts: check its name and that it was not given before.
 * (A section repeated right after itself reads as one section to inih; a
 * key the two halves share is still refused as given twice.)
 */
static int
new_section(struct parse *ps, const char *section, char *why, size_t whysz)
{
	int v;

	snprintf(ps->section, sizeof(ps->section), "%s", section);
	ps->given = 0;
	ps->arg = 0;
	ps->last[0] = '\0';
	if (strcmp(section, "agreement") == 0) {
		if (ps->seen_agreement)
			goto again;
		ps->seen_agreement = true;
		ps->kind = S_AGREEMENT;
		return 0;
	}
	if (strcmp(section, "matching") == 0) {
		if (ps->seen_matching)
			goto again;
		ps->seen_matching = true;
		ps->kind = S_MATCHING;
		return 0;
	}
	if (strncmp(section, "view ", 5) == 0) {
		v = ehx_agency_type_parse(section + 5);
		if (v < 1 || v > EHX_POLICY_TYPES) {
			snprintf(why, whysz, "unknown agency type \"%.40s\" in "
			    "[%s]", section + 5, section);
			return EHX_ERR_CONFIG;
		}
		if (ps->seen_view[v])
			goto again;
		ps->seen_view[v] = true;
		ps->p->view_present[v] = true;
		ps->kind = S_VIEW;
		ps->arg = v;
		return 0;
	}
	if (strncmp(section, "notify ", 7) == 0) {
		if ((v = category_of(section + 7, why, whysz)) == 0) {
			snprintf(why, whysz, "unknown category \"%.40s\" in [%s]",
			    section + 7, section);
			return EHX_ERR_CONFIG;
		}
		if (ps->seen_notify[v])
			goto again;
		ps->seen_notify[v] = true;
		ps->kind = S_NOTIFY;
		ps->arg = v;
		return 0;
	}
	if (strncmp(section, "list ", 5) == 0) {
		v = ehx_list_parse(section + 5);
		if (v < 1 || v > EHX_POLICY_LISTS) {
			snprintf(why, whysz, "unknown list \"%.40s\" in [%s] "
			    "(known_to_several, troubled_families)",
			    section + 5, section);
			return EHX_ERR_CONFIG;
		}
		if (ps->seen_list[v])
			goto again;
		ps->seen_list[v] = true;
		ps->kind = S_LIST;
		ps->arg = v;
		return 0;
	}
	snprintf(why, whysz, "unknown section [%s] (agreement, view TYPE, "
	    "notify CATEGORY, list LIST or matching)", section);
	return EHX_ERR_CONFIG;
again:
	snprintf(why, whysz, "[%s] is given twice", section);
	return EHX_ERR_CONFIG;
}

static int
locality_word(struct words *ws, const char *w, char *why, size_t whysz)
{
	struct ehx_policy *p = ws->policy;

	if (!ehx_id_ok(w)) {
		snprintf(why, whysz, "locality \"%.40s\" is not 1..%d of a-z "
		    "0-9 _ -", w, EHX_MAX_ID);
		return EHX_ERR_CONFIG;
	}
	for (size_t i = 0; i < p->nlocalities; i++)
		if (strcmp(p->localities[i], w) == 0) {
			snprintf(why, whysz, "locality %s is listed twice", w);
			return EHX_ERR_CONFIG;
		}
	if (p->nlocalities == EHX_POLICY_LOCALITIES) {
		snprintf(why, whysz, "at most %d localities",
		    EHX_POLICY_LOCALITIES);
		return EHX_ERR_CONFIG;
	}
	snprintf(p->localities[p->nlocalities++], EHX_MAX_ID + 1, "%s", w);
	return 0;
}

static int
type_word(struct words *ws, const char *w, char *why, size_t whysz)
{
	int t = ehx_agency_type_parse(w);

	if (t < 1 || t > EHX_POLICY_TYPES) {
		snprintf(why, whysz, "unknown agency type \"%.40s\" (police, "
		    "health, school, housing, local_authority, voluntary)", w);
		return EHX_ERR_CONFIG;
	}
	if (ws->types & (1u << t)) {
		snprintf(why, whysz, "%s is listed twice", w);
		return EHX_ERR_CONFIG;
	}
	ws->types |= 1u << t;
	return 0;
}

/* A key of [list L]: basis (not consent: a list spans children nobody
 * asked) and the agency types whose Information Officers may ask. */
static int
list_key(struct parse *ps, const char *key, const char *value, char *why,
    size_t whysz)
{
	struct ehx_policy *p = ps->p;
	bool given;
	int r;

	if (strcmp(key, "basis") == 0) {
		if ((r = once(ps, K_BASIS, key, why, whysz)) != 0)
			return r;
		if ((r = basis_of(value, why, whysz)) == 0)
			return EHX_ERR_CONFIG;
		if (r == EHX__LAWFUL_BASIS__LAWFUL_BASIS_CONSENT) {
			snprintf(why, whysz, "a list cannot rest on consent: it "
			    "names children who were not asked (public_task, "
			    "legal_obligation or vital_interests)");
			return EHX_ERR_CONFIG;
		}
		p->list_basis[ps->arg] = r;
		return 0;
	}
	if (strcmp(key, "types") == 0) {
		given = (ps->given & K_TYPES) != 0;
		if ((r = list_start(ps, &given, key, why, whysz)) != 0)
			return r;
		ps->given |= K_TYPES;
		if ((r = each_word(value, key, type_word, &ps->list, why,
		    whysz)) != 0)
			return r;
		p->list_types[ps->arg] = ps->list.types;
		return 0;
	}
	if (strcmp(key, "override") == 0) {
		if ((r = once(ps, K_OVERRIDE, key, why, whysz)) != 0)
			return r;
		if (!ehx_text_ok(value, EHX_MIN_BREAK_GLASS, EHX_MAX_REASON)) {
			snprintf(why, whysz, "override must say why, in %d..%d "
			    "bytes of text", EHX_MIN_BREAK_GLASS,
			    EHX_MAX_REASON);
			return EHX_ERR_CONFIG;
		}
		snprintf(p->list_override[ps->arg],
		    sizeof(p->list_override[ps->arg]), "%s", value);
		return 0;
	}
	snprintf(why, whysz, "unknown key \"%.40s\" in [%s] (basis, types, "
	    "override)", key, ps->section);
	return EHX_ERR_CONFIG;
}

static int
agreement_key(struct parse *ps, const char *key, const char *value,
    char *why, size_t whysz)
{
	struct ehx_policy *p = ps->p;
	int r;

	if (strcmp(key, "id") == 0) {
		if ((r = once(ps, K_ID, key, why, whysz)) != 0)
			return r;
		if (!ehx_id_ok(value)) {
			snprintf(why, whysz, "id \"%.40s\" is not 1..%d of a-z "
			    "0-9 _ - (starting a-z 0-9)", value, EHX_MAX_ID);
			return EHX_ERR_CONFIG;
		}
		snprintf(p->id, sizeof(p->id), "%s", value);
		return 0;
	}
	if (strcmp(key, "name") == 0) {
		if ((r = once(ps, K_NAME, key, why, whysz)) != 0)
			return r;
		if (!ehx_text_ok(value, 1, EHX_MAX_NAME)) {
			snprintf(why, whysz, "name must be 1..%d bytes of "
			    "printable text", EHX_MAX_NAME);
			return EHX_ERR_CONFIG;
		}
		snprintf(p->name, sizeof(p->name), "%s", value);
		return 0;
	}
	if (strcmp(key, "localities") == 0) {
		bool given = (ps->given & K_LOCALITIES) != 0;

		if ((r = list_start(ps, &given, key, why, whysz)) != 0)
			return r;
		ps->given |= K_LOCALITIES;
		ps->list.policy = p;
		return each_word(value, key, locality_word, &ps->list, why,
		    whysz);
	}
	if (strcmp(key, "locality_from") == 0) {
		bool given = (ps->given & K_LOCALITY_FROM) != 0;

		if ((r = list_start(ps, &given, key, why, whysz)) != 0)
			return r;
		ps->given |= K_LOCALITY_FROM;
		if ((r = each_word(value, key, type_word, &ps->list, why,
		    whysz)) != 0)
			return r;
		p->locality_types = ps->list.types;
		return 0;
	}
	if (strcmp(key, "subject_access") == 0) {
		bool given = (ps->given & K_SAR) != 0;

		if ((r = list_start(ps, &given, key, why, whysz)) != 0)
			return r;
		ps->given |= K_SAR;
		if ((r = each_word(value, key, type_word, &ps->list, why,
		    whysz)) != 0)
			return r;
		p->sar_types = ps->list.types;
		return 0;
	}
	if (strcmp(key, "break_glass_review") == 0) {
		if ((r = once(ps, K_REVIEW, key, why, whysz)) != 0)
			return r;
		if (strcmp(value, "another_agency") == 0)
			p->review_other_agency = true;
		else if (strcmp(value, "another_person") != 0) {
			snprintf(why, whysz, "break_glass_review is "
			    "another_person or another_agency, not \"%.40s\"",
			    value);
			return EHX_ERR_CONFIG;
		}
		return 0;
	}
	snprintf(why, whysz, "unknown key \"%.40s\" in [agreement] (id, name, "
	    "localities, locality_from, subject_access, break_glass_review)",
	    key);
	return EHX_ERR_CONFIG;
}

/*
 * A key of [view T]. details.C needs categories above it, and C among
 * them, so that a mistake there is reported on its own line.
 */
static int
view_key(struct parse *ps, const char *key, const char *value, char *why,
    size_t whysz)
{
	struct ehx_policy *p = ps->p;
	const int t = ps->arg;
	bool given;
	int r, c;

	if (strcmp(key, "categories") == 0) {
		given = (ps->given & K_CATEGORIES) != 0;
		if ((r = list_start(ps, &given, key, why, whysz)) != 0)
			return r;
		ps->given |= K_CATEGORIES;
		if ((r = each_word(value, key, category_word, &ps->list, why,
		    whysz)) != 0)
			return r;
		for (c = 1; c <= EHX_POLICY_CATEGORIES; c++)
			if (ps->list.all || ps->list.cats[c])
				p->view[t][c] = EHX_POLICY_SEE;
		ps->categories_given[t] = true;
		return 0;
	}
	if (strcmp(key, "details") == 0) {
		given = (ps->given & K_DETAILS) != 0;
		if ((r = list_start(ps, &given, key, why, whysz)) != 0)
			return r;
		ps->given |= K_DETAILS;
		if ((r = each_word(value, key, detail_word, &ps->list, why,
		    whysz)) != 0)
			return r;
		ps->details[t] = ps->list.bits;
		return 0;
	}
	if (strncmp(key, "details.", 8) == 0) {
		if ((c = category_of(key + 8, why, whysz)) == 0)
			return EHX_ERR_CONFIG;
		if (!ps->categories_given[t]) {
			snprintf(why, whysz, "%s comes before categories in [%s] "
			    "(give categories first)", key, ps->section);
			return EHX_ERR_CONFIG;
		}
		if (!(p->view[t][c] & EHX_POLICY_SEE)) {
			snprintf(why, whysz, "%s is given, but %s is not in the "
			    "categories of [%s]", key, key + 8, ps->section);
			return EHX_ERR_CONFIG;
		}
		if ((r = list_start(ps, &ps->override[t][c], key, why,
		    whysz)) != 0)
			return r;
		if ((r = each_word(value, key, detail_word, &ps->list, why,
		    whysz)) != 0)
			return r;
		ps->override_bits[t][c] = ps->list.bits;
		return 0;
	}
	if (strcmp(key, "picture_basis") == 0) {
		if ((r = once(ps, K_BASIS, key, why, whysz)) != 0)
			return r;
		if ((r = basis_of(value, why, whysz)) == 0)
			return EHX_ERR_CONFIG;
		p->picture_basis[t] = r;
		return 0;
	}
	snprintf(why, whysz, "unknown key \"%.40s\" in [%s] (categories, "
	    "details, details.CATEGORY, picture_basis)", key, ps->section);
	return EHX_ERR_CONFIG;
}

static int
notify_key(struct parse *ps, const char *key, const char *value, char *why,
    size_t whysz)
{
	struct ehx_policy *p = ps->p;
	int t, b;

	if ((t = ehx_agency_type_parse(key)) < 1 || t > EHX_POLICY_TYPES) {
		snprintf(why, whysz, "unknown agency type \"%.40s\" in [%s]",
		    key, ps->section);
		return EHX_ERR_CONFIG;
	}
	if (p->notify[ps->arg][t] != 0)
		return twice(ps, key, why, whysz);
	if ((b = basis_of(value, why, whysz)) == 0)
		return EHX_ERR_CONFIG;
	p->notify[ps->arg][t] = b;
	return 0;
}

/* A threshold in bits: a number of 1..3 digits with at most one decimal
 * (25, 17.5), within lo..hi. */
static int
bits_value(const char *key, const char *value, double lo, double hi,
    double *out, char *why, size_t whysz)
{
	const char *p = value;
	double v = 0;
	int digits = 0;

	while (*p >= '0' && *p <= '9' && digits < 4) {
		v = v * 10 + (*p++ - '0');
		digits++;
	}
	if (digits > 0 && digits <= 3 && *p == '.' && p[1] >= '0' &&
	    p[1] <= '9' && p[2] == '\0') {
		v += (p[1] - '0') / 10.0;
		p += 2;
	}
	if (digits == 0 || digits > 3 || *p != '\0' || v < lo || v > hi) {
		snprintf(why, whysz, "%s is a number of bits from %.0f to %.0f "
		    "(one decimal at most), not \"%.40s\"", key, lo, hi, value);
		return EHX_ERR_CONFIG;
	}
	*out = v;
	return 0;
}

/* A key of [matching]: the thresholds of lib/match.c. */
static int
matching_key(struct parse *ps, const char *key, const char *value,
    char *why, size_t whysz)
{
	struct ehx_policy *p = ps->p;
	int r;

	if (strcmp(key, "link") == 0) {
		if ((r = once(ps, K_LINK, key, why, whysz)) != 0)
			return r;
		return bits_value(key, value, EHX_MATCH_LINK_MIN, 80,
		    &p->match.link, why, whysz);
	}
	if (strcmp(key, "review") == 0) {
		if ((r = once(ps, K_REVIEW_AT, key, why, whysz)) != 0)
			return r;
		return bits_value(key, value, EHX_MATCH_REVIEW_MIN, 80,
		    &p->match.review, why, whysz);
	}
	snprintf(why, whysz, "unknown key \"%.40s\" in [matching] (link, "
	    "review)", key);
	return EHX_ERR_CONFIG;
}

static int
on_key(void *user, const char *section, const char *key, const char *value,
    char *why, size_t whysz)
{
	struct parse *ps = user;
	int r;

	if (strcmp(section, ps->section) != 0 &&
	    (r = new_section(ps, section, why, whysz)) != 0)
		return r;
	switch (ps->kind) {
	case S_AGREEMENT:
		r = agreement_key(ps, key, value, why, whysz);
		break;
	case S_VIEW:
		r = view_key(ps, key, value, why, whysz);
		break;
	case S_LIST:
		r = list_key(ps, key, value, why, whysz);
		break;
	case S_MATCHING:
		r = matching_key(ps, key, value, why, whysz);
		break;
	default:
		r = notify_key(ps, key, value, why, whysz);
		break;
	}
	snprintf(ps->last, sizeof(ps->last), "%s", key);
	return r;
}

int
ehx_policy_load(const char *path, struct ehx_policy *p, char *err,
    size_t errsz)
{
	struct parse *ps;
	int r;

	memset(p, 0, sizeof(*p));
	if ((ps = calloc(1, sizeof(*ps))) == NULL)
		return EHX_ERR_NOMEM;
	ps->p = p;
	ps->section[0] = '\001';        /* matches no section's name */
	for (int t = 0; t <= EHX_POLICY_TYPES; t++)
		p->picture_basis[t] = EHX__LAWFUL_BASIS__LAWFUL_BASIS_CONSENT;
	p->match.link = EHX_MATCH_LINK_DEFAULT;
	p->match.review = EHX_MATCH_REVIEW_DEFAULT;
	if ((r = ehx_conf_parse(path, on_key, ps, err, errsz)) != 0)
		goto out;
	r = EHX_ERR_CONFIG;
	if (p->match.review >= p->match.link) {
		snprintf(err, errsz, "%s: [matching] review (%.1f) must be below "
		    "link (%.1f): between them a person decides", path,
		    p->match.review, p->match.link);
		goto out;
	}
	if (p->id[0] == '\0') {
		snprintf(err, errsz, "%s: [agreement] id is required", path);
		goto out;
	}
	for (int t = 1; t <= EHX_POLICY_TYPES; t++) {
		if (!p->view_present[t])
			continue;
		if (!ps->categories_given[t]) {
			snprintf(err, errsz, "%s: [view %s] categories is "
			    "required (all, none or a list)", path,
			    ehx_agency_type_name(t));
			goto out;
		}
		for (int c = 1; c <= EHX_POLICY_CATEGORIES; c++)
			if (p->view[t][c] & EHX_POLICY_SEE)
				p->view[t][c] |= ps->override[t][c] ?
				    ps->override_bits[t][c] : ps->details[t];
	}
	for (int l = 1; l <= EHX_POLICY_LISTS; l++)
		if (ps->seen_list[l] && (p->list_basis[l] == 0 ||
		    p->list_types[l] == 0)) {
			snprintf(err, errsz, "%s: [list %s] needs basis and "
			    "types", path, ehx_list_name(l));
			goto out;
		}
	/*
	 * Whoever names a child's locality decides which children a list of
	 * that locality shows: a type that may do both could put any child
	 * on a list and read off who else is involved. Refused, unless the
	 * list says why (override), which the audit then marks.
	 */
	for (int l = 1; l <= EHX_POLICY_LISTS; l++) {
		unsigned both = p->list_types[l] & (p->locality_types != 0 ?
		    p->locality_types : ~0u);
		int t = 1;

		if (!ps->seen_list[l] || both == 0 ||
		    p->list_override[l][0] != '\0')
			continue;
		while (!(both & (1u << t)))
			t++;
		snprintf(err, errsz, "%s: [list %s]: %s may both name a child's "
		    "locality (locality_from%s) and ask for this list, so it "
		    "could put any child on the list to learn who else is "
		    "involved; leave it out of one of them, or say why in "
		    "override = REASON (the audit marks every answer that "
		    "rests on it)", path, ehx_list_name(l),
		    ehx_agency_type_name(t), p->locality_types == 0 ?
		    " is not given: every type may" : "");
		goto out;
	}
	/* A notification tells the category: only to a type that sees it. */
	for (int c = 1; c <= EHX_POLICY_CATEGORIES; c++)
		for (int t = 1; t <= EHX_POLICY_TYPES; t++)
			if (p->notify[c][t] != 0 &&
			    !(p->view[t][c] & EHX_POLICY_SEE)) {
				snprintf(err, errsz, "%s: [notify %s] %s: the "
				    "view for %s does not show %s, so a "
				    "notification would disclose more than it "
				    "allows; add the category to [view %s] or "
				    "drop the line", path, ehx_category_name(c),
				    ehx_agency_type_name(t),
				    ehx_agency_type_name(t),
				    ehx_category_name(c),
				    ehx_agency_type_name(t));
				goto out;
			}
	r = 0;
out:
	free(ps);
	if (r != 0)
		memset(p, 0, sizeof(*p));
	return r;
}

bool
ehx_policy_subject_access(const struct ehx_policy *p, int agency_type)
{
	return agency_type >= 1 && agency_type <= EHX_POLICY_TYPES &&
	    (p->sar_types & (1u << agency_type)) != 0;
}

bool
ehx_policy_list_overridden(const struct ehx_policy *p, int list,
    int agency_type)
{
	return ehx_policy_list_basis(p, list, agency_type) != 0 &&
	    p->list_override[list][0] != '\0' &&
	    ehx_policy_locality_from(p, agency_type);
}

int
ehx_policy_list_basis(const struct ehx_policy *p, int list, int agency_type)
{
	if (list < 1 || list > EHX_POLICY_LISTS || agency_type < 1 ||
	    agency_type > EHX_POLICY_TYPES ||
	    !(p->list_types[list] & (1u << agency_type)))
		return 0;
	return p->list_basis[list];
}

bool
ehx_policy_locality_from(const struct ehx_policy *p, int agency_type)
{
	if (agency_type < 1 || agency_type > EHX_POLICY_TYPES)
		return false;
	return p->locality_types == 0 ||
	    (p->locality_types & (1u << agency_type)) != 0;
}

bool
ehx_policy_locality_ok(const struct ehx_policy *p, const char *locality)
{
	if (p->nlocalities == 0)
		return true;
	for (size_t i = 0; i < p->nlocalities; i++)
		if (strcmp(p->localities[i], locality) == 0)
			return true;
	return false;
}

unsigned
ehx_policy_view(const struct ehx_policy *p, int viewer_type, int category)
{
	if (viewer_type < 1 || viewer_type > EHX_POLICY_TYPES ||
	    category < 1 || category > EHX_POLICY_CATEGORIES)
		return 0;
	return p->view[viewer_type][category];
}

int
ehx_policy_picture_basis(const struct ehx_policy *p, int viewer_type)
{
	if (viewer_type < 1 || viewer_type > EHX_POLICY_TYPES ||
	    p->picture_basis[viewer_type] == 0)
		return EHX__LAWFUL_BASIS__LAWFUL_BASIS_CONSENT;
	return p->picture_basis[viewer_type];
}

int
ehx_policy_notify_basis(const struct ehx_policy *p, int category,
    int agency_type)
{
	if (category < 1 || category > EHX_POLICY_CATEGORIES ||
	    agency_type < 1 || agency_type > EHX_POLICY_TYPES)
		return 0;
	return p->notify[category][agency_type];
}

/* An output line that remembers whether it was cut short. */
struct line {
	char *s;
	size_t size, len;
	bool cut;
};

static void
put(struct line *l, const char *s)
{
	size_t n = strlen(s);

	if (l->cut || l->size == 0)
		return;
	if (n > l->size - 1 - l->len) {
		n = l->size - 1 - l->len;
		l->cut = true;
	}
	memcpy(l->s + l->len, s, n);
	l->len += n;
	l->s[l->len] = '\0';
}

static void
put_details(struct line *l, unsigned bits)
{
	static const struct {
		unsigned bit;
		const char *word;
	} d[] = {
		{ EHX_POLICY_LEVEL, "level" },
		{ EHX_POLICY_CONTACT, "contact" },
		{ EHX_POLICY_NOTE, "note" },
	};
	const char *sep = "";

	if ((bits & ~EHX_POLICY_SEE) == 0) {
		put(l, "no details");
		return;
	}
	for (size_t i = 0; i < sizeof(d) / sizeof(d[0]); i++)
		if (bits & d[i].bit) {
			put(l, sep);
			put(l, d[i].word);
			sep = ", ";
		}
}

int
ehx_policy_describe(const struct ehx_policy *p, int viewer_type, char *out,
    size_t outsz)
{
	struct line l = { .s = out, .size = outsz };
	unsigned count[16] = { 0 }, common = 0;
	char num[16];
	int t = viewer_type, n = 0;

	if (outsz > 0)
		out[0] = '\0';
	put(&l, ehx_agency_type_name(t));
	if (t < 1 || t > EHX_POLICY_TYPES || !p->view_present[t]) {
		put(&l, ": sees nothing of other agencies");
		return l.cut || outsz == 0 ? EHX_ERR_TOO_LARGE : 0;
	}
	/* The details most visible categories get (the first such, in
	 * category order, on a tie) are the view's; the rest are listed. */
	for (int c = 1; c <= EHX_POLICY_CATEGORIES; c++)
		if (p->view[t][c] & EHX_POLICY_SEE) {
			n++;
			count[p->view[t][c] & 15u]++;
		}
	for (int c = EHX_POLICY_CATEGORIES; c >= 1; c--)
		if ((p->view[t][c] & EHX_POLICY_SEE) &&
		    count[p->view[t][c] & 15u] >= count[common])
			common = p->view[t][c] & 15u;
	snprintf(num, sizeof(num), ": %d categor%s", n, n == 1 ? "y" : "ies");
	put(&l, num);
	if (n > 0 && n < EHX_POLICY_CATEGORIES) {
		const char *sep = " (";

		for (int c = 1; c <= EHX_POLICY_CATEGORIES; c++)
			if (p->view[t][c] & EHX_POLICY_SEE) {
				put(&l, sep);
				put(&l, ehx_category_name(c));
				sep = ", ";
			}
		put(&l, ")");
	}
	if (n > 0) {
		put(&l, "; ");
		put_details(&l, common);
	}
	for (int c = 1; c <= EHX_POLICY_CATEGORIES; c++)
		if ((p->view[t][c] & EHX_POLICY_SEE) &&
		    (p->view[t][c] & 15u) != common) {
			put(&l, "; ");
			put(&l, ehx_category_name(c));
			put(&l, ": ");
			put_details(&l, p->view[t][c]);
		}
	if (ehx_policy_picture_basis(p, t) !=
	    EHX__LAWFUL_BASIS__LAWFUL_BASIS_CONSENT) {
		put(&l, "; picture_basis ");
		put(&l, ehx_basis_name(ehx_policy_picture_basis(p, t)));
	}
	return l.cut || outsz == 0 ? EHX_ERR_TOO_LARGE : 0;
}
