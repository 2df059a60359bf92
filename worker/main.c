/* xp-worker — executes the steps an xp-scheduler sends it, with N parallel
 * slots, using experiment plugins (shared libraries built with
 * -DXP_PLUGIN). A thin main over the engine in lib/src/remote/worker/:
 * its options are the table below. */
#include "remote/config.h"
#include "remote/worker.h"
#include "util/log.h"
#include "util/sys.h"

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
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
    {.name = "prefetch",
     .type = XP_OPTION_INT,
     .offset = S_AT(prefetch),
     .env = "XP_WORKER_PREFETCH",
     .dflt_int = XP_WORKER_PREFETCH_DEFAULT,
     .min = 0,
     .max = XP_WORKER_PREFETCH_MAX,
     .arg = "N",
     .help = "tasks of short steps held waiting beyond the slots, so that "
             "a slot never waits for the scheduler between them (the "
             "scheduler sends them only while steps take milliseconds; 0: "
             "one task a slot)"},
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
    {.name = "death-timeout",
     .type = XP_OPTION_INT,
     .offset = S_AT(death_timeout),
     .env = "XP_WORKER_DEATH_TIMEOUT",
     .dflt_words = "0, never",
     .max = 1 << 30,
     .arg = "S",
     .help = "exit (status 3) when the scheduler has not answered for S "
             "seconds, e.g. a batch job whose scheduler is gone"},
    {.name = "lifetime",
     .type = XP_OPTION_INT,
     .offset = S_AT(lifetime),
     .env = "XP_WORKER_LIFETIME",
     .dflt_words = "0, no limit",
     .max = 1 << 30,
     .arg = "S",
     .help = "after S seconds take no more tasks, then drain as on "
             "SIGTERM: a batch job stopping before its walltime"},
    {.name = "drain-timeout",
     .type = XP_OPTION_INT,
     .offset = S_AT(drain_timeout),
     .env = "XP_WORKER_DRAIN_TIMEOUT",
     .dflt_int = XP_WORKER_DRAIN_TIMEOUT_DEFAULT,
     .min = 1,
     .max = 1 << 30,
     .arg = "S",
     .help = "on SIGTERM or at the end of --lifetime, how long running "
             "steps may finish before their tasks go back to the "
             "scheduler (a second SIGTERM, or SIGINT, stops at once)"},
    {.name = "job-id",
     .type = XP_OPTION_STRING,
     .offset = S_AT(job_id),
     .env = "XP_JOB_ID",
     .dflt_words = "Slurm's $SLURM_ARRAY_JOB_ID, else $SLURM_JOB_ID",
     .arg = "ID",
     .help = "the batch job this worker runs in, recorded with every step "
             "it runs"},
    {.name = "job-index",
     .type = XP_OPTION_INT,
     .offset = S_AT(job_index),
     .env = "XP_JOB_INDEX",
     .dflt_int = -1,
     .dflt_words = "with Slurm's job id, $SLURM_ARRAY_TASK_ID",
     .min = -1,
     .max = INT32_MAX,
     .arg = "N",
     .help = "its index in an array job (-1: none)"},
    {.name = "job-node",
     .type = XP_OPTION_STRING,
     .offset = S_AT(job_node),
     .env = "XP_JOB_NODE",
     .dflt_words = "$SLURMD_NODENAME",
     .arg = "NAME",
     .help = "the node the batch system gave the job"},
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

static volatile sig_atomic_t s_terms;

/* SIGTERM (Slurm's, before the walltime or on scancel) drains; a second
 * one, or SIGINT, stops at once. */
static void s_on_signal(int sig)
{
    if (!s_worker)
        return;
    if (sig == SIGTERM && s_terms++ == 0)
        xp__worker_drain(s_worker);
    else
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
    if (o.prefetch == 0)
        o.prefetch = -1; /* none, not the library's default */
    xp_error_t err;
    if (xp__worker_new(&s_worker, &o, &err) != 0) {
        fprintf(stderr, "xp-worker: %s\n", err.message);
        rc = err.domain == XP_DOMAIN_SYSTEM ? 1 : 2;
        goto cleanup;
    }
    xp__config_signals(s_on_signal);
    xp__log(XP_LOG_INFO, "Worker connecting to %s", o.endpoint);
    rc = xp__worker_run(s_worker);
    if (rc < 0)
        rc = 1;
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
