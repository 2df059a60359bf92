/* record.c — the trial record's one home: status names, the BSON encoder
 * and the decoder side by side (same fields, same order), and the
 * rewrite that marks a record interrupted. */
#include "store/record.h"

#include "util/bson_util.h"
#include "util/error.h"
#include "util/names.h"
#include "value.h"

#include <string.h>

static const char *const s_status_names[] = {
    [XP_STATUS_NONE] = "",
    [XP_STATUS_QUEUED] = XP_STATUS_QUEUED_NAME,
    [XP_STATUS_RUNNING] = XP_STATUS_RUNNING_NAME,
    [XP_STATUS_SUCCEEDED] = XP_STATUS_SUCCEEDED_NAME,
    [XP_STATUS_FAILED] = XP_STATUS_FAILED_NAME,
    [XP_STATUS_INTERRUPTED] = XP_STATUS_INTERRUPTED_NAME,
};

#define S_N_STATUS (sizeof s_status_names / sizeof *s_status_names)

/* Longest strings a record's short fields may hold. */
#define S_HOST_MAX 255
#define S_HASH_MAX 64
#define S_SCHEDULER_MAX 255
#define S_TYPE_MAX 32

const char *xp__trial_status_name(xp_trial_status s)
{
    return (unsigned)s < S_N_STATUS ? s_status_names[s] : "";
}

xp_trial_status xp__trial_status_parse(const char *s)
{
    for (size_t i = 1; s && i < S_N_STATUS; i++)
        if (strcmp(s, s_status_names[i]) == 0)
            return (xp_trial_status)i;
    return XP_STATUS_NONE;
}

static bool s_finished(xp_trial_status s)
{
    return s == XP_STATUS_SUCCEEDED || s == XP_STATUS_FAILED ||
           s == XP_STATUS_INTERRUPTED;
}

xp_doc_view xp__doc_view(const bson_t *b)
{
    xp_doc_view v = {NULL, 0};
    if (b && !bson_empty(b)) {
        v.data = bson_get_data(b);
        v.len = b->len;
    }
    return v;
}

bool xp__doc_view_bson(xp_doc_view v, bson_t *out)
{
    return v.len >= 5 && bson_init_static(out, v.data, v.len);
}

/* ---------------------------------------------------------------- encoder */

static void s_put_str(bson_t *out, const char *key, const char *s)
{
    if (s)
        bson_append_utf8(out, key, -1, s, -1);
}

static void s_put_doc(bson_t *out, const char *key, xp_doc_view v, bool array)
{
    bson_t b;
    if (!xp__doc_view_bson(v, &b))
        return;
    if (array)
        bson_append_array(out, key, -1, &b);
    else
        bson_append_document(out, key, -1, &b);
}

static int s_put_result(const xp_trial_record *rec, bson_t *out,
                        xp_error_t *err)
{
    const char *type = "null";
    if (rec->result) {
        if (xp__value_append_checked(out, XP_RECORD_RESULT, rec->result,
                                     "result", err) != 0)
            return -1;
        type = xp_type_name(xp_value_type(rec->result));
    } else if (rec->has_result) {
        bson_append_iter(out, XP_RECORD_RESULT, -1, &rec->result_iter);
        if (rec->result_type)
            type = rec->result_type;
    } else {
        bson_append_null(out, XP_RECORD_RESULT, -1);
    }
    bson_append_utf8(out, XP_RECORD_RESULT_TYPE, -1, type, -1);
    return 0;
}

