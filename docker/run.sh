#!/usr/bin/env bash
# Run an axe-deploy flow in the Docker image, in the manner of FINN's run-docker.sh:
# the repository is mounted (its sources shadow the installed package, so edits need no
# rebuild), build outputs go to a host folder, Vivado is mounted when the host has one.
# Works with Docker or, where there is none, rootful podman (docker/setup-podman.sh).
#
#   docker/run.sh FLOW.toml [axe-deploy run options]   e.g. docker/run.sh flows/digits_mlp.toml
#   docker/run.sh bash                                 a shell in the container
#
# FLOW.toml is a path inside the repository. Environment:
#   AXE_CONTAINER_ENGINE  docker | podman (default: docker when its daemon answers, else
#                      podman); AXE_PODMAN_FLAGS: see docker/engine.sh
#   AXE_DOCKER_TAG     image (default axe-deploy:dev; built from docker/Dockerfile if missing)
#   BASE_IMAGE         build argument: the base image (default python:3.11-slim-bookworm;
#                      docker/build-base.sh builds a local stand-in)
#   TORCH_INDEX_URL    build argument: index of CPU-only torch wheels
#   AXE_BUILD_DIR      host folder for outputs (default <repo>/build), mounted at /build;
#                      a flow FLOW.toml writes /build/FLOW
#   XILINX_VIVADO      host Vivado installation (set by Vivado's settings64.sh): mounted
#                      read-only at the same path and sourced in the container, so the
#                      flow's Vivado step runs
#   XILINXD_LICENSE_FILE, LM_LICENSE_FILE   passed through when set
#   AXE_DOCKER_EXTRA   more `docker run` arguments (split on spaces)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=docker/engine.sh
source "$repo/docker/engine.sh"
tag=${AXE_DOCKER_TAG:-axe-deploy:dev}
build_dir=${AXE_BUILD_DIR:-$repo/build}

if [ $# -lt 1 ]; then
  echo "usage: docker/run.sh FLOW.toml [options] | docker/run.sh bash" >&2
  exit 2
fi
select_engine
mkdir -p "$build_dir"
build_dir=$(cd "$build_dir" && pwd)

if ! "${engine[@]}" image inspect "$tag" >/dev/null 2>&1; then
  build=(build "${net_args[@]}" -f "$repo/docker/Dockerfile" -t "$tag"
    --build-arg "TORCH_INDEX_URL=${TORCH_INDEX_URL:-}")
  if [ -n "${BASE_IMAGE:-}" ]; then
    build+=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
  fi
  if [ "$engine_name" = podman ]; then
    # Docker's image format keeps the Dockerfile's SHELL (bash -o pipefail), which OCI drops;
    # the host's local package folders, read-only, where its pip configuration names them
    build+=(--format docker)
    while read -r folder; do
      [ -n "$folder" ] && build+=(-v "$folder:$folder:ro")
    done < <(host_pip_folders)
  fi
  echo "run.sh: building $tag with $engine_name (minutes, once)" >&2
  "${engine[@]}" "${build[@]}" "$repo" >&2
fi

args=(--rm --init "${net_args[@]}"
  -u "$(id -u):$(id -g)" -e HOME=/tmp
  -v "$repo:/workspace/axe-deploy" -w /workspace/axe-deploy
  -e PYTHONPATH=/workspace/axe-deploy
  -v "$build_dir:/build"
  -e "OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}")
if [ -t 0 ] && [ -t 1 ]; then
  args+=(-it)
elif [ "$1" = bash ]; then
  args+=(-i)  # commands on stdin: echo 'axe-deploy --help' | docker/run.sh bash
fi
setup=""
if [ -n "${XILINX_VIVADO:-}" ]; then
  args+=(-v "$XILINX_VIVADO:$XILINX_VIVADO:ro" -e "XILINX_VIVADO=$XILINX_VIVADO")
  setup="source \"\$XILINX_VIVADO/settings64.sh\"; "
fi
for var in XILINXD_LICENSE_FILE LM_LICENSE_FILE; do
  if [ -n "${!var:-}" ]; then
    args+=(-e "$var=${!var}")
  fi
done
if [ -n "${AXE_DOCKER_EXTRA:-}" ]; then
  read -r -a extra <<< "$AXE_DOCKER_EXTRA"
  args+=("${extra[@]}")
fi

if [ "$1" = bash ]; then
  exec "${engine[@]}" run "${args[@]}" "$tag" bash -c "${setup}exec bash"
fi
flow=$1
shift
name=$(basename "$flow" .toml)
# the flow's arguments go to bash as positional parameters: no re-quoting
exec "${engine[@]}" run "${args[@]}" "$tag" \
  bash -c "${setup}"'exec axe-deploy run "$@"' axe-deploy-run "$flow" --out "/build/$name" "$@"
