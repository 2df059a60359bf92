/* test_message.c — the wire messages in one process: the bounded BSON
 * check on every element type, on lying lengths and on nesting; every
 * typed message through its encoder, the envelope and its decoder; and
 * decoders refusing missing or mistyped fields; the checked value decoder
 * history uses reading as the full one. */
#include "remote/message.h"
#include "store/record.h"
#include "util/bson_util.h"
#include "value.h"

#include "remote.h"

TestSuite(message, .init = xpt_setup, .fini = xpt_teardown, .timeout = 30);

/* A document with one element of every BSON type. */
static void s_every_type(bson_t *b)
{
    bson_oid_t oid;
    bson_oid_init_from_string(&oid, "0123456789abcdef01234567");
    bson_decimal128_t dec;
    bson_decimal128_from_string("1.5", &dec);
    bson_t scope = BSON_INITIALIZER, sub = BSON_INITIALIZER;
    BSON_APPEND_INT32(&scope, "x", 1);
    BSON_APPEND_UTF8(&sub, "s", "t");
    bson_init(b);
    BSON_APPEND_DOUBLE(b, "double", 1.5);
    BSON_APPEND_UTF8(b, "utf8", "text");
    BSON_APPEND_DOCUMENT(b, "doc", &sub);
    BSON_APPEND_ARRAY(b, "array", &sub);
    bson_append_binary(b, "binary", -1, BSON_SUBTYPE_BINARY,
                       (const uint8_t *)"abc", 3);
    /* the old subtype, whose data repeats its length */
    bson_append_binary(b, "old", -1, BSON_SUBTYPE_BINARY_DEPRECATED,
                       (const uint8_t *)"de", 2);
    BSON_APPEND_UNDEFINED(b, "undefined");
    BSON_APPEND_OID(b, "oid", &oid);
    BSON_APPEND_BOOL(b, "bool", true);
    BSON_APPEND_DATE_TIME(b, "date", 1234);
    BSON_APPEND_NULL(b, "null");
    BSON_APPEND_REGEX(b, "regex", "a.*", "i");
    bson_append_dbpointer(b, "dbpointer", -1, "coll", &oid);
    BSON_APPEND_CODE(b, "code", "f()");
    BSON_APPEND_SYMBOL(b, "symbol", "sym");
    BSON_APPEND_CODE_WITH_SCOPE(b, "cws", "g()", &scope);
    BSON_APPEND_INT32(b, "int32", 7);
    BSON_APPEND_TIMESTAMP(b, "timestamp", 1, 2);
    BSON_APPEND_INT64(b, "int64", 8);
    BSON_APPEND_DECIMAL128(b, "decimal", &dec);
    BSON_APPEND_MINKEY(b, "min");
    BSON_APPEND_MAXKEY(b, "max");
    bson_destroy(&scope);
    bson_destroy(&sub);
}

Test(message, check_takes_every_type_and_refuses_every_cut)
{
    bson_t b;
    s_every_type(&b);
    const uint8_t *data = bson_get_data(&b);
    xp_error_t err = {0};
    cr_assert_eq(xp__bson_check(data, b.len, 4, &err), 0, "%s", err.message);
    /* every truncation, with the length fixed up to lie or not */
    uint8_t *copy = malloc(b.len);
    for (uint32_t n = 0; n < b.len; n++) {
        memcpy(copy, data, n);
        cr_assert_neq(xp__bson_check(copy, n, 4, NULL), 0, "cut at %u", n);
        if (n >= 5) {
            uint32_t le = BSON_UINT32_TO_LE(n);
            memcpy(copy, &le, 4);
            copy[n - 1] = 0;
            bson_t view;
            bool libbson = bson_init_static(&view, copy, n) &&
                           bson_validate(&view, 0, NULL);
            bool ours = xp__bson_check(copy, n, 4, NULL) == 0;
            cr_assert(!ours || libbson,
                      "cut at %u passes the check, not libbson", n);
        }
    }
    /* every byte flipped: never accepted where libbson refuses */
    for (uint32_t i = 0; i < b.len; i++) {
        memcpy(copy, data, b.len);
        copy[i] ^= 0xff;
        bson_t view;
        bool libbson = bson_init_static(&view, copy, b.len) &&
                       bson_validate(&view, 0, NULL);
        bool ours = xp__bson_check(copy, b.len, 4, NULL) == 0;
        cr_assert(!ours || libbson, "byte %u flipped passes the check", i);
    }
    free(copy);
    bson_destroy(&b);
}

