/*
 * The guest runs of the hardening VM tests (tests/vm/34, 43-45): real clients' call orders and
 * a writable second share. Each mode ends in krun_start_enter, so the process exits with the
 * workload's status; a failing call prints "harden-vm: <call>: <errno>" and exits 70.
 *
 *   harden-vm krunvm ROOT WORKDIR CMD [ARG]...   krunvm 0.2.6 (libkrun.md §7.1): create,
 *                                                vm_config, root, empty port map, workdir,
 *                                                exec, start_enter
 *   harden-vm crun181 ROOT CMD [ARG]...          crun 1.8.1 (§12): libkrun loaded on the host,
 *                                                then chroot into ROOT (no libkrunfw there),
 *                                                then every call, root "/"
 *   harden-vm crun ROOT CMD [ARG]...             newer crun: krun_create_ctx on the host, then
 *                                                chroot, then the rest
 *   harden-vm share ROOT TAG DIR CMD [ARG]...    ROOT plus a writable virtio-fs share TAG=DIR
 *   harden-vm cmdline ROOT ARG1 ARG2 CMD...      krun_append_kernel_cmdline(ARG1), (ARG2)
 *
 * The chroot modes give the VMM what a container has: a private mount namespace with /proc
 * mounted in ROOT and /dev/kvm in ROOT/dev.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <libkrun.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static void check(int32_t ret, const char *what)
{
    if (ret < 0) {
        fprintf(stderr, "harden-vm: %s: %s\n", what, strerror(-ret));
        exit(70);
    }
}

static void sys(int ret, const char *what)
{
    if (ret != 0) {
        fprintf(stderr, "harden-vm: %s: %s\n", what, strerror(errno));
        exit(71);
    }
}

/* Enter ROOT the way crun does before the VM starts (pivot_root there; chroot here). */
static void enter_container(const char *root)
{
    char path[4096];
    sys(unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)");
    sys(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), "mount --make-rprivate /");
    snprintf(path, sizeof path, "%s/proc", root);
    mkdir(path, 0555);
    sys(mount("proc", path, "proc", 0, NULL), "mount proc");
    snprintf(path, sizeof path, "%s/dev/kvm", root);
    unlink(path);
    sys(mknod(path, S_IFCHR | 0666, makedev(10, 232)), "mknod /dev/kvm");
    sys(chroot(root), "chroot");
    sys(chdir("/"), "chdir /");
    if (access("/usr/lib/x86_64-linux-gnu/libkrunfw.so.5", F_OK) == 0 || access("/lib/libkrunfw.so.5", F_OK) == 0) {
        fprintf(stderr, "harden-vm: the container root has a libkrunfw\n");
        exit(72);
    }
}

static const char *const env[] = { "HOSTNAME=vm", "HOME=/root", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL };

int main(int argc, char *argv[])
{
    if (argc < 4) {
        fprintf(stderr, "usage: see tests/vm/43-harden-vm.c\n");
        return 2;
    }
    const char *mode = argv[1], *root = argv[2];
    krun_set_log_level(KRUN_LOG_LEVEL_WARN);
    if (strcmp(mode, "krunvm") == 0) {
        const char *const ports[] = { NULL }; /* no port published */
        int32_t ctx = krun_create_ctx();
        check(ctx, "krun_create_ctx");
        check(krun_set_vm_config((uint32_t)ctx, 2, 256), "krun_set_vm_config");
        check(krun_set_root((uint32_t)ctx, root), "krun_set_root");
        check(krun_set_port_map((uint32_t)ctx, ports), "krun_set_port_map");
        check(krun_set_workdir((uint32_t)ctx, argv[3]), "krun_set_workdir");
        check(krun_set_exec((uint32_t)ctx, argv[4], (const char *const *)&argv[5], env), "krun_set_exec");
        check(krun_start_enter((uint32_t)ctx), "krun_start_enter");
        return 1;
    }
    if (strcmp(mode, "crun181") == 0 || strcmp(mode, "crun") == 0) {
        int32_t ctx = -1;
        if (strcmp(mode, "crun") == 0)
            check(ctx = krun_create_ctx(), "krun_create_ctx");
        enter_container(root);
        check(krun_set_log_level(KRUN_LOG_LEVEL_ERROR), "krun_set_log_level");
        if (ctx < 0)
            check(ctx = krun_create_ctx(), "krun_create_ctx");
        const char *const no_env[] = { NULL };
        check(krun_set_vm_config((uint32_t)ctx, 1, 256), "krun_set_vm_config");
        check(krun_set_root((uint32_t)ctx, "/"), "krun_set_root");
        check(krun_set_workdir((uint32_t)ctx, "/"), "krun_set_workdir");
        check(krun_set_exec((uint32_t)ctx, argv[3], (const char *const *)&argv[4], no_env), "krun_set_exec");
        check(krun_start_enter((uint32_t)ctx), "krun_start_enter");
        return 1;
    }
    if (strcmp(mode, "share") == 0 && argc >= 6) {
        int32_t ctx = krun_create_ctx();
        check(ctx, "krun_create_ctx");
        check(krun_set_vm_config((uint32_t)ctx, 1, 256), "krun_set_vm_config");
        check(krun_set_root((uint32_t)ctx, root), "krun_set_root");
        check(krun_add_virtiofs3((uint32_t)ctx, argv[3], argv[4], 0, false), "krun_add_virtiofs3");
        check(krun_set_exec((uint32_t)ctx, argv[5], (const char *const *)&argv[6], env), "krun_set_exec");
        check(krun_start_enter((uint32_t)ctx), "krun_start_enter");
        return 1;
    }
    if (strcmp(mode, "cmdline") == 0 && argc >= 6) {
        int32_t ctx = krun_create_ctx();
        check(ctx, "krun_create_ctx");
        check(krun_set_root((uint32_t)ctx, root), "krun_set_root");
        check(krun_append_kernel_cmdline((uint32_t)ctx, argv[3]), "krun_append_kernel_cmdline");
        check(krun_append_kernel_cmdline((uint32_t)ctx, argv[4]), "krun_append_kernel_cmdline");
        check(krun_set_exec((uint32_t)ctx, argv[5], (const char *const *)&argv[6], env), "krun_set_exec");
        check(krun_start_enter((uint32_t)ctx), "krun_start_enter");
        return 1;
    }
    fprintf(stderr, "harden-vm: unknown mode %s\n", mode);
    return 2;
}
