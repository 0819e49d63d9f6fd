/*
 * queue.c — the agent's durable outbox and inbox; see queue.h.
 *
 * One LMDB environment in data_dir, fsync at every commit:
 *
 *   outbox  number (8, BE) → OutboxEntry (the Body to sign when sent)
 *   done    number (8, BE) → DoneEntry (the broker's reply), kept 7 days
 *   inbox   number (8, BE) → InboxItem (the broker-signed notification)
 *   inbox_ids  message id  → inbox number (a notification is stored once)
 *   meta    "stream", "stream_base", "next_num", "delivered", "refused",
 *           "inbox_last" (the last inbox number), "broker_seq" and
 *           "broker_seq_id" (the broker's seq and message id of the last
 *           notification taken: what the next fetch acknowledges)
 *
 * Inbox numbers are the agent's own: the broker's seq for this agency runs
 * 1, 2, 3 … too, but a broker restored from a backup numbers again from
 * where its backup stood, and an agent whose store was lost starts again at
 * whatever the broker still holds. The agent names the last notification it
 * took by seq and message id; a broker that does not know it by that id
 * drops nothing and sends its queue from the start (restart), and the
 * message-id index keeps what the agent already has from being stored twice.
 *
 * A request is signed when it is sent, not when it is queued: it carries
 * the send time the broker's clock window checks, so an outbox can wait
 * out a long outage. Its message id and its stream number stay the same
 * through every attempt; that is what makes a resend harmless.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/json.h>
#include <zmq.h>

#include "notice.h"
#include "ehx/err.h"
#include "ehx/identity.h"
#include "ehx/log.h"
#include "ehx/names.h"
#include "ehx/nhs.h"
#include "ehx/util.h"
#include "ehx/validate.h"
#include "ehx/wire.h"
#include "queue.h"

/* notice.c: the JSON a hook and the spool receive. */
json_object *notice_json(const Ehx__InboxItem *it);

#define DONE_KEEP_MS (7LL * 86400 * 1000)
#define PRUNE_MAX 256
#define NOT_CONNECTED_RETRY_MS 200
#define GOBACK_GAP_MS 500
#define FETCH_WAIT_MS 10000
#define HOOK_RETRY_MAX_MS (300LL * 1000)
#define MAX_REFUSALS 100
#define MAP_SIZE (1024ULL * 1024 * 1024)
#define SPOOL_RETRY_MS 5000
#define CRED_RETRY_MS (60LL * 1000)

static void
be64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (unsigned char)v;
		v >>= 8;
	}
}

static uint64_t
get64(const void *p)
{
	const unsigned char *c = p;
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | c[i];
	return v;
}

static int
mdberr(int rc)
{
	if (rc == 0)
		return 0;
	if (rc == MDB_NOTFOUND)
		return EHX_ERR_NOT_FOUND;
	if (rc == MDB_MAP_FULL || rc == MDB_TXN_FULL)
		return EHX_ERR_STORAGE_FULL;
	return EHX_ERR_STORAGE;
}

static int
meta_get(struct queue *q, MDB_txn *txn, const char *name, uint64_t *v)
{
	MDB_val k = { strlen(name), (void *)name }, d;
	int rc;

	*v = 0;
	if ((rc = mdb_get(txn, q->meta, &k, &d)) == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return mdberr(rc);
	if (d.mv_size != 8)
		return EHX_ERR_STORAGE;
	*v = get64(d.mv_data);
	return 0;
}

static int
meta_put(struct queue *q, MDB_txn *txn, const char *name, uint64_t v)
{
	unsigned char b[8];
	MDB_val k = { strlen(name), (void *)name }, d = { 8, b };

	be64(b, v);
	return mdberr(mdb_put(txn, q->meta, &k, &d, 0));
}

/* Pack msg under key (8-byte number) in dbi. */
static int
put_msg(MDB_txn *txn, MDB_dbi dbi, uint64_t num, const ProtobufCMessage *m)
{
	unsigned char kb[8];
	MDB_val k = { 8, kb }, d;
	int rc;

	be64(kb, num);
	d.mv_size = protobuf_c_message_get_packed_size(m);
	if ((rc = mdb_put(txn, dbi, &k, &d, MDB_RESERVE)) != 0)
		return mdberr(rc);
	protobuf_c_message_pack(m, d.mv_data);
	return 0;
}

static int
get_raw(MDB_txn *txn, MDB_dbi dbi, uint64_t num, MDB_val *d)
{
	unsigned char kb[8];
	MDB_val k = { 8, kb };

	be64(kb, num);
	return mdberr(mdb_get(txn, dbi, &k, d));
}

/* The first key of dbi (0: empty). */
static uint64_t
first_key(MDB_txn *txn, MDB_dbi dbi)
{
	MDB_cursor *c;
	MDB_val k, d;
	uint64_t v = 0;

	if (mdb_cursor_open(txn, dbi, &c) != 0)
		return 0;
	if (mdb_cursor_get(c, &k, &d, MDB_FIRST) == 0 && k.mv_size == 8)
		v = get64(k.mv_data);
	mdb_cursor_close(c);
	return v;
}

/*
 * Start a new outbox stream in txn whose number 1 is outbox number base + 1.
 * The queue takes it up only once txn has committed (new_stream_commit):
 * until then it goes on with the stream its store names.
 */
static int
new_stream(struct queue *q, MDB_txn *txn, uint64_t base,
    unsigned char stream[EHX_STREAM_LEN])
{
	MDB_val k = { 6, (void *)"stream" }, d = { EHX_STREAM_LEN, stream };

	if (ehx_random(stream, EHX_STREAM_LEN) != 0 ||
	    mdb_put(txn, q->meta, &k, &d, 0) != 0 ||
	    meta_put(q, txn, "stream_base", base) != 0) {
		log_error("could not start a new outbox stream");
		return -1;
	}
	return 0;
}

static int
new_stream_commit(struct queue *q, MDB_txn *txn, uint64_t base)
{
	unsigned char stream[EHX_STREAM_LEN];

	if (new_stream(q, txn, base, stream) != 0) {
		mdb_txn_abort(txn);
		return -1;
	}
	if (mdb_txn_commit(txn) != 0) {
		log_error("the new outbox stream could not be stored; the old "
		    "one goes on");
		return -1;
	}
	memcpy(q->stream, stream, EHX_STREAM_LEN);
	q->stream_base = base;
	q->fresh_stream = true;
	return 0;
}

int
queue_open(struct queue *q, const char *dir, char *err, size_t errsz)
{
	static const struct {
		const char *name;
		size_t off;
	} dbs[] = {
		{ "outbox", offsetof(struct queue, outbox) },
		{ "done", offsetof(struct queue, done) },
		{ "inbox", offsetof(struct queue, inbox) },
		{ "meta", offsetof(struct queue, meta) },
		{ "inbox_ids", offsetof(struct queue, inbox_ids) },
		{ "signins", offsetof(struct queue, signins) },
	};
	MDB_txn *txn = NULL;
	MDB_val k = { 6, (void *)"stream" }, d;
	uint64_t first;
	int rc;

	q->hook_pid = -1;
	q->lock_fd = -1;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errsz, "%s: %s", dir, strerror(errno));
		return EHX_ERR_STORAGE;
	}
	/* One agent per store: two would both deliver the outbox. */
	{
		char lock[1100];

		snprintf(lock, sizeof(lock), "%s/agent.lock", dir);
		if ((q->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC,
		    0600)) < 0 || flock(q->lock_fd, LOCK_EX | LOCK_NB) != 0) {
			snprintf(err, errsz, "%s: %s", dir, errno ==
			    EWOULDBLOCK ? "another ehx-agent is using this "
			    "data_dir" : strerror(errno));
			if (q->lock_fd >= 0)
				close(q->lock_fd);
			q->lock_fd = -1;
			return EHX_ERR_STORAGE;
		}
	}
	if ((rc = mdb_env_create(&q->env)) != 0 ||
	    (rc = mdb_env_set_maxdbs(q->env, 8)) != 0 ||
	    (rc = mdb_env_set_mapsize(q->env, MAP_SIZE)) != 0 ||
	    (rc = mdb_env_open(q->env, dir, MDB_NOTLS, 0600)) != 0 ||
	    (rc = mdb_txn_begin(q->env, NULL, 0, &txn)) != 0)
		goto fail;
	for (size_t i = 0; i < sizeof(dbs) / sizeof(dbs[0]); i++)
		if ((rc = mdb_dbi_open(txn, dbs[i].name, MDB_CREATE,
		    (MDB_dbi *)((char *)q + dbs[i].off))) != 0)
			goto fail;
	if ((rc = mdb_get(txn, q->meta, &k, &d)) == 0 &&
	    d.mv_size == EHX_STREAM_LEN) {
		memcpy(q->stream, d.mv_data, EHX_STREAM_LEN);
		if (meta_get(q, txn, "stream_base", &q->stream_base) != 0)
			goto bad;
	} else if (new_stream(q, txn, 0, q->stream) != 0)
		goto bad;
	if (meta_get(q, txn, "next_num", &q->next_num) != 0 ||
	    meta_get(q, txn, "delivered", &q->delivered) != 0 ||
	    meta_get(q, txn, "refused", &q->refused) != 0 ||
	    meta_get(q, txn, "inbox_last", &q->inbox_last) != 0 ||
	    meta_get(q, txn, "broker_seq", &q->broker_seq) != 0)
		goto bad;
	k = (MDB_val){ 13, (void *)"broker_seq_id" };
	if ((rc = mdb_get(txn, q->meta, &k, &d)) == 0 &&
	    d.mv_size == EHX_MSGID_LEN)
		memcpy(q->broker_seq_id, d.mv_data, EHX_MSGID_LEN);
	else if (rc == 0 || q->broker_seq != 0)
		goto bad;
	if (q->next_num == 0)
		q->next_num = 1;
	first = first_key(txn, q->outbox);
	q->next_send = first != 0 ? first : q->next_num;
	if ((rc = mdb_txn_commit(txn)) != 0) {
		txn = NULL;
		goto fail;
	}
	q->hook_seq = 1;
	if (q->spool != NULL)
		q->spool_next = 1;      /* what a crash left: at the first tick */
	return 0;