/* libbson 1.23's bson_validate lets string values that are not UTF-8
 * through; the check does not. */
Test(message, check_refuses_strings_that_are_not_utf8)
{
    /* short ones, and long ones whose bad byte is past the first words */
    const char *bad[] = {"w\x88rker",
                         "\xff\xfe",
                         "a\xc3",
                         "0123456789abcdef\xc3",
                         "0123456789abcdefgh\xe2\x82",
                         "01234567\300\25789abcdef"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        bson_t b = BSON_INITIALIZER, sub = BSON_INITIALIZER;
        bson_append_utf8(&sub, "k", -1, bad[i], -1);
        BSON_APPEND_DOCUMENT(&b, "nested", &sub);
        xp_error_t err = {0};
        cr_assert_neq(xp__bson_check(bson_get_data(&b), b.len, 4, &err), 0,
                      "string %zu accepted", i);
        cr_assert_not_null(strstr(err.message, "UTF-8"), "%s", err.message);
        bson_destroy(&sub);
        bson_destroy(&b);
    }
    bson_t b = BSON_INITIALIZER;
    bson_append_utf8(&b, "k", -1, "caf\xc3\xa9", -1);
    bson_append_utf8(&b, "long key of many words", -1,
                     "0123456789abcdef caf\xc3\xa9 \xe2\x82\xac 0123456789",
                     -1);
    cr_assert_eq(xp__bson_check(bson_get_data(&b), b.len, 4, NULL), 0,
                 "valid UTF-8 refused");
    bson_destroy(&b);
    /* a NUL inside a long string or key value, length kept */
    bson_t z = BSON_INITIALIZER;
    bson_append_utf8(&z, "k", -1, "0123456789\0abcdefgh", 20);
    cr_assert_neq(xp__bson_check(bson_get_data(&z), z.len, 4, NULL), 0,
                  "a NUL inside a string accepted");
    bson_destroy(&z);
}

/* Reads doc through both value decoders: the same rc, and equal values
 * when they succeed. Returns that rc. */
static int s_both_decoders(const bson_t *doc)
{
    bson_t view;
    cr_assert(xp__bson_view_checked(&view, bson_get_data(doc), doc->len),
              "the document does not pass the check");
    xp_value *full = xp_value_new(), *fast = xp_value_new();
    int rc = xp__value_from_bson(full, &view, NULL);
    cr_assert_eq(xp__value_from_checked_bson(fast, &view, NULL), rc);
    cr_assert(rc != 0 || xp_value_equal(full, fast), "the decoders differ");
    xp_value_destroy(&full);
    xp_value_destroy(&fast);
    return rc;
}

/* History reads checked records with decoders that skip the second
 * UTF-8 and form checks: they read what the full ones read. */
