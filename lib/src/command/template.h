/* command/template.h — the placeholders of command arguments and
 * environment values: `{name}` (a parameter or an upstream step's
 * output), `{step/file}` (a file that step produced), `{{` and `}}` for
 * literal braces. */
#ifndef XP_COMMAND_TEMPLATE_H
#define XP_COMMAND_TEMPLATE_H

#include "xp/xp.h"

#include <bson/bson.h>

/* Called for each placeholder: name, and file or NULL. With out non-NULL
 * appends the replacement text; returns 0 or -1 with err. */
typedef int (*xp_template_ref_fn)(void *ctx, const char *name, const char *file,
                                  bson_string_t *out, xp_error_t *err);

/* Walks text, calling ref for each placeholder and appending literal
 * text and replacements to out (NULL: checks the syntax and reports the
 * references only). A malformed template is XP_EINVAL saying where. */
int xp__template_expand(const char *text, xp_template_ref_fn ref, void *ctx,
                        bson_string_t *out, xp_error_t *err);

/* Appends s as one single-quoted shell word. */
void xp__shell_quote(bson_string_t *out, const char *s);

#endif /* XP_COMMAND_TEMPLATE_H */
