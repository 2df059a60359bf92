/* test_curve.c — security of the scheduler as real processes on
 * loopback: `xp keygen` pairs, CURVE with --keys (an authorized worker and
 * client run a trial; an unknown client key, a client without a key, a
 * client with the wrong server key and an unknown worker are refused and
 * nothing is recorded), the per-client queued-trial limit, and the
 * non-loopback bind rule. */
#include "remote.h"

#include <czmq.h>
#include <sys/stat.h>

static char s_endpoint[64];
static pid_t s_sched = -1;
static pid_t s_workers[4];
static int s_n_workers;
static char s_sched_bin[PATH_MAX], s_worker_bin[PATH_MAX];
static char s_keys[PATH_MAX]; /* the scheduler's --keys directory */
static char s_own[PATH_MAX];  /* pairs of workers and clients */

static void s_keygen(const char *dir, const char *name)
{
    char *pub = NULL;
    xp_error_t err = {0};
    cr_assert_eq(xp_keygen(dir, name, &pub, &err), 0, "keygen %s: %s", name,
                 err.message);
    xp_free(pub);
}

/* Copies a public key into the scheduler's authorized directory. */
static void s_authorize(const char *name)
{
    char from[PATH_MAX + 64], to[PATH_MAX + 64];
    snprintf(from, sizeof from, "%s/%s.key", s_own, name);
    snprintf(to, sizeof to, "%s/authorized/%s.key", s_keys, name);
    char *text = xpt_slurp(from);
    FILE *f = fopen(to, "w");
    cr_assert_not_null(f, "cannot write %s", to);
    fputs(text, f);
    fclose(f);
    free(text);
}

static void s_setup(void)
{
    xpt_setup();
    xptr_bin("XP_SCHEDULER_BIN", s_sched_bin);
    xptr_bin("XP_WORKER_BIN", s_worker_bin);
    snprintf(s_endpoint, sizeof s_endpoint, "tcp://127.0.0.1:%d",
             xptr_free_port());
    snprintf(s_keys, sizeof s_keys, "%s/keys", xpt_dir);
    snprintf(s_own, sizeof s_own, "%s/own", xpt_dir);
    char authorized[PATH_MAX + 16];
    snprintf(authorized, sizeof authorized, "%s/authorized", s_keys);
    s_keygen(s_keys, "scheduler");
    cr_assert_eq(mkdir(authorized, 0755), 0, "mkdir: %s", strerror(errno));
    s_keygen(s_own, "worker");
    s_keygen(s_own, "client");
    s_keygen(s_own, "stranger");
    s_authorize("worker");
    s_authorize("client");
    s_n_workers = 0;
    s_sched = -1;
}

/* Every daemon must exit cleanly on SIGTERM: a non-zero status fails the
 * test (also what a sanitizer's report at exit gives). */
static void s_teardown(void)
{
    xptr_teardown(s_workers, s_n_workers, &s_sched);
}

TestSuite(curve, .init = s_setup, .fini = s_teardown, .timeout = 60);

/* Starts the scheduler with up to two more option pairs (NULL ends). */
static void s_start_scheduler2(const char *o1, const char *v1, const char *o2,
                               const char *v2)
{
    char log[PATH_MAX];
    snprintf(log, sizeof log, "%s/scheduler.log", xpt_dir);
    char *argv[] = {s_sched_bin, "--bind",         s_endpoint, "--backend",
                    xpt_dir,     "--heartbeat-ms", "200",      (char *)o1,
                    (char *)v1,  (char *)o2,       (char *)v2, NULL};
    s_sched = xpt_spawn(argv, xpt_dir, NULL, log);
    xpt_sleep(0.3);
}

static void s_start_scheduler(const char *extra, const char *value)
{
    s_start_scheduler2(extra, value, NULL, NULL);
}

/* Starts a worker with key (NULL: none) and plugin; gets_in: it must
 * register (waited for, a loaded machine starts it slowly), else it is
 * given half a second to try. */
