/*
 * test_registry — broker/registry.c with a PKI made by certs/ehx-pki: the
 * registry it writes loads and answers lookups by id, CURVE key and
 * certificate fingerprint; every kind of bad entry is refused with a
 * sentence that names the file (and, for a bad line, the line).
 */
#include "testutil.h"

#include "../../broker/registry.h"
#include "ehx/crypto.h"
#include "ehx/err.h"

static char dir[PATH_MAX];      /* the partnership */
static char other[PATH_MAX];    /* another CA's partnership */
static struct ehx_ca *ca;

static int
setup_inner(void **state)
{
	const char *pki;
	char path[PATH_MAX];

	(void)state;
	if ((pki = tu_pki()) == NULL ||
	    tu_mkdtemp(dir, sizeof(dir), "registry") != 0)
		return -1;
	snprintf(other, sizeof(other), "%s/other", dir);
	if (tu_sh("'%s' ca '%s' >/dev/null && '%s' broker '%s' >/dev/null && "
	    "'%s' agency '%s' police police --name 'North Yorkshire Police' "
	    ">/dev/null && '%s' agency '%s' health health >/dev/null && "
	    "'%s' agency '%s' school school >/dev/null && "
	    /* Four more police certificates (police-2 … police-5), the
	     * generated registry left as it was. */
	    "cp '%s/registry.ini' '%s/registry.saved' && "
	    "'%s' rotate '%s' police >/dev/null && "
	    "'%s' rotate '%s' police >/dev/null && "
	    "'%s' rotate '%s' police >/dev/null && "
	    "'%s' rotate '%s' police >/dev/null && "
	    "mv '%s/registry.saved' '%s/registry.ini' && "
	    "'%s' agency '%s' old housing --start 20200101000000Z "
	    "--end 20210101000000Z >/dev/null && "
	    "'%s' ca '%s' >/dev/null && '%s' agency '%s' police police "
	    ">/dev/null && '%s' agency '%s' rogue health >/dev/null",
	    pki, dir, pki, dir, pki, dir, pki, dir, pki, dir, dir, dir,
	    pki, dir, pki, dir, pki, dir, pki, dir, dir, dir, pki, dir,
	    pki, other, pki, other, pki, other) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/ca/ca.crt", dir);
	return ehx_ca_load(path, &ca) == 0 ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	ehx_ca_free(ca);
	tu_rmtree(dir);
	return 0;
}

/* Write text as DIR/name and load it. */
static int
load_text(const char *name, const char *text, struct registry *reg,
    char *err, size_t errsz, char *path, size_t pathsz)
{
	tu_join(path, pathsz, dir, name);
	assert_int_equal(tu_write(path, text, strlen(text), 0644), 0);
	err[0] = '\0';
	return registry_load(path, ca, reg, err, errsz);
}

/* err starts with "path:line: " (line 0: "path: ") and holds what. */
static void
check_err(const char *err, const char *path, int line, const char *what)
{
	char want[PATH_MAX + 32];

	if (line > 0)
		snprintf(want, sizeof(want), "%s:%d: ", path, line);
	else
		snprintf(want, sizeof(want), "%s: ", path);
	if (strncmp(err, want, strlen(want)) != 0)
		fail_msg("\"%s\" does not start with \"%s\"", err, want);
	if (strstr(err, what) == NULL)
		fail_msg("\"%s\" does not say \"%s\"", err, what);
}

static void
test_generated_registry(void **state)
{
	struct registry reg;
	const struct agency *a, *b;
	const struct ehx_cert *cert = (const struct ehx_cert *)1;
	struct ehx_cert *c = NULL;
	unsigned char curve[EHX_KEY_LEN], fpr[EHX_FPR_LEN];
	char path[PATH_MAX], err[512];

	(void)state;
	tu_join(path, sizeof(path), dir, "registry.ini");
	assert_int_equal(registry_load(path, ca, &reg, err, sizeof(err)), 0);
	assert_int_equal(reg.n, 4);

	/* By id. */
	a = registry_by_id(&reg, "police");
	assert_non_null(a);
	assert_string_equal(a->id, "police");
	assert_string_equal(a->name, "North Yorkshire Police");
	assert_int_equal(a->type, EHX__AGENCY_TYPE__AGENCY_TYPE_POLICE);
	assert_int_equal(a->ncerts, 1);
	b = registry_by_id(&reg, "health");
	assert_non_null(b);
	assert_string_equal(b->name, "health");       /* default: the id */
	assert_int_equal(b->type, EHX__AGENCY_TYPE__AGENCY_TYPE_HEALTH);
	assert_int_equal(registry_by_id(&reg, "school")->type,
	    EHX__AGENCY_TYPE__AGENCY_TYPE_SCHOOL);
	/* An expired certificate is registered; dates are checked later. */
	assert_non_null(registry_by_id(&reg, "old"));
	assert_null(registry_by_id(&reg, "rogue"));
	assert_null(registry_by_id(&reg, "Police"));
	assert_null(registry_by_id(&reg, ""));
	assert_null(registry_by_id(&reg, "polic"));

	/* By CURVE key. */
	tu_join(path, sizeof(path), dir, "agencies/health/curve.pub");
	assert_int_equal(ehx_curve_load_public(path, curve), 0);
	assert_ptr_equal(registry_by_curve(&reg, curve), b);
	assert_memory_equal(b->curve_pub, curve, EHX_KEY_LEN);
	tu_join(path, sizeof(path), dir, "broker/curve.pub");
	assert_int_equal(ehx_curve_load_public(path, curve), 0);
	assert_null(registry_by_curve(&reg, curve));
	tu_join(path, sizeof(path), other, "agencies/police/curve.pub");
	assert_int_equal(ehx_curve_load_public(path, curve), 0);
	assert_null(registry_by_curve(&reg, curve));

	/* By certificate fingerprint. */
	tu_join(path, sizeof(path), dir, "agencies/police/police.crt");
	assert_int_equal(ehx_cert_load(path, &c), 0);
	memcpy(fpr, ehx_cert_fpr(c), EHX_FPR_LEN);
	ehx_cert_free(c);
	assert_ptr_equal(registry_by_fpr(&reg, fpr, &cert), a);
	assert_non_null(cert);
	assert_ptr_equal(cert, a->certs[0]);
	assert_string_equal(ehx_cert_cn(cert), "police");
	/* The same id from another CA is not the registered certificate. */
	tu_join(path, sizeof(path), other, "agencies/police/police.crt");
	assert_int_equal(ehx_cert_load(path, &c), 0);
	assert_null(registry_by_fpr(&reg, ehx_cert_fpr(c), &cert));
	assert_null(cert);
	ehx_cert_free(c);
	fpr[0] ^= 1;
	assert_null(registry_by_fpr(&reg, fpr, &cert));

	registry_free(&reg);
	assert_int_equal(reg.n, 0);
	assert_null(reg.agencies);
	registry_free(&reg);    /* twice is harmless */
}

static void
test_rotation(void **state)
{
	struct registry reg;
	char path[PATH_MAX], err[512];

	(void)state;
	/* Up to four certificates per agency (ehx-pki rotate's). */
	assert_int_equal(load_text("four.ini",
	    "[police]\n"
	    "type = police\n"
	    "certificate = agencies/police/police.crt\n"
	    "certificate = agencies/police/police-2.crt\n"
	    "certificate = agencies/police/police-3.crt\n"
	    "certificate = agencies/police/police-4.crt\n"
	    "curve_public = agencies/police/curve.pub\n",
	    &reg, err, sizeof(err), path, sizeof(path)), 0);
	assert_int_equal(registry_by_id(&reg, "police")->ncerts, 4);
	registry_free(&reg);
	assert_int_equal(load_text("five.ini",
	    "[police]\n"
	    "type = police\n"
	    "certificate = agencies/police/police.crt\n"
	    "certificate = agencies/police/police-2.crt\n"
	    "certificate = agencies/police/police-3.crt\n"
	    "certificate = agencies/police/police-4.crt\n"
	    "certificate = agencies/police/police-5.crt\n"
	    "curve_public = agencies/police/curve.pub\n",
	    &reg, err, sizeof(err), path, sizeof(path)), EHX_ERR_CONFIG);
	check_err(err, path, 7, "more than 4 certificates");
	assert_int_equal(reg.n, 0);
	/* Sections may be split; keys gather under the id. */
	assert_int_equal(load_text("split.ini",
	    "[police]\n"
	    "type = police\n"
	    "[health]\n"
	    "type = health\n"
	    "certificate = agencies/health/health.crt\n"
	    "curve_public = agencies/health/curve.pub\n"
	    "[police]\n"
	    "certificate = agencies/police/police.crt\n"
	    "curve_public = agencies/police/curve.pub\n",
	    &reg, err, sizeof(err), path, sizeof(path)), 0);
	assert_int_equal(reg.n, 2);
	registry_free(&reg);
}

static void
test_bad_lines(void **state)
{
	static const struct {
		const char *text;
		int line;
		const char *what;
	} bad[] = {
		{ "[police]\ntype = wizard\n", 2, "unknown agency type \"wizard\"" },
		{ "[police]\ntype = Police\n", 2, "unknown agency type" },
		{ "[health]\ntype = police\n"
		  "certificate = agencies/police/police.crt\n", 3,
		  "names agency \"police\", not \"health\"" },
		{ "[police]\ntype = police\n"
		  "certificate = other/agencies/police/police.crt\n", 3,
		  "not issued by the partnership CA" },
		{ "[rogue]\ntype = health\n"
		  "certificate = other/agencies/rogue/rogue.crt\n", 3,
		  "not issued by the partnership CA" },
		{ "[police]\ntype = police\n"
		  "certificate = agencies/police/missing.crt\n", 3,
		  "not a readable Ed25519 certificate" },
		{ "[police]\ntype = police\n"
		  "certificate = agencies/police/curve.pub\n", 3,
		  "not a readable Ed25519 certificate" },
		{ "[police]\ntype = police\n"
		  "curve_public = agencies/police/police.crt\n", 3,
		  "not a readable X25519 public key" },
		{ "[police]\ntype = police\n"
		  "curve_public = agencies/police/police.key\n", 3,
		  "not a readable X25519 public key" },
		{ "[police]\ntype = police\ncurve_public =\n", 3, "empty" },
		{ "[Police!]\ntype = police\n", 2, "[Police!] is not a valid agency id" },
		{ "[]\ntype = police\n", 2, "is not a valid agency id" },
		{ "type = police\n", 1, "is not a valid agency id" },
		{ "[aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]\ntype = police\n", 2,
		  "is not a valid agency id" },
		{ "[police]\ntype = police\ncolour = blue\n", 3,
		  "unknown key \"colour\"" },
		{ "[police]\nname = a\x01b\n", 2, "printable" },
		{ "[police]\njunk\n", 2, "not a \"key = value\"" },
		/* One certificate listed twice (found by fuzz_registry:
		 * lookups by fingerprint would see only the first). */
		{ "[police]\ntype = police\n"
		  "certificate = agencies/police/police.crt\n"
		  "[police]\ncertificate = agencies/police/police.crt\n", 5,
		  "this certificate is listed for police already" },
	};
	struct registry reg;
	char path[PATH_MAX], err[512];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (load_text("bad.ini", bad[i].text, &reg, err, sizeof(err),
		    path, sizeof(path)) != EHX_ERR_CONFIG)
			fail_msg("accepted: %s", bad[i].text);
		check_err(err, path, bad[i].line, bad[i].what);
		assert_int_equal(reg.n, 0);
		assert_null(reg.agencies);
	}
}

