/*
 * 96-net-vm: the virtio-net VM tests' runner (tests/vm/96..99-net-*.test.sh), a libkrun client:
 *
 *   96-net-vm [-p PASST_ARGS] [-s SOCKET] [-L] [-t TAP] [-d] [-f FEATURES] ROOT_DIR COMMAND [ARG]...
 *
 * -p starts passt as crun does (socketpair, `passt -f -1 --fd N PASST_ARGS`, split on spaces)
 * and adds the NIC with krun_add_net_unixstream(fd), or with the legacy krun_set_passt_fd under
 * -L; -s adds krun_add_net_unixstream(SOCKET path); -t krun_add_net_tap(TAP); -d sets
 * NET_FLAG_DHCP_CLIENT; -f the NET_FEATURE_* bits (default COMPAT_NET_FEATURES, as crun). MAC
 * 5a:94:ef:e4:0c:ee. The process ends with the workload's status.
 */
#include <libkrun.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void check(int32_t ret, const char *what)
{
    if (ret < 0) {
        fprintf(stderr, "96-net-vm: %s: %s\n", what, strerror(-ret));
        exit(1);
    }
}

/* Starts passt on one end of a socketpair; returns the other end. */
static int start_passt(char *args)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        perror("96-net-vm: socketpair");
        exit(1);
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("96-net-vm: fork");
        exit(1);
    }
    if (pid == 0) {
        char fd_arg[16];
        char *argv[64] = { "passt", "-f", "-1", "--fd", fd_arg };
        int n = 5;
        int fd = dup(sv[1]); /* without CLOEXEC */
        snprintf(fd_arg, sizeof fd_arg, "%d", fd);
        for (char *tok = strtok(args, " "); tok && n < 63; tok = strtok(NULL, " "))
            argv[n++] = tok;
        argv[n] = NULL;
        execvp("passt", argv);
        perror("96-net-vm: exec passt");
        _exit(127);
    }
    close(sv[1]);
    return sv[0];
}

int main(int argc, char *argv[])
{
    char *passt = NULL, *sock = NULL, *tap = NULL;
    int legacy = 0, dhcp = 0, opt;
    uint32_t features = COMPAT_NET_FEATURES;
    while ((opt = getopt(argc, argv, "+p:s:Lt:df:")) != -1) {
        if (opt == 'p') passt = optarg;
        else if (opt == 's') sock = optarg;
        else if (opt == 'L') legacy = 1;
        else if (opt == 't') tap = optarg;
        else if (opt == 'd') dhcp = 1;
        else if (opt == 'f') features = (uint32_t)strtoul(optarg, NULL, 0);
        else {
            fprintf(stderr, "usage: 96-net-vm [-p PASST_ARGS] [-s SOCKET] [-L] [-t TAP] [-d] [-f FEATURES] ROOT COMMAND [ARG]...\n");
            return 2;
        }
    }
    if (optind + 1 >= argc)
        return 2;
    uint8_t mac[6] = { 0x5a, 0x94, 0xef, 0xe4, 0x0c, 0xee };
    uint32_t flags = dhcp ? NET_FLAG_DHCP_CLIENT : 0;
    int32_t ctx = krun_create_ctx();
    check(ctx, "krun_create_ctx");
    check(krun_set_vm_config((uint32_t)ctx, 1, 256), "krun_set_vm_config");
    check(krun_set_root((uint32_t)ctx, argv[optind]), "krun_set_root");
    if (passt) {
        int fd = start_passt(passt);
        if (legacy)
            check(krun_set_passt_fd((uint32_t)ctx, fd), "krun_set_passt_fd");
        else
            check(krun_add_net_unixstream((uint32_t)ctx, NULL, fd, mac, features, flags), "krun_add_net_unixstream");
    }
    if (sock)
        check(krun_add_net_unixstream((uint32_t)ctx, sock, -1, mac, features, flags), "krun_add_net_unixstream(path)");
    if (tap)
        check(krun_add_net_tap((uint32_t)ctx, tap, mac, features & ~(uint32_t)(NET_FEATURE_HOST_TSO4 | NET_FEATURE_HOST_UFO), flags), "krun_add_net_tap");
    check(krun_set_exec((uint32_t)ctx, argv[optind + 1], (const char *const *)&argv[optind + 2], NULL),
          "krun_set_exec");
    check(krun_start_enter((uint32_t)ctx), "krun_start_enter");
    return 1;
}
