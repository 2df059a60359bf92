/* xp-scheduler — accepts trials from clients, dispatches their steps to
 * workers over ZeroMQ and records everything in the backend. A thin main
 * over the engine in lib/src/scheduler.c. */
#include "remote/config.h"
#include "remote/message.h"
#include "remote/scheduler.h"
#include "util/log.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static xp_scheduler *s_scheduler;
static int s_main(int argc, char **argv);

static void s_on_signal(int sig)
{
    (void)sig;
    if (s_scheduler)
        xp__scheduler_stop(s_scheduler);
}

static void s_usage(FILE *f)
{
    fputs("usage: xp-scheduler [--bind ENDPOINT] [--backend B] "
          "[--heartbeat-ms N]\n"
          "                    [--max-attempts N] [--max-message BYTES] "
          "[--log-level L]\n"
          "                    [--keys DIR] [--max-queued-per-client N] "
          "[--insecure]\n"
          "                    [--config FILE] [--print-config] [--help]\n\n"
          "Accepts trials from xpsubmit and script-mode programs, runs their "
          "steps on\nxp-worker processes and records them in the backend.\n\n"
          "  --bind ENDPOINT     default $XP_SCHEDULER_BIND, else "
          "tcp://127.0.0.1:5555\n"
          "  --backend B         directory or URI; default $XP_BACKEND, "
          "else ./xp_cache\n"
          "  --heartbeat-ms N    heartbeat interval (default 1000); a worker "
          "is lost\n"
          "                      after 3 missed intervals\n"
          "  --max-attempts N    tries per step before its trial fails "
          "(default 3)\n"
          "  --max-message BYTES largest accepted message (default 64 MiB)\n"
          "  --keys DIR          CURVE: DIR/scheduler.key (+ _secret) is "
          "this\n"
          "                      scheduler's pair; only workers and "
          "clients whose\n"
          "                      public keys are in DIR/authorized/ get in; "
          "default\n"
          "                      $XP_SCHEDULER_KEYS (make keys with `xp "
          "keygen`)\n"
          "  --max-queued-per-client N\n"
          "                      unfinished trials one client may have "
          "(default\n"
          "                      1000000); a submission over it is refused "
          "whole\n"
          "  --name NAME         owner written on accepted trials; after a "
          "restart a\n"
          "                      scheduler takes up only its own (default "
          "$XP_SCHEDULER_NAME,\n"
          "                      else \"HOSTNAME BIND\")\n"
          "  --keep-ms N         how long a finished batch and an unused "
          "experiment\n"
          "                      definition are kept (default 600000)\n"
          "  --insecure          allow binding a non-loopback address "
          "without keys\n"
          "  --log-level L       debug, info, warning, error or off "
          "(default info)\n"
          "  --config FILE       `key = value` lines, keys named as the "
          "options\n"
          "                      above (bind = tcp://*:5555, insecure = "
          "true...);\n"
          "                      default $XP_SCHEDULER_CONFIG. Options on "
          "the command\n"
          "                      line win over the file, the file over "
          "XP_* variables\n"
          "  --print-config      print the effective configuration and "
          "exit\n",
          f);
}

/* Without keys, loopback endpoints only, unless --insecure. */
static bool s_is_loopback(const char *ep)
{
    return strncmp(ep, "tcp://127.", 10) == 0 ||
           strncmp(ep, "tcp://localhost:", 16) == 0 ||
           strncmp(ep, "ipc://", 6) == 0 || strncmp(ep, "inproc://", 9) == 0;
}

static int s_int_arg(const char *name, const char *v, long lo, long hi,
                     long *out)
{
    char *end;
    long n = v ? strtol(v, &end, 10) : 0;
    if (!v || *end != '\0' || n < lo || n > hi) {
        fprintf(stderr, "xp-scheduler: %s needs an integer from %ld to %ld\n",
                name, lo, hi);
        return -1;
    }
    *out = n;
    return 0;
}

static const char *const s_config_keys[] = {
    "bind",         "backend",     "heartbeat-ms",
    "max-attempts", "max-message", "log-level",
    "insecure?",    "keys",        "max-queued-per-client",
    "keep-ms",      "name",        NULL};

int main(int argc, char **argv)
{
    return xp__config_main("xp-scheduler", "XP_SCHEDULER_CONFIG", s_config_keys,
                           argc, argv, s_main);
}

