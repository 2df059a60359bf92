/* sleep_experiment.c — one step that sleeps `seconds` and returns it; a
 * slow trial for showing parallel runs, progress and interruption.
 * Run: ./sleep_experiment seconds=0.5 */
#include <xp/xp.h>

#include <errno.h>
#include <time.h>

static int sleep_seconds(xp_step *st, const xp_value *const *in, xp_value *out)
{
    xp_type t = xp_value_type(in[0]);
    double seconds = xp_as_double(in[0]);
    if ((t != XP_TYPE_DOUBLE && t != XP_TYPE_INT64) || !(seconds >= 0) ||
        seconds > 1e9)
        return xp_step_fail(st, "seconds must be a number in [0, 1e9]");

    time_t whole = (time_t)seconds;
    struct timespec left = {whole, (long)((seconds - (double)whole) * 1e9)};
    while (nanosleep(&left, &left) != 0)
        if (errno != EINTR)
            return xp_step_fail(st, "nanosleep failed");
    return xp_set_double(out, seconds);
}

XP_EXPERIMENT(sleep_pj, ex)
{
    xp_node *seconds = xp_parameter(ex, "seconds");
    return XP_RESULT(ex, sleep_seconds, seconds);
}
