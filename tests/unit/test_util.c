/*
 * test_util — lib/util.c: hex, constant-time compare, the checks for
 * untrusted text, ids and references, time parsing and formatting, and
 * bounded, permission-checked file reading and atomic writing on real files.
 */
#include "testutil.h"

#include "ehx/err.h"
#include "ehx/limits.h"
#include "ehx/util.h"

static char tmpdir[PATH_MAX];

static int
setup(void **state)
{
	(void)state;
	return tu_mkdtemp(tmpdir, sizeof(tmpdir), "util");
}

static int
teardown(void **state)
{
	(void)state;
	tu_rmtree(tmpdir);
	return 0;
}

/* ---- hex ------------------------------------------------------------------ */

static void
test_hex(void **state)
{
	const unsigned char in[] = { 0x00, 0x01, 0x7f, 0x80, 0xab, 0xff };
	char out[2 * sizeof(in) + 1];

	(void)state;
	memset(out, 'x', sizeof(out));
	assert_ptr_equal(ehx_hex(out, in, sizeof(in)), out);
	assert_string_equal(out, "00017f80abff");
	assert_string_equal(ehx_hex(out, in, 0), "");
}

static void
test_unhex(void **state)
{
	unsigned char out[4], big[32];
	char hex[65];

	(void)state;
	assert_int_equal(ehx_unhex(out, 4, "00017f80"), 0);
	assert_memory_equal(out, "\x00\x01\x7f\x80", 4);
	/* Upper case is accepted. */
	assert_int_equal(ehx_unhex(out, 4, "ABcdEF09"), 0);
	assert_memory_equal(out, "\xab\xcd\xef\x09", 4);
	/* Round trip of every byte value, 32 at a time. */
	for (int base = 0; base < 256; base += 32) {
		for (int i = 0; i < 32; i++)
			big[i] = (unsigned char)(base + i);
		ehx_hex(hex, big, 32);
		{
			unsigned char back[32];

			assert_int_equal(ehx_unhex(back, 32, hex), 0);
			assert_memory_equal(back, big, 32);
		}
	}
	/* Wrong lengths. */
	assert_int_equal(ehx_unhex(out, 4, ""), EHX_ERR_MALFORMED);
	assert_int_equal(ehx_unhex(out, 4, "0001020"), EHX_ERR_MALFORMED);
	assert_int_equal(ehx_unhex(out, 4, "000102030"), EHX_ERR_MALFORMED);
	assert_int_equal(ehx_unhex(out, 4, "0001020304"), EHX_ERR_MALFORMED);
	/* Bad digits, at either nibble, just outside each range. */
	assert_int_equal(ehx_unhex(out, 4, "0001020g"), EHX_ERR_MALFORMED);
	assert_int_equal(ehx_unhex(out, 4, "g0010203"), EHX_ERR_MALFORMED);
	assert_int_equal(ehx_unhex(out, 4, "00010:03"), EHX_ERR_MALFORMED);
	assert_int_equal(ehx_unhex(out, 4, "00010/03"), EHX_ERR_MALFORMED);
	assert_int_equal(ehx_unhex(out, 4, "00010G03"), EHX_ERR_MALFORMED);
	assert_int_equal(ehx_unhex(out, 4, "00 10203"), EHX_ERR_MALFORMED);
	assert_int_equal(ehx_unhex(out, 4, "0x010203"), EHX_ERR_MALFORMED);
	assert_int_equal(ehx_unhex(out, 4, "000102\xc3\xa9"), EHX_ERR_MALFORMED);
	assert_int_equal(ehx_unhex(out, 0, ""), 0);
}

static void
test_ct_eq(void **state)
{
	unsigned char a[64], b[64];

	(void)state;
	for (int i = 0; i < 64; i++)
		a[i] = b[i] = (unsigned char)(i * 7);
	assert_true(ehx_ct_eq(a, b, sizeof(a)));
	assert_true(ehx_ct_eq(a, b, 0));
	for (int i = 0; i < 64; i++) {
		b[i] ^= 0x01;
		assert_false(ehx_ct_eq(a, b, sizeof(a)));
		assert_true(ehx_ct_eq(a, b, (size_t)i));   /* prefix still equal */
		b[i] ^= 0x01;
	}
	b[63] ^= 0x80;
	assert_false(ehx_ct_eq(a, b, 64));
}

