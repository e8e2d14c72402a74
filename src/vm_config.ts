/**
 * `new Vm(...)`'s option checks and their translation to `Context` calls: the known keys of
 * each option object, the list limits, the NIC (`addNet`) and the volumes' KRUN_MOUNTS entries.
 *
 * @module
 */
import { Errno, KrunError } from "../ffi/errors.ts";
import type { Context } from "./context.ts";
import { describe, invalid } from "./util.ts";
import type { NetOptions, VolumeOptions } from "./vm_options.ts";

export const vmOptionKeys = new Set([
  "cpus",
  "memoryMiB",
  "root",
  "exec",
  "workdir",
  "rlimits",
  "kernel",
  "volumes",
  "disks",
  "ports",
  "vsock",
  "net",
]);
const netKeys = new Set(["unixstream", "unixgram", "tap", "mac", "dhcp"]);
/** libkrun's default MAC (krun_set_net_mac's default). */
const netMacDefault = "5a:94:ef:e4:0c:ee";
/** libkrun.h's COMPAT_NET_FEATURES: CSUM, GUEST_CSUM, GUEST_TSO4, GUEST_UFO, HOST_TSO4, HOST_UFO. */
const compatNetFeatures = (1 << 0) | (1 << 1) | (1 << 7) | (1 << 10) | (1 << 11) | (1 << 14);
/** A tap NIC without HOST_TSO4/HOST_UFO: the set tests/vm/96-net-vm.c runs a tap with. */
const tapNetFeatures = compatNetFeatures & ~((1 << 11) | (1 << 14));
const netFlagDhcpClient = 1 << 1;

/** Adds `options.net`'s NIC, checked (exactly one backend, known keys, a boolean `dhcp`). */
export function addNet(ctx: Context, net: NetOptions, hasPorts: boolean): void {
  checkKeys(net, netKeys, "options.net");
  const backends = (["unixstream", "unixgram", "tap"] as const).filter((k) => net[k] !== undefined);
  if (backends.length !== 1) {
    throw invalid("new Vm", `net needs exactly one of unixstream, unixgram, tap; got ${backends.length}`);
  }
  if (hasPorts) {
    throw invalid(
      "new Vm",
      "ports is TSI's port map, and with a net NIC TSI is off: forward ports in the network backend (e.g. passt -t)",
    );
  }
  const dhcp = net.dhcp ?? false;
  if (typeof dhcp !== "boolean") throw invalid("new Vm", `net.dhcp must be a boolean, got ${describe(dhcp)}`);
  const flags = dhcp ? netFlagDhcpClient : 0;
  const mac = net.mac ?? netMacDefault;
  const backend = backends[0];
  if (backend === "tap") return ctx.addNetTap(net.tap as string, mac, tapNetFeatures, flags);
  const where = net[backend];
  const path = typeof where === "number" ? null : where as string;
  const fd = typeof where === "number" ? where : -1;
  if (typeof where === "number" && where < 0) {
    throw invalid("new Vm", `net.${backend} must be a path or an fd >= 0, got ${where}`);
  }
  if (backend === "unixstream") ctx.addNetUnixstream(path, fd, mac, compatNetFeatures, flags);
  else ctx.addNetUnixgram(path, fd, mac, compatNetFeatures, flags);
}
export const vsockKeys = new Set(["port", "path", "listen"]);
export const vsockMax = 64;
export const volumeKeys = new Set(["host", "guest", "readOnly"]);
export const diskKeys = new Set(["id", "path", "format", "readOnly"]);
/** Shares init mounts (KRUN_MOUNTS); each is a virtio-fs device (the transport has 32 slots). */
export const volumesMax = 8;
export const disksMax = 8;

export function list<T>(
  value: readonly T[] | undefined,
  max: number,
  keys: Set<string>,
  what: string,
): readonly T[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw invalid("new Vm", `${what} must be an array, got ${describe(value)}`);
  if (value.length > max) {
    throw new KrunError("new Vm", Errno.E2BIG, `at most ${max} ${what}, got ${value.length}`);
  }
  value.forEach((item, i) => checkKeys(item, keys, `${what}[${i}]`));
  return value;
}

/** The KRUN_MOUNTS entry of volume `i` (tag "zkrun-vol<i>"), its guest path checked. */
export function mountEntry(volume: VolumeOptions, i: number): string {
  const guest = volume.guest;
  if (typeof guest !== "string" || !guest.startsWith("/") || /[:,\0]/.test(guest) || guest.length > 1024) {
    throw invalid(
      "new Vm",
      `volumes[${i}].guest must be an absolute path without ":" or ",", got ${describe(guest)}`,
    );
  }
  return `zkrun-vol${i}:${guest}${volume.readOnly === true ? ":ro" : ""}`;
}
export const execOptionKeys = new Set(["path", "args", "env"]);
export const kernelOptionKeys = new Set(["path", "format", "initramfs", "cmdline"]);

export function checkKeys(value: unknown, allowed: Set<string>, what: string): void {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw invalid("new Vm", `${what} must be an object, got ${describe(value)}`);
  }
  for (const key of Object.keys(value)) {
    if (!allowed.has(key)) {
      throw invalid("new Vm", `unknown option ${what}.${key}; known: ${[...allowed].join(", ")}`);
    }
  }
}
