/* test_worker.c — the real xp-worker process against a scheduler played by
 * the test (a ROUTER socket on a free loopback port): registration, tasks,
 * failures, refused and malformed input, slots, heartbeats, BYE. Skipped
 * with the reason when the worker binary or the example plugins are
 * missing (XP_WORKER_BIN, XP_EXAMPLES_DIR; set by meson). */

#include "remote/message.h"
#include "util/bson_util.h"
#include "util/sys.h"

#include "remote.h"
#include "util/hash.h"

#include <math.h>
#include <sys/prctl.h>

/* The scheduler side of one test. */
typedef struct {
    zsock_t *router;
    zframe_t *id; /* the worker's routing identity, from its first message */
    pid_t pid;
    int heartbeats, hellos, byes, reconnects;
    char log[PATH_MAX];
} s_sched;

static s_sched s_s;

static void s_setup(void)
{
    xpt_setup();
    zsys_handler_set(NULL);
    memset(&s_s, 0, sizeof s_s);
    s_s.pid = -1;
}

static void s_teardown(void)
{
    if (s_s.pid > 0) {
        kill(s_s.pid, SIGKILL);
        waitpid(s_s.pid, NULL, 0);
        s_s.pid = -1;
    }
    zframe_destroy(&s_s.id);
    zsock_destroy(&s_s.router);
    xpt_teardown();
}

TestSuite(worker, .init = s_setup, .fini = s_teardown, .timeout = 60);

/* Path of a required file into buf, or the reason it is missing. */
static const char *s_need(const char *env, const char *name, char *buf,
                          char *why)
{
    const char *v = getenv(env);
    if (!v || !*v) {
        snprintf(why, 256, "%s is not set (run through `meson test`)", env);
        return NULL;
    }
    if (name)
        snprintf(buf, PATH_MAX, "%s/%s", v, name);
    else
        snprintf(buf, PATH_MAX, "%s", v);
    if (access(buf, R_OK) != 0) {
        snprintf(why, 256, "%.200s is missing (build it first)", buf);
        return NULL;
    }
    return buf;
}

/* Starts argv with stderr to log; the worker dies with the test process,
 * even when the test crashes before its .fini. */
