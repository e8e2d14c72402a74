/*
 * 85-tsi-probe: the TSI VM tests' guest-side program (tests/vm/85..89-tsi-*.test.sh), static
 * (musl), copied into the guest's root. Each subcommand prints "P key=value" lines the tests
 * match and exits 0 when the operation itself worked.
 *
 *   sockinfo                         family/type/protocol a hijacked socket reports
 *   connect IP PORT                  blocking connect; prints errno name on failure
 *   nbconnect IP PORT                non-blocking connect, poll(POLLOUT), SO_ERROR, one HTTP GET
 *   listen0 [IP]                     bind(port 0) + listen + getsockname; serves one connection
 *   udpcall IP PORT MSG              sendto + poll + recvfrom; prints reply and source
 *   udpserve PORT N                  bind 0.0.0.0:PORT, echo N datagrams back upper-cased
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *ename(int e)
{
    switch (e) {
    case 0: return "OK";
    case ENETUNREACH: return "ENETUNREACH";
    case ECONNREFUSED: return "ECONNREFUSED";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EINPROGRESS: return "EINPROGRESS";
    case EAGAIN: return "EAGAIN";
    case EPERM: return "EPERM";
    case EADDRINUSE: return "EADDRINUSE";
    case EPROTO: return "EPROTO";
    case EINVAL: return "EINVAL";
    default: return "OTHER";
    }
}

static struct sockaddr_in addr(const char *ip, const char *port)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(port)) };
    if (inet_pton(AF_INET, ip, &a.sin_addr) != 1) {
        fprintf(stderr, "bad address %s\n", ip);
        exit(2);
    }
    return a;
}

static int sockinfo(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0), v = 0;
    socklen_t l = sizeof(v);
    if (s < 0) { printf("P socket=%s\n", ename(errno)); return 1; }
    getsockopt(s, SOL_SOCKET, SO_DOMAIN, &v, &l); printf("P domain=%d\n", v);
    l = sizeof(v); getsockopt(s, SOL_SOCKET, SO_TYPE, &v, &l); printf("P type=%d\n", v);
    l = sizeof(v); getsockopt(s, SOL_SOCKET, SO_PROTOCOL, &v, &l); printf("P protocol=%d\n", v);
    v = 1;
    printf("P nodelay=%s\n", setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &v, sizeof(v)) ? ename(errno) : "OK");
    printf("P reuseaddr=%s\n", setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &v, sizeof(v)) ? ename(errno) : "OK");
    v = 0; l = sizeof(v); getsockopt(s, IPPROTO_TCP, TCP_NODELAY, &v, &l); printf("P nodelay_get=%d\n", v);
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    printf("P udp=%s\n", u >= 0 ? "OK" : ename(errno));
    int u6 = socket(AF_INET6, SOCK_DGRAM, 0);
    printf("P udp6=%s\n", u6 >= 0 ? "OK" : ename(errno));
    int sp[2];
    printf("P socketpair=%s\n", socketpair(AF_UNIX, SOCK_STREAM, 0, sp) == 0 ? "OK" : ename(errno));
    return 0;
}

static int do_connect(const char *ip, const char *port)
{
    struct sockaddr_in a = addr(ip, port);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int r = connect(s, (struct sockaddr *)&a, sizeof(a));
    printf("P connect=%s\n", r ? ename(errno) : "OK");
    if (r == 0) {
        struct sockaddr_in p; socklen_t l = sizeof(p);
        char b[64];
        getpeername(s, (struct sockaddr *)&p, &l);
        printf("P peer=%s:%d\n", inet_ntop(AF_INET, &p.sin_addr, b, sizeof(b)), ntohs(p.sin_port));
    }
    return r ? 1 : 0;
}

static int nbconnect(const char *ip, const char *port)
{
    struct sockaddr_in a = addr(ip, port);
    int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int r = connect(s, (struct sockaddr *)&a, sizeof(a));
    printf("P nbconnect=%s\n", r ? ename(errno) : "OK");
    if (r && errno != EINPROGRESS) return 1;
    struct pollfd p = { .fd = s, .events = POLLOUT };
    int n = poll(&p, 1, 30000);
    printf("P poll=%d revents_out=%d\n", n, (p.revents & POLLOUT) ? 1 : 0);
    int err = -1; socklen_t l = sizeof(err);
    getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &l);
    printf("P so_error=%s\n", ename(err));
    if (err) return 1;
    const char req[] = "GET / HTTP/1.0\r\n\r\n";
    if (write(s, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1)) { printf("P write=%s\n", ename(errno)); return 1; }
    char buf[256]; ssize_t got = 0;
    p.events = POLLIN;
    while (got < 12 && poll(&p, 1, 30000) == 1) {
        ssize_t k = read(s, buf + got, sizeof(buf) - 1 - (size_t)got);
        if (k <= 0) break;
        got += k;
    }
    buf[got > 0 ? got : 0] = 0;
    char *nl = strchr(buf, '\r'); if (nl) *nl = 0;
    printf("P status=[%s]\n", buf);
    return 0;
}

static int listen0(const char *ip)
{
    struct sockaddr_in a = addr(ip ? ip : "0.0.0.0", "0");
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(s, (struct sockaddr *)&a, sizeof(a)) || listen(s, 8)) { printf("P listen=%s\n", ename(errno)); return 1; }
    struct sockaddr_in b; socklen_t l = sizeof(b);
    getsockname(s, (struct sockaddr *)&b, &l);
    printf("P port=%d\n", ntohs(b.sin_port));
    fflush(stdout);
    /* The host side reads the port from the console, then connects; give it 120 s. */
    struct pollfd p = { .fd = s, .events = POLLIN };
    if (poll(&p, 1, 120000) != 1) { printf("P accept=timeout\n"); return 1; }
    struct sockaddr_in peer; l = sizeof(peer);
    int c = accept(s, (struct sockaddr *)&peer, &l);
    if (c < 0) { printf("P accept=%s\n", ename(errno)); return 1; }
    char pb[64];
    printf("P accepted=%s\n", inet_ntop(AF_INET, &peer.sin_addr, pb, sizeof(pb)));
    const char msg[] = "hello from the guest\n";
    write(c, msg, sizeof(msg) - 1);
    close(c);
    return 0;
}

