/* query/projection.c — the per-handle cache of record projections for
 * history queries (projection.h): the fields it projects on, one plan of
 * them, and every record's projection in one byte string. */
#include "query/projection.h"

#include "query/field.h"

#include <string.h>

/* Fields kept at most (past them the cache starts again from the
 * query's own), and bytes of projections (past them it does not keep
 * records: a history too large to cache is scanned as before). */
#define S_MAX_FIELDS 32
#define S_MAX_BYTES ((size_t)256 << 20)
#define S_DAMAGED UINT32_MAX

typedef struct {
    int64_t id;
    uint32_t off; /* in bytes; S_DAMAGED: no document */
} s_entry;

struct xp_projection_cache {
    xp_field fields[S_MAX_FIELDS];
    size_t n_fields;
    xp_field_plan *plan; /* of fields */
    bool asked;          /* a query came before: from the next one on, cache */
    bool building, ready, full;
    uint64_t version;
    s_entry *v;
    size_t n, cap;
    xp_bytes bytes;   /* the projections, one after another */
    xp_bytes scratch; /* one projection */
};

xp_projection_cache *xp__projection_cache_new(void)
{
    return bson_malloc0(sizeof(xp_projection_cache));
}

static void s_forget_fields(xp_projection_cache *c)
{
    for (size_t i = 0; i < c->n_fields; i++)
        bson_free(c->fields[i].path);
    c->n_fields = 0;
    xp__field_plan_destroy(&c->plan);
}

void xp__projection_cache_eager(xp_projection_cache *c)
{
    c->asked = true;
}

void xp__projection_cache_drop(xp_projection_cache *c)
{
    c->n = 0;
    c->bytes.len = 0;
    c->building = c->ready = c->full = false;
}

void xp__projection_cache_destroy(xp_projection_cache **cp)
{
    if (!cp || !*cp)
        return;
    xp_projection_cache *c = *cp;
    s_forget_fields(c);
    bson_free(c->v);
    xp__bytes_clear(&c->bytes);
    xp__bytes_clear(&c->scratch);
    bson_free(c);
    *cp = NULL;
}

static bool s_has(const xp_projection_cache *c, const xp_field *f)
{
    for (size_t i = 0; i < c->n_fields; i++)
        if (strcmp(c->fields[i].path, f->path) == 0)
            return true;
    return false;
}

/* Adds the fields of plan p that c lacks; false when there were some. */
static bool s_take_fields(xp_projection_cache *c, const xp_field_plan *p)
{
    bool had_all = true;
    for (uint32_t i = 0; i < xp__field_plan_slots(p); i++) {
        const xp_field *f = xp__field_plan_field(p, i);
        if (s_has(c, f))
            continue;
        had_all = false;
        if (c->n_fields == S_MAX_FIELDS)
            s_forget_fields(c); /* start again: the query's own fit */
        xp_field *copy = &c->fields[c->n_fields++];
        *copy = *f;
        copy->path = bson_strdup(f->path);
    }
    return had_all;
}

bool xp__projection_cache_ready(xp_projection_cache *c,
                                const xp_compiled_query *q, uint64_t version)
{
    xp_field_plan *p = xp__field_plan_new();
    bson_free(xp__filter_plan(q->filter, p));
    bson_free(xp__sort_plan(q->sort, p));
    bool covered = s_take_fields(c, p);
    xp__field_plan_destroy(&p);
    if (covered && c->ready && c->version == version)
        return true;
    if (!covered || !c->plan) {
        xp__field_plan_destroy(&c->plan);
        c->plan = xp__field_plan_new();
        for (size_t i = 0; i < c->n_fields; i++)
            xp__field_plan_add(c->plan, &c->fields[i]);
    }
    xp__projection_cache_drop(c);
    /* a handle's first page (a one-shot `xp history --filter`) does not
     * pay for projections it would never read again */
    c->building = c->asked;
    c->asked = true;
    c->version = version;
    return false;
}

void xp__projection_cache_add(xp_projection_cache *c, const bson_t *doc,
                              int64_t id)
{
    if (!c->building || c->full)
        return;
    uint32_t off = S_DAMAGED;
    if (doc) {
        xp__field_plan_project(c->plan, doc, &c->scratch);
        if (c->bytes.len + c->scratch.len > S_MAX_BYTES) {
            c->full = true;
            return;
        }
        off = (uint32_t)c->bytes.len;
        if (c->bytes.len + c->scratch.len > c->bytes.cap) {
            size_t cap = c->bytes.cap ? c->bytes.cap : 4096;
            while (cap < c->bytes.len + c->scratch.len)
                cap *= 2;
            c->bytes.data = bson_realloc(c->bytes.data, cap);
            c->bytes.cap = cap;
        }
        memcpy(c->bytes.data + c->bytes.len, c->scratch.data, c->scratch.len);
        c->bytes.len += c->scratch.len;
    }
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 1024;
        c->v = bson_realloc(c->v, c->cap * sizeof *c->v);
    }
    c->v[c->n++] = (s_entry){.id = id, .off = off};
}

void xp__projection_cache_done(xp_projection_cache *c)
{
    c->ready = c->building && !c->full;
    c->building = false;
}

void xp__projection_cache_scan(const xp_projection_cache *c,
                               xp_query_scan *scan)
{
    for (size_t i = 0; i < c->n; i++) {
        bson_t doc;
        const uint8_t *p = c->bytes.data + c->v[i].off;
        uint32_t len;
        if (c->v[i].off == S_DAMAGED) {
            xp__query_scan_add(scan, NULL, c->v[i].id);
            continue;
        }
        memcpy(&len, p, 4);
        len = BSON_UINT32_FROM_LE(len);
        /* built here: always a whole document */
        bson_init_static(&doc, p, len);
        xp__query_scan_add(scan, &doc, c->v[i].id);
    }
}
