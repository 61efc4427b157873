#!/bin/sh
# Fedora: Node from the Fedora repos (nodejs 20+ in every release since 39); NodeSource when too old.
# An end-of-life release has left the mirrors: fall back to archives.fedoraproject.org.
set -eu
. /etc/os-release
node_ok() { command -v node >/dev/null 2>&1 && node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>20||(a===20&&b>=17)?0:1)'; }

if ! dnf -y -q makecache; then
  echo "fedora: mirrors do not answer for Fedora $VERSION_ID (end of life?): switching to the archive"
  for f in /etc/yum.repos.d/fedora*.repo; do
    sed -i -e 's/^metalink=/#metalink=/' \
           -e 's|^#\{0,1\}baseurl=http://download.example/pub/fedora/linux|baseurl=https://archives.fedoraproject.org/pub/archive/fedora/linux|' "$f"
  done
  dnf -y -q makecache
fi
dnf -y -q install gcc gcc-c++ make python3 tar rsync curl
dnf -y -q install nodejs nodejs-devel npm || true
if ! node_ok; then
  echo "fedora: distro nodejs missing or older than 20.17; using NodeSource"
  dnf -y -q remove nodejs nodejs-devel npm || true
  curl -fsSL https://rpm.nodesource.com/setup_20.x | bash -
  dnf -y -q install nodejs
fi
node_ok
printf '%s\n' '# Written by ci/provision/fedora.sh; nothing to add on Fedora.' > /etc/nsprobe-env.sh
echo "fedora: $PRETTY_NAME node $(node --version), npm $(npm --version)"
