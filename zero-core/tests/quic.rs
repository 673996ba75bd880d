//! QUIC against quinn (Tokio), both ways: zero's echo endpoint serves a quinn client (streams
//! both ways, unidirectional streams, datagrams, a 1 MB echo under flow control, migration,
//! garbage, a drain), and a zero client talks to a quinn echo server (streams, datagrams,
//! 0-RTT on resumption).

mod common;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use common::{run_until, Server};
use zero_core::echo::Echo;
use zero_core::quic::{self, Dir, QuicEvent, QuicId, StreamId};
use zero_core::tls::SelfSigned;
use zero_core::{Config, Event, Handler, Io, Ops, Stopper};

fn pki() -> SelfSigned {
    SelfSigned::generate(&["localhost"]).unwrap()
}

fn server_config(pki: &SelfSigned) -> Arc<quic::proto::ServerConfig> {
    let (tls, _) = pki.server().unwrap().build().unwrap();
    quic::server_config(&tls, true).unwrap()
}

fn client_config(pki: &SelfSigned) -> quic::proto::ClientConfig {
    quic::client_config(&pki.client().unwrap().build().unwrap()).unwrap()
}

/// Echo, plus what a test wants to know about the QUIC events it saw.
#[derive(Default)]
struct Watched {
    echo: Echo,
    migrated: Vec<SocketAddr>,
}

impl Handler for Watched {
    fn on_event(&mut self, ops: &mut Ops, event: Event<'_>) {
        if let Event::Quic(QuicEvent::Migrated { remote, .. }) = &event {
            self.migrated.push(*remote);
        }
        self.echo.on_event(ops, event);
    }

    fn on_drain(&mut self, ops: &mut Ops) {
        self.echo.on_drain(ops);
    }
}

fn zero_echo(pki: &SelfSigned) -> Server<Watched> {
    zero_echo_with(server_config(pki))
}

fn zero_echo_with(server: Arc<quic::proto::ServerConfig>) -> Server<Watched> {
    Server::spawn(Echo::config(), move |io| {
        let udp = io.quic_bind("127.0.0.1:0".parse().unwrap(), Some(server)).unwrap();
        (Watched::default(), io.udp_addr(udp).unwrap())
    })
}

fn tokio() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn quinn_client(pki: &SelfSigned) -> quinn::Endpoint {
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    endpoint.set_default_client_config(client_config(pki));
    endpoint
}

/// Bytes no two offsets of which are alike for long.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

async fn echo_bi(conn: &quinn::Connection, data: Vec<u8>) -> Vec<u8> {
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    let writer = tokio::spawn(async move {
        send.write_all(&data).await.unwrap();
        send.finish().unwrap();
    });
    let got = recv.read_to_end(64 << 20).await.unwrap();
    writer.await.unwrap();
    got
}

#[test]
fn a_quinn_client_is_echoed_on_streams_and_datagrams() {
    let pki = pki();
    let server = zero_echo(&pki);
    let addr = server.addr;
    tokio().block_on(async {
        let endpoint = quinn_client(&pki);
        let conn = endpoint.connect(addr, "localhost").unwrap().await.unwrap();

        // One large stream: more than the windows, so flow control and the echo's queue work.
        let big = pattern(1 << 20);
        assert!(echo_bi(&conn, big.clone()).await == big, "1 MB echoed intact");

        // Many small streams at once.
        let mut tasks = Vec::new();
        for i in 0..20u8 {
            let conn = conn.clone();
            tasks.push(tokio::spawn(async move { (i, echo_bi(&conn, vec![i; 1000 + i as usize]).await) }));
        }
        for t in tasks {
            let (i, got) = t.await.unwrap();
            assert_eq!(got, vec![i; 1000 + i as usize]);
        }

        // A unidirectional stream comes back on one of the server's.
        let mut uni = conn.open_uni().await.unwrap();
        uni.write_all(b"one way, then back").await.unwrap();
        uni.finish().unwrap();
        let mut back = conn.accept_uni().await.unwrap();
        assert_eq!(back.read_to_end(1024).await.unwrap(), b"one way, then back");

        // Datagrams (RFC 9221) come back as datagrams.
        conn.send_datagram(bytes::Bytes::from_static(b"ping")).unwrap();
        let d = tokio::time::timeout(Duration::from_secs(5), conn.read_datagram()).await.unwrap().unwrap();
        assert_eq!(&d[..], b"ping");

        conn.close(0u32.into(), b"done");
        endpoint.wait_idle().await;
    });
    let watched = server.stop();
    assert_eq!(watched.echo.accepted, 1);
    assert!(watched.echo.bytes >= (1 << 20) + 20 * 1000 + 4);
}

