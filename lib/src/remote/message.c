/* message.c — the wire messages between clients, xp-scheduler and
 * xp-worker (docs/protocol.md): three ZeroMQ frames, "XP1", the message
 * type and a BSON body. The home of every body: each has its struct in
 * message.h and its encoder and decoder side by side here, the only
 * place that spells a field name. Decoding checks everything a peer
 * controls (lengths and nesting before libbson walks the body, then every
 * field's presence and type) and never trusts a length it did not
 * verify. */
#include "remote/message.h"

#include "store/metric.h"

#include "util/bson_util.h"
#include "util/error.h"
#include "util/names.h"
#include "value.h"

#include <stdarg.h>
#include <string.h>

static const char *const s_names[XP_MSG_COUNT] = {
    [XP_MSG_HELLO] = "HELLO",
    [XP_MSG_WELCOME] = "WELCOME",
    [XP_MSG_HEARTBEAT] = "HEARTBEAT",
    [XP_MSG_TASK] = "TASK",
    [XP_MSG_RESULT] = "RESULT",
    [XP_MSG_SUBMIT] = "SUBMIT",
    [XP_MSG_ACCEPTED] = "ACCEPTED",
    [XP_MSG_STATUS] = "STATUS",
    [XP_MSG_PROGRESS] = "PROGRESS",
    [XP_MSG_ERROR] = "ERROR",
    [XP_MSG_BYE] = "BYE",
    [XP_MSG_TASKS] = "TASKS",
    [XP_MSG_RESULTS] = "RESULTS",
};

const char *xp__msg_name(xp_msg_type type)
{
    return (unsigned)type < XP_MSG_COUNT ? s_names[type] : "?";
}

/* ---------------------------------------------------------------- envelope */

/* Fills err from fmt and returns fault. */
static xp_msg_fault s_fault(xp_error_t *err, xp_msg_fault fault,
                            const char *fmt, ...) XP_PRINTF(3, 4);

static xp_msg_fault s_fault(xp_error_t *err, xp_msg_fault fault,
                            const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    xp__verror(err, XP_DOMAIN_ARGUMENT, XP_EINVAL, fmt, ap);
    va_end(ap);
    return fault;
}

static xp_msg_fault s_open_frames(const uint8_t *const *frames,
                                  const size_t *lens, size_t n, size_t max_body,
                                  xp_msg_type *type, bson_t *body,
                                  xp_error_t *err)
{
    if (n != 3)
        return s_fault(err, XP_MSG_FAULT_FRAMES,
                       "malformed message: %zu frames (expected 3)", n);
    if (lens[0] != 3 || memcmp(frames[0], XP_PROTOCOL, 3) != 0)
        return s_fault(err, XP_MSG_FAULT_PROTOCOL,
                       "malformed message: not protocol " XP_PROTOCOL);
    int found = -1;
    for (int i = 0; i < XP_MSG_COUNT; i++)
        if (lens[1] == strlen(s_names[i]) &&
            memcmp(frames[1], s_names[i], lens[1]) == 0)
            found = i;
    if (found < 0)
        return s_fault(err, XP_MSG_FAULT_TYPE,
                       "malformed message: unknown type (%zu bytes)", lens[1]);
    if (lens[2] > max_body)
        return s_fault(err, XP_MSG_FAULT_SIZE,
                       "message %s of %zu bytes exceeds the limit of %zu",
                       s_names[found], lens[2], max_body);
    /* Lengths, depth, types and UTF-8 without recursion: the check is
     * at least as strict as bson_validate(BSON_VALIDATE_UTF8), which
     * fuzz_message asserts, so that second pass is not made. */
    xp_error_t why;
    bson_t view;
    if (xp__bson_check(frames[2], lens[2], XP_MSG_MAX_DEPTH, &why) != 0)
        return s_fault(err, XP_MSG_FAULT_BODY, "malformed message %s: %s",
                       s_names[found], why.message);
    if (!bson_init_static(&view, frames[2], lens[2]))
        return s_fault(err, XP_MSG_FAULT_BODY,
                       "malformed message %s: body is not valid BSON",
                       s_names[found]);
    *type = (xp_msg_type)found;
    bson_copy_to(&view, body);
    return XP_MSG_FAULT_NONE;
}

int xp__msg_decode_frames(const uint8_t *const *frames, const size_t *lens,
                          size_t n, size_t max_body, xp_msg_type *type,
                          bson_t *body, xp_error_t *err)
{
    return s_open_frames(frames, lens, n, max_body, type, body, err) ==
                   XP_MSG_FAULT_NONE
               ? 0
               : -1;
}

xp_msg_fault xp__msg_open(zmsg_t *msg, size_t max_body, xp_msg_type *type,
                          bson_t *body, xp_error_t *err)
{
    size_t n = zmsg_size(msg);
    if (n != 3)
        return s_fault(err, XP_MSG_FAULT_FRAMES,
                       "malformed message: %zu frames (expected 3)", n);
    const uint8_t *frames[3];
    size_t lens[3];
    zframe_t *f = zmsg_first(msg);
    for (size_t i = 0; i < 3; i++, f = zmsg_next(msg)) {
        frames[i] = zframe_data(f);
        lens[i] = zframe_size(f);
    }
    return s_open_frames(frames, lens, 3, max_body, type, body, err);
}

