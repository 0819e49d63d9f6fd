/*
 * test_queue — the agent's durable outbox and inbox (agent/queue.c) with
 * real parts: the agent's own LMDB store in a temporary directory, keys
 * and certificates made by certs/ehx-pki, and a ZeroMQ DEALER (the
 * agent's) and ROUTER (the broker's) over inproc://, the test playing the
 * broker. What the agent sends is opened and verified as the broker would;
 * the broker's answers are sealed with the broker's key and come back
 * through the socket to be taken the way agent/agentd.c takes them
 * (queue_open_envelope, queue_reply, then queue_flush after the burst).
 *
 * Time is the test's own: every call gets an explicit `now`, so backoff,
 * resends and the hook's retries are exact. The only real waits are for a
 * hook process to exit (or to have started); nothing asserts on how long
 * anything took.
 */
#include "testutil.h"

#include <dirent.h>
#include <signal.h>

#include <json-c/json.h>
#include <zmq.h>

#include "../../agent/queue.h"
#include "ehx/crypto.h"
#include "ehx/err.h"
#include "ehx/log.h"
#include "ehx/nhs.h"
#include "ehx/util.h"
#include "ehx/wire.h"

#define AGENCY "school"
#define BROKER "broker"
#define RESEND_MS 30000
#define RETRY_MAX_MS 60000
#define POLL_MS 60000
#define GOT_MAX 256
#define MAX_NOTES EHX_MAX_FETCH

static char dir[PATH_MAX];              /* the partnership, made once */
static char tdir[PATH_MAX];             /* this test's own directory */
static char store[PATH_MAX];            /* the agent's data_dir */
static int ntest;
static struct ehx_signer *agent_signer, *broker_signer;
static struct ehx_cert *broker_cert;
static void *zctx, *router, *dealer;
static unsigned char ident[256];        /* the agent's routing id */
static size_t identlen;

static struct queue q;
static char spool_dir[PATH_MAX];        /* set before q_open(): a spool … */
static char hook_path[PATH_MAX];        /* … and a hook */
static int64_t hook_timeout_ms;
static size_t ndecided;
static uint64_t decided[GOT_MAX];
static int nhs_counter;

/* ---- the partnership and each test's parts ------------------------------ */

static int
group_teardown(void **state)
{
	(void)state;
	ehx_signer_free(agent_signer);
	ehx_signer_free(broker_signer);
	ehx_cert_free(broker_cert);
	agent_signer = broker_signer = NULL;
	broker_cert = NULL;
	if (zctx != NULL)
		zmq_ctx_term(zctx);
	zctx = NULL;
	tu_rmtree(dir);
	return 0;
}

static int
group_setup(void **state)
{
	const char *pki;
	char key[PATH_MAX], crt[PATH_MAX];

	ehx_log_level_current = getenv("EHX_TEST_LOG") ? 3 : -1;
	/* As the agent does: a hook that exits before reading its input
	 * must not take the process down. */
	signal(SIGPIPE, SIG_IGN);
	if ((pki = tu_pki()) == NULL ||
	    tu_mkdtemp(dir, sizeof(dir), "queue") != 0 ||
	    tu_sh("'%s' ca '%s' >/dev/null && '%s' broker '%s' >/dev/null && "
	    "'%s' agency '%s' " AGENCY " school >/dev/null", pki, dir, pki,
	    dir, pki, dir) != 0)
		goto fail;
	snprintf(key, sizeof(key), "%s/agencies/%s/%s.key", dir, AGENCY,
	    AGENCY);
	snprintf(crt, sizeof(crt), "%s/agencies/%s/%s.crt", dir, AGENCY,
	    AGENCY);
	if (ehx_signer_load(key, crt, &agent_signer) != 0)
		goto fail;
	snprintf(key, sizeof(key), "%s/broker/broker.key", dir);
	snprintf(crt, sizeof(crt), "%s/broker/broker.crt", dir);
	if (ehx_signer_load(key, crt, &broker_signer) != 0 ||
	    ehx_cert_load(crt, &broker_cert) != 0)
		goto fail;
	if ((zctx = zmq_ctx_new()) == NULL)
		goto fail;
	return 0;
fail:
	fprintf(stderr, "test_queue: the partnership could not be made\n");
	group_teardown(state);
	return -1;
}

static void
on_decided(void *arg, uint64_t num, const Ehx__Body *reply)
{
	(void)arg;
	assert_non_null(reply);
	if (ndecided < GOT_MAX)
		decided[ndecided] = num;
	ndecided++;
}

static int
setup(void **state)
{
	char ep[64];
	int zero = 0;

	(void)state;
	memset(&q, 0, sizeof(q));
	q.lock_fd = -1;
	q.hook_pid = -1;
	spool_dir[0] = hook_path[0] = '\0';
	hook_timeout_ms = 10000;
	ndecided = 0;
	identlen = 0;
	snprintf(tdir, sizeof(tdir), "%s/t%d", dir, ++ntest);
	snprintf(store, sizeof(store), "%s/store", tdir);
	if (mkdir(tdir, 0700) != 0)
		return -1;
	snprintf(ep, sizeof(ep), "inproc://test-queue-%d", ntest);
	if ((router = zmq_socket(zctx, ZMQ_ROUTER)) == NULL ||
	    (dealer = zmq_socket(zctx, ZMQ_DEALER)) == NULL ||
	    zmq_setsockopt(router, ZMQ_LINGER, &zero, sizeof(zero)) != 0 ||
	    zmq_setsockopt(dealer, ZMQ_LINGER, &zero, sizeof(zero)) != 0 ||
	    zmq_bind(router, ep) != 0 || zmq_connect(dealer, ep) != 0)
		return -1;
	return 0;
}

struct got {
	Ehx__Envelope *env;
	Ehx__Body *body;
};
static struct got got[GOT_MAX];
static size_t ngot;

static void
got_free(void)
{
	for (size_t i = 0; i < ngot; i++) {
		ehx_body_free(got[i].body);
		ehx_envelope_free(got[i].env);
	}
	memset(got, 0, sizeof(got));
	ngot = 0;
}

static int
teardown(void **state)
{
	(void)state;
	if (q.hook_pid > 0) {
		kill(q.hook_pid, SIGKILL);
		waitpid(q.hook_pid, NULL, 0);
		q.hook_pid = -1;
	}
	queue_close(&q);
	got_free();
	if (dealer != NULL)
		zmq_close(dealer);
	if (router != NULL)
		zmq_close(router);
	dealer = router = NULL;
	tu_rmtree(tdir);
	return 0;
}

/* Open the agent's store the way agent/agentd.c sets the queue up: a
 * fresh struct (a new process), its configuration, then queue_open(). */
static void
q_open(void)
{
	char err[512];

	memset(&q, 0, sizeof(q));
	q.agency = AGENCY;
	q.broker_id = BROKER;
	q.broker_cert = broker_cert;
	q.signer = agent_signer;
	q.resend_ms = RESEND_MS;
	q.retry_max_ms = RETRY_MAX_MS;
	q.poll_ms = POLL_MS;
	q.hook_timeout_ms = hook_timeout_ms;
	if (hook_path[0] != '\0')
		q.hook_argv[0] = hook_path;
	q.spool = spool_dir[0] != '\0' ? spool_dir : NULL;
	q.on_decided = on_decided;
	if (queue_open(&q, store, err, sizeof(err)) != 0)
		fail_msg("queue_open: %s", err);
}

static void
q_reopen(void)
{
	queue_close(&q);
	q_open();
}

/* ---- the agent's side --------------------------------------------------- */

static int64_t
tick(int64_t now)
{
	int64_t next = now + 1000;

	queue_tick(&q, dealer, now, &next);
	return next;
}

/*
 * What agent/agentd.c does with the frames from the broker: open each,
 * hand it to the queue, and commit the decisions after the burst.
 * Returns how many the queue took.
 */
static size_t
agent_recv(int64_t now)
{
	size_t taken = 0;

	for (;;) {
		zmq_msg_t m;
		Ehx__Body *b = NULL;
		unsigned char *copy;
		size_t copylen;

		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, dealer, ZMQ_DONTWAIT) < 0) {
			assert_int_equal(zmq_errno(), EAGAIN);
			zmq_msg_close(&m);
			break;
		}
		assert_false(zmq_msg_more(&m));
		assert_int_equal(queue_open_envelope(&q, zmq_msg_data(&m),
		    zmq_msg_size(&m), NULL, &b), 0);
		assert_non_null(b);
		copylen = zmq_msg_size(&m);
		assert_non_null(copy = malloc(copylen));
		memcpy(copy, zmq_msg_data(&m), copylen);
		if (queue_reply(&q, &b, &copy, &copylen, now))
			taken++;
		free(copy);
		ehx_body_free(b);
		zmq_msg_close(&m);
	}
	queue_flush(&q, now);
	return taken;
}

/* ---- the broker's side -------------------------------------------------- */

/*
 * Everything the agent has sent since the last call (got[], valid until
 * the next call), opened as the broker would: signed with the agency's
 * key, from the agency, to the broker, a request.
 */
static size_t
broker_recv(void)
{
	got_free();
	for (;;) {
		zmq_msg_t id, m;
		struct got *g;
		char why[128];

		zmq_msg_init(&id);
		if (zmq_msg_recv(&id, router, ZMQ_DONTWAIT) < 0) {
			assert_int_equal(zmq_errno(), EAGAIN);
			zmq_msg_close(&id);
			break;
		}
		assert_true(zmq_msg_more(&id));
		assert_true(zmq_msg_size(&id) > 0 &&
		    zmq_msg_size(&id) <= sizeof(ident));
		identlen = zmq_msg_size(&id);
		memcpy(ident, zmq_msg_data(&id), identlen);
		zmq_msg_close(&id);
		zmq_msg_init(&m);
		assert_true(zmq_msg_recv(&m, router, 0) >= 0);
		assert_false(zmq_msg_more(&m));
		assert_true(ngot < GOT_MAX);
		g = &got[ngot++];
		assert_int_equal(ehx_envelope_decode(zmq_msg_data(&m),
		    zmq_msg_size(&m), &g->env), 0);
		zmq_msg_close(&m);
		assert_memory_equal(g->env->signer.data,
		    ehx_signer_fpr(agent_signer), EHX_FPR_LEN);
		assert_int_equal(ehx_envelope_verify(g->env, ehx_cert_pubkey(
		    ehx_signer_cert(agent_signer))), 0);
		if (ehx_body_decode(g->env->body.data, g->env->body.len,
		    &g->body, why, sizeof(why)) != 0)
			fail_msg("the agent's request does not decode: %s", why);
		assert_string_equal(g->body->sender, AGENCY);
		assert_string_equal(g->body->recipient, BROKER);
		assert_true(ehx_payload_is_request(g->body->payload_case));
		assert_non_null(g->body->person);
		assert_int_equal(g->body->in_reply_to.len, 0);
	}
	return ngot;
}

