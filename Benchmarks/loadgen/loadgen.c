/*
 * loadgen: Sockets' own load generator for echo servers. One process, one thread, epoll; loopback only.
 *
 *   loadgen MODE --port P [--host 127.0.0.1|::1|localhost] [--conns N] [--seconds S] [--warmup S]
 *           [--size B] [--busy-poll] [--inflight B] [--window W] [--timeout-ms T] [--sources K] [--marks]
 *
 * Modes (see ../README.md): rr, stream, connect, udp, idle. Each mode first runs --warmup seconds unmeasured,
 * then measures --seconds. Output: one human line, then one machine line of key=value pairs beginning with
 * `mode=` (the keys of ../../shared/bench/README.md, so ../../shared/bench/compare can drive it with
 * --loadgen). Exit status: 0 fine; 1 a verification error, a connection the server closed/reset/stalled,
 * or nothing measured; 2 usage or setup error (including any host other than loopback).
 *
 * Written for this project; shares no code with the reference load generator, only its command line and
 * output format.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

/* ---------------------------------------------------------------- options, time, reporting */

enum mode { M_RR, M_STREAM, M_CONNECT, M_UDP, M_IDLE };

static struct {
    enum mode mode;
    const char *mode_name;
    const char *host;
    int port;
    int conns;
    double seconds, warmup;
    int size;
    int busy_poll;
    long inflight;
    int window;
    int timeout_ms;
    int sources;
    int marks;
} opt;

static struct sockaddr_storage server_addr;
static socklen_t server_len;
static int family;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static long errors_total;
static void error_msg(const char *fmt, ...) {
    errors_total++;
    if (errors_total > 10) return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "loadgen: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

static void die(int status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "loadgen: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(status);
}

static void mark(const char *what) {
    if (!opt.marks) return;
    printf("MARK %s\n", what);
    fflush(stdout);
}

/* Latency histogram: 100 ns steps to 1 ms, 10 us steps to 101 ms, 1 ms steps to 10.101 s, then one overflow. */
#define HA 10000
#define HB 10000
#define HC 10000
static uint64_t hist[HA + HB + HC + 1];
static uint64_t hist_count;
static double hist_sum_us;

static void hist_add(uint64_t ns) {
    size_t i;
    if (ns < 1000000ull) i = ns / 100;
    else if (ns < 101000000ull) i = HA + (ns - 1000000ull) / 10000;
    else if (ns < 10101000000ull) i = HA + HB + (ns - 101000000ull) / 1000000;
    else i = HA + HB + HC;
    hist[i]++;
    hist_count++;
    hist_sum_us += ns / 1000.0;
}

/* The upper edge, in microseconds, of the bucket holding the p-th fraction of samples. */
static double hist_pct(double p) {
    if (hist_count == 0) return 0;
    uint64_t want = (uint64_t)(p * (double)hist_count);
    if (want >= hist_count) want = hist_count - 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < HA + HB + HC + 1; i++) {
        seen += hist[i];
        if (seen > want) {
            if (i < HA) return (i + 1) * 0.1;
            if (i < HA + HB) return 1000.0 + (i - HA + 1) * 10.0;
            if (i < HA + HB + HC) return 101000.0 + (i - HA - HB + 1) * 1000.0;
            return 10101000.0;
        }
    }
    return 0;
}

static double hist_mean(void) { return hist_count ? hist_sum_us / hist_count : 0; }

/* The measured window. `phase` moves 0 (warm-up) → 1 (measuring) → 2 (done); the marks go out as it moves. */
static uint64_t t_start, t_begin_planned, t_end_planned, t_begin, t_end;
static int phase;

static void phase_init(void) {
    t_start = now_ns();
    t_begin_planned = t_start + (uint64_t)(opt.warmup * 1e9);
    t_end_planned = t_begin_planned + (uint64_t)(opt.seconds * 1e9);
    phase = 0;
    if (opt.warmup <= 0) {
        phase = 1;
        t_begin = t_start;
        mark("begin");
    }
}

/* Advances the phase at `now`; returns the phase. */
static int phase_at(uint64_t now) {
    if (phase == 0 && now >= t_begin_planned) {
        phase = 1;
        t_begin = now;
        mark("begin");
    }
    if (phase == 1 && now >= t_end_planned) {
        phase = 2;
        t_end = now;
        mark("end");
    }
    return phase;
}

/* epoll_wait timeout (ms) that wakes no later than the next phase edge, and no later than `cap_ms`. */
static int wait_ms(uint64_t now, int cap_ms) {
    uint64_t edge = phase == 0 ? t_begin_planned : t_end_planned;
    if (now >= edge) return 0;
    uint64_t ms = (edge - now + 999999) / 1000000;
    if (cap_ms >= 0 && ms > (uint64_t)cap_ms) ms = cap_ms;
    return (int)ms;
}

static double window_s(void) { return (t_end - t_begin) / 1e9; }

/* ---------------------------------------------------------------- sockets */

static void resolve_host(void) {
    memset(&server_addr, 0, sizeof server_addr);
    const char *h = opt.host;
    if (strcmp(h, "localhost") == 0) h = "127.0.0.1";
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, h, &a4) == 1) {
        if (ntohl(a4.s_addr) != INADDR_LOOPBACK) die(2, "refusing host %s: only 127.0.0.1 and ::1", opt.host);
        struct sockaddr_in *s = (struct sockaddr_in *)&server_addr;
        s->sin_family = AF_INET;
        s->sin_addr = a4;
        s->sin_port = htons(opt.port);
        server_len = sizeof *s;
        family = AF_INET;
        return;
    }
    char buf[64];
    size_t n = strlen(h);
    if (n >= 2 && n < sizeof buf && h[0] == '[' && h[n - 1] == ']') {
        memcpy(buf, h + 1, n - 2);
        buf[n - 2] = 0;
        h = buf;
    }
    if (inet_pton(AF_INET6, h, &a6) == 1) {
        if (memcmp(&a6, &in6addr_loopback, sizeof a6) != 0) die(2, "refusing host %s: only 127.0.0.1 and ::1", opt.host);
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&server_addr;
        s->sin6_family = AF_INET6;
        s->sin6_addr = a6;
        s->sin6_port = htons(opt.port);
        server_len = sizeof *s;
        family = AF_INET6;
        return;
    }
    die(2, "refusing host %s: only 127.0.0.1, ::1 (or localhost)", opt.host);
}

