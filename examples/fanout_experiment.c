/* fanout_experiment.c — one trial, many independent steps: `part_0000` …
 * `part_0999` each compute x * i + 1 from parameter x, and `total` sums
 * them. Run in-process it exercises the step thread pool; on a scheduler
 * each part is a task of its own, which is what bench/distributed.sh uses
 * to measure task dispatch without the per-trial records.
 * Run: ./fanout_experiment x=2 */
#include <xp/xp.h>

#include <stdio.h>

#define FANOUT_WIDTH 1000

static int part(xp_step *st, const xp_value *const *in, xp_value *out)
{
    /* The step's index is in its name: part_NNNN. */
    const char *name = xp_step_name(st);
    long i = 0;
    if (sscanf(name, "part_%ld", &i) != 1)
        return xp_step_fail(st, "unexpected step name");
    return xp_set_int64(out, xp_as_int64(in[0]) * i + 1);
}

static int total(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    int64_t sum = 0;
    for (size_t i = 0; i < FANOUT_WIDTH; i++)
        sum += xp_as_int64(in[i]);
    return xp_set_int64(out, sum);
}

XP_EXPERIMENT(fanout_pj, ex)
{
    xp_node *x = xp_parameter_literal(ex, "x", "2");
    xp_node *parts[FANOUT_WIDTH];
    for (int i = 0; i < FANOUT_WIDTH; i++) {
        char name[32];
        snprintf(name, sizeof name, "part_%04d", i);
        /* One function under 1,000 names: code capture finds a function
         * by its step's name, so the parts are registered without a
         * source location (their code context is the symbol only). */
        parts[i] = xp_step_add(ex, name, part, 1, &x, NULL, 0);
    }
    return xp_result(xp_step_add(ex, "total", total, FANOUT_WIDTH, parts,
                                 __FILE__, __LINE__));
}
