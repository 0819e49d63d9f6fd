/*
 * bridge.c — the web console's way to the agent's main loop (bridge.h).
 *
 * A call makes a SOCK_SEQPACKET socket pair, writes the LocalRequest on
 * one end, and hands the other end, with the account it speaks for, over
 * a non-blocking pipe to the main loop, which polls the pipe beside its
 * Unix socket. The loop answers on the handed-over socket and closes it;
 * the call waits for the answer with a bound. A pipe too full to take
 * the handover (the loop far behind) or a stopping agent is answered
 * EHX_ERR_UNAVAILABLE at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bridge.h"
#include "ehx/err.h"
#include "ehx/limits.h"
#include "ehx/util.h"

#define REPLY_MAX (2 * EHX_MAX_MESSAGE + 4096)

/* What goes down the pipe: one socket and whom it speaks for. */
struct handoff {
	int fd;
	char account[EHX_MAX_ACCOUNT + 1];
};

void
bridge_init(struct bridge *br)
{
	memset(br, 0, sizeof(*br));
	br->fd[0] = br->fd[1] = -1;
	pthread_mutex_init(&br->lock, NULL);
}

int
bridge_open(struct bridge *br, int64_t timeout_ms)
{
	br->timeout_ms = timeout_ms;
	if (pipe2(br->fd, O_CLOEXEC) != 0 ||
	    fcntl(br->fd[0], F_SETFL, O_NONBLOCK) != 0 ||
	    fcntl(br->fd[1], F_SETFL, O_NONBLOCK) != 0)
		return EHX_ERR_SYSTEM;
	return 0;
}

void
bridge_close(struct bridge *br)
{
	for (int i = 0; i < 2; i++)
		if (br->fd[i] >= 0)
			close(br->fd[i]);
	br->fd[0] = br->fd[1] = -1;
	pthread_mutex_destroy(&br->lock);
}

int
bridge_fd(const struct bridge *br)
{
	return br->fd[0];
}

int
bridge_take(struct bridge *br, int *fd, char account[EHX_MAX_ACCOUNT + 1])
{
	struct handoff h;

	if (read(br->fd[0], &h, sizeof(h)) != (ssize_t)sizeof(h))
		return -1;
	*fd = h.fd;
	h.account[EHX_MAX_ACCOUNT] = '\0';
	memcpy(account, h.account, EHX_MAX_ACCOUNT + 1);
	return 0;
}

int
bridge_call(struct bridge *br, const char *account, int role,
    Ehx__LocalRequest *lr, Ehx__LocalReply **reply)
{
	struct handoff h;
	unsigned char *buf = NULL;
	int sv[2] = { -1, -1 }, size = REPLY_MAX, rc = EHX_ERR_INTERNAL;
	struct pollfd p;
	size_t n;
	ssize_t got;

	*reply = NULL;
	lr->as_role = (Ehx__Role)role;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
		goto out;
	setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	n = ehx__local_request__get_packed_size(lr);
	if ((buf = malloc(n > REPLY_MAX ? n : REPLY_MAX)) == NULL)
		goto out;
	ehx__local_request__pack(lr, buf);
	if (send(sv[0], buf, n, MSG_NOSIGNAL) != (ssize_t)n)
		goto out;
	memset(&h, 0, sizeof(h));
	h.fd = sv[1];
	snprintf(h.account, sizeof(h.account), "%s", account);
	pthread_mutex_lock(&br->lock);
	if (br->stopping || write(br->fd[1], &h, sizeof(h)) !=
	    (ssize_t)sizeof(h)) {
		pthread_mutex_unlock(&br->lock);
		rc = EHX_ERR_UNAVAILABLE;       /* stopping, or far behind */
		goto out;
	}
	pthread_mutex_unlock(&br->lock);
	sv[1] = -1;                             /* the loop's now */
	p.fd = sv[0];
	p.events = POLLIN;
	rc = EHX_ERR_TIMEOUT;
	{
		int64_t end = ehx_now_ms() + br->timeout_ms + 5000, left;
		int pr;

		while ((left = end - ehx_now_ms()) > 0 &&
		    (pr = poll(&p, 1, (int)left)) < 0 && errno == EINTR)
			;
		if (left <= 0 || pr != 1)
			goto out;
	}
	got = recv(sv[0], buf, REPLY_MAX, MSG_TRUNC);
	rc = EHX_ERR_UNAVAILABLE;
	if (got <= 0 || got > REPLY_MAX)
		goto out;
	rc = EHX_ERR_INTERNAL;
	if ((*reply = ehx__local_reply__unpack(NULL, (size_t)got, buf)) ==
	    NULL)
		goto out;
	rc = 0;
out:
	free(buf);
	if (sv[0] >= 0)
		close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
	return rc;
}

void
bridge_drain(struct bridge *br)
{
	int fd;
	char account[EHX_MAX_ACCOUNT + 1];

	if (br->fd[0] < 0)
		return;
	pthread_mutex_lock(&br->lock);
	br->stopping = true;
	while (bridge_take(br, &fd, account) == 0)
		close(fd);
	pthread_mutex_unlock(&br->lock);
}
