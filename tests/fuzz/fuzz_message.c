/* fuzz_message.c — libFuzzer target for the wire-message decoder: the
 * input is split into frames (1 byte count, then 2-byte little-endian
 * length + bytes per frame), decoded as a peer's message, and a decoded
 * body is read as a value tree, as the scheduler and worker do. */
#include "remote/message.h"
#include "util/bson_util.h"
#include "value.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t n = data[0] % 8, pos = 1;
    const uint8_t *frames[8];
    size_t lens[8];
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        if (pos + 2 <= size) {
            len = (size_t)data[pos] | (size_t)data[pos + 1] << 8;
            pos += 2;
        }
        if (len > size - pos)
            len = size - pos;
        frames[i] = data + pos;
        lens[i] = len;
        pos += len;
    }
    xp_msg_type type;
    bson_t body;
    if (xp__msg_decode_frames(frames, lens, n, 1u << 20, &type, &body, NULL) ==
        0) {
        /* The envelope's check replaces libbson's validation: it must
         * refuse whatever that would. */
        if (!bson_validate(&body, BSON_VALIDATE_UTF8, NULL))
            abort();
        xp_value *v = xp_value_new();
        xp__value_from_bson(v, &body, NULL);
        char *json = xp_value_to_json(v);
        xp_free(json);
        xp_value_destroy(&v);
        int64_t i64;
        bson_t sub;
        xp__bson_utf8(&body, "experiment");
        xp__bson_int64(&body, "trial", &i64);
        xp__bson_sub(&body, "trials", &sub);
        bson_destroy(&body);
    }
    return 0;
}
