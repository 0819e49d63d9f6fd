/*
 * ehx-loadgen — publish load for `make bench`: signs COUNT publish requests
 * as one agency beforehand (new flags: distinct refs, valid NHS numbers over
 * CHILDREN children), then sends them to the broker over ZeroMQ CURVE with
 * up to WINDOW in flight, and counts the broker's acknowledgements. So the
 * broker alone is measured: its checks, its durable commits, its signed
 * replies. Prints one JSON object:
 *   {"agency", "count", "sign_per_s", "acked", "refused", "seconds",
 *    "acks_per_s"}
 * Exit status: 0 when every request was acknowledged, 1 otherwise, 2 on bad
 * usage or keys.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <zmq.h>

#include "ehx.pb-c.h"
#include "ehx/crypto.h"
#include "ehx/limits.h"
#include "ehx/nhs.h"
#include "ehx/util.h"
#include "ehx/wire.h"

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A valid NHS number of its own for n. */
static void
nhs_for(long n, char out[EHX_NHS_LEN + 1])
{
	for (long p = 400000000L + n * 7919L;; p++) {
		int sum = 0, c;

		snprintf(out, EHX_NHS_LEN + 1, "%09ld0", p % 1000000000L);
		for (int i = 0; i < 9; i++)
			sum += (out[i] - '0') * (10 - i);
		if ((c = 11 - sum % 11) == 11)
			c = 0;
		if (c == 10)
			continue;
		out[9] = (char)('0' + c);
		return;
	}
}

