/* step.c — running one step: its context (trial id, per-step seed and
 * generator, failure message), the thread-local "current step", and where
 * its metric points go. The in-process executor and xp-worker both run
 * steps through xp__step_run. */
#include "step.h"

#include "command/run.h"
#include "graph.h"
#include "util/error.h"
#include "util/log.h"
#include "util/rng.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct xp_step {
    const xp_node *node;
    int64_t trial_id;
    uint64_t seed;
    xp_rng rng;
    xp_metric_sink sink;
    char message[400];
};

static _Thread_local xp_step *s_current;

bool xp__in_step(void)
{
    return s_current != NULL;
}

int xp_step_fail(xp_step *st, const char *fmt, ...)
{
    if (st && fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(st->message, sizeof st->message, fmt, ap);
        va_end(ap);
        for (char *p = st->message; *p; p++)
            if (*p == '\n' || *p == '\r')
                *p = ' ';
        if (!st->message[0])
            snprintf(st->message, sizeof st->message, "failed");
    }
    return -1;
}

int64_t xp_step_trial_id(const xp_step *st)
{
    return st ? st->trial_id : 0;
}

const char *xp_step_name(const xp_step *st)
{
    return st ? st->node->name : NULL;
}

uint64_t xp_step_seed(const xp_step *st)
{
    return st ? st->seed : 0;
}

uint64_t xp_random_u64(xp_step *st)
{
    return st ? xp__rng_next(&st->rng) : 0;
}

double xp_random(xp_step *st)
{
    return (double)(xp_random_u64(st) >> 11) * 0x1.0p-53;
}

int xp_current_trial_id(int64_t *id, xp_error_t *err)
{
    if (!s_current)
        return xp__error(err, XP_DOMAIN_TRIAL, XP_ESTATE,
                         "the current trial id is only available inside a "
                         "step (use the last trial id)");
    if (id)
        *id = s_current->trial_id;
    return 0;
}

int xp_save_metric(xp_step *st, const char *name, int64_t epoch, double value)
{
    if (!st)
        return -1;
    xp_error_t e;
    if (xp_check_name("metric", name, &e) != 0) {
        xp_step_fail(st, "%s", e.message);
        return -1;
    }
    return st->sink.save(st->sink.ctx, name, epoch, value);
}

/* A command step: the program runs instead of a function. */
static int s_run_command(const xp_node *n, xp_step *st,
                         const xp_value *const *inputs, xp_value *out,
                         xp_value **log)
{
    int rc = xp__command_run(n->command, st, inputs, out, log, st->message,
                             sizeof st->message);
    if (rc != 0 && !st->message[0])
        snprintf(st->message, sizeof st->message, "failed");
    return rc;
}

int xp__step_run(const xp_node *n, int64_t trial_id, uint64_t trial_seed,
                 const xp_value *const *inputs, const xp_metric_sink *sink,
                 xp_value *out, char *failure, size_t failure_size)
{
    xp_value *log = NULL;
    int rc = xp__step_run_log(n, trial_id, trial_seed, inputs, sink, out, &log,
                              failure, failure_size);
    xp_value_destroy(&log);
    return rc;
}

int xp__step_run_log(const xp_node *n, int64_t trial_id, uint64_t trial_seed,
                     const xp_value *const *inputs, const xp_metric_sink *sink,
                     xp_value *out, xp_value **log, char *failure,
                     size_t failure_size)
{
    *log = NULL;
    xp_step st = {.node = n, .trial_id = trial_id, .sink = *sink};
    st.seed = xp__step_seed(trial_seed, n->name);
    xp__rng_seed(&st.rng, st.seed);
    /* For legacy code; process-wide, see docs/guide.md. */
    srand((unsigned)st.seed);
    srand48((long)st.seed);
    xp__log(XP_LOG_DEBUG, "Running step %s (trial id=%lld)", n->name,
            (long long)trial_id);
    xp_step *outer = s_current;
    s_current = &st;
    int rc;
    if (n->command)
        rc = s_run_command(n, &st, inputs, out, log);
    else
        rc = n->fn(&st, inputs, out);
    s_current = outer;
    if (rc != 0)
        snprintf(failure, failure_size, "%s",
                 st.message[0] ? st.message : "step returned an error");
    return rc == 0 ? 0 : -1;
}