static pid_t s_spawn(char *const argv[], const char *log)
{
    fflush(NULL);
    pid_t parent = getpid();
    pid_t pid = fork();
    cr_assert_neq(pid, -1, "fork failed: %s", strerror(errno));
    if (pid == 0) {
        int in = open("/dev/null", O_RDWR);
        int er = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (in < 0 || er < 0 || dup2(in, 0) < 0 || dup2(in, 1) < 0 ||
            dup2(er, 2) < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 ||
            getppid() != parent)
            _exit(126);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

/* Binds the scheduler socket and starts xp-worker with plugin (an example
 * name) and extra arguments (NULL-terminated). Skips the test when a
 * binary is missing. */
static void s_start(const char *plugin, const char *const *extra)
{
    static char bin[PATH_MAX], so[PATH_MAX], endpoint[256];
    char why[256], name[128];
    snprintf(name, sizeof name, "%s.so", plugin);
    if (!s_need("XP_WORKER_BIN", NULL, bin, why) ||
        !s_need("XP_EXAMPLES_DIR", name, so, why))
        xpt_skip(why);
    s_s.router = zsock_new(ZMQ_ROUTER);
    cr_assert_not_null(s_s.router);
    /* a random free port ('!'), not the lowest free one: tests run in
     * parallel and one's port must not reach another's worker */
    cr_assert_geq(zsock_bind(s_s.router, "tcp://127.0.0.1:!"), 0,
                  "cannot bind a loopback port");
    snprintf(endpoint, sizeof endpoint, "%s", zsock_endpoint(s_s.router));
    char *argv[32] = {bin, "--connect", endpoint, "--plugin", so};
    int n = 5;
    for (int i = 0; extra && extra[i] && n < 30; i++)
        argv[n++] = (char *)extra[i];
    argv[n] = NULL;
    snprintf(s_s.log, sizeof s_s.log, "%s/worker.log", xpt_dir);
    s_s.pid = s_spawn(argv, s_s.log);
}

/* Receives until a message of type want arrives (true, *body filled and
 * owned by the caller) or timeout_ms passes. Other messages are counted. */
static bool s_wait(xp_msg_type want, int timeout_ms, bson_t *body)
{
    double end = xpt_now() + timeout_ms / 1000.0;
    for (;;) {
        int left = (int)((end - xpt_now()) * 1000);
        if (left <= 0)
            return false;
        zpoller_t *p = zpoller_new(s_s.router, NULL);
        void *which = zpoller_wait(p, left);
        zpoller_destroy(&p);
        if (!which)
            continue;
        zmsg_t *msg = zmsg_recv(s_s.router);
        cr_assert_not_null(msg);
        zframe_t *from = zmsg_pop(msg);
        if (s_s.id && !zframe_eq(from, s_s.id)) {
            /* the worker reconnected: ZeroMQ gave it a new identity */
            s_s.reconnects++;
            zframe_destroy(&s_s.id);
        }
        if (!s_s.id)
            s_s.id = zframe_dup(from);
        zframe_destroy(&from);
        xp_msg_type type;
        bson_t b;
        xp_error_t err;
        cr_assert_eq(
            xp__msg_decode(msg, XP_MAX_MESSAGE_DEFAULT, &type, &b, &err), 0,
            "the worker sent a malformed message: %s", err.message);
        zmsg_destroy(&msg);
        s_s.heartbeats += type == XP_MSG_HEARTBEAT;
        s_s.hellos += type == XP_MSG_HELLO;
        s_s.byes += type == XP_MSG_BYE;
        if (type == want) {
            bson_steal(body, &b); /* a bson_t may not be copied */
            return true;
        }
        bson_destroy(&b);
    }
}

static void s_send(xp_msg_type type, const bson_t *body)
{
    zmsg_t *msg = xp__msg_new(type, body);
    zframe_t *id = zframe_dup(s_s.id);
    zmsg_prepend(msg, &id);
    cr_assert_eq(zmsg_send(&msg, s_s.router), 0);
}

/* Sends raw frames to the worker (routing frame added). */
static void s_send_raw(size_t n, const void *const *data, const size_t *lens)
{
    zmsg_t *msg = zmsg_new();
    zmsg_addmem(msg, zframe_data(s_s.id), zframe_size(s_s.id));
    for (size_t i = 0; i < n; i++)
        zmsg_addmem(msg, data[i], lens[i]);
    cr_assert_eq(zmsg_send(&msg, s_s.router), 0);
}

/* Waits for HELLO, checks it, answers WELCOME; returns the code hash of
 * experiment exp_id announced (static buffer). */
static const char *s_register_poke(const char *exp_id, int slots, int hb_ms,
                                   bool poke)
{
    static char hash[33];
    bson_t hello, list, e, code;
    bool got = false;
    /* poke: a HEARTBEAT every 100 ms to whichever connection the worker
     * uses now, so a worker that declared this scheduler gone hears it */
    for (int i = 0; i < 100 && !got; i++) {
        if (poke && s_s.id) {
            bson_t hb = BSON_INITIALIZER;
            s_send(XP_MSG_HEARTBEAT, &hb);
            bson_destroy(&hb);
        }
        got = s_wait(XP_MSG_HELLO, 100, &hello);
    }
    cr_assert(got, "no HELLO in 10 s: %s", xpt_slurp(s_s.log));
    int64_t n = 0, pid = 0;
    const char *host = xp__bson_utf8(&hello, "host");
    cr_assert(host && *host, "HELLO without host");
    cr_assert(xp__bson_int64(&hello, "pid", &pid) && pid == s_s.pid,
              "HELLO pid %lld, the worker is %d", (long long)pid, (int)s_s.pid);
    cr_assert(xp__bson_int64(&hello, "slots", &n) && n == slots,
              "HELLO slots %lld, expected %d", (long long)n, slots);
    cr_assert(xp__bson_sub(&hello, "experiments", &list));
    cr_assert_eq(bson_count_keys(&list), 1u);
    cr_assert(xp__bson_sub(&list, "0", &e));
    cr_assert_str_eq(xp__bson_utf8(&e, "id"), exp_id);
    cr_assert(xp__bson_sub(&e, "code", &code), "HELLO without code");
    char computed[33];
    xp__hash_hex(&code, computed);
    const char *announced = xp__bson_utf8(&e, "code_hash");
    cr_assert_not_null(announced);
    cr_assert_str_eq(announced, computed,
                     "code_hash is not the hash of the code document");
    bson_iter_t it;
    cr_assert(bson_iter_init_find(&it, &code, "steps") &&
                  BSON_ITER_HOLDS_ARRAY(&it),
              "code document without steps");
    snprintf(hash, sizeof hash, "%s", announced);
    bson_destroy(&hello);
    bson_t welcome = BSON_INITIALIZER;
    BSON_APPEND_INT32(&welcome, "heartbeat_ms", hb_ms);
    s_send(XP_MSG_WELCOME, &welcome);
    bson_destroy(&welcome);
    return hash;
}

static const char *s_register(const char *exp_id, int slots, int hb_ms)
{
    return s_register_poke(exp_id, slots, hb_ms, false);
}

/* A TASK body without inputs; the caller appends "inputs". */
static void s_task_begin(bson_t *b, int64_t trial, const char *exp,
                         const char *hash, const char *step, int64_t seed)
{
    bson_init(b);
    BSON_APPEND_INT64(b, "trial", trial);
    BSON_APPEND_INT64(b, "attempt", 1);
    if (exp)
        BSON_APPEND_UTF8(b, "experiment", exp);
    if (hash)
        BSON_APPEND_UTF8(b, "code_hash", hash);
    if (step)
        BSON_APPEND_UTF8(b, "step", step);
    BSON_APPEND_INT64(b, "seed", seed);
}

/* Sends TASK (trial, step) of exp with double inputs. */
static void s_task(int64_t trial, const char *exp, const char *hash,
                   const char *step, int64_t seed, size_t n, const double *in)
{
    bson_t b, arr;
    s_task_begin(&b, trial, exp, hash, step, seed);
    BSON_APPEND_ARRAY_BEGIN(&b, "inputs", &arr);
    for (size_t i = 0; i < n; i++) {
        char key[16];
        snprintf(key, sizeof key, "%zu", i);
        BSON_APPEND_DOUBLE(&arr, key, in[i]);
    }
    bson_append_array_end(&b, &arr);
    s_send(XP_MSG_TASK, &b);
    bson_destroy(&b);
}

/* Waits for a RESULT and checks its echo fields. Caller destroys body. */
static void s_result(bson_t *body, int64_t trial, const char *step, bool ok)
{
    cr_assert(s_wait(XP_MSG_RESULT, 10000, body),
              "no RESULT for trial %lld in 10 s; worker log: %s",
              (long long)trial, xpt_slurp(s_s.log));
    int64_t t = 0, attempt = 0;
    cr_assert(xp__bson_int64(body, "trial", &t) && t == trial,
              "RESULT for trial %lld, expected %lld", (long long)t,
              (long long)trial);
    cr_assert(xp__bson_int64(body, "attempt", &attempt) && attempt == 1);
    cr_assert_str_eq(xp__bson_utf8(body, "step"), step);
    bson_iter_t it;
    cr_assert(bson_iter_init_find(&it, body, "ok") &&
              BSON_ITER_HOLDS_BOOL(&it));
    cr_assert_eq(bson_iter_bool(&it), ok, "RESULT ok=%d, expected %d: %s",
                 bson_iter_bool(&it), ok,
                 xp__bson_utf8(body, "failure") ? xp__bson_utf8(body, "failure")
                                                : "");
    cr_assert(bson_iter_init_find(&it, body, "elapsed") &&
              BSON_ITER_HOLDS_DOUBLE(&it) && bson_iter_double(&it) >= 0);
    cr_assert(bson_iter_init_find(&it, body, "metrics") &&
              BSON_ITER_HOLDS_ARRAY(&it));
    if (!ok)
        cr_assert_not_null(xp__bson_utf8(body, "failure"));
}

static double s_output_double(const bson_t *body)
{
    bson_iter_t it;
    cr_assert(bson_iter_init_find(&it, body, "output") &&
                  BSON_ITER_HOLDS_DOUBLE(&it),
              "RESULT output is not a double");
    return bson_iter_double(&it);
}

static void s_expect_failure(const char *text)
{
    bson_t r;
    cr_assert(s_wait(XP_MSG_RESULT, 10000, &r), "no RESULT in 10 s");
    const char *f = xp__bson_utf8(&r, "failure");
    cr_assert(!xp__bson_bool(&r, "ok", true) && f,
              "expected a failure containing '%s'", text);
    cr_assert(strstr(f, text), "failure '%s' does not contain '%s'", f, text);
    bson_destroy(&r);
}

/* The dummy_score points of a calculate_score RESULT. */
static void s_metric_points(const bson_t *body, double values[100])
{
    bson_t list, m;
    cr_assert(xp__bson_sub(body, "metrics", &list));
    cr_assert_eq(bson_count_keys(&list), 1u, "expected one metric");
    cr_assert(xp__bson_sub(&list, "0", &m));
    cr_assert_str_eq(xp__bson_utf8(&m, "name"), "dummy_score");
    bson_iter_t it;
    const uint8_t *ep, *vp;
    uint32_t elen, vlen;
    cr_assert(bson_iter_init_find(&it, &m, "epochs") &&
              BSON_ITER_HOLDS_BINARY(&it));
    bson_iter_binary(&it, NULL, &elen, &ep);
    cr_assert(bson_iter_init_find(&it, &m, "values") &&
              BSON_ITER_HOLDS_BINARY(&it));
    bson_iter_binary(&it, NULL, &vlen, &vp);
    cr_assert_eq(elen, 800u, "epochs: %u bytes, expected 100 int64", elen);
    cr_assert_eq(vlen, 800u, "values: %u bytes, expected 100 doubles", vlen);
    for (int i = 0; i < 100; i++) {
        uint64_t e, v;
        memcpy(&e, ep + 8 * i, 8);
        memcpy(&v, vp + 8 * i, 8);
        e = BSON_UINT64_FROM_LE(e);
        v = BSON_UINT64_FROM_LE(v);
        memcpy(&values[i], &v, 8);
        cr_assert_eq((int64_t)e, i, "epoch %d is %lld", i, (long long)e);
        cr_assert(isfinite(values[i]) && values[i] <= 100.0 &&
                      values[i] > 100.0 - i - 1e-9,
                  "value %d is %g", i, values[i]);
    }
}

static bool s_alive(void)
{
    return waitpid(s_s.pid, NULL, WNOHANG) == 0;
}

/* ---------------------------------------------------------------- tests */

Test(worker, hello_tasks_failure_metrics)
{
    const char *extra[] = {"--slots", "3", NULL};
    s_start("quickstart", extra);
    const char *hash = s_register("quickstart_pj", 3, 1000);

    /* prepare_data(1, 2) = 3.0 */
    bson_t b, arr, r;
    s_task_begin(&b, 1, "quickstart_pj", hash, "prepare_data", 7);
    BSON_APPEND_ARRAY_BEGIN(&b, "inputs", &arr);
    BSON_APPEND_INT64(&arr, "0", 1);
    BSON_APPEND_INT64(&arr, "1", 2);
    bson_append_array_end(&b, &arr);
    s_send(XP_MSG_TASK, &b);
    bson_destroy(&b);
    s_result(&r, 1, "prepare_data", true);
    cr_assert_float_eq(s_output_double(&r), 3.0, 1e-12);
    bson_t none;
    cr_assert(xp__bson_sub(&r, "metrics", &none));
    cr_assert_eq(bson_count_keys(&none), 0u);
    bson_destroy(&r);

    /* calculate_score(0.0) fails */
    s_task(2, "quickstart_pj", hash, "calculate_score", 7, 1, (double[]){0.0});
    s_result(&r, 2, "calculate_score", false);
    cr_assert(strstr(xp__bson_utf8(&r, "failure"), "division by zero"),
              "failure: %s", xp__bson_utf8(&r, "failure"));
    bson_destroy(&r);

    /* calculate_score(2.0) = 5.0 with 100 metric points, reproducible
     * from the seed */
    double first[100], again[100];
    s_task(3, "quickstart_pj", hash, "calculate_score", 7, 1, (double[]){2.0});
    s_result(&r, 3, "calculate_score", true);
    cr_assert_float_eq(s_output_double(&r), 5.0, 1e-12);
    s_metric_points(&r, first);
    bson_destroy(&r);
    s_task(3, "quickstart_pj", hash, "calculate_score", 7, 1, (double[]){2.0});
    s_result(&r, 3, "calculate_score", true);
    s_metric_points(&r, again);
    bson_destroy(&r);
    cr_assert_eq(memcmp(first, again, sizeof first), 0,
                 "same seed, different metric values");
    cr_assert(s_alive());
}

Test(worker, refuses_invalid_tasks)
{
    s_start("quickstart", NULL);
    const char *hash = s_register("quickstart_pj", xp__cpu_count(), 1000);

    s_task(1, "quickstart_pj", hash, "no_such_step", 1, 1, (double[]){1});
    s_expect_failure("no step 'no_such_step'");
    s_task(2, "quickstart_pj", hash, "a", 1, 0, NULL); /* a parameter */
    s_expect_failure("no step 'a'");
    s_task(3, "other_pj", hash, "prepare_data", 1, 2, (double[]){1, 2});
    s_expect_failure("not loaded");
    s_task(4, "quickstart_pj", "0123456789abcdef0123456789abcdef",
           "prepare_data", 1, 2, (double[]){1, 2});
    s_expect_failure("code of experiment");
    s_task(5, "quickstart_pj", hash, "prepare_data", 1, 1, (double[]){1});
    s_expect_failure("takes 2 input(s)");
    s_task(6, "quickstart_pj", hash, "prepare_data", 1, 3, (double[]){1, 2, 3});
    s_expect_failure("takes 2 input(s)");

    /* inputs of the wrong type, no experiment: answered as failures */
    bson_t b;
    s_task_begin(&b, 7, "quickstart_pj", hash, "prepare_data", 1);
    BSON_APPEND_UTF8(&b, "inputs", "1,2");
    s_send(XP_MSG_TASK, &b);
    bson_destroy(&b);
    s_expect_failure("malformed TASK");
    bson_t arr;
    s_task_begin(&b, 8, NULL, hash, "prepare_data", 1);
    BSON_APPEND_ARRAY_BEGIN(&b, "inputs", &arr);
    bson_append_array_end(&b, &arr);
    s_send(XP_MSG_TASK, &b);
    bson_destroy(&b);
    s_expect_failure("malformed TASK");

    /* a TASK without step cannot be answered: dropped; the next is
     * answered */
    s_task(9, "quickstart_pj", hash, NULL, 1, 2, (double[]){1, 2});
    s_task(10, "quickstart_pj", hash, "prepare_data", 1, 2, (double[]){4, 5});
    bson_t r;
    s_result(&r, 10, "prepare_data", true);
    cr_assert_float_eq(s_output_double(&r), 9.0, 1e-12);
    bson_destroy(&r);
    cr_assert(s_alive());
}

Test(worker, survives_malformed_frames)
{
    s_start("quickstart", NULL);
    const char *hash = s_register("quickstart_pj", xp__cpu_count(), 1000);
    bson_t empty = BSON_INITIALIZER;
    const void *f[4];
    size_t l[4];

    f[0] = "garbage"; /* one frame */
    l[0] = 7;
    s_send_raw(1, f, l);
    f[0] = "XP9"; /* foreign protocol */
    l[0] = 3;
    f[1] = "TASK";
    l[1] = 4;
    f[2] = bson_get_data(&empty);
    l[2] = empty.len;
    s_send_raw(3, f, l);
    f[0] = "XP1"; /* unknown type */
    f[1] = "NONSENSE";
    l[1] = 8;
    s_send_raw(3, f, l);
    f[1] = "TASK"; /* body is not BSON */
    l[1] = 4;
    f[2] = "\x05\x00\x00\x00\x01";
    l[2] = 5;
    s_send_raw(3, f, l);
    f[2] = "\xff\xff\xff\x7f\x00\x00"; /* length lies */
    l[2] = 6;
    s_send_raw(3, f, l);
    f[2] = ""; /* empty body */
    l[2] = 0;
    s_send_raw(3, f, l);
    f[2] = bson_get_data(&empty); /* four frames */
    l[2] = empty.len;
    f[3] = "x";
    l[3] = 1;
    s_send_raw(4, f, l);
    s_send(XP_MSG_SUBMIT, &empty); /* not for a worker */
    s_send(XP_MSG_TASK, &empty);   /* TASK without fields */
    for (int i = 0; i < 100; i++)  /* many of one kind */
        s_send_raw(1, f, l);
    bson_destroy(&empty);

    s_task(1, "quickstart_pj", hash, "prepare_data", 1, 2, (double[]){1, 2});
    bson_t r;
    s_result(&r, 1, "prepare_data", true);
    cr_assert_float_eq(s_output_double(&r), 3.0, 1e-12);
    bson_destroy(&r);
    cr_assert(s_alive());

    /* each kind logged once */
    char *log = xpt_slurp(s_s.log);
    const char *kinds[] = {"(wrong frame count)", "(foreign protocol)",
                           "(unknown type)",      "(invalid BSON)",
                           "(unexpected type)",   "(missing fields)"};
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
        const char *at = strstr(log, kinds[i]);
        cr_assert(at, "no warning about %s in: %s", kinds[i], log);
        cr_assert_null(strstr(at + 1, kinds[i]), "%s logged more than once: %s",
                       kinds[i], log);
    }
    free(log);
}

/* A TASK whose body nests 10,000 documents (80 KB) is refused before
 * anything walks it recursively (bson_validate would run off the stack):
 * the worker drops it and goes on. */
Test(worker, survives_deeply_nested_task)
{
    s_start("quickstart", NULL);
    const char *hash = s_register("quickstart_pj", xp__cpu_count(), 1000);
    size_t len;
    uint8_t *deep = xptr_deep_bson(10000, &len);
    const void *f[3] = {"XP1", "TASK", deep};
    size_t l[3] = {3, 4, len};
    s_send_raw(3, f, l);
    f[1] = "WELCOME";
    l[1] = 7;
    s_send_raw(3, f, l);
    free(deep);
    s_task(1, "quickstart_pj", hash, "prepare_data", 1, 2, (double[]){1, 2});
    bson_t r;
    s_result(&r, 1, "prepare_data", true);
    cr_assert_float_eq(s_output_double(&r), 3.0, 1e-12);
    bson_destroy(&r);
    cr_assert(s_alive(), "the worker died on a deep TASK");
    char *log = xpt_slurp(s_s.log);
    cr_assert(strstr(log, "(invalid BSON)") && strstr(log, "nested deeper"),
              "no warning about the nesting in: %s", log);
    free(log);
}

Test(worker, oversized_messages)
{
    const char *extra[] = {"--max-message", "4096", "--heartbeat-ms", "200",
                           NULL};
    s_start("quickstart", extra);
    const char *hash = s_register("quickstart_pj", xp__cpu_count(), 200);
    char *big = calloc(1, 200000);
    cr_assert_not_null(big);
    memset(big, 'x', 199999);

    /* over --max-message: dropped by the worker */
    bson_t b, arr;
    s_task_begin(&b, 1, "quickstart_pj", hash, "prepare_data", 1);
    BSON_APPEND_UTF8(&b, "padding", big + 199999 - 6000);
    BSON_APPEND_ARRAY_BEGIN(&b, "inputs", &arr);
    bson_append_array_end(&b, &arr);
    s_send(XP_MSG_TASK, &b);
    bson_destroy(&b);
    s_task(2, "quickstart_pj", hash, "prepare_data", 1, 2, (double[]){1, 2});
    bson_t r;
    s_result(&r, 2, "prepare_data", true);
    bson_destroy(&r);
    char *log = xpt_slurp(s_s.log);
    cr_assert(strstr(log, "(oversized body)"), "no warning in: %s", log);
    free(log);

    /* far over it: ZeroMQ drops the connection; the worker reconnects
     * and registers again when told to */
    s_task_begin(&b, 3, "quickstart_pj", hash, "prepare_data", 1);
    BSON_APPEND_UTF8(&b, "padding", big);
    BSON_APPEND_ARRAY_BEGIN(&b, "inputs", &arr);
    bson_append_array_end(&b, &arr);
    s_send(XP_MSG_TASK, &b);
    bson_destroy(&b);
    free(big);
    double t0 = xpt_now();
    while (s_s.reconnects == 0 && xpt_now() - t0 < 10)
        if (s_wait(XP_MSG_RESULT, 100, &r))
            cr_assert_fail("RESULT for an oversized TASK");
    cr_assert_gt(s_s.reconnects, 0,
                 "the worker did not reconnect (%d heartbeats): %s",
                 s_s.heartbeats, xpt_slurp(s_s.log));
    bson_t e = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&e, "message", "unknown worker: send HELLO");
    s_send(XP_MSG_ERROR, &e);
    bson_destroy(&e);
    s_register("quickstart_pj", xp__cpu_count(), 200);
    s_task(4, "quickstart_pj", hash, "prepare_data", 1, 2, (double[]){2, 2});
    s_result(&r, 4, "prepare_data", true);
    cr_assert_float_eq(s_output_double(&r), 4.0, 1e-12);
    bson_destroy(&r);
    cr_assert(s_alive());
}

