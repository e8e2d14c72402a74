#include <libkrun.h>
int main() {
    char *const envp[] = { 0 };
    int ctx_id = krun_create_ctx();
    krun_set_vm_config(ctx_id, 1, 512);
    krun_set_root(ctx_id, "rootfs");
    krun_set_exec(ctx_id, "/bin/sh", 0, &envp[0]);
    krun_start_enter(ctx_id);
}
