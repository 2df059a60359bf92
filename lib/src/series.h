/* series.h — metric series for charts: the epoch window, epoch order and
 * the min/max downsampling behind xp_metric_series, on points already in
 * memory (so that their edge cases are testable without a store). */
#ifndef XP_SERIES_H
#define XP_SERIES_H

#include "xp/xp.h"

#include "store/metric.h"

#include <stddef.h>
#include <stdint.h>

/* Keeps the points of p with epoch_min <= epoch <= epoch_max, then puts
 * them in epoch order (a stable sort, done only when they are not in
 * order already: points saved in order stay as they are). */
void xp__series_window(xp_metric_points *p, int64_t epoch_min,
                       int64_t epoch_max);

/* The series of p (in epoch order) under max_points, as xp_metric_series
 * gives it: every point when max_points is 0 or p has no more, taking p's
 * arrays (p is empty afterwards); else at most max_points points: the
 * first and the last, and between them, for each of (max_points - 2) / 2
 * buckets of equal epoch width over [first epoch, last epoch], its
 * minimum and maximum point in epoch order (one point when they are the
 * same point; values that are NaN take no part in them, and a bucket of
 * NaN alone gives one NaN point, a gap). max_points 1 keeps the first
 * point alone. Caller owns result (xp_series_destroy). */
xp_series *xp__series_downsample(xp_metric_points *p, size_t max_points);

#endif /* XP_SERIES_H */
