/**
 * A web server in a microVM, reached from the host through a TSI port map: the guest's busybox
 * `httpd` serves a page on guest port 80, `ports` maps it to a host port, and this script
 * fetches the page over the host's 127.0.0.1 and prints its body:
 *
 *   deno run --allow-ffi --allow-read --allow-write=/tmp --allow-env --allow-net=127.0.0.1 examples/http-server.ts --root ./rootfs
 *   bun examples/http-server.ts --root ./rootfs --port 8080
 *
 * The page comes from a temporary host directory shared read-only into the guest over its /tmp
 * (`volumes`; a mount point every root has, so a read-only root works too). The guest's httpd listens
 * on every guest address, so the host port is on the host's wildcard address too (as `docker -p`).
 * The root must have busybox's httpd at /usr/sbin/httpd (scripts/mkrootfs.sh builds one). Exits 0
 * after printing the body; a mistake prints one line and exits 2; no answer within --timeout
 * prints why (and what the guest said) and exits 1.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { KrunError, KrunLibraryError, Vm } from "../mod.ts";

const usage = `usage: http-server.ts --root DIR [--port HOST_PORT] [--timeout MS]
  --root DIR      host directory that becomes the guest's / (with busybox httpd)
  --port N        host port mapped to the guest's port 80 (default 8080)
  --timeout MS    give up when the guest has not answered after MS milliseconds (default 60000)`;

const guestPort = 80;
const page = "hello from a microVM\n";

class UsageError extends Error {}

function intFlag(value: string | undefined, flag: string, def: number): number {
  if (value === undefined) return def;
  if (!/^[0-9]+$/.test(value)) throw new UsageError(`${flag} wants a number, got "${value}"`);
  return Number(value);
}

/** GETs `url` until it answers (the guest is still booting until then) or `deadline` passes. */
async function fetchWhenUp(url: string, deadline: number, ended: () => boolean): Promise<string> {
  for (;;) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
      const body = await res.text();
      if (res.ok) return body;
      throw new Error(`${url}: HTTP ${res.status}`);
    } catch (err) {
      if (ended()) throw new Error(`the VM ended before ${url} answered`);
      if (Date.now() > deadline) throw new Error(`${url} did not answer in time: ${err}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      root: { type: "string" },
      port: { type: "string" },
      timeout: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(usage);
    return 0;
  }
  if (values.root === undefined) throw new UsageError("--root DIR is required");
  const hostPort = intFlag(values.port, "--port", 8080);
  const deadline = Date.now() + intFlag(values.timeout, "--timeout", 60_000);
  const www = mkdtempSync(join(tmpdir(), "zkrun-www-"));
  try {
    writeFileSync(join(www, "index.html"), page);
    await using vm = new Vm({
      root: values.root,
      // -f: stay in the foreground, so the VM lives as long as the server.
      exec: { path: "/usr/sbin/httpd", args: ["-f", "-p", String(guestPort), "-h", "/tmp"] },
      volumes: [{ host: www, guest: "/tmp", readOnly: true }],
      ports: { [hostPort]: guestPort },
    });
    const child = vm.spawn({ stdout: "null", stderr: "piped" });
    let ended = false;
    const said = new Response(child.stderr).text();
    const status = child.status.finally(() => ended = true);
    let body: string;
    try {
      body = await fetchWhenUp(`http://127.0.0.1:${hostPort}/index.html`, deadline, () => ended);
    } catch (err) {
      child.stop();
      const { code, reason } = await status;
      console.error(`http-server.ts: ${(err as Error).message} (VM: ${reason} ${code})`);
      const text = (await said).trim();
      if (text !== "") console.error(text);
      return 1;
    }
    process.stdout.write(body);
    child.stop();
    await status;
    return 0;
  } finally {
    rmSync(www, { recursive: true, force: true });
  }
}

try {
  process.exit(await main(process.argv.slice(2)));
} catch (err) {
  if (err instanceof UsageError) console.error(`http-server.ts: ${err.message} (see --help)`);
  else if (err instanceof KrunError || err instanceof KrunLibraryError) {
    console.error(`http-server.ts: ${err.message}`);
  } else throw err;
  process.exit(2);
}
