/*
 * main.c — ehx-broker: load configuration, keys, the registry and the
 * store; serve agents on a CURVE ROUTER socket with a ZAP handler; answer
 * every envelope with a signed reply.
 *
 * One thread owns the sockets and the store. libzmq's I/O thread does the
 * CURVE handshakes and hands each to the ZAP socket polled here.
 */
#include <errno.h>
#include <pthread.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <zmq.h>

#include "audit.h"
#include "audit_tool.h"
#include "broker.h"
#include "config.h"
#include "ehx/err.h"
#include "ehx/log.h"
#include "ehx/util.h"
#include "ehx/wire.h"
#include "notify.h"
#include "pipeline.h"
#include "purge.h"
#include "registry.h"
#include "store.h"
#include "zap.h"

#define DEFAULT_CONFIG "/etc/ehx/broker.conf"
#define ARENA_LIMIT (8 * 1024 * 1024)
#define RECV_BATCH 256

static volatile sig_atomic_t stopping, reloading;

static void
on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static void
on_hup(int sig)
{
	(void)sig;
	reloading = 1;
}

static void
usage(FILE *f)
{
	fprintf(f,
"usage: ehx-broker [-c FILE] [--check]\n"
"       ehx-broker --purge [-c FILE]\n"
"       ehx-broker audit [-c FILE] [--tail N] [--json]\n"
"\n"
"The EHX broker: admits registered agencies over ZeroMQ CURVE, verifies\n"
"every signed envelope, enforces roles, consent and the sharing policy,\n"
"keeps flags, consent and a Merkle-tree audit log with signed checkpoints\n"
"in LMDB, and signs every reply.\n"
"\n"
"  -c, --config FILE  configuration file (default " DEFAULT_CONFIG ")\n"
"      --check        load configuration, keys and registry, then exit\n"
"      --purge        retention: remove the content of closed flags, ended\n"
"                     consents and kept evidence older than the config's\n"
"                     retention_* days (0 keeps them), then exit. The audit\n"
"                     log is untouched and still verifies; the purge is\n"
"                     itself audited. Safe while the broker runs.\n"
"  -h, --help         this text\n"
"      --version      the version\n"
"\n"
"audit: print the audit log (read-only; safe while the broker runs) after\n"
"rebuilding its Merkle tree from the records and checking it against the\n"
"stored tree and every signed checkpoint.\n"
"      --tail N       only the last N records (default 20; 0 for all)\n"
"      --json         one JSON object per line\n"
"\n"
"Signals: SIGTERM or SIGINT stop the broker once the requests it has read\n"
"are decided, committed and answered (at most 256);\n"
"SIGHUP reads the registry and the CRL (crl = in the config) again and\n"
"takes a larger map_size_mb from the config file.\n"
"Exit status: 0 on a clean stop, 1 on a configuration or start-up error,\n"
"2 on bad usage, 3 when the audit log does not verify.\n"
"See docs/OPERATIONS.md.\n");
}

/* The configured CRL, if any, into *out; its state logged. */
static int
load_crl(struct broker *b, struct ehx_crl **out, char *err, size_t errsz)
{
	char why[256], when[32];
	int64_t next;
	int r;

	*out = NULL;
	if (b->cfg.crl[0] == '\0')
		return 0;
	if ((r = ehx_crl_load(b->cfg.crl, b->ca, out, why,
	    sizeof(why))) != 0) {
		snprintf(err, errsz, "%s: cannot load the CRL: %s", b->cfg.crl,
		    why);
		return EHX_ERR_CONFIG;
	}
	next = ehx_crl_next_update(*out);
	if (next != 0)
		ehx_fmt_iso(when, sizeof(when), next);
	log_info("CRL %s: %zu revoked certificate%s; next update %s",
	    b->cfg.crl, ehx_crl_count(*out), ehx_crl_count(*out) == 1 ? "" :
	    "s", next != 0 ? when : "not given");
	if (next != 0 && next < ehx_now_ms())
		log_warn("the CRL %s is out of date (its next update was "
		    "%s): still used; issue a new one (ehx-pki crl)",
		    b->cfg.crl, when);
	return 0;
}

