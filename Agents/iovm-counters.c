/*
 * iovm-counters: the minimal IOVM's counters agent, one process that never forks.
 *
 *   iovm-counters [-i INTERVAL] [-n COUNT] [-p]
 *
 * Publishes what Agents/iovm-counters-agent.sh publishes (the same keys and values, so `iovm monitor`
 * reads either), relative to this domain's /local/domain/<domid>/:
 *
 *   data/iovm/counters/<key>   "<kind> <if> <rx_bytes> <tx_bytes> <rx_packets> <tx_packets>"
 *   data/iovm/agent/seq, interval, uptime, bits
 *
 * and, which the shell agent does not, each vif's notifications (for the batch size, packets per notification):
 *
 *   data/iovm/notifications/<key>   "<if> <count>"
 *
 * and all of the above again in one node, so that a reader needs one request per IOVM rather than one per key
 * (`iovm monitor` samples at up to 10 Hz):
 *
 *   data/iovm/sample   "iovm-sample 1\nseq <n>\ninterval <s>\nuptime <u>\nbits <b>\n"
 *                      + "c <key> <counters value>\n" per interface + "n <key> <notifications value>\n" per vif
 *
 * (uptime only when known). Over SAMPLE_MAX bytes (about 40 interfaces) it is removed instead: readers fall back to
 * the keys above. -p prints its newlines as the two characters \n.
 *
 * <count>: the vif's event-channel interrupts in /proc/interrupts, summed over its queues, its tx and rx channels and
 * every CPU column. netback names them after the vif (drivers/net/xen-netback): <if>-q<n>-tx and <if>-q<n>-rx with
 * split event channels, <if>-q<n> with one (xenbus.c:connect names each queue <if>-q<n>, interface.c:xenvif_connect_data
 * its channels); kernels before multi-queue (3.16) <if>-tx, <if>-rx or <if>. The kernel counts each CPU's column in 32
 * bits: a count that goes backwards wrapped or the vif reconnected. A vif with no such line has no key (unknown, not 0).
 *
 * Each period it reads every interface's statistics from /proc/net/dev with pread(2) on the file it keeps open (one
 * call for up to ~20 interfaces; sysfs would take four per interface and a directory listing), and lists
 * /sys/class/net only when those name other interfaces than its last listing or a counter went back, while a NIC has
 * no ifindex yet, and every REFRESH periods; the root qdiscs' Sent
 * counters with one rtnetlink dump (RTM_GETQDISC: what `tc -s qdisc show` prints) when a NIC's tx moved, and
 * /proc/interrupts when a vif's counters moved (else their last readings stand); and writes in one xenstore
 * transaction over /dev/xen/xenbus (the xenstore wire protocol, no libxenstore) the keys whose value changed since its
 * last successful write, and the sample node. Every REFRESH periods, after a failed write and after a pause (the IOVM
 * or the agent stopped for seconds: xenstore may have been written meanwhile) it reads everything and writes every
 * key. A failed write's removals are made again. A period in which only the clock moved (an idle IOVM) writes the
 * sample alone, one request without a transaction: agent/seq and agent/uptime then keep the values written with the
 * counters they date, and a reader that wants a rate reads the sample. An interface is looked at (its kind, its
 * ifindex; a NIC's ifindex again until it has one) when it first appears under its name and inode. Its CPU time counts against the IOVM's own efficiency, and in a PV
 * domain every system call and every xenstore round trip passes through Xen: this is what an idle period costs (issue
 * 16). The shell agent forks tc and xenstore-write every period; under emulation each fork+exec costs ~0.1 s of the
 * IOVM's CPU.
 *
 * A physical NIC's tx counters come from its root qdisc when it has one (not noqueue): e1000 counts a
 * TSO frame's bytes as segments x the skb's linear part (+4% with netback's skbs); the qdisc counts each
 * segment's real headers. Interfaces: vif<domid>.<n> (not -emu) is a vif; an interface with a device
 * whose bus is not xen/xen-backend is a nic; nothing else is counted. Keys replace '.' and other bytes
 * xenstore paths do not take with '_'. Interfaces that went away are removed.
 *
 * -p prints the writes ("key=value" lines, "rm key") to stdout instead of xenstore: for tests, with
 * SYSFS_NET (default /sys/class/net), PROC_NET_DEV (default /proc/net/dev), PROC_UPTIME (default: CLOCK_BOOTTIME,
 * what /proc/uptime shows) and PROC_INTERRUPTS (default /proc/interrupts) pointing at fake trees.
 * XENBUS overrides /dev/xen/xenbus. Built by `iovm image build` with the host's cc, -static.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/gen_stats.h>
#include <linux/netlink.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define MAX_IFACES 64
#define MAX_ENTRIES (2 * MAX_IFACES + 16) /* everything in /sys/class/net, counted or not (a vif and its -emu tap) */
#define REFRESH 60      /* every REFRESH periods every key is written, changed or not */
#define PREFIX "data/iovm/counters/"
#define NOTIFY_PREFIX "data/iovm/notifications/"
#define KEY_SIZE 96
#define SAMPLE_KEY "data/iovm/sample"
#define SEQ_KEY "data/iovm/agent/seq"
#define UPTIME_KEY "data/iovm/agent/uptime"
#define SAMPLE_MAX 3072 /* xenstore takes 4096 bytes of path and value in one request */

