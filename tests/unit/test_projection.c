/* test_projection.c — the projection cache's pages (columns of distinct
 * values, ranks, selection among integers) against the plain scan of
 * every record (internal API): the same ids in the same order and the
 * same count, over values of every class (numbers across int and double,
 * NaN, -0, integers past 2^53, strings sharing long prefixes or holding
 * NULs, containers, binaries, dates), missing fields, damaged records
 * and damaged bytes, many filters, sorts (more keys than one integer
 * holds) and windows; and the cache's bound on memory. */
#include "../common.h"

#include "query/projection.h"

#include <math.h>

TestSuite(projection, .timeout = 120);

enum { N = 700 };

/* Record k's value of a mixed parameter: every class, repeats, ties. */
static void s_mixed(bson_t *p, const char *key, int k)
{
    char s[2100];
    switch (k % 17) {
    case 0: break; /* missing */
    case 1: bson_append_null(p, key, -1); break;
    case 2: BSON_APPEND_INT32(p, key, k % 5); break;
    case 3: BSON_APPEND_INT64(p, key, k % 7); break;
    case 4: BSON_APPEND_DOUBLE(p, key, (k % 9) / 2.0); break;
    case 5: BSON_APPEND_DOUBLE(p, key, k % 2 ? NAN : -0.0); break;
    case 6: BSON_APPEND_INT64(p, key, (INT64_C(1) << 53) + (k % 3)); break;
    case 7:
        snprintf(s, sizeof s, "a-rather-long-common-prefix-%d", k % 11);
        BSON_APPEND_UTF8(p, key, s);
        break;
    case 8: bson_append_utf8(p, key, -1, "x\0y", k % 2 ? 3 : 1); break;
    case 9: BSON_APPEND_BOOL(p, key, k % 2); break;
    case 10: BSON_APPEND_DATE_TIME(p, key, (k % 4) * 1000 - 1500); break;
    case 11: {
        bson_t sub;
        BSON_APPEND_DOCUMENT_BEGIN(p, key, &sub);
        BSON_APPEND_INT32(&sub, "x", k % 3);
        bson_append_document_end(p, &sub);
        break;
    }
    case 12: {
        bson_t sub;
        BSON_APPEND_ARRAY_BEGIN(p, key, &sub);
        BSON_APPEND_INT32(&sub, "0", k % 4);
        bson_append_array_end(p, &sub);
        break;
    }
    case 13:
        bson_append_binary(p, key, -1, BSON_SUBTYPE_BINARY,
                           (const uint8_t *)"\0\1\2", (uint32_t)(k % 3));
        break;
    case 14:
        /* past the bytes a key orders by */
        memset(s, 'q', 2000);
        s[2000] = '\0';
        s[1999] = (char)('a' + k % 3);
        BSON_APPEND_UTF8(p, key, s);
        break;
    case 15: bson_append_minkey(p, key, -1); break;
    default: BSON_APPEND_INT32(p, key, -(k % 6)); break;
    }
}

/* Record k (trial k + 1). */
static void s_record(bson_t *doc, int k)
{
    bson_t p, sub;
    char s[64];
    bson_init(doc);
    BSON_APPEND_INT64(doc, "trial_id", k + 1);
    BSON_APPEND_UTF8(doc, "status", k % 5 ? "succeeded" : "failed");
    BSON_APPEND_DOCUMENT_BEGIN(doc, "parameters", &p);
    s_mixed(&p, "a", k);
    s_mixed(&p, "m", k * 7 + 3);
    BSON_APPEND_INT64(&p, "b", k % 3);
    snprintf(s, sizeof s, "name-%04d", k * 31 % 97);
    BSON_APPEND_UTF8(&p, "s", s);
    BSON_APPEND_DOUBLE(&p, "u", k * 0.37);
    BSON_APPEND_BOOL(&p, "f", k % 4 == 0);
    if (k % 6) {
        BSON_APPEND_DOCUMENT_BEGIN(&p, "opt", &sub);
        BSON_APPEND_DOUBLE(&sub, "lr", (k % 10) / 100.0);
        bson_append_document_end(&p, &sub);
    }
    BSON_APPEND_ARRAY_BEGIN(&p, "arr", &sub);
    BSON_APPEND_INT32(&sub, "0", k % 4);
    bson_append_array_end(&p, &sub);
    bson_append_document_end(doc, &p);
    BSON_APPEND_DATE_TIME(doc, "started", 1000 * (k % 13));
    if (k % 8)
        BSON_APPEND_DOUBLE(doc, "result", (k * 7919 % 1009) / 7.0);
}

