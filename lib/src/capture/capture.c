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

static void s_environment_check(xp_experiment *ex, const char *previous);

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

/* The code and environment hashes of the last trial ("" where absent),
 * from one read of its record. */
static void s_last_trial_hashes(xp_experiment *ex, char code[33], char env[33])
{
    int64_t last = 0;
    bson_t doc;
    bson_iter_t it;
    code[0] = env[0] = '\0';
    if (xp__store_last_id(ex->backend, &last, NULL) != 0 || last < 1 ||
        xp__store_trial_get(ex->backend, last, &doc, NULL) != 0)
        return;
    if (bson_iter_init_find(&it, &doc, XP_RECORD_CODE_HASH) &&
        BSON_ITER_HOLDS_UTF8(&it))
        bson_strncpy(code, bson_iter_utf8(&it, NULL), 33);
    if (bson_iter_init_find(&it, &doc, XP_RECORD_ENVIRONMENT_HASH) &&
        BSON_ITER_HOLDS_UTF8(&it))
        bson_strncpy(env, bson_iter_utf8(&it, NULL), 33);
    bson_destroy(&doc);
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
static void s_code_check(xp_experiment *ex, const char *previous)
{
    if (!previous[0] || strcmp(previous, ex->code_hash) == 0)
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

/* Stores a content document and its text unless the last trial already
 * refers to it (then it is stored: contents go in before the trial that
 * refers to them), which spares rendering the text every process. */
static int s_content_put(xp_experiment *ex, const char *kind, const char *hash,
                         const bson_t *doc, const char *last_hash,
                         xp_error_t *err)
{
    if (strcmp(hash, last_hash) == 0)
        return 0;
    char *text = strcmp(kind, "code") == 0 ? xp__code_doc_text(doc)
                                           : xp__render_text(doc);
    int rc = xp__store_content_put(ex->backend, kind, hash, doc, text, err);
    bson_free(text);
    return rc;
}

int xp__capture_before_trial(xp_experiment *ex, xp_error_t *err)
{
    if (ex->contents_stored)
        return 0;
    const char *env_hash;
    const bson_t *env = xp__environment(&env_hash);
    char last_code[33], last_env[33];
    s_last_trial_hashes(ex, last_code, last_env);
    /* Compared at the first trial of a handle, not at open: readers such
     * as the xp command are a different program in a different
     * environment and must not report changes. */
    if (!ex->code_checked) {
        s_environment_check(ex, last_env);
        s_code_check(ex, last_code);
        ex->code_checked = true;
    }
    int rc = s_content_put(ex, "code", ex->code_hash, ex->code, last_code, err);
    if (rc == 0)
        rc = s_content_put(ex, "environment", env_hash, env, last_env, err);
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

/* Logs each category of the environment that differs from the previous
 * trial's (hash previous, "" when none). */
static void s_environment_check(xp_experiment *ex, const char *previous)
{
    const char *hash;
    const bson_t *env = xp__environment(&hash);
    if (!previous[0] || strcmp(previous, hash) == 0)
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