Test(worker, slots_run_concurrently_and_are_respected)
{
    const char *extra[] = {"--slots", "2", "--prefetch", "0", NULL};
    s_start("sleep_experiment", extra);
    const char *hash = s_register("sleep_pj", 2, 1000);

    double t0 = xpt_now();
    s_task(1, "sleep_pj", hash, "sleep_seconds", 1, 1, (double[]){0.5});
    s_task(2, "sleep_pj", hash, "sleep_seconds", 1, 1, (double[]){0.5});
    /* a third task finds no free slot: refused at once */
    s_task(3, "sleep_pj", hash, "sleep_seconds", 1, 1, (double[]){0.5});
    bson_t r;
    s_result(&r, 3, "sleep_seconds", false);
    cr_assert(strstr(xp__bson_utf8(&r, "failure"), "worker busy"),
              "failure: %s", xp__bson_utf8(&r, "failure"));
    bson_destroy(&r);
    cr_assert_lt(xpt_now() - t0, 0.45, "the busy answer waited for a slot");

    double at[2];
    int64_t seen = 0;
    for (int i = 0; i < 2; i++) {
        cr_assert(s_wait(XP_MSG_RESULT, 10000, &r), "no RESULT");
        at[i] = xpt_now() - t0;
        int64_t trial = 0;
        cr_assert(xp__bson_int64(&r, "trial", &trial));
        cr_assert(xp__bson_bool(&r, "ok", false), "sleep step failed: %s",
                  xp__bson_utf8(&r, "failure"));
        cr_assert_float_eq(s_output_double(&r), 0.5, 1e-12);
        seen |= (int64_t)1 << trial;
        bson_destroy(&r);
    }
    cr_assert_eq(seen, 6, "expected RESULTs of trials 1 and 2");
    cr_assert_geq(at[0], 0.45, "a 0.5 s step answered after %.3f s", at[0]);
    cr_assert_lt(at[1] - at[0], 0.35,
                 "the two steps did not run concurrently (%.3f s, %.3f s)",
                 at[0], at[1]);

    /* slots free again */
    s_task(4, "sleep_pj", hash, "sleep_seconds", 1, 1, (double[]){0.0});
    s_result(&r, 4, "sleep_seconds", true);
    bson_destroy(&r);
}

