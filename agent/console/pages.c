/*
 * pages.c — the web console's pages (pages.h): plain server-rendered
 * HTML, one small stylesheet, and a small script that only checks an NHS
 * number as it is typed (static/; the server checks everything again).
 * Every question goes through creq_ask, so the broker decides, with the
 * consent rules and the audit, exactly as for the ehx command line.
 *
 * Information Officers: search a child, the whole picture with a timeline
 * drawn as SVG, the consent form and the break-glass route when there is
 * no consent. IG officers: the break-glass review queue, audit search with
 * CSV export, the checkpoint this agent has checked, the disclosures of
 * this agency's flags, and the console's sign-in log.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cli/render.h"
#include "ehx/err.h"
#include "ehx/names.h"
#include "ehx/nhs.h"
#include "ehx/util.h"
#include "pages.h"
#include "request.h"

#define ROLE(r) (1u << EHX__ROLE__ROLE_##r)
#define CSV_PAGES 40                 /* audit pages in one CSV download */

/* ---- the frame ----------------------------------------------------------- */

static void
page_begin(struct creq *r, const char *title)
{
	h_raw(r, "<!DOCTYPE html>\n<html lang=\"en-GB\"><head>"
	    "<meta charset=\"utf-8\">"
	    "<meta name=\"viewport\" content=\"width=device-width, "
	    "initial-scale=1\">"
	    "<link rel=\"stylesheet\" href=\"/static/console.css\">"
	    "<script src=\"/static/console.js\" defer></script><title>");
	h_text(r, title);
	h_raw(r, " — EHX ");
	h_text(r, r->agency);
	h_raw(r, "</title></head><body>"
	    "<a class=\"skip\" href=\"#main\">Skip to content</a>"
	    "<header><p class=\"brand\">EHX · Early Help Exchange · <span>");
	h_text(r, r->agency);
	h_raw(r, "</span></p>");
	if (r->signed_in) {
		h_raw(r, "<nav aria-label=\"Console\"><ul>"
		    "<li><a href=\"/\">Home</a></li>");
		if (r->who.roles & (ROLE(INFORMATION_OFFICER) |
		    ROLE(PRACTITIONER)))
			h_raw(r, "<li><a href=\"/child\">Find a child</a></li>");
		if (r->who.roles & ROLE(INFORMATION_OFFICER))
			h_raw(r, "<li><a href=\"/list\">Early help lists</a>"
			    "</li>");
		if (r->who.roles & ROLE(IG_OFFICER))
			h_raw(r, "<li><a href=\"/ig/alerts\">Break-glass "
			    "reviews</a></li><li><a href=\"/ig/audit\">Audit"
			    "</a></li><li><a href=\"/ig/disclosures\">"
			    "Disclosures</a></li><li><a href=\"/ig/checkpoint\">"
			    "Checkpoint</a></li><li><a href=\"/ig/signins\">"
			    "Sign-ins</a></li>");
		h_raw(r, "</ul></nav><form class=\"who\" method=\"post\" "
		    "action=\"/logout\"><span>");
		h_text(r, r->who.name);
		h_raw(r, " (");
		h_text(r, r->who.account);
		h_printf(r, ")</span><input type=\"hidden\" name=\"csrf\" "
		    "value=\"%s\"><button type=\"submit\">Sign out</button>"
		    "</form>", r->who.csrf);
	}
	h_raw(r, "</header><main id=\"main\"><h1>");
	h_text(r, title);
	h_raw(r, "</h1>");
}

static void
page_end(struct creq *r)
{
	h_raw(r, "</main><footer><p>Every question asked here is signed by "
	    "this agency, decided by the broker under the partnership's "
	    "consent rules and sharing policy, and kept in its audit.</p>"
	    "</footer></body></html>\n");
}

static void
csrf_field(struct creq *r)
{
	h_printf(r, "<input type=\"hidden\" name=\"csrf\" value=\"%s\">",
	    r->who.csrf);
}

void
pages_error(struct creq *r, unsigned status, const char *title,
    const char *sentence)
{
	r->status = status;
	page_begin(r, title);
	h_raw(r, "<p class=\"error\" role=\"alert\">");
	h_text(r, sentence);
	h_raw(r, "</p><p><a href=\"/\">Back to the console</a></p>");
	page_end(r);
}

void
pages_login(struct creq *r, const char *error, const char *token)
{
	const char *account = creq_arg(r, "account");

	r->signed_in = false;
	page_begin(r, "Sign in");
	if (error != NULL) {
		h_raw(r, "<p class=\"error\" role=\"alert\" id=\"login-error\">");
		h_text(r, error);
		h_raw(r, "</p>");
	}
	h_printf(r, "<form method=\"post\" action=\"/login\" class=\"stack\">"
	    "<input type=\"hidden\" name=\"csrf\" value=\"%s\">"
	    "<label for=\"account\">Account name</label>"
	    "<input id=\"account\" name=\"account\" autocomplete=\"username\" "
	    "required maxlength=\"%d\" value=\"", token, EHX_MAX_ACCOUNT);
	h_text(r, account);
	h_printf(r, "\"%s><label for=\"password\">Password</label>"
	    "<input id=\"password\" name=\"password\" type=\"password\" "
	    "autocomplete=\"current-password\" required maxlength=\"%d\">"
	    "<button type=\"submit\">Sign in</button></form>"
	    "<p>Sign in with the account your agency's administrator gave "
	    "you. Failed attempts are recorded; after several, sign-in is "
	    "paused.</p>", error != NULL ? " aria-describedby=\"login-error\"" :
	    "", EHX_PASSWORD_MAX);
	page_end(r);
}

/* ---- helpers ------------------------------------------------------------- */

/* The role to act in for a page: the first of want the person holds, or
 * 0 (and a refusal page). */
static int
need_role(struct creq *r, const int *want, size_t n, const char *what)
{
	char why[200];

	for (size_t i = 0; i < n; i++)
		if (r->who.roles & (1u << want[i]))
			return want[i];
	snprintf(why, sizeof(why), "The users file does not give you a role "
	    "that may %s.", what);
	pages_error(r, 403, "Not permitted", why);
	return 0;
}

static int
io_role(struct creq *r)
{
	static const int want[] = { EHX__ROLE__ROLE_INFORMATION_OFFICER,
	    EHX__ROLE__ROLE_PRACTITIONER };

	return need_role(r, want, 2, "see a child's whole picture");
}

static int
ig_role(struct creq *r)
{
	static const int want[] = { EHX__ROLE__ROLE_IG_OFFICER };

	return need_role(r, want, 1, "see the audit and its reviews");
}

static void
h_time(struct creq *r, int64_t ms)
{
	char t[40];

	ehx_fmt_time(t, sizeof(t), ms);
	h_text(r, t);
}

static void
h_hex(struct creq *r, const ProtobufCBinaryData *b, size_t max)
{
	char hex[2 * 32 + 1];
	size_t n = b->len < max ? b->len : max;

	if (n > 32)
		n = 32;
	ehx_hex(hex, b->data, n);
	h_raw(r, hex);
}

/* What went wrong, for people: the broker's (or agent's) sentence after
 * our own explanation of its kind. */
static void
h_refusal(struct creq *r, const Ehx__Error *e)
{
	int code = e != NULL ? ehx_err_from_wire(e->code) : EHX_ERR_INTERNAL;

	h_raw(r, "<p class=\"error\" role=\"alert\">");
	h_text(r, ehx_strerror(code));
	if (e != NULL && e->message != NULL && e->message[0] != '\0') {
		h_raw(r, ": ");
		h_text(r, e->message);
	}
	h_raw(r, "</p>");
}

/*
 * Ask for payload (msg, one of the Body's request messages; wait: a
 * change answered when the broker has decided it), and on any failure put
 * the reason on the page. Returns the reply
 * body when it carries payload want, else NULL (*lrp is set whenever a
 * reply came: the caller frees it). *err gets the error the body holds.
 */
static const Ehx__Body *
ask(struct creq *r, int role, int payload, void *msg, bool wait, int want,
    Ehx__LocalReply **lrp, const Ehx__Error **err)
{
	Ehx__LocalRequest lr = EHX__LOCAL_REQUEST__INIT;
	Ehx__Body req = EHX__BODY__INIT;
	const Ehx__Body *b;
	int rc;

	/* Every payload member shares the union: set the one pointer. */
	req.payload_case = (Ehx__Body__PayloadCase)payload;
	req.publish_flag = msg;
	lr.body = &req;
	lr.wait = wait;
	rc = creq_ask(r, role, &lr, lrp);

	if (err != NULL)
		*err = NULL;
	if (rc != 0) {
		r->status = 503;
		h_raw(r, "<p class=\"error\" role=\"alert\">");
		h_text(r, rc == EHX_ERR_TIMEOUT ? "The agent did not answer in "
		    "time: what you asked may or may not have been done. "
		    "Check (search the child again) before you repeat it." :
		    "The agent is not available just now; nothing was done. "
		    "Try again shortly.");
		h_raw(r, "</p>");
		return NULL;
	}
	b = (*lrp)->reply;
	if (b != NULL && b->payload_case == (Ehx__Body__PayloadCase)want)
		return b;
	if (b != NULL && b->payload_case == EHX__BODY__PAYLOAD_ERROR) {
		if (err != NULL)
			*err = b->error;
		return NULL;
	}
	if ((*lrp)->queued != NULL) {
		h_raw(r, "<p class=\"notice\" role=\"status\">The change is "
		    "queued in this agency's outbox and will reach the broker "
		    "when it can be reached.</p>");
		return NULL;
	}
	r->status = 502;
	h_raw(r, "<p class=\"error\" role=\"alert\">The answer was not the one "
	    "expected.</p>");
	return NULL;
}

