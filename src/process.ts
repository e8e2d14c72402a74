/**
 * What `Vm.spawn()` and `Vm.output()` take and give: the stdio choices, the running VM's
 * streams (`VmProcess`), its final status, and the host ends of the console pipes.
 *
 * @module
 */
import type { HostIo } from "../ffi/symbols.ts";
import type { ExitReason } from "./types.ts";
import { describe, invalid } from "./util.ts";

/**
 * Where one of the workload's stdin/stdout/stderr goes: "piped" (a stream in this process),
 * "inherit" (this process's own fd 0/1/2; a terminal there becomes the guest's console), or
 * "null" (/dev/null).
 */
export type Stdio = "piped" | "inherit" | "null";

/** How `Vm.spawn()` wires the workload. */
export interface SpawnOptions {
  /**
   * The workload's stdin (default "null"). "piped": write to `VmProcess.stdin`; closing it is
   * end of file in the guest.
   *
   * @example Feed the guest
   * ```ts ignore
   * const child = vm.spawn({ stdin: "piped" });
   * const writer = child.stdin.getWriter();
   * await writer.write(new TextEncoder().encode("hello\n"));
   * await writer.close();
   * ```
   */
  readonly stdin?: Stdio;
  /**
   * The workload's stdout (default "piped"): byte-exact, no line-end rewriting. Read it or
   * cancel it: once about 2 MiB wait unread (this stream's read-ahead, the pipe, the
   * console's ring), the guest's writes block, as a process's do on a full pipe. What the
   * guest wrote last is kept if this process takes it within 2 s of the VM's end.
   *
   * @example Straight to this process's stdout
   * ```ts ignore
   * const child = vm.spawn({ stdout: "inherit" });
   * ```
   */
  readonly stdout?: Stdio;
  /**
   * The workload's stderr (default "piped"), separate from stdout.
   *
   * @example Drop it
   * ```ts ignore
   * const child = vm.spawn({ stderr: "null" });
   * ```
   */
  readonly stderr?: Stdio;
  /**
   * Stops the VM when aborted (status reason "stopped"); an already aborted signal throws its
   * reason before the VM boots.
   *
   * @example A timeout
   * ```ts ignore
   * const child = vm.spawn({ signal: AbortSignal.timeout(5000) });
   * ```
   */
  readonly signal?: AbortSignal;
}

/** How `Vm.output()` runs the workload: stdout and stderr are always collected. */
export interface OutputOptions {
  /**
   * The workload's stdin: "null" (default) or "inherit".
   *
   * @example
   * ```ts ignore
   * const { stdout } = await vm.output({ stdin: "inherit" });
   * ```
   */
  readonly stdin?: "null" | "inherit";
  /**
   * Stops the VM when aborted (reason "stopped").
   *
   * @example
   * ```ts ignore
   * const { reason } = await vm.output({ signal: AbortSignal.timeout(5000) });
   * ```
   */
  readonly signal?: AbortSignal;
  /**
   * Most bytes kept per stream (default 16 MiB). More stops the VM and rejects with a
   * `KrunError` ENOBUFS, so a chatty guest cannot exhaust this process's memory.
   *
   * @example
   * ```ts ignore
   * const { stdout } = await vm.output({ maxBuffer: 1024 * 1024 });
   * ```
   */
  readonly maxBuffer?: number;
}

/** How a VM ended. */
export interface VmStatus {
  /**
   * The exit status, 0..255: the workload's own with reason "exited" (125..127: init could not
   * set up / exec / find it); 137 when stopped; 1 after a guest panic, triple fault or VMM
   * error; 0 for "shutdown" (the guest rebooted without reporting a code).
   */
  readonly code: number;
  /** Reason "exited" and code 0. */
  readonly success: boolean;
  /** Why the VM ended (`krun_get_exit_reason`): "exited" is the only reason whose code is the workload's. */
  readonly reason: ExitReason;
}

/** What `Vm.output()` gives back: the status and everything written to stdout and stderr. */
export interface VmOutput extends VmStatus {
  /** The workload's stdout, byte-exact. */
  readonly stdout: Uint8Array;
  /** The workload's stderr, byte-exact. */
  readonly stderr: Uint8Array;
}

/** A VM started by `Vm.spawn()`. */
export interface VmProcess {
  /** The workload's stdin (only with stdin "piped"; else reading it throws a TypeError). */
  readonly stdin: WritableStream<Uint8Array>;
  /** The workload's stdout (only with stdout "piped"); ends once the VM has ended. */
  readonly stdout: ReadableStream<Uint8Array>;
  /** The workload's stderr (only with stderr "piped"); ends once the VM has ended. */
  readonly stderr: ReadableStream<Uint8Array>;
  /** Resolves when the VM has ended. */
  readonly status: Promise<VmStatus>;
  /** Forces the VM down (status reason "stopped"); nothing once it has ended. */
  stop(): void;
}

