/* memo_plugin.c — a worker plugin for the memo tests: a pure step that
 * takes 300 ms and appends a line to $XP_TEST_MEMO_COUNT each time it
 * runs, so the test sees what the workers executed. */
#include <xp/xp.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static int slow_add(xp_step *st, const xp_value *const *in, xp_value *out)
{
    const char *path = getenv("XP_TEST_MEMO_COUNT");
    FILE *f = path ? fopen(path, "a") : NULL;
    if (!f)
        return xp_step_fail(st, "XP_TEST_MEMO_COUNT is not writable");
    fputs("x\n", f);
    fclose(f);
    struct timespec ts = {0, 300 * 1000 * 1000};
    nanosleep(&ts, NULL);
    return xp_set_int64(out, xp_as_int64(in[0]) + xp_as_int64(in[1]));
}

static int report(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    return xp_set_int64(out, xp_as_int64(in[0]));
}

XP_EXPERIMENT(memo_remote_pj, ex)
{
    xp_node *a = xp_parameter(ex, "a");
    xp_node *b = xp_parameter(ex, "b");
    return XP_RESULT(ex, report, XP_PURE(ex, slow_add, a, b));
}
