/* command/file.h — the experiment file (YAML, docs/commands.md): its
 * parser into a plain definition (parameters with defaults and types,
 * command and C-function steps, the result), and the loader that also
 * reads the steps' code files. */
#ifndef XP_COMMAND_FILE_H
#define XP_COMMAND_FILE_H

#include "xp/xp.h"

#include "command/command.h"

#include <stdbool.h>
#include <stddef.h>

/* Largest experiment file read; a code file kept as text in the code
 * context (a larger or binary one enters by its hash). */
#define XP_FILE_MAX (1024 * 1024)
#define XP_CODE_TEXT_MAX (1024 * 1024)

typedef enum {
    XP_PARAM_ANY = 0,
    XP_PARAM_INT,
    XP_PARAM_FLOAT,
    XP_PARAM_BOOL,
    XP_PARAM_STRING,
} xp_param_type;

typedef struct {
    char *name;
    xp_value *def; /* default, or NULL: required */
    xp_param_type type;
} xp_file_param;

typedef struct {
    char *name;
    int line;            /* 1-based, in the file */
    xp_command *command; /* a command step, or NULL: */
    char *library;       /* a C function step: dlopen'd library, */
    char *symbol;        /* and the xp_step_fn's symbol in it */
    char **inputs;       /* input names in order (a command's: its own) */
    size_t n_inputs;
    bool persist;
    bool pure;       /* memoised (xp_pure) */
    char **memo_env; /* environment variables in its memo key */
    size_t n_memo_env;
    char *source; /* code context text (loader only), or NULL */
} xp_file_step;

typedef struct {
    char *id;
    char *path; /* the file as given */
    char *dir;  /* its directory, absolute */
    xp_file_param *params;
    size_t n_params;
    xp_file_step *steps;
    size_t n_steps;
    char *result;
} xp_file_def;

/* Parses len bytes of YAML (untrusted) into *out; path names the file in
 * messages and dir resolves relative paths. On error out is cleared and
 * err says "FILE:LINE: what". */
int xp__file_parse(xp_file_def *out, const char *text, size_t len,
                   const char *path, const char *dir, xp_error_t *err);
/* Reads and parses path, then each command step's code files into its
 * source text. */
int xp__file_load(xp_file_def *out, const char *path, xp_error_t *err);
void xp__file_def_clear(xp_file_def *def);
/* "int", "float", ...; and the check of a value against a type (ints
 * become doubles for float): 0, or -1 with err. */
const char *xp__param_type_name(xp_param_type t);
int xp__param_coerce(xp_param_type t, xp_value *v, xp_error_t *err);

#endif /* XP_COMMAND_FILE_H */
