/*
 * handle_consent.c — record_consent, withdraw_consent and query_consent.
 * What a consent covers and whether it is active is consent.c's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consent.h"
#include "ehx/err.h"
#include "ehx/util.h"
#include "handle.h"
#include "store.h"

#define CONSENT_ID_LEN 18   /* "c-" and 16 hex digits */

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
		k.mv_size = store_consent_key(key, rq->child, id,
		    STORE_CONSENT_RECORD);
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
	rec.evidence_ref = m->evidence_ref;
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
	snprintf(rq->consent_id, sizeof(rq->consent_id), "%s", id);
	return request_ack(rq, id);
}

int
handle_withdraw_consent(struct request *rq, char *why, size_t whysz)
{
	const Ehx__WithdrawConsent *m = rq->body->withdraw_consent;
	Ehx__StoredWithdrawal sw = EHX__STORED_WITHDRAWAL__INIT;
	Ehx__ConsentEvent ev = EHX__CONSENT_EVENT__INIT;
	Ehx__StoredConsent *sc;
	unsigned char key[STORE_KEY_MAX + 1];
	MDB_val k = { 0, key }, v;
	bool involved;
	int rc;

	k.mv_size = store_consent_key(key, rq->child, m->consent_id,
	    STORE_CONSENT_RECORD);
	if ((rc = mdb_get(rq->txn, rq->b->store.consent, &k, &v)) != 0) {
		if (rc == MDB_NOTFOUND)
			snprintf(why, whysz, "this child has no consent %s",
			    m->consent_id);
		return store_err(rc);
	}
	if ((rc = store_read(&ehx__stored_consent__descriptor, rq->b->arena,
	    &v, &sc)) != 0)
		return rc;
	if (sc->record == NULL)
		return EHX_ERR_STORAGE;
	if ((rc = consent_involved(rq, rq->agency, &involved)) != 0)
		return rc;
	if (!consent_concerns(sc->record, rq->agency, involved)) {
		/* As if absent: an agency learns nothing of others' consents. */
		snprintf(why, whysz, "this child has no consent %s",
		    m->consent_id);
		return EHX_ERR_NOT_FOUND;
	}
	/* Withdrawn only by the agency that recorded it or one it names:
	 * not by every agency of a type it names. */
	if (strcmp(sc->record->recorded_by_agency, rq->agency->id) != 0 &&
	    !consent_names(sc->record, rq->agency)) {
		snprintf(why, whysz, "consent %s may be withdrawn only by %s, "
		    "which recorded it, or an agency it names",
		    m->consent_id, sc->record->recorded_by_agency);
		return EHX_ERR_NOT_PERMITTED;
	}
	snprintf(rq->basis, sizeof(rq->basis), "consent:%s", m->consent_id);
	snprintf(rq->consent_id, sizeof(rq->consent_id), "%s", m->consent_id);
	key[k.mv_size - 1] = STORE_CONSENT_WITHDRAWAL;
	if ((rc = mdb_get(rq->txn, rq->b->store.consent, &k, &v)) == 0)
		return request_ack(rq, m->consent_id);	/* already withdrawn */
	if (rc != MDB_NOTFOUND)
		return store_err(rc);
	ev.consent_id = m->consent_id;
	ev.state = EHX__CONSENT_STATE__CONSENT_STATE_WITHDRAWN;
	ev.at = rq->now;
	ev.agency = (char *)rq->agency->id;
	ev.person = rq->body->person;
	ev.reason = m->reason;
	ev.by = m->withdrawn_by;
	sw.event = &ev;
	sw.source_message = rq->body->message_id;
	if ((rc = store_put_msg(rq->txn, rq->b->store.consent, key, k.mv_size,
	    &sw.base, rq->b->arena)) != 0)
		return rc;
	return request_ack(rq, m->consent_id);
}

/* Room kept for the Body's other fields and the Envelope around it. */
#define CONSENT_BUDGET (EHX_MAX_BODY - 2048)

int
handle_query_consent(struct request *rq, char *why, size_t whysz)
{
	Ehx__ConsentResult *res;
	int r;

	(void)why;
	(void)whysz;
	if ((r = consent_list(rq, rq->body->query_consent->history, false,
	    CONSENT_BUDGET, &res)) != 0)
		return r;
	snprintf(rq->basis, sizeof(rq->basis), "scope");
	rq->reply.payload_case = EHX__BODY__PAYLOAD_CONSENT;
	rq->reply.consent = res;
	return 0;
}
