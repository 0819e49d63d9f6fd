/*
 * test_users — the agent's users file (agent/users.c): which local
 * accounts may use the agent, as whom, and in which roles.
 */
#include "testutil.h"

#include "../../agent/users.h"
#include "ehx.pb-c.h"
#include "ehx/err.h"

static char tmpdir[PATH_MAX];

static int
setup(void **state)
{
	(void)state;
	return tu_mkdtemp(tmpdir, sizeof(tmpdir), "users");
}

static int
teardown(void **state)
{
	(void)state;
	tu_rmtree(tmpdir);
	return 0;
}

#define ROLE(r) (1u << EHX__ROLE__ROLE_##r)

static int
load_text(const char *text, struct users *us, char *err, size_t errsz,
    char *path, size_t pathsz)
{
	tu_join(path, pathsz, tmpdir, "users.ini");
	assert_int_equal(tu_write(path, text, strlen(text), 0644), 0);
	err[0] = '\0';
	return users_load(path, us, err, errsz);
}

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

/* console = password | proxy | no: how an account may reach the web
 * console (issue 16); password unless it says otherwise. */
static void
test_console_line(void **state)
{
	struct users us;
	char path[PATH_MAX], err[512];

	(void)state;
	assert_int_equal(load_text("[a]\nname = A\nroles = practitioner\n"
	    "[b]\nname = B\nroles = practitioner\nconsole = proxy\n"
	    "[c]\nname = C\nroles = practitioner\nconsole = no\n"
	    "[d]\nname = D\nroles = practitioner\nconsole = password\n",
	    &us, err, sizeof(err), path, sizeof(path)), 0);
	assert_int_equal(users_find(&us, "a")->console, USER_CONSOLE_PASSWORD);
	assert_int_equal(users_find(&us, "b")->console, USER_CONSOLE_PROXY);
	assert_int_equal(users_find(&us, "c")->console, USER_CONSOLE_NO);
	assert_int_equal(users_find(&us, "d")->console, USER_CONSOLE_PASSWORD);
	users_free(&us);
	assert_int_equal(load_text("[a]\nname = A\nroles = practitioner\n"
	    "console = sometimes\n", &us, err, sizeof(err), path,
	    sizeof(path)), EHX_ERR_CONFIG);
	check_err(err, path, 4, "console is password, proxy or no");
}

static void
test_good_file(void **state)
{
	struct users us;
	const struct user *u;
	char path[PATH_MAX], err[512];

	(void)state;
	assert_int_equal(load_text(
	    "# who may use the police agent\n"
	    "[alice]\n"
	    "id = A.Smith\n"
	    "name = Alice Smith\n"
	    "roles = information_officer, practitioner\n"
	    "\n"
	    "[bob]\n"
	    "name = Bob Jones\n"
	    "roles = practitioner\n"
	    "\n"
	    "[svc-case.system_1]\n"
	    "name = Case system\n"
	    "role = system\n"
	    "\n"
	    "[Carol]\n"
	    "name = Carol Ng\n"
	    "roles = ig_officer,admin  ,practitioner\n",
	    &us, err, sizeof(err), path, sizeof(path)), 0);
	assert_string_equal(err, "");
	assert_int_equal(us.n, 4);

	u = users_find(&us, "alice");
	assert_non_null(u);
	assert_string_equal(u->account, "alice");
	assert_string_equal(u->user_id, "A.Smith");
	assert_string_equal(u->name, "Alice Smith");
	assert_int_equal(u->roles, ROLE(INFORMATION_OFFICER) | ROLE(PRACTITIONER));
	/* The first role listed is the default. */
	assert_int_equal(u->default_role, EHX__ROLE__ROLE_INFORMATION_OFFICER);

	u = users_find(&us, "bob");
	assert_non_null(u);
	assert_string_equal(u->user_id, "bob");        /* id defaults to account */
	assert_int_equal(u->roles, ROLE(PRACTITIONER));
	assert_int_equal(u->default_role, EHX__ROLE__ROLE_PRACTITIONER);

	u = users_find(&us, "svc-case.system_1");
	assert_non_null(u);
	assert_int_equal(u->roles, ROLE(SYSTEM));
	assert_int_equal(u->default_role, EHX__ROLE__ROLE_SYSTEM);

	u = users_find(&us, "Carol");
	assert_non_null(u);
	assert_int_equal(u->roles, ROLE(IG_OFFICER) | ROLE(ADMIN) |
	    ROLE(PRACTITIONER));
	assert_int_equal(u->default_role, EHX__ROLE__ROLE_IG_OFFICER);

	/* Lookups are exact. */
	assert_null(users_find(&us, "carol"));
	assert_null(users_find(&us, "ALICE"));
	assert_null(users_find(&us, "alic"));
	assert_null(users_find(&us, ""));
	assert_null(users_find(&us, "mallory"));
	users_free(&us);
	assert_int_equal(us.n, 0);
	assert_null(users_find(&us, "alice"));
	users_free(&us);
}

