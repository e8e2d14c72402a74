/**
 * The one description of libkrun.so.1's C ABI as seen from TypeScript: every exported
 * `krun_*` function (libkrun 1.x's 74 plus zkrun's `krun_start`/`krun_wait`/`krun_stop`/
 * `krun_get_exit_reason`/`krun_last_error`/`krun_set_console_size`/`krun_get_stats`), with
 * its C signature beside it. Runtime-neutral: ffi/deno.ts and ffi/bun.ts turn it into
 * `Deno.dlopen` / `bun:ffi` tables. tests/native/ts-symbols.sh checks it against the
 * library's exports (`nm -D`) and include/libkrun.h so the three cannot drift.
 *
 * Every `krun_*` copies the strings and arrays it is given before it returns, so a JS buffer
 * only has to live for the duration of one call.
 *
 * @module
 */

/** How one C parameter travels: fixed-width integers, `bool`, or a pointer to JS memory. */
export type Kind = "u8" | "u16" | "u32" | "i32" | "u64" | "usize" | "bool" | "ptr";

/** One C function: parameter kinds in order, the result (a 32- or 64-bit integer). */
export interface CSpec {
  readonly parameters: readonly Kind[];
  readonly result: "i32" | "i64";
  /**
   * May block for long (krun_wait, read, write): Deno binds it to run on its blocking thread
   * pool (krun_wait as a second `__nonblocking` entry beside its synchronous one); bun:ffi has
   * no such calls (bun.ts polls krun_wait and streams through `Bun.file`).
   */
  readonly mayBlock?: boolean;
}

/** One libkrun function: every krun_* returns `int32_t`. */
export interface SymbolSpec extends CSpec {
  readonly result: "i32";
}

