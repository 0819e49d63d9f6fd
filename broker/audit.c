/*
 * audit.c — the tamper-evident audit log seen from the wire: signed
 * checkpoints, proofs, agencies' cosignatures, the indexes each decision
 * leaves (break-glass alerts, disclosures), and the information governance
 * queries over them (query_audit, query_alerts, review_alert,
 * query_disclosures, export_audit).
 *
 * Every answer is bounded to one message: at most EHX_MAX_AUDIT_PAGE items
 * and AUDIT_BUDGET bytes, and a query reads at most EHX_MAX_AUDIT_SCAN
 * records; next_seq tells the caller where to go on.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "ehx/checkpoint.h"
#include "ehx/err.h"
#include "ehx/log.h"
#include "ehx/names.h"
#include "ehx/policy.h"
#include "ehx/util.h"
#include "ehx/validate.h"
#include "handle.h"
#include "notify.h"
#include "registry.h"
#include "store.h"

/* Room kept for the Body's other fields, the checkpoint and the Envelope. */
#define AUDIT_BUDGET (EHX_MAX_BODY - 4096)
#define ALERT_SCAN 2048         /* alerts one query_alerts reads */

static const unsigned char *
page_key(unsigned char k[9], uint64_t seq, int kind)
{
	put_be64(k, seq);
	k[8] = (unsigned char)kind;
	return k;
}

static uint32_t
page_limit(uint32_t asked)
{
	return asked == 0 || asked > EHX_MAX_AUDIT_PAGE ? EHX_MAX_AUDIT_PAGE :
	    asked;
}

/* ---- checkpoints ------------------------------------------------------- */

int
checkpoint_maybe(struct broker *b, MDB_txn *txn, bool timed, bool *made)
{
	Ehx__Checkpoint cp = EHX__CHECKPOINT__INIT;
	unsigned char root[EHX_HASH_LEN], sig[EHX_SIG_LEN];
	uint64_t size, last = b->cp != NULL ? b->cp->size : 0;
	int r;

	*made = false;
	if (FAULT("no_checkpoints"))
		return 0;
	if ((r = store_audit_size(&b->store, txn, &size)) != 0)
		return r;
	if (size <= last || (!timed &&
	    size - last < (uint64_t)b->cfg.checkpoint_records))
		return 0;
	if ((r = store_audit_root(&b->store, txn, size, root)) != 0)
		return r;
	cp.origin = b->cfg.id;
	cp.size = size;
	cp.root.data = root;
	cp.root.len = sizeof(root);
	cp.time = ehx_now_ms();
	if ((r = ehx_checkpoint_sign(b->signer, &cp, sig)) != 0)
		return r;
	if ((r = store_checkpoint_put(&b->store, txn, &cp, b->arena)) != 0)
		return r;
	*made = true;
	return 0;
}

int
checkpoint_adopt(struct broker *b)
{
	return checkpoint_adopt_in(b, NULL);
}

int
checkpoint_adopt_in(struct broker *b, MDB_txn *in)
{
	Ehx__Checkpoint *cp;
	MDB_txn *txn = in;
	int rc, r;

	if (in == NULL && (rc = mdb_txn_begin(b->store.env, NULL, MDB_RDONLY,
	    &txn)) != 0)
		return store_err(rc);
	r = store_checkpoint_get(&b->store, txn, 0, NULL, &cp);
	if (in == NULL)
		mdb_txn_abort(txn);
	if (r == EHX_ERR_NOT_FOUND)
		return 0;
	if (r != 0)
		return r;
	if (b->cp != NULL)
		ehx__checkpoint__free_unpacked(b->cp, NULL);
	b->cp = cp;
	log_debug("checkpoint: %llu records", (unsigned long long)cp->size);
	return 0;
}

void
checkpoint_tick(struct broker *b)
{
	MDB_txn *txn;
	bool made = false;
	int r;

	if (b->store.failed || (b->cp != NULL && ehx_now_ms() - b->cp->time <
	    b->cfg.checkpoint_seconds * 1000))
		return;
	if (mdb_txn_begin(b->store.env, NULL, 0, &txn) != 0)
		return;
	ehx_arena_reset(b->arena);
	if ((r = checkpoint_maybe(b, txn, true, &made)) != 0 || !made) {
		mdb_txn_abort(txn);
		if (r != 0)
			log_error("checkpoint: %s", ehx_strerror(r));
		return;
	}
	if ((r = mdb_txn_commit(txn)) != 0) {
		log_error("checkpoint: %s", mdb_strerror(r));
		return;
	}
	if ((r = checkpoint_adopt(b)) != 0)
		log_error("checkpoint: %s", ehx_strerror(r));
}

/* ---- what a decision leaves behind ------------------------------------- */