/* ---- text ------------------------------------------------------------- */

static void
test_text_ascii(void **state)
{
	char s[8];

	(void)state;
	assert_true(ehx_text_ok("PC Sam Jones", 1, 128));
	assert_true(ehx_text_ok("~!@#$%^&*()_+{}|:\"<>?`-=[]\\;',./", 1, 128));
	assert_true(ehx_text_ok("", 0, 10));
	assert_false(ehx_text_ok("", 1, 10));
	assert_true(ehx_text_ok(NULL, 0, 10));
	assert_false(ehx_text_ok(NULL, 1, 10));
	/* Every C0 control, and DEL. */
	for (int c = 1; c < 0x20; c++) {
		snprintf(s, sizeof(s), "a%cb", c);
		assert_false(ehx_text_ok(s, 0, 10));
	}
	assert_false(ehx_text_ok("a\nb", 0, 10));
	assert_false(ehx_text_ok("a\tb", 0, 10));
	assert_false(ehx_text_ok("a\rb", 0, 10));
	assert_false(ehx_text_ok("a\x1b[31m", 0, 10));
	assert_false(ehx_text_ok("a\x7f", 0, 10));
	assert_true(ehx_text_ok(" ", 1, 1));
	assert_true(ehx_text_ok("~", 1, 1));
}

static void
test_text_utf8(void **state)
{
	static const char *const good[] = {
		"\xc2\xa0",              /* U+00A0, first after C1 */
		"caf\xc3\xa9",           /* é */
		"\xdf\xbf",              /* U+07FF */
		"\xe0\xa0\x80",          /* U+0800, smallest 3-byte */
		"\xe2\x82\xac",          /* € */
		"\xed\x9f\xbf",          /* U+D7FF, just below surrogates */
		"\xee\x80\x80",          /* U+E000, just above */
		"\xef\xbf\xbd",          /* U+FFFD */
		"\xf0\x90\x80\x80",      /* U+10000 */
		"\xf0\x9f\x98\x80",      /* an emoji */
		"\xf4\x8f\xbf\xbf",      /* U+10FFFF */
		"Zo\xc3\xab \xe6\x9d\x8e \xf0\x9f\x91\x8d",
	};
	static const char *const bad[] = {
		"\xc0\xaf",              /* overlong '/' */
		"\xc1\xbf",              /* overlong */
		"\xe0\x80\xaf",          /* overlong 3-byte '/' */
		"\xe0\x9f\xbf",          /* overlong U+07FF */
		"\xf0\x80\x80\xaf",      /* overlong 4-byte */
		"\xf0\x8f\xbf\xbf",      /* overlong U+FFFF */
		"\xed\xa0\x80",          /* U+D800 surrogate */
		"\xed\xbf\xbf",          /* U+DFFF surrogate */
		"\xed\xb0\x80",
		"\xc2\x80",              /* U+0080, C1 control */
		"\xc2\x85",              /* NEL */
		"\xc2\x9f",              /* U+009F */
		"\xe2\x80\xa8",          /* U+2028 line separator */
		"\xe2\x80\xa9",          /* U+2029 paragraph separator */
		"\xf4\x90\x80\x80",      /* U+110000 */
		"\xf5\x80\x80\x80",
		"\xf8\x88\x80\x80\x80",  /* 5-byte form */
		"\xfc\x84\x80\x80\x80\x80",
		"\xfe", "\xff",
		"\x80",                  /* lone continuation */
		"a\xbf",
		"\xc3",                  /* truncated */
		"\xe2\x82",
		"\xf0\x9f\x98",
		"\xc3\x28",              /* bad continuation */
		"\xe2\x28\xa1",
		"\xe2\x82\x28",
		"\xf0\x28\x8c\xbc",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!ehx_text_ok(good[i], 1, 64))
			fail_msg("refused good text #%zu", i);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (ehx_text_ok(bad[i], 0, 64))
			fail_msg("accepted bad text #%zu", i);
}

