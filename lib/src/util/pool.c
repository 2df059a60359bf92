/* pool.c — a fixed thread pool for the in-process executor. The thread
 * that computes a trial runs steps itself and hands only the extra ready
 * branches to the pool, so a chain of steps never pays a thread hop. */
#include "util/pool.h"

#include "experiment.h"

#include <stdlib.h>

typedef struct s_task {
    struct s_task *next;
    xp_task_fn fn;
    void *arg;
} s_task;

struct xp_pool {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    s_task *head, *tail;
    bool stopping;
    int n_threads;
    pthread_t *threads;
};

static void *s_worker(void *arg)
{
    xp_pool *p = arg;
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
        pthread_mutex_unlock(&p->lock);
        t->fn(t->arg);
        free(t);
        pthread_mutex_lock(&p->lock);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

xp_pool *xp__pool_new(int threads)
{
    if (threads < 1)
        return NULL;
    xp_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    p->threads = calloc((size_t)threads, sizeof *p->threads);
    if (!p->threads) {
        xp__pool_destroy(&p);
        return NULL;
    }
    for (int i = 0; i < threads; i++) {
        if (pthread_create(&p->threads[i], NULL, s_worker, p) != 0)
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
        pthread_join(p->threads[i], NULL);
    free(p->threads);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
    free(p);
    *pp = NULL;
}

int xp__pool_submit(xp_pool *p, xp_task_fn fn, void *arg)
{
    s_task *t = malloc(sizeof *t);
    if (!t)
        return -1;
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
