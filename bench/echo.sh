#!/usr/bin/env bash
# bench/echo.sh: zero's echo server against the echo servers of Tokio and of the io_uring
# runtimes monoio and compio, and against itself on its epoll fallback.
#
# Builds the release binaries `zero` (zero-cli) and the peers (workspace members under bench/),
# then runs each server alone, pinned to CPU 0, and drives it with the same load generator
# (`zero bench echo`) pinned to CPU 1, in three loads:
#   closed loop  CONNS connections, one SIZE-byte message in flight on each (msgs/s)
#   pipeline 16  the same with 16 in flight per connection (msgs/s)
#   rate         RATE messages a second offered in all (open loop), well below saturation,
#                where what counts is what a message costs the server: CPU time per message,
#                user and kernel apart (rusage, /proc/PID/stat), and system calls per message
#                (perf stat's raw_syscalls:sys_enter on the server). Hardware counters
#                (instructions) are not available on this VM; where `perf stat -e
#                instructions:u` works they are printed too.
# It prints a table, each load's zero/best-peer ratio (msgs/s; for the rate load the best
# peer's CPU per message over zero's) and, as the very last line, the smallest msgs/s ratio:
#   ratio zero/best-peer: X.XX
# zero-epoll is reported but is not a peer, and so is zero-batched: zero with
# `--batch-wait-us BATCH_WAIT_US` (Config::batch_wait: once a completion is ready the shard waits
# up to that long for more, trading that much latency for fewer wake-ups per message).
#
# With TLS=1 (what bench/tls-echo.sh sets) both servers speak TLS with the same certificate
# (made here with openssl) and rustls' ring provider, the only peer is Tokio + tokio-rustls
# (`tokio-tls-echo`), only the closed loop runs, and the last line is
# `ratio zero/tokio-rustls: X.XX`.
#
# With QUIC=1 (what bench/quic-echo.sh sets) zero echoes over QUIC (`zero echo serve --quic`,
# quinn-proto in the shard) and the only peer is quinn's own Tokio endpoint (`quinn-echo`), both
# with the same certificate and quinn's default transport settings; the load generator opens one
# QUIC connection per CONNS with one bidirectional stream (`zero bench echo --quic`); all three
# loads run, and the last line is `ratio zero/quinn: X.XX`.
#
# Environment (all optional):
#   DURATION=5   seconds per load         CONNS=50   connections
#   SIZE=64      message size in bytes    RATE=100000  messages/s of the rate load
#   PORT=17001   the servers' port (each server in turn)   BATCH_WAIT_US=50
#   CARGO_TARGET_DIR (default ~/.cache/zero-target)   TLS=0   QUIC=0
#
# Progress and build output go to stderr; the report goes to stdout.
set -euo pipefail
export LC_ALL=C

DURATION="${DURATION:-5}"
CONNS="${CONNS:-50}"
SIZE="${SIZE:-64}"
RATE="${RATE:-100000}"
TLS="${TLS:-0}"
QUIC="${QUIC:-0}"
PORT="${PORT:-17001}"
BATCH_WAIT_US="${BATCH_WAIT_US:-50}"
PIPELINE=16
SERVER_CPU=0
LOAD_CPU=1

