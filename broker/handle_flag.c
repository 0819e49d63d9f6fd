/*
 * handle_flag.c — publish_flag and close_flag. A flag is one agency's
 * involvement with one child under that agency's own reference: publishing
 * the same reference again changes it (step up, step down, a new
 * practitioner) and reopens it if it was closed; closing keeps it, with its
 * dates, as history. An agency can only ever touch its own flags: the key
 * holds the verified signer's id, never a field it sent.
 *
 * Publishing an open flag again exactly as it stands changes nothing (a
 * nightly import of the same rows): the ack says unchanged, nothing is
 * written and nobody is notified. A new flag, a reopened one, or a change
 * of level is news: notify.c plans whom to tell.
 *
 * A publish that names the child's locality (one of the sharing policy's,
 * when it names any; only from the agency types its locality_from names)
 * files the child under it for the right early help lists (handle_list.c):
 * the latest locality named by such an agency wins,
 * and the NHS number is kept beside it, sealed, since a list must name
 * its children and the rest of the store knows them only by pseudonym.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ehx/crypto.h"
#include "ehx/err.h"
#include "ehx/log.h"
#include "ehx/names.h"
#include "ehx/policy.h"
#include "ehx/util.h"
#include "handle.h"
#include "notify.h"
#include "store.h"

static int
get_flag(struct request *rq, const unsigned char *key, size_t klen,
    Ehx__StoredFlag **out)
{
	MDB_val k = { klen, (void *)key }, v;
	int rc;

	*out = NULL;
	if ((rc = mdb_get(rq->txn, rq->b->store.flags, &k, &v)) != 0)
		return store_err(rc);
	if ((rc = store_read(&ehx__stored_flag__descriptor, rq->b->arena, &v,
	    out)) != 0)
		return rc;
	return (*out)->flag != NULL ? 0 : EHX_ERR_STORAGE;
}

static bool
same_text(const char *a, const char *b)
{
	return strcmp(a != NULL ? a : "", b != NULL ? b : "") == 0;
}

/* Whether publishing m would leave the open flag f exactly as it is. */
static bool
unchanged(const Ehx__FlagView *f, const Ehx__PublishFlag *m)
{
	const Ehx__Practitioner *p = f->practitioner, *q = m->practitioner;

	if (f->status != EHX__FLAG_STATUS__FLAG_STATUS_OPEN ||
	    f->category != m->category || f->level != m->level ||
	    f->lead != m->lead || f->withhold != m->withhold ||
	    !same_text(f->note, m->note) || (p == NULL) != (q == NULL))
		return false;
	return p == NULL || (same_text(p->name, q->name) &&
	    same_text(p->role, q->role) && same_text(p->contact, q->contact));
}

/* File the child under locality (when it is not already). */
static int
set_locality(struct request *rq, const char *locality, const char *nhs)
{
	struct store *st = &rq->b->store;
	MDB_val k = { EHX_PSEUDONYM_LEN, rq->child }, v;
	unsigned char ik[STORE_LOCALITY_KEY_MAX], *sealed = NULL;
	size_t n = strlen(locality), sn;
	int rc;

	if ((rc = mdb_get(rq->txn, st->child_locality, &k, &v)) == 0) {
		if (v.mv_size == n && memcmp(v.mv_data, locality, n) == 0)
			return 0;
		if (v.mv_size == 0 || v.mv_size > EHX_MAX_ID)
			return EHX_ERR_STORAGE;
		k = (MDB_val){ store_locality_key(ik, v.mv_data, v.mv_size,
		    rq->child), ik };
		if ((rc = mdb_del(rq->txn, st->locality_index, &k, NULL)) != 0 &&
		    rc != MDB_NOTFOUND)
			return store_err(rc);
	} else if (rc != MDB_NOTFOUND)
		return store_err(rc);
	k = (MDB_val){ EHX_PSEUDONYM_LEN, rq->child };
	v = (MDB_val){ n, (void *)locality };
	if ((rc = mdb_put(rq->txn, st->child_locality, &k, &v, 0)) != 0)
		return store_err(rc);
	if ((rc = ehx_evidence_seal(rq->b->pkey, rq->child, nhs, strlen(nhs),
	    &sealed, &sn)) != 0)
		return rc == EHX_ERR_NOMEM ? rc : EHX_ERR_INTERNAL;
	k = (MDB_val){ store_locality_key(ik, locality, n, rq->child), ik };
	v = (MDB_val){ sn, sealed };
	rc = mdb_put(rq->txn, st->locality_index, &k, &v, 0);
	free(sealed);
	return store_err(rc);
}

