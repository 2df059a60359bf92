/* random_experiment.c — a result that depends on randomness. Each step
 * draws from its own generator seeded by (trial seed, step name), so
 * `--seed 1` always gives the same result, on any thread or host; without
 * a seed the result changes and xp logs a purity warning. */
#include <xp/xp.h>

/* Mean of n uniform draws, scaled: a noisy estimate of scale / 2. */
static int noisy_mean(xp_step *st, const xp_value *const *in, xp_value *out)
{
    int64_t n = xp_as_int64(in[0]);
    if (n <= 0)
        return xp_step_fail(st, "samples must be positive, got %lld",
                            (long long)n);
    double sum = 0;
    for (int64_t i = 0; i < n; i++)
        sum += xp_random(st);
    return xp_set_double(out, xp_as_double(in[1]) * sum / (double)n);
}

XP_EXPERIMENT(random_pj, ex)
{
    xp_node *samples = xp_parameter_literal(ex, "samples", "10");
    xp_node *scale = xp_parameter_literal(ex, "scale", "1.0");
    return XP_RESULT(ex, noisy_mean, samples, scale);
}
