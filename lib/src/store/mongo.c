/* backend_mongo.c — the MongoDB backend: collections ID.trials, ID.metrics,
 * ID.contents, GridFS bucket ID.fs and the id counters in xp.counters
 * (docs/schema.md), through a thread-safe client pool; 5 commands a trial. */
#include "store/driver.h"
#include "util/bson_util.h"
#include "util/error.h"
#include "util/hash.h"
#include "util/log.h"
#include "util/names.h"
#include "util/rng.h"
#include "util/uri.h"
#include "value.h"

#include <math.h>
#include <mongoc/mongoc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define XP_MONGO_COUNTERS "xp.counters"
/* A persisted value or result whose BSON is smaller than this lives inside
 * its trial document; larger ones go to GridFS. */
#define XP_MONGO_INLINE_MAX (1024 * 1024)
/* Inline persisted values stop growing a trial document past this size,
 * well below the 16 MiB BSON limit. */
#define XP_MONGO_DOC_BUDGET (12 * 1024 * 1024)
/* MongoDB's limit on a document (16 MiB), less room for the command. */
#define XP_MONGO_DOC_MAX (16 * 1024 * 1024 - 16 * 1024)
/* Attempts of an idempotent command when the connection is lost. */
#define XP_MONGO_ATTEMPTS 2
/* Trial ids tried before giving up when each collides with a trial
 * another writer stored first (after a collision the next id is a counter
 * ticket, see s_trial_begin). */
#define XP_MONGO_ID_ROUNDS 64

typedef struct {
    xp_backend base;
    mongoc_uri_t *uri;
    mongoc_client_pool_t *pool;
    char *id;
    char *db;
    char *trials;   /* <id>.trials */
    char *metrics;  /* <id>.metrics */
    char *contents; /* <id>.contents */
    char *bucket;   /* <id>.fs */
    char *purity;   /* <id>.step_hashes, on FerretDB only */
    char *memo;     /* <id>.memo */
    char *secret;   /* password as written in the URI, to scrub, or NULL */
    char *secret_decoded;
    atomic_bool no_elem_match; /* the server refused $elemMatch on fields */
    bool ferretdb;             /* buildInfo named a FerretDB version */
    _Atomic int64_t next_id;   /* id to try next; 0: read the largest */
} xp_mongo;

/* ---------------------------------------------------------------- command
 * counting: tests observe the backend's own clients through an APM
 * callback installed on pools opened while counting is enabled. */

void xp__mongo_count_commands(bool enable);
uint64_t xp__mongo_commands(char *names, size_t size);

static pthread_mutex_t s_apm_lock = PTHREAD_MUTEX_INITIALIZER;
static bool s_apm_enabled;
static uint64_t s_apm_count;
static char s_apm_names[2048];

/* Enables command counting for pools opened from now on (tests only). */
void xp__mongo_count_commands(bool enable)
{
    pthread_mutex_lock(&s_apm_lock);
    s_apm_enabled = enable;
    pthread_mutex_unlock(&s_apm_lock);
}

/* Commands started since the last call; their names, space separated, go
 * to names[size] (may be NULL). Resets the count. */
uint64_t xp__mongo_commands(char *names, size_t size)
{
    pthread_mutex_lock(&s_apm_lock);
    uint64_t n = s_apm_count;
    if (names && size)
        bson_strncpy(names, s_apm_names, size);
    s_apm_count = 0;
    s_apm_names[0] = '\0';
    pthread_mutex_unlock(&s_apm_lock);
    return n;
}

static void s_apm_started(const mongoc_apm_command_started_t *event)
{
    const char *name = mongoc_apm_command_started_get_command_name(event);
    pthread_mutex_lock(&s_apm_lock);
    s_apm_count++;
    size_t used = strlen(s_apm_names);
    if (used + strlen(name) + 2 < sizeof s_apm_names)
        snprintf(s_apm_names + used, sizeof s_apm_names - used, "%s%s",
                 used ? " " : "", name);
    pthread_mutex_unlock(&s_apm_lock);
}

/* ---------------------------------------------------------------- driver */

static pthread_once_t s_once = PTHREAD_ONCE_INIT;

/* While a thread parses a URI (one at a time, under s_uri_lock), the
 * driver's messages from that thread are collected here: they explain a
 * parse error better than the error. Not thread-local storage: in a module
 * loaded with dlopen that would be dynamic TLS, which clang 14's
 * LeakSanitizer can crash on scanning. */
static pthread_mutex_t s_uri_lock = PTHREAD_MUTEX_INITIALIZER;
static bson_string_t *s_uri_notes;
static pthread_t s_uri_thread;
static atomic_bool s_uri_parsing;

/* The driver's own messages go through xp's log handler (debug level)
 * instead of stderr. */
static void s_driver_log(mongoc_log_level_t level, const char *domain,
                         const char *message, void *user)
{
    (void)user;
    if (atomic_load(&s_uri_parsing) &&
        pthread_equal(s_uri_thread, pthread_self())) {
        bson_string_append_printf(s_uri_notes, "%s%s",
                                  s_uri_notes->len ? "; " : "", message);
        return;
    }
    /* At run time they accompany an error the caller gets anyway. */
    (void)level;
    xp__log(XP_LOG_DEBUG, "MongoDB driver (%s): %s", domain, message);
}

static void s_init(void)
{
    mongoc_init();
    mongoc_log_set_handler(s_driver_log, NULL);
}

/* Replaces every occurrence of secret in msg (in place) by "***". */
static void s_scrub(char *msg, const char *secret)
{
    size_t slen = secret ? strlen(secret) : 0;
    if (slen < 3)
        return;
    char *p;
    while ((p = strstr(msg, secret)) != NULL) {
        memcpy(p, "***", 3);
        memmove(p + 3, p + slen, strlen(p + slen) + 1);
    }
}

static bool s_is_network(const bson_error_t *e)
{
    return e->domain == MONGOC_ERROR_STREAM ||
           e->domain == MONGOC_ERROR_SERVER_SELECTION;
}

static bool s_is_duplicate(const bson_error_t *e)
{
    return !s_is_network(e) && (e->code == 11000 || e->code == 11001);
}

/* Fills err from a driver error: "<uri>: <what>: <driver message>" with
 * the password scrubbed. Returns -1. */
static int s_fail(const xp_mongo *m, xp_error_t *err, const bson_error_t *e,
                  const char *fmt, ...) XP_PRINTF(4, 5);

static int s_fail(const xp_mongo *m, xp_error_t *err, const bson_error_t *e,
                  const char *fmt, ...)
{
    char what[256], msg[sizeof e->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    bson_strncpy(msg, e->message, sizeof msg);
    s_scrub(msg, m->secret);
    s_scrub(msg, m->secret_decoded);
    const char *hint = e->domain == MONGOC_ERROR_SERVER_SELECTION
                           ? "server unreachable: "
                       : e->domain == MONGOC_ERROR_STREAM ? "network error: "
                                                          : "";
    return xp__error(err, XP_DOMAIN_BACKEND, XP_EIO, "%s: %s: %s%s",
                     m->base.description, what, hint, msg);
}

static mongoc_collection_t *s_coll(const xp_mongo *m, mongoc_client_t *c,
                                   const char *name)
{
    return mongoc_client_get_collection(c, m->db, name);
}

/* Options of a find returning at most one document in one batch (so no
 * cursor is left to kill). Caller destroys. */
static void s_one_opts(bson_t *opts, const bson_t *projection,
                       const bson_t *sort)
{
    bson_init(opts);
    if (projection)
        BSON_APPEND_DOCUMENT(opts, "projection", projection);
    if (sort)
        BSON_APPEND_DOCUMENT(opts, "sort", sort);
    BSON_APPEND_INT64(opts, "limit", 1);
    BSON_APPEND_BOOL(opts, "singleBatch", true);
}

/* First document matching filter into *out (initialised when *found). */
static bool s_find_first(mongoc_collection_t *coll, const bson_t *filter,
                         const bson_t *opts, bson_t *out, bool *found,
                         bson_error_t *e)
{
    bool ok = false;
    for (int attempt = 0; attempt < XP_MONGO_ATTEMPTS; attempt++) {
        mongoc_cursor_t *cur =
            mongoc_collection_find_with_opts(coll, filter, opts, NULL);
        const bson_t *doc;
        *found = false;
        if (mongoc_cursor_next(cur, &doc)) {
            bson_copy_to(doc, out);
            *found = true;
        }
        ok = !mongoc_cursor_error(cur, e);
        mongoc_cursor_destroy(cur);
        if (!ok && *found) {
            bson_destroy(out);
            *found = false;
        }
        if (ok || !s_is_network(e))
            break;
    }
    return ok;
}

static int64_t s_int_field(const bson_t *doc, const char *key)
{
    bson_iter_t it;
    if (bson_iter_init_find(&it, doc, key) &&
        (BSON_ITER_HOLDS_INT64(&it) || BSON_ITER_HOLDS_INT32(&it) ||
         BSON_ITER_HOLDS_DOUBLE(&it)))
        return bson_iter_as_int64(&it);
    return 0;
}

/* Largest stored trial id (0 when none). */
static bool s_max_id(mongoc_collection_t *trials, int64_t *id, bson_error_t *e)
{
    bson_t filter = BSON_INITIALIZER, proj = BSON_INITIALIZER;
    bson_t sort = BSON_INITIALIZER, opts, doc;
    bool found = false;
    BSON_APPEND_INT32(&proj, "_id", 1);
    BSON_APPEND_INT32(&sort, "_id", -1);
    s_one_opts(&opts, &proj, &sort);
    bool ok = s_find_first(trials, &filter, &opts, &doc, &found, e);
    *id = 0;
    if (found) {
        *id = s_int_field(&doc, "_id");
        bson_destroy(&doc);
    }
    bson_destroy(&filter);
    bson_destroy(&proj);
    bson_destroy(&sort);
    bson_destroy(&opts);
    return ok;
}

/* ---------------------------------------------------------------- GridFS */

static mongoc_gridfs_bucket_t *s_bucket(const xp_mongo *m, mongoc_client_t *c,
                                        bson_error_t *e)
{
    mongoc_database_t *db = mongoc_client_get_database(c, m->db);
    bson_t opts = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&opts, "bucketName", m->bucket);
    mongoc_gridfs_bucket_t *bucket =
        mongoc_gridfs_bucket_new(db, &opts, NULL, e);
    bson_destroy(&opts);
    mongoc_database_destroy(db);
    return bucket;
}

static void s_file_id(bson_value_t *v, const char *file)
{
    memset(v, 0, sizeof *v);
    v->value_type = BSON_TYPE_UTF8;
    v->value.v_utf8.str = (char *)file;
    v->value.v_utf8.len = (uint32_t)strlen(file);
}

/* Removes the GridFS file `file` (an earlier, possibly partial, attempt). */
static bool s_gridfs_remove(const xp_mongo *m, mongoc_client_t *c,
                            const char *file, bson_error_t *e)
{
    char name[XP_ID_MAX + 16];
    bson_t sel = BSON_INITIALIZER;
    snprintf(name, sizeof name, "%s.files", m->bucket);
    mongoc_collection_t *files = s_coll(m, c, name);
    snprintf(name, sizeof name, "%s.chunks", m->bucket);
    mongoc_collection_t *chunks = s_coll(m, c, name);
    BSON_APPEND_UTF8(&sel, "_id", file);
    bool ok = mongoc_collection_delete_one(files, &sel, NULL, NULL, e);
    bson_reinit(&sel);
    BSON_APPEND_UTF8(&sel, "files_id", file);
    ok = ok && mongoc_collection_delete_many(chunks, &sel, NULL, NULL, e);
    bson_destroy(&sel);
    mongoc_collection_destroy(files);
    mongoc_collection_destroy(chunks);
    return ok;
}

/* Stores data as GridFS file `file`, replacing any earlier attempt, so a
 * retried or replayed trial writes the same file again. */
static bool s_gridfs_put(const xp_mongo *m, mongoc_client_t *c,
                         const char *file, const uint8_t *data, size_t len,
                         bson_error_t *e)
{
    if (!s_gridfs_remove(m, c, file, e))
        return false;
    mongoc_gridfs_bucket_t *bucket = s_bucket(m, c, e);
    if (!bucket)
        return false;
    bson_value_t id;
    s_file_id(&id, file);
    bool ok = false;
    mongoc_stream_t *up = mongoc_gridfs_bucket_open_upload_stream_with_id(
        bucket, &id, file, NULL, e);
    if (up) {
        size_t off = 0;
        ok = true;
        while (ok && off < len) {
            size_t n = len - off < (1u << 20) ? len - off : (1u << 20);
            ssize_t w = mongoc_stream_write(up, (void *)(data + off), n, 0);
            if (w <= 0)
                ok = false;
            else
                off += (size_t)w;
        }
        if (ok)
            ok = mongoc_stream_close(up) == 0;
        if (!ok && !mongoc_gridfs_bucket_stream_error(up, e))
            bson_set_error(e, MONGOC_ERROR_GRIDFS,
                           MONGOC_ERROR_GRIDFS_BUCKET_STREAM,
                           "GridFS upload of %s failed", file);
        if (!ok)
            mongoc_gridfs_bucket_abort_upload(up);
        mongoc_stream_destroy(up);
    }
    mongoc_gridfs_bucket_destroy(bucket);
    return ok;
}

