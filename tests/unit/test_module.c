/* test_module.c — libxp.so's optional modules (MongoDB, Redis, git, the
 * scheduler client), loaded on first need from beside libxp: each works
 * through the public API when installed, a missing one is a one-line
 * error (never a crash), and the libraries a module brings in stay out of
 * the environment record. Links libxp.so, as programs do. */
#include "common.h"

TestSuite(module, .init = xpt_setup, .fini = xpt_teardown);

static int s_add(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    return xp_set_int64(out, xp_as_int64(in[0]) + 1);
}

/* Opening on backend fails; returns the error. */
static xp_error_t s_open_error(const char *backend)
{
    xp_open_options o = XP_OPEN_OPTIONS_INIT;
    o.backend = backend;
    xp_experiment *ex = NULL;
    xp_error_t err = {0};
    cr_assert_neq(xp_experiment_open(&ex, "m", &o, &err), 0);
    cr_assert_null(ex);
    return err;
}

static void s_no_modules(void)
{
    setenv("XP_MODULE_DIR", "/nonexistent-xp-modules", 1);
}

static void s_assert_starts(const char *message, const char *prefix)
{
    cr_assert_eq(strncmp(message, prefix, strlen(prefix)), 0,
                 "'%s' does not start with '%s'", message, prefix);
    cr_assert_null(strchr(message, '\n'), "'%s' is not one line", message);
}

Test(module, missing_mongodb_is_an_error)
{
    s_no_modules();
    xp_error_t err = s_open_error("mongodb://127.0.0.1:1/x");
    s_assert_starts(err.message, "MongoDB support is not installed: ");
    cr_assert_not_null(strstr(err.message, "libxp-mongodb.so"), "%s",
                       err.message);
    xp_value *list = NULL;
    cr_assert_neq(xp_experiments("mongodb://127.0.0.1:1/x", &list, &err), 0);
    s_assert_starts(err.message, "MongoDB support is not installed: ");
}

Test(module, missing_redis_is_an_error)
{
    s_no_modules();
    xp_error_t err = s_open_error("redis://127.0.0.1:1/0");
    s_assert_starts(err.message, "Redis support is not installed: ");
}

Test(module, missing_remote_is_an_error)
{
    s_no_modules();
    xp_client *c = NULL;
    xp_error_t err = {0};
    cr_assert_neq(xp_client_connect(&c, "tcp://127.0.0.1:1", 100, &err), 0);
    cr_assert_null(c);
    s_assert_starts(err.message, "Scheduler support (ZeroMQ) is not installed");
    xp_client_destroy(&c); /* NULL-safe without the module */
    char *pub = NULL;
    char dir[300];
    snprintf(dir, sizeof dir, "%s/keys", xpt_dir);
    cr_assert_neq(xp_keygen(dir, "k", &pub, &err), 0);
    cr_assert_null(pub);
}

Test(module, foreign_module_is_an_error)
{
    /* The Redis module under the MongoDB module's name: it loads, but
     * has no MongoDB entry. */
    const char *examples = getenv("XP_EXAMPLES_DIR");
    if (!examples || !*examples)
        cr_skip_test("XP_EXAMPLES_DIR is not set: no build tree to use");
    char redis[PATH_MAX], fake[300];
    snprintf(redis, sizeof redis, "%s/../lib/libxp-redis.so", examples);
    if (access(redis, R_OK) != 0)
        cr_skip_test("%s is not built", redis);
    snprintf(fake, sizeof fake, "%s/libxp-mongodb.so", xpt_dir);
    cr_assert_eq(symlink(redis, fake), 0, "%s", strerror(errno));
    setenv("XP_MODULE_DIR", xpt_dir, 1);
    xp_error_t err = s_open_error("mongodb://127.0.0.1:1/x");
    s_assert_starts(err.message, "MongoDB support is not installed: ");
    cr_assert_not_null(strstr(err.message, "has no xp__module_mongodb"), "%s",
                       err.message);
}

Test(module, unknown_scheme_is_still_argument_error)
{
    xp_error_t err = s_open_error("ftp://example.com/x");
    cr_assert_eq(err.code, XP_EINVAL);
    cr_assert_not_null(strstr(err.message, "unsupported backend scheme"));
}

Test(module, remote_module_loads)
{
    xp_client *c = NULL;
    xp_error_t err = {0};
    /* Connecting is asynchronous: no scheduler needs to listen. */
    cr_assert_eq(xp_client_connect(&c, "tcp://127.0.0.1:1", 100, &err), 0, "%s",
                 err.message);
    cr_assert_not_null(c);
    xp_client_destroy(&c);
    cr_assert_null(c);
    char dir[300], *pub = NULL;
    snprintf(dir, sizeof dir, "%s/keys", xpt_dir);
    cr_assert_eq(xp_keygen(dir, "k", &pub, &err), 0, "%s", err.message);
    cr_assert_not_null(pub);
    cr_assert_eq(access(pub, F_OK), 0, "%s", pub);
    xp_free(pub);
}

/* Runs one trial of a one-step experiment in directory cwd (store in the
 * test's directory) and returns its git category. */