/** The table. Order follows libkrun.h; zkrun's extensions come last. */
export const symbols = {
  // int32_t krun_set_log_level(uint32_t level);
  krun_set_log_level: { parameters: ["u32"], result: "i32" },
  // int32_t krun_init_log(int target_fd, uint32_t level, uint32_t style, uint32_t options);
  krun_init_log: { parameters: ["i32", "u32", "u32", "u32"], result: "i32" },
  // int32_t krun_create_ctx(void);
  krun_create_ctx: { parameters: [], result: "i32" },
  // int32_t krun_free_ctx(uint32_t ctx_id);
  krun_free_ctx: { parameters: ["u32"], result: "i32" },
  // int32_t krun_set_vm_config(uint32_t ctx_id, uint8_t num_vcpus, uint32_t ram_mib);
  krun_set_vm_config: { parameters: ["u32", "u8", "u32"], result: "i32" },
  // int32_t krun_set_root(uint32_t ctx_id, const char *root_path);
  krun_set_root: { parameters: ["u32", "ptr"], result: "i32" },
  // int32_t krun_set_root_disk(uint32_t ctx_id, const char *disk_path);
  krun_set_root_disk: { parameters: ["u32", "ptr"], result: "i32" },
  // int32_t krun_set_data_disk(uint32_t ctx_id, const char *disk_path);
  krun_set_data_disk: { parameters: ["u32", "ptr"], result: "i32" },
  // int32_t krun_add_disk(uint32_t ctx_id, const char *block_id, const char *disk_path, bool read_only);
  krun_add_disk: { parameters: ["u32", "ptr", "ptr", "bool"], result: "i32" },
  // int32_t krun_add_disk2(uint32_t ctx_id, const char *block_id, const char *disk_path,
  //                        uint32_t disk_format, bool read_only);
  krun_add_disk2: { parameters: ["u32", "ptr", "ptr", "u32", "bool"], result: "i32" },
  // int32_t krun_add_disk3(uint32_t ctx_id, const char *block_id, const char *disk_path,
  //                        uint32_t disk_format, bool read_only, bool direct_io, uint32_t sync_mode);
  krun_add_disk3: {
    parameters: ["u32", "ptr", "ptr", "u32", "bool", "bool", "u32"],
    result: "i32",
  },
  // int32_t krun_set_mapped_volumes(uint32_t ctx_id, const char *const mapped_volumes[]);
  krun_set_mapped_volumes: { parameters: ["u32", "ptr"], result: "i32" },
  // int32_t krun_add_virtiofs(uint32_t ctx_id, const char *c_tag, const char *c_path);
  krun_add_virtiofs: { parameters: ["u32", "ptr", "ptr"], result: "i32" },
  // int32_t krun_add_virtiofs2(uint32_t ctx_id, const char *c_tag, const char *c_path, uint64_t shm_size);
  krun_add_virtiofs2: { parameters: ["u32", "ptr", "ptr", "u64"], result: "i32" },
  // int32_t krun_add_virtiofs3(uint32_t ctx_id, const char *c_tag, const char *c_path,
  //                            uint64_t shm_size, bool read_only);
  krun_add_virtiofs3: { parameters: ["u32", "ptr", "ptr", "u64", "bool"], result: "i32" },
  // int32_t krun_add_net_unixstream(uint32_t ctx_id, const char *c_path, int fd,
  //                                 uint8_t *const c_mac, uint32_t features, uint32_t flags);
  krun_add_net_unixstream: {
    parameters: ["u32", "ptr", "i32", "ptr", "u32", "u32"],
    result: "i32",
  },
  // int32_t krun_add_net_unixgram(uint32_t ctx_id, const char *c_path, int fd,
  //                               uint8_t *const c_mac, uint32_t features, uint32_t flags);
  krun_add_net_unixgram: {
    parameters: ["u32", "ptr", "i32", "ptr", "u32", "u32"],
    result: "i32",
  },
  // int32_t krun_add_net_tap(uint32_t ctx_id, char *c_tap_name, uint8_t *const c_mac,
  //                          uint32_t features, uint32_t flags);
  krun_add_net_tap: { parameters: ["u32", "ptr", "ptr", "u32", "u32"], result: "i32" },
  // int32_t krun_set_passt_fd(uint32_t ctx_id, int fd);
  krun_set_passt_fd: { parameters: ["u32", "i32"], result: "i32" },
  // int32_t krun_set_gvproxy_path(uint32_t ctx_id, char *c_path);
  krun_set_gvproxy_path: { parameters: ["u32", "ptr"], result: "i32" },
  // int32_t krun_set_net_mac(uint32_t ctx_id, uint8_t *const c_mac);
  krun_set_net_mac: { parameters: ["u32", "ptr"], result: "i32" },
  // int32_t krun_set_port_map(uint32_t ctx_id, const char *const port_map[]);
  krun_set_port_map: { parameters: ["u32", "ptr"], result: "i32" },
  // int32_t krun_set_gpu_options(uint32_t ctx_id, uint32_t virgl_flags);
  krun_set_gpu_options: { parameters: ["u32", "u32"], result: "i32" },
  // int32_t krun_set_gpu_options2(uint32_t ctx_id, uint32_t virgl_flags, uint64_t shm_size);
  krun_set_gpu_options2: { parameters: ["u32", "u32", "u64"], result: "i32" },
  // int32_t krun_add_display(uint32_t ctx_id, uint32_t width, uint32_t height);
  krun_add_display: { parameters: ["u32", "u32", "u32"], result: "i32" },
  // int32_t krun_display_set_edid(uint32_t ctx_id, uint32_t display_id,
  //                               const uint8_t *edid_blob, size_t blob_size);
  krun_display_set_edid: { parameters: ["u32", "u32", "ptr", "usize"], result: "i32" },
  // int32_t krun_display_set_dpi(uint32_t ctx_id, uint32_t display_id, uint32_t dpi);
  krun_display_set_dpi: { parameters: ["u32", "u32", "u32"], result: "i32" },
  // int32_t krun_display_set_physical_size(uint32_t ctx_id, uint32_t display_id,
  //                                        uint16_t width_mm, uint16_t height_mm);
  krun_display_set_physical_size: { parameters: ["u32", "u32", "u16", "u16"], result: "i32" },
  // int32_t krun_display_set_edid_name(uint32_t ctx_id, uint32_t display_id, const char *name);
  krun_display_set_edid_name: { parameters: ["u32", "u32", "ptr"], result: "i32" },
  // int32_t krun_display_set_refresh_rate(uint32_t ctx_id, uint32_t display_id, uint32_t refresh_rate);
  krun_display_set_refresh_rate: { parameters: ["u32", "u32", "u32"], result: "i32" },
  // int32_t krun_set_display_backend(uint32_t ctx_id, const void *display_backend, size_t backend_size);
  krun_set_display_backend: { parameters: ["u32", "ptr", "usize"], result: "i32" },
  // int krun_add_input_device(uint32_t ctx_id, const void *config_backend, size_t config_backend_size,
  //                           const void *events_backend, size_t events_backend_size);
  krun_add_input_device: { parameters: ["u32", "ptr", "usize", "ptr", "usize"], result: "i32" },
  // int krun_add_input_device_fd(uint32_t ctx_id, int input_fd);
  krun_add_input_device_fd: { parameters: ["u32", "i32"], result: "i32" },
  // int32_t krun_add_vhost_user_device(uint32_t ctx_id, uint32_t device_type, const char *socket_path,
  //                                    const char *name, uint16_t num_queues, const uint16_t *queue_sizes);
  krun_add_vhost_user_device: {
    parameters: ["u32", "u32", "ptr", "ptr", "u16", "ptr"],
    result: "i32",
  },
  // int32_t krun_set_rlimits(uint32_t ctx_id, const char *const rlimits[]);
  krun_set_rlimits: { parameters: ["u32", "ptr"], result: "i32" },
  // int32_t krun_set_smbios_oem_strings(uint32_t ctx_id, const char *const oem_strings[]);
  krun_set_smbios_oem_strings: { parameters: ["u32", "ptr"], result: "i32" },
  // int32_t krun_set_workdir(uint32_t ctx_id, const char *workdir_path);
  krun_set_workdir: { parameters: ["u32", "ptr"], result: "i32" },
  // int32_t krun_set_exec(uint32_t ctx_id, const char *exec_path,
  //                       const char *const argv[], const char *const envp[]);
  krun_set_exec: { parameters: ["u32", "ptr", "ptr", "ptr"], result: "i32" },
  // int32_t krun_set_firmware(uint32_t ctx_id, const char *firmware_path);
  krun_set_firmware: { parameters: ["u32", "ptr"], result: "i32" },
  // int32_t krun_set_kernel(uint32_t ctx_id, const char *kernel_path, uint32_t kernel_format,
  //                         const char *initramfs, const char *cmdline);
  krun_set_kernel: { parameters: ["u32", "ptr", "u32", "ptr", "ptr"], result: "i32" },
  // int32_t krun_set_env(uint32_t ctx_id, const char *const envp[]);
  krun_set_env: { parameters: ["u32", "ptr"], result: "i32" },
  // int32_t krun_set_tee_config_file(uint32_t ctx_id, const char *filepath);
  krun_set_tee_config_file: { parameters: ["u32", "ptr"], result: "i32" },
  // int32_t krun_set_tee_firmware(uint32_t ctx_id, uint32_t fw_type, const char *fw_path);
  krun_set_tee_firmware: { parameters: ["u32", "u32", "ptr"], result: "i32" },
  // int32_t krun_set_snd_device(uint32_t ctx_id, bool enable);
  krun_set_snd_device: { parameters: ["u32", "bool"], result: "i32" },
  // int32_t krun_add_vfio_device(uint32_t ctx_id, int fd, uint8_t device, uint8_t function);
  krun_add_vfio_device: { parameters: ["u32", "i32", "u8", "u8"], result: "i32" },
  // int32_t krun_add_vsock_port(uint32_t ctx_id, uint32_t port, const char *c_filepath);
  krun_add_vsock_port: { parameters: ["u32", "u32", "ptr"], result: "i32" },
  // int32_t krun_add_vsock_port2(uint32_t ctx_id, uint32_t port, const char *c_filepath, bool listen);
  krun_add_vsock_port2: { parameters: ["u32", "u32", "ptr", "bool"], result: "i32" },
  // int32_t krun_add_vsock(uint32_t ctx_id, uint32_t tsi_features);
  krun_add_vsock: { parameters: ["u32", "u32"], result: "i32" },
  // int32_t krun_get_shutdown_eventfd(uint32_t ctx_id);
  krun_get_shutdown_eventfd: { parameters: ["u32"], result: "i32" },
  // int32_t krun_set_console_output(uint32_t ctx_id, const char *c_filepath);
  krun_set_console_output: { parameters: ["u32", "ptr"], result: "i32" },
  // int32_t krun_setuid(uint32_t ctx_id, uid_t uid);
  krun_setuid: { parameters: ["u32", "u32"], result: "i32" },
  // int32_t krun_setgid(uint32_t ctx_id, gid_t gid);
  krun_setgid: { parameters: ["u32", "u32"], result: "i32" },
  // int32_t krun_set_nested_virt(uint32_t ctx_id, bool enabled);
  krun_set_nested_virt: { parameters: ["u32", "bool"], result: "i32" },
  // int32_t krun_check_nested_virt(void);
  krun_check_nested_virt: { parameters: [], result: "i32" },
  // int32_t krun_has_feature(uint64_t feature);
  krun_has_feature: { parameters: ["u64"], result: "i32" },
  // int32_t krun_get_max_vcpus(void);
  krun_get_max_vcpus: { parameters: [], result: "i32" },
  // int32_t krun_split_irqchip(uint32_t ctx_id, bool enable);
  krun_split_irqchip: { parameters: ["u32", "bool"], result: "i32" },
  // int32_t krun_disable_implicit_console(uint32_t ctx_id);
  krun_disable_implicit_console: { parameters: ["u32"], result: "i32" },
  // int32_t krun_disable_implicit_init(uint32_t ctx_id);
  krun_disable_implicit_init: { parameters: ["u32"], result: "i32" },
  // int32_t krun_get_default_init(const uint8_t **data_out, size_t *len_out);
  krun_get_default_init: { parameters: ["ptr", "ptr"], result: "i32" },
  // int32_t krun_fs_add_overlay_file(uint32_t ctx_id, const char *fs_tag, const char *path,
  //                                  const uint8_t *data, size_t data_len, uint32_t mode, bool one_shot);
  krun_fs_add_overlay_file: {
    parameters: ["u32", "ptr", "ptr", "ptr", "usize", "u32", "bool"],
    result: "i32",
  },
  // int32_t krun_fs_add_overlay_dir(uint32_t ctx_id, const char *fs_tag, const char *path, uint32_t mode);
  krun_fs_add_overlay_dir: { parameters: ["u32", "ptr", "ptr", "u32"], result: "i32" },
  // int32_t krun_disable_implicit_vsock(uint32_t ctx_id);
  krun_disable_implicit_vsock: { parameters: ["u32"], result: "i32" },
  // int32_t krun_append_kernel_cmdline(uint32_t ctx_id, const char *arg);
  krun_append_kernel_cmdline: { parameters: ["u32", "ptr"], result: "i32" },
  // int32_t krun_set_kernel_console(uint32_t ctx_id, const char *console_id);
  krun_set_kernel_console: { parameters: ["u32", "ptr"], result: "i32" },
  // int32_t krun_add_virtio_console_default(uint32_t ctx_id, int input_fd, int output_fd, int err_fd);
  krun_add_virtio_console_default: { parameters: ["u32", "i32", "i32", "i32"], result: "i32" },
  // int32_t krun_add_serial_console_default(uint32_t ctx_id, int input_fd, int output_fd);
  krun_add_serial_console_default: { parameters: ["u32", "i32", "i32"], result: "i32" },
  // int32_t krun_add_virtio_console_multiport(uint32_t ctx_id);
  krun_add_virtio_console_multiport: { parameters: ["u32"], result: "i32" },
  // int32_t krun_add_console_port_tty(uint32_t ctx_id, uint32_t console_id, const char *name, int tty_fd);
  krun_add_console_port_tty: { parameters: ["u32", "u32", "ptr", "i32"], result: "i32" },
  // int32_t krun_add_console_port_inout(uint32_t ctx_id, uint32_t console_id, const char *name,
  //                                     int input_fd, int output_fd);
  krun_add_console_port_inout: { parameters: ["u32", "u32", "ptr", "i32", "i32"], result: "i32" },
  // int32_t krun_set_root_disk_remount(uint32_t ctx_id, const char *device,
  //                                    const char *fstype, const char *options);
  krun_set_root_disk_remount: { parameters: ["u32", "ptr", "ptr", "ptr"], result: "i32" },
  // int32_t krun_start_enter(uint32_t ctx_id);  never returns on success: the process exits.
  krun_start_enter: { parameters: ["u32"], result: "i32" },
  // int32_t krun_vm_pause(uint32_t ctx_id);  freezes a running VM (from another thread).
  krun_vm_pause: { parameters: ["u32"], result: "i32" },
  // int32_t krun_vm_resume(uint32_t ctx_id);  lets a paused VM run on.
  krun_vm_resume: { parameters: ["u32"], result: "i32" },

  // zkrun extensions: run a VM without giving it the process.
  // int32_t krun_start(uint32_t ctx_id);  returns once the VM runs in its own threads.
  krun_start: { parameters: ["u32"], result: "i32" },
  // int32_t krun_wait(uint32_t ctx_id, int32_t timeout_ms);  exit status >= 0 or -ETIMEDOUT;
  // timeout_ms < 0 waits forever.
  krun_wait: { parameters: ["u32", "i32"], result: "i32", mayBlock: true },
  // int32_t krun_stop(uint32_t ctx_id);  forces the VM down.
  krun_stop: { parameters: ["u32"], result: "i32" },
  // int32_t krun_get_exit_reason(uint32_t ctx_id);  KRUN_EXIT_REASON_* once krun_wait returned.
  krun_get_exit_reason: { parameters: ["u32"], result: "i32" },
  // int32_t krun_last_error(char *buf, size_t size);  this thread's last failure text, as snprintf.
  krun_last_error: { parameters: ["ptr", "usize"], result: "i32" },
  // int32_t krun_set_console_size(uint32_t ctx_id, uint16_t cols, uint16_t rows);  a terminal
  // console's size (a caller's pty, which no SIGWINCH resizes).
  krun_set_console_size: { parameters: ["u32", "u16", "u16"], result: "i32" },
  // int32_t krun_get_stats(uint32_t ctx_id, uint64_t *exits_out, uint64_t *resident_bytes_out);
  krun_get_stats: { parameters: ["u32", "ptr", "ptr"], result: "i32" },
} as const satisfies Record<string, SymbolSpec>;