bad:
	rc = MDB_CORRUPTED;
fail:
	snprintf(err, errsz, "%s: the agent's store: %s", dir, mdb_strerror(rc));
	if (txn != NULL)
		mdb_txn_abort(txn);
	if (q->env != NULL)
		mdb_env_close(q->env);
	q->env = NULL;
	return EHX_ERR_STORAGE;
}

void
queue_close(struct queue *q)
{
	for (size_t i = 0; i < q->ndec; i++) {
		ehx_body_free(q->dec[i].reply);
		free(q->dec[i].env);
	}
	free(q->dec);
	q->dec = NULL;
	q->ndec = 0;
	if (q->env != NULL)
		mdb_env_close(q->env);
	q->env = NULL;
	if (q->lock_fd >= 0)
		close(q->lock_fd);
	q->lock_fd = -1;
}

/* ---- the outbox --------------------------------------------------------- */

int
queue_put(struct queue *q, Ehx__Body **bodies, size_t n,
    unsigned char (*ids)[EHX_MSGID_LEN], uint64_t *first, int64_t now)
{
	MDB_txn *txn;
	MDB_stat st;
	uint64_t num = q->next_num, max = q->outbox_max != 0 ? q->outbox_max :
	    QUEUE_OUTBOX_MAX;
	int rc, r = 0;

	if ((rc = mdb_txn_begin(q->env, NULL, 0, &txn)) != 0)
		return mdberr(rc);
	/* Bounded: a broker gone for months must not fill the disk. */
	if ((rc = mdb_stat(txn, q->outbox, &st)) != 0 ||
	    st.ms_entries + n > max) {
		mdb_txn_abort(txn);
		return rc != 0 ? mdberr(rc) : EHX_ERR_STORAGE_FULL;
	}
	for (size_t i = 0; i < n && r == 0; i++) {
		Ehx__OutboxEntry e = EHX__OUTBOX_ENTRY__INIT;

		if (ehx_message_id(ids[i]) != 0) {
			r = EHX_ERR_INTERNAL;
			break;
		}
		bodies[i]->message_id.data = ids[i];
		bodies[i]->message_id.len = EHX_MSGID_LEN;
		e.body = bodies[i];
		e.queued_at = now;
		r = put_msg(txn, q->outbox, num + i, &e.base);
	}
	if (r == 0)
		r = meta_put(q, txn, "next_num", num + n);
	if (r != 0) {
		mdb_txn_abort(txn);
		return r;
	}
	if ((rc = mdb_txn_commit(txn)) != 0)
		return mdberr(rc);
	q->next_num = num + n;
	*first = num;
	return 0;
}

bool
queue_pending(struct queue *q, uint64_t num)
{
	MDB_txn *txn;
	MDB_val d;
	bool r;

	if (mdb_txn_begin(q->env, NULL, MDB_RDONLY, &txn) != 0)
		return true;
	r = get_raw(txn, q->outbox, num, &d) == 0;
	mdb_txn_abort(txn);
	return r;
}

int
queue_done_get(struct queue *q, uint64_t num, Ehx__DoneEntry **out)
{
	MDB_txn *txn;
	MDB_val d;
	int r;

	*out = NULL;
	if (mdb_txn_begin(q->env, NULL, MDB_RDONLY, &txn) != 0)
		return EHX_ERR_STORAGE;
	if ((r = get_raw(txn, q->done, num, &d)) == 0 &&
	    (*out = ehx__done_entry__unpack(NULL, d.mv_size, d.mv_data)) ==
	    NULL)
		r = EHX_ERR_STORAGE;
	mdb_txn_abort(txn);
	return r;
}

static const char *
sender_person_name(void)
{
	return "ehx-agent";
}

/* Sign and send one of the agency's own requests (a fetch). */
static int
send_own(struct queue *q, void *dealer, Ehx__Body *body, unsigned char *id,
    int64_t now)
{
	static Ehx__Person self = EHX__PERSON__INIT;
	unsigned char *env = NULL;
	size_t len;
	int r;

	self.user_id = (char *)sender_person_name();
	self.name = (char *)"EHX agent";
	self.role = EHX__ROLE__ROLE_SYSTEM;
	if (ehx_message_id(id) != 0)
		return EHX_ERR_INTERNAL;
	body->message_id.data = id;
	body->message_id.len = EHX_MSGID_LEN;
	body->sender = (char *)q->agency;
	body->recipient = (char *)q->broker_id;
	body->sent_at = now;
	body->person = &self;
	if ((r = ehx_envelope_seal(q->signer, body, &env, &len)) != 0)
		return r;
	r = zmq_send(dealer, env, len, ZMQ_DONTWAIT) < 0 ? EHX_ERR_UNAVAILABLE : 0;
	free(env);
	return r;
}

/* Sign outbox entry num afresh and send it. */
static int
send_entry(struct queue *q, void *dealer, struct flight *f, int64_t now)
{
	Ehx__OutboxEntry *e = NULL;
	Ehx__Sequence sq = EHX__SEQUENCE__INIT;
	MDB_txn *txn;
	MDB_val d;
	unsigned char *env = NULL;
	size_t len;
	int r;

	if (mdb_txn_begin(q->env, NULL, MDB_RDONLY, &txn) != 0)
		return EHX_ERR_STORAGE;
	if ((r = get_raw(txn, q->outbox, f->num, &d)) == 0 &&
	    ((e = ehx__outbox_entry__unpack(NULL, d.mv_size, d.mv_data)) ==
	    NULL || e->body == NULL || e->body->message_id.len !=
	    EHX_MSGID_LEN))
		r = EHX_ERR_STORAGE;
	mdb_txn_abort(txn);
	if (r != 0)
		goto out;
	memcpy(f->id, e->body->message_id.data, EHX_MSGID_LEN);
	sq.stream.data = q->stream;
	sq.stream.len = EHX_STREAM_LEN;
	sq.number = f->num - q->stream_base;
	{
		/* Borrowed for the signing; the unpacked ones are put back
		 * to be freed with the message. */
		char *sender = e->body->sender, *recipient = e->body->recipient;
		Ehx__Sequence *was = e->body->sequence;

		e->body->sender = (char *)q->agency;
		e->body->recipient = (char *)q->broker_id;
		e->body->sent_at = now;
		e->body->sequence = &sq;
		r = ehx_envelope_seal(q->signer, e->body, &env, &len);
		e->body->sequence = was;
		e->body->sender = sender;
		e->body->recipient = recipient;
	}
	if (r != 0)
		goto out;
	if (zmq_send(dealer, env, len, ZMQ_DONTWAIT) < 0) {
		r = EHX_ERR_UNAVAILABLE;
		goto out;
	}
	f->sent = now;
	f->resend = false;
out:
	free(env);
	if (e != NULL)
		ehx__outbox_entry__free_unpacked(e, NULL);
	return r;
}

static int64_t
jitter(int64_t delay)
{
	unsigned char rnd[4];
	uint32_t v;

	if (delay < 2 || ehx_random(rnd, sizeof(rnd)) != 0)
		return delay;
	v = (uint32_t)rnd[0] << 24 | (uint32_t)rnd[1] << 16 |
	    (uint32_t)rnd[2] << 8 | rnd[3];
	return delay / 2 + (int64_t)(v % (uint32_t)(delay / 2 + 1));
}

/* Send everything in flight again from the oldest, after a backoff. */
static void
goback(struct queue *q, int64_t now, bool backoff)
{
	for (size_t i = 0; i < q->nwin; i++)
		q->win[i].resend = true;
	q->last_goback = now;
	if (backoff) {
		int64_t d = 250LL << (q->backoff_step < 10 ? q->backoff_step : 10);

		if (d > q->retry_max_ms)
			d = q->retry_max_ms;
		q->backoff_step++;
		q->backoff_until = now + jitter(d);
	}
}

