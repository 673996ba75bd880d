//! The Redis suite against redis-server, plus client behaviour outside the suite (typed
//! helpers, URLs, the Tokio client).

use std::collections::HashMap;
use std::time::Duration;

use zero_conformance::redis::{self, RedisServer};
use zero_core::machine::Closed;
use zero_redis::client::{BlockingClient, ClientConfig, Commands, Protocol, SubKind, Target};
use zero_redis::{cmd, Error};

#[test]
fn the_suite_passes_against_redis_server() {
    let outcomes = redis::run(None).unwrap();
    let failed = zero_conformance::print_table("zero-redis against redis-server", &outcomes);
    assert_eq!(failed, 0, "{outcomes:#?}");
    assert_eq!(outcomes.len(), 13);
}

fn config() -> ClientConfig {
    ClientConfig { connect_timeout: Duration::from_secs(2), ..ClientConfig::default() }
}

#[test]
fn typed_helpers_over_resp3_and_resp2() {
    let server = RedisServer::start().unwrap();
    for protocol in [Protocol::Resp3, Protocol::Resp2] {
        let c =
            BlockingClient::connect(Target::tcp(server.addr), ClientConfig { protocol, ..config() }).unwrap();
        let _: () = c.flushdb().unwrap();
        let _: () = c.set("k", "v").unwrap();
        assert_eq!(c.get::<String>("k").unwrap(), "v");
        assert_eq!(c.get::<Option<String>>("missing").unwrap(), None);
        assert_eq!(c.incr_by::<i64>("n", 42).unwrap(), 42);
        let _: u64 = c.hset_multiple("h", &[("a", "1"), ("b", "2")][..]).unwrap();
        let h: HashMap<String, i64> = c.hgetall("h").unwrap();
        assert_eq!(h, HashMap::from([("a".into(), 1), ("b".into(), 2)]));
        let _: u64 = c.rpush("l", &["x", "y", "z"][..]).unwrap();
        assert_eq!(c.lrange::<Vec<String>>("l", 0, -1).unwrap(), ["x", "y", "z"]);
        let _: u64 = c.sadd("s", &["a", "b"][..]).unwrap();
        assert_eq!(c.scard::<u64>("s").unwrap(), 2);
        let _: u64 = c.zadd("z", 1.5, "m").unwrap();
        let pairs: Vec<(String, f64)> = c.zrange_withscores("z", 0, -1).unwrap();
        assert_eq!(pairs, [("m".to_string(), 1.5)]);
        let _: bool = c.expire("k", 100).unwrap();
        assert!((1..=100).contains(&c.ttl::<i64>("k").unwrap()));
        let sha: String = c.script_load("return ARGV[1]").unwrap();
        assert_eq!(c.evalsha::<String>(&sha, &[], "hi").unwrap(), "hi");
        let e = c.query::<()>(cmd("LPUSH").arg("k").arg("x")).unwrap_err();
        assert!(matches!(&e, Error::Server(s) if s.code() == "WRONGTYPE"), "{e}");
        let e = c.get::<i64>("k").unwrap_err();
        assert_eq!(e.to_string(), "cannot convert the reply \"v\" into i64");
    }
}

#[test]
fn urls() {
    let server = RedisServer::start().unwrap();
    let c = BlockingClient::open(&format!("redis://{}/2?protocol=resp2&name=by-url", server.addr)).unwrap();
    assert_eq!(c.protocol(), Protocol::Resp2);
    assert_eq!(c.query::<String>(cmd("CLIENT").arg("GETNAME")).unwrap(), "by-url");
    let info: String = c.query(cmd("CLIENT").arg("INFO")).unwrap();
    assert!(info.contains(" db=2 "), "{info}");
    let refused = BlockingClient::open("redis://127.0.0.1:1");
    assert!(
        matches!(refused, Err(Error::Connection(Closed::ConnectFailed(_)))),
        "connecting to a closed port must fail"
    );
}

