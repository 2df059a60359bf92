/* env.c — environment capture, once per process: platform, cpu, runtime,
 * loaded libraries (+ dpkg package list), git and gpu, as one BSON
 * document of categories. Only stable facts are kept (the advertised
 * CPU clock, not the current one; no free memory) so equal machines give
 * equal documents. */
#include "capture/env.h"

#include "capture/code.h"
#include "capture/git.h"
#include "util/bson_util.h"
#include "util/module.h"
#include "util/sys.h"

#include <gnu/libc-version.h>
#include <limits.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

const char *const xp__environment_categories[] = {
    "platform", "cpu", "runtime", "libraries", "git", "gpu", NULL};

static void s_trim(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
}

/* First line of a small file, trimmed, or NULL. */
static char *s_first_line(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char buf[512];
    char *line = fgets(buf, sizeof buf, f) ? bson_strdup(buf) : NULL;
    fclose(f);
    if (line)
        s_trim(line);
    return line;
}

static void s_platform(bson_t *doc)
{
    struct utsname u;
    if (uname(&u) == 0) {
        BSON_APPEND_UTF8(doc, "system", u.sysname);
        BSON_APPEND_UTF8(doc, "release", u.release);
        BSON_APPEND_UTF8(doc, "version", u.version);
        BSON_APPEND_UTF8(doc, "machine", u.machine);
    }
    char *os = NULL;
    FILE *f = fopen("/etc/os-release", "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, "PRETTY_NAME=", 12) == 0) {
                s_trim(line);
                char *v = line + 12;
                size_t n = strlen(v);
                if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
                    v[n - 1] = '\0';
                    v++;
                }
                os = bson_strdup(v);
            }
        }
        fclose(f);
    }
    if (os)
        BSON_APPEND_UTF8(doc, "os", os);
    bson_free(os);
    BSON_APPEND_UTF8(doc, "hostname", xp__hostname());
    BSON_APPEND_INT32(doc, "cpu_count", xp__cpu_count());
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0)
        BSON_APPEND_INT64(doc, "memory_bytes", (int64_t)pages * page);
}

/* MHz advertised in a model name such as "Intel(R) Xeon(R) CPU E5-2680 v4
 * @ 2.40GHz" (or "@ 800MHz"), or 0 when it names none. */
static int64_t s_model_mhz(const char *model)
{
    const char *at = model ? strrchr(model, '@') : NULL;
    if (!at)
        return 0;
    char *unit;
    double v = strtod(at + 1, &unit);
    while (*unit == ' ')
        unit++;
    double scale = strncasecmp(unit, "GHz", 3) == 0   ? 1000
                   : strncasecmp(unit, "MHz", 3) == 0 ? 1
                                                      : 0;
    if (!(v > 0 && v * scale < 1e6))
        return 0;
    return (int64_t)(v * scale + 0.5);
}

/* The clock the CPU is sold with: the kernel's maximum frequency, else the
 * one in the model name, else 0. Never the current `cpu MHz`, which
 * changes from one run to the next. */
static int64_t s_frequency_mhz(const char *max_khz, const char *model)
{
    if (max_khz) {
        char *end;
        long long khz = strtoll(max_khz, &end, 10);
        if (*end == '\0' && khz > 0 && khz < 1000000000LL)
            return (khz + 500) / 1000;
    }
    return s_model_mhz(model);
}

