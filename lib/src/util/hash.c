/* util/hash.c — XXH128 (libxxhash) in the two forms xp stores: the
 * canonical 16 bytes of step hashes and the hex name of content files. */
#include "util/hash.h"

#include <stdio.h>
#include <xxhash.h>

void xp__hex(const void *data, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    const uint8_t *p = data;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

void xp__hash128(const void *data, size_t len, uint8_t out[16])
{
    XXH128_hash_t h = XXH3_128bits(data, len);
    XXH128_canonicalFromHash((XXH128_canonical_t *)(void *)out, h);
}

void xp__hash_hex(const bson_t *doc, char out[33])
{
    XXH128_hash_t h = XXH3_128bits(bson_get_data(doc), doc->len);
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)h.high64,
             (unsigned long long)h.low64);
}
