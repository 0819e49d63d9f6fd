/*
 * test_conf — INI files through lib/conf.c (inih over a bounded, already
 * read buffer): what handlers see, and that every error names the file and
 * the line with a reason; and the value helpers handlers use.
 */
#include "testutil.h"

#include "ehx/conf.h"
#include "ehx/err.h"
#include "ehx/limits.h"
#include "ehx/log.h"

static char tmpdir[PATH_MAX];

static int
setup(void **state)
{
	(void)state;
	return tu_mkdtemp(tmpdir, sizeof(tmpdir), "conf");
}

static int
teardown(void **state)
{
	(void)state;
	tu_rmtree(tmpdir);
	return 0;
}

#define MAX_SEEN 32

struct seen {
	size_t n;
	char section[MAX_SEEN][64], key[MAX_SEEN][64], value[MAX_SEEN][256];
};

/* Records every key; fails on a key named "bad" with the value as reason,
 * and on "fail" with a fixed sentence. */
static int
record(void *user, const char *section, const char *key, const char *value,
    char *why, size_t whysz)
{
	struct seen *s = user;

	if (s->n < MAX_SEEN) {
		snprintf(s->section[s->n], 64, "%s", section);
		snprintf(s->key[s->n], 64, "%s", key);
		snprintf(s->value[s->n], 256, "%s", value);
		s->n++;
	}
	if (strcmp(key, "bad") == 0) {
		snprintf(why, whysz, "bad value \"%s\"", value);
		return EHX_ERR_CONFIG;
	}
	if (strcmp(key, "fail") == 0) {
		snprintf(why, whysz, "fail is never allowed");
		return EHX_ERR_INVALID_FIELD;
	}
	return 0;
}

static int
parse_text(const char *name, const char *text, struct seen *s, char *err,
    size_t errsz, char *path, size_t pathsz)
{
	tu_join(path, pathsz, tmpdir, name);
	assert_int_equal(tu_write(path, text, strlen(text), 0644), 0);
	memset(s, 0, sizeof(*s));
	return ehx_conf_parse(path, record, s, err, errsz);
}

static void
test_good_file(void **state)
{
	struct seen s;
	char err[512], path[PATH_MAX];

	(void)state;
	assert_int_equal(parse_text("good.ini",
	    "# a comment\n"
	    "; another\n"
	    "\n"
	    "[broker]\n"
	    "id = broker\n"
	    "listen=tcp://127.0.0.1:*\n"
	    "spaced   =   value with spaces   \n"
	    "\n"
	    "[police-north]\n"
	    "name = North Police\n"
	    "empty =\n"
	    "colon: is a separator too\n",
	    &s, err, sizeof(err), path, sizeof(path)), 0);
	assert_string_equal(err, "");
	assert_int_equal(s.n, 6);
	assert_string_equal(s.section[0], "broker");
	assert_string_equal(s.key[0], "id");
	assert_string_equal(s.value[0], "broker");
	assert_string_equal(s.key[1], "listen");
	assert_string_equal(s.value[1], "tcp://127.0.0.1:*");
	assert_string_equal(s.key[2], "spaced");
	assert_string_equal(s.value[2], "value with spaces");
	assert_string_equal(s.section[3], "police-north");
	assert_string_equal(s.key[3], "name");
	assert_string_equal(s.value[3], "North Police");
	assert_string_equal(s.key[4], "empty");
	assert_string_equal(s.value[4], "");
	assert_string_equal(s.key[5], "colon");
	assert_string_equal(s.value[5], "is a separator too");

	/* An indented line continues the previous key's value (inih's
	 * multi-line values): the handler sees that key again. */
	assert_int_equal(parse_text("cont.ini",
	    "[s]\n"
	    "listen = a\n"
	    "  spaced = b\n",
	    &s, err, sizeof(err), path, sizeof(path)), 0);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.key[1], "listen");
	assert_string_equal(s.value[1], "spaced = b");
	/* "= value" is a key with an empty name, for the handler to refuse. */
	assert_int_equal(parse_text("nokey.ini", "[s]\n= value\n", &s, err,
	    sizeof(err), path, sizeof(path)), 0);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.key[0], "");
	assert_string_equal(s.value[0], "value");
	/* An empty file is fine and calls nothing. */
	assert_int_equal(parse_text("empty.ini", "", &s, err, sizeof(err), path,
	    sizeof(path)), 0);
	assert_int_equal(s.n, 0);
	/* Keys before any section have the empty section name. */
	assert_int_equal(parse_text("nosec.ini", "a = 1\n", &s, err,
	    sizeof(err), path, sizeof(path)), 0);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.section[0], "");
	/* CRLF line ends and no final newline. */
	assert_int_equal(parse_text("crlf.ini", "[s]\r\na = 1\r\nb = 2", &s,
	    err, sizeof(err), path, sizeof(path)), 0);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.value[0], "1");
	assert_string_equal(s.value[1], "2");
}

