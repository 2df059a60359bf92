/* tasks.c — the steps of taken-up trials as tasks: queued in FIFO order,
 * sent (TASK) to the worker with the most free slots that runs their code,
 * completed by the worker's RESULT (a stale attempt is ignored), put back
 * at the front of the queue when their worker is lost. */
#include "remote/scheduler/tasks.h"

#include "remote/scheduler/batches.h"
#include "remote/scheduler/trials.h"

#include "trial.h"
#include "util/bson_util.h"
#include "util/log.h"
#include "value.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void xp__sched_tasks_init(xp_scheduler *s)
{
    s->tasks = zhashx_new();
    s->queue = zlistx_new();
}

void xp__sched_tasks_fini(xp_scheduler *s)
{
    if (s->tasks)
        for (xp_sched_task *t = zhashx_first(s->tasks); t;
             t = zhashx_next(s->tasks)) {
            xp_sched_trial *st = t->trial;
            if (--st->tasks_alive == 0)
                xp__sched_trial_free(st);
            free(t);
        }
    zhashx_destroy(&s->tasks);
    zlistx_destroy(&s->queue);
}

static void s_task_free(xp_scheduler *s, xp_sched_task *task)
{
    zhashx_delete(s->tasks, task->key);
    free(task);
}

void xp__sched_tasks_enqueue_ready(xp_scheduler *s, xp_sched_trial *st)
{
    xp_node *n;
    while ((n = xp__trial_take_ready(st->t)) != NULL) {
        xp_sched_task *task = calloc(1, sizeof *task);
        task->trial = st;
        task->node = n;
        task->attempt = 1;
        snprintf(task->key, sizeof task->key, "%s/%lld/%s",
                 xp_experiment_id(st->def->ex), (long long)xp__trial_id(st->t),
                 n->name);
        zhashx_insert(s->tasks, task->key, task);
        zlistx_add_end(s->queue, task);
        st->tasks_alive++;
    }
}

/* The task left its worker (result, loss): no longer running. */
static void s_off_worker(xp_sched_task *task)
{
    task->worker = NULL;
    if (task->trial->batch)
        xp__sched_batch_running(task->trial->batch, -1);
}

/* The step of task is over (out, or failed with failure): its trial goes
 * on with the steps that became ready, or is listed for recording. */
static void s_step_done(xp_scheduler *s, xp_sched_task *task, xp_value *out,
                        const char *failure)
{
    xp_sched_trial *st = task->trial;
    xp__trial_step_done(st->t, task->node, out, failure);
    st->tasks_alive--;
    s_task_free(s, task);
    xp__sched_tasks_enqueue_ready(s, st);
    xp__sched_trial_maybe_finish(s, st);
}

void xp__sched_task_lost(xp_scheduler *s, xp_sched_task *task, const char *host,
                         const char *why)
{
    s_off_worker(task);
    if (task->attempt >= s->opts.max_attempts) {
        char failure[512];
        snprintf(failure, sizeof failure,
                 "worker lost %lld time(s) running this step (last: "
                 "%.200s, %s)",
                 (long long)task->attempt, host, why);
        s_step_done(s, task, NULL, failure);
        return;
    }
    task->attempt++;
    zlistx_add_start(s->queue, task);
}

/* Sends task to worker w and counts it as running there. */
static void s_send_task(xp_scheduler *s, xp_sched_worker *w,
                        xp_sched_task *task)
{
    xp_sched_trial *st = task->trial;
    bson_t body = BSON_INITIALIZER, inputs;
    BSON_APPEND_INT64(&body, "trial", xp__trial_id(st->t));
    BSON_APPEND_INT64(&body, "attempt", task->attempt);
    BSON_APPEND_UTF8(&body, "experiment", xp_experiment_id(st->def->ex));
    BSON_APPEND_UTF8(&body, "code_hash", st->def->ex->code_hash);
    BSON_APPEND_UTF8(&body, "step", task->node->name);
    BSON_APPEND_INT64(&body, "seed", (int64_t)xp__trial_seed(st->t));
    BSON_APPEND_ARRAY_BEGIN(&body, "inputs", &inputs);
    for (size_t i = 0; i < task->node->n_inputs; i++) {
        char key[16];
        const char *k;
        bson_uint32_to_string((uint32_t)i, &k, key, sizeof key);
        xp__value_append_bson(&inputs, k,
                              xp__trial_value(st->t, task->node->inputs[i]));
    }
    bson_append_array_end(&body, &inputs);
    xp__sched_send(s, w->identity, XP_MSG_TASK, &body);
    bson_destroy(&body);
    task->worker = w;
    task->dispatched_ms = xp__sched_now();
    xp__sched_trial_mark_running(s, st);
    zlistx_add_end(w->tasks, task);
    w->busy++;
    if (st->batch)
        xp__sched_batch_running(st->batch, +1);
}

void xp__sched_tasks_dispatch(xp_scheduler *s)
{
    int free_slots = xp__sched_free_slots(s);
    xp_sched_task *task = zlistx_first(s->queue);
    while (task && free_slots > 0) {
        /* Deleting a node other than the cursor leaves the cursor be. */
        void *handle = zlistx_cursor(s->queue);
        xp_sched_task *next = zlistx_next(s->queue);
        xp_sched_worker *w = xp__sched_worker_pick(s, task->trial->def->key);
        if (w) {
            zlistx_delete(s->queue, handle);
            s_send_task(s, w, task);
            free_slots--;
        }
        task = next;
    }
}