/* The store's records: intact, missing (NULL: damaged), and bytes
 * damaged in place (the plan takes what it can read). */
typedef struct {
    int n;
    bson_t *docs;
    uint8_t **bytes; /* damaged copies */
    bson_t *damaged;
    const bson_t **rec;
} s_store;

static void s_store_init(s_store *st, int n)
{
    st->n = n;
    st->docs = bson_malloc((size_t)n * sizeof *st->docs);
    st->bytes = bson_malloc((size_t)n * sizeof *st->bytes);
    st->damaged = bson_malloc((size_t)n * sizeof *st->damaged);
    st->rec = bson_malloc((size_t)n * sizeof *st->rec);
    for (int k = 0; k < n; k++) {
        s_record(&st->docs[k], k);
        st->rec[k] = &st->docs[k];
        st->bytes[k] = NULL;
        if (k % 37 == 5) {
            st->rec[k] = NULL;
        } else if (k % 41 == 7) {
            uint32_t len = st->docs[k].len;
            st->bytes[k] = bson_malloc(len);
            memcpy(st->bytes[k], bson_get_data(&st->docs[k]), len);
            st->bytes[k][len / 2] = 0x7f; /* an element of no type */
            cr_assert(bson_init_static(&st->damaged[k], st->bytes[k], len));
            st->rec[k] = &st->damaged[k];
        }
    }
}

static void s_store_clear(s_store *st)
{
    for (int k = 0; k < st->n; k++) {
        bson_destroy(&st->docs[k]);
        bson_free(st->bytes[k]);
    }
    bson_free(st->docs);
    bson_free(st->bytes);
    bson_free(st->damaged);
    bson_free(st->rec);
}

static int s_collect(const bson_t *doc, int64_t id, void *user)
{
    (void)doc;
    int64_t **out = user;
    *(*out)++ = id;
    return 0;
}

/* The page of q by the plain scan (cache NULL) or by c, which is built
 * over the records first when it does not answer q. */
static size_t s_page(const s_store *st, xp_projection_cache *c,
                     const xp_compiled_query *q, int64_t *ids, int64_t *matched)
{
    xp_query_scan *scan = xp__query_scan_new_ids(q);
    if (c) {
        int rounds = 0;
        while (!xp__projection_cache_ready(c, q, 42)) {
            cr_assert_lt(++rounds, 2, "the cache never answers");
            for (int k = 0; k < st->n; k++)
                xp__projection_cache_add(c, st->rec[k], k + 1);
            xp__projection_cache_done(c);
        }
        xp__projection_cache_scan(c, scan);
    } else {
        for (int k = 0; k < st->n; k++)
            xp__query_scan_add(scan, st->rec[k], k + 1);
    }
    int64_t *at = ids;
    cr_assert_eq(xp__query_scan_emit(scan, s_collect, &at), 0);
    *matched = xp__query_scan_matched(scan);
    xp__query_scan_destroy(&scan);
    return (size_t)(at - ids);
}

static const char *const s_filters[] = {
    NULL,
    "a < 3",
    "a == null",
    "a != null",
    "not (a >= 2)",
    "a > 9007199254740992",
    "a == 9007199254740993",
    "a in [0, 1.5, 'x', true, null]",
    "a not in [2, 'x\\u0000y']",
    "a >= 'a-rather-long-common-prefix-3'",
    "a < '2000-01-01'",
    "started < '1970-01-01T00:00:05Z' and status == 'succeeded'",
    "b != 1 or m > 0.5",
    "(s > 'name-0050' and not (f == true)) or opt.lr >= 0.05",
    "arr.0 == 2 or opt.lr == null",
    "result > 100 and result <= 140.5",
    "status == 'failed'",
    "m == false or m == true",
    "id > 350",
};

static const char *const s_sorts[] = {
    NULL,
    "a",
    "-a",
    "m,-a",
    "s",
    "-result",
    "b,-s,a",
    "-b,opt.lr,-m",
    "arr,-opt",
    "trial_id",
    "-id",
    "status,-u",
    "started,-f,a",
    /* more bits than one integer holds: the later keys compare apart */
    "u,-u,u,-u,u,-u,u,-u,a",
    "a,m,s,u,-a,-m,-s,-u,result",
    "missing,-nothing.here",
};

static const int64_t s_windows[][2] = {
    {0, 0}, {0, 10}, {3, 100}, {N / 2, 7}, {N - 3, 10}, {N + 5, 10}, {0, 1},
};

/* The query of filter, sort and window on c and by the scan: the same
 * count and rows; the rows compared. */
