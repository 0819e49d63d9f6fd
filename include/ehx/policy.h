/*
 * policy.h — the partnership's sharing policy (an information sharing
 * agreement), read by the broker from an INI file (docs/sharing-policy.ini
 * documents the format and is the default policy).
 *
 * For each requesting agency type it says which categories of other
 * agencies' flags a whole picture shows and which of their details, and
 * on which lawful basis that type's whole-picture queries rest; for each
 * category, which agency types are notified and on which lawful basis.
 * An agency always sees its own flags in full: that is not a policy matter.
 */
#ifndef EHX_POLICY_H
#define EHX_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "ehx/limits.h"
#include "ehx/match.h"

#define EHX_POLICY_SEE     1u   /* visible: agency, type, category, status, dates, ref */
#define EHX_POLICY_LEVEL   2u   /* its level of need */
#define EHX_POLICY_CONTACT 4u   /* practitioner name, job, contact, lead marker */
#define EHX_POLICY_NOTE    8u   /* the note and the close reason */

#define EHX_POLICY_TYPES 6          /* agency types 1..6 */
#define EHX_POLICY_CATEGORIES 20    /* categories 1..20 */
#define EHX_POLICY_LISTS 2          /* right early help lists 1..2 */
#define EHX_POLICY_LOCALITIES 32

struct ehx_policy {
	char id[EHX_MAX_ID + 1];
	char name[EHX_MAX_NAME + 1];
	bool view_present[EHX_POLICY_TYPES + 1];
	/* EHX_POLICY_* bits per (viewer type, category); 0 = invisible */
	unsigned view[EHX_POLICY_TYPES + 1][EHX_POLICY_CATEGORIES + 1];
	int picture_basis[EHX_POLICY_TYPES + 1];        /* LawfulBasis */
	/* LawfulBasis per (category, notified type); 0 = not notified */
	int notify[EHX_POLICY_CATEGORIES + 1][EHX_POLICY_TYPES + 1];
	/* Right early help lists (EarlyHelpList): the lawful basis each rests
	 * on (0: not shared) and the agency types (bit 1 << type) whose
	 * Information Officers may ask for it. */
	int list_basis[EHX_POLICY_LISTS + 1];
	unsigned list_types[EHX_POLICY_LISTS + 1];
	/* Why a type that may name a child's locality may also ask for the
	 * list ([list L] override); empty: no type may do both. */
	char list_override[EHX_POLICY_LISTS + 1][EHX_MAX_REASON + 1];
	/* The agency types whose publishes may name a child's locality
	 * (bit 1 << type); 0: every type. */
	unsigned locality_types;
	/* The partnership's localities; none: any locality id is taken. */
	char localities[EHX_POLICY_LOCALITIES][EHX_MAX_ID + 1];
	size_t nlocalities;
	/* break_glass_review = another_agency: an alert is reviewed only by
	 * an IG officer of another agency than the one whose person broke
	 * the glass (never, in any case, by that person). */
	bool review_other_agency;
	/* subject_access = TYPE, ...: the agency types whose IG officers
	 * answer subject access requests, and search the audit by child, for
	 * the partnership (bit 1 << type); 0: none. */
	unsigned sar_types;
	/* [matching]: the thresholds in bits at which an identity is linked
	 * to a child, or sent to review (lib/match.c; defaults
	 * EHX_MATCH_LINK_DEFAULT and EHX_MATCH_REVIEW_DEFAULT). */
	struct ehx_match_thresholds match;
};

/*
 * Load and check path into *p (no allocation is kept). Returns 0, or
 * EHX_ERR_CONFIG with "path:line: reason" in err ("path: reason" for what
 * is missing), or EHX_ERR_NOMEM; on an error *p is all zero.
 */
int ehx_policy_load(const char *path, struct ehx_policy *p, char *err,
    size_t errsz);

/* The EHX_POLICY_* bits viewer_type sees of category (0 when out of range). */
unsigned ehx_policy_view(const struct ehx_policy *p, int viewer_type,
    int category);

/* The lawful basis of viewer_type's whole-picture queries (consent unless
 * the policy names another; consent for out-of-range types). */
int ehx_policy_picture_basis(const struct ehx_policy *p, int viewer_type);

/* The basis on which agency_type is notified of category (0: it is not). */
int ehx_policy_notify_basis(const struct ehx_policy *p, int category,
    int agency_type);

/* The lawful basis on which agencies of agency_type are given list
 * (EarlyHelpList), or 0 when the policy does not share it with them. */
int ehx_policy_list_basis(const struct ehx_policy *p, int list,
    int agency_type);

/* Whether agency_type may ask for list only by its override: it may also
 * name a child's locality (the audit marks such answers). */
bool ehx_policy_list_overridden(const struct ehx_policy *p, int list,
    int agency_type);

/* Whether agency_type's IG officers may ask for a subject access answer,
 * or search the audit by child (subject_access in [agreement]). */
bool ehx_policy_subject_access(const struct ehx_policy *p, int agency_type);

/* Whether a publish from agency_type may name a child's locality. */
bool ehx_policy_locality_from(const struct ehx_policy *p, int agency_type);

/* Whether locality is one of the policy's (any is, when it names none). */
bool ehx_policy_locality_ok(const struct ehx_policy *p, const char *locality);

/*
 * One line on what viewer_type sees of other agencies, for tests and help:
 * "school: 20 categories; level, contact; mental_health: contact" — the
 * categories (named when fewer than all), the details most of them get,
 * then each category whose details differ, and picture_basis unless it is
 * consent. A type without a view (or out of range) "sees nothing of other
 * agencies". Returns 0, or EHX_ERR_TOO_LARGE when out was too small (the
 * line is cut short, NUL-terminated when outsz > 0).
 */
int ehx_policy_describe(const struct ehx_policy *p, int viewer_type,
    char *out, size_t outsz);

#endif
