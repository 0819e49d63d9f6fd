/*
 * test_model — the broker's access decisions against a small, obviously
 * correct reference model of the rules (DESIGN.md §6, docs/GOVERNANCE.md):
 *
 *   consent states × sharing policy × role × break-glass
 *
 * A real broker in-process (a partnership made by certs/ehx-pki, a real
 * LMDB store) holds children with flags from six agencies of every type,
 * published through the pipeline, and consent records in every state
 * (active, not yet started, expired, withdrawn; scoped by agency or type
 * — a type covering only agencies of it with an open flag on the child —
 * for one purpose or several) written in the store's own format. Random
 * sharing policies are written as policy files and loaded by the broker's
 * own loader. Then each case sends a whole-picture query through
 * broker_process() and compares the signed answer, field by field, with
 * what the model says: the decision, its error code, its basis and
 * consent, which flags appear, and which of their details.
 *
 * EHX_MODEL_CASES sets the number of cases (default 100000); the test
 * prints how many it compared and fails on the first disagreement.
 */
#include "testutil.h"

#include "../../broker/broker.h"
#include "../../broker/notify.h"
#include "../../broker/pipeline.h"
#include "../../broker/registry.h"
#include "../../broker/store.h"
#include "ehx/crypto.h"
#include "ehx/err.h"
#include "ehx/log.h"
#include "ehx/names.h"
#include "ehx/nhs.h"
#include "ehx/policy.h"
#include "ehx/util.h"
#include "ehx/wire.h"

#define MiB (1024 * 1024)
#define HOUR 3600000LL
#define DAY (24 * HOUR)
#define NAGENCIES 6
#define NCHILDREN 48
#define NPOLICIES 8
#define MAX_FLAGS 16
#define MAX_CONSENTS 4
#define NCATS EHX_POLICY_CATEGORIES
#define NTYPES EHX_POLICY_TYPES

static char dir[PATH_MAX];
static struct broker b;
static struct ehx_cert *broker_cert;

static const struct {
	const char *id;
	int type;
} agencies[NAGENCIES] = {
	{ "police", EHX__AGENCY_TYPE__AGENCY_TYPE_POLICE },
	{ "health", EHX__AGENCY_TYPE__AGENCY_TYPE_HEALTH },
	{ "school", EHX__AGENCY_TYPE__AGENCY_TYPE_SCHOOL },
	{ "housing", EHX__AGENCY_TYPE__AGENCY_TYPE_HOUSING },
	{ "la", EHX__AGENCY_TYPE__AGENCY_TYPE_LOCAL_AUTHORITY },
	{ "vol", EHX__AGENCY_TYPE__AGENCY_TYPE_VOLUNTARY },
};
static struct ehx_signer *signers[NAGENCIES];

/* ---- the model's own view of the world ------------------------------------ */

struct mflag {
	int agency;
	char ref[16];
	int category;
	unsigned level;
	bool open, lead;
	char note[32], contact[32];
};

struct mconsent {
	char id[24];
	bool by_agency[NAGENCIES];
	bool by_type[NTYPES + 1];
	bool whole_picture;
	int64_t starts, expires;
	bool withdrawn;
};

struct mchild {
	char nhs[EHX_NHS_LEN + 1];
	unsigned char pseudo[EHX_PSEUDONYM_LEN];
	struct mflag flags[MAX_FLAGS];
	int nflags;
	struct mconsent consents[MAX_CONSENTS];
	int nconsents;
};

struct mpolicy {
	char id[16];
	bool present[NTYPES + 1];
	bool see[NTYPES + 1][NCATS + 1];
	bool level[NTYPES + 1][NCATS + 1], contact[NTYPES + 1][NCATS + 1];
	bool note[NTYPES + 1][NCATS + 1];
	int basis[NTYPES + 1];          /* 1 = consent */
	struct ehx_policy loaded;       /* the broker's own load of it */
};

static struct mchild children[NCHILDREN];
static struct mpolicy policies[NPOLICIES];
static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint32_t
rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng % n);
}

static bool coin(uint32_t pct) { return rnd(100) < pct; }

/* ---- set-up ------------------------------------------------------------------- */

