/*
 * merkle.c — see merkle.h. Every algorithm is RFC 9162's, written for
 * sizes up to 2^64 - 1 without overflow; recursion depth is at most 64
 * (each step at least halves the range) and nothing is allocated.
 */
#include <stdbool.h>
#include <string.h>

#include <openssl/evp.h>

#include "ehx/err.h"
#include "ehx/merkle.h"

static void
hash2(unsigned char prefix, const void *a, size_t alen, const void *b,
    size_t blen, unsigned char out[EHX_HASH_LEN])
{
	unsigned char tmp[EHX_HASH_LEN];
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned int n = 0;

	/* Failure here means the library cannot hash at all: make the
	 * result one no proof can match rather than leave it unset. */
	memset(tmp, 0, sizeof(tmp));
	if (c != NULL && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 &&
	    EVP_DigestUpdate(c, &prefix, 1) == 1 &&
	    (alen == 0 || EVP_DigestUpdate(c, a, alen) == 1) &&
	    (blen == 0 || EVP_DigestUpdate(c, b, blen) == 1))
		EVP_DigestFinal_ex(c, tmp, &n);
	EVP_MD_CTX_free(c);
	memcpy(out, tmp, EHX_HASH_LEN);
}

void
ehx_merkle_leaf_hash(const void *data, size_t len,
    unsigned char out[EHX_HASH_LEN])
{
	hash2(0x00, data, len, NULL, 0, out);
}

void
ehx_merkle_node_hash(const unsigned char left[EHX_HASH_LEN],
    const unsigned char right[EHX_HASH_LEN], unsigned char out[EHX_HASH_LEN])
{
	hash2(0x01, left, EHX_HASH_LEN, right, EHX_HASH_LEN, out);
}

static void
empty_hash(unsigned char out[EHX_HASH_LEN])
{
	unsigned int n = 0;

	EVP_Digest("", 0, out, &n, EVP_sha256(), NULL);
}

/* The largest power of two smaller than n (n >= 2). */
static uint64_t
split_point(uint64_t n)
{
	uint64_t k = 1;

	while (k < n - k)
		k <<= 1;
	return k;
}

static bool
is_pow2(uint64_t n)
{
	return n != 0 && (n & (n - 1)) == 0;
}

static unsigned
log2_exact(uint64_t n)
{
	unsigned l = 0;

	while (n > 1) {
		n >>= 1;
		l++;
	}
	return l;
}

/* MTH of leaves [a, b), from stored complete subtrees. */
static int
mth(ehx_merkle_get_fn get, void *ctx, uint64_t a, uint64_t b,
    unsigned char out[EHX_HASH_LEN])
{
	unsigned char l[EHX_HASH_LEN], r[EHX_HASH_LEN];
	uint64_t n = b - a, k;
	int rc;

	if (n == 0) {
		empty_hash(out);
		return 0;
	}
	if (is_pow2(n) && a % n == 0)
		return get(ctx, log2_exact(n), a >> log2_exact(n), out);
	if (n == 1)
		return get(ctx, 0, a, out);
	k = split_point(n);
	if ((rc = mth(get, ctx, a, a + k, l)) != 0 ||
	    (rc = mth(get, ctx, a + k, b, r)) != 0)
		return rc;
	ehx_merkle_node_hash(l, r, out);
	return 0;
}

int
ehx_merkle_append(ehx_merkle_get_fn get, ehx_merkle_put_fn put, void *ctx,
    uint64_t index, const unsigned char leaf[EHX_HASH_LEN])
{
	unsigned char h[EHX_HASH_LEN], left[EHX_HASH_LEN];
	unsigned level = 0;
	int rc;

	if (index == UINT64_MAX)
		return EHX_ERR_INVALID_FIELD;
	memcpy(h, leaf, EHX_HASH_LEN);
	if ((rc = put(ctx, 0, index, h)) != 0)
		return rc;
	/* Each 1 bit at the bottom of index is a completed left sibling. */
	while (index & 1) {
		if ((rc = get(ctx, level, index - 1, left)) != 0)
			return rc;
		ehx_merkle_node_hash(left, h, h);
		index >>= 1;
		level++;
		if ((rc = put(ctx, level, index, h)) != 0)
			return rc;
	}
	return 0;
}

int
ehx_merkle_root(ehx_merkle_get_fn get, void *ctx, uint64_t size,
    unsigned char out[EHX_HASH_LEN])
{
	return mth(get, ctx, 0, size, out);
}

struct proof {
	unsigned char (*path)[EHX_HASH_LEN];
	size_t max, n;
};

static int
push(struct proof *p, ehx_merkle_get_fn get, void *ctx, uint64_t a,
    uint64_t b)
{
	if (p->n == p->max)
		return EHX_ERR_INVALID_FIELD;
	return mth(get, ctx, a, b, p->path[p->n++]);
}

/* PATH(m, D[a:b]) */
static int
path_of(struct proof *p, ehx_merkle_get_fn get, void *ctx, uint64_t m,
    uint64_t a, uint64_t b)
{
	uint64_t n = b - a, k;
	int rc;

	if (n <= 1)
		return 0;
	k = split_point(n);
	if (m < k) {
		if ((rc = path_of(p, get, ctx, m, a, a + k)) != 0)
			return rc;
		return push(p, get, ctx, a + k, b);
	}
	if ((rc = path_of(p, get, ctx, m - k, a + k, b)) != 0)
		return rc;
	return push(p, get, ctx, a, a + k);
}