static void
send_fetch(struct queue *q, void *dealer, int64_t now)
{
	Ehx__Body body = EHX__BODY__INIT;
	Ehx__FetchNotifications f = EHX__FETCH_NOTIFICATIONS__INIT;

	f.after = q->broker_seq;
	if (f.after != 0) {
		f.after_id.data = q->broker_seq_id;
		f.after_id.len = EHX_MSGID_LEN;
	}
	f.limit = EHX_MAX_FETCH;
	body.payload_case = EHX__BODY__PAYLOAD_FETCH_NOTIFICATIONS;
	body.fetch_notifications = &f;
	if (send_own(q, dealer, &body, q->fetch_id, now) != 0) {
		q->next_fetch = now + NOT_CONNECTED_RETRY_MS;
		return;
	}
	q->fetch_busy = true;
	q->fetch_again = false;
	q->fetch_deadline = now + FETCH_WAIT_MS;
	q->next_fetch = now + q->poll_ms;
}

static void hook_tick(struct queue *q, int64_t now, int64_t *next);
static void spool_pending(struct queue *q, int64_t now);

void
queue_connection(struct queue *q, bool up, int64_t now)
{
	if (up) {
		if (q->key_refused)     /* it is registered now */
			q->last_error[0] = '\0';
		q->key_refused = false;
		q->fetch_busy = false;
		q->fetch_again = true;
		q->backoff_until = 0;
		return;
	}
	if (!q->key_refused)    /* that says more */
		snprintf(q->last_error, sizeof(q->last_error), "the "
		    "connection to the broker dropped");
	goback(q, now, false);
}

bool
queue_key_refused(struct queue *q, int status)
{
	bool first = !q->key_refused;

	q->key_refused = true;
	snprintf(q->last_error, sizeof(q->last_error), "the broker refused "
	    "this agency's CURVE key at the handshake (ZAP status %d): the "
	    "partnership has not registered its curve.pub, or has removed it",
	    status);
	return first;
}

void
queue_tick(struct queue *q, void *dealer, int64_t now, int64_t *next)
{
	if (q->nwin > 0 && !q->win[0].resend &&
	    now - q->win[0].sent >= q->resend_ms) {
		snprintf(q->last_error, sizeof(q->last_error), "no answer from "
		    "the broker within %lld s; sending again",
		    (long long)(q->resend_ms / 1000));
		goback(q, now, true);
	}
	if (now < q->backoff_until) {
		if (q->backoff_until < *next)
			*next = q->backoff_until;
	} else {
		/* While the broker refuses our credentials, one request at a
		 * time: each refusal is audited at the broker. */
		size_t lim = q->cred_hold ? 1 : QUEUE_WINDOW;
		bool blocked = false;

		for (size_t i = 0; i < q->nwin && i < lim && !blocked; i++)
			if (q->win[i].resend && send_entry(q, dealer, &q->win[i],
			    now) != 0)
				blocked = true;
		while (!blocked && q->nwin < lim &&
		    q->next_send < q->next_num) {
			struct flight *f = &q->win[q->nwin];

			memset(f, 0, sizeof(*f));
			f->num = q->next_send;
			if (!queue_pending(q, f->num)) {
				q->next_send++;         /* decided already */
				continue;
			}
			q->nwin++;
			q->next_send++;
			if (send_entry(q, dealer, f, now) != 0) {
				f->resend = true;
				blocked = true;
			}
		}
		if (blocked) {
			if (!q->key_refused)
				snprintf(q->last_error, sizeof(q->last_error),
				    "the broker cannot be reached");
			q->backoff_until = now + NOT_CONNECTED_RETRY_MS;
			if (q->backoff_until < *next)
				*next = q->backoff_until;
		}
	}
	if (q->nwin > 0 && !q->win[0].resend &&
	    q->win[0].sent + q->resend_ms < *next)
		*next = q->win[0].sent + q->resend_ms;

	if (q->fetch_busy && now >= q->fetch_deadline) {
		q->fetch_busy = false;
		q->next_fetch = now + 1000;
	}
	if (!q->fetch_busy && (q->fetch_again || now >= q->next_fetch))
		send_fetch(q, dealer, now);
	if (q->fetch_busy && q->fetch_deadline < *next)
		*next = q->fetch_deadline;
	else if (!q->fetch_busy && q->next_fetch < *next)
		*next = q->next_fetch;
	if (q->spool_next != 0 && now >= q->spool_next)
		spool_pending(q, now);
	if (q->spool_next != 0 && q->spool_next < *next)
		*next = q->spool_next;
	hook_tick(q, now, next);
}

static struct flight *
in_flight(struct queue *q, const unsigned char *id)
{
	for (size_t i = 0; i < q->nwin; i++)
		if (memcmp(q->win[i].id, id, EHX_MSGID_LEN) == 0 &&
		    q->win[i].sent != 0)
			return &q->win[i];
	return NULL;
}

static bool
retriable(int code)
{
	switch (code) {
	/* About this agent, not the entry: its key, certificate or
	 * configuration. Every entry would be refused alike; hold them
	 * until an operator fixes it (credential() raises the alarm). */
	case EHX_ERR_BAD_SIGNATURE:
	case EHX_ERR_UNKNOWN_CERTIFICATE:
	case EHX_ERR_CERTIFICATE_NOT_YET_VALID:
	case EHX_ERR_CERTIFICATE_EXPIRED:
	case EHX_ERR_REVOKED_CERTIFICATE:
	case EHX_ERR_WRONG_SENDER:
	case EHX_ERR_WRONG_RECIPIENT:
	case EHX_ERR_BAD_VERSION:
	case EHX_ERR_UNAVAILABLE:
	case EHX_ERR_INTERNAL:
	case EHX_ERR_STORAGE_FULL:
	case EHX_ERR_RATE_LIMITED:
	case EHX_ERR_TIMEOUT:
	case EHX_ERR_STALE:
		return true;
	default:
		return false;
	}
}

/* A refusal about this agent's own key, certificate or set-up. */
static bool
credential(int code)
{
	return code >= EHX_ERR_WRONG_RECIPIENT || code == EHX_ERR_BAD_VERSION;
}

static int
decide(struct queue *q, struct flight *f, Ehx__Body **b, unsigned char **env,
    size_t *envlen, bool refused)
{
	struct decided *d;

	for (size_t i = 0; i < q->ndec; i++)
		if (q->dec[i].num == f->num)
			return 0;       /* a second answer to the same */
	if (q->ndec == q->dec_cap) {
		size_t cap = q->dec_cap ? 2 * q->dec_cap : 64;
		struct decided *n = realloc(q->dec, cap * sizeof(*n));

		if (n == NULL)
			return EHX_ERR_NOMEM;
		q->dec = n;
		q->dec_cap = cap;
	}
	d = &q->dec[q->ndec++];
	d->num = f->num;
	memcpy(d->id, f->id, EHX_MSGID_LEN);
	d->reply = *b;
	d->env = *env;
	d->envlen = *envlen;
	d->refused = refused;
	d->unchanged = !refused && (*b)->ack != NULL && (*b)->ack->unchanged;
	*b = NULL;
	*env = NULL;
	return 0;
}

/* ---- the inbox ---------------------------------------------------------- */

static bool
text_ok(const char *s, size_t max)
{
	return s != NULL && (s[0] == '\0' || ehx_text_ok(s, 0, max));
}

/* What a notification must be, whoever signed it. */
static bool
notification_ok(const Ehx__Notification *n)
{
	const Ehx__Practitioner *p = n->contact;
	char why[8];

	/* the child: by NHS number, or as this agency named them, or both */
	if (n->child != NULL && ehx_validate_identity(n->child, ehx_now_ms(),
	    why, sizeof(why)) != 0)
		return false;
	return n->seq >= 1 && n->seq <= EHX_MAX_SEQ &&
	    (ehx_nhs_valid(n->nhs_number) || (n->nhs_number[0] == '\0' &&
	    n->child != NULL)) && ehx_id_ok(n->agency) &&
	    ehx_category_name(n->category) != NULL && n->category != 0 &&
	    n->level <= 4 && n->previous_level <= 4 &&
	    (p == NULL || (text_ok(p->name, EHX_MAX_NAME) &&
	    text_ok(p->role, EHX_MAX_JOB) &&
	    text_ok(p->contact, EHX_MAX_CONTACT))) &&
	    text_ok(n->consent_id, 32) && text_ok(n->agreement, EHX_MAX_ID);
}

/* Where an intake has got to. */
struct intake_state {
	uint64_t seq;                   /* the broker's seq taken last */
	unsigned char id[EHX_MSGID_LEN];        /* and its message id */
	uint64_t last;                  /* the inbox number stored last */
	size_t dups;                    /* taken, but held already */
	size_t unreadable;              /* taken, but not well formed */
	bool any, gap;
};

/*
 * Take the notification in b if it follows the last one taken: its seq is
 * the next, or, when "any" (the first of a fetched batch after a restart
 * or with nothing taken yet), whatever the broker holds first. One the
 * inbox holds already (by message id) is taken without being stored again.
 * Sets *gap when one is missing before it.
 */