/* Bounds are bytes, not characters. */
static void
test_text_bounds_bytes(void **state)
{
	char buf[400];

	(void)state;
	memset(buf, 'a', 280);
	buf[280] = '\0';
	assert_true(ehx_text_ok(buf, 1, 280));
	buf[280] = 'a';
	buf[281] = '\0';
	assert_false(ehx_text_ok(buf, 1, 280));
	assert_true(ehx_text_ok(buf, 1, 281));
	/* "é" is one character of two bytes. */
	assert_true(ehx_text_ok("\xc3\xa9", 2, 2));
	assert_false(ehx_text_ok("\xc3\xa9", 1, 1));
	assert_false(ehx_text_ok("\xc3\xa9", 3, 3));
	/* 140 two-byte characters are 280 bytes; one more is 282. */
	for (int i = 0; i < 140; i++)
		memcpy(buf + 2 * i, "\xc3\xa9", 2);
	buf[280] = '\0';
	assert_true(ehx_text_ok(buf, 1, 280));
	memcpy(buf + 280, "\xc3\xa9", 3);
	assert_false(ehx_text_ok(buf, 1, 280));
	/* A multi-byte character may not straddle the limit. */
	memset(buf, 'a', 279);
	memcpy(buf + 279, "\xe2\x82\xac", 4);    /* 282 bytes */
	assert_false(ehx_text_ok(buf, 1, 280));
	assert_false(ehx_text_ok(buf, 1, 281));
	assert_true(ehx_text_ok(buf, 1, 282));
	/* The minimum is bytes too. */
	assert_true(ehx_text_ok("ab", 2, 5));
	assert_false(ehx_text_ok("a", 2, 5));
	assert_true(ehx_text_ok("\xc3\xa9", 2, 5));
}

/* ---- ids and refs -------------------------------------------------------- */

static void
test_id_ok(void **state)
{
	char s[40];

	(void)state;
	assert_true(ehx_id_ok("police"));
	assert_true(ehx_id_ok("police-north_2"));
	assert_true(ehx_id_ok("0"));
	assert_true(ehx_id_ok("a-"));
	assert_false(ehx_id_ok(NULL));
	assert_false(ehx_id_ok(""));
	assert_false(ehx_id_ok("-police"));
	assert_false(ehx_id_ok("_police"));
	assert_false(ehx_id_ok("Police"));
	assert_false(ehx_id_ok("police north"));
	assert_false(ehx_id_ok("police.north"));
	assert_false(ehx_id_ok("police/north"));
	assert_false(ehx_id_ok("pol\xc3\xa9"));
	assert_false(ehx_id_ok("police\n"));
	memset(s, 'a', 32);
	s[32] = '\0';
	assert_true(ehx_id_ok(s));
	s[32] = 'a';
	s[33] = '\0';
	assert_false(ehx_id_ok(s));
}

static void
test_ref_ok(void **state)
{
	char s[80];

	(void)state;
	assert_true(ehx_ref_ok("CASE-2026/001"));
	assert_true(ehx_ref_ok("a.b_c:d/e-f"));
	assert_true(ehx_ref_ok("Z"));
	assert_true(ehx_ref_ok("-"));
	assert_false(ehx_ref_ok(NULL));
	assert_false(ehx_ref_ok(""));
	assert_false(ehx_ref_ok("case 1"));
	assert_false(ehx_ref_ok("case#1"));
	assert_false(ehx_ref_ok("case\\1"));
	assert_false(ehx_ref_ok("caf\xc3\xa9"));
	assert_false(ehx_ref_ok("a\n"));
	/* 32 and 33 characters: both fine (the id bound is not the ref's). */
	memset(s, 'R', 32);
	s[32] = '\0';
	assert_true(ehx_ref_ok(s));
	s[32] = 'R';
	s[33] = '\0';
	assert_true(ehx_ref_ok(s));
	/* 64 and 65: the limit. */
	memset(s, 'r', 64);
	s[64] = '\0';
	assert_true(ehx_ref_ok(s));
	s[64] = 'r';
	s[65] = '\0';
	assert_false(ehx_ref_ok(s));
}

