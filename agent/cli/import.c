/*
 * import.c — the rows of `ehx import`: a nightly extract from an agency's
 * case system, as CSV (through libcsv) or JSON lines (through json-c),
 * each row a publish or a close of one of this agency's flags.
 *
 * Everything here is pure: bytes in, rows and errors out, so the unit
 * tests and the fuzzer drive it directly; ehx.c does the reading, the
 * sending and the waiting. Every row is checked before anything is sent:
 * its fields one by one (UTF-8, length, known words), then the request it
 * makes with ehx_validate_request(), the broker's own rules; an (action,
 * ref) that an earlier row had is refused, since a flag is (agency, ref)
 * and the second row would silently undo the first. Errors carry the
 * row's number among the data rows and the line it starts on, which a
 * quoted CSV field with line breaks makes differ.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <csv.h>
#include <json-c/json.h>

#include "import.h"
#include "render.h"
#include "ehx/err.h"
#include "ehx/identity.h"
#include "ehx/names.h"
#include "ehx/nhs.h"
#include "ehx/util.h"
#include "ehx/validate.h"

/* The columns (CSV) and keys (JSON lines). */
enum field {
	F_ACTION, F_NHS, F_REF, F_CATEGORY, F_LEVEL, F_PRACTITIONER, F_JOB,
	F_CONTACT, F_LEAD, F_NOTE, F_WITHHOLD, F_REASON, F_LOCALITY,
	F_UPN, F_LOCAL_ID, F_GIVEN, F_FAMILY, F_DOB, F_SEX, F_POSTCODE, F_UPRN,
	F_KIND, F_FROM, F_UNTIL, NFIELDS
};

/* How a field's text is read. */
enum kind {
	K_TEXT,         /* kept as given, trimmed */
	K_FOLD,         /* free text: line breaks and tabs become one space */
	K_WORD,         /* a word, any case */
	K_BOOL,         /* true/false/yes/no/1/0 */
	K_LEVEL,        /* 1..4 */
};

static const struct {
	const char *name;
	size_t max;             /* bytes after trimming */
	enum kind kind;
	bool publish, close, involve;   /* which actions may carry it */
} fields[NFIELDS] = {
	[F_ACTION] = { "action", 16, K_WORD, true, true, true },
	[F_NHS] = { "nhs_number", 32, K_TEXT, true, true, true },
	[F_REF] = { "ref", EHX_MAX_REF, K_TEXT, true, true, false },
	[F_CATEGORY] = { "category", 64, K_WORD, true, false, false },
	[F_LEVEL] = { "level", 8, K_LEVEL, true, false, false },
	[F_PRACTITIONER] = { "practitioner", EHX_MAX_NAME, K_TEXT, true, false,
	    false },
	[F_JOB] = { "job", EHX_MAX_JOB, K_TEXT, true, false, false },
	[F_CONTACT] = { "contact", EHX_MAX_CONTACT, K_TEXT, true, false, false },
	[F_LEAD] = { "lead", 8, K_BOOL, true, false, false },
	[F_NOTE] = { "note", EHX_MAX_NOTE, K_FOLD, true, false, false },
	[F_WITHHOLD] = { "withhold", 8, K_BOOL, true, false, false },
	[F_REASON] = { "reason", EHX_MAX_REASON, K_FOLD, false, true, false },
	[F_LOCALITY] = { "locality", EHX_MAX_ID, K_TEXT, true, false, false },
	[F_UPN] = { "upn", 32, K_TEXT, true, true, true },
	[F_LOCAL_ID] = { "local_id", EHX_MAX_REF, K_TEXT, true, true, true },
	[F_GIVEN] = { "given_name", EHX_MAX_PERSON_NAME, K_TEXT, true, true,
	    true },
	[F_FAMILY] = { "family_name", EHX_MAX_PERSON_NAME, K_TEXT, true, true,
	    true },
	[F_DOB] = { "date_of_birth", 10, K_TEXT, true, true, true },
	[F_SEX] = { "sex", 16, K_WORD, true, true, true },
	[F_POSTCODE] = { "postcode", 10, K_TEXT, true, true, true },
	[F_UPRN] = { "uprn", EHX_MAX_UPRN, K_TEXT, true, true, true },
	[F_KIND] = { "kind", 16, K_WORD, false, false, true },
	[F_FROM] = { "from", 10, K_TEXT, false, false, true },
	[F_UNTIL] = { "until", 10, K_TEXT, false, false, true },
};

/* A field longer than this is not copied, only measured: it is refused. */
#define CAPTURE_MAX 4096
#define FIELD_BUF 512           /* above every field's max */

/* One row's values as read, before any check. v NULL: absent or empty. */
struct raw {
	const char *v[NFIELDS];
	size_t len[NFIELDS];
};

struct ctx {
	struct import_rows *out;
	struct import_errors *errs;
	size_t max_rows;
	int rc;                 /* fatal: stop (EHX_ERR_*) */
	bool stop;
	/* (action, ref) seen: open addressing over row index + 1 */
	uint32_t *seen;
	size_t seen_cap;
	/* CSV */
	bool header_done;
	int col[64 + 1];        /* column -> field, or -1: ignored */
	size_t ncols;
	size_t line;            /* the line of the segment being parsed */
	size_t row_line;        /* the line the current row began on */
	char *buf;              /* the current row's fields, copied */
	size_t buf_len, buf_cap;
	struct cfield { size_t off, len; bool big; } *fld;
	size_t nfld, fld_cap;
	size_t nfields_seen;    /* fields in the current row, all counted */
};

#define MAX_COLUMNS 64

static void add_error(struct ctx *c, size_t row, size_t line,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
add_error(struct ctx *c, size_t row, size_t line, const char *fmt, ...)
{
	struct import_errors *e = c->errs;
	va_list ap;

	e->total++;
	if (e->n >= IMPORT_MAX_ERRORS)
		return;
	e->e[e->n].row = row;
	e->e[e->n].line = line;
	va_start(ap, fmt);
	vsnprintf(e->e[e->n].why, sizeof(e->e[e->n].why), fmt, ap);
	va_end(ap);
	e->n++;
}

/*
 * A short, printable quote of what a row gave, for an error: printable
 * ASCII only (others become '?'), cut at 24 bytes with "...". Into out
 * (32 bytes).
 */
static const char *
quote(char out[32], const char *s, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < len && o < 24; i++)
		out[o++] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	if (len > 24) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
	return out;
}

