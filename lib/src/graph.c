/* graph.c — the experiment definition: parameters and steps as nodes of a
 * DAG (inputs always registered before their step, so it cannot cycle),
 * the result and persisted marks, and the frozen view a trial runs. */
#include "graph.h"

#include "capture/capture.h"
#include "capture/code.h"
#include "experiment.h"
#include "util/error.h"
#include "util/names.h"
#include "util/log.h"
#include "value.h"

#include <stdlib.h>
#include <string.h>

/* Records the first definition error; later calls keep it. */
static xp_node *s_def_error(xp_experiment *ex, uint32_t code, const char *fmt,
                            ...) XP_PRINTF(3, 4);

static xp_node *s_def_error(xp_experiment *ex, uint32_t code, const char *fmt,
                            ...)
{
    if (ex && !ex->has_def_error) {
        va_list ap;
        va_start(ap, fmt);
        xp__verror(&ex->def_error, XP_DOMAIN_GRAPH, code, fmt, ap);
        va_end(ap);
        ex->has_def_error = true;
    }
    return NULL;
}

/* Refuses a definition but leaves the graph as it was, so the experiment
 * stays usable: the constructor returns NULL and, having no error
 * argument, logs why. ex->lock held. */
static xp_node *s_soft_error(xp_experiment *ex, uint32_t code, const char *fmt,
                             ...) XP_PRINTF(3, 4);

static xp_node *s_soft_error(xp_experiment *ex, uint32_t code, const char *fmt,
                             ...)
{
    va_list ap;
    va_start(ap, fmt);
    xp__verror(&ex->soft_error, XP_DOMAIN_GRAPH, code, fmt, ap);
    va_end(ap);
    ex->has_soft_error = true;
    xp__log(XP_LOG_ERROR, "%s", ex->soft_error.message);
    return NULL;
}

xp_node *xp__graph_find(const xp_experiment *ex, const char *name)
{
    for (size_t i = 0; i < ex->n_nodes; i++)
        if (strcmp(ex->nodes[i]->name, name) == 0)
            return ex->nodes[i];
    return NULL;
}

/* Creates and appends a node named name, after validating the name.
 * Called with ex->lock held. */
static xp_node *s_node_new(xp_experiment *ex, const char *kind,
                           const char *name)
{
    xp_error_t e;
    if (ex->frozen)
        return s_def_error(ex, XP_ESTATE,
                           "cannot add %s '%s': the graph cannot change "
                           "after the first trial",
                           kind, name ? name : "");
    if (xp_check_name(kind, name, &e) != 0)
        return s_def_error(ex, XP_EINVAL, "%s", e.message);
    if (xp__graph_find(ex, name))
        return s_def_error(ex, XP_EEXIST, "duplicate name '%s'", name);
    if (ex->n_nodes == ex->cap_nodes) {
        size_t cap = ex->cap_nodes ? ex->cap_nodes * 2 : 8;
        xp_node **nodes = bson_realloc(ex->nodes, cap * sizeof *nodes);
        ex->nodes = nodes;
        ex->cap_nodes = cap;
    }
    xp_node *n = bson_malloc0(sizeof *n);
    n->ex = ex;
    n->index = ex->n_nodes;
    n->name = bson_strdup(name);
    ex->nodes[ex->n_nodes++] = n;
    return n;
}

/* "default 1" or "no default", for messages. Caller frees. */
static char *s_default_text(const xp_value *def)
{
    char *json = def ? xp_value_to_json(def) : NULL;
    char *text = json ? bson_strdup_printf("default %.100s%s", json,
                                           strlen(json) > 100 ? "..." : "")
                      : bson_strdup("no default");
    xp_free(json);
    return text;
}

/* A parameter declared again: the same node when the default is the same
 * (daskperiment returns the existing parameter), else a refusal that
 * keeps the first declaration. ex->lock held. */
