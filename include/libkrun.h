/*
 * libkrun.h - the C API of zkrun, a rebuild of libkrun in Zig.
 *
 * Link with -lkrun (libkrun.so.1) or dlopen("libkrun.so.1"). Every function of libkrun's 1.x API
 * is declared here with libkrun's names, signatures and constants, so existing clients (crun,
 * krunvm, muvm, ...) build and load unchanged. zkrun's own additions are in the section
 * "zkrun extensions" at the end.
 *
 * Conventions that hold for every function below:
 *
 *  - Return value: 0 on success, or a negative errno value on failure (-EINVAL, -ENOENT, ...).
 *    A few functions return a non-negative value on success instead (a context id, a count,
 *    0/1 for a yes/no query); their comments say so.
 *  - Contexts: krun_create_ctx() returns a context id. Ids count up and are never reused within
 *    a process. Any call given an id that does not exist (never created, freed, or consumed by
 *    krun_start_enter) returns -ENOENT.
 *  - Strings: NUL-terminated and valid UTF-8, else -EINVAL. A NULL pointer where a string is
 *    required returns -EINVAL.
 *  - String arrays ("const char *const x[]"): NULL-terminated, at most KRUN_MAX_ARGS entries
 *    before the terminating NULL, else -EINVAL.
 *  - Copies: every string, array and buffer passed in is copied before the call returns. The
 *    caller may free or overwrite its buffers right after any call (libkrun itself does not
 *    copy the data of krun_fs_add_overlay_file; zkrun does).
 *  - Setters only record configuration. Devices and the VM are built by krun_start_enter (or
 *    krun_start). Once a context's VM has started, setters on it return -EBUSY.
 *  - Errors are explained on the log (see krun_init_log): each rejected call writes one line
 *    "[zkrun] <function>: <why>". Errors are logged by default; successful calls print nothing
 *    unless a more verbose level is chosen.
 *  - Functions for features zkrun does not build (GPU, displays, input,
 *    vhost-user, TEEs, ...) exist so that every client resolves its symbols, and return
 *    -ENOTSUP (after -ENOENT for an unknown context). krun_has_feature() tells which exist.
 *
 * All functions are thread-safe: the context table is protected by one lock.
 *
 * The terminal (a process-wide effect). When a console's input or output is a terminal (the
 * implicit console on stdin/stdout, or krun_add_virtio_console_default's descriptors), the
 * guest's console is that terminal, sized like it. While the VM runs the terminal is in raw
 * mode (cfmakeraw: no echo, no line editing, no signal keys, so Ctrl-C reaches the guest's
 * foreground process), and its settings are restored exactly when the VM ends: by
 * krun_start_enter before the process exits, by krun_stop (when it returns), by krun_wait
 * after the guest ended or crashed, by krun_free_ctx. While such a VM exists the library also
 * has a SIGWINCH handler installed (SA_RESTART) that resizes the guest's console; it calls the
 * handler that was there before it, and puts that one back when the last such VM is freed
 * (unless another handler was installed over it meanwhile, which is then left alone).
 *
 * Other process-wide effects, beyond the library's own threads and fds:
 *  - Once loaded, libkrun.so.1 stays mapped until the process exits: it marks itself
 *    RTLD_NODELETE, so dlclose() does not unmap it (a running VM's threads and the signal
 *    handlers below run its code; unmapped, they crashed the process).
 *  - Loading libkrun.so.1 opens libkrunfw.so.5 (by soname, else beside libkrun.so.1) and keeps
 *    it open until the process exits, so a client that loads the library and then enters a
 *    container without libkrunfw still has a kernel (crun 1.8.1). If it is not found then,
 *    krun_create_ctx and the start try again.
 *  - Guest RAM is mapped readable and writable, never executable, and marked MADV_DONTDUMP and
 *    MADV_DONTFORK: it is left out of the process's core dumps, and a fork()ed child does not
 *    inherit it (a child that touches such an address faults).
 *  - krun_setuid/krun_setgid change the ids of the whole process at start.
 *  - krun_start_enter, once the VM runs, installs a SIGTERM handler (SA_RESTART) that passes
 *    the signal to the workload (see krun_start_enter).
 *  - The first VM start installs a handler (that does nothing) for SIGRTMIN, glibc's first
 *    real-time signal, without SA_RESTART: it kicks vCPU threads out of KVM_RUN. It stays
 *    installed; a program must not use SIGRTMIN itself.
 *  - Building a VM with a virtio-fs share raises the process's RLIMIT_NOFILE soft limit to its
 *    hard limit (every guest-visible inode holds an fd, as in libkrun's clients).
 *  - virtio-fs shares (krun_set_root, krun_add_virtiofs*), when the process runs as root: the
 *    guest cannot leave set-user-ID or set-group-ID files in a shared directory. Those bits are
 *    stripped from every non-directory the guest creates, mknods or chmods, and from a file
 *    written by a guest uid other than its owner (as virtiofsd's killpriv; a directory's
 *    set-group-ID bit, which only hands its group down, is kept). There is no switch to
 *    turn this off.
 */
#ifndef _LIBKRUN_H
#define _LIBKRUN_H

