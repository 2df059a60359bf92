/* test_slurm.c — `xp slurm`: the job script against its expected text,
 * option by option, from flags and from a configuration file; bad values
 * refused with one line; fake sbatch, squeue and scancel on PATH that
 * record their arguments; and a real one-node Slurm (slurmctld, slurmd and
 * munged of the test's own, as root, in a scratch directory) on which
 * `xp slurm submit --workers 2` runs a sweep against a scheduler on
 * 127.0.0.1, a worker job is cancelled mid-task and its trial still
 * finishes once, and everything is cancelled at the end. */
#include "remote.h"

static char s_xp[PATH_MAX];

static void s_setup(void)
{
    xpt_setup();
    xptr_bin("XP_CLI_BIN", s_xp);
}

TestSuite(slurm, .init = s_setup, .fini = xpt_teardown, .timeout = 60);

/* Runs `xp slurm` with args (NULL-terminated). */
static xpt_run_result s_xp_slurm(const char *const *args)
{
    char *argv[64] = {s_xp, "slurm"};
    int n = 2;
    for (int i = 0; args[i] && n < 63; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;
    return xpt_run(argv, xpt_dir);
}

static void s_assert_has(const char *text, const char *part)
{
    cr_assert_not_null(strstr(text, part), "'%s' missing from:\n%s", part,
                       text);
}

/* ---------------------------------------------------------- the script */

static const char s_base_script[] =
    "#!/bin/bash\n"
    "#SBATCH --job-name=xp-worker\n"
    "#SBATCH --array=0-0\n"
    "#SBATCH --ntasks=1\n"
    "#SBATCH --signal=B:TERM@120\n"
    "#SBATCH --output=xp-worker-%A_%a.out\n"
    "# xp " XP_VERSION_STRING ": one xp-worker per array element; SIGTERM "
    "drains it (docs/cluster.md)\n"
    "exec 'xp-worker' \\\n"
    "    --connect 'tcp://login1:5555' \\\n"
    "    --plugin '/shared/a.so' \\\n"
    "    --slots \"${SLURM_CPUS_PER_TASK:-1}\" \\\n"
    "    --death-timeout 300 \\\n"
    "    --drain-timeout 90\n";

Test(slurm, script_with_defaults)
{
    const char *args[] = {"script",   "--connect",    "tcp://login1:5555",
                          "--plugin", "/shared/a.so", NULL};
    xpt_run_result r = s_xp_slurm(args);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_str_eq(r.out, s_base_script);
    xpt_run_result_free(&r);
}

/* Each option and the line it gives. */
Test(slurm, script_option_by_option)
{
    static const struct {
        const char *flag, *value, *line;
    } cases[] = {
        {"--workers", "8", "#SBATCH --array=0-7\n"},
        {"--job-name", "sweep1", "#SBATCH --job-name=sweep1\n"},
        {"--partition", "gpu", "#SBATCH --partition=gpu\n"},
        {"--time", "01:00:00", "#SBATCH --time=01:00:00\n"},
        {"--time", "2-12", "#SBATCH --time=2-12\n"},
        {"--cpus-per-task", "4", "#SBATCH --cpus-per-task=4\n"},
        {"--mem", "4G", "#SBATCH --mem=4G\n"},
        {"--account", "proj7", "#SBATCH --account=proj7\n"},
        {"--output", "/scratch/w-%A_%a.log",
         "#SBATCH --output=/scratch/w-%A_%a.log\n"},
        {"--signal", "300", "#SBATCH --signal=B:TERM@300\n"},
        {"--signal", "300", "    --drain-timeout 270\n"},
        {"--extra", "#SBATCH --qos=low",
         "#SBATCH --output=xp-worker-%A_%a.out\n"
         "#SBATCH --qos=low\n"},
        {"--prologue", "module load xp/0.1",
         "drains it (docs/cluster.md)\nmodule load xp/0.1\nexec "},
        {"--worker", "/opt/xp/bin/xp-worker", "exec '/opt/xp/bin/xp-worker' "},
        {"--worker-config", "/shared/w.conf", "    --config '/shared/w.conf' "},
        {"--slots", "3", "    --slots 3 \\\n"},
        {"--key", "/shared/keys/worker.key",
         "    --key '/shared/keys/worker.key' \\\n"},
        {"--server-key", "/shared/keys/scheduler.key",
         "    --server-key '/shared/keys/scheduler.key' \\\n"},
        {"--death-timeout", "60", "    --death-timeout 60 \\\n"},
        {"--lifetime", "3300", "    --lifetime 3300 \\\n"},
        {"--drain-timeout", "20", "    --drain-timeout 20\n"},
        {"--plugin", "/it's/b.so", "    --plugin '/it'\\''s/b.so' \\\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *args[] = {
            "script",       "--connect",   "tcp://login1:5555", "--plugin",
            "/shared/a.so", cases[i].flag, cases[i].value,      NULL};
        xpt_run_result r = s_xp_slurm(args);
        cr_assert_eq(r.status, 0, "%s %s: %s", cases[i].flag, cases[i].value,
                     r.err);
        s_assert_has(r.out, cases[i].line);
        xpt_run_result_free(&r);
    }
    /* --signal 0: no --signal line */
    const char *args[] = {"script",       "--connect", "tcp://h:1", "--plugin",
                          "/shared/a.so", "--signal",  "0",         NULL};
    xpt_run_result r = s_xp_slurm(args);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_null(strstr(r.out, "--signal"), "%s", r.out);
    xpt_run_result_free(&r);
}

/* The same options from a configuration file (--config or
 * $XP_SLURM_CONFIG), the command line winning; --print-config reads
 * back. */
Test(slurm, script_from_a_configuration_file)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/slurm.conf", xpt_dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("# the cluster's\nconnect = tcp://login1:5555\nplugin = "
          "/shared/a.so\ntime = 04:00:00\nworkers = 16\nprologue = \"module "
          "load xp\"\n",
          f);
    fclose(f);
    const char *args[] = {"script", "--config", path, "--workers", "2", NULL};
    xpt_run_result r = s_xp_slurm(args);
    cr_assert_eq(r.status, 0, "%s", r.err);
    s_assert_has(r.out, "#SBATCH --array=0-1\n");
    s_assert_has(r.out, "#SBATCH --time=04:00:00\n");
    s_assert_has(r.out, "\nmodule load xp\nexec 'xp-worker'");
    s_assert_has(r.out, "--plugin '/shared/a.so'");
    xpt_run_result_free(&r);

    setenv("XP_SLURM_CONFIG", path, 1);
    const char *print[] = {"script", "--print-config", NULL};
    r = s_xp_slurm(print);
    unsetenv("XP_SLURM_CONFIG");
    cr_assert_eq(r.status, 0, "%s", r.err);
    s_assert_has(r.out, "workers = 16\n");
    s_assert_has(r.out, "prologue = \"module load xp\"\n");
    s_assert_has(r.out, "time = 04:00:00\n");
    xpt_run_result_free(&r);

    f = fopen(path, "a");
    fputs("partitoin = gpu\n", f);
    fclose(f);
    r = s_xp_slurm(args);
    cr_assert_eq(r.status, 2);
    s_assert_has(r.err, "unknown key 'partitoin'");
    xpt_run_result_free(&r);
}

