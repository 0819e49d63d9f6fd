/*
 * identity.c — which child an identity names (identity.h).
 *
 *   idnode    node (32)                      → IdentityNode: whose record,
 *                                               its child (cluster), its
 *                                               tokens, the identity sealed
 *   idindex   token or key (16) ‖ kind ‖ node → (empty):
 *               'L'  the sender's own id for the child (or, when it gave
 *                    none, its NHS number, UPN or demographics): its node
 *               'N'  an NHS number's token: the nodes that carry it
 *               'U'  a UPN's token: the nodes that carry it
 *               'B'  a blocking key (lib/match.c): the nodes under it
 *   idmember  child (32) ‖ node (32)         → (empty): a child's nodes
 *
 * A child known by an NHS number has the pseudonym of that number as its
 * key (as before identities existed), and that pseudonym is also the
 * number's own node, recorded once another agency's node joins it. A
 * child known without one has its first node's random id as its key.
 */
#include <stdlib.h>
#include <string.h>

#include "ehx/err.h"
#include "ehx/log.h"
#include "ehx/nhs.h"
#include "ehx/util.h"
#include "identity.h"

#define ID_LEN EHX_PSEUDONYM_LEN
#define INDEX_KEY (EHX_TOKEN_LEN + 1 + ID_LEN)
/* distinct clusters one identity is scored against */
#define MAX_CLUSTERS 128

/* What one resolution works with: too big for the stack. */
struct work {
	struct ehx_tokens t;            /* the identity's */
	struct ehx_tokens m;            /* a stored node's */
	unsigned char blocks[EHX_MAX_BLOCKS][EHX_TOKEN_LEN];
	unsigned char nodes[EHX_MAX_BLOCKS * 8][ID_LEN];
	size_t n_nodes;
	struct identity_candidate cl[MAX_CLUSTERS];
	size_t n_cl;
	unsigned char members[IDENTITY_MAX_MEMBERS][ID_LEN];
};

static int
mdb(int rc)
{
	return rc == 0 ? 0 : store_err(rc);
}

/* ---- the stored node ---------------------------------------------------- */

static int
node_get(struct store *s, MDB_txn *txn, const unsigned char id[ID_LEN],
    Ehx__IdentityNode **out)
{
	MDB_val k = { ID_LEN, (void *)id }, v;
	int rc;

	*out = NULL;
	if ((rc = mdb_get(txn, s->idnode, &k, &v)) == MDB_NOTFOUND)
		return EHX_ERR_NOT_FOUND;
	if (rc != 0)
		return store_err(rc);
	return store_read(&ehx__identity_node__descriptor, NULL, &v, out);
}

static void
node_free(Ehx__IdentityNode *n)
{
	if (n != NULL)
		ehx__identity_node__free_unpacked(n, NULL);
}

static int
node_put(struct store *s, MDB_txn *txn, const unsigned char id[ID_LEN],
    const Ehx__IdentityNode *n)
{
	size_t len = ehx__identity_node__get_packed_size(n);
	MDB_val k = { ID_LEN, (void *)id }, v = { len, NULL };
	int rc;

	if ((rc = mdb_put(txn, s->idnode, &k, &v, MDB_RESERVE)) != 0)
		return store_err(rc);
	ehx__identity_node__pack(n, v.mv_data);
	return 0;
}

/*
 * The tokens of a node, as IdentityNode.tokens keeps them: k, k counts, a
 * swapped-date flag, then the tokens. A store written by a later broker
 * with more features is read for the ones this one knows.
 */
#define BLOB_MAX (2 + EHX_F_COUNT + \
    (EHX_F_COUNT * EHX_MAX_FEATURE_TOKENS + 1) * EHX_TOKEN_LEN)

static int
tokens_decode(const uint8_t *p, size_t len, struct ehx_tokens *t)
{
	size_t k, total = 0, at;

	memset(t, 0, sizeof(*t));
	if (len < 2 || len < 2 + (size_t)p[0])
		return EHX_ERR_STORAGE;
	k = p[0];
	for (size_t f = 0; f < k; f++)
		total += p[1 + f];
	total += p[1 + k] != 0;
	if (len != 2 + k + total * EHX_TOKEN_LEN)
		return EHX_ERR_STORAGE;
	at = 2 + k;
	for (size_t f = 0; f < k; f++) {
		size_t n = p[1 + f];

		if (f < EHX_F_COUNT) {
			if (n > EHX_MAX_FEATURE_TOKENS)
				return EHX_ERR_STORAGE;
			memcpy(t->tok[f], p + at, n * EHX_TOKEN_LEN);
			t->n[f] = (uint8_t)n;
		}
		at += n * EHX_TOKEN_LEN;
	}
	if (p[1 + k] != 0) {
		memcpy(t->dob_swapped, p + at, EHX_TOKEN_LEN);
		t->has_dob_swapped = true;
	}
	return 0;
}

