/*
 * fuzz_pipeline — the broker itself, stateful: each input is a run of up
 * to 24 requests of every kind, built from the input's bytes, signed with
 * the real keys of a throw-away partnership's agencies, and decided by
 * broker_process() against one real LMDB store that lives across inputs
 * and starts large (2,000 children with flags and consents, 20,000 audit
 * records). Requests may come from any agency, as any role, on another
 * agency's connection, about any child, with any field, replayed or
 * tampered with.
 *
 * Whatever comes, every request gets one reply, signed by the broker,
 * that an agent can open, no bigger than one message, naming the request
 * it answers; and the store is never marked failed (no input may pass
 * for a damaged store and take the broker down for everyone).
 *
 * The partnership is made once with certs/ehx-pki (run from the
 * repository root, as `make fuzz` does) in a temporary directory, which
 * also holds the store (MDB_NOSYNC: the fuzzer needs speed, not
 * durability).
 */
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../broker/audit.h"
#include "../../broker/broker.h"
#include "../../broker/notify.h"
#include "../../broker/pipeline.h"
#include "../../broker/registry.h"
#include "../../broker/store.h"
#include "ehx/crypto.h"
#include "ehx/err.h"
#include "ehx/log.h"
#include "ehx/nhs.h"
#include "ehx/util.h"
#include "ehx/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NCHILD 2000
#define NAG 5

static const char *const ag_id[NAG] = {
	"police", "health", "school", "housing", "la",
};
static const char *const ag_type[NAG] = {
	"police", "health", "school", "housing", "local_authority",
};

static char dir[64];
static struct broker b;
static struct ehx_signer *signer[NAG];
static const struct agency *agency[NAG];
static char nhs[NCHILD][EHX_NHS_LEN + 1];
static unsigned char last_id[EHX_MSGID_LEN];

static void
cleanup(void)
{
	char cmd[96];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		return;
}

/* A valid NHS number of its own for each n. */
static void
nhs_make(int n, char out[EHX_NHS_LEN + 1])
{
	for (long p = 700000000L + (long)n * 7919L;; p++) {
		int sum = 0, c;

		snprintf(out, EHX_NHS_LEN + 1, "%09ld0", p % 1000000000L);
		for (int i = 0; i < 9; i++)
			sum += (out[i] - '0') * (10 - i);
		if ((c = 11 - sum % 11) == 11)
			c = 0;
		if (c == 10)
			continue;
		out[9] = (char)('0' + c);
		return;
	}
}

/* ---- the input ------------------------------------------------------------ */

struct in {
	const uint8_t *p;
	size_t n;
};

static unsigned
u8(struct in *in)
{
	if (in->n == 0)
		return 0;
	in->n--;
	return *in->p++;
}

static unsigned
u16(struct in *in)
{
	return u8(in) << 8 | u8(in);
}

static uint64_t
u64(struct in *in)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | u8(in);
	return v;
}

/* Text of the input's choosing: a length byte, then that many bytes (any
 * bytes: the broker must refuse what is not text), in a buffer of the
 * op's. Now and then a long run of one byte instead. */
static char *
text(struct in *in, char *buf, size_t bufsz)
{
	unsigned len = u8(in);
	size_t n = 0;

	if (len == 255) {
		n = u16(in) % (bufsz - 1);
		memset(buf, 'a' + (int)(n % 26), n);
	} else {
		while (n < len && n < bufsz - 1 && in->n > 0)
			buf[n++] = (char)u8(in);
	}
	buf[n] = '\0';
	return buf;
}

/* A child: mostly one of the store's, sometimes no valid NHS number. */
static const char *
child(struct in *in, char *buf, size_t bufsz)
{
	unsigned c = u16(in);

	if (c % 64 == 63)
		return text(in, buf, bufsz);
	return nhs[c % NCHILD];
}

/* ---- one request ------------------------------------------------------------ */

