//! [`Task`]: a machine in a Tokio task over Tokio's sockets (feature `tokio`).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::conn::CloseReason;
use crate::error::{IoError, Result};
use crate::socks5::{Handshake, Progress, Socks5Auth, Socks5Command};
use crate::tls::Target;

use super::{Closed, Machine, Service};

/// What crosses to the task.
enum Control<C> {
    Command(C),
    Close,
}

/// A [`Service`] and its machine in a task of the current Tokio runtime, over Tokio's TCP
/// (through SOCKS5 with zero-core's handshake machine, and tokio-rustls for TLS with the same
/// rustls configuration as the shard), as the [`Target`] says. Callers
/// [`Task::post`] commands; those posted while the task works are issued together and leave
/// in one write. The task ends when the machine is drained: after [`Task::close`], or once the
/// `Task` is dropped (the service closes the machine then as at [`Task::close`], and the task
/// gives up after [`LINGER`]).
pub struct Task<C> {
    commands: mpsc::UnboundedSender<Control<C>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl<C: Send + 'static> Task<C> {
    /// Spawns the task on the current runtime: it runs `machine` against `target` (opening
    /// its first connection at once) for `service`.
    pub fn spawn<S>(machine: S::Machine, target: Target, service: S) -> Task<C>
    where
        S: Service<Command = C>,
    {
        let (commands, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(machine, target, service, rx));
        Task { commands, task: Mutex::new(Some(task)) }
    }

    /// Hands `command` to the service (an error once the task has ended).
    pub fn post(&self, command: C) -> Result<()> {
        self.commands.send(Control::Command(command)).map_err(|_| IoError::ShardGone)
    }

    /// Closes gracefully: the service ends its machine ([`Service::close`]) and the task ends
    /// once the machine is drained; after `wait` it is aborted where it stands.
    pub async fn close(&self, wait: Duration) {
        let _ = self.commands.send(Control::Close);
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(mut task) = task {
            if tokio::time::timeout(wait, &mut task).await.is_err() {
                task.abort();
            }
        }
    }
}

impl<C> std::fmt::Debug for Task<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Task").finish_non_exhaustive()
    }
}

/// How long a task whose `Task` was dropped may take to close its machine gracefully.
pub const LINGER: Duration = Duration::from_secs(5);

/// A byte stream to the server: TCP, or TLS over TCP.
trait Transport: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Transport for T {}

/// Opens the connection `target` describes: TCP (through its SOCKS5 proxy, if any), then TLS
/// if it says so. Also returns what the server sent right after the proxy's reply (a server
/// that speaks first may fill the same segment).
async fn dial(target: &Target) -> std::io::Result<(Box<dyn Transport>, Vec<u8>)> {
    let (tcp, early) = match &target.socks5 {
        None => (TcpStream::connect(target.addr).await?, Vec::new()),
        Some((proxy, auth)) => {
            let mut tcp = TcpStream::connect(proxy).await?;
            let early = socks5(&mut tcp, target.addr, auth.clone()).await?;
            (tcp, early)
        }
    };
    tcp.set_nodelay(true)?;
    let Some((name, tls)) = &target.tls else { return Ok((Box::new(tcp), early)) };
    let name = ServerName::try_from(name.clone())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    Ok((Box::new(tokio_rustls::TlsConnector::from(tls.clone()).connect(name, tcp).await?), early))
}

/// The SOCKS5 CONNECT handshake (zero-core's sans-I/O [`Handshake`]) over `tcp`; returns the
/// bytes after the proxy's reply.
async fn socks5(tcp: &mut TcpStream, to: std::net::SocketAddr, auth: Socks5Auth) -> std::io::Result<Vec<u8>> {
    let refused =
        |e: crate::socks5::Socks5Error| std::io::Error::new(std::io::ErrorKind::ConnectionRefused, e);
    let mut handshake = Handshake::new(Socks5Command::Connect, to.into(), auth).map_err(refused)?;
    let (mut out, mut buf) = (Vec::new(), [0u8; 512]);
    loop {
        handshake.poll_transmit(&mut out);
        if !out.is_empty() {
            tcp.write_all(&out).await?;
            out.clear();
        }
        let n = tcp.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if let Progress::Done { consumed, .. } = handshake.handle_input(&buf[..n]).map_err(refused)? {
            return Ok(buf[consumed..n].to_vec());
        }
    }
}

