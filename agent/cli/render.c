/*
 * render.c — what `ehx` prints: aligned tables and short sentences for
 * people, one JSON document (or, for the paged governance answers, one
 * JSON object per line) for scripts (json-c), and RFC 4180 CSV of the
 * audit. The broker validates text on the way in (printable UTF-8, no
 * control characters); the command line does not count on it: every piece
 * of text from outside goes through one filter, safe(), in tables, CSV and
 * JSON alike, so nothing printed can drive the terminal.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "../notice.h"
#include "render.h"
#include "ehx/err.h"
#include "ehx/names.h"
#include "ehx/nhs.h"
#include "ehx/util.h"

/*
 * s made safe for a terminal: every byte that does not start a character
 * ehx_text_char_len() accepts becomes '?'. The broker refuses such text on the
 * way in; the command line does not count on it. Returns one of eight
 * rotating buffers, so a few may appear in one printf; text beyond about
 * 1 KB is cut (every field is far shorter).
 */
static const char *
safe(const char *s)
{
	static char ring[8][1024];
	static unsigned next;
	char *out = ring[next++ % 8];
	const unsigned char *p = (const unsigned char *)(s != NULL ? s : "");
	size_t o = 0;

	while (*p != '\0' && o + 5 < sizeof(ring[0])) {
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
	return out;
}

const char *
render_safe(const char *s)
{
	return safe(s);
}

/* Print s in exactly width columns (code points), cut or padded. */
static void
cell(FILE *f, const char *s, int width)
{
	const unsigned char *p = (const unsigned char *)(s != NULL ? s : "");
	int cols = 0;

	while (*p != '\0' && cols < width) {
		int len = ehx_text_char_len(p);

		/* Never trust the bytes: each bad one prints as '?'. */
		if (len == 0) {
			fputc('?', f);
			p++;
			cols++;
			continue;
		}
		if (cols == width - 1 && p[len] != '\0') {
			fputc('~', f);	/* cut here */
			cols++;
			break;
		}
		fwrite(p, 1, (size_t)len, f);
		p += len;
		cols++;
	}
	for (; cols < width; cols++)
		fputc(' ', f);
	fputc(' ', f);
}

/* Append to out (outsz) at *n; a full buffer is left full, never overrun. */
static void append(char *out, size_t outsz, size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
append(char *out, size_t outsz, size_t *n, const char *fmt, ...)
{
	va_list ap;
	int k;

	if (*n >= outsz - 1)
		return;
	va_start(ap, fmt);
	k = vsnprintf(out + *n, outsz - *n, fmt, ap);
	va_end(ap);
	if (k < 0)
		return;
	*n += (size_t)k;
	if (*n > outsz - 1)
		*n = outsz - 1;
}

/* A JSON string of s, made safe as for the terminal: valid UTF-8 always. */
static json_object *
jstr(const char *s)
{
	return json_object_new_string(safe(s));
}

static json_object *
jtime(int64_t ms)
{
	char buf[40];

	if (ms <= 0)
		return NULL;
	return json_object_new_string(ehx_fmt_iso(buf, sizeof(buf), ms));
}

static void
print_json(FILE *f, json_object *o)
{
	fprintf(f, "%s\n", json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
	    JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

static json_object *
json_practitioner(const Ehx__Practitioner *p)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "name", jstr(p ? p->name : ""));
	json_object_object_add(o, "role", jstr(p ? p->role : ""));
	json_object_object_add(o, "contact", jstr(p ? p->contact : ""));
	return o;
}

static json_object *
flag_json(const Ehx__FlagView *v)
{
	json_object *j = json_object_new_object();

	json_object_object_add(j, "ref", jstr(v->ref));
	json_object_object_add(j, "category",
	    jstr(ehx_category_name(v->category)));
	json_object_object_add(j, "level", json_object_new_int64(v->level));
	json_object_object_add(j, "level_name", jstr(v->level == 0 ? "" :
	    ehx_level_name(v->level)));
	json_object_object_add(j, "status", jstr(v->status ==
	    EHX__FLAG_STATUS__FLAG_STATUS_OPEN ? "open" : "closed"));
	json_object_object_add(j, "opened_at", jtime(v->opened_at));
	json_object_object_add(j, "closed_at", jtime(v->closed_at));
	json_object_object_add(j, "updated_at", jtime(v->updated_at));
	json_object_object_add(j, "practitioner",
	    v->practitioner != NULL ? json_practitioner(v->practitioner) : NULL);
	json_object_object_add(j, "lead", json_object_new_boolean(v->lead));
	json_object_object_add(j, "note", jstr(v->note));
	json_object_object_add(j, "close_reason", jstr(v->close_reason));
	json_object_object_add(j, "withhold", json_object_new_boolean(
	    v->withhold));
	return j;
}

static json_object *
involvements_json(Ehx__AgencyInvolvement **invs, size_t n)
{
	json_object *arr = json_object_new_array();

	for (size_t i = 0; i < n; i++) {
		const Ehx__AgencyInvolvement *inv = invs[i];
		json_object *a = json_object_new_object(),
		    *fl = json_object_new_array();

		json_object_object_add(a, "agency", jstr(inv->agency));
		json_object_object_add(a, "agency_type",
		    jstr(ehx_agency_type_name(inv->agency_type)));
		for (size_t k = 0; k < inv->n_flags; k++)
			json_object_array_add(fl, flag_json(inv->flags[k]));
		json_object_object_add(a, "flags", fl);
		json_object_array_add(arr, a);
	}
	return arr;
}

static void
picture_json(FILE *f, const Ehx__PictureResult *r)
{
	json_object *o = json_object_new_object();
	char child[2 * EHX_PSEUDONYM_LEN + 1] = "";

	if (r->child.len == EHX_PSEUDONYM_LEN)
		ehx_hex(child, r->child.data, r->child.len);
	json_object_object_add(o, "ok", json_object_new_boolean(1));
	json_object_object_add(o, "child", jstr(child));
	json_object_object_add(o, "consent_id", jstr(r->consent_id));
	json_object_object_add(o, "basis", jstr(r->basis));
	json_object_object_add(o, "highest_open_level",
	    json_object_new_int64(r->highest_open_level));
	json_object_object_add(o, "truncated",
	    json_object_new_boolean(r->truncated));
	json_object_object_add(o, "involvements",
	    involvements_json(r->involvements, r->n_involvements));
	print_json(f, o);
}

/* The notes, close reasons and withhold markers under a picture's table. */
static void
picture_notes(FILE *f, const Ehx__PictureResult *r)
{
	fprintf(f, "\nNotes:\n");
	for (size_t i = 0; i < r->n_involvements; i++) {
		const Ehx__AgencyInvolvement *inv = r->involvements[i];

		for (size_t k = 0; k < inv->n_flags; k++) {
			const Ehx__FlagView *v = inv->flags[k];

			if (v->note[0] != '\0')
				fprintf(f, "  %s/%s: %s\n", safe(inv->agency),
				    safe(v->ref), safe(v->note));
			if (v->close_reason[0] != '\0')
				fprintf(f, "  %s/%s closed: %s\n",
				    safe(inv->agency), safe(v->ref),
				    safe(v->close_reason));
			if (v->withhold)
				fprintf(f, "  %s/%s is withheld from subject "
				    "access exports\n", safe(inv->agency),
				    safe(v->ref));
		}
	}
}

static void
picture_table(FILE *f, const Ehx__PictureResult *r, const char *nhs)
{
	char pretty[13] = "", opened[32], closed[32], child[2 * EHX_PSEUDONYM_LEN + 1] = "";
	size_t nflags = 0, nnotes = 0;

	if (nhs != NULL && ehx_nhs_valid(nhs))
		ehx_nhs_format(pretty, nhs);
	if (r->child.len == EHX_PSEUDONYM_LEN)
		ehx_hex(child, r->child.data, 6);
	if (strcmp(r->basis, "break-glass") == 0)
		fprintf(f, "Whole picture of child %s (pseudonym %s…), shared by "
		    "BREAK-GLASS: this access is audited and will be reviewed "
		    "by information governance\n", pretty, child);
	else if (r->consent_id[0] != '\0')
		fprintf(f, "Whole picture of child %s (pseudonym %s…), shared "
		    "under consent %s\n", pretty, child, safe(r->consent_id));
	else
		fprintf(f, "Whole picture of child %s (pseudonym %s…), shared "
		    "under %s\n", pretty, child, safe(r->basis));
	fprintf(f, "(Other agencies' flags as the partnership's sharing policy "
	    "lets this agency see them.)\n");
	if (r->highest_open_level > 0)
		fprintf(f, "Highest open level of need: %u (%s)\n",
		    r->highest_open_level, ehx_level_name(r->highest_open_level));
	else {
		bool open = false;

		/* Open flags whose levels the policy hides: say so, rather
		 * than that nothing is open. */
		for (size_t i = 0; i < r->n_involvements && !open; i++)
			for (size_t k = 0; k < r->involvements[i]->n_flags; k++)
				open = open || r->involvements[i]->flags[k]->status ==
				    EHX__FLAG_STATUS__FLAG_STATUS_OPEN;
		fprintf(f, "Highest open level of need: %s\n", open ?
		    "not shown to this agency under the sharing policy" :
		    "none open");
	}
	for (size_t i = 0; i < r->n_involvements; i++)
		nflags += r->involvements[i]->n_flags;
	if (nflags == 0) {
		fprintf(f, "\nNo agency has recorded an involvement.\n");
		return;
	}
	fprintf(f, "\n");
	cell(f, "AGENCY", 14); cell(f, "TYPE", 9); cell(f, "CATEGORY", 20);
	cell(f, "LEVEL", 12); cell(f, "STATUS", 6); cell(f, "OPENED", 10);
	cell(f, "CLOSED", 10); cell(f, "PRACTITIONER", 34); cell(f, "CONTACT", 24);
	fprintf(f, "LEAD\n");
	for (size_t i = 0; i < r->n_involvements; i++) {
		const Ehx__AgencyInvolvement *inv = r->involvements[i];

		for (size_t k = 0; k < inv->n_flags; k++) {
			const Ehx__FlagView *v = inv->flags[k];
			const Ehx__Practitioner *p = v->practitioner;
			char lvl[32], who[200];

			if (v->level == 0)
				snprintf(lvl, sizeof(lvl), "-");
			else
				snprintf(lvl, sizeof(lvl), "%u %s", v->level,
				    ehx_level_name(v->level));
			if (p != NULL && p->role[0] != '\0')
				snprintf(who, sizeof(who), "%s (%s)", p->name,
				    p->role);
			else
				snprintf(who, sizeof(who), "%s", p ? p->name : "-");
			ehx_fmt_time(opened, sizeof(opened), v->opened_at);
			ehx_fmt_time(closed, sizeof(closed), v->closed_at);
			opened[10] = closed[10] = '\0';
			cell(f, inv->agency, 14);
			cell(f, ehx_agency_type_name(inv->agency_type), 9);
			cell(f, ehx_category_label(v->category), 20);
			cell(f, lvl, 12);
			cell(f, v->status == EHX__FLAG_STATUS__FLAG_STATUS_OPEN ?
			    "open" : "closed", 6);
			cell(f, opened, 10);
			cell(f, closed, 10);
			cell(f, who, 34);
			cell(f, p && p->contact[0] ? p->contact : "-", 24);
			fprintf(f, "%s\n", v->lead ? "yes" : "");
			if (v->note[0] != '\0' || v->close_reason[0] != '\0' ||
			    v->withhold)
				nnotes++;
		}
	}
	if (nnotes > 0)
		picture_notes(f, r);
	if (r->truncated)
		fprintf(f, "\n(More flags exist than one answer holds; the "
		    "newest agencies may be missing.)\n");
}

static const char *
consent_state(const Ehx__ConsentRecord *c, int64_t now)
{
	if (c->withdrawn_at != 0)
		return "WITHDRAWN";
	if (now < c->starts_at)
		return "NOT YET STARTED";
	if (now >= c->expires_at)
		return "EXPIRED";
	return "ACTIVE";
}

static void
scope_text(char *out, size_t outsz, const Ehx__ConsentScope *s)
{
	size_t n = 0;

	out[0] = '\0';
	if (s == NULL)
		return;
	if (s->n_agency_types > 0) {
		append(out, outsz, &n, "agency types: ");
		for (size_t i = 0; i < s->n_agency_types; i++)
			append(out, outsz, &n, "%s%s", i ? ", " : "",
			    ehx_agency_type_name(s->agency_types[i]));
	}
	if (s->n_agencies > 0) {
		append(out, outsz, &n, "%sagencies: ", n ? "; " : "");
		for (size_t i = 0; i < s->n_agencies; i++)
			append(out, outsz, &n, "%s%s", i ? ", " : "",
			    s->agencies[i]);
	}
}

static void
consent_table(FILE *f, const Ehx__ConsentResult *r, const char *nhs)
{
	char pretty[13] = "", a[32], b[32], scope[1200], purposes[128];
	int64_t now = ehx_now_ms();

	if (nhs != NULL && ehx_nhs_valid(nhs))
		ehx_nhs_format(pretty, nhs);
	if (r->n_records == 0) {
		fprintf(f, "No consent for child %s that this agency recorded "
		    "or is named in.\n", pretty);
		return;
	}
	fprintf(f, "Consent for child %s (%zu record%s)\n", pretty, r->n_records,
	    r->n_records == 1 ? "" : "s");
	for (size_t i = 0; i < r->n_records; i++) {
		const Ehx__ConsentRecord *c = r->records[i];
		size_t n = 0;

		purposes[0] = '\0';
		if (c->scope != NULL)
			for (size_t k = 0; k < c->scope->n_purposes; k++)
				append(purposes, sizeof(purposes), &n, "%s%s",
				    k ? ", " : "",
				    ehx_purpose_name(c->scope->purposes[k]));
		scope_text(scope, sizeof(scope), c->scope);
		fprintf(f, "\n%s  %s\n", safe(c->id), consent_state(c, now));
		fprintf(f, "  given by      %s %s\n", c->given_by ?
		    ehx_relation_name(c->given_by->relation) : "-",
		    safe(c->given_by ? c->given_by->name : ""));
		fprintf(f, "  recorded by   %s, %s (%s), %s UTC\n",
		    safe(c->recorded_by_agency), safe(c->recorded_by ?
		    c->recorded_by->name : "-"), c->recorded_by ? ehx_role_name(c->recorded_by->role) : "-",
		    ehx_fmt_time(a, sizeof(a), c->recorded_at));
		fprintf(f, "  lawful basis  %s\n", ehx_basis_name(c->basis));
		fprintf(f, "  scope         %s\n", safe(scope));
		fprintf(f, "  purposes      %s\n", purposes);
		fprintf(f, "  valid         %s to %s UTC\n",
		    ehx_fmt_time(a, sizeof(a), c->starts_at),
		    ehx_fmt_time(b, sizeof(b), c->expires_at));
		if (c->withdrawn_at != 0)
			fprintf(f, "  withdrawn     %s UTC by %s (%s)%s%s: %s\n",
			    ehx_fmt_time(a, sizeof(a), c->withdrawn_at),
			    safe(c->withdrawn_by_agency),
			    safe(c->withdrawn_recorded_by ?
			    c->withdrawn_recorded_by->name : "-"),
			    c->withdrawn_by[0] ? ", asked by " : "",
			    safe(c->withdrawn_by), safe(c->withdrawn_reason));
	}
	if (r->truncated)
		fprintf(f, "\n(More consent records exist than one answer "
		    "holds.)\n");
}

static json_object *
consent_record_json(const Ehx__ConsentRecord *c, int64_t now)
{
	json_object *j = json_object_new_object(), *sc, *ag, *ty, *pu;
	char state[32];

	snprintf(state, sizeof(state), "%s", consent_state(c, now));
	for (char *p = state; *p; p++)
		*p = *p == ' ' ? '_' : (char)(*p | 0x20);
	json_object_object_add(j, "id", jstr(c->id));
	json_object_object_add(j, "state", jstr(state));
	json_object_object_add(j, "given_by_relation", jstr(c->given_by ?
	    ehx_relation_name(c->given_by->relation) : ""));
	json_object_object_add(j, "given_by_name",
	    jstr(c->given_by ? c->given_by->name : ""));
	json_object_object_add(j, "recorded_by_agency",
	    jstr(c->recorded_by_agency));
	json_object_object_add(j, "recorded_by",
	    jstr(c->recorded_by ? c->recorded_by->name : ""));
	json_object_object_add(j, "basis", jstr(ehx_basis_name(c->basis)));
	sc = json_object_new_object();
	ag = json_object_new_array();
	ty = json_object_new_array();
	pu = json_object_new_array();
	if (c->scope != NULL) {
		for (size_t k = 0; k < c->scope->n_agencies; k++)
			json_object_array_add(ag, jstr(c->scope->agencies[k]));
		for (size_t k = 0; k < c->scope->n_agency_types; k++)
			json_object_array_add(ty, jstr(ehx_agency_type_name(
			    c->scope->agency_types[k])));
		for (size_t k = 0; k < c->scope->n_purposes; k++)
			json_object_array_add(pu, jstr(ehx_purpose_name(
			    c->scope->purposes[k])));
	}
	json_object_object_add(sc, "agencies", ag);
	json_object_object_add(sc, "agency_types", ty);
	json_object_object_add(sc, "purposes", pu);
	json_object_object_add(j, "scope", sc);
	json_object_object_add(j, "recorded_at", jtime(c->recorded_at));
	json_object_object_add(j, "starts_at", jtime(c->starts_at));
	json_object_object_add(j, "expires_at", jtime(c->expires_at));
	json_object_object_add(j, "withdrawn_at", jtime(c->withdrawn_at));
	json_object_object_add(j, "withdrawn_by", jstr(c->withdrawn_by));
	json_object_object_add(j, "withdrawn_reason", jstr(c->withdrawn_reason));
	json_object_object_add(j, "withdrawn_by_agency",
	    jstr(c->withdrawn_by_agency));
	json_object_object_add(j, "withdrawn_recorded_by",
	    jstr(c->withdrawn_recorded_by ? c->withdrawn_recorded_by->name : ""));
	return j;
}

static const char *
event_state(int state)
{
	switch (state) {
	case EHX__CONSENT_STATE__CONSENT_STATE_RECORDED: return "recorded";
	case EHX__CONSENT_STATE__CONSENT_STATE_WITHDRAWN: return "withdrawn";
	case EHX__CONSENT_STATE__CONSENT_STATE_EXPIRED: return "expired";
	default: return "unknown";
	}
}

static json_object *
history_json(Ehx__ConsentEvent **ev, size_t n)
{
	json_object *arr = json_object_new_array();

	for (size_t i = 0; i < n; i++) {
		json_object *j = json_object_new_object();

		json_object_object_add(j, "consent_id", jstr(ev[i]->consent_id));
		json_object_object_add(j, "state", jstr(event_state(
		    ev[i]->state)));
		json_object_object_add(j, "at", jtime(ev[i]->at));
		json_object_object_add(j, "agency", jstr(ev[i]->agency));
		json_object_object_add(j, "person", jstr(ev[i]->person ?
		    ev[i]->person->name : ""));
		json_object_object_add(j, "role", jstr(ev[i]->person ?
		    ehx_role_name(ev[i]->person->role) : ""));
		json_object_object_add(j, "reason", jstr(ev[i]->reason));
		json_object_object_add(j, "by", jstr(ev[i]->by));
		json_object_array_add(arr, j);
	}
	return arr;
}

static void
consent_json(FILE *f, const Ehx__ConsentResult *r)
{
	json_object *o = json_object_new_object(), *arr = json_object_new_array();
	int64_t now = ehx_now_ms();

	json_object_object_add(o, "ok", json_object_new_boolean(1));
	for (size_t i = 0; i < r->n_records; i++)
		json_object_array_add(arr, consent_record_json(r->records[i],
		    now));
	json_object_object_add(o, "records", arr);
	json_object_object_add(o, "history", history_json(r->history,
	    r->n_history));
	json_object_object_add(o, "truncated",
	    json_object_new_boolean(r->truncated));
	print_json(f, o);
}

static void
history_table(FILE *f, const Ehx__ConsentResult *r)
{
	char t[32];

	fprintf(f, "\nHistory, oldest first:\n\n");
	cell(f, "TIME (UTC)", 16); cell(f, "CONSENT", 18); cell(f, "STATE", 9);
	cell(f, "AGENCY", 14); cell(f, "PERSON", 24); fprintf(f, "DETAIL\n");
	for (size_t i = 0; i < r->n_history; i++) {
		const Ehx__ConsentEvent *e = r->history[i];
		char detail[700];

		snprintf(detail, sizeof(detail), "%s%s%s", e->reason,
		    e->by[0] ? " (asked by " : "", e->by[0] ? e->by : "");
		if (e->by[0])
			strncat(detail, ")", sizeof(detail) - strlen(detail) - 1);
		cell(f, ehx_fmt_time(t, sizeof(t), e->at), 16);
		cell(f, e->consent_id, 18);
		cell(f, event_state(e->state), 9);
		cell(f, e->agency[0] ? e->agency : "-", 14);
		cell(f, e->person ? e->person->name : "-", 24);
		fprintf(f, "%s\n", safe(detail));
	}
}

/* An export page is binary; printed, it is only counted. */
static void
export_summary(FILE *f, const Ehx__ExportResult *r, bool json)
{
	if (json) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "records",
		    json_object_new_uint64(r->n_records));
		json_object_object_add(o, "checkpoints",
		    json_object_new_uint64(r->n_checkpoints));
		json_object_object_add(o, "envelopes",
		    json_object_new_uint64(r->n_envelopes));
		json_object_object_add(o, "tree_size",
		    json_object_new_uint64(r->tree_size));
		json_object_object_add(o, "next_seq",
		    json_object_new_uint64(r->next_seq));
		print_json(f, o);
		return;
	}
	fprintf(f, "Export page: %zu audit records, %zu checkpoints, %zu "
	    "envelopes of a log of %llu records (use ehx audit export FILE)\n",
	    r->n_records, r->n_checkpoints, r->n_envelopes,
	    (unsigned long long)r->tree_size);
}