#ifdef __cplusplus
extern "C" {
#endif

#include <inttypes.h>
#include <stddef.h>
#include <stdbool.h>
#include <sys/types.h>
#include <unistd.h>

/* The most entries read from a NULL-terminated string array. */
#define KRUN_MAX_ARGS 4096

/* ---- Logging --------------------------------------------------------------------------- */

#define KRUN_LOG_TARGET_DEFAULT -1

#define KRUN_LOG_LEVEL_OFF 0
#define KRUN_LOG_LEVEL_ERROR 1
#define KRUN_LOG_LEVEL_WARN 2
#define KRUN_LOG_LEVEL_INFO 3
#define KRUN_LOG_LEVEL_DEBUG 4
#define KRUN_LOG_LEVEL_TRACE 5

#define KRUN_LOG_STYLE_AUTO 0
#define KRUN_LOG_STYLE_ALWAYS 1
#define KRUN_LOG_STYLE_NEVER 2

#define KRUN_LOG_OPTION_NO_ENV 1

/**
 * Sets how much the library logs, from KRUN_LOG_LEVEL_OFF (0) to KRUN_LOG_LEVEL_TRACE (5).
 * The default is KRUN_LOG_LEVEL_ERROR. The environment variable RUST_LOG (or ZKRUN_LOG), set to
 * a level name (off, error, warn, info, debug, trace) or number, overrides "level".
 *
 * Returns: 0, or -EINVAL if "level" is above 5.
 */
int32_t krun_set_log_level(uint32_t level);

/**
 * Configures logging (supersedes krun_set_log_level).
 *
 *  "target_fd" - where log lines go: KRUN_LOG_TARGET_DEFAULT (-1) for stderr, or an open file
 *                descriptor (1 = stdout, 2 = stderr, a pipe, a file). 0 and values below -1 are
 *                rejected. The descriptor stays owned by the caller and must stay open.
 *  "level"     - KRUN_LOG_LEVEL_OFF .. KRUN_LOG_LEVEL_TRACE.
 *  "style"     - KRUN_LOG_STYLE_AUTO (colour when the target is a terminal), _ALWAYS or _NEVER.
 *  "options"   - 0, or KRUN_LOG_OPTION_NO_ENV so that RUST_LOG/ZKRUN_LOG cannot override
 *                "level".
 *
 * Returns: 0, or -EINVAL for a bad target, level, style or option bit.
 */
int32_t krun_init_log(int target_fd, uint32_t level, uint32_t style, uint32_t options);

/* ---- Contexts and capabilities --------------------------------------------------------- */

/**
 * Creates a configuration context.
 *
 * Returns: the new context id (>= 0; ids count up from 0), or -ENOMEM when too many contexts
 * are alive at once.
 */
int32_t krun_create_ctx(void);

/**
 * Frees a context and everything it recorded. A VM started with krun_start is stopped and
 * torn down first. zkrun tears it down without holding the process-wide context lock, so a
 * slow teardown holds up no other context; the id is unknown to every call from the start.
 *
 * Returns: 0, -ENOENT for an unknown id, -EBUSY while another thread waits in krun_wait on it
 * or is starting it (krun_start / krun_start_enter still running).
 */
int32_t krun_free_ctx(uint32_t ctx_id);

/* Feature constants for krun_has_feature(). */
#define KRUN_FEATURE_NET 0
#define KRUN_FEATURE_BLK 1
#define KRUN_FEATURE_GPU 2
#define KRUN_FEATURE_INPUT 4
#define KRUN_FEATURE_TEE 6
#define KRUN_FEATURE_AMD_SEV 7
#define KRUN_FEATURE_INTEL_TDX 8
#define KRUN_FEATURE_AWS_NITRO 9
#define KRUN_FEATURE_VIRGL_RESOURCE_MAP2 10
#define KRUN_FEATURE_INIT_BLOB 11

/**
 * Tells whether this build has a feature (one of KRUN_FEATURE_*).
 *
 * Returns: 1 if it has it, 0 if not, -EINVAL for a number this library does not know.
 * zkrun has KRUN_FEATURE_NET, KRUN_FEATURE_BLK and KRUN_FEATURE_INIT_BLOB. (The numbers 3 and 5, "sound" and "EFI" in
 * libkrun 1.19, are known and answered with 0.)
 */
int32_t krun_has_feature(uint64_t feature);

/**
 * Returns: the most vCPUs one VM may have on this host (KVM_CAP_MAX_VCPUS, capped at what
 * the VM's MP table can describe), or -ENODEV when /dev/kvm is missing or unusable.
 */
int32_t krun_get_max_vcpus(void);

/**
 * Returns: 1 if the host's KVM module (kvm_intel or kvm_amd) allows nested virtualization,
 * 0 if it does not or no such module is loaded.
 */
int32_t krun_check_nested_virt(void);

/**
 * Records a user id (and krun_setgid a group id) that the process switches to just before the
 * VM is built by krun_start_enter / krun_start (group first, then user). This affects the
 * whole process.
 *
 * Returns: 0, or -ENOENT for an unknown context.
 */
int32_t krun_setuid(uint32_t ctx_id, uid_t uid);
int32_t krun_setgid(uint32_t ctx_id, gid_t gid);

/**
 * An eventfd asking the guest to shut down in an orderly way. libkrun creates it on macOS and
 * aarch64 only; on x86_64 Linux it does not exist.
 *
 * Returns: -EINVAL (after -ENOENT for an unknown context).
 */
int32_t krun_get_shutdown_eventfd(uint32_t ctx_id);

/* ---- VM shape ------------------------------------------------------------------------------ */

/**
 * Sets the number of vCPUs and the guest RAM in MiB. Without this call a VM has 1 vCPU and
 * 128 MiB. RAM is mapped on demand, not preallocated.
 *
 * Returns: 0, -ENOENT for an unknown context, -EINVAL when "num_vcpus" is 0 or above
 * krun_get_max_vcpus(), or when "ram_mib" is 0 or more than the host can map.
 */
int32_t krun_set_vm_config(uint32_t ctx_id, uint8_t num_vcpus, uint32_t ram_mib);

/**
 * Asks for nested virtualization (SVM/VMX visible to the guest, when the host has it).
 * Success only records the wish; see krun_check_nested_virt().
 */
int32_t krun_set_nested_virt(uint32_t ctx_id, bool enabled);

/**
 * Asks for a split irqchip (IOAPIC emulated in user space, KVM_CAP_SPLIT_IRQCHIP).
 * zkrun: not implemented yet; `enable == true` returns -ENOTSUP, `false` (the in-kernel
 * irqchip, the default) returns 0.
 */
int32_t krun_split_irqchip(uint32_t ctx_id, bool enable);

/** SMBIOS OEM strings (NULL-terminated array). libkrun writes SMBIOS on aarch64/riscv64 only.
 * zkrun: 0 for an empty array (or NULL), -ENOTSUP for any string. */
int32_t krun_set_smbios_oem_strings(uint32_t ctx_id, const char *const oem_strings[]);

/** A firmware image (EFI) to boot instead of a kernel. zkrun: -ENOTSUP. */
int32_t krun_set_firmware(uint32_t ctx_id, const char *firmware_path);

#define KRUN_KERNEL_FORMAT_RAW 0
#define KRUN_KERNEL_FORMAT_ELF 1
#define KRUN_KERNEL_FORMAT_PE_GZ 2
#define KRUN_KERNEL_FORMAT_IMAGE_BZ2 3
#define KRUN_KERNEL_FORMAT_IMAGE_GZ 4
#define KRUN_KERNEL_FORMAT_IMAGE_ZSTD 5

/**
 * Boots an external kernel instead of the one in libkrunfw.so.5.
 *
 *  "kernel_path"   - host path of the kernel image; checked now.
 *  "kernel_format" - KRUN_KERNEL_FORMAT_ELF (an x86_64 vmlinux) or KRUN_KERNEL_FORMAT_RAW (a
 *                    libkrunfw-style bundle; on aarch64 an arm64 Image). On aarch64 Linux also
 *                    KRUN_KERNEL_FORMAT_IMAGE_GZ (a gzipped arm64 Image, at most 256 MiB
 *                    inflated; its header is checked now, the whole stream at start). PE_GZ,
 *                    IMAGE_BZ2 and IMAGE_ZSTD are not supported.
 *  "initramfs"     - host path of an initramfs, or NULL.
 *  "cmdline"       - the kernel command line replacing the default prolog, or NULL. The
 *                    KRUN_* tokens of the workload are still appended.
 *
 * Returns: 0; -ENOENT when the kernel or initramfs file does not exist; -EINVAL for a NULL
 * path, an unknown format number, a truncated or non-x86_64 ELF, an empty RAW file or a
 * command line of 2048 bytes or more, an IMAGE_GZ file that is not gzip of an arm64 Image;
 * -ENOTSUP for the other formats (and IMAGE_GZ on x86_64 or macOS). A gzip stream that is
 * truncated or corrupt further in fails krun_start_enter/krun_start with -EINVAL and the reason.
 */
int32_t krun_set_kernel(uint32_t ctx_id,
                        const char *kernel_path,
                        uint32_t kernel_format,
                        const char *initramfs,
                        const char *cmdline);

/**
 * Appends one argument to the guest kernel's command line; call it again for more (kept in
 * call order, space-separated, after the default or krun_set_kernel line and before the
 * workload's KRUN_* tokens).
 *
 * Returns: 0; -EINVAL for NULL, an empty argument, "--", a byte outside printable ASCII, or
 * when the appended arguments would pass the 2047 bytes of a command line.
 */
int32_t krun_append_kernel_cmdline(uint32_t ctx_id, const char *arg);

/** Sets the value of the "console=" kernel parameter (default "hvc0"). */
int32_t krun_set_kernel_console(uint32_t ctx_id, const char *console_id);

/* ---- Root filesystem, virtio-fs and the guest init ---------------------------------------- */

/* The virtio-fs tag of the root filesystem. */
#define KRUN_FS_ROOT_TAG "/dev/root"

/**
 * Uses the host directory "root_path" as the guest's root filesystem: a virtio-fs device with
 * tag KRUN_FS_ROOT_TAG whose device advertises a 512 MiB DAX window, as libkrun's does. zkrun
 * does not map into DAX windows yet (FUSE_SETUPMAPPING answers ENOSYS), so guests mount without
 * `dax`, as the built-in init does. Unless krun_disable_implicit_init was called before, the
 * built-in init is served in it as /init.krun.
 *
 * Returns: 0, -EINVAL for NULL, -ENOENT if the directory does not exist, -ENOTDIR if it is
 * not a directory, -EEXIST if the context already has a root filesystem.
 */
int32_t krun_set_root(uint32_t ctx_id, const char *root_path);

/**
 * Adds a virtio-fs device sharing the host directory "c_path" under the tag "c_tag" (1 to 36
 * bytes). A NULL path gives a filesystem with only the overlay entries added later. With the
 * tag KRUN_FS_ROOT_TAG it becomes the root filesystem (as krun_set_root). krun_add_virtiofs2
 * advertises a DAX window of "shm_size" bytes (not mapped into yet: see krun_set_root);
 * krun_add_virtiofs3 can also make the share read-only.
 *
 * Returns: 0, -EINVAL for a NULL or bad tag, -ENOENT / -ENOTDIR for a bad directory, -EEXIST
 * for a tag already in use, -ENOSPC when the VM has no virtio slot left.
 */
int32_t krun_add_virtiofs(uint32_t ctx_id,
                          const char *c_tag,
                          const char *c_path);
int32_t krun_add_virtiofs2(uint32_t ctx_id,
                           const char *c_tag,
                           const char *c_path,
                           uint64_t shm_size);
int32_t krun_add_virtiofs3(uint32_t ctx_id,
                           const char *c_tag,
                           const char *c_path,
                           uint64_t shm_size,
                           bool read_only);

/** No longer supported by libkrun either: always -EINVAL (after -ENOENT). */
int32_t krun_set_mapped_volumes(uint32_t ctx_id, const char *const mapped_volumes[]);

/**
 * Do not serve the built-in init as /init.krun. Call it before krun_set_root (or
 * krun_add_virtiofs* with KRUN_FS_ROOT_TAG); it has no effect on a root already added.
 */
int32_t krun_disable_implicit_init(uint32_t ctx_id);

/**
 * Gives the built-in init binary (static x86_64 ELF), e.g. to serve it under another name
 * with krun_fs_add_overlay_file. The bytes are static and live as long as the process.
 *
 * Returns: 0, or -EINVAL if either pointer is NULL.
 */
int32_t krun_get_default_init(const uint8_t **data_out, size_t *len_out);

/**
 * Adds a file that exists only in memory to the virtio-fs device tagged "fs_tag". "path" is
 * relative to that filesystem's root ("init.krun", "etc/hostname"); every directory above it
 * must be an overlay directory added before. "mode" holds the file type and permission bits
 * (e.g. 0100644). A "one_shot" file disappears after its first lookup. zkrun copies "data".
 *
 * Returns: 0; -EINVAL for NULL pointers or an empty/"."/".." path component; -ENOENT for an
 * unknown tag or missing parent directory; -ENOTDIR if a parent is a file; -EEXIST if the path
 * exists.
 */
int32_t krun_fs_add_overlay_file(uint32_t ctx_id, const char *fs_tag,
                                 const char *path, const uint8_t *data,
                                 size_t data_len, uint32_t mode, bool one_shot);

/**
 * Adds an empty, read-only directory that exists only in memory (a mount point) to the
 * virtio-fs device tagged "fs_tag". Errors as krun_fs_add_overlay_file.
 */
int32_t krun_fs_add_overlay_dir(uint32_t ctx_id, const char *fs_tag,
                                const char *path, uint32_t mode);

/* ---- Disks (virtio-blk) ------------------------------------------------------------------- */
/*
 * Each disk is a virtio-blk device (attached after the virtio-fs devices, in call order: the
 * first disk is /dev/vda in the guest). Its block_id is the guest-visible serial
 * (/sys/block/vdX/serial, first 20 bytes). Requests are served by 4 worker threads per disk,
 * several at once; the guest's flush reaches the host as fdatasync (KRUN_SYNC_NONE: not at all).
 * Discard and write-zeroes punch holes / zero ranges in raw images and make whole clusters zero
 * clusters in qcow2 images.
 *
 * The image is opened when the call is made, so that bad input is an error at once (the reason
 * is on the log and in krun_last_error): -ENOENT missing file, -EISDIR a directory, -EINVAL not a
 * regular file or block device / not an image of the given format / bad block_id, format or
 * sync_mode, -EEXIST a block_id used twice, -EBUSY an image another disk, VM or process holds,
 * -ENOTSUP VMDK (no VMDK reader in zkrun) or a qcow2 feature zkrun does not read or write.
 * The VMM opens it again when the VM starts and holds a lock on it (flock: shared
 * for read-only disks, exclusive otherwise) until the VM is freed.
 *
 * qcow2 (versions 2 and 3 as qemu-img writes them), read and written: plain, zero and
 * compressed (deflate) clusters, and backing files (raw or qcow2, opened read-only, relative
 * names resolved next to the image, up to 8 deep). Writes allocate clusters at the end of the
 * file (copy-on-write from the backing file or a compressed cluster); freed clusters are not
 * reused while the disk is open. Encrypted, external-data-file, extended-L2 and zstd images
 * are -ENOTSUP; so is a writable open of an image with internal snapshots, the dirty flag,
 * sub-byte refcounts, or not in a regular file. Never let a guest-controlled image choose its
 * format: pass the format you know.
 */

#define KRUN_DISK_FORMAT_RAW 0
#define KRUN_DISK_FORMAT_QCOW2 1
#define KRUN_DISK_FORMAT_VMDK 2

#define KRUN_SYNC_NONE 0
#define KRUN_SYNC_RELAXED 1
#define KRUN_SYNC_FULL 2

/** Deprecated in libkrun: a raw, writable disk with block_id "root". Cannot be mixed with
 * krun_add_disk* (-EINVAL). */
int32_t krun_set_root_disk(uint32_t ctx_id, const char *disk_path);
/** Deprecated in libkrun: a raw, writable disk with block_id "data". Cannot be mixed with
 * krun_add_disk* (-EINVAL). */
int32_t krun_set_data_disk(uint32_t ctx_id, const char *disk_path);
/** A raw disk image (or host block device); read_only offers VIRTIO_BLK_F_RO and refuses
 * writes. Errors above. */
int32_t krun_add_disk(uint32_t ctx_id, const char *block_id, const char *disk_path, bool read_only);
/** A disk image in a given KRUN_DISK_FORMAT_* (VMDK: -ENOTSUP). Never probe formats of untrusted
 * images. After a crash (libkrun-c/virtio/blk/QCOW2.md): if the VMM process dies, a qcow2
 * image stays consistent (`qemu-img check` finds at most a leaked cluster of a request in
 * flight) and a raw image holds every completed write; if the host loses power, what the
 * guest flushed is durable (fdatasync), and a qcow2 image may need `qemu-img check -r all`
 * for metadata written after the last flush. */
int32_t krun_add_disk2(uint32_t ctx_id,
                       const char *block_id,
                       const char *disk_path,
                       uint32_t disk_format,
                       bool read_only);
/** As krun_add_disk2, with O_DIRECT (direct_io: the host page cache is bypassed; requests whose
 * guest buffers O_DIRECT refuses fall back to buffered I/O; -ENOTSUP where the filesystem has
 * no O_DIRECT) and a KRUN_SYNC_* flush mode (RELAXED is FULL on Linux, as in libkrun). */
int32_t krun_add_disk3(uint32_t ctx_id,
                       const char *block_id,
                       const char *disk_path,
                       uint32_t disk_format,
                       bool read_only,
                       bool direct_io,
                       uint32_t sync_mode);
/** Boot from a block device: a virtual root filesystem serves the init, which mounts "device"
 * (e.g. "/dev/vda"; type "fstype", or each block filesystem the kernel knows when NULL; mount
 * data "options", may be NULL) and makes it "/". Needs a disk first (-EINVAL), and no root
 * filesystem (krun_set_root, a "/dev/root" virtio-fs) may exist (-EEXIST). Each string must
 * be one kernel command-line token: no spaces or quotes (-EINVAL). The workload's exit code
 * still reaches the host (init keeps the virtual root open for it). */
int32_t krun_set_root_disk_remount(uint32_t ctx_id, const char *device, const char *fstype,
                                   const char *options);

/* ---- Workload: exec, env, workdir, rlimits ---------------------------------------------- */

/**
 * Sets the program the guest's init runs, its arguments and its environment.
 *
 *  "exec_path" - path of the program inside the guest (required).
 *  "argv"      - the arguments WITHOUT argv[0] (init passes exec_path as argv[0]); NULL means
 *                none.
 *  "envp"      - "KEY=VALUE" entries; NULL means a copy of the host process's environment,
 *                taken when the VM starts. Without krun_set_exec/krun_set_env the workload
 *                gets no environment from the host at all.
 *
 * Returns: 0, -ENOENT for an unknown context, -EINVAL for a NULL exec_path or a bad string or
 * array.
 */
int32_t krun_set_exec(uint32_t ctx_id,
                      const char *exec_path,
                      const char *const argv[],
                      const char *const envp[]);

/** Sets only the environment (as "envp" of krun_set_exec; NULL = the host environment). */
int32_t krun_set_env(uint32_t ctx_id, const char *const envp[]);

/** Sets the workload's working directory, a path inside the guest. */
int32_t krun_set_workdir(uint32_t ctx_id, const char *workdir_path);

/**
 * Sets resource limits init applies before running the workload: entries
 * "RESOURCE=CUR:MAX" with a numeric RLIMIT_* id, e.g. "7=1024:4096" (RLIMIT_NOFILE).
 *
 * Returns: 0, or -EINVAL for an entry not of that shape or an id of 16 or more.
 */
int32_t krun_set_rlimits(uint32_t ctx_id, const char *const rlimits[]);

/* ---- Console ------------------------------------------------------------------------------ */

/**
 * The implicit console (hvc0) ignores stdin and writes the guest's output to the file
 * "c_filepath" (created if missing). Only one call per context.
 *
 * Returns: 0, -EINVAL for NULL, -EEXIST on a second call.
 */
int32_t krun_set_console_output(uint32_t ctx_id, const char *c_filepath);

/** No implicit console: the VM only has the consoles added explicitly. */
int32_t krun_disable_implicit_console(uint32_t ctx_id);

/**
 * Adds a virtio console wired to three host descriptors (the descriptors stay owned by the
 * caller). Terminal descriptors share one console port; each other descriptor gets its own
 * port (krun-stdin / krun-stdout / krun-stderr) that init connects to the workload's 0/1/2.
 * zkrun accepts one such console per context. Output descriptors are written without blocking
 * (a full pipe stalls the guest's writes, never a library thread). When the VM ends, what the
 * guest wrote last is written out while the readers take it, before krun_wait returns: up to
 * 10 s without progress, then the rest is dropped; after krun_stop, not waited for at all.
 *
 * Returns: 0, -EBADF for a descriptor that is not open, -EEXIST on a second call.
 */
int32_t krun_add_virtio_console_default(uint32_t ctx_id,
                                        int input_fd,
                                        int output_fd,
                                        int err_fd);

/** A legacy 16550 serial console. zkrun: -ENOTSUP. */
int32_t krun_add_serial_console_default(uint32_t ctx_id,
                                        int input_fd,
                                        int output_fd);

/** An empty multiport virtio console (returns its console id). zkrun: -ENOTSUP. */
int32_t krun_add_virtio_console_multiport(uint32_t ctx_id);

/** A terminal port on a multiport console. zkrun: -ENOTSUP. */
int32_t krun_add_console_port_tty(uint32_t ctx_id,
                                  uint32_t console_id,
                                  const char *name,
                                  int tty_fd);

/** A data port on a multiport console. zkrun: -ENOTSUP. */
int32_t krun_add_console_port_inout(uint32_t ctx_id,
                                    uint32_t console_id,
                                    const char *name,
                                    int input_fd,
                                    int output_fd);

/* ---- Networking: TSI, virtio-net, vsock ports -------------------------------------------- */

#define NET_FLAG_VFKIT (1 << 0)
#define NET_FLAG_DHCP_CLIENT (1 << 1)

#define KRUN_TSI_HIJACK_INET (1 << 0)
#define KRUN_TSI_HIJACK_UNIX (1 << 1)

/* virtio-net feature bits (uapi/linux/virtio_net.h). */
#define NET_FEATURE_CSUM (1 << 0)
#define NET_FEATURE_GUEST_CSUM (1 << 1)
#define NET_FEATURE_GUEST_TSO4 (1 << 7)
#define NET_FEATURE_GUEST_TSO6 (1 << 8)
#define NET_FEATURE_GUEST_UFO (1 << 10)
#define NET_FEATURE_HOST_TSO4 (1 << 11)
#define NET_FEATURE_HOST_TSO6 (1 << 12)
#define NET_FEATURE_HOST_UFO (1 << 14)

/* The features of the legacy NIC of krun_set_passt_fd / krun_set_gvproxy_path. */
#define COMPAT_NET_FEATURES (NET_FEATURE_CSUM | NET_FEATURE_GUEST_CSUM | \
                             NET_FEATURE_GUEST_TSO4 | NET_FEATURE_GUEST_UFO | \
                             NET_FEATURE_HOST_TSO4 | NET_FEATURE_HOST_UFO)