/**
 * libkrunfw.so.5, the guest kernel libkrun dlopens by soname at start. The loader opens it
 * first from beside libkrun.so.1 (or LIBKRUNFW_PATH), so that soname lookup finds it loaded.
 */
export const firmwareSymbols = {
  // int krunfw_get_version(void);  the ABI version: 5
  krunfw_get_version: { parameters: [], result: "i32" },
} as const satisfies Record<string, SymbolSpec>;

/**
 * The few libc functions the console streams need (libc.so.6, loaded by soname): pipe2, open,
 * close, read/write (Deno calls these two on its blocking thread pool), and for a tty spawn's
 * pty posix_openpt, unlockpt, ptsname_r, ioctl and fcntl.
 */
export const libcSymbols = {
  // int pipe2(int pipefd[2], int flags);
  pipe2: { parameters: ["ptr", "i32"], result: "i32" },
  // int open(const char *path, int flags, ...);
  open: { parameters: ["ptr", "i32", "u32"], result: "i32" },
  // int close(int fd);
  close: { parameters: ["i32"], result: "i32" },
  // ssize_t read(int fd, void *buf, size_t count);
  read: { parameters: ["i32", "ptr", "usize"], result: "i64", mayBlock: true },
  // ssize_t write(int fd, const void *buf, size_t count);
  write: { parameters: ["i32", "ptr", "usize"], result: "i64", mayBlock: true },
  // int posix_openpt(int flags);  a pty master (spawn's tty mode).
  posix_openpt: { parameters: ["i32"], result: "i32" },
  // int unlockpt(int fd);
  unlockpt: { parameters: ["i32"], result: "i32" },
  // int ptsname_r(int fd, char *buf, size_t buflen);
  ptsname_r: { parameters: ["i32", "ptr", "usize"], result: "i32" },
  // int ioctl(int fd, unsigned long request, ...);  TIOCSWINSZ with a struct winsize *.
  ioctl: { parameters: ["i32", "u64", "ptr"], result: "i32" },
  // int fcntl(int fd, int cmd, ...);  F_DUPFD_CLOEXEC with an int.
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
} as const satisfies Record<string, CSpec>;

