/* memo.h — memoisation of pure steps (xp_pure): a step's memo key (its
 * name, its own code, the hashes of its inputs and the environment
 * variables it names), the store's memo entries, the in-flight table
 * that runs one key once among the concurrent trials of an experiment
 * handle, and `xp gc`. trial.c calls it for every executor. */
#ifndef XP_MEMO_H
#define XP_MEMO_H

#include "xp/xp.h"

#include "graph.h"
#include "store/record.h"
#include "store/store.h"

#include <stdbool.h>
#include <stdint.h>

/* What a trial knows of one pure step, by node index. */
typedef struct {
    bool keyed;    /* key computed: the step takes part */
    bool owner;    /* holds the in-flight claim of key */
    bool has_prev; /* an entry of key existed when the step ran */
    uint8_t key[16];
    uint8_t prev[16]; /* that entry's output hash */
    int64_t reused;   /* the trial whose output was reused; 0: ran */
    void *flight;     /* the flight waited for (xp__memo_before_nowait) */
} xp_memo_step;

/* The memo mode names recorded as the record's "memo" field. */
const char *xp__memo_mode_name(xp_memo_mode mode);
/* The mode a name says; XP_MEMO_USE for NULL or an unknown one. */
xp_memo_mode xp__memo_mode_parse(const char *name);

/* Counts ex's needed pure steps into ex->n_pure and, when there are
 * some, computes each one's code hash once. ex->lock held, graph
 * frozen; a no-op when done. */
void xp__memo_prepare_locked(xp_experiment *ex);
/* Frees ex's memo state; NULL-safe. */
void xp__memo_free(xp_experiment *ex);

/* The key of pure step n over its input values in into s (s->keyed).
 * False when a part of it cannot be computed: the step then runs
 * without reuse, said once per step and handle. */
bool xp__memo_key(xp_experiment *ex, const xp_node *n,
                  const xp_value *const *in, xp_memo_step *s);
/* Before keyed step n runs in mode: 1 when its output is reused (*out
 * the value, caller owns; s->reused the trial it came from), else 0 and
 * the step runs; when s->owner is then set the caller must call
 * xp__memo_after. Waits while another trial of this handle runs the same
 * key. Never fails: an unreadable entry or a removed value is a miss. */
int xp__memo_before(xp_experiment *ex, const xp_node *n, xp_memo_mode mode,
                    xp_memo_step *s, xp_value **out);
/* The same for a single-threaded executor (the scheduler), which must
 * not block: 2 when another trial runs the key now; s is then registered
 * with it, and xp__memo_collect says when it is done. */
int xp__memo_before_nowait(xp_experiment *ex, const xp_node *n,
                           xp_memo_mode mode, xp_memo_step *s, xp_value **out);
/* For s waiting (before_nowait gave 2): 2 still running; 1 done, *out
 * its output (caller owns) from trial *trial; 0 it failed there, so the
 * caller runs xp__memo_before_nowait again. */
int xp__memo_collect(xp_experiment *ex, xp_memo_step *s, xp_value **out,
                     int64_t *trial);
/* s stops waiting (its trial is dropped); NULL-safe on ex->memo. */
void xp__memo_abandon(xp_experiment *ex, xp_memo_step *s);
/* After a claimed step ran: out its output (NULL when it failed), trial
 * the trial it ran in. Hands out to the trials waiting for the key. */
void xp__memo_after(xp_experiment *ex, xp_memo_step *s, const xp_value *out,
                    int64_t trial);

/* The entries a finished trial leaves, from steps (by node index) and
 * the output hashes of its steps (hashes/hashed by node index): one per
 * keyed step with an output, and an impurity marker (with a warning)
 * for a step whose output differs from its key's entry. Caller frees
 * *out. */
size_t xp__memo_entries(xp_experiment *ex, int64_t trial, xp_memo_mode mode,
                        const xp_memo_step *steps, const xp_step_hash *hashes,
                        const bool *hashed, xp_memo_entry **out);

/* The "reused" document of a trial's record ({step: trial}) into out
 * (initialised); false when no step was reused. */
bool xp__memo_reused_doc(const xp_experiment *ex, const xp_memo_step *steps,
                         bson_t *out);

#endif /* XP_MEMO_H */
