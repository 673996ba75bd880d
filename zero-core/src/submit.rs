//! Turning a socket's state into submissions: the one place that decides what each kind of
//! socket needs from the kernel next (accept, receive, send, FIN, connect, cancel).

use std::os::fd::AsRawFd;

use crate::conn::{Phase, SlowConsumer};
use crate::error::Result;
use crate::ops::Ops;
use crate::pool::Pool;
use crate::ring::{Op, Ring, Token};
use crate::table::{Kind, Life};
use crate::timer::TimerKind;

impl Ops {
    // ---- internals: submissions ------------------------------------------------------------

    pub(crate) fn flush_slot(&mut self, ring: &mut Ring, pool: &Pool, index: u32, gen: u32) -> Result<()> {
        let Some(slot) = self.table.get_mut(index, gen) else {
            return Ok(());
        };
        slot.touched = false;
        let fd = slot.sock.as_raw_fd();
        let token = |op| Token::new(op, index, gen);
        if let Life::Releasing { cancel_sent } = &mut slot.life {
            if !*cancel_sent && slot.inflight > 0 {
                match &slot.kind {
                    // A UDP socket's only lasting operation is its multishot receive (sends
                    // finish by themselves): cancel it by its token, a hash lookup in the
                    // kernel, where cancelling by descriptor walks every armed poll (a tenth
                    // of a resolver's CPU time, with a socket per query).
                    Kind::Udp(u) if u.recv_armed => ring.cancel(fd, token(Op::RecvMsg), token(Op::Cancel))?,
                    Kind::Udp(_) => return Ok(()),
                    _ => ring.cancel_fd(fd, token(Op::Cancel))?,
                }
                *cancel_sent = true;
                slot.inflight += 1;
            }
            return Ok(());
        }
        let mut release = None;
        let mut retry = false;
        let mut detached = false;
        match &mut slot.kind {
            Kind::Listener { accept_armed, .. } => {
                if !*accept_armed {
                    ring.accept_multi(fd, token(Op::Accept))?;
                    *accept_armed = true;
                    slot.inflight += 1;
                }
            }
            Kind::Stream(s) => {
                if s.phase == Phase::Connecting {
                    let connecting = s.rare.as_mut().and_then(|r| r.connecting.as_mut());
                    if let Some(c) = connecting.filter(|c| !c.submitted) {
                        ring.connect(fd, &c.addr, (c.timeout, &c.timespec), index, gen)?;
                        c.submitted = true;
                        slot.inflight += 2;
                    }
                    return Ok(());
                }
                // TLS: this tick's plaintext becomes records, counted in the queue from here on.
                s.ws_transmit(None);
                if let Some(tls) = &mut s.tls {
                    tls.transmit(s.send.pending());
                }
                s.starved &= !pool.has_free();
                retry = s.starved;
                // Slow consumer: stop reading while the queue is over its limit.
                if s.block_if_full(self.config.send_queue_limit) {
                    if let SlowConsumer::Disconnect { after } = self.config.slow_consumer {
                        s.rare().stall =
                            Some(self.timers.insert(self.now + after, TimerKind::Stall { index, gen }));
                    }
                }
                if s.wants_recv() {
                    ring.recv_multi(fd, pool.group(), token(Op::Recv))?;
                    s.recv_armed = true;
                    s.recv_cancelled = false;
                    slot.inflight += 1;
                } else if (s.paused || s.held || s.detaching) && s.recv_armed && !s.recv_cancelled {
                    ring.cancel(fd, token(Op::Recv), token(Op::Cancel))?;
                    s.recv_cancelled = true;
                    slot.inflight += 1;
                }
                if let Some(buf) = s.send.next_flight() {
                    ring.send(fd, buf, token(Op::Send))?;
                    slot.inflight += 1;
                }
                // A file goes out once the bytes queued before it have: into the pipe, then
                // out of it, one splice at a time.
                let bytes_done = s.send.queued() == 0 && !s.send.busy();
                if let Some(f) =
                    s.rare.as_mut().and_then(|r| r.file.as_mut()).filter(|f| !f.busy && bytes_done)
                {
                    if f.in_pipe > 0 {
                        let len = f.in_pipe as u32;
                        ring.splice(f.pipe_r.as_raw_fd(), None, fd, len, token(Op::SpliceOut))?;
                    } else {
                        let len = f.left.min(f.pipe_size as u64) as u32;
                        let (file, pipe) = (f.file.as_raw_fd(), f.pipe_w.as_raw_fd());
                        ring.splice(file, Some(f.offset), pipe, len, token(Op::SpliceIn))?;
                    }
                    f.busy = true;
                    slot.inflight += 1;
                }
                let fin_due = s.want_fin || s.phase == Phase::Closing;
                if fin_due && !s.write_closed && s.send.queued() == 0 && !s.sending_file() {
                    // A failed shutdown means the peer is gone; the receive side reports it.
                    let _ = slot.sock.shutdown(std::net::Shutdown::Write);
                    s.write_closed = true;
                }
                if s.close_complete() {
                    release = Some(s.close_reason());
                }
                detached = s.detach_ready();
            }
            Kind::Udp(u) => {
                u.starved &= !pool.has_free();
                retry = u.starved;
                if !u.recv_armed && !u.starved {
                    ring.recvmsg_multi(fd, &u.msghdr, pool.group(), token(Op::RecvMsg))?;
                    u.recv_armed = true;
                    slot.inflight += 1;
                }
                if let Some(batch) = u.next_flight() {
                    let mut headers = batch.headers.iter();
                    for d in &batch.datagrams {
                        // The headers are the segmented datagrams', in order: take one only for one.
                        match d.segment.and_then(|_| headers.next()) {
                            Some(gso) => ring.send_msg(fd, &gso.msg, token(Op::SendTo))?,
                            _ => ring.send_to(
                                fd,
                                &batch.bytes[d.start..d.start + d.len],
                                &d.to,
                                token(Op::SendTo),
                            )?,
                        }
                    }
                    slot.inflight += batch.datagrams.len() as u32;
                }
            }
        }
        if let Some(reason) = release {
            self.release(index, gen, reason);
        } else if detached {
            self.finish_if_done(index, gen);
        } else if retry {
            self.table.touch(index, gen);
        }
        Ok(())
    }
}
