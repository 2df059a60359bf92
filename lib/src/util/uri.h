/* util/uri.h — backend URIs: their scheme and password. */
#ifndef XP_UTIL_URI_H
#define XP_UTIL_URI_H

#include <stddef.h>

/* The scheme of a URI ("mongodb" for "mongodb://h/db"), or NULL for a
 * plain path. Caller frees. */
char *xp__uri_scheme(const char *spec);
/* The password in a URI's userinfo (not NUL-terminated, *len bytes), or
 * NULL when there is none. */
const char *xp__uri_password(const char *uri, size_t *len);
/* The URI with any password replaced by "***". Caller frees. */
char *xp__uri_mask(const char *uri);

#endif /* XP_UTIL_URI_H */
