/* xp.c — the `xp` command: reads an experiment's recorded trials back
 * (history, parameters, metrics, persisted values, last trial id) through
 * the public libxp API only. main() dispatches to one handler per command. */
#include <xp/xp.h>

#include "slurm.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef XP_HAVE_LIBGVC
#include <gvc.h>
#else
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
extern char **environ;
#endif

enum { EXIT_FAILED = 1, EXIT_USAGE = 2 };

/* Options a command may accept, and output formats. */
enum {
    OPT_VERBOSE = 1u << 0,
    OPT_FORMAT = 1u << 1,
    OPT_CATEGORY = 1u << 2,
    OPT_QUERY = 1u << 3, /* --filter, --sort, --limit, --offset */
};
enum {
    FMT_TABLE = 1u << 0,
    FMT_CSV = 1u << 1,
    FMT_JSON = 1u << 2,
    FMT_DOT = 1u << 3,
    FMT_SVG = 1u << 4,
};

struct command;
typedef int (*command_fn)(const struct command *cmd, int argc, char **argv);

struct command {
    const char *name;
    const char *synopsis; /* arguments after the command name */
    const char *summary;
    unsigned options;       /* OPT_* beyond --backend and --help */
    unsigned formats;       /* FMT_* accepted by --format */
    int min_args, max_args; /* positional arguments; max -1: unbounded */
    command_fn run;
};

/* Parsed command line of one command. */
struct args {
    const char *backend;
    const char *category;
    const char *filter, *sort; /* OPT_QUERY */
    int64_t limit, offset;
    bool query; /* one of the OPT_QUERY options was given */
    unsigned format;
    bool verbose;
    int npos;
    char **pos;
    int status; /* exit status when s_parse_args returns non-zero */
};

static const struct command *s_find_command(const char *name);

/* ---------------------------------------------------------------- helpers */

static void *s_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fputs("xp: out of memory\n", stderr);
        exit(EXIT_FAILED);
    }
    return p;
}

static void *s_xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p) {
        fputs("xp: out of memory\n", stderr);
        exit(EXIT_FAILED);
    }
    return p;
}

static char *s_xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(s_xmalloc(n), s, n);
}

static char *s_xprintf(const char *fmt, ...) XP_PRINTF(1, 2);
static char *s_xprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = s_xmalloc((size_t)(n < 0 ? 0 : n) + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

static xp_value *s_xvalue(void)
{
    xp_value *v = xp_value_new();
    if (!v) {
        fputs("xp: out of memory\n", stderr);
        exit(EXIT_FAILED);
    }
    return v;
}

/* Wraps xp_value_to_json; the result is malloc-compatible only through
 * xp_free, so copy it into our own allocation. */
static char *s_json(const xp_value *v)
{
    char *lib = xp_value_to_json(v);
    if (!lib) {
        fputs("xp: out of memory\n", stderr);
        exit(EXIT_FAILED);
    }
    char *s = s_xstrdup(lib);
    xp_free(lib);
    return s;
}

static int s_fail(const xp_error_t *err)
{
    fprintf(stderr, "xp: %s\n", err->message);
    return EXIT_FAILED;
}

static int s_usage_error(const struct command *cmd, const char *fmt, ...)
    XP_PRINTF(2, 3);
static int s_usage_error(const struct command *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "xp %s: ", cmd->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'xp help %s'.\n", cmd->name);
    return EXIT_USAGE;
}

/* Shortest text that reads back as exactly d, in plain notation for
 * ordinary magnitudes and with ".0" when integral, so a double never reads
 * back as an integer. */
static char *s_double_text(double d)
{
    if (isnan(d))
        return s_xstrdup("NaN");
    if (isinf(d))
        return s_xstrdup(d > 0 ? "inf" : "-inf");
    double mag = fabs(d);
    bool plain = mag == 0 || (mag >= 1e-5 && mag < 1e16);
    char buf[64];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, d);
        if (strtod(buf, NULL) == d && (!plain || !strchr(buf, 'e')))
            break;
    }
    if (!buf[strcspn(buf, ".e")])
        strcat(buf, ".0");
    return s_xstrdup(buf);
}

/* ISO 8601 UTC with milliseconds: 2026-11-28T12:00:00.123Z. */
static char *s_iso8601(int64_t ms)
{
    int64_t secs = ms / 1000, frac = ms % 1000;
    if (frac < 0) {
        frac += 1000;
        secs -= 1;
    }
    time_t t = (time_t)secs;
    struct tm tm;
    if (!gmtime_r(&t, &tm))
        return s_xprintf("%" PRId64, ms);
    return s_xprintf("%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, (int)frac);
}

/* Process time like daskperiment's timedelta: 00:00:01.234567. */
static char *s_duration_text(double seconds)
{
    if (!(seconds >= 0) || seconds > 1e12)
        return s_double_text(seconds);
    int64_t us = (int64_t)(seconds * 1e6 + 0.5);
    return s_xprintf("%02" PRId64 ":%02d:%02d.%06d", us / 3600000000,
                     (int)(us / 60000000 % 60), (int)(us / 1000000 % 60),
                     (int)(us % 1000000));
}

/* The escape of the character at s into esc[8] when it is a control
 * character: C0 (JSON's \n, \t, \r, else \u00XX), DEL, or C1 (U+0080 to
 * U+009F, UTF-8 C2 80 to C2 9F); returns how many bytes it replaces, 0
 * for any other character. The escapes are JSON's, so that JSON text
 * stays JSON that reads back the same. */
static size_t s_control_escape(const char *s, char *esc)
{
    unsigned char c = (unsigned char)s[0], next = (unsigned char)s[1];
    bool c1 = c == 0xc2 && next >= 0x80 && next <= 0x9f;
    if (c == '\n' || c == '\t' || c == '\r')
        snprintf(esc, 8, "\\%c", c == '\n' ? 'n' : c == '\t' ? 't' : 'r');
    else if (c < 0x20 || c == 0x7f || c1)
        snprintf(esc, 8, "\\u%04x", c1 ? next : c);
    else
        return 0;
    return c1 ? 2 : 1;
}

static bool s_has_control(const char *s)
{
    char esc[8];
    for (; *s; s++)
        if (s_control_escape(s, esc))
            return true;
    return false;
}

/* s with every control character escaped, so that it is one line and
 * nothing reaches a terminal raw. Caller owns result. */
static char *s_visible(const char *s)
{
    char *out = s_xmalloc(6 * strlen(s) + 1), *o = out;
    while (*s) {
        char esc[8];
        size_t n = s_control_escape(s, esc);
        if (n) {
            o = stpcpy(o, esc);
            s += n;
        } else {
            *o++ = *s++;
        }
    }
    *o = '\0';
    return out;
}

enum text_style {
    TEXT_CELL,    /* as stored (tables escape control characters) */
    TEXT_LITERAL, /* script-mode literal: reads back as the same value */
};

static bool s_is_blank(char c)
{
    return c && strchr(" \t\n\v\f\r", c);
}

/* A string as a script-mode literal: bare when it reads back as the same
 * string and shows as typed (no control character, no blank at an end),
 * else JSON-quoted. */
static char *s_string_literal(const xp_value *v, const char *s)
{
    xp_value *back = s_xvalue();
    bool bare = s[0] && !s_has_control(s) && !s_is_blank(s[0]) &&
                !s_is_blank(s[strlen(s) - 1]) &&
                xp_value_parse_literal(back, s, NULL) == 0 &&
                xp_value_equal(back, v);
    xp_value_destroy(&back);
    return bare ? s_xstrdup(s) : s_json(v);
}

/* Caller owns result. v NULL (a missing cell) gives "". */
static char *s_value_text(const xp_value *v, enum text_style style)
{
    if (!v)
        return s_xstrdup("");
    switch (xp_value_type(v)) {
    case XP_TYPE_NULL: return s_xstrdup(style == TEXT_LITERAL ? "null" : "");
    case XP_TYPE_BOOL: return s_xstrdup(xp_as_bool(v) ? "true" : "false");
    case XP_TYPE_INT64: return s_xprintf("%" PRId64, xp_as_int64(v));
    case XP_TYPE_DOUBLE: return s_double_text(xp_as_double(v));
    case XP_TYPE_DATETIME: return s_iso8601(xp_as_int64(v));
    case XP_TYPE_BLOB: {
        size_t len = 0;
        xp_as_blob(v, &len);
        return s_xprintf("<blob %zu bytes>", len);
    }
    case XP_TYPE_STRING: {
        const char *s = xp_as_string(v, NULL);
        return style == TEXT_LITERAL ? s_string_literal(v, s) : s_xstrdup(s);
    }
    default: return s_json(v);
    }
}

static bool s_is_numeric(const xp_value *v)
{
    xp_type t = v ? xp_value_type(v) : XP_TYPE_NULL;
    return t == XP_TYPE_INT64 || t == XP_TYPE_DOUBLE;
}

/* Positive decimal trial id; rejects signs, blanks, trailing junk, 0. */
static int s_parse_trial_id(const char *s, int64_t *out)
{
    if (!s[0])
        return -1;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9')
            return -1;
    errno = 0;
    long long id = strtoll(s, NULL, 10);
    if (errno != 0 || id <= 0)
        return -1;
    *out = id;
    return 0;
}

/* ---------------------------------------------------------------- grids */

/* A table of text cells, row 0 being the header, printed aligned or as
 * CSV. Columns are right-aligned when every non-empty body cell is
 * numeric. */
struct grid {
    size_t ncols, ncells, cap;
    char **text;
    bool *right;
};

static void s_grid_add(struct grid *g, char *owned_text, bool right)
{
    if (g->ncells == g->cap) {
        g->cap = g->cap ? 2 * g->cap : 64;
        g->text = s_xrealloc(g->text, g->cap * sizeof *g->text);
        g->right = s_xrealloc(g->right, g->cap * sizeof *g->right);
    }
    g->text[g->ncells] = owned_text;
    g->right[g->ncells++] = right;
}

static void s_grid_free(struct grid *g)
{
    for (size_t i = 0; i < g->ncells; i++)
        free(g->text[i]);
    free(g->text);
    free(g->right);
}

/* Display width in characters (UTF-8 continuation bytes do not count). */
static size_t s_width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        w += ((unsigned char)*s & 0xc0) != 0x80;
    return w;
}

