/* test_store.c — the local store facing damaged and foreign files: each
 * case gives a clear one-line error (XP_ECORRUPT or XP_ENOTFOUND), never a
 * crash, and leaves the stored bytes as they were. */
#include "common.h"

#include <math.h>
#include <sqlite3.h>

TestSuite(store, .init = xpt_setup, .fini = xpt_teardown);

static int s_add(xp_step *st, const xp_value *const *in, xp_value *out)
{
    for (int e = 0; e < 10; e++)
        xp_save_metric(st, "m", e, e * 0.5);
    return xp_set_int64(out, xp_as_int64(in[0]) + 1);
}

/* Creates experiment id with n succeeded trials. */
static void s_make(const char *id, int n)
{
    xp_experiment *ex = xpt_open(id);
    xp_node *a = xp_parameter(ex, "a");
    XP_RESULT(ex, s_add, a);
    for (int i = 0; i < n; i++) {
        xp_error_t err;
        cr_assert_eq(xp_set_param_int64(ex, "a", i, &err), 0, "%s",
                     err.message);
        cr_assert_eq(xp_compute(ex, NULL, NULL, NULL, &err), 0, "%s",
                     err.message);
    }
    xp_experiment_destroy(&ex);
}

static char *s_db_path(const char *id)
{
    char *p = malloc(PATH_MAX);
    snprintf(p, PATH_MAX, "%s/%s/xp.sqlite3", xpt_dir, id);
    return p;
}

static void s_sql(const char *id, const char *sql)
{
    char *path = s_db_path(id);
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    char *msg = NULL;
    cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, &msg), SQLITE_OK, "%s",
                 msg ? msg : "");
    sqlite3_close(db);
    free(path);
}

/* Opening must fail with code and a message containing `needle`, and
 * leave the file's bytes unchanged. */
static void s_open_fails(const char *id, uint32_t code, const char *needle)
{
    char *path = s_db_path(id);
    char *before = xpt_slurp(path);
    struct stat sb1, sb2;
    cr_assert_eq(stat(path, &sb1), 0);
    xp_open_options o = XP_OPEN_OPTIONS_INIT;
    o.backend = xpt_dir;
    xp_experiment *ex = NULL;
    xp_error_t err = {0};
    cr_assert_eq(xp_experiment_open(&ex, id, &o, &err), -1,
                 "opening a bad store succeeded");
    cr_assert_null(ex);
    cr_assert_eq(err.code, code, "code %u (%s), expected %u", err.code,
                 err.message, code);
    cr_assert_not_null(strstr(err.message, needle), "message: %s", err.message);
    cr_assert_null(strchr(err.message, '\n'), "multi-line message");
    cr_assert_eq(stat(path, &sb2), 0);
    cr_assert_eq(sb1.st_size, sb2.st_size, "file size changed");
    char *after = xpt_slurp(path);
    cr_assert(before && after &&
                  memcmp(before, after, (size_t)sb1.st_size) == 0,
              "store bytes changed");
    free(before);
    free(after);
    free(path);
}

Test(store, foreign_file_is_a_clear_error)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/foreign", xpt_dir);
    cr_assert_eq(mkdir(dir, 0777), 0);
    char *path = s_db_path("foreign");
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    for (int i = 0; i < 200; i++)
        fputs("this is not a database, just some text\n", f);
    fclose(f);
    s_open_fails("foreign", XP_ECORRUPT, "foreign/xp.sqlite3");
    free(path);
}

Test(store, another_experiments_store_is_refused)
{
    s_make("alpha", 2);
    char from[PATH_MAX], to[PATH_MAX];
    snprintf(from, sizeof from, "%s/alpha", xpt_dir);
    snprintf(to, sizeof to, "%s/beta", xpt_dir);
    cr_assert_eq(rename(from, to), 0);
    s_open_fails("beta", XP_ECORRUPT, "belongs to experiment 'alpha'");
}

Test(store, other_sqlite_database_is_refused)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/other", xpt_dir);
    cr_assert_eq(mkdir(dir, 0777), 0);
    s_sql("other", "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT);"
                   "INSERT INTO meta VALUES ('format', 'somebody-else');");
    s_open_fails("other", XP_ECORRUPT, "is not an xp store");
}