void
render_reply(FILE *f, const Ehx__Body *reply, bool json, const char *nhs)
{
	switch (reply->payload_case) {
	case EHX__BODY__PAYLOAD_PICTURE:
		if (json)
			picture_json(f, reply->picture);
		else
			picture_table(f, reply->picture, nhs);
		break;
	case EHX__BODY__PAYLOAD_CONSENT:
		if (json)
			consent_json(f, reply->consent);
		else {
			consent_table(f, reply->consent, nhs);
			if (reply->consent->n_history > 0)
				history_table(f, reply->consent);
		}
		break;
	case EHX__BODY__PAYLOAD_ACK:
		if (json)
			render_ack(f, reply->ack, NULL, true, NULL);
		break;
	case EHX__BODY__PAYLOAD_AUDIT:
		render_audit_page(f, reply->audit, json ? RENDER_JSON :
		    RENDER_TABLE, true);
		break;
	case EHX__BODY__PAYLOAD_ALERTS:
		render_alerts_page(f, reply->alerts, json, true);
		break;
	case EHX__BODY__PAYLOAD_DISCLOSURES:
		render_disclosures_page(f, reply->disclosures, json, true);
		break;
	case EHX__BODY__PAYLOAD_SAR:
		render_sar(f, reply->sar);
		break;
	case EHX__BODY__PAYLOAD_EXPORT:
		export_summary(f, reply->export, json);
		break;
	default:
		fprintf(f, "unexpected reply (%d)\n", reply->payload_case);
	}
}

