/**
 * Idle cost of waiting, for tests/bench/ts-spawn.bench.sh: N VMs (`sleep 600`, their console
 * inherited) wait while this process does nothing else; after they have booted, the CPU
 * time of the JS thread (this process's main thread) and of the whole process over a window.
 * Prints "<runtime> idle: N VMs, JS thread X% of a CPU, whole process Y%".
 * Usage: bench-idle.ts <rootfs> [vms] [settle s] [window s]
 */
import { readFileSync } from "node:fs";
import process from "node:process";
import { loadLibrary, Vm } from "../../mod.ts";

const [root, n = "10", settle = "60", window = "20"] = process.argv.slice(2);
const runtime = loadLibrary().runtime;
const ticksPerSecond = 100; // USER_HZ on Linux

/** utime + stime in clock ticks from a /proc stat file. */
function cpuTicks(path: string): number {
  const stat = readFileSync(path, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]); // fields 14 and 15 of proc(5)
}

const vms = Array.from(
  { length: Number(n) },
  () => new Vm({ root, memoryMiB: 64, exec: { path: "/bin/sleep", args: ["600"] } }),
);
// The console is inherited, not "null": `sleep` prints nothing and the kernel is quiet, so all
// that can appear is a guest kernel's panic text, which is what explains a VM that ended early.
const children = vms.map((vm) => vm.spawn({ stdout: "inherit", stderr: "inherit" }));
await new Promise((r) => setTimeout(r, Number(settle) * 1000));
const pid = process.pid;
const main0 = cpuTicks(`/proc/${pid}/task/${pid}/stat`);
const all0 = cpuTicks(`/proc/${pid}/stat`);
await new Promise((r) => setTimeout(r, Number(window) * 1000));
const main1 = cpuTicks(`/proc/${pid}/task/${pid}/stat`);
const all1 = cpuTicks(`/proc/${pid}/stat`);
const pct = (ticks: number): string => (100 * ticks / ticksPerSecond / Number(window)).toFixed(2);
console.log(
  `${runtime} idle: ${n} VMs, JS thread ${pct(main1 - main0)}% of a CPU, whole process ${pct(all1 - all0)}%`,
);
for (const c of children) c.stop();
const statuses = await Promise.all(children.map((c) => c.status));
if (statuses.some((s) => s.reason !== "stopped")) throw new Error(`unexpected: ${JSON.stringify(statuses)}`);
for (const vm of vms) await vm[Symbol.asyncDispose]();
