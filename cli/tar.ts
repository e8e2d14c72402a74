/**
 * Our own tar reader (no third-party code): ustar headers with their checksum, POSIX pax
 * extended headers (per-file `x` and global `g`: path, linkpath, size, uid, gid, mtime,
 * SCHILY.xattr.* and LIBARCHIVE.xattr.*), GNU long names (`L`) and long link names (`K`), GNU
 * base-256 numbers. It reads a whole archive held in memory and yields entries whose data are
 * views into it. A header or data block that runs past the end is a `TarError` ("truncated").
 *
 * @module
 */

/** A malformed or truncated archive. */
export class TarError extends Error {
  override name = "TarError";
}

/** Entry kinds, from the ustar typeflag. */
export type TarType = "file" | "hardlink" | "symlink" | "char" | "block" | "dir" | "fifo";

/** One archive member. */
export interface TarEntry {
  /** The member's name as stored (pax/GNU long name applied), not yet checked. */
  readonly name: string;
  readonly type: TarType;
  /** Permission bits and set-id/sticky bits (mode & 0o7777). */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** Seconds since the epoch. */
  readonly mtime: number;
  /** Symlink target or hardlink source name. */
  readonly linkname: string;
  readonly devmajor: number;
  readonly devminor: number;
  /** Extended attributes by name (pax SCHILY.xattr.* / LIBARCHIVE.xattr.*). */
  readonly xattrs: ReadonlyMap<string, Uint8Array>;
  /** The file's bytes (empty for anything but a regular file). */
  readonly data: Uint8Array;
}

const block = 512;
/** A pax or GNU long-name record larger than this is refused (a bomb, not a name). */
const metaMax = 1 << 20;
const decoder = new TextDecoder();
const typeOf: Record<string, TarType> = {
  "0": "file",
  "\0": "file",
  "7": "file",
  "1": "hardlink",
  "2": "symlink",
  "3": "char",
  "4": "block",
  "5": "dir",
  "6": "fifo",
};

function text(bytes: Uint8Array): string {
  const nul = bytes.indexOf(0);
  return decoder.decode(nul < 0 ? bytes : bytes.subarray(0, nul));
}

/** An octal field, or GNU base-256 when the top bit of the first byte is set. */
function number(bytes: Uint8Array, what: string): number {
  if (bytes[0] & 0x80) {
    let n = bytes[0] & 0x7f;
    for (const b of bytes.subarray(1)) n = n * 256 + b;
    if (!Number.isSafeInteger(n)) throw new TarError(`header field ${what} is out of range`);
    return n;
  }
  const s = text(bytes).trim();
  if (s === "") return 0;
  if (!/^[0-7]+$/.test(s)) {
    throw new TarError(`header field ${what} is not an octal number: ${JSON.stringify(s)}`);
  }
  return parseInt(s, 8);
}

function checksumOk(header: Uint8Array): boolean {
  const stored = number(header.subarray(148, 156), "chksum");
  let sum = 0;
  for (let i = 0; i < block; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i];
  return sum === stored;
}

/** Parses pax records "LEN key=value\n". */
function paxRecords(data: Uint8Array): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    if (space < 0) throw new TarError("malformed pax record");
    const len = Number(decoder.decode(data.subarray(at, space)));
    if (!Number.isInteger(len) || len <= space - at + 1 || at + len > data.length) {
      throw new TarError("malformed pax record length");
    }
    const record = data.subarray(space + 1, at + len - 1); // without the final "\n"
    const eq = record.indexOf(0x3d);
    if (eq < 0 || data[at + len - 1] !== 0x0a) throw new TarError("malformed pax record");
    out.set(decoder.decode(record.subarray(0, eq)), record.subarray(eq + 1));
    at += len;
  }
  return out;
}

function paxNumber(value: Uint8Array, key: string): number {
  const s = decoder.decode(value);
  const n = Number(s);
  if (s === "" || !Number.isFinite(n) || n < 0) throw new TarError(`pax ${key} is not a number: ${s}`);
  return Math.floor(n);
}