static void
free_reply(Ehx__LocalReply *lr)
{
	if (lr != NULL)
		ehx__local_reply__free_unpacked(lr, NULL);
}

/* The NHS number argument, normalised; false (and a sentence) if bad. */
static bool
nhs_arg(struct creq *r, char nhs[EHX_NHS_LEN + 1], const char **why)
{
	const char *v = creq_arg(r, "nhs");

	*why = NULL;
	if (v == NULL || v[0] == '\0')
		return false;
	if (strlen(v) > 20 || ehx_nhs_normalise(v, nhs) != 0) {
		*why = "That is not a valid NHS number: it has 10 digits, and "
		    "the last is a check digit (modulus 11). Check it and try "
		    "again.";
		return false;
	}
	return true;
}

/* ---- home ---------------------------------------------------------------- */

static void
page_home(struct creq *r)
{
	page_begin(r, "Early help console");
	h_raw(r, "<p>Signed in as ");
	h_text(r, r->who.name);
	h_raw(r, ".</p><ul class=\"cards\">");
	if (r->who.roles & (ROLE(INFORMATION_OFFICER) | ROLE(PRACTITIONER)))
		h_raw(r, "<li><a href=\"/child\">Find a child</a>: the whole "
		    "picture of a child's service involvement, consent, and "
		    "break-glass when a child is at risk of significant harm."
		    "</li>");
	if (r->who.roles & ROLE(INFORMATION_OFFICER))
		h_raw(r, "<li><a href=\"/list\">Right early help lists</a>: the "
		    "children of a locality known to several agencies, and "
		    "those meeting two or more Troubled Families criteria.</li>");
	if (r->who.roles & ROLE(IG_OFFICER))
		h_raw(r, "<li><a href=\"/ig/alerts\">Break-glass reviews</a>"
		    "</li><li><a href=\"/ig/audit\">Audit search</a> and CSV "
		    "export</li><li><a href=\"/ig/disclosures\">Disclosures"
		    "</a> of this agency's flags</li><li><a href=\""
		    "/ig/checkpoint\">The audit checkpoint</a> and this "
		    "agent's checks</li><li><a href=\"/ig/signins\">Console "
		    "sign-ins</a></li>");
	h_raw(r, "</ul>");
	if ((r->who.roles & (ROLE(INFORMATION_OFFICER) | ROLE(PRACTITIONER) |
	    ROLE(IG_OFFICER))) == 0)
		h_raw(r, "<p>Your account has no role that uses the console "
		    "(information officer, practitioner, IG officer).</p>");
	page_end(r);
}

/* ---- a child ------------------------------------------------------------- */

static void
search_form(struct creq *r, const char *value, const char *why)
{
	h_raw(r, "<form method=\"get\" action=\"/child\" class=\"search\" "
	    "role=\"search\"><label for=\"nhs\">NHS number</label>"
	    "<input id=\"nhs\" name=\"nhs\" inputmode=\"numeric\" "
	    "autocomplete=\"off\" maxlength=\"20\" required "
	    "data-nhs aria-describedby=\"nhs-hint nhs-msg\"");
	if (why != NULL)
		h_raw(r, " aria-invalid=\"true\"");
	h_raw(r, " value=\"");
	h_text(r, value);
	h_raw(r, "\"><span id=\"nhs-hint\" class=\"hint\">10 digits; spaces "
	    "are fine</span><span id=\"nhs-msg\" class=\"fieldmsg\" "
	    "aria-live=\"polite\">");
	h_text(r, why);
	h_raw(r, "</span><button type=\"submit\">Search</button></form>");
}

static const char *const level_colour[] = { "#bbb", "#9cc7e8", "#7fc97f",
    "#fdc086", "#f08080" };

/* One flag's end on the timeline: its close, or now. */
static int64_t
flag_end(const Ehx__FlagView *f, int64_t now)
{
	return f->status == EHX__FLAG_STATUS__FLAG_STATUS_CLOSED &&
	    f->closed_at > 0 ? f->closed_at : now;
}

