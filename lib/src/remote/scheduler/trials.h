/* remote/scheduler/trials.h — trials taken up from their definition's
 * pending records into full trial state (the common trial lifecycle,
 * trial.c), and their recording: running and finished records written
 * once per turn of the loop, one group commit per definition. */
#ifndef XP_REMOTE_SCHEDULER_TRIALS_H
#define XP_REMOTE_SCHEDULER_TRIALS_H

#include "remote/scheduler/defs.h"
#include "remote/scheduler/state.h"

#include "trial.h"

struct xp_sched_trial {
    xp_sched_def *def;
    xp_sched_batch *batch; /* NULL: resumed after a restart */
    xp_trial *t;
    size_t tasks_alive;
    xp_sched_trial *next_done; /* in the scheduler's trials to record */
    xp_sched_trial *next_mark; /* in its trials to record as running */
    bool marked;               /* recorded as running (or listed to be) */
    bool finishing;            /* listed to be recorded finished */
    int64_t marked_ms;         /* when its first step went out */
    bool ok;                   /* once finished */
    bson_t *report;            /* its line for the batch, until stored */
};

/* Takes up queued trials of every definition some worker runs, keeping
 * about twice the workers' slots of trials in memory. */
void xp__sched_trials_take_up(xp_scheduler *s);
/* Lists st for recording when its last task is back. */
void xp__sched_trial_maybe_finish(xp_scheduler *s, xp_sched_trial *st);
/* How long a trial runs before its running record is written: a trial
 * that finishes sooner is recorded once, finished (its record has when
 * it started either way). */
#define XP_SCHED_RUNNING_AFTER_MS 20
/* Lists st, whose first step went out, for its running record. */
void xp__sched_trial_mark_running(xp_scheduler *s, xp_sched_trial *st);
/* Records what this turn left (trials finished, and the running records
 * of trials out for XP_SCHED_RUNNING_AFTER_MS, or all of them with all),
 * one group commit per definition. */
void xp__sched_trials_record(xp_scheduler *s, bool all);
/* ms until a running record is due (0: now), or -1: none listed. */
int64_t xp__sched_trials_due(const xp_scheduler *s);
void xp__sched_trial_free(xp_sched_trial *st);

#endif /* XP_REMOTE_SCHEDULER_TRIALS_H */
