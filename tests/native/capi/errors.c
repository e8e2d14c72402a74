/*
 * Every bad input to the C API, through the real libkrun.so.1 (no VM is started):
 * unknown contexts, out-of-range VM sizes, NULL and non-UTF-8 strings, missing files, bad
 * kernels, unknown features, unsupported functions, double frees, id order, and that each
 * rejection writes one log line saying why while successful calls write nothing.
 * Usage: errors WORKDIR (a scratch directory).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libkrun.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

static char scratch[512];

static const char *path_in(const char *name)
{
    static char buf[4][600];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, 600, "%s/%s", scratch, name);
    return p;
}

static void write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, data, len) != (ssize_t)len) {
        perror(path);
        exit(2);
    }
    close(fd);
}

/* Every function taking a ctx_id, called with arguments that are otherwise valid. */
static void every_ctx_function(uint32_t ctx, int expected)
{
    const char *const list[] = { NULL };
    uint8_t mac[6] = { 0x5a, 0x94, 0xef, 0xe4, 0x0c, 0xee };
    char tap[] = "tap0";
    char gvproxy[] = "/tmp/gvproxy.sock";
    uint16_t sizes[] = { 256, 0 };
    CHECK_EQ(krun_free_ctx(ctx), expected);
    CHECK_EQ(krun_set_vm_config(ctx, 1, 128), expected);
    CHECK_EQ(krun_set_root(ctx, "/"), expected);
    CHECK_EQ(krun_set_root_disk(ctx, "/dev/null"), expected);
    CHECK_EQ(krun_set_data_disk(ctx, "/dev/null"), expected);
    CHECK_EQ(krun_add_disk(ctx, "d", "/dev/null", true), expected);
    CHECK_EQ(krun_add_disk2(ctx, "d", "/dev/null", KRUN_DISK_FORMAT_RAW, true), expected);
    CHECK_EQ(krun_add_disk3(ctx, "d", "/dev/null", KRUN_DISK_FORMAT_RAW, true, false, KRUN_SYNC_FULL), expected);
    CHECK_EQ(krun_set_mapped_volumes(ctx, list), expected);
    CHECK_EQ(krun_add_virtiofs(ctx, "t", "/"), expected);
    CHECK_EQ(krun_add_virtiofs2(ctx, "t", "/", 0), expected);
    CHECK_EQ(krun_add_virtiofs3(ctx, "t", "/", 0, true), expected);
    CHECK_EQ(krun_add_net_unixstream(ctx, NULL, 3, mac, COMPAT_NET_FEATURES, 0), expected);
    CHECK_EQ(krun_add_net_unixgram(ctx, NULL, 3, mac, COMPAT_NET_FEATURES, 0), expected);
    CHECK_EQ(krun_add_net_tap(ctx, tap, mac, 0, 0), expected);
    CHECK_EQ(krun_set_passt_fd(ctx, 3), expected);
    CHECK_EQ(krun_set_gvproxy_path(ctx, gvproxy), expected);
    CHECK_EQ(krun_set_net_mac(ctx, mac), expected);
    CHECK_EQ(krun_set_port_map(ctx, list), expected);
    CHECK_EQ(krun_set_gpu_options(ctx, 0), expected);
    CHECK_EQ(krun_set_gpu_options2(ctx, 0, 1 << 20), expected);
    CHECK_EQ(krun_add_display(ctx, 800, 600), expected);
    CHECK_EQ(krun_display_set_edid(ctx, 0, mac, sizeof mac), expected);
    CHECK_EQ(krun_display_set_dpi(ctx, 0, 96), expected);
    CHECK_EQ(krun_display_set_physical_size(ctx, 0, 300, 200), expected);
    CHECK_EQ(krun_display_set_refresh_rate(ctx, 0, 60), expected);
    CHECK_EQ(krun_set_display_backend(ctx, mac, sizeof mac), expected);
    CHECK_EQ(krun_add_input_device(ctx, mac, sizeof mac, mac, sizeof mac), expected);
    CHECK_EQ(krun_add_input_device_fd(ctx, 0), expected);
    CHECK_EQ(krun_add_vhost_user_device(ctx, KRUN_VIRTIO_DEVICE_RNG, "/tmp/rng.sock", NULL, 0, sizes), expected);
    CHECK_EQ(krun_set_rlimits(ctx, list), expected);
    CHECK_EQ(krun_set_smbios_oem_strings(ctx, list), expected);
    CHECK_EQ(krun_set_workdir(ctx, "/"), expected);
    CHECK_EQ(krun_set_exec(ctx, "/bin/sh", list, list), expected);
    CHECK_EQ(krun_set_firmware(ctx, "/dev/null"), expected);
    CHECK_EQ(krun_set_kernel(ctx, "/nonexistent", KRUN_KERNEL_FORMAT_ELF, NULL, NULL), expected);
    CHECK_EQ(krun_set_env(ctx, list), expected);
    CHECK_EQ(krun_set_tee_config_file(ctx, "/dev/null"), expected);
    CHECK_EQ(krun_add_vsock_port(ctx, 1234, "/tmp/x.sock"), expected);
    CHECK_EQ(krun_add_vsock_port2(ctx, 1234, "/tmp/x.sock", true), expected);
    CHECK_EQ(krun_add_vsock(ctx, KRUN_TSI_HIJACK_INET), expected);
    CHECK_EQ(krun_get_shutdown_eventfd(ctx), expected);
    CHECK_EQ(krun_set_console_output(ctx, "/dev/null"), expected);
    CHECK_EQ(krun_setuid(ctx, getuid()), expected);
    CHECK_EQ(krun_setgid(ctx, getgid()), expected);
    CHECK_EQ(krun_set_nested_virt(ctx, true), expected);
    CHECK_EQ(krun_split_irqchip(ctx, true), expected);
    CHECK_EQ(krun_disable_implicit_console(ctx), expected);
    CHECK_EQ(krun_disable_implicit_init(ctx), expected);
    CHECK_EQ(krun_fs_add_overlay_file(ctx, "/dev/root", "x", mac, sizeof mac, 0100644, false), expected);
    CHECK_EQ(krun_fs_add_overlay_dir(ctx, "/dev/root", "x", 040755), expected);
    CHECK_EQ(krun_disable_implicit_vsock(ctx), expected);
    CHECK_EQ(krun_set_kernel_console(ctx, "hvc0"), expected);
    CHECK_EQ(krun_add_virtio_console_default(ctx, 0, 1, 2), expected);
    CHECK_EQ(krun_add_serial_console_default(ctx, 0, 1), expected);
    CHECK_EQ(krun_add_virtio_console_multiport(ctx), expected);
    CHECK_EQ(krun_add_console_port_tty(ctx, 0, "tty", 0), expected);
    CHECK_EQ(krun_add_console_port_inout(ctx, 0, "io", 0, 1), expected);
    CHECK_EQ(krun_set_root_disk_remount(ctx, "/dev/vda", "ext4", NULL), expected);
    CHECK_EQ(krun_start_enter(ctx), expected);
    CHECK_EQ(krun_start(ctx), expected);
    CHECK_EQ(krun_wait(ctx, 0), expected);
    CHECK_EQ(krun_stop(ctx), expected);
    CHECK_EQ(krun_vm_pause(ctx), expected);
    CHECK_EQ(krun_vm_resume(ctx), expected);
}

