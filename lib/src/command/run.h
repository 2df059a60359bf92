/* command/run.h — executing one command step of a trial: its directory,
 * environment and arguments from the inputs, the program through
 * process.h, metrics from $XP_METRICS_FILE and stdout, the output value,
 * produced files, and the step's log. */
#ifndef XP_COMMAND_RUN_H
#define XP_COMMAND_RUN_H

#include "xp/xp.h"

#include "command/command.h"

/* Key under which a step's log is kept with the trial's persisted values:
 * a leading '-' cannot start a step name, so it never meets one. */
#define XP_COMMAND_LOG_PREFIX "-log-"

/* Runs c as step st (trial id, seed, metrics through xp_save_metric) on
 * inputs (in c->inputs order), writing out. *log (caller owns; may be
 * set on failure too) gets the step's log document {argv, status,
 * signal?, timed_out, elapsed, stdout, stderr, stdout_bytes,
 * stderr_bytes}. 0, or -1 with the failure in failure. */
int xp__command_run(const xp_command *c, xp_step *st,
                    const xp_value *const *inputs, xp_value *out,
                    xp_value **log, char *failure, size_t failure_size);

#endif /* XP_COMMAND_RUN_H */
