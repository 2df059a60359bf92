/* test_value.c — every value kind (null, bool, int64, double, string incl.
 * UTF-8, blobs of 0 bytes and several MB, arrays, nested documents,
 * datetime) through setters/readers, dup, type-sensitive equality, JSON out
 * and in, script-mode literals, and stored round-trips through real trials
 * (result, history, trial document, persisted value, parameters). */
#include "../common.h"

#include <math.h>

TestSuite(value, .init = xpt_setup, .fini = xpt_teardown, .timeout = 60);

#define BIG_BLOB (5u * 1024u * 1024u + 7u)

static const char UTF8_TEXT[] =
    "h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93 \xe6\x97\xa5\xe6\x9c\xac "
    "\xf0\x9f\x8e\x89"; /* "héllo wörld ✓ 日本 🎉" */

/* Deterministic pseudo-random bytes so corruption anywhere is caught. */
static unsigned char *make_bytes(size_t n)
{
    unsigned char *p = malloc(n ? n : 1);
    cr_assert_not_null(p, "out of memory");
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (unsigned char)x;
    }
    return p;
}

/* One value of every kind, for the round-trip tests. */
enum { N_SAMPLES = 14 };

static xp_value *make_sample(int k, const char **label)
{
    xp_value *v = xp_value_new();
    cr_assert_not_null(v, "xp_value_new");
    int rc = 0;
    switch (k) {
    case 0:
        *label = "null";
        rc = xp_set_null(v);
        break;
    case 1:
        *label = "bool true";
        rc = xp_set_bool(v, true);
        break;
    case 2:
        *label = "bool false";
        rc = xp_set_bool(v, false);
        break;
    case 3:
        *label = "int64 max";
        rc = xp_set_int64(v, INT64_MAX);
        break;
    case 4:
        *label = "int64 min";
        rc = xp_set_int64(v, INT64_MIN);
        break;
    case 5:
        *label = "double";
        rc = xp_set_double(v, -1.25e-7);
        break;
    case 6:
        *label = "double integral";
        rc = xp_set_double(v, 1.0);
        break;
    case 7:
        *label = "utf-8 string";
        rc = xp_set_string(v, UTF8_TEXT);
        break;
    case 8:
        *label = "empty string";
        rc = xp_set_string(v, "");
        break;
    case 9:
        *label = "empty blob";
        rc = xp_set_blob(v, "", 0);
        break;
    case 10: {
        *label = "5 MB blob";
        unsigned char *b = make_bytes(BIG_BLOB);
        rc = xp_set_blob(v, b, BIG_BLOB);
        free(b);
        break;
    }
    case 11:
        *label = "datetime";
        rc = xp_set_datetime(v, 1700000000123);
        break;
    case 12: {
        *label = "array";
        rc = xp_set_array(v);
        cr_assert_eq(xp_set_int64(xp_array_append(v), 1), 0, "append");
        cr_assert_eq(xp_set_double(xp_array_append(v), 2.5), 0, "append");
        cr_assert_eq(xp_set_string(xp_array_append(v), "x"), 0, "append");
        xp_array_append(v); /* null */
        xp_value *inner = xp_array_append(v);
        cr_assert_eq(xp_set_array(inner), 0, "inner array");
        cr_assert_eq(xp_set_bool(xp_array_append(inner), true), 0, "inner");
        break;
    }
    default: {
        *label = "nested document";
        rc = xp_set_document(v);
        cr_assert_eq(xp_set_int64(xp_document_set(v, "i"), 42), 0, "i");
        cr_assert_eq(xp_set_string(xp_document_set(v, "s"), UTF8_TEXT), 0, "s");
        xp_value *sub = xp_document_set(v, "sub");
        cr_assert_eq(xp_set_document(sub), 0, "sub");
        xp_value *deep = xp_document_set(sub, "deep");
        cr_assert_eq(xp_set_document(deep), 0, "deep");
        cr_assert_eq(xp_set_double(xp_document_set(deep, "d"), 0.5), 0, "d");
        xp_value *arr = xp_document_set(sub, "list");
        cr_assert_eq(xp_set_array(arr), 0, "list");
        cr_assert_eq(xp_set_datetime(xp_array_append(arr), 86400000), 0, "dt");
        unsigned char bytes[3] = {0, 255, 7};
        cr_assert_eq(xp_set_blob(xp_document_set(v, "b"), bytes, 3), 0, "b");
        break;
    }
    }
    cr_assert_eq(rc, 0, "setting sample %s failed", *label);
    return v;
}

/* ---------------------------------------------------------------- kinds */

Test(value, type_names)
{
    static const char *const expected[] = {"null",   "bool",     "int64",
                                           "double", "string",   "blob",
                                           "array",  "document", "datetime"};
    for (int t = XP_TYPE_NULL; t <= XP_TYPE_DATETIME; t++)
        cr_assert_str_eq(xp_type_name((xp_type)t), expected[t],
                         "xp_type_name(%d) = '%s', expected '%s'", t,
                         xp_type_name((xp_type)t), expected[t]);
}

Test(value, null_and_scalars)
{
    xp_value *v = xp_value_new();
    cr_assert_eq(xp_value_type(v), XP_TYPE_NULL, "new value is %s",
                 xp_type_name(xp_value_type(v)));

    cr_assert_eq(xp_set_bool(v, true), 0, "set_bool");
    cr_assert_eq(xp_value_type(v), XP_TYPE_BOOL, "type after set_bool");
    cr_assert(xp_as_bool(v), "as_bool(true) is false");
    cr_assert_eq(xp_as_int64(v), 1, "as_int64(true) = %lld",
                 (long long)xp_as_int64(v));
    cr_assert_eq(xp_set_bool(v, false), 0, "set_bool");
    cr_assert(!xp_as_bool(v), "as_bool(false) is true");

    const int64_t ints[] = {0, 1, -3, INT64_MAX, INT64_MIN, (int64_t)1 << 53};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        cr_assert_eq(xp_set_int64(v, ints[i]), 0, "set_int64");
        cr_assert_eq(xp_value_type(v), XP_TYPE_INT64, "type after set_int64");
        cr_assert_eq(xp_as_int64(v), ints[i], "as_int64 = %lld, want %lld",
                     (long long)xp_as_int64(v), (long long)ints[i]);
    }
    cr_assert_eq(xp_set_int64(v, 7), 0, "set_int64");
    cr_assert_float_eq(xp_as_double(v), 7.0, 0, "as_double(int 7) = %g",
                       xp_as_double(v));

    const double ds[] = {0.0, 1.5, -2.75, 1e-300, 1e300, 3.141592653589793};
    for (size_t i = 0; i < sizeof ds / sizeof ds[0]; i++) {
        cr_assert_eq(xp_set_double(v, ds[i]), 0, "set_double");
        cr_assert_eq(xp_value_type(v), XP_TYPE_DOUBLE, "type after set_double");
        cr_assert(xp_as_double(v) == ds[i], "as_double = %.17g, want %.17g",
                  xp_as_double(v), ds[i]);
    }
    cr_assert_eq(xp_set_double(v, 2.9), 0, "set_double");
    cr_assert_eq(xp_as_int64(v), 2, "as_int64(2.9) = %lld (truncation)",
                 (long long)xp_as_int64(v));

    cr_assert_eq(xp_set_datetime(v, 1700000000123), 0, "set_datetime");
    cr_assert_eq(xp_value_type(v), XP_TYPE_DATETIME, "type after datetime");
    cr_assert_eq(xp_as_int64(v), 1700000000123, "as_int64(datetime) = %lld",
                 (long long)xp_as_int64(v));

    /* Non-numeric readers return 0 / NULL for other types. */
    cr_assert_eq(xp_set_string(v, "12"), 0, "set_string");
    cr_assert_eq(xp_as_int64(v), 0, "as_int64(string) = %lld",
                 (long long)xp_as_int64(v));
    cr_assert_null(xp_as_blob(v, NULL), "as_blob(string) not NULL");
    cr_assert_eq(xp_set_null(v), 0, "set_null");
    cr_assert_eq(xp_value_type(v), XP_TYPE_NULL, "type after set_null");
    cr_assert_null(xp_as_string(v, NULL), "as_string(null) not NULL");
    cr_assert_eq(xp_value_count(v), 0, "count(null)");
    cr_assert_null(xp_value_at(v, 0), "at(null, 0)");
    xp_value_destroy(&v);
    cr_assert_null(v, "destroy did not reset the pointer");
    xp_value_destroy(&v); /* NULL-safe */
    xp_value_destroy(NULL);
}

