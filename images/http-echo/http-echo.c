/*
 * http-echo: an offline stand-in for hashicorp/http-echo 0.2.3 (NOT HashiCorp's binary).
 *
 * Same flags (-text, -listen, -status-code, -version), same default listen address (:5678),
 * same behaviour: every request is answered with the text and a newline (`/health` with
 * {"status":"ok"}), and each request is logged to stdout in http-echo's format
 *   2006/01/02 15:04:05 HOST REMOTE "METHOD PATH PROTO" STATUS SIZE "USER-AGENT" DURATION
 *
 * Built with `gcc -static -O2`. Its syscalls stay inside the seccomp tutorial's
 * fine-grained.json: no stdio (stdio fstat()s its streams), no name resolution, no threads;
 * one connection at a time (a receive timeout bounds a slow client).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#define VERSION "0.2.3"
#define REQ_MAX 16384

static void out(int fd, const char *fmt, ...) {
    char buf[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if (n > (int)sizeof buf - 1) n = sizeof buf - 1;
    for (int off = 0; off < n;) {
        ssize_t w = write(fd, buf + off, n - off);
        if (w <= 0) { if (w < 0 && errno == EINTR) continue; return; }
        off += w;
    }
}

/* UTC calendar fields of a Unix time; gmtime_r is avoided because glibc's tzset reads
 * /etc/localtime on first use (days-to-civil algorithm of H. Hinnant, public domain). */
static void utc(time_t t, struct tm *tm) {
    long days = t / 86400, rem = t % 86400;
    if (rem < 0) { rem += 86400; days--; }
    tm->tm_hour = rem / 3600;
    tm->tm_min = rem % 3600 / 60;
    tm->tm_sec = rem % 60;
    tm->tm_wday = (int)((days % 7 + 11) % 7); /* 1970-01-01 was a Thursday */
    long z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
    long doe = z - era * 146097, yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    long d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9;
    tm->tm_year = (int)(yoe + era * 400 + (m <= 2)) - 1900;
    tm->tm_mon = (int)m - 1;
    tm->tm_mday = (int)d;
}

/* Go's log package prefix: "2006/01/02 15:04:05 " (UTC: a container has no zoneinfo here). */
static void stamp(char *buf, size_t len) {
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    utc(ts.tv_sec, &tm);
    /* snprintf, not strftime: strftime loads /etc/localtime (tzset). */
    snprintf(buf, len, "%04d/%02d/%02d %02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Go's time.Duration formatting (%v) for short durations: trailing zeros trimmed. */
static void duration(char *buf, size_t len, double secs) {
    double ns = secs * 1e9;
    const char *unit = "s";
    int prec = 9;
    double v = secs;
    if (ns < 1e3) { snprintf(buf, len, "%.0fns", ns); return; }
    if (ns < 1e6) { v = ns / 1e3; unit = "\u00b5s"; prec = 3; }
    else if (ns < 1e9) { v = ns / 1e6; unit = "ms"; prec = 6; }
    int n = snprintf(buf, len, "%.*f", prec, v);
    while (n > 0 && buf[n - 1] == '0') buf[--n] = 0;
    if (n > 0 && buf[n - 1] == '.') buf[--n] = 0;
    snprintf(buf + n, len - n, "%s", unit);
}

/* Parses a Go flag "-name=value" / "--name=value" / "-name value". */
static int flag(int argc, char **argv, int *i, const char *name, const char **value) {
    const char *a = argv[*i];
    if (a[0] != '-') return 0;
    a += (a[1] == '-') ? 2 : 1;
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0) return 0;
    if (a[n] == '=') { *value = a + n + 1; return 1; }
    if (a[n] != '\0') return 0;
    if (*i + 1 >= argc) {
        out(2, "flag needs an argument: -%s\n", name);
        exit(2);
    }
    *value = argv[++*i];
    return 1;
}

static int listen_on(const char *addr) {
    const char *colon = strrchr(addr, ':');
    if (!colon) { out(2, "listen %s: missing port in address\n", addr); exit(1); }
    int port = atoi(colon + 1);
    char host[256] = {0};
    size_t hl = colon - addr;
    if (hl >= sizeof host) hl = sizeof host - 1;
    memcpy(host, addr, hl);
    if (host[0] == '[') { memmove(host, host + 1, strlen(host)); host[strcspn(host, "]")] = 0; }
    int one = 1, zero = 0, fd = -1;
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = in6addr_any};
    struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_ANY)};
    if (host[0] == 0 || inet_pton(AF_INET6, host, &a6.sin6_addr) == 1) {
        fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0) {
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
            if (bind(fd, (struct sockaddr *)&a6, sizeof a6) == 0 && listen(fd, 128) == 0) return fd;
            close(fd);
            fd = -1;
        }
        if (host[0] != 0) { out(2, "listen tcp %s: %s\n", addr, strerror(errno)); exit(1); }
    } else if (inet_pton(AF_INET, host, &a4.sin_addr) != 1) {
        out(2, "listen tcp %s: unknown host (only numeric addresses are supported)\n", addr);
        exit(1);
    }
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) { out(2, "listen tcp %s: %s\n", addr, strerror(errno)); exit(1); }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&a4, sizeof a4) != 0 || listen(fd, 128) != 0) {
        out(2, "listen tcp %s: %s\n", addr, strerror(errno));
        exit(1);
    }
    return fd;
}

