//! The checks. Each talks to the server with zero-redis's blocking client and says what the
//! client got wrong, if anything.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use zero_redis::client::{BlockingClient, ClientConfig, Commands, Protocol, SubKind, Target};
use zero_redis::{cmd, Error, Pipeline, Value};

use super::Server;
use crate::Outcome;

type Check = fn(&mut Server) -> Result<(), String>;

/// Whether a reply has the shape a check expects.
type Shape = fn(&Value) -> bool;

const CHECKS: &[(&str, &str, Check)] = &[
    ("resp3-types", "every RESP3 type (DEBUG PROTOCOL) decodes", resp3_types),
    ("resp2", "RESP2 when configured; replies convert alike", resp2),
    ("acl-auth", "AUTH user+password; WRONGPASS, NOPERM surface", acl_auth),
    ("pubsub-channels", "SUBSCRIBE: RESP3 shared, RESP2 own connection", pubsub_channels),
    ("pubsub-patterns", "PSUBSCRIBE matches globs only", pubsub_patterns),
    ("pubsub-shard", "SSUBSCRIBE / SPUBLISH", pubsub_shard),
    ("invalidation", "CLIENT TRACKING invalidation pushes", invalidation),
    ("client-cache", "cached reads: hits, invalidations, writes", client_cache),
    ("multi-exec", "MULTI/EXEC, WATCH abort, EXECABORT", multi_exec),
    ("reconnect-kill", "CLIENT KILL: no command lost or run twice", reconnect_kill),
    ("reconnect-restart", "server restart: commands, subscriptions back", reconnect_restart),
    ("timeout", "DEBUG SLEEP: timeout on time, late reply dropped", timeout),
    ("value-512mib", "a 512 MiB value round-trips", value_512mib),
];

/// Runs the checks (the restart check only on the suite's own server).
pub fn run(server: &mut Server, only: Option<&str>) -> Vec<Outcome> {
    let managed = server.managed.is_some();
    CHECKS
        .iter()
        .filter(|(name, ..)| only.is_none_or(|o| name.contains(o)))
        .filter(|(name, ..)| managed || *name != "reconnect-restart")
        .map(|(name, rule, check)| Outcome {
            name,
            rule,
            failure: check(server).err().map(|e| explained(server, e)),
        })
        .collect()
}

/// A failure with what the suite's own server logged, if anything: a lost connection is often
/// the server's doing (a full disk under `appendfsync always` makes it exit).
fn explained(server: &Server, failure: String) -> String {
    match server.managed.as_ref().map(|s| s.log_tail()).filter(|t| !t.is_empty()) {
        Some(log) => format!("{failure} (redis-server logged: {log})"),
        None => failure,
    }
}

fn config(_: &Server) -> ClientConfig {
    ClientConfig {
        connect_timeout: Duration::from_secs(2),
        command_timeout: Some(Duration::from_secs(20)),
        ..ClientConfig::default()
    }
}

fn connect(server: &Server, config: ClientConfig) -> Result<BlockingClient, String> {
    BlockingClient::connect(Target::tcp(server.addr), config).map_err(|e| e.to_string())
}

fn client(server: &Server) -> Result<BlockingClient, String> {
    connect(server, config(server))
}

/// `Err(what)` unless `ok`.
fn ensure(ok: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(what())
    }
}

fn query<T: zero_redis::FromValue>(c: &BlockingClient, command: zero_redis::Cmd) -> Result<T, String> {
    c.query(command).map_err(|e| e.to_string())
}

