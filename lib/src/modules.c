/* modules.c — which optional modules are linked into this program: none
 * in libxp.so, which loads each on first need (util/module.c); all in
 * the static library the daemons and tests link (XP_MODULES_LINKED). */
#include "util/module.h"

#ifdef XP_MODULES_LINKED
extern const xp_module xp__module_mongodb, xp__module_redis, xp__module_git,
    xp__module_remote;

const xp_module *const xp__modules_linked[] = {
    &xp__module_mongodb, &xp__module_redis, &xp__module_git, &xp__module_remote,
    NULL};
#else
const xp_module *const xp__modules_linked[] = {NULL};
#endif
