#!/usr/bin/env bash
# Rootful podman as the container engine on a Debian/Ubuntu machine without Docker:
# installs podman, runc, catatonit (for `run --init`) and debootstrap (for
# docker/build-base.sh), and sets `default_ulimits = []` in
# /etc/containers/containers.conf: rootful podman otherwise raises RLIMIT_NPROC for every
# container, which sandboxed machines forbid. An existing default_ulimits is left alone;
# an existing file is appended to, never replaced. docker/run.sh adds the rest
# (`--runtime runc --cgroup-manager=cgroupfs`, `--network host`).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=docker/engine.sh
source "$here/engine.sh"
if [ "$(id -u)" -ne 0 ]; then
  echo "setup-podman.sh: run as root (it installs packages and writes /etc/containers/containers.conf)" >&2
  exit 1
fi
packages=(podman runc catatonit debootstrap)
apt_install_missing "${packages[@]}" || exit $?

conf=/etc/containers/containers.conf
if [ -f "$conf" ] && grep -Eq '^[[:space:]]*default_ulimits[[:space:]]*=' "$conf"; then
  exit 0
fi
mkdir -p "$(dirname "$conf")"
if [ -f "$conf" ] && grep -Eq '^[[:space:]]*\[containers\][[:space:]]*$' "$conf"; then
  # keys of a TOML table go right after its header
  sed -i -E '0,/^[[:space:]]*\[containers\][[:space:]]*$/s//&\ndefault_ulimits = []/' "$conf"
else
  if [ -s "$conf" ]; then echo >> "$conf"; fi
  printf '[containers]\ndefault_ulimits = []\n' >> "$conf"
fi
echo "setup-podman.sh: set default_ulimits = [] in $conf"
