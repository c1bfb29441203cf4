/* Crashes a domain the way its own kernel's panic does (issue 13's lab): a Linux PV kernel that panics
 * asks Xen for SCHEDOP_shutdown with SHUTDOWN_crash; this asks for the same on its behalf
 * (SCHEDOP_remote_shutdown, through xc_domain_shutdown). Xen stops the domain and leaves it "crashed"
 * (xl list: state c) for the toolstack: nothing destroys it, nothing tears its devices down.
 * usage: xc-crash DOMID */
#include <stdio.h>
#include <stdlib.h>
#include <xenctrl.h>

int main(int argc, char **argv) {
  char *end = NULL;
  unsigned long domid = argc == 2 ? strtoul(argv[1], &end, 10) : 0;
  if (argc != 2 || *argv[1] == '\0' || *end != '\0' || domid == 0 || domid >= DOMID_FIRST_RESERVED) {
    fprintf(stderr, "usage: xc-crash DOMID (a domain other than 0)\n");
    return 64;
  }
  xc_interface *xc = xc_interface_open(NULL, NULL, 0);
  if (!xc) {
    perror("xc-crash: xc_interface_open");
    return 1;
  }
  int rc = xc_domain_shutdown(xc, (uint32_t)domid, SHUTDOWN_crash);
  if (rc != 0) perror("xc-crash: xc_domain_shutdown");
  xc_interface_close(xc);
  return rc == 0 ? 0 : 1;
}