Test(value, strings)
{
    xp_value *v = xp_value_new();
    size_t len = 99;
    cr_assert_eq(xp_set_string(v, UTF8_TEXT), 0, "set UTF-8 string");
    const char *s = xp_as_string(v, &len);
    cr_assert_not_null(s, "as_string returned NULL");
    cr_assert_str_eq(s, UTF8_TEXT, "UTF-8 text changed: '%s'", s);
    cr_assert_eq(len, strlen(UTF8_TEXT), "len %zu, want %zu", len,
                 strlen(UTF8_TEXT));

    cr_assert_eq(xp_set_string(v, ""), 0, "set empty string");
    s = xp_as_string(v, &len);
    cr_assert_not_null(s, "empty string read as NULL");
    cr_assert_eq(len, 0, "empty string len %zu", len);
    cr_assert_str_empty(s, "empty string reads '%s'", s);

    cr_assert_eq(xp_set_string_len(v, "abcdef", 3), 0, "set_string_len");
    s = xp_as_string(v, &len);
    cr_assert_str_eq(s, "abc", "set_string_len(3) gave '%s'", s);
    cr_assert_eq(len, 3, "len %zu", len);

    /* Invalid UTF-8 is refused. */
    cr_assert_eq(xp_set_string(v, "bad \xff\xfe bytes"), -1,
                 "invalid UTF-8 accepted");
    cr_assert_eq(xp_set_string(v, "\xc3"), -1, "truncated UTF-8 accepted");
    xp_value_destroy(&v);
}

Test(value, blobs)
{
    xp_value *v = xp_value_new();
    size_t len = 99;
    cr_assert_eq(xp_set_blob(v, NULL, 0), 0, "0-byte blob");
    cr_assert_eq(xp_value_type(v), XP_TYPE_BLOB, "0-byte blob type %s",
                 xp_type_name(xp_value_type(v)));
    cr_assert_not_null(xp_as_blob(v, &len), "0-byte blob reads as NULL");
    cr_assert_eq(len, 0, "0-byte blob len %zu", len);

    unsigned char *big = make_bytes(BIG_BLOB);
    cr_assert_eq(xp_set_blob(v, big, BIG_BLOB), 0, "5 MB blob");
    const void *p = xp_as_blob(v, &len);
    cr_assert_not_null(p, "big blob reads as NULL");
    cr_assert_eq(len, BIG_BLOB, "big blob len %zu, want %u", len, BIG_BLOB);
    cr_assert_eq(memcmp(p, big, BIG_BLOB), 0, "big blob bytes differ");
    cr_assert_neq(p, (const void *)big, "blob not copied");

    unsigned char bytes[4] = {0, 1, 0, 255};
    cr_assert_eq(xp_set_blob(v, bytes, 4), 0, "blob with NULs");
    p = xp_as_blob(v, &len);
    cr_assert_eq(len, 4, "len %zu", len);
    cr_assert_eq(memcmp(p, bytes, 4), 0, "blob with NUL bytes differs");
    cr_assert_null(xp_as_string(v, NULL), "as_string(blob) not NULL");
    free(big);
    xp_value_destroy(&v);
}

Test(value, arrays)
{
    xp_value *v = xp_value_new();
    cr_assert_eq(xp_set_array(v), 0, "set_array");
    cr_assert_eq(xp_value_type(v), XP_TYPE_ARRAY, "type %s",
                 xp_type_name(xp_value_type(v)));
    cr_assert_eq(xp_value_count(v), 0, "empty array count %zu",
                 xp_value_count(v));
    for (int i = 0; i < 100; i++) {
        xp_value *e = xp_array_append(v);
        cr_assert_not_null(e, "append %d", i);
        cr_assert_eq(xp_value_type(e), XP_TYPE_NULL, "appended element %s",
                     xp_type_name(xp_value_type(e)));
        cr_assert_eq(xp_set_int64(e, i * i), 0, "fill");
    }
    cr_assert_eq(xp_value_count(v), 100, "count %zu", xp_value_count(v));
    for (size_t i = 0; i < 100; i++)
        cr_assert_eq(xp_as_int64(xp_value_at(v, i)), (int64_t)(i * i),
                     "element %zu = %lld", i,
                     (long long)xp_as_int64(xp_value_at(v, i)));
    cr_assert_null(xp_value_at(v, 100), "at(count) not NULL");
    cr_assert_null(xp_value_key_at(v, 0), "array element has a key");
    cr_assert_null(xp_document_set(v, "k"), "document_set on an array");

    xp_value *s = xp_value_new();
    cr_assert_null(xp_array_append(s), "append on a null value");
    xp_value_destroy(&s);
    xp_value_destroy(&v);
}

