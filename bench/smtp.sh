#!/usr/bin/env bash
# bench/smtp.sh: Postfix's smtp-source (20 sessions, 20,000 messages of 1 KiB) against
#   - zero (`zero smtp relay`, one shard: every message fdatasync'ed, group commit, before its
#     250; delivered to a discard route, its done records written as Postfix's queue does),
#   - Postfix with its default queue (fsync'ed before 250; delivered to the discard transport),
#   - Postfix's smtp-sink (no disk at all: the ceiling).
# Each server runs on CPU 0, smtp-source alone on CPU 1.
#
# Prints messages/s and messages per server CPU-second for each; the last line is
#   ratio zero/postfix: X      (messages/s)
#
# Environment: MESSAGES=20000, SESSIONS=20, SIZE=1024, CARGO_TARGET_DIR.
set -euo pipefail
export LC_ALL=C
MESSAGES="${MESSAGES:-20000}"
SESSIONS="${SESSIONS:-20}"
SIZE="${SIZE:-1024}"
SERVER_CPU=0
CLIENT_CPU=1
log() { printf 'smtp.sh: %s\n' "$*" >&2; }

cd "$(dirname "$0")/.."
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/zero-target}"
[[ $CARGO_TARGET_DIR == /* ]] || CARGO_TARGET_DIR="$PWD/$CARGO_TARGET_DIR"
if ! command -v smtp-source >/dev/null || ! [[ -x /usr/lib/postfix/sbin/master ]]; then
	log "installing postfix (for smtp-source, smtp-sink and the server itself)"
	echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix >/dev/null
fi
log "building zero (release)"
cargo build --release -q -p zero-cli
zero_bin="$CARGO_TARGET_DIR/release/zero"

work=$(mktemp -d)
# Postfix's own users must reach its queue and data directories.
chmod 755 "$work"
pids=()
postfix_conf=""
cleanup() {
	[[ -n $postfix_conf ]] && postfix -c "$postfix_conf" stop >/dev/null 2>&1 || true
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

spare_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; log "nothing listens on $1"; exit 1; }

# CPU seconds (user + system, with reaped children) of a process and its live children.
cpu_of() {
	local tck total=0 p
	tck=$(getconf CLK_TCK)
	for p in "$1" $(pgrep -P "$1" || true); do
		[[ -r /proc/$p/stat ]] || continue
		# Fields 14-17: utime stime cutime cstime (after the command name's parentheses).
		total=$((total + $(sed 's/.*) //' "/proc/$p/stat" | awk '{print $12 + $13 + $14 + $15}')))
	done
	awk -v t="$total" -v c="$tck" 'BEGIN { printf "%.3f", t / c }'
}

declare -A rate per_cpu
# run NAME PORT PID: smtp-source against the server, timed, with the server's CPU time.
run() {
	local name=$1 port=$2 pid=$3 cpu0 cpu1 t0 t1
	cpu0=$(cpu_of "$pid")
	t0=$(date +%s.%N)
	taskset -c "$CLIENT_CPU" smtp-source -s "$SESSIONS" -m "$MESSAGES" -l "$SIZE" \
		-f sender@client.test -t rcpt@zero.test "127.0.0.1:$port"
	t1=$(date +%s.%N)
	cpu1=$(cpu_of "$pid")
	rate[$name]=$(awk -v m="$MESSAGES" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", m / (b - a) }')
	per_cpu[$name]=$(awk -v m="$MESSAGES" -v a="$cpu0" -v b="$cpu1" 'BEGIN { if (b > a) printf "%.0f", m / (b - a); else print "-" }')
}

log "zero smtp relay (spool, fsync, 1 shard, discard route)"
port=$(spare_port)
cat >"$work/relay.toml" <<CONF
hostname = "bench.zero.test"
spool = "$work/zero-spool"
listen = "127.0.0.1:$port"
shards = 1
[[route]]
domain = "*"
discard = true
CONF
taskset -c "$SERVER_CPU" "$zero_bin" smtp relay --config "$work/relay.toml" 2>/dev/null &
pids+=($!)
wait_port "$port"
run zero "$port" "${pids[-1]}"
# Every message accepted went through the queue: the spool empties.
for _ in $(seq 100); do
	queued=$("$zero_bin" smtp queue list --spool "$work/zero-spool" 2>&1 >/dev/null | awk '{print $1}')
	[[ $queued == 0 ]] && break
	sleep 0.1
done
[[ $queued == 0 ]] || { log "zero's spool still holds $queued messages"; exit 1; }

log "postfix $(postconf -d -h mail_version) (default queue, discard transport)"
port=$(spare_port)
postfix_conf="$work/postfix"
mkdir -p "$postfix_conf" "$work/postfix-queue" "$work/postfix-data"
chown postfix "$work/postfix-data"
cat >"$postfix_conf/main.cf" <<CONF
compatibility_level = 3.6
queue_directory = $work/postfix-queue
data_directory = $work/postfix-data
meta_directory = /etc/postfix
mail_owner = postfix
myhostname = bench.zero.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
default_transport = discard
relay_transport = discard
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions = permit_mynetworks, reject
maillog_file_prefixes = $work
maillog_file = $work/postfix.log
CONF
# The stock master.cf, with the smtpd service on our port, nothing chrooted.
sed -e "s/^smtp      inet .*/127.0.0.1:$port inet n - n - - smtpd/" \
	-e 's/^\(\S\+\s\+\S\+\s\+\S\+\s\+\S\+\s\+\)y\(\s\)/\1n\2/' /etc/postfix/master.cf >"$postfix_conf/master.cf"
postfix -c "$postfix_conf" set-permissions >/dev/null 2>&1
taskset -c "$SERVER_CPU" postfix -c "$postfix_conf" start >/dev/null 2>&1
wait_port "$port"
master=$(head -1 "$work/postfix-queue/pid/master.pid" | tr -d ' ')
run postfix "$port" "$master"
postfix -c "$postfix_conf" stop >/dev/null 2>&1 || true
postfix_conf=""

log "smtp-sink (no disk)"
port=$(spare_port)
taskset -c "$SERVER_CPU" smtp-sink -u postfix -c "127.0.0.1:$port" 1000 >/dev/null &
pids+=($!)
wait_port "$port"
run smtp-sink "$port" "${pids[-1]}"

echo
printf '%-10s %12s %22s\n' server messages/s "per server CPU-second"
for name in zero postfix smtp-sink; do
	printf '%-10s %12s %22s\n' "$name" "${rate[$name]}" "${per_cpu[$name]}"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo "ratio zero/postfix per server CPU-second: $(ratio "${per_cpu[zero]}" "${per_cpu[postfix]}")"
echo "ratio zero/postfix: $(ratio "${rate[zero]}" "${rate[postfix]}")"
