/**
 * zkrun for Deno and Bun: run a program in a KVM microVM, typed, without reading libkrun.h.
 *
 * ```ts
 * import { Vm } from "@zkrun/zkrun";
 *
 * await using vm = new Vm({
 *   cpus: 2,
 *   memoryMiB: 512,
 *   root: "./rootfs",
 *   exec: { path: "/bin/sh", args: ["-c", "echo hi; exit 3"], env: { A: "1" } },
 * });
 * const { status, reason, output } = await vm.run(); // 3, "exited", "hi\n": the process carries on
 * ```
 *
 * `vm.startEnter()` is libkrun's own model instead: the process becomes the VM and exits with
 * the guest's status. `Context` is the thin layer under `Vm`: one method per `krun_*` setter.
 *
 * Every input is checked here before it reaches C (types, ranges, NUL bytes, lone
 * surrogates); failures are `KrunError`s carrying `errno`, `code` ("EINVAL") and `op`
 * ("krun_set_vm_config"), the same shape as the library's own `-errno` returns, and in their
 * message the library's reason (`krun_last_error`).
 *
 * The library is found through `LIBKRUN_PATH` (a full path; when set, only it is tried), else
 * this project's `zig-out/lib/libkrun.so.1`, else the system's `libkrun.so.1`.
 *
 * @module
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { Errno, errnoCode, KrunError, KrunLibraryError } from "./ffi/errors.ts";
import { envOrUndefined, firmwarePath, load } from "./ffi/load.ts";
import type { Native } from "./ffi/symbols.ts";

export { Errno, errnoCode, KrunError, KrunLibraryError };

const u8Max = 0xff;
const u32Max = 0xffff_ffff;
const portMax = 0xffff;
/** libkrun reads NULL-terminated string arrays up to 4096 entries, the NULL included. */
const arrayEntriesMax = 4095;
/** RLIM_INFINITY on Linux: what "unlimited" becomes. */
const rlimInfinity = 0xffff_ffff_ffff_ffffn;
const logLevelMax = 5;

/** Linux resource numbers (`RLIMIT_*` in <sys/resource.h>) by name, as krun_set_rlimits wants them. */
export const RLIMIT: Readonly<
  {
    CPU: 0;
    FSIZE: 1;
    DATA: 2;
    STACK: 3;
    CORE: 4;
    RSS: 5;
    NPROC: 6;
    NOFILE: 7;
    MEMLOCK: 8;
    AS: 9;
    LOCKS: 10;
    SIGPENDING: 11;
    MSGQUEUE: 12;
    NICE: 13;
    RTPRIO: 14;
    RTTIME: 15;
  }
> = Object.freeze({
  CPU: 0,
  FSIZE: 1,
  DATA: 2,
  STACK: 3,
  CORE: 4,
  RSS: 5,
  NPROC: 6,
  NOFILE: 7,
  MEMLOCK: 8,
  AS: 9,
  LOCKS: 10,
  SIGPENDING: 11,
  MSGQUEUE: 12,
  NICE: 13,
  RTPRIO: 14,
  RTTIME: 15,
});

/** A resource name, e.g. "NOFILE". */
export type RlimitName = keyof typeof RLIMIT;
/** One limit: a non-negative integer, or "unlimited" (also `Infinity`). */
export type RlimitValue = number | bigint | "unlimited";
/** Resource limits set in the guest before the workload starts: name → [soft, hard]. */
export type Rlimits = { readonly [N in RlimitName]?: readonly [RlimitValue, RlimitValue] };
/** TSI port forwarding: host port → guest port, e.g. `{ 8080: 80 }`. */
export type PortMap = { readonly [hostPort: number]: number };
/** Kernel file formats `krun_set_kernel` knows (`KRUN_KERNEL_FORMAT_*`); zkrun loads "elf" and "raw". */
export const KERNEL_FORMAT: Readonly<
  { raw: 0; elf: 1; pe_gz: 2; image_bz2: 3; image_gz: 4; image_zstd: 5 }
> = Object.freeze({ raw: 0, elf: 1, pe_gz: 2, image_bz2: 3, image_gz: 4, image_zstd: 5 });
/** A kernel file format name, e.g. "elf". */
export type KernelFormat = keyof typeof KERNEL_FORMAT;
/** The workload's environment: exactly these variables, or "inherit" for the host's. */
export type Env = { readonly [name: string]: string } | "inherit";

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") return JSON.stringify(value.length > 40 ? value.slice(0, 40) + "…" : value);
  if (typeof value === "object") return "an object";
  return `${typeof value} ${String(value)}`;
}

