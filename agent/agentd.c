/*
 * agentd.c — ehx-agent, one per agency. It holds the agency's keys, serves
 * the agency's people and systems on a Unix-domain socket, and talks to the
 * broker over ZeroMQ CURVE.
 *
 * For each local request it learns the caller's account from the kernel
 * (SO_PEERCRED) and the person and role from the users file — a caller
 * cannot claim another person or an ungranted role — then fills in the
 * Body (message id, sender, recipient, time, person), signs it, and sends
 * it. It accepts a reply only when it is signed by the broker's
 * certificate, comes from the broker's id, is addressed to this agency, and
 * answers a request still waiting; anything else is logged and dropped.
 *
 * A change (publish, close, consent record or withdraw) goes through the
 * durable outbox (queue.c): committed before the caller hears "queued",
 * delivered in order, forgotten only on the broker's signed decision. A
 * query is answered live: while no reply comes the agent re-sends the same
 * envelope (the broker answers a repeat with its first reply, never a
 * second effect) until the request's time limit. Notifications from the
 * broker go to the durable inbox (queue.c). ZeroMQ reconnects by itself;
 * ZMQ_IMMEDIATE keeps messages from queueing on a connection that is not up.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <sodium.h>
#include <zmq.h>

#include "users.h"
#include "ehx/conf.h"
#include "ehx/err.h"
#include "ehx/log.h"
#include "ehx/names.h"
#include "ehx/util.h"
#include "ehx/validate.h"
#include "ehx/wire.h"
#include "config.h"
#include "console/console.h"
#include "queue.h"
#include "watch.h"

#define DEFAULT_CONFIG "/etc/ehx/agent.conf"
#define MAX_CLIENTS 128
#define READ_TIMEOUT_MS 5000
#define RESEND_MS 3000
#define RESEND_OUTBOX_MS 5000
#define RETRY_UNSENT_MS 250
#define LOCAL_MAX (EHX_MAX_MESSAGE + 1024)


/* READING: the request; WAITING: a live query's reply; QUEUED: a queued
 * change's decision (publish --wait). */
enum slot_state { SLOT_FREE, SLOT_READING, SLOT_WAITING, SLOT_QUEUED };

struct slot {
	enum slot_state state;
	int fd;
	int64_t deadline;
	int64_t next_send;
	bool sent;                       /* reached a live connection once */
	uint64_t num;                    /* SLOT_QUEUED: the outbox number */
	/* from the web console: the signed-in account (else the caller's
	 * account is the kernel's word, SO_PEERCRED) */
	char console_account[EHX_MAX_ACCOUNT + 1];
	unsigned char id[EHX_MSGID_LEN];
	unsigned char *env;
	size_t envlen;
};

struct agent {
	struct agent_config cfg;
	struct ehx_signer *signer;
	struct ehx_cert *broker_cert;
	struct ehx_ca *ca;
	struct users users;
	pthread_rwlock_t users_lock;     /* the console's threads read users */
	struct console *console;         /* NULL: no web console */
	unsigned char curve_secret[EHX_KEY_LEN];   /* wiped once set on the socket */
	unsigned char curve_pub[EHX_KEY_LEN];
	unsigned char broker_curve[EHX_KEY_LEN];
	void *zctx, *dealer, *monitor;
	int listen_fd;
	struct watch watch;
	struct queue queue;
	char *hook_words;                /* hook, split into queue.hook_argv */
	struct slot slots[MAX_CLIENTS];
};

/* For send_local: the agent whose warning every answer carries. */
static struct watch *the_watch;

static volatile sig_atomic_t stopping, reload;

static void on_stop(int sig) { (void)sig; stopping = 1; }
static void on_hup(int sig) { (void)sig; reload = 1; }

static void
usage(FILE *f)
{
	fprintf(f,
"usage: ehx-agent [-c FILE] [--check]\n"
"       ehx-agent --hash-password\n"
"\n"
"The EHX agent for one agency: signs its people's and systems' requests,\n"
"sends them to the broker over ZeroMQ CURVE, verifies the broker's signed\n"
"replies, and serves the ehx command line on a Unix-domain socket.\n"
"\n"
"  -c, --config FILE  configuration file (default " DEFAULT_CONFIG ")\n"
"      --check        load configuration, keys and users, then exit\n"
"      --hash-password  read a password (asked twice, not shown, on a\n"
"                     terminal; else one line of standard input), print\n"
"                     its Argon2id hash for a users file's password = line\n"
"                     (the web console's login), and exit. 12-1024 bytes.\n"
"  -h, --help         this text\n"
"      --version      the version\n"
"\n"
"Who may use the agent is decided by the socket's file permissions\n"
"(socket_mode, socket_group) and by the users file, which maps each local\n"
"account to a person and the roles that person holds.\n"
"\n"
"Changes (publish, close, consent) go through a durable outbox in data_dir:\n"
"committed before the caller hears \"queued\", delivered in order when the\n"
"broker can be reached, retried with backoff, applied once. Notifications\n"
"from the broker are stored in the inbox there and handed to the agency's\n"
"case system: ehx inbox, the hook command (JSON on standard input, retried\n"
"until it exits 0) and the spool_dir maildir (this user's; tmp/ 0700; the\n"
"rest 0700, or 0770 to share with the case system's group).\n"
"ehx status shows the queues.\n"
"Only one agent may use a data_dir; never restore it from a backup.\n"
"\n"
"The agent also watches the broker's tamper-evident audit log: it keeps\n"
"the newest signed checkpoint it has checked in state_file, checks each\n"
"newer one with a consistency proof, and cosigns it. A log that went back\n"
"or forked is logged as an error and every ehx command then prints a\n"
"warning (see ehx audit checkpoint) until an operator, having looked\n"
"into it, removes the state file.\n"
"\n"
"With a [console] section in its configuration the agent also serves a\n"
"web console (HTTP, or HTTPS with a certificate) on the address it names,\n"
"for Information Officers and IG officers in a browser: people sign in\n"
"with the password hash of their users-file entry, and every question they\n"
"ask takes the same path as the ehx command (docs/OPERATIONS.md, \"The web\n"
"console\").\n"
"\n"
"Signals: SIGHUP reloads the users file and the web console's certificate\n"
"and key (sessions go on); SIGTERM or SIGINT stop the agent.\n"
"Exit status: 0 on a clean stop, 1 on a configuration or start-up error,\n"
"2 on bad usage. See docs/OPERATIONS.md.\n");
}

static const char *
why_load(int r)
{
	return r == EHX_ERR_SYSTEM ? strerror(errno) : ehx_strerror(r);
}

