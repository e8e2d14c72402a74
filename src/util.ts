/**
 * Checks and conversions shared by `Context` and `Vm`: every value is checked here before it
 * reaches C (types, ranges, NUL bytes, lone surrogates), and C's `-errno` returns become
 * `KrunError`s carrying the library's reason. Internal: mod.ts exports none of it.
 *
 * @module
 */
import { Errno, KrunError } from "../ffi/errors.ts";
import { load } from "../ffi/load.ts";
import type { Native } from "../ffi/symbols.ts";
import { type ExitReason, RLIMIT, type RlimitName } from "./types.ts";

export const u8Max = 0xff;
export const u32Max = 0xffff_ffff;
export const portMax = 0xffff;
/** libkrun reads NULL-terminated string arrays up to 4096 entries, the NULL included. */
export const arrayEntriesMax = 4095;
/** RLIM_INFINITY on Linux: what "unlimited" becomes. */
const rlimInfinity = 0xffff_ffff_ffff_ffffn;
export const logLevelMax = 5;

export function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") return JSON.stringify(value.length > 40 ? value.slice(0, 40) + "…" : value);
  if (typeof value === "object") return "an object";
  return `${typeof value} ${String(value)}`;
}

export function invalid(op: string, detail: string): KrunError {
  return new KrunError(op, Errno.EINVAL, detail);
}

/** Throws for a negative return, with the library's reason; passes a non-negative one through. */
export function check(rc: number, op: string, _keepAlive?: unknown): number {
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
export function lastError(op: string): string {
  const buf = new Uint8Array(lastErrorMax);
  const n = load().call.krun_last_error(buf, BigInt(buf.length));
  if (n <= 0) return "";
  const text = decoder.decode(buf.subarray(0, Math.min(n, buf.length - 1)));
  return text.startsWith(`${op}: `) ? text.slice(op.length + 2) : text;
}

/** An exit status from krun_wait: 0..255, anything else is a library bug, never a status. */
export function status(rc: number, op: string): number {
  if (rc > 255) throw new KrunError(op, Errno.EIO, `exit status ${rc} is out of range 0..255`);
  return rc;
}

export const exitReasons: readonly (ExitReason | null)[] = [
  null, // KRUN_EXIT_REASON_NONE: not ended / not waited on
  "exited",
  "stopped",
  "guest-panic",
  "triple-fault",
  "vmm-error",
  "shutdown",
];

export function uint(value: unknown, min: number, max: number, op: string, what: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw invalid(op, `${what} must be an integer in ${min}..${max}, got ${describe(value)}`);
  }
  return value;
}

export const encoder = new TextEncoder();
export const decoder = new TextDecoder();

/** `value` if it is a string C can take: no NUL byte, no lone surrogate (not UTF-8 encodable). */
export function cText(value: unknown, op: string, what: string): string {
  if (typeof value !== "string") throw invalid(op, `${what} must be a string, got ${describe(value)}`);
  if (value.includes("\0")) throw invalid(op, `${what} contains a NUL byte`);
  if (!value.isWellFormed()) throw invalid(op, `${what} is not valid Unicode (lone surrogate)`);
  return value;
}

/** A NUL-terminated UTF-8 copy of `value` in its own ArrayBuffer (which V8 never moves). */
export function cString(value: unknown, op: string, what: string): Uint8Array<ArrayBuffer> {
  const text = cText(value, op, what);
  const bytes = new Uint8Array(new ArrayBuffer(text.length * 3 + 1)); // UTF-8 ≤ 3 bytes per UTF-16 unit
  encoder.encodeInto(text, bytes);
  return bytes;
}

/** A `const char *const[]`: the pointer array and the one buffer holding every string. */
export interface CStringArray {
  array: BigUint64Array<ArrayBuffer>;
  keep: Uint8Array<ArrayBuffer>;
}

export function cStringArray(native: Native, values: unknown, op: string, what: string): CStringArray {
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

export function envEntries(env: unknown, op: string): string[] | null {
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

export function rlimitEntries(rlimits: unknown, op: string): string[] {
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

export function portEntries(ports: unknown, op: string): string[] {
  if (typeof ports !== "object" || ports === null || Array.isArray(ports)) {
    throw invalid(op, `ports must be an object like { 8080: 80 }, got ${describe(ports)}`);
  }
  const entries = Object.entries(ports); // more than 4095 are refused by cStringArray
  const hosts = new Set<number>();
  const guests = new Set<number>();
  return entries.map(([key, guest]) => {
    if (!/^[0-9]+$/.test(key)) throw invalid(op, `host port ${describe(key)} is not a number`);
    const host = uint(Number(key), 1, portMax, op, "host port");
    uint(guest, 1, portMax, op, `guest port for host port ${host}`);
    // "08080" and 8080 are one host port: the library would refuse the pair, say so here.
    if (hosts.has(host)) throw invalid(op, `host port ${host} is mapped twice`);
    if (guests.has(guest)) throw invalid(op, `guest port ${guest} is mapped twice`);
    hosts.add(host);
    guests.add(guest);
    return `${host}:${guest}`;
  });
}