int xp__msg_decode(zmsg_t *msg, size_t max_body, xp_msg_type *type,
                   bson_t *body, xp_error_t *err)
{
    return xp__msg_open(msg, max_body, type, body, err) == XP_MSG_FAULT_NONE
               ? 0
               : -1;
}

zmsg_t *xp__msg_new(xp_msg_type type, const bson_t *body)
{
    zmsg_t *msg = zmsg_new();
    zmsg_addmem(msg, XP_PROTOCOL, 3);
    zmsg_addstr(msg, s_names[type]);
    zmsg_addmem(msg, bson_get_data(body), body->len);
    return msg;
}

/* The message of type with body, which it destroys. */
static zmsg_t *s_finish(xp_msg_type type, bson_t *body)
{
    zmsg_t *msg = xp__msg_new(type, body);
    bson_destroy(body);
    return msg;
}

zmsg_t *xp__msg_empty_encode(xp_msg_type type)
{
    bson_t body = BSON_INITIALIZER;
    return s_finish(type, &body);
}

/* ------------------------------------------------------- field helpers */

static int s_malformed(xp_error_t *err, xp_msg_type type, const char *what)
{
    return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL, "malformed %s%s%s",
                     s_names[type], what ? ": " : "", what ? what : "");
}

/* Key of array index i into buf. */
static const char *s_index(uint32_t i, char buf[16])
{
    const char *k;
    bson_uint32_to_string(i, &k, buf, 16);
    return k;
}

/* An optional int: false when present with another type. */
static bool s_opt_int(const bson_t *b, const char *key, int64_t *out)
{
    bson_iter_t it;
    if (!bson_iter_init_find(&it, b, key))
        return true;
    return xp__bson_int64(b, key, out);
}

/* The document (not array) at key. */
static bool s_doc(const bson_t *b, const char *key, xp_msg_doc *out)
{
    bson_iter_t it;
    if (!bson_iter_init_find(&it, b, key) || !BSON_ITER_HOLDS_DOCUMENT(&it))
        return false;
    bson_iter_document(&it, &out->len, &out->data);
    return true;
}

/* The array at key. */
static bool s_array(const bson_t *b, const char *key, xp_msg_doc *out)
{
    bson_iter_t it;
    if (!bson_iter_init_find(&it, b, key) || !BSON_ITER_HOLDS_ARRAY(&it))
        return false;
    bson_iter_array(&it, &out->len, &out->data);
    return true;
}

/* Appends the elements of doc (none: an empty array) as an array under
 * key, keyed 0, 1, ... whatever their keys were. */
static void s_append_array(bson_t *b, const char *key, xp_msg_doc doc)
{
    bson_t list, view;
    bson_iter_t it;
    uint32_t i = 0;
    BSON_APPEND_ARRAY_BEGIN(b, key, &list);
    if (xp__msg_doc_view(doc, &view) && bson_iter_init(&it, &view))
        while (bson_iter_next(&it)) {
            char k[16];
            const char *kp;
            bson_uint32_to_string(i++, &kp, k, sizeof k);
            bson_append_iter(&list, kp, -1, &it);
        }
    bson_append_array_end(b, &list);
}

/* Appends doc (a document) under key. */
static void s_append_doc(bson_t *b, const char *key, xp_msg_doc doc)
{
    bson_t view;
    if (xp__msg_doc_view(doc, &view))
        BSON_APPEND_DOCUMENT(b, key, &view);
}

/* A view of the document element it points at. */
static bool s_iter_doc(const bson_iter_t *it, bson_t *out)
{
    uint32_t len;
    const uint8_t *data;
    if (!BSON_ITER_HOLDS_DOCUMENT(it))
        return false;
    bson_iter_document(it, &len, &data);
    return bson_init_static(out, data, len);
}

/* One pass over b: at[i] is its first element named keys[i], has[i]
 * whether there is one (what bson_iter_init_find would find, without a
 * walk per key). */
typedef struct {
    bson_iter_t it; /* (a struct: bson_iter_t alone may not be an array's
                     * element) */
} s_at;

static void s_fields(const bson_t *b, const char *const *keys, size_t n,
                     s_at *at, bool *has)
{
    bson_iter_t it;
    memset(has, 0, n * sizeof *has);
    if (!bson_iter_init(&it, b))
        return;
    while (bson_iter_next(&it)) {
        const char *k = bson_iter_key(&it);
        for (size_t i = 0; i < n; i++)
            if (!has[i] && k[0] == keys[i][0] && strcmp(k, keys[i]) == 0) {
                at[i].it = it;
                has[i] = true;
                break;
            }
    }
}

/* Typed reads of an element s_fields found (as xp__bson_utf8,
 * xp__bson_int64 read a field). */
static const char *s_utf8_at(const bson_iter_t *it, bool has)
{
    return has && BSON_ITER_HOLDS_UTF8(it) ? bson_iter_utf8(it, NULL) : NULL;
}

static bool s_int_at(const bson_iter_t *it, bool has, int64_t *out)
{
    if (has && BSON_ITER_HOLDS_INT64(it))
        *out = bson_iter_int64(it);
    else if (has && BSON_ITER_HOLDS_INT32(it))
        *out = bson_iter_int32(it);
    else
        return false;
    return true;
}

/* ---------------------------------------------------------------- HELLO */

