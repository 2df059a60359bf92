/* script.h — script mode: the arguments of an experiment
 * program (exposed for tests). */
#ifndef XP_SCRIPT_H
#define XP_SCRIPT_H

#include "xp/xp.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    char **names; /* key=value pairs in order */
    char **values;
    size_t n;
    bool has_seed;
    uint64_t seed;
    const char *backend;
    const char *log_level;
    const char *scheduler; /* run on an xp-scheduler instead */
    bool help;
} xp_script_args;

int xp__script_parse(xp_script_args *a, int argc, char **argv, xp_error_t *err);
void xp__script_args_free(xp_script_args *a);

#endif /* XP_SCRIPT_H */
