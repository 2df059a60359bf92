/* fuzz_body.c — libFuzzer target for every typed message decoder: the
 * first byte picks the message type, the rest is its body, opened as the
 * envelope does (lengths and depth checked, BSON validated) and decoded
 * with the type's decoder and readers. A body that decodes is encoded
 * again from its struct and must decode again to the same fields. */
#include "remote/message.h"
#include "value.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Opens the body of msg (an encoder's output), which must open. */
static void s_reopen(zmsg_t *msg, xp_msg_type type, bson_t *body)
{
    xp_msg_type got;
    if (xp__msg_decode(msg, XP_MAX_MESSAGE_DEFAULT, &got, body, NULL) != 0 ||
        got != type)
        abort();
    zmsg_destroy(&msg);
}

static void s_same(bool same)
{
    if (!same)
        abort();
}

static void s_hello(const bson_t *body)
{
    xp_msg_hello m, again;
    bson_t b;
    if (xp__msg_hello_decode(body, &m, NULL) == 0) {
        s_reopen(xp__msg_hello_encode(&m), XP_MSG_HELLO, &b);
        s_same(xp__msg_hello_decode(&b, &again, NULL) == 0 &&
               again.n_experiments == m.n_experiments &&
               again.slots == m.slots && strcmp(again.host, m.host) == 0 &&
               again.bundles == m.bundles && again.prefetch == m.prefetch &&
               !again.job_id == !m.job_id &&
               (!m.job_id || (strcmp(again.job_id, m.job_id) == 0 &&
                              again.job_index == m.job_index &&
                              !again.job_node == !m.job_node)));
        xp__msg_hello_clear(&again);
        bson_destroy(&b);
    }
    xp__msg_hello_clear(&m);
}

static void s_task(const bson_t *body)
{
    xp_msg_task m, again;
    if (xp__msg_task_decode(body, &m, NULL) != 0)
        return;
    size_t count = 0;
    xp_value *probe[1] = {NULL};
    if (xp__msg_task_inputs(&m, probe, 0, &count, NULL) != 0 || count > 4096)
        return;
    xp_value **in = calloc(count + 1, sizeof *in);
    if (xp__msg_task_inputs(&m, in, count, &count, NULL) == 0) {
        m.inputs = (const xp_value *const *)in;
        m.n_inputs = count;
        bson_t b;
        s_reopen(xp__msg_task_encode(&m), XP_MSG_TASK, &b);
        s_same(xp__msg_task_decode(&b, &again, NULL) == 0 &&
               again.trial == m.trial && again.seed == m.seed &&
               strcmp(again.step, m.step) == 0);
        bson_destroy(&b);
    }
    for (size_t i = 0; i < count; i++)
        xp_value_destroy(&in[i]);
    free(in);
}

static void s_result(const bson_t *body)
{
    xp_msg_result m, again;
    if (xp__msg_result_decode(body, &m, NULL) == 0 && (!m.ok || m.output)) {
        xp__msg_result_busy(&m);
        bson_t b;
        s_reopen(xp__msg_result_encode(&m), XP_MSG_RESULT, &b);
        s_same(xp__msg_result_decode(&b, &again, NULL) == 0 &&
               again.ok == m.ok && again.n_metrics == m.n_metrics &&
               !again.log == !m.log);
        xp__msg_result_clear(&again);
        bson_destroy(&b);
    }
    xp__msg_result_clear(&m);
}

static void s_submit(const bson_t *body)
{
    xp_msg_submit m, again;
    if (xp__msg_submit_decode(body, &m, NULL) == 0) {
        bson_t b;
        s_reopen(xp__msg_submit_encode(&m), XP_MSG_SUBMIT, &b);
        s_same(xp__msg_submit_decode(&b, &again, NULL) == 0 &&
               again.n_trials == m.n_trials &&
               (!m.n_trials ||
                again.trials[0].reproduces == m.trials[0].reproduces));
        xp__msg_submit_clear(&again);
        bson_destroy(&b);
    }
    xp__msg_submit_clear(&m);
}

static void s_accepted(const bson_t *body)
{
    xp_msg_accepted m, again;
    if (xp__msg_accepted_decode(body, &m, NULL) == 0) {
        bson_t b;
        s_reopen(xp__msg_accepted_encode(&m), XP_MSG_ACCEPTED, &b);
        s_same(xp__msg_accepted_decode(&b, &again, NULL) == 0 &&
               again.n_ids == m.n_ids &&
               (!m.n_ids ||
                memcmp(again.ids, m.ids, m.n_ids * sizeof *m.ids) == 0));
        xp__msg_accepted_clear(&again);
        bson_destroy(&b);
    }
    xp__msg_accepted_clear(&m);
}