static uint32_t new_ctx(void)
{
    int32_t id = krun_create_ctx();
    CHECK(id >= 0);
    return (uint32_t)id;
}

static void ids_and_unknown_contexts(void)
{
    uint32_t a = new_ctx(), b = new_ctx();
    CHECK(b > a);
    CHECK_EQ(krun_free_ctx(a), 0);
    CHECK_EQ(krun_free_ctx(a), -ENOENT); /* freed twice */
    uint32_t c = new_ctx();
    CHECK(c > b); /* ids count up; a freed id is not reused */
    every_ctx_function(a, -ENOENT);
    every_ctx_function(0x7fffffff, -ENOENT);
    CHECK_EQ(krun_free_ctx(b), 0);
    CHECK_EQ(krun_free_ctx(c), 0);
}

static void vm_config(void)
{
    uint32_t ctx = new_ctx();
    int32_t max = krun_get_max_vcpus();
    CHECK(max > 0 || max == -ENODEV);
    CHECK_EQ(krun_set_vm_config(ctx, 0, 512), -EINVAL);
    CHECK_EQ(krun_set_vm_config(ctx, 255, 512), -EINVAL);
    if (max > 0 && max < 255)
        CHECK_EQ(krun_set_vm_config(ctx, (uint8_t)(max + 1), 512), -EINVAL);
    if (max > 0)
        CHECK_EQ(krun_set_vm_config(ctx, (uint8_t)(max < 255 ? max : 254), 512), 0);
    CHECK_EQ(krun_set_vm_config(ctx, 1, 0), -EINVAL);
    CHECK_EQ(krun_set_vm_config(ctx, 1, UINT32_MAX), -EINVAL);
    CHECK_EQ(krun_set_vm_config(ctx, 1, 512), 0);
    CHECK_EQ(krun_set_nested_virt(ctx, true), 0);
    CHECK_EQ(krun_split_irqchip(ctx, false), 0);
    CHECK_EQ(krun_split_irqchip(ctx, true), -ENOTSUP);
    CHECK_EQ(krun_free_ctx(ctx), 0);
}

