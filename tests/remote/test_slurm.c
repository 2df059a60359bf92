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
