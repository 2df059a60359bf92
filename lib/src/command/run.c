/* command/run.c — one command step of one trial: a scratch directory with
 * $XP_OUTPUT_DIR and $XP_METRICS_FILE, arguments rendered from the
 * inputs (each one argv element, never re-split), the program run through
 * process.c, metric lines read while it runs, then the output value, the
 * produced files as blobs and the log document. */

#include "command/run.h"

#include "command/process.h"
#include "command/template.h"
#include "util/error.h"
#include "util/names.h"
#include "util/sys.h"

#include <bson/bson.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

#define S_METRIC_NAMES_MAX 10000

/* ---------------------------------------------------------------- command */

static void s_strv_free(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        bson_free(v[i]);
    bson_free(v);
}

static char **s_strv_dup(char *const *v, size_t n)
{
    char **out = bson_malloc0((n + 1) * sizeof *out);
    for (size_t i = 0; i < n; i++)
        out[i] = bson_strdup(v[i]);
    return out;
}

void xp__command_free(xp_command **pc)
{
    if (!pc || !*pc)
        return;
    xp_command *c = *pc;
    bson_free(c->step);
    s_strv_free(c->argv, c->argc);
    bson_free(c->cwd);
    s_strv_free(c->env_names, c->n_env);
    s_strv_free(c->env_values, c->n_env);
    bson_free(c->output_file);
    s_strv_free(c->produces, c->n_produces);
    s_strv_free(c->code, c->n_code);
    s_strv_free(c->inputs, c->n_inputs);
    bson_free(c->input_is_param);
    bson_free(c->input_has_files);
    bson_free(c);
    *pc = NULL;
}

xp_command *xp__command_dup(const xp_command *c)
{
    xp_command *d = bson_malloc0(sizeof *d);
    *d = *c;
    d->step = bson_strdup(c->step);
    d->argv = s_strv_dup(c->argv, c->argc);
    d->cwd = bson_strdup(c->cwd);
    d->env_names = s_strv_dup(c->env_names, c->n_env);
    d->env_values = s_strv_dup(c->env_values, c->n_env);
    d->output_file = c->output_file ? bson_strdup(c->output_file) : NULL;
    d->produces = s_strv_dup(c->produces, c->n_produces);
    d->code = s_strv_dup(c->code, c->n_code);
    d->inputs = s_strv_dup(c->inputs, c->n_inputs);
    d->input_is_param = bson_malloc0((c->n_inputs + 1) * sizeof(bool));
    d->input_has_files = bson_malloc0((c->n_inputs + 1) * sizeof(bool));
    memcpy(d->input_is_param, c->input_is_param, c->n_inputs * sizeof(bool));
    memcpy(d->input_has_files, c->input_has_files, c->n_inputs * sizeof(bool));
    return d;
}

/* ---------------------------------------------------------------- state */

typedef struct {
    char *name;
    int64_t next; /* epoch of the next point without one */
} s_counter;

typedef struct {
    const xp_command *c;
    xp_step *st;
    const xp_value *const *inputs;
    char *dir;     /* scratch directory */
    char *out_dir; /* $XP_OUTPUT_DIR */
    char *metrics_path;
    int metrics_fd;
    char *mbuf; /* partial metrics line */
    size_t mlen;
    int64_t mline;
    s_counter *counters;
    size_t n_counters;
    char problem[300];  /* first metric error, or "" */
    xp_value *json;     /* last JSON line of stdout */
    char bad_json[120]; /* a later line that looked like JSON, or "" */
} s_ctx;

/* Epoch for a point of name without one: 0, 1, 2, ... per name. */
static int64_t s_next_epoch(s_ctx *x, const char *name)
{
    for (size_t i = 0; i < x->n_counters; i++)
        if (strcmp(x->counters[i].name, name) == 0)
            return x->counters[i].next++;
    if (x->n_counters >= S_METRIC_NAMES_MAX)
        return 0;
    x->counters =
        bson_realloc(x->counters, (x->n_counters + 1) * sizeof *x->counters);
    x->counters[x->n_counters++] = (s_counter){bson_strdup(name), 1};
    return 0;
}

static void s_problem(s_ctx *x, const char *fmt, ...) XP_PRINTF(2, 3);

