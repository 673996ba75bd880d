#!/usr/bin/env bash
# bench/mqtt.sh: zero's MQTT broker vs. mosquitto (Debian) and rumqttd, in one run.
#
# Each broker runs alone, pinned to CPU 0; the load generator (`zero bench mqtt`,
# one zero-core shard speaking MQTT 3.1.1, which all three brokers support) runs
# pinned to CPU 1. Workloads, each at QoS 0 and at QoS 1 (in-flight window 100):
#   1:1            1 publisher  -> 1 subscriber
#   fan-out-10/100 1 publisher  -> 10 / 100 subscribers
#   fan-in-10/100  10 / 100 publishers -> 1 subscriber
#   ws-1:1         1:1 over WebSocket (QoS 0; zero and mosquitto, whose Debian build
#                  serves websockets through libwebsockets; rumqttd is built without them).
#                  WebSocket workloads run on an instance started with a WebSocket listener
#                  (mosquitto's libwebsockets listener slows its TCP listeners down).
# with 100-byte payloads. For each: delivered messages/s and delivered messages
# per broker CPU-second (the broker's CPU time over the measured interval, all
# threads, from /proc/PID/task/*/schedstat) at saturation, with at most BACKLOG
# deliveries outstanding end to end; then p50/p99 latency at a fixed rate of
# LAT_RATE deliveries/s (sub-saturation for all three); then the broker's
# resident memory per idle connection with IDLE connections open. Last, zero alone: the
# bytes its subscribers receive per delivery of 100-byte topics (fan-out 10, QoS 0) when
# they allow MQTT 5 topic aliases and when they do not.
#
# Broker settings: mosquitto with `max_queued_messages 0` (its default of 1000
# silently drops QoS 1 in fan-in), `set_tcp_nodelay true` (without it Nagle adds
# tens of ms to its QoS 0 latency) and persistence off; rumqttd with its sample
# router settings, `next_connection_delay_ms 0` and `max_inflight_count 100`;
# zero with its defaults. The last line is
#   ratio zero/best-peer: X
# the smallest over the workloads of zero's deliveries per broker CPU-second
# divided by the better of mosquitto's and rumqttd's.
#
# rumqttd is installed with `cargo install rumqttd` into ~/.cache/zero-tools if
# missing (not --locked: its lock file pins metrics 0.22.1, which no longer
# compiles with current Rust).
#
# Environment (all optional): DURATION=5 (s per saturation run), LAT_DURATION=3,
# LAT_RATE=20000, BACKLOG=10000, IDLE=10000, WORKLOADS="1:1 fan-out-10 ..." (empty: idle only),
# BROKERS="zero mosquitto rumqttd", PORT=18830, CARGO_TARGET_DIR.
# Progress goes to stderr; the report to stdout.
set -euo pipefail
export LC_ALL=C

DURATION="${DURATION:-5}"
LAT_DURATION="${LAT_DURATION:-3}"
LAT_RATE="${LAT_RATE:-20000}"
BACKLOG="${BACKLOG:-10000}"
IDLE="${IDLE:-10000}"
WORKLOADS="${WORKLOADS-1:1 fan-out-10 fan-out-100 fan-in-10 fan-in-100 ws-1:1}"
BROKERS="${BROKERS:-zero mosquitto rumqttd}"
PORT="${PORT:-18830}"
WS_PORT=$((PORT + 1))
BROKER_CPU=0
LOAD_CPU=1