static volatile sig_atomic_t stopping;
#define XS_STOP stopping /* SIGTERM ends a wait for a hung xenstored */
#include "xs-wire.h" /* the xenstore wire protocol: xenbus, xs_request */

/* An entry of /sys/class/net, known by its name and inode: a netdev made again under the same name is a new entry. */
struct iface {
  char name[IFNAMSIZ];
  char key[IFNAMSIZ];
  ino_t ino;
  int nic; /* 1 nic, 0 vif, -1 not counted */
  int ifindex;
  int read_once; /* stats holds a reading */
  int line; /* its line in this period's /proc/net/dev (match), -1 when it has none */
  unsigned long long stats[4]; /* its last reading: rx_bytes, tx_bytes, rx_packets, tx_packets */
  int irq_found; /* irq_count is known */
  unsigned long long irq_count; /* its notifications at the last read of /proc/interrupts */
};

struct qdisc {
  int ifindex;
  unsigned long long bytes, packets;
};

static const char *net_dir = "/sys/class/net";
static const char *net_dev_path = "/proc/net/dev";
static int net_dev_fd = -1;
static const char *uptime_path; /* NULL: CLOCK_BOOTTIME */
static const char *interrupts_path = "/proc/interrupts";
static int print_only;
static uint32_t nl_seq; /* the rtnetlink dumps' sequence */

static void on_signal(int sig) {
  (void)sig;
  stopping = 1;
}

/* read_text: the first line of PATH into BUF (without the newline); -1 when it cannot be read. */
static int read_text(const char *path, char *buf, size_t size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, size - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = 0;
  buf[strcspn(buf, "\n")] = 0;
  return 0;
}

/* One interface's line of /proc/net/dev: its name and its rx_bytes, tx_bytes, rx_packets, tx_packets (the statistics
 * sysfs shows one file each; both are dev_get_stats()). */
struct dev_line {
  char name[IFNAMSIZ];
  unsigned long long stats[4];
};

/* NET_DEV_RECORD: more than one line of /proc/net/dev takes (a name and 16 numbers of at most 20 digits). */
#define NET_DEV_RECORD 512

/* net_dev: every interface's line of /proc/net/dev into LINES (at most MAX), read with pread(2) on the file kept open
 * (the kernel makes the text again from offset 0): usually one system call a period for every interface, where sysfs
 * takes four per interface and a directory listing. A seq_file read returns whole lines, at most its buffer's worth
 * (a page, 4096 bytes or more): a read that came back a line short of 4096 bytes or more is not the end, and the next
 * read goes on from there. The count; -1 when it cannot be read. */
static int net_dev(struct dev_line *lines, int max) {
  static char buf[65536];
  size_t got = 0;
  for (int attempt = 0; attempt < 2; attempt++) {
    if (net_dev_fd < 0 && (net_dev_fd = open(net_dev_path, O_RDONLY | O_CLOEXEC)) < 0) return -1;
    got = 0;
    ssize_t n;
    while ((n = pread(net_dev_fd, buf + got, sizeof buf - 1 - got, (off_t)got)) > 0) {
      got += n;
      if (n + NET_DEV_RECORD <= 4096 || got == sizeof buf - 1) break;
    }
    if (n >= 0 && got > 0) break;
    close(net_dev_fd); /* an error or nothing: open it again once */
    net_dev_fd = -1;
    got = 0;
  }
  if (got == 0) return -1;
  if (got == sizeof buf - 1) { /* more than the buffer (hundreds of netdevs): the whole lines that came */
    char *last = memrchr(buf, '\n', got);
    got = last ? (size_t)(last - buf) + 1 : 0;
  }
  buf[got] = 0;
  int count = 0;
  for (char *line = buf, *next; *line && count < max; line = next) {
    next = line + strcspn(line, "\n");
    if (*next) *next++ = 0;
    char *colon = strchr(line, ':'); /* the two header lines have none: "Inter-|   Receive ...", " face |bytes ..." */
    if (!colon) continue;
    *colon = 0;
    char *name = line + strspn(line, " ");
    if (!*name || strlen(name) >= IFNAMSIZ) continue;
    /* rx: bytes packets errs drop fifo frame compressed multicast; tx: bytes packets ... */
    unsigned long long fields[10];
    char *s = colon + 1, *end;
    int parsed = 0;
    for (; parsed < 10; parsed++) {
      errno = 0;
      fields[parsed] = strtoull(s, &end, 10);
      if (end == s || errno) break;
      s = end;
    }
    if (parsed < 10) continue;
    struct dev_line *out = &lines[count++];
    snprintf(out->name, sizeof out->name, "%s", name);
    out->stats[0] = fields[0];
    out->stats[1] = fields[8];
    out->stats[2] = fields[1];
    out->stats[3] = fields[9];
  }
  return count;
}

