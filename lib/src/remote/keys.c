/* keys.c — CURVE key pairs (czmq certificates) for the scheduler, its
 * workers and its clients: `xp keygen` writes NAME.key (public) and
 * NAME.key_secret (mode 0600); a worker or client names its own pair and
 * the scheduler's public key; the scheduler accepts only the public keys
 * found in its authorized directory (see docs/protocol.md). */
#include "remote/keys.h"

#include "util/error.h"
#include "util/sys.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

/* 32 zero bytes in Z85: what a certificate holds without its secret. */
static const char s_no_secret[] = "0000000000000000000000000000000000000000";

/* Loads the pair named by path (NAME.key or NAME.key_secret). */
static zcert_t *s_load_pair(const char *path, bool need_secret, xp_error_t *err)
{
    char *pub = bson_strdup(path);
    size_t n = strlen(pub);
    if (n > 7 && strcmp(pub + n - 7, "_secret") == 0)
        pub[n - 7] = '\0';
    zcert_t *cert = NULL;
    if (access(pub, R_OK) != 0) {
        xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL, "cannot read key %s: %s",
                  pub, strerror(errno));
    } else if ((cert = zcert_load(pub)) == NULL) {
        xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                  "%s is not a key file (make one with `xp keygen`)", pub);
    } else if (need_secret &&
               strcmp(zcert_secret_txt(cert), s_no_secret) == 0) {
        xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                  "no secret key beside %s (%s_secret)", pub, pub);
        zcert_destroy(&cert);
    }
    bson_free(pub);
    return cert;
}

int xp__keys_client(zsock_t *sock, const char *key, const char *server_key,
                    xp_error_t *err)
{
    bool has_key = key && *key, has_server = server_key && *server_key;
    if (!has_key && !has_server)
        return 0; /* plain connection */
    if (!has_key || !has_server)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "a key pair and the scheduler's public key go "
                         "together (--key and --server-key, or XP_KEY and "
                         "XP_SERVER_KEY)");
    zcert_t *mine = s_load_pair(key, true, err);
    if (!mine)
        return -1;
    zcert_t *server = s_load_pair(server_key, false, err);
    if (!server) {
        zcert_destroy(&mine);
        return -1;
    }
    zcert_apply(mine, sock);
    zsock_set_curve_serverkey(sock, zcert_public_txt(server));
    zcert_destroy(&mine);
    zcert_destroy(&server);
    return 0;
}

int xp__keys_server(zsock_t *sock, const char *dir, zactor_t **auth,
                    xp_error_t *err)
{
    *auth = NULL;
    char *own = bson_strdup_printf("%s/scheduler.key", dir);
    char *allowed = bson_strdup_printf("%s/authorized", dir);
    struct stat st;
    int rc = -1;
    zcert_t *cert = NULL;
    if (stat(allowed, &st) != 0 || !S_ISDIR(st.st_mode)) {
        xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                  "%s is not a directory (it holds the public keys of the "
                  "workers and clients to accept)",
                  allowed);
        goto done;
    }
    if ((cert = s_load_pair(own, true, err)) == NULL)
        goto done;
    *auth = zactor_new(zauth, NULL);
    if (!*auth) {
        xp__error(err, XP_DOMAIN_SYSTEM, XP_EIO,
                  "cannot start the authenticator");
        goto done;
    }
    /* Every connection is checked against the keys in `allowed`, read
     * again when the directory changes. */
    zstr_sendx(*auth, "CURVE", allowed, NULL);
    zsock_wait(*auth);
    zsock_set_zap_domain(sock, "xp");
    zcert_apply(cert, sock);
    zsock_set_curve_server(sock, 1);
    rc = 0;
done:
    zcert_destroy(&cert);
    bson_free(own);
    bson_free(allowed);
    return rc;
}

int xp__keys_random(void *buf, size_t n)
{
    uint8_t *p = buf;
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(p + got, n - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    if (got == n)
        return 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    while (got < n) {
        ssize_t r = read(fd, p + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    return got == n ? 0 : -1;
}

int xp_keygen(const char *dir, const char *name, char **public_path,
              xp_error_t *err)
{
    return xp__keygen(dir, name, public_path, err);
}

int xp__keygen(const char *dir, const char *name, char **public_path,
               xp_error_t *err)
{
    *public_path = NULL;
    if (xp_check_name("key", name, err) != 0)
        return -1;
    if (xp__mkdir_p(dir, err) != 0)
        return -1;
    char *pub = bson_strdup_printf("%s/%s.key", dir, name);
    char *sec = bson_strdup_printf("%s/%s.key_secret", dir, name);
    int rc = -1;
    zcert_t *cert = NULL;
    if (access(pub, F_OK) == 0 || access(sec, F_OK) == 0) {
        xp__error(err, XP_DOMAIN_ARGUMENT, XP_EEXIST,
                  "%s already exists: not replacing a key", pub);
        goto done;
    }
    cert = zcert_new();
    if (!cert) {
        xp__error(err, XP_DOMAIN_SYSTEM, XP_EIO, "cannot make a key pair");
        goto done;
    }
    zcert_set_meta(cert, "name", "%s", name);
    /* The secret first, created private. */
    mode_t old = umask(077);
    int saved = zcert_save_secret(cert, sec);
    umask(old);
    if (saved != 0 || chmod(sec, 0600) != 0 ||
        zcert_save_public(cert, pub) != 0) {
        xp__error(err, XP_DOMAIN_SYSTEM, XP_EIO, "cannot write %s: %s", sec,
                  strerror(errno));
        unlink(sec);
        unlink(pub);
        goto done;
    }
    *public_path = pub;
    pub = NULL;
    rc = 0;
done:
    zcert_destroy(&cert);
    bson_free(pub);
    bson_free(sec);
    return rc;
}
