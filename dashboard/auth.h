/* auth.h — HTTP Basic credentials for xp-dashboard: an --auth file of
 * `user:HASH` lines (crypt(3) yescrypt, sha512-crypt or bcrypt hashes),
 * checked in constant time, successful checks remembered under a keyed
 * hash so that a page's many requests do not each pay for yescrypt; and
 * making a hash for --hash-password. */
#ifndef XPD_AUTH_H
#define XPD_AUTH_H

#include <xp/xp.h>

#include <stdbool.h>

typedef struct xpd_auth xpd_auth;

/* Reads the auth file at path; a bad line is a one-line error naming the
 * file and line. Caller owns *out. */
int xpd_auth_load(xpd_auth **out, const char *path, xp_error_t *err);
/* NULL-safe; sets *a to NULL. */
void xpd_auth_destroy(xpd_auth **a);
/* True when user and password match a line of the file. Thread-safe. */
bool xpd_auth_check(xpd_auth *a, const char *user, const char *password);
/* A new yescrypt hash of password. Caller frees *out (free). */
int xpd_auth_hash(const char *password, char **out, xp_error_t *err);

#endif /* XPD_AUTH_H */
