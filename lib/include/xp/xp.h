/* xp.h — public API of libxp, the reproducible-experiment library.
 *
 * An experiment is a graph of steps fed by named parameters; computing its
 * result once is a trial, recorded in a backend. Every function that can
 * fail returns 0 on success and -1 on failure, filling `err` (may be NULL).
 * Ownership is stated once per function.
 *
 * Memory: libxp allocates through libbson's allocator (bson_malloc and its
 * family, replaceable with bson_mem_set_vtable), which aborts the process
 * when memory is exhausted, as glib does; no function returns NULL or -1
 * for lack of memory. What a user, a file or a peer controls is bounded
 * before it is allocated (value depth, message and document sizes, counts
 * of trials, names and announced experiments), so no input can drive the
 * library there. */
#ifndef XP_XP_H
#define XP_XP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define XP_VERSION_STRING "0.1.0"

#if defined(__GNUC__)
#define XP_EXPORT __attribute__((visibility("default")))
#define XP_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define XP_EXPORT
#define XP_PRINTF(f, a)
#endif

/* ---------------------------------------------------------------- errors */

/* Fixed-size error in the shape of bson_error_t: which part failed
 * (domain), what kind of failure (code), and one line for a human. */
typedef struct {
    uint32_t domain;
    uint32_t code;
    char message[504];
} xp_error_t;

enum xp_error_domain {
    XP_DOMAIN_NONE = 0,
    XP_DOMAIN_ARGUMENT = 1, /* bad input from the caller or the command line */
    XP_DOMAIN_GRAPH = 2,    /* experiment definition */
    XP_DOMAIN_TRIAL = 3,    /* trial execution, step failures */
    XP_DOMAIN_BACKEND = 4,  /* storage */
    XP_DOMAIN_SYSTEM = 5,   /* operating system, memory */
};

enum xp_error_code {
    XP_OK = 0,
    XP_EINVAL = 1,    /* invalid argument or value */
    XP_ENOTFOUND = 2, /* no such experiment, trial, step, metric */
    XP_EEXIST = 3,    /* duplicate name */
    XP_ESTATE = 4, /* call not valid now (e.g. current trial outside a step) */
    XP_ESTEP = 5,  /* a step of the trial failed */
    XP_ECORRUPT = 6, /* stored data is damaged or foreign */
    XP_EIO = 7,      /* storage or OS failure */
    XP_ENOMEM = 8,
    XP_EUNDEFINED = 9, /* a parameter has no value */
};

/* Library-owned static string naming an error code. */
XP_EXPORT const char *xp_strerror(uint32_t code);

/* Releases memory the library handed to the caller (strings). NULL-safe. */
XP_EXPORT void xp_free(void *p);

/* ---------------------------------------------------------------- values */

typedef enum {
    XP_TYPE_NULL = 0,
    XP_TYPE_BOOL,
    XP_TYPE_INT64,
    XP_TYPE_DOUBLE,
    XP_TYPE_STRING,
    XP_TYPE_BLOB,
    XP_TYPE_ARRAY,
    XP_TYPE_DOCUMENT,
    XP_TYPE_DATETIME, /* milliseconds since the Unix epoch, UTC */
} xp_type;

/* A typed value: scalars, strings, blobs, arrays and documents (ordered
 * key -> value). Values are step inputs/outputs, parameters and records. */
typedef struct xp_value xp_value;

/* Caller owns result (a null value); destroy with xp_value_destroy. */
XP_EXPORT xp_value *xp_value_new(void);
/* NULL-safe; sets *v to NULL. */
XP_EXPORT void xp_value_destroy(xp_value **v);
/* Caller owns result: a deep copy (a null value when v is NULL). */
XP_EXPORT xp_value *xp_value_dup(const xp_value *v);

XP_EXPORT xp_type xp_value_type(const xp_value *v);
/* Static string: "null", "bool", "int64", "double", "string", "blob",
 * "array", "document", "datetime". */
XP_EXPORT const char *xp_type_name(xp_type t);

/* Reading. Numeric readers convert between bool/int64/double/datetime and
 * return 0 for any other type. */
XP_EXPORT bool xp_as_bool(const xp_value *v);
XP_EXPORT int64_t xp_as_int64(const xp_value *v);
XP_EXPORT double xp_as_double(const xp_value *v);
/* Value-owned string (NUL-terminated) or NULL when not a string. */
XP_EXPORT const char *xp_as_string(const xp_value *v, size_t *len);
/* Value-owned bytes or NULL when not a blob. */
XP_EXPORT const void *xp_as_blob(const xp_value *v, size_t *len);
/* Elements of an array or document (0 for other types). */
XP_EXPORT size_t xp_value_count(const xp_value *v);
/* Value-owned element i, or NULL when out of range. */
XP_EXPORT const xp_value *xp_value_at(const xp_value *v, size_t i);
/* Value-owned key of document element i, or NULL. */
XP_EXPORT const char *xp_value_key_at(const xp_value *v, size_t i);
/* Value-owned element of a document by key, or NULL. */
XP_EXPORT const xp_value *xp_value_get(const xp_value *v, const char *key);

/* Writing: each replaces the previous content of v; 0, or -1 when v is
 * NULL or the input is invalid (strings: not UTF-8).
 * Steps may `return xp_set_double(out, x);`. */
