// The ProxyCommand of the sshd test hosts: run inside a host's network namespace (nsenter -n),
// it connects to HOST:PORT there and copies bytes both ways between that socket and its
// stdin/stdout. A refused connection is one line on stderr and exit 1 (ssh then reports the
// host as unreachable, as it would a refused TCP connection).
import { connect } from 'node:net';

const [host, port, delayArg] = process.argv.slice(2);
const delay = Number(delayArg ?? 0);
const sock = connect({ host, port: Number(port) });
sock.on('error', (e) => {
  process.stderr.write(`ssh-relay: connect to ${host} port ${port}: ${e.code ?? e.message}\n`);
  process.exit(1);
});
sock.on('connect', () => {
  process.stdin.pipe(sock);
  if (!delay) sock.pipe(process.stdout);
  else {
    let chain = Promise.resolve();
    sock.on('data', (d) => {
      chain = chain.then(() => new Promise((r) => setTimeout(() => process.stdout.write(d, () => r()), delay)));
    });
  }
});
sock.on('close', () => setTimeout(() => process.exit(0), delay * 2));
process.stdin.on('end', () => sock.end());
