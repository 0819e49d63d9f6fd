/*
 * import.h — ehx import's rows (import.c): a CSV or JSON-lines file of
 * publishes and closes parsed and checked with the broker's own rules,
 * batched for the agent, and the summary of what was delivered.
 */
#ifndef EHX_CLI_IMPORT_H
#define EHX_CLI_IMPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ehx.pb-c.h"
#include "ehx/limits.h"

#define IMPORT_MAX_FILE   ((size_t)256 * 1024 * 1024)  /* bytes of one file */
#define IMPORT_MAX_ROWS   1000000
#define IMPORT_MAX_ERRORS 100       /* errors kept; more are only counted */
#define IMPORT_BATCH      256       /* rows in one LocalRequest.batch */
/* A batch's rows, packed, within what the agent reads in one request. */
#define IMPORT_BATCH_BYTES EHX_MAX_MESSAGE

enum import_format { IMPORT_UNKNOWN = 0, IMPORT_CSV, IMPORT_JSONL };
enum import_action { IMPORT_PUBLISH = 1, IMPORT_CLOSE = 2,
	IMPORT_INVOLVEMENT = 3 };

/* One valid row. Strings are offsets into import_rows.pool (NUL-ended);
 * use import_body() rather than reading them. */
struct import_row {
	uint32_t row;                 /* its number among the data rows, from 1 */
	uint32_t line;                /* the line it starts on, from 1 */
	uint32_t nhs, ref, practitioner, job, contact, note, reason, locality;
	/* the child as the agency knows them (PROTOCOL §10.3); any set
	 * means the row names the child by identity */
	uint32_t upn, local_id, given, family, dob, postcode, uprn;
	uint32_t from, until;         /* an involvement's dates */
	uint8_t action, category, level, sex, kind;
	bool lead, withhold, identity;
};

struct import_rows {
	struct import_row *row;
	size_t n, cap;
	size_t seen;                  /* data rows read, valid or not */
	size_t max_rows;              /* 0: IMPORT_MAX_ROWS (tests lower it) */
	bool roll;                    /* a school's roll: each row, unless it
	                               * says otherwise, an involvement of kind
	                               * enrolled from today */
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
	Ehx__ChildIdentity child;
	Ehx__RecordInvolvement involvement;
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
