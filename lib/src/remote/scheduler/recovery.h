/* remote/scheduler/recovery.h — the start of a scheduler after a
 * restart: every trial it had accepted (recorded as queued with its name)
 * is queued again. */
#ifndef XP_REMOTE_SCHEDULER_RECOVERY_H
#define XP_REMOTE_SCHEDULER_RECOVERY_H

#include "remote/scheduler/state.h"

/* Queues again the queued trials of every experiment of the backend that
 * carry this scheduler's name. A backend that cannot be listed is an
 * error: running without those trials would lose them quietly. */
int xp__sched_recover(xp_scheduler *s, xp_error_t *err);

#endif /* XP_REMOTE_SCHEDULER_RECOVERY_H */
