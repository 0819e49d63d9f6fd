/*
 * util.c — time, randomness, hex, constant-time compare, bounded and
 * permission-checked file reading, atomic writes and text checks.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "ehx/err.h"
#include "ehx/util.h"

int64_t
ehx_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
ehx_random(void *buf, size_t n)
{
	if (n > INT32_MAX || RAND_bytes(buf, (int)n) != 1)
		return EHX_ERR_CRYPTO;
	return 0;
}

int
ehx_message_id(unsigned char id[EHX_MSGID_LEN])
{
	uint64_t t = (uint64_t)ehx_now_ms();

	/* The time first, so that what is keyed by message id (the broker's
	 * replay index, the agent's) is written at its end, not all over. */
	for (int i = 0; i < 6; i++)
		id[i] = (unsigned char)(t >> (40 - 8 * i));
	return ehx_random(id + 6, EHX_MSGID_LEN - 6);
}

char *
ehx_hex(char *out, const void *in, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *p = in;

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
	return out;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
ehx_unhex(void *out, size_t outlen, const char *in)
{
	unsigned char *o = out;

	if (strlen(in) != 2 * outlen)
		return EHX_ERR_MALFORMED;
	for (size_t i = 0; i < outlen; i++) {
		int hi = hexval((unsigned char)in[2 * i]);
		int lo = hexval((unsigned char)in[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return EHX_ERR_MALFORMED;
		o[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

bool
ehx_ct_eq(const void *a, const void *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) == 0;
}

int
ehx_file_read(const char *path, bool secret, size_t max, unsigned char **out,
    size_t *outlen)
{
	unsigned char *buf = NULL;
	struct stat st;
	size_t len = 0;
	int fd = -1, r = EHX_ERR_SYSTEM, saved;

	*out = NULL;
	*outlen = 0;
	/* O_NONBLOCK: a FIFO put where a key belongs must not hang us. */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) < 0)
		goto out;
	if (fstat(fd, &st) != 0)
		goto out;
	if (!S_ISREG(st.st_mode)) {
		errno = EINVAL;
		goto out;
	}
	if (secret && (st.st_mode & 077) != 0) {
		r = EHX_ERR_KEY_PERMISSIONS;
		goto out;
	}
	if ((size_t)st.st_size > max) {
		r = EHX_ERR_TOO_LARGE;
		goto out;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		r = EHX_ERR_NOMEM;
		goto out;
	}
	while (len < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	buf = NULL;
	r = 0;
out:
	saved = errno;
	if (buf != NULL)
		ehx_free_secret(buf, (size_t)st.st_size);
	if (fd >= 0)
		close(fd);
	errno = saved;
	return r;
}

void
ehx_free_secret(void *p, size_t n)
{
	if (p == NULL)
		return;
	OPENSSL_cleanse(p, n + 1);
	free(p);
}

int
ehx_file_write_atomic(const char *path, const void *data, size_t len,
    unsigned mode)
{
	char tmp[4096];
	const unsigned char *p = data;
	size_t off = 0;
	int fd = -1, r = EHX_ERR_SYSTEM;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path,
	    (long)getpid()) >= sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return EHX_ERR_SYSTEM;
	}
	/* A new file of our own: never a leftover with another mode, never
	 * through a link someone placed there. */
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, (mode_t)mode)) < 0 && errno == EEXIST &&
	    unlink(tmp) == 0)
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_CLOEXEC, (mode_t)mode);
	if (fd < 0)
		return EHX_ERR_SYSTEM;
	while (off < len) {
		ssize_t n = write(fd, p + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto out;
		off += (size_t)n;
	}
	if (fsync(fd) != 0 || close(fd) != 0) {
		fd = -1;
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) != 0)
		goto out;
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	if (r != 0)
		unlink(tmp);
	return r;
}

bool
ehx_text_ok(const char *s, size_t min, size_t max)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = 0;

	if (s == NULL)
		return min == 0;
	while (p[n] != '\0') {
		unsigned char c = p[n];
		size_t k;
		uint32_t cp;

		if (n >= max)
			return false;
		if (c < 0x80) {
			if (c < 0x20 || c == 0x7f)
				return false;
			n++;
			continue;
		}
		if ((c & 0xe0) == 0xc0) {
			k = 1;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			k = 2;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			k = 3;
			cp = c & 0x07;
		} else
			return false;
		for (size_t i = 1; i <= k; i++) {
			if ((p[n + i] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[n + i] & 0x3f);
		}
		/* Overlong forms, surrogates, beyond Unicode, C1 controls. */
		if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) ||
		    (k == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp < 0xa0) ||
		    cp == 0x2028 || cp == 0x2029)
			return false;
		n += k + 1;
	}
	return n >= min && n <= max;
}

/*
 * The length in bytes of the one character at p if it is complete,
 * shortest-form UTF-8 that is safe to print, else 0. Refused: C0 and C1
 * control characters and DEL (they drive terminals: ESC, CSI as U+009B),
 * bytes that do not start a character, cut sequences, overlong forms,
 * surrogates, code points beyond U+10FFFF, and the bidirectional
 * embedding, override and isolate controls (U+202A..U+202E,
 * U+2066..U+2069), which would let text reorder the columns it is
 * printed beside.
 */
int
ehx_text_char_len(const unsigned char *p)
{
	unsigned cp;
	int len;

	if (p[0] < 0x80)
		return p[0] < 0x20 || p[0] == 0x7f ? 0 : 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2, cp = p[0] & 0x1fu;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3, cp = p[0] & 0x0fu;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4, cp = p[0] & 0x07u;
	else
		return 0;
	for (int i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;	/* also stops at the NUL */
		cp = cp << 6 | (p[i] & 0x3fu);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ||
	    (cp >= 0x80 && cp <= 0x9f) || (cp >= 0x202a && cp <= 0x202e) ||
	    (cp >= 0x2066 && cp <= 0x2069))
		return 0;
	return len;
}

