#!/usr/bin/env bash
# Push speed: `evolive push` against `nix copy --derivation` on the same
# .drv closures, into a local binary cache directory with the same
# compression, in one run; then a second push with everything present.
#
#   bench/push.sh                            # n=20000 (about 20,800 jobs), 3 repeats
#   BENCH_N=2000 BENCH_REPEAT=1 bench/push.sh
#
# Targets (issue: pushing): at least 2x faster than nix copy to a
# directory, and the second push at least 20x faster than the first.
#
# Both tools create two files per path, so the file system weighs in: ext4
# does not reuse an inode for a few minutes after it is freed, and after
# tens of thousands of deletions (an earlier run's caches, removed at its
# end) new files take several times as long to create (here, right after
# 240,000 deletions: 9.7-16.4 s for a push that took 3.2-6.2 s before them,
# nix copy 14.2 s). So the caches stay until the end of the run; start a
# run a few minutes after another on the same file system.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin="${EVOLIVE_BUILD:-$root/build}/bin"
n="${BENCH_N:-20000}"
repeat="${BENCH_REPEAT:-3}"
compression="${BENCH_COMPRESSION:-zstd}"
work=$(mktemp -d /tmp/evolive-bench-push.XXXXXX)
daemon=
trap 'kill $daemon 2>/dev/null || true; rm -rf "$work"' EXIT

. "$root/bench/lib.sh"
start_nix_daemon


: >"$work/evolive" ; : >"$work/nix" ; : >"$work/again"
for rep in $(seq 1 "$repeat"); do
  salt="bench-push-$(date +%s%N)-$rep"
  closure_drvs "$n" "$salt"
  echo "bench: repeat $rep: ${#drvs[@]} derivations" >&2
  seconds "$bin/evolive" push --to "$work/evolive-$rep" --compression "$compression" --daemon-socket "$socket" \
    <"$work/drvs" >>"$work/evolive"
  seconds "$bin/evolive" push --to "$work/evolive-$rep" --compression "$compression" --daemon-socket "$socket" \
    <"$work/drvs" >>"$work/again"
  # Nix 2.8's `nix copy` has no --stdin: the paths go on its command line
  # (20,800 of them fit within ARG_MAX).
  seconds env NIX_DAEMON_SOCKET_PATH="$socket" nix --extra-experimental-features nix-command copy --derivation \
    --to "file://$work/nix-$rep?compression=$compression" "${drvs[@]}" >>"$work/nix"
  echo "bench: repeat $rep: evolive $(tail -1 "$work/evolive") s, again $(tail -1 "$work/again") s, nix copy $(tail -1 "$work/nix") s" >&2
done

e=$(median <"$work/evolive"); x=$(median <"$work/nix"); a=$(median <"$work/again")
printf '\n%-40s %10s\n' "push of the closure (median of $repeat)" "seconds"
printf '%-40s %10.2f\n' "evolive push (first)" "$e" "nix copy --derivation" "$x" "evolive push (everything present)" "$a"
awk -v e="$e" -v x="$x" -v a="$a" 'BEGIN {
  printf "\nnix copy / evolive: %.2fx (target >= 2)\nfirst / second push: %.1fx (target >= 20)\n", x / e, e / (a > 0 ? a : 0.01) }'