static void strings(void)
{
    uint32_t ctx = new_ctx();
    const char *const bad_utf8[] = { "ok", "\xc3\x28", NULL };
    const char *const no_equals[] = { "NOEQUALS", NULL };
    const char *const good_env[] = { "HOME=/root", "TERM=xterm", NULL };
    CHECK_EQ(krun_set_root(ctx, NULL), -EINVAL);
    CHECK_EQ(krun_set_exec(ctx, NULL, NULL, good_env), -EINVAL);
    CHECK_EQ(krun_set_exec(ctx, "/bin/sh", bad_utf8, good_env), -EINVAL);
    CHECK_EQ(krun_set_exec(ctx, "/bin/sh", NULL, bad_utf8), -EINVAL);
    CHECK_EQ(krun_set_exec(ctx, "/bin/sh", NULL, NULL), 0); /* NULL argv and envp are allowed */
    CHECK_EQ(krun_set_exec(ctx, "/bin/sh", good_env, good_env), 0);
    CHECK_EQ(krun_set_env(ctx, no_equals), -EINVAL);
    CHECK_EQ(krun_set_env(ctx, NULL), 0);
    CHECK_EQ(krun_set_workdir(ctx, NULL), -EINVAL);
    CHECK_EQ(krun_set_workdir(ctx, "\xff"), -EINVAL);
    CHECK_EQ(krun_set_workdir(ctx, "/tmp"), 0);
    CHECK_EQ(krun_set_kernel(ctx, NULL, KRUN_KERNEL_FORMAT_ELF, NULL, NULL), -EINVAL);
    CHECK_EQ(krun_set_kernel_console(ctx, NULL), -EINVAL);
    CHECK_EQ(krun_set_kernel_console(ctx, "ttyS0"), 0);
    CHECK_EQ(krun_set_console_output(ctx, NULL), -EINVAL);
    CHECK_EQ(krun_add_virtiofs(ctx, NULL, "/"), -EINVAL);
    CHECK_EQ(krun_add_virtiofs(ctx, "", "/"), -EINVAL);
    CHECK_EQ(krun_add_virtiofs(ctx, "a-tag-that-is-longer-than-36-bytes-xx", "/"), -EINVAL);
    CHECK_EQ(krun_fs_add_overlay_dir(ctx, NULL, "x", 0755), -EINVAL);
    CHECK_EQ(krun_fs_add_overlay_file(ctx, "/dev/root", NULL, (const uint8_t *)"x", 1, 0644, false), -EINVAL);
    CHECK_EQ(krun_get_default_init(NULL, NULL), -EINVAL);
    const char *const rlimit_bad[] = { "NPROC=1:2", NULL };
    const char *const rlimit_good[] = { "6=4096:8192", "7=1024:4096", NULL };
    CHECK_EQ(krun_set_rlimits(ctx, rlimit_bad), -EINVAL);
    CHECK_EQ(krun_set_rlimits(ctx, NULL), -EINVAL);
    CHECK_EQ(krun_set_rlimits(ctx, rlimit_good), 0);
    /* More than KRUN_MAX_ARGS entries before the NULL. */
    static const char *many[KRUN_MAX_ARGS + 2];
    for (int i = 0; i <= KRUN_MAX_ARGS; i++)
        many[i] = "A=1";
    many[KRUN_MAX_ARGS + 1] = NULL;
    CHECK_EQ(krun_set_env(ctx, many), -EINVAL);
    many[KRUN_MAX_ARGS] = NULL;
    CHECK_EQ(krun_set_env(ctx, many), 0);
    CHECK_EQ(krun_free_ctx(ctx), 0);
}

