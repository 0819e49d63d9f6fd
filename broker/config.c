/*
 * config.c — the broker's configuration file. Every key is known and
 * checked; paths are relative to the file. See docs/OPERATIONS.md.
 */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "ehx/conf.h"
#include "ehx/err.h"
#include "ehx/log.h"
#include "ehx/util.h"

static int
on_key(void *user, const char *section, const char *key, const char *value,
    char *why, size_t whysz)
{
	struct broker_config *c = user;
	long long v;
	int r;

	if (strcmp(section, "broker") != 0) {
		snprintf(why, whysz, "unknown section [%.40s]; the broker's "
		    "config has only [broker]", section);
		return EHX_ERR_CONFIG;
	}
#define PATH(name) \
	if (strcmp(key, #name) == 0) \
		return ehx_conf_path(c->file, value, c->name, sizeof(c->name), \
		    why, whysz)
	PATH(data_dir);
	PATH(certificate);
	PATH(key);
	PATH(curve_key);
	PATH(ca);
	PATH(registry);
	PATH(pseudonym_key);
	PATH(matching_key);
	PATH(endpoint_file);
	PATH(policy);
	PATH(crl);
#undef PATH
	if (strcmp(key, "id") == 0) {
		if (!ehx_id_ok(value)) {
			snprintf(why, whysz, "id must be 1..%d of a-z 0-9 _ -",
			    EHX_MAX_ID);
			return EHX_ERR_CONFIG;
		}
		snprintf(c->id, sizeof(c->id), "%s", value);
		return 0;
	}
	if (strcmp(key, "user") == 0)
		return ehx_conf_string(value, c->user, sizeof(c->user), why,
		    whysz);
	if (strcmp(key, "listen") == 0)
		return ehx_conf_string(value, c->listen, sizeof(c->listen), why,
		    whysz);
	if (strcmp(key, "skew_seconds") == 0) {
		if ((r = ehx_conf_int(value, 5, 3600, &v, why, whysz)) != 0)
			return r;
		c->skew_ms = v * 1000;
		return 0;
	}
	if (strcmp(key, "rate_per_second") == 0)
		return ehx_conf_int(value, 1, 1000000, &c->rate_per_second,
		    why, whysz);
	if (strcmp(key, "rate_burst") == 0)
		return ehx_conf_int(value, 1, 10000000, &c->rate_burst, why,
		    whysz);
	if (strcmp(key, "verify_threads") == 0)
		return ehx_conf_int(value, 0, 64, &c->verify_threads, why,
		    whysz);
	if (strcmp(key, "map_size_mb") == 0) {
		if ((r = ehx_conf_int(value, 1, 1024 * 1024, &v, why, whysz)) != 0)
			return r;
		c->map_size = v * 1024 * 1024;
		return 0;
	}
	if (strcmp(key, "checkpoint_records") == 0)
		return ehx_conf_int(value, 1, 1000000, &c->checkpoint_records,
		    why, whysz);
	if (strcmp(key, "checkpoint_seconds") == 0)
		return ehx_conf_int(value, 1, 86400, &c->checkpoint_seconds,
		    why, whysz);
	if (strcmp(key, "retention_closed_flag_days") == 0)
		return ehx_conf_int(value, 0, 36500, &c->retention_flag_days,
		    why, whysz);
	if (strcmp(key, "retention_consent_days") == 0)
		return ehx_conf_int(value, 0, 36500, &c->retention_consent_days,
		    why, whysz);
	if (strcmp(key, "retention_evidence_days") == 0)
		return ehx_conf_int(value, 0, 36500,
		    &c->retention_evidence_days, why, whysz);
	if (strcmp(key, "log_level") == 0)
		return ehx_conf_log_level(value, &c->log_level, why, whysz);
	snprintf(why, whysz, "unknown key \"%.40s\"", key);
	return EHX_ERR_CONFIG;
}

int
broker_config_load(const char *path, struct broker_config *c, char *err,
    size_t errsz)
{
	static const struct ehx_conf_required required[] = {
		{ "listen", offsetof(struct broker_config, listen) },
		{ "data_dir", offsetof(struct broker_config, data_dir) },
		{ "certificate", offsetof(struct broker_config, certificate) },
		{ "key", offsetof(struct broker_config, key) },
		{ "curve_key", offsetof(struct broker_config, curve_key) },
		{ "ca", offsetof(struct broker_config, ca) },
		{ "registry", offsetof(struct broker_config, registry) },
		{ "pseudonym_key", offsetof(struct broker_config, pseudonym_key) },
		{ "policy", offsetof(struct broker_config, policy) },
	};
	int r;

	memset(c, 0, sizeof(*c));
	if ((size_t)snprintf(c->file, sizeof(c->file), "%s", path) >=
	    sizeof(c->file)) {
		snprintf(err, errsz, "%s: path too long", path);
		return EHX_ERR_CONFIG;
	}
	snprintf(c->id, sizeof(c->id), "broker");
	c->skew_ms = 300 * 1000;
	c->rate_per_second = 1000;
	c->rate_burst = 2000;
	c->verify_threads = -1;         /* one per core but the serving one's */
	c->map_size = 1024LL * 1024 * 1024;
	c->log_level = EHX_LOG_INFO;
	c->checkpoint_records = 1000;
	c->checkpoint_seconds = 60;
	if ((r = ehx_conf_parse(path, on_key, c, err, errsz)) != 0)
		return r;
	return ehx_conf_check_required(path, "broker", c, required,
	    sizeof(required) / sizeof(required[0]), err, errsz);
}
