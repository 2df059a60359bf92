/* pool.c — a fixed thread pool for the in-process executor. The thread
 * that computes a trial runs steps itself and hands the extra ready
 * branches to pool threads, so a chain of steps never pays a thread hop.
 * Tasks are cancellable by their argument, so a trial can end before
 * the tasks it queued have started. */
#include "util/pool.h"

#include <bson/bson.h>
#include <pthread.h>
#include <stdbool.h>

typedef struct s_task {
    struct s_task *next;
    xp_task_fn fn;
    void *arg;
} s_task;

typedef struct {
    struct xp_pool *pool;
    pthread_t id;
    const void *running; /* arg of the task it runs, or NULL */
} s_thread;

struct xp_pool {
    pthread_mutex_t lock;
    pthread_cond_t cond;     /* a task was queued, or stopping */
    pthread_cond_t finished; /* a task returned */
    s_task *head, *tail;
    bool stopping;
    int n_threads;
    s_thread *threads;
};

static void *s_worker(void *arg)
{
    s_thread *self = arg;
    xp_pool *p = self->pool;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->head && !p->stopping)
            pthread_cond_wait(&p->cond, &p->lock);
        if (!p->head)
            break; /* stopping and drained */
        s_task *t = p->head;
        p->head = t->next;
        if (!p->head)
            p->tail = NULL;
        self->running = t->arg;
        pthread_mutex_unlock(&p->lock);
        t->fn(t->arg);
        bson_free(t);
        pthread_mutex_lock(&p->lock);
        self->running = NULL;
        pthread_cond_broadcast(&p->finished);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

xp_pool *xp__pool_new(int threads)
{
    if (threads < 1)
        return NULL;
    xp_pool *p = bson_malloc0(sizeof *p);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    pthread_cond_init(&p->finished, NULL);
    p->threads = bson_malloc0((size_t)threads * sizeof *p->threads);
    for (int i = 0; i < threads; i++) {
        s_thread *th = &p->threads[p->n_threads];
        th->pool = p;
        if (pthread_create(&th->id, NULL, s_worker, th) != 0)
            break;
        p->n_threads++;
    }
    if (p->n_threads == 0)
        xp__pool_destroy(&p);
    return p;
}

void xp__pool_destroy(xp_pool **pp)
{
    if (!pp || !*pp)
        return;
    xp_pool *p = *pp;
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->n_threads; i++)
        pthread_join(p->threads[i].id, NULL);
    bson_free(p->threads);
    pthread_cond_destroy(&p->finished);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
    bson_free(p);
    *pp = NULL;
}

int xp__pool_threads(const xp_pool *p)
{
    return p ? p->n_threads : 0;
}

int xp__pool_submit(xp_pool *p, xp_task_fn fn, void *arg)
{
    if (!p)
        return -1;
    s_task *t = bson_malloc(sizeof *t);
    t->next = NULL;
    t->fn = fn;
    t->arg = arg;
    pthread_mutex_lock(&p->lock);
    if (p->tail)
        p->tail->next = t;
    else
        p->head = t;
    p->tail = t;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
    return 0;
}

static bool s_running_locked(const xp_pool *p, const void *arg)
{
    for (int i = 0; i < p->n_threads; i++)
        if (p->threads[i].running == arg)
            return true;
    return false;
}

size_t xp__pool_cancel(xp_pool *p, const void *arg)
{
    size_t removed = 0;
    pthread_mutex_lock(&p->lock);
    s_task **link = &p->head;
    p->tail = NULL;
    while (*link) {
        s_task *t = *link;
        if (t->arg == arg) {
            *link = t->next;
            bson_free(t);
            removed++;
        } else {
            p->tail = t;
            link = &t->next;
        }
    }
    while (s_running_locked(p, arg))
        pthread_cond_wait(&p->finished, &p->lock);
    pthread_mutex_unlock(&p->lock);
    return removed;
}