static int s_main(int argc, char **argv)
{
    xp_scheduler_options o = {0};
    o.bind = getenv("XP_SCHEDULER_BIND");
    if (!o.bind || !*o.bind)
        o.bind = "tcp://127.0.0.1:5555";
    o.backend = getenv("XP_BACKEND");
    o.keys = getenv("XP_SCHEDULER_KEYS");
    o.name = getenv("XP_SCHEDULER_NAME");
    bool insecure = false, print_config = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            s_usage(stdout);
            return 0;
        } else if (strcmp(a, "--insecure") == 0) {
            insecure = true;
        } else if (strcmp(a, "--print-config") == 0) {
            print_config = true;
        } else if (strcmp(a, "--bind") == 0 && v) {
            o.bind = argv[++i];
        } else if (strcmp(a, "--backend") == 0 && v) {
            o.backend = argv[++i];
        } else if (strcmp(a, "--keys") == 0 && v) {
            o.keys = argv[++i];
        } else if (strcmp(a, "--name") == 0 && v) {
            o.name = argv[++i];
        } else if (strcmp(a, "--keep-ms") == 0) {
            if (s_int_arg(a, v, 100, 86400000L, &n) != 0)
                return 2;
            o.keep_ms = n;
            i++;
        } else if (strcmp(a, "--max-queued-per-client") == 0) {
            if (s_int_arg(a, v, 1, 1000000000L, &n) != 0)
                return 2;
            o.max_queued_per_client = (size_t)n;
            i++;
        } else if (strcmp(a, "--heartbeat-ms") == 0) {
            if (s_int_arg(a, v, 10, 600000, &n) != 0)
                return 2;
            o.heartbeat_ms = (int)n;
            i++;
        } else if (strcmp(a, "--max-attempts") == 0) {
            if (s_int_arg(a, v, 1, 1000, &n) != 0)
                return 2;
            o.max_attempts = (int)n;
            i++;
        } else if (strcmp(a, "--max-message") == 0) {
            if (s_int_arg(a, v, 1024, 1L << 30, &n) != 0)
                return 2;
            o.max_message = (size_t)n;
            i++;
        } else if (strcmp(a, "--log-level") == 0 && v) {
            xp_log_level level;
            xp_error_t err;
            if (xp_log_level_parse(argv[++i], &level, &err) != 0) {
                fprintf(stderr, "xp-scheduler: %s\n", err.message);
                return 2;
            }
            xp_log_set_level(level);
        } else {
            fprintf(stderr,
                    "xp-scheduler: unknown or incomplete option '%s' "
                    "(see --help)\n",
                    a);
            return 2;
        }
    }
    if (o.keys && !*o.keys)
        o.keys = NULL;
    if (!s_is_loopback(o.bind) && !insecure && !o.keys) {
        fprintf(stderr,
                "xp-scheduler: binding %s exposes the scheduler "
                "without authentication; give --keys DIR, or pass "
                "--insecure to do it anyway\n",
                o.bind);
        return 2;
    }
    if (print_config) {
        printf("bind = %s\nbackend = %s\nheartbeat-ms = %d\nmax-attempts = "
               "%d\nmax-message = %zu\nmax-queued-per-client = %zu\n"
               "keep-ms = %lld\n",
               o.bind, o.backend && *o.backend ? o.backend : "xp_cache",
               o.heartbeat_ms ? o.heartbeat_ms : 1000,
               o.max_attempts ? o.max_attempts : 3,
               o.max_message ? o.max_message : (size_t)XP_MAX_MESSAGE_DEFAULT,
               o.max_queued_per_client
                   ? o.max_queued_per_client
                   : (size_t)XP_MAX_QUEUED_PER_CLIENT_DEFAULT,
               (long long)(o.keep_ms ? o.keep_ms : XP_KEEP_MS_DEFAULT));
        if (o.keys)
            printf("keys = %s\n", o.keys);
        if (o.name && *o.name)
            printf("name = \"%s\"\n", o.name);
        if (insecure)
            printf("insecure = true\n");
        return 0;
    }
    zsys_init();
    zsys_handler_set(NULL);
    xp_error_t err;
    if (xp__scheduler_new(&s_scheduler, &o, &err) != 0) {
        fprintf(stderr, "xp-scheduler: %s\n", err.message);
        return 1;
    }
    signal(SIGINT, s_on_signal);
    signal(SIGTERM, s_on_signal);
    xp__log(XP_LOG_INFO, "Scheduler listening on %s",
            xp__scheduler_endpoint(s_scheduler));
    int rc = xp__scheduler_run(s_scheduler);
    xp__scheduler_destroy(&s_scheduler);
    return rc == 0 ? 0 : 1;
}
