/* code_doc.h — the code document: an experiment's graph as BSON
 * (parameters with defaults, steps with inputs, result and persisted
 * marks, the code of each function once), written when the graph is
 * frozen, stored per distinct content, shipped to schedulers and read
 * back. Its field names are spelled in code_doc.c only. */
#ifndef XP_CODE_DOC_H
#define XP_CODE_DOC_H

#include "xp/xp.h"

#include <bson/bson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct {
    const char *name; /* borrowed from the document */
    xp_value *def;    /* owned; NULL without default */
} xp_code_param;

/* One step as the document describes it. Strings are borrowed from the
 * document; source and build_id are those of the step's function, also
 * for a later use (same_as) of a function. */
typedef struct {
    const char *name;
    const char *file;     /* "" when unknown */
    const char *symbol;   /* the function's name, or NULL */
    const char *source;   /* or NULL: not captured */
    const char *build_id; /* or NULL */
    int line;
    size_t same_as; /* index in steps of the function's first use, or
                     * XP_CODE_NONE for a first use */
    bool persisted;
    bool pure;
    const char **memo_env; /* owned array of borrowed names */
    size_t n_memo_env;
    size_t n_inputs;
    size_t *inputs; /* node indices: parameters first (i < n_params),
                     * then steps (n_params + index in steps) */
} xp_code_step;

#define XP_CODE_NONE ((size_t)-1)

/* A decoded code document: nodes in the order a graph registers them
 * (parameters, then steps; every input an earlier node). */
typedef struct {
    size_t n_params, n_steps;
    xp_code_param *params;
    xp_code_step *steps;
    size_t result; /* index in steps */
} xp_code_def;

/* Writes the code document of ex's graph into out (initialised, empty).
 * ex->lock held. */
void xp__code_doc_encode(const xp_experiment *ex, bson_t *out);
/* Builds ex->code and ex->code_hash once (ex->lock held, graph frozen). */
void xp__code_build(xp_experiment *ex);
/* Decodes and checks an untrusted document: types, name rules and
 * lengths, the limits of graph.h, inputs naming earlier nodes (so no
 * cycle), exactly one result. XP_ECORRUPT for a malformed document,
 * XP_EINVAL for a graph that breaks a rule. *out borrows from doc, which
 * must outlive it; clear it with xp__code_def_clear (also on failure). */
int xp__code_doc_decode(xp_code_def *out, const bson_t *doc, xp_error_t *err);
void xp__code_def_clear(xp_code_def *def);
/* The step called name, or NULL. */
const xp_code_step *xp__code_def_step(const xp_code_def *def, const char *name);
/* upstream[i] (caller frees with bson_free): step i is step or one of
 * its ancestors; def->result gives the steps a trial runs. */
bool *xp__code_def_upstream(const xp_code_def *def, size_t step);
/* C text of a code document (stored beside it, shown by `xp code`): each
 * step under a comment saying where it was registered, a function's code
 * at its first use. A document that does not decode is shown as JSON
 * after a comment saying why. Caller frees (bson_free). */
char *xp__code_doc_text(const bson_t *doc);

#endif /* XP_CODE_DOC_H */