Test(message, checked_decoders_read_as_the_full_ones)
{
    bson_t b = BSON_INITIALIZER, sub = BSON_INITIALIZER, arr = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&sub, "s", "caf\xc3\xa9");
    BSON_APPEND_UTF8(&sub, "", "");
    BSON_APPEND_UTF8(&arr, "0", "x");
    BSON_APPEND_INT32(&arr, "1", -7);
    BSON_APPEND_DOCUMENT(&arr, "2", &sub);
    BSON_APPEND_DOUBLE(&b, "double", -1.5);
    BSON_APPEND_UTF8(&b, "utf8", "a longer string than eight bytes");
    BSON_APPEND_DOCUMENT(&b, "doc", &sub);
    BSON_APPEND_ARRAY(&b, "array", &arr);
    bson_append_binary(&b, "blob", -1, BSON_SUBTYPE_BINARY,
                       (const uint8_t *)"\0\1\2", 3);
    bson_append_binary(&b, "old", -1, BSON_SUBTYPE_BINARY_DEPRECATED,
                       (const uint8_t *)"de", 2);
    BSON_APPEND_UNDEFINED(&b, "undefined");
    BSON_APPEND_NULL(&b, "null");
    BSON_APPEND_BOOL(&b, "bool", true);
    BSON_APPEND_DATE_TIME(&b, "date", -1234);
    BSON_APPEND_INT32(&b, "int32", INT32_MIN);
    BSON_APPEND_INT64(&b, "int64", INT64_MAX);
    cr_assert_eq(s_both_decoders(&b), 0);
    xp_value *v = xp_value_new();
    bson_t view;
    cr_assert(xp__bson_view_checked(&view, bson_get_data(&b), b.len));
    cr_assert_eq(xp__value_from_checked_bson(v, &view, NULL), 0);
    size_t n = 0;
    const void *old = xp_as_blob(xp_value_get(v, "old"), &n);
    cr_assert(n == 2 && memcmp(old, "de", 2) == 0, "old binary read as %zu", n);
    cr_assert_str_eq(xp_as_string(xp_value_get(v, "utf8"), NULL),
                     "a longer string than eight bytes");
    /* a decoded node takes a new value of another kind */
    cr_assert_eq(xp_set_string(xp_document_set(v, "utf8"), "replaced"), 0);
    cr_assert_eq(xp_set_int64(xp_document_set(v, "doc"), 1), 0);
    xp_value_destroy(&v);
    /* a type values do not hold is refused by both */
    BSON_APPEND_SYMBOL(&b, "symbol", "sym");
    cr_assert_neq(s_both_decoders(&b), 0);
    bson_destroy(&b);
    bson_destroy(&sub);
    bson_destroy(&arr);
    /* strings at and past the 100 levels a value may have */
    for (int depth = 99; depth <= 101; depth++) {
        bson_t *lv = bson_new();
        BSON_APPEND_UTF8(lv, "s", "leaf");
        for (int i = 1; i < depth; i++) {
            bson_t *up = bson_new();
            BSON_APPEND_DOCUMENT(up, "d", lv);
            bson_destroy(lv);
            lv = up;
        }
        cr_assert_eq(s_both_decoders(lv) == 0, depth <= 100, "depth %d", depth);
        bson_destroy(lv);
    }
}

Test(message, check_bounds_the_nesting)
{
    size_t len;
    uint8_t *deep = xptr_deep_bson(10000, &len);
    xp_error_t err = {0};
    double t0 = xpt_now();
    cr_assert_neq(xp__bson_check(deep, len, XP_MSG_MAX_DEPTH, &err), 0);
    cr_assert_lt(xpt_now() - t0, 0.5, "the check is slow on deep input");
    cr_assert_not_null(strstr(err.message, "nested deeper than 104"), "%s",
                       err.message);
    free(deep);
    for (int depth = 1; depth <= 300; depth += 299) {
        deep = xptr_deep_bson(depth, &len);
        cr_assert_eq(xp__bson_check(deep, len, depth, &err), 0,
                     "depth %d refused at its limit: %s", depth, err.message);
        if (depth > 1)
            cr_assert_neq(xp__bson_check(deep, len, depth - 1, NULL), 0,
                          "depth %d passes a limit of %d", depth, depth - 1);
        free(deep);
    }
    /* the envelope applies it before bson_validate */
    deep = xptr_deep_bson(XP_MSG_MAX_DEPTH + 1, &len);
    const uint8_t *frames[3] = {(const uint8_t *)"XP1",
                                (const uint8_t *)"STATUS", deep};
    size_t lens[3] = {3, 6, len};
    xp_msg_type type;
    bson_t body;
    cr_assert_neq(
        xp__msg_decode_frames(frames, lens, 3, 1 << 20, &type, &body, &err), 0);
    free(deep);
    deep = xptr_deep_bson(XP_MSG_MAX_DEPTH, &len);
    frames[2] = deep;
    lens[2] = len;
    cr_assert_eq(
        xp__msg_decode_frames(frames, lens, 3, 1 << 20, &type, &body, &err), 0,
        "%s", err.message);
    bson_destroy(&body);
    free(deep);
}