zmsg_t *xp__msg_hello_encode(const xp_msg_hello *m)
{
    bson_t body = BSON_INITIALIZER, list, item;
    BSON_APPEND_UTF8(&body, "host", m->host);
    BSON_APPEND_INT64(&body, "pid", m->pid);
    BSON_APPEND_INT32(&body, "slots", (int32_t)m->slots);
    BSON_APPEND_INT32(&body, "busy", (int32_t)m->busy);
    if (m->version)
        BSON_APPEND_UTF8(&body, "version", m->version);
    if (m->max_message)
        BSON_APPEND_INT64(&body, "max_message", m->max_message);
    BSON_APPEND_ARRAY_BEGIN(&body, "experiments", &list);
    for (size_t i = 0; i < m->n_experiments; i++) {
        const xp_msg_experiment *e = &m->experiments[i];
        char key[16];
        BSON_APPEND_DOCUMENT_BEGIN(&list, s_index((uint32_t)i, key), &item);
        BSON_APPEND_UTF8(&item, "id", e->id);
        BSON_APPEND_UTF8(&item, "code_hash", e->code_hash);
        s_append_doc(&item, "code", e->code);
        bson_append_document_end(&list, &item);
    }
    bson_append_array_end(&body, &list);
    if (m->job_id) {
        BSON_APPEND_DOCUMENT_BEGIN(&body, "job", &item);
        BSON_APPEND_UTF8(&item, "id", m->job_id);
        if (m->job_index >= 0)
            BSON_APPEND_INT64(&item, "array_index", m->job_index);
        if (m->job_node)
            BSON_APPEND_UTF8(&item, "node", m->job_node);
        bson_append_document_end(&body, &item);
    }
    if (m->bundles)
        BSON_APPEND_INT32(&body, "prefetch", (int32_t)m->prefetch);
    return s_finish(XP_MSG_HELLO, &body);
}

/* A string of HELLO's job: NULL when absent, mistyped or too long. */
static const char *s_job_string(const bson_t *job, const char *key)
{
    const char *s = xp__bson_utf8(job, key);
    return s && *s && strlen(s) <= XP_MSG_JOB_MAX ? s : NULL;
}

/* HELLO's optional job; what is malformed reads as absent. */
static void s_job_decode(const bson_t *body, xp_msg_hello *m)
{
    xp_msg_doc doc;
    bson_t job;
    m->job_index = -1;
    if (!s_doc(body, "job", &doc) || !xp__msg_doc_view(doc, &job))
        return;
    m->job_id = s_job_string(&job, "id");
    if (!m->job_id)
        return;
    m->job_node = s_job_string(&job, "node");
    if (!s_opt_int(&job, "array_index", &m->job_index) || m->job_index < 0)
        m->job_index = -1;
}

/* One entry of HELLO's experiments; false when malformed. */
static bool s_experiment_decode(const bson_iter_t *it, xp_msg_experiment *e)
{
    bson_t doc;
    if (!s_iter_doc(it, &doc))
        return false;
    e->id = xp__bson_utf8(&doc, "id");
    e->code_hash = xp__bson_utf8(&doc, "code_hash");
    return e->id && e->code_hash && xp_check_id(e->id, NULL) == 0 &&
           s_doc(&doc, "code", &e->code);
}

int xp__msg_hello_decode(const bson_t *body, xp_msg_hello *m, xp_error_t *err)
{
    memset(m, 0, sizeof *m);
    xp_msg_doc doc;
    bson_t list;
    m->host = xp__bson_utf8(body, "host");
    if (!m->host || !xp__bson_int64(body, "slots", &m->slots) || m->slots < 1 ||
        m->slots > XP_MSG_SLOTS_MAX || !s_opt_int(body, "pid", &m->pid) ||
        !s_array(body, "experiments", &doc) || !xp__msg_doc_view(doc, &list))
        return s_malformed(err, XP_MSG_HELLO, NULL);
    if (!s_opt_int(body, "busy", &m->busy) || m->busy < 0 || m->busy > m->slots)
        m->busy = 0;
    m->version = xp__bson_utf8(body, "version");
    if (!s_opt_int(body, "max_message", &m->max_message) ||
        m->max_message < XP_MAX_MESSAGE_MIN ||
        m->max_message > XP_MAX_MESSAGE_MAX)
        m->max_message = 0;
    s_job_decode(body, m);
    m->bundles = xp__bson_int64(body, "prefetch", &m->prefetch) &&
                 m->prefetch >= 0 && m->prefetch <= XP_MSG_PREFETCH_MAX;
    if (!m->bundles)
        m->prefetch = 0;
    uint32_t n = bson_count_keys(&list);
    m->experiments = bson_malloc0((n ? n : 1) * sizeof *m->experiments);
    bson_iter_t it;
    bson_iter_init(&it, &list);
    while (bson_iter_next(&it) && m->n_experiments < n) {
        if (s_experiment_decode(&it, &m->experiments[m->n_experiments]))
            m->n_experiments++;
        else
            m->n_bad++;
    }
    return 0;
}

void xp__msg_hello_clear(xp_msg_hello *m)
{
    bson_free(m->experiments);
    memset(m, 0, sizeof *m);
}

/* ---------------------------------------------------------------- WELCOME */

