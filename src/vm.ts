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
import type { DiskFormat, Env, ExitReason, KernelFormat, Mac, PortMap, Rlimits, VmStats } from "./types.ts";
import { decoder, describe, invalid, uint } from "./util.ts";

/** The program a `Vm` runs. */
export interface ExecOptions {
  /**
   * Its path inside the guest.
   *
   * @example
   * ```ts ignore
   * new Vm({ root: "./rootfs", exec: { path: "/bin/sh" } });
   * ```
   */
  readonly path: string;
  /**
   * Its arguments, without argv[0].
   *
   * @example
   * ```ts ignore
   * new Vm({ root: "./rootfs", exec: { path: "/bin/sh", args: ["-c", "uname -a"] } });
   * ```
   */
  readonly args?: readonly string[];
  /**
   * Its environment: exactly these variables (default none), or "inherit" for the host's.
   *
   * @example
   * ```ts ignore
   * new Vm({ root: "./rootfs", exec: { path: "/usr/bin/env", env: { LANG: "C.UTF-8" } } });
   * ```
   */
  readonly env?: Env;
}

/** A kernel of your own instead of the bundled one (`krun_set_kernel`). */
export interface KernelOptions {
  /**
   * Host path of the kernel file.
   *
   * @example
   * ```ts ignore
   * new Vm({ root: "./rootfs", exec: { path: "/bin/true" }, kernel: { path: "./vmlinux" } });
   * ```
   */
  readonly path: string;
  /**
   * Its format (default "elf"; zkrun loads "elf" and "raw").
   *
   * @example
   * ```ts ignore
   * new Vm({ root: "./rootfs", exec: { path: "/bin/true" }, kernel: { path: "./guest.bin", format: "raw" } });
   * ```
   */
  readonly format?: KernelFormat;
  /**
   * Host path of an initramfs.
   *
   * @example
   * ```ts ignore
   * new Vm({ root: "./rootfs", exec: { path: "/bin/true" }, kernel: { path: "./vmlinux", initramfs: "./initrd" } });
   * ```
   */
  readonly initramfs?: string;
  /**
   * A kernel command line that replaces the default one.
   *
   * @example
   * ```ts ignore
   * new Vm({ root: "./rootfs", exec: { path: "/bin/true" }, kernel: { path: "./vmlinux", cmdline: "console=hvc0 quiet" } });
   * ```
   */
  readonly cmdline?: string;
}