int
audit_side_records(struct request *rq, MDB_txn *txn, uint64_t seq)
{
	struct ehx_arena *a = rq->b->arena;
	unsigned char k[EHX_MAX_ID + 1 + 8 + 1];
	int r;

	if (rq->alert_kind != NULL) {
		Ehx__Alert al = EHX__ALERT__INIT;

		al.seq = seq;
		al.time = rq->now;
		al.agency = (char *)rq->agency->id;
		al.person = rq->body->person;
		al.child.data = rq->child;
		al.child.len = EHX_PSEUDONYM_LEN;
		al.reason = (char *)rq->alert_reason;
		al.kind = (char *)rq->alert_kind;
		if ((r = store_put_msg(txn, rq->b->store.alerts,
		    page_key(k, seq, 0), 9, &al.base, a)) != 0)
			return r;
		log_warn("%s by %s/%s (audit record %llu): raised for review",
		    rq->break_glass ? "break-glass" : "a consent used by its "
		    "own recorder", rq->agency->id,
		    rq->body->person->user_id, (unsigned long long)seq);
	}
	for (size_t i = 0; i < rq->ndisclosed; i++) {
		Ehx__Disclosure d = EHX__DISCLOSURE__INIT;
		size_t n = strlen(rq->disclosed[i].owner);

		d.seq = seq;
		d.time = rq->now;
		d.to_agency = (char *)rq->agency->id;
		d.to_person = rq->body->person;
		d.child.data = rq->child;
		d.child.len = EHX_PSEUDONYM_LEN;
		d.basis = rq->basis;
		d.flags = rq->disclosed[i].flags;
		d.via = (char *)(rq->body->payload_case ==
		    EHX__BODY__PAYLOAD_QUERY_SAR ? "subject_access" : "picture");
		memcpy(k, rq->disclosed[i].owner, n);
		k[n] = 0;
		put_be64(k + n + 1, seq);
		if ((r = store_put_msg(txn, rq->b->store.disclosures, k,
		    n + 9, &d.base, a)) != 0)
			return r;
	}
	return 0;
}

/* ---- proofs and cosignatures ------------------------------------------- */

static int
hashes(struct ehx_arena *a, unsigned char (*path)[EHX_HASH_LEN], size_t n,
    ProtobufCBinaryData **out)
{
	if ((*out = ehx_arena_alloc(a, (n + 1) * sizeof(**out))) == NULL)
		return EHX_ERR_NOMEM;
	for (size_t i = 0; i < n; i++) {
		if (((*out)[i].data = ehx_arena_alloc(a, EHX_HASH_LEN)) == NULL)
			return EHX_ERR_NOMEM;
		memcpy((*out)[i].data, path[i], EHX_HASH_LEN);
		(*out)[i].len = EHX_HASH_LEN;
	}
	return 0;
}

static int copy_bytes(struct ehx_arena *a, ProtobufCBinaryData *out,
    const void *p, size_t n);

/* Whether the stored record v is one of agency's decisions: 1 or 0, or
 * an error (a record that does not read back is no one's). */
static int
record_of(const MDB_val *v, const char *agency)
{
	Ehx__AuditRecord *rec;
	int r, mine;

	if ((r = store_read(&ehx__audit_record__descriptor, NULL, v,
	    &rec)) != 0)
		return r == EHX_ERR_NOMEM ? r : 0;
	mine = rec->agency != NULL && strcmp(rec->agency, agency) == 0;
	ehx__audit_record__free_unpacked(rec, NULL);
	return mine;
}

/* One agency's cosignature cs of the checkpoint of size, as a Cosigned:
 * that checkpoint with cs, the certificate, the proof from cp. */
static int
cosigned_one(struct request *rq, const Ehx__Checkpoint *cp, uint64_t size,
    Ehx__Cosignature *cs, Ehx__Cosigned **out)
{
	struct ehx_arena *a = rq->b->arena;
	unsigned char path[EHX_MERKLE_MAX_PROOF][EHX_HASH_LEN];
	MDB_val k = { EHX_FPR_LEN, cs->signer.data }, v;
	Ehx__Cosigned *c;
	Ehx__Checkpoint *theirs;
	size_t n;
	int r, rc;

	if (cs->signer.len != EHX_FPR_LEN)
		return EHX_ERR_NOT_FOUND;
	if ((rc = mdb_get(rq->txn, rq->b->store.certs, &k, &v)) != 0)
		return rc == MDB_NOTFOUND ? EHX_ERR_NOT_FOUND : store_err(rc);
	if ((r = store_checkpoint_get(&rq->b->store, rq->txn, size, a,
	    &theirs)) != 0)
		return r;
	if ((c = ehx_arena_alloc(a, sizeof(*c))) == NULL ||
	    (theirs->cosignatures = ehx_arena_alloc(a,
	    sizeof(*theirs->cosignatures))) == NULL)
		return EHX_ERR_NOMEM;
	ehx__cosigned__init(c);
	if ((r = copy_bytes(a, &c->certificate, v.mv_data, v.mv_size)) != 0)
		return r;
	theirs->cosignatures[0] = cs;
	theirs->n_cosignatures = 1;
	c->checkpoint = theirs;
	if (size > cp->size) {
		if ((r = store_audit_consistency(&rq->b->store, rq->txn,
		    cp->size, size, path, &n)) != 0 ||
		    (r = hashes(a, path, n, &c->consistency)) != 0)
			return r;
		c->n_consistency = n;
	}
	*out = c;
	return 0;
}

