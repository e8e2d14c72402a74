/** Registers tests/ts/cases.ts with `deno test` (run by tests/native/ts-deno.sh). */
import { cases } from "./cases.ts";

for (const c of cases) Deno.test({ name: c.name, fn: c.fn, sanitizeResources: false });
