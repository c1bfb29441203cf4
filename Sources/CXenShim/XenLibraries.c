/* Xen's libraries, loaded on first use.
 *
 * Linking libxenlight makes the dynamic loader map it and its dozen dependencies (libxenctrl, libxenguest, libyajl,
 * libzstd, ...) at every start of iovm: about 110 page faults and 80 system calls, a fifth of `iovm --version` in a
 * PV dom0 under TCG. Instead each function XenFunctions.h lists gets a trampoline of its own name here. The
 * trampoline jumps through a slot that first points to a stub; the stub loads the function's library with dlopen,
 * looks the function up with dlsym, stores it in the slot and jumps to it. Later calls cost one indirect jump.
 * (The technique of Implib.so; x86-64 System V only, which is what Xen's Debian packages are built for.) */
#include "CXenShim.h"
#include "XenFunctions.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#if !defined(__x86_64__)
#error "XenLibraries.c: the trampolines are written for x86-64"
#endif

/* Each library: the file dlopen is given and the Debian package that ships it. */
static const struct {
    const char *file;
    const char *package;
} libraries[CXEN_LIBRARY_COUNT] = {
    [CXEN_XENLIGHT] = {"libxenlight.so.4.17", "libxenmisc4.17"},
    [CXEN_XENSTAT] = {"libxenstat.so.4.17", "libxenmisc4.17"},
    [CXEN_XENSTORE] = {"libxenstore.so.4", "libxenstore4"},
    [CXEN_XENHYPFS] = {"libxenhypfs.so.1", "libxenhypfs1"},
    [CXEN_XENTOOLLOG] = {"libxentoollog.so.1", "libxentoollog1"},
    [CXEN_XENCTRL] = {"libxenctrl.so.4.17", "libxenmisc4.17"},
};

/* Each function's trampoline, the stub its slot starts at, and the slot. Trampolines and stubs are global but hidden:
 * other objects of iovm (XenKit's Swift code) link to them, while a Xen library's own calls never bind to them (a
 * debug build exports its symbols; libxenlight calling back into a trampoline would run iovm's binding from inside
 * libxl). The slots are global only so that the assembly can name them. */
#define CXEN_TRAMPOLINE(library, name)                                                                                 \
    __asm__(".pushsection .text\n"                                                                                    \
            ".globl " #name "\n"                                                                                       \
            ".hidden " #name "\n"                                                                                      \
            ".type " #name ", @function\n" #name ":\n"                                                                 \
            "    .cfi_startproc\n"                                                                                     \
            "    jmp *cxen_slot_" #name "(%rip)\n"                                                                     \
            "    .cfi_endproc\n"                                                                                       \
            ".size " #name ", .-" #name "\n"                                                                           \
            ".globl cxen_stub_" #name "\n"                                                                             \
            ".hidden cxen_stub_" #name "\n"                                                                            \
            ".type cxen_stub_" #name ", @function\n"                                                                   \
            "cxen_stub_" #name ":\n"                                                                                   \
            "    .cfi_startproc\n"                                                                                     \
            "    lea cxen_slot_" #name "(%rip), %r11\n"                                                                \
            "    jmp cxen_lazy_common\n"                                                                               \
            "    .cfi_endproc\n"                                                                                       \
            ".size cxen_stub_" #name ", .-cxen_stub_" #name "\n"                                                       \
            ".popsection\n");                                                                                         \
    extern char cxen_stub_##name[] __attribute__((visibility("hidden")));                                              \
    __attribute__((visibility("hidden"), used)) void *cxen_slot_##name = cxen_stub_##name;
CXEN_FUNCTIONS(CXEN_TRAMPOLINE)
#undef CXEN_TRAMPOLINE

/* The function each slot is for, in one table: the stub passes its slot; the binder finds name and library. */
static const struct {
    void **slot;
    const char *name;
    cxenshim_library library;
} functions[] = {
#define CXEN_ENTRY(library, name) {&cxen_slot_##name, #name, library},
    CXEN_FUNCTIONS(CXEN_ENTRY)
#undef CXEN_ENTRY
};

static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;
static void *handles[CXEN_LIBRARY_COUNT];

const char *cxenshim_library_file(cxenshim_library library) {
    return library < CXEN_LIBRARY_COUNT ? libraries[library].file : "?";
}

const char *cxenshim_library_package(cxenshim_library library) {
    return library < CXEN_LIBRARY_COUNT ? libraries[library].package : "?";
}

int cxenshim_load(cxenshim_library library, char *error, size_t size) {
    if (library >= CXEN_LIBRARY_COUNT) {
        if (error && size) snprintf(error, size, "no such library (%d)", (int)library);
        return -1;
    }
    if (__atomic_load_n(&handles[library], __ATOMIC_ACQUIRE)) return 0;
    pthread_mutex_lock(&load_lock);
    void *handle = handles[library];
    if (!handle) {
        handle = dlopen(libraries[library].file, RTLD_LAZY | RTLD_LOCAL);
        if (handle) {
            __atomic_store_n(&handles[library], handle, __ATOMIC_RELEASE);
        } else if (error && size) {
            const char *why = dlerror();
            snprintf(error, size, "%s", why ? why : "dlopen failed");
        }
    }
    pthread_mutex_unlock(&load_lock);
    return handle ? 0 : -1;
}

