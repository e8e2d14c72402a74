/**
 * `zkrun`: run an OCI image (or a root directory) in a microVM, over mod.ts. Deno and Bun:
 *
 *   deno run --allow-ffi --allow-read --allow-write --allow-env cli/zkrun.ts run IMAGE -- CMD
 *   bun cli/zkrun.ts run IMAGE -- CMD
 *   deno task compile-bun   # one binary, zig-out/bin/zkrun (`deno task compile` needs denort)
 *
 * Commands: run, create, start, list, rm (krunvm-style named VMs). Errors that are the user's
 * (bad option, bad image, missing library) print one line "zkrun: …" and exit 125; otherwise
 * the exit status is the guest workload's.
 *
 * @module
 */
import * as fs from "node:fs";
import process from "node:process";
import { parseArgs } from "node:util";
import { Context, KrunError, KrunLibraryError, loadLibrary, Vm } from "../mod.ts";
import { ImageError, openImage, type RunConfig } from "./image.ts";
import { openLibc } from "./libc.ts";
import { cacheDir, cachedRootfs, copyTree, dataDir, progress, stateDir } from "./store.ts";
import { TarError } from "./tar.ts";
import { UnpackError } from "./unpack.ts";

const usage = `usage: zkrun COMMAND ...
  zkrun run [OPTIONS] IMAGE|ROOTFS [-- CMD...]   run once, exit with its status (an image in a
                                                 throwaway copy, a ROOTFS in place)
  zkrun create [OPTIONS] [--name NAME] IMAGE|ROOTFS [-- CMD...]   a named VM (krunvm-style)
  zkrun start NAME [-- CMD...]                     run a named VM (its root persists)
  zkrun list                                       named VMs
  zkrun rm NAME                                    delete a named VM and its root
IMAGE is an OCI image layout directory or an OCI / docker-archive tar; ROOTFS a plain directory.
OPTIONS:
  --cpus N              vCPUs (default 1)
  --mem MIB             RAM in MiB (default 512)
  -e, --env K=V         environment variable (repeatable); overrides the image's
  -w, --workdir DIR     working directory in the guest; overrides the image's WorkingDir
  -u, --user USER       user[:group] (names or numbers, looked up in the image's /etc/passwd
                        and /etc/group); overrides the image's User
  --dry-run             unpack and check everything, print the VM configuration as JSON, don't boot
  -v, --volume H:G[:ro] share host directory H at guest path G (virtio-fs; :ro read-only)
  -p, --publish H:G     guest TCP/UDP port G at host port H (TSI; repeatable); without -p a
                        guest listener is on the host's 127.0.0.1 at its own port
Unpacked images are cached in $XDG_CACHE_HOME/zkrun; named VMs live in $XDG_STATE_HOME/zkrun and
$XDG_DATA_HOME/zkrun.`;

const defaultMemMiB = 512;
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const volumesMax = 8;
const nameRe = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

/** The user's mistake: printed as one line. */
class CliError extends Error {
  override name = "CliError";
}

/** Everything a VM is started with: what `--dry-run` prints and what `create` stores. */
interface VmSpec {
  name?: string;
  image: string;
  root: string;
  cpus: number;
  memoryMiB: number;
  /** The image's Entrypoint: `start NAME -- CMD` runs Entrypoint ++ CMD, as `run` does. */
  entrypoint: string[];
  argv: string[];
  env: Record<string, string>;
  workdir?: string;
  user: { uid: number; gid: number; spec: string };
  /** -v HOST:GUEST[:ro]: shared by virtio-fs (tag zkrunN), mounted by the guest init. */
  volumes: { tag: string; host: string; guest: string; readOnly: boolean }[];
  /** -p HOST:GUEST: the TSI port map (absent: no -p, listeners on the host's loopback only). */
  ports?: Record<string, number>;
}

const runOptions = {
  cpus: { type: "string" },
  mem: { type: "string" },
  env: { type: "string", short: "e", multiple: true, default: [] as string[] },
  workdir: { type: "string", short: "w" },
  user: { type: "string", short: "u" },
  volume: { type: "string", short: "v", multiple: true, default: [] as string[] },
  publish: { type: "string", short: "p", multiple: true, default: [] as string[] },
  "dry-run": { type: "boolean", default: false },
  name: { type: "string" },
  help: { type: "boolean", short: "h", default: false },
} as const;

