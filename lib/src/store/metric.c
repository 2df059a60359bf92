/* metric.c — metric points: per-name buffers cut into chunks, and the
 * chunk encodings (compact: varint epoch deltas and raw doubles; raw:
 * little-endian epochs, then doubles), encoders and decoders side by
 * side, every length checked. */
#include "store/metric.h"

#include "util/error.h"

#include <bson/bson.h>
#include <string.h>

/* ---------------------------------------------------------------- points */

int xp__metric_points_add(xp_metric_points *p, int64_t epoch, double value)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 128;
        int64_t *e = bson_realloc(p->epochs, cap * sizeof *e);
        if (!e)
            return -1;
        p->epochs = e;
        double *v = bson_realloc(p->values, cap * sizeof *v);
        if (!v)
            return -1;
        p->values = v;
        p->cap = cap;
    }
    p->epochs[p->n] = epoch;
    p->values[p->n] = value;
    p->n++;
    return 0;
}

void xp__metric_points_clear(xp_metric_points *p)
{
    bson_free(p->epochs);
    bson_free(p->values);
    memset(p, 0, sizeof *p);
}

/* Room for k more points; -1 when out of memory or k is absurd. */
static int s_points_reserve(xp_metric_points *p, size_t k)
{
    if (k > (SIZE_MAX / 16) - p->n)
        return -1;
    if (p->n + k <= p->cap)
        return 0;
    /* Geometric growth: a metric read chunk by chunk is copied O(n) times
     * in all, not once per chunk. */
    size_t cap = p->n + k;
    if (cap < 2 * p->cap && p->cap <= SIZE_MAX / 32)
        cap = 2 * p->cap;
    int64_t *e = bson_realloc(p->epochs, (cap ? cap : 1) * sizeof *e);
    if (!e)
        return -1;
    p->epochs = e;
    double *v = bson_realloc(p->values, (cap ? cap : 1) * sizeof *v);
    if (!v)
        return -1;
    p->values = v;
    p->cap = cap;
    return 0;
}

/* ---------------------------------------------------------------- codec */

size_t xp__metric_chunk_bytes(size_t n)
{
    return n * 16;
}

static void s_put_le64(uint8_t *out, uint64_t v)
{
    v = BSON_UINT64_TO_LE(v);
    memcpy(out, &v, 8);
}

static uint64_t s_get_le64(const uint8_t *in)
{
    uint64_t v;
    memcpy(&v, in, 8);
    return BSON_UINT64_FROM_LE(v);
}

void xp__metric_chunk_encode(const int64_t *epochs, const double *values,
                             size_t n, uint8_t *out)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t bits;
        memcpy(&bits, &values[i], 8);
        s_put_le64(out + 8 * i, (uint64_t)epochs[i]);
        s_put_le64(out + 8 * n + 8 * i, bits);
    }
}

/* Writes v as a LEB128 varint at out; the bytes written (1 to 10). */
static size_t s_put_varint(uint8_t *out, uint64_t v)
{
    size_t k = 0;
    while (v >= 0x80) {
        out[k++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    out[k++] = (uint8_t)v;
    return k;
}

/* Reads the varint at in[*pos, len) into *v and moves *pos past it; false
 * when it runs off the end, is longer than 64 bits or is not the shortest
 * form (so that every value has exactly one encoding). */
static bool s_get_varint(const uint8_t *in, size_t len, size_t *pos,
                         uint64_t *v)
{
    uint64_t r = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (*pos >= len)
            return false;
        uint8_t b = in[(*pos)++];
        if (shift == 63 && b > 1)
            return false;
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            if (b == 0 && shift > 0)
                return false;
            *v = r;
            return true;
        }
    }
    return false;
}

/* Deltas of either sign as small unsigned numbers: 0, -1, 1, -2, ... */
static uint64_t s_zigzag(uint64_t d)
{
    return (d << 1) ^ (uint64_t)(-(int64_t)(d >> 63));
}

static uint64_t s_unzigzag(uint64_t z)
{
    return (z >> 1) ^ (uint64_t)(-(int64_t)(z & 1));
}

/* The compact encoding's first byte. */
#define S_COMPACT 0x01