static bool
is_fetch(const struct got *g)
{
	return g->body->payload_case == EHX__BODY__PAYLOAD_FETCH_NOTIFICATIONS;
}

/* How many outbox requests (not fetches) got[] holds. */
static size_t
nrequests(void)
{
	size_t n = 0;

	for (size_t i = 0; i < ngot; i++)
		n += !is_fetch(&got[i]);
	return n;
}

/* The k-th outbox request in got[], in the order they came. */
static const Ehx__Body *
request(size_t k)
{
	for (size_t i = 0; i < ngot; i++)
		if (!is_fetch(&got[i]) && k-- == 0)
			return got[i].body;
	fail_msg("no outbox request %zu", k);
	return NULL;
}

/* The last fetch in got[], or NULL. */
static const Ehx__Body *
last_fetch(void)
{
	const Ehx__Body *f = NULL;

	for (size_t i = 0; i < ngot; i++)
		if (is_fetch(&got[i]))
			f = got[i].body;
	return f;
}

static void
broker_send_frame(const void *frame, size_t len)
{
	assert_true(identlen > 0);
	assert_int_equal(zmq_send(router, ident, identlen, ZMQ_SNDMORE),
	    (int)identlen);
	assert_int_equal(zmq_send(router, frame, len, 0), (int)len);
}

/* Seal b with the broker's key and send it to the agent; the frame is
 * kept in *keep when keep is not NULL (free it). */
static void
broker_send(const Ehx__Body *b, unsigned char **keep, size_t *keeplen)
{
	unsigned char *frame = NULL;
	size_t len = 0;

	assert_int_equal(ehx_envelope_seal(broker_signer, b, &frame, &len), 0);
	broker_send_frame(frame, len);
	if (keep != NULL) {
		*keep = frame;
		*keeplen = len;
	} else
		free(frame);
}

/* A broker reply being built. */
struct rb {
	Ehx__Body body;
	Ehx__Ack ack;
	Ehx__Error error;
	Ehx__NotificationBatch batch;
	ProtobufCBinaryData envs[MAX_NOTES];
	unsigned char id[EHX_MSGID_LEN], irt[EHX_MSGID_LEN];
};

static void
rb_init(struct rb *r, const Ehx__Body *to)
{
	memset(r, 0, sizeof(*r));
	ehx__body__init(&r->body);
	assert_int_equal(ehx_random(r->id, sizeof(r->id)), 0);
	r->body.message_id.data = r->id;
	r->body.message_id.len = EHX_MSGID_LEN;
	r->body.sender = (char *)BROKER;
	r->body.recipient = (char *)AGENCY;
	r->body.sent_at = ehx_now_ms();
	if (to != NULL) {
		assert_int_equal(to->message_id.len, EHX_MSGID_LEN);
		memcpy(r->irt, to->message_id.data, EHX_MSGID_LEN);
		r->body.in_reply_to.data = r->irt;
		r->body.in_reply_to.len = EHX_MSGID_LEN;
	}
}

static void
send_ack(const Ehx__Body *to, unsigned char **keep, size_t *keeplen)
{
	struct rb r;

	rb_init(&r, to);
	ehx__ack__init(&r.ack);
	r.ack.id = to->payload_case == EHX__BODY__PAYLOAD_PUBLISH_FLAG ?
	    to->publish_flag->ref : (char *)"";
	r.ack.basis = (char *)"role";
	r.body.payload_case = EHX__BODY__PAYLOAD_ACK;
	r.body.ack = &r.ack;
	broker_send(&r.body, keep, keeplen);
}

static void
send_error(const Ehx__Body *to, Ehx__ErrorCode code, uint64_t expected)
{
	struct rb r;

	rb_init(&r, to);
	ehx__error__init(&r.error);
	r.error.code = code;
	r.error.message = (char *)"refused by the test's broker";
	r.error.expected = expected;
	r.body.payload_case = EHX__BODY__PAYLOAD_ERROR;
	r.body.error = &r.error;
	broker_send(&r.body, NULL, NULL);
}

/* ---- outbox changes ----------------------------------------------------- */

/* A valid NHS number of its own for each n (as test_notify makes them). */
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

struct change {
	Ehx__Body body;
	Ehx__Person person;
	Ehx__PublishFlag pf;
	Ehx__Practitioner pr;
	char ref[32];
	char nhs[EHX_NHS_LEN + 1];
};

/* Queue n publishes (refs "ref-NUM", NUM the outbox number each gets);
 * their message ids into ids. Returns the first number. */
static uint64_t
put_n(size_t n, unsigned char (*ids)[EHX_MSGID_LEN], int64_t now)
{
	struct change *c = calloc(n, sizeof(*c));
	Ehx__Body **bodies = calloc(n, sizeof(*bodies));
	uint64_t want = q.next_num, first = 0;

	assert_non_null(c);
	assert_non_null(bodies);
	for (size_t i = 0; i < n; i++) {
		ehx__body__init(&c[i].body);
		ehx__person__init(&c[i].person);
		ehx__publish_flag__init(&c[i].pf);
		ehx__practitioner__init(&c[i].pr);
		snprintf(c[i].ref, sizeof(c[i].ref), "ref-%llu",
		    (unsigned long long)(want + i));
		nhs_make(++nhs_counter, c[i].nhs);
		c[i].person.user_id = (char *)"user-1";
		c[i].person.name = (char *)"Sam Jones";
		c[i].person.role = EHX__ROLE__ROLE_PRACTITIONER;
		c[i].pr.name = (char *)"Sam Jones";
		c[i].pr.role = (char *)"school nurse";
		c[i].pr.contact = (char *)"01632 960001";
		c[i].pf.nhs_number = c[i].nhs;
		c[i].pf.ref = c[i].ref;
		c[i].pf.category = EHX__CATEGORY__CATEGORY_SCHOOL_ATTENDANCE;
		c[i].pf.level = 2;
		c[i].pf.practitioner = &c[i].pr;
		c[i].body.person = &c[i].person;
		c[i].body.payload_case = EHX__BODY__PAYLOAD_PUBLISH_FLAG;
		c[i].body.publish_flag = &c[i].pf;
		bodies[i] = &c[i].body;
	}
	assert_int_equal(queue_put(&q, bodies, n, ids, &first, now), 0);
	assert_int_equal(first, want);
	assert_int_equal(q.next_num, want + n);
	free(bodies);
	free(c);
	return first;
}

/*
 * b is outbox entry num sent as number `number` of `stream` (16 bytes;
 * NULL: any, returned into stream_out when not NULL) with message id id,
 * signed at `sent`.
 */
static void
check_request(const Ehx__Body *b, const unsigned char *id, uint64_t num,
    uint64_t number, const unsigned char *stream, int64_t sent)
{
	char ref[32];

	snprintf(ref, sizeof(ref), "ref-%llu", (unsigned long long)num);
	assert_int_equal(b->payload_case, EHX__BODY__PAYLOAD_PUBLISH_FLAG);
	assert_string_equal(b->publish_flag->ref, ref);
	assert_int_equal(b->message_id.len, EHX_MSGID_LEN);
	assert_memory_equal(b->message_id.data, id, EHX_MSGID_LEN);
	assert_non_null(b->sequence);
	assert_int_equal(b->sequence->stream.len, EHX_STREAM_LEN);
	if (stream != NULL)
		assert_memory_equal(b->sequence->stream.data, stream,
		    EHX_STREAM_LEN);
	assert_int_equal(b->sequence->number, number);
	assert_int_equal(b->sent_at, sent);
	assert_int_equal(b->person->role, EHX__ROLE__ROLE_PRACTITIONER);
	assert_string_equal(b->person->user_id, "user-1");
}

static void
status(int64_t now, Ehx__AgentStatus *s)
{
	assert_int_equal(queue_status(&q, now, s), 0);
}

/* ---- notifications ------------------------------------------------------ */

struct note {
	uint64_t seq;
	unsigned char id[EHX_MSGID_LEN];
	char nhs[EHX_NHS_LEN + 1];
	unsigned char *env;             /* broker-signed */
	size_t len;
};

/* Set: note_make adds a field this version does not know. */
static bool note_new_field;

/* A broker-signed notification of seq to the agency; with bad_nhs, one
 * whose NHS number fails its check digit. */
static void
note_make(struct note *n, uint64_t seq, bool bad_nhs)
{
	Ehx__Body b = EHX__BODY__INIT;
	Ehx__Notification nt = EHX__NOTIFICATION__INIT;
	Ehx__Practitioner pr = EHX__PRACTITIONER__INIT;

	memset(n, 0, sizeof(*n));
	n->seq = seq;
	nhs_make(++nhs_counter, n->nhs);
	if (bad_nhs) {
		n->nhs[9] = n->nhs[9] == '9' ? '0' : (char)(n->nhs[9] + 1);
		assert_false(ehx_nhs_valid(n->nhs));
	}
	assert_int_equal(ehx_random(n->id, sizeof(n->id)), 0);
	pr.name = (char *)"Alex Smith";
	pr.role = (char *)"police officer";
	pr.contact = (char *)"01632 960002";
	nt.seq = seq;
	nt.nhs_number = n->nhs;
	nt.agency = (char *)"police";
	nt.agency_type = EHX__AGENCY_TYPE__AGENCY_TYPE_POLICE;
	nt.category = EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE;
	nt.event = EHX__NOTIFY_EVENT__NOTIFY_EVENT_NEW;
	nt.level = 3;
	nt.contact = &pr;
	nt.basis = EHX__LAWFUL_BASIS__LAWFUL_BASIS_PUBLIC_TASK;
	nt.agreement = (char *)"anytown-isa-2026";
	nt.flagged_at = ehx_now_ms();
	b.message_id.data = n->id;
	b.message_id.len = EHX_MSGID_LEN;
	b.sender = (char *)BROKER;
	b.recipient = (char *)AGENCY;
	b.sent_at = ehx_now_ms();
	b.payload_case = EHX__BODY__PAYLOAD_NOTIFICATION;
	b.notification = &nt;
	if (note_new_field) {
		/* As a newer broker might: a field this version lacks
		 * (Body field 99, varint 1), signed with the rest. */
		size_t len = ehx__body__get_packed_size(&b);
		unsigned char *buf = malloc(len + 3);

		assert_non_null(buf);
		ehx__body__pack(&b, buf);
		buf[len] = 0x98, buf[len + 1] = 0x06, buf[len + 2] = 0x01;
		assert_int_equal(ehx_envelope_seal_bytes(broker_signer, buf,
		    len + 3, &n->env, &n->len), 0);
		free(buf);
		return;
	}
	assert_int_equal(ehx_envelope_seal(broker_signer, &b, &n->env,
	    &n->len), 0);
}

