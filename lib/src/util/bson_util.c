/* util/bson_util.c — typed readers of BSON document fields: absent and
 * mistyped fields read the same, so callers check one result. */
#include "util/bson_util.h"

#include "util/error.h"

#include <string.h>

const char *xp__bson_utf8(const bson_t *b, const char *key)
{
    bson_iter_t it;
    if (bson_iter_init_find(&it, b, key) && BSON_ITER_HOLDS_UTF8(&it))
        return bson_iter_utf8(&it, NULL);
    return NULL;
}

bool xp__bson_int64(const bson_t *b, const char *key, int64_t *out)
{
    bson_iter_t it;
    if (!bson_iter_init_find(&it, b, key))
        return false;
    if (BSON_ITER_HOLDS_INT64(&it))
        *out = bson_iter_int64(&it);
    else if (BSON_ITER_HOLDS_INT32(&it))
        *out = bson_iter_int32(&it);
    else
        return false;
    return true;
}

bool xp__bson_bool(const bson_t *b, const char *key, bool dflt)
{
    bson_iter_t it;
    if (bson_iter_init_find(&it, b, key) && BSON_ITER_HOLDS_BOOL(&it))
        return bson_iter_bool(&it);
    return dflt;
}

bool xp__bson_sub(const bson_t *b, const char *key, bson_t *out)
{
    bson_iter_t it;
    uint32_t len;
    const uint8_t *data;
    if (!bson_iter_init_find(&it, b, key))
        return false;
    if (BSON_ITER_HOLDS_DOCUMENT(&it))
        bson_iter_document(&it, &len, &data);
    else if (BSON_ITER_HOLDS_ARRAY(&it))
        bson_iter_array(&it, &len, &data);
    else
        return false;
    return bson_init_static(out, data, len);
}

/* ------------------------------------------------------- bounded check */

static int64_t s_le32(const uint8_t *p)
{
    uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                 (uint32_t)p[3] << 24;
    return (int32_t)v;
}

static int s_bad(xp_error_t *err, size_t at, const char *what)
{
    return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                     "malformed BSON at byte %zu: %s", at, what);
}

/* Bytes of a fixed-size value of type t; -1: not a fixed size. */
static int s_fixed_size(uint8_t t)
{
    switch (t) {
    case BSON_TYPE_UNDEFINED:
    case BSON_TYPE_NULL:
    case BSON_TYPE_MINKEY:
    case BSON_TYPE_MAXKEY: return 0;
    case BSON_TYPE_BOOL: return 1;
    case BSON_TYPE_INT32: return 4;
    case BSON_TYPE_DOUBLE:
    case BSON_TYPE_DATE_TIME:
    case BSON_TYPE_TIMESTAMP:
    case BSON_TYPE_INT64: return 8;
    case BSON_TYPE_OID: return 12;
    case BSON_TYPE_DECIMAL128: return 16;
    default: return -1;
    }
}

/* Whether p[0..n) is UTF-8 without NUL. Records are mostly ASCII: eight
 * bytes at a time while no byte is 0 or has its high bit set, libbson's
 * validator from the first word that has one. */
static bool s_utf8(const uint8_t *p, size_t n)
{
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        if ((w & highs) || ((w - ones) & ~w & highs))
            break;
    }
    for (; i < n && p[i] > 0 && p[i] < 0x80; i++)
        ;
    return i == n || bson_utf8_validate((const char *)p + i, n - i, false);
}

bool xp__bson_utf8_valid(const uint8_t *p, size_t n)
{
    return s_utf8(p, n);
}

/* Size of the string (int32 length, bytes, NUL) at p with room bytes
 * left; -1 when it does not fit or is not terminated. */
#define S_NOT_UTF8 (-2)