/* match: each of the NKNOWN entries' line in LINES (its `line`, -1 when none names it), in one pass. 1 when LINES name
 * exactly the entries of the last listing and no counter of an entry read before went back; 0 when /sys/class/net is to
 * be listed again: a vif added or gone, or a netdev made again under its name (its ifindex, for its qdisc) or its
 * statistics reset. Names are unique on both sides, so equal counts and every entry found are the same names. */
static int match(const struct dev_line *lines, int nlines, struct iface *known, int nknown) {
  int same = nlines == nknown;
  for (int j = 0; j < nknown; j++) {
    struct iface *it = &known[j];
    it->line = -1;
    /* From the entry's own position (/sys/class/net lists in its hash order, /proc/net/dev in the device list's: the
     * first comparison is a guess), at most NKNOWN x NLINES name comparisons. */
    for (int d = 0; d < nlines && it->line < 0; d++)
      if (strcmp(lines[(j + d) % nlines].name, it->name) == 0) it->line = (j + d) % nlines;
    if (it->line < 0) {
      same = 0;
      continue;
    }
    for (int k = 0; it->read_once && k < 4; k++)
      if (lines[it->line].stats[k] < it->stats[k]) same = 0;
  }
  return same;
}

/* kind_of: 1 nic, 0 vif, -1 not counted. */
static int kind_of(const char *name) {
  size_t len = strlen(name);
  if (strncmp(name, "vif", 3) == 0) return (len > 4 && strcmp(name + len - 4, "-emu") == 0) ? -1 : 0;
  char path[512], link[256];
  snprintf(path, sizeof path, "%s/%s/device", net_dir, name);
  if (access(path, F_OK) != 0) return -1;
  snprintf(path, sizeof path, "%s/%s/device/subsystem", net_dir, name);
  ssize_t n = readlink(path, link, sizeof link - 1);
  if (n > 0) {
    link[n] = 0;
    const char *bus = strrchr(link, '/');
    bus = bus ? bus + 1 : link;
    if (strcmp(bus, "xen") == 0 || strcmp(bus, "xen-backend") == 0) return -1;
  }
  return 1;
}

static void read_ifindex(struct iface *it) {
  char path[512], buf[32];
  snprintf(path, sizeof path, "%s/%s/ifindex", net_dir, it->name);
  it->ifindex = read_text(path, buf, sizeof buf) == 0 ? atoi(buf) : 0;
}

/* scan: the entries of /sys/class/net into KNOWN (*NKNOWN of them), those of the last scan kept as they were (kind and
 * ifindex read once, the last reading); the counted ones into COUNTED. Entries that went away are forgotten. */
static int scan(struct iface *known, int *nknown, struct iface **counted) {
  static struct iface next[MAX_ENTRIES];
  static char taken[MAX_ENTRIES];
  DIR *dir = opendir(net_dir);
  if (!dir) return 0;
  memset(taken, 0, sizeof taken);
  int nnext = 0;
  struct dirent *entry;
  while ((entry = readdir(dir)) && nnext < MAX_ENTRIES) {
    /* A regular file is no netdev (bonding's bonding_masters): /proc/net/dev does not name it either. */
    if (entry->d_name[0] == '.' || strlen(entry->d_name) >= IFNAMSIZ || entry->d_type == DT_REG) continue;
    struct iface *it = &next[nnext++];
    int old = -1;
    for (int i = 0; i < *nknown && old < 0; i++)
      if (!taken[i] && known[i].ino == entry->d_ino && strcmp(known[i].name, entry->d_name) == 0) old = i;
    if (old >= 0) {
      *it = known[old];
      taken[old] = 1;
      /* A NIC whose ifindex was not there yet (the class link comes before the attributes): look again. */
      if (it->nic > 0 && it->ifindex <= 0) read_ifindex(it);
      continue;
    }
    memset(it, 0, sizeof *it);
    it->ino = entry->d_ino;
    snprintf(it->name, sizeof it->name, "%s", entry->d_name);
    it->nic = kind_of(entry->d_name);
    if (it->nic < 0) continue;
    for (size_t i = 0; i <= strlen(it->name); i++) {
      char c = it->name[i];
      int keep = !c || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '@' || c == '-';
      it->key[i] = keep ? c : '_';
    }
    read_ifindex(it);
  }
  closedir(dir);
  memcpy(known, next, nnext * sizeof *next);
  *nknown = nnext;
  int count = 0;
  for (int i = 0; i < nnext && count < MAX_IFACES; i++)
    if (known[i].nic >= 0) counted[count++] = &known[i];
  return count;
}

