/*
 * consent.c — a child's consent records as they stand now, for every
 * decision that rests on consent: the whole picture, notifications,
 * withdrawals, the consent query and subject access.
 *
 * A consent's history is append-only: the record is stored once as it was
 * given (child ‖ id ‖ 0) and never rewritten; a withdrawal is a second,
 * separate entry beside it (child ‖ id ‖ 1), written once; expiry is the
 * passing of expires_at. A record is active from starts_at until
 * expires_at unless withdrawn, and it covers an agency when its scope names
 * the agency, or names the agency's type and the agency is involved with
 * the child (holds an open flag on it, or serves it: the child is on its
 * roll, say): a consent "for the child's school" is not one for every
 * school in the partnership.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consent.h"
#include "ehx/err.h"
#include "ehx/util.h"
#include "store.h"

bool
consent_names(const Ehx__ConsentRecord *c, const struct agency *a)
{
	const Ehx__ConsentScope *s = c->scope;

	for (size_t i = 0; s != NULL && i < s->n_agencies; i++)
		if (strcmp(s->agencies[i], a->id) == 0)
			return true;
	return false;
}

static bool
covers(const Ehx__ConsentRecord *c, const struct agency *a, int purpose,
    bool involved)
{
	const Ehx__ConsentScope *s = c->scope;
	bool who, what = false;

	if (s == NULL)
		return false;
	who = consent_names(c, a);
	for (size_t i = 0; i < s->n_agency_types && !who && involved; i++)
		who = (int)s->agency_types[i] == a->type;
	for (size_t i = 0; i < s->n_purposes && !what; i++)
		what = (int)s->purposes[i] == purpose;
	return who && what;
}

bool
consent_concerns(const Ehx__ConsentRecord *c, const struct agency *a,
    bool involved)
{
	return strcmp(c->recorded_by_agency, a->id) == 0 ||
	    covers(c, a, EHX__PURPOSE__PURPOSE_WHOLE_PICTURE, involved) ||
	    covers(c, a, EHX__PURPOSE__PURPOSE_NOTIFICATIONS, involved) ||
	    covers(c, a, EHX__PURPOSE__PURPOSE_ASSESSMENT, involved);
}

/* Whether a serves the child today (handle_involvement.c): enrolled,
 * registered, on a caseload, a tenancy. */
static int
serves(struct request *rq, const struct agency *a, bool *yes)
{
	unsigned char prefix[STORE_KEY_MAX];
	size_t plen = store_flag_key(prefix, rq->child, a->id, "");
	MDB_val k = { plen, prefix }, v;
	Ehx__StoredInvolvement *si;
	char today[11];
	MDB_cursor *c;
	int rc, r = 0;

	if (ehx_fmt_day(today, sizeof(today), rq->now)[0] == '\0')
		return EHX_ERR_INTERNAL;
	if ((rc = mdb_cursor_open(rq->txn, rq->b->store.involvement, &c)) != 0)
		return store_err(rc);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0 && !*yes;
	    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (k.mv_size <= plen || memcmp(k.mv_data, prefix, plen) != 0)
			break;
		if ((r = store_read(&ehx__stored_involvement__descriptor, NULL,
		    &v, &si)) != 0)
			break;
		*yes = store_in_force(si, today);
		ehx__stored_involvement__free_unpacked(si, NULL);
	}
	mdb_cursor_close(c);
	if (r == 0 && rc != 0 && rc != MDB_NOTFOUND)
		r = store_err(rc);
	return r;
}

