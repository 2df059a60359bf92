/* handles.c — the open-experiment table. xp_experiment's read functions
 * are safe from several threads at once on one read-only handle (each
 * backend serializes its own connection: the local store's SQLite
 * connection and the Redis connection behind a mutex, MongoDB through a
 * client pool), so a handle is shared, not locked per request. Opening
 * happens outside the table's lock; a handle evicted while idle is
 * closed outside it too. */
#include "handles.h"

#include "util/error.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char id[72];
    xp_experiment *ex; /* NULL: free slot */
    unsigned refs;
    uint64_t used; /* tick of the last acquire */
} s_entry;

struct xpd_handles {
    char *backend;
    pthread_mutex_t lock;
    size_t n;
    uint64_t tick;
    s_entry entries[];
};

int xpd_handles_new(xpd_handles **out, const char *backend, size_t max_open,
                    xp_error_t *err)
{
    *out = NULL;
    xpd_handles *h = calloc(1, sizeof *h + max_open * sizeof(s_entry));
    char *copy = backend ? strdup(backend) : NULL;
    if (!h || (backend && !copy)) {
        free(h);
        free(copy);
        return xp__enomem(err);
    }
    h->backend = copy;
    h->n = max_open;
    pthread_mutex_init(&h->lock, NULL);
    *out = h;
    return 0;
}

void xpd_handles_destroy(xpd_handles **ph)
{
    if (!ph || !*ph)
        return;
    xpd_handles *h = *ph;
    for (size_t i = 0; i < h->n; i++)
        xp_experiment_destroy(&h->entries[i].ex);
    pthread_mutex_destroy(&h->lock);
    free(h->backend);
    free(h);
    *ph = NULL;
}

/* The entry holding id, or NULL; under the lock. */
static s_entry *s_find(xpd_handles *h, const char *id)
{
    for (size_t i = 0; i < h->n; i++)
        if (h->entries[i].ex && strcmp(h->entries[i].id, id) == 0)
            return &h->entries[i];
    return NULL;
}

/* A free entry, else the least recently used idle one (its handle moved
 * to *evicted for closing), else NULL; under the lock. */
static s_entry *s_room(xpd_handles *h, xp_experiment **evicted)
{
    s_entry *best = NULL;
    for (size_t i = 0; i < h->n; i++) {
        s_entry *e = &h->entries[i];
        if (!e->ex)
            return e;
        if (e->refs == 0 && (!best || e->used < best->used))
            best = e;
    }
    if (best) {
        *evicted = best->ex;
        best->ex = NULL;
    }
    return best;
}

static s_entry *s_hold(xpd_handles *h, s_entry *e)
{
    e->refs++;
    e->used = ++h->tick;
    return e;
}

static xp_experiment *s_open(xpd_handles *h, const char *id, xp_error_t *err)
{
    xp_open_options o = XP_OPEN_OPTIONS_INIT;
    o.backend = h->backend;
    o.read_only = true;
    o.threads = 1;
    xp_experiment *ex = NULL;
    if (xp_check_id(id, NULL) != 0) {
        xp__error(err, XP_DOMAIN_ARGUMENT, XP_ENOTFOUND,
                  "no experiment '%.100s'", id);
        return NULL;
    }
    if (xp_experiment_open(&ex, id, &o, err) != 0)
        return NULL;
    return ex;
}

xp_experiment *xpd_handles_acquire(xpd_handles *h, const char *id,
                                   xp_error_t *err)
{
    pthread_mutex_lock(&h->lock);
    s_entry *e = s_find(h, id);
    xp_experiment *ex = e ? s_hold(h, e)->ex : NULL;
    pthread_mutex_unlock(&h->lock);
    if (ex)
        return ex;
    xp_experiment *opened = s_open(h, id, err), *evicted = NULL;
    if (!opened)
        return NULL;
    pthread_mutex_lock(&h->lock);
    e = s_find(h, id); /* another request may have opened it meanwhile */
    if (e) {
        evicted = opened;
    } else if ((e = s_room(h, &evicted)) != NULL) {
        snprintf(e->id, sizeof e->id, "%s", id);
        e->ex = opened;
        e->refs = 0;
    }
    ex = e ? s_hold(h, e)->ex : NULL;
    pthread_mutex_unlock(&h->lock);
    xp_experiment_destroy(&evicted);
    if (!ex) {
        xp_experiment_destroy(&opened);
        xp__error(err, XP_DOMAIN_ARGUMENT, XP_ESTATE,
                  "all %zu open experiments are in use; try again (or raise "
                  "--max-open)",
                  h->n);
    }
    return ex;
}

void xpd_handles_release(xpd_handles *h, xp_experiment *ex)
{
    if (!ex)
        return;
    pthread_mutex_lock(&h->lock);
    for (size_t i = 0; i < h->n; i++)
        if (h->entries[i].ex == ex && h->entries[i].refs > 0)
            h->entries[i].refs--;
    pthread_mutex_unlock(&h->lock);
}
