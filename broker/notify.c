/*
 * notify.c — notifications, the Operation Encompass pattern: when a flag
 * is published new, reopened, moved to another category (told as new), or
 * its level of need changes, every other
 * agency with an open flag on the same child is told, when the sharing
 * policy names that agency's type for the flag's category and the basis
 * it names holds (for "consent": an active consent of the child that
 * covers that agency for the notifications purpose).
 *
 * The publish handler plans them (notify_plan) inside the publish's own
 * transaction; before the publish's audit record the pipeline emits them
 * (notify_emit) in the same transaction: each takes the next number of
 * its agency's queue, is signed by the broker and sealed at rest (it names
 * the child by NHS number); the publish's one audit record lists them all
 * (AuditRecord.notified: agency, basis, seq), and each is indexed as a
 * disclosure of the publisher's flag (notify_disclose). All of it commits
 * with the flag, or none of it does. (Logs kept before issue 16 hold a
 * "notify" record for each notification instead.)
 *
 * A notification says which agency, which category, which event, and —
 * only where the policy's view for the notified type shows them — the
 * level and whom to contact. Never the note.
 *
 * Agents fetch their queue (handle_fetch_notifications): a fetch "after N"
 * drops 1..N, which the agent has stored, and returns what follows in
 * order. Numbers per agency run 1, 2, 3 … without gaps.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consent.h"
#include "ehx/err.h"
#include "ehx/log.h"
#include "ehx/names.h"
#include "ehx/util.h"
#include "ehx/wire.h"
#include "handle.h"
#include "identity.h"
#include "notify.h"
#include "registry.h"
#include "store.h"

#define NOTIFY_KEY_MAX (EHX_MAX_ID + 1 + 8)
#define META_KEY_MAX (7 + EHX_MAX_ID)
#define ACKED_KEY_MAX (9 + EHX_MAX_ID)
/* Room kept for the Body's other fields and the Envelope around a batch. */
#define BATCH_BUDGET (EHX_MAX_BODY - 4096)

static size_t
queue_key(unsigned char *k, const char *agency, uint64_t seq)
{
	size_t n = strlen(agency);

	memcpy(k, agency, n);
	k[n] = 0;
	put_be64(k + n + 1, seq);
	return n + 9;
}

static size_t
meta_key(char *k, const char *agency)
{
	return (size_t)snprintf(k, META_KEY_MAX + 1, "notify:%s", agency);
}

/* "notified:" agency: the last seq the agent acknowledged and its id. */
static size_t
acked_key(char *k, const char *agency)
{
	return (size_t)snprintf(k, ACKED_KEY_MAX + 1, "notified:%s", agency);
}

/* The sealing's associated data: the queue key and the notification's
 * message id (kept in clear before the sealed envelope), under a context. */
static void
seal_ad(const unsigned char *key, size_t klen, const unsigned char *id,
    unsigned char ad[32])
{
	unsigned char buf[16 + NOTIFY_KEY_MAX + EHX_MSGID_LEN];

	memcpy(buf, "EHX-NOTIFY-V2", 13);
	memcpy(buf + 13, key, klen);
	memcpy(buf + 13 + klen, id, EHX_MSGID_LEN);
	ehx_sha256(buf, 13 + klen + EHX_MSGID_LEN, ad);
}

