#!/usr/bin/env node
// The far end of `nsprobe --via` for a QEMU guest of ci/kernels.mjs: connects to the Unix socket
// QEMU serves for one of the guest's virtio-serial ports, sends the command it was given (argv, as
// `nsprobe --via` runs `CMD sh -c BOOTSTRAP`) as one line, then copies stdin to the port and the
// port to stdout. In the guest a shell reads that line and execs it with the port as its stdin and
// stdout (guestScript in ci/kernels.mjs), so the bootstrap and then the agent speak over the port.
//
//   node ci/guest-pipe.mjs SOCKET CMD [ARG...]
//
// The line is the command's words, each single-quoted for sh, base64-encoded: one line whatever the
// words hold (the bootstrap spans lines), decoded in the guest by busybox base64.
// When stdin ends (the controller is done) the socket is shut: QEMU tells the guest the host side
// closed, the agent reads end of file there and exits, killing what it made. Exit: 0 when the port
// closed after stdin ended, 1 when the socket cannot be reached or fails, 2 bad arguments.
import net from 'node:net';

const [sock, ...argv] = process.argv.slice(2);
if (!sock || argv.length === 0) {
  process.stderr.write('usage: node ci/guest-pipe.mjs SOCKET CMD [ARG...]\n');
  process.exit(2);
}
const q = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`;
const line = `${Buffer.from(argv.map(q).join(' ')).toString('base64')}\n`;

const s = net.connect(sock);
let ended = false;
s.on('connect', () => {
  s.write(line);
  process.stdin.pipe(s);
  s.pipe(process.stdout);
});
process.stdin.on('end', () => (ended = true));
s.on('error', (e) => {
  process.stderr.write(`guest-pipe: ${sock}: ${e.message}\n`);
  process.exit(1);
});
s.on('close', () => process.stdout.write('', () => process.exit(ended ? 0 : 1)));