static void s_start_worker(const char *key, const char *plugin, bool gets_in)
{
    char so[PATH_MAX], why[256], log[PATH_MAX], own[PATH_MAX + 32],
        server[PATH_MAX + 32];
    if (!xpt_example(plugin, so, why))
        xpt_skip(why);
    snprintf(log, sizeof log, "%s/worker%d.log", xpt_dir, s_n_workers);
    snprintf(own, sizeof own, "%s/%s.key", s_own, key ? key : "");
    snprintf(server, sizeof server, "%s/scheduler.key", s_keys);
    char *argv[] = {s_worker_bin, "--connect", s_endpoint, "--slots",
                    "1",          "--plugin",  so,         "--heartbeat-ms",
                    "200",        "--key",     own,        "--server-key",
                    server,       NULL};
    if (!key)
        argv[9] = NULL; /* no keys */
    s_workers[s_n_workers++] = xpt_spawn(argv, xpt_dir, NULL, log);
    if (!gets_in)
        xpt_sleep(0.5);
    else if (!xptr_wait_log(log, "Registered with the scheduler", 20))
        cr_assert_fail("the worker did not register: %s", xpt_slurp(log));
}

/* A client with key `key` (NULL: none) and server key `server` (NULL:
 * the scheduler's). */
static xp_client *s_client(const char *key, const char *server)
{
    char own[PATH_MAX + 32], srv[PATH_MAX + 32];
    snprintf(own, sizeof own, "%s/%s.key", s_own, key ? key : "");
    if (server)
        snprintf(srv, sizeof srv, "%s/%s.key", s_own, server);
    else
        snprintf(srv, sizeof srv, "%s/scheduler.key", s_keys);
    xp_client *c = NULL;
    xp_error_t err = {0};
    cr_assert_eq(xp_client_connect_secure(&c, s_endpoint, 1500, key ? own : "",
                                          key ? srv : "", &err),
                 0, "connect: %s", err.message);
    return c;
}

static xp_value *s_one_trial(const char *param, int64_t v)
{
    xp_value *trials = xp_value_new();
    xp_set_array(trials);
    xp_value *spec = xp_array_append(trials);
    xp_set_document(spec);
    xp_value *p = xp_document_set(spec, "parameters");
    xp_set_document(p);
    xp_set_int64(xp_document_set(p, param), v);
    return trials;
}

/* One trial of simple_experiment_pj: a = 4, b = 5 (its result is 10). */
static xp_value *s_simple_trial(void)
{
    xp_value *trials = s_one_trial("a", 4);
    xp_value *p =
        (xp_value *)xp_value_get(xp_value_at(trials, 0), "parameters");
    xp_set_int64(xp_document_set(p, "b"), 5);
    return trials;
}

static xp_progress s_wait(xp_client *c, int64_t batch, double seconds)
{
    return xptr_wait(c, batch, seconds);
}

static int s_submit(xp_client *c, const char *exp, const char *param, int64_t v,
                    xp_error_t *err)
{
    xp_value *trials = s_one_trial(param, v);
    int64_t batch = 0, *ids = NULL;
    size_t n = 0;
    int rc = xp_client_submit(c, exp, trials, NULL, &batch, &ids, &n, err);
    xp_free(ids);
    xp_value_destroy(&trials);
    return rc;
}

static int64_t s_recorded(const char *id)
{
    xp_error_t err;
    xp_experiment *ex = xpt_open_existing(id, &err);
    if (!ex)
        return 0; /* never created: nothing recorded */
    int64_t n = xpt_last_id(ex);
    xp_experiment_destroy(&ex);
    return n;
}

/* ---------------------------------------------------------------- keygen */

