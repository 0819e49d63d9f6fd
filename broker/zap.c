/*
 * zap.c — the ZeroMQ authentication handler (ZAP, RFC 27) for the broker's
 * CURVE socket. libzmq asks it about every handshake; it admits a client
 * only when its CURVE public key is in the registry, and names the agency as
 * the connection's User-Id, which the pipeline reads from every message to
 * bind envelopes to the connection they came on.
 */
#include <stdio.h>
#include <string.h>

#include <zmq.h>

#include "ehx/log.h"
#include "ehx/util.h"
#include "registry.h"
#include "zap.h"

#define ZAP_MAX_FRAMES 8
#define ZAP_MAX_FRAME 256

void
zap_handle(struct broker *b)
{
	unsigned char frames[ZAP_MAX_FRAMES][ZAP_MAX_FRAME];
	size_t lens[ZAP_MAX_FRAMES];
	const struct agency *a = NULL;
	const char *code = "400", *text = "unregistered key", *user = "";
	char hexkey[2 * EHX_KEY_LEN + 1], addr[64];
	int n = 0, more = 1;
	size_t moresz = sizeof(more);

	while (more) {
		zmq_msg_t m;

		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, b->zap, 0) < 0) {
			zmq_msg_close(&m);
			return;
		}
		if (n < ZAP_MAX_FRAMES) {
			lens[n] = zmq_msg_size(&m);
			if (lens[n] > ZAP_MAX_FRAME)
				lens[n] = ZAP_MAX_FRAME + 1;	/* too long: invalid */
			else
				memcpy(frames[n], zmq_msg_data(&m), lens[n]);
		}
		n++;
		zmq_msg_close(&m);
		zmq_getsockopt(b->zap, ZMQ_RCVMORE, &more, &moresz);
	}
	/* version, request id, domain, address, identity, mechanism, key */
	if (n < 6 || n > ZAP_MAX_FRAMES || lens[0] != 3 ||
	    memcmp(frames[0], "1.0", 3) != 0 || lens[1] > ZAP_MAX_FRAME) {
		log_warn("malformed ZAP request dropped");
		return;
	}
	snprintf(addr, sizeof(addr), "%.*s", (int)(lens[3] < 60 ? lens[3] : 60),
	    (const char *)frames[3]);
	if (lens[5] == 5 && memcmp(frames[5], "CURVE", 5) == 0 && n == 7 &&
	    lens[6] == EHX_KEY_LEN &&
	    (a = registry_by_curve(&b->reg, frames[6])) != NULL) {
		code = "200";
		text = "OK";
		user = a->id;
		log_info("handshake from %s admitted as %s", addr, a->id);
	} else {
		if (n == 7 && lens[6] == EHX_KEY_LEN)
			ehx_hex(hexkey, frames[6], EHX_KEY_LEN);
		else
			snprintf(hexkey, sizeof(hexkey), "(none)");
		log_warn("handshake from %s refused: unregistered CURVE key %s",
		    addr, hexkey);
	}
	zmq_send(b->zap, "1.0", 3, ZMQ_SNDMORE);
	zmq_send(b->zap, frames[1], lens[1], ZMQ_SNDMORE);
	zmq_send(b->zap, code, 3, ZMQ_SNDMORE);
	zmq_send(b->zap, text, strlen(text), ZMQ_SNDMORE);
	zmq_send(b->zap, user, strlen(user), ZMQ_SNDMORE);
	zmq_send(b->zap, "", 0, 0);
}
