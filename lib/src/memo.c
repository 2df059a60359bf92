/* memo.c — memoised pure steps: the key of a step in a trial, reuse of a
 * recorded output from the store, one run per key among the concurrent
 * trials of a handle, the entries a finished trial leaves, and the
 * impurity marker that turns reuse off for a step's code. */
#include "memo.h"

#include "capture/code.h"
#include "experiment.h"
#include "util/error.h"
#include "util/hash.h"
#include "util/log.h"
#include "value.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* A key some trial of this handle is running now. */
typedef struct s_flight {
    uint8_t key[16];
    bool done;
    xp_value *value; /* the output once done; NULL when the step failed */
    int64_t trial;
    size_t waiters;
    struct s_flight *next;
} s_flight;

struct xp_memo_state {
    pthread_mutex_t lock;
    pthread_cond_t cond; /* a flight is done */
    s_flight *flights;
    /* By node index: the step's code hash, whether it has one, and what
     * was said of it already. */
    uint8_t (*code)[16];
    bool *code_ok;
    bool *warned_key, *warned_impure;
};

static const char *const s_mode_names[] = {[XP_MEMO_USE] = "use",
                                           [XP_MEMO_OFF] = "off",
                                           [XP_MEMO_REFRESH] = "refresh"};

const char *xp__memo_mode_name(xp_memo_mode mode)
{
    return (unsigned)mode < 3 ? s_mode_names[mode] : "use";
}

xp_memo_mode xp__memo_mode_parse(const char *name)
{
    for (int i = 0; name && i < 3; i++)
        if (strcmp(name, s_mode_names[i]) == 0)
            return (xp_memo_mode)i;
    return XP_MEMO_USE;
}

/* ---------------------------------------------------------------- state */

static void s_flight_free(s_flight *f)
{
    xp_value_destroy(&f->value);
    bson_free(f);
}

/* The code a step runs, as the code document holds it: its source text,
 * a later use's first use's, or the build id of its binary. */
static bool s_code_hash(const xp_node *n, uint8_t out[16])
{
    const xp_node *first = n->same_as ? n->same_as : n;
    const char *source = n->source ? n->source : first->source;
    bson_t doc = BSON_INITIALIZER;
    if (source) {
        BSON_APPEND_UTF8(&doc, "source", source);
    } else {
        const char *id = first->build_id ? first->build_id : xp__build_id();
        if (!id || !*id) {
            bson_destroy(&doc);
            return false;
        }
        BSON_APPEND_UTF8(&doc, "build_id", id);
    }
    xp__hash128(bson_get_data(&doc), doc.len, out);
    bson_destroy(&doc);
    return true;
}

void xp__memo_prepare_locked(xp_experiment *ex)
{
    if (ex->memo_counted || !ex->frozen)
        return;
    ex->memo_counted = true;
    size_t n_pure = 0;
    for (size_t i = 0; i < ex->n_nodes; i++)
        if (ex->nodes[i]->pure && ex->nodes[i]->needed)
            n_pure++;
    ex->n_pure = n_pure;
    if (n_pure == 0)
        return;
    struct xp_memo_state *m = bson_malloc0(sizeof *m);
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->cond, NULL);
    m->code = bson_malloc0(ex->n_nodes * sizeof *m->code);
    m->code_ok = bson_malloc0(ex->n_nodes * sizeof *m->code_ok);
    m->warned_key = bson_malloc0(ex->n_nodes * sizeof *m->warned_key);
    m->warned_impure = bson_malloc0(ex->n_nodes * sizeof *m->warned_impure);
    for (size_t i = 0; i < ex->n_nodes; i++)
        if (ex->nodes[i]->pure && ex->nodes[i]->needed)
            m->code_ok[i] = s_code_hash(ex->nodes[i], m->code[i]);
    ex->memo = m;
}

void xp__memo_free(xp_experiment *ex)
{
    struct xp_memo_state *m = ex ? ex->memo : NULL;
    if (!m)
        return;
    /* No trial runs when a handle is destroyed; a scheduler stopping
     * leaves the flights of its unfinished trials. */
    while (m->flights) {
        s_flight *f = m->flights;
        m->flights = f->next;
        s_flight_free(f);
    }
    pthread_mutex_destroy(&m->lock);
    pthread_cond_destroy(&m->cond);
    bson_free(m->code);
    bson_free(m->code_ok);
    bson_free(m->warned_key);
    bson_free(m->warned_impure);
    bson_free(m);
    ex->memo = NULL;
}

