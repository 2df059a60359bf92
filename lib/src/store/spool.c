/* spool.c — finished trials whose final record could not be written (the
 * database was unreachable) are kept as one BSON file each under
 * <cache>/spool/ and written on the next open or by xp_experiment_sync,
 * so no finished trial is lost. */
#include "store/spool.h"

#include "store/driver.h"
#include "store/record.h"
#include "util/bson_util.h"
#include "util/error.h"
#include "util/log.h"
#include "util/sys.h"
#include "value.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *s_spool_dir(const xp_backend *b)
{
    return bson_strdup_printf("%s/spool", b->dir);
}

/* One metric chunk of a spool record: {name, chunk, epochs, values}, the
 * two halves of the chunk encoding (store/metric.h). */
static void s_append_chunk(bson_t *arr, const char *key,
                           const xp_metric_chunk *c)
{
    bson_t item;
    BSON_APPEND_DOCUMENT_BEGIN(arr, key, &item);
    BSON_APPEND_UTF8(&item, "name", c->name);
    BSON_APPEND_INT64(&item, "chunk", c->chunk);
    xp__metric_columns_append(&item, c);
    bson_append_document_end(arr, &item);
}

/* The spool record of o into rec (initialised); its decoder is
 * xp__spool_decode below. */
static int s_encode(const xp_trial_outcome *o, bson_t *rec, xp_error_t *err)
{
    bson_t arr, item;
    char key[16];
    const char *k;
    BSON_APPEND_INT64(rec, XP_RECORD_TRIAL_ID, o->record->trial_id);
    BSON_APPEND_DOCUMENT(rec, "doc", o->doc);
    BSON_APPEND_ARRAY_BEGIN(rec, "metrics", &arr);
    for (size_t i = 0; i < o->n_chunks; i++) {
        bson_uint32_to_string((uint32_t)i, &k, key, sizeof key);
        s_append_chunk(&arr, k, &o->chunks[i]);
    }
    bson_append_array_end(rec, &arr);
    BSON_APPEND_ARRAY_BEGIN(rec, "persisted", &arr);
    int rc = 0;
    for (size_t i = 0; i < o->n_persisted && rc == 0; i++) {
        bson_uint32_to_string((uint32_t)i, &k, key, sizeof key);
        BSON_APPEND_DOCUMENT_BEGIN(&arr, k, &item);
        BSON_APPEND_UTF8(&item, "step", o->persisted[i].step);
        rc = xp__value_append_checked(&item, "value", o->persisted[i].value,
                                      "persisted value", err);
        bson_append_document_end(&arr, &item);
    }
    bson_append_array_end(rec, &arr);
    BSON_APPEND_ARRAY_BEGIN(rec, "hashes", &arr);
    for (size_t i = 0; i < o->n_hashes; i++) {
        const xp_step_hash *h = &o->hashes[i];
        bson_uint32_to_string((uint32_t)i, &k, key, sizeof key);
        BSON_APPEND_DOCUMENT_BEGIN(&arr, k, &item);
        BSON_APPEND_UTF8(&item, "step", h->step);
        bson_append_binary(&item, "input", -1, BSON_SUBTYPE_BINARY, h->input,
                           16);
        bson_append_binary(&item, "output", -1, BSON_SUBTYPE_BINARY, h->output,
                           16);
        bson_append_document_end(&arr, &item);
    }
    bson_append_array_end(rec, &arr);
    return rc;
}

