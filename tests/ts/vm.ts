/**
 * VM scenarios for tests/vm/6*-ts-*.test.sh, the same under Deno and Bun: they boot real
 * guests, so they run inside the test host. Usage: vm.ts <scenario> <rootfs>. Prints
 * "ok <what>" per check and exits non-zero on the first failure (with the guest's output).
 */
import assert from "node:assert/strict";
import process from "node:process";
import { KrunError, loadLibrary, type RunResult, Vm } from "../../mod.ts";

const [scenario, root] = process.argv.slice(2);
const runtime = loadLibrary().runtime; // the adapters alone know the runtime

/** Console lines as the workload wrote them. */
function lines(result: RunResult): string[] {
  return result.output.split("\n").filter((l) => l !== "");
}

function check(what: string, fn: () => void, context: string): void {
  try {
    fn();
  } catch (err) {
    console.error(`FAIL ${what}\n${context}`);
    throw err;
  }
  console.log(`ok   ${runtime}: ${what}`);
}

function sh(script: string, extra: string[] = [], env: Record<string, string> = {}): Vm {
  return new Vm({
    root,
    cpus: 1,
    memoryMiB: 256,
    exec: { path: "/bin/sh", args: ["-c", script, ...extra], env },
  });
}

const scenarios: Record<string, () => Promise<void>> = {
  // Exit status and captured output.
  async "exit-output"(): Promise<void> {
    await using vm = sh("echo out; exit 5");
    const r = await vm.run();
    const ctx = JSON.stringify(r.output);
    check("exit status 5 comes back from the guest", () => assert.equal(r.status, 5), ctx);
    check("run() gives the reason: exited", () => assert.equal(r.reason, "exited"), ctx);
    check("captured output is the workload's 'out'", () => assert.deepEqual(lines(r), ["out"]), ctx);
    check(
      "outputBytes is the same text as the guest's terminal sent it",
      () => assert.equal(new TextDecoder().decode(r.outputBytes).replaceAll("\r\n", "\n"), r.output),
      ctx,
    );
    check("the Vm is exited, and runs only once", () => assert.equal(vm.state, "exited"), ctx);
    await assert.rejects(() => vm.run(), /runs once/);
  },
  // Arguments and environment round-trip: spaces, quotes, unicode, empty strings.
  async "args-env"(): Promise<void> {
    const args = ["a b", "it's", '"q"', "ünïcödé €", "", "$HOME", "back\\slash"];
    const env = { SPACED: "x y  z", QUOTED: `say "hi" it's`, UNI: "日本語", EMPTY: "" };
    const script = 'for a in "$@"; do printf "arg=[%s]\\n" "$a"; done; printf "argc=%s\\n" "$#"; ' +
      Object.keys(env).map((k) => `printf "env=${k}=[%s]\\n" "$${k}"`).join("; ");
    await using vm = sh(script, ["zero", ...args], env);
    const r = await vm.run();
    const got = lines(r);
    const ctx = got.join("\n");
    check("status 0", () => assert.equal(r.status, 0), ctx);
    check("argc matches", () => assert.ok(got.includes(`argc=${args.length}`)), ctx);
    check("every argument arrives byte-exact", () => {
      assert.deepEqual(got.filter((l) => l.startsWith("arg=")), args.map((a) => `arg=[${a}]`));
    }, ctx);
    check("every env variable arrives byte-exact", () => {
      assert.deepEqual(
        got.filter((l) => l.startsWith("env=")),
        Object.entries(env).map(([k, v]) => `env=${k}=[${v}]`),
      );
    }, ctx);
  },
  // Two VMs at once from one process.
  async "concurrent"(): Promise<void> {
    await using a = sh("echo first; sleep 1; exit 11");
    await using b = sh("echo second; sleep 1; exit 22");
    const [ra, rb] = await Promise.all([a.run(), b.run()]);
    const ctx = JSON.stringify([ra.output, rb.output]);
    check("both statuses, each its own", () => assert.deepEqual([ra.status, rb.status], [11, 22]), ctx);
    check(
      "both outputs, not mixed",
      () => assert.deepEqual([lines(ra), lines(rb)], [["first"], ["second"]]),
      ctx,
    );
  },
  // A guest that does not end: timeout stops it; disposing a running VM stops it too.
  async "stop"(): Promise<void> {
    {
      await using vm = sh("echo up; sleep 600");
      await assert.rejects(
        () => vm.run({ timeoutMs: 4000 }),
        (e: unknown) => e instanceof KrunError && e.code === "ETIMEDOUT" && e.op === "krun_wait",
      );
      check(
        "timeoutMs stops the guest and rejects with ETIMEDOUT",
        () => assert.equal(vm.state, "exited"),
        "",
      );
    }
    const vm = sh("sleep 600");
    const running = vm.run();
    await new Promise((r) => setTimeout(r, 2000));
    await vm[Symbol.asyncDispose]();
    const r = await running;
    check(`await using/asyncDispose stops a running guest (status ${r.status}, ${r.reason})`, () => {
      assert.equal(vm.state, "disposed");
      assert.deepEqual([r.status, r.reason], [137, "stopped"]);
    }, "");
  },
};

const run = scenarios[scenario];
if (run === undefined) {
  console.error(`usage: vm.ts <${Object.keys(scenarios).join("|")}> <rootfs>`);
  process.exit(2);
}
await run();