static void s_problem(s_ctx *x, const char *fmt, ...)
{
    if (x->problem[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->problem, sizeof x->problem, fmt, ap);
    va_end(ap);
}

/* ---------------------------------------------------------------- metrics */

static void s_save(s_ctx *x, const char *name, bool has_epoch, int64_t epoch,
                   double value, const char *where)
{
    xp_error_t e;
    if (xp_check_name("metric", name, &e) != 0) {
        s_problem(x, "%s: %s", where, e.message);
        return;
    }
    if (!has_epoch)
        epoch = s_next_epoch(x, name);
    if (xp_save_metric(x->st, name, epoch, value) != 0)
        s_problem(x, "%s: metric '%s' could not be saved", where, name);
}

/* {"name": "loss", "epoch": 3, "value": 0.12}; epoch optional. */
static void s_metric_line(s_ctx *x, const char *line)
{
    char where[64];
    snprintf(where, sizeof where, "metrics file line %lld",
             (long long)++x->mline);
    const char *p = line;
    while (*p == ' ' || *p == '\t' || *p == '\r')
        p++;
    if (!*p)
        return;
    xp_value *v = xp_value_new();
    xp_error_t e;
    if (xp_value_from_json(v, line, &e) != 0 ||
        xp_value_type(v) != XP_TYPE_DOCUMENT) {
        s_problem(x, "%s: not a JSON object", where);
        goto done;
    }
    const xp_value *name = xp_value_get(v, "name");
    const xp_value *value = xp_value_get(v, "value");
    const xp_value *epoch = xp_value_get(v, "epoch");
    xp_type vt = xp_value_type(value);
    if (!xp_as_string(name, NULL) ||
        !(vt == XP_TYPE_DOUBLE || vt == XP_TYPE_INT64 || vt == XP_TYPE_NULL) ||
        (epoch && xp_value_type(epoch) != XP_TYPE_INT64)) {
        s_problem(x,
                  "%s: expected {\"name\": text, \"epoch\": integer "
                  "(optional), \"value\": number}",
                  where);
        goto done;
    }
    s_save(x, xp_as_string(name, NULL), epoch != NULL, xp_as_int64(epoch),
           vt == XP_TYPE_NULL ? NAN : xp_as_double(value), where);
done:
    xp_value_destroy(&v);
}

/* Reads what the program appended to $XP_METRICS_FILE; at the end a last
 * line without newline counts too. */
static void s_tick(void *ctx, bool final)
{
    s_ctx *x = ctx;
    if (x->metrics_fd < 0)
        return;
    char chunk[65536];
    for (;;) {
        ssize_t r = read(x->metrics_fd, chunk, sizeof chunk);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        for (ssize_t i = 0; i < r; i++) {
            if (chunk[i] == '\n') {
                x->mbuf[x->mlen] = '\0';
                s_metric_line(x, x->mbuf);
                x->mlen = 0;
            } else if (x->mlen < XP_PROC_LINE_MAX) {
                x->mbuf[x->mlen++] = chunk[i];
            } else {
                s_problem(x, "metrics file line %lld is longer than %d bytes",
                          (long long)x->mline + 1, XP_PROC_LINE_MAX);
            }
        }
    }
    if (final && x->mlen) {
        x->mbuf[x->mlen] = '\0';
        s_metric_line(x, x->mbuf);
        x->mlen = 0;
    }
}

static bool s_json_candidate(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s && strchr("{[\"-0123456789", *s))
        return true;
    return strncmp(s, "true", 4) == 0 || strncmp(s, "false", 5) == 0 ||
           strncmp(s, "null", 4) == 0;
}

/* `name: value` on stdout, when the step asks for it. */
static void s_stdout_metric(s_ctx *x, const char *line)
{
    const char *colon = strchr(line, ':');
    if (!colon || colon == line || colon - line > XP_NAME_MAX)
        return;
    char name[XP_NAME_MAX + 1];
    memcpy(name, line, (size_t)(colon - line));
    name[colon - line] = '\0';
    if (xp_check_name("metric", name, NULL) != 0)
        return;
    const char *num = colon + 1;
    while (*num == ' ' || *num == '\t')
        num++;
    char *end;
    errno = 0;
    double v = strtod(num, &end);
    while (*end == ' ' || *end == '\t' || *end == '\r')
        end++;
    if (end == num || *end || errno == ERANGE)
        return;
    s_save(x, name, false, 0, v, "stdout");
}

