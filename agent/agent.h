/*
 * agent.h — the agent's users file (users.c), the table renderer the
 * command line uses (render.c), and the notification document hooks
 * receive (notice.c, linked by the agent and the command line).
 */
#ifndef EHX_AGENT_H
#define EHX_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ehx.pb-c.h"
#include "ehx/limits.h"

#define EHX_MAX_ACCOUNT 32

/* One local account allowed to use the agent. */
struct user {
	char account[EHX_MAX_ACCOUNT + 1];   /* the local login name */
	char user_id[EHX_MAX_USER_ID + 1];   /* the person's id in the agency */
	char name[EHX_MAX_NAME + 1];
	unsigned roles;                      /* bit (1 << Ehx__Role) */
	int default_role;                    /* the first role listed */
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

/* ---- render.c: what the ehx command prints ------------------------------ */

/*
 * Print a broker reply (its payload) as a table for people, or as JSON:
 * a picture, consent records (and their history), an ack, one page of
 * audit records, alerts or disclosures (with its header), a subject
 * access answer (always JSON), or an export page (only counted: it is
 * binary).
 */
void render_reply(FILE *f, const Ehx__Body *reply, bool json, const char *nhs);

/*
 * s with every byte that could drive a terminal (control characters, C1
 * controls, bidirectional overrides, broken UTF-8) replaced by '?'.
 * Returns one of eight rotating static buffers: valid until the eighth
 * call after this one. Text beyond about 1 KB is cut.
 */
const char *render_safe(const char *s);

/* Print an error reply: a sentence on stderr, or JSON on stdout. */
void render_error(const Ehx__Error *e, bool from_agent, bool json);

enum render_format { RENDER_TABLE, RENDER_CSV, RENDER_JSON };

/* One page of an IG answer; header before the first page's rows (tables
 * and CSV). JSON is one object per line. */
void render_audit_page(FILE *f, const Ehx__AuditResult *r,
    enum render_format fmt, bool header);
void render_alerts_page(FILE *f, const Ehx__AlertResult *r, bool json,
    bool header);
void render_disclosures_page(FILE *f, const Ehx__DisclosureResult *r,
    bool json, bool header);

/* A subject access answer, always as one JSON document. */
void render_sar(FILE *f, const Ehx__SarResult *r);

/* The agent's own view of the broker's audit log. */
void render_agent_state(FILE *f, const Ehx__AgentState *s, bool json);

/* ---- notice.c: the notification document ------------------------------- */

/*
 * The length in bytes of the one character at p if it is complete,
 * shortest-form UTF-8 that is safe to print (no C0 or C1 control, no DEL,
 * no bidirectional override), else 0. The one rule for text from outside
 * that render.c and notice.c share.
 */
int text_char_len(const unsigned char *p);

/* "new", "level_changed", "reopened" (or "unknown"); static. */
const char *notice_event_name(int event);

/*
 * The JSON document a hook receives on standard input, a spool file holds,
 * and `ehx inbox show --json` prints: {"seq", "message_id" (hex of the
 * Body inside it->envelope, null without one), "nhs_number", "agency",
 * "agency_type", "category", "event", "level" and "previous_level" (null
 * when not shown), "contact" ({"name", "job", "contact"} or null), "lead",
 * "basis", "consent_id" (null when empty), "agreement", "flagged_at" and
 * "received_at" (ISO 8601, UTC)}. Every string is filtered as render_safe()
 * does. Returns a new object the caller puts, or NULL (no notification, or
 * out of memory).
 */
struct json_object;
struct json_object *notice_json(const Ehx__InboxItem *it);

#endif
