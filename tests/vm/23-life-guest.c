/*
 * A guest-side helper for tests/vm/23..25 (static, put into the test rootfs as /life-guest):
 *   ioctl UID CODE  as UID (0: stay root), send the exit-code ioctl (0x7602) with CODE on "/"
 *   reset           sync and reboot at once (the kernel's normal restart path), before init
 *                   can report the workload's code
 *   oom             allocate and touch memory until the kernel runs out
 * Prints "G ..." lines for the host test to read.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/reboot.h>
#include <unistd.h>

static int send_code(long uid, long code)
{
    if (uid != 0) {
        if (setgroups(0, NULL) != 0 || setresgid((gid_t)uid, (gid_t)uid, (gid_t)uid) != 0 ||
            setresuid((uid_t)uid, (uid_t)uid, (uid_t)uid) != 0) {
            printf("G setuid %ld failed: %s\n", uid, strerror(errno));
            return 1;
        }
    }
    int fd = open("/", O_RDONLY);
    if (fd < 0) {
        printf("G open / failed: %s\n", strerror(errno));
        return 1;
    }
    errno = 0;
    int rc = ioctl(fd, 0x7602, code);
    printf("G ioctl uid=%d pid=%d code=%ld rc=%d errno=%d\n", (int)getuid(), (int)getpid(), code, rc,
           rc == 0 ? 0 : errno);
    fflush(stdout);
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc == 4 && strcmp(argv[1], "ioctl") == 0)
        return send_code(strtol(argv[2], NULL, 0), strtol(argv[3], NULL, 0));
    if (argc == 2 && strcmp(argv[1], "reset") == 0) {
        printf("G resetting\n");
        sync();
        reboot(RB_AUTOBOOT);
        printf("G reboot failed: %s\n", strerror(errno));
        return 1;
    }
    if (argc == 2 && strcmp(argv[1], "oom") == 0) {
        printf("G allocating\n");
        for (unsigned long mib = 0;; mib++) {
            /* volatile: the compiler must not drop memory nobody reads again */
            volatile char *p = malloc(1 << 20);
            if (p == NULL) {
                printf("G malloc failed at %lu MiB\n", mib);
                pause();
            }
            for (size_t i = 0; i < (1 << 20); i += 4096)
                p[i] = 0x5a;
            if (mib % 16 == 0)
                printf("G %lu MiB\n", mib);
        }
    }
    fprintf(stderr, "usage: life-guest ioctl UID CODE | reset | oom\n");
    return 2;
}
