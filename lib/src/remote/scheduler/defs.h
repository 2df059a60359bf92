/* remote/scheduler/defs.h — experiment definitions (experiment id + code
 * hash): each a graph built from its code document, with the queued
 * trials waiting for a worker with that code; its store is opened only
 * while trials need it, and the definition is dropped after keep_ms
 * unused. */
#ifndef XP_REMOTE_SCHEDULER_DEFS_H
#define XP_REMOTE_SCHEDULER_DEFS_H

#include "remote/scheduler/pending.h"
#include "remote/scheduler/state.h"

#include "experiment.h"
#include "util/names.h"

typedef struct {
    char key[XP_ID_MAX + 40]; /* "experiment/code_hash" */
    /* The definition without a store (ids, code, graph): what checks a
     * submission and names its tasks. Registering costs no store. */
    xp_experiment *graph;
    /* The same opened on the backend, only while trials need it
     * (xp__sched_def_open); NULL otherwise. */
    xp_experiment *ex;
    xp_sched_fifo pending;  /* trials not taken up yet */
    size_t active;          /* trials taken up and not finished */
    size_t batches;         /* batches kept that refer to it */
    int64_t unused_ms;      /* since when nothing needs it; 0: in use */
    int64_t idle_ms;        /* since when its open store has no trial */
    int64_t open_failed_ms; /* when opening its store last failed; 0: never */
    size_t spooled;         /* finished trials its spool keeps */
    int64_t sync_at_ms;     /* when to try writing them next */
    int64_t sync_wait_ms;   /* between tries, doubling to S_SYNC_MAX_MS */
    bool announced; /* "waiting for code" logged since the last worker */
    /* A moving average of how long its steps ran on the workers (s),
     * which tells how many tasks a worker may hold beyond its slots;
     * timed: at least one came back. */
    double step_s;
    bool timed;
} xp_sched_def;

void xp__sched_defs_init(xp_scheduler *s);
/* Closes every definition, dropping its pending records (they stay
 * queued in the backend). */
void xp__sched_defs_fini(xp_scheduler *s);
xp_sched_def *xp__sched_def_get(xp_scheduler *s, const char *experiment,
                                const char *code_hash);
/* The definition the workers of experiment registered last, or NULL. */
xp_sched_def *xp__sched_def_latest(xp_scheduler *s, const char *experiment);
/* Registers (once) a definition from its code document, which must hash
 * to code_hash; from_worker: a worker runs it now, so it becomes the
 * experiment's latest. NULL with err when the code does not build. */
xp_sched_def *xp__sched_def_register(xp_scheduler *s, const char *experiment,
                                     const char *code_hash, const bson_t *code,
                                     bool from_worker, xp_error_t *err);
/* The definition's experiment open on the backend, opened now when it is
 * not (trials are about to be recorded or taken up); def-owned. NULL with
 * err when the store cannot be opened. */
xp_experiment *xp__sched_def_open(xp_scheduler *s, xp_sched_def *def,
                                  xp_error_t *err);
/* n finished trials of def are kept in its spool (its backend could not
 * take them): they are written again from there once it can, and the
 * store stays open until they are. */
void xp__sched_def_spooled(xp_scheduler *s, xp_sched_def *def, size_t n);
/* Writes what the spools keep (when it is time to try again), closes the
 * stores no trial has needed for opts.keep_ms, and drops the definitions
 * nothing has needed for as long. */
void xp__sched_defs_expire(xp_scheduler *s);

#endif /* XP_REMOTE_SCHEDULER_DEFS_H */