/* Strict UTF-8: shortest forms, no surrogates, nothing beyond U+10FFFF. */
static bool
utf8_ok(const unsigned char *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned c = p[i], cp;
		size_t k;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			k = 1, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			k = 2, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			k = 3, cp = c & 0x07;
		else
			return false;
		if (n - i <= k)
			return false;
		for (size_t j = 1; j <= k; j++) {
			if ((p[i + j] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[i + j] & 0x3fu);
		}
		if ((k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += k + 1;
	}
	return true;
}

static bool
is_blank(char ch)
{
	return ch == ' ' || ch == '\t';
}

static bool
is_break(char ch)
{
	return ch == '\r' || ch == '\n' || ch == '\t';
}

/*
 * Check one field's bytes and put its clean text in out (FIELD_BUF):
 * no NUL, valid UTF-8, trimmed of spaces and tabs, line breaks and tabs
 * folded into one space in free text, within the field's length, and no
 * control character left. Returns false after recording the error.
 */
static bool
clean(struct ctx *c, enum field f, const char *v, size_t len, size_t row,
    size_t line, char out[FIELD_BUF])
{
	size_t a = 0, b = len, o = 0, full = 0;
	const char *name = fields[f].name;

	if (len > CAPTURE_MAX) {
		add_error(c, row, line, "%s is %zu bytes; at most %zu", name, len,
		    fields[f].max);
		return false;
	}
	if (memchr(v, '\0', len) != NULL) {
		add_error(c, row, line, "%s contains a NUL byte", name);
		return false;
	}
	if (!utf8_ok((const unsigned char *)v, len)) {
		add_error(c, row, line, "%s is not valid UTF-8", name);
		return false;
	}
	while (a < b && (is_blank(v[a]) || (fields[f].kind == K_FOLD &&
	    is_break(v[a]))))
		a++;
	while (b > a && (is_blank(v[b - 1]) || (fields[f].kind == K_FOLD &&
	    is_break(v[b - 1]))))
		b--;
	for (size_t i = a; i < b; i++) {
		char ch = v[i];

		if (fields[f].kind == K_FOLD && is_break(ch)) {
			while (i + 1 < b && is_break(v[i + 1]))
				i++;
			ch = ' ';
		}
		if (o < FIELD_BUF - 1)
			out[o++] = ch;
		full++;
	}
	out[o] = '\0';
	if (full > fields[f].max) {
		add_error(c, row, line, "%s is %zu bytes; at most %zu", name,
		    full, fields[f].max);
		return false;
	}
	if (!ehx_text_ok(out, 0, fields[f].max)) {
		add_error(c, row, line, "%s contains a control character%s",
		    name, fields[f].kind == K_FOLD ? "" : " (line breaks "
		    "and tabs are allowed only in note and reason)");
		return false;
	}
	if (fields[f].kind == K_WORD || fields[f].kind == K_BOOL ||
	    fields[f].kind == K_LEVEL)
		for (char *p = out; *p != '\0'; p++)
			*p = (char)tolower((unsigned char)*p);
	return true;
}

/* A yes/no word: 1 true, 0 false, -1 not one. */
static int
parse_bool(const char *s)
{
	static const char *const yes[] = { "true", "yes", "1", "y" };
	static const char *const no[] = { "false", "no", "0", "n" };

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcmp(s, yes[i]) == 0)
			return 1;
		if (strcmp(s, no[i]) == 0)
			return 0;
	}
	return -1;
}

/* Append s and its NUL to the pool; its offset, or UINT32_MAX (no memory,
 * or a pool beyond 4 GiB). "" is always offset 0. */
static uint32_t
pool_add(struct import_rows *r, const char *s)
{
	size_t n = strlen(s) + 1, off;

	if (n == 1)
		return 0;
	if (r->pool_cap - r->pool_len < n) {
		size_t cap = r->pool_cap * 2 > r->pool_len + n ?
		    r->pool_cap * 2 : r->pool_len + n + 4096;
		char *p;

		if (cap > UINT32_MAX || (p = realloc(r->pool, cap)) == NULL)
			return UINT32_MAX;
		r->pool = p;
		r->pool_cap = cap;
	}
	off = r->pool_len;
	memcpy(r->pool + off, s, n);
	r->pool_len += n;
	return (uint32_t)off;
}

static uint64_t
hash_key(unsigned action, const char *ref)
{
	uint64_t h = 1469598103934665603ULL ^ action;

	for (; *ref != '\0'; ref++)
		h = (h ^ (unsigned char)*ref) * 1099511628211ULL;
	return h;
}

/*
 * The earlier row with row i's (action, ref), or SIZE_MAX when there is
 * none (and then row i is remembered). -1 cast: no memory (c->rc set).
 */
static size_t
seen_check(struct ctx *c, size_t i)
{
	struct import_rows *r = c->out;
	const struct import_row *w = &r->row[i];
	const char *ref = r->pool + w->ref;
	size_t mask, k;

	if ((r->n + 1) * 2 > c->seen_cap) {
		size_t cap = c->seen_cap ? c->seen_cap * 2 : 1024;
		uint32_t *t = calloc(cap, sizeof(*t));

		if (t == NULL) {
			c->rc = EHX_ERR_NOMEM;
			return SIZE_MAX;
		}
		for (size_t j = 0; j < c->seen_cap; j++) {
			const struct import_row *o;

			if (c->seen[j] == 0)
				continue;
			o = &r->row[c->seen[j] - 1];
			for (k = hash_key(o->action, r->pool + o->ref) & (cap - 1);
			    t[k] != 0; k = (k + 1) & (cap - 1))
				;
			t[k] = c->seen[j];
		}
		free(c->seen);
		c->seen = t;
		c->seen_cap = cap;
	}
	mask = c->seen_cap - 1;
	for (k = hash_key(w->action, ref) & mask; c->seen[k] != 0;
	    k = (k + 1) & mask) {
		const struct import_row *o = &r->row[c->seen[k] - 1];

		if (o->action == w->action && strcmp(r->pool + o->ref, ref) == 0)
			return c->seen[k] - 1;
	}
	c->seen[k] = (uint32_t)(i + 1);
	return SIZE_MAX;
}

