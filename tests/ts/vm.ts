/**
 * VM scenarios for tests/vm/6*-ts-*.test.sh, the same under Deno and Bun: they boot real
 * guests, so they run inside the test host. Usage: vm.ts <scenario>[,<scenario>...] <rootfs>.
 * Several scenarios run one after the other in this one process (a runtime's start-up costs
 * 5-30 s in the test host's emulated CPU): each prints "ok <what>" per check and ends with
 * "ok <runtime>: scenario NAME", or "FAIL <runtime>: scenario NAME" at its first failed check
 * (with the guest's output); the next scenario runs either way, and the exit status is
 * non-zero when any failed.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import process from "node:process";
import { KrunError, loadLibrary, type RunResult, Vm, type VmStatus } from "../../mod.ts";

const [scenarioList, root] = process.argv.slice(2);
const runtime = loadLibrary().runtime; // the adapters alone know the runtime

/** Console lines as the workload wrote them. */
function lines(result: RunResult): string[] {
  return result.output.split("\n").filter((l) => l !== "");
}

function check(what: string, fn: () => void, context: string): void {
  try {
    fn();
  } catch (err) {
    console.error(`FAIL ${what}\n${context}`);
    throw err;
  }
  console.log(`ok   ${runtime}: ${what}`);
}

function sh(script: string, extra: string[] = [], env: Record<string, string> = {}): Vm {
  return new Vm({
    root,
    cpus: 1,
    memoryMiB: 256,
    exec: { path: "/bin/sh", args: ["-c", script, ...extra], env },
  });
}

const MiB = 1024 * 1024;

/**
 * This process's JS memory: the heap and the buffers outside it, where stream chunks live.
 * Not RSS: it also counts guest RAM (mapped in this process) as the guest touches it.
 */
