/* graph.c — the experiment definition: parameters and steps as nodes of a
 * DAG (inputs always registered before their step, so it cannot cycle),
 * the result and persisted marks, and the frozen view a trial runs. */
#include "xp-private.h"

#include <stdlib.h>
#include <string.h>

/* Records the first definition error; later calls keep it. */
static xp_node *s_def_error(xp_experiment *ex, uint32_t code,
                            const char *fmt, ...) XP_PRINTF(3, 4);

static xp_node *s_def_error(xp_experiment *ex, uint32_t code,
                            const char *fmt, ...)
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

static xp_node *s_parameter(xp_experiment *ex, const char *name,
                            xp_value *def)
{
    if (!ex) {
        xp_value_destroy(&def);
        return NULL;
    }
    pthread_mutex_lock(&ex->lock);
    xp_node *n = s_node_new(ex, "parameter", name);
    if (n) {
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
            s_def_error(ex, XP_EINVAL,
                        "step '%s': input %zu is not a node of this "
                        "experiment",
                        name ? name : "", i + 1);
            goto done;
        }
    }
    node = s_node_new(ex, "step", name);
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
    node->source = xp__code_capture(file, name, (const void *)(uintptr_t)fn,
                                    &node->source_path);
done:
    pthread_mutex_unlock(&ex->lock);
    return node;
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
        node = s_def_error(ex, XP_EEXIST,
                           "the result is already step '%s', cannot also "
                           "be '%s'",
                           ex->result->name, node->name);
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
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "no experiment");
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