void
import_body(const struct import_rows *rows, size_t i, struct import_msg *m)
{
	const struct import_row *w = &rows->row[i];
	char *p = rows->pool;

	ehx__body__init(&m->body);
	ehx__publish_flag__init(&m->publish);
	ehx__close_flag__init(&m->close);
	ehx__practitioner__init(&m->practitioner);
	ehx__child_identity__init(&m->child);
	ehx__record_involvement__init(&m->involvement);
	if (w->identity) {
		m->child.nhs_number = p + w->nhs;
		m->child.upn = p + w->upn;
		m->child.local_id = p + w->local_id;
		m->child.given_name = p + w->given;
		m->child.family_name = p + w->family;
		m->child.date_of_birth = p + w->dob;
		m->child.sex = (Ehx__Sex)w->sex;
		m->child.postcode = p + w->postcode;
		m->child.uprn = p + w->uprn;
	}
	if (w->action == IMPORT_INVOLVEMENT) {
		m->involvement.child = &m->child;
		m->involvement.kind = (Ehx__InvolvementKind)w->kind;
		m->involvement.starts_on = p + w->from;
		m->involvement.ends_on = p + w->until;
		m->body.payload_case = EHX__BODY__PAYLOAD_RECORD_INVOLVEMENT;
		m->body.record_involvement = &m->involvement;
		return;
	}
	if (w->action == IMPORT_CLOSE) {
		m->close.nhs_number = w->identity ? (char *)"" : p + w->nhs;
		if (w->identity)
			m->close.child = &m->child;
		m->close.ref = p + w->ref;
		m->close.reason = p + w->reason;
		m->body.payload_case = EHX__BODY__PAYLOAD_CLOSE_FLAG;
		m->body.close_flag = &m->close;
		return;
	}
	m->practitioner.name = p + w->practitioner;
	m->practitioner.role = p + w->job;
	m->practitioner.contact = p + w->contact;
	m->publish.nhs_number = w->identity ? (char *)"" : p + w->nhs;
	if (w->identity)
		m->publish.child = &m->child;
	m->publish.ref = p + w->ref;
	m->publish.category = (Ehx__Category)w->category;
	m->publish.level = w->level;
	m->publish.practitioner = &m->practitioner;
	m->publish.lead = w->lead;
	m->publish.note = p + w->note;
	m->publish.withhold = w->withhold;
	m->publish.locality = p + w->locality;
	m->body.payload_case = EHX__BODY__PAYLOAD_PUBLISH_FLAG;
	m->body.publish_flag = &m->publish;
}

/* The child's identity fields of a row (normalised in val). */
static void
take_identity(struct ctx *c, struct import_row *w,
    char val[NFIELDS][FIELD_BUF], const bool *have, size_t row, size_t line)
{
	static const enum field id[] = { F_UPN, F_LOCAL_ID, F_GIVEN, F_FAMILY,
	    F_DOB, F_SEX, F_POSTCODE, F_UPRN };
	char upn[EHX_UPN_LEN + 1], pc[EHX_POSTCODE_LEN + 1];

	w->identity = w->action == IMPORT_INVOLVEMENT;
	for (size_t i = 0; i < sizeof(id) / sizeof(id[0]); i++)
		w->identity |= have[id[i]];
	if (have[F_UPN]) {
		if (ehx_upn_normalise(val[F_UPN], upn) != 0)
			add_error(c, row, line, "upn is not a unique pupil "
			    "number (a check letter and 12 characters)");
		else
			snprintf(val[F_UPN], FIELD_BUF, "%s", upn);
	}
	if (have[F_POSTCODE]) {
		if (ehx_postcode_normalise(val[F_POSTCODE], pc) != 0)
			add_error(c, row, line, "postcode is not a UK postcode");
		else
			snprintf(val[F_POSTCODE], FIELD_BUF, "%s", pc);
	}
	if (have[F_SEX]) {
		const char *s = val[F_SEX];

		if (strcmp(s, "female") == 0 || strcmp(s, "f") == 0)
			w->sex = EHX__SEX__SEX_FEMALE;
		else if (strcmp(s, "male") == 0 || strcmp(s, "m") == 0)
			w->sex = EHX__SEX__SEX_MALE;
		else if (strcmp(s, "indeterminate") == 0)
			w->sex = EHX__SEX__SEX_INDETERMINATE;
		else
			add_error(c, row, line, "sex must be female, male or "
			    "indeterminate (or f, m)");
	}
}

/* An involvement row's kind and dates (a roll's: enrolled, from today). */
static void
take_involvement(struct ctx *c, struct import_row *w,
    char val[NFIELDS][FIELD_BUF], const bool *have, size_t row, size_t line)
{
	int k;

	if (have[F_KIND]) {
		if ((k = ehx_involvement_kind_parse(val[F_KIND])) < 1)
			add_error(c, row, line, "kind must be enrolled, "
			    "registered, caseload or tenancy");
		else
			w->kind = (uint8_t)k;
	} else if (c->out->roll)
		w->kind = EHX__INVOLVEMENT_KIND__INVOLVEMENT_KIND_ENROLLED;
	else
		add_error(c, row, line, "kind is required for an involvement "
		    "(enrolled, registered, caseload or tenancy)");
	if (!have[F_FROM]) {
		if (c->out->roll)
			ehx_fmt_day(val[F_FROM], FIELD_BUF, ehx_now_ms());
		else
			add_error(c, row, line, "from is required for an "
			    "involvement (YYYY-MM-DD)");
	}
}

/*
 * One data row, read by either format: check every field, then the
 * request, then its (action, ref); keep it if all hold. The row's number
 * is counted here, so a skipped blank row never has one.
 */
