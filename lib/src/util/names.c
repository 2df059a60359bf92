/* util/names.c — validation of experiment ids and of parameter, step and
 * metric names: the one rule every store, message and file path relies on. */
#include "util/names.h"

#include "util/error.h"

#include <stdio.h>
#include <string.h>

static int s_check(const char *kind, const char *name, size_t max,
                   xp_error_t *err)
{
    if (!name || !*name)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL, "%s name is empty",
                         kind);
    size_t len = strnlen(name, max + 1);
    if (len > max)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "%s name is longer than %zu characters", kind, max);
    if (name[0] == '-')
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "invalid %s name '%s': must not start with '-'", kind,
                         name);
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '-')) {
            /* The name may be hostile: show it with bytes outside
             * printable ASCII escaped. */
            char shown[4 * 64 + 4];
            size_t k = 0;
            for (size_t j = 0; j < len && k + 5 < sizeof shown; j++) {
                unsigned char b = (unsigned char)name[j];
                if (b >= 0x20 && b < 0x7f && b != '\\')
                    shown[k++] = (char)b;
                else
                    k += (size_t)snprintf(shown + k, sizeof shown - k,
                                          "\\x%02x", b);
            }
            shown[k] = '\0';
            return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                             "invalid %s name '%s': only letters, digits, "
                             "'_' and '-' are allowed (character %zu)",
                             kind, shown, i + 1);
        }
    }
    return 0;
}

int xp_check_id(const char *id, xp_error_t *err)
{
    return s_check("experiment", id, XP_ID_MAX, err);
}

int xp_check_name(const char *kind, const char *name, xp_error_t *err)
{
    return s_check(kind ? kind : "", name, XP_NAME_MAX, err);
}
