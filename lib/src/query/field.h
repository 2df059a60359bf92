/* query/field.h — what a query names and compares: a field of the stored
 * trial record or a parameter, as a path into the document; its lookup;
 * literals; and MongoDB's order of BSON values (type classes, then
 * values), both as a comparison and as a memcmp-comparable key. */
#ifndef XP_QUERY_FIELD_H
#define XP_QUERY_FIELD_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Segments of a path ("parameters.opt.lr" has 3). */
#define XP_FIELD_MAX_SEGMENTS 16

/* A path into the stored trial document. */
typedef struct {
    char *path;    /* dotted, as sent to MongoDB: "parameters.a" (owned) */
    bool datetime; /* started or finished: string literals are dates */
    int nseg;
    uint16_t seg_off[XP_FIELD_MAX_SEGMENTS], seg_len[XP_FIELD_MAX_SEGMENTS];
} xp_field;

/* Length of the field name at s[0..len): [A-Za-z_][A-Za-z0-9_-]* then
 * any number of '.' [A-Za-z0-9_-]+; 0 when s does not start one. *bad is
 * the offset of a '.' not followed by a name (else SIZE_MAX). */
size_t xp__field_name_len(const char *s, size_t len, size_t *bad);

/* Resolves a name as typed, name[0..len) (segments checked by the
 * caller's tokenizer): a record field (trial_id, status, ... and `id`),
 * `parameters.X` / `params.X`, else a parameter. NULL on success, else
 * what is wrong (static text). */
const char *xp__field_init(xp_field *f, const char *name, size_t len);
void xp__field_clear(xp_field *f);

/* Finds f in doc (NULL: a damaged record, where nothing is found); false
 * when absent. */
bool xp__field_find(const xp_field *f, const bson_t *doc, bson_iter_t *out);

/* A set of fields looked up together in each document: one walk of each
 * level of the document finds all of them, with the result of
 * xp__field_find for each (the first element of a name at each level). */
typedef struct xp_field_plan xp_field_plan;

/* Caller owns result (xp__field_plan_destroy). */
xp_field_plan *xp__field_plan_new(void);
/* NULL-safe; NULLs *p. */
void xp__field_plan_destroy(xp_field_plan **p);
/* Adds f (which must outlive p); its slot, shared by fields of the same
 * path. */
uint32_t xp__field_plan_add(xp_field_plan *p, const xp_field *f);
/* Looks every field of p up in doc (NULL: a damaged record, where nothing
 * is found). */
void xp__field_plan_find(xp_field_plan *p, const bson_t *doc);
/* The value of slot found by the last xp__field_plan_find, NULL when
 * absent (valid while that document lives). */
const bson_iter_t *xp__field_plan_value(const xp_field_plan *p, uint32_t slot);

/* Slots of p, and the field first added at each (NULL past the last). */
uint32_t xp__field_plan_slots(const xp_field_plan *p);
const xp_field *xp__field_plan_field(const xp_field_plan *p, uint32_t slot);

typedef struct xp_bytes xp_bytes;

/* MongoDB's order of type classes (missing and null first). */
typedef enum {
    XP_CLASS_NULL = 1,
    XP_CLASS_NUMBER,
    XP_CLASS_STRING,
    XP_CLASS_DOCUMENT,
    XP_CLASS_ARRAY,
    XP_CLASS_BLOB,
    XP_CLASS_BOOL,
    XP_CLASS_DATETIME,
    XP_CLASS_OTHER,
} xp_value_class;

/* Class of the value at it (NULL: missing). */
xp_value_class xp__field_class(const bson_iter_t *it);

/* A literal of the filter language. */
typedef enum {
    XP_LIT_NULL,
    XP_LIT_INT,
    XP_LIT_DOUBLE,
    XP_LIT_STRING,
    XP_LIT_BOOL,
    XP_LIT_DATETIME, /* ms since the epoch, from an ISO-8601 string */
} xp_literal_kind;

typedef struct {
    xp_literal_kind kind;
    bool b;
    int64_t i; /* INT, DATETIME */
    double d;
    char *s; /* STRING (owned, NUL-terminated, may hold NULs) */
    uint32_t len;
} xp_literal;

xp_value_class xp__literal_class(const xp_literal *lit);
/* Appends lit to out under key (MongoDB's form: dates as BSON dates). */
void xp__literal_append(bson_t *out, const char *key, const xp_literal *lit);

/* Compares the value at it (NULL: missing) with lit: false when their
 * classes differ (or a NaN is involved), else *cmp < 0, 0 or > 0. */
bool xp__field_compare(const bson_iter_t *it, const xp_literal *lit, int *cmp);

/* ISO-8601 date or date-time in s[0..len) to ms since the epoch:
 * YYYY-MM-DD, then optionally T (or a space) HH:MM[:SS[.fraction]] and
 * Z or +HH:MM / -HH:MM (none: UTC). False when malformed. */
bool xp__field_parse_date(const char *s, size_t len, int64_t *ms);

/* A growing byte string (bson_malloc'd). */
struct xp_bytes {
    uint8_t *data;
    size_t len, cap;
};

void xp__bytes_clear(xp_bytes *b);

/* Appends the sort key of the value at it (NULL: missing) to out:
 * bytes that memcmp in MongoDB's order of BSON values, a class byte then
 * an order-preserving encoding (numbers as doubles, so integers beyond
 * 2^53 compare as their nearest double); each key is prefix-free, so keys
 * concatenate, and with descending its bytes are complemented. */
void xp__field_key(const bson_iter_t *it, bool descending, xp_bytes *out);

/* Bytes of a document, an array or a binary value that its sort key
 * orders by (the rest ties). */
#define XP_KEY_BYTES_MAX 1024

/* A value as filters and sort keys read it: everything they compare is
 * here, so two equal scalars answer every comparison alike (the
 * projection cache keeps each distinct one once). */
typedef struct {
    uint8_t type; /* bson_type_t; BSON_TYPE_EOD: missing */
    bool b;
    int64_t i;           /* int32 and int64 (as int64), date-time */
    double d;            /* double */
    const uint8_t *data; /* a string's bytes (no NUL); the bytes after a
                          * document's or array's length and a binary's
                          * payload, at most XP_KEY_BYTES_MAX */
    uint32_t len;
} xp_scalar;

/* The scalar of the value at it (NULL: missing); data points into it. */
void xp__scalar_of(const bson_iter_t *it, xp_scalar *out);
xp_value_class xp__scalar_class(const xp_scalar *v);
/* xp__field_compare and xp__field_key over a scalar. */
bool xp__scalar_compare(const xp_scalar *v, const xp_literal *lit, int *cmp);
void xp__scalar_key(const xp_scalar *v, bool descending, xp_bytes *out);

#endif /* XP_QUERY_FIELD_H */
