#!/usr/bin/env bash
# A Docker engine on a Debian/Ubuntu machine that has none running (a CI container, a
# sandbox, a machine with only the docker client): installs Debian's docker.io (dockerd,
# containerd, runc) and debootstrap (for docker/build-base.sh) when missing, and starts
# the daemon when it does not answer. With systemd that is `systemctl start docker`.
# Without it, or when that fails, dockerd is started here in the background (log in
# /var/log/axe-dockerd.log) with no bridge and no iptables rules, which such machines
# forbid; docker/run.sh then builds and runs with the host's network. Stop it with
# `kill PID` (the pid is printed). Exit status 2: apt-get cannot install here.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=docker/engine.sh
source "$here/engine.sh"
if [ "$(id -u)" -ne 0 ]; then
  echo "setup-docker.sh: run as root (it installs packages and starts dockerd)" >&2
  exit 1
fi
answers() { timeout 20 docker info >/dev/null 2>&1; }
if command -v docker >/dev/null 2>&1 && answers && command -v debootstrap >/dev/null 2>&1; then
  exit 0
fi

packages=(debootstrap)
command -v dockerd >/dev/null 2>&1 || packages+=(docker.io)
apt_install_missing "${packages[@]}" || exit $?
if answers; then
  exit 0
fi

if [ -d /run/systemd/system ] && systemctl start docker; then
  echo "setup-docker.sh: started docker.service"
else
  log=/var/log/axe-dockerd.log
  setsid dockerd --iptables=false --ip6tables=false --bridge=none </dev/null >"$log" 2>&1 &
  echo "setup-docker.sh: started dockerd without a bridge (pid $!, log in $log)"
fi
for _ in $(seq 60); do
  if answers; then
    exit 0
  fi
  sleep 1
done
echo "setup-docker.sh: dockerd does not answer after 60 s; see ${log:-journalctl -u docker}" >&2
exit 1
