/*
 * agent.h — the agent's users file (users.c), the table renderer the
 * command line uses (render.c), the notification document hooks receive
 * (notice.c, linked by the agent and the command line), and the batch
 * import's parser (import.c).
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
#define EHX_PWHASH_MAX 127      /* crypto_pwhash_STRBYTES - 1 */
#define EHX_PASSWORD_MIN 12     /* bytes */
#define EHX_PASSWORD_MAX 1024

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

/* One page of a right early help list: a table (header on the first
 * page) or one JSON object per child. */
void render_list_page(FILE *f, const Ehx__EarlyHelpListResult *r, bool json,
    bool header);

/* A subject access answer, always as one JSON document. */
void render_sar(FILE *f, const Ehx__SarResult *r);

/* The agent's own view of the broker's audit log. */
void render_agent_state(FILE *f, const Ehx__AgentState *s, bool json);

/*
 * How long ms milliseconds is, for people: "12 s", "3 min", "2 h 5 min",
 * "4 days". Negative counts as 0. Returns out (outsz bytes; 24 is enough).
 */
char *render_age(char *out, size_t outsz, int64_t ms);

/*
 * ehx status: the agent's connection to the broker, its outbox (depth, in
 * flight, the age of the oldest queued change, delivered and refused
 * totals, recent refusals), its inbox and hook, and its outbox stream.
 * now (ms) measures the ages.
 */
void render_status(FILE *f, const Ehx__AgentStatus *s, int64_t now,
    bool json);

/*
 * ehx inbox: a table of notifications (seq, received, from agency,
 * category, event, level, child, acknowledged and hooked marks) and how
 * many are new in all; or, with json, one document {"total_new", "items":
 * [notice_json() of each, with "acked_at", "hooked_at", "spooled_at" and
 * "hook_attempts" added]}. all says the list holds acknowledged ones too.
 */
void render_inbox_list(FILE *f, const Ehx__InboxList *l, bool all, bool json);

/* ehx inbox show: one notification in full, or its notice_json() document. */
void render_inbox_item(FILE *f, const Ehx__InboxItem *it, bool json);

/*
 * A change the broker acknowledged: "DONE ID." with " (unchanged)" when it
 * changed nothing and "; N agencies notified" when it raised
 * notifications; or JSON {"ok", "id", "basis", "unchanged", "notified"},
 * with "outbox" and "message_id" when q (may be NULL) says where it was
 * queued.
 */
void render_ack(FILE *f, const Ehx__Ack *a, const Ehx__Queued *q, bool json,
    const char *done);

/* A change still in the outbox, as JSON: {"queued": true, "still_queued",
 * "outbox": N, "message_id": "hex"}. */
void render_queued_json(FILE *f, const Ehx__Queued *q);

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

/* ---- import.c: ehx import's rows ---------------------------------------- */

#define IMPORT_MAX_FILE   ((size_t)256 * 1024 * 1024)  /* bytes of one file */
#define IMPORT_MAX_ROWS   1000000
#define IMPORT_MAX_ERRORS 100       /* errors kept; more are only counted */
#define IMPORT_BATCH      256       /* rows in one LocalRequest.batch */
/* A batch's rows, packed, within what the agent reads in one request. */
#define IMPORT_BATCH_BYTES EHX_MAX_MESSAGE

enum import_format { IMPORT_UNKNOWN = 0, IMPORT_CSV, IMPORT_JSONL };
enum import_action { IMPORT_PUBLISH = 1, IMPORT_CLOSE = 2 };

/* One valid row. Strings are offsets into import_rows.pool (NUL-ended);
 * use import_body() rather than reading them. */
struct import_row {
	uint32_t row;                 /* its number among the data rows, from 1 */
	uint32_t line;                /* the line it starts on, from 1 */
	uint32_t nhs, ref, practitioner, job, contact, note, reason, locality;
	uint8_t action, category, level;
	bool lead, withhold;
};

struct import_rows {
	struct import_row *row;
	size_t n, cap;
	size_t seen;                  /* data rows read, valid or not */
	size_t max_rows;              /* 0: IMPORT_MAX_ROWS (tests lower it) */
	char *pool;
	size_t pool_len, pool_cap;
};

