/* plugin_cxx.cc — xp.h alone, as C++: a worker plugin. */
#define XP_PLUGIN
#include <xp/xp.h>

#define XP_HEADER_TEST_ID header_cxx
#include "define.inc"
