/* test_local.c — the local store's open path: a database emptied or lost
 * beside its trials is damaged, never a new experiment; a reader writes
 * nothing and reads stores it cannot write (another user's, a read-only
 * mount, a full disk); trials.tsv is completed from the database. Mount
 * cases need root in a private mount namespace and are skipped without. */
#include "../common.h"

#include "experiment.h"
#include "store/store.h"
#include "util/sys.h"

#include <dirent.h>
#include <sched.h>
#include <sys/mount.h>

/* Mount points of the running test, undone in .fini (a read-only mount
 * would keep the backend directory from being removed). */
static char s_mounts[4][PATH_MAX];
static int s_n_mounts;

static void s_fini(void)
{
    while (s_n_mounts > 0)
        umount2(s_mounts[--s_n_mounts], MNT_DETACH);
    xpt_teardown();
}

TestSuite(local, .init = xpt_setup, .fini = s_fini, .timeout = 60);

/* Skips the running test, printing why. Not xpt_skip: criterion 2.4
 * counts its cr_log_warn as a failure of the whole run. .fini does not run
 * for a skipped test, hence the cleanup here. */
#define SKIP(...)                                                              \
    do {                                                                       \
        char why_[512];                                                        \
        snprintf(why_, sizeof why_, __VA_ARGS__);                              \
        fprintf(stderr, "skipping: %s\n", why_);                               \
        s_fini();                                                              \
        cr_skip_test("%s", why_);                                              \
    } while (0)

/* ---------------------------------------------------------------- helpers */

enum { OPEN_CREATE, OPEN_EXISTING, OPEN_READ, N_MODES };
static const char *const s_mode_name[] = {"create", "must_exist", "read_only"};

