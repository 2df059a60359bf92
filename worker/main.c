/* xp-worker — executes the steps an xp-scheduler sends it, with N parallel
 * slots, using experiment plugins (shared libraries built with
 * -DXP_PLUGIN). A thin main over the engine in lib/src/worker.c. */
#include "remote/config.h"
#include "remote/message.h"
#include "remote/worker.h"
#include "util/log.h"
#include "util/sys.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static xp_worker *s_worker;

static void s_on_signal(int sig)
{
    (void)sig;
    if (s_worker)
        xp__worker_stop(s_worker);
}

static void s_usage(FILE *f)
{
    fputs("usage: xp-worker --connect ENDPOINT --plugin PATH.so "
          "[--plugin PATH.so ...]\n"
          "                 [--slots N] [--heartbeat-ms N] [--max-message "
          "BYTES]\n"
          "                 [--key FILE --server-key FILE] [--log-level L]\n"
          "                 [--config FILE] [--print-config] [--help]\n\n"
          "Runs the steps an xp-scheduler dispatches, for the experiments "
          "of the\ngiven plugins (each example builds one: "
          "build/examples/<name>.so).\n\n"
          "  --connect ENDPOINT  scheduler; default $XP_SCHEDULER\n"
          "  --plugin PATH.so    experiment plugin; repeat for several\n"
          "  --slots N           tasks run in parallel; default "
          "$XP_WORKER_SLOTS,\n"
          "                      else the number of CPUs\n"
          "  --key FILE          CURVE: this worker's key pair (NAME.key "
          "from\n"
          "                      `xp keygen`, its secret beside it); "
          "default $XP_KEY\n"
          "  --server-key FILE   CURVE: the scheduler's public key "
          "(scheduler.key);\n"
          "                      default $XP_SERVER_KEY\n"
          "  --heartbeat-ms N    heartbeat interval until the scheduler "
          "sets it\n"
          "                      (default 1000)\n"
          "  --max-message BYTES largest accepted message (default 64 "
          "MiB)\n"
          "  --log-level L       debug, info, warning, error or off "
          "(default info)\n"
          "  --config FILE       `key = value` lines, keys named as the "
          "options\n"
          "                      above (connect = tcp://host:5555, plugin = "
          "a.so...);\n"
          "                      default $XP_WORKER_CONFIG. Options on the "
          "command\n"
          "                      line win over the file, the file over "
          "XP_* variables\n"
          "  --print-config      print the effective configuration and "
          "exit\n",
          f);
}

static int s_int_arg(const char *name, const char *v, long lo, long hi,
                     long *out)
{
    char *end;
    long n = v && *v ? strtol(v, &end, 10) : 0;
    if (!v || !*v || *end != '\0' || n < lo || n > hi) {
        fprintf(stderr, "xp-worker: %s needs an integer from %ld to %ld\n",
                name, lo, hi);
        return -1;
    }
    *out = n;
    return 0;
}

static int s_main(int argc, char **argv);

static const char *const s_config_keys[] = {
    "connect",      "plugin",      "slots",
    "heartbeat-ms", "max-message", "log-level",
    "key",          "server-key",  NULL};

int main(int argc, char **argv)
{
    return xp__config_main("xp-worker", "XP_WORKER_CONFIG", s_config_keys, argc,
                           argv, s_main);
}