static int
load(struct broker *b, const char *conf, bool need_keys, char *err,
    size_t errsz)
{
	int r;

	if ((r = broker_config_load(conf, &b->cfg, err, errsz)) != 0)
		return r;
	ehx_log_level_current = b->cfg.log_level;
	if (!need_keys)
		return 0;
	if ((r = ehx_ca_load(b->cfg.ca, &b->ca)) != 0) {
		snprintf(err, errsz, "%s: cannot load the CA certificate: %s",
		    b->cfg.ca, r == EHX_ERR_SYSTEM ? strerror(errno) :
		    ehx_strerror(r));
		return r;
	}
	if ((r = ehx_signer_load(b->cfg.key, b->cfg.certificate,
	    &b->signer)) != 0) {
		snprintf(err, errsz, "%s / %s: cannot load the broker's key "
		    "and certificate: %s", b->cfg.key, b->cfg.certificate,
		    r == EHX_ERR_SYSTEM ? strerror(errno) : r == EHX_ERR_CRYPTO ?
		    "not an Ed25519 key matching the certificate" :
		    ehx_strerror(r));
		return r;
	}
	if ((r = ehx_cert_check_time(ehx_signer_cert(b->signer),
	    ehx_now_ms())) != 0) {
		snprintf(err, errsz, "%s: %s", b->cfg.certificate,
		    ehx_strerror(r));
		return EHX_ERR_CONFIG;
	}
	if (strcmp(ehx_cert_cn(ehx_signer_cert(b->signer)), b->cfg.id) != 0) {
		snprintf(err, errsz, "%s names \"%s\", but the broker's id is "
		    "\"%s\"", b->cfg.certificate,
		    ehx_cert_cn(ehx_signer_cert(b->signer)), b->cfg.id);
		return EHX_ERR_CONFIG;
	}
	if ((r = ehx_ca_verify(b->ca, ehx_signer_cert(b->signer), err,
	    errsz)) != 0) {
		char reason[128];

		snprintf(reason, sizeof(reason), "%s", err);
		snprintf(err, errsz, "%s: not issued by the partnership CA (%s)",
		    b->cfg.certificate, reason);
		return r;
	}
	if ((r = ehx_pseudokey_load(b->cfg.pseudonym_key, &b->pkey)) != 0) {
		snprintf(err, errsz, "%s: cannot load the pseudonym key: %s",
		    b->cfg.pseudonym_key, r == EHX_ERR_SYSTEM ? strerror(errno) :
		    r == EHX_ERR_CRYPTO ? "it must hold 64 hex digits" :
		    ehx_strerror(r));
		return r;
	}
	if (b->cfg.matching_key[0] != '\0' &&
	    (r = ehx_pseudokey_load(b->cfg.matching_key, &b->mkey)) != 0) {
		snprintf(err, errsz, "%s: cannot load the matching key: %s",
		    b->cfg.matching_key, r == EHX_ERR_SYSTEM ? strerror(errno) :
		    r == EHX_ERR_CRYPTO ? "it must hold 64 hex digits" :
		    ehx_strerror(r));
		return r;
	}
	{
		unsigned char pub[EHX_KEY_LEN];

		if ((r = ehx_curve_load_secret(b->cfg.curve_key, b->curve_secret,
		    pub)) != 0) {
			snprintf(err, errsz, "%s: cannot load the CURVE key: %s",
			    b->cfg.curve_key, r == EHX_ERR_SYSTEM ?
			    strerror(errno) : r == EHX_ERR_CRYPTO ?
			    "not an X25519 private key" : ehx_strerror(r));
			return r;
		}
	}
	if ((r = ehx_policy_load(b->cfg.policy, &b->policy, err, errsz)) != 0)
		return r;
	if ((r = load_crl(b, &b->crl, err, errsz)) != 0)
		return r;
	return registry_load(b->cfg.registry, b->ca, &b->reg, err, errsz);
}

/*
 * SIGHUP: a larger map_size_mb in the config file is taken at once (space
 * added to a full store); nothing else in the file changes until restart.
 */
static void
reload_map_size(struct broker *b)
{
	struct broker_config c;
	char err[512];
	int rc;

	memset(&c, 0, sizeof(c));
	if (broker_config_load(b->cfg.file, &c, err, sizeof(err)) != 0) {
		log_error("SIGHUP: %s; the configuration in force stays", err);
		return;
	}
	if (c.map_size == b->cfg.map_size)
		return;
	if (c.map_size < b->cfg.map_size) {
		log_warn("SIGHUP: map_size_mb can only grow while the broker "
		    "runs (%lld MiB stays)", b->cfg.map_size / (1024 * 1024));
		return;
	}
	if ((rc = mdb_env_set_mapsize(b->store.env, (size_t)c.map_size)) != 0) {
		log_error("SIGHUP: the store cannot grow to %lld MiB: %s",
		    c.map_size / (1024 * 1024), mdb_strerror(rc));
		return;
	}
	log_info("SIGHUP: the store may now grow to %lld MiB (was %lld)",
	    c.map_size / (1024 * 1024), b->cfg.map_size / (1024 * 1024));
	b->cfg.map_size = c.map_size;
}

/* SIGHUP: read the CRL again; one that will not load leaves the old. */
static void
reload_crl(struct broker *b)
{
	struct ehx_crl *crl = NULL;
	char err[512];

	if (b->cfg.crl[0] == '\0') {
		log_info("SIGHUP: no crl is configured; nothing to reload");
		return;
	}
	if (load_crl(b, &crl, err, sizeof(err)) != 0) {
		log_error("SIGHUP: %s; the CRL loaded before stays in force",
		    err);
		return;
	}
	ehx_crl_free(b->crl);
	b->crl = crl;
}

