// The Ansible role (ansible/roles/nsprobe) with Debian's ansible-core against the sshd test hosts
// (plain, CentOS-7-like, unprivileged) and one unreachable host: each is reached with its own
// connection variables, the reports come back to the controller, one merge shows all four, and the
// unreachable host fails none of the others. ansible-lint checks the role and the playbook.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Matrix } from '../src/report/matrix.js';
import { CLI, ROOT, tmp } from './helpers/run.js';
import { sshdMissing, startSshdLab } from './helpers/sshd.js';
import { missingTools, needTools } from './helpers/tools.js';

const ANSIBLE = join(ROOT, 'ansible');

/** Ansible and ansible-lint write only below `d` (never ~/.ansible or ~/.cache). */
function ansibleEnv(d: string): NodeJS.ProcessEnv {
  for (const sub of ['home', 'ah', 'tmp', 'cache']) mkdirSync(join(d, sub), { recursive: true });
  return { ...process.env, HOME: join(d, 'home'), ANSIBLE_HOME: join(d, 'ah'), ANSIBLE_LOCAL_TEMP: join(d, 'tmp'), XDG_CACHE_HOME: join(d, 'cache'), ANSIBLE_CONFIG: join(d, 'none.cfg'), ANSIBLE_NOCOLOR: '1', ANSIBLE_RETRY_FILES_ENABLED: '0', ANSIBLE_HOST_KEY_CHECKING: '1', NO_COLOR: '1', PY_COLORS: '0' };
}

needTools(missingTools('ansible-lint'))('ansible-lint passes the role and the playbook (production profile)', (t) => {
  const d = tmp(t);
  const r = spawnSync('ansible-lint', ['--offline', '--nocolor', 'playbook.yml', 'roles/nsprobe'], { cwd: ANSIBLE, encoding: 'utf8', env: ansibleEnv(d), timeout: 240000 });
  t.is(r.status, 0, r.stdout + r.stderr);
  t.regex(r.stdout + r.stderr, /Passed with production profile/);
  t.deepEqual(spawnSync('git', ['status', '--porcelain', '--ignored', 'ansible'], { cwd: ROOT, encoding: 'utf8' }).stdout, '', 'lint leaves nothing in ansible/');
});

needTools(sshdMissing() ?? missingTools('ansible-playbook'))('the playbook probes three sshd hosts and an unreachable one; one merge shows all four; the unreachable one fails no other', async (t) => {
  const lab = await startSshdLab();
  t.teardown(() => lab.close());
  const d = tmp(t);
  const reports = join(d, 'reports');
  // Each host with its own connection variables, as an inventory of a real fleet would have them:
  // the ProxyCommand and known_hosts in ansible_ssh_common_args, the key in its own variable.
  const hostVars = (h: { user: string; port: number; options: string[] }, name: string) => {
    const common = [];
    for (let i = 1; i < h.options.length; i += 2) if (!h.options[i].startsWith('IdentityFile=')) common.push(`-o '${h.options[i]}'`);
    return { ansible_host: name, ansible_port: h.port, ansible_user: h.user, ansible_ssh_private_key_file: lab.hosts[0].key, ansible_ssh_common_args: common.join(' ') };
  };
  const hosts: Record<string, object> = {};
  for (const h of lab.hosts) hosts[h.kind] = hostVars(h, h.name);
  hosts.unreachable = hostVars({ user: 'root', port: 2999, options: lab.unreachable.options }, lab.unreachable.name);
  const inventory = join(d, 'inventory.json');
  writeFileSync(inventory, JSON.stringify({ all: { hosts } }));
  const extra = JSON.stringify({ nsprobe_command: [process.execPath, CLI], nsprobe_reports_dir: reports, nsprobe_args: ['--timeout', '60000'] });
  const r = spawnSync('ansible-playbook', ['-i', inventory, '-e', extra, '--forks', '2', join(ANSIBLE, 'playbook.yml')], { cwd: d, encoding: 'utf8', env: ansibleEnv(d), timeout: 600000 });
  t.is(r.status, 0, r.stdout + r.stderr);
  t.regex(r.stdout, /unreachable not probed: .*host unreachable/);
  t.regex(r.stdout, /PLAY RECAP[\s\S]*unreachable\s+: ok=\d+ .*failed=0/);
  for (const h of [...lab.hosts.map((x) => x.kind), 'unreachable']) t.true(existsSync(join(reports, 'hosts', h, 'report.json')), `${h}: its report came back to the controller`);
  const m = JSON.parse(readFileSync(join(reports, 'matrix', 'matrix.json'), 'utf8')) as Matrix;
  t.is(m.hosts.length, 4, 'all four hosts in the matrix');
  const byName = Object.fromEntries(m.hosts.map((h) => [h.hostname, h]));
  const cellsOf = (name: string) => Object.values(m.cells[byName[name].label] ?? {});
  t.true(
    cellsOf(lab.unreachable.name).every((c) => c.status === 'error' && c.gate === 'unreachable'),
    'the unreachable host is marked as such',
  );
  for (const h of lab.hosts) {
    t.truthy(byName[h.name], `${h.name} in the matrix (its own hostname: the report is the target's)`);
    if (!byName[h.name]) continue;
    t.false(
      cellsOf(h.name).some((c) => c.gate === 'unreachable'),
      `${h.name} was reached`,
    );
  }
  for (const h of lab.hosts) t.deepEqual(await lab.strays(h), [], `${h.name}: no process left`);
  for (const h of lab.hosts) t.deepEqual(lab.leftovers(h), [], `${h.name}: nothing left in its tmp or home`);
});
