/* plugin_c.c — xp.h alone, as C99 -pedantic: a worker plugin. */
#define XP_PLUGIN
#include <xp/xp.h>

#define XP_HEADER_TEST_ID header_c
#include "define.inc"
