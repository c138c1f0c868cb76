#!/usr/bin/env bash
# Evaluation speed: evolive-eval-jobs against its peers on the same jobset,
# in one run. Prints a table of median wall times, the peak resident memory
# of the largest process, and ratios against nix-instantiate.
#
#   bench/eval.sh                       # n=20000 work=1000, 3 repeats
#   BENCH_N=2000 BENCH_REPEAT=1 bench/eval.sh   # a quick look
#   BENCH_TOOLS="nix-instantiate evolive-eval-jobs" BENCH_WORKERS=2 BENCH_ERRORS=false bench/eval.sh
#                                       # only the targets' comparison (default: every tool,
#                                       # 1 and 2 workers, without and with errors)
#
# Cold: a salt no run used before, so every .drv is new to the store. Warm:
# the same salt again right after. Peers: nix-instantiate and nix-env (only
# where every job evaluates, errors=false), and nix-eval-jobs when it is on
# PATH. Raw measurements go to bench/results/eval-<time>.tsv.
#
# Against Nix 2.26 (Debian 13), inside scripts/nix-2.26's root, where the
# build is build-nix-2.26 and the peers are Nix 2.26's:
#   scripts/nix-2.26 run bench/eval.sh
#   scripts/nix-2.26 run env PATH=/opt/nix-eval-jobs/bin:/usr/bin:/bin bench/eval.sh   # with nix-eval-jobs
# (bench/build-nix-eval-jobs.sh builds nix-eval-jobs there from its source.)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
default_build="$root/build"
[ -n "${EVOLIVE_IN_NIX226_ROOT:-}" ] && default_build="$root/build-nix-2.26"
bin="${EVOLIVE_BUILD:-$default_build}/bin/evolive-eval-jobs"
workload="$root/bench/workloads/synthetic.nix"
n="${BENCH_N:-20000}"
work="${BENCH_WORK:-1000}"
repeat="${BENCH_REPEAT:-3}"
tools=" ${BENCH_TOOLS:-nix-instantiate nix-env evolive-eval-jobs nix-eval-jobs} "
worker_counts="${BENCH_WORKERS:-1 2}"
error_cases="${BENCH_ERRORS:-false true}"
wanted() { [[ "$tools" == *" $1 "* ]]; }
[ -x "$bin" ] || { echo "bench: build first (make build): $bin is missing" >&2; exit 1; }

mkdir -p "$root/bench/results"
raw="$root/bench/results/eval-$(date +%Y%m%d-%H%M%S).tsv"
printf 'tool\tworkers\terrors\tphase\trepeat\tseconds\tpeak_kib\n' >"$raw"
run_id="$(date +%s)-$$"

# measure LABEL WORKERS ERRORS PHASE REPEAT -- COMMAND...: one timed run.
measure() {
  local label=$1 workers=$2 errors=$3 phase=$4 rep=$5
  shift 6
  local out timing
  timing=$(mktemp)
  /usr/bin/time -o "$timing" -f '%e %M' "$@" >/dev/null 2>/dev/null || {
    echo "bench: $label failed: $*" >&2; rm -f "$timing"; exit 1; }
  out=$(tail -n 1 "$timing")
  rm -f "$timing"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$workers" "$errors" "$phase" "$rep" ${out} >>"$raw"
  printf '  %-22s workers=%-2s errors=%-5s %-4s %6ss %8s KiB\n' "$label" "$workers" "$errors" "$phase" ${out} >&2
}

# cold_warm LABEL WORKERS ERRORS REP COMMAND... (the salt is appended as --argstr salt S)
cold_warm() {
  local label=$1 workers=$2 errors=$3 rep=$4
  shift 4
  local salt="bench-$run_id-$label-$workers-$errors-$rep"
  measure "$label" "$workers" "$errors" cold "$rep" -- "$@" --argstr salt "$salt"
  measure "$label" "$workers" "$errors" warm "$rep" -- "$@" --argstr salt "$salt"
}

