/* config.c — the options of the xp daemons (xp-scheduler, xp-worker),
 * each described once in a table: usage text, command-line parsing with
 * bounds, the `key = value` configuration file, XP_* variables and
 * --print-config all come from it. Layers, later ones winning: defaults,
 * environment, file, command line. */
#include "remote/config.h"

#include "util/error.h"

#include <bson/bson.h>
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define S_HELP_COLUMN 22 /* where the help of an option starts */
#define S_WIDTH 78

/* ------------------------------------------------------------ the file */

static char *s_trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* Splits one line into key and value; false when it has no '='. */
static bool s_split(char *line, char **key, char **value)
{
    char *eq = strchr(line, '=');
    if (!eq)
        return false;
    *eq = '\0';
    *key = s_trim(line);
    *value = s_trim(eq + 1);
    size_t n = strlen(*value);
    if (n >= 2 && (*value)[0] == '"' && (*value)[n - 1] == '"') {
        (*value)[n - 1] = '\0';
        (*value)++;
    }
    return true;
}

int xp__config_parse(const char *path, xp_config_entry_fn on_entry, void *user,
                     xp_error_t *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return xp__error(err, XP_DOMAIN_SYSTEM, XP_EIO, "cannot read %s: %s",
                         path, strerror(errno));
    char *line = NULL, *key, *value;
    size_t cap = 0;
    int lineno = 0, rc = 0;
    while (rc == 0 && getline(&line, &cap, f) > 0) {
        lineno++;
        char *s = s_trim(line);
        if (!*s || *s == '#')
            continue;
        if (!s_split(s, &key, &value))
            rc = xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                           "%s:%d: expected 'key = value'", path, lineno);
        else
            rc = on_entry(user, key, value, lineno, err);
    }
    free(line);
    fclose(f);
    return rc == 0 ? 0 : -1;
}

static bool s_bool(const char *text, bool *out)
{
    static const char *const words[][2] = {
        {"true", "false"}, {"yes", "no"}, {"1", "0"}};
    for (size_t i = 0; i < sizeof words / sizeof *words; i++)
        for (int b = 0; b < 2; b++)
            if (strcmp(text, words[i][b]) == 0) {
                *out = b == 0;
                return true;
            }
    return false;
}

static int s_unknown_key(const char *path, int line, const char *key,
                         xp_error_t *err)
{
    return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                     "%s:%d: unknown key '%.64s'", path, line, key);
}

static int s_not_bool(const char *where, xp_error_t *err)
{
    return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL, "%s is true or false",
                     where);
}

/* ------------------------------------------- the file as an option list */

typedef struct {
    const char *path;
    const char *const *keys;
    char **argv;
    int argc;
} s_read;

static void s_push(s_read *r, const char *s)
{
    r->argv = bson_realloc(r->argv, (size_t)(r->argc + 2) * sizeof *r->argv);
    r->argv[r->argc++] = bson_strdup(s);
    r->argv[r->argc] = NULL;
}

static int s_read_entry(void *user, const char *key, const char *value,
                        int line, xp_error_t *err)
{
    s_read *r = user;
    for (const char *const *k = r->keys; *k; k++) {
        size_t n = strlen(*k);
        bool is_switch = (*k)[n - 1] == '?';
        if (strlen(key) != n - is_switch || strncmp(key, *k, n - is_switch))
            continue;
        char flag[96], where[160];
        snprintf(flag, sizeof flag, "--%s", key);
        bool on = true;
        if (is_switch && !s_bool(value, &on)) {
            snprintf(where, sizeof where, "%s:%d: '%s'", r->path, line, key);
            return s_not_bool(where, err);
        }
        if (on)
            s_push(r, flag);
        if (!is_switch)
            s_push(r, value);
        return 0;
    }
    return s_unknown_key(r->path, line, key, err);
}