const stdioValues = new Set(["piped", "inherit", "null"]);
const spawnKeys = new Set(["stdin", "stdout", "stderr", "signal"]);
/** Guest output is read in chunks of this size (the console's own ring is 64 KiB per port). */
export const readChunk = 64 * 1024;
/**
 * How far a stdout/stderr stream reads ahead of its consumer. When the VM ends, the library
 * writes out what the guest had queued (its port's 32 queue entries of ≤32 KiB, plus a 64 KiB
 * ring) only while a reader takes it, and drops the rest after 2 s without progress; reading
 * ahead this much takes all of it even from a consumer that is busy. Bounded: 2 MiB a stream.
 */
export const readAhead = 2 * 1024 * 1024;

export function checkOptions(options: unknown, allowed: Set<string>, op: string): void {
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw invalid(op, `options must be an object, got ${describe(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!allowed.has(key)) throw invalid(op, `unknown option ${key}; known: ${[...allowed].join(", ")}`);
  }
  const signal = (options as { signal?: unknown }).signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw invalid(op, `signal must be an AbortSignal, got ${describe(signal)}`);
  }
}

/** The stdio of a spawn, checked, defaults applied. */
export function stdioOf(options: SpawnOptions, op: string): [Stdio, Stdio, Stdio] {
  checkOptions(options, spawnKeys, op);
  const pick = (name: "stdin" | "stdout" | "stderr", fallback: Stdio): Stdio => {
    const v = options[name] ?? fallback;
    if (!stdioValues.has(v)) {
      throw invalid(op, `${name} must be "piped", "inherit" or "null", got ${describe(v)}`);
    }
    return v;
  };
  return [pick("stdin", "null"), pick("stdout", "piped"), pick("stderr", "piped")];
}

/**
 * The host side of one spawn: the three fds handed to the VM (closed here once it started:
 * the VMM keeps its own) and the JS streams on the other pipe ends.
 */
export class Wiring {
  readonly vmFds: [number, number, number];
  readonly stdin: WritableStream<Uint8Array> | null = null;
  readonly stdout: ReadableStream<Uint8Array> | null = null;
  readonly stderr: ReadableStream<Uint8Array> | null = null;
  #io: HostIo;
  #toClose: number[] = [];

  constructor(io: HostIo, [stdin, stdout, stderr]: [Stdio, Stdio, Stdio]) {
    this.#io = io;
    let devNull = -1;
    const nullFd = (): number => {
      if (devNull < 0) this.#toClose.push(devNull = io.devNull());
      return devNull;
    };
    try {
      const inFd = stdin === "inherit" ? 0 : stdin === "null" ? nullFd() : this.#pipeIn();
      const outFd = stdout === "inherit" ? 1 : stdout === "null" ? nullFd() : this.#pipeOut("stdout");
      const errFd = stderr === "inherit" ? 2 : stderr === "null" ? nullFd() : this.#pipeOut("stderr");
      this.vmFds = [inFd, outFd, errFd];
    } catch (err) {
      this.closeVmSide();
      this.stdin?.abort().catch(() => {});
      this.stdout?.cancel().catch(() => {});
      this.stderr?.cancel().catch(() => {});
      throw err;
    }
  }

  #pipeIn(): number {
    const [r, w] = this.#io.pipe();
    this.#toClose.push(r);
    (this as { stdin: WritableStream<Uint8Array> }).stdin = this.#io.writable(w);
    return r;
  }

  #pipeOut(name: "stdout" | "stderr"): number {
    const [r, w] = this.#io.pipe();
    this.#toClose.push(w);
    (this as { [k in typeof name]: ReadableStream<Uint8Array> })[name] = this.#io.readable(
      r,
      readChunk,
      readAhead,
    );
    return w;
  }

  /** Closes this process's copies of the VM's ends: once the VM ends, the readers see EOF. */
  closeVmSide(): void {
    for (const fd of this.#toClose) this.#io.close(fd);
    this.#toClose = [];
  }
}

/** The `VmProcess` of one spawn. */
export class Child implements VmProcess {
  readonly status: Promise<VmStatus>;
  #wiring: Wiring;
  #stop: () => void;

  constructor(wiring: Wiring, status: Promise<VmStatus>, stop: () => void) {
    this.#wiring = wiring;
    this.status = status;
    this.#stop = stop;
  }

  get stdin(): WritableStream<Uint8Array> {
    return this.#wiring.stdin ?? notPiped("stdin");
  }

  get stdout(): ReadableStream<Uint8Array> {
    return this.#wiring.stdout ?? notPiped("stdout");
  }

  get stderr(): ReadableStream<Uint8Array> {
    return this.#wiring.stderr ?? notPiped("stderr");
  }

  stop(): void {
    this.#stop();
  }
}

function notPiped(name: string): never {
  throw new TypeError(`${name} is not "piped" (spawn({ ${name}: "piped" }) gives a stream)`);
}