void
render_error(const Ehx__Error *e, bool from_agent, bool json)
{
	int code = ehx_err_from_wire(e->code);

	if (json) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "ok", json_object_new_boolean(0));
		json_object_object_add(o, "error", jstr(ehx_errname(code)));
		json_object_object_add(o, "message", jstr(e->message));
		json_object_object_add(o, "from", jstr(from_agent ? "agent" :
		    "broker"));
		print_json(stdout, o);
		return;
	}
	fprintf(stderr, "ehx: %s refused (%s): %s\n", from_agent ? "the agent" :
	    "the broker", ehx_errname(code), safe(e->message));
}

/* ---- information governance ------------------------------------------------ */

static void
hexof(char *out, const ProtobufCBinaryData *b, size_t max)
{
	out[0] = '\0';
	if (b->len > 0 && b->len <= max)
		ehx_hex(out, b->data, b->len);
}

static void
print_line(FILE *f, json_object *o)
{
	fprintf(f, "%s\n", json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

static const char *
decision_name(int d)
{
	return d == EHX__DECISION__DECISION_ALLOW ? "allow" :
	    d == EHX__DECISION__DECISION_DENY ? "deny" : "";
}

/* One CSV field, quoted as RFC 4180 says when it must be. */
static void
csv_field(FILE *f, const char *s, bool last)
{
	const char *v = safe(s);
	/* A spreadsheet would run a cell starting = + - @ (or a tab or CR
	 * before one) as a formula: such text, from any agency's signed
	 * requests, gets a leading ' and is quoted (OWASP's advice). */
	bool formula = v[0] != '\0' && strchr("=+-@\t\r", v[0]) != NULL;

	if (formula || strpbrk(v, ",\"\r\n") != NULL || v[0] == ' ') {
		fputc('"', f);
		if (formula)
			fputc('\'', f);
		for (; *v != '\0'; v++) {
			if (*v == '"')
				fputc('"', f);
			fputc(*v, f);
		}
		fputc('"', f);
	} else
		fputs(v, f);
	fputs(last ? "\r\n" : ",", f);
}

void
render_audit_page(FILE *f, const Ehx__AuditResult *r, enum render_format fmt,
    bool header)
{
	static const char *const cols[] = { "seq", "time", "agency", "user_id",
	    "person", "role", "action", "child", "decision", "error", "basis",
	    "consent_id", "break_glass", "message_id", "envelope_hash" };
	const size_t ncols = sizeof(cols) / sizeof(cols[0]);

	if (header && fmt == RENDER_CSV)
		for (size_t i = 0; i < ncols; i++)
			csv_field(f, cols[i], i + 1 == ncols);
	if (header && fmt == RENDER_TABLE) {
		cell(f, "SEQ", 6); cell(f, "TIME (UTC)", 16); cell(f, "AGENCY", 12);
		cell(f, "PERSON", 30); cell(f, "ACTION", 17); cell(f, "CHILD", 12);
		cell(f, "DECISION", 8); fprintf(f, "BASIS/ERROR\n");
	}
	for (size_t i = 0; i < r->n_records; i++) {
		const Ehx__AuditRecord *a = r->records[i];
		const Ehx__Person *p = a->person;
		char seq[24], t[40], child[65], msg[33], env[65], who[220];
		const char *v[15];

		snprintf(seq, sizeof(seq), "%llu", (unsigned long long)a->seq);
		hexof(child, &a->child, 32);
		hexof(msg, &a->message_id, 16);
		hexof(env, &a->envelope_hash, 32);
		if (fmt == RENDER_TABLE) {
			snprintf(who, sizeof(who), "%s (%s)", p ? p->name : "-",
			    ehx_role_name(a->role));
			child[12] = '\0';
			cell(f, seq, 6);
			cell(f, ehx_fmt_time(t, sizeof(t), a->time), 16);
			cell(f, a->agency, 12);
			cell(f, who, 30);
			cell(f, a->action, 17);
			cell(f, child[0] ? child : "-", 12);
			cell(f, decision_name(a->decision), 8);
			fprintf(f, "%s%s", a->error ? ehx_errname(
			    ehx_err_from_wire(a->error)) : safe(a->basis),
			    a->break_glass ? " BREAK-GLASS" : "");
			for (size_t k = 0; k < a->n_notified; k++)
				fprintf(f, "%s%s", k == 0 ? "; notified " :
				    ", ", safe(a->notified[k]->agency));
			fputc('\n', f);
			continue;
		}
		v[0] = seq;
		v[1] = ehx_fmt_iso(t, sizeof(t), a->time);
		v[2] = a->agency;
		v[3] = p ? p->user_id : "";
		v[4] = p ? p->name : "";
		v[5] = ehx_role_name(a->role);
		v[6] = a->action;
		v[7] = child;
		v[8] = decision_name(a->decision);
		v[9] = a->error ? ehx_errname(ehx_err_from_wire(a->error)) : "";
		v[10] = a->basis;
		v[11] = a->consent_id;
		v[12] = a->break_glass ? "true" : "false";
		v[13] = msg;
		v[14] = env;
		if (fmt == RENDER_CSV) {
			for (size_t k = 0; k < ncols; k++)
				csv_field(f, v[k], k + 1 == ncols);
		} else {
			json_object *o = json_object_new_object();

			for (size_t k = 0; k < ncols; k++)
				json_object_object_add(o, cols[k], k == 0 ?
				    json_object_new_uint64(a->seq) : k == 12 ?
				    json_object_new_boolean(a->break_glass) :
				    jstr(v[k]));
			/* A publish: the agencies it notified. */
			if (a->n_notified > 0) {
				json_object *arr = json_object_new_array();

				for (size_t k = 0; k < a->n_notified; k++) {
					json_object *x =
					    json_object_new_object();

					json_object_object_add(x, "agency",
					    jstr(a->notified[k]->agency));
					json_object_object_add(x, "basis",
					    jstr(ehx_basis_name(
					    a->notified[k]->basis)));
					json_object_object_add(x, "consent_id",
					    jstr(a->notified[k]->consent_id));
					json_object_object_add(x, "seq",
					    json_object_new_uint64(
					    a->notified[k]->seq));
					json_object_array_add(arr, x);
				}
				json_object_object_add(o, "notified", arr);
			}
			print_line(f, o);
		}
	}
}

static const char *
outcome_name(int o)
{
	return o == EHX__REVIEW_OUTCOME__REVIEW_OUTCOME_JUSTIFIED ? "justified" :
	    o == EHX__REVIEW_OUTCOME__REVIEW_OUTCOME_UNJUSTIFIED ?
	    "unjustified" : "";
}

void
render_alerts_page(FILE *f, const Ehx__AlertResult *r, bool json, bool header)
{
	if (header && !json) {
		cell(f, "ALERT", 6); cell(f, "TIME (UTC)", 16); cell(f, "AGENCY", 12);
		cell(f, "PERSON", 30); cell(f, "CHILD", 12); cell(f, "REASON", 40);
		fprintf(f, "REVIEW\n");
	}
	for (size_t i = 0; i < r->n_alerts; i++) {
		const Ehx__Alert *a = r->alerts[i];
		char seq[24], t[40], t2[40], child[65], who[220], rv[400];

		snprintf(seq, sizeof(seq), "%llu", (unsigned long long)a->seq);
		hexof(child, &a->child, 32);
		if (json) {
			json_object *o = json_object_new_object();

			json_object_object_add(o, "seq",
			    json_object_new_uint64(a->seq));
			json_object_object_add(o, "time", jtime(a->time));
			json_object_object_add(o, "agency", jstr(a->agency));
			json_object_object_add(o, "user_id",
			    jstr(a->person ? a->person->user_id : ""));
			json_object_object_add(o, "person",
			    jstr(a->person ? a->person->name : ""));
			json_object_object_add(o, "role", jstr(a->person ?
			    ehx_role_name(a->person->role) : ""));
			json_object_object_add(o, "child", jstr(child));
			json_object_object_add(o, "kind", jstr(
			    a->kind[0] != '\0' ? a->kind : "break_glass"));
			json_object_object_add(o, "reason", jstr(a->reason));
			json_object_object_add(o, "reviewed_at",
			    jtime(a->reviewed_at));
			json_object_object_add(o, "reviewed_by_agency",
			    jstr(a->reviewed_by_agency));
			json_object_object_add(o, "reviewed_by", jstr(
			    a->reviewed_by ? a->reviewed_by->name : ""));
			json_object_object_add(o, "outcome",
			    jstr(outcome_name(a->outcome)));
			json_object_object_add(o, "note", jstr(a->note));
			print_line(f, o);
			continue;
		}
		snprintf(who, sizeof(who), "%s (%s)", a->person ?
		    a->person->name : "-", a->person ?
		    ehx_role_name(a->person->role) : "-");
		if (a->reviewed_at != 0)
			snprintf(rv, sizeof(rv), "%s by %s/%s %s: %s",
			    outcome_name(a->outcome), safe(a->reviewed_by_agency),
			    safe(a->reviewed_by ? a->reviewed_by->name : "-"),
			    ehx_fmt_time(t2, sizeof(t2), a->reviewed_at),
			    safe(a->note));
		else
			snprintf(rv, sizeof(rv), "OPEN");
		child[12] = '\0';
		cell(f, seq, 6);
		cell(f, ehx_fmt_time(t, sizeof(t), a->time), 16);
		cell(f, a->agency, 12);
		cell(f, who, 30);
		cell(f, child, 12);
		{
			/* What raised it, then why. */
			char why[EHX_MAX_REASON + 40];

			snprintf(why, sizeof(why), "%s%s",
			    strcmp(a->kind, "self_consent") == 0 ?
			    "own consent: " : strcmp(a->kind, "first_flag") ==
			    0 ? "first flag: " : "", a->reason);
			cell(f, why, 40);
		}
		fprintf(f, "%s\n", safe(rv));
	}
}

static json_object *
disclosure_json(const Ehx__Disclosure *d)
{
	json_object *o = json_object_new_object();
	char child[65];

	hexof(child, &d->child, 32);
	json_object_object_add(o, "seq", json_object_new_uint64(d->seq));
	json_object_object_add(o, "time", jtime(d->time));
	json_object_object_add(o, "to_agency", jstr(d->to_agency));
	json_object_object_add(o, "to_user_id",
	    jstr(d->to_person ? d->to_person->user_id : ""));
	json_object_object_add(o, "to_person",
	    jstr(d->to_person ? d->to_person->name : ""));
	json_object_object_add(o, "child", jstr(child));
	json_object_object_add(o, "basis", jstr(d->basis));
	json_object_object_add(o, "flags", json_object_new_int64(d->flags));
	json_object_object_add(o, "via", jstr(d->via));
	return o;
}

void
render_disclosures_page(FILE *f, const Ehx__DisclosureResult *r, bool json,
    bool header)
{
	if (header && !json) {
		cell(f, "WHEN (UTC)", 16); cell(f, "TO AGENCY", 12);
		cell(f, "TO PERSON", 30); cell(f, "CHILD", 12);
		cell(f, "BASIS", 28); fprintf(f, "FLAGS\n");
	}
	for (size_t i = 0; i < r->n_disclosures; i++) {
		const Ehx__Disclosure *d = r->disclosures[i];
		char t[40], child[65], who[220], n[16];

		if (json) {
			print_line(f, disclosure_json(d));
			continue;
		}
		hexof(child, &d->child, 32);
		child[12] = '\0';
		snprintf(who, sizeof(who), "%s (%s)", d->to_person ?
		    d->to_person->name : "-", d->to_person ?
		    ehx_role_name(d->to_person->role) : "-");
		snprintf(n, sizeof(n), "%u", d->flags);
		cell(f, ehx_fmt_time(t, sizeof(t), d->time), 16);
		cell(f, d->to_agency, 12);
		cell(f, who, 30);
		cell(f, child, 12);
		cell(f, d->basis, 28);
		fprintf(f, "%s\n", n);
	}
}

void
render_list_page(FILE *f, const Ehx__EarlyHelpListResult *r, bool json,
    bool header)
{
	if (header && !json) {
		fprintf(f, "%s list for %s, shared on the basis %s\n",
		    ehx_list_name(r->list), safe(r->locality), safe(r->basis));
		cell(f, "NHS NUMBER", 13); cell(f, "LEVEL", 6);
		cell(f, "AGENCIES", 36); fprintf(f, "CRITERIA\n");
	}
	for (size_t i = 0; i < r->n_children; i++) {
		const Ehx__ListedChild *c = r->children[i];
		char nhs[13], agencies[400] = "", crit[200] = "", lv[8];
		size_t n = 0, m = 0;

		if (json) {
			json_object *o = json_object_new_object();
			json_object *a = json_object_new_array();
			json_object *k = json_object_new_array();

			for (size_t j = 0; j < c->n_agencies; j++)
				json_object_array_add(a, jstr(c->agencies[j]));
			for (size_t j = 0; j < c->n_criteria; j++)
				json_object_array_add(k, jstr(
				    ehx_criterion_name(c->criteria[j])));
			json_object_object_add(o, "nhs_number",
			    jstr(c->nhs_number));
			json_object_object_add(o, "agencies", a);
			json_object_object_add(o, "highest_open_level",
			    json_object_new_int64(c->highest_open_level));
			json_object_object_add(o, "criteria", k);
			json_object_object_add(o, "basis", jstr(r->basis));
			print_line(f, o);
			continue;
		}
		for (size_t j = 0; j < c->n_agencies && n < sizeof(agencies);
		    j++)
			n += (size_t)snprintf(agencies + n, sizeof(agencies) - n,
			    "%s%s", j ? ", " : "", safe(c->agencies[j]));
		for (size_t j = 0; j < c->n_criteria && m < sizeof(crit); j++)
			m += (size_t)snprintf(crit + m, sizeof(crit) - m, "%s%s",
			    j ? ", " : "", ehx_criterion_name(c->criteria[j]));
		snprintf(lv, sizeof(lv), "%u", c->highest_open_level);
		cell(f, ehx_nhs_valid(c->nhs_number) ? ehx_nhs_format(nhs,
		    c->nhs_number) : "?", 13);
		cell(f, lv, 6);
		cell(f, agencies, 36);
		fprintf(f, "%s\n", crit[0] ? crit : "-");
	}
}

/* The sentence that goes with a subject access answer's withheld count. */
static void
withheld_note(char *out, size_t outsz, uint32_t n)
{
	if (n == 0)
		snprintf(out, outsz, "No flag was withheld.");
	else
		snprintf(out, outsz, "%u flag%s left out: the agency holding "
		    "%s judged that disclosing %s to the requester would not "
		    "be in the child's interests.", n, n == 1 ? " is" : "s are",
		    n == 1 ? "it" : "each", n == 1 ? "it" : "them");
}

void
render_sar(FILE *f, const Ehx__SarResult *r)
{
	json_object *o = json_object_new_object(), *cs = json_object_new_array(),
	    *ds = json_object_new_array();
	char child[65], note[200];
	int64_t now = ehx_now_ms();

	hexof(child, &r->child, 32);
	json_object_object_add(o, "child", jstr(child));
	json_object_object_add(o, "involvements",
	    involvements_json(r->involvements, r->n_involvements));
	json_object_object_add(o, "withheld", json_object_new_int64(
	    r->withheld));
	withheld_note(note, sizeof(note), r->withheld);
	json_object_object_add(o, "withheld_note", jstr(note));
	for (size_t i = 0; i < r->n_consents; i++)
		json_object_array_add(cs, consent_record_json(r->consents[i], now));
	json_object_object_add(o, "consents", cs);
	json_object_object_add(o, "history", history_json(r->history,
	    r->n_history));
	for (size_t i = 0; i < r->n_disclosures; i++)
		json_object_array_add(ds, disclosure_json(r->disclosures[i]));
	json_object_object_add(o, "disclosures", ds);
	json_object_object_add(o, "truncated",
	    json_object_new_boolean(r->truncated));
	print_json(f, o);
}

void
render_agent_state(FILE *f, const Ehx__AgentState *s, bool json)
{
	const Ehx__Checkpoint *cp = s->checkpoint;
	char root[65] = "", t[40], t2[40];

	if (cp != NULL)
		hexof(root, &cp->root, 32);
	if (json) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "consistent",
		    json_object_new_boolean(s->consistent));
		json_object_object_add(o, "problem", jstr(s->problem));
		json_object_object_add(o, "size", json_object_new_uint64(
		    cp != NULL ? cp->size : 0));
		json_object_object_add(o, "root", jstr(root));
		json_object_object_add(o, "time", cp ? jtime(cp->time) : NULL);
		json_object_object_add(o, "checked_at", jtime(s->checked_at));
		json_object_object_add(o, "pending", json_object_new_uint64(
		    s->n_pending));
		json_object_object_add(o, "confirmed_size",
		    json_object_new_uint64(s->confirmed != NULL ?
		    s->confirmed->size : 0));
		json_object_object_add(o, "confirmed_at",
		    jtime(s->confirmed_at));
		json_object_object_add(o, "confirmed_by",
		    jstr(s->confirmed_by));
		json_object_object_add(o, "warning", jstr(s->warning));
		print_json(f, o);
		return;
	}
	if (cp == NULL)
		fprintf(f, "This agent has not seen a signed checkpoint yet.\n");
	else
		fprintf(f, "Newest checkpoint this agent checked: %llu records, "
		    "root %s,\n  signed %s UTC, checked %s UTC\n",
		    (unsigned long long)cp->size, root,
		    ehx_fmt_time(t, sizeof(t), cp->time),
		    ehx_fmt_time(t2, sizeof(t2), s->checked_at));
	if (s->confirmed != NULL)
		fprintf(f, "Other agencies (%s) agreed with the log of %llu "
		    "records at %s UTC.\n", safe(s->confirmed_by),
		    (unsigned long long)s->confirmed->size,
		    ehx_fmt_time(t, sizeof(t), s->confirmed_at));
	if (s->n_pending > 0)
		fprintf(f, "%zu of this agency's decisions wait to be checked "
		    "in the log (the oldest, record %llu).\n", s->n_pending,
		    (unsigned long long)s->pending[0]->seq);
	if (s->consistent)
		fprintf(f, "The broker's audit log is consistent with every "
		    "checkpoint this agent has seen.\n");
	else
		fprintf(f, "INCONSISTENT: %s\n", safe(s->problem));
	if (s->warning != NULL && s->warning[0] != '\0')
		fprintf(f, "%s\n", safe(s->warning));
}

