/* batches.c — the batches clients submitted and the clients themselves:
 * a batch gathers the lines of its finished trials for STATUS/PROGRESS
 * and is dropped once its client has read every result and asked again,
 * or keep_ms after it finished; a client's record (unfinished trials, for
 * its limit) goes with its last batch. Nothing grows over months. */
#include "remote/scheduler/batches.h"

#include "remote/keys.h"
#include "remote/scheduler/workers.h"
#include "util/error.h"
#include "util/rng.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What one client has accepted and not finished. */
struct xp_sched_client {
    char key[64];
    size_t unfinished;
    size_t batches; /* its batches still kept */
};

struct xp_sched_batch {
    int64_t id;
    xp_sched_def *def;
    xp_sched_client *owner;
    int64_t complete_ms; /* when its last trial was recorded; 0 before */
    zframe_t *client;
    size_t total, done, failed;
    size_t running;   /* tasks of the batch on workers */
    bson_t *finished; /* array of lines {trial_id, status, result, ...} */
    uint32_t n_finished;
    /* A STATUS held until a trial finishes past its cursor (long poll):
     * the client's routing frame, its cursor and deadline; its handle in
     * s->waiting. */
    zframe_t *waiter;
    int64_t waiter_cursor, waiter_until;
    int64_t news_ms; /* when a trial first finished past waiter_cursor */
    void *waiting_handle;
};

/* A held STATUS with news is answered once this many trials finished
 * past its cursor, or XP_LINGER_MS after the first did, or when the batch
 * is complete: a sweep's results come back in a few large answers (not
 * one per turn of the loop), a lone trial's at once. */
#define XP_LINGER_LINES 256
#define XP_LINGER_MS 10

static void s_client_free(void **item)
{
    bson_free(*item);
    *item = NULL;
}

static void s_batch_free(xp_sched_batch *b)
{
    zframe_destroy(&b->waiter);
    zframe_destroy(&b->client);
    bson_destroy(b->finished);
    bson_free(b);
}

void xp__sched_batches_init(xp_scheduler *s)
{
    s->clients = zhashx_new();
    zhashx_set_destructor(s->clients, s_client_free);
    s->batches = zhashx_new();
    s->waiting = zlistx_new();
}

void xp__sched_batches_fini(xp_scheduler *s)
{
    if (s->batches)
        for (xp_sched_batch *b = zhashx_first(s->batches); b;
             b = zhashx_next(s->batches))
            s_batch_free(b);
    zhashx_destroy(&s->batches);
    zhashx_destroy(&s->clients);
    zlistx_destroy(&s->waiting);
}

xp_sched_client *xp__sched_client_admit(xp_scheduler *s, const char *who,
                                        size_t n, xp_error_t *err)
{
    xp_sched_client *c = zhashx_lookup(s->clients, who);
    if (!c) {
        c = bson_malloc0(sizeof *c);
        bson_strncpy(c->key, who, sizeof c->key);
        zhashx_insert(s->clients, c->key, c);
    }
    if (c->unfinished + n > s->opts.max_queued_per_client) {
        xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                  "too many trials: this client has %zu accepted and "
                  "unfinished, %zu more would pass its limit of %zu",
                  c->unfinished, n, s->opts.max_queued_per_client);
        return NULL;
    }
    return c;
}

static void s_batch_key(int64_t id, char key[32])
{
    snprintf(key, 32, "%lld", (long long)id);
}

/* A new batch id: random, 63 bits, positive and unused, so that one
 * client cannot name another's batches by counting (they would not
 * answer it anyway: xp__sched_batch_status checks the owner). */
static int64_t s_new_id(xp_scheduler *s)
{
    for (;;) {
        uint64_t r;
        if (xp__random_bytes(&r, sizeof r) != 0)
            r = xp__random_seed(); /* no system randomness: still unique */
        int64_t id = (int64_t)(r >> 1);
        char key[32];
        s_batch_key(id, key);
        if (id > 0 && !zhashx_lookup(s->batches, key))
            return id;
    }
}

