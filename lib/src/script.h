/* script.h — script mode: the arguments of an experiment
 * program (exposed for tests). */
#ifndef XP_SCRIPT_H
#define XP_SCRIPT_H

#include "xp/xp.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    char **names; /* key=value pairs in order */
    char **values;
    size_t n;
    bool has_seed;
    uint64_t seed;
    const char *backend;
    const char *log_level;
    const char *scheduler; /* run on an xp-scheduler instead */
    xp_memo_mode memo;     /* --no-memo, --refresh */
    int64_t reproduce;     /* --reproduce [ID:]TRIAL, or 0 */
    char *reproduce_id;    /* its ID, or NULL */
    bool help;
} xp_script_args;

/* What script mode runs: experiment id, defined by define(ex, ctx)
 * (returns the result node), with check(ctx, params, err) (may be NULL)
 * checking and converting the parsed parameter values before the
 * graph's rule (a file's parameter types). */
typedef struct {
    const char *id;
    xp_node *(*define)(xp_experiment *ex, void *ctx);
    int (*check)(void *ctx, xp_value *params, xp_error_t *err);
    void *ctx;
} xp_script_def;

/* xp_main for any definition: the same arguments, exit codes, records. */
int xp__script_main(const xp_script_def *def, int argc, char **argv);

int xp__script_parse(xp_script_args *a, int argc, char **argv, xp_error_t *err);
void xp__script_args_free(xp_script_args *a);
/* A trial id argument: a positive decimal integer. */
int xp__script_parse_trial(const char *text, uint64_t *id, xp_error_t *err);

#endif /* XP_SCRIPT_H */