int xp__config_read(const char *path, const char *const *keys, char ***argv_out,
                    int *argc_out, xp_error_t *err)
{
    s_read r = {path, keys, NULL, 0};
    *argv_out = NULL;
    *argc_out = 0;
    if (xp__config_parse(path, s_read_entry, &r, err) != 0) {
        xp__config_free(r.argv, r.argc);
        return -1;
    }
    *argv_out = r.argv;
    *argc_out = r.argc;
    return 0;
}

void xp__config_free(char **argv, int argc)
{
    for (int i = 0; i < argc; i++)
        bson_free(argv[i]);
    bson_free(argv);
}

/* ------------------------------------------------------- table fields */

static void *s_field(void *opts, size_t offset)
{
    return (char *)opts + offset;
}

static const void *s_cfield(const void *opts, size_t offset)
{
    return (const char *)opts + offset;
}

/* Lists are const char *const * in the options structs: copied, never
 * accessed through another pointer type. */
static char **s_list_get(const void *opts, const xp_option *o, size_t *n)
{
    char **list;
    memcpy(&list, s_cfield(opts, o->offset), sizeof list);
    memcpy(n, s_cfield(opts, o->count_at), sizeof *n);
    return list;
}

static void s_list_put(void *opts, const xp_option *o, char **list, size_t n)
{
    memcpy(s_field(opts, o->offset), &list, sizeof list);
    memcpy(s_field(opts, o->count_at), &n, sizeof n);
}

static long long s_number_get(const void *opts, const xp_option *o)
{
    const void *p = s_cfield(opts, o->offset);
    switch (o->type) {
    case XP_OPTION_INT: return *(const int *)p;
    case XP_OPTION_INT64: return *(const int64_t *)p;
    case XP_OPTION_SIZE: return (long long)*(const size_t *)p;
    default: return 0;
    }
}

static void s_number_put(void *opts, const xp_option *o, long long v)
{
    void *p = s_field(opts, o->offset);
    switch (o->type) {
    case XP_OPTION_INT: *(int *)p = (int)v; break;
    case XP_OPTION_INT64: *(int64_t *)p = v; break;
    case XP_OPTION_SIZE: *(size_t *)p = (size_t)v; break;
    default: break;
    }
}

static void s_string_put(void *opts, const xp_option *o, const char *v)
{
    char *old;
    memcpy(&old, s_field(opts, o->offset), sizeof old);
    bson_free(old);
    char *copy = v ? bson_strdup(v) : NULL;
    memcpy(s_field(opts, o->offset), &copy, sizeof copy);
}

static bool s_is_number(xp_option_type t)
{
    return t == XP_OPTION_INT || t == XP_OPTION_INT64 || t == XP_OPTION_SIZE;
}

/* Sets option o from text (NULL: a switch given as a flag). where names
 * the value's origin in errors ("--slots", "XP_WORKER_SLOTS",
 * "w.conf:3: 'slots'"). */
static int s_set(void *opts, const xp_option *o, const char *text,
                 const char *where, xp_error_t *err)
{
    if (s_is_number(o->type)) {
        char *end = NULL;
        errno = 0;
        long long n = *text ? strtoll(text, &end, 10) : 0;
        if (!*text || *end || errno || n < o->min || n > o->max)
            return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                             "%s needs an integer from %lld to %lld", where,
                             o->min, o->max);
        s_number_put(opts, o, n);
    } else if (o->type == XP_OPTION_SWITCH) {
        bool on = true;
        if (text && !s_bool(text, &on))
            return s_not_bool(where, err);
        *(bool *)s_field(opts, o->offset) = on;
    } else if (o->type == XP_OPTION_LIST) {
        size_t n;
        char **list = s_list_get(opts, o, &n);
        list = bson_realloc(list, (n + 2) * sizeof *list);
        list[n++] = bson_strdup(text);
        list[n] = NULL;
        s_list_put(opts, o, list, n);
    } else {
        s_string_put(opts, o, text);
    }
    return 0;
}

