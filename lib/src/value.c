/* value.c — the typed value tree (step inputs/outputs, parameters, trial
 * records), its conversion to and from BSON, JSON text via libbson's
 * extended JSON, and script-mode literal inference. */
#include "value.h"

#include "util/bson_util.h"
#include "util/error.h"
#include "util/render.h"

#include <errno.h>
#include <stdatomic.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <unistd.h>

/* Levels of nesting a value may have, written and read alike. */
#define XP_VALUE_MAX_DEPTH 100

/* A history's 100,000 rows are ~3 M nodes: each byte of a node is 3 MB. */
_Static_assert(sizeof(xp_value) <= 16, "xp_value grew");

/* Flags that say where a node lives, kept when its content changes. */
#define S_PLACE (XP__VALUE_IN_ARENA | XP__VALUE_OWNS_ARENA)

xp_value *xp_value_new(void)
{
    return bson_malloc0(sizeof(xp_value));
}

/* ---------------------------------------------------------------- arena
 * A history of 100,000 rows is ~2.7 M nodes: built one malloc each, and
 * freed one free each, allocation was most of its cost. An arena array
 * (xp__value_arena_array) carves its rows' nodes, keys, strings and
 * children from blocks it owns and frees them together; the flags
 * XP__VALUE_IN_ARENA / _INLINE / _FLAT say what is not to be freed (or
 * reallocated) alone, so rows can still be changed like any value. */
#define S_ARENA_FIRST ((size_t)64 << 10)
#define S_ARENA_MAX ((size_t)8 << 20)

typedef struct s_arena_block {
    struct s_arena_block *next;
    /* bytes of data after this header: in use, faulted in (s_arena_alloc
     * takes only these), in all */
    size_t used, cap, room;
} s_arena_block;

/* Bytes of a block faulted in at once (MADV_POPULATE_WRITE): one call
 * instead of a page fault per 4 KiB page. */
#define S_ARENA_POPULATE ((size_t)256 << 10)

/* What the last row read from bytes held at one place of its walk
 * (xp__value_from_bytes_in): rows of one history mostly repeat their
 * keys, many strings and their documents' key arrays, which the next
 * row then shares instead of copying (none of them is ever written in
 * place: a change of a row copies first). */
typedef struct {
    const char *key; /* a document's child: its key (arena or static) */
    const char *str; /* a string: its bytes (NUL-terminated, arena) */
    char **keys;     /* a document: its keys array (arena) */
    uint32_t klen, slen, nkeys;
} s_row_slot;

#define S_ROW_SLOTS 512

typedef struct {
    s_arena_block *head;
    size_t next_cap;
    /* children of the containers being read (s_arena_elements), each
     * level's above its parent's: they are then copied side by side */
    xp_value *stack;
    size_t stack_n, stack_cap;
    const char **keystack; /* their keys (documents), stack_cap */
    s_row_slot *slots;     /* S_ROW_SLOTS, made at the first row from bytes */
    uint64_t heap_seen;    /* s_heap_in_arena when the arena was (re)made */
} s_arena;

/* Moves each time a node in an arena takes memory from the heap (a row
 * changed: a string set, a child added, a damaged record marked). While
 * it has not moved since an arena was made, nothing below its array
 * holds heap memory, and freeing the array frees the arena's blocks
 * without a walk of its ~3 M nodes (~10 ms for 100,000 rows). */
static _Atomic uint64_t s_heap_in_arena;

/* v is about to hold memory from the heap. */
static inline void s_heap_into(const xp_value *v)
{
    if (v->flags & S_PLACE)
        atomic_fetch_add_explicit(&s_heap_in_arena, 1, memory_order_relaxed);
}

/* The block of an arena array: the node, then its arena. */
typedef struct {
    xp_value node;
    s_arena arena;
} s_arena_owner;

static s_arena *s_arena_of(xp_value *owner)
{
    if (!owner || !(owner->flags & XP__VALUE_OWNS_ARENA))
        return NULL;
    return &((s_arena_owner *)(void *)owner)->arena;
}

/* Makes the data of block b up to at least want bytes usable, faulted in
 * by S_ARENA_POPULATE at a time where the kernel can (elsewhere, or where
 * it cannot, the pages fault in as they are first written). */
static void s_arena_populate(s_arena_block *b, size_t want)
{
    size_t to = (want + S_ARENA_POPULATE - 1) & ~(S_ARENA_POPULATE - 1);
    if (to > b->room)
        to = b->room;
#ifdef MADV_POPULATE_WRITE
    /* the whole pages of [cap, to): malloc's large blocks are mappings
     * of their own, faulted in page by page otherwise */
    long pagesize = sysconf(_SC_PAGESIZE);
    uintptr_t data = (uintptr_t)(b + 1),
              page = pagesize > 0 ? (uintptr_t)pagesize : 4096;
    uintptr_t from = (data + b->cap + page - 1) & ~(page - 1),
              end = (data + to) & ~(page - 1);
    if (end > from)
        madvise((void *)from, end - from, MADV_POPULATE_WRITE);
#endif
    b->cap = to;
}

/* A block of size bytes, header included; NULL when out of memory.
 * (Blocks of 2 MiB and more advised for transparent huge pages made
 * ~100 page faults instead of ~50,000 for 100,000 rows, but the kernel's
 * compaction for them stalled one read in four for 0.4 s on this VM.) */
static s_arena_block *s_arena_block_new(size_t size)
{
    s_arena_block *b = bson_malloc(size);
    if (!b)
        return NULL;
    b->used = b->cap = 0;
    b->room = size - sizeof *b;
    return b;
}

/* s_arena_alloc past what the current block has faulted in. */
static void *s_arena_alloc_new(s_arena *a, size_t n)
{
    s_arena_block *b = a->head;
    if (b && b->room - b->used >= n) {
        s_arena_populate(b, b->used + n);
    } else {
        size_t size = a->next_cap ? a->next_cap : S_ARENA_FIRST;
        if (a->next_cap < S_ARENA_MAX)
            a->next_cap = size * 2;
        if (size < n + sizeof(s_arena_block))
            size = n + sizeof(s_arena_block);
        if (!(b = s_arena_block_new(size)))
            return NULL;
        /* the first block faults in as it is written: a page of a few
         * rows keeps the few pages it uses */
        if (a->head)
            s_arena_populate(b, n);
        else
            b->cap = b->room;
        b->next = a->head;
        a->head = b;
    }
    void *p = (char *)(b + 1) + b->used;
    b->used += n;
    return p;
}

/* n bytes (8-aligned, not zeroed) from a; NULL when out of memory. */
static inline void *s_arena_alloc(s_arena *a, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    s_arena_block *b = a->head;
    if (!b || b->cap - b->used < n)
        return s_arena_alloc_new(a, n);
    void *p = (char *)(b + 1) + b->used;
    b->used += n;
    return p;
}

/* Not inlined: GCC would check the owner cast against every plain
 * node xp__value_clear is inlined over (-Warray-bounds). */
__attribute__((noinline)) static void s_arena_free(s_arena *a)
{
    while (a->head) {
        s_arena_block *b = a->head;
        a->head = b->next;
        bson_free(b);
    }
    a->next_cap = 0;
    bson_free(a->stack);
    a->stack = NULL;
    a->stack_n = a->stack_cap = 0;
    bson_free(a->keystack);
    a->keystack = NULL;
    bson_free(a->slots);
    a->slots = NULL;
    a->heap_seen = atomic_load_explicit(&s_heap_in_arena, memory_order_relaxed);
}

xp_value *xp__value_arena_array(void)
{
    s_arena_owner *o = bson_malloc0(sizeof *o);
    if (!o)
        return NULL;
    o->node.type = XP_TYPE_ARRAY;
    o->node.flags = XP__VALUE_OWNS_ARENA;
    o->arena.heap_seen =
        atomic_load_explicit(&s_heap_in_arena, memory_order_relaxed);
    return &o->node;
}

/* The keys of heap children k (a document's). */
static inline char **s_kids_keys(struct xp_value_kids *k)
{
    return (char **)(void *)(k->items + k->cap);
}

/* Frees what v holds outside the arenas (its heap bytes, its children),
 * leaving v's own fields stale. */
