/* util/render.c — a BSON document as lines of text: one `key: value` line
 * per scalar, dotted keys for nesting, so that two renderings diff line by
 * line. */
#include "util/render.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void xp__double_text(double d, char *buf)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, 40, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    if (!strpbrk(buf, ".eEn"))
        strcat(buf, ".0");
}

static void s_render_value(bson_string_t *s, const char *prefix,
                           const bson_iter_t *it);

/* A scalar through libbson's relaxed JSON: `{ "v" : X }` -> X. */
static void s_render_leaf(bson_string_t *s, const char *prefix,
                          const bson_iter_t *it)
{
    bson_t one = BSON_INITIALIZER;
    bson_append_iter(&one, "v", 1, it);
    char *json = bson_as_relaxed_extended_json(&one, NULL);
    const char *x = json ? strstr(json, ": ") : NULL;
    size_t n = x ? strlen(x + 2) : 0;
    bson_string_append_printf(s, "%s: %.*s\n", prefix,
                              n >= 2 ? (int)(n - 2) : 0, x ? x + 2 : "");
    bson_free(json);
    bson_destroy(&one);
}

static void s_render_doc(bson_string_t *s, const char *prefix,
                         const bson_iter_t *parent, bool is_array)
{
    bson_iter_t child;
    if (!bson_iter_recurse(parent, &child))
        return;
    while (bson_iter_next(&child)) {
        if (is_array) {
            s_render_value(s, prefix, &child);
        } else {
            char *key = prefix[0] ? bson_strdup_printf("%s.%s", prefix,
                                                       bson_iter_key(&child))
                                  : bson_strdup(bson_iter_key(&child));
            s_render_value(s, key, &child);
            bson_free(key);
        }
    }
}

/* One line per scalar (`key: value`); array items repeat the key, so a
 * package list diffs line by line; multi-line strings are indented. */
static void s_render_value(bson_string_t *s, const char *prefix,
                           const bson_iter_t *it)
{
    switch (bson_iter_type(it)) {
    case BSON_TYPE_DOCUMENT:
        if (prefix[0] && strchr(prefix, '[') == NULL &&
            bson_iter_key(it)[0] >= '0' && bson_iter_key(it)[0] <= '9') {
            /* array of documents: one line per element */
            bson_iter_t child;
            bson_string_append_printf(s, "%s:", prefix);
            if (bson_iter_recurse(it, &child))
                while (bson_iter_next(&child)) {
                    char *text = NULL;
                    if (BSON_ITER_HOLDS_UTF8(&child))
                        text = bson_strdup(bson_iter_utf8(&child, NULL));
                    else {
                        bson_t one = BSON_INITIALIZER;
                        bson_append_iter(&one, "v", 1, &child);
                        text = bson_as_relaxed_extended_json(&one, NULL);
                        bson_destroy(&one);
                    }
                    bson_string_append_printf(s, " %s=%s",
                                              bson_iter_key(&child), text);
                    bson_free(text);
                }
            bson_string_append(s, "\n");
            return;
        }
        s_render_doc(s, prefix, it, false);
        return;
    case BSON_TYPE_ARRAY: s_render_doc(s, prefix, it, true); return;
    case BSON_TYPE_DOUBLE:
        if (isfinite(bson_iter_double(it))) {
            char buf[40];
            xp__double_text(bson_iter_double(it), buf);
            bson_string_append_printf(s, "%s: %s\n", prefix, buf);
        } else {
            s_render_leaf(s, prefix, it);
        }
        return;
    case BSON_TYPE_UTF8: {
        const char *v = bson_iter_utf8(it, NULL);
        if (strchr(v, '\n')) {
            bson_string_append_printf(s, "%s: |\n", prefix);
            const char *line = v;
            while (*line) {
                const char *end = strchr(line, '\n');
                size_t n = end ? (size_t)(end - line) : strlen(line);
                bson_string_append_printf(s, "    %.*s\n", (int)n, line);
                line += n + (end ? 1 : 0);
            }
        } else {
            bson_string_append_printf(s, "%s: %s\n", prefix, v);
        }
        return;
    }
    default: s_render_leaf(s, prefix, it); return;
    }
}

char *xp__render_text(const bson_t *doc)
{
    bson_string_t *s = bson_string_new(NULL);
    bson_iter_t it;
    if (bson_iter_init(&it, doc))
        while (bson_iter_next(&it))
            s_render_value(s, bson_iter_key(&it), &it);
    return bson_string_free(s, false);
}
