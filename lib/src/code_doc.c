/* code_doc.c — the one home of the code document: the encoder (a graph to
 * BSON), the decoder, which trusts nothing (a document arrives in SUBMIT
 * from any client and from stored records), and the C text shown to
 * people. Field names are spelled here and nowhere else. */
#include "code_doc.h"

#include "capture/code.h"
#include "experiment.h"
#include "util/error.h"
#include "util/hash.h"
#include "value.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

/* The fields, in the order the encoder writes them. */
enum { DOC_PARAMETERS, DOC_STEPS, DOC_FIELDS };
static const char *const s_doc_keys[DOC_FIELDS] = {"parameters", "steps"};

enum { PARAM_NAME, PARAM_DEFAULT, PARAM_FIELDS };
static const char *const s_param_keys[PARAM_FIELDS] = {"name", "default"};

enum {
    STEP_NAME,
    STEP_FILE,
    STEP_LINE,
    STEP_SYMBOL,
    STEP_INPUTS,
    STEP_RESULT,
    STEP_PERSISTED,
    STEP_SOURCE,   /* the function's code, at its first use */
    STEP_BUILD_ID, /* instead, when the code was not found */
    STEP_SAME_AS,  /* instead, at a later use: the first use's name */
    STEP_PURE,     /* memoised; written only when true */
    STEP_MEMO_ENV, /* its memo key's environment variables, if any */
    STEP_FIELDS
};
static const char *const s_step_keys[STEP_FIELDS] = {
    "name",      "file",   "line",     "symbol",  "inputs", "result",
    "persisted", "source", "build_id", "same_as", "pure",   "memo_env"};

/* Most environment variables one step's memo key names (graph.c's rule
 * too). */
#define S_MEMO_ENV_MAX 64

/* Lengths a document may give beyond the name rules of util/names.h. A
 * longer string is not read as a name at all (XP_ECORRUPT); up to this,
 * xp_check_name says what is wrong with it. */
#define S_NAME_TEXT_MAX 4096
#define S_FILE_MAX 4096
#define S_SYMBOL_MAX 1024
#define S_BUILD_ID_MAX 128

/* ---------------------------------------------------------------- encode */

static const char *s_index_key(uint32_t i, char buf[16])
{
    const char *key;
    bson_uint32_to_string(i, &key, buf, 16);
    return key;
}

/* Parameters with their defaults make the document a complete graph
 * definition: a scheduler rebuilds the experiment from it. */
static void s_encode_params(const xp_experiment *ex, bson_t *code)
{
    bson_t params, param;
    char buf[16];
    uint32_t k = 0;
    BSON_APPEND_ARRAY_BEGIN(code, s_doc_keys[DOC_PARAMETERS], &params);
    for (size_t i = 0; i < ex->n_nodes; i++) {
        const xp_node *n = ex->nodes[i];
        if (!n->is_param)
            continue;
        const char *key = s_index_key(k++, buf);
        BSON_APPEND_DOCUMENT_BEGIN(&params, key, &param);
        BSON_APPEND_UTF8(&param, s_param_keys[PARAM_NAME], n->name);
        if (n->def)
            xp__value_append_bson(&param, s_param_keys[PARAM_DEFAULT], n->def);
        bson_append_document_end(&params, &param);
    }
    bson_append_array_end(code, &params);
}

/* One step. Every use of a function keeps its own registration place; a
 * later use names the first instead of repeating the code. */