/* Bad values: one line on stderr, status 2, no script. */
Test(slurm, bad_options_are_refused_with_one_line)
{
    static const struct {
        const char *flag, *value, *says;
    } cases[] = {
        {"--time", "1 hour", "is not a Slurm time"},
        {"--time", "01::00", "is not a Slurm time"},
        {"--workers", "0", "--workers needs an integer from 1"},
        {"--partition", "a b", "is not one word"},
        {"--mem", "4G\n#SBATCH --x", "is not one word"},
        {"--extra", "--qos=low", "does not start with '#SBATCH '"},
        {"--prologue", "a\nb", "holds a line break"},
        {"--nonsense", "1", "unknown or incomplete option '--nonsense'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *args[] = {"script",       "--connect", "tcp://h:1",
                              "--plugin",     "/a.so",     cases[i].flag,
                              cases[i].value, NULL};
        xpt_run_result r = s_xp_slurm(args);
        cr_assert_eq(r.status, 2, "%s %s", cases[i].flag, cases[i].value);
        cr_assert_str_eq(r.out, "");
        s_assert_has(r.err, cases[i].says);
        cr_assert_eq(xpt_count_lines(r.err), 1, "%s", r.err);
        xpt_run_result_free(&r);
    }
    const char *none[] = {"script", "--plugin", "/a.so", NULL};
    unsetenv("XP_SCHEDULER");
    xpt_run_result r = s_xp_slurm(none);
    cr_assert_eq(r.status, 2);
    s_assert_has(r.err, "no scheduler endpoint");
    xpt_run_result_free(&r);
    const char *verb[] = {"launch", NULL};
    r = s_xp_slurm(verb);
    cr_assert_eq(r.status, 2);
    s_assert_has(r.err, "unknown subcommand 'launch'");
    xpt_run_result_free(&r);
    const char *id[] = {"cancel", "12;rm", NULL};
    r = s_xp_slurm(id);
    cr_assert_eq(r.status, 2);
    s_assert_has(r.err, "'12;rm' is not a job id");
    xpt_run_result_free(&r);
}

