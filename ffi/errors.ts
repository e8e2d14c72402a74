/**
 * zkrun's typed errors: `KrunError` for a `-errno` from a `krun_*` call (or for bad input the
 * TypeScript side refuses before it reaches C), `KrunLibraryError` when libkrun.so.1 cannot be
 * loaded. Linux errno numbers are fixed by the kernel ABI, so the table is written out.
 *
 * @module
 */

/** Linux errno numbers by name, for the codes zkrun uses: literal types, e.g. `Errno.EINVAL` is `22`. */
export const Errno: {
  readonly EPERM: 1;
  readonly ENOENT: 2;
  readonly ESRCH: 3;
  readonly EINTR: 4;
  readonly EIO: 5;
  readonly E2BIG: 7;
  readonly EBADF: 9;
  readonly EAGAIN: 11;
  readonly ENOMEM: 12;
  readonly EACCES: 13;
  readonly EFAULT: 14;
  readonly EBUSY: 16;
  readonly EEXIST: 17;
  readonly ENODEV: 19;
  readonly ENOTDIR: 20;
  readonly EISDIR: 21;
  readonly EINVAL: 22;
  readonly EMFILE: 24;
  readonly ENOTTY: 25;
  readonly ENOSPC: 28;
  readonly ERANGE: 34;
  readonly ENAMETOOLONG: 36;
  readonly ENOSYS: 38;
  readonly ENOTSUP: 95;
  readonly EADDRINUSE: 98;
  readonly ENOBUFS: 105;
  readonly ETIMEDOUT: 110;
  readonly EALREADY: 114;
  readonly ECANCELED: 125;
} = Object.freeze({
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  EIO: 5,
  E2BIG: 7,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  ENODEV: 19,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  EMFILE: 24,
  ENOTTY: 25,
  ENOSPC: 28,
  ERANGE: 34,
  ENAMETOOLONG: 36,
  ENOSYS: 38,
  ENOTSUP: 95,
  EADDRINUSE: 98,
  ENOBUFS: 105,
  ETIMEDOUT: 110,
  EALREADY: 114,
  ECANCELED: 125,
});

/** An errno name zkrun uses, e.g. "EINVAL". */
export type ErrnoCode = keyof typeof Errno;

const errnoNames: Readonly<Record<number, readonly [ErrnoCode, string]>> = {
  1: ["EPERM", "operation not permitted"],
  2: ["ENOENT", "no such file, directory or context"],
  3: ["ESRCH", "no such process"],
  4: ["EINTR", "interrupted"],
  5: ["EIO", "input/output error"],
  7: ["E2BIG", "argument list too long"],
  9: ["EBADF", "bad file descriptor"],
  11: ["EAGAIN", "try again"],
  12: ["ENOMEM", "out of memory"],
  13: ["EACCES", "permission denied"],
  14: ["EFAULT", "bad address"],
  16: ["EBUSY", "busy"],
  17: ["EEXIST", "already exists"],
  19: ["ENODEV", "no such device"],
  20: ["ENOTDIR", "not a directory"],
  21: ["EISDIR", "is a directory"],
  22: ["EINVAL", "invalid argument"],
  24: ["EMFILE", "too many open files"],
  25: ["ENOTTY", "not a terminal"],
  28: ["ENOSPC", "no space left"],
  34: ["ERANGE", "out of range"],
  36: ["ENAMETOOLONG", "name too long"],
  38: ["ENOSYS", "not implemented"],
  95: ["ENOTSUP", "not supported"],
  98: ["EADDRINUSE", "address in use"],
  105: ["ENOBUFS", "no buffer space"],
  110: ["ETIMEDOUT", "timed out"],
  114: ["EALREADY", "already in progress"],
  125: ["ECANCELED", "canceled"],
};

/** The symbolic name of a (positive) errno, e.g. 22 → "EINVAL"; unknown → "E<n>". */
export function errnoCode(errno: number): ErrnoCode | `E${number}` {
  return errnoNames[errno]?.[0] ?? `E${errno}`;
}

/** A `krun_*` call failed, or its input was refused before the call. */
export class KrunError extends Error {
  /** Always "KrunError". */
  override name = "KrunError";
  /** The positive errno, e.g. 22. */
  readonly errno: number;
  /** Its symbolic name, e.g. "EINVAL". */
  readonly code: ErrnoCode | `E${number}`;
  /** The C function concerned, e.g. "krun_set_vm_config". */
  readonly op: string;

  /**
   * Builds the error and its message, e.g. "krun_set_vm_config: EINVAL (invalid argument): …".
   *
   * @param op the C function concerned
   * @param errno positive errno
   * @param detail what was wrong, in words (optional)
   */
  constructor(op: string, errno: number, detail?: string) {
    const code = errnoCode(errno);
    const what = errnoNames[errno]?.[1] ?? "error";
    super(`${op}: ${code} (${what})${detail ? `: ${detail}` : ""}`);
    this.errno = errno;
    this.code = code;
    this.op = op;
  }
}

/** libkrun.so.1 could not be loaded from any of the places tried. */
export class KrunLibraryError extends Error {
  /** Always "KrunLibraryError". */
  override name = "KrunLibraryError";
  /** Every candidate tried, in order, with why it failed. */
  readonly tried: readonly string[];

  /**
   * Builds the one-line message naming every candidate.
   *
   * @param tried "candidate (reason)" per attempt, in order
   */
  constructor(tried: readonly string[]) {
    super(
      `cannot load libkrun.so.1; tried ${tried.join("; ")}. ` +
        "Build it (`zig build` → zig-out/lib) or set LIBKRUN_PATH to its full path.",
    );
    this.tried = tried;
  }
}
