/* fuzz_config.c — libFuzzer target for the daemons' configuration files:
 * the input is a file, read both as the option list it stands for
 * (xp__config_read) and through an option table with one option of every
 * type (xp__config_load, as --config FILE). A file that loads is printed
 * (--print-config's text), and the printed text must load to the same
 * configuration. */
#include "remote/config.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    const char *text;
    int count;
    size_t bytes;
    int64_t ms;
    bool flag;
    const char *const *items;
    size_t n_items;
} s_opts;

static const xp_option s_table[] = {
    {.name = "text",
     .type = XP_OPTION_STRING,
     .offset = offsetof(s_opts, text),
     .dflt = "default"},
    {.name = "count",
     .type = XP_OPTION_INT,
     .offset = offsetof(s_opts, count),
     .dflt_int = 1,
     .min = -5,
     .max = 1000},
    {.name = "bytes",
     .type = XP_OPTION_SIZE,
     .offset = offsetof(s_opts, bytes),
     .dflt_int = 4096,
     .min = 4096,
     .max = 1 << 30},
    {.name = "ms",
     .type = XP_OPTION_INT64,
     .offset = offsetof(s_opts, ms),
     .dflt_int = 100,
     .min = 100,
     .max = 86400000},
    {.name = "flag",
     .type = XP_OPTION_SWITCH,
     .offset = offsetof(s_opts, flag)},
    {.name = "item",
     .type = XP_OPTION_LIST,
     .offset = offsetof(s_opts, items),
     .count_at = offsetof(s_opts, n_items)},
    {.name = NULL},
};

static const xp_config_spec s_spec = {
    .program = "fuzz_config",
    .about = "",
    .config_example = "",
    .options = s_table,
};

static int s_fd = -1;
static char s_path[64];

/* The input as the file's whole content. */
static void s_write(const void *data, size_t size)
{
    if (ftruncate(s_fd, 0) != 0 ||
        (size && pwrite(s_fd, data, size, 0) != (ssize_t)size))
        abort();
}

/* xp__config_load on the file, its one-line errors sent nowhere. */
static bool s_load(s_opts *o)
{
    char *argv[] = {"fuzz_config", "--config", s_path, NULL};
    int status, saved = dup(2), null = open("/dev/null", O_WRONLY);
    dup2(null, 2);
    memset(o, 0, sizeof *o);
    bool ok = xp__config_load(&s_spec, o, 3, argv, &status);
    dup2(saved, 2);
    close(saved);
    close(null);
    if (!ok && status != 2)
        abort();
    return ok;
}

/* What --print-config prints of o. Caller frees. */
static char *s_print(const s_opts *o, size_t *len)
{
    char *text = NULL;
    FILE *f = open_memstream(&text, len);
    xp__config_print(&s_spec, o, f);
    fclose(f);
    return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (s_fd < 0) {
        s_fd = memfd_create("xp-fuzz-config", 0);
        if (s_fd < 0)
            abort();
        snprintf(s_path, sizeof s_path, "/proc/self/fd/%d", s_fd);
    }
    s_write(data, size);
    static const char *const keys[] = {"text", "count", "flag?", "item", NULL};
    char **argv = NULL;
    int argc = 0;
    if (xp__config_read(s_path, keys, &argv, &argc, NULL) == 0)
        xp__config_free(argv, argc);
    s_opts first, again;
    if (s_load(&first)) {
        size_t len, len2;
        char *text = s_print(&first, &len);
        s_write(text, len);
        if (!s_load(&again))
            abort();
        char *text2 = s_print(&again, &len2);
        if (len != len2 || memcmp(text, text2, len) != 0)
            abort();
        free(text2);
        free(text);
        xp__config_clear(&s_spec, &again);
    }
    xp__config_clear(&s_spec, &first);
    return 0;
}