/** Linux open(2)/pipe2(2) flags the streams use. */
export const O_RDWR = 0o2;
/** Close on exec: a child process the embedder spawns must not hold a console pipe open. */
export const O_CLOEXEC = 0o2000000;
/** Not this process's controlling terminal: the pty is the guest's, not ours. */
export const O_NOCTTY = 0o400;
const TIOCSWINSZ = 0x5414n;
const F_DUPFD_CLOEXEC = 1030;

/** Names of every exported function. */
export type SymbolName = keyof typeof symbols;

/** Memory handed to C for one call: a typed array over a plain ArrayBuffer, or NULL. */
export type Pointer =
  | Uint8Array<ArrayBuffer>
  | Uint16Array<ArrayBuffer>
  | BigUint64Array<ArrayBuffer>
  | null;

/** The JS value each kind takes. Pass u64 as a bigint: Deno's fast path wants one (a number costs ~20x). */
export type JsOf<K extends Kind> = K extends "u64" | "usize" ? number | bigint
  : K extends "bool" ? boolean
  : K extends "ptr" ? Pointer
  : number;

type Params<T extends readonly Kind[]> = { -readonly [I in keyof T]: JsOf<T[I]> };

/** A typed synchronous call for every symbol. */
export type Calls = {
  readonly [N in SymbolName]: (
    ...args: Params<(typeof symbols)[N]["parameters"]>
  ) => number;
};