fn resp3_types(server: &mut Server) -> Result<(), String> {
    let c = client(server)?;
    ensure(c.protocol() == Protocol::Resp3, || "HELLO 3 was not negotiated".into())?;
    let expect: &[(&str, Shape)] = &[
        ("string", |v| matches!(v, Value::Bulk(_))),
        ("integer", |v| *v == Value::Integer(12345)),
        ("double", |v| matches!(v, Value::Double(d) if d.to_string() == "3.141")),
        ("bignum", |v| matches!(v, Value::BigNumber(n) if n.len() > 19)),
        ("null", |v| *v == Value::Null),
        ("array", |v| matches!(v, Value::Array(a) if a.len() == 3)),
        ("set", |v| matches!(v, Value::Set(s) if s.len() == 3)),
        ("map", |v| matches!(v, Value::Map(m) if m.len() == 3)),
        ("attrib", |v| matches!(v, Value::Attribute { .. })),
        ("push", |v| matches!(v, Value::Simple(_) | Value::Bulk(_))),
        ("verbatim", |v| matches!(v, Value::Verbatim { format, .. } if format == b"txt")),
        ("true", |v| *v == Value::Boolean(true)),
        ("false", |v| *v == Value::Boolean(false)),
    ];
    for (kind, ok) in expect {
        let v: Value = query(&c, cmd("DEBUG").arg("PROTOCOL").arg(*kind))?;
        ensure(ok(&v), || format!("DEBUG PROTOCOL {kind} decoded as {v:?}"))?;
    }
    // `push` sends a push frame ahead of its reply; it must not be taken for the reply.
    let push = c.recv_push(Duration::from_secs(2));
    ensure(matches!(push, Some(Value::Push(_))), || format!("DEBUG PROTOCOL push: no push frame ({push:?})"))
}

fn resp2(server: &mut Server) -> Result<(), String> {
    for protocol in [Protocol::Resp2, Protocol::Resp3] {
        let c = connect(server, ClientConfig { protocol, ..config(server) })?;
        let info: String = query(&c, cmd("CLIENT").arg("INFO"))?;
        let want = if protocol == Protocol::Resp2 { "resp=2" } else { "resp=3" };
        ensure(info.contains(want), || format!("CLIENT INFO says {info:?}, wanted {want}"))?;
        let _: () = query(&c, cmd("HSET").arg("conf:h").arg(&[("a", "1"), ("b", "2")][..]))?;
        let h: HashMap<String, i64> = query(&c, cmd("HGETALL").arg("conf:h"))?;
        ensure(h == HashMap::from([("a".into(), 1), ("b".into(), 2)]), || {
            format!("HGETALL over {protocol:?}: {h:?}")
        })?;
        let b: bool = query(&c, cmd("HEXISTS").arg("conf:h").arg("a"))?;
        ensure(b, || format!("HEXISTS over {protocol:?} was false"))?;
    }
    Ok(())
}

fn acl_auth(server: &mut Server) -> Result<(), String> {
    let admin = client(server)?;
    let _: () = query(
        &admin,
        cmd("ACL")
            .arg("SETUSER")
            .arg("conf-app")
            .arg("reset")
            .arg("on")
            .arg(">s3cret")
            .arg("~*")
            .arg("+@all"),
    )?;
    let _: () = query(
        &admin,
        cmd("ACL")
            .arg("SETUSER")
            .arg("conf-ro")
            .arg("reset")
            .arg("on")
            .arg(">ro")
            .arg("~*")
            .arg("+get")
            .arg("+hello"),
    )?;
    let result = (|| {
        for protocol in [Protocol::Resp3, Protocol::Resp2] {
            let user = |name: &str, password: &str| ClientConfig {
                protocol,
                username: Some(name.into()),
                password: Some(password.into()),
                ..config(server)
            };
            let c = connect(server, user("conf-app", "s3cret"))?;
            let me: String = query(&c, cmd("ACL").arg("WHOAMI"))?;
            ensure(me == "conf-app", || format!("ACL WHOAMI: {me}"))?;
            match connect(server, user("conf-app", "wrong")) {
                Err(e) => ensure(e.contains("WRONGPASS"), || format!("a wrong password failed with {e}"))?,
                Ok(_) => return Err(format!("a wrong password was accepted over {protocol:?}")),
            }
            let ro = connect(server, user("conf-ro", "ro"));
            if protocol == Protocol::Resp3 {
                let ro = ro?;
                match ro.set::<()>("conf:k", "v") {
                    Err(Error::Server(e)) => {
                        ensure(e.code() == "NOPERM", || format!("SET by a read-only user: {e}"))?
                    }
                    other => return Err(format!("SET by a read-only user: {other:?}")),
                }
                // Not allowed CLIENT TRACKING: the cache stays empty, the connection works.
                let cached = ClientConfig { cache: Some(Default::default()), ..user("conf-ro", "ro") };
                let ro = connect(server, cached)?;
                for _ in 0..2 {
                    let _: Option<String> = query(&ro, cmd("GET").arg("conf:k"))?;
                }
                let hits = ro.cache().map(|c| c.stats().hits);
                ensure(hits == Some(0), || format!("an untracked connection had {hits:?} cache hits"))?;
            }
        }
        Ok(())
    })();
    let _: () = query(&admin, cmd("ACL").arg("DELUSER").arg("conf-app").arg("conf-ro"))?;
    result
}

