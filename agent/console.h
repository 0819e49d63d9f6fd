/*
 * console.h — the agent's web console (console.c: the HTTP server,
 * sessions, sign-in and the bridge to the agent's loop; pages.c: the
 * pages). Served by libmicrohttpd on its own threads; every request it
 * makes of the broker is handed to the agent's main loop as a local
 * request under the signed-in account, so it takes the same path as the
 * ehx command line: the users file's roles, the same checks, the outbox,
 * the signature and the broker's consent rules and audit.
 */
#ifndef EHX_CONSOLE_H
#define EHX_CONSOLE_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent.h"
#include "config.h"
#include "ehx.pb-c.h"

struct console;
struct queue;

/*
 * Before dropping root: check cc, bind its listen address, read the TLS
 * certificate and key (the key must be 0600). 0 and *out, or
 * EHX_ERR_CONFIG / EHX_ERR_SYSTEM with a sentence in err.
 */
int console_open(const struct console_config *cc, const char *agency,
    struct console **out, char *err, size_t errsz);

/*
 * After dropping root: start serving. users is read under users_lock
 * (the main loop takes it to write when it reloads the file); q keeps
 * the sign-in log; timeout_ms is the agent's wait for the broker. Writes
 * url_file when configured. 0, or an error with err set.
 */
int console_start(struct console *c, struct users *users,
    pthread_rwlock_t *users_lock, struct queue *q, int64_t timeout_ms,
    char *err, size_t errsz);

/* Stop serving and free c (wiping the TLS key). NULL is fine. */
void console_close(struct console *c);

/* The console's URL, "http://127.0.0.1:8080/". */
const char *console_url(const struct console *c);

/*
 * The bridge: the main loop polls console_bridge_fd for reading; each
 * console_bridge_take then gives one connected SOCK_SEQPACKET socket (now
 * the loop's to close) on which a LocalRequest arrives from the console
 * on behalf of account, to be answered as the loop answers the Unix
 * socket's callers. 0, or -1 when nothing waits.
 */
int console_bridge_fd(const struct console *c);
int console_bridge_take(struct console *c, int *fd,
    char account[EHX_MAX_ACCOUNT + 1]);

/* The agent is stopping: refuse further calls and close the sockets of
 * calls not yet taken (their pages then say the agent is unavailable).
 * Call before freeing the loop's own sockets and then console_close. */
void console_drain(struct console *c);

/* ---- for pages.c -------------------------------------------------------- */

#define CONSOLE_FIELDS 64             /* form fields and query arguments */
#define CONSOLE_FIELD_MAX 4096        /* bytes of one value */
#define CONSOLE_BODY_MAX 16384        /* bytes of a request body */

struct console_field {
	char name[32];
	char *value;                  /* NUL-ended, checked UTF-8 */
	size_t len;
};

/* The signed-in person, copied from the session and the users file. */
struct console_who {
	char account[EHX_MAX_ACCOUNT + 1];
	char name[EHX_MAX_NAME + 1];
	unsigned roles;                  /* bit (1 << Ehx__Role) */
	char locality[EHX_MAX_ID + 1];   /* the users file's, or empty */
	char csrf[65];                   /* this session's form token */
};

/* One HTTP request and the answer being built for it. */
struct creq {
	struct console *c;
	void *conn;                      /* struct MHD_Connection */
	const char *path;
	bool post;
	char addr[64];                   /* the client's address */
	struct console_field f[CONSOLE_FIELDS];
	size_t nf;
	bool too_many;                   /* fields beyond CONSOLE_FIELDS */
	bool bad_field;                  /* a value too long or not text */
	char *body;                      /* a POST's body */
	size_t bodylen;
	bool too_large;
	bool signed_in;
	struct console_who who;
	/* the answer */
	unsigned status;
	char *out;
	size_t outlen, outcap;
	bool oom;
	const char *type;                /* Content-Type; default HTML */
	char location[512];              /* a redirect (303) when set */
	char disposition[128];           /* Content-Disposition, for CSV */
};

/* The first value of name among the query's and the form's fields, or
 * NULL. Values are valid UTF-8 without control characters (newlines and
 * tabs in a form's text are turned into spaces). */
const char *creq_arg(const struct creq *r, const char *name);
/* Up to max values of name, in order; returns how many. */
size_t creq_args(const struct creq *r, const char *name, const char **out,
    size_t max);

/* Append to the answer: raw markup, markup from a format (for numbers and
 * our own constant strings only), and untrusted text escaped for HTML. */
void h_raw(struct creq *r, const char *s);
void h_printf(struct creq *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void h_text(struct creq *r, const char *s);
/* Append n raw bytes. */
void h_bytes(struct creq *r, const void *p, size_t n);

/*
 * Ask the agent's loop, as the signed-in person acting in role (0: no
 * role: the agent's own questions). lr's as_role is set here. 0 and
 * *reply (free with ehx__local_reply__free_unpacked), or
 * EHX_ERR_UNAVAILABLE / EHX_ERR_TIMEOUT / EHX_ERR_INTERNAL when the agent
 * did not answer.
 */
int console_call(struct creq *r, int role, Ehx__LocalRequest *lr,
    Ehx__LocalReply **reply);

/* The sign-in log (newest first) into the page, for IG officers. */
void console_signins(struct creq *r, size_t limit,
    void (*fn)(void *arg, uint64_t seq, const char *line, size_t len));

/* The agency this console serves. */
const char *console_agency(const struct console *c);

/*
 * pages.c: answer a signed-in person's request (GET or POST, the form's
 * token already checked). Sets r->status and the answer, or a redirect.
 */
void pages_route(struct creq *r);

/* The sign-in page, with an error sentence (or NULL) and the form token
 * for signing in. */
void pages_login(struct creq *r, const char *error, const char *token);

/* An error page: status and a sentence for people. */
void pages_error(struct creq *r, unsigned status, const char *title,
    const char *sentence);

/* The stylesheet and the script, served from the binary. */
extern const char console_css[];
extern const char console_js[];

#endif