/* Whether the caller is the first to say this of step i. */
static bool s_first_time(struct xp_memo_state *m, bool *flags, size_t i)
{
    pthread_mutex_lock(&m->lock);
    bool first = !flags[i];
    flags[i] = true;
    pthread_mutex_unlock(&m->lock);
    return first;
}

/* ---------------------------------------------------------------- keys */

bool xp__memo_key(xp_experiment *ex, const xp_node *n,
                  const xp_value *const *in, xp_memo_step *s)
{
    struct xp_memo_state *m = ex->memo;
    s->keyed = false;
    if (!m)
        return false;
    const char *why = NULL;
    bson_t doc = BSON_INITIALIZER, inputs, env;
    if (!m->code_ok[n->index])
        why = "its code is not known (no source, no build id)";
    BSON_APPEND_UTF8(&doc, "step", n->name);
    BSON_APPEND_BINARY(&doc, "code", BSON_SUBTYPE_BINARY, m->code[n->index],
                       16);
    /* Inputs by the hash of their value: an upstream step's enters as its
     * output hash, so keys chain. */
    BSON_APPEND_ARRAY_BEGIN(&doc, "inputs", &inputs);
    for (size_t i = 0; i < n->n_inputs && !why; i++) {
        bson_t v = BSON_INITIALIZER;
        uint8_t h[16];
        if (!in[i] || xp__value_append_bson(&v, "v", in[i]) != 0)
            why = "an input value cannot be encoded";
        else
            xp__hash128(bson_get_data(&v), v.len, h);
        bson_destroy(&v);
        char k[16];
        const char *key;
        bson_uint32_to_string((uint32_t)i, &key, k, sizeof k);
        BSON_APPEND_BINARY(&inputs, key, BSON_SUBTYPE_BINARY, h, 16);
    }
    bson_append_array_end(&doc, &inputs);
    BSON_APPEND_DOCUMENT_BEGIN(&doc, "env", &env);
    for (size_t i = 0; i < n->n_memo_env && !why; i++) {
        const char *value = getenv(n->memo_env[i]);
        if (value && !bson_utf8_validate(value, strlen(value), false))
            why = "an environment variable it names is not UTF-8";
        else if (value)
            BSON_APPEND_UTF8(&env, n->memo_env[i], value);
        else
            BSON_APPEND_NULL(&env, n->memo_env[i]);
    }
    bson_append_document_end(&doc, &env);
    if (!why) {
        xp__hash128(bson_get_data(&doc), doc.len, s->key);
        s->keyed = true;
    } else if (s_first_time(m, m->warned_key, n->index)) {
        xp__log(XP_LOG_WARNING,
                "Pure step '%s' is not reused: its memo key cannot be "
                "computed (%s)",
                n->name, why);
    }
    bson_destroy(&doc);
    return s->keyed;
}

/* The key of step n's impurity marker: its name and code. */
static void s_marker_key(const struct xp_memo_state *m, const xp_node *n,
                         uint8_t out[16])
{
    bson_t doc = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&doc, "impure", n->name);
    BSON_APPEND_BINARY(&doc, "code", BSON_SUBTYPE_BINARY, m->code[n->index],
                       16);
    xp__hash128(bson_get_data(&doc), doc.len, out);
    bson_destroy(&doc);
}

/* ---------------------------------------------------------------- reuse */

/* Reads s->key's entry into *entry (*has_entry) and the impurity
 * marker of step n's code, in one round trip; true when the code is
 * marked impure (said once). A store that cannot answer has neither. */
static bool s_lookup(xp_experiment *ex, const xp_node *n, const xp_memo_step *s,
                     xp_memo_entry *entry, bool *has_entry)
{
    struct xp_memo_state *m = ex->memo;
    xp_memo_entry e[2];
    bool found[2] = {false, false};
    memset(e, 0, sizeof e);
    memcpy(e[0].key, s->key, 16);
    s_marker_key(m, n, e[1].key);
    if (xp__store_memo_get(ex->backend, e, 2, found, NULL) != 0)
        found[0] = found[1] = false;
    *entry = e[0];
    *has_entry = found[0] && e[0].trial > 0;
    if (!found[1] || e[1].trial != 0)
        return false;
    if (s_first_time(m, m->warned_impure, n->index))
        xp__log(XP_LOG_WARNING,
                "Pure step '%s' is not reused: its output changed for the "
                "same inputs and code, so reuse is off until its code "
                "changes",
                n->name);
    return true;
}