static void
take_row(struct ctx *c, const struct raw *raw, size_t line)
{
	struct import_rows *r = c->out;
	struct import_row w;
	struct import_msg m;
	char val[NFIELDS][FIELD_BUF], nhs[EHX_NHS_LEN + 1], q[32], why[256];
	size_t row, errs0 = c->errs->total, pool0 = r->pool_len, dup;
	bool have[NFIELDS];
	int v;

	if (c->stop)
		return;
	if (r->seen >= c->max_rows) {
		add_error(c, 0, line, "more than %zu rows: split the file",
		    c->max_rows);
		c->rc = EHX_ERR_TOO_LARGE;
		c->stop = true;
		return;
	}
	row = ++r->seen;
	memset(&w, 0, sizeof(w));
	w.row = (uint32_t)row;
	w.line = (uint32_t)line;
	for (int f = 0; f < NFIELDS; f++) {
		val[f][0] = '\0';
		have[f] = false;
		if (raw->v[f] == NULL)
			continue;
		if (clean(c, (enum field)f, raw->v[f], raw->len[f], row, line,
		    val[f]))
			have[f] = val[f][0] != '\0';
	}
	if (c->errs->total != errs0)
		return;
	w.action = r->roll ? IMPORT_INVOLVEMENT : IMPORT_PUBLISH;
	if (have[F_ACTION]) {
		if (strcmp(val[F_ACTION], "publish") == 0)
			w.action = IMPORT_PUBLISH;
		else if (strcmp(val[F_ACTION], "close") == 0)
			w.action = IMPORT_CLOSE;
		else if (strcmp(val[F_ACTION], "involvement") == 0)
			w.action = IMPORT_INVOLVEMENT;
		else
			add_error(c, row, line, "action must be publish, close or "
			    "involvement, not \"%s\"", quote(q, val[F_ACTION],
			    strlen(val[F_ACTION])));
	}
	for (int f = 0; f < NFIELDS; f++) {
		bool allowed = w.action == IMPORT_CLOSE ? fields[f].close :
		    w.action == IMPORT_INVOLVEMENT ? fields[f].involve :
		    fields[f].publish;

		if (!have[f] || allowed)
			continue;
		/* A spreadsheet's "no" under lead on a close row is no harm. */
		if (fields[f].kind == K_BOOL && parse_bool(val[f]) == 0)
			continue;
		{
			const char *is = w.action == IMPORT_CLOSE ? "close" :
			    w.action == IMPORT_INVOLVEMENT ? "involvement" :
			    "publish";
			const char *for_ = fields[f].publish ? "publish" :
			    fields[f].close ? "close" : "involvement";

			add_error(c, row, line, "%s is for %s rows, not %s rows",
			    fields[f].name, for_, is);
		}
	}
	take_identity(c, &w, val, have, row, line);
	nhs[0] = '\0';
	if (!have[F_NHS] && !w.identity)
		add_error(c, row, line, "nhs_number is required, or the child "
		    "as this agency knows them (upn, local_id, or "
		    "family_name and date_of_birth)");
	else if (have[F_NHS] && ehx_nhs_normalise(val[F_NHS], nhs) != 0)
		add_error(c, row, line, "nhs_number is not a valid NHS number "
		    "(10 digits with a modulus-11 check digit)");
	if (w.action == IMPORT_INVOLVEMENT)
		take_involvement(c, &w, val, have, row, line);
	else if (!have[F_REF])
		add_error(c, row, line, "ref is required: the agency's own "
		    "reference for the involvement");
	if (w.action == IMPORT_PUBLISH) {
		if (!have[F_CATEGORY])
			add_error(c, row, line, "category is required");
		else if ((v = ehx_category_parse(val[F_CATEGORY])) < 0)
			add_error(c, row, line, "category \"%s\" is not a known "
			    "category", quote(q, val[F_CATEGORY],
			    strlen(val[F_CATEGORY])));
		else
			w.category = (uint8_t)v;
		if (!have[F_LEVEL])
			add_error(c, row, line, "level is required (1-4)");
		else if (strlen(val[F_LEVEL]) != 1 || val[F_LEVEL][0] < '1' ||
		    val[F_LEVEL][0] > '4')
			add_error(c, row, line, "level must be 1, 2, 3 or 4, not "
			    "\"%s\"", quote(q, val[F_LEVEL],
			    strlen(val[F_LEVEL])));
		else
			w.level = (uint8_t)(val[F_LEVEL][0] - '0');
		if (!have[F_PRACTITIONER])
			add_error(c, row, line, "practitioner is required");
		for (int k = 0; k < 2; k++) {
			enum field f = k == 0 ? F_LEAD : F_WITHHOLD;

			if (!have[f])
				continue;
			if ((v = parse_bool(val[f])) < 0)
				add_error(c, row, line, "%s must be true, false, "
				    "yes, no, 1 or 0, not \"%s\"", fields[f].name,
				    quote(q, val[f], strlen(val[f])));
			else if (f == F_LEAD)
				w.lead = v == 1;
			else
				w.withhold = v == 1;
		}
	}
	if (c->errs->total != errs0)
		return;
	if (w.action == IMPORT_INVOLVEMENT) {
		/* what makes a row the same as another: its kind and child,
		 * by identifiers or, without any, by all it says of the child */
		char key[FIELD_BUF];

		if (nhs[0] != '\0' || val[F_UPN][0] != '\0' ||
		    val[F_LOCAL_ID][0] != '\0')
			snprintf(key, sizeof(key), "%u|%s|%s|%s", w.kind, nhs,
			    val[F_UPN], val[F_LOCAL_ID]);
		else
			snprintf(key, sizeof(key), "%u||||%.70s|%.70s|%s|%s",
			    w.kind, val[F_GIVEN], val[F_FAMILY], val[F_DOB],
			    val[F_POSTCODE]);
		memcpy(val[F_REF], key, sizeof(key));
	}
	if ((w.nhs = pool_add(r, nhs)) == UINT32_MAX ||
	    (w.ref = pool_add(r, val[F_REF])) == UINT32_MAX ||
	    (w.upn = pool_add(r, val[F_UPN])) == UINT32_MAX ||
	    (w.local_id = pool_add(r, val[F_LOCAL_ID])) == UINT32_MAX ||
	    (w.given = pool_add(r, val[F_GIVEN])) == UINT32_MAX ||
	    (w.family = pool_add(r, val[F_FAMILY])) == UINT32_MAX ||
	    (w.dob = pool_add(r, val[F_DOB])) == UINT32_MAX ||
	    (w.postcode = pool_add(r, val[F_POSTCODE])) == UINT32_MAX ||
	    (w.uprn = pool_add(r, val[F_UPRN])) == UINT32_MAX ||
	    (w.from = pool_add(r, val[F_FROM])) == UINT32_MAX ||
	    (w.until = pool_add(r, val[F_UNTIL])) == UINT32_MAX ||
	    (w.practitioner = pool_add(r, val[F_PRACTITIONER])) == UINT32_MAX ||
	    (w.job = pool_add(r, val[F_JOB])) == UINT32_MAX ||
	    (w.contact = pool_add(r, val[F_CONTACT])) == UINT32_MAX ||
	    (w.note = pool_add(r, val[F_NOTE])) == UINT32_MAX ||
	    (w.reason = pool_add(r, val[F_REASON])) == UINT32_MAX ||
	    (w.locality = pool_add(r, val[F_LOCALITY])) == UINT32_MAX)
		goto nomem;
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 256;
		struct import_row *p = realloc(r->row, cap * sizeof(*p));

		if (p == NULL)
			goto nomem;
		r->row = p;
		r->cap = cap;
	}
	r->row[r->n] = w;
	import_body(r, r->n, &m);
	if (ehx_validate_request(&m.body, ehx_now_ms(), why, sizeof(why)) != 0) {
		add_error(c, row, line, "%s", why);
		r->pool_len = pool0;
		return;
	}
	if ((dup = seen_check(c, r->n)) != SIZE_MAX &&
	    w.action == IMPORT_INVOLVEMENT) {
		add_error(c, row, line, "the same child is on row %u (line %u) "
		    "already", r->row[dup].row, r->row[dup].line);
		r->pool_len = pool0;
		return;
	}
	if (dup != SIZE_MAX) {
		add_error(c, row, line, "ref \"%s\" is %sd already by row %u "
		    "(line %u)", quote(q, val[F_REF], strlen(val[F_REF])),
		    w.action == IMPORT_CLOSE ? "close" : "publishe",
		    r->row[dup].row, r->row[dup].line);
		r->pool_len = pool0;
		return;
	}
	if (c->rc != 0)
		goto nomem;
	r->n++;
	return;
