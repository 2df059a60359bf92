/* fuzz_redis_reply.c — libFuzzer target for the MGET replies of a Redis
 * history read (store/redis_reply.c): the input's first byte / 2 is the
 * number of records asked for, the second the record at which the
 * reader stops, the rest what the server sent, fed to hiredis's reader
 * in pieces the third byte sizes. Every record handed over must lie
 * within what was fed and belong to one of the ids asked for, in order;
 * a whole reply without an error hands over all of them. */
#include "store/redis_reply.h"

#include <hiredis/read.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    size_t calls, stop_at;
    int64_t last;
    size_t fed;
} s_check;

static int s_record(const uint8_t *d, size_t len, int64_t id, void *user)
{
    s_check *c = user;
    if (len > c->fed || (len && !d) || id <= c->last)
        abort();
    volatile uint8_t sum = 0;
    for (size_t i = 0; i < len; i++)
        sum ^= d[i]; /* every byte is readable */
    (void)sum;
    c->last = id;
    return ++c->calls == c->stop_at ? -1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    size_t count = data[0] / 2, piece = 1 + data[2] % 64;
    int64_t ids[128];
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        ids[i] = 10 + 3 * (int64_t)i; /* ascending: order is checked */
    s_check c = {.stop_at = data[1], .last = 0};
    xp_redis_parse p = {.ids = ids, .count = count, .fn = s_record, .user = &c};
    redisReader *rd = redisReaderCreateWithFunctions(&xp__redis_parse_fns);
    rd->privdata = &p;
    const char *in = (const char *)data + 3;
    size_t n = size - 3;
    for (size_t at = 0; at < n;) {
        size_t k = n - at < piece ? n - at : piece;
        if (redisReaderFeed(rd, in + at, k) != REDIS_OK)
            break;
        at += k;
        c.fed += k;
        void *reply = NULL;
        int rc;
        while ((rc = redisReaderGetReply(rd, &reply)) == REDIS_OK && reply) {
            if (reply != &p || (!p.error[0] && p.at != p.count))
                abort(); /* a whole reply hands over all */
            p.at = 0;
            c.last = 0; /* the next reply is the same ids again */
            reply = NULL;
        }
        if (rc != REDIS_OK)
            break; /* stopped: a bad reply, fn, or hiredis's own error */
    }
    size_t elen = strnlen(p.error, sizeof p.error);
    if (elen == sizeof p.error)
        abort(); /* not terminated */
    for (size_t i = 0; i < elen; i++)
        if ((unsigned char)p.error[i] < 0x20)
            abort();  /* a message is one line */
    rd->reply = NULL; /* ours, not a reply object */
    redisReaderFree(rd);
    return 0;
}
