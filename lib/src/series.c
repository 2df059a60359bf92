/* series.c — what charts read of a trial's metrics: the names it saved,
 * and one metric as a series kept to an epoch window, in epoch order, and
 * cut down by min/max bucketing, so that a million points draw as a few
 * thousand with every spike still there. */
#include "series.h"

#include "experiment.h"
#include "store/store.h"
#include "util/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- order */

/* A point with its position, for a stable sort by epoch. */
typedef struct {
    int64_t epoch;
    double value;
    size_t at;
} s_point;

static int s_cmp_point(const void *a, const void *b)
{
    const s_point *x = a, *y = b;
    if (x->epoch != y->epoch)
        return x->epoch < y->epoch ? -1 : 1;
    return (x->at > y->at) - (x->at < y->at);
}

static void s_sort(xp_metric_points *p)
{
    s_point *tmp = bson_malloc(p->n * sizeof *tmp);
    for (size_t i = 0; i < p->n; i++)
        tmp[i] = (s_point){p->epochs[i], p->values[i], i};
    qsort(tmp, p->n, sizeof *tmp, s_cmp_point);
    for (size_t i = 0; i < p->n; i++) {
        p->epochs[i] = tmp[i].epoch;
        p->values[i] = tmp[i].value;
    }
    bson_free(tmp);
}

void xp__series_window(xp_metric_points *p, int64_t epoch_min,
                       int64_t epoch_max)
{
    /* The common case, every point in the window and in order, moves
     * nothing. */
    size_t i = 0;
    while (i < p->n && p->epochs[i] >= epoch_min && p->epochs[i] <= epoch_max &&
           (i == 0 || p->epochs[i] >= p->epochs[i - 1]))
        i++;
    size_t k = i;
    bool sorted = true;
    for (; i < p->n; i++) {
        int64_t e = p->epochs[i];
        if (e < epoch_min || e > epoch_max)
            continue;
        if (k > 0 && e < p->epochs[k - 1])
            sorted = false;
        p->epochs[k] = e;
        p->values[k] = p->values[i];
        k++;
    }
    p->n = k;
    if (!sorted)
        s_sort(p);
}

/* ---------------------------------------------------------------- buckets */

/* One bucket while its points are walked: where its minimum and maximum
 * are (among values that are not NaN) or its first NaN. */
typedef struct {
    bool open, has_value;
    size_t lo, hi, nan_at;
} s_bucket;

static void s_emit(xp_series *s, const xp_metric_points *p, size_t i)
{
    s->epochs[s->n] = p->epochs[i];
    s->values[s->n] = p->values[i];
    s->n++;
}

static void s_bucket_add(s_bucket *b, const xp_metric_points *p, size_t i)
{
    double v = p->values[i];
    if (!b->open) {
        *b = (s_bucket){.open = true, .nan_at = i};
    }
    if (isnan(v))
        return;
    if (!b->has_value) {
        b->has_value = true;
        b->lo = b->hi = i;
        return;
    }
    /* The first minimum and the last maximum: a flat bucket gives its
     * two ends. */
    if (v < p->values[b->lo])
        b->lo = i;
    if (v >= p->values[b->hi])
        b->hi = i;
}

/* The bucket's points, in epoch order; the bucket is closed. */
static void s_bucket_flush(s_bucket *b, xp_series *s, const xp_metric_points *p)
{
    if (!b->open)
        return;
    if (!b->has_value) {
        s_emit(s, p, b->nan_at);
    } else {
        size_t a = b->lo < b->hi ? b->lo : b->hi;
        size_t z = b->lo < b->hi ? b->hi : b->lo;
        s_emit(s, p, a);
        if (z != a)
            s_emit(s, p, z);
    }
    b->open = false;
}

/* The interior points of p (all but its first and last) in n_buckets
 * buckets of equal epoch width over p's whole epoch range. */