/*
 * Up to want other agencies' newest cosignatures of a checkpoint at least
 * as large as cp (the keys are size ‖ agency: read from the newest back),
 * so that the asking agent can see others were shown the log it was.
 * Reads at most EHX_MAX_AUDIT_SCAN cosignatures.
 */
static int
proof_cosigned(struct request *rq, const Ehx__Checkpoint *cp, uint32_t want,
    Ehx__ProofResult *res)
{
	struct ehx_arena *a = rq->b->arena;
	const char *seen[EHX_MAX_COSIGNERS];
	size_t nseen = 0, scanned = 0;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc, r = 0;

	if ((res->cosigned = ehx_arena_alloc(a, want *
	    sizeof(*res->cosigned))) == NULL)
		return EHX_ERR_NOMEM;
	if ((rc = mdb_cursor_open(rq->txn, rq->b->store.cosign, &cur)) != 0)
		return store_err(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_LAST); rc == 0 &&
	    nseen < want && ++scanned <= EHX_MAX_AUDIT_SCAN;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_PREV)) {
		Ehx__Cosignature *cs;
		Ehx__Cosigned *c = NULL;
		uint64_t size;
		bool dup = false;

		if (k.mv_size <= 8)
			continue;
		if ((size = get_be64((const unsigned char *)k.mv_data)) <
		    cp->size)
			break;
		if ((r = store_read(&ehx__cosignature__descriptor, a, &v,
		    &cs)) != 0)
			break;
		if (strcmp(cs->agency, rq->agency->id) == 0)
			continue;
		for (size_t i = 0; i < nseen && !dup; i++)
			dup = strcmp(seen[i], cs->agency) == 0;
		if (dup)
			continue;
		if ((r = cosigned_one(rq, cp, size, cs, &c)) == EHX_ERR_NOT_FOUND) {
			r = 0;          /* no certificate kept: not shown */
			continue;
		}
		if (r != 0)
			break;
		seen[nseen++] = cs->agency;
		res->cosigned[res->n_cosigned++] = c;
	}
	mdb_cursor_close(cur);
	if (r == 0 && rc != 0 && rc != MDB_NOTFOUND)
		r = store_err(rc);
	return r;
}

int
handle_query_proof(struct request *rq, char *why, size_t whysz)
{
	const Ehx__QueryProof *m = rq->body->query_proof;
	struct ehx_arena *a = rq->b->arena;
	unsigned char path[EHX_MERKLE_MAX_PROOF][EHX_HASH_LEN];
	Ehx__ProofResult *res;
	Ehx__Checkpoint *cp;
	size_t n;
	int r;

	if ((r = store_checkpoint_get(&rq->b->store, rq->txn, m->new_size, a,
	    &cp)) != 0) {
		if (r == EHX_ERR_NOT_FOUND)
			snprintf(why, whysz, m->new_size == 0 ? "no checkpoint "
			    "has been signed yet" : "there is no checkpoint of "
			    "%llu records", (unsigned long long)m->new_size);
		return r;
	}
	if (m->old_size > cp->size || m->seq > cp->size) {
		snprintf(why, whysz, "the checkpoint holds %llu records",
		    (unsigned long long)cp->size);
		return EHX_ERR_INVALID_FIELD;
	}
	if ((res = ehx_arena_alloc(a, sizeof(*res))) == NULL)
		return EHX_ERR_NOMEM;
	ehx__proof_result__init(res);
	res->checkpoint = cp;
	if (m->old_size > 0) {
		if ((r = store_audit_consistency(&rq->b->store, rq->txn,
		    m->old_size, cp->size, path, &n)) != 0 ||
		    (r = hashes(a, path, n, &res->consistency)) != 0)
			return r;
		res->n_consistency = n;
	}
	if (m->seq > 0) {
		MDB_val v;

		if ((r = store_audit_inclusion(&rq->b->store, rq->txn, m->seq,
		    cp->size, path, &n)) != 0 ||
		    (r = hashes(a, path, n, &res->inclusion)) != 0)
			return r;
		res->n_inclusion = n;
		/* The record itself only to those who may read the audit,
		 * and to the agency's own agent (role system) checking one
		 * of its decisions: not to its practitioners. */
		int mine = 0;

		if ((r = store_audit_get(&rq->b->store, rq->txn, m->seq,
		    &v)) != 0)
			return r;
		if (rq->body->person->role == EHX__ROLE__ROLE_SYSTEM &&
		    (mine = record_of(&v, rq->agency->id)) < 0)
			return mine;
		if (rq->body->person->role == EHX__ROLE__ROLE_IG_OFFICER ||
		    mine == 1) {
			if ((res->record.data = ehx_arena_alloc(a,
			    v.mv_size)) == NULL)
				return EHX_ERR_NOMEM;
			memcpy(res->record.data, v.mv_data, v.mv_size);
			res->record.len = v.mv_size;
		}
	}
	if (m->cosigners > 0 && (r = proof_cosigned(rq, cp, m->cosigners,
	    res)) != 0)
		return r;
	snprintf(rq->basis, sizeof(rq->basis), "public");
	rq->reply.payload_case = EHX__BODY__PAYLOAD_PROOF;
	rq->reply.proof = res;
	return 0;
}