fn recv(c: &BlockingClient) -> Result<zero_redis::client::Message<'static>, String> {
    c.recv(Some(Duration::from_secs(5))).ok_or_else(|| "no message within 5 s".to_string())
}

fn pubsub_channels(server: &mut Server) -> Result<(), String> {
    // Over RESP2 the client subscribes on a connection of its own, so commands still work.
    for protocol in [Protocol::Resp3, Protocol::Resp2] {
        let (sub, publisher) =
            (connect(server, ClientConfig { protocol, ..config(server) })?, client(server)?);
        sub.subscribe(SubKind::Channel, &["conf:news", "conf:sport"]).map_err(|e| e.to_string())?;
        let echo: String = query(&sub, cmd("ECHO").arg("still here"))?;
        ensure(echo == "still here", || format!("commands fail after SUBSCRIBE over {protocol:?}"))?;
        let n: u64 = query(&publisher, cmd("PUBLISH").arg("conf:sport").arg("goal"))?;
        ensure(n == 1, || format!("PUBLISH reached {n} subscribers over {protocol:?}"))?;
        let m = recv(&sub)?;
        ensure(&m.channel[..] == b"conf:sport" && &m.payload[..] == b"goal", || format!("got {m:?}"))?;
        sub.unsubscribe(SubKind::Channel, &["conf:sport", "conf:news"]).map_err(|e| e.to_string())?;
        let n: u64 = query(&publisher, cmd("PUBLISH").arg("conf:sport").arg("again"))?;
        ensure(n == 0, || format!("still subscribed after UNSUBSCRIBE over {protocol:?} ({n})"))?;
    }
    Ok(())
}

fn pubsub_patterns(server: &mut Server) -> Result<(), String> {
    let (sub, publisher) = (client(server)?, client(server)?);
    sub.subscribe(SubKind::Pattern, &["conf:news.*"]).map_err(|e| e.to_string())?;
    let miss: u64 = query(&publisher, cmd("PUBLISH").arg("conf:sport.x").arg("no"))?;
    let hit: u64 = query(&publisher, cmd("PUBLISH").arg("conf:news.tech").arg("yes"))?;
    ensure((miss, hit) == (0, 1), || format!("pattern matched {miss} / {hit}"))?;
    let m = recv(&sub)?;
    ensure(m.pattern.as_deref() == Some(&b"conf:news.*"[..]) && &m.channel[..] == b"conf:news.tech", || {
        format!("got {m:?}")
    })
}

fn pubsub_shard(server: &mut Server) -> Result<(), String> {
    let (sub, publisher) = (client(server)?, client(server)?);
    sub.subscribe(SubKind::Shard, &["conf:orders"]).map_err(|e| e.to_string())?;
    let n: u64 = query(&publisher, cmd("SPUBLISH").arg("conf:orders").arg("o-1"))?;
    ensure(n == 1, || format!("SPUBLISH reached {n}"))?;
    let m = recv(&sub)?;
    ensure(m.kind == SubKind::Shard && &m.payload[..] == b"o-1", || format!("got {m:?}"))
}

