/* definition.c — experiments defined in a file: a loaded file
 * (command/file.h) applied to an experiment as parameters, command steps
 * and C-function steps; `xp run FILE` as script mode over it; and the
 * per-step logs command steps leave with a trial. */
#include "xp/xp.h"

#include "capture/code.h"
#include "command/command.h"
#include "command/file.h"
#include "command/run.h"
#include "experiment.h"
#include "graph.h"
#include "script.h"
#include "store/store.h"
#include "util/error.h"
#include "util/names.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

struct xp_definition {
    xp_file_def file;
};

int xp_definition_load(xp_definition **out, const char *path, xp_error_t *err)
{
    if (!out || !path)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "missing output or path");
    *out = NULL;
    xp_definition *d = bson_malloc0(sizeof *d);
    if (xp__file_load(&d->file, path, err) != 0) {
        bson_free(d);
        return -1;
    }
    *out = d;
    return 0;
}

void xp_definition_destroy(xp_definition **d)
{
    if (!d || !*d)
        return;
    xp__file_def_clear(&(*d)->file);
    bson_free(*d);
    *d = NULL;
}

const char *xp_definition_id(const xp_definition *d)
{
    return d ? d->file.id : NULL;
}

xp_node *xp_node_find(xp_experiment *ex, const char *name)
{
    if (!ex || !name)
        return NULL;
    pthread_mutex_lock(&ex->lock);
    xp_node *n = xp__graph_find(ex, name);
    pthread_mutex_unlock(&ex->lock);
    return n;
}

/* A C step's function from its library, loaded for the life of the
 * process (as worker plugins are), and the library's build id into
 * *build_id (caller frees; NULL when it has none). */
static xp_step_fn s_function(const xp_file_step *st, char **build_id,
                             xp_error_t *err)
{
    void *lib = dlopen(st->library, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char *why = dlerror();
        xp__error(err, XP_DOMAIN_GRAPH, XP_EINVAL, "step '%s': %s", st->name,
                  why ? why : "cannot load its library");
        return NULL;
    }
    void *sym = dlsym(lib, st->symbol);
    if (!sym) {
        xp__error(err, XP_DOMAIN_GRAPH, XP_ENOTFOUND,
                  "step '%s': no function '%s' in %s", st->name, st->symbol,
                  st->library);
        return NULL;
    }
    *build_id = xp__code_build_id_of(sym);
    xp_step_fn fn;
    memcpy(&fn, &sym, sizeof fn);
    return fn;
}

/* Records err as ex's definition error (the first one stays). */
static xp_node *s_def_fail(xp_experiment *ex, const xp_error_t *err)
{
    pthread_mutex_lock(&ex->lock);
    if (!ex->has_def_error) {
        ex->def_error = *err;
        ex->has_def_error = true;
    }
    pthread_mutex_unlock(&ex->lock);
    return NULL;
}

static xp_node *s_add_step(const xp_file_def *f, const xp_file_step *st,
                           xp_experiment *ex)
{
    xp_node *stack[16];
    xp_node **in =
        st->n_inputs <= 16 ? stack : bson_malloc(st->n_inputs * sizeof *in);
    xp_node *node = NULL;
    for (size_t i = 0; i < st->n_inputs; i++)
        in[i] = xp_node_find(ex, st->inputs[i]);
    if (st->command) {
        /* The file's name, not its path: a worker elsewhere that has the
         * same file has the same code hash. */
        const char *slash = strrchr(f->path, '/');
        node = xp__graph_command_add(ex, st->name, xp__command_dup(st->command),
                                     st->n_inputs, in, st->source,
                                     slash ? slash + 1 : f->path, st->line);
    } else {
        xp_error_t e;
        char *build_id = NULL;
        xp_step_fn fn = s_function(st, &build_id, &e);
        node = fn ? xp_step_add(ex, st->name, fn, st->n_inputs, in, NULL, 0)
                  : s_def_fail(ex, &e);
        /* Its code is its library's build, not the program's that loads
         * it: a rebuilt library is a code change, and xp run and a worker
         * loading the same library have the same code. */
        if (node && !node->source && !node->build_id) {
            pthread_mutex_lock(&ex->lock);
            node->build_id = build_id;
            build_id = NULL;
            pthread_mutex_unlock(&ex->lock);
        }
        bson_free(build_id);
    }
    if (node && st->persist)
        xp_persist(node);
    if (node && st->pure)
        xp_pure(node);
    for (size_t i = 0; node && i < st->n_memo_env; i++)
        node = xp_memo_env(node, st->memo_env[i]);
    if (in != stack)
        bson_free(in);
    return node;
}

