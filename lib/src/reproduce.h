/* reproduce.h — xp reproduce: what a re-run of a recorded trial takes
 * from it (parameters, seed), and the comparison of the two records
 * (status, result, each step's output hash, code and environment diffs)
 * as a report document and as text. */
#ifndef XP_REPRODUCE_H
#define XP_REPRODUCE_H

#include "xp/xp.h"

/* Compares two trial documents as xp_trial_get returns them; code_steps
 * is the array of step documents of the reproduction's code ({name,
 * result?}; may be NULL), for the step order and the result step; diff
 * the xp_trial_diff document of the two (may be NULL). *out (caller
 * destroys) is the report xp_reproduce_compare documents. */
int xp__reproduce_compare_docs(const xp_value *original,
                               const xp_value *reproduction,
                               const xp_value *code_steps, const xp_value *diff,
                               xp_value **out, xp_error_t *err);

#endif /* XP_REPRODUCE_H */