int xp__spool_write(xp_backend *b, const xp_trial_outcome *o, char **path_out,
                    xp_error_t *err)
{
    int64_t id = o->record->trial_id;
    bson_t rec = BSON_INITIALIZER;
    if (s_encode(o, &rec, err) != 0) {
        bson_destroy(&rec);
        return -1;
    }
    int rc = -1;
    char *dir = s_spool_dir(b);
    char *path = bson_strdup_printf("%s/%lld.bson", dir, (long long)id);
    char *tmp = bson_strdup_printf("%s.%ld.tmp", path, (long)getpid());
    if (xp__mkdir_p(dir, err) == 0) {
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
        bool ok = fd >= 0 &&
                  write(fd, bson_get_data(&rec), rec.len) == (ssize_t)rec.len;
        ok = fd >= 0 && fsync(fd) == 0 && ok;
        if (fd >= 0)
            close(fd);
        if (ok && rename(tmp, path) == 0) {
            rc = 0;
        } else {
            xp__error(err, XP_DOMAIN_SYSTEM, XP_EIO,
                      "cannot write spool file %s: %s", path, strerror(errno));
            unlink(tmp);
        }
    }
    if (rc == 0 && path_out)
        *path_out = bson_strdup(path);
    bson_free(tmp);
    bson_free(path);
    bson_free(dir);
    bson_destroy(&rec);
    return rc;
}

/* ---------------------------------------------------------------- decoder */

void xp__spool_record_clear(xp_spool_record *r)
{
    for (size_t i = 0; i < r->n_chunks; i++)
        xp__metric_points_clear(&r->points[i]);
    bson_free(r->points);
    bson_free(r->chunks);
    for (size_t i = 0; i < r->n_persisted; i++)
        xp_value_destroy(&r->values[i]);
    bson_free(r->values);
    bson_free(r->persisted);
    bson_free(r->hashes);
    memset(r, 0, sizeof *r);
}

/* One metric chunk {name, chunk, epochs, values} into r. */
static int s_decode_chunk(const bson_iter_t *entry, xp_spool_record *r)
{
    uint32_t len;
    const uint8_t *data;
    bson_t item;
    int64_t chunk = 0;
    if (!BSON_ITER_HOLDS_DOCUMENT(entry))
        return -1;
    bson_iter_document(entry, &len, &data);
    if (!bson_init_static(&item, data, len))
        return -1;
    const char *name = xp__bson_utf8(&item, "name");
    if (!name || !xp__bson_int64(&item, "chunk", &chunk) || chunk < 0)
        return -1;
    size_t i = r->n_chunks;
    r->points = bson_realloc(r->points, (i + 1) * sizeof *r->points);
    r->chunks = bson_realloc(r->chunks, (i + 1) * sizeof *r->chunks);
    xp_metric_points *p = &r->points[i];
    memset(p, 0, sizeof *p);
    r->n_chunks++;
    /* The point count must agree between epochs and values. */
    if (xp__metric_columns_read(&item, p, NULL) != 0 ||
        p->n > XP_METRIC_CHUNK_POINTS)
        return -1;
    r->chunks[i] = (xp_metric_chunk){.name = name,
                                     .chunk = chunk,
                                     .epochs = p->epochs,
                                     .values = p->values,
                                     .n = p->n};
    return 0;
}

/* One persisted value {step, value} into r. */
static int s_decode_persisted(const bson_iter_t *entry, xp_spool_record *r)
{
    bson_iter_t f;
    const char *step = NULL;
    bool have_value = false;
    if (!BSON_ITER_HOLDS_DOCUMENT(entry) || !bson_iter_recurse(entry, &f))
        return -1;
    xp_value *v = xp_value_new();
    int rc = 0;
    while (rc == 0 && bson_iter_next(&f)) {
        if (strcmp(bson_iter_key(&f), "step") == 0 && BSON_ITER_HOLDS_UTF8(&f))
            step = bson_iter_utf8(&f, NULL);
        else if (strcmp(bson_iter_key(&f), "value") == 0) {
            rc = xp__value_from_iter(v, &f, NULL);
            have_value = true;
        }
    }
    if (rc != 0 || !step || !have_value) {
        xp_value_destroy(&v);
        return -1;
    }
    size_t i = r->n_persisted++;
    r->persisted = bson_realloc(r->persisted, (i + 1) * sizeof *r->persisted);
    r->values = bson_realloc(r->values, (i + 1) * sizeof *r->values);
    r->values[i] = v;
    r->persisted[i] = (xp_persisted_item){.step = step, .value = v};
    return 0;
}

