//! The Redis suite against redis-server, plus client behaviour outside the suite (typed
//! helpers, URLs, the Tokio client).

use std::collections::HashMap;
use std::time::Duration;

use zero_conformance::redis::{self, RedisServer};
use zero_redis::client::{BlockingClient, ClientConfig, Commands, Protocol, SubKind, Target};
use zero_redis::{cmd, Error};

#[test]
fn the_suite_passes_against_redis_server() {
    let outcomes = redis::run(None).unwrap();
    let failed = zero_conformance::print_table("zero-redis against redis-server", &outcomes);
    assert_eq!(failed, 0, "{outcomes:#?}");
    assert_eq!(outcomes.len(), 12);
}

fn config() -> ClientConfig {
    ClientConfig { connect_timeout: Duration::from_secs(2), ..ClientConfig::default() }
}

#[test]
fn typed_helpers_over_resp3_and_resp2() {
    let server = RedisServer::start().unwrap();
    for protocol in [Protocol::Resp3, Protocol::Resp2] {
        let c = BlockingClient::connect(
            Target { addr: server.addr, tls: None },
            ClientConfig { protocol, ..config() },
        )
        .unwrap();
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
    assert!(matches!(refused, Err(Error::Connect(_))), "connecting to a closed port must fail");
}

#[test]
fn the_tokio_client_pipelines_concurrent_tasks() {
    use zero_redis::client::tokio::AsyncClient;
    use zero_redis::client::AsyncCommands;
    let server = RedisServer::start().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let c = AsyncClient::connect(Target { addr: server.addr, tls: None }, config()).await.unwrap();
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
    });
}
