/* big_result.c — a worker plugin for the tests of message limits: its
 * result is a string of `bytes` bytes. */
#include <xp/xp.h>

#include <stdlib.h>
#include <string.h>

static int s_fill(xp_step *st, const xp_value *const *in, xp_value *out)
{
    int64_t n = xp_as_int64(in[0]);
    if (n < 0 || n > (1 << 24))
        return xp_step_fail(st, "bytes out of range");
    char *text = malloc((size_t)n + 1);
    if (!text)
        return xp_step_fail(st, "out of memory");
    memset(text, 'x', (size_t)n);
    text[n] = '\0';
    int rc = xp_set_string(out, text);
    free(text);
    return rc;
}

XP_EXPERIMENT(big_result_pj, ex)
{
    xp_node *bytes = xp_parameter(ex, "bytes");
    return XP_RESULT(ex, s_fill, bytes);
}