static void s_release(xp_value *v)
{
    switch (v->type) {
    case XP_TYPE_STRING:
    case XP_TYPE_BLOB:
        if (!(v->flags & XP__VALUE_INLINE))
            bson_free(v->flags & XP__VALUE_LONG ? v->u.data - sizeof(size_t)
                                                : v->u.data);
        break;
    case XP_TYPE_ARRAY:
    case XP_TYPE_DOCUMENT:
        /* a document's keys live in their children's blocks (s_push)
         * or in the arena */
        for (size_t i = 0; i < v->n; i++) {
            xp_value *child = xp__value_child(v, i);
            s_release(child);
            if (!(child->flags & XP__VALUE_IN_ARENA))
                bson_free(child);
        }
        if (!(v->flags & XP__VALUE_FLAT))
            bson_free(v->u.kids);
        break;
    default: break;
    }
}

void xp__value_clear(xp_value *v)
{
    s_arena *a = s_arena_of(v);
    if (a && v->type == XP_TYPE_ARRAY && !(v->flags & XP__VALUE_FLAT) &&
        a->heap_seen ==
            atomic_load_explicit(&s_heap_in_arena, memory_order_relaxed))
        bson_free(v->u.kids); /* its rows are all the arena's */
    else
        s_release(v);
    /* where the node itself lives does not change */
    uint8_t place = v->flags & S_PLACE;
    if (place & XP__VALUE_OWNS_ARENA)
        s_arena_free(s_arena_of(v));
    memset(v, 0, sizeof *v);
    v->flags = place;
}

/* Replaces v's content by tmp's (v cleared before), keeping where v
 * lives. */
static void s_move_into(xp_value *v, const xp_value *tmp)
{
    uint8_t place = v->flags & S_PLACE;
    s_heap_into(v);
    *v = *tmp;
    v->flags = (uint8_t)((tmp->flags & ~S_PLACE) | place);
}

void xp_value_destroy(xp_value **v)
{
    if (!v || !*v)
        return;
    xp__value_clear(*v);
    if (!((*v)->flags & XP__VALUE_IN_ARENA))
        bson_free(*v);
    *v = NULL;
}

xp_value *xp_value_dup(const xp_value *v)
{
    xp_value *copy = xp_value_new();
    if (copy && v && xp_set_value(copy, v) != 0)
        xp_value_destroy(&copy);
    return copy;
}

xp_type xp_value_type(const xp_value *v)
{
    return v ? (xp_type)v->type : XP_TYPE_NULL;
}

const char *xp_type_name(xp_type t)
{
    static const char *const names[] = {"null",   "bool",     "int64",
                                        "double", "string",   "blob",
                                        "array",  "document", "datetime"};
    if ((unsigned)t < sizeof names / sizeof names[0])
        return names[t];
    return "unknown";
}

bool xp_as_bool(const xp_value *v)
{
    if (!v)
        return false;
    switch (v->type) {
    case XP_TYPE_BOOL: return v->u.b;
    case XP_TYPE_INT64:
    case XP_TYPE_DATETIME: return v->u.i != 0;
    case XP_TYPE_DOUBLE: return v->u.d != 0;
    default: return false;
    }
}

int64_t xp_as_int64(const xp_value *v)
{
    if (!v)
        return 0;
    switch (v->type) {
    case XP_TYPE_BOOL: return v->u.b;
    case XP_TYPE_INT64:
    case XP_TYPE_DATETIME: return v->u.i;
    case XP_TYPE_DOUBLE:
        /* Saturate: converting an out-of-range double is undefined. */
        if (isnan(v->u.d))
            return 0;
        if (v->u.d >= 9223372036854775807.0)
            return INT64_MAX;
        if (v->u.d <= -9223372036854775808.0)
            return INT64_MIN;
        return (int64_t)v->u.d;
    default: return 0;
    }
}

double xp_as_double(const xp_value *v)
{
    if (!v)
        return 0;
    switch (v->type) {
    case XP_TYPE_BOOL: return v->u.b;
    case XP_TYPE_INT64:
    case XP_TYPE_DATETIME: return (double)v->u.i;
    case XP_TYPE_DOUBLE: return v->u.d;
    default: return 0;
    }
}

const char *xp_as_string(const xp_value *v, size_t *len)
{
    if (!v || v->type != XP_TYPE_STRING)
        return NULL;
    if (len)
        *len = xp__value_len(v);
    return v->u.data;
}

const void *xp_as_blob(const xp_value *v, size_t *len)
{
    if (!v || v->type != XP_TYPE_BLOB)
        return NULL;
    if (len)
        *len = xp__value_len(v);
    /* An empty blob still has a non-NULL pointer (see xp_set_blob). */
    return v->u.data;
}

static bool s_is_container(const xp_value *v)
{
    return v && (v->type == XP_TYPE_ARRAY || v->type == XP_TYPE_DOCUMENT);
}

size_t xp_value_count(const xp_value *v)
{
    return s_is_container(v) ? v->n : 0;
}

const xp_value *xp_value_at(const xp_value *v, size_t i)
{
    return s_is_container(v) && i < v->n ? xp__value_child(v, i) : NULL;
}

const char *xp_value_key_at(const xp_value *v, size_t i)
{
    if (!v || v->type != XP_TYPE_DOCUMENT || i >= v->n)
        return NULL;
    return xp__value_key(v, i);
}

const xp_value *xp_value_get(const xp_value *v, const char *key)
{
    if (!v || v->type != XP_TYPE_DOCUMENT || !key)
        return NULL;
    for (size_t i = 0; i < v->n; i++)
        if (strcmp(xp__value_key(v, i), key) == 0)
            return xp__value_child(v, i);
    return NULL;
}

int xp_set_null(xp_value *v)
{
    if (!v)
        return -1;
    xp__value_clear(v);
    return 0;
}

int xp_set_bool(xp_value *v, bool b)
{
    if (xp_set_null(v) != 0)
        return -1;
    v->type = XP_TYPE_BOOL;
    v->u.b = b;
    return 0;
}

int xp_set_int64(xp_value *v, int64_t i)
{
    if (xp_set_null(v) != 0)
        return -1;
    v->type = XP_TYPE_INT64;
    v->u.i = i;
    return 0;
}

int xp_set_double(xp_value *v, double d)
{
    if (xp_set_null(v) != 0)
        return -1;
    v->type = XP_TYPE_DOUBLE;
    v->u.d = d;
    return 0;
}

int xp_set_datetime(xp_value *v, int64_t ms)
{
    if (xp_set_null(v) != 0)
        return -1;
    v->type = XP_TYPE_DATETIME;
    v->u.i = ms;
    return 0;
}

/* Sets v to a string or blob: data[0..len) in a heap copy (past
 * UINT32_MAX - 1 bytes, its length before it). */
static int s_set_bytes(xp_value *v, xp_type type, const void *data, size_t len)
{
    if (!v || (!data && len))
        return -1;
    bool long_ = len >= UINT32_MAX;
    size_t pre = long_ ? sizeof len : 0;
    if (len > SIZE_MAX - 1 - pre)
        return -1;
    char *block = bson_malloc(pre + len + 1);
    if (!block)
        return -1;
    if (long_)
        memcpy(block, &len, sizeof len);
    char *copy = block + pre;
    if (len)
        memcpy(copy, data, len);
    copy[len] = '\0';
    xp__value_clear(v);
    s_heap_into(v);
    v->type = (uint8_t)type;
    v->u.data = copy;
    v->n = long_ ? UINT32_MAX : (uint32_t)len;
    if (long_)
        v->flags |= XP__VALUE_LONG;
    return 0;
}

int xp_set_string_len(xp_value *v, const char *s, size_t len)
{
    if (!s || !bson_utf8_validate(s, len, false))
        return -1;
    return s_set_bytes(v, XP_TYPE_STRING, s, len);
}

int xp_set_string(xp_value *v, const char *s)
{
    return s ? xp_set_string_len(v, s, strlen(s)) : -1;
}

int xp_set_blob(xp_value *v, const void *data, size_t len)
{
    return s_set_bytes(v, XP_TYPE_BLOB, data, len);
}

int xp_set_array(xp_value *v)
{
    if (xp_set_null(v) != 0)
        return -1;
    v->type = XP_TYPE_ARRAY;
    return 0;
}

