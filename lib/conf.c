/*
 * conf.c — a thin layer over inih: files are read with a size bound first,
 * and every handler error carries the file, the line and a reason, so a bad
 * configuration stops a daemon with a sentence an operator can act on.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>

#include "ehx/conf.h"
#include "ehx/err.h"
#include "ehx/limits.h"
#include "ehx/log.h"
#include "ehx/util.h"

/*
 * inih reads through our reader, one line a call, so we know the line each
 * handler call is about; we stop at the first error (Debian's inih would go
 * on) and refuse a line longer than inih's buffer instead of letting it cut
 * the line in two.
 */
struct parse {
	ehx_conf_fn fn;
	void *user;
	const char *buf;
	size_t len, pos;
	int line;
	int code, err_line;
	char why[256];
};

static char *
reader(char *str, int num, void *stream)
{
	struct parse *p = stream;
	const char *start, *nl;
	size_t n;

	if (p->code != 0 || p->pos >= p->len || num < 3)
		return NULL;
	start = p->buf + p->pos;
	nl = memchr(start, '\n', p->len - p->pos);
	n = nl != NULL ? (size_t)(nl - start) + 1 : p->len - p->pos;
	p->line++;
	if (n > (size_t)num - 1) {
		p->code = EHX_ERR_CONFIG;
		p->err_line = p->line;
		snprintf(p->why, sizeof(p->why), "the line is longer than %d "
		    "bytes", num - 2);
		return NULL;
	}
	memcpy(str, start, n);
	str[n] = '\0';
	p->pos += n;
	return str;
}

static int
handler(void *user, const char *section, const char *key, const char *value)
{
	struct parse *p = user;
	int r;

	if (p->code != 0)
		return 0;
	if ((r = p->fn(p->user, section, key, value, p->why,
	    sizeof(p->why))) != 0) {
		p->code = r;
		p->err_line = p->line;
		return 0;
	}
	return 1;
}

int
ehx_conf_parse(const char *path, ehx_conf_fn fn, void *user, char *err,
    size_t errsz)
{
	struct parse p = { .fn = fn, .user = user };
	unsigned char *buf = NULL;
	size_t len = 0;
	int r, line;

	err[0] = '\0';
	if ((r = ehx_file_read(path, 0, EHX_MAX_CONFIG_FILE, &buf, &len)) != 0) {
		snprintf(err, errsz, "%s: %s", path, r == EHX_ERR_SYSTEM ?
		    strerror(errno) : ehx_strerror(r));
		return EHX_ERR_CONFIG;
	}
	if (memchr(buf, '\0', len) != NULL) {
		snprintf(err, errsz, "%s: the file contains a NUL byte", path);
		free(buf);
		return EHX_ERR_CONFIG;
	}
	p.buf = (const char *)buf;
	p.len = len;
	line = ini_parse_stream(reader, &p, handler, &p);
	free(buf);
	/* inih reports its first syntax error; ours is the first of ours. */
	if (line > 0 && (p.code == 0 || line < p.err_line))
		snprintf(err, errsz, "%s:%d: not a \"key = value\" or "
		    "\"[section]\" line", path, line);
	else if (p.code != 0)
		snprintf(err, errsz, "%s:%d: %s", path, p.err_line, p.why);
	else
		return 0;
	return EHX_ERR_CONFIG;
}

int
ehx_conf_string(const char *value, char *out, size_t outsz, char *why,
    size_t whysz)
{
	if (!ehx_text_ok(value, 1, outsz - 1)) {
		snprintf(why, whysz, "the value must be 1..%zu printable "
		    "characters", outsz - 1);
		return EHX_ERR_CONFIG;
	}
	memcpy(out, value, strlen(value) + 1);
	return 0;
}

int
ehx_conf_int(const char *value, long long min, long long max, long long *out,
    char *why, size_t whysz)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(value, &end, 10);
	if (errno != 0 || end == value || *end != '\0' || v < min || v > max) {
		snprintf(why, whysz, "\"%.40s\" is not a whole number in "
		    "%lld..%lld", value, min, max);
		return EHX_ERR_CONFIG;
	}
	*out = v;
	return 0;
}

int
ehx_conf_bool(const char *value, bool *out, char *why, size_t whysz)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(value, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(value, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	snprintf(why, whysz, "\"%.40s\" is not yes or no", value);
	return EHX_ERR_CONFIG;
}

int
ehx_conf_path(const char *conf_file, const char *value, char *out,
    size_t outsz, char *why, size_t whysz)
{
	const char *slash = strrchr(conf_file, '/');
	int n;

	if (value[0] == '\0') {
		snprintf(why, whysz, "the path is empty");
		return EHX_ERR_CONFIG;
	}
	if (value[0] == '/' || slash == NULL)
		n = snprintf(out, outsz, "%s", value);
	else
		n = snprintf(out, outsz, "%.*s/%s", (int)(slash - conf_file),
		    conf_file, value);
	if (n < 0 || (size_t)n >= outsz) {
		snprintf(why, whysz, "the path is too long");
		return EHX_ERR_CONFIG;
	}
	return 0;
}

int
ehx_conf_check_required(const char *path, const char *section,
    const void *cfg, const struct ehx_conf_required *req, size_t n, char *err,
    size_t errsz)
{
	for (size_t i = 0; i < n; i++)
		if (((const char *)cfg)[req[i].off] == '\0') {
			snprintf(err, errsz, "%s: [%s] %s is required", path,
			    section, req[i].name);
			return EHX_ERR_CONFIG;
		}
	return 0;
}

int
ehx_conf_log_level(const char *value, int *out, char *why, size_t whysz)
{
	int lvl;

	if ((lvl = ehx_log_parse_level(value)) < 0) {
		snprintf(why, whysz, "log_level must be error, warn, info or "
		    "debug");
		return EHX_ERR_CONFIG;
	}
	*out = lvl;
	return 0;
}
