/* test_filter.c — the filter language and sort keys (internal API):
 * accepted and refused texts with their exact one-line messages and
 * columns, the semantics over a stored trial document (type classes,
 * missing and null, in / not in, dates, precedence, parentheses), the
 * order of sort keys across and within type classes, the MongoDB form,
 * and the streamed scan's page against a full sort. */
#include "../common.h"

#include "query/query.h"

#include <math.h>

TestSuite(filter, .timeout = 60);

/* ---------------------------------------------------------------- parsing */

static void assert_refused(const char *text, const char *message)
{
    xp_filter *f = NULL;
    xp_error_t err = {0};
    int rc = xp__filter_parse(&f, text, &err);
    cr_assert_eq(rc, -1, "'%s' was accepted", text);
    cr_assert_null(f);
    cr_assert_eq(err.code, XP_EINVAL, "'%s': code %u", text, err.code);
    cr_assert_eq(err.domain, XP_DOMAIN_ARGUMENT, "'%s': domain %u", text,
                 err.domain);
    cr_assert_str_eq(err.message, message, "'%s' gave '%s'", text, err.message);
    cr_assert_null(strchr(err.message, '\n'), "two lines: %s", err.message);
}

Test(filter, malformed_filters_name_the_column)
{
    static const char *const cases[][2] = {
        {"a > ", "filter: column 5: expected a value after '>'"},
        {"a >", "filter: column 4: expected a value after '>'"},
        {"=> 1", "filter: column 1: unknown operator '=>'"},
        {"a => 1", "filter: column 3: unknown operator '=>'"},
        {"status == \"fail", "filter: column 11: unterminated string"},
        {"a == 'x\\", "filter: column 6: unterminated string"},
        {"a == \"\\q\"", "filter: column 7: unknown escape '\\q' in a string"},
        {"a == \"\\ud800\"",
         "filter: column 7: invalid \\u escape (\\uXXXX, surrogates in "
         "pairs)"},
        {"a 1", "filter: column 3: expected an operator after 'a', found '1'"},
        {"a", "filter: column 2: expected an operator after 'a', found the "
              "end"},
        {"a == 1 and", "filter: column 11: expected a field name, found the "
                       "end"},
        {"a == 1 b == 2",
         "filter: column 8: expected 'and', 'or' or the end, found 'b'"},
        {"(a == 1", "filter: column 8: expected ')', 'and' or 'or', found "
                    "the end"},
        {"a == 1)", "filter: column 7: expected 'and', 'or' or the end, "
                    "found ')'"},
        {"status == failed",
         "filter: column 11: expected a value after '==' (strings are "
         "quoted: \"failed\")"},
        {"a in 1", "filter: column 6: expected '[' after 'in', found '1'"},
        {"a in [1 2]",
         "filter: column 9: expected ',' or ']' in the list, found '2'"},
        {"a in [1,]", "filter: column 9: expected a value after ','"},
        {"a not 1", "filter: column 7: expected 'in' after 'not', found '1'"},
        {"a < null", "filter: column 5: null is compared with == and != only"},
        {"a == 1x", "filter: column 6: invalid number '1x'"},
        {"a == 99999999999999999999",
         "filter: column 6: number '99999999999999999999' out of range"},
        {"a == 1e999", "filter: column 6: number '1e999' out of range"},
        {"a. == 1", "filter: column 3: expected a name after '.'"},
        {"a == 1 & b", "filter: column 8: unexpected character '&'"},
        {"é == 1", "filter: column 1: unexpected character '\\xc3\\xa9'"},
        {"a == \"é\" and # ", "filter: column 14: unexpected character '#'"},
        {"a == \"\xff\"", "filter: column 7: invalid UTF-8"},
        {"finished > \"2026-13-01\"",
         "filter: column 12: invalid date '2026-13-01' (expected "
         "YYYY-MM-DD[THH:MM[:SS[.fff]]][Z|+HH:MM])"},
        {"started < 'yesterday'",
         "filter: column 11: invalid date 'yesterday' (expected "
         "YYYY-MM-DD[THH:MM[:SS[.fff]]][Z|+HH:MM])"},
        {"parameters == 1", "filter: column 1: 'parameters' needs a "
                            "parameter name ('parameters.NAME')"},
        {"A == 1 AND b == 2",
         "filter: column 8: expected 'and', 'or' or the end, found 'AND'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        assert_refused(cases[i][0], cases[i][1]);
}

Test(filter, bounds_are_errors_not_crashes)
{
    char text[5000];
    memset(text, ' ', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    memcpy(text, "a == 1", 6);
    assert_refused(text, "filter: longer than 4096 bytes");

    /* 64 levels of parentheses parse, 65 do not */
    char deep[400] = "";
    for (int i = 0; i < 64; i++)
        strcat(deep, "(");
    strcat(deep, "a == 1");
    for (int i = 0; i < 64; i++)
        strcat(deep, ")");
    xp_filter *f = NULL;
    xp_error_t err = {0};
    cr_assert_eq(xp__filter_parse(&f, deep, &err), 0, "%s", err.message);
    xp__filter_destroy(&f);
    char deeper[400] = "(";
    strcat(deeper, deep);
    strcat(deeper, ")");
    assert_refused(deeper, "filter: column 65: nested deeper than 64 levels");
    char nots[400] = "";
    for (int i = 0; i < 65; i++)
        strcat(nots, "not ");
    strcat(nots, "a == 1");
    assert_refused(nots, "filter: column 257: nested deeper than 64 levels");

    /* 1000 values in a list parse, 1001 do not */
    char list[4096] = "a in [0";
    for (int i = 1; i < 1000; i++)
        strcat(list, ",1");
    strcat(list, "]");
    cr_assert_eq(xp__filter_parse(&f, list, &err), 0, "%s", err.message);
    xp__filter_destroy(&f);
    list[strlen(list) - 1] = '\0';
    strcat(list, ",2]");
    assert_refused(list, "filter: column 2007: more than 1000 values in a "
                         "list");
}

Test(filter, blank_filters_match_everything)
{
    xp_filter *f = (xp_filter *)1;
    cr_assert_eq(xp__filter_parse(&f, NULL, NULL), 0);
    cr_assert_null(f);
    cr_assert_eq(xp__filter_parse(&f, " \t\n", NULL), 0);
    cr_assert_null(f);
    cr_assert(xp__filter_match(NULL, NULL), "no filter skips damaged ones");
}

/* ---------------------------------------------------------------- semantics */

#define DATE_2026_12_01 INT64_C(1796083200000) /* 2026-12-01T00:00:00Z */

static void s_record(bson_t *doc)
{
    bson_init(doc);
    BSON_APPEND_INT64(doc, "trial_id", 7);
    BSON_APPEND_UTF8(doc, "experiment", "e");
    BSON_APPEND_UTF8(doc, "status", "failed");
    bson_t p, opt, arr;
    BSON_APPEND_DOCUMENT_BEGIN(doc, "parameters", &p);
    BSON_APPEND_INT64(&p, "i", 3);
    BSON_APPEND_DOUBLE(&p, "d", 2.5);
    BSON_APPEND_UTF8(&p, "s", "abc");
    BSON_APPEND_BOOL(&p, "b", true);
    BSON_APPEND_NULL(&p, "n");
    BSON_APPEND_INT64(&p, "big", (INT64_C(1) << 53) + 1);
    BSON_APPEND_DOUBLE(&p, "nan", NAN);
    BSON_APPEND_UTF8(&p, "status", "param");
    BSON_APPEND_UTF8(&p, "with-dash", "x");
    BSON_APPEND_DOCUMENT_BEGIN(&p, "opt", &opt);
    BSON_APPEND_DOUBLE(&opt, "lr", 0.01);
    bson_append_document_end(&p, &opt);
    BSON_APPEND_ARRAY_BEGIN(&p, "arr", &arr);
    BSON_APPEND_INT64(&arr, "0", 1);
    BSON_APPEND_INT64(&arr, "1", 2);
    bson_append_array_end(&p, &arr);
    bson_append_document_end(doc, &p);
    BSON_APPEND_DATE_TIME(doc, "started", DATE_2026_12_01 - 1000);
    BSON_APPEND_DATE_TIME(doc, "finished", DATE_2026_12_01 + 3600 * 1000);
    BSON_APPEND_DOUBLE(doc, "result", 0.5);
    BSON_APPEND_BOOL(doc, "success", false);
    BSON_APPEND_UTF8(doc, "description", "a \"quoted\"\nline");
}

static bool s_matches(const char *text, const bson_t *doc)
{
    xp_filter *f = NULL;
    xp_error_t err = {0};
    cr_assert_eq(xp__filter_parse(&f, text, &err), 0, "'%s': %s", text,
                 err.message);
    bool m = xp__filter_match(f, doc);
    xp__filter_destroy(&f);
    return m;
}

Test(filter, semantics_follow_mongodb)
{
    bson_t doc;
    s_record(&doc);
    static const struct {
        const char *text;
        bool match;
    } cases[] = {
        /* numbers across int and double */
        {"i == 3", true},
        {"i = 3", true},
        {"i == 3.0", true},
        {"i < 3.5", true},
        {"i > 2.999", true},
        {"i >= 3 and i <= 3", true},
        {"i != 3", false},
        {"d == 2.5", true},
        {"d > 2", true},
        {"d < 25e-1", false},
        {"d <= 25e-1", true},
        {"big == 9007199254740993", true},
        {"big == 9007199254740992", false},
        {"big > 9007199254740992", true},
        {"big == 9007199254740992.0", false},
        {"i == -3", false},
        {"nan == 1", false},
        {"nan != 1", true},
        {"nan < 1", false},
        /* strings bytewise; other classes never equal, never ordered */
        {"s == 'abc'", true},
        {"s == \"abc\"", true},
        {"s < 'abd'", true},
        {"s > 'ab'", true},
        {"s < 'B'", false},
        {"s == 3", false},
        {"s != 3", true},
        {"s > 3", false},
        {"s < 3", false},
        {"i == '3'", false},
        {"i != '3'", true},
        {"i > '1'", false},
        /* bools: not numbers; false < true */
        {"b == true", true},
        {"b == 1", false},
        {"b != 1", true},
        {"b > false", true},
        {"b < true", false},
        {"success == false", true},
        /* missing and null */
        {"missing == null", true},
        {"missing != null", false},
        {"missing == 1", false},
        {"missing != 1", true},
        {"missing > 1", false},
        {"missing < 1", false},
        {"n == null", true},
        {"n != null", false},
        {"n != 0", true},
        {"i == null", false},
        {"i != null", true},
        /* in, not in */
        {"i in [1, 2, 3]", true},
        {"i in [1, 2]", false},
        {"i in ['3', true]", false},
        {"i not in [1, 2]", true},
        {"i not in [3]", false},
        {"missing in [1, null]", true},
        {"missing not in [1, null]", false},
        {"status in ['failed', 'succeeded']", true},
        /* record fields and parameters */
        {"status == 'failed'", true},
        {"parameters.status == 'param'", true},
        {"params.status == 'param'", true},
        {"trial_id == 7", true},
        {"id == 7", true},
        {"result == 0.5", true},
        {"opt.lr == 0.01", true},
        {"parameters.opt.lr < 0.1", true},
        {"parameters.opt == null", false},
        {"with-dash == 'x'", true},
        {"arr.1 == 2", true},
        {"arr == 1", false},
        {"description == \"a \\\"quoted\\\"\\nline\"", true},
        {"description == 'a \"quoted\"\\u000aline'", true},
        /* dates */
        {"finished > '2026-12-01'", true},
        {"finished > \"2026-12-01T01:00:00Z\"", false},
        {"finished >= '2026-12-01T01:00:00Z'", true},
        {"finished == '2026-12-01T02:00:00+01:00'", true},
        {"finished == '2026-12-01 01:00'", true},
        {"finished < '2026-12-01T01:00:00.001Z'", true},
        {"started < '2026-12-01'", true},
        {"started == '2026-11-30T23:59:59Z'", true},
        {"finished > 5", false},
        {"finished != 5", true},
        {"finished != null", true},
        /* precedence: not > and > or; parentheses */
        {"i == 1 or i == 3 and s == 'abc'", true},
        {"i == 3 or i == 1 and s == 'x'", true},
        {"(i == 3 or i == 1) and s == 'x'", false},
        {"not i == 1 and s == 'abc'", true},
        {"not (i == 3 and s == 'abc')", false},
        {"not not i == 3", true},
        {"i==3and(s=='abc')", false}, /* 3and is not a number */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        if (strcmp(cases[i].text, "i==3and(s=='abc')") == 0) {
            assert_refused(cases[i].text,
                           "filter: column 4: invalid number '3and'");
            continue;
        }
        cr_assert_eq(s_matches(cases[i].text, &doc), cases[i].match,
                     "'%s' should %smatch", cases[i].text,
                     cases[i].match ? "" : "not ");
    }
    /* A damaged record matches no filter. */
    xp_filter *f = NULL;
    cr_assert_eq(xp__filter_parse(&f, "missing == null", NULL), 0);
    cr_assert(!xp__filter_match(f, NULL));
    xp__filter_destroy(&f);
    bson_destroy(&doc);
}

Test(filter, dates_parse_as_iso_8601)
{
    int64_t ms;
    cr_assert(xp__field_parse_date("1970-01-01", 10, &ms) && ms == 0);
    cr_assert(xp__field_parse_date("2026-12-01", 10, &ms) &&
              ms == DATE_2026_12_01);
    cr_assert(xp__field_parse_date("2024-02-29T12:30:15.25Z", 23, &ms) &&
              ms == INT64_C(1709209815250));
    cr_assert(xp__field_parse_date("1969-12-31T23:59:59.999Z", 24, &ms) &&
              ms == -1);
    static const char *const bad[] = {
        "2026-02-29",
        "2026-00-10",
        "2026-1-10",
        "2026-01-10T24:00",
        "2026-01-10T",
        "20260110",
        "2026-01-10T10:00+2",
        "2026-01-10x",
        "2026-01-10T10:00:00.",
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert(!xp__field_parse_date(bad[i], strlen(bad[i]), &ms), "%s",
                  bad[i]);
}

/* ---------------------------------------------------------------- sort keys */

/* {parameters: {v: <value i>}} for the values in BSON order. */
static void s_value_doc(bson_t *doc, int i)
{
    bson_t p, sub;
    bson_init(doc);
    BSON_APPEND_DOCUMENT_BEGIN(doc, "parameters", &p);
    switch (i) {
    case 0: break; /* missing */
    case 1: BSON_APPEND_DOUBLE(&p, "v", -INFINITY); break;
    case 2: BSON_APPEND_INT64(&p, "v", -5); break;
    case 3: BSON_APPEND_DOUBLE(&p, "v", -0.5); break;
    case 4: BSON_APPEND_DOUBLE(&p, "v", 0.25); break;
    case 5: BSON_APPEND_INT64(&p, "v", 1); break;
    case 6: BSON_APPEND_DOUBLE(&p, "v", 1.5); break;
    case 7: BSON_APPEND_INT64(&p, "v", INT64_MAX); break;
    case 8: BSON_APPEND_UTF8(&p, "v", ""); break;
    case 9: BSON_APPEND_UTF8(&p, "v", "a"); break;
    case 10: bson_append_utf8(&p, "v", 1, "a\0b", 3); break;
    case 11: BSON_APPEND_UTF8(&p, "v", "a\x01"); break;
    case 12: BSON_APPEND_UTF8(&p, "v", "ab"); break;
    case 13: BSON_APPEND_UTF8(&p, "v", "\xc3\xa9"); break;
    case 14:
        BSON_APPEND_DOCUMENT_BEGIN(&p, "v", &sub);
        bson_append_document_end(&p, &sub);
        break;
    case 15:
        BSON_APPEND_ARRAY_BEGIN(&p, "v", &sub);
        bson_append_array_end(&p, &sub);
        break;
    case 16:
        bson_append_binary(&p, "v", 1, BSON_SUBTYPE_BINARY, NULL, 0);
        break;
    case 17: BSON_APPEND_BOOL(&p, "v", false); break;
    case 18: BSON_APPEND_BOOL(&p, "v", true); break;
    case 19: BSON_APPEND_DATE_TIME(&p, "v", -1); break;
    case 20: BSON_APPEND_DATE_TIME(&p, "v", 0); break;
    }
    bson_append_document_end(doc, &p);
}
#define N_VALUES 21

static int s_memcmp(const xp_bytes *a, const xp_bytes *b)
{
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->data, b->data, n);
    return c ? c : (a->len > b->len) - (a->len < b->len);
}

static void s_key(const char *sort, int value, xp_bytes *out)
{
    xp_sort *s = NULL;
    xp_error_t err = {0};
    cr_assert_eq(xp__sort_parse(&s, sort, &err), 0, "%s", err.message);
    bson_t doc;
    s_value_doc(&doc, value);
    out->len = 0;
    xp__sort_key(s, &doc, out);
    bson_destroy(&doc);
    xp__sort_destroy(&s);
}

Test(filter, sort_keys_follow_bson_order)
{
    xp_bytes a = {0}, b = {0};
    for (int i = 0; i < N_VALUES; i++) {
        for (int j = 0; j < N_VALUES; j++) {
            s_key("v", i, &a);
            s_key("v", j, &b);
            int want = (i > j) - (i < j);
            int got = s_memcmp(&a, &b);
            got = (got > 0) - (got < 0);
            cr_assert_eq(got, want, "ascending: value %d vs %d gave %d", i, j,
                         got);
            s_key(" -v ", i, &a);
            s_key("-v", j, &b);
            got = s_memcmp(&a, &b);
            got = (got > 0) - (got < 0);
            cr_assert_eq(got, -want, "descending: value %d vs %d gave %d", i, j,
                         got);
        }
    }
    /* Missing and null tie (then the trial id decides); 1 and 1.0 too. */
    bson_t d1 = BSON_INITIALIZER, d2 = BSON_INITIALIZER;
    BSON_APPEND_NULL(&d2, "result");
    xp_sort *s = NULL;
    cr_assert_eq(xp__sort_parse(&s, "result,-a", NULL), 0);
    a.len = b.len = 0;
    xp__sort_key(s, &d1, &a);
    xp__sort_key(s, &d2, &b);
    cr_assert_eq(s_memcmp(&a, &b), 0);
    a.len = 0;
    xp__sort_key(s, NULL, &a); /* damaged: every field missing */
    cr_assert_eq(s_memcmp(&a, &b), 0);
    xp__sort_destroy(&s);
    bson_destroy(&d1);
    bson_destroy(&d2);
    xp__bytes_clear(&a);
    xp__bytes_clear(&b);
}

Test(filter, malformed_sorts_name_the_column)
{
    static const char *const cases[][2] = {
        {"a,,b", "sort: column 3: expected a field name"},
        {"-", "sort: column 2: expected a field name"},
        {"a b", "sort: column 3: expected ',' between keys, found 'b'"},
        {"a,", "sort: column 3: expected a field name"},
        {"a.", "sort: column 3: expected a name after '.'"},
        {"parameters", "sort: column 1: 'parameters' needs a parameter name "
                       "('parameters.NAME')"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        xp_sort *s = NULL;
        xp_error_t err = {0};
        cr_assert_eq(xp__sort_parse(&s, cases[i][0], &err), -1, "%s",
                     cases[i][0]);
        cr_assert_eq(err.code, XP_EINVAL);
        cr_assert_str_eq(err.message, cases[i][1]);
    }
    char many[200] = "k0";
    for (int i = 1; i <= 32; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), ",k%d", i);
    xp_sort *s = NULL;
    xp_error_t err = {0};
    cr_assert_eq(xp__sort_parse(&s, many, &err), -1);
    cr_assert_str_eq(err.message, "sort: column 119: more than 32 sort keys");
    xp_query q = XP_QUERY_INIT;
    q.sort = "a,,b";
    cr_assert_eq(xp_query_check(&q, &err), -1);
    cr_assert_str_eq(err.message, "sort: column 3: expected a field name");
    q.sort = NULL;
    q.limit = -1;
    cr_assert_eq(xp_query_check(&q, &err), -1);
    q.limit = 0;
    q.version = 99;
    cr_assert_eq(xp_query_check(&q, &err), -1);
}

/* ---------------------------------------------------------------- MongoDB */

static char *s_mongo_json(const char *text)
{
    xp_filter *f = NULL;
    xp_error_t err = {0};
    cr_assert_eq(xp__filter_parse(&f, text, &err), 0, "%s", err.message);
    bson_t q = BSON_INITIALIZER;
    xp__filter_mongo(f, &q);
    char *json = bson_as_canonical_extended_json(&q, NULL);
    bson_destroy(&q);
    xp__filter_destroy(&f);
    return json;
}

Test(filter, mongodb_form)
{
    static const char *const cases[][2] = {
        {"a > 1",
         "{ \"parameters.a\" : { \"$gt\" : { \"$numberLong\" : \"1\" } } }"},
        {"status == 'x' and not b == true",
         "{ \"$and\" : [ { \"status\" : { \"$eq\" : \"x\" } }, { \"$nor\" : "
         "[ { \"parameters.b\" : { \"$eq\" : true, \"$type\" : \"bool\" } } "
         "] } ] }"},
        {"a != null or a in [1, 'x']",
         "{ \"$or\" : [ { \"$nor\" : [ { \"parameters.a\" : { \"$eq\" : null "
         "} } ] }, { \"$or\" : [ { \"parameters.a\" : { \"$in\" : [ { "
         "\"$numberLong\" : \"1\" } ], \"$type\" : \"number\" } }, { "
         "\"parameters.a\" : { \"$in\" : [ \"x\" ] } } ] } ] }"},
        {"finished >= '1970-01-01T00:00:01Z'",
         "{ \"finished\" : { \"$gte\" : { \"$date\" : { \"$numberLong\" : "
         "\"1000\" } } } }"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *json = s_mongo_json(cases[i][0]);
        cr_assert_str_eq(json, cases[i][1], "%s", cases[i][0]);
        bson_free(json);
    }
}

/* ---------------------------------------------------------------- the scan */

static int s_collect(const bson_t *doc, int64_t id, void *user)
{
    (void)doc;
    int64_t **out = user;
    *(*out)++ = id;
    return 0;
}

/* The scan's page is the window of the full order (key, then id). */
Test(filter, scan_keeps_the_window_of_the_full_order)
{
    enum { N = 200 };
    bson_t docs[N];
    for (int i = 0; i < N; i++) {
        bson_t p;
        bson_init(&docs[i]);
        BSON_APPEND_INT64(&docs[i], "trial_id", i + 1);
        BSON_APPEND_DOCUMENT_BEGIN(&docs[i], "parameters", &p);
        if (i % 7)
            BSON_APPEND_INT64(&p, "k", (i * 37) % 11);
        bson_append_document_end(&docs[i], &p);
    }
    static const int64_t windows[][2] = {{0, 0},    {0, 10},  {5, 10},
                                         {190, 20}, {300, 5}, {0, 1}};
    for (size_t w = 0; w < sizeof windows / sizeof *windows; w++) {
        xp_query q = XP_QUERY_INIT;
        q.filter = "k != 3";
        q.sort = "-k";
        q.offset = windows[w][0];
        q.limit = windows[w][1];
        xp_compiled_query cq;
        cr_assert_eq(xp__query_compile(&cq, &q, NULL), 0);
        xp_query_scan *scan = xp__query_scan_new(&cq);
        for (int i = 0; i < N; i++)
            xp__query_scan_add(scan, &docs[i], i + 1);
        int64_t got[N], *at = got;
        cr_assert_eq(xp__query_scan_emit(scan, s_collect, &at), 0);
        /* expected: matching ids by (k descending, missing last; id) */
        int64_t want[N];
        size_t n = 0;
        for (int k = 10; k >= -1; k--)
            for (int i = 0; i < N; i++) {
                int ki = i % 7 ? (i * 37) % 11 : -1;
                if (ki == k && k != 3)
                    want[n++] = i + 1;
            }
        cr_assert_eq(xp__query_scan_matched(scan), (int64_t)n);
        size_t from = (size_t)q.offset < n ? (size_t)q.offset : n;
        size_t to =
            q.limit && from + (size_t)q.limit < n ? from + (size_t)q.limit : n;
        cr_assert_eq((size_t)(at - got), to - from, "window %zu: %td rows", w,
                     at - got);
        for (size_t i = from; i < to; i++)
            cr_assert_eq(got[i - from], want[i], "window %zu row %zu", w, i);
        xp__query_scan_destroy(&scan);
        xp__query_clear(&cq);
    }
    for (int i = 0; i < N; i++)
        bson_destroy(&docs[i]);
}