int xp_set_document(xp_value *v)
{
    if (xp_set_null(v) != 0)
        return -1;
    v->type = XP_TYPE_DOCUMENT;
    return 0;
}

/* How many children container v has room for without growing. */
static size_t s_cap(const xp_value *v)
{
    if (v->flags & XP__VALUE_FLAT)
        return v->n;
    return v->u.kids ? v->u.kids->cap : 0;
}

/* Makes room for cap children in container v: its heap arrays grown, or
 * children side by side in an arena given heap arrays pointing at them
 * (they stay where they are); false when out of memory. */
static bool s_reserve(xp_value *v, size_t cap)
{
    size_t old = s_cap(v), n = v->n;
    if (cap <= old)
        return true;
    if (cap > UINT32_MAX)
        return false;
    bool keyed = v->type == XP_TYPE_DOCUMENT;
    size_t size = sizeof(struct xp_value_kids) +
                  cap * sizeof(xp_value *) * (keyed ? 2 : 1);
    struct xp_value_kids *k;
    if (v->flags & XP__VALUE_FLAT) {
        if (!(k = bson_malloc(size)))
            return false;
        k->cap = cap;
        struct xp_value_flat *f = v->u.flat;
        for (size_t i = 0; i < n; i++)
            k->items[i] = &f->items[i];
        if (keyed && n)
            memcpy(s_kids_keys(k), f->keys, n * sizeof(char *));
        v->flags &= (uint8_t)~XP__VALUE_FLAT;
    } else {
        if (!(k = bson_realloc(v->u.kids, size)))
            return false;
        k->cap = cap;
        if (keyed && n)
            memmove(s_kids_keys(k), k->items + old, n * sizeof(char *));
    }
    v->u.kids = k;
    if (!(v->flags & XP__VALUE_OWNS_ARENA)) /* freed with the arena array */
        s_heap_into(v);
    return true;
}

/* Appends a fresh null child (with key for documents, of klen bytes,
 * copied into the child's own block, and extra bytes after it: one
 * allocation per child), the block from a when given; NULL when out of
 * memory. */
static xp_value *s_push_len_in(xp_value *v, const char *key, size_t klen,
                               size_t extra, s_arena *a)
{
    if (v->n == s_cap(v) && !s_reserve(v, v->n ? (size_t)v->n * 2 : 4))
        return NULL;
    bool keyed = v->type == XP_TYPE_DOCUMENT;
    size_t size = sizeof(xp_value) + (keyed ? klen + 1 : 0) + extra;
    xp_value *child = a ? s_arena_alloc(a, size) : bson_malloc0(size);
    if (!child)
        return NULL;
    if (a) {
        memset(child, 0, sizeof *child);
        child->flags = XP__VALUE_IN_ARENA;
    } else {
        s_heap_into(v);
    }
    if (keyed) {
        char *k = (char *)(child + 1);
        memcpy(k, key, klen);
        k[klen] = '\0';
        s_kids_keys(v->u.kids)[v->n] = k;
    }
    v->u.kids->items[v->n++] = child;
    return child;
}

static xp_value *s_push_len(xp_value *v, const char *key, size_t klen,
                            size_t extra)
{
    return s_push_len_in(v, key, klen, extra, NULL);
}

static xp_value *s_push(xp_value *v, const char *key)
{
    return s_push_len(v, key, key ? strlen(key) : 0, 0);
}

xp_value *xp_array_append(xp_value *v)
{
    if (!v || v->type != XP_TYPE_ARRAY)
        return NULL;
    return s_push_len_in(v, NULL, 0, 0, s_arena_of(v));
}

xp_value *xp_document_set(xp_value *v, const char *key)
{
    if (!v || v->type != XP_TYPE_DOCUMENT || !key ||
        !bson_utf8_validate(key, strlen(key), false))
        return NULL;
    for (size_t i = 0; i < v->n; i++) {
        if (strcmp(xp__value_key(v, i), key) == 0) {
            xp_value *child = xp__value_child(v, i);
            xp__value_clear(child);
            return child;
        }
    }
    return s_push(v, key);
}

int xp_set_value(xp_value *v, const xp_value *src)
{
    if (!v || !src)
        return -1;
    if (v == src)
        return 0;
    switch (src->type) {
    case XP_TYPE_NULL: return xp_set_null(v);
    case XP_TYPE_BOOL: return xp_set_bool(v, src->u.b);
    case XP_TYPE_INT64: return xp_set_int64(v, src->u.i);
    case XP_TYPE_DOUBLE: return xp_set_double(v, src->u.d);
    case XP_TYPE_DATETIME: return xp_set_datetime(v, src->u.i);
    case XP_TYPE_STRING:
    case XP_TYPE_BLOB:
        return s_set_bytes(v, src->type, src->u.data, xp__value_len(src));
    case XP_TYPE_ARRAY:
    case XP_TYPE_DOCUMENT: {
        /* Build aside, so src may be a descendant of v. */
        xp_value tmp = {.type = src->type};
        bool keyed = src->type == XP_TYPE_DOCUMENT;
        if (!s_reserve(&tmp, src->n))
            return -1;
        for (size_t i = 0; i < src->n; i++) {
            xp_value *child =
                s_push(&tmp, keyed ? xp__value_key(src, i) : NULL);
            if (!child || xp_set_value(child, xp__value_child(src, i)) != 0) {
                xp__value_clear(&tmp);
                return -1;
            }
        }
        xp__value_clear(v);
        s_move_into(v, &tmp);
        return 0;
    }
    }
    return -1;
}

bool xp_value_equal(const xp_value *a, const xp_value *b)
{
    if (!a || !b)
        return a == b;
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case XP_TYPE_NULL: return true;
    case XP_TYPE_BOOL: return a->u.b == b->u.b;
    case XP_TYPE_INT64:
    case XP_TYPE_DATETIME: return a->u.i == b->u.i;
    case XP_TYPE_DOUBLE:
        /* Bitwise for NaN; 0.0 and -0.0 compare equal. */
        return a->u.d == b->u.d || (isnan(a->u.d) && isnan(b->u.d));
    case XP_TYPE_STRING:
    case XP_TYPE_BLOB: {
        size_t len = xp__value_len(a);
        return len == xp__value_len(b) &&
               (len == 0 || memcmp(a->u.data, b->u.data, len) == 0);
    }
    case XP_TYPE_ARRAY:
    case XP_TYPE_DOCUMENT:
        if (a->n != b->n)
            return false;
        for (size_t i = 0; i < a->n; i++) {
            if (a->type == XP_TYPE_DOCUMENT &&
                strcmp(xp__value_key(a, i), xp__value_key(b, i)) != 0)
                return false;
            if (!xp_value_equal(xp__value_child(a, i), xp__value_child(b, i)))
                return false;
        }
        return true;
    }
    return false;
}

/* ---------------------------------------------------------------- BSON */

static int s_append(bson_t *b, const char *key, const xp_value *v, int depth);

