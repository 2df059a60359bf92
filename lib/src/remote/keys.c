/* keys.c — CURVE key pairs (czmq certificates) for the scheduler, its
 * workers and its clients: `xp keygen` writes NAME.key (public) and
 * NAME.key_secret (mode 0600); a worker or client names its own pair and
 * the scheduler's public key; the scheduler's authorizer answers the
 * handshakes (ZAP) with the public keys found in its authorized
 * directory, read again when it changes (see docs/protocol.md). */
#include "remote/keys.h"

#include "util/error.h"
#include "util/sys.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

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

/* ---------------------------------------------------------------- the
 * authorizer */

/* Where libzmq sends the handshake requests (ZAP, RFC 27) of every socket
 * of the process's context. */
#define S_ZAP_ENDPOINT "inproc://zeromq.zap.01"

struct xp_authorizer {
    char *dir;
    zsock_t *zap;       /* REP: the handshake requests */
    zhashx_t *keys;     /* Z85 public key -> itself */
    uint64_t signature; /* of dir's entries as last read */
    bool listed;        /* dir was listed at least once */
};

/* A fingerprint of the entries of dir (name, inode, size, modification
 * time; in any order): a key file added, removed or rewritten changes
 * it. -1 when dir cannot be listed. */
static int s_signature(const char *dir, uint64_t *out)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    uint64_t sum = 0, n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        if (e->d_name[0] == '.' || fstatat(dirfd(d), e->d_name, &st, 0) != 0 ||
            !S_ISREG(st.st_mode))
            continue;
        uint64_t fields[5] = {(uint64_t)st.st_ino, (uint64_t)st.st_size,
                              (uint64_t)st.st_mtim.tv_sec,
                              (uint64_t)st.st_mtim.tv_nsec,
                              XXH3_64bits(e->d_name, strlen(e->d_name))};
        sum += XXH3_64bits(fields, sizeof fields);
        n++;
    }
    closedir(d);
    *out = sum ^ XXH3_64bits(&n, sizeof n);
    return 0;
}

/* The public keys of the key files in dir (other files are skipped). */
static zhashx_t *s_read_keys(const char *dir)
{
    zhashx_t *keys = zhashx_new();
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char *path = bson_strdup_printf("%s/%s", dir, e->d_name);
        struct stat st;
        zcert_t *cert = stat(path, &st) == 0 && S_ISREG(st.st_mode)
                            ? zcert_load(path)
                            : NULL;
        if (cert) {
            const char *key = zcert_public_txt(cert);
            zhashx_update(keys, key, (void *)1);
            zcert_destroy(&cert);
        }
        bson_free(path);
    }
    if (d)
        closedir(d);
    return keys;
}

/* True when a and b hold the same keys. */
static bool s_same_keys(zhashx_t *a, zhashx_t *b)
{
    if (zhashx_size(a) != zhashx_size(b))
        return false;
    for (void *k = zhashx_first(a); k; k = zhashx_next(a))
        if (!zhashx_lookup(b, zhashx_cursor(a)))
            return false;
    return true;
}

bool xp__authorizer_refresh(xp_authorizer *a)
{
    uint64_t sig;
    if (s_signature(a->dir, &sig) != 0) {
        if (errno != ENOENT && errno != ENOTDIR)
            return false; /* keep what it had (out of files, ...) */
        sig = 0;
    } else if (a->listed && sig == a->signature) {
        return false;
    }
    a->listed = true;
    a->signature = sig;
    zhashx_t *keys = s_read_keys(a->dir);
    bool changed = !a->keys || !s_same_keys(keys, a->keys);
    zhashx_destroy(&a->keys);
    a->keys = keys;
    return changed;
}

bool xp__authorizer_allows(const xp_authorizer *a, const char *key)
{
    return key && *key && zhashx_lookup(a->keys, key) != NULL;
}

zsock_t *xp__authorizer_socket(xp_authorizer *a)
{
    return a->zap;
}