log() { printf 'echo.sh: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

for var in DURATION CONNS SIZE RATE PORT BATCH_WAIT_US; do
	[[ ${!var} =~ ^[1-9][0-9]*$ ]] || die "$var must be a positive integer (got '${!var}')"
done

CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/zero-target}"
[[ $CARGO_TARGET_DIR == /* ]] || CARGO_TARGET_DIR="$PWD/$CARGO_TARGET_DIR"
export CARGO_TARGET_DIR
bin="$CARGO_TARGET_DIR/release"
if [[ $QUIC == 1 ]]; then
	servers=(zero quinn)
	peers=(quinn)
	packages=(zero-cli quinn-echo)
	loads=(closed pipeline rate)
elif [[ $TLS == 1 ]]; then
	servers=(zero tokio-rustls)
	peers=(tokio-rustls)
	packages=(zero-cli tokio-tls-echo)
	loads=(closed)
else
	servers=(zero zero-epoll zero-batched tokio monoio compio)
	peers=(tokio monoio compio)
	packages=(zero-cli tokio-echo monoio-echo compio-echo)
	loads=(closed pipeline rate)
fi

workdir="$(mktemp -d "${TMPDIR:-/tmp}/zero-echo-bench.XXXXXX")"
server_pid=""

# Stops the running server (if any): SIGTERM, up to 5 s of grace, then SIGKILL.
stop_server() {
	[[ -n $server_pid ]] || return 0
	local pid=$server_pid i
	server_pid=""
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	stop_server
	rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Succeeds if something accepts TCP connections on 127.0.0.1:PORT (with QUIC=1: if a UDP
# socket is bound to it).
port_open() {
	if [[ $QUIC == 1 ]]; then
		[[ -n "$(ss -Hlun "sport = :$1")" ]]
	else
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
	fi
}

# start_server NAME CMD...: starts CMD pinned to SERVER_CPU, waits until PORT accepts.
start_server() {
	local name=$1 i
	shift
	local logf="$workdir/$name.log"
	for ((i = 0; i < 50; i++)); do
		port_open "$PORT" || break
		sleep 0.1
	done
	port_open "$PORT" && die "127.0.0.1:$PORT is already in use; pick another with PORT"
	log "starting $name on 127.0.0.1:$PORT (CPU $SERVER_CPU): $*"
	taskset -c "$SERVER_CPU" "$@" >"$logf" 2>&1 &
	server_pid=$!
	for ((i = 0; i < 50; i++)); do
		port_open "$PORT" && return 0
		if ! kill -0 "$server_pid" 2>/dev/null; then
			server_pid=""
			cat "$logf" >&2
			die "$name exited before accepting on 127.0.0.1:$PORT"
		fi
		sleep 0.1
	done
	cat "$logf" >&2
	die "$name did not accept on 127.0.0.1:$PORT within 5 s"
}

# cpu_ticks PID FIELD: user (14) or system (15) clock ticks of PID and its threads so far.
cpu_ticks() { awk -v f="$2" '{ print $f }' "/proc/$1/stat"; }

declare -A result cost

# measure_window SERVER LOAD: in the background, after the load generator's 1 s warm-up,
# records the server's user and system CPU ticks and (with perf) its system calls over
# DURATION seconds, into $workdir/SERVER-LOAD.window; its pid goes to `watcher`.
measure_window() {
	local out="$workdir/$1-$2.window" pid=$server_pid
	(
		sleep 1
		u0="$(cpu_ticks "$pid" 14)" s0="$(cpu_ticks "$pid" 15)"
		if command -v perf >/dev/null 2>&1; then
			events=raw_syscalls:sys_enter
			perf stat -e instructions:u -- true 2>&1 | grep -q 'not supported' || events+=,instructions:u,instructions:k
			perf stat -x, -e "$events" -p "$pid" -o "$workdir/$1-$2.perf" -- sleep "$DURATION" 2>/dev/null || true
		else
			sleep "$DURATION"
		fi
		printf '%s %s %s %s\n' "$u0" "$s0" "$(cpu_ticks "$pid" 14)" "$(cpu_ticks "$pid" 15)" >"$out"
	) &
	watcher=$!
}

# run_load SERVER LOAD [EXTRA ARGS...]: runs the load generator pinned to LOAD_CPU and keeps
# its `result ...` line; for the rate load, also what each message cost the server.
run_load() {
	local server=$1 load=$2
	shift 2
	local out="$workdir/$server-$load.out" line
	watcher=""
	log "$server: $load load: $CONNS conns, $SIZE B, $DURATION s${*:+, $*}"
	[[ $load == rate ]] && measure_window "$server" "$load"
	if ! taskset -c "$LOAD_CPU" "$bin/zero" bench echo --target "127.0.0.1:$PORT" \
		--conns "$CONNS" --size "$SIZE" --duration "$DURATION" "$@" >"$out"; then
		cat "$out" >&2
		die "load generator failed against $server ($load)"
	fi
	line="$(grep '^result ' "$out" | tail -n 1)" || die "no 'result ...' line ($server, $load)"
	result["$server,$load"]=$line
	if [[ -n $watcher ]]; then
		wait "$watcher" || true
		local msgs hz syscalls
		msgs="$(awk -v r="$(field "$server" "$load" msgs_per_sec)" -v d="$DURATION" 'BEGIN { print r * d }')"
		hz="$(getconf CLK_TCK)"
		read -r u0 s0 u1 s1 <"$workdir/$server-$load.window"
		syscalls="$(awk -F, '$3 == "raw_syscalls:sys_enter" { print $1 }' "$workdir/$server-$load.perf" 2>/dev/null)"
		instr="$(awk -F, '$3 ~ /^instructions/ { s += $1 } END { if (NR) print s }' "$workdir/$server-$load.perf" 2>/dev/null)"
		cost["$server,user_us"]="$(awk -v a="$u0" -v b="$u1" -v hz="$hz" -v m="$msgs" 'BEGIN { printf "%.3f", (b - a) / hz * 1e6 / m }')"
		cost["$server,sys_us"]="$(awk -v a="$s0" -v b="$s1" -v hz="$hz" -v m="$msgs" 'BEGIN { printf "%.3f", (b - a) / hz * 1e6 / m }')"
		cost["$server,syscalls"]="$(awk -v c="${syscalls:-0}" -v m="$msgs" 'BEGIN { printf "%.2f", c / m }')"
		cost["$server,instr"]="$(awk -v c="${instr:-0}" -v m="$msgs" 'BEGIN { printf "%.0f", c / m }')"
	fi
	field "$server" "$load" msgs_per_sec >/dev/null
	field "$server" "$load" errors >/dev/null
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
pkgs=()
for p in "${packages[@]}"; do pkgs+=(-p "$p"); done
(cd "$repo_root" && cargo build --release "${pkgs[@]}")

tls_server=() tls_client=()
if [[ $TLS == 1 || $QUIC == 1 ]]; then
	command -v openssl >/dev/null 2>&1 || die "openssl not found (it makes the certificate)"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
		-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -addext basicConstraints=critical,CA:FALSE \
		-keyout "$workdir/key.pem" -out "$workdir/cert.pem" 2>/dev/null || die "openssl could not make a certificate"
	tls_server=(--cert "$workdir/cert.pem" --key "$workdir/key.pem")
	tls_client=(--tls --tls-ca "$workdir/cert.pem" --tls-name localhost)
	[[ $QUIC == 1 ]] && tls_client[0]=--quic
fi

# --- runs ---------------------------------------------------------------------

declare -A load_label=([closed]="closed loop" [pipeline]="pipeline $PIPELINE" [rate]="rate $RATE/s")
for server in "${servers[@]}"; do
	listen="127.0.0.1:$PORT"
	case $server in
	zero) cmd=(env ZERO_BACKEND=io_uring "$bin/zero" echo serve --listen "$listen" --shards 1) ;;
	zero-epoll) cmd=(env ZERO_BACKEND=epoll "$bin/zero" echo serve --listen "$listen" --shards 1) ;;
	zero-batched) cmd=(env ZERO_BACKEND=io_uring "$bin/zero" echo serve --listen "$listen" --shards 1 --batch-wait-us "$BATCH_WAIT_US") ;;
	tokio-rustls) cmd=("$bin/tokio-tls-echo" --listen "$listen" "${tls_server[@]}") ;;
	quinn) cmd=("$bin/quinn-echo" --listen "$listen" "${tls_server[@]}") ;;
	*) cmd=("$bin/$server-echo" --listen "$listen") ;;
	esac
	[[ $server == zero && $TLS == 1 ]] && cmd+=(--tls --tls-cert "$workdir/cert.pem" --tls-key "$workdir/key.pem")
	[[ $server == zero && $QUIC == 1 ]] && cmd+=(--quic --tls-cert "$workdir/cert.pem" --tls-key "$workdir/key.pem")
	start_server "$server" "${cmd[@]}"
	for load in "${loads[@]}"; do
		case $load in
		closed) run_load "$server" closed ${tls_client[@]+"${tls_client[@]}"} ;;
		pipeline) run_load "$server" pipeline --pipeline "$PIPELINE" ${tls_client[@]+"${tls_client[@]}"} ;;
		rate) run_load "$server" rate --rate "$RATE" ${tls_client[@]+"${tls_client[@]}"} ;;
		esac
	done
	stop_server
done

# --- report -------------------------------------------------------------------

printf '# echo%s: server on CPU %s, load generator on CPU %s (taskset); kernel %s\n' \
	"$( ((TLS)) && echo ' over TLS (rustls, ring)')$( ((QUIC)) && echo ' over QUIC (quinn-proto, rustls, ring)')" "$SERVER_CPU" "$LOAD_CPU" "$(uname -r)"
printf '# load: zero bench echo, %s conns, %s B messages, %s s per load\n' "$CONNS" "$SIZE" "$DURATION"
printf '%-12s %-14s %12s %10s %10s %10s %8s\n' server load msgs/s p50_us p99_us p999_us errors
for server in "${servers[@]}"; do
	for load in "${loads[@]}"; do
		printf '%-12s %-14s %12.0f %10.1f %10.1f %10.1f %8s\n' "$server" "${load_label[$load]}" \
			"$(field "$server" "$load" msgs_per_sec)" "$(field "$server" "$load" p50_us)" \
			"$(field "$server" "$load" p99_us)" "$(field "$server" "$load" p999_us)" \
			"$(field "$server" "$load" errors)"
	done
done
if [[ ${loads[*]} == *rate* ]]; then
	printf '\n# what a message cost each server at %s msgs/s offered (over %s s)\n' "$RATE" "$DURATION"
	printf '%-12s %12s %12s %12s %12s %16s\n' server user_us/msg sys_us/msg cpu_us/msg user_share syscalls/msg
	for server in "${servers[@]}"; do
		u="${cost["$server,user_us"]}" k="${cost["$server,sys_us"]}"
		awk -v s="$server" -v u="$u" -v k="$k" -v c="${cost["$server,syscalls"]}" 'BEGIN {
			t = u + k; printf "%-12s %12.3f %12.3f %12.3f %11.1f%% %16.2f\n", s, u, k, t, (t > 0) ? 100 * u / t : 0, c }'
		[[ ${cost["$server,instr"]} == 0 ]] || printf '%-12s %s instructions/msg\n' "$server" "${cost["$server,instr"]}"
	done
fi
echo
best_ratio=""
for load in "${loads[@]}"; do
	z="$(field zero "$load" msgs_per_sec)"
	best="" best_peer=""
	for peer in "${peers[@]}"; do
		v="$(field "$peer" "$load" msgs_per_sec)"
		if [[ -z $best ]] || awk -v a="$v" -v b="$best" 'BEGIN { exit !(a > b) }'; then best=$v best_peer=$peer; fi
	done
	if [[ $load == rate ]]; then
		# Below saturation every server moves the offered rate: compare CPU per message.
		zc="$(awk -v u="${cost[zero,user_us]}" -v k="${cost[zero,sys_us]}" 'BEGIN { print u + k }')"
		bc="" bp=""
		for peer in "${peers[@]}"; do
			c="$(awk -v u="${cost["$peer,user_us"]}" -v k="${cost["$peer,sys_us"]}" 'BEGIN { print u + k }')"
			if [[ -z $bc ]] || awk -v a="$c" -v b="$bc" 'BEGIN { exit !(a < b) }'; then bc=$c bp=$peer; fi
		done
		awk -v z="$zc" -v b="$bc" -v p="$bp" 'BEGIN { if (b > 0) printf "cpu per message zero/best-peer (%s, rate): %.2f\n", p, z / b }'
		if [[ $TLS != 1 && $QUIC != 1 ]]; then
			zb="$(awk -v u="${cost[zero-batched,user_us]}" -v k="${cost[zero-batched,sys_us]}" 'BEGIN { print u + k }')"
			awk -v z="$zb" -v b="$bc" -v p="$bp" -v w="$BATCH_WAIT_US" \
				'BEGIN { if (b > 0) printf "cpu per message zero-batched (%s us)/best-peer (%s, rate): %.2f\n", w, p, z / b }'
		fi
		continue
	fi
	r="$(awk -v z="$z" -v b="$best" 'BEGIN { printf "%.6f", z / b }')"
	printf 'ratio zero/%s (%s, the best peer): %.2f\n' "$best_peer" "${load_label[$load]}" "$r"
	if [[ $TLS != 1 && $QUIC != 1 ]]; then
		awk -v e="$(field zero-epoll "$load" msgs_per_sec)" -v z="$z" -v l="${load_label[$load]}" \
			'BEGIN { printf "ratio zero-epoll/zero (%s): %.2f\n", l, e / z }'
	fi
	if [[ -z $best_ratio ]] || awk -v a="$r" -v b="$best_ratio" 'BEGIN { exit !(a < b) }'; then best_ratio=$r; fi
done
if [[ $QUIC == 1 ]]; then
	printf 'ratio zero/quinn: %.2f\n' "$best_ratio"
elif [[ $TLS == 1 ]]; then
	printf 'ratio zero/tokio-rustls: %.2f\n' "$best_ratio"
else
	printf 'ratio zero/best-peer: %.2f\n' "$best_ratio"
fi
