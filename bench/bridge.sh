#!/usr/bin/env bash
# bench/bridge.sh: what the Tokio bridge (zero_core::runtime::ZeroRuntime) costs.
#
# Runs `zero echo serve` in each of its modes, one at a time, with one shard and every server
# thread on CPU 0 (taskset), and drives each with `zero bench echo` on CPU 1:
#   inline    a zero-core handler on the shard (ZeroRuntime::run_sync's mode)
#   async     a Tokio task per connection on a current-thread runtime on the main thread
#             (ZeroRuntime::run_async): each message crosses to the task and back
#   per-core  a Tokio task per connection on the shard's own thread (run_per_core)
# in two loads (closed loop: one SIZE-byte message in flight per connection; pipeline 16).
# Prints a table and each mode's throughput against inline:
#   ratio async/inline (closed loop): X.XX
#
# Environment (all optional): DURATION=5 CONNS=50 SIZE=64 PORT=17011
#   CARGO_TARGET_DIR (default ~/.cache/zero-target)
set -euo pipefail
export LC_ALL=C
DURATION="${DURATION:-5}" CONNS="${CONNS:-50}" SIZE="${SIZE:-64}" PORT="${PORT:-17011}"
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/zero-target}"
export CARGO_TARGET_DIR
zero="$CARGO_TARGET_DIR/release/zero"
log() { printf 'bridge.sh: %s\n' "$*" >&2; }
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log "building (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
(cd "$repo" && cargo build --release -p zero-cli)

server=""
cleanup() { [[ -z $server ]] || { kill -TERM "$server" 2>/dev/null; wait "$server" 2>/dev/null || true; }; }
trap cleanup EXIT

declare -A rate
modes=(inline async per-core)
loads=(closed pipeline)
for mode in "${modes[@]}"; do
	log "$mode: starting on CPU 0"
	taskset -c 0 "$zero" echo serve --mode "$mode" --shards 1 --listen "127.0.0.1:$PORT" 2>/dev/null &
	server=$!
	for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
	for load in "${loads[@]}"; do
		extra=()
		[[ $load == pipeline ]] && extra=(--pipeline 16)
		line="$(taskset -c 1 "$zero" bench echo --target "127.0.0.1:$PORT" --conns "$CONNS" --size "$SIZE" \
			--duration "$DURATION" ${extra[@]+"${extra[@]}"} | grep '^result ')"
		rate[$mode,$load]="$(sed -E 's/.*msgs_per_sec=([0-9.]+).*/\1/' <<<"$line")"
		p99="$(sed -E 's/.*p99_us=([0-9.]+).*/\1/' <<<"$line")"
		printf '%-9s %-9s %12.0f msgs/s  p99 %8.1f us\n' "$mode" "$load" "${rate[$mode,$load]}" "$p99"
	done
	kill -TERM "$server"
	wait "$server" 2>/dev/null || true
	server=""
done
for mode in async per-core; do
	for load in "${loads[@]}"; do
		awk -v m="$mode" -v l="$load" -v a="${rate[$mode,$load]}" -v b="${rate[inline,$load]}" \
			'BEGIN { printf "ratio %s/inline (%s): %.2f\n", m, l, a / b }'
	done
done
