/* config.c — configuration files of the xp daemons (xp-scheduler,
 * xp-worker): `key = value` lines, `#` comments, keys named as the long
 * command-line options without their dashes. A file becomes the option
 * list it stands for, which the program parses before its own command
 * line, so flags given on the command line win over the file. */
#include "remote/config.h"

#include "util/error.h"
#include "value.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

static char *s_trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

static void s_push(char ***argv, int *argc, const char *s)
{
    *argv = bson_realloc(*argv, (size_t)(*argc + 2) * sizeof **argv);
    (*argv)[(*argc)++] = bson_strdup(s);
    (*argv)[*argc] = NULL;
}

int xp__config_read(const char *path, const char *const *flags,
                    char ***argv_out, int *argc_out, xp_error_t *err)
{
    *argv_out = NULL;
    *argc_out = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return xp__error(err, XP_DOMAIN_SYSTEM, XP_EIO, "cannot read %s: %s",
                         path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0, rc = 0;
    char **argv = NULL;
    int argc = 0;
    while (rc == 0 && getline(&line, &cap, f) > 0) {
        lineno++;
        char *s = s_trim(line);
        if (!*s || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            rc = xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                           "%s:%d: expected 'key = value'", path, lineno);
            break;
        }
        *eq = '\0';
        char *key = s_trim(s), *value = s_trim(eq + 1);
        size_t vlen = strlen(value);
        if (vlen >= 2 && value[0] == '"' && value[vlen - 1] == '"') {
            value[vlen - 1] = '\0';
            value++;
        }
        /* Known key? flags lists "name" (takes a value) and "name?"
         * (a switch: true/false). */
        bool known = false, is_switch = false;
        for (const char *const *k = flags; *k; k++) {
            size_t n = strlen(*k);
            bool sw = (*k)[n - 1] == '?';
            if (strlen(key) == n - sw && strncmp(key, *k, n - sw) == 0) {
                known = true;
                is_switch = sw;
                break;
            }
        }
        if (!known) {
            rc = xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                           "%s:%d: unknown key '%.64s'", path, lineno, key);
            break;
        }
        char flag[96];
        snprintf(flag, sizeof flag, "--%s", key);
        if (is_switch) {
            if (strcmp(value, "true") == 0 || strcmp(value, "yes") == 0 ||
                strcmp(value, "1") == 0) {
                s_push(&argv, &argc, flag);
            } else if (strcmp(value, "false") != 0 &&
                       strcmp(value, "no") != 0 && strcmp(value, "0") != 0) {
                rc = xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                               "%s:%d: '%s' is true or false", path, lineno,
                               key);
            }
            continue;
        }
        s_push(&argv, &argc, flag);
        s_push(&argv, &argc, value);
    }
    free(line);
    fclose(f);
    if (rc != 0) {
        xp__config_free(argv, argc);
        return -1;
    }
    *argv_out = argv;
    *argc_out = argc;
    return 0;
}

void xp__config_free(char **argv, int argc)
{
    for (int i = 0; i < argc; i++)
        bson_free(argv[i]);
    bson_free(argv);
}

int xp__config_main(const char *program, const char *env_var,
                    const char *const *flags, int argc, char **argv,
                    int (*main_fn)(int argc, char **argv))
{
    /* The file: --config FILE on the command line, else $env_var. */
    const char *path = getenv(env_var);
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "%s: --config needs a file\n", program);
                return 2;
            }
            path = argv[i + 1];
        }
    char **file = NULL;
    int n_file = 0;
    xp_error_t err;
    if (path && *path &&
        xp__config_read(path, flags, &file, &n_file, &err) != 0) {
        fprintf(stderr, "%s: %s\n", program, err.message);
        return 2;
    }
    /* argv[0], the file's options, then the command line without
     * --config FILE. */
    char **all = bson_malloc0((size_t)(argc + n_file + 1) * sizeof *all);
    int n = 0;
    all[n++] = argv[0];
    for (int i = 0; i < n_file; i++)
        all[n++] = file[i];
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0) {
            i++;
            continue;
        }
        all[n++] = argv[i];
    }
    all[n] = NULL;
    int rc = main_fn(n, all);
    bson_free(all);
    xp__config_free(file, n_file);
    return rc;
}
