/* remote/config.h — the options of the xp daemons, one table each (Redis
 * config.c style): from a daemon's table come its usage text, its
 * command-line parsing with bounds, its `key = value` configuration file,
 * its XP_* environment variables and --print-config. Also the process
 * setup both daemons share (signals). */
#ifndef XP_REMOTE_CONFIG_H
#define XP_REMOTE_CONFIG_H

#include "remote/message.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef enum {
    XP_OPTION_STRING, /* const char *, any text */
    XP_OPTION_INT,    /* int within [min, max] */
    XP_OPTION_INT64,  /* int64_t within [min, max] */
    XP_OPTION_SIZE,   /* size_t within [min, max] */
    XP_OPTION_SWITCH, /* bool: a flag without value; true or false in files */
    XP_OPTION_LIST,   /* const char *const *, repeatable; count at count_at */
} xp_option_type;

/* One option: --NAME on the command line, NAME in the file. The field at
 * offset in the daemon's options struct gets, in that order of precedence,
 * the last value on the command line, else the file's, else $env's, else
 * the default. List values add up (file first, then command line). */
typedef struct {
    const char *name;
    xp_option_type type;
    size_t offset;          /* of its field in the options struct */
    size_t count_at;        /* list: offset of its size_t count */
    const char *env;        /* XP_* variable, or NULL */
    const char *dflt;       /* string default, or NULL (the field stays NULL) */
    long long dflt_int;     /* number default */
    int (*dflt_fn)(void);   /* number default known only at run time */
    long long min, max;     /* number bounds */
    const char *dflt_words; /* the default for usage when it is no value */
    const char *arg;        /* the value in usage: ENDPOINT, N, BYTES */
    const char *help;       /* what it does, for usage */
} xp_option;

/* The options both daemons take, with one meaning and the same bounds. */
#define XP_OPTION_MAX_MESSAGE(offset_)                                         \
    {                                                                          \
        .name = "max-message", .type = XP_OPTION_SIZE, .offset = (offset_),    \
        .dflt_int = XP_MAX_MESSAGE_DEFAULT, .min = XP_MAX_MESSAGE_MIN,         \
        .max = XP_MAX_MESSAGE_MAX, .arg = "BYTES",                             \
        .help = "largest accepted message"                                     \
    }
#define XP_OPTION_HEARTBEAT_MS(offset_, help_)                                 \
    {                                                                          \
        .name = "heartbeat-ms", .type = XP_OPTION_INT, .offset = (offset_),    \
        .dflt_int = XP_HEARTBEAT_MS_DEFAULT, .min = XP_HEARTBEAT_MS_MIN,       \
        .max = XP_HEARTBEAT_MS_MAX, .arg = "N", .help = (help_)                \
    }

/* A daemon: its name, the table (ended by {NULL}) and its usage texts. */
typedef struct {
    const char *program;        /* "xp-scheduler": error lines start with it */
    const char *about;          /* paragraph after the usage line */
    const char *config_env;     /* names the file without --config */
    const char *config_example; /* two sample lines for --config's help */
    const xp_option *options;
    /* After loading, before --print-config: one-line error or 0. */
    int (*check)(const void *opts, xp_error_t *err);
} xp_config_spec;

/* Fills the zeroed struct opts from spec's defaults, environment,
 * configuration file (--config FILE, else $config_env) and command line,
 * and sets the log level (--log-level, the machinery's own option with
 * --config, --print-config and --help). True: run the daemon. False:
 * exit with *status: 0 after --help or --print-config printed, 2 after a
 * one-line error on stderr. Either way release opts with
 * xp__config_clear. */
bool xp__config_load(const xp_config_spec *spec, void *opts, int argc,
                     char **argv, int *status);
/* Frees the strings and lists xp__config_load put into opts. */
void xp__config_clear(const xp_config_spec *spec, void *opts);
/* The usage text made from spec (what --help prints). */
void xp__config_usage(const xp_config_spec *spec, FILE *f);
/* The configuration in opts as a file that reads back (what
 * --print-config prints, followed by the log level when one was given). */
void xp__config_print(const xp_config_spec *spec, const void *opts, FILE *f);

/* The file format: calls on_entry for every `key = value` line of path
 * (blank lines and `#` comments skipped, blanks around key and value
 * trimmed, one pair of double quotes around a value removed); a line
 * without '=' and a non-zero on_entry stop it. One-line errors name the
 * file and the line. */
typedef int (*xp_config_entry_fn)(void *user, const char *key,
                                  const char *value, int line, xp_error_t *err);
int xp__config_parse(const char *path, xp_config_entry_fn on_entry, void *user,
                     xp_error_t *err);
/* The lines of path as the option list they stand for ("--key", "value";
 * a switch "--key" when true). keys: the known keys, NULL-terminated;
 * "name?" marks a switch. Caller frees with xp__config_free. */
int xp__config_read(const char *path, const char *const *keys, char ***argv_out,
                    int *argc_out, xp_error_t *err);
void xp__config_free(char **argv, int argc);

/* SIGINT and SIGTERM call on_signal (which must be async-signal-safe),
 * interrupting blocking calls; czmq keeps no handler of its own. */
void xp__config_signals(void (*on_signal)(int));

#endif /* XP_REMOTE_CONFIG_H */
