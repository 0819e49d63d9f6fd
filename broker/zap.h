/*
 * zap.h — the ZAP handler (zap.c): libzmq asks it whether a CURVE key may
 * connect; only the registry's keys may.
 */
#ifndef EHX_BROKER_ZAP_H
#define EHX_BROKER_ZAP_H

#include "broker.h"

/* Answer one pending ZAP request on the broker's ZAP socket. */
void zap_handle(struct broker *b);

#endif
