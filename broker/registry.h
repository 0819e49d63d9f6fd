/*
 * registry.h — the agencies this broker serves (registry.c): each one's
 * id, type, certificates and CURVE key, loaded from the registry file.
 */
#ifndef EHX_BROKER_REGISTRY_H
#define EHX_BROKER_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "ehx.pb-c.h"
#include "ehx/crypto.h"
#include "ehx/limits.h"

#define BROKER_MAX_CERTS 4   /* per agency: the current one and rotations */

struct agency {
	char id[EHX_MAX_ID + 1];
	char name[EHX_MAX_NAME + 1];
	int type;                               /* Ehx__AgencyType */
	struct ehx_cert *certs[BROKER_MAX_CERTS];
	size_t ncerts;
	unsigned char curve_pub[EHX_KEY_LEN];
	/* Its token bucket (pipeline.c): requests it may still send now. */
	double tokens;
	int64_t refilled;                       /* ms; 0: full, not yet used */
	int64_t tokens_logged;                  /* when "over its rate" was logged */
};

struct registry {
	struct agency *agencies;
	size_t n;
};

/*
 * Load the registry file: one [agency-id] section with type, name,
 * certificate (repeatable) and curve_public. Every certificate must chain to
 * the CA and name the section's id (CN) and type (OU); CURVE keys must be
 * unique. Returns 0 or EHX_ERR_CONFIG with err set. Free with registry_free.
 */
int registry_load(const char *path, const struct ehx_ca *ca,
    struct registry *reg, char *err, size_t errsz);
void registry_free(struct registry *reg);

/* Lookups; NULL when absent. Pointers are valid until registry_free. */
const struct agency *registry_by_id(const struct registry *reg,
    const char *id);
const struct agency *registry_by_curve(const struct registry *reg,
    const unsigned char key[EHX_KEY_LEN]);
const struct agency *registry_by_fpr(const struct registry *reg,
    const unsigned char fpr[EHX_FPR_LEN], const struct ehx_cert **cert);

#endif