int
handle_cosign_checkpoint(struct request *rq, char *why, size_t whysz)
{
	const Ehx__CosignCheckpoint *m = rq->body->cosign_checkpoint;
	const Ehx__Cosignature *cs = m->cosignature;
	const struct ehx_cert *cert = NULL;
	Ehx__Checkpoint *ours;
	unsigned char k[8 + EHX_MAX_ID];
	MDB_val key = { 0, k }, val;
	char *id;
	size_t n;
	int r, rc;

	if ((r = store_checkpoint_get(&rq->b->store, rq->txn,
	    m->checkpoint->size, rq->b->arena, &ours)) != 0) {
		if (r == EHX_ERR_NOT_FOUND)
			snprintf(why, whysz, "there is no checkpoint of %llu "
			    "records", (unsigned long long)m->checkpoint->size);
		return r;
	}
	if (ours->root.len != m->checkpoint->root.len ||
	    memcmp(ours->root.data, m->checkpoint->root.data,
	    ours->root.len) != 0 || ours->time != m->checkpoint->time) {
		log_error("%s cosigned a checkpoint of %llu records that this "
		    "broker did not sign", rq->agency->id,
		    (unsigned long long)m->checkpoint->size);
		snprintf(why, whysz, "that is not this broker's checkpoint of "
		    "%llu records", (unsigned long long)m->checkpoint->size);
		return EHX_ERR_INVALID_FIELD;
	}
	if (strcmp(cs->agency, rq->agency->id) != 0 ||
	    registry_by_fpr(&rq->b->reg, cs->signer.data, &cert) !=
	    rq->agency || ehx_cosign_verify(ours, cs,
	    ehx_cert_pubkey(cert)) != 0) {
		snprintf(why, whysz, "the cosignature is not %s's",
		    rq->agency->id);
		return EHX_ERR_BAD_SIGNATURE;
	}
	put_be64(k, ours->size);
	n = strlen(rq->agency->id);
	memcpy(k + 8, rq->agency->id, n);
	key.mv_size = 8 + n;
	if ((rc = mdb_get(rq->txn, rq->b->store.cosign, &key, &val)) ==
	    MDB_NOTFOUND)
		r = store_put_msg(rq->txn, rq->b->store.cosign, k, key.mv_size,
		    &cs->base, rq->b->arena);
	else
		r = store_err(rc);      /* 0: cosigned before, keep the first */
	if (r != 0)
		return r;
	if ((id = ehx_arena_alloc(rq->b->arena, 32)) == NULL)
		return EHX_ERR_NOMEM;
	snprintf(id, 32, "checkpoint:%llu", (unsigned long long)ours->size);
	snprintf(rq->basis, sizeof(rq->basis), "public");
	return request_ack(rq, id);
}

/* ---- query_audit --------------------------------------------------------- */

static bool
audit_matches(const Ehx__QueryAudit *m, const Ehx__AuditRecord *rec)
{
	if (m->agency[0] != '\0' && strcmp(m->agency, rec->agency) != 0)
		return false;
	if (m->user_id[0] != '\0' && (rec->person == NULL ||
	    strcmp(m->user_id, rec->person->user_id) != 0))
		return false;
	if (m->from_time != 0 && rec->time < m->from_time)
		return false;
	if (m->to_time != 0 && rec->time >= m->to_time)
		return false;
	if (m->decision != 0 && rec->decision != m->decision)
		return false;
	if (m->break_glass && !rec->break_glass)
		return false;
	return true;
}

/*
 * A copy of rec in the arena as an answer carries it, and its size there:
 * its person bounded and escaped if it was never checked (a record kept
 * before the audit kept only checked persons), so that every record fits
 * in one answer and next_seq always moves on.
 */
static int
answer_record(struct ehx_arena *a, Ehx__AuditRecord *rec,
    Ehx__AuditRecord **copy, size_t *need)
{
	struct ehx_audit_person ap;
	Ehx__Person *was = rec->person;
	int r;

	rec->person = (Ehx__Person *)ehx_audit_person(was, &ap);
	*need = ehx__audit_record__get_packed_size(rec) + 8;
	r = store_keep(a, &rec->base, copy);
	rec->person = was;
	return r;
}

