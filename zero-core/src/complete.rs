//! Turning completions into state changes and events: one handler per operation kind.

use std::time::Duration;

use io_uring::types::RecvMsgOut;

use crate::conn::{CloseReason, Owed, Phase, Stream};
use crate::error::IoError;
use crate::event::{Chunk, Raw};
use crate::id::{ConnId, ListenerId, UdpId};
use crate::ops::Ops;
use crate::pool::Pool;
use crate::proxy::relayed;
use crate::ring::{self, Completion};
use crate::table::{Kind, Life};
use crate::timer::TimerKind;
use crate::tls::{Session, TlsError};
use crate::udp::parse_sockaddr;
use crate::ws::WsError;

/// How long a listener waits before accepting again after an accept error (e.g. `EMFILE`).
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

impl Ops {
    // ---- internals: completions ------------------------------------------------------------

    pub(crate) fn on_accept(&mut self, index: u32, gen: u32, c: &Completion) {
        let Some(slot) = self.table.get_mut(index, gen) else {
            return;
        };
        let Kind::Listener { accept_armed, nodelay, tls, ws } = &mut slot.kind else {
            return;
        };
        let nodelay = *nodelay;
        let (tls, ws) = (tls.clone(), ws.clone());
        let rearm = !c.more() && slot.life == Life::Live;
        if !c.more() {
            *accept_armed = false;
        }
        if c.result < 0 {
            if c.result != -libc::ECANCELED {
                let e = std::io::Error::from_raw_os_error(-c.result);
                tracing::warn!(listener = %ListenerId::new(index, gen), error = %e, "accept failed; retrying in 100 ms");
            }
            if rearm {
                // Out of descriptors or memory: retrying at once would spin; give it a moment.
                let at = self.now + ACCEPT_RETRY;
                self.timers.insert(at, TimerKind::Rearm { index, gen });
            }
            return;
        }
        if rearm {
            self.table.touch(index, gen);
        }
        let sock = ring::adopt_socket(c.result);
        self.counters.accepted += 1;
        if nodelay {
            let _ = sock.set_tcp_nodelay(true);
        }
        let listener = ListenerId::new(index, gen);
        let mut stream = Stream::new(Phase::Open, Some(listener));
        if let Some(config) = &tls {
            // Announced once the handshake is done.
            match Session::server(config.clone()) {
                Ok(session) => stream.tls = Some(Box::new(session)),
                Err(e) => {
                    tracing::warn!(%listener, error = %e, "TLS session not created; connection dropped");
                    return;
                }
            }
            stream.owed = Some(Owed::Accepted(listener));
        }
        let layered = tls.is_some() || ws.is_some();
        if let Some(config) = ws {
            stream.ws = Some(Box::new(crate::ws::Session::server(config)));
            stream.owed = Some(Owed::Accepted(listener));
        }
        match self.insert(sock, Kind::Stream(stream)) {
            Ok((i, g)) if layered => self.start_handshake(i, g),
            Ok((i, g)) => self.events.push_back(Raw::Accepted { conn: ConnId::new(i, g), listener }),
            Err(e) => tracing::warn!(%listener, error = %e, "accepted connection dropped"),
        }
    }

    pub(crate) fn on_recv(
        &mut self,
        index: u32,
        gen: u32,
        c: &Completion,
        pool: &mut Pool,
        plain: &mut Vec<u8>,
    ) {
        let conn = ConnId::new(index, gen);
        let Some(slot) = self.table.get_mut(index, gen) else {
            return;
        };
        let live = slot.life == Life::Live;
        let Kind::Stream(s) = &mut slot.kind else {
            return;
        };
        if !c.more() {
            s.recv_armed = false;
        }
        let mut touch = !c.more() && live;
        match c.result {
            n if n > 0 => {
                self.counters.received += n as u64;
                if let (true, Phase::Open, Some(bid)) = (live, s.phase, c.buffer()) {
                    let len = n as usize;
                    if s.in_socks() {
                        self.socks_receive(conn, bid, len, pool);
                    } else if s.relay_for().is_some() {
                        // A UDP association's control connection carries nothing after its reply.
                    } else if s.tls.is_some() {
                        self.tls_receive(conn, pool.bytes(bid, 0, len), plain);
                    } else if s.ws.is_some() {
                        self.ws_receive(conn, pool.bytes(bid, 0, len), plain);
                    } else {
                        self.events.push_back(Raw::Data { conn, chunk: Chunk::Slot { bid, offset: 0, len } });
                    }
                } else if let (true, Phase::Closing, Some(bid), true) =
                    (live, s.phase, c.buffer(), s.tls.is_some())
                {
                    self.tls_receive_closing(conn, pool.bytes(bid, 0, n as usize));
                }
            }
            0 => {
                s.read_closed = true;
                touch = live;
                if live && s.phase == Phase::Open {
                    if s.in_socks() || s.relay_for().is_some() {
                        self.handshake_lost(conn, "the SOCKS5 proxy closed the connection");
                        return;
                    }
                    match (&s.tls, &s.ws) {
                        (Some(t), _) if !t.is_established() => {
                            let error = TlsError::Protocol(
                                "the peer closed the connection during the handshake".into(),
                            );
                            self.tls_failed(conn, error);
                        }
                        (_, Some(w)) if !w.is_established() => {
                            let error = WsError::Handshake(
                                "the peer closed the connection during the upgrade".into(),
                            );
                            self.ws_failed(conn, error);
                        }
                        // close_notify or a close frame came first and was reported then.
                        (Some(t), _) if t.peer_closed() => {}
                        (_, Some(w)) if w.peer_closed() => {}
                        (Some(_), _) => self.peer_sent_fin(conn, true),
                        _ => self.peer_sent_fin(conn, false),
                    }
                }
            }
            e if e == -libc::ENOBUFS => {
                s.starved = true;
                pool.note_exhausted();
            }
            e if e == -libc::ECANCELED => {}
            e => {
                if live {
                    self.release(index, gen, CloseReason::from_errno(-e));
                }
                return;
            }
        }
        if touch {
            self.table.touch(index, gen);
        }
    }

