/* trials.c — the trials a scheduler runs: taken up from the queued
 * records of a definition when a worker with its code has room, driven
 * by the common trial lifecycle (trial.c) as their tasks come back, and
 * recorded in group commits: the running records of trials whose first
 * step went out, then the finished trials, which are then reported to
 * their batches. */
#include "remote/scheduler/trials.h"

#include "remote/scheduler/batches.h"
#include "remote/scheduler/tasks.h"
#include "remote/scheduler/workers.h"

#include "store/record.h"
#include "store/store.h"
#include "util/bson_util.h"
#include "util/log.h"
#include "value.h"

#include <stdlib.h>

void xp__sched_trial_free(xp_sched_trial *st)
{
    xp__trial_free(&st->t);
    bson_free(st);
}

void xp__sched_trial_maybe_finish(xp_scheduler *s, xp_sched_trial *st)
{
    if (st->tasks_alive > 0 || !xp__trial_done(st->t))
        return;
    st->finishing = true;
    st->next_done = NULL;
    *s->done_tail = st;
    s->done_tail = &st->next_done;
}

void xp__sched_trial_mark_running(xp_scheduler *s, xp_sched_trial *st)
{
    if (st->marked)
        return;
    st->marked = true;
    st->marked_ms = xp__sched_now();
    st->next_mark = NULL;
    *s->mark_tail = st;
    s->mark_tail = &st->next_mark;
}

/* The running record of st is due at now (or all are). */
static bool s_running_due(const xp_sched_trial *st, int64_t now, bool all)
{
    return all || now - st->marked_ms >= XP_SCHED_RUNNING_AFTER_MS;
}

int64_t xp__sched_trials_due(const xp_scheduler *s)
{
    if (!s->mark_head)
        return -1;
    int64_t left =
        s->mark_head->marked_ms + XP_SCHED_RUNNING_AFTER_MS - xp__sched_now();
    return left > 0 ? left : 0;
}

/* The full state of one pending record of def, or NULL (logged). */
static xp_sched_trial *s_take_up_one(xp_sched_def *def, xp_sched_pending *p)
{
    bson_t doc;
    xp_error_t err = {0, 0, "its queued record is not a document"};
    xp_sched_trial *st = bson_malloc0(sizeof *st);
    if (!bson_init_static(&doc, p->doc, p->len) ||
        xp__trial_resume(&st->t, def->ex, &doc, &err) != 0) {
        int64_t id = 0;
        if (bson_init_static(&doc, p->doc, p->len))
            xp__bson_int64(&doc, XP_RECORD_TRIAL_ID, &id);
        xp__log(XP_LOG_ERROR, "Queued trial %lld of %s cannot run: %s",
                (long long)id, xp__experiment_id(def->ex), err.message);
        bson_free(st);
        return NULL;
    }
    st->def = def;
    st->batch = p->batch;
    return st;
}

/* The store of def's queued trials, opened if need be; false (logged
 * once, tried again a heartbeat later) when it cannot be. */
static bool s_store(xp_scheduler *s, xp_sched_def *def)
{
    int64_t now = xp__sched_now();
    if (def->ex)
        return true;
    if (def->open_failed_ms && now - def->open_failed_ms < s->opts.heartbeat_ms)
        return false;
    xp_error_t err;
    if (xp__sched_def_open(s, def, &err)) {
        def->open_failed_ms = 0;
        return true;
    }
    if (!def->open_failed_ms)
        xp__log(XP_LOG_ERROR, "%zu queued trial(s) of %s wait: %s",
                def->pending.n, def->graph->id, err.message);
    def->open_failed_ms = now;
    return false;
}

/* Enough to keep every slot busy and fill what workers hold beyond their
 * slots, little enough that the queue may be long. */
void xp__sched_trials_take_up(xp_scheduler *s)
{
    for (xp_sched_def *def = zhashx_first(s->defs); def;
         def = zhashx_next(s->defs)) {
        if (!def->pending.head)
            continue;
        int slots = xp__sched_def_slots(s, def);
        if (slots == 0) {
            if (!def->announced)
                xp__log(XP_LOG_WARNING,
                        "%zu trial(s) of %s wait for a worker with code %s",
                        def->pending.n, def->graph->id, def->graph->code_hash);
            def->announced = true;
            continue;
        }
        def->announced = false;
        if (!s_store(s, def))
            continue;
        size_t room = 2 * (size_t)xp__sched_def_capacity(s, def) + 16;
        while (def->pending.head && def->active < room) {
            xp_sched_pending *p = xp__sched_fifo_pop(&def->pending);
            xp_sched_trial *st = s_take_up_one(def, p);
            bson_free(p);
            if (!st)
                continue;
            def->active++;
            xp__sched_tasks_enqueue_ready(s, st);
            xp__sched_trial_maybe_finish(s, st);
        }
    }
}

/* Writes, inside the caller's group, the running records of def's trials
 * out for XP_SCHED_RUNNING_AFTER_MS (or all of them) (status running,
 * pid 0: the scheduler's), so that the history shows them as a local run
 * would, and takes them off the list with those about to be recorded
 * finished (their finished record says it all). */