/* The highest level of need open at time t. */
static unsigned
level_at(const Ehx__PictureResult *p, int64_t t, int64_t now)
{
	unsigned lv = 0;

	for (size_t i = 0; i < p->n_involvements; i++)
		for (size_t j = 0; j < p->involvements[i]->n_flags; j++) {
			const Ehx__FlagView *f = p->involvements[i]->flags[j];

			if (f->opened_at <= t && t < flag_end(f, now) &&
			    f->level > lv && f->level <= 4)
				lv = f->level;
		}
	return lv;
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * The timeline: one row per agency with a bar per flag from its opening
 * to its close (or now), coloured and labelled by level; above them the
 * highest open level of need as a step line. The same facts are in the
 * table below it, for screen readers and print.
 */
static void
timeline(struct creq *r, const Ehx__PictureResult *p, int64_t now)
{
	const double left = 250, width = 960, right = 20, top = 90, row = 30;
	double span, plot = width - left - right;
	int64_t t0 = now, t1 = now, *ev = NULL;
	size_t nev = 0, nflags = 0;
	double height;

	for (size_t i = 0; i < p->n_involvements; i++) {
		nflags += p->involvements[i]->n_flags;
		for (size_t j = 0; j < p->involvements[i]->n_flags; j++) {
			const Ehx__FlagView *f = p->involvements[i]->flags[j];

			if (f->opened_at > 0 && f->opened_at < t0)
				t0 = f->opened_at;
		}
	}
	if (nflags == 0)
		return;
	/* From a little before the first opening to now; a minute at least. */
	span = (double)(t1 - t0) * 1.05;
	if (span < 60000.0)
		span = 60000.0;
	t0 = t1 - (int64_t)span;
	height = top + row * (double)nflags + 40;
#define X(t) (left + plot * (double)((t) - t0) / span)
	h_printf(r, "<figure class=\"timeline\"><svg role=\"img\" "
	    "aria-labelledby=\"tl-title\" viewBox=\"0 0 %.0f %.0f\" "
	    "xmlns=\"http://www.w3.org/2000/svg\"><title id=\"tl-title\">"
	    "Timeline of each agency's involvement and the level of need"
	    "</title>", width, height);
	/* the level of need across the whole time */
	h_printf(r, "<text x=\"4\" y=\"20\" class=\"lab\">Level of need</text>");
	for (unsigned l = 1; l <= 4; l++)
		h_printf(r, "<text x=\"%.0f\" y=\"%.0f\" class=\"tick\">%u</text>"
		    "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.0f\" y2=\"%.0f\" "
		    "class=\"grid\"/>", left - 14, 74 - 14.0 * l + 4, l, left,
		    left + plot, 74 - 14.0 * l, 74 - 14.0 * l);
	if ((ev = malloc(sizeof(*ev) * (2 * nflags + 2))) != NULL) {
		unsigned lv;

		ev[nev++] = t0;
		for (size_t i = 0; i < p->n_involvements; i++)
			for (size_t j = 0; j < p->involvements[i]->n_flags;
			    j++) {
				const Ehx__FlagView *f =
				    p->involvements[i]->flags[j];

				if (f->opened_at > t0 && f->opened_at < t1)
					ev[nev++] = f->opened_at;
				if (flag_end(f, now) > t0 &&
				    flag_end(f, now) < t1)
					ev[nev++] = flag_end(f, now);
			}
		qsort(ev, nev, sizeof(*ev), cmp_i64);
		lv = level_at(p, ev[0], now);
		h_printf(r, "<path class=\"need\" d=\"M%.1f %.1f", X(ev[0]),
		    74 - 14.0 * lv);
		for (size_t i = 1; i < nev; i++) {
			unsigned nl = level_at(p, ev[i], now);

			if (nl == lv)
				continue;
			h_printf(r, " H%.1f V%.1f", X(ev[i]), 74 - 14.0 * nl);
			lv = nl;
		}
		h_printf(r, " H%.1f\"/>", X(t1));
		free(ev);
	}
	/* a row per flag, grouped by agency */
	for (size_t i = 0, k = 0; i < p->n_involvements; i++) {
		const Ehx__AgencyInvolvement *a = p->involvements[i];

		for (size_t j = 0; j < a->n_flags; j++, k++) {
			const Ehx__FlagView *f = a->flags[j];
			double y = top + row * (double)k;
			int64_t s = f->opened_at > t0 ? f->opened_at : t0;
			double x = X(s), w = X(flag_end(f, now)) - x;
			unsigned lv = f->level <= 4 ? f->level : 0;

			h_printf(r, "<text x=\"4\" y=\"%.0f\" class=\"lab\">",
			    y + 18);
			if (j == 0) {
				h_raw(r, "<tspan class=\"agency\">");
				h_text(r, a->agency);
				h_raw(r, "</tspan> ");
			}
			h_text(r, ehx_category_label(f->category));
			h_raw(r, "</text>");
			if (w < 3)
				w = 3;
			h_printf(r, "<g><title>");
			h_text(r, a->agency);
			h_raw(r, ": ");
			h_text(r, ehx_category_label(f->category));
			h_printf(r, ", level %u, %s, ", lv, f->status ==
			    EHX__FLAG_STATUS__FLAG_STATUS_OPEN ? "open" :
			    "closed");
			h_time(r, f->opened_at);
			h_raw(r, " to ");
			if (f->status == EHX__FLAG_STATUS__FLAG_STATUS_OPEN)
				h_raw(r, "now");
			else
				h_time(r, f->closed_at);
			h_printf(r, "</title><rect x=\"%.1f\" y=\"%.0f\" "
			    "width=\"%.1f\" height=\"22\" rx=\"3\" fill=\"%s\" "
			    "class=\"%s\"/>", x, y + 3, w, level_colour[lv],
			    f->status == EHX__FLAG_STATUS__FLAG_STATUS_OPEN ?
			    "open" : "closed");
			if (w > 24)
				h_printf(r, "<text x=\"%.1f\" y=\"%.0f\" "
				    "class=\"bar\">L%u</text></g>", x + 4,
				    y + 19, lv);
			else
				h_raw(r, "</g>");
		}
	}
	/* the time axis: four dates and now */
	for (int i = 0; i < 4; i++) {
		int64_t t = t0 + (int64_t)(span * i / 4);

		h_printf(r, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.0f\" "
		    "y2=\"%.0f\" class=\"grid\"/><text x=\"%.1f\" "
		    "y=\"%.0f\" class=\"tick\">", X(t), X(t), top - 6,
		    height - 24, X(t), height - 8);
		h_time(r, t);
		h_raw(r, "</text>");
	}
	h_printf(r, "<text x=\"%.0f\" y=\"%.0f\" class=\"tick\" "
	    "text-anchor=\"end\">now</text></svg>", left + plot, height - 8);
#undef X
	h_raw(r, "<figcaption>Bars: each agency's flags from opening to "
	    "closing, labelled with the level of need (L1 universal, L2 "
	    "additional, L3 complex, L4 acute). The line above: the highest "
	    "open level over time.</figcaption></figure>");
}

static void
picture(struct creq *r, const char *nhs, const Ehx__PictureResult *p)
{
	int64_t now = ehx_now_ms();
	char fmt[13];

	h_raw(r, "<section aria-labelledby=\"pic\"><h2 id=\"pic\">Whole "
	    "picture for NHS number ");
	h_text(r, ehx_nhs_format(fmt, nhs));
	h_raw(r, "</h2>");
	if (p->basis != NULL && strcmp(p->basis, "break-glass") == 0)
		h_raw(r, "<p class=\"warning\" role=\"alert\">Shown by "
		    "break-glass, without consent. This access is recorded "
		    "and will be reviewed by information governance.</p>");
	h_raw(r, "<p>Shared on the basis <code>");
	h_text(r, p->basis);
	h_printf(r, "</code>. Highest open level of need: <strong>%u",
	    p->highest_open_level);
	if (p->highest_open_level > 0) {
		h_raw(r, " (");
		h_text(r, ehx_level_name(p->highest_open_level));
		h_raw(r, ")");
	}
	h_raw(r, "</strong>.</p>");
	if (p->truncated)
		h_raw(r, "<p class=\"notice\">This child has more flags than "
		    "one answer holds; the oldest are left out.</p>");
	if (p->n_involvements == 0) {
		h_raw(r, "<p>No agency has a flag for this child that this "
		    "agency may see.</p></section>");
		return;
	}
	h_raw(r, "<h3>Who is involved now</h3><table><thead><tr>"
	    "<th scope=\"col\">Agency</th><th scope=\"col\">Practitioner</th>"
	    "<th scope=\"col\">Contact</th><th scope=\"col\">Level</th>"
	    "<th scope=\"col\">Categories</th></tr></thead><tbody>");
	for (size_t i = 0; i < p->n_involvements; i++) {
		const Ehx__AgencyInvolvement *a = p->involvements[i];

		for (size_t j = 0; j < a->n_flags; j++) {
			const Ehx__FlagView *f = a->flags[j];
			const Ehx__Practitioner *pr = f->practitioner;

			if (f->status != EHX__FLAG_STATUS__FLAG_STATUS_OPEN)
				continue;
			h_raw(r, "<tr><td>");
			h_text(r, a->agency);
			if (strcmp(a->agency, ehx_agency_type_name(
			    a->agency_type)) != 0) {
				h_raw(r, " <span class=\"hint\">");
				h_text(r, ehx_agency_type_name(a->agency_type));
				h_raw(r, "</span>");
			}
			h_raw(r, "</td><td>");
			if (pr != NULL) {
				h_text(r, pr->name);
				if (pr->role != NULL && pr->role[0]) {
					h_raw(r, ", ");
					h_text(r, pr->role);
				}
			}
			if (f->lead)
				h_raw(r, " <strong class=\"lead\">lead "
				    "practitioner</strong>");
			h_raw(r, "</td><td>");
			if (pr != NULL)
				h_text(r, pr->contact);
			h_printf(r, "</td><td>%u ", f->level);
			h_text(r, ehx_level_name(f->level));
			h_raw(r, "</td><td>");
			h_text(r, ehx_category_label(f->category));
			h_raw(r, "</td></tr>");
		}
	}
	h_raw(r, "</tbody></table><h3>Timeline</h3>");
	timeline(r, p, now);
	h_raw(r, "<h3>History</h3><table><thead><tr><th scope=\"col\">Agency"
	    "</th><th scope=\"col\">Category</th><th scope=\"col\">Level</th>"
	    "<th scope=\"col\">Status</th><th scope=\"col\">Opened (UTC)</th>"
	    "<th scope=\"col\">Closed (UTC)</th><th scope=\"col\">Note</th>"
	    "</tr></thead><tbody>");
	for (size_t i = 0; i < p->n_involvements; i++) {
		const Ehx__AgencyInvolvement *a = p->involvements[i];

		for (size_t j = 0; j < a->n_flags; j++) {
			const Ehx__FlagView *f = a->flags[j];

			h_raw(r, "<tr><td>");
			h_text(r, a->agency);
			h_raw(r, "</td><td>");
			h_text(r, ehx_category_label(f->category));
			h_printf(r, "</td><td>%u</td><td>%s</td><td>",
			    f->level, f->status ==
			    EHX__FLAG_STATUS__FLAG_STATUS_OPEN ? "open" :
			    "closed");
			h_time(r, f->opened_at);
			h_raw(r, "</td><td>");
			if (f->closed_at > 0)
				h_time(r, f->closed_at);
			h_raw(r, "</td><td>");
			h_text(r, f->note);
			if (f->close_reason != NULL && f->close_reason[0]) {
				h_raw(r, " <span class=\"hint\">closed: ");
				h_text(r, f->close_reason);
				h_raw(r, "</span>");
			}
			h_raw(r, "</td></tr>");
		}
	}
	h_raw(r, "</tbody></table></section>");
}

static void
checkbox(struct creq *r, const char *name, const char *value,
    const char *label, bool checked)
{
	h_printf(r, "<label class=\"check\"><input type=\"checkbox\" "
	    "name=\"%s\" value=\"%s\"%s> ", name, value, checked ?
	    " checked" : "");
	h_text(r, label);
	h_raw(r, "</label>");
}

/* The consent form, refilled with what was sent when it comes back. */
static void
consent_form(struct creq *r, const char *nhs, const char *error)
{
	static const char *const types[] = { "police", "health", "school",
	    "housing", "local_authority", "voluntary" };
	static const char *const purposes[] = { "whole_picture",
	    "notifications", "assessment" };
	static const char *const purpose_labels[] = { "Whole picture "
	    "(this view)", "Notifications to agencies involved",
	    "Family Early Help Assessment" };
	const char *sel[16], *rel = creq_arg(r, "relation"),
	    *basis = creq_arg(r, "basis");
	size_t n;

	h_raw(r, "<section aria-labelledby=\"cf\"><h2 id=\"cf\">Record "
	    "consent</h2>");
	if (error != NULL) {
		h_raw(r, "<p class=\"error\" role=\"alert\">");
		h_text(r, error);
		h_raw(r, "</p>");
	}
	h_raw(r, "<form method=\"post\" action=\"/consent\" class=\"stack\">");
	csrf_field(r);
	h_raw(r, "<input type=\"hidden\" name=\"nhs\" value=\"");
	h_text(r, nhs);
	h_raw(r, "\"><fieldset><legend>Who gave consent</legend>");
	for (int i = 1; i <= 3; i++) {
		const char *v = ehx_relation_name(i);

		h_printf(r, "<label class=\"check\"><input type=\"radio\" "
		    "name=\"relation\" value=\"%s\" required%s> %s</label>",
		    v, rel != NULL && strcmp(rel, v) == 0 ? " checked" : "",
		    i == 1 ? "The young person" : i == 2 ? "A parent" :
		    "A carer");
	}
	h_printf(r, "<label for=\"given_name\">Their name</label><input "
	    "id=\"given_name\" name=\"given_name\" required maxlength=\"%d\" "
	    "value=\"", EHX_MAX_NAME);
	h_text(r, creq_arg(r, "given_name"));
	/* Agencies by id first: a type covers only the agencies of it
	 * that are involved with the child. */
	h_raw(r, "\"></fieldset><fieldset><legend>Which agencies may see "
	    "it</legend><p class=\"hint\">Name the agencies the consent is "
	    "for. A type ticked covers only those agencies of it that are "
	    "already involved with the child, never every one in the "
	    "partnership.</p>");
	h_raw(r, "<label for=\"agencies\">Agencies by id (comma-separated)"
	    "</label><input id=\"agencies\" name=\"agencies\" "
	    "maxlength=\"1100\" value=\"");
	h_text(r, creq_arg(r, "agencies"));
	h_raw(r, "\">");
	n = creq_args(r, "agency_type", sel, 16);
	for (size_t i = 0; i < 6; i++) {
		bool on = false;

		for (size_t j = 0; j < n; j++)
			on = on || strcmp(sel[j], types[i]) == 0;
		checkbox(r, "agency_type", types[i], types[i], on);
	}
	h_raw(r, "</fieldset><fieldset><legend>For what</legend>");
	n = creq_args(r, "purpose", sel, 16);
	for (size_t i = 0; i < 3; i++) {
		bool on = false;

		for (size_t j = 0; j < n; j++)
			on = on || strcmp(sel[j], purposes[i]) == 0;
		checkbox(r, "purpose", purposes[i], purpose_labels[i], on);
	}
	h_raw(r, "</fieldset><label for=\"basis\">Lawful basis</label>"
	    "<select id=\"basis\" name=\"basis\">");
	for (int i = 1; i <= 4; i++)
		h_printf(r, "<option value=\"%s\"%s>%s</option>",
		    ehx_basis_name(i), basis != NULL &&
		    strcmp(basis, ehx_basis_name(i)) == 0 ? " selected" : "",
		    ehx_basis_name(i));
	h_raw(r, "</select><label for=\"expires\">Expires on</label>"
	    "<input id=\"expires\" name=\"expires\" type=\"date\" required "
	    "aria-describedby=\"exp-hint\" value=\"");
	h_text(r, creq_arg(r, "expires"));
	h_raw(r, "\"><span id=\"exp-hint\" class=\"hint\">At most three years "
	    "ahead (YYYY-MM-DD)</span>");
	h_printf(r, "<label for=\"evidence_ref\">Consent form reference"
	    "</label><input id=\"evidence_ref\" name=\"evidence_ref\" "
	    "required maxlength=\"%d\" aria-describedby=\"ev-hint\" value=\"",
	    EHX_MAX_EVIDENCE_REF);
	h_text(r, creq_arg(r, "evidence_ref"));
	h_raw(r, "\"><span id=\"ev-hint\" class=\"hint\">The signed form or "
	    "case record it rests on. A consent you record and then use "
	    "yourself within a day is raised for IG review.</span>"
	    "<button type=\"submit\">Record consent</button></form>"
	    "</section>");
}

static void
break_glass_form(struct creq *r, const char *nhs, const char *error)
{
	h_raw(r, "<section aria-labelledby=\"bg\" class=\"breakglass\">"
	    "<h2 id=\"bg\">Break glass</h2><p>Only if you believe this child "
	    "is at risk of significant harm. The picture is then shown "
	    "without consent; your reason, your name and the time are "
	    "recorded and <strong>every break-glass access is reviewed by "
	    "information governance</strong>.</p>");
	if (error != NULL) {
		h_raw(r, "<p class=\"error\" role=\"alert\">");
		h_text(r, error);
		h_raw(r, "</p>");
	}
	h_raw(r, "<form method=\"post\" action=\"/breakglass\" "
	    "class=\"stack\">");
	csrf_field(r);
	h_raw(r, "<input type=\"hidden\" name=\"nhs\" value=\"");
	h_text(r, nhs);
	h_printf(r, "\"><label for=\"reason\">Reason (%d to %d characters)"
	    "</label><textarea id=\"reason\" name=\"reason\" required "
	    "minlength=\"20\" maxlength=\"%d\" rows=\"3\">", 20,
	    EHX_MAX_REASON, EHX_MAX_REASON);
	h_text(r, creq_arg(r, "reason"));
	h_raw(r, "</textarea><button type=\"submit\" class=\"danger\">Break "
	    "glass and show the picture</button></form></section>");
}

/* Ask for the picture (with a break-glass reason, or NULL) and show it,
 * or the refusal with what to do next. */
static void
child_answer(struct creq *r, int role, const char *nhs, const char *reason,
    const char *consent_error, const char *glass_error)
{
	Ehx__QueryPicture q = EHX__QUERY_PICTURE__INIT;
	Ehx__LocalReply *rep = NULL;
	const Ehx__Error *e;
	const Ehx__Body *ans;

	q.nhs_number = (char *)nhs;
	q.break_glass_reason = (char *)(reason != NULL ? reason : "");
	if ((ans = ask(r, role, EHX__BODY__PAYLOAD_QUERY_PICTURE, &q, false,
	    EHX__BODY__PAYLOAD_PICTURE, &rep, &e)) != NULL)
		picture(r, nhs, ans->picture);
	else if (e != NULL && ehx_err_from_wire(e->code) ==
	    EHX_ERR_NO_CONSENT) {
		r->status = 200;
		h_raw(r, "<section aria-labelledby=\"nc\"><h2 id=\"nc\">No "
		    "consent covers this agency</h2><p class=\"notice\" "
		    "role=\"status\">The broker shares a child's whole picture "
		    "only when the child's (or family's) consent covers this "
		    "agency and this purpose, or the sharing policy names "
		    "another lawful basis. Neither applies, so nothing is "
		    "shown, not even whether any agency is involved.</p>"
		    "<p>If the family agrees, record their consent below. If "
		    "you believe the child is at risk of significant harm, use "
		    "break-glass.</p></section>");
		consent_form(r, nhs, consent_error);
		break_glass_form(r, nhs, glass_error);
	} else if (e != NULL) {
		r->status = 400;
		h_refusal(r, e);
		if (reason != NULL)
			break_glass_form(r, nhs, NULL);
	}
	free_reply(rep);
}

static void
page_child(struct creq *r)
{
	char nhs[EHX_NHS_LEN + 1];
	const char *why, *done = creq_arg(r, "done");
	int role;

	if ((role = io_role(r)) == 0)
		return;
	page_begin(r, "Find a child");
	if (!nhs_arg(r, nhs, &why)) {
		if (why != NULL)
			r->status = 400;
		search_form(r, creq_arg(r, "nhs"), why);
		page_end(r);
		return;
	}
	search_form(r, nhs, NULL);
	if (done != NULL && strcmp(done, "consent") == 0)
		h_raw(r, "<p class=\"notice\" role=\"status\">Consent recorded."
		    "</p>");
	child_answer(r, role, nhs, NULL, NULL, NULL);
	page_end(r);
}

/* Comma-separated agency ids into out; false if one is not an id. */
static bool
split_agencies(char *s, char **out, size_t *n, size_t max)
{
	char *save = NULL;

	*n = 0;
	for (char *w = strtok_r(s, ", ", &save); w != NULL;
	    w = strtok_r(NULL, ", ", &save)) {
		if (*n == max || !ehx_id_ok(w))
			return false;
		out[(*n)++] = w;
	}
	return true;
}

static void
post_consent(struct creq *r)
{
	Ehx__RecordConsent rc = EHX__RECORD_CONSENT__INIT;
	Ehx__GivenBy gb = EHX__GIVEN_BY__INIT;
	Ehx__ConsentScope sc = EHX__CONSENT_SCOPE__INIT;
	Ehx__LocalReply *rep = NULL;
	const Ehx__Error *e = NULL;
	const char *why, *vals[16], *v;
	char nhs[EHX_NHS_LEN + 1], agencies[1200], *ids[EHX_MAX_SCOPE_AGENCIES];
	Ehx__AgencyType types[EHX_MAX_SCOPE_TYPES];
	Ehx__Purpose purposes[EHX_MAX_PURPOSES];
	const char *error = NULL;
	size_t n, nids = 0;
	int64_t now = ehx_now_ms(), exp;
	int role;

	if ((role = io_role(r)) == 0)
		return;
	if (!nhs_arg(r, nhs, &why)) {
		pages_error(r, 400, "Record consent", why != NULL ? why :
		    "The form names no child.");
		return;
	}
	page_begin(r, "Record consent");
	rc.nhs_number = nhs;
	if ((v = creq_arg(r, "relation")) == NULL || ehx_relation_parse(v) <= 0)
		error = "Say who gave consent: the young person, a parent or a "
		    "carer.";
	gb.relation = v != NULL ? (Ehx__Relation)ehx_relation_parse(v) : 0;
	gb.name = (char *)creq_arg(r, "given_name");
	if (error == NULL && (gb.name == NULL ||
	    !ehx_text_ok(gb.name, 1, EHX_MAX_NAME)))
		error = "Give the name of the person who gave consent (up to "
		    "128 characters).";
	n = creq_args(r, "agency_type", vals, 16);
	for (size_t i = 0; i < n && error == NULL; i++) {
		if (i == EHX_MAX_SCOPE_TYPES || ehx_agency_type_parse(vals[i]) <= 0)
			error = "An agency type in the form is not one the "
			    "console offers.";
		else
			types[sc.n_agency_types++] =
			    (Ehx__AgencyType)ehx_agency_type_parse(vals[i]);
	}
	v = creq_arg(r, "agencies");
	if (error == NULL && v != NULL && strlen(v) >= sizeof(agencies))
		error = "The list of agencies is too long (at most 32 ids).";
	snprintf(agencies, sizeof(agencies), "%s", v != NULL && strlen(v) <
	    sizeof(agencies) ? v : "");
	if (error == NULL && !split_agencies(agencies, ids, &nids,
	    EHX_MAX_SCOPE_AGENCIES))
		error = "Agencies are ids (a-z, 0-9, _ and -) separated by "
		    "commas, at most 32.";
	if (error == NULL && nids == 0 && sc.n_agency_types == 0)
		error = "Choose at least one agency type or agency the consent "
		    "covers.";
	n = creq_args(r, "purpose", vals, 16);
	for (size_t i = 0; i < n && error == NULL; i++) {
		if (i == EHX_MAX_PURPOSES || ehx_purpose_parse(vals[i]) <= 0)
			error = "A purpose in the form is not one the console "
			    "offers.";
		else
			purposes[sc.n_purposes++] =
			    (Ehx__Purpose)ehx_purpose_parse(vals[i]);
	}
	if (error == NULL && sc.n_purposes == 0)
		error = "Choose at least one purpose.";
	if (error == NULL && ((v = creq_arg(r, "basis")) == NULL ||
	    ehx_basis_parse(v) <= 0))
		error = "Choose the lawful basis.";
	if (error == NULL && ((v = creq_arg(r, "expires")) == NULL ||
	    strlen(v) != 10 || ehx_parse_time(v, now, &exp) != 0 ||
	    exp <= now))
		error = "Give the date the consent expires, after today "
		    "(YYYY-MM-DD).";
	if (error == NULL && ((v = creq_arg(r, "evidence_ref")) == NULL ||
	    v[0] == '\0' || strlen(v) > EHX_MAX_EVIDENCE_REF))
		error = "Give the reference of the signed consent form (or the "
		    "case record) it rests on, up to 64 characters.";
	if (error != NULL) {
		r->status = 400;
		consent_form(r, nhs, error);
		page_end(r);
		return;
	}
	sc.agency_types = types;
	sc.agencies = ids;
	sc.n_agencies = nids;
	sc.purposes = purposes;
	rc.given_by = &gb;
	rc.scope = &sc;
	rc.basis = (Ehx__LawfulBasis)ehx_basis_parse(creq_arg(r, "basis"));
	rc.expires_at = exp;
	rc.evidence_ref = (char *)creq_arg(r, "evidence_ref");
	if (ask(r, role, EHX__BODY__PAYLOAD_RECORD_CONSENT, &rc, true,
	    EHX__BODY__PAYLOAD_ACK, &rep, &e) != NULL) {
		snprintf(r->location, sizeof(r->location),
		    "/child?nhs=%s&done=consent", nhs);
	} else if (e != NULL) {
		char msg[400];
		int code = ehx_err_from_wire(e->code);

		r->status = 400;
		snprintf(msg, sizeof(msg), "The broker did not record it: "
		    "%s%s%s", ehx_strerror(code), e->message != NULL &&
		    e->message[0] ? ": " : "", e->message != NULL ?
		    e->message : "");
		consent_form(r, nhs, msg);
	}
	free_reply(rep);
	page_end(r);
}

static void
post_break_glass(struct creq *r)
{
	char nhs[EHX_NHS_LEN + 1];
	const char *why, *reason = creq_arg(r, "reason");
	int role;

	if ((role = io_role(r)) == 0)
		return;
	if (!nhs_arg(r, nhs, &why)) {
		pages_error(r, 400, "Break glass", why != NULL ? why :
		    "The form names no child.");
		return;
	}
	page_begin(r, "Break glass");
	if (reason == NULL || !ehx_text_ok(reason, 20, EHX_MAX_REASON)) {
		r->status = 400;
		break_glass_form(r, nhs, "Give your reason: 20 to 280 "
		    "characters saying why the child is at risk of "
		    "significant harm.");
		page_end(r);
		return;
	}
	child_answer(r, role, nhs, reason, NULL, NULL);
	page_end(r);
}

/* ---- right early help lists ---------------------------------------------- */

static void
list_form(struct creq *r, int list, const char *locality)
{
	h_raw(r, "<form method=\"get\" action=\"/list\" class=\"filters\">"
	    "<label for=\"l-list\">List</label><select id=\"l-list\" "
	    "name=\"list\">");
	for (int i = 1; i <= 2; i++)
		h_printf(r, "<option value=\"%s\"%s>%s</option>",
		    ehx_list_name(i), i == list ? " selected" : "", i == 1 ?
		    "Known to two or more agencies" : "Two or more Troubled "
		    "Families criteria");
	h_raw(r, "</select>");
	if (r->who.locality[0] != '\0') {
		h_raw(r, "<p>Locality: <strong>");
		h_text(r, r->who.locality);
		h_raw(r, "</strong> <span class=\"hint\">(yours, from the users "
		    "file)</span></p>");
	} else {
		h_printf(r, "<label for=\"l-loc\">Locality</label><input "
		    "id=\"l-loc\" name=\"locality\" required maxlength=\"%d\" "
		    "value=\"", EHX_MAX_ID);
		h_text(r, locality);
		h_raw(r, "\">");
	}
	h_raw(r, "<button type=\"submit\">Show the list</button></form>");
}

static void
page_list(struct creq *r)
{
	static const int want[] = { EHX__ROLE__ROLE_INFORMATION_OFFICER };
	Ehx__QueryEarlyHelpList q = EHX__QUERY_EARLY_HELP_LIST__INIT;
	Ehx__LocalReply *rep = NULL;
	const Ehx__Error *e;
	const Ehx__Body *ans;
	const Ehx__EarlyHelpListResult *res;
	const char *ln = creq_arg(r, "list"), *after = creq_arg(r, "after");
	const char *loc = r->who.locality[0] != '\0' ? r->who.locality :
	    creq_arg(r, "locality");
	unsigned char after_raw[EHX_PSEUDONYM_LEN];
	int role, list = ln != NULL ? ehx_list_parse(ln) : 1;

	if ((role = need_role(r, want, 1, "ask for early help lists")) == 0)
		return;
	page_begin(r, "Right early help lists");
	h_raw(r, "<p>The children of a locality whom several agencies know, "
	    "so that nobody slips through the net. A list rests on the lawful "
	    "basis the sharing policy names for it, not on consent: every "
	    "child it names is recorded in the audit against you.</p>");
	list_form(r, list > 0 ? list : 1, loc);
	if (ln == NULL || loc == NULL || loc[0] == '\0') {
		page_end(r);
		return;
	}
	if (list < 1 || !ehx_id_ok(loc) || (after != NULL && (strlen(after) !=
	    2 * EHX_PSEUDONYM_LEN || ehx_unhex(after_raw, sizeof(after_raw),
	    after) != 0))) {
		r->status = 400;
		h_raw(r, "<p class=\"error\" role=\"alert\">Choose a list, and "
		    "give a locality such as east (a-z, 0-9, _ and -).</p>");
		page_end(r);
		return;
	}
	q.list = (Ehx__EarlyHelpList)list;
	q.locality = (char *)loc;
	if (after != NULL) {
		q.after.data = after_raw;
		q.after.len = sizeof(after_raw);
	}
	if ((ans = ask(r, role, EHX__BODY__PAYLOAD_QUERY_EARLY_HELP_LIST, &q,
	    false, EHX__BODY__PAYLOAD_EARLY_HELP_LIST, &rep, &e)) == NULL) {
		if (e != NULL) {
			r->status = 400;
			h_refusal(r, e);
		}
		goto out;
	}
	res = ans->early_help_list;
	h_printf(r, "<h2>%s in ", list == 1 ? "Known to two or more agencies" :
	    "Two or more Troubled Families criteria");
	h_text(r, loc);
	h_raw(r, "</h2><p>Shared on the basis <code>");
	h_text(r, res->basis);
	h_printf(r, "</code>.</p><table><caption>%zu child%s</caption><thead>"
	    "<tr><th scope=\"col\">NHS number</th><th scope=\"col\">Agencies "
	    "with an open flag</th><th scope=\"col\">Highest level</th>"
	    "<th scope=\"col\">Criteria met</th></tr></thead><tbody>",
	    res->n_children, res->n_children == 1 ? "" : "ren");
	for (size_t i = 0; i < res->n_children; i++) {
		const Ehx__ListedChild *c = res->children[i];
		char fmt[13];
		bool ok = ehx_nhs_valid(c->nhs_number);

		h_raw(r, "<tr><td>");
		if (ok) {
			h_printf(r, "<a href=\"/child?nhs=%s\">", c->nhs_number);
			h_text(r, ehx_nhs_format(fmt, c->nhs_number));
			h_raw(r, "</a>");
		} else
			h_raw(r, "?");
		h_raw(r, "</td><td>");
		for (size_t j = 0; j < c->n_agencies; j++) {
			if (j > 0)
				h_raw(r, ", ");
			h_text(r, c->agencies[j]);
		}
		h_printf(r, "</td><td>%u</td><td>", c->highest_open_level);
		for (size_t j = 0; j < c->n_criteria; j++) {
			if (j > 0)
				h_raw(r, "; ");
			h_text(r, ehx_criterion_label(c->criteria[j]));
		}
		h_raw(r, "</td></tr>");
	}
	h_raw(r, "</tbody></table>");
	if (res->n_children == 0)
		h_raw(r, "<p>No child in this locality is on this list.</p>");
	if (res->next.len == EHX_PSEUDONYM_LEN) {
		char hex[2 * EHX_PSEUDONYM_LEN + 1];

		ehx_hex(hex, res->next.data, res->next.len);
		h_printf(r, "<p><a href=\"/list?list=%s&amp;after=%s",
		    ehx_list_name(list), hex);
		if (r->who.locality[0] == '\0') {
			h_raw(r, "&amp;locality=");
			h_text(r, loc);
		}
		h_raw(r, "\">Next page</a></p>");
	}
out:
	free_reply(rep);
	page_end(r);
}

/* ---- information governance --------------------------------------------- */

static void
h_person(struct creq *r, const char *agency, const Ehx__Person *p)
{
	h_text(r, agency);
	if (p != NULL) {
		h_raw(r, " · ");
		h_text(r, p->name);
		h_raw(r, " <span class=\"hint\">");
		h_text(r, p->user_id);
		h_raw(r, ", ");
		h_text(r, ehx_role_name(p->role));
		h_raw(r, "</span>");
	}
}

static uint64_t
u64_arg(struct creq *r, const char *name)
{
	const char *v = creq_arg(r, name);
	char *end;
	unsigned long long x;

	if (v == NULL || v[0] < '0' || v[0] > '9' || strlen(v) > 19)
		return 0;
	x = strtoull(v, &end, 10);
	return *end == '\0' && x <= EHX_MAX_SEQ ? (uint64_t)x : 0;
}

static void
page_alerts(struct creq *r)
{
	Ehx__QueryAlerts q = EHX__QUERY_ALERTS__INIT;
	Ehx__LocalReply *rep = NULL;
	const Ehx__Error *e;
	const Ehx__Body *ans;
	const char *all = creq_arg(r, "all"), *done = creq_arg(r, "done");
	int role;

	if ((role = ig_role(r)) == 0)
		return;
	page_begin(r, "Break-glass reviews");
	q.all = all != NULL && strcmp(all, "1") == 0;
	q.after_seq = u64_arg(r, "after");
	if (done != NULL)
		h_raw(r, "<p class=\"notice\" role=\"status\">Review recorded."
		    "</p>");
	h_raw(r, q.all ? "<p>Every break-glass access. <a href=\"/ig/alerts\">"
	    "Only those awaiting review</a></p>" : "<p>Break-glass accesses "
	    "awaiting review. <a href=\"/ig/alerts?all=1\">All, reviewed too"
	    "</a></p>");
	if ((ans = ask(r, role, EHX__BODY__PAYLOAD_QUERY_ALERTS, &q, false,
	    EHX__BODY__PAYLOAD_ALERTS, &rep, &e)) ==
	    NULL) {
		if (e != NULL)
			h_refusal(r, e);
		goto out;
	}
	if (ans->alerts->n_alerts == 0)
		h_raw(r, "<p>None.</p>");
	for (size_t i = 0; i < ans->alerts->n_alerts; i++) {
		const Ehx__Alert *a = ans->alerts->alerts[i];

		h_printf(r, "<article class=\"alert\" aria-labelledby=\"al%llu\">"
		    "<h2 id=\"al%llu\">%s %llu</h2><dl><dt>When</dt>"
		    "<dd>", (unsigned long long)a->seq,
		    (unsigned long long)a->seq, strcmp(a->kind,
		    "self_consent") == 0 ? "Own consent used" : strcmp(a->kind,
		    "first_flag") == 0 ? "First flag" : "Break-glass",
		    (unsigned long long)a->seq);
		h_time(r, a->time);
		h_raw(r, " UTC</dd><dt>Who</dt><dd>");
		h_person(r, a->agency, a->person);
		h_raw(r, "</dd><dt>Child (pseudonym)</dt><dd><code>");
		h_hex(r, &a->child, 8);
		h_raw(r, "</code></dd><dt>Reason</dt><dd>");
		h_text(r, a->reason);
		h_raw(r, "</dd>");
		if (a->reviewed_at > 0) {
			h_raw(r, "<dt>Reviewed</dt><dd>");
			h_text(r, a->outcome ==
			    EHX__REVIEW_OUTCOME__REVIEW_OUTCOME_JUSTIFIED ?
			    "justified" : "unjustified");
			h_raw(r, ", ");
			h_time(r, a->reviewed_at);
			h_raw(r, " by ");
			h_person(r, a->reviewed_by_agency, a->reviewed_by);
			h_raw(r, ": ");
			h_text(r, a->note);
			h_raw(r, "</dd></dl></article>");
			continue;
		}
		h_printf(r, "</dl><form method=\"post\" action=\"/ig/review\" "
		    "class=\"stack\"><input type=\"hidden\" name=\"alert\" "
		    "value=\"%llu\">", (unsigned long long)a->seq);
		csrf_field(r);
		h_printf(r, "<fieldset><legend>Outcome</legend><label "
		    "class=\"check\"><input type=\"radio\" name=\"outcome\" "
		    "value=\"justified\" required> Justified</label><label "
		    "class=\"check\"><input type=\"radio\" name=\"outcome\" "
		    "value=\"unjustified\"> Unjustified</label></fieldset>"
		    "<label for=\"note%llu\">Review note</label><textarea "
		    "id=\"note%llu\" name=\"note\" required maxlength=\"%d\" "
		    "rows=\"2\"></textarea><button type=\"submit\">Record "
		    "review</button></form></article>",
		    (unsigned long long)a->seq, (unsigned long long)a->seq,
		    EHX_MAX_REASON);
	}
	if (ans->alerts->next_seq != 0)
		h_printf(r, "<p><a href=\"/ig/alerts?after=%llu%s\">Next page"
		    "</a></p>", (unsigned long long)ans->alerts->next_seq,
		    q.all ? "&amp;all=1" : "");
out:
	free_reply(rep);
	page_end(r);
}

static void
post_review(struct creq *r)
{
	Ehx__ReviewAlert q = EHX__REVIEW_ALERT__INIT;
	Ehx__LocalReply *rep = NULL;
	const Ehx__Error *e;
	const char *o = creq_arg(r, "outcome"), *note = creq_arg(r, "note");
	int role;

	if ((role = ig_role(r)) == 0)
		return;
	q.alert = u64_arg(r, "alert");
	q.outcome = o == NULL ? 0 : strcmp(o, "justified") == 0 ?
	    EHX__REVIEW_OUTCOME__REVIEW_OUTCOME_JUSTIFIED :
	    strcmp(o, "unjustified") == 0 ?
	    EHX__REVIEW_OUTCOME__REVIEW_OUTCOME_UNJUSTIFIED : 0;
	if (q.alert == 0 || q.outcome == 0 || note == NULL ||
	    !ehx_text_ok(note, 1, EHX_MAX_REASON)) {
		pages_error(r, 400, "Review", "A review needs the alert, an "
		    "outcome (justified or unjustified) and a note of 1 to 280 "
		    "characters. Nothing was recorded.");
		return;
	}
	q.note = (char *)note;
	page_begin(r, "Review");
	if (ask(r, role, EHX__BODY__PAYLOAD_REVIEW_ALERT, &q, false,
	    EHX__BODY__PAYLOAD_ACK, &rep, &e) != NULL)
		snprintf(r->location, sizeof(r->location),
		    "/ig/alerts?done=%llu", (unsigned long long)q.alert);
	else if (e != NULL) {
		r->status = 400;
		h_refusal(r, e);
		h_raw(r, "<p><a href=\"/ig/alerts\">Back to the reviews</a></p>");
	}
	free_reply(rep);
	page_end(r);
}

/* The audit filters from the query; false (with a sentence) if bad. */
static bool
audit_filters(struct creq *r, Ehx__QueryAudit *q, char nhs[EHX_NHS_LEN + 1],
    const char **why)
{
	const char *v;
	int64_t now = ehx_now_ms();

	*why = NULL;
	if ((v = creq_arg(r, "nhs")) != NULL && v[0] != '\0') {
		if (!nhs_arg(r, nhs, why))
			return false;
		q->nhs_number = nhs;
	}
	if ((v = creq_arg(r, "agency")) != NULL && v[0] != '\0') {
		if (!ehx_id_ok(v)) {
			*why = "An agency is an id such as police.";
			return false;
		}
		q->agency = (char *)v;
	}
	if ((v = creq_arg(r, "user")) != NULL && v[0] != '\0') {
		if (!ehx_text_ok(v, 1, EHX_MAX_USER_ID)) {
			*why = "A person's id is 1 to 64 characters.";
			return false;
		}
		q->user_id = (char *)v;
	}
	if ((v = creq_arg(r, "from")) != NULL && v[0] != '\0' &&
	    ehx_parse_time(v, now, &q->from_time) != 0) {
		*why = "From is a date, YYYY-MM-DD.";
		return false;
	}
	if ((v = creq_arg(r, "to")) != NULL && v[0] != '\0' &&
	    ehx_parse_time(v, now, &q->to_time) != 0) {
		*why = "To is a date, YYYY-MM-DD.";
		return false;
	}
	if ((v = creq_arg(r, "decision")) != NULL && v[0] != '\0')
		q->decision = strcmp(v, "allow") == 0 ?
		    EHX__DECISION__DECISION_ALLOW : strcmp(v, "deny") == 0 ?
		    EHX__DECISION__DECISION_DENY : 0;
	q->break_glass = (v = creq_arg(r, "break_glass")) != NULL &&
	    strcmp(v, "1") == 0;
	q->after_seq = u64_arg(r, "after");
	return true;
}

static void
audit_form(struct creq *r, const char *why)
{
	static const char *const fields[][3] = {
		{ "nhs", "Child's NHS number", "20" },
		{ "agency", "Acting agency", "32" },
		{ "user", "Acting person's id", "64" },
		{ "from", "From (YYYY-MM-DD)", "10" },
		{ "to", "To (YYYY-MM-DD, not included)", "10" },
	};
	const char *d = creq_arg(r, "decision"), *bg = creq_arg(r,
	    "break_glass");

	if (why != NULL) {
		h_raw(r, "<p class=\"error\" role=\"alert\">");
		h_text(r, why);
		h_raw(r, "</p>");
	}
	h_raw(r, "<form method=\"get\" action=\"/ig/audit\" class=\"filters\">");
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		h_printf(r, "<label for=\"f-%s\">%s</label><input id=\"f-%s\" "
		    "name=\"%s\" maxlength=\"%s\"%s value=\"", fields[i][0],
		    fields[i][1], fields[i][0], fields[i][0], fields[i][2],
		    i == 0 ? " data-nhs" : "");
		h_text(r, creq_arg(r, fields[i][0]));
		h_raw(r, "\">");
	}
	h_printf(r, "<label for=\"f-decision\">Decision</label><select "
	    "id=\"f-decision\" name=\"decision\"><option value=\"\">either"
	    "</option><option value=\"allow\"%s>allowed</option><option "
	    "value=\"deny\"%s>refused</option></select><label class=\"check\">"
	    "<input type=\"checkbox\" name=\"break_glass\" value=\"1\"%s> "
	    "Break-glass only</label><button type=\"submit\" name=\"searched\" "
	    "value=\"1\">Search</button>"
	    "<button type=\"submit\" name=\"format\" value=\"csv\">Download "
	    "CSV</button></form>", d != NULL && strcmp(d, "allow") == 0 ?
	    " selected" : "", d != NULL && strcmp(d, "deny") == 0 ?
	    " selected" : "", bg != NULL && strcmp(bg, "1") == 0 ?
	    " checked" : "");
}

