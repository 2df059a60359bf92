/* store/record.h — the trial record: the one place its field names and
 * status strings are spelled, a typed view of it (xp_trial_record), its
 * BSON encoder and decoder side by side, and what a finished trial hands
 * to the store (xp_trial_outcome). */
#ifndef XP_STORE_RECORD_H
#define XP_STORE_RECORD_H

#include "xp/xp.h"

#include "store/metric.h"

#include <bson/bson.h>
#include <stdbool.h>
#include <stdint.h>

/* Field names, for the stores that index or query by them. */
#define XP_RECORD_TRIAL_ID "trial_id"
#define XP_RECORD_EXPERIMENT "experiment"
#define XP_RECORD_STATUS "status"
#define XP_RECORD_PARAMETERS "parameters"
#define XP_RECORD_SEED "seed"
#define XP_RECORD_STARTED "started"
#define XP_RECORD_HOST "host"
#define XP_RECORD_PID "pid"
#define XP_RECORD_PSTART "pstart"
#define XP_RECORD_SCHEDULER "scheduler"
#define XP_RECORD_CODE_HASH "code_hash"
#define XP_RECORD_ENVIRONMENT_HASH "environment_hash"
#define XP_RECORD_FINISHED "finished"
#define XP_RECORD_RESULT "result"
#define XP_RECORD_RESULT_TYPE "result_type"
#define XP_RECORD_SUCCESS "success"
#define XP_RECORD_PROCESS_TIME "process_time"
#define XP_RECORD_DESCRIPTION "description"
#define XP_RECORD_PURITY_WARNINGS "purity_warnings"
#define XP_RECORD_STEPS "steps"
#define XP_RECORD_HASHES "hashes"
#define XP_RECORD_REPRODUCES "reproduces"
/* Hex digits of a step's output hash in XP_RECORD_HASHES: the first 64
 * bits of its XXH128. */
#define XP_RECORD_HASH_HEX 16
#define XP_RECORD_MEMO "memo"
#define XP_RECORD_REUSED "reused"

/* Status strings, as stored (SQL text and queries are built from them). */
#define XP_STATUS_QUEUED_NAME "queued"
#define XP_STATUS_RUNNING_NAME "running"
#define XP_STATUS_SUCCEEDED_NAME "succeeded"
#define XP_STATUS_FAILED_NAME "failed"
#define XP_STATUS_INTERRUPTED_NAME "interrupted"
/* Never stored: how history shows a record it cannot read. */
#define XP_STATUS_DAMAGED_NAME "damaged"

typedef enum {
    XP_STATUS_NONE = 0, /* absent */
    XP_STATUS_QUEUED,   /* accepted by a scheduler, not started */
    XP_STATUS_RUNNING,
    XP_STATUS_SUCCEEDED,
    XP_STATUS_FAILED,
    XP_STATUS_INTERRUPTED, /* its process ended during the trial */
} xp_trial_status;

/* "queued", ...; "" for XP_STATUS_NONE. */
const char *xp__trial_status_name(xp_trial_status s);
/* XP_STATUS_NONE when s is not a status name. */
xp_trial_status xp__trial_status_parse(const char *s);

/* A BSON document or array held elsewhere (len 0: none). */
typedef struct {
    const uint8_t *data;
    uint32_t len;
} xp_doc_view;

xp_doc_view xp__doc_view(const bson_t *b);
/* Initialises *out (static, no destroy needed) over v; false when v is
 * empty or not a document. */
bool xp__doc_view_bson(xp_doc_view v, bson_t *out);

/* Fields a decoded record holds (xp_trial_record.present). */
enum {
    XP_RECORD_HAS_TRIAL_ID = 1u << 0,
    XP_RECORD_HAS_STATUS = 1u << 1,
    XP_RECORD_HAS_PARAMETERS = 1u << 2,
    XP_RECORD_HAS_SEED = 1u << 3,
    XP_RECORD_HAS_PROCESS = 1u << 4, /* host, pid and pstart */
    XP_RECORD_HAS_CODE_HASH = 1u << 5,
    XP_RECORD_HAS_OUTCOME = 1u << 6, /* finished ... description */
};

/* A trial record. Strings and views are borrowed: from the trial that
 * builds it, or from the document it was decoded from. */
typedef struct {
    uint32_t present; /* XP_RECORD_HAS_*, set by the decoder */
    /* the start record */
    int64_t trial_id; /* encoded when > 0 */
    const char *experiment;
    xp_trial_status status;
    xp_doc_view parameters;
    int64_t seed;
    int64_t started_ms;
    const char *host;
    int64_t pid; /* 0: a scheduler's trial, no process to check */
    int64_t pstart;
    const char *scheduler; /* NULL: none */
    const char *code_hash;
    const char *environment_hash;
    int64_t reproduces; /* the trial this one re-runs; encoded when > 0 */
    /* the outcome, encoded for succeeded, failed and interrupted */
    int64_t finished_ms;
    const xp_value *result; /* to encode; NULL: null (or result_iter) */
    bool has_result;        /* decoded: result_iter is the stored result */
    bson_iter_t result_iter;
    const char *result_type; /* decoded; encoded from result */
    bool success;
    double process_time;
    const char *description;
    xp_doc_view purity_warnings; /* array of step names; len 0: none */
    xp_doc_view steps;           /* step -> where it ran; len 0: none */
    xp_doc_view hashes;          /* step -> output hash (hex); len 0: none */
    /* Memoisation: the mode ("use", "off", "refresh"; NULL: not
     * recorded, an experiment without pure steps) and the steps whose
     * output was reused, step -> trial id (len 0: none). */
    const char *memo;
    xp_doc_view reused;
} xp_trial_record;