Test(store, newer_schema_is_refused)
{
    s_make("future", 1);
    s_sql("future", "UPDATE meta SET value = '99' WHERE key = 'schema'");
    s_open_fails("future", XP_ECORRUPT, "schema version '99'");
}

Test(store, truncated_file_is_a_clear_error)
{
    s_make("cut", 50);
    char *path = s_db_path("cut");
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0);
    cr_assert_eq(truncate(path, 1000), 0);
    xp_open_options o = XP_OPEN_OPTIONS_INIT;
    o.backend = xpt_dir;
    xp_experiment *ex = NULL;
    xp_error_t err = {0};
    /* Either open or the first read reports the damage; neither crashes. */
    if (xp_experiment_open(&ex, "cut", &o, &err) == 0) {
        xp_value *h = NULL;
        cr_assert_eq(xp_history(ex, &h, &err), -1,
                     "history of a truncated store succeeded");
        xp_experiment_destroy(&ex);
    }
    cr_assert(err.code == XP_ECORRUPT || err.code == XP_EIO, "code %u: %s",
              err.code, err.message);
    cr_assert_gt(strlen(err.message), 0);
    free(path);
}

Test(store, damaged_trial_record_is_reported_and_others_stay_readable)
{
    s_make("rec", 3);
    s_sql("rec", "UPDATE trials SET doc = x'0a00000001' WHERE id = 2");
    xp_experiment *ex = xpt_open("rec");
    xp_value *doc = NULL, *h = NULL;
    xp_error_t err = {0};
    cr_assert_eq(xp_trial_get(ex, 2, &doc, &err), -1);
    cr_assert_eq(err.code, XP_ECORRUPT, "%u: %s", err.code, err.message);
    cr_assert_not_null(strstr(err.message, "damaged"), "%s", err.message);
    /* History shows the other trials and marks the damaged one. */
    h = xpt_history(ex);
    cr_assert_eq(xp_value_count(h), 3, "history has %zu trials",
                 xp_value_count(h));
    const xp_value *two = xp_value_at(h, 1);
    cr_assert_eq(xpt_get_int(two, "trial_id"), 2);
    cr_assert_str_eq(xpt_get_str(two, "status"), "damaged");
    cr_assert(!xpt_get_bool(two, "success"));
    cr_assert_not_null(strstr(xpt_get_str(two, "description"), "damaged"), "%s",
                       xpt_get_str(two, "description"));
    cr_assert_eq(xpt_get_int(xp_value_at(h, 2), "result"), 3);
    xp_value_destroy(&h);
    doc = xpt_trial(ex, 3);
    cr_assert_eq(xpt_get_int(doc, "result"), 3);
    xp_value_destroy(&doc);
    xp_experiment_destroy(&ex);
}

/* A stored record nesting 20,000 documents (a damaged or hostile row):
 * reading it must not walk it recursively (the stack would end first); it
 * is reported damaged like any other unreadable record. */
Test(store, deeply_nested_stored_record_is_damaged_not_a_crash)
{
    enum { DEPTH = 20000 };
    size_t total = 5 + 8 * (size_t)DEPTH;
    uint8_t *doc = calloc(1, total);
    for (size_t i = 0; i <= DEPTH; i++) {
        size_t len = total - 8 * i;
        uint8_t *d = doc + 7 * i;
        d[0] = (uint8_t)len;
        d[1] = (uint8_t)(len >> 8);
        d[2] = (uint8_t)(len >> 16);
        if (i < DEPTH) {
            d[4] = 0x03; /* embedded document */
            d[5] = 'a';
        }
    }
    char *sql = malloc(2 * total + 64);
    size_t k = (size_t)sprintf(sql, "UPDATE trials SET doc = x'");
    for (size_t i = 0; i < total; i++)
        k += (size_t)sprintf(sql + k, "%02x", doc[i]);
    sprintf(sql + k, "' WHERE id = 2");
    s_make("deep", 3);
    s_sql("deep", sql);
    free(sql);
    free(doc);
    xp_experiment *ex = xpt_open("deep");
    xp_value *v = NULL;
    xp_error_t err = {0};
    cr_assert_eq(xp_trial_get(ex, 2, &v, &err), -1);
    cr_assert_eq(err.code, XP_ECORRUPT, "%u: %s", err.code, err.message);
    xp_value *h = xpt_history(ex);
    cr_assert_eq(xp_value_count(h), 3);
    cr_assert_str_eq(xpt_get_str(xp_value_at(h, 1), "status"), "damaged");
    xp_value_destroy(&h);
    xp_experiment_destroy(&ex);
}

