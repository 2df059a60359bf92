/* log.c — process-wide logging through a settable handler.
 * The default handler writes daskperiment-style lines to stderr:
 * `2026-11-28 12:00:00,123 [INFO] Started Experiment (trial id=1)`. */
#include "util/log.h"

#include "util/error.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static xp_log_fn s_handler;
static void *s_user;
static _Atomic int s_level = XP_LOG_INFO;

static const char *const s_names[] = {"DEBUG", "INFO", "WARNING", "ERROR",
                                      "OFF"};

static void s_default_handler(xp_log_level level, const char *msg, void *user)
{
    (void)user;
    struct timespec ts;
    struct tm tm;
    char stamp[32];
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &tm);
    /* One fprintf per line so concurrent threads do not interleave. */
    fprintf(stderr, "%s,%03ld [%s] %s\n", stamp, ts.tv_nsec / 1000000,
            s_names[level], msg);
}

void xp_log_set_handler(xp_log_fn fn, void *user)
{
    pthread_mutex_lock(&s_lock);
    s_handler = fn;
    s_user = user;
    pthread_mutex_unlock(&s_lock);
}

void xp_log_set_level(xp_log_level level)
{
    if (level < XP_LOG_DEBUG || level > XP_LOG_OFF)
        level = XP_LOG_INFO;
    atomic_store(&s_level, (int)level);
}

xp_log_level xp_log_get_level(void)
{
    return (xp_log_level)atomic_load(&s_level);
}

int xp_log_level_parse(const char *name, xp_log_level *out, xp_error_t *err)
{
    static const char *const lower[] = {"debug", "info", "warning", "error",
                                        "off"};
    for (int i = 0; name && i < 5; i++) {
        if (strcasecmp(name, lower[i]) == 0) {
            *out = (xp_log_level)i;
            return 0;
        }
    }
    return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                     "unknown log level '%s' (expected debug, info, "
                     "warning, error or off)",
                     name ? name : "");
}

bool xp__log_enabled(xp_log_level level)
{
    return level < XP_LOG_OFF && (int)level >= atomic_load(&s_level);
}

void xp__log(xp_log_level level, const char *fmt, ...)
{
    if (!xp__log_enabled(level))
        return;
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&s_lock);
    xp_log_fn fn = s_handler ? s_handler : s_default_handler;
    void *user = s_user;
    /* Called under the lock so a handler being replaced is never called
     * after xp_log_set_handler returned. */
    fn(level, buf, user);
    pthread_mutex_unlock(&s_lock);
}
