/* xp-worker — executes the steps an xp-scheduler sends it, with N parallel
 * slots, using experiment plugins (shared libraries built with
 * -DXP_PLUGIN). A thin main over the engine in lib/src/remote/worker/:
 * its options are the table below. */
#include "remote/config.h"
#include "remote/worker.h"
#include "util/log.h"
#include "util/sys.h"

#include <stddef.h>
#include <stdio.h>
#include <unistd.h>

#define S_AT(field) offsetof(xp_worker_options, field)

static const xp_option s_options[] = {
    {.name = "connect",
     .type = XP_OPTION_STRING,
     .offset = S_AT(endpoint),
     .env = "XP_SCHEDULER",
     .arg = "ENDPOINT",
     .help = "the scheduler"},
    {.name = "plugin",
     .type = XP_OPTION_LIST,
     .offset = S_AT(plugins),
     .count_at = S_AT(n_plugins),
     .arg = "PATH",
     .help = "experiment plugin (.so) or experiment file (.yaml, "
             "docs/commands.md); repeat for several"},
    {.name = "slots",
     .type = XP_OPTION_INT,
     .offset = S_AT(slots),
     .env = "XP_WORKER_SLOTS",
     .dflt_fn = xp__cpu_count,
     .dflt_words = "the number of CPUs",
     .min = 1,
     .max = XP_WORKER_SLOTS_MAX,
     .arg = "N",
     .help = "tasks run in parallel"},
    XP_OPTION_HEARTBEAT_MS(S_AT(heartbeat_ms),
                           "heartbeat interval until the scheduler sets it"),
    XP_OPTION_MAX_MESSAGE(S_AT(max_message)),
    {.name = "key",
     .type = XP_OPTION_STRING,
     .offset = S_AT(key),
     .env = "XP_KEY",
     .arg = "FILE",
     .help = "CURVE: this worker's key pair, NAME.key from `xp keygen` "
             "with its secret beside it"},
    {.name = "server-key",
     .type = XP_OPTION_STRING,
     .offset = S_AT(server_key),
     .env = "XP_SERVER_KEY",
     .arg = "FILE",
     .help = "CURVE: the scheduler's public key, its scheduler.key"},
    {.name = NULL},
};

static const xp_config_spec s_spec = {
    .program = "xp-worker",
    .about = "Runs the steps an xp-scheduler dispatches, for the experiments "
             "of the given plugins (each example builds one: "
             "build/examples/<name>.so).",
    .config_env = "XP_WORKER_CONFIG",
    .config_example = "connect = tcp://host:5555, plugin = a.so",
    .options = s_options,
};

static xp_worker *s_worker;

static void s_on_signal(int sig)
{
    (void)sig;
    if (s_worker)
        xp__worker_stop(s_worker);
}

int main(int argc, char **argv)
{
    xp_worker_options o = {0};
    int rc;
    if (!xp__config_load(&s_spec, &o, argc, argv, &rc))
        goto cleanup;
    zsys_init();
    zsys_handler_set(NULL);
    xp_error_t err;
    if (xp__worker_new(&s_worker, &o, &err) != 0) {
        fprintf(stderr, "xp-worker: %s\n", err.message);
        rc = err.domain == XP_DOMAIN_SYSTEM ? 1 : 2;
        goto cleanup;
    }
    xp__config_signals(s_on_signal);
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
    xp__config_clear(&s_spec, &o);
    return rc;
}
