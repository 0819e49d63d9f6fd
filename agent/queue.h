/*
 * queue.h — the agent's durable outbox and inbox (its own LMDB in data_dir).
 *
 * Outbox: every change a local caller asks for (publish, close, consent
 * record or withdraw) is committed here, under the next outbox number,
 * before the caller hears "queued". The agent sends the outbox in order,
 * a window at a time, each request signed afresh when sent and carrying
 * its number within the outbox's stream; the broker applies a stream in
 * order and exactly once (PROTOCOL.md §15). An entry is forgotten only when
 * a broker-signed reply decides it (an ack, or a refusal that sending again
 * would not change); its reply is kept a while in the done list. Lost or
 * unanswered sends go back to the oldest unanswered entry and are sent
 * again after an exponential backoff with jitter.
 *
 * Inbox: notifications from the broker, verified, stored in the broker's
 * order (seq 1, 2, 3 … per agency, no gaps), each once (by message id),
 * under the agent's own inbox numbers, before the broker is told it may
 * drop them. Each is handed to the agency's case system by ehx inbox,
 * by a hook command (run with the notification as JSON on standard input,
 * again until it exits 0, in order), and/or by a maildir-style spool.
 */
#ifndef EHX_AGENT_QUEUE_H
#define EHX_AGENT_QUEUE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <lmdb.h>

#include "ehx.pb-c.h"
#include "ehx/crypto.h"
#include "ehx/limits.h"

#define QUEUE_WINDOW 32         /* outbox requests in flight at once */
#define QUEUE_BATCH 256         /* changes in one local batch */
#define QUEUE_OUTBOX_MAX 1000000        /* default outbox_max */
#define QUEUE_HOOK_ARGS 16

struct flight {
	uint64_t num;
	unsigned char id[EHX_MSGID_LEN];
	int64_t sent;
	bool resend;
};

/* A decided outbox entry, committed at the next queue_flush. */
struct decided {
	uint64_t num;
	unsigned char id[EHX_MSGID_LEN];
	Ehx__Body *reply;               /* owned */
	unsigned char *env;             /* the reply's envelope, owned */
	size_t envlen;
	bool refused, unchanged;
};

struct queue {
	/* set by the caller before queue_open */
	const char *agency, *broker_id;
	const struct ehx_cert *broker_cert;
	const struct ehx_signer *signer;
	int64_t resend_ms;              /* no answer this long: send again */
	int64_t retry_max_ms;           /* backoff ceiling */
	int64_t poll_ms;                /* ask for notifications this often */
	int64_t hook_timeout_ms;
	uint64_t outbox_max;            /* changes held undelivered; 0: 1000000 */
	char *hook_argv[QUEUE_HOOK_ARGS + 1];   /* NULL: no hook */
	const char *spool;              /* NULL: no spool */
	mode_t spool_mode;              /* of its files: 0600, or 0640 */
	/* called for each decided entry after it is committed */
	void (*on_decided)(void *arg, uint64_t num, const Ehx__Body *reply);
	void *cb_arg;

	MDB_env *env;
	int lock_fd;                    /* flock on data_dir/agent.lock */
	MDB_dbi outbox, done, inbox, meta, inbox_ids, signins;
	unsigned char stream[EHX_STREAM_LEN];
	uint64_t stream_base;           /* stream number = outbox number - base */
	bool fresh_stream;              /* made by this process: no one else's */
	uint64_t next_num;              /* the next outbox number to give */
	uint64_t delivered, refused;
	struct flight win[QUEUE_WINDOW];
	size_t nwin;
	uint64_t next_send;             /* the next outbox number never sent */
	int64_t backoff_until, last_goback;
	unsigned backoff_step;
	int64_t last_contact;
	bool cred_hold;                 /* the broker refuses our credentials */
	bool key_refused;               /* … or our CURVE key, at the handshake */
	char last_error[256];
	struct decided *dec;
	size_t ndec, dec_cap;

	/* inbox */
	uint64_t inbox_last;            /* the inbox number stored last */
	uint64_t broker_seq;            /* the broker's seq taken last … */
	unsigned char broker_seq_id[EHX_MSGID_LEN];     /* … and its id */
	bool fetch_busy, fetch_again;
	unsigned char fetch_id[EHX_MSGID_LEN];
	int64_t fetch_deadline, next_fetch;
	int64_t spool_next;             /* spool again then (0: nothing due) */
	/* the hook */
	pid_t hook_pid;
	uint64_t hook_seq;
	int64_t hook_started, hook_next;
	unsigned hook_fails;
	char hook_error[256];
};