struct op {
	Ehx__Body body;
	Ehx__Person person;
	Ehx__PublishFlag pf;
	Ehx__Practitioner pr;
	Ehx__CloseFlag cf;
	Ehx__RecordConsent rc;
	Ehx__GivenBy gb;
	Ehx__ConsentScope scope;
	Ehx__AgencyType types[4];
	Ehx__Purpose purposes[3];
	char *scope_ids[2];
	Ehx__WithdrawConsent wc;
	Ehx__QueryPicture qp;
	Ehx__QueryConsent qc;
	Ehx__QueryAudit qa;
	Ehx__QueryAlerts ql;
	Ehx__ReviewAlert ra;
	Ehx__QueryDisclosures qd;
	Ehx__QuerySar qs;
	Ehx__ExportAudit ea;
	Ehx__QueryProof qf;
	Ehx__FetchNotifications fn;
	Ehx__QueryEarlyHelpList el;
	unsigned char id[EHX_MSGID_LEN], after[EHX_PSEUDONYM_LEN];
	char t[12][300];
	char big[4096];
	char who[EHX_NHS_LEN + 40];
};

enum { K_PUBLISH, K_CLOSE, K_CONSENT, K_WITHDRAW, K_PICTURE, K_QCONSENT,
	K_AUDIT, K_ALERTS, K_REVIEW, K_DISCLOSURES, K_SAR, K_EXPORT, K_PROOF,
	K_FETCH, K_LIST, NKINDS };

static const char *const localities[] = { "north", "east", "west", "south" };

