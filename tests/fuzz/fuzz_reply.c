/*
 * fuzz_reply — the agent's handling of what the broker sends it
 * (agent/queue.c): any bytes as a reply envelope (opened and checked like
 * every reply), and any NotificationBatch answered to the agent's fetch,
 * whose envelopes hold Bodies this harness signs as the broker — so that
 * mutations reach past the signature into the intake: seq order, restart,
 * duplicates by message id, unreadable notifications, the inbox store.
 *
 * The broker's key and a self-signed certificate for it are made once with
 * the openssl command in a temporary directory, which also holds the
 * agent's LMDB store (made anew every 2000 inputs so it stays small).
 */
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../agent/queue.h"
#include "ehx/crypto.h"
#include "ehx/log.h"
#include "ehx/util.h"
#include "ehx/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];
static struct ehx_signer *broker;
static struct queue q;
static unsigned runs;

static void
cleanup(void)
{
	char cmd[96];

	if (q.env != NULL)
		queue_close(&q);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		return;
}

static void
setup(void)
{
	char cmd[512], key[128], crt[128];

	snprintf(dir, sizeof(dir), "/tmp/ehx-fuzz-reply.XXXXXX");
	if (mkdtemp(dir) == NULL)
		abort();
	atexit(cleanup);
	snprintf(key, sizeof(key), "%s/broker.key", dir);
	snprintf(crt, sizeof(crt), "%s/broker.crt", dir);
	snprintf(cmd, sizeof(cmd), "openssl genpkey -algorithm ed25519 "
	    "-out %s 2>/dev/null && chmod 600 %s && openssl req -new -x509 "
	    "-key %s -subj /OU=broker/CN=broker -days 3650 -out %s 2>/dev/null",
	    key, key, key, crt);
	if (system(cmd) != 0 || ehx_signer_load(key, crt, &broker) != 0)
		abort();
	ehx_log_level_current = -1;     /* quiet: nothing logged */
}

static void
open_queue(void)
{
	char sub[128], err[256], cmd[160];

	if (q.env != NULL) {
		queue_close(&q);
		snprintf(cmd, sizeof(cmd), "rm -rf %s/store", dir);
		if (system(cmd) != 0)
			abort();
	}
	memset(&q, 0, sizeof(q));
	q.agency = "school";
	q.broker_id = "broker";
	q.broker_cert = ehx_signer_cert(broker);
	q.signer = broker;              /* (nothing is sent) */
	q.resend_ms = 5000;
	q.retry_max_ms = 10000;
	q.poll_ms = 2000;
	q.hook_timeout_ms = 1000;
	snprintf(sub, sizeof(sub), "%s/store", dir);
	if (queue_open(&q, sub, err, sizeof(err)) != 0)
		abort();
}

/* Answer the fetch the queue has out with batch, its bodies signed. */
static void
answer(const Ehx__NotificationBatch *in, int64_t now)
{
	Ehx__NotificationBatch out = EHX__NOTIFICATION_BATCH__INIT;
	ProtobufCBinaryData envs[EHX_MAX_FETCH];
	Ehx__Body *reply;
	unsigned char id[EHX_MSGID_LEN], *env = NULL;
	size_t envlen, n = in->n_envelopes < EHX_MAX_FETCH ?
	    in->n_envelopes : EHX_MAX_FETCH;
	Ehx__Body rb = EHX__BODY__INIT;

	memset(envs, 0, sizeof(envs));
	for (size_t i = 0; i < n; i++)
		if (ehx_envelope_seal_bytes(broker, in->envelopes[i].data,
		    in->envelopes[i].len, &envs[i].data, &envs[i].len) != 0)
			envs[i].len = 0;
	out.envelopes = envs;
	out.n_envelopes = n;
	out.pending = in->pending;
	out.restart = in->restart;
	memset(id, 0x5a, sizeof(id));
	rb.message_id.data = id;
	rb.message_id.len = sizeof(id);
	rb.sender = "broker";
	rb.recipient = "school";
	rb.sent_at = now;
	rb.in_reply_to.data = q.fetch_id;
	rb.in_reply_to.len = EHX_MSGID_LEN;
	rb.payload_case = EHX__BODY__PAYLOAD_NOTIFICATIONS;
	rb.notifications = &out;
	if (ehx_envelope_seal(broker, &rb, &env, &envlen) == 0 &&
	    queue_open_envelope(&q, env, envlen, NULL, &reply) == 0) {
		q.fetch_busy = true;
		if (queue_reply(&q, &reply, &env, &envlen, now))
			queue_flush(&q, now);
		ehx_body_free(reply);
	}
	free(env);
	for (size_t i = 0; i < n; i++)
		free(envs[i].data);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Ehx__NotificationBatch *nb;
	Ehx__Body *b = NULL;
	int64_t now = ehx_now_ms();

	if (broker == NULL)
		setup();
	if (q.env == NULL || ++runs % 2000 == 0)
		open_queue();
	/* Any bytes as a reply envelope from the broker. */
	if (queue_open_envelope(&q, data, size, NULL, &b) == 0) {
		unsigned char *copy = malloc(size ? size : 1);
		size_t len = size;

		if (copy != NULL) {
			memcpy(copy, data, size);
			if (queue_reply(&q, &b, &copy, &len, now))
				queue_flush(&q, now);
			free(copy);
		}
		ehx_body_free(b);
	}
	/* As a batch answering the fetch, its bodies signed. */
	if (size <= EHX_MAX_BODY &&
	    (nb = ehx__notification_batch__unpack(NULL, size, data)) != NULL) {
		answer(nb, now);
		ehx__notification_batch__free_unpacked(nb, NULL);
	}
	return 0;
}