static xp_node *s_redeclared(xp_experiment *ex, xp_node *n, const xp_value *def)
{
    if (n->def && def ? xp_value_equal(n->def, def) : !n->def && !def)
        return n;
    char *before = s_default_text(n->def), *now = s_default_text(def);
    s_soft_error(ex, XP_EEXIST,
                 "parameter '%s' is already declared with %s, cannot "
                 "declare it again with %s",
                 n->name, before, now);
    bson_free(before);
    bson_free(now);
    return NULL;
}

static xp_node *s_parameter(xp_experiment *ex, const char *name, xp_value *def)
{
    if (!ex) {
        xp_value_destroy(&def);
        return NULL;
    }
    pthread_mutex_lock(&ex->lock);
    xp_node *n = name ? xp__graph_find(ex, name) : NULL;
    if (n && n->is_param) {
        n = s_redeclared(ex, n, def);
        xp_value_destroy(&def);
    } else if ((n = s_node_new(ex, "parameter", name)) != NULL) {
        n->is_param = true;
        n->def = def;
    } else {
        xp_value_destroy(&def);
    }
    pthread_mutex_unlock(&ex->lock);
    return n;
}

xp_node *xp_parameter(xp_experiment *ex, const char *name)
{
    return s_parameter(ex, name, NULL);
}

xp_node *xp_parameter_default(xp_experiment *ex, const char *name,
                              const xp_value *def)
{
    if (!def)
        return s_parameter(ex, name, NULL);
    return s_parameter(ex, name, xp_value_dup(def));
}

xp_node *xp_parameter_literal(xp_experiment *ex, const char *name,
                              const char *literal)
{
    xp_value *def = xp_value_new();
    xp_error_t e;
    if (xp_value_parse_literal(def, literal, &e) != 0) {
        xp_value_destroy(&def);
        if (ex) {
            pthread_mutex_lock(&ex->lock);
            s_def_error(ex, XP_EINVAL, "default of parameter '%s': %s",
                        name ? name : "", e.message);
            pthread_mutex_unlock(&ex->lock);
        }
        return NULL;
    }
    return s_parameter(ex, name, def);
}

/* The node name of one more use of step function fn under name: name
 * itself, or when a step of fn already has it the next free of name-2,
 * name-3, ... (daskperiment runs one function on several inputs). A name
 * taken by a parameter or by another function stays a duplicate. ex->lock
 * held; the result may be buf. */
static const char *s_use_name(xp_experiment *ex, const char *name,
                              xp_step_fn fn, char buf[XP_NAME_MAX + 16])
{
    xp_node *taken = name ? xp__graph_find(ex, name) : NULL;
    if (!taken || taken->is_param || taken->fn != fn ||
        strlen(name) > XP_NAME_MAX)
        return name;
    /* Fewer nodes than suffixes tried: one is free. */
    for (size_t k = 2; k <= ex->n_nodes + 1; k++) {
        snprintf(buf, XP_NAME_MAX + 16, "%s-%zu", name, k);
        if (!xp__graph_find(ex, buf))
            break;
    }
    return buf;
}

/* The code of step node, registered under name: captured once per
 * function, so each use of a function holds the same text. The symbol
 * comes from the function's address, so a step named otherwise than its
 * function still finds its definition. ex->lock held. */
static void s_capture(xp_experiment *ex, xp_node *node, const char *name)
{
    for (size_t i = 0; i + 1 < ex->n_nodes; i++) {
        const xp_node *other = ex->nodes[i];
        bool same_file = other->file && node->file
                             ? strcmp(other->file, node->file) == 0
                             : other->file == node->file;
        if (!other->is_param && other->fn == node->fn &&
            (other->source || same_file)) {
            node->symbol = other->symbol ? bson_strdup(other->symbol) : NULL;
            node->source = other->source ? bson_strdup(other->source) : NULL;
            node->source_path =
                other->source_path ? bson_strdup(other->source_path) : NULL;
            return;
        }
    }
    const void *addr = (const void *)(uintptr_t)node->fn;
    node->symbol = xp__code_symbol(addr);
    node->source = xp__code_capture(node->file, name, addr, &node->source_path);
}

