/* test_series.c — the epoch window and min/max downsampling of metric
 * series (xp__series_window, xp__series_downsample, internal API) on
 * points in memory: no points, one, equal epochs, unsorted epochs, NaN,
 * max_points 1 to 3, a spike among a hundred thousand points, and random
 * series checked against the rules. */
#include "../common.h"

#include "series.h"

#include <math.h>

TestSuite(series);

/* Points with the given epochs and values (n of each). */
static xp_metric_points s_points(const int64_t *epochs, const double *values,
                                 size_t n)
{
    xp_metric_points p = {0};
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(xp__metric_points_add(&p, epochs[i], values[i]), 0);
    return p;
}

static bool s_same(double a, double b)
{
    return (isnan(a) && isnan(b)) || a == b;
}

/* Asserts that s holds exactly the n points given. */
static void s_assert_series(const xp_series *s, const int64_t *epochs,
                            const double *values, size_t n)
{
    cr_assert_eq(s->n, n, "%zu points, want %zu", s->n, n);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(s->epochs[i], epochs[i], "epoch %zu: %lld, want %lld", i,
                     (long long)s->epochs[i], (long long)epochs[i]);
        cr_assert(s_same(s->values[i], values[i]), "value %zu: %g, want %g", i,
                  s->values[i], values[i]);
    }
}

Test(series, no_points)
{
    xp_metric_points p = {0};
    xp__series_window(&p, INT64_MIN, INT64_MAX);
    xp_series *s = xp__series_downsample(&p, 10);
    cr_assert_eq(s->n, 0);
    cr_assert_eq(s->total, 0);
    cr_assert(!s->downsampled);
    cr_assert_not_null(s->epochs, "arrays even when empty");
    xp_series_destroy(&s);
    cr_assert_null(s);
    xp_series_destroy(&s); /* NULL-safe */
    xp_series_destroy(NULL);
}

Test(series, one_point_under_any_limit)
{
    for (size_t max = 0; max <= 3; max++) {
        int64_t e[] = {7};
        double v[] = {1.5};
        xp_metric_points p = s_points(e, v, 1);
        xp_series *s = xp__series_downsample(&p, max);
        s_assert_series(s, e, v, 1);
        cr_assert_eq(s->total, 1);
        cr_assert(!s->downsampled);
        xp_series_destroy(&s);
        xp__metric_points_clear(&p);
    }
}

Test(series, every_point_at_or_under_the_limit)
{
    int64_t e[] = {1, 2, 3, 4};
    double v[] = {4, 3, 2, 1};
    for (size_t max = 0; max <= 8; max += 4) {
        xp_metric_points p = s_points(e, v, 4);
        xp_series *s = xp__series_downsample(&p, max);
        s_assert_series(s, e, v, 4);
        cr_assert(!s->downsampled);
        cr_assert_eq(p.n, 0, "the points moved into the series");
        xp_series_destroy(&s);
        xp__metric_points_clear(&p);
    }
}

Test(series, max_points_one_two_three)
{
    int64_t e[] = {0, 1, 2, 3, 4, 5};
    double v[] = {0, 9, -9, 1, 2, 3};
    struct {
        size_t max, n;
        int64_t epochs[6];
    } want[] = {
        {1, 1, {0}},          /* the first point alone */
        {2, 2, {0, 5}},       /* first and last */
        {3, 2, {0, 5}},       /* no room for a bucket's two points */
        {4, 4, {0, 1, 2, 5}}, /* one bucket: its max, then its min */
        {5, 4, {0, 1, 2, 5}},
    };
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
        xp_metric_points p = s_points(e, v, 6);
        xp_series *s = xp__series_downsample(&p, want[k].max);
        cr_assert_eq(s->n, want[k].n, "max %zu: %zu points", want[k].max, s->n);
        cr_assert(s->downsampled);
        cr_assert_eq(s->total, 6);
        for (size_t i = 0; i < s->n; i++) {
            cr_assert_eq(s->epochs[i], want[k].epochs[i],
                         "max %zu, point %zu: epoch %lld", want[k].max, i,
                         (long long)s->epochs[i]);
            cr_assert_eq(s->values[i], v[s->epochs[i]]);
        }
        xp_series_destroy(&s);
        xp__metric_points_clear(&p);
    }
}

