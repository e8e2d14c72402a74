/**
 * `ContextNetwork`: the layer of `Context` that connects the guest: virtio-net (passt, gvproxy,
 * a tap, a unix socket), TSI's port map, and vsock with its ports. One checked method per
 * `krun_*` call, on `ContextStorage` (context_storage.ts).
 *
 * @module
 */
import { bool, fdMax, macAddress } from "./context_args.ts";
import { type ContextBase, live, setPath, setU32 } from "./context_base.ts";
import { ContextStorage } from "./context_storage.ts";
import type { Mac, PortMap } from "./types.ts";
import { check, cString, cStringArray, portEntries, u32Max, uint } from "./util.ts";

/**
 * `Context`'s network setters: virtio-net backends, the TSI port map and vsock. Not
 * constructed on its own: see `Context`.
 */
export abstract class ContextNetwork extends ContextStorage {
  /**
   * TSI port forwarding (`krun_set_port_map`, "host:guest" entries): mapped guest ports are
   * exposed at their host ports, unmapped ones stay in the guest; an empty map exposes none.
   * Never calling it exposes every guest listener on the host's loopback, at its own port.
   */
  setPortMap(ports: PortMap): void {
    const op = "krun_set_port_map";
    const { native, ctx } = live(this, op);
    const list = cStringArray(native, portEntries(ports, op), op, "ports");
    check(native.call.krun_set_port_map(ctx, list.array), op, list);
  }

  /** virtio-net over a unix stream socket (passt): a path, or a connected fd (`krun_add_net_unixstream`). */
  addNetUnixstream(path: string | null, fd: number, mac: Mac, features: number = 0, flags: number = 0): void {
    addNetSocket(this, "krun_add_net_unixstream", path, fd, mac, features, flags);
  }

  /** virtio-net over a unix datagram socket (gvproxy, vfkit): a path or an fd (`krun_add_net_unixgram`). */
  addNetUnixgram(path: string | null, fd: number, mac: Mac, features: number = 0, flags: number = 0): void {
    addNetSocket(this, "krun_add_net_unixgram", path, fd, mac, features, flags);
  }

  /** virtio-net on a host tap interface (`krun_add_net_tap`). */
  addNetTap(name: string, mac: Mac, features: number = 0, flags: number = 0): void {
    const op = "krun_add_net_tap";
    const { native, ctx } = live(this, op);
    const nameBytes = cString(name, op, "tap name");
    const macBytes = macAddress(mac, op);
    const f = uint(features, 0, u32Max, op, "features");
    const fl = uint(flags, 0, u32Max, op, "flags");
    check(native.call.krun_add_net_tap(ctx, nameBytes, macBytes, f, fl), op, [nameBytes, macBytes]);
  }

  /** virtio-net through passt on this connected fd (`krun_set_passt_fd`). */
  setPasstFd(fd: number): void {
    setU32(this, "krun_set_passt_fd", fd, "fd", fdMax);
  }

  /** virtio-net through gvproxy's socket at `path` (`krun_set_gvproxy_path`). */
  setGvproxyPath(path: string): void {
    setPath(this, "krun_set_gvproxy_path", path, "gvproxy path");
  }

  /** The MAC address of the virtio-net device (`krun_set_net_mac`), e.g. "5a:94:ef:e4:0c:ee". */
  setNetMac(mac: Mac): void {
    const op = "krun_set_net_mac";
    const { native, ctx } = live(this, op);
    const bytes = macAddress(mac, op);
    check(native.call.krun_set_net_mac(ctx, bytes), op, bytes);
  }

  /** A vsock device with these TSI features (`KRUN_TSI_HIJACK_*`) (`krun_add_vsock`). */
  addVsock(tsiFeatures: number): void {
    setU32(this, "krun_add_vsock", tsiFeatures, "tsiFeatures");
  }

  /** A guest vsock port connected to the host unix socket at `path` (`krun_add_vsock_port`). */
  addVsockPort(port: number, path: string): void {
    this.addVsockPort2(port, path, false, "krun_add_vsock_port");
  }

  /** A vsock port on a unix socket; `listen`: the host side listens (`krun_add_vsock_port2`). */
  addVsockPort2(
    port: number,
    path: string,
    listen: boolean,
    op: "krun_add_vsock_port" | "krun_add_vsock_port2" = "krun_add_vsock_port2",
  ): void {
    const { native, ctx } = live(this, op);
    const p = uint(port, 0, u32Max, op, "port");
    const bytes = cString(path, op, "socket path");
    const rc = op === "krun_add_vsock_port"
      ? native.call.krun_add_vsock_port(ctx, p, bytes)
      : native.call.krun_add_vsock_port2(ctx, p, bytes, bool(listen, op, "listen"));
    check(rc, op, bytes);
  }

  /** No implicit vsock device (`krun_disable_implicit_vsock`). */
  disableImplicitVsock(): void {
    const op = "krun_disable_implicit_vsock";
    const { native, ctx } = live(this, op);
    check(native.call.krun_disable_implicit_vsock(ctx), op);
  }
}

/** krun_add_net_unixstream / krun_add_net_unixgram: the same arguments, two socket types. */
function addNetSocket(
  context: ContextBase,
  op: "krun_add_net_unixstream" | "krun_add_net_unixgram",
  path: string | null,
  fd: number,
  mac: Mac,
  features: number,
  flags: number,
): void {
  const { native, ctx } = live(context, op);
  const pathBytes = path === null ? null : cString(path, op, "path");
  const fdNum = uint(fd, -1, fdMax, op, "fd");
  const macBytes = macAddress(mac, op);
  const f = uint(features, 0, u32Max, op, "features");
  const fl = uint(flags, 0, u32Max, op, "flags");
  check(native.call[op](ctx, pathBytes, fdNum, macBytes, f, fl), op, [pathBytes, macBytes]);
}