/* Frame i of msg as text into buf ("" when absent or too long). */
static void s_frame_text(zmsg_t *msg, size_t i, char *buf, size_t size)
{
    zframe_t *f = zmsg_first(msg);
    for (size_t k = 0; f && k < i; k++)
        f = zmsg_next(msg);
    size_t n = f ? zframe_size(f) : 0;
    if (n >= size)
        n = 0;
    if (n)
        memcpy(buf, zframe_data(f), n);
    buf[n] = '\0';
}

/* Answers one ZAP request: version, request id, domain, address, routing
 * id, mechanism, credentials (CURVE: the 32-byte public key). */
static void s_answer(xp_authorizer *a, zmsg_t *req, xp_refusal *refused,
                     bool *was_refused)
{
    char version[8], mechanism[16];
    s_frame_text(req, 0, version, sizeof version);
    s_frame_text(req, 5, mechanism, sizeof mechanism);
    zframe_t *id = zmsg_first(req);
    id = id ? zmsg_next(req) : NULL;
    zframe_t *cred = zmsg_last(req);
    memset(refused, 0, sizeof *refused);
    s_frame_text(req, 3, refused->address, sizeof refused->address);
    bool curve = zmsg_size(req) >= 7 && strcmp(mechanism, "CURVE") == 0 &&
                 zframe_size(cred) == 32;
    if (curve)
        zmq_z85_encode(refused->key, zframe_data(cred), 32);
    bool ok = curve && xp__authorizer_allows(a, refused->key);
    zmsg_t *rep = zmsg_new();
    zmsg_addstr(rep, "1.0");
    zmsg_addmem(rep, id ? zframe_data(id) : NULL, id ? zframe_size(id) : 0);
    zmsg_addstr(rep, ok ? "200" : "400");
    zmsg_addstr(rep, ok ? "OK" : "not authorized");
    zmsg_addstr(rep, ok ? refused->key : "");
    zmsg_addmem(rep, NULL, 0); /* no metadata */
    zmsg_send(&rep, a->zap);
    zmsg_destroy(&rep);
    *was_refused = !ok && strcmp(version, "1.0") == 0;
}

void xp__authorizer_serve(xp_authorizer *a,
                          void (*on_refused)(void *user, const xp_refusal *r),
                          void *user)
{
    zmsg_t *req;
    bool refreshed = false;
    while ((req = zmsg_recv_nowait(a->zap)) != NULL) {
        /* A key just added gets in on its first try. */
        if (!refreshed)
            xp__authorizer_refresh(a);
        refreshed = true;
        xp_refusal r;
        bool refused = false;
        s_answer(a, req, &r, &refused);
        zmsg_destroy(&req);
        if (refused && on_refused)
            on_refused(user, &r);
    }
}

void xp__authorizer_destroy(xp_authorizer **pa)
{
    if (!pa || !*pa)
        return;
    xp_authorizer *a = *pa;
    zsock_destroy(&a->zap);
    zhashx_destroy(&a->keys);
    bson_free(a->dir);
    bson_free(a);
    *pa = NULL;
}

/* The authorizer of the keys in dir, bound where libzmq asks. */
static int s_authorizer_new(xp_authorizer **out, const char *dir,
                            xp_error_t *err)
{
    xp_authorizer *a = bson_malloc0(sizeof *a);
    a->dir = bson_strdup(dir);
    a->zap = zsock_new(ZMQ_REP);
    if (!a->zap || zsock_bind(a->zap, S_ZAP_ENDPOINT) != 0) {
        xp__authorizer_destroy(&a);
        return xp__error(err, XP_DOMAIN_SYSTEM, XP_EIO,
                         "cannot start the authenticator: %s (is another "
                         "one running in this process?)",
                         zmq_strerror(zmq_errno()));
    }
    xp__authorizer_refresh(a);
    *out = a;
    return 0;
}

int xp__keys_server(zsock_t *sock, const char *dir, xp_authorizer **auth,
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
    /* Bound before sock is: no handshake is made without it. */
    if (s_authorizer_new(auth, allowed, err) != 0)
        goto done;
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
