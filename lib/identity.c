/*
 * identity.c — the rules, normal forms and matching tokens of a child's
 * identity (identity.h; docs/PROTOCOL.md §10.3–10.5).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ehx/err.h"
#include "ehx/identity.h"
#include "ehx/nhs.h"
#include "ehx/util.h"

/* The letters a UPN's check letter and a temporary UPN's last character
 * may be, in the order of their values 0..22. */
static const char upn_letters[] = "ABCDEFGHJKLMNPQRTUVWXYZ";

static int
upn_value(char c)
{
	const char *p;

	if (c >= '0' && c <= '9')
		return c - '0';
	if (c == '\0' || (p = strchr(upn_letters, c)) == NULL)
		return -1;
	return (int)(p - upn_letters);
}

char
ehx_upn_check_letter(const char *s12)
{
	int sum = 0, v;

	for (int i = 0; i < 12; i++) {
		if (s12[i] == '\0')
			return '\0';
		/* digits throughout, but for a temporary UPN's last letter */
		if ((i < 11 && (s12[i] < '0' || s12[i] > '9')) ||
		    (v = upn_value(s12[i])) < 0)
			return '\0';
		sum += v * (i + 2);
	}
	if (s12[12] != '\0')
		return '\0';
	return upn_letters[sum % 23];
}

bool
ehx_upn_valid(const char *s)
{
	char c;

	if (s == NULL || strlen(s) != EHX_UPN_LEN)
		return false;
	return (c = ehx_upn_check_letter(s + 1)) != '\0' && c == s[0];
}

