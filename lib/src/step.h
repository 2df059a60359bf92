/* step.h — running one step: its seed, its metric sink, the
 * failure it reports. */
#ifndef XP_STEP_H
#define XP_STEP_H

#include "xp/xp.h"

#include <stdbool.h>
#include <stddef.h>

/* Where xp_save_metric sends points. */
typedef struct {
    int (*save)(void *ctx, const char *name, int64_t epoch, double value);
    void *ctx;
} xp_metric_sink;

/* Runs step n of trial trial_id (its generator seeded from trial_seed and
 * its name) on inputs, writing out. On failure returns -1 with the step's
 * message in failure. */
int xp__step_run(const xp_node *n, int64_t trial_id, uint64_t trial_seed,
                 const xp_value *const *inputs, const xp_metric_sink *sink,
                 xp_value *out, char *failure, size_t failure_size);

/* xp__step_run, and for a command step its log document (caller owns
 * *log, NULL for a C step; set on failure too). */
int xp__step_run_log(const xp_node *n, int64_t trial_id, uint64_t trial_seed,
                     const xp_value *const *inputs, const xp_metric_sink *sink,
                     xp_value *out, xp_value **log, char *failure,
                     size_t failure_size);

/* True while the calling thread runs a step. */
bool xp__in_step(void);

#endif /* XP_STEP_H */
