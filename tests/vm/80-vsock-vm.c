/*
 * The host side of tests/vm/80..84: one process embedding libkrun.so.1 with vsock ports and
 * TSI, its peers (unix echo servers in a forked child, so their fds are not counted as ours),
 * and a guest running /vsock-guest (80-vsock-guest.zig) under /bin/sh.
 *   vsock-vm ROOTFS WORK port     guest → host unix socket (krun_add_vsock_port): a message
 *                                 echo, and 1 MiB streamed both ways with a checksum
 *   vsock-vm ROOTFS WORK listen   krun_add_vsock_port2(listen): host clients reach a guest
 *                                 server; an existing path is -EEXIST; port 620 is -EINVAL
 *   vsock-vm ROOTFS WORK flood    the guest opens 1100 connections at once: the VMM's host fds
 *                                 stay under its documented cap, and it still serves after
 *   vsock-vm ROOTFS WORK tsi-connect   TSI by hand (the guest speaks tsi/PROTOCOL.md over
 *                                 AF_VSOCK): CONNECT to a host TCP echo server on loopback,
 *                                 1 MiB both ways with a checksum; a DGRAM echo
 *   vsock-vm ROOTFS WORK tsi-listen    LISTEN without a port map (host loopback only, the real
 *                                 port for port 0) and with one (mapped port; unmapped -EPERM)
 *   vsock-vm ROOTFS WORK tsi-hostile   malformed and truncated requests, 1100 connections to
 *                                 620 at once: fds under the cap, CONNECT works after
 * Host peers listen on the test host's loopback only (127.0.0.1: TCP 18080 echo, UDP 18081 echo).
 * Prints "ok ..." / "FAIL ..." lines and "N passed, N failed"; exits 0 only with no failure.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <libkrun.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "expect.h"

/* The VMM's documented cap (virtio/vsock/Vsock.zig conns_max, include/libkrun.h). */
#define VSOCK_CONNS_MAX 1024

static const char *rootfs, *work;

static void raise_nofile(void)
{
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) == 0) {
        r.rlim_cur = r.rlim_max;
        setrlimit(RLIMIT_NOFILE, &r);
    }
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -1;
    int n = 0;
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n - 3; /* ".", ".." and the DIR's own fd */
}

static int unix_listen(const char *path)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 4096) != 0) {
        perror("unix listen");
        exit(1);
    }
    return fd;
}

static int unix_connect(const char *path)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0)
        return fd;
    if (fd >= 0)
        close(fd);
    return -1;
}

/* ---- peers (in a child process) ----------------------------------------------------------- */

/* Message echo: read to EOF, answer "echo:" + data, close. Any number of clients (poll). */
static void message_server(int lfd)
{
    enum { MAX = 4096 };
    static struct pollfd p[MAX + 1];
    static char buf[MAX + 1][512];
    static size_t len[MAX + 1];
    int n = 1;
    p[0] = (struct pollfd){ .fd = lfd, .events = POLLIN };
    for (;;) {
        if (poll(p, n, -1) < 0)
            continue;
        if (p[0].revents & POLLIN && n <= MAX) {
            int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
            if (c >= 0) {
                p[n] = (struct pollfd){ .fd = c, .events = POLLIN };
                len[n] = 5;
                memcpy(buf[n], "echo:", 5);
                n++;
            }
        }
        for (int i = 1; i < n; i++) {
            if (!p[i].revents)
                continue;
            ssize_t r = read(p[i].fd, buf[i] + len[i], sizeof buf[i] - len[i]);
            if (r > 0) {
                len[i] += (size_t)r;
                continue;
            }
            if (r == 0)
                (void)!write(p[i].fd, buf[i], len[i]);
            close(p[i].fd);
            n--;
            p[i] = p[n];
            memcpy(buf[i], buf[n], len[n]);
            len[i] = len[n];
            i--;
        }
    }
}

/* Streaming echo: bytes go back as they come; EOF → shutdown(SHUT_WR). One thread each. */
static void *stream_conn(void *arg)
{
    int c = (int)(long)arg;
    static __thread char buf[65536];
    for (;;) {
        ssize_t r = read(c, buf, sizeof buf);
        if (r <= 0)
            break;
        for (ssize_t off = 0; off < r;) {
            ssize_t w = write(c, buf + off, (size_t)(r - off));
            if (w <= 0)
                goto out;
            off += w;
        }
    }
    shutdown(c, SHUT_WR);
out:
    close(c);
    return NULL;
}

