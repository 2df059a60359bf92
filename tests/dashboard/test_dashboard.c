/* test_dashboard.c — xp-dashboard as a real process over a store seeded
 * through the public API (30 trials, a hostile string as a parameter value
 * and as a failure's description, metrics, a persisted step), asked with
 * libcurl: every route of the API, its errors, the security headers,
 * authentication, the refusal to listen openly, the live store, on local
 * and, when XP_TEST_REDIS_URI / XP_TEST_MONGODB_URI are set, on Redis
 * and MongoDB. */
#include "../backend_fixture.h"

#include <curl/curl.h>
#include <math.h>

#define HOSTILE "<img src=x onerror=alert(1)>"
#define N_TRIALS 30
#define FAILING_A 13 /* the trial with a = 13 fails */
#define LONG_POINTS 5000

/* The running test's backend, experiment and server (each criterion test
 * is a process of its own). */
static int s_kind;
static char s_backend[PATH_MAX];
static char s_id[80];
static pid_t s_server;
static char s_url[256];
static char s_out[PATH_MAX], s_err[PATH_MAX];

/* ---------------------------------------------------------------- HTTP */

typedef struct {
    long status;
    char *body; /* NUL-terminated */
    size_t len;
    char *headers; /* the response head, lower-cased names */
    size_t hlen;
} reply;

static size_t s_grow(char **buf, size_t *len, const char *data, size_t n)
{
    char *p = realloc(*buf, *len + n + 1);
    cr_assert_not_null(p, "out of memory");
    memcpy(p + *len, data, n);
    *len += n;
    p[*len] = '\0';
    *buf = p;
    return n;
}

static size_t s_on_body(char *data, size_t size, size_t n, void *user)
{
    reply *r = user;
    return s_grow(&r->body, &r->len, data, size * n);
}

static size_t s_on_header(char *data, size_t size, size_t n, void *user)
{
    reply *r = user;
    size_t len = size * n, start = r->hlen;
    s_grow(&r->headers, &r->hlen, data, len);
    for (size_t i = start; i < r->hlen && r->headers[i] != ':'; i++)
        if (r->headers[i] >= 'A' && r->headers[i] <= 'Z')
            r->headers[i] = (char)(r->headers[i] - 'A' + 'a');
    return len;
}

typedef struct {
    const char *method;   /* NULL: GET */
    const char *userpwd;  /* "user:password" for Basic, or NULL */
    const char *header;   /* one extra request header, or NULL */
    const char *base_url; /* NULL: the running server's */
} req_opts;

/* Requests path (appended to the server's URL as given: no
 * normalisation). Caller frees with reply_free. */
