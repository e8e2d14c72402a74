// kvm-smoke: the smallest honest check that a /dev/kvm runs guests, with numbers.
//
// Two hand-made guests, each in its own VM with one vCPU, checked by what the host sees:
//   real mode: port-I/O OUT of 8 and 16 bits, an IN whose value the host supplies and the guest
//              echoes back incremented, a store to guest memory, HLT;
//   long mode: identity-mapped 2 MiB page, 64-bit GDT, KVM_SET_CPUID2 before the long-mode sregs
//              (KVM on AMD refuses them otherwise), a 32-bit OUT, a compute loop whose 64-bit
//              result (sum 1..N) comes out in two OUTs, then M one-byte OUTs (timed: the exit
//              round trip), HLT, and the final registers.
// Usage: kvm-smoke [--loop N] [--exits M] [--bench] [--timeout SECS]
// Prints "ok ..."/"FAIL ..." lines and "N passed, N failed"; with --bench also
// "bench NAME VALUE UNIT" lines. Exit status 0 only if every check passed.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MEM_SIZE (4u << 20) // guest RAM: 4 MiB at GPA 0
#define PORT_A 0x10
#define PORT_B 0x11
#define MAX_CPUID_ENTRIES 256

static int passed, failed;

static void check(int ok, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    printf(ok ? "ok   " : "FAIL ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
    if (ok) passed++; else failed++;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_alarm(int sig) {
    (void)sig;
    static const char msg[] = "FAIL watchdog: a guest ran past --timeout\n";
    (void)!write(1, msg, sizeof msg - 1);
    _exit(2);
}

struct vm {
    int fd, vcpu;
    uint8_t *mem;
    struct kvm_run *run;
};

static int kvm_fd;

// Creates a VM with MEM_SIZE of RAM at GPA 0 and one vCPU. Returns 0 or -1 (after a FAIL line).
static int vm_create(struct vm *vm, const char *what) {
    memset(vm, 0, sizeof *vm);
    vm->fd = ioctl(kvm_fd, KVM_CREATE_VM, 0);
    if (vm->fd < 0) { check(0, "%s: KVM_CREATE_VM: %s", what, strerror(errno)); return -1; }
    // Intel needs a TSS region below 4 GiB for real mode; harmless elsewhere.
    if (ioctl(vm->fd, KVM_SET_TSS_ADDR, 0xfffbd000ul) < 0) {
        check(0, "%s: KVM_SET_TSS_ADDR: %s", what, strerror(errno));
        return -1;
    }
    vm->mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (vm->mem == MAP_FAILED) { check(0, "%s: mmap guest RAM: %s", what, strerror(errno)); return -1; }
    struct kvm_userspace_memory_region region = {
        .slot = 0, .guest_phys_addr = 0, .memory_size = MEM_SIZE, .userspace_addr = (uintptr_t)vm->mem,
    };
    if (ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
        check(0, "%s: KVM_SET_USER_MEMORY_REGION: %s", what, strerror(errno));
        return -1;
    }
    vm->vcpu = ioctl(vm->fd, KVM_CREATE_VCPU, 0);
    if (vm->vcpu < 0) { check(0, "%s: KVM_CREATE_VCPU: %s", what, strerror(errno)); return -1; }
    int run_size = ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (run_size < (int)sizeof(struct kvm_run)) { check(0, "%s: KVM_GET_VCPU_MMAP_SIZE = %d", what, run_size); return -1; }
    vm->run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vm->vcpu, 0);
    if (vm->run == MAP_FAILED) { check(0, "%s: mmap kvm_run: %s", what, strerror(errno)); return -1; }
    return 0;
}

static void vm_destroy(struct vm *vm) {
    if (vm->run && vm->run != MAP_FAILED) munmap(vm->run, (size_t)ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0));
    if (vm->mem && vm->mem != MAP_FAILED) munmap(vm->mem, MEM_SIZE);
    if (vm->vcpu > 0) close(vm->vcpu);
    if (vm->fd > 0) close(vm->fd);
}

