// The agent's protocol: frames between the controller (nsprobe, src/agent/client.ts) and
// nsprobe-agent (native/agent.cc) on the agent's stdin (controller -> agent) and stdout
// (agent -> controller). Little-endian, native layout; mirrored in src/agent/proto.ts
// (test/agent-proto-sync.test.ts compares the two): change both together.
//
// Every frame is an nsa_hdr followed by len bytes. Each controller frame gets exactly one reply
// frame with the same type and tag, in any order (requests to different boxes and enters run side by side);
// the agent also sends one unprompted NSA_HELLO (tag 0) when it starts. A frame the agent cannot
// read (bad magic, len above NSA_MAX_FRAME) is answered with NSA_ERROR and the agent exits after
// killing and reaping every child it made; a frame it can read but not use (short payload, no
// such box, unknown type) gets NSA_ERROR or an error reply and the agent goes on. When its stdin
// closes (the controller exited, ssh dropped) it kills and reaps every child and exits.
#pragma once
#include <stdint.h>

#include "child.h"
#include "proto.h"

#define NSA_MAGIC 0x4741534eu  // "NSAG"
#define NSA_VERSION 1
#define NSA_MAX_FRAME (NSP_MAX_REQ + 4096)  // largest controller frame payload
#define NSA_MAX_BOXES 512
#define NSA_MAX_CGROUP 8

struct nsa_hdr {
  uint32_t magic;
  uint16_t type;
  uint16_t flags;   // 0
  uint32_t tag;     // chosen by the controller, echoed in the reply
  uint32_t len;     // payload bytes that follow
};

enum nsa_type {
  NSA_HELLO = 1,      // agent -> controller, unprompted. v0 version, v1 pid, v2 euid, v3 1 = clone3 seen working
                      // (0 unknown); data: "machine\0release\0" (uname)
  NSA_ENTER = 2,      // nsa_enter + strings (u16 length + bytes each): uid_map, gid_map, cgroup_procs[ncgroup],
                      // join_paths[njoin]. Reply: v0 box, v1 pid (agent's pid namespace); data: the child's hello
  NSA_REQUEST = 3,    // u32 box, u32 timeout ms, then one nsp_req (native/proto.h). Reply: v0 sender pid;
                      // fds[nfds]: handles of descriptors the child passed back; data: the nsp_rep
  NSA_CLOSE = 4,      // u32 box, u32 grace ms. Reply: v0 reaped, v1 killed, v2 exit code or -1, v3 signal or -1;
                      // kind 1: the box was already closed
  NSA_ADOPT = 5,      // u32 handle, u32 timeout ms: the channel in a handle becomes a box. Reply as NSA_ENTER
  NSA_KILL = 6,       // u32 box, i32 signal. Reply: v0 1 = sent
  NSA_CLOSEFD = 7,    // u32 handle. Reply: v0 1 = closed
  NSA_NETLINK = 8,    // u32 op (NSA_NL_*), i32 a0, i32 a1, then strings s0, s1, s2 (u16 length + bytes); addr_add:
                      // a0 family, a1 prefix, s1 the raw address. veth_create: s1 peer, a0 peer pid. Reply: v0 result
  NSA_MQ_UNLINK = 9,  // the name. Reply: v0 0 or -errno
  NSA_SHUTDOWN = 10,  // u32 ms: kill every box and wait up to ms for all of them. Reply: v0 boxes ended
  NSA_SETNOFILE = 11, // u32 n: raise the soft RLIMIT_NOFILE to n. Reply: v0 soft, v1 hard (-1 unlimited)
  NSA_PING = 12,      // any bytes: echoed back in data
  NSA_HOSTIPC = 13,   // u32 op (NSA_IPC_*), i32 a0, i32 a1, then the name (the rest): host IPC objects in the
                      // agent's IPC namespace (native/enter.h). Reply: v0 0 or -errno
  NSA_ERROR = 15,     // agent -> controller: a frame it could not use; err says why
};

enum nsa_netlink_op { NSA_NL_VETH_CREATE = 1, NSA_NL_LINK_DEL = 2, NSA_NL_LINK_UP = 3, NSA_NL_IFINDEX = 4, NSA_NL_ADDR_ADD = 5 };

// NSA_HOSTIPC ops. SYSV_REMOVE: a0 kind (1 msg, 2 shm, 3 sem), a1 key. MQ_HOLD: the agent registers
// itself on the queue (mq_notify) and keeps it open until MQ_RELEASE or its exit. MQ_REAP: removes
// the queue when no live process holds it (-EBUSY when one does); MQ_PEEK: the same test, no removal.
enum nsa_hostipc_op { NSA_IPC_SYSV_REMOVE = 1, NSA_IPC_MQ_HOLD = 2, NSA_IPC_MQ_RELEASE = 3, NSA_IPC_MQ_REAP = 4, NSA_IPC_MQ_PEEK = 5 };

// Flags of nsa_enter.flags
#define NSA_E_USERNS 0x1
#define NSA_E_DROP 0x2
#define NSA_E_TIME 0x4
#define NSA_E_NOVM 0x8
#define NSA_E_SETGROUPS_ALLOW 0x10
#define NSA_E_JOIN 0x20
#define NSA_E_JOIN_FORK 0x40

struct nsa_enter {
  uint64_t clone_flags;
  int64_t off_mono, off_boot;
  uint32_t flags;
  int32_t drop_uid, drop_gid, timeout_ms;
  int32_t join_pidfd_pid, join_pidfd_flags;
  uint16_t ncgroup, njoin;
  int32_t join_types[NSP_MAX_JOIN];
  uint32_t pad;
};

// Every reply payload: nsa_rep, then the strings (stage, syscall, arg: slen[] bytes each), then data.
// err 0: success. Otherwise a failure worded by kind (enum nsp_fail_kind in native/enter.h, or the
// request kinds below), num in v0.
struct nsa_rep {
  int32_t err;
  uint32_t kind;
  int64_t v[4];
  int32_t fds[4];
  uint16_t slen[3];
  uint16_t nfds;
};

enum nsa_fail_kind {
  FK_REQ_TIMEOUT = 20,  // "timeout after <num> ms"
  FK_NO_REPLY = 21,     // "the child exited without replying"
  FK_NO_BOX = 22,       // "no such sandbox (already closed)"
  FK_GONE = 23,         // "the child is gone (<strerror>)"
  FK_TOO_BIG = 24,      // "request larger than <num> bytes"
  FK_BAD_FRAME = 25,    // "malformed frame"
  FK_BUSY = 26,         // "a request is already pending on this sandbox"
  FK_FULL = 27,         // "too many sandboxes open in the agent"
};