xp_sched_batch *xp__sched_batch_new(xp_scheduler *s, xp_sched_def *def,
                                    xp_sched_client *owner, zframe_t *client)
{
    xp_sched_batch *b = bson_malloc0(sizeof *b);
    b->owner = owner;
    owner->batches++;
    def->batches++;
    b->id = s_new_id(s);
    b->def = def;
    b->client = zframe_dup(client);
    b->finished = bson_new();
    char key[32];
    s_batch_key(b->id, key);
    zhashx_insert(s->batches, key, b);
    return b;
}

int64_t xp__sched_batch_id(const xp_sched_batch *b)
{
    return b->id;
}

/* Drops a batch (its results were read, or kept long enough), and its
 * client's record once nothing of it is left. */
static void s_forget(xp_scheduler *s, xp_sched_batch *b)
{
    char key[32];
    s_batch_key(b->id, key);
    xp_sched_client *owner = b->owner;
    if (b->waiting_handle)
        zlistx_delete(s->waiting, b->waiting_handle);
    if (b->def)
        b->def->batches--;
    zhashx_delete(s->batches, key);
    s_batch_free(b);
    if (owner && --owner->batches == 0 && owner->unfinished == 0)
        zhashx_delete(s->clients, owner->key);
}

void xp__sched_batch_accepted(xp_scheduler *s, xp_sched_batch *b, size_t n)
{
    b->total = n;
    b->owner->unfinished += n;
    if (n == 0)
        s_forget(s, b);
}

void xp__sched_batch_running(xp_sched_batch *b, int delta)
{
    if (delta > 0)
        b->running++;
    else if (b->running > 0)
        b->running--;
}

void xp__sched_batch_trial_done(xp_sched_batch *b, const bson_t *line, bool ok)
{
    if (b->done + b->failed + 1 >= b->total)
        b->complete_ms = xp__sched_now();
    char key[16];
    const char *k;
    bson_uint32_to_string(b->n_finished++, &k, key, sizeof key);
    BSON_APPEND_DOCUMENT(b->finished, k, line);
    if (ok)
        b->done++;
    else
        b->failed++;
    if (b->owner && b->owner->unfinished > 0)
        b->owner->unfinished--;
}

/* Appends to list the lines of b from cursor on, at most
 * XP_MSG_PROGRESS_MAX (bounded replies; the client asks again); returns
 * how many. */
static uint32_t s_lines_since(const xp_sched_batch *b, int64_t cursor,
                              bson_t *list)
{
    bson_iter_t it;
    uint32_t k = 0, out = 0;
    if (!bson_iter_init(&it, b->finished))
        return 0;
    while (bson_iter_next(&it)) {
        if (k++ < (uint64_t)cursor)
            continue;
        char key[16];
        const char *kp;
        bson_uint32_to_string(out++, &kp, key, sizeof key);
        bson_append_iter(list, kp, -1, &it);
        if (out >= XP_MSG_PROGRESS_MAX)
            break;
    }
    return out;
}

/* Answers PROGRESS of b from cursor on to the peer of from; drops b when
 * it is finished and every result was read. */
static void s_answer(xp_scheduler *s, xp_sched_batch *b, zframe_t *from,
                     int64_t cursor)
{
    /* running counts tasks; a trial with parallel steps counts once. */
    size_t pending = b->total - b->done - b->failed;
    size_t running = b->running < pending ? b->running : pending;
    xp_msg_progress p = {
        .queued = (int64_t)(pending - running),
        .running = (int64_t)running,
        .done = (int64_t)b->done,
        .failed = (int64_t)b->failed,
        .total = (int64_t)b->total,
    };
    char why[256];
    if (p.queued > 0 && xp__sched_def_slots(s, b->def) == 0) {
        snprintf(why, sizeof why,
                 "no connected worker has code %s of experiment %s",
                 b->def->graph->code_hash, b->def->graph->id);
        p.waiting = why;
    }
    bson_t lines = BSON_INITIALIZER;
    uint32_t out = s_lines_since(b, cursor, &lines);
    p.finished = xp__msg_doc_of(&lines);
    p.cursor = cursor + out;
    xp__sched_send(s, from, xp__msg_progress_encode(&p));
    bson_destroy(&lines);
    /* Asked again with every result read: the client is done with it. */
    if (b->complete_ms && out == 0 && (uint64_t)cursor >= b->n_finished)
        s_forget(s, b);
}

