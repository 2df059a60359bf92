/* test_config.c — configuration files of xp-scheduler and xp-worker:
 * xp__config_read on good and malformed files, and the real programs'
 * --config / $XP_*_CONFIG with --print-config (flags win over the file,
 * the file over environment variables; every error is one line, exit 2). */
#include "../common.h"

#include "remote/config.h"

TestSuite(config, .init = xpt_setup, .fini = xpt_teardown, .timeout = 60);

static const char *const s_keys[] = {"bind", "backend", "max-attempts",
                                     "insecure?", NULL};

static void write_conf(const char *name, const char *text, char *path)
{
    snprintf(path, PATH_MAX, "%s/%s", xpt_dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

Test(config, read_keys_comments_quotes_switches)
{
    char path[PATH_MAX];
    write_conf("a.conf",
               "# a comment\n\n  bind =  tcp://*:5555  \n"
               "backend = \"/data/with space\"\ninsecure = true\n"
               "max-attempts=5\n",
               path);
    char **argv = NULL;
    int argc = 0;
    xp_error_t err = {0};
    int rc = xp__config_read(path, s_keys, &argv, &argc, &err);
    cr_assert_eq(rc, 0, "read: '%s'", err.message);
    const char *want[] = {
        "--bind",     "tcp://*:5555",   "--backend", "/data/with space",
        "--insecure", "--max-attempts", "5"};
    cr_assert_eq(argc, 7, "%d options", argc);
    for (int i = 0; i < argc; i++)
        cr_assert_str_eq(argv[i], want[i], "option %d", i);
    cr_assert_null(argv[argc], "not NULL-terminated");
    xp__config_free(argv, argc);
}

Test(config, switch_false_adds_nothing)
{
    char path[PATH_MAX];
    write_conf("b.conf", "insecure = no\n", path);
    char **argv = NULL;
    int argc = -1;
    xp_error_t err = {0};
    cr_assert_eq(xp__config_read(path, s_keys, &argv, &argc, &err), 0, "'%s'",
                 err.message);
    cr_assert_eq(argc, 0, "%d options", argc);
    xp__config_free(argv, argc);
}

Test(config, malformed_files_name_file_and_line)
{
    struct {
        const char *text, *expect;
    } cases[] = {
        {"bind = x\nnonsense\n", ":2: expected 'key = value'"},
        {"colour = red\n", ":1: unknown key 'colour'"},
        {"insecure = maybe\n", ":1: 'insecure' is true or false"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char path[PATH_MAX];
        write_conf("bad.conf", cases[i].text, path);
        char **argv = NULL;
        int argc = 0;
        xp_error_t err = {0};
        cr_assert_neq(xp__config_read(path, s_keys, &argv, &argc, &err), 0,
                      "case %zu accepted", i);
        cr_assert_not_null(strstr(err.message, cases[i].expect),
                           "case %zu: '%s'", i, err.message);
        cr_assert_null(strchr(err.message, '\n'), "multi-line error");
    }
    xp_error_t err = {0};
    char **argv = NULL;
    int argc = 0;
    cr_assert_neq(
        xp__config_read("/nonexistent/x.conf", s_keys, &argv, &argc, &err), 0,
        "missing file accepted");
    cr_assert_not_null(strstr(err.message, "/nonexistent/x.conf"), "'%s'",
                       err.message);
}

static const char *bin(const char *var, char *why)
{
    const char *p = getenv(var);
    if (!p || access(p, X_OK) != 0) {
        snprintf(why, 256,
                 "%s is not set or not executable (run through "
                 "`meson test`)",
                 var);
        return NULL;
    }
    return p;
}

Test(config, scheduler_file_flags_and_environment)
{
    char why[256];
    const char *sched = bin("XP_SCHEDULER_BIN", why);
    if (!sched)
        xpt_skip(why);
    char path[PATH_MAX];
    write_conf("s.conf",
               "bind = tcp://127.0.0.1:7001\nmax-attempts = 7\n"
               "heartbeat-ms = 250\n",
               path);
    setenv("XP_SCHEDULER_BIND", "tcp://127.0.0.1:7002", 1);
    char *a1[] = {(char *)sched, "--config", path, "--print-config", NULL};
    xpt_run_result r = xpt_run(a1, NULL);
    cr_assert_eq(r.status, 0, "status %d: %s", r.status, r.err);
    cr_assert_not_null(strstr(r.out, "bind = tcp://127.0.0.1:7001\n"),
                       "the file does not win over the environment:\n%s",
                       r.out);
    cr_assert_not_null(strstr(r.out, "max-attempts = 7\n"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "heartbeat-ms = 250\n"), "%s", r.out);
    xpt_run_result_free(&r);

    char *a2[] = {(char *)sched, "--max-attempts", "9", "--config",
                  path,          "--print-config", NULL};
    r = xpt_run(a2, NULL);
    cr_assert_eq(r.status, 0, "status %d: %s", r.status, r.err);
    cr_assert_not_null(strstr(r.out, "max-attempts = 9\n"),
                       "the command line does not win:\n%s", r.out);
    xpt_run_result_free(&r);

    /* $XP_SCHEDULER_CONFIG names the file; its output reads back. */
    setenv("XP_SCHEDULER_CONFIG", path, 1);
    char *a3[] = {(char *)sched, "--print-config", NULL};
    r = xpt_run(a3, NULL);
    unsetenv("XP_SCHEDULER_CONFIG");
    unsetenv("XP_SCHEDULER_BIND");
    cr_assert_eq(r.status, 0, "status %d: %s", r.status, r.err);
    cr_assert_not_null(strstr(r.out, "max-attempts = 7\n"), "%s", r.out);
    char again[PATH_MAX];
    write_conf("printed.conf", r.out, again);
    xpt_run_result_free(&r);
    char *a4[] = {(char *)sched, "--config", again, "--print-config", NULL};
    r = xpt_run(a4, NULL);
    cr_assert_eq(r.status, 0, "printed configuration does not read back: %s",
                 r.err);
    cr_assert_not_null(strstr(r.out, "bind = tcp://127.0.0.1:7001\n"), "%s",
                       r.out);
    xpt_run_result_free(&r);

    /* A bad file: one line, exit 2, nothing started. */
    write_conf("bad.conf", "bind tcp://x\n", path);
    char *a5[] = {(char *)sched, "--config", path, NULL};
    r = xpt_run(a5, NULL);
    cr_assert_eq(r.status, 2, "status %d", r.status);
    cr_assert_eq(xpt_count_lines(r.err), 1, "stderr: %s", r.err);
    cr_assert_not_null(strstr(r.err, "bad.conf:1"), "%s", r.err);
    xpt_run_result_free(&r);

    /* A non-loopback bind from the file still needs insecure. */
    write_conf("open.conf", "bind = tcp://0.0.0.0:7003\n", path);
    char *a6[] = {(char *)sched, "--config", path, "--print-config", NULL};
    r = xpt_run(a6, NULL);
    cr_assert_eq(r.status, 2, "non-loopback bind accepted: %s", r.out);
    xpt_run_result_free(&r);
}

Test(config, worker_plugins_from_file)
{
    char why[256];
    const char *worker = bin("XP_WORKER_BIN", why);
    if (!worker)
        xpt_skip(why);
    char path[PATH_MAX];
    write_conf("w.conf",
               "connect = tcp://127.0.0.1:7010\nplugin = a.so\n"
               "plugin = b.so\nslots = 3\n",
               path);
    char *argv[] = {(char *)worker,   "--config", path, "--slots", "5",
                    "--print-config", NULL};
    xpt_run_result r = xpt_run(argv, NULL);
    cr_assert_eq(r.status, 0, "status %d: %s", r.status, r.err);
    cr_assert_not_null(strstr(r.out, "connect = tcp://127.0.0.1:7010\n"), "%s",
                       r.out);
    cr_assert_not_null(strstr(r.out, "slots = 5\n"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "plugin = a.so\nplugin = b.so\n"), "%s",
                       r.out);
    xpt_run_result_free(&r);
}
