/*
 * users.c — the agent's users file: which local accounts may use the agent,
 * the person each is, and the roles each is granted. The agent learns the
 * caller's uid from the kernel (SO_PEERCRED), never from the caller, so a
 * caller can act only as itself, and only in a role granted here.
 *
 *   [alice]
 *   id = A.Smith
 *   name = Alice Smith
 *   roles = practitioner, information_officer
 *   password = $argon2id$v=19$m=65536,t=2,p=1$...   (optional: the console)
 *   locality = east      (optional: the only locality whose right early
 *                         help lists this person may ask for)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "users.h"
#include "ehx/conf.h"
#include "ehx/err.h"
#include "ehx/names.h"
#include "ehx/util.h"

static bool
account_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > EHX_MAX_ACCOUNT || s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-' ||
		    s[i] == '.'))
			return false;
	return true;
}

static int
parse_roles(const char *value, struct user *u, char *why, size_t whysz)
{
	char buf[256], *tok, *save = NULL;

	if (strlen(value) >= sizeof(buf)) {
		snprintf(why, whysz, "roles: too long");
		return EHX_ERR_CONFIG;
	}
	snprintf(buf, sizeof(buf), "%s", value);
	u->roles = 0;
	u->default_role = 0;
	for (tok = strtok_r(buf, ", ", &save); tok != NULL;
	    tok = strtok_r(NULL, ", ", &save)) {
		int r = ehx_role_parse(tok);

		if (r < 0) {
			snprintf(why, whysz, "unknown role \"%.40s\" (system, "
			    "practitioner, information_officer, ig_officer, "
			    "admin)", tok);
			return EHX_ERR_CONFIG;
		}
		if (u->default_role == 0)
			u->default_role = r;
		u->roles |= 1u << r;
	}
	if (u->roles == 0) {
		snprintf(why, whysz, "roles: name at least one role");
		return EHX_ERR_CONFIG;
	}
	return 0;
}

static int
on_key(void *user, const char *section, const char *key, const char *value,
    char *why, size_t whysz)
{
	struct users *us = user;
	struct user *u = NULL;

	for (size_t i = 0; i < us->n; i++)
		if (strcmp(us->u[i].account, section) == 0)
			u = &us->u[i];
	if (u == NULL) {
		if (!account_ok(section)) {
			snprintf(why, whysz, "[%.40s] is not a valid local "
			    "account name", section);
			return EHX_ERR_CONFIG;
		}
		if (us->n >= EHX_MAX_USERS) {
			snprintf(why, whysz, "more than %d users", EHX_MAX_USERS);
			return EHX_ERR_CONFIG;
		}
		u = &us->u[us->n++];
		memset(u, 0, sizeof(*u));
		snprintf(u->account, sizeof(u->account), "%s", section);
	}
	if (strcmp(key, "id") == 0) {
		if (!ehx_text_ok(value, 1, EHX_MAX_USER_ID)) {
			snprintf(why, whysz, "id must be 1..%d printable "
			    "characters", EHX_MAX_USER_ID);
			return EHX_ERR_CONFIG;
		}
		snprintf(u->user_id, sizeof(u->user_id), "%s", value);
		return 0;
	}
	if (strcmp(key, "name") == 0)
		return ehx_conf_string(value, u->name, sizeof(u->name), why,
		    whysz);
	if (strcmp(key, "roles") == 0 || strcmp(key, "role") == 0)
		return parse_roles(value, u, why, whysz);
	if (strcmp(key, "password") == 0) {
		/* Only what ehx-agent --hash-password makes: Argon2id. */
		if (strncmp(value, "$argon2id$", 10) != 0 ||
		    strlen(value) > EHX_PWHASH_MAX ||
		    !ehx_text_ok(value, 1, EHX_PWHASH_MAX)) {
			snprintf(why, whysz, "password must be an Argon2id hash "
			    "made by ehx-agent --hash-password (never the "
			    "password itself)");
			return EHX_ERR_CONFIG;
		}
		/* ... at exactly its cost: a cheaper one is weaker, a dearer
		 * one could tie up the console, and either would let the time
		 * of a sign-in tell which accounts exist. */
		if (sodium_init() < 0 || crypto_pwhash_str_needs_rehash(value,
		    crypto_pwhash_OPSLIMIT_INTERACTIVE,
		    crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
			snprintf(why, whysz, "password is an Argon2id hash of "
			    "another cost; make it again with ehx-agent "
			    "--hash-password (64 MiB, two passes)");
			return EHX_ERR_CONFIG;
		}
		snprintf(u->password, sizeof(u->password), "%s", value);
		return 0;
	}
	if (strcmp(key, "locality") == 0) {
		if (!ehx_id_ok(value)) {
			snprintf(why, whysz, "locality must be 1..%d of a-z 0-9 "
			    "_ - (a locality of the sharing policy)",
			    EHX_MAX_ID);
			return EHX_ERR_CONFIG;
		}
		snprintf(u->locality, sizeof(u->locality), "%s", value);
		return 0;
	}
	if (strcmp(key, "console") == 0) {
		if (strcmp(value, "password") == 0)
			u->console = USER_CONSOLE_PASSWORD;
		else if (strcmp(value, "proxy") == 0)
			u->console = USER_CONSOLE_PROXY;
		else if (strcmp(value, "no") == 0)
			u->console = USER_CONSOLE_NO;
		else {
			snprintf(why, whysz, "console is password, proxy or no, "
			    "not \"%.40s\"", value);
			return EHX_ERR_CONFIG;
		}
		return 0;
	}
	snprintf(why, whysz, "unknown key \"%.40s\" (id, name, roles, "
	    "password, locality, console)", key);
	return EHX_ERR_CONFIG;
}

