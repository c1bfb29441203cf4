/* The floor of a sample under this Xen (issue 16): one C loop that reads what `iovm monitor --iovm NAME` reads
 * each period once it knows the domains' names, with nothing else: the domains' CPU time (one
 * xc_domain_getinfolist), the IOVM agent's data/iovm/sample node (one xenstore read), and one line to stdout. Its last line is the CPU it used, as a
 * fraction of the wall time: "floor <ratio>".
 * With MODE "wake" it makes no Xen read: it only wakes at each period and prints the line, what any process pays to
 * run at that rate in this dom0 (under TCG, each wake-up switches address spaces through Xen). With MODE "cpu" it makes
 * the hypercall only (what iovm monitor makes at every tick once it reads a sample only after its watch fired).
 * usage: xc-sample DOMID INTERVAL_MS COUNT [reads|wake|cpu] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <xenctrl.h>
#include <xenstore.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu(void) {
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return (double)(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + (double)(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

int main(int argc, char **argv) {
  if (argc != 4 && !(argc == 5 && (strcmp(argv[4], "reads") == 0 || strcmp(argv[4], "wake") == 0 || strcmp(argv[4], "cpu") == 0))) {
    fprintf(stderr, "usage: xc-sample DOMID INTERVAL_MS COUNT [reads|wake|cpu]\n");
    return 64;
  }
  int reads = argc == 4 || strcmp(argv[4], "reads") == 0;
  int hypercall = reads || strcmp(argv[4], "cpu") == 0;
  unsigned int domid = (unsigned int)strtoul(argv[1], NULL, 10);
  double interval = atof(argv[2]) / 1000;
  int count = atoi(argv[3]);
  xc_interface *xc = xc_interface_open(NULL, NULL, 0);
  struct xs_handle *xs = xs_open(XS_OPEN_READONLY);
  if (!xc || !xs) {
    perror("xc-sample: open");
    return 1;
  }
  char sample[80];
  snprintf(sample, sizeof sample, "/local/domain/%u/data/iovm/sample", domid);
  xc_domaininfo_t info[64];
  double start = now(), start_cpu = cpu();
  for (int i = 1; i <= count; i++) {
    struct timespec wait;
    double left = start + i * interval - now();
    if (left > 0) {
      wait.tv_sec = (time_t)left;
      wait.tv_nsec = (long)((left - (double)wait.tv_sec) * 1e9);
      nanosleep(&wait, NULL);
    }
    int n = hypercall ? xc_domain_getinfolist(xc, 0, 64, info) : 0;
    unsigned int length = 0;
    char *text = reads ? xs_read(xs, XBT_NULL, sample, &length) : NULL;
    unsigned long long cpu_ns = 0;
    for (int d = 0; d < n; d++)
      if (info[d].domain == domid) cpu_ns = (unsigned long long)info[d].cpu_time;
    printf("{\"sample\":%d,\"cpuNanoseconds\":%llu,\"bytes\":%u}\n", i, cpu_ns, text ? length : 0);
    fflush(stdout);
    free(text);
  }
  printf("floor %.4f\n", (cpu() - start_cpu) / (now() - start));
  xs_close(xs);
  xc_interface_close(xc);
  return 0;
}
