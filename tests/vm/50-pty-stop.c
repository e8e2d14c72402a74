/*
 * The terminal across krun_start / krun_stop / krun_wait, for tests/vm/50-pty-capi.test.sh.
 * Usage: 50-pty-stop ROOTFS   (stdin and stdout a terminal)
 * Boots /bin/sh on ROOTFS with the implicit console on this terminal, checks the terminal is
 * raw while the VM runs, stops it with krun_stop and checks the terminal settings are back
 * (byte for byte) as soon as krun_stop returns, before krun_wait and krun_free_ctx.
 * Prints "PTY <what> ok|FAIL ..." lines; exits 0 when all hold.
 */
#include <errno.h>
#include <libkrun.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

static int fails;

static void check(int ok, const char *what, long got)
{
    printf("PTY %s %s (%ld)\r\n", what, ok ? "ok" : "FAIL", got);
    fflush(stdout);
    if (!ok)
        fails++;
}

/* The settings themselves (not the struct's padding bytes, which tcgetattr leaves alone). */
static int same(const struct termios *a, const struct termios *b)
{
    return a->c_iflag == b->c_iflag && a->c_oflag == b->c_oflag && a->c_cflag == b->c_cflag &&
           a->c_lflag == b->c_lflag && a->c_line == b->c_line &&
           memcmp(a->c_cc, b->c_cc, sizeof a->c_cc) == 0;
}

static int get(struct termios *t)
{
    memset(t, 0, sizeof *t);
    return tcgetattr(0, t) == 0;
}

int main(int argc, char **argv)
{
    struct termios before, during, after;
    if (argc != 2 || !isatty(0) || !get(&before)) {
        fprintf(stderr, "usage: %s ROOTFS (on a terminal)\n", argv[0]);
        return 2;
    }
    const char *const args[] = { "-c", "echo guest-up; sleep 600", NULL };
    const char *const env[] = { "PATH=/bin:/sbin:/usr/bin", NULL };
    int32_t id = krun_create_ctx();
    if (id < 0)
        return 3;
    uint32_t ctx = (uint32_t)id;
    if (krun_set_vm_config(ctx, 1, 256) != 0 || krun_set_root(ctx, argv[1]) != 0 ||
        krun_set_exec(ctx, "/bin/sh", args, env) != 0)
        return 3;
    int32_t rc = krun_start(ctx);
    check(rc == 0, "krun_start", rc);
    if (rc != 0)
        return 1;
    int ok = get(&during);
    check(ok && !(during.c_lflag & (ICANON | ECHO | ISIG)), "raw-while-running", (long)during.c_lflag);
    rc = krun_wait(ctx, 3000);
    check(rc == -ETIMEDOUT, "still-running", rc);
    rc = krun_stop(ctx);
    check(rc == 0, "krun_stop", rc);
    ok = get(&after);
    check(ok && same(&before, &after), "restored-by-stop", (long)after.c_lflag);
    rc = krun_wait(ctx, 30000);
    check(rc >= 0, "krun_wait", rc);
    check(krun_free_ctx(ctx) == 0, "krun_free_ctx", 0);
    ok = get(&after);
    check(ok && same(&before, &after), "restored-after-free", (long)after.c_lflag);
    return fails == 0 ? 0 : 1;
}