static void
notes_free(struct note *n, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		free(n[i].env);
		n[i].env = NULL;
	}
}

/* Answer the fetch f with a NotificationBatch of the given notes. */
static void
send_batch(const Ehx__Body *f, struct note *const *notes, size_t n,
    bool restart, uint64_t pending)
{
	struct rb r;

	assert_true(n <= MAX_NOTES);
	rb_init(&r, f);
	ehx__notification_batch__init(&r.batch);
	for (size_t i = 0; i < n; i++) {
		r.envs[i].data = notes[i]->env;
		r.envs[i].len = notes[i]->len;
	}
	r.batch.envelopes = r.envs;
	r.batch.n_envelopes = n;
	r.batch.restart = restart;
	r.batch.pending = pending;
	r.body.payload_case = EHX__BODY__PAYLOAD_NOTIFICATIONS;
	r.body.notifications = &r.batch;
	broker_send(&r.body, NULL, NULL);
}

/* Push one notification, as the broker does to a connected agent. */
static void
send_push(const struct note *n)
{
	broker_send_frame(n->env, n->len);
}

/*
 * Tick at now and take the fetch the agent sends: it must name `after`
 * and, after a notification, that one's message id. Valid until the
 * next broker_recv().
 */
static const Ehx__Body *
expect_fetch(int64_t now, uint64_t after, const unsigned char *after_id)
{
	const Ehx__Body *f;

	tick(now);
	broker_recv();
	if ((f = last_fetch()) == NULL)
		fail_msg("the agent sent no fetch at %lld", (long long)now);
	assert_int_equal(f->person->role, EHX__ROLE__ROLE_SYSTEM);
	assert_null(f->sequence);
	assert_int_equal(f->fetch_notifications->after, after);
	assert_int_equal(f->fetch_notifications->limit, EHX_MAX_FETCH);
	if (after_id == NULL)
		assert_int_equal(f->fetch_notifications->after_id.len, 0);
	else {
		assert_int_equal(f->fetch_notifications->after_id.len,
		    EHX_MSGID_LEN);
		assert_memory_equal(f->fetch_notifications->after_id.data,
		    after_id, EHX_MSGID_LEN);
	}
	return f;
}

static void
inbox_op(Ehx__InboxRequest__Op op, uint64_t seq, bool all, int64_t now,
    Ehx__InboxList *l, int want)
{
	Ehx__InboxRequest req = EHX__INBOX_REQUEST__INIT;

	req.op = op;
	req.seq = seq;
	req.all = all;
	assert_int_equal(queue_inbox(&q, &req, now, l), want);
}

/* Inbox item k (numbered from 1) is the notification n. */
static void
check_item(const Ehx__InboxItem *it, uint64_t k, const struct note *n)
{
	assert_int_equal(it->seq, k);
	assert_non_null(it->notification);
	assert_int_equal(it->notification->seq, n->seq);
	assert_string_equal(it->notification->nhs_number, n->nhs);
}

/* The whole inbox is exactly notes[0], notes[1] … as items 1, 2 … */
static void
check_inbox(struct note *const *notes, size_t n, int64_t now)
{
	Ehx__InboxList l;

	inbox_op(EHX__INBOX_REQUEST__OP__OP_LIST, 0, true, now, &l, 0);
	assert_int_equal(l.n_items, n);
	for (size_t i = 0; i < n; i++)
		check_item(l.items[i], i + 1, notes[i]);
	queue_inbox_free(&l);
}

/* ---- 1. the outbox is durable ------------------------------------------- */

static void
test_put_reopen(void **state)
{
	unsigned char ids[6][EHX_MSGID_LEN], stream[EHX_STREAM_LEN];
	Ehx__AgentStatus s;
	Ehx__DoneEntry *de;
	int64_t t0 = ehx_now_ms();

	(void)state;
	q_open();
	status(t0, &s);
	assert_int_equal(s.outbox, 0);
	assert_int_equal(s.oldest_queued, 0);
	assert_int_equal(s.next_number, 1);
	assert_int_equal(s.stream.len, EHX_STREAM_LEN);
	memcpy(stream, s.stream.data, EHX_STREAM_LEN);
	queue_status_free(&s);

	assert_int_equal(put_n(3, ids, t0), 1);
	for (uint64_t n = 1; n <= 3; n++)
		assert_true(queue_pending(&q, n));
	assert_false(queue_pending(&q, 4));
	assert_int_equal(queue_done_get(&q, 1, &de), EHX_ERR_NOT_FOUND);
	assert_null(de);
	status(t0 + 10, &s);
	assert_int_equal(s.outbox, 3);
	assert_int_equal(s.oldest_queued, t0);
	assert_int_equal(s.next_number, 4);
	assert_int_equal(s.in_flight, 0);
	queue_status_free(&s);

	/* One agent per store. */
	{
		struct queue q2;
		char err[512];

		memset(&q2, 0, sizeof(q2));
		q2.agency = AGENCY;
		q2.broker_id = BROKER;
		q2.broker_cert = broker_cert;
		q2.signer = agent_signer;
		assert_int_equal(queue_open(&q2, store, err, sizeof(err)),
		    EHX_ERR_STORAGE);
		assert_non_null(strstr(err, "another ehx-agent"));
		queue_close(&q2);
	}

	/* A restart: the entries, their numbers and the stream survive. */
	q_reopen();
	status(t0 + 20, &s);
	assert_int_equal(s.outbox, 3);
	assert_int_equal(s.oldest_queued, t0);
	assert_int_equal(s.next_number, 4);
	assert_memory_equal(s.stream.data, stream, EHX_STREAM_LEN);
	queue_status_free(&s);
	assert_int_equal(put_n(2, ids + 3, t0 + 5000), 4);
	status(t0 + 5001, &s);
	assert_int_equal(s.outbox, 5);
	assert_int_equal(s.oldest_queued, t0);
	assert_int_equal(s.next_number, 6);
	queue_status_free(&s);
	for (size_t i = 0; i < 5; i++)
		for (size_t j = i + 1; j < 5; j++)
			assert_memory_not_equal(ids[i], ids[j], EHX_MSGID_LEN);

	/* Sent with the ids queue_put gave, numbered by outbox number. */
	tick(t0 + 6000);
	broker_recv();
	assert_int_equal(nrequests(), 5);
	for (size_t k = 0; k < 5; k++)
		check_request(request(k), ids[k], k + 1, k + 1, stream,
		    t0 + 6000);

	/* Unanswered, and restarted again: the same again. */
	q_reopen();
	tick(t0 + 7000);
	broker_recv();
	assert_int_equal(nrequests(), 5);
	for (size_t k = 0; k < 5; k++)
		check_request(request(k), ids[k], k + 1, k + 1, stream,
		    t0 + 7000);
}

/* ---- 2. in order, a window at a time ------------------------------------ */

static void
test_window_in_order(void **state)
{
	unsigned char ids[40][EHX_MSGID_LEN], stream[EHX_STREAM_LEN];
	Ehx__AgentStatus s;
	int64_t t0 = ehx_now_ms();

	(void)state;
	q_open();
	assert_int_equal(put_n(40, ids, t0), 1);
	tick(t0 + 1);
	broker_recv();
	assert_non_null(last_fetch());
	assert_int_equal(nrequests(), QUEUE_WINDOW);
	memcpy(stream, request(0)->sequence->stream.data, EHX_STREAM_LEN);
	for (size_t k = 0; k < QUEUE_WINDOW; k++)
		check_request(request(k), ids[k], k + 1, k + 1, stream, t0 + 1);
	status(t0 + 1, &s);
	assert_int_equal(s.in_flight, QUEUE_WINDOW);
	assert_memory_equal(s.stream.data, stream, EHX_STREAM_LEN);
	queue_status_free(&s);

	/* The broker answers 1..8 (the agent has not read them yet) … */
	for (size_t k = 0; k < 8; k++)
		send_ack(request(k), NULL, NULL);
	/* … the window is full: nothing more goes until they are taken. */
	tick(t0 + 2);
	broker_recv();
	assert_int_equal(nrequests(), 0);

	/* Taking 1..8 in one burst frees eight places: 33..40 go. */
	assert_int_equal(agent_recv(t0 + 3), 8);
	assert_int_equal(ndecided, 8);
	for (size_t k = 0; k < 8; k++) {
		assert_int_equal(decided[k], k + 1);
		assert_false(queue_pending(&q, k + 1));
	}
	assert_true(queue_pending(&q, 9));
	tick(t0 + 4);
	broker_recv();
	assert_int_equal(nrequests(), 8);
	for (size_t k = 0; k < 8; k++)
		check_request(request(k), ids[32 + k], 33 + k, 33 + k, stream,
		    t0 + 4);
	status(t0 + 4, &s);
	assert_int_equal(s.in_flight, QUEUE_WINDOW);
	assert_int_equal(s.outbox, 32);
	assert_int_equal(s.delivered, 8);
	queue_status_free(&s);
}

/* ---- 3. what the broker's answers decide -------------------------------- */

