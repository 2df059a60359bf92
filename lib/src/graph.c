/* graph.c — the experiment definition: parameters and steps as nodes of a
 * DAG (inputs always registered before their step, so it cannot cycle),
 * the result and persisted marks, and the frozen view a trial runs. */
#include "graph.h"

#include "capture/code.h"
#include "code_doc.h"
#include "command/command.h"
#include "experiment.h"
#include "util/error.h"
#include "util/hash.h"
#include "util/log.h"
#include "util/names.h"

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

xp_node *xp__graph_result(const xp_experiment *ex)
{
    return ex->result;
}

/* FNV-1a of a node name: the slot its search starts from. */
static size_t s_name_hash(const char *name)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 0x100000001b3u;
    return (size_t)(h ^ (h >> 29));
}

/* Files node (ex->nodes[i]) in the name index. */
static void s_slot_add(xp_experiment *ex, size_t i)
{
    size_t mask = ex->n_slots - 1;
    size_t k = s_name_hash(ex->nodes[i]->name) & mask;
    while (ex->node_slots[k])
        k = (k + 1) & mask;
    ex->node_slots[k] = (uint32_t)i + 1;
}

/* Builds the name index again for the nodes there are (and room for as
 * many more). */
static void s_slots_rebuild(xp_experiment *ex)
{
    size_t n = 16;
    while (n < 4 * ex->n_nodes)
        n *= 2;
    bson_free(ex->node_slots);
    ex->node_slots = bson_malloc0(n * sizeof *ex->node_slots);
    ex->n_slots = n;
    for (size_t i = 0; i < ex->n_nodes; i++)
        s_slot_add(ex, i);
}

xp_node *xp__graph_find(const xp_experiment *ex, const char *name)
{
    if (!ex->node_slots)
        return NULL;
    size_t mask = ex->n_slots - 1;
    for (size_t k = s_name_hash(name) & mask; ex->node_slots[k];
         k = (k + 1) & mask) {
        xp_node *n = ex->nodes[ex->node_slots[k] - 1];
        if (strcmp(n->name, name) == 0)
            return n;
    }
    return NULL;
}

/* Appends a node named name (already checked). ex->lock held. */
static xp_node *s_node_append(xp_experiment *ex, const char *name)
{
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
    if (2 * ex->n_nodes > ex->n_slots)
        s_slots_rebuild(ex); /* files it too */
    else
        s_slot_add(ex, ex->n_nodes - 1);
    return n;
}

