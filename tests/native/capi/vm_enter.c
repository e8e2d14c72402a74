/*
 * krun_start_enter as a libkrun client uses it: the process becomes the VM and exits with the
 * guest's status. Boots an external kernel + initramfs without the implicit virtio console, so
 * the kernel console (ttyS0 in CMDLINE) is the guest's output, on our stdout.
 * Usage: vm_enter KERNEL INITRD CMDLINE [VCPUS [MIB]]
 * Exits with the guest's status, or 100 + errno if krun_start_enter returned.
 */
#include <libkrun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc < 4)
        return 2;
    uint8_t vcpus = argc > 4 ? (uint8_t)atoi(argv[4]) : 1;
    uint32_t mib = argc > 5 ? (uint32_t)atoi(argv[5]) : 256;
    const char *const no_env[] = { NULL };
    int32_t ctx = krun_create_ctx();
    if (ctx < 0 || krun_set_vm_config((uint32_t)ctx, vcpus, mib) < 0 ||
        krun_set_kernel((uint32_t)ctx, argv[1], KRUN_KERNEL_FORMAT_ELF, argv[2], argv[3]) < 0 ||
        krun_set_env((uint32_t)ctx, no_env) < 0 ||
        /* The test init then writes to /dev/console, the kernel's ttyS0 (COM1 to our stdout),
         * which the kernel flushes before its reboot; hvc0's last bytes can be lost to it. */
        krun_disable_implicit_console((uint32_t)ctx) < 0) {
        printf("vm_enter: configuration failed\n");
        return 99;
    }
    int32_t ret = krun_start_enter((uint32_t)ctx);
    printf("vm_enter: krun_start_enter returned %d (%s)\n", ret, strerror(-ret));
    return 100 + (-ret & 0x1f);
}