static int
open_sockets(struct broker *b, char *err, size_t errsz)
{
	int one = 1, zero = 0, rc;
	int64_t maxmsg = 2 * EHX_MAX_MESSAGE;
	int handshake_ms = 10000, keepidle = 60, hwm = 256;
	/* A batch answers up to RECV_BATCH requests of one connection at
	 * once: room for several, and a reply that still finds no room is
	 * an error logged, not dropped in silence. */
	int sndhwm = 4 * RECV_BATCH;
	char endpoint[256];
	size_t elen = sizeof(endpoint);

	rc = (b->zctx = zmq_ctx_new()) == NULL ||
	    (b->zap = zmq_socket(b->zctx, ZMQ_REP)) == NULL ||
	    zmq_setsockopt(b->zap, ZMQ_LINGER, &zero, sizeof(zero)) != 0 ||
	    zmq_bind(b->zap, "inproc://zeromq.zap.01") != 0 ||
	    (b->router = zmq_socket(b->zctx, ZMQ_ROUTER)) == NULL ||
	    zmq_setsockopt(b->router, ZMQ_LINGER, &zero, sizeof(zero)) != 0 ||
	    zmq_setsockopt(b->router, ZMQ_CURVE_SERVER, &one, sizeof(one)) != 0 ||
	    zmq_setsockopt(b->router, ZMQ_CURVE_SECRETKEY, b->curve_secret,
	    EHX_KEY_LEN) != 0 ||
	    zmq_setsockopt(b->router, ZMQ_ZAP_DOMAIN, "ehx", 3) != 0 ||
	    zmq_setsockopt(b->router, ZMQ_MAXMSGSIZE, &maxmsg,
	    sizeof(maxmsg)) != 0 ||
	    /* A connection that does not finish its CURVE handshake in
	     * 10 s is closed (half-open or junk); a peer gone silent is
	     * noticed by TCP keepalive; at most 256 requests wait per
	     * connection (then ZeroMQ stops reading it until we catch up). */
	    zmq_setsockopt(b->router, ZMQ_HANDSHAKE_IVL, &handshake_ms,
	    sizeof(handshake_ms)) != 0 ||
	    zmq_setsockopt(b->router, ZMQ_TCP_KEEPALIVE, &one,
	    sizeof(one)) != 0 ||
	    zmq_setsockopt(b->router, ZMQ_TCP_KEEPALIVE_IDLE, &keepidle,
	    sizeof(keepidle)) != 0 ||
	    zmq_setsockopt(b->router, ZMQ_RCVHWM, &hwm, sizeof(hwm)) != 0 ||
	    zmq_setsockopt(b->router, ZMQ_SNDHWM, &sndhwm, sizeof(sndhwm)) != 0 ||
	    zmq_setsockopt(b->router, ZMQ_ROUTER_MANDATORY, &one,
	    sizeof(one)) != 0;
	/* libzmq keeps its own copy; ours is not needed again. */
	OPENSSL_cleanse(b->curve_secret, sizeof(b->curve_secret));
	if (rc) {
		snprintf(err, errsz, "ZeroMQ: %s", zmq_strerror(zmq_errno()));
		return EHX_ERR_SYSTEM;
	}
	if (zmq_bind(b->router, b->cfg.listen) != 0) {
		snprintf(err, errsz, "cannot listen on %s: %s", b->cfg.listen,
		    zmq_strerror(zmq_errno()));
		return EHX_ERR_SYSTEM;
	}
	if (zmq_getsockopt(b->router, ZMQ_LAST_ENDPOINT, endpoint, &elen) != 0)
		snprintf(endpoint, sizeof(endpoint), "%s", b->cfg.listen);
	log_info("listening on %s as %s, %zu agencies registered", endpoint,
	    b->cfg.id, b->reg.n);
	if (b->cfg.endpoint_file[0] != '\0') {
		char line[300];
		int n = snprintf(line, sizeof(line), "%s\n", endpoint);

		if (ehx_file_write_atomic(b->cfg.endpoint_file, line, (size_t)n,
		    0644) != 0) {
			snprintf(err, errsz, "%s: %s", b->cfg.endpoint_file,
			    strerror(errno));
			return EHX_ERR_SYSTEM;
		}
	}
	return 0;
}

/*
 * Where each agency's agent was last heard from (its ZeroMQ routing id), so
 * a new notification can go to it at once. Only a hint: the queue is in
 * LMDB, and agents also fetch on their own.
 */
struct route {
	unsigned char id[256];
	size_t len;
};
static struct route *routes;

