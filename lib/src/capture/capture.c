/* capture.c — what makes a trial reproducible beyond its parameters: the
 * code context of the graph and the environment of the process, each
 * stored once per distinct content (XXH128) and referenced by trials, and
 * the change reports (unified diffs) against the previous trial. */
#include "capture/capture.h"

#include "capture/code.h"
#include "capture/env.h"
#include "capture/git.h"
#include "code_doc.h"
#include "experiment.h"
#include "store/record.h"
#include "store/store.h"

#include "util/error.h"
#include "util/log.h"
#include "value.h"

#include <stdio.h>
#include <string.h>
#include <xxhash.h>

void xp__hash_hex(const bson_t *doc, char out[33])
{
    XXH128_hash_t h = XXH3_128bits(bson_get_data(doc), doc->len);
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)h.high64,
             (unsigned long long)h.low64);
}

/* ---------------------------------------------------------------- text */

static void s_render_value(bson_string_t *s, const char *prefix,
                           const bson_iter_t *it);

static void s_render_doc(bson_string_t *s, const char *prefix,
                         const bson_iter_t *parent, bool is_array)
{
    bson_iter_t child;
    if (!bson_iter_recurse(parent, &child))
        return;
    while (bson_iter_next(&child)) {
        if (is_array) {
            s_render_value(s, prefix, &child);
        } else {
            char *key = prefix[0] ? bson_strdup_printf("%s.%s", prefix,
                                                       bson_iter_key(&child))
                                  : bson_strdup(bson_iter_key(&child));
            s_render_value(s, key, &child);
            bson_free(key);
        }
    }
}

/* One line per scalar (`key: value`); array items repeat the key, so a
 * package list diffs line by line; multi-line strings are indented. */
static void s_render_value(bson_string_t *s, const char *prefix,
                           const bson_iter_t *it)
{
    switch (bson_iter_type(it)) {
    case BSON_TYPE_DOCUMENT:
        if (prefix[0] && strchr(prefix, '[') == NULL &&
            bson_iter_key(it)[0] >= '0' && bson_iter_key(it)[0] <= '9') {
            /* array of documents: one line per element */
            bson_iter_t child;
            bson_string_append_printf(s, "%s:", prefix);
            if (bson_iter_recurse(it, &child))
                while (bson_iter_next(&child)) {
                    char *text = NULL;
                    if (BSON_ITER_HOLDS_UTF8(&child))
                        text = bson_strdup(bson_iter_utf8(&child, NULL));
                    else {
                        bson_t one = BSON_INITIALIZER;
                        bson_append_iter(&one, "v", 1, &child);
                        text = bson_as_relaxed_extended_json(&one, NULL);
                        bson_destroy(&one);
                    }
                    bson_string_append_printf(s, " %s=%s",
                                              bson_iter_key(&child), text);
                    bson_free(text);
                }
            bson_string_append(s, "\n");
            return;
        }
        s_render_doc(s, prefix, it, false);
        return;
    case BSON_TYPE_ARRAY: s_render_doc(s, prefix, it, true); return;
    case BSON_TYPE_UTF8: {
        const char *v = bson_iter_utf8(it, NULL);
        if (strchr(v, '\n')) {
            bson_string_append_printf(s, "%s: |\n", prefix);
            const char *line = v;
            while (*line) {
                const char *end = strchr(line, '\n');
                size_t n = end ? (size_t)(end - line) : strlen(line);
                bson_string_append_printf(s, "    %.*s\n", (int)n, line);
                line += n + (end ? 1 : 0);
            }
        } else {
            bson_string_append_printf(s, "%s: %s\n", prefix, v);
        }
        return;
    }
    default: {
        bson_t one = BSON_INITIALIZER;
        bson_append_iter(&one, "v", 1, it);
        bson_iter_t v;
        bson_iter_init_find(&v, &one, "v");
        char *json = bson_as_relaxed_extended_json(&one, NULL);
        /* `{ "v" : X }` -> X */
        const char *x = json ? strstr(json, ": ") : NULL;
        size_t n = x ? strlen(x + 2) : 0;
        bson_string_append_printf(s, "%s: %.*s\n", prefix,
                                  n >= 2 ? (int)(n - 2) : 0, x ? x + 2 : "");
        bson_free(json);
        bson_destroy(&one);
        return;
    }
    }
}

char *xp__render_text(const bson_t *doc)
{
    bson_string_t *s = bson_string_new(NULL);
    bson_iter_t it;
    if (bson_iter_init(&it, doc))
        while (bson_iter_next(&it))
            s_render_value(s, bson_iter_key(&it), &it);
    return bson_string_free(s, false);
}

/* ---------------------------------------------------------------- env */

/* The process environment is captured once per process. An experiment
 * opened for writing starts it: the categories that read no environment
 * variables on a background thread, git (libgit2 reads GIT_DIR, HOME...)
 * in the opening thread itself, since getenv racing a setenv of the
 * program's would be undefined. The first trial waits for whatever is
 * left; a program that never opened for writing captures all inline.
 * fork() waits for a capture in flight: a child must not inherit this
 * state half-made. */
enum { S_ENV_NONE, S_ENV_RUNNING, S_ENV_DONE };
static pthread_mutex_t s_env_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t s_env_cond = PTHREAD_COND_INITIALIZER;
static pthread_once_t s_env_atfork_once = PTHREAD_ONCE_INIT;
static int s_env_state;
static bool s_env_joinable;
static pthread_t s_env_thread;
static bson_t s_env;
static char s_env_hash[33];
/* Parts of a prefetch, until both are in (under s_env_lock). */
static bson_t *s_part_local, *s_part_gpu, *s_part_git;

