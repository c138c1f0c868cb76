#!/usr/bin/env bash
# The comparison of two evaluations against evaluating: `evolive diff` of
# two stored evaluations of the synthetic package set (bench/workloads/
# synthetic.nix, n=20000 work=1000, about 20,800 jobs each; two salts, so
# that every job is changed and rebuilt: the longest lists) against one warm
# evaluation of the same jobset (`evolive eval --force`, 2 workers), in one
# run. Prints the medians and their ratio.
#
#   bench/diff.sh                                   # n=20000, 3 warm evaluations, 5 comparisons
#   BENCH_N=2000 BENCH_REPEAT=1 bench/diff.sh
#
# Target (issue 14): a comparison takes at most 5% of a warm evaluation.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin="${EVOLIVE_BUILD:-$root/build}/bin"
n="${BENCH_N:-20000}"
cost="${BENCH_WORK:-1000}"
repeat="${BENCH_REPEAT:-3}"
compares="${BENCH_COMPARES:-5}"
work=$(mktemp -d /tmp/evolive-bench-diff.XXXXXX)
trap 'rm -rf "$work"' EXIT

. "$root/bench/lib.sh"

jobset() { # SALT
  cat <<JSON
{"inputs": {"src": {"type": "path", "path": "$root/bench/workloads"},
            "n": {"type": "nix", "value": "$n"}, "work": {"type": "nix", "value": "$cost"},
            "errors": {"type": "boolean", "value": true}, "salt": {"type": "string", "value": "$1"}},
 "expression": {"input": "src", "path": "synthetic.nix"},
 "options": {"workers": 2}}
JSON
}
eval_to() { # JOBSET [--force]: evaluates, prints the fingerprint
  "$bin/evolive" eval "$@" --state-dir "$work/state" --no-progress >"$work/out.jsonl" 2>"$work/err" \
    || { cat "$work/err" >&2; exit 1; }
  tail -n 1 "$work/out.jsonl" | grep -o '"fingerprint":"[0-9a-f]*"' | cut -d'"' -f4
}

salt="bench-diff-$(date +%s%N)"
jobset "$salt-old" >"$work/old.json"
jobset "$salt-new" >"$work/new.json"
echo "bench: synthetic.nix n=$n work=$cost, 2 workers; $repeat warm evaluation(s), $compares comparison(s)" >&2
old=$(eval_to "$work/old.json")
new=$(eval_to "$work/new.json")
: >"$work/warm"; : >"$work/diff"
for _ in $(seq 1 "$repeat"); do
  seconds "$bin/evolive" eval "$work/new.json" --force --state-dir "$work/state" --no-progress >>"$work/warm"
done
for _ in $(seq 1 "$compares"); do
  seconds "$bin/evolive" diff "$old" "$new" --state-dir "$work/state" >>"$work/diff"
done
"$bin/evolive" diff "$old" "$new" --state-dir "$work/state" --format text --limit 0 | sed -n '4,6p' >&2

warm=$(median <"$work/warm")
diff=$(median <"$work/diff")
echo "warm evaluation (evolive eval --force), median of $repeat: $warm s  [$(tr '\n' ' ' <"$work/warm")]"
echo "evolive diff of two evaluations, median of $compares:   $diff s  [$(tr '\n' ' ' <"$work/diff")]"
awk -v d="$diff" -v w="$warm" 'BEGIN { printf "ratio diff / warm evaluation: %.4f (target <= 0.05)\n", d / w }'