static int
intake(struct queue *q, MDB_txn *txn, const Ehx__Body *b, bool unread,
    const unsigned char *env, size_t envlen, struct intake_state *st,
    int64_t now)
{
	const Ehx__Notification *n = b->notification;
	Ehx__InboxItem it = EHX__INBOX_ITEM__INIT;
	MDB_val k, v;
	unsigned char be[8];
	char hex[2 * EHX_MSGID_LEN + 1];
	int rc, r;

	if (n == NULL || n->seq < 1 || n->seq > EHX_MAX_SEQ ||
	    b->message_id.len != EHX_MSGID_LEN) {
		/* Not even where it stands: nothing after it is taken. */
		log_error("a notification from the broker has no valid seq or "
		    "message id: the inbox waits here");
		st->gap = true;
		return 0;
	}
	if (!st->any && n->seq <= st->seq)
		return 0;               /* had it */
	if (!st->any && n->seq != st->seq + 1) {
		st->gap = true;
		return 0;
	}
	if (st->any && st->seq != 0 && n->seq != 1)
		log_warn("the broker's notification queue now starts at %llu "
		    "(this inbox had taken %llu)", (unsigned long long)n->seq,
		    (unsigned long long)st->seq);
	else if (st->any && n->seq > 1 && q->inbox_last == 0)
		log_warn("notifications 1..%llu were acknowledged before this "
		    "store was made: they are not in this inbox",
		    (unsigned long long)n->seq - 1);
	st->any = false;
	st->seq = n->seq;
	memcpy(st->id, b->message_id.data, EHX_MSGID_LEN);
	if (unread || !notification_ok(n)) {
		/* Signed by the broker, in turn, but not what this agent
		 * can hand on (a newer broker's category, say). Taken in
		 * turn so that the rest is not held up, and told loudly:
		 * the broker's audit has it as a "notify" record. */
		log_error("notification %llu from the broker (message %s) is "
		    "not one this agent can read and is not in the inbox: "
		    "look for it in the broker's audit; is this agent older "
		    "than the broker?", (unsigned long long)n->seq,
		    ehx_hex(hex, b->message_id.data, EHX_MSGID_LEN));
		st->unreadable++;
		return 0;
	}
	k = (MDB_val){ EHX_MSGID_LEN, b->message_id.data };
	if ((rc = mdb_get(txn, q->inbox_ids, &k, &v)) == 0) {
		st->dups++;
		return 0;               /* stored before, under another seq */
	}
	if (rc != MDB_NOTFOUND)
		return EHX_ERR_STORAGE;
	it.seq = st->last + 1;
	it.received_at = now;
	it.notification = (Ehx__Notification *)n;
	it.envelope.data = (uint8_t *)env;
	it.envelope.len = envlen;
	if ((r = put_msg(txn, q->inbox, it.seq, &it.base)) != 0)
		return r;
	be64(be, it.seq);
	v = (MDB_val){ 8, be };
	if (mdb_put(txn, q->inbox_ids, &k, &v, 0) != 0)
		return EHX_ERR_STORAGE;
	st->last = it.seq;
	return 0;
}

/* Write a stored item into the spool: tmp/NAME, fsync, rename to new/. */
static int
spool_one(struct queue *q, const Ehx__InboxItem *it)
{
	char tmp[1200], dst[1200], name[EHX_MAX_ID + 64];
	json_object *o;
	const char *s, *id;
	int fd, r = -1;

	if ((o = notice_json(it)) == NULL)
		return -1;
	/* Unique for good: a store made anew numbers from 1 again, and what
	 * the case system has not yet taken from new/ must not be replaced. */
	id = json_object_get_string(json_object_object_get(o, "message_id"));
	snprintf(name, sizeof(name), "%020llu.%s.%.32s.json",
	    (unsigned long long)it->seq, q->agency, id != NULL ? id : "");
	snprintf(tmp, sizeof(tmp), "%s/tmp/%s", q->spool, name);
	snprintf(dst, sizeof(dst), "%s/new/%s", q->spool, name);
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	/* A fresh file of our own: never through a link someone left. */
	if (unlink(tmp) != 0 && errno != ENOENT)
		log_warn("spool %s: %s", tmp, strerror(errno));
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, q->spool_mode != 0 ? q->spool_mode : 0600)) >= 0) {
		if (q->spool_mode != 0 && fchmod(fd, q->spool_mode) != 0)
			log_warn("spool %s: %s", tmp, strerror(errno));
		size_t n = strlen(s), off = 0;

		while (off < n) {
			ssize_t w = write(fd, s + off, n - off);

			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				break;
			off += (size_t)w;
		}
		if (off == n && write(fd, "\n", 1) == 1 && fsync(fd) == 0)
			r = 0;
		close(fd);
	}
	if (r == 0 && rename(tmp, dst) != 0)
		r = -1;
	if (r == 0) {
		char dir[1100];

		snprintf(dir, sizeof(dir), "%s/new", q->spool);
		if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
			fsync(fd);
			close(fd);
		}
	} else {
		log_error("spool %s: %s", tmp, strerror(errno));
		unlink(tmp);
	}
	json_object_put(o);
	return r;
}

/*
 * Spool every stored item not spooled yet: after each intake, at start
 * (what a crash left), and every SPOOL_RETRY_MS while one will not go.
 */
static void
spool_pending(struct queue *q, int64_t now)
{
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k, d;
	bool failed = false;
	int rc;

	q->spool_next = 0;
	if (q->spool == NULL)
		return;
	if (mdb_txn_begin(q->env, NULL, 0, &txn) != 0) {
		q->spool_next = now + SPOOL_RETRY_MS;
		return;
	}
	if (mdb_cursor_open(txn, q->inbox, &c) != 0) {
		mdb_txn_abort(txn);
		q->spool_next = now + SPOOL_RETRY_MS;
		return;
	}
	for (rc = mdb_cursor_get(c, &k, &d, MDB_FIRST); rc == 0 && !failed;
	    rc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
		Ehx__InboxItem *it = ehx__inbox_item__unpack(NULL, d.mv_size,
		    d.mv_data);

		if (it == NULL)
			continue;
		if (it->spooled_at == 0) {
			if (spool_one(q, it) == 0) {
				it->spooled_at = now;
				put_msg(txn, q->inbox, it->seq, &it->base);
			} else
				failed = true;  /* in order: try again later */
		}
		ehx__inbox_item__free_unpacked(it, NULL);
	}
	mdb_cursor_close(c);
	if (mdb_txn_commit(txn) != 0)
		log_error("the spool marks could not be stored");
	if (failed)
		q->spool_next = now + SPOOL_RETRY_MS;
}

/*
 * A notification signed by the broker whose body this version does not
 * fully understand (a field a newer broker added): read only what it needs
 * to be taken in turn — the sender, the recipient, the message id and the
 * seq. NULL if even that is not there.
 */
static Ehx__Body *
open_lenient(struct queue *q, const Ehx__Envelope *env)
{
	Ehx__Body *b;

	if ((b = ehx__body__unpack(NULL, env->body.len,
	    env->body.data)) == NULL)
		return NULL;
	if (b->sender == NULL || b->recipient == NULL ||
	    strcmp(b->sender, q->broker_id) != 0 ||
	    strcmp(b->recipient, q->agency) != 0 ||
	    b->message_id.len != EHX_MSGID_LEN ||
	    b->payload_case != EHX__BODY__PAYLOAD_NOTIFICATION ||
	    b->notification == NULL) {
		ehx_body_free(b);
		return NULL;
	}
	return b;
}

/*
 * Open an envelope from the broker: signed by the broker's certificate,
 * from the broker's id, to this agency. 0 and *out, or -1 (logged). With
 * lenient, a signed notification whose body does not decode strictly is
 * read by open_lenient: 1 and *out.
 */
static int
open_signed(struct queue *q, const void *data, size_t len, bool lenient,
    Ehx__Envelope **envp, Ehx__Body **out)
{
	Ehx__Envelope *env = NULL;
	Ehx__Body *b = NULL;
	char why[128];
	int r;

	*out = NULL;
	if ((r = ehx_envelope_decode(data, len, &env)) != 0) {
		log_warn("reply dropped: %s", ehx_strerror(r));
		return -1;
	}
	if (!ehx_ct_eq(env->signer.data, ehx_cert_fpr(q->broker_cert),
	    EHX_FPR_LEN)) {
		log_warn("reply dropped: not signed by the broker's certificate");
		goto bad;
	}
	if (ehx_envelope_verify(env, ehx_cert_pubkey(q->broker_cert)) != 0) {
		log_warn("reply dropped: bad signature");
		goto bad;
	}
	if ((r = ehx_cert_check_time(q->broker_cert, ehx_now_ms())) != 0) {
		log_warn("reply dropped: the broker's certificate: %s",
		    ehx_strerror(r));
		goto bad;
	}
	if (ehx_body_decode(env->body.data, env->body.len, &b, why,
	    sizeof(why)) != 0) {
		if (lenient && (b = open_lenient(q, env)) != NULL) {
			*out = b;
			ehx_envelope_free(env);
			return 1;
		}
		log_warn("reply dropped: %s", why);
		goto bad;
	}
	if (strcmp(b->sender, q->broker_id) != 0 ||
	    strcmp(b->recipient, q->agency) != 0) {
		log_warn("reply dropped: from %s to %s", b->sender, b->recipient);
		ehx_body_free(b);
		goto bad;
	}
	*out = b;
	if (envp != NULL)
		*envp = env;
	else
		ehx_envelope_free(env);
	return 0;
bad:
	ehx_envelope_free(env);
	return -1;
}

