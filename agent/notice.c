/*
 * notice.c — one notification as the JSON document an agency's case system
 * receives: on a hook command's standard input, in a spool file, and from
 * `ehx inbox show --json`. One function builds it for all three, so they
 * never differ.
 *
 * The notification was signed by the broker, which validates text on the
 * way in; this file does not count on it. Every string goes through the
 * same filter as everything `ehx` prints (ehx_text_char_len()), so the document
 * is valid UTF-8 with no control characters, whatever the bytes were.
 *
 * It needs only json-c, libehx and the protobuf-c code, so the agent
 * daemon links it as well as the command line.
 */
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "notice.h"
#include "ehx/names.h"
#include "ehx/util.h"

/* A JSON string of s with every unsafe byte made '?', cut at about 1 KB
 * (every field of a notification is far shorter). */
static json_object *
jtext(const char *s)
{
	const unsigned char *p = (const unsigned char *)(s != NULL ? s : "");
	char out[1024];
	size_t o = 0;

	while (*p != '\0' && o + 5 < sizeof(out)) {
		int len = ehx_text_char_len(p);

		if (len == 0) {
			out[o++] = '?';
			p++;
			continue;
		}
		memcpy(out + o, p, (size_t)len);
		o += (size_t)len;
		p += len;
	}
	out[o] = '\0';
	return json_object_new_string(out);
}

/* jtext(s), or null for an empty or absent string. */
static json_object *
jtext_or_null(const char *s)
{
	return s != NULL && s[0] != '\0' ? jtext(s) : NULL;
}

static json_object *
jiso(int64_t ms)
{
	char buf[40];

	if (ms <= 0)
		return NULL;
	return json_object_new_string(ehx_fmt_iso(buf, sizeof(buf), ms));
}

const char *
notice_event_name(int event)
{
	switch (event) {
	case EHX__NOTIFY_EVENT__NOTIFY_EVENT_NEW: return "new";
	case EHX__NOTIFY_EVENT__NOTIFY_EVENT_LEVEL_CHANGED: return "level_changed";
	case EHX__NOTIFY_EVENT__NOTIFY_EVENT_REOPENED: return "reopened";
	default: return "unknown";
	}
}

/*
 * The message id of the Body inside a stored envelope, as hex into out
 * (33 bytes). Returns out, or NULL when there is no envelope or it does
 * not decode. The agent verified the signature before it stored the
 * envelope; this only reads it.
 */
static char *
envelope_msgid(char out[2 * EHX_MSGID_LEN + 1], const ProtobufCBinaryData *env)
{
	Ehx__Envelope *e = NULL;
	Ehx__Body *b = NULL;
	char *r = NULL;

	if (env->len == 0 || env->len > EHX_MAX_MESSAGE ||
	    (e = ehx__envelope__unpack(NULL, env->len, env->data)) == NULL)
		goto out;
	if (e->body.len == 0 || e->body.len > EHX_MAX_MESSAGE ||
	    (b = ehx__body__unpack(NULL, e->body.len, e->body.data)) == NULL)
		goto out;
	if (b->message_id.len == EHX_MSGID_LEN)
		r = ehx_hex(out, b->message_id.data, EHX_MSGID_LEN);
out:
	if (b != NULL)
		ehx__body__free_unpacked(b, NULL);
	if (e != NULL)
		ehx__envelope__free_unpacked(e, NULL);
	return r;
}

/* The child as this agency named them (Notification.child), or null. */
static json_object *
jchild(const Ehx__ChildIdentity *c)
{
	static const char *const sexes[] = { NULL, "female", "male",
	    "indeterminate" };
	json_object *o, *names;

	if (c == NULL)
		return NULL;
	o = json_object_new_object();
	json_object_object_add(o, "nhs_number", jtext_or_null(c->nhs_number));
	json_object_object_add(o, "upn", jtext_or_null(c->upn));
	json_object_object_add(o, "local_id", jtext_or_null(c->local_id));
	json_object_object_add(o, "given_name", jtext_or_null(c->given_name));
	json_object_object_add(o, "family_name", jtext_or_null(c->family_name));
	names = json_object_new_array();
	for (size_t i = 0; i < c->n_other_names; i++)
		json_object_array_add(names, jtext(c->other_names[i]));
	json_object_object_add(o, "other_names", names);
	json_object_object_add(o, "date_of_birth",
	    jtext_or_null(c->date_of_birth));
	json_object_object_add(o, "sex", c->sex > 0 && c->sex <= 3 ?
	    json_object_new_string(sexes[c->sex]) : NULL);
	json_object_object_add(o, "postcode", jtext_or_null(c->postcode));
	json_object_object_add(o, "uprn", jtext_or_null(c->uprn));
	return o;
}

json_object *
notice_json(const Ehx__InboxItem *it)
{
	const Ehx__Notification *n;
	json_object *o, *c = NULL;
	char id[2 * EHX_MSGID_LEN + 1];

	if (it == NULL || (n = it->notification) == NULL)
		return NULL;
	if ((o = json_object_new_object()) == NULL)
		return NULL;
	json_object_object_add(o, "seq", json_object_new_uint64(it->seq));
	json_object_object_add(o, "broker_seq",
	    json_object_new_uint64(n->seq));
	json_object_object_add(o, "message_id", envelope_msgid(id,
	    &it->envelope) != NULL ? json_object_new_string(id) : NULL);
	json_object_object_add(o, "nhs_number", jtext_or_null(n->nhs_number));
	json_object_object_add(o, "child", jchild(n->child));
	json_object_object_add(o, "agency", jtext(n->agency));
	json_object_object_add(o, "agency_type",
	    json_object_new_string(ehx_agency_type_name(n->agency_type)));
	json_object_object_add(o, "category",
	    json_object_new_string(ehx_category_name(n->category)));
	json_object_object_add(o, "event",
	    json_object_new_string(notice_event_name(n->event)));
	json_object_object_add(o, "level", n->level != 0 ?
	    json_object_new_int64(n->level) : NULL);
	json_object_object_add(o, "previous_level", n->previous_level != 0 ?
	    json_object_new_int64(n->previous_level) : NULL);
	if (n->contact != NULL) {
		c = json_object_new_object();
		json_object_object_add(c, "name", jtext(n->contact->name));
		json_object_object_add(c, "job", jtext(n->contact->role));
		json_object_object_add(c, "contact", jtext(n->contact->contact));
	}
	json_object_object_add(o, "contact", c);
	json_object_object_add(o, "lead", json_object_new_boolean(n->lead));
	json_object_object_add(o, "basis",
	    json_object_new_string(ehx_basis_name(n->basis)));
	json_object_object_add(o, "consent_id", jtext_or_null(n->consent_id));
	json_object_object_add(o, "agreement", jtext(n->agreement));
	json_object_object_add(o, "flagged_at", jiso(n->flagged_at));
	json_object_object_add(o, "received_at", jiso(it->received_at));
	return o;
}