int
notify_last(struct store *s, MDB_txn *txn, const char *agency,
    uint64_t *last)
{
	char k[META_KEY_MAX + 1];
	MDB_val key = { meta_key(k, agency), k }, val;
	int rc;

	*last = 0;
	if ((rc = mdb_get(txn, s->meta, &key, &val)) == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return store_err(rc);
	if (val.mv_size != 8)
		return EHX_ERR_STORAGE;
	*last = get_be64(val.mv_data);
	return 0;
}

static int
plan_one(struct request *rq, const char *agency)
{
	const Ehx__PublishFlag *m = rq->body->publish_flag;
	const struct agency *to;
	struct notify_plan *p;
	char consent_id[32] = "";
	int basis, r;

	if ((to = registry_by_id(&rq->b->reg, agency)) == NULL)
		return 0;       /* no longer in the partnership */
	basis = ehx_policy_notify_basis(&rq->b->policy, m->category, to->type);
	if (basis == 0)
		return 0;
	/* A change of level is news only to whom the level is shown. */
	if (rq->notify_event == EHX__NOTIFY_EVENT__NOTIFY_EVENT_LEVEL_CHANGED &&
	    !(ehx_policy_view(&rq->b->policy, to->type, m->category) &
	    EHX_POLICY_LEVEL))
		return 0;
	if (basis == EHX__LAWFUL_BASIS__LAWFUL_BASIS_CONSENT) {
		r = consent_find_active_for(rq, to,
		    EHX__PURPOSE__PURPOSE_NOTIFICATIONS, consent_id,
		    sizeof(consent_id));
		if (r == EHX_ERR_NO_CONSENT)
			return 0;
		if (r != 0)
			return r;
	}
	if (rq->nnotify == EHX_MAX_NOTIFY) {
		log_warn("a publish by %s would notify more than %d agencies: "
		    "%s is not notified", rq->agency->id, EHX_MAX_NOTIFY,
		    to->id);
		return 0;
	}
	p = &rq->notify[rq->nnotify++];
	p->to = to;
	p->basis = basis;
	snprintf(p->consent_id, sizeof(p->consent_id), "%s", consent_id);
	return 0;
}

/* Whether a stored flag is open. Unpacked with the system allocator and
 * freed at once: a child may have many closed flags, and the request's
 * arena is not for them. */
static int
flag_open(const MDB_val *v, bool *open)
{
	Ehx__StoredFlag *sf;

	int r;

	if ((r = store_read(&ehx__stored_flag__descriptor, NULL, v, &sf)) != 0)
		return r;
	if (sf->flag == NULL) {
		ehx__stored_flag__free_unpacked(sf, NULL);
		return EHX_ERR_STORAGE;
	}
	*open = sf->flag->status == EHX__FLAG_STATUS__FLAG_STATUS_OPEN;
	ehx__stored_flag__free_unpacked(sf, NULL);
	return 0;
}

/*
 * The agency of a key child ‖ agency ‖ 0 ‖ … (flags, involvement) into
 * agency: 2 when there is one, 1 for a key of the child without one (a
 * damaged key: skipped), 0 past the child's keys.
 */
static int
key_agency(const MDB_val *k, const unsigned char *child,
    char agency[EHX_MAX_ID + 1])
{
	const unsigned char *key = k->mv_data, *end;
	size_t n;

	if (k->mv_size <= EHX_PSEUDONYM_LEN ||
	    memcmp(key, child, EHX_PSEUDONYM_LEN) != 0)
		return 0;
	end = memchr(key + EHX_PSEUDONYM_LEN, 0, k->mv_size - EHX_PSEUDONYM_LEN);
	n = end == NULL ? 0 : (size_t)(end - key) - EHX_PSEUDONYM_LEN;
	if (n == 0 || n > EHX_MAX_ID)
		return 1;
	memcpy(agency, key + EHX_PSEUDONYM_LEN, n);
	agency[n] = '\0';
	return 2;
}

/* Whether agency is planned already. */
static bool
planned(const struct request *rq, const char *agency)
{
	for (size_t i = 0; i < rq->nnotify; i++)
		if (strcmp(rq->notify[i].to->id, agency) == 0)
			return true;
	return false;
}

/*
 * The agencies that serve the child (handle_involvement.c): each with an
 * involvement in force today is told as one with an open flag would be.
 */
static int
plan_involved(struct request *rq)
{
	MDB_val k = { EHX_PSEUDONYM_LEN, rq->child }, v;
	char today[11], agency[EHX_MAX_ID + 1];
	MDB_cursor *c = NULL;
	int rc, r = 0;

	if (ehx_fmt_day(today, sizeof(today), rq->now)[0] == '\0')
		return EHX_ERR_INTERNAL;
	if ((rc = mdb_cursor_open(rq->txn, rq->b->store.involvement, &c)) != 0)
		return store_err(rc);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0 && r == 0;
	    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		Ehx__StoredInvolvement *si;
		int n;
		bool active;

		if ((n = key_agency(&k, rq->child, agency)) == 0)
			break;
		if (n == 1)
			continue;
		if (strcmp(agency, rq->agency->id) == 0 || planned(rq, agency))
			continue;
		if ((r = store_read(&ehx__stored_involvement__descriptor, NULL,
		    &v, &si)) != 0)
			break;
		active = store_in_force(si, today);
		ehx__stored_involvement__free_unpacked(si, NULL);
		if (active)
			r = plan_one(rq, agency);
	}
	mdb_cursor_close(c);
	if (r == 0 && rc != 0 && rc != MDB_NOTFOUND)
		r = store_err(rc);
	return r;
}

