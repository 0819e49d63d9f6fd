/*
 * render.h — what the ehx command prints (render.c): broker replies as
 * tables for people, CSV or JSON. The web console reuses the audit page's
 * CSV, so a download is what `ehx audit --csv` prints.
 */
#ifndef EHX_CLI_RENDER_H
#define EHX_CLI_RENDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ehx.pb-c.h"

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

#endif