function invalid(op: string, detail: string): KrunError {
  return new KrunError(op, Errno.EINVAL, detail);
}

/** Throws for a negative return, with the library's reason; passes a non-negative one through. */
function check(rc: number, op: string, _keepAlive?: unknown): number {
  // _keepAlive is evaluated after the call, so the buffers it names outlive the C call.
  if (rc < 0) throw new KrunError(op, -rc, lastError(op));
  return rc;
}

const lastErrorMax = 512;

/**
 * Why the last failing call on this thread failed (`krun_last_error`), without the "op: "
 * prefix the message already has; "" if the library has no reason. Only for synchronous
 * calls: the text is per thread, and Deno runs nonblocking calls on other threads.
 */
function lastError(op: string): string {
  const buf = new Uint8Array(lastErrorMax);
  const n = load().call.krun_last_error(buf, BigInt(buf.length));
  if (n <= 0) return "";
  const text = decoder.decode(buf.subarray(0, Math.min(n, buf.length - 1)));
  return text.startsWith(`${op}: `) ? text.slice(op.length + 2) : text;
}

/** An exit status from krun_wait: 0..255, anything else is a library bug, never a status. */
function status(rc: number, op: string): number {
  if (rc > 255) throw new KrunError(op, Errno.EIO, `exit status ${rc} is out of range 0..255`);
  return rc;
}

/** Why a VM ended (`krun_get_exit_reason`; the KRUN_EXIT_REASON_* values of libkrun.h). */
export type ExitReason = "exited" | "stopped" | "guest-panic" | "triple-fault" | "vmm-error" | "shutdown";

const exitReasons: readonly (ExitReason | null)[] = [
  null, // KRUN_EXIT_REASON_NONE: not ended / not waited on
  "exited",
  "stopped",
  "guest-panic",
  "triple-fault",
  "vmm-error",
  "shutdown",
];

function uint(value: unknown, min: number, max: number, op: string, what: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw invalid(op, `${what} must be an integer in ${min}..${max}, got ${describe(value)}`);
  }
  return value;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** `value` if it is a string C can take: no NUL byte, no lone surrogate (not UTF-8 encodable). */
function cText(value: unknown, op: string, what: string): string {
  if (typeof value !== "string") throw invalid(op, `${what} must be a string, got ${describe(value)}`);
  if (value.includes("\0")) throw invalid(op, `${what} contains a NUL byte`);
  if (!value.isWellFormed()) throw invalid(op, `${what} is not valid Unicode (lone surrogate)`);
  return value;
}

/** A NUL-terminated UTF-8 copy of `value` in its own ArrayBuffer (which V8 never moves). */
function cString(value: unknown, op: string, what: string): Uint8Array<ArrayBuffer> {
  const text = cText(value, op, what);
  const bytes = new Uint8Array(new ArrayBuffer(text.length * 3 + 1)); // UTF-8 ≤ 3 bytes per UTF-16 unit
  encoder.encodeInto(text, bytes);
  return bytes;
}

/** A `const char *const[]`: the pointer array and the one buffer holding every string. */
interface CStringArray {
  array: BigUint64Array<ArrayBuffer>;
  keep: Uint8Array<ArrayBuffer>;
}

function cStringArray(native: Native, values: unknown, op: string, what: string): CStringArray {
  if (!Array.isArray(values)) {
    throw invalid(op, `${what} must be an array of strings, got ${describe(values)}`);
  }
  if (values.length > arrayEntriesMax) {
    throw new KrunError(op, Errno.E2BIG, `${what} has ${values.length} entries (max ${arrayEntriesMax})`);
  }
  const texts = values.map((v, i) => cText(v, op, `${what}[${i}]`));
  // All strings in one zeroed buffer, so one address lookup serves them all (Deno's costs µs).
  const keep = new Uint8Array(new ArrayBuffer(texts.reduce((n, t) => n + t.length * 3 + 1, 1)));
  const array = new BigUint64Array(new ArrayBuffer(8 * (texts.length + 1))); // ends in NULL
  if (texts.length === 0) return { array, keep };
  const base = native.address(keep);
  let offset = 0;
  texts.forEach((text, i) => {
    array[i] = base + BigInt(offset);
    offset += encoder.encodeInto(text, keep.subarray(offset)).written + 1; // the zero after it is its NUL
  });
  return { array, keep };
}

