/* replay.c — runs the fuzz target over every file of the corpus
 * directories given as arguments, plus deterministic mutations of each
 * (truncations and byte flips), so the corpus is an ordinary test. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t s_runs;

static void s_run(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    memcpy(copy, data, size);
    LLVMFuzzerTestOneInput(copy, size);
    s_runs++;
    for (size_t cut = 0; cut < size; cut += 1 + size / 16) {
        LLVMFuzzerTestOneInput(copy, cut);
        s_runs++;
    }
    for (size_t i = 0; i < size; i += 1 + size / 32) {
        uint8_t saved = copy[i];
        copy[i] ^= 0xff;
        LLVMFuzzerTestOneInput(copy, size);
        copy[i] = saved;
        s_runs++;
    }
    free(copy);
}

int main(int argc, char **argv)
{
    size_t files = 0;
    for (int a = 1; a < argc; a++) {
        DIR *d = opendir(argv[a]);
        if (!d) {
            fprintf(stderr, "replay: cannot open corpus %s\n", argv[a]);
            return 1;
        }
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[a], e->d_name);
            FILE *f = fopen(path, "rb");
            if (!f)
                continue;
            uint8_t buf[1 << 16];
            size_t n = fread(buf, 1, sizeof buf, f);
            fclose(f);
            s_run(buf, n);
            files++;
        }
        closedir(d);
    }
    if (files == 0) {
        fprintf(stderr, "replay: empty corpus\n");
        return 1;
    }
    printf("replayed %zu corpus files, %zu inputs\n", files, s_runs);
    return 0;
}