XP_EXPORT int xp_set_null(xp_value *v);
XP_EXPORT int xp_set_bool(xp_value *v, bool b);
XP_EXPORT int xp_set_int64(xp_value *v, int64_t i);
XP_EXPORT int xp_set_double(xp_value *v, double d);
XP_EXPORT int xp_set_datetime(xp_value *v, int64_t ms_since_epoch);
/* Copies s; the string must be valid UTF-8 (else -1). */
XP_EXPORT int xp_set_string(xp_value *v, const char *s);
XP_EXPORT int xp_set_string_len(xp_value *v, const char *s, size_t len);
/* Copies len bytes. */
XP_EXPORT int xp_set_blob(xp_value *v, const void *data, size_t len);
XP_EXPORT int xp_set_array(xp_value *v);    /* empty array */
XP_EXPORT int xp_set_document(xp_value *v); /* empty document */
/* Copies src into v (deep). */
XP_EXPORT int xp_set_value(xp_value *v, const xp_value *src);
/* Appends a null element to array v; value-owned result to fill, or NULL. */
XP_EXPORT xp_value *xp_array_append(xp_value *v);
/* Sets key in document v (replacing an existing element); value-owned
 * element to fill, or NULL. */
XP_EXPORT xp_value *xp_document_set(xp_value *v, const char *key);

/* Deep, type-sensitive equality (1 and 1.0 differ). */
XP_EXPORT bool xp_value_equal(const xp_value *a, const xp_value *b);

/* Canonical JSON (relaxed extended JSON for non-JSON types).
 * Caller owns result (free with xp_free); NULL when v is NULL or holds
 * text that is not UTF-8. */
XP_EXPORT char *xp_value_to_json(const xp_value *v);
/* Flags of xp_value_to_json_ex. */
enum {
    /* datetimes as ISO-8601 UTC strings ("2026-12-02T01:02:03.456Z") */
    XP_JSON_ISO_DATES = 1u << 0,
    /* int64 values beyond +-(2^53 - 1) as decimal strings, so that
     * JavaScript's numbers do not round them (seeds) */
    XP_JSON_SAFE_INTEGERS = 1u << 1,
    /* NaN and infinities as the strings "NaN", "Infinity", "-Infinity" */
    XP_JSON_NONFINITE_STRINGS = 1u << 2,
    /* blobs as {"$binary": base64} only up to 64 bytes, else
     * {"$blob": bytes} (the size); for pages that show, not copy */
    XP_JSON_BRIEF_BLOBS = 1u << 3,
};
/* Plain JSON for web pages and scripts: xp_value_to_json with the
 * departures flags asks for (0: exactly xp_value_to_json). Caller owns
 * result (xp_free); NULL as xp_value_to_json. */
XP_EXPORT char *xp_value_to_json_ex(const xp_value *v, unsigned flags);
/* Parses one JSON value (extended JSON accepted) into v. */
XP_EXPORT int xp_value_from_json(xp_value *v, const char *json,
                                 xp_error_t *err);
/* Script-mode literal inference, on the text as given: `true`/`false`
 * bool, `null`; text starting with `"`, `[` or `{` is JSON; with a blank at
 * either end, the exact text as a string; text starting like a number (a
 * digit after an optional sign and '.') must be all one: `1` int64, `1.5`,
 * `1.`, `.5`, `1e-3` double, refused when out of range (int64 overflow,
 * doubles that would become inf, 0 or a denormal) or malformed (`1.1.1`,
 * `0x10`); any other text (`adam`, `relu6`, `-inf`) a string. An empty
 * text or one starting with `=` is an error. See docs/guide.md. */
XP_EXPORT int xp_value_parse_literal(xp_value *v, const char *text,
                                     xp_error_t *err);

/* ---------------------------------------------------------------- logging */

typedef enum {
    XP_LOG_DEBUG = 0,
    XP_LOG_INFO = 1,
    XP_LOG_WARNING = 2,
    XP_LOG_ERROR = 3,
    XP_LOG_OFF = 4,
} xp_log_level;

/* msg is one line without the level tag or newline. */
typedef void (*xp_log_fn)(xp_log_level level, const char *msg, void *user);

/* Process-wide. NULL restores the default handler (stderr, with a
 * timestamp and `[LEVEL]` tag). */
XP_EXPORT void xp_log_set_handler(xp_log_fn fn, void *user);
XP_EXPORT void xp_log_set_level(xp_log_level level);
XP_EXPORT xp_log_level xp_log_get_level(void);
/* "debug", "info", "warning", "error", "off". */
XP_EXPORT int xp_log_level_parse(const char *name, xp_log_level *out,
                                 xp_error_t *err);

/* ---------------------------------------------------------------- experiment
 */

typedef struct xp_experiment xp_experiment;
typedef struct xp_node xp_node;
/* Context of one step execution, valid only during the step call. */
typedef struct xp_step xp_step;

/* A step: reads its inputs (in the order given at registration), writes
 * its output into `out`, returns 0, or fails with `return xp_step_fail(..)`
 * (any non-zero return fails the trial). */
typedef int (*xp_step_fn)(xp_step *st, const xp_value *const *in,
                          xp_value *out);