    /// The peer will send nothing more (TCP FIN, or TLS `close_notify`).
    /// `truncated`: a TLS connection's FIN without `close_notify`.
    pub(crate) fn peer_sent_fin(&mut self, conn: ConnId, truncated: bool) {
        let fin = if self.config.half_open {
            Raw::HalfClosed { conn }
        } else {
            Raw::PeerFinished { conn, truncated }
        };
        self.events.push_back(fin);
    }

    pub(crate) fn on_send(&mut self, index: u32, gen: u32, c: &Completion) {
        let conn = ConnId::new(index, gen);
        let limit = self.config.send_queue_limit;
        let Some(slot) = self.table.get_mut(index, gen) else {
            return;
        };
        let live = slot.life == Life::Live;
        let Kind::Stream(s) = &mut slot.kind else {
            return;
        };
        if c.result < 0 {
            s.send.failed();
            if live && c.result != -libc::ECANCELED {
                self.release(index, gen, CloseReason::from_errno(-c.result));
            }
            return;
        }
        s.send.sent(c.result as usize, self.config.free_idle_send_buffers);
        self.counters.sent += c.result as u64;
        if s.unblock_if_drained(limit) {
            if let Some(t) = s.take_stall() {
                self.timers.cancel(t);
            }
            if live {
                self.events.push_back(Raw::Writable { conn });
            }
        }
        if live {
            self.table.touch(index, gen);
        }
    }

    /// A splice of `Ops::send_file` completed: into the pipe (`SpliceIn`) or out to the
    /// socket (`SpliceOut`).
    pub(crate) fn on_splice(&mut self, index: u32, gen: u32, op: ring::Op, c: &Completion) {
        let conn = ConnId::new(index, gen);
        let Some(slot) = self.table.get_mut(index, gen) else {
            return;
        };
        let live = slot.life == Life::Live;
        let Kind::Stream(s) = &mut slot.kind else {
            return;
        };
        let Some(f) = s.rare.as_mut().and_then(|r| r.file.as_mut()) else {
            return;
        };
        f.busy = false;
        let failed = match (op, c.result) {
            (_, r) if r == -libc::ECANCELED => return,
            (_, r) if r < 0 => Some(CloseReason::from_errno(-r)),
            // The file ended before the length asked for: what was promised cannot be sent.
            (ring::Op::SpliceIn, 0) => Some(CloseReason::Error(libc::EIO)),
            (ring::Op::SpliceIn, n) => {
                f.offset += n as u64;
                f.left -= n as u64;
                f.in_pipe += n as usize;
                None
            }
            (_, n) => {
                f.in_pipe -= n as usize;
                None
            }
        };
        if let Some(reason) = failed {
            if live {
                self.release(index, gen, reason);
            }
            return;
        }
        if f.left == 0 && f.in_pipe == 0 {
            if let Some(r) = s.rare.as_mut() {
                r.file = None;
            }
            if live {
                self.events.push_back(Raw::FileSent { conn });
            }
        }
        if live {
            self.table.touch(index, gen);
        }
    }

