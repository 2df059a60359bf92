/* command/template.c — expanding `{name}` and `{step/file}` placeholders;
 * one walker both checks a template when the file is loaded and renders
 * it when the step runs. */
#include "command/template.h"

#include "util/error.h"
#include "util/names.h"

#include <string.h>

static bool s_file_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
}

/* The placeholder starting after '{' at p: its length up to '}' into
 * *len; 0 or -1 with err. */
static int s_placeholder(const char *text, const char *p, char *name,
                         char *file, size_t *len, xp_error_t *err)
{
    const char *close = strchr(p, '}');
    size_t at = (size_t)(p - text);
    if (!close)
        return xp__error(err, XP_DOMAIN_GRAPH, XP_EINVAL,
                         "'{' at character %zu is not closed (write {{ for "
                         "a literal brace)",
                         at);
    *len = (size_t)(close - p);
    const char *slash = memchr(p, '/', *len);
    size_t name_len = slash ? (size_t)(slash - p) : *len;
    size_t file_len = slash ? *len - name_len - 1 : 0;
    if (name_len == 0 || name_len > XP_NAME_MAX)
        return xp__error(err, XP_DOMAIN_GRAPH, XP_EINVAL,
                         "placeholder at character %zu has no valid name", at);
    memcpy(name, p, name_len);
    name[name_len] = '\0';
    xp_error_t e;
    if (xp_check_name("placeholder", name, &e) != 0)
        return xp__error(err, XP_DOMAIN_GRAPH, XP_EINVAL, "%s", e.message);
    file[0] = '\0';
    if (slash) {
        if (file_len == 0 || file_len > XP_NAME_MAX || slash[1] == '.')
            return xp__error(err, XP_DOMAIN_GRAPH, XP_EINVAL,
                             "placeholder '%s/...' at character %zu names no "
                             "valid file",
                             name, at);
        for (size_t i = 0; i < file_len; i++)
            if (!s_file_char(slash[1 + i]))
                return xp__error(err, XP_DOMAIN_GRAPH, XP_EINVAL,
                                 "placeholder '%s/...' at character %zu: "
                                 "file names have letters, digits, '_', "
                                 "'-' and '.' only",
                                 name, at);
        memcpy(file, slash + 1, file_len);
        file[file_len] = '\0';
    }
    return 0;
}

int xp__template_expand(const char *text, xp_template_ref_fn ref, void *ctx,
                        bson_string_t *out, xp_error_t *err)
{
    char name[XP_NAME_MAX + 1], file[XP_NAME_MAX + 1];
    const char *p = text;
    while (*p) {
        const char *brace = strpbrk(p, "{}");
        if (!brace) {
            if (out)
                bson_string_append(out, p);
            break;
        }
        if (out && brace > p) {
            char *lit = bson_strndup(p, (size_t)(brace - p));
            bson_string_append(out, lit);
            bson_free(lit);
        }
        if (brace[1] == brace[0]) { /* {{ or }} */
            if (out)
                bson_string_append_c(out, brace[0]);
            p = brace + 2;
            continue;
        }
        if (*brace == '}')
            return xp__error(err, XP_DOMAIN_GRAPH, XP_EINVAL,
                             "'}' at character %zu has no '{' (write }} for "
                             "a literal brace)",
                             (size_t)(brace - text));
        size_t len = 0;
        if (s_placeholder(text, brace + 1, name, file, &len, err) != 0)
            return -1;
        if (ref(ctx, name, file[0] ? file : NULL, out, err) != 0)
            return -1;
        p = brace + 1 + len + 1;
    }
    return 0;
}

void xp__shell_quote(bson_string_t *out, const char *s)
{
    bson_string_append_c(out, '\'');
    for (; *s; s++) {
        if (*s == '\'')
            bson_string_append(out, "'\\''");
        else
            bson_string_append_c(out, *s);
    }
    bson_string_append_c(out, '\'');
}
