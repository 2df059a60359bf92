/* query/field.c — fields, literals and the order of values that the
 * filter language and sort keys share: MongoDB's rules (numbers across
 * int and double, strings bytewise, classes in BSON order), so that the
 * local store, Redis and MongoDB answer a query alike. */
#include "query/field.h"

#include "store/record.h"

#include <math.h>
#include <string.h>

/* ---------------------------------------------------------------- fields */

/* Record fields a bare name means; the rest are parameters. */
static const char *const s_record_fields[] = {
    XP_RECORD_TRIAL_ID,     XP_RECORD_STATUS,
    XP_RECORD_SUCCESS,      XP_RECORD_RESULT,
    XP_RECORD_RESULT_TYPE,  XP_RECORD_SEED,
    XP_RECORD_STARTED,      XP_RECORD_FINISHED,
    XP_RECORD_PROCESS_TIME, XP_RECORD_DESCRIPTION,
    XP_RECORD_HOST,         XP_RECORD_PID,
    XP_RECORD_CODE_HASH,    XP_RECORD_ENVIRONMENT_HASH,
};

static bool s_is(const char *s, size_t len, const char *word)
{
    return strlen(word) == len && memcmp(s, word, len) == 0;
}

static bool s_is_record_field(const char *s, size_t len)
{
    for (size_t i = 0; i < sizeof s_record_fields / sizeof *s_record_fields;
         i++)
        if (s_is(s, len, s_record_fields[i]))
            return true;
    return false;
}

static bool s_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '-';
}

size_t xp__field_name_len(const char *s, size_t len, size_t *bad)
{
    *bad = SIZE_MAX;
    if (len == 0 || !s_name_char(s[0]) || s[0] == '-' ||
        (s[0] >= '0' && s[0] <= '9'))
        return 0;
    size_t n = 1;
    for (;;) {
        while (n < len && s_name_char(s[n]))
            n++;
        if (n == len || s[n] != '.')
            return n;
        if (n + 1 == len || !s_name_char(s[n + 1])) {
            *bad = n;
            return n;
        }
        n++;
    }
}

/* Splits f->path at its dots. */
static const char *s_split(xp_field *f)
{
    const char *p = f->path;
    f->nseg = 0;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (f->nseg == XP_FIELD_MAX_SEGMENTS)
            return "a path of more than 16 names";
        if (n == 0 || n > UINT16_MAX)
            return "an empty name in a path";
        f->seg_off[f->nseg] = (uint16_t)(p - f->path);
        f->seg_len[f->nseg] = (uint16_t)n;
        f->nseg++;
        if (!dot)
            return NULL;
        p = dot + 1;
    }
}

const char *xp__field_init(xp_field *f, const char *name, size_t len)
{
    memset(f, 0, sizeof *f);
    if (len > 4096)
        return "a name longer than 4096 bytes";
    const char *dot = memchr(name, '.', len);
    size_t first = dot ? (size_t)(dot - name) : len;
    const char *rest = name + first; /* "" or ".x..." */
    size_t rest_len = len - first;
    if (s_is(name, first, "parameters") || s_is(name, first, "params")) {
        if (rest_len == 0)
            return "'parameters' needs a parameter name ('parameters.NAME')";
        f->path = bson_strdup_printf(XP_RECORD_PARAMETERS "%.*s", (int)rest_len,
                                     rest);
    } else if (s_is(name, first, "id")) {
        f->path =
            bson_strdup_printf(XP_RECORD_TRIAL_ID "%.*s", (int)rest_len, rest);
    } else if (s_is_record_field(name, first)) {
        f->path = bson_strndup(name, len);
        f->datetime = rest_len == 0 && (s_is(name, first, XP_RECORD_STARTED) ||
                                        s_is(name, first, XP_RECORD_FINISHED));
    } else {
        f->path =
            bson_strdup_printf(XP_RECORD_PARAMETERS ".%.*s", (int)len, name);
    }
    const char *why = s_split(f);
    if (why)
        xp__field_clear(f);
    return why;
}

void xp__field_clear(xp_field *f)
{
    bson_free(f->path);
    f->path = NULL;
    f->nseg = 0;
}

