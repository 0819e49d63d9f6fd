/*
 * test_watch — the agent's watch over the broker's audit log
 * (agent/watch.c), with real keys and a real RFC 9162 tree: the first
 * checkpoint is taken and kept in the state file; a newer one is adopted
 * only when the broker's consistency proof holds; a rewound log, a fork
 * (same size, other root), a proof that does not hold, or a checkpoint not
 * signed by the broker make the watch inconsistent — logged, kept across
 * a restart, and carried as a warning.
 */
#include "testutil.h"

#include "../../agent/watch.h"
#include "ehx/checkpoint.h"
#include "ehx/crypto.h"
#include "ehx/err.h"
#include "ehx/log.h"
#include "ehx/merkle.h"

#define N 40

static char dir[PATH_MAX], state[PATH_MAX];
static struct ehx_signer *broker, *police, *health, *school;
static struct ehx_ca *ca;
static unsigned char nodes[8][N][32];

static int
get(void *ctx, unsigned l, uint64_t i, unsigned char out[32])
{
	(void)ctx;
	memcpy(out, nodes[l][i], 32);
	return 0;
}

static int
put(void *ctx, unsigned l, uint64_t i, const unsigned char h[32])
{
	(void)ctx;
	memcpy(nodes[l][i], h, 32);
	return 0;
}

static int
setup(void **state_)
{
	char k[PATH_MAX], c[PATH_MAX];

	(void)state_;
	ehx_log_level_current = -1;
	if (tu_mkdtemp(dir, sizeof(dir), "watch") != 0 ||
	    tu_sh("'%s' ca '%s' >/dev/null && '%s' broker '%s' >/dev/null && "
	    "'%s' agency '%s' police police >/dev/null && "
	    "'%s' agency '%s' health health >/dev/null && "
	    "'%s' agency '%s' school school >/dev/null", tu_pki(), dir,
	    tu_pki(), dir, tu_pki(), dir, tu_pki(), dir, tu_pki(), dir) != 0)
		return -1;
	snprintf(c, sizeof(c), "%s/ca/ca.crt", dir);
	if (ehx_ca_load(c, &ca) != 0)
		return -1;
	snprintf(k, sizeof(k), "%s/agencies/health/health.key", dir);
	snprintf(c, sizeof(c), "%s/agencies/health/health.crt", dir);
	if (ehx_signer_load(k, c, &health) != 0)
		return -1;
	snprintf(k, sizeof(k), "%s/agencies/school/school.key", dir);
	snprintf(c, sizeof(c), "%s/agencies/school/school.crt", dir);
	if (ehx_signer_load(k, c, &school) != 0)
		return -1;
	snprintf(k, sizeof(k), "%s/broker/broker.key", dir);
	snprintf(c, sizeof(c), "%s/broker/broker.crt", dir);
	if (ehx_signer_load(k, c, &broker) != 0)
		return -1;
	snprintf(k, sizeof(k), "%s/agencies/police/police.key", dir);
	snprintf(c, sizeof(c), "%s/agencies/police/police.crt", dir);
	if (ehx_signer_load(k, c, &police) != 0)
		return -1;
	for (uint64_t i = 0; i < N; i++) {
		unsigned char leaf[32];

		ehx_merkle_leaf_hash(&i, sizeof(i), leaf);
		ehx_merkle_append(get, put, NULL, i, leaf);
	}
	snprintf(state, sizeof(state), "%s/agent.state", dir);
	return 0;
}

static int
teardown(void **state_)
{
	(void)state_;
	ehx_signer_free(broker);
	ehx_signer_free(police);
	ehx_signer_free(health);
	ehx_signer_free(school);
	ehx_ca_free(ca);
	tu_rmtree(dir);
	return 0;
}

struct cp {
	Ehx__Checkpoint cp;
	unsigned char root[32], sig[64];
};

static void
make_cp(struct cp *c, uint64_t size, const struct ehx_signer *by)
{
	ehx__checkpoint__init(&c->cp);
	assert_int_equal(ehx_merkle_root(get, NULL, size, c->root), 0);
	c->cp.origin = "broker";
	c->cp.size = size;
	c->cp.root.data = c->root;
	c->cp.root.len = 32;
	c->cp.time = 1767225600000LL + (int64_t)size;
	assert_int_equal(ehx_checkpoint_sign(by, &c->cp, c->sig), 0);
}

static void
open_watch(struct watch *w)
{
	char err[512];

	memset(w, 0, sizeof(*w));
	assert_int_equal(watch_open(w, state, err, sizeof(err)), 0);
	w->agency = "police";
	w->broker_id = "broker";
	w->broker_cert = ehx_signer_cert(broker);
	w->signer = police;
	w->timeout_ms = 5000;
}

/* Answer the watch's pending proof request with a proof from old to new
 * (bad: one hash changed). */
