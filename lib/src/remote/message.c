/* protocol.c — the wire messages between clients, xp-scheduler and
 * xp-worker (docs/protocol.md): three ZeroMQ frames, "XP1", the message
 * type, and a BSON body. Decoding checks everything a peer controls and
 * never trusts a length it did not verify. */
#include "remote/message.h"

#include "util/error.h"

#include <string.h>

static const char *const s_names[XP_MSG_COUNT] = {
    [XP_MSG_HELLO] = "HELLO",
    [XP_MSG_WELCOME] = "WELCOME",
    [XP_MSG_HEARTBEAT] = "HEARTBEAT",
    [XP_MSG_TASK] = "TASK",
    [XP_MSG_RESULT] = "RESULT",
    [XP_MSG_SUBMIT] = "SUBMIT",
    [XP_MSG_ACCEPTED] = "ACCEPTED",
    [XP_MSG_STATUS] = "STATUS",
    [XP_MSG_PROGRESS] = "PROGRESS",
    [XP_MSG_ERROR] = "ERROR",
    [XP_MSG_BYE] = "BYE",
};

const char *xp__msg_name(xp_msg_type type)
{
    return (unsigned)type < XP_MSG_COUNT ? s_names[type] : "?";
}

int xp__msg_decode_frames(const uint8_t *const *frames, const size_t *lens,
                          size_t n, size_t max_body, xp_msg_type *type,
                          bson_t *body, xp_error_t *err)
{
    if (n != 3)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "malformed message: %zu frames (expected 3)", n);
    if (lens[0] != 3 || memcmp(frames[0], XP_PROTOCOL, 3) != 0)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "malformed message: not protocol " XP_PROTOCOL);
    int found = -1;
    for (int i = 0; i < XP_MSG_COUNT; i++)
        if (lens[1] == strlen(s_names[i]) &&
            memcmp(frames[1], s_names[i], lens[1]) == 0)
            found = i;
    if (found < 0)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "malformed message: unknown type (%zu bytes)",
                         lens[1]);
    if (lens[2] > max_body)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "message %s of %zu bytes exceeds the limit of %zu",
                         s_names[found], lens[2], max_body);
    bson_t view;
    if (lens[2] < 5 || lens[2] > INT32_MAX ||
        !bson_init_static(&view, frames[2], lens[2]) ||
        !bson_validate(&view, BSON_VALIDATE_UTF8, NULL))
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "malformed message %s: body is not valid BSON",
                         s_names[found]);
    *type = (xp_msg_type)found;
    bson_copy_to(&view, body);
    return 0;
}

zmsg_t *xp__msg_new(xp_msg_type type, const bson_t *body)
{
    zmsg_t *msg = zmsg_new();
    zmsg_addmem(msg, XP_PROTOCOL, 3);
    zmsg_addstr(msg, s_names[type]);
    zmsg_addmem(msg, bson_get_data(body), body->len);
    return msg;
}

int xp__msg_decode(zmsg_t *msg, size_t max_body, xp_msg_type *type,
                   bson_t *body, xp_error_t *err)
{
    size_t n = zmsg_size(msg);
    if (n != 3)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "malformed message: %zu frames (expected 3)", n);
    const uint8_t *frames[3];
    size_t lens[3];
    zframe_t *f = zmsg_first(msg);
    for (size_t i = 0; i < 3; i++, f = zmsg_next(msg)) {
        frames[i] = zframe_data(f);
        lens[i] = zframe_size(f);
    }
    return xp__msg_decode_frames(frames, lens, 3, max_body, type, body, err);
}

