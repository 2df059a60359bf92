/* remote/scheduler/tasks.h — the steps of taken-up trials as tasks: the
 * queue of those waiting for a worker, their dispatch (TASK) to workers
 * with free slots and the trial's code, their RESULTs, and what becomes
 * of them when their worker is lost. */
#ifndef XP_REMOTE_SCHEDULER_TASKS_H
#define XP_REMOTE_SCHEDULER_TASKS_H

#include "remote/scheduler/state.h"
#include "remote/scheduler/workers.h"

#include "graph.h"
#include "util/names.h"

/* One step of one trial, waiting for or running on a worker. */
typedef struct {
    xp_sched_trial *trial;
    xp_node *node;
    int64_t attempt;
    xp_sched_worker *worker; /* NULL while queued */
    char key[XP_ID_MAX + XP_NAME_MAX + 32];
    int64_t dispatched_ms;
    size_t bytes; /* its TASK body once found too big for a worker; 0 */
} xp_sched_task;

void xp__sched_tasks_init(xp_scheduler *s);
/* Frees every task, and the trials they kept (they stay queued in the
 * backend for the next start). */
void xp__sched_tasks_fini(xp_scheduler *s);
/* Queues every step of st that became ready. */
void xp__sched_tasks_enqueue_ready(xp_scheduler *s, xp_sched_trial *st);
/* Sends queued tasks to workers with free slots and the task's code, in
 * queue order; a task no free worker can run keeps its place. A task
 * larger than a worker's --max-message goes to one that takes it, or
 * fails at once when no connected worker with its code does. */
void xp__sched_tasks_dispatch(xp_scheduler *s);
/* A RESULT from worker w; takes its output. */
void xp__sched_task_result(xp_scheduler *s, xp_sched_worker *w,
                           xp_msg_result *m);
/* The task's worker (on host) is gone: it goes back to the front of the
 * queue with the next attempt, or fails its trial after max_attempts. */
void xp__sched_task_lost(xp_scheduler *s, xp_sched_task *task, const char *host,
                         const char *why);

#endif /* XP_REMOTE_SCHEDULER_TASKS_H */