Test(value, nested_documents)
{
    const char *label;
    xp_value *v = make_sample(N_SAMPLES - 1, &label);
    cr_assert_eq(xp_value_type(v), XP_TYPE_DOCUMENT, "type");
    cr_assert_eq(xp_value_count(v), 4, "count %zu", xp_value_count(v));
    const char *keys[] = {"i", "s", "sub", "b"};
    for (size_t i = 0; i < 4; i++)
        cr_assert_str_eq(xp_value_key_at(v, i), keys[i],
                         "key %zu = '%s' (insertion order kept)", i,
                         xp_value_key_at(v, i));
    cr_assert_null(xp_value_key_at(v, 4), "key out of range");
    cr_assert_eq(xp_as_int64(xp_value_get(v, "i")), 42, "i");
    const xp_value *deep = xp_value_get(xp_value_get(v, "sub"), "deep");
    cr_assert_not_null(deep, "sub.deep missing");
    cr_assert(xp_as_double(xp_value_get(deep, "d")) == 0.5, "sub.deep.d %g",
              xp_as_double(xp_value_get(deep, "d")));
    const xp_value *list = xp_value_get(xp_value_get(v, "sub"), "list");
    cr_assert_eq(xp_value_type(xp_value_at(list, 0)), XP_TYPE_DATETIME,
                 "sub.list[0] type %s",
                 xp_type_name(xp_value_type(xp_value_at(list, 0))));
    cr_assert_null(xp_value_get(v, "missing"), "get(missing) not NULL");

    /* Setting an existing key replaces it in place. */
    cr_assert_eq(xp_set_string(xp_document_set(v, "i"), "replaced"), 0, "i");
    cr_assert_eq(xp_value_count(v), 4, "count after replace %zu",
                 xp_value_count(v));
    cr_assert_str_eq(xp_as_string(xp_value_get(v, "i"), NULL), "replaced",
                     "replaced value");
    cr_assert_str_eq(xp_value_key_at(v, 0), "i", "replaced key moved");
    xp_value_destroy(&v);
}

/* A document grows by doubling with its keys beside its children: every
 * key and child stays where it was through each growth. */
Test(value, large_documents_keep_keys_and_children_in_place)
{
    xp_value *v = xp_value_new();
    xp_set_document(v);
    const xp_value *first = NULL;
    for (int i = 0; i < 1000; i++) {
        char key[16];
        snprintf(key, sizeof key, "key%d", i);
        xp_value *child = xp_document_set(v, key);
        cr_assert_not_null(child, "set %s", key);
        cr_assert_eq(xp_set_int64(child, i), 0);
        if (i == 0)
            first = child;
    }
    cr_assert_eq(xp_value_count(v), 1000);
    cr_assert_eq(xp_value_at(v, 0), first, "the first child moved");
    for (size_t i = 0; i < 1000; i++) {
        char key[16];
        snprintf(key, sizeof key, "key%zu", i);
        cr_assert_str_eq(xp_value_key_at(v, i), key, "key %zu", i);
        cr_assert_eq(xp_as_int64(xp_value_get(v, key)), (int64_t)i);
    }
    xp_value *copy = xp_value_dup(v);
    cr_assert(xp_value_equal(copy, v));
    cr_assert_str_eq(xp_value_key_at(copy, 999), "key999");
    /* a copy grows on its own */
    xp_set_bool(xp_document_set(copy, "more"), true);
    cr_assert_eq(xp_value_count(copy), 1001);
    cr_assert_eq(xp_value_count(v), 1000);
    cr_assert_str_eq(xp_value_key_at(copy, 1000), "more");
    cr_assert_str_eq(xp_value_key_at(copy, 0), "key0");
    xp_value_destroy(&copy);
    xp_value_destroy(&v);
}

Test(value, dup_is_deep_and_equal)
{
    for (int k = 0; k < N_SAMPLES; k++) {
        const char *label;
        xp_value *v = make_sample(k, &label);
        xp_value *d = xp_value_dup(v);
        cr_assert_not_null(d, "dup(%s) NULL", label);
        cr_assert(xp_value_equal(v, d), "dup(%s) differs", label);
        cr_assert_eq(xp_value_type(d), xp_value_type(v), "dup(%s) type", label);
        xp_value *c = xp_value_new();
        cr_assert_eq(xp_set_value(c, v), 0, "set_value(%s)", label);
        cr_assert(xp_value_equal(c, v), "set_value(%s) differs", label);
        xp_value_destroy(&c);
        xp_value_destroy(&d);
        xp_value_destroy(&v);
    }
    /* Changing the original leaves the copy alone. */
    const char *label;
    xp_value *v = make_sample(N_SAMPLES - 1, &label);
    xp_value *d = xp_value_dup(v);
    xp_value *sub = (xp_value *)xp_value_get(v, "sub");
    cr_assert_eq(xp_set_int64(xp_document_set(sub, "new"), 1), 0, "modify");
    cr_assert(!xp_value_equal(v, d), "modified original still equals dup");
    cr_assert_null(xp_value_get(xp_value_get(d, "sub"), "new"),
                   "dup shares nested storage with the original");
    xp_value_destroy(&d);
    xp_value_destroy(&v);
}

Test(value, equality_is_type_sensitive)
{
    xp_value *a = xp_value_new(), *b = xp_value_new();
    xp_set_int64(a, 1);
    xp_set_double(b, 1.0);
    cr_assert(!xp_value_equal(a, b), "int64 1 equals double 1.0");
    xp_set_bool(b, true);
    cr_assert(!xp_value_equal(a, b), "int64 1 equals bool true");
    xp_set_datetime(b, 1);
    cr_assert(!xp_value_equal(a, b), "int64 1 equals datetime 1");
    xp_set_string(b, "1");
    cr_assert(!xp_value_equal(a, b), "int64 1 equals string \"1\"");
    xp_set_int64(b, 1);
    cr_assert(xp_value_equal(a, b), "int64 1 differs from int64 1");
    xp_set_int64(b, 2);
    cr_assert(!xp_value_equal(a, b), "1 equals 2");

    xp_set_string(a, "abc");
    xp_set_blob(b, "abc", 3);
    cr_assert(!xp_value_equal(a, b), "string equals blob of same bytes");
    xp_set_string(b, "abd");
    cr_assert(!xp_value_equal(a, b), "\"abc\" equals \"abd\"");

    xp_set_array(a);
    xp_set_array(b);
    cr_assert(xp_value_equal(a, b), "empty arrays differ");
    xp_set_int64(xp_array_append(a), 1);
    cr_assert(!xp_value_equal(a, b), "arrays of different length equal");
    xp_set_double(xp_array_append(b), 1.0);
    cr_assert(!xp_value_equal(a, b), "[1] equals [1.0]");

    xp_set_array(a);
    xp_set_document(b);
    cr_assert(!xp_value_equal(a, b), "empty array equals empty document");
    xp_set_document(a);
    xp_set_int64(xp_document_set(a, "k"), 1);
    xp_set_int64(xp_document_set(b, "j"), 1);
    cr_assert(!xp_value_equal(a, b), "documents with other keys equal");

    xp_set_null(a);
    xp_set_null(b);
    cr_assert(xp_value_equal(a, b), "null differs from null");
    xp_value_destroy(&a);
    xp_value_destroy(&b);
}

/* ---------------------------------------------------------------- JSON */