zmsg_t *xp__msg_welcome_encode(const xp_msg_welcome *m)
{
    bson_t body = BSON_INITIALIZER;
    BSON_APPEND_INT32(&body, "heartbeat_ms", (int32_t)m->heartbeat_ms);
    if (m->max_message)
        BSON_APPEND_INT64(&body, "max_message", m->max_message);
    if (m->bundles)
        BSON_APPEND_BOOL(&body, "bundles", true);
    return s_finish(XP_MSG_WELCOME, &body);
}

int xp__msg_welcome_decode(const bson_t *body, xp_msg_welcome *m,
                           xp_error_t *err)
{
    (void)err;
    m->heartbeat_ms = 0;
    if (!xp__bson_int64(body, "heartbeat_ms", &m->heartbeat_ms) ||
        m->heartbeat_ms < XP_HEARTBEAT_MS_MIN ||
        m->heartbeat_ms > XP_HEARTBEAT_MS_MAX)
        m->heartbeat_ms = 0;
    m->max_message = 0;
    if (!s_opt_int(body, "max_message", &m->max_message) ||
        m->max_message < XP_MAX_MESSAGE_MIN ||
        m->max_message > XP_MAX_MESSAGE_MAX)
        m->max_message = 0;
    m->bundles = xp__bson_bool(body, "bundles", false);
    return 0;
}

/* ------------------------------------------------- TASKS and RESULTS */

/* The list's key in a bundle of type. */
static const char *s_bundle_key(xp_msg_type type)
{
    return type == XP_MSG_TASKS ? "tasks" : "results";
}

void xp__msg_bundle_init(xp_msg_bundle *b, xp_msg_type type)
{
    b->type = type;
    b->n = 0;
    bson_init(&b->body);
    BSON_APPEND_ARRAY_BEGIN(&b->body, s_bundle_key(type), &b->list);
}

size_t xp__msg_bundle_size_with(const xp_msg_bundle *b, size_t bytes)
{
    /* body and list headers, and an element's type byte and key */
    return (size_t)b->body.len + b->list.len + bytes + 16;
}

size_t xp__msg_bundle_size_alone(size_t bytes)
{
    /* {results: [bytes]}: the body's length and end, the list's element
     * header with its key, its length and end */
    return 4 + 1 + 8 + 4 + 1 + bytes + 16;
}

void xp__msg_bundle_add(xp_msg_bundle *b, zmsg_t **msg)
{
    zframe_t *f = *msg ? zmsg_last(*msg) : NULL;
    bson_t doc;
    char key[16];
    if (f && bson_init_static(&doc, zframe_data(f), zframe_size(f)) &&
        BSON_APPEND_DOCUMENT(&b->list, s_index(b->n, key), &doc))
        b->n++;
    zmsg_destroy(msg);
}

zmsg_t *xp__msg_bundle_finish(xp_msg_bundle *b)
{
    bson_append_array_end(&b->body, &b->list);
    zmsg_t *msg = b->n ? xp__msg_new(b->type, &b->body) : NULL;
    bson_destroy(&b->body);
    b->n = 0;
    return msg;
}

void xp__msg_bundle_clear(xp_msg_bundle *b)
{
    zmsg_t *msg = xp__msg_bundle_finish(b);
    zmsg_destroy(&msg);
}

int xp__msg_bundle_open(const bson_t *body, xp_msg_type type, bson_iter_t *it,
                        xp_error_t *err)
{
    bson_iter_t top;
    if (!bson_iter_init_find(&top, body, s_bundle_key(type)) ||
        !BSON_ITER_HOLDS_ARRAY(&top) || !bson_iter_recurse(&top, it))
        return s_malformed(err, type, "no list");
    return 0;
}

bool xp__msg_bundle_next(bson_iter_t *it, bson_t *elem, size_t *bad)
{
    while (bson_iter_next(it)) {
        if (s_iter_doc(it, elem))
            return true;
        (*bad)++;
    }
    return false;
}

/* ---------------------------------------------------------------- TASK */

zmsg_t *xp__msg_task_encode(const xp_msg_task *m)
{
    bson_t body = BSON_INITIALIZER, inputs;
    BSON_APPEND_INT64(&body, "trial", m->trial);
    BSON_APPEND_INT64(&body, "attempt", m->attempt);
    BSON_APPEND_UTF8(&body, "experiment", m->experiment);
    BSON_APPEND_UTF8(&body, "code_hash", m->code_hash);
    BSON_APPEND_UTF8(&body, "step", m->step);
    BSON_APPEND_INT64(&body, "seed", (int64_t)m->seed);
    BSON_APPEND_ARRAY_BEGIN(&body, "inputs", &inputs);
    for (size_t i = 0; i < m->n_inputs; i++) {
        char key[16];
        xp__value_append_bson(&inputs, s_index((uint32_t)i, key), m->inputs[i]);
    }
    bson_append_array_end(&body, &inputs);
    return s_finish(XP_MSG_TASK, &body);
}