static int64_t s_string_size(const uint8_t *p, int64_t room)
{
    if (room < 5)
        return -1;
    int64_t n = s_le32(p);
    if (n < 1 || 4 + n > room || p[4 + n - 1] != 0)
        return -1;
    /* libbson 1.23's bson_validate lets bad UTF-8 values through */
    if (!s_utf8(p + 4, (size_t)n - 1))
        return S_NOT_UTF8;
    return 4 + n;
}

/* Size of the NUL-terminated text at p within room bytes; -1: none. */
static int64_t s_cstring_size(const uint8_t *p, int64_t room)
{
    const uint8_t *z = room > 0 ? memchr(p, 0, (size_t)room) : NULL;
    if (!z)
        return -1;
    return s_utf8(p, (size_t)(z - p)) ? z - p + 1 : S_NOT_UTF8;
}

/* The walk keeps, per open document, where it ends; a document nested in
 * a code-with-scope value must end where that value ends. */
typedef struct {
    const uint8_t *data;
    size_t *ends;
    int depth, max_depth;
} s_walk;

/* Opens the document at pos (room bytes left in its parent); wrapping:
 * the size it must have (0: any). */
static int s_open(s_walk *w, size_t pos, int64_t room, int64_t wrapping,
                  xp_error_t *err)
{
    if (room < 5)
        return s_bad(err, pos, "document cut short");
    int64_t n = s_le32(w->data + pos);
    if (n < 5 || n > room || (wrapping && n != wrapping))
        return s_bad(err, pos, "document length out of bounds");
    if (w->depth >= w->max_depth)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "malformed BSON: documents nested deeper than %d",
                         w->max_depth);
    w->ends[w->depth++] = pos + (size_t)n;
    return 0;
}

/* Checks the value of type t at *pos (room bytes left before its
 * document's terminator) and moves past it, or into it for documents. */
static int s_value(s_walk *w, uint8_t t, size_t *pos, int64_t room,
                   xp_error_t *err)
{
    const uint8_t *p = w->data + *pos;
    int64_t size = s_fixed_size(t);
    switch (t) {
    case BSON_TYPE_UTF8:
    case BSON_TYPE_CODE:
    case BSON_TYPE_SYMBOL: size = s_string_size(p, room); break;
    case BSON_TYPE_DBPOINTER:
        size = s_string_size(p, room);
        if (size >= 0)
            size = size + 12 <= room ? size + 12 : -1;
        break;
    case BSON_TYPE_BINARY:
        size = room >= 5 ? s_le32(p) : -1;
        size = size >= 0 && 5 + size <= room ? 5 + size : -1;
        /* the old binary subtype holds its own length, as libbson reads */
        if (size >= 0 && p[4] == BSON_SUBTYPE_BINARY_DEPRECATED &&
            (size < 9 || s_le32(p + 5) != size - 9))
            size = -1;
        break;
    case BSON_TYPE_REGEX: {
        int64_t a = s_cstring_size(p, room);
        int64_t b = a >= 0 ? s_cstring_size(p + a, room - a) : a;
        size = b >= 0 ? a + b : b;
        break;
    }
    case BSON_TYPE_DOCUMENT:
    case BSON_TYPE_ARRAY:
        if (s_open(w, *pos, room, 0, err) != 0)
            return -1;
        *pos += 4;
        return 0;
    case BSON_TYPE_CODEWSCOPE: {
        int64_t total = room >= 4 ? s_le32(p) : -1;
        int64_t code =
            total >= 14 && total <= room ? s_string_size(p + 4, total - 4) : -1;
        if (code < 0 || s_open(w, *pos + 4 + (size_t)code, total - 4 - code,
                               total - 4 - code, err) != 0)
            return code < 0 ? s_bad(err, *pos, "code with scope") : -1;
        *pos += 4 + (size_t)code + 4;
        return 0;
    }
    default:
        if (size < 0)
            return s_bad(err, *pos, "unknown element type");
    }
    if (size == S_NOT_UTF8)
        return s_bad(err, *pos, "string is not UTF-8");
    if (size < 0 || size > room)
        return s_bad(err, *pos, "value does not fit its document");
    if (t == BSON_TYPE_BOOL && p[0] > 1)
        return s_bad(err, *pos, "boolean neither 0 nor 1");
    *pos += (size_t)size;
    return 0;
}

