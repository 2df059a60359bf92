/* capture.c — what makes a trial reproducible beyond its parameters: the
 * code context of the graph and the environment of the process, each
 * stored once per distinct content (XXH128) and referenced by trials, and
 * the change reports (unified diffs) against the previous trial. */
#include "capture/capture.h"

#include "capture/env.h"
#include "capture/git.h"
#include "capture/snapshot.h"
#include "code_doc.h"
#include "experiment.h"
#include "store/store.h"
#include "util/bson_util.h"
#include "util/log.h"
#include "util/render.h"

#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------- code */

static void s_log_diff(const char *old_text, const char *new_text,
                       const char *label)
{
    size_t n = 0;
    char **lines = xp__unified_diff(old_text, new_text, label, label, &n);
    for (size_t i = 0; i < n; i++)
        xp__log(XP_LOG_WARNING, "%s", lines[i]);
    xp__lines_free(lines, n);
}

/* Hash stored under field key of the last trial, or false. */
static bool s_last_trial_hash(xp_experiment *ex, const char *key, char out[33])
{
    int64_t last = 0;
    bson_t doc;
    bson_iter_t it;
    if (xp__store_last_id(ex->backend, &last, NULL) != 0 || last < 1 ||
        xp__store_trial_get(ex->backend, last, &doc, NULL) != 0)
        return false;
    bool found =
        bson_iter_init_find(&it, &doc, key) && BSON_ITER_HOLDS_UTF8(&it);
    if (found)
        bson_strncpy(out, bson_iter_utf8(&it, NULL), 33);
    bson_destroy(&doc);
    return found;
}

/* The source step name had in a previous code document, or NULL. */
static const char *s_source_before(const xp_code_def *old, const char *name)
{
    const xp_code_step *st = old ? xp__code_def_step(old, name) : NULL;
    return st ? (st->source ? st->source : "") : NULL;
}

/* Logs each step whose code differs from the previous trial's. A
 * function used by several steps is reported once, at its first use,
 * unless a later use had other code before. */
static void s_code_check(xp_experiment *ex)
{
    char previous[33];
    if (!s_last_trial_hash(ex, XP_RECORD_CODE_HASH, previous) ||
        strcmp(previous, ex->code_hash) == 0)
        return;
    bson_t old;
    if (xp__store_content_get(ex->backend, previous, &old, NULL) != 0)
        return;
    xp_code_def def;
    bool readable = xp__code_doc_decode(&def, &old, NULL) == 0;
    for (size_t i = 0; i < ex->n_nodes; i++) {
        xp_node *n = ex->nodes[i];
        if (n->is_param)
            continue;
        const char *before = s_source_before(readable ? &def : NULL, n->name);
        const char *now = n->source ? n->source : "";
        if (before && strcmp(before, now) == 0)
            continue;
        if (n->same_as) {
            const char *first =
                s_source_before(readable ? &def : NULL, n->same_as->name);
            if (before && first && strcmp(before, first) == 0)
                continue;
        }
        xp__log(XP_LOG_WARNING, "Code context has been changed: %s", n->name);
        s_log_diff(before ? before : "", now, n->name);
    }
    xp__code_def_clear(&def);
    bson_destroy(&old);
}

int xp__capture_before_trial(xp_experiment *ex, xp_error_t *err)
{
    if (ex->contents_stored)
        return 0;
    const char *env_hash;
    const bson_t *env = xp__environment(&env_hash);
    /* Compared at the first trial of a handle, not at open: readers such
     * as the xp command are a different program in a different
     * environment and must not report changes. */
    if (!ex->code_checked) {
        xp__environment_check(ex);
        s_code_check(ex);
        ex->code_checked = true;
    }
    char *code_text = xp__code_doc_text(ex->code);
    char *env_text = xp__render_text(env);
    int rc = xp__store_content_put(ex->backend, "code", ex->code_hash, ex->code,
                                   code_text, err);
    if (rc == 0)
        rc = xp__store_content_put(ex->backend, "environment", env_hash, env,
                                   env_text, err);
    bson_free(code_text);
    bson_free(env_text);
    if (rc == 0)
        ex->contents_stored = true;
    return rc;
}

/* Renders category of an environment document as text; "" if absent. */
static char *s_category_text(const bson_t *env, const char *category)
{
    bson_t sub;
    bson_iter_t it;
    if (!bson_iter_init_find(&it, env, category) ||
        !BSON_ITER_HOLDS_DOCUMENT(&it) || !xp__bson_sub(env, category, &sub))
        return bson_strdup("");
    return xp__render_text(&sub);
}

void xp__environment_check(xp_experiment *ex)
{
    char previous[33];
    const char *hash;
    const bson_t *env = xp__environment(&hash);
    if (!s_last_trial_hash(ex, XP_RECORD_ENVIRONMENT_HASH, previous) ||
        strcmp(previous, hash) == 0)
        return;
    bson_t old;
    if (xp__store_content_get(ex->backend, previous, &old, NULL) != 0)
        return;
    for (size_t i = 0; xp__environment_categories[i]; i++) {
        const char *category = xp__environment_categories[i];
        char *a = s_category_text(&old, category);
        char *b = s_category_text(env, category);
        if (strcmp(a, b) != 0) {
            xp__log(XP_LOG_WARNING,
                    "Environment information has been changed: %s", category);
            s_log_diff(a, b, category);
        }
        bson_free(a);
        bson_free(b);
    }
    bson_destroy(&old);
}
