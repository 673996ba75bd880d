//! The blocking and Tokio clients against a real redis-server.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::RedisServer;
use zero_redis::client::{BlockingClient, ClientConfig, Commands, Protocol, SubKind};
use zero_redis::{cmd, Error, Pipeline, Value};

fn connect(server: &RedisServer, config: ClientConfig) -> BlockingClient {
    BlockingClient::connect(server.target(), config).unwrap()
}

#[test]
fn typed_commands_over_resp3_and_resp2() {
    let server = RedisServer::start();
    for protocol in [Protocol::Resp3, Protocol::Resp2] {
        let c = connect(&server, ClientConfig { protocol, ..server.config() });
        assert_eq!(c.protocol(), protocol);
        let _: () = c.flushdb().unwrap();
        let _: () = c.set("k", "v").unwrap();
        assert_eq!(c.get::<String>("k").unwrap(), "v");
        assert_eq!(c.get::<Option<String>>("missing").unwrap(), None);
        assert_eq!(c.incr::<i64>("n").unwrap(), 1);
        assert_eq!(c.incr_by::<i64>("n", 41).unwrap(), 42);
        let _: u64 = c.hset_multiple("h", &[("a", "1"), ("b", "2")][..]).unwrap();
        let h: HashMap<String, i64> = c.hgetall("h").unwrap();
        assert_eq!(h, HashMap::from([("a".into(), 1), ("b".into(), 2)]));
        assert!(c.hexists::<bool>("h", "a").unwrap());
        let _: u64 = c.rpush("l", &["x", "y", "z"][..]).unwrap();
        assert_eq!(c.lrange::<Vec<String>>("l", 0, -1).unwrap(), ["x", "y", "z"]);
        let _: u64 = c.zadd("z", 1.5, "m").unwrap();
        assert_eq!(c.zscore::<f64>("z", "m").unwrap(), 1.5);
        let pairs: Vec<(String, f64)> = c.zrange_withscores("z", 0, -1).unwrap();
        assert_eq!(pairs, [("m".to_string(), 1.5)]);
        let sha: String = c.script_load("return ARGV[1]").unwrap();
        assert_eq!(c.evalsha::<String>(&sha, &[], "hi").unwrap(), "hi");
        let e = c.query::<()>(cmd("LPUSH").arg("k").arg("x")).unwrap_err();
        assert!(matches!(&e, Error::Server(s) if s.code() == "WRONGTYPE"), "{e}");
        let e = c.get::<i64>("k").unwrap_err();
        assert!(e.to_string().contains("into i64"), "{e}");
    }
}

#[test]
fn every_resp3_type_through_debug_protocol() {
    let server = RedisServer::start();
    let c = connect(&server, server.config());
    let ask = |t: &str| c.query::<Value>(cmd("DEBUG").arg("PROTOCOL").arg(t)).unwrap();
    assert!(matches!(ask("string"), Value::Bulk(_)));
    assert_eq!(ask("integer"), Value::Integer(12345));
    assert_eq!(ask("double"), Value::Double("3.141".parse().unwrap()), "DEBUG PROTOCOL double is 3.141");
    assert_eq!(ask("null"), Value::Null);
    assert_eq!(ask("true"), Value::Boolean(true));
    assert!(matches!(ask("bignum"), Value::BigNumber(_)));
    assert!(matches!(ask("map"), Value::Map(m) if m.len() == 3));
    assert!(matches!(ask("set"), Value::Set(s) if s.len() == 3));
    assert!(matches!(ask("verbatim"), Value::Verbatim { format, .. } if &format == b"txt"));
    // An attribute travels with its value; conversions look through it.
    assert!(matches!(ask("attrib"), Value::Attribute { .. }));
}

