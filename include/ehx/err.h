/*
 * err.h — one table of error codes for libehx, the broker, the agent and
 * the command line.
 *
 * Functions return 0 on success or a negative EHX_ERR_*. Codes -1 … -99
 * mirror the wire's ErrorCode (ERROR_x == -EHX_ERR_x), so a typed error
 * travels from the broker to the user unchanged; codes from -100 are local
 * to one process and never sent.
 */
#ifndef EHX_ERR_H
#define EHX_ERR_H

#define EHX_OK                           0
#define EHX_ERR_BAD_SIGNATURE           -1
#define EHX_ERR_UNKNOWN_CERTIFICATE     -2
#define EHX_ERR_CERTIFICATE_NOT_YET_VALID -3
#define EHX_ERR_CERTIFICATE_EXPIRED     -4
#define EHX_ERR_REVOKED_CERTIFICATE     -5
#define EHX_ERR_WRONG_SENDER            -6
#define EHX_ERR_WRONG_RECIPIENT         -7
#define EHX_ERR_STALE                   -8
#define EHX_ERR_REPLAY                  -9
#define EHX_ERR_MALFORMED               -10
#define EHX_ERR_TOO_LARGE               -11
#define EHX_ERR_INVALID_NHS_NUMBER      -12
#define EHX_ERR_INVALID_FIELD           -13
#define EHX_ERR_NOT_PERMITTED           -14
#define EHX_ERR_NO_CONSENT              -15
#define EHX_ERR_NOT_FOUND               -16
#define EHX_ERR_RATE_LIMITED            -17
#define EHX_ERR_INTERNAL                -18
#define EHX_ERR_UNAVAILABLE             -19
#define EHX_ERR_TIMEOUT                 -20
#define EHX_ERR_BAD_VERSION             -21
#define EHX_ERR_STORAGE_FULL            -22
#define EHX_ERR_OUT_OF_ORDER            -23
#define EHX_ERR_INVALID_IDENTITY        -24
#define EHX_ERR_WIRE_LAST               -24

/* Local only. */
#define EHX_ERR_SYSTEM                  -100 /* see errno */
#define EHX_ERR_NOMEM                   -101
#define EHX_ERR_CONFIG                  -102
#define EHX_ERR_KEY_PERMISSIONS         -103
#define EHX_ERR_CRYPTO                  -104
#define EHX_ERR_STORAGE                 -105
#define EHX_ERR_USAGE                   -106
#define EHX_ERR_LOCAL_LAST              -106

/* A sentence for the code. Never NULL; static storage. */
const char *ehx_strerror(int code);

/* A short stable name ("bad_signature"), as --json prints it. Never NULL. */
const char *ehx_errname(int code);

/* Wire ErrorCode (positive) for a code; local codes become ERROR_INTERNAL. */
int ehx_err_to_wire(int code);

/* Code for a wire ErrorCode; unknown values become EHX_ERR_INTERNAL. */
int ehx_err_from_wire(int wire);

#endif
