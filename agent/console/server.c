/*
 * server.c — the agent's web console: an HTTP (or HTTPS) server on
 * libmicrohttpd's threads, for Information Officers and IG officers in a
 * browser on the agency's network. See console.h and docs/OPERATIONS.md.
 * This file is the plumbing (connections, headers, cookies, sessions,
 * sign-in, the static files); the pages (pages.c) see only request.h.
 *
 * People sign in against the agent's users file (Argon2id hashes). A
 * session is 32 random bytes in an HttpOnly, SameSite=Strict cookie; the
 * console keeps only a hash of it, with the account, a form token and
 * the times that end it (idle, and at most session_hours after sign-in).
 * Every POST carries the session's form token (the sign-in form a token
 * of its own, double-submitted in a cookie), and a request whose Origin
 * is another site's is refused. Failed sign-ins are counted per account
 * and per address; past login_failures within lockout_minutes, sign-in is
 * refused without checking the password until the window passes. Every
 * sign-in, failure, lock-out and sign-out is kept in the agent's store
 * and logged.
 *
 * The console holds no keys and asks the broker nothing itself: each
 * question goes to the agent's main loop over a socket pair, as a
 * LocalRequest on behalf of the signed-in account (bridge.c), and the
 * loop answers it exactly as it answers the ehx command line.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>
#include <openssl/crypto.h>
#include <sodium.h>

#include "../queue.h"
#include "assets.h"
#include "bridge.h"
#include "console.h"
#include "ehx/err.h"
#include "ehx/log.h"
#include "ehx/names.h"
#include "ehx/util.h"
#include "pages.h"
#include "request.h"

#define SESSIONS 512
#define FAILURES 4096
#define HASHING_MAX 2                /* Argon2 checks at once (64 MiB each) */
#define ADDRESS_FACTOR 4             /* an address may fail 4x an account's */
#define TOKEN_LEN 32                 /* random bytes in a session cookie */
#define URL_MAX 256
#define COOKIE "ehx_session"
#define LOGIN_COOKIE "ehx_signin"

struct session {
	bool used;
	unsigned char key[crypto_generichash_BYTES];  /* hash of the token */
	char account[EHX_MAX_ACCOUNT + 1];
	unsigned char pwtag[16];         /* of the users file's password line */
	bool by_proxy;                   /* opened by the trusted proxy */
	char csrf[65];
	int64_t created, last;
};

/* Failed sign-ins of one account ("a:") or one address ("i:"). */
struct failure {
	char who[EHX_MAX_ACCOUNT + 80];
	int64_t first;
	unsigned count;
	bool told;                       /* its lock-out is on record */
};

struct console {
	struct console_config cfg;
	char agency[EHX_MAX_ID + 1];
	int listen_fd;
	int listen_keep;                 /* a copy, for a daemon started anew */
	struct bridge bridge;            /* console threads -> main loop */
	unsigned char *tls_cert, *tls_key;
	size_t tls_certlen, tls_keylen;
	struct MHD_Daemon *d;
	struct users *users;
	pthread_rwlock_t *users_lock;
	struct queue *queue;
	char url[128];
	char dummy_hash[EHX_PWHASH_MAX + 1];  /* for unknown accounts */
	pthread_mutex_t lock;            /* sessions, failures, hashing */
	unsigned hashing;                /* Argon2 checks running now */
	struct session sessions[SESSIONS];
	struct failure failures[FAILURES];
};

static enum MHD_Result
on_get_arg(void *cls, enum MHD_ValueKind kind, const char *key,
    size_t key_size, const char *value, size_t value_size)
{
	struct creq *r = cls;

	(void)kind;
	if (strlen(key) != key_size) {
		r->bad_field = true;
		return MHD_YES;
	}
	creq_add_field(r, key, value != NULL ? value : "", value != NULL ?
	    value_size : 0);
	return MHD_YES;
}

/* The form's fields come in pieces (off): pieces join the last field. */
static enum MHD_Result
on_post_arg(void *cls, enum MHD_ValueKind kind, const char *key,
    const char *filename, const char *content_type,
    const char *transfer_encoding, const char *data, uint64_t off,
    size_t size)
{
	struct creq *r = cls;

	(void)kind; (void)content_type; (void)transfer_encoding;
	if (filename != NULL) {
		r->bad_field = true;
		return MHD_NO;
	}
	if (off == 0) {
		creq_add_field(r, key, data != NULL ? data : "", size);
		return MHD_YES;
	}
	/* A continuation: join it, and check the whole value again. */
	if (r->nf == 0 || strcmp(r->f[r->nf - 1].name, key) != 0) {
		r->bad_field = true;
		return MHD_NO;
	}
	{
		struct console_field *f = &r->f[r->nf - 1];
		char *whole;
		size_t len = f->len + size;

		if (len > CONSOLE_FIELD_MAX || (whole = malloc(len + 1)) ==
		    NULL) {
			r->bad_field = true;
			return MHD_NO;
		}
		memcpy(whole, f->value, f->len);
		memcpy(whole + f->len, data, size);
		free(f->value);
		r->nf--;
		creq_add_field(r, key, whole, len);
		free(whole);
	}
	return MHD_YES;
}

/* ---- sessions ------------------------------------------------------------ */

static void
token_key(unsigned char key[crypto_generichash_BYTES], const char *hex)
{
	crypto_generichash(key, crypto_generichash_BYTES,
	    (const unsigned char *)hex, strlen(hex), NULL, 0);
}

static bool
hex_token(const char *s)
{
	return s != NULL && strlen(s) == 2 * TOKEN_LEN &&
	    strspn(s, "0123456789abcdef") == 2 * TOKEN_LEN;
}

