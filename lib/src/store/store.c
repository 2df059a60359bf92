/* store.c — the front layer over the backends: picks the backend for an
 * experiment from the backend argument or XP_BACKEND (a directory selects
 * the local SQLite backend; URIs name the shared ones, whose modules load
 * on first use), keeps finished trials the backend cannot take in the
 * spool, and checks the optional operations, so that callers never see
 * the operations table. */
#include "store/store.h"

#include "store/driver.h"
#include "store/spool.h"
#include "util/error.h"
#include "util/module.h"
#include "util/names.h"
#include "util/uri.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Where this machine keeps per-experiment files for a shared backend:
 * $XP_CACHE_DIR/<id>, else ./xp_cache/<id>. */
static char *s_cache_dir(const char *id)
{
    const char *root = getenv("XP_CACHE_DIR");
    if (!root || !*root)
        root = "xp_cache";
    return bson_strdup_printf("%s/%s", root, id);
}

/* The backend named by spec (NULL/"": $XP_BACKEND, else ./xp_cache) and
 * its scheme (NULL for a directory; caller frees). "local", daskperiment's
 * name for its default, is the default directory too (a directory named
 * local is ./local or file://local). */
static char *s_resolve(const char **spec)
{
    if (!*spec || !**spec)
        *spec = getenv("XP_BACKEND");
    if (!*spec || !**spec || strcmp(*spec, "local") == 0)
        *spec = "xp_cache";
    char *scheme = xp__uri_scheme(*spec);
    if (!scheme && strncmp(*spec, "unix:", 5) == 0)
        scheme = bson_strdup("unix");
    return scheme;
}

/* The module of a shared backend's scheme, or NULL (err set; an unknown
 * scheme leaves *known false). Each is loaded on first use: a program
 * on the local store never loads libmongoc or hiredis. */
static const xp_backend_module *s_shared(const char *scheme, bool *known,
                                         xp_error_t *err)
{
    *known = true;
    if (strcmp(scheme, "mongodb") == 0 || strcmp(scheme, "mongodb+srv") == 0)
        return xp__module_ops("mongodb", "MongoDB support", err);
    if (strcmp(scheme, "redis") == 0 || strcmp(scheme, "rediss") == 0 ||
        strcmp(scheme, "unix") == 0)
        return xp__module_ops("redis", "Redis support", err);
    *known = false;
    return NULL;
}

/* A local store at dir: opened read-only for a reader. */
static int s_local_open(xp_backend **out, const char *id, const char *dir,
                        bool must_exist, bool reader, xp_error_t *err)
{
    return reader ? xp__backend_local_open_reader(out, id, dir, err)
                  : xp__backend_local_open(out, id, dir, must_exist, err);
}

/* A reader opens as must_exist: the shared backends then only read. */
static int s_open(xp_backend **out, const char *id, const char *spec,
                  bool must_exist, bool reader, xp_error_t *err)
{
    *out = NULL;
    must_exist = must_exist || reader;
    char *scheme = s_resolve(&spec);
    if (!scheme)
        return s_local_open(out, id, spec, must_exist, reader, err);
    int rc = -1;
    bool known;
    const xp_backend_module *m = NULL;
    if (strcmp(scheme, "file") == 0) {
        rc = s_local_open(out, id, spec + strlen("file://"), must_exist, reader,
                          err);
    } else if ((m = s_shared(scheme, &known, err)) != NULL) {
        char *cache = s_cache_dir(id);
        rc = m->open(out, id, spec, cache, must_exist, err);
        bson_free(cache);
    } else if (!known) {
        xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                  "unsupported backend scheme '%s://' (expected a "
                  "directory, mongodb://, mongodb+srv://, redis://, "
                  "rediss:// or unix://)",
                  scheme);
    }
    bson_free(scheme);
    return rc;
}

int xp__store_open(xp_backend **out, const char *id, const char *spec,
                   bool must_exist, xp_error_t *err)
{
    return s_open(out, id, spec, must_exist, false, err);
}

int xp__store_open_reader(xp_backend **out, const char *id, const char *spec,
                          xp_error_t *err)
{
    return s_open(out, id, spec, true, true, err);
}

