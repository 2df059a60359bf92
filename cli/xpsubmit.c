/* xpsubmit — submits one trial or a sweep to an xp-scheduler and prints
 * the trial ids; with --wait follows them to the end with a progress bar
 * and prints the results. Uses only the public libxp API. */
#include <xp/xp.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_TRIALS 1000000
#define MAX_AXES 64

/* One parameter of the sweep: its name and candidate values. */
typedef struct {
    const char *name;
    xp_value **values;
    size_t n, cap;
} s_axis;

/* range(FROM,TO[,STEP]): FROM, FROM + STEP, ... up to TO excluded. */
typedef struct {
    long long from, to, step;
} s_range;

static void s_usage(FILE *f)
{
    fputs("usage: xpsubmit [-s ENDPOINT] EXPERIMENT|FILE.yaml [name=value ...] "
          "[--seed N] [--wait]\n"
          "                [--no-memo | --refresh]\n\n"
          "Submits trials of EXPERIMENT to an xp-scheduler and prints their "
          "ids.\n"
          "  FILE.yaml         an experiment file: its id, and every value "
          "checked\n"
          "                    against the types it declares before "
          "anything is sent\n"
          "  name=1,2,3        several values: the sweep is the cartesian "
          "product\n"
          "  name=range(0,10,2) integers from 0 to 10 (excluded) by 2\n"
          "  -s ENDPOINT       scheduler, default $XP_SCHEDULER\n"
          "  --key FILE        CURVE: this client's key pair (NAME.key from "
          "`xp keygen`),\n"
          "                    default $XP_KEY\n"
          "  --server-key FILE CURVE: the scheduler's public key, default "
          "$XP_SERVER_KEY\n"
          "  --seed N          seed of every trial\n"
          "  --no-memo         run every pure step, reuse no recorded output\n"
          "  --refresh         run every pure step and record its output for "
          "later\n"
          "                    trials\n"
          "  --wait            follow the trials to the end, then print the "
          "results;\n"
          "                    exit status 1 when any trial failed (a trial "
          "the\n"
          "                    scheduler could not record yet is shown with "
          "the status\n"
          "                    it will have: \"spooled, will be written\")\n",
          f);
}

/* Says why the command line is refused, in one line; returns 2, the exit
 * status of bad arguments. */
static int s_fail(const char *fmt, ...) XP_PRINTF(1, 2);
static int s_fail(const char *fmt, ...)
{
    va_list ap;
    fputs("xpsubmit: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(" (see --help)\n", stderr);
    return 2;
}

static int s_nomem(void)
{
    fputs("xpsubmit: out of memory\n", stderr);
    return 1;
}

static int s_too_many(const s_axis *a)
{
    return s_fail("parameter '%s': the sweep has more than %d trials", a->name,
                  MAX_TRIALS);
}

/* A new null value at the end of a's values; NULL when out of memory. */
static xp_value *s_push(s_axis *a)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? 2 * a->cap : 8;
        xp_value **values = realloc(a->values, cap * sizeof *values);
        if (!values)
            return NULL;
        a->values = values;
        a->cap = cap;
    }
    xp_value *v = xp_value_new();
    if (v)
        a->values[a->n++] = v;
    return v;
}

static int s_add_value(s_axis *a, const char *text)
{
    xp_value *v = s_push(a);
    xp_error_t err;
    if (!v)
        return s_nomem();
    if (xp_value_parse_literal(v, text, &err) != 0)
        return s_fail("parameter '%s': %s", a->name, err.message);
    return 0;
}

/* The integer at *p, moving *p past it and the character after it, which
 * is returned; '\0' when there is no integer within 64 bits there. */
static char s_range_int(const char **p, long long *out)
{
    char *end;
    errno = 0;
    *out = strtoll(*p, &end, 10);
    if (end == *p || errno == ERANGE || !*end)
        return '\0';
    *p = end + 1;
    return *end;
}

/* spec, "range(FROM,TO[,STEP])" to its end, into r. */
static int s_range_parse(const char *spec, s_range *r)
{
    const char *p = spec + strlen("range(");
    r->step = 1;
    if (s_range_int(&p, &r->from) != ',')
        return -1;
    char after = s_range_int(&p, &r->to);
    if (after == ',')
        after = s_range_int(&p, &r->step);
    return after == ')' && *p == '\0' ? 0 : -1;
}

/* How many values r has (0: none), counted in 64 unsigned bits: the
 * distance between any two int64 values fits there, not in int64. */