/* ---- the outbox, the agent's status and its inbox ---------------------- */

char *
render_age(char *out, size_t outsz, int64_t ms)
{
	int64_t s = ms > 0 ? ms / 1000 : 0;

	if (s < 60)
		snprintf(out, outsz, "%lld s", (long long)s);
	else if (s < 3600)
		snprintf(out, outsz, "%lld min", (long long)(s / 60));
	else if (s < 86400) {
		if (s / 60 % 60 != 0)
			snprintf(out, outsz, "%lld h %lld min",
			    (long long)(s / 3600), (long long)(s / 60 % 60));
		else
			snprintf(out, outsz, "%lld h", (long long)(s / 3600));
	} else
		snprintf(out, outsz, "%lld day%s", (long long)(s / 86400),
		    s / 86400 == 1 ? "" : "s");
	return out;
}

static json_object *
msgid_json(const ProtobufCBinaryData *id)
{
	char hex[2 * EHX_MSGID_LEN + 1];

	if (id->len != EHX_MSGID_LEN)
		return NULL;
	return json_object_new_string(ehx_hex(hex, id->data, id->len));
}

void
render_ack(FILE *f, const Ehx__Ack *a, const Ehx__Queued *q, bool json,
    const char *done)
{
	if (json) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "ok", json_object_new_boolean(1));
		json_object_object_add(o, "id", jstr(a->id));
		json_object_object_add(o, "basis", jstr(a->basis));
		json_object_object_add(o, "unchanged",
		    json_object_new_boolean(a->unchanged));
		if (q != NULL && q->first > 0) {
			json_object_object_add(o, "outbox",
			    json_object_new_uint64(q->first));
			json_object_object_add(o, "message_id",
			    q->n_message_ids > 0 ? msgid_json(&q->message_ids[0]) :
			    NULL);
		}
		print_json(f, o);
		return;
	}
	if (done == NULL)
		return;
	fprintf(f, "%s %s%s", done, safe(a->id), a->unchanged ?
	    " (unchanged)" : "");
	fputs(".\n", f);
}

