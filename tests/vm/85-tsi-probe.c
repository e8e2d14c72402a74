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
 *   get IP PORT                      AF_INET or AF_INET6 (by the address) blocking connect, one
 *                                    HTTP GET; prints peer, local family and the status line
 *   udpcall6 IP6 PORT MSG            AF_INET6 sendto + recvfrom; prints reply and source
 *   listen6 PORT V6ONLY              bind [::]:PORT (IPV6_V6ONLY 0/1) + listen; serves one
 *                                    connection (prints the peer), says hello
 *   udpconn IP PORT                  connected UDP: connect, send, print the first datagram
 *                                    received (Linux delivers only the connected peer's)
 *   unixcall PATH MSG                AF_UNIX connect to PATH, send MSG, shut down writing,
 *                                    print the reply
 *   unixserve PATH                   AF_UNIX bind PATH + listen; serves one connection: reads
 *                                    to EOF, answers with the upper-cased bytes
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
#include <stddef.h>
#include <sys/un.h>
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

/* An AF_INET or AF_INET6 address, by the text's form. */
static socklen_t addr46(const char *ip, const char *port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    unsigned short pt = htons((unsigned short)atoi(port));
    if (strchr(ip, ':')) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = pt;
        if (inet_pton(AF_INET6, ip, &a->sin6_addr) == 1) return sizeof(*a);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)ss;
        a->sin_family = AF_INET;
        a->sin_port = pt;
        if (inet_pton(AF_INET, ip, &a->sin_addr) == 1) return sizeof(*a);
    }
    fprintf(stderr, "bad address %s\n", ip);
    exit(2);
}

static const char *ntop(const struct sockaddr_storage *ss, char *b, size_t n)
{
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        char ip[64];
        snprintf(b, n, "[%s]:%d", inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip)), ntohs(a->sin6_port));
    } else if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        char ip[64];
        snprintf(b, n, "%s:%d", inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip)), ntohs(a->sin_port));
    } else {
        snprintf(b, n, "family%d", ss->ss_family);
    }
    return b;
}

static int get(const char *ip, const char *port)
{
    struct sockaddr_storage a, p;
    socklen_t al = addr46(ip, port, &a), l = sizeof(p);
    int s = socket(a.ss_family, SOCK_STREAM, 0);
    if (connect(s, (struct sockaddr *)&a, al)) { printf("P get=%s\n", ename(errno)); return 1; }
    char b[128];
    getpeername(s, (struct sockaddr *)&p, &l);
    printf("P get_peer=%s\n", ntop(&p, b, sizeof(b)));
    l = sizeof(p);
    getsockname(s, (struct sockaddr *)&p, &l);
    printf("P get_local_family=%d\n", p.ss_family);
    const char req[] = "GET / HTTP/1.0\r\n\r\n";
    if (write(s, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1)) { printf("P write=%s\n", ename(errno)); return 1; }
    char buf[256]; ssize_t got = 0, k;
    while (got < 12 && (k = read(s, buf + got, sizeof(buf) - 1 - (size_t)got)) > 0) got += k;
    buf[got > 0 ? got : 0] = 0;
    char *nl = strchr(buf, '\r'); if (nl) *nl = 0;
    printf("P get_status=[%s]\n", buf);
    return 0;
}

static int udpcall6(const char *ip, const char *port, const char *msg)
{
    struct sockaddr_storage a, src;
    socklen_t al = addr46(ip, port, &a), l = sizeof(src);
    int s = socket(AF_INET6, SOCK_DGRAM, 0);
    if (sendto(s, msg, strlen(msg), 0, (struct sockaddr *)&a, al) < 0) { printf("P sendto6=%s\n", ename(errno)); return 1; }
    struct pollfd p = { .fd = s, .events = POLLIN };
    if (poll(&p, 1, 30000) != 1) { printf("P reply6=timeout\n"); return 1; }
    char buf[2048], b[128];
    ssize_t n = recvfrom(s, buf, sizeof(buf) - 1, 0, (struct sockaddr *)&src, &l);
    if (n < 0) { printf("P recvfrom6=%s\n", ename(errno)); return 1; }
    buf[n] = 0;
    printf("P reply6=[%s] from=%s\n", buf, ntop(&src, b, sizeof(b)));
    return 0;
}

