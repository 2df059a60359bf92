/* remote/worker/slots.h — the slots of a worker: one thread each, taking
 * jobs in order from one queue and running one step at a time with its
 * metric points buffered, and handing the RESULTs back to the main thread
 * in a list (woken through an inproc socket). */
#ifndef XP_REMOTE_WORKER_SLOTS_H
#define XP_REMOTE_WORKER_SLOTS_H

#include "remote/message.h"

#include "graph.h"

typedef struct xp_slots xp_slots;

/* A validated TASK, waiting for or running on a slot. */
typedef struct xp_worker_job {
    bson_t *body;     /* the TASK body, owned */
    xp_msg_task task; /* decoded from body, pointing into it */
    const xp_node *node;
    struct xp_worker_job *next; /* in the queue */
} xp_worker_job;

/* A job for node from a copy of body, a TASK that decoded. Caller owns it
 * (xp__slots_start takes it). */
xp_worker_job *xp__job_new(const bson_t *body, const xp_node *node);

/* Starts n slot threads (signals stay with the calling thread); a RESULT
 * and its metrics stay within max_message. Caller owns *out. */
int xp__slots_new(xp_slots **out, int n, size_t max_message, xp_error_t *err);
/* Waits for running steps. NULL-safe; sets *sl to NULL. */
void xp__slots_destroy(xp_slots **sl);
/* Lowers the message limit of the slots to max_message when it is
 * smaller than the worker's own (the scheduler's, from WELCOME). */
void xp__slots_limit(xp_slots *sl, size_t own, size_t max_message);
/* Main thread: jobs out (waiting or running, their RESULT not taken). */
int xp__slots_busy(const xp_slots *sl);
/* Any thread: slots running a step right now. */
int xp__slots_running(const xp_slots *sl);
/* Main thread: queues job for the next free slot (in order); the caller
 * bounds how many are out. */
void xp__slots_start(xp_slots *sl, xp_worker_job *job);
/* Main thread: takes back the job that waits longest and has not started
 * (no RESULT will come for it), or NULL. Caller owns it (xp__job_free). */
xp_worker_job *xp__slots_take_waiting(xp_slots *sl);
void xp__job_free(xp_worker_job **job);
/* The socket to poll for RESULTs (readable: take them). */
zsock_t *xp__slots_socket(xp_slots *sl);
/* Main thread: the RESULTs the slots finished since the last call, in
 * order (their jobs are no longer out), into *out; how many. Caller owns
 * the messages and frees the array with bson_free. */
size_t xp__slots_take_results(xp_slots *sl, zmsg_t ***out);

#endif /* XP_REMOTE_WORKER_SLOTS_H */