static void *stream_server(void *arg)
{
    int lfd = (int)(long)arg;
    for (;;) {
        int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0)
            continue;
        pthread_t t;
        pthread_create(&t, NULL, stream_conn, (void *)(long)c);
        pthread_detach(t);
    }
    return NULL;
}

static int inet_socket(int type, int port)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || (type == SOCK_STREAM && listen(fd, 64) != 0)) {
        perror("inet peer");
        exit(1);
    }
    return fd;
}

static void *udp_echo(void *arg)
{
    int fd = (int)(long)arg;
    char buf[2048];
    for (;;) {
        struct sockaddr_storage from;
        socklen_t len = sizeof from;
        ssize_t n = recvfrom(fd, buf + 5, sizeof buf - 5, 0, (struct sockaddr *)&from, &len);
        if (n < 0)
            continue;
        memcpy(buf, "echo:", 5);
        sendto(fd, buf, (size_t)n + 5, 0, (struct sockaddr *)&from, len);
    }
    return NULL;
}

/* The peers: WORK/msg.sock (message echo), WORK/stream.sock (streaming echo), TCP 18080
 * (streaming echo) and UDP 18081 (echo) on 127.0.0.1. */
static pid_t start_peers(void)
{
    char msg[512], stream[512];
    snprintf(msg, sizeof msg, "%s/msg.sock", work);
    snprintf(stream, sizeof stream, "%s/stream.sock", work);
    int m = unix_listen(msg), s = unix_listen(stream);
    int tcp = inet_socket(SOCK_STREAM, 18080), udp = inet_socket(SOCK_DGRAM, 18081);
    pid_t pid = fork();
    if (pid == 0) {
        raise_nofile();
        pthread_t t;
        pthread_create(&t, NULL, stream_server, (void *)(long)s);
        pthread_create(&t, NULL, stream_server, (void *)(long)tcp);
        pthread_create(&t, NULL, udp_echo, (void *)(long)udp);
        message_server(m);
        _exit(0);
    }
    close(m);
    close(s);
    close(tcp);
    close(udp);
    return pid;
}

/* ---- the VM ------------------------------------------------------------------------------ */

static void show_log(const char *log)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "tr -d '\\r' < '%s' | tail -n 40 | sed 's/^/     | /'", log);
    (void)!system(cmd);
}

static uint32_t sh_vm(const char *script, char *log, size_t log_size)
{
    const char *const argv[] = { "-c", script, NULL };
    const char *const env[] = { "PATH=/bin:/sbin:/usr/bin", NULL };
    const char *const rlimits[] = { "7=8192:8192", NULL }; /* RLIMIT_NOFILE: the flood needs it */
    snprintf(log, log_size, "%s/console.log", work);
    int32_t id = krun_create_ctx();
    if (id < 0) {
        expect(0, "krun_create_ctx = %d", id);
        exit(1);
    }
    uint32_t ctx = (uint32_t)id;
    int bad = krun_set_vm_config(ctx, 1, 256) != 0 || krun_set_root(ctx, rootfs) != 0 ||
              krun_set_exec(ctx, "/bin/sh", argv, env) != 0 || krun_set_rlimits(ctx, rlimits) != 0 ||
              krun_set_console_output(ctx, log) != 0;
    if (bad) {
        expect(0, "configuring the context");
        exit(1);
    }
    return ctx;
}

static volatile int watching;
static int fd_base, fd_max;

static void *watch_fds(void *arg)
{
    (void)arg;
    while (watching) {
        int n = count_fds();
        if (n > fd_max)
            fd_max = n;
        usleep(20000);
    }
    return NULL;
}

/* start_and_wait, with -1000 for a VM that had to be stopped. */
static int32_t run(uint32_t ctx, int timeout_s)
{
    int32_t status = start_and_wait(ctx, timeout_s);
    return status == -ETIMEDOUT ? -1000 : status;
}

/* run, with the host's fd count sampled the whole time: fd_base before, fd_max its peak. */
static int32_t run_watching_fds(uint32_t ctx, int timeout_s)
{
    fd_base = count_fds();
    fd_max = fd_base;
    watching = 1;
    pthread_t t;
    pthread_create(&t, NULL, watch_fds, NULL);
    int32_t status = run(ctx, timeout_s);
    watching = 0;
    pthread_join(t, NULL);
    return status;
}

