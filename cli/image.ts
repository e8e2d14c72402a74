/**
 * Reading an image: an OCI image layout directory, the same layout as a tar (OCI archive), or
 * a `docker save` tar (docker-archive). Every blob read is checked against its sha256 digest
 * (and size, where a descriptor gives one); every layer's uncompressed bytes against the
 * config's `rootfs.diff_ids`. Layers may be gzip-compressed or plain tar.
 *
 * @module
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import { gunzipSync } from "node:zlib";
import { readTar } from "./tar.ts";

/** A bad or unsupported image. */
export class ImageError extends Error {
  override name = "ImageError";
}

/** The parts of the image config (`config` in the OCI config JSON) that zkrun applies. */
export interface RunConfig {
  readonly Entrypoint?: string[] | null;
  readonly Cmd?: string[] | null;
  readonly Env?: string[] | null;
  readonly WorkingDir?: string;
  readonly User?: string;
}

/** One layer to apply, in order. */
export interface Layer {
  /** Its digest as stored (compressed), e.g. "sha256:…", or null (docker's legacy layer.tar). */
  readonly digest: string | null;
  /** sha256 of its uncompressed tar, from the config. */
  readonly diffId: string;
  /** Reads, verifies and decompresses it. */
  read(): Uint8Array;
  /** Checks the stored blob against its digest (the uncompressed diff_id when it has none). */
  verify(): void;
}

/** An image, ready to unpack. */
export interface Image {
  readonly format: "oci-layout" | "oci-archive" | "docker-archive";
  readonly config: RunConfig;
  readonly layers: readonly Layer[];
}

/** A layer larger than this (compressed or not) is refused: it is held in memory. */
const layerMax = 2 ** 31 - 1;
const jsonMax = 16 << 20;
const digestRe = /^sha256:[0-9a-f]{64}$/;
const amd64 = { os: "linux", architecture: "amd64" };

/** "sha256:<hex>" of `bytes`. */
export function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

function short(digest: string): string {
  return digest.slice(0, 19);
}

function checkDigest(value: unknown, what: string): string {
  if (typeof value !== "string" || !digestRe.test(value)) {
    throw new ImageError(`${what} has no valid sha256 digest (${JSON.stringify(value)})`);
  }
  return value;
}

function json(bytes: Uint8Array, what: string): Record<string, unknown> {
  if (bytes.length > jsonMax) throw new ImageError(`${what} is larger than ${jsonMax} bytes`);
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new ImageError(`${what} is not valid JSON`);
  }
  if (typeof value !== "object" || value === null) throw new ImageError(`${what} is not a JSON object`);
  return value as Record<string, unknown>;
}

function decompress(bytes: Uint8Array, what: string): Uint8Array {
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      return gunzipSync(bytes, { maxOutputLength: layerMax });
    } catch (err) {
      throw new ImageError(
        `${what}: gzip data is corrupt or truncated (${(err as Error).message.split("\n")[0]})`,
      );
    }
  }
  if (bytes[0] === 0x28 && bytes[1] === 0xb5 && bytes[2] === 0x2f && bytes[3] === 0xfd) {
    throw new ImageError(`${what} is zstd-compressed, which zkrun cannot read yet (gzip or plain tar only)`);
  }
  return bytes;
}

function strings(value: unknown, what: string): string[] | null {
  if (value === undefined || value === null) return null;
  if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) {
    throw new ImageError(`image config ${what} is not a list of strings`);
  }
  return value;
}

/** Reads the config blob's run settings and diff_ids. */
function parseConfig(bytes: Uint8Array): { config: RunConfig; diffIds: string[] } {
  const doc = json(bytes, "image config");
  const rootfs = doc.rootfs as { diff_ids?: unknown } | undefined;
  const ids = strings(rootfs?.diff_ids, "rootfs.diff_ids") ?? [];
  ids.forEach((d, i) => checkDigest(d, `rootfs.diff_ids[${i}]`));
  const c = (doc.config ?? {}) as Record<string, unknown>;
  if (typeof c !== "object") throw new ImageError("image config: config is not an object");
  const text = (v: unknown, what: string): string | undefined => {
    if (v === undefined || v === null || v === "") return undefined;
    if (typeof v !== "string") throw new ImageError(`image config ${what} is not a string`);
    return v;
  };
  return {
    config: {
      Entrypoint: strings(c.Entrypoint, "Entrypoint"),
      Cmd: strings(c.Cmd, "Cmd"),
      Env: strings(c.Env, "Env"),
      WorkingDir: text(c.WorkingDir, "WorkingDir"),
      User: text(c.User, "User"),
    },
    diffIds: ids,
  };
}

/** Where an image's files come from: a directory, or members of a tar in memory. */
interface Files {
  /** The file's bytes, or null when there is none. */
  get(path: string): Uint8Array | null;
}