function jsMemory(): number {
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Every byte of a stream, concatenated. */
async function bytes(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

const text = (b: Uint8Array): string => new TextDecoder().decode(b);

const scenarios: Record<string, () => Promise<void>> = {
  // 64 MiB of zeros through spawn()'s stdout: every byte arrives, and this process's memory
  // stays bounded, also while nobody reads (the guest stalls).
  async "spawn-stream"(): Promise<void> {
    const total = 64 * MiB;
    // dd writes straight to the port (a `tr` in the pipe costs minutes of emulated CPU);
    // line ends pass unchanged is checked by "output" and "spawn-stdin".
    await using vm = sh(`dd if=/dev/zero bs=64k count=${total / 65536} 2>/dev/null; echo done >&2`);
    const child = vm.spawn();
    let ended = false;
    child.status.then(() => ended = true);
    const before = jsMemory();
    await sleep(3000); // nobody reads: the pipe and the console's ring fill, then the guest waits
    const stalled = jsMemory() - before;
    check(
      `a stdout nobody reads stalls the guest, not this process (JS memory +${
        (stalled / MiB).toFixed(1)
      } MiB)`,
      () => {
        assert.equal(ended, false);
        assert.ok(stalled < 16 * MiB);
      },
      "",
    );
    let got = 0;
    let bad = -1;
    let peak = 0;
    const t0 = performance.now();
    for await (const chunk of child.stdout) {
      for (let i = 0; i < chunk.length && bad < 0; i++) if (chunk[i] !== 0) bad = got + i;
      got += chunk.length;
      peak = Math.max(peak, jsMemory() - before);
    }
    const secs = (performance.now() - t0) / 1000;
    const st = await child.status;
    const err = text(await bytes(child.stderr));
    const ctx = JSON.stringify({ got, bad, st, err });
    check(`all ${total} bytes arrive byte-exact (${(total / MiB / secs).toFixed(1)} MiB/s)`, () => {
      assert.equal(got, total);
      assert.equal(bad, -1);
    }, ctx);
    check(`memory stays bounded while streaming (peak JS memory +${(peak / MiB).toFixed(1)} MiB)`, () => {
      assert.ok(peak < 48 * MiB);
    }, ctx);
    check("stderr is its own stream; status exited 0", () => {
      assert.equal(err, "done\n");
      assert.deepEqual(st, { code: 0, success: true, reason: "exited" });
    }, ctx);
  },
  // stdin round trip through cat: every byte value, \r\n, ^C and ^D pass unchanged.
  async "spawn-stdin"(): Promise<void> {
    await using vm = new Vm({ root, memoryMiB: 256, exec: { path: "/bin/cat" } });
    const child = vm.spawn({ stdin: "piped" });
    const input = new Uint8Array(1 * MiB + 7);
    for (let i = 0; i < input.length; i++) input[i] = (i * 7 + (i >> 9)) & 0xff;
    input.set([13, 10, 3, 4, 0, 26], 100);
    const writing = (async (): Promise<void> => {
      const w = child.stdin.getWriter();
      for (let at = 0; at < input.length; at += 100_000) await w.write(input.slice(at, at + 100_000));
      await w.close(); // end of file for cat
    })();
    const [out, st] = await Promise.all([bytes(child.stdout), child.status, writing]);
    const ctx = JSON.stringify({ len: out.length, st });
    check(`stdin → cat → stdout: ${input.length} bytes back byte-exact`, () => {
      assert.equal(out.length, input.length);
      assert.ok(out.every((b, i) => b === input[i]));
    }, ctx);
    check(
      "closing stdin ends cat: exited 0",
      () => assert.deepEqual(st, { code: 0, success: true, reason: "exited" }),
      ctx,
    );
  },
  // output(): stdout and stderr apart, the status, VmState and the exit event; maxBuffer.
  async "output"(): Promise<void> {
    await using vm = sh("printf 'out\\r\\n'; echo err >&2; printf more; exit 3");
    const events: VmStatus[] = [];
    vm.addEventListener("exit", (e) => events.push((e as CustomEvent<VmStatus>).detail));
    const r = await vm.output();
    const ctx = JSON.stringify({ ...r, stdout: text(r.stdout), stderr: text(r.stderr) });
    check(
      "stdout is exactly the workload's (\\r\\n kept as written)",
      () => assert.equal(text(r.stdout), "out\r\nmore"),
      ctx,
    );
    check("stderr is separate", () => assert.equal(text(r.stderr), "err\n"), ctx);
    check("code 3, reason exited, not success", () => {
      assert.deepEqual([r.code, r.reason, r.success], [3, "exited", false]);
    }, ctx);
    check("VmState is exited and one exit event fired with the status", () => {
      assert.equal(vm.state, "exited");
      assert.deepEqual(events, [{ code: 3, success: false, reason: "exited" }]);
    }, ctx);
    await assert.rejects(() => vm.output(), /runs once/);
    await using big = sh("head -c 1000000 /dev/zero; sleep 600");
    await assert.rejects(
      () => big.output({ maxBuffer: 4096 }),
      (e: unknown) =>
        e instanceof KrunError && e.code === "ENOBUFS" && /stdout exceeded maxBuffer/.test(e.message),
    );
    check(
      "output() past maxBuffer stops the VM and rejects with ENOBUFS",
      () => assert.equal(big.state, "exited"),
      "",
    );
  },
  // AbortSignal (and AbortSignal.timeout) stop the VM: reason "stopped", code 137.
  async "spawn-abort"(): Promise<void> {
    {
      // Long enough for the guest to boot and print under emulation; then it sleeps on.
      await using vm = sh("echo up; sleep 600");
      const child = vm.spawn({ signal: AbortSignal.timeout(20_000), stderr: "null" });
      const [out, st] = await Promise.all([bytes(child.stdout), child.status]);
      check("AbortSignal.timeout stops the VM: 137, stopped (and its output so far arrived)", () => {
        assert.deepEqual(st, { code: 137, success: false, reason: "stopped" });
        assert.equal(text(out), "up\n");
      }, JSON.stringify({ st, out: text(out) }));
    }
    {
      await using vm = sh("sleep 600");
      const ac = new AbortController();
      const child = vm.spawn({ signal: ac.signal, stdout: "null", stderr: "null" });
      setTimeout(() => ac.abort(), 2000);
      const st = await child.status;
      check(
        "AbortController.abort() stops it too",
        () => assert.equal(st.reason, "stopped"),
        JSON.stringify(st),
      );
    }
    await using vm = sh("true");
    const ac = new AbortController();
    ac.abort(new Error("never mind"));
    assert.throws(() => vm.spawn({ signal: ac.signal }), /never mind/);
    check("an aborted signal throws its reason before booting", () => assert.equal(vm.state, "ready"), "");
  },
  // volumes (virtio-fs shares init mounts, one read-only) and disks (virtio-blk).
  async "volumes-disks"(): Promise<void> {
    const dir = mkdtempSync("/tmp/zkrun-ts-vol-");
    try {
      const ro = join(dir, "ro");
      const rw = join(dir, "rw");
      mkdirSync(ro);
      mkdirSync(rw);
      writeFileSync(join(ro, "hello.txt"), "from host\n");
      const image = new Uint8Array(1024 * 1024);
      image.set(new TextEncoder().encode("ZKRUN-DISK"));
      writeFileSync(join(dir, "disk.img"), image);
      await using vm = new Vm({
        root,
        memoryMiB: 256,
        exec: {
          path: "/bin/sh",
          args: [
            "-c",
            "cat /data/ro/hello.txt; (echo x > /data/ro/new) 2>/dev/null && echo ro-writable || echo ro-refused; " +
            "echo written > /data/rw/out; head -c 10 /dev/vda; echo",
          ],
        },
        volumes: [{ host: ro, guest: "/data/ro", readOnly: true }, { host: rw, guest: "/data/rw" }],
        disks: [{ id: "data", path: join(dir, "disk.img"), readOnly: true }],
      });
      const r = await vm.output();
      const out = text(r.stdout);
      const ctx = JSON.stringify({ ...r, stdout: out, stderr: text(r.stderr) });
      check("a volume's file reads in the guest; a read-only one refuses writes", () => {
        assert.equal(out.split("\n").slice(0, 2).join("\n"), "from host\nro-refused");
      }, ctx);
      check("a read-write volume's write reaches the host", () => {
        assert.equal(readFileSync(join(rw, "out"), "utf8"), "written\n");
      }, ctx);
      check("the disk is /dev/vda with the image's bytes; exited 0", () => {
        assert.equal(out.split("\n")[2], "ZKRUN-DISK");
        assert.equal(r.success, true);
      }, ctx);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
  // A guest kernel panic (panic_on_oom=2, then a 16 MiB memory cgroup fills a tmpfs) gives its
  // reason.
  async "panic"(): Promise<void> {
    await using vm = sh(
      "grep -q ' /sys/fs/cgroup cgroup2 ' /proc/mounts || mount -t cgroup2 none /sys/fs/cgroup; " +
        "echo +memory > /sys/fs/cgroup/cgroup.subtree_control && mkdir /sys/fs/cgroup/oom && " +
        "echo 16M > /sys/fs/cgroup/oom/memory.max && echo 2 > /proc/sys/vm/panic_on_oom && " +
        "echo $$ > /sys/fs/cgroup/oom/cgroup.procs && echo armed && mount -t tmpfs none /tmp && " +
        // tmpfs pages are charged to the cgroup and cannot be reclaimed (no swap): OOM, panic.
        "dd if=/dev/zero of=/tmp/fill bs=1M count=64; sleep 600",
    );
    const r = await vm.output({ signal: AbortSignal.timeout(120_000) });
    const ctx = JSON.stringify({ ...r, stdout: text(r.stdout), stderr: text(r.stderr) });
    check("a guest kernel panic: code 1, reason guest-panic", () => {
      assert.equal(text(r.stdout), "armed\n");
      assert.deepEqual([r.code, r.reason, r.success], [1, "guest-panic", false]);
    }, ctx);
  },
  // Exit status and captured output.
  async "exit-output"(): Promise<void> {
    await using vm = sh("echo out; exit 5");
    const r = await vm.run();
    const ctx = JSON.stringify(r.output);
    check("exit status 5 comes back from the guest", () => assert.equal(r.status, 5), ctx);
    check("run() gives the reason: exited", () => assert.equal(r.reason, "exited"), ctx);
    check("captured output is the workload's 'out'", () => assert.deepEqual(lines(r), ["out"]), ctx);
    check(
      "outputBytes is the same text as the guest's terminal sent it",
      () => assert.equal(new TextDecoder().decode(r.outputBytes).replaceAll("\r\n", "\n"), r.output),
      ctx,
    );
    check("the Vm is exited, and runs only once", () => assert.equal(vm.state, "exited"), ctx);
    await assert.rejects(() => vm.run(), /runs once/);
  },
  // Arguments and environment round-trip: spaces, quotes, unicode, empty strings.
  async "args-env"(): Promise<void> {
    const args = ["a b", "it's", '"q"', "ünïcödé €", "", "$HOME", "back\\slash"];
    const env = { SPACED: "x y  z", QUOTED: `say "hi" it's`, UNI: "日本語", EMPTY: "" };
    const script = 'for a in "$@"; do printf "arg=[%s]\\n" "$a"; done; printf "argc=%s\\n" "$#"; ' +
      Object.keys(env).map((k) => `printf "env=${k}=[%s]\\n" "$${k}"`).join("; ");
    await using vm = sh(script, ["zero", ...args], env);
    const r = await vm.run();
    const got = lines(r);
    const ctx = got.join("\n");
    check("status 0", () => assert.equal(r.status, 0), ctx);
    check("argc matches", () => assert.ok(got.includes(`argc=${args.length}`)), ctx);
    check("every argument arrives byte-exact", () => {
      assert.deepEqual(got.filter((l) => l.startsWith("arg=")), args.map((a) => `arg=[${a}]`));
    }, ctx);
    check("every env variable arrives byte-exact", () => {
      assert.deepEqual(
        got.filter((l) => l.startsWith("env=")),
        Object.entries(env).map(([k, v]) => `env=${k}=[${v}]`),
      );
    }, ctx);
  },
  // Two VMs at once from one process.
  async "concurrent"(): Promise<void> {
    await using a = sh("echo first; sleep 1; exit 11");
    await using b = sh("echo second; sleep 1; exit 22");
    const [ra, rb] = await Promise.all([a.run(), b.run()]);
    const ctx = JSON.stringify([ra.output, rb.output]);
    check("both statuses, each its own", () => assert.deepEqual([ra.status, rb.status], [11, 22]), ctx);
    check(
      "both outputs, not mixed",
      () => assert.deepEqual([lines(ra), lines(rb)], [["first"], ["second"]]),
      ctx,
    );
  },
  // spawn({ tty }): the workload's stdin/stdout/stderr are one terminal of the asked size;
  // typed input is echoed and read; resize() reaches the guest; the status and the end of
  // stdout come back; tty excludes stdin/stdout/stderr and stderr's stream.
  async "spawn-tty"(): Promise<void> {
    assert.throws(
      () => sh("true").spawn({ tty: true, stdout: "piped" }),
      (e: unknown) => e instanceof KrunError && e.code === "EINVAL" && /tty/.test(e.message),
    );
    await using vm = sh(
      'for fd in 0 1 2; do [ -t $fd ] && echo "tty$fd"; done; echo "size=[$(stty size)]"; echo err >&2; ' +
        'read line; i=0; while [ "$(stty size)" = "30 100" ] && [ $i -lt 300 ]; do sleep 0.2; i=$((i+1)); done; ' +
        'echo "got=[$line] now=[$(stty size)]"; exit 3',
    );
    const child = vm.spawn({ tty: { cols: 100, rows: 30 }, signal: AbortSignal.timeout(240_000) });
    assert.throws(() => child.stderr, TypeError);
    let seen = "";
    const reader = child.stdout.getReader();
    const waitFor = async (re: RegExp): Promise<void> => {
      while (!re.test(seen)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`stdout ended before ${re}; got ${JSON.stringify(seen)}`);
        seen += text(value);
      }
    };
    await waitFor(/size=\[30 100\]/);
    await waitFor(/err\r\n/);
    check("tty: stdin, stdout and stderr are the guest's terminal, 100x30", () => {
      assert.match(seen, /tty0\r\ntty1\r\ntty2\r\n/);
      assert.match(seen, /size=\[30 100\]\r\nerr\r\n/);
    }, seen);
    const mid = vm.stats(); // live: the guest booted and ran a shell
    child.resize(120, 40);
    const keys = child.stdin.getWriter();
    await keys.write(new TextEncoder().encode("hello\r"));
    await waitFor(/got=.*\r\n/);
    while (true) { // to the end: the stream ends once the VM is down
      const { value, done } = await reader.read();
      if (done) break;
      seen += text(value);
    }
    const status = await child.status;
    check("tty: typed input echoed and read, the resize seen, status 3, stdout ended", () => {
      assert.match(seen, /hello\r\n/);
      assert.match(seen, /got=\[hello\] now=\[40 120\]\r\n/);
      assert.deepEqual(status, { code: 3, success: false, reason: "exited" });
    }, seen);
    child.resize(80, 24); // ended: nothing to do, no throw
    const last = vm.stats();
    check(`stats after the end: ${last.exits} exits, ${last.residentBytes} bytes resident`, () => {
      assert.ok(last.exits > mid.exits, `${last.exits} > ${mid.exits}`);
      assert.ok(mid.exits > 100 && mid.residentBytes > 1024 * 1024, JSON.stringify(mid));
    }, "");
    await keys.close().catch(() => {});
  },
  // The vsock option (root: a rootfs with /vsock-guest, tests/vm/80-vsock-build.sh): the guest
  // connects to a host listener (port 6000 → a unix socket here), then serves port 5000, which
  // vm.connect() reaches; a port not configured to listen is refused; the temp socket goes.
  async "vsock"(): Promise<void> {
    const dir = mkdtempSync("/tmp/zkrun-ts-vsock-");
    const hostPath = join(dir, "host.sock");
    const server = createServer({ allowHalfOpen: true }, (c) => {
      let got = "";
      c.on("data", (d) => got += String(d));
      c.on("end", () => c.end(`echo:${got}`));
    });
    await new Promise<void>((r) => server.listen(hostPath, r));
    const vm = new Vm({
      root,
      memoryMiB: 128,
      exec: { path: "/bin/sh", args: ["-c", "/vsock-guest connect 6000 hello && /vsock-guest serve 5000 1"] },
      vsock: [{ port: 6000, path: hostPath }, { port: 5000, listen: true }],
    });
    await assert.rejects(vm.connect(5000), (e: unknown) => e instanceof KrunError && e.code === "EINVAL");
    const child = vm.spawn({ signal: AbortSignal.timeout(240_000) });
    await assert.rejects(vm.connect(6000), (e: unknown) => e instanceof KrunError && e.code === "ENOENT");
    const exchange = (): Promise<string> =>
      vm.connect(5000).then((socket) =>
        new Promise<string>((resolve) => {
          let got = "";
          socket.on("data", (d) => got += String(d));
          socket.on("close", () => resolve(got));
          socket.on("error", () => {}); // a reset before the guest listens: "close" follows
          socket.end("ping");
        })
      );
    let reply = "";
    for (let i = 0; i < 200 && reply === ""; i++) {
      reply = await exchange().catch(() => "");
      if (reply === "") await sleep(500);
    }
    const [out, status] = await Promise.all([bytes(child.stdout), child.status]);
    server.close();
    const ctx = `reply=${JSON.stringify(reply)}\nguest: ${text(out)}`;
    check("vsock: the guest reached the host's unix listener; vm.connect() reached the guest's", () => {
      assert.match(text(out), /reply=echo:hello/);
      assert.equal(reply, "echo:ping");
      assert.deepEqual(status, { code: 0, success: true, reason: "exited" });
    }, ctx);
    await vm[Symbol.asyncDispose]();
    check("vsock: the default listen socket's temp dir is gone with the VM", () => {
      assert.deepEqual(readdirSync("/tmp").filter((n) => n.startsWith("zkrun-vsock-")), []);
    }, "");
    rmSync(dir, { recursive: true, force: true });
  },
  // The net option (tests/vm/69-ts-net.test.sh): a NIC on passt's end of a socketpair (the fd
  // in argv), configured by init's DHCP; the guest fetches a file from the test host's loopback
  // through passt's gateway and prints its checksum, which must be the host's.
  async "net"(): Promise<void> {
    const [fd, url, sum] = process.argv.slice(4);
    const vm = new Vm({
      root,
      memoryMiB: 256,
      exec: {
        path: "/bin/sh",
        args: [
          "-c",
          `echo "sum=$(wget -q -O - ${url} | sha256sum | cut -d' ' -f1)"; ip -4 addr show dev eth0`,
        ],
      },
      net: { unixstream: Number(fd), dhcp: true },
    });
    const result = await vm.run({ timeoutMs: 300_000 });
    await vm[Symbol.asyncDispose]();
    check("net: DHCP gave eth0 an address; the guest's wget through passt has the host's checksum", () => {
      assert.ok(lines(result).includes(`sum=${sum}`), `sum=${sum}`);
      assert.match(result.output, /inet 192\.0\.2\.1\/24/);
      assert.equal(result.status, 0);
    }, result.output);
  },
  // A guest that does not end: timeout stops it; disposing a running VM stops it too.
  async "stop"(): Promise<void> {
    {
      await using vm = sh("echo up; sleep 600");
      await assert.rejects(
        () => vm.run({ timeoutMs: 4000 }),
        (e: unknown) => e instanceof KrunError && e.code === "ETIMEDOUT" && e.op === "krun_wait",
      );
      check(
        "timeoutMs stops the guest and rejects with ETIMEDOUT",
        () => assert.equal(vm.state, "exited"),
        "",
      );
    }
    const vm = sh("sleep 600");
    const running = vm.run();
    await new Promise((r) => setTimeout(r, 2000));
    await vm[Symbol.asyncDispose]();
    const r = await running;
    check(`await using/asyncDispose stops a running guest (status ${r.status}, ${r.reason})`, () => {
      assert.equal(vm.state, "disposed");
      assert.deepEqual([r.status, r.reason], [137, "stopped"]);
    }, "");
  },
};

const names = (scenarioList ?? "").split(",");
if (names.some((name) => scenarios[name] === undefined)) {
  console.error(`usage: vm.ts <${Object.keys(scenarios).join("|")}>[,...] <rootfs>`);
  process.exit(2);
}
let failed = 0;
for (const name of names) {
  try {
    await scenarios[name]();
    console.log(`ok   ${runtime}: scenario ${name}`);
  } catch (err) {
    failed += 1;
    console.error(err);
    console.log(`FAIL ${runtime}: scenario ${name}`);
  }
}
// Not process.exit(): the process must still end by itself (nothing a scenario left running).
process.exitCode = failed === 0 ? 0 : 1;