static const char *exit_name(uint32_t r) {
    switch (r) {
    case KVM_EXIT_IO: return "IO";
    case KVM_EXIT_HLT: return "HLT";
    case KVM_EXIT_MMIO: return "MMIO";
    case KVM_EXIT_SHUTDOWN: return "SHUTDOWN (triple fault)";
    case KVM_EXIT_FAIL_ENTRY: return "FAIL_ENTRY";
    case KVM_EXIT_INTERNAL_ERROR: return "INTERNAL_ERROR";
    default: return "other";
    }
}

// Runs the vCPU to its next exit. Returns the exit reason, or -1 on an ioctl error.
static int vm_run(struct vm *vm) {
    for (;;) {
        if (ioctl(vm->vcpu, KVM_RUN, 0) == 0) break;
        if (errno == EINTR || errno == EAGAIN) continue;
        return -1;
    }
    uint32_t r = vm->run->exit_reason;
    if (r == KVM_EXIT_INTERNAL_ERROR)
        fprintf(stderr, "kvm-smoke: internal error, suberror %u\n", vm->run->internal.suberror);
    if (r == KVM_EXIT_FAIL_ENTRY)
        fprintf(stderr, "kvm-smoke: entry failed, hardware reason 0x%llx\n",
                (unsigned long long)vm->run->fail_entry.hardware_entry_failure_reason);
    return (int)r;
}

// Expects an IO exit with the given direction, port and size; returns its data pointer or NULL.
static uint8_t *expect_io(struct vm *vm, const char *what, int dir, uint16_t port, int size) {
    int r = vm_run(vm);
    if (r < 0) { check(0, "%s: KVM_RUN: %s", what, strerror(errno)); return NULL; }
    struct kvm_run *run = vm->run;
    int ok = r == KVM_EXIT_IO && run->io.direction == dir && run->io.port == port &&
             run->io.size == size && run->io.count == 1;
    if (!ok) {
        if (r == KVM_EXIT_IO)
            check(0, "%s: IO exit %s port 0x%x size %d count %u, wanted %s port 0x%x size %d", what,
                  run->io.direction == KVM_EXIT_IO_OUT ? "out" : "in", run->io.port, run->io.size,
                  run->io.count, dir == KVM_EXIT_IO_OUT ? "out" : "in", port, size);
        else
            check(0, "%s: exit %s (%d), wanted an IO exit", what, exit_name((uint32_t)r), r);
        return NULL;
    }
    return (uint8_t *)run + run->io.data_offset;
}

static int expect_hlt(struct vm *vm, const char *what) {
    int r = vm_run(vm);
    if (r < 0) { check(0, "%s: KVM_RUN: %s", what, strerror(errno)); return -1; }
    if (r != KVM_EXIT_HLT) { check(0, "%s: exit %s (%d), wanted HLT", what, exit_name((uint32_t)r), r); return -1; }
    return 0;
}