xp_node *xp_step_add(xp_experiment *ex, const char *name, xp_step_fn fn,
                     size_t n, xp_node *const *inputs, const char *file,
                     int line)
{
    if (!ex)
        return NULL;
    pthread_mutex_lock(&ex->lock);
    xp_node *node = NULL;
    if (!fn) {
        s_def_error(ex, XP_EINVAL, "step '%s' has no function",
                    name ? name : "");
        goto done;
    }
    if (n && !inputs) {
        s_def_error(ex, XP_EINVAL, "step '%s' has no input list",
                    name ? name : "");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        /* A NULL input is an earlier failed definition: keep its error. */
        if (!inputs[i] || inputs[i]->ex != ex) {
            bool soft = !inputs[i] && ex->has_soft_error;
            s_def_error(ex, XP_EINVAL,
                        "step '%s': input %zu is not a node of this "
                        "experiment%s%.300s%s",
                        name ? name : "", i + 1, soft ? " (" : "",
                        soft ? ex->soft_error.message : "", soft ? ")" : "");
            goto done;
        }
    }
    char unique[XP_NAME_MAX + 16];
    node = s_node_new(ex, "step", s_use_name(ex, name, fn, unique));
    if (!node)
        goto done;
    node->fn = fn;
    node->n_inputs = n;
    if (n) {
        node->inputs = bson_malloc(n * sizeof *node->inputs);
        memcpy(node->inputs, inputs, n * sizeof *node->inputs);
    }
    node->file = file ? bson_strdup(file) : NULL;
    node->line = line;
    s_capture(ex, node, name);
done:
    pthread_mutex_unlock(&ex->lock);
    return node;
}

/* Finds name in a BSON array of strings: the index of each input. */
static xp_node *s_input_by_name(xp_experiment *ex, bson_iter_t *it)
{
    if (!BSON_ITER_HOLDS_UTF8(it))
        return NULL;
    return xp__graph_find(ex, bson_iter_utf8(it, NULL));
}