int
notify_plan(struct request *rq, const Ehx__FlagView *old,
    const Ehx__FlagView *now)
{
	struct ehx_arena *a = rq->b->arena;
	MDB_cursor *c = NULL;
	MDB_val k = { EHX_PSEUDONYM_LEN, rq->child }, v;
	char last[EHX_MAX_ID + 1] = "";
	bool decided = false, open;
	int rc, r = 0;

	rq->nnotify = 0;
	if (old == NULL)
		rq->notify_event = EHX__NOTIFY_EVENT__NOTIFY_EVENT_NEW;
	else if (old->status != EHX__FLAG_STATUS__FLAG_STATUS_OPEN)
		rq->notify_event = EHX__NOTIFY_EVENT__NOTIFY_EVENT_REOPENED;
	else if (old->category != now->category)
		/* The same involvement, now about something else: news
		 * for whoever is told of the new category. */
		rq->notify_event = EHX__NOTIFY_EVENT__NOTIFY_EVENT_NEW;
	else if (old->level != now->level) {
		rq->notify_event = EHX__NOTIFY_EVENT__NOTIFY_EVENT_LEVEL_CHANGED;
		rq->notify_prev_level = old->level;
	} else
		return 0;
	if ((rq->notify = ehx_arena_alloc(a, EHX_MAX_NOTIFY *
	    sizeof(*rq->notify))) == NULL)
		return EHX_ERR_NOMEM;
	if ((rc = mdb_cursor_open(rq->txn, rq->b->store.flags, &c)) != 0)
		return store_err(rc);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
	    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		char agency[EHX_MAX_ID + 1];
		int n;

		if ((n = key_agency(&k, rq->child, agency)) == 0)
			break;
		if (n == 1)
			continue;
		if (strcmp(agency, rq->agency->id) == 0)
			continue;
		if (strcmp(agency, last) != 0) {
			snprintf(last, sizeof(last), "%s", agency);
			decided = false;
		}
		if (decided)
			continue;       /* this agency is planned (or not) */
		if ((r = flag_open(&v, &open)) != 0)
			break;
		if (!open)
			continue;
		decided = true;
		if ((r = plan_one(rq, agency)) != 0)
			break;
	}
	mdb_cursor_close(c);
	if (r == 0 && rc != 0 && rc != MDB_NOTFOUND)
		r = store_err(rc);
	if (r == 0)
		r = plan_involved(rq);
	return r;
}

static int
push_add(struct broker *b, const struct agency *to, unsigned char *env,
    size_t len)
{
	if (b->npush == b->push_cap) {
		size_t cap = b->push_cap ? 2 * b->push_cap : 16;
		struct push *p = realloc(b->push, cap * sizeof(*p));

		if (p == NULL)
			return EHX_ERR_NOMEM;
		b->push = p;
		b->push_cap = cap;
	}
	b->push[b->npush++] = (struct push){ to, env, len };
	return 0;
}

void
notify_push_drop(struct broker *b, size_t mark)
{
	while (b->npush > mark)
		free(b->push[--b->npush].env);
}

/* ---- deferred: a publish keeps a plan, a later step emits it -------------- */

#define PLAN_PREFIX "nplan:"
#define PLAN_KEY_LEN (sizeof(PLAN_PREFIX) - 1 + 8)

static void
plan_key(unsigned char k[PLAN_KEY_LEN], uint64_t record)
{
	memcpy(k, PLAN_PREFIX, sizeof(PLAN_PREFIX) - 1);
	put_be64(k + sizeof(PLAN_PREFIX) - 1, record);
}

