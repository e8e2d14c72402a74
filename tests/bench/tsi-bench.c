/*
 * tsi-bench: both ends of the TSI bench (tests/bench/tsi.bench.sh), static (musl) so the same
 * binary runs in the guest and on the test host. Client figures are "B key value" lines.
 *
 *   serve PORT             host side: an epoll server on 0.0.0.0:PORT; each connection's first
 *                          byte picks its job: 'S' sink (count to EOF, answer the 8-byte total),
 *                          'O' source (send the 8-byte count that follows, then close), 'R'
 *                          echo, 'H' hold (read to EOF), 'C' close at once
 *   lat IP PORT N          N sequential connect()s ('C'): median and p99 connect time in us
 *   tput IP PORT MIB       guest -> host: MIB MiB written, until the sink's total: MB/s
 *   tputin IP PORT MIB     host -> guest: MIB MiB read to EOF: MB/s
 *   rr IP PORT N           N 1 KiB request / 1 KiB response round trips on one connection: req/s
 *   hold IP PORT N FILE    opens N connections ('H'), prints "B held N", waits until FILE exists
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CONNS_MAX 4096
#define CHUNK (64 * 1024)

static char buf[CHUNK];

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void die(const char *what)
{
    printf("B error %s: %s\n", what, strerror(errno));
    exit(1);
}

static int dial(const char *ip, const char *port, char job)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(port)) };
    if (inet_pton(AF_INET, ip, &a.sin_addr) != 1) die("address");
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    if (s < 0) die("socket");
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(s, (struct sockaddr *)&a, sizeof(a))) die("connect");
    if (job && write(s, &job, 1) != 1) die("write job");
    return s;
}

static void full(int s, void *p, size_t n, int out)
{
    for (size_t d = 0; d < n;) {
        ssize_t k = out ? write(s, (char *)p + d, n - d) : read(s, (char *)p + d, n - d);
        if (k <= 0) die(out ? "write" : "read");
        d += (size_t)k;
    }
}

static int cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int lat(const char *ip, const char *port, int n)
{
    uint64_t *t = calloc((size_t)n, sizeof(*t));
    for (int i = 0; i < n; i++) {
        uint64_t t0 = now_ns();
        int s = dial(ip, port, 0);
        t[i] = now_ns() - t0;
        close(s);
    }
    qsort(t, (size_t)n, sizeof(*t), cmp);
    printf("B connect_median_us %.1f\nB connect_p99_us %.1f\n", t[n / 2] / 1e3, t[(n * 99) / 100] / 1e3);
    return 0;
}

static int tput(const char *ip, const char *port, int mib, int in)
{
    uint64_t total = (uint64_t)mib << 20, got = 0, t0 = now_ns();
    int s = dial(ip, port, in ? 'O' : 'S');
    if (in) {
        full(s, &total, sizeof(total), 1);
        ssize_t k;
        while ((k = read(s, buf, sizeof(buf))) > 0) got += (uint64_t)k;
    } else {
        for (uint64_t d = 0; d < total; d += CHUNK) full(s, buf, CHUNK, 1);
        shutdown(s, SHUT_WR);
        full(s, &got, sizeof(got), 0);
    }
    double secs = (now_ns() - t0) / 1e9;
    if (got != total) { printf("B error short: %llu of %llu\n", (unsigned long long)got, (unsigned long long)total); return 1; }
    printf("B %s_MBps %.1f\n", in ? "host_to_guest" : "guest_to_host", total / 1e6 / secs);
    return 0;
}

static int rr(const char *ip, const char *port, int n)
{
    int s = dial(ip, port, 'R');
    uint64_t t0 = now_ns();
    for (int i = 0; i < n; i++) {
        full(s, buf, 1024, 1);
        full(s, buf, 1024, 0);
    }
    printf("B rr_per_s %.0f\n", n / ((now_ns() - t0) / 1e9));
    return 0;
}

static int hold(const char *ip, const char *port, int n, const char *done)
{
    for (int i = 0; i < n; i++) dial(ip, port, 'H');
    printf("B held %d\n", n);
    while (access(done, F_OK)) usleep(100000);
    return 0;
}

struct conn { char job; int hl; uint64_t count; char hdr[8]; };
static struct conn conns[CONNS_MAX];

static int serve(const char *port)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(port)) };
    int l = socket(AF_INET, SOCK_STREAM, 0), one = 1, ep = epoll_create1(0);
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 4096)) die("listen");
    struct epoll_event e = { .events = EPOLLIN, .data.fd = l };
    epoll_ctl(ep, EPOLL_CTL_ADD, l, &e);
    printf("B serving %s\n", port);
    fflush(stdout);
    for (;;) {
        struct epoll_event ev[64];
        int n = epoll_wait(ep, ev, 64, -1);
        for (int i = 0; i < n; i++) {
            int fd = ev[i].data.fd;
            if (fd == l) {
                int c = accept(l, NULL, NULL);
                if (c < 0) continue;
                if (c >= CONNS_MAX) { close(c); continue; }
                setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                conns[c] = (struct conn){ 0 };
                e = (struct epoll_event){ .events = EPOLLIN, .data.fd = c };
                epoll_ctl(ep, EPOLL_CTL_ADD, c, &e);
                continue;
            }
            struct conn *c = &conns[fd];
            ssize_t k = read(fd, buf, sizeof(buf));
            char *p = buf;
            if (k < 0 && errno == EINTR) continue;
            if (k <= 0) {
                if (c->job == 'S') write(fd, &c->count, sizeof(c->count));
                close(fd);
                continue;
            }
            if (!c->job) {
                c->job = buf[0]; p++; k--;
                if (c->job == 'C') { close(fd); continue; }
                if (k == 0) continue;
            }
            c->count += (uint64_t)k;
            if (c->job == 'R') {
                full(fd, p, (size_t)k, 1);
            } else if (c->job == 'O' && c->hl < 8) {
                int take = k < 8 - c->hl ? (int)k : 8 - c->hl;
                memcpy(c->hdr + c->hl, p, (size_t)take);
                c->hl += take;
                if (c->hl < 8) continue;
                uint64_t total;
                memcpy(&total, c->hdr, 8);
                /* One client at a time: a blocking send is fine here. */
                for (uint64_t d = 0; d < total; d += CHUNK) full(fd, buf, CHUNK, 1);
                close(fd);
            }
        }
    }
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 3 && !strcmp(argv[1], "serve")) return serve(argv[2]);
    if (argc >= 5 && !strcmp(argv[1], "lat")) return lat(argv[2], argv[3], atoi(argv[4]));
    if (argc >= 5 && !strcmp(argv[1], "tput")) return tput(argv[2], argv[3], atoi(argv[4]), 0);
    if (argc >= 5 && !strcmp(argv[1], "tputin")) return tput(argv[2], argv[3], atoi(argv[4]), 1);
    if (argc >= 5 && !strcmp(argv[1], "rr")) return rr(argv[2], argv[3], atoi(argv[4]));
    if (argc >= 6 && !strcmp(argv[1], "hold")) return hold(argv[2], argv[3], atoi(argv[4]), argv[5]);
    fprintf(stderr, "usage: see the header of tests/bench/tsi-bench.c\n");
    return 2;
}
