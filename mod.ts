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
 * this project's `zig-out/lib/libkrun.so.1`, else the system's `libkrun.so.1` (on macOS: `libkrun.1.dylib`,
 * with `libkrunfw.5.dylib` beside it).
 *
 * @module
 */
export { Errno, type ErrnoCode, errnoCode, KrunError, KrunLibraryError } from "./ffi/errors.ts";
export {
  DISK_FORMAT,
  type DiskFormat,
  type Env,
  type ExitReason,
  FEATURE,
  type Feature,
  KERNEL_FORMAT,
  type KernelFormat,
  type Mac,
  type PortMap,
  RLIMIT,
  type RlimitName,
  type Rlimits,
  type RlimitValue,
  SYNC_MODE,
  type SyncMode,
  type VmStats,
} from "./src/types.ts";
export {
  checkNestedVirt,
  getDefaultInit,
  hasFeature,
  initLog,
  type LibraryInfo,
  loadLibrary,
  type LogOptions,
  maxVcpus,
  setLogLevel,
} from "./src/library.ts";
export { Context } from "./src/context.ts";
// Context's layers: exported so that the docs show the methods Context inherits from them.
export { ContextBase } from "./src/context_base.ts";
export { ContextStorage } from "./src/context_storage.ts";
export { ContextNetwork } from "./src/context_network.ts";
export { ContextDevices } from "./src/context_devices.ts";
export type {
  OutputOptions,
  SpawnOptions,
  Stdio,
  TtySize,
  VmOutput,
  VmProcess,
  VmStatus,
} from "./src/process.ts";
export { Vm } from "./src/vm.ts";
export type {
  DiskOptions,
  ExecOptions,
  KernelOptions,
  NetOptions,
  RunOptions,
  RunResult,
  VmOptions,
  VmState,
  VolumeOptions,
  VsockPortOptions,
} from "./src/vm_options.ts";