static void
test_bad_entries(void **state)
{
	static const struct {
		const char *text;
		const char *what;
	} bad[] = {
		/* Missing parts. */
		{ "[police]\ntype = police\n"
		  "certificate = agencies/police/police.crt\n",
		  "[police] needs type, certificate and curve_public" },
		{ "[police]\ntype = police\n"
		  "curve_public = agencies/police/curve.pub\n",
		  "[police] needs type" },
		{ "[police]\ncertificate = agencies/police/police.crt\n"
		  "curve_public = agencies/police/curve.pub\n",
		  "[police] needs type" },
		/* The type and the certificate's OU disagree. */
		{ "[police]\ntype = health\n"
		  "certificate = agencies/police/police.crt\n"
		  "curve_public = agencies/police/curve.pub\n",
		  "[police] is type health but its certificate says police" },
		/* The broker's certificate is not an agency's. */
		{ "[broker]\ntype = police\n"
		  "certificate = broker/broker.crt\n"
		  "curve_public = broker/curve.pub\n",
		  "its certificate says broker" },
		/* Two agencies, one CURVE key. */
		{ "[police]\ntype = police\n"
		  "certificate = agencies/police/police.crt\n"
		  "curve_public = agencies/police/curve.pub\n"
		  "[health]\ntype = health\n"
		  "certificate = agencies/health/health.crt\n"
		  "curve_public = agencies/police/curve.pub\n",
		  "[police] and [health] share a CURVE key" },
		/* Nothing at all. */
		{ "", "no agencies" },
		{ "# only a comment\n", "no agencies" },
	};
	struct registry reg;
	char path[PATH_MAX], err[512];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (load_text("entries.ini", bad[i].text, &reg, err, sizeof(err),
		    path, sizeof(path)) != EHX_ERR_CONFIG)
			fail_msg("accepted: %s", bad[i].text);
		check_err(err, path, 0, bad[i].what);
		assert_int_equal(reg.n, 0);
	}
	/* A registry file that is not there. */
	tu_join(path, sizeof(path), dir, "no-registry.ini");
	assert_int_equal(registry_load(path, ca, &reg, err, sizeof(err)),
	    EHX_ERR_CONFIG);
	check_err(err, path, 0, strerror(ENOENT));
}