/* The audit as CSV: up to CSV_PAGES pages from after, in the command
 * line's CSV columns. */
static void
audit_csv(struct creq *r, int role, Ehx__QueryAudit *q)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	Ehx__LocalRequest lr = EHX__LOCAL_REQUEST__INIT;
	Ehx__Body b = EHX__BODY__INIT;

	if (f == NULL) {
		pages_error(r, 500, "Audit", "Out of memory.");
		return;
	}
	b.payload_case = EHX__BODY__PAYLOAD_QUERY_AUDIT;
	b.query_audit = q;
	lr.body = &b;
	for (int page = 0; page < CSV_PAGES; page++) {
		Ehx__LocalReply *rep = NULL;
		const Ehx__Body *ans;

		if (creq_ask(r, role, &lr, &rep) != 0 || rep->reply ==
		    NULL || (ans = rep->reply)->payload_case !=
		    EHX__BODY__PAYLOAD_AUDIT) {
			const Ehx__Error *e = rep != NULL && rep->reply !=
			    NULL && rep->reply->payload_case ==
			    EHX__BODY__PAYLOAD_ERROR ? rep->reply->error : NULL;

			fclose(f);
			free(buf);
			r->status = 502;
			page_begin(r, "Audit");
			if (e != NULL)
				h_refusal(r, e);
			else
				h_raw(r, "<p class=\"error\" role=\"alert\">"
				    "The agent did not answer; no file was "
				    "made.</p>");
			page_end(r);
			free_reply(rep);
			return;
		}
		render_audit_page(f, ans->audit, RENDER_CSV, page == 0);
		q->after_seq = ans->audit->next_seq;
		free_reply(rep);
		if (q->after_seq == 0)
			break;
	}
	if (ferror(f) || fclose(f) != 0) {
		free(buf);
		pages_error(r, 500, "Audit", "The console ran out of memory "
		    "making the file; nothing was sent.");
		return;
	}
	r->type = "text/csv; charset=utf-8";
	snprintf(r->disposition, sizeof(r->disposition), "attachment; "
	    "filename=\"ehx-audit-%s.csv\"", r->agency);
	h_bytes(r, buf, len);
	free(buf);
}