/* Width of each column of cells shown (g's layout) and whether it is
 * right-aligned. */
static void s_grid_columns(const struct grid *g, char *const *shown,
                           size_t *width, bool *right)
{
    size_t nc = g->ncols, nrows = g->ncells / nc;
    for (size_t c = 0; c < nc; c++) {
        bool numeric = false, text = false;
        width[c] = 0;
        for (size_t r = 0; r < nrows; r++) {
            size_t i = r * nc + c, w = s_width(shown[i]);
            width[c] = w > width[c] ? w : width[c];
            if (r > 0 && shown[i][0])
                *(g->right[i] ? &numeric : &text) = true;
        }
        right[c] = numeric && !text;
    }
}

static void s_grid_print_table(const struct grid *g, FILE *f)
{
    size_t nc = g->ncols, nrows = g->ncells / nc;
    size_t *width = s_xmalloc(nc * sizeof *width);
    bool *right = s_xmalloc(nc * sizeof *right);
    /* Cells as shown, control characters escaped: one line per row, and
     * the widths count the escapes. */
    char **shown = s_xmalloc(g->ncells * sizeof *shown);
    for (size_t i = 0; i < g->ncells; i++)
        shown[i] = s_visible(g->text[i]);
    s_grid_columns(g, shown, width, right);
    /* Spaces are written only before text, so lines have no trailing
     * blanks. */
    for (size_t r = 0; r < nrows; r++) {
        size_t spaces = 0;
        for (size_t c = 0; c < nc; c++) {
            const char *s = shown[r * nc + c];
            size_t pad = width[c] - s_width(s);
            spaces += (c > 0 ? 2 : 0) + (right[c] ? pad : 0);
            if (s[0]) {
                fprintf(f, "%*s%s", (int)spaces, "", s);
                spaces = 0;
            }
            spaces += right[c] ? 0 : pad;
        }
        fputc('\n', f);
    }
    for (size_t i = 0; i < g->ncells; i++)
        free(shown[i]);
    free(shown);
    free(width);
    free(right);
}

/* RFC 4180 quoting: fields with a comma, quote or line break are quoted,
 * quotes doubled. Lines end with "\n". */
static void s_csv_field(const char *s, FILE *f)
{
    if (!s[strcspn(s, ",\"\r\n")]) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void s_grid_print_csv(const struct grid *g, FILE *f)
{
    for (size_t i = 0; i < g->ncells; i++) {
        s_csv_field(g->text[i], f);
        fputc((i + 1) % g->ncols == 0 ? '\n' : ',', f);
    }
}

static void s_grid_print(const struct grid *g, unsigned format)
{
    if (format == FMT_CSV)
        s_grid_print_csv(g, stdout);
    else
        s_grid_print_table(g, stdout);
}

static void s_print_json(const xp_value *v)
{
    char *json = s_json(v);
    puts(json);
    free(json);
}

/* ---------------------------------------------------------------- arguments */

static const struct {
    const char *name;
    unsigned flag;
} s_formats[] = {
    {"table", FMT_TABLE}, {"csv", FMT_CSV}, {"json", FMT_JSON},
    {"dot", FMT_DOT},     {"svg", FMT_SVG},
};

static int s_set_format(const struct command *cmd, const char *name,
                        struct args *a)
{
    for (size_t i = 0; i < sizeof s_formats / sizeof s_formats[0]; i++) {
        if (strcmp(name, s_formats[i].name) == 0 &&
            (cmd->formats & s_formats[i].flag)) {
            a->format = s_formats[i].flag;
            return 0;
        }
    }
    return s_usage_error(cmd, "unsupported format '%s'", name);
}

static void s_command_usage(const struct command *cmd, FILE *f);

/* Parses `argv[1..]` of a command: --backend B, its OPT_* options (also as
 * --opt=value), `--` and positionals. Non-zero means stop with a->status
 * (0 after --help, EXIT_USAGE after a message on stderr). */
/* The OPT_QUERY option at arg (its name len bytes long), or NULL. */
static const char *s_query_option(const struct command *cmd, const char *arg,
                                  size_t len)
{
    static const char *const names[] = {"--filter", "--sort", "--limit",
                                        "--offset"};
    for (size_t i = 0; (cmd->options & OPT_QUERY) && i < 4; i++)
        if (strlen(names[i]) == len && strncmp(arg, names[i], len) == 0)
            return names[i];
    return NULL;
}

/* Stores the value of query option name; a count must be a whole number
 * >= 0. */
static int s_set_query_option(const struct command *cmd, const char *name,
                              const char *value, struct args *a)
{
    a->query = true;
    if (strcmp(name, "--filter") == 0) {
        a->filter = value;
        return 0;
    }
    if (strcmp(name, "--sort") == 0) {
        a->sort = value;
        return 0;
    }
    char *end;
    errno = 0;
    long long n = strtoll(value, &end, 10);
    if (errno || end == value || *end || n < 0 || value[0] == '+' ||
        value[0] == ' ')
        return s_usage_error(cmd, "%s needs a whole number >= 0, not '%s'",
                             name, value);
    *(strcmp(name, "--limit") == 0 ? &a->limit : &a->offset) = n;
    return 0;
}

static int s_parse_args(const struct command *cmd, int argc, char **argv,
                        struct args *a)
{
    *a = (struct args){.format = FMT_TABLE};
    a->pos = s_xmalloc((size_t)argc * sizeof *a->pos);
    bool options_done = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (options_done || strncmp(arg, "--", 2) != 0) {
            if (!options_done && strcmp(arg, "-h") == 0)
                goto help;
            a->pos[a->npos++] = argv[i];
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            options_done = true;
            continue;
        }
        const char *eq = strchr(arg, '=');
        size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
        const char *value = eq ? eq + 1 : NULL;
        bool is_category = (cmd->options & OPT_CATEGORY) && len == 10 &&
                           strncmp(arg, "--category", 10) == 0;
        const char *query = s_query_option(cmd, arg, len);
        bool takes_value = (len == 9 && strncmp(arg, "--backend", 9) == 0) ||
                           ((cmd->options & OPT_FORMAT) && len == 8 &&
                            strncmp(arg, "--format", 8) == 0) ||
                           is_category || query;
        if (takes_value && !value) {
            if (i + 1 >= argc) {
                a->status =
                    s_usage_error(cmd, "option '%s' needs a value", arg);
                goto stop;
            }
            value = argv[++i];
        } else if (!takes_value && value) {
            bool flag = strncmp(arg, "--help=", 7) == 0 ||
                        ((cmd->options & OPT_VERBOSE) &&
                         strncmp(arg, "--verbose=", 10) == 0);
            a->status = s_usage_error(cmd, "%s '%.*s'",
                                      flag ? "no value allowed for option"
                                           : "unknown option",
                                      (int)len, arg);
            goto stop;
        }
        if (strcmp(arg, "--help") == 0) {
            goto help;
        } else if (len == 9 && strncmp(arg, "--backend", 9) == 0) {
            a->backend = value;
        } else if (is_category) {
            a->category = value;
        } else if (query) {
            if ((a->status = s_set_query_option(cmd, query, value, a)) != 0)
                goto stop;
        } else if ((cmd->options & OPT_FORMAT) && len == 8 &&
                   strncmp(arg, "--format", 8) == 0) {
            if ((a->status = s_set_format(cmd, value, a)) != 0)
                goto stop;
        } else if ((cmd->options & OPT_VERBOSE) &&
                   strcmp(arg, "--verbose") == 0) {
            a->verbose = true;
        } else {
            a->status = s_usage_error(cmd, "unknown option '%s'", arg);
            goto stop;
        }
    }
    if (a->npos < cmd->min_args) {
        a->status = s_usage_error(cmd, "missing arguments (usage: xp %s %s)",
                                  cmd->name, cmd->synopsis);
        goto stop;
    }
    if (cmd->max_args >= 0 && a->npos > cmd->max_args) {
        a->status = s_usage_error(cmd, "unexpected argument '%s'",
                                  a->pos[cmd->max_args]);
        goto stop;
    }
    return 0;
help:
    s_command_usage(cmd, stdout);
    a->status = 0;
stop:
    free(a->pos);
    a->pos = NULL;
    return -1;
}

