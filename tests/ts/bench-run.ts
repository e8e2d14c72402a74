/**
 * End-to-end `Vm.run()` for tests/bench/ts.bench.sh: create + configure + start + wait +
 * read output + free, in-process, N times. With a rootfs: /bin/true in a Linux guest (inside
 * the test host); with --tiny GUEST: a hand-made raw guest that resets at once (this machine).
 * Prints "<runtime> run(<what>) <median ms>".
 * Usage: bench-run.ts <rootfs> [runs] | bench-run.ts --tiny <guest> [runs]
 */
import process from "node:process";
import { loadLibrary, Vm } from "../../mod.ts";

const tinyGuest = process.argv[2] === "--tiny" ? process.argv[3] : undefined;
const [root, runsArg] = tinyGuest === undefined ? process.argv.slice(2) : ["/", process.argv[4]];
const runs = Number(runsArg ?? 5);
const runtime = loadLibrary().runtime; // the adapters alone know the runtime
const ms: number[] = [];
for (let i = 0; i < runs; i++) {
  const t0 = performance.now();
  {
    await using vm = new Vm({
      root,
      memoryMiB: tinyGuest === undefined ? 128 : 32,
      exec: { path: "/bin/true" },
      kernel: tinyGuest === undefined
        ? undefined
        : { path: tinyGuest, format: "raw", cmdline: "console=ttyS0" },
    });
    const { status } = await vm.run();
    if (status !== 0) throw new Error(`the guest exited ${status}`);
  }
  ms.push(performance.now() - t0);
}
ms.sort((a, b) => a - b);
console.log(
  `${runtime} run(${tinyGuest === undefined ? "/bin/true" : "tiny"}) ${ms[Math.floor(runs / 2)].toFixed(2)}`,
);