int xp__bson_check(const uint8_t *data, size_t len, int max_depth,
                   xp_error_t *err)
{
    if (len < 5 || len > INT32_MAX || (int64_t)len != s_le32(data))
        return s_bad(err, 0, "length does not match the bytes given");
    if (max_depth < 1)
        return s_bad(err, 0, "no nesting allowed");
    size_t small[128];
    s_walk w = {data, max_depth <= 128 ? small : NULL, 0, max_depth};
    if (!w.ends)
        w.ends = bson_malloc((size_t)max_depth * sizeof *w.ends);
    size_t pos = 0;
    int rc = s_open(&w, 0, (int64_t)len, 0, err);
    pos = 4;
    while (rc == 0 && w.depth > 0) {
        size_t end = w.ends[w.depth - 1];
        uint8_t t = data[pos];
        if (pos == end - 1) { /* the document's terminator */
            rc = t == 0 ? 0 : s_bad(err, pos, "document not terminated");
            pos++;
            w.depth--;
            continue;
        }
        if (t == 0) {
            rc = s_bad(err, pos, "document ends before its length");
            break;
        }
        int64_t key = s_cstring_size(data + pos + 1, (int64_t)(end - 2 - pos));
        if (key < 0) {
            rc = s_bad(err, pos,
                       key == S_NOT_UTF8 ? "key is not UTF-8"
                                         : "key not terminated");
            break;
        }
        pos += 1 + (size_t)key;
        rc = s_value(&w, t, &pos, (int64_t)(end - 1 - pos), err);
    }
    if (w.ends != small)
        bson_free(w.ends);
    return rc;
}

bool xp__bson_view_checked(bson_t *doc, const uint8_t *data, size_t len)
{
    /* The check is stricter than bson_validate(BSON_VALIDATE_NONE) on
     * every point (tests/fuzz asserts it), so that second whole pass over
     * the bytes is not made. */
    return data && xp__bson_check(data, len, XP_BSON_MAX_DEPTH, NULL) == 0 &&
           bson_init_static(doc, data, len);
}

/* Bytes of the value of type t at p in a checked document. */
static size_t s_checked_size(uint8_t t, const uint8_t *p)
{
    switch (t) {
    case BSON_TYPE_UTF8:
    case BSON_TYPE_CODE:
    case BSON_TYPE_SYMBOL: return 4 + (size_t)s_le32(p);
    case BSON_TYPE_DBPOINTER: return 4 + (size_t)s_le32(p) + 12;
    case BSON_TYPE_BINARY: return 5 + (size_t)s_le32(p);
    case BSON_TYPE_DOCUMENT:
    case BSON_TYPE_ARRAY:
    case BSON_TYPE_CODEWSCOPE: return (size_t)s_le32(p);
    case BSON_TYPE_REGEX: {
        size_t a = strlen((const char *)p) + 1;
        return a + strlen((const char *)p + a) + 1;
    }
    default: return (size_t)s_fixed_size(t);
    }
}

bool xp__bson_next_checked(const uint8_t *doc, size_t *pos, xp_bson_elem *e)
{
    const uint8_t *p = doc + *pos;
    if (p[0] == 0)
        return false;
    e->type = p[0];
    e->key = (const char *)p + 1;
    e->key_len = strlen(e->key);
    e->value = p + 2 + e->key_len;
    *pos += 2 + e->key_len + s_checked_size(e->type, e->value);
    return true;
}

size_t xp__bson_count_checked(const uint8_t *doc)
{
    size_t n = 0, pos = 4;
    xp_bson_elem e;
    while (xp__bson_next_checked(doc, &pos, &e))
        n++;
    return n;
}
