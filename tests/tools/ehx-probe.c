/*
 * ehx-probe — a test client that speaks the broker's protocol directly,
 * holding one agency's keys like an agent does, but able to send what no
 * honest agent would: tampered bodies, another agency's signature, stale or
 * future times, reused message ids, wrong recipients, junk and oversized
 * frames, unknown enum values, any role. The integration tests use it to
 * show that the broker refuses each with the right typed error.
 *
 * With --fake-broker MODE it plays a broker that answers every request
 * wrongly — unsigned (a zero signature), signed by the given key instead
 * of the broker's, or naming another request — so the tests can show
 * that an agent drops such replies.
 *
 * It prints one line per reply: "ok <payload> [<id>]" or
 * "error <name>: <message>", and exits 0 if every reply was ok, 1 if any
 * was an error, 3 if no reply came (with "handshake refused" when the
 * broker's ZAP handler turned the connection away), 2 on bad usage.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "ehx/crypto.h"
#include "ehx/err.h"
#include "ehx/names.h"
#include "ehx/util.h"
#include "ehx/wire.h"

static void
usage(void)
{
	fprintf(stderr,
"usage: ehx-probe --broker ENDPOINT --server-curve PUB --curve KEY\n"
"                 --key KEY --cert CERT --agency ID [--broker-cert CERT]\n"
"                 ACTION [OPTIONS]\n"
"actions: --publish NHS | --close NHS | --picture NHS | --consent NHS |\n"
"         --consents NHS | --junk | --size N | --ack |\n"
"         --review ALERT (review a break-glass alert: justified)\n"
"options: --sender ID --recipient ID --time-offset SECONDS --id HEX32\n"
"         --role ROLE|N --category N --level N --ref REF --tamper\n"
"         --repeat N --repeat-delay MS --extra-frame --timeout MS\n"
"         --consent-types T,... --unknown-field\n"
"         --second-payload (a query_picture appended to the signed Body)\n"
"         --envelope-field (an Envelope field 9 appended, outside the\n"
"         signature) --show-reply-to (print the request a reply names,\n"
"         and its audit record: reply-to HEX|none, audit-seq N)\n"
"         --fresh (each repeat a new request: a new id, ref REF-N)\n"
"         --note-size N (a publish's note of N bytes)\n"
"         --person-size N (the acting person's name: N bytes of 'p')\n"
"         --person-hex HEX (the acting person's name: these bytes)\n"
"         --child-family NAME --child-dob DATE --child-nhs NHS\n"
"         --child-local ID --child-given NAME --child-postcode PC (a\n"
"         publish names the child by an identity; --publish \"\" leaves\n"
"         nhs_number out; with --fresh each repeat's local id is ID-N)\n"
"       ehx-probe --fake-broker unsigned|other-signer|wrong-request\n"
"                 --broker ENDPOINT --curve BROKER_CURVE_KEY --key KEY\n"
"                 --cert CERT --agency ID_TO_CLAIM\n");
	exit(2);
}

struct opts {
	const char *broker, *server_curve, *curve, *key, *cert, *agency;
	const char *broker_cert, *sender, *recipient, *id, *ref, *nhs;
	const char *consent_types, *fake, *person_hex;
	/* a publish's child as an identity (PROTOCOL §10.3) */
	const char *child_family, *child_dob, *child_nhs, *child_local;
	const char *child_given, *child_postcode;
	bool unknown_field, fresh, second_payload, envelope_field;
	bool show_reply_to;
	int repeat_delay, note_size, person_size;
	int action, role, category, level, repeat, timeout;
	unsigned long long alert;
	long long time_offset, size;
	bool tamper, extra_frame;
};

enum { A_NONE, A_PUBLISH, A_CLOSE, A_PICTURE, A_CONSENT, A_CONSENTS, A_JUNK,
	A_SIZE, A_ACK, A_REVIEW };

