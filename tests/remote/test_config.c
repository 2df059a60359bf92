/* test_config.c — configuration files of xp-scheduler and xp-worker:
 * xp__config_read on good and malformed files, and the real programs'
 * --config / $XP_*_CONFIG with --print-config (flags win over the file,
 * the file over environment variables; every error is one line, exit 2). */
#include "../common.h"

#include "remote/config.h"

#include <stddef.h>

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

/* ------------------------------------------------ one table, every layer */

/* A daemon's options struct and table with one option of each type. */
typedef struct {
    const char *text;
    int count;
    size_t bytes;
    int64_t ms;
    bool flag;
    const char *const *items;
    size_t n_items;
} s_opts;

static int s_seven(void)
{
    return 7;
}

static const xp_option s_table[] = {
    {.name = "text",
     .type = XP_OPTION_STRING,
     .offset = offsetof(s_opts, text),
     .env = "XPT_TEXT",
     .dflt = "default",
     .help = "a string"},
    {.name = "count",
     .type = XP_OPTION_INT,
     .offset = offsetof(s_opts, count),
     .env = "XPT_COUNT",
     .dflt_fn = s_seven,
     .min = 1,
     .max = 10,
     .help = "an int"},
    {.name = "bytes",
     .type = XP_OPTION_SIZE,
     .offset = offsetof(s_opts, bytes),
     .dflt_int = 4096,
     .min = 4096,
     .max = 1 << 30,
     .help = "a size"},
    {.name = "ms",
     .type = XP_OPTION_INT64,
     .offset = offsetof(s_opts, ms),
     .dflt_int = 100,
     .min = 100,
     .max = 86400000,
     .help = "an int64"},
    {.name = "flag",
     .type = XP_OPTION_SWITCH,
     .offset = offsetof(s_opts, flag),
     .env = "XPT_FLAG",
     .help = "a switch"},
    {.name = "item",
     .type = XP_OPTION_LIST,
     .offset = offsetof(s_opts, items),
     .count_at = offsetof(s_opts, n_items),
     .help = "a list"},
    {.name = NULL},
};

static const xp_config_spec s_test_spec = {
    .program = "xpt",
    .about = "a test daemon",
    .config_env = "XPT_CONFIG",
    .config_example = "text = x",
    .options = s_table,
};

/* xp__config_load over argv (NULL-terminated, without argv[0]). */
static bool s_load(s_opts *o, int *status, const char *const *args)
{
    char *argv[32] = {"xpt"};
    int argc = 1;
    for (; args && args[argc - 1] && argc < 31; argc++)
        argv[argc] = (char *)args[argc - 1];
    argv[argc] = NULL;
    memset(o, 0, sizeof *o);
    return xp__config_load(&s_test_spec, o, argc, argv, status);
}

Test(config, table_defaults)
{
    s_opts o;
    int status = -1;
    cr_assert(s_load(&o, &status, NULL), "status %d", status);
    cr_assert_str_eq(o.text, "default");
    cr_assert_eq(o.count, 7, "a default computed at run time");
    cr_assert_eq(o.bytes, 4096u);
    cr_assert_eq(o.ms, 100);
    cr_assert_not(o.flag);
    cr_assert_eq(o.n_items, 0u);
    xp__config_clear(&s_test_spec, &o);
    cr_assert_null(o.text);
}

Test(config, table_flags_over_file_over_environment)
{
    char path[PATH_MAX];
    write_conf("t.conf", "count = 3\nflag = yes\nitem = from-file\n", path);
    setenv("XPT_TEXT", "from-env", 1);
    setenv("XPT_COUNT", "2", 1);
    setenv("XPT_CONFIG", path, 1);
    s_opts o;
    int status = -1;
    /* environment over default, file over environment */
    cr_assert(s_load(&o, &status, NULL), "status %d", status);
    cr_assert_str_eq(o.text, "from-env");
    cr_assert_eq(o.count, 3, "the file does not win over the environment");
    cr_assert(o.flag);
    cr_assert_eq(o.n_items, 1u);
    xp__config_clear(&s_test_spec, &o);

    /* the command line over both; the last of a flag wins; lists add up */
    const char *args[] = {"--count", "4",      "--text",    "a", "--text",
                          "b",       "--item", "from-flag", NULL};
    cr_assert(s_load(&o, &status, args), "status %d", status);
    cr_assert_str_eq(o.text, "b");
    cr_assert_eq(o.count, 4, "the command line does not win");
    cr_assert_eq(o.n_items, 2u);
    cr_assert_str_eq(o.items[0], "from-file");
    cr_assert_str_eq(o.items[1], "from-flag");
    cr_assert_null(o.items[2], "list not NULL-terminated");
    xp__config_clear(&s_test_spec, &o);

    /* --config names another file than $XPT_CONFIG */
    char other[PATH_MAX];
    write_conf("u.conf", "count = 9\n", other);
    const char *pick[] = {"--config", other, NULL};
    cr_assert(s_load(&o, &status, pick), "status %d", status);
    cr_assert_eq(o.count, 9);
    cr_assert_not(o.flag, "read $XPT_CONFIG as well as --config");
    xp__config_clear(&s_test_spec, &o);
    unsetenv("XPT_TEXT");
    unsetenv("XPT_COUNT");
    unsetenv("XPT_CONFIG");
}

