#!/usr/bin/env bash
# A local stand-in for the python:3.11-slim-bookworm base image, for machines that cannot
# pull from a registry: Debian bookworm from debootstrap (minbase) with Debian's Python
# 3.11, pip and venv, `python`/`pip` on PATH, pip free to install system-wide (no
# EXTERNALLY-MANAGED), and the host's pip configuration (`pip config list`: indexes,
# find-links, constraints, certificate bundle, and the wheels of local find-links folders)
# so that the image build installs what the host installs. Prints the image's tag; then
#   BASE_IMAGE=$(docker/build-base.sh) docker/run.sh flows/digits_mlp.toml
# builds the flow image on it (under podman run.sh mounts the host's local pip folders
# into the build).
#
# Needs root, debootstrap and podman or docker (docker/setup-podman.sh or
# docker/setup-docker.sh installs them).
#   AXE_BASE_TAG        the tag (default axe-deploy-base:bookworm)
#   AXE_DEBIAN_MIRROR   Debian mirror (default http://deb.debian.org/debian)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=docker/engine.sh
source "$here/engine.sh"

tag=${AXE_BASE_TAG:-axe-deploy-base:bookworm}
mirror=${AXE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
if [ "$(id -u)" -ne 0 ]; then
  echo "build-base.sh: run as root (debootstrap builds a root file system)" >&2
  exit 1
fi
if ! command -v debootstrap >/dev/null 2>&1; then
  echo "build-base.sh: debootstrap not found; run docker/setup-podman.sh or 'apt-get install debootstrap'" >&2
  exit 1
fi
select_engine

rootfs=$(mktemp -d "${TMPDIR:-/tmp}/axe-base.XXXXXX")
trap 'rm -rf "$rootfs"' EXIT
log=$rootfs.log
echo "build-base.sh: debootstrap bookworm (about a minute; log in $log)" >&2
if ! debootstrap --variant=minbase --include=python3.11,python3-pip,python3-venv,ca-certificates \
    bookworm "$rootfs" "$mirror" >"$log" 2>&1; then
  tail -n 20 "$log" >&2
  echo "build-base.sh: debootstrap failed (log in $log)" >&2
  exit 1
fi
rm -f "$log"

# the sources of Debian's own bookworm image: updates and security too
cat > "$rootfs/etc/apt/sources.list" <<SOURCES
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb ${mirror%/debian}/debian-security bookworm-security main
SOURCES
ln -sf python3.11 "$rootfs/usr/bin/python"
ln -sf pip3 "$rootfs/usr/bin/pip"
rm -f "$rootfs"/usr/lib/python3*/EXTERNALLY-MANAGED
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*

# The host's pip configuration, keys and the files they name, at the same paths.
pip_config=$(host_pip_config)
if [ "$engine_name" = docker ]; then
  # local indexes: a Docker build cannot mount them (podman's does) and they are too big
  # to copy; pip asks its remote index instead
  pip_config=$(awk '/^(index-url|extra-index-url)=/ {
      key = $0; sub(/=.*/, "", key); val = $0; sub(/^[^=]*=/, "", val)
      n = split(val, locs, " "); kept = ""
      for (i = 1; i <= n; i++) if (locs[i] !~ /^(file:\/\/)?\//) kept = kept (kept ? " " : "") locs[i]
      if (kept) print key "=" kept; next }
    { print }' <<< "$pip_config")
fi
if [ -n "$pip_config" ]; then
  # shellcheck disable=SC2001  # the first '=' of each line
  { echo "[global]"; sed 's/=/ = /' <<< "$pip_config"; } > "$rootfs/etc/pip.conf"
  while IFS='=' read -r key val; do
    case $key in cert|client-cert|constraint|requirement) ;; *) continue ;; esac
    for f in $val; do
      if [ -f "$f" ]; then
        mkdir -p "$rootfs$(dirname "$f")"
        cp -L "$f" "$rootfs$f"
      fi
    done
  done <<< "$pip_config"
  # local find-links folders (a few wheels, such as the CPU torch) are copied in: a Docker
  # build cannot mount them as a podman build does
  while IFS='=' read -r key val; do
    [ "$key" = find-links ] || continue
    for loc in $val; do
      loc=${loc#file://}
      if [ "${loc#/}" != "$loc" ] && [ -d "$loc" ]; then
        mkdir -p "$rootfs$loc"
        cp -a "$loc/." "$rootfs$loc/"
      fi
    done
  done <<< "$pip_config"
fi

tar -C "$rootfs" -c . | "${engine[@]}" import \
  --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' - "$tag" >/dev/null
echo "$tag"
