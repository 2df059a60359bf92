/* backend_local.c — the embedded default backend: one SQLite database in
 * WAL mode per experiment, at <root>/<id>/xp.sqlite3. Two short
 * transactions per trial (begin, finish) keep the per-trial cost flat
 * whatever the history length; BEGIN IMMEDIATE plus a busy timeout makes
 * trial-id allocation atomic across threads and processes. */
#include "query/projection.h"
#include "store/driver.h"
#include "util/bson_util.h"
#include "util/error.h"
#include "util/log.h"
#include "util/sys.h"
#include "value.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#define XP_LOCAL_FORMAT "xp-local"
#define XP_LOCAL_SCHEMA "1"
#define XP_LOCAL_FILE "xp.sqlite3"
#define XP_BUSY_TIMEOUT_MS 60000
/* The page cache of a read-only handle, at most (KiB). */
#define XP_LOCAL_READER_CACHE_KIB "262144"
/* ... while it reads the whole history, which reads each page once: the
 * 60 MB of 100,000 records would otherwise all be new memory, which the
 * kernel faults in page by page (~20 ms of the ~100 here). */
#define XP_LOCAL_STREAM_CACHE_KIB "8192"

enum {
    S_BEGIN,
    S_BEGIN_READ,
    S_COMMIT,
    S_ROLLBACK,
    S_SAVEPOINT,
    S_RELEASE,
    S_ROLLBACK_TO,
    S_NEXT_ID,
    S_INSERT_TRIAL,
    S_UPDATE_TRIAL,
    S_GET_TRIAL,
    S_ALL_TRIALS,
    S_LAST_ID,
    S_ID_WINDOW,
    S_ID_WINDOW_DESC,
    S_COUNT_ABOVE,
    S_INSERT_METRIC,
    S_READ_METRIC,
    S_METRIC_NAMES,
    S_INSERT_PERSISTED,
    S_READ_PERSISTED,
    S_RUNNING,
    S_INTERRUPT,
    S_QUEUED,
    S_MARK_RUNNING,
    S_HASH_GET,
    S_HASH_PUT,
    S_CONTENT_PUT,
    S_CONTENT_GET,
    S_COUNT
};

static const char *const s_sql[S_COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_BEGIN_READ] = "BEGIN",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_SAVEPOINT] = "SAVEPOINT op",
    [S_RELEASE] = "RELEASE op",
    [S_ROLLBACK_TO] = "ROLLBACK TO op",
    [S_NEXT_ID] = "SELECT coalesce(max(id), 0) + 1 FROM trials",
    [S_INSERT_TRIAL] = "INSERT INTO trials(id, status, host, pid, pstart, "
                       "doc) VALUES (?, ?, ?, ?, ?, ?)",
    [S_UPDATE_TRIAL] = "UPDATE trials SET status = ?, doc = ? WHERE id = ?",
    [S_GET_TRIAL] = "SELECT doc FROM trials WHERE id = ?",
    [S_ALL_TRIALS] = "SELECT id, doc FROM trials ORDER BY id",
    [S_LAST_ID] = "SELECT coalesce(max(id), 0) FROM trials",
    [S_ID_WINDOW] = "SELECT id, doc FROM trials ORDER BY id LIMIT ? OFFSET ?",
    [S_ID_WINDOW_DESC] = "SELECT id, doc FROM trials ORDER BY id DESC LIMIT ? "
                         "OFFSET ?",
    [S_COUNT_ABOVE] = "SELECT count(*) FROM trials WHERE id > ?",
    [S_INSERT_METRIC] = "INSERT OR REPLACE INTO metrics(trial, name, chunk, "
                        "data) VALUES (?, ?, ?, ?)",
    [S_READ_METRIC] = "SELECT data FROM metrics WHERE trial = ? AND name = ? "
                      "ORDER BY chunk",
    /* The next name after ?2: one seek into the primary key (trial,
     * name, chunk) per name, however many chunks each one has. */
    [S_METRIC_NAMES] = "SELECT name FROM metrics WHERE trial = ?1 AND "
                       "name > ?2 ORDER BY name LIMIT 1",
    [S_INSERT_PERSISTED] = "INSERT OR REPLACE INTO persisted(trial, step, "
                           "value) VALUES (?, ?, ?)",
    [S_READ_PERSISTED] = "SELECT value FROM persisted WHERE trial = ? AND "
                         "step = ?",
    [S_RUNNING] = "SELECT id, host, pid, pstart FROM trials "
                  "WHERE status = '" XP_STATUS_RUNNING_NAME "' ORDER BY id",
    /* A scheduler's trials (pid 0): queued, or running on its workers. */
    [S_QUEUED] =
        "SELECT doc FROM trials WHERE status = '" XP_STATUS_QUEUED_NAME
        "' OR (status = '" XP_STATUS_RUNNING_NAME "' AND pid = 0) ORDER BY id",
    [S_MARK_RUNNING] =
        "UPDATE trials SET status = '" XP_STATUS_RUNNING_NAME
        "', doc = ? WHERE id = ? AND status = '" XP_STATUS_QUEUED_NAME "'",
    [S_INTERRUPT] = "SELECT doc FROM trials WHERE id = ? AND "
                    "status = '" XP_STATUS_RUNNING_NAME "'",
    [S_HASH_GET] = "SELECT output FROM step_hashes WHERE key = ? AND "
                   "step = ?",
    [S_HASH_PUT] = "INSERT OR REPLACE INTO step_hashes(key, step, output, "
                   "trial) VALUES (?, ?, ?, ?)",
    [S_CONTENT_PUT] = "INSERT OR IGNORE INTO contents(hash, kind, doc) "
                      "VALUES (?, ?, ?)",
    [S_CONTENT_GET] = "SELECT doc FROM contents WHERE hash = ?",
};

static const char s_schema[] =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT "
    "NULL) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS trials(id INTEGER PRIMARY KEY, status TEXT "
    "NOT NULL, host TEXT, pid INTEGER, pstart INTEGER, doc BLOB NOT NULL);"
    "CREATE INDEX IF NOT EXISTS trials_running ON trials(status) WHERE "
    "status = '" XP_STATUS_RUNNING_NAME "';"
    "CREATE INDEX IF NOT EXISTS trials_queued ON trials(status) WHERE "
    "status = '" XP_STATUS_QUEUED_NAME "';"
    "CREATE TABLE IF NOT EXISTS metrics(trial INTEGER NOT NULL, name TEXT "
    "NOT NULL, chunk INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY "
    "KEY(trial, name, chunk)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS persisted(trial INTEGER NOT NULL, step TEXT "
    "NOT NULL, value BLOB NOT NULL, PRIMARY KEY(trial, step)) WITHOUT "
    "ROWID;"
    /* key: 64 bits of XXH3(step name, input hash). An integer key keeps
     * rows small, so random inserts touch fewer, cached pages. */
    "CREATE TABLE IF NOT EXISTS step_hashes(key INTEGER PRIMARY KEY, step "
    "TEXT NOT NULL, output BLOB NOT NULL, trial INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS contents(hash TEXT PRIMARY KEY, kind TEXT "
    "NOT NULL, doc BLOB NOT NULL) WITHOUT ROWID;";

/* The memo table and its statements, apart from s_sql: prepared only
 * once the table exists. */
enum { S_MEMO_GET, S_MEMO_PUT, S_MEMO_ALL, S_MEMO_DELETE, S_MEMO_COUNT };
static const char s_memo_schema[] =
    "CREATE TABLE IF NOT EXISTS memo(key BLOB PRIMARY KEY, trial INTEGER NOT "
    "NULL, output BLOB NOT NULL) WITHOUT ROWID";
static const char *const s_memo_sql[S_MEMO_COUNT] = {
    [S_MEMO_GET] = "SELECT trial, output FROM memo WHERE key = ?",
    [S_MEMO_PUT] = "INSERT OR REPLACE INTO memo VALUES (?, ?, ?)",
    [S_MEMO_ALL] = "SELECT key, trial, output FROM memo",
    [S_MEMO_DELETE] = "DELETE FROM memo WHERE key = ?",
};

typedef struct {
    xp_backend base;
    sqlite3 *db;
    sqlite3_stmt *stmt[S_COUNT];
    char *path;
    /* One connection per experiment handle, shared by its threads. */
    pthread_mutex_t lock;
    int index_fd; /* trials.tsv, 0 while closed */
    /* Group commit: operations are savepoints of one transaction, and
     * their trials.tsv lines wait for its commit. */
    bool group;
    bson_string_t *group_index;
    /* Background checkpointer: copies the WAL back into the database on
     * its own connection, so trials never pay for a checkpoint. */
    sqlite3 *ckpt_db;
    pthread_t ckpt_thread;
    bool ckpt_running, ckpt_stop;
    int ckpt_frames; /* WAL size after the last commit, in frames */
    int ckpt_asked;  /* WAL size when the checkpointer was last woken */
    pthread_mutex_t ckpt_lock;
    pthread_cond_t ckpt_cond;
    /* The trial count of the last unfiltered page, and the highest id
     * then. */
    bool counted;
    int64_t counted_rows, counted_last;
    /* Projections of the records for pages that filter or sort, valid
     * for one data version (NULL until the first such page). */
    xp_projection_cache *proj;
    /* Memo statements, prepared once the memo table exists (it is made
     * by the first write, so older stores stay as they are). */
    sqlite3_stmt *memo_st[S_MEMO_COUNT];
} xp_local;

static int s_db_error(xp_local *l, xp_error_t *err, const char *what)
{
    int code = sqlite3_extended_errcode(l->db);
    int primary = code & 0xff;
    uint32_t xcode = (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB)
                         ? XP_ECORRUPT
                         : XP_EIO;
    return xp__error(err, XP_DOMAIN_BACKEND, xcode, "%s: %s: %s", l->path, what,
                     sqlite3_errmsg(l->db));
}

static sqlite3_stmt *s_stmt(xp_local *l, int which)
{
    sqlite3_stmt *st = l->stmt[which];
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

/* Steps st, a bound statement that returns no rows, and resets it; what
 * names it in the error. */
static int s_step_done(xp_local *l, sqlite3_stmt *st, const char *what,
                       xp_error_t *err)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : s_db_error(l, err, what);
}

