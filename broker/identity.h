/*
 * identity.h — which child an identity names (identity.c): each agency's
 * record of a child is a node; nodes of one child form a cluster, whose
 * key is the child's key everywhere else in the store (a pseudonym for a
 * child with an NHS number, a random id for a provisional one). Matching
 * is by tokens only (lib/identity.c, lib/match.c); docs/PROTOCOL.md §10.6.
 */
#ifndef EHX_BROKER_IDENTITY_H
#define EHX_BROKER_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lmdb.h>

#include "ehx.pb-c.h"
#include "ehx/crypto.h"
#include "ehx/identity.h"
#include "ehx/limits.h"
#include "ehx/match.h"
#include "store.h"

/* Candidates one identity may be sent to review with. */
#define IDENTITY_MAX_REVIEW 4
/* Nodes one blocking key brings at most: past it the key says too little
 * (a common name born the same month) and is not followed. */
#define IDENTITY_MAX_BLOCK_NODES 64
/* Nodes of one cluster compared at most. */
#define IDENTITY_MAX_MEMBERS 64

enum identity_how {
	IDENTITY_KNOWN,    /* the sender's record was known: its child */
	IDENTITY_LINKED,   /* a new record, linked to a child by an NHS
	                    * number, a UPN or a score above the threshold */
	IDENTITY_REVIEW,   /* a new record, a provisional child, with
	                    * candidates for a person to decide */
	IDENTITY_NEW,      /* a new record, a new (provisional) child */
};

struct identity_candidate {
	unsigned char child[EHX_PSEUDONYM_LEN];
	struct ehx_match_result result;
	bool conflict;      /* by a national id that disagrees elsewhere */
};

struct identity_result {
	unsigned char child[EHX_PSEUDONYM_LEN];  /* the child now */
	unsigned char node[EHX_PSEUDONYM_LEN];   /* the sender's record */
	enum identity_how how;
	size_t n_review;
	struct identity_candidate review[IDENTITY_MAX_REVIEW];
	size_t compared;                          /* nodes scored */
	size_t tokens;                            /* tokens made */
	size_t skipped_blocks;                    /* blocks too common */
};

struct identity_ctx {
	struct store *s;
	const struct ehx_pseudokey *pkey;  /* pseudonyms; sealing */
	const struct ehx_pseudokey *mkey;  /* matching tokens */
	struct ehx_match_thresholds th;
};

/*
 * The child a valid identity (ehx_validate_identity) from agency names,
 * in txn: the agency's node for it is found (by its own id, or by the
 * identity's NHS number, UPN or demographics when it gives no id) or
 * made; a new node joins the child its NHS number or UPN names, or the
 * one child whose score passes th.link, or starts a provisional child
 * (with candidates for review when scores fall between). A known node
 * keeps what it had and gains the identity's new tokens (a new UPN
 * replaces the old). Two children are joined only when no record of
 * either carries an NHS number or a UPN the other's contradict (else the
 * pair goes to review). 0; EHX_ERR_INVALID_IDENTITY when the agency's
 * known record was sent with another NHS number before; or
 * EHX_ERR_STORAGE / EHX_ERR_STORAGE_FULL / EHX_ERR_NOMEM /
 * EHX_ERR_CRYPTO.
 */
int identity_resolve(const struct identity_ctx *c, MDB_txn *txn,
    const char *agency, const Ehx__ChildIdentity *id, int64_t now,
    struct identity_result *out);

/* The child node belongs to: its cluster, or itself when it has no
 * record (a child known only by an NHS number, as before identities). */
/*
 * The child agency's own record of id names — found by its own id (or NHS
 * number, UPN, demographics without one), never made, never matched —
 * into child: the pseudonym when it has no record and id carries an NHS
 * number. EHX_ERR_NOT_FOUND when it has none: what a close needs, and no
 * more (a close must not tell whom else a child is known to).
 */
int identity_own(const struct identity_ctx *c, MDB_txn *txn,
    const char *agency, const Ehx__ChildIdentity *id,
    unsigned char child[EHX_PSEUDONYM_LEN]);

int identity_child_of(struct store *s, MDB_txn *txn,
    const unsigned char node[EHX_PSEUDONYM_LEN],
    unsigned char child[EHX_PSEUDONYM_LEN]);

/*
 * Join the child from to the child into: every node of from becomes
 * into's. The records kept under from's key are the caller's to move.
 * 0 or a storage error.
 */
int identity_merge(struct store *s, MDB_txn *txn,
    const unsigned char from[EHX_PSEUDONYM_LEN],
    const unsigned char into[EHX_PSEUDONYM_LEN], int64_t now);

/*
 * How agency itself named child: the identity it last sent for its
 * record of the child (the latest of them, if it has several), unsealed
 * and unpacked on the heap (free with ehx__child_identity__free_unpacked).
 * Without one, *out is NULL, and nhs (11 bytes) gets the child's NHS
 * number when the child has one, else "". 0 or a storage error.
 */
int identity_known_as(struct store *s, MDB_txn *txn,
    const struct ehx_pseudokey *pkey, const unsigned char child[EHX_PSEUDONYM_LEN],
    const char *agency, Ehx__ChildIdentity **out, char nhs[11]);

/* The nodes of child (at most max) into out; how many in *n. A child
 * with no record has itself. */
int identity_members(struct store *s, MDB_txn *txn,
    const unsigned char child[EHX_PSEUDONYM_LEN],
    unsigned char (*out)[EHX_PSEUDONYM_LEN], size_t max, size_t *n);

#endif