/* Whether a STATUS of b at cursor has something to tell now. */
static bool s_news(const xp_sched_batch *b, int64_t cursor)
{
    return b->complete_ms || (uint64_t)cursor < b->n_finished;
}

/* Whether the held STATUS of b is to be answered at now; *next gets the
 * earliest time it would be otherwise. */
static bool s_due(xp_sched_batch *b, int64_t now, int64_t *next)
{
    if (!b->waiter || b->complete_ms || now >= b->waiter_until)
        return true;
    if ((uint64_t)b->waiter_cursor < b->n_finished) {
        if (!b->news_ms)
            b->news_ms = now;
        if (b->n_finished - (uint64_t)b->waiter_cursor >= XP_LINGER_LINES ||
            now - b->news_ms >= XP_LINGER_MS)
            return true;
        *next = b->news_ms + XP_LINGER_MS;
    } else {
        *next = b->waiter_until;
    }
    return false;
}

void xp__sched_batch_status(xp_scheduler *s, zframe_t *from, const char *who,
                            const xp_msg_status *m)
{
    char key[32];
    s_batch_key(m->batch, key);
    xp_sched_batch *b = zhashx_lookup(s->batches, key);
    /* Another client's batch is answered as one that does not exist: it
     * neither reads its results nor, by reading past them, drops it. */
    if (!b || strcmp(b->owner->key, who) != 0) {
        xp__sched_send_error(s, from, "unknown batch");
        return;
    }
    /* A STATUS held before is one its client gave up on (a client asks
     * one thing at a time): it is dropped unanswered. */
    zframe_destroy(&b->waiter);
    if (m->wait_ms > 0 && !s_news(b, m->cursor)) {
        b->waiter = zframe_dup(from);
        b->waiter_cursor = m->cursor;
        b->waiter_until = xp__sched_now() + m->wait_ms;
        b->news_ms = 0;
        if (!b->waiting_handle)
            b->waiting_handle = zlistx_add_end(s->waiting, b);
        return;
    }
    s_answer(s, b, from, m->cursor);
}

int64_t xp__sched_batches_wake(xp_scheduler *s)
{
    int64_t soonest = -1;
    if (zlistx_size(s->waiting) == 0)
        return soonest;
    int64_t now = xp__sched_now();
    xp_sched_batch *b = zlistx_first(s->waiting);
    while (b) {
        xp_sched_batch *next = zlistx_next(s->waiting);
        int64_t at = 0;
        if (!s_due(b, now, &at)) {
            if (soonest < 0 || at - now < soonest)
                soonest = at > now ? at - now : 0;
        } else {
            zlistx_delete(s->waiting, b->waiting_handle);
            b->waiting_handle = NULL;
            zframe_t *to = b->waiter;
            b->waiter = NULL;
            if (to)
                s_answer(s, b, to, b->waiter_cursor);
            zframe_destroy(&to);
        }
        b = next;
    }
    return soonest;
}

void xp__sched_batches_expire(xp_scheduler *s)
{
    int64_t now = xp__sched_now();
    zlistx_t *old = zlistx_new();
    for (xp_sched_batch *b = zhashx_first(s->batches); b;
         b = zhashx_next(s->batches))
        if (b->complete_ms && now - b->complete_ms > s->opts.keep_ms)
            zlistx_add_end(old, b);
    for (xp_sched_batch *b = zlistx_first(old); b; b = zlistx_next(old))
        s_forget(s, b);
    zlistx_destroy(&old);
}
