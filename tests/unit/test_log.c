/*
 * test_log — lib/log.c: untrusted bytes are escaped and cut to fit, levels
 * parse, and a line below the current level is not even formatted.
 */
#include "testutil.h"

#include "ehx/log.h"

static void
test_escape(void **state)
{
	char out[64];

	(void)state;
	assert_string_equal(ehx_log_escape(out, sizeof(out), "plain text", 10),
	    "plain text");
	/* Controls, backslash, DEL and high bytes become \xHH. */
	assert_string_equal(ehx_log_escape(out, sizeof(out),
	    "a\nb\\c\x7f\xff", 7), "a\\x0ab\\x5cc\\x7f\\xff");
	/* Embedded NULs are shown, not obeyed. */
	assert_string_equal(ehx_log_escape(out, sizeof(out), "x\0y", 3),
	    "x\\x00y");
	/* Too long: cut, marked, always terminated within the buffer. */
	{
		char small[12], big[200];

		memset(big, 'A', sizeof(big));
		ehx_log_escape(small, sizeof(small), big, sizeof(big));
		assert_true(strlen(small) < sizeof(small));
		assert_non_null(strstr(small, "..."));
		memset(big, '\n', sizeof(big));
		ehx_log_escape(small, sizeof(small), big, sizeof(big));
		assert_true(strlen(small) < sizeof(small));
		assert_string_equal(small, "\\x0a\\x0a...");
	}
	assert_string_equal(ehx_log_escape(out, sizeof(out), "", 0), "");
}

static void
test_levels(void **state)
{
	(void)state;
	assert_int_equal(ehx_log_parse_level("error"), EHX_LOG_ERROR);
	assert_int_equal(ehx_log_parse_level("WARN"), EHX_LOG_WARN);
	assert_int_equal(ehx_log_parse_level("info"), EHX_LOG_INFO);
	assert_int_equal(ehx_log_parse_level("debug"), EHX_LOG_DEBUG);
	assert_int_equal(ehx_log_parse_level("loud"), -1);
	assert_int_equal(ehx_log_parse_level(""), -1);
}

static int formatted;

static const char *
count_format(void)
{
	formatted++;
	return "x";
}

static void
test_level_checked_first(void **state)
{
	char path[PATH_MAX], dir[PATH_MAX], line[512];
	FILE *f;
	int saved = dup(2), fd;

	(void)state;
	assert_int_equal(tu_mkdtemp(dir, sizeof(dir), "log"), 0);
	tu_join(path, sizeof(path), dir, "err");
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	dup2(fd, 2);
	ehx_log_init("ehx-test", EHX_LOG_WARN);
	formatted = 0;
	log_debug("not shown %s", count_format());
	log_info("not shown %s", count_format());
	assert_int_equal(formatted, 0);
	log_warn("shown %s %d", count_format(), 42);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(fd);
	assert_int_equal(formatted, 1);
	assert_non_null(f = fopen(path, "r"));
	assert_non_null(fgets(line, sizeof(line), f));
	fclose(f);
	/* time, program[pid], level, file:line, message */
	assert_non_null(strstr(line, "Z ehx-test["));
	assert_non_null(strstr(line, "] warn test_log.c:"));
	assert_non_null(strstr(line, " shown x 42\n"));
	tu_rmtree(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_levels),
		cmocka_unit_test(test_level_checked_first),
	};

	return cmocka_run_group_tests_name("test_log", tests, NULL, NULL);
}