#[test]
fn acl_users_authenticate_and_bad_passwords_are_refused() {
    let server = RedisServer::start();
    let admin = connect(&server, server.config());
    let _: () = admin
        .query(cmd("ACL").arg("SETUSER").arg("app").arg("on").arg(">s3cret").arg("~*").arg("+@all"))
        .unwrap();
    for protocol in [Protocol::Resp3, Protocol::Resp2] {
        let config = ClientConfig {
            protocol,
            username: Some("app".into()),
            password: Some("s3cret".into()),
            client_name: Some("zero-test".into()),
            database: 3,
            ..server.config()
        };
        let c = connect(&server, config);
        assert_eq!(c.query::<String>(cmd("ACL").arg("WHOAMI")).unwrap(), "app");
        assert_eq!(c.query::<String>(cmd("CLIENT").arg("GETNAME")).unwrap(), "zero-test");
        let info: String = c.query(cmd("CLIENT").arg("INFO")).unwrap();
        assert!(info.contains(" db=3 "), "{info}");
        let config = ClientConfig {
            protocol,
            username: Some("app".into()),
            password: Some("wrong".into()),
            ..server.config()
        };
        match BlockingClient::connect(server.target(), config) {
            Err(Error::Connect(e)) => assert!(e.contains("WRONGPASS"), "{e}"),
            Err(other) => panic!("{other}"),
            Ok(_) => panic!("a wrong password was accepted"),
        }
    }
}

#[test]
fn pipelines_and_transactions() {
    let server = RedisServer::start();
    let c = connect(&server, server.config());
    let p = Pipeline::new()
        .with(cmd("SET").arg("a").arg("1"))
        .with(cmd("INCR").arg("a"))
        .with(cmd("GET").arg("a"));
    let (ok, n, a): (String, i64, String) = c.pipeline(&p).unwrap();
    assert_eq!((ok.as_str(), n, a.as_str()), ("OK", 2, "2"));
    let t = Pipeline::new().with(cmd("INCR").arg("a")).with(cmd("INCR").arg("a")).atomic();
    assert_eq!(c.pipeline::<Vec<i64>>(&t).unwrap(), [3, 4]);

    // WATCH: a change by another client aborts the transaction (EXEC replies nil).
    let other = connect(&server, server.config());
    let _: () = c.query(cmd("WATCH").arg("a")).unwrap();
    let _: () = other.set("a", "changed").unwrap();
    let aborted: Option<Vec<i64>> = c.pipeline(&Pipeline::new().with(cmd("INCR").arg("a")).atomic()).unwrap();
    assert_eq!(aborted, None);
    // A command the server rejects while queueing aborts the whole transaction.
    let bad = Pipeline::new().with(cmd("INCR").arg("a")).with(cmd("SET").arg("only-key")).atomic();
    let e = c.pipeline::<Value>(&bad).unwrap_err();
    assert!(matches!(&e, Error::Server(s) if s.code() == "EXECABORT"), "{e}");
}

#[test]
fn pubsub_on_the_command_connection() {
    let server = RedisServer::start();
    let sub = connect(&server, server.config());
    let publisher = connect(&server, server.config());
    sub.subscribe(SubKind::Channel, &["news", "sport"]).unwrap();
    sub.subscribe(SubKind::Pattern, &["log.*"]).unwrap();
    // Commands still work on the subscribed RESP3 connection.
    assert_eq!(sub.query::<String>(cmd("ECHO").arg("still here")).unwrap(), "still here");
    assert_eq!(publisher.publish::<u64>("news", "hello").unwrap(), 1);
    assert_eq!(publisher.publish::<u64>("log.disk", "full").unwrap(), 1);
    let m = sub.recv(Some(Duration::from_secs(5))).unwrap();
    assert_eq!((&m.channel[..], &m.payload[..]), (&b"news"[..], &b"hello"[..]));
    let m = sub.recv(Some(Duration::from_secs(5))).unwrap();
    assert_eq!((m.pattern.as_deref(), &m.channel[..]), (Some(&b"log.*"[..]), &b"log.disk"[..]));
    sub.unsubscribe(SubKind::Channel, &["news"]).unwrap();
    assert_eq!(publisher.publish::<u64>("news", "again").unwrap(), 0);
}