static void
test_answers(void **state)
{
	unsigned char ids[4][EHX_MSGID_LEN], stream[EHX_STREAM_LEN];
	unsigned char *ackframe = NULL;
	size_t acklen = 0;
	Ehx__DoneEntry *de;
	Ehx__OutboxReport rep;
	Ehx__AgentStatus s;
	Ehx__Envelope *env;
	Ehx__Body *body;
	char why[128];
	int64_t t0 = ehx_now_ms(), t;

	(void)state;
	q_open();
	assert_int_equal(put_n(4, ids, t0), 1);
	tick(t0);
	broker_recv();
	assert_int_equal(nrequests(), 4);
	memcpy(stream, request(0)->sequence->stream.data, EHX_STREAM_LEN);

	/* 1 acknowledged: decided, its reply kept in the done list. */
	send_ack(request(0), &ackframe, &acklen);
	/* 2 refused for good: decided as refused. */
	send_error(request(1), EHX__ERROR_CODE__ERROR_INVALID_FIELD, 0);
	/* 3: the broker is busy; sending again later may work. */
	send_error(request(2), EHX__ERROR_CODE__ERROR_UNAVAILABLE, 0);
	t = t0 + 10;
	assert_int_equal(agent_recv(t), 3);
	assert_int_equal(ndecided, 2);
	assert_int_equal(decided[0], 1);
	assert_int_equal(decided[1], 2);

	assert_false(queue_pending(&q, 1));
	assert_int_equal(queue_done_get(&q, 1, &de), 0);
	assert_int_equal(de->number, 1);
	assert_false(de->refused);
	assert_int_equal(de->at, t);
	assert_int_equal(de->message_id.len, EHX_MSGID_LEN);
	assert_memory_equal(de->message_id.data, ids[0], EHX_MSGID_LEN);
	assert_int_equal(de->reply.len, acklen);
	assert_memory_equal(de->reply.data, ackframe, acklen);
	assert_int_equal(ehx_envelope_decode(de->reply.data, de->reply.len,
	    &env), 0);
	assert_int_equal(ehx_body_decode(env->body.data, env->body.len, &body,
	    why, sizeof(why)), 0);
	assert_int_equal(body->payload_case, EHX__BODY__PAYLOAD_ACK);
	assert_memory_equal(body->in_reply_to.data, ids[0], EHX_MSGID_LEN);
	ehx_body_free(body);
	ehx_envelope_free(env);
	ehx__done_entry__free_unpacked(de, NULL);
	free(ackframe);

	assert_false(queue_pending(&q, 2));
	assert_int_equal(queue_done_get(&q, 2, &de), 0);
	assert_true(de->refused);
	assert_non_null(de->error);
	assert_int_equal(de->error->code, EHX__ERROR_CODE__ERROR_INVALID_FIELD);
	assert_string_equal(de->what, "publish_flag ref-2");
	ehx__done_entry__free_unpacked(de, NULL);

	assert_true(queue_pending(&q, 3));
	assert_int_equal(queue_done_get(&q, 3, &de), EHX_ERR_NOT_FOUND);
	assert_true(queue_pending(&q, 4));

	assert_int_equal(queue_report(&q, 1, 4, &rep), 0);
	assert_int_equal(rep.pending, 2);
	assert_int_equal(rep.delivered, 1);
	assert_int_equal(rep.refused, 1);
	assert_int_equal(rep.n_refusals, 1);
	assert_int_equal(rep.refusals[0]->number, 2);
	assert_memory_equal(rep.refusals[0]->message_id.data, ids[1],
	    EHX_MSGID_LEN);
	assert_int_equal(rep.refusals[0]->error->code,
	    EHX__ERROR_CODE__ERROR_INVALID_FIELD);
	assert_string_equal(rep.refusals[0]->what, "publish_flag ref-2");
	queue_report_free(&rep);
	assert_int_equal(queue_report(&q, 2, 1, &rep), EHX_ERR_INVALID_FIELD);
	queue_report_free(&rep);

	status(t, &s);
	assert_int_equal(s.delivered, 1);
	assert_int_equal(s.refused, 1);
	assert_int_equal(s.outbox, 2);
	assert_true(s.connected);
	assert_int_equal(s.n_recent_refusals, 1);
	assert_int_equal(s.recent_refusals[0]->number, 2);
	assert_non_null(strstr(s.last_error, "unavailable"));
	queue_status_free(&s);

	/* The backoff (125..250 ms at first): not yet … */
	tick(t + 120);
	broker_recv();
	assert_int_equal(nrequests(), 0);
	/* … then what is held goes again, as it was: 3 and 4. */
	tick(t + 251);
	broker_recv();
	assert_int_equal(nrequests(), 2);
	check_request(request(0), ids[2], 3, 3, stream, t + 251);
	check_request(request(1), ids[3], 4, 4, stream, t + 251);

	/* A credential error holds the entry (it is about the agent). */
	t += 1000;
	send_error(request(1), EHX__ERROR_CODE__ERROR_CERTIFICATE_EXPIRED, 0);
	assert_int_equal(agent_recv(t), 1);
	assert_true(queue_pending(&q, 4));
	assert_int_equal(ndecided, 2);
	assert_int_equal(queue_report(&q, 1, 4, &rep), 0);
	assert_int_equal(rep.pending, 2);
	assert_int_equal(rep.refused, 1);
	queue_report_free(&rep);
	status(t, &s);
	assert_non_null(strstr(s.last_error, "certificate_expired"));
	queue_status_free(&s);
	/* Each refusal is audited at the broker: not again for half a
	 * minute at least, and then one request at a time (the oldest). */
	tick(t + 29999);
	broker_recv();
	assert_int_equal(nrequests(), 0);
	tick(t + 60001);
	broker_recv();
	assert_int_equal(nrequests(), 1);
	check_request(request(0), ids[2], 3, 3, stream, t + 60001);
	t += 60001;
	/* Its acknowledgement (the credentials put right) lifts the hold:
	 * 4 follows at once. */
	send_ack(request(0), NULL, NULL);
	assert_int_equal(agent_recv(t + 1), 1);
	tick(t + 2);
	broker_recv();
	assert_int_equal(nrequests(), 1);
	check_request(request(0), ids[3], 4, 4, stream, t + 2);

	/* Acknowledged at last; a second ack of 4 changes nothing. */
	send_ack(request(0), NULL, NULL);
	send_ack(request(0), NULL, NULL);
	assert_int_equal(agent_recv(t + 600), 2);
	send_ack(request(0), NULL, NULL);
	assert_int_equal(agent_recv(t + 601), 0);       /* not the queue's now */
	assert_int_equal(ndecided, 4);
	assert_int_equal(queue_report(&q, 1, 4, &rep), 0);
	assert_int_equal(rep.pending, 0);
	assert_int_equal(rep.delivered, 3);
	assert_int_equal(rep.refused, 1);
	queue_report_free(&rep);
	assert_int_equal(queue_report(&q, 3, 3, &rep), 0);
	assert_int_equal(rep.delivered, 1);
	assert_int_equal(rep.refused, 0);
	queue_report_free(&rep);
	status(t + 601, &s);
	assert_int_equal(s.outbox, 0);
	assert_int_equal(s.oldest_queued, 0);
	assert_int_equal(s.in_flight, 0);
	assert_int_equal(s.delivered, 3);
	assert_int_equal(s.last_error[0], '\0');
	queue_status_free(&s);

	/* The counts are stored. */
	q_reopen();
	status(t + 700, &s);
	assert_int_equal(s.delivered, 3);
	assert_int_equal(s.refused, 1);
	queue_status_free(&s);
}

/* ---- 4. no answer: sent again ------------------------------------------- */

static void
test_resend_no_answer(void **state)
{
	unsigned char ids[3][EHX_MSGID_LEN], stream[EHX_STREAM_LEN];
	Ehx__AgentStatus s;
	int64_t t0 = ehx_now_ms(), t1, t2, next;

	(void)state;
	q_open();
	assert_int_equal(put_n(3, ids, t0), 1);
	next = tick(t0);
	assert_true(next <= t0 + RESEND_MS);
	broker_recv();
	assert_int_equal(nrequests(), 3);
	memcpy(stream, request(0)->sequence->stream.data, EHX_STREAM_LEN);

	tick(t0 + RESEND_MS - 1);
	broker_recv();
	assert_int_equal(nrequests(), 0);
	/* resend_ms without an answer: back to the oldest, after a backoff
	 * of 125..250 ms. */
	t1 = t0 + RESEND_MS;
	next = tick(t1);
	assert_true(next <= t1 + 250);
	broker_recv();
	assert_int_equal(nrequests(), 0);
	status(t1, &s);
	assert_non_null(strstr(s.last_error, "no answer"));
	queue_status_free(&s);
	tick(t1 + 250);
	broker_recv();
	assert_int_equal(nrequests(), 3);
	for (size_t k = 0; k < 3; k++)
		check_request(request(k), ids[k], k + 1, k + 1, stream,
		    t1 + 250);

	/* Again unanswered: the backoff doubles (250..500 ms). */
	t2 = t1 + 250 + RESEND_MS;
	tick(t2);
	tick(t2 + 249);
	broker_recv();
	assert_int_equal(nrequests(), 0);
	tick(t2 + 500);
	broker_recv();
	assert_int_equal(nrequests(), 3);
	for (size_t k = 0; k < 3; k++)
		check_request(request(k), ids[k], k + 1, k + 1, stream,
		    t2 + 500);

	/* Answered: nothing is sent again after resend_ms. */
	for (size_t k = 0; k < 3; k++)
		send_ack(request(k), NULL, NULL);
	assert_int_equal(agent_recv(t2 + 501), 3);
	tick(t2 + 501 + 2 * RESEND_MS);
	broker_recv();
	assert_int_equal(nrequests(), 0);
}

/* The connection dropped: what is in flight goes again when it is back,
 * without waiting for resend_ms or a backoff. */
static void
test_connection_drop(void **state)
{
	unsigned char ids[2][EHX_MSGID_LEN];
	int64_t t0 = ehx_now_ms();

	(void)state;
	q_open();
	assert_int_equal(put_n(2, ids, t0), 1);
	tick(t0);
	broker_recv();
	assert_int_equal(nrequests(), 2);
	queue_connection(&q, false, t0 + 100);
	queue_connection(&q, true, t0 + 200);
	tick(t0 + 201);
	broker_recv();
	assert_int_equal(nrequests(), 2);
	check_request(request(0), ids[0], 1, 1, NULL, t0 + 201);
	check_request(request(1), ids[1], 2, 2, NULL, t0 + 201);
	/* And a fetch at once, though the last one was not answered. */
	assert_non_null(last_fetch());
}

