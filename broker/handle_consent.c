/*
 * handle_consent.c — record_consent, withdraw_consent and query_consent,
 * and the check every consent-gated answer makes.
 *
 * A consent record is never deleted or rewritten: withdrawal adds the time,
 * who asked and why to the record, once; expiry is read from the dates. A
 * record is active from starts_at until expires_at unless withdrawn, and it
 * covers an agency when its scope names the agency or the agency's type.
 */
#include <stdio.h>
#include <string.h>

#include "broker.h"
#include "ehx/err.h"
#include "ehx/util.h"

#define CONSENT_ID_LEN 18   /* "c-" and 16 hex digits */

static bool
covers(const Ehx__ConsentRecord *c, const struct agency *a, int purpose)
{
	const Ehx__ConsentScope *s = c->scope;
	bool who = false, what = false;

	if (s == NULL)
		return false;
	for (size_t i = 0; i < s->n_agencies && !who; i++)
		who = strcmp(s->agencies[i], a->id) == 0;
	for (size_t i = 0; i < s->n_agency_types && !who; i++)
		who = (int)s->agency_types[i] == a->type;
	for (size_t i = 0; i < s->n_purposes && !what; i++)
		what = (int)s->purposes[i] == purpose;
	return who && what;
}

/* Whether agency a may see or act on c: it recorded it or is named in it. */
static bool
concerns(const Ehx__ConsentRecord *c, const struct agency *a)
{
	return strcmp(c->recorded_by_agency, a->id) == 0 ||
	    covers(c, a, EHX__PURPOSE__PURPOSE_WHOLE_PICTURE) ||
	    covers(c, a, EHX__PURPOSE__PURPOSE_NOTIFICATIONS) ||
	    covers(c, a, EHX__PURPOSE__PURPOSE_ASSESSMENT);
}

static bool
active(const Ehx__ConsentRecord *c, int64_t now)
{
	return c->withdrawn_at == 0 && c->starts_at <= now &&
	    now < c->expires_at;
}

/*
 * Call fn for each consent record of rq's child until it returns nonzero.
 * Each record is freed after fn returns (fn copies what it keeps), so a
 * child with many records costs time but no memory.
 */
static int
each_consent(struct request *rq, int (*fn)(struct request *,
    const Ehx__ConsentRecord *, void *), void *arg)
{
	MDB_cursor *cur = NULL;
	MDB_val k = { EHX_PSEUDONYM_LEN, rq->child }, v;
	Ehx__StoredConsent *sc;
	int rc, r = 0;

	if ((rc = mdb_cursor_open(rq->txn, rq->b->store.consent, &cur)) != 0)
		return store_err(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size < EHX_PSEUDONYM_LEN ||
		    memcmp(k.mv_data, rq->child, EHX_PSEUDONYM_LEN) != 0)
			break;
		if ((sc = ehx__stored_consent__unpack(NULL, v.mv_size,
		    v.mv_data)) == NULL)
			r = EHX_ERR_STORAGE;
		else if (sc->record == NULL)
			r = EHX_ERR_STORAGE;
		else
			r = fn(rq, sc->record, arg);
		if (sc != NULL)
			ehx__stored_consent__free_unpacked(sc, NULL);
		if (r != 0)
			break;
	}
	mdb_cursor_close(cur);
	if (r == 0 && rc != 0 && rc != MDB_NOTFOUND)
		r = store_err(rc);
	return r > 0 ? 0 : r;
}

struct find {
	int purpose;
	int64_t best_expiry;
	char best[32];
};

static int
find_one(struct request *rq, const Ehx__ConsentRecord *c, void *arg)
{
	struct find *f = arg;

	if (active(c, rq->now) && covers(c, rq->agency, f->purpose) &&
	    (f->best[0] == '\0' || c->expires_at > f->best_expiry)) {
		snprintf(f->best, sizeof(f->best), "%s", c->id);
		f->best_expiry = c->expires_at;
	}
	return 0;
}

int
consent_find_active(struct request *rq, int purpose, char *id_out,
    size_t idsz)
{
	struct find f = { .purpose = purpose };
	int r;

	if ((r = each_consent(rq, find_one, &f)) != 0)
		return r;
	if (f.best[0] == '\0')
		return EHX_ERR_NO_CONSENT;
	snprintf(id_out, idsz, "%s", f.best);
	return 0;
}