/* Sends one TASKS of sleep steps of trials first.. with seconds[i]. */
static void s_tasks_sleep(const char *hash, int64_t first, size_t n,
                          const double *seconds)
{
    bson_t b = BSON_INITIALIZER, list;
    BSON_APPEND_ARRAY_BEGIN(&b, "tasks", &list);
    for (size_t i = 0; i < n; i++) {
        bson_t t, in;
        char key[16];
        snprintf(key, sizeof key, "%zu", i);
        s_task_begin(&t, first + (int64_t)i, "sleep_pj", hash, "sleep_seconds",
                     1);
        BSON_APPEND_ARRAY_BEGIN(&t, "inputs", &in);
        BSON_APPEND_DOUBLE(&in, "0", seconds[i]);
        bson_append_array_end(&t, &in);
        BSON_APPEND_DOCUMENT(&list, key, &t);
        bson_destroy(&t);
    }
    bson_append_array_end(&b, &list);
    s_send(XP_MSG_TASKS, &b);
    bson_destroy(&b);
}

/* Tells the worker that this scheduler takes RESULTS. */
static void s_welcome_bundles(int hb_ms)
{
    bson_t welcome = BSON_INITIALIZER;
    BSON_APPEND_INT32(&welcome, "heartbeat_ms", hb_ms);
    BSON_APPEND_BOOL(&welcome, "bundles", true);
    s_send(XP_MSG_WELCOME, &welcome);
    bson_destroy(&welcome);
}

