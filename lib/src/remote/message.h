/* remote/message.h — the wire messages between scheduler, workers and
 * clients (docs/protocol.md): the envelope (three frames) and one C
 * struct per message body with its encoder and decoder, so that no other
 * file spells a field name. The only header that includes czmq.
 *
 * Decoded structs point into the body they were decoded from (strings,
 * document views): the body must outlive them. What a decoder allocates
 * (lists, values) goes with xp__msg_<type>_clear; encoders only read. */
#ifndef XP_REMOTE_MESSAGE_H
#define XP_REMOTE_MESSAGE_H

#include "xp/xp.h"

#include "util/bson_util.h"

#include <bson/bson.h>
#include <czmq.h>

#define XP_PROTOCOL "XP1"
/* The message size limit of both daemons (--max-message), bytes. */
#define XP_MAX_MESSAGE_DEFAULT (64u << 20)
#define XP_MAX_MESSAGE_MIN 4096
#define XP_MAX_MESSAGE_MAX (1 << 30)
/* The heartbeat interval (--heartbeat-ms, WELCOME), ms. */
#define XP_HEARTBEAT_MS_DEFAULT 1000
#define XP_HEARTBEAT_MS_MIN 10
#define XP_HEARTBEAT_MS_MAX 600000
/* Documents nested in a body, the body itself being 1: a value as deep
 * as value.c takes (100 levels below its container) still fits inside
 * SUBMIT's trials[i].parameters (body, trials, trial, parameters). */
#define XP_MSG_MAX_DEPTH XP_BSON_MAX_DEPTH
/* Slots a worker may announce. */
#define XP_MSG_SLOTS_MAX 4096
/* Results a PROGRESS carries at most; the client asks again. */
#define XP_MSG_PROGRESS_MAX 1000

typedef enum {
    XP_MSG_HELLO,     /* worker -> scheduler: host, slots, experiments */
    XP_MSG_WELCOME,   /* scheduler -> worker */
    XP_MSG_HEARTBEAT, /* both ways */
    XP_MSG_TASK,      /* scheduler -> worker: run one step */
    XP_MSG_RESULT,    /* worker -> scheduler: its outcome */
    XP_MSG_SUBMIT,    /* client -> scheduler: trials */
    XP_MSG_ACCEPTED,  /* scheduler -> client: trial ids */
    XP_MSG_STATUS,    /* client -> scheduler: progress of a batch */
    XP_MSG_PROGRESS,  /* scheduler -> client */
    XP_MSG_ERROR,     /* any reply: {message} */
    XP_MSG_BYE,       /* worker leaving */
    XP_MSG_TASKS,     /* scheduler -> worker: several TASK bodies */
    XP_MSG_RESULTS,   /* worker -> scheduler: several RESULT bodies */
    XP_MSG_COUNT
} xp_msg_type;

/* A BSON document inside a message: a view of its bytes. (Not a bson_t,
 * which wants 128-byte alignment that heap arrays do not give.) */
typedef struct {
    const uint8_t *data;
    uint32_t len;
} xp_msg_doc;

/* A read-only bson_t over doc, valid while its bytes live. */
static inline bool xp__msg_doc_view(xp_msg_doc doc, bson_t *out)
{
    return doc.data && bson_init_static(out, doc.data, doc.len);
}

static inline xp_msg_doc xp__msg_doc_of(const bson_t *b)
{
    xp_msg_doc d = {bson_get_data(b), b->len};
    return d;
}

/* ---------------------------------------------------------------- envelope */

/* What was wrong with a message a peer sent. */
typedef enum {
    XP_MSG_FAULT_NONE,
    XP_MSG_FAULT_FRAMES,   /* not three frames */
    XP_MSG_FAULT_PROTOCOL, /* first frame is not XP1 */
    XP_MSG_FAULT_TYPE,     /* unknown message type */
    XP_MSG_FAULT_SIZE,     /* body over the limit */
    XP_MSG_FAULT_BODY,     /* body not valid BSON, or nested too deep */
} xp_msg_fault;