/** What a `Vm` is made of. Only `root` and `exec` are required. */
export interface VmOptions {
  /**
   * vCPUs, 1..255 (default 1; at most `maxVcpus()`).
   *
   * @example
   * ```ts ignore
   * new Vm({ cpus: 2, root: "./rootfs", exec: { path: "/bin/true" } });
   * ```
   */
  readonly cpus?: number;
  /**
   * RAM in MiB (default 128).
   *
   * @example
   * ```ts ignore
   * new Vm({ memoryMiB: 512, root: "./rootfs", exec: { path: "/bin/true" } });
   * ```
   */
  readonly memoryMiB?: number;
  /**
   * Host directory that becomes the guest's root filesystem (virtio-fs).
   *
   * @example
   * ```ts ignore
   * new Vm({ root: "./rootfs", exec: { path: "/bin/true" } });
   * ```
   */
  readonly root: string;
  /**
   * The program to run.
   *
   * @example
   * ```ts ignore
   * new Vm({ root: "./rootfs", exec: { path: "/bin/echo", args: ["hi"] } });
   * ```
   */
  readonly exec: ExecOptions;
  /**
   * Working directory inside the guest.
   *
   * @example
   * ```ts ignore
   * new Vm({ root: "./rootfs", workdir: "/tmp", exec: { path: "/bin/pwd" } });
   * ```
   */
  readonly workdir?: string;
  /**
   * Resource limits: [soft, hard] per Linux RLIMIT_* name.
   *
   * @example
   * ```ts ignore
   * new Vm({ root: "./rootfs", exec: { path: "/bin/true" }, rlimits: { NOFILE: [1024, 4096], CORE: [0, "unlimited"] } });
   * ```
   */
  readonly rlimits?: Rlimits;
  /**
   * Boot this kernel instead of the bundled libkrunfw one.
   *
   * @example
   * ```ts ignore
   * new Vm({ root: "./rootfs", exec: { path: "/bin/true" }, kernel: { path: "./vmlinux" } });
   * ```
   */
  readonly kernel?: KernelOptions;
  /**
   * Host directories shared into the guest (virtio-fs, `krun_add_virtiofs3`), mounted by init
   * before the workload starts (at most 8; needs `exec.env` to be an object, not "inherit").
   *
   * @example
   * ```ts ignore
   * new Vm({
   *   root: "./rootfs",
   *   exec: { path: "/bin/ls", args: ["/data"] },
   *   volumes: [{ host: "./data", guest: "/data", readOnly: true }],
   * });
   * ```
   */
  readonly volumes?: readonly VolumeOptions[];
  /**
   * Disk images as virtio-blk devices (`krun_add_disk2`): the first is /dev/vda in the guest,
   * the next /dev/vdb, …; not mounted (the workload or `mount` does that).
   *
   * @example
   * ```ts ignore
   * new Vm({
   *   root: "./rootfs",
   *   exec: { path: "/bin/mount", args: ["/dev/vda", "/mnt"] },
   *   disks: [{ id: "data", path: "./data.qcow2", format: "qcow2", readOnly: true }],
   * });
   * ```
   */
  readonly disks?: readonly DiskOptions[];
  /**
   * TSI port map, host port → guest port (`krun_set_port_map`): a guest program listening on a
   * mapped guest port is reachable at the mapped host port (on the address the guest bound;
   * a guest's `[::]` or `0.0.0.0` listener is then on the host's wildcard address, so reachable
   * on 127.0.0.1 too); a listener on an unmapped port stays inside the guest. Without this
   * option every guest listener is exposed on the host's loopback only (127.0.0.1 / ::1), at the
   * same port number; `{}` exposes none. Ports are 1..65535; a guest port may be mapped once.
   * Guest programs reach out (connect) through the host's network stack either way.
   *
   * @example A guest web server on port 80, at http://127.0.0.1:8080/ on the host
   * ```ts ignore
   * new Vm({ root: "./rootfs", exec: { path: "/usr/sbin/httpd", args: ["-f", "-p", "80"] }, ports: { 8080: 80 } });
   * ```
   */
  readonly ports?: PortMap;
  /**
   * vsock ports bridged to host unix sockets (`krun_add_vsock_port2`, at most 64). `listen:
   * true`: the host side listens (at `path`, default a new socket in a temp dir) and
   * `vm.connect(port)` reaches a guest program listening on vsock `port`. Otherwise `path` is
   * a unix socket this host listens on (e.g. `Deno.listen({ transport: "unix", path })`) and a
   * guest's connect to (CID 2, `port`) reaches it.
   *
   * @example A guest server on vsock port 5000, and a host listener the guest reaches on 6000
   * ```ts ignore
   * await using vm = new Vm({
   *   root: "./rootfs",
   *   exec: { path: "/usr/bin/my-agent" },
   *   vsock: [{ port: 5000, listen: true }, { port: 6000, path: "/run/host-api.sock" }],
   * });
   * vm.spawn();
   * const socket = await vm.connect(5000); // a node:net Socket, in Deno and Bun
   * ```
   */
  readonly vsock?: readonly VsockPortOptions[];
  /**
   * One virtio-net NIC (eth0 in the guest) on a host network backend: `unixstream` (passt,
   * socket_vmnet: `krun_add_net_unixstream`), `unixgram` (gvproxy, vmnet-helper:
   * `krun_add_net_unixgram`) or `tap` (`krun_add_net_tap`), exactly one. With a NIC, TSI is
   * off: guest sockets go through the NIC, so `ports` cannot be given with it (forward ports in
   * the backend, e.g. `passt -t`). Features are libkrun's COMPAT_NET_FEATURES, as crun's.
   *
   * @example passt listening on a unix socket, the guest configured by DHCP
   * ```ts ignore
   * // passt -f -s /tmp/passt.sock (or a connected fd of a socketpair passed as `passt --fd`)
   * new Vm({
   *   root: "./rootfs",
   *   exec: { path: "/bin/wget", args: ["-O-", "http://example.com/"] },
   *   net: { unixstream: "/tmp/passt.sock", mac: "5a:94:ef:e4:0c:ee", dhcp: true },
   * });
   * ```
   */
  readonly net?: NetOptions;
}

