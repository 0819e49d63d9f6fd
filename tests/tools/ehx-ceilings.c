/*
 * ehx-ceilings — what this machine can do at the three things EHX's speed
 * rests on, through the same library calls EHX makes, for `make bench` to
 * set its figures beside:
 *
 *   - Ed25519 verifications per second, on one core and on all, with
 *     libsodium (crypto_sign_verify_detached, which lib/crypto.c uses) and
 *     with OpenSSL 3 (EVP_DigestVerify) for comparison;
 *   - durable LMDB puts per second (a commit, with its fsync, every 1, 32
 *     or 256 puts) with the broker's audit key shape (8-byte big-endian
 *     sequence numbers, appended) and a record of the broker's size, and
 *     with random keys; the latency of one durable commit (p50, p99);
 *   - ZeroMQ CURVE over loopback TCP with messages of the broker's size:
 *     round-trip time (p50, p99) and pipelined messages per second.
 *
 * It prints one JSON object on standard output and a table on standard
 * error. Each figure is measured for --seconds (default 1).
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>
#include <openssl/evp.h>
#include <sodium.h>
#include <zmq.h>


#define MSG_LEN 700             /* a publish envelope, about */
#define REC_LEN 400             /* an audit record, about */

static double seconds = 1.0;

/* Monotonic seconds, to the nanosecond. */
static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- Ed25519 ------------------------------------------------------------- */

static unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
static unsigned char msg[MSG_LEN], sig[crypto_sign_BYTES];

struct vjob {
	int openssl;
	uint64_t n;
};

static void *
verify_loop(void *arg)
{
	struct vjob *j = arg;
	EVP_PKEY *k = NULL;
	double end = now_s() + seconds;

	if (j->openssl && (k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519,
	    NULL, pk, sizeof(pk))) == NULL)
		return NULL;
	while (now_s() < end)
		for (int i = 0; i < 64; i++) {
			int ok;

			if (j->openssl) {
				EVP_MD_CTX *c = EVP_MD_CTX_new();

				ok = c != NULL && EVP_DigestVerifyInit(c, NULL,
				    NULL, NULL, k) == 1 && EVP_DigestVerify(c,
				    sig, sizeof(sig), msg, sizeof(msg)) == 1;
				EVP_MD_CTX_free(c);
			} else
				ok = crypto_sign_verify_detached(sig, msg,
				    sizeof(msg), pk) == 0;
			if (!ok) {
				fprintf(stderr, "ehx-ceilings: a good signature "
				    "did not verify\n");
				exit(1);
			}
			j->n++;
		}
	EVP_PKEY_free(k);
	return NULL;
}

/* Verifications per second with nthreads threads. */
static double
verifies(int openssl, int nthreads)
{
	pthread_t t[64];
	struct vjob j[64];
	double start = now_s(), el;
	uint64_t n = 0;

	for (int i = 0; i < nthreads; i++) {
		j[i] = (struct vjob){ openssl, 0 };
		if (pthread_create(&t[i], NULL, verify_loop, &j[i]) != 0)
			exit(1);
	}
	for (int i = 0; i < nthreads; i++) {
		pthread_join(t[i], NULL);
		n += j[i].n;
	}
	el = now_s() - start;
	return (double)n / el;
}

/* ---- LMDB ---------------------------------------------------------------- */

/*
 * Durable puts per second, committing every batch puts: appended 8-byte
 * keys (the audit log's shape), or with random, 32-byte random keys into a
 * database already holding 200,000 records (the shape of everything keyed
 * by a child's pseudonym or a message id: each put dirties a page of its
 * own, as the broker's flags, replay and evidence do).
 */
static double
lmdb_puts(const char *dir, unsigned batch, int random)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	unsigned char key[32], val[REC_LEN];
	uint64_t seq = 0, puts = 0;
	double start, end;

	memset(val, 0x5a, sizeof(val));
	if (mdb_env_create(&env) != 0 ||
	    mdb_env_set_mapsize(env, 4ULL << 30) != 0 ||
	    mdb_env_set_maxdbs(env, 2) != 0 ||
	    mdb_env_open(env, dir, MDB_NOTLS, 0600) != 0)
		exit(1);
	if (mdb_txn_begin(env, NULL, 0, &txn) != 0 ||
	    mdb_dbi_open(txn, "audit", MDB_CREATE, &dbi) != 0 ||
	    mdb_drop(txn, dbi, 0) != 0)
		exit(1);
	for (int i = 0; random && i < 200000; i++) {
		MDB_val k = { sizeof(key), key }, v = { sizeof(val), val };

		randombytes_buf(key, sizeof(key));
		if (mdb_put(txn, dbi, &k, &v, 0) != 0)
			exit(1);
	}
	if (mdb_txn_commit(txn) != 0)
		exit(1);
	start = now_s();
	end = start + seconds;
	while (now_s() < end) {
		if (mdb_txn_begin(env, NULL, 0, &txn) != 0)
			exit(1);
		for (unsigned i = 0; i < batch; i++) {
			MDB_val k = { 8, key }, v = { sizeof(val), val };

			if (random) {
				k.mv_size = sizeof(key);
				randombytes_buf(key, sizeof(key));
			} else {
				seq++;
				for (int b = 0; b < 8; b++)
					key[b] = (unsigned char)(seq >>
					    (56 - 8 * b));
			}
			if (mdb_put(txn, dbi, &k, &v, random ? 0 :
			    MDB_APPEND) != 0)
				exit(1);
			puts++;
		}
		if (mdb_txn_commit(txn) != 0)
			exit(1);
	}
	end = now_s();
	mdb_env_close(env);
	return (double)puts / (end - start);
}