static void s_defaults(const xp_config_spec *spec, void *opts)
{
    for (const xp_option *o = spec->options; o->name; o++) {
        if (s_is_number(o->type))
            s_number_put(opts, o, o->dflt_fn ? o->dflt_fn() : o->dflt_int);
        else if (o->type == XP_OPTION_SWITCH)
            *(bool *)s_field(opts, o->offset) = o->dflt_int != 0;
        else if (o->type == XP_OPTION_STRING && o->dflt)
            s_string_put(opts, o, o->dflt);
    }
}

void xp__config_clear(const xp_config_spec *spec, void *opts)
{
    for (const xp_option *o = spec->options; o->name; o++) {
        if (o->type == XP_OPTION_STRING) {
            s_string_put(opts, o, NULL);
        } else if (o->type == XP_OPTION_LIST) {
            size_t n;
            char **list = s_list_get(opts, o, &n);
            for (size_t i = 0; i < n; i++)
                bson_free(list[i]);
            bson_free(list);
            s_list_put(opts, o, NULL, 0);
        }
    }
}

/* ------------------------------------------------------------- loading */

/* The machinery's own options, beside every table's. */
typedef enum {
    S_OWN_NONE,
    S_OWN_HELP,
    S_OWN_CONFIG,
    S_OWN_PRINT,
    S_OWN_LOG_LEVEL
} s_own;

static s_own s_own_flag(const char *arg)
{
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
        return S_OWN_HELP;
    if (strcmp(arg, "--config") == 0)
        return S_OWN_CONFIG;
    if (strcmp(arg, "--print-config") == 0)
        return S_OWN_PRINT;
    if (strcmp(arg, "--log-level") == 0)
        return S_OWN_LOG_LEVEL;
    return S_OWN_NONE;
}

static const xp_option *s_find(const xp_config_spec *spec, const char *name)
{
    for (const xp_option *o = spec->options; o->name; o++)
        if (strcmp(o->name, name) == 0)
            return o;
    return NULL;
}

/* State of one xp__config_load. */
typedef struct {
    const xp_config_spec *spec;
    void *opts;
    const char *path; /* the configuration file, NULL: none */
    bool print;
    char *log_level; /* as given, NULL: not given */
} s_load;

static int s_set_log_level(s_load *l, const char *text, xp_error_t *err)
{
    xp_log_level level;
    if (xp_log_level_parse(text, &level, err) != 0)
        return -1;
    bson_free(l->log_level);
    l->log_level = bson_strdup(text);
    return 0;
}

static int s_file_entry(void *user, const char *key, const char *value,
                        int line, xp_error_t *err)
{
    s_load *l = user;
    if (strcmp(key, "log-level") == 0)
        return s_set_log_level(l, value, err);
    const xp_option *o = s_find(l->spec, key);
    if (!o)
        return s_unknown_key(l->path, line, key, err);
    char where[160];
    snprintf(where, sizeof where, "%s:%d: '%s'", l->path, line, key);
    return s_set(l->opts, o, value, where, err);
}

static int s_environment(s_load *l, xp_error_t *err)
{
    for (const xp_option *o = l->spec->options; o->name; o++) {
        const char *v = o->env ? getenv(o->env) : NULL;
        if (v && *v && s_set(l->opts, o, v, o->env, err) != 0)
            return -1;
    }
    return 0;
}

static int s_incomplete(const char *arg, xp_error_t *err)
{
    return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                     "unknown or incomplete option '%s' (see --help)", arg);
}

/* First look at the command line: its shape (every option known, every
 * value present), the file it names, --help and --print-config. */
static int s_scan(s_load *l, int argc, char **argv, bool *help, xp_error_t *err)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        s_own own = s_own_flag(a);
        const xp_option *o = own == S_OWN_NONE && strncmp(a, "--", 2) == 0
                                 ? s_find(l->spec, a + 2)
                                 : NULL;
        if (own == S_OWN_HELP) {
            *help = true;
            return 0;
        }
        if (own == S_OWN_NONE && !o)
            return s_incomplete(a, err);
        bool takes_value = own == S_OWN_CONFIG || own == S_OWN_LOG_LEVEL ||
                           (o && o->type != XP_OPTION_SWITCH);
        if (takes_value && i + 1 >= argc)
            return s_incomplete(a, err);
        if (own == S_OWN_CONFIG)
            l->path = argv[i + 1];
        l->print |= own == S_OWN_PRINT;
        i += takes_value;
    }
    return 0;
}