static void s_line(void *ctx, const char *line, size_t len)
{
    s_ctx *x = ctx;
    (void)len;
    if (x->c->stdout_metrics)
        s_stdout_metric(x, line);
    if (x->c->output != XP_OUTPUT_STDOUT_JSON || !s_json_candidate(line))
        return;
    xp_value *v = xp_value_new();
    if (xp_value_from_json(v, line, NULL) == 0) {
        xp_value_destroy(&x->json);
        x->json = v;
        x->bad_json[0] = '\0';
    } else {
        xp_value_destroy(&v);
        size_t k = 0;
        for (; line[k] && k + 1 < sizeof x->bad_json; k++) {
            unsigned char b = (unsigned char)line[k];
            x->bad_json[k] = b < 0x20 || b >= 0x7f ? '?' : (char)b;
        }
        x->bad_json[k] = '\0';
    }
}

/* ---------------------------------------------------------------- inputs */

static const xp_value *s_input(const s_ctx *x, const char *name, size_t *at)
{
    for (size_t i = 0; i < x->c->n_inputs; i++)
        if (strcmp(x->c->inputs[i], name) == 0) {
            if (at)
                *at = i;
            return x->inputs[i];
        }
    return NULL;
}

/* A value as one argument: text as it is, anything else as JSON. */
static void s_append_text(bson_string_t *out, const xp_value *v, bool quote)
{
    const char *s = xp_as_string(v, NULL);
    char *json = s ? NULL : xp_value_to_json(v);
    const char *text = s ? s : json ? json : "null";
    if (quote)
        xp__shell_quote(out, text);
    else
        bson_string_append(out, text);
    xp_free(json);
}

static int s_write_file(const char *path, const void *data, size_t len,
                        xp_error_t *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    const char *p = data;
    while (fd >= 0 && len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        p += w;
        len -= (size_t)w;
    }
    int rc = fd >= 0 && len == 0 ? 0 : -1;
    if (fd >= 0 && close(fd) != 0)
        rc = -1;
    if (rc != 0)
        xp__error(err, XP_DOMAIN_SYSTEM, XP_EIO, "writing %s: %s", path,
                  strerror(errno));
    return rc;
}

/* An upstream step's produced file, written under in/STEP/ for this
 * step; its path. Caller frees. */
static char *s_materialize(s_ctx *x, const xp_value *v, const char *step,
                           const char *file, xp_error_t *err)
{
    const xp_value *files = xp_value_get(v, "files"), *blob = NULL;
    for (size_t i = 0; i < xp_value_count(files) && !blob; i++) {
        const xp_value *f = xp_value_at(files, i);
        const char *name = xp_as_string(xp_value_get(f, "name"), NULL);
        if (name && strcmp(name, file) == 0)
            blob = xp_value_get(f, "data");
    }
    size_t len = 0;
    const void *data = xp_as_blob(blob, &len);
    if (!data && xp_value_type(blob) != XP_TYPE_BLOB) {
        xp__error(err, XP_DOMAIN_TRIAL, XP_ESTEP,
                  "step '%s' has no produced file '%s'", step, file);
        return NULL;
    }
    char *sub = bson_strdup_printf("%s/in", x->dir);
    mkdir(sub, 0700);
    bson_free(sub);
    sub = bson_strdup_printf("%s/in/%s", x->dir, step);
    mkdir(sub, 0700);
    char *path = bson_strdup_printf("%s/%s", sub, file);
    bson_free(sub);
    struct stat sb;
    if (stat(path, &sb) == 0)
        return path;
    if (s_write_file(path, data ? data : "", len, err) != 0) {
        bson_free(path);
        return NULL;
    }
    return path;
}

typedef struct {
    s_ctx *x;
    bool quote;
} s_render;

