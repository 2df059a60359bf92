/* query/projection.c — the per-handle cache of what history queries read
 * (projection.h), kept as columns: for each cached field, every record's
 * value as an index into the field's distinct values (xp_scalar), each
 * decoded once per version. A page is then evaluated over the columns:
 * the filter once per distinct value (filter.c), sort keys as ranks of
 * the distinct values' keys (computed once per version and column), and
 * the page selected among integers. */
#include "query/projection.h"

#include "query/field.h"
#include "query/filter.h"
#include "query/sort.h"

#include <string.h>

/* Fields kept at most (past them the cache starts again from the
 * query's own), and bytes held (past them it does not keep records: a
 * history too large to cache is scanned as before). */
#define S_MAX_FIELDS 32
#define S_MAX_BYTES ((size_t)256 << 20)
#define S_BLOCK ((size_t)64 << 10)

/* Bytes of the distinct values (strings, containers' key bytes), in
 * blocks that never move. */
typedef struct s_block {
    struct s_block *next;
    size_t len, cap;
    uint8_t data[];
} s_block;

typedef struct {
    uint32_t *cells;   /* by record: the index of its value */
    xp_scalar *values; /* distinct values; [0] is the missing one */
    uint32_t n_values, cap_values;
    uint32_t *hash; /* while building: value index + 1, 0 a free slot */
    uint32_t hash_mask;
    /* by value: the rank of its sort key among the column's (equal keys
     * share one), n_ranks of them; NULL until a sort needs them */
    uint32_t *rank;
    uint32_t n_ranks;
} s_column;

struct xp_projection_cache {
    xp_field fields[S_MAX_FIELDS];
    uint32_t slots[S_MAX_FIELDS]; /* each field's slot in plan */
    size_t n_fields;
    xp_field_plan *plan; /* of fields */
    bool building, ready, full;
    uint64_t version;
    /* records, in trial id order */
    int64_t *ids;
    uint64_t *readable; /* a bit a record: its bytes were a document */
    size_t n, cap;
    s_column cols[S_MAX_FIELDS]; /* by field; ranks are made by scans */
    s_block *blocks;
    size_t bytes; /* held for records, at most bound */
    size_t bound;
};

xp_projection_cache *xp__projection_cache_new(void)
{
    xp_projection_cache *c = bson_malloc0(sizeof *c);
    c->bound = S_MAX_BYTES;
    return c;
}

void xp__projection_cache_set_bound(xp_projection_cache *c, size_t bytes)
{
    c->bound = bytes;
}

static void s_forget_fields(xp_projection_cache *c)
{
    for (size_t i = 0; i < c->n_fields; i++)
        bson_free(c->fields[i].path);
    c->n_fields = 0;
    xp__field_plan_destroy(&c->plan);
}

static void s_column_clear(s_column *col)
{
    bson_free(col->cells);
    bson_free(col->values);
    bson_free(col->hash);
    bson_free(col->rank);
    *col = (s_column){0};
}

void xp__projection_cache_drop(xp_projection_cache *c)
{
    for (size_t i = 0; i < S_MAX_FIELDS; i++)
        s_column_clear(&c->cols[i]);
    while (c->blocks) {
        s_block *next = c->blocks->next;
        bson_free(c->blocks);
        c->blocks = next;
    }
    bson_free(c->ids);
    bson_free(c->readable);
    c->ids = NULL;
    c->readable = NULL;
    c->n = c->cap = 0;
    c->bytes = 0;
    c->building = c->ready = c->full = false;
}

void xp__projection_cache_destroy(xp_projection_cache **cp)
{
    if (!cp || !*cp)
        return;
    xp_projection_cache *c = *cp;
    xp__projection_cache_drop(c);
    s_forget_fields(c);
    bson_free(c);
    *cp = NULL;
}

/* The index of the cached field of path, -1 when none. */
static int s_find(const xp_projection_cache *c, const char *path)
{
    for (size_t i = 0; i < c->n_fields; i++)
        if (strcmp(c->fields[i].path, path) == 0)
            return (int)i;
    return -1;
}

/* Adds the fields of plan p that c lacks (when they do not fit, c starts
 * again from p's alone); false when there were some. *fits: c holds all
 * of p's (not when p alone has more than S_MAX_FIELDS). */
