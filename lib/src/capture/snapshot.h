/* capture/snapshot.h — the environment of this process, captured once
 * (partly on a background thread started when an experiment is opened for
 * writing) and shared by every trial of the process. */
#ifndef XP_CAPTURE_SNAPSHOT_H
#define XP_CAPTURE_SNAPSHOT_H

#include <bson/bson.h>

/* Environment document of this process and its hash (captured once;
 * process-owned). */
const bson_t *xp__environment(const char **hash);
/* Starts capturing the environment on a background thread, once. */
void xp__environment_prefetch(void);

#endif /* XP_CAPTURE_SNAPSHOT_H */
