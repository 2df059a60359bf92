/* trial.h — the trial lifecycle as a state machine, driven by the
 * in-process executor (xp_compute) or by the scheduler. Thread-safe. */
#ifndef XP_TRIAL_H
#define XP_TRIAL_H

#include "xp/xp.h"

#include "store/record.h"

#include <bson/bson.h>
#include <stdbool.h>

typedef struct xp_trial xp_trial;

/* The one rule for a trial's parameters (params: a document of name ->
 * value overriding the values set on ex, or NULL): every name is
 * declared (else XP_ENOTFOUND), and every declared parameter has a value,
 * whether the result reads it or not (else XP_EUNDEFINED naming all that
 * have none). xp__trial_start applies it; a scheduler validating a batch
 * calls it before recording anything. Takes ex->lock. */
int xp__trial_check_params(xp_experiment *ex, const xp_value *params,
                           xp_error_t *err);
/* Checks and resolves parameters (xp__trial_check_params: an error
 * allocates no id), picks the seed,
 * allocates the id and records the trial: as running by this process
 * (scheduler NULL), or as queued for the scheduler of that name (no pid,
 * never marked interrupted; resumed only by that scheduler). */
int xp__trial_start(xp_trial **out, xp_experiment *ex,
                    const xp_run_options *opts, const char *scheduler,
                    xp_error_t *err);
/* Takes up a trial recorded as queued (doc: its stored record) after a
 * scheduler restart: same id, parameters and seed; nothing is written.
 * The record's parameters follow xp__trial_check_params (an undeclared
 * name, or no value for one the result reads, is XP_ECORRUPT), except that
 * a record queued before that rule may lack one the result does not read:
 * it is null in the trial, and the record is left as accepted. */
int xp__trial_resume(xp_trial **out, xp_experiment *ex, const bson_t *doc,
                     xp_error_t *err);
int64_t xp__trial_id(const xp_trial *t);
/* The trial's record as started, with its trial_id (caller destroys):
 * what xp__trial_resume takes back. */
bson_t *xp__trial_record(const xp_trial *t);
uint64_t xp__trial_seed(const xp_trial *t);
/* A scheduler's queued trial whose first step went out: its record is
 * stored as running (pid 0: still the scheduler's) unless it is no longer
 * queued; a store that cannot leaves it queued. */
int xp__trial_record_running(xp_trial *t, xp_error_t *err);
/* Next step whose inputs are all computed, or NULL (none now, or the trial
 * failed). The step counts as in flight until xp__trial_step_done. */
xp_node *xp__trial_take_ready(xp_trial *t);
/* For an executor that sends steps elsewhere (the scheduler): what the
 * memo makes of ready step n (taken with xp__trial_take_ready) before it
 * is sent. RUN: send it. DONE: its recorded output was reused, the step
 * is done (as by xp__trial_step_done). WAIT: another trial of the
 * experiment runs its key now: ask again once that trial's step is done
 * (any step_done of a pure step of the experiment). Never blocks on
 * other trials. */
typedef enum {
    XP_TRIAL_MEMO_RUN,
    XP_TRIAL_MEMO_DONE,
    XP_TRIAL_MEMO_WAIT
} xp_trial_memo;
xp_trial_memo xp__trial_memo_dispatch(xp_trial *t, xp_node *n);
/* Step n of t, left waiting (WAIT), will not be asked again. */
void xp__trial_memo_abandon(xp_trial *t, xp_node *n);
/* Trial-owned output of node n (parameter value or computed step). */
const xp_value *xp__trial_value(const xp_trial *t, const xp_node *n);
/* Records the outcome of step n: out (taken, may be NULL on failure) or a
 * failure message. Unblocks dependents. */
void xp__trial_step_done(xp_trial *t, xp_node *n, xp_value *out,
                         const char *failure);
/* Metric sink of the trial (points flushed in chunks). */
int xp__trial_save_metric(void *trial, const char *name, int64_t epoch,
                          double value);
/* True when every needed step finished, or one failed and none is in
 * flight. */
bool xp__trial_done(xp_trial *t);
/* Checks purity, records the outcome with metrics, persisted values and
 * step hashes (spooling it when the backend cannot take it), logs. On
 * success *result (may be NULL) takes the result. */
int xp__trial_finish(xp_trial *t, xp_value **result, xp_error_t *err);
/* After xp__trial_finish: true when the trial is recorded as failed (or
 * will be, from the spool), with *why (trial-owned, may be NULL) its
 * description; false when it succeeded. */
bool xp__trial_failed(xp_trial *t, const char **why);
/* After xp__trial_finish: the backend could not take the finished trial
 * and it is kept in this machine's spool, to be written by the next open
 * of the experiment or xp_experiment_sync (xp__trial_finish failed, its
 * error saying where). */
bool xp__trial_spooled(const xp_trial *t);
/* Records where a remote step ran (trial document field "steps"). */
void xp__trial_note_step(xp_trial *t, const char *step,
                         const xp_record_step *where);
/* Keeps a command step's log document (taken) with the trial's persisted
 * values, replacing one kept for that step: the in-process executor and
 * the scheduler (from a worker's RESULT) alike. */
void xp__trial_keep_log(xp_trial *t, const char *step, xp_value *log);
/* Fails the trial with description (e.g. retries exhausted). */
void xp__trial_fail(xp_trial *t, const char *description);
void xp__trial_free(xp_trial **t);

#endif /* XP_TRIAL_H */
