/*
 * The configuration call sequences of real libkrun clients (libkrun.md §7), up to but not
 * including krun_start_enter: crun's krun handler (through dlopen/dlsym, as crun does),
 * krunvm's start command and muvm. Every call zkrun can honour returns 0; the others return
 * -ENOTSUP and log their reason ("[zkrun] <function>: ..." on the log pipe).
 * Usage: clients ROOTFS_DIR KERNEL_FILE
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <libkrun.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#define SYM(lib, name) ((__typeof__(&name))dlsym(lib, #name))

static int log_pipe[2];

/* The log lines written since the last call, which must name "func" with a reason. */
static void expect_reason(const char *func)
{
    char buf[8192];
    ssize_t n = read(log_pipe[0], buf, sizeof(buf) - 1);
    buf[n > 0 ? n : 0] = 0;
    char want[128];
    snprintf(want, sizeof(want), "%s: not supported by zkrun: ", func);
    if (strstr(buf, want) == NULL)
        printf("no reason logged for %s (log: \"%s\")\n", func, buf);
    CHECK(strstr(buf, want) != NULL);
}

#define CHECK_ENOTSUP(call, func)         \
    do {                                  \
        CHECK_EQ(call, -ENOTSUP);         \
        expect_reason(func);              \
    } while (0)

static void crun(const char *rootfs, const char *kernel)
{
    printf("== crun\n");
    void *lib = dlopen("libkrun.so.1", RTLD_NOW);
    CHECK(lib != NULL);
    if (lib == NULL)
        return;
    /* crun resolves these up front and fails the container if one is missing. */
    int32_t (*create_ctx)(void) = SYM(lib, krun_create_ctx);
    int32_t (*set_log_level)(uint32_t) = SYM(lib, krun_set_log_level);
    int32_t (*add_virtiofs2)(uint32_t, const char *, const char *, uint64_t) = SYM(lib, krun_add_virtiofs2);
    int32_t (*set_vm_config)(uint32_t, uint8_t, uint32_t) = SYM(lib, krun_set_vm_config);
    int32_t (*check_nested_virt)(void) = SYM(lib, krun_check_nested_virt);
    int32_t (*set_nested_virt)(uint32_t, bool) = SYM(lib, krun_set_nested_virt);
    int32_t (*set_kernel)(uint32_t, const char *, uint32_t, const char *, const char *) = SYM(lib, krun_set_kernel);
    int32_t (*set_gpu_options)(uint32_t, uint32_t) = SYM(lib, krun_set_gpu_options);
    int32_t (*add_net_unixstream)(uint32_t, const char *, int, uint8_t *const, uint32_t, uint32_t) = SYM(lib, krun_add_net_unixstream);
    int32_t (*free_ctx)(uint32_t) = SYM(lib, krun_free_ctx);
    CHECK(create_ctx && set_log_level && add_virtiofs2 && set_vm_config && check_nested_virt &&
          set_nested_virt && set_kernel && set_gpu_options && add_net_unixstream && free_ctx);
    CHECK(SYM(lib, krun_start_enter) && SYM(lib, krun_set_root_disk) && SYM(lib, krun_set_tee_config_file) &&
          SYM(lib, krun_set_console_output) && SYM(lib, krun_set_exec));
    /* krun_create_ctx before the namespace switch, then the rest. */
    int32_t id = create_ctx();
    CHECK(id >= 0);
    uint32_t ctx = (uint32_t)id;
    CHECK_EQ(set_log_level(KRUN_LOG_LEVEL_ERROR), 0);
    CHECK_EQ(add_virtiofs2(ctx, KRUN_FS_ROOT_TAG, rootfs, 512ULL << 20), 0);
    CHECK_EQ(set_vm_config(ctx, 2, 1024), 0);
    int32_t nested = check_nested_virt();
    CHECK(nested == 0 || nested == 1);
    CHECK_EQ(set_nested_virt(ctx, true), 0);
    /* crun treats this as "no GPU support" */
    CHECK_ENOTSUP(set_gpu_options(ctx, 0), "krun_set_gpu_options");
    uint8_t mac[6] = { 0x5a, 0x94, 0xef, 0xe4, 0x0c, 0xee };
    CHECK_EQ(add_net_unixstream(ctx, NULL, 3, mac, COMPAT_NET_FEATURES, NET_FLAG_DHCP_CLIENT), 0);
    CHECK_EQ(set_kernel(ctx, kernel, KRUN_KERNEL_FORMAT_ELF, NULL, "console=hvc0 quiet"), 0);
    CHECK_EQ(free_ctx(ctx), 0);
    dlclose(lib);
}