static void
answer_proof(struct watch *w, struct cp *newcp, bool bad)
{
	Ehx__Body b = EHX__BODY__INIT;
	Ehx__ProofResult pr = EHX__PROOF_RESULT__INIT;
	unsigned char path[EHX_MERKLE_MAX_PROOF][32];
	ProtobufCBinaryData bins[EHX_MERKLE_MAX_PROOF];
	size_t n;

	assert_true(w->proof.busy);
	assert_int_equal(ehx_merkle_consistency_proof(get, NULL,
	    w->state->checkpoint->size, newcp->cp.size, path,
	    EHX_MERKLE_MAX_PROOF, &n), 0);
	if (bad && n > 0)
		path[0][0] ^= 1;
	for (size_t i = 0; i < n; i++) {
		bins[i].data = path[i];
		bins[i].len = 32;
	}
	pr.checkpoint = &newcp->cp;
	pr.consistency = bins;
	pr.n_consistency = n;
	b.in_reply_to.data = w->proof.id;
	b.in_reply_to.len = EHX_MSGID_LEN;
	b.payload_case = EHX__BODY__PAYLOAD_PROOF;
	b.proof = &pr;
	assert_true(watch_reply(w, &b, 1767225700000LL));
}

/* Answer the watch's pending proof request with an error. */
static void
answer_error(struct watch *w, int code)
{
	Ehx__Body b = EHX__BODY__INIT;
	Ehx__Error e = EHX__ERROR__INIT;

	assert_true(w->proof.busy);
	e.code = (Ehx__ErrorCode)ehx_err_to_wire(code);
	e.message = "the checkpoint holds 9 records";
	b.in_reply_to.data = w->proof.id;
	b.in_reply_to.len = EHX_MSGID_LEN;
	b.payload_case = EHX__BODY__PAYLOAD_ERROR;
	b.error = &e;
	assert_true(watch_reply(w, &b, 1767225700000LL));
}

static void
test_watch(void **state_)
{
	struct watch w;
	struct cp c5, c9, c20, c9b, c30, forged;

	(void)state_;
	make_cp(&c5, 5, broker);
	make_cp(&c9, 9, broker);
	make_cp(&c20, 20, broker);
	make_cp(&c30, 30, broker);
	make_cp(&forged, 25, police);

	open_watch(&w);
	assert_null(w.state->checkpoint);
	assert_null(watch_warning(&w));
	/* The first checkpoint is taken, kept and cosigned. */
	watch_seen(&w, &c5.cp, 1);
	assert_non_null(w.state->checkpoint);
	assert_int_equal(w.state->checkpoint->size, 5);
	assert_true(w.cosign.busy);
	/* A newer one: a proof is asked for, and adopted when it holds. */
	watch_seen(&w, &c9.cp, 2);
	assert_true(w.proof.busy);
	answer_proof(&w, &c9, false);
	assert_int_equal(w.state->checkpoint->size, 9);
	assert_true(w.state->consistent);
	/* The same again changes nothing. */
	watch_seen(&w, &c9.cp, 3);
	assert_false(w.proof.busy);
	/* Kept across a restart. */
	watch_free(&w);
	open_watch(&w);
	assert_int_equal(w.state->checkpoint->size, 9);
	assert_memory_equal(w.state->checkpoint->root.data, c9.root, 32);
	/* A proof that does not hold: inconsistent, checkpoint kept. */
	watch_seen(&w, &c20.cp, 4);
	answer_proof(&w, &c20, true);
	assert_false(w.state->consistent);
	assert_int_equal(w.state->checkpoint->size, 9);
	assert_non_null(strstr(w.state->problem, "does not extend"));
	assert_non_null(watch_warning(&w));
	watch_free(&w);
	/* Sticky across a restart, until an operator removes the file. */
	open_watch(&w);
	assert_false(w.state->consistent);
	assert_non_null(watch_warning(&w));
	watch_free(&w);
	assert_int_equal(unlink(state), 0);

	/* An older checkpoint in a retried request's stored reply is not a
	 * rewind: the broker's newest checkpoint is ours. */
	open_watch(&w);
	watch_seen(&w, &c9.cp, 5);
	watch_seen(&w, &c20.cp, 6);
	answer_proof(&w, &c20, false);
	assert_int_equal(w.state->checkpoint->size, 20);
	watch_seen(&w, &c9.cp, 7);
	assert_true(w.proof.busy);
	assert_true(w.state->consistent);
	answer_proof(&w, &c20, false);
	assert_true(w.state->consistent);
	assert_null(watch_warning(&w));
	/* A rewound log: the broker has no checkpoint as large as ours. */
	watch_seen(&w, &c9.cp, 8);
	answer_error(&w, EHX_ERR_INVALID_FIELD);
	assert_false(w.state->consistent);
	assert_non_null(strstr(w.state->problem, "went back from 20"));
	watch_free(&w);
	assert_int_equal(unlink(state), 0);
	/* Or its newest checkpoint is smaller than ours. */
	open_watch(&w);
	watch_seen(&w, &c20.cp, 9);
	watch_seen(&w, &c5.cp, 10);
	{
		Ehx__Body b = EHX__BODY__INIT;
		Ehx__ProofResult pr = EHX__PROOF_RESULT__INIT;

		pr.checkpoint = &c5.cp;
		b.in_reply_to.data = w.proof.id;
		b.in_reply_to.len = EHX_MSGID_LEN;
		b.payload_case = EHX__BODY__PAYLOAD_PROOF;
		b.proof = &pr;
		assert_true(watch_reply(&w, &b, 1767225700000LL));
	}
	assert_false(w.state->consistent);
	assert_non_null(strstr(w.state->problem, "went back from 20 to 5"));
	watch_free(&w);
	assert_int_equal(unlink(state), 0);

	/* A fork: the same size, another root (signed by the broker). */
	open_watch(&w);
	watch_seen(&w, &c9.cp, 7);
	c9b = c9;
	c9b.cp.root.data = c9b.root;
	c9b.root[3] ^= 1;
	assert_int_equal(ehx_checkpoint_sign(broker, &c9b.cp, c9b.sig), 0);
	watch_seen(&w, &c9b.cp, 8);
	assert_false(w.state->consistent);
	assert_non_null(strstr(w.state->problem, "forked"));
	watch_free(&w);
	assert_int_equal(unlink(state), 0);

	/* Not signed by the broker. */
	open_watch(&w);
	watch_seen(&w, &c9.cp, 9);
	watch_seen(&w, &forged.cp, 10);
	assert_false(w.state->consistent);
	assert_non_null(strstr(w.state->problem, "not signed by the broker"));
	watch_free(&w);
	assert_int_equal(unlink(state), 0);
	(void)c30;

	/* A state file that is not one is refused at start-up. */
	assert_int_equal(tu_write(state, "not protobuf \xff\xff\xff", 16, 0600),
	    0);
	{
		struct watch w2;
		char err[512];

		memset(&w2, 0, sizeof(w2));
		assert_int_not_equal(watch_open(&w2, state, err, sizeof(err)), 0);
		assert_non_null(strstr(err, "not an agent state file"));
	}
	/* Nor one others may read. */
	assert_int_equal(chmod(state, 0644), 0);
	{
		struct watch w2;
		char err[512];

		memset(&w2, 0, sizeof(w2));
		assert_int_not_equal(watch_open(&w2, state, err, sizeof(err)), 0);
	}
}