nomem:
	r->pool_len = pool0;
	c->rc = EHX_ERR_NOMEM;
	c->stop = true;
}

/* ---- CSV ------------------------------------------------------------------ */

/* libcsv's state before a row has begun (ROW_NOT_BEGUN in libcsv.c). */
#define CSV_ROW_NOT_BEGUN 0

static void
csv_field_cb(void *data, size_t len, void *arg)
{
	struct ctx *c = arg;
	struct cfield *fl;
	size_t keep = len > CAPTURE_MAX ? 0 : len;

	if (c->stop)
		return;
	c->nfields_seen++;
	if (c->nfld > MAX_COLUMNS)
		return;         /* counted, not kept: the row is refused */
	if (c->nfld == c->fld_cap) {
		size_t cap = c->fld_cap ? c->fld_cap * 2 : 16;

		if ((fl = realloc(c->fld, cap * sizeof(*fl))) == NULL)
			goto nomem;
		c->fld = fl;
		c->fld_cap = cap;
	}
	if (c->buf_cap - c->buf_len < keep + 1) {
		size_t cap = (c->buf_len + keep + 1) * 2;
		char *b = realloc(c->buf, cap);

		if (b == NULL)
			goto nomem;
		c->buf = b;
		c->buf_cap = cap;
	}
	fl = &c->fld[c->nfld++];
	fl->off = c->buf_len;
	fl->len = len;
	fl->big = len > CAPTURE_MAX;
	if (keep > 0)
		memcpy(c->buf + c->buf_len, data, keep);
	c->buf_len += keep;
	c->buf[c->buf_len++] = '\0';
	return;
nomem:
	c->rc = EHX_ERR_NOMEM;
	c->stop = true;
}

static void
csv_header(struct ctx *c, size_t line)
{
	bool seen[NFIELDS] = { false };
	char name[40], q[32];

	c->header_done = true;
	c->ncols = c->nfld;
	if (c->nfields_seen > MAX_COLUMNS) {
		add_error(c, 0, line, "the header has %zu columns; at most %d",
		    c->nfields_seen, MAX_COLUMNS);
		c->stop = true;
		return;
	}
	for (size_t i = 0; i < c->nfld; i++) {
		const char *v = c->buf + c->fld[i].off;
		size_t len = c->fld[i].len, a = 0;
		int f = -1;

		c->col[i] = -1;
		if (c->fld[i].big) {
			add_error(c, 0, line, "column %zu of the header is not "
			    "a column name (%zu bytes)", i + 1, len);
			continue;
		}
		while (a < len && is_blank(v[a]))
			a++;
		while (len > a && is_blank(v[len - 1]))
			len--;
		if (len - a < sizeof(name)) {
			for (size_t k = a; k < len; k++)
				name[k - a] = (char)tolower((unsigned char)v[k]);
			name[len - a] = '\0';
			for (int k = 0; k < NFIELDS && f < 0; k++)
				if (strcmp(name, fields[k].name) == 0)
					f = k;
		}
		if (len == a)
			add_error(c, 0, line, "column %zu of the header has no "
			    "name", i + 1);
		else if (f < 0)
			add_error(c, 0, line, "unknown column \"%s\" (action, "
			    "nhs_number, ref, category, level, practitioner, "
			    "job, contact, lead, note, withhold, reason, "
			    "locality, upn, local_id, given_name, family_name, "
			    "date_of_birth, sex, postcode, uprn, kind, from, "
			    "until)", quote(q, v + a, len - a));
		else if (seen[f])
			add_error(c, 0, line, "column \"%s\" appears twice",
			    fields[f].name);
		else {
			seen[f] = true;
			c->col[i] = f;
		}
	}
	{
		/* the child: an NHS number, or who the agency knows */
		bool child = seen[F_NHS] || seen[F_UPN] || seen[F_LOCAL_ID] ||
		    seen[F_FAMILY];
		bool ref = seen[F_REF] || c->out->roll || seen[F_ACTION];

		if (!child || !ref) {
			add_error(c, 0, line, "the header needs a column naming "
			    "the child (nhs_number, upn, local_id or "
			    "family_name)%s%s", ref ? "" : " and ref",
			    c->nfld <= 1 ? " (is the first line the header, "
			    "with commas between the names?)" : "");
			c->stop = true;
		}
	}
}

static void
csv_row_cb(int term, void *arg)
{
	struct ctx *c = arg;
	struct raw raw;
	bool empty = true;

	(void)term;
	if (c->stop)
		goto out;
	for (size_t i = 0; i < c->nfld; i++)
		empty = empty && c->fld[i].len == 0;
	if (!c->header_done) {
		csv_header(c, c->row_line);
		goto out;
	}
	if (empty)
		goto out;       /* ",,,," under a spreadsheet's last row */
	if (c->nfields_seen != c->ncols) {
		if (c->out->seen >= c->max_rows) {
			take_row(c, NULL, c->row_line);  /* the bound, first */
			goto out;
		}
		add_error(c, ++c->out->seen, c->row_line, "the row has %zu "
		    "fields; the header has %zu", c->nfields_seen, c->ncols);
		goto out;
	}
	memset(&raw, 0, sizeof(raw));
	for (size_t i = 0; i < c->nfld; i++) {
		int f = c->col[i];

		if (f < 0 || c->fld[i].len == 0)
			continue;
		raw.v[f] = c->buf + c->fld[i].off;
		raw.len[f] = c->fld[i].len;
	}
	take_row(c, &raw, c->row_line);
out:
	c->nfld = 0;
	c->nfields_seen = 0;
	c->buf_len = 0;
}