/* ---------------------------------------------------------- fake Slurm */

static char s_old_path[8192];

/* sbatch, squeue and scancel in xpt_dir/bin, first on PATH: each writes
 * its arguments, one a line, to xpt_dir/NAME.args; sbatch also its
 * standard input to sbatch.stdin and answers 4242;cluster (or fails when
 * $FAKE_SBATCH_FAIL is set). */
static void s_fake_slurm(void)
{
    char dir[PATH_MAX], path[PATH_MAX + 16];
    snprintf(dir, sizeof dir, "%s/bin", xpt_dir);
    cr_assert_eq(mkdir(dir, 0755), 0);
    const char *names[] = {"sbatch", "squeue", "scancel"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f);
        fprintf(f, "#!/bin/sh\nprintf '%%s\\n' \"$@\" > '%s/%s.args'\n",
                xpt_dir, names[i]);
        if (i == 0)
            fprintf(f,
                    "cat > '%s/sbatch.stdin'\n"
                    "if [ -n \"$FAKE_SBATCH_FAIL\" ]; then\n"
                    "  echo 'sbatch: error: invalid partition' >&2; exit 1\n"
                    "fi\necho '4242;cluster'\n",
                    xpt_dir);
        else
            fputs("echo ran\n", f);
        fclose(f);
        chmod(path, 0755);
    }
    snprintf(s_old_path, sizeof s_old_path, "%s",
             getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
    char p[sizeof s_old_path + PATH_MAX];
    snprintf(p, sizeof p, "%s:%s", dir, s_old_path);
    setenv("PATH", p, 1);
}

static char *s_read(const char *name)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", xpt_dir, name);
    return xpt_slurp(path);
}