/* ---- time ------------------------------------------------------------------ */

#define JAN1_2026 1767225600000LL   /* 2026-01-01T00:00:00Z */

static void
test_parse_time_dates(void **state)
{
	int64_t t = -1;

	(void)state;
	/* Exactly the documented shapes: nothing sscanf would let slip. */
	{
		static const char *const loose[] = { " 2026-01-01",
		    "2026-1-01", "2026-+1-01", "2026-01-01T1:000Z",
		    "+ 5d", "+5 d", "+-5d", "2026-01-01 ", "2026-01-01T10:30",
		    "2026-01-01T10:30:1Z", "+5", "+d", "" };

		for (size_t i = 0; i < sizeof(loose) / sizeof(loose[0]); i++)
			assert_int_equal(ehx_parse_time(loose[i], 0, &t),
			    EHX_ERR_INVALID_FIELD);
	}
	assert_int_equal(ehx_parse_time("2026-01-01", 0, &t), 0);
	assert_int_equal(t, JAN1_2026);
	assert_int_equal(ehx_parse_time("1970-01-01", 0, &t), 0);
	assert_int_equal(t, 0);
	assert_int_equal(ehx_parse_time("2026-01-01T10:30Z", 0, &t), 0);
	assert_int_equal(t, JAN1_2026 + (10 * 60 + 30) * 60000LL);
	assert_int_equal(ehx_parse_time("2026-01-01T10:30:15Z", 0, &t), 0);
	assert_int_equal(t, JAN1_2026 + ((10 * 60 + 30) * 60 + 15) * 1000LL);
	assert_int_equal(ehx_parse_time("2026-12-31T23:59:59Z", 0, &t), 0);
	assert_int_equal(t, JAN1_2026 + 365LL * 86400000 - 1000);
	assert_int_equal(ehx_parse_time("2028-02-29", 0, &t), 0);   /* leap */
	assert_int_equal(ehx_parse_time("2000-02-29", 0, &t), 0);
}

static void
test_parse_time_relative(void **state)
{
	const int64_t now = JAN1_2026 + 12345;
	int64_t t = -1;

	(void)state;
	assert_int_equal(ehx_parse_time("+3d", now, &t), 0);
	assert_int_equal(t, now + 3 * 86400000LL);
	assert_int_equal(ehx_parse_time("+2h", now, &t), 0);
	assert_int_equal(t, now + 2 * 3600000LL);
	assert_int_equal(ehx_parse_time("+0d", now, &t), 0);
	assert_int_equal(t, now);
	assert_int_equal(ehx_parse_time("+3660d", now, &t), 0);
	assert_int_equal(t, now + 3660 * 86400000LL);
	assert_int_equal(ehx_parse_time("+3661d", now, &t), EHX_ERR_INVALID_FIELD);
	assert_int_equal(t, 0);
	assert_int_equal(ehx_parse_time("+-1d", now, &t), EHX_ERR_INVALID_FIELD);
	assert_int_equal(ehx_parse_time("--1d", now, &t), EHX_ERR_INVALID_FIELD);
	/* Before now, for audit searches. */
	assert_int_equal(ehx_parse_time("-2d", now, &t), 0);
	assert_int_equal(t, now - 2 * 86400000LL);
	assert_int_equal(ehx_parse_time("-5h", now, &t), 0);
	assert_int_equal(t, now - 5 * 3600000LL);
	assert_int_equal(ehx_parse_time("+1w", now, &t), EHX_ERR_INVALID_FIELD);
	assert_int_equal(ehx_parse_time("+1D", now, &t), EHX_ERR_INVALID_FIELD);
	assert_int_equal(ehx_parse_time("+1", now, &t), EHX_ERR_INVALID_FIELD);
	assert_int_equal(ehx_parse_time("+d", now, &t), EHX_ERR_INVALID_FIELD);
	assert_int_equal(ehx_parse_time("+", now, &t), EHX_ERR_INVALID_FIELD);
	assert_int_equal(ehx_parse_time("+1dd", now, &t), EHX_ERR_INVALID_FIELD);
	assert_int_equal(ehx_parse_time("+1d ", now, &t), EHX_ERR_INVALID_FIELD);
	assert_int_equal(ehx_parse_time("+99999999999999999999d", now, &t),
	    EHX_ERR_INVALID_FIELD);
}