/* Experiments of a local root: directories holding an xp store. */
static int s_local_experiments(const char *root,
                               int (*fn)(const char *id, void *user),
                               void *user, xp_error_t *err)
{
    DIR *d = opendir(root);
    if (!d)
        return errno == ENOENT
                   ? 0
                   : xp__error(err, XP_DOMAIN_BACKEND, XP_EIO,
                               "cannot list %s: %s", root, strerror(errno));
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || xp_check_id(e->d_name, NULL) != 0)
            continue;
        char *path = bson_strdup_printf("%s/%s/xp.sqlite3", root, e->d_name);
        bool store = access(path, F_OK) == 0;
        bson_free(path);
        if (store)
            rc = fn(e->d_name, user);
    }
    closedir(d);
    return rc;
}

int xp__store_experiments(const char *spec,
                          int (*fn)(const char *id, void *user), void *user,
                          xp_error_t *err)
{
    char *scheme = s_resolve(&spec);
    int rc = -1;
    bool known;
    const xp_backend_module *m = NULL;
    if (!scheme)
        rc = s_local_experiments(spec, fn, user, err);
    else if (strcmp(scheme, "file") == 0)
        rc = s_local_experiments(spec + strlen("file://"), fn, user, err);
    else if ((m = s_shared(scheme, &known, err)) != NULL)
        rc = m->experiments(spec, fn, user, err);
    else if (!known)
        xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                  "unsupported backend scheme '%s://'", scheme);
    bson_free(scheme);
    return rc;
}

void xp__store_close(xp_backend **b)
{
    if (!b || !*b)
        return;
    xp_backend *backend = *b;
    char *description = backend->description;
    char *dir = backend->dir;
    backend->ops->close(backend);
    bson_free(description);
    bson_free(dir);
    *b = NULL;
}

const char *xp__store_description(const xp_backend *b)
{
    return b ? b->description : NULL;
}

/* ---------------------------------------------------------------- trials */

int xp__store_trial_begin(xp_backend *b, xp_trial_record *rec, xp_error_t *err)
{
    int64_t id = 0;
    if (b->ops->trial_begin(b, rec, &id, err) != 0)
        return -1;
    rec->trial_id = id;
    return 0;
}

int xp__store_trial_finish(xp_backend *b, const xp_trial_outcome *o,
                           bool *spooled, xp_error_t *err)
{
    if (spooled)
        *spooled = false;
    xp_error_t finish_err, spool_err;
    if (b->ops->trial_finish(b, o, &finish_err) == 0)
        return 0;
    /* Kept on this machine; the next open (or xp__store_sync) writes it. */
    long long id = (long long)o->record->trial_id;
    char *path = NULL;
    if (xp__spool_write(b, o, &path, &spool_err) != 0)
        return xp__error(err, finish_err.domain, finish_err.code,
                         "trial %lld finished but could not be recorded (%s) "
                         "nor spooled (%s)",
                         id, finish_err.message, spool_err.message);
    if (spooled)
        *spooled = true;
    xp__error(err, finish_err.domain, finish_err.code,
              "trial %lld finished but could not be recorded (%s); kept in "
              "%s until the next open or `xp sync`",
              id, finish_err.message, path);
    bson_free(path);
    return -1;
}

int xp__store_trial_running(xp_backend *b, const xp_trial_record *rec,
                            xp_error_t *err)
{
    return b->ops->trial_running ? b->ops->trial_running(b, rec, err) : 0;
}

int xp__store_trial_interrupt(xp_backend *b, int64_t id, int64_t finished_ms,
                              const char *description, xp_error_t *err)
{
    return b->ops->trial_interrupt(b, id, finished_ms, description, err);
}

int xp__store_running_trials(xp_backend *b, xp_running_trial **out, size_t *n,
                             xp_error_t *err)
{
    *out = NULL;
    *n = 0;
    return b->ops->running_trials(b, out, n, err);
}

int xp__store_queued_trials(xp_backend *b,
                            int (*fn)(const bson_t *doc, void *user),
                            void *user, xp_error_t *err)
{
    return b->ops->queued_trials ? b->ops->queued_trials(b, fn, user, err) : 0;
}

/* ---------------------------------------------------------------- reading */

int xp__store_trial_get(xp_backend *b, int64_t id, bson_t *out, xp_error_t *err)
{
    return b->ops->trial_get(b, id, out, err);
}

int xp__store_trials_each(xp_backend *b, xp_trial_fn fn, void *user,
                          xp_error_t *err)
{
    return b->ops->trials_each(b, fn, user, err);
}

typedef struct {
    xp_trial_bytes_fn fn;
    void *user;
} s_bytes_ctx;

