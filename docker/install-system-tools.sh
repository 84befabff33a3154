#!/usr/bin/env bash
# The open hardware tools the flow needs: Verilator, Icarus Verilog, yosys.
# One script for the Dockerfile and for `make test`. As root it installs what is
# missing with apt-get; otherwise it says what is missing and the tests that need
# a tool skip with that reason.
set -euo pipefail
tools=(verilator iverilog yosys)
missing=()
for t in "${tools[@]}"; do command -v "$t" >/dev/null 2>&1 || missing+=("$t"); done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "install-system-tools: missing ${missing[*]} (not root: run 'sudo apt-get install ${missing[*]}'; tests that need them are skipped)" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-system-tools: installed ${missing[*]}"