int xp__msg_task_decode(const bson_t *body, xp_msg_task *m, xp_error_t *err)
{
    enum { TRIAL, ATTEMPT, STEP, EXPERIMENT, CODE_HASH, SEED, INPUTS, N };
    static const char *const keys[N] = {"trial",      "attempt",   "step",
                                        "experiment", "code_hash", "seed",
                                        "inputs"};
    s_at at[N];
    bool has[N];
    memset(m, 0, sizeof *m);
    s_fields(body, keys, N, at, has);
    const char *step = s_utf8_at(&at[STEP].it, has[STEP]);
    if (!step || !s_int_at(&at[TRIAL].it, has[TRIAL], &m->trial) ||
        !s_int_at(&at[ATTEMPT].it, has[ATTEMPT], &m->attempt))
        return s_malformed(err, XP_MSG_TASK, "no trial, attempt or step");
    m->step = step;
    int64_t seed = 0;
    m->experiment = s_utf8_at(&at[EXPERIMENT].it, has[EXPERIMENT]);
    m->code_hash = s_utf8_at(&at[CODE_HASH].it, has[CODE_HASH]);
    if (!m->experiment || !m->code_hash ||
        !s_int_at(&at[SEED].it, has[SEED], &seed) || !has[INPUTS] ||
        !BSON_ITER_HOLDS_ARRAY(&at[INPUTS].it))
        return s_malformed(err, XP_MSG_TASK,
                           "experiment, code_hash, seed or inputs missing or "
                           "mistyped");
    bson_iter_array(&at[INPUTS].it, &m->input_list.len, &m->input_list.data);
    m->seed = (uint64_t)seed;
    return 0;
}

int xp__msg_task_inputs(const xp_msg_task *m, xp_value **values, size_t n,
                        size_t *count, xp_error_t *err)
{
    bson_t list;
    bson_iter_t it;
    size_t i = 0;
    *count = 0;
    if (!xp__msg_doc_view(m->input_list, &list) || !bson_iter_init(&it, &list))
        return s_malformed(err, XP_MSG_TASK, "inputs");
    for (; bson_iter_next(&it); i++) {
        xp_error_t e;
        if (i >= n)
            continue; /* counted only */
        values[i] = xp_value_new();
        if (xp__value_from_iter(values[i], &it, &e) != 0) {
            for (size_t k = 0; k <= i; k++)
                xp_value_destroy(&values[k]);
            return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                             "input %zu of step %.128s is malformed: %.300s", i,
                             m->step, e.message);
        }
    }
    *count = i;
    return 0;
}

/* ---------------------------------------------------------------- RESULT */

zmsg_t *xp__msg_result_encode(const xp_msg_result *m)
{
    bson_t body = BSON_INITIALIZER, list, item;
    BSON_APPEND_INT64(&body, "trial", m->trial);
    BSON_APPEND_INT64(&body, "attempt", m->attempt);
    BSON_APPEND_UTF8(&body, "step", m->step);
    BSON_APPEND_BOOL(&body, "ok", m->ok);
    if (m->ok && m->output)
        xp__value_append_bson(&body, "output", m->output);
    else
        BSON_APPEND_UTF8(&body, "failure", m->failure ? m->failure : "");
    BSON_APPEND_ARRAY_BEGIN(&body, "metrics", &list);
    for (size_t i = 0; i < m->n_metrics; i++) {
        const xp_msg_metric *mt = &m->metrics[i];
        char key[16];
        BSON_APPEND_DOCUMENT_BEGIN(&list, s_index((uint32_t)i, key), &item);
        BSON_APPEND_UTF8(&item, "name", mt->name);
        xp_metric_chunk c = {
            .epochs = mt->epochs, .values = mt->values, .n = mt->n};
        xp__metric_columns_append(&item, &c); /* little-endian, always */
        bson_append_document_end(&list, &item);
    }
    bson_append_array_end(&body, &list);
    BSON_APPEND_DOUBLE(&body, "elapsed", m->elapsed);
    if (m->log && xp_value_type(m->log) == XP_TYPE_DOCUMENT)
        xp__value_append_bson(&body, "log", m->log);
    return s_finish(XP_MSG_RESULT, &body);
}

/* One metric {name, epochs, values} (the two halves of the metric chunk
 * encoding, store/metric.h); false when malformed. */
static bool s_metric_decode(const bson_iter_t *it, xp_msg_metric *mt)
{
    bson_t doc;
    xp_metric_points p = {0};
    if (!s_iter_doc(it, &doc))
        return false;
    mt->name = xp__bson_utf8(&doc, "name");
    if (!mt->name || xp_check_name("metric", mt->name, NULL) != 0 ||
        xp__metric_columns_read(&doc, &p, NULL) != 0) {
        xp__metric_points_clear(&p);
        return false;
    }
    mt->n = p.n;
    mt->epochs = p.epochs;
    mt->values = p.values;
    return true;
}

/* The metrics array (or document, as xp__bson_sub reads it) at it. */
static void s_metrics_decode(const bson_iter_t *at, xp_msg_result *m)
{
    bson_t list;
    uint32_t len;
    const uint8_t *data;
    if (BSON_ITER_HOLDS_ARRAY(at))
        bson_iter_array(at, &len, &data);
    else if (BSON_ITER_HOLDS_DOCUMENT(at))
        bson_iter_document(at, &len, &data);
    else
        return;
    if (!bson_init_static(&list, data, len))
        return;
    uint32_t n = bson_count_keys(&list);
    m->metrics = bson_malloc0((n ? n : 1) * sizeof *m->metrics);
    bson_iter_t it;
    bson_iter_init(&it, &list);
    while (bson_iter_next(&it) && m->n_metrics < n) {
        if (!s_metric_decode(&it, &m->metrics[m->n_metrics])) {
            m->metrics_bad = true;
            return;
        }
        m->n_metrics++;
    }
}

