#!/usr/bin/env bash
# Set-up for mom on a Debian 12 (bookworm) machine. Idempotent: a second run
# only checks what is there and returns in a few seconds.
#
#   - Mesa 25 lavapipe (software Vulkan) from bookworm-backports: the apt source
#     is derived from the machine's own Debian source, so no host is named here;
#   - the Vulkan loader, Xvfb and xwd (window tests), and the X11/GL development
#     packages that go-gl/glfw builds against;
#   - Open MPI (mpirun; libmpi, which mom loads at run time) for data-parallel
#     training and its tests;
#   - the raw material of `mom data build`: Fashion-MNIST, fortunes, the King
#     James Bible (with its `bible` reader), WordNet, and espeak-ng;
#   - the two WebGPU implementations, fetched through npm and pip into .deps/:
#       .deps/dawn/libwebgpu_wrapper.so      (npm bun-webgpu-linux-x64)
#       .deps/wgpu/libwgpu_native-release.so (PyPI wgpu, wgpu/resources/)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
deps="$root/.deps"
DAWN_PKG=${DAWN_PKG:-bun-webgpu-linux-x64@0.1.7}
WGPU_PKG=${WGPU_PKG:-wgpu==0.32.0}
MESA_MIN=25

log() { printf 'deps: %s\n' "$*"; }
sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_pkgs=(libvulkan1 vulkan-tools xvfb x11-apps pkg-config
  libx11-dev libxcursor-dev libxrandr-dev libxinerama-dev libxi-dev libxxf86vm-dev libgl1-mesa-dev
  dataset-fashion-mnist fortunes bible-kjv wordnet-base espeak-ng
  openmpi-bin libopenmpi-dev)

mesa_major() {
  dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null | sed -E 's/^([0-9]+:)?([0-9]+).*/\2/'
}

need_apt=0
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || { need_apt=1; break; }
done
m=$(mesa_major || true)
if [ -z "$m" ] || [ "$m" -lt "$MESA_MIN" ]; then need_apt=1; fi

if [ "$need_apt" = 1 ]; then
  if [ ! -e /etc/apt/sources.list.d/mom-backports.sources ] && ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    # Take the mirror this machine already uses for bookworm and add the
    # backports suite on it.
    uri=""; key=""
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
      uri=$(awk '/^URIs:/{u=$2} /^Suites:/{ if ($0 ~ /bookworm( |$)/ && u !~ /security/) {print u; exit} }' /etc/apt/sources.list.d/debian.sources)
      key=$(awk '/^Signed-By:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)
    fi
    if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
      uri=$(awk '$1=="deb" && $3=="bookworm" {print $2; exit}' /etc/apt/sources.list)
    fi
    [ -n "$uri" ] || { echo "deps: cannot find a bookworm apt source to derive bookworm-backports from" >&2; exit 1; }
    log "adding bookworm-backports on $uri"
    {
      echo "Types: deb"; echo "URIs: $uri"; echo "Suites: bookworm-backports"; echo "Components: main"
      [ -n "$key" ] && echo "Signed-By: $key"
    } | sudo_ tee /etc/apt/sources.list.d/mom-backports.sources >/dev/null
  fi
  log "installing apt packages"
  export DEBIAN_FRONTEND=noninteractive
  sudo_ apt-get update -qq
  sudo_ apt-get install -y -qq --no-install-recommends "${apt_pkgs[@]}" >/dev/null
  sudo_ apt-get install -y -qq --no-install-recommends -t bookworm-backports mesa-vulkan-drivers >/dev/null
  m=$(mesa_major)
  [ "$m" -ge "$MESA_MIN" ] || { echo "deps: mesa-vulkan-drivers is $m, need $MESA_MIN or newer (bookworm-backports)" >&2; exit 1; }
fi
log "mesa-vulkan-drivers $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers)"

mkdir -p "$deps/dawn" "$deps/wgpu"
if [ ! -s "$deps/dawn/libwebgpu_wrapper.so" ]; then
  log "fetching Dawn ($DAWN_PKG) with npm pack"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "$DAWN_PKG" >/dev/null && tar xzf ./*.tgz)
  cp "$tmp/package/libwebgpu_wrapper.so" "$tmp/package/LICENSE" "$deps/dawn/"
  rm -rf "$tmp"
fi
if [ ! -s "$deps/wgpu/libwgpu_native-release.so" ]; then
  log "fetching wgpu-native ($WGPU_PKG) with pip download"
  tmp=$(mktemp -d)
  python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" "$WGPU_PKG"
  (cd "$tmp" && python3 -m zipfile -e ./*.whl x)
  cp "$tmp"/x/wgpu/resources/libwgpu_native-release.so "$tmp"/x/wgpu/resources/webgpu.h "$tmp"/x/wgpu/resources/wgpu.h "$deps/wgpu/"
  rm -rf "$tmp"
fi
log "WebGPU libraries in $deps: $(cd "$deps" && ls */*.so | tr '\n' ' ')"