static void
page_audit(struct creq *r)
{
	Ehx__QueryAudit q = EHX__QUERY_AUDIT__INIT;
	Ehx__LocalReply *rep = NULL;
	const Ehx__Error *e;
	const Ehx__Body *ans;
	const char *why, *fmt = creq_arg(r, "format");
	char nhs[EHX_NHS_LEN + 1];
	int role;

	if ((role = ig_role(r)) == 0)
		return;
	if (!audit_filters(r, &q, nhs, &why)) {
		r->status = 400;
		page_begin(r, "Audit");
		audit_form(r, why);
		page_end(r);
		return;
	}
	if (fmt != NULL && strcmp(fmt, "csv") == 0) {
		audit_csv(r, role, &q);
		return;
	}
	page_begin(r, "Audit");
	audit_form(r, NULL);
	if (creq_arg(r, "searched") == NULL && r->nf == 0) {
		h_raw(r, "<p>Choose filters (or none) and search. Every audit "
		    "search is itself audited.</p>");
		page_end(r);
		return;
	}
	if ((ans = ask(r, role, EHX__BODY__PAYLOAD_QUERY_AUDIT, &q, false,
	    EHX__BODY__PAYLOAD_AUDIT, &rep, &e)) ==
	    NULL) {
		if (e != NULL)
			h_refusal(r, e);
		goto out;
	}
	h_printf(r, "<table><caption>%zu records</caption><thead><tr>"
	    "<th scope=\"col\">Seq</th><th scope=\"col\">Time (UTC)</th>"
	    "<th scope=\"col\">Who</th><th scope=\"col\">Action</th>"
	    "<th scope=\"col\">Child</th><th scope=\"col\">Decision</th>"
	    "<th scope=\"col\">Basis</th></tr></thead><tbody>",
	    ans->audit->n_records);
	for (size_t i = 0; i < ans->audit->n_records; i++) {
		const Ehx__AuditRecord *a = ans->audit->records[i];

		h_printf(r, "<tr%s><td>%llu</td><td>", a->break_glass ?
		    " class=\"bg\"" : "", (unsigned long long)a->seq);
		h_time(r, a->time);
		h_raw(r, "</td><td>");
		h_person(r, a->agency, a->person);
		h_raw(r, "</td><td>");
		h_text(r, a->action);
		h_raw(r, "</td><td><code>");
		h_hex(r, &a->child, 8);
		h_printf(r, "</code></td><td>%s", a->decision ==
		    EHX__DECISION__DECISION_ALLOW ? "allowed" : "refused");
		if (a->error != 0) {
			h_raw(r, " <span class=\"hint\">");
			h_text(r, ehx_errname(ehx_err_from_wire(a->error)));
			h_raw(r, "</span>");
		}
		h_raw(r, "</td><td>");
		h_text(r, a->basis);
		h_raw(r, "</td></tr>");
	}
	h_raw(r, "</tbody></table>");
	if (ans->audit->next_seq != 0) {
		h_printf(r, "<form method=\"get\" action=\"/ig/audit\">"
		    "<input type=\"hidden\" name=\"after\" value=\"%llu\">",
		    (unsigned long long)ans->audit->next_seq);
		for (size_t i = 0; i < r->nf; i++) {
			if (strcmp(r->f[i].name, "after") == 0)
				continue;
			h_printf(r, "<input type=\"hidden\" name=\"%s\" "
			    "value=\"", r->f[i].name);
			h_text(r, r->f[i].value);
			h_raw(r, "\">");
		}
		h_raw(r, "<button type=\"submit\">Next page</button></form>");
	}
out:
	free_reply(rep);
	page_end(r);
}

