// Wire protocol between the Node side and a child serving requests inside namespaces.
// One SOCK_SEQPACKET message per request and per reply; little-endian, native layout.
// Mirrored in src/protocol.ts: change both together.
#pragma once
#include <stdint.h>

#define NSP_MAGIC_REQ 0x5251534eu  // "NSQR"
#define NSP_MAGIC_REP 0x5052534eu  // "NSRP"
#define NSP_NARGS 8
#define NSP_NSTR 4
#define NSP_MAX_REQ 8192
#define NSP_MAX_DATA 61440
#define NSP_MAX_REP (NSP_MAX_DATA + 128)
#define NSP_CPU_RELEASE 0xffffffffu

struct nsp_req {
  uint32_t magic;
  uint32_t op;
  uint32_t seq;
  uint32_t cpu;     // 0; 1 + the CPU the Node main thread ran on when it sent this: the child moves
                    // there; or NSP_CPU_RELEASE: the child takes back the mask it was started with
                    // (see "CPU co-location" in native/addon.cc). Filled in by the addon.
  int64_t n[NSP_NARGS];
  uint16_t slen[NSP_NSTR];
  // followed by the strings, back to back, without terminators
};

struct nsp_rep {
  uint32_t magic;
  uint32_t op;
  uint32_t seq;
  int32_t err;      // 0, or the errno of the failing syscall
  int64_t n[NSP_NARGS];
  uint32_t dlen;    // bytes of data that follow
  uint16_t sysc;    // which syscall failed (enum nsp_sys), 0 when none
  uint16_t nfds;    // file descriptors passed with SCM_RIGHTS
  // followed by dlen bytes of data
};

// Requests. Arguments: n[] numbers, s[] strings. Replies: n[] numbers, data.
enum nsp_op {
  OP_HELLO = 1,         // sent by the child unprompted when it starts serving. n: pid, ppid, uid, gid
  OP_IDENTITY = 2,      // n: pid ppid sid pgid uid euid gid egid; data: "capeff_hex"
  OP_UNAME = 3,         // data: nodename \0 domainname \0 release \0
  OP_SETHOSTNAME = 4,   // s0: name
  OP_SETDOMAINNAME = 5, // s0: name
  OP_READFILE = 6,      // s0: path, n0: offset, n1: max bytes. n: bytes, eof; data: content
  OP_READLINK = 7,      // s0: path. data: target
  OP_STAT = 8,          // s0: path, n0: 1 = lstat. n: dev ino mode uid gid size nlink
  OP_MKDIR = 9,         // s0: path, n0: mode
  OP_WRITEFILE = 10,    // s0: path, s1: content, n0: O_ flags to add (e.g. O_CREAT|O_TRUNC), n1: mode
  OP_MSGGET = 11,       // n0: key, n1: msgflg. n0: id
  OP_SHMGET = 12,       // n0: key, n1: size, n2: shmflg. n0: id
  OP_SEMGET = 13,       // n0: key, n1: nsems, n2: semflg. n0: id
  OP_IPCRM = 14,        // n0: kind (1 msg, 2 shm, 3 sem), n1: id
  OP_MQ_OPEN = 15,      // s0: name (without the leading '/'), n0: oflag, n1: mode. (opened then closed;
                        // created with mq_maxmsg 1, mq_msgsize 64)
  OP_MQ_UNLINK = 16,    // s0: name
  OP_LINKS = 17,        // data: lines "ifindex flags name\n" from RTM_GETLINK
  OP_LINK_SET = 18,     // s0: ifname, n0: flags to set, n1: flags to clear (SIOCSIFFLAGS)
  OP_TCP_SELFTEST = 19, // s0: address, n0: family, n1: port (0 = any): listen, connect, accept, send both ways. n0: port
  OP_LISTEN = 20,       // s0: address, n0: family, n1: type, n2: port, n3: scope ifindex. n0: slot, n1: port
  OP_ACCEPT_RECV = 21,  // n0: slot, n1: timeout ms, s0: reply to send back. data: received; n0: peer port
  OP_SEND = 22,         // s0: address, n0: family, n1: type, n2: port, n3: scope ifindex, n4: timeout ms, s1: payload. data: reply (TCP)
  OP_CLOSE_SLOT = 23,   // n0: slot
  OP_MOUNT = 24,        // s0: source, s1: target, s2: fstype, s3: data, n0: flags
  OP_UMOUNT = 25,       // s0: target, n0: flags
  OP_PIVOT_ROOT = 26,   // s0: new_root, s1: put_old (relative paths allowed); chdir("/") afterwards
  OP_CHDIR = 27,        // s0: path
  OP_CLOCKS = 28,       // n: mono_s mono_ns boot_s boot_ns real_s real_ns
  OP_FORK = 29,         // n0: 0 serve (new channel fd passed back), 1 pause; n1: 1 = no parent-death signal. n0: pid
  OP_KILL = 30,         // n0: pid, n1: signal
  OP_WAIT = 31,         // n0: pid, n1: options, n2: timeout ms. n0: pid, n1: raw status
  OP_EXIT = 32,         // n0: code. no reply
  OP_HANG = 33,         // test only: never replies
  OP_NS_IOCTL = 34,     // s0: path of an ns file, n0: ioctl request. n0: result, n1: dev, n2: ino of a returned fd
  OP_UNSHARE = 35,      // n0: flags
  OP_SETNS = 36,        // s0: path, n0: nstype, n1: unshare() flags applied after opening the path, before setns (0: none)
  OP_NEST = 37,         // n0: 1 user, 2 pid; n1: max levels. n0: levels reached, n1: errno that stopped it
  OP_UNLINK = 38,       // s0: path, n0: flags (AT_REMOVEDIR)
  OP_LISTDIR = 39,      // s0: path. data: names separated by \n
  OP_SETUID = 41,       // n0: uid, n1: gid (setresgid then setresuid)
  OP_ECHO = 42,         // data: the request's s0 back (protocol self-check)
  OP_ADDR_ADD = 43,     // s0: ifname, n0: family, s1: address, n1: prefix length
  OP_VETH_CREATE = 44,  // s0: name, s1: peer name, n0: pid (as this child sees it) whose netns gets the peer, 0 = here
  OP_LINK_DEL = 45,     // s0: ifname (a veth's peer goes with it)
  OP_PRCTL = 46,        // n0: option, n1: arg2. n0: result (e.g. PR_SET_DUMPABLE after setuid)
  OP_READY = 47,        // sent by the child unprompted, while entering: its user namespace exists, write its id maps
};