static void set_nodelay(int fd) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* Opens `n` connected, non-blocking TCP connections (at most 256 connecting at once), each within --timeout-ms
 * of its start. Returns how many succeeded; the descriptors go to fds[], failures are -1. */
static int connect_many(int *fds, int n, int timeout_ms, int *failed_out) {
    int ep = epoll_create1(0);
    if (ep < 0) die(2, "epoll_create1: %s", strerror(errno));
    uint64_t *deadline = calloc(n, sizeof *deadline);
    int next = 0, pending = 0, ok = 0, failed = 0;
    struct epoll_event evs[256];
    while (next < n || pending > 0) {
        while (next < n && pending < 256) {
            int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (fd < 0) {
                if (errno == EMFILE || errno == ENFILE) die(2, "socket: %s (raise the descriptor limit)", strerror(errno));
                die(2, "socket: %s", strerror(errno));
            }
            set_nodelay(fd);
            fds[next] = fd;
            if (connect(fd, (struct sockaddr *)&server_addr, server_len) == 0) {
                ok++;
            } else if (errno == EINPROGRESS) {
                struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = (uint32_t)next};
                epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
                deadline[next] = now_ns() + (uint64_t)timeout_ms * 1000000ull;
                pending++;
            } else {
                error_msg("connection %d: connect: %s", next, strerror(errno));
                close(fd);
                fds[next] = -1;
                failed++;
            }
            next++;
        }
        if (pending == 0) continue;
        int k = epoll_wait(ep, evs, 256, 100);
        for (int i = 0; i < k; i++) {
            int c = evs[i].data.u32;
            int err = 0;
            socklen_t len = sizeof err;
            getsockopt(fds[c], SOL_SOCKET, SO_ERROR, &err, &len);
            epoll_ctl(ep, EPOLL_CTL_DEL, fds[c], NULL);
            pending--;
            deadline[c] = 0;
            if (err) {
                error_msg("connection %d: connect: %s", c, strerror(err));
                close(fds[c]);
                fds[c] = -1;
                failed++;
            } else {
                ok++;
            }
        }
        uint64_t now = now_ns();
        for (int c = 0; c < next; c++) {
            if (deadline[c] && now > deadline[c]) {
                error_msg("connection %d: connect: no answer within %d ms", c, timeout_ms);
                epoll_ctl(ep, EPOLL_CTL_DEL, fds[c], NULL);
                close(fds[c]);
                fds[c] = -1;
                deadline[c] = 0;
                pending--;
                failed++;
            }
        }
    }
    free(deadline);
    close(ep);
    if (failed_out) *failed_out = failed;
    return ok;
}

static void raise_nofile(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* ---------------------------------------------------------------- rr */

struct rr_conn {
    int fd;
    int writing;    /* part of the request still to write */
    int wrote, got;
    uint64_t seq, t0;
    uint8_t *req, *resp;
};

static void rr_fill(struct rr_conn *c, int index) {
    /* The request names its connection and sequence number; the rest is a byte pattern that moves with both. */
    uint8_t *p = c->req;
    uint64_t s = c->seq;
    for (int i = 0; i < opt.size; i++) p[i] = (uint8_t)(s * 29 + (uint64_t)index * 101 + (uint64_t)i * 7);
    if (opt.size >= 12) {
        memcpy(p, &s, 8);
        uint32_t ix = (uint32_t)index;
        memcpy(p + 8, &ix, 4);
    }
}

/* Writes what is left of c's request; returns -1 on a failure (reported), else 0. */
static int rr_write(struct rr_conn *c, int index, int ep) {
    while (c->wrote < opt.size) {
        ssize_t n = send(c->fd, c->req + c->wrote, opt.size - c->wrote, MSG_NOSIGNAL);
        if (n > 0) {
            c->wrote += n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!c->writing) {
                struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = (uint32_t)index};
                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                c->writing = 1;
            }
            return 0;
        }
        if (n < 0 && errno == EINTR) continue;
        error_msg("connection %d: send: %s", index, n < 0 ? strerror(errno) : "wrote nothing");
        return -1;
    }
    if (c->writing) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)index};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        c->writing = 0;
    }
    return 0;
}