Test(value, json_round_trip_every_kind)
{
    for (int k = 0; k < N_SAMPLES; k++) {
        const char *label;
        xp_value *v = make_sample(k, &label);
        char *json = xp_value_to_json(v);
        cr_assert_not_null(json, "to_json(%s) NULL", label);
        xp_value *back = xp_value_new();
        xp_error_t err = {0};
        int rc = xp_value_from_json(back, json, &err);
        cr_assert_eq(rc, 0, "from_json(%s): '%s' (%.200s)", label, err.message,
                     json);
        char *again = xp_value_to_json(back);
        cr_assert(xp_value_equal(v, back),
                  "JSON round trip of %s changed the value: %.200s -> %s "
                  "-> %.200s",
                  label, json, xp_type_name(xp_value_type(back)),
                  again ? again : "(null)");
        xp_free(again);
        xp_free(json);
        xp_value_destroy(&back);
        xp_value_destroy(&v);
    }
}

Test(value, json_text)
{
    xp_value *v = xp_value_new();
    char *j;
    xp_set_int64(v, 42);
    j = xp_value_to_json(v);
    cr_assert_str_eq(j, "42", "to_json(42) = '%s'", j);
    xp_free(j);
    xp_set_string(v, "hi \"there\"");
    j = xp_value_to_json(v);
    cr_assert_str_eq(j, "\"hi \\\"there\\\"\"", "to_json(string) = '%s'", j);
    xp_free(j);
    xp_set_bool(v, true);
    j = xp_value_to_json(v);
    cr_assert_str_eq(j, "true", "to_json(true) = '%s'", j);
    xp_free(j);
    xp_set_null(v);
    j = xp_value_to_json(v);
    cr_assert_str_eq(j, "null", "to_json(null) = '%s'", j);
    xp_free(j);
    /* int64 1 and double 1.0 must stay distinguishable in JSON. */
    xp_set_int64(v, 1);
    char *ji = xp_value_to_json(v);
    xp_set_double(v, 1.0);
    char *jd = xp_value_to_json(v);
    cr_assert_str_neq(ji, jd, "int64 1 and double 1.0 print alike: '%s'", ji);
    xp_free(ji);
    xp_free(jd);

    xp_error_t err = {0};
    int rc = xp_value_from_json(
        v,
        "{\"a\": 1, \"b\": 1.5, \"c\": \"x\", \"d\": [true, null], "
        "\"e\": {\"f\": -2}}",
        &err);
    cr_assert_eq(rc, 0, "from_json document: '%s'", err.message);
    cr_assert_eq(xp_value_type(v), XP_TYPE_DOCUMENT, "type %s",
                 xp_type_name(xp_value_type(v)));
    cr_assert_eq(xp_value_type(xp_value_get(v, "a")), XP_TYPE_INT64,
                 "JSON 1 read as %s",
                 xp_type_name(xp_value_type(xp_value_get(v, "a"))));
    cr_assert_eq(xp_as_int64(xp_value_get(v, "a")), 1, "a");
    cr_assert_eq(xp_value_type(xp_value_get(v, "b")), XP_TYPE_DOUBLE,
                 "JSON 1.5 read as %s",
                 xp_type_name(xp_value_type(xp_value_get(v, "b"))));
    cr_assert_str_eq(xp_as_string(xp_value_get(v, "c"), NULL), "x", "c");
    const xp_value *d = xp_value_get(v, "d");
    cr_assert_eq(xp_value_count(d), 2, "d count %zu", xp_value_count(d));
    cr_assert_eq(xp_value_type(xp_value_at(d, 0)), XP_TYPE_BOOL, "d[0]");
    cr_assert_eq(xp_value_type(xp_value_at(d, 1)), XP_TYPE_NULL, "d[1]");
    cr_assert_eq(xp_as_int64(xp_value_get(xp_value_get(v, "e"), "f")), -2,
                 "e.f");

    rc = xp_value_from_json(v, "[1, 2, 3]", &err);
    cr_assert_eq(rc, 0, "from_json array: '%s'", err.message);
    cr_assert_eq(xp_value_type(v), XP_TYPE_ARRAY, "[1,2,3] read as %s",
                 xp_type_name(xp_value_type(v)));
    cr_assert_eq(xp_value_count(v), 3, "count %zu", xp_value_count(v));

    rc = xp_value_from_json(v, "\"just a string\"", &err);
    cr_assert_eq(rc, 0, "from_json scalar string: '%s'", err.message);
    cr_assert_str_eq(xp_as_string(v, NULL), "just a string", "scalar");

    rc = xp_value_from_json(
        v, "{\"when\": {\"$date\": \"2023-11-14T22:13:20.123Z\"}}", &err);
    cr_assert_eq(rc, 0, "from_json $date: '%s'", err.message);
    const xp_value *when = xp_value_get(v, "when");
    cr_assert_eq(xp_value_type(when), XP_TYPE_DATETIME, "$date read as %s",
                 xp_type_name(xp_value_type(when)));
    cr_assert_eq(xp_as_int64(when), 1700000000123, "$date ms %lld",
                 (long long)xp_as_int64(when));

    const char *bad[] = {"{bad", "", "[1, 2", "{\"a\": }", "nope nope"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&err, 0, sizeof err);
        rc = xp_value_from_json(v, bad[i], &err);
        cr_assert_eq(rc, -1, "from_json('%s') accepted", bad[i]);
        cr_assert_neq(err.code, XP_OK, "from_json('%s') left no error code",
                      bad[i]);
        cr_assert_str_not_empty(err.message, "from_json('%s') no message",
                                bad[i]);
        cr_assert_null(strchr(err.message, '\n'), "multi-line error '%s'",
                       err.message);
    }
    xp_value_destroy(&v);
}

/* ---------------------------------------------------------------- literals */