xp_node *xp_definition_apply(const xp_definition *d, xp_experiment *ex)
{
    if (!d || !ex)
        return NULL;
    const xp_file_def *f = &d->file;
    for (size_t i = 0; i < f->n_params; i++) {
        const xp_file_param *p = &f->params[i];
        xp_node *n = p->def ? xp_parameter_default(ex, p->name, p->def)
                            : xp_parameter(ex, p->name);
        if (!n)
            return NULL;
    }
    for (size_t i = 0; i < f->n_steps; i++)
        if (!s_add_step(f, &f->steps[i], ex))
            return NULL;
    return f->result ? xp_node_find(ex, f->result) : NULL;
}

int xp_definition_check_params(const xp_definition *d, xp_value *params,
                               xp_error_t *err)
{
    if (!d || !params)
        return 0;
    for (size_t i = 0; i < xp_value_count(params); i++) {
        const char *key = xp_value_key_at(params, i);
        for (size_t k = 0; key && k < d->file.n_params; k++) {
            const xp_file_param *p = &d->file.params[k];
            xp_error_t e;
            if (strcmp(p->name, key) != 0)
                continue;
            if (xp__param_coerce(p->type, (xp_value *)xp_value_at(params, i),
                                 &e) != 0)
                return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                                 "parameter '%s': %s", key, e.message);
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- xp run */

static xp_node *s_define(xp_experiment *ex, void *ctx)
{
    return xp_definition_apply(ctx, ex);
}

static int s_check(void *ctx, xp_value *params, xp_error_t *err)
{
    return xp_definition_check_params(ctx, params, err);
}

int xp_main_file(const char *path, int argc, char **argv)
{
    const char *prog = argc > 0 && argv[0] ? argv[0] : "xp run";
    xp_definition *d = NULL;
    xp_error_t err;

    if (xp_definition_load(&d, path, &err) != 0) {
        fprintf(stderr, "%s: %s\n", prog, err.message);
        return 2;
    }
    xp_script_def def = {d->file.id, s_define, s_check, d};
    int status = xp__script_main(&def, argc, argv);
    xp_definition_destroy(&d);
    return status;
}

/* ---------------------------------------------------------------- logs */

int xp_step_log(xp_experiment *ex, int64_t trial_id, const char *step,
                xp_value **out, xp_error_t *err)
{
    if (!ex || !out)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "missing experiment or output");
    *out = NULL;
    if (xp_check_name("step", step, err) != 0 ||
        xp__check_trial_id(trial_id, err) != 0)
        return -1;
    char key[XP_NAME_MAX + sizeof XP_COMMAND_LOG_PREFIX];
    snprintf(key, sizeof key, "%s%s", XP_COMMAND_LOG_PREFIX, step);
    xp_value *v = xp_value_new();
    xp_error_t e;
    if (xp__store_persisted_read(xp__experiment_store(ex), key, trial_id, v,
                                 &e) != 0) {
        xp_value_destroy(&v);
        if (e.code == XP_ENOTFOUND)
            return xp__error(err, XP_DOMAIN_ARGUMENT, XP_ENOTFOUND,
                             "no log of step '%s' in trial %lld (not a "
                             "command step, or it did not run)",
                             step, (long long)trial_id);
        if (err)
            *err = e;
        return -1;
    }
    *out = v;
    return 0;
}
