#!/usr/bin/env bash
# Service speed, in one run on the same jobset (bench/workloads/synthetic.nix,
# n=20000 work=1000 by default; 2 workers):
#
#  1. streaming overhead: a warm evaluation through `evolive serve` (POST
#     /v1/evaluations with "force": true, read to the end by curl) against
#     `evolive-eval-jobs` run directly with the same arguments;
#  2. replay: the stored result streamed to a client against evaluating it
#     (the first, cold evaluation of the jobset, and a warm one);
#  3. 50 clients joining one running evaluation: every client gets every
#     job, and the server's peak memory against a run with one client.
#
#   bench/service.sh                                  # n=20000, 3 repeats
#   BENCH_N=2000 BENCH_REPEAT=1 bench/service.sh
#
# Targets (issue: the service): overhead within 5% (ratio <= 1.05), replay at
# least 100x faster than evaluating, memory not growing with the clients
# beyond their buffers.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin="${EVOLIVE_BUILD:-$root/build}/bin"
n="${BENCH_N:-20000}"
cost="${BENCH_WORK:-1000}" # the workload's `work` argument
repeat="${BENCH_REPEAT:-3}"
clients="${BENCH_CLIENTS:-50}"
work=$(mktemp -d /tmp/evolive-bench-service.XXXXXX)
tmp=$work
server=
trap '[ -z "$server" ] || kill $server 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT

. "$root/bench/lib.sh"
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f\n", b - a }'; }

start_server() {
  "$bin/evolive" serve --listen 127.0.0.1:0 --state-dir "$tmp/state" --allow-path "$root/bench/workloads" \
    --max-workers 2 2>"$tmp/server.log" &
  server=$!
  url=
  for _ in $(seq 200); do
    url=$(grep -o 'listening on http://[0-9.:]*' "$tmp/server.log" | cut -d' ' -f3) && [ -n "$url" ] && return
    sleep 0.05
  done
  cat "$tmp/server.log" >&2
  exit 1
}
stop_server() { kill "$server"; wait "$server" 2>/dev/null || true; server=; }
peak_kib() { awk '/VmHWM/ { print $2 }' "/proc/$1/status"; }

jobset() { # SALT FORCE
  cat <<JSON
{"inputs": {"src": {"type": "path", "path": "$root/bench/workloads"},
            "n": {"type": "nix", "value": "$n"}, "work": {"type": "nix", "value": "$cost"},
            "errors": {"type": "boolean", "value": true}, "salt": {"type": "string", "value": "$1"}},
 "expression": {"input": "src", "path": "synthetic.nix"},
 "options": {"workers": 2}, "force": $2}
JSON
}
post() { curl -sSN --fail-with-body --json @"$1" "$url/v1/evaluations"; }

: >"$tmp/cold" ; : >"$tmp/direct" ; : >"$tmp/service" ; : >"$tmp/replay"
start_server
echo "bench: synthetic.nix n=$n work=$cost, 2 workers, $repeat repeat(s)" >&2
for rep in $(seq 1 "$repeat"); do
  salt="bench-service-$(date +%s%N)-$rep"
  jobset "$salt" true >"$tmp/force.json"
  jobset "$salt" false >"$tmp/plain.json"
  # The same arguments the service gives the evaluator (see its log).
  args=(--workers 2 --max-memory-size 4096 --reject-unused-args --arg errors true --arg n "$n"
        --argstr salt "$salt" -I "src=$root/bench/workloads" --arg src "{ outPath = /. + \"$root/bench/workloads\"; }"
        --arg work "$cost" "$root/bench/workloads/synthetic.nix")
  # The first evaluation of a jobset is cold: it writes the .drv files.
  t=$(now); post "$tmp/plain.json" >/dev/null; since "$t" >>"$tmp/cold"
  t=$(now); "$bin/evolive-eval-jobs" "${args[@]}" >"$tmp/direct.jsonl" 2>/dev/null; since "$t" >>"$tmp/direct"
  t=$(now); post "$tmp/force.json" >"$tmp/service.jsonl"; since "$t" >>"$tmp/service"
  t=$(now); post "$tmp/plain.json" >"$tmp/replay.jsonl"; since "$t" >>"$tmp/replay"
  d=$(wc -l <"$tmp/direct.jsonl"); s=$(grep -c '"type":"job"' "$tmp/service.jsonl"); r=$(grep -c '"type":"job"' "$tmp/replay.jsonl")
  grep -q '"cached":true' "$tmp/replay.jsonl" || { echo "bench: the replay was not cached" >&2; exit 1; }
  [ "$d" = "$s" ] && [ "$s" = "$r" ] || { echo "bench: job counts differ: direct $d, service $s, replay $r" >&2; exit 1; }
  echo "bench: repeat $rep: $d jobs; cold $(tail -1 "$tmp/cold") s, direct $(tail -1 "$tmp/direct") s, service $(tail -1 "$tmp/service") s, replay $(tail -1 "$tmp/replay") s" >&2
