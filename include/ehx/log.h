/*
 * log.h — levelled logging with file, function and line.
 *
 * The level is checked before anything is formatted. Untrusted bytes must go
 * through ehx_log_escape() first; child identifiers and secrets are never
 * logged (log pseudonyms and message ids instead).
 */
#ifndef EHX_LOG_H
#define EHX_LOG_H

#include <stddef.h>

enum ehx_log_level {
	EHX_LOG_ERROR = 0,
	EHX_LOG_WARN,
	EHX_LOG_INFO,
	EHX_LOG_DEBUG,
};

extern int ehx_log_level_current;

/* Name the program in each line ("ehx-broker"); keeps the pointer. */
void ehx_log_init(const char *progname, int level);

/* Parse "error|warn|info|debug"; returns the level or -1. */
int ehx_log_parse_level(const char *s);

void ehx_log_write(int level, const char *file, const char *func, int line,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/*
 * Copy up to len untrusted bytes into out (size outsz) as printable ASCII:
 * other bytes become \xHH, and the result is cut with "..." when it does not
 * fit. Returns out, always NUL-terminated (outsz must be at least 4).
 */
char *ehx_log_escape(char *out, size_t outsz, const void *in, size_t len);

#define ehx_log_(lvl, ...) do { \
	if ((lvl) <= ehx_log_level_current) \
		ehx_log_write((lvl), __FILE__, __func__, __LINE__, __VA_ARGS__); \
} while (0)
#define log_error(...) ehx_log_(EHX_LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  ehx_log_(EHX_LOG_WARN, __VA_ARGS__)
#define log_info(...)  ehx_log_(EHX_LOG_INFO, __VA_ARGS__)
#define log_debug(...) ehx_log_(EHX_LOG_DEBUG, __VA_ARGS__)

#endif
