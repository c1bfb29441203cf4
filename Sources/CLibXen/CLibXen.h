/* CLibXen: the Xen 4.17 toolstack C headers (libxenlight, libxlutil, libxenctrl, libxenstat, libxenstore,
 * libxenhypfs, xentoollog) as one Clang module for Swift. Nothing is linked: CXenShim's trampolines load each
 * library on first use (CXenShim/XenLibraries.c); only the tests' XenKitTestSupport links libxlutil. */
#ifndef IOVM_CLIBXEN_SHIM_H
#define IOVM_CLIBXEN_SHIM_H

/* Pin the libxl API to the newest stable version the 4.17 headers accept, so a later libxl
 * keeps compiling us with the same function signatures (see the comment at the top of libxl.h). */
#ifndef LIBXL_API_VERSION
#define LIBXL_API_VERSION 0x041400
#endif

#include <stdio.h>
#include <xentoollog.h>
#include <libxl.h>
#include <libxl_utils.h>
#include <libxlutil.h>
#include <xenctrl.h>
#include <xenstat.h>
#include <xenstore.h>
#include <xenhypfs.h>

#endif
