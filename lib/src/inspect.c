/* inspect.c — reading back what a trial ran with: its code and
 * environment by trial id, and the differences between two trials
 * (parameters, code, environment) as unified diffs. */
#include "xp/xp.h"

#include "capture/env.h"
#include "capture/git.h"
#include "capture/snapshot.h"
#include "code_doc.h"
#include "experiment.h"
#include "store/store.h"
#include "util/error.h"
#include "util/render.h"
#include "value.h"

#include <stdio.h>
#include <string.h>

/* Loads the content document referenced by field key of a trial. */
static int s_trial_content(xp_experiment *ex, int64_t trial_id, const char *key,
                           bson_t *out, xp_error_t *err)
{
    if (xp__check_trial_id(trial_id, err) != 0)
        return -1;
    bson_t doc;
    bson_iter_t it;
    if (xp__store_trial_get(ex->backend, trial_id, &doc, err) != 0)
        return -1;
    char hash[33] = "";
    if (bson_iter_init_find(&it, &doc, key) && BSON_ITER_HOLDS_UTF8(&it))
        bson_strncpy(hash, bson_iter_utf8(&it, NULL), sizeof hash);
    bson_destroy(&doc);
    if (!hash[0])
        return xp__error(err, XP_DOMAIN_BACKEND, XP_ENOTFOUND,
                         "trial %lld has no %s recorded", (long long)trial_id,
                         key);
    return xp__store_content_get(ex->backend, hash, out, err);
}

int xp_code_get(xp_experiment *ex, int64_t trial_id, xp_value **out,
                xp_error_t *err)
{
    if (!ex || !out)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "missing experiment or output");
    *out = NULL;
    bson_t code;
    if (trial_id == 0) {
        pthread_mutex_lock(&ex->lock);
        bool have = ex->n_nodes > 0;
        if (have) {
            bson_init(&code);
            xp__code_doc_encode(ex, &code);
        }
        pthread_mutex_unlock(&ex->lock);
        if (!have) {
            int64_t last = 0;
            if (xp__store_last_id(ex->backend, &last, err) != 0)
                return -1;
            if (last < 1)
                return xp__error(err, XP_DOMAIN_ARGUMENT, XP_ENOTFOUND,
                                 "experiment '%s' has no steps registered "
                                 "and no trials",
                                 ex->id);
            if (s_trial_content(ex, last, XP_RECORD_CODE_HASH, &code, err) != 0)
                return -1;
        }
    } else if (s_trial_content(ex, trial_id, XP_RECORD_CODE_HASH, &code, err) !=
               0) {
        return -1;
    }
    xp_value *v = xp_value_new();
    int rc = xp__value_from_bson(v, &code, err);
    bson_destroy(&code);
    if (rc != 0)
        xp_value_destroy(&v);
    *out = v;
    return rc;
}

static bool s_known_category(const char *category)
{
    for (size_t i = 0; xp__environment_categories[i]; i++)
        if (strcmp(category, xp__environment_categories[i]) == 0)
            return true;
    return false;
}

int xp_environment_get(xp_experiment *ex, int64_t trial_id,
                       const char *category, xp_value **out, xp_error_t *err)
{
    if (!ex || !out)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "missing experiment or output");
    *out = NULL;
    if (category && !s_known_category(category))
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "unknown environment category '%s' (platform, "
                         "cpu, runtime, libraries, git, gpu)",
                         category);
    bson_t env;
    if (trial_id == 0)
        bson_copy_to(xp__environment(NULL), &env);
    else if (s_trial_content(ex, trial_id, XP_RECORD_ENVIRONMENT_HASH, &env,
                             err) != 0)
        return -1;
    xp_value *v = xp_value_new();
    int rc = xp__value_from_bson(v, &env, err);
    bson_destroy(&env);
    if (rc == 0 && category) {
        const xp_value *c = xp_value_get(v, category);
        xp_value *picked = c ? xp_value_dup(c) : NULL;
        xp_value_destroy(&v);
        if (!picked)
            rc = xp__error(err, XP_DOMAIN_ARGUMENT, XP_ENOTFOUND,
                           "environment category '%s' was not captured",
                           category);
        v = picked;
    }
    if (rc != 0)
        xp_value_destroy(&v);
    *out = v;
    return rc;
}

static void s_add_lines(xp_value *arr, char **lines, size_t n)
{
    for (size_t i = 0; i < n; i++)
        xp_set_string(xp_array_append(arr), lines[i]);
}

