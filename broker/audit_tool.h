/*
 * audit_tool.h — `ehx-broker audit`: the operator's view of the audit log
 * (audit_tool.c).
 */
#ifndef EHX_BROKER_AUDIT_TOOL_H
#define EHX_BROKER_AUDIT_TOOL_H

#include <stdbool.h>

#include "ehx/crypto.h"
#include "store.h"

/* Print the last `tail` audit records (0: all) after checking the whole
 * log against its Merkle tree and checkpoints (signatures too, when the
 * broker's certificate is given). 0, or EHX_ERR_STORAGE on any fault. */
int audit_tool(struct store *s, unsigned long tail, bool json,
    const struct ehx_cert *broker);

#endif
