/*
 * iovm-load: the guest's load agent for `iovm experiment`, one process that forks only to run iperf3.
 *
 *   iovm-load [-s SOCKET] [-b IPERF3] [-t TMPDIR] [-1]
 *
 * dom0 drives the guest's workload through xenstore, relative to this domain's /local/domain/<domid>/:
 *
 *   data/iovm/load/ready     "1 <pid>"                  the agent, at start (protocol version 1)
 *   data/iovm/load/request   "<id> <arg> <arg> ..."     dom0: run iperf3 with these arguments (single spaces,
 *                                                       no quoting: an argument never holds a space)
 *   data/iovm/load/cancel    "<id>"                     dom0: stop request <id> (SIGTERM, SIGKILL 2 s later)
 *   data/iovm/load/status    "running <id>", then "done <id>"
 *   data/iovm/load/result/   id, rc (exit status, or 128 + signal), chunks (N), 0 .. N-1 (iperf3's stdout in
 *                            pieces of at most 1024 bytes; at most 64, then truncated = 1), stderr (its last
 *                            1024 bytes)
 *
 * A request runs when its id differs from the last one handled. At start the last one handled is the id of
 * `status` = "done <id>": a restarted agent does not run a finished request again (one it was running when
 * it died runs again). The result and `status` = "done <id>" are written in one transaction (retried on
 * EAGAIN), so a result is complete once dom0 reads done.
 *
 * Waiting for a request: an XS_WATCH on data/iovm/load/request, blocking on the watch events (xenstored
 * sends one when the watch is set, then one per write) and reading the request again on each; if the watch
 * cannot be set, the request is read every 200 ms instead. While iperf3 runs the agent polls every 200 ms:
 * waitpid(WNOHANG) and data/iovm/load/cancel. iperf3's stdout and stderr go to unlinked files in TMPDIR.
 *
 * Speaks the xenstore wire protocol over /dev/xen/xenbus (no libxenstore: Agents/xs-wire.h, as the IOVM's programs do);
 * -s connects to a xenstored Unix socket (the same protocol) instead, for tests. -b names the iperf3 binary
 * (default /usr/bin/iperf3), -t the directory for its output (default /tmp), -1 handles one request and
 * exits. Built static by `iovm image load-agent` and lab/build with the host's cc.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LOAD "data/iovm/load/"
#define CHUNK 1024       /* bytes of stdout per result/<n>: xenstored limits a guest's node (data, permissions and
                          * children's names) to 2048 bytes (its entry-size quota), whatever the 4096-byte payload */
#define MAX_CHUNKS 64    /* at most 64 KiB of stdout; iperf3 -J -i 0 prints a few KB */
#define STDERR_TAIL 1024 /* the last bytes of stderr kept in result/stderr */
#define MAX_ARGS 64
#define PAYLOAD_MAX XS_PAYLOAD_MAX

#define XS_LOST_IS_FATAL "iovm-load" /* nothing to do without xenstore */
#include "xs-wire.h" /* the xenstore wire protocol: xenbus, xs_request, xs_message */

static void sleep_poll(void) {
  struct timespec poll = {0, 200 * 1000 * 1000};
  while (nanosleep(&poll, &poll) < 0 && errno == EINTR) {}
}

static int xs_read(const char *path, char *value, size_t size) {
  return xs_request(XS_READ, 0, path, strlen(path) + 1, value, size);
}

static int xs_write(uint32_t tx, const char *path, const char *value, size_t len) {
  char payload[PAYLOAD_MAX];
  size_t plen = strlen(path) + 1;
  if (plen + len > sizeof payload) return -1;
  memcpy(payload, path, plen);
  memcpy(payload + plen, value, len);
  return xs_request(XS_WRITE, tx, payload, plen + len, NULL, 0);
}

__attribute__((format(printf, 3, 4))) static int xs_printf(uint32_t tx, const char *path, const char *format, ...) {
  char value[128];
  va_list args;
  va_start(args, format);
  vsnprintf(value, sizeof value, format, args);
  va_end(args);
  return xs_write(tx, path, value, strlen(value));
}

static void xs_rm(uint32_t tx, const char *path) {
  xs_request(XS_RM, tx, path, strlen(path) + 1, NULL, 0); /* ENOENT is fine */
}

/* in_transaction: BODY's writes in one transaction, started again (up to 10 times) when xenstore answers
 * EAGAIN (another writer committed first). */
static int in_transaction(int (*body)(uint32_t tx, const void *arg), const void *arg) {
  for (int attempt = 0; attempt < 10; attempt++) {
    char reply[64];
    if (xs_request(XS_TRANSACTION_START, 0, "", 1, reply, sizeof reply) < 0) return -1;
    uint32_t tx = (uint32_t)strtoul(reply, NULL, 10);
    int failed = body(tx, arg) < 0;
    int ended = xs_request(XS_TRANSACTION_END, tx, failed ? "F" : "T", 2, reply, sizeof reply);
    if (failed) return -1;
    if (ended == 0) return 0;
    if (strcmp(reply, "EAGAIN") != 0) return -1;
  }
  return -1;
}