/* The sealing's associated data of a plan: its key, under a context. */
static void
plan_ad(const unsigned char k[PLAN_KEY_LEN], unsigned char ad[32])
{
	unsigned char buf[16 + PLAN_KEY_LEN];

	memcpy(buf, "EHX-NPLAN-V1", 12);
	memcpy(buf + 12, k, PLAN_KEY_LEN);
	ehx_sha256(buf, 12 + PLAN_KEY_LEN, ad);
}

int
notify_defer(struct request *rq, MDB_txn *txn)
{
	struct broker *b = rq->b;
	char mk[META_KEY_MAX + 1], be[8];
	MDB_val mkey, mval;
	uint64_t seq;
	int r;

	rq->nnotified = 0;
	if (rq->nnotify == 0)
		return 0;
	if ((rq->notified = ehx_arena_alloc(b->arena, rq->nnotify *
	    sizeof(*rq->notified))) == NULL)
		return EHX_ERR_NOMEM;
	for (size_t i = 0; i < rq->nnotify; i++) {
		const struct notify_plan *p = &rq->notify[i];
		Ehx__Notified *nd;

		/* Its number now (a small write beside the plan's own),
		 * its envelope later. */
		if ((r = notify_last(&b->store, txn, p->to->id, &seq)) != 0)
			return r;
		put_be64((unsigned char *)be, ++seq);
		mkey = (MDB_val){ meta_key(mk, p->to->id), mk };
		mval = (MDB_val){ 8, be };
		if ((r = store_err(mdb_put(txn, b->store.meta, &mkey, &mval,
		    0))) != 0)
			return r;
		if ((nd = ehx_arena_alloc(b->arena, sizeof(*nd))) == NULL)
			return EHX_ERR_NOMEM;
		ehx__notified__init(nd);
		nd->agency = (char *)p->to->id;
		nd->basis = (Ehx__LawfulBasis)p->basis;
		nd->consent_id = (char *)p->consent_id;
		nd->seq = seq;
		rq->notified[rq->nnotified++] = nd;
	}
	return 0;
}

int
notify_keep(struct request *rq, MDB_txn *txn, uint64_t record)
{
	struct broker *b = rq->b;
	const Ehx__PublishFlag *m = rq->body->publish_flag;
	Ehx__NotifyPlan plan = EHX__NOTIFY_PLAN__INIT;
	unsigned char k[PLAN_KEY_LEN], ad[32], *buf, *sealed = NULL;
	size_t n, sealedlen;
	MDB_val key = { PLAN_KEY_LEN, k }, val;
	int r;

	plan.record = record;
	plan.publisher = (char *)rq->agency->id;
	plan.publisher_type = (Ehx__AgencyType)rq->agency->type;
	plan.nhs_number = m->child != NULL ? m->child->nhs_number :
	    m->nhs_number;
	plan.child.data = rq->child;
	plan.child.len = EHX_PSEUDONYM_LEN;
	plan.category = m->category;
	plan.event = (Ehx__NotifyEvent)rq->notify_event;
	plan.level = m->level;
	plan.previous_level = rq->notify_prev_level;
	plan.contact = m->practitioner;
	plan.lead = m->lead;
	plan.flagged_at = rq->now;
	plan.to = rq->notified;
	plan.n_to = rq->nnotified;
	n = ehx__notify_plan__get_packed_size(&plan);
	if ((buf = ehx_arena_alloc(b->arena, n)) == NULL)
		return EHX_ERR_NOMEM;
	ehx__notify_plan__pack(&plan, buf);
	plan_key(k, record);
	plan_ad(k, ad);
	if ((r = ehx_evidence_seal(b->pkey, ad, buf, n, &sealed,
	    &sealedlen)) != 0)
		return r == EHX_ERR_NOMEM ? r : EHX_ERR_INTERNAL;
	val = (MDB_val){ sealedlen, sealed };
	r = store_err(mdb_put(txn, b->store.meta, &key, &val, 0));
	free(sealed);
	if (r == 0 && !b->plans_pending) {
		/* The first since the last step: the next in 100-300 ms, at
		 * a moment the publisher cannot pick out. */
		uint16_t jitter = 0;

		(void)ehx_random(&jitter, sizeof(jitter));
		b->flush_due = ehx_now_ms() + NOTIFY_FLUSH_MS / 2 +
		    jitter % NOTIFY_FLUSH_MS;
	}
	if (r == 0)
		b->plans_pending = true;
	return r;
}