/* The last byte of the line that starts at s: its LF, the LF of a CRLF,
 * or a CR alone (old Macintosh files); NULL when the line has no end. */
static const char *
next_eol(const char *s, size_t n)
{
	const char *lf = memchr(s, '\n', n), *cr = memchr(s, '\r',
	    lf != NULL ? (size_t)(lf - s) : n);

	if (cr == NULL)
		return lf;
	if (cr + 1 < s + n && cr[1] == '\n')
		return cr + 1;
	return cr;
}

static void
parse_csv(struct ctx *c, const char *data, size_t len, size_t line0)
{
	struct csv_parser p;
	size_t off = 0;

	if (csv_init(&p, CSV_STRICT | CSV_STRICT_FINI) != 0) {
		c->rc = EHX_ERR_NOMEM;
		return;
	}
	c->line = line0;
	c->row_line = line0;
	/*
	 * Feed libcsv one line at a time, so each callback knows the line it
	 * is on; a row that begins where no row is open begins on this line.
	 */
	while (off < len && !c->stop) {
		const char *nl = next_eol(data + off, len - off);
		size_t seg = nl != NULL ? (size_t)(nl - (data + off)) + 1 :
		    len - off;

		if (p.pstate == CSV_ROW_NOT_BEGUN)
			c->row_line = c->line;
		if (csv_parse(&p, data + off, seg, csv_field_cb, csv_row_cb,
		    c) != seg) {
			if (csv_error(&p) == CSV_EPARSE)
				add_error(c, c->header_done ? c->out->seen + 1 : 0,
				    c->line, "not CSV: a quote inside "
				    "a field that does not begin with one, or "
				    "text after a closing quote (a quote in a "
				    "field is written \"\")");
			else
				c->rc = EHX_ERR_NOMEM;
			c->stop = true;
			break;
		}
		off += seg;
		if (nl != NULL)
			c->line++;
	}
	if (!c->stop && csv_fini(&p, csv_field_cb, csv_row_cb, c) != 0) {
		if (csv_error(&p) == CSV_EPARSE)
			add_error(c, 0, c->row_line, "a quoted field that begins "
			    "here is not closed before the end of the file");
		else
			c->rc = EHX_ERR_NOMEM;
	}
	csv_free(&p);
	if (!c->header_done && c->rc == 0 && c->errs->total == 0)
		add_error(c, 0, 0, "the file is empty: a CSV import needs a "
		    "header row naming its columns");
}

/* ---- JSON lines ------------------------------------------------------------ */

/*
 * How many keys the object on this line has at its top level, counted in
 * its text: json-c keeps only the last of a key given twice, so a
 * difference from the parsed object's count is a repeated key. The line
 * has already parsed as one JSON object.
 */
static size_t
count_keys(const char *s, size_t n)
{
	size_t keys = 0, depth = 0;
	bool in_str = false, esc = false;

	for (size_t i = 0; i < n; i++) {
		char ch = s[i];

		if (in_str) {
			if (esc)
				esc = false;
			else if (ch == '\\')
				esc = true;
			else if (ch == '"') {
				size_t k = i + 1;

				in_str = false;
				while (k < n && (s[k] == ' ' || s[k] == '\t' ||
				    s[k] == '\r'))
					k++;
				if (depth == 1 && k < n && s[k] == ':')
					keys++;
			}
			continue;
		}
		if (ch == '"')
			in_str = true;
		else if (ch == '{' || ch == '[')
			depth++;
		else if ((ch == '}' || ch == ']') && depth > 0)
			depth--;
	}
	return keys;
}

static void
json_row(struct ctx *c, json_tokener *tok, const char *s, size_t n,
    size_t line)
{
	struct raw raw;
	json_object *o;
	enum json_tokener_error jerr;
	bool given[NFIELDS] = { false };
	char lv[4], q[32];
	size_t row, errs0 = c->errs->total;

	if (memchr(s, '\0', n) != NULL) {
		if (c->out->seen >= c->max_rows) {
			take_row(c, NULL, line);
			return;
		}
		add_error(c, ++c->out->seen, line, "the line contains a NUL byte");
		return;
	}
	json_tokener_reset(tok);
	o = json_tokener_parse_ex(tok, s, (int)n);
	jerr = json_tokener_get_error(tok);
	if (o == NULL || jerr != json_tokener_success ||
	    json_tokener_get_parse_end(tok) != n ||
	    !json_object_is_type(o, json_type_object)) {
		if (c->out->seen >= c->max_rows) {
			json_object_put(o);
			take_row(c, NULL, line);
			return;
		}
		row = ++c->out->seen;
		if (o != NULL && jerr == json_tokener_success &&
		    json_tokener_get_parse_end(tok) == n)
			add_error(c, row, line, "the line is JSON but not an "
			    "object ({\"key\": value, ...})");
		else if (jerr == json_tokener_continue ||
		    jerr == json_tokener_success)
			add_error(c, row, line, "the line is not one complete "
			    "JSON object");
		else
			add_error(c, row, line, "not JSON: %s",
			    json_tokener_error_desc(jerr));
		json_object_put(o);
		return;
	}
	if (c->out->seen >= c->max_rows) {
		json_object_put(o);
		take_row(c, NULL, line);
		return;
	}
	/* The row's number is take_row's to give: errors here use the next. */
	row = c->out->seen + 1;
	memset(&raw, 0, sizeof(raw));
	if (count_keys(s, n) != (size_t)json_object_object_length(o))
		add_error(c, row, line, "a key appears twice");
	json_object_object_foreach(o, key, val) {
		int f = -1;
		enum json_type t = json_object_get_type(val);

		for (int k = 0; k < NFIELDS && f < 0; k++)
			if (strcasecmp(key, fields[k].name) == 0)
				f = k;
		if (f < 0) {
			add_error(c, row, line, "unknown key \"%s\" (action, "
			    "nhs_number, ref, category, level, practitioner, "
			    "job, contact, lead, note, withhold, reason, locality)",
			    quote(q, key, strlen(key)));
			continue;
		}
		if (given[f]) {
			add_error(c, row, line, "key \"%s\" appears twice",
			    fields[f].name);
			continue;
		}
		given[f] = true;
		if (t == json_type_null)
			continue;
		switch (fields[f].kind) {
		case K_BOOL:
			if (t != json_type_boolean) {
				add_error(c, row, line, "%s must be true or "
				    "false", fields[f].name);
				continue;
			}
			raw.v[f] = json_object_get_boolean(val) ? "true" :
			    "false";
			break;
		case K_LEVEL:
			if (t != json_type_int || json_object_get_int64(val) < 1 ||
			    json_object_get_int64(val) > 4) {
				add_error(c, row, line, "level must be a number, "
				    "1, 2, 3 or 4");
				continue;
			}
			snprintf(lv, sizeof(lv), "%d", (int)
			    json_object_get_int64(val));
			raw.v[f] = lv;
			break;
		default:
			if (t != json_type_string) {
				add_error(c, row, line, "%s must be a string",
				    fields[f].name);
				continue;
			}
			raw.v[f] = json_object_get_string(val);
			raw.len[f] = (size_t)json_object_get_string_len(val);
			if (raw.len[f] == 0)
				raw.v[f] = NULL;
			continue;
		}
		raw.len[f] = strlen(raw.v[f]);
	}
	if (c->errs->total != errs0) {
		c->out->seen++;
		json_object_put(o);
		return;
	}
	take_row(c, &raw, line);
	json_object_put(o);
}

