/*
 * test_notify — outbox streams (broker/pipeline.c) and notifications
 * (broker/notify.c, broker/handle_flag.c) in-process, the way
 * tests/unit/test_pipeline.c drives the broker: a real struct broker
 * loaded like broker/main.c does from a partnership made by
 * certs/ehx-pki, with docs/sharing-policy.ini and a real LMDB store in a
 * temporary directory. Requests are sealed with the agencies' own keys
 * and fed to broker_process(); replies, and the notifications inside a
 * NotificationBatch, are opened and verified like an agent does.
 *
 * Every test gets a store of its own (the partnership is made once), so
 * queue numbers and counts are exact.
 */
#include "testutil.h"

#include "../../broker/broker.h"
#include "../../broker/notify.h"
#include "../../broker/pipeline.h"
#include "../../broker/registry.h"
#include "../../broker/request.h"
#include "../../broker/store.h"
#include "ehx/crypto.h"
#include "ehx/err.h"
#include "ehx/log.h"
#include "ehx/merkle.h"
#include "ehx/nhs.h"
#include "ehx/policy.h"
#include "ehx/util.h"
#include "ehx/wire.h"

#define MiB (1024 * 1024)
#define DAY (24 * 3600000LL)
#define AGREEMENT "anytown-isa-2026"
#define NOTE "flip-me-please"

static char dir[PATH_MAX];
static char data[PATH_MAX];             /* this test's store */
static int ndata;
static struct broker b;
static struct ehx_cert *broker_cert;    /* what agents verify with */

enum { POLICE, HEALTH, SCHOOL, HUB, HOUSING, NSIGNERS };
static struct ehx_signer *signers[NSIGNERS];
static const char *const ids[NSIGNERS] = {
	"police", "health", "school", "hub", "housing",
};
static const char *const types[NSIGNERS] = {
	"police", "health", "school", "local_authority", "housing",
};

/* ---- the broker, as broker/main.c loads it ------------------------------ */