Test(series, equal_epochs_keep_their_order)
{
    enum { N = 100 };
    int64_t e[N];
    double v[N];
    for (int i = 0; i < N; i++) {
        e[i] = 42;
        v[i] = (double)((i * 37) % N);
    }
    xp_metric_points p = s_points(e, v, N);
    xp__series_window(&p, INT64_MIN, INT64_MAX);
    xp_series *s = xp__series_downsample(&p, 10);
    /* One bucket (the range is a single epoch): the first point, the
     * interior's minimum and maximum in saved order, the last point. */
    cr_assert_leq(s->n, 10);
    cr_assert_eq(s->n, 4, "%zu points", s->n);
    cr_assert_eq(s->values[0], v[0], "first kept");
    cr_assert_eq(s->values[3], v[N - 1], "last kept");
    double lo = INFINITY, hi = -INFINITY;
    int at_lo = 0, at_hi = 0;
    for (int i = 1; i < N - 1; i++) {
        if (v[i] < lo)
            lo = v[i], at_lo = i;
        if (v[i] >= hi)
            hi = v[i], at_hi = i;
    }
    double mid[2] = {at_lo < at_hi ? lo : hi, at_lo < at_hi ? hi : lo};
    cr_assert_eq(s->values[1], mid[0], "%g", s->values[1]);
    cr_assert_eq(s->values[2], mid[1], "%g", s->values[2]);
    for (size_t i = 0; i < s->n; i++)
        cr_assert_eq(s->epochs[i], 42);
    xp_series_destroy(&s);
    xp__metric_points_clear(&p);
}

Test(series, unsorted_epochs_sorted_stably)
{
    int64_t e[] = {3, 1, 2, 1, 3, 0};
    double v[] = {30, 10, 20, 11, 31, 0};
    xp_metric_points p = s_points(e, v, 6);
    xp__series_window(&p, INT64_MIN, INT64_MAX);
    int64_t we[] = {0, 1, 1, 2, 3, 3};
    double wv[] = {0, 10, 11, 20, 30, 31};
    xp_series *s = xp__series_downsample(&p, 0);
    s_assert_series(s, we, wv, 6);
    xp_series_destroy(&s);
    xp__metric_points_clear(&p);
}

Test(series, window_keeps_its_epochs_inclusive)
{
    int64_t e[] = {5, 1, 4, 2, 3, INT64_MIN, INT64_MAX};
    double v[] = {5, 1, 4, 2, 3, -1, -2};
    xp_metric_points p = s_points(e, v, 7);
    xp__series_window(&p, 2, 4);
    int64_t we[] = {2, 3, 4};
    double wv[] = {2, 3, 4};
    xp_series *s = xp__series_downsample(&p, 0);
    s_assert_series(s, we, wv, 3);
    cr_assert_eq(s->total, 3);
    xp_series_destroy(&s);
    xp__metric_points_clear(&p);

    p = s_points(e, v, 7);
    xp__series_window(&p, INT64_MIN, INT64_MAX);
    cr_assert_eq(p.n, 7, "the extreme epochs are in the full range");
    cr_assert_eq(p.epochs[0], INT64_MIN);
    cr_assert_eq(p.epochs[6], INT64_MAX);
    /* A span of 2^64 - 1 epochs still buckets. */
    s = xp__series_downsample(&p, 4);
    cr_assert_leq(s->n, 4);
    cr_assert_eq(s->epochs[0], INT64_MIN);
    cr_assert_eq(s->epochs[s->n - 1], INT64_MAX);
    xp_series_destroy(&s);
    xp__metric_points_clear(&p);
}

Test(series, window_after_an_ordered_prefix)
{
    /* In order and in the window up to 10, out of order after it. */
    int64_t e[] = {1, 2, 3, 10, 5, 4, 3};
    double v[] = {1, 2, 3, 10, 5, 4, 3.5};
    xp_metric_points p = s_points(e, v, 7);
    xp__series_window(&p, 0, 5);
    int64_t we[] = {1, 2, 3, 3, 4, 5};
    double wv[] = {1, 2, 3, 3.5, 4, 5};
    xp_series *s = xp__series_downsample(&p, 0);
    s_assert_series(s, we, wv, 6);
    xp_series_destroy(&s);
    xp__metric_points_clear(&p);
}