/* Sign, seal and queue one planned notification (its number was given
 * at the publish), and index it as a disclosure of the publisher's flag. */
static int
emit_one(struct broker *b, MDB_txn *txn, const Ehx__NotifyPlan *pl,
    size_t i, int64_t now)
{
	const Ehx__Notified *nd = pl->to[i];
	const struct agency *to = registry_by_id(&b->reg, nd->agency);
	Ehx__Notification n = EHX__NOTIFICATION__INIT;
	Ehx__Body body = EHX__BODY__INIT;
	Ehx__Disclosure d = EHX__DISCLOSURE__INIT;
	unsigned char id[EHX_MSGID_LEN], key[NOTIFY_KEY_MAX], ad[32];
	unsigned char dk[EHX_MAX_ID + 1 + 8 + 1];
	unsigned char *env = NULL, *sealed = NULL;
	char basis[64], nhs[11] = "";
	Ehx__ChildIdentity *known = NULL;
	size_t envlen, sealedlen, klen, pn = strlen(pl->publisher);
	unsigned view;
	MDB_val qkey, qval;
	int r;

	if (to == NULL)
		return 0;       /* left the partnership since */
	/* the child as this agency named them: its own record, or the NHS
	 * number when that is how it knows the child. The plan names the
	 * child's key when it was kept: a link since then moved it. A
	 * record that cannot be read is no record (logged), not a stop. */
	if (pl->child.len == EHX_PSEUDONYM_LEN) {
		unsigned char now_key[EHX_PSEUDONYM_LEN];

		if (identity_child_of(&b->store, txn, pl->child.data,
		    now_key) != 0 || identity_known_as(&b->store, txn, b->pkey,
		    now_key, to->id, &known, nhs) != 0) {
			log_error("notification %llu to %s: the child's records "
			    "could not be read; it is sent with what the "
			    "publisher gave", (unsigned long long)nd->seq,
			    to->id);
			known = NULL;
			nhs[0] = '\0';
		}
	}
	view = ehx_policy_view(&b->policy, to->type, pl->category);
	n.seq = nd->seq;
	n.nhs_number = pl->nhs_number != NULL && pl->nhs_number[0] != '\0' ?
	    pl->nhs_number : nhs;
	n.child = known;
	n.agency = pl->publisher;
	n.agency_type = pl->publisher_type;
	n.category = pl->category;
	n.event = pl->event;
	if (view & EHX_POLICY_LEVEL) {
		n.level = pl->level;
		n.previous_level = pl->previous_level;
	}
	if (view & EHX_POLICY_CONTACT) {
		n.contact = pl->contact;
		n.lead = pl->lead;
	}
	n.basis = nd->basis;
	n.consent_id = nd->consent_id;
	n.agreement = b->policy.id;
	n.flagged_at = pl->flagged_at;
	if ((r = ehx_message_id(id)) != 0) {
		r = EHX_ERR_INTERNAL;
		goto out;
	}
	body.message_id.data = id;
	body.message_id.len = sizeof(id);
	body.sender = b->cfg.id;
	body.recipient = (char *)to->id;
	body.sent_at = now;
	body.payload_case = EHX__BODY__PAYLOAD_NOTIFICATION;
	body.notification = &n;
	if ((r = ehx_envelope_seal(b->signer, &body, &env, &envlen)) != 0) {
		r = r == EHX_ERR_NOMEM ? r : EHX_ERR_INTERNAL;
		goto out;
	}
	klen = queue_key(key, to->id, nd->seq);
	seal_ad(key, klen, id, ad);
	if ((r = ehx_evidence_seal(b->pkey, ad, env, envlen, &sealed,
	    &sealedlen)) != 0) {
		r = r == EHX_ERR_NOMEM ? r : EHX_ERR_INTERNAL;
		goto out;
	}
	qkey = (MDB_val){ klen, key };
	qval = (MDB_val){ EHX_MSGID_LEN + sealedlen, NULL };
	if ((r = store_err(mdb_put(txn, b->store.notify, &qkey, &qval,
	    MDB_RESERVE))) != 0)
		goto out;
	memcpy(qval.mv_data, id, EHX_MSGID_LEN);
	memcpy((unsigned char *)qval.mv_data + EHX_MSGID_LEN, sealed,
	    sealedlen);
	/* The publisher's disclosures: its id, the record's seq, and the
	 * notification's place in it (one record, many told). */
	if (nd->consent_id[0] != '\0')
		snprintf(basis, sizeof(basis), "consent:%s", nd->consent_id);
	else
		snprintf(basis, sizeof(basis), "policy:%s:%s", b->policy.id,
		    ehx_basis_name(nd->basis));
	d.seq = pl->record;
	d.time = pl->flagged_at;
	d.to_agency = nd->agency;
	d.child = pl->child;
	d.basis = basis;
	d.flags = 1;
	d.via = (char *)"notification";
	memcpy(dk, pl->publisher, pn);
	dk[pn] = 0;
	put_be64(dk + pn + 1, pl->record);
	dk[pn + 9] = (unsigned char)(i + 1);
	if ((r = store_put_msg(txn, b->store.disclosures, dk, pn + 10,
	    &d.base, b->arena)) != 0)
		goto out;
	if ((r = push_add(b, to, env, envlen)) != 0)
		goto out;
	env = NULL;
	log_info("notification %llu to %s: %s %s by %s",
	    (unsigned long long)nd->seq, to->id,
	    ehx_category_name(pl->category),
	    pl->event == EHX__NOTIFY_EVENT__NOTIFY_EVENT_NEW ? "new" :
	    pl->event == EHX__NOTIFY_EVENT__NOTIFY_EVENT_REOPENED ?
	    "reopened" : "level changed", pl->publisher);
out:
	free(env);
	free(sealed);
	if (known != NULL)
		ehx__child_identity__free_unpacked(known, NULL);
	return r;
}

