/**
 * `ContextBase`: the first layer of `Context` (context.ts), which owns the C context: its id,
 * creation, `free()` and the GC safety net. Exports to the other layers, and to nothing else,
 * `live()` (the library and the id, ENOENT once freed), `markStarted()`, `adopt()` for
 * `Context.fromId`, and the checked calls shared by setters of one C shape.
 *
 * The chain, each layer in its own file: `ContextBase` → `ContextStorage` (context_storage.ts)
 * → `ContextNetwork` (context_network.ts) → `ContextDevices` (context_devices.ts) → `Context`.
 *
 * @module
 */
import { Errno, KrunError } from "../ffi/errors.ts";
import { load } from "../ffi/load.ts";
import type { Native } from "../ffi/symbols.ts";
import { bool } from "./context_args.ts";
import { check, cString, cStringArray, u32Max, uint } from "./util.ts";

type PathOp =
  | "krun_set_data_disk"
  | "krun_set_root_disk"
  | "krun_set_gvproxy_path"
  | "krun_set_firmware"
  | "krun_set_tee_config_file"
  | "krun_append_kernel_cmdline"
  | "krun_set_kernel_console";
type U32Op =
  | "krun_set_passt_fd"
  | "krun_set_gpu_options"
  | "krun_add_input_device_fd"
  | "krun_add_vsock"
  | "krun_setuid"
  | "krun_setgid";
type BoolOp = "krun_set_snd_device" | "krun_set_nested_virt" | "krun_split_irqchip";

/** A context's C side: the library it lives in, its id, and where it is in its life. */
interface Handle {
  readonly native: Native;
  readonly id: number;
  freed: boolean;
  /** Started (krun_start / krun_start_enter): the library may have consumed the context. */
  started: boolean;
}

// Set for the duration of Context.fromId's constructor call only.
let adopting: number | null = null;

// A safety net only: a Context dropped without free()/dispose frees its C context when
// collected (stopping its VM), instead of leaking it for the life of the process.
const leaked = new FinalizationRegistry<{ native: Native; id: number }>(({ native, id }) => {
  native.call.krun_free_ctx(id);
});

// Reads a context's private handle; set by ContextBase's static block, for the layers above.
let handleOf: (context: ContextBase) => Handle;

/**
 * The C context under `Context`: its id and `free()`. Not constructed on its own; its
 * subclasses add the `krun_*` setters by what they configure.
 */
export abstract class ContextBase implements Disposable {
  #handle: Handle;

  static {
    handleOf = (context: ContextBase): Handle => context.#handle;
  }

  /** Creates a context (`krun_create_ctx`). */
  constructor() {
    const native = load();
    if (adopting !== null) {
      this.#handle = { native, id: adopting, freed: false, started: false }; // the caller who created it owns it: no safety net
    } else {
      const id = check(native.call.krun_create_ctx(), "krun_create_ctx");
      this.#handle = { native, id, freed: false, started: false };
      leaked.register(this, { native, id }, this);
    }
  }

  /** The context id the C API knows it by. */
  get id(): number {
    return this.#handle.id;
  }

  /**
   * Frees the context (`krun_free_ctx`), stopping its VM if one runs; idempotent. EBUSY while
   * a `waitAsync()` is pending: stop the VM and await that first (`Vm` does this for you).
   */
  free(): void {
    const h = this.#handle;
    if (h.freed) return;
    const rc = h.native.call.krun_free_ctx(h.id);
    // krun_start_enter consumes the context even when it fails: ENOENT then is not an error.
    if (rc !== -Errno.ENOENT || !h.started) check(rc, "krun_free_ctx");
    h.freed = true;
    leaked.unregister(this);
  }

  /** Same as `free()`. */
  [Symbol.dispose](): void {
    this.free();
  }
}

/** `make()`'s context wraps the existing context `id` instead of creating one. */
export function adopt<T extends ContextBase>(id: number, make: () => T): T {
  uint(id, 0, u32Max, "krun_create_ctx", "context id");
  adopting = id;
  try {
    return make();
  } finally {
    adopting = null;
  }
}

/** The library and the context's id, for a call of `op`: ENOENT once the context was freed. */
export function live(context: ContextBase, op: string): { native: Native; ctx: number } {
  const h = handleOf(context);
  if (h.freed) throw new KrunError(op, Errno.ENOENT, `context ${h.id} was already freed`);
  return { native: h.native, ctx: h.id };
}

/** Notes that the library may now have consumed the context (krun_start / krun_start_enter). */
export function markStarted(context: ContextBase): void {
  handleOf(context).started = true;
}

/** `op(ctx, value)` for a setter taking one string. */
export function setPath(context: ContextBase, op: PathOp, value: string, what: string): void {
  const { native, ctx } = live(context, op);
  const bytes = cString(value, op, what);
  check(native.call[op](ctx, bytes), op, bytes);
}

/** `op(ctx, values)` for a setter taking a NULL-terminated string array. */
export function setStrings(
  context: ContextBase,
  op: "krun_set_mapped_volumes" | "krun_set_smbios_oem_strings",
  values: readonly string[],
  what: string,
): void {
  const { native, ctx } = live(context, op);
  const list = cStringArray(native, values, op, what);
  check(native.call[op](ctx, list.array), op, list);
}

/** `op(ctx, value)` for a setter taking one u32 (or an fd, with `max` fdMax). */
export function setU32(
  context: ContextBase,
  op: U32Op,
  value: number,
  what: string,
  max: number = u32Max,
): void {
  const { native, ctx } = live(context, op);
  check(native.call[op](ctx, uint(value, 0, max, op, what)), op);
}

/** `op(ctx, value)` for a setter taking one bool. */
export function setBool(context: ContextBase, op: BoolOp, value: boolean, what: string): void {
  const { native, ctx } = live(context, op);
  check(native.call[op](ctx, bool(value, op, what)), op);
}