static int s_append_children(bson_t *b, const xp_value *v, int depth)
{
    char numbuf[24];
    bool keyed = v->type == XP_TYPE_DOCUMENT;
    for (size_t i = 0; i < v->n; i++) {
        const char *key = keyed ? xp__value_key(v, i) : NULL;
        if (!key) {
            bson_uint32_to_string((uint32_t)i, &key, numbuf, sizeof numbuf);
        }
        int rc = s_append(b, key, xp__value_child(v, i), depth + 1);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* -1 when v cannot be encoded, -2 when it is nested too deep. */
static int s_append(bson_t *b, const char *key, const xp_value *v, int depth)
{
    /* Levels 0 .. MAX_DEPTH - 1, as s_from_iter reads them back. */
    if (depth >= XP_VALUE_MAX_DEPTH)
        return -2;
    bool ok = false;
    switch (v->type) {
    case XP_TYPE_NULL: ok = bson_append_null(b, key, -1); break;
    case XP_TYPE_BOOL: ok = bson_append_bool(b, key, -1, v->u.b); break;
    case XP_TYPE_INT64: ok = bson_append_int64(b, key, -1, v->u.i); break;
    case XP_TYPE_DOUBLE: ok = bson_append_double(b, key, -1, v->u.d); break;
    case XP_TYPE_DATETIME:
        ok = bson_append_date_time(b, key, -1, v->u.i);
        break;
    case XP_TYPE_STRING:
        ok = xp__value_len(v) <= INT32_MAX &&
             bson_append_utf8(b, key, -1, v->u.data, (int)xp__value_len(v));
        break;
    case XP_TYPE_BLOB:
        ok = xp__value_len(v) <= INT32_MAX &&
             bson_append_binary(b, key, -1, BSON_SUBTYPE_BINARY,
                                (const uint8_t *)v->u.data,
                                (uint32_t)xp__value_len(v));
        break;
    case XP_TYPE_ARRAY:
    case XP_TYPE_DOCUMENT: {
        bson_t child;
        if (v->type == XP_TYPE_ARRAY)
            ok = bson_append_array_begin(b, key, -1, &child);
        else
            ok = bson_append_document_begin(b, key, -1, &child);
        if (!ok)
            return -1;
        int rc = s_append_children(&child, v, depth);
        if (v->type == XP_TYPE_ARRAY)
            ok = bson_append_array_end(b, &child);
        else
            ok = bson_append_document_end(b, &child);
        if (rc != 0)
            return rc;
        break;
    }
    }
    return ok ? 0 : -1;
}

int xp__value_append_bson(bson_t *b, const char *key, const xp_value *v)
{
    return s_append(b, key, v, 0) == 0 ? 0 : -1;
}

int xp__value_append_checked(bson_t *b, const char *key, const xp_value *v,
                             const char *what, xp_error_t *err)
{
    int rc = s_append(b, key, v, 0);
    if (rc == -2)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "%s nested deeper than %d levels", what,
                         XP_VALUE_MAX_DEPTH);
    if (rc != 0)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "%s is too large to store", what);
    return 0;
}

int xp__value_to_bson(const xp_value *v, bson_t *out)
{
    if (!s_is_container(v))
        return -1;
    /* Its elements are values of their own, at level 0 each. */
    return s_append_children(out, v, -1) == 0 ? 0 : -1;
}

static int s_from_iter(xp_value *v, const bson_iter_t *it, int depth,
                       xp_error_t *err);

static int s_children_from(xp_value *v, const bson_iter_t *parent, int depth,
                           xp_error_t *err)
{
    bson_iter_t child;
    if (!bson_iter_recurse(parent, &child))
        return xp__error(err, XP_DOMAIN_BACKEND, XP_ECORRUPT,
                         "malformed BSON container");
    while (bson_iter_next(&child)) {
        xp_value *item =
            s_push_len(v, bson_iter_key(&child), bson_iter_key_len(&child), 0);
        if (!item)
            return xp__enomem(err);
        if (s_from_iter(item, &child, depth + 1, err) != 0)
            return -1;
    }
    return 0;
}

static int s_deeper(xp_error_t *err)
{
    return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                     "value nested deeper than %d levels", XP_VALUE_MAX_DEPTH);
}

static int s_unsupported(uint8_t type, const char *key, xp_error_t *err)
{
    return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                     "unsupported BSON type 0x%02x in value '%s'",
                     (unsigned)type, key);
}

static int s_from_iter(xp_value *v, const bson_iter_t *it, int depth,
                       xp_error_t *err)
{
    if (depth >= XP_VALUE_MAX_DEPTH)
        return s_deeper(err);
    int rc = 0;
    switch (bson_iter_type(it)) {
    case BSON_TYPE_NULL:
    case BSON_TYPE_UNDEFINED: rc = xp_set_null(v); break;
    case BSON_TYPE_BOOL: rc = xp_set_bool(v, bson_iter_bool(it)); break;
    case BSON_TYPE_INT32: rc = xp_set_int64(v, bson_iter_int32(it)); break;
    case BSON_TYPE_INT64: rc = xp_set_int64(v, bson_iter_int64(it)); break;
    case BSON_TYPE_DOUBLE: rc = xp_set_double(v, bson_iter_double(it)); break;
    case BSON_TYPE_DATE_TIME:
        rc = xp_set_datetime(v, bson_iter_date_time(it));
        break;
    case BSON_TYPE_UTF8: {
        uint32_t len;
        const char *s = bson_iter_utf8(it, &len);
        if (!bson_utf8_validate(s, len, false))
            return xp__error(err, XP_DOMAIN_BACKEND, XP_ECORRUPT,
                             "stored string is not valid UTF-8");
        rc = s_set_bytes(v, XP_TYPE_STRING, s, len);
        break;
    }
    case BSON_TYPE_BINARY: {
        uint32_t len;
        const uint8_t *data;
        bson_subtype_t sub;
        bson_iter_binary(it, &sub, &len, &data);
        rc = s_set_bytes(v, XP_TYPE_BLOB, data, len);
        break;
    }
    case BSON_TYPE_ARRAY:
    case BSON_TYPE_DOCUMENT:
        xp_set_null(v);
        v->type = bson_iter_type(it) == BSON_TYPE_ARRAY ? XP_TYPE_ARRAY
                                                        : XP_TYPE_DOCUMENT;
        return s_children_from(v, it, depth, err);
    default: return s_unsupported(bson_iter_type(it), bson_iter_key(it), err);
    }
    return rc == 0 ? 0 : xp__enomem(err);
}

/* A checked document (xp__bson_check) read without bson_iter: its
 * lengths, nesting and UTF-8 are known good, so the walk follows the
 * bytes, counts a container's children first (one allocation of its
 * arrays) and keeps a string child in its node's block with its key.
 * It reads the same values as the bson_iter path (tests/fuzz checks). */
static int s_checked_elements(xp_value *v, const uint8_t *doc, int depth,
                              s_arena *a, xp_error_t *err);

static int64_t s_le64(const uint8_t *p)
{
    int64_t x;
    memcpy(&x, p, 8);
    return BSON_UINT64_FROM_LE(x);
}

static uint32_t s_le32u(const uint8_t *p)
{
    uint32_t x;
    memcpy(&x, p, 4);
    return BSON_UINT32_FROM_LE(x);
}

/* A copy of p[0..n) and a NUL in the arena; NULL when out of memory. */
static char *s_arena_text(s_arena *a, const uint8_t *p, size_t n)
{
    char *copy = s_arena_alloc(a, n + 1);
    if (copy) {
        memcpy(copy, p, n);
        copy[n] = '\0';
    }
    return copy;
}

/* Sets the fresh null node v to a string or blob of p[0..len): in the
 * node's block when inline (given, len < 2^31), in arena a when given,
 * else on the heap. */
static int s_set_bytes_at(xp_value *v, xp_type type, const uint8_t *p,
                          size_t len, char *inline_copy, s_arena *a)
{
    if (!inline_copy && !a)
        return s_set_bytes(v, type, p, len);
    char *copy = inline_copy ? inline_copy : s_arena_text(a, p, len);
    if (!copy)
        return -1;
    if (inline_copy) {
        memcpy(copy, p, len);
        copy[len] = '\0';
    }
    v->type = (uint8_t)type;
    v->flags |= XP__VALUE_INLINE;
    v->u.data = copy;
    v->n = (uint32_t)len;
    return 0;
}

/* Reads element e into the fresh null node v (so a scalar is set in
 * place, without xp_set_*'s clearing first); strings and blobs in a
 * when given. */