Test(config, table_bounds_and_shapes)
{
    const char *const bad[][4] = {
        {"--count", "0"},                    /* under min */
        {"--count", "11"},                   /* over max */
        {"--count", "3x"},                   /* not a number */
        {"--count", ""},                     /* empty */
        {"--bytes", "4095"},                 /* under min */
        {"--bytes", "99999999999999999999"}, /* overflows */
        {"--ms", "-1"},                      /* negative */
        {"--count"},                         /* no value */
        {"--nonsense"},                      /* unknown */
        {"count", "3"},                      /* not an option */
        {"--log-level", "loud"}, /* the machinery's own, checked too */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        s_opts o;
        int status = -1;
        cr_assert_not(s_load(&o, &status, bad[i]), "case %zu accepted", i);
        cr_assert_eq(status, 2, "case %zu: status %d", i, status);
        xp__config_clear(&s_test_spec, &o);
    }
    const char *const good[][4] = {{"--count", "1"},
                                   {"--count", "10"},
                                   {"--bytes", "1073741824"},
                                   {"--ms", "86400000"},
                                   {"--flag"}};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        s_opts o;
        int status = -1;
        cr_assert(s_load(&o, &status, good[i]), "case %zu refused", i);
        xp__config_clear(&s_test_spec, &o);
    }
    /* out of bounds in the environment and in a file too */
    s_opts o;
    int status = -1;
    setenv("XPT_COUNT", "12", 1);
    cr_assert_not(s_load(&o, &status, NULL), "environment not bounded");
    xp__config_clear(&s_test_spec, &o);
    unsetenv("XPT_COUNT");
    char path[PATH_MAX];
    write_conf("b.conf", "count = 12\n", path);
    const char *file[] = {"--config", path, NULL};
    cr_assert_not(s_load(&o, &status, file), "file not bounded");
    cr_assert_eq(status, 2);
    xp__config_clear(&s_test_spec, &o);
    write_conf("c.conf", "flag = maybe\n", path);
    cr_assert_not(s_load(&o, &status, file), "switch accepted 'maybe'");
    xp__config_clear(&s_test_spec, &o);
    write_conf("d.conf", "config = other.conf\n", path);
    cr_assert_not(s_load(&o, &status, file), "a file names another file");
    xp__config_clear(&s_test_spec, &o);
}

Test(config, table_help_exits_zero_before_anything)
{
    s_opts o;
    int status = -1;
    const char *args[] = {"--help", "--count", "99", NULL};
    cr_assert_not(s_load(&o, &status, args), "--help ran the daemon");
    cr_assert_eq(status, 0);
    xp__config_clear(&s_test_spec, &o);
}

/* What a daemon prints for argv, and its status. */
static xpt_run_result s_daemon(const char *var, const char *const *args)
{
    char why[256];
    const char *prog = bin(var, why);
    if (!prog)
        xpt_skip(why);
    char *argv[16] = {(char *)prog};
    for (int i = 0; args[i] && i < 14; i++)
        argv[i + 1] = (char *)args[i];
    return xpt_run(argv, NULL);
}

/* The two daemons take the options they share with the same bounds. */
Test(config, daemons_agree_on_shared_bounds)
{
    const char *vars[] = {"XP_SCHEDULER_BIN", "XP_WORKER_BIN"};
    for (int d = 0; d < 2; d++) {
        struct {
            const char *flag, *value;
            int status;
        } cases[] = {
            {"--max-message", "4095", 2},
            {"--max-message", "4096", 0},
            {"--max-message", "1073741824", 0},
            {"--max-message", "1073741825", 2},
            {"--heartbeat-ms", "9", 2},
            {"--heartbeat-ms", "10", 0},
            {"--heartbeat-ms", "600001", 2},
        };
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
            const char *args[] = {cases[i].flag, cases[i].value,
                                  "--print-config", NULL};
            xpt_run_result r = s_daemon(vars[d], args);
            cr_assert_eq(r.status, cases[i].status, "%s %s %s: %d %s", vars[d],
                         cases[i].flag, cases[i].value, r.status, r.err);
            if (r.status == 2) {
                cr_assert_eq(xpt_count_lines(r.err), 1, "%s", r.err);
                cr_assert_not_null(strstr(r.err, "needs an integer from"), "%s",
                                   r.err);
            } else {
                char line[64];
                snprintf(line, sizeof line, "%s = %s\n", cases[i].flag + 2,
                         cases[i].value);
                cr_assert_not_null(strstr(r.out, line), "%s", r.out);
            }
            xpt_run_result_free(&r);
        }
    }
}