/* The body of msg, through the envelope, with its type checked. */
static void s_open(zmsg_t *msg, xp_msg_type want, bson_t *body)
{
    xp_msg_type type;
    xp_error_t err = {0};
    cr_assert_eq(xp__msg_decode(msg, XP_MAX_MESSAGE_DEFAULT, &type, body, &err),
                 0, "%s", err.message);
    cr_assert_eq(type, want, "%s, expected %s", xp__msg_name(type),
                 xp__msg_name(want));
    zmsg_destroy(&msg);
}

Test(message, hello_welcome_error_round_trip)
{
    bson_t code = BSON_INITIALIZER, body;
    BSON_APPEND_UTF8(&code, "steps", "x");
    xp_msg_experiment e = {"exp_pj", "0123", xp__msg_doc_of(&code)};
    xp_msg_hello h = {.host = "h",
                      .pid = 42,
                      .slots = 3,
                      .busy = 1,
                      .version = "v",
                      .max_message = 8192,
                      .experiments = &e,
                      .n_experiments = 1};
    s_open(xp__msg_hello_encode(&h), XP_MSG_HELLO, &body);
    xp_msg_hello d;
    cr_assert_eq(xp__msg_hello_decode(&body, &d, NULL), 0);
    cr_assert_str_eq(d.host, "h");
    cr_assert_eq(d.pid, 42);
    cr_assert_eq(d.slots, 3);
    cr_assert_eq(d.busy, 1);
    cr_assert_eq(d.max_message, 8192);
    cr_assert_not(d.bundles, "a worker that does not say takes TASK alone");
    cr_assert_eq(d.n_experiments, 1u);
    cr_assert_str_eq(d.experiments[0].id, "exp_pj");
    bson_t got;
    cr_assert(xp__msg_doc_view(d.experiments[0].code, &got));
    cr_assert(bson_equal(&got, &code));
    xp__msg_hello_clear(&d);
    bson_destroy(&body);
    bson_destroy(&code);

    h.bundles = true;
    h.prefetch = 64;
    s_open(xp__msg_hello_encode(&h), XP_MSG_HELLO, &body);
    cr_assert_eq(xp__msg_hello_decode(&body, &d, NULL), 0);
    cr_assert(d.bundles);
    cr_assert_eq(d.prefetch, 64);
    xp__msg_hello_clear(&d);
    bson_destroy(&body);
    h.prefetch = XP_MSG_PREFETCH_MAX + 1; /* out of bounds: not taken */
    s_open(xp__msg_hello_encode(&h), XP_MSG_HELLO, &body);
    cr_assert_eq(xp__msg_hello_decode(&body, &d, NULL), 0);
    cr_assert_not(d.bundles);
    cr_assert_eq(d.prefetch, 0);
    xp__msg_hello_clear(&d);
    bson_destroy(&body);

    xp_msg_welcome w = {250, 8192, true}, wd;
    s_open(xp__msg_welcome_encode(&w), XP_MSG_WELCOME, &body);
    xp__msg_welcome_decode(&body, &wd, NULL);
    cr_assert_eq(wd.heartbeat_ms, 250);
    cr_assert_eq(wd.max_message, 8192);
    cr_assert(wd.bundles);
    bson_destroy(&body);
    w.bundles = false;
    w.heartbeat_ms = 5; /* out of bounds: not taken */
    w.max_message = 0;  /* absent */
    s_open(xp__msg_welcome_encode(&w), XP_MSG_WELCOME, &body);
    xp__msg_welcome_decode(&body, &wd, NULL);
    cr_assert_eq(wd.heartbeat_ms, 0);
    cr_assert_eq(wd.max_message, 0);
    cr_assert_not(wd.bundles);
    bson_destroy(&body);

    xp_msg_error er = {XP_MSG_UNKNOWN_WORKER}, ed;
    s_open(xp__msg_error_encode(&er), XP_MSG_ERROR, &body);
    xp__msg_error_decode(&body, &ed, NULL);
    cr_assert_str_eq(ed.message, XP_MSG_UNKNOWN_WORKER);
    cr_assert(xp__msg_error_wants_hello(&ed));
    bson_destroy(&body);
}