/** What an adapter gives the rest of the code: nothing here names a runtime. */
export interface Native {
  /** "deno" or "bun", for messages and benchmarks only. */
  readonly runtime: string;
  /** What was passed to dlopen. */
  readonly path: string;
  /** Every krun_* as a synchronous call. */
  readonly call: Calls;
  /**
   * krun_wait(ctx, -1) without blocking the JS thread. Deno: a `nonblocking` call on
   * Deno's blocking thread pool. Bun: krun_wait(ctx, 0) polled from a timer.
   */
  waitAsync(ctxId: number): Promise<number>;
  /** The address of a buffer, for building `const char *const[]` arrays. */
  address(buffer: Uint8Array<ArrayBuffer>): bigint;
  /** A copy of `length` bytes the library owns at `address`. */
  copy(address: bigint, length: number): Uint8Array;
  /** Unloads the library; every call after this is invalid. */
  close(): void;
  /** The host fds and streams `Vm.spawn()` wires the guest's console ports to. */
  readonly io: HostIo;
}

/**
 * Pipes and their JS streams, for the console ports of `Vm.spawn()`. Every fd is O_CLOEXEC and
 * blocking (the VMM keeps its own non-blocking handle on the ends it gets); none of these
 * block the JS thread: Deno reads and writes on its blocking thread pool (`nonblocking` FFI
 * calls), Bun through `Bun.file(fd)`, which polls (a pty through a node:fs stream).
 */
