/*
 * names.h — the words people and scripts use for the schema's enums
 * ("domestic_abuse", "information_officer"), and a label for tables.
 *
 * Every *_parse returns the enum value, or -1 for an unknown word; every
 * *_name returns a static string, "unknown" for a value out of range.
 */
#ifndef EHX_NAMES_H
#define EHX_NAMES_H

#include <stdbool.h>

const char *ehx_role_name(int role);
int ehx_role_parse(const char *s);

const char *ehx_agency_type_name(int type);
int ehx_agency_type_parse(const char *s);

const char *ehx_category_name(int category);
const char *ehx_category_label(int category);
int ehx_category_parse(const char *s);
bool ehx_category_valid(int category);

const char *ehx_purpose_name(int purpose);
int ehx_purpose_parse(const char *s);

const char *ehx_basis_name(int basis);
int ehx_basis_parse(const char *s);

const char *ehx_relation_name(int relation);
int ehx_relation_parse(const char *s);

/* "universal", "additional", "complex", "acute" for levels 1..4. */
const char *ehx_level_name(unsigned level);

/* Writes every *_name of a table, comma separated, for help texts. */
const char *ehx_category_list(void);

/* Right early help lists: "known_to_several", "troubled_families". */
const char *ehx_list_name(int list);
int ehx_list_parse(const char *s);

/* Relationships (InvolvementKind): "enrolled", "registered", "caseload",
 * "tenancy". */
const char *ehx_involvement_kind_name(int kind);
int ehx_involvement_kind_parse(const char *s);

/* The six Troubled Families headline criteria: "crime", "school",
 * "needs_help", "worklessness", "domestic_abuse", "health", and a label
 * for people. */
const char *ehx_criterion_name(int criterion);
const char *ehx_criterion_label(int criterion);

/*
 * The criteria (bit 1 << FamilyCriterion) one open flag of category at
 * level shows: offending and anti-social behaviour show crime; school
 * attendance, school; debt/worklessness/NEET, worklessness; domestic
 * abuse itself; mental health, physical health and substance misuse,
 * health; and any flag at level 4 (child in need, child protection),
 * children who need help. PROTOCOL.md §6.3 gives the same table.
 */
unsigned ehx_family_criteria(int category, unsigned level);

#endif