/*
 * The agent asks for the newest checkpoint on its own (a broker may attach
 * none). A pull sent before it held any, answered after a reply's
 * checkpoint was adopted, carries no proof from that one: it is asked
 * again, not judged a broken log.
 */
static void
test_pull(void **state_)
{
	struct watch w;
	struct cp c5, c9;
	int64_t next = INT64_MAX;
	Ehx__Body b = EHX__BODY__INIT;
	Ehx__ProofResult pr = EHX__PROOF_RESULT__INIT;

	(void)state_;
	make_cp(&c5, 5, broker);
	make_cp(&c9, 9, broker);
	unlink(state);
	open_watch(&w);
	w.poll_ms = 1000;
	w.deadline_ms = 5000;
	watch_tick(&w, NULL, 1000, &next);
	assert_true(w.proof.busy);      /* asked, holding nothing */
	watch_seen(&w, &c5.cp, 1001);   /* a reply's checkpoint, adopted */
	assert_int_equal(w.state->checkpoint->size, 5);
	pr.checkpoint = &c9.cp;         /* no proof: it was asked from 0 */
	b.in_reply_to.data = w.proof.id;
	b.in_reply_to.len = EHX_MSGID_LEN;
	b.payload_case = EHX__BODY__PAYLOAD_PROOF;
	b.proof = &pr;
	assert_true(watch_reply(&w, &b, 1002));
	assert_true(w.state->consistent);
	assert_int_equal(w.state->checkpoint->size, 5);
	next = INT64_MAX;
	watch_tick(&w, NULL, 1003, &next);      /* asked again, from 5 */
	assert_true(w.proof.busy);
	answer_proof(&w, &c9, false);
	assert_true(w.state->consistent);
	assert_int_equal(w.state->checkpoint->size, 9);
	watch_free(&w);
	assert_int_equal(unlink(state), 0);
}

/* One agency's cosignature of c, as query_proof's cosigned carries it. */
struct cosigned {
	Ehx__Cosigned c;
	Ehx__Checkpoint cp;
	Ehx__Cosignature cs, *csp[1];
	unsigned char sig[64];
	char *pem;
};

