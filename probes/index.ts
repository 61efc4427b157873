// Every probe, in the order the report lists them.
import type { ProbeDef } from '../src/probe.js';
import { cgroup } from './cgroup.js';
import { identity } from './identity.js';
import { ipc } from './ipc.js';
import { ipcMqueue } from './ipc-mqueue.js';
import { joinProbe } from './join.js';
import { mnt } from './mnt.js';
import { net } from './net.js';
import { netVeth } from './net-veth.js';
import { nesting } from './nesting.js';
import { pid } from './pid.js';
import { pidSignals } from './pid-signals.js';
import { time } from './time.js';
import { user } from './user.js';
import { uts } from './uts.js';

export const PROBES: readonly ProbeDef[] = [
  uts, ipc, pid, net, mnt, user, cgroup, time,
  // Deep probes (issue 5): beyond "the namespace exists".
  netVeth, joinProbe, nesting, identity, pidSignals, ipcMqueue,
];
