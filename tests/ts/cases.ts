/**
 * The TypeScript behaviour suite, shared by both runtimes: deno.test.ts and bun.test.ts only
 * register these cases with their runner. Native tier: the real libkrun.so.1, no guest boots
 * (VM runs live in tests/vm/6*.test.sh). Assertions via node:assert/strict, built into both.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import * as zkrun from "../../mod.ts";
import {
  Context,
  KrunError,
  KrunLibraryError,
  loadLibrary,
  maxVcpus,
  Vm,
  type VmOptions,
} from "../../mod.ts";
import { candidates, libraryNames, load } from "../../ffi/load.ts";
import { symbols } from "../../ffi/symbols.ts";

/** One named test. */
export interface Case {
  name: string;
  fn: () => void | Promise<void>;
}

const repo = fileURLToPath(new URL("../../", import.meta.url));
const scratch = mkdtempSync(join(process.env.TMPDIR ?? "/tmp", "zkrun-ts-"));
const root = join(scratch, "root");
const notADir = join(scratch, "file");
spawnSync("mkdir", ["-p", root]);
writeFileSync(notADir, "x");

// Hand-made 64-bit guests (raw "kernels", entered in long mode), which this machine's own
// /dev/kvm can run (Linux cannot boot on it): `ok` prints "OK\n" on COM1 and resets through
// the i8042 (exit status 0); `spin` loops forever.
const okGuest = join(scratch, "ok.bin");
const spinGuest = join(scratch, "spin.bin");
writeFileSync(
  okGuest,
  new Uint8Array([
    0x66,
    0xba,
    0xf8,
    0x03,
    0xb0,
    0x4f,
    0xee,
    0xb0,
    0x4b,
    0xee,
    0xb0,
    0x0a,
    0xee,
    0xb0,
    0xfe,
    0xe6,
    0x64,
    0xf4,
  ]),
);
writeFileSync(spinGuest, new Uint8Array([0xeb, 0xfe])); // jmp $

function tiny(kernel: string): Vm {
  return new Vm({
    root,
    memoryMiB: 32,
    exec: { path: "/bin/true" },
    kernel: { path: kernel, format: "raw", cmdline: "console=ttyS0" },
  });
}

function throwsKrun(fn: () => unknown, code: string, op: string, text?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof KrunError, `expected a KrunError, got ${err}`);
    assert.equal(err.code, code, err.message);
    assert.equal(err.op, op, err.message);
    if (text) assert.match(err.message, text);
    return true;
  });
}

function vmOptions(overrides: Record<string, unknown> = {}): VmOptions {
  return { root, exec: { path: "/bin/true" }, ...overrides } as VmOptions;
}

function exec(over: Record<string, unknown>): VmOptions {
  return vmOptions({ exec: { path: "/bin/sh", args: ["-c", "true"], ...over } });
}

