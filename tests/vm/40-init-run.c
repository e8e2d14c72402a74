/*
 * 40-init-run: the runner of the guest-init and TSI VM tests (tests/vm/4x-init-*.test.sh,
 * tests/vm/85..8c-tsi-*.test.sh). A libkrun client that passes the workload the way real
 * clients do:
 *
 *   40-init-run [-w WORKDIR] [-r ID=CUR:MAX]... [-k ARG]... [-p HOST:GUEST]... [-E] [-n] [-u]
 *               [-P SOCKET] [-T TAP [-O]] ROOT_DIR [COMMAND [ARG]...]
 *
 * With COMMAND: krun_set_exec(COMMAND, ARGs, NULL): a NULL envp hands the guest this process's
 * whole environment (libkrun's semantics), so `env -i A=1 ... 40-init-run` sets it exactly.
 * Without COMMAND: no krun_set_exec at all (crun's way): the guest's init finds the workload in
 * ROOT_DIR/.krun_config.json.
 *
 * -w sets the workdir (krun_set_workdir); -r adds an rlimit (krun_set_rlimits); -k appends ARG to
 * the kernel command line (krun_append_kernel_cmdline); -p adds a port-map entry and -E sets an
 * empty port map (krun_set_port_map); -n calls krun_disable_implicit_vsock (no vsock device, so
 * no TSI host side); -u replaces the implicit vsock device by one with KRUN_TSI_HIJACK_INET |
 * KRUN_TSI_HIJACK_UNIX (krun_add_vsock); -P gives the VM a NIC on passt's unix socket SOCKET
 * (krun_add_net_unixstream, no DHCP: a NIC turns TSI off; the TSI bench's comparison); -T gives
 * it a NIC on the tap device TAP (krun_add_net_tap, COMPAT_NET_FEATURES; with -O only CSUM and
 * GUEST_CSUM: no segmentation offloads either way). The process ends with the guest workload's
 * status.
 */
#include <libkrun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LIST_MAX 16

static void check(int32_t ret, const char *what)
{
    if (ret < 0) {
        fprintf(stderr, "40-init-run: %s: %s\n", what, strerror(-ret));
        exit(1);
    }
}

int main(int argc, char *argv[])
{
    const char *workdir = NULL, *passt = NULL, *tap = NULL;
    const char *rlimits[LIST_MAX + 1] = { 0 };
    const char *map[LIST_MAX + 1] = { 0 };
    const char *cmdline[LIST_MAX] = { 0 };
    int n_rlimits = 0, n_map = 0, n_cmdline = 0, set_map = 0, no_vsock = 0, unix_tsi = 0, opt;
    uint32_t tap_features = COMPAT_NET_FEATURES;
    while ((opt = getopt(argc, argv, "+w:r:k:p:EnuP:T:O")) != -1) {
        if (opt == 'w') {
            workdir = optarg;
        } else if (opt == 'r' && n_rlimits < LIST_MAX) {
            rlimits[n_rlimits++] = optarg;
        } else if (opt == 'k' && n_cmdline < LIST_MAX) {
            cmdline[n_cmdline++] = optarg;
        } else if (opt == 'p' && n_map < LIST_MAX) {
            map[n_map++] = optarg;
            set_map = 1;
        } else if (opt == 'E') {
            set_map = 1;
        } else if (opt == 'n') {
            no_vsock = 1;
        } else if (opt == 'u') {
            unix_tsi = 1;
        } else if (opt == 'P') {
            passt = optarg;
        } else if (opt == 'T') {
            tap = optarg;
        } else if (opt == 'O') {
            tap_features = NET_FEATURE_CSUM | NET_FEATURE_GUEST_CSUM;
        } else {
            fprintf(stderr, "usage: 40-init-run [-w DIR] [-r ID=CUR:MAX]... [-k ARG]... [-p HOST:GUEST]... [-E] [-n] [-u] "
                            "[-P SOCKET] [-T TAP [-O]] ROOT [COMMAND [ARG]...]\n");
            return 2;
        }
    }
    if (optind >= argc)
        return 2;
    int32_t ctx = krun_create_ctx();
    check(ctx, "krun_create_ctx");
    check(krun_set_vm_config((uint32_t)ctx, 1, 256), "krun_set_vm_config");
    check(krun_set_root((uint32_t)ctx, argv[optind]), "krun_set_root");
    if (workdir != NULL)
        check(krun_set_workdir((uint32_t)ctx, workdir), "krun_set_workdir");
    if (n_rlimits > 0)
        check(krun_set_rlimits((uint32_t)ctx, rlimits), "krun_set_rlimits");
    for (int i = 0; i < n_cmdline; i++)
        check(krun_append_kernel_cmdline((uint32_t)ctx, cmdline[i]), "krun_append_kernel_cmdline");
    if (no_vsock || unix_tsi)
        check(krun_disable_implicit_vsock((uint32_t)ctx), "krun_disable_implicit_vsock");
    if (unix_tsi)
        check(krun_add_vsock((uint32_t)ctx, KRUN_TSI_HIJACK_INET | KRUN_TSI_HIJACK_UNIX), "krun_add_vsock");
    if (passt) {
        uint8_t mac[6] = { 0x5a, 0x94, 0xef, 0xe4, 0x0c, 0xee };
        check(krun_add_net_unixstream((uint32_t)ctx, passt, -1, mac, COMPAT_NET_FEATURES, 0), "krun_add_net_unixstream");
    }
    if (tap) {
        uint8_t mac[6] = { 0x5a, 0x94, 0xef, 0xe4, 0x0c, 0xef };
        check(krun_add_net_tap((uint32_t)ctx, (char *)tap, mac, tap_features, 0), "krun_add_net_tap");
    }
    if (set_map)
        check(krun_set_port_map((uint32_t)ctx, map), "krun_set_port_map");
    if (optind + 1 < argc)
        check(krun_set_exec((uint32_t)ctx, argv[optind + 1], (const char *const *)&argv[optind + 2], NULL),
              "krun_set_exec");
    check(krun_start_enter((uint32_t)ctx), "krun_start_enter");
    return 1;
}
