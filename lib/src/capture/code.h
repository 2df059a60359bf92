/* capture/code.h — the source text of step functions, read from their C
 * files at run time, and the build id of the binary that holds them. */
#ifndef XP_CAPTURE_CODE_H
#define XP_CAPTURE_CODE_H

#include <stddef.h>

/* Definition text of function symbol in C source src; caller frees. */
char *xp__code_extract(const char *src, size_t len, const char *symbol);
/* Reads file (also relative to the binary holding fn) once per process and
 * extracts the definition of function fn: by its symbol (xp__code_symbol),
 * else by name; NULL when unavailable. Caller frees result and
 * *found_path. */
char *xp__code_capture(const char *file, const char *name, const void *fn,
                       char **found_path);
/* Name of the function at fn, static ones included, from the symbol table
 * of the object holding it; NULL when unknown (stripped binary). Caller
 * frees. */
char *xp__code_symbol(const void *fn);
/* GNU build id of the main program as hex, "" when it has none. */
const char *xp__build_id(void);
/* GNU build id (hex) of the loaded object holding fn, a shared library's
 * for a function loaded from one; NULL when it has none. Caller frees. */
char *xp__code_build_id_of(const void *fn);

#endif /* XP_CAPTURE_CODE_H */