Test(message, task_and_result_round_trip)
{
    xp_value *a = xp_value_new(), *b = xp_value_new();
    xp_set_double(a, 1.5);
    xp_set_string(b, "two");
    const xp_value *in[] = {a, b};
    xp_msg_task t = {.trial = 7,
                     .attempt = 2,
                     .step = "s",
                     .experiment = "exp_pj",
                     .code_hash = "0123",
                     .seed = 99,
                     .inputs = in,
                     .n_inputs = 2};
    bson_t body;
    s_open(xp__msg_task_encode(&t), XP_MSG_TASK, &body);
    xp_msg_task d;
    cr_assert_eq(xp__msg_task_decode(&body, &d, NULL), 0);
    cr_assert_eq(d.trial, 7);
    cr_assert_eq(d.attempt, 2);
    cr_assert_eq(d.seed, 99u);
    cr_assert_str_eq(d.step, "s");
    xp_value *values[2] = {0};
    size_t count = 0;
    cr_assert_eq(xp__msg_task_inputs(&d, values, 1, &count, NULL), 0);
    cr_assert_eq(count, 2u, "inputs beyond n are counted");
    cr_assert_float_eq(xp_as_double(values[0]), 1.5, 0);
    cr_assert_null(values[1]);
    xp_value_destroy(&values[0]);
    bson_destroy(&body);

    int64_t epochs[] = {0, 1};
    double points[] = {0.5, -2};
    xp_msg_metric m = {"loss", epochs, points, 2};
    xp_msg_result r = {.trial = 7,
                       .attempt = 2,
                       .step = "s",
                       .ok = true,
                       .output = a,
                       .metrics = &m,
                       .n_metrics = 1,
                       .elapsed = 0.25};
    s_open(xp__msg_result_encode(&r), XP_MSG_RESULT, &body);
    xp_msg_result rd;
    cr_assert_eq(xp__msg_result_decode(&body, &rd, NULL), 0);
    cr_assert(rd.ok);
    cr_assert_float_eq(xp_as_double(rd.output), 1.5, 0);
    cr_assert_eq(rd.n_metrics, 1u);
    cr_assert_not(rd.metrics_bad);
    cr_assert_str_eq(rd.metrics[0].name, "loss");
    cr_assert_eq(rd.metrics[0].epochs[1], 1);
    cr_assert_float_eq(rd.metrics[0].values[1], -2, 0);
    cr_assert_float_eq(rd.elapsed, 0.25, 0);
    cr_assert_not(xp__msg_result_busy(&rd));
    xp__msg_result_clear(&rd);
    bson_destroy(&body);

    xp_msg_result busy = {.trial = 1,
                          .attempt = 1,
                          .step = "s",
                          .failure = XP_MSG_WORKER_BUSY ": all 2 slot(s)"};
    s_open(xp__msg_result_encode(&busy), XP_MSG_RESULT, &body);
    cr_assert_eq(xp__msg_result_decode(&body, &rd, NULL), 0);
    cr_assert(xp__msg_result_busy(&rd), "a busy refusal is not seen as one");
    xp__msg_result_clear(&rd);
    bson_destroy(&body);
    xp_value_destroy(&a);
    xp_value_destroy(&b);
}

