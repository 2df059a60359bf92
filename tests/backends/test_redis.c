/* test_redis.c — Redis only: key layout read back with hiredis, URI errors,
 * masked passwords, reconnection, and a private redis-server killed mid-run
 * and restarted on the same data without losing a finished trial. */
#include "../backend_fixture.h"

#include "experiment.h"
#include "store/metric.h"
#include "store/store.h"

#include "util/names.h"
#include "util/sys.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>

static xpt_log s_log;

/* Experiment ids this test created on the shared server, for cleanup. */
#define MAX_IDS 8
static char s_ids[MAX_IDS][XP_ID_MAX + 8];
static int s_n_ids;

/* A private redis-server of the running test. */
static struct {
    pid_t pid;
    int port;
    char dir[300];
    char sock[320];
    const char *password; /* requirepass, or NULL */
} s_srv;

static const char *uid(const char *base)
{
    cr_assert_lt(s_n_ids, MAX_IDS, "too many experiment ids in one test");
    char *id = s_ids[s_n_ids];
    snprintf(id, sizeof s_ids[0], "%.40s_%d_%d", base, (int)getpid(), s_n_ids);
    s_n_ids++;
    return id;
}

/* Skips the running test, printing why. Not xpt_skip: criterion 2.4
 * counts its cr_log_warn as a failure of the whole run. .fini does not run
 * for a skipped test, hence the teardown here. */
#define skip(why)                                                              \
    do {                                                                       \
        fprintf(stderr, "skipping: %s\n", (why));                              \
        xpt_teardown();                                                        \
        cr_skip_test("%s", (why));                                             \
    } while (0)

/* ---------------------------------------------------------------- hiredis */

/* A direct connection to the shared server (database db); skips the test
 * when XP_TEST_REDIS_URI is unset. Caller frees. */
static redisContext *shared_redis(int db, char *uri_out, size_t size)
{
    const char *uri = getenv("XP_TEST_REDIS_URI");
    char host[256];
    int port, uri_db;
    if (!uri || !*uri)
        skip("XP_TEST_REDIS_URI is not set (tests/run.sh starts a "
             "redis-server)");
    if (!xpt_redis_addr(uri, host, &port, &uri_db))
        skip("XP_TEST_REDIS_URI is not of the form redis://host:port/db");
    if (db < 0)
        db = uri_db;
    if (uri_out)
        snprintf(uri_out, size, "redis://%s:%d/%d", host, port, db);
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout(host, port, tv);
    cr_assert(c && !c->err, "cannot connect to %s: %s", uri,
              c ? c->errstr : "out of memory");
    redisReply *r = redisCommand(c, "SELECT %d", db);
    cr_assert(r && r->type == REDIS_REPLY_STATUS, "SELECT %d", db);
    freeReplyObject(r);
    return c;
}

/* Runs a command; asserts a reply. Caller frees. */
static redisReply *cmd(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    cr_assert_not_null(r, "command '%s': %s", fmt, c->errstr);
    return r;
}

/* Every key "<id>:*" (SCAN, test side only). Caller frees with
 * free_keys. */
static char **scan_keys(redisContext *c, const char *id, size_t *n)
{
    char cursor[32] = "0";
    char **keys = NULL;
    *n = 0;
    do {
        redisReply *r = cmd(c, "SCAN %s MATCH %s:* COUNT 1000", cursor, id);
        cr_assert_eq(r->type, REDIS_REPLY_ARRAY, "SCAN");
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements; i++) {
            keys = realloc(keys, (*n + 1) * sizeof *keys);
            keys[(*n)++] = strdup(r->element[1]->element[i]->str);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    return keys;
}

static void free_keys(char **keys, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(keys[i]);
    free(keys);
}

static void delete_experiment(redisContext *c, const char *id)
{
    size_t n;
    char **keys = scan_keys(c, id, &n);
    for (size_t i = 0; i < n; i++)
        freeReplyObject(cmd(c, "DEL %s", keys[i]));
    free_keys(keys, n);
}

/* ---------------------------------------------------------------- servers */

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0, "socket: %s", strerror(errno));
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0, "bind: %s",
                 strerror(errno));
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

static bool in_path(const char *program)
{
    const char *path = getenv("PATH");
    char buf[PATH_MAX];
    while (path && *path) {
        size_t n = strcspn(path, ":");
        snprintf(buf, sizeof buf, "%.*s/%s", (int)n, path, program);
        if (access(buf, X_OK) == 0)
            return true;
        path += n + (path[n] == ':');
    }
    return false;
}

/* Starts (or restarts, on the same port and data) the private server:
 * append-only with an fsync per write, so what it acknowledged survives
 * kill -9. Waits until it answers. */
