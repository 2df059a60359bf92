/* mongo_module.c — the MongoDB backend (mongo.c) as a module: the entry
 * of libxp-mongodb.so, which store.c loads for a mongodb:// backend (or
 * finds linked in). */
#include "store/driver.h"
#include "util/module.h"

static const xp_backend_module s_ops = {xp__backend_mongo_open,
                                        xp__backend_mongo_experiments};

const xp_module xp__module_mongodb = {"mongodb", XP_VERSION_STRING,
                                      XP_MODULE_ABI, &s_ops};
