/**
 * The Deno adapter: opens libkrun.so.1 with `Deno.dlopen` from the neutral table in
 * symbols.ts. One of the two files that know which runtime they run on (the other is bun.ts).
 *
 * @module
 */
import {
  type Adapter,
  type Calls,
  fdIo,
  firmwareSymbols,
  type HostIo,
  type Kind,
  type libcSymbols,
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

function hostIo(): HostIo {
  const libc = Deno.dlopen(
    "libc.so.6",
    {
      pipe2: { parameters: ["buffer", "i32"], result: "i32" },
      open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
      close: { parameters: ["i32"], result: "i32" },
      read: { parameters: ["i32", "buffer", "usize"], result: "i64", nonblocking: true },
      write: { parameters: ["i32", "buffer", "usize"], result: "i64", nonblocking: true },
      posix_openpt: { parameters: ["i32"], result: "i32" },
      unlockpt: { parameters: ["i32"], result: "i32" },
      ptsname_r: { parameters: ["i32", "buffer", "usize"], result: "i32" },
      ioctl: { parameters: ["i32", "u64", "buffer"], result: "i32" },
      fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
    } as const satisfies Record<keyof typeof libcSymbols, Deno.ForeignFunction>,
  ).symbols;
  const fds = fdIo(libc);
  const closer = fds.closer;
  return {
    pipe: fds.pipe,
    devNull: fds.devNull,
    close: fds.close,
    pty: fds.pty,
    readable(fd: number, chunkSize: number, readAhead: number): ReadableStream<Uint8Array> {
      const finish = closer(fd);
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
    writable(fd: number): WritableStream<Uint8Array> {
      const finish = closer(fd);
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
