/**
 * `Context`: one libkrun configuration context, one checked method per `krun_*` function. It
 * is the last of a chain of layers, each in its own file and each a documented class:
 * `ContextBase` (context_base.ts: the C context, `id`, `free()`) → `ContextStorage`
 * (context_storage.ts: root, virtio-fs, disks) → `ContextNetwork` (context_network.ts: net,
 * port map, vsock) → `ContextDevices` (context_devices.ts: consoles, GPU, input, ...) →
 * `Context` (here: the machine, its kernel, the workload, and running it).
 *
 * @module
 */
import { Errno, KrunError } from "../ffi/errors.ts";
import { adopt, live, markStarted, setBool, setPath, setStrings, setU32 } from "./context_base.ts";
import { ContextDevices } from "./context_devices.ts";
import {
  type Env,
  type ExitReason,
  KERNEL_FORMAT,
  type KernelFormat,
  type Rlimits,
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
  rlimitEntries,
  status,
  u32Max,
  u8Max,
  uint,
} from "./util.ts";

/**
 * One libkrun configuration context: a thin, checked wrapper where each method is one
 * `krun_*` call. Use `Vm` unless you need libkrun's exact call sequence.
 *
 * The setters of the guest's storage, network and other devices are inherited from
 * `ContextStorage`, `ContextNetwork` and `ContextDevices`; `id` and `free()` from
 * `ContextBase`.
 */
export class Context extends ContextDevices {
  /** Creates a context (`krun_create_ctx`). */
  constructor() {
    super();
  }

  /** Wraps an existing context id, e.g. one created by C code in the same process. */
  static fromId(id: number): Context {
    return adopt(id, () => new Context());
  }

  /** vCPUs (1..255) and RAM in MiB (`krun_set_vm_config`). */
  setVmConfig(cpus: number, memoryMiB: number): void {
    const op = "krun_set_vm_config";
    const { native, ctx } = live(this, op);
    const n = uint(cpus, 1, u8Max, op, "cpus");
    const mib = uint(memoryMiB, 1, u32Max, op, "memoryMiB");
    check(native.call.krun_set_vm_config(ctx, n, mib), op);
  }

  /**
   * Boots this kernel instead of libkrunfw's (`krun_set_kernel`): a host path, its format,
   * an optional initramfs, and an optional command line that replaces the default one.
   */
  setKernel(path: string, format: KernelFormat = "elf", initramfs?: string, cmdline?: string): void {
    const op = "krun_set_kernel";
    const { native, ctx } = live(this, op);
    if (typeof format !== "string" || !Object.hasOwn(KERNEL_FORMAT, format)) {
      throw invalid(
        op,
        `format must be one of ${Object.keys(KERNEL_FORMAT).join(", ")}, got ${describe(format)}`,
      );
    }
    const pathBytes = cString(path, op, "kernel path");
    const initBytes = initramfs === undefined ? null : cString(initramfs, op, "initramfs");
    const cmdBytes = cmdline === undefined ? null : cString(cmdline, op, "cmdline");
    const rc = native.call.krun_set_kernel(ctx, pathBytes, KERNEL_FORMAT[format], initBytes, cmdBytes);
    check(rc, op, [pathBytes, initBytes, cmdBytes]);
  }

  /** Appends one argument to the kernel command line (`krun_append_kernel_cmdline`). */
  appendKernelCmdline(arg: string): void {
    setPath(this, "krun_append_kernel_cmdline", arg, "argument");
  }

  /** The kernel's `console=` (default "hvc0") (`krun_set_kernel_console`). */
  setKernelConsole(consoleId: string): void {
    setPath(this, "krun_set_kernel_console", consoleId, "console id");
  }

  /** A firmware image to boot (`krun_set_firmware`). */
  setFirmware(path: string): void {
    setPath(this, "krun_set_firmware", path, "firmware path");
  }

  /** The TEE configuration file (`krun_set_tee_config_file`). */
  setTeeConfigFile(path: string): void {
    setPath(this, "krun_set_tee_config_file", path, "TEE config path");
  }

  /** The TEE firmware of type `KRUN_TEE_FW_*` (`krun_set_tee_firmware`). */
  setTeeFirmware(type: number, path: string): void {
    const op = "krun_set_tee_firmware";
    const { native, ctx } = live(this, op);
    const t = uint(type, 0, u32Max, op, "type");
    const bytes = cString(path, op, "firmware path");
    check(native.call.krun_set_tee_firmware(ctx, t, bytes), op, bytes);
  }

  /** SMBIOS OEM strings (`krun_set_smbios_oem_strings`). */
  setSmbiosOemStrings(strings: readonly string[]): void {
    setStrings(this, "krun_set_smbios_oem_strings", strings, "oem strings");
  }

  /** Asks for nested virtualization in the guest (`krun_set_nested_virt`). */
  setNestedVirt(enabled: boolean): void {
    setBool(this, "krun_set_nested_virt", enabled, "enabled");
  }

  /** A split irqchip (`krun_split_irqchip`). */
  splitIrqchip(enable: boolean): void {
    setBool(this, "krun_split_irqchip", enable, "enable");
  }

