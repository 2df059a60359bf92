/* slots.c — a worker's slot threads: each takes the next job from the
 * queue the main thread fills, reads its inputs, runs the step with a
 * metric sink that buffers the points within what one RESULT may carry,
 * and hands the RESULT to the main thread, which sends it to the
 * scheduler: the results wait in one list, and the main thread is woken
 * (a message on an inproc socket) only when that list was empty. A slot thread
 * finding more jobs waiting goes on without sleeping. */
#include "remote/worker/slots.h"

#include "step.h"
#include "store/metric.h"
#include "util/error.h"
#include "util/sys.h"
#include "value.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    xp_slots *sl;
    pthread_t thread;
    bool started;
    /* metric buffer of the running step (slot thread only) */
    xp_metric_set metrics;
} s_slot;

struct xp_slots {
    int n;
    s_slot *slot;
    /* The largest message a slot may send: the smaller of this worker's
     * --max-message and its scheduler's (from WELCOME). */
    _Atomic size_t max_message;
    zsock_t *results; /* PULL: wake-ups from the slot threads */
    char inproc[64];
    pthread_mutex_t lock;
    pthread_cond_t work; /* a job waits, or quit */
    /* under lock: the jobs waiting for a slot thread, oldest first, and
     * the RESULTs finished and not taken, in order */
    xp_worker_job *head, **tail;
    zmsg_t **done;
    size_t n_done, cap_done;
    bool quit; /* under lock: slot threads end */
    int busy;  /* main thread: jobs out */
    _Atomic int running;
};

/* ---------------------------------------------------------------- jobs */

xp_worker_job *xp__job_new(const bson_t *body, const xp_node *node)
{
    xp_worker_job *job = bson_malloc0(sizeof *job);
    job->body = bson_copy(body);
    job->node = node;
    xp__msg_task_decode(job->body, &job->task, NULL);
    return job;
}

void xp__job_free(xp_worker_job **pjob)
{
    if (!*pjob)
        return;
    bson_destroy((*pjob)->body);
    bson_free(*pjob);
    *pjob = NULL;
}

/* ---------------------------------------------------------------- metrics */

/* xp_metric_sink of a slot: buffers the points per metric name, within
 * what one RESULT can carry. */
static int s_metric_save(void *ctx, const char *name, int64_t epoch,
                         double value)
{
    s_slot *slot = ctx;
    if ((slot->metrics.points + 1) * 16 + 4096 > (size_t)slot->sl->max_message)
        return -1;
    return xp__metric_set_add(&slot->metrics, name, epoch, value) ? 0 : -1;
}

/* ---------------------------------------------------------------- results */

/* The RESULT of job: out, or failed with failure; with the metrics of
 * slot (NULL: none) and a command step's log (NULL: none). Caller owns
 * it. */
static zmsg_t *s_result(const xp_worker_job *job, const xp_value *out,
                        const char *failure, const s_slot *slot, double elapsed,
                        const xp_value *log)
{
    size_t n = slot ? slot->metrics.n : 0;
    xp_msg_metric *metrics = bson_malloc0((n ? n : 1) * sizeof *metrics);
    for (size_t i = 0; i < n; i++) {
        const xp_metric_buf *m = &slot->metrics.items[i];
        metrics[i] = (xp_msg_metric){m->name, m->points.epochs,
                                     m->points.values, m->points.n};
    }
    xp_msg_result r = {
        .trial = job->task.trial,
        .attempt = job->task.attempt,
        .step = job->task.step,
        .ok = out != NULL,
        .output = (xp_value *)out,
        .failure = failure,
        .metrics = metrics,
        .n_metrics = n,
        .elapsed = elapsed,
        .log = (xp_value *)log,
    };
    zmsg_t *msg = xp__msg_result_encode(&r);
    bson_free(metrics);
    return msg;
}

/* ---------------------------------------------------------------- running */

/* Reads the job's inputs into inputs[n->n_inputs]; a failure message
 * otherwise. */
static void s_inputs(const xp_worker_job *job, xp_value **inputs, char *failure,
                     size_t size)
{
    size_t want = job->node->n_inputs, got = 0;
    xp_error_t err;
    if (xp__msg_task_inputs(&job->task, inputs, want, &got, &err) != 0)
        snprintf(failure, size, "%s", err.message);
    else if (got != want)
        snprintf(failure, size,
                 "step %.128s takes %zu input(s), the task has %zu",
                 job->task.step, want, got);
}