/** A virtio-net NIC and its host backend: exactly one of `unixstream`, `unixgram`, `tap`. */
export interface NetOptions {
  /**
   * A SOCK_STREAM unix socket with QEMU framing (passt): its path (connected when the VM
   * starts), or a connected fd (duplicated at start: the caller keeps its own).
   *
   * @example
   * ```ts ignore
   * const net = { unixstream: "/tmp/passt.sock", dhcp: true };
   * ```
   */
  readonly unixstream?: string | number;
  /**
   * A SOCK_DGRAM unix socket, one frame per datagram (gvproxy): its path, or a connected fd.
   *
   * @example
   * ```ts ignore
   * const net = { unixgram: "/tmp/gvproxy.sock" };
   * ```
   */
  readonly unixgram?: string | number;
  /**
   * An existing host tap interface's name (opening it needs CAP_NET_ADMIN or its owner).
   *
   * @example
   * ```ts ignore
   * const net = { tap: "tap0", dhcp: true };
   * ```
   */
  readonly tap?: string;
  /**
   * The NIC's MAC address, "aa:bb:cc:dd:ee:ff" or 6 bytes (default "5a:94:ef:e4:0c:ee",
   * libkrun's).
   *
   * @example
   * ```ts ignore
   * const net = { unixstream: "/tmp/passt.sock", mac: "02:00:00:00:00:01" };
   * ```
   */
  readonly mac?: Mac;
  /**
   * Init brings eth0 up and configures it by DHCP (address, default route, MTU, resolv.conf)
   * before the workload starts (`NET_FLAG_DHCP_CLIENT`; default false: the workload does it).
   *
   * @example
   * ```ts ignore
   * const net = { unixstream: "/tmp/passt.sock", dhcp: true };
   * ```
   */
  readonly dhcp?: boolean;
}

/** One vsock port bridged to a host unix socket. */
export interface VsockPortOptions {
  /**
   * The vsock port, 0..2^32-1 but 620 (TSI's).
   *
   * @example
   * ```ts ignore
   * const port = { port: 5000, listen: true };
   * ```
   */
  readonly port: number;
  /**
   * The host unix socket (at most 107 bytes): with `listen`, where the VMM listens (it must
   * not exist; default a new socket in a temp dir, removed with the VM); else where the host
   * already listens.
   *
   * @example
   * ```ts ignore
   * const port = { port: 6000, path: "/tmp/api.sock" };
   * ```
   */
  readonly path?: string;
  /**
   * The host connects to the guest (`vm.connect(port)`), rather than the guest to the host
   * (default false).
   *
   * @example
   * ```ts ignore
   * const port = { port: 5000, listen: true };
   * ```
   */
  readonly listen?: boolean;
}

