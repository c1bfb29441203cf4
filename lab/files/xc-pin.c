/* The floor of a live pin under this Xen (issue 16): one C process that looks each domain's name up in
 * xenstore and pins every vCPU of it through libxenctrl, with nothing else: no toolstack context, no
 * lock, no tag check. The lab suite times it next to `iovm pin` and the `xl vcpu-pin` processes.
 * usage: xc-pin DOMID CORE|all [DOMID CORE|all ...] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xenctrl.h>
#include <xenstore.h>

int main(int argc, char **argv) {
  if (argc < 3 || argc % 2 == 0) {
    fprintf(stderr, "usage: xc-pin DOMID CORE|all [DOMID CORE|all ...]\n");
    return 64;
  }
  xc_interface *xc = xc_interface_open(NULL, NULL, 0);
  struct xs_handle *xs = xs_open(XS_OPEN_READONLY);
  if (!xc || !xs) {
    perror("xc-pin: open");
    return 1;
  }
  int cpus = xc_get_max_cpus(xc);
  xc_cpumap_t map = xc_cpumap_alloc(xc);
  int status = 0;
  for (int a = 1; a + 1 < argc; a += 2) {
    uint32_t domid = (uint32_t)strtoul(argv[a], NULL, 10);
    char path[64];
    unsigned int length;
    snprintf(path, sizeof path, "/local/domain/%u/name", domid);
    free(xs_read(xs, XBT_NULL, path, &length));
    xc_domaininfo_t info;
    if (xc_domain_getinfolist(xc, domid, 1, &info) != 1 || info.domain != domid) {
      fprintf(stderr, "xc-pin: no domain %u\n", domid);
      status = 1;
      continue;
    }
    memset(map, 0, (size_t)(cpus + 7) / 8);
    for (int cpu = 0; cpu < cpus; cpu++)
      if (strcmp(argv[a + 1], "all") == 0 || cpu == atoi(argv[a + 1])) map[cpu / 8] |= (uint8_t)(1 << (cpu % 8));
    for (uint32_t vcpu = 0; vcpu <= info.max_vcpu_id; vcpu++)
      if (xc_vcpu_setaffinity(xc, domid, (int)vcpu, map, NULL, XEN_VCPUAFFINITY_HARD) < 0) {
        perror("xc-pin: xc_vcpu_setaffinity");
        status = 1;
      }
  }
  free(map);
  xs_close(xs);
  xc_interface_close(xc);
  return status;
}