static void
parse_jsonl(struct ctx *c, const char *data, size_t len, size_t line0)
{
	json_tokener *tok;
	size_t off = 0, line = line0;

	if ((tok = json_tokener_new_ex(8)) == NULL) {
		c->rc = EHX_ERR_NOMEM;
		return;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
	    JSON_TOKENER_VALIDATE_UTF8);
	while (off < len && !c->stop) {
		const char *s = data + off, *nl = memchr(s, '\n', len - off);
		size_t n = nl != NULL ? (size_t)(nl - s) : len - off, a = 0;

		off += n + (nl != NULL);
		while (n > 0 && (is_blank(s[n - 1]) || s[n - 1] == '\r'))
			n--;
		while (a < n && is_blank(s[a]))
			a++;
		if (a < n) {
			if (n - a > INT32_MAX) {
				add_error(c, ++c->out->seen, line, "the line is "
				    "too long");
			} else
				json_row(c, tok, s + a, n - a, line);
		}
		line++;
	}
	json_tokener_free(tok);
}

/* ---- the whole file ------------------------------------------------------- */

enum import_format
import_format_of(const char *path)
{
	const char *dot = strrchr(path, '.');

	if (dot == NULL || strchr(dot, '/') != NULL)
		return IMPORT_UNKNOWN;
	if (strcasecmp(dot, ".csv") == 0)
		return IMPORT_CSV;
	if (strcasecmp(dot, ".jsonl") == 0 || strcasecmp(dot, ".ndjson") == 0)
		return IMPORT_JSONL;
	return IMPORT_UNKNOWN;
}

int
import_parse(const char *data, size_t len, enum import_format fmt,
    struct import_rows *out, struct import_errors *errs)
{
	struct ctx c;
	size_t max_rows = out->max_rows;
	bool roll = out->roll;

	memset(out, 0, sizeof(*out));
	memset(errs, 0, sizeof(*errs));
	out->max_rows = max_rows;
	out->roll = roll;
	memset(&c, 0, sizeof(c));
	c.out = out;
	c.errs = errs;
	c.max_rows = max_rows > 0 && max_rows < IMPORT_MAX_ROWS ? max_rows :
	    IMPORT_MAX_ROWS;
	if (len > IMPORT_MAX_FILE) {
		add_error(&c, 0, 0, "the file is %zu bytes; at most %zu (split "
		    "it)", len, IMPORT_MAX_FILE);
		return EHX_ERR_TOO_LARGE;
	}
	if ((out->pool = malloc(4096)) == NULL)
		return EHX_ERR_NOMEM;
	out->pool[0] = '\0';
	out->pool_len = 1;
	out->pool_cap = 4096;
	if (len >= 2 && (((unsigned char)data[0] == 0xff &&
	    (unsigned char)data[1] == 0xfe) || ((unsigned char)data[0] == 0xfe &&
	    (unsigned char)data[1] == 0xff))) {
		add_error(&c, 0, 1, "the file is UTF-16: save it as UTF-8");
		return EHX_ERR_INVALID_FIELD;
	}
	if (len >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0) {
		data += 3;      /* the byte order mark spreadsheets write */
		len -= 3;
	}
	if (fmt == IMPORT_CSV)
		parse_csv(&c, data, len, 1);
	else if (fmt == IMPORT_JSONL)
		parse_jsonl(&c, data, len, 1);
	else
		add_error(&c, 0, 0, "unknown format (csv or jsonl)");
	free(c.seen);
	free(c.buf);
	free(c.fld);
	if (c.rc != 0)
		return c.rc;
	return errs->total > 0 ? EHX_ERR_INVALID_FIELD : 0;
}

void
import_rows_free(struct import_rows *r)
{
	if (r == NULL)
		return;
	free(r->row);
	free(r->pool);
	r->row = NULL;
	r->pool = NULL;
	r->n = r->cap = r->pool_len = r->pool_cap = 0;
}

