// density: the density bench's client (tests/bench/density.bench.sh): N VMs of MEM_MIB each,
// started as fast as the library allows, each running a workload that marks itself ready and
// then sleeps; when all N are ready it reports the start rate and the memory they hold, then
// ends them all. It dlopens the library by path (zkrun's libkrun.so.1 or upstream libkrun's
// libkrun.so), configures every VM the same way (1 vCPU, MEM_MIB, virtio-fs root ROOT, the
// implicit vsock off) and runs them in one of two ways:
//   one:  every VM in this one process: krun_create_ctx + krun_start (zkrun's non-blocking start)
//         N times; the memory is this process's.
//   fork: one process per VM, each krun_start_enter (libkrun's only way: upstream has no
//         krun_start); the memory is the sum over the N processes.
// Ready: the guest's workload writes ROOT/tmp/ready.<i> (through virtio-fs) before it sleeps.
// Each VM process's console and the library's log (level 3, info) go to
// $DENSITY_CONSOLE_DIR/vm.<i>.out when that is set (fork).
// Output, one line (after "ended_vm=<i>" when a VM process ended early): vms=N
//   start_s=<first create to the last ready> first_ready_s=<...>
//   rss_kb=<sum of VmRSS> anon_kb=<sum of RssAnon> (from /proc/PID/status, while all N run;
//   a sum of VmRSS counts shared file pages once per process, RssAnon does not hold them).
// usage: density LIB N MEM_MIB ROOT one|fork
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef int32_t (*create_fn)(void);
typedef int32_t (*vm_config_fn)(uint32_t, uint8_t, uint32_t);
typedef int32_t (*root_fn)(uint32_t, const char *);
typedef int32_t (*exec_fn)(uint32_t, const char *, const char *const *, const char *const *);
typedef int32_t (*ctx_fn)(uint32_t);

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

// VmRSS and RssAnon (kB) of one process from /proc/PID/status (smaps_rollup's Pss needs
// CONFIG_PROC_PAGE_MONITOR, which our test-host kernel lacks). RssAnon is what the process holds
// alone (guest RAM it touched, heaps); the rest of VmRSS is mostly file pages shared with others
// (libkrunfw's kernel in the page cache). Adds nothing when the process is gone.
static void mem_of(pid_t pid, long *rss, long *anon) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f) return;
  long v;
  while (fgets(line, sizeof line, f)) {
    if (sscanf(line, "VmRSS: %ld kB", &v) == 1) *rss += v;
    else if (sscanf(line, "RssAnon: %ld kB", &v) == 1) *anon += v;
  }
  fclose(f);
}

static void *lib;
static const char *root;
static int mem_mib;

// Configures VM `i` in a new context; returns its id or exits.
static uint32_t configure(int i) {
  create_fn create = (create_fn)dlsym(lib, "krun_create_ctx");
  vm_config_fn vm_config = (vm_config_fn)dlsym(lib, "krun_set_vm_config");
  root_fn set_root = (root_fn)dlsym(lib, "krun_set_root");
  exec_fn set_exec = (exec_fn)dlsym(lib, "krun_set_exec");
  ctx_fn no_vsock = (ctx_fn)dlsym(lib, "krun_disable_implicit_vsock");
  if (!create || !vm_config || !set_root || !set_exec) fprintf(stderr, "density: a libkrun symbol is missing\n"), exit(2);
  int32_t ctx = create(), rc;
  if (ctx < 0) fprintf(stderr, "density: krun_create_ctx: %d\n", ctx), exit(2);
  if ((rc = vm_config((uint32_t)ctx, 1, (uint32_t)mem_mib)) < 0) fprintf(stderr, "density: krun_set_vm_config: %d\n", rc), exit(2);
  if ((rc = set_root((uint32_t)ctx, root)) < 0) fprintf(stderr, "density: krun_set_root: %d\n", rc), exit(2);
  // Upstream's implicit vsock would put tsi_hijack on the command line, which our kernel lacks.
  if (no_vsock && (rc = no_vsock((uint32_t)ctx)) < 0) fprintf(stderr, "density: krun_disable_implicit_vsock: %d\n", rc), exit(2);
  char script[128];
  snprintf(script, sizeof script, "echo ok >/tmp/ready.%d && exec /bin/busybox sleep 3600", i);
  const char *const argv[] = {"sh", "-c", script, NULL};
  static const char *const envp[] = {"PATH=/bin", "HOME=/", NULL};
  if ((rc = set_exec((uint32_t)ctx, "/bin/busybox", argv, envp)) < 0) fprintf(stderr, "density: krun_set_exec: %d\n", rc), exit(2);
  return (uint32_t)ctx;
}