/* A result of `levels` levels: arrays in arrays around an int. */
static int64_t s_levels;

static int s_nested(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    (void)in;
    xp_value *v = out;
    for (int64_t i = 1; i < s_levels; i++) {
        xp_set_array(v);
        v = xp_array_append(v);
    }
    return xp_set_int64(v, 7);
}

/* Results nested up to 100 levels are stored and read back; a deeper one
 * fails its trial with a clear description (it was cut short and the
 * trial reported success, and from then on the history of the whole
 * experiment could not be read). */
Test(store, result_nesting_limit_is_the_same_on_write_and_read)
{
    xp_experiment *ex = xpt_open("deep");
    xp_result(xp_step_add(ex, "nested", s_nested, 0, NULL, NULL, 0));
    xp_error_t err = {0};
    s_levels = 100;
    cr_assert_eq(xp_compute(ex, NULL, NULL, NULL, &err), 0, "%s", err.message);
    s_levels = 101;
    cr_assert_eq(xp_compute(ex, NULL, NULL, NULL, &err), -1, "101 levels");
    cr_assert_eq(err.code, XP_ESTEP, "%u: %s", err.code, err.message);
    cr_assert_str_eq(err.message, "result nested deeper than 100 levels");
    s_levels = 1000;
    cr_assert_eq(xp_compute(ex, NULL, NULL, NULL, &err), -1, "1000 levels");
    xp_experiment_destroy(&ex);

    ex = xpt_open("deep");
    xp_value *h = xpt_history(ex);
    cr_assert_eq(xp_value_count(h), 3, "history has %zu trials",
                 xp_value_count(h));
    const xp_value *first = xp_value_at(h, 0), *v;
    cr_assert_str_eq(xpt_get_str(first, "status"), "succeeded");
    v = xpt_field(first, "result");
    for (int i = 1; i < 100; i++)
        v = xp_value_at(v, 0);
    cr_assert_eq(xp_as_int64(v), 7, "innermost value");
    for (size_t i = 1; i < 3; i++) {
        const xp_value *t = xp_value_at(h, i);
        cr_assert_str_eq(xpt_get_str(t, "status"), "failed");
        cr_assert_str_eq(xpt_get_str(t, "description"),
                         "result nested deeper than 100 levels");
        cr_assert_eq(xp_value_type(xpt_field(t, "result")), XP_TYPE_NULL);
    }
    xp_value_destroy(&h);
    xp_experiment_destroy(&ex);
}

Test(store, damaged_metric_is_reported)
{
    s_make("met", 1);
    s_sql("met", "UPDATE metrics SET data = x'010203'");
    xp_experiment *ex = xpt_open("met");
    xp_metric_table *t = NULL;
    int64_t id = 1;
    xp_error_t err = {0};
    cr_assert_eq(xp_load_metric(ex, "m", &id, 1, &t, &err), -1);
    cr_assert_null(t);
    cr_assert_eq(err.code, XP_ECORRUPT, "%u: %s", err.code, err.message);
    xp_experiment_destroy(&ex);
}

static int s_first_int(void *out, int ncol, char **vals, char **names)
{
    (void)names;
    if (ncol > 0 && vals[0])
        *(long *)out = atol(vals[0]);
    return 0;
}

