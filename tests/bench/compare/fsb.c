// fsb: the guest side of the side-by-side bench (tests/bench/compare.bench.sh), built static on
// the machine and copied into each guest root. Runs the workloads in order, timing each with
// CLOCK_MONOTONIC inside the guest, and appends "name value unit" lines to RESULTS (a file in
// the shared root the host reads afterwards, so the console carries nothing but the console
// workload). Workloads: create/stat/`ls -l`/rm of N files, untar of a tree (busybox tar), a
// `make -j2` when a compiler is there, 256 MiB sequential write (+fsync) and read, 4 KiB random
// reads, console output (16 MiB to stdout).
// usage: fsb RESULTS FILES TAR DATA_MIB CONSOLE_MIB   (0 skips a workload; TAR "-" skips untar)
// FSB_RANDOM in the environment: how many random reads (1,024);
// FSB_MARK: a stat of "/.fsb-mark-<step>" (a missing name: one LOOKUP the server logs) before each
// step, so tests/bench/fs-mix.sh can split the server's request log into the steps' own mixes.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static FILE *results;
static char buf[1 << 20];

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void put(const char *name, double value, const char *unit) {
  fprintf(results, "%s %.1f %s\n", name, value, unit);
  fflush(results);
}

static void die(const char *what) {
  fprintf(results, "error %s: %s\n", what, strerror(errno));
  fclose(results);
  exit(1);
}

static int run(char *const argv[]) {
  pid_t pid = fork();
  if (pid == 0) {
    int null = open("/dev/null", O_WRONLY);
    if (null >= 0) dup2(null, 1);
    execv(argv[0], argv);
    _exit(127);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) < 0) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static void mark(const char *step) {
  static int on = -1;
  if (on < 0) on = getenv("FSB_MARK") != NULL;
  if (!on) return;
  char path[96];
  struct stat st;
  snprintf(path, sizeof path, "/.fsb-mark-%s", step);
  if (stat(path, &st) == 0) die("marker exists");
}

static void drop_caches(void) {
  sync();
  int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
  if (fd >= 0) {
    if (write(fd, "3", 1) < 0) {}
    close(fd);
  }
}

