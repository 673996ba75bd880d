#!/usr/bin/env bash
# Runs every test of the workspace: formatting, lints, unit, integration and CLI tests.
# Installs what it needs on a fresh Debian machine first. Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# One build directory per checkout: test binaries bake in their checkout's path, so two clones
# sharing one directory could run each other's stale binaries.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/zero-target/$(pwd | cksum | cut -d' ' -f1)}"
export CARGO_TERM_COLOR=never
# A one-shot build gains nothing from incremental state, which doubles the build directory's size
# (tens of GB over a session): the disk is shared with the tests' own files.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

# Debian packages the tests and benchmarks use: tools, and the independent peers the tests run
# against (openssl s_client/s_server for TLS, dante and microsocks for SOCKS5, mosquitto and its
# clients for MQTT, redis-server for the Redis client, Chromium for MQTT over WebSocket in a browser,
# QuickFIX C++ (built into a small counterparty with g++) for FIX, unbound, dnsmasq and dig for DNS, chrony for NTP, avahi and dbus for mDNS, swaks (and python's smtplib), aiosmtpd, postfix, dkimpy and opendkim for SMTP, tcpdump for SBE feed captures, curl and lftp (and python's ftplib) for FTP).
need=()
for pkg_bin in "util-linux:taskset" "procps:ps" "openssl:openssl" "dante-server:danted" "microsocks:microsocks" \
	"mosquitto:mosquitto" "mosquitto-clients:mosquitto_sub" "redis-server:redis-server" "redis-tools:redis-benchmark" \
	"chromium:chromium" "g++:g++" "unbound:unbound" "bind9-dnsutils:dig" "dnsmasq-base:dnsmasq" "chrony:chronyd" \
	"avahi-daemon:avahi-daemon" "avahi-utils:avahi-browse" "dbus:dbus-daemon" "swaks:swaks" "tcpdump:tcpdump" "curl:curl" "lftp:lftp"; do
	command -v "${pkg_bin#*:}" >/dev/null 2>&1 || need+=("${pkg_bin%%:*}")
done
# QuickFIX C++: headers and library only (no binary to look for).
[[ -f /usr/include/quickfix/Application.h ]] || need+=(libquickfix-dev)
# paho-mqtt is the independent Python client of the MQTT tests (Debian's module, for /usr/bin/python3).
/usr/bin/python3 -c 'import paho.mqtt' 2>/dev/null || need+=(python3-paho-mqtt)
# python3-zeroconf is the independent mDNS/DNS-SD peer of zero-dns's responder and browser.
/usr/bin/python3 -c 'import zeroconf' 2>/dev/null || need+=(python3-zeroconf)
# aiosmtpd is an independent SMTP server the SMTP client is tested against.
/usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null || need+=(python3-aiosmtpd)
# dkimpy (with PyNaCl for Ed25519) signs and verifies DKIM against zero-smtp's; opendkim-testmsg
# (OpenDKIM's library) verifies our signatures too.
/usr/bin/python3 -c 'import dkim, nacl' 2>/dev/null || need+=(python3-dkim python3-nacl)
command -v opendkim-testmsg >/dev/null 2>&1 || need+=(opendkim-tools)
# PyYAML reads the openspf.org RFC 7208 test suite for zero-smtp's SPF test.
/usr/bin/python3 -c 'import yaml' 2>/dev/null || need+=(python3-yaml)
# Postfix brings smtp-sink and smtp-source (the SMTP client's peer, and bench/smtp.sh's load);
# installed without a configuration, so it does not start a mail system.
if ! command -v smtp-sink >/dev/null 2>&1; then
	echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
	need+=(postfix)
fi
# vsftpd and pyftpdlib are the FTP servers the FTP conformance suite and zero's FTP client
# are run against (pyftpdlib's FTPS needs pyOpenSSL).
command -v vsftpd >/dev/null 2>&1 || need+=(vsftpd)
/usr/bin/python3 -c 'import pyftpdlib' 2>/dev/null || need+=(python3-pyftpdlib)
/usr/bin/python3 -c 'import OpenSSL' 2>/dev/null || need+=(python3-openssl)
# python3-websockets is the independent WebSocket peer of zero-core's WebSocket tests.
/usr/bin/python3 -c 'import websockets' 2>/dev/null || need+=(python3-websockets)
# libseccomp's bindings: scripts/no-io-uring refuses io_uring as Docker's seccomp profile does.
/usr/bin/python3 -c 'import seccomp' 2>/dev/null || need+=(python3-seccomp)
if ((${#need[@]})); then
	echo "test.sh: installing ${need[*]}" >&2
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
# MQTT.js (npm `mqtt`), which the broker's browser test runs in headless Chromium.
mqtt_js="$HOME/.cache/zero-npm/node_modules/mqtt/dist/mqtt.min.js"
if [[ ! -f $mqtt_js ]]; then
	echo "test.sh: installing MQTT.js (npm mqtt@5.16.0)" >&2
	mkdir -p "$HOME/.cache/zero-npm"
	(cd "$HOME/.cache/zero-npm" && npm install --no-audit --no-fund --silent mqtt@5.16.0)
fi
# dante checks SOCKS5 usernames against system accounts: a login-less one for the tests.
if ! id -u zerosocks >/dev/null 2>&1; then
	useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin zerosocks
	echo 'zerosocks:zeropass' | chpasswd
fi
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt clippy

# io_uring must be allowed for this process; say so plainly rather than failing obscurely.
if [[ -r /proc/sys/kernel/io_uring_disabled ]] && [[ $(cat /proc/sys/kernel/io_uring_disabled) != 0 ]]; then
	echo "test.sh: io_uring is disabled (/proc/sys/kernel/io_uring_disabled != 0); zero needs it" >&2
	exit 1
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings
cargo test --workspace --all-features --locked
# The epoll fallback: zero-core's whole suite and the MQTT broker's integration and conformance
# tests again, every shard on epoll.
ZERO_BACKEND=epoll cargo test --all-features --locked -p zero-core -p zero-mqtt
ZERO_BACKEND=epoll cargo test --all-features --locked -p zero-conformance --test mqtt
