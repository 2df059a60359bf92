/* assets.c — finding a static file by its URL name: in the table built
 * into the binary, or (--web-dir) in one directory, opened relative to it
 * without following symbolic links, so no name leaves it. */
#include "assets.h"

#include "mime.h"
#include "util/error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

/* Largest file --web-dir serves. */
#define S_WEB_FILE_MAX (16u << 20)
#define S_NAME_MAX 128

struct xpd_assets {
    int dir_fd; /* the --web-dir directory, or -1 */
};

/* What xpd_asset_ref.owned points to: the ETag, then the bytes. */
typedef struct {
    char etag[24];
    unsigned char data[];
} s_owned;

int xpd_assets_open(xpd_assets **out, const char *web_dir, xp_error_t *err)
{
    *out = NULL;
    int fd = -1;
    if (web_dir) {
        fd = open(web_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
            return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                             "--web-dir %s: %s", web_dir, strerror(errno));
    }
    xpd_assets *a = calloc(1, sizeof *a);
    if (!a) {
        if (fd >= 0)
            close(fd);
        return xp__enomem(err);
    }
    a->dir_fd = fd;
    *out = a;
    return 0;
}

void xpd_assets_destroy(xpd_assets **pa)
{
    if (!pa || !*pa)
        return;
    if ((*pa)->dir_fd >= 0)
        close((*pa)->dir_fd);
    free(*pa);
    *pa = NULL;
}

/* One level, URL-safe, not hidden: the only names ever looked up. */
static bool s_valid_name(const char *name)
{
    size_t n = strlen(name);
    return n > 0 && n <= S_NAME_MAX && name[0] != '.' &&
           strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                        "0123456789._-") == n &&
           !strstr(name, "..");
}

static const xpd_asset *s_embedded(const char *name)
{
    size_t lo = 0, hi = xpd_embedded_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, xpd_embedded_assets[mid].name);
        if (c == 0)
            return &xpd_embedded_assets[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* Reads name from the web directory; false when it is not a regular file
 * there (a symbolic link is not followed). */
static bool s_from_dir(xpd_assets *a, const char *name, xpd_asset_ref *out)
{
    const char *type = xpd_mime_type(name);
    int fd = type ? openat(a->dir_fd, name,
                           O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
                  : -1;
    if (fd < 0)
        return false;
    struct stat sb;
    s_owned *o = NULL;
    ssize_t got = -1;
    if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size >= 0 &&
        sb.st_size <= (off_t)S_WEB_FILE_MAX &&
        (o = malloc(sizeof *o + (size_t)sb.st_size + 1)) != NULL)
        got = read(fd, o->data, (size_t)sb.st_size + 1);
    close(fd);
    if (got < 0 || got > sb.st_size) { /* grew while read: try again later */
        free(o);
        return false;
    }
    snprintf(o->etag, sizeof o->etag, "\"%016llx\"",
             (unsigned long long)XXH3_64bits(o->data, (size_t)got));
    out->owned = o;
    out->file = (xpd_asset){name, type, o->data, (size_t)got, o->etag};
    return true;
}

bool xpd_assets_find(xpd_assets *a, const char *name, xpd_asset_ref *out)
{
    out->owned = NULL;
    if (!s_valid_name(name))
        return false;
    if (a->dir_fd >= 0 && s_from_dir(a, name, out))
        return true;
    const xpd_asset *e = s_embedded(name);
    if (!e)
        return false;
    out->file = *e;
    return true;
}

void xpd_asset_free(xpd_asset_ref *ref)
{
    free(ref->owned);
    ref->owned = NULL;
}