function intOption(value: string | undefined, flag: string, min: number, max: number, def: number): number {
  if (value === undefined) return def;
  const n = Number(value);
  if (!/^[0-9]+$/.test(value) || n < min || n > max) {
    throw new CliError(`${flag} wants a number in ${min}..${max}, got "${value}"`);
  }
  return n;
}

/** Splits argv at the first "--": [options and operands, command]. */
function splitCommand(argv: string[]): [string[], string[] | null] {
  const at = argv.indexOf("--");
  return at < 0 ? [argv, null] : [argv.slice(0, at), argv.slice(at + 1)];
}

function envPairs(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list) {
    const at = item.indexOf("=");
    if (at <= 0) throw new CliError(`-e wants NAME=VALUE, got "${item}"`);
    out[item.slice(0, at)] = item.slice(at + 1);
  }
  return out;
}

/** Reads a file below `root` without following any symlink on the way; null if absent. */
function readInRoot(root: string, rel: string): string | null {
  let path = root;
  for (const part of rel.split("/")) {
    path = `${path}/${part}`;
    let st: fs.Stats;
    try {
      st = fs.lstatSync(path);
    } catch {
      return null;
    }
    if (st.isSymbolicLink()) return null; // the guest's own link: not resolved on the host
  }
  const fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    if (fs.fstatSync(fd).size > 4 << 20) return null;
    return fs.readFileSync(fd, "utf8");
  } finally {
    fs.closeSync(fd);
  }
}

/** "user[:group]" → numeric ids, names looked up in the rootfs's /etc/passwd and /etc/group. */
function resolveUser(root: string, spec: string | undefined): VmSpec["user"] {
  if (spec === undefined || spec === "") return { uid: 0, gid: 0, spec: "" };
  const [user, group] = spec.split(":", 2);
  const table = (file: string): string[][] =>
    (readInRoot(root, file) ?? "").split("\n").filter((l) => l !== "").map((l) => l.split(":"));
  let uid: number, gid: number;
  if (/^[0-9]+$/.test(user)) {
    uid = Number(user);
    gid = Number(table("etc/passwd").find((f) => f[2] === user)?.[3] ?? user);
  } else {
    const entry = table("etc/passwd").find((f) => f[0] === user);
    if (entry === undefined) throw new CliError(`user "${user}" is not in the image's /etc/passwd`);
    uid = Number(entry[2]);
    gid = Number(entry[3]);
  }
  if (group !== undefined && group !== "") {
    if (/^[0-9]+$/.test(group)) gid = Number(group);
    else {
      const entry = table("etc/group").find((f) => f[0] === group);
      if (entry === undefined) throw new CliError(`group "${group}" is not in the image's /etc/group`);
      gid = Number(entry[2]);
    }
  }
  if (!Number.isSafeInteger(uid) || !Number.isSafeInteger(gid) || uid > 0xfffffffe || gid > 0xfffffffe) {
    throw new CliError(`user "${spec}" does not resolve to numeric ids`);
  }
  return { uid, gid, spec };
}

type Values = {
  cpus?: string;
  mem?: string;
  env: string[];
  workdir?: string;
  user?: string;
  volume: string[];
  publish: string[];
  "dry-run": boolean;
  name?: string;
};

/**
 * A compiled zkrun (`bun build --compile`, `deno compile`) has no checkout beside its code: it
 * looks for `<dir of the binary>/../lib/libkrun.so.1` (zig-out/bin → zig-out/lib) before the
 * system's. LIBKRUN_PATH, when set, still decides alone.
 */
function libraryBesideExe(): string | undefined {
  const exe = process.execPath;
  if (process.env.LIBKRUN_PATH || /\/(deno|bun)$/.test(exe)) return undefined;
  const lib = `${exe.replace(/\/[^/]*\/[^/]*$/, "")}/lib/libkrun.so.1`;
  return fs.existsSync(lib) ? lib : undefined;
}

