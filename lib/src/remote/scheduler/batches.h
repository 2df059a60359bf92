/* remote/scheduler/batches.h — what clients submitted: one batch per
 * accepted SUBMIT with its progress and finished trials (STATUS,
 * PROGRESS) for its owner only, under a random id, kept until read or
 * keep_ms after it finished; and per
 * client (its CURVE key, else its connection) the trials accepted and
 * not finished, for the per-client limit. */
#ifndef XP_REMOTE_SCHEDULER_BATCHES_H
#define XP_REMOTE_SCHEDULER_BATCHES_H

#include "remote/scheduler/defs.h"
#include "remote/scheduler/state.h"

typedef struct xp_sched_client xp_sched_client;

void xp__sched_batches_init(xp_scheduler *s);
void xp__sched_batches_fini(xp_scheduler *s);
/* The record of client who, if n more unfinished trials keep it within
 * opts.max_queued_per_client; else NULL with a one-line err. */
xp_sched_client *xp__sched_client_admit(xp_scheduler *s, const char *who,
                                        size_t n, xp_error_t *err);
/* A new batch of def for owner, answered to the peer of routing frame
 * client; counts until xp__sched_batch_accepted. */
xp_sched_batch *xp__sched_batch_new(xp_scheduler *s, xp_sched_def *def,
                                    xp_sched_client *owner, zframe_t *client);
int64_t xp__sched_batch_id(const xp_sched_batch *b);
/* n of its trials were recorded as queued (0: it is dropped). */
void xp__sched_batch_accepted(xp_scheduler *s, xp_sched_batch *b, size_t n);
/* Tasks of the batch on workers, up or down by one. */
void xp__sched_batch_running(xp_sched_batch *b, int delta);
/* A trial of b was recorded (line: its xp__msg_finished_line). */
void xp__sched_batch_trial_done(xp_sched_batch *b, const bson_t *line, bool ok);
/* STATUS from the peer of routing frame from, a client known as who:
 * answers PROGRESS for a batch of its own (else ERROR "unknown batch"),
 * and drops a finished batch whose results were all read. With
 * m->wait_ms and nothing new past the cursor, the answer is held until a
 * trial of the batch finishes or wait_ms passes (xp__sched_batches_wake). */
void xp__sched_batch_status(xp_scheduler *s, zframe_t *from, const char *who,
                            const xp_msg_status *m);
/* Answers the held STATUS requests that are due (once per turn of the
 * loop, after the turn's records): those whose wait is over, and those
 * with news once enough of it gathered (a batch's last trial at once).
 * Returns in how many ms the next one is due, or -1 for none. */
int64_t xp__sched_batches_wake(xp_scheduler *s);
/* Drops the batches finished more than opts.keep_ms ago. */
void xp__sched_batches_expire(xp_scheduler *s);

#endif /* XP_REMOTE_SCHEDULER_BATCHES_H */
