/* fuzz_experiment_file.c — libFuzzer target for the experiment-file
 * parser: the input is the YAML text of a file. Whatever parses must be a
 * definition the runner can trust: a valid id, every step input declared
 * before the step, a result among the steps, commands with a program,
 * and templates that render with every placeholder an input. Every
 * refusal fills the error. */
#include "command/file.h"
#include "command/template.h"
#include "util/names.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool s_declared(const xp_file_def *def, const char *name, size_t step)
{
    for (size_t i = 0; i < def->n_params; i++)
        if (strcmp(def->params[i].name, name) == 0)
            return true;
    for (size_t i = 0; i < step; i++)
        if (strcmp(def->steps[i].name, name) == 0)
            return true;
    return false;
}

typedef struct {
    const xp_command *c;
} s_ctx;

static int s_ref(void *ctx, const char *name, const char *file,
                 bson_string_t *out, xp_error_t *err)
{
    (void)file;
    (void)err;
    const xp_command *c = ((s_ctx *)ctx)->c;
    for (size_t i = 0; i < c->n_inputs; i++)
        if (strcmp(c->inputs[i], name) == 0) {
            bson_string_append(out, "v");
            return 0;
        }
    abort(); /* a placeholder that is not an input passed the loader */
}

static void s_check(const xp_file_def *def)
{
    if (xp_check_id(def->id, NULL) != 0 || !def->result)
        abort();
    bool result_found = false;
    for (size_t i = 0; i < def->n_steps; i++) {
        const xp_file_step *st = &def->steps[i];
        if (xp_check_name("step", st->name, NULL) != 0)
            abort();
        result_found |= strcmp(st->name, def->result) == 0;
        for (size_t k = 0; k < st->n_inputs; k++)
            if (!s_declared(def, st->inputs[k], i))
                abort();
        const xp_command *c = st->command;
        if (!c) {
            if (!st->library || !st->symbol)
                abort();
            continue;
        }
        if (c->argc == 0 || !c->argv[0][0] || c->n_inputs != st->n_inputs)
            abort();
        s_ctx ctx = {c};
        for (size_t k = c->shell ? 2 : 0; k < c->argc; k++) {
            bson_string_t *s = bson_string_new(NULL);
            if (xp__template_expand(c->argv[k], s_ref, &ctx, s, NULL) != 0)
                abort();
            bson_string_free(s, true);
        }
    }
    if (!result_found)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    xp_file_def def;
    xp_error_t err = {0};
    if (xp__file_parse(&def, (const char *)data, size, "fuzz.yaml", "/nowhere",
                       &err) == 0) {
        s_check(&def);
        xp__file_def_clear(&def);
    } else if (!err.message[0]) {
        abort();
    }
    return 0;
}