void xp__environment_cpu(bson_t *doc, const char *root)
{
    static const char *const keys[][2] = {
        {"model name", "model"},   {"vendor_id", "vendor"},
        {"cpu family", "family"},  {"stepping", "stepping"},
        {"cache size", "cache"},   {"flags", "flags"},
        {"microcode", "microcode"}};
    bool seen[sizeof keys / sizeof keys[0]] = {false};
    char *model = NULL;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/proc/cpuinfo", root);
    FILE *f = fopen(path, "r");
    if (f) {
        char *line = NULL;
        size_t cap = 0;
        while (getline(&line, &cap, f) > 0) {
            if (line[0] == '\n')
                break; /* first processor only */
            char *colon = strchr(line, ':');
            if (!colon)
                continue;
            *colon = '\0';
            s_trim(line);
            char *value = colon + 1 + (colon[1] == ' ');
            s_trim(value);
            for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
                if (!seen[k] && strcmp(line, keys[k][0]) == 0) {
                    BSON_APPEND_UTF8(doc, keys[k][1], value);
                    seen[k] = true;
                    if (k == 0)
                        model = bson_strdup(value);
                }
            }
        }
        free(line);
        fclose(f);
    }
    static const char *const freq[][2] = {
        {"cpuinfo_max_freq", "max_frequency_khz"},
        {"cpuinfo_min_freq", "min_frequency_khz"}};
    char *max_khz = NULL;
    for (size_t k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "%s/sys/devices/system/cpu/cpu0/cpufreq/%s",
                 root, freq[k][0]);
        char *v = s_first_line(path);
        if (v)
            BSON_APPEND_UTF8(doc, freq[k][1], v);
        if (k == 0)
            max_khz = v;
        else
            bson_free(v);
    }
    int64_t mhz = s_frequency_mhz(max_khz, model);
    if (mhz > 0)
        BSON_APPEND_INT64(doc, "frequency_mhz", mhz);
    bson_free(max_khz);
    bson_free(model);
    /* Cache sizes by level from sysfs (L1d, L1i, L2, L3). */
    bson_t caches;
    BSON_APPEND_DOCUMENT_BEGIN(doc, "caches", &caches);
    for (int i = 0; i < 8; i++) {
        snprintf(path, sizeof path,
                 "%s/sys/devices/system/cpu/cpu0/cache/index%d/level", root, i);
        char *level = s_first_line(path);
        if (!level)
            break;
        snprintf(path, sizeof path,
                 "%s/sys/devices/system/cpu/cpu0/cache/index%d/type", root, i);
        char *type = s_first_line(path);
        snprintf(path, sizeof path,
                 "%s/sys/devices/system/cpu/cpu0/cache/index%d/size", root, i);
        char *size = s_first_line(path);
        if (type && size) {
            char key[64];
            snprintf(key, sizeof key, "L%s %s", level, type);
            BSON_APPEND_UTF8(&caches, key, size);
        }
        bson_free(level);
        bson_free(type);
        bson_free(size);
    }
    bson_append_document_end(doc, &caches);
}

static void s_runtime(bson_t *doc, const char *program_compiler)
{
#ifdef __VERSION__
#ifdef __clang__
    BSON_APPEND_UTF8(doc, "libxp_compiler", "clang " __VERSION__);
#else
    BSON_APPEND_UTF8(doc, "libxp_compiler", "gcc " __VERSION__);
#endif
#endif
    if (program_compiler)
        BSON_APPEND_UTF8(doc, "program_compiler", program_compiler);
    BSON_APPEND_UTF8(doc, "libc", "glibc");
    BSON_APPEND_UTF8(doc, "libc_version", gnu_get_libc_version());
    BSON_APPEND_UTF8(doc, "libxp_version", XP_VERSION_STRING);
#ifdef XP_BUILD_TYPE
    BSON_APPEND_UTF8(doc, "libxp_build_type", XP_BUILD_TYPE);
#endif
#ifdef __OPTIMIZE__
    BSON_APPEND_BOOL(doc, "libxp_optimized", true);
#else
    BSON_APPEND_BOOL(doc, "libxp_optimized", false);
#endif
    BSON_APPEND_UTF8(doc, "build_id", xp__build_id());
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        BSON_APPEND_UTF8(doc, "executable", exe);
    }
}

typedef struct {
    bson_t *arr;
    uint32_t n;
} s_libs;

