/* command/process.h — running one program: its own process group, argv
 * as given (no shell), stdout and stderr read through poll into bounded
 * tails, a timeout that ends the whole group. */
#ifndef XP_COMMAND_PROCESS_H
#define XP_COMMAND_PROCESS_H

#include "xp/xp.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest stdout line handed to on_line; longer lines are skipped. */
#define XP_PROC_LINE_MAX (1024 * 1024)

typedef struct {
    char *const *argv; /* argv[0] is searched on PATH when it has no '/' */
    char *const *envp; /* the whole environment of the program */
    const char *cwd;   /* NULL: this process's */
    double timeout;    /* seconds; <= 0: none */
    size_t tail_max;   /* bytes of each stream kept (the last ones) */
    /* Each complete stdout line, without its newline; may be NULL. */
    void (*on_line)(void *ctx, const char *line, size_t len);
    /* At least every 200 ms while the program runs, and once at the end
     * (final true); may be NULL. */
    void (*on_tick)(void *ctx, bool final);
    void *ctx;
} xp_proc_spec;

typedef struct {
    bool exited;     /* exited normally with status */
    int status;      /* exit status when exited */
    int signal;      /* terminating signal when not exited */
    bool timed_out;  /* the timeout ended the group */
    bool lost;       /* reaped by the kernel (SIGCHLD ignored): no status */
    double elapsed;  /* seconds from spawn to reaping */
    char *out, *err; /* tails, NUL-terminated (bson_malloc) */
    size_t out_len, err_len;
    uint64_t out_total, err_total; /* bytes the program wrote */
} xp_proc_result;

/* Runs spec to its end. -1 with err only when the program could not be
 * started (not found, not executable, no such cwd); otherwise 0 and *res
 * filled (clear it with xp__proc_result_clear), whatever the program's
 * status. The program's group is killed when it exits, so no process it
 * started outlives it. */
int xp__proc_run(const xp_proc_spec *spec, xp_proc_result *res,
                 xp_error_t *err);
void xp__proc_result_clear(xp_proc_result *res);
/* "exit status 3", "killed by signal 9 (Killed)", "timed out after 2 s". */
void xp__proc_describe(const xp_proc_result *res, double timeout, char *buf,
                       size_t size);

#endif /* XP_COMMAND_PROCESS_H */