int
ehx_upn_normalise(const char *in, char out[EHX_UPN_LEN + 1])
{
	size_t n = 0;

	out[0] = '\0';
	for (size_t i = 0; in[i] != '\0'; i++) {
		char c = in[i];

		if (i >= 32)
			return EHX_ERR_INVALID_IDENTITY;
		if (c == ' ' || c == '-')
			continue;
		if (n == EHX_UPN_LEN)
			return EHX_ERR_INVALID_IDENTITY;
		out[n++] = (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
	}
	out[n] = '\0';
	if (!ehx_upn_valid(out)) {
		out[0] = '\0';
		return EHX_ERR_INVALID_IDENTITY;
	}
	return 0;
}

static bool
is_upper(char c)
{
	return c >= 'A' && c <= 'Z';
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Royal Mail's rules for the outward code (2..4 characters). */
static bool
outward_ok(const char *o, size_t n)
{
	if (n < 2 || n > 4 || !is_upper(o[0]) || strchr("QVX", o[0]) != NULL)
		return false;
	if (n == 2)
		return is_digit(o[1]);
	if (is_digit(o[1])) {                   /* A9? */
		if (n != 3)
			return false;
		return is_digit(o[2]) ||            /* A99 */
		    (is_upper(o[2]) && strchr("ABCDEFGHJKPSTUW", o[2]) != NULL);
	}
	if (!is_upper(o[1]) || strchr("IJZ", o[1]) != NULL || !is_digit(o[2]))
		return false;                       /* AA9? */
	if (n == 3)
		return true;
	return is_digit(o[3]) ||                    /* AA99 */
	    (is_upper(o[3]) && strchr("ABEHMNPRVWXY", o[3]) != NULL);
}

int
ehx_postcode_normalise(const char *in, char out[EHX_POSTCODE_LEN + 1])
{
	char c[8];
	size_t n = 0, len = strlen(in), o;

	out[0] = '\0';
	if (len > 10)
		return EHX_ERR_INVALID_IDENTITY;
	for (size_t i = 0; i < len; i++) {
		char ch = in[i];

		if (ch == ' ') {
			/* one space, only between the outward and inward codes */
			if (len - i - 1 != 3 || n == 0 || in[i + 1] == ' ')
				return EHX_ERR_INVALID_IDENTITY;
			continue;
		}
		if (n == 7)
			return EHX_ERR_INVALID_IDENTITY;
		c[n++] = (ch >= 'a' && ch <= 'z') ? (char)(ch - 'a' + 'A') : ch;
	}
	if (n < 5)
		return EHX_ERR_INVALID_IDENTITY;
	o = n - 3;
	if (!(n == 6 && memcmp(c, "GIR0AA", 6) == 0)) {
		if (!is_digit(c[o]) || !is_upper(c[o + 1]) ||
		    !is_upper(c[o + 2]) || strchr("CIKMOV", c[o + 1]) != NULL ||
		    strchr("CIKMOV", c[o + 2]) != NULL || !outward_ok(c, o))
			return EHX_ERR_INVALID_IDENTITY;
	}
	memcpy(out, c, o);
	out[o] = ' ';
	memcpy(out + o + 1, c + o, 3);
	out[o + 4] = '\0';
	return 0;
}

static bool
leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int
month_days(int y, int m)
{
	static const int d[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31,
	    30, 31 };

	return m == 2 && leap(y) ? 29 : d[m - 1];
}

int
ehx_date_parse(const char *s, int *y, int *m, int *d)
{
	int v[3] = { 0, 0, 0 };
	static const int at[3] = { 0, 5, 8 }, len[3] = { 4, 2, 2 };

	if (s == NULL || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return EHX_ERR_INVALID_IDENTITY;
	for (int f = 0; f < 3; f++)
		for (int i = 0; i < len[f]; i++) {
			if (!is_digit(s[at[f] + i]))
				return EHX_ERR_INVALID_IDENTITY;
			v[f] = v[f] * 10 + (s[at[f] + i] - '0');
		}
	if (v[0] < 1900 || v[0] > 2999 || v[1] < 1 || v[1] > 12 || v[2] < 1 ||
	    v[2] > month_days(v[0], v[1]))
		return EHX_ERR_INVALID_IDENTITY;
	*y = v[0];
	*m = v[1];
	*d = v[2];
	return 0;
}

/* Howard Hinnant's days_from_civil, for the proleptic Gregorian calendar. */
int64_t
ehx_days_from_civil(int y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/*
 * The letters of U+00C0..U+017F, folded: '*' for those that fold to two
 * letters, '-' for the two signs among them (× and ÷).
 */
static const char fold_latin1[65] =
    "AAAAAA*CEEEEIIIIDNOOOOO-OUUUUY**AAAAAA*CEEEEIIIIDNOOOOO-OUUUUY*Y";
static const char fold_ext_a[129] =
    "AAAAAACCCCCCCCDDDDEEEEEEEEEEGGGGGGGGHHHHIIIIIIIIII**JJKKKLLLLLLL"
    "LLLNNNNNNNNNOOOOOO**RRRRRRSSSSSSSSTTTTTTUUUUUUUUUUUUWWYYYZZZZZZS";

static const char *
fold_two(uint32_t cp)
{
	switch (cp) {
	case 0xc6: case 0xe6: return "AE";
	case 0xde: case 0xfe: return "TH";
	case 0xdf: return "SS";
	case 0x132: case 0x133: return "IJ";
	case 0x152: case 0x153: return "OE";
	}
	return NULL;
}

/* One UTF-8 character at p (valid, as ehx_text_ok checked): its code
 * point and length. */
static size_t
utf8_next(const unsigned char *p, uint32_t *cp)
{
	if (p[0] < 0x80) {
		*cp = p[0];
		return 1;
	}
	if ((p[0] & 0xe0) == 0xc0) {
		*cp = ((uint32_t)(p[0] & 0x1f) << 6) | (p[1] & 0x3f);
		return 2;
	}
	if ((p[0] & 0xf0) == 0xe0) {
		*cp = ((uint32_t)(p[0] & 0x0f) << 12) |
		    ((uint32_t)(p[1] & 0x3f) << 6) | (p[2] & 0x3f);
		return 3;
	}
	*cp = ((uint32_t)(p[0] & 0x07) << 18) | ((uint32_t)(p[1] & 0x3f) << 12) |
	    ((uint32_t)(p[2] & 0x3f) << 6) | (p[3] & 0x3f);
	return 4;
}

/* Punctuation, symbols and pictographs: never part of a name. */
static bool
not_letter(uint32_t cp)
{
	return (cp >= 0x2000 && cp <= 0x2bff) || (cp >= 0x3000 && cp <= 0x303f) ||
	    (cp >= 0xfe00 && cp <= 0xfe6f) || (cp >= 0xff00 && cp <= 0xff20) ||
	    cp >= 0x1f000 || (cp >= 0xa0 && cp <= 0xbf) || cp == 0xd7 ||
	    cp == 0xf7;
}

int
ehx_name_words(const char *in, char *out, size_t outsz)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t n = 0, start = 0;
	int words = 0;
	bool letters = false;

	if (outsz < 2 * EHX_MAX_PERSON_NAME + 1 ||
	    !ehx_text_ok(in, 1, EHX_MAX_PERSON_NAME))
		return -1;
	for (;;) {
		uint32_t cp = 0;
		size_t k = *p != '\0' ? utf8_next(p, &cp) : 0;
		const char *two;

		if (cp == 0 || cp == ' ' || cp == '-') {
			if (n > start && words < EHX_MAX_NAME_WORDS) {
				out[n++] = '\0';
				start = n;
				words++;
			} else
				n = start;  /* an empty word, or one too many */
			if (cp == 0)
				break;
		} else if (cp == '\'' || cp == '.' || cp == 0x2019) {
			/* dropped: O'Brien, St. John */
		} else if (cp < 0x80) {
			char c = (char)cp;

			if (c >= 'a' && c <= 'z')
				c = (char)(c - 'a' + 'A');
			if (!is_upper(c))
				return -1;
			out[n++] = c;
			letters = true;
		} else if (not_letter(cp)) {
			return -1;
		} else if (cp >= 0xc0 && cp <= 0x17f) {
			char c = cp < 0x100 ? fold_latin1[cp - 0xc0] :
			    fold_ext_a[cp - 0x100];

			if (c == '-')
				return -1;
			if ((two = fold_two(cp)) != NULL) {
				out[n++] = two[0];
				out[n++] = two[1];
			} else
				out[n++] = c;
			letters = true;
		} else {
			/* a letter of another script, kept as it is */
			memcpy(out + n, p, k);
			n += k;
			letters = true;
		}
		p += k;
	}
	return letters && words > 0 ? words : -1;
}

static bool
vowel(char c)
{
	return c == 'A' || c == 'E' || c == 'I' || c == 'O' || c == 'U';
}

void
ehx_phonetic(const char *word, char out[EHX_PHONETIC_LEN + 1])
{
	char s[EHX_MAX_PERSON_NAME * 2 + 4], key[EHX_MAX_PERSON_NAME * 3 + 4];
	size_t n = strlen(word), k = 0;

	out[0] = '\0';
	if (n == 0 || n >= sizeof(s) - 2)
		return;
	for (size_t i = 0; i < n; i++)
		if (!is_upper(word[i]))
			return;
	memcpy(s, word, n + 1);
	/* the first letters */
	if (strncmp(s, "MAC", 3) == 0)
		s[1] = 'C';
	else if (strncmp(s, "KN", 2) == 0)
		s[0] = 'N';
	else if (s[0] == 'K')
		s[0] = 'C';
	else if (strncmp(s, "PH", 2) == 0 || strncmp(s, "PF", 2) == 0)
		s[0] = s[1] = 'F';
	else if (strncmp(s, "SCH", 3) == 0)
		s[1] = s[2] = 'S';
	/* the last letters */
	if (n >= 2) {
		const char *e = s + n - 2;

		if (strcmp(e, "EE") == 0 || strcmp(e, "IE") == 0) {
			s[n - 2] = 'Y';
			s[--n] = '\0';
		} else if (strcmp(e, "DT") == 0 || strcmp(e, "RT") == 0 ||
		    strcmp(e, "RD") == 0 || strcmp(e, "NT") == 0 ||
		    strcmp(e, "ND") == 0) {
			s[n - 2] = 'D';
			s[--n] = '\0';
		}
	}
	key[k++] = s[0];
	for (size_t i = 1; i < n; i++) {
		char t[4] = { s[i], '\0' };
		char prev = s[i - 1], next = s[i + 1];

		if (s[i] == 'E' && next == 'V') {
			strcpy(t, "AF");
			i++;
		} else if (vowel(s[i]))
			t[0] = 'A';
		else if (s[i] == 'Q')
			t[0] = 'G';
		else if (s[i] == 'Z')
			t[0] = 'S';
		else if (s[i] == 'M')
			t[0] = 'N';
		else if (s[i] == 'K')
			t[0] = next == 'N' ? 'N' : 'C';
		else if (s[i] == 'S' && next == 'C' && s[i + 2] == 'H') {
			strcpy(t, "SSS");
			i += 2;
		} else if (s[i] == 'P' && next == 'H') {
			strcpy(t, "FF");
			i++;
		} else if (s[i] == 'H' && (!vowel(prev) || !vowel(next)))
			t[0] = vowel(prev) ? 'A' : prev;
		else if (s[i] == 'W' && vowel(prev))
			t[0] = 'A';
		for (size_t j = 0; t[j] != '\0'; j++)
			if (key[k - 1] != t[j])
				key[k++] = t[j];
	}
	key[k] = '\0';
	if (k > 1 && key[k - 1] == 'S')
		key[--k] = '\0';
	if (k > 2 && key[k - 2] == 'A' && key[k - 1] == 'Y') {
		key[k - 2] = 'Y';
		key[--k] = '\0';
	}
	if (k > 1 && key[k - 1] == 'A')
		key[--k] = '\0';
	snprintf(out, EHX_PHONETIC_LEN + 1, "%s", key);
}

/* Familiar forms of given names and the name they stand for: only the
 * unambiguous ones (ELLIE may be Eleanor or Ellen: not here). */
static const char *const nicknames[][2] = {
	{ "ABBIE", "ABIGAIL" }, { "ABBY", "ABIGAIL" }, { "ALEX", "ALEXANDER" },
	{ "ALF", "ALFRED" }, { "ALFIE", "ALFRED" }, { "ANDY", "ANDREW" },
	{ "ANNIE", "ANNE" }, { "BECCA", "REBECCA" }, { "BECKY", "REBECCA" },
	{ "BEN", "BENJAMIN" }, { "BENNY", "BENJAMIN" }, { "BETH", "ELIZABETH" },
	{ "BETSY", "ELIZABETH" }, { "BILL", "WILLIAM" }, { "BILLY", "WILLIAM" },
	{ "BOB", "ROBERT" }, { "BOBBY", "ROBERT" }, { "CATHERINE", "KATHERINE" },
	{ "CATH", "KATHERINE" }, { "CATHY", "KATHERINE" },
	{ "CHARLIE", "CHARLES" }, { "CHAS", "CHARLES" },
	{ "CHRIS", "CHRISTOPHER" }, { "DAN", "DANIEL" }, { "DANNY", "DANIEL" },
	{ "DAVE", "DAVID" }, { "DAVY", "DAVID" }, { "DICK", "RICHARD" },
	{ "DREW", "ANDREW" }, { "ED", "EDWARD" }, { "EDDIE", "EDWARD" },
	{ "ELIZA", "ELIZABETH" }, { "FRED", "FREDERICK" },
	{ "FREDDIE", "FREDERICK" }, { "FREDDY", "FREDERICK" },
	{ "HARRY", "HENRY" }, { "JACK", "JOHN" }, { "JAMIE", "JAMES" },
	{ "JEN", "JENNIFER" }, { "JENNY", "JENNIFER" }, { "JESS", "JESSICA" },
	{ "JESSIE", "JESSICA" }, { "JIM", "JAMES" }, { "JIMMY", "JAMES" },
	{ "JOE", "JOSEPH" }, { "JOEY", "JOSEPH" }, { "JOHNNY", "JOHN" },
	{ "JON", "JONATHAN" }, { "JOSH", "JOSHUA" }, { "KATE", "KATHERINE" },
	{ "KATHRYN", "KATHERINE" }, { "KATIE", "KATHERINE" },
	{ "KATY", "KATHERINE" }, { "KIT", "CHRISTOPHER" },
	{ "LIBBY", "ELIZABETH" }, { "LIZ", "ELIZABETH" },
	{ "LIZZIE", "ELIZABETH" }, { "LOTTIE", "CHARLOTTE" },
	{ "MAGGIE", "MARGARET" }, { "MANDY", "AMANDA" }, { "MATT", "MATTHEW" },
	{ "MEG", "MARGARET" }, { "MICK", "MICHAEL" }, { "MICKY", "MICHAEL" },
	{ "MIKE", "MICHAEL" }, { "MOLLY", "MARY" }, { "NED", "EDWARD" },
	{ "NICK", "NICHOLAS" }, { "NICKY", "NICOLA" }, { "NIKKI", "NICOLA" },
	{ "OLLIE", "OLIVER" }, { "PAT", "PATRICK" }, { "PATSY", "PATRICIA" },
	{ "PEGGY", "MARGARET" }, { "PETE", "PETER" }, { "PHIL", "PHILIP" },
	{ "POLLY", "MARY" }, { "RICH", "RICHARD" }, { "RICKY", "RICHARD" },
	{ "ROB", "ROBERT" }, { "ROBBIE", "ROBERT" }, { "SAM", "SAMUEL" },
	{ "SAMMY", "SAMUEL" }, { "SOPHIE", "SOPHIA" }, { "STEVE", "STEPHEN" },
	{ "STEVEN", "STEPHEN" }, { "SUE", "SUSAN" }, { "SUZY", "SUSAN" },
	{ "TED", "EDWARD" }, { "THEO", "THEODORE" }, { "TILLY", "MATILDA" },
	{ "TOM", "THOMAS" }, { "TOMMY", "THOMAS" }, { "TONY", "ANTHONY" },
	{ "TORI", "VICTORIA" }, { "TRISH", "PATRICIA" },
	{ "VICKY", "VICTORIA" }, { "WILL", "WILLIAM" }, { "ZAC", "ZACHARY" },
	{ "ZACH", "ZACHARY" }, { "ZACK", "ZACHARY" }, { "ZAK", "ZACHARY" },
};

const char *
ehx_given_canonical(const char *word)
{
	for (size_t i = 0; i < sizeof(nicknames) / sizeof(nicknames[0]); i++)
		if (strcmp(nicknames[i][0], word) == 0)
			return nicknames[i][1];
	return word;
}

static int fail(char *why, size_t whysz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
fail(char *why, size_t whysz, const char *fmt, ...)
{
	va_list ap;

	if (whysz > 0) {
		va_start(ap, fmt);
		vsnprintf(why, whysz, fmt, ap);
		va_end(ap);
	}
	return EHX_ERR_INVALID_IDENTITY;
}

static bool
uprn_ok(const char *s)
{
	size_t n;
	bool nonzero = false;

	for (n = 0; s[n] != '\0'; n++) {
		if (n >= EHX_MAX_UPRN || !is_digit(s[n]))
			return false;
		nonzero |= s[n] != '0';
	}
	return n > 0 && nonzero;
}

static bool
set(const char *s)
{
	return s != NULL && s[0] != '\0';
}

static int
check_name(const char *s, const char *what, char *why, size_t whysz)
{
	char words[2 * EHX_MAX_PERSON_NAME + 1];

	if (ehx_name_words(s, words, sizeof(words)) < 0)
		return fail(why, whysz, "%s must be 1..%d bytes of a name: "
		    "letters, spaces, hyphens, apostrophes and full stops",
		    what, EHX_MAX_PERSON_NAME);
	return 0;
}

static int
check_dob(const char *s, int64_t now_ms, char *why, size_t whysz)
{
	time_t t = (time_t)(now_ms / 1000);
	struct tm tm;
	int y, m, d;
	int64_t days, today, oldest;

	if (ehx_date_parse(s, &y, &m, &d) != 0)
		return fail(why, whysz, "child.date_of_birth must be a date "
		    "written YYYY-MM-DD");
	if (gmtime_r(&t, &tm) == NULL)
		return fail(why, whysz, "the broker's clock is not usable");
	days = ehx_days_from_civil(y, m, d);
	today = ehx_days_from_civil(tm.tm_year + 1900, tm.tm_mon + 1,
	    tm.tm_mday);
	oldest = ehx_days_from_civil(tm.tm_year + 1900 -
	    EHX_MAX_CHILD_AGE_YEARS, tm.tm_mon + 1,
	    tm.tm_mon == 1 && tm.tm_mday == 29 ? 28 : tm.tm_mday);
	/* a day's grace: the sender's today may be ahead of UTC's */
	if (days > today + 1)
		return fail(why, whysz, "child.date_of_birth %s is in the "
		    "future", s);
	if (days < oldest)
		return fail(why, whysz, "child.date_of_birth %s is more than %d "
		    "years ago: not a child EHX serves", s,
		    EHX_MAX_CHILD_AGE_YEARS);
	return 0;
}

int
ehx_validate_identity(const Ehx__ChildIdentity *id, int64_t now_ms,
    char *why, size_t whysz)
{
	char pc[EHX_POSTCODE_LEN + 1];
	char c;
	int r;

	if (id == NULL)
		return fail(why, whysz, "the child is not named");
	if (set(id->nhs_number) && !ehx_nhs_valid(id->nhs_number)) {
		snprintf(why, whysz, "child.nhs_number is not a valid NHS "
		    "number: 10 digits with a modulus-11 check digit");
		return EHX_ERR_INVALID_NHS_NUMBER;
	}
	if (set(id->upn) && !ehx_upn_valid(id->upn)) {
		if (strlen(id->upn) == EHX_UPN_LEN &&
		    (c = ehx_upn_check_letter(id->upn + 1)) != '\0')
			return fail(why, whysz, "child.upn is not a unique pupil "
			    "number: its check letter should be %c", c);
		return fail(why, whysz, "child.upn must be a unique pupil "
		    "number: a check letter, then 12 digits (or 11 and a "
		    "letter), upper case, no spaces");
	}
	if (set(id->local_id) && !ehx_ref_ok(id->local_id))
		return fail(why, whysz, "child.local_id must be 1..64 of "
		    "A-Z a-z 0-9 . _ : / -");
	if (set(id->given_name) && (r = check_name(id->given_name,
	    "child.given_name", why, whysz)) != 0)
		return r;
	if (set(id->family_name) && (r = check_name(id->family_name,
	    "child.family_name", why, whysz)) != 0)
		return r;
	if (id->n_other_names > EHX_MAX_OTHER_NAMES)
		return fail(why, whysz, "child.other_names holds at most %d "
		    "names", EHX_MAX_OTHER_NAMES);
	for (size_t i = 0; i < id->n_other_names; i++)
		if ((r = check_name(id->other_names[i], "each of "
		    "child.other_names", why, whysz)) != 0)
			return r;
	if (set(id->date_of_birth) && (r = check_dob(id->date_of_birth,
	    now_ms, why, whysz)) != 0)
		return r;
	if (id->sex < EHX__SEX__SEX_UNSPECIFIED ||
	    id->sex > EHX__SEX__SEX_INDETERMINATE)
		return fail(why, whysz, "child.sex is not a known value");
	if (set(id->postcode) && ehx_postcode_normalise(id->postcode, pc) != 0)
		return fail(why, whysz, "child.postcode is not a UK postcode");
	if (set(id->uprn) && !uprn_ok(id->uprn))
		return fail(why, whysz, "child.uprn must be 1..%d digits, not "
		    "all zero", EHX_MAX_UPRN);
	if (!set(id->nhs_number) && !set(id->upn) && !set(id->local_id) &&
	    !(set(id->family_name) && set(id->date_of_birth)))
		return fail(why, whysz, "the child is not named: give an NHS "
		    "number, a UPN, your own id for the child, or a family "
		    "name and a date of birth");
	return 0;
}

/* The label each feature's token is made under: names are one space, so
 * that a given name can meet a family name (a swap). */
static const char *const labels[EHX_F_COUNT] = {
	[EHX_F_NHS] = "nhs", [EHX_F_UPN] = "upn", [EHX_F_LOCAL] = "local",
	[EHX_F_GIVEN] = "name", [EHX_F_GIVEN_PH] = "name_ph",
	[EHX_F_GIVEN_CANON] = "name_canon", [EHX_F_FAMILY] = "name",
	[EHX_F_FAMILY_PH] = "name_ph", [EHX_F_DOB] = "dob",
	[EHX_F_DOB_YM] = "dob_ym", [EHX_F_DOB_YD] = "dob_yd",
	[EHX_F_DOB_MD] = "dob_md", [EHX_F_SEX] = "sex",
	[EHX_F_POSTCODE] = "postcode", [EHX_F_SECTOR] = "sector",
	[EHX_F_UPRN] = "uprn", [EHX_F_GIVEN_DEL] = "name_del",
	[EHX_F_FAMILY_DEL] = "name_del",
};

static const char *const feature_names[EHX_F_COUNT] = {
	"nhs", "upn", "local", "given", "given_ph", "given_canon", "family",
	"family_ph", "dob", "dob_ym", "dob_yd", "dob_md", "sex", "postcode",
	"sector", "uprn", "given_del", "family_del",
};

const char *
ehx_feature_name(enum ehx_feature f)
{
	return (unsigned)f < EHX_F_COUNT ? feature_names[f] : "?";
}

int
ehx_token(const struct ehx_pseudokey *key, enum ehx_feature f,
    const void *value, size_t len, unsigned char out[EHX_TOKEN_LEN])
{
	static const char ctx[] = "EHX-MATCH-V1";
	unsigned char buf[sizeof(ctx) + 16 + 2 * EHX_MAX_PERSON_NAME +
	    EHX_MAX_ID + 2], mac[32];
	size_t ll, n = 0;

	if ((unsigned)f >= EHX_F_COUNT)
		return EHX_ERR_CRYPTO;
	ll = strlen(labels[f]);
	if (len > sizeof(buf) - sizeof(ctx) - ll - 1)
		return EHX_ERR_CRYPTO;
	memcpy(buf, ctx, sizeof(ctx));          /* with its NUL */
	n = sizeof(ctx);
	memcpy(buf + n, labels[f], ll);
	n += ll;
	buf[n++] = '\0';
	memcpy(buf + n, value, len);
	n += len;
	ehx_keyed_hash(key, buf, n, mac);
	memcpy(out, mac, EHX_TOKEN_LEN);
	return 0;
}

/* Add the token of value to feature f unless it is there already. */
static int
add(const struct ehx_pseudokey *key, struct ehx_tokens *t, enum ehx_feature f,
    const char *value, size_t len)
{
	unsigned char tok[EHX_TOKEN_LEN];

	if (ehx_token(key, f, value, len, tok) != 0)
		return EHX_ERR_CRYPTO;
	for (size_t i = 0; i < t->n[f]; i++)
		if (memcmp(t->tok[f][i], tok, EHX_TOKEN_LEN) == 0)
			return 0;
	if (t->n[f] == EHX_MAX_FEATURE_TOKENS)
		return 0;
	memcpy(t->tok[f][t->n[f]++], tok, EHX_TOKEN_LEN);
	return 0;
}

static int
add_str(const struct ehx_pseudokey *key, struct ehx_tokens *t,
    enum ehx_feature f, const char *value)
{
	return add(key, t, f, value, strlen(value));
}

/* A word of EHX_DEL_MIN..EHX_DEL_MAX letters A..Z, and each form of it
 * with one letter left out: two words one typing slip apart (a letter
 * wrong, missing, added, or two swapped) share one of these. */
static int
add_deletions(const struct ehx_pseudokey *key, struct ehx_tokens *t,
    enum ehx_feature f, const char *w)
{
	char v[EHX_DEL_MAX + 1];
	size_t n = strlen(w);
	int r;

	if (n < EHX_DEL_MIN || n > EHX_DEL_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!is_upper(w[i]))
			return 0;
	if ((r = add(key, t, f, w, n)) != 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		memcpy(v, w, i);
		memcpy(v + i, w + i + 1, n - i - 1);
		if ((r = add(key, t, f, v, n - 1)) != 0)
			return r;
	}
	return 0;
}

/* The words of one name into the exact, phonetic (and, for given names,
 * usual-form) features; the first word's deletions into del. */
static int
add_name(const struct ehx_pseudokey *key, struct ehx_tokens *t,
    const char *name, enum ehx_feature exact, enum ehx_feature ph,
    enum ehx_feature del, bool canon)
{
	char words[2 * EHX_MAX_PERSON_NAME + 1], code[EHX_PHONETIC_LEN + 1];
	const char *w = words;
	int n, r;

	if ((n = ehx_name_words(name, words, sizeof(words))) < 0)
		return 0;
	for (int i = 0; i < n; i++, w += strlen(w) + 1) {
		if ((r = add_str(key, t, exact, w)) != 0)
			return r;
		ehx_phonetic(w, code);
		if (code[0] != '\0' && (r = add_str(key, t, ph, code)) != 0)
			return r;
		if (canon && (r = add_str(key, t, EHX_F_GIVEN_CANON,
		    ehx_given_canonical(w))) != 0)
			return r;
		if (i == 0 && del != EHX_F_COUNT &&
		    (r = add_deletions(key, t, del, w)) != 0)
			return r;
	}
	return 0;
}

static int
add_dob(const struct ehx_pseudokey *key, struct ehx_tokens *t, const char *s)
{
	char v[16];
	int y, m, d, r;

	if (ehx_date_parse(s, &y, &m, &d) != 0)
		return 0;
	snprintf(v, sizeof(v), "%04d%02d%02d", y, m, d);
	if ((r = add_str(key, t, EHX_F_DOB, v)) != 0)
		return r;
	snprintf(v, sizeof(v), "%04d%02d", y, m);
	if ((r = add_str(key, t, EHX_F_DOB_YM, v)) != 0)
		return r;
	snprintf(v, sizeof(v), "%04d%02d", y, d);
	if ((r = add_str(key, t, EHX_F_DOB_YD, v)) != 0)
		return r;
	snprintf(v, sizeof(v), "%02d%02d", m, d);
	if ((r = add_str(key, t, EHX_F_DOB_MD, v)) != 0)
		return r;
	if (d != m && d <= 12 && m <= month_days(y, d)) {
		snprintf(v, sizeof(v), "%04d%02d%02d", y, d, m);
		if (ehx_token(key, EHX_F_DOB, v, strlen(v), t->dob_swapped) != 0)
			return EHX_ERR_CRYPTO;
		t->has_dob_swapped = true;
	}
	return 0;
}

int
ehx_identity_tokens(const struct ehx_pseudokey *key, const char *agency,
    const Ehx__ChildIdentity *id, struct ehx_tokens *t)
{
	static const char sexes[] = "?FMI";
	char pc[EHX_POSTCODE_LEN + 1], v[EHX_MAX_ID + 1 + EHX_MAX_REF + 1];
	size_t n;
	int r;

	memset(t, 0, sizeof(*t));
	if (set(id->nhs_number) && (r = add_str(key, t, EHX_F_NHS,
	    id->nhs_number)) != 0)
		return r;
	if (set(id->upn) && (r = add_str(key, t, EHX_F_UPN, id->upn)) != 0)
		return r;
	if (set(id->local_id) && agency != NULL) {
		n = (size_t)snprintf(v, sizeof(v), "%s", agency);
		if (n >= sizeof(v) - 1)
			return EHX_ERR_CRYPTO;
		v[n++] = '\0';
		n += (size_t)snprintf(v + n, sizeof(v) - n, "%s", id->local_id);
		if (n >= sizeof(v) || (r = add(key, t, EHX_F_LOCAL, v, n)) != 0)
			return r != 0 ? r : EHX_ERR_CRYPTO;
	}
	if (set(id->given_name) && (r = add_name(key, t, id->given_name,
	    EHX_F_GIVEN, EHX_F_GIVEN_PH, EHX_F_GIVEN_DEL, true)) != 0)
		return r;
	if (set(id->family_name) && (r = add_name(key, t, id->family_name,
	    EHX_F_FAMILY, EHX_F_FAMILY_PH, EHX_F_FAMILY_DEL, false)) != 0)
		return r;
	for (size_t i = 0; i < id->n_other_names &&
	    i < EHX_MAX_OTHER_NAMES; i++)
		if ((r = add_name(key, t, id->other_names[i], EHX_F_FAMILY,
		    EHX_F_FAMILY_PH, EHX_F_COUNT, false)) != 0)
			return r;
	if (set(id->date_of_birth) && (r = add_dob(key, t,
	    id->date_of_birth)) != 0)
		return r;
	if (id->sex > EHX__SEX__SEX_UNSPECIFIED &&
	    id->sex <= EHX__SEX__SEX_INDETERMINATE &&
	    (r = add(key, t, EHX_F_SEX, &sexes[id->sex], 1)) != 0)
		return r;
	if (set(id->postcode) && ehx_postcode_normalise(id->postcode, pc) == 0) {
		if ((r = add_str(key, t, EHX_F_POSTCODE, pc)) != 0)
			return r;
		n = strlen(pc);
		pc[n - 2] = '\0';       /* "OUT D" */
		if ((r = add_str(key, t, EHX_F_SECTOR, pc)) != 0)
			return r;
	}
	if (set(id->uprn)) {
		const char *u = id->uprn;

		while (*u == '0' && u[1] != '\0')
			u++;
		if ((r = add_str(key, t, EHX_F_UPRN, u)) != 0)
			return r;
	}
	return 0;
}
