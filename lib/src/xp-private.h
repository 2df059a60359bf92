/* xp-private.h — declarations shared between libxp's source files.
 * Nothing here is installed; tests that exercise internals link the static
 * library and include this header. */
#ifndef XP_PRIVATE_H
#define XP_PRIVATE_H

#include "xp/xp.h"

#include <bson/bson.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/types.h>

#define XP_HIDDEN __attribute__((visibility("hidden")))
#define XP_ID_MAX 64
#define XP_NAME_MAX 128

/* ---- error.c */

/* Fills err (may be NULL) and returns -1, so callers can
 * `return xp__error(err, ...);`. */
int xp__error(xp_error_t *err, uint32_t domain, uint32_t code, const char *fmt,
              ...) XP_PRINTF(4, 5);
int xp__verror(xp_error_t *err, uint32_t domain, uint32_t code, const char *fmt,
               va_list ap);
int xp__enomem(xp_error_t *err);
void xp__error_clear(xp_error_t *err);

/* ---- value.c */

struct xp_value {
    xp_type type;
    union {
        bool b;
        int64_t i; /* int64 and datetime */
        double d;
        struct {
            char *data; /* NUL-terminated for strings */
            size_t len;
        } s;
        struct {
            xp_value **items;
            char **keys; /* documents only */
            size_t n, cap;
        } c;
    } u;
};

/* Resets v to null, releasing its content. */
void xp__value_clear(xp_value *v);
/* Appends v under key to b. 0 or -1 (allocation / nesting too deep). */
int xp__value_append_bson(bson_t *b, const char *key, const xp_value *v);
/* Reads the element at it into v (replacing its content). Unsupported
 * BSON types are an XP_ECORRUPT error. */
int xp__value_from_iter(xp_value *v, const bson_iter_t *it, xp_error_t *err);
/* Reads a whole BSON document into v as a document. */
int xp__value_from_bson(xp_value *v, const bson_t *doc, xp_error_t *err);
/* Writes document/array v into an initialised bson_t (its elements). */
int xp__value_to_bson(const xp_value *v, bson_t *out);

/* ---- log.c */

void xp__log(xp_log_level level, const char *fmt, ...) XP_PRINTF(2, 3);
bool xp__log_enabled(xp_log_level level);

/* ---- sys.c */

int64_t xp__now_ms(void);       /* wall clock, ms since epoch */
double xp__monotonic(void);     /* seconds, monotonic */
const char *xp__hostname(void); /* process-static */
/* Start time of process pid in clock ticks since boot, 0 if it does not
 * exist. Together with pid it identifies a process across pid reuse. */
uint64_t xp__process_start(pid_t pid);
/* xp__process_start(getpid()), cached. */
uint64_t xp__self_start(void);
/* mkdir -p; 0 or -1 with err. */
int xp__mkdir_p(const char *path, xp_error_t *err);
int xp__cpu_count(void);
/* Whole file, NUL-terminated; NULL when unreadable or over max bytes.
 * Caller frees (bson_free). */
char *xp__read_file(const char *path, size_t max, size_t *len);

/* ---- backend.c / backend_*.c */

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
/* Shared backends. uri is the full URI; cache_dir is this machine's
 * directory for the experiment (spool of unwritten records), to be copied
 * into b->dir. Errors never contain the URI's password. */
int xp__backend_mongo_open(xp_backend **out, const char *id, const char *uri,
                           const char *cache_dir, bool must_exist,
                           xp_error_t *err);
int xp__backend_redis_open(xp_backend **out, const char *id, const char *uri,
                           const char *cache_dir, bool must_exist,
                           xp_error_t *err);
/* spool.c: keeps a finished trial that could not be recorded in
 * <b->dir>/spool/<id>.bson (*path_out: caller frees). */
int xp__spool_write(xp_backend *b, int64_t id, const bson_t *doc,
                    const xp_metric_buf *metrics, size_t n_metrics,
                    const xp_persisted_item *persisted, size_t n_persisted,
                    const xp_step_hash *hashes, size_t n_hashes,
                    char **path_out, xp_error_t *err);