    pub(crate) fn on_connect(&mut self, index: u32, gen: u32, c: &Completion) {
        let conn = ConnId::new(index, gen);
        let Some(slot) = self.table.get_mut(index, gen) else {
            return;
        };
        if slot.life != Life::Live {
            return;
        }
        let Kind::Stream(s) = &mut slot.kind else {
            return;
        };
        if c.result == 0 {
            s.phase = Phase::Open;
            if s.in_socks() {
                self.socks_start(conn);
            } else if s.tls.is_some() || s.ws.is_some() {
                self.start_handshake(index, gen);
            } else {
                self.settle(conn);
                self.table.touch(index, gen);
            }
            return;
        }
        let peer = s
            .rare
            .as_ref()
            .and_then(|r| r.connecting.as_ref())
            .and_then(|c| {
                c.addr
                    .as_socket()
                    .map(|a| a.to_string())
                    .or_else(|| c.addr.as_pathname().map(|p| p.display().to_string()))
            })
            .unwrap_or_default();
        let error = if c.result == -libc::ECANCELED {
            IoError::ConnectTimeout(peer)
        } else {
            IoError::sys(format!("connect {peer}"), std::io::Error::from_raw_os_error(-c.result))
        };
        s.fail(error);
        self.release(index, gen, CloseReason::Error(-c.result));
    }

    pub(crate) fn on_recvmsg(&mut self, index: u32, gen: u32, c: &Completion, pool: &mut Pool) {
        let udp = UdpId::new(index, gen);
        let Some(slot) = self.table.get_mut(index, gen) else {
            return;
        };
        let live = slot.life == Life::Live;
        let Kind::Udp(u) = &mut slot.kind else { return };
        if !c.more() {
            u.recv_armed = false;
        }
        match (c.result, c.buffer()) {
            (n, Some(bid)) if n > 0 && live => {
                let bytes = pool.bytes(bid, 0, n as usize);
                match RecvMsgOut::parse(bytes, &u.msghdr) {
                    Ok(out) => {
                        let payload = out.payload_data();
                        let offset = payload.as_ptr() as usize - bytes.as_ptr() as usize;
                        if out.is_payload_truncated() {
                            tracing::warn!(%udp, slot_size = pool.slot_size(), "datagram truncated to the pool's slot size");
                        }
                        let from = parse_sockaddr(out.name_data());
                        let unwrapped = match (&u.relay, from) {
                            (Some(relay), Some(from)) => relayed(relay, from, payload),
                            (None, Some(from)) => Some((from, 0)),
                            _ => None,
                        };
                        match from.and(unwrapped) {
                            Some((peer, _)) if u.quic => {
                                let refuse = !matches!(self.drain, crate::drain::Drain::No);
                                self.quic.on_datagram(self.now, udp, peer, payload, refuse)
                            }
                            Some((peer, header)) => self.events.push_back(Raw::Datagram {
                                udp,
                                peer,
                                received: crate::udp::receive_time(out.control_data()),
                                bid,
                                offset: offset + header,
                                len: payload.len() - header,
                            }),
                            None if from.is_some() => {}
                            None => {
                                tracing::warn!(%udp, "datagram from an address family zero-core does not handle")
                            }
                        }
                    }
                    Err(()) => tracing::warn!(%udp, "malformed recvmsg completion"),
                }
            }
            (e, _) if e == -libc::ENOBUFS => {
                u.starved = true;
                pool.note_exhausted();
            }
            (e, _) if e < 0 && e != -libc::ECANCELED => {
                tracing::warn!(%udp, error = %std::io::Error::from_raw_os_error(-e), "datagram receive failed");
            }
            _ => {}
        }
        if !c.more() && live {
            self.table.touch(index, gen);
        }
    }

    pub(crate) fn on_send_to(&mut self, index: u32, gen: u32, c: &Completion) {
        let Some(slot) = self.table.get_mut(index, gen) else {
            return;
        };
        let Kind::Udp(u) = &mut slot.kind else { return };
        u.flight_left -= 1;
        if c.result < 0 && c.result != -libc::ECANCELED {
            u.dropped += 1;
            // A device without checksum offload refuses segmented sends (EIO), an old kernel
            // does not know them (EINVAL): from now on the socket sends one datagram at a time.
            if matches!(-c.result, libc::EIO | libc::EINVAL) && !u.flight.headers.is_empty() && !u.gso_refused
            {
                u.gso_refused = true;
                tracing::info!(
                    "UDP GSO refused by the kernel ({}): sending datagram by datagram",
                    std::io::Error::from_raw_os_error(-c.result)
                );
            }
            tracing::debug!(error = %std::io::Error::from_raw_os_error(-c.result), "datagram send failed");
        }
        if u.flight_left == 0 && slot.life == Life::Live {
            self.table.touch(index, gen);
        }
    }
}