Test(config, scheduler_environment_file_flag_for_strings)
{
    char path[PATH_MAX];
    setenv("XP_SCHEDULER_NAME", "env name", 1);
    const char *a0[] = {"--print-config", NULL};
    xpt_run_result r = s_daemon("XP_SCHEDULER_BIN", a0);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_not_null(strstr(r.out, "name = \"env name\"\n"), "%s", r.out);
    xpt_run_result_free(&r);
    write_conf("n.conf", "name = file-name\nkeep-ms = 100\n", path);
    const char *a1[] = {"--config", path, "--print-config", NULL};
    r = s_daemon("XP_SCHEDULER_BIN", a1);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_not_null(strstr(r.out, "name = file-name\n"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "keep-ms = 100\n"), "%s", r.out);
    xpt_run_result_free(&r);
    const char *a2[] = {"--config",       path, "--name", "flag",
                        "--print-config", NULL};
    r = s_daemon("XP_SCHEDULER_BIN", a2);
    cr_assert_not_null(strstr(r.out, "name = flag\n"), "%s", r.out);
    xpt_run_result_free(&r);
    unsetenv("XP_SCHEDULER_NAME");

    /* a bad value in the file names the file, the line and the key */
    write_conf("v.conf", "# limits\nkeep-ms = 5\n", path);
    r = s_daemon("XP_SCHEDULER_BIN", a1);
    cr_assert_eq(r.status, 2, "status %d", r.status);
    cr_assert_eq(xpt_count_lines(r.err), 1, "%s", r.err);
    cr_assert_not_null(
        strstr(r.err, "v.conf:2: 'keep-ms' needs an integer from 100 to"), "%s",
        r.err);
    xpt_run_result_free(&r);
}

Test(config, worker_environment_file_flag_and_reading_back)
{
    char path[PATH_MAX];
    setenv("XP_SCHEDULER", "tcp://127.0.0.1:7020", 1);
    setenv("XP_WORKER_SLOTS", "2", 1);
    const char *a0[] = {"--print-config", NULL};
    xpt_run_result r = s_daemon("XP_WORKER_BIN", a0);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_not_null(strstr(r.out, "connect = tcp://127.0.0.1:7020\n"), "%s",
                       r.out);
    cr_assert_not_null(strstr(r.out, "slots = 2\n"), "%s", r.out);
    xpt_run_result_free(&r);
    write_conf("w.conf",
               "connect = tcp://127.0.0.1:7021\nplugin = \"with space.so\"\n"
               "log-level = warning\n",
               path);
    const char *a1[] = {"--config",       path, "--plugin", "b.so",
                        "--print-config", NULL};
    r = s_daemon("XP_WORKER_BIN", a1);
    unsetenv("XP_SCHEDULER");
    unsetenv("XP_WORKER_SLOTS");
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_not_null(strstr(r.out, "connect = tcp://127.0.0.1:7021\n"), "%s",
                       r.out);
    cr_assert_not_null(
        strstr(r.out, "plugin = \"with space.so\"\nplugin = b.so\n"), "%s",
        r.out);
    cr_assert_not_null(strstr(r.out, "log-level = warning\n"), "%s", r.out);
    /* what it printed reads back as the same configuration */
    char again[PATH_MAX];
    write_conf("again.conf", r.out, again);
    char *first = strdup(r.out);
    xpt_run_result_free(&r);
    const char *a2[] = {"--config", again, "--print-config", NULL};
    r = s_daemon("XP_WORKER_BIN", a2);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_str_eq(r.out, first, "printed configuration reads back as:\n%s",
                     r.out);
    free(first);
    xpt_run_result_free(&r);
}

/* Every option a daemon takes is in its usage, once per table entry. */
Test(config, usage_lists_every_option)
{
    const char *sched[] = {"--bind",         "--backend",
                           "--heartbeat-ms", "--max-attempts",
                           "--max-message",  "--max-queued-per-client",
                           "--keep-ms",      "--keys",
                           "--name",         "--insecure",
                           "--log-level",    "--config",
                           "--print-config", NULL};
    const char *worker[] = {"--connect",
                            "--plugin",
                            "--slots",
                            "--heartbeat-ms",
                            "--max-message",
                            "--key",
                            "--server-key",
                            "--log-level",
                            "--config",
                            "--print-config",
                            NULL};
    const char *const *lists[] = {sched, worker};
    const char *vars[] = {"XP_SCHEDULER_BIN", "XP_WORKER_BIN"};
    for (int d = 0; d < 2; d++) {
        const char *args[] = {"--help", NULL};
        xpt_run_result r = s_daemon(vars[d], args);
        cr_assert_eq(r.status, 0);
        for (const char *const *f = lists[d]; *f; f++) {
            char want[64];
            snprintf(want, sizeof want, "\n  %s ", *f);
            cr_assert_not_null(strstr(r.out, want), "%s: no %s in:\n%s",
                               vars[d], *f, r.out);
        }
        xpt_run_result_free(&r);
    }
}
