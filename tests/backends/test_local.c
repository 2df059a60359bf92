/* test_local.c — the local store's open path: a database emptied or lost
 * beside its trials is damaged, never a new experiment. */
#include "../common.h"

#include "experiment.h"
#include "store/store.h"
#include "util/sys.h"

#include <dirent.h>

TestSuite(local, .init = xpt_setup, .fini = xpt_teardown, .timeout = 60);

/* ---------------------------------------------------------------- helpers */

enum { OPEN_CREATE, OPEN_EXISTING, N_MODES };
static const char *const s_mode_name[] = {"create", "must_exist"};

static xp_experiment *try_open(const char *root, const char *id, int mode,
                               xp_error_t *err)
{
    xp_open_options o = XP_OPEN_OPTIONS_INIT;
    o.backend = root;
    o.threads = 1;
    o.must_exist = mode == OPEN_EXISTING;
    xp_experiment *ex = NULL;
    return xp_experiment_open(&ex, id, &o, err) == 0 ? ex : NULL;
}

static xp_experiment *open_ok(const char *root, const char *id, int mode)
{
    xp_error_t err = {0};
    xp_experiment *ex = try_open(root, id, mode, &err);
    cr_assert_not_null(ex, "open %s in %s (%s): code=%u '%s'", id, root,
                       s_mode_name[mode], err.code, err.message);
    return ex;
}

static int add_one(xp_step *st, const xp_value *const *in, xp_value *out)
{
    if (xp_save_metric(st, "m", 0, 0.5) != 0)
        return -1;
    return xp_set_int64(out, xp_as_int64(in[0]) + 1);
}

static void define(xp_experiment *ex)
{
    xp_node *a = xp_parameter(ex, "a");
    cr_assert_not_null(xp_persist(XP_RESULT(ex, add_one, a)), "definition");
}

/* Runs trials a = from .. to - 1 on ex (defined). */
static void run(xp_experiment *ex, int from, int to)
{
    for (int i = from; i < to; i++) {
        xp_error_t err = {0};
        cr_assert_eq(xp_set_param_int64(ex, "a", i, &err), 0, "%s",
                     err.message);
        cr_assert_eq(xp_compute(ex, NULL, NULL, NULL, &err), 0,
                     "trial a=%d: '%s'", i, err.message);
    }
}

/* Experiment id in root with n succeeded trials. */
static void make(const char *root, const char *id, int n)
{
    xp_experiment *ex = open_ok(root, id, OPEN_CREATE);
    define(ex);
    run(ex, 0, n);
    xp_experiment_destroy(&ex);
}

/* <root>/<id>/<name> into buf[PATH_MAX]. */
static char *path_of(char *buf, const char *root, const char *id,
                     const char *name)
{
    snprintf(buf, PATH_MAX, "%s/%s%s%s", root, id, *name ? "/" : "", name);
    return buf;
}

static off_t size_of(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? sb.st_size : -1;
}

/* The names in dir, sorted and joined with spaces, into buf[1024]. */
static char *listing(const char *dir, char *buf)
{
    struct dirent **names = NULL;
    int n = scandir(dir, &names, NULL, alphasort);
    cr_assert_geq(n, 0, "scandir %s: %s", dir, strerror(errno));
    buf[0] = '\0';
    for (int i = 0; i < n; i++) {
        size_t len = strlen(buf);
        snprintf(buf + len, 1024 - len, "%s ", names[i]->d_name);
        free(names[i]);
    }
    free(names);
    return buf;
}

/* ---------------------------------------------------------------- emptied */

/* Every open of id fails with XP_ECORRUPT naming the database, in one
 * line, and leaves the directory as it was. */