static void filesystems(void)
{
    uint32_t ctx = new_ctx();
    write_file(path_in("file"), "x", 1);
    CHECK_EQ(krun_set_root(ctx, path_in("missing")), -ENOENT);
    CHECK_EQ(krun_set_root(ctx, path_in("file")), -ENOTDIR);
    CHECK_EQ(krun_add_virtiofs(ctx, "data", path_in("missing")), -ENOENT);
    CHECK_EQ(krun_set_root(ctx, scratch), 0);
    CHECK_EQ(krun_set_root(ctx, scratch), -EEXIST);
    CHECK_EQ(krun_add_virtiofs3(ctx, KRUN_FS_ROOT_TAG, scratch, 0, true), -EEXIST);
    CHECK_EQ(krun_add_virtiofs2(ctx, "dax", scratch, 4095), -EINVAL);
    CHECK_EQ(krun_add_virtiofs(ctx, "virtual", NULL), 0);
    CHECK_EQ(krun_fs_add_overlay_dir(ctx, "nosuchtag", "etc", 0755), -ENOENT);
    CHECK_EQ(krun_fs_add_overlay_dir(ctx, "virtual", "a/b", 0755), -ENOENT);
    CHECK_EQ(krun_fs_add_overlay_dir(ctx, "virtual", "a//b", 0755), -EINVAL);
    CHECK_EQ(krun_fs_add_overlay_dir(ctx, "virtual", "../x", 0755), -EINVAL);
    /* The root got the built-in init as a file: nothing can go below it or replace it. */
    CHECK_EQ(krun_fs_add_overlay_dir(ctx, KRUN_FS_ROOT_TAG, "init.krun", 0755), -EEXIST);
    CHECK_EQ(krun_fs_add_overlay_file(ctx, KRUN_FS_ROOT_TAG, "init.krun/x", (const uint8_t *)"x", 1, 0644, false), -ENOTDIR);
    CHECK_EQ(krun_fs_add_overlay_file(ctx, "virtual", "f", NULL, 0, 0644, false), -EINVAL);
    CHECK_EQ(krun_fs_add_overlay_file(ctx, "virtual", "f", (const uint8_t *)"x", 1, 040755, false), -EINVAL);
    CHECK_EQ(krun_fs_add_overlay_file(ctx, "virtual", "f", (const uint8_t *)"x", 1, 0644, true), 0);
    const uint8_t *init = NULL;
    size_t init_len = 0;
    CHECK_EQ(krun_get_default_init(&init, &init_len), 0);
    CHECK(init != NULL && init_len > 4096 && memcmp(init, "\177ELF", 4) == 0);
    CHECK_EQ(krun_free_ctx(ctx), 0);

    /* krun_disable_implicit_init before the root: init.krun is not there to collide with. */
    ctx = new_ctx();
    CHECK_EQ(krun_disable_implicit_init(ctx), 0);
    CHECK_EQ(krun_set_root(ctx, scratch), 0);
    CHECK_EQ(krun_fs_add_overlay_file(ctx, KRUN_FS_ROOT_TAG, "init.krun", init, init_len, 0755, true), 0);
    CHECK_EQ(krun_free_ctx(ctx), 0);
}

static void kernels(void)
{
    uint32_t ctx = new_ctx();
    unsigned char ehdr[64] = { 0x7f, 'E', 'L', 'F', 2, 1, 1 };
    ehdr[18] = 62;           /* x86_64 */
    ehdr[32] = 64;           /* e_phoff */
    ehdr[54] = 56;           /* e_phentsize */
    ehdr[56] = 1;            /* e_phnum: one header, past the end of this file */
    write_file(path_in("short.elf"), ehdr, 10);
    write_file(path_in("nophdr.elf"), ehdr, sizeof ehdr);
    write_file(path_in("empty.raw"), "", 0);
    write_file(path_in("text.elf"), "hello, this is not an ELF file at all, just text..................", 64);
    CHECK_EQ(krun_set_kernel(ctx, path_in("missing"), KRUN_KERNEL_FORMAT_ELF, NULL, NULL), -ENOENT);
    CHECK_EQ(krun_set_kernel(ctx, path_in("short.elf"), KRUN_KERNEL_FORMAT_ELF, NULL, NULL), -EINVAL);
    CHECK_EQ(krun_set_kernel(ctx, path_in("nophdr.elf"), KRUN_KERNEL_FORMAT_ELF, NULL, NULL), -EINVAL);
    CHECK_EQ(krun_set_kernel(ctx, path_in("text.elf"), KRUN_KERNEL_FORMAT_ELF, NULL, NULL), -EINVAL);
    CHECK_EQ(krun_set_kernel(ctx, path_in("empty.raw"), KRUN_KERNEL_FORMAT_RAW, NULL, NULL), -EINVAL);
    CHECK_EQ(krun_set_kernel(ctx, scratch, KRUN_KERNEL_FORMAT_RAW, NULL, NULL), -EINVAL); /* a directory */
    CHECK_EQ(krun_set_kernel(ctx, "/proc/self/exe", 99, NULL, NULL), -EINVAL);
    CHECK_EQ(krun_set_kernel(ctx, "/proc/self/exe", KRUN_KERNEL_FORMAT_PE_GZ, NULL, NULL), -ENOTSUP);
    CHECK_EQ(krun_set_kernel(ctx, "/proc/self/exe", KRUN_KERNEL_FORMAT_IMAGE_ZSTD, NULL, NULL), -ENOTSUP);
    CHECK_EQ(krun_set_kernel(ctx, "/proc/self/exe", KRUN_KERNEL_FORMAT_ELF, path_in("missing"), NULL), -ENOENT);
    static char long_cmdline[2100];
    memset(long_cmdline, 'x', sizeof long_cmdline - 1);
    CHECK_EQ(krun_set_kernel(ctx, "/proc/self/exe", KRUN_KERNEL_FORMAT_ELF, NULL, long_cmdline), -EINVAL);
    /* This test program is itself an x86_64 ELF executable with PT_LOAD segments. */
    CHECK_EQ(krun_set_kernel(ctx, "/proc/self/exe", KRUN_KERNEL_FORMAT_ELF, path_in("file"), "console=hvc0"), 0);
    CHECK_EQ(krun_set_kernel(ctx, path_in("file"), KRUN_KERNEL_FORMAT_RAW, NULL, NULL), 0);
    CHECK_EQ(krun_free_ctx(ctx), 0);
}