Test(value, parse_literal)
{
    xp_value *v = xp_value_new();
    xp_error_t err = {0};
    struct {
        const char *text;
        xp_type type;
    } cases[] = {
        {"1", XP_TYPE_INT64},
        {"-3", XP_TYPE_INT64},
        {"0", XP_TYPE_INT64},
        {"1.5", XP_TYPE_DOUBLE},
        {"1e-3", XP_TYPE_DOUBLE},
        {"-2.5E2", XP_TYPE_DOUBLE},
        {"true", XP_TYPE_BOOL},
        {"false", XP_TYPE_BOOL},
        {"null", XP_TYPE_NULL},
        {"\"quoted\"", XP_TYPE_STRING},
        {"bare", XP_TYPE_STRING},
        {"[1,2]", XP_TYPE_ARRAY},
        {"{\"a\":1}", XP_TYPE_DOCUMENT},
        {"\"1\"", XP_TYPE_STRING},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memset(&err, 0, sizeof err);
        int rc = xp_value_parse_literal(v, cases[i].text, &err);
        cr_assert_eq(rc, 0, "parse_literal('%s') failed: '%s'", cases[i].text,
                     err.message);
        cr_assert_eq(xp_value_type(v), cases[i].type,
                     "parse_literal('%s') is %s, expected %s", cases[i].text,
                     xp_type_name(xp_value_type(v)),
                     xp_type_name(cases[i].type));
    }
    xp_value_parse_literal(v, "1", &err);
    cr_assert_eq(xp_as_int64(v), 1, "'1' -> %lld", (long long)xp_as_int64(v));
    xp_value_parse_literal(v, "-3", &err);
    cr_assert_eq(xp_as_int64(v), -3, "'-3' -> %lld", (long long)xp_as_int64(v));
    xp_value_parse_literal(v, "1.5", &err);
    cr_assert(xp_as_double(v) == 1.5, "'1.5' -> %g", xp_as_double(v));
    xp_value_parse_literal(v, "1e-3", &err);
    cr_assert(xp_as_double(v) == 1e-3, "'1e-3' -> %g", xp_as_double(v));
    xp_value_parse_literal(v, "true", &err);
    cr_assert(xp_as_bool(v), "'true' -> false");
    xp_value_parse_literal(v, "false", &err);
    cr_assert(!xp_as_bool(v), "'false' -> true");
    xp_value_parse_literal(v, "\"quoted\"", &err);
    cr_assert_str_eq(xp_as_string(v, NULL), "quoted", "'\"quoted\"' -> '%s'",
                     xp_as_string(v, NULL));
    xp_value_parse_literal(v, "\"1\"", &err);
    cr_assert_str_eq(xp_as_string(v, NULL), "1", "'\"1\"' -> '%s'",
                     xp_as_string(v, NULL));
    xp_value_parse_literal(v, "bare", &err);
    cr_assert_str_eq(xp_as_string(v, NULL), "bare", "'bare' -> '%s'",
                     xp_as_string(v, NULL));
    xp_value_parse_literal(v, "[1,2]", &err);
    cr_assert_eq(xp_value_count(v), 2, "[1,2] count %zu", xp_value_count(v));
    cr_assert_eq(xp_value_type(xp_value_at(v, 0)), XP_TYPE_INT64,
                 "[1,2][0] is %s",
                 xp_type_name(xp_value_type(xp_value_at(v, 0))));
    cr_assert_eq(xp_as_int64(xp_value_at(v, 1)), 2, "[1,2][1]");
    xp_value_parse_literal(v, "{\"a\":1}", &err);
    cr_assert_eq(xp_value_type(xp_value_get(v, "a")), XP_TYPE_INT64,
                 "{\"a\":1}.a is %s",
                 xp_type_name(xp_value_type(xp_value_get(v, "a"))));
    cr_assert_eq(xp_as_int64(xp_value_get(v, "a")), 1, "a");

    memset(&err, 0, sizeof err);
    cr_assert_eq(xp_value_parse_literal(v, "", &err), -1,
                 "empty literal accepted");
    cr_assert_str_not_empty(err.message, "empty literal: no message");
    cr_assert_eq(err.domain, XP_DOMAIN_ARGUMENT, "empty literal domain %u",
                 err.domain);
    memset(&err, 0, sizeof err);
    cr_assert_eq(xp_value_parse_literal(v, "[1,", &err), -1,
                 "malformed JSON literal '[1,' accepted");
    cr_assert_str_not_empty(err.message, "'[1,': no message");
    xp_value_destroy(&v);
}

/* Asserts that literal text is refused with a one-line argument error
 * naming the text. */
static void assert_literal_refused(const char *text)
{
    xp_value *v = xp_value_new();
    xp_error_t err = {0};
    cr_assert_eq(xp_value_parse_literal(v, text, &err), -1,
                 "parse_literal('%s') accepted as %s", text,
                 xp_type_name(xp_value_type(v)));
    cr_assert_eq(err.domain, XP_DOMAIN_ARGUMENT, "'%s': domain %u", text,
                 err.domain);
    cr_assert_eq(err.code, XP_EINVAL, "'%s': code %u", text, err.code);
    cr_assert_not_null(strstr(err.message, text),
                       "'%s': message does not name it: '%s'", text,
                       err.message);
    cr_assert_null(strchr(err.message, '\n'), "multi-line error '%s'",
                   err.message);
    xp_value_destroy(&v);
}

/* Asserts that literal text reads as type t; returns the value (caller
 * destroys). */
static xp_value *literal_as(const char *text, xp_type t)
{
    xp_value *v = xp_value_new();
    xp_error_t err = {0};
    cr_assert_eq(xp_value_parse_literal(v, text, &err), 0,
                 "parse_literal('%s') failed: '%s'", text, err.message);
    cr_assert_eq(xp_value_type(v), t, "parse_literal('%s') is %s, expected %s",
                 text, xp_type_name(xp_value_type(v)), xp_type_name(t));
    return v;
}

/* The string text, exactly. */
static void assert_literal_string(const char *text)
{
    xp_value *v = literal_as(text, XP_TYPE_STRING);
    size_t len = 0;
    const char *s = xp_as_string(v, &len);
    cr_assert(len == strlen(text) && memcmp(s, text, len) == 0,
              "parse_literal('%s') kept '%s'", text, s);
    xp_value_destroy(&v);
}

Test(value, parse_literal_refuses_out_of_range_floats)
{
    /* strtod gives inf, 0.0 or a denormal for these: not the number the
     * user typed, so they are refused like integers out of range. */
    const char *refused[] = {"1e999",   "-1e999", "1E400", "1e-400",
                             "-1e-400", "5e-324", "1e-310"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        assert_literal_refused(refused[i]);
    assert_literal_refused("99999999999999999999");

    const char *kept[] = {"1e308",
                          "-1.7976931348623157e308",
                          "2.2250738585072014e-308",
                          "0e-400",
                          "-0.0",
                          "0.000e999"};
    const double want[] = {
        1e308, -1.7976931348623157e308, 2.2250738585072014e-308, 0.0, -0.0,
        0.0};
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++) {
        xp_value *v = literal_as(kept[i], XP_TYPE_DOUBLE);
        cr_assert(xp_as_double(v) == want[i], "'%s' -> %g", kept[i],
                  xp_as_double(v));
        xp_value_destroy(&v);
    }
}

Test(value, parse_literal_with_surrounding_whitespace_is_a_string)
{
    /* strtoll and strtod skip leading blanks: " 1" used to be int 1. */
    const char *texts[] = {" 1",    "1 ",    "\t2.5", "-3\n",
                           " true", "null ", " adam", " \"q\""};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        assert_literal_string(texts[i]);
    /* JSON texts keep JSON's own rule: blanks after the value are fine. */
    xp_value *v = literal_as("[1, 2] ", XP_TYPE_ARRAY);
    xp_value_destroy(&v);
}