static void
test_handler_error(void **state)
{
	struct seen s;
	char err[512], path[PATH_MAX], want[PATH_MAX + 128];

	(void)state;
	assert_int_equal(parse_text("handler.ini",
	    "[s]\n"
	    "a = 1\n"
	    "\n"
	    "bad = seven\n"
	    "c = 3\n",
	    &s, err, sizeof(err), path, sizeof(path)), EHX_ERR_CONFIG);
	snprintf(want, sizeof(want), "%s:4: bad value \"seven\"", path);
	assert_string_equal(err, want);
	/* Any EHX_ERR_* from the handler becomes EHX_ERR_CONFIG. */
	assert_int_equal(parse_text("fail.ini", "[s]\nfail = 1\n", &s, err,
	    sizeof(err), path, sizeof(path)), EHX_ERR_CONFIG);
	snprintf(want, sizeof(want), "%s:2: fail is never allowed", path);
	assert_string_equal(err, want);
}

/*
 * inih goes on after a handler error (INI_STOP_ON_FIRST_ERROR is 0 in
 * Debian's build) and reports the first error's line, but lib/conf.c keeps
 * the reason of the last handler error: the line and the reason disagree.
 */
static void
test_two_handler_errors(void **state)
{
	struct seen s;
	char err[512], path[PATH_MAX], want[PATH_MAX + 128];

	(void)state;
	assert_int_equal(parse_text("two.ini",
	    "[s]\n"
	    "bad = first\n"
	    "ok = 1\n"
	    "bad = second\n",
	    &s, err, sizeof(err), path, sizeof(path)), EHX_ERR_CONFIG);
	snprintf(want, sizeof(want), "%s:2: bad value \"first\"", path);
	assert_string_equal(err, want);
}

/* The same mismatch when a syntax error comes first: the line is the
 * syntax error's, the reason a later handler's. */
static void
test_syntax_then_handler_error(void **state)
{
	struct seen s;
	char err[512], path[PATH_MAX], want[PATH_MAX + 128];

	(void)state;
	assert_int_equal(parse_text("mixed.ini",
	    "[s]\n"
	    "this line has no separator\n"
	    "bad = later\n",
	    &s, err, sizeof(err), path, sizeof(path)), EHX_ERR_CONFIG);
	snprintf(want, sizeof(want), "%s:2: not a \"key = value\"", path);
	assert_true(strncmp(err, want, strlen(want)) == 0);
}

static void
test_syntax_errors(void **state)
{
	static const struct {
		const char *text;
		int line;
	} bad[] = {
		{ "[s]\na = 1\nno separator here\n", 3 },
		{ "just words\n", 1 },
		{ "[unclosed\na = 1\n", 1 },
		{ "[s]\na = 1\n\n\n\n[t]\nb = 2\nc\n", 8 },
	};
	struct seen s;
	char err[512], path[PATH_MAX], want[PATH_MAX + 128];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = parse_text("syntax.ini", bad[i].text, &s, err,
		    sizeof(err), path, sizeof(path));

		if (r != EHX_ERR_CONFIG)
			fail_msg("accepted: %s", bad[i].text);
		snprintf(want, sizeof(want), "%s:%d: not a \"key = value\" or "
		    "\"[section]\" line", path, bad[i].line);
		if (strncmp(err, want, strlen(want)) != 0)
			fail_msg("\"%s\" for: %s", err, bad[i].text);
	}
}

