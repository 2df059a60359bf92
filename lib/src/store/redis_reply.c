/* store/redis_reply.c — a history read's replies decoded as hiredis
 * parses them (redis_reply.h). */
#include "store/redis_reply.h"

#include <stdio.h>

bool xp__redis_parse_i64(const char *s, size_t n, int64_t *out)
{
    if (n == 0 || n > 19)
        return false;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* 0 for the reply itself, 1 for its elements, 2 for theirs. */
static int s_depth(const redisReadTask *t)
{
    return !t->parent ? 0 : !t->parent->parent ? 1 : 2;
}

/* A reply the read did not ask for: stops the reader (NULL), whose
 * connection is then dropped. */
static void *s_parse_bad(xp_redis_parse *p)
{
    p->status = XP_REDIS_PARSE_BAD;
    return NULL;
}

/* The first error reply's text, on one line, never empty. */
static void s_error_text(xp_redis_parse *p, const char *str, size_t len)
{
    size_t n = len < sizeof p->error - 1 ? len : sizeof p->error - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)str[i];
        p->error[i] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
    }
    p->error[n] = '\0';
    if (n == 0)
        snprintf(p->error, sizeof p->error, "an error without a message");
}

static void *s_parse_string(const redisReadTask *t, char *str, size_t len)
{
    xp_redis_parse *p = t->privdata;
    if (t->type == REDIS_REPLY_ERROR) {
        if (!p->error[0])
            s_error_text(p, str, len);
        return p;
    }
    if (s_depth(t) != 1 || t->type != REDIS_REPLY_STRING ||
        (size_t)t->idx >= p->count)
        return s_parse_bad(p);
    if (p->fn(len ? (const uint8_t *)str : NULL, len, p->ids[t->idx],
              p->user) != 0) {
        p->status = XP_REDIS_PARSE_STOPPED;
        return NULL;
    }
    p->at = (size_t)t->idx + 1;
    return p;
}

static void *s_parse_array(const redisReadTask *t, int n)
{
    xp_redis_parse *p = t->privdata;
    return s_depth(t) == 0 && (size_t)n == p->count ? p : s_parse_bad(p);
}

static void *s_parse_integer(const redisReadTask *t, long long v)
{
    (void)v;
    return s_parse_bad(t->privdata);
}

static void *s_parse_nil(const redisReadTask *t)
{
    xp_redis_parse *p = t->privdata;
    if (s_depth(t) != 1 || (size_t)t->idx >= p->count)
        return s_parse_bad(p);  /* a nil reply, not an element */
    p->at = (size_t)t->idx + 1; /* deleted behind our back */
    return p;
}

static void s_parse_free(void *obj)
{
    (void)obj; /* nothing was made */
}

redisReplyObjectFunctions xp__redis_parse_fns = {
    .createString = s_parse_string,
    .createArray = s_parse_array,
    .createInteger = s_parse_integer,
    .createNil = s_parse_nil,
    .freeObject = s_parse_free,
};
