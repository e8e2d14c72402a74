/*
 * Strings passed to the C API are copied before the call returns: the caller overwrites or
 * frees its buffers right after each call, and later calls that depend on the recorded values
 * (tags, overlay paths, console output) still see the originals.
 * Usage: copies SCRATCH_DIR
 */
#include <errno.h>
#include <libkrun.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

/* A heap copy the test can scribble over and free, so a kept pointer would read garbage. */
static char *heap(const char *s)
{
    char *p = strdup(s);
    if (p == NULL)
        exit(2);
    return p;
}

static void scrub(char *p)
{
    memset(p, 'X', strlen(p));
    free(p);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s SCRATCH_DIR\n", argv[0]);
        return 2;
    }
    krun_set_log_level(KRUN_LOG_LEVEL_OFF);
    int32_t id = krun_create_ctx();
    CHECK(id >= 0);
    uint32_t ctx = (uint32_t)id;

    /* The tag: overlay entries find the fs by the tag recorded at krun_add_virtiofs. */
    char *tag = heap("data");
    char *dir = heap(argv[1]);
    CHECK_EQ(krun_add_virtiofs(ctx, tag, dir), 0);
    scrub(tag);
    scrub(dir);
    char *tag2 = heap("data"); /* likely reuses the freed block: now a different string */
    CHECK_EQ(krun_add_virtiofs(ctx, "data", NULL), -EEXIST);
    free(tag2);

    /* An overlay directory path: its children find it by the recorded path. */
    char *path = heap("etc");
    CHECK_EQ(krun_fs_add_overlay_dir(ctx, "data", path, 0755), 0);
    scrub(path);
    char *file = heap("etc/hostname");
    char *content = heap("zkrun\n");
    CHECK_EQ(krun_fs_add_overlay_file(ctx, "data", file, (const uint8_t *)content, 6, 0644, false), 0);
    scrub(file);
    scrub(content);
    CHECK_EQ(krun_fs_add_overlay_file(ctx, "data", "etc/hostname", (const uint8_t *)"x", 1, 0644, false), -EEXIST);
    CHECK_EQ(krun_fs_add_overlay_file(ctx, "data", "XXX/hostname", (const uint8_t *)"x", 1, 0644, false), -ENOENT);

    /* The root: krun_set_root's directory and the "/dev/root" entry with its init.krun. */
    char *root = heap(argv[1]);
    CHECK_EQ(krun_set_root(ctx, root), 0);
    scrub(root);
    CHECK_EQ(krun_fs_add_overlay_dir(ctx, KRUN_FS_ROOT_TAG, "init.krun", 0755), -EEXIST);

    /* The console output path: a second call sees the first one recorded. */
    char *out = heap("/tmp/zkrun-console.log");
    CHECK_EQ(krun_set_console_output(ctx, out), 0);
    scrub(out);
    CHECK_EQ(krun_set_console_output(ctx, "/tmp/other.log"), -EEXIST);

    /* Arrays: their strings and the array itself may go away at once. */
    char **env = calloc(3, sizeof *env);
    env[0] = heap("HOME=/root");
    env[1] = heap("TERM=xterm");
    CHECK_EQ(krun_set_exec(ctx, "/bin/sh", env, env), 0);
    scrub(env[0]);
    scrub(env[1]);
    free(env);
    CHECK_EQ(krun_free_ctx(ctx), 0);
    return summary();
}