fn invalidation(server: &mut Server) -> Result<(), String> {
    let (tracked, writer) = (client(server)?, client(server)?);
    let _: () = query(&tracked, cmd("CLIENT").arg("TRACKING").arg("ON"))?;
    let _: Option<String> = query(&tracked, cmd("GET").arg("conf:cached"))?;
    let _: () = query(&writer, cmd("SET").arg("conf:cached").arg("new"))?;
    let push = tracked.recv_push(Duration::from_secs(5)).ok_or("no invalidation push within 5 s")?;
    let items: Vec<Value> = push.convert().map_err(|e| e.to_string())?;
    let ok = matches!(&items[..], [Value::Bulk(kind), Value::Array(keys)]
        if &kind[..] == b"invalidate" && keys.iter().any(|k| k.as_bytes() == Some(b"conf:cached")));
    ensure(ok, || format!("unexpected push {items:?}"))
}

/// How many `GET`s the server has run (`INFO commandstats`).
fn gets_run(c: &BlockingClient) -> Result<u64, String> {
    let info: String = query(c, cmd("INFO").arg("commandstats"))?;
    let line = info.lines().find_map(|l| l.strip_prefix("cmdstat_get:calls=")).unwrap_or("0,");
    line.split(',').next().and_then(|n| n.parse().ok()).ok_or_else(|| format!("odd commandstats {line:?}"))
}

/// Reads `key` through `c` until it is `want` (an invalidation is on its way).
fn read_until(c: &BlockingClient, key: &str, want: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let got: Option<String> = query(c, cmd("GET").arg(key))?;
        if got.as_deref() == Some(want) {
            return Ok(());
        }
        ensure(Instant::now() < deadline, || format!("{key} still reads {got:?}, not {want:?}, after 5 s"))?;
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn client_cache(server: &mut Server) -> Result<(), String> {
    let cached = connect(server, ClientConfig { cache: Some(Default::default()), ..config(server) })?;
    let writer = client(server)?;
    let key = "conf:cache";
    let _: () = query(&writer, cmd("SET").arg(key).arg("v1"))?;
    // Repeated reads reach the server once.
    let before = gets_run(&writer)?;
    for _ in 0..100 {
        let got: String = query(&cached, cmd("GET").arg(key))?;
        ensure(got == "v1", || format!("read {got:?}, not v1"))?;
    }
    let ran = gets_run(&writer)? - before;
    ensure(ran == 1, || format!("100 cached GETs ran {ran} times on the server, not once"))?;
    let hits = cached.cache().map(|c| c.stats().hits);
    ensure(hits == Some(99), || format!("the cache counted {hits:?} hits, not 99"))?;
    // Another client's write invalidates; so do hash field writes.
    let _: () = query(&writer, cmd("SET").arg(key).arg("v2"))?;
    read_until(&cached, key, "v2")?;
    let _: i64 = query(&writer, cmd("HSET").arg("conf:cache-h").arg("f").arg("1"))?;
    let _: String = query(&cached, cmd("HGET").arg("conf:cache-h").arg("f"))?;
    let _: i64 = query(&writer, cmd("HSET").arg("conf:cache-h").arg("f").arg("2"))?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while query::<String>(&cached, cmd("HGET").arg("conf:cache-h").arg("f"))? != "2" {
        ensure(Instant::now() < deadline, || "HGET stayed stale".into())?;
    }
    // The client's own writes are visible to its next read at once, even pipelined with it.
    for i in 0..200 {
        let _: () = query(&cached, cmd("SET").arg(key).arg(i))?;
        let got: i64 = query(&cached, cmd("GET").arg(key))?;
        let both = Pipeline::new().with(cmd("SET").arg(key).arg(-i)).with(cmd("GET").arg(key));
        let (_, again): ((), i64) = cached.pipeline(&both).map_err(|e| e.to_string())?;
        ensure((got, again) == (i, -i), || format!("wrote {i}, then {}, read {got}, then {again}", -i))?;
    }
    // Many readers while another client writes: no reader goes back in time, and all see
    // the last value once writing stops.
    let _: () = query(&writer, cmd("SET").arg("conf:cache-n").arg(0))?;
    let cached = Arc::new(cached);
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (c, stop) = (cached.clone(), stop.clone());
            std::thread::spawn(move || -> Result<u64, String> {
                let mut last = 0;
                while !stop.load(Ordering::Relaxed) {
                    let got: i64 = query(&c, cmd("GET").arg("conf:cache-n"))?;
                    ensure(got as u64 >= last, || format!("read {got} after {last}"))?;
                    last = got as u64;
                }
                Ok(last)
            })
        })
        .collect();
    for _ in 0..2000 {
        let _: i64 = query(&writer, cmd("INCR").arg("conf:cache-n"))?;
    }
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        reader.join().map_err(|_| "a reader panicked")??;
    }
    read_until(&cached, "conf:cache-n", "2000")?;
    // A new connection is tracked again, and nothing from the old one is trusted.
    let id: i64 = query(&cached, cmd("CLIENT").arg("ID"))?;
    let _: i64 = query(&writer, cmd("CLIENT").arg("KILL").arg("ID").arg(id))?;
    let _: () = query(&writer, cmd("SET").arg(key).arg("while-down"))?;
    read_until(&cached, key, "while-down")?;
    let _: () = query(&writer, cmd("SET").arg(key).arg("after"))?;
    read_until(&cached, key, "after")
}

