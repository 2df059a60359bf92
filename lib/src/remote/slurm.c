/* slurm.c — the batch job that runs xp-workers on a Slurm cluster (`xp
 * slurm`): its options, one table read as the daemons read theirs (flags,
 * --config FILE or $XP_SLURM_CONFIG, XP_SLURM_* variables), checked, and
 * the job script's one home: an array job whose every element execs one
 * xp-worker connected to the scheduler (docs/cluster.md). */
#include "remote/config.h"

#include "util/error.h"

#include <bson/bson.h>
#include <stddef.h>
#include <string.h>

/* The most array elements one script asks for (Slurm's MaxArraySize is
 * 1001 by default; sites raise it). */
#define S_WORKERS_MAX 100000

struct xp_slurm_job {
    int workers;
    const char *job_name, *partition, *time, *mem, *account, *output;
    int cpus_per_task;
    int signal;
    const char *const *extra;
    size_t n_extra;
    const char *const *prologue;
    size_t n_prologue;
    /* what the workers get */
    const char *worker, *worker_config, *connect, *key, *server_key;
    const char *const *plugins;
    size_t n_plugins;
    int slots, death_timeout, lifetime, drain_timeout;
};

#define S_AT(field) offsetof(xp_slurm_job, field)
#define S_STRING(name_, field_, env_, arg_, help_)                             \
    {                                                                          \
        .name = (name_), .type = XP_OPTION_STRING, .offset = S_AT(field_),     \
        .env = (env_), .arg = (arg_), .help = (help_)                          \
    }

static const xp_option s_options[] = {
    {.name = "workers",
     .type = XP_OPTION_INT,
     .offset = S_AT(workers),
     .env = "XP_SLURM_WORKERS",
     .dflt_int = 1,
     .min = 1,
     .max = S_WORKERS_MAX,
     .arg = "N",
     .help = "array elements, one xp-worker each"},
    {.name = "job-name",
     .type = XP_OPTION_STRING,
     .offset = S_AT(job_name),
     .env = "XP_SLURM_JOB_NAME",
     .dflt = "xp-worker",
     .arg = "NAME",
     .help = "the job's name, which status and cancel look for"},
    S_STRING("partition", partition, "XP_SLURM_PARTITION", "P",
             "#SBATCH --partition"),
    S_STRING("time", time, "XP_SLURM_TIME", "[D-]HH:MM:SS",
             "#SBATCH --time, the walltime of each element"),
    {.name = "cpus-per-task",
     .type = XP_OPTION_INT,
     .offset = S_AT(cpus_per_task),
     .env = "XP_SLURM_CPUS_PER_TASK",
     .dflt_words = "Slurm's, 1",
     .max = 1 << 20,
     .arg = "C",
     .help = "#SBATCH --cpus-per-task; each worker runs that many slots"},
    S_STRING("mem", mem, "XP_SLURM_MEM", "M", "#SBATCH --mem, e.g. 4G"),
    S_STRING("account", account, "XP_SLURM_ACCOUNT", "A", "#SBATCH --account"),
    {.name = "output",
     .type = XP_OPTION_STRING,
     .offset = S_AT(output),
     .env = "XP_SLURM_OUTPUT",
     .dflt = "xp-worker-%A_%a.out",
     .arg = "PATTERN",
     .help = "#SBATCH --output, each worker's log"},
    {.name = "signal",
     .type = XP_OPTION_INT,
     .offset = S_AT(signal),
     .env = "XP_SLURM_SIGNAL",
     .dflt_int = 120,
     .max = 65535,
     .arg = "S",
     .help = "SIGTERM the worker S seconds before the walltime "
             "(#SBATCH --signal=B:TERM@S), so that it drains; 0: no such "
             "line"},
    {.name = "extra",
     .type = XP_OPTION_LIST,
     .offset = S_AT(extra),
     .count_at = S_AT(n_extra),
     .arg = "'#SBATCH ...'",
     .help = "another #SBATCH line, as written; repeat for several"},
    {.name = "prologue",
     .type = XP_OPTION_LIST,
     .offset = S_AT(prologue),
     .count_at = S_AT(n_prologue),
     .arg = "LINE",
     .help = "a shell line run before the worker, e.g. 'module load "
             "xp'; repeat for several"},
    {.name = "worker",
     .type = XP_OPTION_STRING,
     .offset = S_AT(worker),
     .env = "XP_SLURM_WORKER",
     .dflt = "xp-worker",
     .arg = "PROGRAM",
     .help = "the xp-worker the nodes run (a path on the shared "
             "filesystem, or a name on their PATH)"},
    S_STRING("worker-config", worker_config, "XP_SLURM_WORKER_CONFIG", "FILE",
             "the workers' own configuration file (xp-worker --config)"),
    S_STRING("connect", connect, "XP_SCHEDULER", "ENDPOINT",
             "the scheduler, as the nodes reach it: tcp://login1:5555"),
    {.name = "plugin",
     .type = XP_OPTION_LIST,
     .offset = S_AT(plugins),
     .count_at = S_AT(n_plugins),
     .arg = "PATH.so",
     .help = "experiment plugin; repeat for several"},
    {.name = "slots",
     .type = XP_OPTION_INT,
     .offset = S_AT(slots),
     .dflt_words = "$SLURM_CPUS_PER_TASK, else 1",
     .max = 1024,
     .arg = "N",
     .help = "tasks each worker runs in parallel"},
    S_STRING("key", key, "XP_KEY", "FILE",
             "CURVE: the workers' key pair, on the shared filesystem"),
    S_STRING("server-key", server_key, "XP_SERVER_KEY", "FILE",
             "CURVE: the scheduler's public key"),
    {.name = "death-timeout",
     .type = XP_OPTION_INT,
     .offset = S_AT(death_timeout),
     .dflt_int = 300,
     .max = 1 << 30,
     .arg = "S",
     .help = "a worker whose scheduler has not answered for S seconds ends "
             "its job (0: never)"},
    {.name = "lifetime",
     .type = XP_OPTION_INT,
     .offset = S_AT(lifetime),
     .dflt_words = "0, until the SIGTERM before the walltime",
     .max = 1 << 30,
     .arg = "S",
     .help = "a worker takes no task after S seconds, then drains"},
    {.name = "drain-timeout",
     .type = XP_OPTION_INT,
     .offset = S_AT(drain_timeout),
     .dflt_words = "--signal's S minus 30, else 60",
     .max = 1 << 30,
     .arg = "S",
     .help = "how long a draining worker lets running steps finish before "
             "handing them back"},
    {.name = NULL},
};