/* Open, check and emit the plan under key k (value v), then drop it. */
static int
emit_plan(struct broker *b, MDB_txn *txn, const unsigned char *k,
    const MDB_val *v, int64_t now, bool *kept)
{
	Ehx__NotifyPlan *pl;
	unsigned char ad[32], *plain = NULL;
	size_t plen = 0;
	MDB_val key = { PLAN_KEY_LEN, (void *)k };
	int r;

	plan_ad(k, ad);
	if (ehx_evidence_open(b->pkey, ad, v->mv_data, v->mv_size, &plain,
	    &plen) != 0 || (pl = ehx__notify_plan__unpack(NULL, plen,
	    plain)) == NULL || pl->record != get_be64(k + PLAN_KEY_LEN - 8) ||
	    !ehx_id_ok(pl->publisher) || pl->child.len != EHX_PSEUDONYM_LEN ||
	    pl->n_to > EHX_MAX_NOTIFY) {
		free(plain);
		/* Kept as it is, for its operator (the audit record names
		 * whom it was for); passed over, not stopped at. */
		log_error("notifications of audit record %llu: their plan "
		    "does not read back (wrong pseudonym key?); kept, not sent",
		    (unsigned long long)get_be64(k + PLAN_KEY_LEN - 8));
		*kept = true;
		return 0;
	}
	free(plain);
	r = 0;
	for (size_t i = 0; i < pl->n_to && r == 0; i++)
		if (ehx_id_ok(pl->to[i]->agency))
			r = emit_one(b, txn, pl, i, now);
	ehx__notify_plan__free_unpacked(pl, NULL);
	if (r == 0)
		r = store_err(mdb_del(txn, b->store.meta, &key, NULL));
	return r;
}

/* At most this many plans in one timer step (a backlog, after a stop,
 * is worked off a step at a time, without holding up requests long). */
#define FLUSH_MAX_PLANS 4096

static int flush_some(struct broker *b, MDB_txn *txn, size_t max,
    bool *more);

int
notify_flush_now(struct broker *b)
{
	MDB_txn *txn;
	bool more = false;
	int r;

	if (!b->plans_pending || b->store.failed)
		return 0;
	if ((r = store_err(mdb_txn_begin(b->store.env, NULL, 0, &txn))) != 0)
		return r;
	ehx_arena_reset(b->arena);
	if ((r = flush_some(b, txn, FLUSH_MAX_PLANS, &more)) != 0)
		mdb_txn_abort(txn);
	else
		r = store_err(mdb_txn_commit(txn));     /* frees txn */
	if (r != 0) {
		notify_push_drop(b, 0);
		return r;
	}
	if (more)
		b->flush_due = 0;       /* the rest at once */
	else
		b->plans_pending = false;       /* nothing ran in between */
	return 0;
}

