// Network: a new namespace has exactly one interface, lo, DOWN; after setting it up a TCP
// connection to 127.0.0.1 works inside; a port listening inside is not reachable from the host's
// loopback (but from a second process in the namespace: control); the host's interfaces are
// not visible inside (but are to a host process using the same request: control).
import type { ProbeDef } from '../src/probe.js';
import { AF_INET, IFF_UP, SOCK_STREAM } from '../src/errno.js';

const LOOPBACK = Buffer.from([127, 0, 0, 1]);

/** Devices the kernel creates in each new network namespace by itself (per namespace, never shared). */
const FALLBACK_TUNNELS = new Set(['sit0', 'tunl0', 'ip6tnl0', 'gre0', 'gretap0', 'erspan0', 'ip6gre0', 'ip_vti0', 'ip6_vti0']);

export const net: ProbeDef = {
  name: 'net',
  namespace: 'net',
  cloneFlag: 'CLONE_NEWNET',
  since: '2.6.29',
  summary: 'interfaces, addresses and ports are private to the namespace',
  creates: () => ['net'],
  uses: {},
  async run(ctx) {
    const a = await ctx.enter();
    // Fallback tunnel devices (sit0, tunl0, ...) are the kernel's own, made in every new network
    // namespace while their driver is loaded or built in (unless net.core.fb_tunnels_only_for_init_net
    // is set): each namespace gets its own, nothing of the host's. Seen on a kernel with CONFIG_IPV6_SIT=y.
    const links = (await a.links().get()).filter((l) => !FALLBACK_TUNNELS.has(l.name));
    ctx.expect('the new namespace has exactly one interface, lo', links.map((l) => l.name), ['lo'], 'inside');
    const lo = links.find((l) => l.name === 'lo');
    ctx.expect('lo starts DOWN', lo ? (lo.flags & IFF_UP) !== 0 : null, false, 'inside');

    const host = await ctx.hostSide();
    // Environment assumption: /sys/class/net shows the host side's network namespace (sysfs
    // mounted by it, as in containers); the control below fails where it does not.
    const hostLinks = (await host.links().get()).map((l) => l.name).sort();
    ctx.expect('a host process lists the host\'s interfaces with the same request (control)', hostLinks, (await ctx.host.readdir('/sys/class/net').get()).sort(), 'control');
    const leaked = hostLinks.filter((n) => n !== 'lo' && links.some((l) => l.name === n));
    ctx.expect('no host interface is visible inside', leaked, [], 'inside', hostLinks.length <= 1 ? 'the host has only lo, so this check cannot tell much here' : undefined);

    const down = await a.tcpSelftest(AF_INET, LOOPBACK);
    ctx.check('with lo DOWN a TCP connection to 127.0.0.1 fails inside (control)', !down.ok, 'an error', down.ok ? 'connected' : `${down.syscall}: ${down.code}`, 'control');
    ctx.expectOk('lo can be set UP inside', await a.linkSet('lo', IFF_UP), 'inside');
    const conn = await a.tcpSelftest(AF_INET, LOOPBACK);
    ctx.expect('after lo is UP a TCP connection to 127.0.0.1 works inside', conn.ok ? conn.value!.answer : conn.sentence, 'pingpong', 'inside');

    // The host listens on P; the inside listens on the same P. A host connection must land on
    // the host's own listener; a second process in the namespace reaches the inside one. The
    // host's listener is a child of the host side (in the host's network namespace in both modes),
    // made as HostIf.answerTcp makes one (src/host/hostif.ts answerFrom), but forked from this
    // probe's host side and tracked by the probe: no sandbox of its own to enter.
    const hl = ctx.track(await host.forkServe().get());
    const hs = (await hl.listen(AF_INET, SOCK_STREAM, LOOPBACK, 0).get());
    const l = await a.listen(AF_INET, SOCK_STREAM, LOOPBACK, hs.port);
    ctx.expectOk('inside binds the same port the host listens on', l, 'inside');
    const slot = l.value?.slot ?? -1;
    const [fromHost] = await Promise.all([
      host.send(AF_INET, SOCK_STREAM, LOOPBACK, hs.port, 0, 1000, 'from-host'),
      hl.acceptRecv(hs.slot, 1000, 'host'),
    ]);
    ctx.expect('a host connection to 127.0.0.1:P reaches the host\'s listener', fromHost.ok ? fromHost.value : fromHost.sentence, 'host', 'host');
    // Only meaningful when the inside really listens: a failed bind must not pass this. The host's
    // connection has finished (reply read) before this looks: had it reached the inside port, it
    // would already wait in that listener's queue, so a 1 ms look sees it (no 30 ms wait).
    const missed = l.ok ? await a.acceptRecv(slot, 1, 'inside') : null;
    ctx.check('the port listening inside is not reached from the host', l.ok && !!missed && !missed.ok, 'no connection to a listening inside port', !l.ok ? `inside did not listen (${l.sentence})` : missed!.ok ? missed!.value : 'none', 'host');
    const second = await ctx.join(a, ['net']);
    const [sent, got] = await Promise.all([second.send(AF_INET, SOCK_STREAM, LOOPBACK, hs.port, 0, 1000, 'from-inside'), a.acceptRecv(slot, 1000, 'inside')]);
    ctx.expect('a second process in the namespace reaches the port (control)', [sent.ok ? sent.value : sent.sentence, got.ok ? got.value : got.sentence], ['inside', 'from-inside'], 'control');
    if (l.ok) await a.closeSlot(slot);
  },
};
