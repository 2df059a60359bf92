/* pending.c — the FIFO of queued trial records that a definition keeps
 * until a worker can run them soon (then they become full trial state,
 * trials.c). */
#include "remote/scheduler/pending.h"

#include <stdlib.h>
#include <string.h>

void xp__sched_fifo_push(xp_sched_fifo *f, xp_sched_batch *batch,
                         const bson_t *doc)
{
    xp_sched_pending *p = bson_malloc(sizeof *p + doc->len);
    p->next = NULL;
    p->batch = batch;
    p->len = doc->len;
    memcpy(p->doc, bson_get_data(doc), doc->len);
    if (f->tail)
        f->tail->next = p;
    else
        f->head = p;
    f->tail = p;
    f->n++;
}

xp_sched_pending *xp__sched_fifo_pop(xp_sched_fifo *f)
{
    xp_sched_pending *p = f->head;
    if (p) {
        f->head = p->next;
        if (!f->head)
            f->tail = NULL;
        f->n--;
    }
    return p;
}

void xp__sched_fifo_splice(xp_sched_fifo *to, xp_sched_fifo *from, bool front)
{
    if (!from->head)
        return;
    if (!to->head) {
        *to = *from;
    } else if (front) {
        from->tail->next = to->head;
        to->head = from->head;
        to->n += from->n;
    } else {
        to->tail->next = from->head;
        to->tail = from->tail;
        to->n += from->n;
    }
    memset(from, 0, sizeof *from);
}

void xp__sched_fifo_clear(xp_sched_fifo *f)
{
    xp_sched_pending *p;
    while ((p = xp__sched_fifo_pop(f)) != NULL)
        bson_free(p);
}