/* t as the blob above into out (BLOB_MAX bytes); its length. */
static size_t
tokens_encode(const struct ehx_tokens *t, uint8_t *out)
{
	size_t at = 2 + EHX_F_COUNT;

	out[0] = EHX_F_COUNT;
	for (int f = 0; f < EHX_F_COUNT; f++) {
		out[1 + f] = t->n[f];
		memcpy(out + at, t->tok[f], (size_t)t->n[f] * EHX_TOKEN_LEN);
		at += (size_t)t->n[f] * EHX_TOKEN_LEN;
	}
	out[1 + EHX_F_COUNT] = t->has_dob_swapped;
	if (t->has_dob_swapped) {
		memcpy(out + at, t->dob_swapped, EHX_TOKEN_LEN);
		at += EHX_TOKEN_LEN;
	}
	return at;
}

/* A varint at *p (before end); false if it runs off or is too long. */
static bool
varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	*v = 0;
	for (int shift = 0; shift < 64 && *p < end; shift += 7) {
		uint8_t b = *(*p)++;

		*v |= (uint64_t)(b & 0x7f) << shift;
		if ((b & 0x80) == 0)
			return true;
	}
	return false;
}

/*
 * The cluster and the tokens of a stored IdentityNode, read in place
 * (valid until the transaction ends): what matching reads of every
 * candidate, without unpacking the rest.
 */
static int
node_peek(const MDB_val *v, const uint8_t **cluster, const uint8_t **tok,
    size_t *toklen)
{
	const uint8_t *p = v->mv_data, *end = p + v->mv_size;
	uint64_t tag, len;

	*cluster = NULL;
	*tok = NULL;
	*toklen = 0;
	while (p < end) {
		if (!varint(&p, end, &tag))
			return EHX_ERR_STORAGE;
		switch (tag & 7) {
		case 0:
			if (!varint(&p, end, &len))
				return EHX_ERR_STORAGE;
			break;
		case 2:
			if (!varint(&p, end, &len) || len > (uint64_t)(end - p))
				return EHX_ERR_STORAGE;
			if (tag >> 3 == 1 && len == ID_LEN)
				*cluster = p;
			else if (tag >> 3 == 3) {
				*tok = p;
				*toklen = (size_t)len;
			}
			p += len;
			break;
		default:
			return EHX_ERR_STORAGE;
		}
	}
	return *cluster != NULL ? 0 : EHX_ERR_STORAGE;
}

/* Add src's tokens that dst lacks; true if any was added. */
static bool
tokens_union(struct ehx_tokens *dst, const struct ehx_tokens *src)
{
	bool added = false;

	for (int f = 0; f < EHX_F_COUNT; f++)
		for (size_t i = 0; i < src->n[f]; i++) {
			size_t j;

			for (j = 0; j < dst->n[f]; j++)
				if (memcmp(dst->tok[f][j], src->tok[f][i],
				    EHX_TOKEN_LEN) == 0)
					break;
			if (j < dst->n[f] || dst->n[f] == EHX_MAX_FEATURE_TOKENS)
				continue;
			memcpy(dst->tok[f][dst->n[f]++], src->tok[f][i],
			    EHX_TOKEN_LEN);
			added = true;
		}
	if (!dst->has_dob_swapped && src->has_dob_swapped) {
		memcpy(dst->dob_swapped, src->dob_swapped, EHX_TOKEN_LEN);
		dst->has_dob_swapped = true;
		added = true;
	}
	return added;
}

/* Write node id with cluster, agency, tokens t and the sealed identity. */
static int
node_write(const struct identity_ctx *c, MDB_txn *txn,
    const unsigned char id[ID_LEN], const unsigned char cluster[ID_LEN],
    const char *agency, const struct ehx_tokens *t,
    const Ehx__ChildIdentity *ident, int64_t created, int64_t now)
{
	Ehx__IdentityNode n;
	uint8_t blob[BLOB_MAX];
	unsigned char *plain = NULL, *sealed = NULL;
	size_t plen = 0, slen = 0;
	int r = 0;

	ehx__identity_node__init(&n);
	n.cluster.data = (uint8_t *)cluster;
	n.cluster.len = ID_LEN;
	n.agency = (char *)agency;
	n.tokens.data = blob;
	n.tokens.len = tokens_encode(t, blob);
	n.created_at = created;
	n.updated_at = now;
	if (ident != NULL) {
		plen = ehx__child_identity__get_packed_size(ident);
		if ((plain = malloc(plen + 1)) == NULL)
			return EHX_ERR_NOMEM;
		ehx__child_identity__pack(ident, plain);
		r = ehx_evidence_seal(c->pkey, id, plain, plen, &sealed, &slen);
		ehx_free_secret(plain, plen);  /* and its one spare byte */
		if (r != 0)
			return r;
		n.sealed.data = sealed;
		n.sealed.len = slen;
	}
	r = node_put(c->s, txn, id, &n);
	free(sealed);
	return r;
}

/* Change the cluster of a stored node, keeping the rest. */
static int
node_move(struct store *s, MDB_txn *txn, const unsigned char id[ID_LEN],
    const unsigned char cluster[ID_LEN], int64_t now)
{
	Ehx__IdentityNode *n = NULL;
	uint8_t *old;
	int r;

	if ((r = node_get(s, txn, id, &n)) != 0)
		return r;
	old = n->cluster.data;
	n->cluster.data = (uint8_t *)cluster;
	n->cluster.len = ID_LEN;
	n->updated_at = now;
	r = node_put(s, txn, id, n);
	n->cluster.data = old;
	node_free(n);
	return r;
}

