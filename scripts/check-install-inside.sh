#!/bin/sh
# Run by scripts/check-install.mjs inside the minimal Debian root (its own /, no compiler), as root.
set -u
export PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME=/root npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
if [ -f /etc/ssl/nsprobe-extra-ca.crt ]; then export NODE_EXTRA_CA_CERTS=/etc/ssl/nsprobe-extra-ca.crt; else unset NODE_EXTRA_CA_CERTS; fi
[ -n "${npm_config_registry:-}" ] || unset npm_config_registry
for t in gcc cc g++ c++ make python3 python; do
  if command -v $t >/dev/null 2>&1; then echo "a compiler tool is present: $t" >&2; exit 10; fi
done
echo "RESULT node=$(node --version)"
cd /tmp
v=$(npx --yes --package=/nsprobe-in/nsprobe.tgz nsprobe --version 2>/tmp/npx.log) || { tail -5 /tmp/npx.log >&2; exit 11; }
echo "RESULT npx_version=$v"
npx --yes --package=/nsprobe-in/nsprobe.tgz nsprobe --only uts,ipc --format json --out /tmp/r-npx > /tmp/npx-run.log 2>&1; echo "RESULT npx_exit=$?"
t0=$(date +%s%N)
npm install -g /nsprobe-in/nsprobe.tgz > /tmp/npm-install.log 2>&1 || { tail -20 /tmp/npm-install.log >&2; exit 12; }
t1=$(date +%s%N)
echo "RESULT install_ms=$(( (t1 - t0) / 1000000 ))"
echo "RESULT install_warnings=$(grep -c "npm warn" /tmp/npm-install.log)"
echo "RESULT install_warning_text=$(grep "npm warn" /tmp/npm-install.log | tr "\n" " ")"
v=$(nsprobe --version) || exit 13
echo "RESULT version=$v"
if [ -e /usr/local/lib/node_modules/nsprobe/build ]; then echo "built from source in a root without a compiler?" >&2; exit 14; fi
nsprobe --out /tmp/r-root --format json > /tmp/run-root.log 2>&1; echo "RESULT root_exit=$?"
mkdir -p /tmp/nobody-home && chown 65534:65534 /tmp/nobody-home
setpriv --reuid=65534 --regid=65534 --clear-groups env HOME=/tmp/nobody-home nsprobe --out /tmp/r-nobody --format json > /tmp/run-nobody.log 2>&1; echo "RESULT nobody_exit=$?"
out=$(npm_config_build_from_source=true npm install -g --allow-scripts=nsprobe /nsprobe-in/nsprobe.tgz 2>&1); echo "RESULT nocompiler_exit=$?"
echo "RESULT nocompiler=$(echo "$out" | grep -m1 'nsprobe: ' | sed 's/^.*nsprobe: /nsprobe: /')"
exit 0