static void s_env_wait_locked(void)
{
    while (s_env_state == S_ENV_RUNNING)
        pthread_cond_wait(&s_env_cond, &s_env_lock);
}

/* Publishes env as the process environment (s_env_lock held). */
static void s_env_publish_locked(bson_t *env)
{
    xp__hash_hex(env, s_env_hash);
    bson_steal(&s_env, env);
    s_env_state = S_ENV_DONE;
    pthread_cond_broadcast(&s_env_cond);
}

/* Assembles the parts once both are in (s_env_lock held). */
static void s_env_parts_locked(void)
{
    if (!s_part_local || !s_part_git)
        return;
    bson_t env = BSON_INITIALIZER;
    xp__environment_assemble(&env, s_part_local, s_part_git, s_part_gpu);
    bson_destroy(s_part_local);
    bson_destroy(s_part_gpu);
    bson_destroy(s_part_git);
    s_part_local = s_part_gpu = s_part_git = NULL;
    s_env_publish_locked(&env);
}

static void s_env_local(void)
{
    bson_t *local = bson_new(), *gpu = bson_new();
    xp__environment_local(local, gpu, NULL);
    pthread_mutex_lock(&s_env_lock);
    s_part_local = local;
    s_part_gpu = gpu;
    s_env_parts_locked();
    pthread_mutex_unlock(&s_env_lock);
}

static void *s_env_main(void *arg)
{
    (void)arg;
    s_env_local();
    return NULL;
}

static void s_env_prepare(void)
{
    pthread_mutex_lock(&s_env_lock);
    s_env_wait_locked();
}

static void s_env_parent(void)
{
    pthread_mutex_unlock(&s_env_lock);
}

static void s_env_child(void)
{
    s_env_joinable = false; /* the thread is the parent's */
    pthread_mutex_unlock(&s_env_lock);
}

static void s_env_atfork(void)
{
    pthread_atfork(s_env_prepare, s_env_parent, s_env_child);
}

/* Joins the background capture thread at exit. */
__attribute__((destructor)) static void s_env_fini(void)
{
    if (s_env_joinable) {
        pthread_join(s_env_thread, NULL);
        s_env_joinable = false;
    }
}

void xp__environment_prefetch(void)
{
    pthread_once(&s_env_atfork_once, s_env_atfork);
    pthread_mutex_lock(&s_env_lock);
    if (s_env_state != S_ENV_NONE) {
        pthread_mutex_unlock(&s_env_lock);
        return;
    }
    s_env_state = S_ENV_RUNNING;
    bool threaded = pthread_create(&s_env_thread, NULL, s_env_main, NULL) == 0;
    s_env_joinable = threaded;
    pthread_mutex_unlock(&s_env_lock);
    if (!threaded)
        s_env_local();
    bson_t *git = bson_new();
    xp__git_capture(git);
    pthread_mutex_lock(&s_env_lock);
    s_part_git = git;
    s_env_parts_locked();
    pthread_mutex_unlock(&s_env_lock);
}

const bson_t *xp__environment(const char **hash)
{
    pthread_once(&s_env_atfork_once, s_env_atfork);
    pthread_mutex_lock(&s_env_lock);
    s_env_wait_locked();
    bool mine = s_env_state == S_ENV_NONE;
    if (mine)
        s_env_state = S_ENV_RUNNING;
    pthread_mutex_unlock(&s_env_lock);
    if (mine) {
        bson_t env = BSON_INITIALIZER;
        xp__environment_capture(&env, NULL);
        pthread_mutex_lock(&s_env_lock);
        s_env_publish_locked(&env);
        pthread_mutex_unlock(&s_env_lock);
    }
    if (hash)
        *hash = s_env_hash;
    return &s_env;
}

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
    bson_iter_t it;
    if (!bson_iter_init_find(&it, env, category) ||
        !BSON_ITER_HOLDS_DOCUMENT(&it))
        return bson_strdup("");
    bson_string_t *s = bson_string_new(NULL);
    s_render_doc(s, "", &it, false);
    return bson_string_free(s, false);
}

static const char *const s_categories[] = {"platform",  "cpu", "runtime",
                                           "libraries", "git", "gpu"};

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
    for (size_t i = 0; i < sizeof s_categories / sizeof *s_categories; i++) {
        char *a = s_category_text(&old, s_categories[i]);
        char *b = s_category_text(env, s_categories[i]);
        if (strcmp(a, b) != 0) {
            xp__log(XP_LOG_WARNING,
                    "Environment information has been changed: %s",
                    s_categories[i]);
            s_log_diff(a, b, s_categories[i]);
        }
        bson_free(a);
        bson_free(b);
    }
    bson_destroy(&old);
}

/* ---------------------------------------------------------------- API */

/* Loads the content document referenced by field key of a trial. */
static int s_trial_content(xp_experiment *ex, int64_t trial_id, const char *key,
                           bson_t *out, xp_error_t *err)
{
    if (trial_id < 1)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_ENOTFOUND,
                         "invalid trial id %lld (trial ids start at 1)",
                         (long long)trial_id);
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
    for (size_t i = 0; i < sizeof s_categories / sizeof *s_categories; i++)
        if (strcmp(category, s_categories[i]) == 0)
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

char *xp_value_to_text(const xp_value *v)
{
    if (!v)
        return NULL;
    bson_t b = BSON_INITIALIZER;
    char *text = NULL;
    if (v->type == XP_TYPE_DOCUMENT) {
        if (xp__value_to_bson(v, &b) == 0)
            text = xp__render_text(&b);
    } else if (xp__value_append_bson(&b, "value", v) == 0) {
        text = xp__render_text(&b);
    }
    bson_destroy(&b);
    return text;
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