/* The outbox is bounded (outbox_max): a change beyond it is refused
 * STORAGE_FULL and nothing of it is queued; once one is delivered there is
 * room again. */
static void
test_outbox_bound(void **state)
{
	unsigned char ids[8][EHX_MSGID_LEN];
	Ehx__Body body = EHX__BODY__INIT, *bp = &body;
	Ehx__AgentStatus s;
	uint64_t first = 0, next;
	int64_t t0 = ehx_now_ms();

	(void)state;
	q_open();
	q.outbox_max = 3;
	assert_int_equal(put_n(3, ids, t0), 1);
	next = q.next_num;
	body.payload_case = EHX__BODY__PAYLOAD_CLOSE_FLAG;
	assert_int_equal(queue_put(&q, &bp, 1, ids + 3, &first, t0),
	    EHX_ERR_STORAGE_FULL);
	assert_int_equal(q.next_num, next);
	status(t0, &s);
	assert_int_equal(s.outbox, 3);
	queue_status_free(&s);
	/* One decided: room for one more. */
	tick(t0);
	broker_recv();
	send_ack(request(0), NULL, NULL);
	assert_int_equal(agent_recv(t0 + 1), 1);
	assert_int_equal(put_n(1, ids + 3, t0 + 2), 4);
	q_reopen();
	q.outbox_max = 3;
	assert_int_equal(queue_put(&q, &bp, 1, ids + 4, &first, t0 + 3),
	    EHX_ERR_STORAGE_FULL);
}

/* ---- 5. OUT_OF_ORDER ---------------------------------------------------- */

static void
test_out_of_order(void **state)
{
	unsigned char ids[4][EHX_MSGID_LEN], s1[EHX_STREAM_LEN],
	    s2[EHX_STREAM_LEN];
	Ehx__AgentStatus s;
	int64_t t0 = ehx_now_ms(), t;

	(void)state;
	q_open();
	assert_int_equal(put_n(3, ids, t0), 1);
	tick(t0);
	broker_recv();
	assert_int_equal(nrequests(), 3);
	memcpy(s1, request(0)->sequence->stream.data, EHX_STREAM_LEN);
	for (size_t k = 0; k < 3; k++)
		check_request(request(k), ids[k], k + 1, k + 1, s1, t0);
	send_ack(request(0), NULL, NULL);
	assert_int_equal(agent_recv(t0 + 1), 1);

	/* Expected 0: the broker applied these numbers to other requests
	 * (this store went back). A new stream, from 1 at the oldest held. */
	send_error(request(1), EHX__ERROR_CODE__ERROR_OUT_OF_ORDER, 0);
	assert_int_equal(agent_recv(t0 + 2), 1);
	assert_true(queue_pending(&q, 2));
	assert_true(queue_pending(&q, 3));
	assert_int_equal(ndecided, 1);
	status(t0 + 2, &s);
	assert_int_equal(s.stream.len, EHX_STREAM_LEN);
	memcpy(s2, s.stream.data, EHX_STREAM_LEN);
	queue_status_free(&s);
	assert_memory_not_equal(s1, s2, EHX_STREAM_LEN);
	tick(t0 + 3);
	broker_recv();
	assert_int_equal(nrequests(), 2);
	check_request(request(0), ids[1], 2, 1, s2, t0 + 3);
	check_request(request(1), ids[2], 3, 2, s2, t0 + 3);

	/* Expected 1 of the new stream, which it holds: the same stream,
	 * from the oldest again (no sooner than 500 ms after the last). */
	t = t0 + 600;
	send_error(request(1), EHX__ERROR_CODE__ERROR_OUT_OF_ORDER, 1);
	assert_int_equal(agent_recv(t), 1);
	tick(t + 1);
	broker_recv();
	assert_int_equal(nrequests(), 2);
	check_request(request(0), ids[1], 2, 1, s2, t + 1);
	check_request(request(1), ids[2], 3, 2, s2, t + 1);

	/* The new stream is stored: after a restart, and for what comes
	 * next. */
	q_reopen();
	assert_int_equal(put_n(1, ids + 3, t + 2), 4);
	tick(t + 3);
	broker_recv();
	assert_int_equal(nrequests(), 3);
	for (size_t k = 0; k < 3; k++)
		check_request(request(k), ids[k + 1], k + 2, k + 1, s2, t + 3);
}

/*
 * An acknowledgement and OUT_OF_ORDER (expected 0) in one burst: the new
 * stream starts at the oldest entry not decided, not at one the ack in the
 * same burst decided (its deletion waits for queue_flush).
 */
static void
test_out_of_order_burst(void **state)
{
	unsigned char ids[3][EHX_MSGID_LEN], s1[EHX_STREAM_LEN];
	Ehx__AgentStatus s;
	int64_t t0 = ehx_now_ms();

	(void)state;
	q_open();
	assert_int_equal(put_n(3, ids, t0), 1);
	tick(t0);
	broker_recv();
	assert_int_equal(nrequests(), 3);
	memcpy(s1, request(0)->sequence->stream.data, EHX_STREAM_LEN);
	send_ack(request(0), NULL, NULL);
	send_error(request(1), EHX__ERROR_CODE__ERROR_OUT_OF_ORDER, 0);
	assert_int_equal(agent_recv(t0 + 1), 2);
	assert_false(queue_pending(&q, 1));
	tick(t0 + 2);
	broker_recv();
	assert_int_equal(nrequests(), 2);
	status(t0 + 2, &s);
	assert_memory_not_equal(s.stream.data, s1, EHX_STREAM_LEN);
	/* Outbox 2 is number 1 of the new stream, 3 is number 2. */
	check_request(request(0), ids[1], 2, 1, s.stream.data, t0 + 2);
	check_request(request(1), ids[2], 3, 2, s.stream.data, t0 + 2);
	/* The old stream's answer to 3 (the same message id) comes late:
	 * no stream of this process's making can have been used by another
	 * request, so it starts no further stream. */
	send_error(request(1), EHX__ERROR_CODE__ERROR_OUT_OF_ORDER, 0);
	assert_int_equal(agent_recv(t0 + 3), 1);
	{
		Ehx__AgentStatus s2;

		status(t0 + 3, &s2);
		assert_memory_equal(s2.stream.data, s.stream.data,
		    EHX_STREAM_LEN);
		queue_status_free(&s2);
	}
	queue_status_free(&s);
}

/* ---- 6. the inbox: intake ----------------------------------------------- */

static void
test_inbox_intake(void **state)
{
	struct note n[7], x3, n7, again3;
	struct note *b[MAX_NOTES];
	const Ehx__Body *f;
	Ehx__AgentStatus s;
	Ehx__InboxList l;
	int64_t t0 = ehx_now_ms(), t;

	(void)state;
	for (int i = 1; i <= 6; i++)
		note_make(&n[i], (uint64_t)i, false);
	note_make(&x3, 3, false);
	note_make(&n7, 7, false);
	note_make(&again3, 3, false);
	q_open();

	/* A first fetch names nothing; seq 1, 2, 3 are inbox 1, 2, 3. */
	f = expect_fetch(t0, 0, NULL);
	b[0] = &n[1], b[1] = &n[2], b[2] = &n[3];
	send_batch(f, b, 3, false, 0);
	assert_int_equal(agent_recv(t0 + 1), 1);
	check_inbox(b, 3, t0 + 1);
	status(t0 + 1, &s);
	assert_int_equal(s.notifications, 3);
	assert_int_equal(s.inbox_new, 3);
	queue_status_free(&s);

	/* Taken: the next fetch (at once) acknowledges 3 by its id. */
	f = expect_fetch(t0 + 2, 3, n[3].id);

	/* The same envelope again, in a batch and pushed: not stored twice. */
	b[0] = &n[3];
	send_batch(f, b, 1, false, 0);
	assert_int_equal(agent_recv(t0 + 3), 1);
	send_push(&n[2]);
	assert_int_equal(agent_recv(t0 + 4), 1);
	b[0] = &n[1], b[1] = &n[2], b[2] = &n[3];
	check_inbox(b, 3, t0 + 4);

	/*
	 * A restart: the broker, restored from before 3 was made, does not
	 * know 3 by that id. Its queue from the start holds 1 and 2 (the same
	 * ids) and a new notification it numbered 3. Only that one is stored.
	 * (The push above asked for a fetch at once.)
	 */
	f = expect_fetch(t0 + 5, 3, n[3].id);
	b[0] = &n[1], b[1] = &n[2], b[2] = &x3;
	send_batch(f, b, 3, true, 0);
	assert_int_equal(agent_recv(t0 + 6), 1);
	b[0] = &n[1], b[1] = &n[2], b[2] = &n[3], b[3] = &x3;
	check_inbox(b, 4, t0 + 6);
	f = expect_fetch(t0 + 7, 3, x3.id);

	/* (A notification that is not well formed: test_inbox_unreadable.) */
	send_batch(f, NULL, 0, false, 0);
	assert_int_equal(agent_recv(t0 + 8), 1);
	b[0] = &n[1], b[1] = &n[2], b[2] = &n[3], b[3] = &x3;

	/*
	 * A push is only a hint, never stored: not out of turn (7), not one
	 * of a seq taken already (3), and not even in turn (4) — a broker
	 * restored from a backup gives seqs again, and a 4 taken on its seq
	 * alone could be named in the next fetch and so acknowledge a 3 the
	 * inbox never had.
	 */
	send_push(&n7);
	assert_int_equal(agent_recv(t0 + 9), 1);
	send_push(&again3);
	assert_int_equal(agent_recv(t0 + 9), 1);
	send_push(&n[4]);
	assert_int_equal(agent_recv(t0 + 9), 1);
	check_inbox(b, 4, t0 + 9);
	/* It makes the agent fetch at once, naming 3 by its id … */
	f = expect_fetch(t0 + 10, 3, x3.id);
	/* … and what the broker answers to that is taken. */
	b[0] = &n[4], b[1] = &n[5];
	send_batch(f, b, 2, false, 0);
	assert_int_equal(agent_recv(t0 + 12), 1);
	b[0] = &n[1], b[1] = &n[2], b[2] = &n[3], b[3] = &x3, b[4] = &n[4];
	b[5] = &n[5];
	check_inbox(b, 6, t0 + 12);
	f = expect_fetch(t0 + 13, 5, n[5].id);

	/* A reply to a fetch no longer awaited is not the queue's. */
	t = t0 + 14;
	send_batch(f, NULL, 0, false, 0);
	assert_int_equal(agent_recv(t), 1);
	send_batch(f, NULL, 0, false, 0);
	assert_int_equal(agent_recv(t), 0);

	/* Nothing taken: the next fetch waits for poll_ms … */
	tick(t + 1);
	broker_recv();
	assert_null(last_fetch());
	f = expect_fetch(t0 + 13 + POLL_MS, 5, n[5].id);
	/* … unless the broker says more are pending. */
	send_batch(f, NULL, 0, false, 3);
	assert_int_equal(agent_recv(t0 + 14 + POLL_MS), 1);
	f = expect_fetch(t0 + 15 + POLL_MS, 5, n[5].id);

	/* Where the intake stands is stored. */
	q_reopen();
	f = expect_fetch(t0 + 16 + POLL_MS, 5, n[5].id);
	check_inbox(b, 6, t0 + 16 + POLL_MS);
	status(t0 + 16 + POLL_MS, &s);
	assert_int_equal(s.notifications, 6);
	queue_status_free(&s);
	inbox_op(EHX__INBOX_REQUEST__OP__OP_SHOW, 4, false, t, &l, 0);
	assert_int_equal(l.n_items, 1);
	assert_int_equal(l.items[0]->envelope.len, x3.len);
	assert_memory_equal(l.items[0]->envelope.data, x3.env, x3.len);
	queue_inbox_free(&l);

	/*
	 * A restart with nothing queued (the broker's store was restored
	 * from before 5): the intake starts again from 0, once, not one
	 * restart per poll.
	 */
	t = t0 + 17 + POLL_MS;
	send_batch(f, NULL, 0, true, 0);
	assert_int_equal(agent_recv(t), 1);
	f = expect_fetch(t + POLL_MS, 0, NULL);
	q_reopen();                     /* and that is stored */
	f = expect_fetch(t + POLL_MS + 1, 0, NULL);
	/* What it holds next is taken whatever its seq, by id only once:
	 * 5 again (held), and a new 6 as inbox 7. */
	b[0] = &n[5], b[1] = &n[6];
	send_batch(f, b, 2, false, 0);
	assert_int_equal(agent_recv(t + POLL_MS + 2), 1);
	b[0] = &n[1], b[1] = &n[2], b[2] = &n[3], b[3] = &x3, b[4] = &n[4];
	b[5] = &n[5], b[6] = &n[6];
	check_inbox(b, 7, t + POLL_MS + 2);
	expect_fetch(t + POLL_MS + 3, 6, n[6].id);

	notes_free(n + 1, 6);
	notes_free(&x3, 1);
	notes_free(&n7, 1);
	notes_free(&again3, 1);
}