static void
test_roles_replace(void **state)
{
	struct users us;
	const struct user *u;
	char path[PATH_MAX], err[512];

	(void)state;
	/* A later roles line replaces the earlier one, default included. */
	assert_int_equal(load_text(
	    "[alice]\nname = Alice\nroles = admin\nroles = practitioner\n",
	    &us, err, sizeof(err), path, sizeof(path)), 0);
	u = users_find(&us, "alice");
	assert_int_equal(u->roles, ROLE(PRACTITIONER));
	assert_int_equal(u->default_role, EHX__ROLE__ROLE_PRACTITIONER);
	users_free(&us);
	/* A role listed twice is one role; the first is still the default. */
	assert_int_equal(load_text(
	    "[alice]\nname = Alice\nroles = practitioner, system, practitioner\n",
	    &us, err, sizeof(err), path, sizeof(path)), 0);
	u = users_find(&us, "alice");
	assert_int_equal(u->roles, ROLE(PRACTITIONER) | ROLE(SYSTEM));
	assert_int_equal(u->default_role, EHX__ROLE__ROLE_PRACTITIONER);
	users_free(&us);
}

static void
test_bad_lines(void **state)
{
	static const struct {
		const char *text;
		int line;
		const char *what;
	} bad[] = {
		{ "[alice]\nname = Alice\nroles = practitioner, wizard\n", 3,
		  "unknown role \"wizard\"" },
		{ "[alice]\nname = Alice\nroles = Practitioner\n", 3,
		  "unknown role" },
		{ "[alice]\nname = Alice\nroles = information officer\n", 3,
		  "unknown role \"information\"" },
		{ "[alice]\nname = Alice\nroles = unspecified\n", 3,
		  "unknown role" },
		{ "[alice]\nname = Alice\nroles = ,\n", 3,
		  "name at least one role" },
		{ "[alice]\nname = Alice\nroles =\n", 3,
		  "name at least one role" },
		{ "[al ice]\nname = Alice\n", 2, "not a valid local account name" },
		{ "[-alice]\nname = Alice\n", 2, "not a valid local account name" },
		{ "[alice!]\nname = Alice\n", 2, "not a valid local account name" },
		{ "[al/ice]\nname = Alice\n", 2, "not a valid local account name" },
		{ "[]\nname = Alice\n", 2, "not a valid local account name" },
		{ "[aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]\nname = A\n", 2,
		  "not a valid local account name" },
		{ "name = Alice\n", 1, "not a valid local account name" },
		{ "[alice]\nname =\n", 2, "printable" },
		{ "[alice]\nname = Alice\x1b[0m\n", 2, "printable" },
		{ "[alice]\nid =\n", 2, "id must be" },
		{ "[alice]\nid = a\x01\n", 2, "id must be" },
		{ "[alice]\nuid = 1000\n", 2, "unknown key \"uid\"" },
		{ "[alice]\nname Alice\n", 2, "not a \"key = value\"" },
		/* A password line holds an Argon2id hash, never a password. */
		{ "[alice]\nname = A\nroles = practitioner\n"
		  "password = correct horse battery staple\n", 4,
		  "must be an Argon2id hash" },
		{ "[alice]\npassword = $argon2i$v=19$m=4096,t=3,p=1$c2FsdA$aGFzaA\n",
		  2, "must be an Argon2id hash" },
		{ "[alice]\npassword = $argon2id$v=19$m=65536,t=2,p=1$"
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n", 2,
		  "must be an Argon2id hash" },
		/* Another cost: weaker, or dear enough to tie up the console. */
		{ "[alice]\npassword = $argon2id$v=19$m=4096,t=1,p=1$"
		  "c29tZXNhbHRzb21lc2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g\n",
		  2, "another cost" },
		{ "[alice]\npassword = $argon2id$v=19$m=4194304,t=40,p=1$"
		  "c29tZXNhbHRzb21lc2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g\n",
		  2, "another cost" },
	};
	struct users us;
	char path[PATH_MAX], err[512];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (load_text(bad[i].text, &us, err, sizeof(err), path,
		    sizeof(path)) != EHX_ERR_CONFIG)
			fail_msg("accepted: %s", bad[i].text);
		check_err(err, path, bad[i].line, bad[i].what);
		assert_int_equal(us.n, 0);
		assert_null(us.u);
	}
}

/*
 * The web console's passwords: ehx-agent --hash-password makes an Argon2id
 * hash (users_hash_password); the users file holds it; only the password
 * it was made from matches, and an account without one never does.
 */
