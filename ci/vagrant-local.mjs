#!/usr/bin/env node
// The Vagrant path, for real, on this machine: builds a small Debian 12 box here (debootstrap,
// linux-image-cloud-amd64, sshd, the vagrant user with Vagrant's insecure key; no Node: an ext4 image
// as qcow2 for vagrant-libvirt), then brings it up with Debian's vagrant + vagrant-libvirt + libvirtd
// under QEMU TCG and probes it through ci/matrix.mjs (vagrant ssh-config + nsprobe --ssh from here).
//
// Every network the VM uses stays inside a network namespace this script creates: libvirtd, vagrant
// and ci/matrix.mjs run inside `unshare --net --mount`, so libvirt's management network (its bridge,
// dnsmasq and the guest's address) exists only there and goes away with it; the mount namespace gives
// libvirtd private /run, /etc/libvirt, /var/lib/libvirt, /var/cache/libvirt and /var/log/libvirt
// (folders under .cache/vagrant/state, removed at the end).
//
//   node ci/vagrant-local.mjs [--out reports/vagrant-local] [--timeout 3600] [--rebuild]
//
// Exit: 0 the box was probed and merged; 1 it failed; 2 bad flags; 3 a tool is missing; 130 interrupted.
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseCommand, quietStdout } from './args.mjs';
import { aptInstall, which } from './tools.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CACHE = path.join(ROOT, '.cache/vagrant');
const BOX_NAME = 'nsprobe-local/debian12';
const MACHINE = 'debian12-local';
const PACKAGES = ['systemd-sysv', 'openssh-server', 'sudo', 'linux-image-cloud-amd64', 'initramfs-tools', 'rsync', 'iproute2', 'libstdc++6', 'ca-certificates', 'util-linux', 'procps'];
const TOOLS = { debootstrap: 'debootstrap', 'mkfs.ext4': 'e2fsprogs', 'qemu-img': 'qemu-utils', vagrant: 'vagrant', libvirtd: 'libvirt-daemon', virsh: 'libvirt-clients', 'qemu-system-x86_64': 'qemu-system-x86', dnsmasq: 'dnsmasq-base', unshare: 'util-linux', iptables: 'iptables' };
const EXTRA_PKGS = ['vagrant-libvirt', 'libvirt-daemon-driver-qemu'];

