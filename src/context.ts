/**
 * `Context`: one libkrun configuration context, one checked method per `krun_*` function.
 *
 * @module
 */
import { statSync } from "node:fs";
import { Errno, KrunError } from "../ffi/errors.ts";
import { load } from "../ffi/load.ts";
import type { Native } from "../ffi/symbols.ts";
import { bool, fdMax, macAddress, named, ownBytes, u16Max, u64 } from "./context_args.ts";
import {
  DISK_FORMAT,
  type DiskFormat,
  type Env,
  type ExitReason,
  KERNEL_FORMAT,
  type KernelFormat,
  type Mac,
  type PortMap,
  type Rlimits,
  SYNC_MODE,
  type SyncMode,
  type VmStats,
} from "./types.ts";
import {
  check,
  cString,
  cStringArray,
  describe,
  envEntries,
  exitReasons,
  invalid,
  lastError,
  portEntries,
  rlimitEntries,
  status,
  u32Max,
  u8Max,
  uint,
} from "./util.ts";

type PathOp =
  | "krun_set_data_disk"
  | "krun_set_root_disk"
  | "krun_set_gvproxy_path"
  | "krun_set_firmware"
  | "krun_set_tee_config_file"
  | "krun_append_kernel_cmdline"
  | "krun_set_kernel_console";
type U32Op =
  | "krun_set_passt_fd"
  | "krun_set_gpu_options"
  | "krun_add_input_device_fd"
  | "krun_add_vsock"
  | "krun_setuid"
  | "krun_setgid";
type BoolOp = "krun_set_snd_device" | "krun_set_nested_virt" | "krun_split_irqchip";

// Set for the duration of Context.fromId's constructor call only.
let adopting: number | null = null;

// A safety net only: a Context dropped without free()/dispose frees its C context when
// collected (stopping its VM), instead of leaking it for the life of the process.
const leaked = new FinalizationRegistry<{ native: Native; id: number }>(({ native, id }) => {
  native.call.krun_free_ctx(id);
});

/**
 * One libkrun configuration context: a thin, checked wrapper where each method is one
 * `krun_*` call. Use `Vm` unless you need libkrun's exact call sequence.
 */
export class Context implements Disposable {
  #native: Native;
  #id: number;
  #freed = false;
  /** Started (krun_start / krun_start_enter): the library may have consumed the context. */
  #started = false;