static int
load_keys(struct agent *ag, char *err, size_t errsz)
{
	struct agent_config *c = &ag->cfg;
	char reason[160];
	int r;

	if ((r = ehx_ca_load(c->ca, &ag->ca)) != 0) {
		snprintf(err, errsz, "%s: cannot load the CA certificate: %s",
		    c->ca, why_load(r));
		return r;
	}
	if ((r = ehx_signer_load(c->key, c->certificate, &ag->signer)) != 0) {
		snprintf(err, errsz, "%s / %s: cannot load the agency's key and "
		    "certificate: %s", c->key, c->certificate,
		    r == EHX_ERR_CRYPTO ? "not an Ed25519 key matching the "
		    "certificate" : why_load(r));
		return r;
	}
	if ((r = ehx_cert_check_time(ehx_signer_cert(ag->signer),
	    ehx_now_ms())) != 0) {
		snprintf(err, errsz, "%s: %s", c->certificate, ehx_strerror(r));
		return EHX_ERR_CONFIG;
	}
	if (strcmp(ehx_cert_cn(ehx_signer_cert(ag->signer)), c->agency) != 0) {
		snprintf(err, errsz, "%s names \"%s\", but this agent is for "
		    "\"%s\"", c->certificate,
		    ehx_cert_cn(ehx_signer_cert(ag->signer)), c->agency);
		return EHX_ERR_CONFIG;
	}
	if ((r = ehx_cert_load(c->broker_certificate, &ag->broker_cert)) != 0) {
		snprintf(err, errsz, "%s: cannot load the broker's certificate: "
		    "%s", c->broker_certificate, why_load(r));
		return r;
	}
	if ((r = ehx_ca_verify(ag->ca, ag->broker_cert, reason,
	    sizeof(reason))) != 0) {
		snprintf(err, errsz, "%s: not issued by the partnership CA (%s)",
		    c->broker_certificate, reason);
		return r;
	}
	if ((r = ehx_cert_check_time(ag->broker_cert, ehx_now_ms())) != 0) {
		snprintf(err, errsz, "%s: %s", c->broker_certificate,
		    ehx_strerror(r));
		return EHX_ERR_CONFIG;
	}
	if (strcmp(ehx_cert_cn(ag->broker_cert), c->broker_id) != 0) {
		snprintf(err, errsz, "%s names \"%s\", not the broker id \"%s\"",
		    c->broker_certificate, ehx_cert_cn(ag->broker_cert),
		    c->broker_id);
		return EHX_ERR_CONFIG;
	}
	if ((r = ehx_curve_load_public(c->broker_curve_public,
	    ag->broker_curve)) != 0) {
		snprintf(err, errsz, "%s: cannot load the broker's CURVE key: %s",
		    c->broker_curve_public, r == EHX_ERR_CRYPTO ?
		    "not an X25519 public key" : why_load(r));
		return r;
	}
	if ((r = ehx_curve_load_secret(c->curve_key, ag->curve_secret,
	    ag->curve_pub)) != 0) {
		snprintf(err, errsz, "%s: cannot load the CURVE key: %s",
		    c->curve_key, r == EHX_ERR_CRYPTO ?
		    "not an X25519 private key" : why_load(r));
		return r;
	}
	return 0;
}

/* ---- the broker connection --------------------------------------------- */

static int
open_dealer(struct agent *ag, char *err, size_t errsz)
{
	int zero = 0, one = 1, ivl = 100, ivl_max = 5000, hb = 2000, hbt = 6000;
	int64_t maxmsg = 2 * EHX_MAX_MESSAGE;
	int r = 0;

	if ((ag->zctx = zmq_ctx_new()) == NULL ||
	    (ag->dealer = zmq_socket(ag->zctx, ZMQ_DEALER)) == NULL ||
	    zmq_setsockopt(ag->dealer, ZMQ_LINGER, &zero, sizeof(zero)) != 0 ||
	    zmq_setsockopt(ag->dealer, ZMQ_IMMEDIATE, &one, sizeof(one)) != 0 ||
	    zmq_setsockopt(ag->dealer, ZMQ_RECONNECT_IVL, &ivl, sizeof(ivl)) != 0 ||
	    zmq_setsockopt(ag->dealer, ZMQ_RECONNECT_IVL_MAX, &ivl_max,
	    sizeof(ivl_max)) != 0 ||
	    zmq_setsockopt(ag->dealer, ZMQ_HEARTBEAT_IVL, &hb, sizeof(hb)) != 0 ||
	    zmq_setsockopt(ag->dealer, ZMQ_HEARTBEAT_TIMEOUT, &hbt,
	    sizeof(hbt)) != 0 ||
	    zmq_setsockopt(ag->dealer, ZMQ_MAXMSGSIZE, &maxmsg,
	    sizeof(maxmsg)) != 0 ||
	    zmq_setsockopt(ag->dealer, ZMQ_CURVE_SERVERKEY, ag->broker_curve,
	    EHX_KEY_LEN) != 0 ||
	    zmq_setsockopt(ag->dealer, ZMQ_CURVE_PUBLICKEY, ag->curve_pub,
	    EHX_KEY_LEN) != 0 ||
	    zmq_setsockopt(ag->dealer, ZMQ_CURVE_SECRETKEY, ag->curve_secret,
	    EHX_KEY_LEN) != 0 ||
	    zmq_connect(ag->dealer, ag->cfg.broker) != 0) {
		snprintf(err, errsz, "cannot connect to %s: %s", ag->cfg.broker,
		    zmq_strerror(zmq_errno()));
		r = EHX_ERR_SYSTEM;
	}
	/* libzmq keeps its own copy; ours is not needed again. */
	OPENSSL_cleanse(ag->curve_secret, sizeof(ag->curve_secret));
	/* Hear at once when the connection drops or comes back. */
	if (r == 0 && (zmq_socket_monitor(ag->dealer, "inproc://ehx-monitor",
	    ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
	    ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) != 0 ||
	    (ag->monitor = zmq_socket(ag->zctx, ZMQ_PAIR)) == NULL ||
	    zmq_connect(ag->monitor, "inproc://ehx-monitor") != 0)) {
		snprintf(err, errsz, "cannot watch the connection: %s",
		    zmq_strerror(zmq_errno()));
		r = EHX_ERR_SYSTEM;
	}
	return r;
}

/* One event from the connection monitor (two frames: event, address). */
static void
monitor_event(struct agent *ag, int64_t now)
{
	unsigned char ev[6];
	char addr[256];
	int n, more = 0;
	size_t sz = sizeof(more);
	uint16_t e;

	if ((n = zmq_recv(ag->monitor, ev, sizeof(ev), ZMQ_DONTWAIT)) < 0)
		return;
	zmq_getsockopt(ag->monitor, ZMQ_RCVMORE, &more, &sz);
	if (more)
		zmq_recv(ag->monitor, addr, sizeof(addr), 0);
	if (n < 2)
		return;
	memcpy(&e, ev, sizeof(e));
	if (e == ZMQ_EVENT_DISCONNECTED) {
		watch_disconnected(&ag->watch);
		if (!ag->queue.key_refused)     /* said once already */
			log_info("the connection to the broker dropped");
		queue_connection(&ag->queue, false, now);
	} else if (e == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
		log_info("connected to the broker");
		queue_connection(&ag->queue, true, now);
	} else if (e == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
		uint32_t status = 0;

		if (n >= 6)
			memcpy(&status, ev + 2, sizeof(status));
		/* libzmq tries again by itself; said once until it works. */
		if (queue_key_refused(&ag->queue, (int)status))
			log_error("%s; retrying until it is",
			    ag->queue.last_error);
	}
}

/* ---- the local socket --------------------------------------------------- */

