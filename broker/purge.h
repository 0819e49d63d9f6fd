/*
 * purge.h — `ehx-broker --purge`: retention (purge.c).
 */
#ifndef EHX_BROKER_PURGE_H
#define EHX_BROKER_PURGE_H

#include <stdint.h>

#include "broker.h"

struct purge_counts {
	uint64_t flags, consents, envelopes;
};

/*
 * Remove the content of closed flags, ended consents and kept evidence
 * older than the configured retention (0 days: keep), as of now, and
 * append one audit record saying how much. The audit log is untouched.
 */
int broker_purge(struct broker *b, int64_t now, struct purge_counts *c);

#endif