/* Moves it to key[0..len) among the rest of its document. */
static bool s_find_key(bson_iter_t *it, const char *key, size_t len)
{
    while (bson_iter_next(it)) {
        if (bson_iter_key_len(it) == len &&
            memcmp(bson_iter_key(it), key, len) == 0)
            return true;
    }
    return false;
}

bool xp__field_find(const xp_field *f, const bson_t *doc, bson_iter_t *out)
{
    if (!doc || !bson_iter_init(out, doc))
        return false;
    for (int i = 0; i < f->nseg; i++) {
        if (i > 0) {
            bson_iter_t child;
            if (!(BSON_ITER_HOLDS_DOCUMENT(out) ||
                  BSON_ITER_HOLDS_ARRAY(out)) ||
                !bson_iter_recurse(out, &child))
                return false;
            *out = child;
        }
        if (!s_find_key(out, f->path + f->seg_off[i], f->seg_len[i]))
            return false;
    }
    return true;
}

/* ---------------------------------------------------------------- plans
 * A trie of the fields' segments: node 0 is the document, each other node
 * a name under its parent, with the slot of the field that ends there. */

#define S_NONE UINT32_MAX

typedef struct {
    const char *name;
    uint32_t len;
    uint32_t slot;        /* S_NONE: no field ends here */
    uint32_t first_child; /* S_NONE: a leaf */
    uint32_t next;        /* next sibling, S_NONE: the last */
    uint32_t n_children;
    uint64_t taken; /* the walk that matched it last */
} s_plan_node;

/* A found value: bson_iter_t asks for 128-byte alignment but is 80
 * bytes, so an array of them is misaligned unless padded. */
typedef struct {
    _Alignas(128) bson_iter_t it;
} s_plan_value;

struct xp_field_plan {
    s_plan_node *nodes;
    uint32_t n_nodes, cap_nodes;
    s_plan_value *values;   /* by slot */
    uint64_t *found;        /* by slot: the walk that found it */
    const xp_field **field; /* by slot: the first field added there */
    uint32_t n_slots, cap_slots;
    uint64_t walk; /* walks so far */
};

xp_field_plan *xp__field_plan_new(void)
{
    xp_field_plan *p = bson_malloc0(sizeof *p);
    p->cap_nodes = 8;
    p->nodes = bson_malloc0(p->cap_nodes * sizeof *p->nodes);
    p->nodes[0] =
        (s_plan_node){.slot = S_NONE, .first_child = S_NONE, .next = S_NONE};
    p->n_nodes = 1;
    return p;
}

void xp__field_plan_destroy(xp_field_plan **pp)
{
    if (!pp || !*pp)
        return;
    bson_free((*pp)->nodes);
    bson_free((*pp)->values);
    bson_free((*pp)->found);
    bson_free((*pp)->field);
    bson_free(*pp);
    *pp = NULL;
}

/* The child of parent named name[0..len), added when absent. */
static uint32_t s_plan_child(xp_field_plan *p, uint32_t parent,
                             const char *name, uint32_t len)
{
    for (uint32_t c = p->nodes[parent].first_child; c != S_NONE;
         c = p->nodes[c].next)
        if (p->nodes[c].len == len && memcmp(p->nodes[c].name, name, len) == 0)
            return c;
    if (p->n_nodes == p->cap_nodes) {
        p->cap_nodes *= 2;
        p->nodes = bson_realloc(p->nodes, p->cap_nodes * sizeof *p->nodes);
    }
    uint32_t c = p->n_nodes++;
    p->nodes[c] = (s_plan_node){.name = name,
                                .len = len,
                                .slot = S_NONE,
                                .first_child = S_NONE,
                                .next = p->nodes[parent].first_child};
    p->nodes[parent].first_child = c;
    p->nodes[parent].n_children++;
    return c;
}

uint32_t xp__field_plan_add(xp_field_plan *p, const xp_field *f)
{
    uint32_t node = 0;
    for (int i = 0; i < f->nseg; i++)
        node = s_plan_child(p, node, f->path + f->seg_off[i], f->seg_len[i]);
    if (p->nodes[node].slot != S_NONE)
        return p->nodes[node].slot;
    if (p->n_slots == p->cap_slots) {
        p->cap_slots = p->cap_slots ? p->cap_slots * 2 : 8;
        s_plan_value *values = bson_aligned_alloc(
            BSON_ALIGNOF(s_plan_value), p->cap_slots * sizeof *values);
        if (p->n_slots)
            memcpy(values, p->values, p->n_slots * sizeof *values);
        bson_free(p->values);
        p->values = values;
        p->found = bson_realloc(p->found, p->cap_slots * sizeof *p->found);
        p->field = bson_realloc(p->field, p->cap_slots * sizeof *p->field);
    }
    p->found[p->n_slots] = 0;
    p->field[p->n_slots] = f;
    p->nodes[node].slot = p->n_slots;
    return p->n_slots++;
}