/* The session a cookie names, still alive: its index, or -1. Call with
 * the lock held. */
static int
session_find(struct console *c, const char *cookie, int64_t now)
{
	unsigned char key[crypto_generichash_BYTES];
	int found = -1;

	if (!hex_token(cookie))
		return -1;
	token_key(key, cookie);
	for (int i = 0; i < SESSIONS; i++) {
		struct session *s = &c->sessions[i];

		if (!s->used)
			continue;
		if (now - s->last >= c->cfg.idle_ms ||
		    now - s->created >= c->cfg.session_max_ms) {
			memset(s, 0, sizeof(*s));
			continue;
		}
		if (sodium_memcmp(s->key, key, sizeof(key)) == 0)
			found = i;
	}
	return found;
}

/* A short hash of a users-file password line: a session ends when the
 * line changes or goes. */
static void
password_tag(unsigned char tag[16], const char *password)
{
	crypto_generichash(tag, 16, (const unsigned char *)password,
	    strlen(password), NULL, 0);
}

/* A new session for account, opened by its password or (by_proxy) by the
 * trusted proxy: its token (hex) in token. 0 or -1. */
static int
session_new(struct console *c, const char *account, const char *password,
    bool by_proxy, int64_t now, char token[2 * TOKEN_LEN + 1])
{
	unsigned char raw[TOKEN_LEN], csrf[TOKEN_LEN];
	struct session *s = NULL;

	if (ehx_random(raw, sizeof(raw)) != 0 ||
	    ehx_random(csrf, sizeof(csrf)) != 0)
		return -1;
	ehx_hex(token, raw, sizeof(raw));
	OPENSSL_cleanse(raw, sizeof(raw));
	pthread_mutex_lock(&c->lock);
	for (int i = 0; i < SESSIONS && s == NULL; i++)
		if (!c->sessions[i].used)
			s = &c->sessions[i];
	if (s == NULL) {                /* full: the longest idle goes */
		s = &c->sessions[0];
		for (int i = 1; i < SESSIONS; i++)
			if (c->sessions[i].last < s->last)
				s = &c->sessions[i];
		log_warn("console: %d sessions open; the longest idle "
		    "(%s) ended", SESSIONS, s->account);
	}
	memset(s, 0, sizeof(*s));
	s->used = true;
	token_key(s->key, token);
	snprintf(s->account, sizeof(s->account), "%s", account);
	password_tag(s->pwtag, password);
	s->by_proxy = by_proxy;
	ehx_hex(s->csrf, csrf, sizeof(csrf));
	s->created = s->last = now;
	pthread_mutex_unlock(&c->lock);
	return 0;
}

/* ---- sign-in ------------------------------------------------------------- */

/*
 * Record a sign-in event: logged, and kept in the agent's store (the
 * sign-in log, bounded). account is a users-file account or NULL: what
 * someone typed that is no account (it may be a password) is never kept.
 */
static void
signin_event(struct console *c, const char *event, const char *account,
    const char *addr)
{
	if (account == NULL)
		account = "(not an account)";
	if (strcmp(event, "signed-in") == 0 || strcmp(event, "signed-out") == 0)
		log_info("console: %s %s from %s", account, event, addr);
	else
		log_warn("console: %s: %s from %s", event, account, addr);
	if (c->queue != NULL)
		queue_signin_put(c->queue, ehx_now_ms(), event, account, addr);
}

/* The failure entry of who, or a slot for it (the oldest goes when the
 * table is full). Call with the lock held. */
static struct failure *
failure_of(struct console *c, const char *who, int64_t now, bool make)
{
	struct failure *old = NULL;

	for (int i = 0; i < FAILURES; i++) {
		struct failure *f = &c->failures[i];

		if (f->count > 0 && now - f->first >= c->cfg.lockout_ms)
			memset(f, 0, sizeof(*f));
		if (f->count > 0 && strcmp(f->who, who) == 0)
			return f;
		if (old == NULL || f->count == 0 || (old->count > 0 &&
		    f->first < old->first))
			old = f;
	}
	if (!make)
		return NULL;
	memset(old, 0, sizeof(*old));
	snprintf(old->who, sizeof(old->who), "%s", who);
	old->first = now;
	return old;
}

/*
 * The address as counted for lock-outs: an IPv6 address by its /64 (one
 * host's many addresses are one), an IPv4 address as it is.
 */
static void
address_group(const char *addr, char *out, size_t outsz)
{
	struct in6_addr a6;

	if (strchr(addr, ':') != NULL && inet_pton(AF_INET6, addr, &a6) == 1) {
		memset(a6.s6_addr + 8, 0, 8);
		inet_ntop(AF_INET6, &a6, out, (socklen_t)outsz);
		snprintf(out + strlen(out), outsz - strlen(out), "/64");
	} else
		snprintf(out, outsz, "%s", addr);
}

/*
 * The counts a sign-in attempt falls under: this account at this address,
 * this address for any accounts (ADDRESS_FACTOR times as many), and this
 * account from any address (account_failures), so that guessing spread
 * over many addresses is stopped too.
 */
#define COUNTS 3

struct attempt {
	char who[COUNTS][EHX_MAX_ACCOUNT + 80];
	unsigned limit[COUNTS];
	bool clear_on_success[COUNTS];  /* else one less */
};

static void
attempt_of(const struct console *c, const char *account, const char *grp,
    struct attempt *at)
{
	snprintf(at->who[0], sizeof(at->who[0]), "p:%s %s", account, grp);
	snprintf(at->who[1], sizeof(at->who[1]), "i:%s", grp);
	snprintf(at->who[2], sizeof(at->who[2]), "a:%s", account);
	at->limit[0] = (unsigned)c->cfg.login_failures;
	at->limit[1] = (unsigned)c->cfg.login_failures * ADDRESS_FACTOR;
	at->limit[2] = (unsigned)c->cfg.account_failures;
	at->clear_on_success[0] = at->clear_on_success[2] = true;
	at->clear_on_success[1] = false;
}