/*
 * A broker-signed notification this agent cannot read (here: a bad NHS
 * number; in life, a newer broker's category) is taken in turn without
 * being stored, so what follows is not held up for ever; one whose
 * signature does not verify cannot say where it stands, and nothing after
 * it is taken (the next fetch, at the poll, asks again).
 */
static void
test_inbox_unreadable(void **state)
{
	struct note n[7], bad2, forged3, newer6;
	struct note *b[MAX_NOTES];
	const Ehx__Body *f;
	int64_t t0 = ehx_now_ms();

	(void)state;
	for (int i = 1; i <= 6; i++)
		note_make(&n[i], (uint64_t)i, false);
	note_new_field = true;
	note_make(&newer6, 6, false);
	note_new_field = false;
	note_make(&bad2, 2, true);
	note_make(&forged3, 3, false);
	forged3.env[forged3.len - 1] ^= 1;      /* the signature's last byte */
	q_open();

	f = expect_fetch(t0, 0, NULL);
	b[0] = &n[1], b[1] = &bad2, b[2] = &n[3];
	send_batch(f, b, 3, false, 0);
	assert_int_equal(agent_recv(t0 + 1), 1);
	/* 1 and 3 stored as inbox 1 and 2; 2 taken (acknowledged) but not
	 * stored. */
	b[0] = &n[1], b[1] = &n[3];
	check_inbox(b, 2, t0 + 1);
	f = expect_fetch(t0 + 2, 3, n[3].id);

	/* A forged 4 (the real 4 after it) holds the intake at 3. */
	forged3.seq = 4;
	b[0] = &forged3, b[1] = &n[4];
	send_batch(f, b, 2, false, 0);
	assert_int_equal(agent_recv(t0 + 3), 1);
	b[0] = &n[1], b[1] = &n[3];
	check_inbox(b, 2, t0 + 3);
	/* Not asked again at once (no storm), but at the poll. */
	tick(t0 + 4);
	broker_recv();
	assert_null(last_fetch());
	f = expect_fetch(t0 + 2 + POLL_MS, 3, n[3].id);
	b[0] = &n[4], b[1] = &n[5];
	send_batch(f, b, 2, false, 0);
	assert_int_equal(agent_recv(t0 + 3 + POLL_MS), 1);
	b[0] = &n[1], b[1] = &n[3], b[2] = &n[4], b[3] = &n[5];
	check_inbox(b, 4, t0 + 3 + POLL_MS);
	f = expect_fetch(t0 + 4 + POLL_MS, 5, n[5].id);

	/* A notification with a field this version does not know (signed,
	 * from a newer broker): taken in turn, not stored; what follows is
	 * not held up. */
	{
		struct note n7;

		note_make(&n7, 7, false);
		b[0] = &newer6, b[1] = &n7;
		send_batch(f, b, 2, false, 0);
		assert_int_equal(agent_recv(t0 + 5 + POLL_MS), 1);
		b[0] = &n[1], b[1] = &n[3], b[2] = &n[4], b[3] = &n[5];
		b[4] = &n7;
		check_inbox(b, 5, t0 + 5 + POLL_MS);
		expect_fetch(t0 + 6 + POLL_MS, 7, n7.id);
		notes_free(&n7, 1);
	}

	notes_free(n + 1, 6);
	notes_free(&newer6, 1);
	notes_free(&bad2, 1);
	notes_free(&forged3, 1);
}

/* An agent whose store is new takes whatever the broker holds first. */
static void
test_inbox_new_store(void **state)
{
	struct note n5, n6;
	struct note *b[2] = { &n5, &n6 };
	const Ehx__Body *f;
	Ehx__InboxList l;
	int64_t t0 = ehx_now_ms();

	(void)state;
	note_make(&n5, 5, false);
	note_make(&n6, 6, false);
	q_open();
	f = expect_fetch(t0, 0, NULL);
	send_batch(f, b, 2, false, 0);
	assert_int_equal(agent_recv(t0 + 1), 1);
	inbox_op(EHX__INBOX_REQUEST__OP__OP_LIST, 0, true, t0 + 1, &l, 0);
	assert_int_equal(l.n_items, 2);
	check_item(l.items[0], 1, &n5);
	check_item(l.items[1], 2, &n6);
	assert_int_equal(l.items[0]->received_at, t0 + 1);
	queue_inbox_free(&l);
	expect_fetch(t0 + 2, 6, n6.id);
	notes_free(&n5, 1);
	notes_free(&n6, 1);
}

/* ---- 7. ehx inbox ------------------------------------------------------- */

static void
test_inbox_ops(void **state)
{
	struct note n[3];
	struct note *b[3] = { &n[0], &n[1], &n[2] };
	const Ehx__Body *f;
	Ehx__InboxList l;
	Ehx__AgentStatus s;
	int64_t t0 = ehx_now_ms();

	(void)state;
	for (int i = 0; i < 3; i++)
		note_make(&n[i], (uint64_t)i + 1, false);
	q_open();
	f = expect_fetch(t0, 0, NULL);
	send_batch(f, b, 3, false, 0);
	assert_int_equal(agent_recv(t0 + 1), 1);

	/* New only: all three, without their envelopes. */
	inbox_op(EHX__INBOX_REQUEST__OP__OP_LIST, 0, false, t0 + 2, &l, 0);
	assert_int_equal(l.n_items, 3);
	assert_int_equal(l.total_new, 3);
	for (size_t i = 0; i < 3; i++) {
		check_item(l.items[i], i + 1, &n[i]);
		assert_int_equal(l.items[i]->envelope.len, 0);
		assert_int_equal(l.items[i]->acked_at, 0);
	}
	queue_inbox_free(&l);

	/* Show: one, with the broker-signed envelope. */
	inbox_op(EHX__INBOX_REQUEST__OP__OP_SHOW, 2, false, t0 + 3, &l, 0);
	assert_int_equal(l.n_items, 1);
	check_item(l.items[0], 2, &n[1]);
	assert_int_equal(l.items[0]->envelope.len, n[1].len);
	assert_memory_equal(l.items[0]->envelope.data, n[1].env, n[1].len);
	assert_int_equal(l.items[0]->acked_at, 0);
	queue_inbox_free(&l);

	/* Ack 2; a second ack keeps the first time. */
	inbox_op(EHX__INBOX_REQUEST__OP__OP_ACK, 2, false, t0 + 4, &l, 0);
	assert_int_equal(l.n_items, 1);
	assert_int_equal(l.items[0]->seq, 2);
	assert_int_equal(l.items[0]->acked_at, t0 + 4);
	queue_inbox_free(&l);
	inbox_op(EHX__INBOX_REQUEST__OP__OP_ACK, 2, false, t0 + 5, &l, 0);
	assert_int_equal(l.items[0]->acked_at, t0 + 4);
	queue_inbox_free(&l);

	inbox_op(EHX__INBOX_REQUEST__OP__OP_LIST, 0, false, t0 + 6, &l, 0);
	assert_int_equal(l.n_items, 2);
	assert_int_equal(l.total_new, 2);
	check_item(l.items[0], 1, &n[0]);
	check_item(l.items[1], 3, &n[2]);
	queue_inbox_free(&l);
	inbox_op(EHX__INBOX_REQUEST__OP__OP_LIST, 0, true, t0 + 6, &l, 0);
	assert_int_equal(l.n_items, 3);
	assert_int_equal(l.total_new, 2);
	assert_int_equal(l.items[1]->acked_at, t0 + 4);
	queue_inbox_free(&l);
	status(t0 + 6, &s);
	assert_int_equal(s.inbox_new, 2);
	queue_status_free(&s);

	/* Unknown numbers. */
	inbox_op(EHX__INBOX_REQUEST__OP__OP_ACK, 4, false, t0 + 7, &l,
	    EHX_ERR_NOT_FOUND);
	assert_int_equal(l.n_items, 0);
	queue_inbox_free(&l);
	inbox_op(EHX__INBOX_REQUEST__OP__OP_SHOW, 99, false, t0 + 7, &l,
	    EHX_ERR_NOT_FOUND);
	queue_inbox_free(&l);
	inbox_op(EHX__INBOX_REQUEST__OP__OP_ACK, 0, false, t0 + 7, &l,
	    EHX_ERR_NOT_FOUND);
	queue_inbox_free(&l);

	/* The ack is stored. */
	q_reopen();
	inbox_op(EHX__INBOX_REQUEST__OP__OP_LIST, 0, false, t0 + 8, &l, 0);
	assert_int_equal(l.n_items, 2);
	queue_inbox_free(&l);
	notes_free(n, 3);
}