static void
test_passwords(void **state)
{
	static const char pw[] = "correct horse battery staple";
	struct users us;
	const struct user *u;
	char path[PATH_MAX], err[512], hash[EHX_PWHASH_MAX + 1];
	char text[512], big[EHX_PASSWORD_MAX + 2];

	(void)state;
	assert_int_equal(users_hash_password(pw, strlen(pw), hash), 0);
	assert_true(strncmp(hash, "$argon2id$", 10) == 0);
	/* Salted: the same password hashes differently each time. */
	{
		char again[EHX_PWHASH_MAX + 1];

		assert_int_equal(users_hash_password(pw, strlen(pw), again), 0);
		assert_string_not_equal(hash, again);
	}
	snprintf(text, sizeof(text), "[alice]\nname = Alice Smith\n"
	    "roles = information_officer\npassword = %s\n"
	    "[bob]\nname = Bob Jones\nroles = practitioner\n", hash);
	assert_int_equal(load_text(text, &us, err, sizeof(err), path,
	    sizeof(path)), 0);
	assert_non_null(u = users_find(&us, "alice"));
	assert_string_equal(u->password, hash);
	assert_true(users_check_password(u, pw, strlen(pw)));
	assert_false(users_check_password(u, pw, strlen(pw) - 1));
	assert_false(users_check_password(u, "Correct horse battery staple",
	    strlen(pw)));
	assert_false(users_check_password(u, "", 0));
	assert_false(users_check_password(NULL, pw, strlen(pw)));
	/* No password line: no console login, whatever is offered. */
	assert_non_null(u = users_find(&us, "bob"));
	assert_string_equal(u->password, "");
	assert_false(users_check_password(u, pw, strlen(pw)));
	assert_false(users_check_password(u, "", 0));
	users_free(&us);
	/* Lengths outside 12..1024 bytes are not hashed, nor checked. */
	memset(big, 'x', sizeof(big));
	assert_int_equal(users_hash_password("eleven char", 11, hash),
	    EHX_ERR_INVALID_FIELD);
	assert_int_equal(users_hash_password(big, EHX_PASSWORD_MAX + 1, hash),
	    EHX_ERR_INVALID_FIELD);
	assert_int_equal(users_hash_password(big, EHX_PASSWORD_MAX, hash), 0);
	{
		struct user w;

		memset(&w, 0, sizeof(w));
		snprintf(w.password, sizeof(w.password), "%s", hash);
		assert_true(users_check_password(&w, big, EHX_PASSWORD_MAX));
		assert_false(users_check_password(&w, big,
		    EHX_PASSWORD_MAX + 1));
	}
}

static void
test_missing_parts(void **state)
{
	struct users us;
	char path[PATH_MAX], err[512], text[512];

	(void)state;
	/* No name. */
	assert_int_equal(load_text("[alice]\nroles = practitioner\n", &us, err,
	    sizeof(err), path, sizeof(path)), EHX_ERR_CONFIG);
	check_err(err, path, 0, "[alice] needs name and roles");
	assert_int_equal(us.n, 0);
	/* No roles. */
	assert_int_equal(load_text("[bob]\nname = Bob\n", &us, err, sizeof(err),
	    path, sizeof(path)), EHX_ERR_CONFIG);
	check_err(err, path, 0, "[bob] needs name and roles");
	/* One good user does not excuse a bad one. */
	assert_int_equal(load_text("[alice]\nname = A\nroles = admin\n"
	    "[bob]\nid = B\n", &us, err, sizeof(err), path, sizeof(path)),
	    EHX_ERR_CONFIG);
	check_err(err, path, 0, "[bob]");
	assert_null(us.u);
	/* An empty file: no users, which is allowed (nobody may use it). */
	assert_int_equal(load_text("", &us, err, sizeof(err), path,
	    sizeof(path)), 0);
	assert_int_equal(us.n, 0);
	assert_null(users_find(&us, "alice"));
	users_free(&us);
	/* The longest account name and id. */
	snprintf(text, sizeof(text), "[%s]\nid = %s\nname = N\nroles = admin\n",
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	    "iiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiii");
	assert_int_equal(load_text(text, &us, err, sizeof(err), path,
	    sizeof(path)), 0);
	assert_int_equal(strlen(us.u[0].account), 32);
	assert_int_equal(strlen(us.u[0].user_id), 64);
	users_free(&us);
	snprintf(text, sizeof(text), "[a]\nid = %s\nname = N\nroles = admin\n",
	    "iiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiii");
	assert_int_equal(load_text(text, &us, err, sizeof(err), path,
	    sizeof(path)), EHX_ERR_CONFIG);
	check_err(err, path, 2, "id must be 1..64");
	/* A missing file. */
	tu_join(path, sizeof(path), tmpdir, "nobody.ini");
	assert_int_equal(users_load(path, &us, err, sizeof(err)),
	    EHX_ERR_CONFIG);
	check_err(err, path, 0, strerror(ENOENT));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_file),
		cmocka_unit_test(test_console_line),
		cmocka_unit_test(test_roles_replace),
		cmocka_unit_test(test_bad_lines),
		cmocka_unit_test(test_passwords),
		cmocka_unit_test(test_missing_parts),
	};

	return cmocka_run_group_tests_name("test_users", tests, setup, teardown);
}