/* The child of parent named key[0..len) that no earlier element of this
 * walk took; S_NONE when none. */
static uint32_t s_plan_match(xp_field_plan *p, uint32_t parent, const char *key,
                             uint32_t len)
{
    for (uint32_t c = p->nodes[parent].first_child; c != S_NONE;
         c = p->nodes[c].next) {
        s_plan_node *n = &p->nodes[c];
        if (n->len == len && n->name[0] == key[0] &&
            n->name[len - 1] == key[len - 1] && n->taken != p->walk &&
            memcmp(n->name, key, len) == 0)
            return c;
    }
    return S_NONE;
}

/* One level of a document: its bytes (a length, elements, a NUL). */
typedef struct {
    const uint8_t *data;
    uint32_t len;
} s_level;

/* An element of a level, read as bson_iter_next reads it. */
typedef struct {
    uint32_t off;     /* its type byte */
    uint32_t key_len; /* the key is at off + 1 */
    uint32_t value;   /* offset of its value */
    uint32_t next;    /* offset of the next element */
} s_elem;

static uint32_t s_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

typedef enum { S_ELEM_END, S_ELEM_OK, S_ELEM_OTHER } s_elem_rc;

/* Reads the element at e->off with the checks of libbson's bson_iter_next
 * for the common types: S_ELEM_END where bson_iter_next stops (the end, or
 * damaged bytes), S_ELEM_OTHER for the other types (binary, regex, ...),
 * left to libbson. */
static s_elem_rc s_elem_read(const s_level *lv, s_elem *e)
{
    const uint8_t *d = lv->data;
    uint32_t len = lv->len, o = e->off + 1;
    const uint8_t *nul = o < len ? memchr(d + o, 0, len - o) : NULL;
    if (!nul)
        return S_ELEM_END;
    o = (uint32_t)(nul - d);
    e->key_len = o - e->off - 1;
    e->value = ++o;
    switch (d[e->off]) {
    case BSON_TYPE_DOUBLE:
    case BSON_TYPE_DATE_TIME:
    case BSON_TYPE_INT64:
    case BSON_TYPE_TIMESTAMP: e->next = o + 8; break;
    case BSON_TYPE_INT32: e->next = o + 4; break;
    case BSON_TYPE_OID: e->next = o + 12; break;
    case BSON_TYPE_DECIMAL128: e->next = o + 16; break;
    case BSON_TYPE_NULL:
    case BSON_TYPE_UNDEFINED:
    case BSON_TYPE_MAXKEY:
    case BSON_TYPE_MINKEY: e->next = o; break;
    case BSON_TYPE_BOOL:
        if (o >= len || d[o] > 1)
            return S_ELEM_END;
        e->next = o + 1;
        break;
    case BSON_TYPE_UTF8:
    case BSON_TYPE_CODE:
    case BSON_TYPE_SYMBOL: {
        if (o + 4 >= len)
            return S_ELEM_END;
        uint32_t l = s_le32(d + o);
        if (l > len - (o + 4) || l == 0 || o + 4 + l >= len ||
            d[o + 4 + l - 1] != 0)
            return S_ELEM_END;
        e->next = o + 4 + l;
        break;
    }
    case BSON_TYPE_DOCUMENT:
    case BSON_TYPE_ARRAY: {
        if (o >= len - 4)
            return S_ELEM_END;
        uint32_t l = s_le32(d + o);
        if (l > len || l > len - o)
            return S_ELEM_END;
        e->next = o + l;
        break;
    }
    case BSON_TYPE_EOD: return S_ELEM_END;
    default: return S_ELEM_OTHER;
    }
    return e->next < len ? S_ELEM_OK : S_ELEM_END;
}

static void s_plan_walk(xp_field_plan *p, uint32_t parent, const s_level *lv);