static int
open_listener(struct agent *ag, char *err, size_t errsz)
{
	struct sockaddr_un sa;
	struct stat st;
	mode_t old;
	int fd, r;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(ag->cfg.socket) >= sizeof(sa.sun_path)) {
		snprintf(err, errsz, "%s: socket path too long", ag->cfg.socket);
		return EHX_ERR_CONFIG;
	}
	memcpy(sa.sun_path, ag->cfg.socket, strlen(ag->cfg.socket) + 1);
	if (lstat(ag->cfg.socket, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errsz, "%s exists and is not a socket",
			    ag->cfg.socket);
			return EHX_ERR_CONFIG;
		}
		unlink(ag->cfg.socket);
	}
	if ((fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) < 0)
		goto sys;
	old = umask(0777 & ~(mode_t)ag->cfg.socket_mode);
	r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r != 0 || chmod(ag->cfg.socket, (mode_t)ag->cfg.socket_mode) != 0)
		goto sys;
	if (ag->cfg.socket_group[0] != '\0') {
		struct group *g = getgrnam(ag->cfg.socket_group);

		if (g == NULL || chown(ag->cfg.socket, (uid_t)-1, g->gr_gid) != 0) {
			snprintf(err, errsz, "%s: cannot give the socket to group "
			    "%s", ag->cfg.socket, ag->cfg.socket_group);
			close(fd);
			return EHX_ERR_CONFIG;
		}
	}
	if (listen(fd, 64) != 0)
		goto sys;
	ag->listen_fd = fd;
	return 0;
sys:
	snprintf(err, errsz, "%s: %s", ag->cfg.socket, strerror(errno));
	if (fd >= 0)
		close(fd);
	return EHX_ERR_SYSTEM;
}

static void
slot_free(struct slot *s)
{
	if (s->fd >= 0)
		close(s->fd);
	free(s->env);
	memset(s, 0, sizeof(*s));
	s->fd = -1;
	s->state = SLOT_FREE;
}

/* Send lr (with the watch's warning, if any) to the caller. */
static void
send_lr(struct slot *s, Ehx__LocalReply *lr)
{
	unsigned char *buf;
	size_t n;

	if (the_watch != NULL && watch_warning(the_watch) != NULL)
		lr->warning = (char *)watch_warning(the_watch);
	n = ehx__local_reply__get_packed_size(lr);
	if ((buf = malloc(n)) == NULL)
		return;
	ehx__local_reply__pack(lr, buf);
	if (send(s->fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		log_warn("could not answer a local caller: %s", strerror(errno));
	free(buf);
}

static void
send_local(struct slot *s, const Ehx__Body *reply, bool from_agent)
{
	Ehx__LocalReply lr = EHX__LOCAL_REPLY__INIT;

	lr.reply = (Ehx__Body *)reply;
	lr.from_agent = from_agent;
	send_lr(s, &lr);
}

/* Tell a caller where its queued change stands, and free the slot. */
static void
send_queued(struct slot *s, const Ehx__Body *reply, bool still)
{
	Ehx__LocalReply lr = EHX__LOCAL_REPLY__INIT;
	Ehx__Queued qd = EHX__QUEUED__INIT;
	ProtobufCBinaryData id = { EHX_MSGID_LEN, s->id };

	qd.message_ids = &id;
	qd.n_message_ids = 1;
	qd.first = qd.last = s->num;
	qd.still_queued = still;
	lr.queued = &qd;
	lr.reply = (Ehx__Body *)reply;
	lr.from_agent = reply == NULL;
	send_lr(s, &lr);
	slot_free(s);
}

/* Answer the caller with the agent's own error and free the slot. */
static void
fail_local(struct agent *ag, struct slot *s, int code, const char *why)
{
	Ehx__Body b = EHX__BODY__INIT;
	Ehx__Error e = EHX__ERROR__INIT;

	b.sender = ag->cfg.agency;
	b.recipient = ag->cfg.agency;
	b.sent_at = ehx_now_ms();
	if (s->state == SLOT_WAITING || s->state == SLOT_QUEUED) {
		b.in_reply_to.data = s->id;
		b.in_reply_to.len = EHX_MSGID_LEN;
	}
	e.code = (Ehx__ErrorCode)ehx_err_to_wire(code);
	e.message = (char *)(why != NULL ? why : ehx_strerror(code));
	b.payload_case = EHX__BODY__PAYLOAD_ERROR;
	b.error = &e;
	send_local(s, &b, true);
	slot_free(s);
}

static void
try_send(struct agent *ag, struct slot *s, int64_t now)
{
	if (zmq_send(ag->dealer, s->env, s->envlen, ZMQ_DONTWAIT) >= 0) {
		s->sent = true;
		s->next_send = now + RESEND_MS;
	} else
		s->next_send = now + RETRY_UNSENT_MS;
}

/* The caller's account, from the kernel's record of who connected. */
static int
peer_account(int fd, char *out, size_t outsz)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct passwd pw, *res = NULL;
	char buf[4096];

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
	    getpwuid_r(cred.uid, &pw, buf, sizeof(buf), &res) != 0 ||
	    res == NULL) {
		snprintf(out, outsz, "uid %ld", (long)cred.uid);
		return -1;
	}
	snprintf(out, outsz, "%s", pw.pw_name);
	return 0;
}

static void send_state(struct agent *ag, struct slot *s);

/* What local callers may ask the broker (not the agent's own requests). */
static bool
local_payload(int c)
{
	return ehx_payload_is_request(c) &&
	    c != EHX__BODY__PAYLOAD_QUERY_PROOF &&
	    c != EHX__BODY__PAYLOAD_COSIGN_CHECKPOINT &&
	    c != EHX__BODY__PAYLOAD_FETCH_NOTIFICATIONS;
}

/* Changes go through the outbox. */
static bool
is_change(int c)
{
	return c == EHX__BODY__PAYLOAD_PUBLISH_FLAG ||
	    c == EHX__BODY__PAYLOAD_CLOSE_FLAG ||
	    c == EHX__BODY__PAYLOAD_RECORD_CONSENT ||
	    c == EHX__BODY__PAYLOAD_WITHDRAW_CONSENT ||
	    c == EHX__BODY__PAYLOAD_RECORD_INVOLVEMENT;
}

/* Commit one checked change to the outbox; answer now, or on its decision. */
static void
queue_one(struct agent *ag, struct slot *s, const Ehx__LocalRequest *lr,
    Ehx__Body *body, const struct user *u, int64_t now)
{
	unsigned char ids[1][EHX_MSGID_LEN];
	char hex[2 * EHX_MSGID_LEN + 1];
	uint64_t first;
	int r;

	if ((r = queue_put(&ag->queue, &body, 1, ids, &first, now)) != 0) {
		fail_local(ag, s, r == EHX_ERR_STORAGE_FULL ? r :
		    EHX_ERR_INTERNAL, r == EHX_ERR_STORAGE_FULL ? "the agent's "
		    "outbox is full (outbox_max changes not yet delivered, or "
		    "its store); nothing was queued" : "the agent could not "
		    "store the request; nothing was queued");
		return;
	}
	memcpy(s->id, ids[0], EHX_MSGID_LEN);
	s->num = first;
	log_info("msg %s: %s by %s (%s) queued as outbox %llu",
	    ehx_hex(hex, s->id, EHX_MSGID_LEN),
	    ehx_payload_name(body->payload_case), u->user_id,
	    ehx_role_name(body->person->role), (unsigned long long)first);
	if (!lr->wait) {
		send_queued(s, NULL, false);
		return;
	}
	s->state = SLOT_QUEUED;
	s->deadline = now + (lr->timeout_ms > 0 && lr->timeout_ms <= 3600000 ?
	    (int64_t)lr->timeout_ms : ag->cfg.timeout_ms);
}