Test(curve, keygen_writes_a_private_secret_and_never_replaces)
{
    char pub[PATH_MAX + 32], sec[PATH_MAX + 32];
    snprintf(pub, sizeof pub, "%s/client.key", s_own);
    snprintf(sec, sizeof sec, "%s/client.key_secret", s_own);
    struct stat st;
    cr_assert_eq(stat(sec, &st), 0, "no secret file");
    cr_assert_eq(st.st_mode & 0777, 0600, "secret mode %o", st.st_mode & 0777);
    char *before = xpt_slurp(sec);
    cr_assert_not_null(strstr(before, "secret-key"), "%s", before);
    char *p = xpt_slurp(pub);
    cr_assert_null(strstr(p, "secret-key"), "public file holds the secret");
    free(p);
    char *path = NULL;
    xp_error_t err = {0};
    cr_assert_neq(xp_keygen(s_own, "client", &path, &err), 0,
                  "replaced a key pair");
    cr_assert_eq(err.code, XP_EEXIST, "code %u: %s", err.code, err.message);
    char *after = xpt_slurp(sec);
    cr_assert_str_eq(before, after, "secret changed");
    free(before);
    free(after);
    cr_assert_neq(xp_keygen(s_own, "../escape", &path, &err), 0,
                  "accepted a name with a path");

    /* The command: two paths on stdout; again: one line, exit 2. */
    const char *cli = getenv("XP_CLI_BIN");
    if (!cli || access(cli, X_OK) != 0)
        xpt_skip("XP_CLI_BIN is not set (run through `meson test`)");
    char *argv[] = {(char *)cli, "keygen", "bob", "--dir", s_own, NULL};
    xpt_run_result r = xpt_run(argv, xpt_dir);
    cr_assert_eq(r.status, 0, "status %d: %s", r.status, r.err);
    cr_assert_eq(xpt_count_lines(r.out), 2, "%s", r.out);
    cr_assert_not_null(strstr(r.out, "bob.key_secret"), "%s", r.out);
    xpt_run_result_free(&r);
    r = xpt_run(argv, xpt_dir);
    cr_assert_eq(r.status, 2, "status %d", r.status);
    cr_assert_eq(xpt_count_lines(r.err), 1, "%s", r.err);
    cr_assert_not_null(strstr(r.err, "already exists"), "%s", r.err);
    xpt_run_result_free(&r);
}

/* ---------------------------------------------------------------- CURVE */

Test(curve, authorized_worker_and_client_run_a_trial)
{
    s_start_scheduler("--keys", s_keys);
    s_start_worker("worker", "simple_experiment.so", true);
    xp_client *c = s_client("client", NULL);
    xp_value *trials = s_simple_trial();
    int64_t batch = 0, *ids = NULL;
    size_t n = 0;
    xp_error_t err = {0};
    cr_assert_eq(xp_client_submit(c, "simple_experiment_pj", trials, NULL,
                                  &batch, &ids, &n, &err),
                 0, "submit: %s", err.message);
    int64_t cursor = 0;
    xp_progress p = {0};
    for (double end = xpt_now() + 10; xpt_now() < end;) {
        cr_assert_eq(xp_client_progress(c, batch, &cursor, &p, NULL, &err), 0,
                     "%s", err.message);
        if (p.done + p.failed >= p.total)
            break;
        xpt_sleep(0.05);
    }
    cr_assert_eq(p.done, 1, "done %lld failed %lld", (long long)p.done,
                 (long long)p.failed);
    xp_experiment *ex = xpt_open_existing("simple_experiment_pj", &err);
    cr_assert_not_null(ex, "%s", err.message);
    xp_value *t = xpt_trial(ex, ids[0]);
    cr_assert_eq(xpt_get_int(t, "result"), 10);
    xp_value_destroy(&t);
    xp_experiment_destroy(&ex);
    xp_free(ids);
    xp_value_destroy(&trials);
    xp_client_destroy(&c);
}