/* Paths are relative to the registry file, wherever it is. */
static void
test_relative_paths(void **state)
{
	struct registry reg;
	char sub[PATH_MAX], path[PATH_MAX], err[512];

	(void)state;
	tu_join(sub, sizeof(sub), dir, "conf");
	assert_true(mkdir(sub, 0700) == 0 || errno == EEXIST);
	tu_join(path, sizeof(path), sub, "registry.ini");
	assert_int_equal(tu_writef(path, 0644,
	    "[health]\ntype = health\n"
	    "certificate = ../agencies/health/health.crt\n"
	    "curve_public = %s/agencies/health/curve.pub\n", dir), 0);
	assert_int_equal(registry_load(path, ca, &reg, err, sizeof(err)), 0);
	assert_int_equal(reg.n, 1);
	registry_free(&reg);
	/* The same relative path from the partnership directory is wrong. */
	assert_int_equal(load_text("rel.ini",
	    "[health]\ntype = health\n"
	    "certificate = ../agencies/health/health.crt\n", &reg, err,
	    sizeof(err), path, sizeof(path)), EHX_ERR_CONFIG);
	check_err(err, path, 3, "not a readable");
}

/* A setup that fails half-way leaves nothing behind. */
static int
setup(void **state)
{
	if (setup_inner(state) != 0) {
		teardown(state);
		return -1;
	}
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_generated_registry),
		cmocka_unit_test(test_rotation),
		cmocka_unit_test(test_bad_lines),
		cmocka_unit_test(test_bad_entries),
		cmocka_unit_test(test_relative_paths),
	};

	return cmocka_run_group_tests_name("test_registry", tests, setup,
	    teardown);
}