static int s_checked_value(xp_value *v, const xp_bson_elem *e, int depth,
                           s_arena *a, xp_error_t *err)
{
    if (depth >= XP_VALUE_MAX_DEPTH)
        return s_deeper(err);
    const uint8_t *p = e->value;
    int rc = 0;
    switch (e->type) {
    case BSON_TYPE_NULL:
    case BSON_TYPE_UNDEFINED: break;
    case BSON_TYPE_BOOL:
        v->type = XP_TYPE_BOOL;
        v->u.b = p[0] != 0;
        break;
    case BSON_TYPE_INT32:
        v->type = XP_TYPE_INT64;
        v->u.i = (int32_t)s_le32u(p);
        break;
    case BSON_TYPE_INT64:
        v->type = XP_TYPE_INT64;
        v->u.i = s_le64(p);
        break;
    case BSON_TYPE_DOUBLE: {
        uint64_t bits = (uint64_t)s_le64(p);
        v->type = XP_TYPE_DOUBLE;
        memcpy(&v->u.d, &bits, 8);
        break;
    }
    case BSON_TYPE_DATE_TIME:
        v->type = XP_TYPE_DATETIME;
        v->u.i = s_le64(p);
        break;
    case BSON_TYPE_UTF8:
        rc = s_set_bytes_at(v, XP_TYPE_STRING, p + 4, s_le32u(p) - 1, NULL, a);
        break;
    case BSON_TYPE_BINARY: {
        uint32_t len = s_le32u(p);
        const uint8_t *data = p + 5;
        if (p[4] == BSON_SUBTYPE_BINARY_DEPRECATED) {
            len -= 4; /* the check made sure it holds its length */
            data += 4;
        }
        rc = s_set_bytes_at(v, XP_TYPE_BLOB, data, len, NULL, a);
        break;
    }
    case BSON_TYPE_ARRAY:
    case BSON_TYPE_DOCUMENT:
        v->type = e->type == BSON_TYPE_ARRAY ? XP_TYPE_ARRAY : XP_TYPE_DOCUMENT;
        return s_checked_elements(v, p, depth + 1, a, err);
    default: return s_unsupported(e->type, e->key, err);
    }
    return rc == 0 ? 0 : xp__enomem(err);
}

/* Doubles a's stacks; false when out of memory. */
static bool s_stack_grow(s_arena *a)
{
    size_t cap = a->stack_cap ? a->stack_cap * 2 : 64;
    xp_value *stack = bson_realloc(a->stack, cap * sizeof *stack);
    if (stack)
        a->stack = stack;
    const char **keys = bson_realloc(a->keystack, cap * sizeof *a->keystack);
    if (keys)
        a->keystack = keys;
    if (!stack || !keys)
        return false;
    a->stack_cap = cap;
    return true;
}

/* The next place of a's stacks, its key set and its node fresh (to be
 * written there: a node built aside and copied in is read back before
 * its stores retire, ~half of a row's walk); NULL when out of memory. */
static inline xp_value *s_stack_next(s_arena *a, const char *key)
{
    if ((a->stack_n == a->stack_cap || !a->keystack) && !s_stack_grow(a))
        return NULL;
    a->keystack[a->stack_n] = key;
    xp_value *item = &a->stack[a->stack_n++];
    *item = (xp_value){.flags = XP__VALUE_IN_ARENA};
    return item;
}

/* Pushes a copy of node item and its key (NULL in an array) on a's
 * stacks. */
static inline bool s_stack_push(s_arena *a, const xp_value *item,
                                const char *key)
{
    xp_value *to = s_stack_next(a, key);
    if (to)
        *to = *item;
    return to != NULL;
}

/* Gives container v the nodes on a's stack above base (popped), side by
 * side in one block of a, with keys (a document's, NULL in an array);
 * false when out of memory. No children: v stays empty. */
static bool s_attach_flat(s_arena *a, xp_value *v, size_t base, char **keys)
{
    size_t n = a->stack_n - base;
    a->stack_n = base;
    if (!n)
        return true;
    struct xp_value_flat *f =
        s_arena_alloc(a, sizeof *f + n * sizeof(xp_value));
    if (!f)
        return false;
    f->keys = keys;
    memcpy(f->items, a->stack + base, n * sizeof(xp_value));
    v->u.flat = f;
    v->n = (uint32_t)n;
    v->flags |= XP__VALUE_FLAT;
    return true;
}

/* A copy in a of the n keys on a's keystack from base; NULL when out of
 * memory. */
static char **s_stack_keys(s_arena *a, size_t base, size_t n)
{
    char **keys = s_arena_alloc(a, n * sizeof *keys);
    /* the keys are never written through (a change copies first) */
    if (keys)
        memcpy((void *)keys, a->keystack + base, n * sizeof *keys);
    return keys;
}

/* s_checked_elements in an arena, without counting the children first:
 * they wait on a's stack until they can be copied side by side (every
 * node, key, string and blob in a: nothing of a failed walk is the
 * heap's). */
static int s_arena_elements(xp_value *v, const uint8_t *doc, int depth,
                            s_arena *a, xp_error_t *err)
{
    size_t base = a->stack_n, pos = 4;
    xp_bson_elem e;
    bool keyed = v->type == XP_TYPE_DOCUMENT;
    int rc = 0;
    while (rc == 0 && xp__bson_next_checked(doc, &pos, &e)) {
        xp_value item = {.flags = XP__VALUE_IN_ARENA};
        const char *key =
            keyed ? s_arena_text(a, (const uint8_t *)e.key, e.key_len) : NULL;
        if (keyed && !key) {
            rc = xp__enomem(err);
            break;
        }
        rc = s_checked_value(&item, &e, depth, a, err);
        if (!s_stack_push(a, &item, key) && rc == 0)
            rc = xp__enomem(err);
    }
    /* attached also after a failure: the row read so far */
    size_t n = a->stack_n - base;
    char **keys = keyed && n ? s_stack_keys(a, base, n) : NULL;
    if ((keyed && n && !keys) || !s_attach_flat(a, v, base, keys)) {
        a->stack_n = base;
        if (rc == 0)
            rc = xp__enomem(err);
    }
    return rc;
}

static int s_checked_elements(xp_value *v, const uint8_t *doc, int depth,
                              s_arena *a, xp_error_t *err)
{
    if (a)
        return s_arena_elements(v, doc, depth, a, err);
    if (!s_reserve(v, xp__bson_count_checked(doc)))
        return xp__enomem(err);
    size_t pos = 4;
    xp_bson_elem e;
    bool keyed = v->type == XP_TYPE_DOCUMENT;
    while (xp__bson_next_checked(doc, &pos, &e)) {
        bool text = e.type == BSON_TYPE_UTF8 && depth < XP_VALUE_MAX_DEPTH;
        size_t slen = text ? s_le32u(e.value) - 1 : 0;
        xp_value *item = s_push_len(v, e.key, e.key_len, text ? slen + 1 : 0);
        if (!item)
            return xp__enomem(err);
        if (text) {
            char *copy = (char *)(item + 1) + (keyed ? e.key_len + 1 : 0);
            s_set_bytes_at(item, XP_TYPE_STRING, e.value + 4, slen, copy, NULL);
        } else if (s_checked_value(item, &e, depth, NULL, err) != 0) {
            return -1;
        }
    }
    return 0;
}

int xp__value_from_iter(xp_value *v, const bson_iter_t *it, xp_error_t *err)
{
    return s_from_iter(v, it, 0, err);
}

int xp__value_from_bson(xp_value *v, const bson_t *doc, xp_error_t *err)
{
    bson_iter_t it;
    if (!bson_iter_init(&it, doc))
        return xp__error(err, XP_DOMAIN_BACKEND, XP_ECORRUPT,
                         "malformed BSON document");
    xp_set_document(v);
    while (bson_iter_next(&it)) {
        xp_value *item =
            s_push_len(v, bson_iter_key(&it), bson_iter_key_len(&it), 0);
        if (!item)
            return xp__enomem(err);
        /* A document's fields are values of their own, as
         * xp__value_to_bson writes them. */
        if (s_from_iter(item, &it, 0, err) != 0)
            return -1;
    }
    return 0;
}

int xp__value_from_checked_bson(xp_value *v, const bson_t *doc, xp_error_t *err)
{
    if (!doc || doc->len < 5)
        return xp__error(err, XP_DOMAIN_BACKEND, XP_ECORRUPT,
                         "malformed BSON document");
    xp_set_document(v);
    /* fields at level 0 each, as in xp__value_from_bson */
    return s_checked_elements(v, bson_get_data(doc), 0, NULL, err);
}

int xp__value_from_checked_bson_in(xp_value *v, const bson_t *doc,
                                   xp_value *owner, xp_error_t *err)
{
    if (!doc || doc->len < 5)
        return xp__error(err, XP_DOMAIN_BACKEND, XP_ECORRUPT,
                         "malformed BSON document");
    xp_set_document(v);
    return s_checked_elements(v, bson_get_data(doc), 0, s_arena_of(owner), err);
}