int
handle_query_audit(struct request *rq, char *why, size_t whysz)
{
	const Ehx__QueryAudit *m = rq->body->query_audit;
	struct ehx_arena *a = rq->b->arena;
	struct store *s = &rq->b->store;
	uint32_t limit = page_limit(m->limit);
	unsigned char k[EHX_PSEUDONYM_LEN + 8];
	Ehx__AuditResult *res;
	Ehx__AuditRecord *rec, *copy;
	MDB_cursor *cur;
	MDB_val key, val;
	size_t used = 0, scanned = 0, need;
	uint64_t seq = m->after_seq, last = m->after_seq;
	bool by_child = m->nhs_number[0] != '\0';
	int rc, r = 0;

	/* A search by child is subject access by another name: only for
	 * the IG officers the sharing policy names for it. */
	if (by_child && !ehx_policy_subject_access(&rq->b->policy,
	    rq->agency->type)) {
		snprintf(why, whysz, "an audit search by child is for the IG "
		    "officers the sharing policy names for subject access "
		    "(subject_access), not %s's",
		    ehx_agency_type_name(rq->agency->type));
		return EHX_ERR_NOT_PERMITTED;
	}
	if ((res = ehx_arena_alloc(a, sizeof(*res))) == NULL)
		return EHX_ERR_NOMEM;
	ehx__audit_result__init(res);
	if ((res->records = ehx_arena_alloc(a, limit *
	    sizeof(*res->records))) == NULL)
		return EHX_ERR_NOMEM;
	/* By child through its index, else along the log itself. */
	if ((rc = mdb_cursor_open(rq->txn, by_child ? s->audit_child :
	    s->audit, &cur)) != 0)
		return store_err(rc);
	if (by_child) {
		memcpy(k, rq->child, EHX_PSEUDONYM_LEN);
		put_be64(k + EHX_PSEUDONYM_LEN, seq + 1);
		key.mv_data = k;
		key.mv_size = sizeof(k);
	} else {
		put_be64(k, seq + 1);
		key.mv_data = k;
		key.mv_size = 8;
	}
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE); rc == 0;
	    rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		if (by_child) {
			if (key.mv_size != sizeof(k) || memcmp(key.mv_data,
			    rq->child, EHX_PSEUDONYM_LEN) != 0)
				break;
			seq = get_be64((unsigned char *)key.mv_data +
			    EHX_PSEUDONYM_LEN);
			if ((r = store_audit_get(s, rq->txn, seq, &val)) != 0)
				break;
		} else {
			if (key.mv_size != 8) {
				r = EHX_ERR_STORAGE;
				break;
			}
			seq = get_be64(key.mv_data);
		}
		if (res->n_records == limit || scanned == EHX_MAX_AUDIT_SCAN) {
			res->next_seq = last;
			break;
		}
		/* Unpacked on the heap: only what is answered takes room in
		 * the request's arena, however many records are read. */
		if ((r = store_read(&ehx__audit_record__descriptor, NULL,
		    &val, &rec)) != 0)
			break;
		if (audit_matches(m, rec)) {
			r = answer_record(a, rec, &copy, &need);
			ehx__audit_record__free_unpacked(rec, NULL);
			if (r != 0)
				break;
			if (used + need > AUDIT_BUDGET) {
				res->next_seq = last;
				break;
			}
			res->records[res->n_records++] = copy;
			used += need;
		} else
			ehx__audit_record__free_unpacked(rec, NULL);
		scanned++;
		last = seq;
	}
	mdb_cursor_close(cur);
	if (r == 0 && rc != 0 && rc != MDB_NOTFOUND)
		r = store_err(rc);
	if (r != 0)
		return r;
	snprintf(rq->basis, sizeof(rq->basis), "role:ig_officer");
	rq->reply.payload_case = EHX__BODY__PAYLOAD_AUDIT;
	rq->reply.audit = res;
	return 0;
}

/* ---- break-glass alerts -------------------------------------------------- */

static void
merge_review(Ehx__Alert *al, const Ehx__StoredReview *rv)
{
	al->reviewed_at = rv->at;
	al->reviewed_by_agency = rv->agency;
	al->reviewed_by = rv->person;
	al->outcome = rv->outcome;
	al->note = rv->note;
}

int
handle_query_alerts(struct request *rq, char *why, size_t whysz)
{
	const Ehx__QueryAlerts *m = rq->body->query_alerts;
	struct ehx_arena *a = rq->b->arena;
	uint32_t limit = page_limit(m->limit);
	uint64_t last = m->after_seq;
	size_t scanned = 0;
	unsigned char k[9];
	Ehx__AlertResult *res;
	Ehx__Alert *al = NULL;
	Ehx__StoredReview *rv;
	MDB_cursor *cur;
	MDB_val key = { sizeof(k), k }, val;
	size_t used = 0;
	int rc, r = 0;

	(void)why;
	(void)whysz;
	if ((res = ehx_arena_alloc(a, sizeof(*res))) == NULL)
		return EHX_ERR_NOMEM;
	ehx__alert_result__init(res);
	if ((res->alerts = ehx_arena_alloc(a, limit *
	    sizeof(*res->alerts))) == NULL)
		return EHX_ERR_NOMEM;
	if ((rc = mdb_cursor_open(rq->txn, rq->b->store.alerts, &cur)) != 0)
		return store_err(rc);
	page_key(k, m->after_seq + 1, 0);
	/* An alert (kind 0) is followed by its review (kind 1), if any. */
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE); rc == 0;
	    rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		const unsigned char *kp = key.mv_data;

		if (key.mv_size != 9) {
			r = EHX_ERR_STORAGE;
			break;
		}
		if (kp[8] == 1) {
			if (al == NULL || al->seq != get_be64(kp))
				continue;
			if ((r = store_read(&ehx__stored_review__descriptor,
			    a, &val, &rv)) != 0)
				break;
			merge_review(al, rv);
			if (!m->all)
				res->n_alerts--;        /* reviewed: not listed */
			continue;
		}
		/* Reviewed alerts are read but not listed: bound the reading
		 * too, and go on after the last alert read. */
		if (res->n_alerts == limit || used + val.mv_size + 256 >
		    AUDIT_BUDGET || scanned == ALERT_SCAN) {
			res->next_seq = last;
			break;
		}
		scanned++;
		last = get_be64(kp);
		if ((r = store_read(&ehx__alert__descriptor, a, &val,
		    &al)) != 0)
			break;
		res->alerts[res->n_alerts++] = al;
		used += val.mv_size + 256;
	}
	mdb_cursor_close(cur);
	if (r == 0 && rc != 0 && rc != MDB_NOTFOUND)
		r = store_err(rc);
	if (r != 0)
		return r;
	snprintf(rq->basis, sizeof(rq->basis), "role:ig_officer");
	rq->reply.payload_case = EHX__BODY__PAYLOAD_ALERTS;
	rq->reply.alerts = res;
	return 0;
}

