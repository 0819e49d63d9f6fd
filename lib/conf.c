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

struct parse {
	ehx_conf_fn fn;
	void *user;
	int code;
	char why[256];
};

static int
handler(void *user, const char *section, const char *key, const char *value)
{
	struct parse *p = user;
	int r;

	if ((r = p->fn(p->user, section, key, value, p->why,
	    sizeof(p->why))) != 0) {
		p->code = r;
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
	line = ini_parse_string((const char *)buf, handler, &p);
	free(buf);
	if (line == 0)
		return 0;
	if (p.code != 0)
		snprintf(err, errsz, "%s:%d: %s", path, line, p.why);
	else
		snprintf(err, errsz, "%s:%d: not a \"key = value\" or "
		    "\"[section]\" line (or a line too long)", path, line);
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