Test(series, nan_is_a_gap_only_where_nothing_else_is)
{
    enum { N = 40 };
    int64_t e[N];
    double v[N];
    /* Epochs 0..39 in 4 buckets of 10 (max_points 10); bucket 1 (10-19)
     * holds NaN alone, bucket 2 (20-29) NaN and numbers. */
    for (int i = 0; i < N; i++) {
        e[i] = i;
        v[i] = (i >= 10 && i < 20) || i % 2 ? NAN : (double)i;
    }
    v[N - 1] = 100;
    xp_metric_points p = s_points(e, v, N);
    xp_series *s = xp__series_downsample(&p, 10);
    cr_assert_leq(s->n, 10);
    size_t gaps = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (!isnan(s->values[i]))
            continue;
        gaps++;
        cr_assert(s->epochs[i] >= 10 && s->epochs[i] < 20,
                  "NaN at epoch %lld outside the NaN-only bucket",
                  (long long)s->epochs[i]);
    }
    cr_assert_eq(gaps, 1, "one gap point, got %zu", gaps);
    /* Bucket 2's numbers are 20..28 (even): its min and max. */
    bool min20 = false, max28 = false;
    for (size_t i = 0; i < s->n; i++) {
        min20 |= s->epochs[i] == 20;
        max28 |= s->epochs[i] == 28;
    }
    cr_assert(min20 && max28, "bucket 2 lost its extremes");
    xp_series_destroy(&s);
    xp__metric_points_clear(&p);
}

Test(series, a_spike_survives_among_a_hundred_thousand_points)
{
    enum { N = 100000 };
    xp_metric_points p = {0};
    for (int i = 0; i < N; i++)
        xp__metric_points_add(&p, i, i == 61234 ? 1e6 : sin(i * 0.001));
    xp_series *s = xp__series_downsample(&p, 500);
    cr_assert_leq(s->n, 500);
    cr_assert_geq(s->n, 400, "%zu points", s->n);
    cr_assert_eq(s->total, N);
    cr_assert(s->downsampled);
    bool spike = false;
    for (size_t i = 0; i < s->n; i++)
        spike |= s->epochs[i] == 61234 && s->values[i] == 1e6;
    cr_assert(spike, "the spike is gone");
    cr_assert_eq(s->epochs[0], 0);
    cr_assert_eq(s->epochs[s->n - 1], N - 1);
    xp_series_destroy(&s);
    xp__metric_points_clear(&p);
}

/* Random series, random limits: at most max_points points, all of them
 * input points in epoch order, first and last kept, and the minimum and
 * maximum of the interior present when there is a bucket. */
Test(series, random_series_follow_the_rules)
{
    uint64_t x = 0x9e3779b97f4a7c15u;
    for (int round = 0; round < 200; round++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t n = 2 + x % 3000, max = 1 + (x >> 20) % 80;
        xp_metric_points p = {0};
        int64_t e = (int64_t)(x >> 40) - (1 << 23);
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            e += (int64_t)(x % 5); /* repeats allowed */
            xp__metric_points_add(&p, e, (double)(x % 1000) - 500);
        }
        double lo = INFINITY, hi = -INFINITY;
        for (size_t i = 1; i + 1 < n; i++) {
            lo = fmin(lo, p.values[i]);
            hi = fmax(hi, p.values[i]);
        }
        int64_t first = p.epochs[0], last = p.epochs[n - 1];
        xp_series *s = xp__series_downsample(&p, max);
        cr_assert_leq(s->n, n > max ? max : n, "n %zu max %zu: %zu", n, max,
                      s->n);
        cr_assert_eq(s->epochs[0], first);
        if (max > 1)
            cr_assert_eq(s->epochs[s->n - 1], last);
        bool has_lo = false, has_hi = false;
        for (size_t i = 0; i < s->n; i++) {
            if (i > 0)
                cr_assert_geq(s->epochs[i], s->epochs[i - 1], "order");
            if (i > 0 && i + 1 < s->n) {
                has_lo |= s->values[i] == lo;
                has_hi |= s->values[i] == hi;
            }
        }
        if (n > max && max >= 4 && n > 2)
            cr_assert(has_lo && has_hi, "n %zu max %zu lost an extreme", n,
                      max);
        xp_series_destroy(&s);
        xp__metric_points_clear(&p);
    }
}
