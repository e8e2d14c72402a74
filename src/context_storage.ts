/**
 * `ContextStorage`: the layer of `Context` that gives the guest its files: the root directory,
 * virtio-fs shares and their in-memory overlays, and virtio-blk disks. One checked method per
 * `krun_*` call, on `ContextBase` (context_base.ts).
 *
 * @module
 */
import { statSync } from "node:fs";
import { Errno, KrunError } from "../ffi/errors.ts";
import { bool, named, ownBytes, u64 } from "./context_args.ts";
import { ContextBase, live, setPath, setStrings } from "./context_base.ts";
import { DISK_FORMAT, type DiskFormat, SYNC_MODE, type SyncMode } from "./types.ts";
import { check, cString, describe, invalid, uint } from "./util.ts";

/**
 * `Context`'s storage setters: the root, virtio-fs shares, overlay files and disks. Not
 * constructed on its own: see `Context`.
 */
export abstract class ContextStorage extends ContextBase {
  /** The host directory shared as the guest's root filesystem (`krun_set_root`). */
  setRoot(path: string): void {
    const op = "krun_set_root";
    const { native, ctx } = live(this, op);
    const bytes = cString(path, op, "root");
    let isDir: boolean;
    try {
      isDir = statSync(path).isDirectory();
    } catch (err) {
      if ((err as { code?: string }).code === "ENOENT") {
        throw new KrunError(op, Errno.ENOENT, `root ${describe(path)} does not exist`);
      }
      throw err; // e.g. Deno's NotCapable without --allow-read: a permission problem, not ours
    }
    if (!isDir) throw new KrunError(op, Errno.ENOTDIR, `root ${describe(path)} is not a directory`);
    check(native.call.krun_set_root(ctx, bytes), op, bytes);
  }

  /**
   * Shares the host directory `path` as a virtio-fs device tagged `tag` (1..36 bytes),
   * read-only if asked (`krun_add_virtiofs3`, no DAX window). The guest mounts it by its tag;
   * zkrun's init does so for each `tag:/dir[:ro]` of a `KRUN_MOUNTS` entry in the exec env.
   */
  addVirtiofs(tag: string, path: string, readOnly: boolean = false): void {
    const op = "krun_add_virtiofs3";
    const { native, ctx } = live(this, op);
    const tagBytes = cString(tag, op, "tag");
    const pathBytes = cString(path, op, "path");
    if (typeof readOnly !== "boolean") {
      throw invalid(op, `readOnly must be a boolean, got ${describe(readOnly)}`);
    }
    const rc = native.call.krun_add_virtiofs3(ctx, tagBytes, pathBytes, 0n, readOnly);
    check(rc, op, [tagBytes, pathBytes]);
  }

  /** A virtio-fs share with a DAX window of `shmSize` bytes (`krun_add_virtiofs2`). */
  addVirtiofs2(tag: string, path: string, shmSize: number | bigint): void {
    this.addVirtiofs3(tag, path, shmSize, false, "krun_add_virtiofs2");
  }

  /** A virtio-fs share with a DAX window, read-only if asked (`krun_add_virtiofs3`). */
  addVirtiofs3(
    tag: string,
    path: string,
    shmSize: number | bigint,
    readOnly: boolean,
    op: "krun_add_virtiofs2" | "krun_add_virtiofs3" = "krun_add_virtiofs3",
  ): void {
    const { native, ctx } = live(this, op);
    const tagBytes = cString(tag, op, "tag");
    const pathBytes = cString(path, op, "path");
    const shm = u64(shmSize, op, "shmSize");
    const rc = op === "krun_add_virtiofs2"
      ? native.call.krun_add_virtiofs2(ctx, tagBytes, pathBytes, shm)
      : native.call.krun_add_virtiofs3(ctx, tagBytes, pathBytes, shm, bool(readOnly, op, "readOnly"));
    check(rc, op, [tagBytes, pathBytes]);
  }

  /** Host directories mapped into the guest, as "host:guest" entries (`krun_set_mapped_volumes`). */
  setMappedVolumes(volumes: readonly string[]): void {
    setStrings(this, "krun_set_mapped_volumes", volumes, "volumes");
  }

