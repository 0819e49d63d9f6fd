/*
 * fuzz_registry — the broker's registry (broker/registry.c: agency ids,
 * types, certificates checked against the partnership CA, CURVE keys), its
 * config file (broker/config.c) and the agent's (agent/config.c), each read
 * from the input written to a file, as the daemons read them: any file
 * either loads into entries that stay in bounds, or is refused with a
 * sentence.
 *
 * So that mutations reach past the certificate checks, a throw-away
 * partnership is made once with certs/ehx-pki (run from the repository
 * root, as `make fuzz` does) in a temporary directory: a CA and the
 * agencies police and school, whose files the seeds name by the paths the
 * script writes (agencies/ID/ID.crt, agencies/ID/curve.pub).
 */
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../agent/config.h"
#include "../../broker/config.h"
#include "../../broker/registry.h"
#include "ehx/crypto.h"
#include "ehx/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];
static struct ehx_ca *ca;

static void
cleanup(void)
{
	char cmd[96];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		return;
}

static void
setup(void)
{
	char cmd[512], path[128];

	snprintf(dir, sizeof(dir), "/tmp/ehx-fuzz-registry.XXXXXX");
	if (mkdtemp(dir) == NULL)
		abort();
	atexit(cleanup);
	snprintf(cmd, sizeof(cmd), "certs/ehx-pki ca %s >/dev/null && "
	    "certs/ehx-pki agency %s police police >/dev/null && "
	    "certs/ehx-pki agency %s school school >/dev/null", dir, dir, dir);
	snprintf(path, sizeof(path), "%s/ca/ca.crt", dir);
	if (system(cmd) != 0 || ehx_ca_load(path, &ca) != 0)
		abort();
	ehx_log_level_current = -1;     /* quiet: nothing logged */
}

static int
put(const char *path, const uint8_t *data, size_t size)
{
	FILE *f;

	if ((f = fopen(path, "w")) == NULL)
		return -1;
	fwrite(data, 1, size, f);
	return fclose(f);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct registry reg;
	struct broker_config cfg;
	char path[128], err[512];

	if (ca == NULL)
		setup();
	snprintf(path, sizeof(path), "%s/registry.ini", dir);
	if (put(path, data, size) != 0)
		return 0;
	memset(&reg, 0, sizeof(reg));
	if (registry_load(path, ca, &reg, err, sizeof(err)) == 0) {
		for (size_t i = 0; i < reg.n; i++) {
			const struct agency *a = &reg.agencies[i];

			if (registry_by_id(&reg, a->id) != a ||
			    a->ncerts == 0 || a->ncerts > BROKER_MAX_CERTS)
				abort();
			for (size_t k = 0; k < a->ncerts; k++) {
				const struct ehx_cert *c = NULL;

				if (registry_by_fpr(&reg,
				    ehx_cert_fpr(a->certs[k]), &c) != a ||
				    c != a->certs[k])
					abort();
			}
			if (registry_by_curve(&reg, a->curve_pub) != a)
				abort();
		}
		registry_free(&reg);
	}
	snprintf(path, sizeof(path), "%s/broker.conf", dir);
	if (put(path, data, size) != 0)
		return 0;
	memset(&cfg, 0, sizeof(cfg));
	(void)broker_config_load(path, &cfg, err, sizeof(err));
	{
		struct agent_config ac;

		snprintf(path, sizeof(path), "%s/agent.conf", dir);
		if (put(path, data, size) == 0 && agent_config_load(path, &ac,
		    err, sizeof(err)) == 0 && (ac.timeout_ms < 1000 ||
		    ac.poll_ms < 1000 || ac.socket_mode < 0600))
			abort();        /* a bound not kept */
	}
	return 0;
}