static bool s_take_fields(xp_projection_cache *c, const xp_field_plan *p,
                          bool *fits)
{
    uint32_t n = xp__field_plan_slots(p);
    size_t missing = 0;
    for (uint32_t i = 0; i < n; i++)
        missing += s_find(c, xp__field_plan_field(p, i)->path) < 0;
    *fits = true;
    if (missing == 0)
        return true;
    if (c->n_fields + missing > S_MAX_FIELDS)
        s_forget_fields(c);
    for (uint32_t i = 0; i < n; i++) {
        const xp_field *f = xp__field_plan_field(p, i);
        if (s_find(c, f->path) >= 0)
            continue;
        if (c->n_fields == S_MAX_FIELDS) {
            *fits = false;
            break;
        }
        xp_field *copy = &c->fields[c->n_fields++];
        *copy = *f;
        copy->path = bson_strdup(f->path);
    }
    return false;
}

bool xp__projection_cache_ready(xp_projection_cache *c,
                                const xp_compiled_query *q, uint64_t version)
{
    xp_field_plan *p = xp__field_plan_new();
    bson_free(xp__filter_plan(q->filter, p));
    bson_free(xp__sort_plan(q->sort, p));
    bool fits, covered = s_take_fields(c, p, &fits);
    xp__field_plan_destroy(&p);
    if (covered && c->ready && c->version == version)
        return true;
    xp__projection_cache_drop(c);
    if (!covered || !c->plan) {
        xp__field_plan_destroy(&c->plan);
        c->plan = xp__field_plan_new();
        for (size_t i = 0; i < c->n_fields; i++)
            c->slots[i] = xp__field_plan_add(c->plan, &c->fields[i]);
    }
    /* built by the first page too: building costs what the plain scan
     * does, and the page is then answered by the columns */
    c->building = fits;
    c->version = version;
    return false;
}

/* ---------------------------------------------------------------- building */

/* Grows array *p of *cap elements of size to hold n + 1, counting the
 * bytes; false past the bound. */
static bool s_grow(xp_projection_cache *c, void **p, size_t *cap, size_t n,
                   size_t size, size_t first)
{
    if (n < *cap)
        return true;
    size_t more = *cap ? *cap : first;
    if (c->bytes + more * size > c->bound)
        return false;
    c->bytes += more * size;
    *cap += more;
    *p = bson_realloc(*p, *cap * size);
    return true;
}

/* A copy of data[0..len) among the blocks; NULL past the bound. */
static const uint8_t *s_keep_bytes(xp_projection_cache *c, const uint8_t *data,
                                   uint32_t len)
{
    s_block *b = c->blocks;
    if (!b || b->cap - b->len < len) {
        size_t cap = len > S_BLOCK ? len : S_BLOCK;
        if (c->bytes + cap > c->bound)
            return NULL;
        c->bytes += cap;
        b = bson_malloc(sizeof *b + cap);
        *b = (s_block){.next = c->blocks, .cap = cap};
        c->blocks = b;
    }
    uint8_t *at = b->data + b->len;
    memcpy(at, data, len);
    b->len += len;
    return at;
}

static uint32_t s_hash(const xp_scalar *v)
{
    uint64_t d;
    memcpy(&d, &v->d, sizeof d);
    uint64_t h = (uint64_t)v->type * 0x9e3779b97f4a7c15u ^ (uint64_t)v->i ^
                 d * 0xff51afd7ed558ccdu ^ (uint64_t)v->b << 7 ^ v->len;
    for (uint32_t i = 0; i < v->len; i++)
        h = (h ^ v->data[i]) * 0x100000001b3u;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9u;
    return (uint32_t)(h ^ h >> 32);
}

