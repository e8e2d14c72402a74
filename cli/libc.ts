/**
 * The few libc calls node:fs lacks, through the runtime's FFI adapter (ffi/deno.ts, ffi/bun.ts):
 * lsetxattr/llistxattr/lgetxattr (extended attributes, never following a symlink) and mknod
 * (device nodes and FIFOs). Each returns false / null on failure; callers count and report.
 *
 * @module
 */

import { runtime } from "../ffi/load.ts";
import type { CSpec } from "../ffi/symbols.ts";

interface Calls {
  lsetxattr(
    path: Uint8Array,
    name: Uint8Array,
    value: Uint8Array,
    size: number | bigint,
    flags: number,
  ): number;
  llistxattr(path: Uint8Array, list: Uint8Array | null, size: number | bigint): number | bigint;
  lgetxattr(
    path: Uint8Array,
    name: Uint8Array,
    value: Uint8Array | null,
    size: number | bigint,
  ): number | bigint;
  mknod(path: Uint8Array, mode: number, dev: number | bigint): number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
let calls: Calls | null = null;

function cstr(s: string): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(new ArrayBuffer(s.length * 3 + 1));
  encoder.encodeInto(s, out);
  return out;
}

/** The calls in ffi/symbols.ts's runtime-neutral kinds; the runtime's adapter binds them. */
const specs = {
  lsetxattr: { parameters: ["ptr", "ptr", "ptr", "usize", "i32"], result: "i32" },
  llistxattr: { parameters: ["ptr", "ptr", "usize"], result: "i64" },
  lgetxattr: { parameters: ["ptr", "ptr", "ptr", "usize"], result: "i64" },
  mknod: { parameters: ["ptr", "u32", "u64"], result: "i32" },
} as const satisfies Record<keyof Calls, CSpec>;

/** Loads libc's symbols once (before any other call here). */
export function openLibc(): void {
  calls ??= runtime().openTable("libc.so.6", specs) as unknown as Calls;
}

function libc(): Calls {
  if (calls === null) throw new Error("libc.ts: openLibc() was not called");
  return calls;
}

/** Sets one extended attribute on `path` itself (not a symlink's target). */
export function setXattr(path: string, name: string, value: Uint8Array): boolean {
  const buf = new Uint8Array(new ArrayBuffer(Math.max(value.length, 1)));
  buf.set(value);
  return libc().lsetxattr(cstr(path), cstr(name), buf, value.length, 0) === 0;
}

/** Every extended attribute of `path` itself; null when they cannot be listed. */
export function getXattrs(path: string): Map<string, Uint8Array> | null {
  const p = cstr(path);
  const out = new Map<string, Uint8Array>();
  const size = Number(libc().llistxattr(p, null, 0));
  if (size < 0) return null;
  if (size === 0) return out;
  const list = new Uint8Array(new ArrayBuffer(size));
  const got = Number(libc().llistxattr(p, list, size));
  if (got < 0) return null;
  for (const name of decoder.decode(list.subarray(0, got)).split("\0")) {
    if (name === "") continue;
    const n = cstr(name);
    const len = Number(libc().lgetxattr(p, n, null, 0));
    if (len < 0) return null;
    const value = new Uint8Array(new ArrayBuffer(Math.max(len, 1)));
    const read = Number(libc().lgetxattr(p, n, value, len));
    if (read < 0) return null;
    out.set(name, value.slice(0, read));
  }
  return out;
}

/** mknod(2): `mode` holds S_IFCHR/S_IFBLK/S_IFIFO and the permission bits. */
export function mknod(path: string, mode: number, major: number, minor: number): boolean {
  // glibc's makedev encoding.
  const dev = (BigInt(major & 0xfff) << 8n) | BigInt(minor & 0xff) |
    (BigInt(minor & ~0xff) << 12n) | (BigInt(major & ~0xfff) << 32n);
  return libc().mknod(cstr(path), mode, dev) === 0;
}