/* ------------------------------------------------------ rows from bytes
 * History's one pass from a store's unchecked bytes to a row: the walk
 * checks each length, terminator, key and string as xp__bson_check does
 * while it builds the row. It takes only what it can build (the types a
 * value has, nesting below XP_VALUE_MAX_DEPTH, binary without the old
 * subtype); on anything else, or any check failing, it gives up (-1)
 * and its caller reads the record the old way (xp__bson_check, then
 * xp__value_from_checked_bson_in), whose verdict and message stand. So
 * it accepts only what the check accepts and builds what the old way
 * builds (tests/fuzz/fuzz_trial_record.c compares the two). Everything a
 * row holds is the arena's: keys, strings and key arrays that repeat the
 * previous row's at the same place of the walk are shared, not copied. */
typedef struct {
    s_arena *a;
    const uint8_t *data;
    const char *const *names; /* top-level keys to share (static) */
    size_t nnames;
    size_t slot; /* the next place of the walk */
} s_bytes;

/* Whether a[0..n) and b[0..n) are the same bytes: keys and the strings
 * that repeat are short, where memcmp's call is most of its cost. */
static inline bool s_same(const void *a, const void *b, size_t n)
{
    const uint8_t *x = a, *y = b;
    if (n >= 8) {
        uint64_t u, w;
        for (size_t i = 0; i + 8 < n; i += 8) {
            memcpy(&u, x + i, 8);
            memcpy(&w, y + i, 8);
            if (u != w)
                return false;
        }
        /* the last 8 bytes, overlapping the words before them */
        memcpy(&u, x + n - 8, 8);
        memcpy(&w, y + n - 8, 8);
        return u == w;
    }
    if (n >= 4) {
        uint32_t u0, w0, u1, w1;
        memcpy(&u0, x, 4);
        memcpy(&w0, y, 4);
        memcpy(&u1, x + n - 4, 4);
        memcpy(&w1, y + n - 4, 4);
        return u0 == w0 && u1 == w1;
    }
    return n == 0 ||
           (x[0] == y[0] && x[n / 2] == y[n / 2] && x[n - 1] == y[n - 1]);
}

/* The next place's slot; NULL past S_ROW_SLOTS (nothing shared). */
static s_row_slot *s_bytes_slot(s_bytes *r)
{
    size_t i = r->slot++;
    return i < S_ROW_SLOTS ? &r->a->slots[i] : NULL;
}

/* The key of klen bytes at p for a document's child at depth: the slot's
 * or a top-level name when they are the same bytes, else a copy. */
static const char *s_bytes_key(s_bytes *r, const uint8_t *p, size_t klen,
                               int depth)
{
    for (size_t i = 0; depth == 0 && i < r->nnames; i++)
        if (strlen(r->names[i]) == klen && memcmp(r->names[i], p, klen) == 0)
            return r->names[i];
    return s_arena_text(r->a, p, klen);
}

static bool s_bytes_elements(s_bytes *r, xp_value *v, size_t at, size_t size,
                             int depth, s_row_slot *own);

/* The value of element type t at data[pos], room bytes before its
 * document's terminator, into the fresh node item; its size in *size.
 * false: not taken (see above). */
static bool s_bytes_value(s_bytes *r, xp_value *item, uint8_t t, size_t pos,
                          size_t room, int depth, s_row_slot *sl, size_t *size)
{
    const uint8_t *p = r->data + pos;
    int64_t n;
    switch (t) {
    case BSON_TYPE_NULL:
    case BSON_TYPE_UNDEFINED: *size = 0; return true;
    case BSON_TYPE_BOOL:
        if (room < 1 || p[0] > 1)
            return false;
        item->type = XP_TYPE_BOOL;
        item->u.b = p[0] != 0;
        *size = 1;
        return true;
    case BSON_TYPE_INT32:
        if (room < 4)
            return false;
        item->type = XP_TYPE_INT64;
        item->u.i = (int32_t)s_le32u(p);
        *size = 4;
        return true;
    case BSON_TYPE_INT64:
    case BSON_TYPE_DATE_TIME:
    case BSON_TYPE_DOUBLE: {
        if (room < 8)
            return false;
        int64_t x = s_le64(p);
        if (t == BSON_TYPE_DOUBLE) {
            item->type = XP_TYPE_DOUBLE;
            memcpy(&item->u.d, &x, 8);
        } else {
            item->type =
                t == BSON_TYPE_INT64 ? XP_TYPE_INT64 : XP_TYPE_DATETIME;
            item->u.i = x;
        }
        *size = 8;
        return true;
    }
    case BSON_TYPE_UTF8: {
        if (room < 5)
            return false;
        n = (int32_t)s_le32u(p);
        if (n < 1 || (size_t)n > room - 4 || p[4 + n - 1] != 0)
            return false;
        size_t len = (size_t)n - 1;
        const char *text;
        if (sl && sl->str && sl->slen == len && s_same(sl->str, p + 4, len)) {
            text = sl->str;
        } else {
            if (!xp__bson_utf8_valid(p + 4, len) ||
                !(text = s_arena_text(r->a, p + 4, len)))
                return false;
            if (sl && len <= UINT32_MAX) {
                sl->str = text;
                sl->slen = (uint32_t)len;
            }
        }
        item->type = XP_TYPE_STRING;
        item->flags |= XP__VALUE_INLINE;
        item->u.data = (char *)text;
        item->n = (uint32_t)len;
        *size = 4 + (size_t)n;
        return true;
    }
    case BSON_TYPE_BINARY: {
        if (room < 5)
            return false;
        n = (int32_t)s_le32u(p);
        if (n < 0 || (size_t)n > room - 5 ||
            p[4] == BSON_SUBTYPE_BINARY_DEPRECATED)
            return false;
        char *copy = s_arena_text(r->a, p + 5, (size_t)n);
        if (!copy)
            return false;
        item->type = XP_TYPE_BLOB;
        item->flags |= XP__VALUE_INLINE;
        item->u.data = copy;
        item->n = (uint32_t)n;
        *size = 5 + (size_t)n;
        return true;
    }
    case BSON_TYPE_DOCUMENT:
    case BSON_TYPE_ARRAY:
        if (room < 5)
            return false;
        n = (int32_t)s_le32u(p);
        if (n < 5 || (size_t)n > room)
            return false;
        item->type = t == BSON_TYPE_ARRAY ? XP_TYPE_ARRAY : XP_TYPE_DOCUMENT;
        *size = (size_t)n;
        return s_bytes_elements(r, item, pos, (size_t)n, depth + 1, sl);
    default: return false;
    }
}

/* Gives container v (type set) its children from the stack above base;
 * a document shares own's keys array when its keys are the same. */
static bool s_bytes_attach(s_bytes *r, xp_value *v, size_t base,
                           s_row_slot *own)
{
    s_arena *a = r->a;
    size_t n = a->stack_n - base;
    if (!n || v->type != XP_TYPE_DOCUMENT)
        return s_attach_flat(a, v, base, NULL);
    const char **pushed = a->keystack + base;
    char **keys = own && own->keys && own->nkeys == n ? own->keys : NULL;
    for (size_t i = 0; keys && i < n; i++)
        if (keys[i] != pushed[i])
            keys = NULL;
    if (!keys) {
        if (!(keys = s_stack_keys(a, base, n))) {
            a->stack_n = base;
            return false;
        }
        if (own && n <= UINT32_MAX) {
            own->keys = keys;
            own->nkeys = (uint32_t)n;
        }
    }
    return s_attach_flat(a, v, base, keys);
}