static bool s_same(const xp_scalar *a, const xp_scalar *b)
{
    return a->type == b->type && a->b == b->b && a->i == b->i &&
           memcmp(&a->d, &b->d, sizeof a->d) == 0 && a->len == b->len &&
           (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

/* Doubles col's hash table (at least 16 slots), rehashing its values. */
static bool s_rehash(xp_projection_cache *c, s_column *col)
{
    uint32_t cap = col->hash ? (col->hash_mask + 1) * 2 : 16;
    if (c->bytes + (size_t)cap * 4 > c->bound)
        return false;
    c->bytes += (size_t)cap * 4 - (col->hash ? (col->hash_mask + 1) * 4 : 0);
    bson_free(col->hash);
    col->hash = bson_malloc0((size_t)cap * sizeof *col->hash);
    col->hash_mask = cap - 1;
    for (uint32_t v = 1; v < col->n_values; v++) {
        uint32_t at = s_hash(&col->values[v]) & col->hash_mask;
        while (col->hash[at])
            at = (at + 1) & col->hash_mask;
        col->hash[at] = v + 1;
    }
    return true;
}

/* The index of value v in col, added when new; UINT32_MAX past the
 * bound. */
static uint32_t s_intern(xp_projection_cache *c, s_column *col,
                         const xp_scalar *v)
{
    if (col->n_values == 0) {
        size_t cap = 0;
        if (!s_grow(c, (void **)&col->values, &cap, 0, sizeof *col->values, 16))
            return UINT32_MAX;
        col->cap_values = (uint32_t)cap;
        col->values[col->n_values++] = (xp_scalar){0}; /* missing */
    }
    if (v->type == BSON_TYPE_EOD)
        return 0;
    if ((!col->hash || col->n_values * 2 > col->hash_mask) && !s_rehash(c, col))
        return UINT32_MAX;
    uint32_t at = s_hash(v) & col->hash_mask;
    for (; col->hash[at]; at = (at + 1) & col->hash_mask)
        if (s_same(&col->values[col->hash[at] - 1], v))
            return col->hash[at] - 1;
    size_t cap = col->cap_values;
    if (!s_grow(c, (void **)&col->values, &cap, col->n_values,
                sizeof *col->values, 16))
        return UINT32_MAX;
    col->cap_values = (uint32_t)cap;
    xp_scalar kept = *v;
    kept.data = v->len ? s_keep_bytes(c, v->data, v->len) : NULL;
    if (v->len && !kept.data)
        return UINT32_MAX;
    col->values[col->n_values] = kept;
    col->hash[at] = col->n_values + 1;
    return col->n_values++;
}

/* Room for record n in every array; false past the bound. */
static bool s_room(xp_projection_cache *c)
{
    if (c->n < c->cap)
        return true;
    size_t more = c->cap ? c->cap : 1024;
    size_t per = sizeof *c->ids + c->n_fields * sizeof(uint32_t) + 1;
    if (c->bytes + more * per > c->bound)
        return false;
    c->bytes += more * per;
    c->cap += more;
    c->ids = bson_realloc(c->ids, c->cap * sizeof *c->ids);
    c->readable =
        bson_realloc(c->readable, (c->cap + 63) / 64 * sizeof *c->readable);
    for (size_t f = 0; f < c->n_fields; f++)
        c->cols[f].cells =
            bson_realloc(c->cols[f].cells, c->cap * sizeof(uint32_t));
    return true;
}

/* The record's values, false past the bound. */
static bool s_add(xp_projection_cache *c, const bson_t *doc, int64_t id)
{
    if (!s_room(c))
        return false;
    size_t i = c->n;
    if (i % 64 == 0)
        c->readable[i / 64] = 0;
    c->readable[i / 64] |= (uint64_t)(doc != NULL) << (i % 64);
    c->ids[i] = id;
    xp__field_plan_find(c->plan, doc);
    for (size_t f = 0; f < c->n_fields; f++) {
        xp_scalar v;
        xp__scalar_of(xp__field_plan_value(c->plan, c->slots[f]), &v);
        uint32_t cell = s_intern(c, &c->cols[f], &v);
        if (cell == UINT32_MAX)
            return false;
        c->cols[f].cells[i] = cell;
    }
    c->n++;
    return true;
}

void xp__projection_cache_add(xp_projection_cache *c, const bson_t *doc,
                              int64_t id)
{
    if (!c->building || c->full)
        return;
    if (!s_add(c, doc, id)) {
        /* too large to cache: give the memory back now */
        xp__projection_cache_drop(c);
        c->full = true;
    }
}

bool xp__projection_cache_keeping(const xp_projection_cache *c)
{
    return c->building && !c->full;
}

void xp__projection_cache_done(xp_projection_cache *c)
{
    c->ready = c->building && !c->full;
    c->building = false;
    for (size_t f = 0; f < c->n_fields; f++) {
        s_column *col = &c->cols[f];
        c->bytes -= col->hash ? (size_t)(col->hash_mask + 1) * 4 : 0;
        bson_free(col->hash);
        col->hash = NULL;
        col->hash_mask = 0;
    }
}

/* ---------------------------------------------------------------- ranks
 * The distinct values of a column in the order of their sort keys
 * (field.c: memcmp order, prefix-free), by a radix sort on 8-byte
 * chunks of the keys: all values by their first chunk, then each run of
 * equal chunks by the next one, until the keys end. */

typedef struct {
    uint64_t chunk;
    uint32_t value;
} s_pair;

typedef struct {
    xp_bytes keys;
    size_t *off; /* by value: its key in keys */
    uint32_t *len;
} s_keys;

/* Bytes [8 depth, 8 depth + 8) of value v's key, big-endian, zeros past
 * its end. */
static uint64_t s_chunk(const s_keys *k, uint32_t v, size_t depth)
{
    uint64_t x = 0;
    size_t from = 8 * depth;
    const uint8_t *p = k->keys.data + k->off[v];
    for (size_t i = 0; i < 8; i++)
        x = x << 8 | (from + i < k->len[v] ? p[from + i] : 0);
    return x;
}

/* Sorts v[0..n) by chunk (LSD, a byte a pass, passes whose byte is the
 * same in every pair skipped); tmp holds n pairs. */
static void s_radix(s_pair *v, s_pair *tmp, size_t n)
{
    if (n < 64) { /* a run of a few: insertion */
        for (size_t i = 1; i < n; i++) {
            s_pair x = v[i];
            size_t j = i;
            for (; j > 0 && x.chunk < v[j - 1].chunk; j--)
                v[j] = v[j - 1];
            v[j] = x;
        }
        return;
    }
    size_t count[8][256] = {{0}};
    for (size_t i = 0; i < n; i++)
        for (int b = 0; b < 8; b++)
            count[b][(v[i].chunk >> (8 * b)) & 0xff]++;
    for (int b = 0; b < 8; b++) {
        size_t digit = (v[0].chunk >> (8 * b)) & 0xff;
        if (count[b][digit] == n)
            continue;
        size_t at = 0;
        for (int d = 0; d < 256; d++) {
            size_t k = count[b][d];
            count[b][d] = at;
            at += k;
        }
        for (size_t i = 0; i < n; i++)
            tmp[count[b][(v[i].chunk >> (8 * b)) & 0xff]++] = v[i];
        memcpy(v, tmp, n * sizeof *v);
    }
}

typedef struct {
    size_t lo, hi, depth;
} s_run;

/* Orders pairs[0..n) (chunk 0 filled in) by whole keys. */
static void s_sort_keys(const s_keys *k, s_pair *pairs, size_t n)
{
    s_pair *tmp = bson_malloc((n ? n : 1) * sizeof *tmp);
    s_run *stack = bson_malloc(sizeof *stack);
    size_t top = 0, cap = 1;
    stack[top++] = (s_run){0, n, 0};
    while (top) {
        s_run r = stack[--top];
        if (r.depth > 0)
            for (size_t i = r.lo; i < r.hi; i++)
                pairs[i].chunk = s_chunk(k, pairs[i].value, r.depth);
        s_radix(pairs + r.lo, tmp, r.hi - r.lo);
        /* runs of an equal chunk whose keys go on */
        for (size_t i = r.lo; i < r.hi;) {
            size_t j = i + 1;
            while (j < r.hi && pairs[j].chunk == pairs[i].chunk)
                j++;
            if (j - i > 1 && k->len[pairs[i].value] > 8 * (r.depth + 1)) {
                if (top == cap) {
                    cap *= 2;
                    stack = bson_realloc(stack, cap * sizeof *stack);
                }
                stack[top++] = (s_run){i, j, r.depth + 1};
            }
            i = j;
        }
    }
    bson_free(stack);
    bson_free(tmp);
}

static bool s_key_equal(const s_keys *k, uint32_t a, uint32_t b)
{
    return k->len[a] == k->len[b] &&
           memcmp(k->keys.data + k->off[a], k->keys.data + k->off[b],
                  k->len[a]) == 0;
}

/* col->rank and col->n_ranks. */
static void s_rank(s_column *col)
{
    uint32_t n = col->n_values; /* at least the missing value */
    s_keys k = {.off = bson_malloc(n * sizeof *k.off),
                .len = bson_malloc(n * sizeof *k.len)};
    s_pair *pairs = bson_malloc(n * sizeof *pairs);
    for (uint32_t v = 0; v < n; v++) {
        k.off[v] = k.keys.len;
        xp__scalar_key(&col->values[v], false, &k.keys);
        k.len[v] = (uint32_t)(k.keys.len - k.off[v]);
    }
    for (uint32_t v = 0; v < n; v++)
        pairs[v] = (s_pair){s_chunk(&k, v, 0), v};
    s_sort_keys(&k, pairs, n);
    col->rank = bson_malloc(n * sizeof *col->rank);
    uint32_t rank = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (i > 0 && !s_key_equal(&k, pairs[i - 1].value, pairs[i].value))
            rank++;
        col->rank[pairs[i].value] = rank;
    }
    col->n_ranks = rank + 1;
    bson_free(pairs);
    bson_free(k.off);
    bson_free(k.len);
    xp__bytes_clear(&k.keys);
}

/* ---------------------------------------------------------------- pages */

/* A matching record in the order of a sort: the ranks of the leading
 * keys packed in one integer (most significant first, descending ones
 * reversed), then the ranks of the keys that did not fit, then the
 * record (trial id order). */
typedef struct {
    uint64_t key;
    uint32_t rec;
} s_item;

typedef struct {
    int n_keys, packed;
    int bits;                    /* of the packed key */
    int width[XP_SORT_KEYS_MAX]; /* bits of a rank */
    const s_column *cols[XP_SORT_KEYS_MAX];
    bool descending[XP_SORT_KEYS_MAX];
} s_order;

static uint32_t s_rank_of(const s_order *o, int j, uint32_t rec)
{
    const s_column *col = o->cols[j];
    uint32_t r = col->rank[col->cells[rec]];
    return o->descending[j] ? col->n_ranks - 1 - r : r;
}

static inline bool s_less(const s_order *o, const s_item *a, const s_item *b)
{
    if (a->key != b->key)
        return a->key < b->key;
    for (int j = o->packed; j < o->n_keys; j++) {
        uint32_t ra = s_rank_of(o, j, a->rec), rb = s_rank_of(o, j, b->rec);
        if (ra != rb)
            return ra < rb;
    }
    return a->rec < b->rec;
}

static void s_swap(s_item *a, s_item *b)
{
    s_item t = *a;
    *a = *b;
    *b = t;
}

static void s_insertion(const s_order *o, s_item *v, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        s_item x = v[i];
        size_t j = i;
        for (; j > 0 && s_less(o, &x, &v[j - 1]); j--)
            v[j] = v[j - 1];
        v[j] = x;
    }
}