function envEntries(env: unknown, op: string): string[] | null {
  if (env === "inherit") return null; // NULL envp: libkrun copies the host environment
  if (typeof env !== "object" || env === null || Array.isArray(env)) {
    throw invalid(op, `env must be an object of strings or "inherit", got ${describe(env)}`);
  }
  return Object.entries(env).map(([name, value]) => {
    if (name === "" || name.includes("=")) {
      throw invalid(op, `env name ${describe(name)} is empty or contains "="`);
    }
    if (typeof value !== "string") throw invalid(op, `env ${name} must be a string, got ${describe(value)}`);
    return `${name}=${value}`;
  });
}

function rlimitValue(value: unknown, op: string, what: string): bigint {
  if (value === "unlimited" || value === Infinity) return rlimInfinity;
  if (typeof value === "bigint" && value >= 0n && value <= rlimInfinity) return value;
  if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) return BigInt(value);
  throw invalid(op, `${what} must be a non-negative integer or "unlimited", got ${describe(value)}`);
}

function rlimitEntries(rlimits: unknown, op: string): string[] {
  if (typeof rlimits !== "object" || rlimits === null || Array.isArray(rlimits)) {
    throw invalid(op, `rlimits must be an object like { NOFILE: [1024, 4096] }, got ${describe(rlimits)}`);
  }
  return Object.entries(rlimits).map(([name, pair]) => {
    if (!Object.hasOwn(RLIMIT, name)) {
      throw invalid(op, `unknown rlimit ${describe(name)}; known: ${Object.keys(RLIMIT).join(", ")}`);
    }
    if (!Array.isArray(pair) || pair.length !== 2) {
      throw invalid(op, `rlimit ${name} must be [soft, hard], got ${describe(pair)}`);
    }
    const soft = rlimitValue(pair[0], op, `rlimit ${name} soft`);
    const hard = rlimitValue(pair[1], op, `rlimit ${name} hard`);
    if (soft > hard) throw invalid(op, `rlimit ${name}: soft ${soft} exceeds hard ${hard}`);
    return `${RLIMIT[name as RlimitName]}=${soft}:${hard}`;
  });
}

function portEntries(ports: unknown, op: string): string[] {
  if (typeof ports !== "object" || ports === null || Array.isArray(ports)) {
    throw invalid(op, `ports must be an object like { 8080: 80 }, got ${describe(ports)}`);
  }
  const guests = new Set<number>();
  return Object.entries(ports).map(([host, guest]) => {
    if (!/^[0-9]+$/.test(host)) throw invalid(op, `host port ${describe(host)} is not a number`);
    uint(Number(host), 1, portMax, op, "host port");
    uint(guest, 1, portMax, op, `guest port for host port ${host}`);
    if (guests.has(guest)) throw invalid(op, `guest port ${guest} is mapped twice`);
    guests.add(guest);
    return `${host}:${guest}`;
  });
}

/** Which library was loaded, and by which runtime. */
export interface LibraryInfo {
  /** What was passed to dlopen: a path, or the soname "libkrun.so.1". */
  readonly path: string;
  /** "deno" or "bun". */
  readonly runtime: string;
  /** The libkrunfw.so.5 loaded with it (beside it, or LIBKRUNFW_PATH); null: the system's, at start. */
  readonly firmware: string | null;
}

/**
 * Loads libkrun.so.1 now (it is otherwise loaded by the first `Vm` or `Context`). `path`
 * replaces the search. Throws `KrunLibraryError`, naming every place tried, if it fails.
 */
export function loadLibrary(path?: string): LibraryInfo {
  if (path !== undefined) cString(path, "dlopen", "library path");
  const native = load(path);
  return { path: native.path, runtime: native.runtime, firmware: firmwarePath() };
}

/** The most vCPUs this host's KVM gives one VM (`krun_get_max_vcpus`). */
export function maxVcpus(): number {
  return check(load().call.krun_get_max_vcpus(), "krun_get_max_vcpus");
}

