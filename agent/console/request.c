/*
 * request.c — one request to the web console and its answer (request.h):
 * the fields of its query and form, checked as they arrive; the answer's
 * markup, with untrusted text escaped; and the way to the agent's main
 * loop for the pages' questions.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../queue.h"
#include "bridge.h"
#include "ehx/util.h"
#include "request.h"

void
h_bytes(struct creq *r, const void *p, size_t n)
{
	if (r->oom)
		return;
	if (r->outcap - r->outlen <= n) {
		size_t cap = r->outcap ? r->outcap : 8192;
		char *b;

		while (cap - r->outlen <= n) {
			if (cap > (size_t)64 * 1024 * 1024) {
				r->oom = true;
				return;
			}
			cap *= 2;
		}
		if ((b = realloc(r->out, cap)) == NULL) {
			r->oom = true;
			return;
		}
		r->out = b;
		r->outcap = cap;
	}
	memcpy(r->out + r->outlen, p, n);
	r->outlen += n;
	r->out[r->outlen] = '\0';
}

void
h_raw(struct creq *r, const char *s)
{
	h_bytes(r, s, strlen(s));
}

void
h_printf(struct creq *r, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > 0)
		h_bytes(r, buf, (size_t)n < sizeof(buf) ? (size_t)n :
		    sizeof(buf) - 1);
}

/*
 * Text from outside, escaped for HTML text and attribute values alike:
 * & < > " ' become entities, and any byte that is not safe, complete
 * UTF-8 (controls, bidirectional overrides) becomes U+FFFD.
 */
void
h_text(struct creq *r, const char *s)
{
	const unsigned char *p = (const unsigned char *)(s != NULL ? s : "");

	while (*p != '\0') {
		int n;

		switch (*p) {
		case '&': h_raw(r, "&amp;"); p++; continue;
		case '<': h_raw(r, "&lt;"); p++; continue;
		case '>': h_raw(r, "&gt;"); p++; continue;
		case '"': h_raw(r, "&quot;"); p++; continue;
		case '\'': h_raw(r, "&#39;"); p++; continue;
		default: break;
		}
		if ((n = ehx_text_char_len(p)) > 0) {
			h_bytes(r, p, (size_t)n);
			p += n;
		} else {
			h_raw(r, "\xef\xbf\xbd");
			p++;
		}
	}
}

const char *
creq_arg(const struct creq *r, const char *name)
{
	for (size_t i = 0; i < r->nf; i++)
		if (strcmp(r->f[i].name, name) == 0)
			return r->f[i].value;
	return NULL;
}

size_t
creq_args(const struct creq *r, const char *name, const char **out,
    size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < r->nf && n < max; i++)
		if (strcmp(r->f[i].name, name) == 0)
			out[n++] = r->f[i].value;
	return n;
}

void
creq_add_field(struct creq *r, const char *name, const char *v, size_t len)
{
	struct console_field *f;
	size_t nl = strlen(name);

	if (r->nf == CONSOLE_FIELDS) {
		r->too_many = true;
		return;
	}
	if (nl == 0 || nl >= sizeof(f->name) ||
	    strspn(name, "abcdefghijklmnopqrstuvwxyz_") != nl ||
	    len > CONSOLE_FIELD_MAX) {
		r->bad_field = true;
		return;
	}
	f = &r->f[r->nf];
	if ((f->value = malloc(len + 1)) == NULL) {
		r->bad_field = true;
		return;
	}
	for (size_t i = 0; i < len; i++)
		f->value[i] = v[i] == '\r' || v[i] == '\n' || v[i] == '\t' ?
		    ' ' : v[i];
	f->value[len] = '\0';
	for (const unsigned char *p = (unsigned char *)f->value; *p != '\0';) {
		int n = ehx_text_char_len(p);

		if (n <= 0) {
			free(f->value);
			r->bad_field = true;
			return;
		}
		p += n;
	}
	if (strlen(f->value) != len) {          /* a NUL inside */
		free(f->value);
		r->bad_field = true;
		return;
	}
	snprintf(f->name, sizeof(f->name), "%s", name);
	f->len = len;
	r->nf++;
}

void
creq_free(struct creq *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->nf; i++)
		free(r->f[i].value);
	free(r->body);
	free(r->out);
	free(r);
}

int
creq_ask(struct creq *r, int role, Ehx__LocalRequest *lr,
    Ehx__LocalReply **reply)
{
	return bridge_call(r->bridge, r->who.account, role, lr, reply);
}

void
creq_signins(struct creq *r, size_t limit,
    void (*fn)(void *arg, uint64_t seq, const char *line, size_t len))
{
	if (r->queue != NULL)
		queue_signin_list(r->queue, limit, fn, r);
}
