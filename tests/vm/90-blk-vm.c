/*
 * The VMM side of the disk VM tests (tests/vm/9x-blk-*.test.sh): runs COMMAND in a microVM with
 * disks attached through the C API. The root is ROOT_DIR (virtio-fs), or "-" with -remount (the
 * root is a disk). Exits with the guest command's status.
 *
 *   blk-vm ROOT_DIR|- [-disk ID PATH FORMAT RO]... [-disk3 ID PATH FORMAT RO DIRECT SYNC]... [-remount DEVICE FSTYPE OPTIONS] COMMAND [ARG]...
 *
 * FORMAT is raw|qcow2|vmdk, RO is 0|1; FSTYPE and OPTIONS may be "-" for NULL.
 */
#include <libkrun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void check(int32_t ret, const char *what)
{
    if (ret < 0) {
        char why[512] = "";
        krun_last_error(why, sizeof why);
        fprintf(stderr, "blk-vm: %s: %s (%s)\n", what, strerror(-ret), why);
        exit(1);
    }
}

static const char *opt(const char *s) { return strcmp(s, "-") == 0 ? NULL : s; }

int main(int argc, char *argv[])
{
    if (argc < 3) {
        fprintf(stderr, "usage: blk-vm ROOT_DIR|- [-disk ID PATH FORMAT RO]... [-disk3 ID PATH FORMAT RO DIRECT SYNC]... [-remount DEV FSTYPE OPTS] COMMAND [ARG]...\n");
        return 2;
    }
    const char *env[] = { "HOME=/root", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm", NULL };
    check(krun_set_log_level(KRUN_LOG_LEVEL_WARN), "krun_set_log_level");
    int32_t ctx = krun_create_ctx();
    check(ctx, "krun_create_ctx");
    check(krun_set_vm_config((uint32_t)ctx, 2, 512), "krun_set_vm_config");
    if (strcmp(argv[1], "-") != 0)
        check(krun_set_root((uint32_t)ctx, argv[1]), "krun_set_root");
    int at = 2;
    while (at < argc && argv[at][0] == '-') {
        if (strcmp(argv[at], "-disk") == 0 && at + 4 < argc) {
            const char *f = argv[at + 3];
            uint32_t format = strcmp(f, "qcow2") == 0 ? KRUN_DISK_FORMAT_QCOW2 : strcmp(f, "vmdk") == 0 ? KRUN_DISK_FORMAT_VMDK : KRUN_DISK_FORMAT_RAW;
            check(krun_add_disk2((uint32_t)ctx, argv[at + 1], argv[at + 2], format, strcmp(argv[at + 4], "1") == 0), "krun_add_disk2");
            at += 5;
        } else if (strcmp(argv[at], "-disk3") == 0 && at + 6 < argc) {
            const char *f = argv[at + 3];
            uint32_t format = strcmp(f, "qcow2") == 0 ? KRUN_DISK_FORMAT_QCOW2 : KRUN_DISK_FORMAT_RAW;
            check(krun_add_disk3((uint32_t)ctx, argv[at + 1], argv[at + 2], format, strcmp(argv[at + 4], "1") == 0,
                                 strcmp(argv[at + 5], "1") == 0, (uint32_t)atoi(argv[at + 6])),
                  "krun_add_disk3");
            at += 7;
        } else if (strcmp(argv[at], "-remount") == 0 && at + 3 < argc) {
            check(krun_set_root_disk_remount((uint32_t)ctx, argv[at + 1], opt(argv[at + 2]), opt(argv[at + 3])), "krun_set_root_disk_remount");
            at += 4;
        } else {
            fprintf(stderr, "blk-vm: bad option %s\n", argv[at]);
            return 2;
        }
    }
    if (at >= argc) {
        fprintf(stderr, "blk-vm: no command\n");
        return 2;
    }
    check(krun_set_exec((uint32_t)ctx, argv[at], (const char *const *)&argv[at + 1], env), "krun_set_exec");
    check(krun_start_enter((uint32_t)ctx), "krun_start_enter");
    return 1;
}