int xp__msg_result_decode(const bson_t *body, xp_msg_result *m, xp_error_t *err)
{
    enum {
        TRIAL,
        ATTEMPT,
        STEP,
        OK,
        FAILURE,
        OUTPUT,
        METRICS,
        ELAPSED,
        LOG,
        N
    };
    static const char *const keys[N] = {"trial",   "attempt", "step",
                                        "ok",      "failure", "output",
                                        "metrics", "elapsed", "log"};
    s_at at[N];
    bool has[N];
    memset(m, 0, sizeof *m);
    s_fields(body, keys, N, at, has);
    m->step = s_utf8_at(&at[STEP].it, has[STEP]);
    if (!m->step || !s_int_at(&at[TRIAL].it, has[TRIAL], &m->trial) ||
        !s_int_at(&at[ATTEMPT].it, has[ATTEMPT], &m->attempt)) {
        m->step = NULL;
        return s_malformed(err, XP_MSG_RESULT, "no trial, attempt or step");
    }
    m->ok = has[OK] && BSON_ITER_HOLDS_BOOL(&at[OK].it) &&
            bson_iter_bool(&at[OK].it);
    m->failure = s_utf8_at(&at[FAILURE].it, has[FAILURE]);
    if (m->ok && has[OUTPUT]) {
        m->output = xp_value_new();
        if (xp__value_from_iter(m->output, &at[OUTPUT].it, NULL) != 0)
            xp_value_destroy(&m->output);
    }
    /* A step whose output is not a value has its metrics dropped too. */
    if ((!m->ok || m->output) && has[METRICS])
        s_metrics_decode(&at[METRICS].it, m);
    if (has[ELAPSED] && BSON_ITER_HOLDS_DOUBLE(&at[ELAPSED].it))
        m->elapsed = bson_iter_double(&at[ELAPSED].it);
    if (has[LOG] && BSON_ITER_HOLDS_DOCUMENT(&at[LOG].it)) {
        m->log = xp_value_new();
        if (xp__value_from_iter(m->log, &at[LOG].it, NULL) != 0)
            xp_value_destroy(&m->log);
    }
    return 0;
}

bool xp__msg_result_busy(const xp_msg_result *m)
{
    return !m->ok && m->failure &&
           strncmp(m->failure, XP_MSG_WORKER_BUSY,
                   strlen(XP_MSG_WORKER_BUSY)) == 0;
}

void xp__msg_result_clear(xp_msg_result *m)
{
    xp_value_destroy(&m->output);
    xp_value_destroy(&m->log);
    for (size_t i = 0; m->metrics && i < m->n_metrics; i++) {
        bson_free((void *)m->metrics[i].epochs);
        bson_free((void *)m->metrics[i].values);
    }
    bson_free(m->metrics);
    memset(m, 0, sizeof *m);
}

/* ---------------------------------------------------------------- SUBMIT */

zmsg_t *xp__msg_submit_encode(const xp_msg_submit *m)
{
    bson_t body = BSON_INITIALIZER, list, item;
    BSON_APPEND_UTF8(&body, "experiment", m->experiment);
    if (m->code_hash)
        BSON_APPEND_UTF8(&body, "code_hash", m->code_hash);
    if (m->code_hash && m->code.data)
        s_append_doc(&body, "code", m->code);
    BSON_APPEND_ARRAY_BEGIN(&body, "trials", &list);
    for (size_t i = 0; i < m->n_trials; i++) {
        char key[16];
        BSON_APPEND_DOCUMENT_BEGIN(&list, s_index((uint32_t)i, key), &item);
        if (m->trials[i].params)
            xp__value_append_bson(&item, "parameters", m->trials[i].params);
        if (m->trials[i].has_seed)
            BSON_APPEND_INT64(&item, "seed", m->trials[i].seed);
        if (m->trials[i].reproduces > 0)
            BSON_APPEND_INT64(&item, "reproduces", m->trials[i].reproduces);
        if (m->trials[i].memo)
            BSON_APPEND_INT32(&item, "memo", m->trials[i].memo);
        bson_append_document_end(&list, &item);
    }
    bson_append_array_end(&body, &list);
    return s_finish(XP_MSG_SUBMIT, &body);
}

/* Trial i of SUBMIT's trials: {parameters?, seed?}. */
static int s_trial_decode(const bson_iter_t *it, size_t i, xp_msg_trial *t,
                          xp_error_t *err)
{
    bson_t doc, params;
    xp_msg_doc pdoc;
    char what[64];
    snprintf(what, sizeof what, "trial %zu", i);
    if (!s_iter_doc(it, &doc))
        return s_malformed(err, XP_MSG_SUBMIT, what);
    xp_value *p = xp_value_new();
    t->params = p;
    bson_iter_t f;
    if (!bson_iter_init_find(&f, &doc, "parameters"))
        xp_set_document(p);
    else if (!s_doc(&doc, "parameters", &pdoc) ||
             !xp__msg_doc_view(pdoc, &params))
        return s_malformed(err, XP_MSG_SUBMIT, what);
    else if (xp__value_from_bson(p, &params, err) != 0)
        return -1;
    t->has_seed = bson_iter_init_find(&f, &doc, "seed");
    if (t->has_seed && !xp__bson_int64(&doc, "seed", &t->seed))
        return s_malformed(err, XP_MSG_SUBMIT, what);
    if (bson_iter_init_find(&f, &doc, "reproduces") &&
        (!xp__bson_int64(&doc, "reproduces", &t->reproduces) ||
         t->reproduces < 1))
        return s_malformed(err, XP_MSG_SUBMIT, what);
    int64_t memo = 0;
    if (bson_iter_init_find(&f, &doc, "memo") &&
        (!xp__bson_int64(&doc, "memo", &memo) || memo < XP_MEMO_USE ||
         memo > XP_MEMO_REFRESH))
        return s_malformed(err, XP_MSG_SUBMIT, what);
    t->memo = (int)memo;
    return 0;
}

