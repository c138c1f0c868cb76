#!/usr/bin/env bash
# hydra-eval-jobset's speed, in one run on the same jobset: the synthetic
# package set (bench/workloads/synthetic.nix, n=20000 work=1000, about
# 20,800 jobs) as a Hydra jobset (input `src` a path, `n` and `work` nix
# values, `salt` a string), in a PostgreSQL of the benchmark's own with the
# test schema (tests/hydra/hydra_schema.sql), 2 evaluator workers:
#
#  1. evolive-eval-jobs alone, with the flags Hydra's script gives
#     nix-eval-jobs (and nix-eval-jobs itself when it is on PATH), cold;
#  2. hydra-eval-jobset, cold (another salt), from start to exit (the commit
#     and the iscurrent updates after it), with the database part it prints
#     (the final transaction, the staging COPYs that run alongside the
#     evaluation, the updates after the commit), and the longest time any
#     transaction held a lock on `builds`, polled from a second connection
#     (psql \watch, every 20 ms: pg_locks joined with pg_stat_activity,
#     the age of each transaction holding a lock on builds);
#  3. the same jobset again, unchanged (eval_cached).
#
#   bench/hydra.sh                          # n=20000, 3 repeats
#   BENCH_N=2000 BENCH_REPEAT=1 bench/hydra.sh
#
# The ratio against evolive-eval-jobs is the median of each repeat's own
# ratio (the two runs follow each other, under the same load).
#
# Targets (issue 10): the whole run at most 1.1x evolive-eval-jobs alone;
# the transaction that writes the builds under 10% of the run; an unchanged
# re-evaluation under 5% of the first.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin="${EVOLIVE_BUILD:-$root/build}/bin"
n="${BENCH_N:-20000}"
cost="${BENCH_WORK:-1000}"
repeat="${BENCH_REPEAT:-3}"
work=$(mktemp -d /tmp/evolive-bench-hydra.XXXXXX)
pgbin=$(pg_config --bindir 2>/dev/null || ls -d /usr/lib/postgresql/*/bin | tail -1)
watcher=
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  [ -z "$watcher" ] || kill "$watcher" 2>/dev/null || true
  as_postgres "$pgbin/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

. "$root/bench/lib.sh"
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f\n", b - a }'; }

# PostgreSQL on a Unix socket in $work.
[ "$(id -u)" = 0 ] && chown postgres "$work"
as_postgres "$pgbin/initdb" -D "$work/pg" -A trust -U postgres -E UTF8 --locale C.UTF-8 --no-sync >/dev/null
as_postgres "$pgbin/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w \
  -o "-k $work -c listen_addresses='' -c fsync=off -c synchronous_commit=off" start >/dev/null
db="host=$work user=postgres dbname=hydra"
"$pgbin/createdb" -h "$work" -U postgres hydra
psql -q -v ON_ERROR_STOP=1 "$db" -f "$root/tests/hydra/hydra_schema.sql" >/dev/null
sql() { psql -qtA -v ON_ERROR_STOP=1 "$db" -c "$1"; }
sql "insert into users (username, emailaddress, password) values ('root', 'root@invalid.org', '');
     insert into projects (name, displayname, owner) values ('bench', '', 'root');"

mkdir -p "$work/data" "$work/roots"
cat >"$work/data/hydra.conf" <<CONF
evaluator_workers = 2
gc_roots_dir = $work/roots
path_input_cache_validity_seconds = 0
CONF
export HYDRA_DATA="$work/data" HYDRA_CONFIG="$work/data/hydra.conf"
export HYDRA_DATABASE_URL="postgresql://postgres@/hydra?host=$work"

jobset() { # NAME SALT
  sql "insert into jobsets (name, project, nixexprinput, nixexprpath, emailoverride) values ('$1', 'bench', 'src', 'synthetic.nix', '');
       insert into jobsetinputs (project, jobset, name, type) values
         ('bench', '$1', 'src', 'path'), ('bench', '$1', 'n', 'nix'), ('bench', '$1', 'work', 'nix'), ('bench', '$1', 'salt', 'string');
       insert into jobsetinputalts (project, jobset, input, altnr, value) values
         ('bench', '$1', 'src', 0, '$root/bench/workloads'), ('bench', '$1', 'n', 0, '$n'),
         ('bench', '$1', 'work', 0, '$cost'), ('bench', '$1', 'salt', 0, '$2');"
}

# The flags Hydra's script gives nix-eval-jobs, for the same jobset.
src=$(nix-store --add "$root/bench/workloads")
hydra_flags() { # SALT
  printf '%s\n' --option restrict-eval true "<src/synthetic.nix>" \
    --arg n "$n" --argstr salt "$1" -I "src=$src" --arg src "{ outPath = builtins.storePath $src; inputType = \"path\";}" \
    --arg work "$cost" --gc-roots-dir "$work/roots" --max-jobs 1 --meta --constituents --force-recurse \
    --option allow-import-from-derivation false --workers 2 --max-memory-size 4096
}

# The age of the oldest transaction holding a lock on builds, every 20 ms.
watch_locks() {
  psql -qtA "$db" >"$work/locks" 2>/dev/null <<'SQL' &
select coalesce(max(extract(epoch from clock_timestamp() - a.xact_start)), 0)
from pg_locks l join pg_stat_activity a on a.pid = l.pid
where l.relation = 'builds'::regclass and l.granted and a.pid <> pg_backend_pid() \watch 0.02
SQL
  watcher=$!
}
stop_watching() { kill "$watcher" 2>/dev/null || true; wait "$watcher" 2>/dev/null || true; watcher=; }

: >"$work/alone"; : >"$work/nej"; : >"$work/hydra"; : >"$work/tx"; : >"$work/staging"; : >"$work/after"
: >"$work/lock"; : >"$work/unchanged"; : >"$work/ratio"
echo "bench: synthetic.nix n=$n work=$cost as a Hydra jobset, 2 workers, $repeat repeat(s)" >&2
for rep in $(seq 1 "$repeat"); do
  stamp="bench-hydra-$(date +%s%N)-$rep"
  mapfile -t flags < <(hydra_flags "$stamp-alone")
  t=$(now); "$bin/evolive-eval-jobs" "${flags[@]}" >"$work/alone.jsonl" 2>/dev/null; since "$t" >>"$work/alone"
  if command -v nix-eval-jobs >/dev/null; then
    mapfile -t flags < <(hydra_flags "$stamp-nej")
    t=$(now); nix-eval-jobs "${flags[@]}" >/dev/null 2>&1; since "$t" >>"$work/nej"
  fi

  jobset "j$rep" "$stamp"
  watch_locks
  t=$(now); "$bin/hydra-eval-jobset" bench "j$rep" 2>"$work/run.err" || { cat "$work/run.err" >&2; exit 1; }
  since "$t" >>"$work/hydra"
  stop_watching
  sort -n "$work/locks" | tail -1 >>"$work/lock"
  line=$(grep 'timings:' "$work/run.err")
  echo "bench: $line" >&2
  echo "$line" | sed 's/.*transaction \([0-9.]*\) s.*/\1/' >>"$work/tx"
  echo "$line" | sed 's/.*(staging \([0-9.]*\) s.*/\1/' >>"$work/staging"
  echo "$line" | sed 's/.*after the commit \([0-9.]*\) s.*/\1/' >>"$work/after"
  builds=$(sql "select count(*) from builds b join jobsets j on j.id = b.jobset_id where j.name = 'j$rep'")
  jobs=$(wc -l <"$work/alone.jsonl")

  t=$(now); "$bin/hydra-eval-jobset" bench "j$rep" 2>"$work/again.err"; since "$t" >>"$work/unchanged"
  awk -v h="$(tail -1 "$work/hydra")" -v a="$(tail -1 "$work/alone")" 'BEGIN { print h / a }' >>"$work/ratio"
  grep -q 'jobset is unchanged' "$work/again.err" || { cat "$work/again.err" >&2; echo "bench: not unchanged" >&2; exit 1; }
  echo "bench: repeat $rep: $jobs jobs, $builds builds; alone $(tail -1 "$work/alone") s, hydra-eval-jobset" \
       "$(tail -1 "$work/hydra") s (transaction $(tail -1 "$work/tx") s, longest lock on builds $(tail -1 "$work/lock") s)," \
       "unchanged $(tail -1 "$work/unchanged") s" >&2
done

am=$(median <"$work/alone"); hm=$(median <"$work/hydra"); txm=$(median <"$work/tx"); sm=$(median <"$work/staging")
afm=$(median <"$work/after"); lm=$(median <"$work/lock"); um=$(median <"$work/unchanged")
printf '\n%-62s %10s\n' "n=$n (about $jobs jobs), 2 workers, cold store (median of $repeat)" "seconds"
printf '%-62s %10.2f\n' "evolive-eval-jobs alone, Hydra's flags" "$am"
[ -s "$work/nej" ] && printf '%-62s %10.2f\n' "nix-eval-jobs alone, Hydra's flags" "$(median <"$work/nej")"
printf '%-62s %10.2f\n' "hydra-eval-jobset, start to exit" "$hm" \
  "  of it: staging COPYs, alongside the evaluation" "$sm" \
  "  of it: the transaction writing evaluation, builds, members" "$txm" \
  "  of it: repoints and iscurrent after the commit" "$afm" \
  "longest lock held on builds (polled every 20 ms)" "$lm" \
  "hydra-eval-jobset, unchanged (eval_cached)" "$um"
# The ratio of each repeat's two runs (made one after the other, so under
# the same load), then their median: steadier than the ratio of medians on
# a machine shared with other work.
awk -v a="$am" -v h="$hm" -v tx="$txm" -v l="$lm" -v u="$um" -v r="$(median <"$work/ratio")" 'BEGIN {
  printf "\nhydra-eval-jobset / evolive-eval-jobs alone: %.3f, median of the repeats\x27 ratios (target <= 1.1); %.3f of the medians\n", r, h / a
  printf "transaction / whole run: %.1f%% (target < 10%%); longest lock on builds / run: %.1f%%\n", 100 * tx / h, 100 * l / h
  printf "unchanged / first: %.1f%% (target < 5%%)\n", 100 * u / h
}'
if [ -s "$work/nej" ]; then
  awk -v n="$(median <"$work/nej")" -v h="$hm" 'BEGIN { printf "hydra-eval-jobset / nix-eval-jobs alone: %.3f\n", h / n }'
fi