/* The command line over everything else, in its order. */
static int s_command_line(s_load *l, int argc, char **argv, xp_error_t *err)
{
    for (int i = 1; i < argc; i++) {
        s_own own = s_own_flag(argv[i]);
        if (own == S_OWN_PRINT)
            continue;
        if (own == S_OWN_CONFIG) {
            i++;
            continue;
        }
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (own == S_OWN_LOG_LEVEL) {
            if (s_set_log_level(l, v, err) != 0)
                return -1;
            i++;
            continue;
        }
        const xp_option *o = s_find(l->spec, argv[i] + 2);
        bool is_switch = o->type == XP_OPTION_SWITCH;
        if (s_set(l->opts, o, is_switch ? NULL : v, argv[i], err) != 0)
            return -1;
        i += !is_switch;
    }
    return 0;
}

bool xp__config_load(const xp_config_spec *spec, void *opts, int argc,
                     char **argv, int *status)
{
    s_load l = {spec, opts, spec->config_env ? getenv(spec->config_env) : NULL,
                false, NULL};
    xp_error_t err;
    bool help = false, run = false;
    *status = 2;
    s_defaults(spec, opts);
    if (s_scan(&l, argc, argv, &help, &err) != 0)
        goto failed;
    if (help) {
        xp__config_usage(spec, stdout);
        *status = 0;
        goto cleanup;
    }
    if (s_environment(&l, &err) != 0 ||
        (l.path && *l.path &&
         xp__config_parse(l.path, s_file_entry, &l, &err) != 0) ||
        s_command_line(&l, argc, argv, &err) != 0 ||
        (spec->check && spec->check(opts, &err) != 0))
        goto failed;
    if (l.log_level) {
        xp_log_level level;
        xp_log_level_parse(l.log_level, &level, NULL);
        xp_log_set_level(level);
    }
    if (l.print) {
        xp__config_print(spec, opts, stdout);
        if (l.log_level)
            printf("log-level = %s\n", l.log_level);
        *status = 0;
        goto cleanup;
    }
    run = true;
    goto cleanup;
failed:
    fprintf(stderr, "%s: %s\n", spec->program, err.message);
cleanup:
    bson_free(l.log_level);
    return run;
}

/* ------------------------------------------------------------- showing */

/* Puts one unit of text (a word, a [--flag ARG]) at *col after a blank,
 * or at the start of a new line indented by indent when it would pass the
 * width; nothing goes before it at the indent itself. */
static void s_put(FILE *f, int *col, int indent, const char *text, size_t n)
{
    if (*col > indent && *col + 1 + (int)n > S_WIDTH) {
        fprintf(f, "\n%*s", indent, "");
        *col = indent;
    } else if (*col != indent) {
        fputc(' ', f);
        (*col)++;
    }
    fwrite(text, 1, n, f);
    *col += (int)n;
}

static void s_put_words(FILE *f, int col, int indent, const char *text)
{
    for (const char *p = text; *p;) {
        p += strspn(p, " ");
        size_t n = strcspn(p, " ");
        if (n)
            s_put(f, &col, indent, p, n);
        p += n;
    }
    fputc('\n', f);
}

/* "  --name ARG" then its help from the help column on. */
static void s_option_line(FILE *f, const char *name, const char *arg,
                          const char *help)
{
    int col = fprintf(f, "  --%s%s%s", name, arg ? " " : "", arg ? arg : "");
    if (col >= S_HELP_COLUMN) {
        fputc('\n', f);
        col = 0;
    }
    fprintf(f, "%*s", S_HELP_COLUMN - col, "");
    s_put_words(f, S_HELP_COLUMN, S_HELP_COLUMN, help);
}

