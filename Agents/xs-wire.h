/* xs-wire.h: the xenstore wire protocol (xen/io/xs_wire.h) for iovm's static programs (iovm-counters.c, iovm-vif.c,
 * iovm-load.c), without libxenstore: one request at a time over /dev/xen/xenbus or xenstored's socket, its reply read
 * whole. AgentCompiler puts it next to the program it compiles; `#include "xs-wire.h"`.
 *
 * The program opens the connection into `xenbus`. xs_request returns -1 on an error reply (its name, e.g. "ENOENT",
 * in xs_last_error and in the reply), on a request too long (E2BIG) and on a lost connection (EIO: `xenbus` is then
 * closed and -1, for the program to open again). A program that cannot go on without xenstore defines XS_LOST_IS_FATAL
 * as its name before the include: a lost connection then ends it with a line on stderr. A program that stops on a
 * signal defines XS_STOP as its flag (a handler without SA_RESTART): a wait for xenstore interrupted once it is set
 * ends as a lost connection, where a hung xenstored would otherwise hold the program. */
#ifndef IOVM_XS_WIRE_H
#define IOVM_XS_WIRE_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum {
  XS_READ = 2,
  XS_WATCH = 4,
  XS_TRANSACTION_START = 6,
  XS_TRANSACTION_END = 7,
  XS_WRITE = 11,
  XS_RM = 13,
  XS_WATCH_EVENT = 15,
  XS_ERROR = 16
};
#define XS_PAYLOAD_MAX 4096 /* XENSTORE_PAYLOAD_MAX: a reply's body at most */
#define XS_REQUEST_MAX 4096 /* a request's header and payload: what Linux's /dev/xen/xenbus takes in one message */

struct xsd_sockmsg {
  uint32_t type, req_id, tx_id, len;
};

static int xenbus = -1;
static uint32_t xs_req_id;
/* A watch event arrived while a reply was awaited (the event itself is dropped: a watcher reads its node again). */
static int xs_event_pending __attribute__((unused));
/* The name of xenstore's last error reply (ENOSPC, EACCES, ...), or EIO for a lost connection. */
static char xs_last_error[32] __attribute__((unused));

/* xs_lost: the connection is gone; fatal for a program that says so. */
static inline int xs_lost(const char *why) {
  snprintf(xs_last_error, sizeof xs_last_error, "EIO");
#ifdef XS_LOST_IS_FATAL
  fprintf(stderr, "%s: xenstore connection lost: %s\n", XS_LOST_IS_FATAL, why);
  exit(1);
#else
  (void)why;
  /* A message may be half read: nothing after it on this connection could be trusted. */
  if (xenbus >= 0) close(xenbus);
  xenbus = -1;
  return -1;
#endif
}

/* xs_interrupted: whether a read or write that EINTR cut is to be given up (the program is stopping). */
static inline int xs_interrupted(void) {
#ifdef XS_STOP
  return (XS_STOP) != 0;
#else
  return 0;
#endif
}

/* xs_message: the next message, its header into HEAD and its body, NUL-terminated, into BODY (XS_PAYLOAD_MAX + 1
 * bytes); -1 when the connection is lost. Header and body are read exactly: a socket may split them, and a watch event
 * may follow in the same buffer. */
static inline int xs_message(struct xsd_sockmsg *head, char *body) {
  size_t want = sizeof *head;
  char *into = (char *)head;
  for (int part = 0; part < 2; part++) {
    for (size_t got = 0; got < want;) {
      ssize_t n = read(xenbus, into + got, want - got);
      if (n < 0 && errno == EINTR && !xs_interrupted()) continue;
      if (n <= 0) return xs_lost(n < 0 ? strerror(errno) : "end of file");
      got += (size_t)n;
    }
    if (part == 0 && head->len > XS_PAYLOAD_MAX) return xs_lost("a message past XENSTORE_PAYLOAD_MAX");
    want = head->len;
    into = body;
  }
  body[head->len] = 0;
  return 0;
}

/* xs_request: one request in transaction TX (0: none) and its reply, NUL-terminated, into REPLY when not NULL; -1 on
 * an error reply or a lost connection (see above). Watch events that come before the reply set xs_event_pending. */
static inline int xs_request(uint32_t type, uint32_t tx, const char *payload, size_t len, char *reply, size_t size) {
  struct xsd_sockmsg msg = {type, ++xs_req_id, tx, (uint32_t)len};
  char out[XS_REQUEST_MAX];
  if (sizeof msg + len > sizeof out) {
    snprintf(xs_last_error, sizeof xs_last_error, "E2BIG");
    return -1;
  }
  if (xenbus < 0) return xs_lost("not connected");
  memcpy(out, &msg, sizeof msg);
  memcpy(out + sizeof msg, payload, len);
  for (size_t sent = 0; sent < sizeof msg + len;) {
    ssize_t n = write(xenbus, out + sent, sizeof msg + len - sent);
    if (n < 0 && errno == EINTR && !xs_interrupted()) continue;
    if (n <= 0) return xs_lost(n < 0 ? strerror(errno) : "short write");
    sent += (size_t)n;
  }
  for (;;) {
    struct xsd_sockmsg head;
    static char body[XS_PAYLOAD_MAX + 1];
    if (xs_message(&head, body) < 0) return -1;
    if (head.type == XS_WATCH_EVENT) {
      xs_event_pending = 1;
      continue;
    }
    if (reply) snprintf(reply, size, "%s", body);
    if (head.type != XS_ERROR) return 0;
    snprintf(xs_last_error, sizeof xs_last_error, "%s", body);
    return -1;
  }
}

#endif
