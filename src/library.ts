/**
 * Process-wide calls (no context): loading the library, the log, features, the host's
 * limits, the built-in init.
 *
 * @module
 */
import { firmwarePath, load } from "../ffi/load.ts";
import { Errno, KrunError } from "../ffi/errors.ts";
import { FEATURE, type Feature } from "./types.ts";
import { check, cString, describe, invalid, logLevelMax, uint } from "./util.ts";

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

/** Where and how the library logs (`KRUN_LOG_*`), for `initLog`. */
export interface LogOptions {
  /**
   * The fd the log goes to (default: the library's, stderr).
   *
   * @example
   * ```ts ignore
   * initLog({ targetFd: 2, level: 3 });
   * ```
   */
  readonly targetFd?: number;
  /**
   * 0 (off) to 5 (trace); default 1 (errors).
   *
   * @example
   * ```ts ignore
   * initLog({ level: 5 });
   * ```
   */
  readonly level?: number;
  /**
   * Colours: "auto" (default), "always" or "never".
   *
   * @example
   * ```ts ignore
   * initLog({ style: "never" });
   * ```
   */
  readonly style?: "auto" | "always" | "never";
  /**
   * Ignore the RUST_LOG environment variable (`KRUN_LOG_OPTION_NO_ENV`).
   *
   * @example
   * ```ts ignore
   * initLog({ level: 2, ignoreEnv: true });
   * ```
   */
  readonly ignoreEnv?: boolean;
}

const logStyles = { auto: 0, always: 1, never: 2 } as const;

/** Sets up the library's log for the whole process (`krun_init_log`). */
export function initLog(options: LogOptions = {}): void {
  const op = "krun_init_log";
  const fd = options.targetFd === undefined ? -1 : uint(options.targetFd, 0, 0x7fff_ffff, op, "targetFd");
  const level = uint(options.level ?? 1, 0, logLevelMax, op, "level");
  const style = options.style ?? "auto";
  if (!Object.hasOwn(logStyles, style)) {
    throw invalid(op, `style must be "auto", "always" or "never", got ${describe(style)}`);
  }
  const opts = options.ignoreEnv === true ? 1 : 0;
  check(load().call.krun_init_log(fd, level, logStyles[style], opts), op);
}

/** Whether this build of the library has a feature (`krun_has_feature`), e.g. "blk". */
export function hasFeature(feature: Feature): boolean {
  const op = "krun_has_feature";
  if (typeof feature !== "string" || !Object.hasOwn(FEATURE, feature)) {
    throw invalid(op, `feature must be one of ${Object.keys(FEATURE).join(", ")}, got ${describe(feature)}`);
  }
  return check(load().call.krun_has_feature(BigInt(FEATURE[feature])), op) === 1;
}

/** Whether this host's KVM allows nested virtualization (`krun_check_nested_virt`). */
export function checkNestedVirt(): boolean {
  const op = "krun_check_nested_virt";
  return check(load().call.krun_check_nested_virt(), op) === 1;
}

/** A copy of the guest init the library injects as /init.krun (`krun_get_default_init`). */
export function getDefaultInit(): Uint8Array {
  const op = "krun_get_default_init";
  const native = load();
  const data = new BigUint64Array(1);
  const len = new BigUint64Array(1);
  check(native.call.krun_get_default_init(data, len), op);
  const size = Number(len[0]);
  if (data[0] === 0n || size === 0 || size > 256 * 1024 * 1024) {
    throw new KrunError(op, Errno.EIO, `the library gave ${size} bytes at 0x${data[0].toString(16)}`);
  }
  return native.copy(data[0], size);
}
