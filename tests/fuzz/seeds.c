/*
 * seeds — writes the fuzzers' seed corpora (tests/fuzz/corpus/NAME/) from
 * the schema: one well-formed example of every payload, as a Body, inside
 * an Envelope and inside a LocalRequest/LocalReply, plus sample config
 * files and typed text. Run by `make fuzz-seeds`; the output is committed.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ehx.pb-c.h"

static const char *dir;

static void
put(const char *name, int n, const void *data, size_t len)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/seed-%02d", dir, name, n);
	if ((f = fopen(path, "wb")) == NULL || fwrite(data, 1, len, f) != len) {
		perror(path);
		exit(1);
	}
	fclose(f);
}

static size_t
pack(const ProtobufCMessage *m, unsigned char **out)
{
	size_t n = protobuf_c_message_get_packed_size(m);

	*out = malloc(n ? n : 1);
	protobuf_c_message_pack(m, *out);
	return n;
}

/* Prefix one byte to a packed message: fuzz_watch's inputs. */
static void
put_tagged(const char *name, int n, unsigned char tag,
    const ProtobufCMessage *m)
{
	unsigned char *buf, *out;
	size_t len = pack(m, &buf);

	out = malloc(len + 1);
	out[0] = tag;
	memcpy(out + 1, buf, len);
	put(name, n, out, len + 1);
	free(out);
	free(buf);
}

/* fuzz_watch: a state file, and the broker's answers to the agent's
 * pull, inclusion and agreement questions (its checkpoint of 8 records
 * has the root 42 42 …; the harness signs what it is given). */
static void
watch_seeds(void)
{
	static unsigned char root8[32], root9[32] = { 9 }, sig[64] = { 7 },
	    fpr[32] = { 5 }, h[4][32] = { { 1 }, { 2 }, { 3 }, { 4 } },
	    mid[16];
	Ehx__Checkpoint c8 = EHX__CHECKPOINT__INIT, c9 = EHX__CHECKPOINT__INIT;
	Ehx__Cosignature cs = EHX__COSIGNATURE__INIT, *css[1] = { &cs };
	Ehx__Cosigned co = EHX__COSIGNED__INIT, *cos[1] = { &co };
	Ehx__PendingDecision pd = EHX__PENDING_DECISION__INIT, *pds[1] = { &pd };
	Ehx__AgentState st = EHX__AGENT_STATE__INIT;
	Ehx__AuditRecord rec = EHX__AUDIT_RECORD__INIT;
	Ehx__ProofResult pr = EHX__PROOF_RESULT__INIT;
	ProtobufCBinaryData hs[4];
	unsigned char *rb;
	size_t rn;

	memset(root8, 0x42, sizeof(root8));
	memset(mid, 0x11, sizeof(mid));
	for (int i = 0; i < 4; i++) {
		hs[i].data = h[i];
		hs[i].len = 32;
	}
	c8.origin = c9.origin = "broker";
	c8.size = 8;
	c8.root.data = root8;
	c9.size = 9;
	c9.root.data = root9;
	c8.root.len = c9.root.len = 32;
	c8.time = 1767225600000LL;
	c9.time = 1767225660000LL;
	c8.signature.data = c9.signature.data = sig;
	c8.signature.len = c9.signature.len = 64;
	pd.seq = 3;
	pd.message_id.data = mid;
	pd.message_id.len = 16;
	pd.decided_at = 1767225600000LL;
	pd.break_glass = true;
	st.checkpoint = &c8;
	st.consistent = true;
	st.pending = pds;
	st.n_pending = 1;
	st.agency = "police";
	put_tagged("watch", 0, 0, &st.base);
	pr.checkpoint = &c9;
	pr.consistency = hs;
	pr.n_consistency = 4;
	put_tagged("watch", 1, 1, &pr.base);
	rec.seq = 3;
	rec.agency = "police";
	rec.action = "query_picture";
	rec.message_id.data = mid;
	rec.message_id.len = 16;
	rn = pack(&rec.base, &rb);
	pr.checkpoint = &c8;
	pr.n_consistency = 0;
	pr.inclusion = hs;
	pr.n_inclusion = 3;
	pr.record.data = rb;
	pr.record.len = rn;
	put_tagged("watch", 2, 2, &pr.base);
	free(rb);
	cs.agency = "health";
	cs.signer.data = fpr;
	cs.signer.len = 32;
	cs.time = 1767225661000LL;
	cs.signature.data = sig;
	cs.signature.len = 64;
	c9.cosignatures = css;
	c9.n_cosignatures = 1;
	co.checkpoint = &c9;
	co.certificate.data = (uint8_t *)"-----BEGIN CERTIFICATE-----\n"
	    "MIIBdzCCASmgAwIBAgIUb3Jk\n-----END CERTIFICATE-----\n";
	co.certificate.len = strlen((const char *)co.certificate.data);
	co.consistency = hs;
	co.n_consistency = 4;
	pr.inclusion = NULL;
	pr.n_inclusion = 0;
	pr.record.len = 0;
	pr.cosigned = cos;
	pr.n_cosigned = 1;
	put_tagged("watch", 3, 3, &pr.base);
}