/* The stored output entry e points at into *out: false for a miss (a
 * removed or changed value). */
static bool s_load(xp_experiment *ex, const xp_node *n, const xp_memo_entry *e,
                   xp_value **out, int64_t *trial)
{
    xp_value *v = xp_value_new();
    bson_t enc = BSON_INITIALIZER;
    uint8_t h[16];
    bool ok = v &&
              xp__store_persisted_read(ex->backend, n->name, e->trial, v,
                                       NULL) == 0 &&
              xp__value_append_bson(&enc, "v", v) == 0;
    if (ok) {
        xp__hash128(bson_get_data(&enc), enc.len, h);
        ok = memcmp(h, e->output, 16) == 0;
    }
    bson_destroy(&enc);
    if (!ok) {
        xp__log(XP_LOG_DEBUG,
                "Pure step '%s': the output of trial %lld is gone, running "
                "it",
                n->name, (long long)e->trial);
        xp_value_destroy(&v);
        return false;
    }
    *out = v;
    *trial = e->trial;
    return true;
}

static s_flight **s_flight_find(struct xp_memo_state *m, const uint8_t key[16])
{
    s_flight **at = &m->flights;
    while (*at && memcmp((*at)->key, key, 16) != 0)
        at = &(*at)->next;
    return at;
}

/* Claims s->key, or waits for the trial running it: 1 with its output
 * in *out, 0 when the caller owns the key now. m->lock not held. */
static int s_claim(struct xp_memo_state *m, xp_memo_step *s, xp_value **out,
                   int64_t *trial)
{
    pthread_mutex_lock(&m->lock);
    for (;;) {
        s_flight **at = s_flight_find(m, s->key);
        if (!*at) {
            s_flight *f = bson_malloc0(sizeof *f);
            memcpy(f->key, s->key, 16);
            *at = f;
            s->owner = true;
            pthread_mutex_unlock(&m->lock);
            return 0;
        }
        s_flight *f = *at;
        f->waiters++;
        while (!f->done)
            pthread_cond_wait(&m->cond, &m->lock);
        f->waiters--;
        xp_value *v = f->value ? xp_value_dup(f->value) : NULL;
        int64_t from = f->trial;
        if (f->waiters == 0)
            s_flight_free(f);
        if (v) {
            pthread_mutex_unlock(&m->lock);
            *out = v;
            *trial = from;
            return 1;
        }
        /* It failed there: try it here (or wait for whoever does). */
    }
}

int xp__memo_before(xp_experiment *ex, const xp_node *n, xp_memo_mode mode,
                    xp_memo_step *s, xp_value **out)
{
    struct xp_memo_state *m = ex->memo;
    *out = NULL;
    if (!m || !s->keyed || mode == XP_MEMO_OFF)
        return 0;
    xp_memo_entry e;
    bool has_entry = false;
    bool impure = s_lookup(ex, n, s, &e, &has_entry);
    if (mode == XP_MEMO_REFRESH) {
        /* Runs anyway; the entry, if any, checks that it is pure. */
        s->has_prev = has_entry;
        memcpy(s->prev, e.output, 16);
        return 0;
    }
    if (impure)
        return 0;
    int64_t trial = 0;
    if (s_claim(m, s, out, &trial) == 1) {
        s->reused = trial;
        return 1;
    }
    if (has_entry && s_load(ex, n, &e, out, &trial)) {
        s->reused = trial;
        xp__memo_after(ex, s, *out, trial);
        return 1;
    }
    return 0;
}