/*
 * The role the caller asks for (--as, else the users file's default): the
 * role, or -1 when the users file does not grant it (the caller answered).
 */
static int
caller_role(struct agent *ag, struct slot *s, const Ehx__LocalRequest *lr,
    const struct user *u, const char *account)
{
	int role = lr->as_role != 0 ? (int)lr->as_role : u->default_role;
	char why[160];

	if (role <= 0 || role > EHX__ROLE__ROLE_ADMIN ||
	    (u->roles & (1u << role)) == 0) {
		snprintf(why, sizeof(why), "the users file does not grant %s "
		    "the role %s", account, ehx_role_name(role));
		fail_local(ag, s, EHX_ERR_NOT_PERMITTED, why);
		return -1;
	}
	return role;
}

/* An import's batch: every change checked, then all queued in one commit. */
static void
queue_batch(struct agent *ag, struct slot *s, const Ehx__LocalRequest *lr,
    const struct user *u, const char *account, int64_t now)
{
	Ehx__Person person = EHX__PERSON__INIT;
	Ehx__Body *bodies[QUEUE_BATCH], *fresh;
	unsigned char ids[QUEUE_BATCH][EHX_MSGID_LEN];
	ProtobufCBinaryData pids[QUEUE_BATCH];
	Ehx__LocalReply rep = EHX__LOCAL_REPLY__INIT;
	Ehx__Queued qd = EHX__QUEUED__INIT;
	char why[300], inner[256];
	uint64_t first;
	int role, r;

	if ((role = caller_role(ag, s, lr, u, account)) < 0)
		return;
	if (lr->n_batch > QUEUE_BATCH) {
		fail_local(ag, s, EHX_ERR_TOO_LARGE, "a batch holds at most "
		    "256 changes");
		return;
	}
	person.user_id = (char *)u->user_id;
	person.name = (char *)u->name;
	person.role = (Ehx__Role)role;
	if ((fresh = calloc(lr->n_batch, sizeof(*fresh))) == NULL) {
		fail_local(ag, s, EHX_ERR_INTERNAL, NULL);
		return;
	}
	for (size_t i = 0; i < lr->n_batch; i++) {
		Ehx__Body *b = lr->batch[i];

		if (b == NULL || !is_change(b->payload_case)) {
			snprintf(why, sizeof(why), "batch item %zu is not a "
			    "change (publish, close, consent)", i + 1);
			fail_local(ag, s, EHX_ERR_MALFORMED, why);
			free(fresh);
			return;
		}
		if ((ehx_payload_roles(b->payload_case) & (1u << role)) == 0) {
			snprintf(why, sizeof(why), "the role %s may not ask for "
			    "%s (PROTOCOL.md §6.1)", ehx_role_name(role),
			    ehx_payload_name(b->payload_case));
			fail_local(ag, s, EHX_ERR_NOT_PERMITTED, why);
			free(fresh);
			return;
		}
		if ((r = ehx_validate_request(b, now, inner,
		    sizeof(inner))) != 0) {
			snprintf(why, sizeof(why), "batch item %zu: %s", i + 1,
			    inner);
			fail_local(ag, s, r, why);
			free(fresh);
			return;
		}
		/* Only the payload is the caller's; the agent fills the rest. */
		ehx__body__init(&fresh[i]);
		fresh[i].sender = ag->cfg.agency;
		fresh[i].recipient = ag->cfg.broker_id;
		fresh[i].sent_at = now;
		fresh[i].person = &person;
		fresh[i].payload_case = b->payload_case;
		fresh[i].publish_flag = b->publish_flag;
		bodies[i] = &fresh[i];
	}
	r = queue_put(&ag->queue, bodies, lr->n_batch, ids, &first, now);
	free(fresh);
	if (r != 0) {
		fail_local(ag, s, r == EHX_ERR_STORAGE_FULL ? r :
		    EHX_ERR_INTERNAL, r == EHX_ERR_STORAGE_FULL ? "the agent's "
		    "outbox is full (outbox_max changes not yet delivered, or "
		    "its store); nothing of the batch was queued" : "the agent "
		    "could not store the batch; nothing was queued");
		return;
	}
	for (size_t i = 0; i < lr->n_batch; i++) {
		pids[i].data = ids[i];
		pids[i].len = EHX_MSGID_LEN;
	}
	log_info("%zu changes by %s (%s) queued as outbox %llu..%llu",
	    lr->n_batch, u->user_id, ehx_role_name(role),
	    (unsigned long long)first,
	    (unsigned long long)(first + lr->n_batch - 1));
	qd.message_ids = pids;
	qd.n_message_ids = lr->n_batch;
	qd.first = first;
	qd.last = first + lr->n_batch - 1;
	rep.queued = &qd;
	rep.from_agent = true;
	send_lr(s, &rep);
	slot_free(s);
}

/* The roles that may read and acknowledge the inbox: notifications name
 * children and other agencies' involvement with them. */
#define INBOX_ROLES (1u << EHX__ROLE__ROLE_SYSTEM | \
	1u << EHX__ROLE__ROLE_PRACTITIONER | \
	1u << EHX__ROLE__ROLE_INFORMATION_OFFICER)

/*
 * ehx status, the progress of an import (any account in the users file:
 * counts and outbox numbers, nothing about a child), ehx inbox (the roles
 * above, each read and acknowledgement logged).
 */
static void
local_agent_query(struct agent *ag, struct slot *s,
    const Ehx__LocalRequest *lr, const struct user *u, const char *account,
    int64_t now)
{
	Ehx__LocalReply rep = EHX__LOCAL_REPLY__INIT;
	Ehx__AgentStatus st;
	Ehx__OutboxReport or;
	Ehx__InboxList il;
	char why[256];
	int role, r;

	rep.from_agent = true;
	if (lr->inbox != NULL) {
		if ((role = caller_role(ag, s, lr, u, account)) < 0)
			return;
		if ((INBOX_ROLES & (1u << role)) == 0) {
			log_warn("inbox refused to %s (%s) as %s", u->user_id,
			    account, ehx_role_name(role));
			snprintf(why, sizeof(why), "the inbox is for the roles "
			    "system, practitioner and information_officer, "
			    "not %s", ehx_role_name(role));
			fail_local(ag, s, EHX_ERR_NOT_PERMITTED, why);
			return;
		}
		if (lr->inbox->op == EHX__INBOX_REQUEST__OP__OP_LIST)
			log_info("inbox listed by %s (%s) as %s", u->user_id,
			    account, ehx_role_name(role));
		else
			log_info("inbox %llu %s by %s (%s) as %s",
			    (unsigned long long)lr->inbox->seq,
			    lr->inbox->op == EHX__INBOX_REQUEST__OP__OP_ACK ?
			    "acknowledged" : "shown", u->user_id, account,
			    ehx_role_name(role));
	}
	if (lr->status) {
		if ((r = queue_status(&ag->queue, now, &st)) != 0) {
			queue_status_free(&st);
			fail_local(ag, s, EHX_ERR_INTERNAL, NULL);
			return;
		}
		rep.status = &st;
		send_lr(s, &rep);
		queue_status_free(&st);
	} else if (lr->outbox != NULL) {
		if ((r = queue_report(&ag->queue, lr->outbox->first,
		    lr->outbox->last, &or)) != 0) {
			queue_report_free(&or);
			fail_local(ag, s, r, "an outbox range is first..last, "
			    "from 1");
			return;
		}
		rep.report = &or;
		send_lr(s, &rep);
		queue_report_free(&or);
	} else {
		if ((r = queue_inbox(&ag->queue, lr->inbox, now, &il)) != 0) {
			queue_inbox_free(&il);
			fail_local(ag, s, r, r == EHX_ERR_NOT_FOUND ? "no such "
			    "notification in this agent's inbox" : r ==
			    EHX_ERR_INVALID_FIELD ? "limit must be 1..1000" :
			    NULL);
			return;
		}
		rep.inbox = &il;
		send_lr(s, &rep);
		queue_inbox_free(&il);
	}
	slot_free(s);
}

