#!/usr/bin/env bash
# bench/dns.sh: lookups of distinct names against one local unbound (a redirect zone: every
# name under zero.test. answers A 10.0.0.1 from local data, so the server does no recursion),
# with zero-dns's resolver (`zero bench dns`, inline on one zero-core shard) and with
# hickory-resolver (Tokio, current-thread runtime), both with their caches off and the same
# number of lookups in flight; dnsperf against the same unbound is the C ceiling. unbound runs
# on CPU 0, each client alone on CPU 1.
#
# Prints queries/s, queries per client CPU-second and p50/p99 for each; the last line is
#   ratio zero/hickory: X      (queries per client CPU-second)
#
# Environment: QUERIES=100000, CONCURRENCY=100, CARGO_TARGET_DIR.
set -euo pipefail
export LC_ALL=C
QUERIES="${QUERIES:-100000}"
CONCURRENCY="${CONCURRENCY:-100}"
CPU=1
SERVER_CPU=0
log() { printf 'dns.sh: %s\n' "$*" >&2; }

cd "$(dirname "$0")/.."
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/zero-target}"
[[ $CARGO_TARGET_DIR == /* ]] || CARGO_TARGET_DIR="$PWD/$CARGO_TARGET_DIR"
for pkg_bin in unbound:unbound dnsperf:dnsperf; do
	command -v "${pkg_bin#*:}" >/dev/null || {
		log "installing ${pkg_bin%%:*}"
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkg_bin%%:*}" >/dev/null
	}
done
log "building zero (release) and the hickory-resolver client"
cargo build --release -q -p zero-cli
zero_bin="$CARGO_TARGET_DIR/release/zero"
CARGO_TARGET_DIR="$CARGO_TARGET_DIR/dns-hickory" cargo build --release -q --manifest-path bench/dns-hickory/Cargo.toml
hickory_bin="$CARGO_TARGET_DIR/dns-hickory/release/dns-hickory-bench"

work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/unbound.conf" <<CONF
server:
  interface: 127.0.0.1
  port: $port
  do-daemonize: no
  chroot: ""
  username: ""
  use-syslog: no
  logfile: ""
  pidfile: ""
  do-ip6: no
  num-threads: 1
  access-control: 127.0.0.0/8 allow
  module-config: "iterator"
  local-zone: "." refuse
  local-zone: "zero.test." redirect
  local-data: "zero.test. 300 IN A 10.0.0.1"
CONF
taskset -c "$SERVER_CPU" unbound -d -c "$work/unbound.conf" >/dev/null 2>&1 &
server_pid=$!
trap 'kill $server_pid 2>/dev/null || true; wait $server_pid 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do dig @127.0.0.1 -p "$port" +short +time=1 +tries=1 warm.zero.test >/dev/null 2>&1 && break; sleep 0.05; done

declare -A r
result() { # impl, RESULT line
	for k in qps q_per_cpu_s p50_us p99_us errors; do r[$1,$k]=$(sed "s/.* $k=\([^ ]*\).*/\1/" <<<"$2"); done
}
log "zero-dns: $QUERIES lookups, $CONCURRENCY in flight"
result zero "$(taskset -c "$CPU" "$zero_bin" bench dns --target "127.0.0.1:$port" --queries "$QUERIES" --concurrency "$CONCURRENCY" | grep '^RESULT')"
log "hickory-resolver"
result hickory "$(taskset -c "$CPU" "$hickory_bin" "127.0.0.1:$port" "$QUERIES" "$CONCURRENCY" zero.test | grep '^RESULT')"
log "dnsperf"
for i in $(seq 0 9999); do echo "q$i.zero.test A"; done >"$work/queries"
dnsperf_out=$(taskset -c "$CPU" dnsperf -s 127.0.0.1 -p "$port" -d "$work/queries" -c 1 -q "$CONCURRENCY" -n $((QUERIES / 10000 + 1)) 2>&1)
dnsperf_qps=$(awk '/Queries per second/ {print $4}' <<<"$dnsperf_out")

echo
printf '%-10s %12s %16s %10s %10s %8s\n' client queries/s per-cpu-second p50-us p99-us errors
for impl in zero hickory; do
	printf '%-10s %12s %16s %10s %10s %8s\n' "$impl" "${r[$impl,qps]}" "${r[$impl,q_per_cpu_s]}" "${r[$impl,p50_us]}" "${r[$impl,p99_us]}" "${r[$impl,errors]}"
done
printf '%-10s %12s\n' dnsperf "${dnsperf_qps%.*}"
echo "hickory-proto (zero-dns's codec): $(taskset -c "$CPU" "$hickory_bin" codec 1000000 | sed 's/^RESULT impl=hickory-proto //')"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo "ratio zero/hickory queries/s: $(ratio "${r[zero,qps]}" "${r[hickory,qps]}")"
echo "ratio zero/hickory: $(ratio "${r[zero,q_per_cpu_s]}" "${r[hickory,q_per_cpu_s]}")"