/*
 * Before a password is checked: refuse when any of at's counts has
 * reached its limit within the window, or when HASHING_MAX checks are
 * running already. Otherwise count the attempt as a failure now (so that
 * checks running at once cannot pass a limit together) and take a
 * hashing slot; sign_in_done gives both back. Returns 0, or the minutes
 * to wait (> 0), or -1 when busy.
 */
static long
sign_in_begin(struct console *c, const struct attempt *at, int64_t now)
{
	struct failure *f;
	long mins = 0;

	pthread_mutex_lock(&c->lock);
	for (int k = 0; k < COUNTS && mins == 0; k++)
		if ((f = failure_of(c, at->who[k], now, false)) != NULL &&
		    f->count >= at->limit[k])
			mins = (long)((f->first + c->cfg.lockout_ms - now +
			    59999) / 60000);
	if (mins == 0 && c->hashing >= HASHING_MAX)
		mins = -1;
	if (mins == 0) {
		for (int k = 0; k < COUNTS; k++)
			if ((f = failure_of(c, at->who[k], now, true)) != NULL)
				f->count++;
		c->hashing++;
	}
	pthread_mutex_unlock(&c->lock);
	return mins == 0 ? 0 : mins < 0 ? -1 : (mins > 0 ? mins : 1);
}

/* After the check: on success the attempt was no failure after all.
 * Returns true when a failure just reached a limit (to record once). */
static bool
sign_in_done(struct console *c, const struct attempt *at, bool ok,
    int64_t now)
{
	struct failure *f;
	bool lock = false;

	pthread_mutex_lock(&c->lock);
	c->hashing--;
	for (int k = 0; k < COUNTS; k++) {
		if ((f = failure_of(c, at->who[k], now, false)) == NULL)
			continue;
		if (ok && at->clear_on_success[k])
			memset(f, 0, sizeof(*f));
		else if (ok && f->count > 0)
			f->count--;
		else if (!ok && f->count >= at->limit[k] && !f->told)
			lock = f->told = true;
	}
	pthread_mutex_unlock(&c->lock);
	return lock;
}

static void
set_cookie(struct MHD_Response *resp, const struct console *c,
    const char *name, const char *value, const char *path, long max_age)
{
	char buf[256];

	snprintf(buf, sizeof(buf), "%s=%s; Path=%s; HttpOnly; "
	    "SameSite=Strict%s%s", name, value, path,
	    c->tls_cert != NULL ? "; Secure" : "",
	    max_age == 0 ? "; Max-Age=0" : "");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE, buf);
}

/*
 * POST /login, its form token already checked: the account at this
 * address and the address itself must not be locked out; then the
 * password is checked (against a dummy hash when the account is unknown
 * or has no password, to take the same time). On success a new session;
 * the cookie is set by the caller.
 */
static bool
sign_in(struct creq *r, char token[2 * TOKEN_LEN + 1], const char **why,
    char *msg, size_t msgsz, unsigned *status)
{
	struct console *c = r->c;
	const char *account = creq_arg(r, "account");
	const char *pw = creq_arg(r, "password");
	struct attempt at;
	char grp[INET6_ADDRSTRLEN + 8];
	struct user u;
	bool known = false, ok;
	int64_t now = ehx_now_ms();
	long mins;

	*status = 401;
	if (account == NULL || pw == NULL || account[0] == '\0' ||
	    strlen(account) > EHX_MAX_ACCOUNT) {
		*why = "Enter your account name and your password.";
		*status = 400;
		return false;
	}
	memset(&u, 0, sizeof(u));
	pthread_rwlock_rdlock(c->users_lock);
	{
		const struct user *f = users_find(c->users, account);

		if (f != NULL) {
			u = *f;
			known = true;
		}
	}
	pthread_rwlock_unlock(c->users_lock);
	address_group(r->addr, grp, sizeof(grp));
	attempt_of(c, account, grp, &at);
	if ((mins = sign_in_begin(c, &at, now)) != 0) {
		if (mins < 0) {
			*why = "The console is busy checking other sign-ins. "
			    "Try again in a moment.";
			*status = 503;
			return false;
		}
		snprintf(msg, msgsz, "Too many failed sign-ins. Try "
		    "again in %ld minute%s, or ask your administrator.", mins,
		    mins == 1 ? "" : "s");
		*why = msg;
		*status = 429;
		return false;
	}
	/* Only an account whose entry lets it sign in with its password
	 * (console = password, the default); any other takes the same time
	 * and gets the same answer. */
	if (!known || u.password[0] == '\0' ||
	    u.console != USER_CONSOLE_PASSWORD) {
		snprintf(u.password, sizeof(u.password), "%s", c->dummy_hash);
		users_check_password(&u, pw, strlen(pw));
		ok = false;
	} else
		ok = users_check_password(&u, pw, strlen(pw));
	if (sign_in_done(c, &at, ok, now))
		signin_event(c, "locked-out", known ? u.account : NULL,
		    r->addr);
	if (!ok) {
		signin_event(c, known && u.password[0] != '\0' &&
		    u.console == USER_CONSOLE_PASSWORD ?
		    "failed-password" : "failed-account", known ? u.account :
		    NULL, r->addr);
		*why = "The account name or the password is wrong.";
		return false;
	}
	if (session_new(c, u.account, u.password, false, now, token) != 0) {
		*why = "The console could not start a session.";
		*status = 500;
		return false;
	}
	signin_event(c, "signed-in", u.account, r->addr);
	return true;
}

