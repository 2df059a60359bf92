/* fuzz_trial_record.c — libFuzzer target for the stored trial document
 * decoder: a valid BSON input is decoded as a trial record; one that
 * decodes must encode and decode again, and is read as history,
 * recovery and the graph read it (value tree, interrupted rewrite, where
 * each step ran) and as xp reproduce compares it with itself; one that passes
 * the stores' check must read the same through the checked decoders; and
 * history's one pass over the bytes must agree with the way before it. */
#include "reproduce.h"
#include "store/record.h"
#include "util/bson_util.h"
#include "value.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Where a step ran: its strings are whole, NUL-terminated UTF-8. */
static void s_step(const char *step, const xp_record_step *info, void *user)
{
    size_t *n = user;
    *n += strlen(step) + strlen(info->host) + strlen(info->worker);
    if (!bson_utf8_validate(info->host, strlen(info->host), false) ||
        !bson_utf8_validate(info->worker, strlen(info->worker), false))
        abort();
}

/* A checked document (what the stores hand to history) passes libbson's
 * own validation, and reads the same through the checked decoders as
 * through the full ones, also as history reads them (rows in an arena
 * array, which may then be changed like any value). */
static void s_checked(const uint8_t *data, size_t size)
{
    bson_t doc;
    if (!xp__bson_view_checked(&doc, data, size))
        return;
    if (!bson_validate(&doc, BSON_VALIDATE_NONE, NULL))
        abort();
    xp_trial_record a, b;
    int ra = xp__record_decode(&doc, &a, NULL);
    if (xp__record_decode_checked(&doc, &b, NULL) != ra ||
        (ra == 0 && (a.trial_id != b.trial_id || a.status != b.status ||
                     a.present != b.present)))
        abort();
    xp_value *full = xp_value_new(), *fast = xp_value_new();
    ra = xp__value_from_bson(full, &doc, NULL);
    if (xp__value_from_checked_bson(fast, &doc, NULL) != ra ||
        (ra == 0 && !xp_value_equal(full, fast)))
        abort();
    /* history's way: rows in an arena array, the record checked on the
     * row; the same values and the same verdict as the decoder */
    xp_value *rows = xp__value_arena_array();
    for (int k = 0; k < 2; k++) {
        xp_value *row = xp_array_append(rows);
        int rr = xp__value_from_checked_bson_in(row, &doc, rows, NULL);
        if (rr != ra || (rr == 0 && !xp_value_equal(full, row)))
            abort();
        if (rr == 0 && (xp__record_check_value(row, &doc, NULL) == 0) !=
                           (xp__record_decode_checked(&doc, &b, NULL) == 0))
            abort();
    }
    /* rows change like any value: what they gain is the heap's */
    xp_value *first = (xp_value *)xp_value_at(rows, 0);
    if (xp_value_type(first) == XP_TYPE_DOCUMENT) {
        for (size_t i = 0; i < xp_value_count(first); i++) {
            xp_value *child = (xp_value *)xp_value_at(first, i);
            if (xp_value_type(child) == XP_TYPE_DOCUMENT)
                xp_set_string(xp_document_set(child, "added"), "x");
            else if (xp_value_type(child) == XP_TYPE_ARRAY)
                xp_set_int64(xp_array_append(child), 1);
            else
                xp_set_string(child, "replaced");
        }
        xp_set_double(xp_document_set(first, "added"), 1.5);
        xp_value *copy = xp_value_dup(first);
        if (!xp_value_equal(copy, first))
            abort();
        xp_set_value((xp_value *)xp_value_at(rows, 1), copy);
        xp_value_destroy(&copy);
    }
    xp_set_bool(xp_array_append(rows), true);
    xp_value_destroy(&rows);
    xp_value_destroy(&full);
    xp_value_destroy(&fast);
}

/* History's one pass over the stored bytes (xp__record_read_row) gives
 * every record the verdict, the message and the row of the way before it
 * (check, tree, record check: xp__record_read_row_checked). Its rows
 * share keys and strings with the row before them, so they are read into
 * an arena array kept across inputs (the replay's mutations of one seed
 * follow each other), renewed every 64 inputs. */
static xp_value *s_rows;
static unsigned s_inputs;

static void s_one_pass(const uint8_t *data, size_t size)
{
    if (!s_rows || ++s_inputs % 64 == 0) {
        xp_value_destroy(&s_rows);
        s_rows = xp__value_arena_array();
    }
    /* a copy, scribbled over after each read: the row keeps no pointer
     * into the bytes it was read from */
    uint8_t *bytes = malloc(size ? size : 1);
    xp_value *before = xp__value_arena_array();
    for (int k = 0; k < 2; k++) {
        if (size)
            memcpy(bytes, data, size);
        xp_error_t ef = {0}, es = {0};
        xp_value *fast = xp_array_append(s_rows),
                 *slow = xp_array_append(before);
        int rf = xp__record_read_row(fast, bytes, size, s_rows, &ef);
        char *json = rf == 0 ? xp_value_to_json(fast) : NULL;
        if (size)
            memset(bytes, 0xee, size);
        int rs = xp__record_read_row_checked(slow, data, size, before, &es);
        if (rf != rs || strcmp(ef.message, es.message) != 0)
            abort();
        /* a row the way before could not finish may be partly built */
        if (rs == 0 && !xp_value_equal(fast, slow))
            abort();
        char *again = rf == 0 ? xp_value_to_json(fast) : NULL;
        if (rf == 0 && (!json || !again || strcmp(json, again) != 0))
            abort();
        xp_free(json);
        xp_free(again);
    }
    free(bytes);
    xp_value_destroy(&before);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bson_t doc;
    s_checked(data, size);
    s_one_pass(data, size);
    if (size < 5 || !bson_init_static(&doc, data, size) ||
        !bson_validate(&doc, BSON_VALIDATE_NONE, NULL))
        return 0;
    xp_trial_record rec, again;
    if (xp__record_decode(&doc, &rec, NULL) != 0)
        return 0;
    bson_t out = BSON_INITIALIZER, interrupted = BSON_INITIALIZER;
    /* the encoder writes a trial's outcome (hashes among it) only for a
     * finished status: a record read without one loses its hashes */
    bool finished = rec.status == XP_STATUS_SUCCEEDED ||
                    rec.status == XP_STATUS_FAILED ||
                    rec.status == XP_STATUS_INTERRUPTED;
    if (xp__record_encode(&rec, &out, NULL) != 0 ||
        xp__record_decode(&out, &again, NULL) != 0 ||
        again.trial_id != rec.trial_id || again.status != rec.status ||
        again.reproduces != rec.reproduces ||
        again.hashes.len != (finished ? rec.hashes.len : 0))
        abort();
    size_t chars = 0;
    xp__record_steps_each(rec.steps, s_step, &chars);
    xp_value *v = xp_value_new(), *report = NULL;
    /* xp reproduce reads two stored records side by side. */
    if (xp__value_from_bson(v, &doc, NULL) == 0 &&
        xp__reproduce_compare_docs(v, v, NULL, NULL, &report, NULL) == 0) {
        if (!xp_as_bool(xp_value_get(report, "reproduced")) &&
            xp_value_equal(v, v))
            abort(); /* a record always reproduces itself */
        char *text = xp_reproduce_text(report);
        xp_free(text);
    }
    xp_value_destroy(&report);
    xp_value_destroy(&v);
    if (xp__record_interrupt(&doc, 1, "fuzz", &interrupted, NULL) != 0 ||
        xp__record_decode(&interrupted, &again, NULL) != 0)
        abort();
    bson_destroy(&out);
    bson_destroy(&interrupted);
    return 0;
}
