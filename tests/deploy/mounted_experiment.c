/* mounted_experiment.c — the plugin tests/deploy/test_compose.sh puts in
 * the worker containers' mounted plugin directory (/plugins), which the
 * image does not carry: it shows that a user's own plugin is loaded from
 * there. One step: the product of its two parameters. */
#include <xp/xp.h>

static int multiply(xp_step *st, const xp_value *const *in, xp_value *out)
{
    return xp_set_double(out, xp_as_double(in[0]) * xp_as_double(in[1]));
}

XP_EXPERIMENT(deploy_mounted_pj, ex)
{
    xp_node *x = xp_parameter(ex, "x");
    xp_node *y = xp_parameter(ex, "y");
    return XP_RESULT(ex, multiply, x, y);
}