/**
 * virtio-net NICs (eth0, eth1, ... in call order; at most 4 per context). With any NIC the
 * implicit vsock device has no TSI (as in libkrun), and krun_set_port_map is refused.
 * c_mac: 6 bytes (a unicast address). features: NET_FEATURE_* (others -EINVAL); zkrun offers
 * the guest CSUM (partial checksums are completed before a frame leaves: by zkrun, or by the
 * kernel for a tap) and the GUEST_* bits; HOST_TSO4/TSO6 are offered for a tap only (its
 * kernel segments); HOST_UFO is accepted but never offered. Frames are at most 65554 bytes;
 * larger ones are dropped.
 * flags: NET_FLAG_DHCP_CLIENT on the first NIC makes init bring eth0 up and configure it by
 * DHCP (address, default route, MTU, and /etc/resolv.conf when DNS servers are offered).
 * A path is connected when the VM is built (krun_start_enter / krun_start; a failure there
 * fails the start). An fd is duplicated then: the caller keeps its own fd (close it after the
 * start if you like) and its file flags are left alone (frames are sent with MSG_DONTWAIT).
 */
/** SOCK_STREAM unix socket with passt/QEMU framing (4-byte big-endian length + frame):
 * passt, socket_vmnet. Give c_path xor fd. flags: NET_FLAG_DHCP_CLIENT only. */