/* ------------------------------------------------------------- checks */

/* How much of v an error line shows: up to 64 bytes, before any line
 * break. */
static int s_shown(const char *v)
{
    size_t n = strcspn(v, "\r\n");
    return n > 64 ? 64 : (int)n;
}

/* A value that goes on an #SBATCH line: one word. */
static int s_check_word(const char *name, const char *v, xp_error_t *err)
{
    if (v && (!*v || strpbrk(v, " \t\r\n'\"\\")))
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "--%s '%.*s' is not one word without quotes", name,
                         s_shown(v), v);
    return 0;
}

/* Slurm's time formats: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS. */
static int s_check_time(const char *v, xp_error_t *err)
{
    if (!v)
        return 0;
    size_t n = strlen(v), digits = strspn(v, "0123456789-:");
    const char *dash = strchr(v, '-');
    if (n && digits == n && v[0] != '-' && v[0] != ':' && v[n - 1] != '-' &&
        v[n - 1] != ':' && (!dash || !strchr(dash + 1, '-')) &&
        !strstr(v, "::") && !strstr(v, "-:") && !strstr(v, ":-"))
        return 0;
    return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                     "--time '%.64s' is not a Slurm time ([D-]HH:MM:SS)", v);
}

static int s_check_lines(const char *name, const char *const *lines, size_t n,
                         bool sbatch, xp_error_t *err)
{
    for (size_t i = 0; i < n; i++) {
        if (strpbrk(lines[i], "\r\n"))
            return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                             "--%s '%.*s...' holds a line break", name,
                             s_shown(lines[i]), lines[i]);
        if (sbatch && strncmp(lines[i], "#SBATCH ", 8) != 0)
            return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                             "--%s '%.64s' does not start with '#SBATCH '",
                             name, lines[i]);
    }
    return 0;
}

static int s_check(const void *opts, xp_error_t *err)
{
    const xp_slurm_job *j = opts;
    const struct {
        const char *name, *value;
    } words[] = {{"job-name", j->job_name},
                 {"partition", j->partition},
                 {"mem", j->mem},
                 {"account", j->account},
                 {"output", j->output}};
    for (size_t i = 0; i < sizeof words / sizeof *words; i++)
        if (s_check_word(words[i].name, words[i].value, err) != 0)
            return -1;
    if (s_check_time(j->time, err) != 0 ||
        s_check_lines("extra", j->extra, j->n_extra, true, err) != 0 ||
        s_check_lines("prologue", j->prologue, j->n_prologue, false, err) != 0)
        return -1;
    return 0;
}

static const xp_config_spec s_spec = {
    .program = "xp slurm",
    .about = "Runs xp-workers as a Slurm array job, one per element, each "
             "connecting to the scheduler (docs/cluster.md). `script` "
             "prints the job script, `submit` gives it to sbatch and prints "
             "the job id, `status` and `cancel` run squeue and scancel on "
             "the given job ids, else on the jobs of this name and user.",
    .config_env = "XP_SLURM_CONFIG",
    .config_example = "connect = tcp://login1:5555, plugin = /shared/a.so, "
                      "time = 04:00:00",
    .options = s_options,
    .check = s_check,
};

/* ------------------------------------------------------------- script */

/* What a script needs beyond what loading checked (status and cancel
 * need none of it). */
