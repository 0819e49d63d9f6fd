/*
 * test_pipeline — the broker's request pipeline (broker/pipeline.c and the
 * handlers) in-process: a real struct broker, loaded the way
 * broker/main.c's load() does it from a partnership made by certs/ehx-pki,
 * with a real LMDB store in a temporary directory. Envelopes are sealed
 * with the agencies' own keys and fed to broker_process(); every reply is
 * opened like an agent opens it (decode, the broker's certificate, its
 * signature, the Body rules) and checked.
 *
 * After every refusal the flags and consent databases hold what they held
 * before, and the audit log has grown by exactly one record.
 */
#include "testutil.h"

#include "../../broker/audit.h"
#include "../../broker/broker.h"
#include "../../broker/notify.h"
#include "../../broker/pipeline.h"
#include "../../broker/registry.h"
#include "../../broker/request.h"
#include "../../broker/store.h"
#include "ehx/checkpoint.h"
#include "ehx/crypto.h"
#include "ehx/merkle.h"
#include "ehx/err.h"
#include "ehx/log.h"
#include "ehx/nhs.h"
#include "ehx/policy.h"
#include "ehx/util.h"
#include "ehx/wire.h"

#define MiB (1024 * 1024)
#define HOUR 3600000LL
#define DAY (24 * HOUR)

static char dir[PATH_MAX];
static struct broker b;
static struct ehx_cert *broker_cert;    /* what agents verify replies with */

enum { POLICE, HEALTH, SCHOOL, OLD, FUTURE, ROGUE, NSIGNERS };
static struct ehx_signer *signers[NSIGNERS];
static const char *const signer_ids[NSIGNERS] = {
	"police", "health", "school", "old", "future", "police",
};

static int
load_broker(struct broker *br, const char *data, size_t map)
{
	char path[PATH_MAX], path2[PATH_MAX], err[512];

	memset(br, 0, sizeof(*br));
	snprintf(br->cfg.id, sizeof(br->cfg.id), "broker");
	br->cfg.skew_ms = 300 * 1000;
	br->cfg.map_size = (long long)map;
	br->cfg.checkpoint_records = 1000;
	br->cfg.checkpoint_seconds = 3600;
	tu_join(br->cfg.data_dir, sizeof(br->cfg.data_dir), dir, data);
	if (ehx_ca_load(tu_join(path, sizeof(path), dir, "ca/ca.crt"),
	    &br->ca) != 0 ||
	    ehx_signer_load(tu_join(path, sizeof(path), dir, "broker/broker.key"),
	    tu_join(path2, sizeof(path2), dir, "broker/broker.crt"),
	    &br->signer) != 0 ||
	    ehx_pseudokey_load(tu_join(path, sizeof(path), dir,
	    "broker/pseudonym.key"), &br->pkey) != 0) {
		fprintf(stderr, "test_pipeline: cannot load the broker's keys\n");
		return -1;
	}
	if (registry_load(tu_join(path, sizeof(path), dir, "registry.ini"),
	    br->ca, &br->reg, err, sizeof(err)) != 0 ||
	    ehx_policy_load("docs/sharing-policy.ini", &br->policy, err,
	    sizeof(err)) != 0 ||
	    store_open(&br->store, br->cfg.data_dir, map, false, err,
	    sizeof(err)) != 0) {
		fprintf(stderr, "test_pipeline: %s\n", err);
		return -1;
	}
	if ((br->arena = ehx_arena_new(8 * MiB)) == NULL)
		return -1;
	return 0;
}

static void
free_broker(struct broker *br)
{
	if (br->cp != NULL)
		ehx__checkpoint__free_unpacked(br->cp, NULL);
	notify_push_drop(br, 0);        /* notifications nobody pushes here */
	free(br->push);
	store_close(&br->store);
	registry_free(&br->reg);
	ehx_signer_free(br->signer);
	ehx_pseudokey_free(br->pkey);
	ehx_ca_free(br->ca);
	ehx_arena_free(br->arena);
	memset(br, 0, sizeof(*br));
}

static int
setup_inner(void **state)
{
	const char *pki;
	char key[PATH_MAX], crt[PATH_MAX];

	(void)state;
	ehx_log_level_current = getenv("EHX_TEST_LOG") ? 3 : -1;
	if ((pki = tu_pki()) == NULL ||
	    tu_mkdtemp(dir, sizeof(dir), "pipeline") != 0)
		return -1;
	if (tu_sh("'%s' ca '%s' >/dev/null && '%s' broker '%s' >/dev/null && "
	    "'%s' agency '%s' police police >/dev/null && "
	    "'%s' agency '%s' health health >/dev/null && "
	    "'%s' agency '%s' school school >/dev/null && "
	    "'%s' agency '%s' old housing --start 20200101000000Z "
	    "--end 20210101000000Z >/dev/null && "
	    "'%s' agency '%s' future voluntary --start 20990101000000Z "
	    "--end 20991231235959Z >/dev/null && "
	    "'%s' ca '%s/other' >/dev/null && "
	    "'%s' agency '%s/other' police police >/dev/null",
	    pki, dir, pki, dir, pki, dir, pki, dir, pki, dir, pki, dir, pki, dir,
	    pki, dir, pki, dir) != 0)
		return -1;
	for (int i = 0; i < NSIGNERS; i++) {
		const char *base = i == ROGUE ? "other/agencies" : "agencies";

		snprintf(key, sizeof(key), "%s/%s/%s/%s.key", dir, base,
		    signer_ids[i], signer_ids[i]);
		snprintf(crt, sizeof(crt), "%s/%s/%s/%s.crt", dir, base,
		    signer_ids[i], signer_ids[i]);
		if (ehx_signer_load(key, crt, &signers[i]) != 0) {
			fprintf(stderr, "test_pipeline: cannot load %s\n", key);
			return -1;
		}
	}
	if (ehx_cert_load(tu_join(crt, sizeof(crt), dir, "broker/broker.crt"),
	    &broker_cert) != 0)
		return -1;
	return load_broker(&b, "data", 64 * MiB);
}

static int
teardown(void **state)
{
	(void)state;
	free_broker(&b);
	for (int i = 0; i < NSIGNERS; i++)
		ehx_signer_free(signers[i]);
	ehx_cert_free(broker_cert);
	tu_rmtree(dir);
	return 0;
}

/* ---- children ---------------------------------------------------------- */

/* A valid NHS number of its own for each n. */
static void
nhs_make(int n, char out[EHX_NHS_LEN + 1])
{
	for (long p = 600000000L + (long)n * 7919L;; p++) {
		int sum = 0, c;

		snprintf(out, EHX_NHS_LEN + 1, "%09ld0", p);
		for (int i = 0; i < 9; i++)
			sum += (out[i] - '0') * (10 - i);
		if ((c = 11 - sum % 11) == 11)
			c = 0;
		if (c == 10)
			continue;
		out[9] = (char)('0' + c);
		assert_true(ehx_nhs_valid(out));
		return;
	}
}

static void
child_of(const char *nhs, unsigned char out[EHX_PSEUDONYM_LEN])
{
	assert_int_equal(ehx_pseudonym(b.pkey, nhs, out), 0);
}

/* ---- requests --------------------------------------------------------------- */

struct msg {
	Ehx__Body body;
	Ehx__Person person;
	Ehx__PublishFlag pf;
	Ehx__Practitioner pr;
	Ehx__CloseFlag cf;
	Ehx__RecordConsent rc;
	Ehx__GivenBy gb;
	Ehx__ConsentScope scope;
	Ehx__AgencyType types[2];
	Ehx__Purpose purposes[1];
	Ehx__WithdrawConsent wc;
	Ehx__QueryPicture qp;
	Ehx__QueryConsent qc;
	unsigned char id[EHX_MSGID_LEN];
	char nhs[EHX_NHS_LEN + 1];
};

static void
msg_base(struct msg *m, const char *sender, const char *nhs, int role)
{
	memset(m, 0, sizeof(*m));
	ehx__body__init(&m->body);
	ehx__person__init(&m->person);
	assert_int_equal(ehx_random(m->id, sizeof(m->id)), 0);
	snprintf(m->nhs, sizeof(m->nhs), "%s", nhs);
	m->body.message_id.data = m->id;
	m->body.message_id.len = sizeof(m->id);
	m->body.sender = (char *)sender;
	m->body.recipient = "broker";
	m->body.sent_at = ehx_now_ms();
	m->person.user_id = "user-1";
	m->person.name = "Sam Jones";
	m->person.role = role;
	m->body.person = &m->person;
}

static void
msg_publish(struct msg *m, const char *sender, const char *nhs,
    const char *ref, unsigned level, int role)
{
	msg_base(m, sender, nhs, role);
	ehx__publish_flag__init(&m->pf);
	ehx__practitioner__init(&m->pr);
	m->pr.name = "Sam Jones";
	m->pr.role = "officer";
	m->pf.nhs_number = m->nhs;
	m->pf.ref = (char *)ref;
	m->pf.category = EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE;
	m->pf.level = level;
	m->pf.practitioner = &m->pr;
	m->pf.note = "flip-me-please";
	m->body.payload_case = EHX__BODY__PAYLOAD_PUBLISH_FLAG;
	m->body.publish_flag = &m->pf;
}

static void
msg_close(struct msg *m, const char *sender, const char *nhs, const char *ref)
{
	msg_base(m, sender, nhs, EHX__ROLE__ROLE_PRACTITIONER);
	ehx__close_flag__init(&m->cf);
	m->cf.nhs_number = m->nhs;
	m->cf.ref = (char *)ref;
	m->cf.reason = "no further concerns";
	m->body.payload_case = EHX__BODY__PAYLOAD_CLOSE_FLAG;
	m->body.close_flag = &m->cf;
}

static void
msg_consent(struct msg *m, const char *sender, const char *nhs, int type)
{
	msg_base(m, sender, nhs, EHX__ROLE__ROLE_PRACTITIONER);
	ehx__record_consent__init(&m->rc);
	ehx__given_by__init(&m->gb);
	ehx__consent_scope__init(&m->scope);
	m->gb.relation = EHX__RELATION__RELATION_PARENT;
	m->gb.name = "Pat Doe";
	m->types[0] = type;
	m->purposes[0] = EHX__PURPOSE__PURPOSE_WHOLE_PICTURE;
	m->scope.agency_types = m->types;
	m->scope.n_agency_types = 1;
	m->scope.purposes = m->purposes;
	m->scope.n_purposes = 1;
	m->rc.nhs_number = m->nhs;
	m->rc.given_by = &m->gb;
	m->rc.scope = &m->scope;
	m->rc.basis = EHX__LAWFUL_BASIS__LAWFUL_BASIS_CONSENT;
	m->rc.expires_at = ehx_now_ms() + 30 * DAY;
	m->rc.evidence_ref = "FORM-1";
	m->body.payload_case = EHX__BODY__PAYLOAD_RECORD_CONSENT;
	m->body.record_consent = &m->rc;
}

static void
msg_withdraw(struct msg *m, const char *sender, const char *nhs,
    const char *consent_id)
{
	msg_base(m, sender, nhs, EHX__ROLE__ROLE_INFORMATION_OFFICER);
	ehx__withdraw_consent__init(&m->wc);
	m->wc.nhs_number = m->nhs;
	m->wc.consent_id = (char *)consent_id;
	m->wc.reason = "the parent asked";
	m->wc.withdrawn_by = "Pat Doe";
	m->body.payload_case = EHX__BODY__PAYLOAD_WITHDRAW_CONSENT;
	m->body.withdraw_consent = &m->wc;
}

static void
msg_picture(struct msg *m, const char *sender, const char *nhs)
{
	msg_base(m, sender, nhs, EHX__ROLE__ROLE_PRACTITIONER);
	ehx__query_picture__init(&m->qp);
	m->qp.nhs_number = m->nhs;
	m->body.payload_case = EHX__BODY__PAYLOAD_QUERY_PICTURE;
	m->body.query_picture = &m->qp;
}

static void
msg_query_consent(struct msg *m, const char *sender, const char *nhs,
    int role)
{
	msg_base(m, sender, nhs, role);
	ehx__query_consent__init(&m->qc);
	m->qc.nhs_number = m->nhs;
	m->body.payload_case = EHX__BODY__PAYLOAD_QUERY_CONSENT;
	m->body.query_consent = &m->qc;
}

/* ---- replies ----------------------------------------------------------- */

