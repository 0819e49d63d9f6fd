/*
 * names.c — one table per enum of proto/ehx.proto, indexed by value. The
 * command line parses these words; --json prints them; the docs list them.
 */
#include <string.h>

#include "ehx.pb-c.h"
#include "ehx/names.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const char *
name_of(const char *const *tab, size_t n, int v)
{
	if (v <= 0 || (size_t)v >= n || tab[v] == NULL)
		return "unknown";
	return tab[v];
}

static int
parse_in(const char *const *tab, size_t n, const char *s)
{
	for (size_t i = 1; i < n; i++)
		if (tab[i] != NULL && strcmp(tab[i], s) == 0)
			return (int)i;
	return -1;
}

static const char *const roles[] = {
	[EHX__ROLE__ROLE_SYSTEM] = "system",
	[EHX__ROLE__ROLE_PRACTITIONER] = "practitioner",
	[EHX__ROLE__ROLE_INFORMATION_OFFICER] = "information_officer",
	[EHX__ROLE__ROLE_IG_OFFICER] = "ig_officer",
	[EHX__ROLE__ROLE_ADMIN] = "admin",
};

static const char *const types[] = {
	[EHX__AGENCY_TYPE__AGENCY_TYPE_POLICE] = "police",
	[EHX__AGENCY_TYPE__AGENCY_TYPE_HEALTH] = "health",
	[EHX__AGENCY_TYPE__AGENCY_TYPE_SCHOOL] = "school",
	[EHX__AGENCY_TYPE__AGENCY_TYPE_HOUSING] = "housing",
	[EHX__AGENCY_TYPE__AGENCY_TYPE_LOCAL_AUTHORITY] = "local_authority",
	[EHX__AGENCY_TYPE__AGENCY_TYPE_VOLUNTARY] = "voluntary",
};

static const char *const categories[] = {
	[EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE] = "domestic_abuse",
	[EHX__CATEGORY__CATEGORY_SUBSTANCE_MISUSE] = "substance_misuse",
	[EHX__CATEGORY__CATEGORY_MENTAL_HEALTH] = "mental_health",
	[EHX__CATEGORY__CATEGORY_POOR_START] = "poor_start",
	[EHX__CATEGORY__CATEGORY_PHYSICAL_HEALTH] = "physical_health",
	[EHX__CATEGORY__CATEGORY_HOUSING] = "housing",
	[EHX__CATEGORY__CATEGORY_EXPLOITATION_RISK] = "exploitation_risk",
	[EHX__CATEGORY__CATEGORY_WORKLESSNESS] = "worklessness",
	[EHX__CATEGORY__CATEGORY_SCHOOL_ATTENDANCE] = "school_attendance",
	[EHX__CATEGORY__CATEGORY_PARENTING] = "parenting",
	[EHX__CATEGORY__CATEGORY_OFFENDING] = "offending",
	[EHX__CATEGORY__CATEGORY_YOUNG_CARER] = "young_carer",
	[EHX__CATEGORY__CATEGORY_SEND] = "send",
	[EHX__CATEGORY__CATEGORY_MISSING_EPISODES] = "missing_episodes",
	[EHX__CATEGORY__CATEGORY_ANTI_SOCIAL_BEHAVIOUR] = "anti_social_behaviour",
	[EHX__CATEGORY__CATEGORY_FAMILY_RESILIENCE] = "family_resilience",
	[EHX__CATEGORY__CATEGORY_TRANSITIONS] = "transitions",
	[EHX__CATEGORY__CATEGORY_RADICALISATION] = "radicalisation",
	[EHX__CATEGORY__CATEGORY_PRIVATE_FOSTERING] = "private_fostering",
	[EHX__CATEGORY__CATEGORY_RETURNED_FROM_CARE] = "returned_from_care",
};

