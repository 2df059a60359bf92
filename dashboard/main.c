/* xp-dashboard — a web page over the history, metrics, code and
 * environment of experiments, read-only. A thin main: the option table
 * below (the daemons' machinery: usage, flags with bounds, --config, XP_*
 * variables, --print-config), the listening socket, then http.c serves
 * until SIGINT or SIGTERM. Arguments that are not options are experiment
 * ids: only those are served. */
#include "assets.h"
#include "auth.h"
#include "http.h"
#include "routes.h"

#include "remote/config.h"
#include "util/error.h"
#include "util/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

typedef struct {
    const char *backend;
    const char *listen;
    const char *auth;
    bool insecure;
    int threads;
    int max_connections;
    int timeout_s;
    size_t connection_memory;
    size_t max_open;
    const char *web_dir;
} s_options;

#define S_AT(field) offsetof(s_options, field)

static const xp_option s_table[] = {
    {.name = "backend",
     .type = XP_OPTION_STRING,
     .offset = S_AT(backend),
     .env = "XP_BACKEND",
     .dflt = "xp_cache",
     .arg = "B",
     .help = "directory or URI holding the experiments"},
    {.name = "listen",
     .type = XP_OPTION_STRING,
     .offset = S_AT(listen),
     .env = "XP_DASHBOARD_LISTEN",
     .dflt = "127.0.0.1:8080",
     .arg = "HOST:PORT",
     .help = "address to serve on (port 0: any free port); an address "
             "other than loopback needs --auth or --insecure"},
    {.name = "auth",
     .type = XP_OPTION_STRING,
     .offset = S_AT(auth),
     .env = "XP_DASHBOARD_AUTH",
     .arg = "FILE",
     .help = "HTTP Basic users: user:HASH lines, crypt(3) yescrypt, "
             "sha512-crypt or bcrypt hashes (xp-dashboard --hash-password "
             "makes one)"},
    {.name = "insecure",
     .type = XP_OPTION_SWITCH,
     .offset = S_AT(insecure),
     .help = "serve another address than loopback without authentication"},
    {.name = "threads",
     .type = XP_OPTION_INT,
     .offset = S_AT(threads),
     .dflt_int = 2,
     .min = 1,
     .max = 64,
     .arg = "N",
     .help = "threads answering requests"},
    {.name = "max-connections",
     .type = XP_OPTION_INT,
     .offset = S_AT(max_connections),
     .dflt_int = 64,
     .min = 1,
     .max = 10000,
     .arg = "N",
     .help = "connections open at once; more wait to be accepted"},
    {.name = "timeout",
     .type = XP_OPTION_INT,
     .offset = S_AT(timeout_s),
     .dflt_int = 30,
     .min = 1,
     .max = 3600,
     .arg = "SECONDS",
     .help = "an idle connection is closed after this long"},
    {.name = "connection-memory",
     .type = XP_OPTION_SIZE,
     .offset = S_AT(connection_memory),
     .dflt_int = 64 * 1024,
     .min = 16 * 1024,
     .max = 16 * 1024 * 1024,
     .arg = "BYTES",
     .help = "memory for one connection's request head; a larger head is "
             "refused"},
    {.name = "max-open",
     .type = XP_OPTION_SIZE,
     .offset = S_AT(max_open),
     .dflt_int = 64,
     .min = 1,
     .max = 4096,
     .arg = "N",
     .help = "experiments kept open at once (the least recently used idle "
             "one is closed for another)"},
    {.name = "web-dir",
     .type = XP_OPTION_STRING,
     .offset = S_AT(web_dir),
     .arg = "DIR",
     .help = "serve the page's files from DIR instead of the built-in "
             "ones (front-end development)"},
    {.name = NULL},
};

/* ---------------------------------------------------------------- address */

typedef struct {
    struct sockaddr_storage addr;
    socklen_t len;
    char host[256]; /* as given, for the printed URL */
    bool loopback;
} s_address;

static bool s_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >>
                24) == 127;
    if (sa->sa_family != AF_INET6)
        return false;
    const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    return IN6_IS_ADDR_LOOPBACK(a) ||
           (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
}

/* HOST:PORT or [V6]:PORT into out. */
static int s_parse_listen(const char *text, s_address *out, xp_error_t *err)
{
    memset(out, 0, sizeof *out);
    const char *colon = strrchr(text, ':');
    size_t hlen = colon ? (size_t)(colon - text) : 0;
    if (!colon || hlen == 0 || hlen >= sizeof out->host || !colon[1])
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "--listen '%s': expected HOST:PORT", text);
    memcpy(out->host, text, hlen);
    char host[256];
    snprintf(host, sizeof host, "%s", out->host);
    if (host[0] == '[' && host[hlen - 1] == ']') {
        memmove(host, host + 1, hlen - 2);
        host[hlen - 2] = '\0';
    }
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "--listen '%s': port must be 0-65535", text);
    struct addrinfo hints = {.ai_flags = AI_PASSIVE | AI_NUMERICSERV,
                             .ai_socktype = SOCK_STREAM},
                    *res = NULL;
    int rc = getaddrinfo(host, colon + 1, &hints, &res);
    if (rc != 0)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "--listen '%s': %s", text, gai_strerror(rc));
    memcpy(&out->addr, res->ai_addr, res->ai_addrlen);
    out->len = res->ai_addrlen;
    out->loopback = s_is_loopback(res->ai_addr);
    freeaddrinfo(res);
    return 0;
}

