/**
 * The Deno adapter: opens libkrun.so.1 with `Deno.dlopen` from the neutral table in
 * symbols.ts. One of the two files that know which runtime they run on (the other is bun.ts).
 *
 * @module
 */
import {
  type Adapter,
  type Calls,
  firmwareSymbols,
  type Kind,
  type Native,
  symbols,
  type SymbolSpec,
} from "./symbols.ts";

function denoType(kind: Kind): Deno.NativeType {
  // "buffer" takes a TypedArray or null and passes its address: what every pointer here is.
  return kind === "ptr" ? "buffer" : kind;
}

function denoSymbols(): Record<string, Deno.ForeignFunction> {
  const out: Record<string, Deno.ForeignFunction> = {};
  for (const [name, spec] of Object.entries(symbols) as [string, SymbolSpec][]) {
    out[name] = { parameters: spec.parameters.map(denoType), result: "i32" };
    if (spec.mayBlock) {
      // The same C function again, run on Deno's blocking thread pool; returns a Promise.
      out[`${name}__nonblocking`] = {
        name,
        parameters: spec.parameters.map(denoType),
        result: "i32",
        nonblocking: true,
      };
    }
  }
  return out;
}

/**
 * `const char *const[]` arrays need buffer addresses, and Deno gives them
 * (`Deno.UnsafePointer.of`) only with `--allow-ffi` for every path: a scoped
 * `--allow-ffi=<lib>` is not enough. Say so up front rather than from deep inside a setter.
 */
function checkPointerPermission(): void {
  try {
    Deno.UnsafePointer.of(new Uint8Array(8));
  } catch (err) {
    if (!(err instanceof Deno.errors.NotCapable)) throw err;
    throw new Deno.errors.NotCapable(
      "zkrun needs --allow-ffi without a path: Deno only gives buffer addresses " +
        "(Deno.UnsafePointer.of, used for argv/env arrays) with unscoped FFI permission",
    );
  }
}

function open(path: string): Native {
  checkPointerPermission();
  const lib = Deno.dlopen(path, denoSymbols());
  const raw = lib.symbols as unknown as Record<string, (...args: unknown[]) => unknown>;
  const waitNonblocking = raw["krun_wait__nonblocking"] as (
    ctx: number,
    timeout: number,
  ) => Promise<number>;
  return {
    runtime: "deno",
    path,
    call: lib.symbols as unknown as Calls,
    waitAsync: (ctxId: number): Promise<number> => waitNonblocking(ctxId, -1),
    address: (buffer: Uint8Array<ArrayBuffer>): bigint =>
      BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buffer))),
    close: (): void => lib.close(),
  };
}

function openFirmware(path: string): number {
  const lib = Deno.dlopen(path, firmwareSymbols); // never closed: libkrun uses it at every start
  return lib.symbols.krunfw_get_version();
}

/** The Deno adapter. */
export const adapter: Adapter = {
  present: "Deno" in globalThis,
  open,
  openFirmware,
};