static xp_experiment *try_open(const char *root, const char *id, int mode,
                               xp_error_t *err)
{
    xp_open_options o = XP_OPEN_OPTIONS_INIT;
    o.backend = root;
    o.threads = 1;
    o.must_exist = mode == OPEN_EXISTING;
    o.read_only = mode == OPEN_READ;
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

/* Reads everything a reader reads from experiment id of root: n trials,
 * of which trial `full` ran add_one with a = full - 1; false with the
 * first failure in why. Uses no criterion assertion: it also runs in a
 * child under another user id. */
static bool read_trials(const char *root, const char *id, int64_t n,
                        int64_t full, char *why, size_t len)
{
    xp_error_t err = {0};
    xp_value *v = NULL;
    xp_metric_table *mt = NULL;
    int64_t last = 0, first = 1;
    xp_experiment *ex = try_open(root, id, OPEN_READ, &err);
    const char *step = "open";
    bool ok = false;
    if (!ex)
        goto cleanup;
    step = "history";
    if (xp_history(ex, &v, &err) != 0)
        goto cleanup;
    if ((int64_t)xp_value_count(v) != n) {
        snprintf(err.message, sizeof err.message, "%zu trials, want %lld",
                 xp_value_count(v), (long long)n);
        goto cleanup;
    }
    xp_value_destroy(&v);
    step = "last trial id";
    if (xp_last_trial_id(ex, &last, &err) != 0)
        goto cleanup;
    if (last != n) {
        snprintf(err.message, sizeof err.message, "%lld", (long long)last);
        goto cleanup;
    }
    step = "trial";
    if (xp_trial_get(ex, full, &v, &err) != 0)
        goto cleanup;
    xp_value_destroy(&v);
    step = "parameters";
    if (xp_trial_parameters(ex, full, &v, &err) != 0)
        goto cleanup;
    if (xp_as_int64(xp_value_get(v, "a")) != full - 1) {
        snprintf(err.message, sizeof err.message, "a is not %lld",
                 (long long)full - 1);
        goto cleanup;
    }
    xp_value_destroy(&v);
    step = "persisted value";
    if (xp_load_persisted(ex, "add_one", full, &v, &err) != 0)
        goto cleanup;
    xp_value_destroy(&v);
    step = "metric";
    if (xp_load_metric(ex, "m", &first, 1, &mt, &err) != 0)
        goto cleanup;
    step = "code";
    if (xp_code_get(ex, full, &v, &err) != 0)
        goto cleanup;
    xp_value_destroy(&v);
    step = "environment";
    if (xp_environment_get(ex, full, "platform", &v, &err) != 0)
        goto cleanup;
    xp_value_destroy(&v);
    step = "diff";
    if (xp_trial_diff(ex, 1, full, &v, &err) != 0)
        goto cleanup;
    ok = true;
cleanup:
    if (!ok)
        snprintf(why, len, "%s: %s", step, err.message);
    xp_value_destroy(&v);
    xp_metric_table_destroy(&mt);
    xp_experiment_destroy(&ex);
    return ok;
}

static bool read_all(const char *root, const char *id, int64_t n, char *why,
                     size_t len)
{
    return read_trials(root, id, n, n, why, len);
}

static void read_all_ok(const char *root, const char *id, int64_t n)
{
    char why[600];
    cr_assert(read_all(root, id, n, why, sizeof why), "reading %s in %s: %s",
              id, root, why);
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

/* ---------------------------------------------------------------- readers */

/* Records a trial as running in a process that is gone. */
static void add_orphan(const char *root, const char *id)
{
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_neq(pid, -1, "fork: %s", strerror(errno));
    if (pid == 0)
        _exit(0);
    xpt_wait(pid);
    xp_experiment *ex = open_ok(root, id, OPEN_CREATE);
    bson_t params = BSON_INITIALIZER;
    BSON_APPEND_INT64(&params, "a", 100);
    xp_trial_record rec = {.experiment = id,
                           .status = XP_STATUS_RUNNING,
                           .parameters = xp__doc_view(&params),
                           .seed = 1,
                           .started_ms = xp__now_ms(),
                           .host = xp__hostname(),
                           .pid = pid,
                           .pstart = 12345};
    xp_error_t err = {0};
    cr_assert_eq(xp__store_trial_begin(ex->backend, &rec, &err), 0,
                 "trial_begin: '%s'", err.message);
    bson_destroy(&params);
    xp_experiment_destroy(&ex);
}

static const char *status_of(xp_experiment *ex, int64_t trial)
{
    static char buf[64];
    xp_value *t = xpt_trial(ex, trial);
    snprintf(buf, sizeof buf, "%s", xpt_get_str(t, "status"));
    xp_value_destroy(&t);
    return buf;
}

Test(local, reader_writes_nothing)
{
    make(xpt_dir, "quiet", 3);
    add_orphan(xpt_dir, "quiet");
    char dir[PATH_MAX], db[PATH_MAX], tsv[PATH_MAX], before[1024], after[1024];
    path_of(dir, xpt_dir, "quiet", "");
    path_of(db, xpt_dir, "quiet", "xp.sqlite3");
    path_of(tsv, xpt_dir, "quiet", "trials.tsv");
    cr_assert_eq(truncate(tsv, 0), 0); /* a writer would restore it */
    struct stat sb1, sb2;
    cr_assert_eq(stat(db, &sb1), 0);
    listing(dir, before);

    xp_experiment *ex = open_ok(xpt_dir, "quiet", OPEN_READ);
    cr_assert_str_eq(status_of(ex, 4), "running",
                     "a reader ran the recovery of interrupted trials");
    xp_error_t err = {0};
    size_t written = 9;
    cr_assert_eq(xp_experiment_sync(ex, &written, &err), -1,
                 "sync on a "
                 "reader");
    cr_assert_eq(err.code, XP_ESTATE, "code %u '%s'", err.code, err.message);
    xp_experiment_destroy(&ex);
    char why[600];
    cr_assert(read_trials(xpt_dir, "quiet", 4, 3, why, sizeof why), "%s", why);
    cr_assert_eq(stat(db, &sb2), 0);
    cr_assert(sb1.st_size == sb2.st_size &&
                  sb1.st_mtim.tv_sec == sb2.st_mtim.tv_sec &&
                  sb1.st_mtim.tv_nsec == sb2.st_mtim.tv_nsec,
              "a reader modified %s", db);
    cr_assert_eq(size_of(tsv), 0, "a reader wrote trials.tsv");
    /* SQLite's own -wal/-shm may stay in a store this process can write;
     * nothing else appears. */
    listing(dir, after);
    cr_assert(strncmp(after, before, strlen(before) - 1) == 0 ||
                  strstr(after, "xp.sqlite3-shm"),
              "directory was '%s', is '%s'", before, after);

    ex = open_ok(xpt_dir, "quiet", OPEN_CREATE);
    cr_assert_str_eq(status_of(ex, 4), "interrupted", "writer recovery");
    xp_experiment_destroy(&ex);
}

Test(local, reader_of_a_missing_experiment_creates_nothing)
{
    xp_error_t err = {0};
    cr_assert_null(try_open(xpt_dir, "absent", OPEN_READ, &err));
    cr_assert_eq(err.code, XP_ENOTFOUND, "code %u '%s'", err.code, err.message);
    char dir[PATH_MAX];
    cr_assert_eq(size_of(path_of(dir, xpt_dir, "absent", "")), -1, "created %s",
                 dir);
}

Test(local, open_options_version_1_still_accepted)
{
    /* A program built against version 1 passes a structure without
     * read_only: whatever follows threads is not read. */
    xp_open_options o = XP_OPEN_OPTIONS_INIT;
    o.version = 1;
    o.backend = xpt_dir;
    o.read_only = true;
    xp_experiment *ex = NULL;
    xp_error_t err = {0};
    cr_assert_eq(xp_experiment_open(&ex, "v1", &o, &err), 0, "version 1: '%s'",
                 err.message);
    xp_experiment_destroy(&ex);
    o.version = XP_OPEN_OPTIONS_VERSION + 1;
    cr_assert_eq(xp_experiment_open(&ex, "v1", &o, &err), -1, "version 3");
    cr_assert_eq(err.code, XP_EINVAL, "code %u", err.code);
}

/* A store this process cannot write: in a child as user nobody when root
 * (root ignores permissions), else by taking away the write permission.
 * dir_too: the directory is not writable either. */
static void read_foreign(bool dir_too)
{
    const char *id = "foreign";
    make(xpt_dir, id, 3);
    char dir[PATH_MAX], db[PATH_MAX], before[1024], after[1024];
    path_of(dir, xpt_dir, id, "");
    path_of(db, xpt_dir, id, "xp.sqlite3");
    listing(dir, before);
    char why[600] = "";
    bool ok;
    if (geteuid() == 0) {
        cr_assert_eq(chmod(xpt_dir, 0755), 0);
        cr_assert_eq(chmod(dir, dir_too ? 0755 : 0777), 0);
        cr_assert_eq(chmod(db, 0644), 0);
        int fds[2];
        cr_assert_eq(pipe(fds), 0);
        fflush(NULL);
        pid_t pid = fork();
        cr_assert_neq(pid, -1, "fork: %s", strerror(errno));
        if (pid == 0) {
            close(fds[0]);
            if (setgid(65534) != 0 || setuid(65534) != 0) {
                snprintf(why, sizeof why, "setuid: %s", strerror(errno));
                ok = false;
            } else {
                ok = read_all(xpt_dir, id, 3, why, sizeof why);
            }
            if (write(fds[1], why, strlen(why)) < 0)
                _exit(2);
            _exit(ok ? 0 : 1);
        }
        close(fds[1]);
        ssize_t n = read(fds[0], why, sizeof why - 1);
        why[n > 0 ? n : 0] = '\0';
        close(fds[0]);
        ok = xpt_wait(pid) == 0;
    } else {
        cr_assert_eq(chmod(dir_too ? dir : db, dir_too ? 0555 : 0444), 0);
        ok = read_all(xpt_dir, id, 3, why, sizeof why);
        chmod(dir, 0755);
        chmod(db, 0644);
    }
    cr_assert(ok, "reading a store of another user (%s): %s",
              dir_too ? "directory and file not writable" : "file not writable",
              why);
    cr_assert_str_eq(listing(dir, after), before,
                     "the reader left files in another user's store");
}

Test(local, store_of_another_user_is_readable)
{
    read_foreign(true);
}

Test(local, read_only_database_in_a_writable_directory_is_readable)
{
    read_foreign(false);
}

/* A private mount namespace for this test process, or a skip. */
static void private_mounts(void)
{
    if (geteuid() != 0)
        SKIP("mounting needs root (running as uid %d)", (int)geteuid());
    if (unshare(CLONE_NEWNS) != 0)
        SKIP("no private mount namespace: unshare: %s", strerror(errno));
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        SKIP("mount --make-rprivate /: %s", strerror(errno));
}

static void mounted(const char *where)
{
    cr_assert_lt(s_n_mounts, 4, "too many mounts");
    snprintf(s_mounts[s_n_mounts++], PATH_MAX, "%s", where);
}

Test(local, read_only_mount_is_readable)
{
    private_mounts();
    char rw[PATH_MAX], ro[PATH_MAX];
    snprintf(rw, sizeof rw, "%s/rw", xpt_dir);
    snprintf(ro, sizeof ro, "%s/ro", xpt_dir);
    cr_assert_eq(mkdir(rw, 0755), 0);
    cr_assert_eq(mkdir(ro, 0755), 0);
    make(rw, "mounted", 3);
    if (mount(rw, ro, NULL, MS_BIND, NULL) != 0)
        SKIP("bind mount: %s", strerror(errno));
    mounted(ro);
    if (mount(NULL, ro, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) != 0)
        SKIP("read-only remount: %s", strerror(errno));
    /* Nobody has the store open: only the database file. */
    read_all_ok(ro, "mounted", 3);
    /* A writer holds it open elsewhere: its last commits are in the
     * write-ahead log, read through its -shm index. */
    xp_experiment *ex = open_ok(rw, "mounted", OPEN_CREATE);
    define(ex);
    run(ex, 3, 5);
    read_all_ok(ro, "mounted", 5);
    xp_experiment_destroy(&ex);
    read_all_ok(ro, "mounted", 5);
}

Test(local, full_disk_is_readable)
{
    private_mounts();
    char full[PATH_MAX], filler[PATH_MAX + 8];
    snprintf(full, sizeof full, "%s/full", xpt_dir);
    cr_assert_eq(mkdir(full, 0755), 0);
    if (mount("tmpfs", full, "tmpfs", 0, "size=4m") != 0)
        SKIP("mount -t tmpfs: %s", strerror(errno));
    mounted(full);
    make(full, "crowded", 3);
    snprintf(filler, sizeof filler, "%s/filler", full);
    int fd = open(filler, O_WRONLY | O_CREAT, 0644);
    cr_assert_geq(fd, 0);
    static char block[65536];
    while (write(fd, block, sizeof block) > 0)
        ;
    while (write(fd, block, 512) > 0)
        ;
    cr_assert_eq(errno, ENOSPC, "filling: %s", strerror(errno));
    close(fd);
    read_all_ok(full, "crowded", 3);
}

/* ---------------------------------------------------------------- trials.tsv
 */

Test(local, trials_tsv_completed_from_the_database)
{
    make(xpt_dir, "index", 6);
    char tsv[PATH_MAX];
    path_of(tsv, xpt_dir, "index", "trials.tsv");
    char *whole = xpt_slurp(tsv);
    cr_assert_eq(xpt_count_lines(whole), 6, "trials.tsv:\n%s", whole);
    size_t four = 0; /* bytes of the first four lines */
    for (int i = 0; i < 4; i++)
        four = (size_t)(strchr(whole + four, '\n') - whole) + 1;
    /* Cut after a commit (the last two lines lost), in the middle of a
     * line (a write cut short), and entirely. */
    const size_t cuts[] = {four, four + 10, 0};
    for (size_t c = 0; c < 3; c++) {
        cr_assert_eq(truncate(tsv, (off_t)cuts[c]), 0);
        xp_experiment *ex = open_ok(xpt_dir, "index", OPEN_READ);
        xp_experiment_destroy(&ex);
        cr_assert_eq(size_of(tsv), (off_t)cuts[c], "a reader repaired it");
        for (int round = 0; round < 2; round++) { /* never twice */
            ex = open_ok(xpt_dir, "index", OPEN_EXISTING);
            xp_experiment_destroy(&ex);
            char *now = xpt_slurp(tsv);
            cr_assert_str_eq(now, whole, "cut at %zu, open %d:\n%s", cuts[c],
                             round, now);
            free(now);
        }
    }
    /* The next trial's line follows. */
    xp_experiment *ex = open_ok(xpt_dir, "index", OPEN_CREATE);
    define(ex);
    run(ex, 6, 7);
    xp_experiment_destroy(&ex);
    char *now = xpt_slurp(tsv);
    cr_assert_eq(strncmp(now, whole, strlen(whole)), 0, "%s", now);
    cr_assert_eq(strtol(now + strlen(whole), NULL, 10), 7, "%s", now);
    cr_assert_eq(xpt_count_lines(now), 7, "%s", now);
    free(now);
    free(whole);
}
