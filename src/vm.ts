/**
 * `Vm`: a microVM running one program, configured by its constructor; `spawn()` streams its
 * stdin/stdout/stderr, `output()` collects them, `run()` captures its console.
 *
 * @module
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createConnection, type Socket } from "node:net";
import { join } from "node:path";
import { Errno, KrunError } from "../ffi/errors.ts";
import { envOrUndefined, load } from "../ffi/load.ts";
import { Context } from "./context.ts";
import {
  checkOptions,
  Child,
  type OutputOptions,
  type SpawnOptions,
  stdioOf,
  ttyOf,
  type VmOutput,
  type VmProcess,
  type VmStatus,
  Wiring,
} from "./process.ts";
import type { VmStats } from "./types.ts";
import { decoder, describe, invalid, uint } from "./util.ts";
import {
  addNet,
  checkKeys,
  diskKeys,
  disksMax,
  execOptionKeys,
  kernelOptionKeys,
  list,
  mountEntry,
  vmOptionKeys,
  volumeKeys,
  volumesMax,
  vsockKeys,
  vsockMax,
} from "./vm_config.ts";
import type { RunOptions, RunResult, VmOptions, VmState } from "./vm_options.ts";

const outputKeys = new Set(["stdin", "signal", "maxBuffer"]);
/** `output()`'s default `maxBuffer`: 16 MiB per stream. */
const outputMaxDefault = 16 * 1024 * 1024;

/**
 * A microVM running one program. Configured (and every option checked) by the constructor;
 * `run()` runs it alongside this process, `startEnter()` turns this process into it.
 * Dispose it (`using` / `await using`) to stop it if running and free it.
 */
export class Vm extends EventTarget implements Disposable, AsyncDisposable {
  #ctx: Context;
  #state: VmState = "ready";
  #waiting: Promise<number> | null = null;
  #afterFree: (() => void) | null = null;
  #lastStats: VmStats | null = null;
  /** The temp dir of default vsock listen sockets, removed once the context is freed. */
  #sockets: string | null = null;
  /** vsock listen ports and their unix socket paths. */
  #listening = new Map<number, string>();