/* The outbox decided num: answer a caller waiting for it. */
static void
on_decided(void *arg, uint64_t num, const Ehx__Body *reply)
{
	struct agent *ag = arg;

	for (size_t i = 0; i < MAX_CLIENTS; i++)
		if (ag->slots[i].state == SLOT_QUEUED &&
		    ag->slots[i].num == num) {
			send_queued(&ag->slots[i], reply, false);
			break;
		}
}

static void
read_request(struct agent *ag, struct slot *s, int64_t now)
{
	unsigned char buf[LOCAL_MAX];
	Ehx__LocalRequest *lr = NULL;
	Ehx__Body *in;
	Ehx__Body body = EHX__BODY__INIT;
	Ehx__Person person = EHX__PERSON__INIT;
	const struct user *u;
	char account[64], why[256];
	ssize_t n;
	int role, r;

	n = recv(s->fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		slot_free(s);
		return;
	}
	if ((size_t)n > sizeof(buf)) {
		fail_local(ag, s, EHX_ERR_TOO_LARGE, NULL);
		return;
	}
	if (s->console_account[0] != '\0')
		snprintf(account, sizeof(account), "%s", s->console_account);
	if ((s->console_account[0] == '\0' &&
	    peer_account(s->fd, account, sizeof(account)) != 0) ||
	    (u = users_find(&ag->users, account)) == NULL) {
		log_warn("local request from %s refused: not in the users file",
		    account);
		snprintf(why, sizeof(why), "the account %s is not in this "
		    "agent's users file", account);
		fail_local(ag, s, EHX_ERR_NOT_PERMITTED, why);
		return;
	}
	if ((lr = ehx__local_request__unpack(NULL, (size_t)n, buf)) != NULL &&
	    lr->agent_state && !ehx_message_has_unknown(&lr->base)) {
		/* The audit log's checkpoint (its size, and so how it grows)
		 * is for those who watch the log: IG officers and
		 * administrators (issue 16). */
		if ((role = caller_role(ag, s, lr, u, account)) < 0)
			goto out;
		if (role != EHX__ROLE__ROLE_IG_OFFICER &&
		    role != EHX__ROLE__ROLE_ADMIN) {
			snprintf(why, sizeof(why), "this agent's check of the "
			    "audit log is for the ig_officer and admin roles, "
			    "not %s", ehx_role_name(role));
			fail_local(ag, s, EHX_ERR_NOT_PERMITTED, why);
			goto out;
		}
		send_state(ag, s);
		goto out;
	}
	if (lr != NULL && !ehx_message_has_unknown(&lr->base) &&
	    (lr->status || lr->outbox != NULL || lr->inbox != NULL)) {
		local_agent_query(ag, s, lr, u, account, now);
		goto out;
	}
	if (lr != NULL && lr->n_batch > 0 && lr->body == NULL &&
	    !ehx_message_has_unknown(&lr->base)) {
		queue_batch(ag, s, lr, u, account, now);
		goto out;
	}
	if (lr == NULL ||
	    (in = lr->body) == NULL || !local_payload(in->payload_case) ||
	    ehx_message_has_unknown(&lr->base)) {
		fail_local(ag, s, EHX_ERR_MALFORMED, "the local request is not "
		    "a well-formed request");
		goto out;
	}
	if ((role = caller_role(ag, s, lr, u, account)) < 0)
		goto out;
	/* A request the broker would refuse the role for is not queued or
	 * sent (the broker decides by the same table). */
	if ((ehx_payload_roles(in->payload_case) & (1u << role)) == 0) {
		snprintf(why, sizeof(why), "the role %s may not ask for %s "
		    "(PROTOCOL.md §6.1)", ehx_role_name(role),
		    ehx_payload_name(in->payload_case));
		fail_local(ag, s, EHX_ERR_NOT_PERMITTED, why);
		goto out;
	}
	if ((r = ehx_validate_request(in, now, why, sizeof(why))) != 0) {
		fail_local(ag, s, r, why);
		goto out;
	}
	if (in->payload_case == EHX__BODY__PAYLOAD_QUERY_EARLY_HELP_LIST &&
	    u->locality[0] != '\0' &&
	    strcmp(in->query_early_help_list->locality, u->locality) != 0) {
		snprintf(why, sizeof(why), "the users file gives %s the "
		    "locality %s only", account, u->locality);
		fail_local(ag, s, EHX_ERR_NOT_PERMITTED, why);
		goto out;
	}
	person.user_id = (char *)u->user_id;
	person.name = (char *)u->name;
	person.role = (Ehx__Role)role;
	if (ehx_message_id(s->id) != 0) {
		fail_local(ag, s, EHX_ERR_INTERNAL, NULL);
		goto out;
	}
	body.message_id.data = s->id;
	body.message_id.len = sizeof(s->id);
	body.sender = ag->cfg.agency;
	body.recipient = ag->cfg.broker_id;
	body.sent_at = now;
	body.person = &person;
	body.payload_case = in->payload_case;
	/* Every payload member shares the union: copy the one pointer. */
	body.publish_flag = in->publish_flag;
	if (is_change(in->payload_case)) {
		queue_one(ag, s, lr, &body, u, now);
		goto out;
	}
	if ((r = ehx_envelope_seal(ag->signer, &body, &s->env,
	    &s->envlen)) != 0) {
		fail_local(ag, s, r == EHX_ERR_TOO_LARGE ? r : EHX_ERR_INTERNAL,
		    NULL);
		goto out;
	}
	s->state = SLOT_WAITING;
	s->deadline = now + ag->cfg.timeout_ms;
	{
		char hex[2 * EHX_MSGID_LEN + 1];

		log_info("msg %s: %s by %s (%s) sent", ehx_hex(hex, s->id,
		    EHX_MSGID_LEN), ehx_payload_name(in->payload_case),
		    u->user_id, ehx_role_name(role));
	}
	try_send(ag, s, now);
out:
	if (lr != NULL)
		ehx__local_request__free_unpacked(lr, NULL);
}

