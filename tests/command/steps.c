/* steps.c — a C step function in a shared library, for experiment files
 * that name it (function: {library: ..., symbol: twice}). */
#include <xp/xp.h>

XP_EXPORT int twice(xp_step *st, const xp_value *const *in, xp_value *out);

int twice(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    return xp_set_double(out, 2 * xp_as_double(in[0]));
}