/* Reads the metric points of a RESULT into the trial. */
static int s_take_metrics(xp_trial *t, const bson_t *body)
{
    bson_t list;
    if (!xp__bson_sub(body, "metrics", &list))
        return 0;
    bson_iter_t it, f;
    bson_iter_init(&it, &list);
    while (bson_iter_next(&it)) {
        const char *name = NULL;
        const uint8_t *ep = NULL, *vp = NULL;
        uint32_t elen = 0, vlen = 0;
        if (!bson_iter_recurse(&it, &f))
            return -1;
        while (bson_iter_next(&f)) {
            const char *k = bson_iter_key(&f);
            if (strcmp(k, "name") == 0 && BSON_ITER_HOLDS_UTF8(&f))
                name = bson_iter_utf8(&f, NULL);
            else if (strcmp(k, "epochs") == 0 && BSON_ITER_HOLDS_BINARY(&f))
                bson_iter_binary(&f, NULL, &elen, &ep);
            else if (strcmp(k, "values") == 0 && BSON_ITER_HOLDS_BINARY(&f))
                bson_iter_binary(&f, NULL, &vlen, &vp);
        }
        if (!name || elen != vlen || elen % 8 != 0 ||
            xp_check_name("metric", name, NULL) != 0)
            return -1;
        for (uint32_t i = 0; i < elen / 8; i++) {
            uint64_t e, v;
            double d;
            memcpy(&e, ep + 8 * i, 8);
            memcpy(&v, vp + 8 * i, 8);
            e = BSON_UINT64_FROM_LE(e);
            v = BSON_UINT64_FROM_LE(v);
            memcpy(&d, &v, 8);
            xp__trial_save_metric(t, name, (int64_t)e, d);
        }
    }
    return 0;
}

/* The task of trial and step that worker w runs, or NULL. */
static xp_sched_task *s_running_on(xp_sched_worker *w, int64_t trial,
                                   const char *step)
{
    for (xp_sched_task *t = zlistx_first(w->tasks); t;
         t = zlistx_next(w->tasks))
        if (xp__trial_id(t->trial->t) == trial &&
            strcmp(t->node->name, step) == 0)
            return t;
    return NULL;
}

/* The output of a successful RESULT, or NULL with why. */
static xp_value *s_output(xp_sched_worker *w, xp_sched_trial *st,
                          const bson_t *body, char *why, size_t size)
{
    bson_iter_t it;
    xp_value *out = xp_value_new();
    xp_error_t err;
    if (!bson_iter_init_find(&it, body, "output") ||
        xp__value_from_iter(out, &it, &err) != 0) {
        xp_value_destroy(&out);
        snprintf(why, size, "worker %s sent a malformed output", w->id);
    } else if (s_take_metrics(st->t, body) != 0) {
        xp_value_destroy(&out);
        snprintf(why, size, "worker %s sent malformed metrics", w->id);
    }
    return out;
}

void xp__sched_task_result(xp_scheduler *s, xp_sched_worker *w,
                           const bson_t *body)
{
    int64_t trial = 0, attempt = 0;
    const char *step = xp__bson_utf8(body, "step");
    if (!step || !xp__bson_int64(body, "trial", &trial) ||
        !xp__bson_int64(body, "attempt", &attempt)) {
        s->malformed++;
        return;
    }
    xp_sched_task *task = s_running_on(w, trial, step);
    if (!task || task->attempt != attempt) {
        xp__log(XP_LOG_DEBUG,
                "Ignoring stale result of trial %lld step %s "
                "attempt %lld",
                (long long)trial, step, (long long)attempt);
        /* A step it ran before registering again has freed its slot. */
        if (w->busy > (int)zlistx_size(w->tasks))
            w->busy--;
        return;
    }
    zlistx_delete(w->tasks, zlistx_find(w->tasks, task));
    s_off_worker(task);
    xp_sched_trial *st = task->trial;
    bool ok = xp__bson_bool(body, "ok", false);
    const char *failure = xp__bson_utf8(body, "failure");
    if (!ok && failure && strcmp(failure, "worker busy") == 0) {
        /* Its slots are taken by steps we do not know of: requeue and
         * count the slot as busy until one of those reports back. */
        zlistx_add_start(s->queue, task);
        return;
    }
    w->busy--;
    xp_value *out = NULL;
    char why[512] = "";
    if (ok) {
        out = s_output(w, st, body, why, sizeof why);
    } else {
        s_take_metrics(st->t, body);
        snprintf(why, sizeof why, "%s",
                 failure ? failure : "step failed on the worker");
    }
    double elapsed = 0;
    bson_iter_t e;
    if (bson_iter_init_find(&e, body, "elapsed") && BSON_ITER_HOLDS_DOUBLE(&e))
        elapsed = bson_iter_double(&e);
    xp__trial_note_step(st->t, task->node->name, w->host, w->id, task->attempt,
                        elapsed);
    s_step_done(s, task, out, out ? NULL : why);
}