static void s_encode_step(bson_t *steps, const char *key,
                          const xp_experiment *ex, const xp_node *n)
{
    bson_t step, inputs;
    char buf[16];
    BSON_APPEND_DOCUMENT_BEGIN(steps, key, &step);
    BSON_APPEND_UTF8(&step, s_step_keys[STEP_NAME], n->name);
    BSON_APPEND_UTF8(&step, s_step_keys[STEP_FILE], n->file ? n->file : "");
    BSON_APPEND_INT32(&step, s_step_keys[STEP_LINE], n->line);
    BSON_APPEND_UTF8(&step, s_step_keys[STEP_SYMBOL],
                     n->symbol ? n->symbol : n->name);
    BSON_APPEND_ARRAY_BEGIN(&step, s_step_keys[STEP_INPUTS], &inputs);
    for (size_t j = 0; j < n->n_inputs; j++)
        BSON_APPEND_UTF8(&inputs, s_index_key((uint32_t)j, buf),
                         n->inputs[j]->name);
    bson_append_array_end(&step, &inputs);
    BSON_APPEND_BOOL(&step, s_step_keys[STEP_RESULT], n == ex->result);
    BSON_APPEND_BOOL(&step, s_step_keys[STEP_PERSISTED], n->persisted);
    if (n->same_as)
        BSON_APPEND_UTF8(&step, s_step_keys[STEP_SAME_AS], n->same_as->name);
    else if (n->source)
        BSON_APPEND_UTF8(&step, s_step_keys[STEP_SOURCE], n->source);
    else
        BSON_APPEND_UTF8(&step, s_step_keys[STEP_BUILD_ID],
                         n->build_id ? n->build_id : xp__build_id());
    /* Only for pure steps: the documents (and code hashes) of other
     * experiments stay as they were. */
    if (n->pure)
        BSON_APPEND_BOOL(&step, s_step_keys[STEP_PURE], true);
    if (n->n_memo_env) {
        bson_t env;
        BSON_APPEND_ARRAY_BEGIN(&step, s_step_keys[STEP_MEMO_ENV], &env);
        for (size_t j = 0; j < n->n_memo_env; j++)
            BSON_APPEND_UTF8(&env, s_index_key((uint32_t)j, buf),
                             n->memo_env[j]);
        bson_append_array_end(&step, &env);
    }
    bson_append_document_end(steps, &step);
}

void xp__code_doc_encode(const xp_experiment *ex, bson_t *out)
{
    bson_t steps;
    char buf[16];
    uint32_t k = 0;
    s_encode_params(ex, out);
    BSON_APPEND_ARRAY_BEGIN(out, s_doc_keys[DOC_STEPS], &steps);
    for (size_t i = 0; i < ex->n_nodes; i++)
        if (!ex->nodes[i]->is_param)
            s_encode_step(&steps, s_index_key(k++, buf), ex, ex->nodes[i]);
    bson_append_array_end(out, &steps);
}

void xp__code_build(xp_experiment *ex)
{
    if (ex->code)
        return;
    ex->code = bson_new();
    xp__code_doc_encode(ex, ex->code);
    xp__hash_hex(ex->code, ex->code_hash);
}

/* ---------------------------------------------------------------- decode */

/* Names seen so far, hashed: a document may hold thousands of steps with
 * thousands of inputs each, and a scheduler must not spend quadratic time
 * on what a client sends. */
typedef struct {
    const char *name;
    size_t node; /* node index + 1; 0 when free */
} s_slot;

typedef struct {
    xp_code_def *def;
    s_slot *slots;
    size_t mask;
    xp_error_t *err;
} s_decoder;

static int s_fail(s_decoder *d, uint32_t code, const char *fmt, ...)
    XP_PRINTF(3, 4);

/* One line: "code document: <what is wrong>". */
static int s_fail(s_decoder *d, uint32_t code, const char *fmt, ...)
{
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return xp__error(d->err, XP_DOMAIN_GRAPH, code, "code document: %s", what);
}

static s_slot *s_slot_of(s_decoder *d, const char *name)
{
    size_t i = (size_t)XXH3_64bits(name, strlen(name)) & d->mask;
    while (d->slots[i].node && strcmp(d->slots[i].name, name) != 0)
        i = (i + 1) & d->mask;
    return &d->slots[i];
}

/* Node index of name + 1, or 0 when no earlier node has it. */
static size_t s_lookup(s_decoder *d, const char *name)
{
    return s_slot_of(d, name)->node;
}

/* Checks name against the rules of util/names.h and registers it as
 * node `node`. */
static int s_add_name(s_decoder *d, const char *kind, const char *name,
                      size_t node)
{
    xp_error_t e;
    if (xp_check_name(kind, name, &e) != 0)
        return s_fail(d, XP_EINVAL, "%s", e.message);
    s_slot *slot = s_slot_of(d, name);
    if (slot->node)
        return s_fail(d, XP_EINVAL, "duplicate name '%s'", name);
    slot->name = name;
    slot->node = node + 1;
    return 0;
}

