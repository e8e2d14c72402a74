/**
 * Applies one image layer (an uncompressed tar in memory) onto a root directory in the cache,
 * as the OCI image spec says: whiteouts (`.wh.NAME`) and opaque directories (`.wh..wh..opq`)
 * remove what lower layers put there, then every member is written with its mode, owner (when
 * running as root, like `tar --same-owner`), mtime and xattrs; hardlinks, symlinks, FIFOs and
 * (as root) device nodes are made as such.
 *
 * Safety: a member name that is absolute or has a `..` component, a hardlink whose source is,
 * a relative symlink whose target climbs above the root, and any member whose parent path
 * crosses a symlink are refused with an `UnpackError`. Paths are walked one component at a
 * time with lstat and nothing below the root is ever followed, so nothing lands outside it.
 * The root is a private (0700) directory only this process writes, so the walk cannot race.
 *
 * @module
 */
import * as fs from "node:fs";
import { readTar, type TarEntry } from "./tar.ts";
import { mknod, setXattr } from "./libc.ts";

/** A layer that would write outside the root, or that cannot be applied. */
export class UnpackError extends Error {
  override name = "UnpackError";
}

/** What applying a layer did. */
export interface LayerStats {
  entries: number;
  whiteouts: number;
  /** Members that could not be made (device nodes without root), with why. */
  skipped: string[];
  /** Extended attributes that could not be set (e.g. security.* without root). */
  xattrFailures: number;
}

const entriesMax = 1_000_000;
const pathMax = 4095;
const nameMax = 255;
const whiteoutPrefix = ".wh.";
const opaqueMarker = ".wh..wh..opq";
const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;
const S_IFCHR = 0o020000, S_IFBLK = 0o060000, S_IFIFO = 0o010000;

/** The components of a member name: refuses absolute names and `..`; [] is the root itself. */
export function memberPath(name: string, what = "member"): string[] {
  if (name.length > pathMax) throw new UnpackError(`${what} name is longer than ${pathMax} bytes`);
  if (name.includes("\0")) throw new UnpackError(`${what} name contains a NUL byte`);
  if (name.startsWith("/")) throw new UnpackError(`${what} ${JSON.stringify(name)} is an absolute path`);
  const parts = name.split("/").filter((p) => p !== "" && p !== ".");
  for (const p of parts) {
    if (p === "..") throw new UnpackError(`${what} ${JSON.stringify(name)} has a ".." component`);
    if (p.length > nameMax) {
      throw new UnpackError(`${what} ${JSON.stringify(name)} has a component over ${nameMax} bytes`);
    }
  }
  return parts;
}

function lstatOrNull(path: string): fs.Stats | null {
  try {
    return fs.lstatSync(path);
  } catch (err) {
    if ((err as { code?: string }).code === "ENOENT") return null;
    throw err;
  }
}

class Layer {
  readonly stats: LayerStats = { entries: 0, whiteouts: 0, skipped: [], xattrFailures: 0 };
  /** Directories whose mode/owner/mtime are set once every member is in (they may be 0555). */
  readonly dirMeta: [string, TarEntry][] = [];
  /** Lower-layer directories made writable for us (not root): path → their mode, restored at the end. */
  readonly unlocked = new Map<string, number>();

  constructor(readonly root: string, readonly owners: boolean) {}

  /**
   * The host path of the directory `parts` below the root, checking each component with lstat:
   * a symlink is refused, a missing one is created (when `create`) or gives null.
   */
  dir(parts: string[], create: boolean, name: string): string | null {
    let path = this.root;
    for (const part of parts) {
      path = `${path}/${part}`;
      const st = lstatOrNull(path);
      if (st === null) {
        if (!create) return null;
        fs.mkdirSync(path, { mode: 0o755 });
        continue;
      }
      if (st.isSymbolicLink()) {
        throw new UnpackError(
          `${JSON.stringify(name)} passes through the symlink ${parts.join("/")}; refused`,
        );
      }
      if (!st.isDirectory()) {
        throw new UnpackError(`${JSON.stringify(name)}: a parent (${part}) is not a directory`);
      }
      if (!this.owners && (st.mode & 0o700) !== 0o700 && !this.unlocked.has(path)) {
        this.unlocked.set(path, st.mode & 0o7777);
        fs.chmodSync(path, (st.mode & 0o7777) | 0o700);
      }
    }
    return path;
  }

  whiteout(entry: TarEntry): void {
    const parts = memberPath(entry.name);
    const base = parts.pop() ?? "";
    const parent = this.dir(parts, false, entry.name);
    this.stats.whiteouts++;
    if (parent === null) return;
    if (base === opaqueMarker) {
      for (const child of fs.readdirSync(parent)) {
        fs.rmSync(`${parent}/${child}`, { recursive: true, force: true });
      }
      return;
    }
    const target = base.slice(whiteoutPrefix.length);
    if (target === "" || target === "." || target === "..") {
      throw new UnpackError(`whiteout ${JSON.stringify(entry.name)} names no file`);
    }
    fs.rmSync(`${parent}/${target}`, { recursive: true, force: true }); // never follows symlinks
  }