int32_t krun_add_net_unixstream(uint32_t ctx_id,
                                const char *c_path,
                                int fd,
                                uint8_t *const c_mac,
                                uint32_t features,
                                uint32_t flags);
/** SOCK_DGRAM unix socket, one frame per datagram (gvproxy, vmnet-helper). Give c_path xor
 * fd. With a path zkrun binds an autobound abstract address and connects; NET_FLAG_VFKIT
 * (path only) sends gvproxy's "VFKT" handshake datagram first. */
int32_t krun_add_net_unixgram(uint32_t ctx_id,
                              const char *c_path,
                              int fd,
                              uint8_t *const c_mac,
                              uint32_t features,
                              uint32_t flags);
/** A host tap device by name (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, a 12-byte vnet header: the
 * guest's checksum and TSO requests pass to the tap's kernel, and TUNSETOFFLOAD lets the tap
 * hand the guest partial-checksum and TSO frames as far as the guest acked GUEST_CSUM/TSO4/TSO6;
 * opening needs CAP_NET_ADMIN or the tap's owner; a name that does not exist makes a new
 * non-persistent tap, gone with the VM; a persistent tap must accept IFF_VNET_HDR). GUEST_TSO4/
 * TSO6/UFO need GUEST_CSUM (-EINVAL). flags: NET_FLAG_DHCP_CLIENT only. */
