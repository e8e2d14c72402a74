/**
 * The FinalizationRegistry safety net: contexts dropped without free()/dispose are freed in C
 * once collected. Needs a global gc(): `deno run --v8-flags=--expose-gc` or `bun --expose-gc`.
 * Run by ts-deno.sh and ts-bun.sh; prints "gc ok: N of N freed" or fails.
 */
import process from "node:process";
import { Context } from "../../mod.ts";

const gc = (globalThis as { gc?: (full?: boolean) => void }).gc;
if (gc === undefined) throw new Error("run with --expose-gc");
const count = 5;
const ids: number[] = [];
for (let i = 0; i < count; i++) ids.push(new Context().id); // dropped at once, never freed
for (let i = 0; i < 10; i++) {
  gc(true);
  await new Promise((r) => setTimeout(r, 20)); // finalizers run as tasks after a collection
}
let freed = 0;
for (const id of ids) {
  try {
    Context.fromId(id).free(); // ENOENT if the safety net already freed it
  } catch {
    freed++;
  }
}
console.log(`gc ${freed === count ? "ok" : "FAIL"}: ${freed} of ${count} freed`);
process.exit(freed === count ? 0 : 1);
