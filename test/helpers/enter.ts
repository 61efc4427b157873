// Tries to enter and prints the error as {stage, code, syscall} (or {ok:true}).
import { enter } from '../../src/sandbox.js';
import type { Mode, NsType } from '../../src/model.js';

const [mode, ...ns] = process.argv.slice(2);
try {
  const s = await enter({ namespaces: ns as NsType[], mode: mode as Mode });
  await s.close();
  console.log(JSON.stringify({ ok: true }));
} catch (e) {
  const x = e as { stage: string; code: string; syscall: string };
  console.log(JSON.stringify({ stage: x.stage, code: x.code, syscall: x.syscall }));
}