/// Publishes until someone is listening (a restored subscription takes a moment).
fn publish_until_heard(publisher: &BlockingClient, channel: &str, payload: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while publisher.publish::<u64>(channel, payload).unwrap() == 0 {
        assert!(Instant::now() < deadline, "nobody subscribed to {channel} again");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn client_kill_loses_nothing_and_subscriptions_come_back() {
    let server = RedisServer::start();
    let c = connect(&server, server.config());
    let admin = connect(&server, server.config());
    c.subscribe(SubKind::Channel, &["events"]).unwrap();
    let _: () = c.set("k", "v").unwrap();
    let id: i64 = c.query(cmd("CLIENT").arg("ID")).unwrap();
    let killed: i64 = admin.query(cmd("CLIENT").arg("KILL").arg("ID").arg(id)).unwrap();
    assert_eq!(killed, 1);
    // The next command goes out on a new connection.
    assert_eq!(c.get::<String>("k").unwrap(), "v");
    assert_ne!(c.query::<i64>(cmd("CLIENT").arg("ID")).unwrap(), id);
    publish_until_heard(&admin, "events", "after kill");
    assert_eq!(&c.recv(Some(Duration::from_secs(5))).unwrap().payload[..], b"after kill");
}

#[test]
fn a_server_restart_is_survived() {
    let mut server = RedisServer::start();
    let c = connect(&server, server.config());
    c.subscribe(SubKind::Channel, &["events"]).unwrap();
    server.restart();
    let _: () = c.set("k", "after restart").unwrap();
    assert_eq!(c.get::<String>("k").unwrap(), "after restart");
    let publisher = connect(&server, server.config());
    publish_until_heard(&publisher, "events", "back");
    assert_eq!(&c.recv(Some(Duration::from_secs(5))).unwrap().payload[..], b"back");
}

#[test]
fn a_paused_server_times_commands_out_and_they_never_run_twice() {
    let server = RedisServer::start();
    let config = ClientConfig { command_timeout: Some(Duration::from_millis(300)), ..server.config() };
    let c = connect(&server, config);
    let admin = connect(&server, server.config());
    let sleeper = std::thread::spawn(move || admin.query::<()>(cmd("DEBUG").arg("SLEEP").arg("1")));
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    let e = c.incr::<i64>("counter").unwrap_err();
    assert_eq!(e, Error::Timeout { sent: true });
    assert!(started.elapsed() < Duration::from_millis(900), "timed out after {:?}", started.elapsed());
    sleeper.join().unwrap().unwrap();
    // The abandoned INCR ran once, when the server woke; its late reply was not taken for
    // the next command's.
    assert_eq!(c.get::<i64>("counter").unwrap(), 1);
}

#[test]
fn a_large_value_round_trips() {
    let server = RedisServer::start();
    let c = connect(&server, server.config());
    let value: Vec<u8> = (0..64usize << 20).map(|i| (i % 251) as u8).collect();
    let _: () = c.set("big", &value).unwrap();
    let back: Vec<u8> = c.get("big").unwrap();
    assert!(back == value, "64 MiB value came back different");
}

#[test]
fn urls() {
    let server = RedisServer::start();
    let c = BlockingClient::open(&format!("{}/2?protocol=resp2&name=by-url", server.url())).unwrap();
    assert_eq!(c.protocol(), Protocol::Resp2);
    assert_eq!(c.query::<String>(cmd("CLIENT").arg("GETNAME")).unwrap(), "by-url");
    let refused = BlockingClient::open("redis://127.0.0.1:1");
    assert!(matches!(refused, Err(Error::Connect(_))), "connecting to a closed port must fail");
}

#[test]
fn the_tokio_client_pipelines_concurrent_tasks() {
    use zero_redis::client::tokio::AsyncClient;
    use zero_redis::client::AsyncCommands;
    let server = RedisServer::start();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let c = AsyncClient::connect(server.target(), server.config()).await.unwrap();
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