static int s_lib_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    s_libs *libs = data;
    const char *name = info->dlpi_name;
    if (!name || !name[0] || strncmp(name, "linux-vdso", 10) == 0 ||
        strncmp(name, "linux-gate", 10) == 0)
        return 0;
    char real[PATH_MAX];
    const char *resolved = realpath(name, real) ? real : name;
    const char *base = strrchr(resolved, '/');
    base = base ? base + 1 : resolved;
    const char *soname = strrchr(name, '/');
    soname = soname ? soname + 1 : name;
    /* The real file name carries the version: libsqlite3.so.0.8.6. */
    const char *so = strstr(base, ".so.");
    bson_t item;
    char key[16];
    const char *k;
    bson_uint32_to_string(libs->n++, &k, key, sizeof key);
    BSON_APPEND_DOCUMENT_BEGIN(libs->arr, k, &item);
    BSON_APPEND_UTF8(&item, "name", soname);
    BSON_APPEND_UTF8(&item, "path", resolved);
    BSON_APPEND_UTF8(&item, "version", so ? so + 4 : "");
    bson_append_document_end(libs->arr, &item);
    return 0;
}

/* Value of field `name` ("Package: ") if line starts with it. */
static bool s_field(const char *line, size_t len, const char *name, char *out,
                    size_t size)
{
    size_t n = strlen(name);
    if (len < n || memcmp(line, name, n) != 0)
        return false;
    size_t v = len - n;
    while (v && (line[n + v - 1] == ' ' || line[n + v - 1] == '\t' ||
                 line[n + v - 1] == '\r'))
        v--;
    if (v >= size)
        v = size - 1;
    memcpy(out, line + n, v);
    out[v] = '\0';
    return true;
}

/* "package[:arch] version" of installed dpkg packages, from one read of
 * the status file (it is most of a megabyte). */
static void s_dpkg_parse(bson_t *doc)
{
    size_t size = 0;
    char *text = xp__read_file("/var/lib/dpkg/status", 64u << 20, &size);
    if (!text)
        return;
    bson_t arr;
    BSON_APPEND_ARRAY_BEGIN(doc, "packages", &arr);
    char pkg[256] = "", arch[64] = "", version[256] = "";
    bool installed = false;
    uint32_t n = 0;
    const char *p = text, *end = text + size;
    for (;;) {
        const char *nl = p < end ? memchr(p, '\n', (size_t)(end - p)) : NULL;
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (p >= end || len == 0) { /* end of a stanza */
            if (pkg[0] && installed) {
                /* "pkg[:arch] version", built by hand: snprintf was a
                 * third of the time of this loop. */
                char entry[600], key[16];
                size_t len_pkg = strlen(pkg), len_arch = strlen(arch),
                       len_version = strlen(version), e = 0;
                memcpy(entry, pkg, len_pkg);
                e += len_pkg;
                if (len_arch) {
                    entry[e++] = ':';
                    memcpy(entry + e, arch, len_arch);
                    e += len_arch;
                }
                entry[e++] = ' ';
                memcpy(entry + e, version, len_version);
                e += len_version;
                const char *k;
                bson_uint32_to_string(n++, &k, key, sizeof key);
                bson_append_utf8(&arr, k, -1, entry, (int)e);
            }
            pkg[0] = arch[0] = version[0] = '\0';
            installed = false;
            if (p >= end)
                break;
        } else if (*p == 'P') {
            s_field(p, len, "Package: ", pkg, sizeof pkg);
        } else if (*p == 'A') {
            s_field(p, len, "Architecture: ", arch, sizeof arch);
        } else if (*p == 'V') {
            s_field(p, len, "Version: ", version, sizeof version);
        } else if (*p == 'S') {
            char status[128];
            if (s_field(p, len, "Status: ", status, sizeof status))
                installed = strstr(status, " installed") != NULL;
        }
        p = nl ? nl + 1 : end;
    }
    bson_free(text);
    bson_append_array_end(doc, &arr);
}

/* The dpkg list, cached: reading and parsing the status file was the
 * largest piece of a script-mode process (docs/performance.md). The
 * cache, a document {key, packages}, is keyed by the status file's
 * device, inode, size and modification time (dpkg replaces the file
 * whole, so any change of the list changes the key); a cache that is
 * missing, damaged or stale is rebuilt from the file. */