function base64(s: string): Uint8Array {
  const bin = atob(s);
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

/** Iterates the members of an uncompressed tar archive held in `archive`. */
export function* readTar(archive: Uint8Array): Generator<TarEntry> {
  let at = 0;
  let global = new Map<string, Uint8Array>();
  let pax: Map<string, Uint8Array> | null = null;
  let longName: string | null = null;
  let longLink: string | null = null;
  while (true) {
    if (at + block > archive.length) {
      throw new TarError(
        at === archive.length && at > 0 ? "truncated (no end-of-archive marker)" : "truncated header",
      );
    }
    const header = archive.subarray(at, at + block);
    if (header.every((b) => b === 0)) {
      if (pax !== null || longName !== null || longLink !== null) {
        throw new TarError("extended header without entry");
      }
      return; // end of archive (one zero block is enough to stop; GNU tar writes two)
    }
    if (!checksumOk(header)) throw new TarError(`bad header checksum at offset ${at}`);
    const flag = String.fromCharCode(header[156]);
    const ext = pax ?? new Map<string, Uint8Array>();
    const sizeField = ext.get("size") ?? global.get("size");
    const size = sizeField !== undefined
      ? paxNumber(sizeField, "size")
      : number(header.subarray(124, 136), "size");
    const dataStart = at + block;
    const dataEnd = dataStart + size;
    if (dataEnd > archive.length) throw new TarError(`truncated data of a ${size}-byte member`);
    const data = archive.subarray(dataStart, dataEnd);
    at = dataStart + Math.ceil(size / block) * block;
    if (flag === "x" || flag === "g" || flag === "L" || flag === "K") {
      if (size > metaMax) throw new TarError(`extended header of ${size} bytes is too large`);
      if (flag === "x") pax = paxRecords(data);
      else if (flag === "g") global = new Map([...global, ...paxRecords(data)]);
      else if (flag === "L") longName = text(data);
      else longLink = text(data);
      continue;
    }
    const type = typeOf[flag];
    if (type === undefined) throw new TarError(`unsupported member type ${JSON.stringify(flag)}`);
    const field = (key: string): Uint8Array | undefined => ext.get(key) ?? global.get(key);
    const magic = decoder.decode(header.subarray(257, 263));
    const prefix = magic.startsWith("ustar") ? text(header.subarray(345, 500)) : "";
    const plain = text(header.subarray(0, 100));
    const pathField = field("path");
    const name = pathField !== undefined
      ? decoder.decode(pathField)
      : longName ?? (prefix !== "" && magic === "ustar\0" ? `${prefix}/${plain}` : plain);
    const linkField = field("linkpath");
    const linkname = linkField !== undefined
      ? decoder.decode(linkField)
      : longLink ?? text(header.subarray(157, 257));
    const xattrs = new Map<string, Uint8Array>();
    for (const source of [global, ext]) {
      for (const [key, value] of source) {
        if (key.startsWith("SCHILY.xattr.")) xattrs.set(key.slice(13), value);
        else if (key.startsWith("LIBARCHIVE.xattr.")) {
          xattrs.set(decodeURIComponent(key.slice(17)), base64(decoder.decode(value)));
        }
      }
    }
    const num = (key: string, off: number, len: number): number => {
      const f = field(key);
      return f !== undefined ? paxNumber(f, key) : number(header.subarray(off, off + len), key);
    };
    yield {
      name,
      type,
      mode: number(header.subarray(100, 108), "mode") & 0o7777,
      uid: num("uid", 108, 8),
      gid: num("gid", 116, 8),
      mtime: num("mtime", 136, 12),
      linkname,
      devmajor: number(header.subarray(329, 337), "devmajor"),
      devminor: number(header.subarray(337, 345), "devminor"),
      xattrs,
      data: type === "file" ? data : new Uint8Array(),
    };
    pax = null;
    longName = null;
    longLink = null;
  }
}
