/* tests/native/kernelfw-dlopen.sh's checker: dlopens libkrunfw.so.5 the way libkrun does (by
 * soname, through the loader path), calls krunfw_get_kernel/krunfw_get_version and compares the
 * bundle with the vmlinux it came from, parsed here independently of kernelfw/bundler.zig:
 * every PT_LOAD's file bytes at (p_paddr - load), zeros everywhere else, size = 4 KiB-rounded
 * end of the last segment's file bytes, entry bytes equal.
 * Usage: dlopen_check <vmlinux>. Prints "ok|FAIL <what>" lines and a summary line. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static int passed, failed;
#define CHECK(cond, ...)                                   \
    do {                                                   \
        if (cond) {                                        \
            passed++;                                      \
            printf("ok   ");                               \
        } else {                                           \
            failed++;                                      \
            printf("FAIL ");                               \
        }                                                  \
        printf(__VA_ARGS__);                               \
        printf("\n");                                      \
    } while (0)

static int finish(void) {
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

/* Is [addr, addr+len) inside one writable private mapping of this process? */
static int writable_mapping(uintptr_t addr, size_t len, char *path, size_t path_len) {
    FILE *f = fopen("/proc/self/maps", "r");
    char line[4096];
    int ok = 0;
    if (!f) return 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long start, end;
        char perms[8] = {0}, file[2048] = {0};
        if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %2047s", &start, &end, perms, file) < 3) continue;
        if (addr >= start && addr < end) {
            ok = perms[1] == 'w' && perms[3] == 'p' && addr + len <= end;
            snprintf(path, path_len, "%s", file);
            break;
        }
    }
    fclose(f);
    return ok;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s <vmlinux>\n", argv[0]);
        return 2;
    }
    int fd = open(argv[1], O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || (size_t)st.st_size < sizeof(Elf64_Ehdr)) {
        CHECK(0, "open %s", argv[1]);
        return finish();
    }
    const uint8_t *elf = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (elf == MAP_FAILED) {
        CHECK(0, "mmap %s", argv[1]);
        return finish();
    }
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)elf;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
        eh->e_phentsize != sizeof(Elf64_Phdr) ||
        eh->e_phoff + (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > (uint64_t)st.st_size) {
        CHECK(0, "%s is an ELF64 vmlinux", argv[1]);
        return finish();
    }
    const Elf64_Phdr *ph = (const Elf64_Phdr *)(elf + eh->e_phoff);

    void *lib = dlopen("libkrunfw.so.5", RTLD_NOW | RTLD_LOCAL);
    CHECK(lib != NULL, "dlopen(\"libkrunfw.so.5\") %s", lib ? "" : dlerror());
    if (!lib) return finish();
    char *(*get_kernel)(size_t *, size_t *, size_t *) = (char *(*)(size_t *, size_t *, size_t *))dlsym(lib, "krunfw_get_kernel");
    int (*get_version)(void) = (int (*)(void))dlsym(lib, "krunfw_get_version");
    CHECK(get_kernel && get_version, "exports krunfw_get_kernel and krunfw_get_version");
    if (!get_kernel || !get_version) return finish();
    Dl_info info;
    if (dladdr((void *)get_kernel, &info) && info.dli_fname) printf("info loaded %s\n", info.dli_fname);

    CHECK(get_version() == 5, "krunfw_get_version() == 5 (got %d)", get_version());
    size_t load = 0, entry = 0, size = 0;
    char *bundle = get_kernel(&load, &entry, &size);
    printf("info bundle %p load 0x%zx entry 0x%zx size %zu (%.1f MiB)\n", (void *)bundle, load, entry,
           size, size / 1048576.0);
    CHECK(bundle != NULL, "krunfw_get_kernel returns a pointer");
    if (!bundle) return finish();
    CHECK(((uintptr_t)bundle & 0xffff) == 0, "bundle is 64 KiB aligned");
    CHECK(load == 0x1000000, "load address 0x1000000 (got 0x%zx)", load);
    CHECK(entry == eh->e_entry, "entry == vmlinux e_entry (0x%zx vs 0x%lx)", entry, (unsigned long)eh->e_entry);
    CHECK(entry >= load && entry - load < size, "entry inside the image");
    CHECK(size > 0 && size % 4096 == 0, "size is a positive multiple of 4 KiB");
    char path[2048] = "";
    CHECK(writable_mapping((uintptr_t)bundle, size, path, sizeof path),
          "bundle lies in one writable private mapping (libkrun maps these pages into the guest) [%s]", path);

    /* Independent layout: every PT_LOAD's file bytes at p_paddr - load, zero gaps. */
    uint64_t first = 0, end = 0, entry_off = 0;
    int loads = 0, entry_found = 0, segs_ok = 1;
    uint8_t *covered = calloc(size, 1);
    for (int i = 0; i < eh->e_phnum; i++) {
        if (ph[i].p_type != PT_LOAD || ph[i].p_memsz == 0) continue;
        if (loads++ == 0) first = ph[i].p_paddr;
        uint64_t off = ph[i].p_paddr - first;
        if (ph[i].p_offset + ph[i].p_filesz > (uint64_t)st.st_size || off + ph[i].p_filesz > size) {
            segs_ok = 0;
            printf("info segment %d (paddr 0x%lx filesz 0x%lx) outside file or bundle\n", i,
                   (unsigned long)ph[i].p_paddr, (unsigned long)ph[i].p_filesz);
            continue;
        }
        if (memcmp(bundle + off, elf + ph[i].p_offset, ph[i].p_filesz) != 0) {
            segs_ok = 0;
            printf("info segment %d bytes differ\n", i);
        }
        memset(covered + off, 1, ph[i].p_filesz);
        if (ph[i].p_filesz && off + ph[i].p_filesz > end) end = off + ph[i].p_filesz;
        if (eh->e_entry >= ph[i].p_paddr && eh->e_entry - ph[i].p_paddr < ph[i].p_filesz) {
            entry_off = ph[i].p_offset + (eh->e_entry - ph[i].p_paddr);
            entry_found = 1;
        }
    }
    CHECK(loads > 0 && first == load, "first PT_LOAD p_paddr == load address (%d PT_LOAD)", loads);
    CHECK(segs_ok, "every PT_LOAD's file bytes sit at p_paddr - load in the bundle");
    size_t nonzero_gap = 0;
    for (size_t i = 0; i < size; i++)
        if (!covered[i] && bundle[i] != 0) nonzero_gap++;
    CHECK(nonzero_gap == 0, "gaps, .bss and padding are zero (%zu stray bytes)", nonzero_gap);
    CHECK(size == ((end + 4095) & ~(uint64_t)4095), "size == end of file bytes rounded to 4 KiB (%zu vs %lu)",
          size, (unsigned long)((end + 4095) & ~(uint64_t)4095));
    CHECK(entry_found && memcmp(bundle + (entry - load), elf + entry_off, 64) == 0,
          "bundle bytes at entry - load == vmlinux bytes at the entry's file offset 0x%lx",
          (unsigned long)entry_off);
    free(covered);
    return finish();
}