class UsageError extends Error {}
class MissingError extends Error {}
const log = (m) => process.stdout.write(`${m}\n`);

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0 && !opts.allowFail) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status ?? r.signal}: ${(r.stderr || r.stdout || '').trim().split('\n').slice(-4).join(' | ')}`);
  return r;
}

function insecureKey() {
  const r = spawnSync('sh', ['-c', 'ls /usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant.pub /usr/share/vagrant/keys/vagrant.pub /opt/vagrant/embedded/gems/gems/vagrant-*/keys/vagrant.pub 2>/dev/null | head -1'], { encoding: 'utf8' });
  const p = r.stdout.trim();
  if (!p) throw new MissingError("Vagrant's insecure public key (keys/vagrant.pub of the vagrant package) was not found");
  return fs.readFileSync(p, 'utf8').trim();
}

function ensureTools() {
  const missing = () => Object.keys(TOOLS).filter((t) => !which(t));
  const plugin = () => fs.existsSync('/usr/share/rubygems-integration/all/gems') && fs.readdirSync('/usr/share/rubygems-integration/all/gems').some((d) => d.startsWith('vagrant-libvirt-'));
  if (missing().length === 0 && plugin()) return;
  const pkgs = [...new Set([...missing().map((t) => TOOLS[t]), ...EXTRA_PKGS])];
  // libvirt-daemon-system is not installed on purpose: its postinst would start libvirtd in the host's namespaces with the default NAT network
  const r = aptInstall(pkgs);
  if (r.status !== 0 || missing().length || !plugin()) throw new MissingError(`missing: ${[...missing(), ...(plugin() ? [] : ['vagrant-libvirt'])].join(', ')}; apt-get install ${pkgs.join(' ')}: ${(r.stderr || '').trim().split('\n').slice(-2).join(' | ')}`);
}

// ---------- the box ----------

function rootfs() {
  const dir = path.join(CACHE, 'rootfs');
  if (fs.existsSync(path.join(dir, '.nsprobe-debootstrapped'))) return dir;
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(CACHE, { recursive: true });
  log(`[box] debootstrap bookworm (${PACKAGES.length} extra packages) into ${dir}`);
  const t0 = Date.now();
  run('nice', ['-n', '10', 'debootstrap', '--variant=minbase', `--include=${PACKAGES.join(',')}`, 'bookworm', dir, 'http://deb.debian.org/debian'], { stdio: ['ignore', 'ignore', 'pipe'] });
  fs.writeFileSync(path.join(dir, '.nsprobe-debootstrapped'), `${Math.round((Date.now() - t0) / 1000)}\n`);
  return dir;
}

/** Writes the guest's configuration into the rootfs (idempotent): fstab, DHCP, sshd, the vagrant user (no Node: the agent comes over ssh). */
function configure(dir, key) {
  const w = (p, text, mode = 0o644) => {
    fs.mkdirSync(path.dirname(path.join(dir, p)), { recursive: true });
    fs.writeFileSync(path.join(dir, p), text, { mode });
  };
  w('etc/hostname', 'nsprobe-local\n');
  w('etc/hosts', '127.0.0.1 localhost\n127.0.1.1 nsprobe-local\n');
  w('etc/fstab', '/dev/vda / ext4 defaults 0 1\n');
  w('etc/systemd/network/80-dhcp.network', '[Match]\nName=eth* en*\n\n[Network]\nDHCP=yes\n');
  const wants = path.join(dir, 'etc/systemd/system/multi-user.target.wants');
  fs.mkdirSync(wants, { recursive: true });
  for (const [unit, target] of [['systemd-networkd.service', '/lib/systemd/system/systemd-networkd.service'], ['ssh.service', '/lib/systemd/system/ssh.service']]) {
    fs.rmSync(path.join(wants, unit), { force: true });
    fs.symlinkSync(target, path.join(wants, unit));
  }
  w('etc/ssh/sshd_config.d/nsprobe.conf', 'UseDNS no\nPasswordAuthentication no\n');
  if (!/^vagrant:/m.test(fs.readFileSync(path.join(dir, 'etc/passwd'), 'utf8'))) run('chroot', [dir, 'useradd', '-m', '-s', '/bin/bash', '-u', '1000', 'vagrant']);
  w('etc/sudoers.d/vagrant', 'vagrant ALL=(ALL) NOPASSWD: ALL\nDefaults:vagrant !requiretty\n', 0o440);
  w('home/vagrant/.ssh/authorized_keys', `${key}\n`, 0o600);
  run('chroot', [dir, 'chown', '-R', 'vagrant:vagrant', '/home/vagrant/.ssh']);
  fs.chmodSync(path.join(dir, 'home/vagrant/.ssh'), 0o700);
  fs.rmSync(path.join(dir, 'usr/local/bin/node'), { force: true }); // put there by earlier versions of this script
  // apt in the guest has no way out: keep it from trying on boot
  for (const t of ['apt-daily.timer', 'apt-daily-upgrade.timer']) fs.rmSync(path.join(dir, 'etc/systemd/system/timers.target.wants', t), { force: true });
}

/** The box: qcow2 ext4 image + direct-boot kernel/initrd, added to Vagrant (VAGRANT_HOME under .cache). Cached by a hash of what goes in. */
export function buildBox(env, rebuild) {
  const dir = rootfs();
  const key = insecureKey();
  configure(dir, key);
  const boot = fs.readdirSync(path.join(dir, 'boot'));
  const vmlinuz = boot.find((f) => f.startsWith('vmlinuz-'));
  const initrd = boot.find((f) => f.startsWith('initrd.img-'));
  if (!vmlinuz || !initrd) throw new Error(`${dir}/boot has no vmlinuz-*/initrd.img-* (linux-image-cloud-amd64 not installed?)`);
  const hash = crypto.createHash('sha256').update(`${vmlinuz}\n${key}\n${PACKAGES.join(',')}\n${fs.readFileSync(fileURLToPath(import.meta.url), 'utf8')}`).digest('hex').slice(0, 12);
  const boxDir = path.join(CACHE, `box-${hash}`);
  if (rebuild || !fs.existsSync(path.join(boxDir, 'nsprobe-local.box'))) {
    for (const old of fs.readdirSync(CACHE).filter((f) => f.startsWith('box-'))) fs.rmSync(path.join(CACHE, old), { recursive: true, force: true });
    fs.mkdirSync(boxDir, { recursive: true });
    const t0 = Date.now();
    log(`[box] mkfs.ext4 -d (no loop device, no mount) + qemu-img convert -> ${boxDir}/box.img`);
    const raw = path.join(boxDir, 'box.raw');
    run('mkfs.ext4', ['-q', '-F', '-L', 'root', '-d', dir, raw, '4G']);
    run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, path.join(boxDir, 'box.img')]);
    fs.rmSync(raw);
    fs.copyFileSync(path.join(dir, 'boot', vmlinuz), path.join(boxDir, 'vmlinuz'));
    fs.copyFileSync(path.join(dir, 'boot', initrd), path.join(boxDir, 'initrd.img'));
    fs.writeFileSync(path.join(boxDir, 'metadata.json'), `${JSON.stringify({ provider: 'libvirt', format: 'qcow2', virtual_size: 4 })}\n`);
    fs.writeFileSync(path.join(boxDir, 'Vagrantfile'), "Vagrant.configure('2') { |c| c.vm.provider(:libvirt) { |lv| lv.driver = 'qemu' } }\n");
    run('tar', ['-C', boxDir, '-cf', path.join(boxDir, 'nsprobe-local.box'), 'metadata.json', 'Vagrantfile', 'box.img']);
    fs.rmSync(path.join(boxDir, 'box.img'));
    log(`[box] built in ${Math.round((Date.now() - t0) / 1000)} s (${vmlinuz})`);
    run('vagrant', ['box', 'add', '--force', '--name', BOX_NAME, path.join(boxDir, 'nsprobe-local.box')], { env });
  }
  return boxDir;
}

// ---------- inside the namespaces ----------

/** The shell that runs inside `unshare --net --mount`: loopback, private libvirt folders, libvirtd, ci/matrix.mjs. */
function innerScript(state, opts) {
  const q = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`;
  return `set -u
st=${q(state)}
ip link set lo up
mount -t tmpfs -o mode=0755 tmpfs /run
for d in etc lib cache log; do mkdir -p "$st/$d"; done
mkdir -p "$st/lib/images"
cp -a /etc/libvirt/. "$st/etc/"
cat > "$st/etc/qemu.conf" <<'CONF'
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
CONF
printf 'unix_sock_group = "root"\\nauth_unix_rw = "none"\\n' > "$st/etc/libvirtd.conf"
# libvirtd looks up its compiled-in user libvirt-qemu before reading qemu.conf: give it one in private copies of passwd/group
cp /etc/passwd "$st/passwd"; cp /etc/group "$st/group"
grep -q '^libvirt-qemu:' "$st/passwd" || echo 'libvirt-qemu:x:64055:64055:libvirt qemu:/var/lib/libvirt:/usr/sbin/nologin' >> "$st/passwd"
for g in libvirt-qemu:64055 kvm:64056 libvirt:64057; do grep -q "^\${g%%:*}:" "$st/group" || echo "\${g%%:*}:x:\${g#*:}:" >> "$st/group"; done
mount --bind "$st/passwd" /etc/passwd; mount --bind "$st/group" /etc/group
mount --bind "$st/etc" /etc/libvirt
mount --bind "$st/lib" /var/lib/libvirt
mount --bind "$st/cache" /var/cache/libvirt
mount --bind "$st/log" /var/log/libvirt
echo "vagrant-local: in a new network namespace: $(ip -o link | awk -F': ' '{print $2}' | tr '\\n' ' ')"
libvirtd >"$st/libvirtd.log" 2>&1 &
lv=$!
i=0; while [ ! -S /run/libvirt/libvirt-sock ] && [ $i -lt 100 ]; do sleep 0.2; i=$((i+1)); done
if [ ! -S /run/libvirt/libvirt-sock ]; then echo "vagrant-local: libvirtd did not start:"; tail -5 "$st/libvirtd.log"; kill $lv; exit 1; fi
virsh -c qemu:///system pool-define-as default dir --target /var/lib/libvirt/images >/dev/null && virsh -c qemu:///system pool-start default >/dev/null
node ${q(path.join(ROOT, 'ci/matrix.mjs'))} --boxes ${MACHINE} --provider libvirt --jobs 1 --retries 0 --timeout ${opts.timeout} --out ${q(opts.out)}
rc=$?
for d in $(virsh -c qemu:///system list --all --name); do virsh -c qemu:///system destroy "$d" >/dev/null 2>&1; virsh -c qemu:///system undefine "$d" --remove-all-storage >/dev/null 2>&1; done
kill $lv; wait $lv
exit $rc
`;
}