int xp__record_encode(const xp_trial_record *rec, bson_t *out, xp_error_t *err)
{
    bson_t empty = BSON_INITIALIZER;
    if (rec->trial_id > 0)
        bson_append_int64(out, XP_RECORD_TRIAL_ID, -1, rec->trial_id);
    s_put_str(out, XP_RECORD_EXPERIMENT, rec->experiment);
    if (rec->status != XP_STATUS_NONE)
        s_put_str(out, XP_RECORD_STATUS, xp__trial_status_name(rec->status));
    if (rec->parameters.len)
        s_put_doc(out, XP_RECORD_PARAMETERS, rec->parameters, false);
    else
        bson_append_document(out, XP_RECORD_PARAMETERS, -1, &empty);
    bson_append_int64(out, XP_RECORD_SEED, -1, rec->seed);
    bson_append_date_time(out, XP_RECORD_STARTED, -1, rec->started_ms);
    s_put_str(out, XP_RECORD_HOST, rec->host);
    bson_append_int64(out, XP_RECORD_PID, -1, rec->pid);
    bson_append_int64(out, XP_RECORD_PSTART, -1, rec->pstart);
    s_put_str(out, XP_RECORD_SCHEDULER, rec->scheduler);
    s_put_str(out, XP_RECORD_CODE_HASH, rec->code_hash);
    s_put_str(out, XP_RECORD_ENVIRONMENT_HASH, rec->environment_hash);
    if (rec->reproduces > 0)
        bson_append_int64(out, XP_RECORD_REPRODUCES, -1, rec->reproduces);
    s_put_str(out, XP_RECORD_MEMO, rec->memo);
    if (!s_finished(rec->status))
        return 0;
    bson_append_date_time(out, XP_RECORD_FINISHED, -1, rec->finished_ms);
    if (s_put_result(rec, out, err) != 0)
        return -1;
    bson_append_bool(out, XP_RECORD_SUCCESS, -1, rec->success);
    bson_append_double(out, XP_RECORD_PROCESS_TIME, -1, rec->process_time);
    s_put_str(out, XP_RECORD_DESCRIPTION,
              rec->description ? rec->description : "");
    s_put_doc(out, XP_RECORD_PURITY_WARNINGS, rec->purity_warnings, true);
    s_put_doc(out, XP_RECORD_STEPS, rec->steps, false);
    s_put_doc(out, XP_RECORD_HASHES, rec->hashes, false);
    s_put_doc(out, XP_RECORD_REUSED, rec->reused, false);
    return 0;
}

void xp__record_encode_process(const xp_trial_record *rec, bson_t *out)
{
    bson_append_utf8(out, XP_RECORD_HOST, -1, rec->host ? rec->host : "", -1);
    bson_append_int64(out, XP_RECORD_PID, -1, rec->pid);
    bson_append_int64(out, XP_RECORD_PSTART, -1, rec->pstart);
}

static const char *s_or_empty(const char *s)
{
    return s ? s : "";
}

void xp__record_append_step(bson_t *steps, const char *step,
                            const xp_record_step *where)
{
    bson_t info, job;
    bson_append_document_begin(steps, step, -1, &info);
    bson_append_utf8(&info, "host", -1, s_or_empty(where->host), -1);
    bson_append_utf8(&info, "worker", -1, s_or_empty(where->worker), -1);
    bson_append_int64(&info, "attempt", -1, where->attempt);
    bson_append_double(&info, "elapsed", -1, where->elapsed);
    if (where->job_id && *where->job_id) {
        bson_append_document_begin(&info, "job", -1, &job);
        bson_append_utf8(&job, "id", -1, where->job_id, -1);
        if (where->job_index >= 0)
            bson_append_int64(&job, "array_index", -1, where->job_index);
        if (where->job_node && *where->job_node)
            bson_append_utf8(&job, "node", -1, where->job_node, -1);
        bson_append_document_end(&info, &job);
    }
    bson_append_document_end(steps, &info);
}

void xp__record_append_interrupted(bson_t *out, int64_t finished_ms,
                                   const char *description)
{
    bson_append_utf8(out, XP_RECORD_STATUS, -1, XP_STATUS_INTERRUPTED_NAME, -1);
    bson_append_bool(out, XP_RECORD_SUCCESS, -1, false);
    bson_append_date_time(out, XP_RECORD_FINISHED, -1, finished_ms);
    bson_append_null(out, XP_RECORD_RESULT, -1);
    bson_append_utf8(out, XP_RECORD_RESULT_TYPE, -1, xp_type_name(XP_TYPE_NULL),
                     -1);
    bson_append_utf8(out, XP_RECORD_DESCRIPTION, -1, description, -1);
}

int xp__record_interrupt(const bson_t *doc, int64_t finished_ms,
                         const char *description, bson_t *out, xp_error_t *err)
{
    xp_trial_record rec;
    if (xp__record_decode(doc, &rec, err) != 0)
        return -1;
    bson_copy_to_excluding_noinit(
        doc, out, XP_RECORD_STATUS, XP_RECORD_FINISHED, XP_RECORD_SUCCESS,
        XP_RECORD_DESCRIPTION, XP_RECORD_RESULT, XP_RECORD_RESULT_TYPE, NULL);
    xp__record_append_interrupted(out, finished_ms, description);
    return 0;
}

