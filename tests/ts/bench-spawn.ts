/**
 * Output throughput through `Vm.spawn()` for tests/bench/ts-spawn.bench.sh: a guest runs
 * `dd if=/dev/zero bs=64k count=N` to its stdout (piped: read and dropped here) and the same dd
 * to /dev/null, each timed start to status; the difference is the output's cost (boot and
 * teardown cancel out). Prints "<runtime> spawn: N MiB piped X s, to /dev/null Y s".
 * Usage: bench-spawn.ts <rootfs> [count of 64 KiB blocks]
 */
import process from "node:process";
import { loadLibrary, Vm } from "../../mod.ts";

const [root, countArg = "256"] = process.argv.slice(2);
const count = Number(countArg);
const runtime = loadLibrary().runtime;

async function timed(of: string | null): Promise<number> {
  const args = ["if=/dev/zero", "bs=64k", `count=${count}`, ...(of === null ? [] : [`of=${of}`])];
  await using vm = new Vm({ root, memoryMiB: 256, exec: { path: "/bin/dd", args } });
  const t0 = performance.now();
  const child = vm.spawn({ stdout: "piped", stderr: "null" });
  let bytes = 0;
  for await (const chunk of child.stdout) bytes += chunk.length;
  const st = await child.status;
  if (!st.success || (of === null && bytes !== count * 65536)) {
    throw new Error(`dd: ${JSON.stringify(st)}, ${bytes} bytes`);
  }
  return (performance.now() - t0) / 1000;
}

const piped = await timed(null);
const devNull = await timed("/dev/null");
console.log(
  `${runtime} spawn: ${count / 16} MiB piped ${piped.toFixed(2)} s, to /dev/null ${devNull.toFixed(2)} s`,
);
