/* util/sys.h — clocks, host and process identity, files and
 * directories: the operating-system calls libxp needs. */
#ifndef XP_UTIL_SYS_H
#define XP_UTIL_SYS_H

#include "xp/xp.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

int64_t xp__now_ms(void);       /* wall clock, ms since epoch */
double xp__monotonic(void);     /* seconds, monotonic */
const char *xp__hostname(void); /* process-static */
/* Start time of process pid in clock ticks since boot, 0 if it does not
 * exist. Together with pid it identifies a process across pid reuse. */
uint64_t xp__process_start(pid_t pid);
/* xp__process_start(getpid()), cached. */
uint64_t xp__self_start(void);
/* mkdir -p; 0 or -1 with err. */
int xp__mkdir_p(const char *path, xp_error_t *err);
int xp__cpu_count(void);
/* Whole file, NUL-terminated; NULL when unreadable or over max bytes.
 * Caller frees (bson_free). */
char *xp__read_file(const char *path, size_t max, size_t *len);

#endif /* XP_UTIL_SYS_H */