static size_t s_check(const s_store *st, xp_projection_cache *c,
                      const char *filter, const char *sort,
                      const int64_t window[2])
{
    xp_query q = XP_QUERY_INIT;
    q.filter = filter;
    q.sort = sort;
    q.offset = window[0];
    q.limit = window[1];
    xp_compiled_query cq;
    xp_error_t err;
    cr_assert_eq(xp__query_compile(&cq, &q, &err), 0, "%s", err.message);
    int64_t *want = bson_malloc((size_t)st->n * sizeof *want);
    int64_t *got = bson_malloc((size_t)st->n * sizeof *got);
    int64_t m_scan = -1, m_cached = -2;
    size_t n_scan = s_page(st, NULL, &cq, want, &m_scan);
    size_t n_cached = s_page(st, c, &cq, got, &m_cached);
    cr_assert_eq(m_cached, m_scan,
                 "filter '%s' sort '%s': %lld matched, scan %lld", filter, sort,
                 (long long)m_cached, (long long)m_scan);
    cr_assert_eq(n_cached, n_scan,
                 "filter '%s' sort '%s' window %lld+%lld: %zu rows, scan %zu",
                 filter, sort, (long long)q.offset, (long long)q.limit,
                 n_cached, n_scan);
    for (size_t i = 0; i < n_scan; i++)
        cr_assert_eq(got[i], want[i],
                     "filter '%s' sort '%s' window %lld+%lld row %zu: %lld, "
                     "scan %lld",
                     filter, sort, (long long)q.offset, (long long)q.limit, i,
                     (long long)got[i], (long long)want[i]);
    bson_free(want);
    bson_free(got);
    xp__query_clear(&cq);
    return n_scan;
}

Test(projection, cached_pages_are_the_pages_of_the_scan)
{
    s_store *st = bson_malloc(sizeof *st);
    s_store_init(st, N);
    xp_projection_cache *c = xp__projection_cache_new();
    size_t checked = 0;
    for (size_t f = 0; f < sizeof s_filters / sizeof *s_filters; f++)
        for (size_t s = 0; s < sizeof s_sorts / sizeof *s_sorts; s++)
            for (size_t w = 0; w < sizeof s_windows / sizeof *s_windows; w++)
                checked +=
                    s_check(st, c, s_filters[f], s_sorts[s], s_windows[w]);
    cr_assert_gt(checked, 10000);
    xp__projection_cache_destroy(&c);
    cr_assert_null(c);
    s_store_clear(st);
    bson_free(st);
}

/* Pages of many records, where the cache first keeps the items of the
 * window's buckets of the packed key (then selects among them). */
Test(projection, deep_pages_of_many_records)
{
    enum { BIG = 9000 };
    s_store *st = bson_malloc(sizeof *st);
    s_store_init(st, BIG);
    xp_projection_cache *c = xp__projection_cache_new();
    static const char *const filters[] = {NULL, "a < 3", "b != 1 or m > 0.5"};
    static const char *const sorts[] = {
        "a",      "-a", "m,-a", "-result",
        "b,-s,a", "-u", "-id",  "u,-u,u,-u,u,-u,u,-u,a",
    };
    static const int64_t windows[][2] = {
        {0, 100}, {BIG / 2, 100}, {BIG - 50, 100}, {1000, 1000},
        {0, 0},   {4321, 7},      {0, 1},
    };
    size_t checked = 0;
    for (size_t f = 0; f < sizeof filters / sizeof *filters; f++)
        for (size_t s = 0; s < sizeof sorts / sizeof *sorts; s++)
            for (size_t w = 0; w < sizeof windows / sizeof *windows; w++)
                checked += s_check(st, c, filters[f], sorts[s], windows[w]);
    cr_assert_gt(checked, 50000);
    xp__projection_cache_destroy(&c);
    s_store_clear(st);
    bson_free(st);
}

/* Queries over more fields than the cache holds: it starts again from
 * each query's own, and a query of more than it holds is not answered
 * (the store scans). */