/* Bytes of a varint. */
static size_t
varint_len(size_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

size_t
import_batch_end(const struct import_rows *rows, size_t start,
    size_t max_bytes)
{
	/* as_role (a tag and a varint below 128) beside the batch */
	size_t used = 2, end = start;

	while (end < rows->n && end - start < IMPORT_BATCH) {
		struct import_msg m;
		size_t n;

		import_body(rows, end, &m);
		n = ehx__body__get_packed_size(&m.body);
		n += 1 + varint_len(n);         /* field 6's tag and length */
		if (end > start && used + n > max_bytes)
			break;
		used += n;
		end++;
	}
	return end;
}

/* ---- what is printed ---------------------------------------------------- */

void
import_print_errors(FILE *f, const char *file, const struct import_errors *errs,
    bool json)
{
	const char *name = render_safe(file);

	if (json) {
		json_object *o = json_object_new_object(),
		    *arr = json_object_new_array();

		json_object_object_add(o, "file", json_object_new_string(name));
		json_object_object_add(o, "valid", json_object_new_boolean(0));
		for (size_t i = 0; i < errs->n; i++) {
			json_object *e = json_object_new_object();

			json_object_object_add(e, "row", errs->e[i].row ?
			    json_object_new_uint64(errs->e[i].row) : NULL);
			json_object_object_add(e, "line", errs->e[i].line ?
			    json_object_new_uint64(errs->e[i].line) : NULL);
			json_object_object_add(e, "reason",
			    json_object_new_string(render_safe(errs->e[i].why)));
			json_object_array_add(arr, e);
		}
		json_object_object_add(o, "errors", arr);
		json_object_object_add(o, "more", json_object_new_uint64(
		    errs->total - errs->n));
		fprintf(f, "%s\n", json_object_to_json_string_ext(o,
		    JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
		    JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
		return;
	}
	for (size_t i = 0; i < errs->n; i++) {
		const struct import_error *e = &errs->e[i];

		if (e->row > 0 && e->line > 0)
			fprintf(f, "%s: row %zu (line %zu): %s\n", name, e->row,
			    e->line, render_safe(e->why));
		else if (e->row > 0)
			fprintf(f, "%s: row %zu: %s\n", name, e->row,
			    render_safe(e->why));
		else if (e->line > 0)
			fprintf(f, "%s: line %zu: %s\n", name, e->line,
			    render_safe(e->why));
		else
			fprintf(f, "%s: %s\n", name, render_safe(e->why));
	}
	if (errs->total > errs->n)
		fprintf(f, "%s: … and %zu more error%s\n", name,
		    errs->total - errs->n, errs->total - errs->n == 1 ? "" : "s");
}

/* "1:05" or "2:03:07" for s seconds. */
static void
clock_text(char *out, size_t outsz, uint64_t s)
{
	if (s >= 3600)
		snprintf(out, outsz, "%llu:%02u:%02u",
		    (unsigned long long)(s / 3600), (unsigned)(s / 60 % 60),
		    (unsigned)(s % 60));
	else
		snprintf(out, outsz, "%u:%02u", (unsigned)(s / 60),
		    (unsigned)(s % 60));
}

void
import_progress_line(char *out, size_t outsz, uint64_t done, uint64_t total,
    int64_t elapsed_ms)
{
	enum { WIDTH = 24 };
	char bar[WIDTH + 1], left[24];
	size_t fill = total > 0 ? (size_t)(done >= total ? WIDTH :
	    done * WIDTH / total) : WIDTH;
	double rate = elapsed_ms > 0 ? (double)done * 1000.0 /
	    (double)elapsed_ms : 0.0;

	for (size_t i = 0; i < WIDTH; i++)
		bar[i] = i < fill ? '#' : '-';
	bar[WIDTH] = '\0';
	if (done >= total)
		snprintf(left, sizeof(left), "0:00");
	else if (rate < 0.01)
		snprintf(left, sizeof(left), "--:--");
	else
		clock_text(left, sizeof(left), (uint64_t)((double)(total - done) /
		    rate + 0.5));
	snprintf(out, outsz, "[%s] %llu/%llu rows  %.0f/s  %s left", bar,
	    (unsigned long long)done, (unsigned long long)total, rate, left);
}

static json_object *
summary_json(const char *name, const struct import_result *res)
{
	json_object *o = json_object_new_object(), *arr = json_object_new_array();

	json_object_object_add(o, "file", json_object_new_string(name));
	json_object_object_add(o, "rows", json_object_new_uint64(res->rows));
	json_object_object_add(o, "waited", json_object_new_boolean(
	    res->waited));
	json_object_object_add(o, "first_outbox", res->rows ?
	    json_object_new_uint64(res->first) : NULL);
	json_object_object_add(o, "last_outbox", res->rows ?
	    json_object_new_uint64(res->last) : NULL);
	json_object_object_add(o, "delivered", json_object_new_uint64(
	    res->delivered));
	json_object_object_add(o, "unchanged", json_object_new_uint64(
	    res->unchanged));
	json_object_object_add(o, "refused", json_object_new_uint64(
	    res->refused));
	json_object_object_add(o, "pending", json_object_new_uint64(
	    res->pending));
	json_object_object_add(o, "timed_out", json_object_new_boolean(
	    res->timed_out));
	json_object_object_add(o, "seconds", json_object_new_double(
	    (double)(res->elapsed_ms / 100) / 10.0));
	for (size_t i = 0; i < res->n_refusals; i++) {
		const struct import_refusal *rf = &res->refusals[i];
		json_object *e = json_object_new_object();

		json_object_object_add(e, "row", json_object_new_uint64(rf->row));
		json_object_object_add(e, "line", json_object_new_uint64(
		    rf->line));
		json_object_object_add(e, "outbox", json_object_new_uint64(
		    rf->number));
		json_object_object_add(e, "error", json_object_new_string(
		    ehx_errname(rf->code)));
		json_object_object_add(e, "message", json_object_new_string(
		    render_safe(rf->message)));
		json_object_object_add(e, "what", json_object_new_string(
		    render_safe(rf->what)));
		json_object_array_add(arr, e);
	}
	json_object_object_add(o, "refusals", arr);
	json_object_object_add(o, "more_refusals", json_object_new_uint64(
	    res->refused > res->n_refusals ? res->refused - res->n_refusals :
	    0));
	return o;
}

void
import_print_summary(FILE *f, const char *file, const struct import_result *res,
    bool json)
{
	const char *name = render_safe(file);

	if (json) {
		json_object *o = summary_json(name, res);

		fprintf(f, "%s\n", json_object_to_json_string_ext(o,
		    JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
		    JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
		return;
	}
	if (!res->waited) {
		if (res->rows == 0)
			fprintf(f, "%s: 0 rows: nothing to send.\n", name);
		else
			fprintf(f, "%s: %llu row%s queued (outbox %llu..%llu); "
			    "the agent delivers them.\n", name,
			    (unsigned long long)res->rows, res->rows == 1 ?
			    "" : "s", (unsigned long long)res->first,
			    (unsigned long long)res->last);
		return;
	}
	fprintf(f, "%s: %llu row%s: %llu delivered (%llu unchanged), %llu "
	    "refused, in %.1f s\n", name, (unsigned long long)res->rows,
	    res->rows == 1 ? "" : "s", (unsigned long long)res->delivered,
	    (unsigned long long)res->unchanged,
	    (unsigned long long)res->refused,
	    (double)(res->elapsed_ms / 100) / 10.0);
	for (size_t i = 0; i < res->n_refusals; i++)
		fprintf(f, "row %zu: %s (%s)\n", res->refusals[i].row,
		    render_safe(res->refusals[i].message),
		    ehx_errname(res->refusals[i].code));
	if (res->refused > res->n_refusals)
		fprintf(f, "… and %llu more refused (ehx status lists the "
		    "latest)\n", (unsigned long long)(res->refused -
		    res->n_refusals));
	if (res->timed_out)
		fprintf(f, "%s: %llu row%s still queued when the wait ended; "
		    "the agent will deliver %s (ehx status shows its "
		    "outbox)\n", name, (unsigned long long)res->pending,
		    res->pending == 1 ? "" : "s", res->pending == 1 ? "it" :
		    "them");
}