int xp__memo_before_nowait(xp_experiment *ex, const xp_node *n,
                           xp_memo_mode mode, xp_memo_step *s, xp_value **out)
{
    struct xp_memo_state *m = ex->memo;
    *out = NULL;
    if (!m || !s->keyed || mode != XP_MEMO_USE)
        return xp__memo_before(ex, n, mode, s, out);
    xp_memo_entry e;
    bool has_entry = false;
    if (s_lookup(ex, n, s, &e, &has_entry))
        return 0;
    pthread_mutex_lock(&m->lock);
    s_flight **at = s_flight_find(m, s->key);
    if (*at) {
        (*at)->waiters++;
        s->flight = *at;
        pthread_mutex_unlock(&m->lock);
        return 2;
    }
    s_flight *f = bson_malloc0(sizeof *f);
    memcpy(f->key, s->key, 16);
    *at = f;
    s->owner = true;
    pthread_mutex_unlock(&m->lock);
    int64_t trial = 0;
    if (has_entry && s_load(ex, n, &e, out, &trial)) {
        s->reused = trial;
        xp__memo_after(ex, s, *out, trial);
        return 1;
    }
    return 0;
}

int xp__memo_collect(xp_experiment *ex, xp_memo_step *s, xp_value **out,
                     int64_t *trial)
{
    struct xp_memo_state *m = ex->memo;
    s_flight *f = s->flight;
    *out = NULL;
    if (!m || !f)
        return 0;
    pthread_mutex_lock(&m->lock);
    if (!f->done) {
        pthread_mutex_unlock(&m->lock);
        return 2;
    }
    xp_value *v = f->value ? xp_value_dup(f->value) : NULL;
    *trial = f->trial;
    s->flight = NULL;
    if (--f->waiters == 0)
        s_flight_free(f);
    pthread_mutex_unlock(&m->lock);
    *out = v;
    return v ? 1 : 0;
}

void xp__memo_abandon(xp_experiment *ex, xp_memo_step *s)
{
    struct xp_memo_state *m = ex->memo;
    s_flight *f = s->flight;
    if (!m || !f)
        return;
    pthread_mutex_lock(&m->lock);
    s->flight = NULL;
    /* A flight still running is freed by its owner. */
    if (--f->waiters == 0 && f->done)
        s_flight_free(f);
    pthread_mutex_unlock(&m->lock);
}

void xp__memo_after(xp_experiment *ex, xp_memo_step *s, const xp_value *out,
                    int64_t trial)
{
    struct xp_memo_state *m = ex->memo;
    if (!m || !s->owner)
        return;
    s->owner = false;
    pthread_mutex_lock(&m->lock);
    s_flight **at = s_flight_find(m, s->key);
    s_flight *f = *at;
    if (f) {
        *at = f->next; /* later claims go to the store */
        f->done = true;
        f->value = out ? xp_value_dup(out) : NULL;
        f->trial = trial;
        if (f->waiters == 0)
            s_flight_free(f);
        else
            pthread_cond_broadcast(&m->cond);
    }
    pthread_mutex_unlock(&m->lock);
}

/* ---------------------------------------------------------------- finish */

size_t xp__memo_entries(xp_experiment *ex, int64_t trial, xp_memo_mode mode,
                        const xp_memo_step *steps, const xp_step_hash *hashes,
                        const bool *hashed, xp_memo_entry **out)
{
    struct xp_memo_state *m = ex->memo;
    *out = NULL;
    if (!m || !steps)
        return 0;
    xp_memo_entry *e = bson_malloc0((ex->n_pure + 1) * sizeof *e);
    size_t n = 0;
    for (size_t i = 0; i < ex->n_nodes; i++) {
        const xp_memo_step *s = &steps[i];
        const xp_node *node = ex->nodes[i];
        if (!s->keyed || !hashed[i])
            continue;
        if (s->has_prev && memcmp(s->prev, hashes[i].output, 16) != 0) {
            /* Same key, other output: the step is not pure. */
            xp__log(XP_LOG_WARNING,
                    "Pure step '%s' gave another output for the same inputs "
                    "and code (trial id=%lld): its output is no longer "
                    "reused",
                    node->name, (long long)trial);
            s_marker_key(m, node, e[n].key);
            e[n].trial = 0;
            n++;
            continue;
        }
        if (mode == XP_MEMO_OFF || s->reused)
            continue;
        /* A reused output keeps its entry (and its trial, which the
         * reusing record names, is kept by xp gc). */
        memcpy(e[n].key, s->key, 16);
        e[n].trial = trial;
        memcpy(e[n].output, hashes[i].output, 16);
        n++;
    }
    if (n == 0)
        bson_free(e);
    else
        *out = e;
    return n;
}

