/*
 * config.c — the agent's configuration file; see config.h.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "ehx/conf.h"
#include "ehx/err.h"
#include "ehx/log.h"
#include "ehx/util.h"

/* ---- configuration ------------------------------------------------------ */

static int
on_key(void *user, const char *section, const char *key, const char *value,
    char *why, size_t whysz)
{
	struct agent_config *c = user;
	long long v;
	int r;

	if (strcmp(section, "agent") != 0) {
		snprintf(why, whysz, "unknown section [%.40s]; the agent's "
		    "config has only [agent]", section);
		return EHX_ERR_CONFIG;
	}
#define PATH(name) \
	if (strcmp(key, #name) == 0) \
		return ehx_conf_path(c->file, value, c->name, sizeof(c->name), \
		    why, whysz)
	PATH(broker_certificate);
	PATH(broker_curve_public);
	PATH(ca);
	PATH(certificate);
	PATH(key);
	PATH(curve_key);
	PATH(socket);
	PATH(users);
	PATH(state_file);
	PATH(data_dir);
	PATH(spool_dir);
#undef PATH
	if (strcmp(key, "hook") == 0) {
		if (value[0] != '/') {
			snprintf(why, whysz, "hook must be an absolute path to "
			    "a program, with arguments after it if needed");
			return EHX_ERR_CONFIG;
		}
		return ehx_conf_string(value, c->hook, sizeof(c->hook), why,
		    whysz);
	}
	if (strcmp(key, "hook_timeout_seconds") == 0) {
		if ((r = ehx_conf_int(value, 1, 3600, &v, why, whysz)) != 0)
			return r;
		c->hook_timeout_ms = v * 1000;
		return 0;
	}
	if (strcmp(key, "outbox_max") == 0) {
		if ((r = ehx_conf_int(value, 1, 100000000, &v, why, whysz)) != 0)
			return r;
		c->outbox_max = (uint64_t)v;
		return 0;
	}
	if (strcmp(key, "notify_poll_seconds") == 0) {
		if ((r = ehx_conf_int(value, 1, 3600, &v, why, whysz)) != 0)
			return r;
		c->poll_ms = v * 1000;
		return 0;
	}
	if (strcmp(key, "retry_max_seconds") == 0) {
		if ((r = ehx_conf_int(value, 1, 600, &v, why, whysz)) != 0)
			return r;
		c->retry_max_ms = v * 1000;
		return 0;
	}
	if (strcmp(key, "agency") == 0 || strcmp(key, "broker_id") == 0) {
		if (!ehx_id_ok(value)) {
			snprintf(why, whysz, "%s must be 1..%d of a-z 0-9 _ -",
			    key, EHX_MAX_ID);
			return EHX_ERR_CONFIG;
		}
		snprintf(key[0] == 'a' ? c->agency : c->broker_id,
		    sizeof(c->agency), "%s", value);
		return 0;
	}
	if (strcmp(key, "broker") == 0)
		return ehx_conf_string(value, c->broker, sizeof(c->broker), why,
		    whysz);
	if (strcmp(key, "user") == 0)
		return ehx_conf_string(value, c->user, sizeof(c->user), why,
		    whysz);
	if (strcmp(key, "socket_group") == 0)
		return ehx_conf_string(value, c->socket_group,
		    sizeof(c->socket_group), why, whysz);
	if (strcmp(key, "socket_mode") == 0) {
		char *end;

		v = strtoll(value, &end, 8);
		if (*end != '\0' || end == value || v < 0600 || v > 0666 ||
		    (v & 0111) != 0) {
			snprintf(why, whysz, "socket_mode must be an octal mode "
			    "such as 0660 (owner must read and write)");
			return EHX_ERR_CONFIG;
		}
		c->socket_mode = v;
		return 0;
	}
	if (strcmp(key, "timeout_seconds") == 0) {
		if ((r = ehx_conf_int(value, 1, 300, &v, why, whysz)) != 0)
			return r;
		c->timeout_ms = v * 1000;
		return 0;
	}
	if (strcmp(key, "log_level") == 0)
		return ehx_conf_log_level(value, &c->log_level, why, whysz);
	snprintf(why, whysz, "unknown key \"%.40s\"", key);
	return EHX_ERR_CONFIG;
}

int
agent_config_load(const char *path, struct agent_config *c, char *err,
    size_t errsz)
{
	static const struct ehx_conf_required required[] = {
		{ "agency", offsetof(struct agent_config, agency) },
		{ "broker", offsetof(struct agent_config, broker) },
		{ "broker_certificate", offsetof(struct agent_config, broker_certificate) },
		{ "broker_curve_public", offsetof(struct agent_config, broker_curve_public) },
		{ "ca", offsetof(struct agent_config, ca) },
		{ "certificate", offsetof(struct agent_config, certificate) },
		{ "key", offsetof(struct agent_config, key) },
		{ "curve_key", offsetof(struct agent_config, curve_key) },
		{ "socket", offsetof(struct agent_config, socket) },
		{ "users", offsetof(struct agent_config, users) },
		{ "state_file", offsetof(struct agent_config, state_file) },
		{ "data_dir", offsetof(struct agent_config, data_dir) },
	};
	int r;

	memset(c, 0, sizeof(*c));
	if ((size_t)snprintf(c->file, sizeof(c->file), "%s", path) >=
	    sizeof(c->file)) {
		snprintf(err, errsz, "%s: path too long", path);
		return EHX_ERR_CONFIG;
	}
	snprintf(c->broker_id, sizeof(c->broker_id), "broker");
	c->socket_mode = 0660;
	c->timeout_ms = 15000;
	c->hook_timeout_ms = 60000;
	c->poll_ms = 10000;
	c->retry_max_ms = 10000;
	c->log_level = EHX_LOG_INFO;
	if ((r = ehx_conf_parse(path, on_key, c, err, errsz)) != 0)
		return r;
	return ehx_conf_check_required(path, "agent", c, required,
	    sizeof(required) / sizeof(required[0]), err, errsz);
}

