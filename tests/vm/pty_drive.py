#!/usr/bin/env python3
"""A small pty driver for the VM tier's terminal tests (tests/vm/5x-pty-*.test.sh).

    pty_drive.py [--size COLSxROWS] [--timeout SECS] [--transcript FILE] STEP... -- CMD [ARG...]

Runs CMD as a session leader on a fresh pseudo-terminal (its controlling terminal, stdin,
stdout and stderr), as a user's shell would, then plays the steps in order:
    -e REGEX    wait until the output since the last match matches REGEX (Python re, DOTALL)
    -s TEXT     type TEXT (escapes: \\r \\n \\t \\xNN, e.g. \\x03 for Ctrl-C)
    -w COLSxROWS resize the terminal (the kernel sends SIGWINCH to its foreground group)
    -p SECS     pause
then waits for CMD to end. Exit status: CMD's (128+N if signal N killed it); 124 when a step or
CMD timed out; 2 for bad usage. Everything CMD printed goes to --transcript (default stdout),
raw bytes, so a test can also look for what must not be there (a NUL byte).
"""
import os
import re
import select
import signal
import struct
import sys
import termios
import fcntl
import time


def usage(msg):
    sys.stderr.write(f"pty_drive: {msg}\n")
    sys.exit(2)


def parse_size(text):
    m = re.fullmatch(r"([0-9]+)x([0-9]+)", text)
    if not m:
        usage(f"bad size '{text}' (want COLSxROWS)")
    return int(m.group(1)), int(m.group(2))


def unescape(text):
    return text.encode("utf-8").decode("unicode_escape").encode("latin-1")


def set_size(fd, cols, rows):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class Session:
    def __init__(self, master, pid, deadline):
        self.master = master
        self.pid = pid
        self.deadline = deadline
        self.out = bytearray()
        self.seen = 0  # expect searches from here
        self.status = None

    def pump(self, timeout):
        """Reads what is there within timeout; False once the pty is closed and drained."""
        r, _, _ = select.select([self.master], [], [], max(timeout, 0))
        if not r:
            return True
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: every slave fd is closed
            return False
        if not data:
            return False
        self.out += data
        return True

    def expect(self, pattern):
        rx = re.compile(pattern.encode(), re.DOTALL)
        while True:
            m = rx.search(self.out, self.seen)
            if m:
                self.seen = m.end()
                return True
            left = self.deadline - time.monotonic()
            if left <= 0 or not self.pump(min(left, 0.5)):
                m = rx.search(self.out, self.seen)  # the pty closed: nothing more will come
                if m:
                    self.seen = m.end()
                return m is not None

    def reap(self, block):
        if self.status is None:
            pid, st = os.waitpid(self.pid, 0 if block else os.WNOHANG)
            if pid == self.pid:
                self.status = os.waitstatus_to_exitcode(st)
        return self.status

    def finish(self):
        """Waits for CMD to end and its output to drain; returns the exit status or None."""
        while time.monotonic() < self.deadline:
            alive = self.pump(0.2)
            if self.reap(block=False) is not None:
                while self.pump(0.2):  # whatever is still buffered in the pty
                    pass
                return self.status
            if not alive:
                time.sleep(0.05)
        return None


def main(argv):
    size, timeout, transcript, steps = (80, 24), 300.0, None, []
    i = 0
    while i < len(argv) and argv[i] != "--":
        opt = argv[i]
        if opt in ("--size", "--timeout", "--transcript", "-e", "-s", "-w", "-p"):
            if i + 1 >= len(argv):
                usage(f"{opt} needs a value")
            val = argv[i + 1]
            if opt == "--size":
                size = parse_size(val)
            elif opt == "--timeout":
                timeout = float(val)
            elif opt == "--transcript":
                transcript = val
            else:
                steps.append((opt, val))
            i += 2
        else:
            usage(f"unknown option '{opt}'")
    cmd = argv[i + 1:]
    if not cmd:
        usage("no command after --")

    master, slave = os.openpty()
    set_size(slave, *size)
    pid = os.fork()
    if pid == 0:
        try:
            os.close(master)
            os.setsid()
            fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
            for fd in (0, 1, 2):
                os.dup2(slave, fd)
            if slave > 2:
                os.close(slave)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.execvp(cmd[0], cmd)
        except OSError as e:
            os.write(2, f"pty_drive: cannot run {cmd[0]}: {e}\n".encode())
        os._exit(127)
    os.close(slave)

    s = Session(master, pid, time.monotonic() + timeout)
    failed = None
    for opt, val in steps:
        if opt == "-e":
            if not s.expect(val):
                failed = f"timed out waiting for /{val}/"
                break
        elif opt == "-s":
            os.write(master, unescape(val))
        elif opt == "-w":
            set_size(master, *parse_size(val))
        elif opt == "-p":
            end = time.monotonic() + float(val)
            while time.monotonic() < end:
                s.pump(end - time.monotonic())
    status = None if failed else s.finish()
    if failed is None and status is None:
        failed = f"{cmd[0]} still ran after {timeout:.0f} s"
    if failed:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
        s.reap(block=True)
    out = bytes(s.out)
    if transcript:
        with open(transcript, "wb") as f:
            f.write(out)
    else:
        sys.stdout.buffer.write(out)
        sys.stdout.flush()
    if failed:
        sys.stderr.write(f"pty_drive: {failed}\n")
        return 124
    return 128 - status if status < 0 else status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