// Syscalls named in errors (nsp_rep.sysc and the enter error).
enum nsp_sys {
  SC_NONE = 0, SC_CLONE, SC_UNSHARE, SC_SETNS, SC_OPEN, SC_READ, SC_WRITE, SC_READLINK, SC_STAT,
  SC_MKDIR, SC_SETHOSTNAME, SC_SETDOMAINNAME, SC_MSGGET, SC_SHMGET, SC_SEMGET, SC_MSGCTL, SC_SHMCTL,
  SC_SEMCTL, SC_MQ_OPEN, SC_MQ_UNLINK, SC_SOCKET, SC_BIND, SC_LISTEN, SC_CONNECT, SC_ACCEPT,
  SC_SEND, SC_RECV, SC_IOCTL, SC_MOUNT, SC_UMOUNT, SC_PIVOT_ROOT, SC_CHDIR, SC_CLOCK_GETTIME,
  SC_FORK, SC_KILL, SC_WAIT, SC_SETGROUPS, SC_SETRESUID, SC_SETRESGID, SC_PRCTL, SC_SOCKETPAIR,
  SC_SENDMSG, SC_POLL, SC_UNLINK, SC_GETDENTS, SC_UNAME, SC_CAPGET, SC_SIGACTION, SC_NETLINK,
  SC_FUTEX, SC_PIDFD_OPEN, SC_WAITPID, SC_MMAP, SC_SOCKET_TIMEOUT, SC_COUNT
};

// Stages of entering; the enter error names one.
enum nsp_stage {
  ST_NONE = 0, ST_CLONE, ST_SETGROUPS, ST_GID_MAP, ST_UID_MAP, ST_SETUID, ST_SETNS, ST_TIMENS_OFFSETS,
  ST_CGROUP, ST_REQUEST, ST_TIMEOUT
};
