/*
 * config.c — the agent's configuration file; see config.h.
 */
#include <netdb.h>
#include <stdbool.h>
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

/* "127.0.0.1:8080", "[::1]:0": an address and a port, checked by
 * getaddrinfo with numeric forms only (no name lookups). */
static bool
listen_ok(const char *v)
{
	char host[64];
	const char *colon = strrchr(v, ':'), *end;
	struct addrinfo hints, *ai = NULL;
	long port;
	size_t n;

	if (colon == NULL || colon == v)
		return false;
	n = (size_t)(colon - v);
	if (v[0] == '[') {
		if (n < 3 || v[n - 1] != ']')
			return false;
		v++;
		n -= 2;
	}
	if (n >= sizeof(host))
		return false;
	memcpy(host, v, n);
	host[n] = '\0';
	port = strtol(colon + 1, (char **)&end, 10);
	if (*end != '\0' || end == colon + 1 || port < 0 || port > 65535)
		return false;
	memset(&hints, 0, sizeof(hints));
	hints.ai_flags = AI_NUMERICHOST;
	if (getaddrinfo(host, NULL, &hints, &ai) != 0)
		return false;
	freeaddrinfo(ai);
	return true;
}

static int
console_key(struct console_config *c, const char *file, const char *key,
    const char *value, char *why, size_t whysz)
{
	long long v;
	int r;

	if (strcmp(key, "listen") == 0) {
		if (strlen(value) >= sizeof(c->listen) || !listen_ok(value)) {
			snprintf(why, whysz, "listen must be an IP address and "
			    "a port, such as 127.0.0.1:8080 or [::1]:8080");
			return EHX_ERR_CONFIG;
		}
		snprintf(c->listen, sizeof(c->listen), "%s", value);
		return 0;
	}
	if (strcmp(key, "url_file") == 0)
		return ehx_conf_path(file, value, c->url_file,
		    sizeof(c->url_file), why, whysz);
	if (strcmp(key, "certificate") == 0)
		return ehx_conf_path(file, value, c->certificate,
		    sizeof(c->certificate), why, whysz);
	if (strcmp(key, "key") == 0)
		return ehx_conf_path(file, value, c->key, sizeof(c->key), why,
		    whysz);
	if (strcmp(key, "tls_priorities") == 0) {
		size_t n = strlen(value);

		if (n == 0 || n >= sizeof(c->tls_priorities) ||
		    strspn(value, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
		    "qrstuvwxyz0123456789:+-.%_@=!") != n) {
			snprintf(why, whysz, "tls_priorities must be a GnuTLS "
			    "priority string (letters, digits and :+-.%%_@=!), "
			    "such as NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2");
			return EHX_ERR_CONFIG;
		}
		snprintf(c->tls_priorities, sizeof(c->tls_priorities), "%s",
		    value);
		return 0;
	}
	if (strcmp(key, "trusted_proxy") == 0) {
		char probe[80];

		snprintf(probe, sizeof(probe), "%s%s%s:0",
		    strchr(value, ':') != NULL ? "[" : "", value,
		    strchr(value, ':') != NULL ? "]" : "");
		if (strlen(value) >= sizeof(c->trusted_proxy) ||
		    !listen_ok(probe)) {
			snprintf(why, whysz, "trusted_proxy must be one IP "
			    "address, such as 127.0.0.1");
			return EHX_ERR_CONFIG;
		}
		snprintf(c->trusted_proxy, sizeof(c->trusted_proxy), "%s",
		    value);
		return 0;
	}
	if (strcmp(key, "proxy_user_header") == 0) {
		size_t n = strlen(value);

		if (n == 0 || n >= sizeof(c->proxy_user_header) ||
		    strspn(value, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
		    "qrstuvwxyz0123456789-") != n) {
			snprintf(why, whysz, "proxy_user_header must be a "
			    "header name of letters, digits and '-'");
			return EHX_ERR_CONFIG;
		}
		snprintf(c->proxy_user_header, sizeof(c->proxy_user_header),
		    "%s", value);
		return 0;
	}
	if (strcmp(key, "idle_minutes") == 0) {
		if ((r = ehx_conf_int(value, 1, 480, &v, why, whysz)) != 0)
			return r;
		c->idle_ms = v * 60000;
		return 0;
	}
	if (strcmp(key, "idle_seconds") == 0) {
		if ((r = ehx_conf_int(value, 5, 28800, &v, why, whysz)) != 0)
			return r;
		c->idle_ms = v * 1000;
		return 0;
	}
	if (strcmp(key, "session_hours") == 0) {
		if ((r = ehx_conf_int(value, 1, 24, &v, why, whysz)) != 0)
			return r;
		c->session_max_ms = v * 3600000;
		return 0;
	}
	if (strcmp(key, "threads") == 0)
		return ehx_conf_int(value, 1, 32, &c->threads, why, whysz);
	if (strcmp(key, "login_failures") == 0)
		return ehx_conf_int(value, 1, 100, &c->login_failures, why,
		    whysz);
	if (strcmp(key, "account_failures") == 0)
		return ehx_conf_int(value, 1, 10000, &c->account_failures, why,
		    whysz);
	if (strcmp(key, "lockout_minutes") == 0) {
		if ((r = ehx_conf_int(value, 1, 1440, &v, why, whysz)) != 0)
			return r;
		c->lockout_ms = v * 60000;
		return 0;
	}
	snprintf(why, whysz, "unknown key \"%.40s\" in [console]", key);
	return EHX_ERR_CONFIG;
}

