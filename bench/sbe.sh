#!/usr/bin/env bash
# bench/sbe.sh: an MDP 3.0 incremental stream (1,000,000 packets from zero-sbe's simulated
# exchange: 1-3 messages a packet, 70% book updates of 1-4 entries, 20% trade summaries, 10%
# volume and session statistics; 20 instruments, depth 10), every packet on feeds A and B,
# decoded, arbitrated and applied to MBP books (trades and statistics as events) by
# zero-sbe's channel, next to a naive hand-written decoder doing the same work; alone on
# CPU 1.
#
# Prints ns per packet (A and B copies included) and per message for both; the last line is
#   ns per packet: X
#
# Environment: PACKETS=1000000, INSTRUMENTS=20, CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/zero-target}"
[[ $CARGO_TARGET_DIR == /* ]] || CARGO_TARGET_DIR="$PWD/$CARGO_TARGET_DIR"
echo "sbe.sh: building zero (release)" >&2
cargo build --release -q -p zero-cli
taskset -c 1 "$CARGO_TARGET_DIR/release/zero" bench sbe --packets "${PACKETS:-1000000}" --instruments "${INSTRUMENTS:-20}"