/* Reads GridFS file `file` whole. Caller frees *data. */
static bool s_gridfs_get(const xp_mongo *m, mongoc_client_t *c,
                         const char *file, uint8_t **data, size_t *len,
                         bson_error_t *e)
{
    *data = NULL;
    *len = 0;
    mongoc_gridfs_bucket_t *bucket = s_bucket(m, c, e);
    if (!bucket)
        return false;
    bson_value_t id;
    s_file_id(&id, file);
    bool ok = false;
    mongoc_stream_t *down =
        mongoc_gridfs_bucket_open_download_stream(bucket, &id, e);
    if (down) {
        size_t cap = 1u << 20, size = 0;
        uint8_t *buf = bson_malloc(cap);
        ssize_t r;
        for (;;) {
            if (cap - size < (1u << 16)) {
                cap *= 2;
                buf = bson_realloc(buf, cap);
            }
            r = mongoc_stream_read(down, buf + size, cap - size, 1, 0);
            if (r <= 0)
                break;
            size += (size_t)r;
        }
        if (r < 0) {
            if (!mongoc_gridfs_bucket_stream_error(down, e))
                bson_set_error(e, MONGOC_ERROR_GRIDFS,
                               MONGOC_ERROR_GRIDFS_BUCKET_STREAM,
                               "GridFS download of %s failed", file);
            bson_free(buf);
        } else {
            *data = buf;
            *len = size;
            ok = true;
        }
        mongoc_stream_destroy(down);
    }
    mongoc_gridfs_bucket_destroy(bucket);
    return ok;
}

/* Reads a value stored in GridFS as BSON {v: value} from its reference
 * {file, bytes}. */
static int s_gridfs_value(const xp_mongo *m, mongoc_client_t *c,
                          const bson_t *ref, xp_value *out, xp_error_t *err)
{
    bson_iter_t it;
    bson_error_t e;
    if (!bson_iter_init_find(&it, ref, "file") || !BSON_ITER_HOLDS_UTF8(&it))
        return xp__error(err, XP_DOMAIN_BACKEND, XP_ECORRUPT,
                         "%s: a GridFS reference is damaged",
                         m->base.description);
    const char *file = bson_iter_utf8(&it, NULL);
    uint8_t *data = NULL;
    size_t len = 0;
    bool ok = false;
    for (int attempt = 0; attempt < XP_MONGO_ATTEMPTS && !ok; attempt++) {
        ok = s_gridfs_get(m, c, file, &data, &len, &e);
        if (!ok && !s_is_network(&e))
            break;
    }
    if (!ok)
        return s_fail(m, err, &e, "reading GridFS file %s", file);
    bson_t doc;
    int rc = -1;
    if (xp__bson_view_checked(&doc, data, len) &&
        bson_iter_init_find(&it, &doc, "v"))
        rc = xp__value_from_iter(out, &it, err);
    else
        xp__error(err, XP_DOMAIN_BACKEND, XP_ECORRUPT,
                  "%s: GridFS file %s is damaged", m->base.description, file);
    bson_free(data);
    return rc;
}

/* ---------------------------------------------------------------- trials */

/* What s_find looks for. */
typedef enum {
    XP_FIND_BAD_KEY,  /* a key starting with '$' or holding '.' */
    XP_FIND_FERRETDB, /* what FerretDB 1.24 refuses: NaN, ±Inf, [[...]] */
} xp_mongo_find;

static bool s_matches(const bson_iter_t *it, bool in_array, xp_mongo_find what)
{
    if (what == XP_FIND_BAD_KEY) {
        const char *key = bson_iter_key(it);
        return key[0] == '$' || strchr(key, '.') != NULL;
    }
    return (BSON_ITER_HOLDS_DOUBLE(it) && !isfinite(bson_iter_double(it))) ||
           (in_array && BSON_ITER_HOLDS_ARRAY(it));
}

/* True when an element of doc (at any depth) is what; its dotted path then
 * in path (may be NULL). Documents are checked for depth
 * (XP_BSON_MAX_DEPTH) before they get here; deeper ones are not walked. */
static bool s_find(const bson_t *doc, xp_mongo_find what, char *path,
                   size_t size)
{
    typedef struct {
        bson_iter_t it;
    } frame; /* libbson aligns iterators beyond their size */
    frame *stack = bson_malloc((XP_BSON_MAX_DEPTH + 1) * sizeof *stack);
    bool found = false;
    int top = 0;
    if (!bson_iter_init(&stack[0].it, doc))
        top = -1;
    while (top >= 0 && !found) {
        bson_iter_t *it = &stack[top].it;
        if (!bson_iter_next(it)) {
            top--;
            continue;
        }
        bool in_array = top > 0 && BSON_ITER_HOLDS_ARRAY(&stack[top - 1].it);
        if (s_matches(it, in_array, what)) {
            size_t used = 0;
            for (int i = 0; path && i <= top && used + 1 < size; i++) {
                int n = snprintf(path + used, size - used, "%s%s", i ? "." : "",
                                 bson_iter_key(&stack[i].it));
                if (n < 0)
                    break;
                used += (size_t)n < size - used ? (size_t)n : size - used - 1;
            }
            found = true;
        } else if ((BSON_ITER_HOLDS_DOCUMENT(it) ||
                    BSON_ITER_HOLDS_ARRAY(it)) &&
                   top < XP_BSON_MAX_DEPTH &&
                   bson_iter_recurse(it, &stack[top + 1].it)) {
            top++;
        }
    }
    bson_free(stack);
    return found;
}

/* True when a value (as {v: value}) must be kept in GridFS: too large for
 * its document, or with keys or values the server may refuse (FerretDB
 * and MongoDB before 5.0 refuse '$' and '.' in keys; FerretDB refuses
 * NaN, infinities and arrays of arrays): GridFS keeps its bytes as they
 * are. */
static bool s_needs_gridfs(const xp_mongo *m, const bson_t *v, size_t max)
{
    return v->len >= max || s_find(v, XP_FIND_BAD_KEY, NULL, 0) ||
           (m->ferretdb && s_find(v, XP_FIND_FERRETDB, NULL, 0));
}

/* Builds the stored form of a trial document (doc without _id, as given
 * by the core) into out: _id first, a result of 1 MiB or more moved to
 * GridFS (result_gridfs takes its place). */
static bool s_trial_doc(const xp_mongo *m, mongoc_client_t *c, int64_t id,
                        const bson_t *doc, bson_t *out, bson_error_t *e)
{
    bson_iter_t it;
    BSON_APPEND_INT64(out, "_id", id);
    if (!bson_iter_init(&it, doc))
        return true;
    while (bson_iter_next(&it)) {
        const char *key = bson_iter_key(&it);
        if (strcmp(key, "_id") == 0)
            continue;
        if (strcmp(key, XP_RECORD_RESULT) == 0) {
            bson_t v = BSON_INITIALIZER, ref;
            bson_append_iter(&v, "v", 1, &it);
            if (s_needs_gridfs(m, &v, XP_MONGO_INLINE_MAX)) {
                char file[64];
                snprintf(file, sizeof file, "%lld/result", (long long)id);
                bool ok = s_gridfs_put(m, c, file, bson_get_data(&v), v.len, e);
                uint32_t bytes = v.len;
                bson_destroy(&v);
                if (!ok)
                    return false;
                BSON_APPEND_DOCUMENT_BEGIN(out, "result_gridfs", &ref);
                BSON_APPEND_UTF8(&ref, "file", file);
                BSON_APPEND_INT64(&ref, "bytes", bytes);
                bson_append_document_end(out, &ref);
                continue;
            }
            bson_destroy(&v);
        }
        bson_append_iter(out, key, -1, &it);
    }
    return true;
}

/* Fields of the stored trial document that are not part of the trial
 * record the core sees. */
static void s_record_projection(bson_t *proj)
{
    BSON_APPEND_INT32(proj, "_id", 0);
    BSON_APPEND_INT32(proj, "persisted", 0);
    BSON_APPEND_INT32(proj, "persisted_gridfs", 0);
    BSON_APPEND_INT32(proj, "step_hashes", 0);
    BSON_APPEND_INT32(proj, "step_hashes_gridfs", 0);
}

/* Copies a stored trial record to out (initialised here), loading a
 * result kept in GridFS. */
static int s_record(const xp_mongo *m, mongoc_client_t *c, const bson_t *stored,
                    bson_t *out, xp_error_t *err)
{
    bson_iter_t it;
    if (!bson_iter_init_find(&it, stored, "result_gridfs")) {
        bson_copy_to(stored, out);
        return 0;
    }
    bson_init(out);
    bson_iter_init(&it, stored);
    while (bson_iter_next(&it)) {
        if (strcmp(bson_iter_key(&it), "result_gridfs") != 0) {
            bson_append_iter(out, NULL, 0, &it);
            continue;
        }
        uint32_t len = 0;
        const uint8_t *data = NULL;
        bson_t ref;
        xp_value v = {0};
        if (BSON_ITER_HOLDS_DOCUMENT(&it))
            bson_iter_document(&it, &len, &data);
        if (!data || !bson_init_static(&ref, data, len) ||
            s_gridfs_value(m, c, &ref, &v, err) != 0 ||
            xp__value_append_bson(out, XP_RECORD_RESULT, &v) != 0) {
            xp__value_clear(&v);
            bson_destroy(out);
            if (err && err->code == XP_OK)
                xp__error(err, XP_DOMAIN_BACKEND, XP_ECORRUPT,
                          "%s: a stored result is damaged",
                          m->base.description);
            return -1;
        }
        xp__value_clear(&v);
    }
    return 0;
}

/* Whether record (from s_record) is checked as xp_trial_fn promises:
 * the driver's cursor verifies only the outer document. Destroys record
 * and fills why (XP_ECORRUPT) when not. */
static bool s_record_checked(bson_t *record, int64_t id, xp_error_t *why)
{
    if (xp__bson_check(bson_get_data(record), record->len, XP_BSON_MAX_DEPTH,
                       NULL) == 0)
        return true;
    bson_destroy(record);
    xp__error(why, XP_DOMAIN_BACKEND, XP_ECORRUPT,
              "the stored record of trial %lld is damaged", (long long)id);
    return false;
}

static mongoc_client_t *s_pop(const xp_mongo *m)
{
    return mongoc_client_pool_pop(m->pool);
}

static void s_push(const xp_mongo *m, mongoc_client_t *c)
{
    mongoc_client_pool_push(m->pool, c);
}

/* A document the server would refuse gets this error before it is sent:
 * keys with '$' or '.' (refused by MongoDB before 5.0 and FerretDB, and
 * unqueryable on any), and on FerretDB 1.24 NaN, infinities and arrays of
 * arrays (it closes the connection on NaN), instead of a lost connection
 * and a retry. Values that steps return never get here: s_needs_gridfs
 * keeps those in GridFS. */
static bool s_storable(const xp_mongo *m, const bson_t *doc, bson_error_t *e)
{
    char path[256] = "";
    if (s_find(doc, XP_FIND_BAD_KEY, path, sizeof path)) {
        bson_set_error(e, MONGOC_ERROR_BSON, MONGOC_ERROR_BSON_INVALID,
                       "field '%s': keys starting with '$' or holding '.' "
                       "cannot be stored in MongoDB documents",
                       path);
        return false;
    }
    if (!m->ferretdb || !s_find(doc, XP_FIND_FERRETDB, path, sizeof path))
        return true;
    bson_set_error(e, MONGOC_ERROR_BSON, MONGOC_ERROR_BSON_INVALID,
                   "field '%s': FerretDB cannot store NaN, infinite "
                   "numbers or arrays of arrays (docs/schema.md, "
                   "Compatibility)",
                   path);
    return false;
}

/* Next value of the experiment's counter. findAndModify is not
 * idempotent, so it is repeated only when it was certainly not executed
 * (no server could be selected) or lost a race creating the counter. */
static bool s_next_id(const xp_mongo *m, mongoc_collection_t *counters,
                      int64_t *seq, bson_error_t *e)
{
    bson_t query = BSON_INITIALIZER, update = BSON_INITIALIZER, inc;
    BSON_APPEND_UTF8(&query, "_id", m->id);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "$inc", &inc);
    BSON_APPEND_INT64(&inc, "seq", 1);
    bson_append_document_end(&update, &inc);
    mongoc_find_and_modify_opts_t *opts = mongoc_find_and_modify_opts_new();
    mongoc_find_and_modify_opts_set_update(opts, &update);
    mongoc_find_and_modify_opts_set_flags(
        opts,
        MONGOC_FIND_AND_MODIFY_UPSERT | MONGOC_FIND_AND_MODIFY_RETURN_NEW);
    bool ok = false;
    for (int attempt = 0; attempt < XP_MONGO_ATTEMPTS; attempt++) {
        bson_t reply;
        ok = mongoc_collection_find_and_modify_with_opts(counters, &query, opts,
                                                         &reply, e);
        if (ok) {
            bson_iter_t it, seq_it;
            ok = bson_iter_init(&it, &reply) &&
                 bson_iter_find_descendant(&it, "value.seq", &seq_it) &&
                 (BSON_ITER_HOLDS_INT64(&seq_it) ||
                  BSON_ITER_HOLDS_INT32(&seq_it) ||
                  BSON_ITER_HOLDS_DOUBLE(&seq_it));
            if (ok)
                *seq = bson_iter_as_int64(&seq_it);
            else
                bson_set_error(e, MONGOC_ERROR_BSON, MONGOC_ERROR_BSON_INVALID,
                               "the counter document has no numeric seq");
        }
        bson_destroy(&reply);
        if (ok ||
            !(e->domain == MONGOC_ERROR_SERVER_SELECTION || s_is_duplicate(e)))
            break;
    }
    mongoc_find_and_modify_opts_destroy(opts);
    bson_destroy(&query);
    bson_destroy(&update);
    return ok;
}