static void
test_long_line(void **state)
{
	struct seen s;
	char err[512], path[PATH_MAX], text[600];

	(void)state;
	/* inih reads at most 200 bytes a line: a longer one is an error. */
	snprintf(text, sizeof(text), "[s]\nkey = %0300d\n", 0);
	assert_int_equal(parse_text("long.ini", text, &s, err, sizeof(err),
	    path, sizeof(path)), EHX_ERR_CONFIG);
	assert_non_null(strstr(err, path));
}

/*
 * A line longer than inih's 200 bytes is cut, and the rest is parsed as a
 * line of its own: a value can carry a second "key = value" that is then
 * applied, and later line numbers are off by one.
 */
static void
test_long_line_split(void **state)
{
	struct seen s;
	char err[512], path[PATH_MAX], text[600], pad[256];

	(void)state;
	/* "name = " (7) + 192 bytes fill the first 199; then "roles = admin". */
	memset(pad, 'x', 192);
	pad[192] = '\0';
	snprintf(text, sizeof(text), "[alice]\nname = %sroles = admin\n", pad);
	assert_int_not_equal(parse_text("split.ini", text, &s, err,
	    sizeof(err), path, sizeof(path)), 0);
	for (size_t i = 0; i < s.n; i++)
		assert_string_not_equal(s.key[i], "roles");
	/* And the line numbers after a long line are one too many. */
	{
		char want[PATH_MAX + 64];

		snprintf(text, sizeof(text), "[s]\nk = %0250d\nbad = x\n", 0);
		assert_int_equal(parse_text("lines.ini", text, &s, err,
		    sizeof(err), path, sizeof(path)), EHX_ERR_CONFIG);
		snprintf(want, sizeof(want), "%s:2:", path);
		assert_true(strncmp(err, want, strlen(want)) == 0);
	}
}

static void
test_nul_and_size(void **state)
{
	struct seen s;
	char err[512], path[PATH_MAX], want[PATH_MAX + 128];
	unsigned char *big;

	(void)state;
	tu_join(path, sizeof(path), tmpdir, "nul.ini");
	assert_int_equal(tu_write(path, "[s]\na = 1\0b = 2\n", 16, 0644), 0);
	memset(&s, 0, sizeof(s));
	assert_int_equal(ehx_conf_parse(path, record, &s, err, sizeof(err)),
	    EHX_ERR_CONFIG);
	snprintf(want, sizeof(want), "%s: the file contains a NUL byte", path);
	assert_string_equal(err, want);
	assert_int_equal(s.n, 0);           /* nothing was handed out */

	/* Over EHX_MAX_CONFIG_FILE: refused before parsing. */
	tu_join(path, sizeof(path), tmpdir, "big.ini");
	big = malloc(EHX_MAX_CONFIG_FILE + 1);
	assert_non_null(big);
	memset(big, '\n', EHX_MAX_CONFIG_FILE + 1);
	memcpy(big, "[s]\na = 1\n", 10);
	assert_int_equal(tu_write(path, big, EHX_MAX_CONFIG_FILE + 1, 0644), 0);
	memset(&s, 0, sizeof(s));
	assert_int_equal(ehx_conf_parse(path, record, &s, err, sizeof(err)),
	    EHX_ERR_CONFIG);
	assert_true(strncmp(err, path, strlen(path)) == 0);
	assert_non_null(strstr(err, "larger than the limit"));
	assert_int_equal(s.n, 0);
	/* Exactly at the limit is read. */
	assert_int_equal(tu_write(path, big, EHX_MAX_CONFIG_FILE, 0644), 0);
	assert_int_equal(ehx_conf_parse(path, record, &s, err, sizeof(err)), 0);
	assert_int_equal(s.n, 1);
	free(big);

	/* A missing file: its name and the system's reason. */
	tu_join(path, sizeof(path), tmpdir, "missing.ini");
	assert_int_equal(ehx_conf_parse(path, record, &s, err, sizeof(err)),
	    EHX_ERR_CONFIG);
	snprintf(want, sizeof(want), "%s: %s", path, strerror(ENOENT));
	assert_string_equal(err, want);
}