/* The elements of the container at data[at, at + size) into v. */
static bool s_bytes_elements(s_bytes *r, xp_value *v, size_t at, size_t size,
                             int depth, s_row_slot *own)
{
    const uint8_t *data = r->data;
    size_t end = at + size, pos = at + 4, base = r->a->stack_n;
    bool keyed = v->type == XP_TYPE_DOCUMENT;
    while (pos < end - 1) {
        uint8_t t = data[pos];
        if (t == 0 || depth >= XP_VALUE_MAX_DEPTH)
            break;
        s_row_slot *sl = s_bytes_slot(r);
        const uint8_t *kp = data + pos + 1;
        size_t room = end - 2 - pos, klen;
        const char *key = NULL;
        if (keyed && sl && sl->key && sl->klen < room &&
            s_same(kp, sl->key, sl->klen + 1)) {
            key = sl->key;
            klen = sl->klen;
        } else {
            const uint8_t *z = memchr(kp, 0, room);
            if (!z)
                break;
            klen = (size_t)(z - kp);
            if (!xp__bson_utf8_valid(kp, klen))
                break;
            if (keyed) {
                if (!(key = s_bytes_key(r, kp, klen, depth)))
                    break;
                if (sl && klen < UINT32_MAX) {
                    sl->key = key;
                    sl->klen = (uint32_t)klen;
                }
            }
        }
        /* a container is built aside (its walk pushes and moves the
         * stack), then copied to its place */
        size_t at_item = r->a->stack_n, vpos = pos + 2 + klen, vsize = 0;
        xp_value *item = s_stack_next(r->a, key);
        if (!item)
            break;
        bool nested = t == BSON_TYPE_DOCUMENT || t == BSON_TYPE_ARRAY;
        xp_value aside = {.flags = XP__VALUE_IN_ARENA};
        if (!s_bytes_value(r, nested ? &aside : item, t, vpos, end - 1 - vpos,
                           depth, sl, &vsize))
            break;
        if (nested)
            r->a->stack[at_item] = aside;
        pos = vpos + vsize;
    }
    bool whole = pos == end - 1 && data[pos] == 0;
    if (!whole) {
        r->a->stack_n = base;
        return false;
    }
    return s_bytes_attach(r, v, base, own);
}

int xp__value_from_bytes_in(xp_value *v, const uint8_t *data, size_t len,
                            xp_value *owner, const char *const *names,
                            size_t nnames)
{
    s_arena *a = s_arena_of(owner);
    if (!a || !data || len < 5 || len > INT32_MAX ||
        s_le32u(data) != (uint32_t)len)
        return -1;
    if (!a->slots && !(a->slots = bson_malloc0(S_ROW_SLOTS * sizeof *a->slots)))
        return -1;
    s_bytes r = {a, data, names, nnames, 0};
    xp__value_clear(v);
    v->type = XP_TYPE_DOCUMENT;
    if (s_bytes_elements(&r, v, 0, len, 0, s_bytes_slot(&r)))
        return 0;
    /* nothing of the walk is on the heap: its nodes stay in the arena */
    xp__value_clear(v);
    return -1;
}

/* ---------------------------------------------------------------- JSON */

/* A double; non-finite ones as extended JSON, or as plain strings with
 * XP_JSON_NONFINITE_STRINGS. */
static void s_append_double(bson_string_t *out, double d, unsigned flags)
{
    if (!isfinite(d)) {
        const char *name = isnan(d) ? "NaN" : d > 0 ? "Infinity" : "-Infinity";
        bson_string_append_printf(out,
                                  flags & XP_JSON_NONFINITE_STRINGS
                                      ? "\"%s\""
                                      : "{ \"$numberDouble\" : \"%s\" }",
                                  name);
        return;
    }
    char buf[40];
    xp__double_text(d, buf);
    bson_string_append(out, buf);
}

/* A leaf other than a double, through libbson's relaxed JSON. */
static char *s_leaf_json(const xp_value *v)
{
    bson_t b = BSON_INITIALIZER;
    char *out = NULL;
    if (xp__value_append_bson(&b, "v", v) == 0) {
        size_t len;
        char *json = bson_as_relaxed_extended_json(&b, &len);
        /* json is `{ "v" : <value> }`: keep <value>. */
        const char *prefix = "{ \"v\" : ";
        size_t plen = strlen(prefix);
        if (json && len >= plen + 2 && strncmp(json, prefix, plen) == 0) {
            size_t vlen = len - plen - 2;
            out = bson_malloc(vlen + 1);
            memcpy(out, json + plen, vlen);
            out[vlen] = '\0';
        }
        bson_free(json);
    }
    bson_destroy(&b);
    return out;
}

/* Printable ASCII other than '"' and '\': what JSON writes as it is. */
static bool s_plain(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c > 0x7e || c == '"' || c == '\\')
            return false;
    }
    return true;
}

/* s (n bytes, NUL after them) as a JSON string, escaped as libbson
 * escapes; false when it is not UTF-8. */
static bool s_append_quoted(bson_string_t *out, const char *s, size_t n)
{
    char *escaped = NULL;
    if (!s_plain(s, n) && !(escaped = bson_utf8_escape_for_json(s, (ssize_t)n)))
        return false;
    bson_string_append_c(out, '"');
    bson_string_append(out, escaped ? escaped : s);
    bson_string_append_c(out, '"');
    bson_free(escaped);
    return true;
}

/* Largest integer a JavaScript number (a double) holds exactly. */
#define S_SAFE_INTEGER 9007199254740991LL

/* "2026-12-02T01:02:03.456Z" for years 0-9999; false for others (the
 * caller falls back to extended JSON). */
static bool s_append_iso_date(bson_string_t *out, int64_t ms)
{
    int64_t secs = ms / 1000, frac = ms % 1000;
    if (frac < 0) {
        frac += 1000;
        secs--;
    }
    time_t t = (time_t)secs;
    struct tm tm;
    if ((int64_t)t != secs || !gmtime_r(&t, &tm) || tm.tm_year < -1900 ||
        tm.tm_year > 9999 - 1900)
        return false;
    bson_string_append_printf(out, "\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\"",
                              tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                              tm.tm_hour, tm.tm_min, tm.tm_sec, (int)frac);
    return true;
}

/* Standard base64 (with padding) of n bytes, quoted. */
static void s_append_base64(bson_string_t *out, const uint8_t *p, size_t n)
{
    static const char digits[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    bson_string_append_c(out, '"');
    for (size_t i = 0; i < n; i += 3) {
        uint32_t w = (uint32_t)p[i] << 16;
        if (i + 1 < n)
            w |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n)
            w |= p[i + 2];
        char quad[5] = {digits[(w >> 18) & 63], digits[(w >> 12) & 63],
                        i + 1 < n ? digits[(w >> 6) & 63] : '=',
                        i + 2 < n ? digits[w & 63] : '=', '\0'};
        bson_string_append(out, quad);
    }
    bson_string_append_c(out, '"');
}

/* Blobs of at most this many bytes keep their bytes under
 * XP_JSON_BRIEF_BLOBS. */
#define S_BRIEF_BLOB_MAX 64

/* A leaf as flags ask: 1 written, 0 when flags change nothing for it,
 * -1 for text that is not UTF-8. The common leaves are written here
 * rather than through a BSON document per leaf (pages have thousands),
 * exactly as libbson's relaxed JSON writes them. */
static int s_leaf_json_ex(bson_string_t *out, const xp_value *v, unsigned flags)
{
    switch (v->type) {
    case XP_TYPE_NULL: bson_string_append(out, "null"); return 1;
    case XP_TYPE_BOOL:
        bson_string_append(out, v->u.b ? "true" : "false");
        return 1;
    case XP_TYPE_STRING:
        return s_append_quoted(out, v->u.data, xp__value_len(v)) ? 1 : -1;
    case XP_TYPE_INT64:
        bson_string_append_printf(
            out,
            (flags & XP_JSON_SAFE_INTEGERS) &&
                    (v->u.i > S_SAFE_INTEGER || v->u.i < -S_SAFE_INTEGER)
                ? "\"%" PRId64 "\""
                : "%" PRId64,
            v->u.i);
        return 1;
    case XP_TYPE_DATETIME:
        return (flags & XP_JSON_ISO_DATES) && s_append_iso_date(out, v->u.i);
    case XP_TYPE_BLOB:
        if (!(flags & XP_JSON_BRIEF_BLOBS))
            return 0;
        if (xp__value_len(v) > S_BRIEF_BLOB_MAX) {
            bson_string_append_printf(out, "{ \"$blob\" : %zu }",
                                      xp__value_len(v));
            return 1;
        }
        bson_string_append(out, "{ \"$binary\" : ");
        s_append_base64(out, (const uint8_t *)v->u.data, xp__value_len(v));
        bson_string_append(out, " }");
        return 1;
    default: return 0;
    }
}

/* Containers are written here, in libbson's layout (`[ 1, 2 ]`,
 * `{ "k" : v }`), so that doubles at any depth get their shortest exact
 * text (libbson prints nested ones with 20 digits). */
