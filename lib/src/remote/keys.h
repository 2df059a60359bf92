/* remote/keys.h — CURVE key pairs: making, loading, authorising; and the
 * unguessable bytes of identifiers that must not be guessed. */
#ifndef XP_REMOTE_KEYS_H
#define XP_REMOTE_KEYS_H

#include "remote/message.h"

/* Makes sock a CURVE client with its own pair (NAME.key or
 * NAME.key_secret) and the scheduler's public key; both NULL/"": plain. */
int xp__keys_client(zsock_t *sock, const char *key, const char *server_key,
                    xp_error_t *err);
/* Makes sock (before bind) a CURVE server with dir/scheduler.key and
 * starts *auth, which accepts only the public keys in dir/authorized. */
int xp__keys_server(zsock_t *sock, const char *dir, zactor_t **auth,
                    xp_error_t *err);
/* Fills buf with n unguessable bytes (getrandom, else /dev/urandom);
 * -1 when the system has none to give. */
int xp__keys_random(void *buf, size_t n);
/* Writes dir/name.key and dir/name.key_secret (0600); never replaces
 * one. *public_path: caller frees with bson_free. */
int xp__keygen(const char *dir, const char *name, char **public_path,
               xp_error_t *err);

#endif /* XP_REMOTE_KEYS_H */
