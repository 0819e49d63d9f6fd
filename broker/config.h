/*
 * config.h — the broker's configuration file (config.c): every key with
 * its bounds and default, read and checked before anything starts.
 */
#ifndef EHX_BROKER_CONFIG_H
#define EHX_BROKER_CONFIG_H

#include <stddef.h>

#include "ehx/limits.h"

#define BROKER_PATH_MAX 1024

struct broker_config {
	char file[BROKER_PATH_MAX];
	char id[EHX_MAX_ID + 1];
	char listen[256];
	char data_dir[BROKER_PATH_MAX];
	char certificate[BROKER_PATH_MAX];
	char key[BROKER_PATH_MAX];
	char curve_key[BROKER_PATH_MAX];
	char ca[BROKER_PATH_MAX];
	char registry[BROKER_PATH_MAX];
	char pseudonym_key[BROKER_PATH_MAX];
	char matching_key[BROKER_PATH_MAX];    /* empty: identities refused */
	char endpoint_file[BROKER_PATH_MAX];    /* optional: where to write the bound endpoint */
	char policy[BROKER_PATH_MAX];           /* the sharing policy */
	char crl[BROKER_PATH_MAX];              /* optional: the CA's CRL */
	char user[64];                          /* run as root: drop to this user */
	long long checkpoint_records;           /* sign a checkpoint every N records */
	long long checkpoint_seconds;           /* or T seconds, whichever first */
	long long retention_flag_days;          /* 0: keep closed flags */
	long long retention_consent_days;       /* 0: keep ended consents */
	long long retention_evidence_days;      /* 0: keep envelopes */
	long long skew_ms;
	long long map_size;
	long long rate_per_second;              /* per agency, sustained */
	long long rate_burst;                   /* per agency, at once */
	long long verify_threads;               /* -1: cores - 1 */
	int log_level;
};

/* Read and check the broker's config file. err gets "file:line: reason". */
int broker_config_load(const char *path, struct broker_config *c, char *err,
    size_t errsz);

#endif