static void
test_parse_time_rejects(void **state)
{
	static const char *const bad[] = {
		"2026-02-31", "2026-02-29", "2026-04-31", "2026-13-01",
		"2026-00-10", "2026-01-00", "2026-01-32", "1969-12-31",
		"garbage", "", "2026", "2026-01", "2026-01-01x", "2026-01-01 ",
		"2026/01/01", "26-01-01", "2026-01-01T10:30",
		"2026-01-01T10:30z", "2026-01-01T24:00Z", "2026-01-01T10:60Z",
		"2026-01-01T10:30:60Z", "2026-01-01T10:30:15", "2026-01-01T10:30:15ZZ",
		"2026-01-01T10:30+01:00", "2026-01-01 10:30Z", "-1x", "3d",
		"2026-02-31T10:00Z",
	};
	int64_t t;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		t = 42;
		if (ehx_parse_time(bad[i], JAN1_2026, &t) != EHX_ERR_INVALID_FIELD)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_int_equal(t, 0);
	}
}

static void
test_fmt_time(void **state)
{
	char out[32];

	(void)state;
	assert_string_equal(ehx_fmt_time(out, sizeof(out), 0), "-");
	assert_string_equal(ehx_fmt_time(out, sizeof(out),
	    JAN1_2026 + 7 * 3600000LL + 21 * 60000LL + 29123), "2026-01-01 07:21");
	assert_string_equal(ehx_fmt_iso(out, sizeof(out),
	    JAN1_2026 + 7 * 3600000LL + 21 * 60000LL + 29123),
	    "2026-01-01T07:21:29.123Z");
	assert_string_equal(ehx_fmt_iso(out, sizeof(out), 0),
	    "1970-01-01T00:00:00.000Z");
	assert_string_equal(ehx_fmt_iso(out, sizeof(out), -1), "invalid");
	/* What parse_time reads, fmt_iso writes back. */
	{
		int64_t t;

		assert_int_equal(ehx_parse_time("2026-11-22T07:21:29Z", 0, &t), 0);
		assert_string_equal(ehx_fmt_iso(out, sizeof(out), t),
		    "2026-11-22T07:21:29.000Z");
	}
	/* now_ms is near the wall clock (seconds) and after 2024. */
	assert_true(ehx_now_ms() > 1704067200000LL);
}

static void
test_random(void **state)
{
	unsigned char a[32], b[32], z[32] = { 0 };

	(void)state;
	assert_int_equal(ehx_random(a, sizeof(a)), 0);
	assert_int_equal(ehx_random(b, sizeof(b)), 0);
	assert_memory_not_equal(a, b, sizeof(a));
	assert_memory_not_equal(a, z, sizeof(a));
	assert_int_equal(ehx_random(a, 0), 0);
}

/* ---- files ------------------------------------------------------------- */

