/* reproduce.c — xp reproduce: re-running a recorded trial with its
 * parameters and seed, and comparing the two records side by side
 * (status, result, each step's output hash, and the code and
 * environment diffs of xp_trial_diff), as a document and as text. */
#include "reproduce.h"

#include "store/record.h"
#include "util/error.h"
#include "util/hash.h"
#include "value.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------- re-run */

int xp_reproduce_spec(xp_experiment *ex, int64_t trial_id, xp_value **out,
                      xp_error_t *err)
{
    xp_value *doc = NULL;
    if (!out)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL, "missing output");
    *out = NULL;
    if (xp_trial_get(ex, trial_id, &doc, err) != 0)
        return -1;
    const char *status =
        xp_as_string(xp_value_get(doc, XP_RECORD_STATUS), NULL);
    const xp_value *params = xp_value_get(doc, XP_RECORD_PARAMETERS);
    const xp_value *seed = xp_value_get(doc, XP_RECORD_SEED);
    int rc = -1;
    if (status && (strcmp(status, XP_STATUS_QUEUED_NAME) == 0 ||
                   strcmp(status, XP_STATUS_RUNNING_NAME) == 0))
        xp__error(err, XP_DOMAIN_ARGUMENT, XP_ESTATE,
                  "trial %lld is %s: there is nothing to compare yet",
                  (long long)trial_id, status);
    else if (xp_value_type(params) != XP_TYPE_DOCUMENT ||
             xp_value_type(seed) != XP_TYPE_INT64)
        xp__error(err, XP_DOMAIN_BACKEND, XP_ECORRUPT,
                  "trial %lld has no parameters or seed recorded",
                  (long long)trial_id);
    else
        rc = 0;
    if (rc == 0) {
        xp_value *spec = xp_value_new();
        xp_set_document(spec);
        xp_set_value(xp_document_set(spec, "parameters"), params);
        xp_set_value(xp_document_set(spec, "seed"), seed);
        xp_set_int64(xp_document_set(spec, XP_RECORD_REPRODUCES), trial_id);
        *out = spec;
    }
    xp_value_destroy(&doc);
    return rc;
}

