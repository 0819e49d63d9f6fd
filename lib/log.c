/*
 * log.c — one line per event on standard error:
 *   2026-11-22T07:21:29.123Z ehx-broker[123] info pipeline.c:88 message …
 * The daemons run under a supervisor (systemd, the sandbox) that keeps it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "ehx/log.h"

int ehx_log_level_current = EHX_LOG_INFO;
static const char *progname = "ehx";

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void
ehx_log_init(const char *name, int level)
{
	progname = name;
	ehx_log_level_current = level;
}

int
ehx_log_parse_level(const char *s)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (strcasecmp(s, level_names[i]) == 0)
			return (int)i;
	return -1;
}

void
ehx_log_write(int level, const char *file, const char *func, int line,
    const char *fmt, ...)
{
	char msg[1024], stamp[32];
	struct timespec ts;
	struct tm tm;
	const char *base = strrchr(file, '/');
	va_list ap;

	(void)func;
	base = base ? base + 1 : file;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (level < 0 || level > EHX_LOG_DEBUG)
		level = EHX_LOG_ERROR;
	fprintf(stderr, "%s.%03ldZ %s[%ld] %s %s:%d %s\n", stamp,
	    ts.tv_nsec / 1000000, progname, (long)getpid(), level_names[level],
	    base, line, msg);
}

char *
ehx_log_escape(char *out, size_t outsz, const void *in, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = in;
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = p[i];
		size_t need = (c >= 0x20 && c < 0x7f && c != '\\') ? 1 : 4;

		if (o + need + 4 > outsz) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		if (need == 1)
			out[o++] = (char)c;
		else {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
	return out;
}
