#define _GNU_SOURCE /* vasprintf */
#include "CXenShim.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cxenshim_libxl_version(void) { return LIBXL_VERSION; }
unsigned cxenshim_libxl_api_version(void) { return LIBXL_API_VERSION; }
uint32_t cxenshim_invalid_domid(void) { return (uint32_t)INVALID_DOMID; }
unsigned cxenshim_xenstat_all(void) { return XENSTAT_ALL; }
xs_transaction_t cxenshim_xbt_null(void) { return XBT_NULL; }
unsigned long cxenshim_xs_open_readonly(void) { return XS_OPEN_READONLY; }

static pthread_once_t stderr_once = PTHREAD_ONCE_INIT;
static FILE *stderr_file;

static void stderr_open(void)
{
    int fd = dup(2);
    if (fd < 0) return;
    stderr_file = fdopen(fd, "w");
    if (!stderr_file) { close(fd); return; }
    setvbuf(stderr_file, NULL, _IOLBF, 0);
}

FILE *cxenshim_stderr(void)
{
    pthread_once(&stderr_once, stderr_open);
    return stderr_file;
}

xentoollog_logger *cxenshim_logger_create_stdio(FILE *file, xentoollog_level min_level,
                                                unsigned flags)
{
    xentoollog_logger_stdiostream *s = xtl_createlogger_stdiostream(file, min_level, flags);
    return (xentoollog_logger *)s;
}

void cxenshim_logger_destroy(xentoollog_logger *logger)
{
    /* What xtl_logger_destroy does, without needing libxentoollog (a sink logger's tests). */
    if (logger && logger->destroy) logger->destroy(logger);
}

typedef struct {
    xentoollog_logger vtable; /* first: the logger libxl sees */
    cxenshim_log_sink sink;
    void *context;
    xentoollog_level min_level;
    pid_t creator; /* the process whose sink this is */
} sink_logger;

static void sink_vmessage(xentoollog_logger *logger, xentoollog_level level, int errnoval, const char *source,
                          const char *format, va_list al)
{
    sink_logger *l = (sink_logger *)logger;
    if (level < l->min_level) return;
    if (getpid() != l->creator) {
        /* A child libxl forked and has not exec'd yet (libxl__spawn_spawn, libxl__exec): never the sink (Swift,
         * swift-log, a lock another thread may have held at the fork), no malloc: a stack buffer and write(2). */
        char line[1024];
        int n = snprintf(line, sizeof line, "%s: ", source ? source : "libxl");
        if (n < 0 || n >= (int)sizeof line) n = 0;
        int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, format, al);
        if (m < 0) return;
        size_t length = strlen(line);
        line[length] = '\n';
        ssize_t written = write(2, line, length + 1);
        (void)written;
        return;
    }
    char *text = NULL;
    if (vasprintf(&text, format, al) < 0) return;
    l->sink(l->context, level, errnoval, source, text);
    free(text);
}

static void sink_destroy(xentoollog_logger *logger) { free(logger); }

xentoollog_logger *cxenshim_logger_create_sink(cxenshim_log_sink sink, void *context, xentoollog_level min_level)
{
    sink_logger *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    l->vtable.vmessage = sink_vmessage;
    l->vtable.progress = NULL;
    l->vtable.destroy = sink_destroy;
    l->sink = sink;
    l->context = context;
    l->min_level = min_level;
    l->creator = getpid();
    return &l->vtable;
}

static void __attribute__((format(printf, 5, 6)))
log_formatted(xentoollog_logger *logger, xentoollog_level level, int errnoval, const char *source, const char *format, ...)
{
    va_list al;
    va_start(al, format);
    logger->vmessage(logger, level, errnoval, source, format, al);
    va_end(al);
}

void cxenshim_logger_log(xentoollog_logger *logger, xentoollog_level level, int errnoval, const char *source,
                         const char *message)
{
    log_formatted(logger, level, errnoval, source, "%s", message);
}

/* Must outlast every ctx that uses it (libxl keeps the pointer): static storage. */
static const libxl_childproc_hooks selective_reap_hooks = {
    .chldowner = libxl_sigchld_owner_libxl_always_selective_reap,
    .fork_replacement = NULL,
    .reaped_callback = NULL,
};

void cxenshim_childproc_set_selective_reap(libxl_ctx *ctx)
{
    libxl_childproc_setmode(ctx, &selective_reap_hooks, NULL);
}

int cxenshim_bitmap_alloc(libxl_bitmap *bitmap, int n_bits)
{
    if (!bitmap || n_bits <= 0) return EINVAL;
    size_t bytes = ((size_t)n_bits + 7) / 8;
    uint8_t *map = calloc(bytes, 1);
    if (!map) return ENOMEM;
    bitmap->size = (uint32_t)bytes;
    bitmap->map = map;
    return 0;
}