export interface HostIo {
  /** pipe2(O_CLOEXEC): [read end, write end]. */
  pipe(): [number, number];
  /** An O_CLOEXEC fd on /dev/null, read-write. */
  devNull(): number;
  /** close(2). */
  close(fd: number): void;
  /**
   * A pseudo-terminal of this size, O_CLOEXEC and not this process's controlling terminal:
   * [master, a second fd on the master, slave].
   */
  pty(cols: number, rows: number): [number, number, number];
  /**
   * A stream of what `fd` reads until end of file; closes `fd` at its end or cancel. It reads
   * ahead of its consumer up to `readAhead` bytes.
   */
  readable(fd: number, chunkSize: number, readAhead: number): ReadableStream<Uint8Array>;
  /** A stream writing to `fd`; closes `fd` on close or abort. */
  writable(fd: number): WritableStream<Uint8Array>;
}

/** The libc calls both adapters bind the same way (see `libcSymbols`). */
export interface LibcFds {
  pipe2(fds: Int32Array, flags: number): number;
  open(path: Uint8Array, flags: number, mode: number): number;
  close(fd: number): number;
  posix_openpt(flags: number): number;
  unlockpt(fd: number): number;
  ptsname_r(fd: number, buf: Uint8Array, size: number | bigint): number;
  ioctl(fd: number, request: number | bigint, arg: Uint16Array): number;
  fcntl(fd: number, cmd: number, arg: number): number;
}

