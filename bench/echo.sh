#!/usr/bin/env bash
# bench/echo.sh: zero's echo server vs. an idiomatic Tokio echo server.
#
# Builds the release binaries `zero` (zero-cli) and the baseline, then runs
# three servers one at a time (zero on io_uring, zero on its epoll fallback
# with ZERO_BACKEND=epoll, and the baseline), each pinned to CPU 0, and drives each with the
# same load generator (`zero bench echo`) pinned to CPU 1, in two loads:
#   closed loop  CONNS connections, one SIZE-byte message in flight on each
#   pipeline 16  the same with 16 messages in flight per connection
# It prints one table row per (server, load), the zero/baseline throughput
# ratio per load, what the epoll fallback costs (zero-epoll/zero) and, as the
# very last line, the smaller of the two zero/baseline ratios:
#   ratio zero/tokio: X.XX
#
# With TLS=1 (what bench/tls-echo.sh sets) both servers speak TLS with the same
# certificate (made here with openssl) and rustls' ring provider, the baseline
# is Tokio + tokio-rustls (`tokio-tls-echo`), only the closed loop runs, and the
# last line is `ratio zero/tokio-rustls: X.XX`.
#
# Environment (all optional):
#   DURATION=5   seconds per load         CONNS=50   connections
#   SIZE=64      message size in bytes    PERF=1     run servers under `perf stat`
#   ZERO_PORT=17001  TOKIO_PORT=17002  EPOLL_PORT=17003
#   CARGO_TARGET_DIR (default ~/.cache/zero-target)
#   TLS=0
#
# Progress and build output go to stderr; the report goes to stdout.
set -euo pipefail
export LC_ALL=C

DURATION="${DURATION:-5}"
CONNS="${CONNS:-50}"
SIZE="${SIZE:-64}"
PERF="${PERF:-0}"
TLS="${TLS:-0}"
ZERO_PORT="${ZERO_PORT:-17001}"
TOKIO_PORT="${TOKIO_PORT:-17002}"
EPOLL_PORT="${EPOLL_PORT:-17003}"
PIPELINE=16
SERVER_CPU=0
LOAD_CPU=1
PERF_EVENTS=task-clock,context-switches,cycles,instructions