static void s_args_free(struct args *a)
{
    free(a->pos);
    a->pos = NULL;
}

/* Parses a trial id positional; usage error when malformed. */
static int s_trial_arg(const struct command *cmd, const char *s, int64_t *id)
{
    if (s_parse_trial_id(s, id) != 0)
        return s_usage_error(cmd, "invalid trial id '%s' (positive integer)",
                             s);
    return 0;
}

/* Opens the existing experiment named by the first positional. */
static int s_open(const struct command *cmd, const struct args *a,
                  xp_experiment **ex)
{
    xp_error_t err;
    if (xp_check_id(a->pos[0], &err) != 0)
        return s_usage_error(cmd, "%s", err.message);
    xp_open_options opts = XP_OPEN_OPTIONS_INIT;
    opts.backend = a->backend;
    opts.must_exist = true;
    /* Every command but sync only reads: it opens read-only, so it works
     * on a store it may not write (another user's, a read-only mount, a
     * full disk) and changes nothing. */
    opts.read_only =
        strcmp(cmd->name, "sync") != 0 && strcmp(cmd->name, "gc") != 0;
    opts.threads = 1;
    if (xp_experiment_open(ex, a->pos[0], &opts, &err) != 0)
        return s_fail(&err);
    return 0;
}

/* ---------------------------------------------------------------- history */

/* A history column: header, trial-document field, how to show it. */
enum column_kind { COL_PLAIN, COL_DURATION, COL_SEED, COL_REUSED };

static const struct {
    const char *header;
    const char *field;
    enum column_kind kind;
    bool verbose;
} s_history_columns[] = {
    {"Result", "result", COL_PLAIN, false},
    {"Result Type", "result_type", COL_PLAIN, false},
    {"Success", "success", COL_PLAIN, false},
    {"Finished", "finished", COL_PLAIN, false},
    {"Process Time", "process_time", COL_DURATION, false},
    {"Description", "description", COL_PLAIN, false},
    {"Seed", "seed", COL_SEED, true},
    {"Status", "status", COL_PLAIN, true},
    {"Started", "started", COL_PLAIN, true},
    {"Host", "host", COL_PLAIN, true},
    {"Pid", "pid", COL_PLAIN, true},
    {"Purity Warnings", "purity_warnings", COL_PLAIN, true},
    {"Reused", "reused", COL_REUSED, true},
    {"Reproduces", "reproduces", COL_PLAIN, true},
};

#define N_HISTORY_COLUMNS                                                      \
    (sizeof s_history_columns / sizeof s_history_columns[0])

/* Fields every JSON trial object carries, null when not recorded. */
static const char *const s_json_fields[] = {
    "trial_id", "parameters", "result",       "result_type", "success",
    "status",   "finished",   "process_time", "description", "seed",
};

/* Memoised steps whose output a trial reused: "step<-trial ...". */
static char *s_reused_text(const xp_value *v)
{
    char *text = s_xstrdup("");
    for (size_t i = 0; i < xp_value_count(v); i++) {
        char *next =
            s_xprintf("%s%s%s<-%lld", text, i ? " " : "", xp_value_key_at(v, i),
                      (long long)xp_as_int64(xp_value_at(v, i)));
        free(text);
        text = next;
    }
    return text;
}

static char *s_cell(const xp_value *v, enum column_kind kind, unsigned format)
{
    if (kind == COL_REUSED && format == FMT_TABLE)
        return s_reused_text(v);
    if (v && kind == COL_SEED && xp_value_type(v) == XP_TYPE_INT64)
        return s_xprintf("%" PRIu64, (uint64_t)xp_as_int64(v));
    if (v && kind == COL_DURATION && format == FMT_TABLE && s_is_numeric(v))
        return s_duration_text(xp_as_double(v));
    return s_value_text(v, TEXT_CELL);
}

/* Parameter names across all trials, in order of first appearance. */
static const char **s_parameter_names(const xp_value *history, size_t *n)
{
    const char **names = NULL;
    size_t count = 0, cap = 0;
    for (size_t t = 0; t < xp_value_count(history); t++) {
        const xp_value *params =
            xp_value_get(xp_value_at(history, t), "parameters");
        for (size_t i = 0; i < xp_value_count(params); i++) {
            const char *key = xp_value_key_at(params, i);
            size_t j = 0;
            while (j < count && strcmp(names[j], key) != 0)
                j++;
            if (j < count || !key)
                continue;
            if (count == cap) {
                cap = cap ? 2 * cap : 8;
                names = s_xrealloc(names, cap * sizeof *names);
            }
            names[count++] = key;
        }
    }
    *n = count;
    return names;
}

static void s_history_grid(const xp_value *history, bool verbose,
                           unsigned format)
{
    size_t nparams;
    const char **params = s_parameter_names(history, &nparams);
    struct grid g = {.ncols = 1 + nparams};
    for (size_t c = 0; c < N_HISTORY_COLUMNS; c++)
        g.ncols += verbose || !s_history_columns[c].verbose;

    s_grid_add(&g, s_xstrdup("Trial ID"), false);
    for (size_t p = 0; p < nparams; p++)
        s_grid_add(&g, s_xstrdup(params[p]), false);
    for (size_t c = 0; c < N_HISTORY_COLUMNS; c++)
        if (verbose || !s_history_columns[c].verbose)
            s_grid_add(&g, s_xstrdup(s_history_columns[c].header), false);

    for (size_t t = 0; t < xp_value_count(history); t++) {
        const xp_value *trial = xp_value_at(history, t);
        const xp_value *values = xp_value_get(trial, "parameters");
        s_grid_add(&g,
                   s_cell(xp_value_get(trial, "trial_id"), COL_PLAIN, format),
                   true);
        for (size_t p = 0; p < nparams; p++) {
            const xp_value *v = xp_value_get(values, params[p]);
            s_grid_add(&g, s_cell(v, COL_PLAIN, format), s_is_numeric(v));
        }
        for (size_t c = 0; c < N_HISTORY_COLUMNS; c++) {
            if (!verbose && s_history_columns[c].verbose)
                continue;
            const xp_value *v = xp_value_get(trial, s_history_columns[c].field);
            s_grid_add(&g, s_cell(v, s_history_columns[c].kind, format),
                       s_is_numeric(v));
        }
    }
    s_grid_print(&g, format);
    s_grid_free(&g);
    free(params);
}

