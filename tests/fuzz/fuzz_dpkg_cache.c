/* fuzz_dpkg_cache.c — libFuzzer target for the dpkg-list cache decoder
 * (capture/env.c): a file of the user's cache directory, read by every
 * process that captures its environment. What it accepts is an array of
 * printable strings under the key asked for. */
#include "capture/env.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bson_t packages;
    if (xp__environment_dpkg_cache_decode(data, size, "k", &packages) != 0)
        return 0;
    bson_iter_t it;
    if (!bson_iter_init(&it, &packages))
        abort();
    while (bson_iter_next(&it)) {
        uint32_t len;
        const char *v = bson_iter_utf8(&it, &len);
        if (!BSON_ITER_HOLDS_UTF8(&it) || strlen(v) != len)
            abort();
    }
    bson_destroy(&packages);
    return 0;
}
