/* spool.c — finished trials whose final record could not be written (the
 * database was unreachable) are kept as one BSON file each under
 * <cache>/spool/ and written on the next open or by xp_experiment_sync,
 * so no finished trial is lost. */
#include "store/spool.h"

#include "util/bson_util.h"
#include "util/error.h"
#include "util/sys.h"
#include "value.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *s_spool_dir(const xp_backend *b)
{
    return bson_strdup_printf("%s/spool", b->dir);
}

int xp__spool_write(xp_backend *b, int64_t id, const bson_t *doc,
                    const xp_metric_buf *metrics, size_t n_metrics,
                    const xp_persisted_item *persisted, size_t n_persisted,
                    const xp_step_hash *hashes, size_t n_hashes,
                    char **path_out, xp_error_t *err)
{
    bson_t rec = BSON_INITIALIZER, arr, item;
    char key[16];
    const char *k;
    BSON_APPEND_INT64(&rec, "trial_id", id);
    BSON_APPEND_DOCUMENT(&rec, "doc", doc);
    BSON_APPEND_ARRAY_BEGIN(&rec, "metrics", &arr);
    for (size_t i = 0; i < n_metrics; i++) {
        const xp_metric_buf *m = &metrics[i];
        bson_uint32_to_string((uint32_t)i, &k, key, sizeof key);
        BSON_APPEND_DOCUMENT_BEGIN(&arr, k, &item);
        BSON_APPEND_UTF8(&item, "name", m->name);
        BSON_APPEND_INT64(&item, "chunk", m->next_chunk);
        bson_append_binary(&item, "epochs", -1, BSON_SUBTYPE_BINARY,
                           (const uint8_t *)m->epochs,
                           (uint32_t)(m->n * sizeof *m->epochs));
        bson_append_binary(&item, "values", -1, BSON_SUBTYPE_BINARY,
                           (const uint8_t *)m->values,
                           (uint32_t)(m->n * sizeof *m->values));
        bson_append_document_end(&arr, &item);
    }
    bson_append_array_end(&rec, &arr);
    BSON_APPEND_ARRAY_BEGIN(&rec, "persisted", &arr);
    for (size_t i = 0; i < n_persisted; i++) {
        bson_uint32_to_string((uint32_t)i, &k, key, sizeof key);
        BSON_APPEND_DOCUMENT_BEGIN(&arr, k, &item);
        BSON_APPEND_UTF8(&item, "step", persisted[i].step);
        xp__value_append_bson(&item, "value", persisted[i].value);
        bson_append_document_end(&arr, &item);
    }
    bson_append_array_end(&rec, &arr);
    BSON_APPEND_ARRAY_BEGIN(&rec, "hashes", &arr);
    for (size_t i = 0; i < n_hashes; i++) {
        bson_uint32_to_string((uint32_t)i, &k, key, sizeof key);
        BSON_APPEND_DOCUMENT_BEGIN(&arr, k, &item);
        BSON_APPEND_UTF8(&item, "step", hashes[i].step);
        bson_append_binary(&item, "input", -1, BSON_SUBTYPE_BINARY,
                           hashes[i].input, 16);
        bson_append_binary(&item, "output", -1, BSON_SUBTYPE_BINARY,
                           hashes[i].output, 16);
        bson_append_document_end(&arr, &item);
    }
    bson_append_array_end(&rec, &arr);

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

/* 0 when trial id of the backend is absent or is the trial of record doc
 * (same start time and seed): a backend that lost the trial (a Redis
 * restarted without persistence) may have given its id to another trial
 * since, which a replay must not overwrite. */
static int s_replay_target(xp_backend *b, int64_t id, const bson_t *doc,
                           xp_error_t *err)
{
    bson_t stored;
    xp_error_t e;
    if (b->ops->trial_get(b, id, &stored, &e) != 0) {
        if (e.code == XP_ENOTFOUND)
            return 0;
        if (err)
            *err = e;
        return -1;
    }
    bson_iter_t it;
    int64_t started[2] = {0, 0}, seed[2] = {0, 0};
    const bson_t *docs[2] = {doc, &stored};
    for (int i = 0; i < 2; i++) {
        if (bson_iter_init_find(&it, docs[i], "started") &&
            BSON_ITER_HOLDS_DATE_TIME(&it))
            started[i] = bson_iter_date_time(&it);
        xp__bson_int64(docs[i], "seed", &seed[i]);
    }
    bson_destroy(&stored);
    if (started[0] == started[1] && seed[0] == seed[1])
        return 0;
    return xp__error(err, XP_DOMAIN_BACKEND, XP_EEXIST,
                     "trial %lld of %s holds another trial (started %lld, "
                     "seed %lld; spooled: started %lld, seed %lld): not "
                     "overwritten",
                     (long long)id, b->description, (long long)started[1],
                     (long long)seed[1], (long long)started[0],
                     (long long)seed[0]);
}

/* Replays one spool record; 0 when written. */
static int s_replay(xp_backend *b, const bson_t *rec, xp_error_t *err)
{
    bson_iter_t it, arr, f;
    int64_t id = 0;
    bson_t doc;
    uint32_t len;
    const uint8_t *data;
    if (!bson_iter_init_find(&it, rec, "trial_id") ||
        !BSON_ITER_HOLDS_INT64(&it))
        return xp__error(err, XP_DOMAIN_BACKEND, XP_ECORRUPT,
                         "spool record without trial id");
    id = bson_iter_int64(&it);
    if (!bson_iter_init_find(&it, rec, "doc") || !BSON_ITER_HOLDS_DOCUMENT(&it))
        return xp__error(err, XP_DOMAIN_BACKEND, XP_ECORRUPT,
                         "spool record of trial %lld has no document",
                         (long long)id);
    bson_iter_document(&it, &len, &data);
    if (!bson_init_static(&doc, data, len))
        return xp__error(err, XP_DOMAIN_BACKEND, XP_ECORRUPT,
                         "spool record of trial %lld is damaged",
                         (long long)id);
    if (s_replay_target(b, id, &doc, err) != 0)
        return -1;

    size_t n_metrics = 0, n_persisted = 0, n_hashes = 0;
    xp_metric_buf *metrics = NULL;
    xp_persisted_item *persisted = NULL;
    xp_value **values = NULL;
    xp_step_hash *hashes = NULL;
    if (bson_iter_init_find(&it, rec, "metrics") &&
        bson_iter_recurse(&it, &arr)) {
        while (bson_iter_next(&arr)) {
            metrics = bson_realloc(metrics, (n_metrics + 1) * sizeof *metrics);
            xp_metric_buf *m = &metrics[n_metrics++];
            memset(m, 0, sizeof *m);
            if (!bson_iter_recurse(&arr, &f))
                continue;
            while (bson_iter_next(&f)) {
                const char *key = bson_iter_key(&f);
                if (strcmp(key, "name") == 0 && BSON_ITER_HOLDS_UTF8(&f)) {
                    m->name = bson_strdup(bson_iter_utf8(&f, NULL));
                } else if (strcmp(key, "chunk") == 0 &&
                           BSON_ITER_HOLDS_INT64(&f)) {
                    m->next_chunk = bson_iter_int64(&f);
                } else if (BSON_ITER_HOLDS_BINARY(&f)) {
                    bson_iter_binary(&f, NULL, &len, &data);
                    size_t n = len / 8;
                    if (strcmp(key, "epochs") == 0) {
                        m->epochs = bson_malloc(len + 8);
                        memcpy(m->epochs, data, len);
                        m->n = n;
                    } else if (strcmp(key, "values") == 0) {
                        m->values = bson_malloc(len + 8);
                        memcpy(m->values, data, len);
                    }
                }
            }
            if (!m->name || !m->epochs || !m->values)
                m->n = 0;
        }
    }
    if (bson_iter_init_find(&it, rec, "persisted") &&
        bson_iter_recurse(&it, &arr)) {
        while (bson_iter_next(&arr)) {
            persisted =
                bson_realloc(persisted, (n_persisted + 1) * sizeof *persisted);
            values = bson_realloc(values, (n_persisted + 1) * sizeof *values);
            xp_value *v = xp_value_new();
            const char *step = NULL;
            if (bson_iter_recurse(&arr, &f)) {
                while (bson_iter_next(&f)) {
                    if (strcmp(bson_iter_key(&f), "step") == 0 &&
                        BSON_ITER_HOLDS_UTF8(&f))
                        step = bson_iter_utf8(&f, NULL);
                    else if (strcmp(bson_iter_key(&f), "value") == 0)
                        xp__value_from_iter(v, &f, NULL);
                }
            }
            if (!step) {
                xp_value_destroy(&v);
                continue;
            }
            values[n_persisted] = v;
            persisted[n_persisted].step = step;
            persisted[n_persisted].value = v;
            n_persisted++;
        }
    }
    if (bson_iter_init_find(&it, rec, "hashes") &&
        bson_iter_recurse(&it, &arr)) {
        while (bson_iter_next(&arr)) {
            xp_step_hash h = {0};
            int have = 0;
            if (bson_iter_recurse(&arr, &f)) {
                while (bson_iter_next(&f)) {
                    const char *key = bson_iter_key(&f);
                    if (strcmp(key, "step") == 0 && BSON_ITER_HOLDS_UTF8(&f)) {
                        h.step = bson_iter_utf8(&f, NULL);
                        have |= 1;
                    } else if (BSON_ITER_HOLDS_BINARY(&f)) {
                        bson_iter_binary(&f, NULL, &len, &data);
                        if (len == 16 && strcmp(key, "input") == 0) {
                            memcpy(h.input, data, 16);
                            have |= 2;
                        } else if (len == 16 && strcmp(key, "output") == 0) {
                            memcpy(h.output, data, 16);
                            have |= 4;
                        }
                    }
                }
            }
            if (have != 7)
                continue;
            hashes = bson_realloc(hashes, (n_hashes + 1) * sizeof *hashes);
            hashes[n_hashes++] = h;
        }
    }
    int rc = b->ops->trial_finish(b, id, &doc, metrics, n_metrics, persisted,
                                  n_persisted, hashes, n_hashes, err);
    for (size_t i = 0; i < n_metrics; i++) {
        bson_free(metrics[i].name);
        bson_free(metrics[i].epochs);
        bson_free(metrics[i].values);
    }
    bson_free(metrics);
    for (size_t i = 0; i < n_persisted; i++)
        xp_value_destroy(&values[i]);
    bson_free(values);
    bson_free(persisted);
    bson_free(hashes);
    return rc;
}

int xp__spool_replay(xp_backend *b, size_t *written, xp_error_t *err)
{
    *written = 0;
    char *dir = s_spool_dir(b);
    DIR *d = opendir(dir);
    if (!d) {
        bson_free(dir);
        return 0; /* nothing spooled */
    }
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t nlen = strlen(e->d_name);
        if (nlen < 6 || strcmp(e->d_name + nlen - 5, ".bson") != 0)
            continue;
        char *path = bson_strdup_printf("%s/%s", dir, e->d_name);
        /* Claim the file, so a concurrent open does not write it too. */
        char *claimed =
            bson_strdup_printf("%s.%ld.claimed", path, (long)getpid());
        if (rename(path, claimed) != 0) {
            bson_free(path);
            bson_free(claimed);
            continue;
        }
        size_t len = 0;
        char *data = xp__read_file(claimed, SIZE_MAX, &len);
        bson_t rec;
        xp_error_t e2;
        int one = -1;
        if (data && bson_init_static(&rec, (const uint8_t *)data, len) &&
            bson_validate(&rec, BSON_VALIDATE_NONE, NULL))
            one = s_replay(b, &rec, &e2);
        else
            xp__error(&e2, XP_DOMAIN_BACKEND, XP_ECORRUPT,
                      "spool file %s is damaged", path);
        if (one == 0) {
            unlink(claimed);
            (*written)++;
        } else {
            rename(claimed, path); /* keep it for the next attempt */
            if (rc == 0 && err)
                xp__error(err, e2.domain, e2.code, "%s (kept in %s)",
                          e2.message, path);
            rc = -1;
        }
        bson_free(data);
        bson_free(path);
        bson_free(claimed);
    }
    closedir(d);
    bson_free(dir);
    return rc;
}