/* A socket listening on a; its port into *port. */
static int s_listen(const s_address *a, int *fd_out, int *port, xp_error_t *err)
{
    int fd = socket(a->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_storage got;
    socklen_t len = sizeof got;
    if (fd < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (const struct sockaddr *)&a->addr, a->len) != 0 ||
        listen(fd, 128) != 0 ||
        getsockname(fd, (struct sockaddr *)&got, &len) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return xp__error(err, XP_DOMAIN_SYSTEM, XP_EIO,
                         "cannot listen on %s: %s", a->host, strerror(e));
    }
    *port = ntohs(got.ss_family == AF_INET6
                      ? ((struct sockaddr_in6 *)&got)->sin6_port
                      : ((struct sockaddr_in *)&got)->sin_port);
    *fd_out = fd;
    return 0;
}

/* ---------------------------------------------------------------- options */

static int s_check(const void *opts, xp_error_t *err)
{
    const s_options *o = opts;
    s_address a;
    if (s_parse_listen(o->listen, &a, err) != 0)
        return -1;
    if (o->auth && o->insecure)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "--auth and --insecure exclude each other");
    if (!a.loopback && !o->auth && !o->insecure)
        return xp__error(err, XP_DOMAIN_ARGUMENT, XP_EINVAL,
                         "refusing to serve %s, which is not a loopback "
                         "address, without --auth FILE (or --insecure)",
                         o->listen);
    return 0;
}

static const xp_config_spec s_spec = {
    .program = "xp-dashboard",
    .about = "Serves a read-only web page over the experiments of a "
             "backend: history, metrics, code, environment and the graph "
             "(docs/dashboard.md). Arguments that are not options are "
             "experiment ids: only those are served. `xp-dashboard "
             "--hash-password` reads a password on stdin and prints its "
             "hash for an --auth file.",
    .config_env = "XP_DASHBOARD_CONFIG",
    .config_example = "backend = xp_cache, listen = 127.0.0.1:8080",
    .options = s_table,
    .check = s_check,
};

/* Whether option arg (an argv element) takes the next one as its value. */
static bool s_takes_value(const char *arg)
{
    if (strcmp(arg, "--config") == 0 || strcmp(arg, "--log-level") == 0)
        return true;
    for (const xp_option *o = s_table; o->name; o++)
        if (strncmp(arg, "--", 2) == 0 && strcmp(arg + 2, o->name) == 0)
            return o->type != XP_OPTION_SWITCH;
    return false;
}

/* Moves the experiment ids out of argv (options and their values stay,
 * in order); *ids and the kept argv are caller-freed arrays. */
static void s_split_args(int argc, char **argv, char ***kept, int *n_kept,
                         const char ***ids, size_t *n_ids)
{
    *kept = calloc((size_t)argc + 1, sizeof **kept);
    *ids = calloc((size_t)argc + 1, sizeof **ids);
    if (!*kept || !*ids) {
        fputs("xp-dashboard: out of memory\n", stderr);
        exit(1);
    }
    *n_kept = 0;
    *n_ids = 0;
    (*kept)[(*n_kept)++] = argv[0];
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] != '-') {
            (*ids)[(*n_ids)++] = argv[i];
            continue;
        }
        (*kept)[(*n_kept)++] = argv[i];
        if (s_takes_value(argv[i]) && i + 1 < argc)
            (*kept)[(*n_kept)++] = argv[++i];
    }
}

/* ---------------------------------------------------------------- hashing */

/* One line of stdin without its newline, echo off on a terminal. */
static int s_read_password(const char *prompt, char *buf, size_t size)
{
    bool tty = isatty(STDIN_FILENO);
    struct termios saved, quiet;
    if (tty && tcgetattr(STDIN_FILENO, &saved) == 0) {
        quiet = saved;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        fputs(prompt, stderr);
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    } else {
        tty = false;
    }
    bool got = fgets(buf, (int)size, stdin) != NULL;
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
        fputc('\n', stderr);
    }
    size_t n = got ? strcspn(buf, "\n") : 0;
    if (!got || (buf[n] != '\n' && !feof(stdin))) {
        fputs(got ? "xp-dashboard: password longer than 1024 bytes\n"
                  : "xp-dashboard: no password on stdin\n",
              stderr);
        return -1;
    }
    buf[n] = '\0';
    if (n > 0 && buf[n - 1] == '\r')
        buf[n - 1] = '\0';
    if (!buf[0]) {
        fputs("xp-dashboard: empty password\n", stderr);
        return -1;
    }
    return 0;
}