/* Runs a statement without parameters that returns no rows. */
static int s_exec(xp_local *l, int which, xp_error_t *err)
{
    return s_step_done(l, s_stmt(l, which), s_sql[which], err);
}

/* One operation's transaction: its own, or a savepoint of the group's. */
static int s_begin(xp_local *l, xp_error_t *err)
{
    return s_exec(l, l->group ? S_SAVEPOINT : S_BEGIN, err);
}

static void s_rollback(xp_local *l)
{
    if (l->group) {
        s_exec(l, S_ROLLBACK_TO, NULL);
        s_exec(l, S_RELEASE, NULL);
    } else if (!sqlite3_get_autocommit(l->db)) {
        s_exec(l, S_ROLLBACK, NULL);
    }
}

static int s_commit(xp_local *l, xp_error_t *err)
{
    if (s_exec(l, l->group ? S_RELEASE : S_COMMIT, err) == 0)
        return 0;
    s_rollback(l);
    return -1;
}

/* Validates a stored BSON blob of a row and initialises *doc over it. */
static int s_stored_doc(xp_local *l, sqlite3_stmt *st, int col, bson_t *doc,
                        const char *what, xp_error_t *err)
{
    const void *data = sqlite3_column_blob(st, col);
    int len = sqlite3_column_bytes(st, col);
    if (len < 0 || !xp__bson_view_checked(doc, data, (size_t)len))
        return xp__error(err, XP_DOMAIN_BACKEND, XP_ECORRUPT,
                         "%s: stored %s is damaged", l->path, what);
    return 0;
}

static const char *s_text_ext(const char *kind)
{
    return strcmp(kind, "code") == 0 ? "c" : "txt";
}

/* trials.tsv maps each trial to its content files: "trial_id<TAB>code
 * hash<TAB>environment hash" (code/<hash>.c, environment/<hash>.txt),
 * appended with O_APPEND so concurrent processes interleave whole lines.
 * A line per trial costs one write; a symlink per trial cost ~0.3 ms.
 * The database is the truth: a writer holds flock(LOCK_EX) on the file
 * from before the commit of its trials until their lines are written, so
 * a writer opening the store (s_index_repair) holding the lock finds every
 * committed trial listed, except those whose process died in between. */

/* The line of trial id, NUL-terminated in line[128]; its length. */
static size_t s_index_line(int64_t id, const bson_t *doc, char line[128])
{
    bson_iter_t it;
    char code[33] = "-", env[33] = "-";
    if (bson_iter_init_find(&it, doc, XP_RECORD_CODE_HASH) &&
        BSON_ITER_HOLDS_UTF8(&it))
        bson_strncpy(code, bson_iter_utf8(&it, NULL), sizeof code);
    if (bson_iter_init_find(&it, doc, XP_RECORD_ENVIRONMENT_HASH) &&
        BSON_ITER_HOLDS_UTF8(&it))
        bson_strncpy(env, bson_iter_utf8(&it, NULL), sizeof env);
    int n = snprintf(line, 128, "%lld\t%s\t%s\n", (long long)id, code, env);
    return n > 0 && n < 128 ? (size_t)n : 0;
}

/* Opens trials.tsv once (l->lock held); false when it cannot be. */
static bool s_index_open(xp_local *l)
{
    if (l->index_fd > 0)
        return true;
    char *path = bson_strdup_printf("%s/trials.tsv", l->base.dir);
    int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0)
        xp__log(XP_LOG_DEBUG, "cannot open %s: %s", path, strerror(errno));
    bson_free(path);
    l->index_fd = fd < 0 ? 0 : fd;
    return fd >= 0;
}

/* Takes the trials.tsv lock ahead of a commit whose lines follow
 * (l->lock held); false when not taken: inside a group (its end takes
 * it) or without the file. */
static bool s_index_lock(xp_local *l)
{
    if (l->group || !s_index_open(l))
        return false;
    int rc;
    while ((rc = flock(l->index_fd, LOCK_EX)) != 0 && errno == EINTR)
        ;
    return rc == 0;
}

static void s_index_unlock(xp_local *l, bool locked)
{
    if (locked)
        flock(l->index_fd, LOCK_UN);
}

/* Appends lines to trials.tsv (l->lock held). */
static void s_index_write(xp_local *l, const char *line, size_t n)
{
    if (n == 0 || !s_index_open(l))
        return;
    if (write(l->index_fd, line, n) != (ssize_t)n)
        xp__log(XP_LOG_DEBUG, "cannot append to %s/trials.tsv", l->base.dir);
}

/* Appends the line of trial id, or keeps it for the commit of the group
 * (l->lock held). */
static void s_index_add(xp_local *l, int64_t id, const bson_t *doc)
{
    char line[128];
    size_t n = s_index_line(id, doc, line);
    if (l->group)
        bson_string_append(l->group_index, line);
    else
        s_index_write(l, line, n);
}

static int s_group_begin(xp_backend *b, xp_error_t *err)
{
    xp_local *l = (xp_local *)b;
    pthread_mutex_lock(&l->lock);
    int rc = l->group ? 0 : s_exec(l, S_BEGIN, err);
    if (rc == 0 && !l->group) {
        l->group = true;
        l->group_index = bson_string_new(NULL);
    }
    pthread_mutex_unlock(&l->lock);
    return rc;
}

static int s_group_end(xp_backend *b, xp_error_t *err)
{
    xp_local *l = (xp_local *)b;
    pthread_mutex_lock(&l->lock);
    if (!l->group) {
        pthread_mutex_unlock(&l->lock);
        return 0;
    }
    l->group = false;
    bool locked = l->group_index->len > 0 && s_index_lock(l);
    int rc = s_exec(l, S_COMMIT, err);
    if (rc != 0)
        s_exec(l, S_ROLLBACK, NULL);
    else
        s_index_write(l, l->group_index->str, l->group_index->len);
    s_index_unlock(l, locked);
    bson_string_free(l->group_index, true);
    l->group_index = NULL;
    pthread_mutex_unlock(&l->lock);
    return rc;
}

static int s_trial_begin(xp_backend *b, const xp_trial_record *rec, int64_t *id,
                         xp_error_t *err)
{
    xp_local *l = (xp_local *)b;
    int rc = -1;
    bool locked = false;
    bson_t full = BSON_INITIALIZER;
    pthread_mutex_lock(&l->lock);
    if (s_begin(l, err) != 0)
        goto cleanup;
    sqlite3_stmt *st = s_stmt(l, S_NEXT_ID);
    if (sqlite3_step(st) != SQLITE_ROW) {
        s_db_error(l, err, "allocating trial id");
        goto cleanup;
    }
    *id = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);

    xp_trial_record with_id = *rec;
    with_id.trial_id = *id;
    if (xp__record_encode(&with_id, &full, err) != 0)
        goto cleanup;
    st = s_stmt(l, S_INSERT_TRIAL);
    sqlite3_bind_int64(st, 1, *id);
    sqlite3_bind_text(st, 2, xp__trial_status_name(rec->status), -1,
                      SQLITE_STATIC);
    sqlite3_bind_text(st, 3, rec->host ? rec->host : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, rec->pid);
    sqlite3_bind_int64(st, 5, rec->pstart);
    sqlite3_bind_blob(st, 6, bson_get_data(&full), (int)full.len,
                      SQLITE_STATIC);
    if (s_step_done(l, st, "recording trial", err) != 0)
        goto cleanup;
    locked = s_index_lock(l);
    rc = s_commit(l, err);
    if (rc == 0)
        s_index_add(l, *id, &full);
cleanup:
    s_index_unlock(l, locked);
    if (rc != 0)
        s_rollback(l);
    pthread_mutex_unlock(&l->lock);
    bson_destroy(&full);
    return rc;
}

static int64_t s_hash_key(const char *step, const uint8_t input[16])
{
    return (int64_t)XXH3_64bits_withSeed(input, 16,
                                         XXH3_64bits(step, strlen(step)));
}

/* Metric rows and SQLite's pages: a WITHOUT ROWID row of more than
 * XP_LOCAL_ROW_INLINE bytes (4 KiB pages) keeps ~490 in its b-tree page
 * and the rest in overflow pages of its own, the last one mostly empty: a
 * 110-point chunk would cost 4.6 KiB. A chunk of up to XP_LOCAL_ROW_SPLIT
 * encoded bytes is stored as rows that fit a page (the row key is
 * chunk·2^XP_LOCAL_ROW_BITS + row, so ORDER BY keeps the points' order);
 * past that the last overflow page wastes at most an eighth. */
#define XP_LOCAL_ROW_INLINE 1002
#define XP_LOCAL_ROW_SPLIT 32768
#define XP_LOCAL_ROW_BITS 14 /* rows of one chunk: at most its 8192 points */

/* The points of c as one row under key row. */
static int s_write_row(xp_local *l, int64_t trial, const xp_metric_chunk *c,
                       int64_t row, xp_error_t *err)
{
    size_t bytes;
    uint8_t *data = xp__metric_chunk_encode_new(c, &bytes);
    sqlite3_stmt *st = s_stmt(l, S_INSERT_METRIC);
    sqlite3_bind_int64(st, 1, trial);
    sqlite3_bind_text(st, 2, c->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, row);
    sqlite3_bind_blob(st, 4, data, (int)bytes, SQLITE_STATIC);
    int rc = s_step_done(l, st, "storing metric", err);
    bson_free(data);
    return rc;
}

/* One chunk, in the compact chunk encoding (store/metric.h), as one row
 * or as rows that fit a page. */
