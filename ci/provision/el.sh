#!/bin/sh
# EL 8 / EL 9 (Rocky, Alma): Node 20 from the nodejs:20 dnf module (AppStream), else NodeSource.
set -eu
. /etc/os-release
node_ok() { command -v node >/dev/null 2>&1 && node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>20||(a===20&&b>=17)?0:1)'; }

dnf -y -q install gcc gcc-c++ make python3 tar rsync curl
if dnf -y -q module reset nodejs && dnf -y -q module enable nodejs:20 && dnf -y -q install nodejs nodejs-devel npm && node_ok; then
  echo "el: nodejs from the nodejs:20 module"
else
  echo "el: nodejs:20 module missing or too old on $PRETTY_NAME; using NodeSource"
  dnf -y -q remove nodejs nodejs-devel npm || true
  dnf -y -q module reset nodejs || true
  curl -fsSL https://rpm.nodesource.com/setup_20.x | bash -
  dnf -y -q install nodejs
fi
node_ok
printf '%s\n' '# Written by ci/provision/el.sh; nothing to add on EL 8/9.' > /etc/nsprobe-env.sh
echo "el: $PRETTY_NAME node $(node --version), npm $(npm --version)"