static void
nhs_make(int n, char out[EHX_NHS_LEN + 1])
{
	for (long p = 700000000L + (long)n * 7919L;; p++) {
		int sum = 0, c;

		snprintf(out, EHX_NHS_LEN + 1, "%09ld0", p);
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

/* Send body as agency a; return the opened reply (caller frees). */
static Ehx__Body *
ask(int a, Ehx__Body *body)
{
	const struct agency *conn = registry_by_id(&b.reg, agencies[a].id);
	unsigned char *frame = NULL, *out = NULL;
	size_t len = 0, outlen = 0;
	Ehx__Envelope *env = NULL;
	Ehx__Body *reply = NULL;
	char why[128];

	assert_non_null(conn);
	assert_int_equal(ehx_envelope_seal(signers[a], body, &frame, &len), 0);
	assert_int_equal(broker_process(&b, conn, frame, len, &out, &outlen),
	    0);
	free(frame);
	assert_int_equal(ehx_envelope_decode(out, outlen, &env), 0);
	assert_int_equal(ehx_envelope_verify(env, ehx_cert_pubkey(broker_cert)),
	    0);
	if (ehx_body_decode(env->body.data, env->body.len, &reply, why,
	    sizeof(why)) != 0)
		fail_msg("reply does not decode: %s", why);
	assert_memory_equal(reply->in_reply_to.data, body->message_id.data,
	    EHX_MSGID_LEN);
	ehx_envelope_free(env);
	free(out);
	return reply;
}

static void
body_base(Ehx__Body *body, Ehx__Person *p, unsigned char id[EHX_MSGID_LEN],
    int a, int role)
{
	ehx__body__init(body);
	ehx__person__init(p);
	assert_int_equal(ehx_random(id, EHX_MSGID_LEN), 0);
	body->message_id.data = id;
	body->message_id.len = EHX_MSGID_LEN;
	body->sender = (char *)agencies[a].id;
	body->recipient = (char *)"broker";
	body->sent_at = ehx_now_ms();
	p->user_id = (char *)"model-user";
	p->name = (char *)"Model Person";
	p->role = (Ehx__Role)role;
	body->person = p;
}

/* Publish (and maybe close) flag f of child c through the pipeline. */
static void
publish(struct mchild *c, const struct mflag *f)
{
	Ehx__Body body, *r;
	Ehx__Person p;
	Ehx__PublishFlag pf = EHX__PUBLISH_FLAG__INIT;
	Ehx__CloseFlag cf = EHX__CLOSE_FLAG__INIT;
	Ehx__Practitioner pr = EHX__PRACTITIONER__INIT;
	unsigned char id[EHX_MSGID_LEN];

	body_base(&body, &p, id, f->agency, EHX__ROLE__ROLE_SYSTEM);
	pr.name = (char *)"Pat Practitioner";
	pr.contact = (char *)f->contact;
	pf.nhs_number = c->nhs;
	pf.ref = (char *)f->ref;
	pf.category = (Ehx__Category)f->category;
	pf.level = f->level;
	pf.practitioner = &pr;
	pf.lead = f->lead;
	pf.note = (char *)f->note;
	body.payload_case = EHX__BODY__PAYLOAD_PUBLISH_FLAG;
	body.publish_flag = &pf;
	r = ask(f->agency, &body);
	assert_int_equal(r->payload_case, EHX__BODY__PAYLOAD_ACK);
	ehx_body_free(r);
	if (f->open)
		return;
	body_base(&body, &p, id, f->agency, EHX__ROLE__ROLE_SYSTEM);
	cf.nhs_number = c->nhs;
	cf.ref = (char *)f->ref;
	cf.reason = (char *)"closed-reason";
	body.payload_case = EHX__BODY__PAYLOAD_CLOSE_FLAG;
	body.close_flag = &cf;
	r = ask(f->agency, &body);
	assert_int_equal(r->payload_case, EHX__BODY__PAYLOAD_ACK);
	ehx_body_free(r);
}

/* Write consent m of child c in the store's own format (dates in the
 * past cannot be recorded over the wire, and expiry must be modelled). */
static void
store_consent(MDB_txn *txn, struct mchild *c, const struct mconsent *m,
    int64_t now)
{
	Ehx__StoredConsent sc = EHX__STORED_CONSENT__INIT;
	Ehx__ConsentRecord rec = EHX__CONSENT_RECORD__INIT;
	Ehx__ConsentScope scope = EHX__CONSENT_SCOPE__INIT;
	Ehx__GivenBy gb = EHX__GIVEN_BY__INIT;
	Ehx__Person person = EHX__PERSON__INIT;
	char *ids[NAGENCIES];
	Ehx__AgencyType types[NTYPES];
	Ehx__Purpose purposes[3];
	unsigned char key[STORE_KEY_MAX + 1];
	size_t klen;

	for (int a = 0; a < NAGENCIES; a++)
		if (m->by_agency[a])
			ids[scope.n_agencies++] = (char *)agencies[a].id;
	for (int t = 1; t <= NTYPES; t++)
		if (m->by_type[t])
			types[scope.n_agency_types++] = (Ehx__AgencyType)t;
	purposes[scope.n_purposes++] = EHX__PURPOSE__PURPOSE_NOTIFICATIONS;
	if (m->whole_picture)
		purposes[scope.n_purposes++] =
		    EHX__PURPOSE__PURPOSE_WHOLE_PICTURE;
	scope.agencies = ids;
	scope.agency_types = types;
	scope.purposes = purposes;
	gb.relation = EHX__RELATION__RELATION_PARENT;
	gb.name = (char *)"Parent";
	person.user_id = (char *)"u";
	person.name = (char *)"U";
	person.role = EHX__ROLE__ROLE_PRACTITIONER;
	rec.id = (char *)m->id;
	rec.given_by = &gb;
	rec.recorded_by_agency = (char *)"health";
	rec.recorded_by = &person;
	rec.scope = &scope;
	rec.basis = EHX__LAWFUL_BASIS__LAWFUL_BASIS_CONSENT;
	rec.recorded_at = now - 2 * DAY;
	rec.starts_at = m->starts;
	rec.expires_at = m->expires;
	sc.child.data = c->pseudo;
	sc.child.len = EHX_PSEUDONYM_LEN;
	sc.record = &rec;
	klen = store_consent_key(key, c->pseudo, m->id, STORE_CONSENT_RECORD);
	assert_int_equal(store_put_msg(txn, b.store.consent, key, klen,
	    &sc.base, b.arena), 0);
	if (m->withdrawn) {
		Ehx__StoredWithdrawal sw = EHX__STORED_WITHDRAWAL__INIT;
		Ehx__ConsentEvent ev = EHX__CONSENT_EVENT__INIT;

		ev.consent_id = (char *)m->id;
		ev.state = EHX__CONSENT_STATE__CONSENT_STATE_WITHDRAWN;
		ev.at = now - HOUR;
		ev.agency = (char *)"health";
		ev.person = &person;
		ev.reason = (char *)"asked";
		sw.event = &ev;
		key[klen - 1] = STORE_CONSENT_WITHDRAWAL;
		assert_int_equal(store_put_msg(txn, b.store.consent, key, klen,
		    &sw.base, b.arena), 0);
	}
}

static void
make_children(void)
{
	int64_t now = ehx_now_ms();
	MDB_txn *txn;

	for (int i = 0; i < NCHILDREN; i++) {
		struct mchild *c = &children[i];

		nhs_make(i, c->nhs);
		assert_int_equal(ehx_pseudonym(b.pkey, c->nhs, c->pseudo), 0);
		c->nflags = (int)rnd(MAX_FLAGS);
		for (int j = 0; j < c->nflags; j++) {
			struct mflag *f = &c->flags[j];

			f->agency = (int)rnd(NAGENCIES);
			snprintf(f->ref, sizeof(f->ref), "r%d", j);
			f->category = 1 + (int)rnd(NCATS);
			f->level = 1 + rnd(4);
			f->open = coin(75);
			f->lead = coin(30);
			snprintf(f->note, sizeof(f->note), "note-%d-%d", i, j);
			snprintf(f->contact, sizeof(f->contact), "c%d@x", j);
			publish(c, f);
		}
		c->nconsents = (int)rnd(MAX_CONSENTS + 1);
	}
	assert_int_equal(mdb_txn_begin(b.store.env, NULL, 0, &txn), 0);
	for (int i = 0; i < NCHILDREN; i++) {
		struct mchild *c = &children[i];

		for (int j = 0; j < c->nconsents; j++) {
			struct mconsent *m = &c->consents[j];

			snprintf(m->id, sizeof(m->id), "c-%016x", rnd(1u << 30) *
			    16u + (unsigned)j);
			for (int a = 0; a < NAGENCIES; a++)
				m->by_agency[a] = coin(20);
			for (int t = 1; t <= NTYPES; t++)
				m->by_type[t] = coin(25);
			m->whole_picture = coin(80);
			/* Well away from now: the broker's clock moves on. */
			switch (rnd(4)) {
			case 0: /* not yet started */
				m->starts = now + DAY;
				m->expires = now + (int64_t)(2 + rnd(300)) * DAY;
				break;
			case 1: /* expired */
				m->starts = now - 30 * DAY;
				m->expires = now - (int64_t)(1 + rnd(20)) * DAY;
				break;
			default: /* active, unless withdrawn */
				m->starts = now - DAY;
				m->expires = now + (int64_t)(2 + rnd(300)) * DAY +
				    (int64_t)j * 1000;
			}
			m->withdrawn = coin(25);
			store_consent(txn, c, m, now);
		}
	}
	assert_int_equal(mdb_txn_commit(txn), 0);
}

static const char *const detail_words[] = { "level", "contact", "note" };

/* A random policy: its file text and the model's copy of its rules. */
static void
make_policy(int n)
{
	struct mpolicy *p = &policies[n];
	char path[PATH_MAX], err[512], *text, *w;
	size_t cap = 64 * 1024;

	snprintf(p->id, sizeof(p->id), "model-%d", n);
	assert_non_null(text = malloc(cap));
	w = text;
	w += sprintf(w, "[agreement]\nid = %s\n", p->id);
	for (int t = 1; t <= NTYPES; t++) {
		bool d[3];
		int ncat = 0;

		p->basis[t] = EHX__LAWFUL_BASIS__LAWFUL_BASIS_CONSENT;
		if (!(p->present[t] = coin(85)))
			continue;
		w += sprintf(w, "\n[view %s]\ncategories = ",
		    ehx_agency_type_name(t));
		for (int c = 1; c <= NCATS; c++)
			if ((p->see[t][c] = coin(60)))
				w += sprintf(w, "%s%s", ncat++ == 0 ? "" :
				    ncat % 6 == 1 ? "\n    " : ", ",
				    ehx_category_name(c));
		if (ncat == 0) {
			w += sprintf(w, "none");
		}
		w += sprintf(w, "\ndetails = ");
		for (int k = 0, nd = 0; k < 3; k++)
			if ((d[k] = coin(50)))
				w += sprintf(w, "%s%s", nd++ ? ", " : "",
				    detail_words[k]);
		if (!d[0] && !d[1] && !d[2])
			w += sprintf(w, "none");
		w += sprintf(w, "\n");
		for (int c = 1; c <= NCATS; c++) {
			bool o[3] = { d[0], d[1], d[2] };

			if (p->see[t][c] && coin(15)) {
				int no = 0;

				w += sprintf(w, "details.%s = ",
				    ehx_category_name(c));
				for (int k = 0; k < 3; k++)
					if ((o[k] = coin(50)))
						w += sprintf(w, "%s%s", no++ ?
						    ", " : "", detail_words[k]);
				if (no == 0)
					w += sprintf(w, "none");
				w += sprintf(w, "\n");
			}
			p->level[t][c] = p->see[t][c] && o[0];
			p->contact[t][c] = p->see[t][c] && o[1];
			p->note[t][c] = p->see[t][c] && o[2];
		}
		if (coin(25)) {
			p->basis[t] = 2 + (int)rnd(3);
			w += sprintf(w, "picture_basis = %s\n",
			    ehx_basis_name(p->basis[t]));
		}
	}
	assert_true((size_t)(w - text) < cap);
	snprintf(path, sizeof(path), "%s/policy-%d.ini", dir, n);
	assert_int_equal(tu_write(path, text, strlen(text), 0600), 0);
	free(text);
	if (ehx_policy_load(path, &p->loaded, err, sizeof(err)) != 0)
		fail_msg("the model's policy %d does not load: %s", n, err);
}

static int
setup(void **state)
{
	const char *pki;
	char key[PATH_MAX], crt[PATH_MAX], err[512];

	(void)state;
	ehx_log_level_current = -1;
	if ((pki = tu_pki()) == NULL || tu_mkdtemp(dir, sizeof(dir), "model") != 0)
		return -1;
	if (tu_sh("'%s' ca '%s' >/dev/null && '%s' broker '%s' >/dev/null && "
	    "'%s' agency '%s' police police >/dev/null && "
	    "'%s' agency '%s' health health >/dev/null && "
	    "'%s' agency '%s' school school >/dev/null && "
	    "'%s' agency '%s' housing housing >/dev/null && "
	    "'%s' agency '%s' la local_authority >/dev/null && "
	    "'%s' agency '%s' vol voluntary >/dev/null",
	    pki, dir, pki, dir, pki, dir, pki, dir, pki, dir, pki, dir, pki, dir,
	    pki, dir) != 0)
		return -1;
	for (int i = 0; i < NAGENCIES; i++) {
		snprintf(key, sizeof(key), "%s/agencies/%s/%s.key", dir,
		    agencies[i].id, agencies[i].id);
		snprintf(crt, sizeof(crt), "%s/agencies/%s/%s.crt", dir,
		    agencies[i].id, agencies[i].id);
		if (ehx_signer_load(key, crt, &signers[i]) != 0)
			return -1;
	}
	memset(&b, 0, sizeof(b));
	snprintf(b.cfg.id, sizeof(b.cfg.id), "broker");
	/* A short window keeps the replay store small over many cases. */
	b.cfg.skew_ms = 5 * 1000;
	b.cfg.checkpoint_records = 100000;
	b.cfg.checkpoint_seconds = 3600;
	tu_join(b.cfg.data_dir, sizeof(b.cfg.data_dir), dir, "data");
	if (ehx_ca_load(tu_join(key, sizeof(key), dir, "ca/ca.crt"), &b.ca) ||
	    ehx_signer_load(tu_join(key, sizeof(key), dir, "broker/broker.key"),
	    tu_join(crt, sizeof(crt), dir, "broker/broker.crt"), &b.signer) ||
	    ehx_pseudokey_load(tu_join(key, sizeof(key), dir,
	    "broker/pseudonym.key"), &b.pkey) ||
	    ehx_cert_load(crt, &broker_cert))
		return -1;
	if (registry_load(tu_join(key, sizeof(key), dir, "registry.ini"), b.ca,
	    &b.reg, err, sizeof(err)) != 0 ||
	    store_open(&b.store, b.cfg.data_dir, 1024 * MiB, false, err,
	    sizeof(err)) != 0) {
		fprintf(stderr, "test_model: %s\n", err);
		return -1;
	}
	/* Durability is not under test here: skip the fsyncs. */
	if (mdb_env_set_flags(b.store.env, MDB_NOSYNC, 1) != 0 ||
	    (b.arena = ehx_arena_new(8 * MiB)) == NULL)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	if (b.cp != NULL)
		ehx__checkpoint__free_unpacked(b.cp, NULL);
	notify_push_drop(&b, 0);        /* notifications nobody pushes here */
	free(b.push);
	store_close(&b.store);
	registry_free(&b.reg);
	ehx_signer_free(b.signer);
	ehx_pseudokey_free(b.pkey);
	ehx_ca_free(b.ca);
	ehx_arena_free(b.arena);
	for (int i = 0; i < NAGENCIES; i++)
		ehx_signer_free(signers[i]);
	ehx_cert_free(broker_cert);
	tu_rmtree(dir);
	return 0;
}

/* ---- the reference model ------------------------------------------------------ */

struct verdict {
	int code;                       /* 0 or EHX_ERR_* */
	char basis[64];
	char consent[24];
	char flags[4096];               /* what is shown, canonical */
	unsigned highest;
};

/* Whether agency a holds an open flag on child c. */
static bool
involved(const struct mchild *c, int a)
{
	for (int i = 0; i < c->nflags; i++)
		if (c->flags[i].agency == a && c->flags[i].open)
			return true;
	return false;
}

/* A consent covers a when it names a, or names a's type and a is
 * involved with the child (issue 16: not every agency of the type). */
static bool
consent_covers(const struct mchild *c, const struct mconsent *m, int a,
    int64_t now)
{
	return !m->withdrawn && m->starts <= now && now < m->expires &&
	    m->whole_picture && (m->by_agency[a] ||
	    (m->by_type[agencies[a].type] && involved(c, a)));
}

static void
model(const struct mchild *c, const struct mpolicy *p, int a, int role,
    bool bg, int64_t now, struct verdict *v)
{
	int type = agencies[a].type;
	const struct mconsent *best = NULL;
	char *w = v->flags;

	memset(v, 0, sizeof(*v));
	if (role != EHX__ROLE__ROLE_PRACTITIONER &&
	    role != EHX__ROLE__ROLE_INFORMATION_OFFICER) {
		v->code = EHX_ERR_NOT_PERMITTED;
		return;
	}
	if (bg)
		snprintf(v->basis, sizeof(v->basis), "break-glass");
	else if (p->basis[type] != EHX__LAWFUL_BASIS__LAWFUL_BASIS_CONSENT)
		snprintf(v->basis, sizeof(v->basis), "policy:%s:%s", p->id,
		    ehx_basis_name(p->basis[type]));
	else {
		for (int j = 0; j < c->nconsents; j++) {
			const struct mconsent *m = &c->consents[j];

			if (!consent_covers(c, m, a, now))
				continue;
			if (best == NULL || m->expires > best->expires ||
			    (m->expires == best->expires &&
			    strcmp(m->id, best->id) < 0))
				best = m;
		}
		if (best == NULL) {
			v->code = EHX_ERR_NO_CONSENT;
			return;
		}
		snprintf(v->basis, sizeof(v->basis), "consent:%s", best->id);
		snprintf(v->consent, sizeof(v->consent), "%s", best->id);
	}
	/* Flags in the store's order: by agency id, then ref. */
	for (int ai = 0; ai < NAGENCIES; ai++) {
		int order[MAX_FLAGS], n = 0;

		/* agency ids sorted: health, housing, la, police, school, vol */
		static const int sorted[NAGENCIES] = { 1, 3, 4, 0, 2, 5 };
		int ag = sorted[ai];

		for (int j = 0; j < c->nflags; j++)
			if (c->flags[j].agency == ag)
				order[n++] = j;
		/* refs "r0".."r15" sort as strings; the last publish of a
		 * ref wins (refs are unique per child here). */
		for (int x = 0; x < n; x++)
			for (int y = x + 1; y < n; y++)
				if (strcmp(c->flags[order[y]].ref,
				    c->flags[order[x]].ref) < 0) {
					int t = order[x];

					order[x] = order[y];
					order[y] = t;
				}
		for (int x = 0; x < n; x++) {
			const struct mflag *f = &c->flags[order[x]];
			bool own = ag == a;
			bool lv = own || p->level[type][f->category];
			bool ct = own || p->contact[type][f->category];
			bool nt = own || p->note[type][f->category];

			if (!own && !(p->present[type] &&
			    p->see[type][f->category]))
				continue;
			if (f->open && lv && f->level > v->highest)
				v->highest = f->level;
			w += sprintf(w, "%s/%s:%d:%u:%s:%s:%d:%s;",
			    agencies[ag].id, f->ref, f->category,
			    lv ? f->level : 0, ct ? f->contact : "-",
			    nt ? f->note : "", ct && f->lead, f->open ? "o" : "c");
		}
	}
}

/* The broker's answer in the same canonical form. */
static void
observed(const Ehx__Body *r, struct verdict *v)
{
	char *w = v->flags;

	memset(v, 0, sizeof(*v));
	if (r->payload_case == EHX__BODY__PAYLOAD_ERROR) {
		v->code = ehx_err_from_wire(r->error->code);
		return;
	}
	assert_int_equal(r->payload_case, EHX__BODY__PAYLOAD_PICTURE);
	assert_false(r->picture->truncated);
	snprintf(v->consent, sizeof(v->consent), "%s", r->picture->consent_id);
	v->highest = r->picture->highest_open_level;
	for (size_t i = 0; i < r->picture->n_involvements; i++) {
		const Ehx__AgencyInvolvement *inv = r->picture->involvements[i];

		for (size_t j = 0; j < inv->n_flags; j++) {
			const Ehx__FlagView *f = inv->flags[j];

			w += sprintf(w, "%s/%s:%d:%u:%s:%s:%d:%s;", inv->agency,
			    f->ref, f->category, f->level, f->practitioner ?
			    f->practitioner->contact : "-", f->note,
			    f->practitioner != NULL && f->lead,
			    f->status == EHX__FLAG_STATUS__FLAG_STATUS_OPEN ?
			    "o" : "c");
		}
	}
}

static void
test_model_agrees(void **state)
{
	const char *env = getenv("EHX_MODEL_CASES");
	long cases = env != NULL ? atol(env) : 100000;
	long allowed = 0, denied = 0, bgs = 0;
	static const char reason[] = "child disclosed harm today, urgent check";

	(void)state;
	assert_true(cases > 0);
	for (int i = 0; i < NPOLICIES; i++)
		make_policy(i);
	make_children();
	for (long n = 0; n < cases; n++) {
		struct mchild *c = &children[rnd(NCHILDREN)];
		int pi = (int)rnd(NPOLICIES), a = (int)rnd(NAGENCIES);
		/* Mostly the roles that may ask, but every role. */
		int role = coin(70) ? (coin(50) ? EHX__ROLE__ROLE_PRACTITIONER :
		    EHX__ROLE__ROLE_INFORMATION_OFFICER) : 1 + (int)rnd(5);
		bool bg = coin(25);
		Ehx__Body body, *r;
		Ehx__Person p;
		Ehx__QueryPicture qp = EHX__QUERY_PICTURE__INIT;
		unsigned char id[EHX_MSGID_LEN];
		struct verdict want, got;
		MDB_txn *txn;
		MDB_val k, v;
		Ehx__AuditRecord *rec;
		uint64_t size;

		b.policy = policies[pi].loaded;
		body_base(&body, &p, id, a, role);
		qp.nhs_number = c->nhs;
		qp.break_glass_reason = bg ? (char *)reason : (char *)"";
		body.payload_case = EHX__BODY__PAYLOAD_QUERY_PICTURE;
		body.query_picture = &qp;
		r = ask(a, &body);
		model(c, &policies[pi], a, role, bg, ehx_now_ms(), &want);
		observed(r, &got);
		/* The decision's basis is the audit record's. */
		assert_int_equal(mdb_txn_begin(b.store.env, NULL, MDB_RDONLY,
		    &txn), 0);
		assert_int_equal(store_audit_size(&b.store, txn, &size), 0);
		assert_int_equal(store_audit_get(&b.store, txn, size, &v), 0);
		assert_non_null(rec = ehx__audit_record__unpack(NULL, v.mv_size,
		    v.mv_data));
		snprintf(got.basis, sizeof(got.basis), "%s", rec->basis);
		if (want.code == 0 && (rec->break_glass != bg ||
		    strcmp(rec->consent_id, want.consent) != 0))
			fail_msg("case %ld: audit record says break_glass=%d "
			    "consent=%s", n, rec->break_glass, rec->consent_id);
		ehx__audit_record__free_unpacked(rec, NULL);
		mdb_txn_abort(txn);
		(void)k;
		if (want.code != got.code || (want.code == 0 &&
		    (strcmp(want.basis, got.basis) != 0 ||
		    strcmp(want.consent, got.consent) != 0 ||
		    strcmp(want.flags, got.flags) != 0 ||
		    want.highest != got.highest)))
			fail_msg("case %ld: child %s, policy %s, %s as %s%s:\n"
			    "  model:  %s %s [%s] highest %u\n  %s\n"
			    "  broker: %s %s [%s] highest %u\n  %s", n, c->nhs,
			    policies[pi].id, agencies[a].id,
			    ehx_role_name(role), bg ? " (break-glass)" : "",
			    ehx_errname(want.code), want.basis, want.consent,
			    want.highest, want.flags, ehx_errname(got.code),
			    got.basis, got.consent, got.highest, got.flags);
		ehx_body_free(r);
		if (want.code == 0)
			allowed++;
		else
			denied++;
		bgs += bg && want.code == 0;
	}
	printf("test_model: %ld cases, 0 disagreements (%ld answered, %ld "
	    "with break-glass; %ld refused)\n", cases, allowed, bgs, denied);
	/* The cases must have exercised every branch. */
	assert_true(allowed > cases / 10 && denied > cases / 10 && bgs > 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_model_agrees),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