static int s_write_chunk(xp_local *l, int64_t trial, const xp_metric_chunk *c,
                         xp_error_t *err)
{
    if (c->chunk < 0 || c->chunk > (INT64_MAX >> XP_LOCAL_ROW_BITS) ||
        c->n > ((size_t)1 << XP_LOCAL_ROW_BITS))
        return xp__error(err, XP_DOMAIN_BACKEND, XP_EINVAL,
                         "metric '%s': chunk %lld of %zu points cannot be "
                         "stored",
                         c->name, (long long)c->chunk, c->n);
    int64_t key = c->chunk << XP_LOCAL_ROW_BITS;
    /* Room for the blob beside the key columns and the record header. */
    size_t name = strlen(c->name), room = 64;
    if (name < XP_LOCAL_ROW_INLINE - 40 - room)
        room = XP_LOCAL_ROW_INLINE - 40 - name;
    if (xp__metric_chunk_fit(c, XP_LOCAL_ROW_SPLIT) < c->n ||
        xp__metric_chunk_fit(c, room) == c->n)
        return s_write_row(l, trial, c, key, err);
    xp_metric_chunk part = *c;
    for (int64_t row = 0; part.n > 0; row++) {
        part.n = xp__metric_chunk_fit(&part, room);
        if (s_write_row(l, trial, &part, key + row, err) != 0)
            return -1;
        part.epochs += part.n;
        part.values += part.n;
        part.n = c->n - (size_t)(part.epochs - c->epochs);
    }
    return 0;
}

static int s_metric_flush(xp_backend *b, int64_t id,
                          const xp_metric_chunk *chunks, size_t n,
                          xp_error_t *err)
{
    xp_local *l = (xp_local *)b;
    pthread_mutex_lock(&l->lock);
    int rc = s_begin(l, err);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = s_write_chunk(l, id, &chunks[i], err);
    if (rc == 0)
        rc = s_commit(l, err);
    else
        s_rollback(l);
    pthread_mutex_unlock(&l->lock);
    return rc;
}

static int s_trial_finish(xp_backend *b, const xp_trial_outcome *o,
                          xp_error_t *err)
{
    xp_local *l = (xp_local *)b;
    int64_t id = o->record->trial_id;
    const char *status = o->record->status != XP_STATUS_NONE
                             ? xp__trial_status_name(o->record->status)
                             : XP_STATUS_FAILED_NAME;
    const xp_persisted_item *persisted = o->persisted;
    const xp_step_hash *hashes = o->hashes;
    int rc = -1;
    pthread_mutex_lock(&l->lock);
    if (s_begin(l, err) != 0)
        goto cleanup;
    for (size_t i = 0; i < o->n_chunks; i++)
        if (s_write_chunk(l, id, &o->chunks[i], err) != 0)
            goto cleanup;
    for (size_t i = 0; i < o->n_persisted; i++) {
        bson_t v = BSON_INITIALIZER;
        if (xp__value_append_bson(&v, "v", persisted[i].value) != 0) {
            bson_destroy(&v);
            xp__error(err, XP_DOMAIN_BACKEND, XP_EINVAL,
                      "persisted value of step '%s' is too large to store",
                      persisted[i].step);
            goto cleanup;
        }
        sqlite3_stmt *st = s_stmt(l, S_INSERT_PERSISTED);
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, persisted[i].step, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 3, bson_get_data(&v), (int)v.len, SQLITE_STATIC);
        int step_rc = s_step_done(l, st, "storing persisted value", err);
        bson_destroy(&v);
        if (step_rc != 0)
            goto cleanup;
    }
    for (size_t i = 0; i < o->n_hashes; i++) {
        sqlite3_stmt *st = s_stmt(l, S_HASH_PUT);
        sqlite3_bind_int64(st, 1, s_hash_key(hashes[i].step, hashes[i].input));
        sqlite3_bind_text(st, 2, hashes[i].step, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 3, hashes[i].output, 16, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, id);
        if (s_step_done(l, st, "storing step hashes", err) != 0)
            goto cleanup;
    }
    sqlite3_stmt *st = s_stmt(l, S_UPDATE_TRIAL);
    sqlite3_bind_text(st, 1, status, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, bson_get_data(o->doc), (int)o->doc->len,
                      SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, id);
    if (s_step_done(l, st, "recording trial result", err) != 0)
        goto cleanup;
    rc = s_commit(l, err);
cleanup:
    if (rc != 0)
        s_rollback(l);
    pthread_mutex_unlock(&l->lock);
    return rc;
}

static int s_trial_get(xp_backend *b, int64_t id, bson_t *out, xp_error_t *err)
{
    xp_local *l = (xp_local *)b;
    int rc = -1;
    pthread_mutex_lock(&l->lock);
    sqlite3_stmt *st = s_stmt(l, S_GET_TRIAL);
    sqlite3_bind_int64(st, 1, id);
    int step_rc = sqlite3_step(st);
    if (step_rc == SQLITE_ROW) {
        bson_t doc;
        if (s_stored_doc(l, st, 0, &doc, "trial record", err) == 0) {
            bson_copy_to(&doc, out);
            rc = 0;
        }
    } else if (step_rc == SQLITE_DONE) {
        xp__error(err, XP_DOMAIN_BACKEND, XP_ENOTFOUND,
                  "trial %lld does not exist", (long long)id);
    } else {
        s_db_error(l, err, "reading trial");
    }
    sqlite3_reset(st);
    pthread_mutex_unlock(&l->lock);
    return rc;
}

static int s_trials_each(xp_backend *b, xp_trial_fn fn, void *user,
                         xp_error_t *err)
{
    xp_local *l = (xp_local *)b;
    int rc = 0;
    pthread_mutex_lock(&l->lock);
    sqlite3_stmt *st = s_stmt(l, S_ALL_TRIALS);
    int step_rc;
    while ((step_rc = sqlite3_step(st)) == SQLITE_ROW) {
        bson_t doc;
        bool readable = s_stored_doc(l, st, 1, &doc, "trial record", NULL) == 0;
        if (fn(readable ? &doc : NULL, sqlite3_column_int64(st, 0), user) !=
            0) {
            rc = -1;
            break;
        }
    }
    if (rc == 0 && step_rc != SQLITE_DONE)
        rc = s_db_error(l, err, "reading history");
    sqlite3_reset(st);
    pthread_mutex_unlock(&l->lock);
    return rc;
}

/* The bytes as stored: the reader checks them as it reads (history's
 * rows, xp__record_read_row), instead of a check here and a walk there. */
static int s_trials_each_bytes(xp_backend *b, xp_trial_bytes_fn fn, void *user,
                               xp_error_t *err)
{
    xp_local *l = (xp_local *)b;
    int rc = 0;
    pthread_mutex_lock(&l->lock);
    bool reader = sqlite3_db_readonly(l->db, "main") == 1;
    if (reader)
        sqlite3_exec(l->db, "PRAGMA cache_size=-" XP_LOCAL_STREAM_CACHE_KIB,
                     NULL, NULL, NULL);
    sqlite3_stmt *st = s_stmt(l, S_ALL_TRIALS);
    int step_rc;
    while ((step_rc = sqlite3_step(st)) == SQLITE_ROW) {
        const uint8_t *data = sqlite3_column_blob(st, 1);
        int len = sqlite3_column_bytes(st, 1);
        if (fn(len > 0 ? data : NULL, len > 0 ? (size_t)len : 0,
               sqlite3_column_int64(st, 0), user) != 0) {
            rc = -1;
            break;
        }
    }
    if (rc == 0 && step_rc != SQLITE_DONE)
        rc = s_db_error(l, err, "reading history");
    sqlite3_reset(st);
    if (reader)
        sqlite3_exec(l->db, "PRAGMA cache_size=-" XP_LOCAL_READER_CACHE_KIB,
                     NULL, NULL, NULL);
    pthread_mutex_unlock(&l->lock);
    return rc;
}

/* ---------------------------------------------------------------- history
 * queries. In trial id order without a filter, a page is LIMIT/OFFSET on
 * the rowid b-tree and its count is kept per handle (trials are never
 * deleted and ids only grow, so only the rows above the last count are
 * counted). Any other page is one pass in C over the stored documents
 * (sqlite3_column_blob points into SQLite's page cache): the query wing's
 * scan evaluates filter and sort key, counts the matches and keeps keys and
 * ids of the offset + limit first; the documents of the page are then read
 * by id, all in one read transaction. */

/* Opens a read transaction unless the handle is in one (a group): then
 * false, and its uncommitted trials are seen. */
static int s_begin_read(xp_local *l, bool *own, xp_error_t *err)
{
    *own = sqlite3_get_autocommit(l->db) != 0;
    return *own ? s_exec(l, S_BEGIN_READ, err) : 0;
}

static int s_end_read(xp_local *l, bool own, int rc)
{
    if (own && s_exec(l, rc == 0 ? S_COMMIT : S_ROLLBACK, NULL) != 0)
        s_exec(l, S_ROLLBACK, NULL);
    return rc;
}

/* The one integer that statement which returns, bound to *arg (when
 * given). */
