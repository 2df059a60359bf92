/* util/module.h — libxp's optional modules (MongoDB, Redis, git, the
 * scheduler client): shared objects loaded with dlopen on first need, or
 * linked in where a program links libxp's static library. */
#ifndef XP_UTIL_MODULE_H
#define XP_UTIL_MODULE_H

#include "xp/xp.h"

#include <link.h>

/* Bumped when an ops table of a module changes shape. */
#define XP_MODULE_ABI 1

/* What a module exports, as the data symbol xp__module_<name>. */
typedef struct {
    const char *name;    /* "mongodb": the file is libxp-mongodb.so */
    const char *version; /* XP_VERSION_STRING it was built with */
    unsigned abi;        /* XP_MODULE_ABI */
    const void *ops;     /* the table its users know the type of */
} xp_module;

/* The modules linked into this program, NULL-terminated (modules.c: none
 * in libxp.so, all in the static library). */
extern const xp_module *const xp__modules_linked[];

/* The ops table of module name: linked in, else loaded once (never
 * unloaded) from $XP_MODULE_DIR, else from the directory of libxp itself.
 * what names the capability in the error ("MongoDB support is not
 * installed: <why>"). Thread-safe. */
const void *xp__module_ops(const char *name, const char *what, xp_error_t *err);
/* dl_iterate_phdr over the objects of the process except those that
 * loading a module brought in (a module, its libraries): what the
 * program itself runs with, whichever modules libxp needed so far. */
int xp__module_iterate_phdr(int (*fn)(struct dl_phdr_info *info, size_t size,
                                      void *data),
                            void *data);

#endif /* XP_UTIL_MODULE_H */