static void s_refused(const char *key, const char *server)
{
    s_start_scheduler("--keys", s_keys);
    s_start_worker("worker", "simple_experiment.so", true);
    xp_client *c = s_client(key, server);
    xp_error_t err = {0};
    cr_assert_neq(s_submit(c, "simple_experiment_pj", "a", 1, &err), 0,
                  "a client with key %s / server key %s got in",
                  key ? key : "(none)", server ? server : "(right)");
    cr_assert_not_null(strstr(err.message, "no answer"), "%s", err.message);
    cr_assert_null(strchr(err.message, '\n'), "multi-line: %s", err.message);
    xp_client_destroy(&c);
    cr_assert_eq(s_recorded("simple_experiment_pj"), 0, "a trial recorded");
    char log[PATH_MAX + 16];
    snprintf(log, sizeof log, "%s/scheduler.log", xpt_dir);
    bool logged = false;
    char *text = NULL;
    for (double end = xpt_now() + 3; !logged && xpt_now() < end;) {
        free(text);
        text = xpt_slurp(log);
        logged = strstr(text, "Refused a connection") != NULL;
        if (!logged)
            xpt_sleep(0.1);
    }
    if (!logged) {
        char shown[2048];
        snprintf(shown, sizeof shown, "%s", text);
        free(text);
        cr_assert_fail("the refusal is not logged; log:\n%s", shown);
    }
    free(text);
}

Test(curve, unknown_client_key_is_refused)
{
    s_refused("stranger", NULL);
}

Test(curve, client_without_a_key_is_refused)
{
    s_refused(NULL, NULL);
}

Test(curve, client_with_the_wrong_server_key_is_refused)
{
    s_refused("client", "worker");
}

Test(curve, unknown_worker_gets_no_task)
{
    s_start_scheduler("--keys", s_keys);
    s_start_worker("stranger", "simple_experiment.so", false);
    s_start_worker(NULL, "simple_experiment.so", false);
    xp_client *c = s_client("client", NULL);
    xp_error_t err = {0};
    cr_assert_neq(s_submit(c, "simple_experiment_pj", "a", 1, &err), 0,
                  "an unauthorized worker registered its experiment");
    cr_assert_not_null(strstr(err.message, "no worker has registered"), "%s",
                       err.message);
    xp_client_destroy(&c);
    cr_assert_eq(s_recorded("simple_experiment_pj"), 0, "a trial recorded");
}

Test(curve, keys_directory_must_hold_the_scheduler_pair)
{
    char empty[PATH_MAX + 8];
    snprintf(empty, sizeof empty, "%s/empty", xpt_dir);
    cr_assert_eq(mkdir(empty, 0755), 0);
    char *argv[] = {s_sched_bin, "--bind", s_endpoint, "--backend",
                    xpt_dir,     "--keys", empty,      NULL};
    xpt_run_result r = xpt_run(argv, xpt_dir);
    cr_assert_eq(r.status, 1, "status %d", r.status);
    cr_assert_eq(xpt_count_lines(r.err), 1, "%s", r.err);
    cr_assert_not_null(strstr(r.err, "authorized"), "%s", r.err);
    xpt_run_result_free(&r);
}

Test(curve, public_bind_needs_keys_or_insecure)
{
    char *open[] = {s_sched_bin, "--bind", "tcp://0.0.0.0:5999",
                    "--print-config", NULL};
    xpt_run_result r = xpt_run(open, xpt_dir);
    cr_assert_eq(r.status, 2, "public bind without keys: %d", r.status);
    cr_assert_not_null(strstr(r.err, "--keys"), "%s", r.err);
    xpt_run_result_free(&r);
    char *keyed[] = {s_sched_bin, "--bind", "tcp://0.0.0.0:5999",
                     "--keys",    s_keys,   "--print-config",
                     NULL};
    r = xpt_run(keyed, xpt_dir);
    cr_assert_eq(r.status, 0, "public bind with keys: %d %s", r.status, r.err);
    cr_assert_not_null(strstr(r.out, "keys = "), "%s", r.out);
    xpt_run_result_free(&r);
}

/* ---------------------------------------------------------------- limits */

