/* fuzz_request.c — fuzz target of xp-dashboard's request handling: each
 * input is sent as raw bytes (one or more HTTP requests) to a real
 * server running in this process (libmicrohttpd, the checks, the routes
 * over a small seeded store), and what comes back is checked: a
 * response, when there is one, is HTTP; a JSON body of ours holds no raw
 * '<'. Replayed over corpus/request/ as an ordinary test. */
#include "handles.h"
#include "http.h"
#include "routes.h"

#include <xp/xp.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <poll.h>
#include <stdbool.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HOSTILE "<img src=x onerror=alert(1)>"

static int s_port;

static int s_step(xp_step *st, const xp_value *const *in, xp_value *out)
{
    for (int e = 0; e < 50; e++)
        xp_save_metric(st, "loss", e, 1.0 / (e + 1));
    if (xp_as_int64(in[0]) == 2)
        return xp_step_fail(st, "%s", HOSTILE);
    return xp_set_string(out, HOSTILE);
}

/* A store with experiment fz (3 trials, one failed) in a fresh
 * directory; aborts when it cannot be made. */
static const char *s_seed(void)
{
    static char dir[] = "/tmp/xp-fuzz-request-XXXXXX";
    if (!mkdtemp(dir))
        abort();
    xp_log_set_level(XP_LOG_OFF);
    xp_open_options o = XP_OPEN_OPTIONS_INIT;
    o.backend = dir;
    xp_experiment *ex = NULL;
    if (xp_experiment_open(&ex, "fz", &o, NULL) != 0)
        abort();
    xp_node *a = xp_parameter(ex, "a");
    xp_persist(xp_result(xp_step_add(ex, "s_step", s_step, 1, &a, NULL, 0)));
    for (int i = 1; i <= 3; i++) {
        xp_set_param_int64(ex, "a", i, NULL);
        xp_compute(ex, NULL, NULL, NULL, NULL);
    }
    xp_experiment_destroy(&ex);
    return dir;
}

/* The server, started once for the whole run (never stopped). */
static void s_start(void)
{
    const char *dir = s_seed();
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(fd, 16) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
        abort();
    s_port = ntohs(sa.sin_port);
    static xpd_assets *assets;
    static xpd_routes *routes;
    static xpd_http *http;
    if (xpd_assets_open(&assets, NULL, NULL) != 0 ||
        xpd_routes_new(&routes, dir, NULL, 0, 4, NULL) != 0)
        abort();
    xpd_http_config c = {.listen_fd = fd,
                         .threads = 2,
                         .max_connections = 4096,
                         .timeout_s = 1,
                         .connection_memory = 64 * 1024,
                         .loopback_only = true,
                         .assets = assets,
                         .routes = routes};
    if (xpd_http_start(&http, &c, NULL) != 0)
        abort();
}

/* Waits up to ms for fd to be readable. */
static bool s_readable(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, ms) == 1;
}

/* The Content-Length of the response head in buf, or 0. */
static size_t s_content_length(const char *buf)
{
    const char *p = strcasestr(buf, "\r\nContent-Length:");
    return p ? (size_t)strtoul(p + 17, NULL, 10) : 0;
}

/* Sends data and reads the first response (at most cap bytes). A
 * request head never completed gets no answer, so it is not waited for,
 * and one libmicrohttpd does not answer (a method of non-ASCII bytes) is
 * given up after 100 ms; libmicrohttpd keeps a connection open after a
 * half-close, so the end of an answer is found by its Content-Length (a
 * HEAD or 304 answer ends when nothing more comes for 50 ms). */
static size_t s_exchange(const uint8_t *data, size_t size, char *buf,
                         size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)s_port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        abort();
    for (size_t off = 0; off < size;) {
        ssize_t n = send(fd, data + off, size - off, MSG_NOSIGNAL);
        if (n <= 0)
            break; /* the server closed early: fine */
        off += (size_t)n;
    }
    bool head =
        memmem(data, size, "\r\n\r\n", 4) || memmem(data, size, "\n\n", 2);
    size_t got = 0, want = 0;
    const char *end = NULL;
    while (head && got < cap && s_readable(fd, end ? 50 : 100)) {
        ssize_t n = recv(fd, buf + got, cap - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
        buf[got] = '\0';
        if (!end && (end = strstr(buf, "\r\n\r\n")) != NULL)
            want = (size_t)(end + 4 - buf) + s_content_length(buf);
        if (end && want && got >= want)
            break;
    }
    close(fd);
    buf[got] = '\0';
    return got;
}

/* One response of ours with a JSON body must have no '<' in it. */
static void s_check(const char *buf, size_t n)
{
    if (n == 0)
        return;
    if (strncmp(buf, "HTTP/1.", 7) != 0)
        abort();
    const char *second = strstr(buf + 1, "HTTP/1.");
    const char *body = strstr(buf, "\r\n\r\n");
    if (second || !body || !strstr(buf, "application/json"))
        return;
    if (memchr(body, '<', n - (size_t)(body - buf)))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char buf[1 << 20];
    if (!s_port)
        s_start();
    if (size > 64 * 1024)
        return 0;
    size_t n = s_exchange(data, size, buf, sizeof buf - 1);
    s_check(buf, n);
    return 0;
}