int xp__graph_from_code(xp_experiment *ex, const bson_t *code, xp_error_t *err)
{
    bson_iter_t it, list, item, f;
    int rc = -1;
    pthread_mutex_lock(&ex->lock);
    if (ex->n_nodes || ex->frozen) {
        xp__error(err, XP_DOMAIN_GRAPH, XP_ESTATE,
                  "experiment '%s' already has a graph", ex->id);
        goto done;
    }
    if (bson_iter_init_find(&it, code, "parameters") &&
        bson_iter_recurse(&it, &list)) {
        while (bson_iter_next(&list)) {
            const char *name = NULL;
            xp_value *def = NULL;
            if (!bson_iter_recurse(&list, &f))
                continue;
            while (bson_iter_next(&f)) {
                if (strcmp(bson_iter_key(&f), "name") == 0 &&
                    BSON_ITER_HOLDS_UTF8(&f))
                    name = bson_iter_utf8(&f, NULL);
                else if (strcmp(bson_iter_key(&f), "default") == 0) {
                    def = xp_value_new();
                    if (xp__value_from_iter(def, &f, err) != 0) {
                        xp_value_destroy(&def);
                        goto done;
                    }
                }
            }
            xp_node *n = name ? s_node_new(ex, "parameter", name) : NULL;
            if (!n) {
                xp_value_destroy(&def);
                goto invalid;
            }
            n->is_param = true;
            n->def = def;
        }
    }
    if (!bson_iter_init_find(&it, code, "steps") ||
        !bson_iter_recurse(&it, &list))
        goto invalid;
    while (bson_iter_next(&list)) {
        const char *name = NULL, *file = NULL, *source = NULL, *symbol = NULL;
        int line = 0;
        bool result = false, persisted = false;
        xp_node **inputs = NULL;
        size_t n_inputs = 0;
        if (!bson_iter_recurse(&list, &item))
            goto invalid;
        while (bson_iter_next(&item)) {
            const char *key = bson_iter_key(&item);
            if (strcmp(key, "name") == 0 && BSON_ITER_HOLDS_UTF8(&item))
                name = bson_iter_utf8(&item, NULL);
            else if (strcmp(key, "file") == 0 && BSON_ITER_HOLDS_UTF8(&item))
                file = bson_iter_utf8(&item, NULL);
            else if (strcmp(key, "source") == 0 && BSON_ITER_HOLDS_UTF8(&item))
                source = bson_iter_utf8(&item, NULL);
            else if (strcmp(key, "symbol") == 0 && BSON_ITER_HOLDS_UTF8(&item))
                symbol = bson_iter_utf8(&item, NULL);
            else if (strcmp(key, "line") == 0 && BSON_ITER_HOLDS_INT32(&item))
                line = bson_iter_int32(&item);
            else if (strcmp(key, "result") == 0 && BSON_ITER_HOLDS_BOOL(&item))
                result = bson_iter_bool(&item);
            else if (strcmp(key, "persisted") == 0 &&
                     BSON_ITER_HOLDS_BOOL(&item))
                persisted = bson_iter_bool(&item);
            else if (strcmp(key, "inputs") == 0 && !inputs &&
                     BSON_ITER_HOLDS_ARRAY(&item) &&
                     bson_iter_recurse(&item, &f)) {
                /* As many inputs as the array holds (no fixed limit:
                 * what a program may define, a scheduler must take). */
                uint32_t len = 0;
                const uint8_t *data = NULL;
                bson_iter_array(&item, &len, &data);
                inputs = bson_malloc((len / 4 + 1) * sizeof *inputs);
                while (bson_iter_next(&f)) {
                    xp_node *in = s_input_by_name(ex, &f);
                    if (!in) {
                        bson_free(inputs);
                        goto invalid;
                    }
                    inputs[n_inputs++] = in;
                }
            }
        }
        xp_node *n = name ? s_node_new(ex, "step", name) : NULL;
        if (!n) {
            bson_free(inputs);
            goto invalid;
        }
        n->n_inputs = n_inputs;
        n->inputs = inputs;
        n->file = file ? bson_strdup(file) : NULL;
        n->line = line;
        n->source = source ? bson_strdup(source) : NULL;
        n->symbol = symbol ? bson_strdup(symbol) : NULL;
        n->persisted = persisted;
        if (result)
            ex->result = n;
    }
    if (!ex->result)
        goto invalid;
    /* The received definition is the code context, byte for byte, so its
     * hash is the one workers announce. */
    ex->code = bson_copy(code);
    xp__hash_hex(ex->code, ex->code_hash);
    rc = 0;
    goto done;
invalid:
    xp__error(err, XP_DOMAIN_GRAPH, XP_EINVAL,
              "invalid definition of experiment '%s'%s%s", ex->id,
              ex->has_def_error ? ": " : "",
              ex->has_def_error ? ex->def_error.message : "");
done:
    pthread_mutex_unlock(&ex->lock);
    return rc;
}

xp_node *xp_result(xp_node *node)
{
    if (!node)
        return NULL;
    xp_experiment *ex = node->ex;
    pthread_mutex_lock(&ex->lock);
    if (node->is_param)
        node = s_def_error(ex, XP_EINVAL,
                           "the result must be a step, '%s' is a parameter",
                           node->name);
    else if (ex->result && ex->result != node)
        /* One graph per experiment keeps its code document, its history's
         * Result column and a scheduler's dispatch unambiguous. */
        node = s_soft_error(ex, XP_EEXIST,
                            "the result of experiment '%s' is already step "
                            "'%s', cannot also be '%s': an experiment has "
                            "one result (use a second experiment id for "
                            "another one, or xp_persist to keep an "
                            "intermediate value)",
                            ex->id, ex->result->name, node->name);
    else if (ex->frozen)
        node = s_def_error(ex, XP_ESTATE,
                           "the graph cannot change after the first trial");
    else
        ex->result = node;
    pthread_mutex_unlock(&ex->lock);
    return node;
}