/* The history as JSON: trial documents with datetimes as ISO strings. */
static void s_history_json(const xp_value *history)
{
    xp_value *out = s_xvalue();
    xp_set_array(out);
    for (size_t t = 0; t < xp_value_count(history); t++) {
        const xp_value *trial = xp_value_at(history, t);
        xp_value *doc = xp_array_append(out);
        if (!doc || xp_set_document(doc) != 0)
            goto nomem;
        for (size_t i = 0; i < sizeof s_json_fields / sizeof *s_json_fields;
             i++)
            if (!xp_document_set(doc, s_json_fields[i]))
                goto nomem;
        for (size_t i = 0; i < xp_value_count(trial); i++) {
            const xp_value *v = xp_value_at(trial, i);
            xp_value *dst = xp_document_set(doc, xp_value_key_at(trial, i));
            if (!dst)
                goto nomem;
            if (xp_value_type(v) == XP_TYPE_DATETIME) {
                char *iso = s_iso8601(xp_as_int64(v));
                int rc = xp_set_string(dst, iso);
                free(iso);
                if (rc != 0)
                    goto nomem;
            } else if (xp_set_value(dst, v) != 0) {
                goto nomem;
            }
        }
    }
    s_print_json(out);
    xp_value_destroy(&out);
    return;
nomem:
    fputs("xp: out of memory\n", stderr);
    exit(EXIT_FAILED);
}

static int s_cmd_history(const struct command *cmd, int argc, char **argv)
{
    struct args a;
    xp_experiment *ex = NULL;
    xp_value *history = NULL;
    xp_error_t err;
    int status;
    xp_query q = XP_QUERY_INIT;
    int64_t matched = 0;
    if (s_parse_args(cmd, argc, argv, &a) != 0)
        return a.status;
    q.filter = a.filter;
    q.sort = a.sort;
    q.limit = a.limit;
    q.offset = a.offset;
    /* A malformed filter is a usage error, found before the store opens. */
    if (xp_query_check(&q, &err) != 0) {
        fprintf(stderr, "xp %s: %s\n", cmd->name, err.message);
        status = EXIT_USAGE;
        goto cleanup;
    }
    if ((status = s_open(cmd, &a, &ex)) != 0)
        goto cleanup;
    if ((a.query ? xp_history_query(ex, &q, &history, &matched, &err)
                 : xp_history(ex, &history, &err)) != 0) {
        status = s_fail(&err);
        goto cleanup;
    }
    /* stdout stays the page alone; how much of the match it is goes to
     * stderr, when it is not all of it. */
    if (a.query && (int64_t)xp_value_count(history) < matched)
        fprintf(stderr, "xp history: %zu of %" PRId64 " matching trials\n",
                xp_value_count(history), matched);
    if (a.format == FMT_JSON)
        s_history_json(history);
    else
        s_history_grid(history, a.verbose, a.format);
cleanup:
    xp_value_destroy(&history);
    xp_experiment_destroy(&ex);
    s_args_free(&a);
    return status;
}

/* ---------------------------------------------------------------- params */

static int s_cmd_params(const struct command *cmd, int argc, char **argv)
{
    struct args a;
    xp_experiment *ex = NULL;
    xp_value *params = NULL;
    xp_error_t err;
    int64_t trial = 0;
    int status;
    if (s_parse_args(cmd, argc, argv, &a) != 0)
        return a.status;
    if ((status = s_trial_arg(cmd, a.pos[1], &trial)) != 0 ||
        (status = s_open(cmd, &a, &ex)) != 0)
        goto cleanup;
    if (xp_trial_parameters(ex, trial, &params, &err) != 0) {
        status = s_fail(&err);
        goto cleanup;
    }
    if (a.format == FMT_JSON) {
        s_print_json(params);
        goto cleanup;
    }
    for (size_t i = 0; i < xp_value_count(params); i++) {
        /* Escaped, a JSON literal still reads back the same. */
        char *text = s_value_text(xp_value_at(params, i), TEXT_LITERAL);
        char *name = s_visible(xp_value_key_at(params, i));
        char *shown = s_visible(text);
        printf("%s=%s\n", name, shown);
        free(shown);
        free(name);
        free(text);
    }
cleanup:
    xp_value_destroy(&params);
    xp_experiment_destroy(&ex);
    s_args_free(&a);
    return status;
}

/* ---------------------------------------------------------------- metric */

static void s_metric_grid(const xp_metric_table *t, unsigned format)
{
    size_t ntrials = xp_metric_table_trials(t);
    struct grid g = {.ncols = 1 + ntrials};
    s_grid_add(&g, s_xstrdup("epoch"), false);
    for (size_t c = 0; c < ntrials; c++)
        s_grid_add(&g, s_xprintf("%" PRId64, xp_metric_table_trial(t, c)),
                   true);
    for (size_t r = 0; r < xp_metric_table_epochs(t); r++) {
        s_grid_add(&g, s_xprintf("%" PRId64, xp_metric_table_epoch(t, r)),
                   true);
        for (size_t c = 0; c < ntrials; c++) {
            double d = xp_metric_table_value(t, r, c);
            bool empty = isnan(d) && format == FMT_CSV;
            s_grid_add(&g, empty ? s_xstrdup("") : s_double_text(d), true);
        }
    }
    s_grid_print(&g, format);
    s_grid_free(&g);
}

/* JSON records, one per epoch: {"epoch": 0, "1": 99.5, "2": null}. */
static void s_metric_json(const xp_metric_table *t)
{
    xp_value *out = s_xvalue();
    xp_set_array(out);
    for (size_t r = 0; r < xp_metric_table_epochs(t); r++) {
        xp_value *row = xp_array_append(out);
        xp_value *epoch = row && xp_set_document(row) == 0
                              ? xp_document_set(row, "epoch")
                              : NULL;
        if (!epoch || xp_set_int64(epoch, xp_metric_table_epoch(t, r)) != 0)
            goto nomem;
        for (size_t c = 0; c < xp_metric_table_trials(t); c++) {
            char key[24];
            snprintf(key, sizeof key, "%" PRId64, xp_metric_table_trial(t, c));
            xp_value *cell = xp_document_set(row, key);
            double d = xp_metric_table_value(t, r, c);
            if (!cell ||
                (isnan(d) ? xp_set_null(cell) : xp_set_double(cell, d)) != 0)
                goto nomem;
        }
    }
    s_print_json(out);
    xp_value_destroy(&out);
    return;
nomem:
    fputs("xp: out of memory\n", stderr);
    exit(EXIT_FAILED);
}

static int s_cmd_metric(const struct command *cmd, int argc, char **argv)
{
    struct args a;
    xp_experiment *ex = NULL;
    xp_metric_table *table = NULL;
    int64_t *trials = NULL;
    xp_error_t err;
    int status;
    if (s_parse_args(cmd, argc, argv, &a) != 0)
        return a.status;
    size_t n = (size_t)a.npos - 2;
    trials = s_xmalloc(n * sizeof *trials);
    for (size_t i = 0; i < n; i++)
        if ((status = s_trial_arg(cmd, a.pos[2 + i], &trials[i])) != 0)
            goto cleanup;
    if (xp_check_name("metric", a.pos[1], &err) != 0) {
        status = s_usage_error(cmd, "%s", err.message);
        goto cleanup;
    }
    if ((status = s_open(cmd, &a, &ex)) != 0)
        goto cleanup;
    if (xp_load_metric(ex, a.pos[1], trials, n, &table, &err) != 0) {
        status = s_fail(&err);
        goto cleanup;
    }
    if (a.format == FMT_JSON)
        s_metric_json(table);
    else
        s_metric_grid(table, a.format);
cleanup:
    xp_metric_table_destroy(&table);
    xp_experiment_destroy(&ex);
    free(trials);
    s_args_free(&a);
    return status;
}

/* ---------------------------------------------------------------- persisted */

static int s_cmd_persisted(const struct command *cmd, int argc, char **argv)
{
    struct args a;
    xp_experiment *ex = NULL;
    xp_value *value = NULL;
    xp_error_t err;
    int64_t trial = 0;
    int status;
    if (s_parse_args(cmd, argc, argv, &a) != 0)
        return a.status;
    if ((status = s_trial_arg(cmd, a.pos[2], &trial)) != 0)
        goto cleanup;
    if (xp_check_name("step", a.pos[1], &err) != 0) {
        status = s_usage_error(cmd, "%s", err.message);
        goto cleanup;
    }
    if ((status = s_open(cmd, &a, &ex)) != 0)
        goto cleanup;
    if (xp_load_persisted(ex, a.pos[1], trial, &value, &err) != 0) {
        status = s_fail(&err);
        goto cleanup;
    }
    s_print_json(value);
cleanup:
    xp_value_destroy(&value);
    xp_experiment_destroy(&ex);
    s_args_free(&a);
    return status;
}

