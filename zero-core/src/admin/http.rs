//! The metrics endpoint: `GET /metrics` (Prometheus' text format), `/healthz` and `/readyz`
//! over plain HTTP/1.1, one request per connection, on a thread of its own.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use super::metrics::Collector;
use super::{health, Health};
use crate::error::{IoError, Result};

/// How long a shard has to answer a scrape.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(2);
/// The largest request head read.
const MAX_HEAD: usize = 8192;

/// Serves `collector`'s shards' metrics on `addr` until the process ends; returns the bound
/// address (port 0 picks one).
pub fn serve_metrics(addr: SocketAddr, collector: Collector) -> Result<SocketAddr> {
    let listener =
        TcpListener::bind(addr).map_err(|e| IoError::sys(format!("metrics listener {addr}"), e))?;
    let bound = listener.local_addr().map_err(|e| IoError::sys("metrics listener address", e))?;
    std::thread::Builder::new()
        .name("zero-metrics".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                if let Err(e) = answer(stream, &collector) {
                    tracing::debug!(error = %e, "metrics request failed");
                }
            }
        })
        .map_err(|e| IoError::sys("spawn the metrics thread", e))?;
    Ok(bound)
}

fn answer(mut stream: TcpStream, collector: &Collector) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf)?;
        if n == 0 || head.len() + n > MAX_HEAD {
            return respond(&mut stream, "400 Bad Request", "text/plain", "bad request\n");
        }
        head.extend_from_slice(&buf[..n]);
    }
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut headers);
    let (method, path) = match request.parse(&head) {
        Ok(httparse::Status::Complete(_)) => (request.method.unwrap_or(""), request.path.unwrap_or("")),
        _ => return respond(&mut stream, "400 Bad Request", "text/plain", "bad request\n"),
    };
    if method != "GET" {
        return respond(&mut stream, "405 Method Not Allowed", "text/plain", "GET only\n");
    }
    match path.split('?').next().unwrap_or("") {
        "/metrics" => {
            let text = collector.prometheus(SCRAPE_TIMEOUT);
            respond(&mut stream, "200 OK", "text/plain; version=0.0.4; charset=utf-8", &text)
        }
        "/healthz" | "/readyz" => {
            let verdict = health(collector, path.starts_with("/readyz"));
            let status = if verdict == Health::Ok { "200 OK" } else { "503 Service Unavailable" };
            respond(&mut stream, status, "text/plain", &format!("{verdict}\n"))
        }
        _ => respond(&mut stream, "404 Not Found", "text/plain", "try /metrics, /healthz or /readyz\n"),
    }
}

fn respond(stream: &mut TcpStream, status: &str, content_type: &str, body: &str) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())
}
