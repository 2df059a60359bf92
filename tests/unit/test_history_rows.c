/* test_history_rows.c — history's one pass from a store's bytes to a row
 * (xp__record_read_row): on stored records it builds the rows the way
 * before it did (check, tree, record check), sharing the keys and strings
 * that repeat from row to row; a damaged record gets the same verdict and
 * the same message, read alone and through xp_history on a local store. */
#include "common.h"

#include "store/record.h"
#include "value.h"

#include <sqlite3.h>

TestSuite(history_rows, .init = xpt_setup, .fini = xpt_teardown);

static int s_score(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    if (xp_as_int64(in[0]) % 3 == 2)
        return xp_step_fail(st, "a failed trial");
    return xp_set_double(out, xp_as_double(in[0]) * 0.5);
}

/* Experiment id with n trials of an int, a string and a list parameter. */
static void s_make(const char *id, int n)
{
    xp_experiment *ex = xpt_open(id);
    xp_node *a = xp_parameter(ex, "a");
    xp_parameter(ex, "name");
    xp_parameter(ex, "list");
    XP_RESULT(ex, s_score, a);
    for (int i = 0; i < n; i++) {
        xp_error_t err;
        char name[32];
        snprintf(name, sizeof name, "name-%d", i % 2);
        xp_value *list = xp_value_new();
        xp_set_array(list);
        for (int k = 0; k <= i % 3; k++)
            xp_set_string(xp_array_append(list), k ? "é" : "x");
        cr_assert_eq(xp_set_param_int64(ex, "a", i, &err), 0);
        cr_assert_eq(xp_set_param_string(ex, "name", name, &err), 0);
        cr_assert_eq(xp_set_param(ex, "list", list, &err), 0, "%s",
                     err.message);
        xp_value_destroy(&list);
        xp_compute(ex, NULL, NULL, NULL, &err);
    }
    xp_experiment_destroy(&ex);
}

static sqlite3 *s_db(const char *id)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s/xp.sqlite3", xpt_dir, id);
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    return db;
}

/* The stored bytes of trial id (caller frees), *len their size. */
static uint8_t *s_stored(sqlite3 *db, int64_t id, size_t *len)
{
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_prepare_v2(db, "SELECT doc FROM trials WHERE id = ?",
                                    -1, &st, NULL),
                 SQLITE_OK);
    sqlite3_bind_int64(st, 1, id);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "no trial %lld", (long long)id);
    *len = (size_t)sqlite3_column_bytes(st, 0);
    uint8_t *copy = malloc(*len);
    memcpy(copy, sqlite3_column_blob(st, 0), *len);
    sqlite3_finalize(st);
    return copy;
}

static void s_store(sqlite3 *db, int64_t id, const uint8_t *data, size_t len)
{
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_prepare_v2(db,
                                    "UPDATE trials SET doc = ? WHERE id = ?",
                                    -1, &st, NULL),
                 SQLITE_OK);
    sqlite3_bind_blob(st, 1, data, (int)len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, id);
    cr_assert_eq(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
}

/* Verdict and message of the one pass and of the way before agree; the
 * rows too when both read. 0 when the record reads. */
static int s_agree(const uint8_t *data, size_t len, xp_value *rows,
                   char *message, size_t size)
{
    xp_value *before = xp__value_arena_array();
    xp_error_t ef = {0}, es = {0};
    xp_value *fast = xp_array_append(rows), *slow = xp_array_append(before);
    int rf = xp__record_read_row(fast, data, len, rows, &ef);
    int rs = xp__record_read_row_checked(slow, data, len, before, &es);
    cr_assert_eq(rf, rs, "verdicts: %d (%s) and %d (%s)", rf, ef.message, rs,
                 es.message);
    cr_assert_str_eq(ef.message, es.message);
    if (rs == 0)
        cr_assert(xp_value_equal(fast, slow), "rows differ");
    bson_strncpy(message, es.message, size);
    xp_value_destroy(&before);
    return rf;
}