Test(slurm, submit_status_and_cancel_run_sbatch_squeue_and_scancel)
{
    s_fake_slurm();
    const char *submit[] = {"submit",   "--connect",    "tcp://login1:5555",
                            "--plugin", "/shared/a.so", "--workers",
                            "3",        "--job-name",   "sweep1",
                            NULL};
    xpt_run_result r = s_xp_slurm(submit);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_str_eq(r.out, "4242\n", "the job id alone");
    xpt_run_result_free(&r);
    char *args = s_read("sbatch.args");
    cr_assert_str_eq(args, "--parsable\n");
    free(args);
    /* what sbatch read is what `script` prints */
    const char *script[] = {"script",   "--connect",    "tcp://login1:5555",
                            "--plugin", "/shared/a.so", "--workers",
                            "3",        "--job-name",   "sweep1",
                            NULL};
    r = s_xp_slurm(script);
    char *in = s_read("sbatch.stdin");
    cr_assert_str_eq(in, r.out);
    free(in);
    xpt_run_result_free(&r);

    const char *status[] = {"status", "4242", "4243_1", NULL};
    r = s_xp_slurm(status);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_str_eq(r.out, "ran\n");
    xpt_run_result_free(&r);
    args = s_read("squeue.args");
    cr_assert_str_eq(args, "--array\n--format=%.18i %.9T %.10M %.10l %.12j "
                           "%R\n--jobs\n4242,4243_1\n");
    free(args);

    const char *by_name[] = {"status", "--job-name", "sweep1", NULL};
    r = s_xp_slurm(by_name);
    cr_assert_eq(r.status, 0, "%s", r.err);
    xpt_run_result_free(&r);
    args = s_read("squeue.args");
    s_assert_has(args, "\n--name=sweep1\n--user=");
    free(args);

    const char *cancel[] = {"cancel", "4242_0", NULL};
    r = s_xp_slurm(cancel);
    cr_assert_eq(r.status, 0, "%s", r.err);
    xpt_run_result_free(&r);
    args = s_read("scancel.args");
    cr_assert_str_eq(args, "4242_0\n");
    free(args);

    const char *all[] = {"cancel", NULL};
    r = s_xp_slurm(all);
    cr_assert_eq(r.status, 0, "%s", r.err);
    xpt_run_result_free(&r);
    args = s_read("scancel.args");
    cr_assert_eq(strncmp(args, "--name=xp-worker\n--user=", 24), 0, "%s", args);
    free(args);

    setenv("FAKE_SBATCH_FAIL", "1", 1);
    r = s_xp_slurm(submit);
    unsetenv("FAKE_SBATCH_FAIL");
    cr_assert_eq(r.status, 1);
    cr_assert_str_eq(r.out, "");
    s_assert_has(r.err, "sbatch: error: invalid partition");
    s_assert_has(r.err, "xp slurm: sbatch did not submit the job (status 1)");
    xpt_run_result_free(&r);
    setenv("PATH", s_old_path, 1);
}

/* ---------------------------------------------------------- real Slurm */

/* The test's one-node cluster: munged, slurmctld and slurmd, children of
 * the test (they die with it), in xpt_dir/slurm with ports of their own. */
static pid_t s_daemons[4] = {-1, -1, -1, -1}; /* munged, ctld, slurmd, sched */
static char s_conf[PATH_MAX], s_cluster[300];

static bool s_exists(const char *path)
{
    return access(path, F_OK) == 0;
}

/* Runs a Slurm client with SLURM_CONF set; its output (caller frees) or
 * NULL when it failed. */
static char *s_client(char *const *argv)
{
    xpt_run_result r = xpt_run(argv, xpt_dir);
    if (r.status != 0) {
        xpt_run_result_free(&r);
        return NULL;
    }
    free(r.err);
    return r.out;
}

static void s_write_conf(void)
{
    snprintf(s_conf, sizeof s_conf, "%s/slurm.conf", s_cluster);
    FILE *f = fopen(s_conf, "w");
    cr_assert_not_null(f);
    fprintf(f,
            "ClusterName=xptest\n"
            "SlurmctldHost=localhost(127.0.0.1)\n"
            "SlurmctldPort=%d\nSlurmdPort=%d\n"
            "SlurmUser=root\nSlurmdUser=root\n"
            "AuthType=auth/munge\nCredType=cred/munge\n"
            "AuthInfo=socket=%s/munge.socket\n"
            "StateSaveLocation=%s/state\nSlurmdSpoolDir=%s/spool\n"
            "SlurmctldPidFile=%s/slurmctld.pid\n"
            "SlurmdPidFile=%s/slurmd.pid\n"
            "SlurmctldLogFile=%s/slurmctld.log\n"
            "SlurmdLogFile=%s/slurmd.log\n"
            "ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\n"
            "JobAcctGatherType=jobacct_gather/none\n"
            "AccountingStorageType=accounting_storage/none\n"
            "JobCompType=jobcomp/none\n"
            "SelectType=select/cons_tres\nSelectTypeParameters=CR_CPU\n"
            "SchedulerType=sched/builtin\nMpiDefault=none\n"
            "SwitchType=switch/none\nReturnToService=2\nKillWait=2\n"
            "SlurmdParameters=config_overrides\n"
            "NodeName=xpnode NodeAddr=127.0.0.1 NodeHostname=localhost "
            "CPUs=4 RealMemory=1000 State=UNKNOWN\n"
            "PartitionName=debug Nodes=xpnode Default=YES MaxTime=INFINITE "
            "State=UP\n",
            xptr_free_port(), xptr_free_port(), s_cluster, s_cluster, s_cluster,
            s_cluster, s_cluster, s_cluster, s_cluster);
    fclose(f);
    setenv("SLURM_CONF", s_conf, 1);
}