#define XP_DPKG_STATUS "/var/lib/dpkg/status"
#define XP_DPKG_CACHE_MAX (16u << 20)
/* Set by xp__environment_prepare on the opening thread ("": no cache). */
static char s_dpkg_cache[PATH_MAX];

void xp__environment_prepare(void)
{
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    s_dpkg_cache[0] = '\0';
    if (xdg && xdg[0] == '/')
        snprintf(s_dpkg_cache, sizeof s_dpkg_cache, "%s/xp/dpkg-packages.bson",
                 xdg);
    else if (home && home[0] == '/')
        snprintf(s_dpkg_cache, sizeof s_dpkg_cache,
                 "%s/.cache/xp/dpkg-packages.bson", home);
}

/* Whether s[0..len) is printable ASCII, as dpkg names and versions are:
 * a cache holding anything else is not one of ours (and checking this is
 * much cheaper than validating UTF-8, which was most of a cache read). */
static bool s_printable(const char *s, uint32_t len)
{
    for (uint32_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

/* Whether arr is an array (keys "0", "1"...) of printable strings. libbson's
 * iterator checks every length against its parent; nothing nests here. */
static bool s_string_array(const bson_t *arr)
{
    bson_iter_t it;
    uint32_t i = 0, len;
    if (!bson_iter_init(&it, arr))
        return false;
    while (bson_iter_next(&it)) {
        char buf[16];
        const char *k;
        bson_uint32_to_string(i++, &k, buf, sizeof buf);
        if (!BSON_ITER_HOLDS_UTF8(&it) || strcmp(bson_iter_key(&it), k) != 0)
            return false;
        const char *v = bson_iter_utf8(&it, &len);
        if (!s_printable(v, len))
            return false;
    }
    return it.err_off == 0;
}

int xp__environment_dpkg_cache_decode(const uint8_t *data, size_t len,
                                      const char *key, bson_t *packages)
{
    bson_t doc, arr;
    bson_iter_t it;
    bool has_key = false, has_packages = false;
    if (len > XP_DPKG_CACHE_MAX || !bson_init_static(&doc, data, len) ||
        !bson_iter_init(&it, &doc))
        return -1;
    while (bson_iter_next(&it)) {
        const char *name = bson_iter_key(&it);
        uint32_t n = 0;
        if (!has_key && strcmp(name, "key") == 0 && BSON_ITER_HOLDS_UTF8(&it)) {
            const char *v = bson_iter_utf8(&it, &n);
            if (n != strlen(key) || memcmp(v, key, n) != 0)
                return -1;
            has_key = true;
        } else if (!has_packages && strcmp(name, "packages") == 0 &&
                   BSON_ITER_HOLDS_ARRAY(&it)) {
            const uint8_t *a;
            bson_iter_array(&it, &n, &a);
            if (!bson_init_static(&arr, a, n) || !s_string_array(&arr))
                return -1;
            has_packages = true;
        } else {
            return -1;
        }
    }
    if (it.err_off != 0 || !has_key || !has_packages)
        return -1;
    bson_copy_to(&arr, packages);
    return 0;
}

/* Writes the cache whole (a temporary file renamed over it); a failure
 * only means the next process parses the status file again. */
static void s_dpkg_cache_write(const char *key, const bson_t *packages)
{
    char dir[PATH_MAX], tmp[PATH_MAX + 32];
    snprintf(dir, sizeof dir, "%s", s_dpkg_cache);
    char *slash = strrchr(dir, '/');
    if (!slash)
        return;
    *slash = '\0';
    if (xp__mkdir_p(dir, NULL) != 0)
        return;
    bson_t doc = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&doc, "key", key);
    BSON_APPEND_ARRAY(&doc, "packages", packages);
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", s_dpkg_cache, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    bool ok = f && fwrite(bson_get_data(&doc), 1, doc.len, f) == doc.len;
    if (f && fclose(f) != 0)
        ok = false;
    if (!ok || rename(tmp, s_dpkg_cache) != 0)
        unlink(tmp);
    bson_destroy(&doc);
}

static void s_dpkg(bson_t *doc)
{
    struct stat st;
    if (!s_dpkg_cache[0] || stat(XP_DPKG_STATUS, &st) != 0) {
        s_dpkg_parse(doc);
        return;
    }
    char key[160];
    snprintf(key, sizeof key, "%s 1 %llu %llu %lld %lld.%09ld", XP_DPKG_STATUS,
             (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
             (long long)st.st_size, (long long)st.st_mtim.tv_sec,
             (long)st.st_mtim.tv_nsec);
    size_t len = 0;
    char *bytes = xp__read_file(s_dpkg_cache, XP_DPKG_CACHE_MAX, &len);
    bson_t packages;
    bool hit = bytes && xp__environment_dpkg_cache_decode(
                            (const uint8_t *)bytes, len, key, &packages) == 0;
    bson_free(bytes);
    if (hit) {
        BSON_APPEND_ARRAY(doc, "packages", &packages);
        bson_destroy(&packages);
        return;
    }
    bson_t parsed = BSON_INITIALIZER;
    s_dpkg_parse(&parsed);
    if (xp__bson_sub(&parsed, "packages", &packages))
        s_dpkg_cache_write(key, &packages);
    bson_concat(doc, &parsed);
    bson_destroy(&parsed);
}

static void s_libraries(bson_t *doc)
{
    bson_t arr;
    BSON_APPEND_ARRAY_BEGIN(doc, "loaded", &arr);
    s_libs libs = {&arr, 0};
    /* Not the modules libxp loaded for itself (libmongoc, libgit2...):
     * whether one is loaded yet would depend on timing. */
    xp__module_iterate_phdr(s_lib_cb, &libs);
    bson_append_array_end(doc, &arr);
    s_dpkg(doc);
}

static void s_gpu(bson_t *doc)
{
    char *nvidia = s_first_line("/proc/driver/nvidia/version");
    if (nvidia)
        BSON_APPEND_UTF8(doc, "nvidia_driver", nvidia);
    bson_free(nvidia);
    FILE *f = fopen("/proc/driver/nvidia/gpus", "r");
    if (f) /* the directory exists when a GPU is present */
        fclose(f);
}

void xp__environment_local(bson_t *out, bson_t *gpu,
                           const char *program_compiler)
{
    bson_t cat;
    BSON_APPEND_DOCUMENT_BEGIN(out, "platform", &cat);
    s_platform(&cat);
    bson_append_document_end(out, &cat);
    BSON_APPEND_DOCUMENT_BEGIN(out, "cpu", &cat);
    xp__environment_cpu(&cat, "");
    bson_append_document_end(out, &cat);
    BSON_APPEND_DOCUMENT_BEGIN(out, "runtime", &cat);
    s_runtime(&cat, program_compiler);
    bson_append_document_end(out, &cat);
    BSON_APPEND_DOCUMENT_BEGIN(out, "libraries", &cat);
    s_libraries(&cat);
    bson_append_document_end(out, &cat);
    s_gpu(gpu);
}

void xp__environment_assemble(bson_t *out, const bson_t *local,
                              const bson_t *git, const bson_t *gpu)
{
    bson_concat(out, local);
    BSON_APPEND_DOCUMENT(out, "git", git);
    if (!bson_empty(gpu))
        BSON_APPEND_DOCUMENT(out, "gpu", gpu);
}

void xp__environment_capture(bson_t *out, const char *program_compiler)
{
    xp__environment_prepare();
    bson_t local = BSON_INITIALIZER, gpu = BSON_INITIALIZER,
           git = BSON_INITIALIZER;
    xp__environment_local(&local, &gpu, program_compiler);
    xp__git_capture(&git);
    xp__environment_assemble(out, &local, &git, &gpu);
    bson_destroy(&local);
    bson_destroy(&gpu);
    bson_destroy(&git);
}
