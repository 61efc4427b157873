#!/usr/bin/env python3
# Runs argv[1:] as root of a new user namespace that maps ids 0..65535 to host ids
# 100000..165535 (the map of a rootless container), written by the calling root without
# /etc/subuid. Exit status: the command's. Used by test/deep.test.ts (privileged probes as root
# of such a namespace).
import ctypes, os, sys, time

CLONE_NEWUSER = 0x10000000
libc = ctypes.CDLL(None, use_errno=True)
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(r)
    if libc.unshare(CLONE_NEWUSER) != 0:
        os._exit(99)
    os.write(w, b'x')
    os.close(w)
    deadline = time.monotonic() + 5
    while '100000' not in open('/proc/self/gid_map').read():
        if time.monotonic() > deadline:
            os._exit(98)
        time.sleep(0.005)
    os.setgroups([])
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)
    os.execvp(sys.argv[1], sys.argv[1:])
os.close(w)
if os.read(r, 1) == b'x':
    with open(f'/proc/{pid}/uid_map', 'w') as f:
        f.write('0 100000 65536\n')
    with open(f'/proc/{pid}/gid_map', 'w') as f:
        f.write('0 100000 65536\n')
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
