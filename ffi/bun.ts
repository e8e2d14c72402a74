/**
 * The Bun adapter: opens libkrun.so.1 with `bun:ffi` from the neutral table in symbols.ts.
 * One of the two files that know which runtime they run on (the other is deno.ts).
 *
 * `bun:ffi` has no `nonblocking` calls, so a wait is krun_wait(ctx, 0) (which only polls: it
 * never blocks the JS thread) from a timer, every 1 ms doubling to 20 ms. Chosen over a Worker
 * because it needs no second JS heap, keeps the event loop alive exactly while a VM runs,
 * costs one FFI call per tick, and cannot leave a thread stuck in C when the process wants to
 * exit; over a thread-safe JSCallback because that needs a C notification API libkrun does not
 * have. Idle cost: tests/bench/ts-spawn.bench.sh (BENCHMARKS.md).
 *
 * @module
 */
import { createReadStream } from "node:fs";
import { Readable } from "node:stream";
import { isatty } from "node:tty";
import {
  type Adapter,
  type Calls,
  type CSpec,
  fdIo,
  type HostIo,
  type LibcFds,
  libcSymbols,
  type Native,
  symbols,
} from "./symbols.ts";

/** The part of `bun:ffi` used here (declared so `deno check` needs no Bun types). */
interface BunFfi {
  dlopen(
    path: string,
    symbols: Record<string, { args: string[]; returns: string }>,
  ): { symbols: Record<string, (...args: unknown[]) => unknown>; close(): void };
  ptr(view: ArrayBufferView): number;
  toArrayBuffer(address: number, offset: number, length: number): ArrayBuffer;
}

/** The part of `Bun` used here: a file on an fd, read as a stream or written through a sink. */
interface BunGlobal {
  file(fd: number): {
    stream(): ReadableStream<Uint8Array>;
    writer(): { write(chunk: Uint8Array): number; flush(): number | Promise<number>; end(): unknown };
  };
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
const pollWaitMs = 0;
const pollFirstMs = 1;
const pollMaxMs = 20;

/** A `bun:ffi` table from one of symbols.ts's (which spells u8..u64, usize, bool and ptr as Bun does). */
function bunTable(
  specs: Readonly<Record<string, CSpec>>,
): Record<string, { args: string[]; returns: string }> {
  const table: Record<string, { args: string[]; returns: string }> = {};
  for (const [name, spec] of Object.entries(specs)) {
    table[name] = { args: [...spec.parameters], returns: spec.result };
  }
  return table;
}

function open(path: string): Native {
  if (ffi === null) throw new Error("bun:ffi is not available: not running under Bun");
  const lib = ffi.dlopen(path, bunTable(symbols));
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
    copy: (address: bigint, length: number): Uint8Array =>
      new Uint8Array(ffi.toArrayBuffer(Number(address), 0, length).slice(0)),
    close: (): void => lib.close(),
    io: hostIo(ffi),
  };
}

function hostIo(ffi: BunFfi): HostIo {
  const libc = ffi.dlopen("libc.so.6", bunTable(libcSymbols)).symbols as unknown as LibcFds;
  const bun = (globalThis as unknown as { Bun: BunGlobal }).Bun;
  return fdIo(libc, {
    // Bun.file(fd) reads a pipe without blocking the JS thread, but never closes the fd. A
    // terminal (a tty spawn's pty) it would pread (ESPIPE): a node:fs stream reads that.
    readable(fd, finish, chunkSize, readAhead): ReadableStream<Uint8Array> {
      const reader = isatty(fd)
        ? (Readable.toWeb(
          createReadStream("", { fd, autoClose: false, highWaterMark: chunkSize }),
        ) as ReadableStream<
          Uint8Array
        >).getReader()
        : bun.file(fd).stream().getReader();
      return new ReadableStream<Uint8Array>({
        async pull(controller): Promise<void> {
          try {
            const { value, done } = await reader.read();
            if (!done) return controller.enqueue(value);
            finish();
            controller.close();
          } catch (err) {
            finish();
            controller.error(err);
          }
        },
        async cancel(reason): Promise<void> {
          await reader.cancel(reason).catch(() => {});
          finish();
        },
      }, new ByteLengthQueuingStrategy({ highWaterMark: readAhead }));
    },
    writable(fd, finish): WritableStream<Uint8Array> {
      const sink = bun.file(fd).writer();
      return new WritableStream<Uint8Array>({
        async write(chunk): Promise<void> {
          sink.write(chunk);
          await sink.flush();
        },
        async close(): Promise<void> {
          await sink.end();
          finish();
        },
        abort(): void {
          finish();
        },
      });
    },
  });
}

function openTable(
  path: string,
  specs: Readonly<Record<string, CSpec>>,
): Record<string, (...args: never[]) => unknown> {
  if (ffi === null) throw new Error("bun:ffi is not available: not running under Bun");
  return ffi.dlopen(path, bunTable(specs)).symbols;
}

/** The Bun adapter. */
export const adapter: Adapter = { present, open, openTable };
