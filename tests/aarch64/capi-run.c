/*
 * capi-run: the aarch64 C API tests' client (tests/aarch64/20-capi.test.sh), cross-built for
 * aarch64-linux against zkrun's libkrun.so.1 and libkrunfw.so.5 (our aarch64 Image). A libkrun
 * client as the x86_64 VM tests' 40-init-run is:
 *
 *   capi-run [-c VCPUS] [-t CONSOLE] [-k IMAGE [-i INITRD] [-f FORMAT]] [-a KARG] [-S | -X MS] ROOT_DIR COMMAND [ARG]...
 *
 * Default: krun_start_enter (the process ends with the workload's status).
 * -S: krun_start + krun_wait (zkrun's extensions); prints "capi-run: status N reason R".
 * -X MS: krun_start, krun_stop after MS ms, krun_wait; prints the same line.
 * -k IMAGE: krun_set_kernel(IMAGE, RAW, or -f FORMAT's number) instead of libkrunfw, with -i its initramfs INITRD (whose
 * /init then runs instead of /init.krun: tests/bench/aarch64.bench.sh); -t: krun_set_kernel_console;
 * -a: krun_append_kernel_cmdline (e.g. loglevel=7 to see the boot through quiet).
 */
#include <libkrun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void check(int32_t ret, const char *what)
{
    if (ret < 0) {
        fprintf(stderr, "capi-run: %s: %s\n", what, strerror(-ret));
        exit(1);
    }
}

int main(int argc, char *argv[])
{
    int vcpus = 1, mode = 0, stop_ms = 0, format = KRUN_KERNEL_FORMAT_RAW, opt;
    const char *console = NULL, *image = NULL, *initrd = NULL, *karg = NULL;
    while ((opt = getopt(argc, argv, "+c:t:k:i:f:a:SX:")) != -1) {
        if (opt == 'c') {
            vcpus = atoi(optarg);
        } else if (opt == 't') {
            console = optarg;
        } else if (opt == 'k') {
            image = optarg;
        } else if (opt == 'f') {
            format = atoi(optarg);
        } else if (opt == 'i') {
            initrd = optarg;
        } else if (opt == 'a') {
            karg = optarg;
        } else if (opt == 'S') {
            mode = 1;
        } else if (opt == 'X') {
            mode = 2;
            stop_ms = atoi(optarg);
        } else {
            fprintf(stderr, "usage: capi-run [-c N] [-t CONSOLE] [-k IMAGE [-i INITRD] [-f FORMAT]] [-a KARG] [-S | -X MS] ROOT CMD [ARG]...\n");
            return 2;
        }
    }
    if (optind + 2 > argc)
        return 2;
    int32_t ctx = krun_create_ctx();
    check(ctx, "krun_create_ctx");
    uint32_t id = (uint32_t)ctx;
    check(krun_set_vm_config(id, (uint8_t)vcpus, 256), "krun_set_vm_config");
    if (image != NULL)
        check(krun_set_kernel(id, image, (uint32_t)format, initrd, NULL), "krun_set_kernel");
    if (console != NULL)
        check(krun_set_kernel_console(id, console), "krun_set_kernel_console");
    if (karg != NULL)
        check(krun_append_kernel_cmdline(id, karg), "krun_append_kernel_cmdline");
    check(krun_set_root(id, argv[optind]), "krun_set_root");
    const char *const envp[] = { "PATH=/bin", NULL };
    check(krun_set_exec(id, argv[optind + 1], (const char *const *)&argv[optind + 2], envp), "krun_set_exec");
    if (mode == 0) {
        check(krun_start_enter(id), "krun_start_enter");
        return 1;
    }
    check(krun_start(id), "krun_start");
    if (mode == 2) {
        struct timespec ts = { stop_ms / 1000, (long)(stop_ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
        check(krun_stop(id), "krun_stop");
    }
    int32_t status = krun_wait(id, -1);
    check(status, "krun_wait");
    int32_t reason = krun_get_exit_reason(id);
    printf("capi-run: status %d reason %d\n", status, reason);
    fflush(stdout);
    check(krun_free_ctx(id), "krun_free_ctx");
    return 0;
}
