// Every probe, in the order the report lists them.
import type { ProbeDef } from '../src/probe.js';
import { cgroup } from './cgroup.js';
import { ipc } from './ipc.js';
import { mnt } from './mnt.js';
import { net } from './net.js';
import { pid } from './pid.js';
import { time } from './time.js';
import { user } from './user.js';
import { uts } from './uts.js';

export const PROBES: readonly ProbeDef[] = [uts, ipc, pid, net, mnt, user, cgroup, time];
