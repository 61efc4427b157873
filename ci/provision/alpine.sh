#!/bin/sh
# Alpine (musl): build tools from apk; Node from the unofficial-builds linux-x64-musl tarball
# (see node-tarball.sh) because Alpine 3.19's nodejs (20.15) is older than node-gyp 12 accepts
# (^20.17 || >=22.9) and .npmrc has engine-strict. Needs internet at provision time.
set -eu
apk add --no-cache build-base python3 linux-headers libstdc++ curl tar xz rsync
. /vagrant/ci/provision/node-tarball.sh
install_node_tarball musl python3
cat > /etc/nsprobe-env.sh <<'ENV'
# Written by ci/provision/alpine.sh; sourced by ci/provision/probe.sh.
PATH=/opt/node/bin:$PATH
export PATH
ENV
. /etc/nsprobe-env.sh
echo "alpine: $(cat /etc/alpine-release) node $(node --version), npm $(npm --version)"