static void
route_learn(struct broker *b, const struct agency *a, zmq_msg_t *rid)
{
	size_t i = (size_t)(a - b->reg.agencies), n = zmq_msg_size(rid);

	if (routes == NULL && (routes = calloc(b->reg.n, sizeof(*routes))) ==
	    NULL)
		return;
	if (i < b->reg.n && n <= sizeof(routes[i].id)) {
		memcpy(routes[i].id, zmq_msg_data(rid), n);
		routes[i].len = n;
	}
}

/*
 * SIGHUP: read the registry again (a rotation's new certificate, a retired
 * one taken out, an agency added) without a restart. Routes and request
 * buckets follow their agency by id; connections of an agency no longer
 * listed are answered no more. One that will not load leaves the old.
 */
static void
reload_registry(struct broker *b)
{
	struct registry reg;
	struct route *nr = NULL;
	char err[512];
	int r;

	memset(&reg, 0, sizeof(reg));
	if ((r = registry_load(b->cfg.registry, b->ca, &reg, err,
	    sizeof(err))) != 0) {
		log_error("SIGHUP: %s; the registry loaded before stays in "
		    "force", err);
		return;
	}
	if (reg.n > 0 && (nr = calloc(reg.n, sizeof(*nr))) == NULL) {
		registry_free(&reg);
		log_error("SIGHUP: out of memory; the registry stays");
		return;
	}
	if ((r = store_keep_certs(&b->store, ehx_signer_cert(b->signer),
	    &reg)) != 0) {
		free(nr);
		registry_free(&reg);
		log_error("SIGHUP: cannot keep the new certificates in the "
		    "store (%s); the registry stays", ehx_strerror(r));
		return;
	}
	for (size_t i = 0; i < reg.n; i++) {
		const struct agency *old = registry_by_id(&b->reg,
		    reg.agencies[i].id);
		size_t j;

		if (old == NULL)
			continue;
		j = (size_t)(old - b->reg.agencies);
		reg.agencies[i].tokens = old->tokens;
		reg.agencies[i].refilled = old->refilled;
		reg.agencies[i].tokens_logged = old->tokens_logged;
		if (routes != NULL)
			nr[i] = routes[j];
	}
	registry_free(&b->reg);
	b->reg = reg;
	free(routes);
	routes = nr;
	{
		size_t certs = 0;

		for (size_t i = 0; i < b->reg.n; i++)
			certs += b->reg.agencies[i].ncerts;
		log_info("SIGHUP: registry reloaded: %zu agencies, %zu "
		    "certificates", b->reg.n, certs);
	}
}

/* Send the notifications just committed to agents that are connected. */
static void
push_out(struct broker *b)
{
	for (size_t k = 0; k < b->npush; k++) {
		struct push *p = &b->push[k];
		size_t i = (size_t)(p->to - b->reg.agencies);

		if (routes != NULL && i < b->reg.n && routes[i].len > 0 &&
		    (zmq_send(b->router, routes[i].id, routes[i].len,
		    ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
		    zmq_send(b->router, p->env, p->len, ZMQ_DONTWAIT) < 0))
			log_debug("notification to %s left queued: %s",
			    p->to->id, zmq_strerror(zmq_errno()));
		free(p->env);
	}
	b->npush = 0;
}

/* A request of the batch: read, checked, decided, its reply held until the
 * batch commits. */
struct pending {
	zmq_msg_t rid, data;
	const struct agency *conn;
	bool junk;                      /* frames after the envelope */
	bool within;                    /* within its agency's rate */
	bool checked;                   /* pc is ready (or not wanted) */
	struct precheck pc;
	unsigned char *reply;
	size_t len;
	unsigned char id[EHX_MSGID_LEN];
	bool has_id;
};

static const void *
frame_of(struct pending *p, size_t *len)
{
	*len = zmq_msg_size(&p->data);
	return zmq_msg_data(&p->data);
}

/* Read one multipart message from the router; true when p holds one. */
static bool
read_one(struct broker *b, struct pending *p)
{
	zmq_msg_t extra;
	const char *user;
	int more = 0;
	size_t moresz = sizeof(more);

	zmq_msg_init(&p->rid);
	zmq_msg_init(&p->data);
	p->junk = false;
	p->reply = NULL;
	if (zmq_msg_recv(&p->rid, b->router, ZMQ_DONTWAIT) < 0)
		goto fail;
	if (!zmq_msg_more(&p->rid) || zmq_msg_recv(&p->data, b->router, 0) < 0)
		goto fail;
	/* One envelope per message: drain anything after it. */
	zmq_getsockopt(b->router, ZMQ_RCVMORE, &more, &moresz);
	while (more) {
		zmq_msg_init(&extra);
		zmq_msg_recv(&extra, b->router, 0);
		zmq_msg_close(&extra);
		p->junk = true;
		zmq_getsockopt(b->router, ZMQ_RCVMORE, &more, &moresz);
	}
	if ((user = zmq_msg_gets(&p->data, "User-Id")) == NULL ||
	    (p->conn = registry_by_id(&b->reg, user)) == NULL) {
		log_error("message on a connection with no registered agency");
		goto fail;
	}
	/* The rate is taken in arrival order, before anything is decoded:
	 * a frame over it costs no signature check. */
	p->within = broker_rate_take(b, p->conn);
	return true;
fail:
	zmq_msg_close(&p->rid);
	zmq_msg_close(&p->data);
	return false;
}

/*
 * Signature checks in worker threads, overlapped with the decisions: the
 * workers take the batch's messages from the front, one at a time, and
 * check them, while the serving thread decides them in arrival order. When
 * it reaches one no worker has taken, it checks that one itself; one taken
 * and not yet done, it waits for. (verify_threads workers: by default one
 * per core but one; none on one core.)
 */
static struct vpool {
	pthread_mutex_t mu;
	pthread_cond_t go, done;
	pthread_t *threads;
	size_t nthreads;
	struct broker *b;
	struct pending *p;
	size_t n, next;
	bool quit;
} pool = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
	PTHREAD_COND_INITIALIZER, NULL, 0, NULL, NULL, 0, 0, false };