/* Writes spooled trials to the backend; *written counts them. */
int xp__spool_replay(xp_backend *b, size_t *written, xp_error_t *err);
/* The password in a URI's userinfo (not NUL-terminated, *len bytes), or
 * NULL when there is none. */
const char *xp__uri_password(const char *uri, size_t *len);
/* The URI with any password replaced by "***". Caller frees. */
char *xp__uri_mask(const char *uri);

/* ---- rng.c */

typedef struct {
    uint64_t s[4];
} xp_rng;

void xp__rng_seed(xp_rng *r, uint64_t seed);
uint64_t xp__rng_next(xp_rng *r);
/* Seed of a step: hash of (trial seed, step name). */
uint64_t xp__step_seed(uint64_t trial_seed, const char *step);
/* A fresh seed from the OS. */
uint64_t xp__random_seed(void);

/* ---- pool.c */

typedef struct xp_pool xp_pool;
typedef void (*xp_task_fn)(void *arg);

xp_pool *xp__pool_new(int threads);
void xp__pool_destroy(xp_pool **p);
/* Queues fn(arg); 0 or -1 when out of memory. */
int xp__pool_submit(xp_pool *p, xp_task_fn fn, void *arg);

/* ---- experiment.c / graph.c / trial.c */

struct xp_node {
    xp_experiment *ex;
    size_t index; /* position in ex->nodes: registration order */
    bool is_param;
    bool persisted;
    char *name;
    /* parameters */
    xp_value *def;     /* default, or NULL */
    xp_value *current; /* value set for the next trials, or NULL */
    /* steps */
    xp_step_fn fn;
    size_t n_inputs;
    xp_node **inputs;
    char *file;
    int line;
    char *source;      /* captured definition text, or NULL */
    char *source_path; /* where the source was read from, or NULL */
    /* filled when the graph is frozen at the first trial */
    bool needed; /* an ancestor of (or) the result */
    size_t n_dependents;
    xp_node **dependents; /* needed steps taking this node as input */
};

struct xp_experiment {
    char *id;
    xp_backend *backend;
    int threads;
    /* Guards the definition, parameter values, the seed and the pool. */
    pthread_mutex_t lock;
    xp_node **nodes;
    size_t n_nodes, cap_nodes;
    xp_node *result;
    bool has_def_error;
    xp_error_t def_error;
    bool frozen;
    size_t n_needed_steps;
    xp_pool *pool;
    bool has_seed;
    uint64_t seed;
    /* Capture, computed when the graph is frozen. */
    bson_t *code;       /* code context document */
    char code_hash[33]; /* XXH128 hex */
    bool code_checked;  /* compared with the previous trial's code */
    bool contents_stored;
};

/* Freezes the definition (first trial): checks it, computes which nodes
 * the result needs and their dependents. Called with ex->lock held. */
int xp__graph_freeze(xp_experiment *ex, xp_error_t *err);
xp_node *xp__graph_find(const xp_experiment *ex, const char *name);
/* Defines an empty experiment from a code context document (parameters
 * with defaults, steps with inputs, result and persisted marks). Steps
 * have no function: they run remotely. ex->code becomes that document. */
int xp__graph_from_code(xp_experiment *ex, const bson_t *code, xp_error_t *err);
/* An experiment without backend, for defining and running steps only
 * (xp-worker). Caller owns *out (xp_experiment_destroy). */
int xp__experiment_new_detached(xp_experiment **out, const char *id,
                                xp_error_t *err);
void xp__graph_free(xp_experiment *ex);
/* True while the calling thread runs a step. */
bool xp__in_step(void);

/* ---- step.c: running one step */

/* Where xp_save_metric sends points. */
typedef struct {
    int (*save)(void *ctx, const char *name, int64_t epoch, double value);
    void *ctx;
} xp_metric_sink;

/* Runs step n of trial trial_id (its generator seeded from trial_seed and
 * its name) on inputs, writing out. On failure returns -1 with the step's
 * message in failure. */