/* The default of o as usage says it, into buf ("" when none). */
static void s_default_words(const xp_option *o, char *buf, size_t size)
{
    char value[64] = "";
    const char *v = o->dflt_words;
    if (!v && o->type == XP_OPTION_STRING)
        v = o->dflt;
    if (!v && s_is_number(o->type)) {
        long long n = o->dflt_int;
        if (o->type == XP_OPTION_SIZE && n >= 1 << 20 && n % (1 << 20) == 0)
            snprintf(value, sizeof value, "%lld MiB", n >> 20);
        else
            snprintf(value, sizeof value, "%lld", n);
        v = value;
    }
    if (o->env && v)
        snprintf(buf, size, "default $%s, else %s", o->env, v);
    else if (o->env)
        snprintf(buf, size, "default $%s", o->env);
    else if (v)
        snprintf(buf, size, "default %s", v);
    else
        buf[0] = '\0';
}

void xp__config_usage(const xp_config_spec *spec, FILE *f)
{
    int col = fprintf(f, "usage: %s", spec->program);
    int indent = col + 1;
    char item[128], help[1024], dflt[256];
    for (const xp_option *o = spec->options; o->name; o++) {
        int n = snprintf(item, sizeof item, "[--%s%s%s%s]", o->name,
                         o->arg ? " " : "", o->arg ? o->arg : "",
                         o->type == XP_OPTION_LIST ? " ..." : "");
        s_put(f, &col, indent, item, (size_t)n);
    }
    static const char *const own[] = {"[--log-level L]", "[--config FILE]",
                                      "[--print-config]", "[--help]"};
    for (size_t i = 0; i < sizeof own / sizeof *own; i++)
        s_put(f, &col, indent, own[i], strlen(own[i]));
    fputs("\n\n", f);
    s_put_words(f, 0, 0, spec->about);
    fputc('\n', f);
    for (const xp_option *o = spec->options; o->name; o++) {
        s_default_words(o, dflt, sizeof dflt);
        snprintf(help, sizeof help, "%s%s%s%s", o->help, *dflt ? " (" : "",
                 dflt, *dflt ? ")" : "");
        s_option_line(f, o->name, o->arg, help);
    }
    s_option_line(f, "log-level", "L",
                  "debug, info, warning, error or off (default info)");
    snprintf(help, sizeof help,
             "`key = value` lines, keys named as the options above (%s...); "
             "default $%s. Options on the command line win over the file, "
             "the file over XP_* variables",
             spec->config_example, spec->config_env);
    s_option_line(f, "config", "FILE", help);
    s_option_line(f, "print-config", NULL,
                  "print the effective configuration and exit");
    s_option_line(f, "help", NULL, "print this text and exit");
}

/* A value as the file reads it back: quoted when it has blanks (inside,
 * for the eye; at either end, which reading trims) or would lose its own
 * quotes. */
static void s_print_value(FILE *f, const char *name, const char *v)
{
    size_t n = strlen(v);
    bool quote = strpbrk(v, " \t") || v[0] == '"' ||
                 (n && (isspace((unsigned char)v[0]) ||
                        isspace((unsigned char)v[n - 1])));
    fprintf(f, quote ? "%s = \"%s\"\n" : "%s = %s\n", name, v);
}

void xp__config_print(const xp_config_spec *spec, const void *opts, FILE *f)
{
    for (const xp_option *o = spec->options; o->name; o++) {
        const void *p = s_cfield(opts, o->offset);
        if (s_is_number(o->type)) {
            fprintf(f, "%s = %lld\n", o->name, s_number_get(opts, o));
        } else if (o->type == XP_OPTION_SWITCH) {
            fprintf(f, "%s = %s\n", o->name,
                    *(const bool *)p ? "true" : "false");
        } else if (o->type == XP_OPTION_LIST) {
            size_t n;
            char **list = s_list_get(opts, o, &n);
            for (size_t i = 0; i < n; i++)
                s_print_value(f, o->name, list[i]);
        } else {
            const char *v;
            memcpy(&v, p, sizeof v);
            if (v)
                s_print_value(f, o->name, v);
        }
    }
}

/* ------------------------------------------------------------- process */

void xp__config_signals(void (*on_signal)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}