int
handle_review_alert(struct request *rq, char *why, size_t whysz)
{
	const Ehx__ReviewAlert *m = rq->body->review_alert;
	Ehx__StoredReview rv = EHX__STORED_REVIEW__INIT;
	Ehx__Alert *al;
	unsigned char k[9];
	MDB_val key = { sizeof(k), k }, val;
	char *id;
	int rc, r;

	page_key(k, m->alert, 0);
	if ((rc = mdb_get(rq->txn, rq->b->store.alerts, &key, &val)) != 0) {
		if (rc == MDB_NOTFOUND)
			snprintf(why, whysz, "there is no break-glass alert "
			    "%llu", (unsigned long long)m->alert);
		return store_err(rc);
	}
	if ((r = store_read(&ehx__alert__descriptor, rq->b->arena, &val,
	    &al)) != 0)
		return r;
	if (al->child.len == EHX_PSEUDONYM_LEN) {
		memcpy(rq->child, al->child.data, EHX_PSEUDONYM_LEN);
		rq->has_child = true;
	}
	/* Never by the person who looked; by another agency's IG officer
	 * when the policy says so. */
	if (strcmp(al->agency, rq->agency->id) == 0 && al->person != NULL &&
	    strcmp(al->person->user_id, rq->body->person->user_id) == 0) {
		snprintf(why, whysz, "you broke the glass in alert %llu: "
		    "another IG officer must review it",
		    (unsigned long long)m->alert);
		return EHX_ERR_NOT_PERMITTED;
	}
	if (rq->b->policy.review_other_agency &&
	    strcmp(al->agency, rq->agency->id) == 0) {
		snprintf(why, whysz, "the sharing policy has break-glass "
		    "reviewed by another agency than %s: alert %llu is for "
		    "another agency's IG officer", al->agency,
		    (unsigned long long)m->alert);
		return EHX_ERR_NOT_PERMITTED;
	}
	k[8] = 1;
	if ((rc = mdb_get(rq->txn, rq->b->store.alerts, &key, &val)) == 0) {
		snprintf(why, whysz, "alert %llu has already been reviewed",
		    (unsigned long long)m->alert);
		return EHX_ERR_INVALID_FIELD;
	}
	if (rc != MDB_NOTFOUND)
		return store_err(rc);
	rv.at = rq->now;
	rv.agency = (char *)rq->agency->id;
	rv.person = rq->body->person;
	rv.outcome = m->outcome;
	rv.note = m->note;
	rv.source_message = rq->body->message_id;
	if ((r = store_put_msg(rq->txn, rq->b->store.alerts, k, sizeof(k),
	    &rv.base, rq->b->arena)) != 0)
		return r;
	if ((id = ehx_arena_alloc(rq->b->arena, 32)) == NULL)
		return EHX_ERR_NOMEM;
	snprintf(id, 32, "alert %llu", (unsigned long long)m->alert);
	snprintf(rq->basis, sizeof(rq->basis), "role:ig_officer");
	return request_ack(rq, id);
}

/* ---- disclosures ----------------------------------------------------------- */

