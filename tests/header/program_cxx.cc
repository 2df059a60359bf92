/* program_cxx.cc — xp.h alone, as C++: a script-mode program. */
#include <xp/xp.h>

#define XP_HEADER_TEST_ID header_cxx
#include "define.inc"