Test(history_rows, stored_records_read_in_one_pass_share_what_repeats)
{
    s_make("rows", 6);
    sqlite3 *db = s_db("rows");
    xp_value *rows = xp__value_arena_array();
    char message[sizeof(xp_error_t){0}.message];
    for (int64_t id = 1; id <= 6; id++) {
        size_t len;
        uint8_t *data = s_stored(db, id, &len);
        /* the one pass takes a stored record itself, not the way before */
        xp_value *probe = xp__value_arena_array();
        cr_assert_eq(xp__value_from_bytes_in(xp_array_append(probe), data, len,
                                             probe, NULL, 0),
                     0, "trial %lld read the way before", (long long)id);
        xp_value_destroy(&probe);
        cr_assert_eq(s_agree(data, len, rows, message, sizeof message), 0,
                     "trial %lld: %s", (long long)id, message);
        free(data);
    }
    sqlite3_close(db);
    /* trials 1 and 2 succeeded: the same fields */
    cr_assert_eq(xp_value_count(rows), 6);
    const xp_value *r0 = xp_value_at(rows, 0), *r2 = xp_value_at(rows, 1);
    cr_assert_eq(xp_value_count(r0), xp_value_count(r2));
    for (size_t i = 0; i < xp_value_count(r0); i++)
        cr_assert_eq(xp_value_key_at(r0, i), xp_value_key_at(r2, i),
                     "key %s not shared", xp_value_key_at(r0, i));
    cr_assert_eq(xp_as_string(xpt_field(r0, "experiment"), NULL),
                 xp_as_string(xpt_field(r2, "experiment"), NULL),
                 "a string that repeats is not shared");
    /* a shared row changes alone */
    xp_value *mine = (xp_value *)xp_value_at(rows, 1);
    xp_set_string((xp_value *)xpt_field(mine, "experiment"), "changed");
    xp_set_int64(xp_document_set(mine, "added"), 1);
    xp_set_string(
        xp_document_set((xp_value *)xpt_field(mine, "parameters"), "name"),
        "renamed");
    cr_assert_str_eq(xpt_get_str(r0, "experiment"), "rows");
    cr_assert_null(xp_value_get(r0, "added"));
    cr_assert_str_eq(xpt_get_str(xpt_field(r0, "parameters"), "name"),
                     "name-0");
    cr_assert_str_eq(xpt_get_str(mine, "experiment"), "changed");
    xp_value_destroy(&rows);
}

/* Checks a row read from trial id's record (one pass or the way before,
 * as read_row says) against a heap copy of it, through every change a
 * user makes: children kept in place while a container grows, siblings
 * and the other rows untouched, copies and reads alike. */
static void s_change_rows(sqlite3 *db, int read_row)
{
    xp_value *rows = xp__value_arena_array();
    xp_error_t err;
    for (int64_t id = 1; id <= 6; id++) {
        size_t len;
        uint8_t *data = s_stored(db, id, &len);
        xp_value *row = xp_array_append(rows);
        cr_assert_eq(
            read_row ? xp__record_read_row(row, data, len, rows, &err)
                     : xp__record_read_row_checked(row, data, len, rows, &err),
            0, "%s", err.message);
        free(data);
    }
    xp_value *copies = xp_value_new();
    xp_set_array(copies);
    for (size_t i = 0; i < 6; i++)
        xp_set_value(xp_array_append(copies), xp_value_at(rows, i));
    cr_assert(xp_value_equal(rows, copies));
    char *json = xp_value_to_json(rows), *again = xp_value_to_json(copies);
    cr_assert_str_eq(json, again);
    xp_free(json);
    xp_free(again);
    bson_t b = BSON_INITIALIZER;
    xp_value *read = xp_value_new();
    cr_assert_eq(xp__value_to_bson(xp_value_at(rows, 2), &b), 0);
    cr_assert_eq(xp__value_from_bson(read, &b, NULL), 0);
    cr_assert(xp_value_equal(read, xp_value_at(rows, 2)));
    bson_destroy(&b);
    xp_value_destroy(&read);

    /* a container grown past its children keeps them where they were */
    xp_value *row = (xp_value *)xp_value_at(rows, 2);
    xp_value *params = (xp_value *)xpt_field(row, "parameters");
    const xp_value *a = xpt_field(params, "a"),
                   *list = xpt_field(params, "list");
    const xp_value *first = xp_value_at(list, 0);
    size_t nparams = xp_value_count(params), nlist = xp_value_count(list);
    cr_assert_eq(xp_value_count(row), xp_value_count(xp_value_at(copies, 2)));
    for (int k = 0; k < 40; k++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", k);
        xp_set_int64(xp_document_set(params, key), k);
        xp_set_int64(xp_array_append((xp_value *)list), k);
    }
    cr_assert_eq(xpt_field(params, "a"), a);
    cr_assert_eq(xp_value_at(list, 0), first);
    cr_assert_eq(xp_as_int64(a), 2);
    cr_assert_str_eq(xp_as_string(first, NULL), "x");
    cr_assert_eq(xp_value_count(params), nparams + 40);
    cr_assert_eq(xp_value_count(list), nlist + 40);
    cr_assert_eq(xp_as_int64(xp_value_at(list, nlist + 39)), 39);
    cr_assert_str_eq(xp_value_key_at(params, nparams + 39), "k39");
    /* set again in place: the same node, the others as they were */
    cr_assert_eq(xp_document_set(params, "a"), a);
    cr_assert_eq(xp_value_type(a), XP_TYPE_NULL);
    xp_set_string((xp_value *)a, "now a string");
    const xp_value *copy = xp_value_at(copies, 2);
    cr_assert(xp_value_equal(xpt_field(row, "experiment"),
                             xpt_field(copy, "experiment")));
    cr_assert_str_eq(xpt_get_str(xpt_field(row, "parameters"), "name"),
                     "name-0");
    for (size_t i = 0; i < 6; i++)
        if (i != 2)
            cr_assert(
                xp_value_equal(xp_value_at(rows, i), xp_value_at(copies, i)),
                "row %zu changed with row 2", i);
    /* a child of a row replaced by a copy of its parent, then a row by
     * another row and by one of its own descendants */
    xp_value *dup = xp_value_dup(row);
    cr_assert(xp_value_equal(dup, row));
    cr_assert_eq(xp_set_value((xp_value *)xpt_field(row, "result"), row), 0);
    cr_assert(xp_value_equal(xpt_field(xpt_field(row, "result"), "parameters"),
                             xpt_field(dup, "parameters")));
    xp_value *other = (xp_value *)xp_value_at(rows, 3);
    cr_assert_eq(xp_set_value(other, xp_value_at(rows, 4)), 0);
    cr_assert(xp_value_equal(other, xp_value_at(copies, 4)));
    cr_assert_eq(xp_set_value(other, xpt_field(other, "parameters")), 0);
    cr_assert(
        xp_value_equal(other, xpt_field(xp_value_at(copies, 4), "parameters")));
    xp_value_destroy(&dup);
    /* a row emptied and rebuilt, a field set to null, rows appended */
    xp_value *last = (xp_value *)xp_value_at(rows, 5);
    xp_set_document(last);
    cr_assert_eq(xp_value_count(last), 0);
    xp_set_string(xp_document_set(last, "only"), "one");
    cr_assert_str_eq(xpt_get_str(last, "only"), "one");
    xp_set_null((xp_value *)xpt_field(xp_value_at(rows, 0), "parameters"));
    cr_assert_eq(xp_value_type(xpt_field(xp_value_at(rows, 0), "parameters")),
                 XP_TYPE_NULL);
    cr_assert(xp_value_equal(xp_value_at(rows, 1), xp_value_at(copies, 1)));
    xp_set_value(xp_array_append(rows), xp_value_at(copies, 1));
    cr_assert(xp_value_equal(xp_value_at(rows, 6), xp_value_at(rows, 1)));
    xp_value_destroy(&copies);
    xp_value_destroy(&rows);
}

