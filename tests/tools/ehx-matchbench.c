/*
 * ehx-matchbench — how well, and how fast, the broker's matching links a
 * synthetic city's children (tests/bench/population.py) from several
 * agencies' extracts, through the broker's own code (broker/identity.c)
 * in a real LMDB store.
 *
 *   ehx-matchbench STOREDIR EXTRACT.jsonl...
 *
 * Each line is a ChildIdentity as JSON (given_name, family_name,
 * other_names, date_of_birth, sex, postcode, uprn, nhs_number, upn,
 * local_id) with "truth", the child it is of, and "twin", the child's
 * twin, which the broker never sees; the extract's file name (up to the
 * first '.') is the sending agency. Prints one JSON object:
 *
 *   records, children          what went in
 *   auto_precision, auto_recall   of the pairs of records the matching
 *                                 put in one child, how many are one
 *                                 child; of those that are, how many it
 *                                 put together
 *   review_share               records sent to review
 *   reviewed_recall, reviewed_precision  after a person decides every
 *                                 review rightly
 *   twin_false_links           pairs of twins put in one child
 *   per_second, hmac_per_second, tokens_per_record, hash_ceiling,
 *   ratio                      records matched a second; the machine's
 *                              HMAC-SHA256 a second; so the most records
 *                              a second if making tokens were all there
 *                              was; and the share of that reached
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>
#include <lmdb.h>
#include <sodium.h>

#include "ehx/crypto.h"
#include "ehx/err.h"
#include "ehx/identity.h"
#include "ehx/match.h"
#include "ehx/util.h"
#include "../../broker/identity.h"
#include "../../broker/store.h"

#define BATCH 500

struct rec {
	double score;                /* its first candidate's, for review */
	unsigned char node[32];
	unsigned char child[32];     /* at the end */
	int truth, twin;
	unsigned n_review;
	unsigned char review[IDENTITY_MAX_REVIEW][32];
};

static double
seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char *
str(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) &&
	    json_object_is_type(v, json_type_string) ?
	    json_object_get_string(v) : "";
}

static int
num(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_int(v) :
	    -1;
}

/* The machine's HMAC-SHA256 a second over token-sized inputs. */
static double
hmac_ceiling(const struct ehx_pseudokey *k)
{
	unsigned char in[40] = "EHX-MATCH-V1", out[32];
	double t0 = seconds(), t;
	long n = 0;

	do {
		for (int i = 0; i < 1000; i++) {
			in[20] = (unsigned char)i;
			ehx_keyed_hash(k, in, sizeof(in), out);
		}
		n += 1000;
	} while ((t = seconds() - t0) < 1.0);
	return n / t;
}

/* ---- the children the matching made, and a person's review ---------- */

static int *parent;

static int
find(int x)
{
	while (parent[x] != x)
		x = parent[x] = parent[parent[x]];
	return x;
}

static int
cmp_child(const void *a, const void *b)
{
	return memcmp(((const struct rec *)a)->child,
	    ((const struct rec *)b)->child, 32);
}

struct pair_counts {
	double same_cluster, true_positive, twins;
};

/* Pairs within clusters (cluster[i] per record), against the truth. */
static struct pair_counts
count_pairs(const struct rec *r, const int *cluster, size_t n)
{
	struct pair_counts pc = { 0, 0, 0 };
	size_t *idx = malloc(n * sizeof(*idx));

	for (size_t i = 0; i < n; i++)
		idx[i] = i;
	/* group by cluster, then truth: an insertion-free counting sort */
	{
		size_t *head = malloc(n * sizeof(*head)), *next = malloc(n *
		    sizeof(*next));

		for (size_t i = 0; i < n; i++)
			head[i] = (size_t)-1;
		for (size_t i = 0; i < n; i++) {
			next[i] = head[cluster[i]];
			head[cluster[i]] = i;
		}
		for (size_t c = 0; c < n; c++) {
			size_t m = 0;

			for (size_t i = head[c]; i != (size_t)-1; i = next[i])
				idx[m++] = i;
			if (m < 2)
				continue;
			pc.same_cluster += (double)m * (m - 1) / 2;
			for (size_t a = 0; a < m; a++)
				for (size_t b = a + 1; b < m; b++) {
					const struct rec *x = &r[idx[a]],
					    *y = &r[idx[b]];

					if (x->truth == y->truth)
						pc.true_positive++;
					else if (x->twin == y->truth)
						pc.twins++;
				}
		}
		free(head);
		free(next);
	}
	free(idx);
	return pc;
}

static double
true_pairs(const struct rec *r, size_t n, int children)
{
	double t = 0;
	int *per = calloc((size_t)children + 1, sizeof(*per));

	for (size_t i = 0; i < n; i++)
		per[r[i].truth]++;
	for (int c = 0; c <= children; c++)
		t += (double)per[c] * (per[c] - 1) / 2;
	free(per);
	return t;
}

