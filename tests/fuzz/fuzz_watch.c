/*
 * fuzz_watch — the agent's watch over the audit log (agent/watch.c) on
 * what a hostile broker, or a damaged disk, gives it. The first byte picks
 * what the rest is:
 *   0  an agent state file, opened as the agent opens it at start;
 *   1  a ProofResult answering the agent's pull (newest checkpoint);
 *   2  a ProofResult answering its inclusion question about a decision;
 *   3  a ProofResult answering its agreement question (cosigned entries).
 * The harness signs every checkpoint in an answer with the broker's key,
 * so that mutations reach past the signature check into the proofs, the
 * records and the cosignatures.
 *
 * The broker's key and self-signed certificate (also the CA the watch
 * checks cosigners' certificates against) are made once with the openssl
 * command in a temporary directory, which also holds the state file.
 */
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../agent/watch.h"
#include "ehx/checkpoint.h"
#include "ehx/crypto.h"
#include "ehx/log.h"
#include "ehx/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64], state[128];
static struct ehx_signer *broker;
static struct ehx_ca *ca;

static void
cleanup(void)
{
	char cmd[96];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		return;
}

static void
setup(void)
{
	char cmd[768], key[128], crt[128];

	snprintf(dir, sizeof(dir), "/tmp/ehx-fuzz-watch.XXXXXX");
	if (mkdtemp(dir) == NULL)
		abort();
	atexit(cleanup);
	snprintf(key, sizeof(key), "%s/broker.key", dir);
	snprintf(crt, sizeof(crt), "%s/broker.crt", dir);
	snprintf(state, sizeof(state), "%s/agent.state", dir);
	snprintf(cmd, sizeof(cmd), "openssl genpkey -algorithm ed25519 "
	    "-out %s 2>/dev/null && chmod 600 %s && openssl req -new -x509 "
	    "-key %s -subj /OU=broker/CN=broker -days 3650 -addext "
	    "basicConstraints=critical,CA:TRUE -addext "
	    "keyUsage=critical,keyCertSign,cRLSign,digitalSignature "
	    "-out %s 2>/dev/null", key, key, key, crt);
	if (system(cmd) != 0 || ehx_signer_load(key, crt, &broker) != 0 ||
	    ehx_ca_load(crt, &ca) != 0)
		abort();
	ehx_log_level_current = -1;     /* quiet: nothing logged */
}

/* Sign cp (unpacked: its fields are the decoder's to free) as the
 * broker, when it has the shape of one. */
static void
sign(Ehx__Checkpoint *cp)
{
	unsigned char sig[64], *old, *copy;

	if (cp == NULL || cp->root.len != 32 ||
	    (copy = malloc(sizeof(sig))) == NULL)
		return;
	if (cp->origin != protobuf_c_empty_string)
		free(cp->origin);
	if ((cp->origin = strdup("broker")) == NULL)
		abort();
	cp->time = cp->time < 0 ? 0 : cp->time % (1LL << 50);
	old = cp->signature.data;
	if (ehx_checkpoint_sign(broker, cp, sig) != 0) {
		cp->signature.data = old;
		free(copy);
		return;
	}
	memcpy(copy, sig, sizeof(sig));
	cp->signature.data = copy;
	cp->signature.len = sizeof(sig);
	free(old);
}

/* A watch holding a checkpoint of 8 records, one break-glass decision (3)
 * to check, and its three questions out. */
static void
open_watch(struct watch *w)
{
	Ehx__Checkpoint cp = EHX__CHECKPOINT__INIT;
	Ehx__Body reply = EHX__BODY__INIT;
	unsigned char root[32], sig[64], id[16];
	char err[256];
	int64_t next = INT64_MAX;

	memset(w, 0, sizeof(*w));
	unlink(state);
	if (watch_open(w, state, err, sizeof(err)) != 0)
		abort();
	w->agency = "police";
	w->broker_id = "broker";
	w->broker_cert = ehx_signer_cert(broker);
	w->signer = broker;             /* (nothing is sent) */
	w->ca = ca;
	w->timeout_ms = 5000;
	w->poll_ms = 1000;
	w->deadline_ms = 5000;
	w->quorum = 2;
	memset(root, 0x42, sizeof(root));
	cp.origin = "broker";
	cp.size = 8;
	cp.root.data = root;
	cp.root.len = sizeof(root);
	cp.time = 1767225600000LL;
	if (ehx_checkpoint_sign(broker, &cp, sig) != 0)
		abort();
	watch_seen(w, &cp, 1000);
	watch_answered(w, 1000);
	memset(id, 0x11, sizeof(id));
	reply.in_reply_to.data = id;
	reply.in_reply_to.len = sizeof(id);
	reply.audit_seq = 3;
	reply.payload_case = EHX__BODY__PAYLOAD_ACK;
	watch_decision(w, &reply, NULL, true, 1000);
	watch_tick(w, NULL, 2000, &next);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	struct watch w;
	struct ireq *q;
	Ehx__ProofResult *pr;
	Ehx__Body b = EHX__BODY__INIT;
	int64_t next = INT64_MAX;
	char err[256];

	if (!ready) {
		setup();
		ready = true;
	}
	if (size < 1)
		return 0;
	if (data[0] % 4 == 0) {
		/* A state file, as the agent reads it at start. */
		FILE *f = fopen(state, "wb");

		if (f == NULL)
			abort();
		if (size > 1 && fwrite(data + 1, 1, size - 1, f) != size - 1)
			abort();
		fclose(f);
		memset(&w, 0, sizeof(w));
		if (watch_open(&w, state, err, sizeof(err)) == 0) {
			w.agency = "police";
			(void)watch_warning(&w);
			watch_free(&w);
		}
		return 0;
	}
	if ((pr = ehx__proof_result__unpack(NULL, size - 1, data + 1)) == NULL)
		return 0;
	sign(pr->checkpoint);
	for (size_t i = 0; i < pr->n_cosigned && i < EHX_MAX_COSIGNERS; i++)
		sign(pr->cosigned[i]->checkpoint);
	open_watch(&w);
	q = data[0] % 4 == 1 ? &w.proof : data[0] % 4 == 2 ? &w.incl : &w.agree;
	if (q->busy) {
		b.in_reply_to.data = q->id;
		b.in_reply_to.len = EHX_MSGID_LEN;
		b.payload_case = EHX__BODY__PAYLOAD_PROOF;
		b.proof = pr;
		(void)watch_reply(&w, &b, 3000);
		watch_tick(&w, NULL, 9000, &next);
		(void)watch_warning(&w);
	}
	watch_free(&w);
	ehx__proof_result__free_unpacked(pr, NULL);
	return 0;
}