typedef struct {
    unsigned version; /* XP_OPEN_OPTIONS_VERSION */
    /* NULL or "": env XP_BACKEND, else the directory ./xp_cache. A
     * directory selects the local backend; the experiment lives in
     * <dir>/<id>/. "local" (daskperiment's name) is ./xp_cache too; a
     * directory named local is "./local". */
    const char *backend;
    /* Fail with XP_ENOTFOUND instead of creating a new experiment. */
    bool must_exist;
    /* Step threads for parallel branches; 0: env XP_THREADS, else CPUs. */
    int threads;
    /* Since version 2. Open to read only (history, trials, parameters,
     * metrics, persisted values, code, environment, diffs): implies
     * must_exist, and nothing is written to the store: no recovery of
     * interrupted trials, no spool replay, no schema, no write transaction,
     * so a store on a read-only mount, owned by another user or on a full
     * disk can be read. xp_experiment_sync and xp_compute fail on such a
     * handle (XP_ESTATE). */
    bool read_only;
} xp_open_options;

#define XP_OPEN_OPTIONS_VERSION 2
#define XP_OPEN_OPTIONS_INIT                                                   \
    {                                                                          \
        XP_OPEN_OPTIONS_VERSION, NULL, false, 0, false                         \
    }

/* Opens (or creates) experiment `id`: 1-64 characters of [A-Za-z0-9_-],
 * not starting with '-'. Reopening for writing reloads its trial counter
 * and history and marks trials whose recording process died as
 * `interrupted`. opts may be NULL; versions 1 (without read_only) and 2
 * are accepted. Caller owns *out; destroy with xp_experiment_destroy. */
XP_EXPORT int xp_experiment_open(xp_experiment **out, const char *id,
                                 const xp_open_options *opts, xp_error_t *err);
/* Writes trials that finished while the backend was unreachable (kept in
 * the local spool, <cache>/<id>/spool/); opening does this too. *written
 * (may be NULL) counts them. */
XP_EXPORT int xp_experiment_sync(xp_experiment *ex, size_t *written,
                                 xp_error_t *err);
/* Removes stored outputs of old trials (`xp gc`): the persisted values
 * (command logs included) of every trial but the newest keep_last and
 * those these reused outputs from (their records' "reused"), and the
 * memo entries that point at removed ones, so that a later trial runs
 * those steps again. Records are kept. With dry_run nothing is removed.
 * The counts (may be NULL): memo entries and trials whose values go. */
XP_EXPORT int xp_experiment_gc(xp_experiment *ex, int64_t keep_last,
                               bool dry_run, size_t *entries, size_t *trials,
                               xp_error_t *err);
/* NULL-safe; sets *ex to NULL. No trial may be running on it. */
XP_EXPORT void xp_experiment_destroy(xp_experiment **ex);
/* Experiment-owned strings. */
XP_EXPORT const char *xp_experiment_id(const xp_experiment *ex);
/* Backend description with any password masked, e.g. "local:xp_cache/a". */
XP_EXPORT const char *xp_experiment_backend(const xp_experiment *ex);

/* 0 when `id` is a valid experiment id, else -1 with the reason. Step,
 * parameter and metric names follow the same rule (up to 128 chars). */
XP_EXPORT int xp_check_id(const char *id, xp_error_t *err);
XP_EXPORT int xp_check_name(const char *kind, const char *name,
                            xp_error_t *err);

/* ---- graph definition. Node constructors return an experiment-owned
 * node, or NULL after recording the first definition error in the
 * experiment (reported by xp_experiment_check and by xp_compute). The
 * refusals marked "recoverable" below instead leave the definition as it
 * was: NULL, the error logged at XP_LOG_ERROR, the experiment usable (a
 * step given that NULL as input is a definition error quoting it). */

/* Declaring a parameter again returns the same node when its default is
 * the same (or neither has one); another default is refused
 * (recoverable: XP_EEXIST, the first declaration stands). */
XP_EXPORT xp_node *xp_parameter(xp_experiment *ex, const char *name);
/* Declares a parameter with a default (copied). */
XP_EXPORT xp_node *xp_parameter_default(xp_experiment *ex, const char *name,
                                        const xp_value *def);
/* Declares a parameter whose default is a script-mode literal ("1.5"). */
XP_EXPORT xp_node *xp_parameter_literal(xp_experiment *ex, const char *name,
                                        const char *literal);
/* Registers step `fn` named `name` over `n` input nodes. file/line
 * locate its source (code capture, by fn's symbol, so `name` may differ
 * from the function's); may be NULL/0. Registering fn again under a name
 * its earlier use holds adds another node, named name-2, name-3, ... (one
 * function on several inputs); a name held by a parameter or by another
 * function is a duplicate (XP_EEXIST). */
XP_EXPORT xp_node *xp_step_add(xp_experiment *ex, const char *name,
                               xp_step_fn fn, size_t n, xp_node *const *inputs,
                               const char *file, int line);
/* Marks node as the experiment's result; returns node. An experiment has
 * one result: marking another step is refused (recoverable: XP_EEXIST,
 * logged, NULL returned, the first result stays; node stays in the graph
 * as an extra step, which runs only if the result needs it). Use a
 * second experiment id for another graph, or xp_persist to keep an
 * intermediate value. */
XP_EXPORT xp_node *xp_result(xp_node *node);
/* XP_RESULT's xp_result: the step was made for this call alone, so a
 * refusal also takes it out of the graph. */
