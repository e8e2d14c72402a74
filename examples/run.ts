/**
 * A command-line front end to mod.ts, for Deno and Bun alike:
 *
 *   deno run --allow-ffi --allow-read --allow-env examples/run.ts --root ./rootfs -- /bin/sh -c 'uname -a'
 *   bun examples/run.ts --root ./rootfs --cpus 2 --mem 512 -- /bin/sh -c 'uname -a'
 *
 * The guest's console streams to this terminal and the exit status is the guest's. User
 * mistakes (bad flags, bad values, a missing library or root) print one line and exit 2.
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { type Env, KrunError, KrunLibraryError, type Rlimits, Vm, type Vm as VmType } from "../mod.ts";

const usage = `usage: run.ts --root DIR [options] -- PROGRAM [ARGS...]
  --root DIR          host directory that becomes the guest's /
  --cpus N            vCPUs (default 1)
  --mem MIB           RAM in MiB (default 128)
  --workdir DIR       working directory in the guest
  --env NAME=VALUE    environment variable (repeatable); --inherit-env passes the host's
  --rlimit RES=S:H    resource limit, e.g. NOFILE=1024:4096 (repeatable)
  --capture           collect the console and print it after the guest exits
                      (Deno: also --allow-write=/tmp, for the temp file)
  --timeout MS        stop the guest after MS milliseconds (exit 124)
  --enter             libkrun's krun_start_enter: this process becomes the VM
  -h, --help          this text`;

/** A mistake in how the program was called: one line, exit 2. */
class UsageError extends Error {}

function intFlag(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[0-9]+$/.test(value)) throw new UsageError(`${flag} wants a number, got "${value}"`);
  return Number(value);
}

function pairs(list: string[], sep: string, flag: string): [string, string][] {
  return list.map((item) => {
    const at = item.indexOf(sep);
    if (at <= 0) throw new UsageError(`${flag} wants A${sep}B, got "${item}"`);
    return [item.slice(0, at), item.slice(at + 1)];
  });
}

function rlimits(list: string[]): Rlimits {
  const out: Record<string, [number | "unlimited", number | "unlimited"]> = {};
  for (const [name, range] of pairs(list, "=", "--rlimit")) {
    const m = /^([0-9]+|unlimited):([0-9]+|unlimited)$/.exec(range);
    if (m === null) throw new UsageError(`--rlimit ${name} wants SOFT:HARD, got "${range}"`);
    const value = (s: string): number | "unlimited" => s === "unlimited" ? s : Number(s);
    out[name.toUpperCase()] = [value(m[1]), value(m[2])];
  }
  return out as Rlimits;
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      root: { type: "string" },
      cpus: { type: "string" },
      mem: { type: "string" },
      workdir: { type: "string" },
      env: { type: "string", multiple: true, default: [] },
      "inherit-env": { type: "boolean", default: false },
      rlimit: { type: "string", multiple: true, default: [] },
      capture: { type: "boolean", default: false },
      timeout: { type: "string" },
      enter: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(usage);
    return 0;
  }
  if (values.root === undefined) throw new UsageError("--root DIR is required");
  if (positionals.length === 0) throw new UsageError("no program given: put it after --");
  if (values["inherit-env"] && values.env.length > 0) {
    throw new UsageError("--env and --inherit-env exclude each other");
  }
  const env: Env = values["inherit-env"] ? "inherit" : Object.fromEntries(pairs(values.env, "=", "--env"));
  const [path, ...args] = positionals;
  using vm: VmType = new Vm({
    root: values.root,
    cpus: intFlag(values.cpus, "--cpus"),
    memoryMiB: intFlag(values.mem, "--mem"),
    workdir: values.workdir,
    exec: { path, args, env },
    rlimits: values.rlimit.length > 0 ? rlimits(values.rlimit) : undefined,
  });
  if (values.enter) vm.startEnter();
  try {
    const result = await vm.run({
      output: values.capture ? "capture" : "inherit",
      timeoutMs: intFlag(values.timeout, "--timeout"),
    });
    if (values.capture) process.stdout.write(result.outputBytes);
    return result.status;
  } catch (err) {
    if (err instanceof KrunError && err.code === "ETIMEDOUT") {
      console.error(`run.ts: ${err.message}`);
      return 124;
    }
    throw err;
  }
}

/** Errors that are the user's to fix: shown as one line, never a stack trace. */
function userMistake(err: unknown): string | null {
  if (err instanceof UsageError) return `${err.message} (see --help)`;
  if (err instanceof KrunError || err instanceof KrunLibraryError) return err.message;
  if (!(err instanceof Error)) return null;
  const code = (err as { code?: string }).code ?? "";
  if (code.startsWith("ERR_PARSE_ARGS")) return err.message; // unknown flag, missing value
  // Deno without a needed --allow-* flag.
  if (err.name === "NotCapable" || err.name === "PermissionDenied") return err.message;
  return null;
}

try {
  process.exit(await main(process.argv.slice(2)));
} catch (err) {
  const line = userMistake(err);
  if (line === null) throw err; // a bug: keep the stack
  console.error(`run.ts: ${line}`);
  process.exit(2);
}