/* The string at it when it is UTF-8 of at most max bytes without NUL. */
static const char *s_text(const bson_iter_t *it, size_t max)
{
    uint32_t len = 0;
    if (!BSON_ITER_HOLDS_UTF8(it))
        return NULL;
    const char *s = bson_iter_utf8(it, &len);
    if (len > max || strlen(s) != len || !bson_utf8_validate(s, len, false))
        return NULL;
    return s;
}

/* A symbol is an identifier (C, or mangled C++), or a step name when the
 * function's was unknown; nothing that could end a comment. */
static bool s_symbol_ok(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              (*s >= '0' && *s <= '9') || *s == '_' || *s == '-' || *s == '$' ||
              *s == '.'))
            return false;
    return true;
}

static bool s_hex(const char *s)
{
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return false;
    return true;
}

/* A known field of a document being decoded. */
typedef struct {
    bson_iter_t it;
    bool seen;
} s_at;

/* Index of key in keys, or -1. */
static int s_field(const char *const *keys, int n, const char *key)
{
    for (int i = 0; i < n; i++)
        if (strcmp(keys[i], key) == 0)
            return i;
    return -1;
}

/* Collects the known fields of the document at elem into at[]; unknown
 * fields are ignored, so a newer writer may add some. */
static int s_fields(s_decoder *d, const bson_iter_t *elem, const char *where,
                    size_t index, const char *const *keys, int n, s_at *at)
{
    bson_iter_t f;
    if (!BSON_ITER_HOLDS_DOCUMENT(elem) || !bson_iter_recurse(elem, &f))
        return s_fail(d, XP_ECORRUPT, "%s[%zu] is not a document", where,
                      index);
    while (bson_iter_next(&f)) {
        int k = s_field(keys, n, bson_iter_key(&f));
        if (k < 0)
            continue;
        if (at[k].seen)
            return s_fail(d, XP_ECORRUPT, "%s[%zu] has field '%s' twice", where,
                          index, keys[k]);
        at[k].seen = true;
        at[k].it = f;
    }
    if (f.err_off)
        return s_fail(d, XP_ECORRUPT, "%s[%zu] is damaged", where, index);
    return 0;
}

/* Elements of the array at it, counting up to limit + 1. */
static int s_count(s_decoder *d, const bson_iter_t *it, const char *where,
                   size_t limit, size_t *n)
{
    bson_iter_t child;
    *n = 0;
    if (!BSON_ITER_HOLDS_ARRAY(it) || !bson_iter_recurse(it, &child))
        return s_fail(d, XP_ECORRUPT, "'%s' is not an array", where);
    while (*n <= limit && bson_iter_next(&child))
        (*n)++;
    if (child.err_off)
        return s_fail(d, XP_ECORRUPT, "'%s' is damaged", where);
    return 0;
}

static int s_decode_param(s_decoder *d, const bson_iter_t *elem, size_t i)
{
    s_at at[PARAM_FIELDS] = {{.seen = false}};
    xp_code_param *p = &d->def->params[i];
    const char *where = s_doc_keys[DOC_PARAMETERS];
    if (s_fields(d, elem, where, i, s_param_keys, PARAM_FIELDS, at) != 0)
        return -1;
    if (!at[PARAM_NAME].seen ||
        !(p->name = s_text(&at[PARAM_NAME].it, S_NAME_TEXT_MAX)))
        return s_fail(d, XP_ECORRUPT, "%s[%zu] has no name string", where, i);
    if (s_add_name(d, "parameter", p->name, i) != 0)
        return -1;
    if (at[PARAM_DEFAULT].seen) {
        xp_error_t e;
        p->def = xp_value_new();
        if (xp__value_from_iter(p->def, &at[PARAM_DEFAULT].it, &e) != 0)
            return s_fail(d, XP_ECORRUPT, "default of parameter '%s': %s",
                          p->name, e.message);
    }
    return 0;
}

