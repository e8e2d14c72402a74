/**
 * End-to-end `Vm.run()` of /bin/true for tests/bench/ts.bench.sh (inside the test host):
 * create + configure + start + wait + free, in-process, N times. Prints
 * "<runtime> run(/bin/true) median <ms> min <ms>". Usage: bench-run.ts <rootfs> [runs]
 */
import process from "node:process";
import { Vm } from "../../mod.ts";

const [root, runsArg] = process.argv.slice(2);
const runs = Number(runsArg ?? 5);
const runtime = "Deno" in globalThis ? "deno" : "bun";
const ms: number[] = [];
for (let i = 0; i < runs; i++) {
  const t0 = performance.now();
  await using vm = new Vm({ root, exec: { path: "/bin/true" } });
  const { status } = await vm.run();
  if (status !== 0) throw new Error(`/bin/true exited ${status}`);
  ms.push(performance.now() - t0);
}
ms.sort((a, b) => a - b);
console.log(
  `${runtime} run(/bin/true) median ${ms[Math.floor(runs / 2)].toFixed(1)} min ${ms[0].toFixed(1)}`,
);