void
render_queued_json(FILE *f, const Ehx__Queued *q)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "queued", json_object_new_boolean(1));
	json_object_object_add(o, "still_queued",
	    json_object_new_boolean(q->still_queued));
	json_object_object_add(o, "outbox", json_object_new_uint64(q->first));
	json_object_object_add(o, "message_id", q->n_message_ids > 0 ?
	    msgid_json(&q->message_ids[0]) : NULL);
	print_json(f, o);
}

static json_object *
refusal_json(const Ehx__Refusal *r)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "outbox", json_object_new_uint64(r->number));
	json_object_object_add(o, "message_id", msgid_json(&r->message_id));
	json_object_object_add(o, "what", jstr(r->what));
	json_object_object_add(o, "error", jstr(r->error != NULL ?
	    ehx_errname(ehx_err_from_wire(r->error->code)) : ""));
	json_object_object_add(o, "message", jstr(r->error != NULL ?
	    r->error->message : ""));
	json_object_object_add(o, "at", jtime(r->at));
	return o;
}

static void
status_json(FILE *f, const Ehx__AgentStatus *s, int64_t now)
{
	json_object *o = json_object_new_object(), *arr = json_object_new_array();
	char stream[2 * EHX_STREAM_LEN + 1];

	json_object_object_add(o, "connected",
	    json_object_new_boolean(s->connected));
	json_object_object_add(o, "last_contact", jtime(s->last_contact));
	json_object_object_add(o, "outbox", json_object_new_uint64(s->outbox));
	json_object_object_add(o, "in_flight",
	    json_object_new_uint64(s->in_flight));
	json_object_object_add(o, "oldest_queued", jtime(s->oldest_queued));
	json_object_object_add(o, "oldest_queued_age_s", s->oldest_queued > 0 ?
	    json_object_new_int64(now > s->oldest_queued ?
	    (now - s->oldest_queued) / 1000 : 0) : NULL);
	json_object_object_add(o, "last_error", s->last_error[0] != '\0' ?
	    jstr(s->last_error) : NULL);
	json_object_object_add(o, "delivered",
	    json_object_new_uint64(s->delivered));
	json_object_object_add(o, "refused", json_object_new_uint64(s->refused));
	for (size_t i = 0; i < s->n_recent_refusals; i++)
		json_object_array_add(arr, refusal_json(s->recent_refusals[i]));
	json_object_object_add(o, "recent_refusals", arr);
	json_object_object_add(o, "inbox_new",
	    json_object_new_uint64(s->inbox_new));
	json_object_object_add(o, "notifications",
	    json_object_new_uint64(s->notifications));
	json_object_object_add(o, "hook_pending",
	    json_object_new_uint64(s->hook_pending));
	json_object_object_add(o, "oldest_hook_pending",
	    jtime(s->oldest_hook_pending));
	json_object_object_add(o, "hook_error", s->hook_error[0] != '\0' ?
	    jstr(s->hook_error) : NULL);
	hexof(stream, &s->stream, EHX_STREAM_LEN);
	json_object_object_add(o, "stream", jstr(stream));
	json_object_object_add(o, "next_number",
	    json_object_new_uint64(s->next_number));
	print_json(f, o);
}