int
handle_query_disclosures(struct request *rq, char *why, size_t whysz)
{
	const Ehx__QueryDisclosures *m = rq->body->query_disclosures;
	struct ehx_arena *a = rq->b->arena;
	uint32_t limit = page_limit(m->limit);
	size_t n = strlen(rq->agency->id), used = 0;
	unsigned char k[EHX_MAX_ID + 1 + 8];
	Ehx__DisclosureResult *res;
	Ehx__Disclosure *d;
	MDB_cursor *cur;
	MDB_val key = { n + 9, k }, val;
	int rc, r = 0;

	(void)why;
	(void)whysz;
	/* Notifications publishes have kept are disclosures too. */
	if ((r = notify_flush(rq->b, rq->txn)) != 0)
		return r;
	if ((res = ehx_arena_alloc(a, sizeof(*res))) == NULL)
		return EHX_ERR_NOMEM;
	ehx__disclosure_result__init(res);
	/* Room past limit for the rest of one publish's notifications. */
	if ((res->disclosures = ehx_arena_alloc(a, (limit + EHX_MAX_NOTIFY) *
	    sizeof(*res->disclosures))) == NULL)
		return EHX_ERR_NOMEM;
	memcpy(k, rq->agency->id, n);
	k[n] = 0;
	put_be64(k + n + 1, m->after_seq + 1);
	if ((rc = mdb_cursor_open(rq->txn, rq->b->store.disclosures,
	    &cur)) != 0)
		return store_err(rc);
	/* Keys are owner ‖ 0 ‖ seq, and for the notifications of one publish
	 * record, ‖ their place in it: one record's disclosures are never
	 * cut apart between pages (a publish tells at most EHX_MAX_NOTIFY). */
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE); rc == 0;
	    rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		uint64_t seq;

		if ((key.mv_size != n + 9 && key.mv_size != n + 10) ||
		    memcmp(key.mv_data, k, n + 1) != 0)
			break;
		seq = get_be64((unsigned char *)key.mv_data + n + 1);
		if ((res->n_disclosures >= limit ||
		    used + val.mv_size + 16 > AUDIT_BUDGET) &&
		    res->n_disclosures > 0 && res->disclosures[
		    res->n_disclosures - 1]->seq != seq) {
			res->next_seq = res->disclosures[res->n_disclosures -
			    1]->seq;
			break;
		}
		if ((r = store_read(&ehx__disclosure__descriptor, a, &val,
		    &d)) != 0)
			break;
		res->disclosures[res->n_disclosures++] = d;
		used += val.mv_size + 16;
	}
	mdb_cursor_close(cur);
	if (r == 0 && rc != 0 && rc != MDB_NOTFOUND)
		r = store_err(rc);
	if (r != 0)
		return r;
	snprintf(rq->basis, sizeof(rq->basis), "role:ig_officer");
	rq->reply.payload_case = EHX__BODY__PAYLOAD_DISCLOSURES;
	rq->reply.disclosures = res;
	return 0;
}

/* ---- export ----------------------------------------------------------------- */

static int
copy_bytes(struct ehx_arena *a, ProtobufCBinaryData *out, const void *p,
    size_t n)
{
	if ((out->data = ehx_arena_alloc(a, n > 0 ? n : 1)) == NULL)
		return EHX_ERR_NOMEM;
	memcpy(out->data, p, n);
	out->len = n;
	return 0;
}

/*
 * The broker's certificate first, then every other the broker and its
 * registry have used (the certs database: old ones too, after a rotation,
 * so that envelopes signed under them stay verifiable), as PEM, into res.
 */
static int
export_certificates(struct request *rq, Ehx__ExportResult *res, size_t *used)
{
	struct broker *b = rq->b;
	struct ehx_arena *a = b->arena;
	const struct ehx_cert *own = ehx_signer_cert(b->signer);
	MDB_stat st;
	MDB_cursor *c;
	MDB_val k, v;
	char *pem;
	size_t len;
	int rc, r;

	if ((rc = mdb_stat(rq->txn, b->store.certs, &st)) != 0)
		return store_err(rc);
	if ((res->certificates = ehx_arena_alloc(a, (st.ms_entries + 1) *
	    sizeof(*res->certificates))) == NULL)
		return EHX_ERR_NOMEM;
	if ((r = ehx_cert_pem(own, &pem, &len)) != 0)
		return r;
	r = copy_bytes(a, &res->certificates[0], pem, len);
	free(pem);
	if (r != 0)
		return r;
	res->n_certificates = 1;
	*used += len + 8;
	if ((rc = mdb_cursor_open(rq->txn, b->store.certs, &c)) != 0)
		return store_err(rc);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0 && r == 0 &&
	    res->n_certificates < st.ms_entries + 1;
	    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (k.mv_size == EHX_FPR_LEN && memcmp(k.mv_data,
		    ehx_cert_fpr(own), EHX_FPR_LEN) == 0)
			continue;
		if (*used + v.mv_size + 8 > AUDIT_BUDGET / 2) {
			r = EHX_ERR_TOO_LARGE;
			break;
		}
		if ((r = copy_bytes(a, &res->certificates[
		    res->n_certificates], v.mv_data, v.mv_size)) == 0) {
			res->n_certificates++;
			*used += v.mv_size + 8;
		}
	}
	mdb_cursor_close(c);
	if (r == 0 && rc != 0 && rc != MDB_NOTFOUND)
		r = store_err(rc);
	return r;
}