log() { printf 'mqtt.sh: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/zero-target}"
[[ $CARGO_TARGET_DIR == /* ]] || CARGO_TARGET_DIR="$PWD/$CARGO_TARGET_DIR"
export CARGO_TARGET_DIR
zero_bin="$CARGO_TARGET_DIR/release/zero"
tools="$HOME/.cache/zero-tools"
workdir="$(mktemp -d "${TMPDIR:-/tmp}/zero-mqtt-bench.XXXXXX")"
broker_pid=""

stop_broker() {
	[[ -n $broker_pid ]] || return 0
	kill -TERM "$broker_pid" 2>/dev/null || true
	for _ in $(seq 50); do
		kill -0 "$broker_pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$broker_pid" 2>/dev/null || true
	wait "$broker_pid" 2>/dev/null || true
	broker_pid=""
}
trap 'stop_broker; rm -rf "$workdir"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start_broker NAME CMD...: starts CMD pinned to BROKER_CPU; waits for PORT.
start_broker() {
	local name=$1
	shift
	# A broker stopped just before may still hold the port while the kernel tears down its
	# ring (io_uring closes a dead process's sockets asynchronously).
	for _ in $(seq 50); do
		port_open "$PORT" || break
		sleep 0.1
	done
	port_open "$PORT" && die "127.0.0.1:$PORT is already in use; set PORT"
	log "starting $name on 127.0.0.1:$PORT (CPU $BROKER_CPU): $*"
	taskset -c "$BROKER_CPU" "$@" >"$workdir/$name.log" 2>&1 &
	broker_pid=$!
	for _ in $(seq 100); do
		port_open "$PORT" && return 0
		kill -0 "$broker_pid" 2>/dev/null || break
		sleep 0.1
	done
	cat "$workdir/$name.log" >&2
	die "$name did not accept on 127.0.0.1:$PORT"
}

declare -A result

# load KEY ARGS...: runs the load generator on LOAD_CPU and keeps its result line.
load() {
	local key=$1
	shift
	local out="$workdir/load.out"
	if ! taskset -c "$LOAD_CPU" "$zero_bin" bench mqtt --target "127.0.0.1:${LOAD_PORT:-$PORT}" \
		--broker-pid "$broker_pid" "$@" >"$out" 2>"$workdir/load.err"; then
		cat "$out" "$workdir/load.err" >&2
		die "load generator failed: $key"
	fi
	result[$key]="$(grep '^result ' "$out" | tail -n 1)"
	log "  $key: ${result[$key]#result }"
}

# field KEY NAME: the value of NAME=... in KEY's result line.
field() {
	local v
	v="$(tr ' ' '\n' <<<"${result[$1]:-}" | sed -n "s/^$2=//p")"
	[[ -n $v ]] || die "no $2 in the result of $1: ${result[$1]:-none}"
	printf '%s\n' "$v"
}

# qos_of WORKLOAD: the QoS levels it runs at.
qos_of() { [[ $1 == ws-* ]] && echo 0 || echo "0 1"; }

# shape WORKLOAD: "PUBS SUBS".
shape() {
	case $1 in
	1:1 | ws-1:1) echo "1 1" ;;
	fan-out-*) echo "1 ${1#fan-out-}" ;;
	fan-in-*) echo "${1#fan-in-} 1" ;;
	*) die "unknown workload $1" ;;
	esac
}

# --- checks and build ---------------------------------------------------------

command -v taskset >/dev/null || die "taskset not found (util-linux)"
taskset -c "$LOAD_CPU" true 2>/dev/null || die "need two CPUs (broker on $BROKER_CPU, load on $LOAD_CPU)"
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
((IDLE + 100 <= $(ulimit -n))) || die "IDLE=$IDLE needs more open files than ulimit -n $(ulimit -n)"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log "building zero (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
(cd "$repo_root" && cargo build --release -p zero-cli)
if [[ $BROKERS == *mosquitto* ]] && ! command -v mosquitto >/dev/null; then
	apt-get install -y mosquitto >&2 || die "mosquitto missing and apt-get failed"
fi
rumqttd_bin="$(command -v rumqttd || echo "$tools/bin/rumqttd")"
if [[ $BROKERS == *rumqttd* && ! -x $rumqttd_bin ]]; then
	log "installing rumqttd into $tools (a few minutes, once)"
	CARGO_TARGET_DIR="$HOME/.cache/rumqttd-target" cargo install rumqttd --root "$tools" >&2 ||
		die "cargo install rumqttd failed"
fi

cat >"$workdir/mosquitto.conf" <<EOF
listener $PORT 127.0.0.1
allow_anonymous true
max_queued_messages 0
set_tcp_nodelay true
persistence false
log_dest stderr
EOF
# libwebsockets binds no address (mosquitto 2.0.11 would refuse the listener), only an
# interface; it needs a plain listener beside it to start.
printf 'listener %s\nprotocol websockets\nbind_interface lo\n' "$WS_PORT" |
	cat "$workdir/mosquitto.conf" - >"$workdir/mosquitto-ws.conf"
cat >"$workdir/rumqttd.toml" <<EOF
id = 0
[router]
id = 0
max_connections = $((IDLE + 1000))
max_outgoing_packet_count = 200
max_segment_size = 104857600
max_segment_count = 10
[v4.1]
name = "v4-1"
listen = "127.0.0.1:$PORT"
next_connection_delay_ms = 0
    [v4.1.connections]
    connection_timeout_ms = 60000
    max_payload_size = 20480
    max_inflight_count = 100
    dynamic_filters = true
EOF

# --- runs ---------------------------------------------------------------------

# start BROKER: starts a fresh instance of BROKER.
start() {
	case $1 in
	zero) start_broker zero "$zero_bin" mqtt broker --shards 1 --listen "127.0.0.1:$PORT" --data "$workdir/zero-data" ;;
	zero-ws) start_broker zero "$zero_bin" mqtt broker --shards 1 --listen "127.0.0.1:$PORT" \
		--ws-listen "127.0.0.1:$WS_PORT" --data "$workdir/zero-data" ;;
	mosquitto) start_broker mosquitto mosquitto -c "$workdir/mosquitto.conf" ;;
	mosquitto-ws) start_broker mosquitto mosquitto -c "$workdir/mosquitto-ws.conf" ;;
	rumqttd) start_broker rumqttd "$rumqttd_bin" -c "$workdir/rumqttd.toml" ;;
	*) die "unknown broker $1" ;;
	esac
}

for broker in $BROKERS; do
	start "$broker"
	started=tcp
	for w in $WORKLOADS; do
		[[ $w == ws-* && $broker == rumqttd ]] && continue
		read -r pubs subs <<<"$(shape "$w")"
		ws=()
		if [[ $w == ws-* ]]; then
			ws=(--ws)
			export LOAD_PORT=$WS_PORT
			[[ $started == ws ]] || { stop_broker && start "$broker-ws" && started=ws; }
		elif [[ $started == ws ]]; then
			stop_broker && start "$broker" && started=tcp
		fi
		for qos in $(qos_of "$w"); do
			load "$broker,$w,$qos,max" --pubs "$pubs" --subs "$subs" --qos "$qos" \
				--backlog "$BACKLOG" --duration "$DURATION" "${ws[@]}"
			load "$broker,$w,$qos,lat" --pubs "$pubs" --subs "$subs" --qos "$qos" \
				--backlog "$BACKLOG" --duration "$LAT_DURATION" --rate $((LAT_RATE / subs)) "${ws[@]}"
		done
		unset LOAD_PORT
	done
	if [[ $broker == zero ]]; then
		for aliases in 0 16; do
			load "zero,aliases,$aliases" --pubs 1 --subs 10 --qos 0 --topic-len 100 --aliases "$aliases" \
				--backlog "$BACKLOG" --duration "$DURATION"
		done
	fi
	# Memory on a fresh instance: allocators rarely return what the saturation runs used.
	stop_broker
	start "$broker"
	load "$broker,idle" --idle "$IDLE" --duration 2
	stop_broker
done

# --- report -------------------------------------------------------------------

printf '# mqtt: broker on CPU %s, zero bench mqtt on CPU %s (taskset); %s; kernel %s\n' \
	"$BROKER_CPU" "$LOAD_CPU" "$(nproc) CPUs" "$(uname -r)"
printf '# MQTT 3.1.1, 100-byte payloads, %s s per saturation run (backlog %s deliveries),\n' "$DURATION" "$BACKLOG"
printf '# latency at %s deliveries/s for %s s; QoS 1 in-flight window 100\n' "$LAT_RATE" "$LAT_DURATION"
printf '%-12s %-3s %-10s %12s %14s %9s %9s %7s\n' workload qos broker 'deliv/s' 'deliv/cpu-s' 'p50 us' 'p99 us' lost
worst=""
for w in $WORKLOADS; do
	for qos in $(qos_of "$w"); do
		best_peer=0
		for broker in $BROKERS; do
			[[ $w == ws-* && $broker == rumqttd ]] && continue
			k="$broker,$w,$qos"
			per=$(field "$k,max" per_cpu_sec)
			lost=$(($(field "$k,max" lost) + $(field "$k,max" undelivered) + $(field "$k,lat" lost) + $(field "$k,lat" undelivered)))
			printf '%-12s %-3s %-10s %12.0f %14.0f %9s %9s %7s\n' "$w" "$qos" "$broker" \
				"$(field "$k,max" delivered_per_sec)" "$per" "$(field "$k,lat" p50_us)" "$(field "$k,lat" p99_us)" "$lost"
			[[ $broker == zero ]] && zero_per=$per
			[[ $broker != zero ]] && best_peer=$(awk -v a="$best_peer" -v b="$per" 'BEGIN { print (b > a) ? b : a }')
		done
		if [[ $BROKERS == *zero* && $best_peer != 0 ]]; then
			r=$(awk -v z="$zero_per" -v p="$best_peer" 'BEGIN { printf "%.2f", z / p }')
			printf '%-12s %-3s ratio zero/best-peer per CPU-second: %s\n' "$w" "$qos" "$r"
			worst=$(awk -v a="${worst:-$r}" -v b="$r" 'BEGIN { print (b < a) ? b : a }')
		fi
	done
done
printf '%-10s %12s\n' broker 'idle B/conn'
for broker in $BROKERS; do
	printf '%-10s %12s\n' "$broker" "$(field "$broker,idle" bytes_per_conn)"
done
if [[ $BROKERS == *zero* ]]; then
	plain=$(field "zero,aliases,0" bytes_per_delivery)
	aliased=$(field "zero,aliases,16" bytes_per_delivery)
	printf 'topic aliases (zero, fan-out 10, QoS 0, 100-byte topics): %s bytes per delivery without, %s with 16 aliases (%s%% saved); deliv/cpu-s %.0f without, %.0f with\n' \
		"$plain" "$aliased" "$(awk -v a="$plain" -v b="$aliased" 'BEGIN { printf "%.0f", 100 * (a - b) / a }')" \
		"$(field "zero,aliases,0" per_cpu_sec)" "$(field "zero,aliases,16" per_cpu_sec)"
fi
[[ -n $worst ]] && printf 'ratio zero/best-peer: %s\n' "$worst"