Test(message, bundles_carry_their_bodies_in_order)
{
    xp_msg_bundle b;
    xp__msg_bundle_init(&b, XP_MSG_RESULTS);
    cr_assert_null(xp__msg_bundle_finish(&b), "an empty bundle is no message");
    xp__msg_bundle_init(&b, XP_MSG_RESULTS);
    size_t before = b.body.len;
    for (int64_t i = 1; i <= 3; i++) {
        xp_msg_result r = {
            .trial = i, .attempt = 1, .step = "s", .failure = "f"};
        zmsg_t *one = xp__msg_result_encode(&r);
        size_t bytes = zframe_size(zmsg_last(one));
        size_t with = xp__msg_bundle_size_with(&b, bytes);
        xp__msg_bundle_add(&b, &one);
        cr_assert_null(one);
        cr_assert_geq(with, (size_t)b.body.len + b.list.len,
                      "size_with under-counts");
    }
    cr_assert_gt(b.list.len, before);
    bson_t body;
    s_open(xp__msg_bundle_finish(&b), XP_MSG_RESULTS, &body);
    bson_iter_t it;
    bson_t one;
    size_t bad = 0;
    cr_assert_neq(xp__msg_bundle_open(&body, XP_MSG_TASKS, &it, NULL), 0,
                  "a RESULTS body has no tasks");
    cr_assert_eq(xp__msg_bundle_open(&body, XP_MSG_RESULTS, &it, NULL), 0);
    int64_t want = 1;
    while (xp__msg_bundle_next(&it, &one, &bad)) {
        xp_msg_result rd;
        cr_assert_eq(xp__msg_result_decode(&one, &rd, NULL), 0);
        cr_assert_eq(rd.trial, want++);
        xp__msg_result_clear(&rd);
    }
    cr_assert_eq(want, 4);
    cr_assert_eq(bad, 0u);
    bson_destroy(&body);

    /* The sizes told are never below what is sent. */
    xp_msg_result big = {.trial = 9,
                         .attempt = 1,
                         .step = "s",
                         .failure = "a longer failure text"};
    zmsg_t *single = xp__msg_result_encode(&big);
    size_t bytes = zframe_size(zmsg_last(single));
    xp__msg_bundle_init(&b, XP_MSG_RESULTS);
    size_t told = xp__msg_bundle_size_with(&b, bytes);
    xp__msg_bundle_add(&b, &single);
    zmsg_t *sent = xp__msg_bundle_finish(&b);
    size_t got = zframe_size(zmsg_last(sent));
    cr_assert_leq(got, told, "a bundle of %zu bytes was told %zu", got, told);
    cr_assert_leq(got, xp__msg_bundle_size_alone(bytes));
    zmsg_destroy(&sent);

    /* What is not a document is skipped and counted. */
    bson_t hostile = BSON_INITIALIZER, list;
    BSON_APPEND_ARRAY_BEGIN(&hostile, "tasks", &list);
    BSON_APPEND_INT32(&list, "0", 5);
    bson_t t = BSON_INITIALIZER;
    BSON_APPEND_DOCUMENT(&list, "1", &t);
    bson_append_array_end(&hostile, &list);
    cr_assert_eq(xp__msg_bundle_open(&hostile, XP_MSG_TASKS, &it, NULL), 0);
    size_t docs = 0;
    while (xp__msg_bundle_next(&it, &one, &bad))
        docs++;
    cr_assert_eq(docs, 1u);
    cr_assert_eq(bad, 1u);
    bson_destroy(&t);
    bson_destroy(&hostile);
}

