//! A server's listeners, each plain or TLS from the first byte (SMTP's 465, implicit FTPS):
//! the shard handler asks which an accepted connection came through.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use rustls::ServerConfig;

use crate::config::ListenOptions;
use crate::error::{IoError, Result};
use crate::id::ListenerId;
use crate::ops::Ops;

/// Listeners, and whether each is TLS from the start.
#[derive(Debug, Default)]
pub struct Listeners {
    tls: HashMap<ListenerId, bool>,
}

impl Listeners {
    /// Listens on `addr` in plaintext (a protocol may still upgrade, STARTTLS or `AUTH TLS`);
    /// returns the address bound.
    pub fn listen(&mut self, ops: &mut Ops, addr: SocketAddr, opts: &ListenOptions) -> Result<SocketAddr> {
        let listener = ops.tcp_listen_with(addr, opts)?;
        self.tls.insert(listener, false);
        ops.listener_addr(listener)
    }

    /// Listens on `addr` with TLS from the first byte, under `config` (an error without one).
    pub fn listen_tls(
        &mut self,
        ops: &mut Ops,
        addr: SocketAddr,
        opts: &ListenOptions,
        config: Option<Arc<ServerConfig>>,
    ) -> Result<SocketAddr> {
        let config = config.ok_or(IoError::NotReady("no TLS configuration"))?;
        let listener = ops.tls_listen_with(addr, opts, config)?;
        self.tls.insert(listener, true);
        ops.listener_addr(listener)
    }

    /// Whether `listener` is one of these, and if so whether it is TLS from the start.
    pub fn tls(&self, listener: ListenerId) -> Option<bool> {
        self.tls.get(&listener).copied()
    }
}
