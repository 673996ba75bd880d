#!/usr/bin/env bash
# bench/ftp.sh: zero (`zero ftp serve`, one shard) against vsftpd on the same work, with curl
# as the client:
#   - one-connection RETR and STOR of a 1 GiB file, on tmpfs and on the disk (page cache warm);
#   - 100 concurrent RETR of a 10 MiB file.
# Each server runs on CPU 1 (vsftpd's per-session processes inherit it), curl on CPU 0.
#
# Prints MB/s and server CPU-seconds per GB (CPU 1's busy time) for each row and server; the
# last line is
#   ratio zero/vsftpd retr: X      (one-connection RETR on tmpfs, MB/s)
#
# Environment: SIZE_MB=1024, CONCURRENT=100, CARGO_TARGET_DIR.
set -euo pipefail
export LC_ALL=C
SIZE_MB="${SIZE_MB:-1024}"
CONCURRENT="${CONCURRENT:-100}"
log() { printf 'ftp.sh: %s\n' "$*" >&2; }

cd "$(dirname "$0")/.."
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/zero-target}"
[[ $CARGO_TARGET_DIR == /* ]] || CARGO_TARGET_DIR="$PWD/$CARGO_TARGET_DIR"
if ! command -v vsftpd >/dev/null || ! command -v curl >/dev/null; then
	log "installing vsftpd and curl"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq vsftpd curl >/dev/null
fi
log "building zero (release)"
cargo build --release -q -p zero-cli
zero_bin="$CARGO_TARGET_DIR/release/zero"

shm=$(mktemp -d /dev/shm/zero-ftp-bench.XXXXXX)
disk=$(mktemp -d "$HOME/.cache/zero-ftp-bench.XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$shm" "$disk"
}
trap cleanup EXIT

# Each place: a root (read: big, ten) and an upload directory the ftp user may write.
for place in "$shm" "$disk"; do
	mkdir -p "$place/root/up"
	head -c $((SIZE_MB * 1048576)) /dev/urandom >"$place/root/big"
	head -c $((10 * 1048576)) /dev/urandom >"$place/root/ten"
	chown ftp "$place/root/up"
	chmod 555 "$place/root"
	cat "$place/root/big" "$place/root/ten" >/dev/null # page cache warm
done
# This machine is a VM whose memory is backed on first touch: writing past the most it has
# used so far runs at a fifth of the speed (seen here: 1.2 GB/s falling to 0.2 GB/s on the third
# GiB of new tmpfs pages, and back once those pages were freed and written again). Whichever
# server ran first would pay for it: touch as much memory as the uploads will use first.
head -c $((4 * SIZE_MB * 1048576)) /dev/zero >"$shm/warm"
rm -f "$shm/warm"
hash=$(openssl passwd -6 -salt benchsalt bench)

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# vsftpd: anonymous download and upload (its per-session processes run as `ftp`).
start_vsftpd() { # root -> PORT, and its pid last in pids
	local root=$1 p
	p=$(port)
	mkdir -p /var/run/vsftpd/empty
	cat >"$root/../vsftpd.conf" <<EOF
listen=YES
listen_address=127.0.0.1
listen_port=$p
background=NO
anonymous_enable=YES
no_anon_password=YES
anon_root=$root
write_enable=YES
anon_upload_enable=YES
anon_umask=022
local_enable=NO
seccomp_sandbox=NO
xferlog_enable=NO
max_clients=1000
max_per_ip=1000
secure_chroot_dir=/var/run/vsftpd/empty
ftp_username=ftp
EOF
	taskset -c 1 vsftpd "$root/../vsftpd.conf" &
	pids+=($!)
	PORT=$p
}

start_zero() { # root -> PORT, and its pid last in pids
	local root=$1 p
	p=$(port)
	echo "bench:$hash:rwdm" >"$root/../users"
	taskset -c 1 "$zero_bin" ftp serve --shards 1 --root "$root" --users "$root/../users" --listen "127.0.0.1:$p" 2>/dev/null &
	pids+=($!)
	PORT=$p
}

# Server CPU: CPU 1's busy time (user, system, interrupts), where the server and all its
# processes run and nothing else of the benchmark does. vsftpd's per-session processes are
# reaped without their times being added to its own (SIGCHLD is ignored), so a process's
# counters would miss them.
cpu_of() {
	awk '$1 == "cpu1" { print ($2 + $3 + $4 + $7 + $8 + $9) / 100 }' /proc/stat
}

wait_port() {
	for _ in $(seq 100); do
		curl -s --max-time 1 "ftp://127.0.0.1:$1/" -u "$2" -o /dev/null && return 0
		sleep 0.05
	done
	log "no server on $1"
	exit 1
}

# One row: `run NAME PORT PID USER CURL-ARGS...` -> "MB/s cpu-s/GB"
run() {
	local port=$2 pid=$3 bytes=$4
	shift 4
	local c0 t0 t1 c1
	c0=$(cpu_of "$pid")
	t0=$(date +%s.%N)
	"$@"
	t1=$(date +%s.%N)
	c1=$(cpu_of "$pid")
	awk -v b="$bytes" -v t0="$t0" -v t1="$t1" -v c0="$c0" -v c1="$c1" \
		'BEGIN { printf "%8.0f %8.2f", b / 1e6 / (t1 - t0), (c1 - c0) / (b / 1e9) }'
}

declare -A result
for server in zero vsftpd; do
	for place in tmpfs disk; do
		dir=$shm
		[[ $place == disk ]] && dir=$disk
		if [[ $server == zero ]]; then
			start_zero "$dir/root"
			user=bench:bench
		else
			start_vsftpd "$dir/root"
			user=anonymous:x
		fi
		p=$PORT
		pid=${pids[-1]}
		wait_port "$p" "$user"
		big=$((SIZE_MB * 1048576))
		get=(taskset -c 0 curl -s -S -u "$user" -o /dev/null "ftp://127.0.0.1:$p/big")
		put=(taskset -c 0 curl -s -S -u "$user" -T "$dir/root/big" "ftp://127.0.0.1:$p/up/big.$server")
		result[$server,$place,retr]=$(run "$server" "$p" "$pid" "$big" "${get[@]}")
		result[$server,$place,stor]=$(run "$server" "$p" "$pid" "$big" "${put[@]}")
		rm -f "$dir/root/up/big.$server"
		if [[ $place == tmpfs ]]; then
			many() {
				local i
				for i in $(seq "$CONCURRENT"); do
					taskset -c 0 curl -s -S -u "$user" -o /dev/null "ftp://127.0.0.1:$p/ten" &
				done
				wait
			}
			result[$server,tmpfs,many]=$(run "$server" "$p" "$pid" $((CONCURRENT * 10 * 1048576)) many)
		fi
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
done

printf '%-34s %17s %17s\n' "" "zero" "vsftpd"
printf '%-34s %8s %8s %8s %8s\n' "row" "MB/s" "CPU-s/GB" "MB/s" "CPU-s/GB"
for row in "tmpfs retr" "tmpfs stor" "disk retr" "disk stor" "tmpfs many"; do
	set -- $row
	label="$2, 1 connection, $1"
	[[ $2 == many ]] && label="retr, $CONCURRENT connections, tmpfs"
	printf '%-34s %s %s\n' "$label" "${result[zero,$1,$2]}" "${result[vsftpd,$1,$2]}"
done
read -r zr _ <<<"${result[zero,tmpfs,retr]}"
read -r vr _ <<<"${result[vsftpd,tmpfs,retr]}"
awk -v z="$zr" -v v="$vr" 'BEGIN { printf "ratio zero/vsftpd retr: %.2f\n", z / v }'