static reply request(const char *path, const req_opts *o)
{
    static const req_opts none = {0};
    if (!o)
        o = &none;
    reply r = {0};
    r.body = calloc(1, 1);
    r.headers = calloc(1, 1);
    CURL *c = curl_easy_init();
    cr_assert_not_null(c, "curl_easy_init");
    char url[16384];
    snprintf(url, sizeof url, "%s%s", o->base_url ? o->base_url : s_url,
             path[0] == '/' ? path + 1 : path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s_on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, s_on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    if (o->method && strcmp(o->method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    else if (o->method)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, o->method);
    if (o->method && strcmp(o->method, "POST") == 0)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "x=1");
    if (o->userpwd) {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(c, CURLOPT_USERPWD, o->userpwd);
    }
    struct curl_slist *h =
        o->header ? curl_slist_append(NULL, o->header) : NULL;
    if (h)
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    CURLcode rc = curl_easy_perform(c);
    cr_assert_eq(rc, CURLE_OK, "GET %s: %s", url, curl_easy_strerror(rc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return r;
}

static void reply_free(reply *r)
{
    free(r->body);
    free(r->headers);
    r->body = r->headers = NULL;
}

/* Value of response header name (lower case), into buf[512], or NULL. */
static const char *header(const reply *r, const char *name, char *buf)
{
    char key[128];
    snprintf(key, sizeof key, "\n%s:", name);
    const char *p = strstr(r->headers, key);
    if (!p)
        return NULL;
    p += strlen(key);
    p += strspn(p, " ");
    size_t n = strcspn(p, "\r\n");
    snprintf(buf, 512, "%.*s", (int)(n < 511 ? n : 511), p);
    return buf;
}

/* The body as a value; asserts it is JSON. Caller destroys. */
static xp_value *json_of(const reply *r)
{
    xp_value *v = xp_value_new();
    xp_error_t err = {0};
    cr_assert_eq(xp_value_from_json(v, r->body, &err), 0,
                 "not JSON (%s): %.300s", err.message, r->body);
    return v;
}

/* GET path expecting status and a JSON body; caller destroys. */
static xp_value *get_json(const char *path, long status)
{
    reply r = request(path, NULL);
    cr_assert_eq(r.status, status, "GET %s: %ld, expected %ld: %.400s", path,
                 r.status, status, r.body);
    char buf[512];
    const char *type = header(&r, "content-type", buf);
    cr_assert(type && strcmp(type, "application/json; charset=utf-8") == 0,
              "GET %s: content type %s", path, type ? type : "(none)");
    xp_value *v = json_of(&r);
    reply_free(&r);
    return v;
}

/* GET path expecting an error status with {"error": "..."} holding
 * want (may be NULL). */
static void get_error(const char *path, long status, const char *want)
{
    xp_value *v = get_json(path, status);
    const char *msg = xpt_get_str(v, "error");
    cr_assert(msg && *msg, "GET %s: empty error", path);
    cr_assert_null(strchr(msg, '\n'), "GET %s: multi-line error", path);
    if (want)
        cr_assert(strstr(msg, want), "GET %s: error '%s' lacks '%s'", path, msg,
                  want);
    xp_value_destroy(&v);
}

/* ---------------------------------------------------------------- server */

static const char *dashboard_path(void)
{
    const char *p = getenv("XP_DASHBOARD");
    cr_assert(p && access(p, X_OK) == 0,
              "XP_DASHBOARD (%s) is not an executable xp-dashboard",
              p ? p : "unset");
    return p;
}

/* Starts xp-dashboard with args (NULL-terminated, after the program)
 * and waits for the URL it prints; false when it exited first (its status
 * in *status). */
static bool try_start(const char *const *args, int *status)
{
    char *argv[32];
    int n = 0;
    argv[n++] = (char *)dashboard_path();
    for (; args[n - 1] && n < 31; n++)
        argv[n] = (char *)args[n - 1];
    argv[n] = NULL;
    snprintf(s_out, sizeof s_out, "%s/.dashboard.out", xpt_dir);
    snprintf(s_err, sizeof s_err, "%s/.dashboard.err", xpt_dir);
    unlink(s_out); /* a previous server's */
    s_server = xpt_spawn(argv, NULL, s_out, s_err);
    /* Not a timing assertion: how long to wait before calling it hung. */
    for (int i = 0; i < 6000; i++) {
        if (access(s_out, F_OK) != 0) { /* not yet created by the child */
            xpt_sleep(0.01);
            continue;
        }
        char *out = xpt_slurp(s_out);
        const char *p = strstr(out, "xp dashboard: ");
        if (p && strchr(p, '\n')) {
            p += strlen("xp dashboard: ");
            snprintf(s_url, sizeof s_url, "%.*s", (int)strcspn(p, "\n"), p);
            free(out);
            return true;
        }
        free(out);
        int st;
        if (waitpid(s_server, &st, WNOHANG) == s_server) {
            *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            s_server = 0;
            return false;
        }
        xpt_sleep(0.01);
    }
    cr_assert_fail("xp-dashboard printed no URL in 60 s");
    return false;
}

static void start(const char *const *args)
{
    int status = 0;
    if (!try_start(args, &status)) {
        char *err = xpt_slurp(s_err);
        cr_assert_fail("xp-dashboard exited (%d) before listening: %s", status,
                       err);
    }
    cr_assert(strncmp(s_url, "http://127.0.0.1:", 17) == 0 &&
                  s_url[strlen(s_url) - 1] == '/',
              "URL %s", s_url);
}

/* The usual server: the seeded experiment on the test's backend. */
static void start_default(void)
{
    const char *args[] = {"--backend",   s_backend, "--listen",
                          "127.0.0.1:0", s_id,      NULL};
    start(args);
}

/* SIGTERM; asserts a clean exit (0, also under the sanitizers). */
static void stop(void)
{
    if (!s_server)
        return;
    kill(s_server, SIGTERM);
    int status = xpt_wait(s_server);
    s_server = 0;
    char *err = xpt_slurp(s_err);
    cr_assert_eq(status, 0, "xp-dashboard exited %d: %s", status, err);
    free(err);
}

/* ---------------------------------------------------------------- seeding */

static int prepare(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    xp_set_document(out);
    xp_set_int64(xp_document_set(out, "a"), xp_as_int64(in[0]));
    xp_set_string(xp_document_set(out, "name"), xp_as_string(in[1], NULL));
    return 0;
}

static int train(xp_step *st, const xp_value *const *in, xp_value *out)
{
    int64_t a = xp_as_int64(xp_value_get(in[0], "a"));
    double lr = xp_as_double(in[1]);
    if (a == FAILING_A)
        return xp_step_fail(st, "%s", HOSTILE);
    for (int e = 0; e < 20; e++)
        xp_save_metric(st, "loss", e, 1.0 / (1 + e * lr));
    if (a == 1)
        for (int e = 0; e < LONG_POINTS; e++)
            xp_save_metric(st, "long", e, e == 7 ? NAN : sin(e / 50.0));
    return xp_set_double(out, (double)a * lr);
}

static int score(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)st;
    return xp_set_double(out, xp_as_double(in[0]) + 0.5);
}

static xp_experiment *open_writer(void)
{
    xp_open_options o = XP_OPEN_OPTIONS_INIT;
    o.backend = s_backend;
    o.threads = 1;
    xp_experiment *ex = NULL;
    xp_error_t err = {0};
    cr_assert_eq(xp_experiment_open(&ex, s_id, &o, &err), 0, "open %s: %s",
                 s_id, err.message);
    xp_node *a = xp_parameter(ex, "a");
    xp_node *name = xp_parameter(ex, "name");
    xp_node *lr = xp_parameter(ex, "lr");
    xp_node *flag = xp_parameter(ex, "flag");
    xp_node *p = xp_persist(XP_STEP(ex, prepare, a, name));
    xp_node *t = XP_STEP(ex, train, p, lr, flag);
    cr_assert_not_null(XP_RESULT(ex, score, t), "definition");
    return ex;
}

/* Runs trials a = from .. to - 1; a = 5 has the hostile name. */
static void run_trials(xp_experiment *ex, int from, int to)
{
    static const char *const names[] = {"alpha", "beta", "gamma"};
    for (int a = from; a < to; a++) {
        xp_error_t err = {0};
        xp_set_param_int64(ex, "a", a, &err);
        xp_set_param_string(ex, "name", a == 5 ? HOSTILE : names[a % 3], &err);
        xp_set_param_double(ex, "lr", 0.5 + 0.25 * (a % 4), &err);
        xp_set_param_bool(ex, "flag", a % 2 == 0, &err);
        int rc = xp_compute(ex, NULL, NULL, NULL, &err);
        cr_assert_eq(rc, a == FAILING_A ? -1 : 0, "trial a=%d: %s", a,
                     err.message);
    }
}

/* The test's experiment with trials a = 1 .. N_TRIALS (ids 1 .. 30). */
static void seed(void)
{
    xp_experiment *ex = open_writer();
    run_trials(ex, 1, N_TRIALS + 1);
    xp_experiment_destroy(&ex);
}

/* ---------------------------------------------------------------- setup */

static void s_fini(void)
{
    if (s_server) {
        kill(s_server, SIGKILL);
        waitpid(s_server, NULL, 0);
        s_server = 0;
    }
    if (s_kind == XPT_REDIS)
        xpt_redis_forget(s_backend, s_id);
    curl_global_cleanup();
    xpt_teardown();
}

static void s_use(int kind)
{
    s_kind = kind;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    xp_log_set_level(XP_LOG_OFF); /* trial 13's failure is on purpose */
    char cache[PATH_MAX];
    snprintf(cache, sizeof cache, "%s/cache", xpt_dir);
    setenv("XP_CACHE_DIR", cache, 1);
    snprintf(s_id, sizeof s_id, "dash_%d", (int)getpid());
    xpt_backend_pick(kind, s_backend, sizeof s_backend);
}

/* One test per backend; LOCAL_TEST for the local store only. */
#define BACKEND_TEST(name, seconds)                                            \
    XPT_ON_EVERY_BACKEND(check, name, seconds, s_use, s_fini)

#define LOCAL_TEST(name, seconds)                                              \
    static void check_##name(void);                                            \
    Test(local, name, .init = xpt_setup, .fini = s_fini, .timeout = seconds)   \
    {                                                                          \
        s_use(XPT_LOCAL);                                                      \
        check_##name();                                                        \
    }                                                                          \
    static void check_##name(void)

/* ---------------------------------------------------------------- helpers */

static char *path_of(char *buf, const char *fmt, ...) XP_PRINTF(2, 3);
static char *path_of(char *buf, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, 1024, fmt, ap);
    va_end(ap);
    return buf;
}

static int64_t trial_at(const xp_value *trials, size_t i)
{
    return xpt_get_int(xp_value_at(trials, i), "trial_id");
}

/* The hostile text only ever as JSON text: never raw markup. */
static void assert_no_markup(const reply *r, const char *what)
{
    cr_assert_null(strstr(r->body, "<img"), "%s: raw markup in %s", what,
                   r->body);
    cr_assert_null(strchr(r->body, '<'), "%s: '<' in %.300s", what, r->body);
}

/* ---------------------------------------------------------------- tests */

BACKEND_TEST(experiments_and_history, 180)
{
    seed();
    start_default();
    char p[1024];

    /* The list and the experiment. */
    xp_value *v = get_json("/api/experiments", 200);
    const xp_value *list = xpt_typed(v, "experiments", XP_TYPE_ARRAY);
    cr_assert_eq(xp_value_count(list), 1, "only the id given is served");
    cr_assert_str_eq(xpt_get_str(xp_value_at(list, 0), "id"), s_id);
    cr_assert_eq(xpt_get_int(xp_value_at(list, 0), "last_trial_id"), N_TRIALS);
    xpt_get_str(v, "backend");
    xp_value_destroy(&v);
    v = get_json(path_of(p, "/api/experiments/%s", s_id), 200);
    cr_assert_eq(xpt_get_int(v, "last_trial_id"), N_TRIALS);
    cr_assert_str_eq(xpt_get_str(v, "result"), "score");
    char *j = xp_value_to_json(xpt_field(v, "parameters"));
    cr_assert_str_eq(j, "[ \"a\", \"name\", \"lr\", \"flag\" ]", "%s", j);
    xp_free(j);
    j = xp_value_to_json(xpt_field(v, "steps"));
    cr_assert_str_eq(j, "[ \"prepare\", \"train\", \"score\" ]", "%s", j);
    xp_free(j);
    xp_value_destroy(&v);

    /* Default page: every trial in id order, limit 100. */
    v = get_json(path_of(p, "/api/experiments/%s/history", s_id), 200);
    cr_assert_eq(xpt_get_int(v, "matched"), N_TRIALS);
    cr_assert_eq(xpt_get_int(v, "limit"), 100);
    cr_assert_eq(xpt_get_int(v, "offset"), 0);
    cr_assert_eq(xpt_get_int(v, "last_trial_id"), N_TRIALS);
    const xp_value *trials = xpt_field(v, "trials");
    cr_assert_eq(xp_value_count(trials), N_TRIALS);
    for (size_t i = 0; i < N_TRIALS; i++)
        cr_assert_eq(trial_at(trials, i), (int64_t)i + 1, "order at %zu", i);
    const xp_value *failed = xp_value_at(trials, FAILING_A - 1);
    cr_assert_str_eq(xpt_get_str(failed, "status"), "failed");
    cr_assert(strstr(xpt_get_str(failed, "description"), HOSTILE),
              "description '%s'", xpt_get_str(failed, "description"));
    xpt_get_str(xp_value_at(trials, 0), "started"); /* ISO text */
    xp_value_destroy(&v);

    /* Sorted by result descending, a window of it. */
    v = get_json(path_of(p,
                         "/api/experiments/%s/history?sort=-result&offset=2"
                         "&limit=3",
                         s_id),
                 200);
    trials = xpt_field(v, "trials");
    cr_assert_eq(xp_value_count(trials), 3);
    cr_assert_eq(xpt_get_int(v, "matched"), N_TRIALS);
    double prev = INFINITY;
    for (size_t i = 0; i < 3; i++) {
        double r = xp_as_double(xpt_field(xp_value_at(trials, i), "result"));
        cr_assert_leq(r, prev, "not descending at %zu", i);
        prev = r;
    }
    /* a * lr + 0.5, lr = 0.5 + 0.25 * (a % 4), from the largest: a = 27,
     * 30, 23, 26, 19 (the failed trial's null last). */
    cr_assert_eq(trial_at(trials, 0), 23, "first of the window");
    cr_assert_eq(trial_at(trials, 2), 19, "last of the window");
    xp_value_destroy(&v);

    /* A filter (URL-encoded), with fields. */
    v = get_json(path_of(p,
                         "/api/experiments/%s/history?filter=a%%20%%3E%%3D%%"
                         "2025%%20and%%20status%%20%%3D%%3D%%20%%22succeeded%%"
                         "22&fields=parameters,result",
                         s_id),
                 200);
    cr_assert_eq(xpt_get_int(v, "matched"), 6);
    trials = xpt_field(v, "trials");
    cr_assert_eq(xp_value_count(trials), 6);
    const xp_value *t0 = xp_value_at(trials, 0);
    cr_assert_eq(xp_value_count(t0), 3,
                 "fields kept: trial_id, parameters, "
                 "result");
    cr_assert_eq(xpt_get_int(xpt_field(t0, "parameters"), "a"), 25);
    cr_assert_null(xp_value_get(t0, "status"), "status kept");
    xp_value_destroy(&v);

    /* The hostile value matched as a string. */
    reply r = request(path_of(p,
                              "/api/experiments/%s/history?filter=parameters."
                              "name%%20%%3D%%3D%%20%%22%%3Cimg%%20src%%3Dx%%"
                              "20onerror%%3Dalert(1)%%3E%%22",
                              s_id),
                      NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    assert_no_markup(&r, "history");
    cr_assert(strstr(r.body, "\\u003cimg src=x onerror=alert(1)\\u003e"),
              "escaped text missing: %s", r.body);
    v = json_of(&r);
    cr_assert_eq(xpt_get_int(v, "matched"), 1);
    xp_value_destroy(&v);
    reply_free(&r);

    /* Bad requests. */
    get_error(path_of(p, "/api/experiments/%s/history?filter=a%%20%%3E", s_id),
              400, "column");
    get_error(path_of(p, "/api/experiments/%s/history?sort=%%2B%%2B", s_id),
              400, NULL);
    get_error(path_of(p, "/api/experiments/%s/history?limit=10001", s_id), 400,
              "limit");
    get_error(path_of(p, "/api/experiments/%s/history?limit=0", s_id), 400,
              "limit");
    get_error(path_of(p, "/api/experiments/%s/history?offset=-1", s_id), 400,
              "offset");
    get_error(path_of(p, "/api/experiments/%s/history?limit=abc", s_id), 400,
              "limit");
    stop();
}

BACKEND_TEST(trial_routes, 180)
{
    seed();
    start_default();
    char p[1024];

    /* The trial document with its metrics and persisted steps. */
    xp_value *v =
        get_json(path_of(p, "/api/experiments/%s/trials/1", s_id), 200);
    cr_assert_eq(xpt_get_int(v, "trial_id"), 1);
    cr_assert_str_eq(xpt_get_str(v, "status"), "succeeded");
    char *j = xp_value_to_json(xpt_field(v, "metrics"));
    cr_assert_str_eq(j, "[ \"long\", \"loss\" ]", "%s", j);
    xp_free(j);
    j = xp_value_to_json(xpt_field(v, "persisted"));
    cr_assert_str_eq(j, "[ \"prepare\" ]", "%s", j);
    xp_free(j);
    xpt_get_str(v, "code_hash");
    xp_value_destroy(&v);

    /* Hostile parameter value of trial 5, escaped. */
    reply r = request(path_of(p, "/api/experiments/%s/trials/5", s_id), NULL);
    cr_assert_eq(r.status, 200);
    assert_no_markup(&r, "trial 5");
    v = json_of(&r);
    cr_assert_str_eq(xpt_get_str(xpt_field(v, "parameters"), "name"), HOSTILE);
    xp_value_destroy(&v);
    reply_free(&r);

    /* Code, environment, persisted value. */
    v = get_json(path_of(p, "/api/experiments/%s/trials/2/code", s_id), 200);
    cr_assert(strstr(xpt_get_str(v, "text"), "xp_step_fail"), "code text");
    cr_assert_eq(xp_value_count(xpt_field(xpt_field(v, "code"), "steps")), 3);
    xp_value_destroy(&v);
    v = get_json(path_of(p, "/api/experiments/%s/trials/2/environment", s_id),
                 200);
    xpt_typed(v, "platform", XP_TYPE_DOCUMENT);
    xp_value_destroy(&v);
    v = get_json(
        path_of(p, "/api/experiments/%s/trials/5/persisted/prepare", s_id),
        200);
    cr_assert_str_eq(xpt_get_str(v, "step"), "prepare");
    cr_assert_str_eq(xpt_get_str(xpt_field(v, "value"), "name"), HOSTILE);
    xp_value_destroy(&v);

    /* A metric: whole, cut to 100 points, a window; NaN as text. */
    v = get_json(
        path_of(p, "/api/experiments/%s/trials/1/metrics/long?full=1", s_id),
        200);
    cr_assert_eq(xpt_get_int(v, "total"), LONG_POINTS);
    cr_assert_eq(xpt_get_bool(v, "downsampled"), false);
    const xp_value *values = xpt_field(v, "values");
    cr_assert_eq(xp_value_count(values), LONG_POINTS);
    cr_assert_str_eq(xp_as_string(xp_value_at(values, 7), NULL), "NaN");
    cr_assert_eq(xp_as_int64(xp_value_at(xpt_field(v, "epochs"), 4999)), 4999);
    xp_value_destroy(&v);
    v = get_json(path_of(p,
                         "/api/experiments/%s/trials/1/metrics/long?points=100",
                         s_id),
                 200);
    cr_assert_eq(xpt_get_bool(v, "downsampled"), true);
    size_t n = xp_value_count(xpt_field(v, "values"));
    cr_assert(n > 2 && n <= 100, "%zu points", n);
    cr_assert_eq(xp_value_count(xpt_field(v, "epochs")), n);
    xp_value_destroy(&v);
    v = get_json(path_of(p,
                         "/api/experiments/%s/trials/1/metrics/"
                         "long?from=100&to=199",
                         s_id),
                 200);
    cr_assert_eq(xpt_get_int(v, "total"), 100);
    cr_assert_eq(xp_as_int64(xp_value_at(xpt_field(v, "epochs"), 0)), 100);
    xp_value_destroy(&v);
    v = get_json(path_of(p, "/api/experiments/%s/trials/2/metrics/loss", s_id),
                 200);
    cr_assert_eq(xpt_get_int(v, "total"), 20);
    cr_assert_eq(xpt_get_int(v, "trial"), 2);
    cr_assert_str_eq(xpt_get_str(v, "name"), "loss");
    xp_value_destroy(&v);

    /* The graph, of the experiment and of a failed trial; DOT. */
    v = get_json(path_of(p, "/api/experiments/%s/graph", s_id), 200);
    cr_assert_eq(xp_value_count(xpt_field(v, "steps")), 3);
    cr_assert_eq(xp_value_count(xpt_field(v, "parameters")), 4);
    xp_value_destroy(&v);
    v = get_json(
        path_of(p, "/api/experiments/%s/trials/%d/graph", s_id, FAILING_A),
        200);
    const xp_value *steps = xpt_field(v, "steps");
    cr_assert_str_eq(xpt_get_str(xp_value_at(steps, 1), "status"), "failed");
    cr_assert_str_eq(xpt_get_str(xp_value_at(steps, 2), "status"), "not run");
    xp_value_destroy(&v);
    r = request(path_of(p, "/api/experiments/%s/graph?format=dot", s_id), NULL);
    char buf[512];
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(header(&r, "content-type", buf),
                     "text/vnd.graphviz; charset=utf-8");
    cr_assert(strstr(r.body, "digraph") && strstr(r.body, "train"), "%s",
              r.body);
    reply_free(&r);
    get_error(path_of(p, "/api/experiments/%s/graph?format=svg", s_id), 400,
              "format");

    /* Diff of two trials. */
    v = get_json(path_of(p, "/api/experiments/%s/diff?a=1&b=2", s_id), 200);
    const xp_value *lines = xpt_field(v, "parameters");
    cr_assert_gt(xp_value_count(lines), 0, "parameters differ");
    cr_assert_eq(xp_value_count(xpt_field(v, "code")), 0, "same code");
    xp_value_destroy(&v);
    get_error(path_of(p, "/api/experiments/%s/diff?a=1", s_id), 400, NULL);

    /* Unknown things: 404 with a JSON error. */
    get_error("/api/experiments/no_such_experiment", 404, "no_such_experiment");
    get_error(path_of(p, "/api/experiments/%s/trials/999", s_id), 404, NULL);
    get_error(path_of(p, "/api/experiments/%s/trials/0", s_id), 404, NULL);
    get_error(path_of(p, "/api/experiments/%s/trials/abc", s_id), 404, NULL);
    get_error(path_of(p, "/api/experiments/%s/trials/1/metrics/nope", s_id),
              404, NULL);
    get_error(path_of(p, "/api/experiments/%s/trials/1/persisted/train", s_id),
              404, NULL);
    get_error(path_of(p, "/api/experiments/%s/trials/1/nothing", s_id), 404,
              NULL);
    get_error(path_of(p, "/api/experiments/%s/history/", s_id), 404, NULL);
    get_error("/api/nothing", 404, NULL);
    stop();
}

/* An experiment file with two command steps, one trial: greet writes the
 * hostile string to stdout and a line to stderr, count fails when n < 0. */
static void seed_commands(int64_t n)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s.yaml", xpt_dir, s_id);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f,
            "experiment: %s\n"
            "parameters:\n"
            "  n: {type: int}\n"
            "steps:\n"
            "  greet:\n"
            "    shell: printf '%%s\\n' '" HOSTILE "'; echo warned >&2\n"
            "    output: none\n"
            "  count:\n"
            "    shell: test {n} -ge 0 || exit 4; echo {n}\n"
            "    inputs: [greet]\n"
            "result: count\n",
            s_id);
    fclose(f);
    xp_definition *d = NULL;
    xp_error_t err = {0};
    cr_assert_eq(xp_definition_load(&d, path, &err), 0, "%s", err.message);
    xp_open_options o = XP_OPEN_OPTIONS_INIT;
    o.backend = s_backend;
    xp_experiment *ex = NULL;
    cr_assert_eq(xp_experiment_open(&ex, s_id, &o, &err), 0, "%s", err.message);
    cr_assert_not_null(xp_result(xp_definition_apply(d, ex)));
    xp_set_param_int64(ex, "n", n, &err);
    xp_compute(ex, NULL, NULL, NULL, &err);
    xp_experiment_destroy(&ex);
    xp_definition_destroy(&d);
}

