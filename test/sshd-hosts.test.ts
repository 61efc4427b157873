// The sshd test hosts themselves (test/helpers/sshd.ts): each is reachable only through its
// namespace, differs as declared, and close() leaves nothing. The --ssh tests rest on these facts.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { needTools } from './helpers/tools.js';
import { sshdMissing, startSshdLab } from './helpers/sshd.js';

const sh = (argv: string[]) => spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', timeout: 30000 });

needTools(sshdMissing())('sshd hosts: plain, CentOS-7-like and unprivileged differ as declared; unreachable is refused; nothing stays', async (t) => {
  const lab = await startSshdLab();
  const pids: number[] = [];
  try {
    const seen: Record<string, string[]> = {};
    for (const h of lab.hosts) {
      pids.push(h.holder, h.sshd);
      const r = sh(['ssh', '-F', lab.config, h.name, 'id -u; hostname; cat /proc/sys/user/max_user_namespaces; echo $HOME']);
      t.is(r.status, 0, `${h.name}: ${r.stderr} sshd: ${h.log()}`);
      seen[h.kind] = r.stdout.trim().split('\n');
      // The same facts from a local process entered into the host's namespaces as its login user.
      const l = sh([...h.enter, 'sh', '-c', 'id -u; hostname; cat /proc/sys/user/max_user_namespaces; echo $HOME']);
      t.deepEqual(l.stdout.trim().split('\n'), seen[h.kind], `${h.name}: local entry sees what the ssh login sees`);
      // Without the ssh_config (and its ProxyCommand), the host has no address here.
      const direct = sh(['ssh', '-F', '/dev/null', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=3', '-p', String(h.port), '127.0.0.1', 'true']);
      t.not(direct.status, 0, 'sshd listens only inside its namespace');
      // The options alone (what Ansible passes) reach it too.
      const viaOpts = sh(['ssh', '-F', '/dev/null', ...h.options, '-p', String(h.port), '-l', h.user, h.name, 'id -u']);
      t.is(viaOpts.status, 0, viaOpts.stderr);
      t.deepEqual(await lab.strays(h), [], 'no session process stays after the login');
      t.deepEqual(lab.leftovers(h), [], 'the target tmp holds nothing');
    }
    t.deepEqual(seen.plain.slice(0, 2), ['0', 'nsprobe-plain']);
    t.not(seen.plain[2], '0', 'plain host: user namespaces allowed');
    t.deepEqual(seen['userns-limit'].slice(0, 3), ['0', 'nsprobe-userns-limit', '0'], 'CentOS-7-like: max_user_namespaces is 0');
    t.deepEqual(seen.unprivileged.slice(0, 2), ['65534', 'nsprobe-unprivileged']);
    const u = sh(['ssh', '-F', lab.config, lab.unreachable.name, 'true']);
    t.is(u.status, 255);
    t.regex(u.stderr, /ECONNREFUSED|closed|refused/i);
  } finally {
    await lab.close();
  }
  t.false(existsSync(lab.dir), 'the lab folder is removed');
  for (const p of pids) t.false(existsSync(`/proc/${p}`), `process ${p} is gone`);
});