  /**
   * The program to run in the guest (`krun_set_exec`): its path in the guest, its arguments
   * (without argv[0]) and its environment (default: empty).
   */
  setExec(path: string, args: readonly string[] = [], env: Env = {}): void {
    const op = "krun_set_exec";
    const { native, ctx } = live(this, op);
    const pathBytes = cString(path, op, "exec path");
    const argv = cStringArray(native, args, op, "args");
    const entries = envEntries(env, op);
    const envp = entries === null ? null : cStringArray(native, entries, op, "env");
    const rc = native.call.krun_set_exec(ctx, pathBytes, argv.array, envp?.array ?? null);
    check(rc, op, [pathBytes, argv, envp]);
  }

  /** The workload's environment alone (`krun_set_env`). */
  setEnv(env: Env): void {
    const op = "krun_set_env";
    const { native, ctx } = live(this, op);
    const entries = envEntries(env, op);
    const envp = entries === null ? null : cStringArray(native, entries, op, "env");
    check(native.call.krun_set_env(ctx, envp?.array ?? null), op, envp);
  }

  /** The workload's working directory, inside the guest (`krun_set_workdir`). */
  setWorkdir(path: string): void {
    const op = "krun_set_workdir";
    const { native, ctx } = live(this, op);
    const bytes = cString(path, op, "workdir");
    check(native.call.krun_set_workdir(ctx, bytes), op, bytes);
  }

  /** Resource limits in the guest (`krun_set_rlimits`, as numeric "RES=CUR:MAX" entries). */
  setRlimits(rlimits: Rlimits): void {
    const op = "krun_set_rlimits";
    const { native, ctx } = live(this, op);
    const list = cStringArray(native, rlimitEntries(rlimits, op), op, "rlimits");
    check(native.call.krun_set_rlimits(ctx, list.array), op, list);
  }

  /** The uid this process takes at start (`krun_setuid`: the whole process's). */
  setuid(uid: number): void {
    setU32(this, "krun_setuid", uid, "uid");
  }

  /** The gid this process takes at start (`krun_setgid`: the whole process's). */
  setgid(gid: number): void {
    setU32(this, "krun_setgid", gid, "gid");
  }

  /** No implicit init: the root must bring its own /init.krun (`krun_disable_implicit_init`). */
  disableImplicitInit(): void {
    const op = "krun_disable_implicit_init";
    const { native, ctx } = live(this, op);
    check(native.call.krun_disable_implicit_init(ctx), op);
  }

  /** An eventfd that asks the guest to shut down (`krun_get_shutdown_eventfd`; not on x86_64 Linux). */
  getShutdownEventfd(): number {
    const op = "krun_get_shutdown_eventfd";
    const { native, ctx } = live(this, op);
    return check(native.call.krun_get_shutdown_eventfd(ctx), op);
  }

  /** Boots the VM in the library's own threads and returns (`krun_start`). */
  start(): void {
    const op = "krun_start";
    const { native, ctx } = live(this, op);
    check(native.call.krun_start(ctx), op);
    markStarted(this);
  }

  /**
   * Blocks this thread up to `timeoutMs` (negative: forever) for the guest's exit status
   * (`krun_wait`); null if it is still running.
   */
  wait(timeoutMs: number = -1): number | null {
    const op = "krun_wait";
    const { native, ctx } = live(this, op);
    const t = typeof timeoutMs === "number" && timeoutMs < 0
      ? -1
      : uint(timeoutMs, 0, 0x7fff_ffff, op, "timeoutMs");
    const rc = native.call.krun_wait(ctx, t);
    if (rc === -Errno.ETIMEDOUT) return null;
    return status(check(rc, op), op);
  }

  /** Resolves with the guest's exit status without blocking the JS thread (`krun_wait`). */
  async waitAsync(): Promise<number> {
    const op = "krun_wait";
    const { native, ctx } = live(this, op);
    const rc = await native.waitAsync(ctx);
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
    const { native, ctx } = live(this, op);
    const rc = check(native.call.krun_get_exit_reason(ctx), op);
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
    const { native, ctx } = live(this, op);
    check(native.call.krun_vm_pause(ctx), op);
  }

  /** Lets a paused VM run on, its clock where the pause left it (`krun_vm_resume`). */
  resume(): void {
    const op = "krun_vm_resume";
    const { native, ctx } = live(this, op);
    check(native.call.krun_vm_resume(ctx), op);
  }

  /** Forces a started VM down (`krun_stop`); its wait then returns. */
  stop(): void {
    const op = "krun_stop";
    const { native, ctx } = live(this, op);
    check(native.call.krun_stop(ctx), op);
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
    const { native, ctx } = live(this, op);
    const c = uint(cols, 1, 0xffff, op, "cols");
    const r = uint(rows, 1, 0xffff, op, "rows");
    check(native.call.krun_set_console_size(ctx, c, r), op);
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
    const { native, ctx } = live(this, op);
    const exits = new BigUint64Array(1);
    const resident = new BigUint64Array(1);
    check(native.call.krun_get_stats(ctx, exits, resident), op);
    return { exits: Number(exits[0]), residentBytes: Number(resident[0]) };
  }

  /**
   * libkrun's own start (`krun_start_enter`): on success it never returns and the process
   * exits with the guest's status. It returns only to throw the reason it could not start.
   */
  startEnter(): never {
    const op = "krun_start_enter";
    const { native, ctx } = live(this, op);
    markStarted(this); // libkrun consumes the context even when it fails
    const rc = native.call.krun_start_enter(ctx);
    throw new KrunError(op, rc < 0 ? -rc : Errno.EINVAL, rc < 0 ? lastError(op) : `returned ${rc}`);
  }
}
