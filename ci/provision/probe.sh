#!/bin/sh
# Runs nsprobe in the guest, twice: as root and as the unprivileged vagrant user, each in its own copy
# of /vagrant (so a root-owned build/ or node_modules/ never gets in the user's way), and leaves
#   /vagrant/reports/matrix/<name>/root/{report.json,report.tap,junit.xml,report.md,report.html,probe.log}
#   /vagrant/reports/matrix/<name>/user/...
# A probe that finds failing namespaces still counts as a run; only a missing report.json fails here.
# Usage: probe.sh <name>   (run as root; ci/provision/<family>.sh must have run first)
set -u
name="${1:?usage: probe.sh <name>}"
src=/vagrant
out="$src/reports/matrix/$name"
run_user="${NSPROBE_RUN_USER:-vagrant}"
[ -f /etc/nsprobe-env.sh ] && . /etc/nsprobe-env.sh

# NSPROBE_PREBUILT=1 (an offline box, ci/provision/local.sh): the synced tree carries the host's build; run it as is
if [ "${NSPROBE_PREBUILT:-}" = 1 ]; then keep_build='' probe_cmd='node dist/src/cli.js --out'; else keep_build='--exclude=./build --exclude=./dist' probe_cmd='npm ci && npm run probe -- --out'; fi
copy_tree() { # copy_tree DEST: the project without host build products (unless prebuilt)
  rm -rf "$1" && mkdir -p "$1"
  # shellcheck disable=SC2086
  tar -C "$src" --exclude=./node_modules $keep_build --exclude=./reports --exclude=./.git -cf - . | tar -C "$1" -xf -
}

rm -rf "$out" && mkdir -p "$out/root" "$out/user"
failed=0

echo "probe.sh: [$name] root"
copy_tree /var/tmp/nsprobe-root
( cd /var/tmp/nsprobe-root && eval "$probe_cmd \"\$out/root\"" ) > "$out/root/probe.log" 2>&1
echo "probe.sh: [$name] root: exit $?"
[ -f "$out/root/report.json" ] || { echo "probe.sh: [$name] root: no report.json; last lines of probe.log:"; tail -n 30 "$out/root/probe.log"; failed=1; }

echo "probe.sh: [$name] user ($run_user)"
home=$(awk -F: -v u="$run_user" '$1 == u { print $6 }' /etc/passwd)
copy_tree "$home/nsprobe"
chown -R "$run_user" "$home/nsprobe"
sudo -u "$run_user" -H sh -c '[ -f /etc/nsprobe-env.sh ] && . /etc/nsprobe-env.sh; cd "$HOME/nsprobe" && eval "$1 reports/user"' sh "$probe_cmd" > "$out/user/probe.log" 2>&1
echo "probe.sh: [$name] user: exit $?"
if [ -d "$home/nsprobe/reports/user" ]; then cp -R "$home/nsprobe/reports/user/." "$out/user/"; fi
[ -f "$out/user/report.json" ] || { echo "probe.sh: [$name] user: no report.json; last lines of probe.log:"; tail -n 30 "$out/user/probe.log"; failed=1; }

chown -R "$run_user" "$src/reports" 2>/dev/null || true
exit "$failed"
