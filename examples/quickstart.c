/* quickstart.c — daskperiment's quickstart in C: two parameters, a
 * persisted preparation step, a score that fails on division by zero, and a
 * per-epoch metric. Run: ./quickstart a=1 b=2 --seed 7 */
#include <xp/xp.h>

static int prepare_data(xp_step *st, const xp_value *const *in, xp_value *out)
{
    return xp_set_double(out, xp_as_double(in[0]) + xp_as_double(in[1]));
}

static int calculate_score(xp_step *st, const xp_value *const *in,
                           xp_value *out)
{
    double s = xp_as_double(in[0]);
    if (s == 0)
        return xp_step_fail(st, "division by zero");
    for (int epoch = 0; epoch < 100; epoch++)
        if (xp_save_metric(st, "dummy_score", epoch,
                           100 - xp_random(st) * epoch) != 0)
            return xp_step_fail(st, "cannot save metric dummy_score");
    return xp_set_double(out, 10 / s);
}

XP_EXPERIMENT(quickstart_pj, ex)
{
    xp_node *a = xp_parameter(ex, "a");
    xp_node *b = xp_parameter(ex, "b");
    xp_node *d = XP_PERSIST(ex, prepare_data, a, b);
    return XP_RESULT(ex, calculate_score, d);
}