static int run_rr(void) {
    int n = opt.conns;
    int *fds = malloc(n * sizeof *fds);
    int failed = 0;
    if (connect_many(fds, n, opt.timeout_ms, &failed) != n) die(2, "could not open %d connections (%d failed)", n, failed);
    int ep = epoll_create1(0);
    struct rr_conn *cs = calloc(n, sizeof *cs);
    int dead = 0;
    uint64_t ops = 0;
    phase_init();
    for (int i = 0; i < n; i++) {
        cs[i].fd = fds[i];
        cs[i].req = malloc(opt.size);
        cs[i].resp = malloc(opt.size);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
        rr_fill(&cs[i], i);
        cs[i].t0 = now_ns();
        if (rr_write(&cs[i], i, ep) < 0) {
            epoll_ctl(ep, EPOLL_CTL_DEL, cs[i].fd, NULL);
            cs[i].fd = -1;
            dead++;
        }
    }
    struct epoll_event evs[512];
    uint64_t drain_deadline = 0;
    int owed = n - dead;   /* connections with a request outstanding */
    for (;;) {
        uint64_t now = now_ns();
        int ph = phase_at(now);
        if (ph == 2) {
            if (!drain_deadline) drain_deadline = now + 1000000000ull;
            if (owed == 0 || now >= drain_deadline) break;
        }
        int timeout = ph == 2 ? 10 : (opt.busy_poll ? 0 : wait_ms(now, 1000));
        int k = epoll_wait(ep, evs, 512, timeout);
        if (k < 0 && errno != EINTR) die(2, "epoll_wait: %s", strerror(errno));
        if (k <= 0) continue;
        uint64_t t = now_ns();
        int measuring = phase_at(t) == 1;
        for (int e = 0; e < k; e++) {
            int i = evs[e].data.u32;
            struct rr_conn *c = &cs[i];
            if (c->fd < 0) continue;
            if ((evs[e].events & EPOLLOUT) && c->wrote < opt.size) {
                if (rr_write(c, i, ep) < 0) goto broken;
            }
            if (!(evs[e].events & (EPOLLIN | EPOLLERR | EPOLLHUP))) continue;
            for (;;) {
                ssize_t r = recv(c->fd, c->resp + c->got, opt.size - c->got, 0);
                if (r > 0) {
                    c->got += r;
                    if (c->got < opt.size) continue;
                    if (c->wrote < opt.size) {
                        error_msg("connection %d: echo of request %llu arrived before the request was written",
                                  i, (unsigned long long)c->seq);
                        goto broken;
                    }
                    if (memcmp(c->req, c->resp, opt.size) != 0) {
                        int at = 0;
                        while (at < opt.size && c->req[at] == c->resp[at]) at++;
                        error_msg("connection %d: request %llu: echo differs at byte %d: sent 0x%02x, got 0x%02x", i,
                                  (unsigned long long)c->seq, at, c->req[at], c->resp[at]);
                        goto broken;
                    }
                    uint64_t done = now_ns();
                    if (measuring) {
                        ops++;
                        hist_add(done - c->t0);
                    }
                    c->got = 0;
                    c->wrote = 0;
                    c->seq++;
                    if (phase == 2) {
                        owed--;
                        /* Nothing more is asked: leave the connection registered to catch extra bytes. */
                        c->wrote = opt.size;
                        c->seq |= 1ull << 63;
                        break;
                    }
                    rr_fill(c, i);
                    c->t0 = done;
                    if (rr_write(c, i, ep) < 0) goto broken;
                    continue;
                }
                if (r == 0) {
                    error_msg("connection %d: the server closed the connection (request %llu, %d of %d bytes echoed)",
                              i, (unsigned long long)(c->seq & ~(1ull << 63)), c->got, opt.size);
                    goto broken;
                }
                if (errno == EAGAIN || errno == EWOULDBLOCK) break;
                if (errno == EINTR) continue;
                error_msg("connection %d: recv: %s", i, strerror(errno));
                goto broken;
            }
            if (c->seq >> 63 && c->got > 0) {
                error_msg("connection %d: %d bytes echoed that were never sent", i, c->got);
                goto broken;
            }
            continue;
        broken:
            if (!(c->seq >> 63)) owed--;
            epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
            close(c->fd);
            c->fd = -1;
            dead++;
        }
    }
    if (owed > 0) error_msg("%d connections still owed an echo 1 s after the end (server stalled)", owed);
    for (int i = 0; i < n; i++)
        if (cs[i].fd >= 0) close(cs[i].fd);
    double secs = window_s();
    double rate = secs > 0 ? ops / secs : 0;
    printf("rr: %d conns, %d-byte requests: %.0f round trips/s, p50 %.1f us, p99 %.1f us, errors %ld\n", n, opt.size,
           rate, hist_pct(0.50), hist_pct(0.99), errors_total);
    printf("mode=rr conns=%d size=%d busy_poll=%d seconds=%.2f ops=%llu ops_per_s=%.1f p50_us=%.1f p99_us=%.1f "
           "p999_us=%.1f mean_us=%.1f errors=%ld\n",
           n, opt.size, opt.busy_poll, secs, (unsigned long long)ops, rate, hist_pct(0.50), hist_pct(0.99),
           hist_pct(0.999), hist_mean(), errors_total);
    fflush(stdout);
    return (errors_total || ops == 0) ? 1 : 0;
}

/* ---------------------------------------------------------------- stream */

/* The pattern: a xorshift sequence of prime length, stored with a tail that repeats its start, so any slice of up
 * to TAIL bytes starting anywhere in [0, PLEN) is contiguous. Each connection starts at its own offset, so a lost,
 * repeated, reordered or cross-connection block shows as a difference. */
#define PLEN 999983u
#define TAIL (1u << 20)
static uint8_t *pattern;

static void make_pattern(void) {
    pattern = malloc(PLEN + TAIL);
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (uint32_t i = 0; i < PLEN; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        pattern[i] = (uint8_t)(x >> 32);
    }
    for (uint32_t i = 0; i < TAIL; i++) pattern[PLEN + i] = pattern[i % PLEN];
}

struct st_conn {
    int fd;
    uint32_t offset;
    uint64_t sent, got;
    uint32_t events;
};