static int s_int_query(xp_local *l, int which, const int64_t *arg, int64_t *out,
                       xp_error_t *err)
{
    sqlite3_stmt *st = s_stmt(l, which);
    if (arg)
        sqlite3_bind_int64(st, 1, *arg);
    int rc = 0;
    if (sqlite3_step(st) == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    else
        rc = s_db_error(l, err, "counting trials");
    sqlite3_reset(st);
    return rc;
}

/* The number of trials. In a transaction of its own (cached: committed
 * rows only), the rows above the last count's highest id are added to
 * it; a highest id below that one (a store replaced) counts anew. */
static int s_count_all(xp_local *l, bool own, int64_t *count, xp_error_t *err)
{
    int64_t last = 0, above = 0, from = INT64_MIN;
    if (!own)
        return s_int_query(l, S_COUNT_ABOVE, &from, count, err);
    if (s_int_query(l, S_LAST_ID, NULL, &last, err) != 0)
        return -1;
    if (!l->counted || last < l->counted_last) {
        l->counted = false;
        l->counted_rows = 0;
    } else {
        from = l->counted_last;
    }
    if (s_int_query(l, S_COUNT_ABOVE, &from, &above, err) != 0)
        return -1;
    l->counted = true;
    l->counted_rows += above;
    l->counted_last = last;
    *count = l->counted_rows;
    return 0;
}

typedef struct {
    xp_local *l;
    xp_trial_fn fn;
    void *user;
    xp_error_t *err;
    bool failed; /* reading failed (else fn stopped the page) */
} s_page_ctx;

/* Hands the stored document of trial id to the caller's fn. */
static int s_emit_by_id(const bson_t *unused, int64_t id, void *user)
{
    (void)unused;
    s_page_ctx *pc = user;
    sqlite3_stmt *st = s_stmt(pc->l, S_GET_TRIAL);
    sqlite3_bind_int64(st, 1, id);
    int rc = -1;
    if (sqlite3_step(st) == SQLITE_ROW) {
        bson_t doc;
        bool readable =
            s_stored_doc(pc->l, st, 0, &doc, "trial record", NULL) == 0;
        rc = pc->fn(readable ? &doc : NULL, id, pc->user);
    } else {
        pc->failed = true;
        s_db_error(pc->l, pc->err, "reading a page of history");
    }
    sqlite3_reset(st);
    return rc;
}

/* The version of what this handle's read transaction sees: SQLite's
 * data version of the main database, which moves with every commit of
 * any connection, and this connection's changes (uncommitted ones
 * too). 0 when unknown. Call it once the transaction has read. */
static uint64_t s_data_version(xp_local *l)
{
    unsigned int dv = 0;
    if (sqlite3_file_control(l->db, "main", SQLITE_FCNTL_DATA_VERSION, &dv) !=
        SQLITE_OK)
        return 0;
    return (uint64_t)sqlite3_total_changes64(l->db) << 32 ^ dv ^ 1u << 31;
}

/* Every stored record, in trial id order, into scan or (scan NULL) into
 * cache, until cache stops keeping them (too large). The bytes are
 * evaluated as stored (bson_iter checks each length it follows); a blob
 * too short for a document is a damaged record. */
static int s_scan_records(xp_local *l, xp_query_scan *scan,
                          xp_projection_cache *cache, xp_error_t *err)
{
    /* each page read once, as for the whole history: the next scan comes
     * after a change, which empties SQLite's cache anyway */
    bool reader = sqlite3_db_readonly(l->db, "main") == 1;
    if (reader)
        sqlite3_exec(l->db, "PRAGMA cache_size=-" XP_LOCAL_STREAM_CACHE_KIB,
                     NULL, NULL, NULL);
    sqlite3_stmt *st = s_stmt(l, S_ALL_TRIALS);
    int step_rc, rc = 0;
    while ((step_rc = sqlite3_step(st)) == SQLITE_ROW) {
        const uint8_t *data = sqlite3_column_blob(st, 1);
        int len = sqlite3_column_bytes(st, 1);
        bson_t doc;
        bool ok = data && len >= 5 && bson_init_static(&doc, data, (size_t)len);
        int64_t id = sqlite3_column_int64(st, 0);
        if (scan) {
            xp__query_scan_add(scan, ok ? &doc : NULL, id);
            continue;
        }
        xp__projection_cache_add(cache, ok ? &doc : NULL, id);
        if (!xp__projection_cache_keeping(cache))
            break;
    }
    if (step_rc != SQLITE_DONE && step_rc != SQLITE_ROW)
        rc = s_db_error(l, err, "reading history");
    sqlite3_reset(st);
    if (reader)
        sqlite3_exec(l->db, "PRAGMA cache_size=-" XP_LOCAL_READER_CACHE_KIB,
                     NULL, NULL, NULL);
    return rc;
}

/* A page that filters or sorts: every record through the scan. In a
 * transaction of its own the records' values of the query's fields are
 * kept in columns for the next pages (l->proj), until the data version
 * moves; the page that builds them is answered by them too (by the scan
 * when the history is too large for them). */
static int s_query_scan(xp_local *l, const xp_compiled_query *q, bool own,
                        s_page_ctx *pc, int64_t *matched)
{
    xp_query_scan *scan = xp__query_scan_new_ids(q);
    int rc = 0;
    int64_t last = 0;
    uint64_t version = 0;
    /* the version once the snapshot is taken (its first read) */
    if (own && s_int_query(l, S_LAST_ID, NULL, &last, NULL) == 0)
        version = s_data_version(l);
    if (version && !l->proj)
        l->proj = xp__projection_cache_new();
    bool cached = version && xp__projection_cache_ready(l->proj, q, version);
    if (!cached && version && xp__projection_cache_keeping(l->proj)) {
        rc = s_scan_records(l, NULL, l->proj, pc->err);
        cached = rc == 0 && xp__projection_cache_keeping(l->proj);
        if (rc == 0)
            xp__projection_cache_done(l->proj);
    }
    if (cached)
        xp__projection_cache_scan(l->proj, scan);
    else if (rc == 0)
        rc = s_scan_records(l, scan, NULL, pc->err);
    *matched = xp__query_scan_matched(scan);
    if (rc == 0 && xp__query_scan_emit(scan, s_emit_by_id, pc) != 0)
        rc = -1;
    xp__query_scan_destroy(&scan);
    return rc;
}

/* A page of every trial in trial id order (descending: newest first, the
 * dashboard's live view), read along the primary key. */
static int s_query_window(xp_local *l, const xp_compiled_query *q,
                          bool descending, bool own, s_page_ctx *pc,
                          int64_t *matched)
{
    sqlite3_stmt *st = s_stmt(l, descending ? S_ID_WINDOW_DESC : S_ID_WINDOW);
    sqlite3_bind_int64(st, 1, q->limit > 0 ? q->limit : -1);
    sqlite3_bind_int64(st, 2, q->offset);
    int step_rc, rc = 0;
    while (rc == 0 && (step_rc = sqlite3_step(st)) == SQLITE_ROW) {
        bson_t doc;
        bool readable = s_stored_doc(l, st, 1, &doc, "trial record", NULL) == 0;
        if (pc->fn(readable ? &doc : NULL, sqlite3_column_int64(st, 0),
                   pc->user) != 0)
            rc = -1;
    }
    if (rc == 0 && step_rc != SQLITE_DONE)
        rc = s_db_error(l, pc->err, "reading history");
    sqlite3_reset(st);
    return rc == 0 ? s_count_all(l, own, matched, pc->err) : rc;
}

static int s_trials_query(xp_backend *b, const xp_compiled_query *q,
                          xp_trial_fn fn, void *user, int64_t *matched,
                          xp_error_t *err)
{
    xp_local *l = (xp_local *)b;
    s_page_ctx pc = {.l = l, .fn = fn, .user = user, .err = err};
    bool own = false;
    pthread_mutex_lock(&l->lock);
    int rc = s_begin_read(l, &own, err);
    int by_id = q->sort ? xp__sort_by_trial_id(q->sort) : 1;
    if (rc == 0)
        rc = q->filter || by_id == 0
                 ? s_query_scan(l, q, own, &pc, matched)
                 : s_query_window(l, q, by_id < 0, own, &pc, matched);
    rc = s_end_read(l, own, rc);
    pthread_mutex_unlock(&l->lock);
    return rc;
}

static int s_last_id(xp_backend *b, int64_t *id, xp_error_t *err)
{
    xp_local *l = (xp_local *)b;
    int rc = 0;
    pthread_mutex_lock(&l->lock);
    sqlite3_stmt *st = s_stmt(l, S_LAST_ID);
    if (sqlite3_step(st) == SQLITE_ROW)
        *id = sqlite3_column_int64(st, 0);
    else
        rc = s_db_error(l, err, "reading last trial id");
    sqlite3_reset(st);
    pthread_mutex_unlock(&l->lock);
    return rc;
}

static int s_metric_read(xp_backend *b, const char *name, int64_t trial,
                         xp_metric_points *out, xp_error_t *err)
{
    xp_local *l = (xp_local *)b;
    int rc = 0;
    pthread_mutex_lock(&l->lock);
    sqlite3_stmt *st = s_stmt(l, S_READ_METRIC);
    sqlite3_bind_int64(st, 1, trial);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    int step_rc;
    while ((step_rc = sqlite3_step(st)) == SQLITE_ROW) {
        const uint8_t *data = sqlite3_column_blob(st, 0);
        size_t bytes = (size_t)sqlite3_column_bytes(st, 0);
        if (!data || xp__metric_chunk_decode(data, bytes, out, NULL) != 0) {
            rc = xp__error(err, XP_DOMAIN_BACKEND, XP_ECORRUPT,
                           "%s: stored metric '%s' of trial %lld is damaged",
                           l->path, name, (long long)trial);
            break;
        }
    }
    if (rc == 0 && step_rc != SQLITE_DONE)
        rc = s_db_error(l, err, "reading metric");
    sqlite3_reset(st);
    pthread_mutex_unlock(&l->lock);
    return rc;
}

static int s_metric_names(xp_backend *b, int64_t trial,
                          int (*fn)(const char *name, size_t len, void *user),
                          void *user, xp_error_t *err)
{
    xp_local *l = (xp_local *)b;
    int rc = 0, step_rc;
    pthread_mutex_lock(&l->lock);
    sqlite3_stmt *st = s_stmt(l, S_METRIC_NAMES);
    sqlite3_bind_int64(st, 1, trial);
    sqlite3_bind_text(st, 2, "", 0, SQLITE_STATIC);
    while ((step_rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        int len = sqlite3_column_bytes(st, 0);
        if (!name || fn(name, (size_t)len, user) != 0) {
            rc = name ? -1 : s_db_error(l, err, "listing metric names");
            break;
        }
        /* The row goes at the reset; a bound value must outlive it. */
        char *after = bson_malloc((size_t)len + 1);
        memcpy(after, name, (size_t)len);
        sqlite3_reset(st);
        sqlite3_bind_text(st, 2, after, len, SQLITE_TRANSIENT);
        bson_free(after);
    }
    if (rc == 0 && step_rc != SQLITE_DONE)
        rc = s_db_error(l, err, "listing metric names");
    sqlite3_reset(st);
    pthread_mutex_unlock(&l->lock);
    return rc;
}

static int s_persisted_read(xp_backend *b, const char *step, int64_t trial,
                            xp_value *out, xp_error_t *err)
{
    xp_local *l = (xp_local *)b;
    int rc = -1;
    pthread_mutex_lock(&l->lock);
    sqlite3_stmt *st = s_stmt(l, S_READ_PERSISTED);
    sqlite3_bind_int64(st, 1, trial);
    sqlite3_bind_text(st, 2, step, -1, SQLITE_STATIC);
    int step_rc = sqlite3_step(st);
    if (step_rc == SQLITE_ROW) {
        bson_t doc;
        bson_iter_t it;
        if (s_stored_doc(l, st, 0, &doc, "persisted value", err) == 0) {
            if (bson_iter_init_find(&it, &doc, "v"))
                rc = xp__value_from_iter(out, &it, err);
            else
                xp__error(err, XP_DOMAIN_BACKEND, XP_ECORRUPT,
                          "%s: stored persisted value is damaged", l->path);
        }
    } else if (step_rc == SQLITE_DONE) {
        xp__error(err, XP_DOMAIN_BACKEND, XP_ENOTFOUND,
                  "no persisted value of step '%s' in trial %lld", step,
                  (long long)trial);
    } else {
        s_db_error(l, err, "reading persisted value");
    }
    sqlite3_reset(st);
    pthread_mutex_unlock(&l->lock);
    return rc;
}

static int s_queued_trials(xp_backend *b,
                           int (*fn)(const bson_t *doc, void *user), void *user,
                           xp_error_t *err)
{
    xp_local *l = (xp_local *)b;
    int rc = 0;
    pthread_mutex_lock(&l->lock);
    sqlite3_stmt *st = s_stmt(l, S_QUEUED);
    int step_rc;
    /* Collected first: fn may call back into the backend. */
    bson_t **docs = NULL;
    size_t n = 0, cap = 0;
    while ((step_rc = sqlite3_step(st)) == SQLITE_ROW) {
        bson_t doc;
        if (s_stored_doc(l, st, 0, &doc, "trial record", err) != 0) {
            rc = -1;
            break;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 256;
            docs = bson_realloc(docs, cap * sizeof *docs);
        }
        docs[n++] = bson_copy(&doc);
    }
    if (rc == 0 && step_rc != SQLITE_DONE)
        rc = s_db_error(l, err, "reading queued trials");
    sqlite3_reset(st);
    pthread_mutex_unlock(&l->lock);
    for (size_t i = 0; i < n; i++) {
        if (rc == 0 && fn(docs[i], user) != 0)
            rc = -1;
        bson_destroy(docs[i]);
    }
    bson_free(docs);
    return rc;
}

static int s_running_trials(xp_backend *b, xp_running_trial **out, size_t *n,
                            xp_error_t *err)
{
    xp_local *l = (xp_local *)b;
    int rc = 0;
    size_t count = 0, cap = 0;
    xp_running_trial *list = NULL;
    pthread_mutex_lock(&l->lock);
    sqlite3_stmt *st = s_stmt(l, S_RUNNING);
    int step_rc;
    while ((step_rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (count == cap) {
            cap = cap ? cap * 2 : 8;
            list = bson_realloc(list, cap * sizeof *list);
        }
        xp_running_trial *t = &list[count++];
        memset(t, 0, sizeof *t);
        t->trial_id = sqlite3_column_int64(st, 0);
        const unsigned char *host = sqlite3_column_text(st, 1);
        if (host)
            bson_strncpy(t->host, (const char *)host, sizeof t->host);
        t->pid = sqlite3_column_int64(st, 2);
        t->pstart = (uint64_t)sqlite3_column_int64(st, 3);
    }
    if (step_rc != SQLITE_DONE)
        rc = s_db_error(l, err, "reading running trials");
    sqlite3_reset(st);
    pthread_mutex_unlock(&l->lock);
    if (rc != 0) {
        bson_free(list);
        return -1;
    }
    *out = list;
    *n = count;
    return 0;
}

static int s_trial_interrupt(xp_backend *b, int64_t id, int64_t finished_ms,
                             const char *description, xp_error_t *err)
{
    xp_local *l = (xp_local *)b;
    int rc = -1;
    bson_t updated = BSON_INITIALIZER;
    pthread_mutex_lock(&l->lock);
    if (s_begin(l, err) != 0)
        goto cleanup;
    sqlite3_stmt *st = s_stmt(l, S_INTERRUPT);
    sqlite3_bind_int64(st, 1, id);
    int step_rc = sqlite3_step(st);
    if (step_rc == SQLITE_DONE) { /* finished meanwhile: nothing to do */
        sqlite3_reset(st);
        rc = s_commit(l, err);
        goto cleanup;
    }
    bson_t doc;
    if (step_rc != SQLITE_ROW) {
        s_db_error(l, err, "reading running trial");
        sqlite3_reset(st);
        goto cleanup;
    }
    if (s_stored_doc(l, st, 0, &doc, "trial record", err) != 0 ||
        xp__record_interrupt(&doc, finished_ms, description, &updated, err) !=
            0) {
        sqlite3_reset(st);
        goto cleanup;
    }
    sqlite3_reset(st);
    st = s_stmt(l, S_UPDATE_TRIAL);
    sqlite3_bind_text(st, 1, XP_STATUS_INTERRUPTED_NAME, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, bson_get_data(&updated), (int)updated.len,
                      SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, id);
    if (s_step_done(l, st, "marking trial interrupted", err) != 0)
        goto cleanup;
    rc = s_commit(l, err);
cleanup:
    if (rc != 0)
        s_rollback(l);
    pthread_mutex_unlock(&l->lock);
    bson_destroy(&updated);
    return rc;
}

static int s_trial_running(xp_backend *b, const xp_trial_record *rec,
                           xp_error_t *err)
{
    xp_local *l = (xp_local *)b;
    bson_t doc = BSON_INITIALIZER;
    if (xp__record_encode(rec, &doc, err) != 0) {
        bson_destroy(&doc);
        return -1;
    }
    pthread_mutex_lock(&l->lock);
    int rc = s_begin(l, err);
    if (rc == 0) {
        sqlite3_stmt *st = s_stmt(l, S_MARK_RUNNING);
        sqlite3_bind_blob(st, 1, bson_get_data(&doc), (int)doc.len,
                          SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, rec->trial_id);
        int step_rc = sqlite3_step(st);
        sqlite3_reset(st);
        rc = step_rc == SQLITE_DONE
                 ? s_commit(l, err)
                 : s_db_error(l, err, "marking trial running");
        if (step_rc != SQLITE_DONE)
            s_rollback(l);
    }
    pthread_mutex_unlock(&l->lock);
    bson_destroy(&doc);
    return rc;
}

static int s_step_hash_get(xp_backend *b, const char *step,
                           const uint8_t input[16], uint8_t output[16],
                           bool *found, xp_error_t *err)
{
    xp_local *l = (xp_local *)b;
    int rc = 0;
    *found = false;
    pthread_mutex_lock(&l->lock);
    sqlite3_stmt *st = s_stmt(l, S_HASH_GET);
    sqlite3_bind_int64(st, 1, s_hash_key(step, input));
    sqlite3_bind_text(st, 2, step, -1, SQLITE_STATIC);
    int step_rc = sqlite3_step(st);
    if (step_rc == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 16) {
        memcpy(output, sqlite3_column_blob(st, 0), 16);
        *found = true;
    } else if (step_rc != SQLITE_DONE && step_rc != SQLITE_ROW) {
        rc = s_db_error(l, err, "reading step hashes");
    }
    sqlite3_reset(st);
    pthread_mutex_unlock(&l->lock);
    return rc;
}

/* Writes path atomically (temporary file + rename) unless it exists. */
static void s_write_text_once(const char *path, const char *text)
{
    if (access(path, F_OK) == 0)
        return;
    char *tmp = bson_strdup_printf("%s.%ld.tmp", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (f) {
        bool ok = fputs(text, f) >= 0;
        ok = fclose(f) == 0 && ok;
        if (!ok || rename(tmp, path) != 0)
            unlink(tmp);
    }
    bson_free(tmp);
}

static int s_content_put(xp_backend *b, const char *kind, const char *hash,
                         const bson_t *doc, const char *text, xp_error_t *err)
{
    xp_local *l = (xp_local *)b;
    pthread_mutex_lock(&l->lock);
    sqlite3_stmt *st = s_stmt(l, S_CONTENT_PUT);
    sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, bson_get_data(doc), (int)doc->len, SQLITE_STATIC);
    int step_rc = sqlite3_step(st);
    sqlite3_reset(st);
    pthread_mutex_unlock(&l->lock);
    if (step_rc != SQLITE_DONE)
        return s_db_error(l, err, "storing content");
    /* Human-diffable copies: <dir>/<kind>/<hash>.<ext>, indexed by trial
     * in trials.tsv (see s_index_line). */
    if (text) {
        char *dir = bson_strdup_printf("%s/%s", l->base.dir, kind);
        if (xp__mkdir_p(dir, NULL) == 0) {
            char *path =
                bson_strdup_printf("%s/%s.%s", dir, hash, s_text_ext(kind));
            s_write_text_once(path, text);
            bson_free(path);
        }
        bson_free(dir);
    }
    return 0;
}

static int s_content_get(xp_backend *b, const char *hash, bson_t *out,
                         xp_error_t *err)
{
    xp_local *l = (xp_local *)b;
    int rc = -1;
    pthread_mutex_lock(&l->lock);
    sqlite3_stmt *st = s_stmt(l, S_CONTENT_GET);
    sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
    int step_rc = sqlite3_step(st);
    if (step_rc == SQLITE_ROW) {
        bson_t doc;
        if (s_stored_doc(l, st, 0, &doc, "content", err) == 0) {
            bson_copy_to(&doc, out);
            rc = 0;
        }
    } else if (step_rc == SQLITE_DONE) {
        xp__error(err, XP_DOMAIN_BACKEND, XP_ENOTFOUND,
                  "no stored content with hash %s", hash);
    } else {
        s_db_error(l, err, "reading content");
    }
    sqlite3_reset(st);
    pthread_mutex_unlock(&l->lock);
    return rc;
}

#define XP_CHECKPOINT_FRAMES 1000
#define XP_CHECKPOINT_RESTART 16384 /* 64 MiB of 4 KiB pages */

static void *s_checkpointer(void *arg)
{
    xp_local *l = arg;
    pthread_mutex_lock(&l->ckpt_lock);
    while (!l->ckpt_stop) {
        if (l->ckpt_frames < XP_CHECKPOINT_FRAMES) {
            pthread_cond_wait(&l->ckpt_cond, &l->ckpt_lock);
            continue;
        }
        l->ckpt_frames = 0;
        pthread_mutex_unlock(&l->ckpt_lock);
        /* PASSIVE never blocks writers; frames written meanwhile wait for
         * the next round. A writer that never pauses keeps it from ever
         * catching up, and the WAL only restarts from its beginning once
         * a checkpoint has caught up: past XP_CHECKPOINT_RESTART frames a
         * RESTART checkpoint waits for the writer once (milliseconds) so
         * that the WAL stays bounded. */
        int frames = 0;
        sqlite3_wal_checkpoint_v2(l->ckpt_db, NULL, SQLITE_CHECKPOINT_PASSIVE,
                                  &frames, NULL);
        if (frames >= XP_CHECKPOINT_RESTART)
            sqlite3_wal_checkpoint_v2(l->ckpt_db, NULL,
                                      SQLITE_CHECKPOINT_RESTART, NULL, NULL);
        pthread_mutex_lock(&l->ckpt_lock);
    }
    pthread_mutex_unlock(&l->ckpt_lock);
    return NULL;
}

static int s_wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
    (void)db;
    (void)name;
    xp_local *l = arg;
    /* Every XP_CHECKPOINT_FRAMES new frames, not after every commit once
     * the WAL holds that many: each checkpoint first sorts the index of
     * the whole WAL, and waking it per commit cost more than the trials
     * themselves (830 checkpoints for 2,000 trials). A smaller WAL than
     * last time has restarted from its beginning. */
    if (frames < l->ckpt_asked)
        l->ckpt_asked = 0;
    if (frames - l->ckpt_asked < XP_CHECKPOINT_FRAMES)
        return SQLITE_OK;
    l->ckpt_asked = frames;
    pthread_mutex_lock(&l->ckpt_lock);
    l->ckpt_frames = frames;
    pthread_cond_signal(&l->ckpt_cond);
    pthread_mutex_unlock(&l->ckpt_lock);
    return SQLITE_OK;
}

/* Without the thread (it could not start) SQLite's own automatic
 * checkpoint stays on. */
static void s_checkpointer_start(xp_local *l)
{
    pthread_mutex_init(&l->ckpt_lock, NULL);
    pthread_cond_init(&l->ckpt_cond, NULL);
    if (sqlite3_open_v2(l->path, &l->ckpt_db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        sqlite3_close(l->ckpt_db);
        l->ckpt_db = NULL;
        return;
    }
    sqlite3_busy_timeout(l->ckpt_db, XP_BUSY_TIMEOUT_MS);
    /* A connection that has never read the database has not opened its
     * WAL, and SQLite 3.40's checkpoint then does nothing at all: the WAL
     * of a long sweep grew to gigabytes. */
    if (sqlite3_exec(l->ckpt_db, "SELECT count(*) FROM sqlite_master", NULL,
                     NULL, NULL) != SQLITE_OK) {
        sqlite3_close(l->ckpt_db);
        l->ckpt_db = NULL;
        return;
    }
    if (pthread_create(&l->ckpt_thread, NULL, s_checkpointer, l) != 0) {
        sqlite3_close(l->ckpt_db);
        l->ckpt_db = NULL;
        return;
    }
    l->ckpt_running = true;
    sqlite3_wal_hook(l->db, s_wal_hook, l);
}

static void s_checkpointer_stop(xp_local *l)
{
    if (!l->ckpt_running)
        return;
    pthread_mutex_lock(&l->ckpt_lock);
    l->ckpt_stop = true;
    pthread_cond_signal(&l->ckpt_cond);
    pthread_mutex_unlock(&l->ckpt_lock);
    pthread_join(l->ckpt_thread, NULL);
    sqlite3_close(l->ckpt_db);
    l->ckpt_running = false;
    pthread_mutex_destroy(&l->ckpt_lock);
    pthread_cond_destroy(&l->ckpt_cond);
}

/* ---------------------------------------------------------------- memo */

/* Prepares the memo statements once the table exists; create makes it
 * (a writer's first memo write). 1 ready, 0 no table, -1 error. l->lock
 * held. */
static int s_memo_ready(xp_local *l, bool create, xp_error_t *err)
{
    if (l->memo_st[0])
        return 1;
    if (create &&
        sqlite3_exec(l->db, s_memo_schema, NULL, NULL, NULL) != SQLITE_OK)
        return s_db_error(l, err, "creating the memo table");
    for (int i = 0; i < S_MEMO_COUNT; i++) {
        if (sqlite3_prepare_v2(l->db, s_memo_sql[i], -1, &l->memo_st[i],
                               NULL) == SQLITE_OK)
            continue;
        bool absent = strstr(sqlite3_errmsg(l->db), "no such table") != NULL;
        int rc = absent ? 0 : s_db_error(l, err, "reading memo entries");
        for (int k = 0; k <= i; k++) {
            sqlite3_finalize(l->memo_st[k]);
            l->memo_st[k] = NULL;
        }
        return rc;
    }
    return 1;
}

static sqlite3_stmt *s_memo_stmt(xp_local *l, int which)
{
    sqlite3_stmt *st = l->memo_st[which];
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

/* An entry from a row of (key?, trial, output) starting at column col. */
static bool s_memo_row(sqlite3_stmt *st, int col, xp_memo_entry *e)
{
    if (sqlite3_column_bytes(st, col + 1) != 16)
        return false;
    e->trial = sqlite3_column_int64(st, col);
    memcpy(e->output, sqlite3_column_blob(st, col + 1), 16);
    return e->trial >= 0;
}

static int s_memo_get(xp_backend *b, xp_memo_entry *e, size_t n, bool *found,
                      xp_error_t *err)
{
    xp_local *l = (xp_local *)b;
    int rc = 0;
    pthread_mutex_lock(&l->lock);
    int ready = s_memo_ready(l, false, err);
    if (ready <= 0) {
        pthread_mutex_unlock(&l->lock);
        return ready;
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        sqlite3_stmt *st = s_memo_stmt(l, S_MEMO_GET);
        sqlite3_bind_blob(st, 1, e[i].key, 16, SQLITE_STATIC);
        int step_rc = sqlite3_step(st);
        if (step_rc == SQLITE_ROW)
            found[i] = s_memo_row(st, 0, &e[i]);
        else if (step_rc != SQLITE_DONE)
            rc = s_db_error(l, err, "reading memo entries");
        sqlite3_reset(st);
    }
    pthread_mutex_unlock(&l->lock);
    return rc;
}

static int s_memo_put(xp_backend *b, const xp_memo_entry *e, size_t n,
                      xp_error_t *err)
{
    xp_local *l = (xp_local *)b;
    int rc = -1;
    pthread_mutex_lock(&l->lock);
    if (s_memo_ready(l, true, err) <= 0 || s_begin(l, err) != 0)
        goto done;
    for (size_t i = 0; i < n; i++) {
        sqlite3_stmt *st = s_memo_stmt(l, S_MEMO_PUT);
        sqlite3_bind_blob(st, 1, e[i].key, 16, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, e[i].trial);
        sqlite3_bind_blob(st, 3, e[i].output, 16, SQLITE_STATIC);
        if (s_step_done(l, st, "storing memo entries", err) != 0) {
            s_rollback(l);
            goto done;
        }
    }
    rc = s_commit(l, err);
    if (rc != 0)
        s_rollback(l);
done:
    pthread_mutex_unlock(&l->lock);
    return rc;
}

static int s_memo_each(xp_backend *b,
                       int (*fn)(const xp_memo_entry *e, void *user),
                       void *user, xp_error_t *err)
{
    xp_local *l = (xp_local *)b;
    pthread_mutex_lock(&l->lock);
    int ready = s_memo_ready(l, false, err);
    if (ready <= 0) {
        pthread_mutex_unlock(&l->lock);
        return ready;
    }
    /* Collected first: fn may call back into the backend. */
    xp_memo_entry *all = NULL;
    size_t n = 0, cap = 0;
    int rc = 0, step_rc;
    sqlite3_stmt *st = s_memo_stmt(l, S_MEMO_ALL);
    while ((step_rc = sqlite3_step(st)) == SQLITE_ROW) {
        xp_memo_entry e;
        if (sqlite3_column_bytes(st, 0) != 16 || !s_memo_row(st, 1, &e))
            continue;
        memcpy(e.key, sqlite3_column_blob(st, 0), 16);
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            all = bson_realloc(all, cap * sizeof *all);
        }
        all[n++] = e;
    }
    if (step_rc != SQLITE_DONE)
        rc = s_db_error(l, err, "listing memo entries");
    sqlite3_reset(st);
    pthread_mutex_unlock(&l->lock);
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (fn(&all[i], user) != 0)
            break;
    bson_free(all);
    return rc;
}

static int s_memo_delete(xp_backend *b, const uint8_t (*keys)[16], size_t n,
                         xp_error_t *err)
{
    xp_local *l = (xp_local *)b;
    int rc = -1;
    pthread_mutex_lock(&l->lock);
    int ready = s_memo_ready(l, false, err);
    if (ready <= 0) {
        rc = ready;
        goto done;
    }
    if (s_begin(l, err) != 0)
        goto done;
    for (size_t i = 0; i < n; i++) {
        sqlite3_stmt *st = s_memo_stmt(l, S_MEMO_DELETE);
        sqlite3_bind_blob(st, 1, keys[i], 16, SQLITE_STATIC);
        if (s_step_done(l, st, "removing memo entries", err) != 0) {
            s_rollback(l);
            goto done;
        }
    }
    rc = s_commit(l, err);
    if (rc != 0)
        s_rollback(l);
done:
    pthread_mutex_unlock(&l->lock);
    return rc;
}

static int s_persisted_drop(xp_backend *b, int64_t trial, xp_error_t *err)
{
    xp_local *l = (xp_local *)b;
    sqlite3_stmt *st = NULL;
    int rc = -1;
    pthread_mutex_lock(&l->lock);
    if (sqlite3_prepare_v2(l->db, "DELETE FROM persisted WHERE trial = ?", -1,
                           &st, NULL) != SQLITE_OK) {
        s_db_error(l, err, "removing persisted values");
        goto done;
    }
    sqlite3_bind_int64(st, 1, trial);
    rc = s_step_done(l, st, "removing persisted values", err);
done:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&l->lock);
    return rc;
}

static void s_close(xp_backend *b)
{
    xp_local *l = (xp_local *)b;
    if (l->group) { /* never ended: nothing of it is stored */
        s_exec(l, S_ROLLBACK, NULL);
        bson_string_free(l->group_index, true);
    }
    s_checkpointer_stop(l);
    for (int i = 0; i < S_COUNT; i++)
        sqlite3_finalize(l->stmt[i]);
    for (int i = 0; i < S_MEMO_COUNT; i++)
        sqlite3_finalize(l->memo_st[i]);
    sqlite3_close(l->db);
    if (l->index_fd > 0)
        close(l->index_fd);
    pthread_mutex_destroy(&l->lock);
    xp__projection_cache_destroy(&l->proj);
    bson_free(l->path);
    bson_free(l);
}

static const xp_backend_ops s_ops = {
    .name = "local",
    .trial_begin = s_trial_begin,
    .trial_finish = s_trial_finish,
    .metric_flush = s_metric_flush,
    .trial_get = s_trial_get,
    .trials_each = s_trials_each,
    .trials_each_bytes = s_trials_each_bytes,
    .trials_query = s_trials_query,
    .last_id = s_last_id,
    .metric_read = s_metric_read,
    .metric_names = s_metric_names,
    .persisted_read = s_persisted_read,
    .running_trials = s_running_trials,
    .queued_trials = s_queued_trials,
    .trial_running = s_trial_running,
    .group_begin = s_group_begin,
    .group_end = s_group_end,
    .trial_interrupt = s_trial_interrupt,
    .step_hash_get = s_step_hash_get,
    .content_put = s_content_put,
    .content_get = s_content_get,
    .memo_get = s_memo_get,
    .memo_put = s_memo_put,
    .memo_each = s_memo_each,
    .memo_delete = s_memo_delete,
    .persisted_drop = s_persisted_drop,
    .close = s_close,
};

/* Reads meta value key into buf; 1 found, 0 absent, -1 error. */
static int s_meta_get(xp_local *l, const char *key, char *buf, size_t size,
                      xp_error_t *err)
{
    sqlite3_stmt *st;
    /* No meta table: not an xp store (the caller says so). */
    if (sqlite3_prepare_v2(l->db, "SELECT value FROM meta WHERE key = ?", -1,
                           &st, NULL) != SQLITE_OK)
        return (sqlite3_errcode(l->db) & 0xff) == SQLITE_ERROR
                   ? 0
                   : s_db_error(l, err, "reading store metadata");
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int found = 0;
    if (rc == SQLITE_ROW) {
        const unsigned char *v = sqlite3_column_text(st, 0);
        bson_strncpy(buf, v ? (const char *)v : "", size);
        found = 1;
    } else if (rc != SQLITE_DONE) {
        found = s_db_error(l, err, "reading store metadata");
    }
    sqlite3_finalize(st);
    return found;
}

static int s_meta_set(xp_local *l, const char *key, const char *value,
                      xp_error_t *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(l->db, "INSERT INTO meta(key, value) VALUES (?, ?)",
                           -1, &st, NULL) != SQLITE_OK)
        return s_db_error(l, err, "writing store metadata");
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : s_db_error(l, err, "writing metadata");
}

static int s_exec_retry(sqlite3 *db, const char *sql)
{
    int rc = SQLITE_BUSY;
    for (int waited_ms = 0; waited_ms < XP_BUSY_TIMEOUT_MS; waited_ms += 5) {
        rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
        if ((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED)
            break;
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return rc;
}

/* Checks that an existing store is an xp store of this experiment and
 * schema; reads only. */
static int s_check_meta(xp_local *l, const char *id, xp_error_t *err)
{
    char value[256];
    int found = s_meta_get(l, "format", value, sizeof value, err);
    if (found < 0)
        return -1;
    if (!found || strcmp(value, XP_LOCAL_FORMAT) != 0)
        return xp__error(err, XP_DOMAIN_BACKEND, XP_ECORRUPT,
                         "%s is not an xp store (format '%s')", l->path,
                         found ? value : "none");
    if (s_meta_get(l, "schema", value, sizeof value, err) != 1 ||
        strcmp(value, XP_LOCAL_SCHEMA) != 0)
        return xp__error(err, XP_DOMAIN_BACKEND, XP_ECORRUPT,
                         "%s has unsupported schema version '%s' (this "
                         "libxp reads version " XP_LOCAL_SCHEMA ")",
                         l->path, value);
    if (s_meta_get(l, "experiment", value, sizeof value, err) != 1 ||
        strcmp(value, id) != 0)
        return xp__error(err, XP_DOMAIN_BACKEND, XP_ECORRUPT,
                         "%s belongs to experiment '%s', not '%s'", l->path,
                         value, id);
    return 0;
}

/* Number of tables in the database, -1 on error (e.g. not a database). */
static int s_table_count(xp_local *l, xp_error_t *err)
{
    sqlite3_stmt *st;
    int count = -1;
    if (sqlite3_prepare_v2(l->db,
                           "SELECT count(*) FROM sqlite_master WHERE type = "
                           "'table'",
                           -1, &st, NULL) != SQLITE_OK)
        return s_db_error(l, err, "opening store");
    int rc;
    for (int waited = 0;
         (rc = sqlite3_step(st)) == SQLITE_BUSY && waited < XP_BUSY_TIMEOUT_MS;
         waited += 5) {
        sqlite3_reset(st);
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (rc == SQLITE_ROW)
        count = sqlite3_column_int(st, 0);
    else
        s_db_error(l, err, "opening store");
    sqlite3_finalize(st);
    return count;
}

/* Creates the schema of a new store in one transaction; when another
 * process created it meanwhile, checks it instead. */
static int s_init_schema(xp_local *l, const char *id, xp_error_t *err)
{
    char value[256];
    if (s_exec_retry(l->db, "BEGIN IMMEDIATE") != SQLITE_OK)
        return s_db_error(l, err, "opening store");
    int rc = -1;
    int found = s_table_count(l, err) > 0
                    ? s_meta_get(l, "format", value, sizeof value, err)
                    : 0;
    if (found < 0)
        goto cleanup;
    if (found) {
        rc = s_check_meta(l, id, err);
        goto cleanup;
    }
    if (sqlite3_exec(l->db, s_schema, NULL, NULL, NULL) != SQLITE_OK) {
        s_db_error(l, err, "creating tables");
        goto cleanup;
    }
    if (s_meta_set(l, "format", XP_LOCAL_FORMAT, err) != 0 ||
        s_meta_set(l, "schema", XP_LOCAL_SCHEMA, err) != 0 ||
        s_meta_set(l, "experiment", id, err) != 0 ||
        s_meta_set(l, "created_by", "libxp " XP_VERSION_STRING, err) != 0)
        goto cleanup;
    rc = 0;
cleanup:
    sqlite3_exec(l->db, rc == 0 ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* ---------------------------------------------------------------- trials.tsv
 * repair */

/* Largest trial id among the complete lines at the end of trials.tsv
 * (lines are in id order, give or take the interleaving of writers that
 * predate its lock); a last line cut short by a crash is cut off. -1 when
 * the file cannot be read. */
static int64_t s_index_last(int fd)
{
    struct stat sb;
    char buf[4096];
    if (fstat(fd, &sb) != 0)
        return -1;
    off_t from =
        sb.st_size > (off_t)sizeof buf ? sb.st_size - (off_t)sizeof buf : 0;
    size_t n = (size_t)(sb.st_size - from);
    if (n == 0)
        return 0;
    if (pread(fd, buf, n, from) != (ssize_t)n)
        return -1;
    size_t end = n; /* just past the last complete line */
    while (end > 0 && buf[end - 1] != '\n')
        end--;
    if (end == 0 && from > 0)
        return -1; /* a 4 KiB line: not one of ours */
    if (end < n && ftruncate(fd, from + (off_t)end) != 0)
        return -1;
    size_t i = 0;
    if (from > 0) /* the window may start inside a line */
        i = (size_t)((char *)memchr(buf, '\n', end) - buf) + 1;
    int64_t last = 0;
    while (i < end) {
        int64_t id = 0;
        bool digits = false;
        for (; buf[i] >= '0' && buf[i] <= '9' && id < INT64_MAX / 10; i++) {
            id = id * 10 + (buf[i] - '0');
            digits = true;
        }
        if (digits && id > last)
            last = id;
        i = (size_t)((char *)memchr(buf + i, '\n', end - i) - buf) + 1;
    }
    return last;
}

/* Appends the lines of every stored trial after id `after` (l->lock and
 * the trials.tsv lock held). */
static void s_index_restore(xp_local *l, int64_t after)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(
            l->db, "SELECT id, doc FROM trials WHERE id > ? ORDER BY id", -1,
            &st, NULL) != SQLITE_OK)
        return;
    sqlite3_bind_int64(st, 1, after);
    bson_string_t *lines = bson_string_new(NULL);
    int64_t first = 0, last = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        bson_t doc, none = BSON_INITIALIZER;
        bool ok = s_stored_doc(l, st, 1, &doc, "trial record", NULL) == 0;
        char line[128];
        last = sqlite3_column_int64(st, 0);
        first = first ? first : last;
        s_index_line(last, ok ? &doc : &none, line);
        bson_string_append(lines, line);
        if (lines->len >= 65536) {
            s_index_write(l, lines->str, lines->len);
            bson_string_truncate(lines, 0);
        }
    }
    sqlite3_finalize(st);
    s_index_write(l, lines->str, lines->len);
    bson_string_free(lines, true);
    if (first)
        xp__log(XP_LOG_WARNING,
                "%s/trials.tsv: restored the lines of trials %lld-%lld, "
                "which the database holds",
                l->base.dir, (long long)first, (long long)last);
}

/* On a writer's open: trials the database holds past the last line of
 * trials.tsv get their lines, in id order. The largest stored id is read
 * before the lock is taken: a trial committed before that read is either
 * listed by the time the lock is free or its writer is gone. */
static void s_index_repair(xp_local *l)
{
    int64_t stored = 0;
    if (s_last_id(&l->base, &stored, NULL) != 0 || stored == 0)
        return;
    pthread_mutex_lock(&l->lock);
    bool locked = s_index_lock(l);
    int64_t listed = locked ? s_index_last(l->index_fd) : -1;
    if (listed < 0)
        xp__log(XP_LOG_DEBUG, "cannot check %s/trials.tsv", l->base.dir);
    else if (listed < stored)
        s_index_restore(l, listed);
    s_index_unlock(l, locked);
    pthread_mutex_unlock(&l->lock);
}

/* ---------------------------------------------------------------- opening */

enum { S_OPEN_CREATE, S_OPEN_EXISTING, S_OPEN_READ };

/* What trials leave beside the database: "trials.tsv" with lines, files
 * in "code/" or "environment/"; NULL when none. */
static const char *s_trial_files(const xp_local *l)
{
    struct stat sb;
    char *path = bson_strdup_printf("%s/trials.tsv", l->base.dir);
    bool listed = stat(path, &sb) == 0 && sb.st_size > 0;
    bson_free(path);
    if (listed)
        return "trials.tsv";
    static const char *const kinds[] = {"code/", "environment/"};
    for (size_t k = 0; k < 2; k++) {
        path = bson_strdup_printf("%s/%s", l->base.dir, kinds[k]);
        DIR *d = opendir(path);
        bson_free(path);
        struct dirent *e;
        bool found = false;
        while (d && !found && (e = readdir(d)) != NULL)
            found = e->d_name[0] != '.';
        if (d)
            closedir(d);
        if (found)
            return kinds[k];
    }
    return NULL;
}

/* Free space a reader wants before SQLite creates the -shm index. */
#define XP_READER_ROOM (1024 * 1024)

/* Whether this process may create files in the store's directory and
 * write its database (effective ids, mount flags, free space). */
static bool s_may_write(const xp_local *l)
{
    struct statvfs vfs;
    if (faccessat(AT_FDCWD, l->base.dir, W_OK, AT_EACCESS) != 0 ||
        faccessat(AT_FDCWD, l->path, W_OK, AT_EACCESS) != 0)
        return false;
    return statvfs(l->base.dir, &vfs) != 0 ||
           (uint64_t)vfs.f_bavail * vfs.f_frsize >= XP_READER_ROOM;
}

/* "file:" URI of path with immutable=1. Caller frees. */
static char *s_immutable_uri(const char *path)
{
    bson_string_t *s = bson_string_new(path[0] == '/' ? "file://" : "file:");
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
            (*p >= '0' && *p <= '9') || strchr("/-._~", *p))
            bson_string_append_c(s, (char)*p);
        else
            bson_string_append_printf(s, "%%%02X", *p);
    }
    bson_string_append(s, "?immutable=1");
    return bson_string_free(s, false);
}

static int s_connect(xp_local *l, const char *name, int flags)
{
    int rc = sqlite3_open_v2(name, &l->db, flags | SQLITE_OPEN_NOMUTEX, NULL);
    if (l->db) {
        sqlite3_busy_timeout(l->db, XP_BUSY_TIMEOUT_MS);
        sqlite3_extended_result_codes(l->db, 1);
    }
    return rc;
}

/* Opens the database read-only. SQLite reads a WAL database through its
 * -shm index and creates it (and -wal) when absent: fine where this
 * process may write, but not on a read-only mount, in another user's
 * store (the files would stay, and could lock the owner out) or on a full
 * disk. There, when neither exists, no commit is outside the database
 * file: it is opened immutable. The same goes when the first read fails
 * for want of the index. */
static int s_connect_read_only(xp_local *l, xp_error_t *err)
{
    char *wal = bson_strdup_printf("%s-wal", l->path);
    char *shm = bson_strdup_printf("%s-shm", l->path);
    struct stat sb;
    bool logged = stat(wal, &sb) == 0 && sb.st_size > 0;
    bool indexed = stat(shm, &sb) == 0;
    bson_free(wal);
    bson_free(shm);
    bool immutable = !logged && !indexed && !s_may_write(l);
    for (;;) {
        char *uri = immutable ? s_immutable_uri(l->path) : NULL;
        int rc = s_connect(l, uri ? uri : l->path,
                           SQLITE_OPEN_READONLY | (uri ? SQLITE_OPEN_URI : 0));
        bson_free(uri);
        if (rc == SQLITE_OK && s_table_count(l, NULL) >= 0)
            return 0;
        if (immutable || logged)
            return s_db_error(l, err, "opening store read-only");
        sqlite3_close(l->db);
        l->db = NULL;
        immutable = true;
    }
}

/* Makes a store ready for trials: WAL mode and, on a new one, the
 * schema. An existing store was checked already: nothing is written. */
static int s_ready_for_writing(xp_local *l, const char *id, int tables,
                               xp_error_t *err)
{
    /* WAL: readers never block the writer; NORMAL sync is safe against
     * process crashes (the last commits may be lost on power failure).
     * Switching a new database to WAL needs an exclusive lock that the
     * busy handler does not wait for: retry while other processes open
     * the same store. */
    if (s_exec_retry(l->db, "PRAGMA journal_mode=WAL; PRAGMA "
                            "synchronous=NORMAL; PRAGMA "
                            "journal_size_limit=67108864;") != SQLITE_OK)
        return s_db_error(l, err, "opening store");
    return tables > 0 ? 0 : s_init_schema(l, id, err);
}

/* Fails unless the store at l->path exists, or may be created (mode
 * S_OPEN_CREATE, no trial files beside it: then its directory is made). */
static int s_find_store(xp_local *l, const char *id, const char *root, int mode,
                        xp_error_t *err)
{
    struct stat sb;
    bool exists = stat(l->path, &sb) == 0;
    const char *files = exists ? NULL : s_trial_files(l);
    if (files) /* a writer creating the store meanwhile made it first */
        exists = stat(l->path, &sb) == 0;
    if (exists && !S_ISREG(sb.st_mode))
        return xp__error(err, XP_DOMAIN_BACKEND, XP_ECORRUPT,
                         "%s is not a regular file", l->path);
    if (exists)
        return 0;
    if (files)
        return xp__error(err, XP_DOMAIN_BACKEND, XP_ECORRUPT,
                         "%s is missing but %s/%s holds trials of experiment "
                         "'%s' (restore the database; nothing was written)",
                         l->path, l->base.dir, files, id);
    if (mode != S_OPEN_CREATE)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_ENOTFOUND,
                         "experiment '%s' not found in %s", id, root);
    return xp__mkdir_p(l->base.dir, err);
}