static int ready_count(int n) {
  int ready = 0;
  char path[4096];
  for (int i = 0; i < n; i++) {
    struct stat st;
    snprintf(path, sizeof path, "%s/tmp/ready.%d", root, i);
    if (stat(path, &st) == 0) ready++;
  }
  return ready;
}

int main(int argc, char **argv) {
  if (argc != 6) return fprintf(stderr, "usage: %s LIB N MEM_MIB ROOT one|fork\n", argv[0]), 2;
  int n = atoi(argv[2]);
  mem_mib = atoi(argv[3]);
  root = argv[4];
  int one = strcmp(argv[5], "one") == 0;
  if (n < 1 || n > 1000 || mem_mib < 16) return fprintf(stderr, "density: bad N or MEM_MIB\n"), 2;
  // Every VM holds fds (KVM, vCPU, eventfds, the root's directory): 50 VMs pass 1,024.
  struct rlimit nofile;
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0) {
    nofile.rlim_cur = nofile.rlim_max;
    setrlimit(RLIMIT_NOFILE, &nofile);
  }
  pid_t *kids = calloc((size_t)n, sizeof *kids);
  double t0 = now_s();
  if (one) {
    lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) return fprintf(stderr, "density: %s\n", dlerror()), 2;
    ctx_fn start = (ctx_fn)dlsym(lib, "krun_start");
    if (!start) return fprintf(stderr, "density: %s has no krun_start (use fork)\n", argv[1]), 2;
    for (int i = 0; i < n; i++) {
      int32_t rc = start(configure(i));
      if (rc < 0) return fprintf(stderr, "density: krun_start of VM %d: %d\n", i, rc), 2;
    }
  } else {
    for (int i = 0; i < n; i++) {
      fflush(NULL);
      pid_t pid = fork();
      if (pid < 0) return perror("fork"), 2;
      if (pid == 0) {
        // Each VM's console (its workload's output and the guest kernel's panic text, if any)
        // in a file of its own: what explains a VM that ended before it was ready.
        const char *dir = getenv("DENSITY_CONSOLE_DIR");
        if (dir) {
          char path[4096];
          snprintf(path, sizeof path, "%s/vm.%d.out", dir, i);
          int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
          if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0) perror(path), _exit(2);
          close(fd);
        }
        lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
        if (!lib) fprintf(stderr, "density: %s\n", dlerror()), _exit(2);
        ctx_fn start_enter = (ctx_fn)dlsym(lib, "krun_start_enter");
        if (!start_enter) _exit(2);
        // Level 3 (info): upstream stops a VM without a word at lower levels when its vCPU sees
        // KVM_EXIT_SHUTDOWN or HLT, then exits 0; at info its console file says which.
        ctx_fn log_level = (ctx_fn)dlsym(lib, "krun_set_log_level");
        if (log_level) log_level(3);
        int32_t rc = start_enter(configure(i));
        fprintf(stderr, "density: krun_start_enter of VM %d: %d\n", i, rc);
        _exit(2);
      }
      kids[i] = pid;
    }
  }
  double first = 0;
  int ready = 0, status = 0;
  const double timeout_s = getenv("DENSITY_TIMEOUT_S") ? atof(getenv("DENSITY_TIMEOUT_S")) : 1800;
  while ((ready = ready_count(n)) < n) {
    if (ready > 0 && first == 0) first = now_s() - t0;
    if (now_s() - t0 > timeout_s) break;
    pid_t ended;
    if (!one && (ended = waitpid(-1, &status, WNOHANG)) > 0) {
      int which = -1;
      for (int i = 0; i < n; i++)
        if (kids[i] == ended) which = i, kids[i] = 0;
      fprintf(stderr, "density: VM %d (pid %d) ended before all were ready (status 0x%x)\n", which, (int)ended, status);
      printf("ended_vm=%d\n", which);
      break;
    }
    usleep(100 * 1000);
  }
  double all = now_s() - t0;
  if (first == 0) first = all; // all were ready at the first look
  long rss = 0, anon = 0;
  if (one) mem_of(getpid(), &rss, &anon);
  else
    for (int i = 0; i < n; i++) mem_of(kids[i], &rss, &anon);
  printf("vms=%d ready=%d start_s=%.2f first_ready_s=%.2f rss_kb=%ld anon_kb=%ld\n", n, ready, all, first, rss, anon);
  fflush(stdout);
  if (!one) {
    for (int i = 0; i < n; i++)
      if (kids[i] > 0) kill(kids[i], SIGKILL);
    for (int i = 0; i < n; i++)
      if (kids[i] > 0) waitpid(kids[i], NULL, 0);
  }
  // One process: exiting ends every VM with it (zkrun's VMs are this process's threads).
  _exit(ready == n ? 0 : 1);
}