int
ehx_merkle_inclusion_proof(ehx_merkle_get_fn get, void *ctx, uint64_t index,
    uint64_t size, unsigned char (*path)[EHX_HASH_LEN], size_t max,
    size_t *n)
{
	struct proof p = { path, max, 0 };
	int rc;

	*n = 0;
	if (index >= size)
		return EHX_ERR_INVALID_FIELD;
	if ((rc = path_of(&p, get, ctx, index, 0, size)) != 0)
		return rc;
	*n = p.n;
	return 0;
}

/* SUBPROOF(m, D[a:b], whole) */
static int
subproof(struct proof *p, ehx_merkle_get_fn get, void *ctx, uint64_t m,
    uint64_t a, uint64_t b, bool whole)
{
	uint64_t n = b - a, k;
	int rc;

	if (m == n)
		return whole ? 0 : push(p, get, ctx, a, b);
	k = split_point(n);
	if (m <= k) {
		if ((rc = subproof(p, get, ctx, m, a, a + k, whole)) != 0)
			return rc;
		return push(p, get, ctx, a + k, b);
	}
	if ((rc = subproof(p, get, ctx, m - k, a + k, b, false)) != 0)
		return rc;
	return push(p, get, ctx, a, a + k);
}

int
ehx_merkle_consistency_proof(ehx_merkle_get_fn get, void *ctx,
    uint64_t old_size, uint64_t new_size, unsigned char (*path)[EHX_HASH_LEN],
    size_t max, size_t *n)
{
	struct proof p = { path, max, 0 };
	int rc;

	*n = 0;
	if (old_size == 0 || old_size > new_size)
		return EHX_ERR_INVALID_FIELD;
	if ((rc = subproof(&p, get, ctx, old_size, 0, new_size, true)) != 0)
		return rc;
	*n = p.n;
	return 0;
}

int
ehx_merkle_verify_inclusion(const unsigned char leaf[EHX_HASH_LEN],
    uint64_t index, uint64_t size, const unsigned char (*path)[EHX_HASH_LEN],
    size_t n, const unsigned char root[EHX_HASH_LEN])
{
	unsigned char r[EHX_HASH_LEN];
	uint64_t fn = index, sn;

	if (index >= size || n > EHX_MERKLE_MAX_PROOF)
		return EHX_ERR_INVALID_FIELD;
	sn = size - 1;
	memcpy(r, leaf, EHX_HASH_LEN);
	for (size_t i = 0; i < n; i++) {
		if (sn == 0)
			return EHX_ERR_MALFORMED;
		if ((fn & 1) || fn == sn) {
			ehx_merkle_node_hash(path[i], r, r);
			if (!(fn & 1))
				while (!(fn & 1) && fn != 0) {
					fn >>= 1;
					sn >>= 1;
				}
		} else
			ehx_merkle_node_hash(r, path[i], r);
		fn >>= 1;
		sn >>= 1;
	}
	if (sn != 0 || memcmp(r, root, EHX_HASH_LEN) != 0)
		return EHX_ERR_MALFORMED;
	return 0;
}

int
ehx_merkle_verify_consistency(uint64_t old_size, uint64_t new_size,
    const unsigned char old_root[EHX_HASH_LEN],
    const unsigned char new_root[EHX_HASH_LEN],
    const unsigned char (*path)[EHX_HASH_LEN], size_t n)
{
	unsigned char fr[EHX_HASH_LEN], sr[EHX_HASH_LEN];
	uint64_t fn, sn;
	size_t i = 0;

	if (old_size == 0 || old_size > new_size || n > EHX_MERKLE_MAX_PROOF)
		return EHX_ERR_INVALID_FIELD;
	if (old_size == new_size)
		return n == 0 && memcmp(old_root, new_root, EHX_HASH_LEN) == 0 ?
		    0 : EHX_ERR_MALFORMED;
	if (n == 0)
		return EHX_ERR_MALFORMED;
	/* An old tree of 2^k leaves is itself a node of the new tree: its
	 * root starts the path. */
	if (is_pow2(old_size)) {
		memcpy(fr, old_root, EHX_HASH_LEN);
	} else
		memcpy(fr, path[i++], EHX_HASH_LEN);
	memcpy(sr, fr, EHX_HASH_LEN);
	fn = old_size - 1;
	sn = new_size - 1;
	while (fn & 1) {
		fn >>= 1;
		sn >>= 1;
	}
	for (; i < n; i++) {
		if (sn == 0)
			return EHX_ERR_MALFORMED;
		if ((fn & 1) || fn == sn) {
			ehx_merkle_node_hash(path[i], fr, fr);
			ehx_merkle_node_hash(path[i], sr, sr);
			if (!(fn & 1))
				while (!(fn & 1) && fn != 0) {
					fn >>= 1;
					sn >>= 1;
				}
		} else
			ehx_merkle_node_hash(sr, path[i], sr);
		fn >>= 1;
		sn >>= 1;
	}
	if (sn != 0 || memcmp(fr, old_root, EHX_HASH_LEN) != 0 ||
	    memcmp(sr, new_root, EHX_HASH_LEN) != 0)
		return EHX_ERR_MALFORMED;
	return 0;
}
