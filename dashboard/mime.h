/* mime.h — the content types of the dashboard's static files by name,
 * shared by the embedding tool (embed.c, at build time) and the server's
 * --web-dir mode, so that both serve a file with the same type. */
#ifndef XPD_MIME_H
#define XPD_MIME_H

#include <string.h>

/* The content type for file name, or NULL when the extension is not one
 * the dashboard serves. Static string. */
static inline const char *xpd_mime_type(const char *name)
{
    static const char *const table[][2] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".json", "application/json; charset=utf-8"},
        {".map", "application/json; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".txt", "text/plain; charset=utf-8"},
        {".woff2", "font/woff2"},
    };
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof table / sizeof table[0]; i++)
        if (strcmp(dot, table[i][0]) == 0)
            return table[i][1];
    return NULL;
}

#endif /* XPD_MIME_H */