/* Open (creating) the store in dir. 0, or an error with err set. */
int queue_open(struct queue *q, const char *dir, char *err, size_t errsz);
void queue_close(struct queue *q);

/*
 * Commit n change bodies (payload and person; the rest is filled in when
 * sent) under consecutive numbers; their message ids are set. *first gets
 * the first number. 0 or an EHX_ERR_*: EHX_ERR_STORAGE_FULL when the
 * outbox would hold more than outbox_max changes (or the store is full),
 * and then nothing is queued.
 */
int queue_put(struct queue *q, Ehx__Body **bodies, size_t n,
    unsigned char (*ids)[EHX_MSGID_LEN], uint64_t *first, int64_t now);

/* Send what is due on dealer; lower *next to when to come back. */
void queue_tick(struct queue *q, void *dealer, int64_t now, int64_t *next);

/*
 * A verified broker reply (or pushed notification): true when it was the
 * queue's (taken, with *env kept when needed: set to NULL then).
 */
bool queue_reply(struct queue *q, Ehx__Body **b, unsigned char **env,
    size_t *envlen, int64_t now);

/* The connection dropped (everything in flight is sent again, at once,
 * when it is back) or came up (ask for notifications now). */
void queue_connection(struct queue *q, bool up, int64_t now);

/* The broker's ZAP handler refused our CURVE key at the handshake (status
 * is its ZAP status code): said in last_error until a handshake succeeds.
 * True the first time in a row, to log it once. */
bool queue_key_refused(struct queue *q, int status);

/* Commit what queue_reply decided; call after a burst of replies. */
void queue_flush(struct queue *q, int64_t now);

/* The done entry of num, if kept: 0 and *out (free with
 * ehx__done_entry__free_unpacked), or EHX_ERR_NOT_FOUND. */
int queue_done_get(struct queue *q, uint64_t num, Ehx__DoneEntry **out);
/* Whether num is still in the outbox. */
bool queue_pending(struct queue *q, uint64_t num);

/* How far first..last have got. Fills r (refusals malloc'd: free with
 * queue_report_free). */
int queue_report(struct queue *q, uint64_t first, uint64_t last,
    Ehx__OutboxReport *r);
void queue_report_free(Ehx__OutboxReport *r);

/* The agent's status (strings and arrays malloc'd: queue_status_free). */
int queue_status(struct queue *q, int64_t now, Ehx__AgentStatus *s);
void queue_status_free(Ehx__AgentStatus *s);

/* ehx inbox: list (all, or only unacknowledged), show, ack. Items are
 * unpacked (free with queue_inbox_free). */
int queue_inbox(struct queue *q, const Ehx__InboxRequest *req, int64_t now,
    Ehx__InboxList *out);
void queue_inbox_free(Ehx__InboxList *l);

/*
 * Open an envelope from the broker: signed by the broker's certificate,
 * within its dates, from the broker's id, to this agency. 0 with *body
 * (and *env when envp is not NULL), or -1 (logged).
 */
int queue_open_envelope(struct queue *q, const void *data, size_t len,
    Ehx__Envelope **envp, Ehx__Body **body);

#define QUEUE_SIGNINS 10000      /* sign-in log lines kept (a ring) */

/*
 * The web console's sign-in log (console/server.c): one line per event,
 * kept durably in the agent's store, numbered from 1; the newest
 * QUEUE_SIGNINS. The console's threads call these; LMDB serialises their
 * transactions with the main loop's.
 * queue_signin_put stores "TIME\tEVENT\tACCOUNT\tADDRESS" (each field
 * already made safe by the caller). queue_signin_list calls fn with up to
 * limit lines, newest first; 0 or EHX_ERR_STORAGE.
 */
int queue_signin_put(struct queue *q, int64_t now, const char *event,
    const char *account, const char *address);
int queue_signin_list(struct queue *q, size_t limit,
    void (*fn)(void *arg, uint64_t seq, const char *line, size_t len),
    void *arg);

/* Reap the hook command if it ended (call on SIGCHLD and in the loop). */
void queue_reap(struct queue *q, int64_t now);

#endif