/** A host directory shared into the guest. */
export interface VolumeOptions {
  /**
   * The host directory.
   *
   * @example
   * ```ts ignore
   * const volume = { host: "/srv/data", guest: "/data" };
   * ```
   */
  readonly host: string;
  /**
   * Where the guest sees it: an absolute path without ":" or ",". zkrun's init makes it,
   * with its parents, in the root, so the root must be writable and the path must not exist
   * there yet (init refuses an existing one today).
   *
   * @example
   * ```ts ignore
   * const volume = { host: "./out", guest: "/var/out" };
   * ```
   */
  readonly guest: string;
  /**
   * The guest cannot change it (default false).
   *
   * @example
   * ```ts ignore
   * const volume = { host: "./src", guest: "/src", readOnly: true };
   * ```
   */
  readonly readOnly?: boolean;
}

/** A disk image the guest sees as a virtio-blk device. */
export interface DiskOptions {
  /**
   * The device's id (virtio-blk serial, /dev/disk/by-id/virtio-<id> where udev runs).
   *
   * @example
   * ```ts ignore
   * const disk = { id: "data", path: "./data.img" };
   * ```
   */
  readonly id: string;
  /**
   * The host image file.
   *
   * @example
   * ```ts ignore
   * const disk = { id: "data", path: "/var/lib/images/data.raw" };
   * ```
   */
  readonly path: string;
  /**
   * Its format (default "raw"; zkrun reads "qcow2" read-only).
   *
   * @example
   * ```ts ignore
   * const disk = { id: "base", path: "./base.qcow2", format: "qcow2", readOnly: true };
   * ```
   */
  readonly format?: DiskFormat;
  /**
   * The guest cannot write it (default false).
   *
   * @example
   * ```ts ignore
   * const disk = { id: "data", path: "./data.img", readOnly: true };
   * ```
   */
  readonly readOnly?: boolean;
}

/** How `run()` treats the guest's console. */
export interface RunOptions {
  /**
   * "capture" (default): collect it and return it. "inherit": it goes to this process's
   * stdout as it comes (and the VM's console takes stdin).
   *
   * @example
   * ```ts ignore
   * const { status } = await vm.run({ output: "inherit" });
   * ```
   */
  readonly output?: "capture" | "inherit";
  /**
   * Stop the VM and reject with ETIMEDOUT after this many milliseconds.
   *
   * @example
   * ```ts ignore
   * const { output } = await vm.run({ timeoutMs: 10_000 });
   * ```
   */
  readonly timeoutMs?: number;
}

/** What a finished `run()` gives back. */
export interface RunResult {
  /**
   * The exit status, 0..255: the workload's own with reason "exited" (125..127: init could not
   * set up / exec / find it); 137 when stopped; 1 after a guest panic, triple fault or VMM
   * error; 0 for "shutdown" (the guest rebooted without reporting a code).
   */
  readonly status: number;
  /** Why the VM ended: "exited" is the only reason whose status is the workload's. */
  readonly reason: ExitReason;
  /** The console output as text, line ends as the workload wrote them ("" with output "inherit"). */
  readonly output: string;
  /** The console output as the guest's terminal sent it (line ends "\r\n"). */
  readonly outputBytes: Uint8Array;
}

/** Where a `Vm` is in its life: it runs once. */
export type VmState = "ready" | "running" | "exited" | "disposed";

const vmOptionKeys = new Set([
  "cpus",
  "memoryMiB",
  "root",
  "exec",
  "workdir",
  "rlimits",
  "kernel",
  "volumes",
  "disks",
  "ports",
  "vsock",
  "net",
]);
const netKeys = new Set(["unixstream", "unixgram", "tap", "mac", "dhcp"]);
/** libkrun's default MAC (krun_set_net_mac's default). */
const netMacDefault = "5a:94:ef:e4:0c:ee";
/** libkrun.h's COMPAT_NET_FEATURES: CSUM, GUEST_CSUM, GUEST_TSO4, GUEST_UFO, HOST_TSO4, HOST_UFO. */
const compatNetFeatures = (1 << 0) | (1 << 1) | (1 << 7) | (1 << 10) | (1 << 11) | (1 << 14);
/** A tap NIC without HOST_TSO4/HOST_UFO: the set tests/vm/96-net-vm.c runs a tap with. */
const tapNetFeatures = compatNetFeatures & ~((1 << 11) | (1 << 14));
const netFlagDhcpClient = 1 << 1;