/* The step's inputs: each an earlier node, so the graph cannot cycle. */
static int s_decode_inputs(s_decoder *d, const bson_iter_t *it, xp_code_step *s,
                           const char *name)
{
    bson_iter_t child;
    size_t n;
    if (s_count(d, it, "inputs", XP_STEP_INPUTS_MAX, &n) != 0)
        return -1;
    if (n > XP_STEP_INPUTS_MAX)
        return s_fail(d, XP_EINVAL, "step '%s' has more than %d inputs", name,
                      XP_STEP_INPUTS_MAX);
    s->inputs = bson_malloc((n ? n : 1) * sizeof *s->inputs);
    bson_iter_recurse(it, &child);
    while (s->n_inputs < n && bson_iter_next(&child)) {
        const char *in = s_text(&child, S_NAME_TEXT_MAX);
        xp_error_t e;
        if (!in)
            return s_fail(d, XP_ECORRUPT,
                          "step '%s': input %zu is not a string", name,
                          s->n_inputs + 1);
        if (xp_check_name("input", in, &e) != 0)
            return s_fail(d, XP_EINVAL, "step '%s': %s", name, e.message);
        size_t node = s_lookup(d, in);
        if (!node)
            return s_fail(d, XP_EINVAL,
                          "step '%s': input '%s' is not a parameter or an "
                          "earlier step",
                          name, in);
        s->inputs[s->n_inputs++] = node - 1;
    }
    return 0;
}

/* The code of a later use: its first use's, named by same_as. */
static int s_decode_same_as(s_decoder *d, const bson_iter_t *it,
                            xp_code_step *s, bool has_code)
{
    const char *first = s_text(it, S_NAME_TEXT_MAX);
    xp_code_def *def = d->def;
    xp_error_t e;
    if (!first)
        return s_fail(d, XP_ECORRUPT, "step '%s': 'same_as' is not a string",
                      s->name);
    if (xp_check_name("same_as", first, &e) != 0)
        return s_fail(d, XP_EINVAL, "step '%s': %s", s->name, e.message);
    size_t node = s_lookup(d, first);
    if (has_code)
        return s_fail(d, XP_EINVAL,
                      "step '%s' has its own code and 'same_as' both", s->name);
    if (node <= def->n_params ||
        def->steps[node - 1 - def->n_params].same_as != XP_CODE_NONE)
        return s_fail(d, XP_EINVAL,
                      "step '%s': same_as '%s' is not an earlier first use "
                      "of a function",
                      s->name, first);
    s->same_as = node - 1 - def->n_params;
    s->source = def->steps[s->same_as].source;
    s->build_id = def->steps[s->same_as].build_id;
    return 0;
}

static int s_decode_flag(s_decoder *d, const s_at *at, int k, const char *name,
                         bool *out)
{
    *out = false;
    if (!at[k].seen)
        return 0;
    if (!BSON_ITER_HOLDS_BOOL(&at[k].it))
        return s_fail(d, XP_ECORRUPT, "step '%s': '%s' is not a bool", name,
                      s_step_keys[k]);
    *out = bson_iter_bool(&at[k].it);
    return 0;
}

/* The optional strings of a step: file, symbol, source, build id. */
static int s_decode_strings(s_decoder *d, const s_at *at, xp_code_step *s)
{
    static const struct {
        int field;
        size_t max;
    } texts[] = {{STEP_FILE, S_FILE_MAX},
                 {STEP_SYMBOL, S_SYMBOL_MAX},
                 {STEP_SOURCE, UINT32_MAX},
                 {STEP_BUILD_ID, S_BUILD_ID_MAX}};
    const char *value[STEP_FIELDS] = {NULL};
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        int k = texts[i].field;
        if (at[k].seen && !(value[k] = s_text(&at[k].it, texts[i].max)))
            return s_fail(d, XP_ECORRUPT,
                          "step '%s': '%s' is not a string of at most %zu "
                          "bytes",
                          s->name, s_step_keys[k], texts[i].max);
    }
    if (value[STEP_SYMBOL] && !s_symbol_ok(value[STEP_SYMBOL]))
        return s_fail(d, XP_EINVAL, "step '%s': symbol is not an identifier",
                      s->name);
    if (value[STEP_BUILD_ID] && !s_hex(value[STEP_BUILD_ID]))
        return s_fail(d, XP_EINVAL, "step '%s': build id is not hexadecimal",
                      s->name);
    s->file = value[STEP_FILE] ? value[STEP_FILE] : "";
    s->symbol = value[STEP_SYMBOL];
    s->source = value[STEP_SOURCE];
    s->build_id = value[STEP_BUILD_ID];
    return 0;
}