static int s_check_complete(const xp_slurm_job *j, xp_error_t *err)
{
    if (!j->worker_config && (!j->connect || !*j->connect))
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "no scheduler endpoint (--connect, XP_SCHEDULER or "
                         "--worker-config)");
    if (!j->worker_config && j->n_plugins == 0)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "no experiment plugin (--plugin PATH.so or "
                         "--worker-config)");
    if (!j->worker || !*j->worker)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "no worker program (--worker)");
    return 0;
}

/* v as one shell word: single quotes, each ' as '\''. */
static void s_quote(bson_string_t *s, const char *v)
{
    bson_string_append_c(s, '\'');
    for (const char *p = v; *p; p++)
        if (*p == '\'')
            bson_string_append(s, "'\\''");
        else
            bson_string_append_c(s, *p);
    bson_string_append_c(s, '\'');
}

static void s_flag(bson_string_t *s, const char *flag, const char *v)
{
    bson_string_append_printf(s, " \\\n    --%s ", flag);
    s_quote(s, v);
}

static void s_sbatch(bson_string_t *s, const char *flag, const char *v)
{
    if (v)
        bson_string_append_printf(s, "#SBATCH --%s=%s\n", flag, v);
}

static int s_drain_timeout(const xp_slurm_job *j)
{
    if (j->drain_timeout > 0)
        return j->drain_timeout;
    return j->signal > 40 ? j->signal - 30 : 60;
}

static void s_worker_line(bson_string_t *s, const xp_slurm_job *j)
{
    bson_string_append(s, "exec ");
    s_quote(s, j->worker);
    if (j->worker_config)
        s_flag(s, "config", j->worker_config);
    if (j->connect)
        s_flag(s, "connect", j->connect);
    for (size_t i = 0; i < j->n_plugins; i++)
        s_flag(s, "plugin", j->plugins[i]);
    if (j->slots > 0)
        bson_string_append_printf(s, " \\\n    --slots %d", j->slots);
    else
        bson_string_append(s, " \\\n    --slots \"${SLURM_CPUS_PER_TASK:-1}\"");
    if (j->key)
        s_flag(s, "key", j->key);
    if (j->server_key)
        s_flag(s, "server-key", j->server_key);
    bson_string_append_printf(s, " \\\n    --death-timeout %d",
                              j->death_timeout);
    if (j->lifetime > 0)
        bson_string_append_printf(s, " \\\n    --lifetime %d", j->lifetime);
    bson_string_append_printf(s, " \\\n    --drain-timeout %d\n",
                              s_drain_timeout(j));
}

int xp_slurm_job_script(const xp_slurm_job *j, char **out, xp_error_t *err)
{
    *out = NULL;
    if (!j)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL, "no job");
    if (s_check_complete(j, err) != 0)
        return -1;
    char cpus[32], array[32], signal[32];
    snprintf(cpus, sizeof cpus, "%d", j->cpus_per_task);
    snprintf(array, sizeof array, "0-%d", j->workers - 1);
    snprintf(signal, sizeof signal, "B:TERM@%d", j->signal);
    bson_string_t *s = bson_string_new("#!/bin/bash\n");
    s_sbatch(s, "job-name", j->job_name);
    s_sbatch(s, "array", array);
    s_sbatch(s, "ntasks", "1");
    s_sbatch(s, "cpus-per-task", j->cpus_per_task > 0 ? cpus : NULL);
    s_sbatch(s, "mem", j->mem);
    s_sbatch(s, "partition", j->partition);
    s_sbatch(s, "account", j->account);
    s_sbatch(s, "time", j->time);
    s_sbatch(s, "signal", j->signal > 0 ? signal : NULL);
    s_sbatch(s, "output", j->output);
    for (size_t i = 0; i < j->n_extra; i++)
        bson_string_append_printf(s, "%s\n", j->extra[i]);
    bson_string_append(s, "# xp " XP_VERSION_STRING
                          ": one xp-worker per array element; SIGTERM "
                          "drains it (docs/cluster.md)\n");
    for (size_t i = 0; i < j->n_prologue; i++)
        bson_string_append_printf(s, "%s\n", j->prologue[i]);
    s_worker_line(s, j);
    *out = bson_string_free(s, false);
    return 0;
}

/* ------------------------------------------------------------- life */

int xp_slurm_job_load(xp_slurm_job **out, int argc, char **argv, int *status)
{
    xp_slurm_job *j = bson_malloc0(sizeof *j);
    *out = NULL;
    if (!xp__config_load(&s_spec, j, argc, argv, status)) {
        xp_slurm_job_destroy(&j);
        return -1;
    }
    *out = j;
    return 0;
}

const char *xp_slurm_job_name(const xp_slurm_job *j)
{
    return j ? j->job_name : NULL;
}

void xp_slurm_job_destroy(xp_slurm_job **pj)
{
    if (!pj || !*pj)
        return;
    xp__config_clear(&s_spec, *pj);
    bson_free(*pj);
    *pj = NULL;
}
