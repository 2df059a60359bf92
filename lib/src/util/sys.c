/* sys.c — small operating-system helpers: clocks, host identity, process
 * start times (to tell a dead recording process from pid reuse), mkdir -p. */
#include "util/sys.h"

#include "util/error.h"

#include <bson/bson.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int64_t xp__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double xp__monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static pthread_once_t s_host_once = PTHREAD_ONCE_INIT;
static char s_host[256];

static void s_host_init(void)
{
    if (gethostname(s_host, sizeof s_host - 1) != 0)
        strcpy(s_host, "unknown");
    s_host[sizeof s_host - 1] = '\0';
}

const char *xp__hostname(void)
{
    pthread_once(&s_host_once, s_host_init);
    return s_host;
}

uint64_t xp__process_start(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name (field 2) may hold spaces and parentheses: fields
     * are counted from the last ')'. starttime is field 22. */
    char *p = strrchr(buf, ')');
    if (!p)
        return 0;
    int field = 2;
    for (p++; *p && field < 22; p++)
        if (*p == ' ')
            field++;
    unsigned long long start = 0;
    if (sscanf(p, "%llu", &start) != 1)
        return 0;
    return start ? start : 1;
}

uint64_t xp__self_start(void)
{
    /* Cached per pid, so a forked child computes its own. */
    static _Thread_local pid_t cached_pid;
    static _Thread_local uint64_t cached_start;
    pid_t pid = getpid();
    if (pid != cached_pid) {
        cached_start = xp__process_start(pid);
        cached_pid = pid;
    }
    return cached_start;
}

int xp__mkdir_p(const char *path, xp_error_t *err)
{
    char buf[4096];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof buf)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "invalid directory path '%s'", path);
    memcpy(buf, path, len + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return xp__error(err, XP_DOMAIN_SYSTEM, XP_EIO,
                             "cannot create directory '%s': %s", buf,
                             strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        return xp__error(err, XP_DOMAIN_SYSTEM, XP_EIO,
                         "cannot create directory '%s': %s", buf,
                         strerror(errno));
    return 0;
}

char *xp__read_file(const char *path, size_t max, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t size = 0, cap = 0, n;
    do {
        if (cap - size < 65536) {
            cap = cap ? cap * 2 : 65536;
            buf = bson_realloc(buf, cap + 1);
        }
        n = fread(buf + size, 1, cap - size, f);
        size += n;
    } while (n > 0 && size <= max);
    fclose(f);
    if (size > max) {
        bson_free(buf);
        return NULL;
    }
    buf[size] = '\0';
    *len = size;
    return buf;
}

int xp__cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}