/* A trial's command logs: all of them, one by step, the hostile stdout
 * escaped; a failed step's log; the 404s. */
BACKEND_TEST(trial_logs, 120)
{
    seed_commands(-1);
    start_default();
    char p[1024];
    reply r =
        request(path_of(p, "/api/experiments/%s/trials/1/logs", s_id), NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    assert_no_markup(&r, "logs");
    xp_value *v = json_of(&r);
    reply_free(&r);
    cr_assert_eq(xpt_get_int(v, "trial"), 1);
    const xp_value *logs = xpt_field(v, "logs");
    cr_assert_eq(xp_value_count(logs), 2);
    const xp_value *greet = xp_value_at(logs, 0);
    cr_assert_str_eq(xpt_get_str(greet, "step"), "greet");
    const xp_value *log = xpt_field(greet, "log");
    cr_assert_str_eq(xpt_get_str(log, "stdout"), HOSTILE "\n");
    cr_assert_str_eq(xpt_get_str(log, "stderr"), "warned\n");
    cr_assert_eq(xpt_get_int(log, "status"), 0);
    const xp_value *count = xp_value_at(logs, 1);
    cr_assert_str_eq(xpt_get_str(count, "step"), "count");
    cr_assert_eq(xpt_get_int(xpt_field(count, "log"), "status"), 4);
    xp_value_destroy(&v);

    v = get_json(path_of(p, "/api/experiments/%s/trials/1/logs/greet", s_id),
                 200);
    cr_assert_str_eq(xpt_get_str(v, "step"), "greet");
    cr_assert_eq(xpt_get_int(xpt_field(v, "log"), "stdout_bytes"),
                 (int64_t)strlen(HOSTILE) + 1);
    xp_value_destroy(&v);
    get_error(path_of(p, "/api/experiments/%s/trials/1/logs/nope", s_id), 404,
              NULL);
    get_error(path_of(p, "/api/experiments/%s/trials/1/logs/a%%20b", s_id), 400,
              NULL);
    get_error(path_of(p, "/api/experiments/%s/trials/9/logs", s_id), 404, NULL);
    get_error(path_of(p, "/api/experiments/%s/trials/1/logs/greet/x", s_id),
              404, NULL);
    stop();
}

/* A trial of C steps has no command logs: an empty list. */
LOCAL_TEST(trial_logs_of_c_steps, 120)
{
    seed();
    start_default();
    char p[1024];
    xp_value *v =
        get_json(path_of(p, "/api/experiments/%s/trials/1/logs", s_id), 200);
    cr_assert_eq(xp_value_count(xpt_field(v, "logs")), 0);
    xp_value_destroy(&v);
    stop();
}

/* New trials written by another handle while the server runs appear on
 * the next request (the dashboard polls). */
BACKEND_TEST(live_store, 180)
{
    xp_experiment *ex = open_writer();
    run_trials(ex, 1, 4);
    start_default();
    char p[1024];
    path_of(p, "/api/experiments/%s/history?sort=-trial_id&limit=1", s_id);
    xp_value *v = get_json(p, 200);
    cr_assert_eq(xpt_get_int(v, "last_trial_id"), 3);
    cr_assert_eq(xpt_get_int(v, "matched"), 3);
    xp_value_destroy(&v);
    run_trials(ex, 4, 9);
    v = get_json(p, 200);
    cr_assert_eq(xpt_get_int(v, "last_trial_id"), 8);
    cr_assert_eq(xpt_get_int(v, "matched"), 8);
    cr_assert_eq(trial_at(xpt_field(v, "trials"), 0), 8);
    xp_value_destroy(&v);
    v = get_json(path_of(p, "/api/experiments/%s/trials/8", s_id), 200);
    cr_assert_eq(xpt_get_int(xpt_field(v, "parameters"), "a"), 8);
    xp_value_destroy(&v);
    xp_experiment_destroy(&ex);
    stop();
}

/* ---- many clients at once on the shared handles */

typedef struct {
    int ok, failed;
    char path[3][256];
} client_work;

static void *client(void *arg)
{
    client_work *w = arg;
    for (int i = 0; i < 30; i++) {
        reply r = request(w->path[i % 3], NULL);
        if (r.status == 200)
            w->ok++;
        else
            w->failed++;
        reply_free(&r);
    }
    return NULL;
}

LOCAL_TEST(concurrent_requests, 120)
{
    seed();
    const char *args[] = {"--backend", s_backend, "--listen", "127.0.0.1:0",
                          "--threads", "4",       NULL};
    start(args);
    pthread_t th[6];
    client_work w[6];
    for (int i = 0; i < 6; i++) {
        memset(&w[i], 0, sizeof w[i]);
        snprintf(w[i].path[0], 256, "/api/experiments/%s/history?sort=-result",
                 s_id);
        snprintf(w[i].path[1], 256, "/api/experiments/%s/trials/%d", s_id,
                 i + 1);
        snprintf(w[i].path[2], 256,
                 "/api/experiments/%s/trials/1/metrics/long?points=500", s_id);
        cr_assert_eq(pthread_create(&th[i], NULL, client, &w[i]), 0);
    }
    for (int i = 0; i < 6; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(w[i].failed, 0, "client %d: %d failed", i, w[i].failed);
        cr_assert_eq(w[i].ok, 30);
    }
    /* Every experiment of the backend when no id is given. */
    xp_value *v = get_json("/api/experiments", 200);
    cr_assert_eq(xp_value_count(xpt_field(v, "experiments")), 1);
    xp_value_destroy(&v);
    stop();
}

/* ---- HTTP: methods, bounds, traversal, headers, static files */

static void assert_security_headers(const reply *r, bool api, const char *what)
{
    char buf[512];
    const char *csp = header(r, "content-security-policy", buf);
    cr_assert(csp && strstr(csp, "default-src 'none'") &&
                  strstr(csp, "script-src 'self'") &&
                  strstr(csp, "frame-ancestors 'none'"),
              "%s: CSP %s", what, csp ? csp : "(none)");
    cr_assert_str_eq(header(r, "x-content-type-options", buf), "nosniff", "%s",
                     what);
    cr_assert_str_eq(header(r, "referrer-policy", buf), "no-referrer", "%s",
                     what);
    if (api)
        cr_assert_str_eq(header(r, "cache-control", buf), "no-store", "%s",
                         what);
}

LOCAL_TEST(http_rules, 120)
{
    seed();
    start_default();
    char p[1024], buf[512];

    /* Pages and headers. */
    reply r = request("/", NULL);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(header(&r, "content-type", buf),
                     "text/html; charset=utf-8");
    cr_assert(strstr(r.body, "<html"), "index.html: %.200s", r.body);
    assert_security_headers(&r, false, "/");
    char etag[512];
    snprintf(etag, sizeof etag, "If-None-Match: %s", header(&r, "etag", buf));
    reply_free(&r);
    req_opts cond = {.header = etag};
    r = request("/index.html", &cond);
    cr_assert_eq(r.status, 304, "If-None-Match of the ETag");
    reply_free(&r);
    static const char *const assets[][2] = {
        {"/app.js", "text/javascript; charset=utf-8"},
        {"/app.css", "text/css; charset=utf-8"},
        {"/uPlot.iife.min.js", "text/javascript; charset=utf-8"},
        {"/uPlot.min.css", "text/css; charset=utf-8"},
    };
    for (size_t i = 0; i < 4; i++) {
        r = request(assets[i][0], NULL);
        cr_assert_eq(r.status, 200, "%s", assets[i][0]);
        cr_assert_str_eq(header(&r, "content-type", buf), assets[i][1]);
        cr_assert_gt(r.len, 100, "%s is %zu bytes", assets[i][0], r.len);
        assert_security_headers(&r, false, assets[i][0]);
        reply_free(&r);
    }
    r = request(path_of(p, "/api/experiments/%s", s_id), NULL);
    assert_security_headers(&r, true, "api");
    reply_free(&r);

    /* HEAD: the head alone; other methods: 405. */
    req_opts head = {.method = "HEAD"};
    r = request(path_of(p, "/api/experiments/%s/trials/1", s_id), &head);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(r.len, 0, "HEAD has a body");
    reply_free(&r);
    static const char *const methods[] = {"POST", "PUT", "DELETE", "OPTIONS",
                                          "PATCH"};
    for (size_t i = 0; i < 5; i++) {
        req_opts m = {.method = methods[i]};
        r = request(path_of(p, "/api/experiments/%s/history", s_id), &m);
        cr_assert_eq(r.status, 405, "%s: %ld", methods[i], r.status);
        cr_assert(strstr(r.body, "\"error\""), "%s: %s", methods[i], r.body);
        assert_security_headers(&r, true, methods[i]);
        cr_assert_str_eq(header(&r, "allow", buf), "GET, HEAD");
        reply_free(&r);
    }

    /* Traversal and odd paths: never a file outside the built-in ones. */
    static const char *const paths[] = {
        "/../etc/passwd",
        "/%2e%2e/etc/passwd",
        "/%2E%2E%2Fetc%2Fpasswd",
        "/api/../index.html",
        "/api/%2e%2e/index.html",
        "/web/index.html",
        "/.gitignore",
        "/index.html/",
        "//index.html",
        "/meson.build",
        "/api/experiments/..%2F..%2Fetc",
    };
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
        r = request(paths[i], NULL);
        cr_assert_eq(r.status, 404, "%s: %ld %.200s", paths[i], r.status,
                     r.body);
        cr_assert_null(strstr(r.body, "root:"), "%s", paths[i]);
        assert_security_headers(&r, strncmp(paths[i], "/api/", 5) == 0,
                                paths[i]);
        reply_free(&r);
    }
    r = request("/index.html%00.png", NULL);
    cr_assert_eq(r.status, 400, "NUL in the path: %ld", r.status);
    reply_free(&r);
    get_error(path_of(p, "/api/experiments/%s/history?filter=a%%00", s_id), 400,
              "NUL");

    /* Bounds: an 8 KiB target, a 4 KiB filter. */
    char *big = malloc(9000 + 64);
    int len = snprintf(big, 64, "/api/experiments/%s/history?sort=", s_id);
    memset(big + len, 'a', 9000);
    big[len + 9000] = '\0';
    r = request(big, NULL);
    cr_assert_eq(r.status, 414, "9 KB target: %ld", r.status);
    reply_free(&r);
    len = snprintf(big, 64, "/api/experiments/%s/history?filter=", s_id);
    memset(big + len, 'a', 5000);
    big[len + 5000] = '\0';
    get_error(big, 400, "filter");
    free(big);

    /* DNS rebinding: a loopback server answers loopback names only. */
    req_opts evil = {.header = "Host: attacker.example:8080"};
    r = request("/api/experiments", &evil);
    cr_assert_eq(r.status, 403, "foreign Host: %ld", r.status);
    reply_free(&r);
    req_opts local = {.header = "Host: localhost:1"};
    r = request("/api/experiments", &local);
    cr_assert_eq(r.status, 200, "localhost: %ld", r.status);
    reply_free(&r);
    stop();
}

