/*
 * The configuration call sequences of real libkrun clients (libkrun.md §7), up to but not
 * including krun_start_enter: crun's krun handler (through dlopen/dlsym, as crun does) and
 * krunvm's start command. Each call must give what the client expects.
 * Usage: clients ROOTFS_DIR KERNEL_FILE
 */
#include <dlfcn.h>
#include <errno.h>
#include <libkrun.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#define SYM(lib, name) ((__typeof__(&name))dlsym(lib, #name))

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
    CHECK_EQ(set_log_level(KRUN_LOG_LEVEL_OFF), 0);
    CHECK_EQ(add_virtiofs2(ctx, KRUN_FS_ROOT_TAG, rootfs, 512ULL << 20), 0);
    CHECK_EQ(set_vm_config(ctx, 2, 1024), 0);
    int32_t nested = check_nested_virt();
    CHECK(nested == 0 || nested == 1);
    CHECK_EQ(set_nested_virt(ctx, true), 0);
    CHECK_EQ(set_gpu_options(ctx, 0), -ENOTSUP); /* crun treats this as "no GPU support" */
    uint8_t mac[6] = { 0x5a, 0x94, 0xef, 0xe4, 0x0c, 0xee };
    CHECK_EQ(add_net_unixstream(ctx, NULL, 3, mac, COMPAT_NET_FEATURES, NET_FLAG_DHCP_CLIENT), -ENOTSUP);
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
    CHECK_EQ(krun_set_port_map(ctx, ports), -ENOTSUP); /* no TSI yet: krunvm stops here */
    CHECK_EQ(krun_set_workdir(ctx, "/root"), 0);
    CHECK_EQ(krun_set_exec(ctx, "/bin/sh", args, env), 0);
    CHECK_EQ(krun_set_env(ctx, env), 0);
    CHECK_EQ(krun_free_ctx(ctx), 0);
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    crun(argv[1], argv[2]);
    krun_set_log_level(KRUN_LOG_LEVEL_OFF);
    krunvm(argv[1]);
    return summary();
}
