/**
 * Run by tests/native/ts-deno.sh with exactly the Deno flags README.md documents, to prove
 * they are enough: load the library, configure a VM, capture-mode setup (temp dir), dispose.
 * Usage: permissions.ts <root dir>. Prints "permissions ok" on success.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { Context, loadLibrary, Vm } from "../../mod.ts";

const root = process.argv[2];
const info = loadLibrary();
{
  using vm = new Vm({ root, cpus: 1, memoryMiB: 128, exec: { path: "/bin/true", env: { A: "1" } } });
  if (vm.state !== "ready") throw new Error("not ready");
}
// What run({ output: "capture" }) does before it starts the VM: a temp dir and a console file.
const dir = mkdtempSync(join(process.env.TMPDIR ?? "/tmp", "zkrun-"));
{
  using ctx = new Context();
  ctx.setConsoleOutput(join(dir, "console"));
}
rmSync(dir, { recursive: true });
console.log(`permissions ok (${info.runtime}, ${info.path})`);
