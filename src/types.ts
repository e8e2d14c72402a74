/**
 * The value types of zkrun's options: resource limits, kernel formats, environments, exit
 * reasons. Constants are frozen and literal-typed.
 *
 * @module
 */

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

/** Why a VM ended (`krun_get_exit_reason`; the KRUN_EXIT_REASON_* values of libkrun.h). */
export type ExitReason = "exited" | "stopped" | "guest-panic" | "triple-fault" | "vmm-error" | "shutdown";

/** Disk image formats (`KRUN_DISK_FORMAT_*`). */
export const DISK_FORMAT: Readonly<{ raw: 0; qcow2: 1; vmdk: 2 }> = Object.freeze({
  raw: 0,
  qcow2: 1,
  vmdk: 2,
});
/** A disk image format name, e.g. "qcow2". */
export type DiskFormat = keyof typeof DISK_FORMAT;
/** When a disk's writes reach the host's storage (`KRUN_SYNC_*`). */
export const SYNC_MODE: Readonly<{ none: 0; relaxed: 1; full: 2 }> = Object.freeze({
  none: 0,
  relaxed: 1,
  full: 2,
});
/** A disk flush policy name, e.g. "full". */
export type SyncMode = keyof typeof SYNC_MODE;
/** A MAC address: "5a:94:ef:e4:0c:ee" or its 6 bytes. */
export type Mac = string | Uint8Array;
/** Features `krun_has_feature` knows (`KRUN_FEATURE_*`). */
export const FEATURE: Readonly<{
  net: 0;
  blk: 1;
  gpu: 2;
  snd: 3;
  input: 4;
  efi: 5;
  tee: 6;
  amd_sev: 7;
  intel_tdx: 8;
  aws_nitro: 9;
  virgl_resource_map2: 10;
  init_blob: 11;
}> = Object.freeze({
  net: 0,
  blk: 1,
  gpu: 2,
  snd: 3,
  input: 4,
  efi: 5,
  tee: 6,
  amd_sev: 7,
  intel_tdx: 8,
  aws_nitro: 9,
  virgl_resource_map2: 10,
  init_blob: 11,
});
/** A feature name, e.g. "blk". */
export type Feature = keyof typeof FEATURE;

/** Cheap counters of a running VM (`krun_get_stats`). */
export interface VmStats {
  /** KVM exits of all vCPUs so far: I/O, MMIO, halts, ... the host handled for the guest. */
  readonly exits: number;
  /** Bytes of guest RAM resident in this process now (what the guest costs the host's memory). */
  readonly residentBytes: number;
}
