/**
 * The drift check between ffi/symbols.ts, include/libkrun.h and the library's exports:
 * every table entry must match a header prototype (same parameter kinds, int32_t result) and
 * an exported symbol, and every exported/declared krun_* must be in the table.
 * Usage: abi.ts <libkrun.h> <file with `nm -D --defined-only` output>. Run by
 * tests/native/ts-symbols.sh; prints one line per problem and "N passed, N failed".
 */
import { readFileSync } from "node:fs";
import process from "node:process";
import { type Kind, symbols } from "../../ffi/symbols.ts";

/** The header without comments, #define bodies and the Windows halves of #ifdef _WIN32. */
function preprocess(text: string): string {
  const noComments = text.replace(/\/\*[\s\S]*?\*\//g, " ").replace(/\/\/[^\n]*/g, " ");
  const out: string[] = [];
  let skipping = false; // inside the _WIN32 half
  let continued = false; // inside a multi-line #define
  for (const line of noComments.split("\n")) {
    const t = line.trim();
    if (continued) {
      continued = t.endsWith("\\");
      continue;
    }
    if (t.startsWith("#")) {
      if (/^#\s*ifdef\s+_WIN32/.test(t)) skipping = true;
      else if (skipping && /^#\s*(else|endif)/.test(t)) skipping = false;
      continued = t.endsWith("\\");
      continue;
    }
    if (!skipping) out.push(line);
  }
  return out.join("\n");
}

function kindOf(param: string): Kind {
  if (param.includes("*") || param.includes("[")) return "ptr";
  const type = param.trim().split(/\s+/).filter((w) => w !== "const")[0];
  const kinds: Record<string, Kind> = {
    uint8_t: "u8",
    uint16_t: "u16",
    uint32_t: "u32",
    uid_t: "u32",
    gid_t: "u32",
    int32_t: "i32",
    int: "i32",
    uint64_t: "u64",
    size_t: "usize",
    bool: "bool",
  };
  const kind = kinds[type];
  if (kind === undefined) throw new Error(`unknown C type in parameter "${param.trim()}"`);
  return kind;
}

function prototypes(header: string): Map<string, { result: string; kinds: Kind[] }> {
  const found = new Map<string, { result: string; kinds: Kind[] }>();
  const re = /\b(int32_t|int|void)\s+(krun_\w+)\s*\(([^)]*)\)\s*;/g;
  for (const m of preprocess(header).matchAll(re)) {
    const params = m[3].trim();
    const kinds = params === "" || params === "void" ? [] : params.split(",").map(kindOf);
    found.set(m[2], { result: m[1], kinds });
  }
  return found;
}

const [headerPath, nmPath] = process.argv.slice(2);
const declared = prototypes(readFileSync(headerPath, "utf8"));
const exported = new Set(
  readFileSync(nmPath, "utf8").split("\n").map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length === 3 && f[1] === "T" && f[2].startsWith("krun_")).map((f) => f[2]),
);
const table = new Map(Object.entries(symbols));

let passed = 0, failed = 0;
function expect(ok: boolean, what: string): void {
  if (ok) passed++;
  else {
    failed++;
    console.log(`FAIL ${what}`);
  }
}

for (const [name, spec] of table) {
  const proto = declared.get(name);
  expect(proto !== undefined, `${name}: in ffi/symbols.ts, not declared in ${headerPath}`);
  if (proto !== undefined) {
    const same = proto.result !== "void" && proto.kinds.join(",") === spec.parameters.join(",");
    expect(same, `${name}: table (${spec.parameters.join(",")}) ≠ header (${proto.kinds.join(",")})`);
  }
  expect(exported.has(name), `${name}: in ffi/symbols.ts, not exported by the library`);
}
for (const name of declared.keys()) {
  expect(table.has(name), `${name}: declared in the header, missing from ffi/symbols.ts`);
}
for (const name of exported) {
  expect(table.has(name), `${name}: exported by the library, missing from ffi/symbols.ts`);
}
console.log(`table ${table.size}, header ${declared.size}, exported ${exported.size}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
