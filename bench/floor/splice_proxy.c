/* The floor under any TCP proxy on this machine: the least user-space work that carries a
 * connection's bytes through a second connection. Each accepted connection gets a connect to
 * the backend and a thread per direction, each moving bytes socket -> pipe (1 MiB) -> socket
 * with blocking splice(2) and nothing else: no event loop, no accounting, no health, no
 * limits.
 * proxy_bench.sh runs it beside plumb, HAProxy and socat; no plumb code is linked in.
 *
 *   splice_proxy LISTEN-PORT BACKEND-PORT      (both on 127.0.0.1; prints "listening" once ready)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

struct half {
  int from, to;
};

static void* pump(void* arg) {
  struct half h = *(struct half*)arg;
  free(arg);
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return NULL;
  /* The pipe as large as splice can use: the most moved per call. */
  (void)fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
  for (;;) {
    ssize_t n = splice(h.from, NULL, p[1], NULL, 1 << 20, SPLICE_F_MOVE);
    if (n <= 0) break;
    while (n > 0) {
      ssize_t w = splice(p[0], NULL, h.to, NULL, (size_t)n, SPLICE_F_MOVE);
      if (w <= 0) goto out;
      n -= w;
    }
  }
out:
  shutdown(h.to, SHUT_WR);
  shutdown(h.from, SHUT_RD);
  close(p[0]);
  close(p[1]);
  return NULL;
}

static struct sockaddr_in loopback(int port) {
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons((unsigned short)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

static void start(int from, int to) {
  struct half* h = malloc(sizeof(*h));
  if (!h) return;
  h->from = from;
  h->to = to;
  pthread_t t;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  if (pthread_create(&t, &attr, pump, h) != 0) free(h);
  pthread_attr_destroy(&attr);
}

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: splice_proxy LISTEN-PORT BACKEND-PORT\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  struct sockaddr_in l = loopback(atoi(argv[1])), b = loopback(atoi(argv[2]));
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(ls, (struct sockaddr*)&l, sizeof(l)) != 0 || listen(ls, 1024) != 0) {
    perror("splice_proxy: listen");
    return 1;
  }
  printf("listening\n");
  fflush(stdout);
  for (;;) {
    int c = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0) continue;
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (connect(s, (struct sockaddr*)&b, sizeof(b)) != 0) {
      close(c);
      close(s);
      continue;
    }
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    /* The sockets are never closed: a benchmark's connections are few and the process is
     * killed at the end. */
    start(c, s);
    start(s, c);
  }
}