/* A ticket for the next id after a collision at floor: the counter is
 * raised to floor ($max; the fast path leaves it behind) and incremented.
 * On MongoDB the $inc hands out each value once, so writers that keep
 * colliding stop racing for the same largest id + 1. */
static bool s_ticket(const xp_mongo *m, mongoc_collection_t *counters,
                     int64_t floor, int64_t *seq, bson_error_t *e)
{
    bson_t sel = BSON_INITIALIZER, update = BSON_INITIALIZER, max;
    bson_t opts = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&sel, "_id", m->id);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "$max", &max);
    BSON_APPEND_INT64(&max, "seq", floor);
    bson_append_document_end(&update, &max);
    BSON_APPEND_BOOL(&opts, "upsert", true);
    bool ok = false;
    for (int attempt = 0; attempt < XP_MONGO_ATTEMPTS; attempt++) {
        ok = mongoc_collection_update_one(counters, &sel, &update, &opts, NULL,
                                          e);
        if (ok || !(s_is_network(e) || s_is_duplicate(e)))
            break;
    }
    bson_destroy(&sel);
    bson_destroy(&update);
    bson_destroy(&opts);
    return ok && s_next_id(m, counters, seq, e);
}

/* True when the trial stored under id is doc byte for byte: after a lost
 * connection, a duplicate _id on the repeated insert is either the first
 * insert having got through or another writer's trial. */
static bool s_is_ours(mongoc_collection_t *trials, int64_t id,
                      const bson_t *doc)
{
    bson_t filter = BSON_INITIALIZER, opts, stored;
    bson_error_t e;
    bool found = false, ours = false;
    BSON_APPEND_INT64(&filter, "_id", id);
    s_one_opts(&opts, NULL, NULL);
    if (s_find_first(trials, &filter, &opts, &stored, &found, &e) && found) {
        ours = bson_equal(&stored, doc);
        bson_destroy(&stored);
    }
    bson_destroy(&filter);
    bson_destroy(&opts);
    return ours;
}

/* After the round-th collision in a row, waits a random time of up to
 * round ms (at most 20): writers that keep colliding spread out. */
static void s_backoff(int round)
{
    uint32_t r = 0;
    xp__random_bytes(&r, sizeof r);
    long max_us = (round < 20 ? round + 1 : 20) * 1000L;
    struct timespec ts = {0, (long)(r % (uint32_t)max_us) * 1000L};
    nanosleep(&ts, NULL);
}

/* Trial ids are the largest stored id + 1, taken by inserting the record
 * under that _id: the unique _id decides who owns an id, so allocating and
 * recording the trial are one command (docs/schema.md, "Trial ids").
 * next_id remembers this handle's next candidate. After a collision with
 * another writer the next candidate is a ticket from the counter. */
static int s_trial_begin(xp_backend *b, const xp_trial_record *rec, int64_t *id,
                         xp_error_t *err)
{
    xp_mongo *m = (xp_mongo *)b;
    mongoc_client_t *c = s_pop(m);
    mongoc_collection_t *trials = s_coll(m, c, m->trials);
    bson_t opts = BSON_INITIALIZER;
    BSON_APPEND_BOOL(&opts, "validate", false);
    bson_error_t e;
    int rc = -1;
    for (int round = 0; round < XP_MONGO_ID_ROUNDS; round++) {
        int64_t seq = atomic_load(&m->next_id);
        if (seq > 0)
            seq = atomic_fetch_add(&m->next_id, 1);
        if (seq <= 0) {
            int64_t last = 0;
            if (!s_max_id(trials, &last, &e)) {
                s_fail(m, err, &e, "allocating a trial id");
                goto cleanup;
            }
            seq = last + 1;
            atomic_store(&m->next_id, seq + 1);
        }
        bson_t full = BSON_INITIALIZER;
        xp_trial_record with_id = *rec;
        with_id.trial_id = seq;
        BSON_APPEND_INT64(&full, "_id", seq);
        if (xp__record_encode(&with_id, &full, err) != 0) {
            bson_destroy(&full);
            atomic_store(&m->next_id, 0);
            goto cleanup;
        }
        bool written = false, collided = false;
        if (!s_storable(m, &full, &e)) {
            bson_destroy(&full);
            atomic_store(&m->next_id, 0); /* seq stays free */
            s_fail(m, err, &e, "trial not started");
            goto cleanup;
        }
        for (int attempt = 0; attempt < XP_MONGO_ATTEMPTS; attempt++) {
            if (mongoc_collection_insert_one(trials, &full, &opts, NULL, &e)) {
                written = true;
                break;
            }
            if (s_is_duplicate(&e)) {
                written = attempt > 0 && s_is_ours(trials, seq, &full);
                collided = !written;
                break;
            }
            if (!s_is_network(&e))
                break;
        }
        bson_destroy(&full);
        if (written) {
            *id = seq;
            rc = 0;
            goto cleanup;
        }
        if (!collided) {
            atomic_store(&m->next_id, 0);
            s_fail(m, err, &e, "recording trial %lld as running",
                   (long long)seq);
            goto cleanup;
        }
        /* Another writer took seq: contended ids come from the counter. */
        s_backoff(round);
        mongoc_collection_t *counters = s_coll(m, c, XP_MONGO_COUNTERS);
        bool ticket = s_ticket(m, counters, seq, &seq, &e);
        mongoc_collection_destroy(counters);
        if (!ticket) {
            s_fail(m, err, &e, "allocating a trial id");
            goto cleanup;
        }
        atomic_store(&m->next_id, seq);
    }
    xp__error(err, XP_DOMAIN_BACKEND, XP_EIO,
              "%s: trial ids of experiment '%s' keep colliding with stored "
              "trials",
              m->base.description, m->id);
cleanup:
    bson_destroy(&opts);
    mongoc_collection_destroy(trials);
    s_push(m, c);
    return rc;
}

/* ---------------------------------------------------------------- metrics */

static void s_bucket_selector(bson_t *sel, int64_t trial,
                              const xp_metric_chunk *c)
{
    BSON_APPEND_INT64(sel, "trial", trial);
    BSON_APPEND_UTF8(sel, "name", c->name);
    BSON_APPEND_INT64(sel, "chunk", c->chunk);
}

/* Metric values that are not finite are stored as these strings: MongoDB
 * stores NaN and infinities as doubles, but FerretDB 1.24 refuses them
 * (docs/schema.md, "Compatibility"), and a diverging loss is common. */
static const char *s_nonfinite_name(double v)
{
    return isnan(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity";
}

/* The bucket document of chunk c. */
static void s_bucket_doc(bson_t *doc, int64_t trial, const xp_metric_chunk *c)
{
    bson_t arr;
    char key[16];
    const char *k;
    s_bucket_selector(doc, trial, c);
    BSON_APPEND_INT32(doc, "n", (int32_t)c->n);
    BSON_APPEND_ARRAY_BEGIN(doc, "epochs", &arr);
    for (size_t i = 0; i < c->n; i++) {
        size_t klen = bson_uint32_to_string((uint32_t)i, &k, key, sizeof key);
        bson_append_int64(&arr, k, (int)klen, c->epochs[i]);
    }
    bson_append_array_end(doc, &arr);
    BSON_APPEND_ARRAY_BEGIN(doc, "values", &arr);
    for (size_t i = 0; i < c->n; i++) {
        size_t klen = bson_uint32_to_string((uint32_t)i, &k, key, sizeof key);
        double v = c->values[i];
        if (isfinite(v))
            bson_append_double(&arr, k, (int)klen, v);
        else
            bson_append_utf8(&arr, k, (int)klen, s_nonfinite_name(v), -1);
    }
    bson_append_array_end(doc, &arr);
}

/* The value of a bucket's values element: a number, or one of the names
 * s_nonfinite_name gives. False when it is neither. */
static bool s_bucket_value(const bson_iter_t *it, double *v)
{
    if (BSON_ITER_HOLDS_NUMBER(it)) {
        *v = bson_iter_as_double(it);
        return true;
    }
    if (!BSON_ITER_HOLDS_UTF8(it))
        return false;
    const char *s = bson_iter_utf8(it, NULL);
    if (strcmp(s, "NaN") == 0)
        *v = NAN;
    else if (strcmp(s, "Infinity") == 0)
        *v = INFINITY;
    else if (strcmp(s, "-Infinity") == 0)
        *v = -INFINITY;
    else
        return false;
    return true;
}

/* Fills the selector and the replacement document of upsert i. */
typedef void (*xp_mongo_fill)(size_t i, bson_t *sel, bson_t *doc,
                              const void *user);

/* Replaces (upserting) n documents of collection name in one unordered
 * bulk write, sent again once when the connection is lost (replacing is
 * idempotent). */
static bool s_bulk_upsert(const xp_mongo *m, mongoc_client_t *c,
                          const char *name, size_t n, xp_mongo_fill fill,
                          const void *user, bson_error_t *e)
{
    if (n == 0)
        return true;
    mongoc_collection_t *coll = s_coll(m, c, name);
    bson_t bulk_opts = BSON_INITIALIZER, upsert = BSON_INITIALIZER;
    BSON_APPEND_BOOL(&bulk_opts, "ordered", false);
    BSON_APPEND_BOOL(&upsert, "upsert", true);
    bool ok = false;
    for (int attempt = 0; attempt < XP_MONGO_ATTEMPTS; attempt++) {
        mongoc_bulk_operation_t *bulk =
            mongoc_collection_create_bulk_operation_with_opts(coll, &bulk_opts);
        ok = true;
        for (size_t i = 0; i < n && ok; i++) {
            bson_t sel = BSON_INITIALIZER, doc = BSON_INITIALIZER;
            fill(i, &sel, &doc, user);
            ok = mongoc_bulk_operation_replace_one_with_opts(bulk, &sel, &doc,
                                                             &upsert, e);
            bson_destroy(&sel);
            bson_destroy(&doc);
        }
        if (ok) {
            bson_t reply;
            ok = mongoc_bulk_operation_execute(bulk, &reply, e) != 0;
            bson_destroy(&reply);
        }
        mongoc_bulk_operation_destroy(bulk);
        /* Two upserts of one new _id at once: one inserts, the other
         * fails with a duplicate key (FerretDB does not retry it as
         * MongoDB does); again, it is an update. */
        if (ok || !(s_is_network(e) || e->code == 11000 ||
                    strstr(e->message, "E11000")))
            break;
    }
    bson_destroy(&bulk_opts);
    bson_destroy(&upsert);
    mongoc_collection_destroy(coll);
    return ok;
}

typedef struct {
    int64_t trial;
    const xp_metric_chunk *chunks;
    const xp_step_hash *hashes;
} xp_mongo_rows;

static void s_fill_bucket(size_t i, bson_t *sel, bson_t *doc, const void *user)
{
    const xp_mongo_rows *r = user;
    s_bucket_selector(sel, r->trial, &r->chunks[i]);
    s_bucket_doc(doc, r->trial, &r->chunks[i]);
}

/* Upserts the chunks as one bulk write. */
static bool s_write_buckets(const xp_mongo *m, mongoc_client_t *c,
                            int64_t trial, const xp_metric_chunk *chunks,
                            size_t n_chunks, bson_error_t *e)
{
    xp_mongo_rows r = {.trial = trial, .chunks = chunks};
    return s_bulk_upsert(m, c, m->metrics, n_chunks, s_fill_bucket, &r, e);
}

static int s_metric_flush(xp_backend *b, int64_t id,
                          const xp_metric_chunk *chunks, size_t n,
                          xp_error_t *err)
{
    xp_mongo *m = (xp_mongo *)b;
    if (n == 0)
        return 0;
    mongoc_client_t *c = s_pop(m);
    bson_error_t e;
    bool ok = s_write_buckets(m, c, id, chunks, n, &e);
    s_push(m, c);
    if (!ok)
        return s_fail(m, err, &e, "storing metric '%s' of trial %lld",
                      chunks[0].name, (long long)id);
    return 0;
}

static int s_metric_read(xp_backend *b, const char *name, int64_t trial,
                         xp_metric_points *out, xp_error_t *err)
{
    xp_mongo *m = (xp_mongo *)b;
    mongoc_client_t *c = s_pop(m);
    mongoc_collection_t *coll = s_coll(m, c, m->metrics);
    bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, doc;
    BSON_APPEND_INT64(&filter, "trial", trial);
    BSON_APPEND_UTF8(&filter, "name", name);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &doc);
    BSON_APPEND_INT32(&doc, "chunk", 1);
    bson_append_document_end(&opts, &doc);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &doc);
    BSON_APPEND_INT32(&doc, "_id", 0);
    BSON_APPEND_INT32(&doc, "epochs", 1);
    BSON_APPEND_INT32(&doc, "values", 1);
    bson_append_document_end(&opts, &doc);
    size_t start = out->n;
    int rc = -1;
    bson_error_t e;
    for (int attempt = 0; attempt < XP_MONGO_ATTEMPTS; attempt++) {
        mongoc_cursor_t *cur =
            mongoc_collection_find_with_opts(coll, &filter, &opts, NULL);
        const bson_t *bucket;
        bool damaged = false, nomem = false;
        out->n = start;
        while (!damaged && !nomem && mongoc_cursor_next(cur, &bucket)) {
            bson_iter_t it, ei, vi;
            if (!bson_iter_init_find(&it, bucket, "epochs") ||
                !BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &ei) ||
                !bson_iter_init_find(&it, bucket, "values") ||
                !BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &vi)) {
                damaged = true;
                break;
            }
            for (;;) {
                bool has_e = bson_iter_next(&ei), has_v = bson_iter_next(&vi);
                if (!has_e && !has_v)
                    break;
                double v = 0;
                if (has_e != has_v || !BSON_ITER_HOLDS_NUMBER(&ei) ||
                    !s_bucket_value(&vi, &v)) {
                    damaged = true;
                    break;
                }
                if (xp__metric_points_add(out, bson_iter_as_int64(&ei), v) !=
                    0) {
                    nomem = true;
                    break;
                }
            }
        }
        bool failed = mongoc_cursor_error(cur, &e);
        mongoc_cursor_destroy(cur);
        if (nomem) {
            xp__enomem(err);
            break;
        }
        if (damaged) {
            xp__error(err, XP_DOMAIN_BACKEND, XP_ECORRUPT,
                      "%s: stored metric '%s' of trial %lld is damaged",
                      m->base.description, name, (long long)trial);
            break;
        }
        if (!failed) {
            rc = 0;
            break;
        }
        if (!s_is_network(&e) || attempt + 1 == XP_MONGO_ATTEMPTS) {
            s_fail(m, err, &e, "reading metric '%s' of trial %lld", name,
                   (long long)trial);
            break;
        }
    }
    bson_destroy(&filter);
    bson_destroy(&opts);
    mongoc_collection_destroy(coll);
    s_push(m, c);
    return rc;
}