static xp_value *s_git_of_trial(const char *cwd, xp_value **libraries)
{
    char here[PATH_MAX];
    cr_assert_not_null(getcwd(here, sizeof here));
    cr_assert_eq(chdir(cwd), 0);
    xp_experiment *ex = xpt_open("g");
    XP_RESULT(ex, s_add, xp_parameter(ex, "a"));
    xp_error_t err;
    cr_assert_eq(xp_set_param_int64(ex, "a", 1, &err), 0, "%s", err.message);
    cr_assert_eq(xp_compute(ex, NULL, NULL, NULL, &err), 0, "%s", err.message);
    xp_value *git = NULL;
    cr_assert_eq(xp_environment_get(ex, 1, "git", &git, &err), 0, "%s",
                 err.message);
    if (libraries)
        cr_assert_eq(xp_environment_get(ex, 1, "libraries", libraries, &err), 0,
                     "%s", err.message);
    xp_experiment_destroy(&ex);
    cr_assert_eq(chdir(here), 0);
    return git;
}

/* A fresh repository with no commit in a directory of its own. */
static void s_repository(char *dir)
{
    xpt_mkdtemp(dir);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "git init -q '%s' 2>/dev/null", dir);
    if (system(cmd) != 0) {
        xpt_rmrf(dir);
        cr_skip_test("git is not installed: cannot make a repository");
    }
}

Test(module, git_module_loads_in_a_repository)
{
    char repo[256];
    s_repository(repo);
    /* The remote module first: ZeroMQ, which this program does not link,
     * is then loaded when the environment is captured. */
    xp_client *c = NULL;
    xp_error_t err = {0};
    cr_assert_eq(xp_client_connect(&c, "tcp://127.0.0.1:1", 100, &err), 0, "%s",
                 err.message);
    xp_client_destroy(&c);
    xp_value *libraries = NULL;
    xp_value *git = s_git_of_trial(repo, &libraries);
    cr_assert(xpt_get_bool(git, "repository"));
    cr_assert_str_eq(xpt_get_str(git, "branch"), "(no commits)");
    /* What came with the modules is not a library of the program (this
     * one links libgit2 itself, through criterion: that one is listed). */
    const xp_value *loaded = xpt_field(libraries, "loaded");
    cr_assert_gt(xp_value_count(loaded), 0);
    for (size_t i = 0; i < xp_value_count(loaded); i++) {
        const char *name = xpt_get_str(xp_value_at(loaded, i), "name");
        cr_assert_null(strstr(name, "libxp-"), "%s is listed", name);
        cr_assert_null(strstr(name, "zmq"), "%s is listed", name);
    }
    xp_value_destroy(&git);
    xp_value_destroy(&libraries);
    xpt_rmrf(repo);
}

Test(module, missing_git_is_recorded)
{
    char repo[256];
    s_repository(repo);
    s_no_modules();
    xp_value *git = s_git_of_trial(repo, NULL);
    cr_assert_not(xpt_get_bool(git, "repository"));
    s_assert_starts(xpt_get_str(git, "unavailable"),
                    "git support is not installed: ");
    xp_value_destroy(&git);
    xpt_rmrf(repo);
}

/* Whether the parameters section of the diff of two trials (a=1, then
 * a=2) has a hunk header and the lines "-a: 1" and "+a: 2". */
static void s_assert_parameter_diff(void)
{
    xp_experiment *ex = xpt_open("d");
    XP_RESULT(ex, s_add, xp_parameter(ex, "a"));
    xp_error_t err;
    for (int a = 1; a <= 2; a++) {
        cr_assert_eq(xp_set_param_int64(ex, "a", a, &err), 0);
        cr_assert_eq(xp_compute(ex, NULL, NULL, NULL, &err), 0, "%s",
                     err.message);
    }
    xp_value *diff = NULL;
    cr_assert_eq(xp_trial_diff(ex, 1, 2, &diff, &err), 0, "%s", err.message);
    const xp_value *lines = xpt_field(diff, "parameters");
    bool header = false, removed = false, added = false;
    for (size_t i = 0; i < xp_value_count(lines); i++) {
        const char *line = xp_as_string(xp_value_at(lines, i), NULL);
        header = header || strncmp(line, "@@ -", 4) == 0;
        removed = removed || strcmp(line, "-a: 1") == 0;
        added = added || strcmp(line, "+a: 2") == 0;
    }
    char *json = xp_value_to_json(lines);
    cr_assert(header && removed && added, "%s", json);
    xp_free(json);
    xp_value_destroy(&diff);
    xp_experiment_destroy(&ex);
}

Test(module, diff_through_the_git_module)
{
    s_assert_parameter_diff();
}

Test(module, diff_without_the_git_module)
{
    s_no_modules();
    s_assert_parameter_diff();
}

Test(module, no_git_outside_a_repository)
{
    /* The test's own directory (under /tmp) is in no repository. */
    s_no_modules();
    xp_value *git = s_git_of_trial(xpt_dir, NULL);
    cr_assert_not(xpt_get_bool(git, "repository"));
    cr_assert_null(xp_value_get(git, "unavailable"));
    xp_value_destroy(&git);
}

/* A shared backend through its module, when its test server is given. */
static void s_shared_backend(const char *var)
{
    const char *uri = getenv(var);
    if (!uri || !*uri)
        cr_skip_test("%s is not set: no server to open", var);
    xp_open_options o = XP_OPEN_OPTIONS_INIT;
    o.backend = uri;
    xp_experiment *ex = NULL;
    xp_error_t err = {0};
    cr_assert_eq(xp_experiment_open(&ex, "xp_module_test", &o, &err), 0, "%s",
                 err.message);
    xp_experiment_destroy(&ex);
}

Test(module, mongodb_module_loads)
{
    s_shared_backend("XP_TEST_MONGODB_URI");
}

Test(module, redis_module_loads)
{
    s_shared_backend("XP_TEST_REDIS_URI");
}