void
render_status(FILE *f, const Ehx__AgentStatus *s, int64_t now, bool json)
{
	char t[40], age[24], stream[2 * EHX_STREAM_LEN + 1];

	if (json) {
		status_json(f, s, now);
		return;
	}
	if (s->last_contact > 0)
		fprintf(f, "broker        %s (last answer %s UTC, %s ago)\n",
		    s->connected ? "connected" : "NOT CONNECTED",
		    ehx_fmt_time(t, sizeof(t), s->last_contact),
		    render_age(age, sizeof(age), now - s->last_contact));
	else
		fprintf(f, "broker        NOT CONNECTED (no answer yet)\n");
	if (s->outbox == 0)
		fprintf(f, "outbox        empty\n");
	else
		fprintf(f, "outbox        %llu queued, %llu in flight; the oldest "
		    "queued %s ago\n", (unsigned long long)s->outbox,
		    (unsigned long long)s->in_flight, s->oldest_queued > 0 ?
		    render_age(age, sizeof(age), now - s->oldest_queued) : "?");
	if (s->last_error[0] != '\0')
		fprintf(f, "last problem  %s\n", safe(s->last_error));
	fprintf(f, "delivered     %llu, refused %llu (since the agent's store "
	    "was made)\n", (unsigned long long)s->delivered,
	    (unsigned long long)s->refused);
	fprintf(f, "inbox         %llu new of %llu notifications received\n",
	    (unsigned long long)s->inbox_new,
	    (unsigned long long)s->notifications);
	if (s->hook_pending > 0)
		fprintf(f, "hook          %llu waiting, the oldest for %s\n",
		    (unsigned long long)s->hook_pending,
		    s->oldest_hook_pending > 0 ? render_age(age, sizeof(age),
		    now - s->oldest_hook_pending) : "?");
	else
		fprintf(f, "hook          nothing waiting\n");
	if (s->hook_error[0] != '\0')
		fprintf(f, "hook failed   %s\n", safe(s->hook_error));
	hexof(stream, &s->stream, EHX_STREAM_LEN);
	fprintf(f, "stream        %s, next outbox number %llu\n",
	    stream[0] ? stream : "-", (unsigned long long)s->next_number);
	if (s->n_recent_refusals == 0)
		return;
	fprintf(f, "\nRecent refusals by the broker:\n");
	cell(f, "OUTBOX", 8); cell(f, "WHEN (UTC)", 16); cell(f, "WHAT", 28);
	fprintf(f, "ERROR\n");
	for (size_t i = 0; i < s->n_recent_refusals; i++) {
		const Ehx__Refusal *r = s->recent_refusals[i];
		char num[24];

		snprintf(num, sizeof(num), "%llu", (unsigned long long)r->number);
		cell(f, num, 8);
		cell(f, ehx_fmt_time(t, sizeof(t), r->at), 16);
		cell(f, r->what, 28);
		fprintf(f, "%s: %s\n", r->error != NULL ? ehx_errname(
		    ehx_err_from_wire(r->error->code)) : "-",
		    safe(r->error != NULL ? r->error->message : ""));
	}
}