static const char *const category_labels[] = {
	[EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE] = "Domestic abuse",
	[EHX__CATEGORY__CATEGORY_SUBSTANCE_MISUSE] = "Substance misuse",
	[EHX__CATEGORY__CATEGORY_MENTAL_HEALTH] = "Mental health",
	[EHX__CATEGORY__CATEGORY_POOR_START] = "Poor start to life",
	[EHX__CATEGORY__CATEGORY_PHYSICAL_HEALTH] = "Physical health",
	[EHX__CATEGORY__CATEGORY_HOUSING] = "Housing",
	[EHX__CATEGORY__CATEGORY_EXPLOITATION_RISK] = "Exploitation risk",
	[EHX__CATEGORY__CATEGORY_WORKLESSNESS] = "Debt, worklessness, NEET",
	[EHX__CATEGORY__CATEGORY_SCHOOL_ATTENDANCE] = "School attendance",
	[EHX__CATEGORY__CATEGORY_PARENTING] = "Parenting",
	[EHX__CATEGORY__CATEGORY_OFFENDING] = "Offending",
	[EHX__CATEGORY__CATEGORY_YOUNG_CARER] = "Young carer",
	[EHX__CATEGORY__CATEGORY_SEND] = "SEND",
	[EHX__CATEGORY__CATEGORY_MISSING_EPISODES] = "Missing episodes",
	[EHX__CATEGORY__CATEGORY_ANTI_SOCIAL_BEHAVIOUR] = "Anti-social behaviour",
	[EHX__CATEGORY__CATEGORY_FAMILY_RESILIENCE] = "Family resilience",
	[EHX__CATEGORY__CATEGORY_TRANSITIONS] = "Poor transitions",
	[EHX__CATEGORY__CATEGORY_RADICALISATION] = "Radicalisation",
	[EHX__CATEGORY__CATEGORY_PRIVATE_FOSTERING] = "Private fostering",
	[EHX__CATEGORY__CATEGORY_RETURNED_FROM_CARE] = "Returned from care",
};

static const char *const purposes[] = {
	[EHX__PURPOSE__PURPOSE_WHOLE_PICTURE] = "whole_picture",
	[EHX__PURPOSE__PURPOSE_NOTIFICATIONS] = "notifications",
	[EHX__PURPOSE__PURPOSE_ASSESSMENT] = "assessment",
};

static const char *const bases[] = {
	[EHX__LAWFUL_BASIS__LAWFUL_BASIS_CONSENT] = "consent",
	[EHX__LAWFUL_BASIS__LAWFUL_BASIS_PUBLIC_TASK] = "public_task",
	[EHX__LAWFUL_BASIS__LAWFUL_BASIS_LEGAL_OBLIGATION] = "legal_obligation",
	[EHX__LAWFUL_BASIS__LAWFUL_BASIS_VITAL_INTERESTS] = "vital_interests",
};

static const char *const relations[] = {
	[EHX__RELATION__RELATION_YOUNG_PERSON] = "young_person",
	[EHX__RELATION__RELATION_PARENT] = "parent",
	[EHX__RELATION__RELATION_CARER] = "carer",
};

static const char *const levels[] = {
	[1] = "universal", [2] = "additional", [3] = "complex", [4] = "acute",
};

static const char *const lists[] = {
	[EHX__EARLY_HELP_LIST__EARLY_HELP_LIST_KNOWN_TO_SEVERAL] = "known_to_several",
	[EHX__EARLY_HELP_LIST__EARLY_HELP_LIST_TROUBLED_FAMILIES] = "troubled_families",
};

static const char *const kinds[] = {
	[EHX__INVOLVEMENT_KIND__INVOLVEMENT_KIND_ENROLLED] = "enrolled",
	[EHX__INVOLVEMENT_KIND__INVOLVEMENT_KIND_REGISTERED] = "registered",
	[EHX__INVOLVEMENT_KIND__INVOLVEMENT_KIND_CASELOAD] = "caseload",
	[EHX__INVOLVEMENT_KIND__INVOLVEMENT_KIND_TENANCY] = "tenancy",
};

static const char *const criteria[] = {
	[EHX__FAMILY_CRITERION__FAMILY_CRITERION_CRIME] = "crime",
	[EHX__FAMILY_CRITERION__FAMILY_CRITERION_SCHOOL] = "school",
	[EHX__FAMILY_CRITERION__FAMILY_CRITERION_NEEDS_HELP] = "needs_help",
	[EHX__FAMILY_CRITERION__FAMILY_CRITERION_WORKLESSNESS] = "worklessness",
	[EHX__FAMILY_CRITERION__FAMILY_CRITERION_DOMESTIC_ABUSE] = "domestic_abuse",
	[EHX__FAMILY_CRITERION__FAMILY_CRITERION_HEALTH] = "health",
};

