/*
 * vsock-tool: a tiny AF_VSOCK client/server for sparkler's Linux-guest vsock
 * test (tests/lab/net_vsock.test.ts). Unlike the other files here it is an
 * ordinary Linux program: built at test time with `gcc -static -O2` and put
 * into the guest as /bin/vsock-tool by an extra initramfs archive.
 *
 *   vsock-tool listen PORT          accept one connection, read a line, reply
 *                                   "echo:<line>\n", close; prints
 *                                   "vsock-listen got=<line> peer_cid=<cid>"
 *   vsock-tool connect CID PORT MSG connect, send "MSG\n", read one line;
 *                                   prints "vsock-connect reply=<line>"
 *
 * Every failure prints one "vsock-<mode> error=<what>: <strerror>" line and
 * exits 1. Each mode gives up after VSOCK_TOOL_TIMEOUT seconds (default 120)
 * through alarm(), so a missing peer cannot hang the guest's init.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

static const char *mode = "?";

static void die(const char *what) {
  printf("vsock-%s error=%s: %s\n", mode, what, strerror(errno));
  fflush(stdout);
  exit(1);
}

static void on_alarm(int sig) {
  (void)sig;
  static const char msg[] = "vsock-tool timeout\n";
  ssize_t r = write(1, msg, sizeof msg - 1);
  (void)r;
  _exit(2);
}

/* Reads up to and excluding '\n' (or EOF) into buf; returns the length, -1 on error. */
static ssize_t read_line(int fd, char *buf, size_t cap) {
  size_t n = 0;
  while (n + 1 < cap) {
    char c;
    ssize_t r = read(fd, &c, 1);
    if (r < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (r == 0 || c == '\n') break;
    buf[n++] = c;
  }
  buf[n] = '\0';
  return (ssize_t)n;
}

static int write_all(int fd, const char *p, size_t len) {
  while (len > 0) {
    ssize_t w = write(fd, p, len);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    len -= (size_t)w;
  }
  return 0;
}

static unsigned parse_u32(const char *s, const char *what) {
  char *end;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (errno || *end || end == s || v > 0xffffffffUL) {
    printf("vsock-%s error=bad %s '%s'\n", mode, what, s);
    exit(1);
  }
  return (unsigned)v;
}

static int do_listen(unsigned port) {
  int s = socket(AF_VSOCK, SOCK_STREAM, 0);
  if (s < 0) die("socket");
  struct sockaddr_vm addr = {.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port};
  if (bind(s, (struct sockaddr *)&addr, sizeof addr) < 0) die("bind");
  if (listen(s, 1) < 0) die("listen");
  printf("vsock-listen ready port=%u\n", port);
  fflush(stdout);
  struct sockaddr_vm peer;
  socklen_t plen = sizeof peer;
  int c;
  do c = accept(s, (struct sockaddr *)&peer, &plen);
  while (c < 0 && errno == EINTR);
  if (c < 0) die("accept");
  char line[512];
  if (read_line(c, line, sizeof line) < 0) die("read");
  char reply[600];
  int n = snprintf(reply, sizeof reply, "echo:%s\n", line);
  if (write_all(c, reply, (size_t)n) < 0) die("write");
  printf("vsock-listen got=%s peer_cid=%u\n", line, peer.svm_cid);
  fflush(stdout);
  shutdown(c, SHUT_WR);
  close(c);
  close(s);
  return 0;
}

static int do_connect(unsigned cid, unsigned port, const char *msg) {
  int s = socket(AF_VSOCK, SOCK_STREAM, 0);
  if (s < 0) die("socket");
  struct sockaddr_vm addr = {.svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port};
  if (connect(s, (struct sockaddr *)&addr, sizeof addr) < 0) die("connect");
  char out[512];
  int n = snprintf(out, sizeof out, "%s\n", msg);
  if (n < 0 || (size_t)n >= sizeof out) {
    errno = EMSGSIZE;
    die("message");
  }
  if (write_all(s, out, (size_t)n) < 0) die("write");
  char line[512];
  if (read_line(s, line, sizeof line) < 0) die("read");
  printf("vsock-connect reply=%s\n", line);
  fflush(stdout);
  close(s);
  return 0;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  signal(SIGALRM, on_alarm);
  const char *t = getenv("VSOCK_TOOL_TIMEOUT");
  alarm(t ? (unsigned)atoi(t) : 120);
  if (argc == 3 && strcmp(argv[1], "listen") == 0) {
    mode = "listen";
    return do_listen(parse_u32(argv[2], "port"));
  }
  if (argc == 5 && strcmp(argv[1], "connect") == 0) {
    mode = "connect";
    return do_connect(parse_u32(argv[2], "cid"), parse_u32(argv[3], "port"), argv[4]);
  }
  fprintf(stderr, "usage: vsock-tool listen PORT | vsock-tool connect CID PORT MSG\n");
  return 64;
}