/* An item's notice_json() with what the inbox adds. */
static json_object *
inbox_item_json(const Ehx__InboxItem *it)
{
	json_object *o = notice_json(it);

	if (o == NULL)
		return NULL;
	json_object_object_add(o, "acked_at", jtime(it->acked_at));
	json_object_object_add(o, "hooked_at", jtime(it->hooked_at));
	json_object_object_add(o, "spooled_at", jtime(it->spooled_at));
	json_object_object_add(o, "hook_attempts",
	    json_object_new_int64(it->hook_attempts));
	return o;
}

static const char *
event_label(int event)
{
	switch (event) {
	case EHX__NOTIFY_EVENT__NOTIFY_EVENT_NEW: return "new flag";
	case EHX__NOTIFY_EVENT__NOTIFY_EVENT_LEVEL_CHANGED: return "level changed";
	case EHX__NOTIFY_EVENT__NOTIFY_EVENT_REOPENED: return "reopened";
	default: return "unknown";
	}
}

/* "3 complex", or "-" when the level is not shown. */
static const char *
level_text(char *out, size_t outsz, uint32_t level)
{
	if (level == 0 || level > 4)
		snprintf(out, outsz, "-");
	else
		snprintf(out, outsz, "%u %s", level, ehx_level_name(level));
	return out;
}