/* Reads RESULTS messages until n results came, into trials[] and ok[]
 * in the order they came; false on a timeout. */
static bool s_bundled(size_t n, int64_t *trials, bool *ok, int timeout_ms)
{
    size_t got = 0;
    while (got < n) {
        bson_t r, one;
        bson_iter_t it;
        size_t bad = 0;
        if (!s_wait(XP_MSG_RESULTS, timeout_ms, &r))
            return false;
        cr_assert_eq(xp__msg_bundle_open(&r, XP_MSG_RESULTS, &it, NULL), 0);
        while (xp__msg_bundle_next(&it, &one, &bad) && got < n) {
            xp_msg_result m;
            cr_assert_eq(xp__msg_result_decode(&one, &m, NULL), 0);
            trials[got] = m.trial;
            ok[got++] = m.ok;
            xp__msg_result_clear(&m);
        }
        cr_assert_eq(bad, 0u);
        bson_destroy(&r);
    }
    return true;
}

Test(worker, prefetched_tasks_wait_in_order_and_results_come_bundled)
{
    const char *extra[] = {"--slots", "1", "--prefetch", "2", NULL};
    s_start("sleep_experiment", extra);
    const char *hash = s_register("sleep_pj", 1, 1000);
    s_welcome_bundles(1000);
    double t0 = xpt_now();
    /* one slot and room for two waiting: the fourth is refused */
    s_tasks_sleep(hash, 1, 4, (double[]){0.3, 0, 0, 0});
    bson_t r;
    s_result(&r, 4, "sleep_seconds", false);
    cr_assert(strstr(xp__bson_utf8(&r, "failure"), "worker busy"),
              "failure: %s", xp__bson_utf8(&r, "failure"));
    bson_destroy(&r);
    int64_t trials[3];
    bool ok[3];
    cr_assert(s_bundled(3, trials, ok, 10000), "no RESULTS: %s",
              xpt_slurp(s_s.log));
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(trials[i], i + 1, "result %d is of trial %lld", i,
                     (long long)trials[i]);
        cr_assert(ok[i]);
    }
    cr_assert_geq(xpt_now() - t0, 0.25, "the waiting tasks did not wait");
}

