#include "CXenShim.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
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
    xtl_logger_destroy(logger);
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