static void
test_file_read(void **state)
{
	char path[PATH_MAX];
	unsigned char *buf = (unsigned char *)"not touched";
	size_t len = 99;

	(void)state;
	tu_join(path, sizeof(path), tmpdir, "plain.txt");
	assert_int_equal(tu_write(path, "hello\0world", 11, 0644), 0);
	assert_int_equal(ehx_file_read(path, false, 100, &buf, &len), 0);
	assert_int_equal(len, 11);
	assert_memory_equal(buf, "hello\0world", 12);   /* and a NUL after */
	free(buf);
	/* Exactly at the limit is fine; one byte over is not. */
	assert_int_equal(ehx_file_read(path, false, 11, &buf, &len), 0);
	free(buf);
	assert_int_equal(ehx_file_read(path, false, 10, &buf, &len),
	    EHX_ERR_TOO_LARGE);
	assert_null(buf);
	assert_int_equal(len, 0);
	/* An empty file. */
	tu_join(path, sizeof(path), tmpdir, "empty.txt");
	assert_int_equal(tu_write(path, "", 0, 0644), 0);
	assert_int_equal(ehx_file_read(path, false, 0, &buf, &len), 0);
	assert_int_equal(len, 0);
	assert_int_equal(buf[0], '\0');
	free(buf);
}

static void
test_file_read_missing(void **state)
{
	char path[PATH_MAX];
	unsigned char *buf = (unsigned char *)"x";
	size_t len = 5;

	(void)state;
	tu_join(path, sizeof(path), tmpdir, "no-such-file");
	errno = 0;
	assert_int_equal(ehx_file_read(path, false, 100, &buf, &len),
	    EHX_ERR_SYSTEM);
	assert_int_equal(errno, ENOENT);
	assert_null(buf);
	assert_int_equal(len, 0);
	/* A directory is not a file. */
	errno = 0;
	assert_int_equal(ehx_file_read(tmpdir, false, 100, &buf, &len),
	    EHX_ERR_SYSTEM);
	assert_int_equal(errno, EINVAL);
	assert_null(buf);
}

static void
test_file_read_secret_modes(void **state)
{
	static const mode_t refused[] = { 0644, 0640, 0604, 0660, 0606, 0610,
	    0601, 0620, 0602, 0700 | 0004, 0777 };
	static const mode_t accepted[] = { 0600, 0400, 0700, 0200 };
	char path[PATH_MAX];
	unsigned char *buf = NULL;
	size_t len = 0;

	(void)state;
	tu_join(path, sizeof(path), tmpdir, "secret.key");
	assert_int_equal(tu_write(path, "0123456789abcdef", 16, 0600), 0);
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		assert_int_equal(chmod(path, refused[i]), 0);
		if (ehx_file_read(path, true, 100, &buf, &len) !=
		    EHX_ERR_KEY_PERMISSIONS)
			fail_msg("secret read with mode %o", (unsigned)refused[i]);
		assert_null(buf);
		/* Not a secret: the mode does not matter. */
		assert_int_equal(ehx_file_read(path, false, 100, &buf, &len), 0);
		free(buf);
		buf = NULL;
	}
	for (size_t i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++) {
		assert_int_equal(chmod(path, accepted[i]), 0);
		if (access(path, R_OK) != 0)
			continue;   /* write-only for a non-root user */
		assert_int_equal(ehx_file_read(path, true, 100, &buf, &len), 0);
		assert_int_equal(len, 16);
		assert_memory_equal(buf, "0123456789abcdef", 16);
		ehx_free_secret(buf, len);
		buf = NULL;
	}
	/* Permissions are checked before the size. */
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(ehx_file_read(path, true, 1, &buf, &len),
	    EHX_ERR_KEY_PERMISSIONS);
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(ehx_file_read(path, true, 15, &buf, &len),
	    EHX_ERR_TOO_LARGE);
	ehx_free_secret(NULL, 10);
}

static mode_t
mode_of(const char *path)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return (mode_t)-1;
	return st.st_mode & 07777;
}