function dirFiles(dir: string): Files {
  return {
    get(path: string): Uint8Array | null {
      const full = `${dir}/${path}`;
      try {
        const st = fs.statSync(full);
        if (!st.isFile()) return null;
        if (st.size > layerMax) throw new ImageError(`${path} is larger than ${layerMax} bytes`);
        return new Uint8Array(fs.readFileSync(full));
      } catch (err) {
        if ((err as { code?: string }).code === "ENOENT") return null;
        throw err;
      }
    },
  };
}

function tarFiles(archive: Uint8Array): Files {
  const files = new Map<string, Uint8Array>();
  const links = new Map<string, string>();
  for (const e of readTar(archive)) {
    const name = e.name.replace(/^(\.\/)+/, "").replace(/\/+$/, "");
    if (e.type === "file") files.set(name, e.data);
    else if (e.type === "symlink" || e.type === "hardlink") links.set(name, e.linkname);
  }
  const resolve = (path: string, hops: number): Uint8Array | null => {
    const found = files.get(path);
    if (found !== undefined) return found;
    const target = links.get(path);
    if (target === undefined || hops === 0) return null;
    // docker save links duplicate layers: "<id>/layer.tar" -> "../<other>/layer.tar".
    const parts = path.split("/").slice(0, -1);
    for (const p of target.split("/")) {
      if (p === "..") parts.pop();
      else if (p !== "." && p !== "") parts.push(p);
    }
    return resolve(parts.join("/"), hops - 1);
  };
  return { get: (path: string): Uint8Array | null => resolve(path.replace(/^(\.\/)+/, ""), 8) };
}

/** A blob from blobs/sha256/<hex>, checked against its digest (and size). */
function blob(files: Files, digest: string, size: number | undefined, what: string): Uint8Array {
  const bytes = files.get(`blobs/sha256/${digest.slice(7)}`);
  if (bytes === null) {
    throw new ImageError(`${what} ${short(digest)} is missing (no blobs/sha256/${digest.slice(7, 19)}…)`);
  }
  const got = sha256(bytes);
  if (got !== digest) {
    throw new ImageError(`${what} ${short(digest)} does not match its digest (got ${short(got)})`);
  }
  if (size !== undefined && size !== bytes.length) {
    throw new ImageError(`${what} ${short(digest)} is ${bytes.length} bytes, its descriptor says ${size}`);
  }
  return bytes;
}

interface Descriptor {
  mediaType?: string;
  digest: string;
  size?: number;
  platform?: { os?: string; architecture?: string };
}

function descriptors(value: unknown, what: string): Descriptor[] {
  if (!Array.isArray(value)) throw new ImageError(`${what} is not a list`);
  return value.map((d, i) => {
    if (typeof d !== "object" || d === null) throw new ImageError(`${what}[${i}] is not an object`);
    checkDigest((d as Descriptor).digest, `${what}[${i}]`);
    const size = (d as Descriptor).size;
    if (size !== undefined && (!Number.isSafeInteger(size) || size < 0)) {
      throw new ImageError(`${what}[${i}] has a bad size`);
    }
    return d as Descriptor;
  });
}

function pickPlatform(list: Descriptor[], what: string): Descriptor {
  if (list.length === 0) throw new ImageError(`${what} lists no manifests`);
  if (list.length === 1) return list[0];
  const match = list.find((d) =>
    d.platform?.os === amd64.os && d.platform?.architecture === amd64.architecture
  );
  if (match === undefined) {
    throw new ImageError(`${what} has ${list.length} manifests and none for linux/amd64`);
  }
  return match;
}

const indexTypes = new Set([
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
]);

function ociImage(files: Files, format: "oci-layout" | "oci-archive"): Image {
  const marker = files.get("oci-layout");
  if (marker === null) throw new ImageError("no oci-layout file: not an OCI image layout");
  const version = json(marker, "oci-layout").imageLayoutVersion;
  if (version !== "1.0.0") throw new ImageError(`unsupported imageLayoutVersion ${JSON.stringify(version)}`);
  const indexBytes = files.get("index.json");
  if (indexBytes === null) throw new ImageError("index.json is missing");
  let desc = pickPlatform(
    descriptors(json(indexBytes, "index.json").manifests, "index.json manifests"),
    "index.json",
  );
  let manifest = json(blob(files, desc.digest, desc.size, "manifest"), "manifest");
  for (let depth = 0; indexTypes.has(String(manifest.mediaType ?? desc.mediaType)); depth++) {
    if (depth === 4) throw new ImageError("image indexes nest too deeply");
    desc = pickPlatform(descriptors(manifest.manifests, "image index manifests"), "image index");
    manifest = json(blob(files, desc.digest, desc.size, "manifest"), "manifest");
  }
  const [configDesc] = descriptors([manifest.config], "manifest config");
  const { config, diffIds } = parseConfig(blob(files, configDesc.digest, configDesc.size, "image config"));
  const layerDescs = descriptors(manifest.layers ?? [], "manifest layers");
  if (layerDescs.length !== diffIds.length) {
    throw new ImageError(
      `manifest has ${layerDescs.length} layers but the config ${diffIds.length} diff_ids`,
    );
  }
  const layers = layerDescs.map((d, i): Layer => ({
    digest: d.digest,
    diffId: diffIds[i],
    read: () =>
      verifyDiff(decompress(blob(files, d.digest, d.size, "layer"), `layer ${short(d.digest)}`), diffIds[i]),
    verify: () => void blob(files, d.digest, d.size, "layer"),
  }));
  return { format, config, layers };
}