/* Appends the fields of rec to out (initialised). XP_EINVAL, with a
 * message naming the field (e.g. "result nested deeper than 100 levels"),
 * when a value cannot be stored; out is then incomplete. */
int xp__record_encode(const xp_trial_record *rec, bson_t *out, xp_error_t *err);
/* Reads doc into *rec (borrowing from doc). Every field present must have
 * its type, every string its length and a status its name; none is
 * required (callers check rec->present). XP_ECORRUPT naming the field. */
int xp__record_decode(const bson_t *doc, xp_trial_record *rec, xp_error_t *err);
/* The same for a checked document (xp__bson_view_checked: lengths,
 * nesting and UTF-8 already verified): the decoder's own whole-document
 * form check and its UTF-8 checks of strings are skipped. */
int xp__record_decode_checked(const bson_t *doc, xp_trial_record *rec,
                              xp_error_t *err);
/* 0 when xp__record_decode_checked accepts doc (checked), else its
 * error; tree is doc read by xp__value_from_checked_bson. What history
 * needs of a record, from the tree it has made already (the decoder
 * runs only when the tree holds a field the check does not know or
 * that fails). */
int xp__record_check_value(const xp_value *tree, const bson_t *doc,
                           xp_error_t *err);
/* History's reading of one stored record: its bytes data[0..len)
 * (untrusted; NULL: none readable) into row, a fresh null child of owner
 * (an xp__value_arena_array), in one pass that checks as it builds
 * (xp__value_from_bytes_in); 0 when xp__bson_check and
 * xp__record_check_value accept them. Else the message of the way
 * before that pass (xp__record_read_row_checked), which the record's
 * verdict always comes from: "not a BSON document" when the check
 * refuses the bytes, the decoder's reason, or the tree's. */
int xp__record_read_row(xp_value *row, const uint8_t *data, size_t len,
                        xp_value *owner, xp_error_t *err);
/* The same the way before: xp__bson_view_checked, then
 * xp__value_from_checked_bson_in, then xp__record_check_value. */
int xp__record_read_row_checked(xp_value *row, const uint8_t *data, size_t len,
                                xp_value *owner, xp_error_t *err);
/* The {host, pid, pstart} of rec alone (a store's index of running
 * trials); decoded by xp__record_decode. */
void xp__record_encode_process(const xp_trial_record *rec, bson_t *out);
/* Where a step ran, as a record's XP_RECORD_STEPS holds it: the
 * worker's host, its id, the attempt and the step's time, and the batch
 * job the worker ran in, if any (job_id "" when none; job_index -1 when
 * the job is no array element). Decoded strings are borrowed from the
 * record, "" when absent. */
typedef struct {
    const char *host;
    const char *worker;
    int64_t attempt;
    double elapsed;
    const char *job_id;   /* e.g. Slurm's array job id */
    int64_t job_index;    /* its array index, -1: none */
    const char *job_node; /* the node the batch system gave it */
} xp_record_step;
/* Appends to steps (the record's XP_RECORD_STEPS document) where step
 * ran: {host, worker, attempt, elapsed, job?: {id, array_index?, node?}}.
 * NULL strings are stored as "". */
void xp__record_append_step(bson_t *steps, const char *step,
                            const xp_record_step *where);
/* Calls fn for each entry of steps (a decoded record's steps view) that
 * is a document, in stored order; fields of the wrong type or size read
 * as absent (0). */
void xp__record_steps_each(xp_doc_view steps,
                           void (*fn)(const char *step,
                                      const xp_record_step *info, void *user),
                           void *user);
/* Appends the fields that make a running record interrupted (status,
 * success, finished, null result, description): a $set, or the end of
 * xp__record_interrupt's copy. */
void xp__record_append_interrupted(bson_t *out, int64_t finished_ms,
                                   const char *description);
/* The stored record doc, interrupted: its start fields, then those of
 * xp__record_append_interrupted. XP_ECORRUPT when doc is not a record. */
int xp__record_interrupt(const bson_t *doc, int64_t finished_ms,
                         const char *description, bson_t *out, xp_error_t *err);

/* The record history shows for trial id whose stored record cannot be
 * read: status "damaged" (never stored), success false, a null result and
 * why as its description. */
void xp__record_damaged(bson_t *out, int64_t id, const char *why);

/* What a store keeps of a trial beside its record. */
typedef struct {
    const char *step;
    const xp_value *value;
} xp_persisted_item;

/* Purity check record: step + input hash -> output hash. */
typedef struct {
    const char *step;
    uint8_t input[16];
    uint8_t output[16];
} xp_step_hash;

/* A finished trial, as the store takes it. */
typedef struct {
    const xp_trial_record *record; /* final: succeeded or failed */
    const bson_t *doc;             /* record encoded, trial_id first */
    const xp_metric_chunk *chunks; /* metric points not stored yet */
    size_t n_chunks;
    const xp_persisted_item *persisted;
    size_t n_persisted;
    const xp_step_hash *hashes;
    size_t n_hashes;
} xp_trial_outcome;

#endif /* XP_STORE_RECORD_H */
