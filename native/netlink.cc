// rtnetlink requests for listing links, creating veth pairs and adding addresses.
// Raw system calls and stack buffers only (see raw.h), so the same code serves the child.
#include "netlink.h"

#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sockios.h>
#include <linux/veth.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include "raw.h"

namespace {

struct Msg {
  alignas(NLMSG_ALIGNTO) char buf[1024];
  nlmsghdr* h() { return (nlmsghdr*)buf; }
};

void* tail(nlmsghdr* h) { return (char*)h + NLMSG_ALIGN(h->nlmsg_len); }

rtattr* add_attr(nlmsghdr* h, size_t cap, int type, const void* data, size_t len) {
  size_t alen = RTA_LENGTH(len);
  if (NLMSG_ALIGN(h->nlmsg_len) + RTA_ALIGN(alen) > cap) return nullptr;
  rtattr* a = (rtattr*)tail(h);
  a->rta_type = (unsigned short)type;
  a->rta_len = (unsigned short)alen;
  if (len) r_memcpy(RTA_DATA(a), data, len);
  h->nlmsg_len = (uint32_t)(NLMSG_ALIGN(h->nlmsg_len) + RTA_ALIGN(alen));
  return a;
}
rtattr* nest_begin(nlmsghdr* h, size_t cap, int type) { return add_attr(h, cap, type, nullptr, 0); }
void nest_end(nlmsghdr* h, rtattr* a) { a->rta_len = (unsigned short)((char*)tail(h) - (char*)a); }

long nl_open() {
  long fd = rsys3(SYS_socket, AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return fd;
  struct timeval tv = {2, 0};
  rsys5(SYS_setsockopt, fd, SOL_SOCKET, SO_RCVTIMEO, (long)&tv, sizeof tv);
  return fd;
}

long nl_send(long fd, nlmsghdr* h) {
  struct sockaddr_nl sa;
  r_memset(&sa, 0, sizeof sa);
  sa.nl_family = AF_NETLINK;
  long r;
  do r = rsys6(SYS_sendto, fd, (long)h, h->nlmsg_len, 0, (long)&sa, sizeof sa);
  while (r == -EINTR);
  return r < 0 ? r : 0;
}

// Sends a request with NLM_F_ACK and returns the kernel's answer (0 or -errno).
long nl_transact(nlmsghdr* h) {
  long fd = nl_open();
  if (fd < 0) return fd;
  h->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
  h->nlmsg_seq = 1;
  long r = nl_send(fd, h);
  if (r == 0) {
    alignas(NLMSG_ALIGNTO) char buf[4096];
    r = -EPROTO;
    for (;;) {
      long n = rsys6(SYS_recvfrom, fd, (long)buf, sizeof buf, 0, 0, 0);
      if (n == -EINTR) continue;
      if (n < 0) { r = n; break; }
      bool done = false;
      for (nlmsghdr* m = (nlmsghdr*)buf; NLMSG_OK(m, (unsigned)n); m = NLMSG_NEXT(m, n)) {
        if (m->nlmsg_type == NLMSG_ERROR) {
          nlmsgerr* e = (nlmsgerr*)NLMSG_DATA(m);
          r = e->error;
          done = true;
          break;
        }
      }
      if (done) break;
    }
  }
  rsys1(SYS_close, fd);
  return r;
}

}  // namespace

long nl_list_links(char* out, size_t cap, size_t* pos) {
  long fd = nl_open();
  if (fd < 0) return fd;
  Msg m;
  r_memset(m.buf, 0, sizeof m.buf);
  nlmsghdr* h = m.h();
  h->nlmsg_len = NLMSG_LENGTH(sizeof(ifinfomsg));
  h->nlmsg_type = RTM_GETLINK;
  h->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  h->nlmsg_seq = 1;
  ((ifinfomsg*)NLMSG_DATA(h))->ifi_family = AF_UNSPEC;
  long r = nl_send(fd, h);
  alignas(NLMSG_ALIGNTO) char buf[16384];
  while (r == 0) {
    long n = rsys6(SYS_recvfrom, fd, (long)buf, sizeof buf, 0, 0, 0);
    if (n == -EINTR) continue;
    if (n < 0) { r = n; break; }
    bool done = false;
    for (nlmsghdr* msg = (nlmsghdr*)buf; NLMSG_OK(msg, (unsigned)n); msg = NLMSG_NEXT(msg, n)) {
      if (msg->nlmsg_type == NLMSG_DONE) { done = true; break; }
      if (msg->nlmsg_type == NLMSG_ERROR) {
        r = ((nlmsgerr*)NLMSG_DATA(msg))->error;
        done = true;
        break;
      }
      if (msg->nlmsg_type != RTM_NEWLINK) continue;
      ifinfomsg* ifi = (ifinfomsg*)NLMSG_DATA(msg);
      const char* name = "";
      int alen = (int)IFLA_PAYLOAD(msg);
      for (rtattr* a = IFLA_RTA(ifi); RTA_OK(a, alen); a = RTA_NEXT(a, alen))
        if (a->rta_type == IFLA_IFNAME) name = (const char*)RTA_DATA(a);
      if (!r_putnum(out, cap, pos, ifi->ifi_index) || !r_puts(out, cap, pos, " ") ||
          !r_putnum(out, cap, pos, (long long)ifi->ifi_flags) || !r_puts(out, cap, pos, " ") ||
          !r_puts(out, cap, pos, name) || !r_puts(out, cap, pos, "\n")) {
        r = -ENOBUFS;
        done = true;
        break;
      }
    }
    if (done) break;
  }
  rsys1(SYS_close, fd);
  return r;
}

long nl_ifindex(const char* name) {
  long fd = rsys3(SYS_socket, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return fd;
  struct ifreq ifr;
  r_memset(&ifr, 0, sizeof ifr);
  size_t n = r_strlen(name);
  if (n >= IFNAMSIZ) n = IFNAMSIZ - 1;
  r_memcpy(ifr.ifr_name, name, n);
  long r = rsys3(SYS_ioctl, fd, SIOCGIFINDEX, (long)&ifr);
  rsys1(SYS_close, fd);
  return r < 0 ? r : ifr.ifr_ifindex;
}

long nl_addr_add(const char* ifname, int family, const char* addr, size_t alen, int prefix) {
  long idx = nl_ifindex(ifname);
  if (idx < 0) return idx;
  Msg m;
  r_memset(m.buf, 0, sizeof m.buf);
  nlmsghdr* h = m.h();
  h->nlmsg_len = NLMSG_LENGTH(sizeof(ifaddrmsg));
  h->nlmsg_type = RTM_NEWADDR;
  h->nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
  ifaddrmsg* ifa = (ifaddrmsg*)NLMSG_DATA(h);
  ifa->ifa_family = (unsigned char)family;
  ifa->ifa_prefixlen = (unsigned char)prefix;
  ifa->ifa_index = (unsigned)idx;
  ifa->ifa_scope = RT_SCOPE_LINK;
  if (family == AF_INET6) ifa->ifa_flags = IFA_F_NODAD;
  add_attr(h, sizeof m.buf, IFA_LOCAL, addr, alen);
  add_attr(h, sizeof m.buf, IFA_ADDRESS, addr, alen);
  if (family == AF_INET6) {
    uint32_t flags = IFA_F_NODAD;
    add_attr(h, sizeof m.buf, IFA_FLAGS, &flags, sizeof flags);
  }
  return nl_transact(h);
}

long nl_veth_create(const char* name, const char* peer, int peer_pid) {
  Msg m;
  r_memset(m.buf, 0, sizeof m.buf);
  nlmsghdr* h = m.h();
  const size_t cap = sizeof m.buf;
  h->nlmsg_len = NLMSG_LENGTH(sizeof(ifinfomsg));
  h->nlmsg_type = RTM_NEWLINK;
  h->nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
  add_attr(h, cap, IFLA_IFNAME, name, r_strlen(name) + 1);
  rtattr* info = nest_begin(h, cap, IFLA_LINKINFO);
  add_attr(h, cap, IFLA_INFO_KIND, "veth", 5);
  rtattr* data = nest_begin(h, cap, IFLA_INFO_DATA);
  rtattr* pinfo = nest_begin(h, cap, VETH_INFO_PEER);
  // The peer's attributes follow an ifinfomsg header inside VETH_INFO_PEER.
  h->nlmsg_len += (uint32_t)NLMSG_ALIGN(sizeof(ifinfomsg));
  add_attr(h, cap, IFLA_IFNAME, peer, r_strlen(peer) + 1);
  if (peer_pid > 0) {
    uint32_t pid = (uint32_t)peer_pid;
    add_attr(h, cap, IFLA_NET_NS_PID, &pid, sizeof pid);
  }
  nest_end(h, pinfo);
  nest_end(h, data);
  nest_end(h, info);
  return nl_transact(h);
}

long nl_link_del(const char* name) {
  long idx = nl_ifindex(name);
  if (idx < 0) return idx;
  Msg m;
  r_memset(m.buf, 0, sizeof m.buf);
  nlmsghdr* h = m.h();
  h->nlmsg_len = NLMSG_LENGTH(sizeof(ifinfomsg));
  h->nlmsg_type = RTM_DELLINK;
  ((ifinfomsg*)NLMSG_DATA(h))->ifi_index = (int)idx;
  return nl_transact(h);
}

long nl_link_updown(const char* name, int up) {
  long idx = nl_ifindex(name);
  if (idx < 0) return idx;
  Msg m;
  r_memset(m.buf, 0, sizeof m.buf);
  nlmsghdr* h = m.h();
  h->nlmsg_len = NLMSG_LENGTH(sizeof(ifinfomsg));
  h->nlmsg_type = RTM_NEWLINK;
  ifinfomsg* ifi = (ifinfomsg*)NLMSG_DATA(h);
  ifi->ifi_index = (int)idx;
  ifi->ifi_change = IFF_UP;
  ifi->ifi_flags = up ? IFF_UP : 0;
  return nl_transact(h);
}
