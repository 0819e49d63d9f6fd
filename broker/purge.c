/*
 * purge.c — `ehx-broker --purge`: retention. Removes the content of
 * closed flags, ended consents (withdrawn or expired) and kept evidence
 * once they are older than the configured days; the audit log and its
 * Merkle tree are never touched, so every checkpoint stays verifiable and
 * the records still say who did what — only the content they refer to is
 * gone. The purge is itself one audit record. Safe while the broker runs:
 * LMDB serialises the writers.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ehx/err.h"
#include "ehx/log.h"
#include "ehx/util.h"
#include "purge.h"
#include "store.h"

#define DAY_MS (86400LL * 1000)
#define PURGE_BATCH 10000       /* deletions per transaction */

static const char evidence_mark[] = "evidence_purged_to";

static int
purge_flags(struct store *s, MDB_txn *txn, int64_t horizon, uint64_t *n)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc, r = 0;

	if ((rc = mdb_cursor_open(txn, s->flags, &cur)) != 0)
		return store_err(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;) {
		Ehx__StoredFlag *sf = ehx__stored_flag__unpack(NULL, v.mv_size,
		    v.mv_data);
		bool old = sf != NULL && sf->flag != NULL &&
		    sf->flag->status == EHX__FLAG_STATUS__FLAG_STATUS_CLOSED &&
		    sf->flag->closed_at < horizon;

		if (sf != NULL)
			ehx__stored_flag__free_unpacked(sf, NULL);
		if (old) {
			if ((rc = mdb_cursor_del(cur, 0)) != 0)
				break;
			(*n)++;
			/* After a delete the cursor is on the next entry. */
			rc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
			if (rc == EINVAL || rc == MDB_NOTFOUND)
				rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
			continue;
		}
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	if (rc != MDB_NOTFOUND)
		r = store_err(rc);
	return r;
}

/* A child with no flag left leaves the locality index too (its sealed NHS
 * number with it). */
