/**
 * `ContextDevices`: the layer of `Context` for the guest's other devices: consoles (virtio,
 * multiport, serial), virtio-gpu and its displays, input, vhost-user, sound and VFIO. One
 * checked method per `krun_*` call, on `ContextNetwork` (context_network.ts). Devices zkrun
 * does not build throw the library's ENOTSUP with its reason: the calls exist so that code
 * written for libkrun runs unchanged and learns why.
 *
 * @module
 */
import { fdMax, ownBytes, u16Max, u64 } from "./context_args.ts";
import { type ContextBase, live, setBool, setU32 } from "./context_base.ts";
import { ContextNetwork } from "./context_network.ts";
import { check, cString, describe, invalid, u32Max, u8Max, uint } from "./util.ts";

/**
 * `Context`'s device setters: consoles, GPU and displays, input, vhost-user, sound, VFIO. Not
 * constructed on its own: see `Context`.
 */
export abstract class ContextDevices extends ContextNetwork {
  /** Sends the console to a host file instead of this process's terminal (`krun_set_console_output`). */
  setConsoleOutput(path: string): void {
    const op = "krun_set_console_output";
    const { native, ctx } = live(this, op);
    const bytes = cString(path, op, "console output path");
    check(native.call.krun_set_console_output(ctx, bytes), op, bytes);
  }

  /** No implicit console (hvc0 on this process's stdin/stdout): only consoles added here (`krun_disable_implicit_console`). */
  disableImplicitConsole(): void {
    const op = "krun_disable_implicit_console";
    const { native, ctx } = live(this, op);
    check(native.call.krun_disable_implicit_console(ctx), op);
  }

  /**
   * A virtio console on three host fds, which stay yours (`krun_add_virtio_console_default`):
   * a terminal fd is the guest's console; each other fd becomes a port (krun-stdin /
   * krun-stdout / krun-stderr) that init puts on the workload's fd 0/1/2, byte-exact. The VMM
   * writes output without ever blocking: a reader that stops reading stalls the guest's port.
   */
  addVirtioConsoleDefault(inputFd: number, outputFd: number, errFd: number): void {
    const op = "krun_add_virtio_console_default";
    const { native, ctx } = live(this, op);
    const fd = (v: number, what: string): number => uint(v, 0, 0x7fff_ffff, op, what);
    const rc = native.call.krun_add_virtio_console_default(
      ctx,
      fd(inputFd, "inputFd"),
      fd(outputFd, "outputFd"),
      fd(errFd, "errFd"),
    );
    check(rc, op);
  }

  /** A legacy serial console on two fds (`krun_add_serial_console_default`). */
  addSerialConsoleDefault(inputFd: number, outputFd: number): void {
    const op = "krun_add_serial_console_default";
    const { native, ctx } = live(this, op);
    const i = uint(inputFd, 0, fdMax, op, "inputFd");
    check(
      native.call.krun_add_serial_console_default(ctx, i, uint(outputFd, 0, fdMax, op, "outputFd")),
      op,
    );
  }

  /** An empty multiport virtio console; returns its console id (`krun_add_virtio_console_multiport`). */
  addVirtioConsoleMultiport(): number {
    const op = "krun_add_virtio_console_multiport";
    const { native, ctx } = live(this, op);
    return check(native.call.krun_add_virtio_console_multiport(ctx), op);
  }

  /** A terminal port named `name` on a multiport console (`krun_add_console_port_tty`). */
  addConsolePortTty(consoleId: number, name: string, ttyFd: number): void {
    const op = "krun_add_console_port_tty";
    const { native, ctx } = live(this, op);
    const id = uint(consoleId, 0, u32Max, op, "consoleId");
    const bytes = cString(name, op, "name");
    check(
      native.call.krun_add_console_port_tty(ctx, id, bytes, uint(ttyFd, 0, fdMax, op, "ttyFd")),
      op,
      bytes,
    );
  }

  /** A data port named `name` on a multiport console (`krun_add_console_port_inout`). */
  addConsolePortInout(consoleId: number, name: string, inputFd: number, outputFd: number): void {
    const op = "krun_add_console_port_inout";
    const { native, ctx } = live(this, op);
    const id = uint(consoleId, 0, u32Max, op, "consoleId");
    const bytes = cString(name, op, "name");
    const i = uint(inputFd, -1, fdMax, op, "inputFd");
    const o = uint(outputFd, -1, fdMax, op, "outputFd");
    check(native.call.krun_add_console_port_inout(ctx, id, bytes, i, o), op, bytes);
  }

  /** A virtio-gpu with these virglrenderer flags (`krun_set_gpu_options`). */
  setGpuOptions(virglFlags: number): void {
    setU32(this, "krun_set_gpu_options", virglFlags, "virglFlags");
  }

  /** A virtio-gpu with virgl flags and a host-visible window of `shmSize` bytes (`krun_set_gpu_options2`). */
  setGpuOptions2(virglFlags: number, shmSize: number | bigint): void {
    const op = "krun_set_gpu_options2";
    const { native, ctx } = live(this, op);
    const flags = uint(virglFlags, 0, u32Max, op, "virglFlags");
    check(native.call.krun_set_gpu_options2(ctx, flags, u64(shmSize, op, "shmSize")), op);
  }

  /** A display of `width`×`height` pixels; returns its id (`krun_add_display`). */
  addDisplay(width: number, height: number): number {
    const op = "krun_add_display";
    const { native, ctx } = live(this, op);
    const w = uint(width, 1, u32Max, op, "width");
    return check(native.call.krun_add_display(ctx, w, uint(height, 1, u32Max, op, "height")), op);
  }