static void refused_as_damaged(const char *id, const char *evidence)
{
    char dir[PATH_MAX], db[PATH_MAX], before[1024], after[1024];
    path_of(dir, xpt_dir, id, "");
    path_of(db, xpt_dir, id, "xp.sqlite3");
    listing(dir, before);
    off_t size = size_of(db);
    for (int mode = OPEN_CREATE; mode < N_MODES; mode++) {
        xp_error_t err = {0};
        xp_experiment *ex = try_open(xpt_dir, id, mode, &err);
        cr_assert_null(ex, "%s: opened a store emptied beside its trials",
                       s_mode_name[mode]);
        cr_assert_eq(err.code, XP_ECORRUPT, "%s: code %u '%s'",
                     s_mode_name[mode], err.code, err.message);
        cr_assert(strstr(err.message, db), "%s: '%s' does not name %s",
                  s_mode_name[mode], err.message, db);
        cr_assert(strstr(err.message, evidence), "%s: '%s' does not name %s",
                  s_mode_name[mode], err.message, evidence);
        cr_assert_null(strchr(err.message, '\n'), "multi-line error");
        cr_assert_str_eq(listing(dir, after), before,
                         "%s: the directory changed", s_mode_name[mode]);
        cr_assert_eq(size_of(db), size, "%s: the database changed",
                     s_mode_name[mode]);
    }
}

Test(local, empty_database_beside_trials_is_damaged)
{
    make(xpt_dir, "emptied", 20);
    char db[PATH_MAX], tsv[PATH_MAX];
    path_of(db, xpt_dir, "emptied", "xp.sqlite3");
    path_of(tsv, xpt_dir, "emptied", "trials.tsv");
    cr_assert_eq(truncate(db, 0), 0, "truncate: %s", strerror(errno));
    char *lines = xpt_slurp(tsv);
    cr_assert_eq(xpt_count_lines(lines), 20, "trials.tsv:\n%s", lines);
    refused_as_damaged("emptied", "trials.tsv");
    char *now = xpt_slurp(tsv);
    cr_assert_str_eq(now, lines, "trials.tsv changed");
    free(now);
    free(lines);
    /* The content files alone are evidence enough. */
    cr_assert_eq(unlink(tsv), 0);
    refused_as_damaged("emptied", "code/");
}

Test(local, missing_database_beside_trials_is_damaged)
{
    make(xpt_dir, "lost", 3);
    char db[PATH_MAX];
    path_of(db, xpt_dir, "lost", "xp.sqlite3");
    cr_assert_eq(unlink(db), 0);
    for (int mode = OPEN_CREATE; mode < N_MODES; mode++) {
        xp_error_t err = {0};
        cr_assert_null(try_open(xpt_dir, "lost", mode, &err),
                       "%s: opened a store whose database is gone",
                       s_mode_name[mode]);
        cr_assert_eq(err.code, XP_ECORRUPT, "%s: code %u '%s'",
                     s_mode_name[mode], err.code, err.message);
        cr_assert(strstr(err.message, db) && strstr(err.message, "trials.tsv"),
                  "%s: '%s'", s_mode_name[mode], err.message);
        cr_assert_eq(size_of(db), -1, "%s: created %s", s_mode_name[mode], db);
    }
}

/* A database without tables and without trial files is an experiment
 * still being created: readers do not find it, a writer creates it. */
Test(local, empty_database_alone_is_not_found_by_readers)
{
    char dir[PATH_MAX], db[PATH_MAX];
    path_of(dir, xpt_dir, "fresh", "");
    path_of(db, xpt_dir, "fresh", "xp.sqlite3");
    cr_assert_eq(mkdir(dir, 0777), 0);
    int fd = open(db, O_WRONLY | O_CREAT, 0666);
    cr_assert_geq(fd, 0);
    close(fd);
    for (int mode = OPEN_EXISTING; mode < N_MODES; mode++) {
        xp_error_t err = {0};
        cr_assert_null(try_open(xpt_dir, "fresh", mode, &err),
                       "%s opened an empty database", s_mode_name[mode]);
        cr_assert_eq(err.code, XP_ENOTFOUND, "%s: code %u '%s'",
                     s_mode_name[mode], err.code, err.message);
        cr_assert_eq(size_of(db), 0, "%s wrote into %s", s_mode_name[mode], db);
    }
    xp_experiment *ex = open_ok(xpt_dir, "fresh", OPEN_CREATE);
    define(ex);
    run(ex, 0, 1);
    cr_assert_eq(xpt_last_id(ex), 1, "first trial id");
    xp_experiment_destroy(&ex);
}
