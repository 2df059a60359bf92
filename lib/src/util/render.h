/* util/render.h — a BSON document as lines of text (`key: value`), the
 * form of the stored environment files and of code/environment diffs. */
#ifndef XP_UTIL_RENDER_H
#define XP_UTIL_RENDER_H

#include <bson/bson.h>

/* Line rendering of a document. Caller frees (bson_free). */
char *xp__render_text(const bson_t *doc);

#endif /* XP_UTIL_RENDER_H */