uint8_t *xp__metric_chunk_encode_new(const xp_metric_chunk *c, size_t *len)
{
    /* Tag, n, n epochs, n doubles, one pad byte: 1 + 10 + 18·n + 1. */
    uint8_t *out = bson_malloc(12 + 18 * c->n);
    size_t k = 0;
    out[k++] = S_COMPACT;
    k += s_put_varint(out + k, c->n);
    uint64_t prev = 0;
    for (size_t i = 0; i < c->n; i++) {
        /* Unsigned arithmetic: a delta wraps, and unwraps, modulo 2^64. */
        k += s_put_varint(out + k, s_zigzag((uint64_t)c->epochs[i] - prev));
        prev = (uint64_t)c->epochs[i];
    }
    for (size_t i = 0; i < c->n; i++) {
        uint64_t bits;
        memcpy(&bits, &c->values[i], 8);
        s_put_le64(out + k, bits);
        k += 8;
    }
    /* A length that is a multiple of 16 means the raw encoding. */
    if (k % 16 == 0)
        out[k++] = 0;
    *len = k;
    return out;
}

/* Bytes of v as a varint. */
static size_t s_varint_len(uint64_t v)
{
    size_t k = 1;
    while (v >= 0x80) {
        v >>= 7;
        k++;
    }
    return k;
}

size_t xp__metric_chunk_fit(const xp_metric_chunk *c, size_t max_bytes)
{
    size_t epoch_bytes = 0, fit = c->n ? 1 : 0;
    uint64_t prev = 0;
    for (size_t k = 1; k <= c->n; k++) {
        uint64_t e = (uint64_t)c->epochs[k - 1];
        epoch_bytes += s_varint_len(s_zigzag(e - prev));
        prev = e;
        size_t len = 1 + s_varint_len(k) + epoch_bytes + 8 * k;
        if (len + (len % 16 == 0) > max_bytes)
            break;
        fit = k;
    }
    return fit;
}

/* Appends the points of a compact chunk (see xp__metric_chunk_decode). */
static int s_compact_decode(const uint8_t *data, size_t len,
                            xp_metric_points *p, xp_error_t *err)
{
    size_t pos = 1;
    uint64_t n;
    if (data[0] != S_COMPACT || !s_get_varint(data, len, &pos, &n))
        goto corrupt;
    /* Every point takes at least 9 bytes: this bounds the allocation by
     * the input. */
    if (n > (len - pos) / 9)
        goto corrupt;
    if (s_points_reserve(p, (size_t)n) != 0)
        return xp__enomem(err);
    uint64_t prev = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t z;
        if (!s_get_varint(data, len, &pos, &z))
            goto corrupt;
        prev += s_unzigzag(z);
        p->epochs[p->n + i] = (int64_t)prev;
    }
    size_t end = pos + 8 * (size_t)n;
    if (end % 16 == 0 ? len != end + 1 || data[end] != 0 : len != end)
        goto corrupt;
    for (size_t i = 0; i < n; i++) {
        uint64_t bits = s_get_le64(data + pos + 8 * i);
        memcpy(&p->values[p->n + i], &bits, 8);
    }
    p->n += (size_t)n;
    return 0;
corrupt:
    return xp__error(err, XP_DOMAIN_BACKEND, XP_ECORRUPT,
                     "metric chunk of %zu bytes is damaged", len);
}

int xp__metric_columns_decode(const uint8_t *epochs, size_t epochs_len,
                              const uint8_t *values, size_t values_len,
                              xp_metric_points *p, xp_error_t *err)
{
    if (epochs_len != values_len || epochs_len % 8 != 0)
        return xp__error(err, XP_DOMAIN_BACKEND, XP_ECORRUPT,
                         "metric chunk with %zu bytes of epochs and %zu of "
                         "values",
                         epochs_len, values_len);
    size_t k = epochs_len / 8;
    if (s_points_reserve(p, k) != 0)
        return xp__enomem(err);
    for (size_t i = 0; i < k; i++) {
        uint64_t bits = s_get_le64(values + 8 * i);
        p->epochs[p->n + i] = (int64_t)s_get_le64(epochs + 8 * i);
        memcpy(&p->values[p->n + i], &bits, 8);
    }
    p->n += k;
    return 0;
}

int xp__metric_chunk_decode(const uint8_t *data, size_t len,
                            xp_metric_points *p, xp_error_t *err)
{
    if (len % 16 != 0)
        return s_compact_decode(data, len, p, err);
    return xp__metric_columns_decode(data, len / 2, data + len / 2, len / 2, p,
                                     err);
}

uint8_t *xp__metric_chunk_raw_new(const xp_metric_chunk *c, size_t *len)
{
    *len = xp__metric_chunk_bytes(c->n);
    uint8_t *out = bson_malloc(*len ? *len : 1);
    xp__metric_chunk_encode(c->epochs, c->values, c->n, out);
    return out;
}