static void
test_conf_int(void **state)
{
	long long v = -7;
	char why[128];

	(void)state;
	assert_int_equal(ehx_conf_int("42", 0, 100, &v, why, sizeof(why)), 0);
	assert_int_equal(v, 42);
	assert_int_equal(ehx_conf_int("-5", -10, 10, &v, why, sizeof(why)), 0);
	assert_int_equal(v, -5);
	assert_int_equal(ehx_conf_int("5", 5, 5, &v, why, sizeof(why)), 0);
	assert_int_equal(ehx_conf_int("3600", 5, 3600, &v, why, sizeof(why)), 0);
	v = 99;
	static const char *const bad[] = { "", "abc", "4x", "4.5", "0x10",
	    "3601", "4", "-1", "99999999999999999999", "5 ", "1e3" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		if (ehx_conf_int(bad[i], 5, 3600, &v, why, sizeof(why)) !=
		    EHX_ERR_CONFIG)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_non_null(strstr(why, "5..3600"));
		assert_int_equal(v, 99);   /* untouched */
	}
}

static void
test_conf_bool(void **state)
{
	static const char *const yes[] = { "yes", "true", "on", "1", "YES",
	    "True", "oN" };
	static const char *const no[] = { "no", "false", "off", "0", "NO",
	    "False", "OFF" };
	static const char *const bad[] = { "", "y", "n", "2", "enabled",
	    "yes ", " no", "truee" };
	bool b;
	char why[128];

	(void)state;
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		b = false;
		assert_int_equal(ehx_conf_bool(yes[i], &b, why, sizeof(why)), 0);
		assert_true(b);
	}
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		b = true;
		assert_int_equal(ehx_conf_bool(no[i], &b, why, sizeof(why)), 0);
		assert_false(b);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		b = true;
		if (ehx_conf_bool(bad[i], &b, why, sizeof(why)) != EHX_ERR_CONFIG)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_true(b);
		assert_non_null(strstr(why, "yes or no"));
	}
}

static void
test_conf_path(void **state)
{
	char out[64], why[128], longv[200];

	(void)state;
	assert_int_equal(ehx_conf_path("/etc/ehx/broker.conf", "broker.key",
	    out, sizeof(out), why, sizeof(why)), 0);
	assert_string_equal(out, "/etc/ehx/broker.key");
	assert_int_equal(ehx_conf_path("/etc/ehx/broker.conf", "../ca/ca.crt",
	    out, sizeof(out), why, sizeof(why)), 0);
	assert_string_equal(out, "/etc/ehx/../ca/ca.crt");
	assert_int_equal(ehx_conf_path("/etc/ehx/broker.conf", "/var/lib/ehx",
	    out, sizeof(out), why, sizeof(why)), 0);
	assert_string_equal(out, "/var/lib/ehx");
	assert_int_equal(ehx_conf_path("broker.conf", "data", out, sizeof(out),
	    why, sizeof(why)), 0);
	assert_string_equal(out, "data");
	assert_int_equal(ehx_conf_path("conf/broker.conf", "data", out,
	    sizeof(out), why, sizeof(why)), 0);
	assert_string_equal(out, "conf/data");
	assert_int_equal(ehx_conf_path("/broker.conf", "data", out, sizeof(out),
	    why, sizeof(why)), 0);
	assert_string_equal(out, "/data");
	assert_int_equal(ehx_conf_path("/etc/broker.conf", "", out, sizeof(out),
	    why, sizeof(why)), EHX_ERR_CONFIG);
	assert_non_null(strstr(why, "empty"));
	/* Too long for out, relative or absolute. */
	memset(longv, 'p', 100);
	longv[100] = '\0';
	assert_int_equal(ehx_conf_path("/etc/broker.conf", longv, out,
	    sizeof(out), why, sizeof(why)), EHX_ERR_CONFIG);
	assert_non_null(strstr(why, "too long"));
	longv[0] = '/';
	assert_int_equal(ehx_conf_path("/etc/broker.conf", longv, out,
	    sizeof(out), why, sizeof(why)), EHX_ERR_CONFIG);
	/* Exactly filling out: "/etc/" + 58 = 63 bytes. */
	memset(longv, 'q', 58);
	longv[58] = '\0';
	assert_int_equal(ehx_conf_path("/etc/broker.conf", longv, out,
	    sizeof(out), why, sizeof(why)), 0);
	assert_int_equal(strlen(out), 63);
	longv[58] = 'q';
	longv[59] = '\0';
	assert_int_equal(ehx_conf_path("/etc/broker.conf", longv, out,
	    sizeof(out), why, sizeof(why)), EHX_ERR_CONFIG);
}