static void s_munge_key(const char *path)
{
    unsigned char key[1024];
    FILE *r = fopen("/dev/urandom", "rb");
    cr_assert_not_null(r);
    cr_assert_eq(fread(key, 1, sizeof key, r), sizeof key);
    fclose(r);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    fwrite(key, 1, sizeof key, f);
    fclose(f);
    chmod(path, 0400);
}

/* Skips, with the reason and the end of log, when the cluster does not
 * come up. */
static void s_cluster_fails(const char *why, const char *log)
{
    char text[1200];
    char *s = log && s_exists(log) ? xpt_slurp(log) : NULL;
    size_t n = s ? strlen(s) : 0;
    snprintf(text, sizeof text, "%s%s%s", why, s ? "; log ends: " : "",
             s ? s + (n > 800 ? n - 800 : 0) : "");
    free(s);
    unsetenv("SLURM_CONF");
    xpt_skip(text);
}

/* Starts the cluster and waits for sinfo to show the node idle, or
 * skips saying why. */
static void s_start_cluster(void)
{
    const char *bins[] = {"/usr/sbin/munged", "/usr/sbin/slurmctld",
                          "/usr/sbin/slurmd", "/usr/bin/sbatch",
                          "/usr/bin/sinfo",   "/usr/bin/squeue",
                          "/usr/bin/scancel"};
    for (size_t i = 0; i < sizeof bins / sizeof *bins; i++)
        if (access(bins[i], X_OK) != 0) {
            char why[256];
            snprintf(why, sizeof why,
                     "%s is not installed (Debian: slurm-wlm, munge)", bins[i]);
            xpt_skip(why);
        }
    if (geteuid() != 0)
        xpt_skip("a private Slurm cluster needs root (slurmd runs jobs as "
                 "their user)");
    snprintf(s_cluster, sizeof s_cluster, "%s/slurm", xpt_dir);
    char path[PATH_MAX + 32], log[PATH_MAX + 32];
    /* munged wants the directories of its socket searchable by all */
    chmod(xpt_dir, 0711);
    mkdir(s_cluster, 0711);
    snprintf(path, sizeof path, "%s/state", s_cluster);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/spool", s_cluster);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/munge.key", s_cluster);
    s_munge_key(path);
    char key[PATH_MAX + 48], sock[PATH_MAX + 48], pid[PATH_MAX + 48],
        mlog[PATH_MAX + 48], seed[PATH_MAX + 48];
    snprintf(key, sizeof key, "--key-file=%s", path);
    snprintf(sock, sizeof sock, "--socket=%s/munge.socket", s_cluster);
    snprintf(pid, sizeof pid, "--pid-file=%s/munged.pid", s_cluster);
    snprintf(mlog, sizeof mlog, "--log-file=%s/munged.log", s_cluster);
    snprintf(seed, sizeof seed, "--seed-file=%s/munge.seed", s_cluster);
    char *munged[] = {
        "/usr/sbin/munged", "-F", key, sock, pid, mlog, seed, NULL};
    snprintf(log, sizeof log, "%s/munged.out", s_cluster);
    s_daemons[0] = xpt_spawn(munged, s_cluster, log, log);
    snprintf(path, sizeof path, "%s/munge.socket", s_cluster);
    for (int i = 0; i < 100 && !s_exists(path); i++)
        xpt_sleep(0.05);
    if (!s_exists(path))
        s_cluster_fails("munged did not start", log);
    s_write_conf();
    char *ctld[] = {"/usr/sbin/slurmctld", "-D", "-f", s_conf, NULL};
    snprintf(log, sizeof log, "%s/slurmctld.log", s_cluster);
    s_daemons[1] = xpt_spawn(ctld, s_cluster, NULL, NULL);
    char *slurmd[] = {
        "/usr/sbin/slurmd", "-D", "-N", "xpnode", "-f", s_conf, NULL};
    s_daemons[2] = xpt_spawn(slurmd, s_cluster, NULL, NULL);
    char *sinfo[] = {"/usr/bin/sinfo", "--noheader", "--format=%t", NULL};
    bool idle = false;
    for (double end = xpt_now() + 30; !idle && xpt_now() < end;
         xpt_sleep(0.2)) {
        char *out = s_client(sinfo);
        idle = out && strncmp(out, "idle", 4) == 0;
        free(out);
    }
    if (!idle)
        s_cluster_fails("the Slurm node did not become idle in 30 s", log);
}