static void
build(struct op *o, struct in *in, unsigned a)
{
	Ehx__Body *b_ = &o->body;
	unsigned kind = u8(in) % NKINDS, role = u8(in) % 7;

	memset(o, 0, sizeof(*o));
	ehx__body__init(b_);
	ehx__person__init(&o->person);
	if (u8(in) % 8 == 0)
		memcpy(o->id, last_id, sizeof(o->id));  /* a replay */
	else
		ehx_random(o->id, sizeof(o->id));
	memcpy(last_id, o->id, sizeof(last_id));
	b_->message_id.data = o->id;
	b_->message_id.len = sizeof(o->id);
	b_->sender = (char *)ag_id[a];
	b_->recipient = u8(in) % 32 == 0 ? "nobody" : "broker";
	b_->sent_at = ehx_now_ms() + (u8(in) % 16 == 0 ?
	    ((int64_t)(int8_t)u8(in)) * 60000 : 0);
	o->person.user_id = u8(in) % 16 == 0 ? text(in, o->t[0], 300) :
	    "fuzz-user";
	o->person.name = u8(in) % 16 == 0 ? text(in, o->big, sizeof(o->big)) :
	    "Fuzz Person";
	o->person.role = (Ehx__Role)role;
	b_->person = &o->person;
	switch (kind) {
	case K_PUBLISH:
		ehx__publish_flag__init(&o->pf);
		ehx__practitioner__init(&o->pr);
		o->pf.nhs_number = (char *)child(in, o->t[1], 40);
		snprintf(o->t[2], 300, "ref-%u", u8(in) % 80);
		o->pf.ref = u8(in) % 16 == 0 ? text(in, o->t[2], 300) : o->t[2];
		o->pf.category = (Ehx__Category)(u8(in) % 22);
		o->pf.level = u8(in) % 6;
		o->pr.name = u8(in) % 8 == 0 ? text(in, o->t[3], 300) : "Sam";
		o->pr.role = "officer";
		o->pr.contact = "01234 567890";
		o->pf.practitioner = u8(in) % 32 == 0 ? NULL : &o->pr;
		o->pf.lead = u8(in) & 1;
		o->pf.withhold = u8(in) % 8 == 0;
		o->pf.note = u8(in) % 4 == 0 ? text(in, o->t[4], 300) : "";
		if (u8(in) % 4 == 0)
			o->pf.locality = (char *)localities[u8(in) % 4];
		b_->payload_case = EHX__BODY__PAYLOAD_PUBLISH_FLAG;
		b_->publish_flag = &o->pf;
		break;
	case K_CLOSE:
		ehx__close_flag__init(&o->cf);
		o->cf.nhs_number = (char *)child(in, o->t[1], 40);
		snprintf(o->t[2], 300, "ref-%u", u8(in) % 80);
		o->cf.ref = o->t[2];
		o->cf.reason = u8(in) % 4 == 0 ? text(in, o->t[3], 300) : "";
		b_->payload_case = EHX__BODY__PAYLOAD_CLOSE_FLAG;
		b_->close_flag = &o->cf;
		break;
	case K_CONSENT:
		ehx__record_consent__init(&o->rc);
		ehx__given_by__init(&o->gb);
		ehx__consent_scope__init(&o->scope);
		o->rc.nhs_number = (char *)child(in, o->t[1], 40);
		o->gb.relation = (Ehx__Relation)(u8(in) % 5);
		o->gb.name = "Jane Doe";
		o->rc.given_by = &o->gb;
		o->scope.n_agency_types = u8(in) % 5;
		for (size_t i = 0; i < o->scope.n_agency_types; i++)
			o->types[i] = (Ehx__AgencyType)(u8(in) % 8);
		o->scope.agency_types = o->types;
		o->scope.n_agencies = u8(in) % 3;
		for (size_t i = 0; i < o->scope.n_agencies; i++)
			o->scope_ids[i] = (char *)ag_id[u8(in) % NAG];
		o->scope.agencies = o->scope_ids;
		o->scope.n_purposes = u8(in) % 4;
		for (size_t i = 0; i < o->scope.n_purposes; i++)
			o->purposes[i] = (Ehx__Purpose)(u8(in) % 5);
		o->scope.purposes = o->purposes;
		o->rc.scope = &o->scope;
		o->rc.basis = (Ehx__LawfulBasis)(u8(in) % 6);
		o->rc.starts_at = u8(in) % 8 == 0 ? (int64_t)u64(in) : 0;
		o->rc.expires_at = ehx_now_ms() + (int64_t)(u16(in) + 1) * 3600000;
		o->rc.evidence_ref = u8(in) % 8 == 0 ? text(in, o->t[5], 300) :
		    "FUZZ-FORM";
		b_->payload_case = EHX__BODY__PAYLOAD_RECORD_CONSENT;
		b_->record_consent = &o->rc;
		break;
	case K_WITHDRAW:
		ehx__withdraw_consent__init(&o->wc);
		o->wc.nhs_number = (char *)child(in, o->t[1], 40);
		o->wc.consent_id = text(in, o->t[2], 40);
		o->wc.reason = "asked";
		o->wc.withdrawn_by = "";
		b_->payload_case = EHX__BODY__PAYLOAD_WITHDRAW_CONSENT;
		b_->withdraw_consent = &o->wc;
		break;
	case K_PICTURE:
		ehx__query_picture__init(&o->qp);
		o->qp.nhs_number = (char *)child(in, o->t[1], 40);
		if (u8(in) % 4 == 0)
			o->qp.break_glass_reason = u8(in) % 2 ? text(in,
			    o->t[2], 300) : "the child is at risk of harm now";
		b_->payload_case = EHX__BODY__PAYLOAD_QUERY_PICTURE;
		b_->query_picture = &o->qp;
		break;
	case K_QCONSENT:
		ehx__query_consent__init(&o->qc);
		o->qc.nhs_number = (char *)child(in, o->t[1], 40);
		o->qc.history = u8(in) & 1;
		b_->payload_case = EHX__BODY__PAYLOAD_QUERY_CONSENT;
		b_->query_consent = &o->qc;
		break;
	case K_AUDIT:
		ehx__query_audit__init(&o->qa);
		if (u8(in) & 1)
			o->qa.nhs_number = (char *)child(in, o->t[1], 40);
		if (u8(in) % 4 == 0)
			o->qa.agency = (char *)ag_id[u8(in) % NAG];
		if (u8(in) % 4 == 0)
			o->qa.user_id = text(in, o->t[2], 80);
		o->qa.decision = (Ehx__Decision)(u8(in) % 4);
		o->qa.break_glass = u8(in) % 8 == 0;
		o->qa.after_seq = u8(in) % 2 ? 0 : u64(in) % 30000;
		o->qa.limit = u16(in) % 300;
		b_->payload_case = EHX__BODY__PAYLOAD_QUERY_AUDIT;
		b_->query_audit = &o->qa;
		break;
	case K_ALERTS:
		ehx__query_alerts__init(&o->ql);
		o->ql.all = u8(in) & 1;
		o->ql.after_seq = u64(in) % 30000;
		o->ql.limit = u16(in) % 300;
		b_->payload_case = EHX__BODY__PAYLOAD_QUERY_ALERTS;
		b_->query_alerts = &o->ql;
		break;
	case K_REVIEW:
		ehx__review_alert__init(&o->ra);
		o->ra.alert = u64(in) % 30000;
		o->ra.outcome = (Ehx__ReviewOutcome)(u8(in) % 4);
		o->ra.note = u8(in) % 4 == 0 ? text(in, o->t[1], 300) :
		    "reviewed: justified";
		b_->payload_case = EHX__BODY__PAYLOAD_REVIEW_ALERT;
		b_->review_alert = &o->ra;
		break;
	case K_DISCLOSURES:
		ehx__query_disclosures__init(&o->qd);
		o->qd.after_seq = u64(in) % 30000;
		o->qd.limit = u16(in) % 300;
		b_->payload_case = EHX__BODY__PAYLOAD_QUERY_DISCLOSURES;
		b_->query_disclosures = &o->qd;
		break;
	case K_SAR:
		ehx__query_sar__init(&o->qs);
		o->qs.nhs_number = (char *)child(in, o->t[1], 40);
		b_->payload_case = EHX__BODY__PAYLOAD_QUERY_SAR;
		b_->query_sar = &o->qs;
		break;
	case K_EXPORT:
		ehx__export_audit__init(&o->ea);
		o->ea.after_seq = u64(in) % 30000;
		o->ea.limit = u16(in) % 300;
		b_->payload_case = EHX__BODY__PAYLOAD_EXPORT_AUDIT;
		b_->export_audit = &o->ea;
		break;
	case K_PROOF:
		ehx__query_proof__init(&o->qf);
		o->qf.old_size = u64(in) % 40000;
		o->qf.new_size = u8(in) % 2 ? 0 : u64(in) % 40000;
		o->qf.seq = u64(in) % 40000;
		b_->payload_case = EHX__BODY__PAYLOAD_QUERY_PROOF;
		b_->query_proof = &o->qf;
		break;
	case K_FETCH:
		ehx__fetch_notifications__init(&o->fn);
		o->fn.after = u64(in) % 100;
		o->fn.limit = u8(in) % 70;
		if (o->fn.after != 0) {
			o->fn.after_id.data = o->id;
			o->fn.after_id.len = u8(in) % 2 ? EHX_MSGID_LEN : 3;
		}
		b_->payload_case = EHX__BODY__PAYLOAD_FETCH_NOTIFICATIONS;
		b_->fetch_notifications = &o->fn;
		break;
	default:
		ehx__query_early_help_list__init(&o->el);
		o->el.list = (Ehx__EarlyHelpList)(u8(in) % 4);
		o->el.locality = u8(in) % 8 == 0 ? text(in, o->t[1], 40) :
		    (char *)localities[u8(in) % 4];
		if (u8(in) % 4 == 0) {
			for (size_t i = 0; i < sizeof(o->after); i++)
				o->after[i] = (unsigned char)u8(in);
			o->el.after.data = o->after;
			o->el.after.len = u8(in) % 2 ? sizeof(o->after) : 5;
		}
		o->el.limit = u16(in) % 300;
		b_->payload_case = EHX__BODY__PAYLOAD_QUERY_EARLY_HELP_LIST;
		b_->query_early_help_list = &o->el;
		break;
	}
}

