#!/usr/bin/env bash
# bench/fix.sh: parse and serialize a NewOrderSingle and an ExecutionReport with zero-fix,
# QuickFIX C++ (Debian's libquickfix-dev) and hotfix-message (the maintained Rust codec that
# fefix's became; fefix 0.7 itself pulls sqlx 0.5 and OpenSSL into any build), the same
# messages and the same loop, in one run. Each runs alone, pinned to CPU 1, in its own process.
#
#   parse      bytes to a message whose fields can be read (BodyLength and CheckSum checked,
#              no data dictionary validation), then ClOrdID and one more field read
#   serialize  a message of the same fields built from their values and encoded (BodyLength
#              and CheckSum filled in)
#
# Then session round trips, one order at a time (the next sent from the callback that
# receives the previous one's ExecutionReport), acceptor on CPU 0 and initiator on CPU 1:
#   zero      `zero fix acceptor --app exec` and `zero bench fix`, write-ahead logs on both
#             sides with fsync never; once sleeping when idle (zero-core's default), once with
#             both shards spinning up to 1 ms for input before they sleep (`busy_poll_us`,
#             zero's low-latency setting: it costs each side its core while it waits)
#   quickfix  conformance/fix/quickfix_peer.cpp as acceptor and as initiator (`bench`), file
#             stores on both sides (QuickFIX's FileStore does not fsync by default)
# neither side validating against a data dictionary (QuickFIX's UseDataDictionary=N).
#
# Prints ns per message for each codec and the ratios, then round-trip p50/p99/p99.9, and the
# ratios for both zero settings; the last line (zero's low-latency setting) is
#   ratio quickfix/zero roundtrip p50: X
#
# Environment: ITERATIONS=1000000, ORDERS=100000 (round trips measured, after WARMUP=10000),
# CARGO_TARGET_DIR.
set -euo pipefail
export LC_ALL=C
ITERATIONS="${ITERATIONS:-1000000}"
ORDERS="${ORDERS:-100000}"
WARMUP="${WARMUP:-10000}"
CPU=1
SERVER_CPU=0
log() { printf 'fix.sh: %s\n' "$*" >&2; }