/* Waits until squeue shows none of job's elements (at most seconds). */
static bool s_job_gone(const char *job, double seconds)
{
    char *squeue[] = {"/usr/bin/squeue", "--noheader", "--array",
                      "--jobs",          (char *)job,  NULL};
    for (double end = xpt_now() + seconds; xpt_now() < end; xpt_sleep(0.2)) {
        char *out = s_client(squeue);
        bool gone = !out || !*out;
        free(out);
        if (gone)
            return true;
    }
    return false;
}

static void s_cluster_teardown(void)
{
    if (s_conf[0]) {
        char *scancel[] = {"/usr/bin/scancel", "--user=root", NULL};
        xpt_run_result r = xpt_run(scancel, xpt_dir);
        xpt_run_result_free(&r);
    }
    xptr_stop(&s_daemons[3]);
    for (int i = 2; i >= 0; i--)
        xptr_stop(&s_daemons[i]);
    unsetenv("SLURM_CONF");
    s_conf[0] = '\0';
    xpt_teardown();
}

TestSuite(slurm_cluster, .init = s_setup, .fini = s_cluster_teardown,
          .timeout = 90);

/* Scheduler log lines announcing a worker. */
static size_t s_registered(const char *log)
{
    char *s = s_exists(log) ? xpt_slurp(log) : NULL;
    size_t n = 0;
    for (const char *p = s; p && (p = strstr(p, "connected with")); p++)
        n++;
    free(s);
    return n;
}

