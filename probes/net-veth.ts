// Network over a veth pair: two network namespaces wired with a veth pair made by rtnetlink from
// the addon (no `ip` binary), link-local addresses only (169.254.0.0/16 and fe80::/64), TCP and
// UDP cross the pair both ways over IPv4 and IPv6; a device outside a namespace cannot be
// configured from inside; the host's interfaces and net sysctls are unchanged.
//
// Lifetime of the pair (the design that keeps a killed run from leaving an interface behind):
// the pair is created from INSIDE the probe's network namespace A by its child, with the peer in a
// second network namespace B (a forked grandchild of A that unshared CLONE_NEWNET; in rootless mode
// it stays in A's user namespace, which owns both network namespaces). Neither end is ever in the
// host's namespace, so no host-side end depends on Node to be deleted: the pair is deleted
// explicitly (ctx.defer) on every normal, failed or timed-out path, and when Node is SIGKILLed the
// children die by their parent-death signal, the namespaces go with them and the kernel deletes
// the pair. Both modes work this way; privileged mode creates the namespaces as host root.
import { randomBytes } from '../src/random.js';
import { AF_INET, AF_INET6, CLONE, IFF_LOWER_UP, IFF_UP, SOCK_DGRAM, SOCK_STREAM } from '../src/errno.js';
import type { HostIf } from '../src/host/hostif.js';
import type { ProbeDef } from '../src/probe.js';
import type { Sandbox } from '../src/sandbox.js';

const SYSCTLS = ['ipv4/ip_forward', 'ipv4/conf/all/forwarding', 'ipv6/conf/all/forwarding', 'ipv4/conf/default/forwarding'];

/** The host's net sysctls the probe watches (missing ones read as null). */
export async function hostNetSysctls(host: HostIf): Promise<Record<string, string | null>> {
  const out: Record<string, string | null> = {};
  for (const k of SYSCTLS) {
    const r = await host.readFile(`/proc/sys/net/${k}`);
    out[k] = r.ok ? r.value!.trim() : null;
  }
  return out;
}

const hostLinks = async (host: HostIf) => (await host.readdir('/sys/class/net').get()).sort();

/** Two random link-local IPv4 addresses in one /16 (169.254.x.y, never .0 or .255). */
export function linkLocal4(): [Buffer, Buffer] {
  const r = randomBytes(2);
  const x = 1 + (r[0] % 254);
  const y = 1 + (r[1] % 253);
  return [Buffer.from([169, 254, x, y]), Buffer.from([169, 254, x, y + 1])];
}

/** Two random IPv6 link-local addresses fe80::<64 random bits>. */
export function linkLocal6(): [Buffer, Buffer] {
  const a = Buffer.alloc(16);
  a[0] = 0xfe;
  a[1] = 0x80;
  randomBytes(8).copy(a, 8);
  a[15] = (a[15] & 0xfe) | 1;
  const b = Buffer.from(a);
  b[15] ^= 3;
  return [a, b];
}

export function fmtAddr(a: Buffer): string {
  if (a.length === 4) return [...a].join('.');
  const words: string[] = [];
  for (let i = 0; i < 16; i += 2) words.push(a.readUInt16BE(i).toString(16));
  return words.join(':').replace(/(^|:)0(:0)+(:|$)/, '::');
}

// The carrier comes up when the kernel's link watch runs, usually a few ms after both ends are up:
// pauses of 1 ms growing to 10 (a fixed 10 ms pause made each veth probe wait ~10 ms at its first
// look, which almost always came too early). The value is the link's index once it has carrier
// (its index does not change after that; the IPv6 sockets need it), 0 if it never got it.
async function waitLowerUp(s: Sandbox, name: string, ms: number): Promise<number> {
  const until = Date.now() + ms;
  for (let pause = 1; ; pause = Math.min(pause * 2, 10)) {
    const l = (await s.links().get()).find((x) => x.name === name);
    if (l && l.flags & IFF_LOWER_UP) return l.index;
    if (Date.now() > until) return 0;
    await new Promise((r) => setTimeout(r, pause));
  }
}