static void s_bucketize(xp_series *s, const xp_metric_points *p,
                        size_t n_buckets)
{
    int64_t first = p->epochs[0];
    uint64_t span = (uint64_t)p->epochs[p->n - 1] - (uint64_t)first;
    /* Doubles round monotonically, so bucket numbers never go back. */
    double scale = span ? (double)n_buckets / (double)span : 0;
    double last_bucket = (double)(n_buckets - 1);
    s_bucket b = {0};
    size_t current = 0;
    for (size_t i = 1; i + 1 < p->n; i++) {
        double x = (double)((uint64_t)p->epochs[i] - (uint64_t)first) * scale;
        size_t k = x >= last_bucket ? n_buckets - 1 : (size_t)x;
        if (k != current) {
            s_bucket_flush(&b, s, p);
            current = k;
        }
        s_bucket_add(&b, p, i);
    }
    s_bucket_flush(&b, s, p);
}

static xp_series *s_series_new(size_t cap)
{
    xp_series *s = bson_malloc0(sizeof *s);
    s->epochs = bson_malloc((cap ? cap : 1) * sizeof *s->epochs);
    s->values = bson_malloc((cap ? cap : 1) * sizeof *s->values);
    return s;
}

xp_series *xp__series_downsample(xp_metric_points *p, size_t max_points)
{
    if (max_points == 0 || p->n <= max_points) {
        xp_series *s = bson_malloc0(sizeof *s);
        s->n = s->total = p->n;
        s->epochs = p->epochs ? p->epochs : bson_malloc(sizeof *s->epochs);
        s->values = p->values ? p->values : bson_malloc(sizeof *s->values);
        memset(p, 0, sizeof *p);
        return s;
    }
    xp_series *s = s_series_new(max_points);
    s->total = p->n;
    s->downsampled = true;
    s_emit(s, p, 0);
    if (max_points == 1)
        return s;
    size_t n_buckets = (max_points - 2) / 2;
    if (n_buckets > 0)
        s_bucketize(s, p, n_buckets);
    s_emit(s, p, p->n - 1);
    return s;
}

void xp_series_destroy(xp_series **ps)
{
    if (!ps || !*ps)
        return;
    bson_free((*ps)->epochs);
    bson_free((*ps)->values);
    bson_free(*ps);
    *ps = NULL;
}

/* ---------------------------------------------------------------- reading */

/* Why trial has no points of metric name: it does not exist, or it did
 * not save that metric. */
static int s_no_metric(xp_experiment *ex, const char *name, int64_t trial,
                       xp_error_t *err)
{
    bson_t doc;
    if (xp__store_trial_get(ex->backend, trial, &doc, err) != 0)
        return -1;
    bson_destroy(&doc);
    return xp__error(err, XP_DOMAIN_ARGUMENT, XP_ENOTFOUND,
                     "trial %lld has no metric %s", (long long)trial, name);
}

int xp_metric_series(xp_experiment *ex, const char *name, int64_t trial_id,
                     int64_t epoch_min, int64_t epoch_max, size_t max_points,
                     xp_series **out, xp_error_t *err)
{
    if (!ex || !out)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "missing experiment or output");
    *out = NULL;
    if (xp_check_name("metric", name, err) != 0 ||
        xp__check_trial_id(trial_id, err) != 0)
        return -1;
    if (epoch_min > epoch_max)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "epoch range %lld to %lld is empty (from > to)",
                         (long long)epoch_min, (long long)epoch_max);
    xp_metric_points p = {0};
    int rc = xp__store_metric_read(ex->backend, name, trial_id, &p, err);
    if (rc == 0 && p.n == 0)
        rc = s_no_metric(ex, name, trial_id, err);
    if (rc == 0) {
        xp__series_window(&p, epoch_min, epoch_max);
        *out = xp__series_downsample(&p, max_points);
    }
    xp__metric_points_clear(&p);
    return rc;
}

int xp_metric_names(xp_experiment *ex, int64_t trial_id, xp_value **out,
                    xp_error_t *err)
{
    if (!ex || !out)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "missing experiment or output");
    *out = NULL;
    if (xp__check_trial_id(trial_id, err) != 0)
        return -1;
    return xp__store_metric_names(ex->backend, trial_id, out, err);
}