/* One step hash {step, input, output} (16-byte binaries) into r. */
static int s_decode_hash(const bson_iter_t *entry, xp_spool_record *r)
{
    bson_iter_t f;
    xp_step_hash h = {0};
    int have = 0;
    if (!BSON_ITER_HOLDS_DOCUMENT(entry) || !bson_iter_recurse(entry, &f))
        return -1;
    while (bson_iter_next(&f)) {
        const char *key = bson_iter_key(&f);
        uint32_t len = 0;
        const uint8_t *data = NULL;
        if (strcmp(key, "step") == 0 && BSON_ITER_HOLDS_UTF8(&f)) {
            h.step = bson_iter_utf8(&f, NULL);
            have |= 1;
            continue;
        }
        if (!BSON_ITER_HOLDS_BINARY(&f))
            continue;
        bson_iter_binary(&f, NULL, &len, &data);
        if (len == 16 && strcmp(key, "input") == 0) {
            memcpy(h.input, data, 16);
            have |= 2;
        } else if (len == 16 && strcmp(key, "output") == 0) {
            memcpy(h.output, data, 16);
            have |= 4;
        }
    }
    if (have != 7)
        return -1;
    r->hashes = bson_realloc(r->hashes, (r->n_hashes + 1) * sizeof *r->hashes);
    r->hashes[r->n_hashes++] = h;
    return 0;
}

/* Calls decode for every element of array key of rec (absent: none). */
static int s_decode_list(const bson_t *rec, const char *key,
                         int (*decode)(const bson_iter_t *, xp_spool_record *),
                         xp_spool_record *r)
{
    bson_iter_t it, arr;
    if (!bson_iter_init_find(&it, rec, key))
        return 0;
    if (!BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &arr))
        return -1;
    while (bson_iter_next(&arr))
        if (decode(&arr, r) != 0)
            return -1;
    return 0;
}

int xp__spool_decode(const bson_t *rec, xp_spool_record *out, xp_error_t *err)
{
    memset(out, 0, sizeof *out);
    bson_iter_t it;
    uint32_t len;
    const uint8_t *data;
    if (!bson_iter_init_find(&it, rec, XP_RECORD_TRIAL_ID) ||
        !BSON_ITER_HOLDS_INT64(&it) || bson_iter_int64(&it) < 1)
        return xp__error(err, XP_DOMAIN_BACKEND, XP_ECORRUPT,
                         "spool record without trial id");
    int64_t id = bson_iter_int64(&it);
    if (!bson_iter_init_find(&it, rec, "doc") || !BSON_ITER_HOLDS_DOCUMENT(&it))
        return xp__error(err, XP_DOMAIN_BACKEND, XP_ECORRUPT,
                         "spool record of trial %lld has no document",
                         (long long)id);
    bson_iter_document(&it, &len, &data);
    /* The trial document is checked as the stores will read it. */
    if (!bson_init_static(&out->doc, data, len) ||
        xp__record_decode(&out->doc, &out->record, NULL) != 0 ||
        (out->record.trial_id != 0 && out->record.trial_id != id) ||
        s_decode_list(rec, "metrics", s_decode_chunk, out) != 0 ||
        s_decode_list(rec, "persisted", s_decode_persisted, out) != 0 ||
        s_decode_list(rec, "hashes", s_decode_hash, out) != 0) {
        xp__spool_record_clear(out);
        return xp__error(err, XP_DOMAIN_BACKEND, XP_ECORRUPT,
                         "spool record of trial %lld is damaged",
                         (long long)id);
    }
    out->record.trial_id = id;
    out->outcome = (xp_trial_outcome){.record = &out->record,
                                      .doc = &out->doc,
                                      .chunks = out->chunks,
                                      .n_chunks = out->n_chunks,
                                      .persisted = out->persisted,
                                      .n_persisted = out->n_persisted,
                                      .hashes = out->hashes,
                                      .n_hashes = out->n_hashes};
    return 0;
}

/* 0 when trial id of the backend is absent or is the trial of record
 * rec (same start time and seed): a backend that lost the trial (a Redis
 * restarted without persistence) may have given its id to another trial
 * since, which a replay must not overwrite. */