bool
ehx_id_ok(const char *s)
{
	size_t n;

	if (s == NULL || s[0] == '\0')
		return false;
	for (n = 0; s[n] != '\0'; n++) {
		char c = s[n];

		if (n >= 32)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    (n > 0 && (c == '-' || c == '_'))))
			return false;
	}
	return true;
}

bool
ehx_ref_ok(const char *s)
{
	size_t n;

	if (s == NULL || s[0] == '\0')
		return false;
	for (n = 0; s[n] != '\0'; n++) {
		char c = s[n];

		if (n >= 64)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':' ||
		    c == '/' || c == '-'))
			return false;
	}
	return true;
}

char *
ehx_fmt_day(char *out, size_t outsz, int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (outsz == 0)
		return out;
	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(out, outsz, "%Y-%m-%d", &tm) == 0)
		out[0] = '\0';
	return out;
}

char *
ehx_fmt_time(char *out, size_t outsz, int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (ms <= 0 || gmtime_r(&t, &tm) == NULL)
		snprintf(out, outsz, "-");
	else
		strftime(out, outsz, "%Y-%m-%d %H:%M", &tm);
	return out;
}

char *
ehx_fmt_iso(char *out, size_t outsz, int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	char base[32];
	struct tm tm;

	if (ms < 0 || gmtime_r(&t, &tm) == NULL) {
		snprintf(out, outsz, "invalid");
		return out;
	}
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, outsz, "%s.%03dZ", base, (int)(ms % 1000));
	return out;
}

/* Does s match pat exactly, where 'd' stands for a digit? */
static bool
shape(const char *s, const char *pat)
{
	for (; *pat != '\0'; s++, pat++) {
		if (*pat == 'd' ? !(*s >= '0' && *s <= '9') : *s != *pat)
			return false;
	}
	return *s == '\0';
}

static int
num(const char *s, int n)
{
	int v = 0;

	while (n-- > 0)
		v = v * 10 + (*s++ - '0');
	return v;
}

int
ehx_parse_time(const char *s, int64_t now_ms, int64_t *out)
{
	struct tm tm;
	size_t len = strlen(s);
	long long n = 0;
	int y, mo, d, h = 0, mi = 0, sec = 0;
	time_t t;

	*out = 0;
	if (s[0] == '+' || s[0] == '-') {
		char unit = len >= 3 ? s[len - 1] : 0;

		if (len < 3 || len > 6 || (unit != 'd' && unit != 'h'))
			return EHX_ERR_INVALID_FIELD;
		for (size_t i = 1; i < len - 1; i++) {
			if (s[i] < '0' || s[i] > '9')
				return EHX_ERR_INVALID_FIELD;
			n = n * 10 + (s[i] - '0');
		}
		if (n > 3660)
			return EHX_ERR_INVALID_FIELD;
		n *= unit == 'd' ? 86400000LL : 3600000LL;
		*out = s[0] == '+' ? now_ms + n : now_ms - n;
		return 0;
	}
	if (!shape(s, "dddd-dd-dd") && !shape(s, "dddd-dd-ddTdd:ddZ") &&
	    !shape(s, "dddd-dd-ddTdd:dd:ddZ"))
		return EHX_ERR_INVALID_FIELD;
	y = num(s, 4);
	mo = num(s + 5, 2);
	d = num(s + 8, 2);
	if (len > 10) {
		h = num(s + 11, 2);
		mi = num(s + 14, 2);
		if (len == 20)
			sec = num(s + 17, 2);
	}
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 ||
	    mi > 59 || sec > 59)
		return EHX_ERR_INVALID_FIELD;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	if ((t = timegm(&tm)) == (time_t)-1)
		return EHX_ERR_INVALID_FIELD;
	/* timegm normalises 31 February; refuse what it had to move. */
	if (tm.tm_mday != d || tm.tm_mon != mo - 1)
		return EHX_ERR_INVALID_FIELD;
	*out = (int64_t)t * 1000;
	return 0;
}

int
ehx_drop_root(const char *user, bool check, char *err, size_t errsz)
{
	const struct passwd *pw;

	if (geteuid() != 0 && getuid() != 0)
		return 0;
	if (user == NULL || user[0] == '\0') {
		snprintf(err, errsz, "running as root: name the user to run "
		    "as (user = NAME in the config, e.g. user = ehx); the "
		    "daemon reads its keys as root, then drops to it");
		return EHX_ERR_CONFIG;
	}
	errno = 0;
	if ((pw = getpwnam(user)) == NULL) {
		snprintf(err, errsz, "user = %s: no such user%s%s", user,
		    errno != 0 ? ": " : "", errno != 0 ? strerror(errno) : "");
		return EHX_ERR_CONFIG;
	}
	if (pw->pw_uid == 0) {
		snprintf(err, errsz, "user = %s is root: name an unprivileged "
		    "user", user);
		return EHX_ERR_CONFIG;
	}
	if (check)
		return 0;
	if (initgroups(pw->pw_name, pw->pw_gid) != 0 ||
	    setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) {
		snprintf(err, errsz, "cannot drop to user %s: %s", user,
		    strerror(errno));
		return EHX_ERR_CONFIG;
	}
	/* For good: root must not come back. */
	if (setuid(0) == 0 || geteuid() == 0 || getegid() == 0) {
		snprintf(err, errsz, "dropping to user %s did not hold", user);
		return EHX_ERR_CONFIG;
	}
	return 0;
}