int
queue_open_envelope(struct queue *q, const void *data, size_t len,
    Ehx__Envelope **envp, Ehx__Body **out)
{
	return open_signed(q, data, len, false, envp, out);
}

/*
 * Store notifications (each its envelope's bytes) in one commit. "any":
 * they are a fetched batch that may start wherever the broker's queue does.
 * True when something new was taken.
 */
static bool
store_notifications(struct queue *q, Ehx__Body **bs, const bool *unread,
    const ProtobufCBinaryData *envs, size_t n, bool any, int64_t now)
{
	struct intake_state st = { .seq = q->broker_seq, .last = q->inbox_last,
	    .any = any };
	MDB_txn *txn;
	MDB_val k, v;
	int r = 0;

	memcpy(st.id, q->broker_seq_id, EHX_MSGID_LEN);
	if (mdb_txn_begin(q->env, NULL, 0, &txn) != 0)
		return false;
	/* An envelope that did not verify (bs[i] NULL) cannot say where it
	 * stands: nothing after it is taken. */
	for (size_t i = 0; i < n && r == 0 && !st.gap; i++)
		if (bs[i] == NULL)
			st.gap = true;
		else
			r = intake(q, txn, bs[i], unread[i], envs[i].data,
			    envs[i].len, &st, now);
	if (r == 0 && st.seq == q->broker_seq &&
	    memcmp(st.id, q->broker_seq_id, EHX_MSGID_LEN) == 0) {
		mdb_txn_abort(txn);     /* nothing taken */
		if (st.gap)
			log_warn("notification %llu is missing; asking again",
			    (unsigned long long)q->broker_seq + 1);
		return false;
	}
	k = (MDB_val){ 13, (void *)"broker_seq_id" };
	v = (MDB_val){ EHX_MSGID_LEN, st.id };
	if (r == 0 && (r = meta_put(q, txn, "inbox_last", st.last)) == 0 &&
	    (r = meta_put(q, txn, "broker_seq", st.seq)) == 0 &&
	    mdb_put(txn, q->meta, &k, &v, 0) != 0)
		r = EHX_ERR_STORAGE;
	if (r != 0 || mdb_txn_commit(txn) != 0) {
		if (r != 0)
			mdb_txn_abort(txn);
		log_error("notifications could not be stored: %s",
		    ehx_strerror(r != 0 ? r : EHX_ERR_STORAGE));
		return false;
	}
	if (st.dups > 0)
		log_info("%zu notifications were in the inbox already",
		    st.dups);
	if (st.last > q->inbox_last)
		log_info("notifications stored as inbox %llu..%llu (the "
		    "broker's %llu)", (unsigned long long)q->inbox_last + 1,
		    (unsigned long long)st.last, (unsigned long long)st.seq);
	q->broker_seq = st.seq;
	memcpy(q->broker_seq_id, st.id, EHX_MSGID_LEN);
	if (st.last > q->inbox_last) {
		q->inbox_last = st.last;
		spool_pending(q, now);
		if (q->hook_fails == 0)
			q->hook_next = now;     /* not while a failure waits */
	}
	return true;
}

/* The broker's queue for us is empty and does not know our last: start
 * from nothing, so the next fetch is "after 0" and not a restart again. */
static void
forget_broker_seq(struct queue *q)
{
	static const unsigned char zero[EHX_MSGID_LEN];
	MDB_val k = { 13, (void *)"broker_seq_id" }, v = { EHX_MSGID_LEN,
	    (void *)zero };
	MDB_txn *txn;

	if (mdb_txn_begin(q->env, NULL, 0, &txn) != 0)
		return;
	if (meta_put(q, txn, "broker_seq", 0) != 0 ||
	    mdb_put(txn, q->meta, &k, &v, 0) != 0) {
		mdb_txn_abort(txn);
		return;
	}
	if (mdb_txn_commit(txn) != 0)
		return;
	q->broker_seq = 0;
	memset(q->broker_seq_id, 0, EHX_MSGID_LEN);
}

/* The oldest outbox number not decided yet: decisions of this burst are
 * not flushed (deleted) until queue_flush. 0 if none. */