static void s_sift(const s_order *o, s_item *v, size_t n, size_t at)
{
    for (;;) {
        size_t big = at, l = 2 * at + 1, r = l + 1;
        if (l < n && s_less(o, &v[big], &v[l]))
            big = l;
        if (r < n && s_less(o, &v[big], &v[r]))
            big = r;
        if (big == at)
            return;
        s_swap(&v[at], &v[big]);
        at = big;
    }
}

static void s_heapsort(const s_order *o, s_item *v, size_t n)
{
    for (size_t i = n / 2; i-- > 0;)
        s_sift(o, v, n, i);
    for (size_t i = n; i-- > 1;) {
        s_swap(&v[0], &v[i]);
        s_sift(o, v, i, 0);
    }
}

/* Partitions v[0..n) (n > 2, items distinct) around the median of three;
 * the pivot's final index. */
static size_t s_partition(const s_order *o, s_item *v, size_t n)
{
    size_t a = 0, b = n / 2, c = n - 1, m;
    if (s_less(o, &v[a], &v[b]))
        m = s_less(o, &v[b], &v[c]) ? b : s_less(o, &v[a], &v[c]) ? c : a;
    else
        m = s_less(o, &v[a], &v[c]) ? a : s_less(o, &v[b], &v[c]) ? c : b;
    s_swap(&v[m], &v[n - 1]);
    size_t store = 0;
    for (size_t i = 0; i + 1 < n; i++)
        if (s_less(o, &v[i], &v[n - 1]))
            s_swap(&v[i], &v[store++]);
    s_swap(&v[store], &v[n - 1]);
    return store;
}