function parse(argv) {
  try {
    const { values } = parseCommand({ out: { type: 'string', value: 'a folder' }, timeout: { type: 'string', value: 'seconds' }, rebuild: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, argv);
    const t = values.timeout ?? '3600';
    if (!/^\d+$/.test(t) || Number(t) < 1) throw new UsageError(`--timeout takes a whole number of seconds from 1 up, not '${t}'`);
    return { help: values.help ?? false, out: path.resolve(values.out ?? path.join(ROOT, 'reports/vagrant-local')), timeout: Number(t), rebuild: values.rebuild ?? false };
  } catch (e) {
    throw e instanceof UsageError ? e : new UsageError(e.message);
  }
}

let inner = null;
const made = []; // mount points created on the host (empty folders), removed at the end

async function main(argv) {
  const opts = parse(argv);
  if (opts.help) return process.stdout.write('usage: node ci/vagrant-local.mjs [--out DIR] [--timeout SECONDS] [--rebuild]\n'), 0;
  if (process.geteuid?.() !== 0) throw new MissingError('needs root: debootstrap, libvirtd and the network namespace');
  for (const f of ['dist/src/cli.js', 'build/Release/nsprobe.node']) if (!fs.existsSync(path.join(ROOT, f))) throw new MissingError(`${f} is missing: build first (npm ci)`);
  ensureTools();
  const t0 = Date.now();
  const env = { ...process.env, VAGRANT_HOME: path.join(CACHE, 'home'), VAGRANT_CHECKPOINT_DISABLE: '1', VAGRANT_NO_COLOR: '1' };
  const boxDir = buildBox(env, opts.rebuild);
  const state = path.join(CACHE, 'state');
  fs.rmSync(state, { recursive: true, force: true });
  fs.mkdirSync(state, { recursive: true });
  for (const d of ['/var/lib/libvirt', '/var/cache/libvirt', '/var/log/libvirt']) if (!fs.existsSync(d)) fs.mkdirSync(d), made.push(d);
  fs.mkdirSync(opts.out, { recursive: true });
  const script = path.join(state, 'inner.sh');
  fs.writeFileSync(script, innerScript(state, opts));
  log(`[vm] unshare --net --mount: libvirtd + vagrant + ci/matrix.mjs (box ${boxDir})`);
  // --pid --fork: libvirtd and its QEMU die with the namespace's init (the shell), whatever happens
  inner = spawn('unshare', ['--net', '--mount', '--pid', '--fork', '--mount-proc', '--propagation', 'private', '--kill-child', 'sh', script], {
    cwd: ROOT,
    stdio: 'inherit',
    env: { ...env, NSPROBE_BOXES_FILE: path.join(ROOT, 'ci/vagrant-local/boxes.json'), VAGRANT_CWD: path.join(ROOT, 'ci/vagrant-local'), VAGRANT_DOTFILE_PATH: path.join(CACHE, 'dot'), NSPROBE_LOCAL_BOX_DIR: boxDir, VAGRANT_DEFAULT_PROVIDER: 'libvirt' },
  });
  const code = await new Promise((r) => inner.on('exit', (c, s) => r(c ?? (s ? 128 : 1))));
  inner = null;
  cleanup(state);
  log(`vagrant-local: ${code === 0 ? 'ok' : `FAILED (exit ${code})`} in ${Math.round((Date.now() - t0) / 1000)} s; reports in ${opts.out}`);
  return code === 0 ? 0 : 1;
}

function cleanup(state) {
  for (const d of made.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  if (state) fs.rmSync(path.join(state, 'lib'), { recursive: true, force: true });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'])
    process.on(sig, () => {
      process.stderr.write(`\nvagrant-local: ${sig}: stopping\n`);
      inner?.kill('SIGTERM'); // unshare --kill-child: the namespace's processes die with it
      cleanup(path.join(CACHE, 'state'));
      process.exit(130);
    });
  quietStdout('vagrant-local');
  main(process.argv.slice(2)).then(
    (c) => (process.exitCode = c),
    (e) => {
      cleanup(null);
      process.stderr.write(`vagrant-local: ${e.message}\n`);
      process.exitCode = e instanceof UsageError ? 2 : e instanceof MissingError ? 3 : 1;
    },
  );
}