#[test]
fn the_tokio_client_pipelines_concurrent_tasks() {
    use zero_redis::client::tokio::AsyncClient;
    use zero_redis::client::AsyncCommands;
    let server = RedisServer::start().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let c = AsyncClient::connect(Target::tcp(server.addr), config()).await.unwrap();
        let tasks: Vec<_> = (0..100)
            .map(|i| {
                let c = c.clone();
                tokio::spawn(async move {
                    let _: () = c.set(format!("k{i}"), i as i64).await.unwrap();
                    c.get::<i64>(format!("k{i}")).await.unwrap()
                })
            })
            .collect();
        for (i, t) in tasks.into_iter().enumerate() {
            assert_eq!(t.await.unwrap(), i as i64);
        }
        c.subscribe(SubKind::Channel, &["t"]).await.unwrap();
        let _: u64 = c.publish("t", "x").await.unwrap();
        assert_eq!(&c.recv().await.unwrap().payload[..], b"x");
        c.close().await;
        assert_eq!(c.ping::<String>().await.unwrap_err(), Error::Closed);

        // With the cache on, repeated reads are answered in the task, and a write by another
        // client reaches them.
        let cached = ClientConfig { cache: Some(Default::default()), ..config() };
        let c = AsyncClient::connect(Target::tcp(server.addr), cached).await.unwrap();
        let other = AsyncClient::connect(Target::tcp(server.addr), config()).await.unwrap();
        for _ in 0..10 {
            assert_eq!(c.get::<i64>("k7").await.unwrap(), 7);
        }
        assert_eq!(c.cache().unwrap().stats().hits, 9);
        let _: () = other.set("k7", 70).await.unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while c.get::<i64>("k7").await.unwrap() != 70 {
            assert!(std::time::Instant::now() < deadline, "the invalidation never arrived");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
}

#[test]
fn tls_to_redis_servers_tls_port() {
    struct Kill(std::process::Child, std::path::PathBuf);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
            let _ = std::fs::remove_dir_all(&self.1);
        }
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = std::env::temp_dir().join(format!("zero-redis-tls-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pki = zero_core::tls::SelfSigned::generate(&["localhost"]).unwrap();
    std::fs::write(dir.join("cert.pem"), &pki.cert_pem).unwrap();
    std::fs::write(dir.join("key.pem"), &pki.key_pem).unwrap();
    let child = std::process::Command::new("redis-server")
        .args([
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .args(["--tls-auth-clients", "no", "--loglevel", "warning"])
        .arg("--tls-cert-file")
        .arg(dir.join("cert.pem"))
        .arg("--tls-key-file")
        .arg(dir.join("key.pem"))
        .arg("--tls-ca-cert-file")
        .arg(dir.join("cert.pem"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("redis-server is missing: run scripts/test.sh");
    let _server = Kill(child, dir);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(std::time::Instant::now() < deadline, "redis-server did not open its TLS port");
        std::thread::sleep(Duration::from_millis(20));
    }
    let tls = pki.client().unwrap().build().unwrap();
    let target = Target::tls(addr, "localhost", tls);
    let c = BlockingClient::connect(target, config()).unwrap();
    let _: () = c.set("over", "tls").unwrap();
    assert_eq!(c.get::<String>("over").unwrap(), "tls");
    c.subscribe(SubKind::Channel, &["secure"]).unwrap();
    let _: u64 = c.publish("secure", "hello").unwrap();
    assert_eq!(&c.recv(Some(Duration::from_secs(5))).unwrap().payload[..], b"hello");
    // A client that does not trust the certificate is refused before any command.
    let untrusted =
        zero_core::tls::SelfSigned::generate(&["localhost"]).unwrap().client().unwrap().build().unwrap();
    let refused = BlockingClient::connect(Target::tls(addr, "localhost", untrusted), config());
    assert!(
        matches!(refused, Err(Error::Connection(Closed::ConnectFailed(_)))),
        "an untrusted certificate was accepted"
    );
}
