/** Registers tests/ts/cases.ts with `bun test` (run by tests/native/ts-bun.sh). */
import { cases } from "./cases.ts";

// In a variable so that `deno check` never tries to resolve it.
const runner = "bun:test";
const { test } = (await import(runner)) as {
  test: (name: string, fn: () => unknown, timeoutMs: number) => void;
};
// Bun's default 5 s per test is short for VM cases on a loaded machine; Deno has no limit.
const timeoutMs = 60_000;

for (const c of cases) test(c.name, c.fn, timeoutMs);
