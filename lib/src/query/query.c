/* query/query.c — compiling a public xp_query, and the streamed scan: the
 * evaluator over records read in id order, keeping the offset + limit
 * first matches (sort key, then trial id) in a buffer pruned by selection,
 * for the stores that have no query engine of their own (Redis, and the
 * local store's pages that filter or sort). */
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

/* Bytes of a sort key held in the entry itself: most keys (a number is
 * 10 bytes, a short string its length + 3) need no allocation, and
 * comparisons read no second cache line. */
#define S_HEAD 20

typedef struct {
    int64_t id;
    uint32_t key_len;
    uint8_t head[S_HEAD]; /* the key's first bytes */
    uint8_t *tail;        /* the rest, NULL when key_len <= S_HEAD */
    bson_t *doc;          /* NULL: damaged, or not kept */
} s_entry;

struct xp_query_scan {
    const xp_compiled_query *q;
    bool keep_docs;
    int64_t matched;
    uint64_t keep;  /* entries worth keeping: offset + limit, or UINT64_MAX */
    uint64_t prune; /* sorted: entries held before pruning back to keep */
    bool pruned;    /* v[keep - 1] is the largest entry worth keeping */
    bool paged;     /* v is the page, in order (xp__query_scan_set_page) */
    s_entry *v;
    size_t n, cap;
    /* the filter's fields are found in every record, the sort's in
     * matching ones only */
    xp_field_plan *filter_plan, *sort_plan;
    uint32_t *filter_slots, *sort_slots;
    xp_bytes key; /* scratch */
};

static xp_query_scan *s_scan_new(const xp_compiled_query *q, bool keep_docs)
{
    xp_query_scan *s = bson_malloc0(sizeof *s);
    s->q = q;
    s->keep_docs = keep_docs;
    uint64_t window = (uint64_t)q->offset + (uint64_t)q->limit;
    s->keep = q->limit == 0 || window > INT64_MAX ? UINT64_MAX : window;
    /* a quarter more: pruning costs O(entries) every keep / 4 entries
     * that beat the worst one kept */
    s->prune = s->keep == UINT64_MAX
                   ? UINT64_MAX
                   : s->keep + (s->keep / 4 > 64 ? s->keep / 4 : 64);
    s->filter_plan = xp__field_plan_new();
    s->sort_plan = xp__field_plan_new();
    s->filter_slots = xp__filter_plan(q->filter, s->filter_plan);
    s->sort_slots = xp__sort_plan(q->sort, s->sort_plan);
    return s;
}

xp_query_scan *xp__query_scan_new(const xp_compiled_query *q)
{
    return s_scan_new(q, true);
}

xp_query_scan *xp__query_scan_new_ids(const xp_compiled_query *q)
{
    return s_scan_new(q, false);
}

/* Key bytes in memcmp order (a prefix first), then trial id. */
static int s_cmp(const s_entry *a, const s_entry *b)
{
    uint32_t n = a->key_len < b->key_len ? a->key_len : b->key_len;
    uint32_t h = n < S_HEAD ? n : S_HEAD;
    int c = h ? memcmp(a->head, b->head, h) : 0;
    if (c == 0 && n > S_HEAD)
        c = memcmp(a->tail, b->tail, n - S_HEAD);
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
    bson_free(e->tail);
    if (e->doc)
        bson_destroy(e->doc);
}

/* The scratch key as an entry of trial id, pointing into the scratch. */
static s_entry s_probe(const xp_query_scan *s, int64_t id)
{
    s_entry e = {.id = id, .key_len = (uint32_t)s->key.len};
    if (s->key.len)
        memcpy(e.head, s->key.data, s->key.len < S_HEAD ? s->key.len : S_HEAD);
    if (s->key.len > S_HEAD)
        e.tail = s->key.data + S_HEAD;
    return e;
}