static int s_decode_line(s_decoder *d, const bson_iter_t *it, xp_code_step *s)
{
    int64_t line;
    if (BSON_ITER_HOLDS_INT32(it))
        line = bson_iter_int32(it);
    else if (BSON_ITER_HOLDS_INT64(it))
        line = bson_iter_int64(it);
    else
        return s_fail(d, XP_ECORRUPT, "step '%s': 'line' is not an integer",
                      s->name);
    if (line < INT32_MIN || line > INT32_MAX)
        return s_fail(d, XP_ECORRUPT, "step '%s': 'line' is out of range",
                      s->name);
    s->line = (int)line;
    return 0;
}

/* A step's memo environment: at most S_MEMO_ENV_MAX names, each a
 * non-empty string of at most 255 bytes without '='. */
static int s_decode_memo_env(s_decoder *d, const bson_iter_t *it,
                             xp_code_step *s)
{
    bson_iter_t e;
    if (!BSON_ITER_HOLDS_ARRAY(it) || !bson_iter_recurse(it, &e))
        return s_fail(d, XP_ECORRUPT, "step '%s': 'memo_env' is not an array",
                      s->name);
    s->memo_env = bson_malloc0((S_MEMO_ENV_MAX + 1) * sizeof *s->memo_env);
    while (bson_iter_next(&e)) {
        const char *name = s_text(&e, 255);
        if (!name || !*name || strchr(name, '='))
            return s_fail(d, XP_ECORRUPT,
                          "step '%s': 'memo_env' holds something that is not "
                          "a variable name",
                          s->name);
        if (s->n_memo_env == S_MEMO_ENV_MAX)
            return s_fail(d, XP_EINVAL,
                          "step '%s': more than %d memo environment variables",
                          s->name, S_MEMO_ENV_MAX);
        s->memo_env[s->n_memo_env++] = name;
    }
    if (e.err_off)
        return s_fail(d, XP_ECORRUPT, "step '%s': 'memo_env' is damaged",
                      s->name);
    return 0;
}

static int s_decode_step(s_decoder *d, const bson_iter_t *elem, size_t i)
{
    s_at at[STEP_FIELDS] = {{.seen = false}};
    bool result;
    xp_code_def *def = d->def;
    xp_code_step *s = &def->steps[i];
    const char *where = s_doc_keys[DOC_STEPS];
    s->same_as = XP_CODE_NONE;
    if (s_fields(d, elem, where, i, s_step_keys, STEP_FIELDS, at) != 0)
        return -1;
    if (!at[STEP_NAME].seen ||
        !(s->name = s_text(&at[STEP_NAME].it, S_NAME_TEXT_MAX)))
        return s_fail(d, XP_ECORRUPT, "%s[%zu] has no name string", where, i);
    xp_error_t e;
    if (xp_check_name("step", s->name, &e) != 0)
        return s_fail(d, XP_EINVAL, "%s", e.message);
    if (s_decode_strings(d, at, s) != 0 ||
        (at[STEP_LINE].seen && s_decode_line(d, &at[STEP_LINE].it, s) != 0) ||
        (at[STEP_INPUTS].seen &&
         s_decode_inputs(d, &at[STEP_INPUTS].it, s, s->name) != 0) ||
        (at[STEP_SAME_AS].seen &&
         s_decode_same_as(d, &at[STEP_SAME_AS].it, s,
                          at[STEP_SOURCE].seen || at[STEP_BUILD_ID].seen) !=
             0) ||
        s_decode_flag(d, at, STEP_PERSISTED, s->name, &s->persisted) != 0 ||
        s_decode_flag(d, at, STEP_PURE, s->name, &s->pure) != 0 ||
        (at[STEP_MEMO_ENV].seen &&
         s_decode_memo_env(d, &at[STEP_MEMO_ENV].it, s) != 0) ||
        s_decode_flag(d, at, STEP_RESULT, s->name, &result) != 0)
        return -1;
    if (result && def->result != XP_CODE_NONE)
        return s_fail(d, XP_EINVAL, "steps '%s' and '%s' are both the result",
                      def->steps[def->result].name, s->name);
    if (result)
        def->result = i;
    /* Registered last: a step cannot be its own input. */
    return s_add_name(d, "step", s->name, def->n_params + i);
}