static void s_write_running(xp_scheduler *s, xp_sched_def *def, int64_t now,
                            bool all)
{
    size_t failed = 0;
    xp_error_t err;
    xp_sched_trial **link = &s->mark_head;
    while (*link) {
        xp_sched_trial *st = *link;
        bool due = s_running_due(st, now, all);
        if (st->def != def || (!due && !st->finishing)) {
            link = &st->next_mark;
            continue;
        }
        *link = st->next_mark;
        if (!st->finishing && xp__trial_record_running(st->t, &err) != 0)
            failed++;
    }
    s->mark_tail = link;
    /* Only the status shown while it runs: the trial goes on. */
    if (failed)
        xp__log(XP_LOG_WARNING,
                "Recording %zu trial(s) of %s as running "
                "failed: %s",
                failed, xp__experiment_id(def->ex), err.message);
}

/* The line st's batch gets once the lifecycle finished it (recorded, or
 * not with err): the status its record has, or will have when its spool
 * is written (it is then told so, with its result), so that a client is
 * not told "failed" of a trial stored as succeeded. Sets st->ok. */
static bson_t *s_report(xp_sched_trial *st, const xp_value *result,
                        bool recorded, const xp_error_t *err)
{
    const char *why = NULL;
    bool failed = xp__trial_failed(st->t, &why);
    bool spooled = !recorded && xp__trial_spooled(st->t);
    st->ok = spooled ? !failed : recorded;
    char *told = NULL;
    if (spooled)
        told = failed && why && *why
                   ? bson_strdup_printf("%s; %s", why, err->message)
                   : bson_strdup(err->message);
    xp_msg_finished f = {
        .trial_id = xp__trial_id(st->t),
        .ok = st->ok,
        .spooled = spooled,
        .result = !st->ok ? NULL
                  : spooled
                      ? xp__trial_value(st->t, xp__graph_result(st->def->ex))
                      : result,
        .description = spooled  ? told
                       : st->ok ? NULL
                                : err->message,
    };
    bson_t *line = xp__msg_finished_line(&f);
    bson_free(told);
    return line;
}

/* Finishes the trials of list through the lifecycle (inside the caller's
 * group); a trial of a batch keeps its report line until the group is
 * stored. Returns how many; *spooled: how many the backend could not take
 * and the spool keeps. */
static size_t s_finish(xp_sched_trial *list, size_t *spooled)
{
    size_t n = 0;
    *spooled = 0;
    for (xp_sched_trial *st = list; st; st = st->next_done, n++) {
        xp_value *result = NULL;
        xp_error_t err;
        bool recorded = xp__trial_finish(st->t, &result, &err) == 0;
        *spooled += !recorded && xp__trial_spooled(st->t);
        st->ok = recorded;
        if (st->batch)
            st->report = s_report(st, result, recorded, &err);
        xp_value_destroy(&result);
    }
    return n;
}

/* One group commit for def: the running records, then the finished
 * trials of list, which are then reported to their batches. If the group
 * cannot be stored, nothing of it is: the finished trials are queued
 * again from their records. */
static void s_record_group(xp_scheduler *s, xp_sched_def *def,
                           xp_sched_trial *list, int64_t now, bool all)
{
    xp_backend *be = xp__experiment_store(def->ex);
    xp_error_t gerr;
    bool grouped = xp__store_group_begin(be, &gerr) == 0;
    s_write_running(s, def, now, all);
    size_t spooled;
    size_t n = s_finish(list, &spooled);
    xp__sched_def_spooled(s, def, spooled);
    if (spooled)
        xp__log(XP_LOG_WARNING,
                "%zu finished trial(s) of %s could not be recorded: kept in "
                "the spool until the store answers",
                spooled, xp__experiment_id(def->ex));
    bool lost = grouped && xp__store_group_end(be, &gerr) != 0;
    xp_sched_fifo again = {0};
    while (list) {
        xp_sched_trial *st = list;
        list = st->next_done;
        if (lost) {
            bson_t *doc = xp__trial_record(st->t);
            xp__sched_fifo_push(&again, st->batch, doc);
            bson_destroy(doc);
        } else if (st->batch) {
            xp__sched_batch_trial_done(st->batch, st->report, st->ok);
        }
        if (st->report)
            bson_destroy(st->report);
        def->active--;
        xp__sched_trial_free(st);
    }
    if (lost && n) {
        xp__log(XP_LOG_ERROR,
                "Recording %zu finished trial(s) of %s failed (%s); they "
                "are queued again",
                n, xp__experiment_id(def->ex), gerr.message);
        xp__sched_fifo_splice(&def->pending, &again, true);
    } else if (lost) {
        xp__log(XP_LOG_WARNING, "Recording trials of %s as running failed: %s",
                xp__experiment_id(def->ex), gerr.message);
    }
}

void xp__sched_trials_record(xp_scheduler *s, bool all)
{
    int64_t now = xp__sched_now();
    for (;;) {
        /* The marks left once the finished trials are recorded are in
         * order: when the oldest is not due, none is. */
        xp_sched_def *def =
            s->done_head ? s->done_head->def
            : s->mark_head && s_running_due(s->mark_head, now, all)
                ? s->mark_head->def
                : NULL;
        if (!def)
            break;
        xp_sched_trial *mine = NULL, **mine_tail = &mine;
        xp_sched_trial **link = &s->done_head;
        s->done_tail = &s->done_head;
        while (*link) {
            xp_sched_trial *st = *link;
            if (st->def == def) {
                *link = st->next_done;
                st->next_done = NULL;
                *mine_tail = st;
                mine_tail = &st->next_done;
            } else {
                link = &st->next_done;
                s->done_tail = link;
            }
        }
        s_record_group(s, def, mine, now, all);
    }
    s->done_tail = &s->done_head;
}
