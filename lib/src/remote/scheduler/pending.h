/* remote/scheduler/pending.h — trials recorded as queued and not taken
 * up yet, in a FIFO per definition: only their records, so that a long
 * queue costs little more than the records themselves. */
#ifndef XP_REMOTE_SCHEDULER_PENDING_H
#define XP_REMOTE_SCHEDULER_PENDING_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct xp_sched_batch xp_sched_batch;
typedef struct xp_sched_pending xp_sched_pending;

struct xp_sched_pending {
    xp_sched_pending *next;
    xp_sched_batch *batch; /* NULL: resumed after a restart */
    uint32_t len;
    uint8_t doc[]; /* BSON of the queued record, with trial_id */
};

typedef struct {
    xp_sched_pending *head, *tail;
    size_t n;
} xp_sched_fifo;

/* Appends a copy of doc (a queued record with its trial_id); out of
 * memory, the trial stays queued in the backend for the next start. */
void xp__sched_fifo_push(xp_sched_fifo *f, xp_sched_batch *batch,
                         const bson_t *doc);
/* The first record, or NULL; caller frees it with free(). */
xp_sched_pending *xp__sched_fifo_pop(xp_sched_fifo *f);
/* Moves every record of from to the end (or the front) of to. */
void xp__sched_fifo_splice(xp_sched_fifo *to, xp_sched_fifo *from, bool front);
void xp__sched_fifo_clear(xp_sched_fifo *f);

#endif /* XP_REMOTE_SCHEDULER_PENDING_H */