/** The library's log verbosity, 0 (off) to 5 (trace), for the whole process (`krun_set_log_level`). */
export function setLogLevel(level: number): void {
  const op = "krun_set_log_level";
  check(load().call.krun_set_log_level(uint(level, 0, logLevelMax, op, "level")), op);
}

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
   * TSI port forwarding (`krun_set_port_map`, "host:guest" entries). Never calling it exposes
   * every guest listener; an empty map exposes none.
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

  /** Forces a started VM down (`krun_stop`); its wait then returns. */
  stop(): void {
    const op = "krun_stop";
    check(this.#native.call.krun_stop(this.#ctx(op)), op);
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

/** The program a `Vm` runs. */
export interface ExecOptions {
  /** Its path inside the guest, e.g. "/bin/sh". */
  readonly path: string;
  /** Its arguments, without argv[0]. */
  readonly args?: readonly string[];
  /** Its environment: exactly these variables (default none), or "inherit" for the host's. */
  readonly env?: Env;
}

/** A kernel of your own instead of the bundled one (`krun_set_kernel`). */
export interface KernelOptions {
  /** Host path of the kernel file. */
  readonly path: string;
  /** Its format (default "elf"). */
  readonly format?: KernelFormat;
  /** Host path of an initramfs. */
  readonly initramfs?: string;
  /** A kernel command line that replaces the default one. */
  readonly cmdline?: string;
}

/** What a `Vm` is made of. Only `root` and `exec` are required. */
export interface VmOptions {
  /** vCPUs, 1..255 (default 1). */
  readonly cpus?: number;
  /** RAM in MiB (default 128). */
  readonly memoryMiB?: number;
  /** Host directory that becomes the guest's root filesystem. */
  readonly root: string;
  /** The program to run. */
  readonly exec: ExecOptions;
  /** Working directory inside the guest. */
  readonly workdir?: string;
  /** Resource limits, e.g. `{ NOFILE: [1024, 4096] }`. */
  readonly rlimits?: Rlimits;
  /** Host port → guest port over TSI, e.g. `{ 8080: 80 }`. Unset: every guest listener. */
  readonly ports?: PortMap;
  /** Boot this kernel instead of the bundled libkrunfw one. */
  readonly kernel?: KernelOptions;
}

/** How `run()` treats the guest's console. */
export interface RunOptions {
  /**
   * "capture" (default): collect it and return it. "inherit": it goes to this process's
   * stdout as it comes (and the VM's console takes stdin).
   */
  readonly output?: "capture" | "inherit";
  /** Stop the VM and reject with ETIMEDOUT after this many milliseconds. */
  readonly timeoutMs?: number;
}

/** What a finished `run()` gives back. */
export interface RunResult {
  /**
   * The exit status, 0..255: the workload's own with reason "exited" (125..127: init could not
   * set up / exec / find it); 137 when stopped; 1 after a guest panic, triple fault or VMM
   * error; 0 for "shutdown" (the guest rebooted without reporting a code).
   */
  readonly status: number;
  /** Why the VM ended: "exited" is the only reason whose status is the workload's. */
  readonly reason: ExitReason;
  /** The console output as text, line ends as the workload wrote them ("" with output "inherit"). */
  readonly output: string;
  /** The console output as the guest's terminal sent it (line ends "\r\n"). */
  readonly outputBytes: Uint8Array;
}

/** Where a `Vm` is in its life: it runs once. */
export type VmState = "ready" | "running" | "exited" | "disposed";

const vmOptionKeys = new Set(["cpus", "memoryMiB", "root", "exec", "workdir", "rlimits", "ports", "kernel"]);
const execOptionKeys = new Set(["path", "args", "env"]);
const kernelOptionKeys = new Set(["path", "format", "initramfs", "cmdline"]);

function checkKeys(value: unknown, allowed: Set<string>, what: string): void {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw invalid("new Vm", `${what} must be an object, got ${describe(value)}`);
  }
  for (const key of Object.keys(value)) {
    if (!allowed.has(key)) {
      throw invalid("new Vm", `unknown option ${what}.${key}; known: ${[...allowed].join(", ")}`);
    }
  }
}

/**
 * A microVM running one program. Configured (and every option checked) by the constructor;
 * `run()` runs it alongside this process, `startEnter()` turns this process into it.
 * Dispose it (`using` / `await using`) to stop it if running and free it.
 */
export class Vm implements Disposable, AsyncDisposable {
  #ctx: Context;
  #state: VmState = "ready";
  #waiting: Promise<number> | null = null;

  /** Creates the context and applies every option; throws `KrunError` on the first bad one. */
  constructor(options: VmOptions) {
    checkKeys(options, vmOptionKeys, "options");
    checkKeys(options.exec, execOptionKeys, "options.exec");
    if (options.kernel !== undefined) checkKeys(options.kernel, kernelOptionKeys, "options.kernel");
    const ctx = new Context();
    try {
      ctx.setVmConfig(options.cpus ?? 1, options.memoryMiB ?? 128);
      ctx.setRoot(options.root);
      if (options.workdir !== undefined) ctx.setWorkdir(options.workdir);
      const { path, args = [], env = {} } = options.exec;
      ctx.setExec(path, args, env);
      if (options.rlimits !== undefined) ctx.setRlimits(options.rlimits);
      if (options.ports !== undefined) ctx.setPortMap(options.ports);
      const k = options.kernel;
      if (k !== undefined) ctx.setKernel(k.path, k.format, k.initramfs, k.cmdline);
    } catch (err) {
      ctx.free();
      throw err;
    }
    this.#ctx = ctx;
  }

  /** The libkrun context id. */
  get ctxId(): number {
    return this.#ctx.id;
  }

  /** "ready", "running", "exited" or "disposed". */
  get state(): VmState {
    return this.#state;
  }

  /** Runs the VM to completion without taking over the process; resolves with its status and output. */
  async run(options: RunOptions = {}): Promise<RunResult> {
    const output = options.output ?? "capture";
    if (output !== "capture" && output !== "inherit") {
      throw invalid(
        "krun_set_console_output",
        `output must be "capture" or "inherit", got ${describe(output)}`,
      );
    }
    const timeoutMs = options.timeoutMs === undefined
      ? undefined
      : uint(options.timeoutMs, 0, 0x7fff_ffff, "krun_wait", "timeoutMs");
    if (this.#state !== "ready") throw new Error(`Vm.run(): this VM is ${this.#state}; a Vm runs once`);
    let dir: string | undefined;
    let outputSet = false;
    try {
      if (output === "capture") {
        dir = mkdtempSync(join(envOrUndefined("TMPDIR") ?? "/tmp", "zkrun-"));
        this.#ctx.setConsoleOutput(join(dir, "console"));
        outputSet = true;
      }
      this.#ctx.start();
    } catch (err) {
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
      // The console output is set once per context: a second run() could not capture again.
      if (outputSet) this.#state = "exited";
      throw err;
    }
    this.#state = "running";
    let timedOut = false;
    const timer = timeoutMs === undefined ? undefined : setTimeout(() => {
      timedOut = true;
      this.#ctx.stop();
    }, timeoutMs);
    this.#waiting = this.#ctx.waitAsync();
    try {
      const status = await this.#waiting;
      if (timedOut) {
        throw new KrunError("krun_wait", Errno.ETIMEDOUT, `still running after ${timeoutMs} ms; stopped`);
      }
      const reason = this.#ctx.exitReason() ?? "vmm-error"; // null only if the library lost it
      const bytes = dir === undefined ? new Uint8Array() : readOutput(join(dir, "console"));
      // The guest's console is a terminal, which writes "\n" as "\r\n": undo that for the text.
      return { status, reason, output: decoder.decode(bytes).replaceAll("\r\n", "\n"), outputBytes: bytes };
    } finally {
      clearTimeout(timer);
      if (this.#state === "running") this.#state = "exited";
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    }
  }

  /**
   * libkrun's model: the process becomes the VM, its console is this terminal, and the process
   * exits with the guest's status. Returns only by throwing why the VM could not start.
   */
  startEnter(): never {
    if (this.#state !== "ready") {
      throw new Error(`Vm.startEnter(): this VM is ${this.#state}; a Vm runs once`);
    }
    this.#state = "exited";
    return this.#ctx.startEnter();
  }

  /** Forces a running VM down; `run()` then resolves with the status the library reports. */
  stop(): void {
    if (this.#state === "running") this.#ctx.stop();
  }

  /** Stops the VM if it runs, and frees the context (once the library has let go of it). */
  [Symbol.dispose](): void {
    if (this.#state === "disposed") return;
    const wasRunning = this.#state === "running";
    this.#state = "disposed";
    if (!wasRunning) return this.#ctx.free();
    try {
      this.#ctx.stop();
    } catch {
      // It may have exited on its own meanwhile; the wait below settles either way.
    }
    // The wait still in flight uses the context: free it only when that wait is over.
    this.#waiting?.catch(() => {}).finally(() => this.#ctx.free());
  }

  /** Like `[Symbol.dispose]`, but resolves only once a running VM is down and freed. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#state === "disposed") return;
    const waiting = this.#state === "running" ? this.#waiting : null;
    this.#state = "disposed";
    if (waiting !== null) {
      try {
        this.#ctx.stop();
      } catch {
        // It may have exited on its own meanwhile.
      }
      await waiting.catch(() => {});
    }
    this.#ctx.free();
  }
}

function readOutput(path: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (err) {
    if ((err as { code?: string }).code === "ENOENT") return new Uint8Array(); // nothing written
    throw err;
  }
}