/* The element e names child c, now taken by this walk: false when
 * nothing of it is kept (no slot, and no level under it the plan walks)
 * or libbson does not open it; else *it at e, and *parent whether the
 * plan has fields under it (a document or an array). */
static bool s_take_open(xp_field_plan *p, uint32_t c, const s_level *lv,
                        const s_elem *e, bson_iter_t *it, bool *parent)
{
    s_plan_node *n = &p->nodes[c];
    n->taken = p->walk;
    uint8_t type = lv->data[e->off];
    *parent = n->first_child != S_NONE &&
              (type == BSON_TYPE_DOCUMENT || type == BSON_TYPE_ARRAY);
    if (n->slot == S_NONE && !*parent)
        return false;
    return bson_iter_init_from_data_at_offset(it, lv->data, lv->len, e->off,
                                              e->key_len);
}

/* The element e names child c: its value is kept, and the level under it
 * walked when libbson opens it (bson_iter_recurse decides, as in
 * xp__field_find). */
static void s_plan_take(xp_field_plan *p, uint32_t c, const s_level *lv,
                        const s_elem *e)
{
    s_plan_node *n = &p->nodes[c];
    bson_iter_t it, child;
    bool parent;
    if (!s_take_open(p, c, lv, e, &it, &parent))
        return;
    if (n->slot != S_NONE) {
        p->values[n->slot].it = it;
        p->found[n->slot] = p->walk;
    }
    if (parent && bson_iter_recurse(&it, &child)) {
        s_level under = {lv->data + e->value, s_le32(lv->data + e->value)};
        s_plan_walk(p, c, &under);
    }
}

/* An element of a type s_elem_read leaves to libbson: false where
 * bson_iter_next stops; e->next 0 when it is the last. */
static bool s_elem_read_other(const s_level *lv, s_elem *e)
{
    bson_iter_t it;
    if (!bson_iter_init_from_data_at_offset(&it, lv->data, lv->len, e->off,
                                            e->key_len))
        return false;
    e->next = bson_iter_next(&it) ? bson_iter_offset(&it) : 0;
    return true;
}

/* Walks the elements of one level until every child of parent is taken:
 * recursion as deep as the longest path (XP_FIELD_MAX_SEGMENTS). */
static void s_plan_walk(xp_field_plan *p, uint32_t parent, const s_level *lv)
{
    uint32_t pending = p->nodes[parent].n_children;
    s_elem e = {.off = 4};
    while (pending > 0) {
        s_elem_rc rc = s_elem_read(lv, &e);
        if (rc == S_ELEM_END ||
            (rc == S_ELEM_OTHER && !s_elem_read_other(lv, &e)))
            return;
        uint32_t c = s_plan_match(p, parent, (const char *)lv->data + e.off + 1,
                                  e.key_len);
        if (c != S_NONE) {
            s_plan_take(p, c, lv, &e);
            pending--;
        }
        if (e.next == 0)
            return;
        e.off = e.next;
    }
}

void xp__field_plan_find(xp_field_plan *p, const bson_t *doc)
{
    p->walk++;
    if (!doc || doc->len < 5)
        return;
    s_level top = {bson_get_data(doc), doc->len};
    s_plan_walk(p, 0, &top);
}

const bson_iter_t *xp__field_plan_value(const xp_field_plan *p, uint32_t slot)
{
    return p->found[slot] == p->walk ? &p->values[slot].it : NULL;
}

uint32_t xp__field_plan_slots(const xp_field_plan *p)
{
    return p->n_slots;
}

const xp_field *xp__field_plan_field(const xp_field_plan *p, uint32_t slot)
{
    return slot < p->n_slots ? p->field[slot] : NULL;
}

/* ---------------------------------------------------------------- classes */

static xp_value_class s_type_class(uint8_t type)
{
    switch (type) {
    case BSON_TYPE_EOD: /* missing */
    case BSON_TYPE_NULL:
    case BSON_TYPE_UNDEFINED: return XP_CLASS_NULL;
    case BSON_TYPE_INT32:
    case BSON_TYPE_INT64:
    case BSON_TYPE_DOUBLE: return XP_CLASS_NUMBER;
    case BSON_TYPE_UTF8: return XP_CLASS_STRING;
    case BSON_TYPE_DOCUMENT: return XP_CLASS_DOCUMENT;
    case BSON_TYPE_ARRAY: return XP_CLASS_ARRAY;
    case BSON_TYPE_BINARY: return XP_CLASS_BLOB;
    case BSON_TYPE_BOOL: return XP_CLASS_BOOL;
    case BSON_TYPE_DATE_TIME: return XP_CLASS_DATETIME;
    default: return XP_CLASS_OTHER;
    }
}