Test(worker, a_drain_hands_back_what_waits_at_once)
{
    const char *extra[] = {"--slots", "1", "--prefetch", "4", NULL};
    s_start("sleep_experiment", extra);
    const char *hash = s_register("sleep_pj", 1, 1000);
    s_welcome_bundles(1000);
    s_tasks_sleep(hash, 1, 3, (double[]){0.5, 0, 0});
    usleep(100 * 1000); /* trial 1 runs */
    double t0 = xpt_now();
    cr_assert_eq(kill(s_s.pid, SIGTERM), 0);
    bson_t r;
    int64_t back = 0;
    for (int i = 0; i < 2; i++) {
        int64_t trial = 0;
        cr_assert(s_wait(XP_MSG_RESULT, 5000, &r), "no busy answer");
        cr_assert(xp__bson_int64(&r, "trial", &trial));
        cr_assert(strstr(xp__bson_utf8(&r, "failure"), "worker busy: draining"),
                  "failure: %s", xp__bson_utf8(&r, "failure"));
        back |= (int64_t)1 << trial;
        bson_destroy(&r);
    }
    cr_assert_eq(back, 12, "trials 2 and 3 are not the ones handed back");
    cr_assert_lt(xpt_now() - t0, 0.35, "what waits waited for the drain");
    int64_t trials[1];
    bool ok[1];
    cr_assert(s_bundled(1, trials, ok, 5000), "the running step's result");
    cr_assert_eq(trials[0], 1);
    cr_assert(ok[0]);
    cr_assert(s_wait(XP_MSG_BYE, 5000, &r), "no BYE after the drain");
    bson_destroy(&r);
}

