/* error.c — the xp_error_t setter and code names.
 * Library code never prints its errors; it fills an xp_error_t and returns
 * -1 so the caller decides what a user sees. */
#include "util/error.h"

#include <bson/bson.h>
#include <stdio.h>
#include <string.h>

int xp__verror(xp_error_t *err, uint32_t domain, uint32_t code, const char *fmt,
               va_list ap)
{
    if (err) {
        err->domain = domain;
        err->code = code;
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        /* Errors are one line: fold any newline a message carried in. */
        for (char *p = err->message; *p; p++)
            if (*p == '\n' || *p == '\r')
                *p = ' ';
    }
    return -1;
}

int xp__error(xp_error_t *err, uint32_t domain, uint32_t code, const char *fmt,
              ...)
{
    va_list ap;
    va_start(ap, fmt);
    xp__verror(err, domain, code, fmt, ap);
    va_end(ap);
    return -1;
}

int xp__enomem(xp_error_t *err)
{
    return xp__error(err, XP_DOMAIN_SYSTEM, XP_ENOMEM, "out of memory");
}

void xp__error_clear(xp_error_t *err)
{
    if (err) {
        err->domain = XP_DOMAIN_NONE;
        err->code = XP_OK;
        err->message[0] = '\0';
    }
}

const char *xp_strerror(uint32_t code)
{
    switch (code) {
    case XP_OK: return "success";
    case XP_EINVAL: return "invalid argument";
    case XP_ENOTFOUND: return "not found";
    case XP_EEXIST: return "already exists";
    case XP_ESTATE: return "not allowed in this state";
    case XP_ESTEP: return "step failed";
    case XP_ECORRUPT: return "stored data is damaged or foreign";
    case XP_EIO: return "input/output error";
    case XP_ENOMEM: return "out of memory";
    case XP_EUNDEFINED: return "undefined parameter";
    default: return "unknown error";
    }
}

void xp_free(void *p)
{
    bson_free(p);
}
