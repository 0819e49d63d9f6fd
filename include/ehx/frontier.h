/*
 * frontier.h — an RFC 9162 tree rebuilt in memory from its leaves, keeping
 * only the newest complete subtree of each height (at most 64 hashes): the
 * root of the tree so far is always at hand. Used to check a log from its
 * records without trusting any stored interior hash.
 */
#ifndef EHX_FRONTIER_H
#define EHX_FRONTIER_H

#include <stdint.h>

#include "ehx/merkle.h"

struct ehx_frontier {
	uint64_t size;                          /* leaves added */
	unsigned char hash[64][EHX_HASH_LEN];   /* newest subtree per level */
};

void ehx_frontier_init(struct ehx_frontier *f);

/* Add the next leaf (its leaf hash). 0, or EHX_ERR_INVALID_FIELD when full. */
int ehx_frontier_add(struct ehx_frontier *f, const unsigned char leaf[EHX_HASH_LEN]);

/* The root of the f->size leaves added so far. */
int ehx_frontier_root(const struct ehx_frontier *f, unsigned char out[EHX_HASH_LEN]);

#endif
