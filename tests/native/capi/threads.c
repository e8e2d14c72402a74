/*
 * The context table under contention: threads create, configure and free contexts at once and
 * also hammer one shared context. Every id handed out must be unique and every call must give
 * its normal answer (no lost updates, no -ENOENT for a live id, no crash).
 * Usage: threads SCRATCH_DIR
 */
#include <errno.h>
#include <libkrun.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#define THREADS 8
#define ROUNDS 2000

static const char *scratch;
static int32_t shared_ctx;
static int32_t ids[THREADS][ROUNDS];
static int errors[THREADS];

static void *worker(void *arg)
{
    int t = (int)(long)arg;
    const char *const env[] = { "A=1", "B=2", NULL };
    char tag[16];
    for (int i = 0; i < ROUNDS; i++) {
        int32_t id = krun_create_ctx();
        ids[t][i] = id;
        if (id < 0) {
            errors[t]++;
            continue;
        }
        uint32_t ctx = (uint32_t)id;
        snprintf(tag, sizeof tag, "t%d", i % 4);
        if (krun_set_vm_config(ctx, 1, 128) != 0 || krun_set_root(ctx, scratch) != 0 ||
            krun_add_virtiofs(ctx, tag, NULL) != 0 || krun_set_exec(ctx, "/bin/sh", env, env) != 0 ||
            krun_set_exec((uint32_t)shared_ctx, "/bin/true", env, NULL) != 0 ||
            krun_free_ctx(ctx) != 0 || krun_free_ctx(ctx) != -ENOENT)
            errors[t]++;
    }
    return NULL;
}

static int compare(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    scratch = argv[1];
    krun_set_log_level(KRUN_LOG_LEVEL_OFF);
    shared_ctx = krun_create_ctx();
    CHECK(shared_ctx >= 0);
    pthread_t threads[THREADS];
    for (long t = 0; t < THREADS; t++)
        CHECK_EQ(pthread_create(&threads[t], NULL, worker, (void *)t), 0);
    for (int t = 0; t < THREADS; t++) {
        CHECK_EQ(pthread_join(threads[t], NULL), 0);
        CHECK_EQ(errors[t], 0);
    }
    qsort(ids, THREADS * ROUNDS, sizeof ids[0][0], compare);
    int32_t *flat = &ids[0][0];
    int unique = 1;
    for (int i = 1; i < THREADS * ROUNDS; i++)
        unique &= flat[i] != flat[i - 1];
    CHECK(unique);
    CHECK(flat[0] > shared_ctx); /* ids count up */
    CHECK_EQ(krun_free_ctx((uint32_t)shared_ctx), 0);
    return summary();
}
