/* git.c — how a trial reaches git: the working directory, and the git
 * module (libgit2.c) only where the directory looks like a repository,
 * so that a trial outside one never loads libgit2; unified diffs through
 * the module, or whole-text ones when it is not installed. */
#include "capture/git.h"

#include "util/log.h"
#include "util/module.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Whether path[0..len) + entry exists (and has the given type, if any). */
static bool s_has(char *path, size_t len, const char *entry, mode_t type)
{
    struct stat st;
    snprintf(path + len, PATH_MAX - len, "%s", entry);
    bool ok = stat(path, &st) == 0 && (!type || (st.st_mode & S_IFMT) == type);
    path[len] = '\0';
    return ok;
}

/* Whether dir or one of its parents looks like a repository (a .git
 * entry, or a bare repository's HEAD + objects), or GIT_DIR is set:
 * outside one, libgit2 is not even initialised (its start-up alone
 * costs milliseconds). A superset of what libgit2 would discover. */
static bool s_maybe_repository(const char *dir)
{
    const char *git_dir = getenv("GIT_DIR");
    size_t len = strlen(dir);
    if ((git_dir && *git_dir) || dir[0] != '/' || len >= PATH_MAX - 16)
        return true; /* let libgit2 decide */
    char path[PATH_MAX];
    memcpy(path, dir, len + 1);
    while (len > 0 && path[len - 1] == '/')
        len--;
    for (;;) { /* path[0..len) is a directory; "" is the root */
        if (s_has(path, len, "/.git", 0) ||
            (s_has(path, len, "/HEAD", S_IFREG) &&
             s_has(path, len, "/objects", S_IFDIR)))
            return true;
        if (len == 0)
            return false;
        while (len > 0 && path[len - 1] != '/')
            len--;
        while (len > 0 && path[len - 1] == '/')
            len--;
    }
}

void xp__git_capture(bson_t *doc)
{
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd))
        strcpy(cwd, ".");
    BSON_APPEND_UTF8(doc, "working_dir", cwd);
    if (!s_maybe_repository(cwd)) {
        BSON_APPEND_BOOL(doc, "repository", false);
        return;
    }
    xp_error_t err;
    const xp_git_module *git = xp__module_ops("git", "git support", &err);
    if (!git) {
        xp__log(XP_LOG_WARNING, "%s", err.message);
        BSON_APPEND_BOOL(doc, "repository", false);
        BSON_APPEND_UTF8(doc, "unavailable", err.message);
        return;
    }
    git->capture(doc);
}

/* Every old line removed, every new one added: a correct unified diff,
 * if not the shortest, for when the git module is not installed. */
static char **s_whole_diff(const char *old_text, const char *new_text,
                           size_t *n)
{
    size_t cap = 16, count = 0, n_old = 0, n_new = 0;
    char **lines = bson_malloc(cap * sizeof *lines);
    lines[count++] = NULL; /* the hunk header, once the counts are known */
    const char *texts[2] = {old_text ? old_text : "", new_text ? new_text : ""};
    for (int t = 0; t < 2; t++) {
        for (const char *p = texts[t]; *p;) {
            const char *nl = strchr(p, '\n');
            size_t len = nl ? (size_t)(nl - p) : strlen(p);
            if (count == cap) {
                cap *= 2;
                lines = bson_realloc(lines, cap * sizeof *lines);
            }
            lines[count++] =
                bson_strdup_printf("%c%.*s", t ? '+' : '-', (int)len, p);
            *(t ? &n_new : &n_old) += 1;
            p = nl ? nl + 1 : p + len;
        }
    }
    lines[0] = bson_strdup_printf("@@ -%d,%zu +%d,%zu @@", n_old ? 1 : 0, n_old,
                                  n_new ? 1 : 0, n_new);
    *n = count;
    return lines;
}

char **xp__unified_diff(const char *old_text, const char *new_text,
                        const char *old_name, const char *new_name, size_t *n)
{
    *n = 0;
    const xp_git_module *git = xp__module_ops("git", "git support", NULL);
    if (!git)
        return s_whole_diff(old_text, new_text, n);
    return git->unified_diff(old_text, new_text, old_name, new_name, n);
}

void xp__lines_free(char **lines, size_t n)
{
    for (size_t i = 0; i < n; i++)
        bson_free(lines[i]);
    bson_free(lines);
}