const char *xp__msg_name(xp_msg_type type);
/* The message of type with body. Caller owns result. */
zmsg_t *xp__msg_new(xp_msg_type type, const bson_t *body);
/* Checks the frames of an untrusted message (routing frame removed):
 * count, protocol, type, size within max_body, then the body's lengths
 * and depth (xp__bson_check) before libbson walks it; copies the body
 * into an uninitialised *body. XP_MSG_FAULT_NONE, or the fault and err. */
xp_msg_fault xp__msg_open(zmsg_t *msg, size_t max_body, xp_msg_type *type,
                          bson_t *body, xp_error_t *err);
/* xp__msg_open as 0 or -1. */
int xp__msg_decode(zmsg_t *msg, size_t max_body, xp_msg_type *type,
                   bson_t *body, xp_error_t *err);
/* The same on raw frames (fuzzing entry point). */
int xp__msg_decode_frames(const uint8_t *const *frames, const size_t *lens,
                          size_t n, size_t max_body, xp_msg_type *type,
                          bson_t *body, xp_error_t *err);
/* HEARTBEAT and BYE: empty bodies. Caller owns result. */
zmsg_t *xp__msg_empty_encode(xp_msg_type type);

/* ---------------------------------------------------------------- HELLO */

/* An experiment a worker runs: id, the hash of its code document and the
 * document. */
typedef struct {
    const char *id;
    const char *code_hash;
    xp_msg_doc code;
} xp_msg_experiment;

typedef struct {
    const char *host;
    int64_t pid;
    int64_t slots;                  /* 1 to XP_MSG_SLOTS_MAX */
    int64_t busy;                   /* slots still running steps of an earlier
                                     * registration; decode: 0 unless 1 to slots */
    const char *version;            /* decode: NULL when absent */
    int64_t max_message;            /* its --max-message: the largest body it
                                     * takes; 0: not said (decode: also when
                                     * out of bounds) */
    xp_msg_experiment *experiments; /* decode: allocated */
    size_t n_experiments;
    size_t n_bad; /* decode: experiments skipped as malformed */
    /* The batch job the worker runs in (Slurm's array job id, array index
     * and node), which the steps it runs record. job_id NULL: none
     * (decode: also when malformed, or longer than XP_MSG_JOB_MAX);
     * job_index -1: no array element; job_node NULL: not said. */
    const char *job_id;
    int64_t job_index;
    const char *job_node;
    /* It takes TASKS (field prefetch present), and holds up to prefetch
     * tasks waiting beyond its slots (0 to XP_MSG_PREFETCH_MAX). false:
     * an older worker, one TASK a slot (decode: also when prefetch is out
     * of bounds). */
    bool bundles;
    int64_t prefetch;
} xp_msg_hello;

/* Tasks a worker may hold waiting beyond its slots. */
#define XP_MSG_PREFETCH_MAX 65536

/* Longest job id and node name a HELLO carries. */
#define XP_MSG_JOB_MAX 255

zmsg_t *xp__msg_hello_encode(const xp_msg_hello *m);
int xp__msg_hello_decode(const bson_t *body, xp_msg_hello *m, xp_error_t *err);
void xp__msg_hello_clear(xp_msg_hello *m);

/* ---------------------------------------------------------------- WELCOME */

typedef struct {
    int64_t heartbeat_ms; /* decode: 0 when absent or out of bounds */
    /* The scheduler's --max-message, so that a worker keeps its RESULTs
     * under it. Optional; decode: 0 when absent or out of bounds. */
    int64_t max_message;
    /* The scheduler takes RESULTS. Optional; decode: false when absent. */
    bool bundles;
} xp_msg_welcome;

zmsg_t *xp__msg_welcome_encode(const xp_msg_welcome *m);
int xp__msg_welcome_decode(const bson_t *body, xp_msg_welcome *m,
                           xp_error_t *err);

/* ---------------------------------------------------------------- TASK */

typedef struct {
    int64_t trial, attempt;
    const char *step;
    const char *experiment, *code_hash;
    uint64_t seed;
    /* encode: the step's input values */
    const xp_value *const *inputs;
    size_t n_inputs;
    /* decode: the array of inputs, read with xp__msg_task_inputs */
    xp_msg_doc input_list;
} xp_msg_task;

zmsg_t *xp__msg_task_encode(const xp_msg_task *m);
/* -1 with m->step NULL: not even trial, attempt and step (a TASK that
 * cannot be answered); -1 with them set: the rest is missing or
 * mistyped (answer it as failed with err). */