static uint64_t
oldest_undecided(struct queue *q, MDB_txn *txn)
{
	MDB_cursor *c;
	MDB_val k, d;
	uint64_t num = 0;
	int rc;

	if (mdb_cursor_open(txn, q->outbox, &c) != 0)
		return first_key(txn, q->outbox);
	for (rc = mdb_cursor_get(c, &k, &d, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
		bool decided = false;

		if (k.mv_size != 8)
			continue;
		num = get64(k.mv_data);
		for (size_t i = 0; i < q->ndec && !decided; i++)
			decided = q->dec[i].num == num;
		if (!decided)
			break;
		num = 0;
	}
	mdb_cursor_close(c);
	return num;
}

static void
fetch_reply(struct queue *q, const Ehx__Body *b, int64_t now)
{
	const Ehx__NotificationBatch *nb = b->notifications;
	Ehx__Body **bs;
	bool *unread;
	size_t n;

	q->fetch_busy = false;
	q->last_contact = now;
	if (b->payload_case != EHX__BODY__PAYLOAD_NOTIFICATIONS || nb == NULL) {
		int64_t wait = 1000;

		if (b->payload_case == EHX__BODY__PAYLOAD_ERROR && b->error) {
			log_warn("fetching notifications: %s",
			    b->error->message);
			if (credential(ehx_err_from_wire(b->error->code)))
				wait = CRED_RETRY_MS;   /* each is audited */
		}
		q->next_fetch = now + wait;
		return;
	}
	n = nb->n_envelopes;
	if (nb->restart)
		log_warn("the broker does not know notification %llu by the id "
		    "this inbox has (its store or this one was restored or "
		    "replaced): taking its queue from the start",
		    (unsigned long long)q->broker_seq);
	if (n == 0) {
		if (nb->restart)
			forget_broker_seq(q);
		if (nb->pending > 0)
			q->fetch_again = true;
		return;
	}
	if ((bs = calloc(n, sizeof(*bs))) == NULL)
		return;
	if ((unread = calloc(n, sizeof(*unread))) == NULL) {
		free(bs);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		int r = open_signed(q, nb->envelopes[i].data,
		    nb->envelopes[i].len, true, NULL, &bs[i]);

		unread[i] = r == 1;
		if (r >= 0 && bs[i]->payload_case !=
		    EHX__BODY__PAYLOAD_NOTIFICATION) {
			ehx_body_free(bs[i]);
			bs[i] = NULL;
		}
	}
	/* Something taken: acknowledge it (and ask for more) at once. */
	if (store_notifications(q, bs, unread, nb->envelopes, n,
	    nb->restart || q->broker_seq == 0, now))
		q->fetch_again = true;
	free(unread);
	for (size_t i = 0; i < n; i++)
		ehx_body_free(bs[i]);
	free(bs);
}

bool
queue_reply(struct queue *q, Ehx__Body **bp, unsigned char **env,
    size_t *envlen, int64_t now)
{
	Ehx__Body *b = *bp;
	struct flight *f;
	int code;

	if (b->payload_case == EHX__BODY__PAYLOAD_NOTIFICATION &&
	    b->in_reply_to.len == 0) {
		/*
		 * A push is only a hint: fetch now. Taking it on its seq
		 * alone could take the wrong one (a broker restored from a
		 * backup gives seqs again) and then acknowledge, by naming
		 * it, one never stored. A fetch names what this inbox holds
		 * by id; the broker's answer is checked against that.
		 */
		q->last_contact = now;
		q->fetch_again = true;
		return true;
	}
	if (b->in_reply_to.len != EHX_MSGID_LEN)
		return false;
	if (q->fetch_busy && memcmp(b->in_reply_to.data, q->fetch_id,
	    EHX_MSGID_LEN) == 0) {
		fetch_reply(q, b, now);
		return true;
	}
	if ((f = in_flight(q, b->in_reply_to.data)) == NULL)
		return false;
	q->last_contact = now;
	if (b->payload_case != EHX__BODY__PAYLOAD_ERROR || b->error == NULL) {
		q->backoff_step = 0;
		q->last_error[0] = '\0';
		q->cred_hold = false;
		decide(q, f, bp, env, envlen, false);
		return true;
	}
	code = ehx_err_from_wire(b->error->code);
	q->cred_hold = credential(code);
	if (code == EHX_ERR_OUT_OF_ORDER) {
		MDB_txn *txn;
		uint64_t oldest = f->num, due = b->error->expected + q->stream_base;

		if (mdb_txn_begin(q->env, NULL, MDB_RDONLY, &txn) == 0) {
			oldest = oldest_undecided(q, txn);
			mdb_txn_abort(txn);
			if (oldest == 0)        /* f itself is undecided */
				oldest = f->num;
		}
		if (b->error->expected == 0 && q->fresh_stream) {
			/* A stream this agent made while running has not
			 * been used by anyone else: an "applied to another
			 * request" now answers a send under the stream it
			 * left. Already dealt with. */
			log_debug("an earlier stream's OUT_OF_ORDER ignored");
		} else if (b->error->expected == 0 || due < oldest) {
			/* The broker has applied less than we know it did
			 * (its store went back), or (expected 0) it applied
			 * our numbers to other requests (ours went back). What
			 * we still hold was not applied there: number it
			 * afresh. */
			if (b->error->expected == 0)
				log_warn("the broker applied outbox numbers this "
				    "agent holds to other requests (this store "
				    "was restored or copied?): starting a new "
				    "stream at %llu", (unsigned long long)oldest);
			else
				log_warn("the broker expects outbox number %llu, "
				    "which it acknowledged before (its store was "
				    "restored?): starting a new stream at %llu",
				    (unsigned long long)b->error->expected,
				    (unsigned long long)oldest);
			/* Not stored: send again, but not at round-trip
			 * speed. */
			goback(q, now, mdb_txn_begin(q->env, NULL, 0, &txn) != 0 ||
			    new_stream_commit(q, txn, oldest - 1) != 0);
		} else if (now - q->last_goback >= GOBACK_GAP_MS)
			goback(q, now, false);
		return true;
	}
	if (retriable(code)) {
		char was[sizeof(q->last_error)];

		memcpy(was, q->last_error, sizeof(was));
		snprintf(q->last_error, sizeof(q->last_error), "%s: %s",
		    ehx_errname(code), b->error->message);
		if (q->cred_hold && strcmp(was, q->last_error) != 0)
			log_error("the broker refuses this agent's credentials "
			    "(%s): the outbox is held, not dropped, and is "
			    "tried again, one request a minute, until they are "
			    "put right", q->last_error);
		if (now - q->last_goback >= GOBACK_GAP_MS)
			goback(q, now, true);
		if (q->cred_hold && q->backoff_until < now + CRED_RETRY_MS / 2)
			q->backoff_until = now + jitter(CRED_RETRY_MS);
		return true;
	}
	q->backoff_step = 0;
	decide(q, f, bp, env, envlen, true);
	return true;
}

/* "publish_flag REF" for an outbox entry. */
static void
describe(const Ehx__Body *b, char *out, size_t outsz)
{
	const char *what = "";

	switch (b->payload_case) {
	case EHX__BODY__PAYLOAD_PUBLISH_FLAG: what = b->publish_flag->ref; break;
	case EHX__BODY__PAYLOAD_CLOSE_FLAG: what = b->close_flag->ref; break;
	case EHX__BODY__PAYLOAD_WITHDRAW_CONSENT:
		what = b->withdraw_consent->consent_id;
		break;
	default: break;
	}
	snprintf(out, outsz, "%s%s%s", ehx_payload_name(b->payload_case),
	    what[0] ? " " : "", what);
}

static void
prune_done(struct queue *q, MDB_txn *txn, int64_t now)
{
	MDB_cursor *c;
	MDB_val k, d;
	int n = 0;

	if (mdb_cursor_open(txn, q->done, &c) != 0)
		return;
	while (n++ < PRUNE_MAX && mdb_cursor_get(c, &k, &d, MDB_FIRST) == 0) {
		Ehx__DoneEntry *e = ehx__done_entry__unpack(NULL, d.mv_size,
		    d.mv_data);
		bool old = e == NULL || e->at < now - DONE_KEEP_MS;

		if (e != NULL)
			ehx__done_entry__free_unpacked(e, NULL);
		if (!old || mdb_cursor_del(c, 0) != 0)
			break;
	}
	mdb_cursor_close(c);
}

void
queue_flush(struct queue *q, int64_t now)
{
	MDB_txn *txn;
	uint64_t delivered = q->delivered, refused = q->refused;
	int r = 0;

	if (q->ndec == 0)
		return;
	if (mdb_txn_begin(q->env, NULL, 0, &txn) != 0) {
		r = EHX_ERR_STORAGE;
		goto out;
	}
	for (size_t i = 0; i < q->ndec && r == 0; i++) {
		struct decided *dc = &q->dec[i];
		Ehx__DoneEntry de = EHX__DONE_ENTRY__INIT;
		Ehx__OutboxEntry *e = NULL;
		unsigned char kb[8];
		MDB_val k = { 8, kb }, d;
		char what[128] = "";

		be64(kb, dc->num);
		if (mdb_get(txn, q->outbox, &k, &d) != 0)
			continue;       /* decided before */
		if ((e = ehx__outbox_entry__unpack(NULL, d.mv_size,
		    d.mv_data)) != NULL && e->body != NULL)
			describe(e->body, what, sizeof(what));
		if (e != NULL)
			ehx__outbox_entry__free_unpacked(e, NULL);
		if ((r = mdberr(mdb_del(txn, q->outbox, &k, NULL))) != 0)
			break;
		de.number = dc->num;
		de.at = now;
		de.reply.data = dc->env;
		de.reply.len = dc->envlen;
		de.refused = dc->refused;
		de.unchanged = dc->unchanged;
		de.what = what;
		de.message_id.data = dc->id;
		de.message_id.len = EHX_MSGID_LEN;
		if (dc->refused)
			de.error = dc->reply->error;
		r = put_msg(txn, q->done, dc->num, &de.base);
		if (dc->refused) {
			refused++;
			log_warn("outbox %llu (%s) refused by the broker: %s",
			    (unsigned long long)dc->num, what,
			    dc->reply->error->message);
		} else
			delivered++;
	}
	if (r == 0)
		prune_done(q, txn, now);
	if (r == 0 && ((r = meta_put(q, txn, "delivered", delivered)) != 0 ||
	    (r = meta_put(q, txn, "refused", refused)) != 0)) {
		/* fall through */
	}
	if (r != 0)
		mdb_txn_abort(txn);
	else if (mdb_txn_commit(txn) != 0)
		r = EHX_ERR_STORAGE;
out:
	if (r != 0) {
		/* Not stored: they stay queued and are sent again; the
		 * broker answers them as decided before. */
		log_error("the outbox could not be updated: %s",
		    ehx_strerror(r));
		goback(q, now, true);
	} else {
		q->delivered = delivered;
		q->refused = refused;
	}
	for (size_t i = 0; i < q->ndec; i++) {
		struct decided *dc = &q->dec[i];

		if (r == 0) {
			size_t j;

			for (j = 0; j < q->nwin; j++)
				if (q->win[j].num == dc->num)
					break;
			if (j < q->nwin) {
				memmove(&q->win[j], &q->win[j + 1],
				    (q->nwin - j - 1) * sizeof(q->win[0]));
				q->nwin--;
			}
			if (q->on_decided != NULL)
				q->on_decided(q->cb_arg, dc->num, dc->reply);
		}
		ehx_body_free(dc->reply);
		free(dc->env);
	}
	q->ndec = 0;
}

/* ---- reports ------------------------------------------------------------ */

int
queue_report(struct queue *q, uint64_t first, uint64_t last,
    Ehx__OutboxReport *rep)
{
	MDB_txn *txn;
	MDB_cursor *c = NULL;
	unsigned char kb[8];
	MDB_val k, d;
	int rc;

	ehx__outbox_report__init(rep);
	if (first == 0 || last < first)
		return EHX_ERR_INVALID_FIELD;
	if (mdb_txn_begin(q->env, NULL, MDB_RDONLY, &txn) != 0)
		return EHX_ERR_STORAGE;
	be64(kb, first);
	if (mdb_cursor_open(txn, q->outbox, &c) == 0) {
		k = (MDB_val){ 8, kb };
		for (rc = mdb_cursor_get(c, &k, &d, MDB_SET_RANGE); rc == 0 &&
		    get64(k.mv_data) <= last;
		    rc = mdb_cursor_get(c, &k, &d, MDB_NEXT))
			rep->pending++;
		mdb_cursor_close(c);
	}
	if (mdb_cursor_open(txn, q->done, &c) == 0) {
		k = (MDB_val){ 8, kb };
		for (rc = mdb_cursor_get(c, &k, &d, MDB_SET_RANGE); rc == 0 &&
		    get64(k.mv_data) <= last;
		    rc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
			Ehx__DoneEntry *e = ehx__done_entry__unpack(NULL,
			    d.mv_size, d.mv_data);

			if (e == NULL)
				continue;
			if (!e->refused) {
				rep->delivered++;
				rep->unchanged += e->unchanged;
			} else {
				rep->refused++;
				if (rep->n_refusals < MAX_REFUSALS) {
					Ehx__Refusal *rf = malloc(sizeof(*rf));
					Ehx__Refusal **rs = realloc(rep->refusals,
					    (rep->n_refusals + 1) * sizeof(*rs));

					if (rs != NULL)
						rep->refusals = rs;
					if (rf != NULL && rs != NULL) {
						ehx__refusal__init(rf);
						rf->number = e->number;
						rf->at = e->at;
						rf->what = strdup(e->what);
						rf->message_id = e->message_id;
						e->message_id.data = NULL;
						e->message_id.len = 0;
						rf->error = e->error;
						e->error = NULL;
						rs[rep->n_refusals++] = rf;
					} else
						free(rf);
				}
			}
			ehx__done_entry__free_unpacked(e, NULL);
		}
		mdb_cursor_close(c);
	}
	mdb_txn_abort(txn);
	return 0;
}

void
queue_report_free(Ehx__OutboxReport *r)
{
	for (size_t i = 0; i < r->n_refusals; i++) {
		free(r->refusals[i]->what);
		free(r->refusals[i]->message_id.data);
		if (r->refusals[i]->error != NULL)
			ehx__error__free_unpacked(r->refusals[i]->error, NULL);
		free(r->refusals[i]);
	}
	free(r->refusals);
	r->refusals = NULL;
	r->n_refusals = 0;
}

int
queue_status(struct queue *q, int64_t now, Ehx__AgentStatus *s)
{
	MDB_txn *txn;
	MDB_stat st;
	MDB_val d;
	MDB_cursor *c;
	MDB_val k;
	uint64_t first;
	int rc;

	ehx__agent_status__init(s);
	s->connected = q->last_contact != 0 && now - q->last_contact < 60000;
	s->last_contact = q->last_contact;
	s->in_flight = q->nwin;
	s->delivered = q->delivered;
	s->refused = q->refused;
	s->next_number = q->next_num;
	s->notifications = q->inbox_last;
	s->stream.data = q->stream;
	s->stream.len = EHX_STREAM_LEN;
	s->last_error = strdup(q->last_error);
	s->hook_error = strdup(q->hook_error);
	if (mdb_txn_begin(q->env, NULL, MDB_RDONLY, &txn) != 0)
		return EHX_ERR_STORAGE;
	if (mdb_stat(txn, q->outbox, &st) == 0)
		s->outbox = st.ms_entries;
	if ((first = first_key(txn, q->outbox)) != 0 &&
	    get_raw(txn, q->outbox, first, &d) == 0) {
		Ehx__OutboxEntry *e = ehx__outbox_entry__unpack(NULL,
		    d.mv_size, d.mv_data);

		if (e != NULL) {
			s->oldest_queued = e->queued_at;
			ehx__outbox_entry__free_unpacked(e, NULL);
		}
	}
	if (mdb_cursor_open(txn, q->inbox, &c) == 0) {
		for (rc = mdb_cursor_get(c, &k, &d, MDB_FIRST); rc == 0;
		    rc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
			Ehx__InboxItem *it = ehx__inbox_item__unpack(NULL,
			    d.mv_size, d.mv_data);

			if (it == NULL)
				continue;
			if (it->acked_at == 0)
				s->inbox_new++;
			if (q->hook_argv[0] != NULL && it->hooked_at == 0) {
				if (s->hook_pending++ == 0)
					s->oldest_hook_pending = it->received_at;
			}
			ehx__inbox_item__free_unpacked(it, NULL);
		}
		mdb_cursor_close(c);
	}
	/* The latest refusals, newest first. */
	if (mdb_cursor_open(txn, q->done, &c) == 0) {
		for (rc = mdb_cursor_get(c, &k, &d, MDB_LAST);
		    rc == 0 && s->n_recent_refusals < 5;
		    rc = mdb_cursor_get(c, &k, &d, MDB_PREV)) {
			Ehx__DoneEntry *e = ehx__done_entry__unpack(NULL,
			    d.mv_size, d.mv_data);
			Ehx__Refusal *rf;
			Ehx__Refusal **rs;

			if (e == NULL)
				continue;
			if (e->refused && (rf = malloc(sizeof(*rf))) != NULL) {
				if ((rs = realloc(s->recent_refusals,
				    (s->n_recent_refusals + 1) *
				    sizeof(*rs))) == NULL) {
					free(rf);
				} else {
					s->recent_refusals = rs;
					ehx__refusal__init(rf);
					rf->number = e->number;
					rf->at = e->at;
					rf->what = strdup(e->what);
					rf->message_id = e->message_id;
					e->message_id.data = NULL;
					e->message_id.len = 0;
					rf->error = e->error;
					e->error = NULL;
					rs[s->n_recent_refusals++] = rf;
				}
			}
			ehx__done_entry__free_unpacked(e, NULL);
		}
		mdb_cursor_close(c);
	}
	mdb_txn_abort(txn);
	return 0;
}

void
queue_status_free(Ehx__AgentStatus *s)
{
	Ehx__OutboxReport r = EHX__OUTBOX_REPORT__INIT;

	free(s->last_error);
	free(s->hook_error);
	r.refusals = s->recent_refusals;
	r.n_refusals = s->n_recent_refusals;
	queue_report_free(&r);
	s->recent_refusals = NULL;
	s->n_recent_refusals = 0;
}

int
queue_inbox(struct queue *q, const Ehx__InboxRequest *req, int64_t now,
    Ehx__InboxList *out)
{
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k, d;
	size_t limit = req->limit == 0 ? 100 : req->limit;
	int rc, r = 0;

	ehx__inbox_list__init(out);
	if (limit > 1000)
		return EHX_ERR_INVALID_FIELD;
	if ((out->items = calloc(limit, sizeof(*out->items))) == NULL)
		return EHX_ERR_NOMEM;
	if (req->op != EHX__INBOX_REQUEST__OP__OP_LIST) {
		Ehx__InboxItem *it;

		if ((rc = mdb_txn_begin(q->env, NULL,
		    req->op == EHX__INBOX_REQUEST__OP__OP_ACK ? 0 : MDB_RDONLY,
		    &txn)) != 0)
			return EHX_ERR_STORAGE;
		if ((r = get_raw(txn, q->inbox, req->seq, &d)) != 0 ||
		    (it = ehx__inbox_item__unpack(NULL, d.mv_size,
		    d.mv_data)) == NULL) {
			mdb_txn_abort(txn);
			return r != 0 ? r : EHX_ERR_STORAGE;
		}
		if (req->op == EHX__INBOX_REQUEST__OP__OP_ACK) {
			if (it->acked_at == 0) {
				it->acked_at = now;
				if ((r = put_msg(txn, q->inbox, it->seq,
				    &it->base)) != 0)
					mdb_txn_abort(txn);
				else
					r = mdberr(mdb_txn_commit(txn));
				if (r != 0) {
					ehx__inbox_item__free_unpacked(it, NULL);
					return r;
				}
			} else
				mdb_txn_abort(txn);
			it->envelope.len = 0;
		} else
			mdb_txn_abort(txn);
		out->items[out->n_items++] = it;
		return 0;
	}
	if (mdb_txn_begin(q->env, NULL, MDB_RDONLY, &txn) != 0)
		return EHX_ERR_STORAGE;
	if (mdb_cursor_open(txn, q->inbox, &c) == 0) {
		for (rc = mdb_cursor_get(c, &k, &d, MDB_FIRST); rc == 0;
		    rc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
			Ehx__InboxItem *it = ehx__inbox_item__unpack(NULL,
			    d.mv_size, d.mv_data);

			if (it == NULL)
				continue;
			if (it->acked_at == 0)
				out->total_new++;
			if ((it->acked_at == 0 || req->all) &&
			    out->n_items < limit) {
				it->envelope.len = 0;
				out->items[out->n_items++] = it;
			} else
				ehx__inbox_item__free_unpacked(it, NULL);
		}
		mdb_cursor_close(c);
	}
	mdb_txn_abort(txn);
	return 0;
}

void
queue_inbox_free(Ehx__InboxList *l)
{
	for (size_t i = 0; i < l->n_items; i++)
		ehx__inbox_item__free_unpacked(l->items[i], NULL);
	free(l->items);
	l->items = NULL;
	l->n_items = 0;
}

/* ---- the hook ------------------------------------------------------------ */

/* Mark item seq as handed over (ok) or count a failed attempt. */
static void
hook_mark(struct queue *q, uint64_t seq, bool ok, int64_t now)
{
	MDB_txn *txn;
	MDB_val d;
	Ehx__InboxItem *it = NULL;

	if (mdb_txn_begin(q->env, NULL, 0, &txn) != 0)
		return;
	if (get_raw(txn, q->inbox, seq, &d) == 0 &&
	    (it = ehx__inbox_item__unpack(NULL, d.mv_size, d.mv_data)) != NULL) {
		it->hook_attempts++;
		if (ok)
			it->hooked_at = now;
		if (put_msg(txn, q->inbox, seq, &it->base) != 0) {
			mdb_txn_abort(txn);
			txn = NULL;
		}
		ehx__inbox_item__free_unpacked(it, NULL);
	} else {
		mdb_txn_abort(txn);
		txn = NULL;
	}
	if (txn != NULL && mdb_txn_commit(txn) != 0)
		log_error("the hook's result for notification %llu was not "
		    "stored", (unsigned long long)seq);
}

void
queue_reap(struct queue *q, int64_t now)
{
	int st;
	pid_t p;

	if (q->hook_pid <= 0)
		return;
	if ((p = waitpid(q->hook_pid, &st, WNOHANG)) == 0)
		return;
	q->hook_pid = -1;
	if (p > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0) {
		hook_mark(q, q->hook_seq, true, now);
		log_info("notification %llu handed to the hook",
		    (unsigned long long)q->hook_seq);
		q->hook_fails = 0;
		q->hook_error[0] = '\0';
		q->hook_seq++;
		q->hook_next = now;
		return;
	}
	if (p > 0 && WIFEXITED(st))
		snprintf(q->hook_error, sizeof(q->hook_error), "the hook exited "
		    "with status %d", WEXITSTATUS(st));
	else if (p > 0 && WIFSIGNALED(st))
		snprintf(q->hook_error, sizeof(q->hook_error), "the hook was "
		    "killed by signal %d%s", WTERMSIG(st),
		    WTERMSIG(st) == SIGKILL ? " (timeout?)" : "");
	else
		snprintf(q->hook_error, sizeof(q->hook_error), "the hook could "
		    "not be waited for");
	hook_mark(q, q->hook_seq, false, now);
	{
		int64_t d = 1000LL << (q->hook_fails < 9 ? q->hook_fails : 9);

		if (d > HOOK_RETRY_MAX_MS)
			d = HOOK_RETRY_MAX_MS;
		q->hook_fails++;
		q->hook_next = now + jitter(d);
		log_warn("notification %llu: %s; trying again in %lld ms",
		    (unsigned long long)q->hook_seq, q->hook_error,
		    (long long)(q->hook_next - now));
	}
}

/* The first stored item the hook has not taken, from hook_seq on. */
static Ehx__InboxItem *
hook_next_item(struct queue *q)
{
	MDB_txn *txn;
	MDB_cursor *c;
	unsigned char kb[8];
	MDB_val k = { 8, kb }, d;
	Ehx__InboxItem *found = NULL;
	int rc;

	if (mdb_txn_begin(q->env, NULL, MDB_RDONLY, &txn) != 0)
		return NULL;
	be64(kb, q->hook_seq);
	if (mdb_cursor_open(txn, q->inbox, &c) == 0) {
		for (rc = mdb_cursor_get(c, &k, &d, MDB_SET_RANGE);
		    rc == 0 && found == NULL;
		    rc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
			Ehx__InboxItem *it = ehx__inbox_item__unpack(NULL,
			    d.mv_size, d.mv_data);

			if (it == NULL)
				continue;
			if (it->hooked_at == 0)
				found = it;
			else {
				q->hook_seq = it->seq + 1;
				ehx__inbox_item__free_unpacked(it, NULL);
			}
		}
		mdb_cursor_close(c);
	}
	mdb_txn_abort(txn);
	return found;
}

static void
hook_start(struct queue *q, Ehx__InboxItem *it, int64_t now)
{
	char seqenv[64], agencyenv[96];
	char *envp[] = { (char *)"PATH=/usr/local/bin:/usr/bin:/bin",
	    seqenv, agencyenv, NULL };
	json_object *o;
	const char *s;
	int fds[2], devnull;
	sigset_t none;
	pid_t pid;

	snprintf(seqenv, sizeof(seqenv), "EHX_NOTIFICATION_SEQ=%llu",
	    (unsigned long long)it->seq);
	snprintf(agencyenv, sizeof(agencyenv), "EHX_AGENCY=%s", q->agency);
	if ((o = notice_json(it)) == NULL)
		return;
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	if (pipe2(fds, O_CLOEXEC) != 0) {
		json_object_put(o);
		return;
	}
	devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	sigemptyset(&none);
	if ((pid = fork()) == 0) {
		/* Only async-signal-safe calls until exec. The agent ignores
		 * SIGPIPE; a hook starts with what a program expects. */
		signal(SIGPIPE, SIG_DFL);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (dup2(fds[0], 0) < 0 || (devnull >= 0 && dup2(devnull, 1) < 0))
			_exit(126);
		execve(q->hook_argv[0], q->hook_argv, envp);
		_exit(127);
	}
	close(fds[0]);
	if (devnull >= 0)
		close(devnull);
	if (pid < 0) {
		close(fds[1]);
		json_object_put(o);
		snprintf(q->hook_error, sizeof(q->hook_error), "fork: %s",
		    strerror(errno));
		q->hook_next = now + 1000;
		return;
	}
	{
		size_t n = strlen(s), off = 0;

		while (off < n) {
			ssize_t w = write(fds[1], s + off, n - off);

			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				break;  /* it did not read: its exit decides */
			off += (size_t)w;
		}
		if (off == n && write(fds[1], "\n", 1) != 1)
			log_debug("the hook did not read its input");
	}
	close(fds[1]);
	json_object_put(o);
	q->hook_pid = pid;
	q->hook_seq = it->seq;
	q->hook_started = now;
}

static void
hook_tick(struct queue *q, int64_t now, int64_t *next)
{
	Ehx__InboxItem *it;

	if (q->hook_argv[0] == NULL)
		return;
	queue_reap(q, now);
	if (q->hook_pid > 0) {
		if (now - q->hook_started > q->hook_timeout_ms) {
			log_warn("the hook ran over %lld s on notification "
			    "%llu: killed", (long long)(q->hook_timeout_ms /
			    1000), (unsigned long long)q->hook_seq);
			kill(q->hook_pid, SIGKILL);
		}
		if (now + 20 < *next)
			*next = now + 20;       /* reap it soon */
		return;
	}
	if (now < q->hook_next) {
		if (q->hook_next < *next)
			*next = q->hook_next;
		return;
	}
	if ((it = hook_next_item(q)) == NULL) {
		q->hook_next = INT64_MAX;       /* until the next arrives */
		return;
	}
	hook_start(q, it, now);
	ehx__inbox_item__free_unpacked(it, NULL);
	if (now + 20 < *next)
		*next = now + 20;
}

/* ---- the web console's sign-in log ------------------------------------- */

int
queue_signin_put(struct queue *q, int64_t now, const char *event,
    const char *account, const char *address)
{
	MDB_txn *txn = NULL;
	MDB_cursor *cur = NULL;
	MDB_val k, d;
	unsigned char key[8];
	char line[256];
	uint64_t seq = 1;
	int n, rc;

	n = snprintf(line, sizeof(line), "%lld\t%s\t%s\t%s", (long long)now,
	    event, account, address);
	if (n < 0 || (size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	if ((rc = mdb_txn_begin(q->env, NULL, 0, &txn)) != 0 ||
	    (rc = mdb_cursor_open(txn, q->signins, &cur)) != 0)
		goto out;
	if ((rc = mdb_cursor_get(cur, &k, &d, MDB_LAST)) == 0 &&
	    k.mv_size == 8)
		seq = get64(k.mv_data) + 1;
	else if (rc != MDB_NOTFOUND && rc != 0)
		goto out;
	be64(key, seq);
	k = (MDB_val){ 8, key };
	d = (MDB_val){ (size_t)n, line };
	if ((rc = mdb_cursor_put(cur, &k, &d, MDB_APPEND)) != 0)
		goto out;
	/* A ring: the oldest line goes once QUEUE_SIGNINS are kept, so no
	 * flood of failed sign-ins can fill the store the outbox needs. */
	if (seq > QUEUE_SIGNINS) {
		be64(key, seq - QUEUE_SIGNINS);
		k = (MDB_val){ 8, key };
		if ((rc = mdb_del(txn, q->signins, &k, NULL)) != 0 &&
		    rc != MDB_NOTFOUND)
			goto out;
		rc = 0;
	}
	mdb_cursor_close(cur);
	cur = NULL;
	rc = mdb_txn_commit(txn);
	txn = NULL;
out:
	if (cur != NULL)
		mdb_cursor_close(cur);
	if (txn != NULL)
		mdb_txn_abort(txn);
	if (rc != 0)
		log_error("console sign-in log: %s", mdb_strerror(rc));
	return rc == 0 ? 0 : EHX_ERR_STORAGE;
}

int
queue_signin_list(struct queue *q, size_t limit,
    void (*fn)(void *arg, uint64_t seq, const char *line, size_t len),
    void *arg)
{
	MDB_txn *txn = NULL;
	MDB_cursor *cur = NULL;
	MDB_val k, d;
	int rc;

	if ((rc = mdb_txn_begin(q->env, NULL, MDB_RDONLY, &txn)) != 0 ||
	    (rc = mdb_cursor_open(txn, q->signins, &cur)) != 0)
		goto out;
	for (rc = mdb_cursor_get(cur, &k, &d, MDB_LAST); rc == 0 && limit > 0;
	    rc = mdb_cursor_get(cur, &k, &d, MDB_PREV), limit--)
		if (k.mv_size == 8)
			fn(arg, get64(k.mv_data), d.mv_data, d.mv_size);
	if (rc == MDB_NOTFOUND)
		rc = 0;
out:
	if (cur != NULL)
		mdb_cursor_close(cur);
	if (txn != NULL)
		mdb_txn_abort(txn);
	return rc == 0 ? 0 : EHX_ERR_STORAGE;
}