/* root_qdiscs: the Sent counters of every root qdisc but noqueue, by one RTM_GETQDISC dump. */
static int root_qdiscs(int sock, struct qdisc *out, int max) {
  struct {
    struct nlmsghdr nh;
    struct tcmsg tc;
  } req = {.nh = {.nlmsg_len = sizeof req, .nlmsg_type = RTM_GETQDISC, .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP, .nlmsg_seq = ++nl_seq}};
  if (sock < 0 || send(sock, &req, sizeof req, 0) < 0) return 0;
  static char buf[32768];
  int count = 0, done = 0;
  while (!done) {
    ssize_t n = recv(sock, buf, sizeof buf, 0);
    if (n <= 0) break;
    for (struct nlmsghdr *nh = (struct nlmsghdr *)buf; NLMSG_OK(nh, (size_t)n); nh = NLMSG_NEXT(nh, n)) {
      if (nh->nlmsg_type == NLMSG_DONE || nh->nlmsg_type == NLMSG_ERROR) {
        done = 1;
        break;
      }
      if (nh->nlmsg_type != RTM_NEWQDISC || nh->nlmsg_seq != nl_seq) continue;
      struct tcmsg *tc = NLMSG_DATA(nh);
      if (tc->tcm_parent != TC_H_ROOT) continue;
      int noqueue = 0, found = 0;
      unsigned long long bytes = 0, packets = 0;
      int len = nh->nlmsg_len - NLMSG_LENGTH(sizeof *tc);
      for (struct rtattr *a = (struct rtattr *)((char *)tc + NLMSG_ALIGN(sizeof *tc)); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
        if (a->rta_type == TCA_KIND) noqueue = strcmp(RTA_DATA(a), "noqueue") == 0;
        if (a->rta_type == TCA_STATS2) {
          int inner = RTA_PAYLOAD(a);
          for (struct rtattr *s = RTA_DATA(a); RTA_OK(s, inner); s = RTA_NEXT(s, inner)) {
            if (s->rta_type == TCA_STATS_BASIC && RTA_PAYLOAD(s) >= sizeof(struct gnet_stats_basic)) {
              struct gnet_stats_basic basic;
              memcpy(&basic, RTA_DATA(s), sizeof basic);
              bytes = basic.bytes;
              packets = basic.packets;
              found = 1;
            }
          }
        }
      }
      if (found && !noqueue && count < max) out[count++] = (struct qdisc){tc->tcm_ifindex, bytes, packets};
    }
  }
  return count;
}

#define MAX_WRITES (2 * MAX_IFACES + 8)
struct batch {
  char keys[MAX_WRITES][KEY_SIZE];
  char values[MAX_WRITES][160];
  char same[MAX_WRITES]; /* as the last write left it: not written again */
  int count;
};

static void add(struct batch *b, const char *key, const char *value) {
  if (b->count >= MAX_WRITES) return;
  snprintf(b->keys[b->count], sizeof b->keys[0], "%s", key);
  snprintf(b->values[b->count], sizeof b->values[0], "%s", value);
  b->same[b->count] = 0;
  b->count++;
}

/* unchanged: marks the keys of B whose value is the one LAST (the last period's batch, once written) holds. Keys come in
 * the same order each period, so the same index is tried first. */
static void unchanged(struct batch *b, const struct batch *last) {
  for (int i = 0; i < b->count; i++) {
    int j = i < last->count && strcmp(last->keys[i], b->keys[i]) == 0 ? i : -1;
    for (int k = 0; k < last->count && j < 0; k++)
      if (strcmp(last->keys[k], b->keys[i]) == 0) j = k;
    b->same[i] = j >= 0 && strcmp(last->values[j], b->values[i]) == 0;
  }
}