/* parse_id: the decimal id that starts TEXT; what follows it (past one space), or NULL when there is none. */
static char *parse_id(char *text, unsigned long long *id) {
  char *end;
  if (text[0] < '0' || text[0] > '9') return NULL;
  errno = 0;
  *id = strtoull(text, &end, 10);
  if (errno || (*end && *end != ' ' && *end != '\n')) return NULL;
  return *end ? end + 1 : end;
}

/* What a request came to: iperf3's exit and its output (or the agent's own message on stderr). */
struct outcome {
  unsigned long long id;
  int rc;
  const char *out, *err;
  size_t out_len, err_len;
  int truncated;
};

static int write_running(uint32_t tx, const void *arg) {
  xs_rm(tx, LOAD "result");
  return xs_printf(tx, LOAD "status", "running %llu", *(const unsigned long long *)arg);
}

static int write_result(uint32_t tx, const void *arg) {
  const struct outcome *o = arg;
  int chunks = (int)((o->out_len + CHUNK - 1) / CHUNK);
  xs_rm(tx, LOAD "result");
  if (xs_printf(tx, LOAD "result/id", "%llu", o->id) < 0 || xs_printf(tx, LOAD "result/rc", "%d", o->rc) < 0
      || xs_printf(tx, LOAD "result/chunks", "%d", chunks) < 0)
    return -1;
  for (int i = 0; i < chunks; i++) {
    char path[64];
    size_t at = (size_t)i * CHUNK, len = o->out_len - at < CHUNK ? o->out_len - at : CHUNK;
    snprintf(path, sizeof path, LOAD "result/%d", i);
    if (xs_write(tx, path, o->out + at, len) < 0) return -1;
  }
  if (o->truncated && xs_printf(tx, LOAD "result/truncated", "1") < 0) return -1;
  if (xs_write(tx, LOAD "result/stderr", o->err, o->err_len) < 0) return -1;
  return xs_printf(tx, LOAD "status", "done %llu", o->id);
}

/* temp_file: an unlinked file in DIR, open for reading and writing (or -1, with NOTE saying why). */
static int temp_file(const char *dir, char *note, size_t size) {
  char path[512];
  snprintf(path, sizeof path, "%s/iovm-load.XXXXXX", dir);
  int fd = mkostemp(path, O_CLOEXEC);
  if (fd < 0) snprintf(note, size, "iovm-load: %s: %s\n", path, strerror(errno));
  else unlink(path);
  return fd;
}

/* run: request ID with ARGS (iperf3's arguments, split in place), until iperf3 exits or dom0 cancels it;
 * then its result. */
static void run(const char *iperf, const char *tmpdir, unsigned long long id, char *args) {
  static char out[MAX_CHUNKS * CHUNK + 1];
  char err[STDERR_TAIL], note[600] = "";
  struct outcome o = {.id = id, .rc = 127, .out = out, .err = err};
  if (in_transaction(write_running, &id) < 0) fprintf(stderr, "iovm-load: cannot write status running %llu\n", id);

  char *argv[MAX_ARGS + 2] = {(char *)iperf};
  int argc = 1;
  for (char *arg = strtok(args, " \n"); arg; arg = strtok(NULL, " \n")) {
    if (argc == MAX_ARGS + 1) {
      snprintf(note, sizeof note, "iovm-load: more than %d arguments\n", MAX_ARGS);
      break;
    }
    argv[argc++] = arg;
  }
  int out_fd = temp_file(tmpdir, note, sizeof note), err_fd = temp_file(tmpdir, note, sizeof note);
  pid_t pid = -1;
  if (!note[0] && (pid = fork()) == 0) {
    int null = open("/dev/null", O_RDONLY);
    if (null >= 0) dup2(null, 0);
    dup2(out_fd, 1);
    dup2(err_fd, 2);
    execv(iperf, argv);
    fprintf(stderr, "iovm-load: %s: %s\n", iperf, strerror(errno));
    _exit(127);
  }
  if (pid < 0 && !note[0]) snprintf(note, sizeof note, "iovm-load: fork: %s\n", strerror(errno));

  /* Every 200 ms: has it exited, has dom0 cancelled it (SIGTERM, then SIGKILL 10 polls = 2 s later)? */
  int polls_since_term = -1, status;
  while (pid > 0) {
    sleep_poll();
    pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) {
      o.rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      break;
    }
    if (done < 0 && errno != EINTR) {
      snprintf(note, sizeof note, "iovm-load: waitpid: %s\n", strerror(errno));
      break;
    }
    char cancel[64];
    unsigned long long cancel_id;
    if (polls_since_term < 0) {
      if (xs_read(LOAD "cancel", cancel, sizeof cancel) == 0 && parse_id(cancel, &cancel_id) && cancel_id == id) {
        kill(pid, SIGTERM);
        polls_since_term = 0;
      }
    } else if (++polls_since_term == 10) {
      kill(pid, SIGKILL);
    }
  }

  if (note[0]) { /* iperf3 did not run: the agent's message is the result's stderr */
    fprintf(stderr, "%s", note);
    o.err = note;
    o.err_len = strlen(note);
  } else {
    ssize_t n = pread(out_fd, out, sizeof out, 0);
    o.out_len = n > 0 ? (size_t)n : 0;
    if (o.out_len > MAX_CHUNKS * CHUNK) {
      o.out_len = MAX_CHUNKS * CHUNK;
      o.truncated = 1;
    }
    off_t size = lseek(err_fd, 0, SEEK_END);
    n = pread(err_fd, err, sizeof err, size > STDERR_TAIL ? size - STDERR_TAIL : 0);
    o.err_len = n > 0 ? (size_t)n : 0;
  }
  if (out_fd >= 0) close(out_fd);
  if (err_fd >= 0) close(err_fd);
  if (in_transaction(write_result, &o) < 0)
    fprintf(stderr, "iovm-load: cannot write the result of request %llu: xenstore said %s\n", id, xs_last_error[0] ? xs_last_error : "?");
}