void xp__record_damaged(bson_t *out, int64_t id, const char *why)
{
    bson_append_int64(out, XP_RECORD_TRIAL_ID, -1, id);
    bson_append_utf8(out, XP_RECORD_STATUS, -1, XP_STATUS_DAMAGED_NAME, -1);
    bson_append_null(out, XP_RECORD_RESULT, -1);
    bson_append_utf8(out, XP_RECORD_RESULT_TYPE, -1, xp_type_name(XP_TYPE_NULL),
                     -1);
    bson_append_bool(out, XP_RECORD_SUCCESS, -1, false);
    bson_append_utf8(out, XP_RECORD_DESCRIPTION, -1, why, -1);
}

/* ---------------------------------------------------------------- decoder */

/* A string field of at most max bytes, valid UTF-8 without NULs inside;
 * in a checked document (xp__bson_check) every string is already. */
static bool s_get_str_in(const bson_iter_t *it, size_t max, bool checked,
                         const char **out)
{
    uint32_t len;
    if (!BSON_ITER_HOLDS_UTF8(it))
        return false;
    const char *s = bson_iter_utf8(it, &len);
    if (len > max ||
        (!checked && (strlen(s) != len || !bson_utf8_validate(s, len, false))))
        return false;
    *out = s;
    return true;
}

static bool s_get_str(const bson_iter_t *it, size_t max, const char **out)
{
    return s_get_str_in(it, max, false, out);
}

static bool s_get_int(const bson_iter_t *it, int64_t *out)
{
    if (BSON_ITER_HOLDS_INT64(it))
        *out = bson_iter_int64(it);
    else if (BSON_ITER_HOLDS_INT32(it))
        *out = bson_iter_int32(it);
    else
        return false;
    return true;
}

static bool s_get_doc(const bson_iter_t *it, bool array, xp_doc_view *out)
{
    if (array ? !BSON_ITER_HOLDS_ARRAY(it) : !BSON_ITER_HOLDS_DOCUMENT(it))
        return false;
    if (array)
        bson_iter_array(it, &out->len, &out->data);
    else
        bson_iter_document(it, &out->len, &out->data);
    bson_t check;
    return xp__doc_view_bson(*out, &check);
}

static bool s_get_status(const bson_iter_t *it, bool checked,
                         xp_trial_status *out)
{
    const char *s;
    if (!s_get_str_in(it, S_TYPE_MAX, checked, &s))
        return false;
    *out = xp__trial_status_parse(s);
    return *out != XP_STATUS_NONE;
}