/* ---- the index and the members ------------------------------------------ */

static int
index_put(struct store *s, MDB_txn *txn, const unsigned char key[EHX_TOKEN_LEN],
    char kind, const unsigned char node[ID_LEN])
{
	unsigned char k[INDEX_KEY];
	MDB_val kv = { sizeof(k), k }, v = { 0, (void *)"" };

	memcpy(k, key, EHX_TOKEN_LEN);
	k[EHX_TOKEN_LEN] = (unsigned char)kind;
	memcpy(k + EHX_TOKEN_LEN + 1, node, ID_LEN);
	return mdb(mdb_put(txn, s->idindex, &kv, &v, 0));
}

/*
 * The nodes under (key, kind), at most max, appended to out at *n (not
 * repeating one there). *over is set when there were more than max.
 */
static int
index_scan(struct store *s, MDB_txn *txn, const unsigned char key[EHX_TOKEN_LEN],
    char kind, unsigned char (*out)[ID_LEN], size_t *n, size_t cap,
    size_t max, bool *over)
{
	unsigned char k[EHX_TOKEN_LEN + 1];
	MDB_val kv = { sizeof(k), k }, v;
	MDB_cursor *cur = NULL;
	size_t found = 0;
	int rc;

	*over = false;
	memcpy(k, key, EHX_TOKEN_LEN);
	k[EHX_TOKEN_LEN] = (unsigned char)kind;
	if ((rc = mdb_cursor_open(txn, s->idindex, &cur)) != 0)
		return store_err(rc);
	for (rc = mdb_cursor_get(cur, &kv, &v, MDB_SET_RANGE); rc == 0;
	    rc = mdb_cursor_get(cur, &kv, &v, MDB_NEXT)) {
		const unsigned char *node;
		size_t j;

		if (kv.mv_size != INDEX_KEY ||
		    memcmp(kv.mv_data, k, sizeof(k)) != 0)
			break;
		if (found == max) {
			*over = true;
			break;
		}
		found++;
		node = (const unsigned char *)kv.mv_data + sizeof(k);
		for (j = 0; j < *n; j++)
			if (memcmp(out[j], node, ID_LEN) == 0)
				break;
		if (j == *n && *n < cap)
			memcpy(out[(*n)++], node, ID_LEN);
	}
	mdb_cursor_close(cur);
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : store_err(rc);
}

static int
member_put(struct store *s, MDB_txn *txn, const unsigned char cluster[ID_LEN],
    const unsigned char node[ID_LEN])
{
	unsigned char k[2 * ID_LEN];
	MDB_val kv = { sizeof(k), k }, v = { 0, (void *)"" };

	memcpy(k, cluster, ID_LEN);
	memcpy(k + ID_LEN, node, ID_LEN);
	return mdb(mdb_put(txn, s->idmember, &kv, &v, 0));
}