int
users_load(const char *path, struct users *us, char *err, size_t errsz)
{
	int r;

	memset(us, 0, sizeof(*us));
	if ((us->u = calloc(EHX_MAX_USERS, sizeof(*us->u))) == NULL) {
		snprintf(err, errsz, "out of memory");
		return EHX_ERR_NOMEM;
	}
	if ((r = ehx_conf_parse(path, on_key, us, err, errsz)) != 0)
		goto fail;
	for (size_t i = 0; i < us->n; i++) {
		struct user *u = &us->u[i];

		if (u->name[0] == '\0' || u->roles == 0) {
			snprintf(err, errsz, "%s: [%s] needs name and roles",
			    path, u->account);
			r = EHX_ERR_CONFIG;
			goto fail;
		}
		if (u->user_id[0] == '\0')
			snprintf(u->user_id, sizeof(u->user_id), "%s",
			    u->account);
	}
	return 0;
fail:
	users_free(us);
	return r;
}

void
users_free(struct users *us)
{
	free(us->u);
	memset(us, 0, sizeof(*us));
}

const struct user *
users_find(const struct users *us, const char *account)
{
	for (size_t i = 0; i < us->n; i++)
		if (strcmp(us->u[i].account, account) == 0)
			return &us->u[i];
	return NULL;
}

int
users_hash_password(const char *pw, size_t len, char out[EHX_PWHASH_MAX + 1])
{
	char h[crypto_pwhash_STRBYTES];

	if (len < EHX_PASSWORD_MIN || len > EHX_PASSWORD_MAX)
		return EHX_ERR_INVALID_FIELD;
	if (sodium_init() < 0 || crypto_pwhash_str(h, pw, len,
	    crypto_pwhash_OPSLIMIT_INTERACTIVE,
	    crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
		return EHX_ERR_NOMEM;
	snprintf(out, EHX_PWHASH_MAX + 1, "%s", h);
	return 0;
}

bool
users_check_password(const struct user *u, const char *pw, size_t len)
{
	if (u == NULL || u->password[0] == '\0' || len == 0 ||
	    len > EHX_PASSWORD_MAX || sodium_init() < 0)
		return false;
	return crypto_pwhash_str_verify(u->password, pw, len) == 0;
}
