/* tasks.c — the steps of taken-up trials as tasks: queued in FIFO order,
 * sent (TASK) to the worker with the most free slots that runs their code,
 * completed by the worker's RESULT (a stale attempt is ignored), put back
 * at the front of the queue when their worker is lost. */
#include "remote/scheduler/tasks.h"

#include "remote/scheduler/batches.h"
#include "remote/scheduler/trials.h"

#include "trial.h"
#include "util/log.h"
#include "value.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void xp__sched_tasks_init(xp_scheduler *s)
{
    s->tasks = zhashx_new();
    s->queue = zlistx_new();
    s->parked = zlistx_new();
}

void xp__sched_tasks_fini(xp_scheduler *s)
{
    for (xp_sched_task *t = s->parked ? zlistx_first(s->parked) : NULL; t;
         t = zlistx_next(s->parked))
        xp__trial_memo_abandon(t->trial->t, t->node);
    zlistx_destroy(&s->parked);
    if (s->tasks)
        for (xp_sched_task *t = zhashx_first(s->tasks); t;
             t = zhashx_next(s->tasks)) {
            xp_sched_trial *st = t->trial;
            if (--st->tasks_alive == 0)
                xp__sched_trial_free(st);
            bson_free(t);
        }
    zhashx_destroy(&s->tasks);
    zlistx_destroy(&s->queue);
}

static void s_task_free(xp_scheduler *s, xp_sched_task *task)
{
    zhashx_delete(s->tasks, task->key);
    bson_free(task);
}

void xp__sched_tasks_enqueue_ready(xp_scheduler *s, xp_sched_trial *st)
{
    xp_node *n;
    while ((n = xp__trial_take_ready(st->t)) != NULL) {
        /* A memo hit is never sent: it is done here, and may make
         * others ready. */
        xp_trial_memo memo = xp__trial_memo_dispatch(st->t, n);
        if (memo == XP_TRIAL_MEMO_DONE)
            continue;
        xp_sched_task *task = bson_malloc0(sizeof *task);
        task->trial = st;
        task->node = n;
        task->attempt = 1;
        snprintf(task->key, sizeof task->key, "%s/%lld/%s",
                 xp_experiment_id(st->def->ex), (long long)xp__trial_id(st->t),
                 n->name);
        zhashx_insert(s->tasks, task->key, task);
        zlistx_add_end(memo == XP_TRIAL_MEMO_WAIT ? s->parked : s->queue, task);
        st->tasks_alive++;
    }
}

static void s_step_done(xp_scheduler *s, xp_sched_task *task, xp_value *out,
                        const char *failure);

/* A pure step is done: the parked tasks waiting for its key reuse its
 * output, or (it failed) one of them is queued to run it. */
