/* store/store.h — the one way to storage: an experiment's store (local
 * SQLite, MongoDB or Redis, picked from the backend argument) and what it
 * takes and gives. The front layer keeps a finished trial the backend
 * cannot take in the spool, checks optional operations, and groups
 * writes; the backends' table is store/driver.h's, private to store/. */
#ifndef XP_STORE_STORE_H
#define XP_STORE_STORE_H

#include "xp/xp.h"

#include "query/query.h"
#include "store/metric.h"
#include "store/record.h"

#include <bson/bson.h>
#include <stdbool.h>
#include <stdint.h>

/* An experiment's store; opaque outside lib/src/store/. */
typedef struct xp_backend xp_backend;

/* A trial still recorded as running, for interrupted-trial recovery. */
typedef struct {
    int64_t trial_id;
    char host[256];
    int64_t pid;
    uint64_t pstart;
} xp_running_trial;

/* ---------------------------------------------------------------- open */

/* Opens the store named by spec (NULL/"": env XP_BACKEND, else
 * ./xp_cache/<id>/) for experiment id. Caller owns *out
 * (xp__store_close). */
int xp__store_open(xp_backend **out, const char *id, const char *spec,
                   bool must_exist, xp_error_t *err);
/* As xp__store_open with must_exist, for a handle that only reads:
 * nothing is written to the store (a local one is opened read-only, so
 * read-only mounts, other users' stores and full disks can be read). */
int xp__store_open_reader(xp_backend **out, const char *id, const char *spec,
                          xp_error_t *err);
/* NULL-safe; NULLs *b. */
void xp__store_close(xp_backend **b);
/* Calls fn with the id of every experiment the backend named by spec
 * holds (a local root's stores, MongoDB's xp.counters, Redis's
 * xp:experiments); fn returning non-zero stops. */
int xp__store_experiments(const char *spec,
                          int (*fn)(const char *id, void *user), void *user,
                          xp_error_t *err);
/* For logs, the password masked (store-owned). */
const char *xp__store_description(const xp_backend *b);

/* ---------------------------------------------------------------- trials */

/* Allocates the next id atomically and stores rec (status running or
 * queued) with it; rec->trial_id gets the id. */
int xp__store_trial_begin(xp_backend *b, xp_trial_record *rec, xp_error_t *err);
/* Stores a finished trial. When the backend cannot take it, the trial is
 * kept in this machine's spool, written on the next open or
 * xp__store_sync; err then says where ("... kept in PATH ...") and
 * *spooled (may be NULL) is true. */
int xp__store_trial_finish(xp_backend *b, const xp_trial_outcome *o,
                           bool *spooled, xp_error_t *err);
/* A queued trial whose first step a scheduler dispatched: stores rec
 * (status running, pid 0) unless the trial is no longer queued. A backend
 * without the operation leaves it queued (0). */
int xp__store_trial_running(xp_backend *b, const xp_trial_record *rec,
                            xp_error_t *err);
/* Sets status interrupted if the trial is still running. */
int xp__store_trial_interrupt(xp_backend *b, int64_t id, int64_t finished_ms,
                              const char *description, xp_error_t *err);
/* Trials with status running. Caller frees *out (bson_free). */
int xp__store_running_trials(xp_backend *b, xp_running_trial **out, size_t *n,
                             xp_error_t *err);
/* Calls fn for each trial a scheduler accepted and has not finished
 * (queued, or running with pid 0) in id order; fn may call back into the
 * store. A backend that cannot list them lists none. */
int xp__store_queued_trials(xp_backend *b,
                            int (*fn)(const bson_t *doc, void *user),
                            void *user, xp_error_t *err);

/* ---------------------------------------------------------------- reading */

/* The record of trial id; XP_ENOTFOUND when absent. out uninitialised
 * before, caller destroys it after success. */
int xp__store_trial_get(xp_backend *b, int64_t id, bson_t *out,
                        xp_error_t *err);
/* Called with the record of trial id, checked (xp__bson_view_checked:
 * lengths, nesting and UTF-8 verified once by the backend); doc NULL when
 * its stored bytes are damaged. Non-zero stops. */
typedef int (*xp_trial_fn)(const bson_t *doc, int64_t id, void *user);
/* Calls fn for each trial record in id order, a damaged one included (doc
 * NULL) so that the others are still read. */
int xp__store_trials_each(xp_backend *b, xp_trial_fn fn, void *user,
                          xp_error_t *err);
/* Called with the stored bytes of the record of trial id, unchecked
 * (the reader checks them; NULL when the store has none readable), valid
 * until it returns. Non-zero stops. */
typedef int (*xp_trial_bytes_fn)(const uint8_t *data, size_t len, int64_t id,
                                 void *user);
/* xp__store_trials_each with each record's bytes: a backend that has no
 * such operation hands its checked documents' bytes. */
int xp__store_trials_each_bytes(xp_backend *b, xp_trial_bytes_fn fn, void *user,
                                xp_error_t *err);