function verifyDiff(tar: Uint8Array, diffId: string): Uint8Array {
  const got = sha256(tar);
  if (got !== diffId) {
    throw new ImageError(
      `layer ${short(diffId)} (uncompressed) does not match its diff_id (got ${short(got)})`,
    );
  }
  return tar;
}

/** docker save's manifest.json: [{ Config, RepoTags, Layers }]. */
function dockerImage(files: Files, manifestBytes: Uint8Array): Image {
  let list: unknown;
  try {
    list = JSON.parse(new TextDecoder().decode(manifestBytes));
  } catch {
    throw new ImageError("manifest.json is not valid JSON");
  }
  if (!Array.isArray(list) || list.length === 0) throw new ImageError("manifest.json lists no image");
  if (list.length > 1) {
    throw new ImageError(`manifest.json lists ${list.length} images; zkrun takes an archive of one`);
  }
  const m = list[0] as { Config?: unknown; Layers?: unknown };
  if (typeof m.Config !== "string") throw new ImageError("manifest.json has no Config");
  const configBytes = files.get(m.Config);
  if (configBytes === null) throw new ImageError(`config ${m.Config} is missing from the archive`);
  // The config's file name is its digest: "<hex>.json" or "blobs/sha256/<hex>".
  const hex = /([0-9a-f]{64})(\.json)?$/.exec(m.Config)?.[1];
  if (hex !== undefined && sha256(configBytes) !== `sha256:${hex}`) {
    throw new ImageError(
      `image config ${m.Config} does not match its digest (got ${short(sha256(configBytes))})`,
    );
  }
  const { config, diffIds } = parseConfig(configBytes);
  const paths = strings(m.Layers, "manifest.json Layers") ?? [];
  if (paths.length !== diffIds.length) {
    throw new ImageError(
      `manifest.json has ${paths.length} layers but the config ${diffIds.length} diff_ids`,
    );
  }
  const layers = paths.map((path, i): Layer => {
    const blobHex = /^blobs\/sha256\/([0-9a-f]{64})$/.exec(path)?.[1];
    const stored = (): Uint8Array => {
      const bytes = files.get(path);
      if (bytes === null) throw new ImageError(`layer ${path} is missing from the archive`);
      if (blobHex !== undefined && sha256(bytes) !== `sha256:${blobHex}`) {
        throw new ImageError(
          `layer ${short(`sha256:${blobHex}`)} does not match its digest (got ${short(sha256(bytes))})`,
        );
      }
      return bytes;
    };
    const read = (): Uint8Array => verifyDiff(decompress(stored(), `layer ${path}`), diffIds[i]);
    return {
      digest: blobHex === undefined ? null : `sha256:${blobHex}`,
      diffId: diffIds[i],
      read,
      verify: () => void (blobHex === undefined ? read() : stored()),
    };
  });
  return { format: "docker-archive", config, layers };
}

/** Opens an OCI image layout directory, or an OCI / docker-archive tar file. */
export function openImage(path: string, isDir: boolean): Image {
  if (isDir) return ociImage(dirFiles(path), "oci-layout");
  const size = fs.statSync(path).size;
  if (size > layerMax) throw new ImageError(`${path}: archives over ${layerMax} bytes are not supported yet`);
  const files = tarFiles(new Uint8Array(fs.readFileSync(path)));
  const dockerManifest = files.get("manifest.json");
  if (files.get("oci-layout") !== null) return ociImage(files, "oci-archive");
  if (dockerManifest !== null) return dockerImage(files, dockerManifest);
  throw new ImageError(`${path}: neither an OCI archive (oci-layout) nor a docker archive (manifest.json)`);
}

/** The OCI ChainID of the layers: names the rootfs they unpack to. */
export function chainId(diffIds: readonly string[]): string {
  let chain = "";
  for (const id of diffIds) {
    chain = chain === "" ? id : sha256(new TextEncoder().encode(`${chain} ${id}`));
  }
  return chain === "" ? sha256(new Uint8Array()) : chain;
}
