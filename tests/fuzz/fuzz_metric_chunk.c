/* fuzz_metric_chunk.c — libFuzzer target for the metric chunk decoder:
 * the input is decoded whole as a chunk (and must encode back to the
 * same bytes, raw or compact as its length says), then, cut where its
 * first byte says, as the two halves the spool and the wire messages
 * carry. */
#include "store/metric.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    xp_metric_points p = {0};
    if (xp__metric_chunk_decode(data, size, &p, NULL) == 0) {
        if (size % 16 == 0) {
            if (p.n * 16 != size)
                abort();
            uint8_t *again = malloc(size ? size : 1);
            xp__metric_chunk_encode(p.epochs, p.values, p.n, again);
            if (memcmp(again, data, size) != 0)
                abort();
            free(again);
        } else {
            xp_metric_chunk c = {"m", 0, p.epochs, p.values, p.n};
            size_t len;
            uint8_t *again = xp__metric_chunk_encode_new(&c, &len);
            if (len != size || memcmp(again, data, size) != 0)
                abort();
            bson_free(again);
        }
    }
    xp__metric_points_clear(&p);
    if (size < 1)
        return 0;
    size_t rest = size - 1, cut = rest * data[0] / 255;
    if (xp__metric_columns_decode(data + 1, cut, data + 1 + cut, rest - cut, &p,
                                  NULL) == 0 &&
        (cut != rest - cut || p.n * 8 != cut))
        abort();
    xp__metric_points_clear(&p);
    return 0;
}