static int s_ref(void *ctx, const char *name, const char *file,
                 bson_string_t *out, xp_error_t *err)
{
    s_render *r = ctx;
    size_t at = 0;
    const xp_value *v = s_input(r->x, name, &at);
    if (!v)
        return xp__error(err, XP_DOMAIN_TRIAL, XP_ESTEP,
                         "placeholder '%s' is not an input of the step", name);
    if (file) {
        char *path = s_materialize(r->x, v, name, file, err);
        if (!path)
            return -1;
        if (r->quote)
            xp__shell_quote(out, path);
        else
            bson_string_append(out, path);
        bson_free(path);
        return 0;
    }
    if (r->x->c->input_has_files[at])
        v = xp_value_get(v, "value");
    s_append_text(out, v, r->quote);
    return 0;
}

static char *s_expand(s_ctx *x, const char *text, bool quote, xp_error_t *err)
{
    bson_string_t *s = bson_string_new(NULL);
    s_render r = {x, quote};
    if (xp__template_expand(text, s_ref, &r, s, err) != 0) {
        bson_string_free(s, true);
        return NULL;
    }
    return bson_string_free(s, false);
}

/* ---------------------------------------------------------------- env */

typedef struct {
    char **v;
    size_t n, cap;
} s_strs;

static void s_push(s_strs *s, char *owned)
{
    if (s->n + 2 > s->cap) {
        s->cap = s->cap ? s->cap * 2 : 32;
        s->v = bson_realloc(s->v, s->cap * sizeof *s->v);
    }
    s->v[s->n++] = owned;
    s->v[s->n] = NULL;
}

static bool s_has_var(const s_strs *s, const char *entry)
{
    const char *eq = strchr(entry, '=');
    size_t len = eq ? (size_t)(eq - entry) : strlen(entry);
    for (size_t i = 0; i < s->n; i++)
        if (strncmp(s->v[i], entry, len) == 0 && s->v[i][len] == '=')
            return true;
    return false;
}

/* XP_PARAM_<NAME>: upper case, '-' as '_'. */
static char *s_param_var(const char *name, const xp_value *v)
{
    bson_string_t *s = bson_string_new("XP_PARAM_");
    for (const char *p = name; *p; p++)
        bson_string_append_c(s, *p == '-'                  ? '_'
                                : (*p >= 'a' && *p <= 'z') ? (char)(*p - 32)
                                                           : *p);
    bson_string_append_c(s, '=');
    s_append_text(s, v, false);
    return bson_string_free(s, false);
}

static int s_env(s_ctx *x, s_strs *env, xp_error_t *err)
{
    const xp_command *c = x->c;
    for (size_t i = 0; i < c->n_env; i++) {
        char *v = s_expand(x, c->env_values[i], false, err);
        if (!v)
            return -1;
        s_push(env, bson_strdup_printf("%s=%s", c->env_names[i], v));
        bson_free(v);
    }
    s_push(env, bson_strdup_printf("XP_TRIAL_ID=%lld",
                                   (long long)xp_step_trial_id(x->st)));
    s_push(env, bson_strdup_printf("XP_STEP=%s", c->step));
    s_push(env, bson_strdup_printf("XP_SEED=%llu",
                                   (unsigned long long)xp_step_seed(x->st)));
    s_push(env, bson_strdup_printf("XP_OUTPUT_DIR=%s", x->out_dir));
    s_push(env, bson_strdup_printf("XP_METRICS_FILE=%s", x->metrics_path));
    for (size_t i = 0; i < c->n_inputs; i++)
        if (c->input_is_param[i])
            s_push(env, s_param_var(c->inputs[i], x->inputs[i]));
    for (char **e = environ; e && *e; e++)
        if (!s_has_var(env, *e))
            s_push(env, bson_strdup(*e));
    return 0;
}

/* ---------------------------------------------------------------- scratch */

/* Scratch directories are kept and reused: making and removing a
 * directory costs more than the rest of a step (on ext4 with discard,
 * milliseconds). Each holds out/ and metrics.jsonl; a step takes a free
 * one, and gives it back emptied. Those this process made are removed at
 * its exit. */
static pthread_mutex_t s_pool_lock = PTHREAD_MUTEX_INITIALIZER;
static char **s_free_dirs, **s_all_dirs;
static size_t s_n_free, s_n_all;
static pid_t s_pool_pid;

