/* experiment.h — the experiment handle shared by the trial
 * lifecycle, capture and the engines: its definition, backend, seed and
 * captured code. */
#ifndef XP_EXPERIMENT_H
#define XP_EXPERIMENT_H

#include "xp/xp.h"

#include "graph.h"
#include "store/store.h"
#include "util/pool.h"

#include <bson/bson.h>
#include <pthread.h>

/* The fields are the core's and capture's (which fills code and the
 * stored-content marks); the other wings read through the accessors
 * below. */
struct xp_experiment {
    char *id;
    xp_backend *backend;
    bool read_only; /* opened to read: writes nothing to the backend */
    int threads;
    /* Guards the definition, parameter values, the seed and the pool. */
    pthread_mutex_t lock;
    xp_node **nodes;
    size_t n_nodes, cap_nodes;
    /* graph.c: nodes by name, open addressing (index + 1; 0: empty),
     * n_slots a power of two at least twice n_nodes; NULL: none yet */
    uint32_t *node_slots;
    size_t n_slots;
    xp_node *result;
    bool has_def_error;
    xp_error_t def_error;
    /* The last refused definition that left the graph as it was (e.g. a
     * second result): logged, and quoted if its NULL is used as input. */
    bool has_soft_error;
    xp_error_t soft_error;
    bool frozen;
    size_t n_needed_steps;
    xp_pool *pool;
    bool has_seed;
    uint64_t seed;
    /* Capture, computed when the graph is frozen. */
    bson_t *code;       /* code context document */
    char code_hash[33]; /* XXH128 hex */
    bool code_checked;  /* compared with the previous trial's code */
    bool contents_stored;
    /* Memoisation (memo.c): the needed pure steps, counted when the
     * graph is frozen, and memo.c's state (NULL without them). */
    size_t n_pure;
    bool memo_counted;
    struct xp_memo_state *memo;
};

/* What the wings read of an experiment (its fields are the core's):
 * its id, its store (NULL while detached), and its code document with
 * the document's hash once the graph is frozen (NULL and "" before). All
 * experiment-owned. */
const char *xp__experiment_id(const xp_experiment *ex);
xp_backend *xp__experiment_store(const xp_experiment *ex);
const bson_t *xp__experiment_code(const xp_experiment *ex);
const char *xp__experiment_code_hash(const xp_experiment *ex);

/* An experiment without backend, for defining and running steps only
 * (xp-worker), or for checking a definition and arguments before a store
 * is opened or created (script mode). Caller owns *out
 * (xp_experiment_destroy). */
/* 0 when id can name a trial (ids start at 1), else XP_ENOTFOUND saying
 * so. */
int xp__check_trial_id(int64_t id, xp_error_t *err);
int xp__experiment_new_detached(xp_experiment **out, const char *id,
                                xp_error_t *err);
/* Opens the backend of a detached experiment (xp_experiment_open is
 * new_detached + attach): its graph, defined or not, is kept. On failure
 * ex stays detached. */
int xp__experiment_attach(xp_experiment *ex, const xp_open_options *opts,
                          xp_error_t *err);

#endif /* XP_EXPERIMENT_H */