static void test_real_mode(void) {
    struct vm vm;
    if (vm_create(&vm, "real mode") < 0) { vm_destroy(&vm); return; }
    static const uint8_t code[] = {
        0xba, PORT_A, 0x00, // mov dx, PORT_A
        0xb0, 0x5a,         // mov al, 0x5a
        0xee,               // out dx, al
        0xec,               // in al, dx
        0x04, 0x01,         // add al, 1
        0xee,               // out dx, al
        0xb8, 0x34, 0x12,   // mov ax, 0x1234
        0xef,               // out dx, ax
        0xa3, 0x00, 0x05,   // mov [0x500], ax
        0xf4,               // hlt
    };
    memcpy(vm.mem + 0x1000, code, sizeof code);
    struct kvm_sregs sregs;
    struct kvm_regs regs = {.rip = 0x1000, .rflags = 0x2};
    int ok = ioctl(vm.vcpu, KVM_GET_SREGS, &sregs) == 0;
    sregs.cs.base = 0, sregs.cs.selector = 0;
    sregs.ds.base = 0, sregs.ds.selector = 0;
    ok = ok && ioctl(vm.vcpu, KVM_SET_SREGS, &sregs) == 0 && ioctl(vm.vcpu, KVM_SET_REGS, &regs) == 0;
    if (!ok) { check(0, "real mode: set registers: %s", strerror(errno)); vm_destroy(&vm); return; }

    uint8_t *d;
    if (!(d = expect_io(&vm, "real mode: out al", KVM_EXIT_IO_OUT, PORT_A, 1))) goto out;
    check(d[0] == 0x5a, "real mode: 8-bit OUT to port 0x%x carried 0x%02x (want 0x5a)", PORT_A, d[0]);
    if (!(d = expect_io(&vm, "real mode: in al", KVM_EXIT_IO_IN, PORT_A, 1))) goto out;
    d[0] = 0x21; // the guest reads this, adds 1 and writes it back
    if (!(d = expect_io(&vm, "real mode: echo", KVM_EXIT_IO_OUT, PORT_A, 1))) goto out;
    check(d[0] == 0x22, "real mode: IN then OUT echoed 0x21+1 = 0x%02x", d[0]);
    if (!(d = expect_io(&vm, "real mode: out ax", KVM_EXIT_IO_OUT, PORT_A, 2))) goto out;
    uint16_t w;
    memcpy(&w, d, 2);
    check(w == 0x1234, "real mode: 16-bit OUT carried 0x%04x (want 0x1234)", w);
    if (expect_hlt(&vm, "real mode: hlt") < 0) goto out;
    check(vm.mem[0x500] == 0x34 && vm.mem[0x501] == 0x12, "real mode: guest store reached RAM (%02x %02x)",
          vm.mem[0x500], vm.mem[0x501]);
    ok = ioctl(vm.vcpu, KVM_GET_REGS, &regs) == 0;
    check(ok && regs.rip == 0x1000 + sizeof code, "real mode: HLT exit at rip 0x%llx (want 0x%zx)",
          (unsigned long long)regs.rip, 0x1000 + sizeof code);
out:
    vm_destroy(&vm);
}

// Guest-physical layout of the long-mode guest.
#define LM_GDT 0x1000
#define LM_PML4 0x2000
#define LM_PDPT 0x3000
#define LM_PD 0x4000
#define LM_CODE 0x8000
#define LM_STACK 0x7000

static int set_cpuid(struct vm *vm) {
    size_t sz = sizeof(struct kvm_cpuid2) + MAX_CPUID_ENTRIES * sizeof(struct kvm_cpuid_entry2);
    struct kvm_cpuid2 *cpuid = calloc(1, sz);
    if (!cpuid) return -1;
    cpuid->nent = MAX_CPUID_ENTRIES;
    int rc = ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid);
    if (rc == 0) rc = ioctl(vm->vcpu, KVM_SET_CPUID2, cpuid);
    int nent = (int)cpuid->nent;
    free(cpuid);
    return rc < 0 ? -1 : nent;
}

static void set_seg(struct kvm_segment *s, uint16_t sel, uint8_t type, int code) {
    memset(s, 0, sizeof *s);
    s->base = 0, s->limit = 0xffffffff, s->selector = sel, s->type = type;
    s->present = 1, s->dpl = 0, s->s = 1, s->g = 1;
    s->l = code, s->db = !code;
}