int
main(int argc, char **argv)
{
	static const unsigned char pk[32] = { 0x5e }, mk[32] = { 0xa7 };
	struct store st;
	struct ehx_pseudokey *pkey = NULL, *mkey = NULL;
	struct identity_ctx ctx;
	struct rec *r = NULL;
	size_t n = 0, cap = 0, reviewed = 0, invalid = 0, compared = 0;
	size_t skipped = 0;
	double tokens = 0, t0, elapsed, ceiling;
	int children = 0, *cluster, *majority;
	MDB_txn *txn = NULL;
	char err[512], why[256], line[8192];

	if (argc < 3) {
		fprintf(stderr, "usage: ehx-matchbench STOREDIR EXTRACT.jsonl...\n");
		return 2;
	}
	if (sodium_init() < 0 || ehx_pseudokey_raw(pk, &pkey) != 0 ||
	    ehx_pseudokey_raw(mk, &mkey) != 0 ||
	    store_open(&st, argv[1], (size_t)8 << 30, false, err,
	    sizeof(err)) != 0) {
		fprintf(stderr, "ehx-matchbench: %s\n", err);
		return 1;
	}
	ctx = (struct identity_ctx){ &st, pkey, mkey,
	    { EHX_MATCH_LINK_DEFAULT, EHX_MATCH_REVIEW_DEFAULT } };
	if (getenv("MATCHBENCH_LINK") != NULL)
		ctx.th.link = atof(getenv("MATCHBENCH_LINK"));
	if (getenv("MATCHBENCH_REVIEW") != NULL)
		ctx.th.review = atof(getenv("MATCHBENCH_REVIEW"));
	ceiling = hmac_ceiling(mkey);
	t0 = seconds();
	for (int f = 2; f < argc; f++) {
		char agency[64], *dot;
		const char *base = strrchr(argv[f], '/');
		FILE *in = fopen(argv[f], "r");

		if (in == NULL) {
			fprintf(stderr, "%s: %s\n", argv[f], strerror(errno));
			return 1;
		}
		snprintf(agency, sizeof(agency), "%s", base ? base + 1 : argv[f]);
		if ((dot = strchr(agency, '.')) != NULL)
			*dot = '\0';
		while (fgets(line, sizeof(line), in) != NULL) {
			json_object *o = json_tokener_parse(line), *on;
			Ehx__ChildIdentity id;
			struct identity_result res;
			char *others[EHX_MAX_OTHER_NAMES];
			const char *sex;
			int rc;

			if (o == NULL)
				continue;
			ehx__child_identity__init(&id);
			id.nhs_number = (char *)str(o, "nhs_number");
			id.upn = (char *)str(o, "upn");
			id.local_id = (char *)str(o, "local_id");
			id.given_name = (char *)str(o, "given_name");
			id.family_name = (char *)str(o, "family_name");
			id.date_of_birth = (char *)str(o, "date_of_birth");
			id.postcode = (char *)str(o, "postcode");
			id.uprn = (char *)str(o, "uprn");
			sex = str(o, "sex");
			id.sex = strcmp(sex, "female") == 0 ? EHX__SEX__SEX_FEMALE :
			    strcmp(sex, "male") == 0 ? EHX__SEX__SEX_MALE :
			    EHX__SEX__SEX_UNSPECIFIED;
			if (json_object_object_get_ex(o, "other_names", &on))
				for (size_t i = 0; i < json_object_array_length(on) &&
				    i < EHX_MAX_OTHER_NAMES; i++)
					others[id.n_other_names++] = (char *)
					    json_object_get_string(
					    json_object_array_get_idx(on, i));
			id.other_names = others;
			if (ehx_validate_identity(&id, ehx_now_ms(), why,
			    sizeof(why)) != 0) {
				invalid++;
				json_object_put(o);
				continue;
			}
			if (n == cap) {
				cap = cap ? cap * 2 : 65536;
				r = realloc(r, cap * sizeof(*r));
			}
			if (txn == NULL && mdb_txn_begin(st.env, NULL, 0,
			    &txn) != 0)
				return 1;
			if ((rc = identity_resolve(&ctx, txn, agency, &id,
			    ehx_now_ms(), &res)) != 0) {
				fprintf(stderr, "resolve: %s\n", ehx_strerror(rc));
				return 1;
			}
			tokens += res.tokens;
			compared += res.compared;
			skipped += res.skipped_blocks;
			memcpy(r[n].node, res.node, 32);
			r[n].truth = num(o, "truth");
			r[n].twin = num(o, "twin");
			r[n].n_review = (unsigned)res.n_review;
			r[n].score = res.n_review > 0 ?
			    res.review[0].result.score : 0;
			for (size_t k = 0; k < res.n_review; k++)
				memcpy(r[n].review[k], res.review[k].child, 32);
			if (r[n].truth > children)
				children = r[n].truth;
			reviewed += res.n_review > 0;
			n++;
			json_object_put(o);
			if (n % BATCH == 0) {
				if (mdb_txn_commit(txn) != 0)
					return 1;
				txn = NULL;
			}
		}
		fclose(in);
	}
	if (txn != NULL && mdb_txn_commit(txn) != 0)
		return 1;
	elapsed = seconds() - t0;
	/* where each record ended */
	if (mdb_txn_begin(st.env, NULL, MDB_RDONLY, &txn) != 0)
		return 1;
	for (size_t i = 0; i < n; i++)
		if (identity_child_of(&st, txn, r[i].node, r[i].child) != 0)
			return 1;
	/* a candidate child's key now: the child of its key */
	for (size_t i = 0; i < n; i++)
		for (unsigned k = 0; k < r[i].n_review; k++)
			if (identity_child_of(&st, txn, r[i].review[k],
			    r[i].review[k]) != 0)
				return 1;
	mdb_txn_abort(txn);
	{
		struct rec *sorted = malloc(n * sizeof(*sorted));
		struct pair_counts autop, rev;
		double tp_all = true_pairs(r, n, children);
		int next = 0;

		/* number the children: sort a copy by child key */
		memcpy(sorted, r, n * sizeof(*r));
		for (size_t i = 0; i < n; i++)
			sorted[i].twin = (int)i;        /* its index in r */
		qsort(sorted, n, sizeof(*sorted), cmp_child);
		cluster = malloc(n * sizeof(*cluster));
		majority = malloc(n * sizeof(*majority));
		parent = malloc(n * sizeof(*parent));
		for (size_t i = 0; i < n; i++) {
			if (i > 0 && memcmp(sorted[i].child, sorted[i - 1].child,
			    32) != 0)
				next++;
			cluster[sorted[i].twin] = next;
		}
		for (int c = 0; c <= next; c++) {
			parent[c] = c;
			majority[c] = -1;
		}
		for (size_t i = 0; i < n; i++)
			if (majority[cluster[i]] < 0)
				majority[cluster[i]] = r[i].truth;
		autop = count_pairs(r, cluster, n);
		/* a person decides each review rightly: link when the
		 * candidate child is the record's own; the scores of the
		 * first candidates, right and wrong, by whole bits */
		if (getenv("MATCHBENCH_SCORES") != NULL)
			for (size_t i = 0; i < n; i++) {
				struct rec key;
				struct rec *hit;

				if (r[i].n_review == 0)
					continue;
				memcpy(key.child, r[i].review[0], 32);
				hit = bsearch(&key, sorted, n, sizeof(*sorted),
				    cmp_child);
				fprintf(stderr, "score %d %s\n", (int)r[i].score,
				    hit != NULL && majority[cluster[hit->twin]] ==
				    r[i].truth ? "right" : "wrong");
			}
		for (size_t i = 0; i < n; i++)
			for (unsigned k = 0; k < r[i].n_review; k++) {
				struct rec key;
				struct rec *hit;

				memcpy(key.child, r[i].review[k], 32);
				hit = bsearch(&key, sorted, n, sizeof(*sorted),
				    cmp_child);
				if (hit == NULL)
					continue;
				if (majority[cluster[hit->twin]] == r[i].truth)
					parent[find(cluster[i])] =
					    find(cluster[hit->twin]);
			}
		for (size_t i = 0; i < n; i++)
			cluster[i] = find(cluster[i]);
		rev = count_pairs(r, cluster, n);
		printf("{\"records\":%zu,\"invalid\":%zu,\"children\":%d,"
		    "\"auto_precision\":%.6f,\"auto_recall\":%.6f,"
		    "\"review_share\":%.6f,\"reviewed_precision\":%.6f,"
		    "\"reviewed_recall\":%.6f,\"twin_false_links\":%.0f,"
		    "\"false_pairs\":%.0f,\"seconds\":%.3f,"
		    "\"per_second\":%.1f,\"hmac_per_second\":%.0f,"
		    "\"tokens_per_record\":%.2f,\"hash_ceiling\":%.1f,"
		    "\"ratio\":%.4f,\"compared_per_record\":%.1f,"
		    "\"common_blocks_per_record\":%.2f}\n", n, invalid, children + 1,
		    autop.same_cluster > 0 ? autop.true_positive /
		    autop.same_cluster : 1, tp_all > 0 ?
		    autop.true_positive / tp_all : 1,
		    n > 0 ? (double)reviewed / n : 0,
		    rev.same_cluster > 0 ? rev.true_positive / rev.same_cluster :
		    1, tp_all > 0 ? rev.true_positive / tp_all : 1,
		    autop.twins, autop.same_cluster - autop.true_positive,
		    elapsed, n / elapsed, ceiling, tokens / n,
		    ceiling / (tokens / n), (n / elapsed) / (ceiling /
		    (tokens / n)), (double)compared / n, (double)skipped / n);
		free(sorted);
	}
	free(cluster);
	free(majority);
	free(parent);
	free(r);
	store_close(&st);
	ehx_pseudokey_free(pkey);
	ehx_pseudokey_free(mkey);
	return 0;
}