static int listen6(const char *port, int v6only)
{
    struct sockaddr_storage a, peer;
    socklen_t al = addr46("::", port, &a), l = sizeof(peer);
    int s = socket(AF_INET6, SOCK_STREAM, 0), one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only));
    if (bind(s, (struct sockaddr *)&a, al) || listen(s, 8)) { printf("P listen6=%s\n", ename(errno)); return 1; }
    printf("P listen6=ready\n");
    struct pollfd p = { .fd = s, .events = POLLIN };
    if (poll(&p, 1, 120000) != 1) { printf("P accept6=timeout\n"); return 1; }
    int c = accept(s, (struct sockaddr *)&peer, &l);
    if (c < 0) { printf("P accept6=%s\n", ename(errno)); return 1; }
    char b[128];
    printf("P accepted6=%s\n", ntop(&peer, b, sizeof(b)));
    const char msg[] = "hello over ipv6\n";
    write(c, msg, sizeof(msg) - 1);
    close(c);
    return 0;
}

static int udpconn(const char *ip, const char *port)
{
    struct sockaddr_storage a;
    socklen_t al = addr46(ip, port, &a);
    int s = socket(a.ss_family, SOCK_DGRAM, 0);
    if (connect(s, (struct sockaddr *)&a, al)) { printf("P udpconn=%s\n", ename(errno)); return 1; }
    if (send(s, "peer", 4, 0) != 4) { printf("P udpconn_send=%s\n", ename(errno)); return 1; }
    struct pollfd p = { .fd = s, .events = POLLIN };
    if (poll(&p, 1, 30000) != 1) { printf("P udpconn_first=timeout\n"); return 1; }
    char buf[256];
    ssize_t n = recv(s, buf, sizeof(buf) - 1, 0);
    if (n < 0) { printf("P udpconn_first=%s\n", ename(errno)); return 1; }
    buf[n] = 0;
    printf("P udpconn_first=[%s]\n", buf);
    return 0;
}

static socklen_t unaddr(const char *path, struct sockaddr_un *u)
{
    memset(u, 0, sizeof(*u));
    u->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(u->sun_path)) { fprintf(stderr, "path too long\n"); exit(2); }
    strcpy(u->sun_path, path);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);
}

static int unixcall(const char *path, const char *msg)
{
    struct sockaddr_un u;
    socklen_t ul = unaddr(path, &u);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(s, (struct sockaddr *)&u, ul)) { printf("P unixcall=%s\n", ename(errno)); return 1; }
    if (write(s, msg, strlen(msg)) != (ssize_t)strlen(msg)) { printf("P unixcall_write=%s\n", ename(errno)); return 1; }
    shutdown(s, SHUT_WR);
    char buf[256]; ssize_t got = 0, k;
    while ((k = read(s, buf + got, sizeof(buf) - 1 - (size_t)got)) > 0) got += k;
    buf[got > 0 ? got : 0] = 0;
    printf("P unixcall_reply=[%s]\n", buf);
    return 0;
}

static int unixserve(const char *path)
{
    struct sockaddr_un u;
    socklen_t ul = unaddr(path, &u);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    if (bind(s, (struct sockaddr *)&u, ul) || listen(s, 8)) { printf("P unixserve=%s\n", ename(errno)); return 1; }
    printf("P unixserve=ready\n");
    struct pollfd p = { .fd = s, .events = POLLIN };
    if (poll(&p, 1, 120000) != 1) { printf("P unixaccept=timeout\n"); return 1; }
    int c = accept(s, NULL, NULL);
    if (c < 0) { printf("P unixaccept=%s\n", ename(errno)); return 1; }
    char buf[256]; ssize_t got = 0, k;
    while ((k = read(c, buf + got, sizeof(buf) - 1 - (size_t)got)) > 0) got += k;
    for (ssize_t i = 0; i < got; i++) if (buf[i] >= 'a' && buf[i] <= 'z') buf[i] -= 32;
    write(c, buf, (size_t)got);
    buf[got > 0 ? got : 0] = 0;
    printf("P unixserve_got=%zd\n", got);
    close(c);
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
    if (argc >= 4 && !strcmp(argv[1], "get")) return get(argv[2], argv[3]);
    if (argc >= 5 && !strcmp(argv[1], "udpcall6")) return udpcall6(argv[2], argv[3], argv[4]);
    if (argc >= 4 && !strcmp(argv[1], "listen6")) return listen6(argv[2], atoi(argv[3]));
    if (argc >= 4 && !strcmp(argv[1], "udpconn")) return udpconn(argv[2], argv[3]);
    if (argc >= 4 && !strcmp(argv[1], "unixcall")) return unixcall(argv[2], argv[3]);
    if (argc >= 3 && !strcmp(argv[1], "unixserve")) return unixserve(argv[2]);
    fprintf(stderr, "usage: see the header of tests/vm/85-tsi-probe.c\n");
    return 2;
}