/* Answer a caller asking about the agent itself, and free the slot. */
static void
send_state(struct agent *ag, struct slot *s)
{
	Ehx__LocalReply lr = EHX__LOCAL_REPLY__INIT;
	unsigned char *buf;
	size_t n;

	lr.from_agent = true;
	lr.state = ag->watch.state;
	if (watch_warning(&ag->watch) != NULL)
		lr.warning = (char *)watch_warning(&ag->watch);
	n = ehx__local_reply__get_packed_size(&lr);
	if ((buf = malloc(n)) != NULL) {
		ehx__local_reply__pack(&lr, buf);
		if (send(s->fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
			log_warn("could not answer a local caller: %s",
			    strerror(errno));
		free(buf);
	}
	slot_free(s);
}

/* Requests from the web console, each on its own socket pair. */
static void
accept_console(struct agent *ag, int64_t now)
{
	char account[EHX_MAX_ACCOUNT + 1];
	int fd;

	while (console_bridge_take(ag->console, &fd, account) == 0) {
		struct slot *s = NULL;

		for (size_t i = 0; i < MAX_CLIENTS && s == NULL; i++)
			if (ag->slots[i].state == SLOT_FREE)
				s = &ag->slots[i];
		if (s == NULL) {
			log_warn("too many local callers; refusing one from "
			    "the console");
			close(fd);
			continue;
		}
		s->state = SLOT_READING;
		s->fd = fd;
		s->deadline = now + READ_TIMEOUT_MS;
		snprintf(s->console_account, sizeof(s->console_account), "%s",
		    account);
	}
}

static void
accept_clients(struct agent *ag, int64_t now)
{
	int fd, buf = 256 * 1024;

	while ((fd = accept4(ag->listen_fd, NULL, NULL,
	    SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		struct slot *s = NULL;

		for (size_t i = 0; i < MAX_CLIENTS && s == NULL; i++)
			if (ag->slots[i].state == SLOT_FREE)
				s = &ag->slots[i];
		if (s == NULL) {
			log_warn("too many local callers; refusing one");
			close(fd);
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
		s->state = SLOT_READING;
		s->fd = fd;
		s->deadline = now + READ_TIMEOUT_MS;
	}
}

/* A reply to one of this agency's requests: the watch may keep its
 * decision to check that the audit log holds it. */
static void
note_decision(struct agent *ag, const Ehx__Body *b, int64_t now)
{
	unsigned char hash[32];
	const unsigned char *h = NULL;
	bool glass = b->payload_case == EHX__BODY__PAYLOAD_PICTURE &&
	    b->picture != NULL && strcmp(b->picture->basis, "break-glass") == 0;

	if (b->in_reply_to.len != EHX_MSGID_LEN)
		return;
	for (size_t i = 0; i < MAX_CLIENTS && h == NULL && b->audit_seq != 0;
	    i++)
		if (ag->slots[i].state == SLOT_WAITING && ag->slots[i].env !=
		    NULL && memcmp(ag->slots[i].id, b->in_reply_to.data,
		    EHX_MSGID_LEN) == 0) {
			ehx_sha256(ag->slots[i].env, ag->slots[i].envlen, hash);
			h = hash;
		}
	watch_decision(&ag->watch, b, h, glass, now);
}

/* Read and check one message from the broker. */
static void
broker_reply(struct agent *ag)
{
	zmq_msg_t m;
	Ehx__Body *b = NULL;
	struct slot *s = NULL;
	unsigned char *copy = NULL;
	size_t copylen;
	char hex[2 * EHX_MSGID_LEN + 1];
	int64_t now;

	zmq_msg_init(&m);
	if (zmq_msg_recv(&m, ag->dealer, ZMQ_DONTWAIT) < 0)
		goto out;
	if (zmq_msg_more(&m)) {
		int more = 1;
		size_t sz = sizeof(more);

		log_warn("multi-frame reply from the broker dropped");
		while (more) {
			zmq_msg_close(&m);
			zmq_msg_init(&m);
			zmq_msg_recv(&m, ag->dealer, 0);
			zmq_getsockopt(ag->dealer, ZMQ_RCVMORE, &more, &sz);
		}
		goto out;
	}
	if (queue_open_envelope(&ag->queue, zmq_msg_data(&m), zmq_msg_size(&m),
	    NULL, &b) != 0)
		goto out;
	now = ehx_now_ms();
	watch_answered(&ag->watch, now);
	if (b->checkpoint != NULL)
		watch_seen(&ag->watch, b->checkpoint, now);
	if (b->in_reply_to.len == EHX_MSGID_LEN && watch_reply(&ag->watch, b,
	    now))
		goto out;
	note_decision(ag, b, now);
	copylen = zmq_msg_size(&m);
	if ((copy = malloc(copylen)) == NULL)
		goto out;
	memcpy(copy, zmq_msg_data(&m), copylen);
	if (queue_reply(&ag->queue, &b, &copy, &copylen, now))
		goto out;
	if (b->in_reply_to.len != EHX_MSGID_LEN) {
		log_warn("reply dropped: it names no request");
		goto out;
	}
	for (size_t i = 0; i < MAX_CLIENTS && s == NULL; i++)
		if (ag->slots[i].state == SLOT_WAITING &&
		    memcmp(ag->slots[i].id, b->in_reply_to.data,
		    EHX_MSGID_LEN) == 0)
			s = &ag->slots[i];
	ehx_hex(hex, b->in_reply_to.data, EHX_MSGID_LEN);
	if (s == NULL) {
		log_debug("reply to %s: no request waits for it", hex);
		goto out;
	}
	if (b->payload_case == EHX__BODY__PAYLOAD_ERROR && b->error != NULL)
		log_info("msg %s: refused: %s", hex,
		    ehx_errname(ehx_err_from_wire(b->error->code)));
	else
		log_info("msg %s: %s", hex, ehx_payload_name(b->payload_case));
	send_local(s, b, false);
	slot_free(s);
out:
	free(copy);
	ehx_body_free(b);
	zmq_msg_close(&m);
}

static int
serve(struct agent *ag)
{
	zmq_pollitem_t items[4 + MAX_CLIENTS];
	struct slot *polled[MAX_CLIENTS];

	while (!stopping) {
		int64_t now = ehx_now_ms(), next = now + 1000;
		size_t n = 4, np = 0;
		long timeout;

		if (reload) {
			struct users fresh;
			char err[512];

			reload = 0;
			if (users_load(ag->cfg.users, &fresh, err,
			    sizeof(err)) != 0)
				log_error("users file not reloaded: %s", err);
			else {
				pthread_rwlock_wrlock(&ag->users_lock);
				users_free(&ag->users);
				ag->users = fresh;
				pthread_rwlock_unlock(&ag->users_lock);
				log_info("users file reloaded: %zu accounts",
				    fresh.n);
			}
			/* A renewed console certificate, without signing
			 * anyone out. */
			if (ag->console != NULL && ag->cfg.console.certificate[0]
			    != '\0') {
				if (console_reload_tls(ag->console, err,
				    sizeof(err)) != 0)
					log_error("console certificate not "
					    "reloaded: %s", err);
				else
					log_info("console certificate and key "
					    "reloaded");
			}
		}
		for (size_t i = 0; i < MAX_CLIENTS; i++) {
			struct slot *s = &ag->slots[i];

			if (s->state == SLOT_FREE)
				continue;
			if (now >= s->deadline) {
				if (s->state == SLOT_READING)
					slot_free(s);
				else if (s->state == SLOT_QUEUED)
					send_queued(s, NULL, true);
				else
					fail_local(ag, s, s->sent ?
					    EHX_ERR_TIMEOUT : EHX_ERR_UNAVAILABLE,
					    s->sent ? "the broker did not answer "
					    "in time; the request may or may not "
					    "have taken effect: check (ehx "
					    "picture, ehx consent show) before "
					    "repeating it" : "the broker cannot "
					    "be reached; nothing was sent");
				continue;
			}
			if (s->state == SLOT_WAITING && now >= s->next_send)
				try_send(ag, s, now);
			if (s->state == SLOT_READING) {
				items[n].socket = NULL;
				items[n].fd = s->fd;
				items[n].events = ZMQ_POLLIN;
				items[n].revents = 0;
				polled[np++] = s;
				n++;
			}
			if (s->deadline < next)
				next = s->deadline;
			if (s->state == SLOT_WAITING && s->next_send < next)
				next = s->next_send;
		}
		watch_tick(&ag->watch, ag->dealer, now, &next);
		queue_tick(&ag->queue, ag->dealer, now, &next);
		items[0] = (zmq_pollitem_t){ ag->dealer, 0, ZMQ_POLLIN, 0 };
		items[1] = (zmq_pollitem_t){ NULL, ag->listen_fd, ZMQ_POLLIN, 0 };
		items[2] = (zmq_pollitem_t){ ag->monitor, 0, ZMQ_POLLIN, 0 };
		items[3] = (zmq_pollitem_t){ NULL, ag->console != NULL ?
		    console_bridge_fd(ag->console) : -1, ZMQ_POLLIN, 0 };
		timeout = next > now ? (long)(next - now) : 0;
		if (zmq_poll(items, (int)n, timeout) < 0) {
			if (zmq_errno() == EINTR)
				continue;
			log_error("poll: %s", zmq_strerror(zmq_errno()));
			return EHX_ERR_SYSTEM;
		}
		now = ehx_now_ms();
		if (items[0].revents & ZMQ_POLLIN)
			for (int i = 0; i < 64; i++) {
				int ev = 0;
				size_t sz = sizeof(ev);

				broker_reply(ag);
				if (zmq_getsockopt(ag->dealer, ZMQ_EVENTS, &ev,
				    &sz) != 0 || !(ev & ZMQ_POLLIN))
					break;
			}
		queue_flush(&ag->queue, now);
		if (items[2].revents & ZMQ_POLLIN)
			for (int i = 0; i < 16; i++)
				monitor_event(ag, now);
		for (size_t i = 0; i < np; i++)
			if (items[4 + i].revents & (ZMQ_POLLIN | ZMQ_POLLERR))
				read_request(ag, polled[i], now);
		if (items[1].revents & ZMQ_POLLIN)
			accept_clients(ag, now);
		if (items[3].revents & ZMQ_POLLIN)
			accept_console(ag, now);
	}
	return 0;
}

static void
agent_free(struct agent *ag)
{
	console_drain(ag->console);
	for (size_t i = 0; i < MAX_CLIENTS; i++)
		if (ag->slots[i].state != SLOT_FREE)
			slot_free(&ag->slots[i]);
	console_close(ag->console);
	ag->console = NULL;
	if (ag->listen_fd >= 0) {
		close(ag->listen_fd);
		unlink(ag->cfg.socket);
	}
	if (ag->monitor != NULL)
		zmq_close(ag->monitor);
	if (ag->dealer != NULL)
		zmq_close(ag->dealer);
	if (ag->zctx != NULL)
		zmq_ctx_term(ag->zctx);
	users_free(&ag->users);
	watch_free(&ag->watch);
	queue_close(&ag->queue);
	free(ag->hook_words);
	OPENSSL_cleanse(ag->curve_secret, sizeof(ag->curve_secret));
	ehx_signer_free(ag->signer);
	ehx_cert_free(ag->broker_cert);
	ehx_ca_free(ag->ca);
}

/* Split the hook's command line on spaces (no shell, no quoting). */
static int
hook_split(struct agent *ag, char *err, size_t errsz)
{
	char *w, *save = NULL;
	size_t n = 0;

	if (ag->cfg.hook[0] == '\0')
		return 0;
	if ((ag->hook_words = strdup(ag->cfg.hook)) == NULL)
		return EHX_ERR_NOMEM;
	for (w = strtok_r(ag->hook_words, " \t", &save); w != NULL;
	    w = strtok_r(NULL, " \t", &save)) {
		if (n == QUEUE_HOOK_ARGS) {
			snprintf(err, errsz, "%s: hook: at most %d words",
			    ag->cfg.file, QUEUE_HOOK_ARGS);
			return EHX_ERR_CONFIG;
		}
		ag->queue.hook_argv[n++] = w;
	}
	ag->queue.hook_argv[n] = NULL;
	if (access(ag->queue.hook_argv[0], X_OK) != 0) {
		snprintf(err, errsz, "%s: hook: %s is not an executable program",
		    ag->cfg.file, ag->queue.hook_argv[0]);
		return EHX_ERR_CONFIG;
	}
	return 0;
}

/*
 * The spool's tmp/, new/ and cur/ (maildir), made private when missing.
 * Notifications name children: nothing of the spool may be open to
 * others; tmp/ is the agent's alone; the spool, new/ and cur/ may be
 * shared with the case system's group (to read, move and delete), and
 * then the files are made group-readable (*file_mode 0640, else 0600).
 */
static int
spool_setup(const char *dir, uid_t owner, mode_t *file_mode, char *err,
    size_t errsz)
{
	static const char *const sub[] = { "", "/tmp", "/new", "/cur" };
	char p[PATH_MAX_ + 8];
	struct stat st;

	*file_mode = 0600;
	for (size_t i = 0; i < 4; i++) {
		mode_t closed = i == 1 ? 0077 : 0007;

		snprintf(p, sizeof(p), "%s%s", dir, sub[i]);
		if (mkdir(p, 0700) != 0 && errno != EEXIST) {
			snprintf(err, errsz, "%s: %s", p, strerror(errno));
			return EHX_ERR_CONFIG;
		}
		if (lstat(p, &st) != 0 || !S_ISDIR(st.st_mode)) {
			snprintf(err, errsz, "%s: not a directory", p);
			return EHX_ERR_CONFIG;
		}
		if (st.st_uid != owner || (st.st_mode & closed) != 0) {
			snprintf(err, errsz, "%s: must belong to this user and "
			    "be open to %s (mode %03o; chmod %s)", p, i == 1 ?
			    "no one else" : "no one outside its group",
			    (unsigned)(st.st_mode & 0777), i == 1 ? "0700" :
			    "0700, or 0770 for the case system's group");
			return EHX_ERR_CONFIG;
		}
		if (i == 2 && (st.st_mode & S_IRGRP) != 0)
			*file_mode = 0640;
	}
	return 0;
}

/* Set up the outbox and inbox; with check, only their configuration (a
 * running agent holds the store). */
static int
queue_setup(struct agent *ag, bool check, char *err, size_t errsz)
{
	struct queue *q = &ag->queue;
	int r;

	q->agency = ag->cfg.agency;
	q->broker_id = ag->cfg.broker_id;
	q->broker_cert = ag->broker_cert;
	q->signer = ag->signer;
	q->resend_ms = RESEND_OUTBOX_MS;
	q->retry_max_ms = ag->cfg.retry_max_ms;
	q->poll_ms = ag->cfg.poll_ms;
	q->hook_timeout_ms = ag->cfg.hook_timeout_ms;
	q->outbox_max = ag->cfg.outbox_max;
	q->spool = ag->cfg.spool_dir[0] != '\0' ? ag->cfg.spool_dir : NULL;
	q->on_decided = on_decided;
	q->cb_arg = ag;
	if ((r = hook_split(ag, err, errsz)) != 0)
		return r;
	if (q->spool != NULL) {
		/* The agent's own user: after the drop from root, or, for
		 * --check as root, the one it would drop to. */
		uid_t owner = geteuid();
		const struct passwd *pw;

		if (check && owner == 0 && ag->cfg.user[0] != '\0' &&
		    (pw = getpwnam(ag->cfg.user)) != NULL)
			owner = pw->pw_uid;
		if ((r = spool_setup(q->spool, owner, &q->spool_mode, err,
		    errsz)) != 0)
			return r;
	}
	return check ? 0 : queue_open(q, ag->cfg.data_dir, err, errsz);
}

/* One line of standard input, without its line end; shown on a terminal
 * only if asked. Returns its length, or -1. */
static ssize_t
read_secret(const char *prompt, char *buf, size_t size)
{
	struct termios old, quiet;
	bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
	size_t n;

	if (tty) {
		fputs(prompt, stderr);
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	}
	if (fgets(buf, (int)size, stdin) == NULL)
		buf[0] = '\0';
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	n = strcspn(buf, "\r\n");
	if (n == size - 1 && buf[n] != '\n' && !feof(stdin))
		return -1;              /* longer than the buffer */
	buf[n] = '\0';
	return (ssize_t)n;
}

/* ehx-agent --hash-password: print the Argon2id hash of a password. */
static int
hash_password(void)
{
	static char a[EHX_PASSWORD_MAX + 2], b[EHX_PASSWORD_MAX + 2];
	char hash[EHX_PWHASH_MAX + 1];
	ssize_t n, m;
	int r = 1;

	if ((n = read_secret("Password: ", a, sizeof(a))) < 0 ||
	    n < EHX_PASSWORD_MIN || n > EHX_PASSWORD_MAX) {
		fprintf(stderr, "ehx-agent: a password is %d to %d bytes\n",
		    EHX_PASSWORD_MIN, EHX_PASSWORD_MAX);
		goto out;
	}
	if (isatty(STDIN_FILENO) && ((m = read_secret("Again: ", b,
	    sizeof(b))) != n || sodium_memcmp(a, b, (size_t)n) != 0)) {
		fprintf(stderr, "ehx-agent: the two passwords differ\n");
		goto out;
	}
	if (users_hash_password(a, (size_t)n, hash) != 0) {
		fprintf(stderr, "ehx-agent: cannot hash the password (out of "
		    "memory?)\n");
		goto out;
	}
	printf("password = %s\n", hash);
	r = 0;
out:
	OPENSSL_cleanse(a, sizeof(a));
	OPENSSL_cleanse(b, sizeof(b));
	return r;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "hash-password", no_argument, NULL, 'H' },
		{ NULL, 0, NULL, 0 },
	};
	static struct agent ag;
	struct sigaction sa;
	const char *conf = DEFAULT_CONFIG;
	char err[512];
	bool check = false;
	int c, status = 1;

	/*
	 * Before any other OpenSSL call: the agent never prints OpenSSL's error
	 * queue and looks up no cipher or digest by name, so OpenSSL need not
	 * load every error string and register every legacy algorithm name:
	 * pages and heap that would stay resident for the agent's life
	 * (measured: idle VmRSS 0.25-0.3 MiB lower).
	 */
	OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CRYPTO_STRINGS |
	    OPENSSL_INIT_NO_ADD_ALL_CIPHERS | OPENSSL_INIT_NO_ADD_ALL_DIGESTS,
	    NULL);
	ag.listen_fd = -1;
	ag.queue.lock_fd = -1;
	ag.queue.hook_pid = -1;
	for (size_t i = 0; i < MAX_CLIENTS; i++)
		ag.slots[i].fd = -1;
	ehx_log_init("ehx-agent", EHX_LOG_INFO);
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1)
		switch (c) {
		case 'c':
			conf = optarg;
			break;
		case 'k':
			check = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("ehx-agent 0.1 (protocol %d)\n",
			    EHX_PROTOCOL_VERSION);
			return 0;
		case 'H':
			return optind == argc ? hash_password() : (usage(stderr), 2);
		default:
			usage(stderr);
			return 2;
		}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	umask(077);
	pthread_rwlock_init(&ag.users_lock, NULL);
	if (agent_config_load(conf, &ag.cfg, err, sizeof(err)) != 0 ||
	    load_keys(&ag, err, sizeof(err)) != 0 ||
	    users_load(ag.cfg.users, &ag.users, err, sizeof(err)) != 0 ||
	    /* The console's port and TLS key, while still root. */
	    (!check && ag.cfg.console.listen[0] != '\0' &&
	    console_open(&ag.cfg.console, ag.cfg.agency, &ag.console, err,
	    sizeof(err)) != 0) ||
	    /* Keys and users read: the rest as the agent's own user. */
	    ehx_drop_root(ag.cfg.user, check, err, sizeof(err)) != 0 ||
	    watch_open(&ag.watch, ag.cfg.state_file, err, sizeof(err)) != 0) {
		log_error("%s", err);
		goto out;
	}
	ag.watch.agency = ag.cfg.agency;
	ag.watch.broker_id = ag.cfg.broker_id;
	ag.watch.broker_cert = ag.broker_cert;
	ag.watch.signer = ag.signer;
	ag.watch.timeout_ms = ag.cfg.timeout_ms;
	ag.watch.ca = ag.ca;
	ag.watch.poll_ms = ag.cfg.audit_poll_ms;
	ag.watch.deadline_ms = ag.cfg.audit_deadline_ms;
	ag.watch.quorum = (unsigned)ag.cfg.cosign_quorum;
	if (strcmp(ag.watch.state->agency, ag.cfg.agency) != 0) {
		/* Decisions kept to check are one agency's. */
		free(ag.watch.state->agency != protobuf_c_empty_string ?
		    ag.watch.state->agency : NULL);
		ag.watch.state->agency = strdup(ag.cfg.agency);
		for (size_t i = 0; i < ag.watch.state->n_pending; i++)
			ehx__pending_decision__free_unpacked(
			    ag.watch.state->pending[i], NULL);
		ag.watch.state->n_pending = 0;
	}
	the_watch = &ag.watch;
	if (queue_setup(&ag, check, err, sizeof(err)) != 0) {
		log_error("%s", err);
		goto out;
	}
	ehx_log_level_current = ag.cfg.log_level;
	if (check) {
		printf("ehx-agent: %s is valid; agency %s, %zu users\n", conf,
		    ag.cfg.agency, ag.users.n);
		status = 0;
		goto out;
	}
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = on_hup;
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (open_dealer(&ag, err, sizeof(err)) != 0 ||
	    open_listener(&ag, err, sizeof(err)) != 0) {
		log_error("%s", err);
		goto out;
	}
	if (ag.console != NULL && console_start(ag.console, &ag.users,
	    &ag.users_lock, &ag.queue, ag.cfg.timeout_ms, err,
	    sizeof(err)) != 0) {
		log_error("%s", err);
		goto out;
	}
	log_info("agency %s: serving %s, broker %s", ag.cfg.agency,
	    ag.cfg.socket, ag.cfg.broker);
	status = serve(&ag) == 0 ? 0 : 1;
	log_info("stopping");
out:
	agent_free(&ag);
	return status;
}