/* Send one request on conn's connection: it must be answered, and the
 * answer must be one an agent can open. */
static void
decide(const struct agency *conn, const unsigned char *frame, size_t len,
    const unsigned char *id)
{
	unsigned char *out = NULL;
	size_t outlen = 0;
	Ehx__Envelope *env = NULL;
	Ehx__Body *reply = NULL;
	char why[160];

	if (broker_process(&b, conn, frame, len, &out, &outlen) != 0 ||
	    out == NULL || outlen == 0 || outlen > EHX_MAX_MESSAGE)
		abort();
	if (ehx_envelope_decode(out, outlen, &env) != 0 ||
	    ehx_envelope_verify(env, ehx_cert_pubkey(ehx_signer_cert(
	    b.signer))) != 0 ||
	    ehx_body_decode(env->body.data, env->body.len, &reply, why,
	    sizeof(why)) != 0)
		abort();
	if (strcmp(reply->recipient, conn->id) != 0 ||
	    (id != NULL && reply->in_reply_to.len == EHX_MSGID_LEN &&
	    memcmp(reply->in_reply_to.data, id, EHX_MSGID_LEN) != 0))
		abort();
	if (b.store.failed)
		abort();                /* no input may pass for a damaged store */
	ehx_body_free(reply);
	ehx_envelope_free(env);
	free(out);
	notify_push_drop(&b, 0);        /* nobody to push them to here */
}

/* ---- the partnership and its store -------------------------------------- */

