#!/bin/sh
# Debian and Ubuntu: build tools from apt, Node 20 from NodeSource (the distros ship Node 12-18).
set -eu
. /etc/os-release
export DEBIAN_FRONTEND=noninteractive
node_ok() { command -v node >/dev/null 2>&1 && node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>20||(a===20&&b>=17)?0:1)'; }

# Boxes boot with unattended-upgrades running: wait for the dpkg lock instead of failing.
apt_get() { apt-get -o DPkg::Lock::Timeout=600 "$@"; }

apt_get update -q
apt_get install -y -q --no-install-recommends ca-certificates curl gnupg build-essential python3 rsync tar xz-utils
if ! node_ok; then
  curl -fsSL https://deb.nodesource.com/setup_20.x | bash -
  apt_get install -y -q nodejs
fi
node_ok
printf '%s\n' '# Written by ci/provision/debian.sh; nothing to add on Debian/Ubuntu.' > /etc/nsprobe-env.sh
echo "debian: $PRETTY_NAME node $(node --version), npm $(npm --version)"
