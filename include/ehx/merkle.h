/*
 * merkle.h — RFC 9162 (Certificate Transparency 2.0) Merkle trees.
 *
 * leaf hash = SHA-256(0x00 ‖ data), node hash = SHA-256(0x01 ‖ left ‖
 * right), and the empty tree's hash is SHA-256 of nothing. The tree of n
 * leaves splits at the largest power of two smaller than n.
 *
 * Storage stays outside: the hash of every complete, aligned subtree —
 * node (level L, index i) covers leaves [i << L, (i + 1) << L) — is read
 * and written through callbacks. Roots and proofs need only such nodes.
 */
#ifndef EHX_MERKLE_H
#define EHX_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#define EHX_HASH_LEN 32
#define EHX_MERKLE_MAX_PROOF 64   /* hashes in any proof of < 2^64 leaves */

/* Get the hash of the complete subtree at (level, index); 0 or EHX_ERR_*. */
typedef int (*ehx_merkle_get_fn)(void *ctx, unsigned level, uint64_t index,
    unsigned char out[EHX_HASH_LEN]);
/* Store the hash of a newly completed subtree at (level, index). */
typedef int (*ehx_merkle_put_fn)(void *ctx, unsigned level, uint64_t index,
    const unsigned char hash[EHX_HASH_LEN]);

void ehx_merkle_leaf_hash(const void *data, size_t len,
    unsigned char out[EHX_HASH_LEN]);
/* out may be left or right. */
void ehx_merkle_node_hash(const unsigned char left[EHX_HASH_LEN],
    const unsigned char right[EHX_HASH_LEN], unsigned char out[EHX_HASH_LEN]);

/* Append leaf number index (the tree's size before it): puts (0, index)
 * and every parent it completes, reading left siblings with get. */
int ehx_merkle_append(ehx_merkle_get_fn get, ehx_merkle_put_fn put,
    void *ctx, uint64_t index, const unsigned char leaf[EHX_HASH_LEN]);

/* The root of the first size leaves. */
int ehx_merkle_root(ehx_merkle_get_fn get, void *ctx, uint64_t size,
    unsigned char out[EHX_HASH_LEN]);

/* RFC 9162 §2.1.3.1: the inclusion proof of leaf index in the tree of size
 * leaves, into path (at most max hashes), *n the count.
 * EHX_ERR_INVALID_FIELD if index >= size or max is too small. */
int ehx_merkle_inclusion_proof(ehx_merkle_get_fn get, void *ctx,
    uint64_t index, uint64_t size, unsigned char (*path)[EHX_HASH_LEN],
    size_t max, size_t *n);

/* RFC 9162 §2.1.4.1: the consistency proof between the trees of old_size
 * and new_size leaves (0 < old_size <= new_size). */
int ehx_merkle_consistency_proof(ehx_merkle_get_fn get, void *ctx,
    uint64_t old_size, uint64_t new_size,
    unsigned char (*path)[EHX_HASH_LEN], size_t max, size_t *n);

/*
 * RFC 9162 §2.1.3.2 and §2.1.4.2. 0 when the proof holds;
 * EHX_ERR_INVALID_FIELD for impossible arguments (index >= size, old_size
 * of 0 or above new_size, more than EHX_MERKLE_MAX_PROOF hashes);
 * EHX_ERR_MALFORMED when the proof does not hold.
 */
int ehx_merkle_verify_inclusion(const unsigned char leaf[EHX_HASH_LEN],
    uint64_t index, uint64_t size, const unsigned char (*path)[EHX_HASH_LEN],
    size_t n, const unsigned char root[EHX_HASH_LEN]);
int ehx_merkle_verify_consistency(uint64_t old_size, uint64_t new_size,
    const unsigned char old_root[EHX_HASH_LEN],
    const unsigned char new_root[EHX_HASH_LEN],
    const unsigned char (*path)[EHX_HASH_LEN], size_t n);

#endif
