/*
 * policy.c — see policy.h. Parsed by inih through lib/conf.c; every word
 * is checked against the schema's names. A section given twice, or id,
 * name or picture_basis given twice, is an error; the lists (categories,
 * details) add up, so a long one may go on over indented lines.
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

#define MAX_WORD 64
#define MAX_SECTION 64

struct parse {
	struct ehx_policy *p;
	char section[MAX_SECTION];
	int kind;                       /* 0 agreement, 1 view, 2 notify */
	int arg;                        /* the view's type or notify's category */
	/* What was given, to refuse repeats. */
	bool seen_view[EHX_POLICY_TYPES + 1];
	bool seen_notify[EHX_POLICY_CATEGORIES + 1];
	bool seen_agreement;
	unsigned given;                 /* bits of keys given in this section */
	bool categories_given[EHX_POLICY_TYPES + 1];
	bool details_given[EHX_POLICY_TYPES + 1];
	unsigned defaults[EHX_POLICY_TYPES + 1];        /* details bits */
	bool override[EHX_POLICY_TYPES + 1][EHX_POLICY_CATEGORIES + 1];
	unsigned override_bits[EHX_POLICY_TYPES + 1][EHX_POLICY_CATEGORIES + 1];
};

/* Call fn on each comma-separated word of value; refuses empty lists. */
static int
each_word(const char *value, const char *what, int (*fn)(void *, const char *,
    char *, size_t), void *arg, char *why, size_t whysz)
{
	char w[MAX_WORD + 1];
	const char *p = value;
	int n = 0, r;

	while (*p != '\0') {
		const char *start, *end;
		size_t len;

		while (*p == ' ' || *p == '\t')
			p++;
		start = p;
		while (*p != '\0' && *p != ',')
			p++;
		end = p;
		while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		len = (size_t)(end - start);
		if (len == 0) {
			snprintf(why, whysz, "an empty item in the list of %s",
			    what);
			return EHX_ERR_CONFIG;
		}
		if (len > MAX_WORD) {
			snprintf(why, whysz, "an item of %s is too long", what);
			return EHX_ERR_CONFIG;
		}
		memcpy(w, start, len);
		w[len] = '\0';
		if ((r = fn(arg, w, why, whysz)) != 0)
			return r;
		n++;
		if (*p == ',')
			p++;
		if (*p == '\0' && p > value && p[-1] == ',') {
			snprintf(why, whysz, "an empty item in the list of %s",
			    what);
			return EHX_ERR_CONFIG;
		}
	}
	if (n == 0) {
		snprintf(why, whysz, "the list of %s is empty (write none)",
		    what);
		return EHX_ERR_CONFIG;
	}
	return 0;
}

struct words {
	unsigned bits;                  /* details */
	bool cats[EHX_POLICY_CATEGORIES + 1];
	bool all, none;
	int n;
};

static int
detail_word(void *arg, const char *w, char *why, size_t whysz)
{
	struct words *ws = arg;

	ws->n++;
	if (strcmp(w, "none") == 0)
		ws->none = true;
	else if (strcmp(w, "level") == 0)
		ws->bits |= EHX_POLICY_LEVEL;
	else if (strcmp(w, "contact") == 0)
		ws->bits |= EHX_POLICY_CONTACT;
	else if (strcmp(w, "note") == 0)
		ws->bits |= EHX_POLICY_NOTE;
	else {
		snprintf(why, whysz, "unknown detail \"%.40s\" (level, contact, "
		    "note or none)", w);
		return EHX_ERR_CONFIG;
	}
	return 0;
}

static int
category_word(void *arg, const char *w, char *why, size_t whysz)
{
	struct words *ws = arg;
	int c;

	ws->n++;
	if (strcmp(w, "all") == 0)
		ws->all = true;
	else if (strcmp(w, "none") == 0)
		ws->none = true;
	else if ((c = ehx_category_parse(w)) <= 0 ||
	    c > EHX_POLICY_CATEGORIES) {
		snprintf(why, whysz, "unknown category \"%.40s\"", w);
		return EHX_ERR_CONFIG;
	} else
		ws->cats[c] = true;
	return 0;
}

