/* test_env_cache.c — the dpkg list of the environment comes out the same
 * whether it is parsed from the status file or read from its cache
 * ($XDG_CACHE_HOME/xp/dpkg-packages.bson), and a damaged or foreign
 * cache is rebuilt rather than believed. */
#include "capture/env.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char s_dir[64], s_cache[128];

static void s_setup(void)
{
    snprintf(s_dir, sizeof s_dir, "/tmp/xp-test-envcache-XXXXXX");
    cr_assert_not_null(mkdtemp(s_dir));
    snprintf(s_cache, sizeof s_cache, "%s/xp/dpkg-packages.bson", s_dir);
    setenv("XDG_CACHE_HOME", s_dir, 1);
}

static void s_teardown(void)
{
    unlink(s_cache);
    char sub[96];
    snprintf(sub, sizeof sub, "%s/xp", s_dir);
    rmdir(sub);
    rmdir(s_dir);
}

TestSuite(env_cache, .init = s_setup, .fini = s_teardown);

/* The libraries category of a fresh capture; caller destroys. */
static void s_libraries(bson_t *out)
{
    bson_t local = BSON_INITIALIZER, gpu = BSON_INITIALIZER;
    xp__environment_prepare();
    xp__environment_local(&local, &gpu, NULL);
    bson_iter_t it;
    cr_assert(bson_iter_init_find(&it, &local, "libraries"));
    uint32_t len;
    const uint8_t *data;
    bson_iter_document(&it, &len, &data);
    bson_t view;
    cr_assert(bson_init_static(&view, data, len));
    bson_copy_to(&view, out);
    bson_destroy(&local);
    bson_destroy(&gpu);
}

static bool s_has_packages(const bson_t *libraries)
{
    bson_iter_t it;
    return bson_iter_init_find(&it, libraries, "packages") &&
           BSON_ITER_HOLDS_ARRAY(&it);
}

Test(env_cache, cached_list_equals_parsed_list)
{
    if (access("/var/lib/dpkg/status", R_OK) != 0)
        cr_skip_test("no /var/lib/dpkg/status: not a dpkg system");
    bson_t parsed, cached;
    s_libraries(&parsed); /* no cache yet: parsed, then written */
    cr_assert(s_has_packages(&parsed));
    cr_assert_eq(access(s_cache, R_OK), 0, "no cache written at %s", s_cache);
    s_libraries(&cached);
    cr_assert(bson_equal(&parsed, &cached));
    bson_destroy(&parsed);
    bson_destroy(&cached);
}

Test(env_cache, damaged_cache_is_rebuilt)
{
    if (access("/var/lib/dpkg/status", R_OK) != 0)
        cr_skip_test("no /var/lib/dpkg/status: not a dpkg system");
    bson_t parsed, again;
    s_libraries(&parsed);
    /* Cut in the middle: not a document any more. */
    struct stat st;
    cr_assert_eq(stat(s_cache, &st), 0);
    cr_assert_eq(truncate(s_cache, st.st_size / 2), 0);
    s_libraries(&again);
    cr_assert(bson_equal(&parsed, &again));
    cr_assert_eq(stat(s_cache, &st), 0);
    cr_assert_gt(st.st_size, 0);
    bson_destroy(&again);
    /* A cache for another status file (another key) is not believed. */
    bson_t doc = BSON_INITIALIZER, arr;
    BSON_APPEND_UTF8(&doc, "key", "/var/lib/dpkg/status 1 0 0 0 0.0");
    BSON_APPEND_ARRAY_BEGIN(&doc, "packages", &arr);
    BSON_APPEND_UTF8(&arr, "0", "not-a-package:all 0");
    bson_append_array_end(&doc, &arr);
    FILE *f = fopen(s_cache, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(bson_get_data(&doc), 1, doc.len, f), doc.len);
    fclose(f);
    s_libraries(&again);
    cr_assert(bson_equal(&parsed, &again));
    bson_destroy(&doc);
    bson_destroy(&again);
    bson_destroy(&parsed);
}

Test(env_cache, decoder_refuses_what_is_not_a_cache)
{
    bson_t packages, doc = BSON_INITIALIZER, arr;
    BSON_APPEND_UTF8(&doc, "key", "k");
    BSON_APPEND_ARRAY_BEGIN(&doc, "packages", &arr);
    BSON_APPEND_UTF8(&arr, "0", "a:amd64 1.0");
    BSON_APPEND_UTF8(&arr, "1", "b:all 2.0-1");
    bson_append_array_end(&doc, &arr);
    cr_assert_eq(xp__environment_dpkg_cache_decode(bson_get_data(&doc), doc.len,
                                                   "k", &packages),
                 0);
    cr_assert_eq(bson_count_keys(&packages), 2);
    bson_destroy(&packages);
    /* Another key, a cut document, a non-string entry, an extra field. */
    cr_assert_neq(xp__environment_dpkg_cache_decode(bson_get_data(&doc),
                                                    doc.len, "j", &packages),
                  0);
    cr_assert_neq(xp__environment_dpkg_cache_decode(
                      bson_get_data(&doc), doc.len - 3, "k", &packages),
                  0);
    bson_t bad = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&bad, "key", "k");
    BSON_APPEND_ARRAY_BEGIN(&bad, "packages", &arr);
    BSON_APPEND_INT32(&arr, "0", 1);
    bson_append_array_end(&bad, &arr);
    cr_assert_neq(xp__environment_dpkg_cache_decode(bson_get_data(&bad),
                                                    bad.len, "k", &packages),
                  0);
    bson_destroy(&bad);
    BSON_APPEND_INT32(&doc, "extra", 1);
    cr_assert_neq(xp__environment_dpkg_cache_decode(bson_get_data(&doc),
                                                    doc.len, "k", &packages),
                  0);
    bson_destroy(&doc);
}