static uint64_t s_range_count(const s_range *r)
{
    bool up = r->step > 0;
    if (up ? r->from >= r->to : r->from <= r->to)
        return 0;
    uint64_t span = up ? (uint64_t)r->to - (uint64_t)r->from
                       : (uint64_t)r->from - (uint64_t)r->to;
    uint64_t stride = up ? (uint64_t)r->step : 0 - (uint64_t)r->step;
    return (span - 1) / stride + 1;
}

/* Checks the whole range before making any value: at most limit. */
static int s_parse_range(s_axis *a, const char *spec, size_t limit)
{
    s_range r;
    if (s_range_parse(spec, &r) != 0)
        return s_fail("parameter '%s': invalid range '%s' (range(FROM,TO"
                      "[,STEP]) of 64-bit integers)",
                      a->name, spec);
    if (r.step == 0)
        return s_fail("parameter '%s': range '%s' has a STEP of 0", a->name,
                      spec);
    uint64_t n = s_range_count(&r);
    if (n == 0)
        return s_fail("parameter '%s': range '%s' has no values", a->name,
                      spec);
    if (n > limit)
        return s_too_many(a);
    long long x = r.from;
    for (uint64_t k = 0; k < n; k++) {
        xp_value *v = s_push(a);
        if (!v)
            return s_nomem();
        xp_set_int64(v, x);
        if (k + 1 < n) /* the step after the last value may leave int64 */
            x += r.step;
    }
    return 0;
}

/* name=v1,v2 | name=range(..) | name=JSON, with at most limit values. */
static int s_parse_axis(s_axis *a, char *arg, size_t limit)
{
    char *eq = strchr(arg, '=');
    if (!eq || eq == arg || !eq[1])
        return s_fail("invalid argument '%s': expected name=value", arg);
    *eq = '\0';
    a->name = arg;
    xp_error_t err;
    if (xp_check_name("parameter", arg, &err) != 0)
        return s_fail("%s", err.message);
    char *spec = eq + 1;
    if (strncmp(spec, "range(", 6) == 0)
        return s_parse_range(a, spec, limit);
    if (spec[0] == '[' || spec[0] == '{' || spec[0] == '"')
        return s_add_value(a, spec);
    for (char *tok = strtok(spec, ","); tok; tok = strtok(NULL, ","))
        if (s_add_value(a, tok) != 0)
            return 2;
    if (!a->n)
        return s_fail("parameter '%s' has no value", arg);
    return a->n > limit ? s_too_many(a) : 0;
}

/* --seed N with script mode's rule and words: decimal digits, from 0 to
 * INT64_MAX (no sign, blank or clamping). */
static int s_parse_seed(const char *text, int64_t *seed)
{
    if (!*text)
        return s_fail("--seed needs a value");
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (text[0] < '0' || text[0] > '9' || *end || errno == ERANGE ||
        v > INT64_MAX)
        return s_fail("invalid --seed '%s': expected an integer from 0 to "
                      "9223372036854775807",
                      text);
    *seed = (int64_t)v;
    return 0;
}

/* An experiment file rather than an id: a name with a / or a YAML
 * extension (ids have neither). */
static bool s_is_file(const char *arg)
{
    size_t n = strlen(arg);
    return strchr(arg, '/') || (n > 5 && strcmp(arg + n - 5, ".yaml") == 0) ||
           (n > 4 && strcmp(arg + n - 4, ".yml") == 0);
}

/* Checks every value of every axis against the types the file declares
 * (an int for a float parameter becomes a float); 0, or the exit status
 * after one line naming the parameter and the value. */
static int s_check_types(const xp_definition *d, const char *path, s_axis *axes,
                         size_t n_axes)
{
    xp_value *one = xp_value_new();
    int status = 0;
    if (!one)
        return s_nomem();
    for (size_t k = 0; k < n_axes && status == 0; k++) {
        for (size_t j = 0; j < axes[k].n && status == 0; j++) {
            xp_error_t err;
            xp_set_document(one);
            xp_value *v = xp_document_set(one, axes[k].name);
            xp_set_value(v, axes[k].values[j]);
            if (xp_definition_check_params(d, one, &err) == 0) {
                xp_set_value(axes[k].values[j], v);
                continue;
            }
            char *json = xp_value_to_json(axes[k].values[j]);
            fprintf(stderr, "xpsubmit: %s: %s (value %s); nothing submitted\n",
                    path, err.message, json ? json : "?");
            xp_free(json);
            status = 2;
        }
    }
    xp_value_destroy(&one);
    return status;
}