/* ---- ZeroMQ CURVE ----------------------------------------------------------- */

struct echo {
	void *ctx;
	char endpoint[64];
	char spk[41], ssk[41];
	volatile int ready;
};

static void *
echo_loop(void *arg)
{
	struct echo *e = arg;
	void *r = zmq_socket(e->ctx, ZMQ_ROUTER);
	int one = 1, zero = 0;
	size_t len = sizeof(e->endpoint);

	zmq_setsockopt(r, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(r, ZMQ_CURVE_SERVER, &one, sizeof(one));
	zmq_setsockopt(r, ZMQ_CURVE_SECRETKEY, e->ssk, 40);
	if (zmq_bind(r, "tcp://127.0.0.1:*") != 0)
		exit(1);
	zmq_getsockopt(r, ZMQ_LAST_ENDPOINT, e->endpoint, &len);
	e->ready = 1;
	for (;;) {
		zmq_msg_t id, m;

		zmq_msg_init(&id);
		zmq_msg_init(&m);
		if (zmq_msg_recv(&id, r, 0) < 0 || zmq_msg_recv(&m, r, 0) < 0)
			break;
		if (zmq_msg_size(&m) == 1)      /* stop */
			break;
		zmq_msg_send(&id, r, ZMQ_SNDMORE);
		zmq_msg_send(&m, r, 0);
	}
	zmq_close(r);
	return NULL;
}

static int
cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/*
 * The latency of one durable commit (a 400-byte appended put, its fsync):
 * p50 and p99 in microseconds. Every audited request, a query included,
 * waits for one; its tail is the disk's.
 */
static void
lmdb_commit_latency(const char *dir, double *p50_us, double *p99_us)
{
	enum { MAXN = 200000 };
	static double lat[MAXN];
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	unsigned char key[8], val[REC_LEN];
	uint64_t seq = 0;
	double end;
	int n = 0;

	memset(val, 0x5a, sizeof(val));
	if (mdb_env_create(&env) != 0 ||
	    mdb_env_set_mapsize(env, 4ULL << 30) != 0 ||
	    mdb_env_set_maxdbs(env, 2) != 0 ||
	    mdb_env_open(env, dir, MDB_NOTLS, 0600) != 0 ||
	    mdb_txn_begin(env, NULL, 0, &txn) != 0 ||
	    mdb_dbi_open(txn, "audit", MDB_CREATE, &dbi) != 0 ||
	    mdb_drop(txn, dbi, 0) != 0 || mdb_txn_commit(txn) != 0)
		exit(1);
	end = now_s() + seconds;
	while (n < MAXN && now_s() < end) {
		MDB_val k = { 8, key }, v = { sizeof(val), val };
		double t0 = now_s();

		seq++;
		for (int b = 0; b < 8; b++)
			key[b] = (unsigned char)(seq >> (56 - 8 * b));
		if (mdb_txn_begin(env, NULL, 0, &txn) != 0 ||
		    mdb_put(txn, dbi, &k, &v, MDB_APPEND) != 0 ||
		    mdb_txn_commit(txn) != 0)
			exit(1);
		lat[n++] = (now_s() - t0) * 1e6;
	}
	mdb_env_close(env);
	qsort(lat, (size_t)n, sizeof(lat[0]), cmp_d);
	*p50_us = lat[n / 2];
	*p99_us = lat[(int)(n * 0.99)];
}

static void
zmq_ceilings(double *p50_us, double *p99_us, double *msgs_s)
{
	static double rtt[4000];
	struct echo e;
	pthread_t t;
	char cpk[41], csk[41], buf[MSG_LEN];
	void *d;
	int zero = 0, n = 0, inflight = 0, got = 0;
	double start, end;

	memset(&e, 0, sizeof(e));
	memset(buf, 0x33, sizeof(buf));
	e.ctx = zmq_ctx_new();
	if (zmq_curve_keypair(e.spk, e.ssk) != 0 ||
	    zmq_curve_keypair(cpk, csk) != 0)
		exit(1);
	pthread_create(&t, NULL, echo_loop, &e);
	while (!e.ready)
		usleep(1000);
	d = zmq_socket(e.ctx, ZMQ_DEALER);
	zmq_setsockopt(d, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(d, ZMQ_CURVE_SERVERKEY, e.spk, 40);
	zmq_setsockopt(d, ZMQ_CURVE_PUBLICKEY, cpk, 40);
	zmq_setsockopt(d, ZMQ_CURVE_SECRETKEY, csk, 40);
	if (zmq_connect(d, e.endpoint) != 0)
		exit(1);
	/* Round trips, one at a time (after one to finish the handshake). */
	zmq_send(d, buf, sizeof(buf), 0);
	zmq_recv(d, buf, sizeof(buf), 0);
	end = now_s() + seconds;
	while (n < 4000 && now_s() < end) {
		double a = now_s();

		zmq_send(d, buf, sizeof(buf), 0);
		zmq_recv(d, buf, sizeof(buf), 0);
		rtt[n++] = (now_s() - a) * 1e6;
	}
	qsort(rtt, (size_t)n, sizeof(rtt[0]), cmp_d);
	*p50_us = rtt[n / 2];
	*p99_us = rtt[(n * 99) / 100];
	/* Pipelined: up to 256 in flight. */
	start = now_s();
	end = start + seconds;
	while (now_s() < end || inflight > 0) {
		while (inflight < 256 && now_s() < end) {
			zmq_send(d, buf, sizeof(buf), 0);
			inflight++;
		}
		if (zmq_recv(d, buf, sizeof(buf), 0) >= 0) {
			inflight--;
			got++;
		}
	}
	*msgs_s = (double)got / (now_s() - start);
	zmq_send(d, "x", 1, 0);
	pthread_join(t, NULL);
	zmq_close(d);
	zmq_ctx_term(e.ctx);
}

int
main(int argc, char **argv)
{
	char dir[] = "/tmp/ehx-ceilings.XXXXXX", cmd[64];
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	double s1, sn, o1, on, l1, l32, l256, lr256, p50, p99, tput, c50, c99;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
			seconds = atof(argv[++i]);
			if (seconds < 0.1 || seconds > 60) {
				fprintf(stderr, "ehx-ceilings: --seconds "
				    "0.1..60\n");
				return 2;
			}
		} else {
			fprintf(stderr, "usage: ehx-ceilings [--seconds S]\n");
			return 2;
		}
	}
	if (cores < 1 || cores > 64)
		cores = 1;
	if (sodium_init() < 0 || mkdtemp(dir) == NULL)
		return 1;
	randombytes_buf(msg, sizeof(msg));
	crypto_sign_keypair(pk, sk);
	crypto_sign_detached(sig, NULL, msg, sizeof(msg), sk);

	s1 = verifies(0, 1);
	sn = verifies(0, (int)cores);
	o1 = verifies(1, 1);
	on = verifies(1, (int)cores);
	l1 = lmdb_puts(dir, 1, 0);
	l32 = lmdb_puts(dir, 32, 0);
	l256 = lmdb_puts(dir, 256, 0);
	lr256 = lmdb_puts(dir, 256, 1);
	lmdb_commit_latency(dir, &c50, &c99);
	zmq_ceilings(&p50, &p99, &tput);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "ehx-ceilings: could not remove %s\n", dir);

	fprintf(stderr,
	    "ceiling                                   value\n"
	    "Ed25519 verify/s, libsodium, 1 core       %10.0f\n"
	    "Ed25519 verify/s, libsodium, %ld cores     %10.0f\n"
	    "Ed25519 verify/s, OpenSSL, 1 core         %10.0f\n"
	    "Ed25519 verify/s, OpenSSL, %ld cores       %10.0f\n"
	    "LMDB durable puts/s, commit every 1       %10.0f\n"
	    "LMDB durable puts/s, commit every 32      %10.0f\n"
	    "LMDB durable puts/s, commit every 256     %10.0f\n"
	    "  the same, random 32-byte keys           %10.0f\n"
	    "LMDB durable commit p50 (us)              %10.1f\n"
	    "LMDB durable commit p99 (us)              %10.1f\n"
	    "ZeroMQ CURVE round trip p50 (us)          %10.1f\n"
	    "ZeroMQ CURVE round trip p99 (us)          %10.1f\n"
	    "ZeroMQ CURVE msgs/s, pipelined            %10.0f\n",
	    s1, cores, sn, o1, cores, on, l1, l32, l256, lr256, c50, c99, p50,
	    p99, tput);
	printf("{\"cores\": %ld, \"seconds\": %.1f, "
	    "\"ed25519_sodium_1\": %.0f, \"ed25519_sodium_all\": %.0f, "
	    "\"ed25519_openssl_1\": %.0f, \"ed25519_openssl_all\": %.0f, "
	    "\"lmdb_puts_commit_1\": %.0f, \"lmdb_puts_commit_32\": %.0f, "
	    "\"lmdb_puts_commit_256\": %.0f, "
	    "\"lmdb_puts_random_commit_256\": %.0f, "
	    "\"lmdb_commit_p50_us\": %.1f, \"lmdb_commit_p99_us\": %.1f, "
	    "\"zmq_rtt_p50_us\": %.1f, "
	    "\"zmq_rtt_p99_us\": %.1f, \"zmq_msgs_per_s\": %.0f}\n",
	    cores, seconds, s1, sn, o1, on, l1, l32, l256, lr256, c50, c99,
	    p50, p99, tput);
	return 0;
}
