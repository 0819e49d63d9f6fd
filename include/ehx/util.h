/*
 * util.h — small helpers every EHX program needs: time, randomness, hex,
 * constant-time comparison, bounded file reading with key-permission checks,
 * and string checks for untrusted text.
 */
#ifndef EHX_UTIL_H
#define EHX_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "ehx/limits.h"

/* Milliseconds since the epoch, UTC. */
int64_t ehx_now_ms(void);

/* Fill buf with n bytes from the CSPRNG. Returns 0 or EHX_ERR_CRYPTO. */
int ehx_random(void *buf, size_t n);
/* A new message id: the time in ms (48 bits, big-endian), then 80 bits from
 * the CSPRNG. Unique is all that is asked of it (PROTOCOL.md §5); the time
 * first keeps writes keyed by it local. */
int ehx_message_id(unsigned char id[EHX_MSGID_LEN]);

/* Lower-case hex of n bytes into out, which holds 2n+1 bytes. Returns out. */
char *ehx_hex(char *out, const void *in, size_t n);

/* Exactly 2*outlen hex digits into outlen bytes. 0 or EHX_ERR_MALFORMED. */
int ehx_unhex(void *out, size_t outlen, const char *in);

/* 1 when the n bytes at a and b are equal, in time independent of content. */
bool ehx_ct_eq(const void *a, const void *b, size_t n);

/*
 * Read a whole file of at most max bytes into a new NUL-terminated buffer
 * (*out, length *outlen without the NUL). With secret set, refuse a file
 * that group or others may read (EHX_ERR_KEY_PERMISSIONS). The caller frees
 * *out with ehx_free_secret(*out, *outlen) for secrets, free() otherwise.
 * Returns 0, EHX_ERR_SYSTEM (errno set), EHX_ERR_TOO_LARGE or the above.
 */
int ehx_file_read(const char *path, bool secret, size_t max,
    unsigned char **out, size_t *outlen);

/*
 * A daemon started as root: drop to user (its uid, its gid and its groups)
 * for good, or refuse when no user is named (or the user is root). Not
 * root: nothing to do. With check, only say whether it would work. 0, or
 * EHX_ERR_CONFIG with a sentence in err.
 */
int ehx_drop_root(const char *user, bool check, char *err, size_t errsz);

/* Wipe then free a secret buffer of n bytes (plus its NUL). NULL is fine. */
void ehx_free_secret(void *p, size_t n);

/* Write data to path atomically (temp file, fsync, rename), mode given. */
int ehx_file_write_atomic(const char *path, const void *data, size_t len,
    unsigned mode);

/*
 * True when s is valid UTF-8 of min..max bytes with no control characters
 * (newline and tab included): safe to store, print and log.
 */
bool ehx_text_ok(const char *s, size_t min, size_t max);

/*
 * The length in bytes of the one character at p if it is complete,
 * shortest-form UTF-8 that is safe to print (no C0 or C1 control, no DEL,
 * no bidirectional override), else 0: the one rule for text from outside
 * that the agent's notification document, the ehx command's output and
 * the web console's form fields share. Stops at a NUL.
 */
int ehx_text_char_len(const unsigned char *p);

/* True for an agency id: 1..EHX_MAX_ID of [a-z0-9_-], starting [a-z0-9]. */
bool ehx_id_ok(const char *s);

/* True for an agency's flag reference: 1..EHX_MAX_REF of [A-Za-z0-9._:/-]. */
bool ehx_ref_ok(const char *s);

/* "2026-11-22 07:21" (UTC) or "-" for 0, into out of outsz bytes. */
char *ehx_fmt_time(char *out, size_t outsz, int64_t ms);
/* "2026-11-22", the UTC day of ms, into out of outsz bytes. */
char *ehx_fmt_day(char *out, size_t outsz, int64_t ms);

/* ISO 8601 "2026-11-22T07:21:29.123Z" (UTC), for JSON. */
char *ehx_fmt_iso(char *out, size_t outsz, int64_t ms);

/*
 * Parse "YYYY-MM-DD", "YYYY-MM-DDTHH:MM[:SS]Z" (UTC), or a relative "+Nd"
 * / "+Nh" from now (or "-Nd" / "-Nh" before now), into ms since the
 * epoch. 0 or EHX_ERR_INVALID_FIELD.
 */
int ehx_parse_time(const char *s, int64_t now_ms, int64_t *out);

#endif