/* Parses arg into the next of axes (n of them so far, making *total
 * trials); 0, or the exit status. */
static int s_add_axis(s_axis *axes, size_t *n, size_t *total, char *arg)
{
    if (*n == MAX_AXES)
        return s_fail("too many parameters (%s)", arg);
    s_axis *a = &axes[(*n)++];
    memset(a, 0, sizeof *a);
    /* total * a->n stays within MAX_TRIALS: no product overflows. */
    int rc = s_parse_axis(a, arg, MAX_TRIALS / *total);
    for (size_t k = 0; rc == 0 && k + 1 < *n; k++)
        if (strcmp(axes[k].name, a->name) == 0)
            rc = s_fail("parameter '%s' is given twice", a->name);
    if (rc == 0)
        *total *= a->n;
    return rc;
}

static void s_bar(const xp_progress *p, double elapsed, bool tty)
{
    int64_t finished = p->done + p->failed;
    double rate = elapsed > 0 ? (double)finished / elapsed : 0;
    double eta = rate > 0 ? (double)(p->total - finished) / rate : 0;
    if (tty) {
        int width = 30;
        int filled = p->total ? (int)(width * finished / p->total) : width;
        char bar[64];
        for (int i = 0; i < width; i++)
            bar[i] = i < filled ? '#' : '.';
        bar[width] = '\0';
        fprintf(stderr,
                "\r[%s] %" PRId64 "/%" PRId64 " done %" PRId64
                " failed %" PRId64 " running %" PRId64 " queued %" PRId64
                "  %.1fs  ETA %.1fs ",
                bar, finished, p->total, p->done, p->failed, p->running,
                p->queued, elapsed, eta);
        if (p->waiting[0])
            fprintf(stderr, "(waiting: %s) ", p->waiting);
    } else {
        fprintf(stderr,
                "progress: %" PRId64 "/%" PRId64 " done=%" PRId64
                " failed=%" PRId64 " running=%" PRId64 " queued=%" PRId64
                " elapsed=%.1fs%s%s\n",
                finished, p->total, p->done, p->failed, p->running, p->queued,
                elapsed, p->waiting[0] ? " waiting: " : "", p->waiting);
    }
}

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Follows batch to the end; prints the results table. 0 when every
 * trial succeeded, 1 otherwise. */