/* Reads field it into rec; false when it has the wrong type or size. */
static bool s_decode_field(const bson_iter_t *it, bool checked,
                           xp_trial_record *rec)
{
    const char *key = bson_iter_key(it);
    switch (key[0]) {
    case 'c':
        if (strcmp(key, XP_RECORD_CODE_HASH) != 0)
            return true;
        rec->present |= XP_RECORD_HAS_CODE_HASH;
        return s_get_str_in(it, S_HASH_MAX, checked, &rec->code_hash);
    case 'd':
        return strcmp(key, XP_RECORD_DESCRIPTION) != 0 ||
               s_get_str_in(it, UINT32_MAX, checked, &rec->description);
    case 'e':
        if (strcmp(key, XP_RECORD_EXPERIMENT) == 0)
            return s_get_str_in(it, XP_ID_MAX, checked, &rec->experiment);
        return strcmp(key, XP_RECORD_ENVIRONMENT_HASH) != 0 ||
               s_get_str_in(it, S_HASH_MAX, checked, &rec->environment_hash);
    case 'f':
        if (strcmp(key, XP_RECORD_FINISHED) != 0)
            return true;
        rec->present |= XP_RECORD_HAS_OUTCOME;
        rec->finished_ms =
            BSON_ITER_HOLDS_DATE_TIME(it) ? bson_iter_date_time(it) : 0;
        return BSON_ITER_HOLDS_DATE_TIME(it);
    case 'h':
        if (strcmp(key, XP_RECORD_HASHES) == 0)
            return s_get_doc(it, false, &rec->hashes);
        return strcmp(key, XP_RECORD_HOST) != 0 ||
               s_get_str_in(it, S_HOST_MAX, checked, &rec->host);
    case 'm':
        return strcmp(key, XP_RECORD_MEMO) != 0 ||
               s_get_str_in(it, S_TYPE_MAX, checked, &rec->memo);
    case 'p':
        if (strcmp(key, XP_RECORD_PARAMETERS) == 0) {
            rec->present |= XP_RECORD_HAS_PARAMETERS;
            return s_get_doc(it, false, &rec->parameters);
        }
        if (strcmp(key, XP_RECORD_PID) == 0) {
            rec->present |= XP_RECORD_HAS_PROCESS;
            return s_get_int(it, &rec->pid);
        }
        if (strcmp(key, XP_RECORD_PSTART) == 0)
            return s_get_int(it, &rec->pstart);
        if (strcmp(key, XP_RECORD_PROCESS_TIME) == 0) {
            rec->process_time =
                BSON_ITER_HOLDS_NUMBER(it) ? bson_iter_as_double(it) : 0;
            return BSON_ITER_HOLDS_NUMBER(it);
        }
        return strcmp(key, XP_RECORD_PURITY_WARNINGS) != 0 ||
               s_get_doc(it, true, &rec->purity_warnings);
    case 'r':
        if (strcmp(key, XP_RECORD_RESULT) == 0) {
            rec->has_result = true;
            rec->result_iter = *it;
            return true;
        }
        if (strcmp(key, XP_RECORD_REPRODUCES) == 0)
            return s_get_int(it, &rec->reproduces) && rec->reproduces > 0;
        if (strcmp(key, XP_RECORD_REUSED) == 0)
            return s_get_doc(it, false, &rec->reused);
        return strcmp(key, XP_RECORD_RESULT_TYPE) != 0 ||
               s_get_str_in(it, S_TYPE_MAX, checked, &rec->result_type);
    case 's':
        if (strcmp(key, XP_RECORD_STATUS) == 0) {
            rec->present |= XP_RECORD_HAS_STATUS;
            return s_get_status(it, checked, &rec->status);
        }
        if (strcmp(key, XP_RECORD_SEED) == 0) {
            rec->present |= XP_RECORD_HAS_SEED;
            return s_get_int(it, &rec->seed);
        }
        if (strcmp(key, XP_RECORD_STARTED) == 0) {
            rec->started_ms =
                BSON_ITER_HOLDS_DATE_TIME(it) ? bson_iter_date_time(it) : 0;
            return BSON_ITER_HOLDS_DATE_TIME(it);
        }
        if (strcmp(key, XP_RECORD_SCHEDULER) == 0)
            return s_get_str_in(it, S_SCHEDULER_MAX, checked, &rec->scheduler);
        if (strcmp(key, XP_RECORD_SUCCESS) == 0) {
            rec->success = BSON_ITER_HOLDS_BOOL(it) && bson_iter_bool(it);
            return BSON_ITER_HOLDS_BOOL(it);
        }
        return strcmp(key, XP_RECORD_STEPS) != 0 ||
               s_get_doc(it, false, &rec->steps);
    case 't':
        if (strcmp(key, XP_RECORD_TRIAL_ID) != 0)
            return true;
        rec->present |= XP_RECORD_HAS_TRIAL_ID;
        return s_get_int(it, &rec->trial_id) && rec->trial_id > 0;
    default: return true; /* a field of another module (e.g. _id) */
    }
}

/* Whether every document and array inside a document can be read whole:
 * bson_validate passes over a nested one it cannot open, and copying
 * such a document aborts inside libbson. */
typedef struct {
    bool bad;
    int depth;
} s_form;

static const bson_visitor_t s_form_visitor;

static bool s_form_before(const bson_iter_t *it, const char *key, void *data)
{
    (void)key;
    s_form *f = data;
    uint32_t len = 0;
    const uint8_t *bytes = NULL;
    bson_t sub;
    if (BSON_ITER_HOLDS_DOCUMENT(it))
        bson_iter_document(it, &len, &bytes);
    else if (BSON_ITER_HOLDS_ARRAY(it))
        bson_iter_array(it, &len, &bytes);
    else
        return false;
    f->bad = !bytes || !bson_init_static(&sub, bytes, len);
    return f->bad;
}

static void s_form_corrupt(const bson_iter_t *it, void *data)
{
    (void)it;
    ((s_form *)data)->bad = true;
}

static void s_form_unsupported(const bson_iter_t *it, const char *key,
                               uint32_t type, void *data)
{
    (void)it;
    (void)key;
    (void)type;
    ((s_form *)data)->bad = true;
}

