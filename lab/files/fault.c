/* fault PAGES MODE: times first touches of PAGES anonymous pages (issue 16): MODE 0 reads then writes each page (two
 * faults, as the Swift runtime's zero-initialized caches are touched), 1 maps them all first with one
 * madvise(MADV_POPULATE_WRITE), 2 writes each (one fault). Built static in the lab: gcc -O2 -static. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
    if (argc != 3) return 2;
    int pages = atoi(argv[1]), mode = atoi(argv[2]);
    size_t bytes = (size_t)pages * 4096;
    volatile char *p = mmap(0, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 1;
    double start = now_ms();
    if (mode == 1 && madvise((void *)p, bytes, MADV_POPULATE_WRITE) != 0) perror("madvise");
    for (int i = 0; i < pages; i++) {
        if (mode == 0) (void)p[(size_t)i * 4096];
        p[(size_t)i * 4096] = 1;
    }
    printf("mode %d, %d pages: %.2f ms\n", mode, pages, now_ms() - start);
    return 0;
}