  member(entry: TarEntry): void {
    const parts = memberPath(entry.name);
    if (parts.length === 0) {
      if (entry.type !== "dir") throw new UnpackError("the archive root is not a directory");
      this.dirMeta.push([this.root, entry]);
      return;
    }
    const base = parts.pop() as string;
    const parent = this.dir(parts, true, entry.name) as string;
    const path = `${parent}/${base}`;
    const existing = lstatOrNull(path);
    if (entry.type === "dir") {
      if (existing !== null && !existing.isDirectory()) fs.unlinkSync(path);
      if (existing === null || !existing.isDirectory()) fs.mkdirSync(path, { mode: 0o700 });
      this.unlocked.delete(path);
      this.dirMeta.push([path, entry]);
      return;
    }
    // Checked before anything is removed, so a refused member changes nothing.
    const source = entry.type === "hardlink" ? this.linkSource(entry) : null;
    if (existing !== null) fs.rmSync(path, { recursive: true, force: true });
    switch (entry.type) {
      case "file":
        return this.file(path, entry);
      case "symlink":
        fs.symlinkSync(entry.linkname, path);
        if (this.owners) fs.lchownSync(path, entry.uid, entry.gid);
        fs.lutimesSync(path, entry.mtime, entry.mtime);
        return this.xattrs(path, entry);
      case "hardlink":
        fs.linkSync(source as string, path);
        return;
      default:
        return this.node(path, entry);
    }
  }

  file(path: string, entry: TarEntry): void {
    const fd = fs.openSync(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
    try {
      let at = 0;
      while (at < entry.data.length) at += fs.writeSync(fd, entry.data, at, entry.data.length - at);
      if (this.owners) fs.fchownSync(fd, entry.uid, entry.gid);
      fs.fchmodSync(fd, entry.mode); // after chown, which clears set-id bits
      fs.futimesSync(fd, entry.mtime, entry.mtime);
    } finally {
      fs.closeSync(fd);
    }
    this.xattrs(path, entry);
  }

  node(path: string, entry: TarEntry): void {
    const kind = entry.type === "char" ? S_IFCHR : entry.type === "block" ? S_IFBLK : S_IFIFO;
    if (!mknod(path, kind | (entry.mode & 0o777), entry.devmajor, entry.devminor)) {
      this.stats.skipped.push(`${entry.name} (${entry.type} device: mknod not permitted)`);
      return;
    }
    if (this.owners) fs.lchownSync(path, entry.uid, entry.gid);
    fs.chmodSync(path, entry.mode);
  }

  linkSource(entry: TarEntry): string {
    const parts = memberPath(entry.linkname, "hardlink source");
    const base = parts.pop();
    const parent = base === undefined ? null : this.dir(parts, false, entry.linkname);
    const source = parent === null ? null : `${parent}/${base}`;
    const st = source === null ? null : lstatOrNull(source);
    if (st === null || st.isDirectory()) {
      throw new UnpackError(
        `hardlink ${JSON.stringify(entry.name)} -> ${
          JSON.stringify(entry.linkname)
        }: no such file in the rootfs`,
      );
    }
    return source as string;
  }

  xattrs(path: string, entry: TarEntry): void {
    for (const [name, value] of entry.xattrs) {
      if (!setXattr(path, name, value)) this.stats.xattrFailures++;
    }
  }

  /**
   * True when `path` and every directory above it (below the root) are still real directories:
   * a later member of the layer may have replaced one by a symlink, which chmod would follow.
   */
  realDir(path: string): boolean {
    if (path === this.root) return true;
    let at = this.root;
    for (const part of path.slice(this.root.length + 1).split("/")) {
      at = `${at}/${part}`;
      const st = lstatOrNull(at);
      if (st === null || st.isSymbolicLink() || !st.isDirectory()) return false;
    }
    return true;
  }

  finish(): void {
    for (const [path, mode] of this.unlocked) if (this.realDir(path)) fs.chmodSync(path, mode);
    // Deepest first, so a read-only parent is set after its children.
    for (const [path, entry] of this.dirMeta.reverse()) {
      if (!this.realDir(path)) continue; // replaced by a later member: its metadata is moot
      if (this.owners) fs.lchownSync(path, entry.uid, entry.gid);
      fs.chmodSync(path, entry.mode);
      this.xattrs(path, entry);
      fs.utimesSync(path, entry.mtime, entry.mtime);
    }
  }
}

/** A relative symlink target may not climb above the root; absolute ones are the guest's own paths. */
function checkSymlink(entry: TarEntry): void {
  const target = entry.linkname;
  if (target === "" || target.includes("\0")) {
    throw new UnpackError(`symlink ${JSON.stringify(entry.name)} has no target`);
  }
  if (target.startsWith("/")) return;
  const depth = memberPath(entry.name).slice(0, -1);
  for (const p of target.split("/")) {
    if (p === "" || p === ".") continue;
    if (p !== "..") depth.push(p);
    else if (depth.pop() === undefined) {
      throw new UnpackError(
        `symlink ${JSON.stringify(entry.name)} -> ${
          JSON.stringify(target)
        } points out of the rootfs; refused`,
      );
    }
  }
}

function isWhiteout(entry: TarEntry): boolean {
  const base = entry.name.replace(/\/+$/, "").split("/").pop() ?? "";
  return base.startsWith(whiteoutPrefix);
}

/** Applies the layer `tar` onto `root`; `owners`: chown members to their uid/gid (needs root). */
export function applyLayer(root: string, tar: Uint8Array, owners: boolean): LayerStats {
  const layer = new Layer(root, owners);
  const entries = [...readTar(tar)];
  if (entries.length > entriesMax) throw new UnpackError(`layer has over ${entriesMax} members`);
  // Check every name first: a refused layer writes nothing at all.
  for (const e of entries) {
    memberPath(e.name);
    if (e.type === "hardlink") memberPath(e.linkname, "hardlink source");
    if (e.type === "symlink") checkSymlink(e);
  }
  // Whiteouts hide lower layers only, so they go before this layer's own members.
  for (const e of entries) if (isWhiteout(e)) layer.whiteout(e);
  for (const e of entries) {
    if (isWhiteout(e)) continue;
    layer.member(e);
    layer.stats.entries++;
  }
  layer.finish();
  return layer.stats;
}