static void
check_one(struct broker *b, struct pending *p)
{
	size_t len;
	const void *frame = frame_of(p, &len);

	broker_precheck(b, frame, len, &p->pc);
	/* More than one frame is malformed; the first is read all the same,
	 * so that the refusal names the request it answers. */
	if (p->junk && p->pc.code == 0) {
		p->pc.code = EHX_ERR_MALFORMED;
		snprintf(p->pc.why, sizeof(p->pc.why), "a message is one "
		    "frame; the frames after the envelope were discarded");
	}
}

static void *
vpool_worker(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&pool.mu);
	for (;;) {
		struct pending *p;

		while (!pool.quit && pool.next < pool.n &&
		    pool.p[pool.next].checked)
			pool.next++;    /* over its rate: never checked */
		if (pool.quit)
			break;
		if (pool.next >= pool.n) {
			pthread_cond_wait(&pool.go, &pool.mu);
			continue;
		}
		p = &pool.p[pool.next++];
		pthread_mutex_unlock(&pool.mu);
		check_one(pool.b, p);
		pthread_mutex_lock(&pool.mu);
		p->checked = true;
		pthread_cond_broadcast(&pool.done);
	}
	pthread_mutex_unlock(&pool.mu);
	return NULL;
}

static int
vpool_start(size_t n)
{
	sigset_t all, old;
	int rc = 0;

	if (n == 0)
		return 0;
	if ((pool.threads = calloc(n, sizeof(*pool.threads))) == NULL)
		return EHX_ERR_NOMEM;
	/* Signals are the serving thread's: workers start with them blocked. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (pool.nthreads = 0; pool.nthreads < n; pool.nthreads++)
		if ((rc = pthread_create(&pool.threads[pool.nthreads], NULL,
		    vpool_worker, NULL)) != 0)
			break;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
		log_warn("verify threads: %zu of %zu started: %s",
		    pool.nthreads, n, strerror(rc));
	return 0;
}

static void
vpool_stop(void)
{
	pthread_mutex_lock(&pool.mu);
	pool.quit = true;
	pthread_cond_broadcast(&pool.go);
	pthread_mutex_unlock(&pool.mu);
	for (size_t i = 0; i < pool.nthreads; i++)
		pthread_join(pool.threads[i], NULL);
	free(pool.threads);
	pool.threads = NULL;
	pool.nthreads = 0;
}

/*
 * Hand the batch's messages that are within their rate (pend[0..n), with
 * those over it marked checked: they are not checked at all) to the
 * workers. Only a batch of more than one is worth their wake-up.
 */
static void
check_start(struct broker *b, struct pending *pend, size_t n)
{
	for (size_t i = 0; i < n; i++)
		pend[i].checked = !pend[i].within;
	if (pool.nthreads == 0 || n < 2)
		return;
	pthread_mutex_lock(&pool.mu);
	pool.b = b;
	pool.p = pend;
	pool.n = n;
	pool.next = 0;
	pthread_cond_broadcast(&pool.go);
	pthread_mutex_unlock(&pool.mu);
}

/* Wait for message i of the batch to be checked, or check it here. */
static void
check_wait(struct broker *b, struct pending *pend, size_t i)
{
	bool mine = false;

	if (pool.nthreads == 0 || pool.p != pend || pool.n == 0) {
		if (!pend[i].checked)
			check_one(b, &pend[i]);
		pend[i].checked = true;
		return;
	}
	pthread_mutex_lock(&pool.mu);
	/* Skip what the workers have not reached (over-rate ones included). */
	while (pool.next < pool.n && pool.p[pool.next].checked &&
	    pool.next < i)
		pool.next++;
	if (!pend[i].checked && pool.next <= i) {
		/* Not taken: take it, and let the workers go on after it. */
		pool.next = i + 1;
		mine = true;
	}
	while (!mine && !pend[i].checked)
		pthread_cond_wait(&pool.done, &pool.mu);
	if (i + 1 == pool.n)
		pool.n = 0;             /* the batch is all taken */
	pthread_mutex_unlock(&pool.mu);
	if (mine) {
		check_one(b, &pend[i]);
		pend[i].checked = true;
	}
}

/* Decide p on its own (its batch did not commit): check it again, and
 * commit its effects in a transaction of its own. */
static void
decide_alone(struct broker *b, struct pending *p)
{
	size_t len;
	const void *frame = frame_of(p, &len);

	free(p->reply);
	p->reply = NULL;
	if (p->within)
		check_one(b, p);
	if (broker_process_checked(b, p->conn, frame, len,
	    p->within ? &p->pc : NULL, &p->reply, &p->len) != 0)
		p->reply = NULL;
	if (p->within)
		precheck_free(&p->pc);
}

/*
 * Commit the batch, then answer each request in it and push the
 * notifications it made to connected agents. If the map was too full for
 * the batch, each request is decided again alone, as if no batch had
 * been: changes are refused storage_full once the map is nearly full, and
 * reads go on being served and audited from the room kept back. After
 * any other failure nothing of the batch was stored: each request hears a
 * signed error, and the broker refuses everything until restarted.
 */
static void
answer_all(struct broker *b, struct pending *pend, size_t n)
{
	int rc = broker_batch_commit(b);

	if (rc == EHX_ERR_STORAGE_FULL) {
		log_warn("the store was too full to commit %zu requests "
		    "together: deciding each alone", n);
		for (size_t i = 0; i < n; i++)
			if (pend[i].reply != NULL)
				decide_alone(b, &pend[i]);
		rc = 0;
	}
	for (size_t i = 0; i < n; i++) {
		struct pending *p = &pend[i];

		zmq_msg_close(&p->data);
		if (p->reply == NULL) {
			zmq_msg_close(&p->rid);
			continue;
		}
		if (rc != 0) {
			free(p->reply);
			p->reply = NULL;
			if (broker_refuse(b, p->conn, p->has_id ? p->id : NULL,
			    EHX_ERR_INTERNAL, &p->reply, &p->len) != 0) {
				log_error("could not sign a reply");
				zmq_msg_close(&p->rid);
				continue;
			}
		}
		route_learn(b, p->conn, &p->rid);
		if (zmq_msg_send(&p->rid, b->router, ZMQ_SNDMORE |
		    ZMQ_DONTWAIT) < 0 || zmq_send(b->router, p->reply, p->len,
		    ZMQ_DONTWAIT) < 0)
			log_warn("reply to %s not sent: %s", p->conn->id,
			    zmq_strerror(zmq_errno()));
		zmq_msg_close(&p->rid);
		free(p->reply);
		p->reply = NULL;
	}
	push_out(b);
}

/*
 * Group commit: read every request waiting (up to RECV_BATCH), check their
 * signatures in parallel, decide them in arrival order in one write
 * transaction, commit it once, then answer them all. With one request
 * waiting this is a commit per request; under load the fsync is shared by
 * as many as arrived while the last batch ran.
 */
static void
serve_batch(struct broker *b)
{
	static struct pending pend[RECV_BATCH];
	size_t n = 0;

	for (int i = 0; i < RECV_BATCH && !stopping; i++) {
		int ev = 0;
		size_t evsz = sizeof(ev);

		if (read_one(b, &pend[n]))
			n++;
		if (zmq_getsockopt(b->router, ZMQ_EVENTS, &ev, &evsz) != 0 ||
		    !(ev & ZMQ_POLLIN))
			break;
		if (i % 16 == 15) {
			/* Let pending handshakes through. */
			int zev = 0;

			evsz = sizeof(zev);
			zmq_getsockopt(b->zap, ZMQ_EVENTS, &zev, &evsz);
			if (zev & ZMQ_POLLIN)
				zap_handle(b);
		}
	}
	if (n == 0)
		return;
	check_start(b, pend, n);
	if (broker_batch_begin(b) != 0)
		b->batch = NULL;        /* each request then commits alone */
	for (size_t i = 0; i < n; i++) {
		struct pending *p = &pend[i];
		size_t len;
		const void *frame = frame_of(p, &len);

		check_wait(b, pend, i);

		if (broker_process_checked(b, p->conn, frame, len,
		    p->within ? &p->pc : NULL, &p->reply, &p->len) != 0)
			p->reply = NULL;
		else {
			p->has_id = b->last_has_id;
			memcpy(p->id, b->last_id, sizeof(p->id));
		}
		if (p->within)
			precheck_free(&p->pc);
	}
	answer_all(b, pend, n);         /* closes each message */
}

static void reload_registry(struct broker *b);

/* The timer: emit the notifications publishes have kept since the last
 * time, all together, and push them. */
static void
notify_tick(struct broker *b)
{
	int64_t now = ehx_now_ms();
	int r;

	if (!b->plans_pending || now < b->flush_due)
		return;
	b->flush_due = now + NOTIFY_FLUSH_MS;   /* if it fails: again then */
	if ((r = notify_flush_now(b)) != 0) {
		static int64_t said;

		if (now - said >= 60000) {      /* a full map: once a minute */
			said = now;
			log_error("notifications could not be queued: %s; kept, "
			    "and tried again every %d ms", ehx_strerror(r),
			    NOTIFY_FLUSH_MS);
		}
		return;
	}
	push_out(b);
}

/* How long the serving loop may wait for a message: until the next
 * notification tick when publishes have kept some, else a second. */
static long
poll_timeout(const struct broker *b)
{
	int64_t left;

	if (!b->plans_pending)
		return 1000;
	left = b->flush_due - ehx_now_ms();
	return left <= 0 ? 0 : left < 1000 ? (long)left : 1000;
}

static int
serve(struct broker *b)
{
	zmq_pollitem_t items[2] = {
		{ b->router, 0, ZMQ_POLLIN, 0 },
		{ b->zap, 0, ZMQ_POLLIN, 0 },
	};

	while (!stopping) {
		if (zmq_poll(items, 2, poll_timeout(b)) < 0) {
			if (zmq_errno() == EINTR)
				continue;
			log_error("poll: %s", zmq_strerror(zmq_errno()));
			return EHX_ERR_SYSTEM;
		}
		checkpoint_tick(b);
		notify_tick(b);
		if (reloading) {
			reloading = 0;
			reload_map_size(b);
			reload_crl(b);
			reload_registry(b);
		}
		if (items[1].revents & ZMQ_POLLIN)
			zap_handle(b);
		if (items[0].revents & ZMQ_POLLIN)
			serve_batch(b);
	}
	log_info("stopping");
	return 0;
}

static void
broker_free(struct broker *b)
{
	notify_push_drop(b, 0);
	free(b->push);
	free(routes);
	routes = NULL;
	if (b->router != NULL)
		zmq_close(b->router);
	if (b->zap != NULL)
		zmq_close(b->zap);
	if (b->zctx != NULL)
		zmq_ctx_term(b->zctx);
	if (b->cp != NULL)
		ehx__checkpoint__free_unpacked(b->cp, NULL);
	store_close(&b->store);
	registry_free(&b->reg);
	ehx_signer_free(b->signer);
	ehx_pseudokey_free(b->pkey);
	ehx_pseudokey_free(b->mkey);
	ehx_ca_free(b->ca);
	ehx_crl_free(b->crl);
	ehx_arena_free(b->arena);
	OPENSSL_cleanse(b->curve_secret, sizeof(b->curve_secret));
}

/* ehx-broker audit: check the log and print its tail (exit 3 on a fault). */
static int
run_audit(struct broker *b, const char *conf, unsigned long tail, bool json)
{
	struct ehx_cert *cert = NULL;
	char err[512];
	int r;

	if (load(b, conf, false, err, sizeof(err)) != 0 ||
	    store_open(&b->store, b->cfg.data_dir, (size_t)b->cfg.map_size,
	    true, err, sizeof(err)) != 0) {
		fprintf(stderr, "ehx-broker: %s\n", err);
		return 1;
	}
	if (ehx_cert_load(b->cfg.certificate, &cert) != 0)
		fprintf(stderr, "ehx-broker: %s: cannot load the broker's "
		    "certificate; checkpoint signatures are not checked\n",
		    b->cfg.certificate);
	r = audit_tool(&b->store, tail, json, cert);
	ehx_cert_free(cert);
	broker_free(b);
	return r == 0 ? 0 : 3;
}

/* ehx-broker --purge: apply the retention periods once. */
static int
run_purge(struct broker *b, const char *conf)
{
	struct purge_counts pc;
	char err[512];
	int r;

	/* It writes the store: as the broker's user, never root. */
	if (load(b, conf, false, err, sizeof(err)) != 0 ||
	    ehx_drop_root(b->cfg.user, false, err, sizeof(err)) != 0 ||
	    store_open(&b->store, b->cfg.data_dir, (size_t)b->cfg.map_size,
	    false, err, sizeof(err)) != 0) {
		fprintf(stderr, "ehx-broker: %s\n", err);
		broker_free(b);
		return 1;
	}
	if ((r = broker_purge(b, ehx_now_ms(), &pc)) != 0) {
		fprintf(stderr, "ehx-broker: purge: %s\n", ehx_strerror(r));
		broker_free(b);
		return 1;
	}
	printf("ehx-broker: purged %llu closed flags, %llu ended consents and "
	    "%llu kept envelopes past retention; the audit log is untouched\n",
	    (unsigned long long)pc.flags, (unsigned long long)pc.consents,
	    (unsigned long long)pc.envelopes);
	broker_free(b);
	return 0;
}

/* The daemon's store, kept certificates and checkpoint in force; 0 or
 * -1 (logged). */
static int
open_store(struct broker *b)
{
	char err[512];
	int r;

	if ((b->arena = ehx_arena_new(ARENA_LIMIT)) == NULL) {
		log_error("out of memory");
		return -1;
	}
	if (store_open(&b->store, b->cfg.data_dir, (size_t)b->cfg.map_size,
	    false, err, sizeof(err)) != 0) {
		log_error("cannot open the store: %s", err);
		return -1;
	}
	if ((r = store_keep_certs(&b->store, ehx_signer_cert(b->signer),
	    &b->reg)) != 0) {
		log_error("cannot keep the certificates in the store: %s",
		    ehx_strerror(r));
		return -1;
	}
	if ((r = checkpoint_adopt(b)) != 0) {
		log_error("cannot read the newest checkpoint: %s",
		    ehx_strerror(r));
		return -1;
	}
	b->plans_pending = true;        /* any a stop left are sent first */
	return 0;
}

/* SIGINT and SIGTERM stop the loop, SIGHUP reloads, SIGPIPE is ignored. */
static void
set_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = on_hup;
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* The verify threads: verify_threads, or (-1) one fewer than the cores,
 * at most 16. 0 or -1 (logged). */
static int
start_verify_threads(const struct broker *b)
{
	long long n = b->cfg.verify_threads;
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	int r;

	if (n < 0)
		n = cores > 1 ? (cores - 1 < 16 ? cores - 1 : 16) : 0;
	if ((r = vpool_start((size_t)n)) != 0) {
		log_error("verify threads: %s", ehx_strerror(r));
		return -1;
	}
	log_info("%lld verify threads", n);
	return 0;
}

/* The daemon (or, with check, only its configuration and keys checked). */
static int
run_broker(struct broker *b, const char *conf, bool check)
{
	char err[512];
	int status = 1;

	if (load(b, conf, true, err, sizeof(err)) != 0 ||
	    ehx_drop_root(b->cfg.user, check, err, sizeof(err)) != 0) {
		log_error("%s", err);
		goto out;
	}
	if (!check && b->cfg.user[0] != '\0' && getuid() != 0)
		log_info("running as user %s (keys read as root)", b->cfg.user);
	if (check) {
		printf("ehx-broker: %s is valid; %zu agencies registered\n", conf,
		    b->reg.n);
		status = 0;
		goto out;
	}
	if (open_store(b) != 0)
		goto out;
	set_signals();
	if (open_sockets(b, err, sizeof(err)) != 0) {
		log_error("%s", err);
		goto out;
	}
	if (start_verify_threads(b) != 0)
		goto out;
	status = serve(b) == 0 ? 0 : 1;
	vpool_stop();
out:
	broker_free(b);
	return status;
}

#ifdef EHX_FAULTS
/* The test build's dishonesty (broker.h): EHX_FAULT, read once. */
bool
broker_fault(const char *name)
{
	static const char *fault;

	if (fault == NULL && (fault = getenv("EHX_FAULT")) == NULL)
		fault = "";
	return strcmp(fault, name) == 0;
}
#endif

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, 'k' },
		{ "purge", no_argument, NULL, 'P' },
		{ "tail", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct broker b;
	const char *conf = DEFAULT_CONFIG;
	bool check = false, json = false, audit = false, purge = false;
	unsigned long tail = 20;
	int c;

	memset(&b, 0, sizeof(b));
	ehx_log_init("ehx-broker", EHX_LOG_INFO);
	if (argc > 1 && strcmp(argv[1], "audit") == 0) {
		audit = true;
		argv++;
		argc--;
	}
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1)
		switch (c) {
		case 'c':
			conf = optarg;
			break;
		case 'k':
			check = true;
			break;
		case 'P':
			purge = true;
			break;
		case 't': {
			char *end;

			errno = 0;
			tail = strtoul(optarg, &end, 10);
			if (errno || *end || end == optarg || !audit ||
			    optarg[0] == '-') {
				fprintf(stderr, "ehx-broker: --tail needs a "
				    "number (audit only)\n");
				return 2;
			}
			break;
		}
		case 'j':
			json = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("ehx-broker 0.1 (protocol %d)\n",
			    EHX_PROTOCOL_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	if (optind != argc || (json && !audit) || (purge && (audit || check))) {
		usage(stderr);
		return 2;
	}
	umask(077);
	if (audit)
		return run_audit(&b, conf, tail, json);
	if (purge)
		return run_purge(&b, conf);
	return run_broker(&b, conf, check);
}
