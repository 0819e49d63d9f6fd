/*
 * users.h — the agent's users file (users.c): the local accounts that may
 * use the agent, the roles each may take, and the Argon2id password hashes
 * the web console signs people in with.
 */
#ifndef EHX_AGENT_USERS_H
#define EHX_AGENT_USERS_H

#include <stdbool.h>
#include <stddef.h>

#include "ehx/limits.h"

#define EHX_MAX_ACCOUNT 32
#define EHX_PWHASH_MAX 127      /* crypto_pwhash_STRBYTES - 1 */
#define EHX_PASSWORD_MIN 12     /* bytes */
#define EHX_PASSWORD_MAX 1024

/* How an account may reach the web console (users file: console = ...). */
enum user_console {
	USER_CONSOLE_PASSWORD = 0,      /* signing in with its password */
	USER_CONSOLE_PROXY,             /* only as the trusted proxy names it */
	USER_CONSOLE_NO                 /* not at all */
};

/* One local account allowed to use the agent. */
struct user {
	char account[EHX_MAX_ACCOUNT + 1];   /* the local login name */
	char user_id[EHX_MAX_USER_ID + 1];   /* the person's id in the agency */
	char name[EHX_MAX_NAME + 1];
	unsigned roles;                      /* bit (1 << Ehx__Role) */
	int default_role;                    /* the first role listed */
	/* password = an Argon2id hash (libsodium's crypto_pwhash_str), for
	 * the web console; empty: this account cannot log in there. */
	char password[EHX_PWHASH_MAX + 1];
	/* locality = ...: the one locality whose right early help lists this
	 * person may ask for; empty: any. */
	char locality[EHX_MAX_ID + 1];
	/* console = password (the default) | proxy | no. */
	int console;
};

struct users {
	struct user *u;
	size_t n;
};

/*
 * Load the users file: one [account] section per local account with
 * name = ..., roles = role[, role …] (the first is the default) and an
 * optional id = ... (default: the account name). Returns 0 or
 * EHX_ERR_CONFIG with "file:line: reason" in err. Free with users_free().
 */
int users_load(const char *path, struct users *us, char *err, size_t errsz);
void users_free(struct users *us);

/* The entry for a local account, or NULL. Valid until users_free(). */
const struct user *users_find(const struct users *us, const char *account);

/*
 * Passwords for the web console. users_hash_password makes the Argon2id
 * hash a users file holds (password = ...) of a password of
 * EHX_PASSWORD_MIN..EHX_PASSWORD_MAX bytes; EHX_ERR_INVALID_FIELD if its
 * length is outside them. users_check_password is true only when u has a
 * hash and pw matches it (libsodium's comparison runs in constant time).
 */
int users_hash_password(const char *pw, size_t len,
    char out[EHX_PWHASH_MAX + 1]);
bool users_check_password(const struct user *u, const char *pw, size_t len);

#endif