static int s_hash_password(void)
{
    char pw[1026], again[1026];
    if (s_read_password("Password: ", pw, sizeof pw) != 0)
        return 2;
    if (isatty(STDIN_FILENO)) {
        if (s_read_password("Again: ", again, sizeof again) != 0)
            return 2;
        if (strcmp(pw, again) != 0) {
            fputs("xp-dashboard: the passwords differ\n", stderr);
            return 2;
        }
    }
    char *hash = NULL;
    xp_error_t err;
    int rc = xpd_auth_hash(pw, &hash, &err);
    memset(pw, 0, sizeof pw);
    memset(again, 0, sizeof again);
    if (rc != 0) {
        fprintf(stderr, "xp-dashboard: %s\n", err.message);
        return 1;
    }
    printf("%s\n", hash);
    free(hash);
    return 0;
}

/* ---------------------------------------------------------------- serving */

typedef struct {
    xpd_auth *auth;
    xpd_assets *assets;
    xpd_routes *routes;
    xpd_http *http;
    int fd;
} s_server;

static void s_server_free(s_server *s)
{
    xpd_http_stop(&s->http);
    if (s->fd >= 0)
        close(s->fd);
    xpd_routes_destroy(&s->routes);
    xpd_assets_destroy(&s->assets);
    xpd_auth_destroy(&s->auth);
}

/* Opens everything o asks for and starts serving; the URL into url. */
static int s_start(s_server *s, const s_options *o, const char *const *ids,
                   size_t n_ids, char *url, size_t url_size, xp_error_t *err)
{
    s_address a;
    int port = 0;
    if (s_parse_listen(o->listen, &a, err) != 0 ||
        (o->auth && xpd_auth_load(&s->auth, o->auth, err) != 0) ||
        xpd_assets_open(&s->assets, o->web_dir, err) != 0 ||
        xpd_routes_new(&s->routes, o->backend, ids, n_ids, o->max_open, err) !=
            0 ||
        s_listen(&a, &s->fd, &port, err) != 0)
        return -1;
    xpd_http_config c = {
        .listen_fd = s->fd,
        .threads = o->threads,
        .max_connections = (unsigned)o->max_connections,
        .timeout_s = (unsigned)o->timeout_s,
        .connection_memory = o->connection_memory,
        .loopback_only = a.loopback,
        .auth = s->auth,
        .assets = s->assets,
        .routes = s->routes,
    };
    if (xpd_http_start(&s->http, &c, err) != 0)
        return -1;
    s->fd = -1; /* the server closes it */
    snprintf(url, url_size, "http://%s:%d/", a.host, port);
    if (!a.loopback && o->insecure)
        xp__log(XP_LOG_WARNING,
                "Serving %s without authentication (--insecure): anyone who "
                "reaches it reads every experiment",
                url);
    return 0;
}

static int s_check_ids(const char *const *ids, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        xp_error_t err;
        if (xp_check_id(ids[i], &err) != 0) {
            fprintf(stderr, "xp-dashboard: %s\n", err.message);
            return -1;
        }
    }
    return 0;
}

/* Serves until SIGINT or SIGTERM (blocked in every thread, taken here). */
static int s_run(const s_options *o, const char *const *ids, size_t n_ids)
{
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);
    s_server s = {.fd = -1};
    char url[400];
    xp_error_t err;
    int status = 0;
    if (s_start(&s, o, ids, n_ids, url, sizeof url, &err) != 0) {
        fprintf(stderr, "xp-dashboard: %s\n", err.message);
        status = err.domain == XP_DOMAIN_ARGUMENT ? 2 : 1;
    } else {
        printf("xp dashboard: %s\n", url);
        fflush(stdout);
        int sig = 0;
        sigwait(&stop, &sig);
        xp__log(XP_LOG_INFO, "Stopping (signal %d)", sig);
    }
    s_server_free(&s);
    return status;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--hash-password") == 0) {
            if (argc != 2) {
                fputs("xp-dashboard: --hash-password takes no other "
                      "argument\n",
                      stderr);
                return 2;
            }
            return s_hash_password();
        }
    char **kept;
    const char **ids;
    int n_kept;
    size_t n_ids;
    s_split_args(argc, argv, &kept, &n_kept, &ids, &n_ids);
    s_options o = {0};
    int status = 2;
    if (xp__config_load(&s_spec, &o, n_kept, kept, &status) &&
        s_check_ids(ids, n_ids) == 0)
        status = s_run(&o, ids, n_ids);
    xp__config_clear(&s_spec, &o);
    free(kept);
    free(ids);
    return status;
}
