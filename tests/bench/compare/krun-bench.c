// krun-bench: the one C client the side-by-side bench (tests/bench/compare.bench.sh) runs on
// every libkrun implementation. It dlopens the library by path (zkrun's libkrun.so.1 or upstream
// libkrun's libkrun.so), configures the same VM through libkrun's C API (vCPUs, RAM, a root
// directory, a command, the implicit vsock off) and calls krun_start_enter, which ends the
// process with the workload's status. Both libraries end it with _exit (no atexit handlers), so
// the figures come from a parent: it forks the VMM process and, when it is gone, writes one line
// to $KRUN_BENCH_OUT:
//   wall_us=<fork to exit> exits=<KVM exits, all vCPUs> maxrss_kb=<the VMM process's peak RSS>
// and exits with the child's status. KVM exits come from KVM's binary statistics
// (KVM_GET_STATS_FD, Linux 5.14+; only the VM's own process may ask): a thread in the child finds
// the VMM's vCPU fds in /proc/self/fd and opens a stats fd for each; the parent takes copies of
// those with pidfd_getfd, which keep the counters readable after the VMM is gone.
// KRUN_BENCH_STATS=FILE also writes every nonzero per-vCPU KVM counter there (exits by kind).
// usage: krun-bench LIB VCPUS MEM_MIB ROOT PROG [ARG...]
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define max_vcpus 16
static int stats_fds[max_vcpus];
static int stats_count;
static int vcpu_fds_seen[max_vcpus];
static struct timespec t_start;
static volatile int watching = 1;

// A vCPU stats fd's header and descriptor table (malloc'd; NULL if unreadable), and one
// descriptor's u64 value: what both the exits figure and KRUN_BENCH_STATS read.
static char *stats_descs(int fd, struct kvm_stats_header *h, size_t *desc_size) {
  if (pread(fd, h, sizeof *h, 0) != sizeof *h) return NULL;
  *desc_size = sizeof(struct kvm_stats_desc) + h->name_size;
  char *descs = malloc(*desc_size * h->num_desc);
  if (descs && pread(fd, descs, *desc_size * h->num_desc, h->desc_offset) != (ssize_t)(*desc_size * h->num_desc)) {
    free(descs);
    descs = NULL;
  }
  return descs;
}

static uint64_t stat_value(int fd, const struct kvm_stats_header *h, const struct kvm_stats_desc *d) {
  uint64_t value = 0;
  if (pread(fd, &value, sizeof value, h->data_offset + d->offset) != sizeof value) value = 0;
  return value;
}

static uint64_t exits_of(int fd) {
  struct kvm_stats_header h;
  size_t desc_size;
  char *descs = stats_descs(fd, &h, &desc_size);
  if (!descs) return 0;
  uint64_t value = 0;
  for (uint32_t i = 0; i < h.num_desc; i++) {
    struct kvm_stats_desc *d = (struct kvm_stats_desc *)(descs + i * desc_size);
    if (strcmp(d->name, "exits") == 0) {
      value = stat_value(fd, &h, d);
      break;
    }
  }
  free(descs);
  return value;
}

// KRUN_BENCH_STATS=FILE: every single-value counter of every vCPU's KVM statistics, one
// "vcpuN name value" line each, nonzero ones only (which exits a boot costs: io_exits,
// mmio_exits, halt_exits...).
static void dump_stats(const char *path) {
  FILE *f = fopen(path, "w");
  if (!f) return;
  for (int v = 0; v < stats_count; v++) {
    struct kvm_stats_header h;
    size_t desc_size;
    char *descs = stats_descs(stats_fds[v], &h, &desc_size);
    if (!descs) continue;
    for (uint32_t i = 0; i < h.num_desc; i++) {
      struct kvm_stats_desc *d = (struct kvm_stats_desc *)(descs + i * desc_size);
      uint64_t value = d->size == 1 ? stat_value(stats_fds[v], &h, d) : 0;
      if (value) fprintf(f, "vcpu%d %s %llu\n", v, d->name, (unsigned long long)value);
    }
    free(descs);
  }
  fclose(f);
}

static pid_t child;
static int child_pidfd = -1;

// In the child: a stats fd for each vCPU fd of this process. In the parent: copies of the
// child's stats fds.
static void scan(int in_child) {
  char fds[64];
  snprintf(fds, sizeof fds, "/proc/%d/fd", in_child ? (int)getpid() : (int)child);
  DIR *dir = opendir(fds);
  if (!dir) return;
  struct dirent *e;
  while ((e = readdir(dir)) && stats_count < max_vcpus) {
    char path[400], target[64];
    snprintf(path, sizeof path, "%s/%s", fds, e->d_name);
    ssize_t n = readlink(path, target, sizeof target - 1);
    if (n <= 0) continue;
    target[n] = 0;
    int id, fd = -1;
    if (sscanf(target, in_child ? "anon_inode:kvm-vcpu:%d" : "anon_inode:kvm-vcpu-stats:%d", &id) != 1 ||
        id < 0 || id >= max_vcpus || vcpu_fds_seen[id])
      continue;
    if (in_child && strncmp(target, "anon_inode:kvm-vcpu-stats", 25) == 0) continue;
    fd = in_child ? ioctl(atoi(e->d_name), KVM_GET_STATS_FD, 0) : (int)syscall(SYS_pidfd_getfd, child_pidfd, atoi(e->d_name), 0);
    if (fd < 0) continue;
    vcpu_fds_seen[id] = 1;
    stats_fds[stats_count++] = fd;
  }
  closedir(dir);
}

struct watch_arg { int want, in_child; };