/* clock_only: when B changes nothing but the per-key clock (agent/seq, agent/uptime), those two keep the values LAST
 * wrote: they date the counters written with them, and the sample alone says this period, in one request. */
static void clock_only(struct batch *b, const struct batch *last) {
  for (int i = 0; i < b->count; i++)
    if (!b->same[i] && strcmp(b->keys[i], SEQ_KEY) != 0 && strcmp(b->keys[i], UPTIME_KEY) != 0) return;
  for (int i = 0; i < b->count; i++)
    for (int j = 0; j < last->count && !b->same[i]; j++)
      if (strcmp(last->keys[j], b->keys[i]) == 0) {
        snprintf(b->values[i], sizeof b->values[i], "%s", last->values[j]);
        b->same[i] = 1;
      }
}

/* publish: the batch's writes (but those marked same), SAMPLE (when not NULL) as SAMPLE_KEY, and the removals of
 * REMOVED's keys, in one transaction (retried on EAGAIN); one request alone (an idle period's sample) goes without a
 * transaction, which would cost two more round trips. -p prints "transaction" and "commit" around a transaction's. */
static int publish(struct batch *b, const char *sample, char removed[][KEY_SIZE], int nremoved) {
  int requests = nremoved + (sample != NULL);
  for (int i = 0; i < b->count; i++) requests += !b->same[i];
  if (print_only) {
    if (requests > 1) printf("transaction\n");
    for (int i = 0; i < b->count; i++)
      if (!b->same[i]) printf("%s=%s\n", b->keys[i], b->values[i]);
    if (sample) {
      printf("%s=", SAMPLE_KEY);
      for (const char *c = sample; *c; c++) fputs(*c == '\n' ? "\\n" : (char[]){*c, 0}, stdout);
      printf("\n");
    }
    for (int i = 0; i < nremoved; i++) printf("rm %s\n", removed[i]);
    if (requests > 1) printf("commit\n");
    fflush(stdout);
    return 0;
  }
  for (int attempt = 0; attempt < 5; attempt++) {
    char reply[64], payload[512];
    uint32_t tx = 0;
    if (requests > 1) {
      if (xs_request(XS_TRANSACTION_START, 0, "", 1, reply, sizeof reply) < 0) return -1;
      tx = (uint32_t)strtoul(reply, NULL, 10);
    }
    int failed = 0;
    for (int i = 0; i < b->count && !failed; i++) {
      if (b->same[i]) continue;
      size_t klen = strlen(b->keys[i]) + 1, vlen = strlen(b->values[i]);
      memcpy(payload, b->keys[i], klen);
      memcpy(payload + klen, b->values[i], vlen);
      failed = xs_request(XS_WRITE, tx, payload, klen + vlen, NULL, 0) < 0;
    }
    if (sample && !failed) {
      static char big[sizeof SAMPLE_KEY + SAMPLE_MAX + 1];
      size_t vlen = strlen(sample);
      memcpy(big, SAMPLE_KEY, sizeof SAMPLE_KEY);
      memcpy(big + sizeof SAMPLE_KEY, sample, vlen);
      failed = xs_request(XS_WRITE, tx, big, sizeof SAMPLE_KEY + vlen, NULL, 0) < 0;
    }
    for (int i = 0; i < nremoved && !failed; i++) {
      snprintf(payload, sizeof payload, "%s", removed[i]);
      xs_request(XS_RM, tx, payload, strlen(payload) + 1, NULL, 0); /* ENOENT is fine */
    }
    if (requests <= 1) return failed ? -1 : 0;
    char end_reply[32];
    int ended = xs_request(XS_TRANSACTION_END, tx, failed ? "F" : "T", 2, end_reply, sizeof end_reply);
    if (failed) return -1;
    if (ended == 0) return 0;
    if (strcmp(end_reply, "EAGAIN") != 0) return -1;
  }
  return -1;
}

/* is_vif_irq: whether the interrupt action NAME (LEN bytes) is one of the event channels netback names after vif IF:
 * IF, IF-tx, IF-rx, IF-q<n>, IF-q<n>-tx, IF-q<n>-rx. */
static int is_vif_irq(const char *name, size_t len, const char *ifname) {
  size_t n = strlen(ifname);
  if (len < n || memcmp(name, ifname, n) != 0) return 0;
  const char *s = name + n, *end = name + len;
  if (end - s >= 3 && s[0] == '-' && s[1] == 'q' && s[2] >= '0' && s[2] <= '9')
    for (s += 2; s < end && *s >= '0' && *s <= '9'; s++) {}
  return s == end || (end - s == 3 && (memcmp(s, "-tx", 3) == 0 || memcmp(s, "-rx", 3) == 0));
}