/* Attach the cosignatures kept for cp (allocated in the arena). */
static int
cosignatures_of(struct request *rq, Ehx__Checkpoint *cp)
{
	struct ehx_arena *a = rq->b->arena;
	unsigned char k[8];
	MDB_cursor *cur;
	MDB_val key = { sizeof(k), k }, val;
	size_t max = rq->b->reg.n;
	int rc, r = 0;

	if ((cp->cosignatures = ehx_arena_alloc(a, (max + 1) *
	    sizeof(*cp->cosignatures))) == NULL)
		return EHX_ERR_NOMEM;
	put_be64(k, cp->size);
	if ((rc = mdb_cursor_open(rq->txn, rq->b->store.cosign, &cur)) != 0)
		return store_err(rc);
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
	    rc == 0 && cp->n_cosignatures < max;
	    rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		if (key.mv_size < 8 || memcmp(key.mv_data, k, 8) != 0)
			break;
		if ((r = store_read(&ehx__cosignature__descriptor, a, &val,
		    &cp->cosignatures[cp->n_cosignatures])) != 0)
			break;
		cp->n_cosignatures++;
	}
	mdb_cursor_close(cur);
	if (r == 0 && rc != 0 && rc != MDB_NOTFOUND)
		r = store_err(rc);
	return r;
}

int
handle_export_audit(struct request *rq, char *why, size_t whysz)
{
	const Ehx__ExportAudit *m = rq->body->export_audit;
	struct store *s = &rq->b->store;
	struct ehx_arena *a = rq->b->arena;
	uint32_t limit = page_limit(m->limit);
	Ehx__ExportResult *res;
	Ehx__AuditRecord *rec;
	Ehx__Checkpoint *cp;
	unsigned char leaf[EHX_HASH_LEN];
	MDB_val val;
	uint64_t size, seq;
	size_t used = 0;
	int r;

	if ((res = ehx_arena_alloc(a, sizeof(*res))) == NULL)
		return EHX_ERR_NOMEM;
	ehx__export_result__init(res);
	if ((r = store_audit_size(s, rq->txn, &size)) != 0)
		return r;
	if (FAULT("truncate_export"))
		size /= 2;              /* a test build's dishonesty */
	res->tree_size = size;
	if (m->after_seq == 0 && (r = export_certificates(rq, res,
	    &used)) != 0) {
		if (r == EHX_ERR_TOO_LARGE)
			snprintf(why, whysz, "the registry's certificates do "
			    "not fit in one answer");
		return r;
	}
	if ((res->records = ehx_arena_alloc(a, limit *
	    sizeof(*res->records))) == NULL ||
	    (res->leaves = ehx_arena_alloc(a, limit *
	    sizeof(*res->leaves))) == NULL ||
	    (res->envelopes = ehx_arena_alloc(a, limit *
	    sizeof(*res->envelopes))) == NULL ||
	    (res->checkpoints = ehx_arena_alloc(a, limit *
	    sizeof(*res->checkpoints))) == NULL)
		return EHX_ERR_NOMEM;
	for (seq = m->after_seq + 1; seq <= size; seq++) {
		size_t evlen = 0, cplen = 0, need;
		unsigned char *env = NULL;

		if ((r = store_audit_get(s, rq->txn, seq, &val)) != 0)
			return r;
		if ((r = store_read(&ehx__audit_record__descriptor, NULL, &val,
		    &rec)) == 0) {
			if (rec->envelope_hash.len == 32 && (r =
			    store_evidence_get(s, rq->txn, rq->b->pkey, seq,
			    rec->envelope_hash.data, &env, &evlen)) != 0 &&
			    r != EHX_ERR_NOT_FOUND) {
				ehx__audit_record__free_unpacked(rec, NULL);
				return r;
			}
			ehx__audit_record__free_unpacked(rec, NULL);
		} else if (r == EHX_ERR_NOMEM)
			return r;
		/* else: it does not read back; exported as it is, the
		 * verifier names it */
		r = store_checkpoint_get(s, rq->txn, seq, a, &cp);
		if (r == 0) {
			if ((r = cosignatures_of(rq, cp)) != 0) {
				free(env);
				return r;
			}
			cplen = ehx__checkpoint__get_packed_size(cp) + 8;
		} else if (r != EHX_ERR_NOT_FOUND) {
			free(env);
			return r;
		} else
			cp = NULL;
		need = val.mv_size + evlen + cplen + EHX_HASH_LEN + 64;
		if (res->n_records == limit || used + need > AUDIT_BUDGET) {
			free(env);
			if (res->n_records == 0) {
				snprintf(why, whysz, "record %llu does not fit "
				    "in one answer", (unsigned long long)seq);
				return EHX_ERR_TOO_LARGE;
			}
			res->next_seq = seq - 1;
			break;
		}
		if ((r = store_audit_leaf(s, rq->txn, seq, leaf)) != 0 ||
		    (r = copy_bytes(a, &res->records[res->n_records],
		    val.mv_data, val.mv_size)) != 0 ||
		    (r = copy_bytes(a, &res->leaves[res->n_leaves++], leaf,
		    EHX_HASH_LEN)) != 0 ||
		    (env != NULL && (r = copy_bytes(a,
		    &res->envelopes[res->n_envelopes++], env, evlen)) != 0)) {
			free(env);
			return r;
		}
		free(env);
		res->n_records++;
		if (cp != NULL)
			res->checkpoints[res->n_checkpoints++] = cp;
		used += need;
	}
	snprintf(rq->basis, sizeof(rq->basis), "role:ig_officer");
	rq->reply.payload_case = EHX__BODY__PAYLOAD_EXPORT;
	rq->reply.export = res;
	return 0;
}
