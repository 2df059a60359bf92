/* util/pool.h — a fixed thread pool running queued tasks. */
#ifndef XP_UTIL_POOL_H
#define XP_UTIL_POOL_H



typedef struct xp_pool xp_pool;
typedef void (*xp_task_fn)(void *arg);

xp_pool *xp__pool_new(int threads);
void xp__pool_destroy(xp_pool **p);
/* Queues fn(arg); 0 or -1 when out of memory. */
int xp__pool_submit(xp_pool *p, xp_task_fn fn, void *arg);

#endif /* XP_UTIL_POOL_H */