Test(value, parse_literal_refuses_malformed_numbers_and_leading_equals)
{
    const char *refused[] = {"=1",    "==1",  "=",    "=adam",      "1.1.1",
                             "1e5x",  "-1-",  "0x10", "1,2",        "3x3",
                             "1e",    "+.5e", "1 2",  "2023-01-01", ".5.",
                             "1_000", "-7a",  "0.1.", "9e9e9"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        assert_literal_refused(refused[i]);
    struct {
        const char *text;
        xp_type type;
        double value;
    } numbers[] = {
        {"+5", XP_TYPE_INT64, 5},
        {"007", XP_TYPE_INT64, 7},
        {"-0", XP_TYPE_INT64, 0},
        {".5", XP_TYPE_DOUBLE, 0.5},
        {"-.5", XP_TYPE_DOUBLE, -0.5},
        {"1.", XP_TYPE_DOUBLE, 1},
        {"+1.", XP_TYPE_DOUBLE, 1},
        {"1E+2", XP_TYPE_DOUBLE, 100},
        {"9223372036854775807", XP_TYPE_INT64, 9223372036854775807.0},
    };
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++) {
        xp_value *v = literal_as(numbers[i].text, numbers[i].type);
        cr_assert(xp_as_double(v) == numbers[i].value, "'%s' -> %g",
                  numbers[i].text, xp_as_double(v));
        xp_value_destroy(&v);
    }
}

Test(value, parse_literal_bare_words_are_strings)
{
    /* Text that does not start like a number (digit, sign + digit, '.' +
     * digit), '=', '"', '[' or '{' and is not true/false/null. */
    const char *words[] = {"adam", "relu6", "inf",  "-inf",     "nan",
                           "NaN",  "True",  "NULL", "None",     "e5",
                           "-",    "+",     ".",    "-x1",      "a=b",
                           "x1.5", "--1",   ".e1",  "h\xc3\xa9"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        assert_literal_string(words[i]);
}

typedef int (*parse_fn)(xp_value *v, const char *text, xp_error_t *err);

/* Asserts that parse refuses text as a number out of range. */
static void assert_out_of_range(parse_fn parse, const char *text)
{
    xp_value *v = xp_value_new();
    xp_error_t err = {0};
    cr_assert_eq(parse(v, text, &err), -1, "'%s' accepted", text);
    cr_assert_eq(err.domain, XP_DOMAIN_ARGUMENT, "'%s': domain %u", text,
                 err.domain);
    cr_assert_not_null(strstr(err.message, "out of range"),
                       "'%s': message '%s'", text, err.message);
    xp_value_destroy(&v);
}

Test(value, from_json_refuses_numbers_out_of_range)
{
    /* libbson reads 99999999999999999999 as 7766279631452241919 and
     * 1e-400 as 0.0 without a word. */
    const char *refused[] = {"99999999999999999999", "[1e-400]",
                             "{\"a\": [-100000000000000000000]}", "[1, 5e-324]",
                             "[1e999]"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        assert_out_of_range(xp_value_from_json, refused[i]);
        assert_out_of_range(xp_value_parse_literal, refused[i]);
    }
    /* Numbers inside strings are text; explicit extended JSON stays. */
    const char *kept[] = {"[\"99999999999999999999\", \"1e-400\"]",
                          "\"a\\\"1e999\"", "[1e308, -0.0, 0e-999, -5]",
                          "{\"$numberDouble\": \"Infinity\"}"};
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++) {
        xp_value *v = xp_value_new();
        xp_error_t err = {0};
        cr_assert_eq(xp_value_from_json(v, kept[i], &err), 0,
                     "from_json('%s'): '%s'", kept[i], err.message);
        xp_value_destroy(&v);
    }
}

/* ---------------------------------------------------------------- stored */

static const xp_value *g_ret; /* value the step returns */

static int return_value(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    (void)in;
    return xp_set_value(out, g_ret);
}

Test(value, stored_round_trip_every_kind)
{
    xp_experiment *ex = xpt_open("values");
    xp_node *n = xp_step_add(ex, "return_value", return_value, 0, NULL,
                             __FILE__, __LINE__);
    xp_result(xp_persist(n));
    xp_error_t err = {0};
    cr_assert_eq(xp_experiment_check(ex, &err), 0, "definition: '%s'",
                 err.message);

    xp_value *samples[N_SAMPLES];
    const char *labels[N_SAMPLES];
    for (int k = 0; k < N_SAMPLES; k++) {
        samples[k] = make_sample(k, &labels[k]);
        g_ret = samples[k];
        xp_value *res = NULL;
        int64_t id = 0;
        int rc = xp_compute(ex, NULL, &res, &id, &err);
        cr_assert_eq(rc, 0, "compute(%s): '%s'", labels[k], err.message);
        cr_assert_eq(id, k + 1, "trial id %lld for sample %d", (long long)id,
                     k);
        cr_assert(xp_value_equal(res, samples[k]),
                  "returned result of %s differs (type %s)", labels[k],
                  xp_type_name(xp_value_type(res)));
        xp_value_destroy(&res);
    }

    /* Read back through a fresh handle so nothing comes from memory. */
    xp_experiment_destroy(&ex);
    ex = xpt_open("values");
    xp_value *h = xpt_history(ex);
    cr_assert_eq(xp_value_count(h), N_SAMPLES, "history has %zu trials",
                 xp_value_count(h));
    for (int k = 0; k < N_SAMPLES; k++) {
        const xp_value *doc = xp_value_at(h, (size_t)k);
        const xp_value *r = xpt_field(doc, "result");
        cr_assert(xp_value_equal(r, samples[k]),
                  "history result of %s differs (stored as %s)", labels[k],
                  xp_type_name(xp_value_type(r)));
        cr_assert_str_eq(xpt_get_str(doc, "result_type"),
                         xp_type_name(xp_value_type(samples[k])),
                         "result_type of %s is '%s'", labels[k],
                         xpt_get_str(doc, "result_type"));

        xp_value *t = xpt_trial(ex, k + 1);
        cr_assert(xp_value_equal(xpt_field(t, "result"), samples[k]),
                  "trial_get result of %s differs", labels[k]);
        xp_value_destroy(&t);

        xp_value *p = NULL;
        int rc = xp_load_persisted(ex, "return_value", k + 1, &p, &err);
        cr_assert_eq(rc, 0, "load_persisted(%s): '%s'", labels[k], err.message);
        cr_assert(xp_value_equal(p, samples[k]),
                  "persisted %s differs (stored as %s)", labels[k],
                  xp_type_name(xp_value_type(p)));
        xp_value_destroy(&p);
    }
    xp_value_destroy(&h);
    for (int k = 0; k < N_SAMPLES; k++)
        xp_value_destroy(&samples[k]);
    xp_experiment_destroy(&ex);
}

static int echo(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    return xp_set_value(out, in[0]);
}

