#!/usr/bin/env bash
# Sets up a fresh Debian machine for vita-train and builds it. Idempotent: installs only the
# packages that are missing, then configures and builds with CMake.
#   ./setup.sh              release build in build/ (CUDA, MPI, NCCL and oneDNN when present)
#   ./setup.sh --sanitize   also an ASan + UBSan build in build-asan/ (CPU only)
set -euo pipefail
cd "$(dirname "$0")"

packages=(build-essential cmake pkg-config git clang-format zlib1g-dev
          libopenblas-openmp-dev libhdf5-dev hdf5-tools libsndfile1-dev libstb-dev
          libopenmpi-dev openmpi-bin libjansson-dev libpcre2-dev libutf8proc-dev libyaml-dev
          libsoxr-dev libfftw3-dev libdnnl-dev libzip-dev espeak-ng alsa-utils
          libavformat-dev libavcodec-dev libswscale-dev libavutil-dev ffmpeg)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DVT_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
if [ "${1:-}" = "--sanitize" ]; then
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVT_SANITIZE=ON \
    -DVT_ENABLE_CUDA=OFF -DVT_WERROR=ON >/dev/null
  cmake --build build-asan -j"$jobs"
fi
echo "setup: built build/vita"