/* Runs job on the calling slot thread; caller owns the RESULT message. */
static zmsg_t *s_job_run(s_slot *slot, const xp_worker_job *job)
{
    const xp_node *n = job->node;
    xp_value **inputs = bson_malloc0((n->n_inputs + 1) * sizeof *inputs);
    xp_value *out = xp_value_new();
    xp_value *log = NULL;
    char failure[512] = "";
    double elapsed = 0;
    xp__metric_set_clear(&slot->metrics);
    s_inputs(job, inputs, failure, sizeof failure);
    if (!failure[0]) {
        xp_metric_sink sink = {s_metric_save, slot};
        double t0 = xp__monotonic();
        atomic_fetch_add(&slot->sl->running, 1);
        if (xp__step_run_log(n, job->task.trial, job->task.seed,
                             (const xp_value *const *)inputs, &sink, out, &log,
                             failure, sizeof failure) != 0 &&
            !failure[0])
            snprintf(failure, sizeof failure, "step returned an error");
        atomic_fetch_sub(&slot->sl->running, 1);
        elapsed = xp__monotonic() - t0;
    }
    const xp_value *ok = failure[0] ? NULL : out;
    zmsg_t *msg = s_result(job, ok, failure, slot, elapsed, log);
    size_t len = zframe_size(zmsg_last(msg));
    if (log && len + 64 > slot->sl->max_message) {
        /* The log is what gives way first: the outcome matters more. */
        zmsg_destroy(&msg);
        msg = s_result(job, ok, failure, slot, elapsed, NULL);
        len = zframe_size(zmsg_last(msg));
    }
    if (len + 64 > slot->sl->max_message) {
        char why[256];
        snprintf(why, sizeof why,
                 "the result of step %s (%zu bytes) exceeds the message "
                 "limit of %zu bytes (the smaller of this worker's and the "
                 "scheduler's --max-message)",
                 job->task.step, len, (size_t)slot->sl->max_message);
        zmsg_destroy(&msg);
        msg = s_result(job, NULL, why, NULL, elapsed, NULL);
    }
    xp__metric_set_clear(&slot->metrics);
    for (size_t k = 0; k < n->n_inputs; k++)
        xp_value_destroy(&inputs[k]);
    bson_free(inputs);
    xp_value_destroy(&out);
    xp_value_destroy(&log);
    return msg;
}

/* The next job, waiting for one; NULL when the slots end. Under lock. */
static xp_worker_job *s_next_job(xp_slots *sl)
{
    while (!sl->head && !sl->quit)
        pthread_cond_wait(&sl->work, &sl->lock);
    if (sl->quit)
        return NULL;
    xp_worker_job *job = sl->head;
    sl->head = job->next;
    if (!sl->head)
        sl->tail = &sl->head;
    return job;
}

/* Lists msg for the main thread; true when the list was empty (the main
 * thread is to be woken). Under lock. */
static bool s_done_add(xp_slots *sl, zmsg_t *msg)
{
    if (sl->n_done == sl->cap_done) {
        sl->cap_done = sl->cap_done ? 2 * sl->cap_done : 16;
        sl->done = bson_realloc(sl->done, sl->cap_done * sizeof *sl->done);
    }
    sl->done[sl->n_done++] = msg;
    return sl->n_done == 1;
}

static void *s_slot_main(void *arg)
{
    s_slot *slot = arg;
    xp_slots *sl = slot->sl;
    zsock_t *push = zsock_new_push(sl->inproc);
    for (;;) {
        pthread_mutex_lock(&sl->lock);
        xp_worker_job *job = s_next_job(sl);
        pthread_mutex_unlock(&sl->lock);
        if (!job)
            break;
        zmsg_t *msg = s_job_run(slot, job);
        xp__job_free(&job);
        pthread_mutex_lock(&sl->lock);
        bool wake = s_done_add(sl, msg);
        pthread_mutex_unlock(&sl->lock);
        if (wake && push)
            zstr_send(push, "");
    }
    zsock_destroy(&push);
    return NULL;
}

/* ---------------------------------------------------------------- main thread
 */

void xp__slots_start(xp_slots *sl, xp_worker_job *job)
{
    sl->busy++;
    job->next = NULL;
    pthread_mutex_lock(&sl->lock);
    *sl->tail = job;
    sl->tail = &job->next;
    pthread_cond_signal(&sl->work);
    pthread_mutex_unlock(&sl->lock);
}

