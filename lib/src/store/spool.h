/* store/spool.h — finished trials kept on this machine when their
 * backend cannot take them, written back on the next open or `xp sync`. */
#ifndef XP_STORE_SPOOL_H
#define XP_STORE_SPOOL_H

#include "store/store.h"

/* Keeps a finished trial that could not be recorded in
 * <b->dir>/spool/<id>.bson (*path_out: caller frees). */
int xp__spool_write(xp_backend *b, int64_t id, const bson_t *doc,
                    const xp_metric_buf *metrics, size_t n_metrics,
                    const xp_persisted_item *persisted, size_t n_persisted,
                    const xp_step_hash *hashes, size_t n_hashes,
                    char **path_out, xp_error_t *err);
/* Writes spooled trials to the backend; *written counts them. */
int xp__spool_replay(xp_backend *b, size_t *written, xp_error_t *err);

#endif /* XP_STORE_SPOOL_H */
