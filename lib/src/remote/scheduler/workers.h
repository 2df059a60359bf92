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
    int slots, busy;    /* busy: tasks out on it (running or waiting) */
    size_t max_message; /* the largest TASK body it takes */
    /* It takes TASKS and holds up to prefetch tasks waiting beyond its
     * slots (HELLO); the TASKS being filled for it this turn. */
    bool bundles;
    int prefetch;
    bool out_open;
    xp_msg_bundle out;
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
/* The largest TASK body a worker holds waiting beyond its slots: larger
 * tasks go only to a free slot, so that what waits on a worker stays
 * small. */
#define XP_SCHED_PREFETCH_TASK_MAX (64u << 10)
/* How much work (s) a worker may hold waiting beyond its slots, per slot:
 * short steps are prefetched, long ones are not. */
#define XP_SCHED_PREFETCH_WINDOW_S 0.005
/* The tasks w may hold beyond its slots for def now. */
int xp__sched_worker_prefetch(const xp_sched_worker *w,
                              const xp_sched_def *def);
/* The worker that runs def and takes a task of bytes (0: not known yet)
 * now, or NULL: one with a free slot first (the most free), else the one
 * with the most room beyond its slots for a small task. */
xp_sched_worker *xp__sched_worker_pick(xp_scheduler *s, const xp_sched_def *def,
                                       size_t bytes);
/* Sends what w's TASKS holds. */
void xp__sched_worker_flush(xp_scheduler *s, xp_sched_worker *w);
/* The largest task a connected worker running def_key takes, in bytes;
 * 0 when none runs it. */
size_t xp__sched_def_max_message(xp_scheduler *s, const char *def_key);
/* Tasks every worker may still take, at most (free slots and room
 * beyond them). */
int xp__sched_free_slots(xp_scheduler *s);
/* Slots of the connected workers that run def's code. */
int xp__sched_def_slots(xp_scheduler *s, const xp_sched_def *def);
/* The same with the tasks they may hold beyond their slots for def. */
int xp__sched_def_capacity(xp_scheduler *s, const xp_sched_def *def);
/* A step of def ran for elapsed seconds on a worker. */
void xp__sched_def_timed(xp_sched_def *def, double elapsed);
/* HEARTBEAT to every worker; with judge, a worker silent for 3 intervals
 * is lost instead. */
void xp__sched_workers_heartbeat(xp_scheduler *s, int64_t now, bool judge);

#endif /* XP_REMOTE_SCHEDULER_WORKERS_H */
