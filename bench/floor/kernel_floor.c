/* The kernel's floor under one CNI ADD and DEL of bridge mode, for bench/cni_bench.sh, and of
 * a device's move (FLOOR_DEVICE set), for bench/sriov_bench.sh.
 *
 * It does the kernel work of one plumb ADD with the fewest netlink round trips, and nothing
 * else (no config, no state, no checks, no plumb code):
 *
 *   host netns, one sendmsg:     RTM_NEWLINK veth FLOOR_HOSTIF, master FLOOR_BRIDGE, with its
 *                                peer born in CNI_NETNS as CNI_IFNAME; RTM_NEWLINK FLOOR_HOSTIF
 *                                up, with no IPv6 link-local address (both acknowledged);
 *   container netns, one sendmsg: RTM_NEWADDR FLOOR_ADDR, RTM_NEWLINK up, RTM_NEWROUTE
 *                                FLOOR_ROUTE via FLOOR_GW (each acknowledged, all read back
 *                                in one go).
 *
 * DEL is a bare RTM_DELLINK of CNI_IFNAME in CNI_NETNS (its peer goes with it).
 *
 * With FLOOR_DEVICE (a device on the host: an SR-IOV VF, or the veth end standing in for one):
 *   ADD, host netns, one round trip: RTM_NEWLINK moving FLOOR_DEVICE into CNI_NETNS, renamed
 *                                    CNI_IFNAME on arrival;
 *        container netns, one sendmsg: RTM_NEWADDR FLOOR_ADDR, RTM_NEWLINK up.
 *   DEL, container netns, one round trip: RTM_NEWLINK moving it back, renamed FLOOR_DEVICE.
 * The benchmark execs it through the same launcher as the plugins, so its figures include
 * the same exec; it prints nothing on success and one line on stderr on failure.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF 8192


struct req {
  char buf[BUF];
  size_t len;     /* bytes of all messages so far */
  size_t start;   /* offset of the message being built */
  unsigned count; /* messages */
};

static void die(const char *what, int err) {
  fprintf(stderr, "kernel_floor: %s: %s\n", what, strerror(err));
  exit(1);
}

static const char *env(const char *name) {
  const char *v = getenv(name);
  if (!v || !*v) {
    fprintf(stderr, "kernel_floor: %s is not set\n", name);
    exit(2);
  }
  return v;
}

static void *tail(struct req *r) { return r->buf + r->len; }

static struct nlmsghdr *begin(struct req *r, uint16_t type, uint16_t flags, size_t hdr) {
  r->len = NLMSG_ALIGN(r->len);
  r->start = r->len;
  struct nlmsghdr *n = tail(r);
  memset(n, 0, NLMSG_HDRLEN + NLMSG_ALIGN(hdr));
  n->nlmsg_type = type;
  n->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
  n->nlmsg_seq = ++r->count;
  r->len += NLMSG_HDRLEN + NLMSG_ALIGN(hdr);
  n->nlmsg_len = (uint32_t)(r->len - r->start);
  return n;
}

static void *body(struct req *r) { return r->buf + r->start + NLMSG_HDRLEN; }

static void finish(struct req *r) {
  struct nlmsghdr *n = (struct nlmsghdr *)(r->buf + r->start);
  n->nlmsg_len = (uint32_t)(r->len - r->start);
}

static struct nlattr *attr(struct req *r, uint16_t type, const void *data, size_t len) {
  r->len = NLMSG_ALIGN(r->len);
  struct nlattr *a = tail(r);
  a->nla_type = type;
  a->nla_len = (uint16_t)(NLA_HDRLEN + len);
  if (len) memcpy((char *)a + NLA_HDRLEN, data, len);
  r->len += NLA_ALIGN(a->nla_len);
  return a;
}

static struct nlattr *nest(struct req *r, uint16_t type) { return attr(r, type, NULL, 0); }
static void endNest(struct req *r, struct nlattr *a) {
  a->nla_len = (uint16_t)((r->buf + r->len) - (char *)a);
}

static void u32(struct req *r, uint16_t type, uint32_t v) { attr(r, type, &v, sizeof v); }
static void str(struct req *r, uint16_t type, const char *s) { attr(r, type, s, strlen(s) + 1); }

static int openSocket(void) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) die("socket", errno);
  return fd;
}