static void krunvm(const char *rootfs)
{
    printf("== krunvm\n");
    const char *const ports[] = { NULL };
    const char *const env[] = { "HOSTNAME=vm", "HOME=/root", NULL };
    const char *const args[] = { "-c", "true", NULL };
    int32_t id = krun_create_ctx();
    CHECK(id >= 0);
    uint32_t ctx = (uint32_t)id;
    CHECK_EQ(krun_set_vm_config(ctx, 2, 1024), 0);
    CHECK_EQ(krun_set_root(ctx, rootfs), 0);
    CHECK_EQ(krun_set_port_map(ctx, ports), 0); /* always called; empty: publish nothing */
    const char *const published[] = { "8080:80", NULL };
    CHECK_EQ(krun_set_port_map(ctx, published), 0); /* TSI publishes guest port 80 on 8080 */
    CHECK_EQ(krun_set_workdir(ctx, "/root"), 0);
    CHECK_EQ(krun_set_exec(ctx, "/bin/sh", args, env), 0);
    CHECK_EQ(krun_set_env(ctx, env), 0);
    CHECK_EQ(krun_free_ctx(ctx), 0);
}

/* muvm (AsahiLinux/muvm, libkrun.md §7.3): the host root, /dev/shm, GPU, passt, vsock ports. */
static void muvm(const char *rootfs)
{
    printf("== muvm\n");
    const char *const env[] = { "KRUN_CONFIG=/tmp/muvm.json", NULL };
    CHECK_EQ(krun_set_log_level(KRUN_LOG_LEVEL_ERROR), 0);
    int32_t id = krun_create_ctx();
    CHECK(id >= 0);
    uint32_t ctx = (uint32_t)id;
    CHECK_EQ(krun_set_vm_config(ctx, 2, 1024), 0);
    CHECK_ENOTSUP(krun_set_gpu_options2(ctx, VIRGLRENDERER_DRM | VIRGLRENDERER_NO_VIRGL, 1ULL << 33),
                  "krun_set_gpu_options2");
    CHECK_EQ(krun_set_root(ctx, rootfs), 0);
    CHECK_EQ(krun_add_virtiofs2(ctx, "devshm", "/dev/shm/", 512ULL << 20), 0);
    /* muvm's data disk: a real (empty, 1 MiB) raw image. */
    char img[] = "/tmp/zkrun-clients-muvm-XXXXXX";
    int img_fd = mkstemp(img);
    CHECK(img_fd >= 0);
    CHECK_EQ(ftruncate(img_fd, 1 << 20), 0);
    close(img_fd);
    CHECK_EQ(krun_add_disk(ctx, "data", img, true), 0);
    CHECK_EQ(krun_set_passt_fd(ctx, 3), 0);
    CHECK_EQ(krun_add_vsock_port(ctx, 3333, "/tmp/pulse.sock"), 0);
    unlink("/tmp/zkrun-clients-muvm-guest.sock");
    CHECK_EQ(krun_add_vsock_port2(ctx, 3334, "/tmp/zkrun-clients-muvm-guest.sock", true), 0);
    CHECK_EQ(krun_set_workdir(ctx, "/"), 0);
    CHECK_EQ(krun_set_env(ctx, env), 0);
    CHECK_EQ(krun_free_ctx(ctx), 0);
    unlink(img);
}

/* Calls whose request asks nothing of a missing feature succeed; libkrun 1.x's later symbols
 * exist. */
static void trivial(void)
{
    printf("== trivially honoured\n");
    int32_t id = krun_create_ctx();
    CHECK(id >= 0);
    uint32_t ctx = (uint32_t)id;
    const char *const none[] = { NULL };
    CHECK_EQ(krun_set_port_map(ctx, NULL), 0);
    CHECK_EQ(krun_set_smbios_oem_strings(ctx, none), 0);
    CHECK_EQ(krun_set_snd_device(ctx, false), 0);
    CHECK_ENOTSUP(krun_set_snd_device(ctx, true), "krun_set_snd_device");
    CHECK_EQ(krun_split_irqchip(ctx, false), 0);
    CHECK_EQ(krun_append_kernel_cmdline(ctx, "loglevel=4"), 0);
    CHECK_ENOTSUP(krun_set_tee_firmware(ctx, KRUN_TEE_FW_TDSHIM, "/x"), "krun_set_tee_firmware");
    CHECK_ENOTSUP(krun_display_set_edid_name(ctx, 0, "zkrun"), "krun_display_set_edid_name");
    CHECK_ENOTSUP(krun_add_vfio_device(ctx, 3, 1, 0), "krun_add_vfio_device");
    CHECK_EQ(krun_free_ctx(ctx), 0);
    CHECK_EQ(krun_set_port_map(ctx, NULL), -ENOENT);
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    if (pipe2(log_pipe, O_NONBLOCK | O_CLOEXEC) != 0)
        return 2;
    CHECK_EQ(krun_init_log(log_pipe[1], KRUN_LOG_LEVEL_ERROR, KRUN_LOG_STYLE_NEVER, KRUN_LOG_OPTION_NO_ENV), 0);
    crun(argv[1], argv[2]);
    CHECK_EQ(krun_init_log(log_pipe[1], KRUN_LOG_LEVEL_ERROR, KRUN_LOG_STYLE_NEVER, KRUN_LOG_OPTION_NO_ENV), 0);
    krunvm(argv[1]);
    muvm(argv[1]);
    trivial();
    return summary();
}
