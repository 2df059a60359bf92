/* libgit2.c — the git module (libxp-git.so, or linked in): git state of
 * the working directory through libgit2 (repository root, branch or
 * DETACHED, HEAD commit, dirty flag, origin URL with any password masked,
 * the bounded diff of uncommitted changes) and unified diffs of texts.
 * git.c loads it only inside what looks like a repository, or to diff. */
#include "capture/git.h"

#include "util/module.h"
#include "util/uri.h"

#include <git2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XP_GIT_DIFF_MAX (1u << 20)

static int s_count_status(const char *path, unsigned int flags, void *data)
{
    (void)path;
    int *counts = data;
    if (flags & GIT_STATUS_WT_NEW)
        counts[1]++;
    else if (flags != GIT_STATUS_CURRENT && !(flags & GIT_STATUS_IGNORED))
        counts[0]++;
    return 0;
}

static void s_diff(bson_t *doc, git_repository *repo)
{
    git_object *head_tree = NULL;
    git_diff *diff = NULL;
    git_buf buf = {0};
    if (git_revparse_single(&head_tree, repo, "HEAD^{tree}") != 0)
        return;
    git_diff_options opts;
    git_diff_options_init(&opts, GIT_DIFF_OPTIONS_VERSION);
    if (git_diff_tree_to_workdir_with_index(&diff, repo, (git_tree *)head_tree,
                                            &opts) == 0 &&
        git_diff_to_buf(&buf, diff, GIT_DIFF_FORMAT_PATCH) == 0) {
        size_t len = buf.size;
        bool truncated = len > XP_GIT_DIFF_MAX;
        if (truncated)
            len = XP_GIT_DIFF_MAX;
        if (bson_utf8_validate(buf.ptr, len, false))
            bson_append_utf8(doc, "diff", -1, buf.ptr, (int)len);
        else
            BSON_APPEND_UTF8(doc, "diff", "(binary or non-UTF-8 changes)");
        if (truncated)
            BSON_APPEND_BOOL(doc, "diff_truncated", true);
    }
    git_buf_dispose(&buf);
    git_diff_free(diff);
    git_object_free(head_tree);
}

/* The repository fields of doc, after working_dir (git.c's part). */
static void s_capture(bson_t *doc)
{
    git_libgit2_init();
    git_repository *repo = NULL;
    /* As git itself finds it from the working directory: GIT_DIR,
     * GIT_CEILING_DIRECTORIES... (a NULL path is what makes libgit2
     * read them). */
    if (git_repository_open_ext(&repo, NULL, GIT_REPOSITORY_OPEN_FROM_ENV,
                                NULL) != 0) {
        BSON_APPEND_BOOL(doc, "repository", false);
        git_libgit2_shutdown();
        return;
    }
    BSON_APPEND_BOOL(doc, "repository", true);
    const char *workdir = git_repository_workdir(repo);
    BSON_APPEND_UTF8(doc, "root",
                     workdir ? workdir : git_repository_path(repo));
    git_reference *head = NULL;
    int head_rc = git_repository_head(&head, repo);
    if (head_rc == 0) {
        if (git_repository_head_detached(repo) == 1)
            BSON_APPEND_UTF8(doc, "branch", "DETACHED");
        else
            BSON_APPEND_UTF8(doc, "branch", git_reference_shorthand(head));
        const git_oid *oid = git_reference_target(head);
        char hex[GIT_OID_HEXSZ + 1] = "";
        if (oid)
            git_oid_tostr(hex, sizeof hex, oid);
        BSON_APPEND_UTF8(doc, "commit", hex);
    } else if (head_rc == GIT_EUNBORNBRANCH) {
        BSON_APPEND_UTF8(doc, "branch", "(no commits)");
        BSON_APPEND_UTF8(doc, "commit", "");
    }
    git_reference_free(head);
    int counts[2] = {0, 0};
    git_status_foreach(repo, s_count_status, counts);
    BSON_APPEND_BOOL(doc, "dirty", counts[0] > 0);
    BSON_APPEND_INT32(doc, "modified_files", counts[0]);
    BSON_APPEND_INT32(doc, "untracked_files", counts[1]);
    git_remote *origin = NULL;
    if (git_remote_lookup(&origin, repo, "origin") == 0 &&
        git_remote_url(origin)) {
        char *masked = xp__uri_mask(git_remote_url(origin));
        BSON_APPEND_UTF8(doc, "remote_url", masked);
        bson_free(masked);
    }
    git_remote_free(origin);
    if (head_rc == 0)
        s_diff(doc, repo);
    git_repository_free(repo);
    git_libgit2_shutdown();
}

typedef struct {
    char **lines;
    size_t n, cap;
} s_lines;

/* Takes ownership of text; strips the line end. */
static void s_push_line(s_lines *out, char *text)
{
    size_t n = strlen(text);
    while (n && (text[n - 1] == '\n' || text[n - 1] == '\r'))
        text[--n] = '\0';
    if (out->n == out->cap) {
        out->cap = out->cap ? out->cap * 2 : 16;
        out->lines = bson_realloc(out->lines, out->cap * sizeof *out->lines);
    }
    out->lines[out->n++] = text;
}

static int s_line_cb(const git_diff_delta *delta, const git_diff_hunk *hunk,
                     const git_diff_line *line, void *payload)
{
    (void)delta;
    (void)hunk;
    if (line->origin != GIT_DIFF_LINE_CONTEXT &&
        line->origin != GIT_DIFF_LINE_ADDITION &&
        line->origin != GIT_DIFF_LINE_DELETION)
        return 0;
    s_push_line(payload,
                bson_strdup_printf("%c%.*s", line->origin,
                                   (int)line->content_len, line->content));
    return 0;
}

static int s_hunk_cb(const git_diff_delta *delta, const git_diff_hunk *hunk,
                     void *payload)
{
    (void)delta;
    s_push_line(payload, bson_strndup(hunk->header, hunk->header_len));
    return 0;
}

static char **s_unified_diff(const char *old_text, const char *new_text,
                             const char *old_name, const char *new_name,
                             size_t *n)
{
    s_lines out = {0};
    git_libgit2_init();
    git_diff_options opts;
    git_diff_options_init(&opts, GIT_DIFF_OPTIONS_VERSION);
    opts.context_lines = 3;
    git_diff_buffers(old_text, old_text ? strlen(old_text) : 0, old_name,
                     new_text, new_text ? strlen(new_text) : 0, new_name, &opts,
                     NULL, NULL, s_hunk_cb, s_line_cb, &out);
    git_libgit2_shutdown();
    *n = out.n;
    return out.lines;
}

static const xp_git_module s_ops = {s_capture, s_unified_diff};

const xp_module xp__module_git = {"git", XP_VERSION_STRING, XP_MODULE_ABI,
                                  &s_ops};