/* ---------------------------------------------------------------- trials */

static int s_cmd_trials(const struct command *cmd, int argc, char **argv)
{
    struct args a;
    xp_experiment *ex = NULL;
    xp_error_t err;
    int64_t last;
    int status;
    if (s_parse_args(cmd, argc, argv, &a) != 0)
        return a.status;
    if ((status = s_open(cmd, &a, &ex)) != 0)
        goto cleanup;
    if (xp_last_trial_id(ex, &last, &err) != 0) {
        status = s_fail(&err);
        goto cleanup;
    }
    printf("%" PRId64 "\n", last);
cleanup:
    xp_experiment_destroy(&ex);
    s_args_free(&a);
    return status;
}

/* ---------------------------------------------------------------- capture */

/* The trial named by optional positional i, else the last trial. */
static int s_trial_or_last(const struct command *cmd, const struct args *a,
                           int i, xp_experiment *ex, int64_t *trial)
{
    xp_error_t err;
    if (a->npos > i)
        return s_trial_arg(cmd, a->pos[i], trial);
    if (xp_last_trial_id(ex, trial, &err) != 0)
        return s_fail(&err);
    if (*trial == 0) {
        fprintf(stderr, "xp: experiment '%s' has no trials\n", a->pos[0]);
        return EXIT_FAILED;
    }
    return 0;
}

static int s_cmd_code(const struct command *cmd, int argc, char **argv)
{
    struct args a;
    xp_experiment *ex = NULL;
    xp_value *code = NULL;
    char *text = NULL;
    xp_error_t err;
    int64_t trial = 0;
    int status;
    if (s_parse_args(cmd, argc, argv, &a) != 0)
        return a.status;
    if ((status = s_open(cmd, &a, &ex)) != 0 ||
        (status = s_trial_or_last(cmd, &a, 1, ex, &trial)) != 0)
        goto cleanup;
    if ((a.format == FMT_JSON ? xp_code_get(ex, trial, &code, &err)
                              : xp_code_text(ex, trial, &text, &err)) != 0) {
        status = s_fail(&err);
        goto cleanup;
    }
    if (a.format == FMT_JSON)
        s_print_json(code);
    else
        fputs(text, stdout);
cleanup:
    xp_free(text);
    xp_value_destroy(&code);
    xp_experiment_destroy(&ex);
    s_args_free(&a);
    return status;
}

static int s_cmd_env(const struct command *cmd, int argc, char **argv)
{
    struct args a;
    xp_experiment *ex = NULL;
    xp_value *env = NULL;
    xp_error_t err;
    int64_t trial = 0;
    int status;
    if (s_parse_args(cmd, argc, argv, &a) != 0)
        return a.status;
    if ((status = s_open(cmd, &a, &ex)) != 0 ||
        (status = s_trial_or_last(cmd, &a, 1, ex, &trial)) != 0)
        goto cleanup;
    if (xp_environment_get(ex, trial, a.category, &env, &err) != 0) {
        status = s_fail(&err);
        goto cleanup;
    }
    if (a.format == FMT_JSON) {
        s_print_json(env);
    } else {
        char *text = xp_value_to_text(env);
        fputs(text ? text : "", stdout);
        xp_free(text);
    }
cleanup:
    xp_value_destroy(&env);
    xp_experiment_destroy(&ex);
    s_args_free(&a);
    return status;
}

static int s_cmd_diff(const struct command *cmd, int argc, char **argv)
{
    struct args a;
    xp_experiment *ex = NULL;
    xp_value *diff = NULL;
    xp_error_t err;
    int64_t ta = 0, tb = 0;
    int status;
    if (s_parse_args(cmd, argc, argv, &a) != 0)
        return a.status;
    if ((status = s_trial_arg(cmd, a.pos[1], &ta)) != 0 ||
        (status = s_trial_arg(cmd, a.pos[2], &tb)) != 0 ||
        (status = s_open(cmd, &a, &ex)) != 0)
        goto cleanup;
    if (xp_trial_diff(ex, ta, tb, &diff, &err) != 0) {
        status = s_fail(&err);
        goto cleanup;
    }
    if (a.format == FMT_JSON) {
        s_print_json(diff);
        goto cleanup;
    }
    for (size_t i = 0; i < xp_value_count(diff); i++) {
        const xp_value *lines = xp_value_at(diff, i);
        printf("== %s: %s\n", xp_value_key_at(diff, i),
               xp_value_count(lines) ? "differ" : "same");
        for (size_t k = 0; k < xp_value_count(lines); k++)
            printf("%s\n", xp_as_string(xp_value_at(lines, k), NULL));
    }
cleanup:
    xp_value_destroy(&diff);
    xp_experiment_destroy(&ex);
    s_args_free(&a);
    return status;
}

static int s_cmd_sync(const struct command *cmd, int argc, char **argv)
{
    struct args a;
    xp_experiment *ex = NULL;
    xp_error_t err;
    size_t written = 0;
    int status;
    if (s_parse_args(cmd, argc, argv, &a) != 0)
        return a.status;
    if ((status = s_open(cmd, &a, &ex)) != 0)
        goto cleanup;
    if (xp_experiment_sync(ex, &written, &err) != 0)
        status = s_fail(&err);
    else
        printf("%zu spooled trial(s) written\n", written);
cleanup:
    xp_experiment_destroy(&ex);
    s_args_free(&a);
    return status;
}

/* `xp gc ID --keep-last N [--dry-run]`: the options of its own, then the
 * common ones. */
static int s_cmd_gc(const struct command *cmd, int argc, char **argv)
{
    struct args a;
    xp_experiment *ex = NULL;
    xp_error_t err;
    char **rest = s_xmalloc(((size_t)argc + 1) * sizeof *rest);
    int n = 0, status;
    long long keep = -1;
    bool dry_run = false;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        const char *value = NULL;
        if (strcmp(arg, "--dry-run") == 0) {
            dry_run = true;
            continue;
        }
        if (strcmp(arg, "--keep-last") == 0)
            value = i + 1 < argc ? argv[++i] : "";
        else if (strncmp(arg, "--keep-last=", 12) == 0)
            value = arg + 12;
        if (!value) {
            rest[n++] = argv[i];
            continue;
        }
        char *end = NULL;
        errno = 0;
        keep = strtoll(value, &end, 10);
        if (!*value || *end || errno || keep < 0) {
            free(rest);
            return s_usage_error(cmd, "--keep-last takes a count, not '%s'",
                                 value);
        }
    }
    rest[n] = NULL;
    if (s_parse_args(cmd, n, rest, &a) != 0) {
        free(rest);
        return a.status;
    }
    if (keep < 0) {
        status = s_usage_error(cmd, "missing --keep-last N");
        goto cleanup;
    }
    if ((status = s_open(cmd, &a, &ex)) != 0)
        goto cleanup;
    size_t entries = 0, trials = 0;
    if (xp_experiment_gc(ex, keep, dry_run, &entries, &trials, &err) != 0) {
        status = s_fail(&err);
        goto cleanup;
    }
    printf("%s %zu memo entries and the persisted values of %zu trials\n",
           dry_run ? "would remove" : "removed", entries, trials);
cleanup:
    xp_experiment_destroy(&ex);
    s_args_free(&a);
    free(rest);
    return status;
}

/* ---------------------------------------------------------------- graph */

