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
	int log_level;
};

/* Read and check path into c (defaults first). 0 or EHX_ERR_CONFIG with
 * err set. */
int agent_config_load(const char *path, struct agent_config *c, char *err,
    size_t errsz);

#endif