int
consent_involved(struct request *rq, const struct agency *a, bool *yes)
{
	unsigned char prefix[STORE_KEY_MAX];
	size_t plen = store_flag_key(prefix, rq->child, a->id, "");
	MDB_val k = { plen, prefix }, v;
	Ehx__StoredFlag *sf;
	MDB_cursor *c;
	int rc, r = 0;

	*yes = false;
	if ((rc = mdb_cursor_open(rq->txn, rq->b->store.flags, &c)) != 0)
		return store_err(rc);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0 && !*yes;
	    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0)
			break;
		if ((r = store_read(&ehx__stored_flag__descriptor, NULL, &v,
		    &sf)) != 0)
			break;
		*yes = sf->flag != NULL && sf->flag->status ==
		    EHX__FLAG_STATUS__FLAG_STATUS_OPEN;
		ehx__stored_flag__free_unpacked(sf, NULL);
	}
	mdb_cursor_close(c);
	if (r == 0 && rc != 0 && rc != MDB_NOTFOUND)
		r = store_err(rc);
	if (r == 0 && !*yes)
		r = serves(rq, a, yes);
	return r;
}

static bool
active(const Ehx__ConsentRecord *c, int64_t now)
{
	return c->withdrawn_at == 0 && c->starts_at <= now &&
	    now < c->expires_at;
}

/* The consent id in a consent key, and the entry's kind (record or
 * withdrawal); false for a key of another shape. */
static bool
split_key(const MDB_val *k, const unsigned char *child, size_t *idlen,
    int *kind)
{
	const unsigned char *p = k->mv_data;

	if (k->mv_size < EHX_PSEUDONYM_LEN + 2 ||
	    memcmp(p, child, EHX_PSEUDONYM_LEN) != 0)
		return false;
	*idlen = k->mv_size - EHX_PSEUDONYM_LEN - 1;
	*kind = p[k->mv_size - 1];
	return true;
}

/* Undo merge_withdrawal before the record is freed: the merged fields
 * belong to the withdrawal. */
static void
unmerge(Ehx__ConsentRecord *c)
{
	c->withdrawn_by = (char *)protobuf_c_empty_string;
	c->withdrawn_reason = (char *)protobuf_c_empty_string;
	c->withdrawn_by_agency = (char *)protobuf_c_empty_string;
	c->withdrawn_recorded_by = NULL;
}

static void
merge_withdrawal(Ehx__ConsentRecord *c, const Ehx__ConsentEvent *ev)
{
	c->withdrawn_at = ev->at;
	c->withdrawn_by = ev->by;
	c->withdrawn_reason = ev->reason;
	c->withdrawn_by_agency = ev->agency;
	c->withdrawn_recorded_by = ev->person;
}

int
consent_each(struct request *rq, int (*fn)(struct request *,
    const Ehx__ConsentRecord *, void *), void *arg)
{
	MDB_cursor *cur = NULL;
	MDB_val k = { EHX_PSEUDONYM_LEN, rq->child }, v;
	Ehx__StoredConsent *sc = NULL;
	Ehx__StoredWithdrawal *sw = NULL;
	size_t idlen;
	int rc, r = 0, kind;

	if ((rc = mdb_cursor_open(rq->txn, rq->b->store.consent, &cur)) != 0)
		return store_err(rc);
	/* Keys sort as record, then its withdrawal: hold each record until
	 * the next key shows whether it was withdrawn. */
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0 && r == 0;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (!split_key(&k, rq->child, &idlen, &kind))
			break;
		if (kind == STORE_CONSENT_WITHDRAWAL && sc != NULL &&
		    strlen(sc->record->id) == idlen &&
		    memcmp(sc->record->id, (char *)k.mv_data +
		    EHX_PSEUDONYM_LEN, idlen) == 0) {
			if ((r = store_read(&ehx__stored_withdrawal__descriptor,
			    NULL, &v, &sw)) != 0 || sw->event == NULL) {
				r = r != 0 ? r : EHX_ERR_STORAGE;
				break;
			}
			merge_withdrawal(sc->record, sw->event);
			continue;
		}
		if (sc != NULL) {
			r = fn(rq, sc->record, arg);
			unmerge(sc->record);
			ehx__stored_consent__free_unpacked(sc, NULL);
			sc = NULL;
			if (sw != NULL)
				ehx__stored_withdrawal__free_unpacked(sw, NULL);
			sw = NULL;
			if (r != 0)
				break;
		}
		if (kind != STORE_CONSENT_RECORD) {
			r = EHX_ERR_STORAGE;    /* a withdrawal without its record */
			break;
		}
		if ((r = store_read(&ehx__stored_consent__descriptor, NULL, &v,
		    &sc)) != 0 || sc->record == NULL ||
		    sc->record->id == NULL) {
			r = r != 0 ? r : EHX_ERR_STORAGE;
			break;
		}
	}
	if (r == 0 && sc != NULL)
		r = fn(rq, sc->record, arg);
	if (sc != NULL) {
		unmerge(sc->record);
		ehx__stored_consent__free_unpacked(sc, NULL);
	}
	if (sw != NULL)
		ehx__stored_withdrawal__free_unpacked(sw, NULL);
	mdb_cursor_close(cur);
	if (r == 0 && rc != 0 && rc != MDB_NOTFOUND)
		r = store_err(rc);
	return r > 0 ? 0 : r;
}