static void consoles_and_queries(void)
{
    uint32_t ctx = new_ctx();
    CHECK_EQ(krun_add_virtio_console_default(ctx, -1, 1, 2), -EBADF);
    CHECK_EQ(krun_add_virtio_console_default(ctx, 0, 1, 987), -EBADF);
    CHECK_EQ(krun_add_virtio_console_default(ctx, 0, 1, 2), 0);
    CHECK_EQ(krun_add_virtio_console_default(ctx, 0, 1, 2), -EEXIST);
    CHECK_EQ(krun_set_console_output(ctx, path_in("console.log")), 0);
    CHECK_EQ(krun_set_console_output(ctx, path_in("console.log")), -EEXIST);
    CHECK_EQ(krun_disable_implicit_console(ctx), 0);
    CHECK_EQ(krun_disable_implicit_vsock(ctx), 0);
    CHECK_EQ(krun_set_mapped_volumes(ctx, NULL), -EINVAL); /* no longer supported, as libkrun */
    CHECK_EQ(krun_get_shutdown_eventfd(ctx), -EINVAL);     /* macOS/aarch64 only, as libkrun */
    CHECK_EQ(krun_wait(ctx, 0), -EINVAL);                  /* not started */
    CHECK_EQ(krun_stop(ctx), -EINVAL);
    CHECK_EQ(krun_vm_pause(ctx), -ENOENT); /* no running VM */
    CHECK_EQ(krun_vm_resume(ctx), -ENOENT);
    CHECK_EQ(krun_get_exit_reason(ctx), -EINVAL);
    CHECK_EQ(krun_free_ctx(ctx), 0);
    CHECK_EQ(krun_get_exit_reason(ctx), -ENOENT);

    CHECK_EQ(krun_has_feature(KRUN_FEATURE_INIT_BLOB), 1);
    CHECK_EQ(krun_has_feature(KRUN_FEATURE_NET), 1);
    CHECK_EQ(krun_has_feature(KRUN_FEATURE_BLK), 1);
    CHECK_EQ(krun_has_feature(KRUN_FEATURE_AWS_NITRO), 0);
    CHECK_EQ(krun_has_feature(12), -EINVAL);
    CHECK_EQ(krun_has_feature(1ULL << 40), -EINVAL);
    int32_t nested = krun_check_nested_virt();
    CHECK(nested == 0 || nested == 1);

    CHECK_EQ(krun_set_log_level(6), -EINVAL);
    CHECK_EQ(krun_init_log(0, KRUN_LOG_LEVEL_ERROR, KRUN_LOG_STYLE_NEVER, 0), -EINVAL);
    CHECK_EQ(krun_init_log(-2, KRUN_LOG_LEVEL_ERROR, KRUN_LOG_STYLE_NEVER, 0), -EINVAL);
    CHECK_EQ(krun_init_log(KRUN_LOG_TARGET_DEFAULT, 6, KRUN_LOG_STYLE_NEVER, 0), -EINVAL);
    CHECK_EQ(krun_init_log(KRUN_LOG_TARGET_DEFAULT, KRUN_LOG_LEVEL_ERROR, 3, 0), -EINVAL);
    CHECK_EQ(krun_init_log(KRUN_LOG_TARGET_DEFAULT, KRUN_LOG_LEVEL_ERROR, KRUN_LOG_STYLE_NEVER, 2), -EINVAL);
}