/* ---- 8. the spool ------------------------------------------------------- */

/* How many entries dir holds (not . and ..); the last one's name. */
static size_t
dir_count(const char *path, char *name, size_t namesz)
{
	DIR *d = opendir(path);
	struct dirent *e;
	size_t n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		n++;
		if (name != NULL)
			snprintf(name, namesz, "%s", e->d_name);
	}
	closedir(d);
	return n;
}

static void
make_spool(void)
{
	static const char *const sub[] = { "", "/tmp", "/new", "/cur" };
	char p[PATH_MAX + 8];

	snprintf(spool_dir, sizeof(spool_dir), "%s/spool", tdir);
	for (size_t i = 0; i < 4; i++) {
		snprintf(p, sizeof(p), "%s%s", spool_dir, sub[i]);
		assert_int_equal(mkdir(p, 0700), 0);
	}
}

static void
check_spooled(const char *path, const struct note *n, uint64_t seq)
{
	json_object *o, *v;
	struct stat st;
	char hex[2 * EHX_MSGID_LEN + 1];

	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_non_null(o = json_object_from_file(path));
	assert_true(json_object_object_get_ex(o, "nhs_number", &v));
	assert_string_equal(json_object_get_string(v), n->nhs);
	assert_true(json_object_object_get_ex(o, "seq", &v));
	assert_int_equal(json_object_get_uint64(v), seq);
	assert_true(json_object_object_get_ex(o, "broker_seq", &v));
	assert_int_equal(json_object_get_uint64(v), n->seq);
	assert_true(json_object_object_get_ex(o, "message_id", &v));
	assert_string_equal(json_object_get_string(v),
	    ehx_hex(hex, n->id, EHX_MSGID_LEN));
	assert_true(json_object_object_get_ex(o, "agency", &v));
	assert_string_equal(json_object_get_string(v), "police");
	json_object_put(o);
}

/* A spooled file's name: inbox number, agency and message id, unique
 * even when a store made anew numbers from 1 again. */
static void
spool_name(char *out, size_t outsz, uint64_t seq, const struct note *n)
{
	char hex[2 * EHX_MSGID_LEN + 1];

	snprintf(out, outsz, "%020llu.%s.%s.json", (unsigned long long)seq,
	    AGENCY, ehx_hex(hex, n->id, EHX_MSGID_LEN));
}

static void
test_spool(void **state)
{
	struct note n[2], many[EHX_MAX_FETCH];
	struct note *b[1], *mb[EHX_MAX_FETCH];
	const Ehx__Body *f;
	Ehx__InboxList l;
	char p[PATH_MAX + 64], name[256], want[256];
	int64_t t0 = ehx_now_ms();

	(void)state;
	note_make(&n[0], 1, false);
	note_make(&n[1], 2, false);
	make_spool();
	q_open();
	f = expect_fetch(t0, 0, NULL);
	b[0] = &n[0];
	send_batch(f, b, 1, false, 0);
	assert_int_equal(agent_recv(t0 + 1), 1);

	snprintf(p, sizeof(p), "%s/new", spool_dir);
	assert_int_equal(dir_count(p, name, sizeof(name)), 1);
	spool_name(want, sizeof(want), 1, &n[0]);
	assert_string_equal(name, want);
	snprintf(p, sizeof(p), "%s/new/%s", spool_dir, name);
	check_spooled(p, &n[0], 1);
	snprintf(p, sizeof(p), "%s/tmp", spool_dir);
	assert_int_equal(dir_count(p, NULL, 0), 0);
	snprintf(p, sizeof(p), "%s/cur", spool_dir);
	assert_int_equal(dir_count(p, NULL, 0), 0);
	inbox_op(EHX__INBOX_REQUEST__OP__OP_SHOW, 1, false, t0 + 1, &l, 0);
	assert_int_equal(l.items[0]->spooled_at, t0 + 1);
	queue_inbox_free(&l);

	/* The case system takes it (to cur/); the next goes in new/ alone,
	 * and nothing is spooled twice, ticking or after a restart. */
	{
		char from[PATH_MAX + 64], to[PATH_MAX + 64];

		snprintf(from, sizeof(from), "%s/new/%s", spool_dir, name);
		snprintf(to, sizeof(to), "%s/cur/%s", spool_dir, name);
		assert_int_equal(rename(from, to), 0);
	}
	f = expect_fetch(t0 + 2, 1, n[0].id);
	b[0] = &n[1];
	send_batch(f, b, 1, false, 0);
	assert_int_equal(agent_recv(t0 + 3), 1);
	tick(t0 + 4);
	q_reopen();
	tick(t0 + 5);
	snprintf(p, sizeof(p), "%s/new", spool_dir);
	assert_int_equal(dir_count(p, name, sizeof(name)), 1);
	spool_name(want, sizeof(want), 2, &n[1]);
	assert_string_equal(name, want);
	snprintf(p, sizeof(p), "%s/new/%s", spool_dir, name);
	check_spooled(p, &n[1], 2);
	snprintf(p, sizeof(p), "%s/tmp", spool_dir);
	assert_int_equal(dir_count(p, NULL, 0), 0);
	snprintf(p, sizeof(p), "%s/cur", spool_dir);
	assert_int_equal(dir_count(p, NULL, 0), 1);

	/* A full batch: every one spooled, each once. */
	f = expect_fetch(t0 + 6, 2, n[1].id);
	for (size_t i = 0; i < EHX_MAX_FETCH; i++) {
		note_make(&many[i], 3 + i, false);
		mb[i] = &many[i];
	}
	send_batch(f, mb, EHX_MAX_FETCH, false, 0);
	assert_int_equal(agent_recv(t0 + 7), 1);
	tick(t0 + 8);
	snprintf(p, sizeof(p), "%s/new", spool_dir);
	assert_int_equal(dir_count(p, NULL, 0), 1 + EHX_MAX_FETCH);
	for (size_t i = 0; i < EHX_MAX_FETCH; i++) {
		spool_name(want, sizeof(want), 3 + i, &many[i]);
		snprintf(p, sizeof(p), "%s/new/%s", spool_dir, want);
		check_spooled(p, &many[i], 3 + i);
	}
	snprintf(p, sizeof(p), "%s/tmp", spool_dir);
	assert_int_equal(dir_count(p, NULL, 0), 0);
	notes_free(n, 2);
	notes_free(many, EHX_MAX_FETCH);
}

/* ---- 9. the hook -------------------------------------------------------- */

/* Reap the hook once it has exited (real time, bounded; nothing timed). */
static void
wait_hook(int64_t now)
{
	for (int i = 0; i < 10000 && q.hook_pid > 0; i++) {
		queue_reap(&q, now);
		if (q.hook_pid > 0)
			usleep(1000);
	}
	assert_true(q.hook_pid <= 0);
}

static long
read_count(void)
{
	char p[PATH_MAX + 16], buf[32] = "";
	FILE *fp;

	snprintf(p, sizeof(p), "%s/count", tdir);
	if ((fp = fopen(p, "r")) == NULL)
		return 0;
	if (fgets(buf, sizeof(buf), fp) == NULL)
		buf[0] = '\0';
	fclose(fp);
	return strtol(buf, NULL, 10);
}

/* The file out holds exactly n JSON documents, one a line: notes[i] as
 * inbox item i + 1. */
static void
check_hook_out(struct note *const *notes, size_t n)
{
	char p[PATH_MAX + 16], buf[16384];
	FILE *fp;
	size_t len, off = 0, k = 0;

	snprintf(p, sizeof(p), "%s/out", tdir);
	assert_non_null(fp = fopen(p, "r"));
	len = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[len] = '\0';
	while (off < len) {
		json_tokener *tok;
		json_object *o, *v;

		while (off < len && buf[off] == '\n')
			off++;
		if (off == len)
			break;
		assert_true(k < n);
		assert_non_null(tok = json_tokener_new());
		assert_non_null(o = json_tokener_parse_ex(tok, buf + off,
		    (int)(len - off)));
		off += json_tokener_get_parse_end(tok);
		json_tokener_free(tok);
		assert_true(json_object_object_get_ex(o, "nhs_number", &v));
		assert_string_equal(json_object_get_string(v), notes[k]->nhs);
		assert_true(json_object_object_get_ex(o, "seq", &v));
		assert_int_equal(json_object_get_uint64(v), k + 1);
		assert_true(json_object_object_get_ex(o, "broker_seq", &v));
		assert_int_equal(json_object_get_uint64(v), notes[k]->seq);
		json_object_put(o);
		k++;
	}
	assert_int_equal(k, n);
}

/* A hook script in this test's directory: run number n (counted in
 * count) does `body`; succeeding runs append their input to out. */
static void
make_hook(const char *body)
{
	snprintf(hook_path, sizeof(hook_path), "%s/hook.sh", tdir);
	assert_int_equal(tu_writef(hook_path, 0700,
	    "#!/bin/sh\n"
	    "n=$(cat '%s/count' 2>/dev/null || echo 0)\n"
	    "n=$((n + 1))\n"
	    "echo \"$n\" > '%s/count'\n"
	    "echo \"$EHX_NOTIFICATION_SEQ $EHX_AGENCY\" >> '%s/env'\n"
	    "%s\n"
	    "cat >> '%s/out'\n", tdir, tdir, tdir, body, tdir), 0);
}

