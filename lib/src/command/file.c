/* command/file.c — the experiment file: YAML read through libyaml into an
 * xp_file_def (parameters, steps, result), every key and value checked,
 * and the loader reading each command step's code files into the text
 * its code context records. */
#include "command/file.h"

#include "command/template.h"
#include "util/error.h"
#include "util/hash.h"
#include "util/names.h"
#include "util/sys.h"

#include <bson/bson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

/* Nesting and size of what libyaml is asked to build. */
#define S_DEPTH_MAX 32
#define S_EVENTS_MAX 200000

typedef struct {
    yaml_document_t *doc;
    const char *path;
    const char *dir;
    xp_error_t *err;
    xp_file_def *def;
} s_parser;

static int s_fail(s_parser *p, const yaml_node_t *at, const char *fmt, ...)
    XP_PRINTF(3, 4);

static int s_fail(s_parser *p, const yaml_node_t *at, const char *fmt, ...)
{
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (at)
        return xp__error(p->err, XP_DOMAIN_GRAPH, XP_EINVAL, "%s:%zu: %s",
                         p->path, at->start_mark.line + 1, what);
    return xp__error(p->err, XP_DOMAIN_GRAPH, XP_EINVAL, "%s: %s", p->path,
                     what);
}

static yaml_node_t *s_node(s_parser *p, int index)
{
    return yaml_document_get_node(p->doc, index);
}

/* The scalar's text, or NULL (with the error) when n is not a scalar or
 * holds a NUL or bad UTF-8. */
static const char *s_scalar(s_parser *p, yaml_node_t *n, const char *what)
{
    if (!n || n->type != YAML_SCALAR_NODE) {
        s_fail(p, n, "%s must be a single value", what);
        return NULL;
    }
    const char *s = (const char *)n->data.scalar.value;
    size_t len = n->data.scalar.length;
    if (strlen(s) != len || !bson_utf8_validate(s, len, false)) {
        s_fail(p, n, "%s holds a NUL byte or text that is not UTF-8", what);
        return NULL;
    }
    return s;
}