static int
purge_localities(struct store *s, MDB_txn *txn)
{
	MDB_cursor *cur, *fc;
	MDB_val k, v, fk, fv;
	unsigned char ik[STORE_LOCALITY_KEY_MAX];
	int rc, frc;

	if ((rc = mdb_cursor_open(txn, s->child_locality, &cur)) != 0)
		return store_err(rc);
	if ((rc = mdb_cursor_open(txn, s->flags, &fc)) != 0) {
		mdb_cursor_close(cur);
		return store_err(rc);
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;) {
		fk = k;
		frc = mdb_cursor_get(fc, &fk, &fv, MDB_SET_RANGE);
		if (frc != 0 && frc != MDB_NOTFOUND) {
			rc = frc;
			break;
		}
		if ((frc == 0 && fk.mv_size >= EHX_PSEUDONYM_LEN &&
		    memcmp(fk.mv_data, k.mv_data, EHX_PSEUDONYM_LEN) == 0) ||
		    k.mv_size != EHX_PSEUDONYM_LEN || v.mv_size == 0 ||
		    v.mv_size > EHX_MAX_ID) {
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
			continue;
		}
		fk = (MDB_val){ store_locality_key(ik, v.mv_data, v.mv_size,
		    k.mv_data), ik };
		if ((rc = mdb_del(txn, s->locality_index, &fk, NULL)) != 0 &&
		    rc != MDB_NOTFOUND)
			break;
		if ((rc = mdb_cursor_del(cur, 0)) != 0)
			break;
		rc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
		if (rc == EINVAL || rc == MDB_NOTFOUND)
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(fc);
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : store_err(rc);
}

/* Consents whose end (withdrawal or expiry) is older than horizon: the
 * record and its withdrawal go together. */
static int
purge_consents(struct store *s, MDB_txn *txn, int64_t horizon, uint64_t *n)
{
	MDB_cursor *cur;
	MDB_val k, v;
	unsigned char prefix[STORE_KEY_MAX + 1];
	size_t plen = 0;
	bool dropping = false;
	int rc;

	if ((rc = mdb_cursor_open(txn, s->consent, &cur)) != 0)
		return store_err(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;) {
		const unsigned char *kp = k.mv_data;
		int kind = k.mv_size > 0 ? kp[k.mv_size - 1] : -1;
		bool drop = false;

		if (kind == STORE_CONSENT_RECORD && k.mv_size <= sizeof(prefix)) {
			Ehx__StoredConsent *sc = ehx__stored_consent__unpack(NULL,
			    v.mv_size, v.mv_data);
			int64_t end = 0;

			if (sc != NULL && sc->record != NULL)
				end = sc->record->expires_at;
			if (sc != NULL)
				ehx__stored_consent__free_unpacked(sc, NULL);
			/* A withdrawal, if any, is the next key. */
			plen = k.mv_size - 1;
			memcpy(prefix, kp, plen);
			dropping = end != 0 && end < horizon;
			if (!dropping) {
				MDB_val k2 = k, v2;
				unsigned char wk[STORE_KEY_MAX + 1];
				Ehx__StoredWithdrawal *sw;

				memcpy(wk, kp, k.mv_size);
				wk[k.mv_size - 1] = STORE_CONSENT_WITHDRAWAL;
				k2.mv_data = wk;
				if (mdb_get(txn, s->consent, &k2, &v2) == 0 &&
				    (sw = ehx__stored_withdrawal__unpack(NULL,
				    v2.mv_size, v2.mv_data)) != NULL) {
					dropping = sw->event != NULL &&
					    sw->event->at < horizon;
					ehx__stored_withdrawal__free_unpacked(sw,
					    NULL);
				}
			}
			drop = dropping;
		} else if (kind == STORE_CONSENT_WITHDRAWAL)
			drop = dropping && k.mv_size == plen + 1 &&
			    memcmp(kp, prefix, plen) == 0;
		if (drop) {
			if ((rc = mdb_cursor_del(cur, 0)) != 0)
				break;
			if (kind == STORE_CONSENT_RECORD)
				(*n)++;
			rc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
			if (rc == EINVAL || rc == MDB_NOTFOUND)
				rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
			continue;
		}
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : store_err(rc);
}

/* Evidence of audit records older than horizon, from where the last purge
 * stopped. */
static int
purge_evidence(struct store *s, MDB_txn *txn, int64_t horizon, uint64_t *n)
{
	MDB_val mk = { sizeof(evidence_mark) - 1, (void *)evidence_mark }, mv;
	unsigned char buf[8];
	uint64_t seq = 0, size;
	int rc, r;

	if ((r = store_audit_size(s, txn, &size)) != 0)
		return r;
	if (mdb_get(txn, s->meta, &mk, &mv) == 0 && mv.mv_size == 8)
		seq = get_be64(mv.mv_data);
	while (seq < size && *n < PURGE_BATCH) {
		MDB_val v, ek;
		Ehx__AuditRecord *rec;
		unsigned char ekey[8];
		bool old;

		if ((r = store_audit_get(s, txn, seq + 1, &v)) != 0)
			return r;
		if ((rec = ehx__audit_record__unpack(NULL, v.mv_size,
		    v.mv_data)) == NULL)
			return EHX_ERR_STORAGE;
		old = rec->time < horizon;
		if (old) {
			put_be64(ekey, seq + 1);
			ek.mv_data = ekey;
			ek.mv_size = sizeof(ekey);
			rc = mdb_del(txn, s->evidence, &ek, NULL);
			if (rc == 0)
				(*n)++;
			else if (rc != MDB_NOTFOUND) {
				ehx__audit_record__free_unpacked(rec, NULL);
				return store_err(rc);
			}
		}
		ehx__audit_record__free_unpacked(rec, NULL);
		if (!old)
			break;
		seq++;
	}
	put_be64(buf, seq);
	mv.mv_data = buf;
	mv.mv_size = sizeof(buf);
	return store_err(mdb_put(txn, s->meta, &mk, &mv, 0));
}

int
broker_purge(struct broker *b, int64_t now, struct purge_counts *c)
{
	const struct broker_config *cfg = &b->cfg;
	Ehx__AuditRecord rec = EHX__AUDIT_RECORD__INIT;
	Ehx__Person who = EHX__PERSON__INIT;
	char basis[64];
	MDB_txn *txn;
	int rc, r = 0;

	memset(c, 0, sizeof(*c));
	if ((rc = mdb_txn_begin(b->store.env, NULL, 0, &txn)) != 0)
		return store_err(rc);
	if (cfg->retention_flag_days > 0)
		r = purge_flags(&b->store, txn, now - cfg->retention_flag_days *
		    DAY_MS, &c->flags);
	if (r == 0 && cfg->retention_flag_days > 0)
		r = purge_localities(&b->store, txn);
	if (r == 0 && cfg->retention_consent_days > 0)
		r = purge_consents(&b->store, txn, now -
		    cfg->retention_consent_days * DAY_MS, &c->consents);
	if (r == 0 && cfg->retention_evidence_days > 0)
		r = purge_evidence(&b->store, txn, now -
		    cfg->retention_evidence_days * DAY_MS, &c->envelopes);
	if (r == 0) {
		who.user_id = (char *)"ehx-broker";
		who.name = (char *)"retention purge";
		who.role = EHX__ROLE__ROLE_ADMIN;
		snprintf(basis, sizeof(basis), "retention:%llu/%llu/%llu",
		    (unsigned long long)c->flags,
		    (unsigned long long)c->consents,
		    (unsigned long long)c->envelopes);
		rec.time = now;
		rec.agency = b->cfg.id;
		rec.person = &who;
		rec.role = EHX__ROLE__ROLE_ADMIN;
		rec.action = (char *)"purge";
		rec.decision = EHX__DECISION__DECISION_ALLOW;
		rec.basis = basis;
		r = store_audit_append(&b->store, txn, &rec);
	}
	if (r != 0) {
		mdb_txn_abort(txn);
		return r;
	}
	return store_err(mdb_txn_commit(txn));
}
