/*
 * registry.c — the agencies this broker serves. The registry binds each
 * agency id to its type, its certificates (more than one while a key is
 * being rotated) and its CURVE public key; the ZAP handler admits only
 * these CURVE keys and the pipeline accepts only these certificates.
 *
 *   [police-north]
 *   type = police
 *   name = North Police
 *   certificate = police-north/police-north.crt
 *   curve_public = police-north/curve.pub
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "ehx/conf.h"
#include "ehx/err.h"
#include "ehx/names.h"
#include "ehx/util.h"
#include "registry.h"

struct load {
	const char *path;
	const struct ehx_ca *ca;
	struct registry *reg;
	unsigned char have_curve[EHX_MAX_AGENCIES];
};

static struct agency *
section(struct load *l, const char *name, char *why, size_t whysz)
{
	struct registry *reg = l->reg;
	struct agency *a;

	for (size_t i = 0; i < reg->n; i++)
		if (strcmp(reg->agencies[i].id, name) == 0)
			return &reg->agencies[i];
	if (!ehx_id_ok(name)) {
		snprintf(why, whysz, "[%.40s] is not a valid agency id (1..%d of "
		    "a-z 0-9 _ -)", name, EHX_MAX_ID);
		return NULL;
	}
	if (reg->n >= EHX_MAX_AGENCIES) {
		snprintf(why, whysz, "more than %d agencies", EHX_MAX_AGENCIES);
		return NULL;
	}
	a = &reg->agencies[reg->n++];
	memset(a, 0, sizeof(*a));
	snprintf(a->id, sizeof(a->id), "%s", name);
	return a;
}

static int
on_key(void *user, const char *sec, const char *key, const char *value,
    char *why, size_t whysz)
{
	struct load *l = user;
	struct agency *a;
	char path[BROKER_PATH_MAX], reason[160];
	int r;

	if ((a = section(l, sec, why, whysz)) == NULL)
		return EHX_ERR_CONFIG;
	if (strcmp(key, "type") == 0) {
		if ((a->type = ehx_agency_type_parse(value)) < 0) {
			snprintf(why, whysz, "unknown agency type \"%.40s\"", value);
			return EHX_ERR_CONFIG;
		}
		return 0;
	}
	if (strcmp(key, "name") == 0)
		return ehx_conf_string(value, a->name, sizeof(a->name), why,
		    whysz);
	if (strcmp(key, "certificate") == 0) {
		struct ehx_cert *c = NULL;

		if ((r = ehx_conf_path(l->path, value, path, sizeof(path), why,
		    whysz)) != 0)
			return r;
		if (a->ncerts >= BROKER_MAX_CERTS) {
			snprintf(why, whysz, "more than %d certificates for %s",
			    BROKER_MAX_CERTS, a->id);
			return EHX_ERR_CONFIG;
		}
		if (ehx_cert_load(path, &c) != 0) {
			snprintf(why, whysz, "%.200s: not a readable Ed25519 "
			    "certificate with one CN and one OU", path);
			return EHX_ERR_CONFIG;
		}
		if (ehx_ca_verify(l->ca, c, reason, sizeof(reason)) != 0) {
			snprintf(why, whysz, "%.200s: not issued by the "
			    "partnership CA (%s)", path, reason);
			ehx_cert_free(c);
			return EHX_ERR_CONFIG;
		}
		if (strcmp(ehx_cert_cn(c), a->id) != 0) {
			snprintf(why, whysz, "%.200s names agency \"%s\", not "
			    "\"%s\"", path, ehx_cert_cn(c), a->id);
			ehx_cert_free(c);
			return EHX_ERR_CONFIG;
		}
		for (size_t k = 0; k < a->ncerts; k++)
			if (memcmp(ehx_cert_fpr(a->certs[k]), ehx_cert_fpr(c),
			    EHX_FPR_LEN) == 0) {
				/* Found by fuzz_registry: lookups by
				 * fingerprint would see only the first. */
				snprintf(why, whysz, "%.200s: this certificate is "
				    "listed for %s already", path, a->id);
				ehx_cert_free(c);
				return EHX_ERR_CONFIG;
			}
		a->certs[a->ncerts++] = c;
		return 0;
	}
	if (strcmp(key, "curve_public") == 0) {
		if ((r = ehx_conf_path(l->path, value, path, sizeof(path), why,
		    whysz)) != 0)
			return r;
		if (ehx_curve_load_public(path, a->curve_pub) != 0) {
			snprintf(why, whysz, "%.200s: not a readable X25519 "
			    "public key", path);
			return EHX_ERR_CONFIG;
		}
		l->have_curve[a - l->reg->agencies] = 1;
		return 0;
	}
	snprintf(why, whysz, "unknown key \"%.40s\"", key);
	return EHX_ERR_CONFIG;
}

