/*
 * limits.h — every bound EHX puts on what comes from outside.
 * docs/PROTOCOL.md lists the same numbers; change both together.
 */
#ifndef EHX_LIMITS_H
#define EHX_LIMITS_H

#define EHX_PROTOCOL_VERSION   1
#define EHX_MAX_MESSAGE        65536   /* bytes of one Envelope frame */
#define EHX_MAX_BODY           (EHX_MAX_MESSAGE - 128)
#define EHX_MSGID_LEN          16
#define EHX_FPR_LEN            32      /* SHA-256 */
#define EHX_SIG_LEN            64      /* Ed25519 */
#define EHX_KEY_LEN            32      /* Ed25519 / X25519 public or raw key */
#define EHX_PSEUDONYM_LEN      32      /* HMAC-SHA256 */
#define EHX_MAX_ID             32      /* agency id: [a-z0-9][a-z0-9_-]* */
#define EHX_MAX_USER_ID        64
#define EHX_MAX_NAME           128
#define EHX_MAX_JOB            64
#define EHX_MAX_CONTACT        128
#define EHX_MAX_REF            64      /* [A-Za-z0-9._:/-] */
#define EHX_MAX_NOTE           280
#define EHX_MAX_REASON         280
#define EHX_MAX_SCOPE_AGENCIES 32
#define EHX_MAX_SCOPE_TYPES    8
#define EHX_MAX_PURPOSES       3
#define EHX_MAX_PICTURE_FLAGS  128     /* flags in one picture answer */
#define EHX_MAX_OPEN_FLAGS     64      /* open flags of one agency on one child */
#define EHX_MAX_NEWS_PER_DAY   4       /* changes of one flag that notify, a day */
#define EHX_MAX_CONSENTS       64      /* records in one consent answer */
#define EHX_MAX_AGENCIES       1024    /* registry entries */
#define EHX_MAX_USERS          4096    /* users-file entries */
#define EHX_MAX_CONFIG_FILE    (1024 * 1024)
#define EHX_MAX_KEY_FILE       16384
#define EHX_MAX_EVIDENCE       8192    /* envelopes kept as evidence */
#define EHX_MAX_AUDIT_PAGE     256     /* records, alerts, disclosures in one answer */
#define EHX_MAX_AUDIT_SCAN     20000   /* records one audit query reads */
#define EHX_READS_PER_TOKEN    100     /* stored values read: one more request of the rate */
#define EHX_MIN_BREAK_GLASS    20      /* bytes of a break-glass reason */
#define EHX_MAX_EVIDENCE_REF   64      /* a consent's form or record reference */
#define EHX_SELF_CONSENT_MS    (24LL * 3600 * 1000)  /* used by its recorder within: an alert */
#define EHX_MAX_SEQ            (1ULL << 62)  /* audit sizes and seqs on the wire */
#define EHX_MAX_NOTIFY         64      /* agencies one publish notifies */
#define EHX_MAX_COSIGNERS      8       /* other agencies' cosignatures a proof carries */
#define EHX_MAX_PENDING_DECISIONS 64   /* an agent keeps to check (§14.4) */
#define EHX_MAX_FETCH          64      /* notifications in one fetch answer */
#define EHX_STREAM_LEN         16      /* an outbox stream's id */
#define EHX_MIN_EXPIRY_MS      (60LL * 1000)            /* a consent lasts at least a minute */
#define EHX_MAX_CONSENT_MS     (3LL * 366 * 86400 * 1000) /* and at most three years */

#endif