static int
load_broker(struct broker *br, const char *sub)
{
	char path[PATH_MAX], path2[PATH_MAX], err[512];

	memset(br, 0, sizeof(*br));
	snprintf(br->cfg.id, sizeof(br->cfg.id), "broker");
	br->cfg.skew_ms = 300 * 1000;
	br->cfg.map_size = 64LL * MiB;
	br->cfg.checkpoint_records = 1000;
	br->cfg.checkpoint_seconds = 3600;
	tu_join(br->cfg.data_dir, sizeof(br->cfg.data_dir), dir, sub);
	if (ehx_ca_load(tu_join(path, sizeof(path), dir, "ca/ca.crt"),
	    &br->ca) != 0 ||
	    ehx_signer_load(tu_join(path, sizeof(path), dir, "broker/broker.key"),
	    tu_join(path2, sizeof(path2), dir, "broker/broker.crt"),
	    &br->signer) != 0 ||
	    ehx_pseudokey_load(tu_join(path, sizeof(path), dir,
	    "broker/pseudonym.key"), &br->pkey) != 0) {
		fprintf(stderr, "test_notify: cannot load the broker's keys\n");
		return -1;
	}
	if (registry_load(tu_join(path, sizeof(path), dir, "registry.ini"),
	    br->ca, &br->reg, err, sizeof(err)) != 0 ||
	    ehx_policy_load("docs/sharing-policy.ini", &br->policy, err,
	    sizeof(err)) != 0 ||
	    store_open(&br->store, br->cfg.data_dir, 64 * MiB, false, err,
	    sizeof(err)) != 0) {
		fprintf(stderr, "test_notify: %s\n", err);
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
	notify_push_drop(br, 0);
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
group_teardown(void **state)
{
	(void)state;
	for (int i = 0; i < NSIGNERS; i++) {
		ehx_signer_free(signers[i]);
		signers[i] = NULL;
	}
	ehx_cert_free(broker_cert);
	broker_cert = NULL;
	tu_rmtree(dir);
	return 0;
}

static int
group_setup_inner(void)
{
	const char *pki;
	char key[PATH_MAX], crt[PATH_MAX];

	ehx_log_level_current = getenv("EHX_TEST_LOG") ? 3 : -1;
	if ((pki = tu_pki()) == NULL ||
	    tu_mkdtemp(dir, sizeof(dir), "notify") != 0)
		return -1;
	if (tu_sh("'%s' ca '%s' >/dev/null && '%s' broker '%s' >/dev/null",
	    pki, dir, pki, dir) != 0)
		return -1;
	for (int i = 0; i < NSIGNERS; i++) {
		if (tu_sh("'%s' agency '%s' %s %s >/dev/null", pki, dir, ids[i],
		    types[i]) != 0)
			return -1;
		snprintf(key, sizeof(key), "%s/agencies/%s/%s.key", dir, ids[i],
		    ids[i]);
		snprintf(crt, sizeof(crt), "%s/agencies/%s/%s.crt", dir, ids[i],
		    ids[i]);
		if (ehx_signer_load(key, crt, &signers[i]) != 0) {
			fprintf(stderr, "test_notify: cannot load %s\n", key);
			return -1;
		}
	}
	return ehx_cert_load(tu_join(crt, sizeof(crt), dir,
	    "broker/broker.crt"), &broker_cert);
}

static int
group_setup(void **state)
{
	if (group_setup_inner() != 0) {
		group_teardown(state);
		return -1;
	}
	return 0;
}

/* A store of its own for each test. */
/* The ids of the notifications each agency was handed (see track()). */
#define TRACK_MAX 4096
static unsigned char handed[NSIGNERS][TRACK_MAX][EHX_MSGID_LEN];

static int
setup(void **state)
{
	char sub[32];

	(void)state;
	memset(handed, 0, sizeof(handed));
	snprintf(sub, sizeof(sub), "data-%d", ++ndata);
	tu_join(data, sizeof(data), dir, sub);
	return load_broker(&b, sub);
}

static int
teardown(void **state)
{
	(void)state;
	free_broker(&b);
	tu_rmtree(data);
	return 0;
}

/* ---- children ------------------------------------------------------------ */

/* A valid NHS number of its own for each n. */
static void
nhs_make(int n, char out[EHX_NHS_LEN + 1])
{
	for (long p = 700000000L + (long)n * 7919L;; p++) {
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

/* ---- requests ------------------------------------------------------------ */

struct msg {
	Ehx__Body body;
	Ehx__Person person;
	Ehx__PublishFlag pf;
	Ehx__Practitioner pr;
	Ehx__CloseFlag cf;
	Ehx__RecordConsent rc;
	Ehx__GivenBy gb;
	Ehx__ConsentScope scope;
	Ehx__AgencyType atypes[1];
	Ehx__Purpose purposes[1];
	char *agencies[1];
	Ehx__WithdrawConsent wc;
	Ehx__FetchNotifications fn;
	Ehx__Sequence sq;
	unsigned char id[EHX_MSGID_LEN];
	char nhs[EHX_NHS_LEN + 1];
};

static void
msg_base(struct msg *m, int s, const char *nhs, int role)
{
	memset(m, 0, sizeof(*m));
	ehx__body__init(&m->body);
	ehx__person__init(&m->person);
	assert_int_equal(ehx_random(m->id, sizeof(m->id)), 0);
	snprintf(m->nhs, sizeof(m->nhs), "%s", nhs);
	m->body.message_id.data = m->id;
	m->body.message_id.len = sizeof(m->id);
	m->body.sender = (char *)ids[s];
	m->body.recipient = "broker";
	m->body.sent_at = ehx_now_ms();
	m->person.user_id = "user-1";
	m->person.name = "Sam Jones";
	m->person.role = role;
	m->body.person = &m->person;
}

static void
msg_publish(struct msg *m, int s, const char *nhs, const char *ref,
    int category, unsigned level)
{
	msg_base(m, s, nhs, EHX__ROLE__ROLE_PRACTITIONER);
	ehx__publish_flag__init(&m->pf);
	ehx__practitioner__init(&m->pr);
	m->pr.name = "Sam Jones";
	m->pr.role = "officer";
	m->pr.contact = "01632 960001";
	m->pf.nhs_number = m->nhs;
	m->pf.ref = (char *)ref;
	m->pf.category = category;
	m->pf.level = level;
	m->pf.practitioner = &m->pr;
	m->pf.note = NOTE;
	m->body.payload_case = EHX__BODY__PAYLOAD_PUBLISH_FLAG;
	m->body.publish_flag = &m->pf;
}

static void
msg_close(struct msg *m, int s, const char *nhs, const char *ref)
{
	msg_base(m, s, nhs, EHX__ROLE__ROLE_PRACTITIONER);
	ehx__close_flag__init(&m->cf);
	m->cf.nhs_number = m->nhs;
	m->cf.ref = (char *)ref;
	m->cf.reason = "no further concerns";
	m->body.payload_case = EHX__BODY__PAYLOAD_CLOSE_FLAG;
	m->body.close_flag = &m->cf;
}

/* A consent recorded by s covering agency type `type` (0: none) or the
 * agency `agency` (NULL: none) for one purpose. */
static void
msg_consent(struct msg *m, int s, const char *nhs, int type,
    const char *agency, int purpose)
{
	msg_base(m, s, nhs, EHX__ROLE__ROLE_PRACTITIONER);
	ehx__record_consent__init(&m->rc);
	ehx__given_by__init(&m->gb);
	ehx__consent_scope__init(&m->scope);
	m->gb.relation = EHX__RELATION__RELATION_PARENT;
	m->gb.name = "Pat Doe";
	if (type != 0) {
		m->atypes[0] = type;
		m->scope.agency_types = m->atypes;
		m->scope.n_agency_types = 1;
	}
	if (agency != NULL) {
		m->agencies[0] = (char *)agency;
		m->scope.agencies = m->agencies;
		m->scope.n_agencies = 1;
	}
	m->purposes[0] = purpose;
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
msg_withdraw(struct msg *m, int s, const char *nhs, const char *consent_id)
{
	msg_base(m, s, nhs, EHX__ROLE__ROLE_INFORMATION_OFFICER);
	ehx__withdraw_consent__init(&m->wc);
	m->wc.nhs_number = m->nhs;
	m->wc.consent_id = (char *)consent_id;
	m->wc.reason = "the parent asked";
	m->wc.withdrawn_by = "Pat Doe";
	m->body.payload_case = EHX__BODY__PAYLOAD_WITHDRAW_CONSENT;
	m->body.withdraw_consent = &m->wc;
}

/*
 * The message id of each notification an agency has been handed (pushed
 * or fetched), by seq, as its agent keeps the last one: a fetch after N
 * names N by it. An id never handed out reads as ff… (not the broker's).
 * (handed[] is by the setup, each test's broker being new.)
 */

static void
track(const char *to, const void *bytes, size_t len)
{
	Ehx__Envelope *env;
	Ehx__Body *body;
	char why[128];
	int s;

	for (s = 0; s < NSIGNERS && strcmp(ids[s], to) != 0; s++)
		;
	assert_true(s < NSIGNERS);
	assert_int_equal(ehx_envelope_decode(bytes, len, &env), 0);
	assert_int_equal(ehx_body_decode(env->body.data, env->body.len, &body,
	    why, sizeof(why)), 0);
	if (body->payload_case == EHX__BODY__PAYLOAD_NOTIFICATION &&
	    body->notification->seq < TRACK_MAX)
		memcpy(handed[s][body->notification->seq],
		    body->message_id.data, EHX_MSGID_LEN);
	ehx_body_free(body);
	ehx_envelope_free(env);
}

static const unsigned char *
handed_id(int s, uint64_t seq)
{
	static const unsigned char none[EHX_MSGID_LEN] = {
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	};
	static const unsigned char zero[EHX_MSGID_LEN];

	if (seq >= TRACK_MAX || memcmp(handed[s][seq], zero,
	    EHX_MSGID_LEN) == 0)
		return none;
	return handed[s][seq];
}

static void
msg_fetch(struct msg *m, int s, uint64_t after, uint32_t limit, int role)
{
	msg_base(m, s, "", role);
	ehx__fetch_notifications__init(&m->fn);
	m->fn.after = after;
	if (after != 0) {
		m->fn.after_id.data = (uint8_t *)handed_id(s, after);
		m->fn.after_id.len = EHX_MSGID_LEN;
	}
	m->fn.limit = limit;
	m->body.payload_case = EHX__BODY__PAYLOAD_FETCH_NOTIFICATIONS;
	m->body.fetch_notifications = &m->fn;
}

/* Number m as item `number` of the outbox stream (len bytes of stream). */
static void
msg_seq(struct msg *m, const unsigned char *stream, size_t len,
    uint64_t number)
{
	ehx__sequence__init(&m->sq);
	m->sq.stream.data = (uint8_t *)stream;
	m->sq.stream.len = len;
	m->sq.number = number;
	m->body.sequence = &m->sq;
}

/* ---- replies ------------------------------------------------------------- */

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
 * agent does. Notifications the previous request left for pushing are
 * freed first; this request's stay in b.push until the next one.
 */
static bool autoflush = true;

static void
process(const char *conn, const void *frame, size_t len,
    const unsigned char *want_reply_to, struct reply *r)
{
	const struct agency *a = registry_by_id(&b.reg, conn);
	char why[128];

	for (size_t i = 0; i < b.npush; i++)
		track(b.push[i].to->id, b.push[i].env, b.push[i].len);
	notify_push_drop(&b, 0);
	memset(r, 0, sizeof(*r));
	assert_non_null(a);
	assert_int_equal(broker_process(&b, a, frame, len, &r->bytes, &r->len),
	    0);
	/* The serving loop's timer, at once (test_notify_deferred checks
	 * what a publish itself does). */
	if (autoflush)
		assert_int_equal(notify_flush_now(&b), 0);
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
	assert_int_equal(r->body->in_reply_to.len, EHX_MSGID_LEN);
	assert_memory_equal(r->body->in_reply_to.data, want_reply_to,
	    EHX_MSGID_LEN);
}

/* Seal m with its sender's key into a new frame (free it). */
static unsigned char *
seal(int s, struct msg *m, size_t *len)
{
	unsigned char *frame = NULL;

	assert_int_equal(ehx_envelope_seal(signers[s], &m->body, &frame, len),
	    0);
	return frame;
}

static void
send_msg(int s, struct msg *m, struct reply *r)
{
	size_t len = 0;
	unsigned char *frame = seal(s, m, &len);

	process(ids[s], frame, len, m->id, r);
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

/* Publish and expect an ack that changed the flag; returns how many
 * notifications it raised. The
 * message id goes to id_out when it is not NULL. */
static uint32_t
publish(int s, const char *nhs, const char *ref, int category, unsigned level,
    unsigned char *id_out)
{
	struct msg m;
	struct reply r;
	const Ehx__Ack *ack;
	uint32_t n;

	msg_publish(&m, s, nhs, ref, category, level);
	send_msg(s, &m, &r);
	ack = expect_ack(&r);
	assert_string_equal(ack->id, ref);
	assert_false(ack->unchanged);
	assert_false(ack->duplicate);
	n = (uint32_t)b.npush;
	if (id_out != NULL)
		memcpy(id_out, m.id, EHX_MSGID_LEN);
	reply_free(&r);
	return n;
}

static void
close_flag(int s, const char *nhs, const char *ref)
{
	struct msg m;
	struct reply r;

	msg_close(&m, s, nhs, ref);
	send_msg(s, &m, &r);
	expect_ack(&r);
	assert_int_equal(b.npush, 0);
	reply_free(&r);
}

/* Record a consent; its id into id_out (32 bytes). */
static void
consent(int s, const char *nhs, int type, const char *agency, int purpose,
    char *id_out)
{
	struct msg m;
	struct reply r;

	msg_consent(&m, s, nhs, type, agency, purpose);
	send_msg(s, &m, &r);
	snprintf(id_out, 32, "%s", expect_ack(&r)->id);
	assert_int_equal(strncmp(id_out, "c-", 2), 0);
	reply_free(&r);
}

/* ---- the store, as seen from outside ------------------------------------ */

static size_t
entries(MDB_dbi dbi)
{
	MDB_txn *txn;
	MDB_stat st;

	assert_int_equal(mdb_txn_begin(b.store.env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(mdb_stat(txn, dbi, &st), 0);
	mdb_txn_abort(txn);
	return st.ms_entries;
}

static uint64_t
audit_size(void)
{
	MDB_txn *txn;
	uint64_t n;

	assert_int_equal(mdb_txn_begin(b.store.env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(store_audit_size(&b.store, txn, &n), 0);
	mdb_txn_abort(txn);
	return n;
}

struct counts {
	size_t flags, consent, audit, replay, notify, streams, disclosures;
	uint64_t audit_size;
};

static struct counts
counts_now(void)
{
	struct counts c;

	c.flags = entries(b.store.flags);
	c.consent = entries(b.store.consent);
	c.audit = entries(b.store.audit);
	c.replay = entries(b.store.replay);
	c.notify = entries(b.store.notify);
	c.streams = entries(b.store.streams);
	c.disclosures = entries(b.store.disclosures);
	c.audit_size = audit_size();
	assert_int_equal(c.audit, c.audit_size);
	return c;
}

static void
expect_counts(struct counts was, struct counts now)
{
	assert_int_equal(now.flags, was.flags);
	assert_int_equal(now.consent, was.consent);
	assert_int_equal(now.audit, was.audit);
	assert_int_equal(now.audit_size, was.audit_size);
	assert_int_equal(now.replay, was.replay);
	assert_int_equal(now.notify, was.notify);
	assert_int_equal(now.streams, was.streams);
	assert_int_equal(now.disclosures, was.disclosures);
}

/* Entries in agency's notification queue. */
static size_t
queue_len(const char *agency)
{
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k, v;
	size_t plen = strlen(agency) + 1, n = 0;
	unsigned char key[EHX_MAX_ID + 1];
	int rc;

	memcpy(key, agency, plen);
	assert_int_equal(mdb_txn_begin(b.store.env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(mdb_cursor_open(txn, b.store.notify, &c), 0);
	k = (MDB_val){ plen, key };
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
	    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (k.mv_size < plen || memcmp(k.mv_data, key, plen) != 0)
			break;
		assert_int_equal(k.mv_size, plen + 8);
		n++;
	}
	mdb_cursor_close(c);
	mdb_txn_abort(txn);
	return n;
}

/* The raw stored bytes of notification seq to agency (malloc'd), or NULL. */
static unsigned char *
queue_raw(const char *agency, uint64_t seq, size_t *len)
{
	MDB_txn *txn;
	MDB_val k, v;
	unsigned char key[EHX_MAX_ID + 9], *out = NULL;
	size_t n = strlen(agency);
	int rc;

	memcpy(key, agency, n);
	key[n] = 0;
	put_be64(key + n + 1, seq);
	k = (MDB_val){ n + 9, key };
	assert_int_equal(mdb_txn_begin(b.store.env, NULL, MDB_RDONLY, &txn), 0);
	if ((rc = mdb_get(txn, b.store.notify, &k, &v)) == 0) {
		out = malloc(v.mv_size);
		assert_non_null(out);
		memcpy(out, v.mv_data, v.mv_size);
		*len = v.mv_size;
	} else
		assert_int_equal(rc, MDB_NOTFOUND);
	mdb_txn_abort(txn);
	return out;
}

static uint64_t
queue_last(const char *agency)
{
	MDB_txn *txn;
	uint64_t last;

	assert_int_equal(mdb_txn_begin(b.store.env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(notify_last(&b.store, txn, agency, &last), 0);
	mdb_txn_abort(txn);
	return last;
}

/* Audit record seq, unpacked (free it). */
static Ehx__AuditRecord *
audit_record(uint64_t seq)
{
	MDB_txn *txn;
	MDB_val v;
	Ehx__AuditRecord *r;

	assert_int_equal(mdb_txn_begin(b.store.env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(store_audit_get(&b.store, txn, seq, &v), 0);
	r = ehx__audit_record__unpack(NULL, v.mv_size, v.mv_data);
	mdb_txn_abort(txn);
	assert_non_null(r);
	assert_int_equal(r->seq, seq);
	return r;
}

/* agency's flag ref on the child, unpacked (free it). */
static Ehx__StoredFlag *
stored_flag(const char *nhs, const char *agency, const char *ref)
{
	unsigned char child[EHX_PSEUDONYM_LEN], key[STORE_KEY_MAX];
	MDB_txn *txn;
	MDB_val k, v;
	Ehx__StoredFlag *sf;

	child_of(nhs, child);
	k = (MDB_val){ store_flag_key(key, child, agency, ref), key };
	assert_int_equal(mdb_txn_begin(b.store.env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(mdb_get(txn, b.store.flags, &k, &v), 0);
	sf = ehx__stored_flag__unpack(NULL, v.mv_size, v.mv_data);
	mdb_txn_abort(txn);
	assert_non_null(sf);
	assert_non_null(sf->flag);
	return sf;
}

static unsigned
flag_level(const char *nhs, const char *agency, const char *ref)
{
	Ehx__StoredFlag *sf = stored_flag(nhs, agency, ref);
	unsigned level = sf->flag->level;

	ehx__stored_flag__free_unpacked(sf, NULL);
	return level;
}

/* The number of agency's stream last applied (0: none). */
static uint64_t
stream_at(const char *agency, const unsigned char stream[EHX_STREAM_LEN])
{
	unsigned char key[EHX_MAX_ID + 1 + EHX_STREAM_LEN];
	size_t n = strlen(agency);
	MDB_txn *txn;
	MDB_val k, v;
	uint64_t at = 0;
	int rc;

	memcpy(key, agency, n);
	key[n] = 0;
	memcpy(key + n + 1, stream, EHX_STREAM_LEN);
	k = (MDB_val){ n + 1 + EHX_STREAM_LEN, key };
	assert_int_equal(mdb_txn_begin(b.store.env, NULL, MDB_RDONLY, &txn), 0);
	if ((rc = mdb_get(txn, b.store.streams, &k, &v)) == 0) {
		/* The last number, then the ids of the last 64. */
		assert_int_equal(v.mv_size, 8 + 64 * EHX_MSGID_LEN);
		at = get_be64(v.mv_data);
	} else
		assert_int_equal(rc, MDB_NOTFOUND);
	mdb_txn_abort(txn);
	return at;
}

/* Forget the broker's stored reply to (agency, id): as if pruned. */
static void
replay_forget(const char *agency, const unsigned char id[EHX_MSGID_LEN])
{
	unsigned char key[EHX_MAX_ID + 1 + EHX_MSGID_LEN];
	size_t n = strlen(agency);
	MDB_txn *txn;
	MDB_val k;

	memcpy(key, agency, n);
	key[n] = 0;
	memcpy(key + n + 1, id, EHX_MSGID_LEN);
	k = (MDB_val){ n + 1 + EHX_MSGID_LEN, key };
	assert_int_equal(mdb_txn_begin(b.store.env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_del(txn, b.store.replay, &k, NULL), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
}

/* ---- notifications, as an agent opens them ------------------------------- */

/* Fetch after/limit as agency s's case system; the batch stays in r. */
static const Ehx__NotificationBatch *
fetch(int s, uint64_t after, uint32_t limit, struct reply *r)
{
	struct msg m;

	msg_fetch(&m, s, after, limit, EHX__ROLE__ROLE_SYSTEM);
	send_msg(s, &m, r);
	if (r->body->payload_case == EHX__BODY__PAYLOAD_ERROR)
		fail_msg("fetch refused: %s", r->body->error->message);
	assert_int_equal(r->body->payload_case,
	    EHX__BODY__PAYLOAD_NOTIFICATIONS);
	assert_non_null(r->body->notifications);
	assert_int_equal(b.npush, 0);
	for (size_t i = 0; i < r->body->notifications->n_envelopes; i++)
		track(ids[s], r->body->notifications->envelopes[i].data,
		    r->body->notifications->envelopes[i].len);
	return r->body->notifications;
}

struct note {
	Ehx__Envelope *env;
	Ehx__Body *body;
	const Ehx__Notification *n;
};

static void
note_free(struct note *t)
{
	ehx_body_free(t->body);
	ehx_envelope_free(t->env);
	memset(t, 0, sizeof(*t));
}

/* Open one notification envelope addressed to `to`, as its agent does. */
static const Ehx__Notification *
note_open(const void *bytes, size_t len, const char *to, struct note *t)
{
	char why[128];

	memset(t, 0, sizeof(*t));
	assert_int_equal(ehx_envelope_decode(bytes, len, &t->env), 0);
	assert_int_equal(t->env->signer.len, EHX_FPR_LEN);
	assert_memory_equal(t->env->signer.data, ehx_cert_fpr(broker_cert),
	    EHX_FPR_LEN);
	assert_int_equal(ehx_envelope_verify(t->env,
	    ehx_cert_pubkey(broker_cert)), 0);
	if (ehx_body_decode(t->env->body.data, t->env->body.len, &t->body, why,
	    sizeof(why)) != 0)
		fail_msg("a notification does not decode: %s", why);
	assert_string_equal(t->body->sender, "broker");
	assert_string_equal(t->body->recipient, to);
	assert_int_equal(t->body->in_reply_to.len, 0);
	assert_null(t->body->person);
	assert_null(t->body->checkpoint);
	assert_null(t->body->sequence);
	assert_int_equal(t->body->payload_case,
	    EHX__BODY__PAYLOAD_NOTIFICATION);
	assert_non_null(t->body->notification);
	/* Never the note, whatever the view. */
	assert_null(memmem(bytes, len, NOTE, strlen(NOTE)));
	t->n = t->body->notification;
	return t->n;
}

/* The one notification b.push holds for `to`, opened. */
static const Ehx__Notification *
pushed_to(const char *to, struct note *t)
{
	for (size_t i = 0; i < b.npush; i++)
		if (strcmp(b.push[i].to->id, to) == 0)
			return note_open(b.push[i].env, b.push[i].len, to, t);
	fail_msg("nothing pushed to %s", to);
	return NULL;
}

static bool
pushed(const char *to)
{
	for (size_t i = 0; i < b.npush; i++)
		if (strcmp(b.push[i].to->id, to) == 0)
			return true;
	return false;
}

/* ---- streams -------------------------------------------------------------- */

/* Number 1 of a new stream is applied, and the stream is at 1. */
static void
test_stream_first_applied(void **state)
{
	unsigned char stream[EHX_STREAM_LEN];
	char nhs[EHX_NHS_LEN + 1];
	struct counts before, now;
	struct msg m;
	struct reply r;
	const Ehx__Ack *ack;

	(void)state;
	nhs_make(1, nhs);
	assert_int_equal(ehx_random(stream, sizeof(stream)), 0);
	assert_int_equal(stream_at("police", stream), 0);
	before = counts_now();
	msg_publish(&m, POLICE, nhs, "S-1", EHX__CATEGORY__CATEGORY_OFFENDING, 2);
	msg_seq(&m, stream, sizeof(stream), 1);
	send_msg(POLICE, &m, &r);
	ack = expect_ack(&r);
	assert_string_equal(ack->id, "S-1");
	assert_string_equal(ack->basis, "role:practitioner");
	assert_false(ack->duplicate);
	assert_false(ack->unchanged);
	reply_free(&r);
	now = counts_now();
	assert_int_equal(now.flags, before.flags + 1);
	assert_int_equal(now.audit_size, before.audit_size + 1);
	assert_int_equal(now.replay, before.replay + 1);
	assert_int_equal(now.streams, before.streams + 1);
	assert_int_equal(stream_at("police", stream), 1);
	assert_int_equal(flag_level(nhs, "police", "S-1"), 2);
}

/*
 * The same outbox request signed afresh (a new send time, the same message
 * id and number): the first reply, byte for byte, and no second effect —
 * no flag change, no audit record, no second notification.
 */
static void
test_stream_resigned_first_reply(void **state)
{
	unsigned char stream[EHX_STREAM_LEN], *f1, *f2;
	char nhs[EHX_NHS_LEN + 1];
	size_t l1 = 0, l2 = 0;
	struct counts after1;
	struct msg m;
	struct reply r1, r2;
	const Ehx__Ack *a1, *a2;

	(void)state;
	nhs_make(2, nhs);
	assert_int_equal(publish(SCHOOL, nhs, "SCH-1",
	    EHX__CATEGORY__CATEGORY_SCHOOL_ATTENDANCE, 1, NULL), 0);
	assert_int_equal(ehx_random(stream, sizeof(stream)), 0);
	msg_publish(&m, POLICE, nhs, "DA-1", EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE,
	    3);
	msg_seq(&m, stream, sizeof(stream), 1);
	f1 = seal(POLICE, &m, &l1);
	process("police", f1, l1, m.id, &r1);
	a1 = expect_ack(&r1);
	assert_int_equal(b.npush, 1);
	after1 = counts_now();
	assert_int_equal(queue_len("school"), 1);

	/* Drained hours later: signed again with a new send time. */
	m.body.sent_at += 1000;
	f2 = seal(POLICE, &m, &l2);
	assert_false(l1 == l2 && memcmp(f1, f2, l1) == 0);
	process("police", f2, l2, m.id, &r2);
	assert_int_equal(r2.len, r1.len);
	assert_memory_equal(r2.bytes, r1.bytes, r1.len);
	a2 = expect_ack(&r2);
	assert_string_equal(a2->id, "DA-1");
	assert_string_equal(a2->basis, a1->basis);
	assert_false(a2->duplicate);
	assert_int_equal(b.npush, 0);
	expect_counts(after1, counts_now());
	assert_int_equal(queue_len("school"), 1);
	assert_int_equal(queue_last("school"), 1);
	assert_int_equal(stream_at("police", stream), 1);
	reply_free(&r2);

	/* The very first envelope again: the same. */
	process("police", f1, l1, m.id, &r2);
	assert_int_equal(r2.len, r1.len);
	assert_memory_equal(r2.bytes, r1.bytes, r1.len);
	assert_int_equal(b.npush, 0);
	expect_counts(after1, counts_now());
	reply_free(&r2);

	/* The same request as number 1 of a new stream (an agent that
	 * renumbered what it held, its answers lost): the first reply, not
	 * REPLAY and not a second effect; the new stream moves past it. */
	{
		unsigned char stream2[EHX_STREAM_LEN], *f3;
		size_t l3 = 0;
		struct counts now;

		assert_int_equal(ehx_random(stream2, sizeof(stream2)), 0);
		msg_seq(&m, stream2, sizeof(stream2), 1);
		m.body.sent_at += 1000;
		f3 = seal(POLICE, &m, &l3);
		process("police", f3, l3, m.id, &r2);
		assert_int_equal(r2.len, r1.len);
		assert_memory_equal(r2.bytes, r1.bytes, r1.len);
		assert_int_equal(b.npush, 0);
		now = counts_now();
		assert_int_equal(now.audit_size, after1.audit_size);
		assert_int_equal(now.flags, after1.flags);
		assert_int_equal(now.notify, after1.notify);
		assert_int_equal(now.streams, after1.streams + 1);
		assert_int_equal(stream_at("police", stream2), 1);
		assert_int_equal(stream_at("police", stream), 1);
		reply_free(&r2);
		free(f3);
	}
	reply_free(&r1);
	free(f1);
	free(f2);
}

/*
 * A number beyond the next one due is refused OUT_OF_ORDER naming the
 * number due, is not audited and leaves no trace: the very same envelope
 * is applied once the gap is filled.
 */
static void
test_stream_out_of_order(void **state)
{
	unsigned char stream[EHX_STREAM_LEN], id3[EHX_MSGID_LEN], *f3;
	char nhs[EHX_NHS_LEN + 1];
	size_t l3 = 0;
	struct counts before, now;
	struct msg m;
	struct reply r;

	(void)state;
	nhs_make(3, nhs);
	assert_int_equal(ehx_random(stream, sizeof(stream)), 0);
	msg_publish(&m, POLICE, nhs, "O-1", EHX__CATEGORY__CATEGORY_OFFENDING, 1);
	msg_seq(&m, stream, sizeof(stream), 1);
	send_msg(POLICE, &m, &r);
	expect_ack(&r);
	reply_free(&r);

	before = counts_now();
	msg_publish(&m, POLICE, nhs, "O-3", EHX__CATEGORY__CATEGORY_OFFENDING, 3);
	msg_seq(&m, stream, sizeof(stream), 3);
	memcpy(id3, m.id, sizeof(id3));
	f3 = seal(POLICE, &m, &l3);
	process("police", f3, l3, id3, &r);
	expect_error(&r, EHX_ERR_OUT_OF_ORDER);
	assert_int_equal(r.body->error->expected, 2);
	assert_int_equal(b.npush, 0);
	reply_free(&r);
	now = counts_now();
	expect_counts(before, now);     /* the audit log did not grow either */
	assert_int_equal(stream_at("police", stream), 1);

	/* Number 2 fills the gap. */
	msg_publish(&m, POLICE, nhs, "O-2", EHX__CATEGORY__CATEGORY_OFFENDING, 2);
	msg_seq(&m, stream, sizeof(stream), 2);
	send_msg(POLICE, &m, &r);
	assert_false(expect_ack(&r)->duplicate);
	reply_free(&r);
	assert_int_equal(stream_at("police", stream), 2);
	assert_int_equal(flag_level(nhs, "police", "O-2"), 2);
	now = counts_now();
	assert_int_equal(now.flags, before.flags + 1);
	assert_int_equal(now.audit_size, before.audit_size + 1);

	/* The envelope refused before is applied now: nothing of it was kept. */
	process("police", f3, l3, id3, &r);
	assert_string_equal(expect_ack(&r)->id, "O-3");
	assert_false(r.body->ack->duplicate);
	reply_free(&r);
	assert_int_equal(stream_at("police", stream), 3);
	assert_int_equal(flag_level(nhs, "police", "O-3"), 3);

	/* And two ahead again: the number due is 4. */
	msg_publish(&m, POLICE, nhs, "O-9", EHX__CATEGORY__CATEGORY_OFFENDING, 1);
	msg_seq(&m, stream, sizeof(stream), 9);
	send_msg(POLICE, &m, &r);
	expect_error(&r, EHX_ERR_OUT_OF_ORDER);
	assert_int_equal(r.body->error->expected, 4);
	reply_free(&r);
	free(f3);
}

/*
 * A number applied before whose reply is no longer kept (pruned from the
 * replay store): an Ack marked duplicate, and no effect, even for a body
 * that would change the flag.
 */
static void
test_stream_duplicate_after_prune(void **state)
{
	unsigned char stream[EHX_STREAM_LEN], id1[EHX_MSGID_LEN];
	char nhs[EHX_NHS_LEN + 1];
	struct counts before;
	struct msg m, m2;
	struct reply r;
	const Ehx__Ack *ack;

	(void)state;
	nhs_make(4, nhs);
	assert_int_equal(publish(SCHOOL, nhs, "SCH-1",
	    EHX__CATEGORY__CATEGORY_SCHOOL_ATTENDANCE, 1, NULL), 0);
	/* The hub sees levels: each change below is news to it. */
	assert_int_equal(publish(HUB, nhs, "EH-1",
	    EHX__CATEGORY__CATEGORY_PARENTING, 1, NULL), 0);
	assert_int_equal(ehx_random(stream, sizeof(stream)), 0);
	msg_publish(&m, POLICE, nhs, "D-1", EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE,
	    2);
	msg_seq(&m, stream, sizeof(stream), 1);
	memcpy(id1, m.id, sizeof(id1));
	send_msg(POLICE, &m, &r);
	expect_ack(&r);
	assert_int_equal(b.npush, 2);
	reply_free(&r);
	msg_publish(&m2, POLICE, nhs, "D-1", EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE,
	    3);
	msg_seq(&m2, stream, sizeof(stream), 2);
	send_msg(POLICE, &m2, &r);
	expect_ack(&r);
	assert_int_equal(b.npush, 1);
	reply_free(&r);
	assert_int_equal(queue_len("hub"), 2);

	/* Number 2's reply is pruned; it is sent again, signed afresh. */
	replay_forget("police", m2.id);
	before = counts_now();
	m2.body.sent_at += 1000;
	send_msg(POLICE, &m2, &r);
	ack = expect_ack(&r);
	assert_true(ack->duplicate);
	assert_false(ack->unchanged);
	assert_string_equal(ack->id, "");
	assert_int_equal(b.npush, 0);
	reply_free(&r);
	expect_counts(before, counts_now());
	assert_int_equal(stream_at("police", stream), 2);

	/* Number 1, with another level now, after its reply went the same
	 * way: still no effect. */
	replay_forget("police", id1);
	before = counts_now();
	m.pf.level = 1;
	m.body.sent_at += 1000;
	send_msg(POLICE, &m, &r);
	assert_true(expect_ack(&r)->duplicate);
	reply_free(&r);
	expect_counts(before, counts_now());
	assert_int_equal(flag_level(nhs, "police", "D-1"), 3);
	assert_int_equal(queue_len("hub"), 2);

	/* Number 2 under another message id (the agent's outbox went back
	 * to a copy): not a retry. Refused OUT_OF_ORDER with expected 0
	 * ("start a new stream"), nothing applied, nothing audited. */
	before = counts_now();
	msg_publish(&m2, POLICE, nhs, "D-1", EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE,
	    4);
	msg_seq(&m2, stream, sizeof(stream), 2);
	send_msg(POLICE, &m2, &r);
	expect_error(&r, EHX_ERR_OUT_OF_ORDER);
	assert_int_equal(r.body->error->expected, 0);
	reply_free(&r);
	expect_counts(before, counts_now());
	assert_int_equal(flag_level(nhs, "police", "D-1"), 3);
	assert_int_equal(stream_at("police", stream), 2);

	/* The whole replay store gone: number 2 with its own id is still
	 * known (by the stream's ring of recent ids) as applied. */
	{
		MDB_txn *txn;

		assert_int_equal(mdb_txn_begin(b.store.env, NULL, 0, &txn), 0);
		assert_int_equal(mdb_drop(txn, b.store.replay, 0), 0);
		assert_int_equal(mdb_txn_commit(txn), 0);
	}
	before = counts_now();
	m.pf.level = 4;
	m.body.sent_at += 1000;
	send_msg(POLICE, &m, &r);
	assert_true(expect_ack(&r)->duplicate);
	reply_free(&r);
	expect_counts(before, counts_now());
	assert_int_equal(flag_level(nhs, "police", "D-1"), 3);

	/* Number 3 is applied as usual (pruning meets the dropped entries). */
	msg_publish(&m2, POLICE, nhs, "D-1", EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE,
	    4);
	msg_seq(&m2, stream, sizeof(stream), 3);
	send_msg(POLICE, &m2, &r);
	ack = expect_ack(&r);
	assert_false(ack->duplicate);
	assert_int_equal(b.npush, 1);
	reply_free(&r);
	assert_int_equal(flag_level(nhs, "police", "D-1"), 4);
	assert_int_equal(stream_at("police", stream), 3);
	assert_false(b.store.failed);
}

/* Refused MALFORMED (the message naming hint), audited as a denial, with
 * nothing else changed. */
static void
expect_malformed(int s, struct msg *m, const char *hint)
{
	struct counts before = counts_now(), now;
	struct reply r;
	Ehx__AuditRecord *a;

	send_msg(s, m, &r);
	expect_error(&r, EHX_ERR_MALFORMED);
	assert_non_null(strstr(r.body->error->message, hint));
	assert_int_equal(r.body->error->expected, 0);
	assert_int_equal(b.npush, 0);
	reply_free(&r);
	now = counts_now();
	before.audit++;
	before.audit_size++;
	expect_counts(before, now);
	a = audit_record(now.audit_size);
	assert_string_equal(a->agency, ids[s]);
	assert_string_equal(a->action, ehx_payload_name(m->body.payload_case));
	assert_int_equal(a->decision, EHX__DECISION__DECISION_DENY);
	assert_int_equal(a->error, ehx_err_to_wire(EHX_ERR_MALFORMED));
	assert_memory_equal(a->message_id.data, m->id, EHX_MSGID_LEN);
	ehx__audit_record__free_unpacked(a, NULL);
}

/* A stream not of 16 bytes, number 0 or beyond 2^62: MALFORMED, and the
 * stream does not move. 2^62 itself is a number (one far ahead). */
static void
test_stream_malformed(void **state)
{
	unsigned char stream[EHX_STREAM_LEN + 1];
	char nhs[EHX_NHS_LEN + 1];
	static const struct {
		size_t len;
		uint64_t number;
	} bad[] = {
		{ EHX_STREAM_LEN - 1, 1 },
		{ EHX_STREAM_LEN + 1, 1 },
		{ 0, 1 },
		{ EHX_STREAM_LEN, 0 },
		{ EHX_STREAM_LEN, EHX_MAX_SEQ + 1 },
		{ EHX_STREAM_LEN, UINT64_MAX },
	};
	struct counts before;
	struct msg m;
	struct reply r;

	(void)state;
	nhs_make(5, nhs);
	assert_int_equal(ehx_random(stream, sizeof(stream)), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		msg_publish(&m, POLICE, nhs, "M-1",
		    EHX__CATEGORY__CATEGORY_OFFENDING, 1);
		msg_seq(&m, stream, bad[i].len, bad[i].number);
		expect_malformed(POLICE, &m, "sequence");
		assert_int_equal(stream_at("police", stream), 0);
	}
	assert_int_equal(entries(b.store.flags), 0);

	/* 2^62 is well formed: refused only as out of order. */
	before = counts_now();
	msg_publish(&m, POLICE, nhs, "M-1", EHX__CATEGORY__CATEGORY_OFFENDING, 1);
	msg_seq(&m, stream, EHX_STREAM_LEN, EHX_MAX_SEQ);
	send_msg(POLICE, &m, &r);
	expect_error(&r, EHX_ERR_OUT_OF_ORDER);
	assert_int_equal(r.body->error->expected, 1);
	reply_free(&r);
	expect_counts(before, counts_now());

	/* Number 1 of the same stream is applied: it starts at 1. */
	msg_publish(&m, POLICE, nhs, "M-1", EHX__CATEGORY__CATEGORY_OFFENDING, 1);
	msg_seq(&m, stream, EHX_STREAM_LEN, 1);
	send_msg(POLICE, &m, &r);
	assert_false(expect_ack(&r)->duplicate);
	reply_free(&r);
	assert_int_equal(stream_at("police", stream), 1);
	assert_int_equal(entries(b.store.flags), 1);
}

/* A fetch is not an outbox request: one carrying a sequence is MALFORMED,
 * and it acknowledges (drops) nothing. */
static void
test_fetch_sequenced_malformed(void **state)
{
	unsigned char stream[EHX_STREAM_LEN];
	char nhs[EHX_NHS_LEN + 1];
	struct msg m;

	(void)state;
	nhs_make(6, nhs);
	publish(SCHOOL, nhs, "SCH-1", EHX__CATEGORY__CATEGORY_SCHOOL_ATTENDANCE, 1,
	    NULL);
	assert_int_equal(publish(POLICE, nhs, "DA-1",
	    EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE, 2, NULL), 1);
	assert_int_equal(queue_len("school"), 1);
	assert_int_equal(ehx_random(stream, sizeof(stream)), 0);
	msg_fetch(&m, SCHOOL, 1, 10, EHX__ROLE__ROLE_SYSTEM);
	msg_seq(&m, stream, sizeof(stream), 1);
	expect_malformed(SCHOOL, &m, "fetch");
	assert_int_equal(queue_len("school"), 1);
	assert_int_equal(stream_at("school", stream), 0);
}

/* Send m as number n of stream; expect an applied ack. */
static void
seq_applied(int s, const char *nhs, const unsigned char *stream, uint64_t n,
    const char *ref)
{
	struct msg m;
	struct reply r;
	const Ehx__Ack *ack;

	msg_publish(&m, s, nhs, ref, EHX__CATEGORY__CATEGORY_OFFENDING, 2);
	msg_seq(&m, stream, EHX_STREAM_LEN, n);
	send_msg(s, &m, &r);
	ack = expect_ack(&r);
	assert_false(ack->duplicate);
	assert_string_equal(ack->id, ref);
	reply_free(&r);
	assert_int_equal(stream_at(ids[s], stream), n);
}

static void
seq_out_of_order(int s, const char *nhs, const unsigned char *stream,
    uint64_t n, uint64_t expected)
{
	struct msg m;
	struct reply r;

	msg_publish(&m, s, nhs, "NEVER", EHX__CATEGORY__CATEGORY_OFFENDING, 2);
	msg_seq(&m, stream, EHX_STREAM_LEN, n);
	send_msg(s, &m, &r);
	expect_error(&r, EHX_ERR_OUT_OF_ORDER);
	assert_int_equal(r.body->error->expected, expected);
	reply_free(&r);
}

/* Two streams of one agency (two outboxes) are numbered apart. */
static void
test_streams_same_agency(void **state)
{
	unsigned char s1[EHX_STREAM_LEN], s2[EHX_STREAM_LEN];
	char nhs[EHX_NHS_LEN + 1];

	(void)state;
	nhs_make(7, nhs);
	assert_int_equal(ehx_random(s1, sizeof(s1)), 0);
	memcpy(s2, s1, sizeof(s2));
	s2[EHX_STREAM_LEN - 1] ^= 1;    /* differs in the last byte only */
	seq_applied(POLICE, nhs, s1, 1, "A-1");
	seq_applied(POLICE, nhs, s1, 2, "A-2");
	/* Number 1 of the other stream is new, not a duplicate. */
	seq_applied(POLICE, nhs, s2, 1, "B-1");
	seq_out_of_order(POLICE, nhs, s2, 3, 2);
	seq_out_of_order(POLICE, nhs, s1, 4, 3);
	seq_applied(POLICE, nhs, s1, 3, "A-3");
	seq_applied(POLICE, nhs, s2, 2, "B-2");
	assert_int_equal(stream_at("police", s1), 3);
	assert_int_equal(stream_at("police", s2), 2);
	assert_int_equal(entries(b.store.streams), 2);
	assert_int_equal(entries(b.store.flags), 5);
}

/* Two agencies whose outboxes happen to use the same stream bytes. */
static void
test_streams_two_agencies(void **state)
{
	unsigned char s[EHX_STREAM_LEN];
	char nhs[EHX_NHS_LEN + 1];

	(void)state;
	nhs_make(8, nhs);
	assert_int_equal(ehx_random(s, sizeof(s)), 0);
	seq_applied(POLICE, nhs, s, 1, "P-1");
	seq_applied(POLICE, nhs, s, 2, "P-2");
	seq_applied(HEALTH, nhs, s, 1, "H-1");
	seq_out_of_order(HEALTH, nhs, s, 3, 2);
	seq_out_of_order(POLICE, nhs, s, 4, 3);
	seq_applied(HEALTH, nhs, s, 2, "H-2");
	seq_applied(POLICE, nhs, s, 3, "P-3");
	assert_int_equal(stream_at("police", s), 3);
	assert_int_equal(stream_at("health", s), 2);
	assert_int_equal(entries(b.store.streams), 2);
	assert_int_equal(flag_level(nhs, "health", "H-1"), 2);
}

/* ---- notifications --------------------------------------------------------- */

/*
 * Operation Encompass: the school holds an open flag on the child; the
 * police publish domestic abuse. The school is told, on the agreement's
 * legal obligation, in a queue sealed at rest, audited, and it fetches a
 * broker-signed notification showing only what its view allows.
 */
static void
test_notify_school(void **state)
{
	char nhs[EHX_NHS_LEN + 1];
	unsigned char child[EHX_PSEUDONYM_LEN], id[EHX_MSGID_LEN], *raw, *push;
	size_t rawlen = 0, pushlen;
	struct counts before, now;
	int64_t t0, t1;
	struct note t;
	struct reply r;
	const Ehx__NotificationBatch *nb;
	const Ehx__Notification *n;

	(void)state;
	nhs_make(10, nhs);
	child_of(nhs, child);
	assert_int_equal(publish(SCHOOL, nhs, "SCH-1",
	    EHX__CATEGORY__CATEGORY_SCHOOL_ATTENDANCE, 2, NULL), 0);
	assert_int_equal(queue_last("school"), 0);
	before = counts_now();
	t0 = ehx_now_ms();
	{
		struct msg m;
		const Ehx__Ack *ack;

		msg_publish(&m, POLICE, nhs, "DA-1",
		    EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE, 3);
		m.pf.lead = true;
		send_msg(POLICE, &m, &r);
		ack = expect_ack(&r);
		assert_int_equal(b.npush, 1);
		assert_false(ack->unchanged);
		memcpy(id, m.id, sizeof(id));
		reply_free(&r);
	}
	t1 = ehx_now_ms();
	/* One envelope to push, to the school. */
	assert_int_equal(b.npush, 1);
	assert_string_equal(b.push[0].to->id, "school");
	pushlen = b.push[0].len;
	push = malloc(pushlen);
	assert_non_null(push);
	memcpy(push, b.push[0].env, pushlen);

	/* Queued under "school" ‖ 0 ‖ be64(1), sealed at rest. */
	now = counts_now();
	assert_int_equal(now.notify, before.notify + 1);
	assert_int_equal(queue_len("school"), 1);
	assert_int_equal(queue_last("school"), 1);
	assert_int_equal(queue_last("police"), 0);
	raw = queue_raw("school", 1, &rawlen);
	assert_non_null(raw);
	assert_null(memmem(raw, rawlen, nhs, EHX_NHS_LEN));
	assert_null(memmem(raw, rawlen, "Sam Jones", 9));
	assert_null(memmem(raw, rawlen, "school", 6));
	free(raw);
	assert_null(queue_raw("school", 0, &rawlen));
	assert_null(queue_raw("school", 2, &rawlen));

	/* Audited in the publish's own record, which names the school it
	 * told: one record a publish, whoever is told (issue 16). */
	assert_int_equal(now.audit_size, before.audit_size + 1);
	{
		Ehx__AuditRecord *p = audit_record(before.audit_size + 1);

		assert_string_equal(p->agency, "police");
		assert_string_equal(p->action, "publish_flag");
		assert_int_equal(p->decision, EHX__DECISION__DECISION_ALLOW);
		assert_int_equal(p->n_notified, 1);
		assert_string_equal(p->notified[0]->agency, "school");
		assert_int_equal(p->notified[0]->basis,
		    EHX__LAWFUL_BASIS__LAWFUL_BASIS_LEGAL_OBLIGATION);
		assert_string_equal(p->notified[0]->consent_id, "");
		assert_int_equal(p->notified[0]->seq, 1);
		assert_int_equal(p->message_id.len, EHX_MSGID_LEN);
		assert_memory_equal(p->message_id.data, id, EHX_MSGID_LEN);
		assert_int_equal(p->child.len, EHX_PSEUDONYM_LEN);
		assert_memory_equal(p->child.data, child, EHX_PSEUDONYM_LEN);
		assert_true(p->time >= t0 && p->time <= t1);
		ehx__audit_record__free_unpacked(p, NULL);
	}
	/* And indexed as a disclosure of the police's flag to the school:
	 * under the publish record's seq and the notification's place. */
	assert_int_equal(now.disclosures, before.disclosures + 1);
	{
		unsigned char k[16];
		MDB_val key = { 0, k }, v;
		MDB_txn *txn;
		Ehx__Disclosure *d;

		memcpy(k, "police", 7);
		put_be64(k + 7, before.audit_size + 1);
		k[15] = 1;
		key.mv_size = 16;
		assert_int_equal(mdb_txn_begin(b.store.env, NULL, MDB_RDONLY,
		    &txn), 0);
		assert_int_equal(mdb_get(txn, b.store.disclosures, &key, &v), 0);
		d = ehx__disclosure__unpack(NULL, v.mv_size, v.mv_data);
		mdb_txn_abort(txn);
		assert_non_null(d);
		assert_string_equal(d->to_agency, "school");
		assert_string_equal(d->basis,
		    "policy:" AGREEMENT ":legal_obligation");
		assert_int_equal(d->seq, before.audit_size + 1);
		assert_memory_equal(d->child.data, child, EHX_PSEUDONYM_LEN);
		ehx__disclosure__free_unpacked(d, NULL);
	}

	/* The school's case system fetches it. */
	before = counts_now();
	nb = fetch(SCHOOL, 0, 64, &r);
	assert_int_equal(nb->n_envelopes, 1);
	assert_int_equal(nb->pending, 0);
	/* The very envelope pushed. */
	assert_int_equal(nb->envelopes[0].len, pushlen);
	assert_memory_equal(nb->envelopes[0].data, push, pushlen);
	n = note_open(nb->envelopes[0].data, nb->envelopes[0].len, "school", &t);
	assert_int_equal(n->seq, 1);
	assert_string_equal(n->nhs_number, nhs);
	assert_string_equal(n->agency, "police");
	assert_int_equal(n->agency_type, EHX__AGENCY_TYPE__AGENCY_TYPE_POLICE);
	assert_int_equal(n->category, EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE);
	assert_int_equal(n->event, EHX__NOTIFY_EVENT__NOTIFY_EVENT_NEW);
	/* [view school] details.domestic_abuse = contact: no level. */
	assert_int_equal(n->level, 0);
	assert_int_equal(n->previous_level, 0);
	assert_non_null(n->contact);
	assert_string_equal(n->contact->name, "Sam Jones");
	assert_string_equal(n->contact->role, "officer");
	assert_string_equal(n->contact->contact, "01632 960001");
	assert_true(n->lead);
	assert_int_equal(n->basis,
	    EHX__LAWFUL_BASIS__LAWFUL_BASIS_LEGAL_OBLIGATION);
	assert_string_equal(n->consent_id, "");
	assert_string_equal(n->agreement, AGREEMENT);
	assert_true(n->flagged_at >= t0 && n->flagged_at <= t1);
	assert_true(t.body->sent_at >= t0 && t.body->sent_at <= t1);
	/* The notification has a message id of its own. */
	assert_int_equal(t.body->message_id.len, EHX_MSGID_LEN);
	assert_memory_not_equal(t.body->message_id.data, id, EHX_MSGID_LEN);
	note_free(&t);
	reply_free(&r);
	/* A fetch after 0 acknowledges nothing; fetches are not audited and
	 * keep no replay entry. */
	expect_counts(before, counts_now());
	assert_int_equal(queue_len("school"), 1);

	nb = fetch(SCHOOL, 1, 64, &r);
	assert_int_equal(nb->n_envelopes, 0);
	assert_int_equal(nb->pending, 0);
	reply_free(&r);
	now = counts_now();
	assert_int_equal(queue_len("school"), 0);
	assert_int_equal(now.notify, before.notify - 1);
	assert_int_equal(now.audit_size, before.audit_size);
	assert_int_equal(now.replay, before.replay);
	/* The numbering goes on. */
	assert_int_equal(queue_last("school"), 1);
	free(push);
}

/* A change of level: LEVEL_CHANGED, with the previous level, to the
 * agencies whose view shows the level; the school's view of domestic
 * abuse does not, so the school is not told of it at all. */
static void
test_notify_level_changed(void **state)
{
	char nhs[EHX_NHS_LEN + 1];
	struct note t;
	const Ehx__Notification *n;
	struct reply r;
	const Ehx__NotificationBatch *nb;

	(void)state;
	nhs_make(11, nhs);
	publish(SCHOOL, nhs, "SCH-1", EHX__CATEGORY__CATEGORY_SCHOOL_ATTENDANCE, 2,
	    NULL);
	publish(HUB, nhs, "EH-1", EHX__CATEGORY__CATEGORY_PARENTING, 2, NULL);
	assert_int_equal(publish(POLICE, nhs, "DA-1",
	    EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE, 2, NULL), 2);
	/* The hub (local_authority = public_task) sees the level. */
	n = pushed_to("hub", &t);
	assert_int_equal(n->seq, 1);
	assert_int_equal(n->event, EHX__NOTIFY_EVENT__NOTIFY_EVENT_NEW);
	assert_int_equal(n->level, 2);
	assert_int_equal(n->previous_level, 0);
	assert_int_equal(n->basis, EHX__LAWFUL_BASIS__LAWFUL_BASIS_PUBLIC_TASK);
	note_free(&t);
	n = pushed_to("school", &t);
	assert_int_equal(n->event, EHX__NOTIFY_EVENT__NOTIFY_EVENT_NEW);
	assert_int_equal(n->level, 0);
	assert_non_null(n->contact);
	note_free(&t);

	assert_int_equal(publish(POLICE, nhs, "DA-1",
	    EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE, 4, NULL), 1);
	n = pushed_to("hub", &t);
	assert_int_equal(n->seq, 2);
	assert_int_equal(n->event, EHX__NOTIFY_EVENT__NOTIFY_EVENT_LEVEL_CHANGED);
	assert_int_equal(n->level, 4);
	assert_int_equal(n->previous_level, 2);
	assert_non_null(n->contact);
	note_free(&t);
	assert_false(pushed("school"));

	/* What the school's queue holds: the new flag only. */
	nb = fetch(SCHOOL, 0, 64, &r);
	assert_int_equal(nb->n_envelopes, 1);
	n = note_open(nb->envelopes[0].data, nb->envelopes[0].len, "school",
	    &t);
	assert_int_equal(n->seq, 1);
	assert_int_equal(n->event, EHX__NOTIFY_EVENT__NOTIFY_EVENT_NEW);
	note_free(&t);
	reply_free(&r);

	/* A view that shows the level: the school is told of its change. */
	b.policy.view[EHX__AGENCY_TYPE__AGENCY_TYPE_SCHOOL]
	    [EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE] |= EHX_POLICY_LEVEL;
	assert_int_equal(publish(POLICE, nhs, "DA-1",
	    EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE, 3, NULL), 2);
	n = pushed_to("school", &t);
	assert_int_equal(n->seq, 2);
	assert_int_equal(n->event, EHX__NOTIFY_EVENT__NOTIFY_EVENT_LEVEL_CHANGED);
	assert_int_equal(n->level, 3);
	assert_int_equal(n->previous_level, 4);
	note_free(&t);

	/* A view that shows nothing but the flag: a reopened flag is told
	 * with no level and no contact. */
	b.policy.view[EHX__AGENCY_TYPE__AGENCY_TYPE_SCHOOL]
	    [EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE] = EHX_POLICY_SEE;
	close_flag(POLICE, nhs, "DA-1");
	assert_int_equal(publish(POLICE, nhs, "DA-1",
	    EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE, 3, NULL), 2);
	n = pushed_to("school", &t);
	assert_int_equal(n->seq, 3);
	assert_int_equal(n->event, EHX__NOTIFY_EVENT__NOTIFY_EVENT_REOPENED);
	assert_int_equal(n->level, 0);
	assert_int_equal(n->previous_level, 0);
	assert_null(n->contact);
	assert_false(n->lead);
	assert_string_equal(n->agency, "police");
	note_free(&t);
	n = pushed_to("hub", &t);
	assert_int_equal(n->event, EHX__NOTIFY_EVENT__NOTIFY_EVENT_REOPENED);
	assert_int_equal(n->level, 3);
	note_free(&t);
}

/*
 * A child with many closed flags from one agency and one open one: the
 * scan for open involvement reads each stored flag without keeping it, so
 * a request's memory (its arena, made small here) is not spent on them;
 * the publish goes through, and the agency is told once, for its open flag.
 */
static void
test_notify_many_closed_flags(void **state)
{
	char nhs[EHX_NHS_LEN + 1], ref[16];
	struct ehx_arena *big = b.arena;

	(void)state;
	nhs_make(30, nhs);
	assert_non_null(b.arena = ehx_arena_new(256 * 1024));
	for (int i = 0; i < 800; i++) {
		snprintf(ref, sizeof(ref), "SCH-%04d", i);
		publish(SCHOOL, nhs, ref, EHX__CATEGORY__CATEGORY_SCHOOL_ATTENDANCE,
		    2, NULL);
		close_flag(SCHOOL, nhs, ref);
	}
	assert_int_equal(publish(POLICE, nhs, "DA-1",
	    EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE, 3, NULL), 0);
	publish(SCHOOL, nhs, "SCH-9999", EHX__CATEGORY__CATEGORY_TRANSITIONS, 1,
	    NULL);
	assert_int_equal(publish(POLICE, nhs, "DA-2",
	    EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE, 3, NULL), 1);
	assert_true(pushed("school"));
	assert_false(b.store.failed);
	ehx_arena_free(b.arena);
	b.arena = big;
}

/* The same flag again, exactly as it stands: unchanged, nothing written,
 * nobody told. A change that is not news (the contact) tells nobody. */
static void
test_notify_unchanged(void **state)
{
	char nhs[EHX_NHS_LEN + 1];
	struct counts before, now;
	Ehx__StoredFlag *sf;
	int64_t updated;
	struct msg m;
	struct reply r;
	const Ehx__Ack *ack;

	(void)state;
	nhs_make(12, nhs);
	publish(SCHOOL, nhs, "SCH-1", EHX__CATEGORY__CATEGORY_SCHOOL_ATTENDANCE, 2,
	    NULL);
	assert_int_equal(publish(POLICE, nhs, "DA-1",
	    EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE, 3, NULL), 1);
	sf = stored_flag(nhs, "police", "DA-1");
	updated = sf->flag->updated_at;
	ehx__stored_flag__free_unpacked(sf, NULL);
	usleep(2000);

	before = counts_now();
	msg_publish(&m, POLICE, nhs, "DA-1", EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE,
	    3);
	send_msg(POLICE, &m, &r);
	ack = expect_ack(&r);
	assert_true(ack->unchanged);
	assert_false(ack->duplicate);
	reply_free(&r);
	assert_int_equal(b.npush, 0);
	now = counts_now();
	assert_int_equal(now.notify, before.notify);
	assert_int_equal(now.flags, before.flags);
	assert_int_equal(now.audit_size, before.audit_size + 1);    /* its own */
	assert_int_equal(now.disclosures, before.disclosures);
	assert_int_equal(queue_last("school"), 1);
	sf = stored_flag(nhs, "police", "DA-1");
	assert_int_equal(sf->flag->updated_at, updated);
	assert_memory_not_equal(sf->source_message.data, m.id, EHX_MSGID_LEN);
	ehx__stored_flag__free_unpacked(sf, NULL);

	/* A new contact number: stored, but no news. */
	before = counts_now();
	msg_publish(&m, POLICE, nhs, "DA-1", EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE,
	    3);
	m.pr.contact = "01632 960002";
	send_msg(POLICE, &m, &r);
	ack = expect_ack(&r);
	assert_false(ack->unchanged);
	reply_free(&r);
	assert_int_equal(b.npush, 0);
	assert_int_equal(counts_now().notify, before.notify);
	sf = stored_flag(nhs, "police", "DA-1");
	assert_true(sf->flag->updated_at > updated);
	assert_string_equal(sf->flag->practitioner->contact, "01632 960002");
	ehx__stored_flag__free_unpacked(sf, NULL);
}

/* Closed, then published again: REOPENED. Closing tells nobody. */
static void
test_notify_reopened(void **state)
{
	char nhs[EHX_NHS_LEN + 1];
	struct counts before;
	struct note t;
	const Ehx__Notification *n;

	(void)state;
	nhs_make(13, nhs);
	publish(SCHOOL, nhs, "SCH-1", EHX__CATEGORY__CATEGORY_SCHOOL_ATTENDANCE, 2,
	    NULL);
	assert_int_equal(publish(POLICE, nhs, "DA-1",
	    EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE, 3, NULL), 1);
	before = counts_now();
	close_flag(POLICE, nhs, "DA-1");
	assert_int_equal(counts_now().notify, before.notify);
	assert_int_equal(counts_now().audit_size, before.audit_size + 1);
	assert_int_equal(publish(POLICE, nhs, "DA-1",
	    EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE, 3, NULL), 1);
	n = pushed_to("school", &t);
	assert_int_equal(n->seq, 2);
	assert_int_equal(n->event, EHX__NOTIFY_EVENT__NOTIFY_EVENT_REOPENED);
	assert_int_equal(n->previous_level, 0);
	note_free(&t);
	assert_int_equal(queue_len("school"), 2);
}

/*
 * An open flag moved to another category is news for whoever is told of
 * the new one: police turn a parenting involvement into domestic abuse,
 * and the school (told of domestic abuse, not of parenting) hears of it
 * as a new flag.
 */
static void
test_notify_recategorised(void **state)
{
	char nhs[EHX_NHS_LEN + 1];
	struct note t;
	const Ehx__Notification *n;

	(void)state;
	nhs_make(14, nhs);
	publish(SCHOOL, nhs, "SCH-1", EHX__CATEGORY__CATEGORY_SCHOOL_ATTENDANCE, 2,
	    NULL);
	assert_int_equal(publish(POLICE, nhs, "P-1",
	    EHX__CATEGORY__CATEGORY_PARENTING, 2, NULL), 0);
	assert_int_equal(queue_len("school"), 0);
	assert_int_equal(publish(POLICE, nhs, "P-1",
	    EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE, 2, NULL), 1);
	n = pushed_to("school", &t);
	assert_int_equal(n->seq, 1);
	assert_int_equal(n->event, EHX__NOTIFY_EVENT__NOTIFY_EVENT_NEW);
	assert_int_equal(n->category, EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE);
	note_free(&t);
	assert_int_equal(queue_len("school"), 1);
}

/*
 * Health is notified of domestic abuse on consent only: not without one,
 * not on one for the whole picture only, nor a withdrawn one; then on an
 * active consent for notifications naming its type or its id, which the
 * notification and the audit record name.
 */
static void
test_notify_consent(void **state)
{
	char nhs[EHX_NHS_LEN + 1], nhs2[EHX_NHS_LEN + 1];
	char wp[32], byid[32], bytype[32], gone[32], basis[64];
	uint64_t size;
	struct note t;
	const Ehx__Notification *n;

	(void)state;
	nhs_make(14, nhs);
	nhs_make(15, nhs2);
	publish(HEALTH, nhs, "H-1", EHX__CATEGORY__CATEGORY_POOR_START, 2, NULL);
	assert_int_equal(publish(POLICE, nhs, "DA-1",
	    EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE, 3, NULL), 0);
	assert_int_equal(queue_len("health"), 0);

	/* (Each step a new flag: one flag's news is limited to
	 * EHX_MAX_NEWS_PER_DAY a day, and DA-1's level change is kept for
	 * the last.) Consent covering health, for the whole picture only. */
	consent(POLICE, nhs, EHX__AGENCY_TYPE__AGENCY_TYPE_HEALTH, "health",
	    EHX__PURPOSE__PURPOSE_WHOLE_PICTURE, wp);
	assert_int_equal(publish(POLICE, nhs, "DA-2",
	    EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE, 3, NULL), 0);
	/* For notifications, but for schools. */
	consent(POLICE, nhs, EHX__AGENCY_TYPE__AGENCY_TYPE_SCHOOL, NULL,
	    EHX__PURPOSE__PURPOSE_NOTIFICATIONS, gone);
	assert_int_equal(publish(POLICE, nhs, "DA-3",
	    EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE, 2, NULL), 0);
	/* For notifications and health, withdrawn. */
	consent(POLICE, nhs, EHX__AGENCY_TYPE__AGENCY_TYPE_HEALTH, NULL,
	    EHX__PURPOSE__PURPOSE_NOTIFICATIONS, gone);
	{
		struct msg m;
		struct reply r;

		msg_withdraw(&m, POLICE, nhs, gone);
		send_msg(POLICE, &m, &r);
		expect_ack(&r);
		reply_free(&r);
	}
	assert_int_equal(publish(POLICE, nhs, "DA-4",
	    EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE, 3, NULL), 0);
	assert_int_equal(queue_len("health"), 0);

	/* Active, for notifications, naming health's type. */
	consent(POLICE, nhs, EHX__AGENCY_TYPE__AGENCY_TYPE_HEALTH, NULL,
	    EHX__PURPOSE__PURPOSE_NOTIFICATIONS, bytype);
	assert_int_equal(publish(POLICE, nhs, "DA-1",
	    EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE, 4, NULL), 1);
	size = audit_size();
	n = pushed_to("health", &t);
	assert_int_equal(n->seq, 1);
	assert_int_equal(n->event, EHX__NOTIFY_EVENT__NOTIFY_EVENT_LEVEL_CHANGED);
	assert_int_equal(n->basis, EHX__LAWFUL_BASIS__LAWFUL_BASIS_CONSENT);
	assert_string_equal(n->consent_id, bytype);
	/* [view health] shows domestic abuse's level. */
	assert_int_equal(n->level, 4);
	assert_int_equal(n->previous_level, 3);
	note_free(&t);
	{
		Ehx__AuditRecord *a = audit_record(size);

		/* The publish's record names whom it told, and on what. */
		(void)basis;
		assert_string_equal(a->action, "publish_flag");
		assert_int_equal(a->n_notified, 1);
		assert_string_equal(a->notified[0]->agency, "health");
		assert_int_equal(a->notified[0]->basis,
		    EHX__LAWFUL_BASIS__LAWFUL_BASIS_CONSENT);
		assert_string_equal(a->notified[0]->consent_id, bytype);
		ehx__audit_record__free_unpacked(a, NULL);
	}

	/* Another child: a consent naming health by its id. */
	publish(HEALTH, nhs2, "H-2", EHX__CATEGORY__CATEGORY_POOR_START, 1, NULL);
	consent(HEALTH, nhs2, 0, "health", EHX__PURPOSE__PURPOSE_NOTIFICATIONS,
	    byid);
	assert_int_equal(publish(POLICE, nhs2, "DA-2",
	    EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE, 2, NULL), 1);
	n = pushed_to("health", &t);
	assert_int_equal(n->seq, 2);
	assert_string_equal(n->nhs_number, nhs2);
	assert_string_equal(n->consent_id, byid);
	note_free(&t);
	assert_int_equal(queue_len("health"), 2);
}

/* Only agencies with an open flag on the child are told — once each —
 * and never the publisher itself. */
static void
test_notify_open_involvement_only(void **state)
{
	char nhs[EHX_NHS_LEN + 1], nhs2[EHX_NHS_LEN + 1], nhs3[EHX_NHS_LEN + 1];
	struct note t;
	const Ehx__Notification *n;

	(void)state;
	nhs_make(16, nhs);
	nhs_make(17, nhs2);
	nhs_make(18, nhs3);
	/* All the school's flags on the child closed: not told. */
	publish(SCHOOL, nhs, "SCH-1", EHX__CATEGORY__CATEGORY_SCHOOL_ATTENDANCE, 2,
	    NULL);
	publish(SCHOOL, nhs, "SCH-2", EHX__CATEGORY__CATEGORY_TRANSITIONS, 1, NULL);
	close_flag(SCHOOL, nhs, "SCH-1");
	close_flag(SCHOOL, nhs, "SCH-2");
	assert_int_equal(publish(POLICE, nhs, "DA-1",
	    EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE, 3, NULL), 0);
	assert_int_equal(queue_len("school"), 0);
	/* A child the school has no flag on at all: not told. */
	assert_int_equal(publish(POLICE, nhs3, "DA-3",
	    EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE, 3, NULL), 0);
	/* One closed, one open (sorted after it): told, once. */
	publish(SCHOOL, nhs, "SCH-2", EHX__CATEGORY__CATEGORY_TRANSITIONS, 1, NULL);
	assert_int_equal(publish(POLICE, nhs, "DA-4",
	    EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE, 2, NULL), 1);
	assert_int_equal(queue_len("school"), 1);
	/* Two open flags: still one notification. */
	publish(SCHOOL, nhs2, "SCH-A", EHX__CATEGORY__CATEGORY_SCHOOL_ATTENDANCE, 1,
	    NULL);
	publish(SCHOOL, nhs2, "SCH-B", EHX__CATEGORY__CATEGORY_TRANSITIONS, 1,
	    NULL);
	assert_int_equal(publish(POLICE, nhs2, "DA-2",
	    EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE, 2, NULL), 1);
	assert_int_equal(queue_len("school"), 2);

	/* The police are notified of exploitation risk (public_task)... */
	publish(POLICE, nhs3, "P-1", EHX__CATEGORY__CATEGORY_OFFENDING, 1, NULL);
	assert_int_equal(publish(HUB, nhs3, "EX-1",
	    EHX__CATEGORY__CATEGORY_EXPLOITATION_RISK, 3, NULL), 1);
	n = pushed_to("police", &t);
	assert_int_equal(n->seq, 1);
	assert_string_equal(n->agency, "hub");
	assert_int_equal(n->agency_type,
	    EHX__AGENCY_TYPE__AGENCY_TYPE_LOCAL_AUTHORITY);
	assert_int_equal(n->level, 3);
	note_free(&t);
	/* ...but never of their own flag, however many they hold. */
	assert_int_equal(publish(POLICE, nhs3, "EX-2",
	    EHX__CATEGORY__CATEGORY_EXPLOITATION_RISK, 3, NULL), 1);
	assert_false(pushed("police"));
	assert_true(pushed("hub"));
	assert_int_equal(queue_len("police"), 1);
	assert_int_equal(queue_last("police"), 1);
}

/* A category with no [notify] section tells nobody; a type the section
 * does not name is not told. */
static void
test_notify_no_section(void **state)
{
	char nhs[EHX_NHS_LEN + 1];
	struct counts before, now;

	(void)state;
	nhs_make(19, nhs);
	publish(SCHOOL, nhs, "SCH-1", EHX__CATEGORY__CATEGORY_SCHOOL_ATTENDANCE, 2,
	    NULL);
	publish(HUB, nhs, "EH-1", EHX__CATEGORY__CATEGORY_PARENTING, 2, NULL);
	publish(HOUSING, nhs, "HO-1", EHX__CATEGORY__CATEGORY_HOUSING, 2, NULL);
	assert_int_equal(ehx_policy_notify_basis(&b.policy,
	    EHX__CATEGORY__CATEGORY_PARENTING,
	    EHX__AGENCY_TYPE__AGENCY_TYPE_SCHOOL), 0);
	before = counts_now();
	assert_int_equal(publish(POLICE, nhs, "PA-1",
	    EHX__CATEGORY__CATEGORY_PARENTING, 3, NULL), 0);
	assert_int_equal(publish(POLICE, nhs, "PA-1",
	    EHX__CATEGORY__CATEGORY_PARENTING, 4, NULL), 0);
	now = counts_now();
	assert_int_equal(now.notify, before.notify);
	assert_int_equal(now.audit_size, before.audit_size + 2);
	assert_int_equal(now.disclosures, before.disclosures);
	/* Domestic abuse on the same child: the school and the hub, not
	 * housing (no housing line in [notify domestic_abuse]). */
	assert_int_equal(publish(POLICE, nhs, "DA-1",
	    EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE, 3, NULL), 2);
	assert_true(pushed("school"));
	assert_true(pushed("hub"));
	assert_false(pushed("housing"));
	assert_int_equal(queue_len("housing"), 0);
}

/* An agency's fetch sees, and acknowledges, its own queue only. */
static void
test_fetch_own_queue(void **state)
{
	char nhs[EHX_NHS_LEN + 1];
	struct reply r;
	const Ehx__NotificationBatch *nb;

	(void)state;
	nhs_make(20, nhs);
	publish(SCHOOL, nhs, "SCH-1", EHX__CATEGORY__CATEGORY_SCHOOL_ATTENDANCE, 2,
	    NULL);
	publish(HEALTH, nhs, "H-1", EHX__CATEGORY__CATEGORY_POOR_START, 2, NULL);
	assert_int_equal(publish(POLICE, nhs, "DA-1",
	    EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE, 3, NULL), 1);
	assert_int_equal(queue_len("school"), 1);
	nb = fetch(HEALTH, 0, 64, &r);
	assert_int_equal(nb->n_envelopes, 0);
	assert_int_equal(nb->pending, 0);
	reply_free(&r);
	/* Health "acknowledges" far beyond: the school's queue stays. */
	nb = fetch(HEALTH, 5, 64, &r);
	assert_int_equal(nb->n_envelopes, 0);
	reply_free(&r);
	assert_int_equal(queue_len("school"), 1);
	/* Nor does the hub's, whose id sorts between. */
	nb = fetch(HUB, 1, 64, &r);
	assert_int_equal(nb->n_envelopes, 0);
	reply_free(&r);
	assert_int_equal(queue_len("school"), 1);
	nb = fetch(SCHOOL, 0, 64, &r);
	assert_int_equal(nb->n_envelopes, 1);
	{
		struct note t;

		assert_int_equal(note_open(nb->envelopes[0].data,
		    nb->envelopes[0].len, "school", &t)->seq, 1);
		note_free(&t);
	}
	reply_free(&r);
}

/* A refused fetch: NOT_PERMITTED for a person, INVALID_FIELD for a limit
 * outside 1..64 or after beyond 2^62; audited, and it drops nothing. */
static void
test_fetch_refused(void **state)
{
	char nhs[EHX_NHS_LEN + 1];
	static const struct {
		int role;
		uint64_t after;
		uint32_t limit;
		int code;
	} bad[] = {
		{ EHX__ROLE__ROLE_PRACTITIONER, 1, 10, EHX_ERR_NOT_PERMITTED },
		{ EHX__ROLE__ROLE_IG_OFFICER, 1, 10, EHX_ERR_NOT_PERMITTED },
		{ EHX__ROLE__ROLE_SYSTEM, 1, 0, EHX_ERR_INVALID_FIELD },
		{ EHX__ROLE__ROLE_SYSTEM, 1, 65, EHX_ERR_INVALID_FIELD },
		{ EHX__ROLE__ROLE_SYSTEM, EHX_MAX_SEQ + 1, 10,
		    EHX_ERR_INVALID_FIELD },
		{ EHX__ROLE__ROLE_SYSTEM, UINT64_MAX, 10, EHX_ERR_INVALID_FIELD },
	};
	struct counts before, now;
	struct msg m;
	struct reply r;
	const Ehx__NotificationBatch *nb;

	(void)state;
	nhs_make(21, nhs);
	publish(SCHOOL, nhs, "SCH-1", EHX__CATEGORY__CATEGORY_SCHOOL_ATTENDANCE, 2,
	    NULL);
	assert_int_equal(publish(POLICE, nhs, "DA-1",
	    EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE, 3, NULL), 1);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		Ehx__AuditRecord *a;

		before = counts_now();
		msg_fetch(&m, SCHOOL, bad[i].after, bad[i].limit, bad[i].role);
		send_msg(SCHOOL, &m, &r);
		expect_error(&r, bad[i].code);
		reply_free(&r);
		now = counts_now();
		assert_int_equal(now.audit_size, before.audit_size + 1);
		assert_int_equal(now.notify, before.notify);
		assert_int_equal(queue_len("school"), 1);
		a = audit_record(now.audit_size);
		assert_string_equal(a->action, "fetch_notifications");
		assert_string_equal(a->agency, "school");
		assert_int_equal(a->error, ehx_err_to_wire(bad[i].code));
		ehx__audit_record__free_unpacked(a, NULL);
	}
	/* The bounds themselves are fine. */
	nb = fetch(SCHOOL, 0, 1, &r);
	assert_int_equal(nb->n_envelopes, 1);
	reply_free(&r);
	nb = fetch(SCHOOL, 0, 64, &r);
	assert_int_equal(nb->n_envelopes, 1);
	reply_free(&r);
	/* after_id must be 16 bytes when after is not 0, and absent when it
	 * is. */
	for (int i = 0; i < 2; i++) {
		static const unsigned char id[EHX_MSGID_LEN];

		before = counts_now();
		msg_fetch(&m, SCHOOL, i == 0 ? 1 : 0, 10,
		    EHX__ROLE__ROLE_SYSTEM);
		m.fn.after_id.data = (uint8_t *)id;
		m.fn.after_id.len = i == 0 ? 8 : EHX_MSGID_LEN;
		send_msg(SCHOOL, &m, &r);
		expect_error(&r, EHX_ERR_INVALID_FIELD);
		reply_free(&r);
		assert_int_equal(queue_len("school"), 1);
		now = counts_now();
		assert_int_equal(now.audit_size, before.audit_size + 1);
		assert_int_equal(now.notify, before.notify);
	}
	/* An "after" this queue never gave (an agent ahead of a broker
	 * restored from a backup): nothing dropped, the queue from its
	 * start, flagged restart. */
	nb = fetch(SCHOOL, EHX_MAX_SEQ, 64, &r);
	assert_true(nb->restart);
	assert_int_equal(nb->n_envelopes, 1);
	assert_int_equal(nb->pending, 0);
	reply_free(&r);
	assert_int_equal(queue_len("school"), 1);
	/* Seq 1 under another id (the broker's numbers went back and gave 1
	 * again to something else): the same. */
	msg_fetch(&m, SCHOOL, 1, 64, EHX__ROLE__ROLE_SYSTEM);
	{
		unsigned char other[EHX_MSGID_LEN];

		memcpy(other, handed_id(SCHOOL, 1), EHX_MSGID_LEN);
		other[0] ^= 1;
		m.fn.after_id.data = other;
		send_msg(SCHOOL, &m, &r);
	}
	assert_int_equal(r.body->payload_case, EHX__BODY__PAYLOAD_NOTIFICATIONS);
	assert_true(r.body->notifications->restart);
	assert_int_equal(r.body->notifications->n_envelopes, 1);
	reply_free(&r);
	assert_int_equal(queue_len("school"), 1);
	/* Named rightly, 1 is dropped; named again, it is known as the last
	 * acknowledged: no restart, nothing more. */
	for (int i = 0; i < 2; i++) {
		nb = fetch(SCHOOL, 1, 64, &r);
		assert_false(nb->restart);
		assert_int_equal(nb->n_envelopes, 0);
		reply_free(&r);
		assert_int_equal(queue_len("school"), 0);
	}
	/* An agent whose store was lost starts at 0: whatever is held. */
	assert_int_equal(publish(POLICE, nhs, "DA-2",
	    EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE, 3, NULL), 1);
	nb = fetch(SCHOOL, 0, 64, &r);
	assert_false(nb->restart);
	assert_int_equal(nb->n_envelopes, 1);
	reply_free(&r);
	assert_int_equal(queue_len("school"), 1);
}

/* A queue is handed out in order, limit at a time, with what is pending;
 * a fetch after N drops 1..N and no more. */
static void
test_fetch_order_pending(void **state)
{
	char nhs[EHX_NHS_LEN + 1];
	struct reply r;
	struct note t;
	const Ehx__NotificationBatch *nb;

	(void)state;
	nhs_make(22, nhs);
	publish(SCHOOL, nhs, "SCH-1", EHX__CATEGORY__CATEGORY_SCHOOL_ATTENDANCE, 2,
	    NULL);
	/* Four incidents: four new flags, each news to the school. */
	for (unsigned i = 1; i <= 4; i++) {
		char ref[16];

		snprintf(ref, sizeof(ref), "DA-%u", i);
		assert_int_equal(publish(POLICE, nhs, ref,
		    EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE, i, NULL), 1);
	}
	assert_int_equal(queue_len("school"), 4);

	nb = fetch(SCHOOL, 0, 1, &r);
	assert_int_equal(nb->n_envelopes, 1);
	assert_int_equal(nb->pending, 3);
	assert_int_equal(note_open(nb->envelopes[0].data, nb->envelopes[0].len,
	    "school", &t)->seq, 1);
	note_free(&t);
	reply_free(&r);
	assert_int_equal(queue_len("school"), 4);

	nb = fetch(SCHOOL, 1, 2, &r);
	assert_int_equal(nb->n_envelopes, 2);
	assert_int_equal(nb->pending, 1);
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(note_open(nb->envelopes[i].data,
		    nb->envelopes[i].len, "school", &t)->seq, 2 + i);
		note_free(&t);
	}
	reply_free(&r);
	assert_int_equal(queue_len("school"), 3);

	/* Two acknowledged at once: the next is 4, 3 is not skipped. */
	nb = fetch(SCHOOL, 2, 64, &r);
	assert_int_equal(nb->n_envelopes, 2);
	assert_int_equal(nb->pending, 0);
	assert_int_equal(note_open(nb->envelopes[0].data, nb->envelopes[0].len,
	    "school", &t)->seq, 3);
	note_free(&t);
	reply_free(&r);
	nb = fetch(SCHOOL, 3, 64, &r);
	assert_int_equal(nb->n_envelopes, 1);
	assert_int_equal(note_open(nb->envelopes[0].data, nb->envelopes[0].len,
	    "school", &t)->seq, 4);
	note_free(&t);
	reply_free(&r);
	assert_int_equal(queue_len("school"), 1);
	nb = fetch(SCHOOL, 4, 64, &r);
	assert_int_equal(nb->n_envelopes, 0);
	assert_int_equal(nb->pending, 0);
	reply_free(&r);
	assert_int_equal(queue_len("school"), 0);
	/* Numbers do not start again once the queue is empty. */
	assert_int_equal(publish(POLICE, nhs, "DA-5",
	    EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE, 2, NULL), 1);
	assert_int_equal(pushed_to("school", &t)->seq, 5);
	note_free(&t);
}

/* A queue longer than one fetch, of notifications as large as the fields
 * allow: a full batch (64) fits in one signed reply, the rest is pending,
 * and the next fetch hands it out. */
static void
test_fetch_full_batch(void **state)
{
	char nhs[EHX_NHS_LEN + 1], name[EHX_MAX_NAME + 1], job[EHX_MAX_JOB + 1];
	char contact[EHX_MAX_CONTACT + 1], nhs2[EHX_NHS_LEN + 1];
	const int total = 70;
	struct reply r;
	struct note t;
	const Ehx__NotificationBatch *nb;
	uint64_t next = 1;
	size_t first;

	(void)state;
	nhs_make(24, nhs);
	memset(name, 'N', EHX_MAX_NAME);
	name[EHX_MAX_NAME] = '\0';
	memset(job, 'J', EHX_MAX_JOB);
	job[EHX_MAX_JOB] = '\0';
	memset(contact, 'C', EHX_MAX_CONTACT);
	contact[EHX_MAX_CONTACT] = '\0';
	nhs_make(25, nhs2);
	publish(SCHOOL, nhs, "SCH-1", EHX__CATEGORY__CATEGORY_SCHOOL_ATTENDANCE, 2,
	    NULL);
	publish(SCHOOL, nhs2, "SCH-2", EHX__CATEGORY__CATEGORY_SCHOOL_ATTENDANCE, 2,
	    NULL);
	for (int i = 0; i < total; i++) {
		struct msg m;
		char ref[16];

		/* A new incident each time: news to the school. Two
		 * children: one agency holds at most EHX_MAX_OPEN_FLAGS open
		 * flags on one. */
		snprintf(ref, sizeof(ref), "DA-%d", i);
		msg_publish(&m, POLICE, i % 2 ? nhs2 : nhs, ref,
		    EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE, 1 + i % 4);
		m.pr.name = name;
		m.pr.role = job;
		m.pr.contact = contact;
		send_msg(POLICE, &m, &r);
		expect_ack(&r);
		assert_int_equal(b.npush, 1);
		reply_free(&r);
	}
	assert_int_equal(queue_len("school"), total);
	nb = fetch(SCHOOL, 0, 64, &r);
	assert_int_equal(nb->n_envelopes, 64);
	assert_true(r.len <= EHX_MAX_MESSAGE);
	assert_int_equal(nb->pending, total - nb->n_envelopes);
	first = nb->n_envelopes;
	for (size_t i = 0; i < nb->n_envelopes; i++) {
		const Ehx__Notification *n = note_open(nb->envelopes[i].data,
		    nb->envelopes[i].len, "school", &t);

		assert_int_equal(n->seq, next);
		assert_string_equal(n->contact->contact, contact);
		next++;
		note_free(&t);
	}
	reply_free(&r);
	nb = fetch(SCHOOL, next - 1, 64, &r);
	assert_int_equal(nb->n_envelopes, total - (next - 1));
	assert_int_equal(nb->pending, 0);
	for (size_t i = 0; i < nb->n_envelopes; i++) {
		assert_int_equal(note_open(nb->envelopes[i].data,
		    nb->envelopes[i].len, "school", &t)->seq, next);
		next++;
		note_free(&t);
	}
	reply_free(&r);
	assert_int_equal(next, total + 1);
	/* The first batch is acknowledged, the second not yet. */
	assert_int_equal(queue_len("school"), total - first);
	nb = fetch(SCHOOL, total, 64, &r);
	assert_int_equal(nb->n_envelopes, 0);
	reply_free(&r);
	assert_int_equal(queue_len("school"), 0);
}

/* The RFC 9162 root of leaves[0..n), computed here from scratch. */
static void
mth(unsigned char (*leaves)[EHX_HASH_LEN], uint64_t n,
    unsigned char out[EHX_HASH_LEN])
{
	unsigned char l[EHX_HASH_LEN], r[EHX_HASH_LEN];
	uint64_t k = 1;

	if (n == 1) {
		memcpy(out, leaves[0], EHX_HASH_LEN);
		return;
	}
	while (k * 2 < n)
		k *= 2;
	mth(leaves, k, l);
	mth(leaves + k, n - k, r);
	ehx_merkle_node_hash(l, r, out);
}

/*
 * A publish is one leaf of the Merkle audit log whoever it tells (issue
 * 16: a leaf a notification let the log's size say who else is involved):
 * telling two agencies grows it by 1, as telling nobody does; its record
 * names both; every leaf is the hash of its record, the root the broker
 * computes is the root of all records, and the log before is a prefix of
 * the log after (a consistency proof), each new record proven included.
 */
static void
test_notify_merkle(void **state)
{
	char nhs[EHX_NHS_LEN + 1];
	unsigned char (*leaves)[EHX_HASH_LEN], root0[EHX_HASH_LEN];
	unsigned char root[EHX_HASH_LEN], mine[EHX_HASH_LEN];
	unsigned char path[EHX_MERKLE_MAX_PROOF][EHX_HASH_LEN];
	uint64_t size0, size;
	size_t np;
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k, v;
	uint32_t notified;
	int rc;

	(void)state;
	nhs_make(23, nhs);
	publish(SCHOOL, nhs, "SCH-1", EHX__CATEGORY__CATEGORY_SCHOOL_ATTENDANCE, 2,
	    NULL);
	publish(HUB, nhs, "EH-1", EHX__CATEGORY__CATEGORY_PARENTING, 2, NULL);
	size0 = audit_size();
	assert_int_equal(mdb_txn_begin(b.store.env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(store_audit_root(&b.store, txn, size0, root0), 0);
	mdb_txn_abort(txn);

	notified = publish(POLICE, nhs, "DA-1",
	    EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE, 3, NULL);
	assert_int_equal(notified, 2);
	size = audit_size();
	assert_int_equal(size, size0 + 1);
	/* A publish that tells nobody: one record. */
	assert_int_equal(publish(POLICE, nhs, "OF-1",
	    EHX__CATEGORY__CATEGORY_OFFENDING, 1, NULL), 0);
	assert_int_equal(audit_size(), size + 1);
	size++;

	leaves = calloc(size, sizeof(*leaves));
	assert_non_null(leaves);
	assert_int_equal(mdb_txn_begin(b.store.env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(mdb_cursor_open(txn, b.store.audit, &c), 0);
	np = 0;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		unsigned char stored[EHX_HASH_LEN];

		assert_true(np < size);
		assert_int_equal(k.mv_size, 8);
		assert_int_equal(get_be64(k.mv_data), np + 1);
		ehx_merkle_leaf_hash(v.mv_data, v.mv_size, leaves[np]);
		assert_int_equal(store_audit_leaf(&b.store, txn, np + 1,
		    stored), 0);
		assert_memory_equal(stored, leaves[np], EHX_HASH_LEN);
		np++;
	}
	assert_int_equal(rc, MDB_NOTFOUND);
	assert_int_equal(np, size);
	mdb_cursor_close(c);
	assert_int_equal(store_audit_root(&b.store, txn, size, root), 0);
	mth(leaves, size, mine);
	assert_memory_equal(root, mine, EHX_HASH_LEN);
	mth(leaves, size0, mine);
	assert_memory_equal(root0, mine, EHX_HASH_LEN);
	/* The log before is a prefix of the log after. */
	assert_int_equal(store_audit_consistency(&b.store, txn, size0, size,
	    path, &np), 0);
	assert_int_equal(ehx_merkle_verify_consistency(size0, size, root0, root,
	    (const unsigned char (*)[EHX_HASH_LEN])path, np), 0);
	/* The records the publishes added are in the tree; the first names
	 * the two it told. */
	for (uint64_t seq = size0 + 1; seq <= size; seq++) {
		Ehx__AuditRecord *a;

		assert_int_equal(store_audit_inclusion(&b.store, txn, seq, size,
		    path, &np), 0);
		assert_int_equal(ehx_merkle_verify_inclusion(leaves[seq - 1],
		    seq - 1, size, (const unsigned char (*)[EHX_HASH_LEN])path,
		    np, root), 0);
		a = audit_record(seq);
		assert_string_equal(a->action, "publish_flag");
		assert_int_equal(a->n_notified, seq == size0 + 1 ? 2 : 0);
		ehx__audit_record__free_unpacked(a, NULL);
	}
	mdb_txn_abort(txn);
	free(leaves);
}

/*
 * Nothing a publisher can observe depends on who else is involved (issue
 * 16, finding 1): a domestic abuse flag on a child the school and health
 * hold flags on (the school is told) and on a child nobody else knows
 * grow the audit log alike, by one record, and are answered with replies
 * of the same size.
 */
static void
test_notify_no_size_channel(void **state)
{
	char known[EHX_NHS_LEN + 1], alone[EHX_NHS_LEN + 1];
	uint64_t s0, s1, s2;
	size_t len_known, len_alone;
	struct msg m;
	struct reply r;

	(void)state;
	nhs_make(40, known);
	nhs_make(41, alone);
	publish(SCHOOL, known, "SCH-1", EHX__CATEGORY__CATEGORY_SCHOOL_ATTENDANCE,
	    2, NULL);
	publish(HEALTH, known, "HV-1", EHX__CATEGORY__CATEGORY_MENTAL_HEALTH, 2,
	    NULL);
	s0 = audit_size();
	msg_publish(&m, POLICE, known, "DA-1", EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE,
	    3);
	send_msg(POLICE, &m, &r);
	expect_ack(&r);
	assert_true(b.npush >= 1);              /* the school was told */
	len_known = r.len;
	reply_free(&r);
	s1 = audit_size();
	msg_publish(&m, POLICE, alone, "DA-1", EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE,
	    3);
	send_msg(POLICE, &m, &r);
	expect_ack(&r);
	assert_int_equal(b.npush, 0);           /* nobody to tell */
	len_alone = r.len;
	reply_free(&r);
	s2 = audit_size();
	assert_int_equal(s1 - s0, 1);
	assert_int_equal(s2 - s1, 1);
	assert_int_equal(len_known, len_alone);
}

/*
 * A publish itself does the same work whoever it would tell (issue 16,
 * finding 1: timing): it keeps a plan, signs nothing, queues nothing and
 * pushes nothing; the serving loop's timer (notify_flush_now) then signs
 * and queues what every publish since kept, all together. Nothing is
 * lost: a fetch finds the plan's notifications, emitted first.
 */
static void
test_notify_deferred(void **state)
{
	char known[EHX_NHS_LEN + 1], alone[EHX_NHS_LEN + 1];
	size_t q0, len_known, len_alone;
	struct msg m;
	struct reply r;

	(void)state;
	nhs_make(43, known);
	nhs_make(44, alone);
	publish(SCHOOL, known, "SCH-1", EHX__CATEGORY__CATEGORY_SCHOOL_ATTENDANCE,
	    2, NULL);
	q0 = queue_len("school");
	autoflush = false;
	msg_publish(&m, POLICE, known, "DA-1", EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE,
	    3);
	send_msg(POLICE, &m, &r);
	expect_ack(&r);
	len_known = r.len;
	reply_free(&r);
	assert_int_equal(b.npush, 0);           /* nothing signed or pushed */
	assert_int_equal(queue_len("school"), q0);      /* nor queued */
	assert_true(b.plans_pending);
	msg_publish(&m, POLICE, alone, "DA-1", EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE,
	    3);
	send_msg(POLICE, &m, &r);
	expect_ack(&r);
	len_alone = r.len;
	reply_free(&r);
	assert_int_equal(b.npush, 0);
	assert_int_equal(len_known, len_alone);
	/* The timer: the school's one notification, signed and queued. */
	assert_int_equal(notify_flush_now(&b), 0);
	assert_false(b.plans_pending);
	assert_int_equal(b.npush, 1);
	assert_string_equal(b.push[0].to->id, "school");
	assert_int_equal(queue_len("school"), q0 + 1);
	/* Again with no timer: a fetch emits what is kept first. */
	msg_publish(&m, POLICE, known, "DA-2", EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE,
	    3);
	send_msg(POLICE, &m, &r);
	expect_ack(&r);
	reply_free(&r);
	assert_int_equal(queue_len("school"), q0 + 1);
	msg_fetch(&m, SCHOOL, 0, 64, EHX__ROLE__ROLE_SYSTEM);
	send_msg(SCHOOL, &m, &r);
	assert_int_equal(r.body->payload_case, EHX__BODY__PAYLOAD_NOTIFICATIONS);
	assert_int_equal(r.body->notifications->n_envelopes, q0 + 2);
	reply_free(&r);
	autoflush = true;
}

/*
 * Churn buys no notifications (issue 16): one flag's changes are news to
 * the agencies told at most EHX_MAX_NEWS_PER_DAY times a day; past that a
 * change is stored, and nobody is told — the same answer whoever would
 * have been. A change that is not news (a new note) does not count.
 */
static void
test_notify_churn(void **state)
{
	char nhs[EHX_NHS_LEN + 1];
	unsigned level = 1;

	(void)state;
	nhs_make(42, nhs);
	/* The early help hub is told of domestic abuse, its level too. */
	publish(HUB, nhs, "EH-1", EHX__CATEGORY__CATEGORY_PARENTING, 2, NULL);
	for (int i = 0; i < EHX_MAX_NEWS_PER_DAY; i++) {
		level = level % 4 + 1;
		assert_int_equal(publish(POLICE, nhs, "DA-1",
		    EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE, level, NULL), 1);
	}
	assert_int_equal(queue_len("hub"), EHX_MAX_NEWS_PER_DAY);
	level = level % 4 + 1;
	assert_int_equal(publish(POLICE, nhs, "DA-1",
	    EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE, level, NULL), 0);
	assert_int_equal(queue_len("hub"), EHX_MAX_NEWS_PER_DAY);
	/* Stored all the same: the flag is at the new level. */
	{
		struct msg m;
		struct reply r;

		msg_publish(&m, POLICE, nhs, "DA-1",
		    EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE, level);
		send_msg(POLICE, &m, &r);
		assert_true(expect_ack(&r)->unchanged);
		reply_free(&r);
	}
	/* Another flag of the same agency is news of its own. */
	assert_int_equal(publish(POLICE, nhs, "DA-2",
	    EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE, 2, NULL), 1);
}

/*
 * A made-up flag must not quietly buy notifications (issue 16): the first
 * flag of an agency on a child other agencies hold open sensitive flags on
 * raises an alert for IG review; its next flag, or a first flag on a
 * child with no sensitive flag of others, does not.
 */
static void
test_notify_first_flag_alert(void **state)
{
	char nhs[EHX_NHS_LEN + 1], plain[EHX_NHS_LEN + 1];
	size_t a0;

	(void)state;
	nhs_make(43, nhs);
	nhs_make(44, plain);
	publish(HEALTH, nhs, "MH-1", EHX__CATEGORY__CATEGORY_MENTAL_HEALTH, 2,
	    NULL);
	publish(HEALTH, plain, "PH-1", EHX__CATEGORY__CATEGORY_PHYSICAL_HEALTH,
	    2, NULL);
	a0 = entries(b.store.alerts);
	publish(SCHOOL, nhs, "SCH-1", EHX__CATEGORY__CATEGORY_SCHOOL_ATTENDANCE,
	    2, NULL);
	assert_int_equal(entries(b.store.alerts), a0 + 1);
	{
		MDB_txn *txn;
		MDB_cursor *c;
		MDB_val k, v;
		Ehx__Alert *al;

		assert_int_equal(mdb_txn_begin(b.store.env, NULL, MDB_RDONLY,
		    &txn), 0);
		assert_int_equal(mdb_cursor_open(txn, b.store.alerts, &c), 0);
		assert_int_equal(mdb_cursor_get(c, &k, &v, MDB_LAST), 0);
		al = ehx__alert__unpack(NULL, v.mv_size, v.mv_data);
		assert_non_null(al);
		assert_string_equal(al->kind, "first_flag");
		assert_string_equal(al->agency, "school");
		assert_non_null(strstr(al->reason, "mental_health"));
		ehx__alert__free_unpacked(al, NULL);
		mdb_cursor_close(c);
		mdb_txn_abort(txn);
	}
	publish(SCHOOL, nhs, "SCH-2", EHX__CATEGORY__CATEGORY_SEND, 2, NULL);
	publish(SCHOOL, plain, "SCH-3", EHX__CATEGORY__CATEGORY_SCHOOL_ATTENDANCE,
	    2, NULL);
	assert_int_equal(entries(b.store.alerts), a0 + 1);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_stream_first_applied),
		T(test_stream_resigned_first_reply),
		T(test_stream_out_of_order),
		T(test_stream_duplicate_after_prune),
		T(test_stream_malformed),
		T(test_fetch_sequenced_malformed),
		T(test_streams_same_agency),
		T(test_streams_two_agencies),
		T(test_notify_school),
		T(test_notify_level_changed),
		T(test_notify_many_closed_flags),
		T(test_notify_unchanged),
		T(test_notify_reopened),
		T(test_notify_recategorised),
		T(test_notify_consent),
		T(test_notify_open_involvement_only),
		T(test_notify_no_section),
		T(test_fetch_own_queue),
		T(test_fetch_refused),
		T(test_fetch_order_pending),
		T(test_fetch_full_batch),
		T(test_notify_merkle),
		T(test_notify_no_size_channel),
		T(test_notify_churn),
		T(test_notify_deferred),
		T(test_notify_first_flag_alert),
	};

	return cmocka_run_group_tests_name("test_notify", tests, group_setup,
	    group_teardown);
}
