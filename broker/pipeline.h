/*
 * pipeline.h — the request pipeline (pipeline.c): every Envelope an agency
 * sends goes through its checks in the order of PROTOCOL.md §7 and is
 * answered with a signed reply; group commit of many requests in one
 * durable LMDB transaction. The serving loop (main.c) calls these.
 */
#ifndef EHX_BROKER_PIPELINE_H
#define EHX_BROKER_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>

#include "broker.h"
#include "ehx.pb-c.h"

/*
 * Process one Envelope frame that arrived on a connection bound to conn.
 * Returns the signed reply Envelope in *out (a new buffer the caller frees);
 * every error is itself a signed reply. Returns nonzero only when no reply
 * can be made at all.
 */
int broker_process(struct broker *b, const struct agency *conn,
    const void *frame, size_t len, unsigned char **out, size_t *outlen);
/*
 * The same in two steps, so that the costly, stateless first one can run
 * in worker threads: broker_rate_take (the connection's token bucket; in
 * the serving thread, before anything is decoded), then broker_precheck
 * (hash, decode, find the signer's certificate, check the signature, decode
 * the body: it only reads the registry, so it is safe in any thread while
 * the registry is not reloaded), then broker_process_checked in the serving
 * thread, in arrival order. pc NULL: over the rate. It frees what pc holds;
 * precheck_free frees a precheck that is not processed.
 */
struct precheck {
	Ehx__Envelope *env;
	Ehx__Body *body;
	const struct agency *agency;
	const struct ehx_cert *cert;
	int code;
	char why[128];
	unsigned char hash[32];
};
bool broker_rate_take(struct broker *b, const struct agency *conn);
void broker_precheck(const struct broker *b, const void *frame, size_t len,
    struct precheck *pc);
void precheck_free(struct precheck *pc);
int broker_process_checked(struct broker *b, const struct agency *conn,
    const void *frame, size_t len, struct precheck *pc, unsigned char **out,
    size_t *outlen);

/*
 * Group commit. broker_batch_begin opens one write transaction; each
 * broker_process until broker_batch_commit stores its effects in a child of
 * it. The caller must hold every reply until broker_batch_commit returns 0:
 * a reply says its request is stored. On failure nothing of the batch was
 * stored (its notifications are dropped, a checkpoint signed in it is
 * forgotten). After EHX_ERR_STORAGE_FULL, decide each request again alone
 * (main.c); after any other failure, answer each with broker_refuse(...,
 * EHX_ERR_INTERNAL).
 */
int broker_batch_begin(struct broker *b);
int broker_batch_commit(struct broker *b);
/* Abort the open batch, as a failed commit leaves it: nothing of it stored,
 * its notifications dropped, the checkpoint in force the last committed. */
void broker_batch_abandon(struct broker *b);
/* A signed error reply to message id (NULL: none known) on conn. */
int broker_refuse(struct broker *b, const struct agency *conn,
    const unsigned char *id, int code, unsigned char **out, size_t *outlen);

#endif
