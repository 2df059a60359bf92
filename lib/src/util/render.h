/* util/render.h — a BSON document as lines of text (`key: value`), the
 * form of the stored environment files and of code/environment diffs. */
#ifndef XP_UTIL_RENDER_H
#define XP_UTIL_RENDER_H

#include <bson/bson.h>

/* Shortest text that reads back as the same finite double ("0.1", not
 * libbson's 20 significant digits), with ".0" kept on integral values so
 * the type survives a round trip; into buf[40]. */
void xp__double_text(double d, char *buf);

/* Line rendering of a document. Caller frees (bson_free). */
char *xp__render_text(const bson_t *doc);

#endif /* XP_UTIL_RENDER_H */