static void
page_disclosures(struct creq *r)
{
	Ehx__QueryDisclosures q = EHX__QUERY_DISCLOSURES__INIT;
	Ehx__LocalReply *rep = NULL;
	const Ehx__Error *e;
	const Ehx__Body *ans;
	int role;

	if ((role = ig_role(r)) == 0)
		return;
	page_begin(r, "Disclosures");
	h_raw(r, "<p>Every time another agency was shown this agency's flags."
	    "</p>");
	q.after_seq = u64_arg(r, "after");
	if ((ans = ask(r, role, EHX__BODY__PAYLOAD_QUERY_DISCLOSURES, &q,
	    false, EHX__BODY__PAYLOAD_DISCLOSURES, &rep, &e)) == NULL) {
		if (e != NULL)
			h_refusal(r, e);
		goto out;
	}
	h_raw(r, "<table><thead><tr><th scope=\"col\">Seq</th><th scope=\"col\">"
	    "Time (UTC)</th><th scope=\"col\">To</th><th scope=\"col\">Child"
	    "</th><th scope=\"col\">Basis</th><th scope=\"col\">Flags shown"
	    "</th><th scope=\"col\">How</th></tr></thead><tbody>");
	for (size_t i = 0; i < ans->disclosures->n_disclosures; i++) {
		const Ehx__Disclosure *d = ans->disclosures->disclosures[i];

		h_printf(r, "<tr><td>%llu</td><td>", (unsigned long long)d->seq);
		h_time(r, d->time);
		h_raw(r, "</td><td>");
		h_person(r, d->to_agency, d->to_person);
		h_raw(r, "</td><td><code>");
		h_hex(r, &d->child, 8);
		h_raw(r, "</code></td><td>");
		h_text(r, d->basis);
		h_printf(r, "</td><td>%u</td><td>", d->flags);
		/* Kept before via was: a picture, or a subject access. */
		h_text(r, d->via[0] != '\0' ? d->via : strcmp(d->basis,
		    "subject-access") == 0 ? "subject_access" : "picture");
		h_raw(r, "</td></tr>");
	}
	h_raw(r, "</tbody></table>");
	if (ans->disclosures->n_disclosures == 0)
		h_raw(r, "<p>None.</p>");
	if (ans->disclosures->next_seq != 0)
		h_printf(r, "<p><a href=\"/ig/disclosures?after=%llu\">Next page"
		    "</a></p>", (unsigned long long)ans->disclosures->next_seq);
out:
	free_reply(rep);
	page_end(r);
}