static void *watch(void *arg) {
  struct watch_arg *a = arg;
  struct timespec nap = {0, 1000000};
  while (watching && stats_count < a->want) {
    scan(a->in_child);
    nanosleep(&nap, NULL);
  }
  return NULL;
}

// The parent: watches the child's vCPUs, waits for it, reports, exits with its status.
static int parent(int vcpus) {
  child_pidfd = (int)syscall(SYS_pidfd_open, child, 0);
  pthread_t watcher;
  static struct watch_arg arg;
  arg = (struct watch_arg){vcpus, 0};
  int watching_ok = child_pidfd >= 0 && pthread_create(&watcher, NULL, watch, &arg) == 0;
  int status = 0;
  struct rusage ru;
  memset(&ru, 0, sizeof ru);
  while (wait4(child, &status, 0, &ru) < 0) {}
  watching = 0;
  if (watching_ok) pthread_join(watcher, NULL);
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  uint64_t exits = 0;
  for (int i = 0; i < stats_count; i++) exits += exits_of(stats_fds[i]);
  const char *stats = getenv("KRUN_BENCH_STATS");
  if (stats && *stats) dump_stats(stats);
  long us = (now.tv_sec - t_start.tv_sec) * 1000000L + (now.tv_nsec - t_start.tv_nsec) / 1000;
  const char *out = getenv("KRUN_BENCH_OUT");
  FILE *f = out ? fopen(out, "w") : NULL;
  if (!f) f = stderr;
  fprintf(f, "wall_us=%ld exits=%llu maxrss_kb=%ld vcpus_seen=%d\n", us, (unsigned long long)exits,
          ru.ru_maxrss, stats_count);
  if (f != stderr) fclose(f);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

#define sym(name, ...) __VA_ARGS__ = dlsym(lib, #name)

int main(int argc, char **argv) {
  clock_gettime(CLOCK_MONOTONIC, &t_start);
  if (argc < 6) {
    fprintf(stderr, "usage: %s LIB VCPUS MEM_MIB ROOT PROG [ARG...]\n", argv[0]);
    return 2;
  }
  fflush(NULL);
  child = fork();
  if (child < 0) return perror("fork"), 2;
  if (child > 0) return parent(atoi(argv[2]));
  void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    fprintf(stderr, "krun-bench: %s\n", dlerror());
    return 2;
  }
  sym(krun_create_ctx, int32_t (*krun_create_ctx)(void));
  sym(krun_set_vm_config, int32_t (*krun_set_vm_config)(uint32_t, uint8_t, uint32_t));
  sym(krun_set_root, int32_t (*krun_set_root)(uint32_t, const char *));
  sym(krun_set_exec, int32_t (*krun_set_exec)(uint32_t, const char *, const char *const *, const char *const *));
  sym(krun_disable_implicit_vsock, int32_t (*krun_disable_implicit_vsock)(uint32_t));
  sym(krun_start_enter, int32_t (*krun_start_enter)(uint32_t));
  if (!krun_create_ctx || !krun_set_vm_config || !krun_set_root || !krun_set_exec || !krun_start_enter) {
    fprintf(stderr, "krun-bench: %s lacks a libkrun symbol\n", argv[1]);
    return 2;
  }
  int vcpus = atoi(argv[2]);
  int ctx = krun_create_ctx();
  if (ctx < 0) return fprintf(stderr, "krun_create_ctx: %d\n", ctx), 2;
  int rc;
  if ((rc = krun_set_vm_config(ctx, (uint8_t)vcpus, (uint32_t)atoi(argv[3]))) < 0)
    return fprintf(stderr, "krun_set_vm_config: %d\n", rc), 2;
  if ((rc = krun_set_root(ctx, argv[4])) < 0) return fprintf(stderr, "krun_set_root: %d\n", rc), 2;
  // Both sides without the implicit vsock: upstream's would append tsi_hijack, whose protocol
  // our kernel does not speak; nothing here needs networking.
  if (krun_disable_implicit_vsock && (rc = krun_disable_implicit_vsock(ctx)) < 0)
    return fprintf(stderr, "krun_disable_implicit_vsock: %d\n", rc), 2;
  static const char *const envp[] = {"PATH=/bin:/sbin:/usr/bin:/usr/sbin", "HOME=/", NULL};
  if ((rc = krun_set_exec(ctx, argv[5], (const char *const *)&argv[6], envp)) < 0)
    return fprintf(stderr, "krun_set_exec: %d\n", rc), 2;
  // KRUN_BENCH_CMDLINE: extra kernel arguments (space-separated), where the library has
  // krun_append_kernel_cmdline (zkrun's extension), e.g. initcall_debug for the boot path.
  const char *extra = getenv("KRUN_BENCH_CMDLINE");
  sym(krun_append_kernel_cmdline, int32_t (*append)(uint32_t, const char *));
  if (extra && *extra) {
    if (!append) return fprintf(stderr, "krun-bench: %s lacks krun_append_kernel_cmdline\n", argv[1]), 2;
    char args[1024];
    snprintf(args, sizeof args, "%s", extra);
    for (char *save, *a = strtok_r(args, " ", &save); a; a = strtok_r(NULL, " ", &save))
      if ((rc = append(ctx, a)) < 0) return fprintf(stderr, "krun_append_kernel_cmdline %s: %d\n", a, rc), 2;
  }
  pthread_t watcher;
  static struct watch_arg arg;
  arg = (struct watch_arg){vcpus, 1};
  if (pthread_create(&watcher, NULL, watch, &arg) != 0) return 2;
  rc = krun_start_enter(ctx);
  fprintf(stderr, "krun_start_enter: %d\n", rc);
  return 2;
}