/* Fill r->who from a live session (and the users file). */
static bool
who_from_session(struct creq *r, const char *cookie, bool touch)
{
	struct console *c = r->c;
	const struct user *u;
	unsigned char tag[16], now_tag[16];
	int64_t now = ehx_now_ms();
	bool ok = false, by_proxy = false;
	int i;

	pthread_mutex_lock(&c->lock);
	if ((i = session_find(c, cookie, now)) >= 0) {
		if (touch)
			c->sessions[i].last = now;
		snprintf(r->who.account, sizeof(r->who.account), "%s",
		    c->sessions[i].account);
		memcpy(r->who.csrf, c->sessions[i].csrf, sizeof(r->who.csrf));
		memcpy(tag, c->sessions[i].pwtag, sizeof(tag));
		by_proxy = c->sessions[i].by_proxy;
	}
	pthread_mutex_unlock(&c->lock);
	if (i < 0)
		return false;
	pthread_rwlock_rdlock(c->users_lock);
	if ((u = users_find(c->users, r->who.account)) != NULL) {
		snprintf(r->who.name, sizeof(r->who.name), "%s", u->name);
		snprintf(r->who.locality, sizeof(r->who.locality), "%s",
		    u->locality);
		r->who.roles = u->roles;
		password_tag(now_tag, u->password);
		ok = sodium_memcmp(tag, now_tag, sizeof(tag)) == 0 &&
		    u->console == (by_proxy ? USER_CONSOLE_PROXY :
		    USER_CONSOLE_PASSWORD);
	}
	pthread_rwlock_unlock(c->users_lock);
	if (!ok) {
		/* Gone from the users file, its password changed, or no
		 * longer allowed the console this way: the session ends
		 * here. */
		pthread_mutex_lock(&c->lock);
		if ((i = session_find(c, cookie, now)) >= 0)
			memset(&c->sessions[i], 0, sizeof(c->sessions[i]));
		pthread_mutex_unlock(&c->lock);
		signin_event(c, "session-ended", r->who.account, r->addr);
		memset(&r->who, 0, sizeof(r->who));
	}
	return ok;
}

static void
session_end(struct console *c, const char *cookie)
{
	int i;

	pthread_mutex_lock(&c->lock);
	if ((i = session_find(c, cookie, ehx_now_ms())) >= 0)
		memset(&c->sessions[i], 0, sizeof(c->sessions[i]));
	pthread_mutex_unlock(&c->lock);
}

/* ---- the agent's side ---------------------------------------------------- */

int
console_bridge_fd(const struct console *c)
{
	return bridge_fd(&c->bridge);
}

int
console_bridge_take(struct console *c, int *fd,
    char account[EHX_MAX_ACCOUNT + 1])
{
	return bridge_take(&c->bridge, fd, account);
}

void
console_drain(struct console *c)
{
	if (c != NULL)
		bridge_drain(&c->bridge);
}

const char *
console_url(const struct console *c)
{
	return c->url;
}

/* ---- requests ------------------------------------------------------------ */

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	(void)cls; (void)conn; (void)toe;
	creq_free(*con_cls);
	*con_cls = NULL;
}

static enum MHD_Result
send_answer(struct creq *r, const char *set_session, bool clear_session,
    const char *signin_token)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	unsigned status = r->status ? r->status : 200;

	if (r->oom) {
		free(r->out);
		r->out = NULL;
		r->outlen = r->outcap = 0;
		r->oom = false;
		r->location[0] = '\0';
		r->type = NULL;
		pages_error(r, 500, "Out of memory", "The console ran out of "
		    "memory answering this request.");
		status = 500;
	}
	if (r->location[0] != '\0')
		status = 303;
	resp = MHD_create_response_from_buffer(r->outlen,
	    r->out != NULL ? r->out : (void *)"", r->out != NULL ?
	    MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	if (resp == NULL)
		return MHD_NO;
	r->out = NULL;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
	    r->type != NULL ? r->type : "text/html; charset=utf-8");
	MHD_add_response_header(resp, "Content-Security-Policy",
	    "default-src 'none'; style-src 'self'; script-src 'self'; "
	    "img-src 'self'; form-action 'self'; frame-ancestors 'none'; "
	    "base-uri 'none'");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "X-Frame-Options", "DENY");
	/* same-origin, not no-referrer: with no-referrer a browser sends
	 * its own forms with Origin: null. No page links elsewhere. */
	MHD_add_response_header(resp, "Referrer-Policy", "same-origin");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
	    strncmp(r->path, "/static/", 8) == 0 ? "private, max-age=3600" :
	    "no-store");
	if (r->c->tls_cert != NULL)
		MHD_add_response_header(resp, "Strict-Transport-Security",
		    "max-age=31536000");
	if (r->location[0] != '\0')
		MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION,
		    r->location);
	if (r->disposition[0] != '\0')
		MHD_add_response_header(resp, "Content-Disposition",
		    r->disposition);
	if (set_session != NULL)
		set_cookie(resp, r->c, COOKIE, set_session, "/", -1);
	else if (clear_session)
		set_cookie(resp, r->c, COOKIE, "", "/", 0);
	if (signin_token != NULL)
		set_cookie(resp, r->c, LOGIN_COOKIE, signin_token, "/login",
		    signin_token[0] == '\0' ? 0 : -1);
	ret = MHD_queue_response(r->conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void
client_address(struct MHD_Connection *conn, char *out, size_t outsz)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn,
	    MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci != NULL ? ci->client_addr : NULL;

	snprintf(out, outsz, "?");
	if (sa == NULL)
		return;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)
		    sa)->sin_addr, out, (socklen_t)outsz);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)
		    (const void *)sa)->sin6_addr, out, (socklen_t)outsz);
}