static int run_stream(void) {
    int n = opt.conns;
    if (opt.size > (int)TAIL) die(2, "--size at most %u for stream", TAIL);
    make_pattern();
    int *fds = malloc(n * sizeof *fds);
    int failed = 0;
    if (connect_many(fds, n, opt.timeout_ms, &failed) != n) die(2, "could not open %d connections (%d failed)", n, failed);
    int ep = epoll_create1(0);
    struct st_conn *cs = calloc(n, sizeof *cs);
    /* A receive takes whatever has come back, up to four blocks. */
    size_t rcap = 4 * (size_t)opt.size;
    if (rcap > TAIL) rcap = TAIL;
    uint8_t *rbuf = malloc(rcap);
    uint64_t bytes = 0, verified_total = 0;
    int live = n;
    for (int i = 0; i < n; i++) {
        cs[i].fd = fds[i];
        cs[i].offset = (uint32_t)(((uint64_t)i * 524287u + 12345u) % PLEN);
        cs[i].events = EPOLLIN | EPOLLOUT;
        struct epoll_event ev = {.events = cs[i].events, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
    }
    phase_init();
    struct epoll_event evs[256];
    uint64_t drain_deadline = 0;
    for (;;) {
        uint64_t now = now_ns();
        int ph = phase_at(now);
        if (ph == 2) {
            if (!drain_deadline) {
                drain_deadline = now + 1000000000ull;
                for (int i = 0; i < n; i++) {   /* stop sending */
                    if (cs[i].fd < 0 || cs[i].events == EPOLLIN) continue;
                    cs[i].events = EPOLLIN;
                    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
                    epoll_ctl(ep, EPOLL_CTL_MOD, cs[i].fd, &ev);
                }
            }
            int owed = 0;
            for (int i = 0; i < n; i++)
                if (cs[i].fd >= 0 && cs[i].got < cs[i].sent) owed++;
            if (owed == 0) break;
            if (now >= drain_deadline) {
                error_msg("%d connections still owed echoed bytes 1 s after the end (server stalled)", owed);
                break;
            }
        }
        if (live == 0) break;
        int k = epoll_wait(ep, evs, 256, ph == 2 ? 10 : wait_ms(now, 1000));
        if (k < 0 && errno != EINTR) die(2, "epoll_wait: %s", strerror(errno));
        for (int e = 0; e < k; e++) {
            int i = evs[e].data.u32;
            struct st_conn *c = &cs[i];
            if (c->fd < 0) continue;
            /* Receive and send in step, one block each way per turn, so neither direction runs far ahead of the
             * other within one wake-up; at most 64 turns, while either direction makes progress. */
            int blocked = 0;
            for (int turn = 0; turn < 64; turn++) {
                int moved = 0;
                ssize_t r = recv(c->fd, rbuf, rcap, 0);
                if (r > 0) {
                    if (c->got + (uint64_t)r > c->sent) {
                        error_msg("connection %d: %llu bytes echoed but only %llu sent", i,
                                  (unsigned long long)(c->got + r), (unsigned long long)c->sent);
                        goto broken;
                    }
                    const uint8_t *want = pattern + (c->offset + c->got) % PLEN;
                    if (memcmp(want, rbuf, r) != 0) {
                        ssize_t at = 0;
                        while (at < r && want[at] == rbuf[at]) at++;
                        error_msg("connection %d: byte %llu of the echo differs: sent 0x%02x, got 0x%02x", i,
                                  (unsigned long long)(c->got + at), want[at], rbuf[at]);
                        goto broken;
                    }
                    c->got += r;
                    verified_total += r;
                    if (phase_at(now_ns()) == 1) bytes += r;
                    moved = 1;
                } else if (r == 0) {
                    error_msg("connection %d: the server closed the connection after %llu of %llu bytes", i,
                              (unsigned long long)c->got, (unsigned long long)c->sent);
                    goto broken;
                } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                    error_msg("connection %d: recv: %s", i, strerror(errno));
                    goto broken;
                }
                blocked = 0;
                if (phase < 2 && c->sent - c->got < (uint64_t)opt.inflight) {
                    uint64_t room = (uint64_t)opt.inflight - (c->sent - c->got);
                    size_t len = room < (uint64_t)opt.size ? (size_t)room : (size_t)opt.size;
                    ssize_t w = send(c->fd, pattern + (c->offset + c->sent) % PLEN, len, MSG_NOSIGNAL);
                    if (w > 0) {
                        c->sent += w;
                        moved = 1;
                    } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                        blocked = 1;
                    } else if (!(w < 0 && errno == EINTR)) {
                        error_msg("connection %d: send: %s", i, w < 0 ? strerror(errno) : "wrote nothing");
                        goto broken;
                    }
                }
                if (!moved) break;
            }
            if (phase < 2) {
                /* Ask for EPOLLOUT only while the socket, not the in-flight limit, holds the writer back. */
                uint32_t want_events = blocked ? (EPOLLIN | EPOLLOUT) : EPOLLIN;
                if (want_events != c->events) {
                    c->events = want_events;
                    struct epoll_event ev = {.events = want_events, .data.u32 = (uint32_t)i};
                    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                }
            }
            continue;
        broken:
            epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
            close(c->fd);
            c->fd = -1;
            live--;
        }
    }
    for (int i = 0; i < n; i++)
        if (cs[i].fd >= 0) close(cs[i].fd);
    if (t_end == 0) t_end = now_ns();
    double secs = window_s();
    double mbps = secs > 0 ? bytes / 1e6 / secs : 0;
    printf("stream: %d conns, %d-byte blocks: %.1f MB/s echoed and verified, errors %ld\n", n, opt.size, mbps,
           errors_total);
    printf("mode=stream conns=%d size=%d inflight=%ld seconds=%.2f ops=%.3f ops_per_s=%.1f bytes=%llu mb_per_s=%.1f "
           "verified_total=%llu errors=%ld\n",
           n, opt.size, opt.inflight, secs, bytes / 1e6, mbps, (unsigned long long)bytes, mbps,
           (unsigned long long)verified_total, errors_total);
    fflush(stdout);
    return (errors_total || bytes == 0) ? 1 : 0;
}

/* ---------------------------------------------------------------- connect */

enum { W_IDLE, W_CONNECTING, W_READING };

struct worker {
    int fd, state, got;
    uint64_t t0, deadline;
    uint8_t msg[512], resp[512];
};

static uint64_t source_turn;