Test(message, submit_accepted_status_progress_round_trip)
{
    xp_value *specs = xp_value_new();
    xp_set_array(specs);
    for (int i = 0; i < 2; i++) {
        xp_value *spec = xp_array_append(specs);
        xp_set_document(spec);
        xp_value *params = xp_document_set(spec, "parameters");
        xp_set_document(params);
        xp_set_double(xp_document_set(params, "a"), 1.0 + i);
        if (i == 1)
            xp_set_int64(xp_document_set(spec, "seed"), 5);
    }
    xp_msg_submit s = {.experiment = "exp_pj", .code_hash = "0123"};
    cr_assert_eq(xp__msg_trials_from_value(specs, &s.trials, &s.n_trials, NULL),
                 0);
    bson_t body;
    s_open(xp__msg_submit_encode(&s), XP_MSG_SUBMIT, &body);
    bson_free(s.trials);
    xp_msg_submit d;
    xp_error_t err = {0};
    cr_assert_eq(xp__msg_submit_decode(&body, &d, &err), 0, "%s", err.message);
    cr_assert_eq(d.n_trials, 2u);
    cr_assert_null(d.code.data);
    cr_assert_not(d.trials[0].has_seed);
    cr_assert(d.trials[1].has_seed);
    cr_assert_eq(d.trials[1].seed, 5);
    cr_assert_float_eq(xp_as_double(xp_value_get(d.trials[1].params, "a")), 2.0,
                       0);
    xp__msg_submit_clear(&d);
    bson_destroy(&body);
    xp_value_destroy(&specs);

    int64_t ids[] = {4, 5, 6};
    xp_msg_accepted a = {9, ids, 3}, ad;
    s_open(xp__msg_accepted_encode(&a), XP_MSG_ACCEPTED, &body);
    cr_assert_eq(xp__msg_accepted_decode(&body, &ad, NULL), 0);
    cr_assert_eq(ad.batch, 9);
    cr_assert_eq(ad.n_ids, 3u);
    cr_assert_eq(ad.ids[2], 6);
    xp__msg_accepted_clear(&ad);
    bson_destroy(&body);

    xp_msg_status st = {9, 4, 0}, sd;
    s_open(xp__msg_status_encode(&st), XP_MSG_STATUS, &body);
    cr_assert_eq(xp__msg_status_decode(&body, &sd, NULL), 0);
    cr_assert_eq(sd.batch, 9);
    cr_assert_eq(sd.cursor, 4);
    cr_assert_eq(sd.wait_ms, 0);
    bson_destroy(&body);
    /* the long poll's wait: kept, and bounded */
    st.wait_ms = 750;
    s_open(xp__msg_status_encode(&st), XP_MSG_STATUS, &body);
    cr_assert_eq(xp__msg_status_decode(&body, &sd, NULL), 0);
    cr_assert_eq(sd.wait_ms, 750);
    bson_destroy(&body);
    st.wait_ms = XP_MSG_STATUS_WAIT_MAX + 1;
    s_open(xp__msg_status_encode(&st), XP_MSG_STATUS, &body);
    cr_assert_neq(xp__msg_status_decode(&body, &sd, NULL), 0);
    bson_destroy(&body);

    xp_value *result = xp_value_new();
    xp_set_int64(result, 3);
    xp_msg_finished f = {.trial_id = 5, .ok = true, .result = result};
    bson_t *line = xp__msg_finished_line(&f);
    xp_msg_progress p = {.queued = 1, .total = 2, .waiting = "w", .cursor = 5};
    bson_t lines = BSON_INITIALIZER;
    BSON_APPEND_DOCUMENT(&lines, "0", line);
    p.finished = xp__msg_doc_of(&lines);
    s_open(xp__msg_progress_encode(&p), XP_MSG_PROGRESS, &body);
    bson_destroy(&lines);
    bson_destroy(line);
    xp_value_destroy(&result);
    xp_msg_progress pd;
    cr_assert_eq(xp__msg_progress_decode(&body, &pd, NULL), 0);
    cr_assert_eq(pd.queued, 1);
    cr_assert_eq(pd.cursor, 5);
    cr_assert_str_eq(pd.waiting, "w");
    xp_value *finished = NULL;
    cr_assert_eq(xp__msg_progress_finished(&pd, &finished, NULL), 0);
    cr_assert_eq(xp_value_count(finished), 1u);
    const xp_value *l0 = xp_value_at(finished, 0);
    cr_assert_eq(xp_as_int64(xp_value_get(l0, "trial_id")), 5);
    cr_assert_str_eq(xp_as_string(xp_value_get(l0, "status"), NULL),
                     "succeeded");
    cr_assert_eq(xp_as_int64(xp_value_get(l0, "result")), 3);
    cr_assert_null(xp_value_get(l0, "spooled"), "a stored trial is spooled");
    xp_value_destroy(&finished);
    bson_destroy(&body);

    /* A trial whose record waits in the spool: its status, and the flag. */
    f.spooled = true;
    f.result = NULL;
    f.description = "kept in spool/5.bson";
    line = xp__msg_finished_line(&f);
    bson_iter_t it;
    cr_assert(bson_iter_init_find(&it, line, "spooled") &&
              BSON_ITER_HOLDS_BOOL(&it) && bson_iter_bool(&it));
    cr_assert(bson_iter_init_find(&it, line, "status"));
    cr_assert_str_eq(bson_iter_utf8(&it, NULL), "succeeded");
    bson_destroy(line);
}

