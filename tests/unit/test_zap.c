/*
 * test_zap — broker/zap.c over a real ZeroMQ inproc pair: a ZAP request
 * for a registered CURVE key is answered 200 with the agency as User-Id;
 * an unregistered key, another mechanism or a missing key is answered 400
 * with no user; a request that is not ZAP 1.0 gets no answer at all.
 */
#include "testutil.h"

#include <zmq.h>

#include "../../broker/broker.h"
#include "../../broker/registry.h"
#include "../../broker/zap.h"
#include "ehx/crypto.h"

static char dir[PATH_MAX];
static struct broker b;
static void *client;

static int
setup(void **state)
{
	const char *pki;
	char path[PATH_MAX], err[512];

	(void)state;
	if ((pki = tu_pki()) == NULL || tu_mkdtemp(dir, sizeof(dir), "zap") != 0)
		return -1;
	if (tu_sh("'%s' ca '%s' >/dev/null && '%s' agency '%s' police police "
	    ">/dev/null && '%s' agency '%s' health health >/dev/null && "
	    "'%s' ca '%s/other' >/dev/null && '%s' agency '%s/other' rogue "
	    "police >/dev/null", pki, dir, pki, dir, pki, dir, pki, dir, pki,
	    dir) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/ca/ca.crt", dir);
	if (ehx_ca_load(path, &b.ca) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/registry.ini", dir);
	if (registry_load(path, b.ca, &b.reg, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	b.zctx = zmq_ctx_new();
	b.zap = zmq_socket(b.zctx, ZMQ_REP);
	client = zmq_socket(b.zctx, ZMQ_REQ);
	if (zmq_bind(b.zap, "inproc://test-zap") != 0 ||
	    zmq_connect(client, "inproc://test-zap") != 0)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	zmq_close(client);
	zmq_close(b.zap);
	zmq_ctx_term(b.zctx);
	registry_free(&b.reg);
	ehx_ca_free(b.ca);
	tu_rmtree(dir);
	return 0;
}

/* Send a ZAP request of n frames; let the handler answer it. */
static void
ask(const char *const *frames, const size_t *lens, int n)
{
	for (int i = 0; i < n; i++)
		assert_true(zmq_send(client, frames[i], lens[i],
		    i + 1 < n ? ZMQ_SNDMORE : 0) >= 0);
	zap_handle(&b);
}

/* Read the six-frame ZAP reply: the status code and the user id. */
static void
answer(char *code, char *user)
{
	char f[6][128];
	int n = 0, more = 1;
	size_t sz = sizeof(more);

	while (more) {
		int got = zmq_recv(client, f[n < 6 ? n : 5], 127, 0);

		assert_true(got >= 0);
		f[n < 6 ? n : 5][got] = '\0';
		n++;
		zmq_getsockopt(client, ZMQ_RCVMORE, &more, &sz);
	}
	assert_int_equal(n, 6);
	assert_string_equal(f[0], "1.0");
	assert_string_equal(f[1], "req-7");
	strcpy(code, f[2]);
	strcpy(user, f[4]);
}

static void
curve_ask(const unsigned char *key, size_t keylen, const char *mechanism)
{
	const char *frames[7] = { "1.0", "req-7", "ehx", "127.0.0.1", "",
	    mechanism, (const char *)key };
	size_t lens[7] = { 3, 5, 3, 9, 0, strlen(mechanism), keylen };

	ask(frames, lens, key != NULL ? 7 : 6);
}

static void
test_registered_key(void **state)
{
	unsigned char pub[EHX_KEY_LEN];
	char path[PATH_MAX], code[128], user[128];

	(void)state;
	snprintf(path, sizeof(path), "%s/agencies/health/curve.pub", dir);
	assert_int_equal(ehx_curve_load_public(path, pub), 0);
	curve_ask(pub, sizeof(pub), "CURVE");
	answer(code, user);
	assert_string_equal(code, "200");
	assert_string_equal(user, "health");
}

static void
test_unregistered_key(void **state)
{
	unsigned char pub[EHX_KEY_LEN];
	char path[PATH_MAX], code[128], user[128];

	(void)state;
	snprintf(path, sizeof(path), "%s/other/agencies/rogue/curve.pub", dir);
	assert_int_equal(ehx_curve_load_public(path, pub), 0);
	curve_ask(pub, sizeof(pub), "CURVE");
	answer(code, user);
	assert_string_equal(code, "400");
	assert_string_equal(user, "");
}

static void
test_wrong_mechanism_or_key(void **state)
{
	unsigned char pub[EHX_KEY_LEN];
	char path[PATH_MAX], code[128], user[128];

	(void)state;
	snprintf(path, sizeof(path), "%s/agencies/police/curve.pub", dir);
	assert_int_equal(ehx_curve_load_public(path, pub), 0);
	/* A registered key, but offered under PLAIN: refused. */
	curve_ask(pub, sizeof(pub), "PLAIN");
	answer(code, user);
	assert_string_equal(code, "400");
	/* A key of the wrong length. */
	curve_ask(pub, 31, "CURVE");
	answer(code, user);
	assert_string_equal(code, "400");
	/* No key at all. */
	curve_ask(NULL, 0, "CURVE");
	answer(code, user);
	assert_string_equal(code, "400");
	assert_string_equal(user, "");
}

static void
test_not_zap(void **state)
{
	const char *frames[2] = { "2.0", "req-7" };
	size_t lens[2] = { 3, 5 };
	zmq_pollitem_t it = { client, 0, ZMQ_POLLIN, 0 };

	(void)state;
	ask(frames, lens, 2);
	/* Dropped without an answer. */
	assert_int_equal(zmq_poll(&it, 1, 200), 0);
	/* A REQ socket waits for its answer forever: start a new one. */
	zmq_close(client);
	client = zmq_socket(b.zctx, ZMQ_REQ);
	assert_int_equal(zmq_connect(client, "inproc://test-zap"), 0);
	/* The REP side also waits to send; give it a valid request next
	 * after resetting it the same way. */
	zmq_close(b.zap);
	b.zap = zmq_socket(b.zctx, ZMQ_REP);
	assert_int_equal(zmq_bind(b.zap, "inproc://test-zap2"), 0);
	zmq_close(client);
	client = zmq_socket(b.zctx, ZMQ_REQ);
	assert_int_equal(zmq_connect(client, "inproc://test-zap2"), 0);
	test_registered_key(state);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_registered_key),
		cmocka_unit_test(test_unregistered_key),
		cmocka_unit_test(test_wrong_mechanism_or_key),
		cmocka_unit_test(test_not_zap),
	};

	return cmocka_run_group_tests_name("test_zap", tests, setup, teardown);
}