#ifdef XP_HAVE_LIBGVC
/* SVG of dot through libgvc (linked into this program only). */
static int s_svg_render(const char *dot)
{
    GVC_t *gvc = gvContext();
    Agraph_t *g = gvc ? agmemread(dot) : NULL;
    char *data = NULL;
    unsigned int len = 0;
    int status = EXIT_FAILED;
    if (!g)
        fputs("xp graph: Graphviz could not read the graph\n", stderr);
    else if (gvLayout(gvc, g, "dot") != 0)
        fputs("xp graph: Graphviz could not lay the graph out\n", stderr);
    else if (gvRenderData(gvc, g, "svg", &data, &len) != 0)
        fputs("xp graph: Graphviz could not render SVG\n", stderr);
    else if (fwrite(data, 1, len, stdout) == len)
        status = 0;
    if (data)
        gvFreeRenderData(data);
    if (g) {
        gvFreeLayout(gvc, g);
        agclose(g);
    }
    if (gvc)
        gvFreeContext(gvc);
    return status;
}
#else
/* SVG of dot through the dot program (found on PATH, run without a
 * shell): the graph goes to its input, its output is ours. */
static int s_svg_render(const char *dot)
{
    int fds[2];
    if (pipe(fds) != 0) {
        fprintf(stderr, "xp graph: pipe: %s\n", strerror(errno));
        return EXIT_FAILED;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[0], STDIN_FILENO);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    posix_spawn_file_actions_addclose(&fa, fds[1]);
    char *argv[] = {"dot", "-Tsvg", NULL};
    pid_t pid;
    fflush(stdout);
    int rc = posix_spawnp(&pid, "dot", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[0]);
    if (rc != 0) {
        close(fds[1]);
        fprintf(stderr,
                "xp graph: SVG needs Graphviz: install its dot program "
                "(Debian: graphviz) or build xp with libgvc "
                "(libgraphviz-dev); --format dot needs nothing (%s)\n",
                strerror(rc));
        return EXIT_FAILED;
    }
    size_t len = strlen(dot), off = 0;
    while (off < len) {
        ssize_t w = write(fds[1], dot + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    close(fds[1]);
    int wstatus = 0;
    while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR)
        ;
    if (off == len && WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0)
        return 0;
    fputs("xp graph: the dot program failed to render SVG\n", stderr);
    return EXIT_FAILED;
}
#endif

static int s_cmd_graph(const struct command *cmd, int argc, char **argv)
{
    struct args a;
    xp_experiment *ex = NULL;
    char *dot = NULL;
    xp_error_t err;
    int64_t trial = 0;
    int status;
    if (s_parse_args(cmd, argc, argv, &a) != 0)
        return a.status;
    if ((a.npos > 1 && (status = s_trial_arg(cmd, a.pos[1], &trial)) != 0) ||
        (status = s_open(cmd, &a, &ex)) != 0)
        goto cleanup;
    if (xp_graph_dot(ex, trial, &dot, &err) != 0) {
        status = s_fail(&err);
        goto cleanup;
    }
    if (a.format == FMT_SVG)
        status = s_svg_render(dot);
    else
        fputs(dot, stdout);
cleanup:
    xp_free(dot);
    xp_experiment_destroy(&ex);
    s_args_free(&a);
    return status;
}

/* ---------------------------------------------------------------- keys */

static int s_cmd_keygen(const struct command *cmd, int argc, char **argv)
{
    const char *name = NULL, *dir = ".";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
            dir = argv[++i];
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return s_command_usage(cmd, stdout), 0;
        else if (argv[i][0] == '-' || name)
            return s_usage_error(cmd, "unexpected argument '%s'", argv[i]);
        else
            name = argv[i];
    }
    if (!name)
        return s_usage_error(cmd, "missing NAME");
    char *pub = NULL;
    xp_error_t err;
    if (xp_keygen(dir, name, &pub, &err) != 0) {
        fprintf(stderr, "xp keygen: %s\n", err.message);
        return err.code == XP_EEXIST || err.domain == XP_DOMAIN_ARGUMENT
                   ? EXIT_USAGE
                   : EXIT_FAILED;
    }
    printf("%s\n%s_secret\n", pub, pub);
    xp_free(pub);
    return 0;
}

/* ---------------------------------------------------------------- run, log
 */

/* `xp run FILE [name=value ...] [--seed N] ...`: script mode over an
 * experiment file; its exit codes. */
static int s_cmd_run(const struct command *cmd, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        if (argc < 2)
            return s_usage_error(cmd, "missing FILE");
        s_command_usage(cmd, stdout);
        return 0;
    }
    /* Script mode's log lines, as an experiment program shows them. */
    xp_log_set_level(XP_LOG_INFO);
    char **args = s_xmalloc(((size_t)argc) * sizeof *args);
    char *prog = s_xmalloc(strlen(argv[1]) + 8);
    sprintf(prog, "xp run %s", argv[1]);
    args[0] = prog;
    for (int i = 2; i < argc; i++)
        args[i - 1] = argv[i];
    args[argc - 1] = NULL;
    int status = xp_main_file(argv[1], argc - 1, args);
    free(prog);
    free(args);
    return status;
}

static void s_print_log(const char *step, const xp_value *log)
{
    const xp_value *status = xp_value_get(log, "status");
    printf("== %s: ", step);
    if (xp_as_bool(xp_value_get(log, "timed_out")))
        printf("timed out");
    else if (xp_value_type(status) == XP_TYPE_INT64)
        printf("exit status %lld", (long long)xp_as_int64(status));
    else
        printf("killed by signal %lld",
               (long long)xp_as_int64(xp_value_get(log, "signal")));
    printf(", %.3f s, stdout %lld bytes, stderr %lld bytes\n",
           xp_as_double(xp_value_get(log, "elapsed")),
           (long long)xp_as_int64(xp_value_get(log, "stdout_bytes")),
           (long long)xp_as_int64(xp_value_get(log, "stderr_bytes")));
    const char *streams[] = {"stdout", "stderr"};
    for (int i = 0; i < 2; i++) {
        size_t len = 0;
        const char *text = xp_as_string(xp_value_get(log, streams[i]), &len);
        if (!text || !len)
            continue;
        printf("--- %s%s ---\n", streams[i],
               (size_t)xp_as_int64(
                   xp_value_get(log, i ? "stderr_bytes" : "stdout_bytes")) > len
                   ? " (its end)"
                   : "");
        fwrite(text, 1, len, stdout);
        if (text[len - 1] != '\n')
            putchar('\n');
    }
}

/* ---------------------------------------------------------------- reproduce
 */

/* A refused `xp reproduce`: one line, exit status 2. */
static int s_reproduce_usage(const char *fmt, ...) XP_PRINTF(1, 2);
static int s_reproduce_usage(const char *fmt, ...)
{
    va_list ap;
    fputs("xp reproduce: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(" (see xp help reproduce)\n", stderr);
    return EXIT_USAGE;
}

struct reproduce_args {
    const char *id, *file, *backend, *scheduler;
    int64_t trial;
    char **program; /* after --: PROGRAM ARGS..., NULL-terminated */
    int n_program;
    bool help;
};

/* Value of --name given as `--name=V` or `--name V`: 1, 0 when arg is
 * another option, -1 when the value is missing. */
static int s_reproduce_opt(const char *name, int argc, char **argv, int *i,
                           const char **value)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0)
        return 0;
    if (argv[*i][n] == '=') {
        *value = argv[*i] + n + 1;
        return 1;
    }
    if (argv[*i][n] != '\0')
        return 0;
    if (*i + 1 >= argc)
        return -1;
    *value = argv[++*i];
    return 1;
}

static int s_reproduce_parse(int argc, char **argv, struct reproduce_args *r)
{
    const char *pos[3];
    int npos = 0;
    memset(r, 0, sizeof *r);
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        int m;
        if (strcmp(arg, "--") == 0) {
            r->program = argv + i + 1;
            r->n_program = argc - i - 1;
            if (r->n_program == 0)
                return s_reproduce_usage("-- needs a PROGRAM");
            break;
        }
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            r->help = true;
        } else if ((m = s_reproduce_opt("--backend", argc, argv, &i,
                                        &r->backend)) != 0 ||
                   (m = s_reproduce_opt("--scheduler", argc, argv, &i,
                                        &r->scheduler)) != 0) {
            if (m < 0)
                return s_reproduce_usage("%s needs a value", arg);
        } else if (arg[0] == '-' && arg[1]) {
            return s_reproduce_usage("unknown option '%s'", arg);
        } else if (npos == 3) {
            return s_reproduce_usage("unexpected argument '%s'", arg);
        } else {
            pos[npos++] = arg;
        }
    }
    if (r->help)
        return 0;
    if (npos < 2)
        return s_reproduce_usage("needs ID and TRIAL");
    xp_error_t err;
    if (xp_check_id(pos[0], &err) != 0)
        return s_reproduce_usage("%s", err.message);
    if (s_parse_trial_id(pos[1], &r->trial) != 0)
        return s_reproduce_usage("invalid trial id '%s' (positive integer)",
                                 pos[1]);
    r->id = pos[0];
    r->file = npos > 2 ? pos[2] : NULL;
    if (r->file && r->program)
        return s_reproduce_usage("give FILE.yaml or -- PROGRAM, not both");
    if (!r->file && !r->program && !r->scheduler)
        return s_reproduce_usage(
            "what runs trial %lld of %s? Give its FILE.yaml, -- PROGRAM "
            "ARGS..., or --scheduler ENDPOINT (whose workers have the code)",
            (long long)r->trial, r->id);
    return 0;
}