static int s_bytes_of(const bson_t *doc, int64_t id, void *user)
{
    s_bytes_ctx *c = user;
    return c->fn(doc ? bson_get_data(doc) : NULL, doc ? doc->len : 0, id,
                 c->user);
}

int xp__store_trials_each_bytes(xp_backend *b, xp_trial_bytes_fn fn, void *user,
                                xp_error_t *err)
{
    if (b->ops->trials_each_bytes)
        return b->ops->trials_each_bytes(b, fn, user, err);
    s_bytes_ctx c = {fn, user};
    return b->ops->trials_each(b, s_bytes_of, &c, err);
}

static int s_scan_add(const bson_t *doc, int64_t id, void *user)
{
    xp__query_scan_add(user, doc, id);
    return 0;
}

int xp__store_trials_query(xp_backend *b, const xp_compiled_query *q,
                           xp_trial_fn fn, void *user, int64_t *matched,
                           xp_error_t *err)
{
    int64_t count = 0;
    int rc;
    if (b->ops->trials_query) {
        rc = b->ops->trials_query(b, q, fn, user, &count, err);
    } else {
        xp_query_scan *scan = xp__query_scan_new(q);
        rc = b->ops->trials_each(b, s_scan_add, scan, err);
        count = xp__query_scan_matched(scan);
        if (rc == 0 && xp__query_scan_emit(scan, fn, user) != 0)
            rc = -1;
        xp__query_scan_destroy(&scan);
    }
    if (matched)
        *matched = rc == 0 ? count : 0;
    return rc;
}

int xp__store_last_id(xp_backend *b, int64_t *id, xp_error_t *err)
{
    return b->ops->last_id(b, id, err);
}

int xp__store_persisted_read(xp_backend *b, const char *step, int64_t trial,
                             xp_value *out, xp_error_t *err)
{
    return b->ops->persisted_read(b, step, trial, out, err);
}

/* ---------------------------------------------------------------- metrics */

int xp__store_metric_flush(xp_backend *b, int64_t trial, xp_metric_buf *m,
                           xp_error_t *err)
{
    xp_metric_chunk *chunks = NULL;
    size_t n = 0;
    if (xp__metric_buf_chunks(m, false, &chunks, &n) == 0)
        return 0;
    int rc = b->ops->metric_flush(b, trial, chunks, n, err);
    bson_free(chunks);
    if (rc == 0)
        xp__metric_buf_consume(m, n);
    return rc;
}

int xp__store_metric_read(xp_backend *b, const char *name, int64_t trial,
                          xp_metric_points *out, xp_error_t *err)
{
    return b->ops->metric_read(b, name, trial, out, err);
}

/* The names a backend lists, checked (they come from the store). */
typedef struct {
    char **names;
    size_t n, cap;
    const char *where;
    int64_t trial;
    xp_error_t *err;
} s_name_list;

static int s_name_add(const char *name, size_t len, void *user)
{
    s_name_list *l = user;
    char buf[XP_NAME_MAX + 1];
    if (len < sizeof buf) {
        memcpy(buf, name, len);
        buf[len] = '\0';
    }
    if (len >= sizeof buf || strlen(buf) != len ||
        xp_check_name("metric", buf, NULL) != 0)
        return xp__error(l->err, XP_DOMAIN_BACKEND, XP_ECORRUPT,
                         "%s: trial %lld lists a metric name that is not one "
                         "(damaged store)",
                         l->where, (long long)l->trial);
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 16;
        l->names = bson_realloc(l->names, l->cap * sizeof *l->names);
    }
    l->names[l->n++] = bson_strdup(buf);
    return 0;
}

static int s_cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted names of l, each once, as an array value. */
static xp_value *s_name_array(s_name_list *l)
{
    if (l->n > 1)
        qsort(l->names, l->n, sizeof *l->names, s_cmp_name);
    xp_value *v = xp_value_new();
    xp_set_array(v);
    for (size_t i = 0; i < l->n; i++)
        if (i == 0 || strcmp(l->names[i - 1], l->names[i]) != 0)
            xp_set_string(xp_array_append(v), l->names[i]);
    return v;
}