static void s_progress(const bson_t *body)
{
    xp_msg_progress m, again;
    if (xp__msg_progress_decode(body, &m, NULL) != 0)
        return;
    xp_value *finished = NULL;
    xp__msg_progress_finished(&m, &finished, NULL);
    xp_value_destroy(&finished);
    bson_t b;
    s_reopen(xp__msg_progress_encode(&m), XP_MSG_PROGRESS, &b);
    s_same(xp__msg_progress_decode(&b, &again, NULL) == 0 &&
           again.cursor == m.cursor && again.total == m.total &&
           again.finished.len == m.finished.len);
    bson_destroy(&b);
}

/* TASKS and RESULTS: each element through its type's checks; the
 * elements that decode bundled again come back in the same number. */
static void s_bundle(xp_msg_type type, const bson_t *body)
{
    bson_iter_t it;
    bson_t one;
    size_t bad = 0, n = 0;
    xp_msg_bundle again;
    if (xp__msg_bundle_open(body, type, &it, NULL) != 0)
        return;
    xp__msg_bundle_init(&again, type);
    while (xp__msg_bundle_next(&it, &one, &bad)) {
        if (type == XP_MSG_TASKS)
            s_task(&one);
        else
            s_result(&one);
        zmsg_t *msg = xp__msg_new(
            type == XP_MSG_TASKS ? XP_MSG_TASK : XP_MSG_RESULT, &one);
        xp__msg_bundle_add(&again, &msg);
        n++;
    }
    zmsg_t *msg = xp__msg_bundle_finish(&again);
    if (!msg) {
        s_same(n == 0);
        return;
    }
    bson_t b;
    s_reopen(msg, type, &b);
    size_t m = 0, bad2 = 0;
    s_same(xp__msg_bundle_open(&b, type, &it, NULL) == 0);
    while (xp__msg_bundle_next(&it, &one, &bad2))
        m++;
    s_same(m == n && bad2 == 0);
    bson_destroy(&b);
}

/* The decoders that cannot fail and those of two fields. */
static void s_small(xp_msg_type type, const bson_t *body)
{
    bson_t b;
    if (type == XP_MSG_WELCOME) {
        xp_msg_welcome m, again;
        xp__msg_welcome_decode(body, &m, NULL);
        s_reopen(xp__msg_welcome_encode(&m), XP_MSG_WELCOME, &b);
        s_same(xp__msg_welcome_decode(&b, &again, NULL) == 0 &&
               again.max_message == m.max_message &&
               again.heartbeat_ms == m.heartbeat_ms &&
               again.bundles == m.bundles);
    } else if (type == XP_MSG_STATUS) {
        xp_msg_status m, again;
        if (xp__msg_status_decode(body, &m, NULL) != 0)
            return;
        s_reopen(xp__msg_status_encode(&m), XP_MSG_STATUS, &b);
        s_same(xp__msg_status_decode(&b, &again, NULL) == 0 &&
               again.batch == m.batch && again.cursor == m.cursor);
    } else if (type == XP_MSG_ERROR) {
        xp_msg_error m;
        xp__msg_error_decode(body, &m, NULL);
        xp__msg_error_wants_hello(&m);
        s_reopen(xp__msg_error_encode(&m), XP_MSG_ERROR, &b);
    } else {
        s_reopen(xp__msg_empty_encode(type), type, &b);
    }
    bson_destroy(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    xp_msg_type type = (xp_msg_type)(data[0] % XP_MSG_COUNT);
    const char *name = xp__msg_name(type);
    const uint8_t *frames[3] = {(const uint8_t *)XP_PROTOCOL,
                                (const uint8_t *)name, data + 1};
    size_t lens[3] = {3, strlen(name), size - 1};
    bson_t body;
    xp_msg_type got;
    if (xp__msg_decode_frames(frames, lens, 3, 1u << 20, &got, &body, NULL) !=
        0)
        return 0;
    switch (type) {
    case XP_MSG_HELLO: s_hello(&body); break;
    case XP_MSG_TASK: s_task(&body); break;
    case XP_MSG_RESULT: s_result(&body); break;
    case XP_MSG_SUBMIT: s_submit(&body); break;
    case XP_MSG_ACCEPTED: s_accepted(&body); break;
    case XP_MSG_PROGRESS: s_progress(&body); break;
    case XP_MSG_TASKS:
    case XP_MSG_RESULTS: s_bundle(type, &body); break;
    default: s_small(type, &body); break;
    }
    bson_destroy(&body);
    return 0;
}
