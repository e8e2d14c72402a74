/**
 * `Context`'s argument checkers: each takes a caller's value and the `krun_*` op it is for, and
 * returns what the C call takes (a boolean, a u64, a table's number, bytes C may read, a MAC)
 * or throws `KrunError` (EINVAL) naming the argument; and the fd and u16 limits.
 *
 * @module
 */
import { describe, invalid } from "./util.ts";

export const u16Max = 0xffff;
/** Largest fd number (INT_MAX); -1 where the C API takes "none". */
export const fdMax = 0x7fff_ffff;

export function bool(value: unknown, op: string, what: string): boolean {
  if (typeof value !== "boolean") throw invalid(op, `${what} must be a boolean, got ${describe(value)}`);
  return value;
}

export function u64(value: unknown, op: string, what: string): bigint {
  if (typeof value === "bigint" && value >= 0n && value < 1n << 64n) return value;
  if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) return BigInt(value);
  throw invalid(op, `${what} must be a non-negative integer, got ${describe(value)}`);
}

/** A name of `table`, or one of its numbers (for values newer than this binding). */
export function named(
  table: Readonly<Record<string, number>>,
  value: unknown,
  op: string,
  what: string,
): number {
  if (typeof value === "string" && Object.hasOwn(table, value)) return table[value];
  if (typeof value === "number" && Object.values(table).includes(value)) return value;
  throw invalid(op, `${what} must be one of ${Object.keys(table).join(", ")}, got ${describe(value)}`);
}

/** A copy of `value` in its own ArrayBuffer (C reads it during the call only). */
export function ownBytes(value: unknown, op: string, what: string): Uint8Array<ArrayBuffer> {
  if (!(value instanceof Uint8Array)) {
    throw invalid(op, `${what} must be a Uint8Array, got ${describe(value)}`);
  }
  return new Uint8Array(value);
}

/** A MAC address as 6 bytes: from "aa:bb:cc:dd:ee:ff" or 6 bytes. */
export function macAddress(mac: unknown, op: string): Uint8Array<ArrayBuffer> {
  if (typeof mac === "string" && /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(mac)) {
    return new Uint8Array(mac.split(":").map((h) => parseInt(h, 16)));
  }
  if (mac instanceof Uint8Array && mac.length === 6) return new Uint8Array(mac);
  throw invalid(op, `mac must be "aa:bb:cc:dd:ee:ff" or 6 bytes, got ${describe(mac)}`);
}