log() { printf 'echo.sh: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

for var in DURATION CONNS SIZE ZERO_PORT TOKIO_PORT EPOLL_PORT; do
	[[ ${!var} =~ ^[1-9][0-9]*$ ]] || die "$var must be a positive integer (got '${!var}')"
done
[[ $ZERO_PORT != "$TOKIO_PORT" ]] || die "ZERO_PORT and TOKIO_PORT must differ"

CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/zero-target}"
[[ $CARGO_TARGET_DIR == /* ]] || CARGO_TARGET_DIR="$PWD/$CARGO_TARGET_DIR"
export CARGO_TARGET_DIR
zero_bin="$CARGO_TARGET_DIR/release/zero"
if [[ $TLS == 1 ]]; then
	baseline=tokio-rustls
	baseline_pkg=tokio-tls-echo
	loads=(closed)
else
	baseline=tokio
	baseline_pkg=tokio-echo
	loads=(closed pipeline)
fi
tokio_bin="$CARGO_TARGET_DIR/release/$baseline_pkg"

use_perf=0
if [[ $PERF == 1 ]]; then
	if command -v perf >/dev/null 2>&1; then
		use_perf=1
	else
		log "PERF=1 but perf is not installed; running without it"
	fi
fi

workdir="$(mktemp -d "${TMPDIR:-/tmp}/zero-echo-bench.XXXXXX")"
server_pid=""

# Stops the running server (if any): SIGTERM, up to 5 s of grace, then SIGKILL.
# Under perf the server is perf's child; signalling the server rather than perf
# lets perf print its counters and exit by itself.
stop_server() {
	[[ -n $server_pid ]] || return 0
	local pid=$server_pid i
	server_pid=""
	if ((use_perf)); then
		pkill -TERM -P "$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
	else
		kill -TERM "$pid" 2>/dev/null || true
	fi
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		pkill -KILL -P "$pid" 2>/dev/null || true
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	stop_server
	rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Succeeds if something accepts TCP connections on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start_server NAME PORT CMD...: starts CMD pinned to SERVER_CPU, waits until
# PORT accepts (at most ~5 s).
start_server() {
	local name=$1 port=$2 i
	shift 2
	local logf="$workdir/$name.log"
	if port_open "$port"; then
		die "127.0.0.1:$port is already in use; pick another port with ${name^^}_PORT"
	fi
	local -a wrap=()
	if ((use_perf)); then
		wrap=(perf stat -e "$PERF_EVENTS" -o "$workdir/$name.perf" --)
	fi
	log "starting $name server on 127.0.0.1:$port (CPU $SERVER_CPU): $*"
	taskset -c "$SERVER_CPU" ${wrap[@]+"${wrap[@]}"} "$@" >"$logf" 2>&1 &
	server_pid=$!
	for ((i = 0; i < 50; i++)); do
		port_open "$port" && return 0
		if ! kill -0 "$server_pid" 2>/dev/null; then
			wait "$server_pid" 2>/dev/null || true
			server_pid=""
			cat "$logf" >&2
			die "$name server exited before accepting on 127.0.0.1:$port"
		fi
		sleep 0.1
	done
	cat "$logf" >&2
	die "$name server did not accept on 127.0.0.1:$port within 5 s"
}

declare -A result
declare -A server_cpu

# cpu_ticks PID: user+system clock ticks of PID and its threads so far.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# The process whose CPU time counts: the server itself, also under perf.
server_process() {
	if ((use_perf)); then pgrep -P "$server_pid" | head -n 1; else echo "$server_pid"; fi
}

# run_load SERVER LOAD PORT [EXTRA ARGS...]: runs the load generator pinned to
# LOAD_CPU and records its `result ...` line.
run_load() {
	local server=$1 load=$2 port=$3
	shift 3
	local out="$workdir/$server-$load.out" line
	log "$server: $load load: $CONNS conns, $SIZE B, $DURATION s${*:+, $*}"
	local proc t0 c0
	proc="$(server_process)"
	t0="$(date +%s.%N)"
	c0="$(cpu_ticks "$proc")"
	if ! taskset -c "$LOAD_CPU" "$zero_bin" bench echo --target "127.0.0.1:$port" \
		--conns "$CONNS" --size "$SIZE" --duration "$DURATION" "$@" >"$out"; then
		cat "$out" >&2
		die "load generator failed against $server ($load)"
	fi
	if ! line="$(grep '^result ' "$out" | tail -n 1)"; then
		cat "$out" >&2
		die "no 'result ...' line from the load generator ($server, $load)"
	fi
	result["$server,$load"]=$line
	# Share of one CPU the server used over the whole run (connect, warm-up, measurement).
	server_cpu["$server,$load"]="$(awk -v c0="$c0" -v c1="$(cpu_ticks "$proc")" -v t0="$t0" \
		-v t1="$(date +%s.%N)" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.4f", (c1 - c0) / hz / (t1 - t0) }')"
	local key
	for key in msgs_per_sec p50_us p99_us p999_us errors; do
		field "$server" "$load" "$key" >/dev/null
	done
}

# field SERVER LOAD KEY: the value of KEY=... in that run's result line.
field() {
	local v
	v="$(awk -v k="$3" '{
		for (i = 2; i <= NF; i++) {
			n = index($i, "=")
			if (n > 1 && substr($i, 1, n - 1) == k) { print substr($i, n + 1); exit }
		}
	}' <<<"${result["$1,$2"]}")"
	[[ $v =~ ^[0-9]+([.][0-9]*)?([eE][-+]?[0-9]+)?$ ]] ||
		die "bad or missing $3 in result line ($1, $2): ${result["$1,$2"]}"
	printf '%s\n' "$v"
}

# --- checks and build ---------------------------------------------------------

command -v taskset >/dev/null 2>&1 || die "taskset not found (util-linux)"
if ! taskset -c "$SERVER_CPU" true 2>/dev/null || ! taskset -c "$LOAD_CPU" true 2>/dev/null; then
	die "need CPUs $SERVER_CPU and $LOAD_CPU (server on CPU $SERVER_CPU, load generator on CPU $LOAD_CPU)"
fi

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log "building release binaries (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
(cd "$repo_root" && cargo build --release -p zero-cli -p "$baseline_pkg")
[[ -x $zero_bin ]] || die "missing $zero_bin after build"
[[ -x $tokio_bin ]] || die "missing $tokio_bin after build"

# --- runs ---------------------------------------------------------------------

declare -A load_label=([closed]="closed loop" [pipeline]="pipeline $PIPELINE")

tls_server=() tls_client=()
if [[ $TLS == 1 ]]; then
	command -v openssl >/dev/null 2>&1 || die "openssl not found (it makes the certificate)"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
		-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -addext basicConstraints=critical,CA:FALSE \
		-keyout "$workdir/key.pem" -out "$workdir/cert.pem" 2>/dev/null || die "openssl could not make a certificate"
	tls_server=(--cert "$workdir/cert.pem" --key "$workdir/key.pem")
	tls_client=(--tls --tls-ca "$workdir/cert.pem" --tls-name localhost)
fi

servers=(zero zero-epoll tokio)
for server in "${servers[@]}"; do
	if [[ $server == zero* ]]; then
		port=$ZERO_PORT backend=io_uring
		[[ $server == zero-epoll ]] && port=$EPOLL_PORT backend=epoll
		cmd=(env "ZERO_BACKEND=$backend" "$zero_bin" echo serve --listen "127.0.0.1:$port" --shards 1)
		((TLS)) && cmd+=(--tls --tls-cert "$workdir/cert.pem" --tls-key "$workdir/key.pem")
	else
		port=$TOKIO_PORT
		cmd=("$tokio_bin" --listen "127.0.0.1:$port" ${tls_server[@]+"${tls_server[@]}"})
	fi
	start_server "$server" "$port" "${cmd[@]}"
	run_load "$server" closed "$port" ${tls_client[@]+"${tls_client[@]}"}
	if [[ ${loads[*]} == *pipeline* ]]; then
		run_load "$server" pipeline "$port" --pipeline "$PIPELINE"
	fi
	stop_server
	if ((use_perf)); then
		printf '== perf stat: %s server ==\n' "$server"
		cat "$workdir/$server.perf" 2>/dev/null || log "no perf output for $server"
		echo
	fi
done

# --- report -------------------------------------------------------------------

printf '# echo%s: server on CPU %s, load generator on CPU %s (taskset); kernel %s\n' \
	"$( ((TLS)) && echo ' over TLS (rustls, ring)')" "$SERVER_CPU" "$LOAD_CPU" "$(uname -r)"
printf '# load: zero bench echo, %s conns, %s B messages, %s s per load\n' \
	"$CONNS" "$SIZE" "$DURATION"
printf '%-10s %-12s %12s %10s %10s %10s %8s %8s %14s\n' \
	server load msgs/s p50_us p99_us p999_us errors srv_cpu msgs/cpu_s
for server in "${servers[@]}"; do
	for load in "${loads[@]}"; do
		msgs="$(field "$server" "$load" msgs_per_sec)"
		p50="$(field "$server" "$load" p50_us)"
		p99="$(field "$server" "$load" p99_us)"
		p999="$(field "$server" "$load" p999_us)"
		errors="$(field "$server" "$load" errors)"
		cpu="${server_cpu["$server,$load"]}"
		printf '%-10s %-12s %12.0f %10.1f %10.1f %10.1f %8s %7.0f%% %14.0f\n' \
			"$server" "${load_label[$load]}" "$msgs" "$p50" "$p99" "$p999" "$errors" \
			"$(awk -v c="$cpu" 'BEGIN { print c * 100 }')" \
			"$(awk -v m="$msgs" -v c="$cpu" 'BEGIN { print (c > 0) ? m / c : 0 }')"
		[[ $errors == 0 ]] || log "warning: $server ($load): $errors errors"
	done
done

declare -A ratio
for load in "${loads[@]}"; do
	z="$(field zero "$load" msgs_per_sec)"
	t="$(field tokio "$load" msgs_per_sec)"
	awk -v t="$t" 'BEGIN { exit !(t > 0) }' || die "tokio ${load_label[$load]}: msgs_per_sec is $t"
	ratio[$load]="$(awk -v z="$z" -v t="$t" 'BEGIN { printf "%.6f", z / t }')"
	printf 'ratio zero/%s (%s): %.2f\n' "$baseline" "${load_label[$load]}" "${ratio[$load]}"
	ze="$(awk -v m="$z" -v c="${server_cpu["zero,$load"]}" 'BEGIN { print (c > 0) ? m / c : 0 }')"
	te="$(awk -v m="$t" -v c="${server_cpu["tokio,$load"]}" 'BEGIN { print (c > 0) ? m / c : 0 }')"
	awk -v l="${load_label[$load]}" -v z="$ze" -v t="$te" \
		-v b="$baseline" 'BEGIN { if (t > 0) printf "ratio zero/%s per server CPU-second (%s): %.2f\n", b, l, z / t }'
	# What the fallback costs: the epoll kernel's throughput against io_uring's.
	e="$(field zero-epoll "$load" msgs_per_sec)"
	awk -v e="$e" -v z="$z" -v l="${load_label[$load]}" 'BEGIN { printf "ratio zero-epoll/zero (%s): %.2f\n", l, e / z }'
done
awk -v a="${ratio[closed]}" -v b="${ratio[pipeline]:-${ratio[closed]}}" -v n="$baseline" \
	'BEGIN { printf "ratio zero/%s: %.2f\n", n, (a + 0 < b + 0) ? a : b }'
