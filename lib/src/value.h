/* value.h — the layout of xp_value and its BSON encoding (the
 * only place a value becomes bytes and back). */
#ifndef XP_VALUE_H
#define XP_VALUE_H

#include "xp/xp.h"

#include <bson/bson.h>

struct xp_value {
    xp_type type;
    bool inline_bytes; /* u.s.data lives in this node's own block */
    /* Arena-built nodes (a history's rows, xp__value_arena_array): */
    bool in_arena;     /* this node's block is an arena's (never freed alone) */
    bool arena_arrays; /* u.c.items/keys are an arena's: copied to grow */
    bool owns_arena;   /* an s_arena follows this node in its block */
    union {
        bool b;
        int64_t i; /* int64 and datetime */
        double d;
        struct {
            char *data; /* NUL-terminated for strings */
            size_t len;
        } s;
        struct {
            xp_value **items;
            char **keys; /* documents only */
            /* 32 bits: a node of 32 bytes, not 40 (a history's rows are
             * ~30 nodes each); a container grows to 2^31 children */
            uint32_t n, cap;
        } c;
    } u;
};

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
