/* redis_module.c — the Redis backend (redis.c) as a module: the entry of
 * libxp-redis.so, which store.c loads for a redis://, rediss:// or
 * unix:// backend (or finds linked in). */
#include "store/driver.h"
#include "util/module.h"

static const xp_backend_module s_ops = {xp__backend_redis_open,
                                        xp__backend_redis_experiments};

const xp_module xp__module_redis = {"redis", XP_VERSION_STRING, XP_MODULE_ABI,
                                    &s_ops};