  /** A disk image as the guest's data disk (`krun_set_data_disk`, libkrun's deprecated form of `addDisk`). */
  setDataDisk(path: string): void {
    setPath(this, "krun_set_data_disk", path, "disk path");
  }

  /** A disk image as the guest's root device (`krun_set_root_disk`, deprecated upstream). */
  setRootDisk(path: string): void {
    setPath(this, "krun_set_root_disk", path, "disk path");
  }

  /** A raw disk image as virtio-blk device `blockId` (`krun_add_disk`). */
  addDisk(blockId: string, path: string, readOnly: boolean = false): void {
    const op = "krun_add_disk";
    const { native, ctx } = live(this, op);
    const id = cString(blockId, op, "blockId");
    const file = cString(path, op, "disk path");
    check(native.call.krun_add_disk(ctx, id, file, bool(readOnly, op, "readOnly")), op, [id, file]);
  }

  /** A disk image of a given format as device `blockId` (`krun_add_disk2`). */
  addDisk2(blockId: string, path: string, format: DiskFormat, readOnly: boolean = false): void {
    const op = "krun_add_disk2";
    const { native, ctx } = live(this, op);
    const id = cString(blockId, op, "blockId");
    const file = cString(path, op, "disk path");
    const fmt = named(DISK_FORMAT, format, op, "format");
    check(native.call.krun_add_disk2(ctx, id, file, fmt, bool(readOnly, op, "readOnly")), op, [
      id,
      file,
    ]);
  }

  /** A disk image with its format, O_DIRECT and flush policy (`krun_add_disk3`). */
  addDisk3(
    blockId: string,
    path: string,
    format: DiskFormat,
    readOnly: boolean,
    directIo: boolean,
    sync: SyncMode,
  ): void {
    const op = "krun_add_disk3";
    const { native, ctx } = live(this, op);
    const id = cString(blockId, op, "blockId");
    const file = cString(path, op, "disk path");
    const rc = native.call.krun_add_disk3(
      ctx,
      id,
      file,
      named(DISK_FORMAT, format, op, "format"),
      bool(readOnly, op, "readOnly"),
      bool(directIo, op, "directIo"),
      named(SYNC_MODE, sync, op, "sync"),
    );
    check(rc, op, [id, file]);
  }

  /** After boot, remount the root from a block `device` (`krun_set_root_disk_remount`). */
  setRootDiskRemount(device: string, fstype?: string, options?: string): void {
    const op = "krun_set_root_disk_remount";
    const { native, ctx } = live(this, op);
    const dev = cString(device, op, "device");
    const fs = fstype === undefined ? null : cString(fstype, op, "fstype");
    const opts = options === undefined ? null : cString(options, op, "options");
    check(native.call.krun_set_root_disk_remount(ctx, dev, fs, opts), op, [dev, fs, opts]);
  }

  /** A file the guest sees in share `tag` at `path`, served from memory (`krun_fs_add_overlay_file`). */
  fsAddOverlayFile(
    tag: string,
    path: string,
    data: Uint8Array,
    mode: number = 0o644,
    oneShot: boolean = false,
  ): void {
    const op = "krun_fs_add_overlay_file";
    const { native, ctx } = live(this, op);
    const tagBytes = cString(tag, op, "tag");
    const pathBytes = cString(path, op, "path");
    const bytes = ownBytes(data, op, "data");
    const m = uint(mode, 0, 0o7777, op, "mode");
    const rc = native.call.krun_fs_add_overlay_file(
      ctx,
      tagBytes,
      pathBytes,
      bytes,
      BigInt(bytes.length),
      m,
      bool(oneShot, op, "oneShot"),
    );
    check(rc, op, [tagBytes, pathBytes, bytes]);
  }

  /** A directory the guest sees in share `tag` at `path` (`krun_fs_add_overlay_dir`). */
  fsAddOverlayDir(tag: string, path: string, mode: number = 0o755): void {
    const op = "krun_fs_add_overlay_dir";
    const { native, ctx } = live(this, op);
    const tagBytes = cString(tag, op, "tag");
    const pathBytes = cString(path, op, "path");
    const m = uint(mode, 0, 0o7777, op, "mode");
    check(native.call.krun_fs_add_overlay_dir(ctx, tagBytes, pathBytes, m), op, [tagBytes, pathBytes]);
  }
}
