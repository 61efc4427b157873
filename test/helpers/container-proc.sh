#!/bin/sh
# Runs "$@" under a container-like /proc (as Docker and podman make it): /proc/kcore and
# /proc/acpi masked by mounts over them, /proc/sys and /proc/sysrq-trigger read-only. Needs root
# and a private mount namespace: call it as `unshare -m test/helpers/container-proc.sh CMD...`.
set -e
[ -e /proc/kcore ] && mount --bind /dev/null /proc/kcore
mount -t tmpfs -o ro tmpfs /proc/acpi 2>/dev/null || mount -t tmpfs -o ro tmpfs /proc/scsi 2>/dev/null || true
mount -o bind /proc/sys /proc/sys
mount -o remount,bind,ro /proc/sys
mount -o bind /proc/sysrq-trigger /proc/sysrq-trigger && mount -o remount,bind,ro /proc/sysrq-trigger
exec "$@"