/* Calls fn for each string of reply's "values" (a distinct's answer). */
static int s_each_value(const xp_mongo *m, const bson_t *reply, int64_t trial,
                        int (*fn)(const char *name, size_t len, void *user),
                        void *user, xp_error_t *err)
{
    bson_iter_t it, vi;
    if (!bson_iter_init_find(&it, reply, "values") ||
        !BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &vi))
        return xp__error(err, XP_DOMAIN_BACKEND, XP_ECORRUPT,
                         "%s: listing metric names of trial %lld: the server "
                         "answered without values",
                         m->base.description, (long long)trial);
    while (bson_iter_next(&vi)) {
        uint32_t len = 0;
        const char *name =
            BSON_ITER_HOLDS_UTF8(&vi) ? bson_iter_utf8(&vi, &len) : "";
        if (fn(name, len, user) != 0)
            return -1;
    }
    return 0;
}

/* distinct "name" of <id>.metrics over {trial}: the prefix of the
 * trial_name_chunk index. */
static int s_metric_names(xp_backend *b, int64_t trial,
                          int (*fn)(const char *name, size_t len, void *user),
                          void *user, xp_error_t *err)
{
    xp_mongo *m = (xp_mongo *)b;
    mongoc_client_t *c = s_pop(m);
    mongoc_collection_t *coll = s_coll(m, c, m->metrics);
    bson_t cmd = BSON_INITIALIZER, query;
    BSON_APPEND_UTF8(&cmd, "distinct", m->metrics);
    BSON_APPEND_UTF8(&cmd, "key", "name");
    BSON_APPEND_DOCUMENT_BEGIN(&cmd, "query", &query);
    BSON_APPEND_INT64(&query, "trial", trial);
    bson_append_document_end(&cmd, &query);
    int rc = -1;
    bson_error_t e;
    for (int attempt = 0; attempt < XP_MONGO_ATTEMPTS; attempt++) {
        bson_t reply;
        bool ok = mongoc_collection_read_command_with_opts(coll, &cmd, NULL,
                                                           NULL, &reply, &e);
        if (ok)
            rc = s_each_value(m, &reply, trial, fn, user, err);
        bson_destroy(&reply);
        if (ok)
            break;
        if (!s_is_network(&e) || attempt + 1 == XP_MONGO_ATTEMPTS) {
            s_fail(m, err, &e, "listing metric names of trial %lld",
                   (long long)trial);
            break;
        }
    }
    bson_destroy(&cmd);
    mongoc_collection_destroy(coll);
    s_push(m, c);
    return rc;
}

/* ---------------------------------------------------------------- finish */

/* Adds the persisted values to the stored trial document: inline under
 * persisted.<step> while small, else in GridFS as <trial>/<step> with a
 * reference under persisted_gridfs.<step>. */
static bool s_persist(const xp_mongo *m, mongoc_client_t *c, int64_t id,
                      const xp_persisted_item *persisted, size_t n,
                      bson_t *full, bson_error_t *e)
{
    bson_t inline_doc = BSON_INITIALIZER, refs = BSON_INITIALIZER;
    bool ok = true;
    size_t used = full->len;
    for (size_t i = 0; i < n && ok; i++) {
        bson_t v = BSON_INITIALIZER;
        if (xp__value_append_bson(&v, "v", persisted[i].value) != 0) {
            bson_set_error(e, MONGOC_ERROR_BSON, MONGOC_ERROR_BSON_INVALID,
                           "persisted value of step '%s' cannot be encoded",
                           persisted[i].step);
            ok = false;
        } else if (!s_needs_gridfs(m, &v, XP_MONGO_INLINE_MAX) &&
                   used + v.len < XP_MONGO_DOC_BUDGET) {
            bson_iter_t it;
            bson_iter_init_find(&it, &v, "v");
            bson_append_iter(&inline_doc, persisted[i].step, -1, &it);
            used += v.len;
        } else {
            char file[XP_NAME_MAX + 32];
            snprintf(file, sizeof file, "%lld/%s", (long long)id,
                     persisted[i].step);
            ok = s_gridfs_put(m, c, file, bson_get_data(&v), v.len, e);
            if (ok) {
                bson_t ref;
                BSON_APPEND_DOCUMENT_BEGIN(&refs, persisted[i].step, &ref);
                BSON_APPEND_UTF8(&ref, "file", file);
                BSON_APPEND_INT64(&ref, "bytes", v.len);
                bson_append_document_end(&refs, &ref);
            }
        }
        bson_destroy(&v);
    }
    if (ok && !bson_empty(&inline_doc))
        BSON_APPEND_DOCUMENT(full, "persisted", &inline_doc);
    if (ok && !bson_empty(&refs))
        BSON_APPEND_DOCUMENT(full, "persisted_gridfs", &refs);
    bson_destroy(&inline_doc);
    bson_destroy(&refs);
    return ok;
}

/* ---- FerretDB: FerretDB 1.24 answers a query from an index only for an
 * _id equality (any other filter or sort reads every document of the
 * collection), so there the latest output hash of each (step, input) is
 * also kept in <id>.step_hashes under the _id "<step>/<input hex>" and
 * looked up by _id, one find per step (docs/schema.md, Compatibility). */

static void s_purity_key(char *key, size_t size, const xp_step_hash *h)
{
    char hex[33];
    xp__hex(h->input, 16, hex);
    snprintf(key, size, "%s/%s", h->step, hex);
}

static int s_purity_get(xp_mongo *m, const xp_step_hash *h, size_t n,
                        uint8_t (*previous)[16], bool *found, xp_error_t *err)
{
    mongoc_client_t *c = s_pop(m);
    mongoc_collection_t *coll = s_coll(m, c, m->purity);
    bson_error_t e;
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        char key[XP_NAME_MAX + 40];
        s_purity_key(key, sizeof key, &h[i]);
        bson_t filter = BSON_INITIALIZER, opts, doc;
        BSON_APPEND_UTF8(&filter, "_id", key);
        s_one_opts(&opts, NULL, NULL);
        bool hit = false;
        ok = s_find_first(coll, &filter, &opts, &doc, &hit, &e);
        bson_iter_t it;
        if (ok && hit) {
            const uint8_t *data;
            uint32_t len = 0;
            if (bson_iter_init_find(&it, &doc, "output") &&
                BSON_ITER_HOLDS_BINARY(&it)) {
                bson_iter_binary(&it, NULL, &len, &data);
                if (len == 16) {
                    memcpy(previous[i], data, 16);
                    found[i] = true;
                }
            }
            bson_destroy(&doc);
        }
        bson_destroy(&filter);
        bson_destroy(&opts);
    }
    int rc = ok ? 0 : s_fail(m, err, &e, "reading step hashes");
    mongoc_collection_destroy(coll);
    s_push(m, c);
    return rc;
}

static void s_fill_purity(size_t i, bson_t *sel, bson_t *doc, const void *user)
{
    const xp_mongo_rows *r = user;
    char key[XP_NAME_MAX + 40];
    s_purity_key(key, sizeof key, &r->hashes[i]);
    BSON_APPEND_UTF8(sel, "_id", key);
    BSON_APPEND_BINARY(doc, "output", BSON_SUBTYPE_BINARY, r->hashes[i].output,
                       16);
    BSON_APPEND_INT64(doc, "trial", r->trial);
}

/* Upserts the hashes of trial id into <id>.step_hashes, one bulk write. */
static bool s_purity_put(const xp_mongo *m, mongoc_client_t *c, int64_t id,
                         const xp_step_hash *h, size_t n, bson_error_t *e)
{
    if (!m->ferretdb)
        return true;
    xp_mongo_rows r = {.trial = id, .hashes = h};
    return s_bulk_upsert(m, c, m->purity, n, s_fill_purity, &r, e);
}

/* Appends the step hashes to full as step_hashes, or, when they would
 * take the document past XP_MONGO_DOC_BUDGET (thousands of steps), keeps
 * them in GridFS as <trial>/step_hashes with a reference under
 * step_hashes_gridfs; the purity lookup does not search those. */
static bool s_hashes_append(const xp_mongo *m, mongoc_client_t *c, int64_t id,
                            const xp_step_hash *hashes, size_t n, bson_t *full,
                            bson_error_t *e)
{
    if (n == 0)
        return true;
    bson_t doc = BSON_INITIALIZER, arr, item;
    char key[16];
    const char *k;
    BSON_APPEND_ARRAY_BEGIN(&doc, "v", &arr);
    for (size_t i = 0; i < n; i++) {
        bson_uint32_to_string((uint32_t)i, &k, key, sizeof key);
        BSON_APPEND_DOCUMENT_BEGIN(&arr, k, &item);
        BSON_APPEND_UTF8(&item, "step", hashes[i].step);
        BSON_APPEND_BINARY(&item, "input", BSON_SUBTYPE_BINARY, hashes[i].input,
                           16);
        BSON_APPEND_BINARY(&item, "output", BSON_SUBTYPE_BINARY,
                           hashes[i].output, 16);
        bson_append_document_end(&arr, &item);
    }
    bson_append_array_end(&doc, &arr);
    bool ok = true;
    if ((size_t)full->len + doc.len < XP_MONGO_DOC_BUDGET) {
        bson_iter_t it;
        bson_iter_init_find(&it, &doc, "v");
        bson_append_iter(full, "step_hashes", -1, &it);
    } else {
        char file[64];
        snprintf(file, sizeof file, "%lld/step_hashes", (long long)id);
        ok = s_gridfs_put(m, c, file, bson_get_data(&doc), doc.len, e);
        if (ok) {
            bson_t ref;
            BSON_APPEND_DOCUMENT_BEGIN(full, "step_hashes_gridfs", &ref);
            BSON_APPEND_UTF8(&ref, "file", file);
            BSON_APPEND_INT64(&ref, "bytes", doc.len);
            bson_append_document_end(full, &ref);
        }
    }
    bson_destroy(&doc);
    return ok;
}

/* One attempt at the whole final record. Every write is idempotent
 * (upserts keyed by trial, GridFS files replaced), so it may be repeated
 * or replayed from a spool. *what names the failed part. */
static bool s_finish_once(const xp_mongo *m, mongoc_client_t *c,
                          const xp_trial_outcome *o, bson_error_t *e,
                          const char **what)
{
    int64_t id = o->record->trial_id;
    const xp_step_hash *hashes = o->hashes;
    size_t n_hashes = o->n_hashes;
    *what = "storing metrics";
    if (!s_write_buckets(m, c, id, o->chunks, o->n_chunks, e))
        return false;
    bson_t full = BSON_INITIALIZER;
    bool ok = false;
    *what = "storing the result";
    if (!s_trial_doc(m, c, id, o->doc, &full, e))
        goto cleanup;
    *what = "storing step hashes";
    if (!s_hashes_append(m, c, id, hashes, n_hashes, &full, e) ||
        !s_purity_put(m, c, id, hashes, n_hashes, e))
        goto cleanup;
    *what = "storing persisted values";
    if (!s_persist(m, c, id, o->persisted, o->n_persisted, &full, e))
        goto cleanup;
    if (full.len > XP_MONGO_DOC_MAX) {
        bson_set_error(e, MONGOC_ERROR_BSON, MONGOC_ERROR_BSON_INVALID,
                       "its record alone is %u bytes, over MongoDB's 16 MiB "
                       "document limit",
                       full.len);
        goto cleanup;
    }
    *what = "recording the trial";
    if (!s_storable(m, &full, e))
        goto cleanup;
    mongoc_collection_t *trials = s_coll(m, c, m->trials);
    bson_t sel = BSON_INITIALIZER, opts = BSON_INITIALIZER;
    BSON_APPEND_INT64(&sel, "_id", id);
    BSON_APPEND_BOOL(&opts, "upsert", true);
    BSON_APPEND_BOOL(&opts, "validate", false);
    ok = mongoc_collection_replace_one(trials, &sel, &full, &opts, NULL, e);
    bson_destroy(&sel);
    bson_destroy(&opts);
    mongoc_collection_destroy(trials);
cleanup:
    bson_destroy(&full);
    return ok;
}

