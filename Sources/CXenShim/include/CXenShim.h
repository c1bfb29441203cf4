/* CXenShim: small C helpers for XenKit.
 *
 * Re-exports what the Swift importer drops or makes awkward in the Xen toolstack headers:
 * function-like and cast macros (XBT_NULL, INVALID_DOMID, XENSTAT_ALL, LIBXL_VERSION,
 * LIBXL_API_VERSION), a FILE* for fd 2 (the global `stderr` is rejected under Swift 6 strict
 * concurrency), a xentoollog logger constructor that hides the "derived struct to base struct"
 * pointer cast, a ctx-free libxl_bitmap allocator, and the SIGCHLD policy iovm uses with libxl.
 *
 * Xen's libraries are not linked: each is loaded on the first call of one of its functions (XenLibraries.c), so a
 * command that never talks to Xen (`iovm --version`, plan, render, report) starts without loading libxenlight and
 * its dozen dependencies. XenKit loads a library explicitly before first use (cxenshim_load) to turn a missing one
 * into an error it can report.
 */
#ifndef IOVM_CXENSHIM_H
#define IOVM_CXENSHIM_H

/* The toolstack headers and the pinned LIBXL_API_VERSION come from CLibXen's one header. */
#include <stdint.h>
#include "../../CLibXen/CLibXen.h"

#ifdef __cplusplus
extern "C" {
#endif

/* MARK: Xen's libraries, loaded on first use */

/** The libraries iovm calls into. */
typedef enum {
    CXEN_XENLIGHT,   /**< libxenlight.so.4.17 (libxl) */
    CXEN_XENSTAT,    /**< libxenstat.so.4.17 */
    CXEN_XENSTORE,   /**< libxenstore.so.4 */
    CXEN_XENHYPFS,   /**< libxenhypfs.so.1 */
    CXEN_XENTOOLLOG, /**< libxentoollog.so.1 */
    CXEN_XENCTRL,    /**< libxenctrl.so.4.17 */
    CXEN_LIBRARY_COUNT
} cxenshim_library;

/** The file name dlopen is given for `library` ("libxenlight.so.4.17"). */
const char *cxenshim_library_file(cxenshim_library library);
/** The Debian package that ships `library` ("libxenmisc4.17"). */
const char *cxenshim_library_package(cxenshim_library library);
/** Loads `library` once per process. Returns 0, or -1 with dlerror's text in `error`. Thread-safe. */
int cxenshim_load(cxenshim_library library, char *error, size_t size);
/** 1 when `library` is loaded in this process (by cxenshim_load or a first call), else 0. */
int cxenshim_loaded(cxenshim_library library);
/** Resolves every function of every library now (tests: the table names only functions that exist).
 *  Returns the number resolved, or -1 with why the first one failed in `error` ("cannot load FILE (Debian
 *  package P): ..." or "FILE has no FUNCTION"). */
int cxenshim_resolve_all(char *error, size_t size);

/* MARK: constants behind macros */

/** LIBXL_VERSION, the `version` argument of libxl_ctx_alloc. */
int cxenshim_libxl_version(void);
/** LIBXL_API_VERSION this shim compiled against (0x041400). */
unsigned cxenshim_libxl_api_version(void);
/** INVALID_DOMID (~0) as a uint32_t. */
uint32_t cxenshim_invalid_domid(void);
/** XENSTAT_ALL: ask xenstat_get_node for vCPUs, networks, version and VBDs. */
unsigned cxenshim_xenstat_all(void);
/** XBT_NULL: "no transaction" for xs_* calls. */
xs_transaction_t cxenshim_xbt_null(void);
/** XS_OPEN_READONLY flag for xs_open. */
unsigned long cxenshim_xs_open_readonly(void);

/* MARK: stdio */

/** A process-wide FILE* writing to fd 2, created once with fdopen(dup(2)). NULL if that failed. */
FILE *cxenshim_stderr(void);

/* MARK: xentoollog */

/** xtl_createlogger_stdiostream, returned as the base `xentoollog_logger *` libxl_ctx_alloc takes.
 *  Messages below min_level are dropped; XTL_NUM_LEVELS drops everything. NULL on malloc failure. */
xentoollog_logger *cxenshim_logger_create_stdio(FILE *file, xentoollog_level min_level,
                                                unsigned flags);
/** xtl_logger_destroy (does not close the FILE). NULL is fine. */
void cxenshim_logger_destroy(xentoollog_logger *logger);

/** Where a sink logger hands each message: once per message, formatted whole (no level, context or newline added).
 *  `errnoval` is -1 when the message has no errno; `source` (libxl's "context": "libxl", "xc", …) may be NULL. */
typedef void (*cxenshim_log_sink)(void *context, xentoollog_level level, int errnoval, const char *source,
                                  const char *message);
/** A xentoollog logger that formats each message at or above min_level and calls `sink` with it (with `context`), one
 *  call per message, so that the caller writes each as one line of its own log. Progress reports are dropped. In a child
 *  libxl forked (before its exec) a message is written to fd 2 with write(2) instead: the sink is never called there. Destroyed
 *  by cxenshim_logger_destroy (which does not touch `context`). NULL on malloc failure. */
xentoollog_logger *cxenshim_logger_create_sink(cxenshim_log_sink sink, void *context, xentoollog_level min_level);
/** Logs `message` through `logger` as libxl would (for tests of a logger). */
void cxenshim_logger_log(xentoollog_logger *logger, xentoollog_level level, int errnoval, const char *source,
                         const char *message);

/* MARK: libxl child processes */

/** Calls libxl_childproc_setmode(ctx, hooks, NULL) with static hooks whose chldowner is
 *  libxl_sigchld_owner_libxl_always_selective_reap: libxl keeps its SIGCHLD handler installed for
 *  the life of the ctx but reaps only its own children (waitpid on their pids); the application
 *  reaps its own children synchronously with waitpid(pid). Call right after libxl_ctx_alloc. */
void cxenshim_childproc_set_selective_reap(libxl_ctx *ctx);

/* MARK: libxl_bitmap without a ctx */

/** Allocates bitmap->map for at least n_bits bits (zeroed) with calloc, like libxl_bitmap_alloc
 *  but without a libxl_ctx; free with libxl_bitmap_dispose. Returns 0, or ENOMEM / EINVAL. */
int cxenshim_bitmap_alloc(libxl_bitmap *bitmap, int n_bits);

/* MARK: the executable's memory */

/** Maps every page of the executable's zero-initialized data (the anonymous part of its highest writable PT_LOAD,
 *  `.bss`) with one madvise(MADV_POPULATE_WRITE), where each page would otherwise cost a fault when first read and
 *  another when first written. Returns 0 with the range in `start` and `length`, or -1 with errno (EINVAL before Linux
 *  5.14; ENOENT when the executable has no such data, or no PT_PHDR to find where it was loaded). */
int cxenshim_populate_zero_data(uintptr_t *start, size_t *length);

#ifdef __cplusplus
}
#endif

#endif