static int
build(const struct opts *o, struct ehx_signer *s, unsigned char **env,
    size_t *envlen)
{
	Ehx__Body b = EHX__BODY__INIT;
	Ehx__Person p = EHX__PERSON__INIT;
	Ehx__PublishFlag pf = EHX__PUBLISH_FLAG__INIT;
	Ehx__Practitioner pr = EHX__PRACTITIONER__INIT;
	Ehx__CloseFlag cf = EHX__CLOSE_FLAG__INIT;
	Ehx__QueryPicture qp = EHX__QUERY_PICTURE__INIT;
	Ehx__QueryConsent qc = EHX__QUERY_CONSENT__INIT;
	Ehx__ReviewAlert ra = EHX__REVIEW_ALERT__INIT;
	Ehx__RecordConsent rc = EHX__RECORD_CONSENT__INIT;
	Ehx__GivenBy gb = EHX__GIVEN_BY__INIT;
	Ehx__ConsentScope sc = EHX__CONSENT_SCOPE__INIT;
	Ehx__Ack ack = EHX__ACK__INIT;
	Ehx__ChildIdentity ci = EHX__CHILD_IDENTITY__INIT;
	Ehx__AgencyType types[8];
	Ehx__Purpose purpose = EHX__PURPOSE__PURPOSE_WHOLE_PICTURE;
	unsigned char id[EHX_MSGID_LEN];
	unsigned char *body = NULL;
	size_t n;
	int r;

	if (o->id != NULL) {
		if (ehx_unhex(id, sizeof(id), o->id) != 0) {
			fprintf(stderr, "ehx-probe: --id needs 32 hex digits\n");
			exit(2);
		}
	} else
		ehx_random(id, sizeof(id));
	b.message_id.data = id;
	b.message_id.len = sizeof(id);
	b.sender = (char *)(o->sender ? o->sender : o->agency);
	b.recipient = (char *)(o->recipient ? o->recipient : "broker");
	b.sent_at = ehx_now_ms() + o->time_offset * 1000;
	p.user_id = "probe";
	p.name = "Probe Person";
	if (o->person_size > 0 || o->person_hex != NULL) {
		/* A person no honest agent would send: its name as long, or
		 * as broken, as asked. */
		static char name[EHX_MAX_MESSAGE];
		size_t len = o->person_hex != NULL ? strlen(o->person_hex) / 2 :
		    (size_t)o->person_size;

		if (len >= sizeof(name))
			len = sizeof(name) - 1;
		if (o->person_hex != NULL) {
			if (ehx_unhex(name, len, o->person_hex) != 0)
				return EHX_ERR_INVALID_FIELD;
		} else
			memset(name, 'p', len);
		name[len] = '\0';
		p.name = name;
	}
	p.role = (Ehx__Role)o->role;
	b.person = &p;
	switch (o->action) {
	case A_PUBLISH:
		pf.nhs_number = (char *)o->nhs;
		if (o->child_family || o->child_dob || o->child_nhs ||
		    o->child_local || o->child_given || o->child_postcode) {
			ci.given_name = (char *)(o->child_given ? o->child_given :
			    "");
			ci.postcode = (char *)(o->child_postcode ?
			    o->child_postcode : "");
			ci.family_name = (char *)(o->child_family ?
			    o->child_family : "");
			ci.date_of_birth = (char *)(o->child_dob ? o->child_dob :
			    "");
			ci.nhs_number = (char *)(o->child_nhs ? o->child_nhs :
			    "");
			ci.local_id = (char *)(o->child_local ? o->child_local :
			    "");
			pf.child = &ci;
		}
		pf.ref = (char *)(o->ref ? o->ref : "probe-1");
		pf.category = (Ehx__Category)o->category;
		pf.level = (uint32_t)o->level;
		pr.name = "Probe Practitioner";
		pr.contact = "01234 567890";
		if (o->note_size > 0) {
			static char note[EHX_MAX_NOTE + 1];
			int k = o->note_size < EHX_MAX_NOTE ? o->note_size :
			    EHX_MAX_NOTE;

			memset(note, 'n', (size_t)k);
			note[k] = '\0';
			pf.note = note;
		}
		if (o->unknown_field) {
			/* A field the schema does not define, nested one deep. */
			static ProtobufCMessageUnknownField uf = {
				.tag = 99,
				.wire_type = PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED,
				/* protobuf-c keeps the length prefix in data */
				.len = 6, .data = (uint8_t *)"\x05hello",
			};

			pr.base.n_unknown_fields = 1;
			pr.base.unknown_fields = &uf;
		}
		pf.practitioner = &pr;
		b.payload_case = EHX__BODY__PAYLOAD_PUBLISH_FLAG;
		b.publish_flag = &pf;
		break;
	case A_CLOSE:
		cf.nhs_number = (char *)o->nhs;
		cf.ref = (char *)(o->ref ? o->ref : "probe-1");
		b.payload_case = EHX__BODY__PAYLOAD_CLOSE_FLAG;
		b.close_flag = &cf;
		break;
	case A_PICTURE:
		qp.nhs_number = (char *)o->nhs;
		b.payload_case = EHX__BODY__PAYLOAD_QUERY_PICTURE;
		b.query_picture = &qp;
		break;
	case A_CONSENTS:
		qc.nhs_number = (char *)o->nhs;
		b.payload_case = EHX__BODY__PAYLOAD_QUERY_CONSENT;
		b.query_consent = &qc;
		break;
	case A_CONSENT: {
		char buf[256], *save = NULL;

		snprintf(buf, sizeof(buf), "%s", o->consent_types ?
		    o->consent_types : "police,health,school,housing");
		for (char *t = strtok_r(buf, ",", &save); t != NULL &&
		    sc.n_agency_types < 8; t = strtok_r(NULL, ",", &save))
			types[sc.n_agency_types++] =
			    (Ehx__AgencyType)ehx_agency_type_parse(t);
		sc.agency_types = types;
		sc.purposes = &purpose;
		sc.n_purposes = 1;
		gb.relation = EHX__RELATION__RELATION_PARENT;
		gb.name = "Probe Parent";
		rc.nhs_number = (char *)o->nhs;
		rc.given_by = &gb;
		rc.scope = &sc;
		rc.basis = EHX__LAWFUL_BASIS__LAWFUL_BASIS_CONSENT;
		rc.expires_at = ehx_now_ms() + 30LL * 86400000;
		rc.evidence_ref = "PROBE-FORM";
		b.payload_case = EHX__BODY__PAYLOAD_RECORD_CONSENT;
		b.record_consent = &rc;
		break;
	}
	case A_ACK:
		ack.id = "not-a-request";
		b.payload_case = EHX__BODY__PAYLOAD_ACK;
		b.ack = &ack;
		break;
	case A_REVIEW:
		ra.alert = o->alert;
		ra.outcome = EHX__REVIEW_OUTCOME__REVIEW_OUTCOME_JUSTIFIED;
		ra.note = "reviewed by the probe";
		b.payload_case = EHX__BODY__PAYLOAD_REVIEW_ALERT;
		b.review_alert = &ra;
		break;
	}
	n = ehx__body__get_packed_size(&b);
	if ((body = malloc(n + 64)) == NULL)
		return EHX_ERR_NOMEM;
	ehx__body__pack(&b, body);
	if (o->second_payload) {
		/* Field 14 (query_picture) after the first payload: a reader
		 * that keeps the last would see another request. */
		Ehx__Body b2 = EHX__BODY__INIT;

		qp.nhs_number = "9434765919";
		qp.break_glass_reason = NULL;
		b2.payload_case = EHX__BODY__PAYLOAD_QUERY_PICTURE;
		b2.query_picture = &qp;
		if (ehx__body__get_packed_size(&b2) > 64)
			return EHX_ERR_TOO_LARGE;
		n += ehx__body__pack(&b2, body + n);
	}
	r = ehx_envelope_seal_bytes(s, body, n, env, envlen);
	if (r == 0 && o->envelope_field) {
		/* Field 9, two bytes: not in version 1's Envelope. */
		static const unsigned char f9[] = { 0x4a, 0x02, 'h', 'i' };
		unsigned char *more = realloc(*env, *envlen + sizeof(f9));

		if (more == NULL)
			return EHX_ERR_NOMEM;
		memcpy(more + *envlen, f9, sizeof(f9));
		*env = more;
		*envlen += sizeof(f9);
	}
	if (r == 0 && o->tamper) {
		/* Flip one bit of the last body byte after signing: the
		 * envelope's body field ends 2+64+2+32 bytes from the end. */
		size_t at = *envlen - (2 + EHX_SIG_LEN) - (2 + EHX_FPR_LEN) - 1;

		(*env)[at] ^= 0x01;
	}
	free(body);
	return r;
}