static int s_trial_finish(xp_backend *b, const xp_trial_outcome *o,
                          xp_error_t *err)
{
    xp_mongo *m = (xp_mongo *)b;
    mongoc_client_t *c = s_pop(m);
    bson_error_t e;
    const char *what = "";
    bool ok = false;
    for (int attempt = 0; attempt < XP_MONGO_ATTEMPTS; attempt++) {
        ok = s_finish_once(m, c, o, &e, &what);
        if (ok || !s_is_network(&e))
            break;
    }
    s_push(m, c);
    if (!ok)
        return s_fail(m, err, &e, "%s %lld", what,
                      (long long)o->record->trial_id);
    return 0;
}

/* ---------------------------------------------------------------- reading */

static int s_trial_get(xp_backend *b, int64_t id, bson_t *out, xp_error_t *err)
{
    xp_mongo *m = (xp_mongo *)b;
    mongoc_client_t *c = s_pop(m);
    mongoc_collection_t *trials = s_coll(m, c, m->trials);
    bson_t filter = BSON_INITIALIZER, proj = BSON_INITIALIZER, opts, doc;
    BSON_APPEND_INT64(&filter, "_id", id);
    s_record_projection(&proj);
    s_one_opts(&opts, &proj, NULL);
    bool found = false;
    bson_error_t e;
    int rc = -1;
    if (!s_find_first(trials, &filter, &opts, &doc, &found, &e))
        s_fail(m, err, &e, "reading trial %lld", (long long)id);
    else if (!found)
        xp__error(err, XP_DOMAIN_BACKEND, XP_ENOTFOUND,
                  "trial %lld does not exist", (long long)id);
    else
        rc = s_record(m, c, &doc, out, err);
    if (found)
        bson_destroy(&doc);
    bson_destroy(&filter);
    bson_destroy(&proj);
    bson_destroy(&opts);
    mongoc_collection_destroy(trials);
    s_push(m, c);
    return rc;
}

/* Calls fn with every trial record matching filter, in id order (or as
 * page says: its sort, skip and limit); with damaged_ok, doc NULL for one
 * whose result in GridFS is damaged. */
static int s_trials_where(xp_backend *b, const bson_t *filter,
                          const bson_t *page, const char *what, bool damaged_ok,
                          xp_trial_fn fn, void *user, xp_error_t *err)
{
    xp_mongo *m = (xp_mongo *)b;
    mongoc_client_t *c = s_pop(m);
    mongoc_collection_t *trials = s_coll(m, c, m->trials);
    bson_t opts = BSON_INITIALIZER, sub;
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &sub);
    s_record_projection(&sub);
    bson_append_document_end(&opts, &sub);
    if (page) {
        bson_concat(&opts, page);
    } else {
        BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sub);
        BSON_APPEND_INT32(&sub, "_id", 1);
        bson_append_document_end(&opts, &sub);
    }
    int rc = 0;
    bson_error_t e;
    for (int attempt = 0; attempt < XP_MONGO_ATTEMPTS; attempt++) {
        mongoc_cursor_t *cur =
            mongoc_collection_find_with_opts(trials, filter, &opts, NULL);
        const bson_t *doc;
        size_t delivered = 0;
        while (rc == 0 && mongoc_cursor_next(cur, &doc)) {
            bson_t record;
            xp_error_t why;
            int64_t id = s_int_field(doc, "_id");
            if (s_record(m, c, doc, &record, &why) == 0 &&
                s_record_checked(&record, id, &why)) {
                rc = fn(&record, id, user) != 0 ? -1 : 0;
                bson_destroy(&record);
            } else if (damaged_ok && why.code == XP_ECORRUPT) {
                rc = fn(NULL, id, user) != 0 ? -1 : 0;
            } else {
                if (err)
                    *err = why;
                rc = -1;
            }
            delivered++;
        }
        bool failed = rc == 0 && mongoc_cursor_error(cur, &e);
        mongoc_cursor_destroy(cur);
        if (!failed)
            break;
        /* Retried only when nothing was handed to fn yet. */
        if (delivered || !s_is_network(&e) ||
            attempt + 1 == XP_MONGO_ATTEMPTS) {
            rc = s_fail(m, err, &e, "%s", what);
            break;
        }
    }
    bson_destroy(&opts);
    mongoc_collection_destroy(trials);
    s_push(m, c);
    return rc;
}

static int s_trials_each(xp_backend *b, xp_trial_fn fn, void *user,
                         xp_error_t *err)
{
    bson_t all = BSON_INITIALIZER;
    int rc = s_trials_where(b, &all, NULL, "reading the history", true, fn,
                            user, err);
    bson_destroy(&all);
    return rc;
}

/* A history query: the filter as a query document, counted by the
 * server, and the page found with its sort (trial id last), skip and
 * limit. */
static int s_trials_query(xp_backend *b, const xp_compiled_query *q,
                          xp_trial_fn fn, void *user, int64_t *matched,
                          xp_error_t *err)
{
    xp_mongo *m = (xp_mongo *)b;
    bson_t filter = BSON_INITIALIZER, page = BSON_INITIALIZER, sort;
    xp__filter_mongo(q->filter, &filter);
    BSON_APPEND_DOCUMENT_BEGIN(&page, "sort", &sort);
    xp__sort_mongo(q->sort, &sort);
    if (!bson_has_field(&sort, "_id"))
        BSON_APPEND_INT32(&sort, "_id", 1);
    bson_append_document_end(&page, &sort);
    if (q->offset > 0)
        BSON_APPEND_INT64(&page, "skip", q->offset);
    if (q->limit > 0)
        BSON_APPEND_INT64(&page, "limit", q->limit);
    mongoc_client_t *c = s_pop(m);
    mongoc_collection_t *trials = s_coll(m, c, m->trials);
    bson_error_t e;
    int64_t n = -1;
    for (int attempt = 0; n < 0 && attempt < XP_MONGO_ATTEMPTS; attempt++)
        if ((n = mongoc_collection_count_documents(trials, &filter, NULL, NULL,
                                                   NULL, &e)) < 0 &&
            !s_is_network(&e))
            break;
    mongoc_collection_destroy(trials);
    s_push(m, c);
    int rc = n < 0 ? s_fail(m, err, &e, "counting matching trials")
                   : s_trials_where(b, &filter, &page, "reading the history",
                                    true, fn, user, err);
    if (rc == 0)
        *matched = n;
    bson_destroy(&filter);
    bson_destroy(&page);
    return rc;
}

typedef struct {
    int (*fn)(const bson_t *doc, void *user);
    void *user;
} s_queued_call;

static int s_queued_one(const bson_t *doc, int64_t id, void *user)
{
    (void)id;
    s_queued_call *call = user;
    return call->fn(doc, call->user);
}

/* Trials a scheduler accepted and has not finished: queued, or running
 * on its workers (pid 0); on the status index. */
static int s_queued_trials(xp_backend *b,
                           int (*fn)(const bson_t *doc, void *user), void *user,
                           xp_error_t *err)
{
    /* A scheduler's trials (pid 0): queued, or running on its workers. */
    bson_t queued = BSON_INITIALIZER, or, a, b2;
    BSON_APPEND_ARRAY_BEGIN(&queued, "$or", & or);
    BSON_APPEND_DOCUMENT_BEGIN(& or, "0", &a);
    BSON_APPEND_UTF8(&a, XP_RECORD_STATUS, XP_STATUS_QUEUED_NAME);
    bson_append_document_end(& or, &a);
    BSON_APPEND_DOCUMENT_BEGIN(& or, "1", &b2);
    BSON_APPEND_UTF8(&b2, XP_RECORD_STATUS, XP_STATUS_RUNNING_NAME);
    BSON_APPEND_INT64(&b2, XP_RECORD_PID, 0);
    bson_append_document_end(& or, &b2);
    bson_append_array_end(&queued, & or);
    s_queued_call call = {fn, user};
    int rc = s_trials_where(b, &queued, NULL, "reading queued trials", false,
                            s_queued_one, &call, err);
    bson_destroy(&queued);
    return rc;
}

static int s_last_id(xp_backend *b, int64_t *id, xp_error_t *err)
{
    xp_mongo *m = (xp_mongo *)b;
    mongoc_client_t *c = s_pop(m);
    mongoc_collection_t *trials = s_coll(m, c, m->trials);
    bson_error_t e;
    int rc = s_max_id(trials, id, &e)
                 ? 0
                 : s_fail(m, err, &e, "reading the last trial id");
    mongoc_collection_destroy(trials);
    s_push(m, c);
    return rc;
}

static int s_persisted_read(xp_backend *b, const char *step, int64_t trial,
                            xp_value *out, xp_error_t *err)
{
    xp_mongo *m = (xp_mongo *)b;
    mongoc_client_t *c = s_pop(m);
    mongoc_collection_t *trials = s_coll(m, c, m->trials);
    bson_t filter = BSON_INITIALIZER, proj = BSON_INITIALIZER, opts, doc;
    char *inline_key = bson_strdup_printf("persisted.%s", step);
    char *ref_key = bson_strdup_printf("persisted_gridfs.%s", step);
    BSON_APPEND_INT64(&filter, "_id", trial);
    BSON_APPEND_INT32(&proj, inline_key, 1);
    BSON_APPEND_INT32(&proj, ref_key, 1);
    s_one_opts(&opts, &proj, NULL);
    bool found = false;
    bson_error_t e;
    int rc = -1;
    if (!s_find_first(trials, &filter, &opts, &doc, &found, &e)) {
        s_fail(m, err, &e,
               "reading persisted value of step '%s' in trial "
               "%lld",
               step, (long long)trial);
    } else {
        bson_iter_t it, sub;
        if (found && bson_iter_init(&it, &doc) &&
            bson_iter_find_descendant(&it, inline_key, &sub)) {
            rc = xp__value_from_iter(out, &sub, err);
        } else if (found && bson_iter_init(&it, &doc) &&
                   bson_iter_find_descendant(&it, ref_key, &sub) &&
                   BSON_ITER_HOLDS_DOCUMENT(&sub)) {
            uint32_t len;
            const uint8_t *data;
            bson_t ref;
            bson_iter_document(&sub, &len, &data);
            if (bson_init_static(&ref, data, len))
                rc = s_gridfs_value(m, c, &ref, out, err);
            else
                xp__error(err, XP_DOMAIN_BACKEND, XP_ECORRUPT,
                          "%s: reference to the persisted value of step "
                          "'%s' in trial %lld is damaged",
                          m->base.description, step, (long long)trial);
        } else {
            xp__error(err, XP_DOMAIN_BACKEND, XP_ENOTFOUND,
                      "no persisted value of step '%s' in trial %lld", step,
                      (long long)trial);
        }
    }
    if (found)
        bson_destroy(&doc);
    bson_free(inline_key);
    bson_free(ref_key);
    bson_destroy(&filter);
    bson_destroy(&proj);
    bson_destroy(&opts);
    mongoc_collection_destroy(trials);
    s_push(m, c);
    return rc;
}

static int s_running_trials(xp_backend *b, xp_running_trial **out, size_t *n,
                            xp_error_t *err)
{
    xp_mongo *m = (xp_mongo *)b;
    mongoc_client_t *c = s_pop(m);
    mongoc_collection_t *trials = s_coll(m, c, m->trials);
    bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, sub;
    BSON_APPEND_UTF8(&filter, XP_RECORD_STATUS, XP_STATUS_RUNNING_NAME);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &sub);
    BSON_APPEND_INT32(&sub, XP_RECORD_HOST, 1);
    BSON_APPEND_INT32(&sub, XP_RECORD_PID, 1);
    BSON_APPEND_INT32(&sub, XP_RECORD_PSTART, 1);
    bson_append_document_end(&opts, &sub);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sub);
    BSON_APPEND_INT32(&sub, "_id", 1);
    bson_append_document_end(&opts, &sub);
    xp_running_trial *list = NULL;
    size_t count = 0, cap = 0;
    int rc = -1;
    bson_error_t e;
    for (int attempt = 0; attempt < XP_MONGO_ATTEMPTS; attempt++) {
        mongoc_cursor_t *cur =
            mongoc_collection_find_with_opts(trials, &filter, &opts, NULL);
        const bson_t *doc;
        count = 0;
        while (mongoc_cursor_next(cur, &doc)) {
            if (count == cap) {
                cap = cap ? cap * 2 : 8;
                list = bson_realloc(list, cap * sizeof *list);
            }
            xp_running_trial *t = &list[count++];
            memset(t, 0, sizeof *t);
            xp_trial_record rec;
            t->trial_id = s_int_field(doc, "_id");
            if (xp__record_decode(doc, &rec, NULL) == 0) {
                if (rec.host)
                    bson_strncpy(t->host, rec.host, sizeof t->host);
                t->pid = rec.pid;
                t->pstart = (uint64_t)rec.pstart;
            }
        }
        bool failed = mongoc_cursor_error(cur, &e);
        mongoc_cursor_destroy(cur);
        if (!failed) {
            rc = 0;
            break;
        }
        if (!s_is_network(&e) || attempt + 1 == XP_MONGO_ATTEMPTS) {
            s_fail(m, err, &e, "reading running trials");
            break;
        }
    }
    bson_destroy(&filter);
    bson_destroy(&opts);
    mongoc_collection_destroy(trials);
    s_push(m, c);
    if (rc != 0) {
        bson_free(list);
        return -1;
    }
    *out = list;
    *n = count;
    return 0;
}