/* irq_line: one line of /proc/interrupts: `N: <count per CPU> <chip> ... <action>[, <action>]`. Its counts (the first
 * CPUS numbers, all of them when the header gave none) go to each vif one of its actions belongs to. */
static void irq_line(char *line, int cpus, struct iface **ifaces, int n) {
  char *s = line + strspn(line, " ");
  if (*s < '0' || *s > '9') return; /* NMI:, LOC:, ERR: ... are not a device's */
  s += strspn(s, "0123456789");
  if (*s != ':' || !strstr(s, "vif")) return;
  s++;
  unsigned long long total = 0;
  for (int column = 0; cpus == 0 || column < cpus; column++) {
    s += strspn(s, " ");
    if (*s < '0' || *s > '9') break;
    char *end;
    total += strtoull(s, &end, 10);
    s = end;
  }
  while (*s) {
    s += strspn(s, " ,\t");
    size_t len = strcspn(s, " ,\t");
    if (len > 3 && memcmp(s, "vif", 3) == 0)
      for (int i = 0; i < n; i++)
        if (!ifaces[i]->nic && is_vif_irq(s, len, ifaces[i]->name)) {
          ifaces[i]->irq_count += total;
          ifaces[i]->irq_found = 1;
        }
    s += len;
  }
}

/* notifications: each vif's event-channel interrupts (its irq_count, irq_found when it has any) from /proc/interrupts,
 * read with read(2) a buffer at a time; when it cannot be read, no vif's count is known. */
static void notifications(struct iface **ifaces, int n) {
  int vifs = 0;
  for (int i = 0; i < n; i++) {
    ifaces[i]->irq_count = 0;
    ifaces[i]->irq_found = 0;
    vifs += !ifaces[i]->nic;
  }
  if (!vifs) return;
  int fd = open(interrupts_path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  static char buf[16384];
  size_t have = 0;
  int cpus = -1, skipping = 0, done = 0;
  while (!done) {
    ssize_t got = read(fd, buf + have, sizeof buf - 1 - have);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) { /* the end: a last line without its newline is a line */
      done = 1;
      if (have == 0) break;
      buf[have++] = '\n';
    } else {
      have += got;
    }
    char *line = buf, *newline;
    while ((newline = memchr(line, '\n', buf + have - line))) {
      *newline = 0;
      if (skipping) {
        skipping = 0;
      } else if (cpus < 0 && !strchr(line, ':')) { /* the header: CPU0 CPU1 ... */
        cpus = 0;
        for (char *c = line; (c = strstr(c, "CPU")); c += 3) cpus++;
      } else {
        if (cpus < 0) cpus = 0; /* no header: every number after N: is a count */
        irq_line(line, cpus, ifaces, n);
      }
      line = newline + 1;
    }
    size_t rest = buf + have - line;
    if (rest == sizeof buf - 1) { /* a line longer than the buffer: left out */
      skipping = 1;
      rest = 0;
    }
    memmove(buf, line, rest);
    have = rest;
  }
  close(fd);
}

/* removals: the keys of PREVIOUS (under PREFIX) not in CURRENT, appended to REMOVED. */
static void removals(char previous[][IFNAMSIZ], int nprevious, char current[][IFNAMSIZ], int ncurrent, const char *prefix,
                     char removed[][KEY_SIZE], int *nremoved) {
  for (int i = 0; i < nprevious; i++) {
    int still = 0;
    for (int j = 0; j < ncurrent && !still; j++) still = strcmp(previous[i], current[j]) == 0;
    if (!still) snprintf(removed[(*nremoved)++], KEY_SIZE, "%s%s", prefix, previous[i]);
  }
}

