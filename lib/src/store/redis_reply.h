/* store/redis_reply.h — the MGET replies of a Redis history read,
 * decoded as hiredis's reader parses them: its object callbacks build
 * nothing and hand each record (a bulk string still in the reader's
 * buffer) to the reader's function. The replies come from the server, so
 * everything here is checked: a reply of another shape stops the
 * reader. */
#ifndef XP_STORE_REDIS_REPLY_H
#define XP_STORE_REDIS_REPLY_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What a reader does with each record: the stored bytes of trial id
 * (data NULL when empty). Non-zero stops the reading. */
typedef int (*xp_redis_record_fn)(const uint8_t *data, size_t len, int64_t id,
                                  void *user);

enum {
    XP_REDIS_PARSE_OK,
    XP_REDIS_PARSE_STOPPED, /* fn returned non-zero */
    XP_REDIS_PARSE_BAD,     /* a reply the read did not ask for */
};

/* One reply read through the callbacks (the reader's privdata): an
 * MGET's, whose elements are the records of ids[0..count). */
typedef struct {
    const int64_t *ids;
    size_t count;
    size_t at; /* elements handed over (or skipped: nil) */
    xp_redis_record_fn fn;
    void *user;
    int status;      /* XP_REDIS_PARSE_* */
    char error[160]; /* the first error reply's text ("" when none) */
} xp_redis_parse;

/* The callbacks. A call that stops the reader returns NULL, which hiredis
 * takes for a failed allocation: the reader is then in error, and its
 * connection must be dropped; its `reply` must be set to NULL before the
 * reader is freed with other callbacks (the objects are not replies). */
extern redisReplyObjectFunctions xp__redis_parse_fns;

/* Decimal digits s[0..n) (at most 19, no sign) into *out. */
bool xp__redis_parse_i64(const char *s, size_t n, int64_t *out);

#endif /* XP_STORE_REDIS_REPLY_H */