struct import_error {
	size_t row;                   /* 0: not one row's (the header, the file) */
	size_t line;                  /* 0: not one line's */
	char why[240];
};

struct import_errors {
	struct import_error e[IMPORT_MAX_ERRORS];
	size_t n;                     /* kept in e, in file order */
	size_t total;                 /* found */
};

/* One row's request: import_body() points these into the rows' pool. */
struct import_msg {
	Ehx__Body body;
	Ehx__PublishFlag publish;
	Ehx__CloseFlag close;
	Ehx__Practitioner practitioner;
};

/* IMPORT_CSV for .csv, IMPORT_JSONL for .jsonl or .ndjson (any case),
 * else IMPORT_UNKNOWN. */
enum import_format import_format_of(const char *path);

/*
 * Parse and check len bytes of CSV (RFC 4180, a header row naming the
 * columns) or JSON lines (one object a line), each row a publish or a
 * close of this agency's flag; see `ehx help import` for the columns and
 * what is accepted. Every row is checked — its fields, then the whole
 * request with ehx_validate_request(), the broker's own rules — and a row
 * whose (action, ref) an earlier row had is refused. A UTF-8 byte order
 * mark is skipped; CRLF and LF both end lines.
 *
 * out and errs are cleared first. Valid rows go to out in file order;
 * every problem goes to errs with its row and line. Returns 0 when every
 * row is valid, EHX_ERR_INVALID_FIELD when errs holds any problem,
 * EHX_ERR_TOO_LARGE (with an error in errs too) for more than
 * IMPORT_MAX_FILE bytes or IMPORT_MAX_ROWS rows, or EHX_ERR_NOMEM. Free
 * out with import_rows_free() whatever it returns. data need not be
 * NUL-terminated and is not changed.
 */
int import_parse(const char *data, size_t len, enum import_format fmt,
    struct import_rows *out, struct import_errors *errs);
void import_rows_free(struct import_rows *r);

/* Point m at row i's request (payload only: the agent fills the rest).
 * Valid while rows is. */
void import_body(const struct import_rows *rows, size_t i,
    struct import_msg *m);

/*
 * The end of the batch that starts at row start: at most IMPORT_BATCH
 * rows whose bodies, packed into a LocalRequest's batch, take at most
 * max_bytes. Always at least one row (one row is far below the limit).
 */
size_t import_batch_end(const struct import_rows *rows, size_t start,
    size_t max_bytes);

/*
 * Print errs: "FILE: row N (line L): reason" (or "FILE: line L: reason",
 * "FILE: reason") for each kept, then "FILE: ... and K more errors". With
 * json, one document {"file", "valid": false, "errors": [{"row", "line",
 * "reason"}], "more": K}.
 */
void import_print_errors(FILE *f, const char *file,
    const struct import_errors *errs, bool json);

/*
 * The one progress line a terminal shows while an import is delivered,
 * into out: a bar, done/total, the rate per second and the time left
 * ("--:--" while there is no rate yet). elapsed_ms is since delivery
 * began.
 */
void import_progress_line(char *out, size_t outsz, uint64_t done,
    uint64_t total, int64_t elapsed_ms);

/* A refused row, for the summary. */
struct import_refusal {
	size_t row, line;
	uint64_t number;              /* its outbox number */
	int code;                     /* EHX_ERR_* */
	char what[80];
	char message[300];
};

struct import_result {
	uint64_t rows, delivered, unchanged, refused, pending;
	int64_t elapsed_ms;
	uint64_t first, last;         /* outbox numbers given (first..last) */
	bool timed_out;               /* the wait ended with rows pending */
	bool waited;                  /* false: --no-wait, queued only */
	const struct import_refusal *refusals;
	size_t n_refusals;            /* listed; refused may be more */
};

/*
 * The summary: "FILE: N rows: D delivered (U unchanged), R refused, in
 * T s", then "  row N: reason (code)" for each refusal listed (and how
 * many more), and, if the wait ended first, how many are still queued;
 * or, not waited, "FILE: N rows queued (outbox A..B); the agent delivers
 * them." With json, one document (see `ehx help import`).
 */
void import_print_summary(FILE *f, const char *file,
    const struct import_result *res, bool json);

#endif
