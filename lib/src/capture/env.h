/* capture/env.h — the environment of this process (platform, cpu,
 * runtime, libraries, git, gpu), captured once per process. */
#ifndef XP_CAPTURE_ENV_H
#define XP_CAPTURE_ENV_H

#include <bson/bson.h>

/* The categories of the environment document, in order, NULL-terminated:
 * platform, cpu, runtime, libraries, git, gpu. */
extern const char *const xp__environment_categories[];

void xp__environment_capture(bson_t *out, const char *program_compiler);
/* Reads what xp__environment_local needs from the environment variables
 * (the cache directory: $XDG_CACHE_HOME/xp, else ~/.cache/xp): call it on
 * the opening thread before starting a thread on xp__environment_local. */
void xp__environment_prepare(void);
/* The packages array of a dpkg-list cache file data[0..len) (untrusted),
 * if it is one for key: 0 and *packages initialised (caller destroys),
 * else -1. */
int xp__environment_dpkg_cache_decode(const uint8_t *data, size_t len,
                                      const char *key, bson_t *packages);
/* The categories read without environment variables (platform, cpu,
 * runtime, libraries into out; gpu into gpu, empty when none): safe on
 * a thread of libxp's own while the program may call setenv. */
void xp__environment_local(bson_t *out, bson_t *gpu,
                           const char *program_compiler);
/* The cpu category read under root ("": this machine; tests give a
 * directory holding proc/cpuinfo and sys/devices/system/cpu/cpu0/). */
void xp__environment_cpu(bson_t *out, const char *root);
/* out = local's categories, git, then gpu when not empty. */
void xp__environment_assemble(bson_t *out, const bson_t *local,
                              const bson_t *git, const bson_t *gpu);

#endif /* XP_CAPTURE_ENV_H */
