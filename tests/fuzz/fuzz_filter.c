/* fuzz_filter.c — libFuzzer target for the filter language and sort keys:
 * the input up to its first NUL is a filter (and a sort) text; what
 * follows the NUL, when any, is a document evaluated unchecked, as the
 * local store's xp_match reads stored bytes. A filter that compiles is
 * evaluated on fixed trial documents, its negation must give the opposite
 * answer, the scan's field plan the same answers and sort keys as one
 * lookup per field, also a plan of more fields (the projection cache's),
 * and its MongoDB form must be valid BSON. Pages of the projection
 * cache's columns (filter and sort from the text) must be the plain
 * scan's pages. */
#include "query/projection.h"

#include <stdlib.h>
#include <string.h>

/* Records: docs, twice over (ties, repeated values). */
#define S_RECORDS(n) (2 * (n))

static int s_collect(const bson_t *doc, int64_t id, void *user)
{
    (void)doc;
    int64_t **out = user;
    *(*out)++ = id;
    return 0;
}

/* The page of q by the plain scan (c NULL) or, as the local store asks
 * for it, by cache c (which builds it, unless q has more fields than it
 * holds). */
static size_t s_page(xp_projection_cache *c, const xp_compiled_query *q,
                     const bson_t *const *docs, size_t n, int64_t *ids,
                     int64_t *matched)
{
    xp_query_scan *scan = xp__query_scan_new_ids(q);
    bool cached = c && xp__projection_cache_ready(c, q, 1);
    if (c && !cached && xp__projection_cache_keeping(c)) {
        for (size_t i = 0; i < S_RECORDS(n); i++)
            xp__projection_cache_add(c, docs[i % n], (int64_t)i + 1);
        cached = xp__projection_cache_keeping(c);
        xp__projection_cache_done(c);
        if (!cached)
            abort(); /* a few records fit any bound */
    }
    if (cached) {
        xp__projection_cache_scan(c, scan);
    } else {
        for (size_t i = 0; i < S_RECORDS(n); i++)
            xp__query_scan_add(scan, docs[i % n], (int64_t)i + 1);
    }
    int64_t *at = ids;
    xp__query_scan_emit(scan, s_collect, &at);
    *matched = xp__query_scan_matched(scan);
    xp__query_scan_destroy(&scan);
    return (size_t)(at - ids);
}