  /** A display's EDID blob (`krun_display_set_edid`). */
  displaySetEdid(displayId: number, edid: Uint8Array): void {
    const op = "krun_display_set_edid";
    const { native, ctx } = live(this, op);
    const id = uint(displayId, 0, u32Max, op, "displayId");
    const blob = ownBytes(edid, op, "edid");
    check(native.call.krun_display_set_edid(ctx, id, blob, BigInt(blob.length)), op, blob);
  }

  /** A display's DPI (`krun_display_set_dpi`). */
  displaySetDpi(displayId: number, dpi: number): void {
    setDisplayU32(this, "krun_display_set_dpi", displayId, dpi, "dpi");
  }

  /** A display's physical size in millimetres (`krun_display_set_physical_size`). */
  displaySetPhysicalSize(displayId: number, widthMm: number, heightMm: number): void {
    const op = "krun_display_set_physical_size";
    const { native, ctx } = live(this, op);
    const id = uint(displayId, 0, u32Max, op, "displayId");
    const w = uint(widthMm, 0, u16Max, op, "widthMm");
    const h = uint(heightMm, 0, u16Max, op, "heightMm");
    check(native.call.krun_display_set_physical_size(ctx, id, w, h), op);
  }

  /** A display's EDID monitor name (`krun_display_set_edid_name`). */
  displaySetEdidName(displayId: number, name: string): void {
    const op = "krun_display_set_edid_name";
    const { native, ctx } = live(this, op);
    const id = uint(displayId, 0, u32Max, op, "displayId");
    const bytes = cString(name, op, "name");
    check(native.call.krun_display_set_edid_name(ctx, id, bytes), op, bytes);
  }

  /** A display's refresh rate in Hz (`krun_display_set_refresh_rate`). */
  displaySetRefreshRate(displayId: number, hz: number): void {
    setDisplayU32(this, "krun_display_set_refresh_rate", displayId, hz, "refresh rate");
  }

  /** The display backend: a `krun_display_backend` struct as bytes (`krun_set_display_backend`). */
  setDisplayBackend(backend: Uint8Array): void {
    const op = "krun_set_display_backend";
    const { native, ctx } = live(this, op);
    const bytes = ownBytes(backend, op, "backend");
    check(native.call.krun_set_display_backend(ctx, bytes, BigInt(bytes.length)), op, bytes);
  }

  /** An input device from its config and events backend structs as bytes (`krun_add_input_device`). */
  addInputDevice(configBackend: Uint8Array, eventsBackend: Uint8Array): void {
    const op = "krun_add_input_device";
    const { native, ctx } = live(this, op);
    const cfg = ownBytes(configBackend, op, "configBackend");
    const ev = ownBytes(eventsBackend, op, "eventsBackend");
    const rc = native.call.krun_add_input_device(ctx, cfg, BigInt(cfg.length), ev, BigInt(ev.length));
    check(rc, op, [cfg, ev]);
  }

  /** An input device passed through from an evdev fd (`krun_add_input_device_fd`). */
  addInputDeviceFd(fd: number): void {
    setU32(this, "krun_add_input_device_fd", fd, "fd", fdMax);
  }

  /** A vhost-user device (`KRUN_VIRTIO_DEVICE_*`) served at `socketPath` (`krun_add_vhost_user_device`). */
  addVhostUserDevice(
    deviceType: number,
    socketPath: string,
    name: string,
    queueSizes: readonly number[],
  ): void {
    const op = "krun_add_vhost_user_device";
    const { native, ctx } = live(this, op);
    const type = uint(deviceType, 0, u32Max, op, "deviceType");
    const path = cString(socketPath, op, "socketPath");
    const nameBytes = cString(name, op, "name");
    if (!Array.isArray(queueSizes) || queueSizes.length === 0 || queueSizes.length > u16Max) {
      throw invalid(op, `queueSizes must be a non-empty array, got ${describe(queueSizes)}`);
    }
    const sizes = new Uint16Array(queueSizes.map((q, i) => uint(q, 1, u16Max, op, `queueSizes[${i}]`)));
    const rc = native.call.krun_add_vhost_user_device(ctx, type, path, nameBytes, sizes.length, sizes);
    check(rc, op, [path, nameBytes, sizes]);
  }

  /** A virtio-snd device (`krun_set_snd_device`). */
  setSndDevice(enable: boolean): void {
    setBool(this, "krun_set_snd_device", enable, "enable");
  }

  /** A VFIO device passed through: its fd, PCI device and function numbers (`krun_add_vfio_device`). */
  addVfioDevice(fd: number, device: number, fn: number): void {
    const op = "krun_add_vfio_device";
    const { native, ctx } = live(this, op);
    const f = uint(fd, 0, fdMax, op, "fd");
    check(
      native.call.krun_add_vfio_device(
        ctx,
        f,
        uint(device, 0, u8Max, op, "device"),
        uint(fn, 0, u8Max, op, "function"),
      ),
      op,
    );
  }
}

/** krun_display_set_dpi / krun_display_set_refresh_rate: one u32 for display `id`. */
function setDisplayU32(
  context: ContextBase,
  op: "krun_display_set_dpi" | "krun_display_set_refresh_rate",
  id: number,
  v: number,
  what: string,
): void {
  const { native, ctx } = live(context, op);
  const display = uint(id, 0, u32Max, op, "displayId");
  check(native.call[op](ctx, display, uint(v, 0, u32Max, op, what)), op);
}