// An address's solicited-node multicast group is joined by the kernel's address work item (which
// takes the rtnl lock), not by the request that adds the address: while other network namespaces
// are being torn down (other probes of the run) that came late, the peer's first neighbour
// solicitation was dropped unheard and the first IPv6 connection waited the 1 s retransmit (one
// full run in five). So we wait until the namespace lists the group in /proc/net/igmp6 (1 ms,
// then growing pauses); no IPv6 there (no such file), or not within `ms`: we go on as before.
async function waitSolicitedNode(s: Sandbox, name: string, addr: Buffer, ms: number): Promise<void> {
  const group = `ff0200000000000000000001ff${addr.subarray(13).toString('hex')}`;
  const until = Date.now() + ms;
  for (let pause = 1; ; pause = Math.min(pause * 2, 20)) {
    const r = await s.readFile('/proc/self/net/igmp6');
    if (!r.ok) return;
    const joined = r.value!.split('\n').some((l) => {
      const f = l.trim().split(/\s+/);
      return f[1] === name && f[2] === group;
    });
    if (joined || Date.now() > until) return;
    await new Promise((res) => setTimeout(res, pause));
  }
}

export const netVeth: ProbeDef = {
  name: 'net-veth',
  namespace: 'net',
  cloneFlag: 'CLONE_NEWNET',
  since: '2.6.29',
  summary: 'a veth pair between two network namespaces carries TCP and UDP over link-local IPv4 and IPv6',
  creates: () => ['net'],
  uses: { veth: true, sysctlWrite: true },
  async run(ctx) {
    // Environment assumptions: /sys/class/net and /proc/sys/net show Node's network namespace
    // (the "host" here); /proc/sys may be read-only (a container's), which only the sysctl write
    // below needs: that step is a helper, skipped with its gate.
    const sysBefore = await hostNetSysctls(ctx.host);
    const linksBefore = await hostLinks(ctx.host);
    const nameA = `nsp${ctx.token}a`;
    const nameB = `nsp${ctx.token}b`;
    const [v4a, v4b] = linkLocal4();
    const [v6a, v6b] = linkLocal6();

    const a = await ctx.enter();
    const b = ctx.track(await a.forkServe().get());
    ctx.expectOk('a grandchild unshares a second network namespace', await b.unshare(CLONE.net), 'sibling');
    // Requests to a and b run side by side (each sandbox serves its own in turn); the assertions
    // are recorded in the same order as before.
    const [nsA, nsB] = await Promise.all([a.readlink('/proc/self/ns/net').get(), b.readlink('/proc/self/ns/net').get()]);
    ctx.check('the two network namespaces differ', nsA !== nsB, 'different', `${nsA} ${nsB}`, 'sibling');

    const made = await a.vethCreate(nameA, nameB, b.pid);
    // rtnetlink knows no "veth" kind (a kernel without CONFIG_VETH): nothing here can be shown;
    // thrown, so the runner explains it (kernel_config) instead of a failed assertion
    if (made.code === 'EOPNOTSUPP' || made.code === 'ENOTSUP') made.get();
    if (!ctx.expectOk('a veth pair is created by rtnetlink from inside, peer in the second namespace', made, 'inside')) return;
    // On a path that ends before the deletion below (a failed assertion that throws, a timeout).
    // Once that deletion ran there is nothing left to delete: each deletion waits for an RCU
    // barrier in the kernel (netdev_run_todo, ~10-20 ms), so it is not asked for twice.
    let deleted = false;
    ctx.defer(() => (deleted ? undefined : a.linkDel(nameA)));
    const [la, lb] = await Promise.all([a.links().get(), b.links().get()]);
    ctx.expect('the first namespace holds one end, not the other', [la.some((l) => l.name === nameA), la.some((l) => l.name === nameB)], [true, false], 'inside');
    ctx.expect('the second namespace holds the peer', lb.some((l) => l.name === nameB), true, 'sibling');
    const onHost = await hostLinks(ctx.host);
    ctx.expect('neither end is in the host\'s /sys/class/net', [onHost.includes(nameA), onHost.includes(nameB)], [false, false], 'host');

    // The addresses side by side; the ends UP one after the other, first then second (the order
    // the re-UP below relies on).
    const steps = [...await Promise.all([a.addrAdd(nameA, AF_INET, v4a, 16), b.addrAdd(nameB, AF_INET, v4b, 16)]),
      await a.linkSet(nameA, IFF_UP), await b.linkSet(nameB, IFF_UP)];
    // The end set UP first had no carrier then, so the kernel left it the no-op transmit queue
    // (which drops every packet) until its link watcher runs, up to a second later: the first ARP
    // request or neighbour solicitation was lost and a connection waited the 1 s retransmit (one
    // probe in five; TcpExt TCPSpuriousRtxHostQueues showed the SYN held back). Set UP again now
    // that the peer is up, it has carrier at once and gets its real queue with it.
    steps.push(await a.linkSet(nameA, 0, IFF_UP), await a.linkSet(nameA, IFF_UP));
    const [idxA, idxB] = await Promise.all([waitLowerUp(a, nameA, 3000), waitLowerUp(b, nameB, 3000)]);
    ctx.expect('both ends report carrier (LOWER_UP)', [idxA > 0, idxB > 0], [true, true], 'inside');
    // IPv6 addresses go on once the links are up: added to a down link, the solicited-node
    // multicast group was not joined in time and the first neighbour solicitation was lost
    // (one run in five then took a 1 s retransmit, twice).
    steps.push(...await Promise.all([a.addrAdd(nameA, AF_INET6, v6a, 64), b.addrAdd(nameB, AF_INET6, v6b, 64)]));
    await Promise.all([waitSolicitedNode(a, nameA, v6a, 1500), waitSolicitedNode(b, nameB, v6b, 1500)]);
    const bad = steps.find((x) => !x.ok);
    // The random addresses go in the note: assertion names hold no value of the run.
    ctx.check('link-local addresses are added and both ends set UP', !bad, 'every step ok', bad ? bad.sentence : 'every step ok', 'inside',
      `${fmtAddr(v4a)}/16, ${fmtAddr(v4b)}/16, ${fmtAddr(v6a)}/64, ${fmtAddr(v6b)}/64`);

    const ends = [
      { s: a, name: 'first', v4: v4a, v6: v6a, idx: idxA },
      { s: b, name: 'second', v4: v4b, v6: v6b, idx: idxB },
    ];
    // A listening slot is closed while the next exchange (the other way round, listening on the
    // other end) starts: a request to that sandbox waits behind the close anyway.
    const closing: Promise<unknown>[] = [];
    for (const [fam, famName] of [[AF_INET, 'IPv4'], [AF_INET6, 'IPv6']] as const) {
      for (const [type, typeName] of [[SOCK_STREAM, 'TCP'], [SOCK_DGRAM, 'UDP']] as const) {
        for (const [from, to] of [[ends[0], ends[1]], [ends[1], ends[0]]]) {
          const addr = fam === AF_INET ? to.v4 : to.v6;
          // The first packets over a fresh pair can race IPv6 address/neighbour setup: up to 3 tries.
          let res: unknown[] = [];
          let tries = 0;
          const msg = `${typeName}-${famName}-from-${from.name}`;
          while (tries++ < 3) {
            const l = await to.s.listen(fam, type, addr, 0, fam === AF_INET6 ? to.idx : 0);
            if (!l.ok) {
              res = [l.sentence, null];
              break;
            }
            const { slot, port } = l.value!;
            const [sent, got] = await Promise.all([
              from.s.send(fam, type, addr, port, fam === AF_INET6 ? from.idx : 0, 3000, msg),
              to.s.acceptRecv(slot, 3000, `reply-to-${from.name}`),
            ]);
            const closed = to.s.closeSlot(slot);
            closed.catch(() => undefined); // awaited below; a sandbox gone meanwhile fails the run there
            closing.push(closed);
            res = [got.ok ? got.value : got.sentence, sent.ok ? sent.value : sent.sentence];
            if (got.ok && sent.ok) break;
          }
          ctx.expect(`${typeName} over ${famName} crosses the pair from the ${from.name} to the ${to.name} namespace and back`,
            res, [msg, `reply-to-${from.name}`], 'inside', `to ${fmtAddr(addr)}${tries > 1 ? `; needed ${tries} tries` : ''}`);
        }
      }
    }

    await Promise.all(closing);

    // A device outside the namespace cannot be configured from inside.
    ctx.expectErrno('the peer in the other namespace cannot be set from the first one (ENODEV)', await a.linkSet(nameB, IFF_UP), 'ENODEV', 'inside');
    ctx.expectOk('the peer can be set from its own namespace (control)', await b.linkSet(nameB, IFF_UP), 'control');
    const hostDev = linksBefore.find((n) => n !== 'lo' && !la.some((l) => l.name === n));
    if (hostDev) {
      // The device's name is the host's: in the note.
      const note = `host device ${hostDev}`;
      ctx.expectErrno('a host device cannot be set UP from inside (ENODEV)', await a.linkSet(hostDev, IFF_UP), 'ENODEV', 'inside', note);
      ctx.expectErrno('no address can be added to a host device from inside (ENODEV)', await a.addrAdd(hostDev, AF_INET, v4a, 16), 'ENODEV', 'inside', note);
      const present = (await hostLinks(ctx.host)).includes(hostDev);
      ctx.check('that host device exists on the host (control)', present, 'present', present ? 'present' : 'absent', 'control', note);
    }

    // Per-namespace sysctls: forwarding turned on inside does not change the host's. The write is
    // a helper step: a read-only /proc/sys (a container's) refuses it with EROFS.
    const READS_1 = 'inside, net.ipv4.ip_forward reads 1';
    if (ctx.helper(await a.writeFile('/proc/sys/net/ipv4/ip_forward', '1'), [READS_1], { name: 'net.ipv4.ip_forward can be set inside', side: 'inside' })) {
      ctx.expect(READS_1, (await a.readFile('/proc/sys/net/ipv4/ip_forward').get()).trim(), '1', 'inside');
    }
    ctx.expect('the host\'s net sysctls are unchanged while the pair exists', await hostNetSysctls(ctx.host), sysBefore, 'host');

    const del = await a.linkDel(nameA);
    deleted = del.ok;
    ctx.expect('deleting one end deletes the pair', [del.ok ? 'deleted' : del.sentence, (await b.links().get()).some((l) => l.name === nameB)], ['deleted', false], 'inside');
    await b.close();
    await a.close();
    // Only this probe's names count: on a live host other programs add and remove links while it
    // runs (a container engine's veths, another test's), and none of theirs says anything about
    // this pair. What else changed on the host goes in the note.
    const after = await hostLinks(ctx.host);
    const changed = [...after.filter((n) => !linksBefore.includes(n)).map((n) => `+${n}`), ...linksBefore.filter((n) => !after.includes(n)).map((n) => `-${n}`)];
    ctx.expect('once the namespaces are gone, neither end is in the host\'s /sys/class/net', [after.includes(nameA), after.includes(nameB)], [false, false], 'host',
      changed.length ? `other links changed on the host meanwhile: ${changed.join(' ')}` : undefined);
    ctx.expect('the host\'s net sysctls are unchanged', await hostNetSysctls(ctx.host), sysBefore, 'host');
  },
};