static int run_connect(void) {
    int n = opt.conns;
    if (opt.size > 512) die(2, "--size at most 512 for connect");
    int ep = epoll_create1(0);
    struct worker *ws = calloc(n, sizeof *ws);
    uint64_t ops = 0, fail_connect = 0, fail_io = 0, fail_eof = 0, fail_timeout = 0, attempts = 0;
    int sources = family == AF_INET ? opt.sources : 1;
    for (int i = 0; i < n; i++) ws[i].fd = -1;
    phase_init();
    struct epoll_event evs[256];
    for (;;) {
        uint64_t now = now_ns();
        int ph = phase_at(now);
        int measuring = ph == 1;
        /* Start every idle worker, end those past their deadline. */
        for (int i = 0; i < n; i++) {
            struct worker *w = &ws[i];
            if (w->state != W_IDLE && now > w->deadline) {
                if (measuring) fail_timeout++;
                epoll_ctl(ep, EPOLL_CTL_DEL, w->fd, NULL);
                close(w->fd);
                w->fd = -1;
                w->state = W_IDLE;
            }
            if (w->state != W_IDLE || ph == 2) continue;
            int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (fd < 0) die(2, "socket: %s", strerror(errno));
            set_nodelay(fd);
            if (sources > 1) {
                struct sockaddr_in src = {.sin_family = AF_INET};
                src.sin_addr.s_addr = htonl(INADDR_LOOPBACK + (uint32_t)(source_turn++ % (uint64_t)sources));
                int one = 1;
                setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
                if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0) die(2, "bind to a source address: %s", strerror(errno));
            }
            attempts++;
            w->fd = fd;
            w->t0 = now;
            w->deadline = now + (uint64_t)opt.timeout_ms * 1000000ull;
            w->got = 0;
            uint64_t tag = attempts;
            for (int b = 0; b < opt.size; b++) w->msg[b] = (uint8_t)(tag * 13 + (uint64_t)i * 31 + (uint64_t)b);
            int r = connect(fd, (struct sockaddr *)&server_addr, server_len);
            if (r < 0 && errno != EINPROGRESS) {
                if (measuring) fail_connect++;
                close(fd);
                w->fd = -1;
                continue;
            }
            w->state = W_CONNECTING;
            struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = (uint32_t)i};
            epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        }
        if (ph == 2) break;
        int k = epoll_wait(ep, evs, 256, wait_ms(now, 50));
        if (k < 0 && errno != EINTR) die(2, "epoll_wait: %s", strerror(errno));
        for (int e = 0; e < k; e++) {
            int i = evs[e].data.u32;
            struct worker *w = &ws[i];
            if (w->fd < 0) continue;
            int fail = 0;   /* 1 connect, 2 io, 3 eof, 4 verification */
            if (w->state == W_CONNECTING) {
                int err = 0;
                socklen_t len = sizeof err;
                getsockopt(w->fd, SOL_SOCKET, SO_ERROR, &err, &len);
                if (err) {
                    fail = 1;
                } else {
                    ssize_t s = send(w->fd, w->msg, opt.size, MSG_NOSIGNAL);
                    if (s != opt.size) {
                        fail = 2;   /* 64 bytes into a fresh socket: anything short is a failure */
                    } else {
                        w->state = W_READING;
                        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
                        epoll_ctl(ep, EPOLL_CTL_MOD, w->fd, &ev);
                    }
                }
            } else if (w->state == W_READING) {
                for (;;) {
                    ssize_t r = recv(w->fd, w->resp + w->got, opt.size - w->got, 0);
                    if (r > 0) {
                        w->got += r;
                        if (w->got < opt.size) continue;
                        break;
                    }
                    if (r == 0) fail = 3;
                    else if (errno == EAGAIN || errno == EWOULDBLOCK) break;
                    else if (errno == EINTR) continue;
                    else fail = 2;
                    break;
                }
                if (!fail && w->got == opt.size) {
                    if (memcmp(w->msg, w->resp, opt.size) != 0) {
                        int at = 0;
                        while (at < opt.size && w->msg[at] == w->resp[at]) at++;
                        error_msg("worker %d: echo differs at byte %d: sent 0x%02x, got 0x%02x", i, at, w->msg[at],
                                  w->resp[at]);
                        fail = 4;
                    } else {
                        uint64_t done = now_ns();
                        if (phase_at(done) == 1) {
                            ops++;
                            hist_add(done - w->t0);
                        }
                    }
                    epoll_ctl(ep, EPOLL_CTL_DEL, w->fd, NULL);
                    close(w->fd);
                    w->fd = -1;
                    w->state = W_IDLE;
                    continue;
                }
            }
            if (fail) {
                if (phase == 1) {
                    if (fail == 1) fail_connect++;
                    else if (fail == 2) fail_io++;
                    else if (fail == 3) fail_eof++;
                }
                epoll_ctl(ep, EPOLL_CTL_DEL, w->fd, NULL);
                close(w->fd);
                w->fd = -1;
                w->state = W_IDLE;
            }
        }
    }
    for (int i = 0; i < n; i++)
        if (ws[i].fd >= 0) close(ws[i].fd);
    uint64_t failures = fail_connect + fail_io + fail_eof + fail_timeout;
    double secs = window_s();
    double rate = secs > 0 ? ops / secs : 0;
    printf("connect: %d workers, %d-byte echo, %d source addresses: %.0f connections/s, p50 %.1f us, p99 %.1f us, "
           "failures %llu, errors %ld\n",
           n, opt.size, sources, rate, hist_pct(0.50), hist_pct(0.99), (unsigned long long)failures, errors_total);
    printf("mode=connect conns=%d size=%d sources=%d seconds=%.2f ops=%llu ops_per_s=%.1f p50_us=%.1f p99_us=%.1f "
           "failures=%llu fail_connect=%llu fail_io=%llu fail_eof=%llu fail_timeout=%llu errors=%ld\n",
           n, opt.size, sources, secs, (unsigned long long)ops, rate, hist_pct(0.50), hist_pct(0.99),
           (unsigned long long)failures, (unsigned long long)fail_connect, (unsigned long long)fail_io,
           (unsigned long long)fail_eof, (unsigned long long)fail_timeout, errors_total);
    fflush(stdout);
    return (errors_total || ops == 0) ? 1 : 0;
}

