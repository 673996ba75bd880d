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
# Prints ns per message for each and the ratios; the last line is
#   ratio quickfix/zero parse NewOrderSingle: X
# (The session round trip NewOrderSingle -> ExecutionReport, zero against QuickFIX, comes with
# zero-fix's acceptor; it is not measured yet.)
#
# Environment: ITERATIONS=1000000, CARGO_TARGET_DIR.
set -euo pipefail
export LC_ALL=C
ITERATIONS="${ITERATIONS:-1000000}"
CPU=1
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
log "building the Rust codecs (release) and the QuickFIX program"
CARGO_TARGET_DIR="$rust_dir" cargo build --release -q --manifest-path bench/fix-codecs/Cargo.toml
g++ -std=c++11 -O2 -o "$qf_bin" bench/fix-quickfix/main.cpp -lquickfix -lpthread

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
echo "ratio quickfix/zero parse NewOrderSingle: $(ratio "${ns[quickfix,NewOrderSingle,parse]}" "${ns[zero,NewOrderSingle,parse]}")"
