#!/usr/bin/env bash
# Installs the Debian 12 packages rlhf-cpp needs (idempotent: only missing packages are installed).
# `install_deps.sh demo` skips what only the tests need (Python with torch for the references).
set -euo pipefail
PKGS=(build-essential cmake ninja-build pkg-config
      libtorch-dev libopenblas0-openmp
      nlohmann-json3-dev libcli11-dev libpcre2-dev libsentencepiece-dev libprotobuf-dev
      libsqlite3-dev libcpp-httplib-dev libssl-dev zlib1g-dev
      libgtest-dev libbenchmark-dev)
if [ "${1:-test}" != "demo" ]; then
  PKGS+=(python3-torch python3-venv python3-pip python3-scipy chromium chromium-driver)
fi
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