static int
details_of(const char *value, unsigned *bits, char *why, size_t whysz)
{
	struct words ws = { 0 };
	int r;

	if ((r = each_word(value, "details", detail_word, &ws, why,
	    whysz)) != 0)
		return r;
	if (ws.none && ws.n > 1) {
		snprintf(why, whysz, "\"none\" stands alone in a list of "
		    "details");
		return EHX_ERR_CONFIG;
	}
	*bits = ws.bits;
	return 0;
}

/* Keys of a section, for refusing repeats. */
enum { K_ID = 1, K_NAME = 2, K_BASIS = 4 };

static int
once(struct parse *ps, unsigned bit, const char *key, char *why, size_t whysz)
{
	if (ps->given & bit) {
		snprintf(why, whysz, "%s is given twice in [%s]", key,
		    ps->section);
		return EHX_ERR_CONFIG;
	}
	ps->given |= bit;
	return 0;
}

static int
new_section(struct parse *ps, const char *section, char *why, size_t whysz)
{
	char word[MAX_SECTION];
	int v;

	snprintf(ps->section, sizeof(ps->section), "%s", section);
	ps->given = 0;
	if (strcmp(section, "agreement") == 0) {
		if (ps->seen_agreement)
			goto twice;
		ps->seen_agreement = true;
		ps->kind = 0;
		return 0;
	}
	if (sscanf(section, "view %63s", word) == 1 &&
	    strlen(section) == 5 + strlen(word)) {
		if ((v = ehx_agency_type_parse(word)) <= 0 ||
		    v > EHX_POLICY_TYPES) {
			snprintf(why, whysz, "unknown agency type \"%.40s\" in "
			    "[%.60s]", word, section);
			return EHX_ERR_CONFIG;
		}
		if (ps->seen_view[v])
			goto twice;
		ps->seen_view[v] = true;
		ps->p->view_present[v] = true;
		ps->kind = 1;
		ps->arg = v;
		return 0;
	}
	if (sscanf(section, "notify %63s", word) == 1 &&
	    strlen(section) == 7 + strlen(word)) {
		if ((v = ehx_category_parse(word)) <= 0 ||
		    v > EHX_POLICY_CATEGORIES) {
			snprintf(why, whysz, "unknown category \"%.40s\" in "
			    "[%.60s]", word, section);
			return EHX_ERR_CONFIG;
		}
		if (ps->seen_notify[v])
			goto twice;
		ps->seen_notify[v] = true;
		ps->kind = 2;
		ps->arg = v;
		return 0;
	}
	snprintf(why, whysz, "unknown section [%.60s] (agreement, view TYPE, "
	    "notify CATEGORY)", section);
	return EHX_ERR_CONFIG;
twice:
	snprintf(why, whysz, "[%.60s] is given twice", section);
	return EHX_ERR_CONFIG;
}