static void s_diff_section(xp_value *out, const char *key, const char *a,
                           const char *b, const char *name_a,
                           const char *name_b)
{
    xp_value *arr = xp_document_set(out, key);
    xp_set_array(arr);
    if (strcmp(a, b) == 0)
        return;
    size_t n = 0;
    char **lines = xp__unified_diff(a, b, name_a, name_b, &n);
    s_add_lines(arr, lines, n);
    xp__lines_free(lines, n);
}

/* The memoised steps each trial reused ("step: trial" lines), a section
 * only when one of them reused some. */
static void s_diff_reused(xp_value *out, const bson_t docs[2],
                          const char *name_a, const char *name_b)
{
    char *text[2];
    bool any = false;
    for (int i = 0; i < 2; i++) {
        bson_iter_t it;
        bson_t sub = BSON_INITIALIZER;
        if (bson_iter_init_find(&it, &docs[i], XP_RECORD_REUSED) &&
            BSON_ITER_HOLDS_DOCUMENT(&it)) {
            uint32_t len;
            const uint8_t *data;
            bson_iter_document(&it, &len, &data);
            bson_t view;
            if (bson_init_static(&view, data, len))
                bson_concat(&sub, &view);
            any = true;
        }
        text[i] = xp__render_text(&sub);
        bson_destroy(&sub);
    }
    if (any)
        s_diff_section(out, "reused", text[0], text[1], name_a, name_b);
    bson_free(text[0]);
    bson_free(text[1]);
}

int xp_trial_diff(xp_experiment *ex, int64_t trial_a, int64_t trial_b,
                  xp_value **out, xp_error_t *err)
{
    if (!ex || !out)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "missing experiment or output");
    *out = NULL;
    bson_t docs[2], codes[2], envs[2];
    int64_t ids[2] = {trial_a, trial_b};
    int loaded = 0, rc = -1;
    for (; loaded < 2; loaded++) {
        if (ids[loaded] < 1) {
            xp__error(err, XP_DOMAIN_ARGUMENT, XP_ENOTFOUND,
                      "invalid trial id %lld", (long long)ids[loaded]);
            break;
        }
        if (xp__store_trial_get(ex->backend, ids[loaded], &docs[loaded], err) !=
            0)
            break;
        if (s_trial_content(ex, ids[loaded], XP_RECORD_CODE_HASH,
                            &codes[loaded], NULL) != 0)
            bson_init(&codes[loaded]);
        if (s_trial_content(ex, ids[loaded], XP_RECORD_ENVIRONMENT_HASH,
                            &envs[loaded], NULL) != 0)
            bson_init(&envs[loaded]);
    }
    if (loaded == 2) {
        char name_a[32], name_b[32];
        snprintf(name_a, sizeof name_a, "trial %lld", (long long)trial_a);
        snprintf(name_b, sizeof name_b, "trial %lld", (long long)trial_b);
        xp_value *result = xp_value_new();
        xp_set_document(result);
        char *text[2];
        bson_iter_t it;
        for (int i = 0; i < 2; i++) {
            bson_t *clean = bson_new();
            if (bson_iter_init_find(&it, &docs[i], XP_RECORD_PARAMETERS) &&
                BSON_ITER_HOLDS_DOCUMENT(&it)) {
                bson_t sub;
                uint32_t len;
                const uint8_t *data;
                bson_iter_document(&it, &len, &data);
                if (bson_init_static(&sub, data, len))
                    bson_concat(clean, &sub);
            }
            /* Parameter names cannot contain '(': no clash. */
            if (bson_iter_init_find(&it, &docs[i], "seed"))
                bson_append_iter(clean, "(seed)", -1, &it);
            text[i] = xp__render_text(clean);
            bson_destroy(clean);
        }
        s_diff_section(result, "parameters", text[0], text[1], name_a, name_b);
        bson_free(text[0]);
        bson_free(text[1]);
        text[0] = xp__code_doc_text(&codes[0]);
        text[1] = xp__code_doc_text(&codes[1]);
        s_diff_section(result, "code", text[0], text[1], name_a, name_b);
        bson_free(text[0]);
        bson_free(text[1]);
        text[0] = xp__render_text(&envs[0]);
        text[1] = xp__render_text(&envs[1]);
        s_diff_section(result, "environment", text[0], text[1], name_a, name_b);
        bson_free(text[0]);
        bson_free(text[1]);
        s_diff_reused(result, docs, name_a, name_b);
        *out = result;
        rc = 0;
    }
    for (int i = 0; i < loaded; i++) {
        bson_destroy(&docs[i]);
        bson_destroy(&codes[i]);
        bson_destroy(&envs[i]);
    }
    return rc;
}