static bool s_form_child(const bson_iter_t *it, const char *key,
                         const bson_t *child, void *data)
{
    (void)it;
    (void)key;
    s_form *f = data;
    bson_iter_t inner;
    /* visit_all also stops (true) at a string that is not UTF-8. */
    if (++f->depth > 2 * 100 || !bson_iter_init(&inner, child) ||
        bson_iter_visit_all(&inner, &s_form_visitor, f))
        f->bad = true;
    f->depth--;
    return f->bad;
}

static const bson_visitor_t s_form_visitor = {
    .visit_before = s_form_before,
    .visit_corrupt = s_form_corrupt,
    .visit_document = s_form_child,
    .visit_array = s_form_child,
    .visit_unsupported_type = s_form_unsupported,
};

static bool s_well_formed(const bson_t *doc)
{
    s_form f = {false, 0};
    bson_iter_t it;
    if (!bson_iter_init(&it, doc) ||
        bson_iter_visit_all(&it, &s_form_visitor, &f))
        return false;
    return !f.bad;
}

static int s_decode(const bson_t *doc, bool checked, xp_trial_record *rec,
                    xp_error_t *err)
{
    memset(rec, 0, sizeof *rec);
    bson_iter_t it;
    if ((!checked && !s_well_formed(doc)) || !bson_iter_init(&it, doc))
        return xp__error(err, XP_DOMAIN_BACKEND, XP_ECORRUPT,
                         "trial record is not a well-formed BSON document");
    while (bson_iter_next(&it)) {
        if (!s_decode_field(&it, checked, rec)) {
            int64_t id = rec->trial_id;
            char key[64];
            bson_strncpy(key, bson_iter_key(&it), sizeof key);
            for (char *c = key; *c; c++)
                if (*c < ' ' || *c > '~')
                    *c = '?';
            memset(rec, 0, sizeof *rec);
            if (id > 0)
                return xp__error(err, XP_DOMAIN_BACKEND, XP_ECORRUPT,
                                 "record of trial %lld has a damaged '%s'",
                                 (long long)id, key);
            return xp__error(err, XP_DOMAIN_BACKEND, XP_ECORRUPT,
                             "trial record has a damaged '%s'", key);
        }
    }
    return 0;
}

int xp__record_decode(const bson_t *doc, xp_trial_record *rec, xp_error_t *err)
{
    return s_decode(doc, false, rec, err);
}

int xp__record_decode_checked(const bson_t *doc, xp_trial_record *rec,
                              xp_error_t *err)
{
    return s_decode(doc, true, rec, err);
}

/* The job of a steps entry, as xp__record_append_step writes it. */
/* ------------------------------------------------- the history's check
 * History only needs to know that xp__record_decode_checked accepts a
 * record, and it has just read the record into a value tree: the tree's
 * fields are checked against a table in the order the encoder writes
 * them (so each is found at the first try), without a second walk of
 * the bytes. Anything it does not know for sure (a field it has no
 * entry for, a value that fails) is handed to the decoder itself, so
 * both always agree (tests/fuzz/fuzz_trial_record.c asserts it). */
typedef enum {
    S_CHECK_STR,      /* UTF-8 of at most max bytes */
    S_CHECK_INT,      /* int32 / int64 */
    S_CHECK_POSITIVE, /* int32 / int64 above 0 */
    S_CHECK_DATE,
    S_CHECK_BOOL,
    S_CHECK_NUMBER, /* int32 / int64 / double */
    S_CHECK_DOC,
    S_CHECK_ARRAY,
    S_CHECK_STATUS,
    S_CHECK_ANY,
} s_check_kind;

/* The record's fields in the order the encoder writes them; history's
 * rows point to these strings for their keys (xp__value_from_bytes_in),
 * so the check finds them by address. */
static const char *const s_check_names[] = {
    XP_RECORD_TRIAL_ID,
    XP_RECORD_EXPERIMENT,
    XP_RECORD_STATUS,
    XP_RECORD_PARAMETERS,
    XP_RECORD_SEED,
    XP_RECORD_STARTED,
    XP_RECORD_HOST,
    XP_RECORD_PID,
    XP_RECORD_PSTART,
    XP_RECORD_SCHEDULER,
    XP_RECORD_CODE_HASH,
    XP_RECORD_ENVIRONMENT_HASH,
    XP_RECORD_REPRODUCES,
    XP_RECORD_MEMO,
    XP_RECORD_FINISHED,
    XP_RECORD_RESULT,
    XP_RECORD_RESULT_TYPE,
    XP_RECORD_SUCCESS,
    XP_RECORD_PROCESS_TIME,
    XP_RECORD_DESCRIPTION,
    XP_RECORD_PURITY_WARNINGS,
    XP_RECORD_STEPS,
    XP_RECORD_HASHES,
    XP_RECORD_REUSED,
    "_id", /* MongoDB's, which the decoder passes over */
};