common=(--arg n "$n" --arg work "$work")
echo "bench: $(nix-instantiate --version | head -n 1), $bin" >&2
echo "bench: synthetic.nix n=$n work=$work, $repeat repeat(s); raw results in $raw" >&2
for rep in $(seq 1 "$repeat"); do
  for errors in $error_cases; do
    args=("${common[@]}" --arg errors "$errors")
    if [ "$errors" = false ]; then
      ! wanted nix-instantiate || cold_warm nix-instantiate 1 "$errors" "$rep" nix-instantiate "$workload" "${args[@]}"
      ! wanted nix-env || cold_warm nix-env 1 "$errors" "$rep" nix-env -f "$workload" -qaP --drv-path "${args[@]}"
    fi
    for w in $worker_counts; do
      ! wanted evolive-eval-jobs || cold_warm evolive-eval-jobs "$w" "$errors" "$rep" "$bin" --workers "$w" "$workload" "${args[@]}"
      if wanted nix-eval-jobs && command -v nix-eval-jobs >/dev/null; then
        cold_warm nix-eval-jobs "$w" "$errors" "$rep" nix-eval-jobs --workers "$w" "$workload" "${args[@]}"
      fi
    done
  done
done

# Medians per tool/workers/errors/phase, and ratios to nix-instantiate
# (errors=false; with errors nix-instantiate cannot complete).
awk -F'\t' '
  NR == 1 { next }
  { key = $1 "\t" $2 "\t" $3 "\t" $4; t[key] = t[key] " " $6; m[key] = m[key] " " $7; keys[key] = 1
    rows[$1 "\t" $2 "\t" $3] = 1 }
  function median(list,   a, k, i, j, x) {
    k = split(list, a, " ")
    for (i = 2; i <= k; i++) { x = a[i]; for (j = i - 1; j > 0 && a[j] + 0 > x + 0; j--) a[j + 1] = a[j]; a[j + 1] = x }
    return (k % 2) ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
  }
  END {
    base_cold = median(t["nix-instantiate\t1\tfalse\tcold"]); base_warm = median(t["nix-instantiate\t1\tfalse\twarm"])
    printf "\n%-18s %7s %6s %9s %9s %10s %11s %11s %10s %10s\n", "tool", "workers", "errors", "cold s", "warm s", "peak GB", "cold/inst", "warm/inst", "cold/nej", "warm/nej"
    n = 0; for (r in rows) order[++n] = r
    for (i = 2; i <= n; i++) { x = order[i]; for (j = i - 1; j > 0 && order[j] > x; j--) order[j + 1] = order[j]; order[j + 1] = x }
    for (i = 1; i <= n; i++) {
      split(order[i], f, "\t")
      c = median(t[order[i] "\tcold"]); w = median(t[order[i] "\twarm"])
      pc = median(m[order[i] "\tcold"]); pw = median(m[order[i] "\twarm"]); peak = (pc > pw ? pc : pw) / 1048576
      rc = (f[3] == "false" && base_cold > 0) ? sprintf("%.2f", c / base_cold) : "-"
      rw = (f[3] == "false" && base_warm > 0) ? sprintf("%.2f", w / base_warm) : "-"
      # Against nix-eval-jobs with the same workers and jobset, when it ran.
      peer = "nix-eval-jobs\t" f[2] "\t" f[3]
      nc = (f[1] == "evolive-eval-jobs" && (peer "\tcold") in t) ? sprintf("%.2f", c / median(t[peer "\tcold"])) : "-"
      nw = (f[1] == "evolive-eval-jobs" && (peer "\twarm") in t) ? sprintf("%.2f", w / median(t[peer "\twarm"])) : "-"
      printf "%-18s %7s %6s %9.2f %9.2f %10.2f %11s %11s %10s %10s\n", f[1], f[2], f[3], c, w, peak, rc, rw, nc, nw
    }
    print "\nTargets (docs/evaluator.md): evolive-eval-jobs with 2 workers at most 0.60 of nix-instantiate, cold and warm,"
    print "and no process larger than nix-instantiate'"'"'s peak."
  }' "$raw"