int cxenshim_loaded(cxenshim_library library) {
    return library < CXEN_LIBRARY_COUNT && __atomic_load_n(&handles[library], __ATOMIC_ACQUIRE) != NULL;
}

/* Looks up functions[index], or writes why not into `error`. */
static void *resolve(size_t index, char *error, size_t size) {
    cxenshim_library library = functions[index].library;
    char why[512];
    if (cxenshim_load(library, why, sizeof why) != 0) {
        snprintf(error, size, "cannot load %s (Debian package %s): %s", libraries[library].file, libraries[library].package, why);
        return NULL;
    }
    void *function = dlsym(handles[library], functions[index].name);
    if (!function) {
        snprintf(error, size, "%s has no %s", libraries[library].file, functions[index].name);
        return NULL;
    }
    __atomic_store_n(functions[index].slot, function, __ATOMIC_RELEASE);
    return function;
}

/* Called by the stubs (with every argument register saved) on a function's first call. XenKit loads each library
 * before its first call and reports failures as errors; reaching the exit here means a library vanished or lacks a
 * function, and the call cannot be made. */
__attribute__((visibility("hidden"), used)) void *cxen_lazy_bind(void **slot) {
    for (size_t index = 0; index < sizeof functions / sizeof functions[0]; index++) {
        if (functions[index].slot != slot) continue;
        char error[768];
        void *function = resolve(index, error, sizeof error);
        if (function) return function;
        dprintf(2, "iovm: %s\n", error);
        _exit(1);
    }
    dprintf(2, "iovm: a Xen function trampoline has no table entry\n");
    _exit(1);
}

/* The stubs' common part: saves the argument registers (integer and vector, and %al for variadic calls), binds,
 * restores them and tail-jumps to the function with the caller's return address still on the stack. On entry %rsp
 * is 8 mod 16 (the call pushed the return address); rbp and eight registers make it 0 again; the 128 bytes of
 * vector registers keep it there for the call. */
__asm__(".pushsection .text\n"
        ".type cxen_lazy_common, @function\n"
        "cxen_lazy_common:\n"
        "    .cfi_startproc\n"
        "    push %rbp\n"
        "    .cfi_def_cfa_offset 16\n"
        "    .cfi_offset %rbp, -16\n"
        "    mov %rsp, %rbp\n"
        "    .cfi_def_cfa_register %rbp\n"
        "    push %rdi\n"
        "    push %rsi\n"
        "    push %rdx\n"
        "    push %rcx\n"
        "    push %r8\n"
        "    push %r9\n"
        "    push %rax\n"
        "    push %r10\n"
        "    sub $128, %rsp\n"
        "    movdqu %xmm0, 0(%rsp)\n"
        "    movdqu %xmm1, 16(%rsp)\n"
        "    movdqu %xmm2, 32(%rsp)\n"
        "    movdqu %xmm3, 48(%rsp)\n"
        "    movdqu %xmm4, 64(%rsp)\n"
        "    movdqu %xmm5, 80(%rsp)\n"
        "    movdqu %xmm6, 96(%rsp)\n"
        "    movdqu %xmm7, 112(%rsp)\n"
        "    mov %r11, %rdi\n"
        "    call cxen_lazy_bind\n"
        "    mov %rax, %r11\n"
        "    movdqu 0(%rsp), %xmm0\n"
        "    movdqu 16(%rsp), %xmm1\n"
        "    movdqu 32(%rsp), %xmm2\n"
        "    movdqu 48(%rsp), %xmm3\n"
        "    movdqu 64(%rsp), %xmm4\n"
        "    movdqu 80(%rsp), %xmm5\n"
        "    movdqu 96(%rsp), %xmm6\n"
        "    movdqu 112(%rsp), %xmm7\n"
        "    add $128, %rsp\n"
        "    pop %r10\n"
        "    pop %rax\n"
        "    pop %r9\n"
        "    pop %r8\n"
        "    pop %rcx\n"
        "    pop %rdx\n"
        "    pop %rsi\n"
        "    pop %rdi\n"
        "    pop %rbp\n"
        "    .cfi_def_cfa %rsp, 8\n"
        "    jmp *%r11\n"
        "    .cfi_endproc\n"
        ".size cxen_lazy_common, .-cxen_lazy_common\n"
        ".popsection\n");

int cxenshim_resolve_all(char *error, size_t size) {
    int resolved = 0;
    for (size_t index = 0; index < sizeof functions / sizeof functions[0]; index++) {
        if (!resolve(index, error, size)) return -1;
        resolved++;
    }
    return resolved;
}
