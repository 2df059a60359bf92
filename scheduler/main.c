/* xp-scheduler — accepts trials from clients, dispatches their steps to
 * workers over ZeroMQ and records everything in the backend. A thin main
 * over the engine in lib/src/remote/scheduler/: its options are the
 * table below. */
#include "remote/config.h"
#include "remote/scheduler.h"
#include "util/log.h"

#include <stddef.h>
#include <stdio.h>

#define S_AT(field) offsetof(xp_scheduler_options, field)

static const xp_option s_options[] = {
    {.name = "bind",
     .type = XP_OPTION_STRING,
     .offset = S_AT(bind),
     .env = "XP_SCHEDULER_BIND",
     .dflt = "tcp://127.0.0.1:5555",
     .arg = "ENDPOINT",
     .help = "where workers and clients connect"},
    {.name = "backend",
     .type = XP_OPTION_STRING,
     .offset = S_AT(backend),
     .env = "XP_BACKEND",
     .dflt = "xp_cache",
     .arg = "B",
     .help = "directory or URI where trials are recorded"},
    XP_OPTION_HEARTBEAT_MS(
        S_AT(heartbeat_ms),
        "heartbeat interval; a worker is lost after 3 missed "
        "intervals"),
    {.name = "max-attempts",
     .type = XP_OPTION_INT,
     .offset = S_AT(max_attempts),
     .dflt_int = XP_MAX_ATTEMPTS_DEFAULT,
     .min = 1,
     .max = 1000,
     .arg = "N",
     .help = "tries per step before its trial fails"},
    XP_OPTION_MAX_MESSAGE(S_AT(max_message)),
    {.name = "max-queued-per-client",
     .type = XP_OPTION_SIZE,
     .offset = S_AT(max_queued_per_client),
     .dflt_int = XP_MAX_QUEUED_PER_CLIENT_DEFAULT,
     .min = 1,
     .max = 1000000000,
     .arg = "N",
     .help = "unfinished trials one client may have; a submission over it "
             "is refused whole"},
    {.name = "max-experiments-per-worker",
     .type = XP_OPTION_SIZE,
     .offset = S_AT(max_experiments_per_worker),
     .dflt_int = XP_MAX_EXPERIMENTS_PER_WORKER_DEFAULT,
     .min = 1,
     .max = XP_MAX_EXPERIMENTS_PER_WORKER_MAX,
     .arg = "N",
     .help = "experiments one worker may announce; a worker announcing "
             "more is refused"},
    {.name = "keep-ms",
     .type = XP_OPTION_INT64,
     .offset = S_AT(keep_ms),
     .dflt_int = XP_KEEP_MS_DEFAULT,
     .min = 100,
     .max = 86400000,
     .arg = "N",
     .help = "how long a finished batch and an unused experiment "
             "definition are kept"},
    {.name = "keys",
     .type = XP_OPTION_STRING,
     .offset = S_AT(keys),
     .env = "XP_SCHEDULER_KEYS",
     .arg = "DIR",
     .help = "CURVE: DIR/scheduler.key (+ _secret) is this scheduler's "
             "pair; only workers and clients whose public keys are in "
             "DIR/authorized/ get in; make keys with `xp keygen`"},
    {.name = "name",
     .type = XP_OPTION_STRING,
     .offset = S_AT(name),
     .env = "XP_SCHEDULER_NAME",
     .dflt_words = "\"HOSTNAME BIND\"",
     .arg = "NAME",
     .help = "owner written on accepted trials; after a restart a "
             "scheduler takes up only its own"},
    {.name = "insecure",
     .type = XP_OPTION_SWITCH,
     .offset = S_AT(insecure),
     .help = "allow binding a non-loopback address without keys"},
    {.name = NULL},
};

static int s_check(const void *opts, xp_error_t *err)
{
    return xp__scheduler_check(opts, err);
}

static const xp_config_spec s_spec = {
    .program = "xp-scheduler",
    .about = "Accepts trials from xpsubmit and script-mode programs, runs "
             "their steps on xp-worker processes and records them in the "
             "backend.",
    .config_env = "XP_SCHEDULER_CONFIG",
    .config_example = "bind = tcp://*:5555, insecure = true",
    .options = s_options,
    .check = s_check,
};

static xp_scheduler *s_scheduler;

static void s_on_signal(int sig)
{
    (void)sig;
    if (s_scheduler)
        xp__scheduler_stop(s_scheduler);
}

int main(int argc, char **argv)
{
    xp_scheduler_options o = {0};
    int rc;
    if (!xp__config_load(&s_spec, &o, argc, argv, &rc))
        goto cleanup;
    zsys_init();
    zsys_handler_set(NULL);
    xp_error_t err;
    if (xp__scheduler_new(&s_scheduler, &o, &err) != 0) {
        fprintf(stderr, "xp-scheduler: %s\n", err.message);
        rc = 1;
        goto cleanup;
    }
    xp__config_signals(s_on_signal);
    xp__log(XP_LOG_INFO, "Scheduler listening on %s",
            xp__scheduler_endpoint(s_scheduler));
    rc = xp__scheduler_run(s_scheduler) == 0 ? 0 : 1;
    xp__scheduler_destroy(&s_scheduler);
cleanup:
    xp__config_clear(&s_spec, &o);
    return rc;
}