/* The script-mode arguments that re-run the trial: --reproduce ID:TRIAL
 * and the --backend and --scheduler given, after the n first ones
 * (copied); NULL-terminated, caller frees the array and args[n + 1]. */
static char **s_reproduce_argv(const struct reproduce_args *r, char **first,
                               int n)
{
    char **args = s_xmalloc((size_t)(n + 8) * sizeof *args);
    int k = 0;
    for (int i = 0; i < n; i++)
        args[k++] = first[i];
    char *target = s_xmalloc(strlen(r->id) + 32);
    sprintf(target, "%s:%lld", r->id, (long long)r->trial);
    args[k++] = "--reproduce";
    args[k++] = target;
    if (r->backend) {
        args[k++] = "--backend";
        args[k++] = (char *)r->backend;
    }
    if (r->scheduler) {
        args[k++] = "--scheduler";
        args[k++] = (char *)r->scheduler;
    }
    args[k] = NULL;
    return args;
}

/* Neither a file nor a program: the scheduler's workers run the trial on
 * the code they registered last; the comparison is made here. */
static int s_reproduce_on_scheduler(const struct reproduce_args *r)
{
    xp_experiment *ex = NULL;
    xp_client *c = NULL;
    xp_value *spec = NULL, *trials = NULL, *finished = NULL, *report = NULL;
    int64_t *ids = NULL, batch = 0, cursor = 0, again = 0;
    size_t n = 0;
    xp_error_t err;
    int status = EXIT_USAGE;
    xp_open_options opts = XP_OPEN_OPTIONS_INIT;
    opts.backend = r->backend;
    opts.must_exist = true;
    opts.read_only = true;
    opts.threads = 1;
    if (xp_experiment_open(&ex, r->id, &opts, &err) != 0 ||
        xp_reproduce_spec(ex, r->trial, &spec, &err) != 0)
        goto fail;
    trials = xp_value_new();
    xp_set_array(trials);
    xp_set_value(xp_array_append(trials), spec);
    if (xp_client_connect(&c, r->scheduler, 0, &err) != 0 ||
        xp_client_submit(c, r->id, trials, NULL, &batch, &ids, &n, &err) != 0)
        goto fail;
    for (bool told = false; xp_value_count(finished) == 0;) {
        xp_progress p;
        xp_value_destroy(&finished);
        if (xp_client_progress(c, batch, &cursor, &p, &finished, &err) != 0)
            goto fail;
        if (p.waiting[0] && !told) {
            fprintf(stderr, "xp reproduce: trial %lld is queued: %s\n",
                    n ? (long long)ids[0] : 0LL, p.waiting);
            told = true;
        }
        struct timespec ts = {0, 5 * 1000 * 1000};
        if (xp_value_count(finished) == 0)
            nanosleep(&ts, NULL);
    }
    again = xp_as_int64(xp_value_get(xp_value_at(finished, 0), "trial_id"));
    if (xp_reproduce_compare(ex, r->trial, again, &report, &err) != 0)
        goto fail;
    char *text = xp_reproduce_text(report);
    fputs(text ? text : "", stdout);
    xp_free(text);
    status = xp_as_bool(xp_value_get(report, "reproduced")) ? 0 : EXIT_FAILED;
    goto done;
fail:
    fprintf(stderr, "xp reproduce: %s\n", err.message);
done:
    xp_value_destroy(&report);
    xp_value_destroy(&finished);
    xp_value_destroy(&trials);
    xp_value_destroy(&spec);
    xp_free(ids);
    xp_client_destroy(&c);
    xp_experiment_destroy(&ex);
    return status;
}

/* `xp reproduce ID TRIAL [FILE.yaml | -- PROGRAM ARGS...] [--backend B]
 * [--scheduler S]`: re-runs a recorded trial and compares; 0 reproduced,
 * 1 not, 2 bad arguments or nothing could run. */
static int s_cmd_reproduce(const struct command *cmd, int argc, char **argv)
{
    struct reproduce_args r;
    int status = s_reproduce_parse(argc, argv, &r);
    if (status != 0)
        return status;
    if (r.help) {
        s_command_usage(cmd, stdout);
        return 0;
    }
    if (r.file) {
        char *prog = s_xmalloc(strlen(r.file) + 16);
        sprintf(prog, "xp reproduce %s", r.file);
        char **args = s_reproduce_argv(&r, &prog, 1);
        int n = 0;
        while (args[n])
            n++;
        status = xp_main_file(r.file, n, args);
        free(args[2]);
        free(args);
        free(prog);
        return status;
    }
    if (r.program) {
        char **args = s_reproduce_argv(&r, r.program, r.n_program);
        fflush(NULL);
        execvp(args[0], args);
        fprintf(stderr, "xp reproduce: cannot run %s: %s\n", args[0],
                strerror(errno));
        free(args[r.n_program + 1]);
        free(args);
        return EXIT_USAGE;
    }
    return s_reproduce_on_scheduler(&r);
}

/* The names of a trial's steps, from its code. */
static int s_step_names(xp_experiment *ex, int64_t trial, xp_value **names,
                        xp_error_t *err)
{
    xp_value *code = NULL;
    if (xp_code_get(ex, trial, &code, err) != 0)
        return -1;
    const xp_value *steps = xp_value_get(code, "steps");
    *names = xp_value_new();
    xp_set_array(*names);
    for (size_t i = 0; i < xp_value_count(steps); i++)
        xp_set_value(xp_array_append(*names),
                     xp_value_get(xp_value_at(steps, i), "name"));
    xp_value_destroy(&code);
    return 0;
}

/* `xp log ID TRIAL [STEP]`: what command steps wrote. */
static int s_cmd_log(const struct command *cmd, int argc, char **argv)
{
    struct args a;
    xp_experiment *ex = NULL;
    xp_value *names = NULL, *all = NULL;
    xp_error_t err;
    int64_t trial = 0;
    int status;
    if (s_parse_args(cmd, argc, argv, &a) != 0)
        return a.status;
    if ((status = s_trial_arg(cmd, a.pos[1], &trial)) != 0)
        goto cleanup;
    if (a.npos > 2 && xp_check_name("step", a.pos[2], &err) != 0) {
        status = s_usage_error(cmd, "%s", err.message);
        goto cleanup;
    }
    if ((status = s_open(cmd, &a, &ex)) != 0)
        goto cleanup;
    if (a.npos > 2) {
        names = xp_value_new();
        xp_set_array(names);
        xp_set_string(xp_array_append(names), a.pos[2]);
    } else if (s_step_names(ex, trial, &names, &err) != 0) {
        status = s_fail(&err);
        goto cleanup;
    }
    all = xp_value_new();
    xp_set_document(all);
    for (size_t i = 0; i < xp_value_count(names); i++) {
        const char *step = xp_as_string(xp_value_at(names, i), NULL);
        xp_value *log = NULL;
        if (!step)
            continue;
        if (xp_step_log(ex, trial, step, &log, &err) != 0) {
            if (a.npos > 2 || err.code != XP_ENOTFOUND) {
                status = s_fail(&err);
                goto cleanup;
            }
            continue;
        }
        xp_set_value(xp_document_set(all, step), log);
        if (a.format != FMT_JSON)
            s_print_log(step, log);
        xp_value_destroy(&log);
    }
    if (a.format == FMT_JSON)
        s_print_json(a.npos > 2 ? xp_value_at(all, 0) : all);
    else if (xp_value_count(all) == 0)
        printf("trial %lld has no command step logs\n", (long long)trial);
cleanup:
    xp_value_destroy(&names);
    xp_value_destroy(&all);
    xp_experiment_destroy(&ex);
    s_args_free(&a);
    return status;
}

