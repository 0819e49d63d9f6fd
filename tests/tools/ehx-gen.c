/*
 * ehx-gen — a synthetic partnership for `make bench` (issue 6): N children,
 * each with a handful of flags from the registry's agencies and, for most,
 * a consent, written straight into a broker's LMDB store by the broker's
 * own code, so that what is stored is byte for byte what the broker would
 * have stored, at a rate no wire could carry.
 *
 * Each change is a Body as an agency would send it (its case system
 * publishing a flag, a practitioner recording a consent), checked by the
 * pipeline's own validators and role table, applied by the broker's own
 * handler (handle_publish_flag, handle_record_consent) in a child
 * transaction, and audited by store_audit_append with the record
 * broker_process() would make; checkpoints are signed with the broker's
 * key every checkpoint_records records, as the broker signs them. Left out,
 * as in a partnership in its steady state: notifications (the agents have
 * fetched them), replay entries (their window has passed), kept envelopes
 * and the requests' signatures (nothing was signed: the audit records
 * carry a random envelope hash). Like the broker's group commit, many
 * changes share one write transaction and one durable commit: here
 * --batch children (2000) at a time.
 *
 * A broker meets children in no order, and so by default does ehx-gen:
 * each commit then rewrites pages all over the store's B-trees (at a
 * million children some 50 MiB for 2000 more), and the pages end about
 * as full as a broker's would. --order sorted writes children in the order
 * of their pseudonyms: several times less to write, but denser pages
 * than a broker's (a store some 10% smaller). Either way the store is
 * then replaced by a compacted copy (see compact()).
 *
 * The broker must not be running: a store another process has open (a
 * broker, ehx-broker audit) is refused. Run as root, ehx-gen drops to the
 * config's user (as ehx-broker --purge does) once its keys are read, or,
 * with no user set, gives the store's files to the data directory's owner.
 *
 * Then, optionally (--broker-time), it times the broker itself on
 * whole-picture queries signed as one agency: broker_process() in a group
 * commit of one, as the serving loop runs a request that arrives alone,
 * from the signature check to the durable commit, without the network or
 * an agent.
 *
 * Output: one JSON line per part on standard output; progress, a table of
 * where the store's bytes went, and warnings on standard error.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../broker/audit.h"
#include "../../broker/broker.h"
#include "../../broker/config.h"
#include "../../broker/handle.h"
#include "../../broker/notify.h"
#include "../../broker/pipeline.h"
#include "../../broker/registry.h"
#include "../../broker/request.h"
#include "../../broker/store.h"
#include "ehx/crypto.h"
#include "ehx/err.h"
#include "ehx/log.h"
#include "ehx/names.h"
#include "ehx/nhs.h"
#include "ehx/util.h"
#include "ehx/validate.h"
#include "ehx/wire.h"

#define MiB (1024LL * 1024)
#define DAY_MS 86400000LL
#define ARENA_LIMIT (8 * 1024 * 1024)
#define NHS_BASE 900000000L     /* children's NHS numbers: 900 000 000x up */
#define MAX_CHILDREN 10000000L
#define MAX_FIRST 30000000L     /* keeps every number below 999 000 000x */
#define MAX_FLAGS 32            /* mean flags per child */
#define PROGRESS_S 10.0

/* ---- options and state -------------------------------------------------- */

static struct {
	const char *conf, *nhs_out, *nhs_in, *agency, *key, *cert;
	long children, first, batch, sample, broker_time;
	int flags;
	double share;
	unsigned long long seed;
	long long map_mb;
	bool random_order, no_compact;
} opt = {
	.flags = 5, .share = 0.9, .seed = 1, .map_mb = 16384, .batch = 2000,
	.sample = 10000, .random_order = true,
};

static struct broker b;
static FILE *nhs_fp;                    /* --nhs-out, opened before the drop */
static unsigned char *consented;        /* per child: 1 when it has consent */
static struct {
	uint64_t flags, consents, records, unchanged, checkpoints;
} count;

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- a seeded generator (SplitMix64): the same seed, the same children -- */

struct rng {
	uint64_t s;
};