static void s_cached(xp_projection_cache *c, const char *filter,
                     const char *sort, const bson_t *const *docs, size_t n)
{
    static const int64_t windows[][2] = {{0, 0}, {1, 2}, {3, 1}};
    for (size_t w = 0; w < sizeof windows / sizeof *windows; w++) {
        xp_query q = XP_QUERY_INIT;
        q.filter = filter;
        q.sort = sort;
        q.offset = windows[w][0];
        q.limit = windows[w][1];
        xp_compiled_query cq;
        if (xp__query_compile(&cq, &q, NULL) == 0) {
            int64_t want[S_RECORDS(4)], got[S_RECORDS(4)], m_want, m_got;
            size_t n_want = s_page(NULL, &cq, docs, n, want, &m_want);
            size_t n_got = s_page(c, &cq, docs, n, got, &m_got);
            if (n_got != n_want || m_got != m_want ||
                (n_want && memcmp(got, want, n_want * sizeof *got) != 0))
                abort();
        }
        xp__query_clear(&cq);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A trial record with values of every class. */
static void s_fixed(bson_t *doc)
{
    bson_t p, sub;
    bson_init(doc);
    BSON_APPEND_INT64(doc, "trial_id", 3);
    BSON_APPEND_UTF8(doc, "status", "succeeded");
    BSON_APPEND_DOCUMENT_BEGIN(doc, "parameters", &p);
    BSON_APPEND_INT64(&p, "a", 2);
    BSON_APPEND_DOUBLE(&p, "b", -0.5);
    BSON_APPEND_UTF8(&p, "s", "x\xc3\xa9");
    BSON_APPEND_BOOL(&p, "f", true);
    BSON_APPEND_NULL(&p, "n");
    BSON_APPEND_DOCUMENT_BEGIN(&p, "opt", &sub);
    BSON_APPEND_DOUBLE(&sub, "lr", 0.1);
    bson_append_document_end(&p, &sub);
    BSON_APPEND_ARRAY_BEGIN(&p, "arr", &sub);
    BSON_APPEND_INT32(&sub, "0", 1);
    bson_append_array_end(&p, &sub);
    bson_append_binary(&p, "blob", -1, BSON_SUBTYPE_BINARY,
                       (const uint8_t *)"\0\1", 2);
    bson_append_document_end(doc, &p);
    BSON_APPEND_DATE_TIME(doc, "started", 1000);
    BSON_APPEND_DATE_TIME(doc, "finished", 2000);
    BSON_APPEND_DOUBLE(doc, "result", 1.5);
    BSON_APPEND_BOOL(doc, "success", true);
}

/* A plan of more fields (the projection cache's, which holds the fields
 * of several queries) finds the same values for a query's fields. The
 * extra fields of the larger plan: */
static const char *const s_extra[] = {"opt",    "opt.lr", "result",
                                      "status", "s",      "arr.0"};
#define S_EXTRA (sizeof s_extra / sizeof *s_extra)

/* A plan of q's fields (add adds them to it) and the extra ones; *fields
 * holds the extra fields (freed by s_big_free). */
static xp_field_plan *s_big_plan(xp_field *fields)
{
    xp_field_plan *p = xp__field_plan_new();
    for (size_t i = 0; i < S_EXTRA; i++) {
        if (xp__field_init(&fields[i], s_extra[i], strlen(s_extra[i])))
            abort();
        xp__field_plan_add(p, &fields[i]);
    }
    return p;
}

static void s_big_free(xp_field_plan **p, xp_field *fields)
{
    xp__field_plan_destroy(p);
    for (size_t i = 0; i < S_EXTRA; i++)
        xp__field_clear(&fields[i]);
}

static void s_evaluate(const xp_filter *f, const char *text,
                       const bson_t *const *docs, size_t n)
{
    /* not (text) is the negation, when it is not one level too deep */
    char *negated = bson_strdup_printf("not (%s)", text);
    xp_filter *g = NULL;
    if (xp__filter_parse(&g, negated, NULL) != 0)
        g = NULL;
    xp_field_plan *plan = xp__field_plan_new();
    uint32_t *slots = xp__filter_plan(f, plan);
    for (size_t i = 0; i < n; i++) {
        bool m = xp__filter_match(f, docs[i]);
        /* the scan's one walk per document finds what each lookup does */
        xp__field_plan_find(plan, docs[i]);
        if (xp__filter_match_found(f, plan, slots, docs[i] != NULL) != m)
            abort();
        /* (a damaged record, NULL, matches neither) */
        if (g && docs[i] && xp__filter_match(g, docs[i]) == m)
            abort();
    }
    xp_field extra[S_EXTRA];
    xp_field_plan *big = s_big_plan(extra);
    uint32_t *big_slots = xp__filter_plan(f, big);
    for (size_t i = 0; i < n; i++) {
        xp__field_plan_find(big, docs[i]);
        if (xp__filter_match_found(f, big, big_slots, docs[i] != NULL) !=
            xp__filter_match(f, docs[i]))
            abort();
    }
    bson_free(big_slots);
    s_big_free(&big, extra);
    bson_free(slots);
    xp__field_plan_destroy(&plan);
    xp__filter_destroy(&g);
    bson_free(negated);
    bson_t q = BSON_INITIALIZER;
    xp__filter_mongo(f, &q);
    if (!bson_validate(&q, BSON_VALIDATE_NONE, NULL))
        abort();
    bson_destroy(&q);
}

static void s_sort(const char *text, const bson_t *const *docs, size_t n)
{
    xp_sort *s = NULL;
    if (xp__sort_parse(&s, text, NULL) != 0)
        return;
    xp_bytes key = {0}, found = {0};
    xp_field_plan *plan = xp__field_plan_new();
    uint32_t *slots = xp__sort_plan(s, plan);
    for (size_t i = 0; i < n; i++) {
        key.len = found.len = 0;
        xp__sort_key(s, docs[i], &key);
        xp__field_plan_find(plan, docs[i]);
        xp__sort_key_found(s, plan, slots, &found);
        if (key.len != found.len ||
            (key.len && memcmp(key.data, found.data, key.len) != 0))
            abort();
    }
    xp_field extra[S_EXTRA];
    xp_field_plan *big = s_big_plan(extra);
    uint32_t *big_slots = xp__sort_plan(s, big);
    for (size_t i = 0; i < n; i++) {
        key.len = found.len = 0;
        xp__sort_key(s, docs[i], &key);
        xp__field_plan_find(big, docs[i]);
        xp__sort_key_found(s, big, big_slots, &found);
        if (key.len != found.len ||
            (key.len && memcmp(key.data, found.data, key.len) != 0))
            abort();
    }
    bson_free(big_slots);
    s_big_free(&big, extra);
    bson_free(slots);
    xp__field_plan_destroy(&plan);
    xp__bytes_clear(&found);
    bson_t m = BSON_INITIALIZER;
    xp__sort_mongo(s, &m);
    bson_destroy(&m);
    xp__bytes_clear(&key);
    xp__sort_destroy(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t text_len = nul ? (size_t)(nul - data) : size;
    char *text = bson_malloc(text_len + 1);
    memcpy(text, data, text_len);
    text[text_len] = '\0';
    bson_t fixed, empty = BSON_INITIALIZER, given;
    s_fixed(&fixed);
    const bson_t *docs[4] = {&fixed, &empty, NULL};
    size_t n = 3;
    size_t rest = nul ? size - text_len - 1 : 0;
    if (rest >= 5 && bson_init_static(&given, nul + 1, rest))
        docs[n++] = &given;

    xp_filter *f = NULL;
    if (xp__filter_parse(&f, text, NULL) == 0 && f)
        s_evaluate(f, text, docs, n);
    xp__filter_destroy(&f);
    s_sort(text, docs, n);
    xp_projection_cache *c = xp__projection_cache_new();
    s_cached(c, text, NULL, docs, n);
    s_cached(c, NULL, text, docs, n);
    s_cached(c, text, "-a,s,b,-result", docs, n);
    xp__projection_cache_destroy(&c);
    bson_destroy(&fixed);
    bson_destroy(&empty);
    bson_free(text);
    return 0;
}