/* Tables of the open database, checked: an xp store of experiment id, or
 * an empty database that may become one. */
static int s_check_store(xp_local *l, const char *id, int mode, xp_error_t *err)
{
    int tables = s_table_count(l, err);
    const char *files = tables == 0 ? s_trial_files(l) : NULL;
    /* A writer creating the store commits its schema before any trial
     * file exists: count again. */
    if (files)
        tables = s_table_count(l, err);
    if (tables < 0)
        return -1;
    if (tables > 0)
        return s_check_meta(l, id, err) == 0 ? tables : -1;
    /* Empty (a zero-length file, say): schema and ids from 1 again would
     * list trial 1 twice. */
    if (files)
        return xp__error(err, XP_DOMAIN_BACKEND, XP_ECORRUPT,
                         "%s is empty but %s/%s holds trials of experiment "
                         "'%s' (restore the database; nothing was written)",
                         l->path, l->base.dir, files, id);
    if (mode != S_OPEN_CREATE)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_ENOTFOUND,
                         "experiment '%s' not found in %s (%s is empty)", id,
                         l->base.dir, XP_LOCAL_FILE);
    return 0;
}

/* A store is checked before anything writes to it, so a foreign, damaged
 * or emptied file is left exactly as it was; a reader writes nothing. */
static int s_open(xp_backend **out, const char *id, const char *root, int mode,
                  xp_error_t *err)
{
    *out = NULL;
    xp_local *l = bson_malloc0(sizeof *l);
    pthread_mutex_init(&l->lock, NULL);
    l->base.ops = &s_ops;
    size_t rlen = strlen(root);
    while (rlen > 1 && root[rlen - 1] == '/')
        rlen--;
    char *top = bson_strndup(root, rlen);
    l->base.dir = bson_strdup_printf("%s/%s", top, id);
    l->base.description = bson_strdup_printf("local:%s", l->base.dir);
    l->path = bson_strdup_printf("%s/" XP_LOCAL_FILE, l->base.dir);
    bool reader = mode == S_OPEN_READ;
    int tables = -1;
    if (s_find_store(l, id, top, mode, err) != 0)
        goto fail;
    if (reader ? s_connect_read_only(l, err) != 0
               : s_connect(l, l->path,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) !=
                     SQLITE_OK) {
        if (!reader)
            s_db_error(l, err, "opening store");
        goto fail;
    }
    if ((tables = s_check_store(l, id, mode, err)) < 0 ||
        (!reader && s_ready_for_writing(l, id, tables, err) != 0))
        goto fail;
    /* Pages are allocated as they are read, up to this bound. A reader
     * (the dashboard) scans the whole history for a page that filters or
     * sorts: with the database in its cache, the next scans skip copying
     * it from the kernel again (until another process commits, when SQLite
     * drops the cache). */
    sqlite3_exec(l->db,
                 reader ? "PRAGMA cache_size=-" XP_LOCAL_READER_CACHE_KIB
                        : "PRAGMA cache_size=-16384",
                 NULL, NULL, NULL);
    for (int i = 0; i < S_COUNT; i++) {
        if (sqlite3_prepare_v3(l->db, s_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                               &l->stmt[i], NULL) != SQLITE_OK) {
            s_db_error(l, err, "preparing statements");
            goto fail;
        }
    }
    if (!reader) {
        s_index_repair(l);
        s_checkpointer_start(l);
    }
    bson_free(top);
    *out = &l->base;
    return 0;
fail:
    bson_free(top);
    bson_free(l->base.dir);
    bson_free(l->base.description);
    s_close(&l->base);
    return -1;
}

int xp__backend_local_open(xp_backend **out, const char *id, const char *root,
                           bool must_exist, xp_error_t *err)
{
    return s_open(out, id, root, must_exist ? S_OPEN_EXISTING : S_OPEN_CREATE,
                  err);
}

int xp__backend_local_open_reader(xp_backend **out, const char *id,
                                  const char *root, xp_error_t *err)
{
    return s_open(out, id, root, S_OPEN_READ, err);
}
