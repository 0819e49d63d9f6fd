/*
 * notice.h — one notification as the JSON document an agency's case
 * system receives (notice.c): the agent daemon hands it to hooks and spool
 * files, and `ehx inbox show --json` prints it.
 */
#ifndef EHX_AGENT_NOTICE_H
#define EHX_AGENT_NOTICE_H

#include "ehx.pb-c.h"

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