Test(value, parameters_round_trip)
{
    xp_experiment *ex = xpt_open("params");
    xp_node *p = xp_parameter(ex, "p");
    XP_RESULT(ex, echo, p);
    /* Parameter kinds: int64, double, bool, string, null, array, document. */
    const int kinds[] = {0, 1, 3, 4, 5, 6, 7, 8, 12, 13};
    size_t nk = sizeof kinds / sizeof kinds[0];
    xp_value *vals[16];
    const char *labels[16];
    xp_error_t err = {0};
    for (size_t i = 0; i < nk; i++) {
        vals[i] = make_sample(kinds[i], &labels[i]);
        int rc = xp_set_param(ex, "p", vals[i], &err);
        cr_assert_eq(rc, 0, "set_param(%s): '%s'", labels[i], err.message);
        xp_value *res = NULL;
        rc = xp_compute(ex, NULL, &res, NULL, &err);
        cr_assert_eq(rc, 0, "compute(%s): '%s'", labels[i], err.message);
        cr_assert(xp_value_equal(res, vals[i]), "echo of %s differs",
                  labels[i]);
        xp_value_destroy(&res);
    }
    xp_experiment_destroy(&ex);
    ex = xpt_open("params");
    for (size_t i = 0; i < nk; i++) {
        xp_value *params = NULL;
        int rc = xp_trial_parameters(ex, (int64_t)i + 1, &params, &err);
        cr_assert_eq(rc, 0, "trial_parameters(%zu): '%s'", i + 1, err.message);
        const xp_value *got = xpt_field(params, "p");
        char *js = xpt_json(got);
        cr_assert(xp_value_equal(got, vals[i]),
                  "stored parameter %s came back as %s %s", labels[i],
                  xp_type_name(xp_value_type(got)), js ? js : "");
        xp_free(js);
        xp_value_destroy(&params);
        xp_value_destroy(&vals[i]);
    }
    xp_experiment_destroy(&ex);
}

Test(value, literal_parameters_keep_native_types)
{
    xp_experiment *ex = xpt_open("literals");
    const char *names[] = {"i", "d", "b", "s", "n", "q"};
    const char *lits[] = {"7", "0.25", "true", "word", "null", "\"7\""};
    const xp_type types[] = {XP_TYPE_INT64,  XP_TYPE_DOUBLE, XP_TYPE_BOOL,
                             XP_TYPE_STRING, XP_TYPE_NULL,   XP_TYPE_STRING};
    xp_node *nodes[6];
    for (int i = 0; i < 6; i++)
        nodes[i] = xp_parameter(ex, names[i]);
    xp_node *r = xp_step_add(ex, "echo", echo, 6, nodes, __FILE__, __LINE__);
    xp_result(r);
    xp_error_t err = {0};
    for (int i = 0; i < 6; i++)
        cr_assert_eq(xp_set_param_literal(ex, names[i], lits[i], &err), 0,
                     "set_param_literal(%s, %s): '%s'", names[i], lits[i],
                     err.message);
    int64_t id = 0;
    cr_assert_eq(xp_compute(ex, NULL, NULL, &id, &err), 0, "compute: '%s'",
                 err.message);
    xp_value *params = NULL;
    cr_assert_eq(xp_trial_parameters(ex, id, &params, &err), 0,
                 "trial_parameters: '%s'", err.message);
    for (int i = 0; i < 6; i++) {
        const xp_value *f = xpt_field(params, names[i]);
        cr_assert_eq(xp_value_type(f), types[i],
                     "parameter %s=%s stored as %s, expected %s", names[i],
                     lits[i], xp_type_name(xp_value_type(f)),
                     xp_type_name(types[i]));
    }
    cr_assert_str_eq(xp_as_string(xp_value_get(params, "q"), NULL), "7",
                     "quoted literal");
    xp_value_destroy(&params);
    xp_experiment_destroy(&ex);
}

/* Doubles print as their shortest exact text at any depth (libbson alone
 * gives nested ones 20 digits), and read back to the same bits. */
Test(value, json_nested_doubles_shortest)
{
    xp_value *v = xp_value_new();
    xp_error_t err = {0};
    cr_assert_eq(xp_value_from_json(v,
                                    "[0.1, 1, {\"a\": 0.3, \"b\": [2.5e-7, "
                                    "1.0, {}], \"k\\\"q\": []}]",
                                    &err),
                 0, "%s", err.message);
    char *j = xp_value_to_json(v);
    cr_assert_str_eq(j,
                     "[ 0.1, 1, { \"a\" : 0.3, \"b\" : [ 2.5e-07, 1.0, { } ], "
                     "\"k\\\"q\" : [ ] } ]",
                     "to_json = '%s'", j);
    xp_value *back = xp_value_new();
    cr_assert_eq(xp_value_from_json(back, j, &err), 0, "%s", err.message);
    const xp_value *inner = xp_value_at(back, 2);
    cr_assert(xp_as_double(xp_value_get(inner, "a")) == 0.3, "0.3 changed");
    cr_assert_eq(xp_value_type(xp_value_at(xp_value_get(inner, "b"), 1)),
                 XP_TYPE_DOUBLE, "1.0 became an integer");
    xp_free(j);
    xp_value_destroy(&back);
    xp_value_destroy(&v);
}

/* ---------------------------------------------------------------- plain
 * JSON for pages (xp_value_to_json_ex) */

/* A document holding one of each leaf the flags concern, and the rest. */
static xp_value *page_doc(void)
{
    xp_value *v = xp_value_new();
    xp_set_document(v);
    xp_set_int64(xp_document_set(v, "small"), 9007199254740991LL);
    xp_set_int64(xp_document_set(v, "big"), 9007199254740992LL);
    xp_set_int64(xp_document_set(v, "neg"), INT64_MIN);
    xp_set_datetime(xp_document_set(v, "when"), 1796173323456LL);
    xp_set_datetime(xp_document_set(v, "before"), -1);
    xp_set_double(xp_document_set(v, "nan"), NAN);
    xp_set_double(xp_document_set(v, "inf"), INFINITY);
    xp_set_double(xp_document_set(v, "ninf"), -INFINITY);
    xp_set_double(xp_document_set(v, "tenth"), 0.1);
    xp_set_blob(xp_document_set(v, "tiny"), "xp!", 3);
    unsigned char *bytes = make_bytes(65);
    xp_set_blob(xp_document_set(v, "large"), bytes, 65);
    free(bytes);
    xp_value *arr = xp_document_set(v, "nested");
    xp_set_array(arr);
    xp_set_double(xp_array_append(arr), NAN);
    xp_set_string(xp_array_append(arr), "<img src=x onerror=alert(1)>");
    return v;
}