int xp__msg_task_decode(const bson_t *body, xp_msg_task *m, xp_error_t *err);
/* Reads the first n inputs of a decoded TASK into values[0..n) (caller
 * destroys them) and counts them all into *count. -1 with err naming the
 * input that is not a value, and none of them kept. */
int xp__msg_task_inputs(const xp_msg_task *m, xp_value **values, size_t n,
                        size_t *count, xp_error_t *err);

/* ---------------------------------------------------------------- RESULT */

/* Points of one metric: epochs[i], values[i] for i < n. */
typedef struct {
    const char *name;
    const int64_t *epochs;
    const double *values;
    size_t n;
} xp_msg_metric;

/* What a worker answers when all its slots are taken: the start of the
 * failure of a RESULT that did not run. */
#define XP_MSG_WORKER_BUSY "worker busy"

typedef struct {
    int64_t trial, attempt;
    const char *step;
    bool ok;
    xp_value *output;       /* ok: the step's output (decode: owned; NULL when
                             * absent or not a value) */
    const char *failure;    /* not ok: why (decode: NULL when absent) */
    xp_msg_metric *metrics; /* decode: allocated, points copied */
    size_t n_metrics;
    bool metrics_bad; /* decode: one was malformed; those before it are in */
    double elapsed;   /* seconds */
    /* A command step's log document {argv, status, ..., stdout, stderr}
     * (command/run.h), failed or not. Optional: NULL when absent (decode:
     * owned; also NULL when not a document). */
    xp_value *log;
} xp_msg_result;

zmsg_t *xp__msg_result_encode(const xp_msg_result *m);
/* -1 without trial, attempt and step; output and metrics are read as far
 * as they go. */
int xp__msg_result_decode(const bson_t *body, xp_msg_result *m,
                          xp_error_t *err);
/* A refusal because all the worker's slots were taken. */
bool xp__msg_result_busy(const xp_msg_result *m);
void xp__msg_result_clear(xp_msg_result *m);

/* ------------------------------------------------- TASKS and RESULTS */

/* Several TASK (or RESULT) bodies in one message, {tasks: [TASK body,
 * ...]} ({results: [...]}): what a peer that said it takes them (HELLO's
 * prefetch, WELCOME's bundles) gets instead of one message each. */
typedef struct {
    xp_msg_type type; /* XP_MSG_TASKS or XP_MSG_RESULTS */
    bson_t body, list;
    uint32_t n;
} xp_msg_bundle;

void xp__msg_bundle_init(xp_msg_bundle *b, xp_msg_type type);
/* The body's size with one more element of bytes bytes. */
size_t xp__msg_bundle_size_with(const xp_msg_bundle *b, size_t bytes);
/* The size of a bundle of one element of bytes bytes. */
size_t xp__msg_bundle_size_alone(size_t bytes);
/* Appends the body of *msg, an encoded TASK (RESULT), and destroys it. */
void xp__msg_bundle_add(xp_msg_bundle *b, zmsg_t **msg);
/* The bundle as a message (NULL when it is empty); b is cleared and may
 * be used again after xp__msg_bundle_init. Caller owns result. */
zmsg_t *xp__msg_bundle_finish(xp_msg_bundle *b);
/* Drops what b holds. */
void xp__msg_bundle_clear(xp_msg_bundle *b);
/* Opens the list of a TASKS (RESULTS) body for xp__msg_bundle_next; -1
 * when there is none. */
int xp__msg_bundle_open(const bson_t *body, xp_msg_type type, bson_iter_t *it,
                        xp_error_t *err);
/* The next element, a view into the body, for the type's decoder; false
 * at the end. An element that is not a document is skipped and counted
 * in *bad. */
bool xp__msg_bundle_next(bson_iter_t *it, bson_t *elem, size_t *bad);

/* ---------------------------------------------------------------- SUBMIT */

/* One trial: its parameters (a document) and maybe a seed. */
typedef struct {
    const xp_value *params; /* decode: owned */
    bool has_seed;
    int64_t seed;
    int64_t reproduces; /* the trial it re-runs (xp reproduce), 0: none */
    int memo;           /* xp_memo_mode; "memo" absent: 0, XP_MEMO_USE */
} xp_msg_trial;