/** Adds `options.net`'s NIC, checked (exactly one backend, known keys, a boolean `dhcp`). */
function addNet(ctx: Context, net: NetOptions, hasPorts: boolean): void {
  checkKeys(net, netKeys, "options.net");
  const backends = (["unixstream", "unixgram", "tap"] as const).filter((k) => net[k] !== undefined);
  if (backends.length !== 1) {
    throw invalid("new Vm", `net needs exactly one of unixstream, unixgram, tap; got ${backends.length}`);
  }
  if (hasPorts) {
    throw invalid(
      "new Vm",
      "ports is TSI's port map, and with a net NIC TSI is off: forward ports in the network backend (e.g. passt -t)",
    );
  }
  const dhcp = net.dhcp ?? false;
  if (typeof dhcp !== "boolean") throw invalid("new Vm", `net.dhcp must be a boolean, got ${describe(dhcp)}`);
  const flags = dhcp ? netFlagDhcpClient : 0;
  const mac = net.mac ?? netMacDefault;
  const backend = backends[0];
  if (backend === "tap") return ctx.addNetTap(net.tap as string, mac, tapNetFeatures, flags);
  const where = net[backend];
  const path = typeof where === "number" ? null : where as string;
  const fd = typeof where === "number" ? where : -1;
  if (typeof where === "number" && where < 0) {
    throw invalid("new Vm", `net.${backend} must be a path or an fd >= 0, got ${where}`);
  }
  if (backend === "unixstream") ctx.addNetUnixstream(path, fd, mac, compatNetFeatures, flags);
  else ctx.addNetUnixgram(path, fd, mac, compatNetFeatures, flags);
}
const vsockKeys = new Set(["port", "path", "listen"]);
const vsockMax = 64;
const volumeKeys = new Set(["host", "guest", "readOnly"]);
const diskKeys = new Set(["id", "path", "format", "readOnly"]);
/** Shares init mounts (KRUN_MOUNTS); each is a virtio-fs device (the transport has 32 slots). */
const volumesMax = 8;
const disksMax = 8;

function list<T>(
  value: readonly T[] | undefined,
  max: number,
  keys: Set<string>,
  what: string,
): readonly T[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw invalid("new Vm", `${what} must be an array, got ${describe(value)}`);
  if (value.length > max) {
    throw new KrunError("new Vm", Errno.E2BIG, `at most ${max} ${what}, got ${value.length}`);
  }
  value.forEach((item, i) => checkKeys(item, keys, `${what}[${i}]`));
  return value;
}

/** The KRUN_MOUNTS entry of volume `i` (tag "zkrun-vol<i>"), its guest path checked. */
function mountEntry(volume: VolumeOptions, i: number): string {
  const guest = volume.guest;
  if (typeof guest !== "string" || !guest.startsWith("/") || /[:,\0]/.test(guest) || guest.length > 1024) {
    throw invalid(
      "new Vm",
      `volumes[${i}].guest must be an absolute path without ":" or ",", got ${describe(guest)}`,
    );
  }
  return `zkrun-vol${i}:${guest}${volume.readOnly === true ? ":ro" : ""}`;
}
const execOptionKeys = new Set(["path", "args", "env"]);
const kernelOptionKeys = new Set(["path", "format", "initramfs", "cmdline"]);

function checkKeys(value: unknown, allowed: Set<string>, what: string): void {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw invalid("new Vm", `${what} must be an object, got ${describe(value)}`);
  }
  for (const key of Object.keys(value)) {
    if (!allowed.has(key)) {
      throw invalid("new Vm", `unknown option ${what}.${key}; known: ${[...allowed].join(", ")}`);
    }
  }
}

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
