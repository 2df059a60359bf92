/* steps.c — a C step in a shared library that an experiment file names
 * (function: {library, symbol: scale}); built twice, as the original
 * and as a "rebuilt" library whose step computes something else
 * (-DXP_STEPS_V2), for xp reproduce's code-change case. */
#include <xp/xp.h>

XP_EXPORT int scale(xp_step *st, const xp_value *const *in, xp_value *out);

int scale(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
#ifdef XP_STEPS_V2
    return xp_set_double(out, 3 * xp_as_double(in[0]));
#else
    return xp_set_double(out, 2 * xp_as_double(in[0]));
#endif
}