static void
hook_item(uint64_t seq, int64_t now, Ehx__InboxItem **out, Ehx__InboxList *l)
{
	inbox_op(EHX__INBOX_REQUEST__OP__OP_SHOW, seq, false, now, l, 0);
	assert_int_equal(l->n_items, 1);
	*out = l->items[0];
}

static void
test_hook_retries(void **state)
{
	struct note n1, n2;
	struct note *b[2] = { &n1, NULL };
	const Ehx__Body *f;
	Ehx__InboxList l;
	Ehx__InboxItem *it;
	Ehx__AgentStatus s;
	int64_t t0 = ehx_now_ms(), t;
	int rounds;

	(void)state;
	note_make(&n1, 1, false);
	note_make(&n2, 2, false);
	make_hook("if [ \"$n\" -le 2 ]; then cat >/dev/null; exit 1; fi");
	q_open();
	f = expect_fetch(t0, 0, NULL);
	assert_true(q.hook_pid <= 0);   /* nothing to hand over yet */
	send_batch(f, b, 1, false, 0);
	assert_int_equal(agent_recv(t0 + 1), 1);
	status(t0 + 1, &s);
	assert_int_equal(s.hook_pending, 1);
	assert_int_equal(s.oldest_hook_pending, t0 + 1);
	queue_status_free(&s);

	/* The first run fails … */
	t = t0 + 2;
	tick(t);
	assert_true(q.hook_pid > 0);
	wait_hook(t);
	assert_int_equal(read_count(), 1);
	assert_non_null(strstr(q.hook_error, "exited with status 1"));
	hook_item(1, t, &it, &l);
	assert_int_equal(it->hook_attempts, 1);
	assert_int_equal(it->hooked_at, 0);
	queue_inbox_free(&l);
	/* … and is not tried again before its backoff (500..1000 ms). */
	tick(t + 499);
	assert_true(q.hook_pid <= 0);

	/* Driven on until it is handed over. */
	for (rounds = 0; rounds < 10 && read_count() < 3; rounds++) {
		t += 2100;
		tick(t);
		wait_hook(t);
	}
	assert_int_equal(read_count(), 3);
	hook_item(1, t, &it, &l);
	assert_int_equal(it->hook_attempts, 3);
	assert_int_equal(it->hooked_at, t);
	queue_inbox_free(&l);
	assert_int_equal(q.hook_error[0], '\0');
	check_hook_out(b, 1);
	status(t, &s);
	assert_int_equal(s.hook_pending, 0);
	queue_status_free(&s);

	/* Handed over: not run again, ticking or after a restart. */
	tick(t + 5000);
	assert_true(q.hook_pid <= 0);
	q_reopen();
	f = expect_fetch(t + 10000, 1, n1.id);
	assert_true(q.hook_pid <= 0);
	assert_int_equal(read_count(), 3);
	check_hook_out(b, 1);

	/* The next one: its first run succeeds; in order after the first. */
	t += 10001;
	b[0] = &n2;
	send_batch(f, b, 1, false, 0);
	assert_int_equal(agent_recv(t), 1);
	tick(t);
	assert_true(q.hook_pid > 0);
	wait_hook(t);
	assert_int_equal(read_count(), 4);
	hook_item(2, t, &it, &l);
	assert_int_equal(it->hook_attempts, 1);
	assert_int_equal(it->hooked_at, t);
	queue_inbox_free(&l);
	b[0] = &n1, b[1] = &n2;
	check_hook_out(b, 2);
	/* Its environment named the notification and the agency. */
	{
		char p[PATH_MAX + 16], line[64];
		FILE *fp;
		int lines = 0;

		snprintf(p, sizeof(p), "%s/env", tdir);
		assert_non_null(fp = fopen(p, "r"));
		while (fgets(line, sizeof(line), fp) != NULL)
			assert_string_equal(line, ++lines <= 3 ?
			    "1 " AGENCY "\n" : "2 " AGENCY "\n");
		fclose(fp);
		assert_int_equal(lines, 4);
	}
	notes_free(&n1, 1);
	notes_free(&n2, 1);
}

/* A notification that arrives while a failed hook waits out its backoff
 * does not cut the wait short. */
static void
test_hook_backoff_kept(void **state)
{
	struct note n1, n2;
	struct note *b[1] = { &n1 };
	const Ehx__Body *f;
	int64_t t0 = ehx_now_ms(), t;

	(void)state;
	note_make(&n1, 1, false);
	note_make(&n2, 2, false);
	make_hook("cat >/dev/null; exit 1");
	q_open();
	f = expect_fetch(t0, 0, NULL);
	send_batch(f, b, 1, false, 0);
	assert_int_equal(agent_recv(t0 + 1), 1);
	t = t0 + 2;
	tick(t);
	assert_true(q.hook_pid > 0);
	wait_hook(t);
	assert_int_equal(read_count(), 1);
	/* 2 comes 10 ms later (pushed, then fetched): stored, and the
	 * hook waits. */
	send_push(&n2);
	assert_int_equal(agent_recv(t + 10), 1);
	f = expect_fetch(t + 10, 1, n1.id);
	b[0] = &n2;
	send_batch(f, b, 1, false, 0);
	assert_int_equal(agent_recv(t + 10), 1);
	{
		Ehx__InboxList l;

		inbox_op(EHX__INBOX_REQUEST__OP__OP_LIST, 0, true, t + 10, &l,
		    0);
		assert_int_equal(l.n_items, 2);
		queue_inbox_free(&l);
	}
	tick(t + 11);
	assert_true(q.hook_pid <= 0);
	tick(t + 499);
	assert_true(q.hook_pid <= 0);
	/* The backoff (500..1000 ms) over, it runs again, for 1. */
	tick(t + 1001);
	assert_true(q.hook_pid > 0);
	wait_hook(t + 1001);
	assert_int_equal(read_count(), 2);
	notes_free(&n1, 1);
	notes_free(&n2, 1);
}

static void
test_hook_timeout(void **state)
{
	struct note n1;
	struct note *b[1] = { &n1 };
	const Ehx__Body *f;
	Ehx__InboxList l;
	Ehx__InboxItem *it;
	int64_t t0 = ehx_now_ms(), t;

	(void)state;
	note_make(&n1, 1, false);
	/* The first run hangs (sleep in place of the shell). */
	make_hook("if [ \"$n\" -eq 1 ]; then exec sleep 60; fi");
	hook_timeout_ms = 1000;
	q_open();
	f = expect_fetch(t0, 0, NULL);
	send_batch(f, b, 1, false, 0);
	assert_int_equal(agent_recv(t0 + 1), 1);

	t = t0 + 2;
	tick(t);
	assert_true(q.hook_pid > 0);
	/* Let it count its run before it is judged (real time, bounded). */
	for (int i = 0; i < 10000 && read_count() < 1; i++)
		usleep(1000);
	assert_int_equal(read_count(), 1);
	/* Within its time: left running. */
	tick(t + 1000);
	queue_reap(&q, t + 1000);
	assert_true(q.hook_pid > 0);
	/* Over it: killed, and counted as a failed attempt. */
	tick(t + 1001);
	wait_hook(t + 1001);
	assert_non_null(strstr(q.hook_error, "killed by signal 9"));
	hook_item(1, t + 1001, &it, &l);
	assert_int_equal(it->hook_attempts, 1);
	assert_int_equal(it->hooked_at, 0);
	queue_inbox_free(&l);

	/* Tried again after its backoff: handed over. */
	t += 1001 + 1000;
	tick(t);
	assert_true(q.hook_pid > 0);
	wait_hook(t);
	assert_int_equal(read_count(), 2);
	hook_item(1, t, &it, &l);
	assert_int_equal(it->hook_attempts, 2);
	assert_int_equal(it->hooked_at, t);
	queue_inbox_free(&l);
	check_hook_out(b, 1);
	notes_free(&n1, 1);
}

/* The console's sign-in log: newest first, kept across a reopen, and a
 * ring of QUEUE_SIGNINS lines however many are written. */
struct signin_seen {
	uint64_t first, last;
	size_t n;
	char line[256];
};

static void
signin_seen(void *arg, uint64_t seq, const char *line, size_t len)
{
	struct signin_seen *s = arg;

	if (s->n++ == 0) {
		s->first = seq;
		snprintf(s->line, sizeof(s->line), "%.*s", (int)len, line);
	}
	s->last = seq;
}

static void
test_signin_log(void **state)
{
	struct signin_seen s;

	(void)state;
	q_open();
	assert_int_equal(queue_signin_put(&q, 1000, "failed-password", "io",
	    "127.0.0.1"), 0);
	assert_int_equal(queue_signin_put(&q, 2000, "signed-in", "io",
	    "127.0.0.1"), 0);
	queue_close(&q);
	q_open();
	memset(&s, 0, sizeof(s));
	assert_int_equal(queue_signin_list(&q, 10, signin_seen, &s), 0);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.first, 2);
	assert_string_equal(s.line, "2000\tsigned-in\tio\t127.0.0.1");
	for (int i = 0; i < QUEUE_SIGNINS + 50; i++)
		assert_int_equal(queue_signin_put(&q, 3000 + i, "failed-account",
		    "(not an account)", "10.0.0.1"), 0);
	memset(&s, 0, sizeof(s));
	assert_int_equal(queue_signin_list(&q, QUEUE_SIGNINS * 2, signin_seen,
	    &s), 0);
	assert_int_equal(s.n, QUEUE_SIGNINS);
	assert_int_equal(s.first, QUEUE_SIGNINS + 52);
	assert_int_equal(s.last, 53);
	memset(&s, 0, sizeof(s));
	assert_int_equal(queue_signin_list(&q, 3, signin_seen, &s), 0);
	assert_int_equal(s.n, 3);
	queue_close(&q);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_put_reopen),
		T(test_window_in_order),
		T(test_answers),
		T(test_resend_no_answer),
		T(test_connection_drop),
		T(test_outbox_bound),
		T(test_out_of_order),
		T(test_out_of_order_burst),
		T(test_inbox_intake),
		T(test_inbox_unreadable),
		T(test_inbox_new_store),
		T(test_inbox_ops),
		T(test_spool),
		T(test_hook_retries),
		T(test_hook_backoff_kept),
		T(test_hook_timeout),
		T(test_signin_log),
	};

	return cmocka_run_group_tests_name("test_queue", tests, group_setup,
	    group_teardown);
}
