# shellcheck shell=bash
# Sourced by the scripts in docker/ (but install-system-tools.sh, which the image copies
# alone): which container engine to use and how to call it, the host's pip configuration,
# and the setup scripts' package installs.
#
#   AXE_CONTAINER_ENGINE   docker | podman | a path (default: docker when its daemon
#                          answers, else podman when installed)
#   AXE_PODMAN_FLAGS       podman's global flags (default: --runtime runc when runc is
#                          installed, --cgroup-manager=cgroupfs as root; crun refuses hybrid
#                          cgroup layouts and systemd may not run)
#   AXE_CONTAINER_NETWORK  the network of builds and runs (default: the host's under
#                          podman, and under a Docker daemon that has no default bridge, as
#                          docker/setup-docker.sh starts it; Docker's bridge otherwise)

# Sets engine=(command and global flags), engine_name (docker|podman) and net_args (the
# network arguments of build and run: the host's network where there is no bridge to
# use, since podman's needs CNI and iptables; Docker's default bridge when it has one).
# shellcheck disable=SC2034  # engine_name and net_args are for the caller
select_engine() {
  local choice=${AXE_CONTAINER_ENGINE:-}
  if [ -n "$choice" ]; then
    if ! command -v "$choice" >/dev/null 2>&1; then
      echo "$(basename "$0"): AXE_CONTAINER_ENGINE=$choice not found; set it to docker or podman" >&2
      return 1
    fi
  elif command -v docker >/dev/null 2>&1 && timeout 20 docker info >/dev/null 2>&1; then
    choice=docker
  elif command -v podman >/dev/null 2>&1; then
    choice=podman
  elif command -v docker >/dev/null 2>&1; then
    choice=docker  # its daemon does not answer: docker says why
  else
    echo "$(basename "$0"): no container engine found (docker or podman); as root," \
      "docker/setup-podman.sh installs podman; without one run 'make demo' or 'axe-deploy run FLOW'" >&2
    return 1
  fi
  engine=("$choice")
  net_args=()
  case $(basename "$choice") in
    podman*)
      engine_name=podman
      if [ -n "${AXE_PODMAN_FLAGS+set}" ]; then
        read -r -a flags <<< "$AXE_PODMAN_FLAGS"
        engine+=("${flags[@]}")
      else
        if command -v runc >/dev/null 2>&1; then engine+=(--runtime runc); fi
        if [ "$(id -u)" -eq 0 ]; then engine+=(--cgroup-manager=cgroupfs); fi
      fi
      net_args=(--network host)
      ;;
    *)
      engine_name=docker
      if ! "${engine[@]}" network inspect bridge >/dev/null 2>&1; then
        net_args=(--network host)
      fi
      ;;
  esac
  if [ -n "${AXE_CONTAINER_NETWORK:-}" ]; then
    net_args=(--network "$AXE_CONTAINER_NETWORK")
  fi
}

# The host's pip configuration as `key=value` lines, one value per line (find-links and
# index URLs can hold several); environment variables win over files, as in pip.
host_pip_config() {
  local pip
  if python3 -m pip --version >/dev/null 2>&1; then pip=(python3 -m pip)
  elif command -v pip3 >/dev/null 2>&1; then pip=(pip3)
  else return 0
  fi
  "${pip[@]}" config list 2>/dev/null | awk '
    { key = $0; sub(/=.*/, "", key); val = $0; sub(/^[^=]*=/, "", val)
      gsub(/^'\''|'\''$/, "", val); gsub(/\\n/, " ", val)
      env = (key ~ /^:env:\./); sub(/^[^.]*\./, "", key)
      if (env || !(key in seen_env)) { values[key] = val; if (env) seen_env[key] = 1 }
      if (!(key in order)) { order[key] = ++n; keys[n] = key } }
    END { for (i = 1; i <= n; i++) print keys[i] "=" values[keys[i]] }'
}

# Host folders that pip reads packages from (local find-links and file:// indexes): a
# build mounts them so that it installs what the host installs, offline. An index's
# parent folder is mounted too: its pages link to ../../files.
host_pip_folders() {
  host_pip_config | while IFS='=' read -r key val; do
    case $key in find-links|index-url|extra-index-url) ;; *) continue ;; esac
    for loc in $val; do
      local index=false
      case $loc in file://*) loc=${loc#file://}; [ "$key" = find-links ] || index=true ;; /*) ;; *) continue ;; esac
      [ -d "$loc" ] || continue
      if $index; then dirname "$loc"; else echo "$loc"; fi
    done
  done | sort -u
}

# apt-get install of those of the packages that are not installed yet. The lock timeout:
# setup-docker.sh and setup-podman.sh may run at the same time. Status 2: apt-get cannot
# install here (no network, no mirror).
apt_install_missing() {
  local p missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  export DEBIAN_FRONTEND=noninteractive
  local apt=(apt-get -o DPkg::Lock::Timeout=600)
  if ! "${apt[@]}" update -qq || ! "${apt[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
    echo "$(basename "$0"): apt-get could not install ${missing[*]}" >&2
    return 2
  fi
  echo "$(basename "$0"): installed ${missing[*]}"
}