static void peer_name(const struct sockaddr_storage *ss, char *buf, size_t len) {
    char ip[INET6_ADDRSTRLEN] = "?";
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const void *)ss;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
        snprintf(buf, len, "%s:%d", ip, ntohs(a->sin_port));
    } else {
        const struct sockaddr_in6 *a = (const void *)ss;
        if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
            inet_ntop(AF_INET, &a->sin6_addr.s6_addr[12], ip, sizeof ip);
            snprintf(buf, len, "%s:%d", ip, ntohs(a->sin6_port));
        } else {
            inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
            snprintf(buf, len, "[%s]:%d", ip, ntohs(a->sin6_port));
        }
    }
}

/* Copies header `name` (case-insensitive) of the request head into buf. */
static void header(const char *req, const char *name, char *buf, size_t len) {
    size_t n = strlen(name);
    buf[0] = 0;
    for (const char *line = strstr(req, "\r\n"); line && line[2] && !(line[2] == '\r'); line = strstr(line + 2, "\r\n")) {
        if (strncasecmp(line + 2, name, n) == 0 && line[2 + n] == ':') {
            const char *v = line + 3 + n;
            while (*v == ' ' || *v == '\t') v++;
            size_t vl = strcspn(v, "\r\n");
            if (vl >= len) vl = len - 1;
            memcpy(buf, v, vl);
            buf[vl] = 0;
            return;
        }
    }
}

static void serve(int c, const struct sockaddr_storage *peer, const char *text, int status) {
    double start = now();
    char req[REQ_MAX + 1];
    size_t got = 0;
    while (got < REQ_MAX) {
        ssize_t r = read(c, req + got, REQ_MAX - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += r;
        req[got] = 0;
        if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n")) break;
    }
    req[got] = 0;
    char method[32] = "", path[4096] = "", proto[32] = "";
    if (sscanf(req, "%31s %4095s %31s", method, path, proto) != 3) return;
    char *q = strchr(path, '?');
    if (q) *q = 0;
    char host[512], agent[1024], remote[128], when[64], date[64], dur[64];
    header(req, "Host", host, sizeof host);
    header(req, "User-Agent", agent, sizeof agent);
    peer_name(peer, remote, sizeof remote);

    char body[8192];
    int code = status;
    if (strcmp(path, "/health") == 0) { snprintf(body, sizeof body, "{\"status\":\"ok\"}\n"); code = 200; }
    else snprintf(body, sizeof body, "%s\n", text);
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    utc(ts.tv_sec, &tm);
    static const char days[] = "SunMonTueWedThuFriSat", months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    snprintf(date, sizeof date, "%.3s, %02d %.3s %04d %02d:%02d:%02d GMT", days + 3 * tm.tm_wday, tm.tm_mday,
             months + 3 * tm.tm_mon, tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    const char *ctype = strcmp(path, "/health") == 0 ? "application/json" : "text/plain; charset=utf-8";
    size_t blen = strlen(body);
    out(c, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nX-App-Name: http-echo\r\nX-App-Version: %s\r\n"
           "Date: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
        code, code == 200 ? "OK" : "Status", ctype, VERSION, date, blen, strcmp(method, "HEAD") ? body : "");
    stamp(when, sizeof when);
    duration(dur, sizeof dur, now() - start);
    out(1, "%s %s %s \"%s %s %s\" %d %zu \"%s\" %s\n", when, host, remote, method, path, proto, code, blen, agent, dur);
}

/* A Go program without signal.Notify exits on SIGTERM/SIGINT (status 2), also as a container's
 * PID 1, where the kernel would otherwise drop a signal left at its default action: the pod
 * then stops at `kubectl delete` instead of waiting out its grace period. */
static void on_term(int sig) {
    (void)sig;
    _exit(2);
}

int main(int argc, char **argv) {
    const char *listen_addr = ":5678", *text = NULL, *v = NULL;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    int status = 200;
    for (int i = 1; i < argc; i++) {
        if (flag(argc, argv, &i, "listen", &listen_addr) || flag(argc, argv, &i, "text", &text)) continue;
        if (flag(argc, argv, &i, "status-code", &v)) { status = atoi(v); continue; }
        if (strcmp(argv[i], "-version") == 0 || strcmp(argv[i], "--version") == 0) {
            out(1, "http-echo v%s (armorlet offline stand-in)\n", VERSION);
            return 0;
        }
        if (argv[i][0] == '-') { out(2, "flag provided but not defined: %s\n", argv[i]); return 2; }
        out(2, "Too many arguments!\n");
        return 127;
    }
    if (!text || !*text) { out(2, "Missing -text option!\n"); return 127; }
    int fd = listen_on(listen_addr);
    char when[64];
    stamp(when, sizeof when);
    out(1, "%s [INFO] server is listening on %s\n", when, listen_addr);
    struct timeval tv = {.tv_sec = 5};
    for (;;) {
        struct sockaddr_storage peer;
        socklen_t pl = sizeof peer;
        int c = accept4(fd, (struct sockaddr *)&peer, &pl, SOCK_CLOEXEC);
        if (c < 0) { if (errno == EINTR || errno == ECONNABORTED) continue; out(2, "accept: %s\n", strerror(errno)); return 1; }
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        serve(c, &peer, text, status);
        close(c);
    }
}
