/* util/hash.h — XXH128, the hash of every content-addressed thing xp
 * stores: code and environment documents, step inputs and outputs. */
#ifndef XP_UTIL_HASH_H
#define XP_UTIL_HASH_H

#include <bson/bson.h>
#include <stddef.h>
#include <stdint.h>

/* XXH128 of len bytes, canonical (big-endian) form. */
void xp__hash128(const void *data, size_t len, uint8_t out[16]);
/* The n bytes of data as 2n lowercase hex characters and a NUL in out. */
void xp__hex(const void *data, size_t n, char *out);
/* XXH128 of a BSON document's bytes as 32 hex characters. */
void xp__hash_hex(const bson_t *doc, char out[33]);

#endif /* XP_UTIL_HASH_H */
