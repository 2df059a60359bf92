/* remote/message.h — the wire messages between scheduler, workers and
 * clients (docs/protocol.md). The only header that includes czmq. */
#ifndef XP_REMOTE_MESSAGE_H
#define XP_REMOTE_MESSAGE_H

#include "xp/xp.h"

#include <bson/bson.h>
#include <czmq.h>

#define XP_PROTOCOL "XP1"
/* The message size limit of both daemons (--max-message), bytes. */
#define XP_MAX_MESSAGE_DEFAULT (64u << 20)
#define XP_MAX_MESSAGE_MIN 4096
#define XP_MAX_MESSAGE_MAX (1 << 30)
/* The heartbeat interval (--heartbeat-ms, WELCOME), ms. */
#define XP_HEARTBEAT_MS_DEFAULT 1000
#define XP_HEARTBEAT_MS_MIN 10
#define XP_HEARTBEAT_MS_MAX 600000

typedef enum {
    XP_MSG_HELLO,     /* worker -> scheduler: host, slots, experiments */
    XP_MSG_WELCOME,   /* scheduler -> worker */
    XP_MSG_HEARTBEAT, /* both ways */
    XP_MSG_TASK,      /* scheduler -> worker: run one step */
    XP_MSG_RESULT,    /* worker -> scheduler: its outcome */
    XP_MSG_SUBMIT,    /* client -> scheduler: trials */
    XP_MSG_ACCEPTED,  /* scheduler -> client: trial ids */
    XP_MSG_STATUS,    /* client -> scheduler: progress of a batch */
    XP_MSG_PROGRESS,  /* scheduler -> client */
    XP_MSG_ERROR,     /* any reply: {message} */
    XP_MSG_BYE,       /* worker leaving */
    XP_MSG_COUNT
} xp_msg_type;

const char *xp__msg_name(xp_msg_type type);
/* Caller owns result. */
zmsg_t *xp__msg_new(xp_msg_type type, const bson_t *body);
/* Validates frames of an untrusted message (routing frame removed) and
 * copies the body into an uninitialised *body. */
int xp__msg_decode(zmsg_t *msg, size_t max_body, xp_msg_type *type,
                   bson_t *body, xp_error_t *err);
/* The same on raw frames (fuzzing entry point). */
int xp__msg_decode_frames(const uint8_t *const *frames, const size_t *lens,
                          size_t n, size_t max_body, xp_msg_type *type,
                          bson_t *body, xp_error_t *err);

#endif /* XP_REMOTE_MESSAGE_H */
