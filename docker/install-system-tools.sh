#!/usr/bin/env bash
# The open hardware tools the flow needs: Verilator, Icarus Verilog, yosys.
# One script for the Dockerfile and for `make test`. As root it installs what is
# missing with apt-get and fails when that does not give every tool. Otherwise it says
# what is missing; with AXE_DEPLOY_REQUIRE_TOOLS=1 (CI) that is an error, without it the
# tests that need a tool skip with that reason.
set -euo pipefail
tools=(verilator iverilog yosys)
missing_tools() {
  missing=()
  for t in "${tools[@]}"; do command -v "$t" >/dev/null 2>&1 || missing+=("$t"); done
}
fail() { echo "install-system-tools: ERROR: $*" >&2; exit 1; }
missing_tools
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  why="missing ${missing[*]} and cannot install them (needs root and apt-get): run 'sudo apt-get install ${missing[*]}'"
  [ "${AXE_DEPLOY_REQUIRE_TOOLS:-0}" = 1 ] && fail "$why"
  echo "install-system-tools: $why; tests that need them are skipped" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || fail "apt-get update failed"
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
  || fail "apt-get install ${missing[*]} failed"
wanted=("${missing[@]}")
missing_tools
[ ${#missing[@]} -eq 0 ] || fail "still missing ${missing[*]} after apt-get install"
echo "install-system-tools: installed ${wanted[*]}"