static int s_budget(size_t n)
{
    int budget = 8;
    for (size_t m = n; m > 1; m /= 2)
        budget += 2;
    return budget;
}

/* Sorts v[0..n): quicksort, heapsort when the pivots go badly. */
static void s_sort(const s_order *o, s_item *v, size_t n, int budget)
{
    while (n > 16) {
        if (budget-- == 0) {
            s_heapsort(o, v, n);
            return;
        }
        size_t p = s_partition(o, v, n);
        s_sort(o, v, p, budget);
        v += p + 1;
        n -= p + 1;
    }
    s_insertion(o, v, n);
}

/* Rearranges v[0..n) (k < n) so that v[k] has rank k, those before it
 * smaller: quickselect, a sort when the pivots go badly. */
static void s_select(const s_order *o, s_item *v, size_t n, size_t k)
{
    size_t lo = 0, hi = n;
    int budget = s_budget(n);
    while (hi - lo > 16) {
        if (budget-- == 0)
            break;
        size_t p = lo + s_partition(o, v + lo, hi - lo);
        if (p == k)
            return;
        if (k < p)
            hi = p;
        else
            lo = p + 1;
    }
    s_sort(o, v + lo, hi - lo, s_budget(hi - lo));
}

/* The columns of q's sort keys, ranked, into *o; false when a field is
 * not cached. */