static uint64_t
rnd(struct rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform in 0..n-1 (n > 0). */
static uint32_t
below(struct rng *r, uint32_t n)
{
	return (uint32_t)(((rnd(r) >> 32) * n) >> 32);
}

/* Uniform in [0, 1). */
static double
unit(struct rng *r)
{
	return (double)(rnd(r) >> 11) / 9007199254740992.0;
}

static void
rbytes(struct rng *r, unsigned char *p, size_t n)
{
	while (n > 0) {
		uint64_t v = rnd(r);
		size_t k = n < 8 ? n : 8;

		memcpy(p, &v, k);
		p += k;
		n -= k;
	}
}

/* Child i's own generator: what it holds does not depend on the order
 * children are written in. */
static struct rng
child_rng(long i)
{
	struct rng r;

	r.s = opt.seed ^ 0xd1b54a32d192ed03ULL * (uint64_t)(i + 1);

	rnd(&r);
	return r;
}

/*
 * Child i's NHS number: the nine digits NHS_BASE + 2i, or the odd number
 * after them when that one's check digit would be 10 (the two differ by 2
 * in the weighted sum, so never both): distinct, valid, and apart from
 * the demo's and ehx-loadgen's (400 000 000x up).
 */
static void
nhs_for(long i, char out[EHX_NHS_LEN + 1])
{
	long p = NHS_BASE + 2 * i;

	for (;; p++) {
		int sum = 0, c;

		snprintf(out, EHX_NHS_LEN + 1, "%09ld0", p);
		for (int k = 0; k < 9; k++)
			sum += (out[k] - '0') * (10 - k);
		if ((c = 11 - sum % 11) == 11)
			c = 0;
		if (c != 10) {
			out[9] = (char)('0' + c);
			return;
		}
	}
}

/* ---- what agencies write ------------------------------------------------ */

/* Per agency type (1..6): its references, its practitioners' job titles and
 * the categories it flags most. */
static const struct kind {
	const char *ref;
	const char *job[3];
	int cats[6];
} kinds[EHX_POLICY_TYPES + 1] = {
	[EHX__AGENCY_TYPE__AGENCY_TYPE_POLICE] = { "CR", { "Police constable",
	    "Detective constable", "Safeguarding officer" }, {
	    EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE,
	    EHX__CATEGORY__CATEGORY_OFFENDING,
	    EHX__CATEGORY__CATEGORY_MISSING_EPISODES,
	    EHX__CATEGORY__CATEGORY_EXPLOITATION_RISK,
	    EHX__CATEGORY__CATEGORY_ANTI_SOCIAL_BEHAVIOUR,
	    EHX__CATEGORY__CATEGORY_RADICALISATION } },
	[EHX__AGENCY_TYPE__AGENCY_TYPE_HEALTH] = { "HV", { "Health visitor",
	    "School nurse", "CAMHS practitioner" }, {
	    EHX__CATEGORY__CATEGORY_MENTAL_HEALTH,
	    EHX__CATEGORY__CATEGORY_PHYSICAL_HEALTH,
	    EHX__CATEGORY__CATEGORY_POOR_START,
	    EHX__CATEGORY__CATEGORY_SUBSTANCE_MISUSE,
	    EHX__CATEGORY__CATEGORY_YOUNG_CARER,
	    EHX__CATEGORY__CATEGORY_SEND } },
	[EHX__AGENCY_TYPE__AGENCY_TYPE_SCHOOL] = { "SCH", {
	    "Designated safeguarding lead", "Attendance officer",
	    "SENCO" }, {
	    EHX__CATEGORY__CATEGORY_SCHOOL_ATTENDANCE,
	    EHX__CATEGORY__CATEGORY_SEND,
	    EHX__CATEGORY__CATEGORY_YOUNG_CARER,
	    EHX__CATEGORY__CATEGORY_PARENTING,
	    EHX__CATEGORY__CATEGORY_TRANSITIONS,
	    EHX__CATEGORY__CATEGORY_MENTAL_HEALTH } },
	[EHX__AGENCY_TYPE__AGENCY_TYPE_HOUSING] = { "HSG", { "Housing officer",
	    "Tenancy support worker", "Homelessness caseworker" }, {
	    EHX__CATEGORY__CATEGORY_HOUSING,
	    EHX__CATEGORY__CATEGORY_ANTI_SOCIAL_BEHAVIOUR,
	    EHX__CATEGORY__CATEGORY_WORKLESSNESS,
	    EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE,
	    EHX__CATEGORY__CATEGORY_FAMILY_RESILIENCE,
	    EHX__CATEGORY__CATEGORY_HOUSING } },
	[EHX__AGENCY_TYPE__AGENCY_TYPE_LOCAL_AUTHORITY] = { "EH", {
	    "Early help worker", "Family support worker",
	    "Social worker" }, {
	    EHX__CATEGORY__CATEGORY_FAMILY_RESILIENCE,
	    EHX__CATEGORY__CATEGORY_PARENTING,
	    EHX__CATEGORY__CATEGORY_PRIVATE_FOSTERING,
	    EHX__CATEGORY__CATEGORY_RETURNED_FROM_CARE,
	    EHX__CATEGORY__CATEGORY_WORKLESSNESS,
	    EHX__CATEGORY__CATEGORY_YOUNG_CARER } },
	[EHX__AGENCY_TYPE__AGENCY_TYPE_VOLUNTARY] = { "VOL", { "Family worker",
	    "Youth worker", "Volunteer coordinator" }, {
	    EHX__CATEGORY__CATEGORY_FAMILY_RESILIENCE,
	    EHX__CATEGORY__CATEGORY_PARENTING,
	    EHX__CATEGORY__CATEGORY_YOUNG_CARER,
	    EHX__CATEGORY__CATEGORY_WORKLESSNESS,
	    EHX__CATEGORY__CATEGORY_SCHOOL_ATTENDANCE,
	    EHX__CATEGORY__CATEGORY_TRANSITIONS } },
};

static const char *const given[] = {
	"Sam", "Alex", "Jo", "Chris", "Priya", "Tom", "Aisha", "Dan", "Emma",
	"Kofi", "Lucy", "Mohammed", "Nadia", "Owen", "Rachel", "Yusuf",
};
static const char *const family[] = {
	"Jones", "Patel", "Brown", "Green", "Smith", "Khan", "Taylor", "Wilson",
	"Evans", "Thomas", "Roberts", "Ahmed", "Walker", "Wright", "Hughes",
	"Mensah",
};
static const char *const notes[] = {
	"Attended incident at home address; children present.",
	"Referred by GP; awaiting first appointment.",
	"Attendance below 85% this term; parents engaged with plan.",
	"Family in temporary accommodation since March.",
	"Young carer for a parent; school aware and supportive.",
	"Missing overnight twice this month; returned safe each time.",
	"Team around the family meeting booked; lead practitioner agreed.",
	"Rent arrears; tenancy sustainment support offered.",
	"EHCP assessment requested by school; parents in agreement.",
	"Low mood reported; counselling offered through school.",
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* One change and the strings it points to. */
struct change {
	Ehx__Body body;
	Ehx__Person person;
	Ehx__PublishFlag pf;
	Ehx__Practitioner pr;
	Ehx__RecordConsent rc;
	Ehx__GivenBy gb;
	Ehx__ConsentScope scope;
	Ehx__AgencyType types[EHX_POLICY_TYPES];
	char *agencies[EHX_MAX_SCOPE_AGENCIES];
	Ehx__Purpose purposes[3];
	unsigned char id[EHX_MSGID_LEN];
	unsigned char hash[32];         /* of an envelope never made */
	char nhs[EHX_NHS_LEN + 1];
	char user_id[EHX_MAX_USER_ID + 1];
	char person_name[EHX_MAX_NAME + 1];
	char ref[EHX_MAX_REF + 1];
	char pr_name[EHX_MAX_NAME + 1];
	char contact[EHX_MAX_CONTACT + 1];
	char given_by[EHX_MAX_NAME + 1];
};

static const struct kind *
kind_of(const struct agency *a)
{
	int t = a->type >= 1 && a->type <= EHX_POLICY_TYPES ? a->type :
	    EHX__AGENCY_TYPE__AGENCY_TYPE_LOCAL_AUTHORITY;

	return &kinds[t];
}

static void
change_base(struct change *c, struct rng *r, const struct agency *a,
    const char *nhs, int64_t now)
{
	memset(c, 0, sizeof(*c));
	ehx__body__init(&c->body);
	ehx__person__init(&c->person);
	/* As ehx_message_id() makes them: the time (48 bits), then 80
	 * random bits. */
	for (int i = 0; i < 6; i++)
		c->id[i] = (unsigned char)((uint64_t)now >> (40 - 8 * i));
	rbytes(r, c->id + 6, sizeof(c->id) - 6);
	rbytes(r, c->hash, sizeof(c->hash));
	snprintf(c->nhs, sizeof(c->nhs), "%s", nhs);
	c->body.message_id.data = c->id;
	c->body.message_id.len = sizeof(c->id);
	c->body.sender = (char *)a->id;
	c->body.recipient = b.cfg.id;
	c->body.sent_at = now;
	c->body.person = &c->person;
}

/* A flag as the agency's case system publishes it (a nightly import). */
static void
change_publish(struct change *c, struct rng *r, const struct agency *a,
    const char *nhs, long child, int n, int64_t now)
{
	const struct kind *k = kind_of(a);
	const char *first = given[below(r, NELEM(given))];
	const char *last = family[below(r, NELEM(family))];
	uint32_t u = below(r, 100);

	change_base(c, r, a, nhs, now);
	snprintf(c->user_id, sizeof(c->user_id), "%s-casesystem", a->id);
	snprintf(c->person_name, sizeof(c->person_name), "%s case system",
	    a->name);
	c->person.user_id = c->user_id;
	c->person.name = c->person_name;
	c->person.role = EHX__ROLE__ROLE_SYSTEM;
	ehx__publish_flag__init(&c->pf);
	ehx__practitioner__init(&c->pr);
	snprintf(c->ref, sizeof(c->ref), "%s/%d/%08ld-%d", k->ref,
	    2024 + (int)below(r, 3), child, n);
	snprintf(c->pr_name, sizeof(c->pr_name), "%s %s", first, last);
	if (below(r, 2) == 0)
		snprintf(c->contact, sizeof(c->contact), "01904 %06u",
		    below(r, 1000000));
	else
		snprintf(c->contact, sizeof(c->contact), "%s.%s@%s.example.org",
		    first, last, a->id);
	c->pr.name = c->pr_name;
	c->pr.role = (char *)k->job[below(r, 3)];
	c->pr.contact = c->contact;
	c->pf.nhs_number = c->nhs;
	c->pf.ref = c->ref;
	c->pf.category = (Ehx__Category)(below(r, 10) < 8 ?
	    k->cats[below(r, 6)] : (int)(1 + below(r, EHX_POLICY_CATEGORIES)));
	c->pf.level = u < 30 ? 1 : u < 70 ? 2 : u < 90 ? 3 : 4;
	c->pf.practitioner = &c->pr;
	c->pf.lead = below(r, 5) == 0;
	if (below(r, 2) == 0)
		c->pf.note = (char *)notes[below(r, NELEM(notes))];
	c->pf.withhold = below(r, 20) == 0;
	c->body.payload_case = EHX__BODY__PAYLOAD_PUBLISH_FLAG;
	c->body.publish_flag = &c->pf;
}

/* A consent a practitioner records: every agency type in the registry,
 * every purpose (a whole picture needs whole_picture), for a year. */
static void
change_consent(struct change *c, struct rng *r, const struct agency *a,
    const char *nhs, int64_t now)
{
	static const Ehx__Relation rel[] = {
		EHX__RELATION__RELATION_PARENT, EHX__RELATION__RELATION_PARENT,
		EHX__RELATION__RELATION_PARENT, EHX__RELATION__RELATION_CARER,
		EHX__RELATION__RELATION_YOUNG_PERSON,
	};
	const char *first = given[below(r, NELEM(given))];
	const char *last = family[below(r, NELEM(family))];
	bool seen[EHX_POLICY_TYPES + 1] = { false };

	change_base(c, r, a, nhs, now);
	snprintf(c->user_id, sizeof(c->user_id), "%s-%s.%s", a->id, first,
	    last);
	snprintf(c->person_name, sizeof(c->person_name), "%s %s", first,
	    last);
	c->person.user_id = c->user_id;
	c->person.name = c->person_name;
	c->person.role = EHX__ROLE__ROLE_PRACTITIONER;
	ehx__record_consent__init(&c->rc);
	ehx__given_by__init(&c->gb);
	ehx__consent_scope__init(&c->scope);
	c->gb.relation = rel[below(r, NELEM(rel))];
	snprintf(c->given_by, sizeof(c->given_by), "%s %s",
	    given[below(r, NELEM(given))], last);
	c->gb.name = c->given_by;
	for (size_t i = 0; i < b.reg.n; i++) {
		int t = b.reg.agencies[i].type;

		if (t >= 1 && t <= EHX_POLICY_TYPES && !seen[t]) {
			seen[t] = true;
			c->types[c->scope.n_agency_types++] =
			    (Ehx__AgencyType)t;
		}
	}
	c->scope.agency_types = c->types;
	/* and every agency by name: a type covers only its agencies with an
	 * open flag on the child (issue 16), and the queries that follow
	 * ask as any agency */
	for (size_t i = 0; i < b.reg.n &&
	    c->scope.n_agencies < EHX_MAX_SCOPE_AGENCIES; i++)
		c->agencies[c->scope.n_agencies++] =
		    (char *)b.reg.agencies[i].id;
	c->scope.agencies = c->agencies;
	c->purposes[0] = EHX__PURPOSE__PURPOSE_WHOLE_PICTURE;
	c->purposes[1] = EHX__PURPOSE__PURPOSE_NOTIFICATIONS;
	c->purposes[2] = EHX__PURPOSE__PURPOSE_ASSESSMENT;
	c->scope.purposes = c->purposes;
	c->scope.n_purposes = 3;
	c->rc.nhs_number = c->nhs;
	c->rc.given_by = &c->gb;
	c->rc.scope = &c->scope;
	c->rc.basis = EHX__LAWFUL_BASIS__LAWFUL_BASIS_CONSENT;
	c->rc.expires_at = now + 365 * DAY_MS;
	c->rc.evidence_ref = "GEN-FORM";
	c->body.payload_case = EHX__BODY__PAYLOAD_RECORD_CONSENT;
	c->body.record_consent = &c->rc;
}

/* ---- through the broker's code ------------------------------------------ */

/*
 * Apply c as agency a within txn, as broker_process() and decide() do once
 * an envelope has been verified: the payload's checks, the handler in a
 * child transaction, the audit record, what it leaves behind, and a
 * checkpoint when one is due. A refusal is a bug here: it is reported and
 * returned.
 */
static int
apply(struct change *c, const struct agency *a,
    const unsigned char child[EHX_PSEUDONYM_LEN], MDB_txn *txn)
{
	struct request rq;
	Ehx__AuditRecord rec = EHX__AUDIT_RECORD__INIT;
	Ehx__Person person;
	Ehx__Body *body = &c->body;
	int (*handle)(struct request *, char *, size_t);
	char why[256] = "";
	bool made = false;
	int r, rc;

	ehx_arena_reset(b.arena);
	memset(&rq, 0, sizeof(rq));
	ehx__body__init(&rq.reply);
	rq.b = &b;
	rq.conn = rq.agency = a;
	rq.body = body;
	rq.now = body->sent_at;
	memcpy(rq.child, child, EHX_PSEUDONYM_LEN);
	rq.has_child = true;
	memcpy(rq.envelope_hash, c->hash, sizeof(rq.envelope_hash));
	handle = body->payload_case == EHX__BODY__PAYLOAD_PUBLISH_FLAG ?
	    handle_publish_flag : handle_record_consent;
	if ((r = ehx_validate_person(body->person, why, sizeof(why))) != 0 ||
	    (r = ehx_validate_request(body, rq.now, why, sizeof(why))) != 0)
		goto refused;
	if ((ehx_payload_roles(body->payload_case) &
	    (1u << body->person->role)) == 0) {
		r = EHX_ERR_NOT_PERMITTED;
		goto refused;
	}
	if ((rc = mdb_txn_begin(b.store.env, txn, 0, &rq.txn)) != 0)
		return store_err(rc);
	snprintf(rq.basis, sizeof(rq.basis), "role:%s",
	    ehx_role_name(body->person->role));
	if ((r = handle(&rq, why, sizeof(why))) != 0) {
		mdb_txn_abort(rq.txn);
		goto refused;
	}
	if ((r = store_err(mdb_txn_commit(rq.txn))) != 0)
		return r;
	if (rq.reply.payload_case == EHX__BODY__PAYLOAD_ACK &&
	    rq.reply.ack->unchanged)
		count.unchanged++;

	/* The record broker_process() makes (audit_fill in pipeline.c). */
	rec.time = rq.now;
	rec.agency = (char *)a->id;
	person = *body->person;
	rec.person = &person;
	rec.action = (char *)ehx_payload_name(body->payload_case);
	rec.child.data = rq.child;
	rec.child.len = EHX_PSEUDONYM_LEN;
	rec.decision = EHX__DECISION__DECISION_ALLOW;
	rec.basis = rq.basis;
	rec.message_id = body->message_id;
	rec.role = body->person->role;
	rec.envelope_hash.data = rq.envelope_hash;
	rec.envelope_hash.len = sizeof(rq.envelope_hash);
	if (rq.consent_id[0] != '\0')
		rec.consent_id = rq.consent_id;
	if ((r = store_audit_append(&b.store, txn, &rec)) != 0 ||
	    (r = audit_side_records(&rq, txn, rec.seq)) != 0 ||
	    (r = checkpoint_maybe(&b, txn, false, &made)) != 0 ||
	    (made && (r = checkpoint_adopt_in(&b, txn)) != 0))
		return r;
	count.records++;
	count.checkpoints += made;
	return 0;
refused:
	fprintf(stderr, "ehx-gen: a generated %s was not applied: %s%s%s\n",
	    ehx_payload_name(body->payload_case), ehx_errname(r),
	    why[0] ? ": " : "", why);
	return r;
}

/* Child i: its flags, then (most of the time) its consent. */
static int
gen_child(long i, MDB_txn *txn)
{
	struct rng r = child_rng(opt.first + i);
	struct change c;
	unsigned char child[EHX_PSEUDONYM_LEN];
	char nhs[EHX_NHS_LEN + 1];
	const struct agency *by[2 * MAX_FLAGS + 1];
	bool consent = unit(&r) < opt.share;
	int spread = opt.flags - 1 < 2 ? opt.flags - 1 : 2;
	int nflags = opt.flags - spread + (int)below(&r, (uint32_t)(2 * spread +
	    1)), rv;

	nhs_for(opt.first + i, nhs);
	if (ehx_pseudonym(b.pkey, nhs, child) != 0)
		return EHX_ERR_CRYPTO;
	for (int j = 0; j < nflags; j++) {
		by[j] = &b.reg.agencies[below(&r, (uint32_t)b.reg.n)];
		change_publish(&c, &r, by[j], nhs, opt.first + i, j + 1,
		    ehx_now_ms());
		if ((rv = apply(&c, by[j], child, txn)) != 0)
			return rv;
		count.flags++;
	}
	if (consent) {
		/* Recorded by one of the agencies involved. */
		const struct agency *a = by[below(&r, (uint32_t)nflags)];

		change_consent(&c, &r, a, nhs, ehx_now_ms());
		if ((rv = apply(&c, a, child, txn)) != 0)
			return rv;
		count.consents++;
		consented[i] = 1;
	}
	return 0;
}

struct order {
	uint64_t key;                   /* the pseudonym's first 8 bytes */
	uint32_t i;
};

static int
by_key(const void *x, const void *y)
{
	const struct order *p = x, *q = y;

	return p->key < q->key ? -1 : p->key > q->key ? 1 : 0;
}

/*
 * The children in the order they are written: as numbered (their
 * pseudonyms, and so their keys, in no order), or with --order sorted by
 * pseudonym, so that each batch only extends the trees.
 */
static uint32_t *
make_order(void)
{
	struct order *o;
	uint32_t *out;
	char nhs[EHX_NHS_LEN + 1];
	unsigned char p[EHX_PSEUDONYM_LEN];

	if ((out = calloc((size_t)opt.children, sizeof(*out))) == NULL)
		return NULL;
	if (opt.random_order) {
		for (long i = 0; i < opt.children; i++)
			out[i] = (uint32_t)i;
		return out;
	}
	if ((o = calloc((size_t)opt.children, sizeof(*o))) == NULL) {
		free(out);
		return NULL;
	}
	for (long i = 0; i < opt.children; i++) {
		nhs_for(opt.first + i, nhs);
		if (ehx_pseudonym(b.pkey, nhs, p) != 0) {
			free(o);
			free(out);
			return NULL;
		}
		o[i].key = get_be64(p);
		o[i].i = (uint32_t)i;
	}
	qsort(o, (size_t)opt.children, sizeof(*o), by_key);
	for (long i = 0; i < opt.children; i++)
		out[i] = o[i].i;
	free(o);
	return out;
}

static int
generate(double *seconds)
{
	uint32_t *order = NULL;
	MDB_txn *txn = NULL;
	double t0 = now_s(), last = t0;
	int r = 0, rc;

	if ((consented = calloc((size_t)opt.children + 1, 1)) == NULL ||
	    (order = make_order()) == NULL) {
		fprintf(stderr, "ehx-gen: out of memory\n");
		free(order);
		return EHX_ERR_NOMEM;
	}
	for (long done = 0; done < opt.children && r == 0; ) {
		long end = done + opt.batch < opt.children ? done + opt.batch :
		    opt.children;

		if (store_nearly_full(&b.store, 0)) {
			fprintf(stderr, "ehx-gen: the store is nearly full after "
			    "%ld children: give a larger --map-mb\n", done);
			r = EHX_ERR_STORAGE_FULL;
			break;
		}
		if ((rc = mdb_txn_begin(b.store.env, NULL, 0, &txn)) != 0) {
			r = store_err(rc);
			break;
		}
		for (; done < end && r == 0; done++)
			r = gen_child((long)order[done], txn);
		if (r != 0) {
			mdb_txn_abort(txn);
			break;
		}
		/* One durable commit (fsync) for the batch. */
		if ((r = store_err(mdb_txn_commit(txn))) != 0)
			break;
		if (now_s() - last >= PROGRESS_S) {
			double t = now_s() - t0;

			last = now_s();
			fprintf(stderr, "ehx-gen: %ld/%ld children, %llu flags, "
			    "%.0f records/s\n", done, opt.children,
			    (unsigned long long)count.flags,
			    (double)count.records / t);
		}
	}
	*seconds = now_s() - t0;
	free(order);
	if (r != 0)
		fprintf(stderr, "ehx-gen: stopped: %s\n", ehx_strerror(r));
	return r;
}

/* The timer's last checkpoint, as checkpoint_tick() signs it: the store
 * ends covered by a signed checkpoint. */
static int
final_checkpoint(void)
{
	MDB_txn *txn;
	bool made = false;
	int r, rc;

	ehx_arena_reset(b.arena);
	if ((rc = mdb_txn_begin(b.store.env, NULL, 0, &txn)) != 0)
		return store_err(rc);
	if ((r = checkpoint_maybe(&b, txn, true, &made)) != 0 || !made) {
		mdb_txn_abort(txn);
		return r;
	}
	if ((r = store_err(mdb_txn_commit(txn))) != 0)
		return r;
	count.checkpoints++;
	return checkpoint_adopt(&b);
}

/*
 * Replace the store by a compacted copy of itself (LMDB's own copy,
 * MDB_CP_COMPACT: the pages in use, tree by tree, no free list), then open
 * it again. Big commits leave LMDB tens of thousands of free pages, which
 * a broker's one-request commits would drain only as the store grows:
 * until then each of them rewrites that long free list and scatters its
 * writes, and a query costs the broker twice what it would in a store
 * grown a request at a time. The pages themselves are copied as they are,
 * as full as the order of writing left them.
 */
static int
compact(char *err, size_t errsz)
{
	char tmp[BROKER_PATH_MAX + 32], path[BROKER_PATH_MAX + 16];
	int fd = -1, dfd = -1, rc, r = EHX_ERR_STORAGE;

	snprintf(tmp, sizeof(tmp), "%s/data.mdb.ehx-gen", b.cfg.data_dir);
	snprintf(path, sizeof(path), "%s/data.mdb", b.cfg.data_dir);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600)) < 0) {
		snprintf(err, errsz, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	if ((rc = mdb_env_copyfd2(b.store.env, fd, MDB_CP_COMPACT)) != 0) {
		snprintf(err, errsz, "compacting: %s", mdb_strerror(rc));
		goto out;
	}
	if (fsync(fd) != 0) {
		snprintf(err, errsz, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	rc = close(fd);
	fd = -1;
	if (rc != 0) {
		snprintf(err, errsz, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	/* Nothing else has the store open (checked at the start), and the
	 * lock file is set up afresh by the next to open it. */
	store_close(&b.store);
	if (rename(tmp, path) != 0) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		goto out;
	}
	if ((dfd = open(b.cfg.data_dir, O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) >= 0)
		fsync(dfd);
	if (store_open(&b.store, b.cfg.data_dir, (size_t)(opt.map_mb * MiB),
	    false, err, errsz) != 0)
		goto out;
	r = checkpoint_adopt(&b);
out:
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	if (r != 0)
		unlink(tmp);
	return r;
}

/* ---- the store afterwards ----------------------------------------------- */

struct size {
	uint64_t used, file, audit, flags;
	unsigned psize;
};

/* Pages on LMDB's free list (its database 0: each value is a list of
 * page numbers, led by their count). */
static uint64_t
free_pages(MDB_txn *txn)
{
	MDB_cursor *c;
	MDB_val k, v;
	uint64_t n = 0;

	if (mdb_cursor_open(txn, 0, &c) != 0)
		return 0;
	while (mdb_cursor_get(c, &k, &v, MDB_NEXT) == 0)
		if (v.mv_size >= sizeof(size_t))
			n += *(const size_t *)v.mv_data;
	mdb_cursor_close(c);
	return n;
}

/* What the store's databases hold, on standard error; sizes in *sz. */
static int
store_report(struct size *sz)
{
	static const struct {
		const char *name;
		size_t off;
	} dbs[] = {
		{ "flags", offsetof(struct store, flags) },
		{ "consent", offsetof(struct store, consent) },
		{ "audit", offsetof(struct store, audit) },
		{ "tree", offsetof(struct store, tree) },
		{ "audit_child", offsetof(struct store, audit_child) },
		{ "checkpoints", offsetof(struct store, checkpoints) },
		{ "cosign", offsetof(struct store, cosign) },
		{ "disclosures", offsetof(struct store, disclosures) },
		{ "alerts", offsetof(struct store, alerts) },
		{ "evidence", offsetof(struct store, evidence) },
		{ "replay", offsetof(struct store, replay) },
		{ "replay_time", offsetof(struct store, replay_time) },
		{ "notify", offsetof(struct store, notify) },
		{ "streams", offsetof(struct store, streams) },
		{ "certs", offsetof(struct store, certs) },
		{ "meta", offsetof(struct store, meta) },
	};
	char path[BROKER_PATH_MAX + 16];
	MDB_envinfo info;
	MDB_stat st;
	MDB_txn *txn;
	struct stat fst;
	uint64_t pages = 0, nfree;
	int rc;

	memset(sz, 0, sizeof(*sz));
	if ((rc = mdb_env_info(b.store.env, &info)) != 0 ||
	    (rc = mdb_env_stat(b.store.env, &st)) != 0 ||
	    (rc = mdb_txn_begin(b.store.env, NULL, MDB_RDONLY, &txn)) != 0)
		return store_err(rc);
	sz->psize = st.ms_psize;
	sz->used = (uint64_t)(info.me_last_pgno + 1) * st.ms_psize;
	snprintf(path, sizeof(path), "%s/data.mdb", b.cfg.data_dir);
	if (stat(path, &fst) == 0)
		sz->file = (uint64_t)fst.st_size;
	store_audit_size(&b.store, txn, &sz->audit);
	fprintf(stderr, "ehx-gen: %-12s %10s %9s %10s %10s %8s\n", "database",
	    "entries", "leaf", "branch+ovf", "MiB", "B/entry");
	for (size_t i = 0; i < NELEM(dbs); i++) {
		uint64_t p;

		if (mdb_stat(txn, *(MDB_dbi *)((char *)&b.store + dbs[i].off),
		    &st) != 0)
			continue;
		p = st.ms_leaf_pages + st.ms_branch_pages +
		    st.ms_overflow_pages;
		pages += p;
		if (i == 0)
			sz->flags = st.ms_entries;
		if (st.ms_entries == 0)
			continue;
		fprintf(stderr, "ehx-gen: %-12s %10zu %9zu %10zu %10.1f %8.0f\n",
		    dbs[i].name, st.ms_entries, st.ms_leaf_pages,
		    st.ms_branch_pages + st.ms_overflow_pages,
		    (double)(p * sz->psize) / MiB,
		    (double)(p * sz->psize) / (double)st.ms_entries);
	}
	nfree = free_pages(txn);
	mdb_txn_abort(txn);
	fprintf(stderr, "ehx-gen: in use %.1f MiB: %.1f MiB in the databases, "
	    "%.1f MiB free (pages freed by the last commits, reused by the "
	    "next); file %.1f MiB; map %lld MiB\n", (double)sz->used / MiB,
	    (double)(pages * sz->psize) / MiB,
	    (double)(nfree * sz->psize) / MiB, (double)sz->file / MiB,
	    opt.map_mb);
	return 0;
}

/* Write --sample NHS numbers of consented children, at random, to nhs_fp;
 * into *list too (for --broker-time). */
static int
write_sample(char (**list)[EHX_NHS_LEN + 1], size_t *n)
{
	struct rng r = { opt.seed ^ 0x5a5a5a5a5a5a5a5aULL };
	uint32_t *ids;
	size_t m = 0, k;

	*list = NULL;
	*n = 0;
	if ((ids = calloc((size_t)opt.children + 1, sizeof(*ids))) == NULL)
		return EHX_ERR_NOMEM;
	for (long i = 0; i < opt.children; i++)
		if (consented[i])
			ids[m++] = (uint32_t)i;
	k = (size_t)opt.sample < m ? (size_t)opt.sample : m;
	if (k < (size_t)opt.sample)
		fprintf(stderr, "ehx-gen: only %zu children have consent: the "
		    "sample is all of them\n", m);
	if (k > 0 && (*list = calloc(k, sizeof(**list))) == NULL) {
		free(ids);
		return EHX_ERR_NOMEM;
	}
	for (size_t i = 0; i < k; i++) {
		size_t j = i + below(&r, (uint32_t)(m - i));
		uint32_t t = ids[i];

		ids[i] = ids[j];
		ids[j] = t;
		nhs_for(opt.first + (long)ids[i], (*list)[i]);
		if (nhs_fp != NULL)
			fprintf(nhs_fp, "%s\n", (*list)[i]);
	}
	*n = k;
	free(ids);
	if (nhs_fp != NULL && (fflush(nhs_fp) != 0 || ferror(nhs_fp))) {
		fprintf(stderr, "ehx-gen: %s: %s\n", opt.nhs_out,
		    strerror(errno));
		return EHX_ERR_SYSTEM;
	}
	return 0;
}

/* Read NHS numbers (one a line) from path. */
static int
read_sample(const char *path, char (**list)[EHX_NHS_LEN + 1], size_t *n)
{
	FILE *f;
	char line[64];
	size_t cap = 0;
	int r = 0;

	*list = NULL;
	*n = 0;
	if ((f = fopen(path, "r")) == NULL) {
		fprintf(stderr, "ehx-gen: %s: %s\n", path, strerror(errno));
		return EHX_ERR_SYSTEM;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, " \t\r\n")] = '\0';
		if (line[0] == '\0' || line[0] == '#')
			continue;
		if (!ehx_nhs_valid(line)) {
			fprintf(stderr, "ehx-gen: %s: \"%.16s\" is not a valid "
			    "NHS number\n", path, line);
			r = EHX_ERR_INVALID_NHS_NUMBER;
			break;
		}
		if (*n == cap) {
			size_t ncap = cap ? 2 * cap : 1024;
			char (*nl)[EHX_NHS_LEN + 1];

			if (ncap > (size_t)MAX_CHILDREN || (nl = realloc(*list,
			    ncap * sizeof(*nl))) == NULL) {
				r = EHX_ERR_NOMEM;
				break;
			}
			*list = nl;
			cap = ncap;
		}
		memcpy((*list)[(*n)++], line, EHX_NHS_LEN + 1);
	}
	fclose(f);
	if (r == 0 && *n == 0) {
		fprintf(stderr, "ehx-gen: %s holds no NHS numbers\n", path);
		r = EHX_ERR_NOT_FOUND;
	}
	return r;
}

/* ---- --broker-time ------------------------------------------------------ */

static int
cmp_double(const void *x, const void *y)
{
	double p = *(const double *)x, q = *(const double *)y;

	return p < q ? -1 : p > q ? 1 : 0;
}

/* The q-quantile of n sorted values (nearest rank). */
static double
quantile(const double *v, size_t n, double q)
{
	size_t k = (size_t)(q * (double)n + 0.999999);

	if (k < 1)
		k = 1;
	return v[(k > n ? n : k) - 1];
}

/* Say on standard error why the first query was not answered. */
static void
first_refusal(const char *nhs, const Ehx__Body *rb)
{
	if (rb != NULL && rb->payload_case == EHX__BODY__PAYLOAD_ERROR &&
	    rb->error != NULL)
		fprintf(stderr, "ehx-gen: first refusal (%s): %s: %s\n", nhs,
		    ehx_errname(ehx_err_from_wire(rb->error->code)),
		    rb->error->message);
	else
		fprintf(stderr, "ehx-gen: first refusal (%s): not a picture\n",
		    nhs);
}

/*
 * Sign --broker-time whole-picture queries as the agency (an information
 * officer) for children of the sample and time, for each, what the
 * broker's serving loop does with a request that arrives alone
 * (serve_batch in broker/main.c): open a group commit, broker_process()
 * (the signature, the checks, the consent, the picture, the audit record
 * and its replay entry), commit the batch durably. Without ZeroMQ or an
 * agent; the signature is checked in this thread, as the broker does for a
 * batch of one. The agency's rate limit is lifted (a benchmark is not a
 * flood).
 */
static int
broker_time(struct ehx_signer *s, const struct agency *conn,
    char (*list)[EHX_NHS_LEN + 1], size_t n)
{
	struct rng r = { opt.seed ^ 0xa5a5a5a5a5a5a5a5ULL };
	const struct ehx_cert *bc = ehx_signer_cert(b.signer);
	double *us, sum = 0;
	long answered = 0, refused = 0, flags = 0;
	bool said = false;
	int rv = 0;

	if ((us = calloc((size_t)opt.broker_time, sizeof(*us))) == NULL)
		return EHX_ERR_NOMEM;
	b.cfg.rate_per_second = 0;
	for (long i = 0; i < opt.broker_time; i++) {
		Ehx__Body body = EHX__BODY__INIT, *rb = NULL;
		Ehx__Person p = EHX__PERSON__INIT;
		Ehx__QueryPicture qp = EHX__QUERY_PICTURE__INIT;
		Ehx__Envelope *e = NULL;
		unsigned char id[EHX_MSGID_LEN], *env = NULL, *out = NULL;
		size_t envlen = 0, outlen = 0;
		char uid[EHX_MAX_USER_ID + 1], why[128];
		double t0;

		if ((rv = ehx_message_id(id)) != 0)
			break;
		snprintf(uid, sizeof(uid), "%s-bench-io", conn->id);
		p.user_id = uid;
		p.name = "Bench Information Officer";
		p.role = EHX__ROLE__ROLE_INFORMATION_OFFICER;
		qp.nhs_number = list[below(&r, (uint32_t)n)];
		body.message_id.data = id;
		body.message_id.len = sizeof(id);
		body.sender = (char *)conn->id;
		body.recipient = b.cfg.id;
		body.sent_at = ehx_now_ms();
		body.person = &p;
		body.payload_case = EHX__BODY__PAYLOAD_QUERY_PICTURE;
		body.query_picture = &qp;
		if ((rv = ehx_envelope_seal(s, &body, &env, &envlen)) != 0)
			break;
		t0 = now_s();
		if (broker_batch_begin(&b) != 0)
			b.batch = NULL;         /* then it commits alone */
		rv = broker_process(&b, conn, env, envlen, &out, &outlen);
		if (broker_batch_commit(&b) != 0 && rv == 0) {
			free(out);
			out = NULL;
			rv = broker_refuse(&b, conn, b.last_has_id ?
			    b.last_id : NULL, EHX_ERR_INTERNAL, &out, &outlen);
		}
		us[i] = (now_s() - t0) * 1e6;
		sum += us[i];
		notify_push_drop(&b, 0);
		free(env);
		if (rv != 0) {
			fprintf(stderr, "ehx-gen: broker_process made no reply: "
			    "%s\n", ehx_strerror(rv));
			break;
		}
		if (ehx_envelope_decode(out, outlen, &e) == 0 &&
		    ehx_envelope_verify(e, ehx_cert_pubkey(bc)) == 0 &&
		    ehx_body_decode(e->body.data, e->body.len, &rb, why,
		    sizeof(why)) == 0 &&
		    rb->payload_case == EHX__BODY__PAYLOAD_PICTURE) {
			answered++;
			const Ehx__PictureResult *pr = rb->picture;

			for (size_t k = 0; k < pr->n_involvements; k++)
				flags += (long)pr->involvements[k]->n_flags;
		} else {
			refused++;
			if (!said) {
				said = true;
				first_refusal(qp.nhs_number, rb);
			}
		}
		ehx_body_free(rb);
		ehx_envelope_free(e);
		free(out);
	}
	if (rv == 0) {
		size_t m = (size_t)opt.broker_time;

		qsort(us, m, sizeof(*us), cmp_double);
		printf("{\"broker_query_us\": {\"p50\": %.0f, \"p99\": %.0f, "
		    "\"p999\": %.0f, \"max\": %.0f, \"mean\": %.0f}, "
		    "\"count\": %zu, \"answered\": %ld, \"refused\": %ld, "
		    "\"mean_flags\": %.2f}\n", quantile(us, m, 0.5),
		    quantile(us, m, 0.99), quantile(us, m, 0.999), us[m - 1],
		    sum / (double)m, m, answered, refused, answered ?
		    (double)flags / (double)answered : 0.0);
		fflush(stdout);
	}
	free(us);
	return rv != 0 ? rv : refused > 0 ? EHX_ERR_NOT_PERMITTED : 0;
}

/* ---- setting up --------------------------------------------------------- */

/* The broker's config, keys, policy and registry, as broker/main.c's
 * load() reads them (no CURVE key or CRL: nothing is served). */
static int
load(char *err, size_t errsz)
{
	int r;

	if ((r = broker_config_load(opt.conf, &b.cfg, err, errsz)) != 0)
		return r;
	if ((r = ehx_ca_load(b.cfg.ca, &b.ca)) != 0) {
		snprintf(err, errsz, "%s: cannot load the CA certificate: %s",
		    b.cfg.ca, r == EHX_ERR_SYSTEM ? strerror(errno) :
		    ehx_strerror(r));
		return r;
	}
	if ((r = ehx_signer_load(b.cfg.key, b.cfg.certificate,
	    &b.signer)) != 0) {
		snprintf(err, errsz, "%s / %s: cannot load the broker's key and "
		    "certificate: %s", b.cfg.key, b.cfg.certificate,
		    ehx_strerror(r));
		return r;
	}
	if (strcmp(ehx_cert_cn(ehx_signer_cert(b.signer)), b.cfg.id) != 0) {
		snprintf(err, errsz, "%s does not name the broker's id \"%s\"",
		    b.cfg.certificate, b.cfg.id);
		return EHX_ERR_CONFIG;
	}
	if ((r = ehx_pseudokey_load(b.cfg.pseudonym_key, &b.pkey)) != 0) {
		snprintf(err, errsz, "%s: cannot load the pseudonym key: %s",
		    b.cfg.pseudonym_key, ehx_strerror(r));
		return r;
	}
	if ((r = ehx_policy_load(b.cfg.policy, &b.policy, err, errsz)) != 0)
		return r;
	if ((r = registry_load(b.cfg.registry, b.ca, &b.reg, err,
	    errsz)) != 0)
		return r;
	if (b.reg.n == 0) {
		snprintf(err, errsz, "%s registers no agencies",
		    b.cfg.registry);
		return EHX_ERR_CONFIG;
	}
	return 0;
}

/*
 * Whether another process has the store open: LMDB holds a shared fcntl
 * lock on the first byte of lock.mdb for as long as an environment is
 * open (a running broker, or ehx-broker audit). *pid gets its process id,
 * 0 when none. Checked before opening: closing any descriptor of the file
 * would drop our own lock. A broker started between this check and the
 * open is not caught: do not start one.
 */
static int
store_in_use(const char *dir, pid_t *pid)
{
	char path[BROKER_PATH_MAX + 16];
	struct flock fl;
	int fd;

	*pid = 0;
	snprintf(path, sizeof(path), "%s/lock.mdb", dir);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return errno == ENOENT ? 0 : -1;
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	fl.l_start = 0;
	fl.l_len = 1;
	if (fcntl(fd, F_GETLK, &fl) != 0) {
		close(fd);
		return -1;
	}
	close(fd);
	if (fl.l_type != F_UNLCK)
		*pid = fl.l_pid > 0 ? fl.l_pid : -1;
	return 0;
}

/* Run as root with no user in the config: give the files made in dir
 * to dir's owner, so the broker (not root) can open them. */
static void
give_back(const char *dir)
{
	static const char *const files[] = { "data.mdb", "lock.mdb" };
	char path[BROKER_PATH_MAX + 16];
	struct stat d, f;

	if (stat(dir, &d) != 0 || d.st_uid == 0)
		return;
	for (size_t i = 0; i < NELEM(files); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		if (stat(path, &f) == 0 && (f.st_uid != d.st_uid ||
		    f.st_gid != d.st_gid) && chown(path, d.st_uid,
		    d.st_gid) != 0)
			fprintf(stderr, "ehx-gen: chown %s: %s\n", path,
			    strerror(errno));
	}
}

static void
usage(FILE *f)
{
	fprintf(f,
"usage: ehx-gen --config BROKER_CONF --children N [--flags F]\n"
"               [--consent-share P] [--seed S] [--first I] [--batch B]\n"
"               [--order random|sorted] [--map-mb M]\n"
"               [--nhs-out FILE] [--sample K]\n"
"               [--broker-time COUNT --agency ID --key KEY --cert CERT\n"
"                [--nhs-in FILE]]\n"
"\n"
"Writes a synthetic partnership into the broker's store (its data_dir)\n"
"with the broker's own handlers: N children, each with F flags on average\n"
"(F-2..F+2) from random agencies of the registry and, for a share P of\n"
"them, a consent covering every agency type for every purpose; every\n"
"change audited, checkpoints signed. The broker must be stopped.\n"
"\n"
"  -c, --config FILE     the broker's config file (required)\n"
"  -n, --children N      children to write, 0..%ld\n"
"      --flags F         mean flags per child, 1..%d (default 5)\n"
"      --consent-share P share of children with consent, 0..1 (default 0.9)\n"
"      --seed S          what to generate (default 1): the same seed, the\n"
"                        same children and NHS numbers\n"
"      --first I         index of the first child (default 0): give the\n"
"                        previous run's first + N to add more children\n"
"      --batch B         children per durable commit, 1..100000\n"
"                        (default 2000)\n"
"      --order O         random (default: as a broker meets them; writes\n"
"                        much more on a large store) or sorted (by\n"
"                        pseudonym: faster, but pages fuller than a\n"
"                        broker's: a smaller store)\n"
"      --map-mb M        LMDB map size in MiB, 64..4194304 (default 16384).\n"
"                        The broker's config needs map_size_mb at least\n"
"                        this large to accept changes afterwards\n"
"      --no-compact      leave the store as the last commit left it (with\n"
"                        LMDB's free list of tens of MiB; by default it is\n"
"                        replaced by a compacted copy, as a store grown a\n"
"                        request at a time has almost no free pages)\n"
"      --nhs-out FILE    write --sample NHS numbers of children with\n"
"                        consent, at random, one a line (for ehx-querybench)\n"
"      --sample K        1..%ld (default 10000)\n"
"      --broker-time C   then time broker_process() in-process on C signed\n"
"                        whole-picture queries (1..10000000) by agency ID as\n"
"                        an information officer, for sampled children (or\n"
"                        those in --nhs-in FILE); needs --agency, --key and\n"
"                        --cert (the agency's signing key and certificate)\n"
"  -h, --help            this text\n"
"\n"
"Prints one JSON line for the generation:\n"
"  {\"children\", \"flags\", \"consents\", \"audit_records\", \"seconds\",\n"
"   \"store_bytes\" (LMDB pages in use), \"file_bytes\", \"bytes_per_flag\"\n"
"   (store bytes over all flags in the store), ...}\n"
"and one for --broker-time:\n"
"  {\"broker_query_us\": {\"p50\", \"p99\", \"p999\", \"max\", \"mean\"},\n"
"   \"answered\", \"refused\", ...}\n"
"Exit status 0, 1 on a failure or a refused query, 2 on bad usage.\n",
	    MAX_CHILDREN, MAX_FLAGS, MAX_CHILDREN);
}

/* optarg as a whole number in lo..hi, or exit 2 naming the option. */
static long long
num_arg(const char *name, const char *s, long long lo, long long hi)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "ehx-gen: --%s needs a whole number in "
		    "%lld..%lld, not \"%s\"\n", name, lo, hi, s);
		exit(2);
	}
	return v;
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "children", required_argument, NULL, 'n' },
		{ "flags", required_argument, NULL, 'f' },
		{ "consent-share", required_argument, NULL, 'p' },
		{ "seed", required_argument, NULL, 's' },
		{ "first", required_argument, NULL, 'F' },
		{ "batch", required_argument, NULL, 'b' },
		{ "order", required_argument, NULL, 'o' },
		{ "map-mb", required_argument, NULL, 'm' },
		{ "no-compact", no_argument, NULL, 'N' },
		{ "nhs-out", required_argument, NULL, 'O' },
		{ "nhs-in", required_argument, NULL, 'I' },
		{ "sample", required_argument, NULL, 'k' },
		{ "broker-time", required_argument, NULL, 'T' },
		{ "agency", required_argument, NULL, 'a' },
		{ "key", required_argument, NULL, 'K' },
		{ "cert", required_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ehx_signer *asigner = NULL;
	const struct agency *conn = NULL;
	const struct ehx_cert *acert = NULL;
	char (*list)[EHX_NHS_LEN + 1] = NULL, (*made)[EHX_NHS_LEN + 1] = NULL;
	size_t nlist = 0, nmade = 0;
	struct size sz;
	char err[512];
	double seconds = 0, compact_s = 0;
	bool have_children = false, chown_after = false;
	pid_t pid;
	int c, r, status = 1;

	ehx_log_init("ehx-gen", EHX_LOG_WARN);
	while ((c = getopt_long(argc, argv, "c:n:h", lo, NULL)) != -1)
		switch (c) {
		case 'c': opt.conf = optarg; break;
		case 'n':
			opt.children = (long)num_arg("children", optarg, 0,
			    MAX_CHILDREN);
			have_children = true;
			break;
		case 'f':
			opt.flags = (int)num_arg("flags", optarg, 1, MAX_FLAGS);
			break;
		case 'p': {
			char *end;

			errno = 0;
			opt.share = strtod(optarg, &end);
			if (errno != 0 || end == optarg || *end != '\0' ||
			    !(opt.share >= 0.0 && opt.share <= 1.0)) {
				fprintf(stderr, "ehx-gen: --consent-share needs "
				    "a number in 0..1, not \"%s\"\n", optarg);
				return 2;
			}
			break;
		}
		case 's':
			opt.seed = (unsigned long long)num_arg("seed", optarg, 0,
			    INT64_MAX);
			break;
		case 'F':
			opt.first = (long)num_arg("first", optarg, 0,
			    MAX_FIRST);
			break;
		case 'b':
			opt.batch = (long)num_arg("batch", optarg, 1, 100000);
			break;
		case 'o':
			if (strcmp(optarg, "random") == 0)
				opt.random_order = true;
			else if (strcmp(optarg, "sorted") == 0)
				opt.random_order = false;
			else {
				fprintf(stderr, "ehx-gen: --order is random or "
				    "sorted\n");
				return 2;
			}
			break;
		case 'm':
			opt.map_mb = num_arg("map-mb", optarg, 64, 4194304);
			break;
		case 'N': opt.no_compact = true; break;
		case 'O': opt.nhs_out = optarg; break;
		case 'I': opt.nhs_in = optarg; break;
		case 'k':
			opt.sample = (long)num_arg("sample", optarg, 1,
			    MAX_CHILDREN);
			break;
		case 'T':
			opt.broker_time = (long)num_arg("broker-time", optarg, 1,
			    10000000);
			break;
		case 'a': opt.agency = optarg; break;
		case 'K': opt.key = optarg; break;
		case 'C': opt.cert = optarg; break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	if (optind != argc || opt.conf == NULL || !have_children) {
		fprintf(stderr, "ehx-gen: give --config and --children "
		    "(ehx-gen --help)\n");
		return 2;
	}
	if (opt.broker_time > 0 && (opt.agency == NULL || opt.key == NULL ||
	    opt.cert == NULL)) {
		fprintf(stderr, "ehx-gen: --broker-time needs --agency, --key "
		    "and --cert\n");
		return 2;
	}
	if ((opt.broker_time == 0) != (opt.agency == NULL && opt.key == NULL &&
	    opt.cert == NULL && opt.nhs_in == NULL)) {
		fprintf(stderr, "ehx-gen: --agency, --key, --cert and --nhs-in "
		    "go with --broker-time\n");
		return 2;
	}
	if (opt.broker_time > 0 && opt.children == 0 && opt.nhs_in == NULL) {
		fprintf(stderr, "ehx-gen: --broker-time with --children 0 needs "
		    "--nhs-in FILE (the NHS numbers to ask about)\n");
		return 2;
	}
	if (opt.nhs_out != NULL && opt.children == 0) {
		fprintf(stderr, "ehx-gen: --nhs-out needs children to "
		    "sample\n");
		return 2;
	}
	if (opt.children == 0 && opt.broker_time == 0) {
		fprintf(stderr, "ehx-gen: nothing to do: --children 0 and no "
		    "--broker-time\n");
		return 2;
	}
	umask(077);

	/* Everything that may need root first: keys, the sample files. */
	if ((r = load(err, sizeof(err))) != 0) {
		fprintf(stderr, "ehx-gen: %s\n", err);
		goto out;
	}
	if (opt.broker_time > 0) {
		if (ehx_signer_load(opt.key, opt.cert, &asigner) != 0) {
			fprintf(stderr, "ehx-gen: %s / %s: cannot load the "
			    "agency's key and certificate\n", opt.key,
			    opt.cert);
			goto out;
		}
		if ((conn = registry_by_id(&b.reg, opt.agency)) == NULL ||
		    registry_by_fpr(&b.reg, ehx_signer_fpr(asigner),
		    &acert) != conn) {
			fprintf(stderr, "ehx-gen: %s is not %s's registered "
			    "certificate\n", opt.cert, opt.agency);
			goto out;
		}
		if (opt.nhs_in != NULL && read_sample(opt.nhs_in, &list,
		    &nlist) != 0)
			goto out;
	}
	if (opt.nhs_out != NULL && (nhs_fp = fopen(opt.nhs_out, "w")) == NULL) {
		fprintf(stderr, "ehx-gen: %s: %s\n", opt.nhs_out,
		    strerror(errno));
		goto out;
	}
	if (store_in_use(b.cfg.data_dir, &pid) != 0) {
		fprintf(stderr, "ehx-gen: %s/lock.mdb: %s\n", b.cfg.data_dir,
		    strerror(errno));
		goto out;
	}
	if (pid != 0) {
		fprintf(stderr, "ehx-gen: the store in %s is open in process "
		    "%ld (a running broker?): stop it first\n", b.cfg.data_dir,
		    (long)pid);
		goto out;
	}
	/* As the broker's user, as ehx-broker --purge writes the store. */
	if (getuid() == 0 || geteuid() == 0) {
		if (b.cfg.user[0] != '\0') {
			if (ehx_drop_root(b.cfg.user, false, err,
			    sizeof(err)) != 0) {
				fprintf(stderr, "ehx-gen: %s\n", err);
				goto out;
			}
		} else
			chown_after = true;
	}
	if ((b.arena = ehx_arena_new(ARENA_LIMIT)) == NULL) {
		fprintf(stderr, "ehx-gen: out of memory\n");
		goto out;
	}
	if (store_open(&b.store, b.cfg.data_dir, (size_t)(opt.map_mb * MiB),
	    false, err, sizeof(err)) != 0) {
		fprintf(stderr, "ehx-gen: cannot open the store: %s\n", err);
		goto out;
	}
	if ((r = store_keep_certs(&b.store, ehx_signer_cert(b.signer),
	    &b.reg)) != 0 || (r = checkpoint_adopt(&b)) != 0) {
		fprintf(stderr, "ehx-gen: the store: %s\n", ehx_strerror(r));
		goto out;
	}

	if (opt.children > 0) {
		r = generate(&seconds);
		if (final_checkpoint() != 0)
			fprintf(stderr, "ehx-gen: the last checkpoint could not "
			    "be signed\n");
		if (r == 0 && !opt.no_compact) {
			double t0 = now_s();

			if (compact(err, sizeof(err)) != 0) {
				fprintf(stderr, "ehx-gen: %s\n", err);
				goto out;
			}
			compact_s = now_s() - t0;
		}
		if (store_report(&sz) != 0)
			goto out;
		printf("{\"children\": %ld, \"flags\": %llu, \"consents\": %llu, "
		    "\"audit_records\": %llu, \"audit_size\": %llu, "
		    "\"checkpoints\": %llu, \"unchanged\": %llu, "
		    "\"seconds\": %.1f, \"compact_seconds\": %.1f, "
		    "\"children_per_s\": %.0f, "
		    "\"records_per_s\": %.0f, \"store_bytes\": %llu, "
		    "\"file_bytes\": %llu, \"store_flags\": %llu, "
		    "\"bytes_per_flag\": %.0f, "
		    "\"order\": \"%s\", \"batch\": %ld, \"seed\": %llu, "
		    "\"first\": %ld}\n",
		    opt.children, (unsigned long long)count.flags,
		    (unsigned long long)count.consents,
		    (unsigned long long)count.records,
		    (unsigned long long)sz.audit,
		    (unsigned long long)count.checkpoints,
		    (unsigned long long)count.unchanged, seconds, compact_s,
		    (double)opt.children / seconds,
		    (double)count.records / seconds,
		    (unsigned long long)sz.used, (unsigned long long)sz.file,
		    (unsigned long long)sz.flags, sz.flags ? (double)sz.used /
		    (double)sz.flags : 0.0,
		    opt.random_order ? "random" : "sorted", opt.batch, opt.seed,
		    opt.first);
		fflush(stdout);
		if (r != 0)
			goto out;
		if (count.unchanged > 0)
			fprintf(stderr, "ehx-gen: %llu flags were there already "
			    "(the same --seed and --first again?)\n",
			    (unsigned long long)count.unchanged);
		if (b.cfg.map_size < opt.map_mb * MiB)
			fprintf(stderr, "ehx-gen: %s has map_size_mb = %lld: "
			    "set it to at least %lld (this run's --map-mb) "
			    "before starting the broker, or it refuses "
			    "changes\n", opt.conf, b.cfg.map_size / MiB,
			    opt.map_mb);
		if (write_sample(&made, &nmade) != 0)
			goto out;
		if (list == NULL) {
			list = made;
			nlist = nmade;
			made = NULL;
		}
	}
	if (opt.broker_time > 0) {
		if (nlist == 0) {
			fprintf(stderr, "ehx-gen: no child to ask about\n");
			goto out;
		}
		if (broker_time(asigner, conn, list, nlist) != 0)
			goto out;
	}
	status = 0;
out:
	if (nhs_fp != NULL && fclose(nhs_fp) != 0) {
		fprintf(stderr, "ehx-gen: %s: %s\n", opt.nhs_out,
		    strerror(errno));
		status = 1;
	}
	if (b.cp != NULL)
		ehx__checkpoint__free_unpacked(b.cp, NULL);
	notify_push_drop(&b, 0);
	free(b.push);
	store_close(&b.store);
	if (chown_after)
		give_back(b.cfg.data_dir);
	registry_free(&b.reg);
	ehx_signer_free(b.signer);
	ehx_signer_free(asigner);
	ehx_pseudokey_free(b.pkey);
	ehx_ca_free(b.ca);
	ehx_arena_free(b.arena);
	free(consented);
	free(list);
	free(made);
	return status;
}