/* The child's NHS number as people write it, or as given if not valid. */
static const char *
child_text(char out[13], const char *nhs)
{
	if (nhs != NULL && ehx_nhs_valid(nhs))
		return ehx_nhs_format(out, nhs);
	return safe(nhs);
}

/* A notification's child: the NHS number, else the agency's own UPN or
 * id for the child (Notification.child). */
static const char *
notice_child(char out[13], const Ehx__Notification *n)
{
	const Ehx__ChildIdentity *c = n->child;

	if (ehx_nhs_valid(n->nhs_number) || c == NULL)
		return child_text(out, n->nhs_number);
	if (c->upn[0] != '\0')
		return safe(c->upn);
	if (c->local_id[0] != '\0')
		return safe(c->local_id);
	return safe(c->family_name);
}

/* The lines of a notification's child as this agency named them. */
static void
notice_child_lines(FILE *f, const Ehx__ChildIdentity *c)
{
	if (c == NULL)
		return;
	if (c->given_name[0] != '\0' || c->family_name[0] != '\0')
		fprintf(f, "  named          %s%s%s\n", safe(c->given_name),
		    c->given_name[0] != '\0' && c->family_name[0] != '\0' ?
		    " " : "", safe(c->family_name));
	if (c->date_of_birth[0] != '\0')
		fprintf(f, "  born           %s\n", safe(c->date_of_birth));
	if (c->upn[0] != '\0')
		fprintf(f, "  UPN            %s\n", safe(c->upn));
	if (c->local_id[0] != '\0')
		fprintf(f, "  your id        %s\n", safe(c->local_id));
	if (c->postcode[0] != '\0')
		fprintf(f, "  postcode       %s\n", safe(c->postcode));
}

void
render_inbox_list(FILE *f, const Ehx__InboxList *l, bool all, bool json)
{
	size_t shown = 0;

	if (json) {
		json_object *o = json_object_new_object(),
		    *arr = json_object_new_array();

		json_object_object_add(o, "total_new",
		    json_object_new_uint64(l->total_new));
		for (size_t i = 0; i < l->n_items; i++) {
			json_object *j = inbox_item_json(l->items[i]);

			if (j != NULL)
				json_object_array_add(arr, j);
		}
		json_object_object_add(o, "items", arr);
		print_json(f, o);
		return;
	}
	for (size_t i = 0; i < l->n_items; i++) {
		const Ehx__InboxItem *it = l->items[i];
		const Ehx__Notification *n = it->notification;
		char seq[24], t[40], lvl[32], nhs[13];

		if (n == NULL)
			continue;
		if (shown++ == 0) {
			cell(f, "SEQ", 6); cell(f, "RECEIVED (UTC)", 16);
			cell(f, "FROM", 12); cell(f, "CATEGORY", 20);
			cell(f, "EVENT", 13); cell(f, "LEVEL", 12);
			cell(f, "CHILD", 13); cell(f, "ACKED", 5);
			fprintf(f, "HOOKED\n");
		}
		snprintf(seq, sizeof(seq), "%llu", (unsigned long long)it->seq);
		cell(f, seq, 6);
		cell(f, ehx_fmt_time(t, sizeof(t), it->received_at), 16);
		cell(f, n->agency, 12);
		cell(f, ehx_category_label(n->category), 20);
		cell(f, event_label(n->event), 13);
		cell(f, level_text(lvl, sizeof(lvl), n->level), 12);
		cell(f, notice_child(nhs, n), 13);
		cell(f, it->acked_at ? "yes" : "-", 5);
		fprintf(f, "%s\n", it->hooked_at ? "yes" : "-");
	}
	if (shown == 0) {
		fprintf(f, "No %snotifications.\n", all ? "" : "new ");
		return;
	}
	if (!all && l->total_new > shown)
		fprintf(f, "\n(The oldest %zu of %llu new notifications; "
		    "acknowledge them to see the rest.)\n", shown,
		    (unsigned long long)l->total_new);
	else if (!all)
		fprintf(f, "\n%llu new notification%s.\n",
		    (unsigned long long)l->total_new, l->total_new == 1 ? "" : "s");
}

void
render_inbox_item(FILE *f, const Ehx__InboxItem *it, bool json)
{
	const Ehx__Notification *n = it->notification;
	char t[40], lvl[32], prev[32], nhs[13], id[2 * EHX_MSGID_LEN + 1] = "";
	json_object *doc;

	if (n == NULL)
		return;
	if (json) {
		if ((doc = notice_json(it)) != NULL)
			print_json(f, doc);
		return;
	}
	if ((doc = notice_json(it)) != NULL) {
		json_object *m = json_object_object_get(doc, "message_id");

		if (m != NULL)
			snprintf(id, sizeof(id), "%s", json_object_get_string(m));
		json_object_put(doc);
	}
	fprintf(f, "Notification %llu: %s from %s\n",
	    (unsigned long long)it->seq, event_label(n->event), safe(n->agency));
	fprintf(f, "  child          %s\n", notice_child(nhs, n));
	notice_child_lines(f, n->child);
	fprintf(f, "  from           %s (%s)\n", safe(n->agency),
	    ehx_agency_type_name(n->agency_type));
	fprintf(f, "  category       %s\n", ehx_category_label(n->category));
	if (n->level == 0)
		fprintf(f, "  level of need  not shown to this agency\n");
	else if (n->previous_level != 0 &&
	    n->event == EHX__NOTIFY_EVENT__NOTIFY_EVENT_LEVEL_CHANGED)
		fprintf(f, "  level of need  %s (was %s)\n",
		    level_text(lvl, sizeof(lvl), n->level),
		    level_text(prev, sizeof(prev), n->previous_level));
	else
		fprintf(f, "  level of need  %s\n",
		    level_text(lvl, sizeof(lvl), n->level));
	if (n->contact == NULL)
		fprintf(f, "  contact        not shown to this agency\n");
	else
		fprintf(f, "  contact        %s%s%s%s%s%s\n",
		    safe(n->contact->name), n->contact->role[0] ? " (" : "",
		    safe(n->contact->role), n->contact->role[0] ? ")" : "",
		    n->contact->contact[0] ? ", " : "",
		    safe(n->contact->contact));
	fprintf(f, "  lead           %s\n", n->lead ? "yes" : "no");
	fprintf(f, "  lawful basis   %s%s%s\n", ehx_basis_name(n->basis),
	    n->consent_id[0] ? ", consent " : "", safe(n->consent_id));
	if (n->agreement[0] != '\0')
		fprintf(f, "  agreement      %s\n", safe(n->agreement));
	fprintf(f, "  flagged        %s UTC\n",
	    ehx_fmt_time(t, sizeof(t), n->flagged_at));
	fprintf(f, "  received       %s UTC\n",
	    ehx_fmt_time(t, sizeof(t), it->received_at));
	if (it->acked_at)
		fprintf(f, "  acknowledged   %s UTC\n",
		    ehx_fmt_time(t, sizeof(t), it->acked_at));
	else
		fprintf(f, "  acknowledged   no (ehx inbox ack %llu)\n",
		    (unsigned long long)it->seq);
	if (it->hooked_at)
		fprintf(f, "  hook           took it %s UTC\n",
		    ehx_fmt_time(t, sizeof(t), it->hooked_at));
	else if (it->hook_attempts > 0)
		fprintf(f, "  hook           not yet (%u attempts)\n",
		    it->hook_attempts);
	if (id[0] != '\0')
		fprintf(f, "  message id     %s\n", id);
}