XP_EXPORT xp_node *xp__result_new(xp_node *fresh);
/* Marks a step's output as persisted (stored per trial); returns node. */
XP_EXPORT xp_node *xp_persist(xp_node *node);
/* Marks a step pure: its output depends only on its inputs and code, so
 * a trial whose step has the same code and inputs as a recorded one
 * reuses that recorded output instead of running it (memoisation, see
 * xp_run_options.memo). Implies xp_persist. Returns node. */
XP_EXPORT xp_node *xp_pure(xp_node *node);
/* Makes the value of environment variable name (unset counts as a
 * value of its own) part of pure step node's memo key: a trial with
 * another value runs the step. Returns node. */
XP_EXPORT xp_node *xp_memo_env(xp_node *node, const char *name);
/* Node-owned name. */
XP_EXPORT const char *xp_node_name(const xp_node *node);
/* 0 when the definition so far is valid, else the first error. */
XP_EXPORT int xp_experiment_check(const xp_experiment *ex, xp_error_t *err);

/* XP_STEP(ex, fn, inputs...): registers fn under its own name. In C the
 * inputs become a compound literal; C++ has none, so there they pass
 * through an initializer list (xp__step_add_list, after the C block). */
#ifndef __cplusplus
#define XP__INPUTS(...) ((xp_node *const[]){NULL, __VA_ARGS__} + 1)
#define XP__NINPUTS(...)                                                       \
    (sizeof((xp_node *const[]){NULL, __VA_ARGS__}) / sizeof(xp_node *) - 1)
#define XP_STEP(ex, fn, ...)                                                   \
    xp_step_add((ex), #fn, (fn), XP__NINPUTS(__VA_ARGS__),                     \
                XP__INPUTS(__VA_ARGS__), __FILE__, __LINE__)
