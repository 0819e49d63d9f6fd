/*
 * test_config — the broker's configuration file (broker/config.c): every
 * key, the defaults, paths relative to the file, bounds, and errors that
 * name the file and line.
 */
#include "testutil.h"

#include "../../broker/config.h"
#include "ehx/err.h"
#include "ehx/log.h"

static char tmpdir[PATH_MAX];

static int
setup(void **state)
{
	(void)state;
	return tu_mkdtemp(tmpdir, sizeof(tmpdir), "config");
}

static int
teardown(void **state)
{
	(void)state;
	tu_rmtree(tmpdir);
	return 0;
}

#define REQUIRED \
	"listen = tcp://127.0.0.1:7000\n" \
	"data_dir = data\n" \
	"certificate = broker.crt\n" \
	"key = broker.key\n" \
	"curve_key = curve.key\n" \
	"ca = ../ca/ca.crt\n" \
	"registry = /etc/ehx/registry.ini\n" \
	"pseudonym_key = pseudonym.key\n" \
	"policy = policy.ini\n"

static int
load_text(const char *text, struct broker_config *c, char *err, size_t errsz,
    char *path, size_t pathsz)
{
	tu_join(path, pathsz, tmpdir, "broker.conf");
	assert_int_equal(tu_write(path, text, strlen(text), 0644), 0);
	err[0] = '\0';
	return broker_config_load(path, c, err, errsz);
}

static void
test_minimal(void **state)
{
	struct broker_config c;
	char path[PATH_MAX], err[512], want[PATH_MAX + 64];

	(void)state;
	assert_int_equal(load_text("[broker]\n" REQUIRED, &c, err, sizeof(err),
	    path, sizeof(path)), 0);
	assert_string_equal(c.file, path);
	/* Defaults. */
	assert_string_equal(c.id, "broker");
	assert_int_equal(c.skew_ms, 300 * 1000);
	assert_int_equal(c.map_size, 1024LL * 1024 * 1024);
	assert_int_equal(c.log_level, EHX_LOG_INFO);
	assert_string_equal(c.endpoint_file, "");
	assert_int_equal(c.checkpoint_records, 1000);
	assert_int_equal(c.checkpoint_seconds, 60);
	assert_int_equal(c.retention_flag_days, 0);
	assert_int_equal(c.verify_threads, -1);         /* cores - 1 */
	/* Values; paths relative to the file's directory. */
	assert_string_equal(c.listen, "tcp://127.0.0.1:7000");
	snprintf(want, sizeof(want), "%s/data", tmpdir);
	assert_string_equal(c.data_dir, want);
	snprintf(want, sizeof(want), "%s/broker.key", tmpdir);
	assert_string_equal(c.key, want);
	snprintf(want, sizeof(want), "%s/../ca/ca.crt", tmpdir);
	assert_string_equal(c.ca, want);
	assert_string_equal(c.registry, "/etc/ehx/registry.ini");
}

static void
test_all_keys(void **state)
{
	struct broker_config c;
	char path[PATH_MAX], err[512], want[PATH_MAX + 64];

	(void)state;
	assert_int_equal(load_text("[broker]\n" REQUIRED
	    "id = broker-north_1\n"
	    "endpoint_file = endpoint\n"
	    "skew_seconds = 5\n"
	    "map_size_mb = 1\n"
	    "log_level = debug\n"
	    "checkpoint_records = 16\n"
	    "checkpoint_seconds = 5\n"
	    "retention_closed_flag_days = 2190\n"
	    "retention_consent_days = 365\n"
	    "retention_evidence_days = 730\n"
	    "verify_threads = 0\n",
	    &c, err, sizeof(err), path, sizeof(path)), 0);
	assert_int_equal(c.verify_threads, 0);
	assert_int_equal(c.checkpoint_records, 16);
	assert_int_equal(c.checkpoint_seconds, 5);
	assert_int_equal(c.retention_flag_days, 2190);
	assert_int_equal(c.retention_consent_days, 365);
	assert_int_equal(c.retention_evidence_days, 730);
	snprintf(want, sizeof(want), "%s/policy.ini", tmpdir);
	assert_string_equal(c.policy, want);
	assert_string_equal(c.id, "broker-north_1");
	snprintf(want, sizeof(want), "%s/endpoint", tmpdir);
	assert_string_equal(c.endpoint_file, want);
	assert_int_equal(c.skew_ms, 5000);
	assert_int_equal(c.map_size, 1024 * 1024);
	assert_int_equal(c.log_level, EHX_LOG_DEBUG);
	assert_int_equal(load_text("[broker]\n" REQUIRED
	    "skew_seconds = 3600\nmap_size_mb = 1048576\nverify_threads = 64\n",
	    &c, err, sizeof(err), path, sizeof(path)), 0);
	assert_int_equal(c.verify_threads, 64);
	assert_int_equal(c.skew_ms, 3600 * 1000);
	assert_int_equal(c.map_size, 1024LL * 1024 * 1024 * 1024);
}

