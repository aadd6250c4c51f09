#!/usr/bin/env bash
# Installs the Debian 12 packages pyramidclip builds and runs with (DESIGN §6).
# Idempotent: installs only what is missing. Needs root (or sudo).
set -euo pipefail
PKGS=(
  build-essential cmake ccache pkg-config
  libtorch-dev libopenblas0-openmp
  libopenmpi-dev openmpi-bin
  libhdf5-dev libspdlog-dev libboost-program-options-dev nlohmann-json3-dev
  libgtest-dev libbenchmark-dev
  libturbojpeg0-dev libpng-dev libarchive-dev libxxhash-dev libicu-dev zlib1g-dev
  # PyTorch interop tests: state dicts and TorchScript archives written by Python (tests/python/)
  python3-torch
  # real images for the eval pipeline's test (scripts/fashion_mnist_imagefolder.py)
  python3 dataset-fashion-mnist
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
