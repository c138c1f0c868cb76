# Shared by the benchmark scripts (sourced): medians, timing, a private
# nix-daemon. Each script sets `work` (its temporary folder) first.

# median: the median of the numbers on stdin, one a line.
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# seconds COMMAND...: runs it (stdout dropped) and prints its wall time; stops
# the benchmark with the command's stderr when it fails.
seconds() { /usr/bin/time -o "$work/t" -f '%e' "$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }; cat "$work/t"; }

# start_nix_daemon: a nix-daemon of the benchmark's own on $work/daemon.sock;
# sets $socket and $daemon (its pid, for the script's trap to stop).
start_nix_daemon() {
  socket="$work/daemon.sock"
  NIX_DAEMON_SOCKET_PATH="$socket" nix-daemon >"$work/daemon.log" 2>&1 &
  daemon=$!
  for _ in $(seq 100); do [ -S "$socket" ] && return; sleep 0.1; done
  echo "bench: nix-daemon did not start (see $work/daemon.log)" >&2
  exit 1
}

# closure_drvs N SALT: evaluates the synthetic workload (n = N, light work,
# no errors) into $work/drvs (one .drv a line) and reads every file of their
# closures once, so that no tool measured after pays for a cold page cache.
closure_drvs() {
  "$bin/evolive-eval-jobs" --workers 2 --arg n "$1" --arg work 10 --arg errors false --argstr salt "$2" \
    "$root/bench/workloads/synthetic.nix" 2>/dev/null | grep -o '"drvPath":"[^"]*"' | cut -d'"' -f4 >"$work/drvs"
  mapfile -t drvs <"$work/drvs"
  nix-store --query --requisites "${drvs[@]}" | xargs cat >/dev/null
}