static void
test_required(void **state)
{
	static const char *const keys[] = { "listen", "data_dir", "certificate",
	    "key", "curve_key", "ca", "registry", "pseudonym_key", "policy" };
	struct broker_config c;
	char path[PATH_MAX], err[512], want[PATH_MAX + 64], text[1024];

	(void)state;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		/* REQUIRED without the line for keys[i]. */
		const char *all = REQUIRED, *p = all;
		size_t n = 0;

		text[0] = '\0';
		strcat(text, "[broker]\n");
		while (*p) {
			const char *eol = strchr(p, '\n');
			size_t klen = strlen(keys[i]);

			if (!(strncmp(p, keys[i], klen) == 0 && p[klen] == ' '))
				strncat(text, p, (size_t)(eol - p + 1));
			p = eol + 1;
			n++;
		}
		assert_int_equal(n, 9);
		assert_int_equal(load_text(text, &c, err, sizeof(err), path,
		    sizeof(path)), EHX_ERR_CONFIG);
		snprintf(want, sizeof(want), "%s: [broker] %s is required", path,
		    keys[i]);
		assert_string_equal(err, want);
	}
	assert_int_equal(load_text("", &c, err, sizeof(err), path,
	    sizeof(path)), EHX_ERR_CONFIG);
	snprintf(want, sizeof(want), "%s: [broker] listen is required", path);
	assert_string_equal(err, want);
}

static void
test_bad_lines(void **state)
{
	static const struct {
		const char *text;
		int line;
		const char *what;
	} bad[] = {
		{ "[agent]\nlisten = x\n", 2, "unknown section [agent]" },
		{ "listen = x\n", 1, "unknown section []" },
		{ "[broker]\nport = 7000\n", 2, "unknown key \"port\"" },
		{ "[broker]\nid = Broker\n", 2, "id must be" },
		{ "[broker]\nid = -broker\n", 2, "id must be" },
		{ "[broker]\nskew_seconds = 4\n", 2, "5..3600" },
		{ "[broker]\nskew_seconds = 3601\n", 2, "5..3600" },
		{ "[broker]\nskew_seconds = five\n", 2, "not a whole number" },
		{ "[broker]\nmap_size_mb = 0\n", 2, "1..1048576" },
		{ "[broker]\nverify_threads = -1\n", 2, "0..64" },
		{ "[broker]\nverify_threads = 65\n", 2, "0..64" },
		{ "[broker]\nmap_size_mb = 1048577\n", 2, "1..1048576" },
		{ "[broker]\nlog_level = loud\n", 2, "log_level must be" },
		{ "[broker]\nlisten =\n", 2, "printable" },
		{ "[broker]\ndata_dir =\n", 2, "the path is empty" },
		{ "[broker]\n\n\nkey\n", 4, "not a \"key = value\"" },
	};
	struct broker_config c;
	char path[PATH_MAX], err[512], want[PATH_MAX + 32];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (load_text(bad[i].text, &c, err, sizeof(err), path,
		    sizeof(path)) != EHX_ERR_CONFIG)
			fail_msg("accepted: %s", bad[i].text);
		snprintf(want, sizeof(want), "%s:%d: ", path, bad[i].line);
		if (strncmp(err, want, strlen(want)) != 0 ||
		    strstr(err, bad[i].what) == NULL)
			fail_msg("\"%s\" for: %s", err, bad[i].text);
	}
	/* A missing file. */
	tu_join(path, sizeof(path), tmpdir, "none.conf");
	assert_int_equal(broker_config_load(path, &c, err, sizeof(err)),
	    EHX_ERR_CONFIG);
	assert_true(strncmp(err, path, strlen(path)) == 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_minimal),
		cmocka_unit_test(test_all_keys),
		cmocka_unit_test(test_required),
		cmocka_unit_test(test_bad_lines),
	};

	return cmocka_run_group_tests_name("test_config", tests, setup,
	    teardown);
}