int xp_reproduce_run(xp_experiment *ex, int64_t trial_id, int64_t *reproduction,
                     xp_error_t *err)
{
    xp_value *spec = NULL;
    if (reproduction)
        *reproduction = 0;
    if (xp_reproduce_spec(ex, trial_id, &spec, err) != 0)
        return -1;
    xp_run_options run = XP_RUN_OPTIONS_INIT;
    run.params = xp_value_get(spec, "parameters");
    run.has_seed = true;
    run.seed = (uint64_t)xp_as_int64(xp_value_get(spec, "seed"));
    run.memo = XP_MEMO_OFF; /* a reused output would prove nothing */
    run.reproduces = trial_id;
    int64_t id = 0;
    xp_error_t run_err;
    int rc = xp_compute(ex, &run, NULL, &id, &run_err);
    xp_value_destroy(&spec);
    if (reproduction)
        *reproduction = id;
    /* A failed trial is an outcome to compare, not an error. */
    if (rc != 0 && id == 0) {
        if (err)
            *err = run_err;
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- compare */

/* The output hash of a result value as the trial records a step's (hex,
 * XP_RECORD_HASH_HEX digits), into hex[33]; false when it has none. */
static bool s_result_hash(const xp_value *doc, char *hex)
{
    if (!xp_as_bool(xp_value_get(doc, XP_RECORD_SUCCESS)))
        return false;
    bson_t b = BSON_INITIALIZER;
    bool ok = xp__value_append_bson(&b, "v",
                                    xp_value_get(doc, XP_RECORD_RESULT)) == 0;
    if (ok) {
        uint8_t h[16];
        xp__hash128(bson_get_data(&b), b.len, h);
        xp__hex(h, 16, hex);
        hex[XP_RECORD_HASH_HEX] = '\0';
    }
    bson_destroy(&b);
    return ok;
}

/* The hash doc records for step, or the result's for the result step. */
static const char *s_step_hash(const xp_value *doc, const char *step,
                               bool is_result, char *buf)
{
    if (is_result)
        return s_result_hash(doc, buf) ? buf : NULL;
    return xp_as_string(xp_value_get(xp_value_get(doc, XP_RECORD_HASHES), step),
                        NULL);
}

static bool s_listed(const xp_value *steps, const char *name)
{
    for (size_t i = 0; i < xp_value_count(steps); i++)
        if (strcmp(
                xp_as_string(xp_value_get(xp_value_at(steps, i), "step"), NULL),
                name) == 0)
            return true;
    return false;
}

/* Appends {step, original, reproduction, equal} for step to steps; a
 * differing step's name to differing. recorded: the original has step
 * hashes at all. */
static void s_add_step(xp_value *steps, xp_value *differing, const xp_value *a,
                       const xp_value *b, const char *step, bool is_result,
                       bool recorded)
{
    char buf_a[33], buf_b[33];
    const char *ha = s_step_hash(a, step, is_result, buf_a);
    const char *hb = s_step_hash(b, step, is_result, buf_b);
    if ((!ha && !hb) || s_listed(steps, step))
        return;
    bool known = is_result || recorded;
    bool equal = !known || (ha && hb && strcmp(ha, hb) == 0);
    xp_value *item = xp_array_append(steps);
    xp_set_document(item);
    xp_set_string(xp_document_set(item, "step"), step);
    if (ha)
        xp_set_string(xp_document_set(item, "original"), ha);
    else
        xp_set_null(xp_document_set(item, "original"));
    if (hb)
        xp_set_string(xp_document_set(item, "reproduction"), hb);
    else
        xp_set_null(xp_document_set(item, "reproduction"));
    if (known)
        xp_set_bool(xp_document_set(item, "equal"), equal);
    else
        xp_set_null(xp_document_set(item, "equal"));
    if (!equal)
        xp_set_string(xp_array_append(differing), step);
}

/* {original, reproduction, equal} of field key into report. */
static bool s_side_by_side(xp_value *report, const char *key, const xp_value *a,
                           const xp_value *b)
{
    const xp_value *va = xp_value_get(a, key), *vb = xp_value_get(b, key);
    bool equal = va && vb ? xp_value_equal(va, vb) : va == vb;
    xp_value *item = xp_document_set(report, key);
    xp_set_document(item);
    xp_set_value(xp_document_set(item, "original"), va);
    xp_set_value(xp_document_set(item, "reproduction"), vb);
    xp_set_bool(xp_document_set(item, "equal"), equal);
    return equal;
}

static void s_copy_lines(xp_value *report, const xp_value *diff,
                         const char *key)
{
    xp_value *lines = xp_document_set(report, key);
    const xp_value *from = xp_value_get(diff, key);
    if (xp_value_type(from) == XP_TYPE_ARRAY)
        xp_set_value(lines, from);
    else
        xp_set_array(lines);
}

int xp__reproduce_compare_docs(const xp_value *original,
                               const xp_value *reproduction,
                               const xp_value *code_steps, const xp_value *diff,
                               xp_value **out, xp_error_t *err)
{
    *out = NULL;
    if (xp_value_type(original) != XP_TYPE_DOCUMENT ||
        xp_value_type(reproduction) != XP_TYPE_DOCUMENT)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "missing trial document");
    xp_value *r = xp_value_new();
    xp_set_document(r);
    xp_set_value(xp_document_set(r, "original"),
                 xp_value_get(original, XP_RECORD_TRIAL_ID));
    xp_set_value(xp_document_set(r, "reproduction"),
                 xp_value_get(reproduction, XP_RECORD_TRIAL_ID));
    bool same = s_side_by_side(r, XP_RECORD_STATUS, original, reproduction);
    same &= s_side_by_side(r, XP_RECORD_RESULT, original, reproduction);
    bool recorded = xp_value_get(original, XP_RECORD_HASHES) != NULL;
    xp_set_bool(xp_document_set(r, "steps_recorded"), recorded);
    xp_value *steps = xp_document_set(r, "steps");
    xp_set_array(steps);
    xp_value *differing = xp_value_new();
    xp_set_array(differing);
    /* The code's order first, then any other step either one hashed. */
    for (size_t i = 0; i < xp_value_count(code_steps); i++) {
        const xp_value *s = xp_value_at(code_steps, i);
        const char *name = xp_as_string(xp_value_get(s, "name"), NULL);
        if (name)
            s_add_step(steps, differing, original, reproduction, name,
                       xp_as_bool(xp_value_get(s, "result")), recorded);
    }
    const xp_value *docs[2] = {original, reproduction};
    for (int k = 0; k < 2; k++) {
        const xp_value *h = xp_value_get(docs[k], XP_RECORD_HASHES);
        for (size_t i = 0; i < xp_value_count(h); i++)
            s_add_step(steps, differing, original, reproduction,
                       xp_value_key_at(h, i), false, recorded);
    }
    same &= xp_value_count(differing) == 0;
    xp_set_value(xp_document_set(r, "differing"), differing);
    xp_value_destroy(&differing);
    s_copy_lines(r, diff, "parameters");
    s_copy_lines(r, diff, "code");
    s_copy_lines(r, diff, "environment");
    xp_set_bool(xp_document_set(r, "reproduced"), same);
    *out = r;
    return 0;
}

int xp_reproduce_compare(xp_experiment *ex, int64_t original,
                         int64_t reproduction, xp_value **out, xp_error_t *err)
{
    xp_value *a = NULL, *b = NULL, *code = NULL, *diff = NULL;
    int rc = -1;
    if (!out)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL, "missing output");
    *out = NULL;
    if (xp_trial_get(ex, original, &a, err) != 0 ||
        xp_trial_get(ex, reproduction, &b, err) != 0)
        goto cleanup;
    /* Code or environment that cannot be read back is no diff to show;
     * the outputs still tell. */
    if (xp_code_get(ex, reproduction, &code, NULL) != 0)
        xp_code_get(ex, original, &code, NULL);
    xp_trial_diff(ex, original, reproduction, &diff, NULL);
    rc = xp__reproduce_compare_docs(a, b, xp_value_get(code, "steps"), diff,
                                    out, err);
cleanup:
    xp_value_destroy(&a);
    xp_value_destroy(&b);
    xp_value_destroy(&code);
    xp_value_destroy(&diff);
    return rc;
}