#else
#define XP_STEP(ex, fn, ...)                                                   \
    xp__step_add_list((ex), #fn, (fn), {__VA_ARGS__}, __FILE__, __LINE__)
#endif
/* A step without inputs. */
#define XP_STEP0(ex, fn)                                                       \
    xp_step_add((ex), #fn, (fn), 0, NULL, __FILE__, __LINE__)
#define XP_RESULT(ex, fn, ...) xp__result_new(XP_STEP(ex, fn, __VA_ARGS__))
#define XP_PERSIST(ex, fn, ...) xp_persist(XP_STEP(ex, fn, __VA_ARGS__))
#define XP_PURE(ex, fn, ...) xp_pure(XP_STEP(ex, fn, __VA_ARGS__))

/* ---- parameter values for the next trials (copied). Setting an
 * undeclared name is an XP_ENOTFOUND error. */
XP_EXPORT int xp_set_param(xp_experiment *ex, const char *name,
                           const xp_value *v, xp_error_t *err);
XP_EXPORT int xp_set_param_literal(xp_experiment *ex, const char *name,
                                   const char *literal, xp_error_t *err);
XP_EXPORT int xp_set_param_int64(xp_experiment *ex, const char *name, int64_t v,
                                 xp_error_t *err);
XP_EXPORT int xp_set_param_double(xp_experiment *ex, const char *name, double v,
                                  xp_error_t *err);
XP_EXPORT int xp_set_param_bool(xp_experiment *ex, const char *name, bool v,
                                xp_error_t *err);
XP_EXPORT int xp_set_param_string(xp_experiment *ex, const char *name,
                                  const char *v, xp_error_t *err);

/* ---- running trials */

/* Memoisation of pure steps (xp_pure) for one trial. */
typedef enum {
    XP_MEMO_USE = 0, /* reuse a recorded output when the key matches */
    XP_MEMO_OFF,     /* run every step, reuse nothing */
    XP_MEMO_REFRESH  /* run every step and record outputs for later reuse */
} xp_memo_mode;

typedef struct {
    unsigned version; /* XP_RUN_OPTIONS_VERSION */
    /* Trial seed; without it the experiment default or a generated one. */
    bool has_seed;
    uint64_t seed;
    /* Optional document name -> value overriding the experiment's current
     * parameter values for this trial only (thread-safe sweeps). */
    const xp_value *params;
    /* Since version 2. */
    xp_memo_mode memo;
    /* A recorded trial this one re-runs (xp reproduce), recorded as the
     * field "reproduces"; 0 for none. */
    int64_t reproduces;
} xp_run_options;

#define XP_RUN_OPTIONS_VERSION 2
#define XP_RUN_OPTIONS_INIT                                                    \
    {                                                                          \
        XP_RUN_OPTIONS_VERSION, false, 0, NULL, XP_MEMO_USE, 0                 \
    }

/* Runs one trial: allocates the next trial id, records it as running,
 * executes the graph (independent steps in parallel), records the outcome.
 * On success *result (caller owns; may be NULL to discard) holds the result.
 * A failed step returns -1 with XP_ESTEP and "step: message"; the trial is
 * recorded as failed. A declared parameter without a value (read by the
 * result or not) returns XP_EUNDEFINED naming every such parameter, and
 * allocates no id; every parameter's value is recorded. *trial_id (may be NULL)
 * gets the id, or 0 if none. Thread-safe: several threads may compute on one
 * experiment. */
XP_EXPORT int xp_compute(xp_experiment *ex, const xp_run_options *opts,
                         xp_value **result, int64_t *trial_id, xp_error_t *err);

/* Sets the default seed for trials run without one. */
XP_EXPORT void xp_experiment_set_seed(xp_experiment *ex, uint64_t seed);

/* ---- inside a step */

/* Records the step's failure message; returns -1 so a step can
 * `return xp_step_fail(st, "division by zero");`. */
XP_EXPORT int xp_step_fail(xp_step *st, const char *fmt, ...) XP_PRINTF(2, 3);
/* Appends (epoch, value) to metric `name` of the current trial. */
XP_EXPORT int xp_save_metric(xp_step *st, const char *name, int64_t epoch,
                             double value);
XP_EXPORT int64_t xp_step_trial_id(const xp_step *st);
/* Step-owned name. */
XP_EXPORT const char *xp_step_name(const xp_step *st);
/* The step's seed, derived from (trial seed, step name). */
XP_EXPORT uint64_t xp_step_seed(const xp_step *st);
/* Deterministic per-step random numbers (xoshiro256**): the same trial
 * seed gives the same sequence whatever thread or host runs the step. */
XP_EXPORT uint64_t xp_random_u64(xp_step *st);
/* Uniform in [0, 1). */
XP_EXPORT double xp_random(xp_step *st);

/* Trial id of the step running on the calling thread; XP_ESTATE outside
 * a step. */
XP_EXPORT int xp_current_trial_id(int64_t *id, xp_error_t *err);
/* Last trial id allocated for the experiment (0 when none); XP_ESTATE
 * when called inside a step. */
XP_EXPORT int xp_last_trial_id(xp_experiment *ex, int64_t *id, xp_error_t *err);

/* ---- reading history back */

/* Array of trial documents in id order, failed and interrupted included.
 * Fields: trial_id, experiment, status, parameters, seed, started,
 * finished, result, result_type, success, process_time, description,
 * host, pid, code_hash, environment_hash, and purity_warnings (array of
 * step names) when a step gave a different output for the same input.
 * Caller owns *out. */
XP_EXPORT int xp_history(xp_experiment *ex, xp_value **out, xp_error_t *err);
/* One trial document; XP_ENOTFOUND for an unknown id. Caller owns *out. */
XP_EXPORT int xp_trial_get(xp_experiment *ex, int64_t trial_id, xp_value **out,
                           xp_error_t *err);
/* Parameters document of a trial. Caller owns *out. */
XP_EXPORT int xp_trial_parameters(xp_experiment *ex, int64_t trial_id,
                                  xp_value **out, xp_error_t *err);
/* Persisted output of `step` in trial. Caller owns *out. */
XP_EXPORT int xp_load_persisted(xp_experiment *ex, const char *step,
                                int64_t trial_id, xp_value **out,
                                xp_error_t *err);

/* Code context of a trial: document {parameters: [{name, default?}],
 * steps: [{name, file, line, symbol, inputs, result, persisted,
 * source | build_id | same_as}]} in registration order; a function used
 * by several steps has its source at its first use, and each later use
 * names that step in same_as (docs/storage.md). trial_id 0: the steps
 * registered on this handle now (or, when none, the code of the last
 * trial). Caller owns *out. */
XP_EXPORT int xp_code_get(xp_experiment *ex, int64_t trial_id, xp_value **out,
                          xp_error_t *err);
/* The same code as C text, as `xp code` shows it: each step under a
 * comment saying where it was registered, a function's source once, at
 * its first use. Caller frees *out (xp_free). */
XP_EXPORT int xp_code_text(xp_experiment *ex, int64_t trial_id, char **out,
                           xp_error_t *err);
/* Environment of a trial (trial_id 0: this process), whole or one
 * category: "platform", "cpu", "runtime", "libraries", "git", "gpu".
 * Caller owns *out. */
XP_EXPORT int xp_environment_get(xp_experiment *ex, int64_t trial_id,
                                 const char *category, xp_value **out,
                                 xp_error_t *err);
/* Differences between two trials: document {parameters, code,
 * environment}, each an array of unified-diff lines (empty when equal).
 * Caller owns *out. */
XP_EXPORT int xp_trial_diff(xp_experiment *ex, int64_t trial_a, int64_t trial_b,
                            xp_value **out, xp_error_t *err);

/* ---- xp reproduce: re-running a recorded trial and comparing the two
 * (docs/guide.md "Checking a trial reproduces") */

/* What re-runs trial_id: document {parameters, seed, reproduces:
 * trial_id}, a trial spec as xp_client_submit takes it. XP_ENOTFOUND
 * for an unknown trial, XP_ESTATE for one still queued or running.
 * Caller owns *out. */
XP_EXPORT int xp_reproduce_spec(xp_experiment *ex, int64_t trial_id,
                                xp_value **out, xp_error_t *err);
/* Runs trial_id again in this process on ex's graph: its parameters and
 * seed, every step run (memoisation off), recorded with "reproduces":
 * trial_id. *reproduction (may be NULL) gets the new trial's id. A
 * failed step is no error here (the comparison tells); -1 when no trial
 * could run (e.g. a parameter the code now needs has no value). */
XP_EXPORT int xp_reproduce_run(xp_experiment *ex, int64_t trial_id,
                               int64_t *reproduction, xp_error_t *err);
/* Compares trial reproduction with the trial original it re-ran:
 * document {original, reproduction (ids), reproduced (bool), status and
 * result ({original, reproduction, equal}), steps ([{step, original,
 * reproduction (output hashes, null: not run), equal (null: the
 * original recorded no step hashes)}], in the code's order, the result
 * step's hash taken from the result), steps_recorded, differing ([step
 * names]), parameters, code, environment (xp_trial_diff's lines)}.
 * reproduced: same status, result and step outputs (code and
 * environment differences explain, they do not decide). Caller owns
 * *out. */
XP_EXPORT int xp_reproduce_compare(xp_experiment *ex, int64_t original,
                                   int64_t reproduction, xp_value **out,
                                   xp_error_t *err);
/* The report of xp_reproduce_compare as text: the two trials side by
 * side, the diffs, and a last line "reproduced: ..." or "not reproduced:
 * ... in the result, step NAME". Caller frees with xp_free; NULL when
 * report is not one. */
XP_EXPORT char *xp_reproduce_text(const xp_value *report);
/* Line rendering of a value, `key: value` per scalar (nested keys joined
 * with '.'). Caller owns result (xp_free). */
XP_EXPORT char *xp_value_to_text(const xp_value *v);

/* ---- querying history: the filter language of `xp history --filter` and
 * the dashboard (docs/guide.md#filters). */

typedef struct {
    unsigned version; /* XP_QUERY_VERSION */
    /* Filter expression, e.g. `a > 1 and status == "failed"`; NULL or "":
     * every trial. */
    const char *filter;
    /* Comma-separated sort keys, each a field name with '-' before it for
     * descending ("-result,a"); NULL or "": trial id ascending. Ties are
     * broken by trial id ascending. */
    const char *sort;
    /* Matching trials skipped, then at most limit returned (0: all). */
    int64_t offset;
    int64_t limit;
} xp_query;

#define XP_QUERY_VERSION 1
#define XP_QUERY_INIT                                                          \
    {                                                                          \
        XP_QUERY_VERSION, NULL, NULL, 0, 0                                     \
    }

/* One page of history: *page (caller owns) an array of trial documents as
 * xp_history gives them, *matched (may be NULL) how many trials the filter
 * matches. Evaluated where the data is: SQL on the local store, a query
 * document on MongoDB, a streamed scan on Redis; at most offset + limit
 * trial documents are held at once. A malformed filter or sort is
 * XP_EINVAL with a one-line message giving the column ("filter: column 5:
 * expected a value after '>'"). */
XP_EXPORT int xp_history_query(xp_experiment *ex, const xp_query *q,
                               xp_value **page, int64_t *matched,
                               xp_error_t *err);
/* Checks q's filter and sort without an experiment (same errors). */
XP_EXPORT int xp_query_check(const xp_query *q, xp_error_t *err);

/* Ids of the experiments of a backend (NULL or "": as xp_open_options'
 * backend), sorted, as an array of strings (a backend holding more than
 * 100,000 is XP_EINVAL). Caller owns *out. */
XP_EXPORT int xp_experiments(const char *backend, xp_value **out,
                             xp_error_t *err);

/* Names of the metrics trial_id saved, sorted, as an array of strings
 * (empty when none). Caller owns *out. */
XP_EXPORT int xp_metric_names(xp_experiment *ex, int64_t trial_id,
                              xp_value **out, xp_error_t *err);

/* One metric series of one trial, in epoch order. */
typedef struct {
    size_t n;         /* points in epochs/values */
    size_t total;     /* points stored in the requested epoch range */
    bool downsampled; /* n < total */
    int64_t *epochs;
    double *values;
} xp_series;

/* Loads metric name of trial_id between epochs epoch_min and epoch_max
 * (inclusive; INT64_MIN/INT64_MAX for all). With max_points 0, or no more
 * points than max_points, every point; else at most max_points: the first
 * and last points, and between them the epoch range is cut into
 * (max_points - 2) / 2 buckets of equal width and each bucket gives its
 * minimum and its maximum point (in epoch order), so spikes stay visible
 * (NaN values only where a bucket has nothing else; max_points 1: the
 * first point). Unknown trial or metric: XP_ENOTFOUND. Caller owns *out
 * (xp_series_destroy). */
XP_EXPORT int xp_metric_series(xp_experiment *ex, const char *name,
                               int64_t trial_id, int64_t epoch_min,
                               int64_t epoch_max, size_t max_points,
                               xp_series **out, xp_error_t *err);
/* NULL-safe; sets *s to NULL. */
XP_EXPORT void xp_series_destroy(xp_series **s);

/* The experiment's graph, from the code of trial_id (0: the definition on
 * this handle, else the last trial's): document {parameters: [{name,
 * default?}], steps: [{name, inputs: [names], persisted, result}]}. For a
 * trial, each step also has status ("succeeded", "failed", "not run",
 * "running") and, where the trial recorded it, host, worker, attempt,
 * elapsed (seconds) and the batch job its worker ran in, job: {id,
 * array_index?, node?}. Caller owns *out. */
XP_EXPORT int xp_graph_get(xp_experiment *ex, int64_t trial_id, xp_value **out,
                           xp_error_t *err);
/* The same graph in Graphviz DOT (parameters as ellipses, steps as boxes,
 * persisted steps double-bordered, the result bold; for a trial, steps
 * coloured by status with host and elapsed in their tooltip). Caller
 * frees *out (xp_free). */
XP_EXPORT int xp_graph_dot(xp_experiment *ex, int64_t trial_id, char **out,
                           xp_error_t *err);

/* Metric values as an epoch x trial table. */
typedef struct xp_metric_table xp_metric_table;

/* Loads metric `name` for n trials. An unknown trial id or a trial that
 * did not save the metric is an error. Caller owns *out. */
XP_EXPORT int xp_load_metric(xp_experiment *ex, const char *name,
                             const int64_t *trial_ids, size_t n,
                             xp_metric_table **out, xp_error_t *err);
XP_EXPORT void xp_metric_table_destroy(xp_metric_table **t);
XP_EXPORT size_t xp_metric_table_epochs(const xp_metric_table *t);
XP_EXPORT size_t xp_metric_table_trials(const xp_metric_table *t);
XP_EXPORT int64_t xp_metric_table_epoch(const xp_metric_table *t, size_t row);
XP_EXPORT int64_t xp_metric_table_trial(const xp_metric_table *t, size_t col);
/* NaN where that trial has no value at that epoch. */
XP_EXPORT double xp_metric_table_value(const xp_metric_table *t, size_t row,
                                       size_t col);

/* ---------------------------------------------------------------- experiment
 * files: experiments defined in a YAML file, with steps that are commands
 * in any language (docs/commands.md) */

/* A loaded experiment file: its id, parameters (defaults, types), steps
 * (commands, or C functions from a shared library) and result. */
typedef struct xp_definition xp_definition;

/* Reads and checks the file at path, and the code files its steps name
 * (their text enters the code context, so an edit is a code change). A
 * bad file is XP_EINVAL with "FILE:LINE: what". Caller owns *out. */
XP_EXPORT int xp_definition_load(xp_definition **out, const char *path,
                                 xp_error_t *err);
/* NULL-safe; sets *d to NULL. Experiments it was applied to keep their
 * own copy of every step. */
XP_EXPORT void xp_definition_destroy(xp_definition **d);
/* Definition-owned experiment id from the file. */
XP_EXPORT const char *xp_definition_id(const xp_definition *d);
/* Declares d's parameters and steps on ex (C programs may add steps of
 * their own reading them, see xp_node_find) and returns the node the
 * file names as result, without marking it (call xp_result); NULL after
 * a definition error, reported by xp_experiment_check. */
XP_EXPORT xp_node *xp_definition_apply(const xp_definition *d,
                                       xp_experiment *ex);
/* Checks parameter values against d's declared types, converting an int
 * given for a float parameter to a double in place. */
XP_EXPORT int xp_definition_check_params(const xp_definition *d,
                                         xp_value *params, xp_error_t *err);
/* Experiment-owned node named name, or NULL. */
XP_EXPORT xp_node *xp_node_find(xp_experiment *ex, const char *name);
/* Script mode over the file at path (`xp run FILE a=1 --seed 7`):
 * argv[0] names the program in messages, then xp_main's arguments; the
 * same exit codes and records. */
XP_EXPORT int xp_main_file(const char *path, int argc, char **argv);
/* The log a command step left in a trial: document {argv, status (null
 * when a signal ended it), signal?, timed_out, elapsed, stdout, stderr
 * (the last 64 KiB of each), stdout_bytes, stderr_bytes}. XP_ENOTFOUND
 * when the step is not a command step or did not run. Caller owns *out. */
XP_EXPORT int xp_step_log(xp_experiment *ex, int64_t trial_id, const char *step,
                          xp_value **out, xp_error_t *err);

/* ---------------------------------------------------------------- remote */

/* A connection to an xp-scheduler (docs/protocol.md). */
typedef struct xp_client xp_client;

/* endpoint NULL or "": env XP_SCHEDULER. Every reply is awaited at most
 * timeout_ms (0: 10 s), that of a submission of n trials 0.1 ms more a
 * trial (each is recorded before the answer). With env XP_KEY and
 * XP_SERVER_KEY set, connects with CURVE as xp_client_connect_secure
 * does. Caller owns *out. */
XP_EXPORT int xp_client_connect(xp_client **out, const char *endpoint,
                                int timeout_ms, xp_error_t *err);
/* CURVE: key is this client's pair (NAME.key from `xp keygen`, its secret
 * beside it), server_key the scheduler's public scheduler.key. NULL: env
 * XP_KEY / XP_SERVER_KEY; "": none. A scheduler that does not know the
 * key never answers: requests time out. */
XP_EXPORT int xp_client_connect_secure(xp_client **out, const char *endpoint,
                                       int timeout_ms, const char *key,
                                       const char *server_key, xp_error_t *err);
/* NULL-safe; sets *c to NULL. */
XP_EXPORT void xp_client_destroy(xp_client **c);
/* Creates a CURVE key pair: dir/name.key (public, to hand out) and
 * dir/name.key_secret (mode 0600); never replaces an existing one
 * (XP_EEXIST). *public_path (caller frees with xp_free) names the public
 * file. */
XP_EXPORT int xp_keygen(const char *dir, const char *name, char **public_path,
                        xp_error_t *err);
/* Submits trials of experiment: an array of documents {parameters: {..},
 * seed: int64 (optional), memo: int64 xp_memo_mode (optional),
 * reproduces: the trial it re-runs (optional, xp_reproduce_spec)}.
 * code_hash NULL: the definition the scheduler last saw from a worker.
 * Returns once every trial is recorded as queued; *ids (caller frees with
 * xp_free) gets their ids, in order. A bad trial rejects the whole batch
 * and records nothing. */
XP_EXPORT int xp_client_submit(xp_client *c, const char *experiment,
                               const xp_value *trials, const char *code_hash,
                               int64_t *batch, int64_t **ids, size_t *n,
                               xp_error_t *err);

typedef struct {
    int64_t queued, running, done, failed, total;
    /* Why queued trials cannot start (e.g. no connected worker has their
     * code), or "" */
    char waiting[256];
} xp_progress;

/* Progress of a batch; *finished (caller owns, may be NULL) gets the
 * trials finished since *cursor as documents {trial_id, status, result,
 * result_type, description, spooled?}; *cursor advances. status is the
 * one the trial is (or will be) stored with; spooled: true when the
 * backend could not take it yet and the scheduler keeps it in its spool
 * until the backend answers. */
XP_EXPORT int xp_client_progress(xp_client *c, int64_t batch, int64_t *cursor,
                                 xp_progress *p, xp_value **finished,
                                 xp_error_t *err);
/* xp_client_progress that lets the scheduler hold its answer up to
 * wait_ms (at most half the connection's timeout) while no trial of the
 * batch finishes past *cursor: it answers when the batch is complete, or
 * 10 ms after a trial finished (gathering those that follow), so a
 * client following a batch neither sleeps nor spins. A scheduler that
 * does not hold answers (older than this field) answers at once. */
XP_EXPORT int xp_client_wait(xp_client *c, int64_t batch, int64_t *cursor,
                             int wait_ms, xp_progress *p, xp_value **finished,
                             xp_error_t *err);

/* ---------------------------------------------------------------- Slurm */

/* A Slurm array job of xp-workers (`xp slurm`, docs/cluster.md). */
typedef struct xp_slurm_job xp_slurm_job;

/* Reads the job's options as the daemons read theirs: argv[1..argc) as
 * --name VALUE flags, over --config FILE (else $XP_SLURM_CONFIG), over
 * XP_* variables, over defaults; `--help` and `--print-config` print and
 * end. 0 with *out (caller owns; xp_slurm_job_destroy); -1 when the
 * caller should exit with *status: 0 after printing, 2 after a one-line
 * error on stderr. */
XP_EXPORT int xp_slurm_job_load(xp_slurm_job **out, int argc, char **argv,
                                int *status);
/* The sbatch script: an array of --workers elements, each exec'ing one
 * xp-worker connected to the scheduler, SIGTERM'd --signal seconds before
 * the walltime. XP_EINVAL without a scheduler or a plugin. Caller frees
 * *out with xp_free. */
XP_EXPORT int xp_slurm_job_script(const xp_slurm_job *job, char **out,
                                  xp_error_t *err);
/* The job's name (--job-name), which status and cancel look for. */
XP_EXPORT const char *xp_slurm_job_name(const xp_slurm_job *job);
/* NULL-safe; sets *job to NULL. */
XP_EXPORT void xp_slurm_job_destroy(xp_slurm_job **job);

/* ---------------------------------------------------------------- script mode
 */

/* Defines the graph on ex and returns the result node (NULL on error). */
typedef xp_node *(*xp_define_fn)(xp_experiment *ex);

/* Script mode: parses `key=value... [--seed N] [--backend B] [--log-level L]
 * [--help]`, opens experiment `id`, defines it, runs one trial, prints the
 * result on stdout. Returns the process exit status: 0 on success, 1 when
 * the trial failed, 2 on bad arguments (nothing recorded). */
XP_EXPORT int xp_main(const char *id, xp_define_fn define, int argc,
                      char **argv);

/* Describes one experiment of a worker plugin (shared library). */
typedef struct {
    uint32_t abi; /* XP_PLUGIN_ABI */
    const char *id;
    xp_define_fn define;
} xp_experiment_def;

#define XP_PLUGIN_ABI 1

/* XP_EXPERIMENT(id, ex) { ...; return result_node; } defines experiment
 * `id`. Built normally it provides main() (script mode); built with
 * -DXP_PLUGIN it exports the definition for xp-worker instead. */
#define XP__DEFINE_FN(id) xp__define_##id
/* A const object at namespace scope has internal linkage in C++: the
 * plugin's definition is declared extern "C" there so xp-worker finds it. */
#ifdef __cplusplus
#define XP__EXTERN_C extern "C"
#else
#define XP__EXTERN_C
#endif
#ifdef XP_PLUGIN
#define XP__ENTRY(id)                                                          \
    XP__EXTERN_C XP_EXPORT const xp_experiment_def xp_plugin_experiment = {    \
        XP_PLUGIN_ABI, #id, XP__DEFINE_FN(id)};
#else
#define XP__ENTRY(id)                                                          \
    int main(int argc, char **argv)                                            \
    {                                                                          \
        return xp_main(#id, XP__DEFINE_FN(id), argc, argv);                    \
    }
#endif
#define XP_EXPERIMENT(id, ex)                                                  \
    static xp_node *XP__DEFINE_FN(id)(xp_experiment * ex);                     \
    XP__ENTRY(id)                                                              \
    static xp_node *XP__DEFINE_FN(id)(xp_experiment * ex)

#ifdef __cplusplus
}

#include <initializer_list>

/* XP_STEP's inputs in C++. */
inline xp_node *xp__step_add_list(xp_experiment *ex, const char *name,
                                  xp_step_fn fn,
                                  std::initializer_list<xp_node *> inputs,
                                  const char *file, int line)
{
    return xp_step_add(ex, name, fn, inputs.size(), inputs.begin(), file, line);
}
#endif

#endif /* XP_XP_H */