static void finish(uint32_t ctx, int32_t status, const char *log, const char *what)
{
    expect(status == 0, "%s: the guest's checks passed (status %d)", what, status);
    if (status != 0)
        show_log(log);
    krun_free_ctx(ctx);
}

static void mode_port(void)
{
    char log[512], path[512], spath[512];
    snprintf(path, sizeof path, "%s/msg.sock", work);
    snprintf(spath, sizeof spath, "%s/stream.sock", work);
    uint32_t ctx = sh_vm("/vsock-guest connect 1234 hello-from-the-guest && "
                         "/vsock-guest stream 1235 1048576 && "
                         "/vsock-guest connect 1236 nobody-there; echo \"unbridged=$?\"; "
                         "/vsock-guest connect 1234 second",
                         log, sizeof log);
    expect(krun_add_vsock_port(ctx, 1234, path) == 0, "krun_add_vsock_port(1234, msg.sock)");
    expect(krun_add_vsock_port2(ctx, 1235, spath, false) == 0, "krun_add_vsock_port2(1235, stream.sock, false)");
    expect(krun_add_vsock_port(ctx, 1234, spath) == -EEXIST, "the same port twice is -EEXIST");
    expect(krun_add_vsock_port(ctx, 620, spath) == -EINVAL, "port 620 (TSI) is -EINVAL");
    int32_t status = run(ctx, 600);
    finish(ctx, status, log, "port");
    expect(file_has(log, "reply=echo:hello-from-the-guest"), "the guest got the host's echo");
    expect(file_has(log, "stream sent=1048576 got=1048576"), "1 MiB streamed both ways, checksums equal");
    expect(file_has(log, "connect(2, 1236): CONNRESET") || file_has(log, "connect(2, 1236): CONNREFUSED"),
           "an unbridged port is refused");
    expect(file_has(log, "reply=echo:second"), "the port still serves after that");
}

/* Sends `msg` on the connected `fd`, ends its write side, reads the reply to EOF and closes
 * `fd`: whether the reply was "echo:" + msg. */
static int echoed(int fd, const char *msg)
{
    char want[128], got[128] = { 0 };
    snprintf(want, sizeof want, "echo:%s", msg);
    (void)!write(fd, msg, strlen(msg));
    shutdown(fd, SHUT_WR);
    size_t n = 0;
    for (ssize_t r; (r = read(fd, got + n, sizeof got - 1 - n)) > 0;)
        n += (size_t)r;
    close(fd);
    return strcmp(got, want) == 0;
}

struct dialer {
    char path[512];
    int served;
};

/* Connects to the listen port until the guest's server answers, three times. */
static void *dial(void *arg)
{
    struct dialer *d = arg;
    for (int attempt = 0; attempt < 3000 && d->served < 3; attempt++) {
        int fd = unix_connect(d->path);
        if (fd < 0) {
            usleep(100000);
            continue;
        }
        char msg[64];
        snprintf(msg, sizeof msg, "from-host-%d", d->served);
        if (echoed(fd, msg))
            d->served++;
        else
            usleep(100000); /* not listening yet: the guest reset the connection */
    }
    return NULL;
}