/* ---------------------------------------------------------------- udp */

/* A datagram: u32 sequence number, u16 slot, u16 socket, then bytes derived from the three. */
struct slot {
    uint32_t seq, acked_seq;
    uint64_t t_sent;
    uint8_t busy, in_window;
};

struct usock {
    int fd;
    uint32_t next_seq;
    struct slot *slots;
};

static void udp_fill(uint8_t *p, uint32_t seq, uint16_t slot, uint16_t sock) {
    memcpy(p, &seq, 4);
    memcpy(p + 4, &slot, 2);
    memcpy(p + 6, &sock, 2);
    uint8_t x = (uint8_t)(seq * 7 + slot * 3 + sock * 11);
    for (int i = 8; i < opt.size; i++) p[i] = (uint8_t)(x + i * 5);
}

static int udp_check(const uint8_t *p, uint32_t seq, uint16_t slot, uint16_t sock) {
    uint8_t x = (uint8_t)(seq * 7 + slot * 3 + sock * 11);
    for (int i = 8; i < opt.size; i++)
        if (p[i] != (uint8_t)(x + i * 5)) return i;
    return -1;
}

#define UBATCH 64

static int run_udp(void) {
    int n = opt.conns, win = opt.window;
    if (opt.size < 8 || opt.size > 65507) die(2, "--size from 8 to 65507 for udp");
    if (win < 1 || win > 65535 || n > 65535) die(2, "--window from 1 to 65535");
    int ep = epoll_create1(0);
    struct usock *us = calloc(n, sizeof *us);
    for (int s = 0; s < n; s++) {
        us[s].fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (us[s].fd < 0) die(2, "socket: %s", strerror(errno));
        int buf = 4 << 20;
        setsockopt(us[s].fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
        if (connect(us[s].fd, (struct sockaddr *)&server_addr, server_len) < 0) die(2, "connect: %s", strerror(errno));
        us[s].slots = calloc(win, sizeof(struct slot));
        for (int j = 0; j < win; j++) us[s].slots[j].acked_seq = UINT32_MAX;
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)s};
        epoll_ctl(ep, EPOLL_CTL_ADD, us[s].fd, &ev);
    }
    uint8_t *sbuf = malloc((size_t)UBATCH * opt.size), *rbuf = malloc((size_t)UBATCH * 65536);
    struct mmsghdr smsg[UBATCH], rmsg[UBATCH];
    struct iovec siov[UBATCH], riov[UBATCH];
    memset(smsg, 0, sizeof smsg);
    memset(rmsg, 0, sizeof rmsg);
    for (int b = 0; b < UBATCH; b++) {
        siov[b].iov_base = sbuf + (size_t)b * opt.size;
        siov[b].iov_len = opt.size;
        smsg[b].msg_hdr.msg_iov = &siov[b];
        smsg[b].msg_hdr.msg_iovlen = 1;
        riov[b].iov_base = rbuf + (size_t)b * 65536;
        riov[b].iov_len = 65536;
        rmsg[b].msg_hdr.msg_iov = &riov[b];
        rmsg[b].msg_hdr.msg_iovlen = 1;
    }
    uint64_t ops = 0, sent = 0, lost = 0, late = 0, refused = 0;
    uint64_t timeout_ns = (uint64_t)opt.timeout_ms * 1000000ull;
    phase_init();

    /* Sends a new datagram from each free slot of socket s (all when `all`), in batches. */
    int pending_slots[UBATCH];
