// UTS: hostname and domainname set inside are seen inside and by a second process in the same
// namespace (control), and neither by the host nor by a sibling UTS namespace.
import type { HostIf } from '../src/host/hostif.js';
import type { ProbeDef } from '../src/probe.js';

// Environment assumption: /proc/sys/kernel/{hostname,domainname} are readable (they are, also
// read-only, in containers); they show the UTS namespace of the host side (Node's, or the
// agent's), which is "the host" here.
const hostValue = async (h: HostIf, f: string) => (await h.readFile(`/proc/sys/kernel/${f}`).get()).trim();
const hostNames = async (h: HostIf) => ({ hostname: await hostValue(h, 'hostname'), domainname: await hostValue(h, 'domainname') });

export const uts: ProbeDef = {
  name: 'uts',
  namespace: 'uts',
  cloneFlag: 'CLONE_NEWUTS',
  since: '2.6.19',
  summary: 'hostname and domainname are private to the namespace',
  creates: () => ['uts'],
  uses: {},
  async run(ctx) {
    const hostBefore = await hostNames(ctx.host);
    const name = `nsprobe-${ctx.token}`;
    const domain = `nsprobe-${ctx.token}.invalid`;
    const a = await ctx.enter();
    ctx.expectOk('the hostname can be set inside', await a.sethostname(name), 'inside');
    ctx.expectOk('the domainname can be set inside', await a.setdomainname(domain), 'inside');
    const inside = await a.uname().get();
    ctx.expect('hostname set inside is seen inside', inside.hostname, name, 'inside');
    ctx.expect('domainname set inside is seen inside', inside.domainname, domain, 'inside');

    const second = await ctx.join(a, ['uts']);
    const seen = await second.uname().get();
    ctx.expect('a second process in the same namespace sees the hostname (control)', seen.hostname, name, 'control');
    ctx.expect('a second process in the same namespace sees the domainname (control)', seen.domainname, domain, 'control');

    const host = await hostNames(ctx.host);
    ctx.check('the host does not see the hostname set inside', host.hostname !== name, `not ${name}`, host.hostname, 'host');
    ctx.expect('the host hostname and domainname are unchanged', host, hostBefore, 'host');

    const sibling = await ctx.enter();
    const sib = await sibling.uname().get();
    ctx.check('a sibling UTS namespace does not see the hostname', sib.hostname !== name, `not ${name}`, sib.hostname, 'sibling');
    ctx.check('a sibling UTS namespace does not see the domainname', sib.domainname !== domain, `not ${domain}`, sib.domainname, 'sibling');
  },
};
