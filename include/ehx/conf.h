/*
 * conf.h — INI files (broker and agent configuration, registry, users),
 * parsed by inih from a bounded, already-read buffer.
 */
#ifndef EHX_CONF_H
#define EHX_CONF_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Called for each "key = value" in section. Return 0 to go on, or an
 * EHX_ERR_* with a sentence in why to stop; the parser adds file and line.
 */
typedef int (*ehx_conf_fn)(void *user, const char *section, const char *key,
    const char *value, char *why, size_t whysz);

/*
 * Parse path (at most EHX_MAX_CONFIG_FILE bytes). Returns 0, or
 * EHX_ERR_CONFIG with "path:line: reason" in err.
 */
int ehx_conf_parse(const char *path, ehx_conf_fn fn, void *user, char *err,
    size_t errsz);

/* Copy value into out (outsz) or fail with a sentence; for handlers. */
int ehx_conf_string(const char *value, char *out, size_t outsz, char *why,
    size_t whysz);

/* Parse a decimal integer in [min, max]. */
int ehx_conf_int(const char *value, long long min, long long max,
    long long *out, char *why, size_t whysz);

/* Parse yes/no/true/false/on/off/1/0. */
int ehx_conf_bool(const char *value, bool *out, char *why, size_t whysz);

/*
 * Resolve a path named in a config file relative to that file's directory
 * (absolute paths are kept). Returns 0 or EHX_ERR_CONFIG if it is too long.
 */
int ehx_conf_path(const char *conf_file, const char *value, char *out,
    size_t outsz, char *why, size_t whysz);

/* A config key that must be given: its name and where its string field
 * lives in the config struct (empty means not given). */
struct ehx_conf_required {
	const char *name;
	size_t off;
};

/*
 * Check that each required string field of cfg is set. Returns 0, or
 * EHX_ERR_CONFIG with "path: [section] NAME is required" in err.
 */
int ehx_conf_check_required(const char *path, const char *section,
    const void *cfg, const struct ehx_conf_required *req, size_t n,
    char *err, size_t errsz);

/* Parse a log level (error, warn, info, debug) into *out. */
int ehx_conf_log_level(const char *value, int *out, char *why, size_t whysz);

#endif