int
identity_members(struct store *s, MDB_txn *txn,
    const unsigned char child[ID_LEN], unsigned char (*out)[ID_LEN],
    size_t max, size_t *n)
{
	MDB_val kv = { ID_LEN, (void *)child }, v;
	MDB_cursor *cur = NULL;
	int rc;

	*n = 0;
	if ((rc = mdb_cursor_open(txn, s->idmember, &cur)) != 0)
		return store_err(rc);
	for (rc = mdb_cursor_get(cur, &kv, &v, MDB_SET_RANGE); rc == 0;
	    rc = mdb_cursor_get(cur, &kv, &v, MDB_NEXT)) {
		if (kv.mv_size != 2 * ID_LEN ||
		    memcmp(kv.mv_data, child, ID_LEN) != 0 || *n == max)
			break;
		memcpy(out[(*n)++], (const unsigned char *)kv.mv_data + ID_LEN,
		    ID_LEN);
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return store_err(rc);
	if (*n == 0 && max > 0)
		memcpy(out[(*n)++], child, ID_LEN);     /* a child of one */
	return 0;
}

int
identity_child_of(struct store *s, MDB_txn *txn,
    const unsigned char node[ID_LEN], unsigned char child[ID_LEN])
{
	MDB_val k = { ID_LEN, (void *)node }, v;
	const uint8_t *cluster, *tok;
	size_t toklen;
	int rc, r;

	if (!s->identity ||
	    (rc = mdb_get(txn, s->idnode, &k, &v)) == MDB_NOTFOUND) {
		memcpy(child, node, ID_LEN);
		return 0;
	}
	if (rc != 0)
		return store_err(rc);
	if ((r = node_peek(&v, &cluster, &tok, &toklen)) != 0)
		return r;
	memcpy(child, cluster, ID_LEN);
	return 0;
}

/* Is child's key an NHS number's (a pseudonym, not a provisional id)? */
static int
nhs_child(struct store *s, MDB_txn *txn, const unsigned char child[ID_LEN],
    bool *yes)
{
	Ehx__IdentityNode *n = NULL;
	int r;

	*yes = false;
	if ((r = node_get(s, txn, child, &n)) == EHX_ERR_NOT_FOUND) {
		*yes = true;    /* no record: a child only ever named by NHS */
		return 0;
	}
	if (r != 0)
		return r;
	*yes = n->agency == NULL || n->agency[0] == '\0';
	node_free(n);
	return 0;
}

int
identity_merge(struct store *s, MDB_txn *txn, const unsigned char from[ID_LEN],
    const unsigned char into[ID_LEN], int64_t now)
{
	unsigned char k[2 * ID_LEN], node[ID_LEN];
	MDB_val kv, v;
	MDB_cursor *cur = NULL;
	int rc, r = 0;

	if (memcmp(from, into, ID_LEN) == 0)
		return 0;
	if ((rc = mdb_cursor_open(txn, s->idmember, &cur)) != 0)
		return store_err(rc);
	for (;;) {
		kv = (MDB_val){ ID_LEN, (void *)from };
		rc = mdb_cursor_get(cur, &kv, &v, MDB_SET_RANGE);
		if (rc == MDB_NOTFOUND || (rc == 0 && (kv.mv_size != 2 * ID_LEN ||
		    memcmp(kv.mv_data, from, ID_LEN) != 0))) {
			rc = 0;
			break;
		}
		if (rc != 0)
			break;
		memcpy(node, (const unsigned char *)kv.mv_data + ID_LEN, ID_LEN);
		if ((rc = mdb_cursor_del(cur, 0)) != 0)
			break;
		memcpy(k, into, ID_LEN);
		memcpy(k + ID_LEN, node, ID_LEN);
		if ((r = member_put(s, txn, into, node)) != 0 ||
		    (r = node_move(s, txn, node, into, now)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	if (r != 0)
		return r;
	return rc == 0 ? 0 : store_err(rc);
}

/* ---- resolving ----------------------------------------------------------- */

/* The key of agency's node for this identity: its own id for the child,
 * else what the identity holds ("#" cannot be in a local id). */
static int
home_key(const struct identity_ctx *c, const char *agency,
    const Ehx__ChildIdentity *id, const struct ehx_tokens *t,
    unsigned char out[EHX_TOKEN_LEN])
{
	unsigned char buf[EHX_MAX_ID + 8 + 2 * 32 + 2];
	unsigned char h[32];
	size_t n = strlen(agency);
	char hex[65];

	if (id->local_id != NULL && id->local_id[0] != '\0') {
		memcpy(out, t->tok[EHX_F_LOCAL][0], EHX_TOKEN_LEN);
		return 0;
	}
	if (n > EHX_MAX_ID)
		return EHX_ERR_INTERNAL;
	memcpy(buf, agency, n);
	buf[n++] = '\0';
	if (t->n[EHX_F_NHS] > 0) {
		memcpy(buf + n, "#nhs:", 5);
		ehx_hex(hex, t->tok[EHX_F_NHS][0], EHX_TOKEN_LEN);
	} else if (t->n[EHX_F_UPN] > 0) {
		memcpy(buf + n, "#upn:", 5);
		ehx_hex(hex, t->tok[EHX_F_UPN][0], EHX_TOKEN_LEN);
	} else {
		/* demographics alone: the same ones always find one node */
		memcpy(buf + n, "#dem:", 5);
		ehx_sha256(t, sizeof(*t), h);
		ehx_hex(hex, h, 32);
	}
	n += 5;
	memcpy(buf + n, hex, strlen(hex));
	n += strlen(hex);
	return ehx_token(c->mkey, EHX_F_LOCAL, buf, n, out);
}

/* Index a node under its own key, its national ids and its blocks. */
static int
index_node(const struct identity_ctx *c, MDB_txn *txn,
    const unsigned char node[ID_LEN], const struct ehx_tokens *t,
    struct work *w)
{
	size_t nb;
	int r;

	for (size_t i = 0; i < t->n[EHX_F_NHS]; i++)
		if ((r = index_put(c->s, txn, t->tok[EHX_F_NHS][i], 'N',
		    node)) != 0)
			return r;
	for (size_t i = 0; i < t->n[EHX_F_UPN]; i++)
		if ((r = index_put(c->s, txn, t->tok[EHX_F_UPN][i], 'U',
		    node)) != 0)
			return r;
	nb = ehx_match_blocks(t, false, w->blocks, EHX_MAX_BLOCKS);
	for (size_t i = 0; i < nb; i++)
		if ((r = index_put(c->s, txn, w->blocks[i], 'B', node)) != 0)
			return r;
	return 0;
}

/* Compare t with every node of child: the best result, and whether any
 * node's national id disagrees (then never this child). */
static int
score_child(const struct identity_ctx *c, MDB_txn *txn, struct work *w,
    const unsigned char child[ID_LEN], struct identity_candidate *out,
    size_t *compared)
{
	struct ehx_match_result r;
	size_t n = 0;
	int rc;
	bool any = false;

	memcpy(out->child, child, ID_LEN);
	memset(&out->result, 0, sizeof(out->result));
	out->conflict = false;
	if ((rc = identity_members(c->s, txn, child, w->members,
	    IDENTITY_MAX_MEMBERS, &n)) != 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		MDB_val k = { ID_LEN, w->members[i] }, v;
		const uint8_t *cluster, *tok;
		size_t toklen;

		if ((rc = mdb_get(txn, c->s->idnode, &k, &v)) == MDB_NOTFOUND)
			continue;
		if (rc != 0)
			return store_err(rc);
		if ((rc = node_peek(&v, &cluster, &tok, &toklen)) != 0 ||
		    (rc = tokens_decode(tok, toklen, &w->m)) != 0)
			return rc;
		ehx_match_compare(&w->t, &w->m, &r);
		(*compared)++;
		if (r.bars & EHX_BAR_ID)
			out->conflict = true;
		if (!any || r.score > out->result.score) {
			out->result = r;
			any = true;
		}
	}
	return 0;
}

/* Put cand into out's review list (the best IDENTITY_MAX_REVIEW kept). */
static void
add_review(struct identity_result *out, const struct identity_candidate *cand)
{
	size_t i = out->n_review;

	if (i == IDENTITY_MAX_REVIEW) {
		i--;
		if (out->review[i].result.score >= cand->result.score)
			return;
	} else
		out->n_review++;
	while (i > 0 && out->review[i - 1].result.score < cand->result.score) {
		out->review[i] = out->review[i - 1];
		i--;
	}
	out->review[i] = *cand;
}

/* The NHS numbers' and UPNs' tokens of every record of child, into t. */
static int
child_national(struct store *s, MDB_txn *txn, const unsigned char child[ID_LEN],
    struct ehx_tokens *t, struct ehx_tokens *one)
{
	unsigned char (*m)[ID_LEN];
	size_t n = 0;
	int r;

	memset(t, 0, sizeof(*t));
	if ((m = malloc(IDENTITY_MAX_MEMBERS * ID_LEN)) == NULL)
		return EHX_ERR_NOMEM;
	if ((r = identity_members(s, txn, child, m, IDENTITY_MAX_MEMBERS,
	    &n)) != 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		MDB_val k = { ID_LEN, m[i] }, v;
		const uint8_t *cluster, *tok;
		size_t toklen;
		int rc;

		if ((rc = mdb_get(txn, s->idnode, &k, &v)) == MDB_NOTFOUND)
			continue;
		if (rc != 0) {
			r = store_err(rc);
			goto out;
		}
		if ((r = node_peek(&v, &cluster, &tok, &toklen)) != 0 ||
		    (r = tokens_decode(tok, toklen, one)) != 0)
			goto out;
		/* only the national ids */
		for (int f = 0; f < EHX_F_COUNT; f++)
			if (f != EHX_F_NHS && f != EHX_F_UPN)
				one->n[f] = 0;
		one->has_dob_swapped = false;
		(void)tokens_union(t, one);
	}
out:
	free(m);
	return r;
}

/* Both have tokens of f and none in common. */
static bool
differ(const struct ehx_tokens *a, const struct ehx_tokens *b,
    enum ehx_feature f)
{
	if (a->n[f] == 0 || b->n[f] == 0)
		return false;
	for (size_t i = 0; i < a->n[f]; i++)
		for (size_t j = 0; j < b->n[f]; j++)
			if (memcmp(a->tok[f][i], b->tok[f][j],
			    EHX_TOKEN_LEN) == 0)
				return false;
	return true;
}

/*
 * Whether the child of node (out->child) and other may be one: never two
 * children with NHS numbers' keys, nor two whose records carry different
 * NHS numbers, nor different UPNs unless an NHS number is shared. The
 * records of both are looked at, not only the identity that came in.
 */
static int
may_join(const struct identity_ctx *c, MDB_txn *txn,
    const unsigned char ours[ID_LEN], const unsigned char other[ID_LEN],
    bool ours_nhs, bool theirs_nhs, bool *ok)
{
	struct ehx_tokens *a, *b, *one;
	int r;

	*ok = false;
	if (ours_nhs && theirs_nhs)
		return 0;
	if ((a = malloc(3 * sizeof(*a))) == NULL)
		return EHX_ERR_NOMEM;
	b = a + 1;
	one = a + 2;
	if ((r = child_national(c->s, txn, ours, a, one)) == 0 &&
	    (r = child_national(c->s, txn, other, b, one)) == 0)
		*ok = !differ(a, b, EHX_F_NHS) && !(differ(a, b, EHX_F_UPN) &&
		    (a->n[EHX_F_NHS] == 0 || b->n[EHX_F_NHS] == 0 ||
		    differ(a, b, EHX_F_NHS)));
	free(a);
	return r;
}

/* Join the child of node (out->child) and other, when they may be one
 * (may_join; else other goes to review as a conflict, and *joined is
 * false); the survivor keeps an NHS number's key when one has it. */
static int
join(const struct identity_ctx *c, MDB_txn *txn, struct identity_result *out,
    const unsigned char other[ID_LEN], int64_t now, bool *joined)
{
	struct identity_candidate cand;
	bool ours_nhs, theirs_nhs, ok;
	int r;

	*joined = false;
	if (memcmp(out->child, other, ID_LEN) == 0)
		return 0;
	if ((r = nhs_child(c->s, txn, out->child, &ours_nhs)) != 0 ||
	    (r = nhs_child(c->s, txn, other, &theirs_nhs)) != 0 ||
	    (r = may_join(c, txn, out->child, other, ours_nhs, theirs_nhs,
	    &ok)) != 0)
		return r;
	if (!ok) {
		memset(&cand, 0, sizeof(cand));
		memcpy(cand.child, other, ID_LEN);
		cand.conflict = true;
		add_review(out, &cand);
		return 0;
	}
	*joined = true;
	if (ours_nhs && !theirs_nhs) {
		if ((r = identity_merge(c->s, txn, other, out->child, now)) == 0)
			r = store_move_child(c->s, txn, c->pkey, other,
			    out->child);
	} else {
		if ((r = identity_merge(c->s, txn, out->child, other, now)) == 0)
			r = store_move_child(c->s, txn, c->pkey, out->child,
			    other);
		memcpy(out->child, other, ID_LEN);
	}
	return r;
}

/* The record of an NHS number's own node, made the first time another
 * node joins it: its key is the pseudonym, its child the child it is in. */
static int
nhs_node(const struct identity_ctx *c, MDB_txn *txn, const char *nhs,
    const struct ehx_tokens *t, unsigned char node[ID_LEN], int64_t now)
{
	struct ehx_tokens only;
	Ehx__ChildIdentity ident;
	unsigned char child[ID_LEN];
	MDB_val k = { ID_LEN, node }, v;
	int r, rc;

	if ((r = ehx_pseudonym(c->pkey, nhs, node)) != 0)
		return r;
	if ((rc = mdb_get(txn, c->s->idnode, &k, &v)) == 0)
		return 0;
	if (rc != MDB_NOTFOUND)
		return store_err(rc);
	memset(&only, 0, sizeof(only));
	memcpy(only.tok[EHX_F_NHS][0], t->tok[EHX_F_NHS][0], EHX_TOKEN_LEN);
	only.n[EHX_F_NHS] = 1;
	memcpy(child, node, ID_LEN);
	/* the number itself, sealed: told to an agency that named the child
	 * by it when another names the child otherwise */
	ehx__child_identity__init(&ident);
	ident.nhs_number = (char *)nhs;
	if ((r = node_write(c, txn, node, child, "", &only, &ident, now,
	    now)) != 0 ||
	    (r = member_put(c->s, txn, child, node)) != 0 ||
	    (r = index_put(c->s, txn, t->tok[EHX_F_NHS][0], 'N', node)) != 0)
		return r;
	return 0;
}

/*
 * The children t's NHS number and UPN name, other than the node's own:
 * joined to it unless a national id of theirs disagrees with t's (then a
 * candidate for review, marked conflict). *joined tells whether any was.
 */
static int
link_national(const struct identity_ctx *c, MDB_txn *txn, struct work *w,
    const Ehx__ChildIdentity *id, struct identity_result *out, int64_t now,
    bool *joined)
{
	unsigned char targets[IDENTITY_MAX_BLOCK_NODES + 1][ID_LEN];
	unsigned char child[ID_LEN], nhsnode[ID_LEN];
	size_t n = 0;
	bool over, one, nhs_given = id->nhs_number != NULL &&
	    ehx_nhs_valid(id->nhs_number);
	int r;

	*joined = false;
	if (nhs_given) {
		if ((r = nhs_node(c, txn, id->nhs_number, &w->t, nhsnode,
		    now)) != 0)
			return r;
		memcpy(targets[n++], nhsnode, ID_LEN);
	}
	for (size_t i = 0; i < w->t.n[EHX_F_UPN]; i++)
		if ((r = index_scan(c->s, txn, w->t.tok[EHX_F_UPN][i], 'U',
		    targets, &n, IDENTITY_MAX_BLOCK_NODES + 1,
		    IDENTITY_MAX_BLOCK_NODES, &over)) != 0)
			return r;
	for (size_t i = 0; i < n; i++) {
		struct identity_candidate cand;

		if (memcmp(targets[i], out->node, ID_LEN) == 0)
			continue;
		if ((r = identity_child_of(c->s, txn, targets[i], child)) != 0)
			return r;
		if (memcmp(child, out->child, ID_LEN) == 0)
			continue;
		if ((r = score_child(c, txn, w, child, &cand,
		    &out->compared)) != 0)
			return r;
		/* an NHS number joins its child whatever a UPN says (targets[0]
		 * is its node when one was given); a UPN only where no
		 * national id disagrees */
		if (cand.conflict && !(i == 0 && nhs_given)) {
			add_review(out, &cand);
			continue;
		}
		if ((r = join(c, txn, out, child, now, &one)) != 0)
			return r;
		*joined |= one;
	}
	return 0;
}

/* The children whose nodes share a blocking key with t, scored. */
static int
candidates(const struct identity_ctx *c, MDB_txn *txn, struct work *w,
    struct identity_result *out)
{
	unsigned char child[ID_LEN];
	size_t nb;
	bool over;
	int r;

	w->n_nodes = 0;
	w->n_cl = 0;
	nb = ehx_match_blocks(&w->t, true, w->blocks, EHX_MAX_BLOCKS);
	for (size_t i = 0; i < nb; i++) {
		size_t before = w->n_nodes;

		if ((r = index_scan(c->s, txn, w->blocks[i], 'B', w->nodes,
		    &w->n_nodes, sizeof(w->nodes) / sizeof(w->nodes[0]),
		    IDENTITY_MAX_BLOCK_NODES, &over)) != 0)
			return r;
		if (over) {
			/* too common to tell anything: not followed */
			w->n_nodes = before;
			out->skipped_blocks++;
		}
	}
	for (size_t i = 0; i < w->n_nodes; i++) {
		size_t j;

		if (memcmp(w->nodes[i], out->node, ID_LEN) == 0)
			continue;
		if ((r = identity_child_of(c->s, txn, w->nodes[i], child)) != 0)
			return r;
		if (memcmp(child, out->child, ID_LEN) == 0)
			continue;
		for (j = 0; j < w->n_cl; j++)
			if (memcmp(w->cl[j].child, child, ID_LEN) == 0)
				break;
		if (j < w->n_cl || w->n_cl == MAX_CLUSTERS)
			continue;
		if ((r = score_child(c, txn, w, child, &w->cl[w->n_cl],
		    &out->compared)) != 0)
			return r;
		w->n_cl++;
	}
	return 0;
}

/* Link the new node by score: to the one child above the link
 * threshold when no other comes near; else the candidates go to review. */
static int
link_by_score(const struct identity_ctx *c, MDB_txn *txn, struct work *w,
    struct identity_result *out, int64_t now, bool *linked)
{
	const struct identity_candidate *link = NULL;
	size_t links = 0, near = 0, before = out->n_review;
	int r;

	*linked = false;
	if ((r = candidates(c, txn, w, out)) != 0)
		return r;
	for (size_t i = 0; i < w->n_cl; i++) {
		if (w->cl[i].conflict)
			continue;
		switch (ehx_match_decide(&w->cl[i].result, &c->th)) {
		case EHX_MATCH_LINK:
			link = &w->cl[i];
			links++;
			add_review(out, &w->cl[i]);
			break;
		case EHX_MATCH_REVIEW:
			near++;
			add_review(out, &w->cl[i]);
			break;
		case EHX_MATCH_NEW:
			break;
		}
	}
	if (links == 1 && near == 0) {
		unsigned char other[ID_LEN];

		memcpy(other, link->child, ID_LEN);
		out->n_review = before;
		return join(c, txn, out, other, now, linked);
	}
	return 0;
}

int
identity_resolve(const struct identity_ctx *c, MDB_txn *txn,
    const char *agency, const Ehx__ChildIdentity *id, int64_t now,
    struct identity_result *out)
{
	struct work *w;
	unsigned char key[EHX_TOKEN_LEN], found[1][ID_LEN];
	Ehx__IdentityNode *node = NULL;
	size_t n = 0;
	bool over, joined = false, linked = false;
	int r;

	memset(out, 0, sizeof(*out));
	if (!c->s->identity)
		return EHX_ERR_STORAGE;
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return EHX_ERR_NOMEM;
	if ((r = ehx_identity_tokens(c->mkey, agency, id, &w->t)) != 0)
		goto out;
	for (int f = 0; f < EHX_F_COUNT; f++)
		out->tokens += w->t.n[f];
	out->tokens += w->t.has_dob_swapped;
	if ((r = home_key(c, agency, id, &w->t, key)) != 0 ||
	    (r = index_scan(c->s, txn, key, 'L', found, &n, 1, 1,
	    &over)) != 0)
		goto out;
	if (n == 1) {
		/* the agency's record, known: what it adds is kept */
		bool added;

		memcpy(out->node, found[0], ID_LEN);
		if ((r = node_get(c->s, txn, out->node, &node)) != 0)
			goto out;
		if (node->cluster.len != ID_LEN) {
			r = EHX_ERR_STORAGE;
			goto out;
		}
		memcpy(out->child, node->cluster.data, ID_LEN);
		if ((r = tokens_decode(node->tokens.data, node->tokens.len,
		    &w->m)) != 0)
			goto out;
		/* an NHS number is not changed on a record (its child would
		 * have to be split); a new UPN replaces the old one (a
		 * temporary UPN made permanent) */
		if (w->t.n[EHX_F_NHS] > 0 && w->m.n[EHX_F_NHS] > 0 &&
		    memcmp(w->t.tok[EHX_F_NHS][0], w->m.tok[EHX_F_NHS][0],
		    EHX_TOKEN_LEN) != 0) {
			r = EHX_ERR_INVALID_IDENTITY;
			goto out;
		}
		if (w->t.n[EHX_F_UPN] > 0)
			w->m.n[EHX_F_UPN] = 0;
		added = tokens_union(&w->m, &w->t);
		if ((r = node_write(c, txn, out->node, out->child, agency, &w->m,
		    id, node->created_at, now)) != 0)
			goto out;
		out->how = IDENTITY_KNOWN;
		if (added) {
			if ((r = index_node(c, txn, out->node, &w->m, w)) != 0)
				goto out;
			/* an NHS number or UPN now given links the child */
			r = link_national(c, txn, w, id, out, now, &joined);
		}
		goto out;
	}
	if ((r = ehx_random(out->node, ID_LEN)) != 0)
		goto out;
	memcpy(out->child, out->node, ID_LEN);
	if ((r = node_write(c, txn, out->node, out->child, agency, &w->t, id,
	    now, now)) != 0 ||
	    (r = member_put(c->s, txn, out->child, out->node)) != 0 ||
	    (r = index_put(c->s, txn, key, 'L', out->node)) != 0 ||
	    (r = link_national(c, txn, w, id, out, now, &joined)) != 0 ||
	    (r = link_by_score(c, txn, w, out, now, &linked)) != 0)
		goto out;
	out->how = joined || linked ? IDENTITY_LINKED : out->n_review > 0 ?
	    IDENTITY_REVIEW : IDENTITY_NEW;
	/* indexed last: it is not its own candidate */
	r = index_node(c, txn, out->node, &w->t, w);
out:
	node_free(node);
	free(w);
	return r;
}

/* The identity sealed in a node record (heap), or NULL when it has none. */
static int
node_identity(const struct ehx_pseudokey *pkey,
    const unsigned char id[ID_LEN], const Ehx__IdentityNode *n,
    Ehx__ChildIdentity **out)
{
	unsigned char *plain = NULL;
	size_t plen = 0;

	*out = NULL;
	if (n->sealed.len == 0)
		return 0;
	if (ehx_evidence_open(pkey, id, n->sealed.data, n->sealed.len, &plain,
	    &plen) != 0)
		return EHX_ERR_STORAGE;
	*out = ehx__child_identity__unpack(NULL, plen, plain);
	ehx_free_secret(plain, plen);   /* the buffer holds the seal's too */
	return *out != NULL ? 0 : EHX_ERR_STORAGE;
}

int
identity_known_as(struct store *s, MDB_txn *txn,
    const struct ehx_pseudokey *pkey, const unsigned char child[ID_LEN],
    const char *agency, Ehx__ChildIdentity **out, char nhs[11])
{
	unsigned char (*m)[ID_LEN];
	int64_t latest = -1;
	size_t n = 0;
	int r;

	*out = NULL;
	nhs[0] = '\0';
	if (!s->identity)
		return 0;
	if ((m = malloc(IDENTITY_MAX_MEMBERS * ID_LEN)) == NULL)
		return EHX_ERR_NOMEM;
	if ((r = identity_members(s, txn, child, m, IDENTITY_MAX_MEMBERS,
	    &n)) != 0)
		goto out;
	for (size_t i = 0; i < n && r == 0; i++) {
		Ehx__IdentityNode *node = NULL;
		Ehx__ChildIdentity *id = NULL;
		bool nhs_node;

		if ((r = node_get(s, txn, m[i], &node)) == EHX_ERR_NOT_FOUND) {
			r = 0;
			continue;
		}
		if (r != 0)
			break;
		nhs_node = node->agency == NULL || node->agency[0] == '\0';
		if ((nhs_node || strcmp(node->agency, agency) == 0) &&
		    (!nhs_node || nhs[0] == '\0') &&
		    (r = node_identity(pkey, m[i], node, &id)) == 0 &&
		    id != NULL) {
			if (nhs_node) {
				if (ehx_nhs_valid(id->nhs_number))
					memcpy(nhs, id->nhs_number, 11);
			} else if (node->updated_at > latest) {
				if (*out != NULL)
					ehx__child_identity__free_unpacked(*out,
					    NULL);
				*out = id;
				id = NULL;
				latest = node->updated_at;
			}
		}
		if (id != NULL)
			ehx__child_identity__free_unpacked(id, NULL);
		node_free(node);
	}
out:
	free(m);
	if (r != 0 && *out != NULL) {
		ehx__child_identity__free_unpacked(*out, NULL);
		*out = NULL;
	}
	/* an agency with a record of its own is told what it sent, and no
	 * number another agency gave */
	if (*out != NULL)
		nhs[0] = '\0';
	return r;
}

int
identity_own(const struct identity_ctx *c, MDB_txn *txn, const char *agency,
    const Ehx__ChildIdentity *id, unsigned char child[ID_LEN])
{
	struct work *w;
	unsigned char key[EHX_TOKEN_LEN], found[1][ID_LEN], pseud[ID_LEN];
	size_t n = 0;
	bool over;
	int r;

	if (!c->s->identity)
		return EHX_ERR_STORAGE;
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return EHX_ERR_NOMEM;
	if ((r = ehx_identity_tokens(c->mkey, agency, id, &w->t)) != 0 ||
	    (r = home_key(c, agency, id, &w->t, key)) != 0 ||
	    (r = index_scan(c->s, txn, key, 'L', found, &n, 1, 1, &over)) != 0)
		goto out;
	if (n == 1)
		r = identity_child_of(c->s, txn, found[0], child);
	else if (id->nhs_number != NULL && ehx_nhs_valid(id->nhs_number) &&
	    (r = ehx_pseudonym(c->pkey, id->nhs_number, pseud)) == 0)
		/* named by the number alone before: its own knowledge */
		r = identity_child_of(c->s, txn, pseud, child);
	else if (r == 0)
		r = EHX_ERR_NOT_FOUND;
out:
	free(w);
	return r;
}
