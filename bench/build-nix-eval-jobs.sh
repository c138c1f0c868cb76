#!/usr/bin/env bash
# Builds nix-eval-jobs, the peer bench/eval.sh compares against, from a
# source tree you provide (its release for the Nix you build against: v2.26.0
# for Nix 2.26), against the Nix libraries of scripts/nix-2.26. Run it
# inside the Debian 13 root:
#
#   scripts/nix-2.26 run bench/build-nix-eval-jobs.sh SRC_DIR [PREFIX]
#
# It installs PREFIX/bin/nix-eval-jobs (default /opt/nix-eval-jobs, inside
# the root); put PREFIX/bin on PATH for bench/eval.sh to include it. Nothing
# of nix-eval-jobs is part of this repository.
set -euo pipefail
src=${1:?usage: bench/build-nix-eval-jobs.sh SRC_DIR [PREFIX]}
prefix=${2:-/opt/nix-eval-jobs}
nix_prefix=${NIX_PREFIX:-/opt/nix-2.26.3}
[ -f "$src/meson.build" ] || { echo "build-nix-eval-jobs: $src has no meson.build" >&2; exit 1; }
[ -d "$nix_prefix/lib/pkgconfig" ] || { echo "build-nix-eval-jobs: no Nix libraries in $nix_prefix (run inside scripts/nix-2.26's root)" >&2; exit 1; }
build=$(mktemp -d /tmp/nix-eval-jobs-build.XXXXXX)
trap 'rm -rf "$build"' EXIT
# nix-eval-jobs includes Nix's headers as <nix/...>; the .pc files name include/nix.
export PKG_CONFIG_PATH="$nix_prefix/lib/pkgconfig"
CXXFLAGS="-I$nix_prefix/include" meson setup "$build" "$src" --prefix="$prefix" --buildtype=release -Doptimization=2 >/dev/null
ninja -C "$build" -j "${JOBS:-2}"
rm -rf "$prefix"
meson install -C "$build" --no-rebuild >/dev/null
"$prefix/bin/nix-eval-jobs" --help >/dev/null 2>&1 || true
echo "build-nix-eval-jobs: $prefix/bin/nix-eval-jobs" >&2
