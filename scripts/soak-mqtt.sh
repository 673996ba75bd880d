#!/usr/bin/env bash
# The long run of the broker's model-based test (zero-mqtt/tests/model.rs): SEQUENCES random
# sequences of STEPS steps, each on 1, 2 and 4 shards with persistence on and clients churning
# in the background. A failure prints its seed; ZERO_MODEL_SEED=N replays it.
# Usage: SEQUENCES=500 STEPS=300 scripts/soak-mqtt.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/zero-target/$(pwd | cksum | cut -d' ' -f1)}"
export ZERO_MODEL_SEQUENCES="${SEQUENCES:-500}" ZERO_MODEL_STEPS="${STEPS:-300}"
start=$(date +%s)
cargo test --release -p zero-mqtt --test model -- --nocapture
echo "soak: $ZERO_MODEL_SEQUENCES sequences of $ZERO_MODEL_STEPS steps on 1, 2 and 4 shards passed in $(($(date +%s) - start)) s"