Test(projection, fields_past_the_bound_start_again)
{
    s_store *st = bson_malloc(sizeof *st);
    s_store_init(st, N);
    xp_projection_cache *c = xp__projection_cache_new();
    static const int64_t window[2] = {5, 20};
    for (int j = 0; j < 90; j++) {
        char filter[96], sort[64];
        snprintf(filter, sizeof filter, "k%d == null and (b != 1 or m > 0)",
                 (j * 7) % 45);
        snprintf(sort, sizeof sort, "k%d,-a,s", j % 45);
        s_check(st, c, filter, sort, window);
    }
    /* 40 fields in one query */
    char filter[1024] = "a != 1";
    for (int k = 0; k < 39; k++) {
        size_t at = strlen(filter);
        snprintf(filter + at, sizeof filter - at, " and z%d == null", k);
    }
    xp_query q = XP_QUERY_INIT;
    q.filter = filter;
    q.sort = "-u";
    xp_compiled_query cq;
    cr_assert_eq(xp__query_compile(&cq, &q, NULL), 0);
    cr_assert_not(xp__projection_cache_ready(c, &cq, 42));
    cr_assert_not(xp__projection_cache_keeping(c));
    xp__projection_cache_done(c);
    cr_assert_not(xp__projection_cache_ready(c, &cq, 42));
    xp__query_clear(&cq);
    xp__projection_cache_destroy(&c);
    s_store_clear(st);
    bson_free(st);
}

/* A new version, or a drop, is a cache that does not answer until it is
 * built again; an empty store has empty pages. */
Test(projection, versions_and_drops_rebuild)
{
    xp_projection_cache *c = xp__projection_cache_new();
    xp_query q = XP_QUERY_INIT;
    q.filter = "a > 1";
    q.sort = "-a";
    xp_compiled_query cq;
    cr_assert_eq(xp__query_compile(&cq, &q, NULL), 0);
    cr_assert_not(xp__projection_cache_ready(c, &cq, 1));
    cr_assert(xp__projection_cache_keeping(c));
    xp__projection_cache_done(c); /* built over no record */
    cr_assert_not(xp__projection_cache_keeping(c));
    cr_assert(xp__projection_cache_ready(c, &cq, 1));
    xp_query_scan *scan = xp__query_scan_new_ids(&cq);
    xp__projection_cache_scan(c, scan);
    cr_assert_eq(xp__query_scan_matched(scan), 0);
    xp__query_scan_destroy(&scan);
    cr_assert_not(xp__projection_cache_ready(c, &cq, 2));
    bson_t doc;
    s_record(&doc, 4);
    xp__projection_cache_add(c, &doc, 5);
    xp__projection_cache_done(c);
    cr_assert(xp__projection_cache_ready(c, &cq, 2));
    xp__projection_cache_drop(c);
    cr_assert_not(xp__projection_cache_ready(c, &cq, 2));
    bson_destroy(&doc);
    xp__query_clear(&cq);
    xp__projection_cache_destroy(&c);
    xp__projection_cache_destroy(&c); /* NULL-safe */
}

/* Past its bound the cache stops keeping records, gives their memory
 * back and never answers; the store then scans. Within it, it answers. */
Test(projection, past_its_bound_it_does_not_answer)
{
    s_store *st = bson_malloc(sizeof *st);
    s_store_init(st, N);
    xp_query q = XP_QUERY_INIT;
    q.filter = "b != 1";
    q.sort = "-s,a";
    q.limit = 20;
    xp_compiled_query cq;
    cr_assert_eq(xp__query_compile(&cq, &q, NULL), 0);
    static const size_t bounds[] = {0, 4096, 64 << 10, 1 << 20};
    for (size_t b = 0; b < sizeof bounds / sizeof *bounds; b++) {
        xp_projection_cache *c = xp__projection_cache_new();
        xp__projection_cache_set_bound(c, bounds[b]);
        bool answered = false;
        for (int round = 0; round < 4 && !answered; round++) {
            answered = xp__projection_cache_ready(c, &cq, 7);
            if (answered)
                break;
            bool kept = true;
            for (int k = 0; k < st->n && kept; k++) {
                xp__projection_cache_add(c, st->rec[k], k + 1);
                kept = xp__projection_cache_keeping(c);
            }
            cr_assert(kept || bounds[b] < (1 << 20),
                      "bound %zu: stopped keeping", bounds[b]);
            xp__projection_cache_done(c);
        }
        cr_assert_eq(answered, bounds[b] == (1 << 20), "bound %zu: answered %d",
                     bounds[b], answered);
        if (answered) {
            int64_t want[N], got[N], m_want, m_got;
            size_t n_want = s_page(st, NULL, &cq, want, &m_want);
            size_t n_got = s_page(st, c, &cq, got, &m_got);
            cr_assert_eq(m_got, m_want);
            cr_assert_eq(n_got, n_want);
            cr_assert_arr_eq(got, want, n_want * sizeof *got);
        }
        xp__projection_cache_destroy(&c);
    }
    xp__query_clear(&cq);
    s_store_clear(st);
    bson_free(st);
}