/*
 * A request from another site: the browser's Sec-Fetch-Site says
 * cross-site, or an Origin header names a host that is not this
 * request's Host. Browsers send Origin with every POST; "null" (a
 * privacy-sensitive context) is taken only with Sec-Fetch-Site:
 * same-origin, a header no page can set. The form token is checked as
 * well, whatever this says.
 */
static bool
foreign_origin(struct MHD_Connection *conn)
{
	const char *o = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    "Origin");
	const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_HOST);
	const char *sfs = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    "Sec-Fetch-Site");
	const char *p;

	if (sfs != NULL && strcmp(sfs, "same-origin") != 0 &&
	    strcmp(sfs, "none") != 0)
		return true;
	if (o == NULL)
		return false;
	if (strcmp(o, "null") == 0)
		return sfs == NULL || strcmp(sfs, "same-origin") != 0;
	if (h == NULL || (p = strstr(o, "://")) == NULL)
		return true;
	return strcmp(p + 3, h) != 0;
}

/* An address as IPv6 (an IPv4 one mapped), for comparing: false if it is
 * neither. */
static bool
as_ipv6(const char *s, struct in6_addr *a)
{
	struct in_addr a4;

	if (inet_pton(AF_INET6, s, a) == 1)
		return true;
	if (inet_pton(AF_INET, s, &a4) != 1)
		return false;
	memset(a, 0, sizeof(*a));
	a->s6_addr[10] = a->s6_addr[11] = 0xff;
	memcpy(a->s6_addr + 12, &a4, 4);
	return true;
}

/* The same address however written (::ffff:127.0.0.1 is 127.0.0.1). */
static bool
same_address(const char *x, const char *y)
{
	struct in6_addr a, b;

	return as_ipv6(x, &a) && as_ipv6(y, &b) &&
	    memcmp(&a, &b, sizeof(a)) == 0;
}

struct header_count {
	const char *name;
	unsigned n;
};

static enum MHD_Result
count_header(void *cls, enum MHD_ValueKind kind, const char *key,
    const char *value)
{
	struct header_count *hc = cls;

	(void)kind;
	(void)value;
	if (strcasecmp(key, hc->name) == 0)
		hc->n++;
	return MHD_YES;
}

/* The account a trusted front proxy names, or NULL; *twice when the
 * header came more than once (a client's own copy beside the proxy's). */
static const char *
proxy_account(struct creq *r, bool *twice)
{
	const struct console_config *cc = &r->c->cfg;
	struct header_count hc = { cc->proxy_user_header, 0 };
	const char *a;

	*twice = false;
	if (cc->trusted_proxy[0] == '\0')
		return NULL;
	a = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
	    cc->proxy_user_header);
	if (a == NULL)
		return NULL;
	if (!same_address(r->addr, cc->trusted_proxy)) {
		log_warn("console: %s header from %s ignored: only %s is "
		    "trusted to send it", cc->proxy_user_header, r->addr,
		    cc->trusted_proxy);
		return NULL;
	}
	MHD_get_connection_values(r->conn, MHD_HEADER_KIND, count_header, &hc);
	if (hc.n != 1) {
		*twice = true;
		return NULL;
	}
	return a;
}

