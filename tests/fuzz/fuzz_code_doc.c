/* fuzz_code_doc.c — libFuzzer target for the code-document decoder: the
 * input is the BSON of a document as a client sends it in SUBMIT or a
 * store returns it (its length header is set to the input's size, so
 * mutations reach the fields). Whatever decodes must define a graph that
 * freezes, and the graph's document must be a fixed point: decoded and
 * encoded again, the same bytes. Every document, decoded or not, renders
 * as text. */
#include "code_doc.h"
#include "experiment.h"
#include "graph.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The document of a graph defined from doc, or NULL when doc is refused;
 * refused by xp__graph_from_code exactly when the decoder refuses it. */
static bson_t *s_through_graph(const bson_t *doc)
{
    xp_code_def def;
    bool decoded = xp__code_doc_decode(&def, doc, NULL) == 0;
    xp__code_def_clear(&def);
    xp_experiment *ex = NULL;
    if (xp__experiment_new_detached(&ex, "fuzz", NULL) != 0)
        abort();
    bson_t *out = NULL;
    if (xp__graph_from_code(ex, doc, NULL) == 0) {
        if (!decoded)
            abort();
        pthread_mutex_lock(&ex->lock);
        if (xp__graph_freeze_locked(ex, NULL) != 0)
            abort();
        out = bson_new();
        xp__code_doc_encode(ex, out);
        pthread_mutex_unlock(&ex->lock);
    } else if (decoded) {
        abort();
    }
    xp_experiment_destroy(&ex);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 5 || size > (1u << 24))
        return 0;
    uint8_t *bytes = malloc(size);
    memcpy(bytes, data, size);
    uint32_t len = (uint32_t)size; /* little-endian, as BSON */
    for (int i = 0; i < 4; i++)
        bytes[i] = (uint8_t)(len >> (8 * i));
    bson_t doc;
    if (bson_init_static(&doc, bytes, size)) {
        bson_free(xp__code_doc_text(&doc));
        bson_t *once = s_through_graph(&doc);
        if (once) {
            bson_t *twice = s_through_graph(once);
            if (!twice || twice->len != once->len ||
                memcmp(bson_get_data(twice), bson_get_data(once), once->len) !=
                    0)
                abort();
            bson_free(xp__code_doc_text(once));
            bson_destroy(twice);
            bson_destroy(once);
        }
    }
    free(bytes);
    return 0;
}