static void s_wake_parked(xp_scheduler *s)
{
    xp_sched_task *task = zlistx_first(s->parked);
    while (task) {
        void *handle = zlistx_cursor(s->parked);
        xp_sched_task *next = zlistx_next(s->parked);
        xp_trial_memo memo =
            xp__trial_memo_dispatch(task->trial->t, task->node);
        if (memo != XP_TRIAL_MEMO_WAIT) {
            zlistx_delete(s->parked, handle);
            if (memo == XP_TRIAL_MEMO_RUN) {
                zlistx_add_end(s->queue, task);
            } else {
                /* Done by the memo: what became ready goes on. */
                xp_sched_trial *st = task->trial;
                st->tasks_alive--;
                s_task_free(s, task);
                xp__sched_tasks_enqueue_ready(s, st);
                xp__sched_trial_maybe_finish(s, st);
            }
            /* Waking may park or wake others: walk again. */
            next = zlistx_first(s->parked);
        }
        task = next;
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
    bool pure = task->node->pure;
    xp__trial_step_done(st->t, task->node, out, failure);
    st->tasks_alive--;
    s_task_free(s, task);
    xp__sched_tasks_enqueue_ready(s, st);
    xp__sched_trial_maybe_finish(s, st);
    if (pure && zlistx_size(s->parked) > 0)
        s_wake_parked(s);
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

/* The TASK message of task. Caller owns result. */
static zmsg_t *s_task_message(const xp_sched_task *task)
{
    xp_sched_trial *st = task->trial;
    const xp_node *n = task->node;
    const xp_value **inputs = bson_malloc0((n->n_inputs + 1) * sizeof *inputs);
    for (size_t i = 0; i < n->n_inputs; i++)
        inputs[i] = xp__trial_value(st->t, n->inputs[i]);
    xp_msg_task m = {
        .trial = xp__trial_id(st->t),
        .attempt = task->attempt,
        .step = n->name,
        .experiment = xp_experiment_id(st->def->ex),
        .code_hash = xp__experiment_code_hash(st->def->ex),
        .seed = xp__trial_seed(st->t),
        .inputs = inputs,
        .n_inputs = n->n_inputs,
    };
    zmsg_t *msg = xp__msg_task_encode(&m);
    bson_free(inputs);
    return msg;
}

/* Sends msg, the TASK of task, to worker w (in its TASKS when it takes
 * them, sent at the end of the dispatch) and counts it as out there. */
static void s_send_task(xp_scheduler *s, xp_sched_worker *w,
                        xp_sched_task *task, zmsg_t *msg)
{
    xp_sched_trial *st = task->trial;
    size_t bytes = zframe_size(zmsg_last(msg));
    /* A task that would not fit a TASKS of its own goes alone. */
    if (!w->bundles || xp__msg_bundle_size_alone(bytes) > w->max_message) {
        xp__sched_send(s, w->identity, msg);
    } else {
        if (w->out_open &&
            xp__msg_bundle_size_with(&w->out, bytes) > w->max_message)
            xp__sched_worker_flush(s, w);
        if (!w->out_open)
            xp__msg_bundle_init(&w->out, XP_MSG_TASKS);
        w->out_open = true;
        xp__msg_bundle_add(&w->out, &msg);
    }
    task->worker = w;
    task->dispatched_ms = xp__sched_now();
    xp__sched_trial_mark_running(s, st);
    zlistx_add_end(w->tasks, task);
    w->busy++;
    if (st->batch)
        xp__sched_batch_running(st->batch, +1);
}

/* Whether w takes a task of bytes now: within its message limit, and
 * small enough to wait beyond its slots if it has none free. */
static bool s_fits(const xp_sched_worker *w, size_t bytes)
{
    return bytes <= w->max_message &&
           (w->busy < w->slots || bytes <= XP_SCHED_PREFETCH_TASK_MAX);
}

/* The worker that takes task now, or NULL (it waits); *msg: its TASK
 * once encoded. A task found larger than a worker takes (or than what
 * waits beyond a worker's slots) remembers its size (task->bytes), to be
 * placed only where it fits. */
static xp_sched_worker *s_placement(xp_scheduler *s, xp_sched_task *task,
                                    zmsg_t **msg)
{
    const xp_sched_def *def = task->trial->def;
    xp_sched_worker *w = xp__sched_worker_pick(s, def, task->bytes);
    if (!w)
        return NULL;
    *msg = s_task_message(task);
    size_t bytes = zframe_size(zmsg_last(*msg));
    if (s_fits(w, bytes))
        return w;
    task->bytes = bytes;
    if ((w = xp__sched_worker_pick(s, def, bytes)) == NULL)
        zmsg_destroy(msg);
    return w;
}

/* A task too big for every connected worker with its code (its size
 * known, task->bytes): true, with the largest they take in *most. */
static bool s_too_big(xp_scheduler *s, const xp_sched_task *task, size_t *most)
{
    *most =
        task->bytes ? xp__sched_def_max_message(s, task->trial->def->key) : 0;
    return *most && task->bytes > *most;
}

/* Its step fails now, with the reason, instead of costing a worker its
 * connection (lost, re-queued, lost again). */
static void s_fail_too_big(xp_scheduler *s, xp_sched_task *task, size_t most)
{
    char failure[256];
    snprintf(failure, sizeof failure,
             "task of %zu bytes exceeds worker's --max-message %zu",
             task->bytes, most);
    s_step_done(s, task, NULL, failure);
}

void xp__sched_tasks_dispatch(xp_scheduler *s)
{
    int free_slots = xp__sched_free_slots(s);
    /* Failed after the walk: a step's end may queue others. */
    zlistx_t *too_big = NULL;
    size_t most = 0;
    xp_sched_task *task = zlistx_first(s->queue);
    while (task && free_slots > 0) {
        /* Deleting a node other than the cursor leaves the cursor be. */
        void *handle = zlistx_cursor(s->queue);
        xp_sched_task *next = zlistx_next(s->queue);
        zmsg_t *msg = NULL;
        xp_sched_worker *w = s_placement(s, task, &msg);
        if (w) {
            zlistx_delete(s->queue, handle);
            s_send_task(s, w, task, msg);
            free_slots--;
        } else if (s_too_big(s, task, &most)) {
            zlistx_delete(s->queue, handle);
            if (!too_big)
                too_big = zlistx_new();
            zlistx_add_end(too_big, task);
        }
        task = next;
    }
    for (xp_sched_worker *w = zhashx_first(s->workers); w;
         w = zhashx_next(s->workers))
        xp__sched_worker_flush(s, w);
    for (task = too_big ? zlistx_first(too_big) : NULL; task;
         task = zlistx_next(too_big)) {
        s_too_big(s, task, &most);
        s_fail_too_big(s, task, most);
    }
    zlistx_destroy(&too_big);
}

/* Saves the metric points of a RESULT in the trial. */
static void s_save_metrics(xp_trial *t, const xp_msg_result *m)
{
    for (size_t i = 0; i < m->n_metrics; i++) {
        const xp_msg_metric *mt = &m->metrics[i];
        for (size_t k = 0; k < mt->n; k++)
            xp__trial_save_metric(t, mt->name, mt->epochs[k], mt->values[k]);
    }
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

/* The output a RESULT brings (taken from m), or NULL with why. */
static xp_value *s_outcome(xp_sched_worker *w, xp_sched_trial *st,
                           xp_msg_result *m, char *why, size_t size)
{
    xp_value *out = m->ok ? m->output : NULL;
    m->output = NULL;
    s_save_metrics(st->t, m);
    if (!m->ok)
        snprintf(why, size, "%s",
                 m->failure ? m->failure : "step failed on the worker");
    else if (!out)
        snprintf(why, size, "worker %s sent a malformed output", w->id);
    else if (m->metrics_bad) {
        xp_value_destroy(&out);
        snprintf(why, size, "worker %s sent malformed metrics", w->id);
    }
    return out;
}

void xp__sched_task_result(xp_scheduler *s, xp_sched_worker *w,
                           xp_msg_result *m)
{
    xp_sched_task *task = s_running_on(w, m->trial, m->step);
    if (!task || task->attempt != m->attempt) {
        xp__log(XP_LOG_DEBUG,
                "Ignoring stale result of trial %lld step %s "
                "attempt %lld",
                (long long)m->trial, m->step, (long long)m->attempt);
        /* A step it ran before registering again has freed its slot. */
        if (w->busy > (int)zlistx_size(w->tasks))
            w->busy--;
        return;
    }
    zlistx_delete(w->tasks, zlistx_find(w->tasks, task));
    s_off_worker(task);
    if (xp__msg_result_busy(m)) {
        /* Its slots are taken by steps we do not know of: requeue and
         * count the slot as busy until one of those reports back. */
        zlistx_add_start(s->queue, task);
        return;
    }
    w->busy--;
    xp_sched_trial *st = task->trial;
    xp__sched_def_timed(st->def, m->elapsed);
    char why[512] = "";
    xp_value *out = s_outcome(w, st, m, why, sizeof why);
    xp_record_step where = {.host = w->host,
                            .worker = w->id,
                            .attempt = task->attempt,
                            .elapsed = m->elapsed,
                            .job_id = w->job_id,
                            .job_index = w->job_index,
                            .job_node = w->job_node};
    xp__trial_note_step(st->t, task->node->name, &where);
    if (m->log) {
        xp__trial_keep_log(st->t, task->node->name, m->log);
        m->log = NULL;
    }
    s_step_done(s, task, out, out ? NULL : why);
}
