/*
 * pages.h — the web console's pages (pages.c), as the HTTP server
 * (server.c) calls them. A page reads its request's fields and writes its
 * answer through request.h; it never sees libmicrohttpd, sessions or the
 * sign-in checks.
 */
#ifndef EHX_CONSOLE_PAGES_H
#define EHX_CONSOLE_PAGES_H

#include "request.h"

/*
 * Answer a signed-in person's request (GET or POST, the form's token
 * already checked). Sets r->status and the answer, or a redirect.
 */
void pages_route(struct creq *r);

/* The sign-in page, with an error sentence (or NULL) and the form token
 * for signing in. */
void pages_login(struct creq *r, const char *error, const char *token);

/* An error page: status and a sentence for people. */
void pages_error(struct creq *r, unsigned status, const char *title,
    const char *sentence);

#endif
