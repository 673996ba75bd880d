#!/usr/bin/env bash
# bench/redis.sh: zero-redis vs. redis-rs and fred (the Rust clients) and redis-benchmark (the
# C ceiling), on the same redis-server, in one run.
#
# redis-server (Debian's, no persistence) runs pinned to CPU 0; each client runs alone, pinned
# to CPU 1, in its own process:
#   zero             `zero bench redis`: zero-redis's client machine inline on one zero-core shard
#   redis-rs         redis 0.32, one MultiplexedConnection shared by all callers (Tokio, 1 thread)
#   fred             fred 10, one client (auto-pipelining) shared by all callers (Tokio, 1 thread)
#   zero-tokio       zero-redis's Tokio client (its machine in a Tokio task over Tokio's
#                    sockets) in the same harness as redis-rs and fred (Tokio, 1 thread)
#   redis-benchmark  -P 16 with -c the nearest to callers / 16 (-c 1 -P 1 for 1 caller)
#   redis-benchmark-1conn  -c 1 -P callers: the same concurrency on one connection, as the
#                    clients above have it (replies to one connection come back in one batch,
#                    so client and server take turns; several connections overlap)
# Workloads, 64-byte values:
#   get-set-N  N callers on one connection, each with one command outstanding, alternating
#              SET k<i> v and GET k<i>; N = 1, 50, 500
#   pubsub     one publisher with 50 PUBLISHes outstanding, 10 subscriber connections, at most
#              10,000 deliveries outstanding end to end; the figure is messages received
#   cached-get one caller GETs 100 keys in turn through the client-side cache (CLIENT
#              TRACKING): zero's blocking client and redis-rs's cache-aio; fred has no cache.
#              Nearly every GET is a hit, so this measures the client alone
# For each: operations/s and operations per client CPU-second (the client process's CPU time
# over the measured interval, all threads, from /proc/self/task/*/schedstat; redis-benchmark's
# from its rusage, start-up included). The server is single-threaded and caps everyone's
# raw rate, so the per-CPU-second figure is the headline. The last line is
#   ratio zero/best-rust: X
# the smaller, at 50 and at 500 callers, of zero's operations per client CPU-second divided by
# the better of redis-rs's and fred's.
#
# Environment (all optional): DURATION=5 (s measured per run, after 1 s of warm-up),
# PORT=16480, CLIENTS="zero zero-tokio redis-rs fred redis-benchmark redis-benchmark-1conn",
# CARGO_TARGET_DIR.
# Progress goes to stderr; the report to stdout.
set -euo pipefail
export LC_ALL=C

DURATION="${DURATION:-5}"
PORT="${PORT:-16480}"
CLIENTS="${CLIENTS:-zero zero-tokio redis-rs fred redis-benchmark redis-benchmark-1conn}"
SERVER_CPU=0
CLIENT_CPU=1
SIZE=64
SUBSCRIBERS=10
BACKLOG=10000

