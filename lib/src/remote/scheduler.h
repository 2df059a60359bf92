/* remote/scheduler.h — the xp-scheduler engine (its modules are in
 * remote/scheduler/, its loop in remote/scheduler/scheduler.c). */
#ifndef XP_REMOTE_SCHEDULER_H
#define XP_REMOTE_SCHEDULER_H

#include "xp/xp.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *bind;    /* e.g. tcp://127.0.0.1:5555 or tcp://0.0.0.0:5555 */
    const char *backend; /* where experiments are recorded */
    int heartbeat_ms;    /* 0: XP_HEARTBEAT_MS_DEFAULT */
    int max_attempts;    /* per task before its trial fails; 0: 3 */
    size_t max_message;  /* bytes; 0: XP_MAX_MESSAGE_DEFAULT */
    /* Owner name written on the trials it accepts; a restarted scheduler
     * takes up only its own. NULL: "<hostname> <bind>". */
    const char *name;
    const char *keys; /* CURVE: directory with scheduler.key and
                       * authorized/; NULL or "": plain */
    bool insecure;    /* plain on a non-loopback address */
    /* Trials one client (its public key, else its connection) may have
     * accepted and not finished; 0: XP_MAX_QUEUED_PER_CLIENT_DEFAULT. */
    size_t max_queued_per_client;
    /* How long a finished batch and an unused definition are kept;
     * 0: XP_KEEP_MS_DEFAULT. */
    int64_t keep_ms;
    /* Experiments one worker may announce in its HELLO; a HELLO with
     * more is refused whole. 0: XP_MAX_EXPERIMENTS_PER_WORKER_DEFAULT. */
    size_t max_experiments_per_worker;
} xp_scheduler_options;

#define XP_KEEP_MS_DEFAULT (10 * 60 * 1000)
#define XP_MAX_ATTEMPTS_DEFAULT 3

#define XP_MAX_QUEUED_PER_CLIENT_DEFAULT 1000000
#define XP_MAX_EXPERIMENTS_PER_WORKER_DEFAULT 64
#define XP_MAX_EXPERIMENTS_PER_WORKER_MAX 100000

typedef struct xp_scheduler xp_scheduler;

/* Refuses options the scheduler must not run with (a non-loopback bind
 * without keys unless insecure); one-line error. */
int xp__scheduler_check(const xp_scheduler_options *opts, xp_error_t *err);
/* Checks opts, binds; caller owns *out. */
int xp__scheduler_new(xp_scheduler **out, const xp_scheduler_options *opts,
                      xp_error_t *err);
/* The endpoint actually bound (resolves tcp://...:* ports). */
const char *xp__scheduler_endpoint(const xp_scheduler *s);
/* Serves until xp__scheduler_stop or interrupt. */
int xp__scheduler_run(xp_scheduler *s);
/* Async-signal-safe. */
void xp__scheduler_stop(xp_scheduler *s);
void xp__scheduler_destroy(xp_scheduler **s);

#endif /* XP_REMOTE_SCHEDULER_H */
