/* store/spool.h — finished trials kept on this machine when their
 * backend cannot take them, written back on the next open or `xp sync`. */
#ifndef XP_STORE_SPOOL_H
#define XP_STORE_SPOOL_H

#include "store/store.h"

/* Keeps a finished trial that could not be recorded in
 * <b->dir>/spool/<id>.bson (*path_out: caller frees). */
int xp__spool_write(xp_backend *b, const xp_trial_outcome *o, char **path_out,
                    xp_error_t *err);
/* A spool record read back: the outcome to write again, viewing the
 * record's bytes and the points and values it owns
 * (xp__spool_record_clear). */
typedef struct {
    xp_trial_outcome outcome;
    xp_trial_record record; /* outcome.record */
    bson_t doc;             /* outcome.doc (static) */
    xp_metric_chunk *chunks;
    xp_metric_points *points; /* what chunks point into */
    size_t n_chunks;
    xp_persisted_item *persisted;
    xp_value **values; /* what persisted points to */
    size_t n_persisted;
    xp_step_hash *hashes;
    size_t n_hashes;
} xp_spool_record;

/* Decodes a spool record (valid BSON, checked by the caller); every part
 * length-checked, XP_ECORRUPT when one is damaged. out borrows from rec;
 * on success the caller clears it. */
int xp__spool_decode(const bson_t *rec, xp_spool_record *out, xp_error_t *err);
void xp__spool_record_clear(xp_spool_record *r);
/* Writes spooled trials to the backend; *written counts them. */
int xp__spool_replay(xp_backend *b, size_t *written, xp_error_t *err);

#endif /* XP_STORE_SPOOL_H */