/* Answer requests on endpoint as a broker that gets it wrong; forever. */
static int
fake_broker(const char *endpoint, const char *mode, const char *curve,
    struct ehx_signer *s, const char *as_id)
{
	unsigned char secret[32], pub[32];
	void *ctx = zmq_ctx_new(), *sock = zmq_socket(ctx, ZMQ_ROUTER);
	int one = 1, zero = 0;
	char ep[256];
	size_t eplen = sizeof(ep);

	if (ehx_curve_load_secret(curve, secret, pub) != 0)
		return 2;
	zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof(one));
	zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, secret, 32);
	if (zmq_bind(sock, endpoint) != 0)
		return 2;
	zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, ep, &eplen);
	printf("%s\n", ep);
	fflush(stdout);
	for (;;) {
		zmq_msg_t rid, m;
		Ehx__Envelope *e = NULL;
		Ehx__Body *rq = NULL, r = EHX__BODY__INIT;
		Ehx__Ack ack = EHX__ACK__INIT;
		unsigned char id[16], other[16], *out = NULL;
		size_t outlen = 0;

		zmq_msg_init(&rid);
		zmq_msg_init(&m);
		if (zmq_msg_recv(&rid, sock, 0) < 0 || zmq_msg_recv(&m, sock, 0) < 0)
			break;
		if (ehx_envelope_decode(zmq_msg_data(&m), zmq_msg_size(&m), &e) != 0 ||
		    ehx_body_decode(e->body.data, e->body.len, &rq, NULL, 0) != 0)
			goto next;
		ehx_random(id, sizeof(id));
		ehx_random(other, sizeof(other));
		r.message_id.data = id;
		r.message_id.len = 16;
		r.sender = (char *)as_id;
		r.recipient = rq->sender;
		r.sent_at = ehx_now_ms();
		r.in_reply_to = rq->message_id;
		if (strcmp(mode, "wrong-request") == 0)
			r.in_reply_to.data = other;
		ack.id = "fake";
		r.payload_case = EHX__BODY__PAYLOAD_ACK;
		r.ack = &ack;
		if (ehx_envelope_seal(s, &r, &out, &outlen) != 0)
			goto next;
		if (strcmp(mode, "unsigned") == 0)
			memset(out + outlen - EHX_SIG_LEN, 0, EHX_SIG_LEN);
		zmq_msg_send(&rid, sock, ZMQ_SNDMORE);
		zmq_send(sock, out, outlen, 0);
next:
		free(out);
		ehx_body_free(rq);
		ehx_envelope_free(e);
		zmq_msg_close(&rid);
		zmq_msg_close(&m);
	}
	return 0;
}