/* ---- listening, authentication, --web-dir, xp dashboard */

/* Runs sh -c cmd; its stdout into out[4096]; returns the status. */
static int shell(const char *cmd, char *out)
{
    char *argv[] = {"/bin/sh", "-c", (char *)cmd, NULL};
    xpt_run_result r = xpt_run(argv, NULL);
    snprintf(out, 4096, "%s%s", r.out, r.err);
    int st = r.status;
    xpt_run_result_free(&r);
    return st;
}

LOCAL_TEST(open_address_needs_auth, 60)
{
    seed();
    const char *open[] = {"--backend", s_backend, "--listen", "0.0.0.0:0",
                          NULL};
    int status = 0;
    cr_assert_not(try_start(open, &status), "listened openly without auth");
    cr_assert_eq(status, 2, "exit %d", status);
    char *err = xpt_slurp(s_err);
    cr_assert(strstr(err, "--auth") && strstr(err, "0.0.0.0:0"), "%s", err);
    cr_assert_eq(xpt_count_lines(err), 1, "not one line: %s", err);
    free(err);
    const char *insecure[] = {"--backend", s_backend,    "--listen",
                              "0.0.0.0:0", "--insecure", NULL};
    cr_assert(try_start(insecure, &status), "--insecure refused (%d)", status);
    cr_assert(strncmp(s_url, "http://0.0.0.0:", 15) == 0, "%s", s_url);
    char base[256];
    snprintf(base, sizeof base, "http://127.0.0.1:%s/",
             strrchr(s_url, ':') + 1);
    base[strlen(base) - 1] = '\0';
    req_opts o = {.base_url = base};
    reply r = request("/api/experiments", &o);
    cr_assert_eq(r.status, 200, "%ld %s", r.status, r.body);
    reply_free(&r);
    stop();
}

