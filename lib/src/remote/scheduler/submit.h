/* remote/scheduler/submit.h — SUBMIT: a client's trials, checked whole
 * against their definition and recorded as queued (one group commit)
 * before the client hears ACCEPTED with their ids. */
#ifndef XP_REMOTE_SCHEDULER_SUBMIT_H
#define XP_REMOTE_SCHEDULER_SUBMIT_H

#include "remote/scheduler/state.h"

/* SUBMIT from the peer of routing frame from, a client known as who (its
 * CURVE public key, else its connection). */
void xp__sched_submit(xp_scheduler *s, zframe_t *from, const char *who,
                      const xp_msg_submit *m);

#endif /* XP_REMOTE_SCHEDULER_SUBMIT_H */