static void
page_checkpoint(struct creq *r)
{
	Ehx__LocalRequest lr = EHX__LOCAL_REQUEST__INIT;
	Ehx__LocalReply *rep = NULL;
	const Ehx__AgentState *st;
	int role;

	if ((role = ig_role(r)) == 0)
		return;
	page_begin(r, "Audit checkpoint");
	lr.agent_state = true;
	if (creq_ask(r, role, &lr, &rep) != 0 || rep->state == NULL) {
		r->status = 503;
		h_raw(r, "<p class=\"error\" role=\"alert\">The agent did not "
		    "answer.</p>");
		goto out;
	}
	st = rep->state;
	if (st->checkpoint == NULL) {
		h_raw(r, "<p>This agent has not yet checked a checkpoint of the "
		    "broker's audit log.</p>");
		goto out;
	}
	h_printf(r, "<p class=\"%s\" role=\"status\">%s</p>", st->consistent ?
	    "ok" : "error", st->consistent ? "This agent's consistency checks "
	    "have passed: every checkpoint it has seen extends the one before."
	    : "A consistency check FAILED: the broker's audit log went back or "
	    "forked. Tell the partnership's operators.");
	if (!st->consistent && st->problem != NULL) {
		h_raw(r, "<p>");
		h_text(r, st->problem);
		h_raw(r, "</p>");
	}
	h_printf(r, "<dl><dt>Records in the log</dt><dd>%llu</dd>"
	    "<dt>Signed at (UTC)</dt><dd>",
	    (unsigned long long)st->checkpoint->size);
	h_time(r, st->checkpoint->time);
	h_raw(r, "</dd><dt>Root hash</dt><dd><code>");
	h_hex(r, &st->checkpoint->root, 32);
	h_raw(r, "</code></dd><dt>Checked by this agent (UTC)</dt><dd>");
	h_time(r, st->checked_at);
	h_raw(r, "</dd><dt>Broker</dt><dd>");
	h_text(r, st->checkpoint->origin);
	h_raw(r, "</dd></dl>");
out:
	free_reply(rep);
	page_end(r);
}

