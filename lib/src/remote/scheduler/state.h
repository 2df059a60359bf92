/* remote/scheduler/state.h — the state of one xp-scheduler: one struct
 * owned by its event loop (scheduler.c) and shared by the modules of this
 * folder, each of which owns the fields marked with its name; plus the
 * loop's replies and clock. */
#ifndef XP_REMOTE_SCHEDULER_STATE_H
#define XP_REMOTE_SCHEDULER_STATE_H

#include "remote/keys.h"
#include "remote/message.h"
#include "remote/scheduler.h"

typedef struct xp_sched_trial xp_sched_trial;

struct xp_scheduler {
    xp_scheduler_options opts;
    char *backend;
    char *name; /* owner of the trials it accepts */
    char endpoint[256];
    /* scheduler.c: the socket, its authenticator and their counters */
    zsock_t *router;
    xp_authorizer *auth; /* CURVE: the authorized keys; NULL when plain */
    zsock_t *monitor;    /* with auth: handshake failures of the router */
    uint64_t refused;    /* connections refused (handshakes, keys) */
    uint64_t malformed;
    zhashx_t *logged; /* "kind peer" refusals already logged */
    int64_t last_heartbeat_ms;
    volatile int stop;
    /* workers.c */
    zhashx_t *workers; /* id -> xp_sched_worker */
    /* defs.c */
    zhashx_t *defs;   /* key -> xp_sched_def */
    zhashx_t *latest; /* experiment id -> key of the latest def */
    /* tasks.c */
    zhashx_t *tasks; /* key -> xp_sched_task (queued or running) */
    zlistx_t *queue; /* xp_sched_task waiting for a worker (FIFO) */
    /* xp_sched_task of a pure step whose memo key another trial runs
     * now: no worker gets it until that step is done. */
    zlistx_t *parked;
    /* trials.c: trials whose last step is back, recorded together (group
     * commit) once per turn of the loop; trials whose first step went
     * out, for their running records */
    xp_sched_trial *done_head, **done_tail;
    xp_sched_trial *mark_head, **mark_tail; /* oldest first */
    /* batches.c */
    zhashx_t *batches; /* "%lld" -> xp_sched_batch */
    zhashx_t *clients; /* client key -> xp_sched_client */
    zlistx_t *waiting; /* xp_sched_batch with a held STATUS */
};

static inline int64_t xp__sched_now(void)
{
    return zclock_mono();
}

/* Sends msg (an encoded message, which it takes) to the peer of routing
 * frame to. */
void xp__sched_send(xp_scheduler *s, zframe_t *to, zmsg_t *msg);
void xp__sched_send_error(xp_scheduler *s, zframe_t *to, const char *message);
/* True the first time a refusal of kind is seen from peer who, so that a
 * peer that insists is logged once (the memory of it is bounded). */
bool xp__sched_first_time(xp_scheduler *s, const char *kind, const char *who);
/* Heartbeats to the workers during a long piece of work (a large
 * submission), so that they do not take the scheduler for gone; losses
 * are judged only once the inbox has been read. */
void xp__sched_keepalive(xp_scheduler *s);

#endif /* XP_REMOTE_SCHEDULER_STATE_H */
