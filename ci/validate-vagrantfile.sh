#!/bin/sh
# Checks the Vagrant distro matrix without booting anything (no box download, no KVM needed):
#   1. `vagrant validate` on the repo's Vagrantfile; when no provider plugin is usable here it falls
#      back to `vagrant validate --ignore-provider` (and says so)
#   2. every box listed in ci/boxes.json is a machine Vagrant knows (`vagrant status --machine-readable`)
# (Nothing is provisioned in the boxes: ci/matrix.mjs probes them with nsprobe --ssh.)
# Needs the Debian package vagrant (and ruby, which it brings); a provider (vagrant-libvirt) is optional.
# Exit 0 when all hold, 1 otherwise; 2 when vagrant is not installed; with --provider-check, 3 when
# it has no usable provider (without one the check still runs: see below).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
vagrant=${VAGRANT:-vagrant}
if ! command -v "$vagrant" >/dev/null 2>&1; then
  echo "validate-vagrantfile: '$vagrant' not found: install it (Debian: apt-get install vagrant vagrant-libvirt)" >&2
  exit 2
fi
# Keep Vagrant's state out of the work tree and quiet (no version check, no colours).
state=$(mktemp -d)
trap 'rm -rf "$state"' EXIT
export VAGRANT_DOTFILE_PATH="$state/dot" VAGRANT_CHECKPOINT_DISABLE=1 VAGRANT_NO_COLOR=1

# Without a usable provider (no vagrant-libvirt + libvirt, no VirtualBox) Vagrant cannot list the
# machines: then they are read from the Vagrantfile itself (ci/vagrant-machines.rb evaluates it
# against a stub) and validation ignores the provider; both say so. `--provider-check` only
# reports whether a provider is usable (exit 3 when not).
noprovider=
if ! st=$("$vagrant" status --machine-readable 2>&1); then
  if printf '%s\n' "$st" | grep -qiE "no usable default provider|provider .*(could not be found|is not usable|isn't usable|not installed)|error while connecting to libvirt"; then
    noprovider=$(printf '%s\n' "$st" | grep -iE 'provider|libvirt' | head -n1)
    [ "${1:-}" = "--provider-check" ] && { echo "validate-vagrantfile: no usable provider for vagrant here: $noprovider" >&2; exit 3; }
    echo "validate-vagrantfile: no usable provider here ($noprovider): validating with --ignore-provider, machines read from the Vagrantfile"
  fi
fi
[ "${1:-}" = "--provider-check" ] && exit 0

echo "validate-vagrantfile: $("$vagrant" --version 2>/dev/null | head -n1)"
if [ -n "$noprovider" ]; then
  "$vagrant" validate --ignore-provider
elif out=$("$vagrant" validate 2>&1); then
  printf '%s\n' "$out"
else
  printf '%s\n' "$out"
  echo "validate-vagrantfile: plain validate failed (no usable provider here?); retrying with --ignore-provider"
  "$vagrant" validate --ignore-provider
fi

want=$(ruby -rjson -e 'puts JSON.parse(File.read("ci/boxes.json")).fetch("boxes").map { |b| b.fetch("name") }')
if [ -n "$noprovider" ]; then
  have=$(ruby ci/vagrant-machines.rb Vagrantfile)
else
  have=$("$vagrant" status --machine-readable | awk -F, '$3 == "state" { print $2 }')
fi
missing=0
for name in $want; do
  if printf '%s\n' "$have" | grep -qx "$name"; then :; else
    echo "validate-vagrantfile: box $name from ci/boxes.json is not a machine of the Vagrantfile" >&2
    missing=1
  fi
done
[ "$missing" -eq 0 ] || exit 1
echo "validate-vagrantfile: machines:" $have

echo "validate-vagrantfile: OK"
