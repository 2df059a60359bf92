/* simple_experiment.c — the smallest experiment: result a + b + 1, kept an
 * integer when both parameters are integers.
 * Run: ./simple_experiment a=1 b=2 */
#include <xp/xp.h>

static int calculate(xp_step *st, const xp_value *const *in, xp_value *out)
{
    xp_type a = xp_value_type(in[0]), b = xp_value_type(in[1]);
    if ((a != XP_TYPE_INT64 && a != XP_TYPE_DOUBLE) ||
        (b != XP_TYPE_INT64 && b != XP_TYPE_DOUBLE))
        return xp_step_fail(st, "a and b must be numbers");
    if (a == XP_TYPE_INT64 && b == XP_TYPE_INT64)
        return xp_set_int64(out, xp_as_int64(in[0]) + xp_as_int64(in[1]) + 1);
    return xp_set_double(out, xp_as_double(in[0]) + xp_as_double(in[1]) + 1);
}

XP_EXPERIMENT(simple_experiment_pj, ex)
{
    xp_node *a = xp_parameter(ex, "a");
    xp_node *b = xp_parameter(ex, "b");
    return XP_RESULT(ex, calculate, a, b);
}
