/* auth.c — the --auth file and the credential check. A check runs
 * crypt_rn over the stored hash (a dummy one for an unknown user, so that
 * the time taken does not tell users apart) and compares in constant
 * time; a success is remembered for a while as a BLAKE2b digest of
 * (user, password) under a random key, never as the password. */
#include "auth.h"

#include "util/error.h"

#include <crypt.h>
#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_USERS_MAX 10000
#define S_LINE_MAX 1024
#define S_PASSWORD_MAX 1024
/* Remembered successes: a direct-mapped table, each kept this long. */
#define S_CACHE_SLOTS 256
#define S_CACHE_SECONDS 600

typedef struct {
    char *user;
    char *hash;
} s_user;

typedef struct {
    unsigned char digest[crypto_generichash_BYTES];
    time_t until; /* 0: empty */
} s_slot;

struct xpd_auth {
    s_user *users;
    size_t n;
    char *dummy; /* hash checked for an unknown user */
    unsigned char key[crypto_generichash_KEYBYTES];
    pthread_mutex_t lock;
    s_slot cache[S_CACHE_SLOTS];
};

/* The prefixes of the hashes accepted: yescrypt, gost-yescrypt, scrypt,
 * sha512-crypt, sha256-crypt, bcrypt. DES and MD5 hashes are refused. */
static bool s_strong_hash(const char *h)
{
    static const char *const prefixes[] = {"$y$", "$gy$", "$7$", "$6$",
                                           "$5$", "$2b$", "$2y$"};
    for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++)
        if (strncmp(h, prefixes[i], strlen(prefixes[i])) == 0)
            return true;
    return false;
}

static char *s_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

/* One line of the file (without its newline) into a. */
static int s_line(xpd_auth *a, char *line, const char *path, int lineno,
                  xp_error_t *err)
{
    line[strcspn(line, "\r")] = '\0';
    if (line[0] == '\0' || line[0] == '#')
        return 0;
    char *colon = strchr(line, ':');
    if (!colon || colon == line)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "%s:%d: expected user:HASH", path, lineno);
    *colon = '\0';
    const char *hash = colon + 1;
    if (!s_strong_hash(hash))
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "%s:%d: the hash of '%s' is not a yescrypt ($y$), "
                         "sha512-crypt ($6$) or bcrypt ($2b$) hash (make one "
                         "with xp-dashboard --hash-password)",
                         path, lineno, line);
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->users[i].user, line) == 0)
            return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                             "%s:%d: user '%s' appears twice", path, lineno,
                             line);
    if (a->n == S_USERS_MAX)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "%s: more than %d users", path, S_USERS_MAX);
    s_user *grown = realloc(a->users, (a->n + 1) * sizeof *grown);
    if (!grown)
        return xp__enomem(err);
    a->users = grown;
    s_user *u = &a->users[a->n];
    u->user = s_strdup(line);
    u->hash = s_strdup(hash);
    if (!u->user || !u->hash) {
        free(u->user);
        free(u->hash);
        return xp__enomem(err);
    }
    a->n++;
    return 0;
}

static int s_read_file(xpd_auth *a, const char *path, xp_error_t *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL, "--auth %s: %s",
                         path, strerror(errno));
    char line[S_LINE_MAX + 2];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        size_t len = strlen(line);
        if (len > S_LINE_MAX && line[len - 1] != '\n') {
            rc = xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                           "%s:%d: line longer than %d bytes", path, lineno,
                           S_LINE_MAX);
        } else {
            line[strcspn(line, "\n")] = '\0';
            rc = s_line(a, line, path, lineno, err);
        }
    }
    if (rc == 0 && ferror(f))
        rc = xp__error(err, XP_DOMAIN_ARGUMENT, XP_EIO, "--auth %s: %s", path,
                       strerror(errno));
    fclose(f);
    if (rc == 0 && a->n == 0)
        rc = xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                       "--auth %s: no user:HASH line", path);
    return rc;
}

int xpd_auth_load(xpd_auth **out, const char *path, xp_error_t *err)
{
    *out = NULL;
    if (sodium_init() < 0)
        return xp__error(err, XP_DOMAIN_SYSTEM, XP_EIO,
                         "libsodium cannot start");
    xpd_auth *a = calloc(1, sizeof *a);
    if (!a)
        return xp__enomem(err);
    pthread_mutex_init(&a->lock, NULL);
    randombytes_buf(a->key, sizeof a->key);
    /* An unknown user costs a check like a known one. */
    unsigned char junk[16];
    randombytes_buf(junk, sizeof junk);
    char hex[sizeof junk * 2 + 1];
    sodium_bin2hex(hex, sizeof hex, junk, sizeof junk);
    int rc = s_read_file(a, path, err);
    if (rc == 0)
        rc = xpd_auth_hash(hex, &a->dummy, err);
    if (rc != 0) {
        xpd_auth_destroy(&a);
        return -1;
    }
    *out = a;
    return 0;
}

