/* test_report.c — the comparison of two trial documents behind xp
 * reproduce (xp__reproduce_compare_docs) and its text: what counts as
 * reproduced (status, result, each step's output hash), the result step
 * compared through the result, records from before step hashes, steps
 * that ran on one side only, and the summary line. */
#include "../common.h"

#include "reproduce.h"

/* A trial document from JSON (no failure expected). */
static xp_value *s_doc(const char *json)
{
    xp_value *v = xp_value_new();
    xp_error_t err;
    cr_assert_eq(xp_value_from_json(v, json, &err), 0, "%s: %s", json,
                 err.message);
    return v;
}

/* The code's steps: prepare, then score (the result). */
static xp_value *s_steps(void)
{
    return s_doc("[{\"name\": \"prepare\"}, {\"name\": \"score\", "
                 "\"result\": true}]");
}

static xp_value *s_compare(const char *a, const char *b)
{
    xp_value *da = s_doc(a), *db = s_doc(b), *steps = s_steps();
    xp_value *diff = s_doc("{\"parameters\": [], \"code\": [\"-x\", \"+y\"], "
                           "\"environment\": []}");
    xp_value *report = NULL;
    xp_error_t err;
    cr_assert_eq(xp__reproduce_compare_docs(da, db, steps, diff, &report, &err),
                 0, "%s", err.message);
    xp_value_destroy(&da);
    xp_value_destroy(&db);
    xp_value_destroy(&steps);
    xp_value_destroy(&diff);
    return report;
}

/* The last line of the report's text into buf[512]. */
static const char *s_summary(const xp_value *report, char *buf)
{
    char *text = xp_reproduce_text(report);
    cr_assert_not_null(text);
    size_t n = strlen(text);
    cr_assert(n > 0 && text[n - 1] == '\n', "%s", text);
    text[n - 1] = '\0';
    const char *last = strrchr(text, '\n');
    snprintf(buf, 512, "%s", last ? last + 1 : text);
    xp_free(text);
    return buf;
}

#define A                                                                      \
    "{\"trial_id\": 1, \"status\": \"succeeded\", \"success\": true, "         \
    "\"result\": 2.5, \"hashes\": {\"prepare\": \"00112233aabbccdd\"}}"

Test(report, the_same_outputs_reproduce)
{
    xp_value *r = s_compare(
        A, "{\"trial_id\": 4, \"status\": \"succeeded\", \"success\": true, "
           "\"result\": 2.5, \"hashes\": {\"prepare\": \"00112233aabbccdd\"}}");
    cr_assert(xpt_get_bool(r, "reproduced"));
    const xp_value *steps = xpt_field(r, "steps");
    cr_assert_eq(xp_value_count(steps), 2);
    const xp_value *score = xp_value_at(steps, 1);
    cr_assert_str_eq(xpt_get_str(score, "step"), "score");
    /* The result step's hash is the result's, the same on both sides. */
    cr_assert_eq(strlen(xpt_get_str(score, "original")), 16);
    cr_assert_str_eq(xpt_get_str(score, "original"),
                     xpt_get_str(score, "reproduction"));
    cr_assert_eq(xp_value_count(xpt_field(r, "code")), 2);
    char buf[512];
    cr_assert_str_eq(s_summary(r, buf),
                     "reproduced: trial 4 has the status, result and step "
                     "outputs of trial 1");
    char *text = xp_reproduce_text(r);
    cr_assert(strstr(text, "code: differs\n  -x\n  +y\n"), "%s", text);
    xp_free(text);
    xp_value_destroy(&r);
}

/* 2.5 and the integer 2 differ, and so do 1 and 1.0. */
Test(report, a_different_result_names_the_result_step)
{
    xp_value *r = s_compare(
        A, "{\"trial_id\": 5, \"status\": \"succeeded\", \"success\": true, "
           "\"result\": 2, \"hashes\": {\"prepare\": \"00112233aabbccdd\"}}");
    cr_assert_not(xpt_get_bool(r, "reproduced"));
    char buf[512];
    cr_assert_str_eq(s_summary(r, buf),
                     "not reproduced: trial 5 differs from trial 1 in the "
                     "result, step score");
    xp_value_destroy(&r);
}

Test(report, a_different_step_output_is_named)
{
    xp_value *r = s_compare(
        A, "{\"trial_id\": 6, \"status\": \"succeeded\", \"success\": true, "
           "\"result\": 2.5, \"hashes\": {\"prepare\": \"ffff2233aabbccdd\"}}");
    cr_assert_not(xpt_get_bool(r, "reproduced"));
    cr_assert_str_eq(
        xp_as_string(xp_value_at(xpt_field(r, "differing"), 0), NULL),
        "prepare");
    char buf[512];
    cr_assert_str_eq(s_summary(r, buf),
                     "not reproduced: trial 6 differs from trial 1 in step "
                     "prepare");
    xp_value_destroy(&r);
}

/* The re-run failed where the original succeeded: status, result, and
 * the steps that no longer ran. */
Test(report, a_failure_differs_in_status_and_outputs)
{
    xp_value *r = s_compare(A, "{\"trial_id\": 7, \"status\": \"failed\", "
                               "\"success\": false, \"result\": null, "
                               "\"hashes\": {}}");
    char buf[512];
    cr_assert_str_eq(s_summary(r, buf),
                     "not reproduced: trial 7 differs from trial 1 in the "
                     "status, the result, steps prepare, score");
    char *text = xp_reproduce_text(r);
    cr_assert(strstr(text, "(not run)"), "%s", text);
    xp_free(text);
    xp_value_destroy(&r);
}

/* A record from before step hashes: its steps are not compared, its
 * result is. */
Test(report, an_old_record_compares_its_result_only)
{
    const char *old = "{\"trial_id\": 1, \"status\": \"succeeded\", "
                      "\"success\": true, \"result\": 2.5}";
    xp_value *r = s_compare(
        old, "{\"trial_id\": 2, \"status\": \"succeeded\", \"success\": "
             "true, \"result\": 2.5, \"hashes\": {\"prepare\": \"1\"}}");
    cr_assert(xpt_get_bool(r, "reproduced"));
    cr_assert_not(xpt_get_bool(r, "steps_recorded"));
    const xp_value *prepare = xp_value_at(xpt_field(r, "steps"), 0);
    cr_assert_eq(xp_value_type(xpt_field(prepare, "equal")), XP_TYPE_NULL);
    char *text = xp_reproduce_text(r);
    cr_assert(strstr(text, "(not recorded)"), "%s", text);
    cr_assert(strstr(text, "recorded no step output hashes"), "%s", text);
    xp_free(text);
    xp_value_destroy(&r);
}

Test(report, not_a_report_has_no_text)
{
    cr_assert_null(xp_reproduce_text(NULL));
    xp_value *v = s_doc("[1]");
    cr_assert_null(xp_reproduce_text(v));
    xp_value *out = NULL;
    xp_error_t err;
    cr_assert_eq(xp__reproduce_compare_docs(v, v, NULL, NULL, &out, &err), -1);
    cr_assert_null(out);
    xp_value_destroy(&v);
}
