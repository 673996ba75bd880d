#!/usr/bin/env bash
# bench/quic-echo.sh: zero's QUIC echo (quinn-proto in a zero-core shard) vs. quinn's own Tokio
# endpoint (bench/quinn-echo), same certificate, same rustls provider (ring), same transport
# defaults, same load generator (`zero bench echo --quic`, one QUIC connection per CONNS with
# one bidirectional stream): closed loop, pipeline 16 and 50k msgs/s offered (CPU and system
# calls per message), server on CPU 0 and load on CPU 1.
# The last line is `ratio zero/quinn: X.XX`. See bench/echo.sh for the knobs.
set -euo pipefail
# The load generator runs quinn-proto too, on one CPU: 100k msgs/s is close to what it can
# offer, so the fixed rate here is 50k.
export QUIC=1 RATE="${RATE:-50000}"
exec "$(dirname "${BASH_SOURCE[0]}")/echo.sh" "$@"
