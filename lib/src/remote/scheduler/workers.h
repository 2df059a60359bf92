/* remote/scheduler/workers.h — the workers a scheduler knows: their
 * registration (HELLO), the definitions they run, their slots, their
 * heartbeats and their loss. */
#ifndef XP_REMOTE_SCHEDULER_WORKERS_H
#define XP_REMOTE_SCHEDULER_WORKERS_H

#include "remote/scheduler/defs.h"
#include "remote/scheduler/state.h"

typedef struct {
    char id[64];  /* hex of the routing identity */
    char key[64]; /* its CURVE public key, else its id */
    zframe_t *identity;
    char host[256];
    int64_t pid;
    /* The batch job it runs in (HELLO's job), "" and -1: none. */
    char job_id[XP_MSG_JOB_MAX + 1], job_node[XP_MSG_JOB_MAX + 1];
    int64_t job_index;
    int slots, busy;    /* busy: slots running a step */
    size_t max_message; /* the largest TASK body it takes */
    int64_t last_seen_ms;
    zlistx_t *defs;  /* keys of the definitions it runs */
    zlistx_t *tasks; /* xp_sched_task in flight on it */
} xp_sched_worker;

void xp__sched_workers_init(xp_scheduler *s);
void xp__sched_workers_fini(xp_scheduler *s);
xp_sched_worker *xp__sched_worker_find(xp_scheduler *s, const char *id);
/* HELLO from the peer of routing frame from (hex id) known as who (its
 * CURVE public key, else id): registers it (a worker registering again is
 * first lost) with the definitions it announces, and answers WELCOME. */
void xp__sched_worker_hello(xp_scheduler *s, zframe_t *from, const char *id,
                            const char *who, const xp_msg_hello *m);
/* The worker is gone: its tasks are queued again or fail (tasks.c). */
void xp__sched_worker_lost(xp_scheduler *s, xp_sched_worker *w,
                           const char *why);
/* The worker with the most free slots that runs def_key and takes a task
 * of bytes (0: any size), or NULL. */
xp_sched_worker *xp__sched_worker_pick(xp_scheduler *s, const char *def_key,
                                       size_t bytes);
/* The largest task a connected worker running def_key takes, in bytes;
 * 0 when none runs it. */
size_t xp__sched_def_max_message(xp_scheduler *s, const char *def_key);
/* Free slots of every worker. */
int xp__sched_free_slots(xp_scheduler *s);
/* Slots of the connected workers that run def's code. */
int xp__sched_def_slots(xp_scheduler *s, const xp_sched_def *def);
/* HEARTBEAT to every worker; with judge, a worker silent for 3 intervals
 * is lost instead. */
void xp__sched_workers_heartbeat(xp_scheduler *s, int64_t now, bool judge);

#endif /* XP_REMOTE_SCHEDULER_WORKERS_H */