#define FLUSH_SEND(s)                                                                                          \
    do {                                                                                                       \
        int done_ = 0;                                                                                         \
        while (done_ < nb) {                                                                                   \
            int r_ = sendmmsg(us[s].fd, smsg + done_, nb - done_, 0);                                          \
            if (r_ < 0) {                                                                                      \
                if (errno == EINTR) continue;                                                                  \
                if (errno == ECONNREFUSED) refused++;                                                          \
                break; /* slots stay busy; their timeout re-sends them */                                      \
            }                                                                                                  \
            done_ += r_;                                                                                       \
        }                                                                                                      \
        nb = 0;                                                                                                \
    } while (0)

    int stop_sending = 0;
    uint64_t straggle_deadline = 0, next_scan = 0;
    for (;;) {
        uint64_t now = now_ns();
        int ph = phase_at(now);
        if (ph == 2 && !stop_sending) {
            stop_sending = 1;
            straggle_deadline = now + timeout_ns;
        }
        /* Slots past their timeout: lost; free slots: a new datagram. */
        if (now >= next_scan || !stop_sending) {
            next_scan = now + 1000000ull;
            for (int s = 0; s < n; s++) {
                int nb = 0;
                for (int j = 0; j < win; j++) {
                    struct slot *sl = &us[s].slots[j];
                    if (sl->busy && now - sl->t_sent > timeout_ns) {
                        if (sl->in_window) lost++;
                        sl->busy = 0;
                    }
                    if (sl->busy || stop_sending) continue;
                    sl->seq = us[s].next_seq++;
                    sl->t_sent = now;
                    sl->busy = 1;
                    sl->in_window = phase == 1;
                    if (sl->in_window) sent++;
                    udp_fill(sbuf + (size_t)nb * opt.size, sl->seq, (uint16_t)j, (uint16_t)s);
                    pending_slots[nb] = j;
                    nb++;
                    if (nb == UBATCH) FLUSH_SEND(s);
                }
                if (nb) FLUSH_SEND(s);
            }
        }
        if (stop_sending) {
            int busy = 0;
            for (int s = 0; s < n && !busy; s++)
                for (int j = 0; j < win; j++)
                    if (us[s].slots[j].busy) {
                        busy = 1;
                        break;
                    }
            if (!busy || now >= straggle_deadline) break;
        }
        struct epoll_event evs[64];
        int k = epoll_wait(ep, evs, 64, stop_sending ? 1 : wait_ms(now, 1));
        if (k < 0 && errno != EINTR) die(2, "epoll_wait: %s", strerror(errno));
        for (int e = 0; e < k; e++) {
            int s = evs[e].data.u32;
            for (int rounds = 0; rounds < 16; rounds++) {
                for (int b = 0; b < UBATCH; b++) rmsg[b].msg_hdr.msg_flags = 0;
                int r = recvmmsg(us[s].fd, rmsg, UBATCH, MSG_DONTWAIT, NULL);
                if (r < 0) {
                    if (errno == ECONNREFUSED) {
                        refused++;
                        continue;
                    }
                    break;
                }
                uint64_t t = now_ns();
                int measuring = phase_at(t) == 1;
                int nb = 0;
                for (int b = 0; b < r; b++) {
                    const uint8_t *p = rbuf + (size_t)b * 65536;
                    unsigned len = rmsg[b].msg_len;
                    uint32_t seq;
                    uint16_t j, sock;
                    if ((int)len != opt.size) {
                        error_msg("socket %d: a datagram of %u bytes came back, %d were sent", s, len, opt.size);
                        continue;
                    }
                    memcpy(&seq, p, 4);
                    memcpy(&j, p + 4, 2);
                    memcpy(&sock, p + 6, 2);
                    int bad = (sock != s || j >= win) ? 0 : udp_check(p, seq, j, sock);
                    if (sock != s || j >= win || bad >= 0) {
                        error_msg("socket %d: datagram (seq %u, slot %u, socket %u) differs from what was sent%s", s, seq,
                                  j, sock, bad >= 0 ? " in its payload" : "");
                        continue;
                    }
                    struct slot *sl = &us[s].slots[j];
                    if (!sl->busy || sl->seq != seq) {
                        late++;   /* after its timeout, or a duplicate */
                        continue;
                    }
                    sl->busy = 0;
                    sl->acked_seq = seq;
                    if (measuring) {
                        ops++;
                        hist_add(t - sl->t_sent);
                    }
                    if (stop_sending) continue;
                    sl->seq = us[s].next_seq++;
                    sl->t_sent = t;
                    sl->busy = 1;
                    sl->in_window = measuring;
                    if (measuring) sent++;
                    udp_fill(sbuf + (size_t)nb * opt.size, sl->seq, j, (uint16_t)s);
                    pending_slots[nb] = j;
                    nb++;
                }
                if (nb) FLUSH_SEND(s);
                if (r < UBATCH) break;
            }
        }
    }
    (void)pending_slots;
    /* Still busy at the end of the straggler wait: lost. */
    for (int s = 0; s < n; s++)
        for (int j = 0; j < win; j++)
            if (us[s].slots[j].busy && us[s].slots[j].in_window) lost++;
    for (int s = 0; s < n; s++) close(us[s].fd);
    double secs = window_s();
    double rate = secs > 0 ? ops / secs : 0;
    double loss_pct = sent ? 100.0 * lost / sent : 0;
    printf("udp: %d sockets, window %d, %d-byte datagrams: %.0f datagrams/s, loss %.2f%%, late %llu, p50 %.1f us, "
           "p99 %.1f us, errors %ld\n",
           n, win, opt.size, rate, loss_pct, (unsigned long long)late, hist_pct(0.50), hist_pct(0.99), errors_total);
    printf("mode=udp conns=%d window=%d size=%d seconds=%.2f ops=%llu ops_per_s=%.1f sent=%llu lost=%llu loss_pct=%.3f "
           "late=%llu refused=%llu p50_us=%.1f p99_us=%.1f errors=%ld\n",
           n, win, opt.size, secs, (unsigned long long)ops, rate, (unsigned long long)sent, (unsigned long long)lost,
           loss_pct, (unsigned long long)late, (unsigned long long)refused, hist_pct(0.50), hist_pct(0.99),
           errors_total);
    fflush(stdout);
    return (errors_total || ops == 0) ? 1 : 0;
}

/* ---------------------------------------------------------------- idle */

