/**
 * The Deno adapter: opens libkrun.so.1 with `Deno.dlopen` from the neutral table in
 * symbols.ts. One of the two files that know which runtime they run on (the other is bun.ts).
 *
 * @module
 */
import {
  type Adapter,
  type Calls,
  type CSpec,
  fdIo,
  type HostIo,
  type Kind,
  type LibcFds,
  libcSymbols,
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
    copy: (address: bigint, length: number): Uint8Array => {
      const pointer = Deno.UnsafePointer.create(address);
      if (pointer === null) throw new Error("copy from NULL");
      return new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(pointer, length).slice(0));
    },
    close: (): void => lib.close(),
    io: hostIo(),
  };
}

/** How many times a read or write that returns -1 (EINTR, or a real error) is tried. */
const ioAttempts = 3;

/** libc's calls as Deno binds them from `libcSymbols`: read and write return Promises. */
interface DenoLibc extends LibcFds {
  read(fd: number, buf: Uint8Array, count: bigint): Promise<number | bigint>;
  write(fd: number, buf: Uint8Array, count: bigint): Promise<number | bigint>;
}

function openTable(
  path: string,
  specs: Readonly<Record<string, CSpec>>,
): Record<string, (...args: never[]) => unknown> {
  const table: Record<string, Deno.ForeignFunction> = {};
  for (const [name, spec] of Object.entries(specs)) {
    // A mayBlock call (read, write) runs on Deno's blocking thread pool: the JS thread never waits.
    table[name] = {
      parameters: spec.parameters.map(denoType),
      result: spec.result,
      nonblocking: spec.mayBlock,
    };
  }
  return Deno.dlopen(path, table).symbols as Record<string, (...args: never[]) => unknown>;
}

function hostIo(): HostIo {
  const libc = openTable("libc.so.6", libcSymbols) as unknown as DenoLibc;
  return fdIo(libc, {
    readable(fd, finish, chunkSize, readAhead): ReadableStream<Uint8Array> {
      let closed = false;
      return new ReadableStream<Uint8Array>({
        async pull(controller): Promise<void> {
          for (let attempt = 1;; attempt++) {
            const buf = new Uint8Array(chunkSize);
            const n = Number(await libc.read(fd, buf, BigInt(chunkSize)));
            if (closed) return; // cancelled while the read was pending
            if (n > 0) return controller.enqueue(n === chunkSize ? buf : buf.slice(0, n));
            if (n === 0 || attempt === ioAttempts) {
              closed = true;
              finish();
              if (n === 0) return controller.close();
              return controller.error(new Error(`read from fd ${fd} failed`));
            }
          }
        },
        cancel(): void {
          closed = true;
          finish();
        },
      }, new ByteLengthQueuingStrategy({ highWaterMark: readAhead }));
    },
    writable(fd, finish): WritableStream<Uint8Array> {
      return new WritableStream<Uint8Array>({
        async write(chunk): Promise<void> {
          const buf = new Uint8Array(chunk); // our own copy: the call runs on another thread
          let failures = 0;
          for (let off = 0; off < buf.length;) {
            const n = Number(await libc.write(fd, buf.subarray(off), BigInt(buf.length - off)));
            if (n > 0) off += n;
            else if (++failures === ioAttempts) throw new Error("the guest's stdin is closed (the VM ended)");
          }
        },
        close(): void {
          finish();
        },
        abort(): void {
          finish();
        },
      });
    },
  });
}

/** The Deno adapter. */
export const adapter: Adapter = {
  present: "Deno" in globalThis,
  open,
  openTable,
};