done
stop_server

# Joining: the peak memory of a server streaming one evaluation to 1 client,
# then (a fresh server, a fresh salt) to $clients clients that join it.
joined() { # CLIENTS
  start_server
  salt="bench-join-$(date +%s%N)-$1"
  jobset "$salt" false >"$tmp/join.json"
  post "$tmp/join.json" >"$tmp/client-0.jsonl" &
  first=$!
  # The others join once the evaluation is under way.
  for _ in $(seq 400); do grep -q '"type":"started"' "$tmp/client-0.jsonl" 2>/dev/null && break; sleep 0.05; done
  pids=()
  for c in $(seq 2 "$1"); do post "$tmp/join.json" >"$tmp/client-$c.jsonl" & pids+=($!); done
  wait "$first" "${pids[@]}"
  local peak; peak=$(peak_kib "$server")
  for f in "$tmp"/client-*.jsonl; do
    [ "$(grep -c '"type":"job"' "$f")" = "$(grep -c '"type":"job"' "$tmp/client-0.jsonl")" ] \
      || { echo "bench: $f did not get every job" >&2; exit 1; }
  done
  joins=$(curl -s "$url/metrics" | awk '/^evolive_joins_total/ { print $2 }')
  echo "bench: $1 client(s): $(grep -c '"type":"job"' "$tmp/client-0.jsonl") jobs each, $joins joined, server peak $((peak / 1024)) MiB" >&2
  stop_server
  rm -f "$tmp"/client-*.jsonl
  echo "$peak"
}
one=$(joined 1)
many=$(joined "$clients")

cm=$(median <"$tmp/cold"); dm=$(median <"$tmp/direct"); sm=$(median <"$tmp/service"); rm_=$(median <"$tmp/replay")
printf '\n%-52s %10s\n' "evaluation of n=$n, 2 workers (median of $repeat)" "seconds"
printf '%-52s %10.2f\n' "first (cold) evaluation through evolive serve" "$cm" \
  "warm: evolive-eval-jobs, directly" "$dm" "warm: through evolive serve (streamed to curl)" "$sm" \
  "replay of the stored result (streamed to curl)" "$rm_"
awk -v c="$cm" -v d="$dm" -v s="$sm" -v r="$rm_" -v one="$one" -v many="$many" -v k="$clients" 'BEGIN {
  r = r > 0 ? r : 0.001
  printf "\nservice / direct (warm): %.3f (target <= 1.05)\n", s / d
  printf "evaluating / replaying: %.0fx against the first evaluation, %.0fx against a warm one (target >= 100)\n", c / r, s / r
  printf "server peak memory: 1 client %.0f MiB, %d clients %.0f MiB (%.2f MiB per extra client)\n",
    one / 1024, k, many / 1024, (many - one) / 1024 / (k - 1) }'