static enum MHD_Result
serve_static(struct creq *r)
{
	const char *s = strcmp(r->path, "/static/console.css") == 0 ?
	    console_css : strcmp(r->path, "/static/console.js") == 0 ?
	    console_js : NULL;

	if (s == NULL) {
		pages_error(r, 404, "Not found", "There is no such page.");
		return send_answer(r, NULL, false, NULL);
	}
	r->type = strstr(r->path, ".css") != NULL ? "text/css; charset=utf-8" :
	    "text/javascript; charset=utf-8";
	h_raw(r, s);
	return send_answer(r, NULL, false, NULL);
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_size, void **con_cls)
{
	struct console *c = cls;
	struct creq *r = *con_cls;
	const char *cookie, *pa;
	char token[2 * TOKEN_LEN + 1];
	bool twice;
	bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;

	(void)version;
	if (r == NULL) {
		if ((r = calloc(1, sizeof(*r))) == NULL)
			return MHD_NO;
		r->c = c;
		r->bridge = &c->bridge;
		r->queue = c->queue;
		r->agency = c->agency;
		r->conn = conn;
		r->path = url;
		r->post = strcmp(method, "POST") == 0;
		client_address(conn, r->addr, sizeof(r->addr));
		*con_cls = r;
		return MHD_YES;
	}
	if (*upload_size > 0) {
		size_t n = *upload_size;

		*upload_size = 0;
		if (r->too_large || n > CONSOLE_BODY_MAX - r->bodylen) {
			r->too_large = true;
			return MHD_YES;
		}
		{
			char *b = realloc(r->body, r->bodylen + n + 1);

			if (b == NULL) {
				r->too_large = true;
				return MHD_YES;
			}
			r->body = b;
		}
		memcpy(r->body + r->bodylen, upload, n);
		r->bodylen += n;
		return MHD_YES;
	}
	/* The whole request is here. */
	if (!get && !r->post) {
		pages_error(r, 405, "Method not allowed", "The console answers "
		    "GET and POST only.");
		return send_answer(r, NULL, false, NULL);
	}
	for (const unsigned char *p = (const unsigned char *)url; *p != '\0';
	    p++)
		if (*p < 0x20 || *p == 0x7f) {
			/* Never logged: it could forge a line of the log. */
			pages_error(r, 400, "Bad request", "The address holds "
			    "a control character.");
			return send_answer(r, NULL, false, NULL);
		}
	if (strlen(url) > URL_MAX || url[0] != '/' || strstr(url, "..") !=
	    NULL || strchr(url, '\\') != NULL || strstr(url, "//") != NULL) {
		pages_error(r, 404, "Not found", "There is no such page.");
		return send_answer(r, NULL, false, NULL);
	}
	if (r->too_large) {
		pages_error(r, 413, "Request too large", "The form sent was "
		    "larger than the console accepts (16 KiB).");
		return send_answer(r, NULL, false, NULL);
	}
	if (strncmp(url, "/static/", 8) == 0 || strcmp(url, "/favicon.ico") ==
	    0)
		return serve_static(r);
	MHD_get_connection_values_n(conn, MHD_GET_ARGUMENT_KIND, on_get_arg, r);
	if (r->post && r->bodylen > 0) {
		struct MHD_PostProcessor *pp = MHD_create_post_processor(conn,
		    4096, on_post_arg, r);

		if (pp == NULL) {
			pages_error(r, 415, "Unsupported form", "The console "
			    "accepts forms sent as "
			    "application/x-www-form-urlencoded.");
			return send_answer(r, NULL, false, NULL);
		}
		if (MHD_post_process(pp, r->body, r->bodylen) != MHD_YES)
			r->bad_field = true;
		MHD_destroy_post_processor(pp);
	}
	if (r->too_many || r->bad_field) {
		pages_error(r, 400, "Bad request", r->too_many ? "The request "
		    "has more fields than any console form." : "A field of "
		    "the request is too long, is not valid UTF-8 text, or "
		    "has a name no console form uses.");
		return send_answer(r, NULL, false, NULL);
	}
	if (r->post && foreign_origin(conn)) {
		log_warn("console: POST %s from %s refused: another site's "
		    "origin", url, r->addr);
		pages_error(r, 403, "Refused", "This form was sent from "
		    "another site.");
		return send_answer(r, NULL, false, NULL);
	}
	cookie = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, COOKIE);
	if (strcmp(url, "/login") == 0) {
		const char *want = MHD_lookup_connection_value(conn,
		    MHD_COOKIE_KIND, LOGIN_COOKIE);
		const char *got = creq_arg(r, "csrf");
		const char *why = NULL;
		char msg[160];
		unsigned st;
		unsigned char raw[TOKEN_LEN];
		char fresh[2 * TOKEN_LEN + 1];

		if (r->post) {
			if (!hex_token(want) || got == NULL ||
			    strlen(got) != strlen(want) ||
			    !ehx_ct_eq(got, want, strlen(want))) {
				why = "The sign-in form had expired. Please "
				    "sign in again.";
				r->status = 403;
			} else if (sign_in(r, token, &why, msg, sizeof(msg), &st)) {
				snprintf(r->location, sizeof(r->location), "/");
				return send_answer(r, token, false, "");
			} else
				r->status = st;
		}
		/* Keep a sign-in token the browser already holds: a second
		 * page load (or the browser's own favicon fetch ending here)
		 * must not void the form already on screen. */
		if (hex_token(want) && !r->post)
			snprintf(fresh, sizeof(fresh), "%s", want);
		else if (ehx_random(raw, sizeof(raw)) != 0)
			return MHD_NO;
		else
			ehx_hex(fresh, raw, sizeof(raw));
		pages_login(r, why, fresh);
		return send_answer(r, NULL, false, fresh);
	}
	pa = proxy_account(r, &twice);
	if (twice) {
		log_warn("console: %s from %s refused: its proxy header came "
		    "twice", url, r->addr);
		pages_error(r, 400, "Bad request", "The sign-in header came "
		    "more than once.");
		return send_answer(r, NULL, false, NULL);
	}
	if (pa != NULL) {
		bool same = who_from_session(r, cookie, true) &&
		    strcmp(r->who.account, pa) == 0;

		if (!same) {
			const struct user *u;
			char pw[EHX_PWHASH_MAX + 1];
			bool known, allowed = false;

			pthread_rwlock_rdlock(c->users_lock);
			if ((known = (u = users_find(c->users, pa)) != NULL)) {
				snprintf(pw, sizeof(pw), "%s", u->password);
				allowed = u->console == USER_CONSOLE_PROXY;
			}
			pthread_rwlock_unlock(c->users_lock);
			if (!known) {
				signin_event(c, "proxy-unknown-account", pa,
				    r->addr);
				pages_error(r, 403, "Not permitted", "The "
				    "account your sign-in named is not in this "
				    "agent's users file.");
				return send_answer(r, NULL, true, NULL);
			}
			/* Only an entry that says console = proxy: a proxy
			 * must not open accounts that sign in otherwise. */
			if (!allowed) {
				signin_event(c, "proxy-not-allowed", pa,
				    r->addr);
				pages_error(r, 403, "Not permitted", "The "
				    "account your sign-in named may not use the "
				    "console through the sign-on proxy (its "
				    "users-file entry would say console = "
				    "proxy).");
				return send_answer(r, NULL, true, NULL);
			}
			if (session_new(c, pa, pw, true, ehx_now_ms(),
			    token) != 0)
				return MHD_NO;
			OPENSSL_cleanse(pw, sizeof(pw));
			signin_event(c, "signed-in-by-proxy", pa, r->addr);
			/* A new session only opens the home page: a link from
			 * another site (it comes with the proxy's sign-on but
			 * not the SameSite cookie) never runs a query. */
			snprintf(r->location, sizeof(r->location), "/");
			return send_answer(r, token, false, NULL);
		}
		r->signed_in = true;
	} else
		r->signed_in = who_from_session(r, cookie, true);
	if (!r->signed_in) {
		if (r->post) {
			pages_error(r, 403, "Signed out", "Your session has "
			    "ended (or never began). Sign in again; nothing "
			    "was done.");
			return send_answer(r, NULL, cookie != NULL, NULL);
		}
		snprintf(r->location, sizeof(r->location), "/login");
		return send_answer(r, NULL, cookie != NULL, NULL);
	}
	if (r->post) {
		const char *t = creq_arg(r, "csrf");

		if (t == NULL || strlen(t) != 64 ||
		    !ehx_ct_eq(t, r->who.csrf, 64)) {
			log_warn("console: POST %s by %s from %s refused: no "
			    "valid form token", url, r->who.account, r->addr);
			pages_error(r, 403, "Refused", "This form's security "
			    "token is missing or wrong (it may have come from "
			    "another site, or from an earlier session). "
			    "Nothing was done.");
			return send_answer(r, NULL, false, NULL);
		}
		if (strcmp(url, "/logout") == 0) {
			session_end(c, cookie);
			signin_event(c, "signed-out", r->who.account, r->addr);
			snprintf(r->location, sizeof(r->location), "/login");
			return send_answer(r, NULL, true, NULL);
		}
	}
	pages_route(r);
	return send_answer(r, NULL, false, NULL);
}