/* $set of one trial's fields while its status is still `from`; an
 * idempotent update, retried once on a lost connection. */
static int s_set_if_status(xp_mongo *m, int64_t id, const char *from,
                           const bson_t *set, const char *what, xp_error_t *err)
{
    mongoc_client_t *c = s_pop(m);
    mongoc_collection_t *trials = s_coll(m, c, m->trials);
    bson_t sel = BSON_INITIALIZER, update = BSON_INITIALIZER;
    BSON_APPEND_INT64(&sel, "_id", id);
    BSON_APPEND_UTF8(&sel, XP_RECORD_STATUS, from);
    BSON_APPEND_DOCUMENT(&update, "$set", set);
    bson_error_t e;
    bool ok = false;
    for (int attempt = 0; attempt < XP_MONGO_ATTEMPTS; attempt++) {
        ok =
            mongoc_collection_update_one(trials, &sel, &update, NULL, NULL, &e);
        if (ok || !s_is_network(&e))
            break;
    }
    bson_destroy(&sel);
    bson_destroy(&update);
    mongoc_collection_destroy(trials);
    s_push(m, c);
    return ok ? 0
              : s_fail(m, err, &e, "marking trial %lld %s", (long long)id,
                       what);
}

static int s_trial_running(xp_backend *b, const xp_trial_record *rec,
                           xp_error_t *err)
{
    /* Only the status changes. */
    bson_t set = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&set, XP_RECORD_STATUS, XP_STATUS_RUNNING_NAME);
    int rc =
        s_set_if_status((xp_mongo *)b, rec->trial_id, XP_STATUS_QUEUED_NAME,
                        &set, XP_STATUS_RUNNING_NAME, err);
    bson_destroy(&set);
    return rc;
}

static int s_trial_interrupt(xp_backend *b, int64_t id, int64_t finished_ms,
                             const char *description, xp_error_t *err)
{
    bson_t set = BSON_INITIALIZER;
    xp__record_append_interrupted(&set, finished_ms, description);
    int rc = s_set_if_status((xp_mongo *)b, id, XP_STATUS_RUNNING_NAME, &set,
                             XP_STATUS_INTERRUPTED_NAME, err);
    bson_destroy(&set);
    return rc;
}

/* Trials read, newest first, when the server cannot match one element of
 * step_hashes by two fields: the dotted-path filter also matches a trial
 * whose step and input are in different elements. */
#define XP_MONGO_HASH_SCAN 64

/* The output hash doc's step_hashes holds for step and input. */
static bool s_hash_in_doc(const bson_t *doc, const char *step,
                          const uint8_t input[16], uint8_t output[16])
{
    bson_iter_t it, arr, f;
    if (!bson_iter_init_find(&it, doc, "step_hashes") ||
        !BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &arr))
        return false;
    while (bson_iter_next(&arr)) {
        const uint8_t *in = NULL, *outp = NULL;
        const char *name = NULL;
        uint32_t len;
        if (!BSON_ITER_HOLDS_DOCUMENT(&arr) || !bson_iter_recurse(&arr, &f))
            continue;
        while (bson_iter_next(&f)) {
            const char *key = bson_iter_key(&f);
            if (strcmp(key, "step") == 0 && BSON_ITER_HOLDS_UTF8(&f)) {
                name = bson_iter_utf8(&f, NULL);
            } else if (BSON_ITER_HOLDS_BINARY(&f)) {
                const uint8_t *data;
                bson_iter_binary(&f, NULL, &len, &data);
                if (len == 16 && strcmp(key, "input") == 0)
                    in = data;
                else if (len == 16 && strcmp(key, "output") == 0)
                    outp = data;
            }
        }
        if (name && in && outp && strcmp(name, step) == 0 &&
            memcmp(in, input, 16) == 0) {
            memcpy(output, outp, 16);
            return true;
        }
    }
    return false;
}

/* True when the server refused the query's operator (FerretDB 1.24 knows
 * $elemMatch only over operators: "unknown operator: step", BadValue). */
static bool s_is_unknown_operator(const bson_error_t *e)
{
    return !s_is_network(e) && e->code == 2 &&
           strstr(e->message, "unknown operator") != NULL;
}

/* Appends to filter's $or array (at key index *k) the clause matching an
 * element of step_hashes with step and input: $elemMatch, or, when
 * elem_match is false, dotted paths (which may match two elements; the
 * caller checks each answer with s_hash_in_doc). */
static void s_hash_clause(bson_t *ors, uint32_t k, const xp_step_hash *h,
                          bool elem_match)
{
    char key[16];
    const char *ks;
    bson_t clause, elem, match;
    bson_uint32_to_string(k, &ks, key, sizeof key);
    BSON_APPEND_DOCUMENT_BEGIN(ors, ks, &clause);
    if (elem_match) {
        BSON_APPEND_DOCUMENT_BEGIN(&clause, "step_hashes", &elem);
        BSON_APPEND_DOCUMENT_BEGIN(&elem, "$elemMatch", &match);
        BSON_APPEND_UTF8(&match, "step", h->step);
        BSON_APPEND_BINARY(&match, "input", BSON_SUBTYPE_BINARY, h->input, 16);
        bson_append_document_end(&elem, &match);
        bson_append_document_end(&clause, &elem);
    } else {
        BSON_APPEND_UTF8(&clause, "step_hashes.step", h->step);
        BSON_APPEND_BINARY(&clause, "step_hashes.input", BSON_SUBTYPE_BINARY,
                           h->input, 16);
    }
    bson_append_document_end(ors, &clause);
}

/* One find over the newest trials that ran any of the hashes still
 * !found, newest first, limited to XP_MONGO_HASH_SCAN documents: each
 * lookup takes the first (newest) answer holding it. *complete is true
 * when fewer documents than the limit came back: then every lookup still
 * unanswered has no answer at all. */
static bool s_hashes_find(mongoc_collection_t *trials, const xp_step_hash *h,
                          size_t n, bool elem_match, uint8_t (*previous)[16],
                          bool *found, bool *complete, bson_error_t *e)
{
    bson_t filter = BSON_INITIALIZER, ors, opts = BSON_INITIALIZER;
    bson_t proj, sort;
    uint32_t clauses = 0;
    BSON_APPEND_ARRAY_BEGIN(&filter, "$or", &ors);
    for (size_t i = 0; i < n; i++)
        if (!found[i])
            s_hash_clause(&ors, clauses++, &h[i], elem_match);
    bson_append_array_end(&filter, &ors);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
    BSON_APPEND_INT32(&proj, "_id", 0);
    BSON_APPEND_INT32(&proj, "step_hashes", 1);
    bson_append_document_end(&opts, &proj);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
    BSON_APPEND_INT32(&sort, "_id", -1);
    bson_append_document_end(&opts, &sort);
    BSON_APPEND_INT64(&opts, "limit", XP_MONGO_HASH_SCAN);
    BSON_APPEND_BOOL(&opts, "singleBatch", true);
    bool ok = false;
    bool *now = bson_malloc0(n * sizeof *now);
    for (int attempt = 0; attempt < XP_MONGO_ATTEMPTS; attempt++) {
        mongoc_cursor_t *cur =
            mongoc_collection_find_with_opts(trials, &filter, &opts, NULL);
        const bson_t *doc;
        size_t docs = 0;
        memset(now, 0, n * sizeof *now);
        while (mongoc_cursor_next(cur, &doc)) {
            docs++;
            for (size_t i = 0; i < n; i++)
                if (!found[i] && !now[i])
                    now[i] =
                        s_hash_in_doc(doc, h[i].step, h[i].input, previous[i]);
        }
        ok = !mongoc_cursor_error(cur, e);
        mongoc_cursor_destroy(cur);
        *complete = ok && docs < XP_MONGO_HASH_SCAN;
        if (ok || !s_is_network(e))
            break;
    }
    for (size_t i = 0; ok && i < n; i++)
        found[i] = found[i] || now[i];
    bson_free(now);
    bson_destroy(&filter);
    bson_destroy(&opts);
    return ok;
}

/* The latest output hash of each (step, input) of h, from the trials'
 * step_hashes (indexed by step, input, _id): one find for all of them,
 * and another only for those its XP_MONGO_HASH_SCAN newest answers did
 * not hold (each find answers at least one more, or none is left). */
static int s_step_hashes_get(xp_backend *b, const xp_step_hash *h, size_t n,
                             uint8_t (*previous)[16], bool *found,
                             xp_error_t *err)
{
    xp_mongo *m = (xp_mongo *)b;
    memset(found, 0, n * sizeof *found);
    if (n == 0)
        return 0;
    if (m->ferretdb)
        return s_purity_get(m, h, n, previous, found, err);
    mongoc_client_t *c = s_pop(m);
    mongoc_collection_t *trials = s_coll(m, c, m->trials);
    bson_error_t e;
    bool ok = true, complete = false;
    size_t left = n;
    while (ok && left > 0 && !complete) {
        bool elem_match = !atomic_load(&m->no_elem_match);
        ok = s_hashes_find(trials, h, n, elem_match, previous, found, &complete,
                           &e);
        if (!ok && elem_match && s_is_unknown_operator(&e)) {
            xp__log(XP_LOG_DEBUG,
                    "%s refuses $elemMatch over fields (%s): step hashes "
                    "are looked up by dotted paths",
                    m->base.description, e.message);
            atomic_store(&m->no_elem_match, true);
            ok = true;
            continue;
        }
        size_t still = 0;
        for (size_t i = 0; i < n; i++)
            still += !found[i];
        if (ok && still == left && !complete)
            break; /* cannot happen: a returned document answers one */
        left = still;
    }
    int rc = ok ? 0 : s_fail(m, err, &e, "reading step hashes");
    mongoc_collection_destroy(trials);
    s_push(m, c);
    return rc;
}

static int s_step_hash_get(xp_backend *b, const char *step,
                           const uint8_t input[16], uint8_t output[16],
                           bool *found, xp_error_t *err)
{
    xp_step_hash h = {.step = step};
    uint8_t previous[1][16];
    memcpy(h.input, input, 16);
    if (s_step_hashes_get(b, &h, 1, previous, found, err) != 0)
        return -1;
    if (*found)
        memcpy(output, previous[0], 16);
    return 0;
}

/* ---------------------------------------------------------------- contents */

/* Small renderings are kept next to the document for analysts. */
#define XP_MONGO_TEXT_MAX (4 * 1024 * 1024)

static int s_content_put(xp_backend *b, const char *kind, const char *hash,
                         const bson_t *doc, const char *text, xp_error_t *err)
{
    xp_mongo *m = (xp_mongo *)b;
    mongoc_client_t *c = s_pop(m);
    mongoc_collection_t *contents = s_coll(m, c, m->contents);
    bson_t full = BSON_INITIALIZER, opts = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&full, "_id", hash);
    BSON_APPEND_UTF8(&full, "kind", kind);
    BSON_APPEND_DOCUMENT(&full, "doc", doc);
    if (text && strlen(text) < XP_MONGO_TEXT_MAX &&
        bson_utf8_validate(text, strlen(text), false))
        BSON_APPEND_UTF8(&full, "text", text);
    BSON_APPEND_BOOL(&opts, "validate", false);
    bson_error_t e;
    bool ok = false;
    for (int attempt = 0; attempt < XP_MONGO_ATTEMPTS; attempt++) {
        ok = mongoc_collection_insert_one(contents, &full, &opts, NULL, &e);
        if (!ok && s_is_duplicate(&e))
            ok = true; /* stored once, by whoever came first */
        if (ok || !s_is_network(&e))
            break;
    }
    bson_destroy(&full);
    bson_destroy(&opts);
    mongoc_collection_destroy(contents);
    s_push(m, c);
    return ok ? 0 : s_fail(m, err, &e, "storing %s %s", kind, hash);
}