/* virtio-net setters: arguments checked as libkrun does; a NIC turns TSI (and its port map) off. */
static void net_args(void)
{
    uint32_t ctx = new_ctx();
    uint8_t mac[6] = { 0x02, 0, 0, 0, 0, 1 };
    uint8_t multicast[6] = { 0x01, 0, 0x5e, 0, 0, 1 };
    char tap[] = "tap0";
    char long_tap[] = "a-tap-name-longer-than-ifnamsiz";
    const char *const ports[] = { "8080:80", NULL };
    CHECK_EQ(krun_add_net_unixstream(ctx, NULL, -1, mac, 0, 0), -EINVAL);       /* neither */
    CHECK_EQ(krun_add_net_unixstream(ctx, "/tmp/p", 3, mac, 0, 0), -EINVAL);    /* both */
    CHECK_EQ(krun_add_net_unixstream(ctx, "/tmp/p", -1, NULL, 0, 0), -EINVAL);  /* no MAC */
    CHECK_EQ(krun_add_net_unixstream(ctx, "/tmp/p", -1, multicast, 0, 0), -EINVAL);
    CHECK_EQ(krun_add_net_unixstream(ctx, "/tmp/p", -1, mac, 1u << 20, 0), -EINVAL);
    CHECK_EQ(krun_add_net_unixstream(ctx, "/tmp/p", -1, mac, 0, NET_FLAG_VFKIT), -EINVAL);
    CHECK_EQ(krun_add_net_unixgram(ctx, NULL, 3, mac, 0, NET_FLAG_VFKIT), -EINVAL); /* magic needs a path */
    CHECK_EQ(krun_add_net_tap(ctx, long_tap, mac, 0, 0), -EINVAL);
    CHECK_EQ(krun_add_net_tap(ctx, tap, mac, NET_FEATURE_GUEST_TSO4, 0), -EINVAL); /* needs GUEST_CSUM */
    CHECK_EQ(krun_set_passt_fd(ctx, -1), -EINVAL);
    CHECK_EQ(krun_add_net_unixstream(ctx, "/tmp/p", -1, mac, COMPAT_NET_FEATURES, NET_FLAG_DHCP_CLIENT), 0);
    CHECK_EQ(krun_add_net_unixgram(ctx, "/tmp/g", -1, mac, 0, NET_FLAG_VFKIT), 0);
    CHECK_EQ(krun_add_net_tap(ctx, tap, mac, NET_FEATURE_GUEST_CSUM | NET_FEATURE_GUEST_TSO4, 0), 0);
    CHECK_EQ(krun_set_passt_fd(ctx, 3), -EINVAL); /* the legacy NIC is the only one */
    CHECK_EQ(krun_set_gvproxy_path(ctx, tap), -EINVAL);
    CHECK_EQ(krun_set_net_mac(ctx, mac), 0);
    CHECK_EQ(krun_set_port_map(ctx, ports), -EINVAL); /* a NIC: no TSI */
    CHECK_EQ(krun_free_ctx(ctx), 0);
    ctx = new_ctx();
    CHECK_EQ(krun_set_passt_fd(ctx, 3), 0);
    CHECK_EQ(krun_add_net_unixstream(ctx, "/tmp/p", -1, mac, 0, 0), -EINVAL);
    CHECK_EQ(krun_free_ctx(ctx), 0);
}

static void unsupported(void)
{
    uint32_t ctx = new_ctx();
    uint8_t mac[6] = { 0 };
    const char *const list[] = { NULL };
    const char *const ports[] = { "8080:80", NULL };
    const char *const dup[] = { "8080:80", "8081:80", NULL };
    CHECK_EQ(krun_set_port_map(ctx, list), 0); /* TSI: an empty map exposes nothing */
    CHECK_EQ(krun_set_port_map(ctx, ports), 0);
    CHECK_EQ(krun_set_port_map(ctx, dup), -EINVAL);
    CHECK_EQ(krun_set_snd_device(ctx, true), -ENOTSUP);
    CHECK_EQ(krun_set_tee_firmware(ctx, KRUN_TEE_FW_TDSHIM, "/x"), -ENOTSUP);
    CHECK_EQ(krun_display_set_edid_name(ctx, 0, "x"), -ENOTSUP);
    CHECK_EQ(krun_add_vfio_device(ctx, 3, 1, 0), -ENOTSUP);
    CHECK_EQ(krun_add_vsock_port(ctx, 1, "/tmp/s"), 0); /* vsock ports are built */
    CHECK_EQ(krun_add_vsock_port2(ctx, 1, "/tmp/s", false), -EEXIST);
    CHECK_EQ(krun_add_vsock_port2(ctx, 620, "/tmp/s", false), -EINVAL); /* TSI's port */
    CHECK_EQ(krun_add_vsock(ctx, 0), -EEXIST); /* the implicit vsock is there */
    CHECK_EQ(krun_set_gpu_options(ctx, 0), -ENOTSUP);
    CHECK_EQ(krun_set_gpu_options2(ctx, 0, 0), -ENOTSUP);
    CHECK_EQ(krun_add_display(ctx, 1, 1), -ENOTSUP);
    CHECK_EQ(krun_display_set_edid(ctx, 0, mac, 6), -ENOTSUP);
    CHECK_EQ(krun_display_set_dpi(ctx, 0, 1), -ENOTSUP);
    CHECK_EQ(krun_display_set_physical_size(ctx, 0, 1, 1), -ENOTSUP);
    CHECK_EQ(krun_display_set_refresh_rate(ctx, 0, 1), -ENOTSUP);
    CHECK_EQ(krun_set_display_backend(ctx, mac, 6), -ENOTSUP);
    CHECK_EQ(krun_add_input_device(ctx, mac, 6, mac, 6), -ENOTSUP);
    CHECK_EQ(krun_add_input_device_fd(ctx, 0), -ENOTSUP);
    CHECK_EQ(krun_add_vhost_user_device(ctx, KRUN_VIRTIO_DEVICE_RNG, "/tmp/s", NULL, 0, NULL), -ENOTSUP);
    CHECK_EQ(krun_set_tee_config_file(ctx, "/tmp/t.json"), -ENOTSUP);
    CHECK_EQ(krun_set_firmware(ctx, "/tmp/fw"), -ENOTSUP);
    CHECK_EQ(krun_set_smbios_oem_strings(ctx, list), 0); /* no string: honoured */
    const char *const oem[] = { "oem", NULL };
    CHECK_EQ(krun_set_smbios_oem_strings(ctx, oem), -ENOTSUP);
    CHECK_EQ(krun_add_serial_console_default(ctx, 0, 1), -ENOTSUP);
    CHECK_EQ(krun_add_virtio_console_multiport(ctx), -ENOTSUP);
    CHECK_EQ(krun_add_console_port_tty(ctx, 0, "t", 0), -ENOTSUP);
    CHECK_EQ(krun_add_console_port_inout(ctx, 0, "p", 0, 1), -ENOTSUP);
    CHECK_EQ(krun_free_ctx(ctx), 0);
}