struct reply {
	unsigned char *bytes;
	size_t len;
	Ehx__Envelope *env;
	Ehx__Body *body;
};

static void
reply_free(struct reply *r)
{
	ehx_body_free(r->body);
	ehx_envelope_free(r->env);
	free(r->bytes);
	memset(r, 0, sizeof(*r));
}

/*
 * Feed frame to the broker on conn's connection and open the reply as an
 * agent does: within the size limit, signed by the broker's certificate,
 * a valid Body from "broker" to conn, answering want_reply_to (or nothing).
 */
static void
process(struct broker *br, const char *conn, const void *frame, size_t len,
    const unsigned char *want_reply_to, struct reply *r)
{
	const struct agency *a = registry_by_id(&br->reg, conn);
	char why[128];

	memset(r, 0, sizeof(*r));
	assert_non_null(a);
	assert_int_equal(broker_process(br, a, frame, len, &r->bytes, &r->len),
	    0);
	assert_non_null(r->bytes);
	assert_true(r->len > 0 && r->len <= EHX_MAX_MESSAGE);
	assert_int_equal(ehx_envelope_decode(r->bytes, r->len, &r->env), 0);
	assert_memory_equal(r->env->signer.data, ehx_cert_fpr(broker_cert),
	    EHX_FPR_LEN);
	assert_int_equal(ehx_envelope_verify(r->env,
	    ehx_cert_pubkey(broker_cert)), 0);
	if (ehx_body_decode(r->env->body.data, r->env->body.len, &r->body, why,
	    sizeof(why)) != 0)
		fail_msg("the broker's reply does not decode: %s", why);
	assert_string_equal(r->body->sender, "broker");
	assert_string_equal(r->body->recipient, conn);
	assert_null(r->body->person);
	assert_false(ehx_payload_is_request(r->body->payload_case));
	if (want_reply_to != NULL) {
		assert_int_equal(r->body->in_reply_to.len, EHX_MSGID_LEN);
		assert_memory_equal(r->body->in_reply_to.data, want_reply_to,
		    EHX_MSGID_LEN);
		/* A reply has its own message id. */
		assert_memory_not_equal(r->body->message_id.data,
		    want_reply_to, EHX_MSGID_LEN);
	} else
		assert_int_equal(r->body->in_reply_to.len, 0);
}

/* Seal m with signer s and send it on conn's connection. */
static void
send_msg(int s, const char *conn, struct msg *m, struct reply *r)
{
	unsigned char *frame = NULL;
	size_t len = 0;

	assert_int_equal(ehx_envelope_seal(signers[s], &m->body, &frame, &len),
	    0);
	process(&b, conn, frame, len, m->id, r);
	free(frame);
}

static void
expect_error(const struct reply *r, int code)
{
	assert_int_equal(r->body->payload_case, EHX__BODY__PAYLOAD_ERROR);
	if ((int)r->body->error->code != ehx_err_to_wire(code))
		fail_msg("got %s (%s), want %s",
		    ehx_errname(ehx_err_from_wire(r->body->error->code)),
		    r->body->error->message, ehx_errname(code));
	assert_true(strlen(r->body->error->message) > 0);
}

static const Ehx__Ack *
expect_ack(const struct reply *r)
{
	if (r->body->payload_case == EHX__BODY__PAYLOAD_ERROR)
		fail_msg("refused: %s: %s",
		    ehx_errname(ehx_err_from_wire(r->body->error->code)),
		    r->body->error->message);
	assert_int_equal(r->body->payload_case, EHX__BODY__PAYLOAD_ACK);
	return r->body->ack;
}

/* ---- the store, as seen from outside ------------------------------------ */

struct counts {
	size_t flags, consent, audit, replay;
};