static int s_wait(xp_client *c, int64_t batch)
{
    bool tty = isatty(STDERR_FILENO);
    double t0 = s_now(), last_line = 0;
    int64_t cursor = 0;
    xp_value *results = xp_value_new();
    xp_set_array(results);
    xp_progress p;
    xp_error_t err;
    int status = 0;
    for (;;) {
        xp_value *finished = NULL;
        /* Held by the scheduler until a trial finishes (at most a second,
         * so that the bar moves); an older scheduler answers at once. */
        double asked = s_now();
        if (xp_client_wait(c, batch, &cursor, 1000, &p, &finished, &err) != 0) {
            fprintf(stderr, "%sxpsubmit: %s\n", tty ? "\n" : "", err.message);
            status = 1;
            break;
        }
        for (size_t i = 0; i < xp_value_count(finished); i++)
            xp_set_value(xp_array_append(results), xp_value_at(finished, i));
        size_t got = xp_value_count(finished);
        xp_value_destroy(&finished);
        double now = s_now() - t0;
        bool complete = p.done + p.failed >= p.total;
        if (tty || now - last_line >= 1.0 || complete) {
            s_bar(&p, now, tty);
            last_line = now;
        }
        if (complete && got == 0)
            break;
        if (got == 0 && s_now() - asked < 0.5) {
            /* answered at once with nothing new: not held */
            struct timespec ts = {0, 50 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    if (tty)
        fputc('\n', stderr);
    printf("%-10s %-10s %-22s %s\n", "Trial ID", "Status", "Result",
           "Description");
    for (size_t i = 0; i < xp_value_count(results); i++) {
        const xp_value *r = xp_value_at(results, i);
        char *res = xp_value_to_json(xp_value_get(r, "result"));
        const char *st = xp_as_string(xp_value_get(r, "status"), NULL);
        const char *why = xp_as_string(xp_value_get(r, "description"), NULL);
        /* Its record waits in the scheduler's spool, with this status. */
        bool spooled = xp_as_bool(xp_value_get(r, "spooled"));
        printf("%-10" PRId64 " %-10s %-22s %s%s%s\n",
               xp_as_int64(xp_value_get(r, "trial_id")), st ? st : "",
               res ? res : "", spooled ? "spooled, will be written" : "",
               spooled && why && *why ? ": " : "", why ? why : "");
        if (!st || strcmp(st, "succeeded") != 0)
            status = 1;
        xp_free(res);
    }
    xp_value_destroy(&results);
    return status;
}

int main(int argc, char **argv)
{
    const char *endpoint = NULL, *experiment = NULL;
    const char *key = NULL, *server_key = NULL;
    bool wait = false, has_seed = false;
    int64_t seed = 0, memo = XP_MEMO_USE;
    xp_definition *def = NULL;
    s_axis axes[MAX_AXES];
    size_t n_axes = 0, total = 1;
    int status = 2;
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            s_usage(stdout);
            return 0;
        } else if (strcmp(a, "-s") == 0 || strcmp(a, "--scheduler") == 0) {
            if (i + 1 >= argc)
                return s_fail("%s needs an endpoint", a);
            endpoint = argv[++i];
        } else if (strcmp(a, "--key") == 0 || strcmp(a, "--server-key") == 0) {
            if (i + 1 >= argc)
                return s_fail("%s needs a file", a);
            *(a[2] == 'k' ? &key : &server_key) = argv[++i];
        } else if (strcmp(a, "--wait") == 0) {
            wait = true;
        } else if (strcmp(a, "--no-memo") == 0 || strcmp(a, "--refresh") == 0) {
            int64_t m = a[2] == 'n' ? XP_MEMO_OFF : XP_MEMO_REFRESH;
            if (memo != XP_MEMO_USE && memo != m)
                return s_fail("--no-memo and --refresh exclude each other");
            memo = m;
        } else if (strcmp(a, "--seed") == 0) {
            if (s_parse_seed(i + 1 < argc ? argv[++i] : "", &seed) != 0)
                goto cleanup;
            has_seed = true;
        } else if (a[0] == '-') {
            return s_fail("unknown option '%s'", a);
        } else if (!experiment) {
            experiment = a;
        } else {
            int rc = s_add_axis(axes, &n_axes, &total, a);
            if (rc != 0) {
                status = rc;
                goto cleanup;
            }
        }
    }
    if (!experiment) {
        s_usage(stderr);
        goto cleanup;
    }
    if (s_is_file(experiment)) {
        xp_error_t err;
        if (xp_definition_load(&def, experiment, &err) != 0) {
            fprintf(stderr, "xpsubmit: %s\n", err.message);
            goto cleanup;
        }
        if ((status = s_check_types(def, experiment, axes, n_axes)) != 0)
            goto cleanup;
        status = 2;
        experiment = xp_definition_id(def);
    }
    /* The cartesian product, last parameter varying fastest. */
    xp_value *trials = xp_value_new();
    xp_set_array(trials);
    for (size_t t = 0; t < total; t++) {
        xp_value *spec = xp_array_append(trials);
        xp_set_document(spec);
        xp_value *params = xp_document_set(spec, "parameters");
        xp_set_document(params);
        size_t rest = t;
        for (size_t k = n_axes; k-- > 0;) {
            xp_set_value(xp_document_set(params, axes[k].name),
                         axes[k].values[rest % axes[k].n]);
            rest /= axes[k].n;
        }
        if (has_seed)
            xp_set_int64(xp_document_set(spec, "seed"), seed);
        if (memo != XP_MEMO_USE)
            xp_set_int64(xp_document_set(spec, "memo"), memo);
    }
    xp_client *c = NULL;
    xp_error_t err;
    int64_t batch = 0, *ids = NULL;
    size_t n = 0;
    if (xp_client_connect_secure(&c, endpoint, 0, key, server_key, &err) != 0 ||
        xp_client_submit(c, experiment, trials, NULL, &batch, &ids, &n, &err) !=
            0) {
        fprintf(stderr, "xpsubmit: %s\n", err.message);
        status = 1;
    } else {
        for (size_t i = 0; i < n; i++)
            printf("%" PRId64 "\n", ids[i]);
        fflush(stdout);
        status = wait ? s_wait(c, batch) : 0;
    }
    xp_free(ids);
    xp_client_destroy(&c);
    xp_value_destroy(&trials);
cleanup:
    for (size_t k = 0; k < n_axes; k++) {
        for (size_t j = 0; j < axes[k].n; j++)
            xp_value_destroy(&axes[k].values[j]);
        free(axes[k].values);
    }
    xp_definition_destroy(&def);
    return status;
}