static void
test_file_write_atomic(void **state)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	unsigned char *buf = NULL;
	size_t len = 0;
	mode_t old = umask(022);

	(void)state;
	tu_join(path, sizeof(path), tmpdir, "atomic.out");
	assert_int_equal(ehx_file_write_atomic(path, "first\n", 6, 0600), 0);
	assert_int_equal(mode_of(path), 0600);
	assert_int_equal(ehx_file_read(path, true, 100, &buf, &len), 0);
	assert_int_equal(len, 6);
	assert_memory_equal(buf, "first\n", 6);
	free(buf);
	/* Replacing: new content and the new file's mode. */
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(ehx_file_write_atomic(path, "second", 6, 0600), 0);
	assert_int_equal(mode_of(path), 0600);
	assert_int_equal(ehx_file_read(path, false, 100, &buf, &len), 0);
	assert_memory_equal(buf, "second", 7);
	free(buf);
	assert_int_equal(ehx_file_write_atomic(path, "x", 1, 0644), 0);
	assert_int_equal(mode_of(path), 0644);
	assert_int_equal(ehx_file_write_atomic(path, "", 0, 0640), 0);
	assert_int_equal(mode_of(path), 0640);
	assert_int_equal(ehx_file_read(path, false, 100, &buf, &len), 0);
	assert_int_equal(len, 0);
	free(buf);
	/* No temporary file is left behind. */
	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	assert_int_not_equal(access(tmp, F_OK), 0);
	/* A directory that does not exist: an error, nothing created. */
	tu_join(path, sizeof(path), tmpdir, "no-dir/atomic.out");
	assert_int_equal(ehx_file_write_atomic(path, "x", 1, 0600),
	    EHX_ERR_SYSTEM);
	umask(old);
}

/*
 * The temporary file is opened without O_EXCL, so one left behind (a crash,
 * or planted) keeps its own mode, and a secret lands in a file others can
 * read.
 */
static void
test_file_write_atomic_stale_tmp(void **state)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	mode_t old = umask(022);

	(void)state;
	tu_join(path, sizeof(path), tmpdir, "stale.out");
	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	assert_int_equal(tu_write(tmp, "old", 3, 0644), 0);
	assert_int_equal(ehx_file_write_atomic(path, "secret", 6, 0600), 0);
	umask(old);
	assert_int_equal(mode_of(path), 0600);
}

/*
 * ehx_file_read() opens before it checks that the path is a regular file,
 * and without O_NONBLOCK: a FIFO where a key or config file should be
 * blocks the open forever (no writer), so a daemon hangs at start instead
 * of saying "not a regular file". Run in a child with an alarm as a guard
 * against the hang.
 */
static void
test_file_read_fifo(void **state)
{
	char path[PATH_MAX];
	pid_t pid;
	int st;

	(void)state;
	tu_join(path, sizeof(path), tmpdir, "fifo");
	assert_int_equal(mkfifo(path, 0600), 0);
	fflush(NULL);
	if ((pid = fork()) == 0) {
		unsigned char *buf = NULL;
		size_t len = 0;

		alarm(5);
		_exit(ehx_file_read(path, true, 100, &buf, &len) ==
		    EHX_ERR_SYSTEM ? 0 : 1);
	}
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	unlink(path);
	if (WIFSIGNALED(st))
		fail_msg("ehx_file_read on a FIFO hung (signal %d)",
		    WTERMSIG(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hex),
		cmocka_unit_test(test_unhex),
		cmocka_unit_test(test_ct_eq),
		cmocka_unit_test(test_text_ascii),
		cmocka_unit_test(test_text_utf8),
		cmocka_unit_test(test_text_bounds_bytes),
		cmocka_unit_test(test_id_ok),
		cmocka_unit_test(test_ref_ok),
		cmocka_unit_test(test_parse_time_dates),
		cmocka_unit_test(test_parse_time_relative),
		cmocka_unit_test(test_parse_time_rejects),
		cmocka_unit_test(test_fmt_time),
		cmocka_unit_test(test_random),
		cmocka_unit_test(test_file_read),
		cmocka_unit_test(test_file_read_missing),
		cmocka_unit_test(test_file_read_secret_modes),
		cmocka_unit_test(test_file_read_fifo),
		cmocka_unit_test(test_file_write_atomic),
		cmocka_unit_test(test_file_write_atomic_stale_tmp),
	};

	return cmocka_run_group_tests_name("test_util", tests, setup, teardown);
}