Test(curve, per_client_queued_trial_limit)
{
    s_start_scheduler("--max-queued-per-client", "3");
    s_start_worker(NULL, "sleep_experiment.so", true);
    xp_client *c = s_client(NULL, NULL);
    xp_value *two = xptr_trials(2, "seconds", 20.0, 0);
    int64_t batch, *ids = NULL;
    size_t n = 0;
    xp_error_t err = {0};
    cr_assert_eq(
        xp_client_submit(c, "sleep_pj", two, NULL, &batch, &ids, &n, &err), 0,
        "first two: %s", err.message);
    xp_free(ids);
    /* Two more would make four unfinished: refused whole. */
    cr_assert_neq(
        xp_client_submit(c, "sleep_pj", two, NULL, &batch, &ids, &n, &err), 0,
        "went past the limit");
    cr_assert_not_null(strstr(err.message, "limit of 3"), "%s", err.message);
    cr_assert_eq(s_recorded("sleep_pj"), 2, "refused trials recorded");
    /* One more is within it. */
    xp_value *one = s_one_trial("seconds", 20);
    cr_assert_eq(
        xp_client_submit(c, "sleep_pj", one, NULL, &batch, &ids, &n, &err), 0,
        "third: %s", err.message);
    xp_free(ids);
    cr_assert_eq(s_recorded("sleep_pj"), 3);
    xp_value_destroy(&one);
    xp_value_destroy(&two);
    xp_client_destroy(&c);
}

/* Under CURVE a client is its public key: two connections with the same
 * key share one limit. */
Test(curve, limit_follows_the_client_key_across_connections)
{
    s_start_scheduler2("--keys", s_keys, "--max-queued-per-client", "3");
    s_start_worker("worker", "sleep_experiment.so", true);
    xp_error_t err = {0};
    xp_client *c = s_client("client", NULL);
    xp_value *two = xptr_trials(2, "seconds", 20.0, 0);
    int64_t batch, *ids = NULL;
    size_t n = 0;
    cr_assert_eq(
        xp_client_submit(c, "sleep_pj", two, NULL, &batch, &ids, &n, &err), 0,
        "first connection: %s", err.message);
    xp_free(ids);
    xp_client_destroy(&c);
    c = s_client("client", NULL); /* a new connection, the same key */
    cr_assert_neq(
        xp_client_submit(c, "sleep_pj", two, NULL, &batch, &ids, &n, &err), 0,
        "the limit did not follow the key");
    cr_assert_not_null(strstr(err.message, "limit of 3"), "%s", err.message);
    xp_client_destroy(&c);
    /* Another key has a limit of its own. */
    char own[PATH_MAX + 32];
    snprintf(own, sizeof own, "%s/worker.key", s_own);
    char srv[PATH_MAX + 32];
    snprintf(srv, sizeof srv, "%s/scheduler.key", s_keys);
    cr_assert_eq(xp_client_connect_secure(&c, s_endpoint, 1500, own, srv, &err),
                 0, "%s", err.message);
    cr_assert_eq(
        xp_client_submit(c, "sleep_pj", two, NULL, &batch, &ids, &n, &err), 0,
        "another key: %s", err.message);
    xp_free(ids);
    xp_client_destroy(&c);
    xp_value_destroy(&two);
}

/* A key's name is checked as a key's, not as an experiment id. */
Test(curve, keygen_refuses_a_path_as_a_key_name)
{
    char *pub = NULL;
    xp_error_t err;
    cr_assert_eq(xp_keygen(s_own, "../k", &pub, &err), -1);
    cr_assert_null(pub);
    cr_assert(strstr(err.message, "invalid key name '../k'") != NULL, "%s",
              err.message);
}

/* A scheduler with keys, a worker and the client "client", which
 * submitted trials of simple_experiment_pj as *batch. */
static xp_client *s_keyed_batch(const xp_value *trials, int64_t *batch)
{
    s_start_scheduler("--keys", s_keys);
    s_start_worker("worker", "simple_experiment.so", true);
    xp_client *c = s_client("client", NULL);
    int64_t *ids = NULL;
    size_t n = 0;
    xp_error_t err = {0};
    cr_assert_eq(xp_client_submit(c, "simple_experiment_pj", trials, NULL,
                                  batch, &ids, &n, &err),
                 0, "submit: %s", err.message);
    xp_free(ids);
    return c;
}