/* ---------------------------------------------------------------- text */

typedef struct {
    char *buf;
    size_t len, cap;
} s_text;

static void s_printf(s_text *t, const char *fmt, ...) XP_PRINTF(2, 3);
static void s_printf(s_text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *line = bson_strdupv_printf(fmt, ap);
    va_end(ap);
    size_t n = strlen(line);
    if (t->len + n + 1 > t->cap) {
        t->cap = (t->len + n + 1) * 2;
        t->buf = bson_realloc(t->buf, t->cap);
    }
    memcpy(t->buf + t->len, line, n + 1);
    t->len += n;
    bson_free(line);
}

/* v as at most 24 characters (JSON but for a string), into buf[32];
 * "-" for none. */
static const char *s_cell(const xp_value *v, char *buf)
{
    const char *text = xp_as_string(v, NULL);
    char *json = text ? bson_strdup(text) : v ? xp_value_to_json(v) : NULL;
    if (!json)
        snprintf(buf, 32, "-");
    else if (strlen(json) > 24)
        snprintf(buf, 32, "%.21s...", json);
    else
        snprintf(buf, 32, "%s", json);
    xp_free(json);
    return buf;
}

static const char *s_hash_cell(const xp_value *v)
{
    const char *s = xp_as_string(v, NULL);
    return s ? s : "(not run)";
}

static void s_row(s_text *t, int width, const char *name, const char *a,
                  const char *b, const char *verdict)
{
    if (*verdict)
        s_printf(t, "  %-*s  %-24s  %-24s  %s\n", width, name, a, b, verdict);
    else
        s_printf(t, "  %-*s  %-24s  %s\n", width, name, a, b);
}

