/* Guest side of tests/bench/blk.bench.sh: sequential and 4 KiB random reads/writes on a block
 * device with O_DIRECT, from 1 or more threads (each its own region), timed with
 * CLOCK_MONOTONIC inside the guest. Prints "BLK <name> <MiB/s> <IOPS>".
 * usage: blk-io DEVICE seqwrite|seqread|randwrite|randread JOBS BLOCK_BYTES MIB_PER_JOB */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *dev, *mode;
static long bs, per_job;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void *job(void *arg)
{
    long id = (long)arg;
    int wr = strstr(mode, "write") != NULL, rnd = strncmp(mode, "rand", 4) == 0;
    int fd = open(dev, (wr ? O_WRONLY : O_RDONLY) | O_DIRECT);
    if (fd < 0) { perror("open"); exit(1); }
    void *buf;
    if (posix_memalign(&buf, 4096, (size_t)bs)) exit(1);
    memset(buf, 0x5a + (int)id, (size_t)bs);
    long n = per_job / bs, base = id * per_job;
    uint64_t x = 88172645463325252ull + (uint64_t)id;
    for (long i = 0; i < n; i++) {
        long off = i * bs;
        if (rnd) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; off = (long)(x % (uint64_t)n) * bs; }
        ssize_t r = wr ? pwrite(fd, buf, (size_t)bs, base + off) : pread(fd, buf, (size_t)bs, base + off);
        if (r != bs) { perror("io"); exit(1); }
    }
    close(fd);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 6) { fprintf(stderr, "usage: blk-io DEV MODE JOBS BS MIB\n"); return 2; }
    dev = argv[1]; mode = argv[2];
    int jobs = atoi(argv[3]);
    bs = atol(argv[4]); per_job = atol(argv[5]) << 20;
    pthread_t t[16];
    if (jobs < 1 || jobs > 16) return 2;
    double t0 = now();
    for (long i = 0; i < jobs; i++) pthread_create(&t[i], NULL, job, (void *)i);
    for (int i = 0; i < jobs; i++) pthread_join(t[i], NULL);
    double s = now() - t0;
    double bytes = (double)per_job * jobs;
    printf("BLK %s.%dj %.1f MiB/s %.0f IOPS\n", mode, jobs, bytes / s / 1048576.0, bytes / bs / s);
    return 0;
}
