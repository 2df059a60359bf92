/* remote/config.h — daemon configuration files. */
#ifndef XP_REMOTE_CONFIG_H
#define XP_REMOTE_CONFIG_H

#include "xp/xp.h"

/* Reads `key = value` lines of path into the option list they stand for
 * ("--key", "value"; a switch "--key" when true). flags: the known keys,
 * NULL-terminated; "name?" marks a switch. Caller frees with
 * xp__config_free. */
int xp__config_read(const char *path, const char *const *flags,
                    char ***argv_out, int *argc_out, xp_error_t *err);
void xp__config_free(char **argv, int argc);
/* Runs a daemon's main_fn over its argument list: argv[0], the options
 * of its configuration file (--config FILE, else $env_var), then its
 * command line without --config, so that flags win over the file. A bad
 * file is one line on stderr and exit status 2. */
int xp__config_main(const char *program, const char *env_var,
                    const char *const *flags, int argc, char **argv,
                    int (*main_fn)(int argc, char **argv));

#endif /* XP_REMOTE_CONFIG_H */