static void test_long_mode(uint64_t loop_n, uint64_t exits_m, int bench) {
    struct vm vm;
    if (vm_create(&vm, "long mode") < 0) { vm_destroy(&vm); return; }
    uint64_t *gdt = (uint64_t *)(vm.mem + LM_GDT);
    gdt[0] = 0;
    gdt[1] = 0x00af9b000000ffffull; // 64-bit code, present, ring 0
    gdt[2] = 0x00cf93000000ffffull; // data, present, writable
    gdt[3] = 0x00008b0000000067ull; // 64-bit TSS (busy), base 0 (low half)
    gdt[4] = 0;                     // TSS (high half)
    *(uint64_t *)(vm.mem + LM_PML4) = LM_PDPT | 0x3;
    *(uint64_t *)(vm.mem + LM_PDPT) = LM_PD | 0x3;
    *(uint64_t *)(vm.mem + LM_PD) = 0x0 | 0x83; // 2 MiB page at 0: present, writable, PS
    static const uint8_t code[] = {
        0x66, 0xba, PORT_A, 0x00,     // mov dx, PORT_A
        0xb8, 0xef, 0xbe, 0xad, 0xde, // mov eax, 0xdeadbeef
        0xef,                         // out dx, eax
        0x31, 0xc0,                   // xor eax, eax
        0x48, 0x89, 0xf9,             // mov rcx, rdi            (N)
        0x48, 0x85, 0xc9,             // test rcx, rcx
        0x74, 0x08,                   // jz +8
        0x48, 0x01, 0xc8,             // 1: add rax, rcx
        0x48, 0xff, 0xc9,             //    dec rcx
        0x75, 0xf8,                   //    jnz 1b
        0xef,                         // out dx, eax             (low half of the sum)
        0x48, 0xc1, 0xe8, 0x20,       // shr rax, 32
        0xef,                         // out dx, eax             (high half)
        0x66, 0xba, PORT_B, 0x00,     // mov dx, PORT_B
        0x48, 0x89, 0xf1,             // mov rcx, rsi            (M)
        0x48, 0x85, 0xc9,             // test rcx, rcx
        0x74, 0x06,                   // jz +6
        0xee,                         // 2: out dx, al
        0x48, 0xff, 0xc9,             //    dec rcx
        0x75, 0xfa,                   //    jnz 2b
        0x48, 0xc7, 0xc3, 0x2a, 0x00, 0x00, 0x00, // mov rbx, 42
        0x50,                         // push rax (checks the stack works)
        0xf4,                         // hlt
    };
    memcpy(vm.mem + LM_CODE, code, sizeof code);

    int nent = set_cpuid(&vm);
    check(nent > 0, "long mode: KVM_GET_SUPPORTED_CPUID + KVM_SET_CPUID2 (%d entries)", nent);
    if (nent <= 0) goto out;
    struct kvm_sregs sregs;
    if (ioctl(vm.vcpu, KVM_GET_SREGS, &sregs) < 0) { check(0, "long mode: KVM_GET_SREGS: %s", strerror(errno)); goto out; }
    set_seg(&sregs.cs, 0x08, 11, 1);
    set_seg(&sregs.ds, 0x10, 3, 0);
    sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
    memset(&sregs.tr, 0, sizeof sregs.tr);
    sregs.tr.selector = 0x18, sregs.tr.limit = 0x67, sregs.tr.type = 11, sregs.tr.present = 1;
    sregs.gdt.base = LM_GDT, sregs.gdt.limit = 5 * 8 - 1;
    sregs.cr3 = LM_PML4;
    sregs.cr4 = 1u << 5;                                     // PAE
    sregs.cr0 = 0x80050033;                                  // PG WP NE ET MP PE
    sregs.efer = (1u << 8) | (1u << 10);                     // LME LMA
    int ok = ioctl(vm.vcpu, KVM_SET_SREGS, &sregs) == 0;
    check(ok, "long mode: KVM_SET_SREGS with long-mode segments and paging%s%s", ok ? "" : ": ",
          ok ? "" : strerror(errno));
    if (!ok) goto out;
    struct kvm_regs regs = {.rip = LM_CODE, .rflags = 0x2, .rsp = LM_STACK, .rdi = loop_n, .rsi = exits_m};
    if (ioctl(vm.vcpu, KVM_SET_REGS, &regs) < 0) { check(0, "long mode: KVM_SET_REGS: %s", strerror(errno)); goto out; }

    uint8_t *d;
    uint32_t lo, hi;
    if (!(d = expect_io(&vm, "long mode: first out", KVM_EXIT_IO_OUT, PORT_A, 4))) goto out;
    memcpy(&lo, d, 4);
    check(lo == 0xdeadbeef, "long mode: 32-bit OUT carried 0x%08x (want 0xdeadbeef)", lo);
    double t0 = now_s();
    if (!(d = expect_io(&vm, "long mode: sum low", KVM_EXIT_IO_OUT, PORT_A, 4))) goto out;
    double t1 = now_s();
    memcpy(&lo, d, 4);
    if (!(d = expect_io(&vm, "long mode: sum high", KVM_EXIT_IO_OUT, PORT_A, 4))) goto out;
    memcpy(&hi, d, 4);
    uint64_t sum = ((uint64_t)hi << 32) | lo, want = loop_n * (loop_n + 1) / 2;
    check(sum == want, "long mode: loop of %llu iterations computed %llu (want %llu) in %.3f s",
          (unsigned long long)loop_n, (unsigned long long)sum, (unsigned long long)want, t1 - t0);
    double t2 = now_s(), t3 = t2;
    uint64_t seen = 0;
    int r;
    for (;;) {
        r = vm_run(&vm);
        if (r != KVM_EXIT_IO) break;
        if (vm.run->io.port != PORT_B || vm.run->io.direction != KVM_EXIT_IO_OUT) break;
        seen++;
        t3 = now_s();
    }
    check(r == KVM_EXIT_HLT && seen == exits_m, "long mode: %llu port-I/O exits then HLT (saw %llu, then exit %s)",
          (unsigned long long)exits_m, (unsigned long long)seen, r < 0 ? strerror(errno) : exit_name((uint32_t)r));
    ok = ioctl(vm.vcpu, KVM_GET_REGS, &regs) == 0;
    check(ok && regs.rbx == 42 && regs.rcx == 0 && regs.rsp == LM_STACK - 8 && regs.rip == LM_CODE + sizeof code,
          "long mode: final registers rbx=%llu rcx=%llu rsp=0x%llx rip=0x%llx", (unsigned long long)regs.rbx,
          (unsigned long long)regs.rcx, (unsigned long long)regs.rsp, (unsigned long long)regs.rip);
    uint64_t pushed;
    memcpy(&pushed, vm.mem + LM_STACK - 8, 8);
    check(pushed == (want >> 32), "long mode: PUSH wrote 0x%llx to the stack", (unsigned long long)pushed);
    if (bench) {
        if (loop_n > 0 && t1 > t0)
            printf("bench kvm_longmode_loop %.1f Miter/s\n", (double)loop_n / (t1 - t0) / 1e6);
        if (exits_m > 0 && t3 > t2)
            printf("bench kvm_exit_roundtrip %.2f us\n", (t3 - t2) / (double)exits_m * 1e6);
    }
out:
    vm_destroy(&vm);
}

int main(int argc, char **argv) {
    uint64_t loop_n = 1000, exits_m = 100;
    unsigned timeout = 120;
    int bench = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--loop") && i + 1 < argc) loop_n = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--exits") && i + 1 < argc) exits_m = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--timeout") && i + 1 < argc) timeout = (unsigned)strtoul(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--bench")) bench = 1;
        else { fprintf(stderr, "usage: %s [--loop N] [--exits M] [--bench] [--timeout SECS]\n", argv[0]); return 2; }
    }
    // The loop's sum must fit 64 bits; the watchdog ends a guest that never exits.
    if (loop_n > 4000000000ull) { fprintf(stderr, "kvm-smoke: --loop at most 4e9\n"); return 2; }
    signal(SIGALRM, on_alarm);
    alarm(timeout);
    setvbuf(stdout, NULL, _IOLBF, 0);

    kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm_fd < 0) {
        check(0, "open /dev/kvm: %s", strerror(errno));
    } else {
        int v = ioctl(kvm_fd, KVM_GET_API_VERSION, 0);
        check(v == KVM_API_VERSION, "KVM_GET_API_VERSION = %d", v);
        test_real_mode();
        test_long_mode(loop_n, exits_m, bench);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 && passed > 0 ? 0 : 1;
}