static int
on_key(void *user, const char *section, const char *key, const char *value,
    char *why, size_t whysz)
{
	struct parse *ps = user;
	struct ehx_policy *p = ps->p;
	int r, v, t;

	if (strcmp(section, ps->section) != 0 &&
	    (r = new_section(ps, section, why, whysz)) != 0)
		return r;
	t = ps->arg;
	switch (ps->kind) {
	case 0:
		if (strcmp(key, "id") == 0) {
			if ((r = once(ps, K_ID, key, why, whysz)) != 0)
				return r;
			if (!ehx_id_ok(value)) {
				snprintf(why, whysz, "id must be 1..%d of a-z 0-9 "
				    "_ -", EHX_MAX_ID);
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
		break;
	case 1:
		if (strcmp(key, "categories") == 0) {
			struct words ws = { 0 };

			/* Given again (or continued on an indented line),
			 * the lists add up. */
			if ((r = each_word(value, "categories", category_word,
			    &ws, why, whysz)) != 0)
				return r;
			if ((ws.all || ws.none) && ws.n > 1) {
				snprintf(why, whysz, "\"all\" and \"none\" stand "
				    "alone in a list of categories");
				return EHX_ERR_CONFIG;
			}
			for (int c = 1; c <= EHX_POLICY_CATEGORIES; c++)
				if (ws.all || ws.cats[c])
					p->view[t][c] = EHX_POLICY_SEE;
			ps->categories_given[t] = true;
			return 0;
		}
		if (strcmp(key, "details") == 0) {
			unsigned bits;

			if ((r = details_of(value, &bits, why, whysz)) != 0)
				return r;
			ps->details_given[t] = true;
			ps->defaults[t] |= bits;
			return 0;
		}
		if (strncmp(key, "details.", 8) == 0) {
			if ((v = ehx_category_parse(key + 8)) <= 0 ||
			    v > EHX_POLICY_CATEGORIES) {
				snprintf(why, whysz, "unknown category \"%.40s\"",
				    key + 8);
				return EHX_ERR_CONFIG;
			}
			{
				unsigned bits;

				if ((r = details_of(value, &bits, why,
				    whysz)) != 0)
					return r;
				ps->override[t][v] = true;
				ps->override_bits[t][v] |= bits;
				return 0;
			}
		}
		if (strcmp(key, "picture_basis") == 0) {
			if ((r = once(ps, K_BASIS, key, why, whysz)) != 0)
				return r;
			if ((v = ehx_basis_parse(value)) <= 0) {
				snprintf(why, whysz, "unknown lawful basis "
				    "\"%.40s\" (consent, public_task, "
				    "legal_obligation, vital_interests)", value);
				return EHX_ERR_CONFIG;
			}
			p->picture_basis[t] = v;
			return 0;
		}
		break;
	case 2:
		if ((v = ehx_agency_type_parse(key)) <= 0 ||
		    v > EHX_POLICY_TYPES) {
			snprintf(why, whysz, "unknown agency type \"%.40s\"", key);
			return EHX_ERR_CONFIG;
		}
		if (p->notify[t][v] != 0) {
			snprintf(why, whysz, "%.40s is given twice in [%s]", key,
			    ps->section);
			return EHX_ERR_CONFIG;
		}
		if ((r = ehx_basis_parse(value)) <= 0) {
			snprintf(why, whysz, "unknown lawful basis \"%.40s\" "
			    "(consent, public_task, legal_obligation, "
			    "vital_interests)", value);
			return EHX_ERR_CONFIG;
		}
		p->notify[t][v] = r;
		return 0;
	}
	snprintf(why, whysz, "unknown key \"%.40s\" in [%s]", key, ps->section);
	return EHX_ERR_CONFIG;
}

int
ehx_policy_load(const char *path, struct ehx_policy *p, char *err,
    size_t errsz)
{
	struct parse *ps;
	int r;

	memset(p, 0, sizeof(*p));
	for (int t = 0; t <= EHX_POLICY_TYPES; t++)
		p->picture_basis[t] = EHX__LAWFUL_BASIS__LAWFUL_BASIS_CONSENT;
	if ((ps = calloc(1, sizeof(*ps))) == NULL)
		return EHX_ERR_NOMEM;
	ps->p = p;
	ps->section[0] = '\001';        /* matches no section name */
	if ((r = ehx_conf_parse(path, on_key, ps, err, errsz)) != 0)
		goto out;
	r = EHX_ERR_CONFIG;
	if (p->id[0] == '\0') {
		snprintf(err, errsz, "%s: [agreement] id is required", path);
		goto out;
	}
	for (int t = 1; t <= EHX_POLICY_TYPES; t++) {
		if (!p->view_present[t])
			continue;
		if (!ps->categories_given[t]) {
			snprintf(err, errsz, "%s: [view %s] needs categories",
			    path, ehx_agency_type_name(t));
			goto out;
		}
		for (int c = 1; c <= EHX_POLICY_CATEGORIES; c++) {
			if (ps->override[t][c] && !(p->view[t][c] &
			    EHX_POLICY_SEE)) {
				snprintf(err, errsz, "%s: [view %s] gives details "
				    "of %s, which it does not list in "
				    "categories", path, ehx_agency_type_name(t),
				    ehx_category_name(c));
				goto out;
			}
			if (p->view[t][c] & EHX_POLICY_SEE)
				p->view[t][c] |= ps->override[t][c] ?
				    ps->override_bits[t][c] : ps->defaults[t];
		}
	}
	r = 0;
out:
	free(ps);
	if (r != 0)
		memset(p, 0, sizeof(*p));
	return r;
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