void xpd_auth_destroy(xpd_auth **pa)
{
    if (!pa || !*pa)
        return;
    xpd_auth *a = *pa;
    for (size_t i = 0; i < a->n; i++) {
        sodium_memzero(a->users[i].hash, strlen(a->users[i].hash));
        free(a->users[i].user);
        free(a->users[i].hash);
    }
    free(a->users);
    free(a->dummy);
    pthread_mutex_destroy(&a->lock);
    sodium_memzero(a, sizeof *a);
    free(a);
    *pa = NULL;
}

/* The keyed digest that stands for (user, password) in the cache. */
static void s_digest(const xpd_auth *a, const char *user, const char *password,
                     unsigned char out[crypto_generichash_BYTES])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, a->key, sizeof a->key,
                            crypto_generichash_BYTES);
    crypto_generichash_update(&st, (const unsigned char *)user,
                              strlen(user) + 1);
    crypto_generichash_update(&st, (const unsigned char *)password,
                              strlen(password));
    crypto_generichash_final(&st, out, crypto_generichash_BYTES);
}

static bool s_cached(xpd_auth *a, const unsigned char *digest, time_t now)
{
    pthread_mutex_lock(&a->lock);
    const s_slot *s = &a->cache[digest[0] % S_CACHE_SLOTS];
    bool hit = s->until > now &&
               sodium_memcmp(s->digest, digest, crypto_generichash_BYTES) == 0;
    pthread_mutex_unlock(&a->lock);
    return hit;
}

static void s_remember(xpd_auth *a, const unsigned char *digest, time_t now)
{
    pthread_mutex_lock(&a->lock);
    s_slot *s = &a->cache[digest[0] % S_CACHE_SLOTS];
    memcpy(s->digest, digest, crypto_generichash_BYTES);
    s->until = now + S_CACHE_SECONDS;
    pthread_mutex_unlock(&a->lock);
}

/* crypt_rn of password with hash as setting equals hash, in constant
 * time. */
static bool s_crypt_matches(const char *password, const char *hash)
{
    struct crypt_data *data = calloc(1, sizeof *data);
    if (!data)
        return false;
    const char *got = crypt_rn(password, hash, data, (int)sizeof *data);
    size_t n = strlen(hash);
    bool ok = got && got[0] != '*' && strlen(got) == n &&
              sodium_memcmp(got, hash, n) == 0;
    sodium_memzero(data, sizeof *data);
    free(data);
    return ok;
}

bool xpd_auth_check(xpd_auth *a, const char *user, const char *password)
{
    if (!a || !user || !password || strlen(password) > S_PASSWORD_MAX)
        return false;
    unsigned char digest[crypto_generichash_BYTES];
    s_digest(a, user, password, digest);
    time_t now = time(NULL);
    if (s_cached(a, digest, now))
        return true;
    const char *hash = a->dummy;
    bool known = false;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->users[i].user, user) == 0) {
            hash = a->users[i].hash;
            known = true;
        }
    bool ok = s_crypt_matches(password, hash) && known;
    if (ok)
        s_remember(a, digest, now);
    return ok;
}

int xpd_auth_hash(const char *password, char **out, xp_error_t *err)
{
    *out = NULL;
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    if (!crypt_gensalt_rn("$y$", 0, NULL, 0, salt, (int)sizeof salt))
        return xp__error(err, XP_DOMAIN_SYSTEM, XP_EIO,
                         "cannot make a yescrypt salt: %s", strerror(errno));
    struct crypt_data *data = calloc(1, sizeof *data);
    if (!data)
        return xp__enomem(err);
    const char *h = crypt_rn(password, salt, data, (int)sizeof *data);
    int rc = 0;
    if (!h || h[0] == '*')
        rc = xp__error(err, XP_DOMAIN_SYSTEM, XP_EIO, "yescrypt failed: %s",
                       strerror(errno));
    else if (!(*out = s_strdup(h)))
        rc = xp__enomem(err);
    sodium_memzero(data, sizeof *data);
    free(data);
    return rc;
}