static void
make_cosigned(struct cosigned *o, const struct cp *c,
    const struct ehx_signer *by, const char *agency)
{
	size_t len;

	ehx__cosigned__init(&o->c);
	o->cp = c->cp;
	assert_int_equal(ehx_cosign(by, agency, &o->cp, 1767225601000LL,
	    &o->cs, o->sig), 0);
	o->csp[0] = &o->cs;
	o->cp.cosignatures = o->csp;
	o->cp.n_cosignatures = 1;
	o->c.checkpoint = &o->cp;
	assert_int_equal(ehx_cert_pem(ehx_signer_cert(by), &o->pem, &len), 0);
	o->c.certificate.data = (uint8_t *)o->pem;
	o->c.certificate.len = len;
}

/* Answer the watch's agreement request with these cosigned entries. */
static void
answer_agreement(struct watch *w, const struct cp *target,
    Ehx__Cosigned **entries, size_t n, int64_t now)
{
	Ehx__Body b = EHX__BODY__INIT;
	Ehx__ProofResult pr = EHX__PROOF_RESULT__INIT;

	assert_true(w->agree.busy);
	pr.checkpoint = (Ehx__Checkpoint *)&target->cp;
	pr.cosigned = entries;
	pr.n_cosigned = n;
	b.in_reply_to.data = w->agree.id;
	b.in_reply_to.len = EHX_MSGID_LEN;
	b.payload_case = EHX__BODY__PAYLOAD_PROOF;
	b.proof = &pr;
	assert_true(watch_reply(w, &b, now));
}

/*
 * Other agencies' cosignatures: two that agree confirm the log; an entry
 * the broker leaves empty, the broker's own cosignature and a repeat do
 * not count (nor crash the agent); too few within the deadline warn NOT
 * CONFIRMED; a valid cosignature of a log that does not extend ours is a
 * split view.
 */
static void
test_agreement(void **state_)
{
	struct watch w;
	struct cp c9, c9b;
	struct cosigned h, s, b;
	Ehx__Cosigned empty = EHX__COSIGNED__INIT;
	Ehx__Cosigned *entries[5];
	int64_t next = INT64_MAX;

	(void)state_;
	make_cp(&c9, 9, broker);
	c9b = c9;
	c9b.cp.root.data = c9b.root;
	c9b.root[5] ^= 1;
	assert_int_equal(ehx_checkpoint_sign(broker, &c9b.cp, c9b.sig), 0);
	make_cosigned(&h, &c9, health, "health");
	make_cosigned(&s, &c9, school, "school");
	make_cosigned(&b, &c9, broker, "broker");
	unlink(state);
	open_watch(&w);
	w.ca = ca;
	w.poll_ms = 1000;
	w.deadline_ms = 5000;
	w.quorum = 2;
	watch_seen(&w, &c9.cp, 1000);
	watch_answered(&w, 1000);
	watch_tick(&w, NULL, 1000, &next);
	entries[0] = &empty;            /* nothing in it: not counted */
	entries[1] = &b.c;              /* the broker's: not an agency */
	entries[2] = &h.c;
	entries[3] = &h.c;              /* the same agency again */
	answer_agreement(&w, &c9, entries, 4, 1001);
	assert_null(w.state->confirmed);        /* one agency: not enough */
	watch_tick(&w, NULL, 2001, &next);
	answer_agreement(&w, &c9, entries, 4, 2002);
	assert_null(watch_warning(&w));         /* not yet the deadline */
	next = INT64_MAX;
	watch_tick(&w, NULL, 7001, &next);      /* past it: warned */
	assert_non_null(watch_warning(&w));
	assert_non_null(strstr(watch_warning(&w), "NOT CONFIRMED: 1 of the 2 "
	    "other agencies needed (health)"));
	entries[4] = &s.c;
	answer_agreement(&w, &c9, entries, 5, 7002);
	assert_non_null(w.state->confirmed);
	assert_string_equal(w.state->confirmed_by, "health, school");
	assert_null(watch_warning(&w));         /* over */
	assert_true(w.state->consistent);
	/* Another log of the same size, validly cosigned: a split view. */
	free(s.pem);
	make_cosigned(&s, &c9b, school, "school");
	watch_tick(&w, NULL, 8003, &next);
	entries[0] = &s.c;
	answer_agreement(&w, &c9, entries, 1, 8004);
	assert_false(w.state->consistent);
	assert_non_null(strstr(w.state->problem, "split view: school"));
	watch_free(&w);
	free(h.pem);
	free(s.pem);
	free(b.pem);
	assert_int_equal(unlink(state), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_watch),
		cmocka_unit_test(test_pull),
		cmocka_unit_test(test_agreement),
	};

	return cmocka_run_group_tests_name("test_watch", tests, setup, teardown);
}