bool xp__memo_reused_doc(const xp_experiment *ex, const xp_memo_step *steps,
                         bson_t *out)
{
    bool any = false;
    for (size_t i = 0; steps && i < ex->n_nodes; i++)
        if (steps[i].reused > 0) {
            BSON_APPEND_INT64(out, ex->nodes[i]->name, steps[i].reused);
            any = true;
        }
    return any;
}

/* ---------------------------------------------------------------- gc */

typedef struct {
    int64_t cutoff; /* trials up to this id lose their values, except: */
    int64_t *kept;  /* those the newest trials reused from, sorted */
    size_t n_kept;
    uint8_t (*keys)[16];
    size_t n, cap;
} s_gc;

static int s_cmp_id(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static bool s_gc_keeps(const s_gc *g, int64_t trial)
{
    return trial > g->cutoff ||
           (g->n_kept &&
            bsearch(&trial, g->kept, g->n_kept, sizeof *g->kept, s_cmp_id));
}

/* The trials the records of the newest ones reused outputs from. */
static void s_gc_referenced(xp_experiment *ex, int64_t last, s_gc *g)
{
    size_t cap = 0;
    for (int64_t id = g->cutoff + 1; id <= last; id++) {
        bson_t doc;
        xp_trial_record rec;
        bson_t reused;
        bson_iter_t it;
        if (xp__store_trial_get(ex->backend, id, &doc, NULL) != 0)
            continue;
        if (xp__record_decode(&doc, &rec, NULL) == 0 &&
            xp__doc_view_bson(rec.reused, &reused) &&
            bson_iter_init(&it, &reused))
            while (bson_iter_next(&it)) {
                if (!BSON_ITER_HOLDS_INT64(&it))
                    continue;
                if (g->n_kept == cap) {
                    cap = cap ? 2 * cap : 64;
                    g->kept = bson_realloc(g->kept, cap * sizeof *g->kept);
                }
                g->kept[g->n_kept++] = bson_iter_int64(&it);
            }
        bson_destroy(&doc);
    }
    if (g->n_kept)
        qsort(g->kept, g->n_kept, sizeof *g->kept, s_cmp_id);
}

static int s_gc_entry(const xp_memo_entry *e, void *user)
{
    s_gc *g = user;
    if (e->trial <= 0 || s_gc_keeps(g, e->trial))
        return 0; /* impurity markers and outputs in use stay */
    if (g->n == g->cap) {
        g->cap = g->cap ? 2 * g->cap : 64;
        g->keys = bson_realloc(g->keys, g->cap * sizeof *g->keys);
    }
    memcpy(g->keys[g->n++], e->key, 16);
    return 0;
}

int xp_experiment_gc(xp_experiment *ex, int64_t keep_last, bool dry_run,
                     size_t *entries, size_t *trials, xp_error_t *err)
{
    if (entries)
        *entries = 0;
    if (trials)
        *trials = 0;
    if (!ex || !ex->backend)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL, "no experiment");
    if (keep_last < 0)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "--keep-last must be 0 or more, not %lld",
                         (long long)keep_last);
    if (ex->read_only && !dry_run)
        return xp__error(err, XP_DOMAIN_TRIAL, XP_ESTATE,
                         "experiment '%s' was opened read-only", ex->id);
    int64_t last = 0;
    if (xp__store_last_id(ex->backend, &last, err) != 0)
        return -1;
    s_gc g = {.cutoff = last - keep_last};
    if (g.cutoff <= 0)
        return 0;
    int rc = -1;
    size_t dropped = 0;
    s_gc_referenced(ex, last, &g);
    /* Entries first: an entry never points at a removed value for long,
     * and one that does is a miss anyway. */
    if (xp__store_memo_each(ex->backend, s_gc_entry, &g, err) != 0)
        goto done;
    if (!dry_run &&
        xp__store_memo_delete(ex->backend, (const uint8_t(*)[16])g.keys, g.n,
                              err) != 0)
        goto done;
    for (int64_t id = 1; id <= g.cutoff; id++) {
        if (s_gc_keeps(&g, id))
            continue;
        if (!dry_run && xp__store_persisted_drop(ex->backend, id, err) != 0)
            goto done;
        dropped++;
    }
    if (entries)
        *entries = g.n;
    if (trials)
        *trials = dropped;
    rc = 0;
done:
    bson_free(g.keys);
    bson_free(g.kept);
    return rc;
}