int
handle_record_consent(struct request *rq, char *why, size_t whysz)
{
	const Ehx__RecordConsent *m = rq->body->record_consent;
	Ehx__StoredConsent sc = EHX__STORED_CONSENT__INIT;
	Ehx__ConsentRecord rec = EHX__CONSENT_RECORD__INIT;
	unsigned char rnd[8], key[STORE_KEY_MAX];
	MDB_val k, v;
	char *id;
	int r, rc;

	(void)why;
	(void)whysz;
	if ((id = ehx_arena_alloc(rq->b->arena, CONSENT_ID_LEN + 1)) == NULL)
		return EHX_ERR_NOMEM;
	do {
		if ((r = ehx_random(rnd, sizeof(rnd))) != 0)
			return EHX_ERR_INTERNAL;
		id[0] = 'c';
		id[1] = '-';
		ehx_hex(id + 2, rnd, sizeof(rnd));
		k.mv_size = store_consent_key(key, rq->child, id);
		k.mv_data = key;
	} while ((rc = mdb_get(rq->txn, rq->b->store.consent, &k, &v)) == 0);
	if (rc != MDB_NOTFOUND)
		return store_err(rc);
	rec.id = id;
	rec.given_by = m->given_by;
	rec.recorded_by_agency = (char *)rq->agency->id;
	rec.recorded_by = rq->body->person;
	rec.scope = m->scope;
	rec.basis = m->basis;
	rec.recorded_at = rq->now;
	rec.starts_at = m->starts_at > 0 ? m->starts_at : rq->now;
	rec.expires_at = m->expires_at;
	sc.child.data = rq->child;
	sc.child.len = EHX_PSEUDONYM_LEN;
	sc.record = &rec;
	sc.source_message = rq->body->message_id;
	if ((r = store_put_msg(rq->txn, rq->b->store.consent, key, k.mv_size,
	    &sc.base, rq->b->arena)) != 0)
		return r;
	snprintf(rq->basis, sizeof(rq->basis), "consent:%s", id);
	return request_ack(rq, id);
}

int
handle_withdraw_consent(struct request *rq, char *why, size_t whysz)
{
	const Ehx__WithdrawConsent *m = rq->body->withdraw_consent;
	Ehx__StoredConsent *sc;
	Ehx__ConsentRecord *c;
	unsigned char key[STORE_KEY_MAX];
	MDB_val k = { 0, key }, v;
	int rc;

	k.mv_size = store_consent_key(key, rq->child, m->consent_id);
	if ((rc = mdb_get(rq->txn, rq->b->store.consent, &k, &v)) != 0) {
		if (rc == MDB_NOTFOUND)
			snprintf(why, whysz, "this child has no consent %s",
			    m->consent_id);
		return store_err(rc);
	}
	if ((sc = ehx__stored_consent__unpack(ehx_arena_allocator(rq->b->arena),
	    v.mv_size, v.mv_data)) == NULL || (c = sc->record) == NULL)
		return EHX_ERR_STORAGE;
	if (!concerns(c, rq->agency)) {
		/* As if absent: an agency learns nothing of others' consents. */
		snprintf(why, whysz, "this child has no consent %s",
		    m->consent_id);
		return EHX_ERR_NOT_FOUND;
	}
	snprintf(rq->basis, sizeof(rq->basis), "consent:%s", m->consent_id);
	if (c->withdrawn_at != 0)
		return request_ack(rq, m->consent_id);	/* already withdrawn */
	c->withdrawn_at = rq->now;
	c->withdrawn_by = m->withdrawn_by;
	c->withdrawn_reason = m->reason;
	c->withdrawn_by_agency = (char *)rq->agency->id;
	c->withdrawn_recorded_by = rq->body->person;
	if ((rc = store_put_msg(rq->txn, rq->b->store.consent, key, k.mv_size,
	    &sc->base, rq->b->arena)) != 0)
		return rc;
	return request_ack(rq, m->consent_id);
}

/* Room kept for the Body's other fields and the Envelope around it. */
#define CONSENT_BUDGET (EHX_MAX_BODY - 2048)

struct list {
	Ehx__ConsentRecord **recs;
	size_t n, used;
	bool truncated;
};

static int
list_one(struct request *rq, const Ehx__ConsentRecord *c, void *arg)
{
	struct list *l = arg;
	struct ehx_arena *a = rq->b->arena;
	size_t n;
	unsigned char *buf;
	Ehx__ConsentRecord *copy;

	if (!concerns(c, rq->agency))
		return 0;
	n = protobuf_c_message_get_packed_size(&c->base);
	if (l->n >= EHX_MAX_CONSENTS || l->used + n + 8 > CONSENT_BUDGET) {
		l->truncated = true;
		return 1;
	}
	/* Keep a deep copy in the arena: pack, then unpack from there. */
	if ((buf = ehx_arena_alloc(a, n)) == NULL)
		return EHX_ERR_NOMEM;
	protobuf_c_message_pack(&c->base, buf);
	if ((copy = ehx__consent_record__unpack(ehx_arena_allocator(a), n,
	    buf)) == NULL)
		return EHX_ERR_NOMEM;
	l->recs[l->n++] = copy;
	l->used += n + 8;
	return 0;
}

int
handle_query_consent(struct request *rq, char *why, size_t whysz)
{
	Ehx__ConsentResult *res;
	struct list l = { 0 };
	int r;

	(void)why;
	(void)whysz;
	if ((res = ehx_arena_alloc(rq->b->arena, sizeof(*res))) == NULL ||
	    (l.recs = ehx_arena_alloc(rq->b->arena,
	    EHX_MAX_CONSENTS * sizeof(*l.recs))) == NULL)
		return EHX_ERR_NOMEM;
	if ((r = each_consent(rq, list_one, &l)) != 0)
		return r;
	ehx__consent_result__init(res);
	res->child.data = rq->child;
	res->child.len = EHX_PSEUDONYM_LEN;
	res->records = l.recs;
	res->n_records = l.n;
	res->truncated = l.truncated;
	snprintf(rq->basis, sizeof(rq->basis), "scope");
	rq->reply.payload_case = EHX__BODY__PAYLOAD_CONSENT;
	rq->reply.consent = res;
	return 0;
}