fn multi_exec(server: &mut Server) -> Result<(), String> {
    let (c, other) = (client(server)?, client(server)?);
    let _: () = query(&c, cmd("SET").arg("conf:a").arg("1"))?;
    let t = Pipeline::new().with(cmd("INCR").arg("conf:a")).with(cmd("INCR").arg("conf:a")).atomic();
    let got: Vec<i64> = c.pipeline(&t).map_err(|e| e.to_string())?;
    ensure(got == [2, 3], || format!("EXEC replied {got:?}"))?;
    let _: () = query(&c, cmd("WATCH").arg("conf:a"))?;
    let _: () = query(&other, cmd("SET").arg("conf:a").arg("changed"))?;
    let aborted: Option<Vec<i64>> =
        c.pipeline(&Pipeline::new().with(cmd("INCR").arg("conf:a")).atomic()).map_err(|e| e.to_string())?;
    ensure(aborted.is_none(), || format!("a WATCHed change did not abort EXEC: {aborted:?}"))?;
    let bad = Pipeline::new().with(cmd("INCR").arg("conf:a")).with(cmd("SET").arg("only-key")).atomic();
    match c.pipeline::<Value>(&bad) {
        Err(Error::Server(e)) if e.code() == "EXECABORT" => Ok(()),
        other => Err(format!("a bad queued command gave {other:?}, not EXECABORT")),
    }
}