cd "$(dirname "$0")/.."
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/zero-target}"
[[ $CARGO_TARGET_DIR == /* ]] || CARGO_TARGET_DIR="$PWD/$CARGO_TARGET_DIR"
rust_dir="$CARGO_TARGET_DIR/fix-codecs"
qf_bin="$CARGO_TARGET_DIR/fix-quickfix-bench"

[[ -f /usr/include/quickfix/Application.h ]] && command -v g++ >/dev/null || {
	log "installing libquickfix-dev and g++"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libquickfix-dev g++ >/dev/null
}
log "building zero (release), the Rust codecs and the QuickFIX programs"
cargo build --release -q -p zero-cli
zero_bin="$CARGO_TARGET_DIR/release/zero"
CARGO_TARGET_DIR="$rust_dir" cargo build --release -q --manifest-path bench/fix-codecs/Cargo.toml
g++ -std=c++11 -O2 -Wno-deprecated -o "$qf_bin" bench/fix-quickfix/main.cpp -lquickfix -lpthread
peer_bin="$CARGO_TARGET_DIR/quickfix-peer"
g++ -std=c++11 -O2 -Wno-deprecated -o "$peer_bin" conformance/fix/quickfix_peer.cpp -lquickfix -lpthread

declare -A ns
run() {
	local line
	while read -r line; do
		[[ $line == RESULT* ]] || continue
		local impl message op value
		impl=$(sed 's/.*impl=\([^ ]*\).*/\1/' <<<"$line")
		message=$(sed 's/.*message=\([^ ]*\).*/\1/' <<<"$line")
		op=$(sed 's/.*op=\([^ ]*\).*/\1/' <<<"$line")
		value=$(sed 's/.*ns=\([^ ]*\).*/\1/' <<<"$line")
		ns[$impl,$message,$op]=$value
	done < <("$@")
}
log "zero-fix"
run taskset -c "$CPU" "$rust_dir/release/fix-codecs-bench" zero "$ITERATIONS"
log "QuickFIX"
run taskset -c "$CPU" "$qf_bin" "$((ITERATIONS / 4))"
log "hotfix-message"
run taskset -c "$CPU" "$rust_dir/release/fix-codecs-bench" hotfix "$((ITERATIONS / 4))"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
printf '%-16s %-10s %10s %10s %10s %16s %14s\n' message op zero-ns quickfix-ns hotfix-ns quickfix/zero hotfix/zero
for message in NewOrderSingle ExecutionReport; do
	for op in parse serialize; do
		z=${ns[zero,$message,$op]} q=${ns[quickfix,$message,$op]} h=${ns[hotfix,$message,$op]}
		printf '%-16s %-10s %10s %10s %10s %16s %14s\n' "$message" "$op" "$z" "$q" "$h" "$(ratio "$q" "$z")" "$(ratio "$h" "$z")"
	done
done

work=$(mktemp -d)
server_pid=""
stop_server() {
	[[ -n $server_pid ]] || return 0
	kill "$server_pid" 2>/dev/null || true
	wait "$server_pid" 2>/dev/null || true
	server_pid=""
}
trap 'stop_server; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.05; done; log "nothing listens on $1: $(cat "$work"/*.err 2>/dev/null)"; exit 1; }
declare -A rtt
rtt_of() {
	local line
	line=$(grep '^RESULT' <<<"$2")
	for q in p50 p99 p999; do rtt[$1,$q]=$(sed "s/.* ${q}_us=\([^ ]*\).*/\1/" <<<"$line"); done
}

zero_rtt() { # name, busy-poll microseconds (empty: none)
	log "round trips: $1"
	port=$(free_port)
	local spin="" spin_arg=()
	[[ -z $2 ]] || { spin="busy_poll_us = $2"; spin_arg=(--busy-poll-us "$2"); }
	printf 'listen = "127.0.0.1:%s"\nstore = "%s/%s"\nfsync = "never"\n%s\n\n[[session]]\nsender_comp_id = "BROKER"\ntarget_comp_id = "CLIENT"\nvalidate = false\n' \
		"$port" "$work" "$1" "$spin" >"$work/$1.toml"
	taskset -c "$SERVER_CPU" "$zero_bin" fix acceptor --config "$work/$1.toml" --app exec 2>/dev/null &
	server_pid=$!
	wait_port "$port"
	rtt_of "$1" "$(taskset -c "$CPU" "$zero_bin" bench fix --target "127.0.0.1:$port" --store "$work/$1-initiator" \
		--orders "$ORDERS" --warmup "$WARMUP" "${spin_arg[@]}")"
	stop_server
}
zero_rtt zero ""
zero_rtt zero-spin 1000

log "round trips: QuickFIX"
port=$(free_port)
common="StartTime=00:00:00\nEndTime=00:00:00\nFileLogPath=$work/qf-log\nUseDataDictionary=N\nResetOnLogon=Y\nHeartBtInt=30\nBeginString=FIX.4.4"
printf "[DEFAULT]\nConnectionType=acceptor\nSocketAcceptPort=%s\nSocketReuseAddress=Y\nFileStorePath=%s/qf-a\n$common\n\n[SESSION]\nSenderCompID=BROKER\nTargetCompID=CLIENT\n" \
	"$port" "$work" >"$work/qf-acceptor.cfg"
printf "[DEFAULT]\nConnectionType=initiator\nSocketConnectHost=127.0.0.1\nSocketConnectPort=%s\nReconnectInterval=1\nFileStorePath=%s/qf-i\n$common\n\n[SESSION]\nSenderCompID=CLIENT\nTargetCompID=BROKER\n" \
	"$port" "$work" >"$work/qf-initiator.cfg"
taskset -c "$SERVER_CPU" "$peer_bin" acceptor "$work/qf-acceptor.cfg" >/dev/null 2>"$work/qf-acceptor.err" &
server_pid=$!
wait_port "$port"
rtt_of quickfix "$(taskset -c "$CPU" "$peer_bin" bench "$work/qf-initiator.cfg" "$ORDERS" "$WARMUP")"
stop_server

echo
printf '%-10s %10s %10s %10s\n' roundtrip p50-us p99-us p99.9-us
for impl in zero zero-spin quickfix; do
	printf '%-10s %10s %10s %10s\n' "$impl" "${rtt[$impl,p50]}" "${rtt[$impl,p99]}" "${rtt[$impl,p999]}"
done
echo "ratio quickfix/zero parse NewOrderSingle: $(ratio "${ns[quickfix,NewOrderSingle,parse]}" "${ns[zero,NewOrderSingle,parse]}")"
echo "ratio quickfix/zero-sleeping roundtrip p50: $(ratio "${rtt[quickfix,p50]}" "${rtt[zero,p50]}") p99: $(ratio "${rtt[quickfix,p99]}" "${rtt[zero,p99]}")"
echo "ratio quickfix/zero roundtrip p99: $(ratio "${rtt[quickfix,p99]}" "${rtt[zero-spin,p99]}")"
echo "ratio quickfix/zero roundtrip p50: $(ratio "${rtt[quickfix,p50]}" "${rtt[zero-spin,p50]}")"