int32_t krun_add_net_tap(uint32_t ctx_id,
                         char *c_tap_name,
                         uint8_t *const c_mac,
                         uint32_t features,
                         uint32_t flags);
/** Deprecated in libkrun (use krun_add_net_unixstream): the legacy single NIC on a passt fd,
 * with COMPAT_NET_FEATURES and krun_set_net_mac's MAC (default 5a:94:ef:e4:0c:ee), no DHCP.
 * -EINVAL for a negative fd or after krun_add_net_*. */
int32_t krun_set_passt_fd(uint32_t ctx_id, int fd);
/** Deprecated in libkrun (use krun_add_net_unixgram): the legacy NIC on gvproxy's vfkit-mode
 * socket at c_path (VFKT handshake). */
int32_t krun_set_gvproxy_path(uint32_t ctx_id, char *c_path);
/** MAC address of the legacy NIC (6 bytes, unicast). */
int32_t krun_set_net_mac(uint32_t ctx_id, uint8_t *const c_mac);

/**
 * TSI port map: "host_port:guest_port" entries (1..65535 each; a host or guest port may not
 * repeat). Exposure of guest listeners (TSI, libkrun-c/tsi/PROTOCOL.md):
 *   - never called (or NULL): a guest listener is exposed on the host's LOOPBACK only
 *     (127.0.0.1 / ::1) at the same port number, never on a wildcard address (libkrun
 *     exposes every listener on the address the guest asked); a dual-stack IPv6 wildcard
 *     listener (`[::]` without IPV6_V6ONLY) is exposed on 127.0.0.1 (::ffff:127.0.0.1);
 *   - called: a mapped guest port is bound on the address the guest asked at the mapped host
 *     port; an unmapped one is refused (the guest falls back to a guest-only listener); an
 *     empty array exposes nothing.
 * A guest UDP socket bound to a non-zero port follows the same rule (bound to port 0 it gets
 * an ephemeral port on the wildcard address, as any client socket); bind(port 0) + listen
 * reports the real host port to the guest. AF_UNIX listeners (KRUN_TSI_HIJACK_UNIX) bind the
 * absolute path as given.
 * Each host port is checked when the map is set (zkrun; libkrun only fails later, in the
 * guest's bind): a port that something on the host listens on, on any address, gives
 * -EADDRINUSE, and one this process may not bind (below 1024 without
 * CAP_NET_BIND_SERVICE) gives -EACCES. Only TCP listeners are checked, and only at this
 * moment: a port taken later still makes the guest's bind fail with EADDRINUSE.
 * Returns: 0; -EINVAL for a malformed or duplicate entry (krun_last_error says which) or when
 * a NIC is configured; -ENODEV when vsock is disabled; -EADDRINUSE or -EACCES for a host port
 * (above). A rejected call changes nothing.
 */