int
notify_flush(struct broker *b, MDB_txn *txn)
{
	bool more;

	return flush_some(b, txn, SIZE_MAX, &more);
}

static int
flush_some(struct broker *b, MDB_txn *txn, size_t max, bool *more)
{
	unsigned char k[PLAN_KEY_LEN];
	MDB_cursor *c;
	MDB_val key, val;
	int64_t now = ehx_now_ms();
	uint64_t from = 0;
	size_t done = 0;
	int rc, r = 0;

	*more = false;
	if (!b->plans_pending || FAULT("no_flush"))
		return 0;
	if ((rc = mdb_cursor_open(txn, b->store.meta, &c)) != 0)
		return store_err(rc);
	/* Each in turn, in the order of their records: emitting deletes
	 * it; one that does not read back stays and is passed over. */
	for (;;) {
		bool kept = false;

		plan_key(k, from);
		key = (MDB_val){ PLAN_KEY_LEN, k };
		if ((rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE)) != 0)
			break;
		if (key.mv_size != PLAN_KEY_LEN || memcmp(key.mv_data,
		    PLAN_PREFIX, sizeof(PLAN_PREFIX) - 1) != 0)
			break;
		if (done++ == max) {
			*more = true;
			break;
		}
		memcpy(k, key.mv_data, PLAN_KEY_LEN);
		from = get_be64(k + PLAN_KEY_LEN - 8) + 1;
		if ((r = emit_plan(b, txn, k, &val, now, &kept)) != 0)
			break;
	}
	mdb_cursor_close(c);
	if (r == 0 && rc != 0 && rc != MDB_NOTFOUND)
		r = store_err(rc);
	return r;               /* plans_pending: cleared once committed */
}

/*
 * Whether this queue knows "after" by after_id: the notification is held
 * still under that id, or it is the last one the agent acknowledged. When
 * not, the agent's inbox and this queue have parted (the broker's store or
 * the agent's was restored or replaced) and nothing may be dropped on its
 * word.
 */