/* wait_for_request: until the request may have changed (a watch event), or 200 ms without the watch. */
static void wait_for_request(int watching) {
  if (!watching) {
    sleep_poll();
    return;
  }
  struct xsd_sockmsg head = {0};
  static char body[PAYLOAD_MAX + 1];
  while (!xs_event_pending) {
    xs_message(&head, body);
    xs_event_pending = head.type == XS_WATCH_EVENT;
  }
  xs_event_pending = 0;
}

static void usage(FILE *to, const char *program) {
  fprintf(to, "usage: %s [-s SOCKET] [-b IPERF3] [-t TMPDIR] [-1]\n"
              "  runs iperf3 as dom0 requests in xenstore (data/iovm/load/request) and publishes its results\n",
          program);
}

int main(int argc, char **argv) {
  const char *socket_path = NULL, *iperf = "/usr/bin/iperf3", *tmpdir = "/tmp";
  int once = 0, opt;
  while ((opt = getopt(argc, argv, "s:b:t:1h")) != -1) {
    switch (opt) {
    case 's': socket_path = optarg; break;
    case 'b': iperf = optarg; break;
    case 't': tmpdir = optarg; break;
    case '1': once = 1; break;
    case 'h': usage(stdout, argv[0]); return 0;
    default: usage(stderr, argv[0]); return 64;
    }
  }
  if (optind < argc) {
    usage(stderr, argv[0]);
    return 64;
  }
  if (socket_path) {
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(socket_path) >= sizeof addr.sun_path) {
      fprintf(stderr, "iovm-load: %s: path too long\n", socket_path);
      return 69;
    }
    strcpy(addr.sun_path, socket_path);
    xenbus = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (xenbus >= 0 && connect(xenbus, (struct sockaddr *)&addr, sizeof addr) < 0) {
      close(xenbus);
      xenbus = -1;
    }
  } else {
    xenbus = open("/dev/xen/xenbus", O_RDWR | O_CLOEXEC);
  }
  if (xenbus < 0) {
    fprintf(stderr, "iovm-load: %s: %s\n", socket_path ? socket_path : "/dev/xen/xenbus", strerror(errno));
    return 69;
  }

  static const char watch[] = LOAD "request\0load"; /* the path, then the token */
  int watching = xs_request(XS_WATCH, 0, watch, sizeof watch, NULL, 0) == 0;
  if (!watching) fprintf(stderr, "iovm-load: cannot watch " LOAD "request: reading it every 200 ms\n");
  if (xs_printf(0, LOAD "ready", "1 %ld", (long)getpid()) < 0) {
    fprintf(stderr, "iovm-load: cannot write " LOAD "ready\n");
    return 1;
  }

  unsigned long long last = 0, id;
  char status[64], *rest;
  int have_last = xs_read(LOAD "status", status, sizeof status) == 0 && strncmp(status, "done ", 5) == 0
                  && (rest = parse_id(status + 5, &last)) && !*rest;
  static char request[PAYLOAD_MAX + 1], bad[PAYLOAD_MAX + 1];
  for (;;) {
    if (xs_read(LOAD "request", request, sizeof request) == 0) {
      char *args = parse_id(request, &id);
      if (!args && strcmp(request, bad) != 0) {
        fprintf(stderr, "iovm-load: ignoring request '%s' (not '<id> <arg> ...')\n", request);
        memcpy(bad, request, sizeof bad);
      } else if (args && (!have_last || id != last)) {
        run(iperf, tmpdir, id, args);
        last = id;
        have_last = 1;
        if (once) return 0;
      }
    }
    wait_for_request(watching);
  }
}