static void s_lines(s_text *t, const xp_value *report, const char *key)
{
    const xp_value *lines = xp_value_get(report, key);
    size_t n = xp_value_count(lines);
    if (n == 0) {
        s_printf(t, "%s: same\n", key);
        return;
    }
    s_printf(t, "%s: differs\n", key);
    for (size_t i = 0; i < n; i++) {
        const char *line = xp_as_string(xp_value_at(lines, i), NULL);
        s_printf(t, "  %s\n", line ? line : "");
    }
}

/* The last line: what differs, in one line. */
static void s_summary(s_text *t, const xp_value *report, int64_t a, int64_t b)
{
    if (xp_as_bool(xp_value_get(report, "reproduced"))) {
        s_printf(t,
                 "reproduced: trial %lld has the status, result and step "
                 "outputs of trial %lld\n",
                 (long long)b, (long long)a);
        return;
    }
    s_printf(t, "not reproduced: trial %lld differs from trial %lld in",
             (long long)b, (long long)a);
    const char *sep = " ";
    const char *fields[] = {XP_RECORD_STATUS, XP_RECORD_RESULT};
    for (int i = 0; i < 2; i++)
        if (!xp_as_bool(
                xp_value_get(xp_value_get(report, fields[i]), "equal"))) {
            s_printf(t, "%sthe %s", sep, fields[i]);
            sep = ", ";
        }
    const xp_value *steps = xp_value_get(report, "differing");
    size_t n = xp_value_count(steps);
    for (size_t i = 0; i < n; i++)
        s_printf(t, "%s%s%s", i ? ", " : sep,
                 i       ? ""
                 : n > 1 ? "steps "
                         : "step ",
                 xp_as_string(xp_value_at(steps, i), NULL));
    s_printf(t, "\n");
}

char *xp_reproduce_text(const xp_value *report)
{
    if (xp_value_type(report) != XP_TYPE_DOCUMENT)
        return NULL;
    s_text t = {0};
    int64_t a = xp_as_int64(xp_value_get(report, "original"));
    int64_t b = xp_as_int64(xp_value_get(report, "reproduction"));
    const xp_value *steps = xp_value_get(report, "steps");
    int width = 8;
    for (size_t i = 0; i < xp_value_count(steps); i++) {
        const char *s =
            xp_as_string(xp_value_get(xp_value_at(steps, i), "step"), NULL);
        if (s && (int)strlen(s) > width)
            width = (int)strlen(s);
    }
    char ca[32], cb[32], ta[32], tb[32];
    snprintf(ta, sizeof ta, "trial %lld", (long long)a);
    snprintf(tb, sizeof tb, "trial %lld", (long long)b);
    s_printf(&t, "trial %lld re-run as trial %lld\n", (long long)a,
             (long long)b);
    s_row(&t, width, "", ta, tb, "");
    const char *fields[] = {XP_RECORD_STATUS, XP_RECORD_RESULT};
    for (int i = 0; i < 2; i++) {
        const xp_value *f = xp_value_get(report, fields[i]);
        s_row(&t, width, fields[i], s_cell(xp_value_get(f, "original"), ca),
              s_cell(xp_value_get(f, "reproduction"), cb),
              xp_as_bool(xp_value_get(f, "equal")) ? "same" : "DIFFERENT");
    }
    for (size_t i = 0; i < xp_value_count(steps); i++) {
        const xp_value *s = xp_value_at(steps, i);
        const xp_value *eq = xp_value_get(s, "equal");
        s_row(&t, width, xp_as_string(xp_value_get(s, "step"), NULL),
              s_hash_cell(xp_value_get(s, "original")),
              s_hash_cell(xp_value_get(s, "reproduction")),
              xp_value_type(eq) != XP_TYPE_BOOL ? "(not recorded)"
              : xp_as_bool(eq)                  ? "same"
                                                : "DIFFERENT");
    }
    if (!xp_as_bool(xp_value_get(report, "steps_recorded")) &&
        xp_value_count(steps) > 1)
        s_printf(&t,
                 "trial %lld recorded no step output hashes: only the "
                 "result step is compared\n",
                 (long long)a);
    s_lines(&t, report, "code");
    s_lines(&t, report, "environment");
    s_summary(&t, report, a, b);
    return t.buf; /* bson_malloc'd: xp_free frees it */
}
