/* capture/git.h — git state of the working directory (libgit2, through
 * the git module) and unified diffs of text. */
#ifndef XP_CAPTURE_GIT_H
#define XP_CAPTURE_GIT_H

#include <bson/bson.h>
#include <stddef.h>

/* Appends the repository, branch, HEAD commit, dirty flag and diff of the
 * working directory's repository to doc (nothing outside one). */
void xp__git_capture(bson_t *doc);
/* Unified diff lines (hunk headers, ' ', '+', '-' lines) from old to new.
 * Caller frees with xp__lines_free. */
char **xp__unified_diff(const char *old_text, const char *new_text,
                        const char *old_name, const char *new_name, size_t *n);
void xp__lines_free(char **lines, size_t n);

/* The git module (libgit2.c, libxp-git.so): capture appends the fields
 * after working_dir, for a directory that may be in a repository;
 * unified_diff is xp__unified_diff's. */
typedef struct {
    void (*capture)(bson_t *doc);
    char **(*unified_diff)(const char *old_text, const char *new_text,
                           const char *old_name, const char *new_name,
                           size_t *n);
} xp_git_module;

#endif /* XP_CAPTURE_GIT_H */