static int s_main(int argc, char **argv)
{
    xp_worker_options o = {0};
    const char **plugins = calloc((size_t)argc + 1, sizeof *plugins);
    bool print_config = false;
    int rc = 2;
    long n;
    if (!plugins)
        return 1;
    o.endpoint = getenv("XP_SCHEDULER");
    o.key = getenv("XP_KEY");
    o.server_key = getenv("XP_SERVER_KEY");
    const char *env_slots = getenv("XP_WORKER_SLOTS");
    if (env_slots && *env_slots) {
        if (s_int_arg("XP_WORKER_SLOTS", env_slots, 1, 1024, &n) != 0)
            goto cleanup;
        o.slots = (int)n;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            s_usage(stdout);
            rc = 0;
            goto cleanup;
        } else if (strcmp(a, "--print-config") == 0) {
            print_config = true;
        } else if (strcmp(a, "--connect") == 0 && v) {
            o.endpoint = argv[++i];
        } else if (strcmp(a, "--key") == 0 && v) {
            o.key = argv[++i];
        } else if (strcmp(a, "--server-key") == 0 && v) {
            o.server_key = argv[++i];
        } else if (strcmp(a, "--plugin") == 0 && v) {
            plugins[o.n_plugins++] = argv[++i];
        } else if (strcmp(a, "--slots") == 0) {
            if (s_int_arg(a, v, 1, 1024, &n) != 0)
                goto cleanup;
            o.slots = (int)n;
            i++;
        } else if (strcmp(a, "--heartbeat-ms") == 0) {
            if (s_int_arg(a, v, 10, 600000, &n) != 0)
                goto cleanup;
            o.heartbeat_ms = (int)n;
            i++;
        } else if (strcmp(a, "--max-message") == 0) {
            if (s_int_arg(a, v, 4096, 1L << 30, &n) != 0)
                goto cleanup;
            o.max_message = (size_t)n;
            i++;
        } else if (strcmp(a, "--log-level") == 0 && v) {
            xp_log_level level;
            xp_error_t err;
            if (xp_log_level_parse(argv[++i], &level, &err) != 0) {
                fprintf(stderr, "xp-worker: %s\n", err.message);
                goto cleanup;
            }
            xp_log_set_level(level);
        } else {
            fprintf(stderr,
                    "xp-worker: unknown or incomplete option '%s' (see "
                    "--help)\n",
                    a);
            goto cleanup;
        }
    }
    o.plugins = plugins;
    if (print_config) {
        printf("connect = %s\nslots = %d\nheartbeat-ms = %d\nmax-message = "
               "%zu\n",
               o.endpoint ? o.endpoint : "",
               o.slots ? o.slots : xp__cpu_count(),
               o.heartbeat_ms ? o.heartbeat_ms : 1000,
               o.max_message ? o.max_message : (size_t)XP_MAX_MESSAGE_DEFAULT);
        for (size_t i = 0; i < o.n_plugins; i++)
            printf("plugin = %s\n", plugins[i]);
        if (o.key && *o.key)
            printf("key = %s\nserver-key = %s\n", o.key,
                   o.server_key ? o.server_key : "");
        rc = 0;
        goto cleanup;
    }
    if (!o.endpoint || !*o.endpoint) {
        fprintf(stderr, "xp-worker: no scheduler: give --connect "
                        "tcp://HOST:PORT or set XP_SCHEDULER\n");
        goto cleanup;
    }
    if (o.n_plugins == 0) {
        fprintf(stderr, "xp-worker: no experiment: give --plugin PATH.so\n");
        goto cleanup;
    }

    zsys_init();
    zsys_handler_set(NULL);
    xp_error_t err;
    if (xp__worker_new(&s_worker, &o, &err) != 0) {
        fprintf(stderr, "xp-worker: %s\n", err.message);
        rc = err.domain == XP_DOMAIN_SYSTEM ? 1 : 2;
        goto cleanup;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    xp__log(XP_LOG_INFO, "Worker connecting to %s", o.endpoint);
    rc = xp__worker_run(s_worker) == 0 ? 0 : 1;
    int running = xp__worker_running(s_worker);
    if (running > 0) {
        /* Steps cannot be interrupted; their tasks go to other workers. */
        xp__log(XP_LOG_WARNING, "Leaving %d running step(s) behind", running);
        fflush(NULL);
        _exit(rc);
    }
    xp__worker_destroy(&s_worker);
cleanup:
    free(plugins);
    return rc;
}