int
registry_load(const char *path, const struct ehx_ca *ca, struct registry *reg,
    char *err, size_t errsz)
{
	struct load *l = NULL;
	int r;

	memset(reg, 0, sizeof(*reg));
	if ((reg->agencies = calloc(EHX_MAX_AGENCIES,
	    sizeof(*reg->agencies))) == NULL ||
	    (l = calloc(1, sizeof(*l))) == NULL) {
		r = EHX_ERR_NOMEM;
		snprintf(err, errsz, "out of memory");
		goto out;
	}
	l->path = path;
	l->ca = ca;
	l->reg = reg;
	if ((r = ehx_conf_parse(path, on_key, l, err, errsz)) != 0)
		goto out;
	r = EHX_ERR_CONFIG;
	for (size_t i = 0; i < reg->n; i++) {
		struct agency *a = &reg->agencies[i];

		if (a->type <= 0 || a->ncerts == 0 || !l->have_curve[i]) {
			snprintf(err, errsz, "%s: [%s] needs type, certificate "
			    "and curve_public", path, a->id);
			goto out;
		}
		for (size_t k = 0; k < a->ncerts; k++)
			if (strcmp(ehx_cert_ou(a->certs[k]),
			    ehx_agency_type_name(a->type)) != 0) {
				snprintf(err, errsz, "%s: [%s] is type %s but "
				    "its certificate says %s", path, a->id,
				    ehx_agency_type_name(a->type),
				    ehx_cert_ou(a->certs[k]));
				goto out;
			}
		for (size_t j = 0; j < i; j++)
			if (memcmp(a->curve_pub, reg->agencies[j].curve_pub,
			    EHX_KEY_LEN) == 0) {
				snprintf(err, errsz, "%s: [%s] and [%s] share a "
				    "CURVE key", path, reg->agencies[j].id, a->id);
				goto out;
			}
		if (a->name[0] == '\0')
			snprintf(a->name, sizeof(a->name), "%s", a->id);
	}
	if (reg->n == 0) {
		snprintf(err, errsz, "%s: no agencies", path);
		goto out;
	}
	r = 0;
out:
	free(l);
	if (r != 0)
		registry_free(reg);
	return r;
}

void
registry_free(struct registry *reg)
{
	if (reg->agencies != NULL)
		for (size_t i = 0; i < reg->n; i++)
			for (size_t k = 0; k < reg->agencies[i].ncerts; k++)
				ehx_cert_free(reg->agencies[i].certs[k]);
	free(reg->agencies);
	memset(reg, 0, sizeof(*reg));
}

const struct agency *
registry_by_id(const struct registry *reg, const char *id)
{
	for (size_t i = 0; i < reg->n; i++)
		if (strcmp(reg->agencies[i].id, id) == 0)
			return &reg->agencies[i];
	return NULL;
}

const struct agency *
registry_by_curve(const struct registry *reg,
    const unsigned char key[EHX_KEY_LEN])
{
	for (size_t i = 0; i < reg->n; i++)
		if (memcmp(reg->agencies[i].curve_pub, key, EHX_KEY_LEN) == 0)
			return &reg->agencies[i];
	return NULL;
}

const struct agency *
registry_by_fpr(const struct registry *reg,
    const unsigned char fpr[EHX_FPR_LEN], const struct ehx_cert **cert)
{
	for (size_t i = 0; i < reg->n; i++)
		for (size_t k = 0; k < reg->agencies[i].ncerts; k++)
			if (memcmp(ehx_cert_fpr(reg->agencies[i].certs[k]), fpr,
			    EHX_FPR_LEN) == 0) {
				*cert = reg->agencies[i].certs[k];
				return &reg->agencies[i];
			}
	*cert = NULL;
	return NULL;
}
