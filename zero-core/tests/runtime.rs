//! `ZeroRuntime`: shards driven from Tokio in each mode, with a `tower::Service` behind the
//! async ones, against real sockets.
#![cfg(feature = "tokio")]

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use zero_core::runtime::{serve, Connection, Framing, ZeroRuntime};
use zero_core::{ClusterConfig, Reserved};

/// Lines in, lines out.
struct Lines;

impl Framing for Lines {
    type Request = String;
    type Response = String;

    fn decode(&mut self, buf: &mut Vec<u8>) -> Result<Option<String>, String> {
        let Some(end) = buf.iter().position(|&b| b == b'\n') else {
            return if buf.len() > 1024 { Err("line too long".into()) } else { Ok(None) };
        };
        let line: Vec<u8> = buf.drain(..=end).collect();
        String::from_utf8(line[..end].to_vec()).map(Some).map_err(|e| e.to_string())
    }

    fn encode(&mut self, response: String, out: &mut Vec<u8>) {
        out.extend_from_slice(response.as_bytes());
        out.push(b'\n');
    }
}

/// A service that waits (as a database call would) and answers in capitals.
#[derive(Clone)]
struct SlowUpper;

impl tower_service::Service<String> for SlowUpper {
    type Response = String;
    type Error = std::convert::Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<String, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: String) -> Self::Future {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            Ok(request.to_uppercase())
        })
    }
}

fn port() -> SocketAddr {
    let mut reserved = Reserved::default();
    let addr = reserved.port("127.0.0.1:0".parse().unwrap()).unwrap();
    std::mem::forget(reserved); // held for the test's life, so no one else takes the port
    addr
}

/// `clients` connections, each sending `lines` lines and checking every answer.
async fn clients(addr: SocketAddr, clients: usize, lines: usize) {
    let mut tasks = Vec::new();
    for c in 0..clients {
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            let (read, mut write) = stream.into_split();
            let mut read = BufReader::new(read);
            let mut expected = Vec::new();
            let mut batch = String::new();
            for i in 0..lines {
                batch.push_str(&format!("client {c} line {i}\n"));
                expected.push(format!("CLIENT {c} LINE {i}\n"));
            }
            write.write_all(batch.as_bytes()).await.unwrap(); // pipelined: order must hold
            for want in expected {
                let mut got = String::new();
                tokio::time::timeout(Duration::from_secs(10), read.read_line(&mut got))
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(got, want);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test]
async fn run_async_serves_each_connection_as_a_task_with_a_tower_service() {
    let addr = port();
    let running = ZeroRuntime::new(ClusterConfig::new(2))
        .run_async(addr, |conn: Connection| serve(conn, Lines, SlowUpper))
        .unwrap();
    clients(addr, 20, 30).await;
    let stopper = running.stopper();
    tokio::task::spawn_blocking(move || stopper.shutdown(Duration::from_secs(5))).await.unwrap();
    running.join().await.unwrap();
}

#[test]
fn run_per_core_serves_local_tasks_on_the_shards_threads() {
    let addr = port();
    let running = ZeroRuntime::new(ClusterConfig::new(2))
        .run_per_core(addr, |conn: Connection| async move {
            // Not Send: this task never leaves its shard's thread.
            let here = Rc::new(std::thread::current().id());
            let thread = *here;
            serve(conn, Lines, SlowUpper).await;
            assert_eq!(thread, std::thread::current().id());
        })
        .unwrap();
    let client = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    client.block_on(clients(addr, 20, 30));
    running.stopper().shutdown(Duration::from_secs(5));
    client.block_on(running.join()).unwrap();
}

#[tokio::test]
async fn run_sync_runs_inline_handlers_and_joins_without_blocking() {
    let addr = port();
    let running = ZeroRuntime::new(ClusterConfig::new(2))
        .run_sync(move |_, io| {
            let mut opts = zero_core::ListenOptions::default();
            opts.reuse_port = true;
            io.tcp_listen_with(addr, &opts)?;
            Ok(zero_core::echo::Echo::default())
        })
        .unwrap();
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"inline\n").await.unwrap();
    let mut line = String::new();
    BufReader::new(&mut s).read_line(&mut line).await.unwrap();
    assert_eq!(line, "inline\n");
    drop(s);
    let stopper = running.stopper();
    tokio::task::spawn_blocking(move || stopper.shutdown(Duration::from_secs(5))).await.unwrap();
    running.join().await.unwrap();
}
