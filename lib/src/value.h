/* value.h — the layout of xp_value and its BSON encoding (the
 * only place a value becomes bytes and back). */
#ifndef XP_VALUE_H
#define XP_VALUE_H

#include "xp/xp.h"

#include <bson/bson.h>
#include <string.h>

/* A node is 16 bytes: a history's 100,000 rows are ~3 M of them, and
 * the fresh memory they take (the kernel's page faults) was the largest
 * cost of reading them. */
struct xp_value {
    uint8_t type;  /* xp_type */
    uint8_t flags; /* XP__VALUE_* */
    uint16_t spare;
    /* a container's children; a string's or blob's bytes, or UINT32_MAX
     * with XP__VALUE_LONG (the length then in the size_t before data) */
    uint32_t n;
    union {
        bool b;
        int64_t i; /* int64 and datetime */
        double d;
        char *data;                 /* NUL-terminated for strings */
        struct xp_value_kids *kids; /* a container's children, or NULL */
        struct xp_value_flat *flat; /* the same with XP__VALUE_FLAT */
    } u;
};

enum {
    XP__VALUE_INLINE = 1,     /* u.data is not the heap's: never freed */
    XP__VALUE_IN_ARENA = 2,   /* the node is an arena's (never freed alone) */
    XP__VALUE_FLAT = 4,       /* u.flat: the children side by side */
    XP__VALUE_OWNS_ARENA = 8, /* an arena follows this node in its block */
    XP__VALUE_LONG = 16,      /* see n */
};

/* A container's children on the heap: cap pointers to them, then (in a
 * document) cap pointers to their keys. */
struct xp_value_kids {
    size_t cap;
    xp_value *items[];
};

/* Children built in an arena (a history's rows): the nodes themselves
 * side by side, and a document's keys (NULL in an array), which rows
 * may share (never written through: a change copies first). A child
 * added converts the container to xp_value_kids pointing at them, so
 * the nodes never move. */
struct xp_value_flat {
    char **keys;
    xp_value items[];
};

/* Child i (< v->n) of container v. */
static inline xp_value *xp__value_child(const xp_value *v, size_t i)
{
    return v->flags & XP__VALUE_FLAT ? &v->u.flat->items[i]
                                     : v->u.kids->items[i];
}

/* The key of child i (< v->n) of document v. */
static inline const char *xp__value_key(const xp_value *v, size_t i)
{
    if (v->flags & XP__VALUE_FLAT)
        return v->u.flat->keys[i];
    return ((char *const *)(void *)(v->u.kids->items + v->u.kids->cap))[i];
}

/* The bytes of string or blob v. */
static inline size_t xp__value_len(const xp_value *v)
{
    size_t len = v->n;
    if (v->flags & XP__VALUE_LONG)
        memcpy(&len, v->u.data - sizeof len, sizeof len);
    return len;
}

/* Resets v to null, releasing its content. */
void xp__value_clear(xp_value *v);
/* Appends v under key to b. 0 or -1 (allocation / nesting deeper than
 * 100 levels, which the readers would refuse). */
int xp__value_append_bson(bson_t *b, const char *key, const xp_value *v);
/* The same, failing with XP_EINVAL "<what> nested deeper than N
 * levels" or "<what> is too large to store". b is then incomplete. */
int xp__value_append_checked(bson_t *b, const char *key, const xp_value *v,
                             const char *what, xp_error_t *err);
/* Reads the element at it into v (replacing its content). Unsupported
 * BSON types are an XP_ECORRUPT error. */
int xp__value_from_iter(xp_value *v, const bson_iter_t *it, xp_error_t *err);
/* Reads a whole BSON document into v as a document. */
int xp__value_from_bson(xp_value *v, const bson_t *doc, xp_error_t *err);
/* The same for a checked document (xp__bson_view_checked): its strings
 * are not validated as UTF-8 a second time. */
int xp__value_from_checked_bson(xp_value *v, const bson_t *doc,
                                xp_error_t *err);
/* A fresh empty array whose children (and all below them) that
 * xp_array_append and xp__value_from_checked_bson_in build are allocated
 * from large blocks it owns, freed with it at once. Its rows behave as
 * any value (they may be changed; what they gain is heap-owned). Caller
 * owns the result (xp_value_destroy); NULL when out of memory. */
xp_value *xp__value_arena_array(void);
/* xp__value_from_checked_bson into v, a fresh null child appended to
 * owner (an xp__value_arena_array), with every node in owner's arena. */
int xp__value_from_checked_bson_in(xp_value *v, const bson_t *doc,
                                   xp_value *owner, xp_error_t *err);
/* History's one pass from untrusted bytes to a row: reads data[0..len)
 * into v, a fresh null child appended to owner (an
 * xp__value_arena_array), checking the bytes as it goes, when they pass
 * xp__bson_check and hold only what it reads without doubt (the value
 * types, nesting below 100 levels); then 0 and v is what
 * xp__value_from_checked_bson_in builds. Otherwise -1 and v null: read
 * the record the checked way for the verdict and its message. Top-level
 * keys equal to one of names[0..nnames) (static strings) point to it;
 * keys, strings and key arrays equal to the previous row's at the same
 * place are shared with it. */
int xp__value_from_bytes_in(xp_value *v, const uint8_t *data, size_t len,
                            xp_value *owner, const char *const *names,
                            size_t nnames);
/* Writes document/array v into an initialised bson_t (its elements). */
int xp__value_to_bson(const xp_value *v, bson_t *out);

#endif /* XP_VALUE_H */