int32_t krun_set_port_map(uint32_t ctx_id, const char *const port_map[]);

/**
 * Bridges guest vsock connections to (CID 2, "port") to the host unix socket at c_filepath:
 * each guest connect() becomes a non-blocking connect() there (refused: the guest sees
 * ECONNRESET). Port 620 is TSI's.
 * Limits (per VM): 64 vsock ports; 1024 vsock connections at once (TSI's included), each with
 * at most one host fd, plus one listening fd per listen port and per TSI listener: a guest
 * connecting beyond that is refused.
 * Returns: 0; -EINVAL for port 620, an empty path or one longer than 107 bytes, or more than
 * 64 ports; -EEXIST for a port already added; -ENODEV when vsock is disabled.
 */
int32_t krun_add_vsock_port(uint32_t ctx_id,
                            uint32_t port,
                            const char *c_filepath);
/**
 * As krun_add_vsock_port; with "listen" the VMM listens on c_filepath (created at start,
 * removed with the VM; -EEXIST if it exists now) and each host client there becomes a vsock
 * connection toward the guest's "port".
 */
int32_t krun_add_vsock_port2(uint32_t ctx_id,
                             uint32_t port,
                             const char *c_filepath,
                             bool listen);
/**
 * An explicit vsock device with KRUN_TSI_* features (TSI when any is set). Call
 * krun_disable_implicit_vsock first (else -EEXIST); once per context (-EEXIST);
 * -EINVAL for unknown bits.
 */
int32_t krun_add_vsock(uint32_t ctx_id, uint32_t tsi_features);
/**
 * No implicit vsock device (and so no TSI). Without this call every VM has a vsock device; with
 * no NIC (no krun_add_net_* / legacy NIC) it serves TSI on host port 620 for AF_INET/AF_INET6 and the VMM
 * appends "tsi_hijack" to the kernel command line when the kernel knows that parameter.
 */
int32_t krun_disable_implicit_vsock(uint32_t ctx_id);

/* ---- GPU, displays, input, vhost-user (not built in zkrun, all -ENOTSUP) ----------------- */

/* virglrenderer flags. */
#define VIRGLRENDERER_USE_EGL (1 << 0)
#define VIRGLRENDERER_THREAD_SYNC (1 << 1)
#define VIRGLRENDERER_USE_GLX (1 << 2)
#define VIRGLRENDERER_USE_SURFACELESS (1 << 3)
#define VIRGLRENDERER_USE_GLES (1 << 4)
#define VIRGLRENDERER_USE_EXTERNAL_BLOB (1 << 5)
#define VIRGLRENDERER_VENUS (1 << 6)
#define VIRGLRENDERER_NO_VIRGL (1 << 7)
#define VIRGLRENDERER_USE_ASYNC_FENCE_CB (1 << 8)
#define VIRGLRENDERER_RENDER_SERVER (1 << 9)
#define VIRGLRENDERER_DRM (1 << 10)

/* Most displays of one VM (virtio-gpu scanouts). */
#define KRUN_MAX_DISPLAYS 16

/** A virtio-gpu device with virglrenderer flags. zkrun: -ENOTSUP. */
int32_t krun_set_gpu_options(uint32_t ctx_id, uint32_t virgl_flags);
/** As krun_set_gpu_options with a host window of "shm_size" bytes. zkrun: -ENOTSUP. */
int32_t krun_set_gpu_options2(uint32_t ctx_id,
                              uint32_t virgl_flags,
                              uint64_t shm_size);
/** A display output (returns its id). zkrun: -ENOTSUP. */
int32_t krun_add_display(uint32_t ctx_id, uint32_t width, uint32_t height);
/** A custom EDID for a display. zkrun: -ENOTSUP. */
int32_t krun_display_set_edid(uint32_t ctx_id, uint32_t display_id, const uint8_t *edid_blob,
                              size_t blob_size);
/** The DPI reported for a display. zkrun: -ENOTSUP. */
int32_t krun_display_set_dpi(uint32_t ctx_id, uint32_t display_id, uint32_t dpi);
/** The physical size reported for a display. zkrun: -ENOTSUP. */
int32_t krun_display_set_physical_size(uint32_t ctx_id, uint32_t display_id, uint16_t width_mm,
                                       uint16_t height_mm);
/** The monitor name in a display's generated EDID. zkrun: -ENOTSUP. */
int32_t krun_display_set_edid_name(uint32_t ctx_id, uint32_t display_id, const char *name);
/** The refresh rate of a display in Hz. zkrun: -ENOTSUP. */
int32_t krun_display_set_refresh_rate(uint32_t ctx_id, uint32_t display_id,
                                      uint32_t refresh_rate);
/** A display backend vtable (libkrun_display.h). zkrun: -ENOTSUP. */
int32_t krun_set_display_backend(uint32_t ctx_id, const void *display_backend,
                                 size_t backend_size);
/** A virtio-input device driven by caller vtables (libkrun_input.h). zkrun: -ENOTSUP. */
int krun_add_input_device(uint32_t ctx_id, const void *config_backend, size_t config_backend_size,
                          const void *events_backend, size_t events_backend_size);
