/* command/command.h — a command step as the experiment file defines it:
 * argv or shell templates, working directory, environment, timeout, code
 * files, produced files and how the output value is read. The loader
 * (file.c) fills it, the runner (run.c) executes it. */
#ifndef XP_COMMAND_COMMAND_H
#define XP_COMMAND_COMMAND_H

#include "xp/xp.h"

#include <stdbool.h>
#include <stddef.h>

/* Bounds on what one file may ask for. */
#define XP_COMMAND_ARGS_MAX 4096
#define XP_COMMAND_FILES_MAX 256
#define XP_COMMAND_TIMEOUT_MAX (30.0 * 24 * 3600)
/* Each stream's tail kept in the step's log. */
#define XP_COMMAND_TAIL_MAX (64 * 1024)
/* A produced file, a JSON output file, a metrics line. */
#define XP_COMMAND_FILE_MAX (64 * 1024 * 1024)

typedef enum {
    XP_OUTPUT_STDOUT_JSON = 0, /* the last JSON line of stdout (null: none) */
    XP_OUTPUT_FILE,            /* JSON read from a file in $XP_OUTPUT_DIR */
    XP_OUTPUT_EXIT_STATUS,     /* the exit status, any status succeeding */
    XP_OUTPUT_NONE,            /* null */
} xp_output_mode;

typedef struct xp_command {
    char *step;  /* the step's name */
    char **argv; /* templates; for a shell step {"/bin/sh", "-c", script} */
    size_t argc;
    bool shell; /* argv[2] is a shell script: placeholders are quoted */
    char *cwd;  /* absolute directory the program runs in */
    char **env_names, **env_values; /* values are templates */
    size_t n_env;
    double timeout; /* seconds, 0: none */
    xp_output_mode output;
    char *output_file; /* XP_OUTPUT_FILE: its name in $XP_OUTPUT_DIR */
    char **produces;   /* names of files left in $XP_OUTPUT_DIR */
    size_t n_produces;
    char **code; /* code files as written in the file */
    size_t n_code;
    bool stdout_metrics; /* `name: value` stdout lines are metric points */
    /* The step's inputs, in the node's input order: name and whether it
     * is a parameter (else an upstream step). */
    char **inputs;
    bool *input_is_param;
    bool *input_has_files; /* an upstream step that produces files */
    size_t n_inputs;
} xp_command;

/* NULL-safe; sets *c to NULL. */
void xp__command_free(xp_command **c);
/* Deep copy; caller owns result. */
xp_command *xp__command_dup(const xp_command *c);

#endif /* XP_COMMAND_COMMAND_H */