/* Sends every message of r in one sendmsg and reads one ack per message. */
static void talk(int fd, struct req *r, const char *what) {
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  if (sendto(fd, r->buf, r->len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0)
    die(what, errno);
  unsigned acked = 0;
  char in[BUF];
  while (acked < r->count) {
    ssize_t n = recv(fd, in, sizeof in, 0);
    if (n < 0) die(what, errno);
    for (struct nlmsghdr *h = (struct nlmsghdr *)in; NLMSG_OK(h, (size_t)n);
         h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_type != NLMSG_ERROR) continue;
      const struct nlmsgerr *e = NLMSG_DATA(h);
      /* A route already there (a second interface in the same netns) is the route wanted,
       * as plumb takes it. */
      int exists = e->error == -EEXIST && e->msg.nlmsg_type == RTM_NEWROUTE;
      if (e->error && !exists) die(what, -e->error);
      acked++;
    }
  }
}

static int parsePrefix(const char *text, struct in_addr *addr) {
  char ip[64];
  const char *slash = strchr(text, '/');
  size_t n = slash ? (size_t)(slash - text) : strlen(text);
  if (n >= sizeof ip) n = sizeof ip - 1;
  memcpy(ip, text, n);
  ip[n] = 0;
  if (inet_pton(AF_INET, ip, addr) != 1) {
    fprintf(stderr, "kernel_floor: not an IPv4 address: %s\n", text);
    exit(2);
  }
  return slash ? atoi(slash + 1) : 32;
}

/* The container's interface index: its address, then up (two messages). */
static void addressAndUp(struct req *c, unsigned index, const struct in_addr *addr, int len) {
  begin(c, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, sizeof(struct ifaddrmsg));
  struct ifaddrmsg *ifa = body(c);
  ifa->ifa_family = AF_INET;
  ifa->ifa_prefixlen = (unsigned char)len;
  ifa->ifa_index = index;
  attr(c, IFA_LOCAL, addr, sizeof *addr);
  attr(c, IFA_ADDRESS, addr, sizeof *addr);
  finish(c);
  begin(c, RTM_NEWLINK, 0, sizeof(struct ifinfomsg));
  struct ifinfomsg *up = body(c);
  up->ifi_index = (int)index;
  up->ifi_flags = up->ifi_change = IFF_UP;
  finish(c);
}

static int add(int nsfd, const char *ifname) {
  const char *hostif = env("FLOOR_HOSTIF");
  unsigned bridge = if_nametoindex(env("FLOOR_BRIDGE"));
  if (!bridge) die("bridge", errno);

  static struct req r;
  struct ifinfomsg *ifi;
  begin(&r, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, sizeof *ifi);
  ifi = body(&r);
  str(&r, IFLA_IFNAME, hostif);
  u32(&r, IFLA_MASTER, bridge);
  struct nlattr *info = nest(&r, IFLA_LINKINFO);
  str(&r, IFLA_INFO_KIND, "veth");
  struct nlattr *data = nest(&r, IFLA_INFO_DATA);
  struct nlattr *peer = nest(&r, VETH_INFO_PEER);
  r.len = NLMSG_ALIGN(r.len);
  struct ifinfomsg *pi = tail(&r);
  /* Down: the kernel refuses to bring up a device it is creating in another netns. */
  memset(pi, 0, sizeof *pi);
  r.len += NLMSG_ALIGN(sizeof *pi);
  str(&r, IFLA_IFNAME, ifname);
  u32(&r, IFLA_NET_NS_FD, (uint32_t)nsfd);
  endNest(&r, peer);
  endNest(&r, data);
  endNest(&r, info);
  finish(&r);
  /* Then up, with no IPv6 link-local address on the bridge port, as plumb makes it: without
   * one it sends no DAD or MLD for the bridge to flood to every other port. (The kernel takes
   * the address mode only for a link that exists: a second message, in the same sendmsg.) */
  begin(&r, RTM_NEWLINK, 0, sizeof *ifi);
  ifi = body(&r);
  ifi->ifi_flags = ifi->ifi_change = IFF_UP;
  str(&r, IFLA_IFNAME, hostif);
  struct nlattr *af = nest(&r, IFLA_AF_SPEC);
  struct nlattr *inet6 = nest(&r, AF_INET6);
  unsigned char none = IN6_ADDR_GEN_MODE_NONE;
  attr(&r, IFLA_INET6_ADDR_GEN_MODE, &none, sizeof none);
  endNest(&r, inet6);
  endNest(&r, af);
  finish(&r);
  int host = openSocket();
  talk(host, &r, "create veth");

  /* The container's side: a socket made inside its netns. */
  if (setns(nsfd, CLONE_NEWNET) != 0) die("setns", errno);
  int ctr = openSocket();
  unsigned index = if_nametoindex(ifname);
  if (!index) die("container interface", errno);

  static struct req c;
  struct in_addr addr, gw, dst;
  int len = parsePrefix(env("FLOOR_ADDR"), &addr);
  parsePrefix(env("FLOOR_GW"), &gw);
  int dst_len = parsePrefix(env("FLOOR_ROUTE"), &dst);

  addressAndUp(&c, index, &addr, len);

  begin(&c, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, sizeof(struct rtmsg));
  struct rtmsg *rt = body(&c);
  rt->rtm_family = AF_INET;
  rt->rtm_dst_len = (unsigned char)dst_len;
  rt->rtm_table = RT_TABLE_MAIN;
  rt->rtm_protocol = RTPROT_BOOT;
  rt->rtm_scope = RT_SCOPE_UNIVERSE;
  rt->rtm_type = RTN_UNICAST;
  attr(&c, RTA_DST, &dst, sizeof dst);
  attr(&c, RTA_GATEWAY, &gw, sizeof gw);
  u32(&c, RTA_OIF, index);
  finish(&c);
  talk(ctr, &c, "address, up and route");
  return 0;
}