/** A virtio-input device passing through a host /dev/input/ descriptor. zkrun: -ENOTSUP. */
int krun_add_input_device_fd(uint32_t ctx_id, int input_fd);

/* virtio device types accepted by krun_add_vhost_user_device. */
#define KRUN_VIRTIO_DEVICE_CONSOLE 3
#define KRUN_VIRTIO_DEVICE_RNG 4
#define KRUN_VIRTIO_DEVICE_GPU 16
#define KRUN_VIRTIO_DEVICE_RTC 17
#define KRUN_VIRTIO_DEVICE_INPUT 18
#define KRUN_VIRTIO_DEVICE_VSOCK 19
#define KRUN_VIRTIO_DEVICE_SND 25
#define KRUN_VIRTIO_DEVICE_CAN 36

/** A device served by an external vhost-user backend. zkrun: -ENOTSUP. */
int32_t krun_add_vhost_user_device(uint32_t ctx_id,
                                   uint32_t device_type,
                                   const char *socket_path,
                                   const char *name,
                                   uint16_t num_queues,
                                   const uint16_t *queue_sizes);

/** libkrun 1.9-1.19's built-in virtio-snd. zkrun: 0 for "enable" false (no sound device, the
 * default), -ENOTSUP for true. */
int32_t krun_set_snd_device(uint32_t ctx_id, bool enable);

/** Assigns a host PCI function (an open VFIO cdev, /dev/vfio/devices/vfioN) to the guest at
 * bus 0, "device"."function". zkrun has no PCI: -ENOTSUP. */
int32_t krun_add_vfio_device(uint32_t ctx_id, int fd, uint8_t device, uint8_t function);

/* ---- Confidential computing ------------------------------------------------------------- */

/** The TEE configuration file of libkrun-sev / libkrun-tdx. zkrun: -ENOTSUP. */
int32_t krun_set_tee_config_file(uint32_t ctx_id, const char *filepath);

#define KRUN_TEE_FW_TDSHIM 0

/** The TEE firmware (KRUN_TEE_FW_TDSHIM: the TDX shim) of libkrun-tdx. zkrun: -ENOTSUP. */
int32_t krun_set_tee_firmware(uint32_t ctx_id, uint32_t fw_type, const char *fw_path);

/* ---- Running the VM ------------------------------------------------------------------------ */

/**
 * Builds the VM from the context, runs it, and ends the process with the workload's exit
 * status once the guest is down: it never returns on success. The context is consumed either
 * way. A terminal console's settings are restored before the process exits (see "The
 * terminal" above).
 *
 * Process-wide (zkrun): once the VM has started, SIGTERM to the process no longer kills it.
 * The handler krun_start_enter installs passes the signal to the guest, whose init sends
 * SIGTERM to the workload; the process exits with the workload's status when the workload
 * ends (143 if SIGTERM killed it). This is how `crun kill` and `podman stop` reach the
 * workload. libkrun has no such path (SIGTERM's default action ends its VMM at once, or is
 * ignored when the VMM is PID 1 of a container's pid namespace). SIGKILL still ends the
 * process immediately. krun_start (below) changes no signal disposition.
 *
 * Exit statuses set by the guest's init: 125 (init could not set up the guest), 126 (the
 * program exists but could not be executed), 127 (the program was not found).
 *
 * Returns (only on failure, before the guest runs): -ENOENT for an unknown context or a
 * missing kernel; -EINVAL for a configuration that cannot be built or an unusable kernel;
 * -ENODEV when /dev/kvm is missing or unusable; -ENOMEM, -EAGAIN (host resources), -EIO (an
 * unexpected KVM failure), -EPERM when krun_setuid/krun_setgid could not be applied; -EBUSY
 * (without consuming it) for a context krun_start already started.
 */
int32_t krun_start_enter(uint32_t ctx_id);

/**
 * Freezes a running VM (libkrun after 1.19; upstream has it on macOS only, zkrun on KVM): every
 * vCPU leaves the guest at an instruction boundary and waits, the event loop that serves the
 * devices waits too (no device starts new work; a request a device worker already took
 * finishes), and the guest's clock is saved. Returns once all of them wait. Call it from
 * another thread than the one in krun_start_enter / krun_wait. Pausing a paused VM does
 * nothing. krun_stop, krun_free_ctx and the end of the VM work on a paused VM.
 *
 * Returns: 0, -ENOENT for an unknown context or one whose VM does not run (not started, or
 * ended), -EIO when the vCPUs did not stop within 5 s (the VM then runs on).
 */
int32_t krun_vm_pause(uint32_t ctx_id);

/**
 * Lets a VM that krun_vm_pause froze run on. The guest's clock goes on from where the pause
 * stopped it (x86_64: kvmclock, as QEMU's stop/cont), so the paused time does not pass inside
 * the guest and its armed timers do not all fire at once. Resuming a running VM does nothing.
 *
 * Returns: 0, -ENOENT for an unknown context or one whose VM does not run.
 */
int32_t krun_vm_resume(uint32_t ctx_id);

/* ---- zkrun extensions ---------------------------------------------------------------------
 * Not in libkrun. They run a VM inside the calling process without giving the process up, so
 * one process can run several VMs and outlive them. Test for them with dlsym() when the same
 * program must also run on libkrun.
 */

/**
 * Builds and starts the VM of a context. Returns once the VM runs in its own threads. The
 * context stays valid: krun_wait gives its status, krun_stop forces it down, krun_free_ctx
 * releases it. krun_setuid/krun_setgid apply to the whole process here too. The VM is built
 * without holding the process-wide context lock: other contexts stay usable meanwhile, and on
 * this one krun_stop is recorded (the VM stops as soon as it runs) while krun_free_ctx and
 * krun_wait return -EBUSY until krun_start returns.
 *
 * Returns: 0, -EBUSY if the context already started, or the errors of krun_start_enter. On
 * failure the context is left as it was (still configurable).
 */
int32_t krun_start(uint32_t ctx_id);

/**
 * Waits for the VM of a context to end.
 *
 *  "timeout_ms" - how long to wait; a negative value waits forever, 0 only polls.
 *
 * Returns: the exit status, always 0..255 (krun_get_exit_reason says what it means):
 * the workload's exit code as the guest's init reported it; 137 (128 + SIGKILL) when the VM was
 * forced down; 1 after a guest kernel panic, a triple fault or a VMM error; 0 when the guest
 * rebooted or powered off without reporting a code. Or -ETIMEDOUT when the time ran out first,
 * -EINVAL if the context was not started, -EBUSY if another thread is already waiting on it
 * or krun_start is still starting it.
 *
 * Only the guest's init (pid 1) can report a code, and only 0..255: the virtio-fs exit-code
 * ioctl from any other guest process, or with another value, is refused (libkrun takes it from
 * any process, any value).
 */