/*
 * Whether rq's agency holds EHX_MAX_OPEN_FLAGS flags open on rq's child
 * already. The keys are counted first, which costs no decoding; only an
 * agency with that many flags there, open or closed, has them read (one
 * at a time, on the heap).
 */
static int
at_open_cap(struct request *rq, bool *full)
{
	unsigned char prefix[STORE_KEY_MAX];
	size_t plen = store_flag_key(prefix, rq->child, rq->agency->id, "");
	MDB_val k, v;
	Ehx__StoredFlag *sf;
	MDB_cursor *c;
	size_t keys = 0, open = 0;
	int rc, r = 0;

	*full = false;
	if ((rc = mdb_cursor_open(rq->txn, rq->b->store.flags, &c)) != 0)
		return store_err(rc);
	for (int pass = 0; pass < 2 && r == 0; pass++) {
		k = (MDB_val){ plen, prefix };
		for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
		    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
			if (k.mv_size < plen ||
			    memcmp(k.mv_data, prefix, plen) != 0)
				break;
			if (pass == 0) {
				keys++;
				continue;
			}
			if ((r = store_read(&ehx__stored_flag__descriptor, NULL,
			    &v, &sf)) != 0)
				break;
			if (sf->flag != NULL && sf->flag->status ==
			    EHX__FLAG_STATUS__FLAG_STATUS_OPEN)
				open++;
			ehx__stored_flag__free_unpacked(sf, NULL);
		}
		if (r == 0 && rc != 0 && rc != MDB_NOTFOUND)
			r = store_err(rc);
		if (pass == 0 && keys < EHX_MAX_OPEN_FLAGS)
			break;
	}
	mdb_cursor_close(c);
	*full = open >= EHX_MAX_OPEN_FLAGS;
	return r;
}

#define DAY_MS (24LL * 3600 * 1000)

/* Categories whose flags say most about a family: a first flag beside
 * another agency's of these is raised for review. */
static bool
sensitive(int category)
{
	switch (category) {
	case EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE:
	case EHX__CATEGORY__CATEGORY_SUBSTANCE_MISUSE:
	case EHX__CATEGORY__CATEGORY_MENTAL_HEALTH:
	case EHX__CATEGORY__CATEGORY_EXPLOITATION_RISK:
	case EHX__CATEGORY__CATEGORY_MISSING_EPISODES:
	case EHX__CATEGORY__CATEGORY_RADICALISATION:
		return true;
	default:
		return false;
	}
}

/*
 * A made-up flag must not quietly buy notifications about a child (issue
 * 16): the first flag of an agency on a child that other agencies hold
 * open flags of sensitive categories on is raised for IG review, naming
 * them. Reads the child's flags on the heap; sets rq's alert.
 */