/* ---- start and stop ------------------------------------------------------ */

/* Read the console's certificate and key (the key must be 0600): 0, or
 * an error with err set and *cert, *key untouched. */
static int
read_tls(const struct console_config *cc, unsigned char **cert,
    size_t *certlen, unsigned char **key, size_t *keylen, char *err,
    size_t errsz)
{
	unsigned char *c = NULL, *k = NULL;
	size_t cl = 0, kl = 0;
	int r;

	if ((r = ehx_file_read(cc->certificate, false, 1024 * 1024, &c,
	    &cl)) != 0) {
		snprintf(err, errsz, "%s: cannot read the console's "
		    "certificate: %s", cc->certificate, r == EHX_ERR_SYSTEM ?
		    strerror(errno) : ehx_strerror(r));
		return EHX_ERR_CONFIG;
	}
	if ((r = ehx_file_read(cc->key, true, EHX_MAX_KEY_FILE, &k,
	    &kl)) != 0) {
		snprintf(err, errsz, "%s: cannot read the console's key: %s",
		    cc->key, r == EHX_ERR_SYSTEM ? strerror(errno) :
		    ehx_strerror(r));
		free(c);
		return EHX_ERR_CONFIG;
	}
	*cert = c;
	*certlen = cl;
	*key = k;
	*keylen = kl;
	return 0;
}

int
console_open(const struct console_config *cc, const char *agency,
    struct console **out, char *err, size_t errsz)
{
	struct console *c;
	struct addrinfo hints, *ai = NULL;
	char host[64], port[8];
	const char *colon = strrchr(cc->listen, ':');
	size_t hn = (size_t)(colon - cc->listen);
	int one = 1, r;

	*out = NULL;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return EHX_ERR_NOMEM;
	c->cfg = *cc;
	c->listen_fd = c->listen_keep = -1;
	bridge_init(&c->bridge);
	pthread_mutex_init(&c->lock, NULL);
	snprintf(c->agency, sizeof(c->agency), "%s", agency);
	if (cc->listen[0] == '[') {
		hn -= 2;
		memcpy(host, cc->listen + 1, hn);
	} else
		memcpy(host, cc->listen, hn);
	host[hn] = '\0';
	snprintf(port, sizeof(port), "%s", colon + 1);
	memset(&hints, 0, sizeof(hints));
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	hints.ai_socktype = SOCK_STREAM;
	if ((r = getaddrinfo(host, port, &hints, &ai)) != 0) {
		snprintf(err, errsz, "[console] listen %s: %s", cc->listen,
		    gai_strerror(r));
		goto fail;
	}
	if ((c->listen_fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC,
	    0)) < 0 || setsockopt(c->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one,
	    sizeof(one)) != 0 || bind(c->listen_fd, ai->ai_addr,
	    ai->ai_addrlen) != 0 || listen(c->listen_fd, 64) != 0) {
		snprintf(err, errsz, "[console] listen %s: %s", cc->listen,
		    strerror(errno));
		freeaddrinfo(ai);
		goto fail;
	}
	{
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		unsigned p = 0;

		if (getsockname(c->listen_fd, (struct sockaddr *)&ss, &sl) == 0)
			p = ntohs(ss.ss_family == AF_INET6 ?
			    ((struct sockaddr_in6 *)&ss)->sin6_port :
			    ((struct sockaddr_in *)&ss)->sin_port);
		snprintf(c->url, sizeof(c->url), "%s://%s%s%s:%u/",
		    cc->certificate[0] != '\0' ? "https" : "http",
		    ai->ai_family == AF_INET6 ? "[" : "", host,
		    ai->ai_family == AF_INET6 ? "]" : "", p);
	}
	freeaddrinfo(ai);
	if (cc->certificate[0] != '\0' && read_tls(cc, &c->tls_cert,
	    &c->tls_certlen, &c->tls_key, &c->tls_keylen, err, errsz) != 0)
		goto fail;
	*out = c;
	return 0;
fail:
	console_close(c);
	return EHX_ERR_CONFIG;
}

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[512];
	size_t n;

	(void)cls;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	log_info("console: %s", buf);
}

/*
 * A libmicrohttpd daemon on listening socket fd (TLS with the
 * certificate and key read into c), its threads blocking every signal:
 * they stay with the main loop (SIGHUP, SIGTERM), and a poll of theirs is
 * never cut short. NULL when it did not start (logged).
 */