int xp__msg_submit_decode(const bson_t *body, xp_msg_submit *m, xp_error_t *err)
{
    memset(m, 0, sizeof *m);
    xp_msg_doc doc;
    bson_t list;
    m->experiment = xp__bson_utf8(body, "experiment");
    if (!m->experiment || !s_array(body, "trials", &doc) ||
        !xp__msg_doc_view(doc, &list))
        return s_malformed(err, XP_MSG_SUBMIT, NULL);
    if (xp_check_id(m->experiment, err) != 0)
        return -1;
    m->code_hash = xp__bson_utf8(body, "code_hash");
    if (m->code_hash)
        s_doc(body, "code", &m->code);
    uint32_t n = bson_count_keys(&list);
    if (n == 0)
        return s_malformed(err, XP_MSG_SUBMIT, "no trials");
    m->trials = bson_malloc0(n * sizeof *m->trials);
    bson_iter_t it;
    bson_iter_init(&it, &list);
    while (bson_iter_next(&it) && m->n_trials < n) {
        int rc = s_trial_decode(&it, m->n_trials, &m->trials[m->n_trials], err);
        m->n_trials++;
        if (rc != 0)
            return -1;
    }
    return 0;
}

void xp__msg_submit_clear(xp_msg_submit *m)
{
    for (size_t i = 0; m->trials && i < m->n_trials; i++) {
        xp_value *p = (xp_value *)m->trials[i].params;
        xp_value_destroy(&p);
    }
    bson_free(m->trials);
    memset(m, 0, sizeof *m);
}

int xp__msg_trials_from_value(const xp_value *specs, xp_msg_trial **trials,
                              size_t *n, xp_error_t *err)
{
    *trials = NULL;
    *n = 0;
    size_t count = xp_value_count(specs);
    if (xp_value_type(specs) != XP_TYPE_ARRAY || count == 0)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "no trials to submit");
    xp_msg_trial *out = bson_malloc0(count * sizeof *out);
    for (size_t i = 0; i < count; i++) {
        const xp_value *spec = xp_value_at(specs, i);
        bool doc = xp_value_type(spec) == XP_TYPE_DOCUMENT;
        const xp_value *params = doc ? xp_value_get(spec, "parameters") : NULL;
        const xp_value *seed = doc ? xp_value_get(spec, "seed") : NULL;
        const xp_value *again = doc ? xp_value_get(spec, "reproduces") : NULL;
        const xp_value *memo = doc ? xp_value_get(spec, "memo") : NULL;
        if (!doc || (params && xp_value_type(params) != XP_TYPE_DOCUMENT) ||
            (seed && xp_value_type(seed) != XP_TYPE_INT64) ||
            (again && (xp_value_type(again) != XP_TYPE_INT64 ||
                       xp_as_int64(again) < 1)) ||
            (memo && (xp_value_type(memo) != XP_TYPE_INT64 ||
                      xp_as_int64(memo) < XP_MEMO_USE ||
                      xp_as_int64(memo) > XP_MEMO_REFRESH))) {
            bson_free(out);
            return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                             "trial %zu is not a document {parameters: "
                             "{...}, seed: integer, memo: 0, 1 or 2, "
                             "reproduces: trial id}",
                             i);
        }
        out[i].reproduces = again ? xp_as_int64(again) : 0;
        out[i].memo = memo ? (int)xp_as_int64(memo) : 0;
        out[i].params = params;
        out[i].has_seed = seed != NULL;
        out[i].seed = seed ? xp_as_int64(seed) : 0;
    }
    *trials = out;
    *n = count;
    return 0;
}

/* ---------------------------------------------------------------- ACCEPTED */

zmsg_t *xp__msg_accepted_encode(const xp_msg_accepted *m)
{
    bson_t body = BSON_INITIALIZER, ids;
    BSON_APPEND_INT64(&body, "batch", m->batch);
    BSON_APPEND_ARRAY_BEGIN(&body, "ids", &ids);
    for (size_t i = 0; i < m->n_ids; i++) {
        char key[16];
        BSON_APPEND_INT64(&ids, s_index((uint32_t)i, key), m->ids[i]);
    }
    bson_append_array_end(&body, &ids);
    return s_finish(XP_MSG_ACCEPTED, &body);
}

