/*
 * testutil.h — what the unit tests share: temporary directories under
 * $EHX_TEST_TMP (or /tmp), removed again afterwards; files written with a
 * given mode; shell commands (certs/ehx-pki, openssl).
 *
 * Header-only, with static functions, because the Makefile links each
 * tests/unit/test_*.c on its own. Tests run from the repository root (make
 * does that); EHX_PKI may name the ehx-pki script elsewhere.
 */
#ifndef EHX_TESTUTIL_H
#define EHX_TESTUTIL_H

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#define TU_PKI_DEFAULT "certs/ehx-pki"

static inline const char *
tu_tmp_parent(void)
{
	const char *p = getenv("EHX_TEST_TMP");

	return p != NULL && p[0] != '\0' ? p : "/tmp";
}

/* A new private directory under the temp parent, into out (PATH_MAX). */
static inline int
tu_mkdtemp(char *out, size_t outsz, const char *tag)
{
	if ((size_t)snprintf(out, outsz, "%s/ehx-%s-XXXXXX", tu_tmp_parent(),
	    tag) >= outsz)
		return -1;
	if (mkdtemp(out) == NULL) {
		fprintf(stderr, "mkdtemp %s: %s\n", out, strerror(errno));
		return -1;
	}
	return 0;
}

static inline int
tu_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path) != 0 && errno != ENOENT ? -1 : 0;
}

/* Remove a directory tree (no-op for an empty or NULL path). */
static inline void
tu_rmtree(const char *path)
{
	if (path == NULL || path[0] == '\0')
		return;
	if (nftw(path, tu_rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0 &&
	    errno != ENOENT)
		fprintf(stderr, "could not remove %s: %s\n", path,
		    strerror(errno));
}

/* The ehx-pki script, or NULL with the reason printed. */
static inline const char *
tu_pki(void)
{
	const char *p = getenv("EHX_PKI");

	if (p == NULL || p[0] == '\0')
		p = TU_PKI_DEFAULT;
	if (access(p, X_OK) != 0) {
		fprintf(stderr, "cannot run %s (%s): run the unit tests from "
		    "the repository root (make test-unit), or set EHX_PKI\n",
		    p, strerror(errno));
		return NULL;
	}
	return p;
}

/* Run a shell command; returns its exit status (or -1). */
static inline int tu_sh(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static inline int
tu_sh(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	int n, st;

	va_start(ap, fmt);
	n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(cmd))
		return -1;
	if ((st = system(cmd)) == -1 || !WIFEXITED(st)) {
		fprintf(stderr, "command failed to run: %s\n", cmd);
		return -1;
	}
	if (WEXITSTATUS(st) != 0)
		fprintf(stderr, "command exited %d: %s\n", WEXITSTATUS(st), cmd);
	return WEXITSTATUS(st);
}

/* Run a command and read the first line of its output into out. */
static inline int tu_sh_line(char *out, size_t outsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline int
tu_sh_line(char *out, size_t outsz, const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	FILE *f;
	int n, st;

	out[0] = '\0';
	va_start(ap, fmt);
	n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(cmd) || (f = popen(cmd, "r")) == NULL)
		return -1;
	if (fgets(out, (int)outsz, f) == NULL)
		out[0] = '\0';
	out[strcspn(out, "\r\n")] = '\0';
	while (fgetc(f) != EOF)
		;
	st = pclose(f);
	return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Write len bytes to path, then chmod it to mode. 0 or -1. */
static inline int
tu_write(const char *path, const void *data, size_t len, mode_t mode)
{
	const unsigned char *p = data;
	size_t off = 0;
	int fd;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0)
		return -1;
	while (off < len) {
		ssize_t n = write(fd, p + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			close(fd);
			return -1;
		}
		off += (size_t)n;
	}
	if (close(fd) != 0 || chmod(path, mode) != 0)
		return -1;
	return 0;
}

static inline int tu_writef(const char *path, mode_t mode, const char *fmt,
    ...) __attribute__((format(printf, 3, 4)));
static inline int
tu_writef(const char *path, mode_t mode, const char *fmt, ...)
{
	char buf[16384];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return -1;
	return tu_write(path, buf, (size_t)n, mode);
}

/* dir "/" rel into a static-size buffer the caller gives. */
static inline char *
tu_join(char *out, size_t outsz, const char *dir, const char *rel)
{
	snprintf(out, outsz, "%s/%s", dir, rel);
	return out;
}

#endif