/* What the decoder asks of each, in the same order. */
static const struct {
    s_check_kind kind;
    uint32_t max;
} s_check_fields[] = {
    {S_CHECK_POSITIVE, 0},
    {S_CHECK_STR, XP_ID_MAX},
    {S_CHECK_STATUS, S_TYPE_MAX},
    {S_CHECK_DOC, 0},
    {S_CHECK_INT, 0},
    {S_CHECK_DATE, 0},
    {S_CHECK_STR, S_HOST_MAX},
    {S_CHECK_INT, 0},
    {S_CHECK_INT, 0},
    {S_CHECK_STR, S_SCHEDULER_MAX},
    {S_CHECK_STR, S_HASH_MAX},
    {S_CHECK_STR, S_HASH_MAX},
    {S_CHECK_POSITIVE, 0},
    {S_CHECK_STR, S_TYPE_MAX},
    {S_CHECK_DATE, 0},
    {S_CHECK_ANY, 0},
    {S_CHECK_STR, S_TYPE_MAX},
    {S_CHECK_BOOL, 0},
    {S_CHECK_NUMBER, 0},
    {S_CHECK_STR, UINT32_MAX},
    {S_CHECK_ARRAY, 0},
    {S_CHECK_DOC, 0},
    {S_CHECK_DOC, 0},
    {S_CHECK_DOC, 0},
    {S_CHECK_ANY, 0},
};

#define S_CHECK_FIELDS (sizeof s_check_names / sizeof s_check_names[0])
_Static_assert(sizeof s_check_fields / sizeof s_check_fields[0] ==
                   S_CHECK_FIELDS,
               "one check per field name");

/* Whether value v passes the decoder's test for field f (a value read
 * from BSON: int32 and int64 are both XP_TYPE_INT64, undefined null). */
static bool s_check_field(size_t f, const xp_value *v)
{
    switch (s_check_fields[f].kind) {
    case S_CHECK_STR:
        return v->type == XP_TYPE_STRING &&
               xp__value_len(v) <= s_check_fields[f].max;
    case S_CHECK_STATUS:
        return v->type == XP_TYPE_STRING &&
               xp__value_len(v) <= s_check_fields[f].max &&
               xp__trial_status_parse(v->u.data) != XP_STATUS_NONE;
    case S_CHECK_INT: return v->type == XP_TYPE_INT64;
    case S_CHECK_POSITIVE: return v->type == XP_TYPE_INT64 && v->u.i > 0;
    case S_CHECK_DATE: return v->type == XP_TYPE_DATETIME;
    case S_CHECK_BOOL: return v->type == XP_TYPE_BOOL;
    case S_CHECK_NUMBER:
        return v->type == XP_TYPE_INT64 || v->type == XP_TYPE_DOUBLE;
    /* a checked document's nested ones are whole (xp__doc_view_bson) */
    case S_CHECK_DOC: return v->type == XP_TYPE_DOCUMENT;
    case S_CHECK_ARRAY: return v->type == XP_TYPE_ARRAY;
    case S_CHECK_ANY: return true;
    }
    return false;
}

/* The field of s_check_names named key, looked for from f on (where the
 * encoder's order puts it when it is not at f); S_CHECK_FIELDS when none.
 * Out of the check's loop, which then keeps its state in registers. */
__attribute__((noinline)) static size_t s_check_find(size_t f, const char *key)
{
    for (size_t tried = 0; tried < S_CHECK_FIELDS; tried++) {
        if (s_check_names[f] == key || (s_check_names[f][0] == key[0] &&
                                        strcmp(s_check_names[f], key) == 0))
            return f;
        f = f + 1 == S_CHECK_FIELDS ? 0 : f + 1;
    }
    return S_CHECK_FIELDS;
}

