/*
 * iovm-vif (static): the minimal IOVM's vif hotplug program, one process that starts no other.
 *
 *   iovm-vif online|offline|add|remove [type_if=vif]
 *
 * The contract of Agents/iovm-vif, the shell script the stock IOVM runs (read its header): `xl devd` (libxl) in the
 * IOVM runs it for each guest vif the IOVM backs, with XENBUS_PATH (backend/vif/<guest domid>/<devid>, relative to this
 * domain's /local/domain/<domid>/) and vif (vif<domid>.<devid>) in the environment.
 *
 *   online   puts the vif in the bridge named by $XENBUS_PATH/bridge and brings it up (one RTM_NEWLINK, what
 *            `ip link set dev <vif> master <bridge> up` sends), then writes $XENBUS_PATH/iovm-hotplug =
 *            "online <start> <end>" (this domain's uptime when it began and when the link was set) and
 *            $XENBUS_PATH/hotplug-status = connected, in that order: netback connects the vif on the second.
 *            On failure: hotplug-error = the reason, then hotplug-status = error; exit 1.
 *   offline  takes the vif out of its bridge and down if it still exists (errors ignored).
 *   add, remove  udev-style calls: nothing to do for a vif.
 *
 * Why a program: the script starts sh, xenstore-read, ip and xenstore-write, and in the minimal IOVM the last three are
 * dynamically linked. Under emulation each such start costs the IOVM tenths of a second while the guest has no network
 * (issue 13: a recovered IOVM's vifs connect after its hotplug). This one talks to xenstore over /dev/xen/xenbus (the
 * wire protocol, as Agents/iovm-counters.c does) and to the kernel over rtnetlink. It logs one line per call to
 * /var/log/xen/iovm-vif.log when that directory exists, as the script does.
 *
 * For tests: IOVM_VIF_STORE=DIR makes xenstore a directory tree (the value of key K is the file DIR/K) and prints each
 * link change ("link <vif> master <bridge> up", "link <vif> nomaster down") instead of making it; IOVM_VIF_LINK_ERROR
 * then makes the link change fail with that text. PROC_UPTIME, IOVM_VIF_LOG and XENBUS override the defaults.
 * Built by `iovm image build` with the host's cc, -static.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "xs-wire.h" /* the xenstore wire protocol: xenbus, xs_request */

static const char *store_dir; /* tests: a directory tree for xenstore */
static char start[32] = "?", command[16], xenbus_path[256], vif[IFNAMSIZ + 16];
static const char *log_path = "/var/log/xen/iovm-vif.log";

/* uptime: the first field of /proc/uptime (PROC_UPTIME), as the script reads it; "?" when it cannot be read. */
static void uptime(char *out, size_t size) {
  const char *path = getenv("PROC_UPTIME") ? getenv("PROC_UPTIME") : "/proc/uptime";
  snprintf(out, size, "?");
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  char buf[64];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return;
  buf[n] = 0;
  buf[strcspn(buf, " \n")] = 0;
  if (buf[0]) snprintf(out, size, "%s", buf);
}

static void say(const char *text) {
  int fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return;
  dprintf(fd, "%s iovm-vif %s %s %s: %s\n", start, command, xenbus_path[0] ? xenbus_path : "?", vif[0] ? vif : "?", text);
  close(fd);
}

/* store_path: KEY's file under store_dir (tests). */
static void store_path(char *out, size_t size, const char *key) { snprintf(out, size, "%s/%s", store_dir, key); }

/* xs_read: KEY's value into OUT; -1 when it has none. */
static int xs_read(const char *key, char *out, size_t size) {
  if (store_dir) {
    char path[1024];
    store_path(path, sizeof path, key);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = read(fd, out, size - 1);
    close(fd);
    if (n < 0) return -1;
    out[n] = 0;
    return 0;
  }
  return xs_request(XS_READ, 0, key, strlen(key) + 1, out, size);
}

