/* fuzz_spool_record.c — libFuzzer target for the spool record decoder: a
 * valid BSON input is decoded as a spool file is on replay, and every
 * point, value and hash of a record that decodes is read. */
#include "store/spool.h"
#include "value.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile double s_sink; /* keeps the reads of the points */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bson_t rec;
    if (size < 5 || !bson_init_static(&rec, data, size) ||
        !bson_validate(&rec, BSON_VALIDATE_NONE, NULL))
        return 0;
    xp_spool_record r;
    if (xp__spool_decode(&rec, &r, NULL) != 0)
        return 0;
    const xp_trial_outcome *o = &r.outcome;
    double sum = 0;
    for (size_t i = 0; i < o->n_chunks; i++) {
        const xp_metric_chunk *c = &o->chunks[i];
        if (c->n > XP_METRIC_CHUNK_POINTS || !c->name)
            abort();
        for (size_t k = 0; k < c->n; k++)
            sum += (double)c->epochs[k] + c->values[k];
    }
    for (size_t i = 0; i < o->n_persisted; i++) {
        char *json = xp_value_to_json(o->persisted[i].value);
        xp_free(json);
    }
    for (size_t i = 0; i < o->n_hashes; i++)
        sum += o->hashes[i].input[15] + o->hashes[i].output[0];
    bson_t again = BSON_INITIALIZER;
    if (o->record->trial_id < 1 ||
        xp__record_encode(o->record, &again, NULL) != 0)
        abort();
    bson_destroy(&again);
    xp__spool_record_clear(&r);
    s_sink = sum;
    return 0;
}