static int run_idle(void) {
    int n = opt.conns;
    raise_nofile();
    int *fds = malloc(n * sizeof *fds);
    uint64_t t0 = now_ns();
    int failed = 0;
    connect_many(fds, n, opt.timeout_ms, &failed);
    /* One byte each way, so every connection is really established (accepted and served). */
    int ep = epoll_create1(0);
    int waiting = 0;
    for (int i = 0; i < n; i++) {
        if (fds[i] < 0) continue;
        uint8_t b = (uint8_t)i;
        if (send(fds[i], &b, 1, MSG_NOSIGNAL) != 1) {
            close(fds[i]);
            fds[i] = -1;
            failed++;
            continue;
        }
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
        waiting++;
    }
    char *echoed = calloc(n, 1);
    uint64_t deadline = now_ns() + (uint64_t)opt.timeout_ms * 1000000ull;
    struct epoll_event evs[256];
    while (waiting > 0 && now_ns() < deadline) {
        int k = epoll_wait(ep, evs, 256, 100);
        for (int e = 0; e < k; e++) {
            int i = evs[e].data.u32;
            if (echoed[i] || fds[i] < 0) continue;
            uint8_t b;
            ssize_t r = recv(fds[i], &b, 1, 0);
            if (r == 1 && b == (uint8_t)i) {
                echoed[i] = 1;
                waiting--;
            } else if (r == 1 || r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
                epoll_ctl(ep, EPOLL_CTL_DEL, fds[i], NULL);
                close(fds[i]);
                fds[i] = -1;
                failed++;
                waiting--;
            }
        }
    }
    int established = 0;
    for (int i = 0; i < n; i++) {
        if (fds[i] < 0) continue;
        if (echoed[i]) established++;
        else {
            epoll_ctl(ep, EPOLL_CTL_DEL, fds[i], NULL);
            close(fds[i]);
            fds[i] = -1;
            failed++;
        }
    }
    double setup_s = (now_ns() - t0) / 1e9;
    mark("holding");
    /* Hold them, watching for any the server drops. */
    int dropped = 0;
    uint64_t hold_end = now_ns() + (uint64_t)(opt.seconds * 1e9);
    for (;;) {
        uint64_t now = now_ns();
        if (now >= hold_end) break;
        int k = epoll_wait(ep, evs, 256, (int)((hold_end - now) / 1000000) + 1);
        for (int e = 0; e < k; e++) {
            int i = evs[e].data.u32;
            if (fds[i] < 0) continue;
            uint8_t b[64];
            ssize_t r = recv(fds[i], b, sizeof b, 0);
            if (r > 0) {
                error_msg("connection %d: %zd bytes came that were never sent", i, r);
                continue;
            }
            if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) continue;
            epoll_ctl(ep, EPOLL_CTL_DEL, fds[i], NULL);
            close(fds[i]);
            fds[i] = -1;
            dropped++;
        }
    }
    mark("released");
    for (int i = 0; i < n; i++)
        if (fds[i] >= 0) close(fds[i]);
    printf("idle: %d conns: %d established, %d failed, %d dropped by the server, setup %.2f s, held %.1f s\n", n,
           established, failed, dropped, setup_s, opt.seconds);
    printf("mode=idle conns=%d established=%d failed=%d dropped=%d setup_s=%.2f seconds=%.2f errors=%ld\n", n,
           established, failed, dropped, setup_s, opt.seconds, errors_total);
    fflush(stdout);
    return (established < n || dropped > 0 || errors_total) ? 1 : 0;
}

/* ---------------------------------------------------------------- main */

static void usage(int status) {
    fprintf(status ? stderr : stdout,
            "usage: loadgen rr|stream|connect|udp|idle --port P [--host 127.0.0.1|::1] [--conns N] [--seconds S]\n"
            "       [--warmup S] [--size B] [--busy-poll] [--inflight B] [--window W] [--timeout-ms T] [--sources K]\n"
            "       [--marks]\n");
    exit(status);
}

static double num_arg(const char *name, const char *v, double lo, double hi) {
    char *end;
    if (!v) die(2, "%s needs a value", name);
    double d = strtod(v, &end);
    if (*v == 0 || *end != 0 || d < lo || d > hi) die(2, "%s: bad value %s", name, v);
    return d;
}

int main(int argc, char **argv) {
    if (argc < 2) usage(2);
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) usage(0);
    opt.mode_name = argv[1];
    if (!strcmp(argv[1], "rr")) opt.mode = M_RR;
    else if (!strcmp(argv[1], "stream")) opt.mode = M_STREAM;
    else if (!strcmp(argv[1], "connect")) opt.mode = M_CONNECT;
    else if (!strcmp(argv[1], "udp")) opt.mode = M_UDP;
    else if (!strcmp(argv[1], "idle")) opt.mode = M_IDLE;
    else {
        fprintf(stderr, "loadgen: unknown mode %s\n", argv[1]);
        usage(2);
    }
    opt.host = "127.0.0.1";
    opt.port = -1;
    opt.conns = opt.mode == M_CONNECT ? 8 : opt.mode == M_IDLE ? 1000 : 1;
    opt.seconds = 5;
    opt.warmup = 1;
    opt.size = opt.mode == M_STREAM ? 65536 : 64;
    opt.inflight = 1 << 20;
    opt.window = 64;
    opt.timeout_ms = opt.mode == M_CONNECT ? 2000 : opt.mode == M_UDP ? 200 : 30000;
    opt.sources = 16;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--port")) opt.port = (int)num_arg(a, v, 1, 65535), i++;
        else if (!strcmp(a, "--host")) {
            if (!v) die(2, "--host needs a value");
            opt.host = v, i++;
        } else if (!strcmp(a, "--conns")) opt.conns = (int)num_arg(a, v, 1, 1000000), i++;
        else if (!strcmp(a, "--seconds")) opt.seconds = num_arg(a, v, 0.01, 86400), i++;
        else if (!strcmp(a, "--warmup")) opt.warmup = num_arg(a, v, 0, 3600), i++;
        else if (!strcmp(a, "--size")) opt.size = (int)num_arg(a, v, 1, 16 << 20), i++;
        else if (!strcmp(a, "--inflight")) opt.inflight = (long)num_arg(a, v, 1, 1 << 30), i++;
        else if (!strcmp(a, "--window")) opt.window = (int)num_arg(a, v, 1, 65535), i++;
        else if (!strcmp(a, "--timeout-ms")) opt.timeout_ms = (int)num_arg(a, v, 1, 3600000), i++;
        else if (!strcmp(a, "--sources")) opt.sources = (int)num_arg(a, v, 1, 254), i++;
        else if (!strcmp(a, "--busy-poll")) opt.busy_poll = 1;
        else if (!strcmp(a, "--marks")) opt.marks = 1;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) usage(0);
        else {
            fprintf(stderr, "loadgen: unknown option %s\n", a);
            usage(2);
        }
    }
    if (opt.port < 0) die(2, "--port is required");
    resolve_host();
    signal(SIGPIPE, SIG_IGN);
    if (opt.conns > 1000) raise_nofile();
    switch (opt.mode) {
    case M_RR: return run_rr();
    case M_STREAM: return run_stream();
    case M_CONNECT: return run_connect();
    case M_UDP: return run_udp();
    case M_IDLE: return run_idle();
    }
    return 2;
}