log() { printf 'redis.sh: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

cd "$(dirname "$0")/.."
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/zero-target}"
[[ $CARGO_TARGET_DIR == /* ]] || CARGO_TARGET_DIR="$PWD/$CARGO_TARGET_DIR"
export CARGO_TARGET_DIR
zero_bin="$CARGO_TARGET_DIR/release/zero"
rust_bin="$CARGO_TARGET_DIR/redis-clients/release/redis-clients-bench"

command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null || {
	log "installing redis-server and redis-tools"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-tools >/dev/null
}
log "building zero and the Rust clients (release)"
cargo build --release -q -p zero-cli
CARGO_TARGET_DIR="$CARGO_TARGET_DIR/redis-clients" cargo build --release -q --manifest-path bench/redis-clients/Cargo.toml

server_pid=""
stop_server() {
	[[ -n $server_pid ]] || return 0
	kill -TERM "$server_pid" 2>/dev/null || true
	wait "$server_pid" 2>/dev/null || true
	server_pid=""
}
trap stop_server EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port_open "$PORT" && die "port $PORT is in use; set PORT"
taskset -c "$SERVER_CPU" redis-server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no \
	--loglevel warning >/dev/null 2>&1 &
server_pid=$!
for _ in $(seq 100); do port_open "$PORT" && break; sleep 0.05; done
port_open "$PORT" || die "redis-server did not start on $PORT"
log "redis-server $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/') on 127.0.0.1:$PORT (CPU $SERVER_CPU); clients on CPU $CLIENT_CPU"

# run CLIENT WORKLOAD CALLERS: prints "ops/s ops-per-cpu-s".
run() {
	local client=$1 workload=$2 callers=$3 out
	case $client in
	zero)
		out=$(taskset -c "$CLIENT_CPU" "$zero_bin" bench redis --target "127.0.0.1:$PORT" --workload "$workload" \
			--callers "$callers" --size "$SIZE" --subscribers "$SUBSCRIBERS" --backlog "$BACKLOG" \
			--warmup 1 --duration "$DURATION")
		;;
	redis-rs | fred | zero-tokio)
		[[ $client != redis-rs && $workload == cached-get ]] && { echo "- -"; return; }
		out=$(taskset -c "$CLIENT_CPU" "$rust_bin" "$client" "$workload" "127.0.0.1:$PORT" "$callers" "$SIZE" \
			"$SUBSCRIBERS" "$BACKLOG" 1 "$DURATION")
		;;
	redis-benchmark | redis-benchmark-1conn)
		[[ $workload == get-set ]] || { echo "- -"; return; }
		local conns=$(((callers + 8) / 16)) pipeline=16 requests
		((callers > 1)) || pipeline=1
		[[ $client == redis-benchmark ]] || conns=1 pipeline=$callers
		# About DURATION seconds of each of SET and GET at the rate zero reached.
		requests=$(awk -v r="${zero_rate:-100000}" -v d="$DURATION" 'BEGIN { printf "%d", r * d / 2 }')
		out=$(python3 - "$CLIENT_CPU" "$PORT" "$requests" "$conns" "$pipeline" "$SIZE" <<'PY'
import re, resource, subprocess, sys, time
cpu, port, n, c, p, d = sys.argv[1:]
t0 = time.monotonic()
text = subprocess.run(["taskset", "-c", cpu, "redis-benchmark", "-p", port, "-t", "set,get", "-n", n, "-c", c,
                       "-P", p, "-d", d, "-r", "1000", "--threads", "1", "-q"],
                      capture_output=True, text=True, check=True).stdout.replace("\r", "\n")
rates = [float(x) for x in re.findall(r"(?:SET|GET): ([0-9.]+) requests per second", text)]
assert len(rates) == 2, text
r = resource.getrusage(resource.RUSAGE_CHILDREN)
ops = 2 * int(n)
secs = ops / rates[0] / 2 + ops / rates[1] / 2
print(f"RESULT client=redis-benchmark ops={ops} secs={secs:.3f} cpu={r.ru_utime + r.ru_stime:.3f}")
PY
)
		;;
	esac
	echo "$out" | awk '/^RESULT/ {
		for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
		printf "%.0f %.0f\n", v["ops"] / v["secs"], v["ops"] / (v["cpu"] > 0 ? v["cpu"] : 1e-9)
	}'
}

declare -A rate per_cpu
printf '%-12s %-22s %12s %18s\n' workload client ops/s "ops/client-CPU-s"
for spec in get-set:1 get-set:50 get-set:500 pubsub:50 cached-get:1; do
	workload=${spec%%:*} callers=${spec##*:}
	name=$workload
	[[ $workload == get-set ]] && name="get-set-$callers"
	zero_rate=""
	for client in $CLIENTS; do
		log "$name: $client"
		read -r r c < <(run "$client" "$workload" "$callers")
		[[ $client == zero ]] && zero_rate=$r
		rate[$name,$client]=$r per_cpu[$name,$client]=$c
		[[ $r == - ]] && continue
		printf '%-12s %-22s %12s %18s\n' "$name" "$client" "$r" "$c"
	done
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
best_rust() {
	local w=$1 kind=$2 a b
	if [[ $kind == cpu ]]; then a=${per_cpu[$w,redis-rs]:-0} b=${per_cpu[$w,fred]:-0}; else a=${rate[$w,redis-rs]:-0} b=${rate[$w,fred]:-0}; fi
	awk -v a="$a" -v b="$b" 'BEGIN { print (a > b ? a : b) }'
}
echo
min=""
for w in get-set-1 get-set-50 get-set-500 pubsub cached-get; do
	cpu=$(ratio "${per_cpu[$w,zero]:-0}" "$(best_rust "$w" cpu)")
	ops=$(ratio "${rate[$w,zero]:-0}" "$(best_rust "$w" ops)")
	line="$w: zero/best-rust per client CPU-s $cpu, ops/s $ops"
	[[ -n ${rate[$w,redis-benchmark]:-} && ${rate[$w,redis-benchmark]} != - ]] &&
		line+=", zero/redis-benchmark ops/s $(ratio "${rate[$w,zero]}" "${rate[$w,redis-benchmark]}")"
	[[ -n ${rate[$w,redis-benchmark-1conn]:-} && ${rate[$w,redis-benchmark-1conn]} != - ]] &&
		line+=", zero/redis-benchmark-1conn ops/s $(ratio "${rate[$w,zero]}" "${rate[$w,redis-benchmark-1conn]}")"
	echo "$line"
	if [[ $w == get-set-50 || $w == get-set-500 ]]; then
		min=$(awk -v a="$cpu" -v m="$min" 'BEGIN { if (m == "" || a < m) print a; else print m }')
	fi
done
echo "ratio zero/best-rust: $min"