xp_value_class xp__field_class(const bson_iter_t *it)
{
    return it ? s_type_class((uint8_t)bson_iter_type(it)) : XP_CLASS_NULL;
}

xp_value_class xp__scalar_class(const xp_scalar *v)
{
    return s_type_class(v->type);
}

/* Bytes of a container's or binary's value that keys order by. */
static uint32_t s_key_bytes(uint32_t len)
{
    return len < XP_KEY_BYTES_MAX ? len : XP_KEY_BYTES_MAX;
}

void xp__scalar_of(const bson_iter_t *it, xp_scalar *out)
{
    *out = (xp_scalar){.type = it ? (uint8_t)bson_iter_type(it) : 0};
    uint32_t len = 0;
    const uint8_t *data = NULL;
    switch (xp__scalar_class(out)) {
    case XP_CLASS_NUMBER:
        if (out->type == BSON_TYPE_DOUBLE)
            out->d = bson_iter_double(it);
        else
            out->i = bson_iter_as_int64(it);
        break;
    case XP_CLASS_STRING:
        out->data = (const uint8_t *)bson_iter_utf8(it, &out->len);
        break;
    case XP_CLASS_DOCUMENT:
    case XP_CLASS_ARRAY:
        if (out->type == BSON_TYPE_DOCUMENT)
            bson_iter_document(it, &len, &data);
        else
            bson_iter_array(it, &len, &data);
        /* after the length */
        len = len > 4 ? len - 4 : 0;
        out->data = data ? data + 4 : NULL;
        out->len = s_key_bytes(len);
        break;
    case XP_CLASS_BLOB: {
        bson_subtype_t sub;
        bson_iter_binary(it, &sub, &len, &data);
        out->data = data;
        out->len = s_key_bytes(len);
        break;
    }
    case XP_CLASS_BOOL: out->b = bson_iter_bool(it); break;
    case XP_CLASS_DATETIME: out->i = bson_iter_date_time(it); break;
    default: break;
    }
}

xp_value_class xp__literal_class(const xp_literal *lit)
{
    switch (lit->kind) {
    case XP_LIT_NULL: return XP_CLASS_NULL;
    case XP_LIT_INT:
    case XP_LIT_DOUBLE: return XP_CLASS_NUMBER;
    case XP_LIT_STRING: return XP_CLASS_STRING;
    case XP_LIT_BOOL: return XP_CLASS_BOOL;
    case XP_LIT_DATETIME: return XP_CLASS_DATETIME;
    }
    return XP_CLASS_OTHER;
}

void xp__literal_append(bson_t *out, const char *key, const xp_literal *lit)
{
    switch (lit->kind) {
    case XP_LIT_NULL: bson_append_null(out, key, -1); break;
    case XP_LIT_INT: bson_append_int64(out, key, -1, lit->i); break;
    case XP_LIT_DOUBLE: bson_append_double(out, key, -1, lit->d); break;
    case XP_LIT_STRING:
        bson_append_utf8(out, key, -1, lit->s, (int)lit->len);
        break;
    case XP_LIT_BOOL: bson_append_bool(out, key, -1, lit->b); break;
    case XP_LIT_DATETIME: bson_append_date_time(out, key, -1, lit->i); break;
    }
}

/* ---------------------------------------------------------------- compare */

static int s_sign(int64_t a, int64_t b)
{
    return (a > b) - (a < b);
}

/* i compared with d exactly (d not NaN). */
static int s_cmp_int_double(int64_t i, double d)
{
    if (d < -9223372036854775808.0)
        return 1;
    if (d >= 9223372036854775808.0)
        return -1;
    int64_t whole = (int64_t)d; /* truncated: exact below 2^63 */
    if (i != whole)
        return s_sign(i, whole);
    double frac = d - (double)whole;
    return frac > 0 ? -1 : frac < 0 ? 1 : 0;
}

