/**
 * FFI call overhead for tests/bench/ts.bench.sh, the same under Deno and Bun. Three library
 * calls of rising cost, straight through the adapter: krun_has_feature (pure: the crossing
 * itself), krun_set_nested_virt (lock + context lookup: a cheap setter), krun_set_vm_config
 * (opens /dev/kvm to bound the vCPUs); then the same setter through mod.ts's checked
 * Context.setVmConfig and Context.setExec with 3 strings. Prints "<runtime> <what> <ns/call>".
 * Usage: bench.ts [calls]
 */
import process from "node:process";
import { load } from "../../ffi/load.ts";
import { Context, loadLibrary } from "../../mod.ts";

const n = Number(process.argv[2] ?? 1_000_000);
const runtime = loadLibrary().runtime; // the adapters alone know the runtime

function time(what: string, calls: number, fn: () => void): void {
  fn(); // warm up: JIT, first-call binding
  const t0 = performance.now();
  fn();
  console.log(`${runtime} ${what} ${(((performance.now() - t0) * 1e6) / calls).toFixed(1)}`);
}

const c = load().call;
using ctx = new Context();
const id = ctx.id;
const slow = Math.max(1, Math.floor(n / 100)); // the /dev/kvm-bound calls
time("krun_has_feature", n, () => {
  for (let i = 0; i < n; i++) c.krun_has_feature(11n);
});
time("krun_set_nested_virt", n, () => {
  for (let i = 0; i < n; i++) c.krun_set_nested_virt(id, false);
});
time("krun_set_vm_config", slow, () => {
  for (let i = 0; i < slow; i++) c.krun_set_vm_config(id, 1, 128);
});
time("Context.setVmConfig", slow, () => {
  for (let i = 0; i < slow; i++) ctx.setVmConfig(1, 128);
});
time("Context.setExec", n / 10, () => {
  for (let i = 0; i < n / 10; i++) ctx.setExec("/bin/sh", ["-c", "true"], { A: "1" });
});
