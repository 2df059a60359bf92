/* fuzz_value.c — libFuzzer target for the decoders of values typed by a
 * user: JSON text, script-mode literals and script-mode argument lists.
 * The first byte picks the decoder; the rest is its input (argument
 * lists: NUL-separated). Whatever decodes must survive the round trips
 * every value takes: to JSON and back (JSON input), and to BSON and back,
 * equal each time. */
#include "script.h"
#include "value.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* value -> BSON -> value gives an equal value. */
static void s_bson_round_trip(const xp_value *v)
{
    bson_t doc = BSON_INITIALIZER;
    if (xp__value_append_bson(&doc, "v", v) == 0) {
        bson_iter_t it;
        xp_value *back = xp_value_new();
        if (!bson_iter_init_find(&it, &doc, "v") ||
            xp__value_from_iter(back, &it, NULL) != 0 ||
            !xp_value_equal(v, back))
            abort();
        xp_value_destroy(&back);
    }
    bson_destroy(&doc);
}

static void s_json(const char *text)
{
    xp_value *v = xp_value_new();
    if (xp_value_from_json(v, text, NULL) == 0) {
        char *json = xp_value_to_json(v);
        xp_value *back = xp_value_new();
        if (!json || xp_value_from_json(back, json, NULL) != 0 ||
            !xp_value_equal(v, back))
            abort();
        xp_value_destroy(&back);
        xp_free(json);
        s_bson_round_trip(v);
    }
    xp_value_destroy(&v);
}

static void s_literal(const char *text)
{
    xp_value *v = xp_value_new();
    if (xp_value_parse_literal(v, text, NULL) == 0)
        s_bson_round_trip(v);
    xp_value_destroy(&v);
}

static void s_arguments(char *text, size_t len)
{
    char *argv[65] = {"program"};
    int argc = 1;
    for (size_t i = 0; i <= len && argc < 64;) {
        argv[argc++] = text + i;
        i += strlen(text + i) + 1;
    }
    argv[argc] = NULL;
    xp_script_args a;
    if (xp__script_parse(&a, argc, argv, NULL) == 0)
        xp__script_args_free(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char *text = malloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    switch (data[0] % 3) {
    case 0: s_json(text); break;
    case 1: s_literal(text); break;
    default: s_arguments(text, size - 1); break;
    }
    free(text);
    return 0;
}