int xp__store_last_id(xp_backend *b, int64_t *id, xp_error_t *err);
/* One page of a history query: fn with each record of the page in the
 * query's order (doc NULL for a damaged one, which matches no filter and
 * sorts as if every field were missing), *matched (may be NULL) how many
 * trials the filter matches. Where the backend has no query operation,
 * the records stream through the evaluator, holding at most offset +
 * limit of them. Non-zero from fn stops. */
int xp__store_trials_query(xp_backend *b, const xp_compiled_query *q,
                           xp_trial_fn fn, void *user, int64_t *matched,
                           xp_error_t *err);
/* Persisted value of (step, trial); XP_ENOTFOUND when absent. */
int xp__store_persisted_read(xp_backend *b, const char *step, int64_t trial,
                             xp_value *out, xp_error_t *err);

/* ---------------------------------------------------------------- metrics */

/* Writes the whole chunks buffered in m for trial; on success they leave
 * m, on failure they stay for a later flush or the finish. */
int xp__store_metric_flush(xp_backend *b, int64_t trial, xp_metric_buf *m,
                           xp_error_t *err);
/* Appends all points of metric name of trial, in chunk order, to out
 * (nothing when the trial saved none). Caller clears out. */
int xp__store_metric_read(xp_backend *b, const char *name, int64_t trial,
                          xp_metric_points *out, xp_error_t *err);

/* Names of the metrics trial saved, sorted, each once, as an array of
 * strings in *out (caller owns; empty when none). XP_ENOTFOUND when the
 * trial does not exist, XP_ECORRUPT for a stored name that breaks the
 * name rule, XP_EINVAL when the backend cannot list them. */
int xp__store_metric_names(xp_backend *b, int64_t trial, xp_value **out,
                           xp_error_t *err);

/* ---------------------------------------------------------------- purity and
 * contents */

/* Latest output hash recorded for (step, input hash); *found false when
 * none. */
int xp__store_step_hash_get(xp_backend *b, const char *step,
                            const uint8_t input[16], uint8_t output[16],
                            bool *found, xp_error_t *err);
/* Purity lookups of a trial's n hashed steps at once (one query where the
 * backend can): found[i] and previous[i] for (h[i].step, h[i].input). */
int xp__store_step_hashes_get(xp_backend *b, const xp_step_hash *h, size_t n,
                              uint8_t (*previous)[16], bool *found,
                              xp_error_t *err);
/* Stores a content-addressed document (kind "code" or "environment")
 * once; text is its human-readable rendering (may be NULL). */
int xp__store_content_put(xp_backend *b, const char *kind, const char *hash,
                          const bson_t *doc, const char *text, xp_error_t *err);
/* Reads a content document; XP_ENOTFOUND when absent. out uninitialised
 * before, caller destroys it after success. */
int xp__store_content_get(xp_backend *b, const char *hash, bson_t *out,
                          xp_error_t *err);

/* ---------------------------------------------------------------- memo
 * entries (memo.c's store: key -> the trial whose persisted value of the
 * step is the output, and that output's hash) */

typedef struct {
    uint8_t key[16];
    int64_t trial; /* 0: a marker, the key's step code is impure */
    uint8_t output[16];
} xp_memo_entry;

/* The 24 bytes an entry's trial and output take where a backend stores
 * them as one value (trial little-endian, then output), and back; false
 * when bytes are not such a value. */
#define XP_MEMO_VALUE_SIZE 24
void xp__memo_value_pack(const xp_memo_entry *e, uint8_t out[24]);
bool xp__memo_value_unpack(const void *bytes, size_t len, xp_memo_entry *e);

/* The entries of e[i].key into e[i], n at once (one round trip);
 * found[i] false when none (also for a backend without memo entries, or
 * a store that has never written one). */
int xp__store_memo_get(xp_backend *b, xp_memo_entry *e, size_t n, bool *found,
                       xp_error_t *err);
/* Stores n entries, replacing those with the same keys. A backend
 * without memo entries stores nothing (0). */
int xp__store_memo_put(xp_backend *b, const xp_memo_entry *e, size_t n,
                       xp_error_t *err);
/* Calls fn for each entry (any order); fn non-zero stops. */
int xp__store_memo_each(xp_backend *b,
                        int (*fn)(const xp_memo_entry *e, void *user),
                        void *user, xp_error_t *err);
/* Removes the entries of n keys (absent ones are skipped). */
int xp__store_memo_delete(xp_backend *b, const uint8_t (*keys)[16], size_t n,
                          xp_error_t *err);
/* Removes every persisted value of trial (its record is kept): a later
 * read is XP_ENOTFOUND. XP_EINVAL when the backend cannot. */
int xp__store_persisted_drop(xp_backend *b, int64_t trial, xp_error_t *err);

/* ---------------------------------------------------------------- groups and
 * the spool */

/* Group commit: between begin and end the writes of this handle, made by
 * one thread, commit together at end; each operation still succeeds or
 * fails alone. When end fails none of them is stored. A backend without
 * groups writes each at once (begin and end return 0). */
int xp__store_group_begin(xp_backend *b, xp_error_t *err);
int xp__store_group_end(xp_backend *b, xp_error_t *err);
/* Writes the trials kept in the spool; *written counts them. */
int xp__store_sync(xp_backend *b, size_t *written, xp_error_t *err);

#endif /* XP_STORE_STORE_H */