Test(worker, heartbeats_and_bye_on_sigterm)
{
    const char *extra[] = {"--heartbeat-ms", "100", NULL};
    s_start("quickstart", extra);
    s_register("quickstart_pj", xp__cpu_count(), 100);
    bson_t r;
    double t0 = xpt_now();
    while (xpt_now() - t0 < 1.0) {
        bson_t hb = BSON_INITIALIZER; /* keep the worker's view alive */
        s_send(XP_MSG_HEARTBEAT, &hb);
        bson_destroy(&hb);
        if (s_wait(XP_MSG_RESULT, 100, &r))
            bson_destroy(&r);
    }
    cr_assert_geq(s_s.heartbeats, 5, "%d heartbeats in 1 s at 100 ms",
                  s_s.heartbeats);
    cr_assert_eq(s_s.hellos, 1, "registered %d times", s_s.hellos);

    cr_assert_eq(kill(s_s.pid, SIGTERM), 0);
    cr_assert(s_wait(XP_MSG_BYE, 5000, &r), "no BYE after SIGTERM");
    bson_destroy(&r);
    int status = xpt_wait(s_s.pid);
    s_s.pid = -1;
    cr_assert_eq(status, 0, "xp-worker exited with %d after SIGTERM: %s",
                 status, xpt_slurp(s_s.log));
}