Test(history_rows, rows_change_copy_and_free_like_any_value)
{
    s_make("change", 6);
    sqlite3 *db = s_db("change");
    s_change_rows(db, 1);
    s_change_rows(db, 0);
    sqlite3_close(db);
}

/* A string of 2^32 - 1 bytes or more keeps its length before its bytes
 * (XP__VALUE_LONG; one too large to make here is stood in for by a short
 * one kept that way): it reads, compares, copies and frees like any. */
Test(history_rows, long_strings_keep_their_length_before_their_bytes)
{
    size_t len = 5;
    char *block = bson_malloc(sizeof len + len + 1);
    memcpy(block, &len, sizeof len);
    memcpy(block + sizeof len, "hello", len + 1);
    xp_value *v = xp_value_new();
    v->type = XP_TYPE_STRING;
    v->flags = XP__VALUE_LONG;
    v->n = UINT32_MAX;
    v->u.data = block + sizeof len;
    size_t got = 0;
    cr_assert_str_eq(xp_as_string(v, &got), "hello");
    cr_assert_eq(got, 5);
    xp_value *plain = xp_value_new();
    xp_set_string(plain, "hello");
    cr_assert(xp_value_equal(v, plain));
    xp_value *copy = xp_value_dup(v);
    cr_assert(xp_value_equal(copy, plain));
    char *json = xp_value_to_json(v);
    cr_assert_str_eq(json, "\"hello\"");
    xp_free(json);
    bson_t b = BSON_INITIALIZER;
    cr_assert_eq(xp__value_append_bson(&b, "s", v), 0);
    bson_iter_t it;
    cr_assert(bson_iter_init_find(&it, &b, "s"));
    cr_assert_str_eq(bson_iter_utf8(&it, NULL), "hello");
    bson_destroy(&b);
    /* set to another value: its block is freed (ASan checks which) */
    xp_set_int64(v, 1);
    cr_assert_eq(xp_as_int64(v), 1);
    xp_value_destroy(&copy);
    xp_value_destroy(&plain);
    xp_value_destroy(&v);
}

