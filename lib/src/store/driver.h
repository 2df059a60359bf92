/* store/driver.h — what a storage backend implements: the operations
 * table and the handle every backend embeds first. Included by
 * the files of lib/src/store/ only; everything else goes through store/store.h.
 */
#ifndef XP_STORE_DRIVER_H
#define XP_STORE_DRIVER_H

#include "store/store.h"

typedef struct {
    const char *name; /* "local", "mongodb", "redis" */
    /* Group commit (optional; NULL where every write is its own round
     * trip anyway). Between group_begin and group_end the writes of this
     * handle, made by one thread, commit together at group_end; each
     * operation still succeeds or fails alone. When group_end fails none
     * of them is stored. */
    int (*group_begin)(xp_backend *b, xp_error_t *err);
    int (*group_end)(xp_backend *b, xp_error_t *err);
    /* Allocates the next id atomically and stores rec (its trial_id
     * ignored) with that id, as rec->status says (running or queued). */
    int (*trial_begin)(xp_backend *b, const xp_trial_record *rec, int64_t *id,
                       xp_error_t *err);
    /* Stores a finished trial: its final record with its remaining metric
     * chunks, persisted values and step hashes, atomically where
     * possible. Idempotent: a spooled outcome may be written again. */
    int (*trial_finish)(xp_backend *b, const xp_trial_outcome *o,
                        xp_error_t *err);
    /* Latest output hash recorded for (step, input hash); *found false
     * when none. */
    int (*step_hash_get)(xp_backend *b, const char *step,
                         const uint8_t input[16], uint8_t output[16],
                         bool *found, xp_error_t *err);
    /* The same for n steps at once: found[i] and previous[i] for
     * (h[i].step, h[i].input). Optional: NULL asks step_hash_get once per
     * step. */
    int (*step_hashes_get)(xp_backend *b, const xp_step_hash *h, size_t n,
                           uint8_t (*previous)[16], bool *found,
                           xp_error_t *err);
    /* Stores a content-addressed document (kind "code" or "environment")
     * once; text is its human-readable rendering. */
    int (*content_put)(xp_backend *b, const char *kind, const char *hash,
                       const bson_t *doc, const char *text, xp_error_t *err);
    /* Reads a content document; XP_ENOTFOUND when absent. out uninit. */
    int (*content_get)(xp_backend *b, const char *hash, bson_t *out,
                       xp_error_t *err);
    /* Writes full chunks of metric points during a trial, together. */
    int (*metric_flush)(xp_backend *b, int64_t id,
                        const xp_metric_chunk *chunks, size_t n,
                        xp_error_t *err);
    /* Reads trial document; XP_ENOTFOUND when absent. out uninitialised. */
    int (*trial_get)(xp_backend *b, int64_t id, bson_t *out, xp_error_t *err);
    /* Calls fn for each trial record in id order: doc NULL for a trial
     * whose stored bytes are damaged (not a document), so that the
     * others are still read. */
    int (*trials_each)(xp_backend *b, xp_trial_fn fn, void *user,
                       xp_error_t *err);
    /* The same with each record's stored bytes, unchecked (store.h's
     * xp__store_trials_each_bytes). Optional: NULL uses trials_each. */
    int (*trials_each_bytes)(xp_backend *b, xp_trial_bytes_fn fn, void *user,
                             xp_error_t *err);
    /* One page of a history query (store.h's xp__store_trials_query):
     * fn for each record of the page, *matched set. Optional: NULL
     * streams trials_each through the evaluator. */
    int (*trials_query)(xp_backend *b, const xp_compiled_query *q,
                        xp_trial_fn fn, void *user, int64_t *matched,
                        xp_error_t *err);
    int (*last_id)(xp_backend *b, int64_t *id, xp_error_t *err);
    /* Appends all points of metric name of trial, in chunk order, to
     * out (nothing when the trial saved none). */
    int (*metric_read)(xp_backend *b, const char *name, int64_t trial,
                       xp_metric_points *out, xp_error_t *err);
    /* Calls fn with the name of each metric trial saved (each once, in
     * any order; len bytes, not NUL-terminated); fn non-zero stops.
     * Nothing for a trial without metrics, known or not. Optional: NULL
     * when the backend cannot list them. */
    int (*metric_names)(xp_backend *b, int64_t trial,
                        int (*fn)(const char *name, size_t len, void *user),
                        void *user, xp_error_t *err);
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
    /* A queued trial whose first step a scheduler dispatched: stores rec
     * (status running, pid 0) unless the trial is no longer queued.
     * Optional: NULL leaves it queued until finished. */
    int (*trial_running)(xp_backend *b, const xp_trial_record *rec,
                         xp_error_t *err);
    /* Sets status interrupted if the trial is still running. */
    int (*trial_interrupt)(xp_backend *b, int64_t id, int64_t finished_ms,
                           const char *description, xp_error_t *err);
    /* Memo entries (store.h). Optional, all four or none: NULL when the
     * backend keeps none. memo_get sets found[0..n). */
    int (*memo_get)(xp_backend *b, xp_memo_entry *e, size_t n, bool *found,
                    xp_error_t *err);
    int (*memo_put)(xp_backend *b, const xp_memo_entry *e, size_t n,
                    xp_error_t *err);
    int (*memo_each)(xp_backend *b,
                     int (*fn)(const xp_memo_entry *e, void *user), void *user,
                     xp_error_t *err);
    int (*memo_delete)(xp_backend *b, const uint8_t (*keys)[16], size_t n,
                       xp_error_t *err);
    /* Removes every persisted value of a trial. Optional. */
    int (*persisted_drop)(xp_backend *b, int64_t trial, xp_error_t *err);
    void (*close)(xp_backend *b);
} xp_backend_ops;

struct xp_backend {
    const xp_backend_ops *ops;
    char *description; /* for logs, password masked */
    char *dir;         /* local cache directory for text files, spools */
};

/* A shared backend as a module (util/module.h): libxp-mongodb.so and
 * libxp-redis.so, loaded by store.c when a backend argument names one.
 * open and experiments are the xp__backend_<name>_* functions below. */
typedef struct {
    int (*open)(xp_backend **out, const char *id, const char *uri,
                const char *cache_dir, bool must_exist, xp_error_t *err);
    int (*experiments)(const char *uri, int (*fn)(const char *id, void *user),
                       void *user, xp_error_t *err);
} xp_backend_module;

/* The backends' own open and list functions, picked by store.c from the
 * backend argument (the shared ones through their modules). */
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

#endif /* XP_STORE_DRIVER_H */
