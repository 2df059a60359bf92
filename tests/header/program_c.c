/* program_c.c — xp.h alone, as C99 -pedantic: a script-mode program. */
#include <xp/xp.h>

#define XP_HEADER_TEST_ID header_c
#include "define.inc"