static bool s_plain(const yaml_node_t *n)
{
    return n->type == YAML_SCALAR_NODE &&
           n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

/* 0 when the key of pair *at is not the key of an earlier pair of
 * mapping n, else -1 with the error. */
static int s_unique_key(s_parser *p, yaml_node_t *n, yaml_node_pair_t *at)
{
    yaml_node_t *k = s_node(p, at->key);
    const char *key = s_scalar(p, k, "a key");
    if (!key)
        return -1;
    for (yaml_node_pair_t *i = n->data.mapping.pairs.start; i < at; i++) {
        yaml_node_t *other = s_node(p, i->key);
        if (other && other->type == YAML_SCALAR_NODE &&
            strcmp((const char *)other->data.scalar.value, key) == 0)
            return s_fail(p, k, "key '%.100s' is repeated", key);
    }
    return 0;
}

/* ---------------------------------------------------------------- values */

static int s_value(s_parser *p, yaml_node_t *n, xp_value *v, int depth);

static int s_value_seq(s_parser *p, yaml_node_t *n, xp_value *v, int depth)
{
    xp_set_array(v);
    for (yaml_node_item_t *i = n->data.sequence.items.start;
         i < n->data.sequence.items.top; i++)
        if (s_value(p, s_node(p, *i), xp_array_append(v), depth + 1) != 0)
            return -1;
    return 0;
}

static int s_value_map(s_parser *p, yaml_node_t *n, xp_value *v, int depth)
{
    xp_set_document(v);
    for (yaml_node_pair_t *i = n->data.mapping.pairs.start;
         i < n->data.mapping.pairs.top; i++) {
        const char *key = s_scalar(p, s_node(p, i->key), "a key");
        if (!key)
            return -1;
        if (xp_value_get(v, key))
            return s_fail(p, s_node(p, i->key), "key '%.100s' is repeated",
                          key);
        if (s_value(p, s_node(p, i->value), xp_document_set(v, key),
                    depth + 1) != 0)
            return -1;
    }
    return 0;
}

/* A YAML value as an xp value: plain scalars by script mode's literal
 * rule (so `1` is an int and `1.5` a float, as on the command line),
 * quoted ones as strings, sequences and mappings as arrays and
 * documents. */
static int s_value(s_parser *p, yaml_node_t *n, xp_value *v, int depth)
{
    if (!n)
        return s_fail(p, NULL, "damaged document");
    if (depth > S_DEPTH_MAX)
        return s_fail(p, n, "value nested deeper than %d", S_DEPTH_MAX);
    if (n->type == YAML_SEQUENCE_NODE)
        return s_value_seq(p, n, v, depth);
    if (n->type == YAML_MAPPING_NODE)
        return s_value_map(p, n, v, depth);
    const char *s = s_scalar(p, n, "a value");
    if (!s)
        return -1;
    if (!s_plain(n))
        return xp_set_string(v, s);
    if (strcmp(s, "~") == 0)
        return xp_set_null(v);
    xp_error_t e;
    if (xp_value_parse_literal(v, s, &e) != 0)
        return s_fail(p, n, "%s", e.message);
    return 0;
}

/* ---------------------------------------------------------------- helpers */

static int s_bool(s_parser *p, yaml_node_t *n, const char *what, bool *out)
{
    const char *s = s_scalar(p, n, what);
    if (!s)
        return -1;
    if (strcmp(s, "true") == 0)
        *out = true;
    else if (strcmp(s, "false") == 0)
        *out = false;
    else
        return s_fail(p, n, "%s must be true or false, not '%.100s'", what, s);
    return 0;
}

static int s_strings(s_parser *p, yaml_node_t *n, const char *what, char ***out,
                     size_t *count)
{
    if (!n || n->type != YAML_SEQUENCE_NODE)
        return s_fail(p, n, "%s must be a list", what);
    size_t k =
        (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (k > XP_COMMAND_ARGS_MAX)
        return s_fail(p, n, "%s has more than %d items", what,
                      XP_COMMAND_ARGS_MAX);
    *out = bson_malloc0((k + 1) * sizeof **out);
    *count = 0;
    for (size_t i = 0; i < k; i++) {
        const char *s =
            s_scalar(p, s_node(p, n->data.sequence.items.start[i]), what);
        if (!s)
            return -1;
        (*out)[(*count)++] = bson_strdup(s);
    }
    return 0;
}

static void s_strings_free(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        bson_free(v[i]);
    bson_free(v);
}

/* A file name in $XP_OUTPUT_DIR: one path component, no leading dot. */
static int s_file_name(s_parser *p, yaml_node_t *at, const char *name)
{
    size_t len = strlen(name);
    bool ok = len > 0 && len <= XP_NAME_MAX && name[0] != '.';
    for (size_t i = 0; ok && i < len; i++) {
        char c = name[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
             (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
    }
    if (!ok)
        return s_fail(p, at,
                      "file name '%.100s': letters, digits, '_', '-' and '.' "
                      "only, not starting with '.'",
                      name);
    return 0;
}

/* path made absolute against the file's directory; caller frees. */
static char *s_absolute(const char *dir, const char *path)
{
    if (path[0] == '/')
        return bson_strdup(path);
    if (strcmp(path, ".") == 0)
        return bson_strdup(dir);
    return bson_strdup_printf("%s/%s", dir, path);
}

/* ---------------------------------------------------------------- parameters
 */

static const char *const s_type_names[] = {"any", "int", "float", "bool",
                                           "string"};

const char *xp__param_type_name(xp_param_type t)
{
    return t <= XP_PARAM_STRING ? s_type_names[t] : "any";
}

int xp__param_coerce(xp_param_type t, xp_value *v, xp_error_t *err)
{
    xp_type have = xp_value_type(v);
    bool ok = t == XP_PARAM_ANY;
    if (t == XP_PARAM_INT)
        ok = have == XP_TYPE_INT64;
    if (t == XP_PARAM_FLOAT && have == XP_TYPE_INT64)
        xp_set_double(v, (double)xp_as_int64(v)), have = XP_TYPE_DOUBLE;
    if (t == XP_PARAM_FLOAT)
        ok = have == XP_TYPE_DOUBLE;
    if (t == XP_PARAM_BOOL)
        ok = have == XP_TYPE_BOOL;
    if (t == XP_PARAM_STRING)
        ok = have == XP_TYPE_STRING;
    if (!ok)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "expected %s, got %s", xp__param_type_name(t),
                         xp_type_name(have));
    return 0;
}

static int s_param_type(s_parser *p, yaml_node_t *n, xp_param_type *t)
{
    const char *s = s_scalar(p, n, "type");
    if (!s)
        return -1;
    for (int i = 0; i <= XP_PARAM_STRING; i++)
        if (strcmp(s, s_type_names[i]) == 0) {
            *t = (xp_param_type)i;
            return 0;
        }
    return s_fail(p, n, "unknown type '%.100s' (any, int, float, bool, string)",
                  s);
}

/* `name: {default: V, type: T, description: D}`. */
static int s_param_map(s_parser *p, yaml_node_t *n, xp_file_param *fp)
{
    for (yaml_node_pair_t *i = n->data.mapping.pairs.start;
         i < n->data.mapping.pairs.top; i++) {
        yaml_node_t *k = s_node(p, i->key), *v = s_node(p, i->value);
        const char *key = s_scalar(p, k, "a key");
        if (!key || s_unique_key(p, n, i) != 0)
            return -1;
        if (strcmp(key, "default") == 0) {
            xp_value_destroy(&fp->def);
            fp->def = xp_value_new();
            if (s_value(p, v, fp->def, 1) != 0)
                return -1;
        } else if (strcmp(key, "type") == 0) {
            if (s_param_type(p, v, &fp->type) != 0)
                return -1;
        } else if (strcmp(key, "description") != 0) {
            return s_fail(p, k,
                          "parameter '%s': unknown key '%.100s' (default, "
                          "type, description)",
                          fp->name, key);
        }
    }
    xp_error_t e;
    if (fp->def && xp__param_coerce(fp->type, fp->def, &e) != 0)
        return s_fail(p, n, "default of parameter '%s': %s", fp->name,
                      e.message);
    return 0;
}

static int s_param(s_parser *p, yaml_node_t *k, yaml_node_t *v)
{
    xp_file_def *def = p->def;
    const char *name = s_scalar(p, k, "a parameter name");
    xp_error_t e;
    if (!name)
        return -1;
    if (xp_check_name("parameter", name, &e) != 0)
        return s_fail(p, k, "%s", e.message);
    for (size_t i = 0; i < def->n_params; i++)
        if (strcmp(def->params[i].name, name) == 0)
            return s_fail(p, k, "parameter '%s' is declared twice", name);
    xp_file_param *fp = &def->params[def->n_params++];
    fp->name = bson_strdup(name);
    if (v && v->type == YAML_MAPPING_NODE)
        return s_param_map(p, v, fp);
    /* `a:` alone: required. */
    if (v && s_plain(v) && v->data.scalar.length == 0)
        return 0;
    fp->def = xp_value_new();
    return s_value(p, v, fp->def, 1);
}

static int s_params(s_parser *p, yaml_node_t *n)
{
    if (n->type != YAML_MAPPING_NODE)
        return s_fail(p, n, "parameters must be a mapping name: default");
    size_t k =
        (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    p->def->params = bson_malloc0((k + 1) * sizeof *p->def->params);
    for (size_t i = 0; i < k; i++) {
        yaml_node_pair_t *pair = &n->data.mapping.pairs.start[i];
        if (s_param(p, s_node(p, pair->key), s_node(p, pair->value)) != 0)
            return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- steps */

/* What a placeholder of step st may name: a parameter or an earlier step
 * (and, with a file, an earlier command step that produces it). */
typedef struct {
    s_parser *p;
    yaml_node_t *at;
    xp_file_step *st;
    bool located; /* the error is in p->err already */
} s_ref_ctx;

static void s_add_input(xp_file_step *st, const char *name)
{
    for (size_t i = 0; i < st->n_inputs; i++)
        if (strcmp(st->inputs[i], name) == 0)
            return;
    st->inputs =
        bson_realloc(st->inputs, (st->n_inputs + 1) * sizeof *st->inputs);
    st->inputs[st->n_inputs++] = bson_strdup(name);
}

static const xp_file_step *s_step_named(const xp_file_def *def,
                                        const char *name, size_t before)
{
    for (size_t i = 0; i < before; i++)
        if (strcmp(def->steps[i].name, name) == 0)
            return &def->steps[i];
    return NULL;
}

static const xp_file_param *s_param_named(const xp_file_def *def,
                                          const char *name)
{
    for (size_t i = 0; i < def->n_params; i++)
        if (strcmp(def->params[i].name, name) == 0)
            return &def->params[i];
    return NULL;
}

/* An input name of the step at index `self`: declared, and upstream. */
static int s_check_input(s_parser *p, yaml_node_t *at, const char *self,
                         const char *name, const char *file)
{
    const xp_file_def *def = p->def;
    size_t before = def->n_steps - 1;
    const xp_file_step *up = s_step_named(def, name, before);
    if (!up && s_param_named(def, name)) {
        if (file)
            return s_fail(p, at,
                          "step '%s': '{%s/%s}': '%s' is a parameter, not a "
                          "step producing files",
                          self, name, file, name);
        return 0;
    }
    if (!up)
        return s_fail(p, at,
                      "step '%s' refers to '%s', which is neither a "
                      "parameter nor a step defined above it",
                      self, name);
    if (!file)
        return 0;
    for (size_t i = 0; up->command && i < up->command->n_produces; i++)
        if (strcmp(up->command->produces[i], file) == 0)
            return 0;
    return s_fail(p, at, "step '%s': step '%s' does not produce '%s'", self,
                  name, file);
}

static int s_ref(void *ctx, const char *name, const char *file,
                 bson_string_t *out, xp_error_t *err)
{
    (void)out;
    (void)err;
    s_ref_ctx *r = ctx;
    if (s_check_input(r->p, r->at, r->st->name, name, file) != 0) {
        r->located = true;
        return -1;
    }
    s_add_input(r->st, name);
    return 0;
}

static int s_template(s_parser *p, yaml_node_t *at, xp_file_step *st,
                      const char *text)
{
    s_ref_ctx r = {p, at, st, false};
    xp_error_t e = {0};
    if (xp__template_expand(text, s_ref, &r, NULL, &e) == 0)
        return 0;
    if (r.located)
        return -1;
    return s_fail(p, at, "step '%s': %s", st->name, e.message);
}

static int s_env(s_parser *p, yaml_node_t *n, xp_command *c)
{
    if (n->type != YAML_MAPPING_NODE)
        return s_fail(p, n, "env must be a mapping NAME: value");
    size_t k =
        (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    if (k > XP_COMMAND_ARGS_MAX)
        return s_fail(p, n, "env has more than %d variables",
                      XP_COMMAND_ARGS_MAX);
    c->env_names = bson_malloc0((k + 1) * sizeof *c->env_names);
    c->env_values = bson_malloc0((k + 1) * sizeof *c->env_values);
    for (size_t i = 0; i < k; i++) {
        yaml_node_pair_t *pair = &n->data.mapping.pairs.start[i];
        yaml_node_t *kn = s_node(p, pair->key);
        if (s_unique_key(p, n, pair) != 0)
            return -1;
        const char *name = s_scalar(p, kn, "a variable name");
        const char *value =
            name ? s_scalar(p, s_node(p, pair->value), "a variable's value")
                 : NULL;
        if (!value)
            return -1;
        bool ok = *name && !(*name >= '0' && *name <= '9');
        for (const char *q = name; ok && *q; q++)
            ok = (*q >= 'A' && *q <= 'Z') || (*q >= 'a' && *q <= 'z') ||
                 (*q >= '0' && *q <= '9') || *q == '_';
        if (!ok)
            return s_fail(p, kn, "invalid variable name '%.100s'", name);
        c->env_names[c->n_env] = bson_strdup(name);
        c->env_values[c->n_env++] = bson_strdup(value);
    }
    return 0;
}

static int s_output(s_parser *p, yaml_node_t *n, xp_command *c)
{
    if (n->type == YAML_MAPPING_NODE &&
        n->data.mapping.pairs.top - n->data.mapping.pairs.start == 1) {
        yaml_node_pair_t *pair = n->data.mapping.pairs.start;
        const char *key = s_scalar(p, s_node(p, pair->key), "output");
        if (!key)
            return -1;
        if (strcmp(key, "file") != 0)
            return s_fail(p, n, "output: unknown key '%.100s' (file)", key);
        const char *name = s_scalar(p, s_node(p, pair->value), "output file");
        if (!name || s_file_name(p, n, name) != 0)
            return -1;
        c->output = XP_OUTPUT_FILE;
        c->output_file = bson_strdup(name);
        return 0;
    }
    const char *s = s_scalar(p, n, "output");
    if (!s)
        return -1;
    static const char *const modes[] = {"stdout-json", NULL, "exit-status",
                                        "none"};
    for (int i = 0; i < 4; i++)
        if (modes[i] && strcmp(s, modes[i]) == 0) {
            c->output = (xp_output_mode)i;
            return 0;
        }
    return s_fail(p, n,
                  "output '%.100s': stdout-json, exit-status, none or "
                  "{file: NAME}",
                  s);
}

static int s_timeout(s_parser *p, yaml_node_t *n, double *out)
{
    const char *s = s_scalar(p, n, "timeout");
    if (!s)
        return -1;
    char *end;
    double t = strtod(s, &end);
    if (!*s || *end || !(t > 0) || t > XP_COMMAND_TIMEOUT_MAX)
        return s_fail(p, n,
                      "timeout '%.100s': a number of seconds above 0 and "
                      "at most 30 days",
                      s);
    *out = t;
    return 0;
}

static int s_function(s_parser *p, yaml_node_t *n, xp_file_step *st)
{
    if (n->type != YAML_MAPPING_NODE)
        return s_fail(p, n, "function must be {library: FILE, symbol: NAME}");
    for (yaml_node_pair_t *i = n->data.mapping.pairs.start;
         i < n->data.mapping.pairs.top; i++) {
        yaml_node_t *k = s_node(p, i->key);
        const char *key =
            s_unique_key(p, n, i) == 0 ? s_scalar(p, k, "a key") : NULL;
        const char *v =
            key ? s_scalar(p, s_node(p, i->value), "a function field") : NULL;
        if (!v)
            return -1;
        if (strcmp(key, "library") == 0) {
            bson_free(st->library);
            st->library = s_absolute(p->dir, v);
        } else if (strcmp(key, "symbol") == 0) {
            bson_free(st->symbol);
            st->symbol = bson_strdup(v);
        } else {
            return s_fail(p, k, "function: unknown key '%.100s'", key);
        }
    }
    if (!st->library || !st->symbol)
        return s_fail(p, n, "function needs both library and symbol");
    return 0;
}

/* One key of a step's mapping. */
static int s_step_key(s_parser *p, xp_file_step *st, const char *key,
                      yaml_node_t *k, yaml_node_t *v)
{
    xp_command *c = st->command;
    if ((strcmp(key, "run") == 0 || strcmp(key, "shell") == 0) && c->argc)
        return s_fail(p, k, "step '%s' has both run and shell", st->name);
    if (strcmp(key, "run") == 0) {
        s_strings_free(c->argv, c->argc);
        if (s_strings(p, v, "run", &c->argv, &c->argc) != 0)
            return -1;
        if (c->argc == 0 || !c->argv[0][0])
            return s_fail(p, v, "run needs a program");
        return 0;
    }
    if (strcmp(key, "shell") == 0) {
        const char *s = s_scalar(p, v, "shell");
        if (!s)
            return -1;
        s_strings_free(c->argv, c->argc);
        c->argv = bson_malloc0(4 * sizeof *c->argv);
        c->argv[0] = bson_strdup("/bin/sh");
        c->argv[1] = bson_strdup("-c");
        c->argv[2] = bson_strdup(s);
        c->argc = 3;
        c->shell = true;
        return 0;
    }
    if (strcmp(key, "cwd") == 0) {
        const char *s = s_scalar(p, v, "cwd");
        if (!s)
            return -1;
        bson_free(c->cwd);
        c->cwd = s_absolute(p->dir, s);
        return 0;
    }
    if (strcmp(key, "env") == 0)
        return s_env(p, v, c);
    if (strcmp(key, "timeout") == 0)
        return s_timeout(p, v, &c->timeout);
    if (strcmp(key, "code") == 0)
        return s_strings(p, v, "code", &c->code, &c->n_code);
    if (strcmp(key, "produces") == 0) {
        if (s_strings(p, v, "produces", &c->produces, &c->n_produces) != 0)
            return -1;
        for (size_t i = 0; i < c->n_produces; i++)
            if (s_file_name(p, v, c->produces[i]) != 0)
                return -1;
        return 0;
    }
    if (strcmp(key, "output") == 0)
        return s_output(p, v, c);
    if (strcmp(key, "stdout_metrics") == 0)
        return s_bool(p, v, "stdout_metrics", &c->stdout_metrics);
    if (strcmp(key, "persist") == 0)
        return s_bool(p, v, "persist", &st->persist);
    if (strcmp(key, "pure") == 0)
        return s_bool(p, v, "pure", &st->pure);
    if (strcmp(key, "memo_env") == 0)
        return s_strings(p, v, "memo_env", &st->memo_env, &st->n_memo_env);
    if (strcmp(key, "function") == 0)
        return s_function(p, v, st);
    if (strcmp(key, "inputs") == 0 || strcmp(key, "description") == 0)
        return 0; /* inputs: after the templates, for their order */
    return s_fail(p, k,
                  "step '%s': unknown key '%.100s' (run, shell, cwd, env, "
                  "timeout, code, produces, output, stdout_metrics, inputs, "
                  "persist, pure, memo_env, function)",
                  st->name, key);
}

/* The inputs: placeholders in argv, then env, then `inputs:`. */
static int s_step_inputs(s_parser *p, yaml_node_t *n, xp_file_step *st)
{
    xp_command *c = st->command;
    yaml_node_t *listed = NULL;
    for (yaml_node_pair_t *i = n->data.mapping.pairs.start;
         i < n->data.mapping.pairs.top; i++) {
        const char *key = s_scalar(p, s_node(p, i->key), "a key");
        if (key && strcmp(key, "inputs") == 0)
            listed = s_node(p, i->value);
    }
    for (size_t i = 0; !st->library && i < c->argc; i++)
        if (!(c->shell && i < 2) && s_template(p, n, st, c->argv[i]) != 0)
            return -1;
    for (size_t i = 0; i < c->n_env; i++)
        if (s_template(p, n, st, c->env_values[i]) != 0)
            return -1;
    if (!listed)
        return 0;
    char **names = NULL;
    size_t count = 0;
    int rc = s_strings(p, listed, "inputs", &names, &count);
    for (size_t i = 0; rc == 0 && i < count; i++) {
        rc = s_check_input(p, listed, st->name, names[i], NULL);
        if (rc == 0)
            s_add_input(st, names[i]);
    }
    s_strings_free(names, count);
    return rc;
}

static void s_command_inputs(const xp_file_def *def, xp_file_step *st)
{
    xp_command *c = st->command;
    c->n_inputs = st->n_inputs;
    c->inputs = bson_malloc0((st->n_inputs + 1) * sizeof *c->inputs);
    c->input_is_param =
        bson_malloc0((st->n_inputs + 1) * sizeof *c->input_is_param);
    c->input_has_files =
        bson_malloc0((st->n_inputs + 1) * sizeof *c->input_has_files);
    for (size_t i = 0; i < st->n_inputs; i++) {
        const xp_file_step *up =
            s_step_named(def, st->inputs[i], def->n_steps - 1);
        c->inputs[i] = bson_strdup(st->inputs[i]);
        c->input_is_param[i] = up == NULL;
        c->input_has_files[i] =
            up && up->command && up->command->n_produces > 0;
    }
}

static int s_step(s_parser *p, yaml_node_t *k, yaml_node_t *v)
{
    xp_file_def *def = p->def;
    const char *name = s_scalar(p, k, "a step name");
    xp_error_t e;
    if (!name)
        return -1;
    if (xp_check_name("step", name, &e) != 0)
        return s_fail(p, k, "%s", e.message);
    if (s_step_named(def, name, def->n_steps) || s_param_named(def, name))
        return s_fail(p, k, "duplicate name '%s'", name);
    if (!v || v->type != YAML_MAPPING_NODE)
        return s_fail(p, k, "step '%s' must be a mapping (run: [...], ...)",
                      name);
    xp_file_step *st = &def->steps[def->n_steps++];
    st->name = bson_strdup(name);
    st->line = (int)k->start_mark.line + 1;
    st->command = bson_malloc0(sizeof *st->command);
    st->command->step = bson_strdup(name);
    st->command->cwd = bson_strdup(p->dir);
    for (yaml_node_pair_t *i = v->data.mapping.pairs.start;
         i < v->data.mapping.pairs.top; i++) {
        yaml_node_t *kn = s_node(p, i->key);
        const char *key = s_scalar(p, kn, "a key");
        if (!key || s_unique_key(p, v, i) != 0 ||
            s_step_key(p, st, key, kn, s_node(p, i->value)) != 0)
            return -1;
    }
    if (st->library && st->command->argc)
        return s_fail(p, k, "step '%s' has both a command and a function",
                      name);
    if (!st->library && !st->command->argc)
        return s_fail(p, k,
                      "step '%s' needs run: [program, args...], "
                      "shell: \"script\" or function: {...}",
                      name);
    if (s_step_inputs(p, v, st) != 0)
        return -1;
    if (st->library) {
        xp__command_free(&st->command);
        return 0;
    }
    s_command_inputs(def, st);
    return 0;
}

static int s_steps(s_parser *p, yaml_node_t *n)
{
    if (n->type != YAML_MAPPING_NODE)
        return s_fail(p, n, "steps must be a mapping name: {run: ...}");
    size_t k =
        (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    p->def->steps = bson_malloc0((k + 1) * sizeof *p->def->steps);
    for (size_t i = 0; i < k; i++) {
        yaml_node_pair_t *pair = &n->data.mapping.pairs.start[i];
        if (s_step(p, s_node(p, pair->key), s_node(p, pair->value)) != 0)
            return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- document
 */

static int s_top(s_parser *p, yaml_node_t *root)
{
    xp_file_def *def = p->def;
    yaml_node_t *params = NULL, *steps = NULL, *result = NULL, *id = NULL;
    if (!root || root->type != YAML_MAPPING_NODE)
        return s_fail(p, root,
                      "expected a mapping with experiment, parameters, "
                      "steps and result");
    for (yaml_node_pair_t *i = root->data.mapping.pairs.start;
         i < root->data.mapping.pairs.top; i++) {
        yaml_node_t *k = s_node(p, i->key), *v = s_node(p, i->value);
        const char *key = s_scalar(p, k, "a key");
        if (!key)
            return -1;
        yaml_node_t **slot = strcmp(key, "experiment") == 0   ? &id
                             : strcmp(key, "parameters") == 0 ? &params
                             : strcmp(key, "steps") == 0      ? &steps
                             : strcmp(key, "result") == 0     ? &result
                                                              : NULL;
        if (!slot && strcmp(key, "description") == 0)
            continue;
        if (!slot)
            return s_fail(p, k,
                          "unknown key '%.100s' (experiment, parameters, "
                          "steps, result, description)",
                          key);
        if (*slot)
            return s_fail(p, k, "key '%s' is repeated", key);
        *slot = v;
    }
    const char *s;
    xp_error_t e;
    if (!id)
        return s_fail(p, root, "no experiment: ID");
    if (!(s = s_scalar(p, id, "experiment")))
        return -1;
    if (xp_check_id(s, &e) != 0)
        return s_fail(p, id, "%s", e.message);
    def->id = bson_strdup(s);
    if (params && !(s_plain(params) && params->data.scalar.length == 0) &&
        s_params(p, params) != 0)
        return -1;
    if (!steps)
        return s_fail(p, root, "no steps");
    if (s_steps(p, steps) != 0)
        return -1;
    if (def->n_steps == 0)
        return s_fail(p, steps, "no steps");
    if (result) {
        if (!(s = s_scalar(p, result, "result")))
            return -1;
        if (!s_step_named(def, s, def->n_steps))
            return s_fail(p, result, "result '%.100s' is not a step", s);
        def->result = bson_strdup(s);
    } else if (def->n_steps) {
        def->result = bson_strdup(def->steps[def->n_steps - 1].name);
    }
    return 0;
}

/* Nesting depth, event count and aliases, checked on the event stream
 * before libyaml builds a document. */
static int s_prescan(const char *text, size_t len, const char *path,
                     xp_error_t *err)
{
    yaml_parser_t parser;
    yaml_event_t ev;
    int depth = 0, docs = 0, rc = 0;
    size_t events = 0;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    for (;;) {
        if (!yaml_parser_parse(&parser, &ev)) {
            rc = xp__error(err, XP_DOMAIN_GRAPH, XP_EINVAL, "%s:%zu: %s", path,
                           parser.problem_mark.line + 1,
                           parser.problem ? parser.problem : "invalid YAML");
            break;
        }
        yaml_event_type_t type = ev.type;
        size_t line = ev.start_mark.line + 1;
        yaml_event_delete(&ev);
        if (type == YAML_STREAM_END_EVENT)
            break;
        if (++events > S_EVENTS_MAX) {
            rc = xp__error(err, XP_DOMAIN_GRAPH, XP_EINVAL,
                           "%s: more than %d YAML nodes", path, S_EVENTS_MAX);
            break;
        }
        if (type == YAML_ALIAS_EVENT) {
            rc = xp__error(err, XP_DOMAIN_GRAPH, XP_EINVAL,
                           "%s:%zu: aliases (*name) are not supported", path,
                           line);
            break;
        }
        if (type == YAML_DOCUMENT_START_EVENT && ++docs > 1) {
            rc = xp__error(err, XP_DOMAIN_GRAPH, XP_EINVAL,
                           "%s:%zu: one document per file", path, line);
            break;
        }
        if (type == YAML_SEQUENCE_START_EVENT ||
            type == YAML_MAPPING_START_EVENT) {
            if (++depth > S_DEPTH_MAX + 4) {
                rc = xp__error(err, XP_DOMAIN_GRAPH, XP_EINVAL,
                               "%s:%zu: nested deeper than %d", path, line,
                               S_DEPTH_MAX + 4);
                break;
            }
        } else if (type == YAML_SEQUENCE_END_EVENT ||
                   type == YAML_MAPPING_END_EVENT) {
            depth--;
        }
    }
    yaml_parser_delete(&parser);
    return rc;
}

int xp__file_parse(xp_file_def *out, const char *text, size_t len,
                   const char *path, const char *dir, xp_error_t *err)
{
    memset(out, 0, sizeof *out);
    if (len > XP_FILE_MAX)
        return xp__error(err, XP_DOMAIN_GRAPH, XP_EINVAL,
                         "%s: larger than %d bytes", path, XP_FILE_MAX);
    if (s_prescan(text, len, path, err) != 0)
        return -1;
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        xp__error(err, XP_DOMAIN_GRAPH, XP_EINVAL, "%s:%zu: %s", path,
                  parser.problem_mark.line + 1,
                  parser.problem ? parser.problem : "invalid YAML");
        yaml_parser_delete(&parser);
        return -1;
    }
    out->path = bson_strdup(path);
    out->dir = bson_strdup(dir);
    s_parser p = {&doc, path, dir, err, out};
    int rc = s_top(&p, yaml_document_get_root_node(&doc));
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    if (rc != 0)
        xp__file_def_clear(out);
    return rc;
}

/* ---------------------------------------------------------------- loading */

static void s_describe_list(bson_string_t *s, const char *label, char *const *v,
                            size_t n, bool json)
{
    if (!n)
        return;
    bson_string_append_printf(s, "%s: [", label);
    for (size_t i = 0; i < n; i++) {
        xp_value *tmp = xp_value_new();
        xp_set_string(tmp, v[i]);
        char *q = json ? xp_value_to_json(tmp) : NULL;
        bson_string_append_printf(s, "%s%s", i ? ", " : "", q ? q : v[i]);
        xp_free(q);
        xp_value_destroy(&tmp);
    }
    bson_string_append(s, "]\n");
}

/* The code context text of a command step: what it runs, then each code
 * file's text (or hash, when binary or large). A change in any of it is
 * a code change. */
static char *s_source(const xp_file_def *def, const xp_file_step *st)
{
    const xp_command *c = st->command;
    bson_string_t *s = bson_string_new(NULL);
    if (c->shell)
        bson_string_append_printf(s, "shell: %s\n", c->argv[2]);
    else
        s_describe_list(s, "run", c->argv, c->argc, true);
    /* Relative to the file, so a moved checkout keeps its code hash. */
    size_t dl = strlen(def->dir);
    const char *cwd = c->cwd;
    if (strncmp(cwd, def->dir, dl) == 0 && (cwd[dl] == '/' || !cwd[dl]))
        cwd = cwd[dl] ? cwd + dl + 1 : ".";
    bson_string_append_printf(s, "cwd: %s\n", cwd);
    for (size_t i = 0; i < c->n_env; i++)
        bson_string_append_printf(s, "env %s: %s\n", c->env_names[i],
                                  c->env_values[i]);
    if (c->timeout > 0)
        bson_string_append_printf(s, "timeout: %g\n", c->timeout);
    static const char *const modes[] = {"stdout-json", "file", "exit-status",
                                        "none"};
    bson_string_append_printf(s, "output: %s%s%s\n", modes[c->output],
                              c->output_file ? " " : "",
                              c->output_file ? c->output_file : "");
    s_describe_list(s, "produces", c->produces, c->n_produces, false);
    for (size_t i = 0; i < c->n_code; i++) {
        char *path = s_absolute(def->dir, c->code[i]);
        size_t len = 0;
        char *text = xp__read_file(path, XP_COMMAND_FILE_MAX, &len);
        if (!text) {
            bson_string_append_printf(s, "\n--- %s: not readable\n",
                                      c->code[i]);
        } else {
            uint8_t h[16];
            char hex[33];
            xp__hash128(text, len, h);
            xp__hex(h, 16, hex);
            bool as_text = len <= XP_CODE_TEXT_MAX && strlen(text) == len &&
                           bson_utf8_validate(text, len, false);
            bson_string_append_printf(s, "\n--- %s (xxh128 %s)\n", c->code[i],
                                      hex);
            if (as_text) {
                bson_string_append(s, text);
                if (len && text[len - 1] != '\n')
                    bson_string_append_c(s, '\n');
            }
        }
        bson_free(text);
        bson_free(path);
    }
    return bson_string_free(s, false);
}

int xp__file_load(xp_file_def *out, const char *path, xp_error_t *err)
{
    memset(out, 0, sizeof *out);
    size_t len = 0;
    struct stat sb;
    if (stat(path, &sb) != 0 || access(path, R_OK) != 0)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_ENOTFOUND, "%s: %s", path,
                         strerror(errno));
    char *text = S_ISREG(sb.st_mode) && sb.st_size <= XP_FILE_MAX
                     ? xp__read_file(path, XP_FILE_MAX, &len)
                     : NULL;
    if (!text)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "%s: not a readable file of at most %d bytes", path,
                         XP_FILE_MAX);
    char *abs = realpath(path, NULL);
    char *dir = abs ? bson_strdup(abs) : bson_strdup(".");
    char *slash = strrchr(dir, '/');
    if (slash)
        *(slash == dir ? slash + 1 : slash) = '\0';
    int rc = xp__file_parse(out, text, len, path, dir, err);
    for (size_t i = 0; rc == 0 && i < out->n_steps; i++)
        if (out->steps[i].command)
            out->steps[i].source = s_source(out, &out->steps[i]);
    free(abs);
    bson_free(dir);
    bson_free(text);
    return rc;
}

void xp__file_def_clear(xp_file_def *def)
{
    for (size_t i = 0; i < def->n_params; i++) {
        bson_free(def->params[i].name);
        xp_value_destroy(&def->params[i].def);
    }
    for (size_t i = 0; i < def->n_steps; i++) {
        xp_file_step *st = &def->steps[i];
        bson_free(st->name);
        xp__command_free(&st->command);
        bson_free(st->library);
        bson_free(st->symbol);
        s_strings_free(st->inputs, st->n_inputs);
        s_strings_free(st->memo_env, st->n_memo_env);
        bson_free(st->source);
    }
    bson_free(def->params);
    bson_free(def->steps);
    bson_free(def->id);
    bson_free(def->path);
    bson_free(def->dir);
    bson_free(def->result);
    memset(def, 0, sizeof *def);
}