/// The task: the same duties as the shard [`Driver`](super::Driver), in the same order.
async fn run<S: Service>(
    mut machine: S::Machine,
    target: Target,
    mut service: S,
    mut commands: mpsc::UnboundedReceiver<Control<S::Command>>,
) {
    let mut stream: Option<Box<dyn Transport>> = None;
    let mut buf = vec![0u8; 64 * 1024];
    let mut hung_up = None;
    loop {
        service.serve(&mut machine);
        if machine.poll_close() {
            if let Some(mut s) = stream.take() {
                while let Some(bytes) = machine.poll_transmit() {
                    if s.write_all(bytes).await.is_err() {
                        break;
                    }
                }
                let _ = s.shutdown().await;
                machine.handle_closed(Instant::now(), Closed::Requested);
            }
        }
        if stream.is_none() && machine.wants_connect(Instant::now()) {
            match dial(&target).await {
                Ok((s, early)) => {
                    stream = Some(s);
                    machine.handle_connected(Instant::now());
                    if !early.is_empty() {
                        machine.handle_input(Instant::now(), &early);
                    }
                }
                Err(e) => machine.handle_closed(Instant::now(), Closed::ConnectFailed(e.to_string().into())),
            }
        }
        if let Some(s) = stream.as_mut() {
            while let Some(bytes) = machine.poll_transmit() {
                if let Err(e) = s.write_all(bytes).await {
                    tracing::debug!(%e, "send failed; closing");
                    stream = None;
                    machine.handle_closed(Instant::now(), Closed::SendFailed(e.to_string().into()));
                    break;
                }
            }
        }
        if stream.is_some() && machine.poll_upgrade().is_some() {
            // Never carry on in plaintext when the machine asked for TLS.
            stream = None;
            let why =
                "STARTTLS is not supported on the Tokio runner: use a shard driver, or TLS from the start";
            machine.handle_closed(Instant::now(), Closed::SendFailed(why.into()));
        }
        service.serve(&mut machine);
        if stream.is_none() && machine.is_drained() {
            return;
        }
        let sleep = machine.poll_timeout().map(tokio::time::Instant::from_std);
        tokio::select! {
            read = async { stream.as_mut().expect("guarded").read(&mut buf).await }, if stream.is_some() => {
                match read {
                    Ok(0) => {
                        stream = None;
                        machine.handle_closed(Instant::now(), Closed::Lost(CloseReason::PeerClosed));
                    }
                    Err(e) => {
                        stream = None;
                        machine.handle_closed(Instant::now(), Closed::Lost(lost(&e)));
                    }
                    Ok(n) => machine.handle_input(Instant::now(), &buf[..n]),
                }
            }
            control = commands.recv(), if hung_up.is_none() => {
                let mut next = control;
                while let Some(control) = next.take() {
                    match control {
                        Control::Command(command) => service.command(&mut machine, Instant::now(), command),
                        Control::Close => service.close(&mut machine),
                    }
                    next = commands.try_recv().ok();
                }
                if commands.is_closed() && commands.is_empty() {
                    hung_up = Some(tokio::time::Instant::now() + LINGER);
                    service.close(&mut machine);
                }
            }
            _ = async { tokio::time::sleep_until(sleep.expect("guarded")).await }, if sleep.is_some() => {
                machine.handle_timeout(Instant::now());
            }
            _ = async { tokio::time::sleep_until(hung_up.expect("guarded")).await }, if hung_up.is_some() => {
                tracing::debug!("the machine did not close within the linger time; dropping it");
                return;
            }
        }
    }
}

/// How a read failure ended the connection, in the shard's terms.
fn lost(e: &std::io::Error) -> CloseReason {
    match (e.kind(), e.raw_os_error()) {
        (std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe, _) => CloseReason::Reset,
        (_, Some(errno)) => CloseReason::Error(errno),
        (_, None) => CloseReason::Error(libc::EIO),
    }
}
