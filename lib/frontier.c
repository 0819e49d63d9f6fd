/*
 * frontier.c — see frontier.h. The complete subtree at level L that a
 * tree of n leaves ends with (when bit L of n is set) is the newest one
 * completed at that level, so one slot per level is enough for both the
 * appends and the root: RFC 9162's MTH of n leaves is those subtrees
 * joined from the right.
 */
#include <stdbool.h>
#include <string.h>

#include "ehx/err.h"
#include "ehx/frontier.h"
#include "ehx/crypto.h"

void
ehx_frontier_init(struct ehx_frontier *f)
{
	memset(f, 0, sizeof(*f));
}

int
ehx_frontier_add(struct ehx_frontier *f, const unsigned char leaf[EHX_HASH_LEN])
{
	unsigned char h[EHX_HASH_LEN];
	uint64_t i = f->size;
	unsigned level = 0;

	if (f->size == UINT64_MAX)
		return EHX_ERR_INVALID_FIELD;
	memcpy(h, leaf, EHX_HASH_LEN);
	/* Each 1 bit at the bottom of the old size is a left sibling. */
	while (i & 1) {
		unsigned char t[EHX_HASH_LEN];

		ehx_merkle_node_hash(f->hash[level], h, t);
		memcpy(h, t, EHX_HASH_LEN);
		i >>= 1;
		level++;
	}
	memcpy(f->hash[level], h, EHX_HASH_LEN);
	f->size++;
	return 0;
}

int
ehx_frontier_root(const struct ehx_frontier *f, unsigned char out[EHX_HASH_LEN])
{
	unsigned char h[EHX_HASH_LEN];
	bool any = false;

	for (unsigned level = 0; level < 64; level++) {
		if (!(f->size >> level & 1))
			continue;
		if (!any)
			memcpy(h, f->hash[level], EHX_HASH_LEN);
		else {
			unsigned char t[EHX_HASH_LEN];

			ehx_merkle_node_hash(f->hash[level], h, t);
			memcpy(h, t, EHX_HASH_LEN);
		}
		any = true;
	}
	if (!any)
		ehx_sha256("", 0, h);
	memcpy(out, h, EHX_HASH_LEN);
	return 0;
}