static int s_replay_target(xp_backend *b, const xp_trial_record *rec,
                           xp_error_t *err)
{
    bson_t stored;
    xp_trial_record now;
    xp_error_t e;
    if (b->ops->trial_get(b, rec->trial_id, &stored, &e) != 0) {
        if (e.code == XP_ENOTFOUND)
            return 0;
        if (err)
            *err = e;
        return -1;
    }
    bool same = xp__record_decode(&stored, &now, NULL) == 0 &&
                now.started_ms == rec->started_ms && now.seed == rec->seed;
    int64_t started = now.started_ms, seed = now.seed;
    bson_destroy(&stored);
    if (same)
        return 0;
    return xp__error(err, XP_DOMAIN_BACKEND, XP_EEXIST,
                     "trial %lld of %s holds another trial (started %lld, "
                     "seed %lld; spooled: started %lld, seed %lld): not "
                     "overwritten",
                     (long long)rec->trial_id, b->description,
                     (long long)started, (long long)seed,
                     (long long)rec->started_ms, (long long)rec->seed);
}

/* Replays one spool record (file path); 0 when written. */
static int s_replay(xp_backend *b, const bson_t *rec, const char *path,
                    xp_error_t *err)
{
    xp_spool_record r;
    xp_error_t damage;
    if (xp__spool_decode(rec, &r, &damage) != 0)
        return xp__error(err, damage.domain, damage.code,
                         "spool file %s is damaged (%s)", path, damage.message);
    if (s_replay_target(b, &r.record, err) != 0) {
        xp__spool_record_clear(&r);
        return -1;
    }
    int rc = b->ops->trial_finish(b, &r.outcome, err);
    xp__spool_record_clear(&r);
    return rc;
}

/* ---------------------------------------------------------------- replay */

/* Names of the entries of dir (caller frees each and the array), read
 * whole before any is renamed. */
static char **s_list(const char *dir, size_t *n)
{
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return NULL;
    char **names = NULL;
    size_t cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            names = bson_realloc(names, cap * sizeof *names);
        }
        names[(*n)++] = bson_strdup(e->d_name);
    }
    closedir(d);
    return names;
}

static bool s_ends_with(const char *s, size_t len, const char *tail)
{
    size_t t = strlen(tail);
    return len >= t && memcmp(s + len - t, tail, t) == 0;
}

/* Reads the decimal number at *p up to a '.'; false when there is none. */
static bool s_number(const char **p, unsigned long long *out)
{
    const char *s = *p;
    unsigned long long v = 0;
    if (*s < '0' || *s > '9')
        return false;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (v > (ULLONG_MAX - 9) / 10)
            return false;
        v = v * 10 + (unsigned long long)(*s - '0');
    }
    if (*s != '.')
        return false;
    *p = s;
    *out = v;
    return true;
}

/* A claim left in dir: <N>.bson.<pid>.<start>.claimed (or, from older
 * versions, <N>.bson.<pid>.claimed). *base_len is the length of
 * "<N>.bson"; *start 0 when not recorded. */
static bool s_parse_claim(const char *name, size_t *base_len, pid_t *pid,
                          uint64_t *start)
{
    const char *mark = strstr(name, ".bson.");
    if (!mark || !s_ends_with(name, strlen(name), ".claimed"))
        return false;
    const char *p = mark + strlen(".bson");
    unsigned long long owner, when = 0;
    p++;
    if (!s_number(&p, &owner) || owner == 0 || owner > INT32_MAX)
        return false;
    if (strcmp(p, ".claimed") != 0) {
        p++;
        if (!s_number(&p, &when) || strcmp(p, ".claimed") != 0)
            return false;
    }
    *base_len = (size_t)(mark - name) + strlen(".bson");
    *pid = (pid_t)owner;
    *start = (uint64_t)when;
    return true;
}

/* True when the process that made a claim is gone: no process has its
 * pid, or (start known) another process has it now. */
static bool s_claim_stale(pid_t pid, uint64_t start)
{
    uint64_t now = xp__process_start(pid);
    return now == 0 || (start != 0 && now != start);
}