static int
first_flag_alert(struct request *rq)
{
	MDB_val k = { EHX_PSEUDONYM_LEN, rq->child }, v;
	char cats[200] = "";
	size_t used = 0;
	Ehx__StoredFlag *sf;
	MDB_cursor *c;
	char *reason;
	bool ours = false;
	int rc, r = 0;

	if ((rc = mdb_cursor_open(rq->txn, rq->b->store.flags, &c)) != 0)
		return store_err(rc);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0 && !ours;
	    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (k.mv_size < EHX_PSEUDONYM_LEN ||
		    memcmp(k.mv_data, rq->child, EHX_PSEUDONYM_LEN) != 0)
			break;
		if ((r = store_read(&ehx__stored_flag__descriptor, NULL, &v,
		    &sf)) != 0)
			break;
		if (sf->flag != NULL && sf->flag->status ==
		    EHX__FLAG_STATUS__FLAG_STATUS_OPEN) {
			if (strcmp(sf->agency, rq->agency->id) == 0)
				ours = true;    /* not its first */
			else if (sensitive(sf->flag->category) &&
			    strstr(cats, ehx_category_name(sf->flag->category))
			    == NULL && used + 40 < sizeof(cats))
				used += (size_t)snprintf(cats + used,
				    sizeof(cats) - used, "%s%s", used ? ", " :
				    "", ehx_category_name(sf->flag->category));
		}
		ehx__stored_flag__free_unpacked(sf, NULL);
	}
	mdb_cursor_close(c);
	if (r == 0 && rc != 0 && rc != MDB_NOTFOUND)
		r = store_err(rc);
	if (r != 0 || ours || cats[0] == '\0')
		return r;
	if ((reason = ehx_arena_alloc(rq->b->arena, EHX_MAX_REASON + 1)) ==
	    NULL)
		return EHX_ERR_NOMEM;
	snprintf(reason, EHX_MAX_REASON + 1, "the first flag of %s on a child "
	    "other agencies hold open %s flags on: it brings notifications "
	    "about the child", rq->agency->id, cats);
	rq->alert_kind = "first_flag";
	rq->alert_reason = reason;
	return 0;
}

/*
 * Whether this change is news, and whether it may still tell anyone: the
 * flag's news of the last day is kept in it (news_at), and past
 * EHX_MAX_NEWS_PER_DAY a change is stored but notifies no one. The same
 * whoever would have been told, so churn says nothing either.
 */
static bool
news_allowed(const struct request *rq, const Ehx__StoredFlag *old,
    const Ehx__FlagView *now, int64_t *keep, size_t *nkeep)
{
	bool news = old == NULL || old->flag->status !=
	    EHX__FLAG_STATUS__FLAG_STATUS_OPEN || old->flag->category !=
	    now->category || old->flag->level != now->level;

	*nkeep = 0;
	for (size_t i = 0; old != NULL && i < old->n_news_at; i++)
		if (rq->now - old->news_at[i] < DAY_MS &&
		    *nkeep < EHX_MAX_NEWS_PER_DAY)
			keep[(*nkeep)++] = old->news_at[i];
	if (!news)
		return true;
	if (*nkeep >= EHX_MAX_NEWS_PER_DAY)
		return false;
	keep[(*nkeep)++] = rq->now;
	return true;
}

