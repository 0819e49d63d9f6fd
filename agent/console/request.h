/*
 * request.h — one request to the web console and the answer being built
 * for it (request.c): the seam between the HTTP server (server.c), which
 * fills a request's fields from libmicrohttpd and sends its answer, and
 * the pages (pages.c), which read the fields and write the answer. Pages
 * reach the agent only through creq_ask, which hands the question to the
 * agent's main loop (bridge.h) under the signed-in person.
 */
#ifndef EHX_CONSOLE_REQUEST_H
#define EHX_CONSOLE_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../users.h"
#include "ehx.pb-c.h"
#include "ehx/limits.h"

struct bridge;
struct console;
struct queue;

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
	struct console *c;               /* the server's own (server.c) */
	struct bridge *bridge;           /* to the agent's main loop */
	struct queue *queue;             /* the sign-in log; may be NULL */
	const char *agency;              /* the agency this console serves */
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

/*
 * Keep one field of the query or the form: names are short [a-z_]; values
 * at most CONSOLE_FIELD_MAX bytes of safe UTF-8 (ehx_text_char_len), where
 * a form's line ends and tabs become spaces. Anything else, or more than
 * CONSOLE_FIELDS fields, marks the request bad (bad_field, too_many).
 */
void creq_add_field(struct creq *r, const char *name, const char *v,
    size_t len);

/* Free r, its fields, its body and its answer. NULL is fine. */
void creq_free(struct creq *r);

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
int creq_ask(struct creq *r, int role, Ehx__LocalRequest *lr,
    Ehx__LocalReply **reply);

/* The sign-in log (newest first, at most limit lines) to fn, for IG
 * officers; fn gets r as its arg. Nothing when there is no log. */
void creq_signins(struct creq *r, size_t limit,
    void (*fn)(void *arg, uint64_t seq, const char *line, size_t len));

#endif
