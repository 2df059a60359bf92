/* util/uri.c — backend URIs: their scheme and the password in their
 * userinfo, which never reaches a log or an error. */
#include "util/uri.h"

#include <bson/bson.h>
#include <string.h>

/* The scheme of a URI ("mongodb" for "mongodb://h/db"), or NULL for a
 * plain path. */
char *xp__uri_scheme(const char *spec)
{
    const char *sep = strstr(spec, "://");
    if (!sep)
        return NULL;
    for (const char *p = spec; p < sep; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || *p == '+' || *p == '-' || *p == '.'))
            return NULL;
    return bson_strndup(spec, (size_t)(sep - spec));
}

const char *xp__uri_password(const char *uri, size_t *len)
{
    const char *sep = strstr(uri, "://");
    const char *start = sep ? sep + 3 : uri;
    /* userinfo ends at the last '@' before the path */
    const char *end = start + strcspn(start, "/?");
    const char *at = NULL;
    for (const char *p = start; p < end; p++)
        if (*p == '@')
            at = p;
    if (!at)
        return NULL;
    const char *colon = memchr(start, ':', (size_t)(at - start));
    if (!colon)
        return NULL;
    *len = (size_t)(at - colon - 1);
    return colon + 1;
}

char *xp__uri_mask(const char *uri)
{
    size_t len;
    const char *pw = xp__uri_password(uri, &len);
    if (!pw)
        return bson_strdup(uri);
    return bson_strdup_printf("%.*s***%s", (int)(pw - uri), uri, pw + len);
}