xp_node *xp_persist(xp_node *node)
{
    if (!node)
        return NULL;
    xp_experiment *ex = node->ex;
    pthread_mutex_lock(&ex->lock);
    if (node->is_param)
        node = s_def_error(ex, XP_EINVAL,
                           "only steps can be persisted, '%s' is a parameter",
                           node->name);
    else
        node->persisted = true;
    pthread_mutex_unlock(&ex->lock);
    return node;
}

const char *xp_node_name(const xp_node *node)
{
    return node ? node->name : NULL;
}

int xp_experiment_check(const xp_experiment *ex, xp_error_t *err)
{
    if (!ex)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL, "no experiment");
    xp_experiment *mex = (xp_experiment *)ex;
    pthread_mutex_lock(&mex->lock);
    int rc = 0;
    if (ex->has_def_error) {
        if (err)
            *err = ex->def_error;
        rc = -1;
    } else if (!ex->result) {
        rc = xp__error(err, XP_DOMAIN_GRAPH, XP_EINVAL,
                       "experiment '%s' has no result step", ex->id);
    }
    pthread_mutex_unlock(&mex->lock);
    return rc;
}

static void s_mark_needed(xp_node *n)
{
    if (n->needed)
        return;
    n->needed = true;
    for (size_t i = 0; i < n->n_inputs; i++)
        s_mark_needed(n->inputs[i]);
}

int xp__graph_freeze(xp_experiment *ex, xp_error_t *err)
{
    if (ex->frozen)
        return 0;
    if (ex->has_def_error) {
        if (err)
            *err = ex->def_error;
        return -1;
    }
    if (!ex->result)
        return xp__error(err, XP_DOMAIN_GRAPH, XP_EINVAL,
                         "experiment '%s' has no result step", ex->id);
    s_mark_needed(ex->result);
    ex->n_needed_steps = 0;
    for (size_t i = 0; i < ex->n_nodes; i++) {
        xp_node *n = ex->nodes[i];
        if (!n->needed)
            continue;
        if (!n->is_param)
            ex->n_needed_steps++;
        for (size_t k = 0; k < n->n_inputs; k++)
            n->inputs[k]->n_dependents++;
    }
    for (size_t i = 0; i < ex->n_nodes; i++) {
        xp_node *n = ex->nodes[i];
        if (n->n_dependents)
            n->dependents =
                bson_malloc(n->n_dependents * sizeof *n->dependents);
        n->n_dependents = 0;
    }
    for (size_t i = 0; i < ex->n_nodes; i++) {
        xp_node *n = ex->nodes[i];
        if (!n->needed)
            continue;
        for (size_t k = 0; k < n->n_inputs; k++) {
            xp_node *in = n->inputs[k];
            in->dependents[in->n_dependents++] = n;
        }
    }
    ex->frozen = true;
    xp__code_build(ex);
    return 0;
}

void xp__graph_free(xp_experiment *ex)
{
    for (size_t i = 0; i < ex->n_nodes; i++) {
        xp_node *n = ex->nodes[i];
        bson_free(n->name);
        xp_value_destroy(&n->def);
        xp_value_destroy(&n->current);
        bson_free(n->inputs);
        bson_free(n->file);
        bson_free(n->source);
        bson_free(n->source_path);
        bson_free(n->symbol);
        bson_free(n->dependents);
        bson_free(n);
    }
    bson_free(ex->nodes);
    if (ex->code)
        bson_destroy(ex->code);
    ex->code = NULL;
    ex->nodes = NULL;
    ex->n_nodes = ex->cap_nodes = 0;
}
