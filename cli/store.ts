/**
 * Where zkrun keeps things (XDG base directories): unpacked images in the cache
 * (`$XDG_CACHE_HOME/zkrun/rootfs/<chain id>`, else ~/.cache), named VMs' settings in the state
 * directory (`$XDG_STATE_HOME/zkrun/vms/<name>.json`, else ~/.local/state), their root
 * filesystems and the throwaway roots of `zkrun run` in the data directory
 * (`$XDG_DATA_HOME/zkrun/…`, else ~/.local/share). Also the tree copy that turns a cached
 * rootfs into a writable one (modes, owners as root, mtimes, hardlinks, symlinks, xattrs).
 *
 * @module
 */
import * as fs from "node:fs";
import process from "node:process";
import { chainId, type Image } from "./image.ts";
import { getXattrs, setXattr } from "./libc.ts";
import { applyLayer } from "./unpack.ts";

function env(name: string): string | undefined {
  const v = process.env[name];
  return v !== undefined && v.startsWith("/") ? v : undefined; // XDG: relative paths are ignored
}

function home(): string {
  const h = process.env.HOME;
  if (h === undefined || h === "") throw new Error("HOME is not set (and no XDG_*_HOME either)");
  return h;
}

/** $XDG_CACHE_HOME/zkrun */
export function cacheDir(): string {
  return `${env("XDG_CACHE_HOME") ?? `${home()}/.cache`}/zkrun`;
}

/** $XDG_STATE_HOME/zkrun */
export function stateDir(): string {
  return `${env("XDG_STATE_HOME") ?? `${home()}/.local/state`}/zkrun`;
}

/** $XDG_DATA_HOME/zkrun */
export function dataDir(): string {
  return `${env("XDG_DATA_HOME") ?? `${home()}/.local/share`}/zkrun`;
}

function human(n: number): string {
  return n < 1 << 20 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / (1 << 20)).toFixed(1)} MiB`;
}

/** Writes the progress line: rewritten in place on a terminal, one line per step otherwise. */
export function progress(line: string, done = false): void {
  if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K${line}${done ? "\n" : ""}`);
  else process.stderr.write(`${line}\n`);
}

/** True when this process runs as root: `dir`, just made by it, is root's (no --allow-sys needed). */
function madeByRoot(dir: string): boolean {
  return fs.statSync(dir).uid === 0;
}

/**
 * The image's unpacked rootfs in the cache: made now unless already there. Either way every
 * layer blob is checked against its digest first, so a damaged image is refused even when its
 * layers are cached.
 */
export function cachedRootfs(image: Image): { path: string; cached: boolean } {
  const chain = chainId(image.layers.map((l) => l.diffId));
  const dir = `${cacheDir()}/rootfs`;
  const path = `${dir}/${chain.slice(7)}`;
  if (fs.existsSync(path)) {
    for (const layer of image.layers) layer.verify();
    return { path, cached: true };
  }
  fs.mkdirSync(`${cacheDir()}/tmp`, { recursive: true, mode: 0o700 });
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  const tmp = fs.mkdtempSync(`${cacheDir()}/tmp/${chain.slice(7, 19)}-`); // 0700: only we write it
  try {
    const owners = madeByRoot(tmp);
    const n = image.layers.length;
    image.layers.forEach((layer, i) => {
      const name = (layer.digest ?? layer.diffId).slice(0, 19);
      progress(`zkrun: unpacking layer ${i + 1}/${n} ${name}…`);
      const tar = layer.read();
      const stats = applyLayer(tmp, tar, owners);
      progress(
        `zkrun: unpacked layer ${i + 1}/${n} ${name} (${human(tar.length)}, ${stats.entries} entries)`,
        i === n - 1,
      );
      for (const s of stats.skipped) process.stderr.write(`zkrun: warning: skipped ${s}\n`);
      if (stats.xattrFailures > 0) {
        process.stderr.write(`zkrun: warning: ${stats.xattrFailures} extended attributes could not be set\n`);
      }
    });
    if (n === 0) progress("zkrun: image has no layers", true);
    if ((fs.statSync(tmp).mode & 0o7777) === 0o700) fs.chmodSync(tmp, 0o755); // no root entry in the layers
    try {
      fs.renameSync(tmp, path);
    } catch (err) {
      // Another zkrun unpacked the same layers meanwhile: theirs is as good as ours.
      if (!fs.existsSync(path)) throw err;
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  } catch (err) {
    if (process.stderr.isTTY) process.stderr.write("\n");
    fs.rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  return { path, cached: false };
}

/** Copies the tree `src` to the new directory `dst`, keeping hardlinks, symlinks and metadata. */
export function copyTree(src: string, dst: string): void {
  fs.mkdirSync(dst, { mode: 0o700 });
  const owners = madeByRoot(dst);
  const inodes = new Map<string, string>();
  const dirs: [string, fs.Stats][] = [];
  const walk = (from: string, to: string): void => {
    const st = fs.lstatSync(from);
    if (st.isDirectory()) {
      if (to !== dst) fs.mkdirSync(to, { mode: 0o700 });
      for (const name of fs.readdirSync(from)) walk(`${from}/${name}`, `${to}/${name}`);
      dirs.push([to, st]);
    } else if (st.nlink > 1 && inodes.has(`${st.dev}:${st.ino}`)) {
      fs.linkSync(inodes.get(`${st.dev}:${st.ino}`) as string, to);
      return;
    } else if (st.isSymbolicLink()) {
      fs.symlinkSync(fs.readlinkSync(from), to);
      if (owners) fs.lchownSync(to, st.uid, st.gid);
      fs.lutimesSync(to, st.atime, st.mtime);
    } else if (st.isFile()) {
      fs.copyFileSync(from, to, fs.constants.COPYFILE_FICLONE);
      if (owners) fs.lchownSync(to, st.uid, st.gid);
      fs.chmodSync(to, st.mode & 0o7777);
      fs.utimesSync(to, st.atime, st.mtime);
    } else {
      return; // device nodes and FIFOs: the guest's devtmpfs provides /dev
    }
    if (st.nlink > 1) inodes.set(`${st.dev}:${st.ino}`, to);
    for (const [name, value] of getXattrs(from) ?? []) setXattr(to, name, value);
  };
  walk(src, dst);
  for (const [path, st] of dirs) {
    if (owners) fs.lchownSync(path, st.uid, st.gid);
    fs.chmodSync(path, st.mode & 0o7777);
    for (const [name, value] of getXattrs(path.replace(dst, src)) ?? []) setXattr(path, name, value);
    fs.utimesSync(path, st.atime, st.mtime);
  }
}