static int s_content_get(xp_backend *b, const char *hash, bson_t *out,
                         xp_error_t *err)
{
    xp_mongo *m = (xp_mongo *)b;
    mongoc_client_t *c = s_pop(m);
    mongoc_collection_t *contents = s_coll(m, c, m->contents);
    bson_t filter = BSON_INITIALIZER, proj = BSON_INITIALIZER, opts, doc;
    BSON_APPEND_UTF8(&filter, "_id", hash);
    BSON_APPEND_INT32(&proj, "doc", 1);
    s_one_opts(&opts, &proj, NULL);
    bool found = false;
    bson_error_t e;
    int rc = -1;
    bson_iter_t it;
    if (!s_find_first(contents, &filter, &opts, &doc, &found, &e)) {
        s_fail(m, err, &e, "reading content %s", hash);
    } else if (!found) {
        xp__error(err, XP_DOMAIN_BACKEND, XP_ENOTFOUND,
                  "no stored content with hash %s", hash);
    } else if (bson_iter_init_find(&it, &doc, "doc") &&
               BSON_ITER_HOLDS_DOCUMENT(&it)) {
        uint32_t len;
        const uint8_t *data;
        bson_t sub;
        bson_iter_document(&it, &len, &data);
        if (bson_init_static(&sub, data, len)) {
            bson_copy_to(&sub, out);
            rc = 0;
        }
    }
    if (rc != 0 && found)
        xp__error(err, XP_DOMAIN_BACKEND, XP_ECORRUPT,
                  "%s: stored content %s is damaged", m->base.description,
                  hash);
    if (found)
        bson_destroy(&doc);
    bson_destroy(&filter);
    bson_destroy(&proj);
    bson_destroy(&opts);
    mongoc_collection_destroy(contents);
    s_push(m, c);
    return rc;
}

/* ---------------------------------------------------------------- open */

/* ---------------------------------------------------------------- memo */

/* Memo entries: documents of <id>.memo, {_id: key as 32 hex digits,
 * trial, output: 16 bytes}. */
static bool s_memo_doc(const bson_t *doc, xp_memo_entry *e)
{
    bson_iter_t it;
    bool has_trial = false, has_output = false;
    if (!bson_iter_init(&it, doc))
        return false;
    while (bson_iter_next(&it)) {
        const char *key = bson_iter_key(&it);
        if (strcmp(key, "trial") == 0 && BSON_ITER_HOLDS_INT64(&it)) {
            e->trial = bson_iter_int64(&it);
            has_trial = e->trial >= 0;
        } else if (strcmp(key, "output") == 0 && BSON_ITER_HOLDS_BINARY(&it)) {
            const uint8_t *data;
            uint32_t len = 0;
            bson_iter_binary(&it, NULL, &len, &data);
            if (len == 16)
                memcpy(e->output, data, 16);
            has_output = len == 16;
        }
    }
    return has_trial && has_output;
}

/* The key of an _id of 32 hex digits. */
static bool s_memo_key(const bson_t *doc, uint8_t key[16])
{
    bson_iter_t it;
    uint32_t len = 0;
    if (!bson_iter_init_find(&it, doc, "_id") || !BSON_ITER_HOLDS_UTF8(&it))
        return false;
    const char *hex = bson_iter_utf8(&it, &len);
    if (len != 32)
        return false;
    for (int i = 0; i < 16; i++) {
        unsigned v = 0;
        for (int k = 0; k < 2; k++) {
            char ch = hex[2 * i + k];
            int d = ch >= '0' && ch <= '9'   ? ch - '0'
                    : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                                             : -1;
            if (d < 0)
                return false;
            v = v * 16 + (unsigned)d;
        }
        key[i] = (uint8_t)v;
    }
    return true;
}

static int s_memo_get(xp_backend *b, xp_memo_entry *e, size_t n, bool *found,
                      xp_error_t *err)
{
    xp_mongo *m = (xp_mongo *)b;
    mongoc_client_t *c = s_pop(m);
    mongoc_collection_t *coll = s_coll(m, c, m->memo);
    char hex[33], buf[16];
    bson_t filter = BSON_INITIALIZER, id, in;
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "_id", &id);
    BSON_APPEND_ARRAY_BEGIN(&id, "$in", &in);
    for (size_t i = 0; i < n; i++) {
        const char *k;
        bson_uint32_to_string((uint32_t)i, &k, buf, sizeof buf);
        xp__hex(e[i].key, 16, hex);
        BSON_APPEND_UTF8(&in, k, hex);
    }
    bson_append_array_end(&id, &in);
    bson_append_document_end(&filter, &id);
    mongoc_cursor_t *cur =
        mongoc_collection_find_with_opts(coll, &filter, NULL, NULL);
    const bson_t *doc;
    while (mongoc_cursor_next(cur, &doc)) {
        uint8_t key[16];
        if (!s_memo_key(doc, key))
            continue;
        for (size_t i = 0; i < n; i++)
            if (!found[i] && memcmp(key, e[i].key, 16) == 0)
                found[i] = s_memo_doc(doc, &e[i]);
    }
    bson_error_t be;
    int rc = mongoc_cursor_error(cur, &be)
                 ? s_fail(m, err, &be, "reading memo entries")
                 : 0;
    mongoc_cursor_destroy(cur);
    bson_destroy(&filter);
    mongoc_collection_destroy(coll);
    s_push(m, c);
    return rc;
}

static void s_fill_memo(size_t i, bson_t *sel, bson_t *doc, const void *user)
{
    const xp_memo_entry *e = user;
    char hex[33];
    xp__hex(e[i].key, 16, hex);
    BSON_APPEND_UTF8(sel, "_id", hex);
    BSON_APPEND_INT64(doc, "trial", e[i].trial);
    BSON_APPEND_BINARY(doc, "output", BSON_SUBTYPE_BINARY, e[i].output, 16);
}

static int s_memo_put(xp_backend *b, const xp_memo_entry *e, size_t n,
                      xp_error_t *err)
{
    xp_mongo *m = (xp_mongo *)b;
    mongoc_client_t *c = s_pop(m);
    bson_error_t be;
    int rc = s_bulk_upsert(m, c, m->memo, n, s_fill_memo, e, &be)
                 ? 0
                 : s_fail(m, err, &be, "storing memo entries");
    s_push(m, c);
    return rc;
}

static int s_memo_each(xp_backend *b,
                       int (*fn)(const xp_memo_entry *e, void *user),
                       void *user, xp_error_t *err)
{
    xp_mongo *m = (xp_mongo *)b;
    mongoc_client_t *c = s_pop(m);
    mongoc_collection_t *coll = s_coll(m, c, m->memo);
    bson_t filter = BSON_INITIALIZER;
    mongoc_cursor_t *cur =
        mongoc_collection_find_with_opts(coll, &filter, NULL, NULL);
    xp_memo_entry *all = NULL;
    size_t n = 0, cap = 0;
    const bson_t *doc;
    while (mongoc_cursor_next(cur, &doc)) {
        xp_memo_entry e;
        if (!s_memo_key(doc, e.key) || !s_memo_doc(doc, &e))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            all = bson_realloc(all, cap * sizeof *all);
        }
        all[n++] = e;
    }
    bson_error_t be;
    int rc = mongoc_cursor_error(cur, &be)
                 ? s_fail(m, err, &be, "listing memo entries")
                 : 0;
    mongoc_cursor_destroy(cur);
    bson_destroy(&filter);
    mongoc_collection_destroy(coll);
    s_push(m, c);
    /* After the client is back: fn may call back into the backend. */
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (fn(&all[i], user) != 0)
            break;
    bson_free(all);
    return rc;
}

static int s_memo_delete(xp_backend *b, const uint8_t (*keys)[16], size_t n,
                         xp_error_t *err)
{
    xp_mongo *m = (xp_mongo *)b;
    mongoc_client_t *c = s_pop(m);
    mongoc_collection_t *coll = s_coll(m, c, m->memo);
    bson_t sel = BSON_INITIALIZER, id, in;
    char buf[16], hex[33];
    BSON_APPEND_DOCUMENT_BEGIN(&sel, "_id", &id);
    BSON_APPEND_ARRAY_BEGIN(&id, "$in", &in);
    for (size_t i = 0; i < n; i++) {
        const char *k;
        bson_uint32_to_string((uint32_t)i, &k, buf, sizeof buf);
        xp__hex(keys[i], 16, hex);
        BSON_APPEND_UTF8(&in, k, hex);
    }
    bson_append_array_end(&id, &in);
    bson_append_document_end(&sel, &id);
    bson_error_t be;
    int rc = mongoc_collection_delete_many(coll, &sel, NULL, NULL, &be)
                 ? 0
                 : s_fail(m, err, &be, "removing memo entries");
    bson_destroy(&sel);
    mongoc_collection_destroy(coll);
    s_push(m, c);
    return rc;
}

/* The GridFS files persisted values of a trial document refer to are
 * removed first, then the references and inline values: a value is
 * never referred to without its file. */
static int s_persisted_drop(xp_backend *b, int64_t trial, xp_error_t *err)
{
    xp_mongo *m = (xp_mongo *)b;
    mongoc_client_t *c = s_pop(m);
    mongoc_collection_t *trials = s_coll(m, c, m->trials);
    bson_t filter = BSON_INITIALIZER, proj = BSON_INITIALIZER, opts, doc;
    BSON_APPEND_INT64(&filter, "_id", trial);
    BSON_APPEND_INT32(&proj, "persisted_gridfs", 1);
    s_one_opts(&opts, &proj, NULL);
    bool found = false, ok;
    bson_error_t be;
    ok = s_find_first(trials, &filter, &opts, &doc, &found, &be);
    bson_iter_t it, refs, f;
    if (ok && found) {
        if (bson_iter_init_find(&it, &doc, "persisted_gridfs") &&
            BSON_ITER_HOLDS_DOCUMENT(&it) && bson_iter_recurse(&it, &refs))
            while (ok && bson_iter_next(&refs))
                if (BSON_ITER_HOLDS_DOCUMENT(&refs) &&
                    bson_iter_recurse(&refs, &f) &&
                    bson_iter_find(&f, "file") && BSON_ITER_HOLDS_UTF8(&f))
                    ok = s_gridfs_remove(m, c, bson_iter_utf8(&f, NULL), &be);
        bson_destroy(&doc);
    }
    if (ok && found) {
        bson_t update = BSON_INITIALIZER, unset;
        BSON_APPEND_DOCUMENT_BEGIN(&update, "$unset", &unset);
        BSON_APPEND_UTF8(&unset, "persisted", "");
        BSON_APPEND_UTF8(&unset, "persisted_gridfs", "");
        bson_append_document_end(&update, &unset);
        ok = mongoc_collection_update_one(trials, &filter, &update, NULL, NULL,
                                          &be);
        bson_destroy(&update);
    }
    int rc = ok ? 0 : s_fail(m, err, &be, "removing persisted values");
    bson_destroy(&filter);
    bson_destroy(&proj);
    bson_destroy(&opts);
    mongoc_collection_destroy(trials);
    s_push(m, c);
    return rc;
}

static void s_close(xp_backend *b)
{
    xp_mongo *m = (xp_mongo *)b;
    if (m->pool)
        mongoc_client_pool_destroy(m->pool);
    mongoc_uri_destroy(m->uri);
    bson_free(m->id);
    bson_free(m->db);
    bson_free(m->trials);
    bson_free(m->metrics);
    bson_free(m->contents);
    bson_free(m->memo);
    bson_free(m->bucket);
    bson_free(m->purity);
    bson_free(m->secret);
    bson_free(m->secret_decoded);
    bson_free(m);
}

static const xp_backend_ops s_ops = {
    .name = "mongodb",
    .trial_begin = s_trial_begin,
    .trial_finish = s_trial_finish,
    .metric_flush = s_metric_flush,
    .trial_get = s_trial_get,
    .trials_each = s_trials_each,
    .trials_query = s_trials_query,
    .queued_trials = s_queued_trials,
    .trial_running = s_trial_running,
    .last_id = s_last_id,
    .metric_read = s_metric_read,
    .metric_names = s_metric_names,
    .persisted_read = s_persisted_read,
    .running_trials = s_running_trials,
    .trial_interrupt = s_trial_interrupt,
    .step_hash_get = s_step_hash_get,
    .step_hashes_get = s_step_hashes_get,
    .content_put = s_content_put,
    .content_get = s_content_get,
    .memo_get = s_memo_get,
    .memo_put = s_memo_put,
    .memo_each = s_memo_each,
    .memo_delete = s_memo_delete,
    .persisted_drop = s_persisted_drop,
    .close = s_close,
};

/* The password as written in uri (between "user:" and "@"), or NULL.
 * Caller frees. */
static char *s_uri_secret(const char *uri)
{
    size_t len;
    const char *pw = xp__uri_password(uri, &len);
    return pw && len ? bson_strndup(pw, len) : NULL;
}

/* xp__uri_mask plus the URI options that carry secrets. Caller frees. */
static char *s_describe(const char *uri)
{
    static const char *const secret_options[] = {
        "tlscertificatekeyfilepassword=", "sslclientcertificatekeypassword=",
        "authmechanismproperties="};
    char *masked = xp__uri_mask(uri);
    char *query = strchr(masked, '?');
    if (!query)
        return masked;
    bson_string_t *s = bson_string_new(NULL);
    bson_string_append_printf(s, "%.*s", (int)(query - masked), masked);
    char *opt = query;
    while (*opt) {
        size_t len = strcspn(opt + 1, "&;") + 1; /* separator + option */
        bool secret = false;
        for (size_t i = 0; i < sizeof secret_options / sizeof *secret_options;
             i++)
            if (strncasecmp(opt + 1, secret_options[i],
                            strlen(secret_options[i])) == 0)
                secret = true;
        if (secret) {
            const char *eq = memchr(opt, '=', len);
            bson_string_append_printf(s, "%.*s***", (int)(eq + 1 - opt), opt);
        } else {
            bson_string_append_printf(s, "%.*s", (int)len, opt);
        }
        opt += len;
    }
    bson_free(masked);
    return bson_string_free(s, false);
}