int xp__record_check_value(const xp_value *tree, const bson_t *doc,
                           xp_error_t *err)
{
    bool known = tree && tree->type == XP_TYPE_DOCUMENT;
    size_t n = known ? tree->n : 0, f = 0;
    /* a row read from bytes has its fields side by side, keyed by the
     * names themselves, in the encoder's order */
    const struct xp_value_flat *flat =
        known && (tree->flags & XP__VALUE_FLAT) ? tree->u.flat : NULL;
    for (size_t i = 0; known && i < n; i++) {
        const char *key = flat ? flat->keys[i] : xp__value_key(tree, i);
        if (s_check_names[f] != key &&
            (f = s_check_find(f, key)) == S_CHECK_FIELDS)
            break;
        known =
            s_check_field(f, flat ? &flat->items[i] : xp__value_child(tree, i));
        f = f + 1 == S_CHECK_FIELDS ? 0 : f + 1;
    }
    if (known && f != S_CHECK_FIELDS)
        return 0;
    xp_trial_record rec;
    return s_decode(doc, true, &rec, err);
}

int xp__record_read_row_checked(xp_value *row, const uint8_t *data, size_t len,
                                xp_value *owner, xp_error_t *err)
{
    bson_t doc;
    if (!data || !xp__bson_view_checked(&doc, data, len))
        return xp__error(err, XP_DOMAIN_BACKEND, XP_ECORRUPT,
                         "not a BSON document");
    if (xp__value_from_checked_bson_in(row, &doc, owner, err) != 0) {
        /* the decoder's reason when it has one, else the tree's */
        xp_trial_record rec;
        xp__record_decode_checked(&doc, &rec, err);
        return -1;
    }
    return xp__record_check_value(row, &doc, err);
}

int xp__record_read_row(xp_value *row, const uint8_t *data, size_t len,
                        xp_value *owner, xp_error_t *err)
{
    if (xp__value_from_bytes_in(row, data, len, owner, s_check_names,
                                S_CHECK_FIELDS) != 0)
        return xp__record_read_row_checked(row, data, len, owner, err);
    bson_t doc; /* the walk found the bytes whole */
    bson_init_static(&doc, data, len);
    return xp__record_check_value(row, &doc, err);
}

static void s_step_job(const bson_iter_t *job, xp_record_step *info)
{
    bson_iter_t it;
    if (!BSON_ITER_HOLDS_DOCUMENT(job) || !bson_iter_recurse(job, &it))
        return;
    while (bson_iter_next(&it)) {
        const char *key = bson_iter_key(&it);
        if (strcmp(key, "id") == 0)
            s_get_str(&it, S_HOST_MAX, &info->job_id);
        else if (strcmp(key, "array_index") == 0)
            s_get_int(&it, &info->job_index);
        else if (strcmp(key, "node") == 0)
            s_get_str(&it, S_HOST_MAX, &info->job_node);
    }
}

/* One entry of a steps document; its fields as xp__record_append_step
 * writes them. */
static void s_step_info(const bson_iter_t *entry, xp_record_step *info)
{
    bson_iter_t it;
    *info = (xp_record_step){"", "", 0, 0, "", -1, ""};
    if (!bson_iter_recurse(entry, &it))
        return;
    while (bson_iter_next(&it)) {
        const char *key = bson_iter_key(&it);
        if (strcmp(key, "host") == 0)
            s_get_str(&it, S_HOST_MAX, &info->host);
        else if (strcmp(key, "worker") == 0)
            s_get_str(&it, S_HOST_MAX, &info->worker);
        else if (strcmp(key, "attempt") == 0)
            s_get_int(&it, &info->attempt);
        else if (strcmp(key, "elapsed") == 0 && BSON_ITER_HOLDS_NUMBER(&it))
            info->elapsed = bson_iter_as_double(&it);
        else if (strcmp(key, "job") == 0)
            s_step_job(&it, info);
    }
    if (info->job_index < 0)
        info->job_index = -1;
}

void xp__record_steps_each(xp_doc_view steps,
                           void (*fn)(const char *step,
                                      const xp_record_step *info, void *user),
                           void *user)
{
    bson_t doc;
    bson_iter_t it;
    if (!xp__doc_view_bson(steps, &doc) || !bson_iter_init(&it, &doc))
        return;
    while (bson_iter_next(&it)) {
        if (!BSON_ITER_HOLDS_DOCUMENT(&it))
            continue;
        xp_record_step info;
        s_step_info(&it, &info);
        fn(bson_iter_key(&it), &info, user);
    }
}
