#!/usr/bin/env bash
# bench/tls-echo.sh: zero's TLS echo server vs. Tokio + tokio-rustls, same certificate, same
# rustls provider (ring) and cipher suite, same load generator (`zero bench echo --tls`):
# 1 KiB messages, 50 connections, closed loop, server on CPU 0 and load on CPU 1.
# The last line is `ratio zero/tokio-rustls: X.XX`. See bench/echo.sh for the knobs.
set -euo pipefail
export TLS=1 SIZE="${SIZE:-1024}" CONNS="${CONNS:-50}"
exec "$(dirname "${BASH_SOURCE[0]}")/echo.sh" "$@"
