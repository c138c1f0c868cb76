#!/usr/bin/env bash
# A fleet's overhead, in one run on the same jobset (bench/workloads/
# synthetic.nix, n=20000 work=1000 by default), pushing included in both:
#
#  - local: `evolive serve` evaluates with 2 workers and pushes every job's
#    .drv closure to a directory binary cache ("push": true);
#  - fleet: `evolive serve --fleet` lists the paths, puts chunks on Redis,
#    and 2 `evolive worker`s of one evaluator each evaluate them and push to
#    a directory binary cache.
#
# Every store is a new, empty chroot store served by a nix-daemon of its
# own (the local server's, each worker's), so that neither side writes into
# a store that earlier runs filled (the machine's /nix/store database slows
# down as it grows). Each repeat uses a new salt, so both evaluations write
# new .drv files and push to an empty cache. It prints the medians and fleet / local, and from
# the fleet's evaluation log each chunk's evaluation and push time, which
# docs/fleet.md's model of 10, 100 and 1,000 machines starts from.
#
#   bench/fleet.sh                                          # n=20000, 3 repeats
#   BENCH_N=2000 BENCH_REPEAT=1 BENCH_CHUNK=200 bench/fleet.sh
#
# Target (issue 13): fleet / local <= 1.25.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin="${EVOLIVE_BUILD:-$root/build}/bin"
n="${BENCH_N:-20000}"
cost="${BENCH_WORK:-1000}"
repeat="${BENCH_REPEAT:-3}"
chunk="${BENCH_CHUNK:-1000}"
work=$(mktemp -d /tmp/evolive-bench-fleet.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${BENCH_KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

. "$root/bench/lib.sh"
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f\n", b - a }'; }
await_file() { for _ in $(seq 200); do [ -e "$1" ] && return; sleep 0.05; done; echo "bench: $1 did not appear" >&2; exit 1; }

# redis-server.
redis-server --port 0 --unixsocket "$work/redis.sock" --save "" --appendonly no >"$work/redis.log" 2>&1 &
pids+=($!)
await_file "$work/redis.sock"
redis="unix://$work/redis.sock"
redis_pid=${pids[-1]}
# cpu PID [with-children]: its CPU seconds so far (user + system).
cpu() { awk -v c="${2:-}" -v hz="$(getconf CLK_TCK)" '{ t = $14 + $15; if (c != "") t += $16 + $17; printf "%.2f\n", t / hz }' "/proc/$1/stat"; }
cpu "$redis_pid" >"$work/redis-cpu-before"

# start_store DIR: an empty chroot store at DIR/root and its daemon on DIR/daemon.sock.
start_store() {
  mkdir -p "$1/root"
  NIX_REMOTE="local?root=$1/root" NIX_DAEMON_SOCKET_PATH="$1/daemon.sock" nix-daemon >"$1/daemon.log" 2>&1 &
  pids+=($!)
  await_file "$1/daemon.sock"
}

start_server() { # NAME ARGS...: sets $url and $server
  local name=$1; shift
  start_store "$work/$name-store"
  "$bin/evolive" serve --listen 127.0.0.1:0 --state-dir "$work/$name" --allow-path "$root/bench/workloads" \
    --max-workers 2 --daemon-socket "$work/$name-store/daemon.sock" --store-root "$work/$name-store/root" "$@" \
    2>"$work/$name.log" &
  server=$!
  pids+=($!)
  for _ in $(seq 200); do
    url=$(grep -so 'listening on http://[0-9.:]*' "$work/$name.log" | cut -d' ' -f3) && [ -n "$url" ] && return
    sleep 0.05
  done
  cat "$work/$name.log" >&2
  exit 1
}

# Two machines: each a chroot store, its daemon, its worker.
start_worker() { # NAME CACHE
  local dir="$work/$1"
  start_store "$dir"
  "$bin/evolive" worker --redis "$redis" --cache "$2" --name "$1" --workers 1 --state-dir "$dir/state" \
    --daemon-socket "$dir/daemon.sock" --store-root "$dir/root" 2>"$dir/worker.log" &
  pids+=($!)
}

jobset() { # SALT FLEET
  cat <<JSON
{"inputs": {"src": {"type": "path", "path": "$root/bench/workloads"},
            "n": {"type": "nix", "value": "$n"}, "work": {"type": "nix", "value": "$cost"},
            "errors": {"type": "boolean", "value": true}, "salt": {"type": "string", "value": "$1"}},
 "expression": {"input": "src", "path": "synthetic.nix"},
 "options": {"workers": 2, "push": true, "fleet": $2}}
JSON
}
post() { curl -sSN --fail-with-body --json @"$2" "$1/v1/evaluations"; }

: >"$work/local" ; : >"$work/fleet" ; : >"$work/chunks"
echo "bench: synthetic.nix n=$n work=$cost, pushing; local: 2 workers; fleet: 2 workers x 1 evaluator, chunks of $chunk; $repeat repeat(s)" >&2
for rep in $(seq 1 "$repeat"); do
  salt="bench-fleet-$(date +%s%N)-$rep"
  # New caches each repeat: nothing is present yet for either.
  start_server "local-$rep" --cache "$work/cache-local-$rep"
  local_url=$url local_pid=$server
  start_server "fleet-$rep" --fleet "$redis" --chunk-size "$chunk" --cache "$work/cache-unused-$rep"
  fleet_url=$url fleet_pid=$server
  start_worker "m1-$rep" "$work/cache-fleet-$rep"; w1=${pids[-1]}
  start_worker "m2-$rep" "$work/cache-fleet-$rep"; w2=${pids[-1]}
  jobset "$salt" false >"$work/local.json"
  jobset "$salt-fleet" true >"$work/fleet.json"
  # In turn which goes first, so that a load that comes and goes on the
  # machine falls on both.
  run_local() { t=$(now); post "$local_url" "$work/local.json" >"$work/local.jsonl"; since "$t" >>"$work/local"; }
  run_fleet() { t=$(now); post "$fleet_url" "$work/fleet.json" >"$work/fleet.jsonl"; since "$t" >>"$work/fleet"; }
  if [ $((rep % 2)) = 1 ]; then run_local; run_fleet; else run_fleet; run_local; fi
  for side in local fleet; do
    grep -q '"type":"finished"' "$work/$side.jsonl" || { echo "bench: the $side evaluation did not finish:" >&2; tail -c 2000 "$work/$side.jsonl" >&2; exit 1; }
  done
  l=$(grep -c '"type":"job"' "$work/local.jsonl"); f=$(grep -c '"type":"job"' "$work/fleet.jsonl")
  [ "$l" = "$f" ] || { echo "bench: job counts differ: local $l, fleet $f" >&2; exit 1; }
  le=$(grep -c '"push":{"error"' "$work/local.jsonl" || true); fe=$(grep -c '"push":{"error"' "$work/fleet.jsonl" || true)
  [ "$le$fe" = 00 ] || { echo "bench: pushes failed: local $le, fleet $fe" >&2; exit 1; }
  log=$(grep -o '"log":"[^"]*"' "$work/fleet.jsonl" | head -1 | cut -d'"' -f4)
  grep -o 'done by .*' "$log" | sed 's/.*: //' >>"$work/chunks"
  echo "bench: repeat $rep: $l jobs; local $(tail -1 "$work/local") s, fleet $(tail -1 "$work/fleet") s; $(grep -c 'done by' "$log") chunks; $(grep 'attribute paths listed' "$log" | sed 's/.*fleet: //')" >&2
  # What the coordinator and Redis cost per job: their CPU seconds
  # (the coordinator's with its children: the listing), and the cache's bytes.
  cpu "$fleet_pid" with-children >>"$work/coordinator-cpu"
  cpu "$redis_pid" >"$work/redis-cpu-now"
  awk -v a="$(cat "$work/redis-cpu-before")" -v b="$(cat "$work/redis-cpu-now")" 'BEGIN { print b - a }' >>"$work/redis-cpu"
  cp "$work/redis-cpu-now" "$work/redis-cpu-before"
  du -sb "$work/cache-fleet-$rep" | cut -f1 >>"$work/cache-bytes"
  echo "$f" >>"$work/jobs"
  for p in "$w1" "$w2" "$local_pid" "$fleet_pid"; do kill "$p"; wait "$p" 2>/dev/null || true; done
done

lm=$(median <"$work/local"); fm=$(median <"$work/fleet")
printf '\n%-60s %10s\n' "n=$n, pushing every .drv closure (median of $repeat)" "seconds"
printf '%-60s %10.2f\n' "local: evolive serve, 2 workers" "$lm" "fleet: evolive serve --fleet, 2 evolive workers x 1 evaluator" "$fm"
awk -v l="$lm" -v f="$fm" 'BEGIN { printf "\nfleet / local: %.3f (target <= 1.25)\n", f / l }'
# Per chunk, from the evaluation logs: evaluation and push seconds; per job,
# the coordinator's and Redis's CPU and the cache's bytes.
python3 - "$work" <<'PY'
import json, statistics, sys
w = sys.argv[1]
rows = [json.loads(l) for l in open(w + "/chunks") if l.strip()]
num = lambda f: [float(l) for l in open(w + "/" + f) if l.strip()]
jobsum = sum(num("jobs"))
print(f"coordinator CPU {statistics.median(num('coordinator-cpu')):.2f} s per evaluation ({sum(num('coordinator-cpu'))/jobsum*1e6:.0f} us per job, listing included); "
      f"Redis CPU {statistics.median(num('redis-cpu')):.2f} s ({sum(num('redis-cpu'))/jobsum*1e6:.0f} us per job); "
      f"cache {sum(num('cache-bytes'))/jobsum:.0f} bytes per job")
ev = [r["evaluateSeconds"] for r in rows]; pu = [r["pushSeconds"] for r in rows]; jobs = [r["jobs"] for r in rows]
print(f"chunks: {len(rows)} over all repeats, {statistics.median(jobs):.0f} jobs each (median); "
      f"evaluate {statistics.median(ev):.2f} s, push {statistics.median(pu):.2f} s per chunk (median); "
      f"per job: evaluate {sum(ev)/sum(jobs)*1000:.2f} ms, push {sum(pu)/sum(jobs)*1000:.2f} ms")
PY