/* ---------------------------------------------------------------- dashboard
 */

/* Replaces this process with xp-dashboard: beside this xp (installed
 * side by side), in the build tree's dashboard/, else on PATH. Returns
 * only when none runs. */
static int s_cmd_dashboard(const struct command *cmd, int argc, char **argv)
{
    (void)cmd;
    char self[4096], exe[4200];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    char **args = s_xmalloc(((size_t)argc + 1) * sizeof *args);
    for (int i = 1; i < argc; i++)
        args[i] = argv[i];
    args[argc] = NULL;
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash)
            *slash = '\0';
        const char *const beside[] = {"%s/xp-dashboard",
                                      "%s/../dashboard/xp-dashboard"};
        for (size_t i = 0; i < 2; i++) {
            snprintf(exe, sizeof exe, beside[i], self);
            args[0] = exe;
            if (access(exe, X_OK) == 0)
                execv(exe, args);
        }
    }
    args[0] = "xp-dashboard";
    execvp("xp-dashboard", args);
    fprintf(stderr,
            "xp dashboard: xp-dashboard is not installed (looked beside %s "
            "and on PATH: %s)\n",
            n > 0 ? self : "xp", strerror(errno));
    free(args);
    return EXIT_FAILED;
}

/* ---------------------------------------------------------------- slurm */

static int s_cmd_slurm(const struct command *cmd, int argc, char **argv)
{
    (void)cmd;
    return xp__cli_slurm(argc, argv);
}

/* ---------------------------------------------------------------- help */

static void s_usage(FILE *f);

static int s_cmd_help(const struct command *cmd, int argc, char **argv)
{
    struct args a;
    if (s_parse_args(cmd, argc, argv, &a) != 0)
        return a.status;
    int status = 0;
    if (a.npos == 0) {
        s_usage(stdout);
    } else {
        const struct command *topic = s_find_command(a.pos[0]);
        if (topic)
            s_command_usage(topic, stdout);
        else
            status = s_usage_error(cmd, "unknown command '%s'", a.pos[0]);
    }
    s_args_free(&a);
    return status;
}

static const struct command s_commands[] = {
    {"history",
     "ID [--filter EXPR] [--sort KEYS] [--limit N] [--offset N] [--verbose] "
     "[--format table|csv|json]",
     "trials: parameters, result, success, timings; a page of them with "
     "--filter 'a > 1 and status == \"failed\"' --sort -result,a",
     OPT_VERBOSE | OPT_FORMAT | OPT_QUERY, FMT_TABLE | FMT_CSV | FMT_JSON, 1, 1,
     s_cmd_history},
    {"params", "ID TRIAL [--format table|json]",
     "parameters of a trial, as name=value lines", OPT_FORMAT,
     FMT_TABLE | FMT_JSON, 2, 2, s_cmd_params},
    {"metric", "ID NAME TRIAL... [--format table|csv|json]",
     "a metric as an epoch x trial table", OPT_FORMAT,
     FMT_TABLE | FMT_CSV | FMT_JSON, 3, -1, s_cmd_metric},
    {"persisted", "ID STEP TRIAL [--format json]",
     "persisted output of a step, as JSON", OPT_FORMAT, FMT_JSON, 3, 3,
     s_cmd_persisted},
    {"run",
     "FILE [name=value ...] [--seed N] [--backend B] [--log-level L] "
     "[--no-memo|--refresh]",
     "run one trial of an experiment file (docs/commands.md), as script "
     "mode runs a C experiment",
     0, 0, 1, -1, s_cmd_run},
    {"log", "ID TRIAL [STEP] [--format json]",
     "stdout and stderr (their ends) and exit status of a trial's command "
     "steps",
     OPT_FORMAT, FMT_JSON, 2, 3, s_cmd_log},
    {"reproduce",
     "ID TRIAL [FILE.yaml | -- PROGRAM ARGS...] [--scheduler ENDPOINT]",
     "re-run a trial with its parameters and seed on the current code and "
     "compare: result, each step's output, code and environment; exit 0 "
     "when it reproduced, 1 when not",
     0, 0, 2, -1, s_cmd_reproduce},
    {"trials", "ID", "last trial id (0 when none)", 0, 0, 1, 1, s_cmd_trials},
    {"code", "ID [TRIAL] [--format json]",
     "source of every step of a trial (default: the last)", OPT_FORMAT,
     FMT_JSON, 1, 2, s_cmd_code},
    {"env", "ID [TRIAL] [--category C] [--format json]",
     "environment of a trial (default: the last); categories: platform, "
     "cpu, runtime, libraries, git, gpu",
     OPT_FORMAT | OPT_CATEGORY, FMT_JSON, 1, 2, s_cmd_env},
    {"diff", "ID TRIAL_A TRIAL_B [--format json]",
     "parameter, code and environment differences between two trials",
     OPT_FORMAT, FMT_JSON, 3, 3, s_cmd_diff},
    {"graph", "ID [TRIAL] [--format dot|svg]",
     "the graph of parameters and steps as Graphviz DOT or SVG; with "
     "TRIAL, steps coloured by what became of them (default: the last "
     "trial's code, uncoloured)",
     OPT_FORMAT, FMT_DOT | FMT_SVG, 1, 2, s_cmd_graph},
    {"gc", "ID --keep-last N [--dry-run]",
     "remove the persisted values of all but the newest N trials and the "
     "memo entries pointing at them (records are kept)",
     0, 0, 1, 1, s_cmd_gc},
    {"sync", "ID",
     "write trials kept in the local spool while the backend was "
     "unreachable",
     0, 0, 1, 1, s_cmd_sync},
    {"keygen", "NAME [--dir DIR]",
     "make a CURVE key pair for xp-scheduler --keys, xp-worker --key, "
     "xpsubmit --key: DIR/NAME.key (public) and DIR/NAME.key_secret",
     0, 0, 1, 1, s_cmd_keygen},
    {"dashboard", "[ID...] [--backend B] [--listen HOST:PORT] [--auth FILE]",
     "serve a read-only web page over the experiments (runs xp-dashboard; "
     "xp dashboard --help for its options)",
     0, 0, 0, -1, s_cmd_dashboard},
    {"slurm", "script|submit|status|cancel [OPTIONS]",
     "run xp-workers as a Slurm array job (xp slurm --help for the "
     "options)",
     0, 0, 0, -1, s_cmd_slurm},
    {"help", "[COMMAND]", "show help for a command", 0, 0, 0, 1, s_cmd_help},
};

#define N_COMMANDS (sizeof s_commands / sizeof s_commands[0])

static const struct command *s_find_command(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(s_commands[i].name, name) == 0)
            return &s_commands[i];
    return NULL;
}

static void s_command_usage(const struct command *cmd, FILE *f)
{
    bool has_id = strncmp(cmd->synopsis, "ID", 2) == 0;
    fprintf(f, "usage: xp %s %s%s\n\n%s.\n", cmd->name, cmd->synopsis,
            has_id ? " [--backend B]" : "", cmd->summary);
    if (has_id)
        fputs("\n--backend B  directory holding the experiments (default: "
              "$XP_BACKEND, else ./xp_cache)\n",
              f);
}

static void s_usage(FILE *f)
{
    fputs("usage: xp COMMAND [ARGS] [--backend B]\n"
          "       xp --help | --version | help COMMAND\n\n"
          "Run experiment files, inspect recorded trials, serve the\n"
          "dashboard, launch workers as Slurm jobs.\n\n"
          "commands:\n",
          f);
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-10s %s\n", s_commands[i].name, s_commands[i].summary);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        s_usage(stderr);
        return EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
        s_usage(stdout);
        return 0;
    }
    if (strcmp(name, "--version") == 0) {
        printf("xp %s\n", XP_VERSION_STRING);
        return 0;
    }
    const struct command *cmd = s_find_command(name);
    if (!cmd) {
        fprintf(stderr, "xp: unknown command '%s'\nTry 'xp --help'.\n", name);
        return EXIT_USAGE;
    }
    /* Logs go to stderr; warnings (e.g. trials found interrupted) are
     * worth seeing, progress lines are not. */
    xp_log_set_level(XP_LOG_WARNING);
    return cmd->run(cmd, argc - 1, argv + 1);
}