/* Numbers: false when one is NaN (MongoDB: NaN equals only NaN, which no
 * literal is). */
static bool s_cmp_number(const xp_scalar *v, const xp_literal *lit, int *cmp)
{
    bool v_int = v->type != BSON_TYPE_DOUBLE;
    if ((!v_int && isnan(v->d)) ||
        (lit->kind == XP_LIT_DOUBLE && isnan(lit->d)))
        return false;
    if (v_int && lit->kind == XP_LIT_INT)
        *cmp = s_sign(v->i, lit->i);
    else if (v_int)
        *cmp = s_cmp_int_double(v->i, lit->d);
    else if (lit->kind == XP_LIT_INT)
        *cmp = -s_cmp_int_double(lit->i, v->d);
    else
        *cmp = (v->d > lit->d) - (v->d < lit->d);
    return true;
}

static bool s_cmp_string(const xp_scalar *v, const xp_literal *lit, int *cmp)
{
    size_t n = v->len < lit->len ? v->len : lit->len;
    int c = n ? memcmp(v->data, lit->s, n) : 0;
    *cmp = c ? (c > 0) - (c < 0) : s_sign(v->len, lit->len);
    return true;
}

bool xp__scalar_compare(const xp_scalar *v, const xp_literal *lit, int *cmp)
{
    xp_value_class c = xp__scalar_class(v);
    if (c != xp__literal_class(lit))
        return false;
    switch (c) {
    case XP_CLASS_NULL: *cmp = 0; return true;
    case XP_CLASS_NUMBER: return s_cmp_number(v, lit, cmp);
    case XP_CLASS_STRING: return s_cmp_string(v, lit, cmp);
    case XP_CLASS_BOOL: *cmp = (int)v->b - (int)lit->b; return true;
    case XP_CLASS_DATETIME: *cmp = s_sign(v->i, lit->i); return true;
    default: return false;
    }
}

bool xp__field_compare(const bson_iter_t *it, const xp_literal *lit, int *cmp)
{
    xp_scalar v;
    xp__scalar_of(it, &v);
    return xp__scalar_compare(&v, lit, cmp);
}