#[test]
fn resets_stops_and_hundreds_of_connections_leave_nothing_behind() {
    let pki = pki();
    // A connection whose peer's CONNECTION_CLOSE was lost (a burst can overflow a loopback
    // socket buffer) lives until its idle timeout: 2 s here, not quinn's 30.
    let mut config = (*server_config(&pki)).clone();
    let mut transport = quic::proto::TransportConfig::default();
    transport.max_idle_timeout(Some(Duration::from_secs(2).try_into().unwrap()));
    config.transport_config(Arc::new(transport));
    let server = zero_echo_with(Arc::new(config));
    let addr = server.addr;
    let collector = zero_core::admin::Collector::new(vec![server.handle.clone()]);
    let quic_connections =
        || collector.collect(Duration::from_secs(5))[0].as_ref().and_then(|m| m.get("zero_quic_connections"));
    tokio().block_on(async {
        let endpoint = quinn_client(&pki);
        let conn = endpoint.connect(addr, "localhost").unwrap().await.unwrap();

        // The client abandons a stream halfway: the echo stops, the connection goes on.
        let (mut send, mut recv) = conn.open_bi().await.unwrap();
        send.write_all(&pattern(5000)).await.unwrap();
        let mut first = vec![0u8; 5000];
        recv.read_exact(&mut first).await.unwrap();
        send.reset(7u32.into()).unwrap();
        // The client stops reading a stream the server is still echoing into.
        let (mut send2, mut recv2) = conn.open_bi().await.unwrap();
        send2.write_all(b"then stop").await.unwrap();
        let mut some = [0u8; 4];
        recv2.read_exact(&mut some).await.unwrap();
        recv2.stop(9u32.into()).unwrap();
        send2.write_all(&pattern(100_000)).await.ok();
        let _ = send2.finish();
        assert_eq!(echo_bi(&conn, b"still serving".to_vec()).await, b"still serving");
        conn.close(0u32.into(), b"");

        // Two hundred connections at once, each with a stream and a datagram.
        let mut tasks = Vec::new();
        for i in 0..200usize {
            let endpoint = endpoint.clone();
            tasks.push(tokio::spawn(async move {
                let conn = endpoint.connect(addr, "localhost").unwrap().await.unwrap();
                let data = pattern(1000 + i);
                assert!(echo_bi(&conn, data.clone()).await == data);
                conn.close(0u32.into(), b"");
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        endpoint.wait_idle().await;
    });
    // Closed connections drain (three probe timeouts) and are gone: nothing leaks.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while quic_connections() != Some(0.0) {
        assert!(std::time::Instant::now() < deadline, "still {:?} QUIC connections", quic_connections());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(server.stop().echo.accepted, 201);
}

#[test]
fn a_migrating_client_is_followed_and_reported() {
    let pki = pki();
    let server = zero_echo(&pki);
    let addr = server.addr;
    let new_addr = tokio().block_on(async {
        let endpoint = quinn_client(&pki);
        let conn = endpoint.connect(addr, "localhost").unwrap().await.unwrap();
        assert_eq!(echo_bi(&conn, b"before".to_vec()).await, b"before");
        // A new socket: to the server, the client's address changed mid-connection.
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let new_addr = socket.local_addr().unwrap();
        endpoint.rebind(socket).unwrap();
        assert_eq!(echo_bi(&conn, b"after".to_vec()).await, b"after");
        conn.close(0u32.into(), b"");
        endpoint.wait_idle().await;
        new_addr
    });
    let watched = server.stop();
    assert_eq!(watched.migrated, vec![new_addr]);
}

#[test]
fn garbage_datagrams_are_ignored_and_service_goes_on() {
    let pki = pki();
    let server = zero_echo(&pki);
    let junk = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for len in [0usize, 1, 5, 20, 40, 1200, 1500, 9000] {
        for _ in 0..10 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            junk.send_to(&bytes, server.addr).unwrap();
        }
    }
    // A long-header Initial with garbage after it, and a short header for no connection.
    let mut initial = vec![0xc0, 0, 0, 0, 1, 8];
    initial.extend([7; 1200]);
    junk.send_to(&initial, server.addr).unwrap();
    junk.send_to(&[0x40; 60], server.addr).unwrap();
    let addr = server.addr;
    tokio().block_on(async {
        let endpoint = quinn_client(&pki);
        let conn = endpoint.connect(addr, "localhost").unwrap().await.unwrap();
        assert_eq!(echo_bi(&conn, b"still here".to_vec()).await, b"still here");
        conn.close(0u32.into(), b"");
        endpoint.wait_idle().await;
    });
    assert_eq!(server.stop().echo.accepted, 1);
}

#[test]
fn a_drain_closes_quic_connections_with_a_goodbye() {
    let pki = pki();
    let server = zero_echo(&pki);
    let addr = server.addr;
    let stopper = Stopper::new(vec![server.handle.clone()]);
    tokio().block_on(async {
        let endpoint = quinn_client(&pki);
        let conn = endpoint.connect(addr, "localhost").unwrap().await.unwrap();
        assert_eq!(echo_bi(&conn, b"hello".to_vec()).await, b"hello");
        let drained = std::thread::spawn(move || stopper.shutdown(Duration::from_secs(5)));
        let reason = tokio::time::timeout(Duration::from_secs(5), conn.closed()).await.unwrap();
        match reason {
            quinn::ConnectionError::ApplicationClosed(close) => {
                assert_eq!(&close.reason[..], b"shutting down")
            }
            other => panic!("expected the server's goodbye, got {other}"),
        }
        assert_eq!(drained.join().unwrap(), 1, "the shard drained (its endpoint closed) in time");
    });
}

#[test]
fn every_shard_of_a_cluster_serves_quic_and_datagrams_find_their_shard() {
    let pki = pki();
    let server = server_config(&pki);
    let shards = 2;
    let group = quic::QuicGroup::new("127.0.0.1:0".parse().unwrap(), shards).unwrap();
    let (addr_tx, addr_rx) = mpsc::channel();
    let mut config = zero_core::ClusterConfig::new(shards);
    config.io = Echo::config();
    let cluster = zero_core::IoCluster::start(config, move |shard, io| {
        let udp = group.bind(shard, io, Some(server.clone()))?;
        addr_tx.send(io.udp_addr(udp)?).unwrap();
        Ok(Echo::default())
    })
    .unwrap();
    let addrs: Vec<SocketAddr> = (0..shards).map(|_| addr_rx.recv().unwrap()).collect();
    assert_eq!(addrs[0], addrs[1], "one port for the group");
    let collector = cluster.collector();
    tokio().block_on(async {
        // Connections from many client sockets (and so many source ports and first ids): were
        // a datagram steered to the wrong shard, its connection would fail.
        let mut endpoints = Vec::new();
        let mut conns = Vec::new();
        for _ in 0..16 {
            let endpoint = quinn_client(&pki);
            let conn = endpoint.connect(addrs[0], "localhost").unwrap().await.unwrap();
            endpoints.push(endpoint);
            conns.push(conn);
        }
        for (i, conn) in conns.iter().enumerate() {
            let data = pattern(20_000 + i);
            assert!(echo_bi(conn, data.clone()).await == data, "connection {i} echoed");
        }
        let per_shard: Vec<f64> = collector
            .collect(Duration::from_secs(5))
            .into_iter()
            .map(|m| m.and_then(|m| m.get("zero_quic_connections")).unwrap_or(0.0))
            .collect();
        assert_eq!(per_shard.iter().sum::<f64>(), 16.0, "{per_shard:?}");
        assert!(per_shard.iter().all(|&n| n > 0.0), "both shards serve: {per_shard:?}");
        // One migrates: its datagrams still find their shard.
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        endpoints[0].rebind(socket).unwrap();
        assert_eq!(echo_bi(&conns[0], b"moved".to_vec()).await, b"moved");
        for (conn, endpoint) in conns.iter().zip(&endpoints) {
            conn.close(0u32.into(), b"");
            endpoint.wait_idle().await;
        }
    });
    cluster.shutdown(Duration::from_secs(5)).unwrap();
}

/// What a zero QUIC client saw.
#[derive(Default)]
struct Client {
    connected: HashMap<QuicId, Option<bool>>,
    failed: Vec<String>,
    data: HashMap<(QuicId, StreamId), Vec<u8>>,
    finished: HashSet<(QuicId, StreamId)>,
    datagrams: Vec<Vec<u8>>,
    closed: Vec<QuicId>,
}

impl Handler for Client {
    fn on_event(&mut self, _ops: &mut Ops, event: Event<'_>) {
        let Event::Quic(event) = event else { return };
        match event {
            QuicEvent::Connected { conn, zero_rtt } => drop(self.connected.insert(conn, zero_rtt)),
            QuicEvent::ConnectFailed { reason, .. } => self.failed.push(reason.to_string()),
            QuicEvent::Data { conn, stream, data } => {
                self.data.entry((conn, stream)).or_default().extend_from_slice(&data)
            }
            QuicEvent::Finished { conn, stream } => drop(self.finished.insert((conn, stream))),
            QuicEvent::Datagram { data, .. } => self.datagrams.push(data.to_vec()),
            QuicEvent::Closed { conn, .. } => self.closed.push(conn),
            _ => {}
        }
    }
}

/// A quinn echo server on its own thread: streams echoed on themselves, datagrams as
/// datagrams; 0-RTT accepted.
fn quinn_echo(pki: &SelfSigned) -> SocketAddr {
    let config = server_config(pki);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        tokio().block_on(async move {
            let endpoint =
                quinn::Endpoint::server((*config).clone(), "127.0.0.1:0".parse().unwrap()).unwrap();
            tx.send(endpoint.local_addr().unwrap()).unwrap();
            while let Some(incoming) = endpoint.accept().await {
                tokio::spawn(async move {
                    let conn = match incoming.accept().unwrap().into_0rtt() {
                        Ok((conn, _)) => conn,
                        Err(connecting) => connecting.await.unwrap(),
                    };
                    loop {
                        tokio::select! {
                            stream = conn.accept_bi() => {
                                let Ok((mut send, mut recv)) = stream else { return };
                                tokio::spawn(async move {
                                    while let Some(chunk) = recv.read_chunk(usize::MAX, true).await.unwrap() {
                                        send.write_all(&chunk.bytes).await.unwrap();
                                    }
                                    send.finish().unwrap();
                                });
                            }
                            datagram = conn.read_datagram() => {
                                let Ok(datagram) = datagram else { return };
                                conn.send_datagram(datagram).unwrap();
                            }
                        }
                    }
                });
            }
        })
    });
    rx.recv_timeout(Duration::from_secs(10)).unwrap()
}

#[test]
fn a_zero_client_talks_to_quinn_and_resumes_with_0rtt() {
    let pki = pki();
    let server = quinn_echo(&pki);
    let config = client_config(&pki);
    let mut io = Io::new(Config::default()).unwrap();
    let endpoint = io.quic_bind("127.0.0.1:0".parse().unwrap(), None).unwrap();
    let mut client = Client::default();
    let limit = Duration::from_secs(10);

    // A full handshake first.
    let first = io.quic_connect(endpoint, server, "localhost", config.clone()).unwrap();
    run_until(&mut io, &mut client, limit, |c| c.connected.contains_key(&first) || !c.failed.is_empty());
    assert_eq!(client.connected[&first], None, "no 0-RTT without a session to resume: {:?}", client.failed);
    let data = pattern(300_000);
    let stream = io.quic_open(first, Dir::Bi).unwrap();
    io.quic_send(first, stream, &data).unwrap();
    io.quic_finish(first, stream).unwrap();
    run_until(&mut io, &mut client, limit, |c| c.finished.contains(&(first, stream)));
    assert!(client.data[&(first, stream)] == data, "300 KB echoed intact");
    // Datagrams are unreliable (one sent beside the bulk above can be lost to a full socket
    // buffer): send until one comes back, as their users do.
    for _ in 0..10 {
        io.quic_send_datagram(first, b"dgram").unwrap();
        let t0 = std::time::Instant::now();
        while client.datagrams.is_empty() && t0.elapsed() < Duration::from_millis(500) {
            io.run_once(&mut client, Some(Duration::from_millis(20))).unwrap();
        }
        if !client.datagrams.is_empty() {
            break;
        }
    }
    assert_eq!(client.datagrams, vec![b"dgram".to_vec()]);

    // Resumed: the stream is opened and sent on before the handshake is done, as 0-RTT.
    let second = io.quic_connect(endpoint, server, "localhost", config).unwrap();
    let early = io.quic_open(second, Dir::Bi).expect("0-RTT keys and the remembered stream limits");
    io.quic_send(second, early, b"early data").unwrap();
    io.quic_finish(second, early).unwrap();
    run_until(&mut io, &mut client, limit, |c| c.finished.contains(&(second, early)));
    assert_eq!(client.connected[&second], Some(true), "the server took the 0-RTT data");
    assert_eq!(client.data[&(second, early)], b"early data");

    io.quic_close(first, 0u32.into(), b"bye").unwrap();
    io.quic_close(second, 0u32.into(), b"bye").unwrap();
    run_until(&mut io, &mut client, limit, |c| c.closed.len() == 2);
    assert!(matches!(io.quic_open(first, Dir::Bi), Err(zero_core::IoError::Stale(_))));
}
