#!/usr/bin/env bash
# bench/quic-echo.sh: zero's QUIC echo (quinn-proto in a zero-core shard) vs. quinn's own Tokio
# endpoint (bench/quinn-echo), same certificate, same rustls provider (ring), same transport
# defaults, same load generator (`zero bench echo --quic`, one QUIC connection per CONNS with
# one bidirectional stream): closed loop and pipeline 16, server on CPU 0 and load on CPU 1.
# The last line is `ratio zero/quinn: X.XX`. See bench/echo.sh for the knobs.
set -euo pipefail
export QUIC=1
exec "$(dirname "${BASH_SOURCE[0]}")/echo.sh" "$@"
