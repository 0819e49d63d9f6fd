/*
 * render.c — what `ehx` prints: aligned tables and short sentences for
 * people, one JSON document for scripts (json-c). Text that came from other
 * agencies is printed as it was validated by the broker (printable UTF-8,
 * no control characters), so it cannot drive the terminal.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "agent.h"
#include "ehx/err.h"
#include "ehx/names.h"
#include "ehx/nhs.h"
#include "ehx/util.h"

/*
 * s made safe for a terminal: a byte that does not start a complete UTF-8
 * sequence, and every control character, becomes '?'. The broker refuses
 * such text on the way in; the command line does not count on it. Returns
 * one of eight rotating buffers, so a few may appear in one printf.
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
		int len = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 ? 2 :
		    (*p & 0xf0) == 0xe0 ? 3 : (*p & 0xf8) == 0xf0 ? 4 : 0;

		for (int i = 1; i < len; i++)
			if ((p[i] & 0xc0) != 0x80)
				len = 0;
		if (len == 0 || *p < 0x20 || *p == 0x7f) {
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

/* Print s in exactly width columns (code points), cut or padded. */
static void
cell(FILE *f, const char *s, int width)
{
	const unsigned char *p = (const unsigned char *)s;
	int cols = 0;

	while (*p != '\0' && cols < width) {
		int len = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 ? 2 :
		    (*p & 0xf0) == 0xe0 ? 3 : 4;

		/* Never trust the bytes: a cut sequence prints as one '?'. */
		for (int i = 1; i < len; i++)
			if ((p[i] & 0xc0) != 0x80) {
				len = 0;
				break;
			}
		if (len == 0 || *p < 0x20 || *p == 0x7f) {
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

static json_object *
jstr(const char *s)
{
	return json_object_new_string(s != NULL ? s : "");
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

static void
picture_json(FILE *f, const Ehx__PictureResult *r)
{
	json_object *o = json_object_new_object(), *invs = json_object_new_array();
	char child[2 * EHX_PSEUDONYM_LEN + 1] = "";

	if (r->child.len == EHX_PSEUDONYM_LEN)
		ehx_hex(child, r->child.data, r->child.len);
	json_object_object_add(o, "ok", json_object_new_boolean(1));
	json_object_object_add(o, "child", jstr(child));
	json_object_object_add(o, "consent_id", jstr(r->consent_id));
	json_object_object_add(o, "highest_open_level",
	    json_object_new_int((int)r->highest_open_level));
	json_object_object_add(o, "truncated",
	    json_object_new_boolean(r->truncated));
	for (size_t i = 0; i < r->n_involvements; i++) {
		const Ehx__AgencyInvolvement *inv = r->involvements[i];
		json_object *a = json_object_new_object(),
		    *fl = json_object_new_array();

		json_object_object_add(a, "agency", jstr(inv->agency));
		json_object_object_add(a, "agency_type",
		    jstr(ehx_agency_type_name(inv->agency_type)));
		for (size_t k = 0; k < inv->n_flags; k++) {
			const Ehx__FlagView *v = inv->flags[k];
			json_object *j = json_object_new_object();

			json_object_object_add(j, "ref", jstr(v->ref));
			json_object_object_add(j, "category",
			    jstr(ehx_category_name(v->category)));
			json_object_object_add(j, "level",
			    json_object_new_int((int)v->level));
			json_object_object_add(j, "level_name",
			    jstr(ehx_level_name(v->level)));
			json_object_object_add(j, "status", jstr(v->status ==
			    EHX__FLAG_STATUS__FLAG_STATUS_OPEN ? "open" : "closed"));
			json_object_object_add(j, "opened_at", jtime(v->opened_at));
			json_object_object_add(j, "closed_at", jtime(v->closed_at));
			json_object_object_add(j, "updated_at",
			    jtime(v->updated_at));
			json_object_object_add(j, "practitioner",
			    json_practitioner(v->practitioner));
			json_object_object_add(j, "lead",
			    json_object_new_boolean(v->lead));
			json_object_object_add(j, "note", jstr(v->note));
			json_object_object_add(j, "close_reason",
			    jstr(v->close_reason));
			json_object_array_add(fl, j);
		}
		json_object_object_add(a, "flags", fl);
		json_object_array_add(invs, a);
	}
	json_object_object_add(o, "involvements", invs);
	print_json(f, o);
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
	fprintf(f, "Whole picture of child %s (pseudonym %s…), shared under "
	    "consent %s\n", pretty, child, safe(r->consent_id));
	if (r->highest_open_level > 0)
		fprintf(f, "Highest open level of need: %u (%s)\n",
		    r->highest_open_level, ehx_level_name(r->highest_open_level));
	else
		fprintf(f, "Highest open level of need: none open\n");
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
			if (v->note[0] != '\0' || v->close_reason[0] != '\0')
				nnotes++;
		}
	}
	if (nnotes > 0) {
		fprintf(f, "\nNotes:\n");
		for (size_t i = 0; i < r->n_involvements; i++)
			for (size_t k = 0; k < r->involvements[i]->n_flags; k++) {
				const Ehx__FlagView *v = r->involvements[i]->flags[k];

				if (v->note[0] != '\0')
					fprintf(f, "  %s/%s: %s\n",
					    safe(r->involvements[i]->agency),
					    safe(v->ref), safe(v->note));
				if (v->close_reason[0] != '\0')
					fprintf(f, "  %s/%s closed: %s\n",
					    safe(r->involvements[i]->agency),
					    safe(v->ref), safe(v->close_reason));
			}
	}
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

static void
consent_json(FILE *f, const Ehx__ConsentResult *r)
{
	json_object *o = json_object_new_object(), *arr = json_object_new_array();
	int64_t now = ehx_now_ms();

	json_object_object_add(o, "ok", json_object_new_boolean(1));
	for (size_t i = 0; i < r->n_records; i++) {
		const Ehx__ConsentRecord *c = r->records[i];
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
		json_object_object_add(j, "withdrawn_reason",
		    jstr(c->withdrawn_reason));
		json_object_array_add(arr, j);
	}
	json_object_object_add(o, "records", arr);
	json_object_object_add(o, "truncated",
	    json_object_new_boolean(r->truncated));
	print_json(f, o);
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
		else
			consent_table(f, reply->consent, nhs);
		break;
	case EHX__BODY__PAYLOAD_ACK:
		if (json) {
			json_object *o = json_object_new_object();

			json_object_object_add(o, "ok", json_object_new_boolean(1));
			json_object_object_add(o, "id", jstr(reply->ack->id));
			json_object_object_add(o, "basis", jstr(reply->ack->basis));
			print_json(f, o);
		}
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
