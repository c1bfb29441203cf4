/* The executable's zero-initialized data, mapped at start-up in one system call (issue 16). */
#define _GNU_SOURCE
#include "CXenShim.h"

#include <errno.h>
#include <link.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

int cxenshim_populate_zero_data(uintptr_t *start, size_t *length)
{
    const ElfW(Phdr) *phdr = (const ElfW(Phdr) *)getauxval(AT_PHDR);
    unsigned long count = getauxval(AT_PHNUM);
    long page = sysconf(_SC_PAGESIZE);
    if (!phdr || count == 0 || page <= 0) {
        errno = ENOENT;
        return -1;
    }
    /* Where the executable was loaded: PT_PHDR's address in memory against its p_vaddr. Without PT_PHDR the load
     * address of a PIE is not known here: do nothing. */
    int found = 0;
    uintptr_t bias = 0;
    for (unsigned long i = 0; i < count; i++)
        if (phdr[i].p_type == PT_PHDR) {
            bias = (uintptr_t)phdr - phdr[i].p_vaddr;
            found = 1;
        }
    if (!found) {
        errno = ENOENT;
        return -1;
    }
    /* The writable PT_LOAD with anonymous pages (past the file's bytes; the page they end in is the file's) that lies
     * highest: `.bss`, not a RELRO segment's padding. */
    uintptr_t mask = (uintptr_t)page - 1, first = 0, end = 0;
    for (unsigned long i = 0; i < count; i++) {
        if (phdr[i].p_type != PT_LOAD || !(phdr[i].p_flags & PF_W) || phdr[i].p_memsz <= phdr[i].p_filesz) continue;
        uintptr_t from = (bias + phdr[i].p_vaddr + phdr[i].p_filesz + mask) & ~mask;
        uintptr_t to = (bias + phdr[i].p_vaddr + phdr[i].p_memsz + mask) & ~mask;
        if (to > from && from > first) {
            first = from;
            end = to;
        }
    }
    if (end == 0) {
        errno = ENOENT;
        return -1;
    }
    if (madvise((void *)first, end - first, MADV_POPULATE_WRITE) != 0) return -1;
    *start = first;
    *length = end - first;
    return 0;
}