/* Children as agencies name them, and what people type into each field. */
static void
identity_seeds(void)
{
	static const char *const typed[] = {
		"B801200005001", "b801 2000 05001", "YO31 0AB", "yo310ab",
		"GIR 0AA", "2016-03-04", "2016-02-30", "O'Brien", "Smith-Jones",
		"Zo\xc3\xab", "MACINTOSH", "KNIGHT", "BILL",
	};
	char *others[2] = { "Hart-Lee", "S\xc3\xb8ren" };
	Ehx__ChildIdentity id;
	unsigned char *buf;
	size_t n;

	for (int i = 0; i < 4; i++) {
		ehx__child_identity__init(&id);
		switch (i) {
		case 0:
			id.nhs_number = "9434765919";
			break;
		case 1:
			id.upn = "B801200005001";
			id.given_name = "Oliver";
			id.family_name = "O'Brien";
			id.date_of_birth = "2016-03-04";
			id.sex = EHX__SEX__SEX_MALE;
			id.postcode = "yo31 0ab";
			id.uprn = "010023118876";
			break;
		case 2:
			id.local_id = "NYP/P-001234";
			id.given_name = "Amelia Rose";
			id.family_name = "Hart";
			id.other_names = others;
			id.n_other_names = 2;
			id.date_of_birth = "2019-11-12";
			break;
		default:
			id.family_name = "Hart";
			id.date_of_birth = "2016-13-40";
			id.postcode = "QQ1 1CC";
			break;
		}
		n = pack(&id.base, &buf);
		put("identity", i, buf, n);
		free(buf);
	}
	for (size_t i = 0; i < sizeof(typed) / sizeof(typed[0]); i++)
		put("identity", 10 + (int)i, typed[i], strlen(typed[i]));
	/* ehx import: identity columns, and a roll (first byte: 2 | format) */
	{
		static const char csv[] = "\000action,upn,local_id,given_name,"
		    "family_name,date_of_birth,sex,postcode,ref,category,level,"
		    "practitioner\npublish,b801 2000 05001,ADM-7,Amelia,Hart,"
		    "2016-03-04,F,yo31 0ab,att-1,school_attendance,2,Jo\n"
		    "close,,ADM-7,,,,,,att-0,,,\n";
		static const char roll[] = "\003{\"upn\":\"B801200005001\","
		    "\"local_id\":\"ADM-7\",\"family_name\":\"Hart\","
		    "\"date_of_birth\":\"2016-03-04\"}\n{\"upn\":"
		    "\"P207000016049\",\"from\":\"2025-09-03\",\"until\":"
		    "\"2026-07-20\"}\n";

		put("import", 20, csv, sizeof(csv) - 1);
		put("import", 21, roll, sizeof(roll) - 1);
	}
}

