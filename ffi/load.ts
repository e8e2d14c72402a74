/**
 * Finding and loading libkrun.so.1 (on macOS libkrun.1.dylib: `libraryNames`), once per process: `LIBKRUN_PATH` if set (and then only
 * it: a path the user named that fails should not be silently replaced by another build),
 * else the project's `zig-out/lib/libkrun.so.1`, else the system soname `libkrun.so.1`.
 * Then libkrunfw.so.5, which libkrun dlopens by soname when a VM starts: `LIBKRUNFW_PATH` if
 * set, else the one beside the libkrun.so.1 just loaded, if any (else the system's, at start).
 * Loading it here means a build tree works without LD_LIBRARY_PATH: glibc finds a library
 * already loaded under that soname before it searches any path.
 * The adapter is whichever says it is present; this file names no runtime.
 *
 * @module
 */
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { adapter as bunAdapter } from "./bun.ts";
import { adapter as denoAdapter } from "./deno.ts";
import { KrunLibraryError } from "./errors.ts";
import { type Adapter, firmwareSymbols, type Native } from "./symbols.ts";

let loaded: Native | null = null;
let firmware: string | null = null;

/** The libkrunfw.so.5 loaded beside libkrun, if any (null: libkrun will look for the system's). */
export function firmwarePath(): string | null {
  return firmware;
}

function existing(path: string): boolean {
  try {
    return existsSync(path);
  } catch {
    return false; // not permitted to look: leave it to libkrun's own search
  }
}

/** Reads an environment variable; undefined if unset or not permitted (Deno without --allow-env). */
export function envOrUndefined(name: string): string | undefined {
  try {
    return process.env[name] || undefined;
  } catch {
    return undefined;
  }
}

/** The file names libkrun and libkrunfw have on `platform` (a `process.platform` value). */
export function libraryNames(platform: string = process.platform): {
  libkrun: string;
  libkrunfw: string;
  pathVar: string;
  dirs: string[];
} {
  if (platform === "darwin") {
    return {
      libkrun: "libkrun.1.dylib",
      libkrunfw: "libkrunfw.5.dylib",
      pathVar: "DYLD_LIBRARY_PATH",
      dirs: ["/opt/homebrew/lib", "/usr/local/lib", "/usr/lib"],
    };
  }
  return {
    libkrun: "libkrun.so.1",
    libkrunfw: "libkrunfw.so.5",
    pathVar: "LD_LIBRARY_PATH",
    dirs: systemDirs,
  };
}

// Where the dynamic loader looks for a soname on Debian-like and other common systems.
const systemDirs = [
  "/usr/local/lib",
  "/usr/local/lib64",
  "/usr/lib/x86_64-linux-gnu",
  "/lib/x86_64-linux-gnu",
  "/usr/lib64",
  "/lib64",
  "/usr/lib",
  "/lib",
];

/**
 * The system's libkrun.so.1 as a path: Deno's dlopen takes every name as a path relative to
 * the working directory, never as a soname, so the loader's search is done here
 * (LD_LIBRARY_PATH, then the usual directories). The bare soname if none has it.
 */
function systemLibraryOf(platform: string): string {
  const names = libraryNames(platform);
  const dirs = (envOrUndefined(names.pathVar) ?? "").split(":").filter((d) => d !== "");
  for (const dir of [...dirs, ...names.dirs]) {
    const path = join(dir, names.libkrun);
    if (existing(path)) return path;
  }
  return names.libkrun;
}

/** The places to look, in order (`platform`: for tests; the running one by default). */
export function candidates(platform: string = process.platform): string[] {
  const explicit = envOrUndefined("LIBKRUN_PATH");
  if (explicit !== undefined) return [explicit];
  const local = new URL(`../zig-out/lib/${libraryNames(platform).libkrun}`, import.meta.url);
  // Loaded from a registry (https:), there is no build tree next to this file.
  const system = systemLibraryOf(platform);
  return local.protocol === "file:" ? [fileURLToPath(local), system] : [system];
}

function firstLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.split("\n")[0];
}

/** The adapter of the runtime this runs on (Deno or Bun). */
export function runtime(): Adapter {
  const adapter = [denoAdapter, bunAdapter].find((a) => a.present);
  if (adapter === undefined) throw new Error("zkrun runs on Deno or Bun only");
  return adapter;
}

/**
 * Loads the library (first call) and returns it. `path` overrides the search; once a library
 * is loaded, asking for a different path is an error.
 */
export function load(path?: string): Native {
  if (loaded !== null) {
    if (path !== undefined && path !== loaded.path) {
      throw new Error(`libkrun is already loaded from ${loaded.path}; cannot also load ${path}`);
    }
    return loaded;
  }
  const adapter = runtime();
  const tried: string[] = [];
  for (const candidate of path !== undefined ? [path] : candidates()) {
    try {
      const native = adapter.open(candidate);
      try {
        loadFirmware(adapter, candidate);
      } catch (err) {
        native.close();
        throw err;
      }
      loaded = native;
      return loaded;
    } catch (err) {
      // A missing permission is the same for every candidate: pass it on unchanged.
      if (err instanceof Error && (err.name === "NotCapable" || err.name === "PermissionDenied")) throw err;
      tried.push(`${candidate} (${firstLine(err)})`);
    }
  }
  throw new KrunLibraryError(tried);
}

const firmwareAbi = 5;

function loadFirmware(adapter: Adapter, libkrun: string): void {
  const explicit = envOrUndefined("LIBKRUNFW_PATH");
  const beside = libkrun.includes("/") ? join(dirname(libkrun), libraryNames().libkrunfw) : undefined;
  const path = explicit ?? (beside !== undefined && existing(beside) ? beside : undefined);
  if (path === undefined) return;
  let version: number;
  try {
    // Never closed: libkrun uses it at every start.
    const fw = adapter.openTable(path, firmwareSymbols) as unknown as { krunfw_get_version(): number };
    version = fw.krunfw_get_version();
  } catch (err) {
    throw new Error(`libkrunfw: cannot load ${path} (${firstLine(err)})`);
  }
  if (version !== firmwareAbi) {
    throw new Error(`libkrunfw: ${path} has ABI ${version}, libkrun needs ${firmwareAbi}`);
  }
  firmware = path;
}