/* Drains the log pipe into buf (non-blocking); returns the length. */
static size_t drain(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    ssize_t n;
    while (len + 1 < cap && (n = read(fd, buf + len, cap - 1 - len)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    return len;
}

/* Each rejection writes one line saying why; a successful sequence writes nothing. */
static void log_lines(void)
{
    int fds[2];
    char buf[4096];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
        perror("pipe2");
        exit(2);
    }
    CHECK_EQ(krun_init_log(fds[1], KRUN_LOG_LEVEL_ERROR, KRUN_LOG_STYLE_NEVER, KRUN_LOG_OPTION_NO_ENV), 0);
    uint32_t ctx = new_ctx();
    CHECK_EQ(krun_set_vm_config(ctx, 0, 512), -EINVAL);
    CHECK_EQ(krun_set_root(ctx, path_in("missing")), -ENOENT);
    CHECK_EQ(krun_free_ctx(999999), -ENOENT);
    CHECK_EQ(krun_set_gpu_options(ctx, 0), -ENOTSUP);
    drain(fds[0], buf, sizeof buf);
    CHECK(strstr(buf, "[zkrun] krun_set_vm_config: num_vcpus 0 is out of range 1..") != NULL);
    CHECK(strstr(buf, "[zkrun] krun_set_root: root directory \"") != NULL && strstr(buf, "missing\" does not exist") != NULL);
    CHECK(strstr(buf, "[zkrun] krun_free_ctx: context 999999 does not exist\n") != NULL);
    CHECK(strstr(buf, "[zkrun] krun_set_gpu_options: not supported by zkrun") != NULL);
    /* The last reason is the caller's too, whether logged or not. */
    char why[512];
    int32_t n = krun_last_error(why, sizeof why);
    CHECK(n > 0 && (size_t)n == strlen(why));
    CHECK(strncmp(why, "krun_set_gpu_options: not supported by zkrun", 44) == 0);
    CHECK_EQ(krun_last_error(why, 8), n); /* cut as snprintf, full length returned */
    CHECK_EQ(strcmp(why, "krun_se"), 0);
    int lines = 0;
    for (char *p = buf; *p; p++)
        lines += *p == '\n';
    CHECK_EQ(lines, 4);
    if (failed)
        printf("log was:\n%s", buf);

    const char *const env[] = { "A=1", NULL };
    CHECK_EQ(krun_set_vm_config(ctx, 1, 256), 0);
    CHECK_EQ(krun_set_root(ctx, scratch), 0);
    CHECK_EQ(krun_set_exec(ctx, "/bin/true", NULL, env), 0);
    CHECK_EQ(krun_set_workdir(ctx, "/"), 0);
    CHECK_EQ(krun_free_ctx(ctx), 0);
    CHECK_EQ(drain(fds[0], buf, sizeof buf), 0);

    /* Level off: even rejections are silent. */
    CHECK_EQ(krun_set_log_level(KRUN_LOG_LEVEL_OFF), 0);
    CHECK_EQ(krun_free_ctx(999998), -ENOENT);
    CHECK_EQ(drain(fds[0], buf, sizeof buf), 0);
    CHECK(krun_last_error(why, sizeof why) > 0);
    CHECK_EQ(strcmp(why, "krun_free_ctx: context 999998 does not exist"), 0);
    CHECK_EQ(krun_init_log(KRUN_LOG_TARGET_DEFAULT, KRUN_LOG_LEVEL_ERROR, KRUN_LOG_STYLE_NEVER, KRUN_LOG_OPTION_NO_ENV), 0);
    close(fds[0]);
    close(fds[1]);
}

/* Disks: every bad image is -errno with a reason, checked when the call is made. */
static void disks(void)
{
    uint32_t ctx = new_ctx();
    char img[4200], why[512];
    snprintf(img, sizeof img, "%s/disk.img", scratch);
    int fd = open(img, O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0 && ftruncate(fd, 1 << 20) == 0);
    close(fd);
    CHECK_EQ(krun_set_root_disk_remount(ctx, "/dev/vda", NULL, NULL), -EINVAL); /* no disk yet */
    CHECK_EQ(krun_set_root_disk(ctx, "/dev/null"), -EINVAL); /* not a regular file or block device */
    krun_last_error(why, sizeof why);
    CHECK(strstr(why, "is not a raw disk image") != NULL);
    CHECK_EQ(krun_add_disk(ctx, "d", path_in("missing.img"), false), -ENOENT);
    krun_last_error(why, sizeof why);
    CHECK(strstr(why, "does not exist") != NULL);
    CHECK_EQ(krun_add_disk(ctx, "d", scratch, false), -EISDIR);
    CHECK_EQ(krun_add_disk(ctx, "d", scratch, true), -EISDIR);
    CHECK_EQ(krun_add_disk2(ctx, "d", img, KRUN_DISK_FORMAT_VMDK, true), -ENOTSUP);
    krun_last_error(why, sizeof why);
    CHECK(strstr(why, "VMDK images are not supported") != NULL);
    CHECK_EQ(krun_add_disk2(ctx, "d", img, KRUN_DISK_FORMAT_QCOW2, false), -EINVAL); /* raw bytes, writable */
    CHECK_EQ(krun_add_disk2(ctx, "d", img, KRUN_DISK_FORMAT_QCOW2, true), -EINVAL); /* raw bytes, no qcow2 header */
    CHECK_EQ(krun_add_disk2(ctx, "d", img, 3, true), -EINVAL);
    CHECK_EQ(krun_add_disk3(ctx, "d", img, KRUN_DISK_FORMAT_RAW, true, false, 3), -EINVAL);
    CHECK_EQ(krun_add_disk(ctx, NULL, img, true), -EINVAL);
    CHECK_EQ(krun_add_disk(ctx, "d", NULL, true), -EINVAL);
    CHECK_EQ(krun_add_disk3(ctx, "d", img, KRUN_DISK_FORMAT_RAW, false, false, KRUN_SYNC_NONE), 0);
    CHECK_EQ(krun_add_disk(ctx, "d", img, true), -EEXIST);
    CHECK_EQ(krun_add_disk(ctx, "e", img, true), -EBUSY); /* the same image twice */
    CHECK_EQ(krun_set_data_disk(ctx, img), -EINVAL);      /* the deprecated setters do not mix */
    CHECK_EQ(krun_set_root_disk_remount(ctx, "/dev/vda", "ext4", "a b"), -EINVAL);
    CHECK_EQ(krun_set_root_disk_remount(ctx, "/dev/vda", "ext4", NULL), 0);
    CHECK_EQ(krun_set_root(ctx, scratch), -EEXIST); /* the root is the disk's */
    CHECK_EQ(krun_free_ctx(ctx), 0);
}

/* krun_setgid/krun_setuid take effect at start, for the whole process (in a child here). As
 * root: the child becomes nobody, so /dev/kvm (root-only here) is out of reach afterwards. */
static void ids_switch_at_start(void)
{
    if (getuid() != 0) {
        printf("note: not root, krun_setuid/krun_setgid switching not exercised\n");
        return;
    }
    pid_t pid = fork();
    if (pid == 0) {
        krun_set_log_level(KRUN_LOG_LEVEL_OFF);
        int32_t id = krun_create_ctx();
        uint32_t ctx = (uint32_t)id;
        int bad = id < 0;
        bad |= krun_setgid(ctx, 65534) != 0 || krun_setuid(ctx, 65534) != 0;
        bad |= getuid() != 0; /* recorded only */
        int32_t ret = krun_start(ctx);
        bad |= getuid() != 65534 || getgid() != 65534; /* applied at start */
        bad |= ret == 0;                               /* and no VM for nobody here */
        if (bad)
            printf("FAIL setuid child: start=%d uid=%d gid=%d\n", ret, (int)getuid(), (int)getgid());
        _exit(bad);
    }
    int status = -1;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s SCRATCH_DIR\n", argv[0]);
        return 2;
    }
    snprintf(scratch, sizeof scratch, "%s", argv[1]);
    /* Rejections are expected here: keep their lines out of the output (log_lines reads them). */
    krun_set_log_level(KRUN_LOG_LEVEL_OFF);
    ids_and_unknown_contexts();
    vm_config();
    strings();
    filesystems();
    kernels();
    consoles_and_queries();
    net_args();
    unsupported();
    disks();
    log_lines();
    ids_switch_at_start();
    return summary();
}