static void
seal_and_decide(unsigned a, const Ehx__Body *body)
{
	unsigned char *frame = NULL;
	size_t len = 0;

	if (ehx_envelope_seal(signer[a], body, &frame, &len) != 0)
		abort();
	decide(agency[a], frame, len, body->message_id.data);
	free(frame);
}

/* 2,000 children with a flag or two each and consents for some; 20,000
 * audit records beside the ones those made. */
static void
populate(void)
{
	uint8_t seed[64];
	MDB_txn *txn;

	for (int i = 0; i < NCHILD; i++) {
		struct op o;
		struct in in = { seed, sizeof(seed) };

		for (size_t k = 0; k < sizeof(seed); k++)
			seed[k] = (uint8_t)(i * 31 + k * 7);
		build(&o, &in, 0);
		ehx__publish_flag__init(&o.pf);
		ehx__practitioner__init(&o.pr);
		o.person.role = EHX__ROLE__ROLE_PRACTITIONER;
		o.person.user_id = "seed";
		o.person.name = "Seed Person";
		o.body.recipient = "broker";
		o.body.sent_at = ehx_now_ms();
		o.pr.name = "Sam";
		o.pf.nhs_number = nhs[i];
		o.pf.ref = "seed-1";
		o.pf.category = (Ehx__Category)(1 + i % 12);
		o.pf.level = 1 + i % 4;
		o.pf.practitioner = &o.pr;
		o.pf.note = "";
		o.body.payload_case = EHX__BODY__PAYLOAD_PUBLISH_FLAG;
		o.body.publish_flag = &o.pf;
		for (unsigned a = 0; a < NAG; a += 1 + (unsigned)(i % 3)) {
			o.body.sender = (char *)ag_id[a];
			ehx_random(o.id, sizeof(o.id));
			seal_and_decide(a, &o.body);
		}
		if (i % 4 != 0)
			continue;
		/* A consent for every fourth child, recorded by health. */
		ehx__record_consent__init(&o.rc);
		ehx__given_by__init(&o.gb);
		ehx__consent_scope__init(&o.scope);
		o.gb.relation = EHX__RELATION__RELATION_PARENT;
		o.gb.name = "Jane Doe";
		o.types[0] = EHX__AGENCY_TYPE__AGENCY_TYPE_SCHOOL;
		o.types[1] = EHX__AGENCY_TYPE__AGENCY_TYPE_HEALTH;
		o.purposes[0] = EHX__PURPOSE__PURPOSE_WHOLE_PICTURE;
		o.purposes[1] = EHX__PURPOSE__PURPOSE_NOTIFICATIONS;
		o.scope.agency_types = o.types;
		o.scope.n_agency_types = 2;
		o.scope.purposes = o.purposes;
		o.scope.n_purposes = 2;
		o.rc.nhs_number = nhs[i];
		o.rc.given_by = &o.gb;
		o.rc.scope = &o.scope;
		o.rc.basis = EHX__LAWFUL_BASIS__LAWFUL_BASIS_CONSENT;
		o.rc.expires_at = ehx_now_ms() + 180LL * 86400 * 1000;
		o.rc.evidence_ref = "SEED-FORM";
		o.body.payload_case = EHX__BODY__PAYLOAD_RECORD_CONSENT;
		o.body.record_consent = &o.rc;
		o.body.sender = (char *)ag_id[1];
		ehx_random(o.id, sizeof(o.id));
		seal_and_decide(1, &o.body);
	}
	if (mdb_txn_begin(b.store.env, NULL, 0, &txn) != 0)
		abort();
	for (int i = 0; i < 20000; i++) {
		Ehx__AuditRecord rec = EHX__AUDIT_RECORD__INIT;
		Ehx__Person pe = EHX__PERSON__INIT;

		pe.user_id = "someone-at-the-school";
		pe.name = "A Person With A Realistically Long Name";
		pe.role = EHX__ROLE__ROLE_PRACTITIONER;
		rec.time = ehx_now_ms();
		rec.agency = "school";
		rec.person = &pe;
		rec.action = "query_picture";
		rec.decision = EHX__DECISION__DECISION_DENY;
		rec.error = (Ehx__ErrorCode)ehx_err_to_wire(EHX_ERR_NO_CONSENT);
		rec.basis = "";
		if (store_audit_append(&b.store, txn, &rec) != 0)
			abort();
	}
	if (mdb_txn_commit(txn) != 0)
		abort();
}

