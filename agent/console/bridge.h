/*
 * bridge.h — the bridge from the web console's threads to the agent's
 * main loop (bridge.c). A page's question to the broker is a LocalRequest
 * written on one end of a fresh socket pair; the other end is handed over
 * a pipe to the main loop, which answers it exactly as it answers the ehx
 * command line on the agent's Unix socket, under the signed-in account.
 * The console itself holds no keys and asks the broker nothing.
 */
#ifndef EHX_CONSOLE_BRIDGE_H
#define EHX_CONSOLE_BRIDGE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "../users.h"
#include "ehx.pb-c.h"

struct bridge {
	int fd[2];                       /* console threads -> main loop */
	pthread_mutex_t lock;            /* stopping, and each handover */
	bool stopping;                   /* the loop takes no more calls */
	int64_t timeout_ms;              /* the agent's wait for the broker */
};

/* A bridge not yet open: no descriptors. bridge_close frees it. */
void bridge_init(struct bridge *br);

/* Make the pipe (non-blocking both ends). 0, or EHX_ERR_SYSTEM with errno
 * set. */
int bridge_open(struct bridge *br, int64_t timeout_ms);

/* Close both ends (the main loop has stopped taking). */
void bridge_close(struct bridge *br);

/* The end the main loop polls for reading; -1 before bridge_open. */
int bridge_fd(const struct bridge *br);

/* One handed-over socket (now the caller's to close) and the account it
 * speaks for. 0, or -1 when nothing waits. */
int bridge_take(struct bridge *br, int *fd,
    char account[EHX_MAX_ACCOUNT + 1]);

/*
 * Ask the main loop lr on behalf of account, in role (lr->as_role is set
 * here; 0: no role, the agent's own questions), and wait at most the
 * agent's broker timeout and five seconds more. 0 and *reply (free with
 * ehx__local_reply__free_unpacked), or EHX_ERR_UNAVAILABLE (stopping, far
 * behind, or no answer), EHX_ERR_TIMEOUT or EHX_ERR_INTERNAL.
 */
int bridge_call(struct bridge *br, const char *account, int role,
    Ehx__LocalRequest *lr, Ehx__LocalReply **reply);

/* The agent is stopping: refuse further calls and close the sockets of
 * calls not yet taken (their pages then say the agent is unavailable). */
void bridge_drain(struct bridge *br);

#endif