int
consent_events(const Ehx__ConsentRecord *c, int64_t now, struct ehx_arena *a,
    Ehx__ConsentEvent **ev)
{
	int n = 0;

	for (int i = 0; i < 3; i++)
		if ((ev[i] = ehx_arena_alloc(a, sizeof(**ev))) == NULL)
			return -1;
		else
			ehx__consent_event__init(ev[i]);
	ev[n]->consent_id = c->id;
	ev[n]->state = EHX__CONSENT_STATE__CONSENT_STATE_RECORDED;
	ev[n]->at = c->recorded_at;
	ev[n]->agency = c->recorded_by_agency;
	ev[n]->person = c->recorded_by;
	n++;
	if (c->withdrawn_at != 0 && c->withdrawn_at < c->expires_at) {
		ev[n]->consent_id = c->id;
		ev[n]->state = EHX__CONSENT_STATE__CONSENT_STATE_WITHDRAWN;
		ev[n]->at = c->withdrawn_at;
		ev[n]->agency = c->withdrawn_by_agency;
		ev[n]->person = c->withdrawn_recorded_by;
		ev[n]->reason = c->withdrawn_reason;
		ev[n]->by = c->withdrawn_by;
		n++;
	} else if (c->expires_at <= now) {
		ev[n]->consent_id = c->id;
		ev[n]->state = EHX__CONSENT_STATE__CONSENT_STATE_EXPIRED;
		ev[n]->at = c->expires_at;
		n++;
	}
	return n;
}

struct find {
	int purpose;
	const struct agency *who;
	bool involved;                  /* who holds an open flag on the child */
	int64_t best_expiry;
	struct consent_found *best;     /* best->id[0]: one found */
};

static int
find_one(struct request *rq, const Ehx__ConsentRecord *c, void *arg)
{
	struct find *f = arg;
	struct consent_found *b = f->best;

	if (active(c, rq->now) && covers(c, f->who, f->purpose, f->involved) &&
	    (b->id[0] == '\0' || c->expires_at > f->best_expiry)) {
		snprintf(b->id, sizeof(b->id), "%s", c->id);
		snprintf(b->agency, sizeof(b->agency), "%s",
		    c->recorded_by_agency);
		snprintf(b->user_id, sizeof(b->user_id), "%s",
		    c->recorded_by != NULL ? c->recorded_by->user_id : "");
		snprintf(b->evidence_ref, sizeof(b->evidence_ref), "%s",
		    c->evidence_ref);
		b->recorded_at = c->recorded_at;
		f->best_expiry = c->expires_at;
	}
	return 0;
}

