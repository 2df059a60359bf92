/* remote/worker.h — the xp-worker engine (its connection loop, slots and
 * plugins are in remote/worker/). */
#ifndef XP_REMOTE_WORKER_H
#define XP_REMOTE_WORKER_H

#include "xp/xp.h"

#include <stddef.h>

typedef struct {
    const char *endpoint; /* scheduler, e.g. tcp://host:5555 */
    int slots; /* parallel tasks, up to XP_WORKER_SLOTS_MAX; 0: CPU count */
    const char *const *plugins; /* experiment shared libraries */
    size_t n_plugins;
    int heartbeat_ms;       /* 0: XP_HEARTBEAT_MS_DEFAULT (WELCOME's wins) */
    size_t max_message;     /* bytes; 0: XP_MAX_MESSAGE_DEFAULT */
    const char *key;        /* CURVE: own NAME.key(_secret); NULL: plain */
    const char *server_key; /* CURVE: the scheduler's scheduler.key */
} xp_worker_options;

#define XP_WORKER_SLOTS_MAX 1024

typedef struct xp_worker xp_worker;

/* Loads every plugin (one-line error naming the bad one), starts the slot
 * threads and connects to the scheduler. Caller owns *out. */
int xp__worker_new(xp_worker **out, const xp_worker_options *opts,
                   xp_error_t *err);
/* Registers and runs tasks until xp__worker_stop; sends BYE, returns 0. */
int xp__worker_run(xp_worker *w);
/* Thread- and async-signal-safe. */
void xp__worker_stop(xp_worker *w);
/* Slots running a step right now (after run returned: steps that would
 * make xp__worker_destroy wait for them). */
int xp__worker_running(const xp_worker *w);
/* Waits for running steps, unloads plugins. NULL-safe; sets *w to NULL. */
void xp__worker_destroy(xp_worker **w);

#endif /* XP_REMOTE_WORKER_H */