int xp__step_run(const xp_node *n, int64_t trial_id, uint64_t trial_seed,
                 const xp_value *const *inputs, const xp_metric_sink *sink,
                 xp_value *out, char *failure, size_t failure_size);

/* ---- trial.c: the trial lifecycle as a state machine, driven by the
 * in-process executor (xp_compute) or by the scheduler. Thread-safe. */
typedef struct xp_trial xp_trial;

/* Resolves parameters (XP_EUNDEFINED allocates no id), picks the seed,
 * allocates the id and records the trial: as running by this process
 * (scheduler NULL), or as queued for the scheduler of that name (no pid,
 * never marked interrupted; resumed only by that scheduler). */
int xp__trial_start(xp_trial **out, xp_experiment *ex,
                    const xp_run_options *opts, const char *scheduler,
                    xp_error_t *err);
/* Takes up a trial recorded as queued (doc: its stored record) after a
 * scheduler restart: same id, parameters and seed; nothing is written. */
int xp__trial_resume(xp_trial **out, xp_experiment *ex, const bson_t *doc,
                     xp_error_t *err);
int64_t xp__trial_id(const xp_trial *t);
/* The trial's record as started, with its trial_id (caller destroys):
 * what xp__trial_resume takes back. */
bson_t *xp__trial_record(const xp_trial *t);
uint64_t xp__trial_seed(const xp_trial *t);
/* Next step whose inputs are all computed, or NULL (none now, or the trial
 * failed). The step counts as in flight until xp__trial_step_done. */
xp_node *xp__trial_take_ready(xp_trial *t);
/* Trial-owned output of node n (parameter value or computed step). */
const xp_value *xp__trial_value(const xp_trial *t, const xp_node *n);
/* Records the outcome of step n: out (taken, may be NULL on failure) or a
 * failure message. Unblocks dependents. */
void xp__trial_step_done(xp_trial *t, xp_node *n, xp_value *out,
                         const char *failure);
/* Metric sink of the trial (points flushed in chunks). */
int xp__trial_save_metric(void *trial, const char *name, int64_t epoch,
                          double value);
/* True when every needed step finished, or one failed and none is in
 * flight. */
bool xp__trial_done(xp_trial *t);
/* Checks purity, records the outcome with metrics, persisted values and
 * step hashes (spooling it when the backend cannot take it), logs. On
 * success *result (may be NULL) takes the result. */
int xp__trial_finish(xp_trial *t, xp_value **result, xp_error_t *err);
/* Records where a remote step ran (trial document field "steps"). */
void xp__trial_note_step(xp_trial *t, const char *step, const char *host,
                         const char *worker, int64_t attempt, double elapsed);
/* Fails the trial with description (e.g. retries exhausted). */
void xp__trial_fail(xp_trial *t, const char *description);
void xp__trial_free(xp_trial **t);

/* ---- code.c, env.c, git.c, capture.c */

/* Definition text of function symbol in C source src; caller frees. */
char *xp__code_extract(const char *src, size_t len, const char *symbol);
/* Reads file (also relative to the binary holding fn) once per process and
 * extracts symbol; NULL when unavailable. Caller frees result and
 * *found_path. */
char *xp__code_capture(const char *file, const char *symbol, const void *fn,
                       char **found_path);
const char *xp__build_id(void);
void xp__environment_capture(bson_t *out, const char *program_compiler);
/* The categories read without environment variables (platform, cpu,
 * runtime, libraries into out; gpu into gpu, empty when none): safe on
 * a thread of libxp's own while the program may call setenv. */
void xp__environment_local(bson_t *out, bson_t *gpu,
                           const char *program_compiler);
/* out = local's categories, git, then gpu when not empty. */
void xp__environment_assemble(bson_t *out, const bson_t *local,
                              const bson_t *git, const bson_t *gpu);
void xp__git_capture(bson_t *doc);
/* Unified diff lines (hunk headers, ' ', '+', '-' lines) from old to new.
 * Caller frees with xp__lines_free. */
char **xp__unified_diff(const char *old_text, const char *new_text,
                        const char *old_name, const char *new_name, size_t *n);
