/* query/query.c — compiling a public xp_query, and the streamed scan: the
 * evaluator over records read in id order with a bounded max-heap of the
 * offset + limit first matches (sort key, then trial id), for the stores
 * that have no query engine of their own (Redis). */
#include "query/query.h"

#include "util/error.h"

#include <stdlib.h>
#include <string.h>

int xp__query_compile(xp_compiled_query *out, const xp_query *q,
                      xp_error_t *err)
{
    *out = (xp_compiled_query){0};
    if (!q)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL, "missing query");
    if (q->version != XP_QUERY_VERSION)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "unsupported xp_query version %u (this library "
                         "knows %d)",
                         q->version, XP_QUERY_VERSION);
    if (q->offset < 0 || q->limit < 0)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "query: offset and limit must not be negative "
                         "(%lld, %lld)",
                         (long long)q->offset, (long long)q->limit);
    out->offset = q->offset;
    out->limit = q->limit;
    if (xp__filter_parse(&out->filter, q->filter, err) != 0 ||
        xp__sort_parse(&out->sort, q->sort, err) != 0)
        return -1;
    return 0;
}

void xp__query_clear(xp_compiled_query *q)
{
    xp__filter_destroy(&q->filter);
    xp__sort_destroy(&q->sort);
}

int xp_query_check(const xp_query *q, xp_error_t *err)
{
    xp_compiled_query c;
    int rc = xp__query_compile(&c, q, err);
    xp__query_clear(&c);
    return rc;
}

/* ---------------------------------------------------------------- the scan */

typedef struct {
    uint8_t *key;
    size_t key_len;
    int64_t id;
    bson_t *doc; /* NULL: damaged */
} s_entry;

struct xp_query_scan {
    const xp_compiled_query *q;
    int64_t matched;
    uint64_t keep; /* entries kept at most: offset + limit, or UINT64_MAX */
    s_entry *v;
    size_t n, cap;
    xp_bytes key; /* scratch */
};

xp_query_scan *xp__query_scan_new(const xp_compiled_query *q)
{
    xp_query_scan *s = bson_malloc0(sizeof *s);
    s->q = q;
    uint64_t window = (uint64_t)q->offset + (uint64_t)q->limit;
    s->keep = q->limit == 0 || window > INT64_MAX ? UINT64_MAX : window;
    return s;
}

static int s_cmp(const s_entry *a, const s_entry *b)
{
    size_t n = a->key_len < b->key_len ? a->key_len : b->key_len;
    int c = n ? memcmp(a->key, b->key, n) : 0;
    if (c == 0)
        c = (a->key_len > b->key_len) - (a->key_len < b->key_len);
    if (c == 0)
        c = (a->id > b->id) - (a->id < b->id);
    return c;
}

static int s_qsort_cmp(const void *a, const void *b)
{
    return s_cmp(a, b);
}

static void s_entry_free(s_entry *e)
{
    bson_free(e->key);
    if (e->doc)
        bson_destroy(e->doc);
}

static s_entry s_entry_new(const xp_query_scan *s, const bson_t *doc,
                           int64_t id)
{
    s_entry e = {.id = id, .doc = doc ? bson_copy(doc) : NULL};
    if (s->key.len) {
        e.key = bson_malloc(s->key.len);
        memcpy(e.key, s->key.data, s->key.len);
        e.key_len = s->key.len;
    }
    return e;
}

static void s_push(xp_query_scan *s, s_entry e)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->v = bson_realloc(s->v, s->cap * sizeof *s->v);
    }
    s->v[s->n++] = e;
}

static void s_swap(s_entry *a, s_entry *b)
{
    s_entry t = *a;
    *a = *b;
    *b = t;
}

/* The heap keeps the largest kept entry at v[0]. */
static void s_sift_up(s_entry *v, size_t i)
{
    while (i > 0 && s_cmp(&v[(i - 1) / 2], &v[i]) < 0) {
        s_swap(&v[(i - 1) / 2], &v[i]);
        i = (i - 1) / 2;
    }
}

static void s_sift_down(s_entry *v, size_t n)
{
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, top = i;
        if (l < n && s_cmp(&v[l], &v[top]) > 0)
            top = l;
        if (r < n && s_cmp(&v[r], &v[top]) > 0)
            top = r;
        if (top == i)
            return;
        s_swap(&v[i], &v[top]);
        i = top;
    }
}

/* Keeps the entry when it is among the `keep` smallest so far. */
static void s_keep_sorted(xp_query_scan *s, const bson_t *doc, int64_t id)
{
    s->key.len = 0;
    xp__sort_key(s->q->sort, doc, &s->key);
    if (s->n < s->keep) {
        s_push(s, s_entry_new(s, doc, id));
        if (s->keep != UINT64_MAX)
            s_sift_up(s->v, s->n - 1);
        return;
    }
    s_entry probe = {s->key.data, s->key.len, id, NULL};
    if (s_cmp(&probe, &s->v[0]) >= 0)
        return;
    s_entry_free(&s->v[0]);
    s->v[0] = s_entry_new(s, doc, id);
    s_sift_down(s->v, s->n);
}

void xp__query_scan_add(xp_query_scan *s, const bson_t *doc, int64_t id)
{
    if (!xp__filter_match(s->q->filter, doc))
        return;
    int64_t index = s->matched++;
    if (s->q->sort) {
        s_keep_sorted(s, doc, id);
        return;
    }
    /* id order: the window is known as the records arrive */
    if (index >= s->q->offset && (uint64_t)index < s->keep)
        s_push(s, s_entry_new(s, doc, id));
}

int64_t xp__query_scan_matched(const xp_query_scan *s)
{
    return s->matched;
}

int xp__query_scan_emit(xp_query_scan *s, xp_query_page_fn fn, void *user)
{
    size_t from = 0;
    if (s->q->sort) {
        if (s->n > 1)
            qsort(s->v, s->n, sizeof *s->v, s_qsort_cmp);
        from = (uint64_t)s->q->offset < s->n ? (size_t)s->q->offset : s->n;
    }
    for (size_t i = from; i < s->n; i++) {
        int rc = fn(s->v[i].doc, s->v[i].id, user);
        if (rc != 0)
            return rc;
    }
    return 0;
}

void xp__query_scan_destroy(xp_query_scan **sp)
{
    if (!sp || !*sp)
        return;
    xp_query_scan *s = *sp;
    for (size_t i = 0; i < s->n; i++)
        s_entry_free(&s->v[i]);
    bson_free(s->v);
    xp__bytes_clear(&s->key);
    bson_free(s);
    *sp = NULL;
}