LOCAL_TEST(basic_auth, 90)
{
    seed();
    char cmd[2048], out[4096], file[PATH_MAX], hash[4096];
    /* A yescrypt hash from --hash-password, an sha512-crypt one. */
    snprintf(cmd, sizeof cmd, "printf 'S3cret pw\\n' | '%s' --hash-password",
             dashboard_path());
    cr_assert_eq(shell(cmd, out), 0, "%s", out);
    snprintf(hash, sizeof hash, "%.*s", (int)strcspn(out, "\n"), out);
    cr_assert(strncmp(hash, "$y$", 3) == 0, "hash '%s'", hash);
    snprintf(file, sizeof file, "%s/users", xpt_dir);
    FILE *f = fopen(file, "w");
    fprintf(f,
            "# dashboard users\n\nalice:%s\n"
            "bob:$6$saltsalt$qFmFH.bQmmtXzyBY0s9v7Oicd2z4XSIecDzlB5KiA2/"
            "jctKu9YterLp8wwnSq.qc.eoxqOmSuNp2xS0ktL3nh/\n",
            hash);
    fclose(f);
    const char *args[] = {"--backend", s_backend, "--listen", "127.0.0.1:0",
                          "--auth",    file,      NULL};
    start(args);
    char p[1024], buf[512];
    path_of(p, "/api/experiments/%s/history", s_id);
    reply r = request(p, NULL);
    cr_assert_eq(r.status, 401, "no credentials: %ld", r.status);
    cr_assert(header(&r, "www-authenticate", buf) &&
                  strncmp(buf, "Basic realm=\"xp\"", 16) == 0,
              "WWW-Authenticate: %s", buf);
    cr_assert(strstr(r.body, "\"error\""), "%s", r.body);
    assert_security_headers(&r, true, "401");
    reply_free(&r);
    r = request("/", NULL);
    cr_assert_eq(r.status, 401, "the page without credentials");
    reply_free(&r);
    static const struct {
        const char *userpwd;
        long status;
    } tries[] = {
        {"alice:S3cret pw", 200}, {"alice:S3cret pw", 200}, /* cached */
        {"alice:S3cret", 401},    {"alice:S3cret pw ", 401},
        {"bob:S3cret pw", 401},   {"carol:S3cret pw", 401},
        {"bob:password", 200},    {"alice:", 401},
    };
    for (size_t i = 0; i < sizeof tries / sizeof *tries; i++) {
        req_opts o = {.userpwd = tries[i].userpwd};
        r = request(p, &o);
        cr_assert_eq(r.status, tries[i].status, "%s: %ld", tries[i].userpwd,
                     r.status);
        reply_free(&r);
    }
    stop();

    /* A weak hash or a bad line: refused at start, one line. */
    static const char *const bad[] = {"alice:abJnggxhB/yWI\n", "$1$md5$x\n",
                                      "alice\n", ""};
    for (size_t i = 0; i < 4; i++) {
        f = fopen(file, "w");
        fputs(bad[i], f);
        fclose(f);
        int status = 0;
        cr_assert_not(try_start(args, &status), "started with '%s'", bad[i]);
        cr_assert_eq(status, 2, "'%s': exit %d", bad[i], status);
        char *err = xpt_slurp(s_err);
        cr_assert_eq(xpt_count_lines(err), 1, "'%s': %s", bad[i], err);
        cr_assert(strstr(err, file), "'%s': %s", bad[i], err);
        free(err);
    }
}