int xp__store_metric_names(xp_backend *b, int64_t trial, xp_value **out,
                           xp_error_t *err)
{
    *out = NULL;
    if (!b->ops->metric_names)
        return xp__error(err, XP_DOMAIN_BACKEND, XP_EINVAL,
                         "the %s backend cannot list metric names",
                         b->ops->name);
    s_name_list l = {.where = b->description, .trial = trial, .err = err};
    int rc = b->ops->metric_names(b, trial, s_name_add, &l, err);
    if (rc == 0 && l.n == 0) {
        /* No metric: the trial must exist (no extra trip otherwise). */
        bson_t doc;
        rc = xp__store_trial_get(b, trial, &doc, err);
        if (rc == 0)
            bson_destroy(&doc);
    }
    if (rc == 0)
        *out = s_name_array(&l);
    for (size_t i = 0; i < l.n; i++)
        bson_free(l.names[i]);
    bson_free(l.names);
    return rc;
}

/* ---------------------------------------------------------------- purity and
 * contents */

int xp__store_step_hash_get(xp_backend *b, const char *step,
                            const uint8_t input[16], uint8_t output[16],
                            bool *found, xp_error_t *err)
{
    return b->ops->step_hash_get(b, step, input, output, found, err);
}

int xp__store_step_hashes_get(xp_backend *b, const xp_step_hash *h, size_t n,
                              uint8_t (*previous)[16], bool *found,
                              xp_error_t *err)
{
    if (b->ops->step_hashes_get)
        return b->ops->step_hashes_get(b, h, n, previous, found, err);
    for (size_t i = 0; i < n; i++)
        if (b->ops->step_hash_get(b, h[i].step, h[i].input, previous[i],
                                  &found[i], err) != 0)
            return -1;
    return 0;
}

int xp__store_content_put(xp_backend *b, const char *kind, const char *hash,
                          const bson_t *doc, const char *text, xp_error_t *err)
{
    return b->ops->content_put(b, kind, hash, doc, text, err);
}

int xp__store_content_get(xp_backend *b, const char *hash, bson_t *out,
                          xp_error_t *err)
{
    return b->ops->content_get(b, hash, out, err);
}

/* ---------------------------------------------------------------- groups and
 * the spool */

int xp__store_group_begin(xp_backend *b, xp_error_t *err)
{
    return b->ops->group_begin ? b->ops->group_begin(b, err) : 0;
}

int xp__store_group_end(xp_backend *b, xp_error_t *err)
{
    return b->ops->group_end ? b->ops->group_end(b, err) : 0;
}

int xp__store_sync(xp_backend *b, size_t *written, xp_error_t *err)
{
    return xp__spool_replay(b, written, err);
}

/* ---------------------------------------------------------------- memo
 * entries */

void xp__memo_value_pack(const xp_memo_entry *e, uint8_t out[24])
{
    uint64_t v = (uint64_t)e->trial;
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)(v >> (8 * i));
    memcpy(out + 8, e->output, 16);
}

bool xp__memo_value_unpack(const void *bytes, size_t len, xp_memo_entry *e)
{
    const uint8_t *p = bytes;
    if (!p || len != XP_MEMO_VALUE_SIZE)
        return false;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    if (v > INT64_MAX)
        return false;
    e->trial = (int64_t)v;
    memcpy(e->output, p + 8, 16);
    return true;
}

int xp__store_memo_get(xp_backend *b, xp_memo_entry *e, size_t n, bool *found,
                       xp_error_t *err)
{
    memset(found, 0, n * sizeof *found);
    return b->ops->memo_get && n ? b->ops->memo_get(b, e, n, found, err) : 0;
}

int xp__store_memo_put(xp_backend *b, const xp_memo_entry *e, size_t n,
                       xp_error_t *err)
{
    if (n == 0 || !b->ops->memo_put)
        return 0;
    return b->ops->memo_put(b, e, n, err);
}

int xp__store_memo_each(xp_backend *b,
                        int (*fn)(const xp_memo_entry *e, void *user),
                        void *user, xp_error_t *err)
{
    return b->ops->memo_each ? b->ops->memo_each(b, fn, user, err) : 0;
}

int xp__store_memo_delete(xp_backend *b, const uint8_t (*keys)[16], size_t n,
                          xp_error_t *err)
{
    if (n == 0 || !b->ops->memo_delete)
        return 0;
    return b->ops->memo_delete(b, keys, n, err);
}

int xp__store_persisted_drop(xp_backend *b, int64_t trial, xp_error_t *err)
{
    if (!b->ops->persisted_drop)
        return xp__error(err, XP_DOMAIN_BACKEND, XP_EINVAL,
                         "the %s backend cannot remove persisted values",
                         b->ops->name);
    return b->ops->persisted_drop(b, trial, err);
}
