/* util/names.h — the limits of experiment ids and of parameter,
 * step and metric names (xp_check_id, xp_check_name). */
#ifndef XP_UTIL_NAMES_H
#define XP_UTIL_NAMES_H

#include "xp/xp.h"

#define XP_ID_MAX 64
#define XP_NAME_MAX 128

#endif /* XP_UTIL_NAMES_H */