static int
after_known(struct broker *b, MDB_txn *txn, const char *me,
    const Ehx__FetchNotifications *f, bool *known)
{
	unsigned char key[NOTIFY_KEY_MAX];
	char ak[ACKED_KEY_MAX + 1];
	MDB_val k, v;
	int rc;

	*known = f->after == 0;
	if (f->after == 0)
		return 0;
	k = (MDB_val){ queue_key(key, me, f->after), key };
	if ((rc = mdb_get(txn, b->store.notify, &k, &v)) == 0) {
		*known = v.mv_size > EHX_MSGID_LEN &&
		    memcmp(v.mv_data, f->after_id.data, EHX_MSGID_LEN) == 0;
		return 0;
	}
	if (rc != MDB_NOTFOUND)
		return store_err(rc);
	k = (MDB_val){ acked_key(ak, me), ak };
	if ((rc = mdb_get(txn, b->store.meta, &k, &v)) == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return store_err(rc);
	if (v.mv_size != 8 + EHX_MSGID_LEN)
		return EHX_ERR_STORAGE;
	*known = get_be64(v.mv_data) == f->after &&
	    memcmp((unsigned char *)v.mv_data + 8, f->after_id.data,
	    EHX_MSGID_LEN) == 0;
	return 0;
}

/* Remember the last notification the agent acknowledged. */
static int
put_acked(struct broker *b, MDB_txn *txn, const char *me,
    const Ehx__FetchNotifications *f)
{
	char ak[ACKED_KEY_MAX + 1];
	unsigned char val[8 + EHX_MSGID_LEN];
	MDB_val k = { acked_key(ak, me), ak }, v = { sizeof(val), val };

	put_be64(val, f->after);
	memcpy(val + 8, f->after_id.data, EHX_MSGID_LEN);
	return store_err(mdb_put(txn, b->store.meta, &k, &v, 0));
}

int
handle_fetch_notifications(struct request *rq, char *why, size_t whysz)
{
	const Ehx__FetchNotifications *f = rq->body->fetch_notifications;
	struct broker *b = rq->b;
	struct ehx_arena *a = b->arena;
	const char *me = rq->agency->id;
	Ehx__NotificationBatch *res;
	unsigned char key[NOTIFY_KEY_MAX], ad[32];
	size_t plen = strlen(me) + 1, used = 0;
	uint64_t last, drop, upto = 0;
	bool known, more = false, dropped_after = false;
	MDB_cursor *c = NULL;
	MDB_val k, v;
	int rc, r = 0;

	(void)why;
	(void)whysz;
	/* What publishes have kept is queued first: a fetch never finds a
	 * number given and its notification not yet there. */
	if ((r = notify_flush(b, rq->txn)) != 0 ||
	    (r = notify_last(&b->store, rq->txn, me, &last)) != 0 ||
	    (r = after_known(b, rq->txn, me, f, &known)) != 0)
		return r;
	if ((res = ehx_arena_alloc(a, sizeof(*res))) == NULL)
		return EHX_ERR_NOMEM;
	ehx__notification_batch__init(res);
	if (!known) {
		log_warn("%s asked for notifications after %llu, which its "
		    "queue here does not know by that id (the broker's store "
		    "or the agent's was restored or replaced): nothing dropped, "
		    "sending the queue from its start (last given: %llu)", me,
		    (unsigned long long)f->after, (unsigned long long)last);
		res->restart = true;
	}
	drop = known ? f->after : 0;
	if ((res->envelopes = ehx_arena_alloc(a, f->limit *
	    sizeof(*res->envelopes))) == NULL)
		return EHX_ERR_NOMEM;
	if ((rc = mdb_cursor_open(rq->txn, b->store.notify, &c)) != 0)
		return store_err(rc);
	k = (MDB_val){ queue_key(key, me, 0), key };
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
	    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		unsigned char *env;
		size_t envlen;
		uint64_t seq;

		if (k.mv_size != plen + 8 || memcmp(k.mv_data, key, plen) != 0)
			break;
		seq = get_be64((unsigned char *)k.mv_data + plen);
		if (seq <= drop) {
			/* Stored by the agent: done with. */
			if ((rc = mdb_cursor_del(c, 0)) != 0)
				break;
			dropped_after |= seq == drop;
			continue;
		}
		if (res->n_envelopes == f->limit) {
			more = true;
			break;
		}
		if (v.mv_size <= EHX_MSGID_LEN) {
			r = EHX_ERR_STORAGE;
			break;
		}
		seal_ad(k.mv_data, k.mv_size, v.mv_data, ad);
		if (ehx_evidence_open(b->pkey, ad,
		    (unsigned char *)v.mv_data + EHX_MSGID_LEN,
		    v.mv_size - EHX_MSGID_LEN, &env, &envlen) != 0) {
			log_error("notification %llu to %s does not open: the "
			    "queue was changed, or the pseudonym key",
			    (unsigned long long)seq, me);
			r = EHX_ERR_STORAGE;
			break;
		}
		if (used + envlen + 8 > BATCH_BUDGET) {
			free(env);
			more = true;
			break;
		}
		res->envelopes[res->n_envelopes].data = ehx_arena_alloc(a, envlen);
		if (res->envelopes[res->n_envelopes].data == NULL) {
			free(env);
			r = EHX_ERR_NOMEM;
			break;
		}
		memcpy(res->envelopes[res->n_envelopes].data, env, envlen);
		res->envelopes[res->n_envelopes++].len = envlen;
		free(env);
		used += envlen + 8;
		upto = seq;
	}
	mdb_cursor_close(c);
	if (r == 0 && rc != 0 && rc != MDB_NOTFOUND)
		r = store_err(rc);
	if (r == 0 && dropped_after)
		r = put_acked(b, rq->txn, me, f);
	if (r != 0)
		return r;
	res->pending = more && last > upto ? last - upto : 0;
	rq->reply.payload_case = EHX__BODY__PAYLOAD_NOTIFICATIONS;
	rq->reply.notifications = res;
	return 0;
}