typedef struct {
    const char *experiment;
    const char *code_hash; /* NULL: the latest a worker registered */
    xp_msg_doc code;       /* the document code_hash is of, or none */
    xp_msg_trial *trials;  /* decode: allocated */
    size_t n_trials;
} xp_msg_submit;

zmsg_t *xp__msg_submit_encode(const xp_msg_submit *m);
int xp__msg_submit_decode(const bson_t *body, xp_msg_submit *m,
                          xp_error_t *err);
void xp__msg_submit_clear(xp_msg_submit *m);
/* The trials of specs, an array of documents {parameters, seed?} as
 * xp_client_submit takes them; *trials (caller frees with bson_free)
 * borrows the parameters from specs. */
int xp__msg_trials_from_value(const xp_value *specs, xp_msg_trial **trials,
                              size_t *n, xp_error_t *err);

/* ---------------------------------------------------------------- ACCEPTED */

typedef struct {
    int64_t batch;
    int64_t *ids; /* trial ids in submission order; decode: allocated
                   * with bson_malloc (NULL it to keep them) */
    size_t n_ids;
} xp_msg_accepted;

zmsg_t *xp__msg_accepted_encode(const xp_msg_accepted *m);
int xp__msg_accepted_decode(const bson_t *body, xp_msg_accepted *m,
                            xp_error_t *err);
void xp__msg_accepted_clear(xp_msg_accepted *m);

/* ---------------------------------------------------------------- STATUS */

typedef struct {
    int64_t batch;
    int64_t cursor; /* results already read; 0 when absent */
    /* Optional: at most how long the scheduler may hold the answer while
     * no trial of the batch finishes past cursor (a long poll); 0 when
     * absent: answer now. At most XP_MSG_STATUS_WAIT_MAX. */
    int64_t wait_ms;
} xp_msg_status;

#define XP_MSG_STATUS_WAIT_MAX 60000

zmsg_t *xp__msg_status_encode(const xp_msg_status *m);
int xp__msg_status_decode(const bson_t *body, xp_msg_status *m,
                          xp_error_t *err);

/* ---------------------------------------------------------------- PROGRESS */

typedef struct {
    int64_t queued, running, done, failed, total;
    const char *waiting; /* why queued trials cannot start, or NULL */
    xp_msg_doc finished; /* array of lines (xp__msg_finished_line): the
                          * results from the STATUS cursor on */
    int64_t cursor;      /* to send in the next STATUS */
} xp_msg_progress;

zmsg_t *xp__msg_progress_encode(const xp_msg_progress *m);
int xp__msg_progress_decode(const bson_t *body, xp_msg_progress *m,
                            xp_error_t *err);
/* The finished lines of a decoded PROGRESS as an array of documents
 * {trial_id, status, result, result_type, description, spooled?} (the
 * layout xp_client_progress returns). Caller owns *out. */
int xp__msg_progress_finished(const xp_msg_progress *m, xp_value **out,
                              xp_error_t *err);

/* A finished trial as a PROGRESS line tells it: the status its record
 * has, or will have once the scheduler writes it from its spool. */
typedef struct {
    int64_t trial_id;
    bool ok;                 /* succeeded, else failed */
    bool spooled;            /* the backend could not take the record yet:
                              * it waits in the scheduler's spool */
    const xp_value *result;  /* may be NULL */
    const char *description; /* why it failed, and why it is spooled, or
                              * NULL */
} xp_msg_finished;

/* The line of f: {trial_id, status, result, result_type, description}
 * and spooled: true when it is. Caller destroys. */
bson_t *xp__msg_finished_line(const xp_msg_finished *f);

/* ---------------------------------------------------------------- ERROR */

/* What the scheduler answers a worker it does not know. */
#define XP_MSG_UNKNOWN_WORKER "unknown worker: send HELLO"

typedef struct {
    const char *message; /* decode: NULL when absent */
} xp_msg_error;

zmsg_t *xp__msg_error_encode(const xp_msg_error *m);
int xp__msg_error_decode(const bson_t *body, xp_msg_error *m, xp_error_t *err);
/* The scheduler asks the worker to register (again). */
bool xp__msg_error_wants_hello(const xp_msg_error *m);

#endif /* XP_REMOTE_MESSAGE_H */