int
handle_publish_flag(struct request *rq, char *why, size_t whysz)
{
	const Ehx__PublishFlag *m = rq->body->publish_flag;
	Ehx__StoredFlag sf = EHX__STORED_FLAG__INIT, *old = NULL;
	Ehx__FlagView fv = EHX__FLAG_VIEW__INIT;
	unsigned char key[STORE_KEY_MAX];
	int64_t news_at[EHX_MAX_NEWS_PER_DAY];
	unsigned char node[EHX_PSEUDONYM_LEN];
	const char *nhs = m->nhs_number;
	size_t klen;
	bool tell;
	int r;

	if (m->child != NULL) {
		/* named as the agency knows the child: which child that is
		 * (identity.c); the reply is the same whichever it was */
		if ((r = request_child(rq, m->child, node, why, whysz)) != 0)
			return r;
		sf.origin.data = node;
		sf.origin.len = EHX_PSEUDONYM_LEN;
		nhs = m->child->nhs_number;
	}
	if (m->locality[0] != '\0') {
		/* Who may say where a child lives decides who can put a
		 * child on a list: only the types the policy names. */
		if (!ehx_policy_locality_from(&rq->b->policy,
		    rq->agency->type)) {
			snprintf(why, whysz, "the sharing policy does not take "
			    "a child's locality from %s agencies; leave it out",
			    ehx_agency_type_name(rq->agency->type));
			return EHX_ERR_INVALID_FIELD;
		}
		if (!ehx_policy_locality_ok(&rq->b->policy, m->locality)) {
			snprintf(why, whysz, "locality \"%s\" is not one of the "
			    "sharing policy's", m->locality);
			return EHX_ERR_INVALID_FIELD;
		}
		if ((r = set_locality(rq, m->locality, nhs)) != 0)
			return r;
	}
	klen = store_flag_key(key, rq->child, rq->agency->id, m->ref);
	if ((r = get_flag(rq, key, klen, &old)) != 0 && r != EHX_ERR_NOT_FOUND)
		return r;
	/* "unchanged" only about the agency's own record: a match must not
	 * be read off it (§10.7) */
	if (old != NULL && unchanged(old->flag, m) &&
	    (m->child == NULL || rq->child_known)) {
		if ((r = request_ack(rq, m->ref)) != 0)
			return r;
		rq->reply.ack->unchanged = true;
		return 0;
	}
	if (old == NULL || old->flag->status !=
	    EHX__FLAG_STATUS__FLAG_STATUS_OPEN) {
		/* One more open flag: within what one agency may hold open
		 * on one child, so that every answer about a child stays
		 * bounded. */
		bool full;

		if ((r = at_open_cap(rq, &full)) != 0)
			return r;
		if (full) {
			snprintf(why, whysz, "%s already holds %d open flags on "
			    "this child, the most one agency may; close one, or "
			    "publish under the reference of one that is open",
			    rq->agency->id, EHX_MAX_OPEN_FLAGS);
			return EHX_ERR_TOO_LARGE;
		}
	}
	fv.ref = m->ref;
	fv.category = m->category;
	fv.level = m->level;
	fv.status = EHX__FLAG_STATUS__FLAG_STATUS_OPEN;
	fv.opened_at = old != NULL && old->flag->status ==
	    EHX__FLAG_STATUS__FLAG_STATUS_OPEN ? old->flag->opened_at : rq->now;
	fv.updated_at = rq->now;
	fv.practitioner = m->practitioner;
	fv.lead = m->lead;
	fv.note = m->note;
	fv.withhold = m->withhold;
	sf.agency = (char *)rq->agency->id;
	sf.agency_type = (Ehx__AgencyType)rq->agency->type;
	sf.flag = &fv;
	sf.source_message = rq->body->message_id;
	tell = news_allowed(rq, old, &fv, news_at, &sf.n_news_at);
	sf.news_at = news_at;
	if (old == NULL && (r = first_flag_alert(rq)) != 0)
		return r;
	if ((r = store_put_msg(rq->txn, rq->b->store.flags, key, klen,
	    &sf.base, rq->b->arena)) != 0)
		return r;
	if (tell)
		r = notify_plan(rq, old != NULL ? old->flag : NULL, &fv);
	else
		log_info("%s's flag %s changed more than %d times in a day: "
		    "stored, and nobody notified", rq->agency->id, m->ref,
		    EHX_MAX_NEWS_PER_DAY);
	if (r != 0 || (r = request_ack(rq, m->ref)) != 0)
		return r;
	return 0;
}

int
handle_close_flag(struct request *rq, char *why, size_t whysz)
{
	const Ehx__CloseFlag *m = rq->body->close_flag;
	Ehx__StoredFlag *sf = NULL;
	unsigned char key[STORE_KEY_MAX];
	size_t klen;
	int r;

	if (m->child != NULL &&
	    (r = request_child(rq, m->child, NULL, why, whysz)) != 0) {
		if (r == EHX_ERR_NOT_FOUND)
			snprintf(why, whysz, "%s has no flag \"%s\" for this "
			    "child", rq->agency->id, m->ref);
		return r;
	}
	klen = store_flag_key(key, rq->child, rq->agency->id, m->ref);
	if ((r = get_flag(rq, key, klen, &sf)) != 0) {
		if (r == EHX_ERR_NOT_FOUND)
			snprintf(why, whysz, "%s has no flag \"%s\" for this "
			    "child", rq->agency->id, m->ref);
		return r;
	}
	if (sf->flag->status != EHX__FLAG_STATUS__FLAG_STATUS_CLOSED) {
		sf->flag->status = EHX__FLAG_STATUS__FLAG_STATUS_CLOSED;
		sf->flag->closed_at = rq->now;
		sf->flag->close_reason = m->reason;
		sf->flag->updated_at = rq->now;
		sf->source_message = rq->body->message_id;
		if ((r = store_put_msg(rq->txn, rq->b->store.flags, key, klen,
		    &sf->base, rq->b->arena)) != 0)
			return r;
	}
	return request_ack(rq, m->ref);
}
