// rtnetlink in raw system calls: usable from a cloned child (no libc) and from the Node side.
// All functions return 0 or -errno.
#pragma once
#include <stddef.h>

// Lines "ifindex flags name\n" for every link of the caller's network namespace.
long nl_list_links(char* out, size_t cap, size_t* pos);
// Adds addr (4 or 16 raw bytes) with prefix to the link named ifname.
long nl_addr_add(const char* ifname, int family, const char* addr, size_t alen, int prefix);
// Creates a veth pair name <-> peer; when peer_pid > 0 the peer is created in that process's
// network namespace.
long nl_veth_create(const char* name, const char* peer, int peer_pid);
// Deletes the link named name (and with a veth, its peer).
long nl_link_del(const char* name);
// Sets or clears IFF_UP on the link named name.
long nl_link_updown(const char* name, int up);
// ifindex of the link named name, or -errno.
long nl_ifindex(const char* name);