/* Under CURVE a batch is its client key's: another key is told "unknown
 * batch"; a new connection with the owner's key reads it. */
Test(curve, batch_answers_only_its_owner_key)
{
    xp_value *trials = s_simple_trial();
    int64_t batch = 0, cursor = 0;
    xp_error_t err = {0};
    xp_client *c = s_keyed_batch(trials, &batch);
    xp_value_destroy(&trials);
    xp_client_destroy(&c);
    xp_client *other = s_client("worker", NULL); /* another key */
    xp_progress p = {0};
    cr_assert_neq(xp_client_progress(other, batch, &cursor, &p, NULL, &err), 0,
                  "another key read the batch");
    cr_assert_str_eq(err.message, "scheduler: unknown batch");
    xp_client_destroy(&other);
    c = s_client("client", NULL);
    p = s_wait(c, batch, 10);
    cr_assert_eq(p.done, 1, "done %lld", (long long)p.done);
    xp_client_destroy(&c);
}

/* ---------------------------------------------------------------- refusals
 * and withdrawals */

/* The Z85 public key of pair name (in s_own) into out[41]. */
static void s_public_text(const char *name, char *out)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/%s.key", s_own, name);
    zcert_t *cert = zcert_load(path);
    cr_assert_not_null(cert, "cannot load %s", path);
    snprintf(out, 41, "%s", zcert_public_txt(cert));
    zcert_destroy(&cert);
}

/* The scheduler's log, once it holds text (or after seconds). Caller
 * frees. */
static char *s_log_with(const char *text, double seconds)
{
    char log[PATH_MAX + 16];
    snprintf(log, sizeof log, "%s/scheduler.log", xpt_dir);
    char *all = xpt_slurp(log);
    for (double end = xpt_now() + seconds;
         !strstr(all, text) && xpt_now() < end; xpt_sleep(0.05)) {
        free(all);
        all = xpt_slurp(log);
    }
    return all;
}

/* A key that is not authorized is logged as such, with the key, once. */
Test(curve, refused_key_is_logged_with_the_key)
{
    s_refused("stranger", NULL);
    char key[41];
    s_public_text("stranger", key);
    char *log = s_log_with(key, 2);
    const char *line = strstr(log, key);
    cr_assert_not_null(line, "the refused key is not in the log:\n%s", log);
    const char *start = line;
    while (start > log && start[-1] != '\n')
        start--;
    const char *end = strchr(line, '\n');
    char shown[512];
    snprintf(shown, sizeof shown, "%.*s",
             (int)(end ? end - start : (long)strlen(start)), start);
    cr_assert_not_null(strstr(shown, "Refused a connection"), "%s", shown);
    cr_assert_not_null(strstr(shown, "not authorized"), "%s", shown);
    cr_assert_null(strstr(log, "no valid CURVE handshake"),
                   "an unauthorized key is logged as a bad handshake:\n%s",
                   log);
    cr_assert_null(strstr(line + 1, key), "logged more than once:\n%s", log);
    free(log);
}

/* Removes name's public key from the scheduler's authorized directory
 * and gives the scheduler a few heartbeats to see it. */
static void s_withdraw(const char *name)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/authorized/%s.key", s_keys, name);
    cr_assert_eq(unlink(path), 0, "unlink %s: %s", path, strerror(errno));
    xpt_sleep(0.8);
}

/* A key withdrawn from authorized/ used to keep working on the
 * connections it already had: the client's next SUBMIT and STATUS are
 * refused "not authorized" and nothing more is recorded. */