static void
signin_row(void *arg, uint64_t seq, const char *line, size_t len)
{
	struct creq *r = arg;
	char buf[256], *f[4], *save = NULL;
	size_t n = 0;

	snprintf(buf, sizeof(buf), "%.*s", (int)(len < 255 ? len : 255), line);
	for (char *w = strtok_r(buf, "\t", &save); w != NULL && n < 4;
	    w = strtok_r(NULL, "\t", &save))
		f[n++] = w;
	if (n != 4)
		return;
	h_printf(r, "<tr><td>%llu</td><td>", (unsigned long long)seq);
	h_time(r, strtoll(f[0], NULL, 10));
	h_raw(r, "</td><td>");
	h_text(r, f[1]);
	h_raw(r, "</td><td>");
	h_text(r, f[2]);
	h_raw(r, "</td><td>");
	h_text(r, f[3]);
	h_raw(r, "</td></tr>");
}

static void
page_signins(struct creq *r)
{
	if (ig_role(r) == 0)
		return;
	page_begin(r, "Console sign-ins");
	h_raw(r, "<p>The newest 200 sign-ins, failures, lock-outs and "
	    "sign-outs at this agency's console.</p><table><thead><tr>"
	    "<th scope=\"col\">#</th><th scope=\"col\">Time (UTC)</th>"
	    "<th scope=\"col\">Event</th><th scope=\"col\">Account</th>"
	    "<th scope=\"col\">From</th></tr></thead><tbody>");
	creq_signins(r, 200, signin_row);
	h_raw(r, "</tbody></table>");
	page_end(r);
}

/* ---- routes -------------------------------------------------------------- */

void
pages_route(struct creq *r)
{
	static const struct {
		const char *path;
		bool post;
		void (*fn)(struct creq *);
	} routes[] = {
		{ "/", false, page_home },
		{ "/child", false, page_child },
		{ "/consent", true, post_consent },
		{ "/breakglass", true, post_break_glass },
		{ "/list", false, page_list },
		{ "/ig/alerts", false, page_alerts },
		{ "/ig/review", true, post_review },
		{ "/ig/audit", false, page_audit },
		{ "/ig/disclosures", false, page_disclosures },
		{ "/ig/checkpoint", false, page_checkpoint },
		{ "/ig/signins", false, page_signins },
	};

	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (strcmp(r->path, routes[i].path) != 0)
			continue;
		if (routes[i].post != r->post) {
			pages_error(r, 405, "Method not allowed", routes[i].post ?
			    "This address takes a form (POST)." : "This page "
			    "is read with GET.");
			return;
		}
		routes[i].fn(r);
		return;
	}
	pages_error(r, 404, "Not found", "There is no such page.");
}