static bool s_json(bson_string_t *out, const xp_value *v, unsigned flags)
{
    switch (v->type) {
    case XP_TYPE_DOUBLE: s_append_double(out, v->u.d, flags); return true;
    case XP_TYPE_ARRAY:
    case XP_TYPE_DOCUMENT: {
        bool doc = v->type == XP_TYPE_DOCUMENT;
        size_t n = xp_value_count(v);
        bson_string_append(out, doc ? "{" : "[");
        for (size_t i = 0; i < n; i++) {
            bson_string_append(out, i ? ", " : " ");
            const char *key = doc ? xp_value_key_at(v, i) : NULL;
            if (key && !s_append_quoted(out, key, strlen(key)))
                return false;
            if (key)
                bson_string_append(out, " : ");
            if (!s_json(out, xp_value_at(v, i), flags))
                return false;
        }
        bson_string_append(out, doc ? " }" : " ]");
        return true;
    }
    default: break;
    }
    int done = flags ? s_leaf_json_ex(out, v, flags) : 0;
    if (done)
        return done > 0;
    char *text = s_leaf_json(v);
    if (!text)
        return false;
    bson_string_append(out, text);
    bson_free(text);
    return true;
}

char *xp_value_to_json_ex(const xp_value *v, unsigned flags)
{
    if (!v)
        return NULL;
    bson_string_t *out = bson_string_new(NULL);
    if (!s_json(out, v, flags)) {
        bson_string_free(out, true);
        return NULL;
    }
    return bson_string_free(out, false);
}

char *xp_value_to_json(const xp_value *v)
{
    return xp_value_to_json_ex(v, 0);
}

/* Numbers, shared by JSON and literal text. */

static size_t s_digits(const char *s)
{
    return strspn(s, "0123456789");
}

static const char *s_skip_sign(const char *s)
{
    return s + (*s == '+' || *s == '-');
}

/* Whether text begins as a number does: a digit, after an optional sign
 * and an optional '.'. */
static bool s_starts_like_number(const char *text)
{
    const char *s = s_skip_sign(text);
    s += *s == '.';
    return *s >= '0' && *s <= '9';
}

/* Whether all of text is a number, [+-]D[.D][(e|E)[+-]D] with digits on at
 * least one side of the point (hex, "inf", "nan" and blanks are not);
 * *integral when it has neither point nor exponent. */
static bool s_is_number(const char *text, bool *integral)
{
    const char *s = s_skip_sign(text);
    size_t whole = s_digits(s);
    s += whole;
    bool point = *s == '.';
    size_t frac = point ? s_digits(s + 1) : 0;
    s += point + frac;
    if (whole + frac == 0)
        return false;
    bool exponent = *s == 'e' || *s == 'E';
    if (exponent) {
        s = s_skip_sign(s + 1);
        size_t n = s_digits(s);
        if (n == 0)
            return false;
        s += n;
    }
    *integral = !point && !exponent;
    return *s == '\0';
}

/* Whether the digits before any exponent are all 0. */
static bool s_mantissa_is_zero(const char *s)
{
    for (; *s && *s != 'e' && *s != 'E'; s++)
        if (*s >= '1' && *s <= '9')
            return false;
    return true;
}

/* text, a whole number by s_is_number, into v: int64 without a point or
 * an exponent, else double. What strtod cannot give exactly in range (inf,
 * or 0 or a denormal from text that is not 0) is refused like an integer
 * out of range. */
static int s_set_number(xp_value *v, const char *text, bool integral,
                        xp_error_t *err)
{
    char *end;
    errno = 0;
    if (integral) {
        long long i = strtoll(text, &end, 10);
        if (errno == ERANGE)
            return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                             "integer out of range: %s", text);
        return xp_set_int64(v, i);
    }
    double d = strtod(text, &end);
    if (*end != '\0')
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "malformed number '%s'", text);
    if (isinf(d) ||
        (d == 0 ? !s_mantissa_is_zero(text) : fpclassify(d) == FP_SUBNORMAL))
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "float out of range: %s (the limits are about "
                         "1e-308 and 1.8e308)",
                         text);
    return xp_set_double(v, d);
}

/* The number token of JSON text at s ([-+.0-9eE]*), checked like a literal
 * number; *len its length. A token that is not a number is left to
 * libbson to refuse. */
static int s_check_json_number(const char *s, size_t *len, xp_error_t *err)
{
    *len = strspn(s, "0123456789+-.eE");
    char *token = bson_strndup(s, *len);
    bool integral;
    xp_value tmp = {0};
    int rc = s_is_number(token, &integral)
                 ? s_set_number(&tmp, token, integral, err)
                 : 0;
    bson_free(token);
    return rc;
}

/* Checks every number of JSON text outside strings: libbson wraps
 * integers past 2^64 (99999999999999999999 reads as 7766279631452241919)
 * and reads 1e-400 as 0 without a word. */
static int s_check_json_numbers(const char *s, xp_error_t *err)
{
    bool in_string = false;
    while (*s) {
        size_t len = 1;
        if (in_string && *s == '\\')
            len = s[1] ? 2 : 1;
        else if (*s == '"')
            in_string = !in_string;
        else if (!in_string && (*s == '-' || (*s >= '0' && *s <= '9')) &&
                 s_check_json_number(s, &len, err) != 0)
            return -1;
        s += len;
    }
    return 0;
}

int xp_value_from_json(xp_value *v, const char *json, xp_error_t *err)
{
    if (!v || !json)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL, "no JSON given");
    if (s_check_json_numbers(json, err) != 0)
        return -1;
    size_t len = strlen(json);
    char *wrapped = bson_malloc(len + 16);
    memcpy(wrapped, "{\"v\":", 5);
    memcpy(wrapped + 5, json, len);
    memcpy(wrapped + 5 + len, "\n}", 3);
    bson_t b;
    bson_error_t berr;
    bool ok = bson_init_from_json(&b, wrapped, -1, &berr);
    bson_free(wrapped);
    if (!ok)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL, "invalid JSON: %s",
                         berr.message);
    bson_iter_t it;
    int rc;
    /* Exactly one element named v: `1, "w": 2` must not sneak through. */
    if (!bson_iter_init(&it, &b) || !bson_iter_next(&it) ||
        strcmp(bson_iter_key(&it), "v") != 0 || bson_count_keys(&b) != 1) {
        rc = xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                       "invalid JSON: expected exactly one value");
    } else {
        xp_value tmp = {0};
        rc = s_from_iter(&tmp, &it, 0, err);
        if (rc == 0) {
            xp__value_clear(v);
            s_move_into(v, &tmp);
        } else {
            xp__value_clear(&tmp);
        }
    }
    bson_destroy(&b);
    return rc;
}

/* ---------------------------------------------------------------- literals */

static bool s_is_blank(char c)
{
    return c != '\0' && strchr(" \t\n\v\f\r", c) != NULL;
}

int xp_value_parse_literal(xp_value *v, const char *text, xp_error_t *err)
{
    if (!v || !text || !*text)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL, "empty value");
    if (strcmp(text, "true") == 0 || strcmp(text, "false") == 0)
        return xp_set_bool(v, text[0] == 't');
    if (strcmp(text, "null") == 0)
        return xp_set_null(v);
    if (strchr("\"[{", text[0]))
        return xp_value_from_json(v, text, err);
    if (text[0] == '=')
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "malformed value '%s': it starts with '='", text);
    /* Blanks at either end: the exact text, never a number strtod would
     * read past them. */
    bool blank_ends = s_is_blank(text[0]) || s_is_blank(text[strlen(text) - 1]);
    if (!blank_ends && s_starts_like_number(text)) {
        bool integral;
        if (!s_is_number(text, &integral))
            return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                             "malformed number '%s' (quote it for a "
                             "string: '\"%s\"')",
                             text, text);
        return s_set_number(v, text, integral, err);
    }
    if (xp_set_string(v, text) != 0)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "value is not valid UTF-8");
    return 0;
}

char *xp_value_to_text(const xp_value *v)
{
    if (!v)
        return NULL;
    bson_t b = BSON_INITIALIZER;
    char *text = NULL;
    if (v->type == XP_TYPE_DOCUMENT) {
        if (xp__value_to_bson(v, &b) == 0)
            text = xp__render_text(&b);
    } else if (xp__value_append_bson(&b, "value", v) == 0) {
        text = xp__render_text(&b);
    }
    bson_destroy(&b);
    return text;
}
