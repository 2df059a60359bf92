/* backend_fixture.h — what the tests that run each case on the local
 * store, Redis (XP_TEST_REDIS_URI) and MongoDB (XP_TEST_MONGODB_URI)
 * share: the backend a case uses, a skip that says why, and the removal
 * of a case's keys from the shared Redis database. Needs hiredis. */
#ifndef XP_TESTS_BACKEND_FIXTURE_H
#define XP_TESTS_BACKEND_FIXTURE_H

#include "common.h"

#include <hiredis/hiredis.h>

enum { XPT_LOCAL, XPT_REDIS, XPT_MONGODB };
static const char *const xpt_kind_name[] = {"local", "redis", "mongodb"};

/* Skips, printing why (not xpt_skip: criterion counts its warning as a
 * failure); .fini does not run for a skipped test. */
#define XPT_SKIP(...)                                                          \
    do {                                                                       \
        char why_[512];                                                        \
        snprintf(why_, sizeof why_, __VA_ARGS__);                              \
        fprintf(stderr, "skipping: %s\n", why_);                               \
        xpt_teardown();                                                        \
        cr_skip_test("%s", why_);                                              \
    } while (0)

/* The backend of kind into out (size bytes): the test's directory, or
 * the server tests/run.sh started; skips when it is not set. */
static inline void xpt_backend_pick(int kind, char *out, size_t size)
{
    if (kind == XPT_LOCAL) {
        snprintf(out, size, "%s", xpt_dir);
        return;
    }
    const char *var =
        kind == XPT_REDIS ? "XP_TEST_REDIS_URI" : "XP_TEST_MONGODB_URI";
    const char *uri = getenv(var);
    if (!uri || !*uri)
        XPT_SKIP("%s is not set (tests/run.sh starts the %s test server)", var,
                 xpt_kind_name[kind]);
    snprintf(out, size, "%s", uri);
}

/* Host, port and database of a plain redis://host:port/db uri (no
 * credentials, no IPv6 literal); false for any other. */
static inline bool xpt_redis_addr(const char *uri, char host[256], int *port,
                                  int *db)
{
    *port = 6379;
    *db = 0;
    if (!uri || strncmp(uri, "redis://", 8) != 0 || strchr(uri, '@') ||
        strchr(uri, '['))
        return false;
    const char *p = uri + 8;
    size_t n = strcspn(p, ":/?");
    if (n == 0 || n >= 256)
        return false;
    memcpy(host, p, n);
    host[n] = '\0';
    p += n;
    if (*p == ':')
        *port = (int)strtol(p + 1, (char **)&p, 10);
    if (*p == '/')
        *db = (int)strtol(p + 1, NULL, 10);
    return true;
}

/* Deletes experiment id's keys (id:*) and its name in xp:experiments
 * from the Redis database of uri, so that the shared server does not
 * grow with every run; nothing for another uri. */
static inline void xpt_redis_forget(const char *uri, const char *id)
{
    char host[256];
    int port, db;
    if (!id[0] || !xpt_redis_addr(uri, host, &port, &db))
        return;
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout(host, port, tv);
    if (!c || c->err) {
        if (c)
            redisFree(c);
        return;
    }
    freeReplyObject(redisCommand(c, "SELECT %d", db));
    char cursor[32] = "0";
    do {
        redisReply *r =
            redisCommand(c, "SCAN %s MATCH %s:* COUNT 1000", cursor, id);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            if (r)
                freeReplyObject(r);
            break;
        }
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        for (size_t k = 0; k < r->element[1]->elements; k++)
            freeReplyObject(redisCommand(c, "DEL %b",
                                         r->element[1]->element[k]->str,
                                         r->element[1]->element[k]->len));
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    freeReplyObject(redisCommand(c, "SREM xp:experiments %s", id));
    redisFree(c);
}

/* Three criterion tests of one body, one per backend: suites local,
 * redis and mongodb, each calling use_fn(kind) first; fini_fn cleans
 * up. */
#define XPT_ON_EVERY_BACKEND(body, name, seconds, use_fn, fini_fn)             \
    static void body##_##name(void);                                           \
    Test(local, name, .init = xpt_setup, .fini = fini_fn, .timeout = seconds)  \
    {                                                                          \
        use_fn(XPT_LOCAL);                                                     \
        body##_##name();                                                       \
    }                                                                          \
    Test(redis, name, .init = xpt_setup, .fini = fini_fn, .timeout = seconds)  \
    {                                                                          \
        use_fn(XPT_REDIS);                                                     \
        body##_##name();                                                       \
    }                                                                          \
    Test(mongodb, name, .init = xpt_setup, .fini = fini_fn,                    \
         .timeout = seconds)                                                   \
    {                                                                          \
        use_fn(XPT_MONGODB);                                                   \
        body##_##name();                                                       \
    }                                                                          \
    static void body##_##name(void)

#endif /* XP_TESTS_BACKEND_FIXTURE_H */
