/* capture/env.h — the environment of this process (platform, cpu,
 * runtime, libraries, git, gpu), captured once per process. */
#ifndef XP_CAPTURE_ENV_H
#define XP_CAPTURE_ENV_H

#include <bson/bson.h>

/* The categories of the environment document, in order, NULL-terminated:
 * platform, cpu, runtime, libraries, git, gpu. */
extern const char *const xp__environment_categories[];

void xp__environment_capture(bson_t *out, const char *program_compiler);
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