static void
setup(void)
{
	char cmd[1024], p1[160], p2[160], err[512];

	snprintf(dir, sizeof(dir), "/tmp/ehx-fuzz-pipeline.XXXXXX");
	if (mkdtemp(dir) == NULL)
		abort();
	atexit(cleanup);
	snprintf(cmd, sizeof(cmd), "certs/ehx-pki ca %s >/dev/null && "
	    "certs/ehx-pki broker %s >/dev/null", dir, dir);
	if (system(cmd) != 0)
		abort();
	for (int i = 0; i < NAG; i++) {
		snprintf(cmd, sizeof(cmd), "certs/ehx-pki agency %s %s %s "
		    ">/dev/null", dir, ag_id[i], ag_type[i]);
		if (system(cmd) != 0)
			abort();
	}
	ehx_log_level_current = -1;     /* quiet: nothing logged */
	memset(&b, 0, sizeof(b));
	snprintf(b.cfg.id, sizeof(b.cfg.id), "broker");
	b.cfg.skew_ms = 300 * 1000;
	b.cfg.map_size = 2048LL * 1024 * 1024;
	b.cfg.checkpoint_records = 500;
	b.cfg.checkpoint_seconds = 3600;
	snprintf(b.cfg.data_dir, sizeof(b.cfg.data_dir), "%s/data", dir);
	snprintf(p1, sizeof(p1), "%s/ca/ca.crt", dir);
	if (ehx_ca_load(p1, &b.ca) != 0)
		abort();
	snprintf(p1, sizeof(p1), "%s/broker/broker.key", dir);
	snprintf(p2, sizeof(p2), "%s/broker/broker.crt", dir);
	if (ehx_signer_load(p1, p2, &b.signer) != 0)
		abort();
	snprintf(p1, sizeof(p1), "%s/broker/pseudonym.key", dir);
	if (ehx_pseudokey_load(p1, &b.pkey) != 0)
		abort();
	snprintf(p1, sizeof(p1), "%s/registry.ini", dir);
	if (registry_load(p1, b.ca, &b.reg, err, sizeof(err)) != 0 ||
	    ehx_policy_load("docs/sharing-policy.ini", &b.policy, err,
	    sizeof(err)) != 0 ||
	    store_open(&b.store, b.cfg.data_dir, (size_t)b.cfg.map_size,
	    false, err, sizeof(err)) != 0) {
		fprintf(stderr, "fuzz_pipeline: %s\n", err);
		abort();
	}
	mdb_env_set_flags(b.store.env, MDB_NOSYNC, 1);
	if ((b.arena = ehx_arena_new(8 * 1024 * 1024)) == NULL ||
	    checkpoint_adopt(&b) != 0)
		abort();
	for (int i = 0; i < NAG; i++) {
		snprintf(p1, sizeof(p1), "%s/agencies/%s/%s.key", dir,
		    ag_id[i], ag_id[i]);
		snprintf(p2, sizeof(p2), "%s/agencies/%s/%s.crt", dir,
		    ag_id[i], ag_id[i]);
		if (ehx_signer_load(p1, p2, &signer[i]) != 0 ||
		    (agency[i] = registry_by_id(&b.reg, ag_id[i])) == NULL)
			abort();
	}
	for (int i = 0; i < NCHILD; i++)
		nhs_make(i, nhs[i]);
	populate();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = { data, size };
	static struct op o;

	if (b.arena == NULL)
		setup();
	for (int i = 0; i < 24 && in.n > 0; i++) {
		unsigned a = u8(&in) % NAG, how = u8(&in);
		/* Mostly on its own connection; sometimes another's. */
		unsigned c = how % 16 == 0 ? (a + 1) % NAG : a;
		unsigned char *frame = NULL;
		size_t len = 0;

		build(&o, &in, a);
		if (ehx_envelope_seal(signer[a], &o.body, &frame, &len) != 0)
			continue;       /* too large to sign: nothing to send */
		if (how % 32 == 1 && len > 0) { /* tampered with on the way */
			frame[u16(&in) % len] ^= (unsigned char)(1 + u8(&in) % 255);
			decide(agency[c], frame, len, NULL);
		} else
			decide(agency[c], frame, len, o.id);
		free(frame);
	}
	return 0;
}