/// Publishes until someone listens (a restored subscription takes a moment).
fn publish_until_heard(publisher: &BlockingClient, channel: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while query::<u64>(publisher, cmd("PUBLISH").arg(channel).arg("back"))? == 0 {
        ensure(Instant::now() < deadline, || format!("the subscription to {channel} did not come back"))?;
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// INCRs and GETs from several threads while `disrupt` breaks the connection; every INCR
/// either succeeded or was reported as possibly run, and the counter proves none was lost or
/// run twice; every GET (a read, so retried) succeeded; the subscription came back.
fn survives(server: &mut Server, disrupt: fn(&mut Server) -> Result<(), String>) -> Result<(), String> {
    let c = Arc::new(client(server)?);
    let _: () = query(&c, cmd("DEL").arg("conf:counter"))?;
    c.subscribe(SubKind::Channel, &["conf:events"]).map_err(|e| e.to_string())?;
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let (c, stop) = (c.clone(), stop.clone());
            std::thread::spawn(move || {
                let (mut ok, mut maybe, mut other) = (0u64, 0u64, Vec::new());
                while !stop.load(Ordering::Relaxed) {
                    let r = if w == 0 {
                        c.get::<Option<i64>>("conf:counter").map(drop)
                    } else {
                        c.incr::<i64>("conf:counter").map(drop)
                    };
                    match r {
                        Ok(()) => ok += 1,
                        Err(Error::ConnectionLost { sent: true }) if w != 0 => maybe += 1,
                        Err(e) => other.push(e.to_string()),
                    }
                }
                (w, ok, maybe, other)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    let disrupted = disrupt(server);
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let (mut ok, mut maybe) = (0, 0);
    for worker in workers {
        let (w, o, m, other) = worker.join().map_err(|_| "a worker panicked")?;
        ensure(other.is_empty(), || format!("{} failed: {other:?}", if w == 0 { "GETs" } else { "INCRs" }))?;
        if w != 0 {
            (ok, maybe) = (ok + o, maybe + m);
        }
    }
    disrupted?;
    let counter: i64 = query(&c, cmd("GET").arg("conf:counter"))?;
    let counter = counter as u64;
    ensure(ok <= counter && counter <= ok + maybe, || {
        format!("counter {counter} but {ok} INCRs succeeded and {maybe} may have run: lost or duplicated")
    })?;
    ensure(ok > 0, || "no INCR succeeded".into())?;
    let publisher = client(server)?;
    publish_until_heard(&publisher, "conf:events")
}

fn reconnect_kill(server: &mut Server) -> Result<(), String> {
    survives(server, |server| {
        let admin = client(server)?;
        for _ in 0..3 {
            let _: i64 =
                query(&admin, cmd("CLIENT").arg("KILL").arg("TYPE").arg("normal").arg("SKIPME").arg("yes"))?;
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    })
}

fn reconnect_restart(server: &mut Server) -> Result<(), String> {
    survives(server, |server| server.managed.as_mut().ok_or("the suite did not start this server")?.restart())
}

fn timeout(server: &mut Server) -> Result<(), String> {
    let c = connect(
        server,
        ClientConfig { command_timeout: Some(Duration::from_millis(300)), ..config(server) },
    )?;
    let admin = client(server)?;
    let _: () = query(&c, cmd("DEL").arg("conf:slow"))?;
    let sleeper = std::thread::spawn(move || admin.query::<()>(cmd("DEBUG").arg("SLEEP").arg("1")));
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    let r = c.incr::<i64>("conf:slow");
    let took = started.elapsed();
    sleeper.join().map_err(|_| "DEBUG SLEEP panicked")?.map_err(|e| format!("DEBUG SLEEP: {e}"))?;
    ensure(r == Err(Error::Timeout { sent: true }), || format!("INCR on a sleeping server gave {r:?}"))?;
    ensure(took < Duration::from_millis(800), || format!("the 300 ms timeout fired after {took:?}"))?;
    let n: i64 = query(&c, cmd("GET").arg("conf:slow"))?;
    ensure(n == 1, || format!("the abandoned INCR ran {n} times"))
}

fn value_512mib(server: &mut Server) -> Result<(), String> {
    let c = client(server)?;
    // The value is about the client, not the server's disk: with the append-only file on, the
    // server would write and fsync 512 MiB, then rewrite the file, and exit on a full disk.
    let aof: Vec<String> = query(&c, cmd("CONFIG").arg("GET").arg("appendonly"))?;
    let _: () = query(&c, cmd("CONFIG").arg("SET").arg("appendonly").arg("no"))?;
    let result = big_value(&c);
    let _: () =
        query(&c, cmd("CONFIG").arg("SET").arg("appendonly").arg(aof.get(1).map_or("no", |v| v.as_str())))?;
    result
}

fn big_value(c: &BlockingClient) -> Result<(), String> {
    let value: Vec<u8> = (0..512usize << 20).map(|i| (i % 251) as u8).collect();
    let _: () = query(c, cmd("SET").arg("conf:big").arg(&value))?;
    let back: Vec<u8> = query(c, cmd("GET").arg("conf:big"))?;
    let same = back == value;
    let _: () = query(c, cmd("DEL").arg("conf:big"))?;
    ensure(same, || format!("512 MiB came back as {} different bytes", back.len()))
}
