/*
 * fuzz_conf — the INI files the daemons read (config, registry, users):
 * the bounded reader, inih, and the users file's rules. The input is
 * written to a temporary file because the daemons read files.
 */
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../../agent/users.h"
#include "ehx/conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
any_key(void *user, const char *section, const char *key, const char *value,
    char *why, size_t whysz)
{
	long long v;
	bool b;
	char buf[64], path[256];

	(void)user;
	(void)section;
	(void)ehx_conf_int(value, -5, 5000, &v, why, whysz);
	(void)ehx_conf_bool(value, &b, why, whysz);
	(void)ehx_conf_string(value, buf, sizeof(buf), why, whysz);
	(void)ehx_conf_path(key, value, path, sizeof(path), why, whysz);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[64];
	struct users us;
	char err[512];
	FILE *f;

	if (path[0] == '\0') {
		int fd;

		snprintf(path, sizeof(path), "/tmp/ehx-fuzz-conf.XXXXXX");
		if ((fd = mkstemp(path)) < 0)
			abort();
		close(fd);
	}
	if ((f = fopen(path, "w")) == NULL)
		return 0;
	fwrite(data, 1, size, f);
	fclose(f);
	(void)ehx_conf_parse(path, any_key, NULL, err, sizeof(err));
	if (users_load(path, &us, err, sizeof(err)) == 0)
		users_free(&us);
	return 0;
}