void xp__metric_columns_append(bson_t *doc, const xp_metric_chunk *c)
{
    size_t len;
    uint8_t *data = xp__metric_chunk_raw_new(c, &len);
    bson_append_binary(doc, "epochs", -1, BSON_SUBTYPE_BINARY, data,
                       (uint32_t)(len / 2));
    bson_append_binary(doc, "values", -1, BSON_SUBTYPE_BINARY, data + len / 2,
                       (uint32_t)(len / 2));
    bson_free(data);
}

/* The bytes of binary field key of doc; false when it is not one. */
static bool s_binary(const bson_t *doc, const char *key, const uint8_t **data,
                     uint32_t *len)
{
    bson_iter_t it;
    if (!bson_iter_init_find(&it, doc, key) || !BSON_ITER_HOLDS_BINARY(&it))
        return false;
    bson_iter_binary(&it, NULL, len, data);
    return true;
}

int xp__metric_columns_read(const bson_t *doc, xp_metric_points *p,
                            xp_error_t *err)
{
    const uint8_t *epochs, *values;
    uint32_t epochs_len, values_len;
    if (!s_binary(doc, "epochs", &epochs, &epochs_len) ||
        !s_binary(doc, "values", &values, &values_len))
        return xp__error(err, XP_DOMAIN_BACKEND, XP_ECORRUPT,
                         "metric chunk without epochs or values");
    return xp__metric_columns_decode(epochs, epochs_len, values, values_len, p,
                                     err);
}

/* ---------------------------------------------------------------- buffer */

xp_metric_buf *xp__metric_set_add(xp_metric_set *s, const char *name,
                                  int64_t epoch, double value)
{
    xp_metric_buf *m = NULL;
    for (size_t i = 0; i < s->n && !m; i++)
        if (strcmp(s->items[i].name, name) == 0)
            m = &s->items[i];
    if (!m) {
        if (s->n == s->cap) {
            size_t cap = s->cap ? s->cap * 2 : 4;
            xp_metric_buf *items = bson_realloc(s->items, cap * sizeof *items);
            if (!items)
                return NULL;
            s->items = items;
            s->cap = cap;
        }
        m = &s->items[s->n];
        memset(m, 0, sizeof *m);
        if (xp__metric_points_add(&m->points, epoch, value) != 0) {
            xp__metric_points_clear(&m->points);
            return NULL;
        }
        m->name = bson_strdup(name);
        s->n++;
        s->points++;
        return m;
    }
    if (xp__metric_points_add(&m->points, epoch, value) != 0)
        return NULL;
    s->points++;
    return m;
}

void xp__metric_set_clear(xp_metric_set *s)
{
    for (size_t i = 0; i < s->n; i++) {
        bson_free(s->items[i].name);
        xp__metric_points_clear(&s->items[i].points);
    }
    bson_free(s->items);
    memset(s, 0, sizeof *s);
}

size_t xp__metric_buf_full_chunks(const xp_metric_buf *m)
{
    return m->points.n / XP_METRIC_CHUNK_POINTS;
}

size_t xp__metric_buf_chunks(const xp_metric_buf *m, bool partial,
                             xp_metric_chunk **out, size_t *n)
{
    size_t full = xp__metric_buf_full_chunks(m);
    size_t rest = m->points.n - full * XP_METRIC_CHUNK_POINTS;
    size_t k = full + (partial && rest > 0);
    if (k == 0)
        return 0;
    *out = bson_realloc(*out, (*n + k) * sizeof **out);
    for (size_t i = 0; i < k; i++) {
        size_t from = i * XP_METRIC_CHUNK_POINTS;
        xp_metric_chunk *c = &(*out)[*n + i];
        c->name = m->name;
        c->chunk = m->first_chunk + (int64_t)i;
        c->epochs = m->points.epochs + from;
        c->values = m->points.values + from;
        c->n = i < full ? XP_METRIC_CHUNK_POINTS : rest;
    }
    *n += k;
    return k;
}

size_t xp__metric_set_chunks(const xp_metric_set *s, bool partial,
                             xp_metric_chunk **out, size_t *n)
{
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++)
        k += xp__metric_buf_chunks(&s->items[i], partial, out, n);
    return k;
}

void xp__metric_buf_consume(xp_metric_buf *m, size_t k)
{
    size_t drop = k * XP_METRIC_CHUNK_POINTS;
    if (drop > m->points.n)
        drop = m->points.n;
    m->first_chunk += (int64_t)k;
    if (drop == 0)
        return;
    size_t keep = m->points.n - drop;
    memmove(m->points.epochs, m->points.epochs + drop,
            keep * sizeof *m->points.epochs);
    memmove(m->points.values, m->points.values + drop,
            keep * sizeof *m->points.values);
    m->points.n = keep;
}
