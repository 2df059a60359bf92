/* graph.h — the experiment's graph: nodes (parameters and
 * steps), its limits, freezing the definition at the first trial, and
 * rebuilding a graph from a code document (code_doc.h). */
#ifndef XP_GRAPH_H
#define XP_GRAPH_H

#include "xp/xp.h"

#include <bson/bson.h>
#include <stdbool.h>
#include <stddef.h>

/* Limits of one definition, the same whether a program defines it or a
 * code document (from any client or store) describes it. */
#define XP_GRAPH_NODES_MAX 10000 /* parameters and steps */
#define XP_STEP_INPUTS_MAX 10000

struct xp_node {
    xp_experiment *ex;
    size_t index; /* position in ex->nodes: registration order */
    bool is_param;
    bool persisted;
    bool pure; /* memoisable (xp_pure); implies persisted */
    /* Environment variables whose values enter a pure step's memo key
     * (xp_memo_env), owned. */
    char **memo_env;
    size_t n_memo_env;
    char *name;
    /* parameters */
    xp_value *def;     /* default, or NULL */
    xp_value *current; /* value set for the next trials, or NULL */
    /* steps */
    xp_step_fn fn;
    size_t n_inputs;
    xp_node **inputs;
    char *file;
    int line;
    char *symbol;      /* the function's symbol, or NULL when unknown */
    char *source;      /* captured definition text, or NULL */
    char *source_path; /* where the source was read from, or NULL */
    /* An earlier use of the same function, whose code this node holds
     * too (the code document stores it once), or NULL. */
    const xp_node *same_as;
    char *build_id; /* from a code document: the binary of a step without
                     * source; NULL for steps defined here */
    /* A command step (command/command.h), owned; NULL for a C step. */
    struct xp_command *command;
    /* filled when the graph is frozen at the first trial */
    bool needed; /* an ancestor of (or) the result */
    size_t n_dependents;
    xp_node **dependents; /* needed steps taking this node as input */
};

/* Freezes the definition (first trial): checks it, computes which nodes
 * the result needs and their dependents, builds the code document. Takes
 * ex->lock; a no-op once frozen. */
int xp__graph_freeze(xp_experiment *ex, xp_error_t *err);
/* The same with ex->lock held by the caller. */
int xp__graph_freeze_locked(xp_experiment *ex, xp_error_t *err);
xp_node *xp__graph_find(const xp_experiment *ex, const char *name);
/* The result node, or NULL while none is defined. */
xp_node *xp__graph_result(const xp_experiment *ex);
/* Defines an empty experiment from a code document (untrusted: decoded
 * and checked by xp__code_doc_decode). Steps have no function: they run
 * remotely. ex->code becomes that document, byte for byte. Takes
 * ex->lock. */
int xp__graph_from_code(xp_experiment *ex, const bson_t *code, xp_error_t *err);
void xp__graph_free(xp_experiment *ex);
/* Adds command step cmd (taken) named name over inputs, its code context
 * text source (copied) registered at file:line; as xp_step_add, NULL
 * after recording a definition error. */
xp_node *xp__graph_command_add(xp_experiment *ex, const char *name,
                               struct xp_command *cmd, size_t n,
                               xp_node *const *inputs, const char *source,
                               const char *file, int line);

#endif /* XP_GRAPH_H */
