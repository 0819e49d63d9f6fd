/*
 * auditverify.c — see auditverify.h. Everything in the file is outside
 * input: every length is bounded before use and every record, page and
 * certificate is decoded with the checked decoders.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ehx.pb-c.h"
#include "ehx/auditverify.h"
#include "ehx/checkpoint.h"
#include "ehx/err.h"
#include "ehx/frontier.h"
#include "ehx/limits.h"
#include "ehx/merkle.h"
#include "ehx/util.h"
#include "ehx/wire.h"

/* How far an agent's clock may be off the broker's: the broker's default
 * skew_seconds (a request further off is refused STALE). */
#define DECISION_SKEW_MS 300000

struct certs {
	struct ehx_cert *c[EHX_MAX_EXPORT_CERTS];
	size_t n;
	const struct ehx_cert *broker;
};

struct state {
	const struct ehx_ca *ca;
	struct certs certs;
	struct ehx_frontier tree;
	struct ehx_auditverify_report *rep;
	const struct ehx_auditverify_expect *exp;
	bool *found;                    /* exp->pending[i] seen */
	int64_t newest_time;            /* of the newest checkpoint checked */
	char *why;
	size_t whysz;
};

static int say(struct state *st, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
say(struct state *st, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(st->why, st->whysz, fmt, ap);
	va_end(ap);
	return code;
}

static const struct ehx_cert *
by_fpr(const struct certs *cs, const uint8_t *fpr, size_t len)
{
	if (len != EHX_FPR_LEN)
		return NULL;
	for (size_t i = 0; i < cs->n; i++)
		if (memcmp(ehx_cert_fpr(cs->c[i]), fpr, EHX_FPR_LEN) == 0)
			return cs->c[i];
	return NULL;
}

static int
load_certs(struct state *st, const Ehx__ExportResult *p)
{
	char reason[256];

	if (p->n_certificates == 0)
		return say(st, EHX_ERR_MALFORMED, "the export carries no "
		    "certificates");
	for (size_t i = 0; i < p->n_certificates; i++) {
		struct ehx_cert *c;

		if (st->certs.n == EHX_MAX_EXPORT_CERTS)
			return say(st, EHX_ERR_MALFORMED, "too many "
			    "certificates");
		if (ehx_cert_parse(p->certificates[i].data,
		    p->certificates[i].len, &c) != 0)
			return say(st, EHX_ERR_MALFORMED, "certificate %zu is "
			    "not an Ed25519 certificate", i + 1);
		st->certs.c[st->certs.n++] = c;
		if (ehx_ca_verify(st->ca, c, reason, sizeof(reason)) != 0)
			return say(st, EHX_ERR_UNKNOWN_CERTIFICATE, "the "
			    "certificate of %s is not issued by this CA: %s",
			    ehx_cert_cn(c), reason);
	}
	st->certs.broker = st->certs.c[0];
	if (strcmp(ehx_cert_ou(st->certs.broker), "broker") != 0)
		return say(st, EHX_ERR_UNKNOWN_CERTIFICATE, "the first "
		    "certificate is not a broker's");
	return 0;
}

/* The kept envelope must be signed by the agency the record names. */
static int
check_envelope(struct state *st, const Ehx__AuditRecord *rec,
    const ProtobufCBinaryData *env)
{
	Ehx__Envelope *e = NULL;
	const struct ehx_cert *c;
	int r = 0;

	if (ehx_envelope_decode(env->data, env->len, &e) != 0)
		return say(st, EHX_ERR_BAD_SIGNATURE, "record %llu: its "
		    "evidence is not an envelope", (unsigned long long)rec->seq);
	if ((c = by_fpr(&st->certs, e->signer.data, e->signer.len)) == NULL ||
	    ehx_envelope_verify(e, ehx_cert_pubkey(c)) != 0)
		r = say(st, EHX_ERR_BAD_SIGNATURE, "record %llu: its evidence "
		    "is not signed by a partnership certificate",
		    (unsigned long long)rec->seq);
	else if (strcmp(ehx_cert_cn(c), rec->agency) != 0)
		r = say(st, EHX_ERR_BAD_SIGNATURE, "record %llu: names %s, but "
		    "its evidence is signed by %s", (unsigned long long)rec->seq,
		    rec->agency, ehx_cert_cn(c));
	ehx_envelope_free(e);
	if (r == 0)
		st->rep->envelopes++;
	return r;
}

static void
note_cosigner(struct state *st, const char *agency)
{
	char *a = st->rep->agencies;
	size_t n = strlen(agency), used = strlen(a);
	const char *p = a;

	while ((p = strstr(p, agency)) != NULL) {
		if ((p == a || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
			return;
		p += n;
	}
	if (used + n + 2 < sizeof(st->rep->agencies))
		snprintf(a + used, sizeof(st->rep->agencies) - used, "%s%s",
		    used ? "," : "", agency);
}

static int
check_checkpoint(struct state *st, const Ehx__Checkpoint *cp)
{
	unsigned char root[EHX_HASH_LEN];
	unsigned long long size = (unsigned long long)cp->size;

	if (ehx_checkpoint_check(cp) != 0)
		return say(st, EHX_ERR_MALFORMED, "checkpoint %llu is "
		    "malformed", size);
	if (cp->size != st->tree.size)
		return say(st, EHX_ERR_MALFORMED, "checkpoint %llu is out of "
		    "place", size);
	if (ehx_checkpoint_verify(cp, ehx_cert_pubkey(st->certs.broker)) != 0 ||
	    strcmp(cp->origin, ehx_cert_cn(st->certs.broker)) != 0)
		return say(st, EHX_ERR_BAD_SIGNATURE, "checkpoint %llu: not "
		    "signed by the broker", size);
	ehx_frontier_root(&st->tree, root);
	if (memcmp(root, cp->root.data, EHX_HASH_LEN) != 0)
		return say(st, EHX_ERR_BAD_SIGNATURE, "checkpoint %llu: the "
		    "records do not give the root the broker signed", size);
	for (size_t i = 0; i < cp->n_cosignatures; i++) {
		const Ehx__Cosignature *cs = cp->cosignatures[i];
		const struct ehx_cert *c = by_fpr(&st->certs, cs->signer.data,
		    cs->signer.len);

		if (c == NULL || cs->agency == NULL ||
		    strcmp(ehx_cert_cn(c), cs->agency) != 0 ||
		    ehx_cosign_verify(cp, cs, ehx_cert_pubkey(c)) != 0)
			return say(st, EHX_ERR_BAD_SIGNATURE, "checkpoint %llu: "
			    "the cosignature of %s does not verify", size,
			    cs->agency != NULL && ehx_id_ok(cs->agency) ?
			    cs->agency : "an unknown agency");
		note_cosigner(st, cs->agency);
		st->rep->cosignatures++;
	}
	st->rep->checkpoints++;
	st->rep->last_checkpoint = cp->size;
	if (cp->time > st->newest_time)
		st->newest_time = cp->time;
	return 0;
}

static int
check_records(struct state *st, const Ehx__ExportResult *p,
    unsigned char (*eh)[32], bool *used);

/* After record rec: is it where the agency's checkpoint ends, or one of
 * its decisions? Then it must be what the agency saw. */
static int
check_expected(struct state *st, const Ehx__AuditRecord *rec)
{
	const struct ehx_auditverify_expect *x = st->exp;
	unsigned char root[EHX_HASH_LEN];
	unsigned long long seq = (unsigned long long)rec->seq;

	if (x == NULL)
		return 0;
	if (x->size == rec->seq) {
		ehx_frontier_root(&st->tree, root);
		if (memcmp(root, x->root, EHX_HASH_LEN) != 0)
			return say(st, EHX_ERR_BAD_SIGNATURE, "the export does "
			    "not extend the log the agency checked: its first "
			    "%llu records do not give the root of the "
			    "agency's checkpoint", seq);
	}
	for (size_t i = 0; i < x->npending; i++) {
		const Ehx__PendingDecision *d = x->pending[i];

		if (d->seq != rec->seq)
			continue;
		if (strcmp(rec->agency, x->agency) != 0 ||
		    rec->message_id.len != d->message_id.len ||
		    memcmp(rec->message_id.data, d->message_id.data,
		    d->message_id.len) != 0 || (d->envelope_hash.len == 32 &&
		    (rec->envelope_hash.len != 32 || memcmp(
		    rec->envelope_hash.data, d->envelope_hash.data, 32) != 0)))
			return say(st, EHX_ERR_BAD_SIGNATURE, "record %llu is "
			    "not the decision of %s the broker answered: the "
			    "log lost or changed it", seq, x->agency);
		st->found[i] = true;
	}
	return 0;
}

/* At the end: nothing the agency saw is missing. */
static int
check_reached(struct state *st)
{
	const struct ehx_auditverify_expect *x = st->exp;

	if (x == NULL)
		return 0;
	if (st->tree.size < x->size)
		return say(st, EHX_ERR_BAD_SIGNATURE, "the export stops at "
		    "%llu records, short of the checkpoint of %llu records "
		    "the agency checked: it was cut short",
		    (unsigned long long)st->tree.size,
		    (unsigned long long)x->size);
	/* A decision after the export's end may simply be newer than the
	 * export; not one the broker had signed a checkpoint after (beyond
	 * any clock skew): that checkpoint would hold it. */
	for (size_t i = 0; i < x->npending; i++)
		if (!st->found[i] && x->pending[i]->decided_at <
		    st->newest_time - DECISION_SKEW_MS)
			return say(st, EHX_ERR_BAD_SIGNATURE, "the export stops "
			    "at %llu records, before the decision %llu of %s "
			    "the broker answered: it was cut short",
			    (unsigned long long)st->tree.size,
			    (unsigned long long)x->pending[i]->seq, x->agency);
	return 0;
}

static int
check_page(struct state *st, const Ehx__ExportResult *p, bool first)
{
	unsigned char (*eh)[32];
	bool *used;
	int r;

	if (first && (r = load_certs(st, p)) != 0)
		return r;
	if (!first && p->n_certificates != 0)
		return say(st, EHX_ERR_MALFORMED, "certificates after the "
		    "first page");
	if ((eh = calloc(p->n_envelopes + 1, sizeof(*eh))) == NULL)
		return EHX_ERR_NOMEM;
	if ((used = calloc(p->n_envelopes + 1, sizeof(*used))) == NULL) {
		free(eh);
		return EHX_ERR_NOMEM;
	}
	for (size_t e = 0; e < p->n_envelopes; e++)
		ehx_sha256(p->envelopes[e].data, p->envelopes[e].len, eh[e]);
	r = check_records(st, p, eh, used);
	/* Every envelope must be one a record names: a changed one is not. */
	for (size_t e = 0; e < p->n_envelopes && r == 0; e++)
		if (!used[e])
			r = say(st, EHX_ERR_BAD_SIGNATURE, "an envelope on the "
			    "page from record %llu is not the one any record "
			    "names: it was changed", (unsigned long long)st->tree.size -
			    p->n_records + 1);
	free(used);
	free(eh);
	return r;
}

static int
check_records(struct state *st, const Ehx__ExportResult *p,
    unsigned char (*eh)[32], bool *used)
{
	size_t c = 0;
	int r;

	if (p->n_leaves != p->n_records)
		return say(st, EHX_ERR_MALFORMED, "a page's leaves do not "
		    "match its records");
	for (size_t i = 0; i < p->n_records; i++) {
		unsigned char leaf[EHX_HASH_LEN];
		unsigned long long seq = (unsigned long long)st->tree.size + 1;
		Ehx__AuditRecord *rec;

		rec = ehx__audit_record__unpack(NULL, p->records[i].len,
		    p->records[i].data);
		if (rec == NULL || rec->seq != seq || rec->agency == NULL) {
			if (rec != NULL)
				ehx__audit_record__free_unpacked(rec, NULL);
			return say(st, EHX_ERR_BAD_SIGNATURE, "record %llu: "
			    "damaged (not a record of that number)", seq);
		}
		ehx_merkle_leaf_hash(p->records[i].data, p->records[i].len,
		    leaf);
		if (p->leaves[i].len != EHX_HASH_LEN || memcmp(leaf,
		    p->leaves[i].data, EHX_HASH_LEN) != 0) {
			ehx__audit_record__free_unpacked(rec, NULL);
			return say(st, EHX_ERR_BAD_SIGNATURE, "record %llu: "
			    "changed since the broker committed to it", seq);
		}
		/* Evidence of this record, if kept. */
		r = 0;
		for (size_t e = 0; e < p->n_envelopes && r == 0; e++)
			if (rec->envelope_hash.len == 32 &&
			    memcmp(eh[e], rec->envelope_hash.data, 32) == 0) {
				r = check_envelope(st, rec, &p->envelopes[e]);
				used[e] = true;
			}
		if (r == 0 && ehx_frontier_add(&st->tree, leaf) != 0)
			r = say(st, EHX_ERR_MALFORMED, "too many records");
		if (r == 0)
			r = check_expected(st, rec);
		ehx__audit_record__free_unpacked(rec, NULL);
		if (r != 0)
			return r;
		st->rep->records++;
		while (c < p->n_checkpoints &&
		    p->checkpoints[c]->size == st->tree.size)
			if ((r = check_checkpoint(st, p->checkpoints[c++])) != 0)
				return r;
	}
	if (c != p->n_checkpoints)
		return say(st, EHX_ERR_MALFORMED, "checkpoint %llu is out of "
		    "place", (unsigned long long)p->checkpoints[c]->size);
	return 0;
}

bool
ehx_pending_decisions_ok(const Ehx__AgentState *s)
{
	if (s->n_pending > EHX_MAX_PENDING_DECISIONS)
		return false;
	for (size_t i = 0; i < s->n_pending; i++) {
		const Ehx__PendingDecision *d = s->pending[i];

		if (d->seq == 0 || d->seq > EHX_MAX_SEQ ||
		    d->message_id.len != EHX_MSGID_LEN ||
		    (d->envelope_hash.len != 0 && d->envelope_hash.len != 32) ||
		    d->decided_at < 0 || d->decided_at > INT64_MAX / 2)
			return false;
	}
	return true;
}

int
ehx_auditverify(const unsigned char *data, size_t len,
    const struct ehx_ca *ca, struct ehx_auditverify_report *rep, char *why,
    size_t whysz)
{
	return ehx_auditverify_against(data, len, ca, NULL, rep, why, whysz);
}

int
ehx_auditverify_against(const unsigned char *data, size_t len,
    const struct ehx_ca *ca, const struct ehx_auditverify_expect *exp,
    struct ehx_auditverify_report *rep, char *why, size_t whysz)
{
	struct state *st;
	size_t off = sizeof(EHX_EXPORT_MAGIC) - 1, pages = 0;
	int r = 0;

	memset(rep, 0, sizeof(*rep));
	if (len < off || memcmp(data, EHX_EXPORT_MAGIC, off) != 0) {
		snprintf(why, whysz, "not an EHX audit export");
		return EHX_ERR_MALFORMED;
	}
	if ((st = calloc(1, sizeof(*st))) == NULL)
		return EHX_ERR_NOMEM;
	st->ca = ca;
	st->rep = rep;
	st->exp = exp;
	if (exp != NULL && (st->found = calloc(exp->npending + 1,
	    sizeof(*st->found))) == NULL) {
		free(st);
		return EHX_ERR_NOMEM;
	}
	st->why = why;
	st->whysz = whysz;
	ehx_frontier_init(&st->tree);
	while (off < len && r == 0) {
		Ehx__ExportResult *p;
		size_t n;

		if (len - off < 4) {
			r = say(st, EHX_ERR_MALFORMED, "the export is cut short");
			break;
		}
		n = (size_t)data[off] << 24 | (size_t)data[off + 1] << 16 |
		    (size_t)data[off + 2] << 8 | data[off + 3];
		off += 4;
		if (n > EHX_MAX_MESSAGE || n > len - off) {
			r = say(st, EHX_ERR_MALFORMED, "page %zu is cut short "
			    "or too large", pages + 1);
			break;
		}
		if ((p = ehx__export_result__unpack(NULL, n, data + off)) ==
		    NULL) {
			r = say(st, EHX_ERR_MALFORMED, "page %zu is not an "
			    "export page", pages + 1);
			break;
		}
		r = check_page(st, p, pages == 0);
		ehx__export_result__free_unpacked(p, NULL);
		off += n;
		pages++;
	}
	if (r == 0 && pages == 0)
		r = say(st, EHX_ERR_MALFORMED, "the export is empty");
	if (r == 0 && rep->checkpoints == 0)
		r = say(st, EHX_ERR_BAD_SIGNATURE, "no signed checkpoint covers "
		    "these records");
	if (r == 0)
		r = check_reached(st);
	for (size_t i = 0; i < st->certs.n; i++)
		ehx_cert_free(st->certs.c[i]);
	free(st->found);
	free(st);
	return r;
}