static void mode_listen(void)
{
    char log[512], exists[512];
    static struct dialer d;
    snprintf(d.path, sizeof d.path, "%s/in.sock", work);
    snprintf(exists, sizeof exists, "%s/exists", work);
    close(open(exists, O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
    uint32_t ctx = sh_vm("/vsock-guest serve 2345 3", log, sizeof log);
    expect(krun_add_vsock_port2(ctx, 2346, exists, true) == -EEXIST, "listen on an existing path is -EEXIST");
    expect(krun_add_vsock_port2(ctx, 620, d.path, true) == -EINVAL, "listen port 620 is -EINVAL");
    expect(krun_add_vsock_port2(ctx, 2345, d.path, true) == 0, "krun_add_vsock_port2(2345, in.sock, listen)");
    pthread_t t;
    int32_t rc = krun_start(ctx);
    expect(rc == 0, "krun_start = %d", rc);
    struct stat st;
    expect(stat(d.path, &st) == 0 && S_ISSOCK(st.st_mode), "the VMM listens on in.sock");
    pthread_create(&t, NULL, dial, &d);
    int32_t status = krun_wait(ctx, 600 * 1000);
    if (status == -ETIMEDOUT) {
        krun_stop(ctx);
        krun_wait(ctx, -1);
    }
    pthread_join(t, NULL);
    expect(d.served == 3, "3 host clients got the guest's echo (%d)", d.served);
    finish(ctx, status, log, "listen");
    expect(file_has(log, "served 2: from-host-2"), "the guest served all three");
    expect(stat(d.path, &st) != 0, "in.sock is gone with the VM");
}

static void mode_flood(void)
{
    char log[512], path[512];
    snprintf(path, sizeof path, "%s/msg.sock", work);
    uint32_t ctx = sh_vm("/vsock-guest flood 1234 1100", log, sizeof log);
    expect(krun_add_vsock_port(ctx, 1234, path) == 0, "krun_add_vsock_port(1234, msg.sock)");
    int32_t status = run_watching_fds(ctx, 600);
    finish(ctx, status, log, "flood");
    expect(file_has(log, "flood ok=1024 refused=76"), "the VMM took 1024 connections and refused 76");
    expect(fd_max - fd_base <= VSOCK_CONNS_MAX + 64, "host fds stayed under the cap: base %d, max %d (cap %d + VM fds)",
           fd_base, fd_max, VSOCK_CONNS_MAX);
    expect(fd_max - fd_base >= VSOCK_CONNS_MAX, "the flood did reach the cap (max %d over base %d)", fd_max, fd_base);
    expect(file_has(log, "reply=echo:after-flood"), "the port serves after the flood");
}

static void mode_tsi_connect(void)
{
    char log[512];
    uint32_t ctx = sh_vm("/vsock-guest tsi-connect 18080 1048576 && /vsock-guest tsi-dgram 18081", log, sizeof log);
    int32_t status = run(ctx, 600);
    finish(ctx, status, log, "tsi-connect");
    expect(file_has(log, "tsi-connect result=0 local=127.0.0.1:"), "CONNECT answered 0 with the host socket's local address");
    expect(file_has(log, "stream sent=1048576 got=1048576"), "1 MiB through TSI both ways, checksums equal");
    expect(file_has(log, "tsi-dgram got=echo:ping-dgram from-port=18081"), "a datagram went out and its echo came back with its source");
}

/* Dials 127.0.0.1:port until the guest's server echoes; returns 1 when it did. */
static int dial_tcp(int port, const char *msg)
{
    for (int attempt = 0; attempt < 600; attempt++) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
            close(fd);
            usleep(200000);
            continue;
        }
        if (echoed(fd, msg))
            return 1;
        usleep(200000);
    }
    return 0;
}

/* The port the guest printed as "tsi-listen result=0 ... port=N" for its second listener. */
static int logged_port(const char *log, int skip)
{
    for (int attempt = 0; attempt < 600; attempt++) {
        FILE *f = fopen(log, "r");
        char line[512];
        int seen = 0, port = 0;
        while (f && fgets(line, sizeof line, f)) {
            char *p = strstr(line, "tsi-listen result=0 ");
            char *q = p ? strstr(p, "port=") : NULL;
            if (q && seen++ == skip)
                port = atoi(q + 5);
        }
        if (f)
            fclose(f);
        if (port > 0)
            return port;
        usleep(200000);
    }
    return 0;
}

struct listen_case {
    const char *log;
    int ok_fixed, ok_zero, port_zero;
};

static void *dial_listeners(void *arg)
{
    struct listen_case *c = arg;
    c->ok_fixed = dial_tcp(18090, "to-fixed");
    c->port_zero = logged_port(c->log, 1);
    c->ok_zero = c->port_zero > 0 && dial_tcp(c->port_zero, "to-port-zero");
    return NULL;
}

static void *dial_mapped(void *arg)
{
    int *ok = arg;
    *ok = dial_tcp(18091, "to-mapped");
    return NULL;
}