int xp__msg_accepted_decode(const bson_t *body, xp_msg_accepted *m,
                            xp_error_t *err)
{
    memset(m, 0, sizeof *m);
    xp_msg_doc doc;
    bson_t list;
    if (!xp__bson_int64(body, "batch", &m->batch) ||
        !s_array(body, "ids", &doc) || !xp__msg_doc_view(doc, &list))
        return s_malformed(err, XP_MSG_ACCEPTED, NULL);
    uint32_t n = bson_count_keys(&list);
    m->ids = bson_malloc0((n + 1) * sizeof *m->ids);
    bson_iter_t it;
    bson_iter_init(&it, &list);
    while (bson_iter_next(&it) && m->n_ids < n) {
        if (!BSON_ITER_HOLDS_INT64(&it)) {
            xp__msg_accepted_clear(m);
            return s_malformed(err, XP_MSG_ACCEPTED, "ids");
        }
        m->ids[m->n_ids++] = bson_iter_int64(&it);
    }
    return 0;
}

void xp__msg_accepted_clear(xp_msg_accepted *m)
{
    bson_free(m->ids);
    memset(m, 0, sizeof *m);
}

/* ---------------------------------------------------------------- STATUS */

zmsg_t *xp__msg_status_encode(const xp_msg_status *m)
{
    bson_t body = BSON_INITIALIZER;
    BSON_APPEND_INT64(&body, "batch", m->batch);
    BSON_APPEND_INT64(&body, "cursor", m->cursor);
    if (m->wait_ms > 0)
        BSON_APPEND_INT64(&body, "wait", m->wait_ms);
    return s_finish(XP_MSG_STATUS, &body);
}

int xp__msg_status_decode(const bson_t *body, xp_msg_status *m, xp_error_t *err)
{
    memset(m, 0, sizeof *m);
    if (!xp__bson_int64(body, "batch", &m->batch) ||
        !s_opt_int(body, "cursor", &m->cursor) || m->cursor < 0 ||
        !s_opt_int(body, "wait", &m->wait_ms) || m->wait_ms < 0 ||
        m->wait_ms > XP_MSG_STATUS_WAIT_MAX)
        return s_malformed(err, XP_MSG_STATUS, NULL);
    return 0;
}

/* ---------------------------------------------------------------- PROGRESS */

zmsg_t *xp__msg_progress_encode(const xp_msg_progress *m)
{
    bson_t body = BSON_INITIALIZER;
    BSON_APPEND_INT64(&body, "queued", m->queued);
    BSON_APPEND_INT64(&body, "running", m->running);
    BSON_APPEND_INT64(&body, "done", m->done);
    BSON_APPEND_INT64(&body, "failed", m->failed);
    BSON_APPEND_INT64(&body, "total", m->total);
    if (m->waiting)
        BSON_APPEND_UTF8(&body, "waiting", m->waiting);
    s_append_array(&body, "finished", m->finished);
    BSON_APPEND_INT64(&body, "cursor", m->cursor);
    return s_finish(XP_MSG_PROGRESS, &body);
}

int xp__msg_progress_decode(const bson_t *body, xp_msg_progress *m,
                            xp_error_t *err)
{
    memset(m, 0, sizeof *m);
    if (!xp__bson_int64(body, "queued", &m->queued) ||
        !xp__bson_int64(body, "running", &m->running) ||
        !xp__bson_int64(body, "done", &m->done) ||
        !xp__bson_int64(body, "failed", &m->failed) ||
        !xp__bson_int64(body, "total", &m->total) ||
        !xp__bson_int64(body, "cursor", &m->cursor) ||
        !s_array(body, "finished", &m->finished))
        return s_malformed(err, XP_MSG_PROGRESS, NULL);
    m->waiting = xp__bson_utf8(body, "waiting");
    return 0;
}

int xp__msg_progress_finished(const xp_msg_progress *m, xp_value **out,
                              xp_error_t *err)
{
    *out = xp_value_new();
    xp_set_array(*out);
    bson_t list;
    bson_iter_t it;
    if (!xp__msg_doc_view(m->finished, &list) || !bson_iter_init(&it, &list))
        return 0;
    while (bson_iter_next(&it))
        if (xp__value_from_iter(xp_array_append(*out), &it, err) != 0) {
            xp_value_destroy(out);
            return -1;
        }
    return 0;
}

bson_t *xp__msg_finished_line(const xp_msg_finished *f)
{
    bson_t *line = bson_new();
    BSON_APPEND_INT64(line, "trial_id", f->trial_id);
    BSON_APPEND_UTF8(line, "status", f->ok ? "succeeded" : "failed");
    if (f->result)
        xp__value_append_bson(line, "result", f->result);
    else
        BSON_APPEND_NULL(line, "result");
    BSON_APPEND_UTF8(line, "result_type",
                     xp_type_name(xp_value_type(f->result)));
    BSON_APPEND_UTF8(line, "description", f->description ? f->description : "");
    if (f->spooled)
        BSON_APPEND_BOOL(line, "spooled", true);
    return line;
}

/* ---------------------------------------------------------------- ERROR */

zmsg_t *xp__msg_error_encode(const xp_msg_error *m)
{
    bson_t body = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&body, "message", m->message ? m->message : "");
    return s_finish(XP_MSG_ERROR, &body);
}

int xp__msg_error_decode(const bson_t *body, xp_msg_error *m, xp_error_t *err)
{
    (void)err;
    m->message = xp__bson_utf8(body, "message");
    return 0;
}

bool xp__msg_error_wants_hello(const xp_msg_error *m)
{
    return m->message && strstr(m->message, "HELLO");
}