Test(slurm_cluster, workers_as_an_array_job_run_a_sweep)
{
    s_start_cluster();
    char sched[PATH_MAX], worker[PATH_MAX], xpsubmit[PATH_MAX], so[PATH_MAX],
        why[256];
    xptr_bin("XP_SCHEDULER_BIN", sched);
    xptr_bin("XP_WORKER_BIN", worker);
    xptr_bin("XP_XPSUBMIT_BIN", xpsubmit);
    if (!xpt_example("sleep_experiment.so", so, why))
        xpt_skip(why);
    char endpoint[64], slog[PATH_MAX + 32], output[PATH_MAX + 32];
    snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", xptr_free_port());
    snprintf(slog, sizeof slog, "%s/scheduler.log", xpt_dir);
    char *sargv[] = {sched,   "--bind",         endpoint, "--backend",
                     xpt_dir, "--heartbeat-ms", "200",    NULL};
    s_daemons[3] = xpt_spawn(sargv, xpt_dir, NULL, slog);

    snprintf(output, sizeof output, "%s/w-%%A_%%a.out", s_cluster);
    const char *submit[] = {
        "submit", "--workers",       "2",        "--worker",
        worker,   "--connect",       endpoint,   "--plugin",
        so,       "--slots",         "1",        "--output",
        output,   "--death-timeout", "10",       "--drain-timeout",
        "1",      "--time",          "00:10:00", NULL};
    xpt_run_result r = s_xp_slurm(submit);
    cr_assert_eq(r.status, 0, "xp slurm submit: %s", r.err);
    char job[64];
    snprintf(job, sizeof job, "%.*s", (int)strcspn(r.out, "\n"), r.out);
    xpt_run_result_free(&r);
    cr_assert_gt(strlen(job), 0);
    for (double end = xpt_now() + 30; s_registered(slog) < 2 && xpt_now() < end;
         xpt_sleep(0.1))
        ;
    cr_assert_eq(s_registered(slog), 2,
                 "the two array elements did not "
                 "register");

    /* both workers on a long step, then element 0 is cancelled */
    char *sweep[] = {xpsubmit,
                     "-s",
                     endpoint,
                     "sleep_pj",
                     "seconds=2,2.01,0.2,0.21,0.22,0.23",
                     NULL};
    r = xpt_run(sweep, xpt_dir);
    cr_assert_eq(r.status, 0, "xpsubmit: %s", r.err);
    xpt_run_result_free(&r);
    xp_experiment *ex = NULL;
    xp_error_t err;
    for (int i = 0; i < 100 && !ex; i++, xpt_sleep(0.05))
        ex = xpt_open_existing("sleep_pj", &err);
    cr_assert_not_null(ex, "%s", err.message);
    for (double end = xpt_now() + 10; xpt_now() < end; xpt_sleep(0.05)) {
        xp_value *t1 = xpt_trial(ex, 1), *t2 = xpt_trial(ex, 2);
        bool both = strcmp(xpt_get_str(t1, "status"), "running") == 0 &&
                    strcmp(xpt_get_str(t2, "status"), "running") == 0;
        xp_value_destroy(&t1);
        xp_value_destroy(&t2);
        if (both)
            break;
    }
    char element[80];
    snprintf(element, sizeof element, "%s_0", job);
    const char *cancel0[] = {"cancel", element, NULL};
    r = s_xp_slurm(cancel0);
    cr_assert_eq(r.status, 0, "xp slurm cancel: %s", r.err);
    xpt_run_result_free(&r);
    cr_assert(s_job_gone(element, 20), "element 0 still runs");

    int handed_back = 0;
    for (int64_t id = 1; id <= 6; id++) {
        xp_value *t = NULL;
        for (double end = xpt_now() + 30; xpt_now() < end; xpt_sleep(0.1)) {
            xp_value_destroy(&t);
            t = xpt_trial(ex, id);
            const char *st = xpt_get_str(t, "status");
            if (strcmp(st, "queued") != 0 && strcmp(st, "running") != 0)
                break;
        }
        cr_assert_str_eq(xpt_get_str(t, "status"), "succeeded", "trial %lld",
                         (long long)id);
        const xp_value *step =
            xp_value_get(xpt_field(t, "steps"), "sleep_seconds");
        cr_assert_not_null(step, "%s", xpt_json(t));
        const xp_value *j = xp_value_get(step, "job");
        cr_assert_not_null(j, "no job: %s", xpt_json(t));
        cr_assert_str_eq(xpt_get_str(j, "id"), job);
        cr_assert_str_eq(xpt_get_str(j, "node"), "xpnode");
        int64_t index = xpt_get_int(j, "array_index");
        cr_assert(index == 0 || index == 1, "index %lld", (long long)index);
        if (xpt_get_int(step, "attempt") > 1) {
            handed_back++;
            cr_assert_eq(index, 1, "ran again on the remaining element");
        }
        xp_value_destroy(&t);
    }
    cr_assert_eq(xpt_last_id(ex), 6, "a trial was recorded twice");
    cr_assert_eq(handed_back, 1, "the cancelled element's step ran again");
    xp_experiment_destroy(&ex);

    const char *status[] = {"status", job, NULL};
    r = s_xp_slurm(status);
    cr_assert_eq(r.status, 0, "xp slurm status: %s", r.err);
    s_assert_has(r.out, "_1");
    s_assert_has(r.out, "RUNNING");
    xpt_run_result_free(&r);
    const char *cancel[] = {"cancel", job, NULL};
    r = s_xp_slurm(cancel);
    cr_assert_eq(r.status, 0, "xp slurm cancel: %s", r.err);
    xpt_run_result_free(&r);
    cr_assert(s_job_gone(job, 20), "the job still runs after cancel");
}