/* Sets the string at the first occurrence of text in data to other bytes
 * of the same length. */
static void s_patch(uint8_t *data, size_t len, const char *text,
                    const char *with)
{
    size_t n = strlen(text);
    for (size_t i = 0; i + n <= len; i++) {
        if (memcmp(data + i, text, n) == 0) {
            memcpy(data + i, with, n);
            return;
        }
    }
    cr_assert_fail("'%s' not in the record", text);
}

Test(history_rows, damaged_records_get_the_verdicts_and_messages_of_before)
{
    s_make("bad", 3);
    sqlite3 *db = s_db("bad");
    size_t len;
    uint8_t *good = s_stored(db, 2, &len), *data = malloc(len);
    xp_value *rows = xp__value_arena_array();
    char message[sizeof(xp_error_t){0}.message];
    size_t refused = 0;
    /* every cut, and every byte flipped three ways */
    for (size_t cut = 0; cut <= len; cut++)
        refused += s_agree(good, cut, rows, message, sizeof message) != 0;
    for (size_t i = 0; i < len; i++) {
        static const uint8_t flips[] = {0xff, 0x01, 0x80};
        for (size_t f = 0; f < sizeof flips; f++) {
            memcpy(data, good, len);
            data[i] ^= flips[f];
            refused += s_agree(data, len, rows, message, sizeof message) != 0;
        }
    }
    cr_assert_gt(refused, len, "the damage was not seen");
    /* damage the record reads past, as history lists it */
    static const struct {
        const char *text, *with, *message;
    } cases[] = {
        {"succeeded", "succeedee", "record of trial 2 has a damaged 'status'"},
        {"name-1", "name\xff\x31", "not a BSON document"},
        {"experiment", "experimenu", NULL}, /* an unknown field reads */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        memcpy(data, good, len);
        s_patch(data, len, cases[c].text, cases[c].with);
        int rc = s_agree(data, len, rows, message, sizeof message);
        cr_assert_eq(rc != 0, cases[c].message != NULL, "%s: %s", cases[c].with,
                     message);
        if (cases[c].message)
            cr_assert_str_eq(message, cases[c].message);
        s_store(db, 2, data, len);
        xp_experiment *ex = xpt_open("bad");
        xp_value *h = xpt_history(ex);
        cr_assert_eq(xp_value_count(h), 3);
        const xp_value *two = xp_value_at(h, 1);
        if (cases[c].message) {
            char want[512];
            snprintf(want, sizeof want,
                     "the stored record of trial 2 is damaged (%s)",
                     cases[c].message);
            cr_assert_str_eq(xpt_get_str(two, "status"), "damaged");
            cr_assert_str_eq(xpt_get_str(two, "description"), want);
        } else {
            cr_assert_not_null(xp_value_get(two, "experimenu"));
        }
        cr_assert_str_eq(xpt_get_str(xp_value_at(h, 2), "status"), "failed");
        xp_value_destroy(&h);
        xp_experiment_destroy(&ex);
    }
    /* what the one pass leaves to the way before: an ObjectId (MongoDB's
     * _id), the old binary subtype */
    bson_t doc, more = BSON_INITIALIZER;
    cr_assert(bson_init_static(&doc, good, len));
    bson_copy_to_excluding_noinit(&doc, &more, "", NULL);
    bson_oid_t oid;
    bson_oid_init_from_string(&oid, "0123456789abcdef01234567");
    BSON_APPEND_OID(&more, "_id", &oid);
    xp_value *probe = xp__value_arena_array();
    cr_assert_eq(xp__value_from_bytes_in(xp_array_append(probe),
                                         bson_get_data(&more), more.len, probe,
                                         NULL, 0),
                 -1);
    cr_assert_neq(
        s_agree(bson_get_data(&more), more.len, rows, message, sizeof message),
        0, "an ObjectId _id read as a value");
    cr_assert_str_eq(message, "unsupported BSON type 0x07 in value '_id'");
    bson_destroy(&more);
    bson_init(&more);
    bson_copy_to_excluding_noinit(&doc, &more, "", NULL);
    bson_append_binary(&more, "old", -1, BSON_SUBTYPE_BINARY_DEPRECATED,
                       (const uint8_t *)"abc", 3);
    cr_assert_eq(xp__value_from_bytes_in(xp_array_append(probe),
                                         bson_get_data(&more), more.len, probe,
                                         NULL, 0),
                 -1);
    cr_assert_eq(
        s_agree(bson_get_data(&more), more.len, rows, message, sizeof message),
        0, "%s", message);
    bson_destroy(&more);
    xp_value_destroy(&probe);
    xp_value_destroy(&rows);
    sqlite3_close(db);
    free(good);
    free(data);
}