  /** Creates a context (`krun_create_ctx`). */
  constructor() {
    this.#native = load();
    if (adopting !== null) {
      this.#id = adopting; // the caller who created it owns it: no safety net
    } else {
      this.#id = check(this.#native.call.krun_create_ctx(), "krun_create_ctx");
      leaked.register(this, { native: this.#native, id: this.#id }, this);
    }
  }

  /** Wraps an existing context id, e.g. one created by C code in the same process. */
  static fromId(id: number): Context {
    uint(id, 0, u32Max, "krun_create_ctx", "context id");
    adopting = id;
    try {
      return new Context();
    } finally {
      adopting = null;
    }
  }

  /** The context id the C API knows it by. */
  get id(): number {
    return this.#id;
  }

  #ctx(op: string): number {
    if (this.#freed) throw new KrunError(op, Errno.ENOENT, `context ${this.#id} was already freed`);
    return this.#id;
  }

  /** vCPUs (1..255) and RAM in MiB (`krun_set_vm_config`). */
  setVmConfig(cpus: number, memoryMiB: number): void {
    const op = "krun_set_vm_config";
    const ctx = this.#ctx(op);
    const n = uint(cpus, 1, u8Max, op, "cpus");
    const mib = uint(memoryMiB, 1, u32Max, op, "memoryMiB");
    check(this.#native.call.krun_set_vm_config(ctx, n, mib), op);
  }

  /**
   * Boots this kernel instead of libkrunfw's (`krun_set_kernel`): a host path, its format,
   * an optional initramfs, and an optional command line that replaces the default one.
   */
  setKernel(path: string, format: KernelFormat = "elf", initramfs?: string, cmdline?: string): void {
    const op = "krun_set_kernel";
    const ctx = this.#ctx(op);
    if (typeof format !== "string" || !Object.hasOwn(KERNEL_FORMAT, format)) {
      throw invalid(
        op,
        `format must be one of ${Object.keys(KERNEL_FORMAT).join(", ")}, got ${describe(format)}`,
      );
    }
    const pathBytes = cString(path, op, "kernel path");
    const initBytes = initramfs === undefined ? null : cString(initramfs, op, "initramfs");
    const cmdBytes = cmdline === undefined ? null : cString(cmdline, op, "cmdline");
    const rc = this.#native.call.krun_set_kernel(ctx, pathBytes, KERNEL_FORMAT[format], initBytes, cmdBytes);
    check(rc, op, [pathBytes, initBytes, cmdBytes]);
  }

  /** The host directory shared as the guest's root filesystem (`krun_set_root`). */
  setRoot(path: string): void {
    const op = "krun_set_root";
    const ctx = this.#ctx(op);
    const bytes = cString(path, op, "root");
    let isDir: boolean;
    try {
      isDir = statSync(path).isDirectory();
    } catch (err) {
      if ((err as { code?: string }).code === "ENOENT") {
        throw new KrunError(op, Errno.ENOENT, `root ${describe(path)} does not exist`);
      }
      throw err; // e.g. Deno's NotCapable without --allow-read: a permission problem, not ours
    }
    if (!isDir) throw new KrunError(op, Errno.ENOTDIR, `root ${describe(path)} is not a directory`);
    check(this.#native.call.krun_set_root(ctx, bytes), op, bytes);
  }

  /**
   * Shares the host directory `path` as a virtio-fs device tagged `tag` (1..36 bytes),
   * read-only if asked (`krun_add_virtiofs3`, no DAX window). The guest mounts it by its tag;
   * zkrun's init does so for each `tag:/dir[:ro]` of a `KRUN_MOUNTS` entry in the exec env.
   */
  addVirtiofs(tag: string, path: string, readOnly: boolean = false): void {
    const op = "krun_add_virtiofs3";
    const ctx = this.#ctx(op);
    const tagBytes = cString(tag, op, "tag");
    const pathBytes = cString(path, op, "path");
    if (typeof readOnly !== "boolean") {
      throw invalid(op, `readOnly must be a boolean, got ${describe(readOnly)}`);
    }
    const rc = this.#native.call.krun_add_virtiofs3(ctx, tagBytes, pathBytes, 0n, readOnly);
    check(rc, op, [tagBytes, pathBytes]);
  }

  /**
   * The program to run in the guest (`krun_set_exec`): its path in the guest, its arguments
   * (without argv[0]) and its environment (default: empty).
   */
  setExec(path: string, args: readonly string[] = [], env: Env = {}): void {
    const op = "krun_set_exec";
    const ctx = this.#ctx(op);
    const pathBytes = cString(path, op, "exec path");
    const argv = cStringArray(this.#native, args, op, "args");
    const entries = envEntries(env, op);
    const envp = entries === null ? null : cStringArray(this.#native, entries, op, "env");
    const rc = this.#native.call.krun_set_exec(ctx, pathBytes, argv.array, envp?.array ?? null);
    check(rc, op, [pathBytes, argv, envp]);
  }

  /** The workload's environment alone (`krun_set_env`). */
  setEnv(env: Env): void {
    const op = "krun_set_env";
    const ctx = this.#ctx(op);
    const entries = envEntries(env, op);
    const envp = entries === null ? null : cStringArray(this.#native, entries, op, "env");
    check(this.#native.call.krun_set_env(ctx, envp?.array ?? null), op, envp);
  }

  /** The workload's working directory, inside the guest (`krun_set_workdir`). */
  setWorkdir(path: string): void {
    const op = "krun_set_workdir";
    const ctx = this.#ctx(op);
    const bytes = cString(path, op, "workdir");
    check(this.#native.call.krun_set_workdir(ctx, bytes), op, bytes);
  }

  /** Resource limits in the guest (`krun_set_rlimits`, as numeric "RES=CUR:MAX" entries). */
  setRlimits(rlimits: Rlimits): void {
    const op = "krun_set_rlimits";
    const ctx = this.#ctx(op);
    const list = cStringArray(this.#native, rlimitEntries(rlimits, op), op, "rlimits");
    check(this.#native.call.krun_set_rlimits(ctx, list.array), op, list);
  }

  /**
   * TSI port forwarding (`krun_set_port_map`, "host:guest" entries): mapped guest ports are
   * exposed at their host ports, unmapped ones stay in the guest; an empty map exposes none.
   * Never calling it exposes every guest listener on the host's loopback, at its own port.
   */
  setPortMap(ports: PortMap): void {
    const op = "krun_set_port_map";
    const ctx = this.#ctx(op);
    const list = cStringArray(this.#native, portEntries(ports, op), op, "ports");
    check(this.#native.call.krun_set_port_map(ctx, list.array), op, list);
  }

  /** Sends the console to a host file instead of this process's terminal (`krun_set_console_output`). */
  setConsoleOutput(path: string): void {
    const op = "krun_set_console_output";
    const ctx = this.#ctx(op);
    const bytes = cString(path, op, "console output path");
    check(this.#native.call.krun_set_console_output(ctx, bytes), op, bytes);
  }

  /** No implicit console (hvc0 on this process's stdin/stdout): only consoles added here (`krun_disable_implicit_console`). */
  disableImplicitConsole(): void {
    const op = "krun_disable_implicit_console";
    check(this.#native.call.krun_disable_implicit_console(this.#ctx(op)), op);
  }

  /**
   * A virtio console on three host fds, which stay yours (`krun_add_virtio_console_default`):
   * a terminal fd is the guest's console; each other fd becomes a port (krun-stdin /
   * krun-stdout / krun-stderr) that init puts on the workload's fd 0/1/2, byte-exact. The VMM
   * writes output without ever blocking: a reader that stops reading stalls the guest's port.
   */
  addVirtioConsoleDefault(inputFd: number, outputFd: number, errFd: number): void {
    const op = "krun_add_virtio_console_default";
    const ctx = this.#ctx(op);
    const fd = (v: number, what: string): number => uint(v, 0, 0x7fff_ffff, op, what);
    const rc = this.#native.call.krun_add_virtio_console_default(
      ctx,
      fd(inputFd, "inputFd"),
      fd(outputFd, "outputFd"),
      fd(errFd, "errFd"),
    );
    check(rc, op);
  }

  // ---- The rest of libkrun.h, one thin checked call each. Features zkrun does not build
  // throw the library's ENOTSUP with its reason; the calls exist so code written for libkrun
  // runs unchanged and learns why.

  /** A disk image as the guest's data disk (`krun_set_data_disk`, libkrun's deprecated form of `addDisk`). */
  setDataDisk(path: string): void {
    this.#path("krun_set_data_disk", path, "disk path");
  }

  /** A disk image as the guest's root device (`krun_set_root_disk`, deprecated upstream). */
  setRootDisk(path: string): void {
    this.#path("krun_set_root_disk", path, "disk path");
  }

  /** A raw disk image as virtio-blk device `blockId` (`krun_add_disk`). */
  addDisk(blockId: string, path: string, readOnly: boolean = false): void {
    const op = "krun_add_disk";
    const ctx = this.#ctx(op);
    const id = cString(blockId, op, "blockId");
    const file = cString(path, op, "disk path");
    check(this.#native.call.krun_add_disk(ctx, id, file, bool(readOnly, op, "readOnly")), op, [id, file]);
  }

  /** A disk image of a given format as device `blockId` (`krun_add_disk2`). */
  addDisk2(blockId: string, path: string, format: DiskFormat, readOnly: boolean = false): void {
    const op = "krun_add_disk2";
    const ctx = this.#ctx(op);
    const id = cString(blockId, op, "blockId");
    const file = cString(path, op, "disk path");
    const fmt = named(DISK_FORMAT, format, op, "format");
    check(this.#native.call.krun_add_disk2(ctx, id, file, fmt, bool(readOnly, op, "readOnly")), op, [
      id,
      file,
    ]);
  }

  /** A disk image with its format, O_DIRECT and flush policy (`krun_add_disk3`). */
  addDisk3(
    blockId: string,
    path: string,
    format: DiskFormat,
    readOnly: boolean,
    directIo: boolean,
    sync: SyncMode,
  ): void {
    const op = "krun_add_disk3";
    const ctx = this.#ctx(op);
    const id = cString(blockId, op, "blockId");
    const file = cString(path, op, "disk path");
    const rc = this.#native.call.krun_add_disk3(
      ctx,
      id,
      file,
      named(DISK_FORMAT, format, op, "format"),
      bool(readOnly, op, "readOnly"),
      bool(directIo, op, "directIo"),
      named(SYNC_MODE, sync, op, "sync"),
    );
    check(rc, op, [id, file]);
  }

  /** Host directories mapped into the guest, as "host:guest" entries (`krun_set_mapped_volumes`). */
  setMappedVolumes(volumes: readonly string[]): void {
    this.#strings("krun_set_mapped_volumes", volumes, "volumes");
  }

  /** A virtio-fs share with a DAX window of `shmSize` bytes (`krun_add_virtiofs2`). */
  addVirtiofs2(tag: string, path: string, shmSize: number | bigint): void {
    this.addVirtiofs3(tag, path, shmSize, false, "krun_add_virtiofs2");
  }

  /** A virtio-fs share with a DAX window, read-only if asked (`krun_add_virtiofs3`). */
  addVirtiofs3(
    tag: string,
    path: string,
    shmSize: number | bigint,
    readOnly: boolean,
    op: "krun_add_virtiofs2" | "krun_add_virtiofs3" = "krun_add_virtiofs3",
  ): void {
    const ctx = this.#ctx(op);
    const tagBytes = cString(tag, op, "tag");
    const pathBytes = cString(path, op, "path");
    const shm = u64(shmSize, op, "shmSize");
    const rc = op === "krun_add_virtiofs2"
      ? this.#native.call.krun_add_virtiofs2(ctx, tagBytes, pathBytes, shm)
      : this.#native.call.krun_add_virtiofs3(ctx, tagBytes, pathBytes, shm, bool(readOnly, op, "readOnly"));
    check(rc, op, [tagBytes, pathBytes]);
  }

  /** virtio-net over a unix stream socket (passt): a path, or a connected fd (`krun_add_net_unixstream`). */
  addNetUnixstream(path: string | null, fd: number, mac: Mac, features: number = 0, flags: number = 0): void {
    this.#net("krun_add_net_unixstream", path, fd, mac, features, flags);
  }

  /** virtio-net over a unix datagram socket (gvproxy, vfkit): a path or an fd (`krun_add_net_unixgram`). */
  addNetUnixgram(path: string | null, fd: number, mac: Mac, features: number = 0, flags: number = 0): void {
    this.#net("krun_add_net_unixgram", path, fd, mac, features, flags);
  }

  #net(
    op: "krun_add_net_unixstream" | "krun_add_net_unixgram",
    path: string | null,
    fd: number,
    mac: Mac,
    features: number,
    flags: number,
  ): void {
    const ctx = this.#ctx(op);
    const pathBytes = path === null ? null : cString(path, op, "path");
    const fdNum = uint(fd, -1, fdMax, op, "fd");
    const macBytes = macAddress(mac, op);
    const f = uint(features, 0, u32Max, op, "features");
    const fl = uint(flags, 0, u32Max, op, "flags");
    check(this.#native.call[op](ctx, pathBytes, fdNum, macBytes, f, fl), op, [pathBytes, macBytes]);
  }

  /** virtio-net on a host tap interface (`krun_add_net_tap`). */
  addNetTap(name: string, mac: Mac, features: number = 0, flags: number = 0): void {
    const op = "krun_add_net_tap";
    const ctx = this.#ctx(op);
    const nameBytes = cString(name, op, "tap name");
    const macBytes = macAddress(mac, op);
    const f = uint(features, 0, u32Max, op, "features");
    const fl = uint(flags, 0, u32Max, op, "flags");
    check(this.#native.call.krun_add_net_tap(ctx, nameBytes, macBytes, f, fl), op, [nameBytes, macBytes]);
  }

  /** virtio-net through passt on this connected fd (`krun_set_passt_fd`). */
  setPasstFd(fd: number): void {
    this.#u32("krun_set_passt_fd", fd, "fd", fdMax);
  }

  /** virtio-net through gvproxy's socket at `path` (`krun_set_gvproxy_path`). */
  setGvproxyPath(path: string): void {
    this.#path("krun_set_gvproxy_path", path, "gvproxy path");
  }

  /** The MAC address of the virtio-net device (`krun_set_net_mac`), e.g. "5a:94:ef:e4:0c:ee". */
  setNetMac(mac: Mac): void {
    const op = "krun_set_net_mac";
    const ctx = this.#ctx(op);
    const bytes = macAddress(mac, op);
    check(this.#native.call.krun_set_net_mac(ctx, bytes), op, bytes);
  }

  /** A virtio-gpu with these virglrenderer flags (`krun_set_gpu_options`). */
  setGpuOptions(virglFlags: number): void {
    this.#u32("krun_set_gpu_options", virglFlags, "virglFlags");
  }

  /** A virtio-gpu with virgl flags and a host-visible window of `shmSize` bytes (`krun_set_gpu_options2`). */
  setGpuOptions2(virglFlags: number, shmSize: number | bigint): void {
    const op = "krun_set_gpu_options2";
    const ctx = this.#ctx(op);
    const flags = uint(virglFlags, 0, u32Max, op, "virglFlags");
    check(this.#native.call.krun_set_gpu_options2(ctx, flags, u64(shmSize, op, "shmSize")), op);
  }

  /** A display of `width`×`height` pixels; returns its id (`krun_add_display`). */
  addDisplay(width: number, height: number): number {
    const op = "krun_add_display";
    const ctx = this.#ctx(op);
    const w = uint(width, 1, u32Max, op, "width");
    return check(this.#native.call.krun_add_display(ctx, w, uint(height, 1, u32Max, op, "height")), op);
  }

  /** A display's EDID blob (`krun_display_set_edid`). */
  displaySetEdid(displayId: number, edid: Uint8Array): void {
    const op = "krun_display_set_edid";
    const ctx = this.#ctx(op);
    const id = uint(displayId, 0, u32Max, op, "displayId");
    const blob = ownBytes(edid, op, "edid");
    check(this.#native.call.krun_display_set_edid(ctx, id, blob, BigInt(blob.length)), op, blob);
  }

  /** A display's DPI (`krun_display_set_dpi`). */
  displaySetDpi(displayId: number, dpi: number): void {
    this.#display("krun_display_set_dpi", displayId, dpi, "dpi");
  }

  /** A display's physical size in millimetres (`krun_display_set_physical_size`). */
  displaySetPhysicalSize(displayId: number, widthMm: number, heightMm: number): void {
    const op = "krun_display_set_physical_size";
    const ctx = this.#ctx(op);
    const id = uint(displayId, 0, u32Max, op, "displayId");
    const w = uint(widthMm, 0, u16Max, op, "widthMm");
    const h = uint(heightMm, 0, u16Max, op, "heightMm");
    check(this.#native.call.krun_display_set_physical_size(ctx, id, w, h), op);
  }

  /** A display's EDID monitor name (`krun_display_set_edid_name`). */
  displaySetEdidName(displayId: number, name: string): void {
    const op = "krun_display_set_edid_name";
    const ctx = this.#ctx(op);
    const id = uint(displayId, 0, u32Max, op, "displayId");
    const bytes = cString(name, op, "name");
    check(this.#native.call.krun_display_set_edid_name(ctx, id, bytes), op, bytes);
  }

  /** A display's refresh rate in Hz (`krun_display_set_refresh_rate`). */
  displaySetRefreshRate(displayId: number, hz: number): void {
    this.#display("krun_display_set_refresh_rate", displayId, hz, "refresh rate");
  }

  #display(
    op: "krun_display_set_dpi" | "krun_display_set_refresh_rate",
    id: number,
    v: number,
    what: string,
  ): void {
    const ctx = this.#ctx(op);
    const display = uint(id, 0, u32Max, op, "displayId");
    check(this.#native.call[op](ctx, display, uint(v, 0, u32Max, op, what)), op);
  }

  /** The display backend: a `krun_display_backend` struct as bytes (`krun_set_display_backend`). */
  setDisplayBackend(backend: Uint8Array): void {
    const op = "krun_set_display_backend";
    const ctx = this.#ctx(op);
    const bytes = ownBytes(backend, op, "backend");
    check(this.#native.call.krun_set_display_backend(ctx, bytes, BigInt(bytes.length)), op, bytes);
  }

  /** An input device from its config and events backend structs as bytes (`krun_add_input_device`). */
  addInputDevice(configBackend: Uint8Array, eventsBackend: Uint8Array): void {
    const op = "krun_add_input_device";
    const ctx = this.#ctx(op);
    const cfg = ownBytes(configBackend, op, "configBackend");
    const ev = ownBytes(eventsBackend, op, "eventsBackend");
    const rc = this.#native.call.krun_add_input_device(ctx, cfg, BigInt(cfg.length), ev, BigInt(ev.length));
    check(rc, op, [cfg, ev]);
  }

  /** An input device passed through from an evdev fd (`krun_add_input_device_fd`). */
  addInputDeviceFd(fd: number): void {
    this.#u32("krun_add_input_device_fd", fd, "fd", fdMax);
  }

  /** A vhost-user device (`KRUN_VIRTIO_DEVICE_*`) served at `socketPath` (`krun_add_vhost_user_device`). */
  addVhostUserDevice(
    deviceType: number,
    socketPath: string,
    name: string,
    queueSizes: readonly number[],
  ): void {
    const op = "krun_add_vhost_user_device";
    const ctx = this.#ctx(op);
    const type = uint(deviceType, 0, u32Max, op, "deviceType");
    const path = cString(socketPath, op, "socketPath");
    const nameBytes = cString(name, op, "name");
    if (!Array.isArray(queueSizes) || queueSizes.length === 0 || queueSizes.length > u16Max) {
      throw invalid(op, `queueSizes must be a non-empty array, got ${describe(queueSizes)}`);
    }
    const sizes = new Uint16Array(queueSizes.map((q, i) => uint(q, 1, u16Max, op, `queueSizes[${i}]`)));
    const rc = this.#native.call.krun_add_vhost_user_device(ctx, type, path, nameBytes, sizes.length, sizes);
    check(rc, op, [path, nameBytes, sizes]);
  }

  /** SMBIOS OEM strings (`krun_set_smbios_oem_strings`). */
  setSmbiosOemStrings(strings: readonly string[]): void {
    this.#strings("krun_set_smbios_oem_strings", strings, "oem strings");
  }

  /** A firmware image to boot (`krun_set_firmware`). */
  setFirmware(path: string): void {
    this.#path("krun_set_firmware", path, "firmware path");
  }

  /** The TEE configuration file (`krun_set_tee_config_file`). */
  setTeeConfigFile(path: string): void {
    this.#path("krun_set_tee_config_file", path, "TEE config path");
  }

  /** The TEE firmware of type `KRUN_TEE_FW_*` (`krun_set_tee_firmware`). */
  setTeeFirmware(type: number, path: string): void {
    const op = "krun_set_tee_firmware";
    const ctx = this.#ctx(op);
    const t = uint(type, 0, u32Max, op, "type");
    const bytes = cString(path, op, "firmware path");
    check(this.#native.call.krun_set_tee_firmware(ctx, t, bytes), op, bytes);
  }

  /** A virtio-snd device (`krun_set_snd_device`). */
  setSndDevice(enable: boolean): void {
    this.#bool("krun_set_snd_device", enable, "enable");
  }

  /** A VFIO device passed through: its fd, PCI device and function numbers (`krun_add_vfio_device`). */
  addVfioDevice(fd: number, device: number, fn: number): void {
    const op = "krun_add_vfio_device";
    const ctx = this.#ctx(op);
    const f = uint(fd, 0, fdMax, op, "fd");
    check(
      this.#native.call.krun_add_vfio_device(
        ctx,
        f,
        uint(device, 0, u8Max, op, "device"),
        uint(fn, 0, u8Max, op, "function"),
      ),
      op,
    );
  }

  /** A guest vsock port connected to the host unix socket at `path` (`krun_add_vsock_port`). */
  addVsockPort(port: number, path: string): void {
    this.addVsockPort2(port, path, false, "krun_add_vsock_port");
  }

  /** A vsock port on a unix socket; `listen`: the host side listens (`krun_add_vsock_port2`). */
  addVsockPort2(
    port: number,
    path: string,
    listen: boolean,
    op: "krun_add_vsock_port" | "krun_add_vsock_port2" = "krun_add_vsock_port2",
  ): void {
    const ctx = this.#ctx(op);
    const p = uint(port, 0, u32Max, op, "port");
    const bytes = cString(path, op, "socket path");
    const rc = op === "krun_add_vsock_port"
      ? this.#native.call.krun_add_vsock_port(ctx, p, bytes)
      : this.#native.call.krun_add_vsock_port2(ctx, p, bytes, bool(listen, op, "listen"));
    check(rc, op, bytes);
  }

  /** A vsock device with these TSI features (`KRUN_TSI_HIJACK_*`) (`krun_add_vsock`). */
  addVsock(tsiFeatures: number): void {
    this.#u32("krun_add_vsock", tsiFeatures, "tsiFeatures");
  }

  /** An eventfd that asks the guest to shut down (`krun_get_shutdown_eventfd`; not on x86_64 Linux). */
  getShutdownEventfd(): number {
    const op = "krun_get_shutdown_eventfd";
    return check(this.#native.call.krun_get_shutdown_eventfd(this.#ctx(op)), op);
  }

  /** The uid this process takes at start (`krun_setuid`: the whole process's). */
  setuid(uid: number): void {
    this.#u32("krun_setuid", uid, "uid");
  }

  /** The gid this process takes at start (`krun_setgid`: the whole process's). */
  setgid(gid: number): void {
    this.#u32("krun_setgid", gid, "gid");
  }

  /** Asks for nested virtualization in the guest (`krun_set_nested_virt`). */
  setNestedVirt(enabled: boolean): void {
    this.#bool("krun_set_nested_virt", enabled, "enabled");
  }

  /** A split irqchip (`krun_split_irqchip`). */
  splitIrqchip(enable: boolean): void {
    this.#bool("krun_split_irqchip", enable, "enable");
  }

  /** No implicit init: the root must bring its own /init.krun (`krun_disable_implicit_init`). */
  disableImplicitInit(): void {
    const op = "krun_disable_implicit_init";
    check(this.#native.call.krun_disable_implicit_init(this.#ctx(op)), op);
  }

  /** No implicit vsock device (`krun_disable_implicit_vsock`). */
  disableImplicitVsock(): void {
    const op = "krun_disable_implicit_vsock";
    check(this.#native.call.krun_disable_implicit_vsock(this.#ctx(op)), op);
  }

  /** A file the guest sees in share `tag` at `path`, served from memory (`krun_fs_add_overlay_file`). */
  fsAddOverlayFile(
    tag: string,
    path: string,
    data: Uint8Array,
    mode: number = 0o644,
    oneShot: boolean = false,
  ): void {
    const op = "krun_fs_add_overlay_file";
    const ctx = this.#ctx(op);
    const tagBytes = cString(tag, op, "tag");
    const pathBytes = cString(path, op, "path");
    const bytes = ownBytes(data, op, "data");
    const m = uint(mode, 0, 0o7777, op, "mode");
    const rc = this.#native.call.krun_fs_add_overlay_file(
      ctx,
      tagBytes,
      pathBytes,
      bytes,
      BigInt(bytes.length),
      m,
      bool(oneShot, op, "oneShot"),
    );
    check(rc, op, [tagBytes, pathBytes, bytes]);
  }

  /** A directory the guest sees in share `tag` at `path` (`krun_fs_add_overlay_dir`). */
  fsAddOverlayDir(tag: string, path: string, mode: number = 0o755): void {
    const op = "krun_fs_add_overlay_dir";
    const ctx = this.#ctx(op);
    const tagBytes = cString(tag, op, "tag");
    const pathBytes = cString(path, op, "path");
    const m = uint(mode, 0, 0o7777, op, "mode");
    check(this.#native.call.krun_fs_add_overlay_dir(ctx, tagBytes, pathBytes, m), op, [tagBytes, pathBytes]);
  }

  /** Appends one argument to the kernel command line (`krun_append_kernel_cmdline`). */
  appendKernelCmdline(arg: string): void {
    this.#path("krun_append_kernel_cmdline", arg, "argument");
  }

  /** The kernel's `console=` (default "hvc0") (`krun_set_kernel_console`). */
  setKernelConsole(consoleId: string): void {
    this.#path("krun_set_kernel_console", consoleId, "console id");
  }

  /** A legacy serial console on two fds (`krun_add_serial_console_default`). */
  addSerialConsoleDefault(inputFd: number, outputFd: number): void {
    const op = "krun_add_serial_console_default";
    const ctx = this.#ctx(op);
    const i = uint(inputFd, 0, fdMax, op, "inputFd");
    check(
      this.#native.call.krun_add_serial_console_default(ctx, i, uint(outputFd, 0, fdMax, op, "outputFd")),
      op,
    );
  }

  /** An empty multiport virtio console; returns its console id (`krun_add_virtio_console_multiport`). */
  addVirtioConsoleMultiport(): number {
    const op = "krun_add_virtio_console_multiport";
    return check(this.#native.call.krun_add_virtio_console_multiport(this.#ctx(op)), op);
  }

  /** A terminal port named `name` on a multiport console (`krun_add_console_port_tty`). */
  addConsolePortTty(consoleId: number, name: string, ttyFd: number): void {
    const op = "krun_add_console_port_tty";
    const ctx = this.#ctx(op);
    const id = uint(consoleId, 0, u32Max, op, "consoleId");
    const bytes = cString(name, op, "name");
    check(
      this.#native.call.krun_add_console_port_tty(ctx, id, bytes, uint(ttyFd, 0, fdMax, op, "ttyFd")),
      op,
      bytes,
    );
  }

  /** A data port named `name` on a multiport console (`krun_add_console_port_inout`). */
  addConsolePortInout(consoleId: number, name: string, inputFd: number, outputFd: number): void {
    const op = "krun_add_console_port_inout";
    const ctx = this.#ctx(op);
    const id = uint(consoleId, 0, u32Max, op, "consoleId");
    const bytes = cString(name, op, "name");
    const i = uint(inputFd, -1, fdMax, op, "inputFd");
    const o = uint(outputFd, -1, fdMax, op, "outputFd");
    check(this.#native.call.krun_add_console_port_inout(ctx, id, bytes, i, o), op, bytes);
  }

  /** After boot, remount the root from a block `device` (`krun_set_root_disk_remount`). */
  setRootDiskRemount(device: string, fstype?: string, options?: string): void {
    const op = "krun_set_root_disk_remount";
    const ctx = this.#ctx(op);
    const dev = cString(device, op, "device");
    const fs = fstype === undefined ? null : cString(fstype, op, "fstype");
    const opts = options === undefined ? null : cString(options, op, "options");
    check(this.#native.call.krun_set_root_disk_remount(ctx, dev, fs, opts), op, [dev, fs, opts]);
  }

  #path(op: PathOp, value: string, what: string): void {
    const ctx = this.#ctx(op);
    const bytes = cString(value, op, what);
    check(this.#native.call[op](ctx, bytes), op, bytes);
  }

  #strings(
    op: "krun_set_mapped_volumes" | "krun_set_smbios_oem_strings",
    values: readonly string[],
    what: string,
  ): void {
    const ctx = this.#ctx(op);
    const list = cStringArray(this.#native, values, op, what);
    check(this.#native.call[op](ctx, list.array), op, list);
  }

  #u32(op: U32Op, value: number, what: string, max: number = u32Max): void {
    const ctx = this.#ctx(op);
    check(this.#native.call[op](ctx, uint(value, 0, max, op, what)), op);
  }

  #bool(op: BoolOp, value: boolean, what: string): void {
    const ctx = this.#ctx(op);
    check(this.#native.call[op](ctx, bool(value, op, what)), op);
  }

  /** Boots the VM in the library's own threads and returns (`krun_start`). */
  start(): void {
    const op = "krun_start";
    const ctx = this.#ctx(op);
    check(this.#native.call.krun_start(ctx), op);
    this.#started = true;
  }

  /**
   * Blocks this thread up to `timeoutMs` (negative: forever) for the guest's exit status
   * (`krun_wait`); null if it is still running.
   */
  wait(timeoutMs: number = -1): number | null {
    const op = "krun_wait";
    const ctx = this.#ctx(op);
    const t = typeof timeoutMs === "number" && timeoutMs < 0
      ? -1
      : uint(timeoutMs, 0, 0x7fff_ffff, op, "timeoutMs");
    const rc = this.#native.call.krun_wait(ctx, t);
    if (rc === -Errno.ETIMEDOUT) return null;
    return status(check(rc, op), op);
  }

  /** Resolves with the guest's exit status without blocking the JS thread (`krun_wait`). */
  async waitAsync(): Promise<number> {
    const op = "krun_wait";
    const rc = await this.#native.waitAsync(this.#ctx(op));
    // Not check(): under Deno the call ran on another thread, whose krun_last_error this one
    // cannot read.
    if (rc === -Errno.EBUSY) {
      throw new KrunError(op, -rc, "another wait is pending, or the VM is still starting");
    }
    if (rc < 0) throw new KrunError(op, -rc);
    return status(rc, op);
  }

  /**
   * Why the VM ended (`krun_get_exit_reason`), once a wait returned its status; null before.
   */
  exitReason(): ExitReason | null {
    const op = "krun_get_exit_reason";
    const rc = check(this.#native.call.krun_get_exit_reason(this.#ctx(op)), op);
    const reason = exitReasons[rc];
    if (reason === undefined) throw new KrunError(op, Errno.EIO, `unknown exit reason ${rc}`);
    return reason;
  }

  /**
   * Freezes a running VM (`krun_vm_pause`): vCPUs and device service wait, the guest clock is
   * saved. Returns once the guest is frozen; pausing a paused VM does nothing.
   */
  pause(): void {
    const op = "krun_vm_pause";
    check(this.#native.call.krun_vm_pause(this.#ctx(op)), op);
  }

  /** Lets a paused VM run on, its clock where the pause left it (`krun_vm_resume`). */
  resume(): void {
    const op = "krun_vm_resume";
    check(this.#native.call.krun_vm_resume(this.#ctx(op)), op);
  }

  /** Forces a started VM down (`krun_stop`); its wait then returns. */
  stop(): void {
    const op = "krun_stop";
    check(this.#native.call.krun_stop(this.#ctx(op)), op);
  }

  /**
   * Resizes the guest's console when it is a terminal, e.g. a pty given to
   * `addVirtioConsoleDefault` (`krun_set_console_size`, a zkrun extension): the terminal takes
   * the size and the guest sees the resize at once. ENOTTY when the console is no terminal.
   *
   * @example
   * ```ts ignore
   * ctx.setConsoleSize(120, 40);
   * ```
   */
  setConsoleSize(cols: number, rows: number): void {
    const op = "krun_set_console_size";
    const c = uint(cols, 1, 0xffff, op, "cols");
    const r = uint(rows, 1, 0xffff, op, "rows");
    check(this.#native.call.krun_set_console_size(this.#ctx(op), c, r), op);
  }

  /**
   * Cheap counters of a started VM, live while it runs (`krun_get_stats`, a zkrun extension).
   *
   * @example
   * ```ts ignore
   * const { exits, residentBytes } = ctx.stats();
   * ```
   */
  stats(): VmStats {
    const op = "krun_get_stats";
    const exits = new BigUint64Array(1);
    const resident = new BigUint64Array(1);
    check(this.#native.call.krun_get_stats(this.#ctx(op), exits, resident), op);
    return { exits: Number(exits[0]), residentBytes: Number(resident[0]) };
  }

  /**
   * libkrun's own start (`krun_start_enter`): on success it never returns and the process
   * exits with the guest's status. It returns only to throw the reason it could not start.
   */
  startEnter(): never {
    const op = "krun_start_enter";
    const ctx = this.#ctx(op);
    this.#started = true; // libkrun consumes the context even when it fails
    const rc = this.#native.call.krun_start_enter(ctx);
    throw new KrunError(op, rc < 0 ? -rc : Errno.EINVAL, rc < 0 ? lastError(op) : `returned ${rc}`);
  }

  /**
   * Frees the context (`krun_free_ctx`), stopping its VM if one runs; idempotent. EBUSY while
   * a `waitAsync()` is pending: stop the VM and await that first (`Vm` does this for you).
   */
  free(): void {
    if (this.#freed) return;
    const rc = this.#native.call.krun_free_ctx(this.#id);
    // krun_start_enter consumes the context even when it fails: ENOENT then is not an error.
    if (rc !== -Errno.ENOENT || !this.#started) check(rc, "krun_free_ctx");
    this.#freed = true;
    leaked.unregister(this);
  }

  /** Same as `free()`. */
  [Symbol.dispose](): void {
    this.free();
  }
}