static void
usage(void)
{
	fprintf(stderr,
"usage: ehx-loadgen --broker ENDPOINT --server-curve PUB --curve KEY\n"
"                   --key KEY --cert CERT --agency ID [--count N]\n"
"                   [--window W] [--children C] [--tag TAG]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "broker", 1, NULL, 'B' }, { "server-curve", 1, NULL, 'S' },
		{ "curve", 1, NULL, 'C' }, { "key", 1, NULL, 'K' },
		{ "cert", 1, NULL, 'c' }, { "agency", 1, NULL, 'a' },
		{ "count", 1, NULL, 'n' }, { "window", 1, NULL, 'w' },
		{ "children", 1, NULL, 'h' }, { "tag", 1, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	const char *broker = NULL, *server_curve = NULL, *curve = NULL;
	const char *key = NULL, *cert = NULL, *agency = NULL, *tag = "lg";
	long count = 10000, window = 64, children = 1000;
	struct ehx_signer *s = NULL;
	unsigned char secret[EHX_KEY_LEN], pub[EHX_KEY_LEN], server[EHX_KEY_LEN];
	char zs[41], zp[41], zsv[41];
	unsigned char **env;
	size_t *envlen;
	long acked = 0, refused = 0, sent = 0, got = 0;
	double t0, t1, t2;
	void *ctx, *d;
	int c, zero = 0;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1)
		switch (c) {
		case 'B': broker = optarg; break;
		case 'S': server_curve = optarg; break;
		case 'C': curve = optarg; break;
		case 'K': key = optarg; break;
		case 'c': cert = optarg; break;
		case 'a': agency = optarg; break;
		case 'n': count = atol(optarg); break;
		case 'w': window = atol(optarg); break;
		case 'h': children = atol(optarg); break;
		case 't': tag = optarg; break;
		default: usage();
		}
	if (!broker || !server_curve || !curve || !key || !cert || !agency ||
	    count < 1 || count > 10000000 || window < 1 || window > 4096 ||
	    children < 1 || strlen(tag) > 16)
		usage();
	if (ehx_signer_load(key, cert, &s) != 0 ||
	    ehx_curve_load_secret(curve, secret, pub) != 0 ||
	    ehx_curve_load_public(server_curve, server) != 0) {
		fprintf(stderr, "ehx-loadgen: cannot load keys\n");
		return 2;
	}
	if ((env = calloc((size_t)count, sizeof(*env))) == NULL ||
	    (envlen = calloc((size_t)count, sizeof(*envlen))) == NULL)
		return 2;

	/* Sign them all first: the sending measures the broker alone. */
	t0 = now_s();
	for (long i = 0; i < count; i++) {
		Ehx__Body b = EHX__BODY__INIT;
		Ehx__Person p = EHX__PERSON__INIT;
		Ehx__PublishFlag pf = EHX__PUBLISH_FLAG__INIT;
		Ehx__Practitioner pr = EHX__PRACTITIONER__INIT;
		unsigned char id[EHX_MSGID_LEN];
		char nhs[EHX_NHS_LEN + 1], ref[64];

		ehx_message_id(id);
		nhs_for(i % children, nhs);
		snprintf(ref, sizeof(ref), "%s-%ld", tag, i);
		b.message_id.data = id;
		b.message_id.len = sizeof(id);
		b.sender = (char *)agency;
		b.recipient = "broker";
		b.sent_at = ehx_now_ms();
		p.user_id = "loadgen";
		p.name = "Load Generator";
		p.role = EHX__ROLE__ROLE_SYSTEM;
		b.person = &p;
		pr.name = "Bench Practitioner";
		pr.contact = "01234 567890";
		pf.nhs_number = nhs;
		pf.ref = ref;
		pf.category = EHX__CATEGORY__CATEGORY_OFFENDING;
		pf.level = (uint32_t)(1 + i % 4);
		pf.practitioner = &pr;
		b.payload_case = EHX__BODY__PAYLOAD_PUBLISH_FLAG;
		b.publish_flag = &pf;
		if (ehx_envelope_seal(s, &b, &env[i], &envlen[i]) != 0) {
			fprintf(stderr, "ehx-loadgen: cannot sign\n");
			return 2;
		}
	}
	t1 = now_s();

	zmq_z85_encode(zs, secret, 32);
	zmq_z85_encode(zp, pub, 32);
	zmq_z85_encode(zsv, server, 32);
	OPENSSL_cleanse(secret, sizeof(secret));
	ctx = zmq_ctx_new();
	d = zmq_socket(ctx, ZMQ_DEALER);
	zmq_setsockopt(d, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(d, ZMQ_CURVE_SERVERKEY, zsv, 40);
	zmq_setsockopt(d, ZMQ_CURVE_PUBLICKEY, zp, 40);
	zmq_setsockopt(d, ZMQ_CURVE_SECRETKEY, zs, 40);
	OPENSSL_cleanse(zs, sizeof(zs));
	if (zmq_connect(d, broker) != 0) {
		fprintf(stderr, "ehx-loadgen: %s\n", zmq_strerror(zmq_errno()));
		return 2;
	}
	t2 = now_s();
	while (got < count) {
		zmq_pollitem_t it = { d, 0, ZMQ_POLLIN, 0 };
		unsigned char buf[EHX_MAX_MESSAGE];
		int n;

		while (sent < count && sent - got < window) {
			zmq_send(d, env[sent], envlen[sent], 0);
			sent++;
		}
		if (zmq_poll(&it, 1, 30000) <= 0) {
			fprintf(stderr, "ehx-loadgen: no reply for 30 s\n");
			break;
		}
		if ((n = zmq_recv(d, buf, sizeof(buf), 0)) < 0)
			continue;
		got++;
		{
			Ehx__Envelope *e = NULL;
			Ehx__Body *rb = NULL;
			char why[64];

			if (ehx_envelope_decode(buf, (size_t)n, &e) == 0 &&
			    ehx_body_decode(e->body.data, e->body.len, &rb, why,
			    sizeof(why)) == 0 &&
			    rb->payload_case == EHX__BODY__PAYLOAD_ACK)
				acked++;
			else
				refused++;
			ehx_body_free(rb);
			ehx_envelope_free(e);
		}
	}
	{
		double sign_s = t1 - t0, send_s = now_s() - t2;

		printf("{\"agency\": \"%s\", \"count\": %ld, "
		    "\"sign_per_s\": %.0f, \"acked\": %ld, \"refused\": %ld, "
		    "\"seconds\": %.3f, \"acks_per_s\": %.0f}\n", agency,
		    count, (double)count / sign_s, acked, refused, send_s,
		    (double)got / send_s);
	}
	for (long i = 0; i < count; i++)
		free(env[i]);
	free(env);
	free(envlen);
	zmq_close(d);
	zmq_ctx_term(ctx);
	ehx_signer_free(s);
	return acked == count ? 0 : 1;
}
