/**
 * For tests/native/ts-deno.sh and ts-bun.sh: libkrun.so.1 stays mapped after this process
 * closes its only handle (RTLD_NODELETE; a running VM's threads and signal handlers run its
 * code: Deno closing it at an uncaught error's exit crashed the process). Run with -A (Deno
 * reads /proc/self/maps only then). Prints "pinned: mapped after close" or fails.
 */
import { readFileSync } from "node:fs";
import { candidates } from "../../ffi/load.ts";

const path = candidates()[0];
const mapped = (): boolean => readFileSync("/proc/self/maps", "utf8").includes("libkrun.so");
let close: () => void;
if ("Deno" in globalThis) {
  const lib = Deno.dlopen(path, { krun_get_max_vcpus: { parameters: [], result: "i32" } });
  close = () => lib.close();
} else {
  const specifier = "bun:ffi"; // a variable: deno check must not resolve it
  const { dlopen } = await import(specifier);
  const lib = dlopen(path, { krun_get_max_vcpus: { args: [], returns: "i32" } });
  close = () => lib.close();
}
if (!mapped()) throw new Error(`${path} is not mapped after dlopen`);
close();
if (!mapped()) throw new Error(`${path} was unmapped by dlclose: a running VM would crash`);
console.log("pinned: mapped after close");