static bool s_order_of(const xp_projection_cache *c, const xp_sort *s,
                       s_order *o)
{
    o->n_keys = xp__sort_keys(s);
    int bits = 0;
    o->packed = o->n_keys;
    o->bits = 0;
    for (int j = 0; j < o->n_keys; j++) {
        int f = s_find(c, xp__sort_field(s, j)->path);
        if (f < 0)
            return false;
        /* a cache is made by xp__projection_cache_new, not const: ranks
         * are made once per version, by the first sort that needs them */
        s_column *col = (s_column *)&c->cols[f];
        if (!col->rank)
            s_rank(col);
        o->cols[j] = col;
        o->descending[j] = xp__sort_descending(s, j);
        int w = 0;
        while (w < 32 && (uint32_t)(col->n_ranks - 1) >> w)
            w++;
        o->width[j] = w;
        if (o->packed == o->n_keys && bits + w > 64)
            o->packed = j;
        if (o->packed == o->n_keys)
            bits += w;
    }
    o->bits = bits;
    return true;
}

static uint64_t s_packed_key(const s_order *o, uint32_t rec)
{
    uint64_t key = 0;
    for (int j = 0; j < o->packed; j++)
        if (o->width[j])
            key = key << o->width[j] | s_rank_of(o, j, rec);
    return key;
}

/* Buckets of the top S_BUCKET_BITS bits of the packed key */
#define S_BUCKET_BITS 16

/* Keeps of v[0..*m) the items in the buckets of ranks [*from, *to) (in
 * the full order), moved to the front, *from and *to now among them: one
 * counting pass instead of selections over every match. */
static void s_buckets(const s_order *o, s_item *v, size_t *m, size_t *from,
                      size_t *to)
{
    if (*m < 4096 || *to - *from > *m / 8 || o->bits == 0)
        return;
    int shift = o->bits > S_BUCKET_BITS ? o->bits - S_BUCKET_BITS : 0;
    size_t nb = (size_t)1 << (o->bits - shift);
    uint32_t *count = bson_malloc0(nb * sizeof *count);
    for (size_t i = 0; i < *m; i++)
        count[v[i].key >> shift]++;
    size_t lo = 0, below = 0;
    while (below + count[lo] <= *from)
        below += count[lo++];
    size_t hi = lo, upto = below + count[lo];
    while (upto < *to)
        upto += count[++hi];
    bson_free(count);
    size_t kept = 0;
    for (size_t i = 0; i < *m; i++) {
        size_t b = (size_t)(v[i].key >> shift);
        if (b >= lo && b <= hi)
            v[kept++] = v[i];
    }
    *m = kept;
    *from -= below;
    *to -= below;
}