  /** Creates the context and applies every option; throws `KrunError` on the first bad one. */
  constructor(options: VmOptions) {
    checkKeys(options, vmOptionKeys, "options");
    checkKeys(options.exec, execOptionKeys, "options.exec");
    if (options.kernel !== undefined) checkKeys(options.kernel, kernelOptionKeys, "options.kernel");
    super();
    const ctx = new Context();
    try {
      ctx.setVmConfig(options.cpus ?? 1, options.memoryMiB ?? 128);
      ctx.setRoot(options.root);
      if (options.workdir !== undefined) ctx.setWorkdir(options.workdir);
      const { path, args = [], env = {} } = options.exec;
      const volumes = list(options.volumes, volumesMax, volumeKeys, "volumes");
      const mounts = volumes.map(mountEntry);
      if (mounts.length > 0 && env === "inherit") {
        throw invalid(
          "new Vm",
          'volumes need exec.env to be an object (init reads them from it), not "inherit"',
        );
      }
      const execEnv = mounts.length > 0
        ? { ...env as Record<string, string>, KRUN_MOUNTS: mounts.join(",") }
        : env;
      ctx.setExec(path, args, execEnv);
      volumes.forEach((v, i) => ctx.addVirtiofs(`zkrun-vol${i}`, v.host, v.readOnly ?? false));
      list(options.disks, disksMax, diskKeys, "disks").forEach((d) => {
        ctx.addDisk2(d.id, d.path, d.format ?? "raw", d.readOnly ?? false);
      });
      if (options.rlimits !== undefined) ctx.setRlimits(options.rlimits);
      if (options.net !== undefined) addNet(ctx, options.net, options.ports !== undefined);
      if (options.ports !== undefined) ctx.setPortMap(options.ports);
      for (const v of list(options.vsock, vsockMax, vsockKeys, "vsock")) {
        const listen = v.listen ?? false;
        let path = v.path;
        if (path === undefined) {
          if (!listen) throw invalid("new Vm", `vsock port ${v.port}: path is needed without listen`);
          this.#sockets ??= mkdtempSync(join(envOrUndefined("TMPDIR") ?? "/tmp", "zkrun-vsock-"));
          path = join(this.#sockets, `${v.port}.sock`);
        }
        ctx.addVsockPort2(v.port, path, listen);
        if (listen) this.#listening.set(v.port, path);
      }
      const k = options.kernel;
      if (k !== undefined) ctx.setKernel(k.path, k.format, k.initramfs, k.cmdline);
    } catch (err) {
      ctx.free();
      this.#removeSockets();
      throw err;
    }
    this.#ctx = ctx;
  }

  /**
   * Connects to a guest program listening on vsock `port` (a `listen: true` port of the
   * `vsock` option) while the VM runs: a `node:net` Socket over the port's unix socket, in Deno
   * and Bun. Rejects with a `KrunError` ENOENT for a port not configured so, EINVAL when the VM
   * does not run; a guest with no listener on the port resets the connection (the socket then
   * ends or errors: try again once the guest listens).
   *
   * @example
   * ```ts ignore
   * const socket = await vm.connect(5000);
   * socket.write("ping");
   * socket.on("data", (data) => console.log(String(data)));
   * ```
   */
  connect(port: number): Promise<Socket> {
    const op = "krun_add_vsock_port2";
    const path = this.#listening.get(port);
    if (path === undefined) {
      return Promise.reject(
        new KrunError(op, Errno.ENOENT, `vsock port ${describe(port)} is not a listen port of this VM`),
      );
    }
    if (this.#state !== "running") {
      return Promise.reject(new KrunError(op, Errno.EINVAL, `this VM is ${this.#state}, not running`));
    }
    return new Promise((resolve, reject) => {
      const socket = createConnection({ path });
      socket.once("connect", () => {
        socket.off("error", reject);
        resolve(socket);
      });
      socket.once("error", reject);
    });
  }

  #removeSockets(): void {
    if (this.#sockets !== null) rmSync(this.#sockets, { recursive: true, force: true });
    this.#sockets = null;
  }

  /** The libkrun context id. */
  get ctxId(): number {
    return this.#ctx.id;
  }

  /** "ready", "running", "exited" or "disposed". */
  get state(): VmState {
    return this.#state;
  }

  /**
   * Boots the VM alongside this process with the workload's stdin/stdout/stderr on streams
   * (console ports on pipes: byte-exact, stderr apart from stdout, back-pressure all the way to
   * the guest: a stream nobody reads stalls the guest's writes, never this process). When the
   * VM ends, `status` resolves, the `exit` event fires (a `CustomEvent<VmStatus>`), the context
   * is freed, and stdout/stderr end once read to the last byte.
   *
   * @example
   * ```ts ignore
   * await using vm = new Vm({ root: "./rootfs", exec: { path: "/bin/cat" } });
   * const child = vm.spawn({ stdin: "piped", signal: AbortSignal.timeout(10_000) });
   * const writer = child.stdin.getWriter();
   * await writer.write(new TextEncoder().encode("ping"));
   * await writer.close();
   * console.log(await new Response(child.stdout).text(), await child.status); // "ping" { code: 0, ... }
   * ```
   */
  spawn(options: SpawnOptions = {}): VmProcess {
    const op = "krun_add_virtio_console_default";
    const stdio = stdioOf(options, op);
    const tty = ttyOf(options, op);
    if (this.#state !== "ready") throw new Error(`Vm.spawn(): this VM is ${this.#state}; a Vm runs once`);
    const signal = options.signal;
    signal?.throwIfAborted();
    const wiring = new Wiring(load().io, stdio, tty);
    this.#afterFree = () => wiring.closeAfterEnd();
    try {
      this.#ctx.disableImplicitConsole();
      this.#ctx.addVirtioConsoleDefault(...wiring.vmFds);
      this.#state = "exited"; // the console is set once per context: it cannot run again
      this.#ctx.start();
    } catch (err) {
      wiring.stdin?.abort().catch(() => {});
      wiring.stdout?.cancel().catch(() => {});
      wiring.stderr?.cancel().catch(() => {});
      if (this.#state === "ready") this.#runAfterFree(); // else freeing the context does it
      throw err;
    } finally {
      wiring.closeVmSide();
    }
    this.#state = "running";
    const stop = (): void => this.stop();
    signal?.addEventListener("abort", stop, { once: true });
    this.#waiting = this.#ctx.waitAsync();
    const status = this.#waiting.then((code) => {
      const reason = this.#ctx.exitReason() ?? "vmm-error"; // null only if the library lost it
      return { code, success: reason === "exited" && code === 0, reason } satisfies VmStatus;
    }).finally(() => {
      signal?.removeEventListener("abort", stop);
      if (this.#state === "running") this.#state = "exited";
      // Freeing closes the VMM's ends of the pipes: the streams end after their last byte.
      if (this.#state !== "disposed") {
        try {
          this.#lastStats = this.#ctx.stats();
        } catch {
          // Counters are a convenience: never let them fail the status.
        }
        this.#free();
      }
    }).then((st) => {
      this.dispatchEvent(new CustomEvent<VmStatus>("exit", { detail: st }));
      return st;
    });
    const resize = (cols: number, rows: number): void => {
      if (this.#state !== "running") return;
      try {
        this.#ctx.setConsoleSize(cols, rows);
      } catch (err) {
        // Ended meanwhile (its wait returned, or the context is gone): nothing to resize.
        if (!(err instanceof KrunError && (err.code === "EINVAL" || err.code === "ENOENT"))) throw err;
      }
    };
    return new Child(wiring, status, stop, resize);
  }

  /**
   * Runs the VM to its end and collects its stdout and stderr, each up to `maxBuffer` bytes.
   *
   * @example
   * ```ts ignore
   * await using vm = new Vm({ root: "./rootfs", exec: { path: "/bin/sh", args: ["-c", "echo hi; echo oops >&2"] } });
   * const { code, success, reason, stdout, stderr } = await vm.output();
   * ```
   */
  async output(options: OutputOptions = {}): Promise<VmOutput> {
    const op = "krun_add_virtio_console_default";
    checkOptions(options, outputKeys, op);
    const maxBuffer = uint(options.maxBuffer ?? outputMaxDefault, 0, 0x7fff_ffff, op, "maxBuffer");
    const stdin = options.stdin ?? "null";
    if (stdin !== "null" && stdin !== "inherit") {
      throw invalid(op, `output(): stdin must be "null" or "inherit", got ${describe(stdin)}`);
    }
    const child = this.spawn({ stdin, stdout: "piped", stderr: "piped", signal: options.signal });
    let overflow: string | null = null;
    const collect = async (stream: ReadableStream<Uint8Array>, name: string): Promise<Uint8Array> => {
      const chunks: Uint8Array[] = [];
      let total = 0;
      for await (const chunk of stream) {
        if (total + chunk.length > maxBuffer) {
          overflow ??= name;
          child.stop();
          break; // cancels the stream: the VMM then drops what is left
        }
        chunks.push(chunk);
        total += chunk.length;
      }
      const out = new Uint8Array(total);
      let at = 0;
      for (const c of chunks) out.set(c, (at += c.length) - c.length);
      return out;
    };
    const [stdout, stderr, status] = await Promise.all([
      collect(child.stdout, "stdout"),
      collect(child.stderr, "stderr"),
      child.status,
    ]);
    if (overflow !== null) {
      throw new KrunError(
        "output",
        Errno.ENOBUFS,
        `${overflow} exceeded maxBuffer (${maxBuffer} bytes); the VM was stopped`,
      );
    }
    return { ...status, stdout, stderr };
  }

  /** Runs the VM to completion without taking over the process; resolves with its status and output. */
  async run(options: RunOptions = {}): Promise<RunResult> {
    const output = options.output ?? "capture";
    if (output !== "capture" && output !== "inherit") {
      throw invalid(
        "krun_set_console_output",
        `output must be "capture" or "inherit", got ${describe(output)}`,
      );
    }
    const timeoutMs = options.timeoutMs === undefined
      ? undefined
      : uint(options.timeoutMs, 0, 0x7fff_ffff, "krun_wait", "timeoutMs");
    if (this.#state !== "ready") throw new Error(`Vm.run(): this VM is ${this.#state}; a Vm runs once`);
    let dir: string | undefined;
    let outputSet = false;
    try {
      if (output === "capture") {
        dir = mkdtempSync(join(envOrUndefined("TMPDIR") ?? "/tmp", "zkrun-"));
        this.#ctx.setConsoleOutput(join(dir, "console"));
        outputSet = true;
      }
      this.#ctx.start();
    } catch (err) {
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
      // The console output is set once per context: a second run() could not capture again.
      if (outputSet) this.#state = "exited";
      throw err;
    }
    this.#state = "running";
    let timedOut = false;
    const timer = timeoutMs === undefined ? undefined : setTimeout(() => {
      timedOut = true;
      this.#ctx.stop();
    }, timeoutMs);
    this.#waiting = this.#ctx.waitAsync();
    try {
      const status = await this.#waiting;
      if (timedOut) {
        throw new KrunError("krun_wait", Errno.ETIMEDOUT, `still running after ${timeoutMs} ms; stopped`);
      }
      const reason = this.#ctx.exitReason() ?? "vmm-error"; // null only if the library lost it
      const bytes = dir === undefined ? new Uint8Array() : readOutput(join(dir, "console"));
      // The guest's console is a terminal, which writes "\n" as "\r\n": undo that for the text.
      return { status, reason, output: decoder.decode(bytes).replaceAll("\r\n", "\n"), outputBytes: bytes };
    } finally {
      clearTimeout(timer);
      if (this.#state === "running") this.#state = "exited";
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    }
  }

  /**
   * libkrun's model: the process becomes the VM, its console is this terminal, and the process
   * exits with the guest's status. Returns only by throwing why the VM could not start.
   */
  startEnter(): never {
    if (this.#state !== "ready") {
      throw new Error(`Vm.startEnter(): this VM is ${this.#state}; a Vm runs once`);
    }
    this.#state = "exited";
    return this.#ctx.startEnter();
  }

  /**
   * Cheap counters (`krun_get_stats`): KVM exits so far and guest RAM resident in this
   * process, live while the VM runs; after a `spawn()`ed VM ended, the last taken before its
   * context was freed. Throws before the VM started.
   *
   * @example
   * ```ts ignore
   * const { exits, residentBytes } = vm.stats();
   * ```
   */
  stats(): VmStats {
    if (this.#state === "running" || this.#lastStats === null) return this.#ctx.stats();
    return this.#lastStats;
  }

  /** Forces a running VM down; `run()` or `status` then resolves with reason "stopped". */
  stop(): void {
    if (this.#state !== "running") return;
    try {
      this.#ctx.stop();
    } catch (err) {
      // Ended and freed meanwhile (the wait settles first): nothing to stop.
      if (!(err instanceof KrunError && err.code === "ENOENT")) throw err;
    }
  }

  /** Frees the context, then what had to outlive it (a tty spawn's pty slave). */
  #free(): void {
    this.#ctx.free();
    this.#runAfterFree();
  }

  #runAfterFree(): void {
    const after = this.#afterFree;
    this.#afterFree = null;
    after?.();
    this.#removeSockets();
  }

  /** Stops the VM if it runs, and frees the context (once the library has let go of it). */
  [Symbol.dispose](): void {
    if (this.#state === "disposed") return;
    const wasRunning = this.#state === "running";
    this.#state = "disposed";
    if (!wasRunning) return this.#free();
    try {
      this.#ctx.stop();
    } catch {
      // It may have exited on its own meanwhile; the wait below settles either way.
    }
    // The wait still in flight uses the context: free it only when that wait is over.
    this.#waiting?.catch(() => {}).finally(() => this.#free());
  }

  /** Like `[Symbol.dispose]`, but resolves only once a running VM is down and freed. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#state === "disposed") return;
    const waiting = this.#state === "running" ? this.#waiting : null;
    this.#state = "disposed";
    if (waiting !== null) {
      try {
        this.#ctx.stop();
      } catch {
        // It may have exited on its own meanwhile.
      }
      await waiting.catch(() => {});
    }
    this.#free();
  }
}

function readOutput(path: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (err) {
    if ((err as { code?: string }).code === "ENOENT") return new Uint8Array(); // nothing written
    throw err;
  }
}