int32_t krun_wait(uint32_t ctx_id, int32_t timeout_ms);

/**
 * Forces the VM of a context down (its vCPUs stop at once; no orderly guest shutdown). A later
 * krun_wait returns promptly, with status 137 and KRUN_EXIT_REASON_STOPPED unless the guest had
 * already ended. Stopping a VM that already ended does nothing; stopping one that krun_start
 * is still building stops it as soon as it runs.
 *
 * Returns: 0, -ENOENT for an unknown context, -EINVAL if the context was not started.
 */
int32_t krun_stop(uint32_t ctx_id);

/* Exit reasons: krun_get_exit_reason's values. */
/** The VM has not ended, or krun_wait has not returned its status yet. */
#define KRUN_EXIT_REASON_NONE 0
/** The guest's init reported the workload's exit code: the status is that code. */
#define KRUN_EXIT_REASON_EXITED 1
/** The host forced the VM down (krun_stop): status 137. */
#define KRUN_EXIT_REASON_STOPPED 2
/** The guest kernel panicked: status 1. Detected with zkrun's kernel command line (its
 * "reboot=k,panic_warm"); a krun_set_kernel command line without "panic_warm" reports a panic
 * as KRUN_EXIT_REASON_SHUTDOWN. */
#define KRUN_EXIT_REASON_GUEST_PANIC 3
/** A vCPU triple-faulted (the guest crashed past its own handlers): status 1. */
#define KRUN_EXIT_REASON_TRIPLE_FAULT 4
/** The VMM could not go on running the guest (a KVM failure, a failed device loop): status 1. */
#define KRUN_EXIT_REASON_VMM_ERROR 5
/** The guest rebooted or powered off without its init reporting a code (e.g. a guest root
 * rebooting it first, or an init of its own): status 0. */
#define KRUN_EXIT_REASON_SHUTDOWN 6

/**
 * Why the VM of a context ended, once krun_wait has returned its status.
 *
 * Returns: a KRUN_EXIT_REASON_* value (KRUN_EXIT_REASON_NONE before krun_wait returned the
 * status), -ENOENT for an unknown context, -EINVAL if the context was not started, -EBUSY
 * while krun_start is still starting it.
 */
int32_t krun_get_exit_reason(uint32_t ctx_id);

/**
 * Sets the size of the guest's console when that console is a terminal, e.g. a pseudo-terminal
 * the caller opened and gave to krun_add_virtio_console_default (its slave end): the terminal
 * takes the size (TIOCSWINSZ on the console's terminal descriptor) and the guest's console
 * follows at once, as it does on SIGWINCH for the process's own terminal. A pty that is not
 * this process's controlling terminal sends no SIGWINCH, so its owner resizes the guest here.
 * Safe from any thread; the terminal descriptor must stay open while the VM runs (as for any
 * descriptor given to krun_add_virtio_console_default).
 *
 *  "cols", "rows" - the new size, 1..65535 each.
 *
 * Returns: 0; -ENOENT for an unknown context; -EINVAL if the context was not started, the VM
 * has ended (krun_wait returned its status) or a size is 0; -ENOTTY when the VM's console has
 * no terminal; -EIO when the terminal refused the size.
 */
int32_t krun_set_console_size(uint32_t ctx_id, uint16_t cols, uint16_t rows);

/**
 * Cheap counters of a started VM, live while it runs and kept after it ended (until
 * krun_free_ctx). Safe from any thread; costs a mincore() over guest RAM, no lock the VM takes.
 *
 *  "exits_out"          - KVM exits of all vCPUs so far (each I/O, MMIO, halt, ... the guest
 *                         made the host handle).
 *  "resident_bytes_out" - bytes of guest RAM (the kernel's slot included) resident in this
 *                         process now: what the guest costs the host's memory, which the free
 *                         page reporting balloon gives back.
 *
 * Returns: 0; -ENOENT for an unknown context; -EINVAL for a NULL pointer or a context that was
 * not started; -EBUSY while krun_start is still starting it.
 */
int32_t krun_get_stats(uint32_t ctx_id, uint64_t *exits_out, uint64_t *resident_bytes_out);

/**
 * The reason the last failing krun_* call of the calling thread failed: the same text as the
 * error line in the log ("<function>: <why>"), logged or not. Per thread; kept until the next
 * failure on that thread (a successful call leaves it).
 *
 *  "buf"  - where to copy the text, NUL-terminated and cut to "size" bytes (as snprintf); may
 *           be NULL when "size" is 0.
 *  "size" - the size of "buf".
 *
 * Returns: the full length of the text (0 when no call failed on this thread yet).
 */
int32_t krun_last_error(char *buf, size_t size);

/* ---- C string-array convenience ---------------------------------------------------------
 * C does not convert "char **" or "char *const *" (the type of main's argv and of a
 * "char *const envp[]" array) to "const char *const *" without a warning (an error in GCC 14).
 * These macros keep libkrun's prototypes above and only add the cast for exactly those two
 * types; anything else reaches the prototype unchanged, so wrong types are still diagnosed.
 * The function names stay real symbols: (krun_set_exec)(...), &krun_set_exec and dlsym()
 * bypass the macros. Define KRUN_NO_STRV_MACROS to turn them off.
 */
#if !defined(__cplusplus) && !defined(KRUN_NO_STRV_MACROS) && \
    defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define KRUN_STRV_(a) _Generic((a), \
    char **: (const char *const *)(a), \
    char *const *: (const char *const *)(a), \
    default: (a))
#define krun_set_exec(ctx_id, exec_path, argv, envp) \
    krun_set_exec((ctx_id), (exec_path), KRUN_STRV_(argv), KRUN_STRV_(envp))
#define krun_set_env(ctx_id, envp) krun_set_env((ctx_id), KRUN_STRV_(envp))
#define krun_set_rlimits(ctx_id, rlimits) krun_set_rlimits((ctx_id), KRUN_STRV_(rlimits))
#define krun_set_port_map(ctx_id, port_map) krun_set_port_map((ctx_id), KRUN_STRV_(port_map))
#define krun_set_mapped_volumes(ctx_id, volumes) \
    krun_set_mapped_volumes((ctx_id), KRUN_STRV_(volumes))
#define krun_set_smbios_oem_strings(ctx_id, oem_strings) \
    krun_set_smbios_oem_strings((ctx_id), KRUN_STRV_(oem_strings))
#endif

#ifdef __cplusplus
}
#endif

#endif /* _LIBKRUN_H */