static int udpcall(const char *ip, const char *port, const char *msg)
{
    struct sockaddr_in a = addr(ip, port);
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    if (sendto(s, msg, strlen(msg), 0, (struct sockaddr *)&a, sizeof(a)) < 0) { printf("P sendto=%s\n", ename(errno)); return 1; }
    struct pollfd p = { .fd = s, .events = POLLIN };
    if (poll(&p, 1, 30000) != 1) { printf("P reply=timeout\n"); return 1; }
    char buf[2048], sb[64]; struct sockaddr_in src; socklen_t l = sizeof(src);
    /* MSG_TRUNC with a small buffer first: the real length, and the datagram is consumed. */
    char small[4];
    ssize_t n = recvfrom(s, small, sizeof(small), MSG_PEEK, NULL, NULL);
    printf("P peek=%zd\n", n);
    n = recvfrom(s, buf, sizeof(buf) - 1, 0, (struct sockaddr *)&src, &l);
    if (n < 0) { printf("P recvfrom=%s\n", ename(errno)); return 1; }
    buf[n] = 0;
    printf("P reply=[%s] from=%s:%d\n", buf, inet_ntop(AF_INET, &src.sin_addr, sb, sizeof(sb)), ntohs(src.sin_port));
    struct sockaddr_in me; l = sizeof(me);
    getsockname(s, (struct sockaddr *)&me, &l);
    printf("P localport_nonzero=%d\n", me.sin_port != 0);
    /* A truncated read: the host echoes a long datagram; recv with 4 bytes and MSG_TRUNC. */
    char big[3000]; memset(big, 'x', sizeof(big));
    sendto(s, big, sizeof(big), 0, (struct sockaddr *)&a, sizeof(a));
    if (poll(&p, 1, 30000) != 1) { printf("P trunc=timeout\n"); return 1; }
    n = recv(s, small, sizeof(small), MSG_TRUNC);
    printf("P trunc=%zd\n", n);
    return 0;
}

static int udpserve(const char *port, int count)
{
    struct sockaddr_in a = addr("0.0.0.0", port);
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    if (bind(s, (struct sockaddr *)&a, sizeof(a))) { printf("P bind=%s\n", ename(errno)); return 1; }
    printf("P udpserve=ready\n");
    fflush(stdout);
    for (int i = 0; i < count; i++) {
        char buf[2048], sb[64]; struct sockaddr_in src; socklen_t l = sizeof(src);
        struct pollfd p = { .fd = s, .events = POLLIN };
        if (poll(&p, 1, 120000) != 1) { printf("P udpserve=timeout\n"); return 1; }
        ssize_t n = recvfrom(s, buf, sizeof(buf), 0, (struct sockaddr *)&src, &l);
        if (n < 0) { printf("P recvfrom=%s\n", ename(errno)); return 1; }
        for (ssize_t k = 0; k < n; k++) if (buf[k] >= 'a' && buf[k] <= 'z') buf[k] -= 32;
        printf("P got=%zd from=%s\n", n, inet_ntop(AF_INET, &src.sin_addr, sb, sizeof(sb)));
        if (sendto(s, buf, (size_t)n, 0, (struct sockaddr *)&src, l) != n) { printf("P sendto=%s\n", ename(errno)); return 1; }
    }
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 2 && !strcmp(argv[1], "sockinfo")) return sockinfo();
    if (argc >= 4 && !strcmp(argv[1], "connect")) return do_connect(argv[2], argv[3]);
    if (argc >= 4 && !strcmp(argv[1], "nbconnect")) return nbconnect(argv[2], argv[3]);
    if (argc >= 2 && !strcmp(argv[1], "listen0")) return listen0(argc >= 3 ? argv[2] : NULL);
    if (argc >= 5 && !strcmp(argv[1], "udpcall")) return udpcall(argv[2], argv[3], argv[4]);
    if (argc >= 4 && !strcmp(argv[1], "udpserve")) return udpserve(argv[2], atoi(argv[3]));
    fprintf(stderr, "usage: see the header of tests/vm/85-tsi-probe.c\n");
    return 2;
}
