#!/bin/sh
# Arch Linux: Node and build tools from pacman. The box is an old snapshot: refresh the keyring,
# then upgrade everything except the kernel, so the running kernel's modules (veth, ...) stay on disk.
set -eu
pacman -Sy --noconfirm --needed archlinux-keyring
pacman -Su --noconfirm --ignore linux,linux-headers
pacman -S --noconfirm --needed nodejs npm base-devel python rsync tar curl
printf '%s\n' '# Written by ci/provision/arch.sh; nothing to add on Arch.' > /etc/nsprobe-env.sh
echo "arch: node $(node --version), npm $(npm --version)"
