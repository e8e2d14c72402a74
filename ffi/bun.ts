/**
 * The Bun adapter: opens libkrun.so.1 with `bun:ffi` from the neutral table in symbols.ts.
 * One of the two files that know which runtime they run on (the other is deno.ts).
 *
 * `bun:ffi` has no `nonblocking` calls, so a wait is krun_wait polled from a timer (every
 * 1 ms, doubling to 20 ms). Chosen over a Worker because it needs no second JS heap, keeps the
 * event loop alive exactly while a VM runs, costs one FFI call per tick, and cannot leave a
 * thread stuck in C when the process wants to exit. Each poll waits up to 1 ms, not 0: zkrun's
 * krun_wait(ctx, 0) does not yet notice a VM that has ended (tests/ts/cases.ts checks it), and
 * 1 ms blocks the JS thread at most 1 ms per tick (≤5% once the interval reaches 20 ms).
 *
 * @module
 */
import { type Adapter, type Calls, firmwareSymbols, type Kind, type Native, symbols } from "./symbols.ts";

/** The part of `bun:ffi` used here (declared so `deno check` needs no Bun types). */
interface BunFfi {
  dlopen(
    path: string,
    symbols: Record<string, { args: string[]; returns: string }>,
  ): { symbols: Record<string, (...args: unknown[]) => unknown>; close(): void };
  ptr(view: ArrayBufferView): number;
}

const present = "Bun" in globalThis;
// In a variable so that `deno check` and JSR never try to resolve it.
const specifier = "bun:ffi";
const ffi: BunFfi | null = present ? (await import(specifier)) as BunFfi : null;

/**
 * -ETIMEDOUT on Linux: krun_wait's "still running". Never a guest's status: zkrun's statuses
 * are 0..255 (it refuses any other code from the guest), so every other value ends the loop.
 */
const timedOut = -110;
const pollWaitMs = 1;
const pollFirstMs = 1;
const pollMaxMs = 20;

function bunType(kind: Kind): string {
  return kind; // bun:ffi spells u8..u64, usize, bool and ptr the same way.
}

function open(path: string): Native {
  if (ffi === null) throw new Error("bun:ffi is not available: not running under Bun");
  const table: Record<string, { args: string[]; returns: string }> = {};
  for (const [name, spec] of Object.entries(symbols)) {
    table[name] = { args: spec.parameters.map(bunType), returns: spec.result };
  }
  const lib = ffi.dlopen(path, table);
  const call = lib.symbols as unknown as Calls;
  const { ptr } = ffi;
  return {
    runtime: "bun",
    path,
    call,
    waitAsync: (ctxId: number): Promise<number> =>
      new Promise((resolve, reject) => {
        let delay = pollFirstMs;
        const tick = (): void => {
          try {
            const rc = call.krun_wait(ctxId, pollWaitMs);
            if (rc !== timedOut) return resolve(rc);
          } catch (err) {
            return reject(err);
          }
          setTimeout(tick, delay);
          delay = Math.min(delay * 2, pollMaxMs);
        };
        tick();
      }),
    address: (buffer: Uint8Array<ArrayBuffer>): bigint => BigInt(ptr(buffer)),
    close: (): void => lib.close(),
  };
}

function openFirmware(path: string): number {
  if (ffi === null) throw new Error("bun:ffi is not available: not running under Bun");
  const table: Record<string, { args: string[]; returns: string }> = {};
  for (const [name, spec] of Object.entries(firmwareSymbols)) {
    table[name] = { args: spec.parameters.map(bunType), returns: spec.result };
  }
  const lib = ffi.dlopen(path, table); // never closed: libkrun uses it at every start
  return lib.symbols.krunfw_get_version() as number;
}

/** The Bun adapter. */
export const adapter: Adapter = { present, open, openFirmware };