/* Removes name of dir when it is the temporary file of a spool write
 * (<N>.bson.<pid>.tmp) whose process is gone: it died before the rename
 * that completes a write, so the file is incomplete and no process will
 * finish it. Only the writer of trial N makes N's temporary file, so a
 * live process with that pid (a reused one) is not writing it either,
 * but it is left alone in case. */
static void s_remove_dead_tmp(const char *dir, const char *name)
{
    const char *mark = strstr(name, ".bson.");
    if (!mark || !s_ends_with(name, strlen(name), ".tmp"))
        return;
    const char *p = mark + strlen(".bson.");
    unsigned long long owner;
    if (!s_number(&p, &owner) || owner == 0 || owner > INT32_MAX ||
        strcmp(p, ".tmp") != 0 || xp__process_start((pid_t)owner) != 0)
        return;
    char *path = bson_strdup_printf("%s/%s", dir, name);
    if (unlink(path) == 0)
        xp__log(XP_LOG_INFO,
                "Removed %s, an unfinished spool write of "
                "process %llu",
                path, owner);
    bson_free(path);
}

/* Claims spool entry name of dir for this process, so a concurrent open
 * does not write it too: a spooled trial, or the claim of a process that
 * is gone. *path (the spool file's own name) and *claimed: caller frees.
 * False when the entry is not to be taken. */
static bool s_claim(const char *dir, const char *name, char **path,
                    char **claimed)
{
    size_t len = strlen(name), base_len = len;
    pid_t owner = 0;
    uint64_t start = 0;
    bool spooled = len > 5 && s_ends_with(name, len, ".bson");
    if (!spooled && !(s_parse_claim(name, &base_len, &owner, &start) &&
                      s_claim_stale(owner, start)))
        return false;
    char *from = bson_strdup_printf("%s/%s", dir, name);
    *path = bson_strdup_printf("%s/%.*s", dir, (int)base_len, name);
    *claimed = bson_strdup_printf("%s.%ld.%llu.claimed", *path, (long)getpid(),
                                  (unsigned long long)xp__self_start());
    bool ok = rename(from, *claimed) == 0;
    if (ok && !spooled)
        xp__log(XP_LOG_INFO, "Taking over %s, left by process %ld", *path,
                (long)owner);
    bson_free(from);
    if (!ok) {
        bson_free(*path);
        bson_free(*claimed);
    }
    return ok;
}

/* Writes the claimed spool file; kept (renamed back to path) unless it is
 * written. */
static int s_replay_file(xp_backend *b, const char *path, const char *claimed,
                         xp_error_t *err)
{
    size_t len = 0;
    char *data = xp__read_file(claimed, SIZE_MAX, &len);
    bson_t rec;
    int rc = -1;
    if (xp__bson_view_checked(&rec, (const uint8_t *)data, len))
        rc = s_replay(b, &rec, path, err);
    else
        xp__error(err, XP_DOMAIN_BACKEND, XP_ECORRUPT,
                  "spool file %s is damaged", path);
    if (rc == 0)
        unlink(claimed);
    else
        rename(claimed, path); /* kept for the next attempt */
    bson_free(data);
    return rc;
}

int xp__spool_replay(xp_backend *b, size_t *written, xp_error_t *err)
{
    *written = 0;
    char *dir = s_spool_dir(b);
    size_t n = 0;
    char **names = s_list(dir, &n);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        char *path, *claimed;
        xp_error_t one_err;
        s_remove_dead_tmp(dir, names[i]);
        if (s_claim(dir, names[i], &path, &claimed)) {
            if (s_replay_file(b, path, claimed, &one_err) == 0) {
                (*written)++;
            } else {
                if (rc == 0)
                    xp__error(err, one_err.domain, one_err.code,
                              "%s (kept in %s)", one_err.message, path);
                rc = -1;
            }
            bson_free(path);
            bson_free(claimed);
        }
        bson_free(names[i]);
    }
    bson_free(names);
    bson_free(dir);
    return rc;
}