static struct MHD_Daemon *
start_daemon(struct console *c, int fd)
{
	/* MHD_USE_ITC: a daemon can be quiesced when its certificate is
	 * renewed. */
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
	    MHD_USE_ERROR_LOG | MHD_USE_ITC;
	struct MHD_Daemon *d;
	sigset_t all, old;

	if (c->tls_cert != NULL)
		flags |= MHD_USE_TLS;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, c,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
	    MHD_OPTION_LISTEN_SOCKET, fd,
	    MHD_OPTION_THREAD_POOL_SIZE, (unsigned)c->cfg.threads,
	    MHD_OPTION_CONNECTION_LIMIT, 256u,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, 32u,
	    MHD_OPTION_CONNECTION_TIMEOUT, 30u,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32768,
	    MHD_OPTION_STRICT_FOR_CLIENT, 1,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
	    c->tls_cert != NULL ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END,
	    (const char *)c->tls_cert,
	    MHD_OPTION_HTTPS_MEM_KEY, (const char *)c->tls_key,
	    /* TLS 1.2 and 1.3 only, unless tls_priorities says otherwise. */
	    MHD_OPTION_HTTPS_PRIORITIES, c->cfg.tls_priorities,
	    MHD_OPTION_END);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return d;
}

int
console_start(struct console *c, struct users *users,
    pthread_rwlock_t *users_lock, struct queue *q, int64_t timeout_ms,
    char *err, size_t errsz)
{
	unsigned char dummy[16];

	c->users = users;
	c->users_lock = users_lock;
	c->queue = q;
	if (ehx_random(dummy, sizeof(dummy)) != 0 ||
	    users_hash_password((const char *)dummy, sizeof(dummy),
	    c->dummy_hash) != 0) {
		snprintf(err, errsz, "console: cannot make its hash");
		return EHX_ERR_INTERNAL;
	}
	if (bridge_open(&c->bridge, timeout_ms) != 0) {
		snprintf(err, errsz, "console: pipe: %s", strerror(errno));
		return EHX_ERR_SYSTEM;
	}
	if ((c->listen_keep = fcntl(c->listen_fd, F_DUPFD_CLOEXEC, 0)) < 0) {
		snprintf(err, errsz, "console: dup: %s", strerror(errno));
		return EHX_ERR_SYSTEM;
	}
	if ((c->d = start_daemon(c, c->listen_fd)) == NULL) {
		snprintf(err, errsz, "console: cannot start serving %s (see "
		    "the log above)", c->cfg.listen);
		return EHX_ERR_SYSTEM;
	}
	c->listen_fd = -1;              /* the daemon's now */
	if (c->cfg.url_file[0] != '\0' && ehx_file_write_atomic(
	    c->cfg.url_file, c->url, strlen(c->url), 0644) != 0) {
		snprintf(err, errsz, "%s: %s", c->cfg.url_file,
		    strerror(errno));
		return EHX_ERR_SYSTEM;
	}
	log_info("console: serving %s%s", c->url, c->cfg.trusted_proxy[0] ?
	    " (and trusting its front proxy's sign-in)" : "");
	return 0;
}

int
console_reload_tls(struct console *c, char *err, size_t errsz)
{
	unsigned char *cert, *key, *old_cert, *old_key;
	size_t certlen, keylen, old_keylen;
	struct MHD_Daemon *old = c->d, *fresh;
	MHD_socket q;
	int fd;

	if (c->tls_cert == NULL || old == NULL)
		return 0;               /* no TLS: nothing to renew */
	if (read_tls(&c->cfg, &cert, &certlen, &key, &keylen, err,
	    errsz) != 0)
		return EHX_ERR_CONFIG;
	old_cert = c->tls_cert;
	old_key = c->tls_key;
	old_keylen = c->tls_keylen;
	c->tls_cert = cert;
	c->tls_certlen = certlen;
	c->tls_key = key;
	c->tls_keylen = keylen;
	/* The new daemon listens on a copy of the socket beside the old one,
	 * which then stops taking connections and ends: the sessions are the
	 * console's, not the daemon's, and go on. */
	if ((fd = fcntl(c->listen_keep, F_DUPFD_CLOEXEC, 0)) < 0 ||
	    (fresh = start_daemon(c, fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		c->tls_cert = old_cert;
		c->tls_certlen = 0;
		c->tls_key = old_key;
		c->tls_keylen = old_keylen;
		ehx_free_secret(key, keylen);
		free(cert);
		snprintf(err, errsz, "console: the renewed certificate and key "
		    "do not start a server (see the log above); the old ones "
		    "stay in use");
		return EHX_ERR_CONFIG;
	}
	c->d = fresh;
	if ((q = MHD_quiesce_daemon(old)) != MHD_INVALID_SOCKET) {
		MHD_stop_daemon(old);
		close(q);
	} else
		MHD_stop_daemon(old);
	ehx_free_secret(old_key, old_keylen);
	free(old_cert);
	return 0;
}

void
console_close(struct console *c)
{
	if (c == NULL)
		return;
	if (c->d != NULL)
		MHD_stop_daemon(c->d);
	if (c->listen_fd >= 0)
		close(c->listen_fd);
	if (c->listen_keep >= 0)
		close(c->listen_keep);
	bridge_close(&c->bridge);
	ehx_free_secret(c->tls_key, c->tls_keylen);
	free(c->tls_cert);
	if (c->cfg.url_file[0] != '\0')
		unlink(c->cfg.url_file);
	pthread_mutex_destroy(&c->lock);
	OPENSSL_cleanse(c->sessions, sizeof(c->sessions));
	free(c);
}