/* The page of the records whose bit is set in match (matched of them),
 * sorted, into ids (*n of them). */
static void s_sorted_page(const xp_projection_cache *c, const s_order *o,
                          const xp_compiled_query *q, const uint64_t *match,
                          size_t matched, int64_t *ids, size_t *n)
{
    *n = 0;
    if ((uint64_t)q->offset >= matched)
        return;
    s_item *v = bson_malloc(matched * sizeof *v);
    size_t m = 0;
    for (size_t w = 0; w * 64 < c->n; w++)
        for (uint64_t bits = match[w]; bits; bits &= bits - 1) {
            uint32_t rec = (uint32_t)(w * 64 + (size_t)__builtin_ctzll(bits));
            v[m++] = (s_item){s_packed_key(o, rec), rec};
        }
    size_t from = (size_t)q->offset;
    size_t to =
        q->limit && (uint64_t)q->limit < m - from ? from + (size_t)q->limit : m;
    s_buckets(o, v, &m, &from, &to);
    if (to < m)
        s_select(o, v, m, to);
    if (from > 0)
        s_select(o, v, to, from);
    s_sort(o, v + from, to - from, s_budget(to - from));
    for (size_t i = from; i < to; i++)
        ids[(*n)++] = c->ids[v[i].rec];
    bson_free(v);
}

void xp__projection_cache_scan(const xp_projection_cache *c,
                               xp_query_scan *scan)
{
    const xp_compiled_query *q = xp__query_scan_query(scan);
    size_t words = (c->n + 63) / 64;
    uint64_t *match = bson_malloc((words ? words : 1) * sizeof *match);
    size_t nf = xp__filter_fields(q->filter);
    xp_column *cols = bson_malloc((nf ? nf : 1) * sizeof *cols);
    const xp_column **by_field = bson_malloc((nf ? nf : 1) * sizeof *by_field);
    size_t page_cap =
        q->limit && (uint64_t)q->limit < c->n ? (size_t)q->limit : c->n;
    int64_t *ids = bson_malloc((page_cap ? page_cap : 1) * sizeof *ids);
    size_t n = 0, matched = 0;
    s_order o;
    for (size_t k = 0; k < nf; k++) {
        int f = s_find(c, xp__filter_field(q->filter, k)->path);
        if (f < 0)
            goto cleanup; /* not a ready cache for q */
        cols[k] = (xp_column){c->cols[f].cells, c->cols[f].values,
                              c->cols[f].n_values};
        by_field[k] = &cols[k];
    }
    xp__filter_match_columns(q->filter, by_field, c->n, c->readable, match);
    for (size_t w = 0; w < words; w++)
        matched += (size_t)__builtin_popcountll(match[w]);
    if (q->sort && matched > 0) {
        if (!s_order_of(c, q->sort, &o))
            goto cleanup;
        s_sorted_page(c, &o, q, match, matched, ids, &n);
    } else if (!q->sort) {
        /* id order: the window is the set bits from the offset on */
        uint64_t skip = (uint64_t)q->offset;
        for (size_t w = 0; w < words && n < page_cap; w++) {
            uint64_t in_word = (uint64_t)__builtin_popcountll(match[w]);
            if (skip >= in_word) {
                skip -= in_word;
                continue;
            }
            for (uint64_t bits = match[w]; bits && n < page_cap;
                 bits &= bits - 1) {
                if (skip) {
                    skip--;
                    continue;
                }
                ids[n++] = c->ids[w * 64 + (size_t)__builtin_ctzll(bits)];
            }
        }
    }
cleanup:
    xp__query_scan_set_page(scan, (int64_t)matched, ids, n);
    bson_free(ids);
    bson_free(match);
    bson_free(cols);
    bson_free(by_field);
}