static void mode_tsi_listen(void)
{
    char log[512];
    /* No port map: loopback only; a fixed port, then port 0. */
    uint32_t ctx = sh_vm("/vsock-guest tsi-listen 18090 5000 ok && /vsock-guest tsi-listen 0 5003 ok", log, sizeof log);
    static struct listen_case c;
    c.log = log;
    pthread_t t;
    expect(krun_start(ctx) == 0, "krun_start (no port map)");
    pthread_create(&t, NULL, dial_listeners, &c);
    int32_t status = krun_wait(ctx, 600 * 1000);
    if (status == -ETIMEDOUT) {
        krun_stop(ctx);
        krun_wait(ctx, -1);
    }
    pthread_join(t, NULL);
    finish(ctx, status, log, "tsi-listen, no port map");
    expect(file_has(log, "tsi-listen result=0 addr=127.0.0.1 port=18090"), "no port map: the wildcard request was bound on the host's loopback, same port");
    expect(c.ok_fixed, "a host client reached the guest's listener on 127.0.0.1:18090");
    expect(file_has(log, "tsi-accepted result=0 peer=127.0.0.1"), "the accepted connection's header named the client");
    expect(c.port_zero > 0 && c.ok_zero, "bind(port 0): the real host port was reported (%d) and it answers", c.port_zero);
    expect(!file_has(log, "addr=0.0.0.0"), "nothing was bound on the wildcard address");

    /* A port map: 18091 → guest 8080; guest port 8081 is not mapped. */
    const char *const map[] = { "18091:8080", NULL };
    const char *const dup[] = { "18091:8080", "18092:8080", NULL };
    ctx = sh_vm("/vsock-guest tsi-listen 8081 5001 eperm && /vsock-guest tsi-listen 8080 5002 ok", log, sizeof log);
    expect(krun_set_port_map(ctx, dup) == -EINVAL, "a duplicate guest port in the map is -EINVAL");
    expect(krun_set_port_map(ctx, map) == 0, "krun_set_port_map(18091:8080)");
    static int ok_mapped;
    expect(krun_start(ctx) == 0, "krun_start (port map)");
    pthread_create(&t, NULL, dial_mapped, &ok_mapped);
    status = krun_wait(ctx, 600 * 1000);
    if (status == -ETIMEDOUT) {
        krun_stop(ctx);
        krun_wait(ctx, -1);
    }
    pthread_join(t, NULL);
    finish(ctx, status, log, "tsi-listen, port map");
    expect(file_has(log, "tsi-listen result=-1 "), "an unmapped guest port is -EPERM");
    expect(file_has(log, "tsi-listen result=0 addr=0.0.0.0 port=18091"), "a mapped port is bound where the guest asked (wildcard) at the host port");
    expect(ok_mapped, "a host client reached the guest's port 8080 through 18091");
}

static void mode_tsi_hostile(void)
{
    char log[512];
    uint32_t ctx = sh_vm("/vsock-guest tsi-hostile 1100 18080", log, sizeof log);
    int32_t status = run_watching_fds(ctx, 600);
    finish(ctx, status, log, "tsi-hostile");
    expect(file_has(log, "tsi-hostile open=1024"), "1024 connections to 620 were taken, the rest refused");
    expect(fd_max - fd_base <= VSOCK_CONNS_MAX + 64, "host fds stayed under the cap: base %d, max %d", fd_base, fd_max);
    expect(file_has(log, "tsi-hostile ok"), "malformed requests got -EINVAL, and CONNECT works after the flood");
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: vsock-vm ROOTFS WORK port|listen|flood|tsi-connect|tsi-listen|tsi-hostile\n");
        return 2;
    }
    rootfs = argv[1];
    work = argv[2];
    const char *mode = argv[3];
    raise_nofile();
    signal(SIGPIPE, SIG_IGN);
    krun_set_log_level(getenv("VSOCK_VM_DEBUG") ? 4 : 1);
    pid_t peers = start_peers();
    if (strcmp(mode, "port") == 0)
        mode_port();
    else if (strcmp(mode, "listen") == 0)
        mode_listen();
    else if (strcmp(mode, "flood") == 0)
        mode_flood();
    else if (strcmp(mode, "tsi-connect") == 0)
        mode_tsi_connect();
    else if (strcmp(mode, "tsi-listen") == 0)
        mode_tsi_listen();
    else if (strcmp(mode, "tsi-hostile") == 0)
        mode_tsi_hostile();
    else {
        fprintf(stderr, "unknown mode %s\n", mode);
        failed++;
    }
    kill(peers, SIGKILL);
    waitpid(peers, NULL, 0);
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 && passed > 0 ? 0 : 1;
}