static int
on_key(void *user, const char *section, const char *key, const char *value,
    char *why, size_t whysz)
{
	struct agent_config *c = user;
	long long v;
	int r;

	if (strcmp(section, "console") == 0)
		return console_key(&c->console, c->file, key, value, why, whysz);
	if (strcmp(section, "agent") != 0) {
		snprintf(why, whysz, "unknown section [%.40s]; the agent's "
		    "config has [agent] and [console]", section);
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
	if (strcmp(key, "audit_poll_seconds") == 0) {
		if ((r = ehx_conf_int(value, 1, 3600, &v, why, whysz)) != 0)
			return r;
		c->audit_poll_ms = v * 1000;
		return 0;
	}
	if (strcmp(key, "audit_deadline_seconds") == 0) {
		if ((r = ehx_conf_int(value, 2, 604800, &v, why, whysz)) != 0)
			return r;
		c->audit_deadline_ms = v * 1000;
		return 0;
	}
	if (strcmp(key, "cosign_quorum") == 0)
		return ehx_conf_int(value, 0, EHX_MAX_COSIGNERS,
		    &c->cosign_quorum, why, whysz);
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
	c->audit_poll_ms = 60000;
	c->audit_deadline_ms = 900000;
	c->cosign_quorum = 2;
	c->retry_max_ms = 10000;
	c->log_level = EHX_LOG_INFO;
	c->console.idle_ms = 15 * 60000;
	c->console.session_max_ms = 12 * 3600000LL;
	c->console.threads = 4;
	c->console.login_failures = 5;
	c->console.account_failures = 0;        /* 4 x login_failures */
	c->console.lockout_ms = 15 * 60000;
	snprintf(c->console.tls_priorities, sizeof(c->console.tls_priorities),
	    "%s", "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2");
	if ((r = ehx_conf_parse(path, on_key, c, err, errsz)) != 0)
		return r;
	if ((r = ehx_conf_check_required(path, "agent", c, required,
	    sizeof(required) / sizeof(required[0]), err, errsz)) != 0)
		return r;
	if ((c->console.certificate[0] == '\0') !=
	    (c->console.key[0] == '\0')) {
		snprintf(err, errsz, "%s: [console] needs both certificate and "
		    "key for TLS, or neither", path);
		return EHX_ERR_CONFIG;
	}
	if (c->audit_deadline_ms < 2 * c->audit_poll_ms) {
		snprintf(err, errsz, "%s: audit_deadline_seconds must be at "
		    "least twice audit_poll_seconds: the agent asks the broker "
		    "every audit_poll_seconds", path);
		return EHX_ERR_CONFIG;
	}
	if (c->console.account_failures == 0)
		c->console.account_failures = 4 * c->console.login_failures;
	if ((c->console.trusted_proxy[0] == '\0') !=
	    (c->console.proxy_user_header[0] == '\0')) {
		snprintf(err, errsz, "%s: [console] needs both trusted_proxy and "
		    "proxy_user_header, or neither", path);
		return EHX_ERR_CONFIG;
	}
	return 0;
}

