/*
 * config.h — the agent's configuration file ([agent] in agent.conf; see
 * docs/OPERATIONS.md): every key checked, bounds explicit, errors as
 * "file:line: reason".
 */
#ifndef EHX_AGENT_CONFIG_H
#define EHX_AGENT_CONFIG_H

#include <limits.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/un.h>

#include "ehx/limits.h"

#define PATH_MAX_ 1024

/* [console]: the web console (console/); off while listen is empty. */
struct console_config {
	char listen[64];                /* "127.0.0.1:8080", "[::1]:8080" */
	char url_file[PATH_MAX_];       /* the console's URL, written at start */
	char certificate[PATH_MAX_];    /* TLS: both, or neither */
	char key[PATH_MAX_];
	char tls_priorities[256];       /* GnuTLS priorities: TLS 1.2+ */
	char trusted_proxy[64];         /* the front proxy's address, or "" */
	char proxy_user_header[64];     /* the header it names the account in */
	long long idle_ms;              /* a session ends after this idle */
	long long session_max_ms;       /* and this long after login at most */
	long long threads;
	long long login_failures;       /* per account at an address ... */
	long long account_failures;     /* per account, from every address */
	long long lockout_ms;           /* ... within this window */
};

struct agent_config {
	char file[PATH_MAX_];
	char agency[EHX_MAX_ID + 1];
	char broker[256];
	char broker_id[EHX_MAX_ID + 1];
	char broker_certificate[PATH_MAX_];
	char broker_curve_public[PATH_MAX_];
	char ca[PATH_MAX_];
	char certificate[PATH_MAX_];
	char key[PATH_MAX_];
	char curve_key[PATH_MAX_];
	char socket[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char socket_group[64];
	char users[PATH_MAX_];
	char state_file[PATH_MAX_];
	char user[64];                  /* run as root: drop to this user */
	uint64_t outbox_max;            /* 0: QUEUE_OUTBOX_MAX */
	char data_dir[PATH_MAX_];
	char spool_dir[PATH_MAX_];
	char hook[PATH_MAX_];
	long long hook_timeout_ms;
	long long poll_ms;
	long long retry_max_ms;
	long long socket_mode;
	long long timeout_ms;
	long long audit_poll_ms;        /* ask for the newest checkpoint */
	long long audit_deadline_ms;    /* what must be covered, confirmed */
	long long cosign_quorum;        /* other agencies that must agree */
	int log_level;
	struct console_config console;
};

/* Read and check path into c (defaults first). 0 or EHX_ERR_CONFIG with
 * err set. */
int agent_config_load(const char *path, struct agent_config *c, char *err,
    size_t errsz);

#endif