static int del(int nsfd, const char *ifname) {
  if (setns(nsfd, CLONE_NEWNET) != 0) die("setns", errno);
  int fd = openSocket();
  static struct req r;
  begin(&r, RTM_DELLINK, 0, sizeof(struct ifinfomsg));
  str(&r, IFLA_IFNAME, ifname);
  finish(&r);
  talk(fd, &r, "delete link");
  return 0;
}

static int addDevice(int nsfd, const char *ifname) {
  unsigned dev = if_nametoindex(env("FLOOR_DEVICE"));
  if (!dev) die("device", errno);
  static struct req r;
  begin(&r, RTM_NEWLINK, 0, sizeof(struct ifinfomsg));
  struct ifinfomsg *ifi = body(&r);
  ifi->ifi_index = (int)dev;
  u32(&r, IFLA_NET_NS_FD, (uint32_t)nsfd);
  str(&r, IFLA_IFNAME, ifname);
  finish(&r);
  talk(openSocket(), &r, "move the device");

  if (setns(nsfd, CLONE_NEWNET) != 0) die("setns", errno);
  int ctr = openSocket();
  unsigned index = if_nametoindex(ifname);
  if (!index) die("container interface", errno);
  static struct req c;
  struct in_addr addr;
  int len = parsePrefix(env("FLOOR_ADDR"), &addr);
  addressAndUp(&c, index, &addr, len);
  talk(ctr, &c, "address and up");
  return 0;
}

static int delDevice(int nsfd, const char *ifname) {
  int host = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  if (host < 0) die("host netns", errno);
  if (setns(nsfd, CLONE_NEWNET) != 0) die("setns", errno);
  /* By name in the container; renamed on arrival on the host. */
  unsigned index = if_nametoindex(ifname);
  if (!index) die("container interface", errno);
  static struct req r;
  begin(&r, RTM_NEWLINK, 0, sizeof(struct ifinfomsg));
  struct ifinfomsg *ifi = body(&r);
  ifi->ifi_index = (int)index;
  u32(&r, IFLA_NET_NS_FD, (uint32_t)host);
  str(&r, IFLA_IFNAME, env("FLOOR_DEVICE"));
  finish(&r);
  talk(openSocket(), &r, "move the device back");
  return 0;
}

int main(void) {
  const char *cmd = env("CNI_COMMAND");
  const char *ifname = env("CNI_IFNAME");
  int nsfd = open(env("CNI_NETNS"), O_RDONLY | O_CLOEXEC);
  if (nsfd < 0) die("netns", errno);
  int device = getenv("FLOOR_DEVICE") != NULL;
  if (strcmp(cmd, "ADD") == 0) return device ? addDevice(nsfd, ifname) : add(nsfd, ifname);
  if (strcmp(cmd, "DEL") == 0) return device ? delDevice(nsfd, ifname) : del(nsfd, ifname);
  fprintf(stderr, "kernel_floor: CNI_COMMAND %s is not ADD or DEL\n", cmd);
  return 2;
}