static void s_node_free(xp_node *n)
{
    bson_free(n->name);
    xp_value_destroy(&n->def);
    xp_value_destroy(&n->current);
    bson_free(n->inputs);
    bson_free(n->file);
    bson_free(n->source);
    bson_free(n->source_path);
    bson_free(n->symbol);
    bson_free(n->build_id);
    xp__command_free(&n->command);
    bson_free(n->dependents);
    for (size_t i = 0; i < n->n_memo_env; i++)
        bson_free(n->memo_env[i]);
    bson_free(n->memo_env);
    bson_free(n);
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
    if (ex->n_nodes >= XP_GRAPH_NODES_MAX)
        return s_def_error(ex, XP_EINVAL,
                           "cannot add %s '%s': experiment '%s' has %d "
                           "parameters and steps, the most one may have",
                           kind, name, ex->id, XP_GRAPH_NODES_MAX);
    return s_node_append(ex, name);
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
            node->same_as = other->same_as ? other->same_as : other;
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
    if (n > XP_STEP_INPUTS_MAX) {
        s_def_error(ex, XP_EINVAL, "step '%s' has %zu inputs, more than %d",
                    name ? name : "", n, XP_STEP_INPUTS_MAX);
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

/* The function command nodes hold: the step runner (step.c) runs their
 * command instead of calling it. */
static int s_command_fn(xp_step *st, const xp_value *const *in, xp_value *out)
{
    (void)in;
    (void)out;
    return xp_step_fail(st, "a command step is run by its command");
}

xp_node *xp__graph_command_add(xp_experiment *ex, const char *name,
                               struct xp_command *cmd, size_t n,
                               xp_node *const *inputs, const char *source,
                               const char *file, int line)
{
    if (!ex) {
        xp__command_free(&cmd);
        return NULL;
    }
    pthread_mutex_lock(&ex->lock);
    xp_node *node = NULL;
    for (size_t i = 0; i < n; i++)
        if (!inputs[i] || inputs[i]->ex != ex) {
            s_def_error(ex, XP_EINVAL,
                        "step '%s': input %zu is not a node of this "
                        "experiment",
                        name ? name : "", i + 1);
            goto done;
        }
    node = s_node_new(ex, "step", name);
    if (!node)
        goto done;
    node->fn = s_command_fn;
    node->command = cmd;
    cmd = NULL;
    node->n_inputs = n;
    if (n) {
        node->inputs = bson_malloc(n * sizeof *node->inputs);
        memcpy(node->inputs, inputs, n * sizeof *node->inputs);
    }
    node->file = file ? bson_strdup(file) : NULL;
    node->line = line;
    node->source = source ? bson_strdup(source) : NULL;
done:
    xp__command_free(&cmd);
    pthread_mutex_unlock(&ex->lock);
    return node;
}

/* Builds the nodes of a decoded code document; nothing left to check.
 * ex->lock held, graph empty. */
static void s_from_def(xp_experiment *ex, xp_code_def *def)
{
    ex->cap_nodes = def->n_params + def->n_steps;
    ex->nodes =
        bson_malloc((ex->cap_nodes ? ex->cap_nodes : 1) * sizeof *ex->nodes);
    for (size_t i = 0; i < def->n_params; i++) {
        xp_node *n = s_node_append(ex, def->params[i].name);
        n->is_param = true;
        n->def = def->params[i].def; /* taken */
        def->params[i].def = NULL;
    }
    for (size_t i = 0; i < def->n_steps; i++) {
        const xp_code_step *st = &def->steps[i];
        xp_node *n = s_node_append(ex, st->name);
        n->n_inputs = st->n_inputs;
        if (st->n_inputs)
            n->inputs = bson_malloc(st->n_inputs * sizeof *n->inputs);
        for (size_t k = 0; k < st->n_inputs; k++)
            n->inputs[k] = ex->nodes[st->inputs[k]];
        n->file = bson_strdup(st->file);
        n->line = st->line;
        n->symbol = st->symbol ? bson_strdup(st->symbol) : NULL;
        n->source = st->source ? bson_strdup(st->source) : NULL;
        n->build_id = st->build_id ? bson_strdup(st->build_id) : NULL;
        if (st->same_as != XP_CODE_NONE)
            n->same_as = ex->nodes[def->n_params + st->same_as];
        n->persisted = st->persisted;
        n->pure = st->pure;
        if (st->n_memo_env) {
            n->memo_env = bson_malloc(st->n_memo_env * sizeof *n->memo_env);
            for (size_t k = 0; k < st->n_memo_env; k++)
                n->memo_env[k] = bson_strdup(st->memo_env[k]);
            n->n_memo_env = st->n_memo_env;
        }
        if (i == def->result)
            ex->result = n;
    }
}

int xp__graph_from_code(xp_experiment *ex, const bson_t *code, xp_error_t *err)
{
    xp_code_def def = {0};
    int rc = -1;
    pthread_mutex_lock(&ex->lock);
    if (ex->n_nodes || ex->frozen) {
        xp__error(err, XP_DOMAIN_GRAPH, XP_ESTATE,
                  "experiment '%s' already has a graph", ex->id);
        goto done;
    }
    xp_error_t e;
    if (xp__code_doc_decode(&def, code, &e) != 0) {
        xp__error(err, e.domain, e.code, "experiment '%s': %s", ex->id,
                  e.message);
        goto done;
    }
    s_from_def(ex, &def);
    /* The received definition is the code document, byte for byte, so
     * its hash is the one workers announce. */
    ex->code = bson_copy(code);
    xp__hash_hex(ex->code, ex->code_hash);
    rc = 0;
done:
    xp__code_def_clear(&def);
    pthread_mutex_unlock(&ex->lock);
    return rc;
}

/* Marks node as the result. fresh: node was made for this call alone
 * (XP_RESULT), so a refused second result takes it out of the graph
 * again, as a refused definition leaves the graph as it was; a step the
 * caller made and holds stays, as an extra step. */
static xp_node *s_result(xp_node *node, bool fresh)
{
    if (!node)
        return NULL;
    xp_experiment *ex = node->ex;
    pthread_mutex_lock(&ex->lock);
    if (node->is_param) {
        node = s_def_error(ex, XP_EINVAL,
                           "the result must be a step, '%s' is a parameter",
                           node->name);
    } else if (ex->result && ex->result != node) {
        /* One graph per experiment keeps its code document, its history's
         * Result column and a scheduler's dispatch unambiguous. */
        s_soft_error(ex, XP_EEXIST,
                     "the result of experiment '%s' is already step '%s', "
                     "cannot also be '%s': an experiment has one result (use "
                     "a second experiment id for another one, or xp_persist "
                     "to keep an intermediate value)",
                     ex->id, ex->result->name, node->name);
        /* Made just before, it is the last node and nothing refers to it. */
        if (fresh && !ex->frozen && node->index + 1 == ex->n_nodes) {
            ex->n_nodes--;
            s_node_free(node);
            s_slots_rebuild(ex);
        }
        node = NULL;
    } else if (ex->frozen) {
        node = s_def_error(ex, XP_ESTATE,
                           "the graph cannot change after the first trial");
    } else {
        ex->result = node;
    }
    pthread_mutex_unlock(&ex->lock);
    return node;
}

xp_node *xp_result(xp_node *node)
{
    return s_result(node, false);
}

xp_node *xp__result_new(xp_node *fresh)
{
    return s_result(fresh, true);
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

/* Under ex->lock: whether *node is a step of a graph that has not run
 * yet, so that its memoisation may be set; else *node becomes the
 * definition error ("<only_steps>, 'NAME' is a parameter"). */
static bool s_memo_settable(xp_experiment *ex, xp_node **node,
                            const char *only_steps)
{
    if ((*node)->is_param)
        *node = s_def_error(ex, XP_EINVAL, "%s, '%s' is a parameter",
                            only_steps, (*node)->name);
    else if (ex->frozen)
        *node = s_def_error(ex, XP_ESTATE,
                            "the graph cannot change after the first trial");
    else
        return true;
    return false;
}

xp_node *xp_pure(xp_node *node)
{
    if (!node)
        return NULL;
    xp_experiment *ex = node->ex;
    pthread_mutex_lock(&ex->lock);
    if (s_memo_settable(ex, &node, "only steps can be pure"))
        node->pure = node->persisted = true;
    pthread_mutex_unlock(&ex->lock);
    return node;
}

xp_node *xp_memo_env(xp_node *node, const char *name)
{
    if (!node)
        return NULL;
    xp_experiment *ex = node->ex;
    pthread_mutex_lock(&ex->lock);
    if (!s_memo_settable(ex, &node, "only steps have a memo key")) {
        /* node is the definition error */
    } else if (!name || !*name || strlen(name) > 255 || strchr(name, '=')) {
        node = s_def_error(ex, XP_EINVAL,
                           "step '%s': '%s' is not an environment variable "
                           "name",
                           node->name, name ? name : "");
    } else if (node->n_memo_env >= 64) {
        node = s_def_error(ex, XP_EINVAL,
                           "step '%s': more than 64 memo environment "
                           "variables",
                           node->name);
    } else {
        node->memo_env = bson_realloc(
            node->memo_env, (node->n_memo_env + 1) * sizeof *node->memo_env);
        node->memo_env[node->n_memo_env++] = bson_strdup(name);
    }
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

/* Marks the result and its ancestors. Inputs are registered before their
 * step, so one backward pass suffices (and no recursion as deep as a
 * received graph is long). */
static void s_mark_needed(xp_experiment *ex)
{
    ex->result->needed = true;
    for (size_t i = ex->result->index + 1; i-- > 0;) {
        xp_node *n = ex->nodes[i];
        for (size_t k = 0; n->needed && k < n->n_inputs; k++)
            n->inputs[k]->needed = true;
    }
}

int xp__graph_freeze_locked(xp_experiment *ex, xp_error_t *err)
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
    s_mark_needed(ex);
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
    for (size_t i = 0; i < ex->n_nodes; i++)
        s_node_free(ex->nodes[i]);
    bson_free(ex->nodes);
    bson_free(ex->node_slots);
    if (ex->code)
        bson_destroy(ex->code);
    ex->code = NULL;
    ex->nodes = NULL;
    ex->node_slots = NULL;
    ex->n_nodes = ex->cap_nodes = ex->n_slots = 0;
}

int xp__graph_freeze(xp_experiment *ex, xp_error_t *err)
{
    pthread_mutex_lock(&ex->lock);
    int rc = xp__graph_freeze_locked(ex, err);
    pthread_mutex_unlock(&ex->lock);
    return rc;
}