int
consent_find(struct request *rq, const struct agency *who, int purpose,
    struct consent_found *out)
{
	struct find f = { .purpose = purpose, .who = who, .best = out };
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = consent_involved(rq, who, &f.involved)) != 0 ||
	    (r = consent_each(rq, find_one, &f)) != 0)
		return r;
	return out->id[0] != '\0' ? 0 : EHX_ERR_NO_CONSENT;
}

int
consent_find_active(struct request *rq, int purpose, char *id_out,
    size_t idsz)
{
	return consent_find_active_for(rq, rq->agency, purpose, id_out, idsz);
}

int
consent_find_active_for(struct request *rq, const struct agency *who,
    int purpose, char *id_out, size_t idsz)
{
	struct consent_found found;
	int r;

	if ((r = consent_find(rq, who, purpose, &found)) != 0)
		return r;
	snprintf(id_out, idsz, "%s", found.id);
	return 0;
}

struct list {
	Ehx__ConsentRecord **recs;
	Ehx__ConsentEvent **events;     /* when history is asked for */
	size_t n, nevents, used, budget;
	bool truncated, all;            /* all: not only those concerning us */
	bool involved;                  /* we hold an open flag on the child */
};

static int
list_one(struct request *rq, const Ehx__ConsentRecord *c, void *arg)
{
	struct list *l = arg;
	struct ehx_arena *a = rq->b->arena;
	size_t n, cost;
	Ehx__ConsentRecord *copy;

	if (!l->all && !consent_concerns(c, rq->agency, l->involved))
		return 0;
	n = protobuf_c_message_get_packed_size(&c->base);
	/* The events repeat the record's names: count them too. */
	cost = n + 8 + (l->events != NULL ? 3 * 64 + 2 * n : 0);
	if (l->n >= EHX_MAX_CONSENTS || l->used + cost > l->budget) {
		l->truncated = true;
		return 1;
	}
	/* Keep a deep copy in the arena. */
	if (store_keep(a, &c->base, &copy) != 0)
		return EHX_ERR_NOMEM;
	l->recs[l->n++] = copy;
	l->used += cost;
	if (l->events != NULL) {
		int ne = consent_events(copy, rq->now, a, l->events + l->nevents);

		if (ne < 0)
			return EHX_ERR_NOMEM;
		l->nevents += (size_t)ne;
	}
	return 0;
}

static int
by_time(const void *a, const void *b)
{
	const Ehx__ConsentEvent *x = *(Ehx__ConsentEvent *const *)a;
	const Ehx__ConsentEvent *y = *(Ehx__ConsentEvent *const *)b;

	if (x->at != y->at)
		return x->at < y->at ? -1 : 1;
	return strcmp(x->consent_id, y->consent_id);
}

int
consent_list(struct request *rq, bool history, bool all, size_t budget,
    Ehx__ConsentResult **out)
{
	Ehx__ConsentResult *res;
	struct list l = { 0 };
	int r;

	*out = NULL;
	l.all = all;
	l.budget = budget;
	if ((res = ehx_arena_alloc(rq->b->arena, sizeof(*res))) == NULL ||
	    (l.recs = ehx_arena_alloc(rq->b->arena,
	    EHX_MAX_CONSENTS * sizeof(*l.recs))) == NULL ||
	    (history && (l.events = ehx_arena_alloc(rq->b->arena,
	    3 * EHX_MAX_CONSENTS * sizeof(*l.events))) == NULL))
		return EHX_ERR_NOMEM;
	if ((!all && (r = consent_involved(rq, rq->agency, &l.involved)) !=
	    0) || (r = consent_each(rq, list_one, &l)) != 0)
		return r;
	ehx__consent_result__init(res);
	res->child.data = rq->child;
	res->child.len = EHX_PSEUDONYM_LEN;
	res->records = l.recs;
	res->n_records = l.n;
	res->truncated = l.truncated;
	if (history) {
		qsort(l.events, l.nevents, sizeof(*l.events), by_time);
		res->history = l.events;
		res->n_history = l.nevents;
	}
	*out = res;
	return 0;
}