/**
 * How a runtime turns an fd into a JS stream; `finish` closes the fd once (and says whether
 * this call did), to be called when the stream ends, is cancelled or aborted.
 */
export interface FdStreams {
  readable(
    fd: number,
    finish: () => boolean,
    chunkSize: number,
    readAhead: number,
  ): ReadableStream<Uint8Array>;
  writable(fd: number, finish: () => boolean): WritableStream<Uint8Array>;
}

/**
 * `HostIo` over an adapter's bound libc calls and its streams: the fd calls are the same in
 * both runtimes, only the streams differ.
 */
export function fdIo(libc: LibcFds, streams: FdStreams): HostIo {
  const closer = (fd: number): () => boolean => {
    let open = true;
    return (): boolean => {
      if (open) libc.close(fd);
      const was = open;
      open = false;
      return was;
    };
  };
  return {
    pty(cols: number, rows: number): [number, number, number] {
      const master = libc.posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
      if (master < 0) throw new Error("posix_openpt failed (no /dev/ptmx, or out of ptys?)");
      const opened = [master];
      try {
        const name = new Uint8Array(64);
        if (libc.unlockpt(master) !== 0 || libc.ptsname_r(master, name, BigInt(name.length)) !== 0) {
          throw new Error("unlockpt/ptsname_r failed on a new pty");
        }
        const size = new Uint16Array([rows, cols, 0, 0]); // struct winsize
        if (libc.ioctl(master, TIOCSWINSZ, size) !== 0) throw new Error("TIOCSWINSZ failed on a new pty");
        const second = libc.fcntl(master, F_DUPFD_CLOEXEC, 0);
        if (second < 0) throw new Error("fcntl(F_DUPFD_CLOEXEC) failed (out of file descriptors?)");
        opened.push(second);
        const slave = libc.open(name.subarray(0, name.indexOf(0) + 1), O_RDWR | O_NOCTTY | O_CLOEXEC, 0);
        if (slave < 0) throw new Error("cannot open the new pty's slave");
        return [master, second, slave];
      } catch (err) {
        for (const fd of opened) libc.close(fd);
        throw err;
      }
    },
    pipe(): [number, number] {
      const fds = new Int32Array(2);
      if (libc.pipe2(fds, O_CLOEXEC) !== 0) throw new Error("pipe2 failed (out of file descriptors?)");
      return [fds[0], fds[1]];
    },
    devNull(): number {
      const fd = libc.open(new TextEncoder().encode("/dev/null\0"), O_RDWR | O_CLOEXEC, 0);
      if (fd < 0) throw new Error("cannot open /dev/null");
      return fd;
    },
    close(fd: number): void {
      libc.close(fd);
    },
    readable(fd: number, chunkSize: number, readAhead: number): ReadableStream<Uint8Array> {
      return streams.readable(fd, closer(fd), chunkSize, readAhead);
    },
    writable(fd: number): WritableStream<Uint8Array> {
      return streams.writable(fd, closer(fd));
    },
  };
}

/** An adapter: the only code that knows a runtime's FFI. */
export interface Adapter {
  /** True when this runtime is the one running. */
  readonly present: boolean;
  /** dlopen the library at `path` (a file path or a soname) with the whole table. */
  open(path: string): Native;
  /**
   * dlopen another library (libc.so.6, libkrunfw) with a table of `CSpec`s, for good; its calls by
   * name. A `mayBlock` call returns a Promise under Deno (its blocking thread pool) and its
   * result directly under Bun.
   */
  openTable(
    path: string,
    specs: Readonly<Record<string, CSpec>>,
  ): Record<string, (...args: never[]) => unknown>;
}
