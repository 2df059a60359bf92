/* remote/keys.h — CURVE key pairs: making, loading, authorising; and the
 * unguessable bytes of identifiers that must not be guessed. */
#ifndef XP_REMOTE_KEYS_H
#define XP_REMOTE_KEYS_H

#include "remote/message.h"

/* Makes sock a CURVE client with its own pair (NAME.key or
 * NAME.key_secret) and the scheduler's public key; both NULL/"": plain. */
int xp__keys_client(zsock_t *sock, const char *key, const char *server_key,
                    xp_error_t *err);
/* The scheduler's authorizer: the public keys of dir/authorized, read
 * again when the directory changes, and the ZeroMQ handshake handler
 * (ZAP) that lets in only those keys. Owned by the scheduler's loop,
 * which polls its socket: no thread of its own. */
typedef struct xp_authorizer xp_authorizer;

/* Makes sock (before bind) a CURVE server with dir/scheduler.key and
 * binds *auth, which accepts only the public keys in dir/authorized.
 * Caller owns *auth (xp__authorizer_destroy, after sock). */
int xp__keys_server(zsock_t *sock, const char *dir, xp_authorizer **auth,
                    xp_error_t *err);
/* The socket handshake requests arrive on, to poll. */
zsock_t *xp__authorizer_socket(xp_authorizer *a);
/* A handshake the authorizer refused: the peer's public key (Z85) and its
 * address. */
typedef struct {
    char key[41];
    char address[64];
} xp_refusal;
/* Answers the handshake requests waiting (reading the directory again
 * first when it changed), accepting the authorized keys with the key as
 * the connection's User-Id; calls on_refused for each refused one. */
void xp__authorizer_serve(xp_authorizer *a,
                          void (*on_refused)(void *user, const xp_refusal *r),
                          void *user);
/* Reads the directory again when it changed; true when the set of keys
 * did. A directory that is gone authorizes nobody; one that cannot be
 * read now keeps the keys it had. */
bool xp__authorizer_refresh(xp_authorizer *a);
/* True when key (Z85 text, the User-Id of a CURVE connection) is in the
 * directory as last read. */
bool xp__authorizer_allows(const xp_authorizer *a, const char *key);
/* NULL-safe; NULLs *a. */
void xp__authorizer_destroy(xp_authorizer **a);
/* Writes dir/name.key and dir/name.key_secret (0600); never replaces
 * one. *public_path: caller frees with bson_free. */
int xp__keygen(const char *dir, const char *name, char **public_path,
               xp_error_t *err);

#endif /* XP_REMOTE_KEYS_H */