static int s_rm(const char *path, const struct stat *sb, int flag,
                struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* Everything under a scratch directory but out/ and metrics.jsonl. */
static int s_rm_inside(const char *path, const struct stat *sb, int flag,
                       struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    const char *base = path + ftw->base;
    if (ftw->level == 0 ||
        (ftw->level == 1 &&
         (strcmp(base, "out") == 0 || strcmp(base, "metrics.jsonl") == 0)))
        return 0;
    remove(path);
    return 0;
}

static void s_pool_atexit(void)
{
    if (getpid() != s_pool_pid)
        return; /* a forked child exiting: not its directories */
    for (size_t i = 0; i < s_n_all; i++)
        nftw(s_all_dirs[i], s_rm, 16, FTW_DEPTH | FTW_PHYS);
}

/* A free scratch directory, or a new one; caller owns the string. */
static char *s_pool_take(xp_error_t *err)
{
    char *dir = NULL;
    pthread_mutex_lock(&s_pool_lock);
    if (s_n_free > 0)
        dir = s_free_dirs[--s_n_free]; /* taken */
    pthread_mutex_unlock(&s_pool_lock);
    if (dir)
        return dir;
    const char *tmp = getenv("TMPDIR");
    tmp = tmp && *tmp ? tmp : "/tmp";
    dir = bson_strdup_printf("%s/xp-step-XXXXXX", tmp);
    if (!mkdtemp(dir)) {
        xp__error(err, XP_DOMAIN_SYSTEM, XP_EIO,
                  "cannot make a directory for the step in %s: %s", tmp,
                  strerror(errno));
        bson_free(dir);
        return NULL;
    }
    pthread_mutex_lock(&s_pool_lock);
    if (s_pool_pid != getpid()) {
        if (!s_pool_pid)
            atexit(s_pool_atexit);
        s_pool_pid = getpid();
        s_n_all = s_n_free = 0; /* a forked child keeps its own */
    }
    s_all_dirs = bson_realloc(s_all_dirs, (s_n_all + 1) * sizeof *s_all_dirs);
    s_free_dirs =
        bson_realloc(s_free_dirs, (s_n_all + 1) * sizeof *s_free_dirs);
    s_all_dirs[s_n_all++] = bson_strdup(dir);
    pthread_mutex_unlock(&s_pool_lock);
    return dir;
}

/* Empties dir for the next step; one that cannot be emptied is left. */
static void s_pool_give(const char *dir, const char *out_dir)
{
    nftw(dir, s_rm_inside, 16, FTW_DEPTH | FTW_PHYS);
    DIR *d = opendir(out_dir);
    bool empty = d != NULL;
    for (struct dirent *e; d && (e = readdir(d)) != NULL;)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            empty = false;
    if (d)
        closedir(d);
    pthread_mutex_lock(&s_pool_lock);
    if (empty && s_pool_pid == getpid())
        s_free_dirs[s_n_free++] = bson_strdup(dir);
    pthread_mutex_unlock(&s_pool_lock);
}

static int s_scratch(s_ctx *x, xp_error_t *err)
{
    x->dir = s_pool_take(err);
    if (!x->dir)
        return -1;
    x->out_dir = bson_strdup_printf("%s/out", x->dir);
    x->metrics_path = bson_strdup_printf("%s/metrics.jsonl", x->dir);
    if ((mkdir(x->out_dir, 0700) != 0 && errno != EEXIST) ||
        s_write_file(x->metrics_path, "", 0, err) != 0)
        return xp__error(err, XP_DOMAIN_SYSTEM, XP_EIO, "cannot prepare %s: %s",
                         x->dir, strerror(errno));
    x->metrics_fd = open(x->metrics_path, O_RDONLY | O_CLOEXEC);
    x->mbuf = bson_malloc(XP_PROC_LINE_MAX + 1);
    return 0;
}

static void s_ctx_clear(s_ctx *x)
{
    if (x->metrics_fd >= 0)
        close(x->metrics_fd);
    if (x->dir)
        s_pool_give(x->dir, x->out_dir);
    bson_free(x->dir);
    bson_free(x->out_dir);
    bson_free(x->metrics_path);
    bson_free(x->mbuf);
    for (size_t i = 0; i < x->n_counters; i++)
        bson_free(x->counters[i].name);
    bson_free(x->counters);
    xp_value_destroy(&x->json);
}

/* ---------------------------------------------------------------- outcome */

/* Text safe to store: bytes that are not UTF-8, and NULs, become '?'. */
static void s_set_text(xp_value *v, const char *s, size_t len)
{
    char *t = bson_malloc(len + 1);
    size_t i = 0;
    while (i < len) {
        unsigned char b = (unsigned char)s[i];
        size_t k = b < 0x80         ? 1
                   : (b >> 5) == 6  ? 2
                   : (b >> 4) == 14 ? 3
                   : (b >> 3) == 30 ? 4
                                    : 0;
        if (k > 1 && i + k <= len && bson_utf8_validate(s + i, k, false)) {
            memcpy(t + i, s + i, k);
            i += k;
            continue;
        }
        t[i] = k == 1 && b ? (char)b : '?';
        i++;
    }
    t[len] = '\0';
    xp_set_string_len(v, t, len);
    bson_free(t);
}

static xp_value *s_log(char *const *argv, const xp_proc_result *res)
{
    xp_value *log = xp_value_new();
    xp_set_document(log);
    xp_value *a = xp_document_set(log, "argv");
    xp_set_array(a);
    for (size_t i = 0; argv && argv[i]; i++)
        s_set_text(xp_array_append(a), argv[i], strlen(argv[i]));
    if (res->exited)
        xp_set_int64(xp_document_set(log, "status"), res->status);
    else
        xp_set_null(xp_document_set(log, "status"));
    if (!res->exited)
        xp_set_int64(xp_document_set(log, "signal"), res->signal);
    xp_set_bool(xp_document_set(log, "timed_out"), res->timed_out);
    xp_set_double(xp_document_set(log, "elapsed"), res->elapsed);
    s_set_text(xp_document_set(log, "stdout"), res->out ? res->out : "",
               res->out_len);
    s_set_text(xp_document_set(log, "stderr"), res->err ? res->err : "",
               res->err_len);
    xp_set_int64(xp_document_set(log, "stdout_bytes"), (int64_t)res->out_total);
    xp_set_int64(xp_document_set(log, "stderr_bytes"), (int64_t)res->err_total);
    return log;
}

/* The end of stderr for a failure description: its last lines, at most
 * about 300 characters, joined by " | ". */
static void s_stderr_tail(const xp_proc_result *res, char *buf, size_t size)
{
    size_t len = res->err_len;
    const char *s = res->err ? res->err : "";
    while (len &&
           (s[len - 1] == '\n' || s[len - 1] == ' ' || s[len - 1] == '\r'))
        len--;
    size_t start = len > 300 ? len - 300 : 0;
    size_t k = 0;
    for (size_t i = start; i < len && k + 4 < size; i++) {
        if (s[i] == '\n') {
            memcpy(buf + k, " | ", 3);
            k += 3;
        } else {
            unsigned char b = (unsigned char)s[i];
            buf[k++] = b < 0x20 || b == 0x7f ? ' ' : (char)b;
        }
    }
    buf[k] = '\0';
}

static int s_read_json_file(s_ctx *x, xp_value *out, xp_error_t *err)
{
    char *path = bson_strdup_printf("%s/%s", x->out_dir, x->c->output_file);
    size_t len = 0;
    char *text = xp__read_file(path, XP_COMMAND_FILE_MAX, &len);
    bson_free(path);
    if (!text)
        return xp__error(err, XP_DOMAIN_TRIAL, XP_ESTEP,
                         "output file '%s' is missing from $XP_OUTPUT_DIR or "
                         "larger than %d bytes",
                         x->c->output_file, XP_COMMAND_FILE_MAX);
    xp_error_t e;
    int rc = 0;
    if (xp_value_from_json(out, text, &e) != 0)
        rc = xp__error(err, XP_DOMAIN_TRIAL, XP_ESTEP, "output file '%s': %s",
                       x->c->output_file, e.message);
    bson_free(text);
    return rc;
}

/* The step's value, with its produced files beside it. */
static int s_output(s_ctx *x, const xp_proc_result *res, xp_value *out,
                    xp_error_t *err)
{
    const xp_command *c = x->c;
    xp_value *value = out;
    if (c->n_produces) {
        xp_set_document(out);
        value = xp_document_set(out, "value");
    }
    int rc = 0;
    switch (c->output) {
    case XP_OUTPUT_STDOUT_JSON:
        /* A value line that does not parse is an error, not a null. */
        if (x->bad_json[0])
            return xp__error(err, XP_DOMAIN_TRIAL, XP_ESTEP,
                             "the last JSON line of stdout is not valid "
                             "JSON: %s",
                             x->bad_json);
        rc = x->json ? xp_set_value(value, x->json) : xp_set_null(value);
        break;
    case XP_OUTPUT_FILE: rc = s_read_json_file(x, value, err); break;
    case XP_OUTPUT_EXIT_STATUS: rc = xp_set_int64(value, res->status); break;
    case XP_OUTPUT_NONE: rc = xp_set_null(value); break;
    }
    if (rc != 0 || !c->n_produces)
        return rc;
    /* An array of {name, data}: file names have dots, which MongoDB
     * refuses in keys. */
    xp_value *files = xp_document_set(out, "files");
    xp_set_array(files);
    for (size_t i = 0; i < c->n_produces; i++) {
        char *path = bson_strdup_printf("%s/%s", x->out_dir, c->produces[i]);
        size_t len = 0;
        char *data = xp__read_file(path, XP_COMMAND_FILE_MAX, &len);
        bson_free(path);
        if (!data)
            return xp__error(err, XP_DOMAIN_TRIAL, XP_ESTEP,
                             "did not produce '%s' in $XP_OUTPUT_DIR (or it "
                             "is larger than %d bytes)",
                             c->produces[i], XP_COMMAND_FILE_MAX);
        xp_value *f = xp_array_append(files);
        xp_set_document(f);
        xp_set_string(xp_document_set(f, "name"), c->produces[i]);
        xp_set_blob(xp_document_set(f, "data"), data, len);
        bson_free(data);
    }
    return 0;
}

/* ---------------------------------------------------------------- run */

static char **s_argv(s_ctx *x, xp_error_t *err)
{
    const xp_command *c = x->c;
    char **argv = bson_malloc0((c->argc + 1) * sizeof *argv);
    for (size_t i = 0; i < c->argc; i++) {
        bool literal = c->shell && i < 2;
        argv[i] = literal ? bson_strdup(c->argv[i])
                          : s_expand(x, c->argv[i], c->shell, err);
        if (!argv[i]) {
            s_strv_free(argv, c->argc);
            return NULL;
        }
    }
    return argv;
}

int xp__command_run(const xp_command *c, xp_step *st,
                    const xp_value *const *inputs, xp_value *out,
                    xp_value **log, char *failure, size_t failure_size)
{
    s_ctx x = {.c = c, .st = st, .inputs = inputs, .metrics_fd = -1};
    s_strs env = {0};
    char **argv = NULL;
    xp_proc_result res = {0};
    xp_error_t e;
    int rc = -1;
    *log = NULL;
    if (s_scratch(&x, &e) != 0 || !(argv = s_argv(&x, &e)) ||
        s_env(&x, &env, &e) != 0)
        goto fail;
    xp_proc_spec spec = {
        .argv = argv,
        .envp = env.v,
        .cwd = c->cwd,
        .timeout = c->timeout,
        .tail_max = XP_COMMAND_TAIL_MAX,
        .on_line = s_line,
        .on_tick = s_tick,
        .ctx = &x,
    };
    if (xp__proc_run(&spec, &res, &e) != 0)
        goto fail;
    *log = s_log(argv, &res);
    bool status_ok =
        res.exited && (res.status == 0 || c->output == XP_OUTPUT_EXIT_STATUS);
    if (!status_ok) {
        char what[100], tail[400];
        xp__proc_describe(&res, c->timeout, what, sizeof what);
        s_stderr_tail(&res, tail, sizeof tail);
        snprintf(failure, failure_size, "%s%s%s", what, tail[0] ? ": " : "",
                 tail);
        goto cleanup;
    }
    if (x.problem[0]) {
        snprintf(failure, failure_size, "%s", x.problem);
        goto cleanup;
    }
    if (s_output(&x, &res, out, &e) != 0)
        goto fail;
    rc = 0;
    goto cleanup;
fail:
    snprintf(failure, failure_size, "%s", e.message);
cleanup:
    xp__proc_result_clear(&res);
    s_strv_free(argv, c->argc);
    s_strv_free(env.v, env.n);
    s_ctx_clear(&x);
    return rc;
}
