/* common.h — helpers shared by the criterion tests: a private temporary
 * backend directory per test (created in .init, removed in .fini), opening
 * experiments on it, reading trial documents, running example programs and
 * capturing log lines. Everything is static inline: include it once. */
#ifndef XP_TESTS_COMMON_H
#define XP_TESTS_COMMON_H

#include <xp/xp.h>

#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

/* Backend root of the running test (each criterion test is its own
 * process, so a global is private to the test). */
static char xpt_dir[256];

static inline int xpt__rm_entry(const char *path, const struct stat *sb,
                                int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* rm -rf path (no error when absent). */
static inline void xpt_rmrf(const char *path)
{
    if (path && *path)
        nftw(path, xpt__rm_entry, 32, FTW_DEPTH | FTW_PHYS);
}

/* Creates a fresh directory /tmp/xp-test-XXXXXX into buf[256]. */
static inline void xpt_mkdtemp(char *buf)
{
    snprintf(buf, 256, "/tmp/xp-test-XXXXXX");
    cr_assert_not_null(mkdtemp(buf), "mkdtemp failed: %s", strerror(errno));
}

/* Suite .init: private backend dir, quiet logs, no inherited backend. */
static inline void xpt_setup(void)
{
    unsetenv("XP_BACKEND");
    xpt_mkdtemp(xpt_dir);
    xp_log_set_handler(NULL, NULL);
    xp_log_set_level(XP_LOG_WARNING);
}

/* Suite .fini. */
static inline void xpt_teardown(void)
{
    xp_log_set_handler(NULL, NULL);
    xpt_rmrf(xpt_dir);
    xpt_dir[0] = '\0';
}

/* Opens experiment id on the test's backend directory with `threads` step
 * threads; asserts success. */
static inline xp_experiment *xpt_open_threads(const char *id, int threads)
{
    xp_open_options o = XP_OPEN_OPTIONS_INIT;
    o.backend = xpt_dir;
    o.threads = threads;
    xp_experiment *ex = NULL;
    xp_error_t err = {0};
    int rc = xp_experiment_open(&ex, id, &o, &err);
    cr_assert_eq(rc, 0, "xp_experiment_open(%s, %s): rc=%d code=%u '%s'", id,
                 xpt_dir, rc, err.code, err.message);
    cr_assert_not_null(ex, "xp_experiment_open(%s) returned no handle", id);
    return ex;
}

static inline xp_experiment *xpt_open(const char *id)
{
    return xpt_open_threads(id, 2);
}

/* Opens an existing experiment; NULL (and err filled) when it fails. */
static inline xp_experiment *xpt_open_existing(const char *id, xp_error_t *err)
{
    xp_open_options o = XP_OPEN_OPTIONS_INIT;
    o.backend = xpt_dir;
    o.must_exist = true;
    xp_experiment *ex = NULL;
    if (xp_experiment_open(&ex, id, &o, err) != 0)
        return NULL;
    return ex;
}

/* Seconds on the monotonic clock. */
static inline double xpt_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void xpt_sleep(double seconds)
{
    struct timespec ts = {(time_t)seconds,
                          (long)((seconds - (double)(time_t)seconds) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- values and trial documents */

static inline xp_value *xpt_int(int64_t i)
{
    xp_value *v = xp_value_new();
    cr_assert_not_null(v, "xp_value_new returned NULL");
    cr_assert_eq(xp_set_int64(v, i), 0, "xp_set_int64 failed");
    return v;
}

/* Field `key` of document doc; asserts it exists. */
static inline const xp_value *xpt_field(const xp_value *doc, const char *key)
{
    cr_assert_not_null(doc, "document is NULL (looking for '%s')", key);
    cr_assert_eq(xp_value_type(doc), XP_TYPE_DOCUMENT,
                 "not a document but %s (looking for '%s')",
                 xp_type_name(xp_value_type(doc)), key);
    const xp_value *f = xp_value_get(doc, key);
    cr_assert_not_null(f, "document has no field '%s'", key);
    return f;
}

static inline const xp_value *xpt_typed(const xp_value *doc, const char *key,
                                        xp_type t)
{
    const xp_value *f = xpt_field(doc, key);
    cr_assert_eq(xp_value_type(f), t, "field '%s' is %s, expected %s", key,
                 xp_type_name(xp_value_type(f)), xp_type_name(t));
    return f;
}

static inline int64_t xpt_get_int(const xp_value *doc, const char *key)
{
    return xp_as_int64(xpt_typed(doc, key, XP_TYPE_INT64));
}

static inline const char *xpt_get_str(const xp_value *doc, const char *key)
{
    return xp_as_string(xpt_typed(doc, key, XP_TYPE_STRING), NULL);
}

static inline bool xpt_get_bool(const xp_value *doc, const char *key)
{
    return xp_as_bool(xpt_typed(doc, key, XP_TYPE_BOOL));
}

/* History of ex; asserts success. Caller destroys. */
static inline xp_value *xpt_history(xp_experiment *ex)
{
    xp_value *h = NULL;
    xp_error_t err = {0};
    int rc = xp_history(ex, &h, &err);
    cr_assert_eq(rc, 0, "xp_history: code=%u '%s'", err.code, err.message);
    cr_assert_not_null(h, "xp_history returned no value");
    cr_assert_eq(xp_value_type(h), XP_TYPE_ARRAY, "history is %s, not array",
                 xp_type_name(xp_value_type(h)));
    return h;
}

/* Trial document; asserts success. Caller destroys. */
static inline xp_value *xpt_trial(xp_experiment *ex, int64_t id)
{
    xp_value *t = NULL;
    xp_error_t err = {0};
    int rc = xp_trial_get(ex, id, &t, &err);
    cr_assert_eq(rc, 0, "xp_trial_get(%lld): code=%u '%s'", (long long)id,
                 err.code, err.message);
    cr_assert_not_null(t, "xp_trial_get(%lld) returned no value",
                       (long long)id);
    return t;
}

static inline int64_t xpt_last_id(xp_experiment *ex)
{
    int64_t id = -42;
    xp_error_t err = {0};
    int rc = xp_last_trial_id(ex, &id, &err);
    cr_assert_eq(rc, 0, "xp_last_trial_id: code=%u '%s'", err.code,
                 err.message);
    return id;
}

/* JSON of v for failure messages (NULL when v is NULL); free with
 * xp_free. */
static inline char *xpt_json(const xp_value *v)
{
    return v ? xp_value_to_json(v) : NULL;
}

/* ---- running programs */

/* Path of example program `name` into buf, or NULL (with the reason in
 * why[256]) when XP_EXAMPLES_DIR is unset or the program is missing. */
static inline const char *xpt_example(const char *name, char *buf, char *why)
{
    const char *dir = getenv("XP_EXAMPLES_DIR");
    if (!dir || !*dir) {
        snprintf(why, 256,
                 "XP_EXAMPLES_DIR is not set (run through "
                 "`meson test`)");
        return NULL;
    }
    snprintf(buf, PATH_MAX, "%s/%s", dir, name);
    if (access(buf, X_OK) != 0) {
        snprintf(why, 256,
                 "example program %.180s is missing or not executable", buf);
        return NULL;
    }
    return buf;
}

/* Skips the running test with a printed reason. Criterion does not run
 * .fini for a skipped test, so the backend directory is removed here. */
#define xpt_skip(why)                                                          \
    do {                                                                       \
        fprintf(stderr, "skipping: %s\n", (why));                              \
        xpt_teardown();                                                        \
        cr_skip("%s", (why));                                                  \
    } while (0)

/* Reads a whole file into a malloc'ed NUL-terminated string. */
static inline char *xpt_slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s: %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    char *s = malloc(cap);
    cr_assert_not_null(s, "out of memory");
    size_t got;
    while ((got = fread(s + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (cap - n - 1 == 0) {
            cap *= 2;
            s = realloc(s, cap);
            cr_assert_not_null(s, "out of memory");
        }
    }
    s[n] = '\0';
    fclose(f);
    return s;
}

/* Starts argv[0] (a path) with cwd `cwd`, stdout/stderr to the given files
 * (may be NULL: /dev/null). Returns the pid. */
static inline pid_t xpt_spawn(char *const argv[], const char *cwd,
                              const char *out_path, const char *err_path)
{
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_neq(pid, -1, "fork failed: %s", strerror(errno));
    if (pid == 0) {
        /* Whatever a test starts dies with the test's process, also when
         * the test fails, skips or times out before its teardown. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() == 1)
            _exit(126);
        int in = open("/dev/null", O_RDONLY);
        int out = open(out_path ? out_path : "/dev/null",
                       O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int er = open(err_path ? err_path : "/dev/null",
                      O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (in < 0 || out < 0 || er < 0 || dup2(in, 0) < 0 ||
            dup2(out, 1) < 0 || dup2(er, 2) < 0)
            _exit(126);
        if (cwd && chdir(cwd) != 0)
            _exit(126);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

/* Waits for pid; returns its exit status, or 128 + signal. */
static inline int xpt_wait(pid_t pid)
{
    int st = 0;
    pid_t r;
    do
        r = waitpid(pid, &st, 0);
    while (r < 0 && errno == EINTR);
    cr_assert_eq(r, pid, "waitpid(%d) failed: %s", (int)pid, strerror(errno));
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return -1;
}

/* Output of one program run. */
typedef struct {
    int status;
    char *out; /* stdout, malloc'ed */
    char *err; /* stderr, malloc'ed */
} xpt_run_result;

/* Runs argv (argv[0] is the program path, NULL-terminated) in cwd and
 * captures its status and output (files under xpt_dir). */
static inline xpt_run_result xpt_run(char *const argv[], const char *cwd)
{
    char out_path[PATH_MAX], err_path[PATH_MAX];
    snprintf(out_path, sizeof out_path, "%s/.stdout", xpt_dir);
    snprintf(err_path, sizeof err_path, "%s/.stderr", xpt_dir);
    pid_t pid = xpt_spawn(argv, cwd, out_path, err_path);
    xpt_run_result r;
    r.status = xpt_wait(pid);
    r.out = xpt_slurp(out_path);
    r.err = xpt_slurp(err_path);
    unlink(out_path);
    unlink(err_path);
    return r;
}

static inline void xpt_run_result_free(xpt_run_result *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

/* Number of '\n'-terminated lines in s (a last unterminated line counts). */
static inline size_t xpt_count_lines(const char *s)
{
    size_t n = 0;
    const char *p = s;
    while (*p) {
        const char *nl = strchr(p, '\n');
        n++;
        if (!nl)
            break;
        p = nl + 1;
    }
    return n;
}

/* ---- log capture */

#define XPT_LOG_MAX 256

typedef struct {
    pthread_mutex_t lock;
    size_t n;
    xp_log_level level[XPT_LOG_MAX];
    char msg[XPT_LOG_MAX][512];
} xpt_log;

static inline void xpt_log_fn(xp_log_level level, const char *msg, void *user)
{
    xpt_log *l = user;
    pthread_mutex_lock(&l->lock);
    if (l->n < XPT_LOG_MAX) {
        l->level[l->n] = level;
        snprintf(l->msg[l->n], sizeof l->msg[l->n], "%s", msg ? msg : "");
        l->n++;
    }
    pthread_mutex_unlock(&l->lock);
}

static inline void xpt_log_init(xpt_log *l)
{
    memset(l, 0, sizeof *l);
    pthread_mutex_init(&l->lock, NULL);
}

/* Index of the first captured line at `level` containing `text`, or -1. */
static inline int xpt_log_find(xpt_log *l, xp_log_level level, const char *text)
{
    int found = -1;
    pthread_mutex_lock(&l->lock);
    for (size_t i = 0; i < l->n && found < 0; i++)
        if (l->level[i] == level && strstr(l->msg[i], text))
            found = (int)i;
    pthread_mutex_unlock(&l->lock);
    return found;
}

/* All captured lines, for failure messages (static buffer). */
static inline const char *xpt_log_dump(xpt_log *l)
{
    static char buf[8192];
    size_t off = 0;
    buf[0] = '\0';
    pthread_mutex_lock(&l->lock);
    for (size_t i = 0; i < l->n && off < sizeof buf - 1; i++) {
        int w = snprintf(buf + off, sizeof buf - off, "[%d] %s | ",
                         (int)l->level[i], l->msg[i]);
        if (w < 0)
            break;
        off += (size_t)w;
    }
    pthread_mutex_unlock(&l->lock);
    return buf;
}

#endif /* XP_TESTS_COMMON_H */
