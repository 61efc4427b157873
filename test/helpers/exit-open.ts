// Opens sandboxes, prints their host pids and exits without closing them.
import { enter } from '../../src/sandbox.js';

const a = await enter({ namespaces: ['uts'], mode: 'rootless' });
const b = await enter({ namespaces: ['pid', 'mnt'], mode: 'rootless' });
const c = await enter({ namespaces: ['net'], mode: 'rootless' });
console.log(JSON.stringify([a.pid, b.pid, c.pid]));
process.exit(0);