static void server_start(void)
{
    if (!s_srv.port) {
        if (!in_path("redis-server"))
            skip("redis-server is not in PATH");
        s_srv.port = free_port();
        snprintf(s_srv.dir, sizeof s_srv.dir, "%s/redis", xpt_dir);
        snprintf(s_srv.sock, sizeof s_srv.sock, "%s/redis.sock", s_srv.dir);
        cr_assert_eq(mkdir(s_srv.dir, 0700), 0, "mkdir: %s", strerror(errno));
    }
    char port[16], log[PATH_MAX + 16];
    snprintf(port, sizeof port, "%d", s_srv.port);
    snprintf(log, sizeof log, "%s/redis.log", s_srv.dir);
    const char *argv[32] = {"redis-server",
                            "--port",
                            port,
                            "--bind",
                            "127.0.0.1",
                            "--dir",
                            s_srv.dir,
                            "--appendonly",
                            "yes",
                            "--appendfsync",
                            "always",
                            "--save",
                            "",
                            "--daemonize",
                            "no",
                            "--logfile",
                            log,
                            "--unixsocket",
                            s_srv.sock,
                            "--unixsocketperm",
                            "700"};
    int argc = 21;
    if (s_srv.password) {
        argv[argc++] = "--requirepass";
        argv[argc++] = s_srv.password;
    }
    argv[argc] = NULL;
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_neq(pid, -1, "fork: %s", strerror(errno));
    if (pid == 0) {
        /* A test that crashes runs no .fini: the server dies with it. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        execvp("redis-server", (char *const *)argv);
        _exit(127);
    }
    s_srv.pid = pid;
    double deadline = xpt_now() + 10;
    while (xpt_now() < deadline) {
        int st;
        cr_assert_eq(waitpid(pid, &st, WNOHANG), 0,
                     "redis-server exited at start (see %s)", log);
        struct timeval tv = {0, 200000};
        redisContext *c = redisConnectWithTimeout("127.0.0.1", s_srv.port, tv);
        bool up = false;
        if (c && !c->err) {
            redisReply *r = redisCommand(c, "PING");
            up = r && (r->type == REDIS_REPLY_STATUS ||
                       (r->type == REDIS_REPLY_ERROR &&
                        strncmp(r->str, "NOAUTH", 6) == 0));
            if (r)
                freeReplyObject(r);
        }
        if (c)
            redisFree(c);
        if (up)
            return;
        xpt_sleep(0.02);
    }
    cr_assert_fail("redis-server did not start on port %d", s_srv.port);
}

static void server_kill(void)
{
    if (s_srv.pid <= 0)
        return;
    kill(s_srv.pid, SIGKILL);
    int st;
    while (waitpid(s_srv.pid, &st, 0) < 0 && errno == EINTR)
        ;
    s_srv.pid = 0;
}

/* ---------------------------------------------------------------- setup */

static void s_init(void)
{
    xpt_setup();
    xpt_log_init(&s_log);
    xp_log_set_handler(xpt_log_fn, &s_log);
    xp_log_set_level(XP_LOG_WARNING);
    char cache[PATH_MAX];
    snprintf(cache, sizeof cache, "%s/cache", xpt_dir);
    setenv("XP_CACHE_DIR", cache, 1);
}

static void s_fini(void)
{
    server_kill();
    const char *uri = getenv("XP_TEST_REDIS_URI");
    char host[256];
    int port, db;
    if (s_n_ids > 0 && xpt_redis_addr(uri, host, &port, &db)) {
        struct timeval tv = {2, 0};
        redisContext *c = redisConnectWithTimeout(host, port, tv);
        if (c && !c->err) {
            int dbs[] = {db, 3}; /* the databases the tests use */
            for (int k = 0; k < 2; k++) {
                redisReply *r = redisCommand(c, "SELECT %d", dbs[k]);
                if (r)
                    freeReplyObject(r);
                for (int i = 0; i < s_n_ids; i++)
                    delete_experiment(c, s_ids[i]);
            }
        }
        if (c)
            redisFree(c);
    }
    xpt_teardown();
}

TestSuite(redis, .init = s_init, .fini = s_fini, .timeout = 120);

/* Opens id on backend; NULL with err on failure. */
static xp_experiment *try_open(const char *backend, const char *id,
                               bool must_exist, xp_error_t *err)
{
    xp_open_options o = XP_OPEN_OPTIONS_INIT;
    o.backend = backend;
    o.must_exist = must_exist;
    o.threads = 1;
    xp_experiment *ex = NULL;
    if (xp_experiment_open(&ex, id, &o, err) != 0)
        return NULL;
    return ex;
}

static xp_experiment *open_ok(const char *backend, const char *id)
{
    xp_error_t err = {0};
    xp_experiment *ex = try_open(backend, id, false, &err);
    cr_assert_not_null(ex, "open %s on %s: code=%u '%s'", id, backend, err.code,
                       err.message);
    return ex;
}

/* ---------------------------------------------------------------- steps */

static int64_t s_kill_at = -1; /* a value of `a` whose step kills the server */

static int work(xp_step *st, const xp_value *const *in, xp_value *out)
{
    int64_t a = xp_as_int64(in[0]);
    for (int e = 0; e < 3; e++)
        if (xp_save_metric(st, "loss", e, (double)a + e) != 0)
            return -1;
    if (a == s_kill_at)
        server_kill();
    return xp_set_int64(out, a + 1);
}

/* Persisted bytes: 256 KiB from a = 1000 on (phase 3 of the fault test),
 * so the server also dies in the middle of large writes. */
static size_t payload_size(int64_t a)
{
    return a >= 1000 ? 256 * 1024 : 16;
}

static int payload(xp_step *st, const xp_value *const *in, xp_value *out)
{
    int64_t a = xp_as_int64(in[0]);
    size_t n = payload_size(a);
    char *buf = malloc(n);
    if (!buf)
        return xp_step_fail(st, "out of memory");
    memset(buf, (int)(a & 0x7f), n);
    int rc = xp_set_blob(out, buf, n);
    free(buf);
    return rc;
}

static int prep(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    return xp_set_int64(out, xp_as_int64(in[0]) * 10);
}

static int constant(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    (void)in;
    return xp_set_int64(out, 1);
}

static int64_t run_ok(xp_experiment *ex)
{
    int64_t id = 0;
    xp_error_t err = {0};
    int rc = xp_compute(ex, NULL, NULL, &id, &err);
    cr_assert_eq(rc, 0, "xp_compute: code=%u '%s'", err.code, err.message);
    return id;
}

/* ---------------------------------------------------------------- layout */

/* True when key (after "<id>:") is one of the documented forms. */
static bool documented(const char *rest)
{
    static const char *const fixed[] = {"meta",   "counter", "version",
                                        "trials", "running", "step_hashes"};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
        if (strcmp(rest, fixed[i]) == 0)
            return true;
    static const char *const prefixes[] = {
        "trial:", "metric:", "metrics:", "persisted:", "content:"};
    for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++)
        if (strncmp(rest, prefixes[i], strlen(prefixes[i])) == 0)
            return true;
    return false;
}

Test(redis, key_layout_is_documented)
{
    char uri[300];
    redisContext *c = shared_redis(-1, uri, sizeof uri);
    const char *id = uid("layout");
    xp_experiment *ex = open_ok(uri, id);
    xp_node *a = xp_parameter(ex, "a");
    xp_node *p = XP_PERSIST(ex, prep, a);
    cr_assert_not_null(XP_RESULT(ex, work, p), "definition");
    xp_error_t err = {0};
    for (int i = 1; i <= 3; i++) {
        xp_set_param_int64(ex, "a", i, &err);
        cr_assert_eq(run_ok(ex), i, "trial id");
    }

    redisReply *r = cmd(c, "HGET %s:meta format", id);
    cr_assert_str_eq(r->str, "xp-redis", "format");
    freeReplyObject(r);
    r = cmd(c, "HGET %s:meta schema", id);
    cr_assert_str_eq(r->str, "1", "schema");
    freeReplyObject(r);
    r = cmd(c, "GET %s:counter", id);
    cr_assert_str_eq(r->str, "3", "counter");
    freeReplyObject(r);
    /* moved by each record written: a start and an end a trial */
    r = cmd(c, "GET %s:version", id);
    cr_assert_str_eq(r->str, "6", "version");
    freeReplyObject(r);
    r = cmd(c, "ZCARD %s:trials", id);
    cr_assert_eq(r->integer, 3, "trials cardinality");
    freeReplyObject(r);
    r = cmd(c, "ZRANGE %s:trials 0 -1 WITHSCORES", id);
    cr_assert_eq(r->elements, 6, "ZRANGE");
    for (size_t i = 0; i < 3; i++) {
        cr_assert_eq(atoi(r->element[2 * i]->str), (int)i + 1, "member");
        cr_assert_eq(atoi(r->element[2 * i + 1]->str), (int)i + 1, "score");
    }
    freeReplyObject(r);
    r = cmd(c, "HLEN %s:running", id);
    cr_assert_eq(r->integer, 0, "finished trials still running");
    freeReplyObject(r);

    /* The trial document is BSON with trial_id first. */
    r = cmd(c, "GET %s:trial:2", id);
    cr_assert_eq(r->type, REDIS_REPLY_STRING, "trial:2");
    bson_t doc;
    bson_iter_t it;
    cr_assert(bson_init_static(&doc, (const uint8_t *)r->str, r->len) &&
                  bson_validate(&doc, BSON_VALIDATE_NONE, NULL),
              "trial:2 is not BSON");
    cr_assert(bson_iter_init(&it, &doc) && bson_iter_next(&it) &&
                  strcmp(bson_iter_key(&it), "trial_id") == 0 &&
                  bson_iter_int64(&it) == 2,
              "trial_id is not the first field");
    cr_assert(bson_iter_init_find(&it, &doc, "status") &&
                  strcmp(bson_iter_utf8(&it, NULL), "succeeded") == 0,
              "status");
    char code_hash[33];
    cr_assert(bson_iter_init_find(&it, &doc, "code_hash"), "code_hash");
    bson_strncpy(code_hash, bson_iter_utf8(&it, NULL), sizeof code_hash);
    freeReplyObject(r);
    r = cmd(c, "EXISTS %s:content:%s", id, code_hash);
    cr_assert_eq(r->integer, 1, "code content");
    freeReplyObject(r);

    /* Metric chunk 0 of trial 2: 3 int64 epochs then 3 doubles, LE. */
    r = cmd(c, "HGET %s:metric:2:loss 0", id);
    cr_assert_eq(r->type, REDIS_REPLY_STRING, "metric chunk");
    cr_assert_eq(r->len, 48, "chunk of %zu bytes", r->len);
    int64_t e2;
    double v2;
    memcpy(&e2, r->str + 16, 8);
    memcpy(&v2, r->str + 24 + 16, 8);
    cr_assert_eq(e2, 2, "epoch");
    cr_assert_eq(v2, 22.0, "value");
    freeReplyObject(r);
    r = cmd(c, "SISMEMBER %s:metrics:2 loss", id);
    cr_assert_eq(r->integer, 1, "metric index");
    freeReplyObject(r);
    r = cmd(c, "HGET %s:persisted:2 prep", id);
    cr_assert_eq(r->type, REDIS_REPLY_STRING, "persisted");
    cr_assert(bson_init_static(&doc, (const uint8_t *)r->str, r->len) &&
                  bson_iter_init_find(&it, &doc, "v") &&
                  bson_iter_int64(&it) == 20,
              "persisted {v: 20}");
    freeReplyObject(r);
    r = cmd(c, "HGETALL %s:step_hashes", id);
    cr_assert_eq(r->elements, 2 * 6, "two steps x three inputs");
    for (size_t i = 0; i < r->elements; i++)
        cr_assert_eq(r->element[i]->len, 16, "16-byte hash");
    freeReplyObject(r);

    size_t n;
    char **keys = scan_keys(c, id, &n);
    /* meta counter version trials step_hashes, 3 x (trial metric
     * metrics persisted), code and environment */
    cr_assert_eq(n, 5 + 3 * 4 + 2, "%zu keys", n);
    for (size_t i = 0; i < n; i++)
        cr_assert(documented(keys[i] + strlen(id) + 1), "undocumented key %s",
                  keys[i]);
    free_keys(keys, n);
    xp_experiment_destroy(&ex);
    redisFree(c);
}

Test(redis, running_and_queued_trials)
{
    char uri[300];
    redisContext *c = shared_redis(-1, uri, sizeof uri);
    const char *id = uid("running");
    xp_experiment *ex = open_ok(uri, id);
    xp_backend *be = ex->backend;
    xp_error_t err = {0};
    xp_trial_record doc = {.status = XP_STATUS_RUNNING,
                           .host = "elsewhere",
                           .pid = 4242,
                           .pstart = 77};
    int64_t t1 = 0, t2 = 0;
    cr_assert_eq(xp__store_trial_begin(be, &doc, &err), 0, "begin: '%s'",
                 err.message);
    t1 = doc.trial_id;
    xp_trial_record queued = {.status = XP_STATUS_QUEUED, .pid = 0};
    cr_assert_eq(xp__store_trial_begin(be, &queued, &err), 0,
                 "begin queued: '%s'", err.message);
    t2 = queued.trial_id;
    cr_assert_eq(t2, t1 + 1, "ids %lld %lld", (long long)t1, (long long)t2);
    redisReply *r = cmd(c, "HEXISTS %s:running %lld", id, (long long)t2);
    cr_assert_eq(r->integer, 0, "a queued trial is in <id>:running");
    freeReplyObject(r);
    xp_running_trial *list = NULL;
    size_t n = 0;
    cr_assert_eq(xp__store_running_trials(be, &list, &n, &err), 0,
                 "running: '%s'", err.message);
    cr_assert_eq(n, 1, "%zu running", n);
    cr_assert_eq(list[0].trial_id, t1, "running id");
    cr_assert_str_eq(list[0].host, "elsewhere", "host");
    cr_assert_eq(list[0].pid, 4242, "pid");
    cr_assert_eq(list[0].pstart, 77, "pstart");
    bson_free(list);
    /* Interrupting is conditional: only while still running. */
    cr_assert_eq(xp__store_trial_interrupt(be, t1, xp__now_ms(), "gone", &err),
                 0, "interrupt: '%s'", err.message);
    cr_assert_eq(xp__store_trial_interrupt(be, t2, xp__now_ms(), "gone", &err),
                 0, "interrupt queued: '%s'", err.message);
    xp_value *t = NULL;
    cr_assert_eq(xp_trial_get(ex, t1, &t, &err), 0, "get: '%s'", err.message);
    cr_assert_str_eq(xpt_get_str(t, "status"), "interrupted", "status");
    cr_assert_str_eq(xpt_get_str(t, "description"), "gone", "description");
    xp_value_destroy(&t);
    cr_assert_eq(xp_trial_get(ex, t2, &t, &err), 0, "get: '%s'", err.message);
    cr_assert_str_eq(xpt_get_str(t, "status"), "queued",
                     "a queued trial was interrupted");
    xp_value_destroy(&t);
    r = cmd(c, "HLEN %s:running", id);
    cr_assert_eq(r->integer, 0, "running entries left");
    freeReplyObject(r);
    xp_experiment_destroy(&ex);
    redisFree(c);
}

Test(redis, database_number_selects_the_database)
{
    char uri[300];
    redisContext *c = shared_redis(3, uri, sizeof uri);
    const char *id = uid("db3");
    xp_experiment *ex = open_ok(uri, id);
    xp_result(xp_step_add(ex, "constant", constant, 0, NULL, NULL, 0));
    xp_experiment_destroy(&ex);
    redisReply *r = cmd(c, "EXISTS %s:meta", id);
    cr_assert_eq(r->integer, 1, "meta not in database 3");
    freeReplyObject(r);
    r = cmd(c, "SELECT 0");
    freeReplyObject(r);
    r = cmd(c, "EXISTS %s:meta", id);
    cr_assert_eq(r->integer, 0, "meta in database 0");
    freeReplyObject(r);
    redisFree(c);
}

Test(redis, foreign_keys_are_not_taken_for_an_experiment)
{
    char uri[300];
    redisContext *c = shared_redis(-1, uri, sizeof uri);
    const char *id = uid("foreign");
    freeReplyObject(cmd(c, "HSET %s:meta format other-tool", id));
    xp_error_t err = {0};
    cr_assert_null(try_open(uri, id, false, &err), "opened a foreign store");
    cr_assert_eq(err.code, XP_ECORRUPT, "code %u '%s'", err.code, err.message);
    cr_assert(strstr(err.message, "not an xp store"), "'%s'", err.message);
    freeReplyObject(cmd(c, "DEL %s:meta", id));
    freeReplyObject(cmd(c, "SET %s:meta plain-string", id));
    cr_assert_null(try_open(uri, id, false, &err), "opened a string meta");
    cr_assert(strstr(err.message, "WRONGTYPE"), "'%s'", err.message);
    cr_assert_null(strchr(err.message, '\n'), "multi-line error");
    freeReplyObject(cmd(c, "DEL %s:meta", id));
    cr_assert_null(try_open(uri, id, true, &err), "must_exist opened");
    cr_assert_eq(err.code, XP_ENOTFOUND, "code %u '%s'", err.code, err.message);
    cr_assert(strstr(err.message, id), "'%s'", err.message);
    redisFree(c);
}

/* A stored record that is not BSON, or not a trial record, is shown
 * marked damaged; the history of the other trials is still read. */
Test(redis, damaged_records_marked_in_history)
{
    char uri[300];
    redisContext *c = shared_redis(-1, uri, sizeof uri);
    const char *id = uid("damaged");
    xp_experiment *ex = open_ok(uri, id);
    xp_result(xp_step_add(ex, "constant", constant, 0, NULL, NULL, 0));
    for (int i = 0; i < 3; i++)
        run_ok(ex);
    freeReplyObject(cmd(c, "SET %s:trial:1 not-bson", id));
    /* {status: 7}: BSON, but not a record */
    freeReplyObject(cmd(c, "SET %s:trial:2 %b", id,
                        "\x11\x00\x00\x00\x10status\x00\x07\x00\x00\x00\x00",
                        (size_t)17));
    xp_value *h = xpt_history(ex);
    cr_assert_eq(xp_value_count(h), 3, "history has %zu trials",
                 xp_value_count(h));
    for (int64_t t = 1; t <= 2; t++) {
        const xp_value *v = xp_value_at(h, (size_t)t - 1);
        cr_assert_eq(xpt_get_int(v, "trial_id"), t);
        cr_assert_str_eq(xpt_get_str(v, "status"), "damaged", "trial %lld",
                         (long long)t);
        cr_assert(strstr(xpt_get_str(v, "description"), "damaged"), "'%s'",
                  xpt_get_str(v, "description"));
    }
    cr_assert_str_eq(xpt_get_str(xp_value_at(h, 2), "status"), "succeeded");
    xp_value_destroy(&h);
    xp_experiment_destroy(&ex);
    redisFree(c);
}

/* ---------------------------------------------------------------- URIs */

Test(redis, bad_uris_rejected_before_connecting)
{
    static const struct {
        const char *uri, *expect;
    } cases[] = {
        {"redis://host:notaport", "port 'notaport'"},
        {"redis://host:0/0", "port '0'"},
        {"redis://host:65536/0", "port '65536'"},
        {"redis://h/abc", "database 'abc'"},
        {"redis://h/1/2", "database '1/2'"},
        {"redis:///0", "no host"},
        {"redis://", "no host"},
        {"redis://::1/0", "IPv6"},
        {"redis://[::1/0", "unterminated"},
        {"redis://h/0?bogus=1", "unknown option 'bogus'"},
        {"redis://h/0?timeout=abc", "timeout"},
        {"redis://h/0?timeout=0", "timeout"},
        {"redis://h/0?db=2", "given twice"},
        {"redis://user@h/0", "after a colon"},
        {"redis://:%zz@h/0", "%-escape"},
        {"rediss://127.0.0.1:6379/0", "hiredis >= 1.0"},
        {"unix://relative.sock", "absolute socket path"},
        {"unix:", "absolute socket path"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        xp_error_t err = {0};
        double t0 = xpt_now();
        cr_assert_null(try_open(cases[i].uri, "bad_uri", false, &err),
                       "%s accepted", cases[i].uri);
        cr_assert_eq(err.domain, XP_DOMAIN_ARGUMENT, "%s: domain %u '%s'",
                     cases[i].uri, err.domain, err.message);
        cr_assert_eq(err.code, XP_EINVAL, "%s: code %u '%s'", cases[i].uri,
                     err.code, err.message);
        cr_assert(strstr(err.message, cases[i].expect), "%s: '%s' lacks '%s'",
                  cases[i].uri, err.message, cases[i].expect);
        cr_assert_null(strchr(err.message, '\n'), "multi-line error");
        cr_assert_lt(xpt_now() - t0, 0.2, "%s took %.2f s", cases[i].uri,
                     xpt_now() - t0);
    }
    xp_error_t err = {0};
    cr_assert_null(try_open("rediss://h/0", "bad_uri", false, &err), "TLS");
    cr_assert(strstr(err.message, "TLS"), "'%s'", err.message);
}

Test(redis, password_never_in_messages)
{
    static const char *const uris[] = {
        "redis://:s3cret@127.0.0.1:1/0",
        "redis://alice:s3cret@127.0.0.1:1/0",
        "redis://:s3c@ret@127.0.0.1:1/0",
        "redis://:s3c/ret@127.0.0.1:1/0",
        "redis://:s3cret@127.0.0.1:bad/0",
        "redis://:s3cret@127.0.0.1:1/nodb",
        "redis://:s3cret@127.0.0.1:1/0?password=s3cret",
        "redis://:s3cret@/0",
        "rediss://:s3cret@127.0.0.1:1/0",
        "unix://:s3cret@/nonexistent/redis.sock",
        "unix://:s3cret@relative",
    };
    for (size_t i = 0; i < sizeof uris / sizeof *uris; i++) {
        xp_error_t err = {0};
        cr_assert_null(try_open(uris[i], "secret", false, &err), "#%zu opened",
                       i);
        cr_assert(err.message[0], "#%zu: empty message", i);
        cr_assert_null(strstr(err.message, "s3c"), "#%zu: password in '%s'", i,
                       err.message);
    }
    xp_error_t err = {0};
    cr_assert_null(try_open(uris[0], "secret", false, &err), "opened");
    cr_assert(strstr(err.message, "127.0.0.1:1"), "address missing: '%s'",
              err.message);
    cr_assert_eq(s_log.n, 0, "logged: %s", xpt_log_dump(&s_log));
}

Test(redis, unreachable_server_fails_fast_and_clearly)
{
    char uri[64];
    snprintf(uri, sizeof uri, "redis://127.0.0.1:%d/0", free_port());
    xp_error_t err = {0};
    double t0 = xpt_now();
    cr_assert_null(try_open(uri, "unreachable", false, &err), "opened");
    cr_assert_lt(xpt_now() - t0, 2.5, "took %.2f s", xpt_now() - t0);
    cr_assert_eq(err.domain, XP_DOMAIN_BACKEND, "domain %u", err.domain);
    cr_assert_eq(err.code, XP_EIO, "code %u", err.code);
    char where[128];
    snprintf(where, sizeof where, "cannot connect to Redis at %s",
             uri + strlen("redis://"));
    where[strlen(where) - 2] = '\0'; /* drop "/0" */
    cr_assert(strstr(err.message, where), "'%s' lacks '%s'", err.message,
              where);
    cr_assert_null(strchr(err.message, '\n'), "multi-line error");
    t0 = xpt_now();
    cr_assert_null(
        try_open("unix:///nonexistent/redis.sock", "unreachable", false, &err),
        "opened");
    cr_assert(strstr(err.message, "/nonexistent/redis.sock"), "'%s'",
              err.message);
    cr_assert_lt(xpt_now() - t0, 0.5, "took %.2f s", xpt_now() - t0);
}

/* ---------------------------------------------------------------- connection
 */

Test(redis, lost_connection_is_reestablished)
{
    char uri[300];
    redisContext *c = shared_redis(-1, uri, sizeof uri);
    const char *id = uid("reconnect");
    xp_experiment *ex = open_ok(uri, id);
    xp_node *a = xp_parameter(ex, "a");
    cr_assert_not_null(XP_RESULT(ex, work, a), "definition");
    xp_error_t err = {0};
    xp_set_param_int64(ex, "a", 1, &err);
    for (int i = 1; i <= 3; i++) {
        /* Close every other client's connection, this handle's too. */
        freeReplyObject(cmd(c, "CLIENT KILL TYPE normal SKIPME yes"));
        cr_assert_eq(run_ok(ex), i, "trial id after a lost connection");
        xp_value *h = xpt_history(ex);
        cr_assert_eq(xp_value_count(h), (size_t)i, "history");
        xp_value_destroy(&h);
    }
    xp_experiment_destroy(&ex);
    redisFree(c);
}

Test(redis, password_unix_socket_and_masked_description)
{
    /* Made at run time, so no source file (captured in the environment's
     * git diff) contains it; '@', '/' and '%' are %-escaped in the URI. */
    static char pw[64], escaped[96];
    snprintf(pw, sizeof pw, "Pw@%d/%%Zq", (int)getpid());
    snprintf(escaped, sizeof escaped, "Pw%%40%d%%2F%%25Zq", (int)getpid());
    s_srv.password = pw;
    server_start();
    char uri[PATH_MAX + 64];
    snprintf(uri, sizeof uri, "redis://:%s@127.0.0.1:%d/2", escaped,
             s_srv.port);
    xp_experiment *ex = open_ok(uri, "authed");
    char want[400];
    snprintf(want, sizeof want, "redis://:***@127.0.0.1:%d/2", s_srv.port);
    cr_assert_str_eq(xp_experiment_backend(ex), want, "description");
    xp_result(xp_step_add(ex, "constant", constant, 0, NULL, NULL, 0));
    setenv("XP_BACKEND", uri, 1); /* as a user would set it */
    run_ok(ex);
    unsetenv("XP_BACKEND");
    xp_value *t = xpt_trial(ex, 1), *env = NULL;
    xp_error_t err = {0};
    cr_assert_eq(xp_environment_get(ex, 1, NULL, &env, &err), 0, "env: '%s'",
                 err.message);
    char *json = xp_value_to_json(t);
    cr_assert_null(strstr(json, pw), "password in the trial record");
    cr_assert_null(strstr(json, escaped), "password in the trial record");
    xp_free(json);
    json = xp_value_to_json(env);
    cr_assert_null(strstr(json, pw), "password in the environment");
    cr_assert_null(strstr(json, escaped), "password in the environment");
    xp_free(json);
    xp_value_destroy(&t);
    xp_value_destroy(&env);
    xp_experiment_destroy(&ex);

    /* Wrong or missing password: refused, the password not shown. */
    snprintf(uri, sizeof uri, "redis://:Wr0ng%d@127.0.0.1:%d/2", (int)getpid(),
             s_srv.port);
    cr_assert_null(try_open(uri, "authed", false, &err), "wrong password");
    cr_assert(strstr(err.message, "refused the credentials"), "'%s'",
              err.message);
    cr_assert_null(strstr(err.message, "Wr0ng"), "'%s'", err.message);
    snprintf(uri, sizeof uri, "redis://127.0.0.1:%d/2", s_srv.port);
    cr_assert_null(try_open(uri, "authed", false, &err), "no password");
    cr_assert(strstr(err.message, "NOAUTH"), "'%s'", err.message);

    /* The same experiment over the Unix socket, both spellings. */
    const char *forms[] = {"unix://:%s@%s?db=2", "unix::%s@%s?db=2"};
    for (int i = 0; i < 2; i++) {
        snprintf(uri, sizeof uri, forms[i], escaped, s_srv.sock);
        ex = try_open(uri, "authed", true, &err);
        cr_assert_not_null(ex, "%s: '%s'", forms[i], err.message);
        cr_assert_eq(xpt_last_id(ex), 1, "last id over the socket");
        snprintf(want, sizeof want, "unix://:***@%s?db=2", s_srv.sock);
        cr_assert_str_eq(xp_experiment_backend(ex), want, "description");
        xp_experiment_destroy(&ex);
    }
}

/* ---------------------------------------------------------------- faults */

typedef struct {
    int64_t a;
    int64_t id; /* 0 when no id was allocated */
    int rc;
    bool spooled;
    char message[512];
} outcome;

#define MAX_OUTCOMES 4096

static outcome s_out[MAX_OUTCOMES];
static size_t s_n_out;

static void run_one(xp_experiment *ex, int64_t a)
{
    cr_assert_lt(s_n_out, MAX_OUTCOMES, "too many trials");
    outcome *o = &s_out[s_n_out++];
    xp_error_t err = {0};
    o->a = a;
    xp_set_param_int64(ex, "a", a, &err);
    o->rc = xp_compute(ex, NULL, NULL, &o->id, &err);
    o->spooled = o->rc != 0 && strstr(err.message, "kept in") != NULL;
    snprintf(o->message, sizeof o->message, "%s", o->rc ? err.message : "");
}

/* A failure must be one clear line naming the server; an id allocated
 * means the finished trial was kept in the spool. */
static void check_failure(const outcome *o, int port)
{
    char where[64];
    snprintf(where, sizeof where, "127.0.0.1:%d", port);
    cr_assert(strstr(o->message, where), "error does not name %s: '%s'", where,
              o->message);
    cr_assert_null(strchr(o->message, '\n'), "multi-line error");
    if (o->id != 0)
        cr_assert(o->spooled, "trial %lld failed without being kept: '%s'",
                  (long long)o->id, o->message);
}

static void *killer(void *arg)
{
    xpt_sleep(*(double *)arg);
    kill(s_srv.pid, SIGKILL);
    return NULL;
}

/* Points of metric "m" saved by outage: XP_METRIC_CHUNK_POINTS - 1, then
 * (server stopped) s_down more, then (server started again) 10 more. */
static int64_t s_down;
static int s_save_failures;

static int outage(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)in;
    int64_t e = 0;
    s_save_failures = 0;
    for (; e < XP_METRIC_CHUNK_POINTS - 1; e++)
        s_save_failures += xp_save_metric(st, "m", e, 0.5 * (double)e) != 0;
    server_kill();
    for (int64_t end = e + s_down; e < end; e++)
        s_save_failures += xp_save_metric(st, "m", e, 0.5 * (double)e) != 0;
    server_start();
    for (int64_t end = e + 10; e < end; e++)
        s_save_failures += xp_save_metric(st, "m", e, 0.5 * (double)e) != 0;
    return xp_set_int64(out, e);
}

/* Experiment id on the private server whose result step is outage,
 * saving down points while the server is stopped. */
static xp_experiment *outage_experiment(const char *id, int64_t down)
{
    server_start();
    char uri[128];
    snprintf(uri, sizeof uri, "redis://127.0.0.1:%d/0?timeout=500", s_srv.port);
    signal(SIGPIPE, SIG_DFL); /* a write to the stopped server must not kill */
    xp_experiment *ex = open_ok(uri, id);
    xp_result(xp_step_add(ex, "outage", outage, 0, NULL, NULL, 0));
    s_down = down;
    return ex;
}

/* A short outage while the first chunk of a metric is written: the chunk
 * waits in memory and the trial ends as it would have, every point
 * stored. */
Test(redis, metric_chunk_kept_through_a_short_outage)
{
    xp_experiment *ex = outage_experiment("blip", 5);
    int64_t id = run_ok(ex);
    cr_assert_eq(s_save_failures, 0, "%d points refused", s_save_failures);
    int64_t total = XP_METRIC_CHUNK_POINTS - 1 + 5 + 10;
    xp_value *t = xpt_trial(ex, id);
    cr_assert_str_eq(xpt_get_str(t, "status"), "succeeded", "'%s'",
                     xpt_get_str(t, "description"));
    cr_assert_eq(xpt_get_int(t, "result"), total, "result");
    xp_value_destroy(&t);
    xp_metric_table *mt = NULL;
    xp_error_t err = {0};
    cr_assert_eq(xp_load_metric(ex, "m", &id, 1, &mt, &err), 0, "'%s'",
                 err.message);
    cr_assert_eq(xp_metric_table_epochs(mt), (size_t)total, "%zu points",
                 xp_metric_table_epochs(mt));
    for (size_t row = 0; row < (size_t)total; row++)
        cr_assert_eq(xp_metric_table_value(mt, row, 0), 0.5 * (double)row,
                     "point %zu", row);
    xp_metric_table_destroy(&mt);
    xp_experiment_destroy(&ex);
}

/* A long one: at most XP_METRIC_HELD_CHUNKS chunks wait in memory; the
 * next fails the trial, clearly, and the trial is still recorded. */
Test(redis, metric_chunks_held_within_a_bound)
{
    xp_experiment *ex = outage_experiment(
        "outage", (int64_t)XP_METRIC_CHUNK_POINTS * XP_METRIC_HELD_CHUNKS + 1);
    int64_t id = 0;
    xp_error_t err = {0};
    cr_assert_neq(xp_compute(ex, NULL, NULL, &id, &err), 0, "succeeded");
    cr_assert_eq(err.code, XP_ESTEP, "code %u '%s'", err.code, err.message);
    cr_assert(strstr(err.message, "saving metrics") &&
                  strstr(err.message, "could not be written"),
              "'%s'", err.message);
    cr_assert_null(strchr(err.message, '\n'), "multi-line error");
    cr_assert_gt(s_save_failures, 0, "no point was refused");
    xp_value *t = xpt_trial(ex, id);
    cr_assert_str_eq(xpt_get_str(t, "status"), "failed", "status");
    cr_assert_str_eq(xpt_get_str(t, "description"), err.message, "description");
    xp_value_destroy(&t);
    xp_experiment_destroy(&ex);
}

Test(redis, server_killed_mid_run_loses_no_finished_trial)
{
    server_start();
    char uri[128];
    snprintf(uri, sizeof uri, "redis://127.0.0.1:%d/0?timeout=500", s_srv.port);
    /* A write to a dead server raises SIGPIPE: the default action (kill
     * the process) must not be reached. */
    signal(SIGPIPE, SIG_DFL);
    const char *id = "fault";
    xp_experiment *ex = open_ok(uri, id);
    xp_node *a = xp_parameter(ex, "a");
    xp_node *pl = XP_PERSIST(ex, payload, a);
    cr_assert_not_null(XP_RESULT(ex, work, a, pl), "definition");

    /* 1. The server dies inside trial 11's step: its record is spooled,
     * the next trials fail to start, clearly. */
    s_kill_at = 10;
    for (int64_t i = 0; i < 20; i++)
        run_one(ex, i);
    s_kill_at = -1;
    for (size_t i = 0; i < 10; i++)
        cr_assert_eq(s_out[i].rc, 0, "trial %zu: '%s'", i, s_out[i].message);
    const outcome *k = &s_out[10];
    cr_assert(k->spooled && k->id == 11, "trial at the kill: id %lld '%s'",
              (long long)k->id, k->message);
    char spool[PATH_MAX];
    snprintf(spool, sizeof spool, "%s/cache/%s/spool/11.bson", xpt_dir, id);
    cr_assert(strstr(k->message, spool), "'%s' does not name %s", k->message,
              spool);
    cr_assert_eq(access(spool, F_OK), 0, "no spool file %s", spool);
    for (size_t i = 11; i < 20; i++) {
        cr_assert_neq(s_out[i].rc, 0, "trial %zu ran without a server", i);
        cr_assert_eq(s_out[i].id, 0, "trial %zu got an id", i);
        check_failure(&s_out[i], s_srv.port);
    }

    /* 2. Restarted on the same data, the same handle goes on, and sync
     * writes the spooled trial. */
    server_start();
    for (int64_t i = 20; i < 30; i++)
        run_one(ex, i);
    for (size_t i = 20; i < 30; i++)
        cr_assert_eq(s_out[i].rc, 0, "after restart: '%s'", s_out[i].message);
    size_t written = 0;
    xp_error_t err = {0};
    cr_assert_eq(xp_experiment_sync(ex, &written, &err), 0, "sync: '%s'",
                 err.message);
    cr_assert_eq(written, 1, "synced %zu", written);
    cr_assert_neq(access(spool, F_OK), 0, "spool file left");

    /* 3. Killed at an arbitrary moment from another thread, repeatedly. */
    for (int round = 0; round < 3; round++) {
        pthread_t th;
        double delay = 0.02 + 0.015 * round;
        cr_assert_eq(pthread_create(&th, NULL, killer, &delay), 0, "thread");
        int failures = 0;
        for (int64_t i = 1000 * (round + 1); failures < 20; i++) {
            run_one(ex, i);
            const outcome *o = &s_out[s_n_out - 1];
            if (o->rc != 0) {
                if (failures++ < 2)
                    cr_log_info("round %d, trial a=%lld: %s", round,
                                (long long)o->a, o->message);
                check_failure(o, s_srv.port);
            }
        }
        pthread_join(th, NULL);
        int st;
        waitpid(s_srv.pid, &st, 0);
        s_srv.pid = 0;
        server_start();
    }
    xp_experiment_destroy(&ex);

    /* 4. Reopening writes whatever was spooled; every trial reported as
     * succeeded or kept is recorded as succeeded, with its parameters. */
    ex = open_ok(uri, id);
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/cache/%s/spool", xpt_dir, id);
    size_t spooled = 0, succeeded = 0;
    for (size_t i = 0; i < s_n_out; i++) {
        const outcome *o = &s_out[i];
        if (o->rc != 0 && !o->spooled)
            continue;
        spooled += o->spooled;
        succeeded += o->rc == 0;
        xp_value *t = NULL;
        cr_assert_eq(xp_trial_get(ex, o->id, &t, &err), 0,
                     "finished trial %lld (a=%lld%s) lost: '%s'",
                     (long long)o->id, (long long)o->a,
                     o->spooled ? ", spooled" : "", err.message);
        cr_assert_str_eq(xpt_get_str(t, "status"), "succeeded", "trial %lld",
                         (long long)o->id);
        cr_assert_eq(xpt_get_int(xpt_field(t, "parameters"), "a"), o->a,
                     "trial %lld has another trial's parameters",
                     (long long)o->id);
        cr_assert_eq(xpt_get_int(t, "result"), o->a + 1, "result");
        xp_value_destroy(&t);
        xp_metric_table *mt = NULL;
        cr_assert_eq(xp_load_metric(ex, "loss", &o->id, 1, &mt, &err), 0,
                     "metric of trial %lld: '%s'", (long long)o->id,
                     err.message);
        cr_assert_eq(xp_metric_table_epochs(mt), 3, "metric points");
        xp_metric_table_destroy(&mt);
        xp_value *v = NULL;
        size_t len = 0;
        cr_assert_eq(xp_load_persisted(ex, "payload", o->id, &v, &err), 0,
                     "payload of trial %lld: '%s'", (long long)o->id,
                     err.message);
        cr_assert(xp_as_blob(v, &len) && len == payload_size(o->a),
                  "payload of trial %lld has %zu bytes", (long long)o->id, len);
        xp_value_destroy(&v);
    }
    cr_log_info("%zu trials: %zu succeeded, %zu spooled and written later",
                s_n_out, succeeded, spooled);
    cr_assert_geq(succeeded, 20, "too few trials ran");
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL)
            cr_assert(e->d_name[0] == '.', "spool file %s left", e->d_name);
        closedir(d);
    }
    xp_value *h = xpt_history(ex);
    cr_assert_geq(xp_value_count(h), succeeded + spooled, "history");
    xp_value_destroy(&h);
    xp_experiment_destroy(&ex);
}