/* xs_write: KEY = VALUE; -1 when it failed. */
static int xs_write(const char *key, const char *value) {
  if (store_dir) {
    char path[1024];
    store_path(path, sizeof path, key);
    for (char *slash = strchr(path + strlen(store_dir) + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
      *slash = 0;
      mkdir(path, 0755);
      *slash = '/';
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    int ok = write(fd, value, strlen(value)) == (ssize_t)strlen(value);
    close(fd);
    return ok ? 0 : -1;
  }
  char payload[1024];
  size_t klen = strlen(key) + 1, vlen = strlen(value);
  if (klen + vlen > sizeof payload) return -1;
  memcpy(payload, key, klen);
  memcpy(payload + klen, value, vlen);
  return xs_request(XS_WRITE, 0, payload, klen + vlen, NULL, 0);
}

/* set_link: VIF into BRIDGE and up (BRIDGE NULL: out of its bridge and down), by one RTM_NEWLINK; 0, or -1 with the
 * reason in WHY. */
static int set_link(const char *bridge, char *why, size_t size) {
  if (store_dir) {
    const char *error = getenv("IOVM_VIF_LINK_ERROR");
    if (error && *error) {
      snprintf(why, size, "%s", error);
      return -1;
    }
    if (bridge) printf("link %s master %s up\n", vif, bridge); else printf("link %s nomaster down\n", vif);
    fflush(stdout);
    return 0;
  }
  unsigned index = if_nametoindex(vif), master = 0;
  if (!index) {
    snprintf(why, size, "Cannot find device \"%s\"", vif);
    return -1;
  }
  if (bridge && !(master = if_nametoindex(bridge))) {
    snprintf(why, size, "Cannot find device \"%s\"", bridge);
    return -1;
  }
  struct {
    struct nlmsghdr nh;
    struct ifinfomsg ifi;
    struct rtattr master_attr;
    uint32_t master;
  } req;
  memset(&req, 0, sizeof req);
  req.nh.nlmsg_len = sizeof req;
  req.nh.nlmsg_type = RTM_NEWLINK;
  req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  req.nh.nlmsg_seq = 1;
  req.ifi.ifi_family = AF_UNSPEC;
  req.ifi.ifi_index = (int)index;
  req.ifi.ifi_change = IFF_UP;
  req.ifi.ifi_flags = bridge ? IFF_UP : 0;
  req.master_attr.rta_type = IFLA_MASTER;
  req.master_attr.rta_len = RTA_LENGTH(sizeof req.master);
  req.master = master;
  int sock = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (sock < 0 || send(sock, &req, sizeof req, 0) < 0) {
    snprintf(why, size, "rtnetlink: %s", strerror(errno));
    if (sock >= 0) close(sock);
    return -1;
  }
  char buf[1024];
  ssize_t n = recv(sock, buf, sizeof buf, 0);
  close(sock);
  struct nlmsghdr *nh = (struct nlmsghdr *)buf;
  if (n < (ssize_t)NLMSG_LENGTH(sizeof(struct nlmsgerr)) || nh->nlmsg_type != NLMSG_ERROR) {
    snprintf(why, size, "rtnetlink: no answer");
    return -1;
  }
  struct nlmsgerr *err = NLMSG_DATA(nh);
  if (err->error) {
    snprintf(why, size, "%s", strerror(-err->error));
    return -1;
  }
  return 0;
}

static void fail(const char *reason) {
  char key[512];
  char line[700];
  snprintf(line, sizeof line, "error: %s", reason);
  say(line);
  snprintf(key, sizeof key, "%s/hotplug-error", xenbus_path);
  xs_write(key, reason);
  snprintf(key, sizeof key, "%s/hotplug-status", xenbus_path);
  xs_write(key, "error");
  exit(1);
}

int main(int argc, char **argv) {
  uptime(start, sizeof start);
  snprintf(command, sizeof command, "%s", argc > 1 ? argv[1] : "");
  if (getenv("IOVM_VIF_LOG")) log_path = getenv("IOVM_VIF_LOG");
  if (!strcmp(command, "add") || !strcmp(command, "remove")) return 0;
  if (strcmp(command, "online") && strcmp(command, "offline")) {
    fprintf(stderr, "usage: %s online|offline type_if=vif (with XENBUS_PATH and vif set)\n", argv[0]);
    return 64;
  }
  const char *path = getenv("XENBUS_PATH");
  if (!path || !*path || strlen(path) >= sizeof xenbus_path) {
    fprintf(stderr, "iovm-vif: XENBUS_PATH is not set (run by xl devd / libxl)\n");
    return 64;
  }
  snprintf(xenbus_path, sizeof xenbus_path, "%s", path);
  /* vif<domid>.<devid> from backend/vif/<domid>/<devid> when libxl did not pass it. */
  if (getenv("vif") && *getenv("vif")) {
    snprintf(vif, sizeof vif, "%s", getenv("vif"));
  } else {
    const char *ids = strncmp(path, "backend/vif/", 12) == 0 ? path + 12 : path;
    const char *slash = strchr(ids, '/');
    snprintf(vif, sizeof vif, "vif%.*s.%s", slash ? (int)(slash - ids) : (int)strlen(ids), ids, slash ? slash + 1 : "");
  }
  char why[256];
  store_dir = getenv("IOVM_VIF_STORE");
  if (!strcmp(command, "offline")) {
    set_link(NULL, why, sizeof why);
    say("done");
    return 0;
  }
  if (!store_dir) {
    const char *device = getenv("XENBUS") ? getenv("XENBUS") : "/dev/xen/xenbus";
    if ((xenbus = open(device, O_RDWR | O_CLOEXEC)) < 0) {
      fprintf(stderr, "iovm-vif: %s: %s\n", device, strerror(errno));
      say("error: no xenstore");
      return 1;
    }
  }
  char key[512], bridge[IFNAMSIZ + 1] = "", value[64];
  snprintf(key, sizeof key, "%s/bridge", xenbus_path);
  char read_value[256];
  if (xs_read(key, read_value, sizeof read_value) == 0) {
    read_value[strcspn(read_value, "\n")] = 0;
    if (strlen(read_value) < sizeof bridge) snprintf(bridge, sizeof bridge, "%s", read_value);
  }
  if (!bridge[0]) {
    snprintf(why, sizeof why, "no bridge in %s/bridge", xenbus_path);
    fail(why);
  }
  if (set_link(bridge, why, sizeof why) < 0) {
    char reason[512];
    snprintf(reason, sizeof reason, "ip link set dev %s master %s up: %s", vif, bridge, why);
    fail(reason);
  }
  char end[32];
  uptime(end, sizeof end);
  char line[128];
  snprintf(line, sizeof line, "in %s (%s-%s s)", bridge, start, end);
  say(line);
  snprintf(key, sizeof key, "%s/iovm-hotplug", xenbus_path);
  snprintf(value, sizeof value, "online %s %s", start, end);
  if (xs_write(key, value) < 0) fail("cannot write iovm-hotplug");
  snprintf(key, sizeof key, "%s/hotplug-status", xenbus_path);
  if (xs_write(key, "connected") < 0) fail("cannot write hotplug-status");
  return 0;
}
