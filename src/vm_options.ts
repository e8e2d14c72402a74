/**
 * The options and results of `Vm`: what a `new Vm(...)` is made of (`VmOptions` and its parts),
 * how `run()` treats the console and what it gives back, and `VmState`.
 *
 * @module
 */
import type { DiskFormat, Env, ExitReason, KernelFormat, Mac, PortMap, Rlimits } from "./types.ts";

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