static int
show_reply(const void *data, size_t len, const struct ehx_cert *bc,
    bool reply_to)
{
	Ehx__Envelope *e = NULL;
	Ehx__Body *b = NULL;
	char why[128];
	int ok = 1;

	if (ehx_envelope_decode(data, len, &e) != 0) {
		printf("bad-reply undecodable\n");
		return 1;
	}
	if (bc != NULL && (memcmp(e->signer.data, ehx_cert_fpr(bc),
	    EHX_FPR_LEN) != 0 || ehx_envelope_verify(e,
	    ehx_cert_pubkey(bc)) != 0)) {
		printf("bad-reply not signed by the broker\n");
		ehx_envelope_free(e);
		return 1;
	}
	if (ehx_body_decode(e->body.data, e->body.len, &b, why,
	    sizeof(why)) != 0) {
		printf("bad-reply %s\n", why);
		ehx_envelope_free(e);
		return 1;
	}
	switch (b->payload_case) {
	case EHX__BODY__PAYLOAD_ERROR:
		printf("error %s: %s\n", ehx_errname(ehx_err_from_wire(
		    b->error->code)), b->error->message);
		ok = 0;
		break;
	case EHX__BODY__PAYLOAD_ACK:
		printf("ok ack %s\n", b->ack->id);
		break;
	case EHX__BODY__PAYLOAD_PICTURE: {
		size_t nf = 0;

		for (size_t i = 0; i < b->picture->n_involvements; i++)
			nf += b->picture->involvements[i]->n_flags;
		printf("ok picture %zu agencies %zu flags level %u\n",
		    b->picture->n_involvements, nf,
		    b->picture->highest_open_level);
		break;
	}
	case EHX__BODY__PAYLOAD_CONSENT:
		printf("ok consent %zu records\n", b->consent->n_records);
		break;
	default:
		printf("ok %s\n", ehx_payload_name(b->payload_case));
	}
	if (reply_to) {
		char hex[2 * EHX_MSGID_LEN + 1];

		printf("reply-to %s\n", b->in_reply_to.len == EHX_MSGID_LEN ?
		    ehx_hex(hex, b->in_reply_to.data, EHX_MSGID_LEN) : "none");
		printf("audit-seq %llu\n", (unsigned long long)b->audit_seq);
	}
	ehx_body_free(b);
	ehx_envelope_free(e);
	return ok ? 0 : 1;
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "broker", 1, NULL, 'B' }, { "server-curve", 1, NULL, 'S' },
		{ "curve", 1, NULL, 'C' }, { "key", 1, NULL, 'K' },
		{ "cert", 1, NULL, 'c' }, { "agency", 1, NULL, 'a' },
		{ "broker-cert", 1, NULL, 'b' }, { "sender", 1, NULL, 's' },
		{ "recipient", 1, NULL, 'r' }, { "time-offset", 1, NULL, 't' },
		{ "id", 1, NULL, 'i' }, { "role", 1, NULL, 'R' },
		{ "category", 1, NULL, 'g' }, { "level", 1, NULL, 'l' },
		{ "ref", 1, NULL, 'f' }, { "tamper", 0, NULL, 'T' },
		{ "repeat", 1, NULL, 'n' }, { "extra-frame", 0, NULL, 'x' },
		{ "timeout", 1, NULL, 'w' }, { "publish", 1, NULL, 'P' },
		{ "close", 1, NULL, 'Q' }, { "picture", 1, NULL, 'V' },
		{ "consent", 1, NULL, 'G' }, { "consents", 1, NULL, 'H' },
		{ "consent-types", 1, NULL, 'y' },
		{ "junk", 0, NULL, 'J' }, { "size", 1, NULL, 'Z' },
		{ "ack", 0, NULL, 'k' }, { "fake-broker", 1, NULL, 'F' },
		{ "unknown-field", 0, NULL, 'U' }, { "repeat-delay", 1, NULL, 'D' },
		{ "fresh", 0, NULL, 'u' }, { "note-size", 1, NULL, 'N' },
		{ "person-size", 1, NULL, 'W' }, { "person-hex", 1, NULL, 'X' },
		{ "review", 1, NULL, 'E' },
		{ "second-payload", 0, NULL, '2' },
		{ "envelope-field", 0, NULL, '9' },
		{ "show-reply-to", 0, NULL, 'Y' },
		{ "child-family", 1, NULL, 0x101 },
		{ "child-dob", 1, NULL, 0x102 },
		{ "child-nhs", 1, NULL, 0x103 },
		{ "child-local", 1, NULL, 0x104 },
		{ "child-given", 1, NULL, 0x105 },
		{ "child-postcode", 1, NULL, 0x106 },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { .role = EHX__ROLE__ROLE_PRACTITIONER,
	    .category = EHX__CATEGORY__CATEGORY_HOUSING, .level = 2,
	    .repeat = 1, .timeout = 5000 };
	struct ehx_signer *s = NULL;
	struct ehx_cert *bc = NULL;
	unsigned char secret[32], pub[32], server[32], *env = NULL;
	unsigned char *first = NULL;
	size_t envlen = 0, firstlen = 0;
	void *ctx, *sock, *mon;
	int c, status = 0, zero = 0, v;
	int64_t maxmsg = -1;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1)
		switch (c) {
		case 'B': o.broker = optarg; break;
		case 'S': o.server_curve = optarg; break;
		case 'C': o.curve = optarg; break;
		case 'K': o.key = optarg; break;
		case 'c': o.cert = optarg; break;
		case 'a': o.agency = optarg; break;
		case 'b': o.broker_cert = optarg; break;
		case 's': o.sender = optarg; break;
		case 'r': o.recipient = optarg; break;
		case 't': o.time_offset = atoll(optarg); break;
		case 'i': o.id = optarg; break;
		case 'R':
			o.role = (v = ehx_role_parse(optarg)) >= 0 ? v :
			    atoi(optarg);
			break;
		case 'g':
			o.category = (v = ehx_category_parse(optarg)) >= 0 ? v :
			    atoi(optarg);
			break;
		case 'l': o.level = atoi(optarg); break;
		case 'f': o.ref = optarg; break;
		case 'T': o.tamper = true; break;
		case 'n': o.repeat = atoi(optarg); break;
		case 'x': o.extra_frame = true; break;
		case 'w': o.timeout = atoi(optarg); break;
		case 'P': o.action = A_PUBLISH; o.nhs = optarg; break;
		case 'Q': o.action = A_CLOSE; o.nhs = optarg; break;
		case 'V': o.action = A_PICTURE; o.nhs = optarg; break;
		case 'G': o.action = A_CONSENT; o.nhs = optarg; break;
		case 'H': o.action = A_CONSENTS; o.nhs = optarg; break;
		case 'y': o.consent_types = optarg; break;
		case 'J': o.action = A_JUNK; break;
		case 'Z': o.action = A_SIZE; o.size = atoll(optarg); break;
		case 'k': o.action = A_ACK; break;
		case 'F': o.fake = optarg; break;
		case 'U': o.unknown_field = true; break;
		case '2': o.second_payload = true; break;
		case '9': o.envelope_field = true; break;
		case 'Y': o.show_reply_to = true; break;
		case 0x101: o.child_family = optarg; break;
		case 0x102: o.child_dob = optarg; break;
		case 0x103: o.child_nhs = optarg; break;
		case 0x104: o.child_local = optarg; break;
		case 0x105: o.child_given = optarg; break;
		case 0x106: o.child_postcode = optarg; break;
		case 'D': o.repeat_delay = atoi(optarg); break;
		case 'u': o.fresh = true; break;
		case 'N': o.note_size = atoi(optarg); break;
		case 'W': o.person_size = atoi(optarg); break;
		case 'X': o.person_hex = optarg; break;
		case 'E':
			o.action = A_REVIEW;
			o.alert = strtoull(optarg, NULL, 10);
			break;
		default: usage();
		}
	if (o.fake != NULL) {
		/* --broker ENDPOINT to bind, --curve the broker's CURVE key,
		 * --key/--cert what to sign with, --agency the id to claim. */
		if (!o.broker || !o.curve || !o.key || !o.cert || !o.agency ||
		    ehx_signer_load(o.key, o.cert, &s) != 0)
			usage();
		return fake_broker(o.broker, o.fake, o.curve, s, o.agency);
	}
	if (!o.broker || !o.server_curve || !o.curve || !o.key || !o.cert ||
	    !o.agency || o.action == A_NONE || o.repeat < 1 ||
	    o.size < 0 || o.size > 16 * 1024 * 1024)
		usage();
	if (ehx_signer_load(o.key, o.cert, &s) != 0 ||
	    ehx_curve_load_secret(o.curve, secret, pub) != 0 ||
	    ehx_curve_load_public(o.server_curve, server) != 0 ||
	    (o.broker_cert && ehx_cert_load(o.broker_cert, &bc) != 0)) {
		fprintf(stderr, "ehx-probe: cannot load keys\n");
		return 2;
	}
	if (o.action == A_JUNK || o.action == A_SIZE) {
		envlen = o.action == A_JUNK ? 100 : (size_t)o.size;
		if ((env = malloc(envlen ? envlen : 1)) == NULL)
			return 2;
		memset(env, 0xff, envlen);	/* never a valid protobuf */
	} else if (build(&o, s, &env, &envlen) != 0) {
		fprintf(stderr, "ehx-probe: cannot build the message\n");
		return 2;
	}
	ctx = zmq_ctx_new();
	sock = zmq_socket(ctx, ZMQ_DEALER);
	zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof(zero));
	/* A DEALER whose only connection was refused at the handshake has no
	 * peer to queue for: a send would wait for one for ever. */
	zmq_setsockopt(sock, ZMQ_SNDTIMEO, &o.timeout, sizeof(o.timeout));
	zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg));
	zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, server, 32);
	zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, pub, 32);
	zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, secret, 32);
	zmq_socket_monitor(sock, "inproc://probe-monitor",
	    ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
	    ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL);
	mon = zmq_socket(ctx, ZMQ_PAIR);
	zmq_setsockopt(mon, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_connect(mon, "inproc://probe-monitor");
	if (zmq_connect(sock, o.broker) != 0) {
		fprintf(stderr, "ehx-probe: %s\n", zmq_strerror(zmq_errno()));
		return 2;
	}
	for (int i = 0; i < o.repeat && status != 3; i++) {
		zmq_pollitem_t items[2] = { { sock, 0, ZMQ_POLLIN, 0 },
		    { mon, 0, ZMQ_POLLIN, 0 } };
		int64_t deadline;
		bool got = false;

		if (i > 0 && o.repeat_delay > 0)
			zmq_poll(NULL, 0, o.repeat_delay);
		if (i > 0 && o.fresh) {
			struct opts fo = o;
			char ref[96], local[96];

			snprintf(ref, sizeof(ref), "%s-%d", o.ref ? o.ref :
			    "probe", i);
			fo.ref = ref;
			if (o.child_local != NULL) {
				/* each a record of its own, matched afresh */
				snprintf(local, sizeof(local), "%s-%d",
				    o.child_local, i);
				fo.child_local = local;
			}
			fo.id = NULL;
			free(env);
			env = NULL;
			if (build(&fo, s, &env, &envlen) != 0) {
				fprintf(stderr, "ehx-probe: cannot build the "
				    "message\n");
				return 2;
			}
		}
		zmq_send(sock, env, envlen, o.extra_frame ? ZMQ_SNDMORE : 0);
		if (o.extra_frame)
			zmq_send(sock, "x", 1, 0);
		/* From the send on (which waits up to the timeout when the
		 * handshake was refused: the monitor then says so). */
		deadline = ehx_now_ms() + o.timeout;
		while (!got && ehx_now_ms() < deadline) {
			if (zmq_poll(items, 2, (long)(deadline - ehx_now_ms())) <= 0)
				continue;
			if (items[1].revents & ZMQ_POLLIN) {
				zmq_msg_t ev;
				uint16_t event = 0;

				zmq_msg_init(&ev);
				zmq_msg_recv(&ev, mon, 0);
				if (zmq_msg_size(&ev) >= 2)
					memcpy(&event, zmq_msg_data(&ev), 2);
				while (zmq_msg_more(&ev)) {
					zmq_msg_close(&ev);
					zmq_msg_init(&ev);
					zmq_msg_recv(&ev, mon, 0);
				}
				zmq_msg_close(&ev);
				if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
					printf("handshake refused\n");
					status = 3;
					break;
				}
			}
			if (items[0].revents & ZMQ_POLLIN) {
				zmq_msg_t m;

				zmq_msg_init(&m);
				zmq_msg_recv(&m, sock, 0);
				if (show_reply(zmq_msg_data(&m), zmq_msg_size(&m),
				    bc, o.show_reply_to) != 0 && status == 0)
					status = 1;
				if (first == NULL) {
					firstlen = zmq_msg_size(&m);
					first = malloc(firstlen);
					memcpy(first, zmq_msg_data(&m), firstlen);
				} else
					printf("same-reply %s\n", firstlen ==
					    zmq_msg_size(&m) && memcmp(first,
					    zmq_msg_data(&m), firstlen) == 0 ?
					    "yes" : "no");
				zmq_msg_close(&m);
				got = true;
			}
		}
		if (!got && status != 3) {
			printf("no reply\n");
			status = 3;
		}
	}
	free(first);
	free(env);
	zmq_close(mon);
	zmq_close(sock);
	zmq_ctx_term(ctx);
	ehx_signer_free(s);
	ehx_cert_free(bc);
	return status;
}
