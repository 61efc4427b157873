#!/bin/sh
# CentOS 7 (EOL): Node 20 + a C++17 compiler for the native addon.
# - The CentOS 7 mirrors are gone: base/updates/extras and SCLo are pointed at vault.centos.org.
# - Official Node 18+ builds need glibc 2.28; CentOS 7 has 2.17. We use the unofficial-builds
#   linux-x64-glibc-217 tarball (see node-tarball.sh) in /opt/node. Needs internet at provision time.
# - gcc 4.8.5 has no -std=c++17: devtoolset-11 (Software Collections) provides gcc 11.
# - python3 3.6 from base satisfies node-gyp 12 (>= 3.6).
# user.max_user_namespaces is left at its default (0): that is what the matrix is meant to show.
set -eu

to_vault() {
  for f in "$@"; do
    [ -f "$f" ] || continue
    sed -i -e 's/^mirrorlist=/#mirrorlist=/' \
           -e 's|^#\{0,1\}baseurl=http://mirror.centos.org|baseurl=http://vault.centos.org|' "$f"
  done
}

to_vault /etc/yum.repos.d/CentOS-*.repo
yum -y -q install centos-release-scl-rh
to_vault /etc/yum.repos.d/CentOS-SCLo-*.repo
yum -y -q install devtoolset-11-gcc devtoolset-11-gcc-c++ devtoolset-11-make make python3 tar xz curl rsync

. /vagrant/ci/provision/node-tarball.sh
install_node_tarball glibc-217 python3

cat > /etc/nsprobe-env.sh <<'ENV'
# Written by ci/provision/el7.sh; sourced by ci/provision/probe.sh for root and the vagrant user.
. /opt/rh/devtoolset-11/enable
PATH=/opt/node/bin:$PATH
export PATH
ENV
. /etc/nsprobe-env.sh
echo "el7: node $(node --version), npm $(npm --version), $(gcc --version | head -n1)"