/** The cases, in order: the first must run before anything loads the library. */
export const cases: Case[] = [
  {
    name: "a library that is not there: KrunLibraryError naming what was tried",
    fn: () => {
      const missing = join(scratch, "no", "libkrun.so.1");
      assert.throws(() => loadLibrary(missing), (err: unknown) => {
        assert.ok(err instanceof KrunLibraryError);
        assert.deepEqual(err.tried.length, 1);
        assert.match(err.message, /cannot load libkrun\.so\.1; tried .*no\/libkrun\.so\.1/);
        assert.match(err.message, /LIBKRUN_PATH/);
        return true;
      });
    },
  },
  {
    name: "search order: LIBKRUN_PATH alone when set, else zig-out/lib, then the system's (as a path)",
    fn: () => {
      const saved = [process.env.LIBKRUN_PATH, process.env.LD_LIBRARY_PATH];
      try {
        delete process.env.LIBKRUN_PATH;
        const [local, system] = candidates();
        assert.equal(local, join(repo, "zig-out/lib/libkrun.so.1"));
        assert.match(system, /(^|\/)libkrun\.so\.1$/);
        // Deno's dlopen never searches sonames: a libkrun.so.1 on LD_LIBRARY_PATH is found here.
        const dir = join(scratch, "ldpath");
        spawnSync("mkdir", ["-p", dir]);
        writeFileSync(join(dir, "libkrun.so.1"), "");
        process.env.LD_LIBRARY_PATH = `/nonexistent:${dir}`;
        assert.deepEqual(candidates(), [local, join(dir, "libkrun.so.1")]);
        process.env.LIBKRUN_PATH = "/opt/x/libkrun.so.1";
        assert.deepEqual(candidates(), ["/opt/x/libkrun.so.1"]);
      } finally {
        for (const [name, value] of [["LIBKRUN_PATH", saved[0]], ["LD_LIBRARY_PATH", saved[1]]] as const) {
          if (value === undefined) delete process.env[name];
          else process.env[name] = value;
        }
      }
    },
  },
  {
    name: "on macOS the default names are libkrun.1.dylib and libkrunfw.5.dylib; LIBKRUN_PATH still wins",
    fn: () => {
      const saved = [process.env.LIBKRUN_PATH, process.env.DYLD_LIBRARY_PATH];
      try {
        delete process.env.LIBKRUN_PATH;
        const mac = libraryNames("darwin");
        assert.deepEqual([mac.libkrun, mac.libkrunfw], ["libkrun.1.dylib", "libkrunfw.5.dylib"]);
        assert.deepEqual([libraryNames("linux").libkrun, libraryNames("linux").libkrunfw], [
          "libkrun.so.1",
          "libkrunfw.so.5",
        ]);
        const dir = join(scratch, "dyldpath");
        spawnSync("mkdir", ["-p", dir]);
        writeFileSync(join(dir, "libkrun.1.dylib"), "");
        process.env.DYLD_LIBRARY_PATH = dir;
        assert.deepEqual(candidates("darwin"), [
          join(repo, "zig-out/lib/libkrun.1.dylib"),
          join(dir, "libkrun.1.dylib"),
        ]);
        process.env.LIBKRUN_PATH = "/opt/x/libkrun.1.dylib";
        assert.deepEqual(candidates("darwin"), ["/opt/x/libkrun.1.dylib"]);
      } finally {
        for (const [name, value] of [["LIBKRUN_PATH", saved[0]], ["DYLD_LIBRARY_PATH", saved[1]]] as const) {
          if (value === undefined) delete process.env[name];
          else process.env[name] = value;
        }
      }
    },
  },
  {
    name: "the library loads with every symbol of the table (dlopen fails on any missing one)",
    fn: () => {
      const info = loadLibrary();
      assert.match(info.path, /libkrun\.so\.1$/);
      assert.ok(info.runtime === "deno" || info.runtime === "bun");
      assert.equal(Object.keys(symbols).length, 81); // 74 libkrun 1.x + 7 zkrun extensions
      // libkrunfw.so.5 beside it is loaded too, so a VM can start without LD_LIBRARY_PATH.
      const beside = join(dirname(info.path), "libkrunfw.so.5");
      if (info.path.includes("/") && existsSync(beside)) assert.equal(info.firmware, beside);
      assert.ok(maxVcpus() >= 1);
    },
  },
  {
    name: "the adapter hands C strings, NULL-terminated string arrays, u8 and u64 intact",
    fn: () => {
      const native = load();
      const c = native.call;
      const str = (s: string): Uint8Array<ArrayBuffer> => {
        const b = new Uint8Array(new ArrayBuffer(s.length * 3 + 1));
        new TextEncoder().encodeInto(s, b);
        return b;
      };
      const strv = (list: string[]): [BigUint64Array<ArrayBuffer>, Uint8Array[]] => {
        const keep = list.map(str);
        const arr = new BigUint64Array(new ArrayBuffer(8 * (list.length + 1)));
        keep.forEach((b, i) => arr[i] = native.address(b));
        return [arr, keep];
      };
      const ctx = c.krun_create_ctx();
      assert.ok(ctx >= 0);
      try {
        assert.equal(c.krun_set_vm_config(ctx, 2, 512), 0);
        const [good, k1] = strv(["7=1024:4096", "6=1:2"]);
        assert.equal(c.krun_set_rlimits(ctx, good), 0, String(k1.length));
        // The library parses the second entry: the array and its terminator arrive intact.
        const [bad, k2] = strv(["7=1024:4096", "16=1:2"]);
        assert.equal(c.krun_set_rlimits(ctx, bad), -22, String(k2.length));
        const out = str(join(scratch, "console"));
        assert.equal(c.krun_set_console_output(ctx, out), 0);
        assert.equal(c.krun_set_console_output(ctx, out), -17); // EEXIST: one call per context
        assert.ok([0, 1].includes(c.krun_has_feature(11n))); // KRUN_FEATURE_INIT_BLOB, a u64
        assert.equal(c.krun_has_feature(1n << 40n), -22);
      } finally {
        assert.equal(c.krun_free_ctx(ctx), 0);
      }
    },
  },
  {
    name: "KrunError is an Error with errno, code and op",
    fn: () => {
      const err = new KrunError("krun_set_vm_config", 22, "cpus");
      assert.ok(err instanceof Error);
      assert.equal(err.name, "KrunError");
      assert.equal(err.errno, 22);
      assert.equal(err.code, "EINVAL");
      assert.equal(err.op, "krun_set_vm_config");
      assert.equal(err.message, "krun_set_vm_config: EINVAL (invalid argument): cpus");
    },
  },
  {
    name: "a failed call's reason from the library (krun_last_error) is in KrunError.message",
    fn: () => {
      using ctx = new Context();
      throwsKrun(
        () => ctx.wait(0),
        "EINVAL",
        "krun_wait",
        new RegExp(
          `^krun_wait: EINVAL \\(invalid argument\\): context ${ctx.id} has not been started \\(krun_start\\)$`,
        ),
      );
      throwsKrun(() => ctx.exitReason(), "EINVAL", "krun_get_exit_reason", /has not been started/);
    },
  },
  {
    name: "create, configure with every setter, free (twice is fine)",
    fn: () => {
      const ctx = new Context();
      assert.ok(ctx.id >= 0);
      ctx.setVmConfig(2, 512);
      ctx.setRoot(root);
      ctx.setWorkdir("/");
      ctx.setExec("/bin/sh", ["-c", "echo 'a b' \"c\" ünï €"], { A: "1", EMPTY: "" });
      ctx.setEnv({ B: "2" });
      ctx.setRlimits({ NOFILE: [1024, 4096], CORE: [0, "unlimited"], STACK: [8n << 20n, Infinity] });
      ctx.free();
      ctx.free();
    },
  },
  {
    name: "Vm: configured by the constructor, disposed by using",
    fn: async () => {
      let kept: Vm;
      {
        using vm = new Vm(
          vmOptions({
            cpus: 2,
            memoryMiB: 512,
            workdir: "/",
            rlimits: { NOFILE: [1024, 4096] },
            exec: { path: "/bin/sh", args: ["-c", "echo hi; exit 3"], env: { A: "1" } },
          }),
        );
        kept = vm;
        assert.equal(vm.state, "ready");
      }
      assert.equal(kept.state, "disposed");
      await assert.rejects(() => kept.run(), /disposed/);
      assert.throws(() => kept.startEnter(), /disposed/);
    },
  },
  {
    name: "Vm: await using disposes too",
    fn: async () => {
      let kept: Vm;
      {
        await using vm = new Vm(vmOptions());
        kept = vm;
      }
      assert.equal(kept.state, "disposed");
    },
  },
  {
    name: "bad context id: ENOENT from the library",
    fn: () => {
      const ghost = Context.fromId(0x7fff_0000);
      throwsKrun(() => ghost.setVmConfig(1, 128), "ENOENT", "krun_set_vm_config");
      throwsKrun(() => ghost.setWorkdir("/"), "ENOENT", "krun_set_workdir");
      throwsKrun(() => ghost.free(), "ENOENT", "krun_free_ctx");
    },
  },
  {
    name: "a freed context is refused before C",
    fn: () => {
      const ctx = new Context();
      ctx.free();
      throwsKrun(() => ctx.setVmConfig(1, 128), "ENOENT", "krun_set_vm_config", /already freed/);
    },
  },
  {
    name: "cpus: 0, 256, 1.5, '2' are EINVAL",
    fn: () => {
      for (const cpus of [0, 256, 1.5, "2", -1, NaN]) {
        throwsKrun(() => new Vm(vmOptions({ cpus })), "EINVAL", "krun_set_vm_config", /cpus/);
      }
    },
  },
  {
    name: "memory: 0 and more than 2^32-1 MiB are EINVAL",
    fn: () => {
      for (const memoryMiB of [0, 2 ** 32, 2 ** 53, Infinity]) {
        throwsKrun(() => new Vm(vmOptions({ memoryMiB })), "EINVAL", "krun_set_vm_config", /memoryMiB/);
      }
    },
  },
  {
    name: "root: missing is ENOENT, a file is ENOTDIR, not a string is EINVAL",
    fn: () => {
      throwsKrun(() => new Vm(vmOptions({ root: join(scratch, "absent") })), "ENOENT", "krun_set_root");
      throwsKrun(() => new Vm(vmOptions({ root: notADir })), "ENOTDIR", "krun_set_root");
      throwsKrun(() => new Vm(vmOptions({ root: 42 })), "EINVAL", "krun_set_root");
    },
  },
  {
    name: "a NUL byte in any string is EINVAL",
    fn: () => {
      throwsKrun(() => new Vm(vmOptions({ root: root + "\0x" })), "EINVAL", "krun_set_root", /NUL/);
      throwsKrun(() => new Vm(vmOptions({ workdir: "/\0" })), "EINVAL", "krun_set_workdir", /NUL/);
      throwsKrun(() => new Vm(exec({ path: "/bin/sh\0" })), "EINVAL", "krun_set_exec", /exec path.*NUL/);
      throwsKrun(() => new Vm(exec({ args: ["ok", "b\0d"] })), "EINVAL", "krun_set_exec", /args\[1\].*NUL/);
      throwsKrun(() => new Vm(exec({ env: { A: "x\0y" } })), "EINVAL", "krun_set_exec", /NUL/);
      throwsKrun(() => new Vm(exec({ env: { "A\0B": "x" } })), "EINVAL", "krun_set_exec", /NUL/);
    },
  },
  {
    name: "args that are not an array of strings are EINVAL",
    fn: () => {
      throwsKrun(() => new Vm(exec({ args: "-c true" })), "EINVAL", "krun_set_exec", /args must be an array/);
      throwsKrun(() => new Vm(exec({ args: ["-c", 7] })), "EINVAL", "krun_set_exec", /args\[1\]/);
      throwsKrun(() => new Vm(exec({ args: null })), "EINVAL", "krun_set_exec", /array/);
    },
  },
  {
    name: "env: names with '=' or empty, non-string values, arrays are EINVAL; 'inherit' is NULL envp",
    fn: () => {
      throwsKrun(() => new Vm(exec({ env: { "A=B": "1" } })), "EINVAL", "krun_set_exec", /=/);
      throwsKrun(() => new Vm(exec({ env: { "": "1" } })), "EINVAL", "krun_set_exec");
      throwsKrun(() => new Vm(exec({ env: { A: 1 } })), "EINVAL", "krun_set_exec", /env A/);
      throwsKrun(() => new Vm(exec({ env: ["A=1"] })), "EINVAL", "krun_set_exec", /env must be/);
      using _vm = new Vm(exec({ env: "inherit" }));
    },
  },
  {
    name: "a lone surrogate (not encodable as UTF-8) is EINVAL",
    fn: () => throwsKrun(() => new Vm(exec({ args: ["\ud800"] })), "EINVAL", "krun_set_exec", /Unicode/),
  },
  {
    name: "too many args is E2BIG",
    fn: () => throwsKrun(() => new Vm(exec({ args: new Array(5000).fill("x") })), "E2BIG", "krun_set_exec"),
  },
  {
    name: "rlimits: unknown names, soft above hard, negatives are EINVAL",
    fn: () => {
      const op = "krun_set_rlimits";
      throwsKrun(() => new Vm(vmOptions({ rlimits: { NOFILES: [1, 2] } })), "EINVAL", op, /unknown rlimit/);
      throwsKrun(() => new Vm(vmOptions({ rlimits: { NOFILE: [10, 2] } })), "EINVAL", op, /exceeds/);
      throwsKrun(() => new Vm(vmOptions({ rlimits: { NOFILE: [-1, 2] } })), "EINVAL", op);
      throwsKrun(() => new Vm(vmOptions({ rlimits: { NOFILE: [1] } })), "EINVAL", op, /\[soft, hard\]/);
      throwsKrun(() => new Vm(vmOptions({ rlimits: { NOFILE: [1, 2 ** 64] } })), "EINVAL", op);
    },
  },
  {
    name: "ports: out of range or repeated ports are EINVAL (Context.setPortMap and Vm's option)",
    fn: () => {
      const op = "krun_set_port_map";
      using ctx = new Context();
      throwsKrun(() => ctx.setPortMap({ 0: 80 }), "EINVAL", op, /host port/);
      throwsKrun(() => ctx.setPortMap({ 8080: 70000 }), "EINVAL", op, /guest port/);
      throwsKrun(() => ctx.setPortMap({ 8080: 80, 8081: 80 }), "EINVAL", op, /guest port 80 is mapped twice/);
      throwsKrun(
        () => ctx.setPortMap({ 8080: 80, "08080": 81 } as never),
        "EINVAL",
        op,
        /host port 8080 is mapped twice/,
      );
      throwsKrun(() => ctx.setPortMap([80] as never), "EINVAL", op, /like \{ 8080: 80 \}/);
      throwsKrun(() => ctx.setPortMap({ 8080: "80" } as never), "EINVAL", op, /guest port/);
      ctx.setPortMap({ 8080: 80, 8443: 443 });
      // The library's own reason comes through: no vsock device, no TSI to forward with.
      using bare = new Context();
      bare.disableImplicitVsock();
      throwsKrun(() => bare.setPortMap({ 8080: 80 }), "ENODEV", op, /vsock/);
      // The Vm option is the same call: accepted, and refused with the same errors.
      new Vm(vmOptions({ ports: { 8080: 80 } }))[Symbol.dispose]();
      new Vm(vmOptions({ ports: {} }))[Symbol.dispose]();
      throwsKrun(() => new Vm(vmOptions({ ports: { 8080: 80, 8081: 80 } })), "EINVAL", op, /twice/);
      throwsKrun(() => new Vm(vmOptions({ ports: { 65536: 80 } })), "EINVAL", op, /host port/);
      throwsKrun(() => new Vm(vmOptions({ ports: "8080:80" })), "EINVAL", op, /ports must be an object/);
    },
  },
  {
    name: "net: one backend, known keys, a MAC, a boolean dhcp, no ports beside it: else EINVAL before C",
    fn: () => {
      const sock = "/tmp/zkrun-no-such-passt.sock"; // connected at start only: none here
      new Vm(vmOptions({ net: { unixstream: sock, mac: "02:00:00:00:00:01", dhcp: true } }))
        [Symbol.dispose]();
      new Vm(vmOptions({ net: { unixgram: sock } }))[Symbol.dispose]();
      const vm = "new Vm";
      throwsKrun(
        () => new Vm(vmOptions({ net: { unixstream: sock, speed: 1 } })),
        "EINVAL",
        vm,
        /net\.speed/,
      );
      throwsKrun(() => new Vm(vmOptions({ net: {} })), "EINVAL", vm, /exactly one of unixstream/);
      throwsKrun(
        () => new Vm(vmOptions({ net: { unixstream: sock, tap: "tap0" } })),
        "EINVAL",
        vm,
        /exactly one/,
      );
      throwsKrun(() => new Vm(vmOptions({ net: "passt" })), "EINVAL", vm, /net must be an object/);
      throwsKrun(() => new Vm(vmOptions({ net: { unixstream: sock, dhcp: "yes" } })), "EINVAL", vm, /dhcp/);
      throwsKrun(() => new Vm(vmOptions({ net: { unixstream: -2 } })), "EINVAL", vm, /path or an fd/);
      throwsKrun(
        () => new Vm(vmOptions({ net: { unixstream: sock }, ports: { 8080: 80 } })),
        "EINVAL",
        vm,
        /TSI is off/,
      );
      const op = "krun_add_net_unixstream";
      throwsKrun(
        () => new Vm(vmOptions({ net: { unixstream: sock, mac: "5a:94:ef:e4:0c" } })),
        "EINVAL",
        op,
        /mac/,
      );
      throwsKrun(
        () => new Vm(vmOptions({ net: { unixstream: sock, mac: new Uint8Array(5) } })),
        "EINVAL",
        op,
        /mac/,
      );
      throwsKrun(() => new Vm(vmOptions({ net: { unixstream: 1.5 } })), "EINVAL", op, /fd/);
      throwsKrun(
        () => new Vm(vmOptions({ net: { unixgram: { path: sock } } })),
        "EINVAL",
        "krun_add_net_unixgram",
      );
      throwsKrun(
        () => new Vm(vmOptions({ net: { tap: "tap0", mac: "zz:94:ef:e4:0c:ee" } })),
        "EINVAL",
        "krun_add_net_tap",
      );
    },
  },
  {
    name: "volumes and disks: bad shapes are refused before C; a missing disk is the library's error",
    fn: () => {
      const vol = (v: unknown, env: unknown = {}): VmOptions =>
        vmOptions({ volumes: v, exec: { path: "/bin/true", env } });
      throwsKrun(() => new Vm(vol([{ host: root, guest: "relative" }])), "EINVAL", "new Vm", /absolute path/);
      throwsKrun(() => new Vm(vol([{ host: root, guest: "/a:b" }])), "EINVAL", "new Vm", /absolute path/);
      throwsKrun(
        () => new Vm(vol([{ host: root, guest: "/a", ro: true }])),
        "EINVAL",
        "new Vm",
        /unknown option/,
      );
      throwsKrun(() => new Vm(vol({})), "EINVAL", "new Vm", /array/);
      throwsKrun(() => new Vm(vol([{ host: root, guest: "/a" }], "inherit")), "EINVAL", "new Vm", /inherit/);
      const nine = Array.from({ length: 9 }, (_, i) => ({ host: root, guest: `/v${i}` }));
      throwsKrun(() => new Vm(vol(nine)), "E2BIG", "new Vm", /at most 8/);
      throwsKrun(
        () => new Vm(vol([{ host: join(root, "nope"), guest: "/a" }])),
        "ENOENT",
        "krun_add_virtiofs3",
      );
      {
        using _ok = new Vm(vol([{ host: root, guest: "/data", readOnly: true }]));
      }
      const disk = (d: unknown): VmOptions => vmOptions({ disks: d });
      throwsKrun(
        () => new Vm(disk([{ id: "d", path: notADir, format: "ext4" }])),
        "EINVAL",
        "krun_add_disk2",
        /format/,
      );
      throwsKrun(
        () => new Vm(disk([{ id: "d", path: join(scratch, "nope.img") }])),
        "ENOENT",
        "krun_add_disk2",
      );
    },
  },
  {
    name: "unknown option keys (typos) are EINVAL",
    fn: () => {
      throwsKrun(() => new Vm(vmOptions({ memoryMb: 512 })), "EINVAL", "new Vm", /options\.memoryMb/);
      throwsKrun(() => new Vm(exec({ argv: [] })), "EINVAL", "new Vm", /options\.exec\.argv/);
      throwsKrun(() => new Vm(undefined as unknown as VmOptions), "EINVAL", "new Vm");
    },
  },
  {
    name: "run() options are checked before the VM starts",
    fn: async () => {
      using vm = new Vm(vmOptions());
      await assert.rejects(
        () => vm.run({ output: "file" as "capture" }),
        (e: unknown) => e instanceof KrunError && e.code === "EINVAL",
      );
      await assert.rejects(() => vm.run({ timeoutMs: -5 }), (e: unknown) => e instanceof KrunError);
      assert.equal(vm.state, "ready");
    },
  },
  {
    name: "kernel option: bad format is EINVAL before C, a missing file is ENOENT from C",
    fn: () => {
      throwsKrun(
        () => new Vm(vmOptions({ kernel: { path: okGuest, format: "bzImage" } })),
        "EINVAL",
        "krun_set_kernel",
        /format/,
      );
      throwsKrun(
        () => new Vm(vmOptions({ kernel: { path: join(scratch, "nope") } })),
        "ENOENT",
        "krun_set_kernel",
      );
    },
  },
  {
    name: "run() (tiny guest on real KVM): status 0 and the COM1 output, captured",
    fn: async () => {
      await using vm = tiny(okGuest);
      const r = await vm.run();
      assert.equal(r.status, 0);
      assert.equal(r.output, "OK\n");
      assert.deepEqual([...r.outputBytes], [0x4f, 0x4b, 0x0a]);
      assert.equal(vm.state, "exited");
      await assert.rejects(() => vm.run(), /runs once/);
    },
  },
  {
    name: "run() keeps the event loop free: timers fire and a second VM finishes while one spins",
    fn: async () => {
      await using spinning = tiny(spinGuest);
      const spin = spinning.run({ timeoutMs: 1500 }).catch((e: unknown) => e);
      let ticks = 0;
      const timer = setInterval(() => ticks++, 10);
      await new Promise((r) => setTimeout(r, 200));
      await using quick = tiny(okGuest);
      const r = await quick.run();
      clearInterval(timer);
      assert.equal(r.output, "OK\n");
      assert.equal(spinning.state, "running");
      assert.ok(ticks >= 5, `only ${ticks} timer ticks while a VM ran`);
      const err = await spin;
      assert.ok(err instanceof KrunError && err.code === "ETIMEDOUT" && err.op === "krun_wait", String(err));
    },
  },
  {
    name: "two VMs at once: Promise.all of two runs",
    fn: async () => {
      await using a = tiny(okGuest);
      await using b = tiny(okGuest);
      const [ra, rb] = await Promise.all([a.run(), b.run()]);
      assert.deepEqual([ra.status, ra.output, rb.status, rb.output], [0, "OK\n", 0, "OK\n"]);
    },
  },
  {
    name: "timeoutMs stops a guest that never ends: ETIMEDOUT",
    fn: async () => {
      await using vm = tiny(spinGuest);
      const t0 = performance.now();
      await assert.rejects(
        () => vm.run({ timeoutMs: 300 }),
        (e: unknown) => e instanceof KrunError && e.code === "ETIMEDOUT",
      );
      assert.ok(performance.now() - t0 < 10_000);
      assert.equal(vm.state, "exited");
    },
  },
  {
    name: "disposing a running VM stops it: await using waits, using frees once the wait ends",
    fn: async () => {
      const vm = tiny(spinGuest);
      const running = vm.run();
      await new Promise((r) => setTimeout(r, 100));
      await vm[Symbol.asyncDispose]();
      assert.equal(vm.state, "disposed");
      await running; // resolved by the stop
      const vm2 = tiny(spinGuest);
      const id = vm2.ctxId;
      const running2 = vm2.run();
      await new Promise((r) => setTimeout(r, 100));
      vm2[Symbol.dispose]();
      await running2;
      await new Promise((r) => setTimeout(r, 10));
      throwsKrun(() => Context.fromId(id).free(), "ENOENT", "krun_free_ctx"); // freed after the wait
    },
  },
  {
    name: "Context: wait before start is EINVAL, wait(0) polls, start twice is EBUSY, stop ends it",
    fn: async () => {
      using ctx = new Context();
      ctx.setVmConfig(1, 32);
      ctx.setKernel(spinGuest, "raw", undefined, "console=ttyS0");
      throwsKrun(() => ctx.wait(0), "EINVAL", "krun_wait");
      ctx.start();
      throwsKrun(() => ctx.start(), "EBUSY", "krun_start");
      assert.equal(ctx.wait(0), null);
      assert.equal(ctx.wait(50), null);
      ctx.stop();
      const status = await ctx.waitAsync();
      assert.ok(status >= 0);
      ctx.stop(); // stopping an ended VM does nothing
    },
  },
  {
    name: "Context.wait(0) (krun_wait, timeout 0: 'only polls') returns the status of a guest that ended",
    fn: async () => {
      using ctx = new Context();
      ctx.setVmConfig(1, 32);
      ctx.setKernel(okGuest, "raw", undefined, "console=ttyS0");
      ctx.setConsoleOutput(join(scratch, "poll.out"));
      ctx.start();
      const t0 = performance.now();
      let status: number | null = null;
      while (status === null && performance.now() - t0 < 3000) {
        await new Promise((r) => setTimeout(r, 20));
        status = ctx.wait(0);
      }
      assert.equal(status, 0, "krun_wait(ctx, 0) never reported the ended guest within 3 s");
    },
  },
  {
    name: "every exported krun_* function has a wrapper that reaches it with the table's arguments",
    fn: () => {
      const mac = "5a:94:ef:e4:0c:ee";
      const sock = join(scratch, "none.sock");
      // One call per symbol on a fresh context: it must succeed or fail with a KrunError naming
      // that very function (never a TypeError from a wrong argument count or kind).
      const calls: Record<string, (c: Context) => unknown> = {
        krun_set_vm_config: (c) => c.setVmConfig(1, 64),
        krun_set_root: (c) => c.setRoot(root),
        krun_set_data_disk: (c) => c.setDataDisk(notADir),
        krun_set_root_disk: (c) => c.setRootDisk(notADir),
        krun_add_disk: (c) => c.addDisk("d", notADir, true),
        krun_add_disk2: (c) => c.addDisk2("d", notADir, "raw", true),
        krun_add_disk3: (c) => c.addDisk3("d", notADir, "qcow2", true, false, "full"),
        krun_set_mapped_volumes: (c) => c.setMappedVolumes([]),
        krun_add_virtiofs: (c) => c.addVirtiofs("t", root),
        krun_add_virtiofs2: (c) => c.addVirtiofs2("t", root, 0),
        krun_add_virtiofs3: (c) => c.addVirtiofs3("t", root, 0n, true),
        krun_add_net_unixstream: (c) => c.addNetUnixstream(sock, -1, mac),
        krun_add_net_unixgram: (c) => c.addNetUnixgram(sock, -1, mac, 0, 0),
        krun_add_net_tap: (c) => c.addNetTap("tap0", mac),
        krun_set_passt_fd: (c) => c.setPasstFd(0),
        krun_set_gvproxy_path: (c) => c.setGvproxyPath(sock),
        krun_set_net_mac: (c) => c.setNetMac(new Uint8Array([0x5a, 1, 2, 3, 4, 5])),
        krun_set_port_map: (c) => c.setPortMap({}),
        krun_set_gpu_options: (c) => c.setGpuOptions(0),
        krun_set_gpu_options2: (c) => c.setGpuOptions2(0, 1n << 32n),
        krun_add_display: (c) => c.addDisplay(640, 480),
        krun_display_set_edid: (c) => c.displaySetEdid(0, new Uint8Array(128)),
        krun_display_set_dpi: (c) => c.displaySetDpi(0, 96),
        krun_display_set_physical_size: (c) => c.displaySetPhysicalSize(0, 300, 200),
        krun_display_set_edid_name: (c) => c.displaySetEdidName(0, "zkrun"),
        krun_display_set_refresh_rate: (c) => c.displaySetRefreshRate(0, 60),
        krun_set_display_backend: (c) => c.setDisplayBackend(new Uint8Array(16)),
        krun_add_input_device: (c) => c.addInputDevice(new Uint8Array(16), new Uint8Array(16)),
        krun_add_input_device_fd: (c) => c.addInputDeviceFd(0),
        krun_add_vhost_user_device: (c) => c.addVhostUserDevice(4, sock, "rng", [256]),
        krun_set_rlimits: (c) => c.setRlimits({ NOFILE: [1024, 4096] }),
        krun_set_smbios_oem_strings: (c) => c.setSmbiosOemStrings([]),
        krun_set_workdir: (c) => c.setWorkdir("/"),
        krun_set_exec: (c) => c.setExec("/bin/true", ["x"], { A: "1" }),
        krun_set_firmware: (c) => c.setFirmware(notADir),
        krun_set_kernel: (c) => c.setKernel(okGuest, "raw", undefined, "console=ttyS0"),
        krun_set_env: (c) => c.setEnv({ A: "1" }),
        krun_set_tee_config_file: (c) => c.setTeeConfigFile(notADir),
        krun_set_tee_firmware: (c) => c.setTeeFirmware(0, notADir),
        krun_set_snd_device: (c) => c.setSndDevice(false),
        krun_add_vfio_device: (c) => c.addVfioDevice(0, 0, 0),
        krun_add_vsock_port: (c) => c.addVsockPort(1024, sock),
        krun_add_vsock_port2: (c) => c.addVsockPort2(1025, sock, true),
        krun_add_vsock: (c) => c.addVsock(0),
        krun_get_shutdown_eventfd: (c) => c.getShutdownEventfd(),
        krun_set_console_output: (c) => c.setConsoleOutput(join(scratch, "cover.out")),
        krun_setuid: (c) => c.setuid(0),
        krun_setgid: (c) => c.setgid(0),
        krun_set_nested_virt: (c) => c.setNestedVirt(false),
        krun_split_irqchip: (c) => c.splitIrqchip(false),
        krun_disable_implicit_console: (c) => c.disableImplicitConsole(),
        krun_disable_implicit_init: (c) => c.disableImplicitInit(),
        krun_fs_add_overlay_file: (c) => c.fsAddOverlayFile("/dev/root", "/x", new Uint8Array([1, 2])),
        krun_fs_add_overlay_dir: (c) => c.fsAddOverlayDir("/dev/root", "/d"),
        krun_disable_implicit_vsock: (c) => c.disableImplicitVsock(),
        krun_append_kernel_cmdline: (c) => c.appendKernelCmdline("quiet"),
        krun_set_kernel_console: (c) => c.setKernelConsole("hvc0"),
        krun_add_virtio_console_default: (c) => c.addVirtioConsoleDefault(0, 1, 2),
        krun_add_serial_console_default: (c) => c.addSerialConsoleDefault(0, 1),
        krun_add_virtio_console_multiport: (c) => c.addVirtioConsoleMultiport(),
        krun_add_console_port_tty: (c) => c.addConsolePortTty(0, "tty", 0),
        krun_add_console_port_inout: (c) => c.addConsolePortInout(0, "data", 0, 1),
        krun_set_root_disk_remount: (c) => c.setRootDiskRemount("/dev/vda", "ext4", "rw"),
        krun_start: (c) => c.start(),
        krun_wait: (c) => c.wait(0),
        krun_vm_pause: (c) => c.pause(),
        krun_vm_resume: (c) => c.resume(),
        krun_stop: (c) => c.stop(),
        krun_get_exit_reason: (c) => c.exitReason(),
        krun_set_console_size: (c) => c.setConsoleSize(80, 24),
        krun_get_stats: (c) => c.stats(),
        krun_free_ctx: (c) => c.free(),
        krun_create_ctx: () => new Context().free(),
        krun_set_log_level: () => zkrun.setLogLevel(1),
        krun_get_max_vcpus: () => zkrun.maxVcpus(),
        krun_has_feature: () => assert.equal(zkrun.hasFeature("init_blob"), true),
        krun_check_nested_virt: () => zkrun.checkNestedVirt(),
        krun_get_default_init: () =>
          assert.deepEqual([...zkrun.getDefaultInit().subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46]),
      };
      // Wrapped, but not called here: they end or reconfigure this process.
      const notCalled: Record<string, () => unknown> = {
        krun_start_enter: () => Context.prototype.startEnter,
        krun_init_log: () => zkrun.initLog,
        krun_last_error: () => KrunError, // its text is every KrunError's message (tested above)
      };
      const missing = Object.keys(symbols).filter((n) => !(n in calls) && !(n in notCalled));
      assert.deepEqual(missing, [], `krun_* functions without a wrapper: ${missing.join(", ")}`);
      for (const name of Object.keys(notCalled)) assert.equal(typeof notCalled[name](), "function", name);
      for (const [name, call] of Object.entries(calls)) {
        assert.ok(name in symbols, `${name} is not in ffi/symbols.ts`);
        const ctx = new Context();
        try {
          call(ctx);
        } catch (err) {
          assert.ok(err instanceof KrunError, `${name}: ${err}`);
          assert.equal(err.op, name, `${name} reached ${err.op}: ${err.message}`);
        } finally {
          ctx.free();
        }
      }
    },
  },
  {
    name: "Errno is literal-typed and frozen; KrunError.code is its name",
    fn: () => {
      // Compile-time: deno check fails here if Errno's values were plain `number`s.
      const einval: 22 = zkrun.Errno.EINVAL;
      const code: zkrun.ErrnoCode = "ENOBUFS";
      assert.equal(einval, 22);
      assert.equal(zkrun.Errno[code], 105);
      assert.ok(Object.isFrozen(zkrun.Errno));
      assert.equal(new KrunError("x", zkrun.Errno.ENOTSUP).code, "ENOTSUP");
      assert.equal(zkrun.errnoCode(4095), "E4095");
    },
  },
  {
    name:
      "the adapter's pipe streams: 5 MiB byte-exact through a pipe (writer to reader, with read-ahead), end of file",
    fn: async () => {
      const io = load().io;
      const [r, w] = io.pipe();
      const input = new Uint8Array(5 * 1024 * 1024 + 3);
      for (let i = 0; i < input.length; i++) input[i] = (i * 31 + (i >> 12)) & 0xff;
      const readable = io.readable(r, 64 * 1024, 256 * 1024);
      const writer = io.writable(w).getWriter();
      const writing = (async (): Promise<void> => {
        for (let at = 0; at < input.length; at += 300_000) await writer.write(input.slice(at, at + 300_000));
        await writer.close();
      })();
      const [out] = await Promise.all([new Response(readable).arrayBuffer(), writing]);
      const got = new Uint8Array(out);
      assert.equal(got.length, input.length);
      assert.ok(got.every((b, i) => b === input[i]), "bytes differ");
    },
  },
  {
    name: "many contexts: create and free 200 in a row",
    fn: () => {
      for (let i = 0; i < 200; i++) new Context().free();
    },
  },
  {
    name: "cleanup",
    fn: () => rmSync(scratch, { recursive: true, force: true }),
  },
];