static const char *const criterion_labels[] = {
	[EHX__FAMILY_CRITERION__FAMILY_CRITERION_CRIME] = "Crime or anti-social behaviour",
	[EHX__FAMILY_CRITERION__FAMILY_CRITERION_SCHOOL] = "Not attending school regularly",
	[EHX__FAMILY_CRITERION__FAMILY_CRITERION_NEEDS_HELP] = "Children who need help",
	[EHX__FAMILY_CRITERION__FAMILY_CRITERION_WORKLESSNESS] = "Worklessness or financial exclusion",
	[EHX__FAMILY_CRITERION__FAMILY_CRITERION_DOMESTIC_ABUSE] = "Domestic violence and abuse",
	[EHX__FAMILY_CRITERION__FAMILY_CRITERION_HEALTH] = "Health problems",
};

const char *ehx_list_name(int v) { return name_of(lists, N(lists), v); }
int ehx_list_parse(const char *s) { return parse_in(lists, N(lists), s); }
const char *ehx_involvement_kind_name(int v) { return name_of(kinds, N(kinds), v); }
int ehx_involvement_kind_parse(const char *s) { return parse_in(kinds, N(kinds), s); }
const char *ehx_criterion_name(int v) { return name_of(criteria, N(criteria), v); }
const char *ehx_criterion_label(int v) { return name_of(criterion_labels, N(criterion_labels), v); }

unsigned
ehx_family_criteria(int category, unsigned level)
{
	unsigned c = 0;

	if (level == 4)
		c |= 1u << EHX__FAMILY_CRITERION__FAMILY_CRITERION_NEEDS_HELP;
	switch (category) {
	case EHX__CATEGORY__CATEGORY_OFFENDING:
	case EHX__CATEGORY__CATEGORY_ANTI_SOCIAL_BEHAVIOUR:
		return c | 1u << EHX__FAMILY_CRITERION__FAMILY_CRITERION_CRIME;
	case EHX__CATEGORY__CATEGORY_SCHOOL_ATTENDANCE:
		return c | 1u << EHX__FAMILY_CRITERION__FAMILY_CRITERION_SCHOOL;
	case EHX__CATEGORY__CATEGORY_WORKLESSNESS:
		return c | 1u << EHX__FAMILY_CRITERION__FAMILY_CRITERION_WORKLESSNESS;
	case EHX__CATEGORY__CATEGORY_DOMESTIC_ABUSE:
		return c | 1u << EHX__FAMILY_CRITERION__FAMILY_CRITERION_DOMESTIC_ABUSE;
	case EHX__CATEGORY__CATEGORY_MENTAL_HEALTH:
	case EHX__CATEGORY__CATEGORY_PHYSICAL_HEALTH:
	case EHX__CATEGORY__CATEGORY_SUBSTANCE_MISUSE:
		return c | 1u << EHX__FAMILY_CRITERION__FAMILY_CRITERION_HEALTH;
	default:
		return c;
	}
}

const char *ehx_role_name(int v) { return name_of(roles, N(roles), v); }
int ehx_role_parse(const char *s) { return parse_in(roles, N(roles), s); }
const char *ehx_agency_type_name(int v) { return name_of(types, N(types), v); }
int ehx_agency_type_parse(const char *s) { return parse_in(types, N(types), s); }
const char *ehx_category_name(int v) { return name_of(categories, N(categories), v); }
const char *ehx_category_label(int v) { return name_of(category_labels, N(category_labels), v); }
int ehx_category_parse(const char *s) { return parse_in(categories, N(categories), s); }
bool ehx_category_valid(int v) { return v > 0 && (size_t)v < N(categories); }
const char *ehx_purpose_name(int v) { return name_of(purposes, N(purposes), v); }
int ehx_purpose_parse(const char *s) { return parse_in(purposes, N(purposes), s); }
const char *ehx_basis_name(int v) { return name_of(bases, N(bases), v); }
int ehx_basis_parse(const char *s) { return parse_in(bases, N(bases), s); }
const char *ehx_relation_name(int v) { return name_of(relations, N(relations), v); }
int ehx_relation_parse(const char *s) { return parse_in(relations, N(relations), s); }
const char *ehx_level_name(unsigned v) { return name_of(levels, N(levels), (int)v); }

const char *
ehx_category_list(void)
{
	static char buf[1024];

	if (buf[0] == '\0')
		for (size_t i = 1; i < N(categories); i++) {
			if (i > 1)
				strcat(buf, ", ");
			strcat(buf, categories[i]);
		}
	return buf;
}