/* The parameters and steps arrays of the document. */
static int s_top(s_decoder *d, const bson_t *doc, s_at *at)
{
    bson_iter_t it;
    if (!doc || !bson_iter_init(&it, doc))
        return s_fail(d, XP_ECORRUPT, "not a BSON document");
    while (bson_iter_next(&it)) {
        int k = s_field(s_doc_keys, DOC_FIELDS, bson_iter_key(&it));
        if (k < 0)
            continue;
        if (at[k].seen)
            return s_fail(d, XP_ECORRUPT, "field '%s' twice", s_doc_keys[k]);
        at[k].seen = true;
        at[k].it = it;
    }
    if (it.err_off)
        return s_fail(d, XP_ECORRUPT, "damaged BSON");
    if (!at[DOC_STEPS].seen)
        return s_fail(d, XP_ECORRUPT, "no '%s' array", s_doc_keys[DOC_STEPS]);
    return 0;
}

static int s_decode(s_decoder *d, const bson_t *doc)
{
    s_at at[DOC_FIELDS] = {{.seen = false}};
    bson_iter_t child;
    xp_code_def *def = d->def;
    size_t np = 0, ns = 0;
    if (s_top(d, doc, at) != 0 ||
        (at[DOC_PARAMETERS].seen &&
         s_count(d, &at[DOC_PARAMETERS].it, s_doc_keys[DOC_PARAMETERS],
                 XP_GRAPH_NODES_MAX, &np) != 0) ||
        s_count(d, &at[DOC_STEPS].it, s_doc_keys[DOC_STEPS], XP_GRAPH_NODES_MAX,
                &ns) != 0)
        return -1;
    if (np + ns > XP_GRAPH_NODES_MAX)
        return s_fail(d, XP_EINVAL, "more than %d parameters and steps",
                      XP_GRAPH_NODES_MAX);
    size_t slots = 16;
    while (slots < 2 * (np + ns))
        slots *= 2;
    d->slots = bson_malloc0(slots * sizeof *d->slots);
    d->mask = slots - 1;
    def->params = bson_malloc0((np ? np : 1) * sizeof *def->params);
    def->steps = bson_malloc0((ns ? ns : 1) * sizeof *def->steps);
    if (at[DOC_PARAMETERS].seen) {
        bson_iter_recurse(&at[DOC_PARAMETERS].it, &child);
        while (def->n_params < np && bson_iter_next(&child))
            if (s_decode_param(d, &child, def->n_params++) != 0)
                return -1;
    }
    bson_iter_recurse(&at[DOC_STEPS].it, &child);
    while (def->n_steps < ns && bson_iter_next(&child))
        if (s_decode_step(d, &child, def->n_steps++) != 0)
            return -1;
    if (def->result == XP_CODE_NONE)
        return s_fail(d, XP_EINVAL, "no result step");
    return 0;
}

int xp__code_doc_decode(xp_code_def *out, const bson_t *doc, xp_error_t *err)
{
    memset(out, 0, sizeof *out);
    out->result = XP_CODE_NONE;
    s_decoder d = {.def = out, .err = err};
    int rc = s_decode(&d, doc);
    bson_free(d.slots);
    return rc;
}

void xp__code_def_clear(xp_code_def *def)
{
    for (size_t i = 0; i < def->n_params; i++)
        xp_value_destroy(&def->params[i].def);
    for (size_t i = 0; i < def->n_steps; i++) {
        bson_free(def->steps[i].inputs);
        bson_free(def->steps[i].memo_env);
    }
    bson_free(def->params);
    bson_free(def->steps);
    memset(def, 0, sizeof *def);
    def->result = XP_CODE_NONE;
}