Test(store, metric_chunks_are_compact_and_old_raw_ones_still_read)
{
    s_make("oldmet", 2);
    char *path = s_db_path("oldmet");
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    long bytes = -1;
    cr_assert_eq(sqlite3_exec(db,
                              "SELECT length(data) FROM metrics WHERE "
                              "trial = 1",
                              s_first_int, &bytes, NULL),
                 SQLITE_OK);
    /* Tag, n, ten one-byte epoch steps, ten doubles. */
    cr_assert_eq(bytes, 92, "a 10-point chunk of %ld bytes", bytes);
    sqlite3_close(db);
    free(path);
    /* Trial 2's chunk as the raw encoding wrote it before: epochs 0, 1, 2,
     * values 0.5, 1.0, 1.5. */
    s_sql("oldmet",
          "UPDATE metrics SET data = x'"
          "000000000000000001000000000000000200000000000000"
          "000000000000e03f000000000000f03f000000000000f83f' WHERE trial = 2");
    xp_experiment *ex = xpt_open("oldmet");
    xp_metric_table *t = NULL;
    int64_t ids[] = {1, 2};
    xp_error_t err = {0};
    cr_assert_eq(xp_load_metric(ex, "m", ids, 2, &t, &err), 0, "%s",
                 err.message);
    cr_assert_eq(xp_metric_table_epochs(t), 10);
    for (size_t r = 0; r < 10; r++) {
        cr_assert_eq(xp_metric_table_epoch(t, r), (int64_t)r);
        cr_assert_eq(xp_metric_table_value(t, r, 0), r * 0.5);
        if (r < 3)
            cr_assert_eq(xp_metric_table_value(t, r, 1), (r + 1) * 0.5);
        else
            cr_assert(isnan(xp_metric_table_value(t, r, 1)));
    }
    xp_metric_table_destroy(&t);
    xp_experiment_destroy(&ex);
}

static int s_save_300(xp_step *st, const xp_value *const *in, xp_value *out)
{
    for (int e = 0; e < 300; e++)
        xp_save_metric(st, "m", e, e * 0.25);
    return xp_set_int64(out, xp_as_int64(in[0]));
}

Test(store, a_mid_sized_chunk_is_stored_as_rows_that_fit_a_page)
{
    xp_experiment *ex = xpt_open("rows");
    xp_node *a = xp_parameter(ex, "a");
    XP_RESULT(ex, s_save_300, a);
    xp_error_t err = {0};
    cr_assert_eq(xp_set_param_int64(ex, "a", 1, &err), 0, "%s", err.message);
    cr_assert_eq(xp_compute(ex, NULL, NULL, NULL, &err), 0, "%s", err.message);
    xp_experiment_destroy(&ex);
    char *path = s_db_path("rows");
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    long rows = -1, longest = -1;
    cr_assert_eq(sqlite3_exec(db, "SELECT count(*) FROM metrics", s_first_int,
                              &rows, NULL),
                 SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, "SELECT max(length(data)) FROM metrics",
                              s_first_int, &longest, NULL),
                 SQLITE_OK);
    sqlite3_close(db);
    free(path);
    /* 300 points of ~9 bytes: 2,702 bytes in one row would spill. */
    cr_assert_geq(rows, 3, "%ld rows", rows);
    cr_assert_leq(longest, 1000, "a row of %ld bytes", longest);
    ex = xpt_open("rows");
    xp_metric_table *t = NULL;
    int64_t id = 1;
    cr_assert_eq(xp_load_metric(ex, "m", &id, 1, &t, &err), 0, "%s",
                 err.message);
    cr_assert_eq(xp_metric_table_epochs(t), 300);
    for (size_t r = 0; r < 300; r++) {
        cr_assert_eq(xp_metric_table_epoch(t, r), (int64_t)r);
        cr_assert_eq(xp_metric_table_value(t, r, 0), r * 0.25);
    }
    xp_metric_table_destroy(&t);
    xp_experiment_destroy(&ex);
}

Test(store, must_exist_on_a_missing_experiment)
{
    xp_open_options o = XP_OPEN_OPTIONS_INIT;
    o.backend = xpt_dir;
    o.must_exist = true;
    xp_experiment *ex = NULL;
    xp_error_t err = {0};
    cr_assert_eq(xp_experiment_open(&ex, "nothing_here", &o, &err), -1);
    cr_assert_eq(err.code, XP_ENOTFOUND, "%u: %s", err.code, err.message);
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/nothing_here", xpt_dir);
    cr_assert_neq(access(dir, F_OK), 0, "must_exist created %s", dir);
}