void xp__lines_free(char **lines, size_t n);
/* XXH128 of a BSON document's bytes as 32 hex characters. */
void xp__hash_hex(const bson_t *doc, char out[33]);
/* Environment document of this process and its hash (captured once). */
const bson_t *xp__environment(const char **hash);
/* Starts capturing the environment on a background thread, once. */
void xp__environment_prefetch(void);
/* Builds ex->code and ex->code_hash (ex->lock held, graph frozen). */
void xp__code_build(xp_experiment *ex);
/* Line rendering of a document (for text files and diffs). Caller frees. */
char *xp__render_text(const bson_t *doc);
/* Stores code and environment contents once per handle; logs code
 * changes against the previous trial. */
int xp__capture_before_trial(xp_experiment *ex, xp_error_t *err);
/* Logs environment changes against the last trial (at open). */
void xp__environment_check(xp_experiment *ex);

/* ---- protocol.c: wire messages (docs/protocol.md) */

#include <czmq.h>

#define XP_PROTOCOL "XP1"
#define XP_MAX_MESSAGE_DEFAULT (64u << 20)

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
    XP_MSG_COUNT
} xp_msg_type;

const char *xp__msg_name(xp_msg_type type);
/* Caller owns result. */
zmsg_t *xp__msg_new(xp_msg_type type, const bson_t *body);
/* Validates frames of an untrusted message (routing frame removed) and
 * copies the body into an uninitialised *body. */
int xp__msg_decode(zmsg_t *msg, size_t max_body, xp_msg_type *type,
                   bson_t *body, xp_error_t *err);
/* The same on raw frames (fuzzing entry point). */
int xp__msg_decode_frames(const uint8_t *const *frames, const size_t *lens,
                          size_t n, size_t max_body, xp_msg_type *type,
                          bson_t *body, xp_error_t *err);
/* Typed field readers: NULL/false when absent or of another type. */
const char *xp__bson_utf8(const bson_t *b, const char *key);
bool xp__bson_int64(const bson_t *b, const char *key, int64_t *out);
bool xp__bson_bool(const bson_t *b, const char *key, bool dflt);
/* Static view of a sub-document or array (valid while b lives). */
bool xp__bson_sub(const bson_t *b, const char *key, bson_t *out);

/* ---- keys.c: CURVE key pairs */

/* Makes sock a CURVE client with its own pair (NAME.key or
 * NAME.key_secret) and the scheduler's public key; both NULL/"": plain. */
int xp__keys_client(zsock_t *sock, const char *key, const char *server_key,
                    xp_error_t *err);
/* Makes sock (before bind) a CURVE server with dir/scheduler.key and
 * starts *auth, which accepts only the public keys in dir/authorized. */
int xp__keys_server(zsock_t *sock, const char *dir, zactor_t **auth,
                    xp_error_t *err);
/* Writes dir/name.key and dir/name.key_secret (0600); never replaces
 * one. *public_path: caller frees with bson_free. */
int xp__keygen(const char *dir, const char *name, char **public_path,
               xp_error_t *err);

/* ---- scheduler.c: the xp-scheduler engine */

typedef struct {
    const char *bind;    /* e.g. tcp://127.0.0.1:5555 or tcp://0.0.0.0:5555 */
    const char *backend; /* where experiments are recorded */
    int heartbeat_ms;    /* 1000 */
    int max_attempts;    /* per task before its trial fails; 3 */
    size_t max_message;  /* bytes; XP_MAX_MESSAGE_DEFAULT */
    /* Owner name written on the trials it accepts; a restarted scheduler
     * takes up only its own. NULL: "<hostname> <bind>". */
    const char *name;
    const char *keys;    /* CURVE: directory with scheduler.key and
                          * authorized/; NULL: plain */
    /* Trials one client (its public key, else its connection) may have
     * accepted and not finished; 0: XP_MAX_QUEUED_PER_CLIENT_DEFAULT. */
    size_t max_queued_per_client;
    /* How long a finished batch and an unused definition are kept;
     * 0: XP_KEEP_MS_DEFAULT. */
    int64_t keep_ms;
} xp_scheduler_options;