static struct counts
counts_of(struct broker *br)
{
	struct counts c;
	MDB_txn *txn;
	MDB_stat st;

	assert_int_equal(mdb_txn_begin(br->store.env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(mdb_stat(txn, br->store.flags, &st), 0);
	c.flags = st.ms_entries;
	assert_int_equal(mdb_stat(txn, br->store.consent, &st), 0);
	c.consent = st.ms_entries;
	assert_int_equal(mdb_stat(txn, br->store.audit, &st), 0);
	c.audit = st.ms_entries;
	assert_int_equal(mdb_stat(txn, br->store.replay, &st), 0);
	c.replay = st.ms_entries;
	mdb_txn_abort(txn);
	return c;
}

/* Nothing but one audit record changed since before. */
static void
expect_refusal_effects(struct broker *br, struct counts before)
{
	struct counts now = counts_of(br);

	assert_int_equal(now.flags, before.flags);
	assert_int_equal(now.consent, before.consent);
	assert_int_equal(now.audit, before.audit + 1);
}

/* The newest audit record, unpacked (free it). */
static Ehx__AuditRecord *
last_audit(struct broker *br)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	Ehx__AuditRecord *r;

	assert_int_equal(mdb_txn_begin(br->store.env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(mdb_cursor_open(txn, br->store.audit, &cur), 0);
	assert_int_equal(mdb_cursor_get(cur, &k, &v, MDB_LAST), 0);
	r = ehx__audit_record__unpack(NULL, v.mv_size, v.mv_data);
	assert_non_null(r);
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return r;
}

static void
expect_audit(struct broker *br, const char *agency, const char *action,
    int code, const unsigned char *msgid)
{
	Ehx__AuditRecord *r = last_audit(br);

	assert_string_equal(r->agency, agency);
	assert_string_equal(r->action, action);
	assert_int_equal(r->decision, code == 0 ? EHX__DECISION__DECISION_ALLOW :
	    EHX__DECISION__DECISION_DENY);
	assert_int_equal(r->error, code == 0 ? 0 : ehx_err_to_wire(code));
	if (msgid != NULL) {
		assert_int_equal(r->message_id.len, EHX_MSGID_LEN);
		assert_memory_equal(r->message_id.data, msgid, EHX_MSGID_LEN);
	}
	ehx__audit_record__free_unpacked(r, NULL);
}

/* Send m and expect code, with nothing but the audit record changed. */
static void
expect_refused(int s, const char *conn, struct msg *m, int code)
{
	struct counts before = counts_of(&b);
	struct reply r;

	send_msg(s, conn, m, &r);
	expect_error(&r, code);
	expect_refusal_effects(&b, before);
	reply_free(&r);
}

/* ---- tests ---------------------------------------------------------------- */

static void
test_publish_ack(void **state)
{
	struct msg m;
	struct reply r;
	struct counts before = counts_of(&b);
	char nhs[EHX_NHS_LEN + 1];
	unsigned char child[EHX_PSEUDONYM_LEN], key[STORE_KEY_MAX];
	const Ehx__Ack *ack;

	(void)state;
	nhs_make(1, nhs);
	msg_publish(&m, "police", nhs, "CASE-1", 3, EHX__ROLE__ROLE_PRACTITIONER);
	send_msg(POLICE, "police", &m, &r);
	ack = expect_ack(&r);
	assert_string_equal(ack->id, "CASE-1");
	assert_string_equal(ack->basis, "role:practitioner");
	{
		struct counts now = counts_of(&b);

		assert_int_equal(now.flags, before.flags + 1);
		assert_int_equal(now.consent, before.consent);
		assert_int_equal(now.audit, before.audit + 1);
		assert_int_equal(now.replay, before.replay + 1);
	}
	/* The flag is stored under child ‖ agency ‖ 0 ‖ ref. */
	child_of(nhs, child);
	{
		size_t klen = store_flag_key(key, child, "police", "CASE-1");
		MDB_val k = { klen, key }, v;
		MDB_txn *txn;
		Ehx__StoredFlag *sf;

		assert_int_equal(mdb_txn_begin(b.store.env, NULL, MDB_RDONLY,
		    &txn), 0);
		assert_int_equal(mdb_get(txn, b.store.flags, &k, &v), 0);
		sf = ehx__stored_flag__unpack(NULL, v.mv_size, v.mv_data);
		mdb_txn_abort(txn);
		assert_non_null(sf);
		assert_string_equal(sf->agency, "police");
		assert_int_equal(sf->agency_type,
		    EHX__AGENCY_TYPE__AGENCY_TYPE_POLICE);
		assert_string_equal(sf->flag->ref, "CASE-1");
		assert_int_equal(sf->flag->level, 3);
		assert_int_equal(sf->flag->status,
		    EHX__FLAG_STATUS__FLAG_STATUS_OPEN);
		assert_string_equal(sf->flag->note, "flip-me-please");
		assert_memory_equal(sf->source_message.data, m.id, EHX_MSGID_LEN);
		ehx__stored_flag__free_unpacked(sf, NULL);
	}
	/* And audited: who, what, which child, allowed, on what basis. */
	{
		Ehx__AuditRecord *a = last_audit(&b);

		assert_string_equal(a->agency, "police");
		assert_string_equal(a->action, "publish_flag");
		assert_int_equal(a->decision, EHX__DECISION__DECISION_ALLOW);
		assert_int_equal(a->error, 0);
		assert_string_equal(a->basis, "role:practitioner");
		assert_int_equal(a->child.len, EHX_PSEUDONYM_LEN);
		assert_memory_equal(a->child.data, child, EHX_PSEUDONYM_LEN);
		assert_memory_equal(a->message_id.data, m.id, EHX_MSGID_LEN);
		assert_non_null(a->person);
		assert_string_equal(a->person->user_id, "user-1");
		ehx__audit_record__free_unpacked(a, NULL);
	}
	reply_free(&r);
}

/*
 * Group commit (main.c's serving loop): requests decided in one batch see
 * each other's effects, nothing of them is visible (or durable) before the
 * batch commits, and a batch that never commits leaves no trace: the same
 * envelope sent again is decided afresh, and its error reply is signed.
 */
static void
test_group_commit(void **state)
{
	struct msg m1, m2, m3, m4;
	struct reply r;
	struct counts before = counts_of(&b), now;
	char nhs[EHX_NHS_LEN + 1];
	unsigned char *frame = NULL, *err = NULL;
	size_t len = 0, errlen = 0;
	uint64_t cp_before;
	const Ehx__Ack *ack;

	(void)state;
	nhs_make(71, nhs);
	assert_int_equal(broker_batch_begin(&b), 0);
	assert_non_null(b.batch);
	msg_publish(&m1, "police", nhs, "GC-1", 2, EHX__ROLE__ROLE_PRACTITIONER);
	send_msg(POLICE, "police", &m1, &r);
	ack = expect_ack(&r);
	assert_false(ack->unchanged);
	reply_free(&r);
	/* The same flag again, in the same batch: it sees the first. */
	msg_publish(&m2, "police", nhs, "GC-1", 2, EHX__ROLE__ROLE_PRACTITIONER);
	send_msg(POLICE, "police", &m2, &r);
	assert_true(expect_ack(&r)->unchanged);
	reply_free(&r);
	/* A refusal in the batch is audited in it and harms nothing else. */
	msg_publish(&m3, "police", nhs, "GC-3", 2, EHX__ROLE__ROLE_ADMIN);
	send_msg(POLICE, "police", &m3, &r);
	expect_error(&r, EHX_ERR_NOT_PERMITTED);
	reply_free(&r);
	/* Nothing is visible outside the batch before it commits. */
	now = counts_of(&b);
	assert_int_equal(now.flags, before.flags);
	assert_int_equal(now.audit, before.audit);
	assert_int_equal(now.replay, before.replay);
	assert_int_equal(broker_batch_commit(&b), 0);
	assert_null(b.batch);
	now = counts_of(&b);
	assert_int_equal(now.flags, before.flags + 1);
	assert_int_equal(now.audit, before.audit + 3);
	assert_int_equal(now.replay, before.replay + 3);  /* each decision */

	/* A batch that fails to commit (here: abandoned) stores nothing,
	 * and a checkpoint signed in it is forgotten. */
	before = now;
	cp_before = b.cp != NULL ? b.cp->size : 0;
	b.cfg.checkpoint_records = 1;
	assert_int_equal(broker_batch_begin(&b), 0);
	msg_publish(&m4, "police", nhs, "GC-4", 3, EHX__ROLE__ROLE_PRACTITIONER);
	assert_int_equal(ehx_envelope_seal(signers[POLICE], &m4.body, &frame,
	    &len), 0);
	process(&b, "police", frame, len, m4.id, &r);
	expect_ack(&r);
	reply_free(&r);
	assert_true(b.last_has_id);
	assert_memory_equal(b.last_id, m4.id, EHX_MSGID_LEN);
	/* Its reply carried a checkpoint signed in the batch... */
	assert_non_null(b.cp);
	assert_true(b.cp->size > cp_before);
	broker_batch_abandon(&b);
	assert_null(b.batch);
	/* ...which is gone with it: the one in force is the last stored. */
	assert_int_equal(b.cp != NULL ? b.cp->size : 0, cp_before);
	b.cfg.checkpoint_records = 1000;
	now = counts_of(&b);
	assert_int_equal(now.flags, before.flags);
	assert_int_equal(now.audit, before.audit);
	assert_int_equal(now.replay, before.replay);
	/* Its requester hears a signed error naming it... */
	assert_int_equal(broker_refuse(&b, registry_by_id(&b.reg, "police"),
	    m4.id, EHX_ERR_INTERNAL, &err, &errlen), 0);
	{
		Ehx__Envelope *e = NULL;
		Ehx__Body *eb = NULL;
		char why[128];

		assert_int_equal(ehx_envelope_decode(err, errlen, &e), 0);
		assert_int_equal(ehx_envelope_verify(e,
		    ehx_cert_pubkey(broker_cert)), 0);
		assert_int_equal(ehx_body_decode(e->body.data, e->body.len,
		    &eb, why, sizeof(why)), 0);
		assert_int_equal(eb->payload_case, EHX__BODY__PAYLOAD_ERROR);
		assert_int_equal(eb->error->code,
		    ehx_err_to_wire(EHX_ERR_INTERNAL));
		assert_memory_equal(eb->in_reply_to.data, m4.id, EHX_MSGID_LEN);
		ehx_body_free(eb);
		ehx_envelope_free(e);
	}
	free(err);
	/* ...and the same envelope again is decided afresh, not as a
	 * replay of a decision that was never stored. */
	process(&b, "police", frame, len, m4.id, &r);
	assert_false(expect_ack(&r)->unchanged);
	reply_free(&r);
	free(frame);
	now = counts_of(&b);
	assert_int_equal(now.flags, before.flags + 1);
	assert_int_equal(now.audit, before.audit + 1);
}

/*
 * A batch must fit the map when it commits: the broker counts what each
 * request may add (its evidence, the reply kept for a retry, notifications
 * and dirtied pages) against the room kept back, so that changes late in a
 * batch are refused storage_full rather than the whole batch failing at
 * commit. Here 90 audit exports (large replies, kept for retries) and then
 * 100 publishes go into one batch on an 8 MiB map.
 */
static void
test_group_commit_full(void **state)
{
	struct broker small;
	struct msg m;
	struct reply r;
	char nhs[EHX_NHS_LEN + 1], ref[32];
	unsigned char *frame = NULL;
	size_t len = 0, flags0;
	int acked = 0, full = 0;

	(void)state;
	assert_int_equal(load_broker(&small, "gc-full", 8 * MiB), 0);
	/* An audit log with envelopes in it, committed a request at a time.
	 * (Fifty flags a child: one agency may hold at most
	 * EHX_MAX_OPEN_FLAGS open on one child.) */
	for (int i = 0; i < 200; i++) {
		nhs_make(73 + i / 50, nhs);
		snprintf(ref, sizeof(ref), "PRE-%d", i);
		msg_publish(&m, "police", nhs, ref, 2,
		    EHX__ROLE__ROLE_PRACTITIONER);
		assert_int_equal(ehx_envelope_seal(signers[POLICE], &m.body,
		    &frame, &len), 0);
		process(&small, "police", frame, len, m.id, &r);
		free(frame);
		expect_ack(&r);
		reply_free(&r);
	}
	flags0 = counts_of(&small).flags;
	assert_int_equal(broker_batch_begin(&small), 0);
	for (int i = 0; i < 90; i++) {
		Ehx__ExportAudit ea = EHX__EXPORT_AUDIT__INIT;

		msg_base(&m, "health", nhs, EHX__ROLE__ROLE_IG_OFFICER);
		m.body.payload_case = EHX__BODY__PAYLOAD_EXPORT_AUDIT;
		m.body.export_audit = &ea;
		assert_int_equal(ehx_envelope_seal(signers[HEALTH], &m.body,
		    &frame, &len), 0);
		process(&small, "health", frame, len, m.id, &r);
		free(frame);
		reply_free(&r);
	}
	for (int i = 0; i < 100; i++) {
		nhs_make(80 + i / 50, nhs);
		snprintf(ref, sizeof(ref), "IN-BATCH-%d", i);
		msg_publish(&m, "police", nhs, ref, 2,
		    EHX__ROLE__ROLE_PRACTITIONER);
		assert_int_equal(ehx_envelope_seal(signers[POLICE], &m.body,
		    &frame, &len), 0);
		process(&small, "police", frame, len, m.id, &r);
		free(frame);
		if (r.body->payload_case == EHX__BODY__PAYLOAD_ACK)
			acked++;
		else {
			expect_error(&r, EHX_ERR_STORAGE_FULL);
			full++;
		}
		reply_free(&r);
	}
	/* Some changes were turned away, and what was accepted is stored. */
	assert_true(full > 0);
	assert_int_equal(broker_batch_commit(&small), 0);
	assert_int_equal(counts_of(&small).flags, flags0 + (size_t)acked);
	free_broker(&small);
}

static void
test_replay_different_body(void **state)
{
	struct msg m, m2;
	struct reply r;
	struct counts before;
	char nhs[EHX_NHS_LEN + 1];

	(void)state;
	nhs_make(2, nhs);
	msg_publish(&m, "police", nhs, "CASE-R1", 2, EHX__ROLE__ROLE_PRACTITIONER);
	send_msg(POLICE, "police", &m, &r);
	expect_ack(&r);
	reply_free(&r);
	/* The same message id with another body (another ref). */
	before = counts_of(&b);
	msg_publish(&m2, "police", nhs, "CASE-R2", 2,
	    EHX__ROLE__ROLE_PRACTITIONER);
	memcpy(m2.id, m.id, EHX_MSGID_LEN);
	send_msg(POLICE, "police", &m2, &r);
	expect_error(&r, EHX_ERR_REPLAY);
	expect_refusal_effects(&b, before);
	expect_audit(&b, "police", "publish_flag", EHX_ERR_REPLAY, m.id);
	reply_free(&r);
	/* Another agency may use the same id: ids are per sender. */
	msg_publish(&m2, "health", nhs, "H-1", 1, EHX__ROLE__ROLE_PRACTITIONER);
	memcpy(m2.id, m.id, EHX_MSGID_LEN);
	send_msg(HEALTH, "health", &m2, &r);
	expect_ack(&r);
	reply_free(&r);
}

static void
test_same_envelope_twice(void **state)
{
	struct msg m;
	struct reply r1, r2, r3;
	struct counts before, after1;
	unsigned char *frame = NULL;
	size_t len = 0;
	char nhs[EHX_NHS_LEN + 1];

	(void)state;
	nhs_make(3, nhs);
	msg_publish(&m, "police", nhs, "CASE-T", 2, EHX__ROLE__ROLE_PRACTITIONER);
	assert_int_equal(ehx_envelope_seal(signers[POLICE], &m.body, &frame,
	    &len), 0);
	before = counts_of(&b);
	process(&b, "police", frame, len, m.id, &r1);
	expect_ack(&r1);
	after1 = counts_of(&b);
	assert_int_equal(after1.flags, before.flags + 1);
	assert_int_equal(after1.audit, before.audit + 1);
	/* Again: the first reply, byte for byte, and no second effect. */
	process(&b, "police", frame, len, m.id, &r2);
	assert_int_equal(r2.len, r1.len);
	assert_memory_equal(r2.bytes, r1.bytes, r1.len);
	{
		struct counts now = counts_of(&b);

		assert_int_equal(now.flags, after1.flags);
		assert_int_equal(now.audit, after1.audit);
		assert_int_equal(now.replay, after1.replay);
	}
	/* Still so after other traffic in between. */
	{
		struct msg o;
		struct reply ro;

		msg_publish(&o, "police", nhs, "CASE-T2", 1,
		    EHX__ROLE__ROLE_PRACTITIONER);
		send_msg(POLICE, "police", &o, &ro);
		expect_ack(&ro);
		reply_free(&ro);
	}
	process(&b, "police", frame, len, m.id, &r3);
	assert_int_equal(r3.len, r1.len);
	assert_memory_equal(r3.bytes, r1.bytes, r1.len);
	assert_int_equal(counts_of(&b).audit, after1.audit + 1);
	reply_free(&r1);
	reply_free(&r2);
	reply_free(&r3);
	free(frame);
}

static void
test_wrong_sender(void **state)
{
	struct msg m;
	char nhs[EHX_NHS_LEN + 1];

	(void)state;
	nhs_make(4, nhs);
	/* Police's envelope on health's connection. */
	msg_publish(&m, "police", nhs, "CASE-W", 2, EHX__ROLE__ROLE_PRACTITIONER);
	expect_refused(POLICE, "health", &m, EHX_ERR_WRONG_SENDER);
	expect_audit(&b, "health", "publish_flag", EHX_ERR_WRONG_SENDER, m.id);
	/* Police signs, on its own connection, a body claiming health. */
	msg_publish(&m, "health", nhs, "CASE-W", 2, EHX__ROLE__ROLE_PRACTITIONER);
	expect_refused(POLICE, "police", &m, EHX_ERR_WRONG_SENDER);
	/* Health signs a body claiming police, on police's connection. */
	msg_publish(&m, "police", nhs, "CASE-W", 2, EHX__ROLE__ROLE_PRACTITIONER);
	expect_refused(HEALTH, "police", &m, EHX_ERR_WRONG_SENDER);
}

static void
test_wrong_recipient(void **state)
{
	struct msg m;
	char nhs[EHX_NHS_LEN + 1];

	(void)state;
	nhs_make(5, nhs);
	msg_publish(&m, "police", nhs, "CASE-X", 2, EHX__ROLE__ROLE_PRACTITIONER);
	m.body.recipient = "other-broker";
	expect_refused(POLICE, "police", &m, EHX_ERR_WRONG_RECIPIENT);
	m.body.recipient = "health";
	expect_refused(POLICE, "police", &m, EHX_ERR_WRONG_RECIPIENT);
}

static void
test_stale(void **state)
{
	struct msg m;
	char nhs[EHX_NHS_LEN + 1];

	(void)state;
	nhs_make(6, nhs);
	msg_publish(&m, "police", nhs, "CASE-S", 2, EHX__ROLE__ROLE_PRACTITIONER);
	m.body.sent_at = ehx_now_ms() - HOUR;
	expect_refused(POLICE, "police", &m, EHX_ERR_STALE);
	msg_publish(&m, "police", nhs, "CASE-S", 2, EHX__ROLE__ROLE_PRACTITIONER);
	m.body.sent_at = ehx_now_ms() + HOUR;
	expect_refused(POLICE, "police", &m, EHX_ERR_STALE);
	expect_audit(&b, "police", "publish_flag", EHX_ERR_STALE, m.id);
	/* A stale refusal is not remembered: the id can be used fresh. */
	m.body.sent_at = ehx_now_ms();
	{
		struct reply r;

		send_msg(POLICE, "police", &m, &r);
		expect_ack(&r);
		reply_free(&r);
	}
}

static void
test_unknown_certificate(void **state)
{
	struct msg m;
	char nhs[EHX_NHS_LEN + 1];

	(void)state;
	nhs_make(7, nhs);
	/* "police" under another CA: the same name, not the registered key. */
	msg_publish(&m, "police", nhs, "CASE-U", 2, EHX__ROLE__ROLE_PRACTITIONER);
	expect_refused(ROGUE, "police", &m, EHX_ERR_UNKNOWN_CERTIFICATE);
	expect_audit(&b, "police", "envelope", EHX_ERR_UNKNOWN_CERTIFICATE, NULL);
}

static void
test_certificate_dates(void **state)
{
	struct msg m;
	char nhs[EHX_NHS_LEN + 1];

	(void)state;
	nhs_make(8, nhs);
	msg_publish(&m, "old", nhs, "CASE-O", 2, EHX__ROLE__ROLE_PRACTITIONER);
	expect_refused(OLD, "old", &m, EHX_ERR_CERTIFICATE_EXPIRED);
	msg_publish(&m, "future", nhs, "CASE-F", 2, EHX__ROLE__ROLE_PRACTITIONER);
	expect_refused(FUTURE, "future", &m, EHX_ERR_CERTIFICATE_NOT_YET_VALID);
}

static void
test_bad_signature(void **state)
{
	struct msg m;
	struct reply r;
	struct counts before;
	unsigned char *frame = NULL, *out;
	size_t len = 0, n;
	Ehx__Envelope *e = NULL;
	char nhs[EHX_NHS_LEN + 1];
	uint8_t *p;

	(void)state;
	nhs_make(9, nhs);
	msg_publish(&m, "police", nhs, "CASE-B", 2, EHX__ROLE__ROLE_PRACTITIONER);
	assert_int_equal(ehx_envelope_seal(signers[POLICE], &m.body, &frame,
	    &len), 0);
	assert_int_equal(ehx_envelope_decode(frame, len, &e), 0);
	/* One byte of the note changes: the Body still decodes. */
	p = memmem(e->body.data, e->body.len, "flip-me", 7);
	assert_non_null(p);
	p[0] = 'g';
	n = ehx__envelope__get_packed_size(e);
	out = malloc(n);
	ehx__envelope__pack(e, out);
	before = counts_of(&b);
	process(&b, "police", out, n, m.id, &r);
	expect_error(&r, EHX_ERR_BAD_SIGNATURE);
	expect_refusal_effects(&b, before);
	expect_audit(&b, "police", "envelope", EHX_ERR_BAD_SIGNATURE, NULL);
	reply_free(&r);
	/* A flipped signature bit too. */
	p[0] = 'f';
	e->signature.data[0] ^= 0x20;
	ehx__envelope__pack(e, out);
	before = counts_of(&b);
	process(&b, "police", out, n, m.id, &r);
	expect_error(&r, EHX_ERR_BAD_SIGNATURE);
	expect_refusal_effects(&b, before);
	reply_free(&r);
	/* Restored, it is accepted. */
	e->signature.data[0] ^= 0x20;
	ehx__envelope__pack(e, out);
	process(&b, "police", out, n, m.id, &r);
	expect_ack(&r);
	reply_free(&r);
	free(out);
	ehx_envelope_free(e);
	free(frame);
}

static void
test_frames(void **state)
{
	static const unsigned char junk[] = { 0xff, 0xff, 0xff, 0xff, 0xff,
	    0xff, 0xff, 0xff, 0xff, 0xff, 0x01 };
	struct counts before;
	struct reply r;
	unsigned char *big;

	(void)state;
	/* Too large: refused before decoding, with no id to answer. */
	big = calloc(1, EHX_MAX_MESSAGE + 1);
	before = counts_of(&b);
	process(&b, "police", big, EHX_MAX_MESSAGE + 1, NULL, &r);
	expect_error(&r, EHX_ERR_TOO_LARGE);
	expect_refusal_effects(&b, before);
	expect_audit(&b, "police", "envelope", EHX_ERR_TOO_LARGE, NULL);
	reply_free(&r);
	free(big);
	/* Junk and nothing. */
	before = counts_of(&b);
	process(&b, "police", junk, sizeof(junk), NULL, &r);
	expect_error(&r, EHX_ERR_MALFORMED);
	expect_refusal_effects(&b, before);
	reply_free(&r);
	before = counts_of(&b);
	process(&b, "health", "", 0, NULL, &r);
	expect_error(&r, EHX_ERR_MALFORMED);
	expect_refusal_effects(&b, before);
	expect_audit(&b, "health", "envelope", EHX_ERR_MALFORMED, NULL);
	reply_free(&r);
}

static void
test_bad_version(void **state)
{
	struct msg m;
	struct counts before;
	struct reply r;
	unsigned char *frame = NULL, *out;
	size_t len = 0, n;
	Ehx__Envelope *e = NULL;
	char nhs[EHX_NHS_LEN + 1];

	(void)state;
	nhs_make(10, nhs);
	msg_publish(&m, "police", nhs, "CASE-V", 2, EHX__ROLE__ROLE_PRACTITIONER);
	assert_int_equal(ehx_envelope_seal(signers[POLICE], &m.body, &frame,
	    &len), 0);
	assert_int_equal(ehx_envelope_decode(frame, len, &e), 0);
	e->version = 2;
	n = ehx__envelope__get_packed_size(e);
	out = malloc(n);
	ehx__envelope__pack(e, out);
	before = counts_of(&b);
	process(&b, "police", out, n, NULL, &r);
	expect_error(&r, EHX_ERR_BAD_VERSION);
	expect_refusal_effects(&b, before);
	reply_free(&r);
	free(out);
	ehx_envelope_free(e);
	free(frame);
}

/* A Body that is signed correctly but breaks the Body rules. */
static void
test_signed_malformed_body(void **state)
{
	struct msg m;
	struct counts before;
	struct reply r;
	unsigned char *body, *frame = NULL;
	size_t blen, len = 0;
	char nhs[EHX_NHS_LEN + 1];

	(void)state;
	nhs_make(11, nhs);
	msg_publish(&m, "police", nhs, "CASE-M", 2, EHX__ROLE__ROLE_PRACTITIONER);
	m.body.in_reply_to.data = m.id;
	m.body.in_reply_to.len = 5;
	blen = ehx__body__get_packed_size(&m.body);
	body = malloc(blen);
	ehx__body__pack(&m.body, body);
	assert_int_equal(ehx_envelope_seal_bytes(signers[POLICE], body, blen,
	    &frame, &len), 0);
	before = counts_of(&b);
	/* Refused, but the reply still names the request by its id. */
	process(&b, "police", frame, len, m.id, &r);
	expect_error(&r, EHX_ERR_MALFORMED);
	assert_non_null(strstr(r.body->error->message, "in_reply_to"));
	expect_refusal_effects(&b, before);
	reply_free(&r);
	free(frame);
	free(body);
	/* A reply payload sent as a request. */
	{
		Ehx__Ack ack = EHX__ACK__INIT;

		msg_base(&m, "police", nhs, EHX__ROLE__ROLE_PRACTITIONER);
		ack.id = "x";
		m.body.payload_case = EHX__BODY__PAYLOAD_ACK;
		m.body.ack = &ack;
		expect_refused(POLICE, "police", &m, EHX_ERR_MALFORMED);
	}
}

static void
test_invalid_fields(void **state)
{
	struct msg m;
	char nhs[EHX_NHS_LEN + 1];

	(void)state;
	nhs_make(12, nhs);
	msg_publish(&m, "police", "9434765918", "CASE-N", 2,
	    EHX__ROLE__ROLE_PRACTITIONER);
	expect_refused(POLICE, "police", &m, EHX_ERR_INVALID_NHS_NUMBER);
	expect_audit(&b, "police", "publish_flag", EHX_ERR_INVALID_NHS_NUMBER,
	    m.id);
	msg_publish(&m, "police", nhs, "CASE N", 2, EHX__ROLE__ROLE_PRACTITIONER);
	expect_refused(POLICE, "police", &m, EHX_ERR_INVALID_FIELD);
	msg_publish(&m, "police", nhs, "CASE-N", 9, EHX__ROLE__ROLE_PRACTITIONER);
	expect_refused(POLICE, "police", &m, EHX_ERR_INVALID_FIELD);
	/* The acting person must be there and valid. */
	msg_publish(&m, "police", nhs, "CASE-N", 2, EHX__ROLE__ROLE_PRACTITIONER);
	m.body.person = NULL;
	expect_refused(POLICE, "police", &m, EHX_ERR_INVALID_FIELD);
	msg_publish(&m, "police", nhs, "CASE-N", 2, 0);
	expect_refused(POLICE, "police", &m, EHX_ERR_INVALID_FIELD);
	msg_publish(&m, "police", nhs, "CASE-N", 2, 6);
	expect_refused(POLICE, "police", &m, EHX_ERR_INVALID_FIELD);
	msg_publish(&m, "police", nhs, "CASE-N", 2, EHX__ROLE__ROLE_PRACTITIONER);
	m.person.user_id = "";
	expect_refused(POLICE, "police", &m, EHX_ERR_INVALID_FIELD);
}

static void
test_not_permitted(void **state)
{
	struct msg m;
	char nhs[EHX_NHS_LEN + 1];

	(void)state;
	nhs_make(13, nhs);
	msg_publish(&m, "police", nhs, "CASE-P", 2, EHX__ROLE__ROLE_IG_OFFICER);
	expect_refused(POLICE, "police", &m, EHX_ERR_NOT_PERMITTED);
	expect_audit(&b, "police", "publish_flag", EHX_ERR_NOT_PERMITTED, m.id);
	msg_publish(&m, "police", nhs, "CASE-P", 2, EHX__ROLE__ROLE_ADMIN);
	expect_refused(POLICE, "police", &m, EHX_ERR_NOT_PERMITTED);
	msg_publish(&m, "police", nhs, "CASE-P", 2,
	    EHX__ROLE__ROLE_INFORMATION_OFFICER);
	expect_refused(POLICE, "police", &m, EHX_ERR_NOT_PERMITTED);
	/* The case system may not look at a picture. */
	msg_picture(&m, "police", nhs);
	m.person.role = EHX__ROLE__ROLE_SYSTEM;
	expect_refused(POLICE, "police", &m, EHX_ERR_NOT_PERMITTED);
	/* The role is checked before the fields. */
	msg_publish(&m, "police", "9434765918", "CASE-P", 2,
	    EHX__ROLE__ROLE_IG_OFFICER);
	expect_refused(POLICE, "police", &m, EHX_ERR_NOT_PERMITTED);
}

/* No consent: the same answer whether or not any agency holds a flag. */
static void
test_no_consent_same_answer(void **state)
{
	struct msg m;
	struct reply with, without;
	struct counts before;
	char flagged[EHX_NHS_LEN + 1], clean[EHX_NHS_LEN + 1];

	(void)state;
	nhs_make(14, flagged);
	nhs_make(15, clean);
	msg_publish(&m, "police", flagged, "CASE-C", 4,
	    EHX__ROLE__ROLE_PRACTITIONER);
	send_msg(POLICE, "police", &m, &with);
	expect_ack(&with);
	reply_free(&with);

	before = counts_of(&b);
	msg_picture(&m, "health", flagged);
	send_msg(HEALTH, "health", &m, &with);
	expect_error(&with, EHX_ERR_NO_CONSENT);
	expect_refusal_effects(&b, before);
	expect_audit(&b, "health", "query_picture", EHX_ERR_NO_CONSENT, m.id);
	before = counts_of(&b);
	msg_picture(&m, "health", clean);
	send_msg(HEALTH, "health", &m, &without);
	expect_error(&without, EHX_ERR_NO_CONSENT);
	expect_refusal_effects(&b, before);
	/* The same payload, field for field and byte for byte. */
	assert_int_equal(with.body->error->code, without.body->error->code);
	assert_string_equal(with.body->error->message,
	    without.body->error->message);
	{
		size_t n1 = ehx__error__get_packed_size(with.body->error);
		size_t n2 = ehx__error__get_packed_size(without.body->error);
		unsigned char p1[512], p2[512];

		assert_int_equal(n1, n2);
		assert_true(n1 <= sizeof(p1));
		ehx__error__pack(with.body->error, p1);
		ehx__error__pack(without.body->error, p2);
		assert_memory_equal(p1, p2, n1);
	}
	/* And the flagging agency itself gets no picture without consent. */
	msg_picture(&m, "police", flagged);
	expect_refused(POLICE, "police", &m, EHX_ERR_NO_CONSENT);
	reply_free(&with);
	reply_free(&without);
}

static void
test_consent_flow(void **state)
{
	struct msg m;
	struct reply r;
	struct counts before;
	char nhs[EHX_NHS_LEN + 1], consent_id[32];
	unsigned char child[EHX_PSEUDONYM_LEN];
	const Ehx__Ack *ack;

	(void)state;
	nhs_make(16, nhs);
	child_of(nhs, child);
	msg_publish(&m, "police", nhs, "CASE-1", 3, EHX__ROLE__ROLE_PRACTITIONER);
	send_msg(POLICE, "police", &m, &r);
	expect_ack(&r);
	reply_free(&r);
	msg_publish(&m, "school", nhs, "SCH-9", 2, EHX__ROLE__ROLE_SYSTEM);
	send_msg(SCHOOL, "school", &m, &r);
	expect_ack(&r);
	reply_free(&r);
	msg_picture(&m, "health", nhs);
	expect_refused(HEALTH, "health", &m, EHX_ERR_NO_CONSENT);

	/* Police records the parent's consent for health, by its id (a
	 * type would cover health only with a flag on the child). */
	before = counts_of(&b);
	msg_consent(&m, "police", nhs, EHX__AGENCY_TYPE__AGENCY_TYPE_HEALTH);
	m.scope.n_agency_types = 0;
	m.scope.agencies = (char *[]){ "health" };
	m.scope.n_agencies = 1;
	send_msg(POLICE, "police", &m, &r);
	ack = expect_ack(&r);
	assert_int_equal(strlen(ack->id), 18);
	assert_true(strncmp(ack->id, "c-", 2) == 0);
	assert_int_equal(strspn(ack->id + 2, "0123456789abcdef"), 16);
	snprintf(consent_id, sizeof(consent_id), "%s", ack->id);
	{
		char basis[64];

		snprintf(basis, sizeof(basis), "consent:%s", consent_id);
		assert_string_equal(ack->basis, basis);
	}
	reply_free(&r);
	{
		struct counts now = counts_of(&b);

		assert_int_equal(now.consent, before.consent + 1);
		assert_int_equal(now.flags, before.flags);
		assert_int_equal(now.audit, before.audit + 1);
	}

	/* Health now sees the whole picture. */
	before = counts_of(&b);
	msg_picture(&m, "health", nhs);
	send_msg(HEALTH, "health", &m, &r);
	assert_int_equal(r.body->payload_case, EHX__BODY__PAYLOAD_PICTURE);
	{
		const Ehx__PictureResult *p = r.body->picture;
		int seen_police = 0, seen_school = 0;

		assert_int_equal(p->child.len, EHX_PSEUDONYM_LEN);
		assert_memory_equal(p->child.data, child, EHX_PSEUDONYM_LEN);
		assert_string_equal(p->consent_id, consent_id);
		assert_int_equal(p->highest_open_level, 3);
		assert_false(p->truncated);
		assert_int_equal(p->n_involvements, 2);
		for (size_t i = 0; i < p->n_involvements; i++) {
			const Ehx__AgencyInvolvement *inv = p->involvements[i];

			assert_int_equal(inv->n_flags, 1);
			if (strcmp(inv->agency, "police") == 0) {
				seen_police++;
				assert_int_equal(inv->agency_type,
				    EHX__AGENCY_TYPE__AGENCY_TYPE_POLICE);
				assert_string_equal(inv->flags[0]->ref, "CASE-1");
				assert_int_equal(inv->flags[0]->status,
				    EHX__FLAG_STATUS__FLAG_STATUS_OPEN);
			} else if (strcmp(inv->agency, "school") == 0) {
				seen_school++;
				assert_string_equal(inv->flags[0]->ref, "SCH-9");
			}
		}
		assert_int_equal(seen_police, 1);
		assert_int_equal(seen_school, 1);
	}
	reply_free(&r);
	{
		struct counts now = counts_of(&b);

		assert_int_equal(now.flags, before.flags);
		assert_int_equal(now.consent, before.consent);
		assert_int_equal(now.audit, before.audit + 1);
	}
	{
		Ehx__AuditRecord *a = last_audit(&b);
		char basis[64];

		snprintf(basis, sizeof(basis), "consent:%s", consent_id);
		assert_string_equal(a->basis, basis);
		assert_string_equal(a->consent_id, consent_id);
		assert_int_equal(a->envelope_hash.len, 32);
		assert_int_equal(a->decision, EHX__DECISION__DECISION_ALLOW);
		ehx__audit_record__free_unpacked(a, NULL);
	}

	/* The scope names health: the school is not covered. */
	msg_picture(&m, "school", nhs);
	expect_refused(SCHOOL, "school", &m, EHX_ERR_NO_CONSENT);

	/* Police closes its flag: health sees it closed, level from school. */
	msg_close(&m, "police", nhs, "CASE-1");
	send_msg(POLICE, "police", &m, &r);
	expect_ack(&r);
	reply_free(&r);
	msg_picture(&m, "health", nhs);
	send_msg(HEALTH, "health", &m, &r);
	assert_int_equal(r.body->payload_case, EHX__BODY__PAYLOAD_PICTURE);
	assert_int_equal(r.body->picture->highest_open_level, 2);
	for (size_t i = 0; i < r.body->picture->n_involvements; i++)
		if (strcmp(r.body->picture->involvements[i]->agency,
		    "police") == 0) {
			const Ehx__FlagView *f =
			    r.body->picture->involvements[i]->flags[0];

			assert_int_equal(f->status,
			    EHX__FLAG_STATUS__FLAG_STATUS_CLOSED);
			assert_true(f->closed_at > 0);
			/* docs/sharing-policy.ini shows health no police
			 * notes, and the close reason is one. */
			assert_string_equal(f->close_reason, "");
		}
	reply_free(&r);

	/* The consent record, as health sees it. */
	msg_query_consent(&m, "health", nhs, EHX__ROLE__ROLE_IG_OFFICER);
	send_msg(HEALTH, "health", &m, &r);
	assert_int_equal(r.body->payload_case, EHX__BODY__PAYLOAD_CONSENT);
	assert_int_equal(r.body->consent->n_records, 1);
	assert_string_equal(r.body->consent->records[0]->id, consent_id);
	assert_string_equal(r.body->consent->records[0]->recorded_by_agency,
	    "police");
	assert_int_equal(r.body->consent->records[0]->withdrawn_at, 0);
	reply_free(&r);

	/* The school is not concerned: to it the consent does not exist. */
	msg_withdraw(&m, "school", nhs, consent_id);
	expect_refused(SCHOOL, "school", &m, EHX_ERR_NOT_FOUND);
	msg_picture(&m, "health", nhs);
	send_msg(HEALTH, "health", &m, &r);
	assert_int_equal(r.body->payload_case, EHX__BODY__PAYLOAD_PICTURE);
	reply_free(&r);

	/* Health withdraws it: recorded, not deleted. */
	before = counts_of(&b);
	msg_withdraw(&m, "health", nhs, consent_id);
	send_msg(HEALTH, "health", &m, &r);
	ack = expect_ack(&r);
	assert_string_equal(ack->id, consent_id);
	reply_free(&r);
	{
		struct counts now = counts_of(&b);

		/* Append-only: the withdrawal is a new entry beside the
		 * record, which stays as it was recorded. */
		assert_int_equal(now.consent, before.consent + 1);
		assert_int_equal(now.audit, before.audit + 1);
	}
	/* Withdrawing again changes nothing stored. */
	before = counts_of(&b);
	msg_withdraw(&m, "health", nhs, consent_id);
	send_msg(HEALTH, "health", &m, &r);
	expect_ack(&r);
	reply_free(&r);
	assert_int_equal(counts_of(&b).consent, before.consent);
	/* The history: recorded, then withdrawn, by whom and why. */
	msg_query_consent(&m, "health", nhs, EHX__ROLE__ROLE_IG_OFFICER);
	m.qc.history = true;
	send_msg(HEALTH, "health", &m, &r);
	if (r.body->payload_case == EHX__BODY__PAYLOAD_ERROR)
		fail_msg("history: %s", r.body->error->message);
	assert_int_equal(r.body->consent->n_history, 2);
	assert_int_equal(r.body->consent->history[0]->state,
	    EHX__CONSENT_STATE__CONSENT_STATE_RECORDED);
	assert_string_equal(r.body->consent->history[0]->agency, "police");
	assert_int_equal(r.body->consent->history[1]->state,
	    EHX__CONSENT_STATE__CONSENT_STATE_WITHDRAWN);
	assert_string_equal(r.body->consent->history[1]->agency, "health");
	assert_string_equal(r.body->consent->history[1]->reason,
	    "the parent asked");
	assert_string_equal(r.body->consent->history[1]->by, "Pat Doe");
	assert_true(r.body->consent->history[1]->at >=
	    r.body->consent->history[0]->at);
	reply_free(&r);
	/* And the picture is closed to health again. */
	msg_picture(&m, "health", nhs);
	expect_refused(HEALTH, "health", &m, EHX_ERR_NO_CONSENT);
	msg_query_consent(&m, "health", nhs, EHX__ROLE__ROLE_IG_OFFICER);
	send_msg(HEALTH, "health", &m, &r);
	assert_int_equal(r.body->consent->n_records, 1);
	assert_true(r.body->consent->records[0]->withdrawn_at > 0);
	assert_string_equal(r.body->consent->records[0]->withdrawn_by_agency,
	    "health");
	reply_free(&r);
	/* Withdrawing a consent the child does not have. */
	msg_withdraw(&m, "health", nhs, "c-0000000000000000");
	expect_refused(HEALTH, "health", &m, EHX_ERR_NOT_FOUND);
}

static void
test_close_unknown(void **state)
{
	struct msg m;
	char nhs[EHX_NHS_LEN + 1];

	(void)state;
	nhs_make(17, nhs);
	msg_close(&m, "police", nhs, "NO-SUCH-REF");
	expect_refused(POLICE, "police", &m, EHX_ERR_NOT_FOUND);
	expect_audit(&b, "police", "close_flag", EHX_ERR_NOT_FOUND, m.id);
	/* Another agency's flag is not one's own to close. */
	{
		struct reply r;

		msg_publish(&m, "police", nhs, "MINE", 2,
		    EHX__ROLE__ROLE_PRACTITIONER);
		send_msg(POLICE, "police", &m, &r);
		expect_ack(&r);
		reply_free(&r);
	}
	msg_close(&m, "health", nhs, "MINE");
	expect_refused(HEALTH, "health", &m, EHX_ERR_NOT_FOUND);
}

/* A refusal after the freshness checks is remembered like an answer. */
static void
test_refusal_replayed(void **state)
{
	struct msg m;
	struct reply r1, r2;
	unsigned char *frame = NULL;
	size_t len = 0;
	char nhs[EHX_NHS_LEN + 1];
	struct counts before;

	(void)state;
	nhs_make(18, nhs);
	msg_publish(&m, "police", nhs, "CASE-Q", 2, EHX__ROLE__ROLE_IG_OFFICER);
	assert_int_equal(ehx_envelope_seal(signers[POLICE], &m.body, &frame,
	    &len), 0);
	process(&b, "police", frame, len, m.id, &r1);
	expect_error(&r1, EHX_ERR_NOT_PERMITTED);
	before = counts_of(&b);
	process(&b, "police", frame, len, m.id, &r2);
	assert_int_equal(r2.len, r1.len);
	assert_memory_equal(r2.bytes, r1.bytes, r1.len);
	assert_int_equal(counts_of(&b).audit, before.audit);
	reply_free(&r1);
	reply_free(&r2);
	free(frame);
}

/* A broker whose map fills up answers STORAGE_FULL and keeps nothing. */
static void
test_storage_full(void **state)
{
	struct broker small;
	struct msg m;
	struct reply r;
	struct counts before;
	char nhs[EHX_NHS_LEN + 1], ref[32];
	unsigned char *frame = NULL;
	size_t len = 0;
	int i, full = 0;

	(void)state;
	assert_int_equal(load_broker(&small, "small-data", 256 * 1024), 0);
	nhs_make(19, nhs);
	for (i = 0; i < 5000 && !full; i++) {
		snprintf(ref, sizeof(ref), "REF-%d", i);
		msg_publish(&m, "police", nhs, ref, 2,
		    EHX__ROLE__ROLE_PRACTITIONER);
		assert_int_equal(ehx_envelope_seal(signers[POLICE], &m.body,
		    &frame, &len), 0);
		before = counts_of(&small);
		process(&small, "police", frame, len, m.id, &r);
		free(frame);
		if (r.body->payload_case == EHX__BODY__PAYLOAD_ACK) {
			reply_free(&r);
			continue;
		}
		expect_error(&r, EHX_ERR_STORAGE_FULL);
		full = 1;
		reply_free(&r);
		/* Nothing of it was kept: no flag, no replay entry. */
		{
			struct counts now = counts_of(&small);

			assert_int_equal(now.flags, before.flags);
			assert_int_equal(now.consent, before.consent);
			assert_int_equal(now.replay, before.replay);
			assert_true(now.audit <= before.audit + 1);
		}
	}
	assert_true(full);
	assert_true(i > 10);
	/* The store is still readable, and a query gets an answer. */
	msg_picture(&m, "health", nhs);
	{
		unsigned char *f = NULL;
		size_t fl = 0;

		assert_int_equal(ehx_envelope_seal(signers[HEALTH], &m.body, &f,
		    &fl), 0);
		process(&small, "health", f, fl, m.id, &r);
		assert_int_equal(r.body->payload_case, EHX__BODY__PAYLOAD_ERROR);
		reply_free(&r);
		free(f);
	}
	assert_true(counts_of(&small).flags >= 10);
	free_broker(&small);
}

/* A retry of the very same envelope gets its stored reply even after its
 * send time has left the window; anything else that old is stale. */
static void
test_retry_after_window(void **state)
{
	struct msg m, m2;
	struct reply r1, r2;
	struct counts before;
	unsigned char *frame = NULL;
	size_t len = 0;
	char nhs[EHX_NHS_LEN + 1];

	(void)state;
	nhs_make(22, nhs);
	msg_publish(&m, "police", nhs, "CASE-RW", 2,
	    EHX__ROLE__ROLE_PRACTITIONER);
	m.body.sent_at = ehx_now_ms() - 60 * 1000;
	assert_int_equal(ehx_envelope_seal(signers[POLICE], &m.body, &frame,
	    &len), 0);
	process(&b, "police", frame, len, m.id, &r1);
	expect_ack(&r1);
	/* The window shrinks to 10 s: the send time is now outside it. */
	b.cfg.skew_ms = 10 * 1000;
	before = counts_of(&b);
	process(&b, "police", frame, len, m.id, &r2);
	assert_int_equal(r2.len, r1.len);
	assert_memory_equal(r2.bytes, r1.bytes, r1.len);
	{
		struct counts now = counts_of(&b);

		assert_int_equal(now.flags, before.flags);
		assert_int_equal(now.audit, before.audit);
	}
	reply_free(&r2);
	/* The same id with another body, as old: stale (checked first). */
	msg_publish(&m2, "police", nhs, "CASE-RW2", 2,
	    EHX__ROLE__ROLE_PRACTITIONER);
	memcpy(m2.id, m.id, EHX_MSGID_LEN);
	m2.body.sent_at = m.body.sent_at;
	expect_refused(POLICE, "police", &m2, EHX_ERR_STALE);
	/* A new message as old: stale. */
	msg_publish(&m2, "police", nhs, "CASE-RW3", 2,
	    EHX__ROLE__ROLE_PRACTITIONER);
	m2.body.sent_at = m.body.sent_at;
	expect_refused(POLICE, "police", &m2, EHX_ERR_STALE);
	b.cfg.skew_ms = 300 * 1000;
	reply_free(&r1);
	free(frame);
}

/* More flags than one answer holds: cut and marked, but the highest open
 * level of need still counts every flag. */
static void
test_picture_truncated(void **state)
{
	struct msg m;
	struct reply r;
	char nhs[EHX_NHS_LEN + 1], ref[16];
	size_t shown = 0;
	const int nflags = EHX_MAX_PICTURE_FLAGS + 2;

	(void)state;
	nhs_make(23, nhs);
	for (int i = 0; i < nflags; i++) {
		/* Health's own two, then police's and school's, at most
		 * EHX_MAX_OPEN_FLAGS each: keys sort by agency, then ref, so
		 * the last (school's), not shown, is the acute one. */
		int s = i < 2 ? HEALTH : i < 2 + EHX_MAX_OPEN_FLAGS ? POLICE :
		    SCHOOL;

		snprintf(ref, sizeof(ref), "R-%03d", i);
		msg_publish(&m, signer_ids[s], nhs, ref, i == nflags - 1 ? 4 :
		    1, EHX__ROLE__ROLE_PRACTITIONER);
		send_msg(s, signer_ids[s], &m, &r);
		expect_ack(&r);
		reply_free(&r);
	}
	msg_consent(&m, "police", nhs, EHX__AGENCY_TYPE__AGENCY_TYPE_HEALTH);
	send_msg(POLICE, "police", &m, &r);
	expect_ack(&r);
	reply_free(&r);
	msg_picture(&m, "health", nhs);
	send_msg(HEALTH, "health", &m, &r);
	assert_int_equal(r.body->payload_case, EHX__BODY__PAYLOAD_PICTURE);
	assert_true(r.body->picture->truncated);
	for (size_t i = 0; i < r.body->picture->n_involvements; i++)
		shown += r.body->picture->involvements[i]->n_flags;
	assert_int_equal(shown, EHX_MAX_PICTURE_FLAGS);
	assert_int_equal(r.body->picture->highest_open_level, 4);
	reply_free(&r);
}

/* Send m; expect code (the Body was refused before its message id
 * counted, though the reply names it), and nothing but one audit record
 * changed. */
static void
expect_refused_body(int s, const char *conn, struct msg *m, int code)
{
	struct counts before = counts_of(&b);
	unsigned char *frame = NULL;
	size_t len = 0;
	struct reply r;

	assert_int_equal(ehx_envelope_seal(signers[s], &m->body, &frame, &len),
	    0);
	/* The refusal still names the request it answers. */
	process(&b, conn, frame, len, m->id, &r);
	expect_error(&r, code);
	expect_refusal_effects(&b, before);
	reply_free(&r);
	free(frame);
}

/* A Body carrying fields the schema does not define is refused whole. */
static void
test_unknown_fields(void **state)
{
	struct msg m;
	ProtobufCMessageUnknownField uf;
	uint8_t val = 1;
	char nhs[EHX_NHS_LEN + 1];

	(void)state;
	nhs_make(24, nhs);
	memset(&uf, 0, sizeof(uf));
	uf.tag = 99;
	uf.wire_type = PROTOBUF_C_WIRE_TYPE_VARINT;
	uf.len = 1;
	uf.data = &val;
	msg_publish(&m, "police", nhs, "CASE-UF", 2,
	    EHX__ROLE__ROLE_PRACTITIONER);
	m.pr.base.n_unknown_fields = 1;         /* deep inside the payload */
	m.pr.base.unknown_fields = &uf;
	expect_refused_body(POLICE, "police", &m, EHX_ERR_MALFORMED);
	msg_publish(&m, "police", nhs, "CASE-UF", 2,
	    EHX__ROLE__ROLE_PRACTITIONER);
	m.body.base.n_unknown_fields = 1;       /* at the top */
	m.body.base.unknown_fields = &uf;
	expect_refused_body(POLICE, "police", &m, EHX_ERR_MALFORMED);
	expect_audit(&b, "police", "envelope", EHX_ERR_MALFORMED, NULL);
	/* Without them, the same request is fine. */
	{
		struct reply r;

		msg_publish(&m, "police", nhs, "CASE-UF", 2,
		    EHX__ROLE__ROLE_PRACTITIONER);
		send_msg(POLICE, "police", &m, &r);
		expect_ack(&r);
		reply_free(&r);
	}
}

/* After a storage error (not a full map) the broker refuses all work. */
/*
 * A person that was never checked (issue 16, finding 6). Refused for it,
 * a request is audited with its person bounded and escaped; and a record
 * a store already holds with such a person as sent (a 62,000-byte name
 * with control characters and bytes that are not UTF-8, as the audit kept
 * before) is answered bounded and escaped too, so a search pages past it.
 */
static bool
printable_ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s < 0x20 || *s > 0x7e)
			return false;
	return true;
}

static void
test_audit_unchecked_person(void **state)
{
	static char big[62001];
	Ehx__AuditRecord rec = EHX__AUDIT_RECORD__INIT, *last;
	Ehx__Person legacy = EHX__PERSON__INIT;
	Ehx__QueryAudit qa = EHX__QUERY_AUDIT__INIT;
	struct msg m;
	struct reply r;
	MDB_txn *txn;
	char nhs[EHX_NHS_LEN + 1];
	uint64_t after = 0, legacy_seq;
	size_t seen = 0, pages = 0;
	bool found = false;

	(void)state;
	nhs_make(61, nhs);
	memset(big, 'x', sizeof(big) - 1);
	memcpy(big, "\x1b[2J\xff\xfe", 6);
	/* Through the pipeline: refused, and kept escaped and bounded. */
	msg_publish(&m, "police", nhs, "CASE-U", 2, EHX__ROLE__ROLE_PRACTITIONER);
	m.person.name = big;
	send_msg(POLICE, "police", &m, &r);
	expect_error(&r, EHX_ERR_INVALID_FIELD);
	reply_free(&r);
	last = last_audit(&b);
	assert_non_null(last->person);
	assert_true(strlen(last->person->name) <= EHX_MAX_NAME);
	assert_true(printable_ascii(last->person->name));
	assert_memory_equal(last->person->name, "\\x1b[2J\\xff\\xfe", 14);
	ehx__audit_record__free_unpacked(last, NULL);
	/* As a store from before holds it: the person exactly as sent. */
	legacy.user_id = "user-1";
	legacy.name = big;
	legacy.role = EHX__ROLE__ROLE_PRACTITIONER;
	rec.time = ehx_now_ms();
	rec.agency = "police";
	rec.person = &legacy;
	rec.action = "publish_flag";
	rec.decision = EHX__DECISION__DECISION_DENY;
	rec.error = (Ehx__ErrorCode)ehx_err_to_wire(EHX_ERR_INVALID_FIELD);
	rec.basis = "";
	assert_int_equal(mdb_txn_begin(b.store.env, NULL, 0, &txn), 0);
	assert_int_equal(store_audit_append(&b.store, txn, &rec), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	legacy_seq = rec.seq;
	/* A later record, for the search to reach. */
	msg_publish(&m, "police", nhs, "CASE-V", 2, EHX__ROLE__ROLE_PRACTITIONER);
	send_msg(POLICE, "police", &m, &r);
	expect_ack(&r);
	reply_free(&r);
	do {
		msg_base(&m, "health", "", EHX__ROLE__ROLE_IG_OFFICER);
		qa.after_seq = after;
		m.body.payload_case = EHX__BODY__PAYLOAD_QUERY_AUDIT;
		m.body.query_audit = &qa;
		send_msg(HEALTH, "health", &m, &r);
		assert_int_equal(r.body->payload_case, EHX__BODY__PAYLOAD_AUDIT);
		for (size_t i = 0; i < r.body->audit->n_records; i++) {
			const Ehx__AuditRecord *x = r.body->audit->records[i];

			if (x->person != NULL) {
				assert_true(strlen(x->person->name) <=
				    EHX_MAX_NAME);
				assert_true(printable_ascii(x->person->name));
			}
			found = found || x->seq == legacy_seq;
			seen++;
		}
		/* It always moves on. */
		assert_true(r.body->audit->next_seq == 0 ||
		    r.body->audit->next_seq > after);
		after = r.body->audit->next_seq;
		reply_free(&r);
		assert_true(++pages < 1000);
	} while (after != 0);
	assert_true(found);
	assert_true(seen > legacy_seq);
}

/* Seal m with signer s and send it to br on conn's connection. */
static void
send_to(struct broker *br, int s, const char *conn, struct msg *m,
    struct reply *r)
{
	unsigned char *frame = NULL;
	size_t len = 0;

	assert_int_equal(ehx_envelope_seal(signers[s], &m->body, &frame, &len),
	    0);
	process(br, conn, frame, len, m->id, r);
	free(frame);
}

/*
 * Scans with bounded memory (issue 16, finding 2). A child with 10,000
 * flags, and an audit log of 20,000 records with full-length names, used
 * to fill the request's arena (8 MiB) during a subject access request and
 * an audit search; the broker took the failed unpack for a damaged store
 * and refused every request from every agency until restarted. Now both
 * are answered, and the broker goes on serving.
 */
static void
test_scans_bounded(void **state)
{
	static char note[EHX_MAX_NOTE + 1], name[EHX_MAX_NAME + 1],
	    job[EHX_MAX_JOB + 1], uid[EHX_MAX_USER_ID + 1];
	struct broker br;
	struct msg m;
	struct reply r;
	Ehx__QuerySar qs = EHX__QUERY_SAR__INIT;
	Ehx__QueryAudit qa = EHX__QUERY_AUDIT__INIT;
	unsigned char child[EHX_PSEUDONYM_LEN], key[STORE_KEY_MAX];
	char nhs[EHX_NHS_LEN + 1], other[EHX_NHS_LEN + 1], ref[EHX_MAX_REF + 1];
	MDB_txn *txn;

	(void)state;
	memset(note, 'n', EHX_MAX_NOTE);
	memset(name, 'a', EHX_MAX_NAME);
	memset(job, 'j', EHX_MAX_JOB);
	memset(uid, 'u', EHX_MAX_USER_ID);
	assert_int_equal(load_broker(&br, "scan-data", 512 * MiB), 0);
	nhs_make(71, nhs);
	nhs_make(72, other);
	child_of(nhs, child);
	assert_int_equal(mdb_txn_begin(br.store.env, NULL, 0, &txn), 0);
	for (int i = 0; i < 10000; i++) {
		Ehx__StoredFlag sf = EHX__STORED_FLAG__INIT;
		Ehx__FlagView fv = EHX__FLAG_VIEW__INIT;
		Ehx__Practitioner pr = EHX__PRACTITIONER__INIT;

		snprintf(ref, sizeof(ref), "case-%06d-%s", i, "x");
		pr.name = name;
		pr.role = job;
		pr.contact = name;
		fv.ref = ref;
		fv.category = EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE;
		fv.level = 2;
		fv.status = EHX__FLAG_STATUS__FLAG_STATUS_CLOSED;
		fv.opened_at = fv.updated_at = fv.closed_at = ehx_now_ms();
		fv.practitioner = &pr;
		fv.note = note;
		fv.close_reason = note;
		sf.agency = "police";
		sf.agency_type = EHX__AGENCY_TYPE__AGENCY_TYPE_POLICE;
		sf.flag = &fv;
		ehx_arena_reset(br.arena);
		assert_int_equal(store_put_msg(txn, br.store.flags, key,
		    store_flag_key(key, child, "police", ref), &sf.base,
		    br.arena), 0);
	}
	for (int i = 0; i < 20000; i++) {
		Ehx__AuditRecord rec = EHX__AUDIT_RECORD__INIT;
		Ehx__Person pe = EHX__PERSON__INIT;

		pe.user_id = uid;
		pe.name = name;
		pe.role = EHX__ROLE__ROLE_PRACTITIONER;
		rec.time = ehx_now_ms();
		rec.agency = "school";
		rec.person = &pe;
		rec.action = "query_picture";
		rec.decision = EHX__DECISION__DECISION_DENY;
		rec.error = (Ehx__ErrorCode)ehx_err_to_wire(EHX_ERR_NO_CONSENT);
		rec.basis = "";
		assert_int_equal(store_audit_append(&br.store, txn, &rec), 0);
	}
	assert_int_equal(mdb_txn_commit(txn), 0);

	/* Subject access: cut to one answer, and nothing else hurt. */
	msg_base(&m, "health", nhs, EHX__ROLE__ROLE_IG_OFFICER);
	qs.nhs_number = m.nhs;
	m.body.payload_case = EHX__BODY__PAYLOAD_QUERY_SAR;
	m.body.query_sar = &qs;
	send_to(&br, HEALTH, "health", &m, &r);
	assert_int_equal(r.body->payload_case, EHX__BODY__PAYLOAD_SAR);
	assert_true(r.body->sar->truncated);
	assert_true(r.body->sar->n_involvements > 0);
	reply_free(&r);
	assert_false(br.store.failed);

	/* An audit search that matches none of 20,000 records: it reads as
	 * far as one query may and says where to go on. */
	msg_base(&m, "health", "", EHX__ROLE__ROLE_IG_OFFICER);
	qa.user_id = "nobody-at-all";
	m.body.payload_case = EHX__BODY__PAYLOAD_QUERY_AUDIT;
	m.body.query_audit = &qa;
	send_to(&br, HEALTH, "health", &m, &r);
	assert_int_equal(r.body->payload_case, EHX__BODY__PAYLOAD_AUDIT);
	assert_int_equal(r.body->audit->n_records, 0);
	assert_true(r.body->audit->next_seq >= EHX_MAX_AUDIT_SCAN);
	reply_free(&r);
	assert_false(br.store.failed);

	/* The broker still serves everyone. */
	msg_publish(&m, "police", other, "CASE-AFTER", 2,
	    EHX__ROLE__ROLE_PRACTITIONER);
	send_to(&br, POLICE, "police", &m, &r);
	expect_ack(&r);
	reply_free(&r);

	/* Heavy questions cost their reads against the asking agency's
	 * rate: with a burst of 500 and 10 a second, searches that each
	 * read 20,000 records (200 tokens) are refused from the fourth on
	 * at the latest, however slowly this machine runs them, while
	 * another agency's publish is taken. */
	{
		int asked = 0;
		bool limited = false;

		br.cfg.rate_per_second = 10;
		br.cfg.rate_burst = 500;
		while (!limited && asked < 10) {
			msg_base(&m, "health", "", EHX__ROLE__ROLE_IG_OFFICER);
			m.body.payload_case = EHX__BODY__PAYLOAD_QUERY_AUDIT;
			m.body.query_audit = &qa;
			send_to(&br, HEALTH, "health", &m, &r);
			asked++;
			if (r.body->payload_case == EHX__BODY__PAYLOAD_ERROR) {
				expect_error(&r, EHX_ERR_RATE_LIMITED);
				limited = true;
			}
			reply_free(&r);
		}
		assert_true(limited);
		assert_true(asked <= 4);
		msg_publish(&m, "police", other, "CASE-RATE", 2,
		    EHX__ROLE__ROLE_PRACTITIONER);
		send_to(&br, POLICE, "police", &m, &r);
		expect_ack(&r);
		reply_free(&r);
	}
	free_broker(&br);
}

/*
 * One agency may hold at most EHX_MAX_OPEN_FLAGS flags open on one child;
 * one more is refused with a sentence, and nothing is stored. Publishing
 * again under an open flag's reference, and opening one after closing
 * another, still work.
 */
static void
test_open_flags_capped(void **state)
{
	struct msg m;
	struct reply r;
	struct counts before;
	char nhs[EHX_NHS_LEN + 1], ref[32];

	(void)state;
	nhs_make(73, nhs);
	for (int i = 0; i < EHX_MAX_OPEN_FLAGS; i++) {
		snprintf(ref, sizeof(ref), "CAP-%02d", i);
		msg_publish(&m, "school", nhs, ref, 2,
		    EHX__ROLE__ROLE_PRACTITIONER);
		send_msg(SCHOOL, "school", &m, &r);
		expect_ack(&r);
		reply_free(&r);
	}
	before = counts_of(&b);
	msg_publish(&m, "school", nhs, "CAP-XX", 2, EHX__ROLE__ROLE_PRACTITIONER);
	send_msg(SCHOOL, "school", &m, &r);
	expect_error(&r, EHX_ERR_TOO_LARGE);
	assert_non_null(strstr(r.body->error->message, "open flags"));
	reply_free(&r);
	expect_refusal_effects(&b, before);
	/* The same reference again is a change, not one more. */
	msg_publish(&m, "school", nhs, "CAP-03", 3, EHX__ROLE__ROLE_PRACTITIONER);
	send_msg(SCHOOL, "school", &m, &r);
	expect_ack(&r);
	reply_free(&r);
	msg_close(&m, "school", nhs, "CAP-04");
	send_msg(SCHOOL, "school", &m, &r);
	expect_ack(&r);
	reply_free(&r);
	msg_publish(&m, "school", nhs, "CAP-XX", 2, EHX__ROLE__ROLE_PRACTITIONER);
	send_msg(SCHOOL, "school", &m, &r);
	expect_ack(&r);
	reply_free(&r);
}

static void
test_storage_failure_sticky(void **state)
{
	struct broker br;
	struct msg m;
	struct reply r;
	struct counts before;
	unsigned char *frame = NULL, key[EHX_MAX_ID + 1 + EHX_MSGID_LEN];
	size_t len = 0;
	char nhs[EHX_NHS_LEN + 1];
	MDB_txn *txn;

	(void)state;
	assert_int_equal(load_broker(&br, "sticky-data", 16 * MiB), 0);
	nhs_make(25, nhs);
	msg_publish(&m, "police", nhs, "CASE-1", 2, EHX__ROLE__ROLE_PRACTITIONER);
	assert_int_equal(ehx_envelope_seal(signers[POLICE], &m.body, &frame,
	    &len), 0);
	process(&br, "police", frame, len, m.id, &r);
	expect_ack(&r);
	reply_free(&r);
	free(frame);
	/* A damaged replay entry for the next message id. */
	msg_publish(&m, "police", nhs, "CASE-2", 2, EHX__ROLE__ROLE_PRACTITIONER);
	memcpy(key, "police", 7);
	memcpy(key + 7, m.id, EHX_MSGID_LEN);
	{
		MDB_val k = { 7 + EHX_MSGID_LEN, key }, v = { 3, "\xff\xff\xff" };

		assert_int_equal(mdb_txn_begin(br.store.env, NULL, 0, &txn), 0);
		assert_int_equal(mdb_put(txn, br.store.replay, &k, &v, 0), 0);
		assert_int_equal(mdb_txn_commit(txn), 0);
	}
	before = counts_of(&br);
	assert_int_equal(ehx_envelope_seal(signers[POLICE], &m.body, &frame,
	    &len), 0);
	process(&br, "police", frame, len, m.id, &r);
	expect_error(&r, EHX_ERR_INTERNAL);
	reply_free(&r);
	free(frame);
	assert_true(br.store.failed);
	/* From now on every request is refused, and nothing is written. */
	msg_publish(&m, "police", nhs, "CASE-3", 2, EHX__ROLE__ROLE_PRACTITIONER);
	assert_int_equal(ehx_envelope_seal(signers[POLICE], &m.body, &frame,
	    &len), 0);
	process(&br, "police", frame, len, m.id, &r);
	expect_error(&r, EHX_ERR_INTERNAL);
	reply_free(&r);
	free(frame);
	{
		struct counts now = counts_of(&br);

		assert_int_equal(now.flags, before.flags);
		assert_int_equal(now.consent, before.consent);
		assert_int_equal(now.replay, before.replay);
		assert_int_equal(now.audit, before.audit);
	}
	free_broker(&br);
}

/*
 * A child with many large consent records: the answer would be bigger than
 * EHX_MAX_BODY, so it must come cut short and marked truncated. Before
 * 247d7d4 it could not be sealed, broker_process() returned with no reply
 * and left its write transaction open, and the next write deadlocked.
 *
 * The query and the write after it run in a child process, so that a hung
 * broker fails this test instead of hanging the suite (the alarm is only a
 * guard against a deadlock, not a measure of speed).
 */
/* What the child saw: the query's outcome, plus 8 if the write after it
 * was refused. A deadlock shows as SIGALRM. */
enum { BIG_OK, BIG_NO_REPLY, BIG_BAD_REPLY, BIG_WRITE_REFUSED = 8 };

static int
big_consent_child(struct broker *br, const char *nhs)
{
	const struct agency *police = registry_by_id(&br->reg, "police");
	struct msg m;
	unsigned char *frame = NULL, *out = NULL;
	size_t len = 0, outlen = 0;
	Ehx__Envelope *e = NULL;
	Ehx__Body *bd = NULL;
	int ok, result;

	alarm(10);
	msg_query_consent(&m, "police", nhs, EHX__ROLE__ROLE_PRACTITIONER);
	if (ehx_envelope_seal(signers[POLICE], &m.body, &frame, &len) != 0)
		return BIG_NO_REPLY;
	if (broker_process(br, police, frame, len, &out, &outlen) != 0)
		result = BIG_NO_REPLY;
	else {
		/* A consent answer that says it is cut short, or all 60. */
		ok = ehx_envelope_decode(out, outlen, &e) == 0 &&
		    ehx_envelope_verify(e, ehx_cert_pubkey(broker_cert)) == 0 &&
		    ehx_body_decode(e->body.data, e->body.len, &bd, NULL,
		    0) == 0 &&
		    bd->payload_case == EHX__BODY__PAYLOAD_CONSENT &&
		    (bd->consent->truncated || bd->consent->n_records == 60);
		result = ok ? BIG_OK : BIG_BAD_REPLY;
	}
	/* And the broker still takes writes. */
	msg_publish(&m, "police", nhs, "AFTER", 1, EHX__ROLE__ROLE_PRACTITIONER);
	bd = NULL;
	e = NULL;
	ok = ehx_envelope_seal(signers[POLICE], &m.body, &frame, &len) == 0 &&
	    broker_process(br, police, frame, len, &out, &outlen) == 0 &&
	    ehx_envelope_decode(out, outlen, &e) == 0 &&
	    ehx_body_decode(e->body.data, e->body.len, &bd, NULL, 0) == 0 &&
	    bd->payload_case == EHX__BODY__PAYLOAD_ACK;
	return result | (ok ? 0 : BIG_WRITE_REFUSED);
}

static void
test_query_consent_too_large(void **state)
{
	struct broker big;
	struct msg m;
	struct reply r;
	char nhs[EHX_NHS_LEN + 1], ids[EHX_MAX_SCOPE_AGENCIES][EHX_MAX_ID + 1];
	char *agencies[EHX_MAX_SCOPE_AGENCIES], name[EHX_MAX_NAME + 1];
	unsigned char *frame = NULL;
	size_t len = 0;
	pid_t pid;
	int st;

	(void)state;
	assert_int_equal(load_broker(&big, "big-consent", 64 * MiB), 0);
	nhs_make(20, nhs);
	for (int i = 0; i < EHX_MAX_SCOPE_AGENCIES; i++) {
		snprintf(ids[i], sizeof(ids[i]), "agency-%025d", i);
		agencies[i] = ids[i];
	}
	memset(name, 'N', EHX_MAX_NAME);
	name[EHX_MAX_NAME] = '\0';
	/* 60 consents of about 1.3 KB each: about 80 KB to answer. */
	for (int i = 0; i < 60; i++) {
		msg_consent(&m, "police", nhs,
		    EHX__AGENCY_TYPE__AGENCY_TYPE_HEALTH);
		m.scope.agencies = agencies;
		m.scope.n_agencies = EHX_MAX_SCOPE_AGENCIES;
		m.gb.name = name;
		assert_int_equal(ehx_envelope_seal(signers[POLICE], &m.body,
		    &frame, &len), 0);
		process(&big, "police", frame, len, m.id, &r);
		expect_ack(&r);
		reply_free(&r);
		free(frame);
	}
	fflush(NULL);
	if ((pid = fork()) == 0)
		_exit(big_consent_child(&big, nhs));
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	free_broker(&big);
	if (WIFSIGNALED(st))
		fail_msg("a query_consent with 60 large records, then a write: "
		    "the broker hung (signal %d) waiting for its own store",
		    WTERMSIG(st));
	if (WEXITSTATUS(st) != BIG_OK)
		fail_msg("a query_consent with 60 large records: %s; the write "
		    "after it was %s", (WEXITSTATUS(st) & 7) == BIG_NO_REPLY ?
		    "no reply" : (WEXITSTATUS(st) & 7) == BIG_BAD_REPLY ?
		    "not a consent answer" : "answered",
		    WEXITSTATUS(st) & BIG_WRITE_REFUSED ? "refused" : "acked");
}

/* A setup that fails half-way leaves nothing behind. */
static int
setup(void **state)
{
	if (setup_inner(state) != 0) {
		teardown(state);
		return -1;
	}
	return 0;
}

/* Sign a checkpoint of the log as it stands (as the broker's timer does). */
static const Ehx__Checkpoint *
force_checkpoint(void)
{
	MDB_txn *txn;
	bool made;

	assert_int_equal(mdb_txn_begin(b.store.env, NULL, 0, &txn), 0);
	assert_int_equal(checkpoint_maybe(&b, txn, true, &made), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	assert_int_equal(checkpoint_adopt(&b), 0);
	assert_non_null(b.cp);
	return b.cp;
}

static void
msg_proof(struct msg *m, const char *sender, uint64_t old_size,
    uint64_t new_size, uint64_t seq, int role, Ehx__QueryProof *qp)
{
	msg_base(m, sender, "", role);
	ehx__query_proof__init(qp);
	qp->old_size = old_size;
	qp->new_size = new_size;
	qp->seq = seq;
	m->body.payload_case = EHX__BODY__PAYLOAD_QUERY_PROOF;
	m->body.query_proof = qp;
}

/*
 * Checkpoints, proofs and cosignatures over the pipeline: every reply
 * carries the newest checkpoint; a consistency proof between two
 * checkpoints and an inclusion proof of a record verify against their
 * signed roots; only an IG officer gets the record itself; a cosignature
 * is kept once, and one over another root or by another key is refused.
 * Proofs and cosignatures leave no audit record.
 */
static void
test_proofs_and_cosignatures(void **state)
{
	Ehx__Checkpoint old, *cur;
	Ehx__QueryProof qp;
	Ehx__CosignCheckpoint cc = EHX__COSIGN_CHECKPOINT__INIT;
	Ehx__Cosignature cs;
	unsigned char oldroot[32], csig[64], path[EHX_MERKLE_MAX_PROOF][32];
	unsigned char leaf[32];
	struct counts before;
	struct msg m;
	struct reply r;
	char nhs[EHX_NHS_LEN + 1];

	(void)state;
	nhs_make(901, nhs);
	msg_publish(&m, "police", nhs, "P-1", 2, EHX__ROLE__ROLE_PRACTITIONER);
	send_msg(POLICE, "police", &m, &r);
	expect_ack(&r);
	reply_free(&r);
	old = *force_checkpoint();
	memcpy(oldroot, old.root.data, 32);
	old.root.data = oldroot;
	for (int i = 0; i < 5; i++) {
		char ref[16];

		snprintf(ref, sizeof(ref), "P-%d", 2 + i);
		msg_publish(&m, "police", nhs, ref, 2,
		    EHX__ROLE__ROLE_PRACTITIONER);
		send_msg(POLICE, "police", &m, &r);
		expect_ack(&r);
		/* Every reply carries the newest checkpoint. */
		assert_non_null(r.body->checkpoint);
		assert_int_equal(r.body->checkpoint->size, old.size);
		reply_free(&r);
	}
	cur = (Ehx__Checkpoint *)force_checkpoint();
	assert_true(cur->size > old.size);

	/* A consistency proof from the old checkpoint to the newest. */
	before = counts_of(&b);
	msg_proof(&m, "health", old.size, 0, 0, EHX__ROLE__ROLE_SYSTEM, &qp);
	send_msg(HEALTH, "health", &m, &r);
	assert_int_equal(r.body->payload_case, EHX__BODY__PAYLOAD_PROOF);
	{
		const Ehx__ProofResult *p = r.body->proof;

		assert_int_equal(p->checkpoint->size, cur->size);
		assert_int_equal(ehx_checkpoint_verify(p->checkpoint,
		    ehx_cert_pubkey(broker_cert)), 0);
		assert_true(p->n_consistency <= EHX_MERKLE_MAX_PROOF);
		for (size_t i = 0; i < p->n_consistency; i++) {
			assert_int_equal(p->consistency[i].len, 32);
			memcpy(path[i], p->consistency[i].data, 32);
		}
		assert_int_equal(ehx_merkle_verify_consistency(old.size,
		    p->checkpoint->size, oldroot, p->checkpoint->root.data,
		    (const unsigned char (*)[32])path, p->n_consistency), 0);
		assert_int_equal(p->record.len, 0);
	}
	reply_free(&r);
	assert_int_equal(counts_of(&b).audit, before.audit);

	/* An inclusion proof of record 2, with the record for an IG officer. */
	msg_proof(&m, "health", 0, 0, 2, EHX__ROLE__ROLE_IG_OFFICER, &qp);
	send_msg(HEALTH, "health", &m, &r);
	assert_int_equal(r.body->payload_case, EHX__BODY__PAYLOAD_PROOF);
	{
		const Ehx__ProofResult *p = r.body->proof;

		assert_true(p->record.len > 0);
		ehx_merkle_leaf_hash(p->record.data, p->record.len, leaf);
		for (size_t i = 0; i < p->n_inclusion; i++)
			memcpy(path[i], p->inclusion[i].data, 32);
		assert_int_equal(ehx_merkle_verify_inclusion(leaf, 1,
		    p->checkpoint->size, (const unsigned char (*)[32])path,
		    p->n_inclusion, p->checkpoint->root.data), 0);
	}
	reply_free(&r);
	/* Sizes the broker has no checkpoint of, or past it. */
	msg_proof(&m, "health", 0, cur->size + 1, 0, EHX__ROLE__ROLE_SYSTEM, &qp);
	expect_refused(HEALTH, "health", &m, EHX_ERR_NOT_FOUND);
	msg_proof(&m, "health", cur->size + 1, 0, 0, EHX__ROLE__ROLE_SYSTEM,
	    &qp);
	expect_refused(HEALTH, "health", &m, EHX_ERR_INVALID_FIELD);

	/* Health cosigns the newest checkpoint: kept once. */
	assert_int_equal(ehx_cosign(signers[HEALTH], "health", cur,
	    ehx_now_ms(), &cs, csig), 0);
	cc.checkpoint = cur;
	cc.cosignature = &cs;
	msg_base(&m, "health", "", EHX__ROLE__ROLE_SYSTEM);
	m.body.payload_case = EHX__BODY__PAYLOAD_COSIGN_CHECKPOINT;
	m.body.cosign_checkpoint = &cc;
	send_msg(HEALTH, "health", &m, &r);
	expect_ack(&r);
	reply_free(&r);
	msg_base(&m, "health", "", EHX__ROLE__ROLE_SYSTEM);
	m.body.payload_case = EHX__BODY__PAYLOAD_COSIGN_CHECKPOINT;
	m.body.cosign_checkpoint = &cc;
	send_msg(HEALTH, "health", &m, &r);
	expect_ack(&r);
	reply_free(&r);
	{
		MDB_txn *txn;
		MDB_stat st;

		assert_int_equal(mdb_txn_begin(b.store.env, NULL, MDB_RDONLY,
		    &txn), 0);
		assert_int_equal(mdb_stat(txn, b.store.cosign, &st), 0);
		assert_int_equal(st.ms_entries, 1);
		mdb_txn_abort(txn);
	}
	/* Police sends health's cosignature as its own: refused. */
	cs.agency = "police";
	msg_base(&m, "police", "", EHX__ROLE__ROLE_SYSTEM);
	m.body.payload_case = EHX__BODY__PAYLOAD_COSIGN_CHECKPOINT;
	m.body.cosign_checkpoint = &cc;
	expect_refused(POLICE, "police", &m, EHX_ERR_BAD_SIGNATURE);
	/* A cosignature of a history the broker never signed. */
	{
		Ehx__Checkpoint forked = *cur;
		unsigned char froot[32];

		memcpy(froot, cur->root.data, 32);
		froot[0] ^= 1;
		forked.root.data = froot;
		assert_int_equal(ehx_cosign(signers[POLICE], "police", &forked,
		    ehx_now_ms(), &cs, csig), 0);
		cc.checkpoint = &forked;
		msg_base(&m, "police", "", EHX__ROLE__ROLE_SYSTEM);
		m.body.payload_case = EHX__BODY__PAYLOAD_COSIGN_CHECKPOINT;
		m.body.cosign_checkpoint = &cc;
		expect_refused(POLICE, "police", &m, EHX_ERR_INVALID_FIELD);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_publish_ack),
		cmocka_unit_test(test_group_commit),
		cmocka_unit_test(test_group_commit_full),
		cmocka_unit_test(test_replay_different_body),
		cmocka_unit_test(test_same_envelope_twice),
		cmocka_unit_test(test_wrong_sender),
		cmocka_unit_test(test_wrong_recipient),
		cmocka_unit_test(test_stale),
		cmocka_unit_test(test_unknown_certificate),
		cmocka_unit_test(test_certificate_dates),
		cmocka_unit_test(test_bad_signature),
		cmocka_unit_test(test_frames),
		cmocka_unit_test(test_bad_version),
		cmocka_unit_test(test_signed_malformed_body),
		cmocka_unit_test(test_invalid_fields),
		cmocka_unit_test(test_not_permitted),
		cmocka_unit_test(test_no_consent_same_answer),
		cmocka_unit_test(test_consent_flow),
		cmocka_unit_test(test_close_unknown),
		cmocka_unit_test(test_refusal_replayed),
		cmocka_unit_test(test_retry_after_window),
		cmocka_unit_test(test_picture_truncated),
		cmocka_unit_test(test_unknown_fields),
		cmocka_unit_test(test_audit_unchecked_person),
		cmocka_unit_test(test_scans_bounded),
		cmocka_unit_test(test_open_flags_capped),
		cmocka_unit_test(test_storage_failure_sticky),
		cmocka_unit_test(test_storage_full),
		cmocka_unit_test(test_query_consent_too_large),
		cmocka_unit_test(test_proofs_and_cosignatures),
	};

	return cmocka_run_group_tests_name("test_pipeline", tests, setup,
	    teardown);
}