Test(curve, withdrawn_client_key_is_refused_on_its_connection)
{
    xp_value *trials = s_simple_trial();
    int64_t batch = 0, *ids = NULL, cursor = 0;
    size_t n = 0;
    xp_error_t err = {0};
    xp_client *c = s_keyed_batch(trials, &batch);
    xp_progress p = s_wait(c, batch, 10);
    cr_assert_eq(p.done, 1);
    s_withdraw("client");
    cr_assert_neq(xp_client_submit(c, "simple_experiment_pj", trials, NULL,
                                   &batch, &ids, &n, &err),
                  0, "a withdrawn key submitted on its old connection");
    cr_assert_str_eq(err.message, "scheduler: not authorized");
    cursor = 0;
    cr_assert_neq(xp_client_progress(c, batch, &cursor, &p, NULL, &err), 0,
                  "a withdrawn key read its batch");
    cr_assert_str_eq(err.message, "scheduler: not authorized");
    cr_assert_eq(s_recorded("simple_experiment_pj"), 1, "a trial recorded");
    xp_client_destroy(&c);
    /* A new connection does not get in either. */
    c = s_client("client", NULL);
    cr_assert_neq(s_submit(c, "simple_experiment_pj", "a", 1, &err), 0);
    cr_assert_not_null(strstr(err.message, "no answer"), "%s", err.message);
    xp_client_destroy(&c);
    xp_value_destroy(&trials);
}

/* A worker whose key is withdrawn is dropped: its running task goes to
 * another worker (attempt 2) and the trial succeeds there. */
Test(curve, withdrawn_worker_key_loses_the_worker)
{
    s_keygen(s_own, "worker2");
    s_authorize("worker2");
    s_start_scheduler("--keys", s_keys);
    s_start_worker("worker", "sleep_experiment.so", true);
    xp_client *c = s_client("client", NULL);
    xp_value *trials = s_one_trial("seconds", 2);
    int64_t batch = 0, *ids = NULL, cursor = 0;
    size_t n = 0;
    xp_error_t err = {0};
    cr_assert_eq(
        xp_client_submit(c, "sleep_pj", trials, NULL, &batch, &ids, &n, &err),
        0, "submit: %s", err.message);
    xp_progress p = {0};
    for (double end = xpt_now() + 5; p.running == 0 && xpt_now() < end;
         xpt_sleep(0.05)) {
        cursor = 0;
        cr_assert_eq(xp_client_progress(c, batch, &cursor, &p, NULL, &err), 0,
                     "%s", err.message);
    }
    cr_assert_eq(p.running, 1, "the step did not start");
    s_withdraw("worker");
    s_start_worker("worker2", "sleep_experiment.so", true);
    p = s_wait(c, batch, 10);
    cr_assert_eq(p.done, 1, "done %lld failed %lld", (long long)p.done,
                 (long long)p.failed);
    xp_experiment *ex = xpt_open_existing("sleep_pj", &err);
    cr_assert_not_null(ex, "%s", err.message);
    xp_value *t = xpt_trial(ex, ids[0]);
    const xp_value *step = xpt_field(xpt_field(t, "steps"), "sleep_seconds");
    cr_assert_eq(xpt_get_int(step, "attempt"), 2,
                 "the step ran to its end on the withdrawn worker");
    xp_value_destroy(&t);
    xp_experiment_destroy(&ex);
    char *log = s_log_with("its key was withdrawn", 1);
    cr_assert_not_null(strstr(log, "its key was withdrawn"), "%s", log);
    free(log);
    /* The withdrawn worker, told at each heartbeat, says it once. */
    char wlog[PATH_MAX + 16];
    snprintf(wlog, sizeof wlog, "%s/worker0.log", xpt_dir);
    log = xpt_slurp(wlog);
    const char *said = strstr(log, "not authorized");
    cr_assert_not_null(said, "the worker was not told:\n%s", log);
    cr_assert_null(strstr(said + 1, "not authorized"),
                   "the worker logs each refusal:\n%.2000s", log);
    free(log);
    xp_free(ids);
    xp_value_destroy(&trials);
    xp_client_destroy(&c);
}