#define XP_KEEP_MS_DEFAULT (10 * 60 * 1000)

#define XP_MAX_QUEUED_PER_CLIENT_DEFAULT 1000000

typedef struct xp_scheduler xp_scheduler;

/* Binds; caller owns *out. */
int xp__scheduler_new(xp_scheduler **out, const xp_scheduler_options *opts,
                      xp_error_t *err);
/* The endpoint actually bound (resolves tcp://...:* ports). */
const char *xp__scheduler_endpoint(const xp_scheduler *s);
/* Serves until xp__scheduler_stop or interrupt. */
int xp__scheduler_run(xp_scheduler *s);
/* Async-signal-safe. */
void xp__scheduler_stop(xp_scheduler *s);
void xp__scheduler_destroy(xp_scheduler **s);

/* ---- client.c */

/* xp_client_submit that also sends the code document of code_hash, so
 * that the scheduler can queue the trials even before a worker with that
 * code connects (they wait for one). */
int xp__client_submit_code(xp_client *c, const char *experiment,
                           const xp_value *trials, const char *code_hash,
                           const bson_t *code, int64_t *batch, int64_t **ids,
                           size_t *n, xp_error_t *err);

/* ---- config.c: daemon configuration files */

/* Reads `key = value` lines of path into the option list they stand for
 * ("--key", "value"; a switch "--key" when true). flags: the known keys,
 * NULL-terminated; "name?" marks a switch. Caller frees with
 * xp__config_free. */
int xp__config_read(const char *path, const char *const *flags,
                    char ***argv_out, int *argc_out, xp_error_t *err);
void xp__config_free(char **argv, int argc);
/* Runs a daemon's main_fn over its argument list: argv[0], the options
 * of its configuration file (--config FILE, else $env_var), then its
 * command line without --config, so that flags win over the file. A bad
 * file is one line on stderr and exit status 2. */
int xp__config_main(const char *program, const char *env_var,
                    const char *const *flags, int argc, char **argv,
                    int (*main_fn)(int argc, char **argv));

/* ---- script.c: argument parsing exposed for tests */

typedef struct {
    char **names; /* key=value pairs in order */
    char **values;
    size_t n;
    bool has_seed;
    uint64_t seed;
    const char *backend;
    const char *log_level;
    const char *scheduler; /* run on an xp-scheduler instead */
    bool help;
} xp_script_args;

int xp__script_parse(xp_script_args *a, int argc, char **argv, xp_error_t *err);
void xp__script_args_free(xp_script_args *a);

/* ---- worker.c: the xp-worker engine */

typedef struct {
    const char *endpoint;       /* scheduler, e.g. tcp://host:5555 */
    int slots;                  /* parallel tasks; 0: CPU count */
    const char *const *plugins; /* experiment shared libraries */
    size_t n_plugins;
    int heartbeat_ms;     /* 0: 1000 (the scheduler's WELCOME wins) */
    size_t max_message;   /* bytes; 0: XP_MAX_MESSAGE_DEFAULT */
    const char *key;        /* CURVE: own NAME.key(_secret); NULL: plain */
    const char *server_key; /* CURVE: the scheduler's scheduler.key */
} xp_worker_options;

typedef struct xp_worker xp_worker;

/* Loads every plugin (one-line error naming the bad one), starts the slot
 * threads and connects to the scheduler. Caller owns *out. */
int xp__worker_new(xp_worker **out, const xp_worker_options *opts,
                   xp_error_t *err);
/* Registers and runs tasks until xp__worker_stop; sends BYE, returns 0. */
int xp__worker_run(xp_worker *w);
/* Thread- and async-signal-safe. */
void xp__worker_stop(xp_worker *w);
/* Slots running a step right now (after run returned: steps that would
 * make xp__worker_destroy wait for them). */
int xp__worker_running(const xp_worker *w);
/* Waits for running steps, unloads plugins. NULL-safe; sets *w to NULL. */
void xp__worker_destroy(xp_worker **w);

#endif /* XP_PRIVATE_H */