static s_entry s_entry_new(const xp_query_scan *s, const bson_t *doc,
                           int64_t id)
{
    s_entry e = s_probe(s, id);
    if (e.tail) {
        e.tail = bson_malloc(s->key.len - S_HEAD);
        memcpy(e.tail, s->key.data + S_HEAD, s->key.len - S_HEAD);
    }
    if (s->keep_docs && doc)
        e.doc = bson_copy(doc);
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

/* The index of the median of v[a], v[b], v[c]. */
static size_t s_median3(const s_entry *v, size_t a, size_t b, size_t c)
{
    if (s_cmp(&v[a], &v[b]) < 0)
        return s_cmp(&v[b], &v[c]) < 0 ? b : s_cmp(&v[a], &v[c]) < 0 ? c : a;
    return s_cmp(&v[a], &v[c]) < 0 ? a : s_cmp(&v[b], &v[c]) < 0 ? c : b;
}

/* Partitions v[lo..hi) around a pivot (entries are distinct: ids break
 * ties); the pivot's final index. */
static size_t s_partition(s_entry *v, size_t lo, size_t hi)
{
    size_t p = s_median3(v, lo, lo + (hi - lo) / 2, hi - 1);
    s_swap(&v[p], &v[hi - 1]);
    size_t store = lo;
    for (size_t i = lo; i + 1 < hi; i++)
        if (s_cmp(&v[i], &v[hi - 1]) < 0)
            s_swap(&v[i], &v[store++]);
    s_swap(&v[store], &v[hi - 1]);
    return store;
}

/* Rearranges v[0..n) (k < n) so that v[k] is the entry of rank k, those
 * before it smaller and those after larger: quickselect, O(n) on average;
 * when the pivots go badly (crafted keys) it sorts the rest instead, so
 * the worst case is O(n log n). */
static void s_select(s_entry *v, size_t n, size_t k)
{
    size_t lo = 0, hi = n;
    int budget = 8;
    for (size_t m = n; m > 1; m /= 2)
        budget += 2;
    while (hi - lo > 16) {
        if (budget-- == 0)
            break;
        size_t p = s_partition(v, lo, hi);
        if (p == k)
            return;
        if (k < p)
            hi = p;
        else
            lo = p + 1;
    }
    qsort(v + lo, hi - lo, sizeof *v, s_qsort_cmp);
}

/* Keeps the keep smallest entries only. */
static void s_prune(xp_query_scan *s)
{
    s_select(s->v, s->n, (size_t)s->keep - 1);
    for (size_t i = (size_t)s->keep; i < s->n; i++)
        s_entry_free(&s->v[i]);
    s->n = (size_t)s->keep;
    s->pruned = true;
}

/* Keeps the entry unless keep smaller ones are known. */
static void s_keep_sorted(xp_query_scan *s, const bson_t *doc, int64_t id)
{
    xp__field_plan_find(s->sort_plan, doc);
    s->key.len = 0;
    xp__sort_key_found(s->q->sort, s->sort_plan, s->sort_slots, &s->key);
    if (s->pruned) {
        s_entry probe = s_probe(s, id);
        if (s_cmp(&probe, &s->v[s->keep - 1]) >= 0)
            return;
    }
    s_push(s, s_entry_new(s, doc, id));
    if (s->n >= s->prune)
        s_prune(s);
}

void xp__query_scan_add(xp_query_scan *s, const bson_t *doc, int64_t id)
{
    if (s->q->filter) {
        xp__field_plan_find(s->filter_plan, doc);
        if (!xp__filter_match_found(s->q->filter, s->filter_plan,
                                    s->filter_slots, doc != NULL))
            return;
    }
    int64_t index = s->matched++;
    if (s->q->sort) {
        s_keep_sorted(s, doc, id);
        return;
    }
    /* id order: the window is known as the records arrive */
    if (index >= s->q->offset && (uint64_t)index < s->keep) {
        s->key.len = 0;
        s_push(s, s_entry_new(s, doc, id));
    }
}

int64_t xp__query_scan_matched(const xp_query_scan *s)
{
    return s->matched;
}

const xp_compiled_query *xp__query_scan_query(const xp_query_scan *s)
{
    return s->q;
}

void xp__query_scan_set_page(xp_query_scan *s, int64_t matched,
                             const int64_t *ids, size_t n)
{
    for (size_t i = 0; i < s->n; i++)
        s_entry_free(&s->v[i]);
    s->n = 0;
    for (size_t i = 0; i < n; i++)
        s_push(s, (s_entry){.id = ids[i]});
    s->matched = matched;
    s->paged = true;
}

/* Sorted: puts the page, the entries of ranks [offset, offset + limit),
 * in order at v[*from..*to). */
static void s_order_page(xp_query_scan *s, size_t *from, size_t *to)
{
    size_t off = (uint64_t)s->q->offset < s->n ? (size_t)s->q->offset : s->n;
    *from = *to = off;
    if (off == s->n)
        return;
    if (off > 0)
        s_select(s->v, s->n, off);
    size_t rest = s->n - off;
    size_t page = s->q->limit > 0 && (uint64_t)s->q->limit < rest
                      ? (size_t)s->q->limit
                      : rest;
    if (page < rest)
        s_select(s->v + off, rest, page);
    qsort(s->v + off, page, sizeof *s->v, s_qsort_cmp);
    *to = off + page;
}

int xp__query_scan_emit(xp_query_scan *s, xp_query_page_fn fn, void *user)
{
    size_t from = 0, to = s->n;
    if (s->q->sort && !s->paged)
        s_order_page(s, &from, &to);
    for (size_t i = from; i < to; i++) {
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
    xp__field_plan_destroy(&s->filter_plan);
    xp__field_plan_destroy(&s->sort_plan);
    bson_free(s->filter_slots);
    bson_free(s->sort_slots);
    bson_free(s);
    *sp = NULL;
}