/* ---------------------------------------------------------------- dates */

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil). */
static int64_t s_days(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int s_month_days(int64_t y, int64_t m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30,
                                 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

/* Reads exactly n digits at *p (before end) into *out. */
static bool s_digits(const char **p, const char *end, int n, int64_t *out)
{
    int64_t v = 0;
    for (int i = 0; i < n; i++, (*p)++) {
        if (*p >= end || **p < '0' || **p > '9')
            return false;
        v = v * 10 + (**p - '0');
    }
    *out = v;
    return true;
}

static bool s_expect(const char **p, const char *end, char c)
{
    if (*p < end && **p == c) {
        (*p)++;
        return true;
    }
    return false;
}

/* [.fraction] after the seconds: milliseconds (extra digits dropped). */
static bool s_fraction(const char **p, const char *end, int64_t *ms)
{
    *ms = 0;
    if (!s_expect(p, end, '.'))
        return true;
    int n = 0;
    for (; *p < end && **p >= '0' && **p <= '9'; (*p)++, n++)
        if (n < 3)
            *ms = *ms * 10 + (**p - '0');
    if (n == 0 || n > 9)
        return false;
    for (; n < 3; n++)
        *ms *= 10;
    return true;
}

/* Z, +HH:MM or -HH:MM (or nothing: UTC) into minutes east of UTC. */
static bool s_zone(const char **p, const char *end, int64_t *minutes)
{
    *minutes = 0;
    if (*p == end || s_expect(p, end, 'Z'))
        return true;
    int sign = **p == '+' ? 1 : **p == '-' ? -1 : 0;
    int64_t hh, mm;
    if (!sign)
        return false;
    (*p)++;
    if (!s_digits(p, end, 2, &hh) || !s_expect(p, end, ':') ||
        !s_digits(p, end, 2, &mm) || hh > 23 || mm > 59)
        return false;
    *minutes = sign * (hh * 60 + mm);
    return true;
}

bool xp__field_parse_date(const char *s, size_t len, int64_t *ms)
{
    const char *p = s, *end = s + len;
    int64_t y, mo, d, h = 0, mi = 0, sec = 0, frac = 0, zone = 0;
    if (!s_digits(&p, end, 4, &y) || !s_expect(&p, end, '-') ||
        !s_digits(&p, end, 2, &mo) || !s_expect(&p, end, '-') ||
        !s_digits(&p, end, 2, &d) || mo < 1 || mo > 12 || d < 1 ||
        d > s_month_days(y, mo))
        return false;
    if (p < end && (*p == 'T' || *p == ' ')) {
        p++;
        if (!s_digits(&p, end, 2, &h) || !s_expect(&p, end, ':') ||
            !s_digits(&p, end, 2, &mi) || h > 23 || mi > 59)
            return false;
        if (s_expect(&p, end, ':') && (!s_digits(&p, end, 2, &sec) ||
                                       sec > 59 || !s_fraction(&p, end, &frac)))
            return false;
    }
    if (!s_zone(&p, end, &zone) || p != end)
        return false;
    int64_t secs =
        s_days(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - zone * 60;
    *ms = secs * 1000 + frac;
    return true;
}

/* ---------------------------------------------------------------- keys */

void xp__bytes_clear(xp_bytes *b)
{
    bson_free(b->data);
    *b = (xp_bytes){0};
}

static void s_reserve(xp_bytes *b, size_t more)
{
    if (b->len + more <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + more)
        cap *= 2;
    b->data = bson_realloc(b->data, cap);
    b->cap = cap;
}

static void s_put(xp_bytes *b, uint8_t c)
{
    s_reserve(b, 1);
    b->data[b->len++] = c;
}

static void s_put_u64(xp_bytes *b, uint64_t v)
{
    s_reserve(b, 8);
    for (int i = 7; i >= 0; i--)
        b->data[b->len++] = (uint8_t)(v >> (8 * i));
}

/* Bytes, then a terminator: NUL as 00 FF, the end as 00 00, so that a
 * prefix sorts first and the key stays prefix-free. */
static void s_put_bytes(xp_bytes *b, const uint8_t *p, size_t n)
{
    s_reserve(b, 2 * n + 2);
    for (size_t i = 0; i < n;) {
        const uint8_t *nul = memchr(p + i, 0, n - i);
        size_t run = nul ? (size_t)(nul - (p + i)) + 1 : n - i;
        memcpy(b->data + b->len, p + i, run);
        b->len += run;
        i += run;
        if (nul)
            b->data[b->len++] = 0xff;
    }
    b->data[b->len++] = 0;
    b->data[b->len++] = 0;
}

/* Order-preserving bits of a double: sign flipped for positives, all bits
 * for negatives; -0 as 0. NaN sorts below every number (MongoDB). */
static void s_put_double(xp_bytes *b, double d)
{
    if (isnan(d)) {
        s_put(b, 0);
        return;
    }
    s_put(b, 1);
    if (d == 0)
        d = 0;
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    bits = (bits >> 63) ? ~bits : bits ^ (UINT64_C(1) << 63);
    s_put_u64(b, bits);
}

static void s_put_value(xp_bytes *b, const xp_scalar *v)
{
    xp_value_class c = xp__scalar_class(v);
    s_put(b, (uint8_t)c);
    switch (c) {
    case XP_CLASS_NUMBER:
        s_put_double(b, v->type == BSON_TYPE_DOUBLE ? v->d : (double)v->i);
        break;
    case XP_CLASS_STRING:
    case XP_CLASS_DOCUMENT:
    case XP_CLASS_ARRAY:
    case XP_CLASS_BLOB: s_put_bytes(b, v->data, v->len); break;
    case XP_CLASS_BOOL: s_put(b, v->b ? 1 : 0); break;
    case XP_CLASS_DATETIME:
        s_put_u64(b, (uint64_t)v->i ^ (UINT64_C(1) << 63));
        break;
    default: break;
    }
}

void xp__scalar_key(const xp_scalar *v, bool descending, xp_bytes *out)
{
    size_t from = out->len;
    s_put_value(out, v);
    if (descending)
        for (size_t i = from; i < out->len; i++)
            out->data[i] = (uint8_t)~out->data[i];
}

void xp__field_key(const bson_iter_t *it, bool descending, xp_bytes *out)
{
    xp_scalar v;
    xp__scalar_of(it, &v);
    xp__scalar_key(&v, descending, out);
}