static int s_check_database(const char *db, const char *shown, xp_error_t *err)
{
    if (!db || !*db)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "MongoDB URI '%s' names no database (expected "
                         "mongodb://host[:port]/DATABASE)",
                         shown);
    if (strlen(db) >= 64 || strpbrk(db, "/\\. \"$*<>:|?"))
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "MongoDB URI '%s' names an invalid database (at "
                         "most 63 characters, none of /\\. \"$*<>:|?)",
                         shown);
    return 0;
}

/* createIndexes of the one index idx on coll. One index a command:
 * FerretDB 1.24 drops the connection when a createIndexes of two or more
 * indexes finds them all existing (docs/schema.md, Compatibility). */
static bool s_create_index(mongoc_database_t *db, const char *coll,
                           const bson_t *idx, bson_error_t *e)
{
    bson_t cmd = BSON_INITIALIZER, arr;
    BSON_APPEND_UTF8(&cmd, "createIndexes", coll);
    BSON_APPEND_ARRAY_BEGIN(&cmd, "indexes", &arr);
    BSON_APPEND_DOCUMENT(&arr, "0", idx);
    bson_append_array_end(&cmd, &arr);
    bool ok = mongoc_database_write_command_with_opts(db, &cmd, NULL, NULL, e);
    bson_destroy(&cmd);
    return ok;
}

/* Creates the indexes every writer relies on; a no-op when they exist. */
static bool s_create_indexes(const xp_mongo *m, mongoc_client_t *c,
                             bson_error_t *e)
{
    mongoc_database_t *db = mongoc_client_get_database(c, m->db);
    bson_t idx = BSON_INITIALIZER, key;
    BSON_APPEND_DOCUMENT_BEGIN(&idx, "key", &key);
    BSON_APPEND_INT32(&key, XP_RECORD_STATUS, 1);
    bson_append_document_end(&idx, &key);
    BSON_APPEND_UTF8(&idx, "name", XP_RECORD_STATUS);
    bool ok = s_create_index(db, m->trials, &idx, e);
    bson_reinit(&idx);
    BSON_APPEND_DOCUMENT_BEGIN(&idx, "key", &key);
    BSON_APPEND_INT32(&key, "step_hashes.step", 1);
    BSON_APPEND_INT32(&key, "step_hashes.input", 1);
    BSON_APPEND_INT32(&key, "_id", -1);
    bson_append_document_end(&idx, &key);
    BSON_APPEND_UTF8(&idx, "name", "step_hashes");
    ok = ok && s_create_index(db, m->trials, &idx, e);
    bson_reinit(&idx);
    BSON_APPEND_DOCUMENT_BEGIN(&idx, "key", &key);
    BSON_APPEND_INT32(&key, "trial", 1);
    BSON_APPEND_INT32(&key, "name", 1);
    BSON_APPEND_INT32(&key, "chunk", 1);
    bson_append_document_end(&idx, &key);
    BSON_APPEND_UTF8(&idx, "name", "trial_name_chunk");
    BSON_APPEND_BOOL(&idx, "unique", true);
    ok = ok && s_create_index(db, m->metrics, &idx, e);
    bson_destroy(&idx);
    mongoc_database_destroy(db);
    return ok;
}

/* Asks buildInfo, which every MongoDB answers (a refusal still proves the
 * server reachable): FerretDB names its version there. */
static bool s_server_info(xp_mongo *m, mongoc_client_t *c, bson_error_t *e)
{
    bson_t cmd = BSON_INITIALIZER, reply;
    BSON_APPEND_INT32(&cmd, "buildInfo", 1);
    bool ok = mongoc_client_command_simple(c, "admin", &cmd, NULL, &reply, e);
    bson_iter_t it;
    if (ok)
        m->ferretdb = bson_iter_init_find(&it, &reply, "ferretdbVersion");
    else
        ok = e->domain == MONGOC_ERROR_SERVER;
    bson_destroy(&reply);
    bson_destroy(&cmd);
    return ok;
}

/* 1 when the experiment has a counter or a trial, 0 when not. */
static int s_exists(const xp_mongo *m, mongoc_client_t *c, bson_error_t *e)
{
    mongoc_collection_t *counters = s_coll(m, c, XP_MONGO_COUNTERS);
    mongoc_collection_t *trials = s_coll(m, c, m->trials);
    bson_t filter = BSON_INITIALIZER, opts, doc;
    BSON_APPEND_UTF8(&filter, "_id", m->id);
    s_one_opts(&opts, NULL, NULL);
    bool found = false;
    int rc = -1;
    int64_t last = 0;
    if (s_find_first(counters, &filter, &opts, &doc, &found, e)) {
        if (found) {
            bson_destroy(&doc);
            rc = 1;
        } else if (s_max_id(trials, &last, e)) {
            rc = last > 0;
        }
    }
    bson_destroy(&filter);
    bson_destroy(&opts);
    mongoc_collection_destroy(counters);
    mongoc_collection_destroy(trials);
    return rc;
}

/* Creates the experiment's counter (seq 0) unless it exists. */
static bool s_create_counter(const xp_mongo *m, mongoc_client_t *c,
                             bson_error_t *e)
{
    mongoc_collection_t *counters = s_coll(m, c, XP_MONGO_COUNTERS);
    bson_t sel = BSON_INITIALIZER, update = BSON_INITIALIZER, set;
    bson_t opts = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&sel, "_id", m->id);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "$setOnInsert", &set);
    BSON_APPEND_INT64(&set, "seq", 0);
    bson_append_document_end(&update, &set);
    BSON_APPEND_BOOL(&opts, "upsert", true);
    bool ok =
        mongoc_collection_update_one(counters, &sel, &update, &opts, NULL, e);
    if (!ok && s_is_duplicate(e)) /* another process created it */
        ok = true;
    bson_destroy(&sel);
    bson_destroy(&update);
    bson_destroy(&opts);
    mongoc_collection_destroy(counters);
    return ok;
}

int xp__backend_mongo_experiments(const char *uri,
                                  int (*fn)(const char *id, void *user),
                                  void *user, xp_error_t *err)
{
    pthread_once(&s_once, s_init);
    char *shown = s_describe(uri);
    bson_error_t e;
    int rc = -1;
    mongoc_client_t *c = NULL;
    mongoc_collection_t *counters = NULL;
    mongoc_uri_t *u = mongoc_uri_new_with_error(uri, &e);
    if (!u) {
        xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                  "invalid MongoDB URI '%s'", shown);
        goto done;
    }
    if (s_check_database(mongoc_uri_get_database(u), shown, err) != 0)
        goto done;
    c = mongoc_client_new_from_uri_with_error(u, &e);
    if (!c) {
        xp__error(err, XP_DOMAIN_BACKEND, XP_EIO, "%s: %s", shown, e.message);
        goto done;
    }
    mongoc_client_set_error_api(c, MONGOC_ERROR_API_VERSION_2);
    /* Every experiment has its id counter in xp.counters. */
    counters = mongoc_client_get_collection(c, mongoc_uri_get_database(u),
                                            XP_MONGO_COUNTERS);
    bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, sub;
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &sub);
    BSON_APPEND_INT32(&sub, "_id", 1);
    bson_append_document_end(&opts, &sub);
    mongoc_cursor_t *cur =
        mongoc_collection_find_with_opts(counters, &filter, &opts, NULL);
    const bson_t *doc;
    rc = 0;
    while (rc == 0 && mongoc_cursor_next(cur, &doc)) {
        bson_iter_t it;
        if (bson_iter_init_find(&it, doc, "_id") && BSON_ITER_HOLDS_UTF8(&it) &&
            xp_check_id(bson_iter_utf8(&it, NULL), NULL) == 0)
            rc = fn(bson_iter_utf8(&it, NULL), user);
    }
    if (rc == 0 && mongoc_cursor_error(cur, &e)) {
        char msg[sizeof e.message];
        bson_strncpy(msg, e.message, sizeof msg);
        rc = xp__error(err, XP_DOMAIN_BACKEND, XP_EIO,
                       "%s: listing experiments: %s", shown, msg);
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(&filter);
    bson_destroy(&opts);
done:
    mongoc_collection_destroy(counters);
    mongoc_client_destroy(c);
    mongoc_uri_destroy(u);
    bson_free(shown);
    return rc;
}

int xp__backend_mongo_open(xp_backend **out, const char *id, const char *uri,
                           const char *cache_dir, bool must_exist,
                           xp_error_t *err)
{
    *out = NULL;
    /* Names become collection names: checked before anything runs. */
    if (xp_check_id(id, err) != 0)
        return -1;
    if (strcmp(id, "system") == 0)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "experiment id 'system' cannot be stored in "
                         "MongoDB (collection names 'system.*' are "
                         "reserved)");
    pthread_once(&s_once, s_init);

    xp_mongo *m = bson_malloc0(sizeof *m);
    atomic_init(&m->no_elem_match, false);
    atomic_init(&m->next_id, 0);
    m->base.ops = &s_ops;
    m->base.description = s_describe(uri);
    m->base.dir = bson_strdup(cache_dir);
    m->id = bson_strdup(id);
    m->secret = s_uri_secret(uri);
    bson_error_t e;
    mongoc_client_t *c = NULL;
    pthread_mutex_lock(&s_uri_lock);
    s_uri_notes = bson_string_new(NULL);
    s_uri_thread = pthread_self();
    atomic_store(&s_uri_parsing, true);
    m->uri = mongoc_uri_new_with_error(uri, &e);
    atomic_store(&s_uri_parsing, false);
    char *notes = bson_string_free(s_uri_notes, false);
    s_uri_notes = NULL;
    pthread_mutex_unlock(&s_uri_lock);
    s_scrub(notes, m->secret);
    if (!m->uri) {
        char msg[sizeof e.message];
        bson_strncpy(msg, e.message, sizeof msg);
        s_scrub(msg, m->secret);
        xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                  "invalid MongoDB URI '%s': %s%s%s%s", m->base.description,
                  msg, *notes ? " (" : "", notes, *notes ? ")" : "");
        bson_free(notes);
        goto fail;
    }
    if (*notes)
        xp__log(XP_LOG_WARNING, "MongoDB URI '%s': %s", m->base.description,
                notes);
    bson_free(notes);
    if (mongoc_uri_get_password(m->uri))
        m->secret_decoded = bson_strdup(mongoc_uri_get_password(m->uri));
    if (s_check_database(mongoc_uri_get_database(m->uri), m->base.description,
                         err) != 0)
        goto fail;
    m->db = bson_strdup(mongoc_uri_get_database(m->uri));
    m->trials = bson_strdup_printf("%s.trials", id);
    m->metrics = bson_strdup_printf("%s.metrics", id);
    m->contents = bson_strdup_printf("%s.contents", id);
    m->bucket = bson_strdup_printf("%s.fs", id);
    m->purity = bson_strdup_printf("%s.step_hashes", id);
    m->memo = bson_strdup_printf("%s.memo", id);
    if (!mongoc_uri_get_appname(m->uri))
        mongoc_uri_set_appname(m->uri, "xp");

    m->pool = mongoc_client_pool_new_with_error(m->uri, &e);
    if (!m->pool) {
        s_fail(m, err, &e, "connecting");
        goto fail;
    }
    mongoc_client_pool_set_error_api(m->pool, MONGOC_ERROR_API_VERSION_2);
    pthread_mutex_lock(&s_apm_lock);
    if (s_apm_enabled) {
        mongoc_apm_callbacks_t *cbs = mongoc_apm_callbacks_new();
        mongoc_apm_set_command_started_cb(cbs, s_apm_started);
        mongoc_client_pool_set_apm_callbacks(m->pool, cbs, NULL);
        mongoc_apm_callbacks_destroy(cbs);
    }
    pthread_mutex_unlock(&s_apm_lock);

    /* An unreachable server fails here, within serverSelectionTimeoutMS. */
    c = s_pop(m);
    if (!s_server_info(m, c, &e)) {
        s_fail(m, err, &e, "cannot connect");
        goto fail;
    }
    if (must_exist) {
        int exists = s_exists(m, c, &e);
        if (exists < 0) {
            s_fail(m, err, &e, "looking up experiment '%s'", id);
            goto fail;
        }
        if (!exists) {
            xp__error(err, XP_DOMAIN_ARGUMENT, XP_ENOTFOUND,
                      "experiment '%s' not found in %s", id,
                      m->base.description);
            goto fail;
        }
    } else if (!s_create_counter(m, c, &e) || !s_create_indexes(m, c, &e)) {
        s_fail(m, err, &e, "preparing experiment '%s'", id);
        goto fail;
    }
    s_push(m, c);
    *out = &m->base;
    return 0;
fail:
    if (c)
        s_push(m, c);
    bson_free(m->base.description);
    bson_free(m->base.dir);
    s_close(&m->base);
    return -1;
}