static void
test_conf_string_and_required(void **state)
{
	struct cfg {
		char a[8];
		char b[8];
	} c;
	static const struct ehx_conf_required req[] = {
		{ "alpha", offsetof(struct cfg, a) },
		{ "beta", offsetof(struct cfg, b) },
	};
	char why[128], err[256];

	(void)state;
	memset(&c, 0, sizeof(c));
	assert_int_equal(ehx_conf_string("1234567", c.a, sizeof(c.a), why,
	    sizeof(why)), 0);
	assert_string_equal(c.a, "1234567");
	assert_int_equal(ehx_conf_string("12345678", c.b, sizeof(c.b), why,
	    sizeof(why)), EHX_ERR_CONFIG);
	assert_non_null(strstr(why, "1..7"));
	assert_int_equal(ehx_conf_string("", c.b, sizeof(c.b), why,
	    sizeof(why)), EHX_ERR_CONFIG);
	assert_int_equal(ehx_conf_string("a\x01", c.b, sizeof(c.b), why,
	    sizeof(why)), EHX_ERR_CONFIG);
	assert_string_equal(c.b, "");
	assert_int_equal(ehx_conf_check_required("x.conf", "broker", &c, req, 2,
	    err, sizeof(err)), EHX_ERR_CONFIG);
	assert_string_equal(err, "x.conf: [broker] beta is required");
	snprintf(c.b, sizeof(c.b), "set");
	assert_int_equal(ehx_conf_check_required("x.conf", "broker", &c, req, 2,
	    err, sizeof(err)), 0);
}

static void
test_conf_log_level(void **state)
{
	int lvl = -5;
	char why[128];

	(void)state;
	assert_int_equal(ehx_conf_log_level("error", &lvl, why, sizeof(why)), 0);
	assert_int_equal(lvl, EHX_LOG_ERROR);
	assert_int_equal(ehx_conf_log_level("warn", &lvl, why, sizeof(why)), 0);
	assert_int_equal(lvl, EHX_LOG_WARN);
	assert_int_equal(ehx_conf_log_level("INFO", &lvl, why, sizeof(why)), 0);
	assert_int_equal(lvl, EHX_LOG_INFO);
	assert_int_equal(ehx_conf_log_level("debug", &lvl, why, sizeof(why)), 0);
	assert_int_equal(lvl, EHX_LOG_DEBUG);
	assert_int_equal(ehx_conf_log_level("verbose", &lvl, why, sizeof(why)),
	    EHX_ERR_CONFIG);
	assert_int_equal(lvl, EHX_LOG_DEBUG);
	assert_int_equal(ehx_conf_log_level("", &lvl, why, sizeof(why)),
	    EHX_ERR_CONFIG);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_file),
		cmocka_unit_test(test_handler_error),
		cmocka_unit_test(test_two_handler_errors),
		cmocka_unit_test(test_syntax_then_handler_error),
		cmocka_unit_test(test_syntax_errors),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_long_line_split),
		cmocka_unit_test(test_nul_and_size),
		cmocka_unit_test(test_conf_int),
		cmocka_unit_test(test_conf_bool),
		cmocka_unit_test(test_conf_path),
		cmocka_unit_test(test_conf_string_and_required),
		cmocka_unit_test(test_conf_log_level),
	};

	return cmocka_run_group_tests_name("test_conf", tests, setup, teardown);
}
