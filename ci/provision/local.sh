#!/bin/sh
# The locally built box (ci/vagrant-local.mjs): Node is in the image already and the guest has no
# network beyond its own libvirt network, so nothing is installed; the probe runs the host's build
# from the synced tree (NSPROBE_PREBUILT=1, read by probe.sh).
set -eu
command -v node >/dev/null || { echo "local: no node in the box" >&2; exit 1; }
printf '%s\n' '# Written by ci/provision/local.sh' 'NSPROBE_PREBUILT=1; export NSPROBE_PREBUILT' > /etc/nsprobe-env.sh
echo "local: $(. /etc/os-release; echo "$PRETTY_NAME") node $(node --version), kernel $(uname -r)"
