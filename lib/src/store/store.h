/* store/store.h — storage of experiments: the backend handle and
 * the records it takes (local SQLite, MongoDB, Redis). */
#ifndef XP_STORE_STORE_H
#define XP_STORE_STORE_H

#include "xp/xp.h"

#include <bson/bson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct xp_backend xp_backend;

/* Metric points buffered by a trial, flushed in chunks. */
typedef struct {
    char *name;
    int64_t *epochs;
    double *values;
    size_t n, cap;
    int64_t next_chunk; /* sequence number of the next chunk written */
} xp_metric_buf;

typedef struct {
    const char *step;
    const xp_value *value;
} xp_persisted_item;

/* A trial still recorded as running, for interrupted-trial recovery. */
typedef struct {
    int64_t trial_id;
    char host[256];
    int64_t pid;
    uint64_t pstart;
} xp_running_trial;

/* Purity check record: step + input hash -> output hash. */
typedef struct {
    const char *step;
    uint8_t input[16];
    uint8_t output[16];
} xp_step_hash;

typedef struct {
    const char *name; /* "local", "mongodb", "redis" */
    /* Group commit (optional; NULL where every write is its own round
     * trip anyway). Between group_begin and group_end the writes of this
     * handle, made by one thread, commit together at group_end; each
     * operation still succeeds or fails alone. When group_end fails none
     * of them is stored. */
    int (*group_begin)(xp_backend *b, xp_error_t *err);
    int (*group_end)(xp_backend *b, xp_error_t *err);
    /* Allocates the next id atomically and stores `doc` (a trial document
     * without trial_id; the backend adds it) as running. */
    int (*trial_begin)(xp_backend *b, const bson_t *doc, int64_t *id,
                       xp_error_t *err);
    /* Stores the final document of trial id together with its remaining
     * metric points and persisted values, atomically where possible. */
    int (*trial_finish)(xp_backend *b, int64_t id, const bson_t *doc,
                        xp_metric_buf *metrics, size_t n_metrics,
                        const xp_persisted_item *persisted, size_t n_persisted,
                        const xp_step_hash *hashes, size_t n_hashes,
                        xp_error_t *err);
    /* Latest output hash recorded for (step, input hash); *found false
     * when none. */
    int (*step_hash_get)(xp_backend *b, const char *step,
                         const uint8_t input[16], uint8_t output[16],
                         bool *found, xp_error_t *err);
    /* Stores a content-addressed document (kind "code" or "environment")
     * once; text is its human-readable rendering. */
    int (*content_put)(xp_backend *b, const char *kind, const char *hash,
                       const bson_t *doc, const char *text, xp_error_t *err);
    /* Reads a content document; XP_ENOTFOUND when absent. out uninit. */
    int (*content_get)(xp_backend *b, const char *hash, bson_t *out,
                       xp_error_t *err);
    /* Writes one full chunk of metric points during a trial. */
    int (*metric_flush)(xp_backend *b, int64_t id, xp_metric_buf *m,
                        xp_error_t *err);
    /* Reads trial document; XP_ENOTFOUND when absent. out uninitialised. */
    int (*trial_get)(xp_backend *b, int64_t id, bson_t *out, xp_error_t *err);
    /* Calls fn for each trial document in id order. */
    int (*trials_each)(xp_backend *b, int (*fn)(const bson_t *doc, void *user),
                       void *user, xp_error_t *err);
    int (*last_id)(xp_backend *b, int64_t *id, xp_error_t *err);
    /* Appends all points of metric name of trial to (epochs, values);
     * *n 0 when the trial saved none. Caller frees the arrays. */
    int (*metric_read)(xp_backend *b, const char *name, int64_t trial,
                       int64_t **epochs, double **values, size_t *n,
                       xp_error_t *err);
    /* Persisted value of (step, trial); XP_ENOTFOUND when absent. */
    int (*persisted_read)(xp_backend *b, const char *step, int64_t trial,
                          xp_value *out, xp_error_t *err);
    /* Trials with status running. Caller frees *out. */
    int (*running_trials)(xp_backend *b, xp_running_trial **out, size_t *n,
                          xp_error_t *err);
    /* Calls fn for each trial a scheduler accepted and has not finished
     * (queued, or running with pid 0) in id order; fn may call back into
     * the backend. Optional: NULL when the backend cannot list them. */
    int (*queued_trials)(xp_backend *b,
                         int (*fn)(const bson_t *doc, void *user), void *user,
                         xp_error_t *err);
    /* A queued trial whose first step a scheduler dispatched: stores doc
     * (its record, status running, pid 0) unless the trial is no longer
     * queued. Optional: NULL leaves it queued until finished. */
    int (*trial_running)(xp_backend *b, int64_t id, const bson_t *doc,
                         xp_error_t *err);
    /* Sets status interrupted if the trial is still running. */
    int (*trial_interrupt)(xp_backend *b, int64_t id, int64_t finished_ms,
                           const char *description, xp_error_t *err);
    void (*close)(xp_backend *b);
} xp_backend_ops;

struct xp_backend {
    const xp_backend_ops *ops;
    char *description; /* for logs, password masked */
    char *dir;         /* local cache directory for text files, spools */
};

/* Opens the backend named by spec (NULL/"" = env XP_BACKEND, else
 * ./xp_cache/<id>/) for experiment id. */
int xp__backend_open(xp_backend **out, const char *id, const char *spec,
                     bool must_exist, xp_error_t *err);
/* As xp__backend_open with must_exist, for a handle that only reads:
 * nothing is written to the store (a local one is opened read-only, so
 * read-only mounts, other users' stores and full disks can be read). */
int xp__backend_open_reader(xp_backend **out, const char *id, const char *spec,
                            xp_error_t *err);
void xp__backend_close(xp_backend **b);
/* Calls fn with the id of every experiment the backend named by spec
 * holds (a local root's stores, MongoDB's xp.counters, Redis's
 * xp:experiments); fn returning non-zero stops. */
int xp__backend_experiments(const char *spec,
                            int (*fn)(const char *id, void *user), void *user,
                            xp_error_t *err);
int xp__backend_mongo_experiments(const char *uri,
                                  int (*fn)(const char *id, void *user),
                                  void *user, xp_error_t *err);
int xp__backend_redis_experiments(const char *uri,
                                  int (*fn)(const char *id, void *user),
                                  void *user, xp_error_t *err);
int xp__backend_local_open(xp_backend **out, const char *id, const char *dir,
                           bool must_exist, xp_error_t *err);
int xp__backend_local_open_reader(xp_backend **out, const char *id,
                                  const char *dir, xp_error_t *err);
/* Shared backends. uri is the full URI; cache_dir is this machine's
 * directory for the experiment (spool of unwritten records), to be copied
 * into b->dir. Errors never contain the URI's password. */
int xp__backend_mongo_open(xp_backend **out, const char *id, const char *uri,
                           const char *cache_dir, bool must_exist,
                           xp_error_t *err);
int xp__backend_redis_open(xp_backend **out, const char *id, const char *uri,
                           const char *cache_dir, bool must_exist,
                           xp_error_t *err);

#endif /* XP_STORE_STORE_H */