Test(worker, registers_again_after_silence_or_error)
{
    const char *extra[] = {"--heartbeat-ms", "100", NULL};
    s_start("quickstart", extra);
    const char *hash = s_register("quickstart_pj", xp__cpu_count(), 100);
    char first[33];
    snprintf(first, sizeof first, "%s", hash);

    /* silent for > 3 intervals: the worker declares the scheduler gone
     * and registers again when it hears from it */
    bson_t r;
    cr_assert_not(s_wait(XP_MSG_HELLO, 600, &r), "HELLO while silent");
    cr_assert_str_eq(
        s_register_poke("quickstart_pj", xp__cpu_count(), 100, true), first);

    /* a scheduler that forgot the worker says so */
    bson_t e = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&e, "message", "unknown worker: send HELLO");
    s_send(XP_MSG_ERROR, &e);
    bson_destroy(&e);
    s_register("quickstart_pj", xp__cpu_count(), 100);

    s_task(1, "quickstart_pj", hash, "prepare_data", 1, 2, (double[]){1, 2});
    s_result(&r, 1, "prepare_data", true);
    bson_destroy(&r);
}

Test(worker, bad_arguments_and_plugins)
{
    char bin[PATH_MAX], so[PATH_MAX], why[256];
    if (!s_need("XP_WORKER_BIN", NULL, bin, why) ||
        !s_need("XP_EXAMPLES_DIR", "quickstart", so, why))
        xpt_skip(why);
    struct {
        const char *args[6];
        int status;
        const char *text;
    } cases[] = {
        {{"--help"}, 0, "usage: xp-worker"},
        {{"--plugin", "x.so"}, 2, "no scheduler"},
        {{"--connect", "tcp://127.0.0.1:1"}, 2, "no experiment"},
        {{"--connect", "tcp://127.0.0.1:1", "--slots", "0", "--plugin", "x.so"},
         2,
         "--slots needs an integer"},
        {{"--connect", "tcp://127.0.0.1:1", "--plugin", "/nonexistent.so"},
         2,
         "cannot load plugin /nonexistent.so"},
        /* the script-mode program is not a plugin */
        {{"--connect", "tcp://127.0.0.1:1", "--plugin", so},
         2,
         "cannot load plugin"},
        {{"--bogus"}, 2, "unknown or incomplete option '--bogus'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *argv[8] = {bin};
        for (int k = 0; k < 6 && cases[i].args[k]; k++)
            argv[k + 1] = (char *)cases[i].args[k];
        xpt_run_result r = xpt_run(argv, xpt_dir);
        cr_assert_eq(r.status, cases[i].status, "%s: status %d, stderr %s",
                     cases[i].args[0], r.status, r.err);
        const char *out = cases[i].status == 0 ? r.out : r.err;
        cr_assert(strstr(out, cases[i].text), "%s: '%s' not in '%s'",
                  cases[i].args[0], cases[i].text, out);
        if (cases[i].status != 0)
            cr_assert_eq(xpt_count_lines(r.err), 1u, "not a one-line error: %s",
                         r.err);
        xpt_run_result_free(&r);
    }
}
