/**
 * What `Vm.spawn()` and `Vm.output()` take and give: the stdio choices, the running VM's
 * streams (`VmProcess`), its final status, and the host ends of the console pipes.
 *
 * @module
 */
import type { HostIo } from "../ffi/symbols.ts";
import type { ExitReason } from "./types.ts";
import { describe, invalid, uint } from "./util.ts";

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
   * guest wrote last is kept while this process takes it (the library gives up after 10 s without
   * progress once the VM has ended).
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
  /**
   * Interactive mode: the workload's stdin, stdout and stderr are one terminal, a new
   * pseudo-terminal of this size (true: 80 columns × 24 rows), as `ssh -t` or `docker run -t`
   * give. `VmProcess.stdin` is what is typed (^C and ^D are bytes the guest's terminal
   * interprets), `stdout` is the screen (the guest's terminal writes "\r\n"; stderr is in it),
   * and `resize()` changes the size the guest sees (its programs get SIGWINCH). Not with
   * `stdin`/`stdout`/`stderr`.
   *
   * @example A shell on a 120×40 terminal
   * ```ts ignore
   * await using vm = new Vm({ root: "./rootfs", exec: { path: "/bin/sh", args: ["-i"] } });
   * const child = vm.spawn({ tty: { cols: 120, rows: 40 } });
   * child.stdout.pipeTo(new WritableStream({ write: (b) => Deno.stdout.write(b) }));
   * const keys = child.stdin.getWriter();
   * await keys.write(new TextEncoder().encode("stty size; exit 3\r"));
   * child.resize(100, 30);
   * console.log(await child.status); // { code: 3, success: false, reason: "exited" }
   * ```
   */
  readonly tty?: boolean | TtySize;
}

/** A terminal's size. */
export interface TtySize {
  /**
   * Columns, 1..65535.
   *
   * @example
   * ```ts ignore
   * const size = { cols: 80, rows: 24 };
   * ```
   */
  readonly cols: number;
  /**
   * Rows, 1..65535.
   *
   * @example
   * ```ts ignore
   * const size = { cols: 132, rows: 50 };
   * ```
   */
  readonly rows: number;
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
  /** The workload's stdin (only with stdin "piped" or tty; else reading it throws a TypeError). */
  readonly stdin: WritableStream<Uint8Array>;
  /** The workload's stdout (only with stdout "piped" or tty); ends once the VM has ended. */
  readonly stdout: ReadableStream<Uint8Array>;
  /** The workload's stderr (only with stderr "piped"; not with tty); ends once the VM has ended. */
  readonly stderr: ReadableStream<Uint8Array>;
  /** Resolves when the VM has ended. */
  readonly status: Promise<VmStatus>;
  /** Forces the VM down (status reason "stopped"); nothing once it has ended. */
  stop(): void;
  /**
   * With `tty`: the guest's terminal takes this size (`krun_set_console_size`) and its
   * foreground programs get SIGWINCH; nothing once the VM has ended. Without `tty`: throws
   * a TypeError.
   *
   * @example Follow this process's own terminal (Deno)
   * ```ts ignore
   * Deno.addSignalListener("SIGWINCH", () => {
   *   const { columns, rows } = Deno.consoleSize();
   *   child.resize(columns, rows);
   * });
   * ```
   */
  resize(cols: number, rows: number): void;
}

const stdioValues = new Set(["piped", "inherit", "null"]);
const spawnKeys = new Set(["stdin", "stdout", "stderr", "signal", "tty"]);
const ttyKeys = new Set(["cols", "rows"]);
/** Guest output is read in chunks of this size (the console's own ring is 64 KiB per port). */
export const readChunk = 64 * 1024;
/**
 * How far a stdout/stderr stream reads ahead of its consumer. When the VM ends, the library
 * writes out what the guest had queued (its port's 32 queue entries of ≤32 KiB, plus a 64 KiB
 * ring) only while a reader takes it, and drops the rest after 10 s without progress; reading
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

/** The terminal size of a spawn's `tty` option, checked; null without a tty. */
export function ttyOf(options: SpawnOptions, op: string): TtySize | null {
  const tty = options.tty ?? false;
  if (tty === false) return null;
  for (const name of ["stdin", "stdout", "stderr"] as const) {
    if (options[name] !== undefined) {
      throw invalid(op, `tty: the terminal is stdin, stdout and stderr; ${name} cannot be set with it`);
    }
  }
  if (tty === true) return { cols: 80, rows: 24 };
  checkOptions(tty, ttyKeys, op);
  const { cols, rows } = tty;
  return { cols: uint(cols, 1, 0xffff, op, "tty.cols"), rows: uint(rows, 1, 0xffff, op, "tty.rows") };
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
  readonly tty: boolean;
  #io: HostIo;
  #toClose: number[] = [];
  /** The pty's slave: the VMM restores its settings and reads its size until the context is freed. */
  #afterEnd: number[] = [];

  constructor(io: HostIo, [stdin, stdout, stderr]: [Stdio, Stdio, Stdio], tty: TtySize | null = null) {
    this.#io = io;
    this.tty = tty !== null;
    if (tty !== null) {
      const [master, second, slave] = io.pty(tty.cols, tty.rows);
      this.#afterEnd.push(slave);
      this.vmFds = [slave, slave, slave];
      // A pty master reads EIO, not end of file, once the slave is closed everywhere.
      this.stdout = endOnError(io.readable(master, readChunk, readAhead));
      this.stdin = io.writable(second);
      return;
    }
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

  /** After the context is freed: closes the pty's slave, so its stdout ends. */
  closeAfterEnd(): void {
    for (const fd of this.#afterEnd) this.#io.close(fd);
    this.#afterEnd = [];
  }
}

/** `stream`, ending instead of failing when a read fails. */
function endOnError(stream: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
  const reader = stream.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller): Promise<void> {
      try {
        const { value, done } = await reader.read();
        if (done) controller.close();
        else controller.enqueue(value);
      } catch {
        controller.close();
      }
    },
    cancel(reason): Promise<void> {
      return reader.cancel(reason);
    },
  });
}

/** The `VmProcess` of one spawn. */
export class Child implements VmProcess {
  readonly status: Promise<VmStatus>;
  #wiring: Wiring;
  #stop: () => void;

  #resize: (cols: number, rows: number) => void;

  constructor(
    wiring: Wiring,
    status: Promise<VmStatus>,
    stop: () => void,
    resize: (cols: number, rows: number) => void,
  ) {
    this.#wiring = wiring;
    this.status = status;
    this.#stop = stop;
    this.#resize = resize;
  }

  resize(cols: number, rows: number): void {
    if (!this.#wiring.tty) throw new TypeError("resize() needs a terminal: spawn({ tty: true })");
    const op = "krun_set_console_size";
    this.#resize(uint(cols, 1, 0xffff, op, "cols"), uint(rows, 1, 0xffff, op, "rows"));
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