/** -v HOST:GUEST[:ro] → a share: HOST an existing directory, GUEST absolute and plain. */
function volumes(list: string[]): VmSpec["volumes"] {
  if (list.length > volumesMax) throw new CliError(`at most ${volumesMax} -v volumes`);
  return list.map((item, i) => {
    const parts = item.split(":");
    const readOnly = parts.length === 3 && parts[2] === "ro";
    if (parts.length < 2 || parts.length > 3 || (parts.length === 3 && !readOnly)) {
      throw new CliError(`-v wants HOST:GUEST or HOST:GUEST:ro, got "${item}"`);
    }
    const [host, guest] = parts;
    let st: fs.Stats;
    try {
      st = fs.statSync(host);
    } catch {
      throw new CliError(`-v ${item}: ${host} does not exist`);
    }
    if (!st.isDirectory()) {
      throw new CliError(`-v ${item}: ${host} is not a directory (only directories can be shared)`);
    }
    const parts2 = guest.split("/").slice(1);
    if (
      !guest.startsWith("/") || guest === "/" || /[,\s"\\]/.test(guest) ||
      parts2.some((p) => p === "." || p === "..")
    ) {
      throw new CliError(`-v ${item}: the guest path must be absolute, not /, without "..", "," or spaces`);
    }
    return { tag: `zkrun${i}`, host: fs.realpathSync(host), guest, readOnly };
  });
}

/** -p HOST:GUEST entries as `Vm`'s port map (checked before any unpacking; `Vm` checks it again). */
function publish(list: string[]): Record<string, number> | undefined {
  if (list.length === 0) return undefined;
  const ports: Record<string, number> = {};
  for (const item of list) {
    const m = /^([0-9]{1,5}):([0-9]{1,5})$/.exec(item);
    if (m === null) throw new CliError(`-p ${item}: wants HOST:GUEST port numbers, e.g. 8080:80`);
    const [host, guest] = [String(Number(m[1])), Number(m[2])];
    if (Number(host) < 1 || Number(host) > 65535 || guest < 1 || guest > 65535) {
      throw new CliError(`-p ${item}: ports are 1..65535`);
    }
    if (host in ports) throw new CliError(`-p ${item}: host port ${host} is published twice`);
    ports[host] = guest;
  }
  return ports;
}

/** Resolves IMAGE|ROOTFS and the options into a VM spec; unpacks an image into the cache first. */
function buildSpec(target: string, command: string[] | null, values: Values): VmSpec {
  const cpus = intOption(values.cpus, "--cpus", 1, 255, 1);
  const memoryMiB = intOption(values.mem, "--mem", 1, 1 << 20, defaultMemMiB);
  const extraEnv = envPairs(values.env);
  const shares = volumes(values.volume);
  const ports = publish(values.publish);
  let st: fs.Stats;
  try {
    st = fs.statSync(target);
  } catch {
    throw new CliError(`${target}: no such image or directory`);
  }
  let root: string;
  let config: RunConfig = {};
  const isLayout = st.isDirectory() && fs.existsSync(`${target}/oci-layout`);
  if (st.isDirectory() && !isLayout) {
    root = fs.realpathSync(target);
  } else if (st.isDirectory() || st.isFile()) {
    const image = openImage(target, st.isDirectory());
    config = image.config;
    const unpacked = cachedRootfs(image);
    if (unpacked.cached) progress(`zkrun: using cached rootfs ${unpacked.path}`, true);
    root = unpacked.path;
  } else {
    throw new CliError(`${target}: neither a directory nor a file`);
  }
  const argv = [...(config.Entrypoint ?? []), ...(command ?? config.Cmd ?? [])];
  if (argv.length === 0) throw new CliError("the image has no Entrypoint or Cmd: give a command after --");
  const env: Record<string, string> = {};
  for (const kv of config.Env ?? []) {
    const at = kv.indexOf("=");
    if (at > 0) env[kv.slice(0, at)] = kv.slice(at + 1);
  }
  env.PATH ??= defaultPath;
  Object.assign(env, extraEnv);
  const user = resolveUser(root, values.user ?? config.User);
  return {
    image: fs.realpathSync(target),
    root,
    cpus,
    memoryMiB,
    entrypoint: config.Entrypoint ?? [],
    argv,
    env,
    workdir: values.workdir ?? config.WorkingDir,
    user,
    volumes: shares,
    ports,
  };
}

/**
 * The workload's env plus what configures the guest init: a user other than root as
 * KRUN_USER=uid:gid, volumes as KRUN_MOUNTS=tag:/guest[:ro],… (zkrun extensions).
 */
function execEnv(spec: VmSpec): Record<string, string> {
  const env = { ...spec.env };
  const { uid, gid } = spec.user;
  if (uid !== 0 || gid !== 0) env.KRUN_USER = `${uid}:${gid}`;
  const mounts = (spec.volumes ?? []).map((v) => `${v.tag}:${v.guest}${v.readOnly ? ":ro" : ""}`);
  if (mounts.length > 0) env.KRUN_MOUNTS = mounts.join(",");
  return env;
}

function newVm(spec: VmSpec, root: string): Vm {
  const vm = new Vm({
    cpus: spec.cpus,
    memoryMiB: spec.memoryMiB,
    root,
    workdir: spec.workdir,
    exec: { path: spec.argv[0], args: spec.argv.slice(1), env: execEnv(spec) },
    ports: spec.ports,
  });
  try {
    // The CLI builds KRUN_MOUNTS itself (tags zkrunN, kept in a named VM's spec), so its shares
    // go onto the context directly rather than through Vm's `volumes` option (tags zkrun-volN).
    const ctx = Context.fromId(vm.ctxId);
    for (const v of spec.volumes ?? []) ctx.addVirtiofs(v.tag, v.host, v.readOnly);
  } catch (err) {
    vm[Symbol.dispose]();
    throw err;
  }
  return vm;
}

/** Boots `spec` on `root` with the console on this terminal; resolves with the guest's status. */
async function boot(spec: VmSpec, root: string): Promise<number> {
  await using vm = newVm(spec, root);
  const stop = (): void => vm.stop();
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  try {
    const { status, reason } = await vm.run({ output: "inherit" });
    // Only "exited" carries the workload's own status: say what else ended the VM.
    if (reason !== "exited") console.error(`zkrun: the VM ended without the workload's status: ${reason}`);
    return status;
  } finally {
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
  }
}

function parse(
  argv: string[],
): { values: Values & { help: boolean }; operands: string[]; command: string[] | null } {
  const [before, command] = splitCommand(argv);
  const { values, positionals } = parseArgs({ args: before, allowPositionals: true, options: runOptions });
  return { values: values as Values & { help: boolean }, operands: positionals, command };
}

async function cmdRun(argv: string[]): Promise<number> {
  const { values, operands, command } = parse(argv);
  if (values.help) return help();
  if (values.name !== undefined) throw new CliError("--name is for zkrun create");
  if (operands.length !== 1) {
    throw new CliError(`run wants one IMAGE|ROOTFS (then -- CMD...), got ${operands.length}`);
  }
  loadLibrary(libraryBesideExe()); // a missing library is said before any unpacking
  const spec = buildSpec(operands[0], command, values);
  if (values["dry-run"]) return dryRun(spec);
  if (!isCached(spec.root)) return await boot(spec, spec.root); // a plain ROOTFS: the user's own, used in place
  const runs = `${dataDir()}/run`;
  fs.mkdirSync(runs, { recursive: true, mode: 0o700 });
  const dir = fs.mkdtempSync(`${runs}/`);
  try {
    copyTree(spec.root, `${dir}/rootfs`);
    return await boot(spec, `${dir}/rootfs`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** An unpacked image in the cache (copied before a VM may write to it), not the user's own ROOTFS. */
function isCached(root: string): boolean {
  return root.startsWith(`${cacheDir()}/rootfs/`);
}

function dryRun(spec: VmSpec): number {
  // Every setter of the real library is called (and checked) without booting.
  using _vm = newVm(spec, spec.root);
  const exec = { path: spec.argv[0], args: spec.argv.slice(1), env: execEnv(spec) };
  console.log(JSON.stringify({ ...spec, exec }, null, 2));
  return 0;
}

function vmStatePath(name: string): string {
  if (!nameRe.test(name)) throw new CliError(`bad VM name "${name}" (letters, digits, _ . -; up to 63)`);
  return `${stateDir()}/vms/${name}.json`;
}

function loadVm(name: string): VmSpec {
  const path = vmStatePath(name);
  if (!fs.existsSync(path)) throw new CliError(`no VM named "${name}" (zkrun list)`);
  return JSON.parse(fs.readFileSync(path, "utf8")) as VmSpec;
}

function cmdCreate(argv: string[]): number {
  const { values, operands, command } = parse(argv);
  if (values.help) return help();
  if (operands.length !== 1) throw new CliError(`create wants one IMAGE|ROOTFS, got ${operands.length}`);
  const base = operands[0].replace(/\/+$/, "").split("/").pop()?.replace(/\.tar$/, "").replace(
    /[^A-Za-z0-9_.-]/g,
    "-",
  );
  const name = values.name ?? base ?? "vm";
  const statePath = vmStatePath(name);
  if (fs.existsSync(statePath)) throw new CliError(`a VM named "${name}" exists already (zkrun rm ${name})`);
  const spec = buildSpec(operands[0], command, values);
  spec.name = name;
  if (isCached(spec.root)) {
    const dir = `${dataDir()}/vms/${name}`;
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    copyTree(spec.root, `${dir}/rootfs`);
    spec.root = `${dir}/rootfs`;
  }
  fs.mkdirSync(`${stateDir()}/vms`, { recursive: true, mode: 0o700 });
  fs.writeFileSync(`${statePath}.tmp`, JSON.stringify(spec, null, 2) + "\n");
  fs.renameSync(`${statePath}.tmp`, statePath);
  console.log(name);
  return 0;
}

async function cmdStart(argv: string[]): Promise<number> {
  const [before, command] = splitCommand(argv);
  if (before.length !== 1) throw new CliError("start wants one NAME (then -- CMD...)");
  const spec = loadVm(before[0]);
  loadLibrary(libraryBesideExe());
  if (command !== null) spec.argv = [...spec.entrypoint, ...command];
  if (spec.argv.length === 0) throw new CliError("no command: give one after --");
  return await boot(spec, spec.root);
}

function cmdList(argv: string[]): number {
  if (argv.length > 0) throw new CliError("list takes no arguments");
  const dir = `${stateDir()}/vms`;
  const names = fs.existsSync(dir)
    ? fs.readdirSync(dir).filter((f) => f.endsWith(".json")).map((f) => f.slice(0, -5)).sort()
    : [];
  console.log(["NAME", "CPUS", "MEM", "COMMAND", "IMAGE"].join("\t"));
  for (const name of names) {
    const s = loadVm(name);
    console.log([name, s.cpus, `${s.memoryMiB}MiB`, JSON.stringify(s.argv), s.image].join("\t"));
  }
  return 0;
}

function cmdRm(argv: string[]): number {
  if (argv.length === 0) throw new CliError("rm wants NAME...");
  for (const name of argv) {
    const spec = loadVm(name);
    if (spec.root === `${dataDir()}/vms/${name}/rootfs`) {
      fs.rmSync(`${dataDir()}/vms/${name}`, { recursive: true, force: true });
    }
    fs.rmSync(vmStatePath(name));
    console.log(name);
  }
  return 0;
}

function help(): number {
  console.log(usage);
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "run":
      openLibc();
      return await cmdRun(rest);
    case "create":
      openLibc();
      return cmdCreate(rest);
    case "start":
      return await cmdStart(rest);
    case "list":
    case "ls":
      return cmdList(rest);
    case "rm":
      return cmdRm(rest);
    case undefined:
    case "help":
    case "-h":
    case "--help":
      return help();
    default:
      throw new CliError(`unknown command "${command}" (run, create, start, list, rm)`);
  }
}

/** Errors that are the user's to fix, as one line; null for a bug. */
function oneLine(err: unknown): string | null {
  if (err instanceof CliError || err instanceof KrunError || err instanceof KrunLibraryError) {
    return err.message;
  }
  if (err instanceof ImageError || err instanceof UnpackError) return `bad image: ${err.message}`;
  if (err instanceof TarError) return `bad image: tar: ${err.message}`;
  if (!(err instanceof Error)) return null;
  const code = (err as { code?: string }).code ?? "";
  if (code.startsWith("ERR_PARSE_ARGS")) return `${err.message} (zkrun --help)`;
  if (err.name === "NotCapable" || err.name === "PermissionDenied") return err.message;
  if (/^E[A-Z]+$/.test(code)) return err.message; // a file system error: its message names the path
  return null;
}

try {
  process.exit(await main(process.argv.slice(2)));
} catch (err) {
  const line = oneLine(err);
  if (line === null && process.env.ZKRUN_DEBUG) throw err;
  console.error(
    `zkrun: ${line ?? `internal error: ${(err as Error)?.message ?? err} (ZKRUN_DEBUG=1 shows where)`}`,
  );
  process.exit(125);
}
