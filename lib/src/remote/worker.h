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
    /* As a batch job: */
    int death_timeout; /* s without the scheduler before exiting; 0: never */
    int lifetime;      /* s after which it drains; 0: no limit */
    int drain_timeout; /* s a drain waits for running steps; 0: default */
    /* The batch job it runs in, recorded with every step it runs; job_id
     * NULL: Slurm's (SLURM_ARRAY_JOB_ID and SLURM_ARRAY_TASK_ID, else
     * SLURM_JOB_ID), if any; job_index -1: none; job_node NULL:
     * SLURMD_NODENAME. */
    const char *job_id;
    int job_index;
    const char *job_node;
    /* Tasks it holds waiting beyond its slots, so that short steps do not
     * wait for a round trip to the scheduler each: 0:
     * XP_WORKER_PREFETCH_DEFAULT; negative: none (one task a slot). */
    int prefetch;
} xp_worker_options;

#define XP_WORKER_PREFETCH_DEFAULT 64
#define XP_WORKER_PREFETCH_MAX 65536 /* XP_MSG_PREFETCH_MAX */

/* How long a drain waits for running steps unless told (s): within the
 * 120 s that `#SBATCH --signal=B:TERM@120` leaves before the walltime. */
#define XP_WORKER_DRAIN_TIMEOUT_DEFAULT 60
/* What xp__worker_run returns when --death-timeout ended it. */
#define XP_WORKER_ORPHANED 3

#define XP_WORKER_SLOTS_MAX 1024

typedef struct xp_worker xp_worker;

/* Loads every plugin (one-line error naming the bad one), starts the slot
 * threads and connects to the scheduler. Caller owns *out. */
int xp__worker_new(xp_worker **out, const xp_worker_options *opts,
                   xp_error_t *err);
/* Registers and runs tasks until xp__worker_stop, the end of a drain or
 * the death timeout; sends BYE. 0, or XP_WORKER_ORPHANED when the
 * scheduler was unreachable for death_timeout seconds. */
int xp__worker_run(xp_worker *w);
/* Thread- and async-signal-safe: stops now (running steps' tasks go back
 * to the scheduler's queue). */
void xp__worker_stop(xp_worker *w);
/* Thread- and async-signal-safe: takes no more tasks (they are refused as
 * busy, so the scheduler gives them to others), lets the running steps
 * finish for up to drain_timeout seconds, then stops. What SIGTERM does,
 * and the end of lifetime. */
void xp__worker_drain(xp_worker *w);
/* Slots running a step right now (after run returned: steps that would
 * make xp__worker_destroy wait for them). */
int xp__worker_running(const xp_worker *w);
/* Waits for running steps, unloads plugins. NULL-safe; sets *w to NULL. */
void xp__worker_destroy(xp_worker **w);

#endif /* XP_REMOTE_WORKER_H */