LOCAL_TEST(web_dir, 60)
{
    seed();
    char dir[PATH_MAX], path[PATH_MAX + 32];
    snprintf(dir, sizeof dir, "%s/web", xpt_dir);
    cr_assert_eq(mkdir(dir, 0755), 0);
    snprintf(path, sizeof path, "%s/index.html", dir);
    FILE *f = fopen(path, "w");
    fputs("<!doctype html><title>dev page</title>\n", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/leak.txt", dir);
    cr_assert_eq(symlink("/etc/passwd", path), 0);
    snprintf(path, sizeof path, "%s/sub", dir);
    cr_assert_eq(mkdir(path, 0755), 0);
    const char *args[] = {"--backend", s_backend, "--listen", "127.0.0.1:0",
                          "--web-dir", dir,       NULL};
    start(args);
    reply r = request("/", NULL);
    cr_assert_eq(r.status, 200);
    cr_assert(strstr(r.body, "dev page"), "not the directory's: %.100s",
              r.body);
    reply_free(&r);
    r = request("/uPlot.min.css", NULL); /* not there: the built-in one */
    cr_assert_eq(r.status, 200);
    reply_free(&r);
    static const char *const refused[] = {"/leak.txt", "/sub", "/sub/x.js",
                                          "/../web/index.html",
                                          "/%2e%2e%2fweb%2findex.html"};
    for (size_t i = 0; i < 5; i++) {
        r = request(refused[i], NULL);
        cr_assert_eq(r.status, 404, "%s: %ld", refused[i], r.status);
        cr_assert_null(strstr(r.body, "root:"), "%s", refused[i]);
        reply_free(&r);
    }
    stop();
}

LOCAL_TEST(xp_dashboard_command, 60)
{
    const char *xp = getenv("XP_CLI");
    cr_assert(xp && access(xp, X_OK) == 0, "XP_CLI (%s)", xp ? xp : "unset");
    char cmd[PATH_MAX + 64], out[4096];
    snprintf(cmd, sizeof cmd, "'%s' dashboard --help", xp);
    cr_assert_eq(shell(cmd, out), 0, "%s", out);
    cr_assert(strstr(out, "usage: xp-dashboard") && strstr(out, "--listen"),
              "%s", out);
    snprintf(cmd, sizeof cmd, "'%s' dashboard --listen 0.0.0.0:0", xp);
    cr_assert_eq(shell(cmd, out), 2, "%s", out);
    cr_assert(strstr(out, "--auth"), "%s", out);
}