Test(value, json_ex_without_flags_is_to_json)
{
    xp_value *v = page_doc();
    char *a = xp_value_to_json(v), *b = xp_value_to_json_ex(v, 0);
    cr_assert_not_null(a);
    cr_assert_str_eq(a, b, "flags 0 differ:\n%s\n%s", a, b);
    xp_free(a);
    xp_free(b);
    cr_assert_null(xp_value_to_json_ex(NULL, XP_JSON_ISO_DATES), "NULL in");
    xp_value_destroy(&v);
}

Test(value, json_ex_each_flag)
{
    xp_value *v = page_doc();
    struct {
        unsigned flags;
        const char *want[4];
        const char *unwanted;
    } cases[] = {
        {XP_JSON_SAFE_INTEGERS,
         {"\"small\" : 9007199254740991,", "\"big\" : \"9007199254740992\"",
          "\"neg\" : \"-9223372036854775808\"", NULL},
         "\"when\" : \"2026"},
        {XP_JSON_ISO_DATES,
         {"\"when\" : \"2026-12-02T01:02:03.456Z\"",
          "\"before\" : \"1969-12-31T23:59:59.999Z\"",
          "\"big\" : 9007199254740992,", NULL},
         "\"nan\" : \"NaN\""},
        {XP_JSON_NONFINITE_STRINGS,
         {"\"nan\" : \"NaN\"", "\"inf\" : \"Infinity\"",
          "\"ninf\" : \"-Infinity\"", "[ \"NaN\", "},
         "$numberDouble"},
        {XP_JSON_BRIEF_BLOBS,
         {"\"tiny\" : { \"$binary\" : \"eHAh\" }",
          "\"large\" : { \"$blob\" : 65 }", "\"tenth\" : 0.1,", NULL},
         "subType"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *j = xp_value_to_json_ex(v, cases[i].flags);
        cr_assert_not_null(j, "flags %u", cases[i].flags);
        for (size_t k = 0; k < 4 && cases[i].want[k]; k++)
            cr_assert(strstr(j, cases[i].want[k]), "flags %u: no '%s' in %s",
                      cases[i].flags, cases[i].want[k], j);
        cr_assert_null(strstr(j, cases[i].unwanted), "flags %u: '%s' in %s",
                       cases[i].flags, cases[i].unwanted, j);
        xp_free(j);
    }
    xp_value_destroy(&v);
}

/* With every flag the text is plain JSON: it reads back (blobs aside:
 * libbson's reader takes "$binary" for extended JSON), and what it says is
 * what a page shows (the seeds as text, dates as ISO text). */
Test(value, json_ex_all_flags_reads_back)
{
    xp_value *v = page_doc();
    xp_set_null(xp_document_set(v, "tiny"));
    xp_set_null(xp_document_set(v, "large"));
    unsigned all = XP_JSON_ISO_DATES | XP_JSON_SAFE_INTEGERS |
                   XP_JSON_NONFINITE_STRINGS | XP_JSON_BRIEF_BLOBS;
    char *j = xp_value_to_json_ex(v, all);
    cr_assert_null(strstr(j, "\"$date\""), "%s", j);
    cr_assert_null(strstr(j, "$numberDouble"), "%s", j);
    xp_value *back = xp_value_new();
    xp_error_t err = {0};
    cr_assert_eq(xp_value_from_json(back, j, &err), 0, "%s: %s", err.message,
                 j);
    cr_assert_str_eq(xpt_get_str(back, "big"), "9007199254740992");
    cr_assert_eq(xpt_get_int(back, "small"), 9007199254740991LL);
    cr_assert_str_eq(xpt_get_str(back, "when"), "2026-12-02T01:02:03.456Z");
    cr_assert_str_eq(xpt_get_str(back, "nan"), "NaN");
    cr_assert(xp_as_double(xpt_field(back, "tenth")) == 0.1, "0.1 changed");
    const xp_value *nested = xpt_field(back, "nested");
    cr_assert_str_eq(xp_as_string(xp_value_at(nested, 1), NULL),
                     "<img src=x onerror=alert(1)>");
    xp_value_destroy(&back);
    xp_free(j);
    xp_value_destroy(&v);
}

/* Base64 of every length around the padding cases, and dates far out of
 * the ISO range falling back to extended JSON. */
Test(value, json_ex_base64_and_date_range)
{
    static const char *const want[] = {"\"\"", "\"AA==\"", "\"AAE=\"",
                                       "\"AAEC\"", "\"AAECAw==\""};
    unsigned char bytes[4] = {0, 1, 2, 3};
    xp_value *v = xp_value_new();
    for (size_t n = 0; n <= 4; n++) {
        xp_set_blob(v, bytes, n);
        char *j = xp_value_to_json_ex(v, XP_JSON_BRIEF_BLOBS);
        char expect[64];
        snprintf(expect, sizeof expect, "{ \"$binary\" : %s }", want[n]);
        cr_assert_str_eq(j, expect, "%zu bytes", n);
        xp_free(j);
    }
    xp_set_datetime(v, 253402300800000LL); /* year 10000 */
    char *j = xp_value_to_json_ex(v, XP_JSON_ISO_DATES);
    char *plain = xp_value_to_json(v);
    cr_assert_str_eq(j, plain, "year 10000");
    xp_free(j);
    xp_free(plain);
    xp_set_datetime(v, 0);
    j = xp_value_to_json_ex(v, XP_JSON_ISO_DATES);
    cr_assert_str_eq(j, "\"1970-01-01T00:00:00.000Z\"");
    xp_free(j);
    xp_value_destroy(&v);
}

/* Page JSON writes strings, integers, booleans and nulls itself: exactly
 * as libbson's relaxed JSON (what xp_value_to_json uses) does. */
Test(value, json_ex_leaves_as_libbson_writes_them)
{
    static const char *const texts[] = {
        "",
        "plain",
        "quote \" and \\ backslash",
        "\t\n\r\b\f",
        "\x01\x1f\x7f",
        "<img src=x onerror=alert(1)>",
        UTF8_TEXT,
        "\xe2\x80\xa8\xe2\x80\xa9",
        "/slash/",
    };
    xp_value *v = xp_value_new();
    xp_set_array(v);
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++)
        cr_assert_eq(xp_set_string(xp_array_append(v), texts[i]), 0, "%zu", i);
    xp_set_string_len(xp_array_append(v), "nul\0inside", 10);
    int64_t ints[] = {0, -1, 42, INT64_MAX, INT64_MIN + 1, 9007199254740991LL};
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++)
        xp_set_int64(xp_array_append(v), ints[i]);
    xp_set_bool(xp_array_append(v), true);
    xp_set_bool(xp_array_append(v), false);
    xp_array_append(v); /* null */
    char *a = xp_value_to_json(v);
    /* ISO dates change nothing here: the leaves take the fast path. */
    char *b = xp_value_to_json_ex(v, XP_JSON_ISO_DATES);
    cr_assert_not_null(a);
    cr_assert_str_eq(a, b, "\n%s\n%s", a, b);
    xp_free(a);
    xp_free(b);
    xp_value_destroy(&v);
}