static void metadata(int n) {
  char name[64];
  if (mkdir("/fsb-m", 0755) < 0 && errno != EEXIST) die("mkdir");
  mark("create");
  double t0 = now_ms();
  for (int i = 0; i < n; i++) {
    snprintf(name, sizeof name, "/fsb-m/file-%d", i);
    int fd = open(name, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (fd < 0 || write(fd, "x\n", 2) != 2) die("create");
    close(fd);
  }
  double t1 = now_ms();
  mark("stat");
  t1 = now_ms();
  struct stat st;
  for (int i = 0; i < n; i++) {
    snprintf(name, sizeof name, "/fsb-m/file-%d", i);
    if (stat(name, &st) < 0) die("stat");
  }
  double t2 = now_ms();
  mark("drop-ls");
  drop_caches(); // `ls -l` on a cold dentry cache: READDIR(PLUS) and LOOKUPs reach the server
  mark("ls-l");
  double t3 = now_ms();
  char *ls[] = {"/bin/ls", "-l", "/fsb-m", NULL};
  if (run(ls) != 0) die("ls -l");
  double t4 = now_ms();
  mark("unlink");
  t4 = now_ms();
  for (int i = 0; i < n; i++) {
    snprintf(name, sizeof name, "/fsb-m/file-%d", i);
    if (unlink(name) < 0) die("unlink");
  }
  rmdir("/fsb-m");
  double t5 = now_ms();
  char label[64];
  snprintf(label, sizeof label, "create_%d_files", n), put(label, t1 - t0, "ms");
  snprintf(label, sizeof label, "stat_%d_files", n), put(label, t2 - t1, "ms");
  snprintf(label, sizeof label, "ls_l_%d_files", n), put(label, t4 - t3, "ms");
  snprintf(label, sizeof label, "rm_%d_files", n), put(label, t5 - t4, "ms");
}

static void untar(const char *tar) {
  if (mkdir("/fsb-u", 0755) < 0 && errno != EEXIST) die("mkdir");
  mark("untar");
  double t0 = now_ms();
  char *x[] = {"/bin/tar", "-xf", (char *)tar, "-C", "/fsb-u", NULL};
  if (run(x) != 0) die("tar");
  double t1 = now_ms();
  mark("rm-rf");
  t1 = now_ms();
  char *rm[] = {"/bin/rm", "-rf", "/fsb-u", NULL};
  if (run(rm) != 0) die("rm -rf");
  double t2 = now_ms();
  put("untar_tree", t1 - t0, "ms");
  put("rm_rf_tree", t2 - t1, "ms");
}

static void make_project(void) {
  if (access("/usr/bin/cc", X_OK) != 0 && access("/usr/bin/gcc", X_OK) != 0) {
    fprintf(results, "note make_j2: no compiler in the guest root\n");
    return;
  }
  double t0 = now_ms();
  char *mk[] = {"/usr/bin/make", "-s", "-j2", "-C", "/fsb-c", NULL};
  if (run(mk) != 0) die("make");
  put("make_j2", now_ms() - t0, "ms");
}

static void data(int mib) {
  mark("write-fsync");
  int fd = open("/fsb-data", O_CREAT | O_WRONLY | O_TRUNC, 0644);
  if (fd < 0) die("open data");
  memset(buf, 0x5a, sizeof buf);
  double t0 = now_ms();
  for (int i = 0; i < mib; i++)
    if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf) die("write");
  if (fsync(fd) < 0) die("fsync");
  close(fd);
  double t1 = now_ms();
  mark("drop-read");
  drop_caches();
  mark("cold-read");
  fd = open("/fsb-data", O_RDONLY);
  if (fd < 0) die("open data");
  double t2 = now_ms();
  ssize_t n;
  long long total = 0;
  while ((n = read(fd, buf, sizeof buf)) > 0) total += n;
  double t3 = now_ms();
  if (total != (long long)mib << 20) die("short read");
  mark("drop-random");
  drop_caches();
  mark("random-read");
  const int reads = getenv("FSB_RANDOM") ? atoi(getenv("FSB_RANDOM")) : 1024;
  unsigned seed = 12345;
  long pages = ((long)mib << 20) / 4096;
  double t4 = now_ms();
  for (int i = 0; i < reads; i++) {
    seed = seed * 1103515245u + 12345u;
    if (pread(fd, buf, 4096, ((seed >> 4) % pages) * 4096L) != 4096) die("pread");
  }
  double t5 = now_ms();
  mark("data-end");
  close(fd);
  unlink("/fsb-data");
  char label[64];
  snprintf(label, sizeof label, "seq_write_%d_MiB", mib), put(label, t1 - t0, "ms");
  snprintf(label, sizeof label, "seq_read_%d_MiB", mib), put(label, t3 - t2, "ms");
  snprintf(label, sizeof label, "rand_read_4KiB_x%d", reads), put(label, t5 - t4, "ms");
}

static void console(int mib) {
  memset(buf, 'z', 65536);
  double t0 = now_ms();
  for (int i = 0; i < mib * 16; i++)
    for (ssize_t off = 0; off < 65536;) {
      ssize_t n = write(1, buf + off, 65536 - off);
      if (n <= 0) die("console write");
      off += n;
    }
  double t1 = now_ms();
  char label[64];
  snprintf(label, sizeof label, "console_out_%d_MiB", mib), put(label, t1 - t0, "ms");
}

int main(int argc, char **argv) {
  if (argc != 6) return 2;
  results = fopen(argv[1], "a");
  if (!results) return 3;
  // Outside libkrun (QEMU with init=) nobody mounted /proc; drop_caches needs it.
  if (access("/proc/sys/vm", F_OK) != 0) mount("proc", "/proc", "proc", 0, NULL);
  int files = atoi(argv[2]), data_mib = atoi(argv[4]), console_mib = atoi(argv[5]);
  if (files > 0) metadata(files);
  if (strcmp(argv[3], "-") != 0) untar(argv[3]);
  mark("make");
  make_project();
  if (data_mib > 0) data(data_mib);
  if (console_mib > 0) console(console_mib);
  mark("end");
  fprintf(results, "done\n");
  fclose(results);
  sync();
  return 0;
}