/* uptime_now: the domain's uptime, as /proc/uptime shows it (CLOCK_BOOTTIME), without a file to read. */
static double uptime_now(void) {
  if (uptime_path) {
    char buf[64];
    if (read_text(uptime_path, buf, sizeof buf) < 0) return -1;
    return strtod(buf, NULL);
  }
  struct timespec now;
  if (clock_gettime(CLOCK_BOOTTIME, &now) != 0) return -1;
  return now.tv_sec + now.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  double interval = 1;
  long count = 0;
  int opt;
  while ((opt = getopt(argc, argv, "i:n:ph")) != -1) {
    switch (opt) {
    case 'i': interval = strtod(optarg, NULL); break;
    case 'n': count = strtol(optarg, NULL, 10); break;
    case 'p': print_only = 1; break;
    default: fprintf(stderr, "usage: %s [-i INTERVAL] [-n COUNT] [-p]\n", argv[0]); return 64;
    }
  }
  if (!(interval > 0)) {
    fprintf(stderr, "iovm-counters: bad interval\n");
    return 64;
  }
  if (getenv("SYSFS_NET")) net_dir = getenv("SYSFS_NET");
  if (getenv("PROC_UPTIME")) uptime_path = getenv("PROC_UPTIME");
  if (getenv("PROC_INTERRUPTS")) interrupts_path = getenv("PROC_INTERRUPTS");
  if (getenv("PROC_NET_DEV")) net_dev_path = getenv("PROC_NET_DEV");
  const char *xenbus_path = getenv("XENBUS") ? getenv("XENBUS") : "/dev/xen/xenbus";
  if (!print_only && (xenbus = open(xenbus_path, O_RDWR | O_CLOEXEC)) < 0) {
    fprintf(stderr, "iovm-counters: %s: %s\n", xenbus_path, strerror(errno));
    return 69;
  }
  int nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  struct utsname uts;
  const char *bits = (uname(&uts) == 0 && strstr(uts.machine, "64")) ? "64" : "32";
  char interval_text[32];
  snprintf(interval_text, sizeof interval_text, "%g", interval);

  static struct iface known[MAX_ENTRIES], *ifaces[MAX_IFACES];
  int nknown = 0;
  static char previous[MAX_IFACES][IFNAMSIZ], previous_notified[MAX_IFACES][IFNAMSIZ], removed[2 * MAX_IFACES + 1][KEY_SIZE];
  int nprevious = 0, nprevious_notified = 0;
  static struct qdisc qdiscs[MAX_IFACES]; /* the last dump's root qdiscs */
  int nq = 0, n = 0; /* n: the counted interfaces, in ifaces, as the last listing found them */
  struct timespec next;
  clock_gettime(CLOCK_MONOTONIC, &next);
  for (long seq = 1; !stopping; seq++) {
    static struct batch b, last; /* LAST: what the last successful write left in xenstore */
    b.count = 0;
    /* A full period writes every key, and reads /proc/interrupts and the qdiscs whatever moved: every REFRESH periods,
     * after a failed write, after a pause. */
    int full = seq % REFRESH == 1 || last.count == 0;
    double before = uptime_now();
    /* The statistics first: what they say moved decides what else is read. A vif that moved may have new
     * notifications; a NIC whose tx moved, new qdisc counters. What did not move keeps its last reading (a vif's
     * notification without a packet, or a qdisc's packet the driver dropped, shows in the next period that moves, or
     * the next full one). */
    static struct dev_line dev[MAX_ENTRIES];
    int ndev = net_dev(dev, MAX_ENTRIES);
    /* /proc/net/dev cannot be read: this period publishes nothing (rather than remove every interface's keys). */
    if (ndev < 0) {
      fprintf(stderr, "iovm-counters: %s cannot be read\n", net_dev_path);
      goto sleep;
    }
    /* /sys/class/net is listed again in a full period, when /proc/net/dev names other interfaces than the last listing
     * (a vif added or gone) or an interface's counters went back (a netdev made again under the same name: its
     * ifindex, for its qdisc), and after a period that saw a NIC without its ifindex yet. */
    static int relist;
    if (!match(dev, ndev, known, nknown) || full || relist) {
      n = scan(known, &nknown, ifaces);
      match(dev, ndev, known, nknown);
    }
    relist = 0;
    int vif_moved = 0, nic_tx_moved = 0;
    for (int i = 0; i < n; i++) {
      struct iface *it = ifaces[i];
      if (it->line < 0) continue;
      const unsigned long long *now = dev[it->line].stats;
      relist |= it->nic && it->ifindex <= 0;
      if (it->nic)
        nic_tx_moved |= !it->read_once || it->stats[1] != now[1] || it->stats[3] != now[3];
      else
        vif_moved |= !it->read_once || memcmp(it->stats, now, sizeof it->stats) != 0;
      memcpy(it->stats, now, sizeof it->stats);
      it->read_once = 1;
    }
    if (full || nic_tx_moved) nq = root_qdiscs(nl, qdiscs, MAX_IFACES);
    if (full || vif_moved) notifications(ifaces, n);
    char current[MAX_IFACES][IFNAMSIZ], notified[MAX_IFACES][IFNAMSIZ];
    int ncurrent = 0, nnotified = 0;
    /* The sample's interface lines, appended as the keys are added; the header goes in front at the end. */
    static char lines[SAMPLE_MAX + 1];
    size_t nlines = 0;
    int overflow = 0;
    for (int i = 0; i < n; i++) {
      struct iface *it = ifaces[i];
      if (it->line < 0) continue;
      unsigned long long rxb = it->stats[0], txb = it->stats[1], rxp = it->stats[2], txp = it->stats[3];
      for (int q = 0; it->nic && q < nq; q++)
        if (qdiscs[q].ifindex == it->ifindex && it->ifindex > 0) {
          txb = qdiscs[q].bytes;
          txp = qdiscs[q].packets;
        }
      char key[96], value[160];
      snprintf(key, sizeof key, PREFIX "%s", it->key);
      snprintf(value, sizeof value, "%s %s %llu %llu %llu %llu", it->nic ? "nic" : "vif", it->name, rxb, txb, rxp, txp);
      add(&b, key, value);
      memcpy(current[ncurrent++], it->key, IFNAMSIZ);
      int w = snprintf(lines + nlines, sizeof lines - nlines, "c %s %s\n", it->key, value);
      if (w < 0 || (size_t)w >= sizeof lines - nlines) overflow = 1; else nlines += w;
      if (!it->nic && it->irq_found) {
        snprintf(key, sizeof key, NOTIFY_PREFIX "%s", it->key);
        snprintf(value, sizeof value, "%s %llu", it->name, it->irq_count);
        add(&b, key, value);
        memcpy(notified[nnotified++], it->key, IFNAMSIZ);
        w = overflow ? -1 : snprintf(lines + nlines, sizeof lines - nlines, "n %s %s\n", it->key, value);
        if (w < 0 || (size_t)w >= sizeof lines - nlines) overflow = 1; else nlines += w;
      }
    }
    double after = uptime_now();
    char text[32];
    snprintf(text, sizeof text, "%ld", seq);
    add(&b, SEQ_KEY, text);
    add(&b, "data/iovm/agent/interval", interval_text);
    if (before >= 0 && after >= 0) {
      snprintf(text, sizeof text, "%.2f", (before + after) / 2);
      add(&b, UPTIME_KEY, text);
    }
    add(&b, "data/iovm/agent/bits", bits);
    static char sample[SAMPLE_MAX + 1];
    int head = snprintf(sample, sizeof sample, "iovm-sample 1\nseq %ld\ninterval %s\n", seq, interval_text);
    if (before >= 0 && after >= 0) head += snprintf(sample + head, sizeof sample - head, "uptime %.2f\n", (before + after) / 2);
    head += snprintf(sample + head, sizeof sample - head, "bits %s\n", bits);
    if (!overflow && (size_t)head + nlines < sizeof sample) {
      memcpy(sample + head, lines, nlines);
      sample[head + nlines] = 0;
    } else {
      overflow = 1;
    }
    int nremoved = 0;
    removals(previous, nprevious, current, ncurrent, PREFIX, removed, &nremoved);
    removals(previous_notified, nprevious_notified, notified, nnotified, NOTIFY_PREFIX, removed, &nremoved);
    if (overflow) snprintf(removed[nremoved++], KEY_SIZE, "%s", SAMPLE_KEY);
    if (!full) {
      unchanged(&b, &last);
      if (!overflow && nremoved == 0) clock_only(&b, &last);
    }
    /* A lost connection was closed (xs-wire.h): opened again, and this period writes everything (last.count 0). */
    if (!print_only && xenbus < 0 && (xenbus = open(xenbus_path, O_RDWR | O_CLOEXEC)) < 0)
      fprintf(stderr, "iovm-counters: %s: %s\n", xenbus_path, strerror(errno));
    if (publish(&b, overflow ? NULL : sample, removed, nremoved) < 0) {
      fprintf(stderr, "iovm-counters: xenstore write failed\n");
      last.count = 0; /* the next period writes every key, and removes again what this one should have */
    } else {
      last = b;
      memcpy(previous, current, sizeof current);
      nprevious = ncurrent;
      memcpy(previous_notified, notified, sizeof notified);
      nprevious_notified = nnotified;
    }
  sleep:
    if (count > 0 && seq >= count) break;
    long step = (long)(interval * 1e9);
    next.tv_sec += step / 1000000000L;
    next.tv_nsec += step % 1000000000L;
    if (next.tv_nsec >= 1000000000L) {
      next.tv_sec++;
      next.tv_nsec -= 1000000000L;
    }
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec > next.tv_sec + 2) { /* far behind (a paused IOVM, a stopped agent): do not catch up */
      next = now;
      last.count = 0; /* and do not trust what xenstore holds: it may have been written meanwhile */
    }
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR && !stopping) {}
  }
  return 0;
}