const xp_code_step *xp__code_def_step(const xp_code_def *def, const char *name)
{
    for (size_t i = 0; i < def->n_steps; i++)
        if (strcmp(def->steps[i].name, name) == 0)
            return &def->steps[i];
    return NULL;
}

/* ---------------------------------------------------------------- text */

/* Text from a document inside a C comment: nothing that ends it or the
 * line. */
static void s_comment_text(bson_string_t *s, const char *text)
{
    for (const char *p = text; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            bson_string_append_c(s, '?');
        else
            bson_string_append_c(s, *p);
        if (p[0] == '*' && p[1] == '/')
            bson_string_append_c(s, ' ');
    }
}

bool *xp__code_def_upstream(const xp_code_def *def, size_t step)
{
    bool *needed =
        bson_malloc0((def->n_steps ? def->n_steps : 1) * sizeof *needed);
    if (step >= def->n_steps)
        return needed;
    needed[step] = true;
    /* Inputs are earlier nodes: one backward pass marks every ancestor. */
    for (size_t i = def->n_steps; i-- > 0;) {
        if (!needed[i])
            continue;
        for (size_t k = 0; k < def->steps[i].n_inputs; k++) {
            size_t in = def->steps[i].inputs[k];
            if (in >= def->n_params)
                needed[in - def->n_params] = true;
        }
    }
    return needed;
}

static void s_step_text(bson_string_t *s, const xp_code_def *def, size_t i,
                        bool needed)
{
    const xp_code_step *st = &def->steps[i];
    bson_string_append_printf(s, "/* step %s (registered at ", st->name);
    s_comment_text(s, st->file);
    bson_string_append_printf(s, ":%d)", st->line);
    if (!needed)
        bson_string_append(s, ", not needed by the result: never runs");
    if (st->same_as != XP_CODE_NONE) {
        /* A function used several times is shown once, at its first use:
         * as the document stores it, and as a diff should show a change of
         * that function. */
        bson_string_append_printf(s, ": function %s, as step %s above */\n\n",
                                  st->symbol ? st->symbol : "",
                                  def->steps[st->same_as].name);
        return;
    }
    if (st->symbol && strcmp(st->symbol, st->name) != 0)
        bson_string_append_printf(s, ", function %s", st->symbol);
    bson_string_append(s, " */\n");
    if (st->source)
        bson_string_append_printf(s, "%s\n\n", st->source);
    else
        bson_string_append_printf(s,
                                  "/* source not available; build id %s */\n\n",
                                  st->build_id ? st->build_id : "unknown");
}

char *xp__code_doc_text(const bson_t *doc)
{
    xp_code_def def;
    xp_error_t err;
    bson_string_t *s = bson_string_new(NULL);
    if (xp__code_doc_decode(&def, doc, &err) != 0) {
        bson_string_append(s, "/* ");
        s_comment_text(s, err.message);
        bson_string_append(s, " */\n");
        char *json = bson_as_relaxed_extended_json(doc, NULL);
        if (json)
            bson_string_append_printf(s, "%s\n", json);
        bson_free(json);
    } else {
        bool *needed = xp__code_def_upstream(&def, def.result);
        for (size_t i = 0; i < def.n_steps; i++)
            s_step_text(s, &def, i, needed[i]);
        bson_free(needed);
    }
    xp__code_def_clear(&def);
    return bson_string_free(s, false);
}

/* ---------------------------------------------------------------- API */

int xp_code_text(xp_experiment *ex, int64_t trial_id, char **out,
                 xp_error_t *err)
{
    if (!out)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL, "missing output");
    *out = NULL;
    xp_value *code = NULL;
    if (xp_code_get(ex, trial_id, &code, err) != 0)
        return -1;
    bson_t doc = BSON_INITIALIZER;
    int rc = xp__value_to_bson(code, &doc);
    if (rc == 0)
        *out = xp__code_doc_text(&doc);
    else
        xp__enomem(err);
    bson_destroy(&doc);
    xp_value_destroy(&code);
    return rc;
}