/* Decoding body (JSON) as type gives -1. */
static void s_refused(xp_msg_type type, const char *json)
{
    bson_error_t e;
    bson_t *b = bson_new_from_json((const uint8_t *)json, -1, &e);
    cr_assert_not_null(b, "%s: %s", json, e.message);
    int rc = 0;
    xp_error_t err = {0};
    switch (type) {
    case XP_MSG_HELLO: {
        xp_msg_hello m;
        rc = xp__msg_hello_decode(b, &m, &err);
        xp__msg_hello_clear(&m);
        break;
    }
    case XP_MSG_TASK: {
        xp_msg_task m;
        rc = xp__msg_task_decode(b, &m, &err);
        break;
    }
    case XP_MSG_RESULT: {
        xp_msg_result m;
        rc = xp__msg_result_decode(b, &m, &err);
        xp__msg_result_clear(&m);
        break;
    }
    case XP_MSG_SUBMIT: {
        xp_msg_submit m;
        rc = xp__msg_submit_decode(b, &m, &err);
        xp__msg_submit_clear(&m);
        break;
    }
    case XP_MSG_ACCEPTED: {
        xp_msg_accepted m;
        rc = xp__msg_accepted_decode(b, &m, &err);
        xp__msg_accepted_clear(&m);
        break;
    }
    case XP_MSG_STATUS: {
        xp_msg_status m;
        rc = xp__msg_status_decode(b, &m, &err);
        break;
    }
    case XP_MSG_PROGRESS: {
        xp_msg_progress m;
        rc = xp__msg_progress_decode(b, &m, &err);
        break;
    }
    default: cr_assert_fail("no decoder in the table");
    }
    cr_assert_neq(rc, 0, "%s %s accepted", xp__msg_name(type), json);
    cr_assert(err.message[0] && !strchr(err.message, '\n'), "%s: '%s'", json,
              err.message);
    bson_destroy(b);
}

Test(message, decoders_refuse_missing_and_mistyped_fields)
{
    s_refused(XP_MSG_HELLO, "{\"slots\": 2, \"experiments\": []}");
    s_refused(XP_MSG_HELLO,
              "{\"host\": \"h\", \"slots\": 0, \"experiments\": []}");
    s_refused(XP_MSG_HELLO,
              "{\"host\": \"h\", \"slots\": 2, \"experiments\": {}}");
    s_refused(XP_MSG_TASK, "{\"trial\": 1, \"attempt\": 1}");
    s_refused(XP_MSG_TASK, "{\"trial\": 1, \"attempt\": 1, \"step\": \"s\", "
                           "\"experiment\": \"e\", \"code_hash\": \"h\", "
                           "\"seed\": 1, \"inputs\": \"1,2\"}");
    s_refused(XP_MSG_RESULT, "{\"trial\": 1, \"step\": \"s\"}");
    s_refused(XP_MSG_SUBMIT, "{\"trials\": [{}]}");
    s_refused(XP_MSG_SUBMIT, "{\"experiment\": \"bad id!\", \"trials\": [{}]}");
    s_refused(XP_MSG_SUBMIT, "{\"experiment\": \"e\", \"trials\": []}");
    s_refused(XP_MSG_SUBMIT, "{\"experiment\": \"e\", \"trials\": [1]}");
    s_refused(XP_MSG_SUBMIT,
              "{\"experiment\": \"e\", \"trials\": [{\"seed\": 1.5}]}");
    s_refused(XP_MSG_SUBMIT,
              "{\"experiment\": \"e\", \"trials\": [{\"parameters\": 3}]}");
    s_refused(XP_MSG_ACCEPTED, "{\"batch\": 1, \"ids\": [\"x\"]}");
    s_refused(XP_MSG_STATUS, "{\"batch\": \"1\"}");
    s_refused(XP_MSG_STATUS, "{\"batch\": 1, \"cursor\": -1}");
    s_refused(XP_MSG_PROGRESS, "{\"queued\": 1}");

    /* a TASK with its echo fields but nothing else keeps them, so that
     * it can be answered */
    bson_t *b = bson_new_from_json(
        (const uint8_t *)"{\"trial\": 3, \"attempt\": 1, \"step\": \"s\"}", -1,
        NULL);
    xp_msg_task t;
    cr_assert_neq(xp__msg_task_decode(b, &t, NULL), 0);
    cr_assert_str_eq(t.step, "s");
    cr_assert_eq(t.trial, 3);
    bson_destroy(b);
}