int
main(int argc, char **argv)
{
	static unsigned char id[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13,
	    14, 15, 16 }, sig[64] = { 7 }, fpr[32] = { 9 }, child[32] = { 3 };
	Ehx__Person person = EHX__PERSON__INIT;
	Ehx__Practitioner pr = EHX__PRACTITIONER__INIT;
	Ehx__PublishFlag pf = EHX__PUBLISH_FLAG__INIT;
	Ehx__CloseFlag cf = EHX__CLOSE_FLAG__INIT;
	Ehx__GivenBy gb = EHX__GIVEN_BY__INIT;
	Ehx__ConsentScope sc = EHX__CONSENT_SCOPE__INIT;
	Ehx__RecordConsent rc = EHX__RECORD_CONSENT__INIT;
	Ehx__WithdrawConsent wc = EHX__WITHDRAW_CONSENT__INIT;
	Ehx__QueryPicture qp = EHX__QUERY_PICTURE__INIT;
	Ehx__QueryConsent qc = EHX__QUERY_CONSENT__INIT;
	Ehx__Ack ack = EHX__ACK__INIT;
	Ehx__Error err = EHX__ERROR__INIT;
	Ehx__FlagView fv = EHX__FLAG_VIEW__INIT, *fvs[1] = { &fv };
	Ehx__AgencyInvolvement inv = EHX__AGENCY_INVOLVEMENT__INIT, *invs[1] = { &inv };
	Ehx__PictureResult pic = EHX__PICTURE_RESULT__INIT;
	Ehx__ConsentRecord cr = EHX__CONSENT_RECORD__INIT, *crs[1] = { &cr };
	Ehx__ConsentResult cres = EHX__CONSENT_RESULT__INIT;
	Ehx__AgencyType types[2] = { EHX__AGENCY_TYPE__AGENCY_TYPE_SCHOOL,
	    EHX__AGENCY_TYPE__AGENCY_TYPE_HEALTH };
	Ehx__Purpose purposes[1] = { EHX__PURPOSE__PURPOSE_WHOLE_PICTURE };
	char *agencies[1] = { "police" };
	static const char *const confs[] = {
		"[broker]\nid = broker\nlisten = tcp://127.0.0.1:7700\n"
		"skew_seconds = 300\n",
		"[asmith]\nid = A.Smith\nname = Alice Smith\n"
		"roles = practitioner, information_officer\n",
		"[police]\ntype = police\nname = Police\n"
		"certificate = a.crt\ncurve_public = a.pub\n",
		"; comment\n[x]\nroles=\nname = \xc3\xa9\n",
	};
	static const char *const texts[] = {
		"9434765919", "943 476 5919", "943-476-5919", "2026-11-22",
		"2026-11-22T07:21Z", "2026-11-22T07:21:29Z", "+365d", "+12h",
		"domestic_abuse", "information_officer", "police-north",
		"inc:2026/11-22.a", "\xe2\x80\xa8", "\xc0\xaf",
	};
	Ehx__Body bodies[10];
	unsigned char *buf;
	size_t n;
	int k = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: seeds CORPUS_DIR\n");
		return 2;
	}
	dir = argv[1];
	mkdir(dir, 0755);

	person.user_id = "pc-101";
	person.name = "PC Sam Jones";
	person.role = EHX__ROLE__ROLE_PRACTITIONER;
	pr.name = "Alex Patel";
	pr.role = "school nurse";
	pr.contact = "alex@nhs.example";
	pf.nhs_number = "9434765919";
	pf.ref = "hv-1";
	pf.category = EHX__CATEGORY__CATEGORY_MENTAL_HEALTH;
	pf.level = 2;
	pf.practitioner = &pr;
	pf.lead = 1;
	pf.note = "Weekly sessions";
	cf.nhs_number = "9434765919";
	cf.ref = "hv-1";
	cf.reason = "done";
	gb.relation = EHX__RELATION__RELATION_PARENT;
	gb.name = "Jane Doe";
	sc.agencies = agencies;
	sc.n_agencies = 1;
	sc.agency_types = types;
	sc.n_agency_types = 2;
	sc.purposes = purposes;
	sc.n_purposes = 1;
	rc.nhs_number = "9434765919";
	rc.given_by = &gb;
	rc.scope = &sc;
	rc.basis = EHX__LAWFUL_BASIS__LAWFUL_BASIS_CONSENT;
	rc.expires_at = 1798761600000LL;
	rc.evidence_ref = "HV-FORM-0042";
	wc.nhs_number = "9434765919";
	wc.consent_id = "c-0123456789abcdef";
	wc.reason = "asked";
	qp.nhs_number = "9434765919";
	qc.nhs_number = "9434765919";
	ack.id = "hv-1";
	ack.basis = "role:practitioner";
	err.code = EHX__ERROR_CODE__ERROR_NO_CONSENT;
	err.message = "no consent";
	fv.ref = "hv-1";
	fv.category = EHX__CATEGORY__CATEGORY_MENTAL_HEALTH;
	fv.level = 2;
	fv.status = EHX__FLAG_STATUS__FLAG_STATUS_OPEN;
	fv.opened_at = 1767225600000LL;
	fv.practitioner = &pr;
	fv.note = "note";
	inv.agency = "health";
	inv.agency_type = EHX__AGENCY_TYPE__AGENCY_TYPE_HEALTH;
	inv.flags = fvs;
	inv.n_flags = 1;
	pic.child.data = child;
	pic.child.len = 32;
	pic.consent_id = "c-0123456789abcdef";
	pic.highest_open_level = 2;
	pic.involvements = invs;
	pic.n_involvements = 1;
	cr.id = "c-0123456789abcdef";
	cr.given_by = &gb;
	cr.recorded_by_agency = "health";
	cr.recorded_by = &person;
	cr.scope = &sc;
	cr.basis = EHX__LAWFUL_BASIS__LAWFUL_BASIS_CONSENT;
	cr.starts_at = 1767225600000LL;
	cr.expires_at = 1798761600000LL;
	cr.evidence_ref = "HV-FORM-0042";
	cres.child.data = child;
	cres.child.len = 32;
	cres.records = crs;
	cres.n_records = 1;

	for (int i = 0; i < 10; i++) {
		ehx__body__init(&bodies[i]);
		bodies[i].message_id.data = id;
		bodies[i].message_id.len = 16;
		bodies[i].sender = i < 6 ? "police" : "broker";
		bodies[i].recipient = i < 6 ? "broker" : "police";
		bodies[i].sent_at = 1767225600000LL;
		if (i < 6)
			bodies[i].person = &person;
		else {
			bodies[i].in_reply_to.data = id;
			bodies[i].in_reply_to.len = 16;
		}
	}
	bodies[0].payload_case = EHX__BODY__PAYLOAD_PUBLISH_FLAG;
	bodies[0].publish_flag = &pf;
	bodies[1].payload_case = EHX__BODY__PAYLOAD_CLOSE_FLAG;
	bodies[1].close_flag = &cf;
	bodies[2].payload_case = EHX__BODY__PAYLOAD_RECORD_CONSENT;
	bodies[2].record_consent = &rc;
	bodies[3].payload_case = EHX__BODY__PAYLOAD_WITHDRAW_CONSENT;
	bodies[3].withdraw_consent = &wc;
	bodies[4].payload_case = EHX__BODY__PAYLOAD_QUERY_PICTURE;
	bodies[4].query_picture = &qp;
	bodies[5].payload_case = EHX__BODY__PAYLOAD_QUERY_CONSENT;
	bodies[5].query_consent = &qc;
	bodies[6].payload_case = EHX__BODY__PAYLOAD_ACK;
	bodies[6].ack = &ack;
	bodies[7].payload_case = EHX__BODY__PAYLOAD_ERROR;
	bodies[7].error = &err;
	bodies[8].payload_case = EHX__BODY__PAYLOAD_PICTURE;
	bodies[8].picture = &pic;
	bodies[9].payload_case = EHX__BODY__PAYLOAD_CONSENT;
	bodies[9].consent = &cres;

	for (int i = 0; i < 10; i++) {
		Ehx__Envelope env = EHX__ENVELOPE__INIT;
		Ehx__LocalRequest lrq = EHX__LOCAL_REQUEST__INIT;
		Ehx__LocalReply lrp = EHX__LOCAL_REPLY__INIT;
		unsigned char *eb;

		n = pack(&bodies[i].base, &buf);
		put("body", i, buf, n);
		env.version = 1;
		env.body.data = buf;
		env.body.len = n;
		env.signer.data = fpr;
		env.signer.len = 32;
		env.signature.data = sig;
		env.signature.len = 64;
		n = pack(&env.base, &eb);
		put("envelope", i, eb, n);
		free(eb);
		if (i < 6) {
			lrq.body = &bodies[i];
			lrq.as_role = EHX__ROLE__ROLE_INFORMATION_OFFICER;
			n = pack(&lrq.base, &eb);
		} else {
			lrp.reply = &bodies[i];
			n = pack(&lrp.base, &eb);
		}
		put("local", i, eb, n);
		free(eb);
		free(buf);
	}
	/* A right early help list: the question (a request) and an answer. */
	{
		static unsigned char next[32] = { 5 };
		Ehx__QueryEarlyHelpList ql = EHX__QUERY_EARLY_HELP_LIST__INIT;
		Ehx__ListedChild lc = EHX__LISTED_CHILD__INIT, *lcs[1] = { &lc };
		Ehx__EarlyHelpListResult lr = EHX__EARLY_HELP_LIST_RESULT__INIT;
		Ehx__FamilyCriterion crit[2] = {
		    EHX__FAMILY_CRITERION__FAMILY_CRITERION_SCHOOL,
		    EHX__FAMILY_CRITERION__FAMILY_CRITERION_DOMESTIC_ABUSE };
		char *ags[2] = { "police", "school" };
		Ehx__Body lb[2];

		ql.list = EHX__EARLY_HELP_LIST__EARLY_HELP_LIST_KNOWN_TO_SEVERAL;
		ql.locality = "east";
		ql.after.data = next;
		ql.after.len = 32;
		ql.limit = 10;
		lc.nhs_number = "9434765919";
		lc.agencies = ags;
		lc.n_agencies = 2;
		lc.highest_open_level = 3;
		lc.criteria = crit;
		lc.n_criteria = 2;
		lr.list = ql.list;
		lr.locality = "east";
		lr.children = lcs;
		lr.n_children = 1;
		lr.next.data = next;
		lr.next.len = 32;
		lr.basis = "policy:anytown-isa-2026:public_task";
		for (int i = 0; i < 2; i++) {
			Ehx__LocalRequest lrq = EHX__LOCAL_REQUEST__INIT;
			Ehx__LocalReply lrp = EHX__LOCAL_REPLY__INIT;
			unsigned char *eb;

			lb[i] = bodies[i == 0 ? 4 : 8];
			if (i == 0) {
				lb[i].payload_case =
				    EHX__BODY__PAYLOAD_QUERY_EARLY_HELP_LIST;
				lb[i].query_early_help_list = &ql;
			} else {
				lb[i].payload_case =
				    EHX__BODY__PAYLOAD_EARLY_HELP_LIST;
				lb[i].early_help_list = &lr;
			}
			n = pack(&lb[i].base, &buf);
			put("body", 10 + i, buf, n);
			free(buf);
			if (i == 0) {
				lrq.body = &lb[i];
				lrq.as_role = EHX__ROLE__ROLE_INFORMATION_OFFICER;
				n = pack(&lrq.base, &eb);
			} else {
				lrp.reply = &lb[i];
				n = pack(&lrp.base, &eb);
			}
			put("local", 10 + i, eb, n);
			free(eb);
		}
	}
	/* fuzz_reply: a NotificationBatch whose envelopes hold the Bodies
	 * the harness signs as the broker (notifications seq 1, 2, 3; a
	 * restart; a gap; one with a bad NHS number). */
	{
		static const uint64_t seqs[4][3] = {
			{ 1, 2, 3 }, { 5, 6, 0 }, { 1, 3, 0 }, { 2, 2, 0 },
		};
		Ehx__Notification nt = EHX__NOTIFICATION__INIT;
		Ehx__Body nb = EHX__BODY__INIT;
		unsigned char nid[16];

		nt.nhs_number = "9434765919";
		nt.agency = "police";
		nt.agency_type = EHX__AGENCY_TYPE__AGENCY_TYPE_POLICE;
		nt.category = EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE;
		nt.event = EHX__NOTIFY_EVENT__NOTIFY_EVENT_NEW;
		nt.level = 3;
		nt.contact = &pr;
		nt.basis = EHX__LAWFUL_BASIS__LAWFUL_BASIS_LEGAL_OBLIGATION;
		nt.agreement = "anytown-isa-2026";
		nt.flagged_at = 1795000000000;
		nb.message_id.data = nid;
		nb.message_id.len = 16;
		nb.sender = "broker";
		nb.recipient = "school";
		nb.sent_at = 1795000000000;
		nb.payload_case = EHX__BODY__PAYLOAD_NOTIFICATION;
		nb.notification = &nt;
		for (int i = 0; i < 4; i++) {
			Ehx__NotificationBatch bt = EHX__NOTIFICATION_BATCH__INIT;
			ProtobufCBinaryData envs[3];
			unsigned char *bb[3] = { NULL, NULL, NULL };
			size_t m = 0;

			for (int j = 0; j < 3 && seqs[i][j] != 0; j++, m++) {
				memset(nid, 0, sizeof(nid));
				nid[0] = (unsigned char)(i * 16 + j + 1);
				nt.seq = seqs[i][j];
				nt.nhs_number = i == 3 && j == 1 ? "9434765910" :
				    "9434765919";
				envs[m].len = pack(&nb.base, &bb[m]);
				envs[m].data = bb[m];
			}
			bt.envelopes = envs;
			bt.n_envelopes = m;
			bt.restart = i == 1;
			n = pack(&bt.base, &buf);
			put("reply", i, buf, n);
			free(buf);
			for (size_t j = 0; j < m; j++)
				free(bb[j]);
		}
	}
	for (size_t i = 0; i < sizeof(confs) / sizeof(confs[0]); i++)
		put("conf", k++, confs[i], strlen(confs[i]));
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
		put("text", (int)i, texts[i], strlen(texts[i]));
	watch_seeds();
	identity_seeds();
	return 0;
}
