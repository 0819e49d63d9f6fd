/*
 * handle.h — one handler per request payload, as the pipeline's dispatch
 * table (pipeline.c) calls them: handle_flag.c, handle_consent.c,
 * handle_picture.c, handle_list.c, handle_sar.c, the information governance
 * queries and the audit's proofs in audit.c, fetch_notifications in
 * notify.c, and record_involvement in handle_involvement.c. Who may ask for each is ehx_payload_roles().
 */
#ifndef EHX_BROKER_HANDLE_H
#define EHX_BROKER_HANDLE_H

#include <stddef.h>

#include "request.h"

/* Handlers: validate what is left, act within rq->txn, set rq->reply. They
 * return 0 or an EHX_ERR_* with a sentence in why. */
int handle_publish_flag(struct request *rq, char *why, size_t whysz);
int handle_close_flag(struct request *rq, char *why, size_t whysz);
int handle_record_consent(struct request *rq, char *why, size_t whysz);
int handle_withdraw_consent(struct request *rq, char *why, size_t whysz);
int handle_query_consent(struct request *rq, char *why, size_t whysz);
int handle_query_picture(struct request *rq, char *why, size_t whysz);
int handle_query_early_help_list(struct request *rq, char *why,
    size_t whysz);
int handle_query_audit(struct request *rq, char *why, size_t whysz);
int handle_query_alerts(struct request *rq, char *why, size_t whysz);
int handle_review_alert(struct request *rq, char *why, size_t whysz);
int handle_query_disclosures(struct request *rq, char *why, size_t whysz);
int handle_export_audit(struct request *rq, char *why, size_t whysz);
int handle_query_proof(struct request *rq, char *why, size_t whysz);
int handle_cosign_checkpoint(struct request *rq, char *why, size_t whysz);
int handle_query_sar(struct request *rq, char *why, size_t whysz);
int handle_fetch_notifications(struct request *rq, char *why,
    size_t whysz);
int handle_record_involvement(struct request *rq, char *why, size_t whysz);

#endif
