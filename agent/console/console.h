/*
 * console.h — the agent's web console, as the agent daemon (agentd.c)
 * opens, starts, feeds and stops it. Served by libmicrohttpd on its own
 * threads (server.c: HTTP, sessions, sign-in); the pages (pages.c) sit
 * behind a small seam (request.h). Every request it makes of the broker
 * is handed to the agent's main loop (bridge.c) as a local request under
 * the signed-in account, so it takes the same path as the ehx command
 * line: the users file's roles, the same checks, the outbox, the
 * signature and the broker's consent rules and audit.
 */
#ifndef EHX_CONSOLE_H
#define EHX_CONSOLE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "../config.h"
#include "../users.h"

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

/*
 * SIGHUP: read the TLS certificate and key again and serve with them,
 * keeping every session (a renewed certificate signs nobody out). 0 (also
 * without TLS), or EHX_ERR_CONFIG with err set and the old ones in use.
 * The key must be readable by the agent's user then.
 */
int console_reload_tls(struct console *c, char *err, size_t errsz);

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

#endif
