/* util/pool.h — a fixed thread pool running queued tasks. */
#ifndef XP_UTIL_POOL_H
#define XP_UTIL_POOL_H

#include <stddef.h>

typedef struct xp_pool xp_pool;
typedef void (*xp_task_fn)(void *arg);

/* NULL when no thread could start. Destroy with xp__pool_destroy, which
 * runs the queued tasks first. */
xp_pool *xp__pool_new(int threads);
void xp__pool_destroy(xp_pool **p);
/* Threads of p (0 for NULL). */
int xp__pool_threads(const xp_pool *p);
/* Queues fn(arg); 0 (-1 only when p is NULL). */
int xp__pool_submit(xp_pool *p, xp_task_fn fn, void *arg);
/* Drops the queued tasks whose argument is arg and waits until none
 * running has it, so arg may be freed; returns how many were dropped. Not
 * from a task of p with that argument. */
size_t xp__pool_cancel(xp_pool *p, const void *arg);

#endif /* XP_UTIL_POOL_H */