xp_worker_job *xp__slots_take_waiting(xp_slots *sl)
{
    pthread_mutex_lock(&sl->lock);
    xp_worker_job *job = sl->head;
    if (job) {
        sl->head = job->next;
        if (!sl->head)
            sl->tail = &sl->head;
        sl->busy--;
    }
    pthread_mutex_unlock(&sl->lock);
    return job;
}

size_t xp__slots_take_results(xp_slots *sl, zmsg_t ***out)
{
    /* The wake-ups first: a result listed after this is either taken
     * below or wakes the next poll. */
    zmsg_t *ping;
    while ((ping = zmsg_recv_nowait(sl->results)) != NULL)
        zmsg_destroy(&ping);
    pthread_mutex_lock(&sl->lock);
    size_t n = sl->n_done;
    *out = sl->done;
    sl->done = NULL;
    sl->n_done = sl->cap_done = 0;
    pthread_mutex_unlock(&sl->lock);
    sl->busy -= (int)n <= sl->busy ? (int)n : sl->busy;
    return n;
}

zsock_t *xp__slots_socket(xp_slots *sl)
{
    return sl->results;
}

int xp__slots_busy(const xp_slots *sl)
{
    return sl->busy;
}

int xp__slots_running(const xp_slots *sl)
{
    return atomic_load(&((xp_slots *)sl)->running);
}

/* ---------------------------------------------------------------- life */

static int s_start_threads(xp_slots *sl, xp_error_t *err)
{
    /* Signals go to the main thread, whose poll they interrupt. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = 0;
    for (int i = 0; i < sl->n; i++) {
        s_slot *slot = &sl->slot[i];
        slot->sl = sl;
        if (pthread_create(&slot->thread, NULL, s_slot_main, slot) != 0) {
            rc = xp__error(err, XP_DOMAIN_SYSTEM, XP_ENOMEM,
                           "cannot start slot thread %d of %d", i + 1, sl->n);
            break;
        }
        slot->started = true;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

void xp__slots_limit(xp_slots *sl, size_t own, size_t max_message)
{
    sl->max_message = max_message && max_message < own ? max_message : own;
}

int xp__slots_new(xp_slots **out, int n, size_t max_message, xp_error_t *err)
{
    xp_slots *sl = bson_malloc0(sizeof *sl);
    pthread_mutex_init(&sl->lock, NULL);
    pthread_cond_init(&sl->work, NULL);
    sl->tail = &sl->head;
    sl->max_message = max_message;
    snprintf(sl->inproc, sizeof sl->inproc, "inproc://xp-worker-%p",
             (void *)sl);
    sl->results = zsock_new_pull(NULL);
    if (!sl->results || zsock_bind(sl->results, "%s", sl->inproc) != 0) {
        xp__error(err, XP_DOMAIN_SYSTEM, XP_EIO,
                  "cannot create the slot result socket: %s",
                  zmq_strerror(zmq_errno()));
        xp__slots_destroy(&sl);
        *out = NULL;
        return -1;
    }
    sl->n = n;
    sl->slot = bson_malloc0((size_t)n * sizeof *sl->slot);
    int rc = s_start_threads(sl, err);
    if (rc != 0)
        xp__slots_destroy(&sl);
    *out = sl;
    return rc;
}

void xp__slots_destroy(xp_slots **psl)
{
    if (!psl || !*psl)
        return;
    xp_slots *sl = *psl;
    pthread_mutex_lock(&sl->lock);
    sl->quit = true;
    pthread_cond_broadcast(&sl->work);
    pthread_mutex_unlock(&sl->lock);
    for (int i = 0; sl->slot && i < sl->n; i++) {
        s_slot *slot = &sl->slot[i];
        if (!slot->started)
            continue;
        pthread_join(slot->thread, NULL);
        xp__metric_set_clear(&slot->metrics);
    }
    while (sl->head) {
        xp_worker_job *job = sl->head;
        sl->head = job->next;
        xp__job_free(&job);
    }
    for (size_t i = 0; i < sl->n_done; i++)
        zmsg_destroy(&sl->done[i]);
    bson_free(sl->done);
    bson_free(sl->slot);
    zsock_destroy(&sl->results);
    pthread_cond_destroy(&sl->work);
    pthread_mutex_destroy(&sl->lock);
    bson_free(sl);
    *psl = NULL;
}
