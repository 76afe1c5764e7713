/*
 * randread: the guest-side (and host-side) helper of bench/devices. An
 * ordinary Linux program, built by bench/devices with `gcc -static -O2` and
 * put into the guest as /bin/randread by an extra initramfs archive; the
 * same binary runs on the lab's host for the `sink` mode.
 *
 *   randread rand DEV SECONDS [BS]  O_DIRECT pread of random BS-aligned offsets
 *                                   (BS default 4096) over the whole device, one
 *                                   at a time (queue depth 1), for SECONDS;
 *                                   prints "randread ops=N bs=BS seconds=S iops=X"
 *   randread send IP PORT MIB       connect (retried for 30 s), write MIB MiB in
 *                                   64 KiB writes, shutdown(SHUT_WR), wait for the
 *                                   peer's close; prints "netsend bytes=N seconds=S"
 *                                   (the guest's view: connect to the peer's close)
 *   randread time CMD [ARG...]      run CMD, wait for it; prints "time seconds=S rc=N"
 *                                   (for dd, whose busybox build reports no timing)
 *   randread sink PORT              accept one TCP connection on 0.0.0.0:PORT, read
 *                                   to EOF, close; prints "netsink bytes=N
 *                                   seconds=S accept_to_eof=S" (seconds: first byte
 *                                   to EOF, on this machine's clock)
 *
 * Times are CLOCK_MONOTONIC. Every failure prints one "<mode> error=<what>:
 * <strerror>" line and exits 1; each mode gives up after RANDREAD_TIMEOUT
 * seconds (default 300) through alarm().
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *mode = "?";

static void die(const char *what) {
  printf("%s error=%s: %s\n", mode, what, strerror(errno));
  fflush(stdout);
  exit(1);
}

static void on_alarm(int sig) {
  (void)sig;
  static const char msg[] = "randread timeout\n";
  ssize_t r = write(1, msg, sizeof msg - 1);
  (void)r;
  _exit(2);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static unsigned long parse_ul(const char *s, const char *what) {
  char *end;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (errno || *end || end == s) {
    printf("%s error=bad %s '%s'\n", mode, what, s);
    exit(1);
  }
  return v;
}

/* xorshift64*: fast, good enough to scatter offsets. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545f4914f6cdd1dULL;
}

static int do_rand(const char *dev, double seconds, unsigned long bs) {
  if (bs == 0 || bs % 512) {
    errno = EINVAL;
    die("block size must be a multiple of 512");
  }
  int fd = open(dev, O_RDONLY | O_DIRECT);
  if (fd < 0) die("open");
  uint64_t size = 0;
  if (ioctl(fd, BLKGETSIZE64, &size) < 0) {
    off_t end = lseek(fd, 0, SEEK_END);
    if (end < 0) die("size");
    size = (uint64_t)end;
  }
  uint64_t blocks = size / bs;
  if (blocks == 0) {
    errno = EINVAL;
    die("device smaller than one block");
  }
  /* An anonymous mapping is page aligned, as O_DIRECT wants. */
  void *buf = mmap(NULL, bs, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (buf == MAP_FAILED) die("mmap");
  rng_state ^= (uint64_t)getpid() << 17;
  unsigned long ops = 0;
  double t0 = now_s(), t = t0;
  while (t - t0 < seconds) {
    for (int i = 0; i < 16; i++) {
      off_t off = (off_t)((rnd() % blocks) * bs);
      ssize_t r = pread(fd, buf, bs, off);
      if (r != (ssize_t)bs) {
        if (r >= 0) errno = EIO;
        die("pread");
      }
      ops++;
    }
    t = now_s();
  }
  double s = t - t0;
  printf("randread ops=%lu bs=%lu seconds=%.6f iops=%.1f\n", ops, bs, s, (double)ops / s);
  close(fd);
  return 0;
}

static int do_send(const char *ip, unsigned long port, unsigned long mib) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (inet_pton(AF_INET, ip, &a.sin_addr) != 1) {
    errno = EINVAL;
    die("address");
  }
  int fd = -1;
  double give_up = now_s() + 30;
  for (;;) {
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) break;
    if (now_s() > give_up) die("connect");
    close(fd);
    usleep(200000);
  }
  static char buf[65536];
  for (size_t i = 0; i < sizeof buf; i++) buf[i] = (char)(i * 7 + 1);
  unsigned long long total = (unsigned long long)mib << 20, sent = 0;
  double t0 = now_s();
  while (sent < total) {
    size_t n = total - sent < sizeof buf ? (size_t)(total - sent) : sizeof buf;
    ssize_t w = write(fd, buf, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      die("write");
    }
    sent += (unsigned long long)w;
  }
  if (shutdown(fd, SHUT_WR) < 0) die("shutdown");
  char c;
  while (read(fd, &c, 1) > 0) { /* the sink closes after EOF */ }
  double s = now_s() - t0;
  printf("netsend bytes=%llu seconds=%.6f\n", sent, s);
  close(fd);
  return 0;
}

static int do_sink(unsigned long port) {
  int l = socket(AF_INET, SOCK_STREAM, 0);
  if (l < 0) die("socket");
  int one = 1;
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_ANY)};
  if (bind(l, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
  if (listen(l, 1) < 0) die("listen");
  printf("netsink listening port=%lu\n", port);
  fflush(stdout);
  int fd = accept(l, NULL, NULL);
  if (fd < 0) die("accept");
  double ta = now_s(), t1 = 0;
  static char buf[262144];
  unsigned long long got = 0;
  for (;;) {
    ssize_t r = read(fd, buf, sizeof buf);
    if (r < 0) {
      if (errno == EINTR) continue;
      die("read");
    }
    if (r == 0) break;
    if (got == 0) t1 = now_s();
    got += (unsigned long long)r;
  }
  double te = now_s();
  close(fd);
  close(l);
  printf("netsink bytes=%llu seconds=%.6f accept_to_eof=%.6f\n", got, got ? te - t1 : 0.0, te - ta);
  return 0;
}

static int do_time(char **argv) {
  double t0 = now_s();
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    execvp(argv[0], argv);
    printf("time error=exec %s: %s\n", argv[0], strerror(errno));
    fflush(stdout);
    _exit(127);
  }
  int st;
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR) die("waitpid");
  double s = now_s() - t0;
  int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  printf("time seconds=%.6f rc=%d\n", s, rc);
  return rc;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char *t = getenv("RANDREAD_TIMEOUT");
  signal(SIGALRM, on_alarm);
  alarm(t ? (unsigned)atoi(t) : 300);
  if (argc >= 4 && strcmp(argv[1], "rand") == 0) {
    mode = "randread";
    return do_rand(argv[2], (double)parse_ul(argv[3], "seconds"), argc > 4 ? parse_ul(argv[4], "block size") : 4096);
  }
  if (argc == 5 && strcmp(argv[1], "send") == 0) {
    mode = "netsend";
    return do_send(argv[2], parse_ul(argv[3], "port"), parse_ul(argv[4], "MiB"));
  }
  if (argc >= 3 && strcmp(argv[1], "time") == 0) {
    mode = "time";
    return do_time(argv + 2);
  }
  if (argc == 3 && strcmp(argv[1], "sink") == 0) {
    mode = "netsink";
    return do_sink(parse_ul(argv[2], "port"));
  }
  fprintf(stderr, "usage: randread rand DEV SECONDS [BS] | send IP PORT MIB | time CMD [ARG...] | sink PORT\n");
  return 2;
}
