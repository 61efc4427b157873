// The remote flags of the command line and their parsing (kept apart from the fleet runner, so a
// local run loads none of it beyond this).
import { intValue, UsageError, type FlagSpecs } from '../args.js';
import { checkSshOptions, shellWords, type SshSettings } from './ssh.js';
import { parseTargets, readHostsFile, type Target } from './targets.js';

export const REMOTE_FLAGS = {
  ssh: { type: 'string', list: true, value: '[user@]host[:port]' },
  hosts: { type: 'string', value: 'a file' },
  jobs: { type: 'string', value: 'a number' },
  sudo: { type: 'boolean' },
  'ssh-config': { type: 'string', value: 'a file' },
  'ssh-option': { type: 'string', repeat: true, value: 'KEY=VALUE' },
} as const satisfies FlagSpecs;

export const REMOTE_HELP = `
Remote hosts (through the system's OpenSSH client; see README, Probing a remote host):
  --ssh LIST         probe [user@]host[:port] over ssh instead of this machine; several as
                     h1,h2 or repeated. Your ssh_config, keys, ssh-agent and ProxyJump apply;
                     ssh runs with BatchMode=yes (no password prompts). Nothing is installed on
                     the target: the agent is copied into a private folder, run and removed.
  --hosts FILE       more targets, one per line (# starts a comment)
  --jobs N           hosts probed at once, 1 to 256 (default 4); with several hosts each gets
                     OUT/[user@]host[_port]/ and OUT/matrix.* merges them
  --sudo             run the agent through sudo -n (both modes; a refused sudo is that host's result)
  --ssh-config FILE  ssh -F FILE
  --ssh-option K=V   ssh -o K=V (repeatable; e.g. IdentityFile=PATH, ProxyJump=bastion)
  NSPROBE_SSH_ARGS   more ssh arguments, split like a shell (e.g. Ansible's ansible_ssh_common_args)
  Exit codes add: 4 a host could not be probed at all (unreachable, login or sudo refused, no
  agent for its architecture); its report says why. With several hosts: 4 if any host was not
  probed, else 1 if any host's run would exit 1, else 0.
`;

export interface RemoteOptions {
  targets: Target[];
  jobs: number;
  ssh: SshSettings;
}

type RemoteValues = { ssh?: string[]; hosts?: string; jobs?: string; sudo?: boolean; 'ssh-config'?: string; 'ssh-option'?: string[] };

/** The remote options of a command line, or null for a local run (then no remote flag may be given). */
export function parseRemote(v: RemoteValues, env: NodeJS.ProcessEnv = process.env): RemoteOptions | null {
  const specs = [...(v.ssh ?? []), ...(v.hosts !== undefined ? readHostsFile(v.hosts) : [])];
  if (!specs.length) {
    const stray = (['jobs', 'sudo', 'ssh-config', 'ssh-option'] as const).find((k) => v[k] !== undefined);
    if (stray) throw new UsageError(`--${stray} is for remote runs: give --ssh HOST or --hosts FILE too`);
    return null;
  }
  const targets = parseTargets(specs, v.hosts !== undefined && !v.ssh ? '--hosts' : '--ssh');
  const options = v['ssh-option'] ?? [];
  checkSshOptions(options);
  return {
    targets,
    jobs: intValue('--jobs', v.jobs, 4, 1, 256),
    ssh: { config: v['ssh-config'] ?? null, options, extra: shellWords(env.NSPROBE_SSH_ARGS ?? ''), sudo: !!v.sudo },
  };
}

